//! Conformance edge cases over the wire: what a strict conformance tester and a demanding client
//! check beyond the RFC's own examples (those are in protocol.rs), each against the real binary.
//!
//! One test per rule, named after it, with the RFC text that decides it. These are the cases an
//! outside tester found wrong at one time: a missing FLAGS before a new keyword, `\Recent` for
//! IMAP4rev1 sessions, BAD for a mailbox name that merely does not exist, a long line after login,
//! ESEARCH's MODSEQ with MIN/MAX, CHILDINFO, a search that missed a message just delivered, and
//! capabilities whose every part must work (UTF8=ACCEPT's APPEND, SAVEDATE's and OBJECTID's
//! search keys). MIME, BINARY, SORT and THREAD edge cases are tested with the message crate,
//! the imap crate's golden and session tests and the Dovecot comparison (dovecot_fetch.rs).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, TestServer, Wire};

const USER: &str = "alice";
const PASSWORD: &str = "wonderland rabbit";

/// A small message with a Message-ID and an optional extra header line.
fn mail(id: &str, subject: &str) -> String {
    format!(
        "From: Carol <carol@example.org>\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{id}@example.org>\r\nDate: Mon, 7 Feb 2022 21:52:25 -0800\r\n\r\nHello.\r\n"
    )
}

/// One command's answer: the untagged responses (literals folded in) and the tagged line.
struct Reply {
    untagged: Vec<String>,
    tagged: String,
}

impl Reply {
    fn ok(&self) -> bool {
        self.tagged.split(' ').nth(1) == Some("OK")
    }

    fn status(&self) -> &str {
        self.tagged.split(' ').nth(1).unwrap_or("")
    }

    /// Position of the first untagged response starting with `prefix`.
    fn position(&self, prefix: &str) -> Option<usize> {
        self.untagged.iter().position(|l| l.starts_with(prefix))
    }

    fn has(&self, prefix: &str) -> bool {
        self.position(prefix).is_some()
    }

    fn with(&self, prefix: &str) -> Vec<&str> {
        self.untagged.iter().filter(|l| l.starts_with(prefix)).map(String::as_str).collect()
    }
}

/// A connection with numbered tags.
struct Imap {
    client: Client,
    tag: u32,
}

impl Imap {
    fn login(server: &TestServer) -> Imap {
        let mut client = server.connect_tls();
        assert!(client.read_line().starts_with("* OK"));
        let mut imap = Imap { client, tag: 0 };
        let r = imap.run(&format!("LOGIN {USER} \"{PASSWORD}\""));
        assert!(r.ok(), "{}", r.tagged);
        imap
    }

    fn run(&mut self, command: &str) -> Reply {
        self.tag += 1;
        let tag = format!("c{}", self.tag);
        self.client.send_raw(format!("{tag} {command}\r\n").as_bytes());
        let mut untagged = Vec::new();
        loop {
            let line = self.client.read_response().folded();
            if line.starts_with(&format!("{tag} ")) {
                return Reply { untagged, tagged: line };
            }
            untagged.push(line);
        }
    }

    fn ok(&mut self, command: &str) -> Reply {
        let r = self.run(command);
        assert!(r.ok(), "{command} → {} {:#?}", r.tagged, r.untagged);
        r
    }

    fn append(&mut self, mailbox: &str, flags: &str, message: &str) -> Reply {
        self.ok(&format!("APPEND {mailbox} ({flags}) {{{}+}}\r\n{message}", message.len()))
    }
}

/// Delivers `message` to `user` over LMTP (RFC 2033) and waits for the 250.
fn lmtp_deliver(addr: std::net::SocketAddr, user: &str, message: &str) {
    use std::io::{BufRead, BufReader, Write};
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let mut reader = BufReader::new(tcp.try_clone().unwrap());
    let mut writer = tcp;
    // Reads one (possibly multi-line) reply; returns its last line.
    let mut reply = || loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    };
    assert!(reply().starts_with("220"));
    for command in
        ["LHLO test".to_owned(), "MAIL FROM:<carol@example.org>".to_owned(), format!("RCPT TO:<{user}>")]
    {
        writer.write_all(format!("{command}\r\n").as_bytes()).unwrap();
        assert!(reply().starts_with("250"), "{command}");
    }
    writer.write_all(b"DATA\r\n").unwrap();
    assert!(reply().starts_with("354"));
    writer.write_all(format!("{message}.\r\n").as_bytes()).unwrap();
    let done = reply();
    assert!(done.starts_with("250"), "{done}");
    writer.write_all(b"QUIT\r\n").unwrap();
}

fn server() -> TestServer {
    let server = TestServer::start();
    server.add_user(USER, PASSWORD);
    server
}

/// RFC 3501 §7.2.6 / RFC 9051 §7.3.5: FLAGS lists the flags of the mailbox; a keyword brought by
/// STORE, APPEND or COPY from another session is announced in FLAGS (and PERMANENTFLAGS) before
/// any FETCH that carries it.
#[test]
fn new_keywords_are_announced_in_flags_before_fetch() {
    let server = server();
    let mut a = Imap::login(&server);
    let mut b = Imap::login(&server);
    b.append("INBOX", "", &mail("k1", "one"));
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");

    // Another session's STORE.
    b.ok("STORE 1 +FLAGS ($Fresh)");
    let r = a.ok("NOOP");
    let flags = r.position("* FLAGS (").expect("FLAGS announced");
    assert!(r.untagged[flags].contains("$Fresh"), "{:?}", r.untagged);
    let permanent = r.position("* OK [PERMANENTFLAGS (").expect("PERMANENTFLAGS announced");
    assert!(r.untagged[permanent].contains("$Fresh") && r.untagged[permanent].contains("\\*"));
    let fetch = r.position("* 1 FETCH").expect("flag change");
    assert!(flags < fetch && permanent < fetch, "{:?}", r.untagged);

    // Another session's APPEND with a keyword never seen: FLAGS before the client can FETCH it.
    b.append("INBOX", "$Appended", &mail("k2", "two"));
    let r = a.ok("NOOP");
    assert!(r.with("* FLAGS (").iter().any(|l| l.contains("$Appended")), "{:?}", r.untagged);
    let r = a.ok("FETCH 2 FLAGS");
    assert!(r.with("* 2 FETCH").iter().any(|l| l.contains("$Appended")));
    assert!(!r.has("* FLAGS"), "nothing new this time: {:?}", r.untagged);

    // COPY into the selected mailbox from elsewhere.
    b.ok("CREATE Other");
    b.append("Other", "$Copied", &mail("k3", "three"));
    b.ok("SELECT Other");
    b.ok("COPY 1 INBOX");
    let r = a.ok("NOOP");
    let flags = r.position("* FLAGS (").expect("FLAGS for the copied keyword");
    assert!(r.untagged[flags].contains("$Copied"));

    // The session's own STORE of a new keyword.
    let r = a.ok("STORE 1 +FLAGS ($Mine)");
    let flags = r.position("* FLAGS (").expect("own new keyword announced");
    assert!(flags < r.position("* 1 FETCH").unwrap());
}

/// RFC 3501 §2.3.2: `\Recent` — the message is new since the last session with the mailbox
/// selected, and only one session sees it so; §6.3.1/§6.3.2 RECENT in SELECT/EXAMINE (EXAMINE
/// does not take it away), §7.3.2 `* n RECENT` when the size changes, §6.4.4 RECENT/NEW/OLD.
/// RFC 9051 §2.3.2: an IMAP4rev2 session never sees it.
#[test]
fn recent_is_given_to_one_rev1_session() {
    let server = server();
    let mut a = Imap::login(&server);
    let mut b = Imap::login(&server);
    b.append("INBOX", "", &mail("r1", "one"));
    b.append("INBOX", "\\Seen", &mail("r2", "two"));
    let st = b.ok("STATUS INBOX (RECENT MESSAGES)");
    assert!(st.untagged[0].contains("RECENT 2"), "{:?}", st.untagged);

    // EXAMINE shows the recent messages without taking them.
    let r = b.ok("EXAMINE INBOX");
    assert!(r.has("* 2 RECENT"), "{:?}", r.untagged);
    b.ok("CLOSE");

    let r = a.ok("SELECT INBOX");
    assert!(r.has("* 2 RECENT"), "{:?}", r.untagged);
    let r = a.ok("FETCH 1:2 FLAGS");
    assert!(r.untagged.iter().all(|l| l.contains("\\Recent")), "{:?}", r.untagged);
    assert_eq!(a.ok("SEARCH RECENT").untagged, ["* SEARCH 1 2"]);
    assert_eq!(a.ok("SEARCH NEW").untagged, ["* SEARCH 1"]);
    assert_eq!(a.ok("SEARCH OLD").untagged, ["* SEARCH"]);

    // A's SELECT took them: nobody else sees them as recent.
    assert!(b.ok("STATUS INBOX (RECENT)").untagged[0].contains("RECENT 0"));
    let r = b.ok("SELECT INBOX");
    assert!(r.has("* 0 RECENT"), "{:?}", r.untagged);
    assert!(b.ok("FETCH 1 FLAGS").untagged.iter().all(|l| !l.contains("\\Recent")));

    // New mail while both have it selected: EXISTS with RECENT; one of them gets the \Recent.
    let mut c = Imap::login(&server);
    c.append("INBOX", "", &mail("r3", "three"));
    let ra = a.ok("NOOP");
    assert!(ra.has("* 3 EXISTS") && ra.has("* 3 RECENT"), "{:?}", ra.untagged);
    let rb = b.ok("NOOP");
    assert!(rb.has("* 3 EXISTS") && rb.has("* 0 RECENT"), "{:?}", rb.untagged);
    assert!(a.ok("FETCH 3 FLAGS").untagged[0].contains("\\Recent"));
    assert!(!b.ok("FETCH 3 FLAGS").untagged[0].contains("\\Recent"));

    // A message APPENDed by the session that has the mailbox selected is recent in it.
    a.append("INBOX", "", &mail("r4", "four"));
    let r = a.ok("NOOP");
    assert!(r.has("* 4 RECENT") || a.ok("SEARCH RECENT").untagged == ["* SEARCH 1 2 3 4"]);

    // IMAP4rev2: no RECENT at all.
    let mut d = Imap::login(&server);
    d.ok("ENABLE IMAP4rev2");
    c.append("INBOX", "", &mail("r5", "five"));
    let r = d.ok("SELECT INBOX");
    assert!(!r.untagged.iter().any(|l| l.contains("RECENT")), "{:?}", r.untagged);
    assert!(!d.ok("FETCH 1:* FLAGS").untagged.iter().any(|l| l.contains("\\Recent")));
}

/// RFC 3501 §5.1.3 / RFC 9051 §9: `mailbox` is any astring. A name that is not valid modified
/// UTF-7 cannot exist: SELECT/EXAMINE/STATUS answer NO, not BAD (a protocol error to a strict
/// client); any list-mailbox is a legal LIST pattern, answered OK with whatever matches.
#[test]
fn undecodable_mailbox_names_answer_no_and_any_pattern_lists() {
    let server = server();
    let mut a = Imap::login(&server);
    for name in ["&", "a&b", "&Jjo", "\"&AGE-\""] {
        for cmd in ["SELECT", "EXAMINE"] {
            let r = a.run(&format!("{cmd} {name}"));
            assert_eq!(r.status(), "NO", "{cmd} {name} → {}", r.tagged);
        }
        let r = a.run(&format!("STATUS {name} (MESSAGES)"));
        assert_eq!(r.status(), "NO", "STATUS {name} → {}", r.tagged);
        let r = a.run(&format!("CREATE {name}"));
        assert_eq!(r.status(), "NO", "CREATE {name} → {}", r.tagged);
    }
    // Every ATOM-CHAR, and `&`, `%`, `*`.
    let atom_chars: String = (0x21u8..0x7f).map(char::from).filter(|c| !"(){ %*\"\\]".contains(*c)).collect();
    let r = a.ok(&format!("LIST \"\" \"{atom_chars}&%*\""));
    assert!(r.untagged.iter().all(|l| l.starts_with("* LIST")), "{:?}", r.untagged);
    for pattern in ["&", "*&", "&*", "a&b%", "&Jjo*", "%&-"] {
        a.ok(&format!("LIST \"\" \"{pattern}\""));
        a.ok(&format!("LSUB \"\" \"{pattern}\""));
        a.ok(&format!("LIST \"{pattern}\" \"*\""));
    }
    // A mailbox whose name has an `&` is found by the pattern in its encoded form only.
    a.ok("CREATE \"R&-D\"");
    assert_eq!(a.ok("LIST \"\" \"R&-*\"").with("* LIST").len(), 1);
    assert_eq!(a.ok("LIST \"\" \"*&-D\"").with("* LIST").len(), 1);
    assert_eq!(a.ok("LIST \"\" \"R&*\"").with("* LIST").len(), 1);
    assert!(a.ok("LIST \"\" \"R&D\"").with("* LIST").is_empty());
}

/// After login, command lines up to 64 KiB are legal (ID with many parameters, long UID sets of
/// QRESYNC clients; RFC 7162 §4 expects at least 8192 octets); before login the limit is small.
#[test]
fn long_lines_after_login() {
    let server = server();
    let mut a = Imap::login(&server);
    a.ok("SELECT INBOX");
    let uids: Vec<String> = (1..9000u32).map(|u| (u * 3).to_string()).collect();
    let set = uids.join(",");
    assert!(set.len() > 40_000 && set.len() < 60_000);
    a.ok(&format!("UID FETCH {set} (FLAGS)"));
    a.ok(&format!("UID SEARCH UID {set}"));
    let params: Vec<String> = (0..300).map(|i| format!("\"key{i}\" \"{}\"", "v".repeat(100))).collect();
    assert!(a.run(&format!("ID ({})", params.join(" "))).status() != "");

    // Pipelined right behind LOGIN: the long line is judged by the limits after login.
    let mut client = server.connect_tls();
    client.read_line();
    let burst =
        format!("p1 LOGIN {USER} \"{PASSWORD}\"\r\np2 SELECT INBOX\r\np3 UID FETCH {set} (FLAGS)\r\n");
    client.send_raw(burst.as_bytes());
    for tag in ["p1", "p2", "p3"] {
        let done = client.expect_tagged(tag);
        assert!(done.last().unwrap().starts_with(&format!("{tag} OK")), "{done:?}");
    }

    // Before login a line of 20 KiB is refused, and the connection goes on.
    let mut client = server.connect_tls();
    client.read_line();
    client.send(&format!("x1 ID (\"k\" \"{}\")", "v".repeat(20_000)));
    let line = client.read_line();
    assert!(line.starts_with("x1 BAD") || line.starts_with("* BAD"), "{line}");
    client.send("x2 NOOP");
    assert!(client.expect_tagged("x2").last().unwrap().starts_with("x2 OK"));
}

/// RFC 4731 §3.2: with a single MIN or MAX, the MODSEQ is that of the found message; with MIN
/// and MAX (no ALL/COUNT) the higher of the two; otherwise the highest of all returned.
#[test]
fn esearch_modseq_follows_min_and_max() {
    let server = server();
    let mut a = Imap::login(&server);
    for i in 1..=4 {
        a.append("INBOX", "", &mail(&format!("m{i}"), "modseq"));
    }
    a.ok("SELECT INBOX (CONDSTORE)");
    // Distinct modseqs, highest on message 2.
    a.ok("STORE 1 +FLAGS (\\Flagged)");
    a.ok("STORE 4 +FLAGS (\\Flagged)");
    a.ok("STORE 3 +FLAGS (\\Flagged)");
    a.ok("STORE 2 +FLAGS (\\Flagged)");
    let modseq = |a: &mut Imap, n: u32| -> u64 {
        let r = a.ok(&format!("FETCH {n} (MODSEQ)"));
        let text = &r.with(&format!("* {n} FETCH"))[0];
        text.split("MODSEQ (").nth(1).unwrap().split(')').next().unwrap().parse().unwrap()
    };
    let m: Vec<u64> = (1..=4).map(|n| modseq(&mut a, n)).collect();
    let esearch_modseq = |a: &mut Imap, ret: &str| -> u64 {
        let r = a.ok(&format!("SEARCH RETURN ({ret}) FLAGGED MODSEQ 1"));
        let line = r.with("* ESEARCH")[0].to_owned();
        line.split("MODSEQ ").nth(1).unwrap().trim().parse().unwrap()
    };
    assert_eq!(esearch_modseq(&mut a, "MIN"), m[0]);
    assert_eq!(esearch_modseq(&mut a, "MAX"), m[3]);
    assert_eq!(esearch_modseq(&mut a, "MIN MAX"), m[0].max(m[3]));
    assert_eq!(esearch_modseq(&mut a, "ALL"), *m.iter().max().unwrap());
    assert_eq!(esearch_modseq(&mut a, "MIN COUNT"), *m.iter().max().unwrap());
}

/// RFC 5258 §3.5: CHILDINFO names a descendant that meets the selection criteria but is not
/// itself listed (the pattern does not match it); redundant CHILDINFO is suppressed. The
/// section's example 9, on our data.
#[test]
fn childinfo_only_for_unlisted_descendants() {
    let server = server();
    let mut a = Imap::login(&server);
    for name in ["foo2", "foo2/bar1", "foo2/bar2", "baz2", "baz2/bar2", "baz2/bar22", "eps2", "eps2/mamba"] {
        a.ok(&format!("CREATE {name}"));
    }
    a.ok("CREATE qux2/bar2");
    for name in ["foo2/bar1", "foo2/bar2", "baz2/bar2", "baz2/bar22", "eps2", "eps2/mamba", "qux2/bar2"] {
        a.ok(&format!("SUBSCRIBE {name}"));
    }
    // A deleted mailbox stays subscribed (RFC 9051 §6.3.4), listed \NonExistent.
    a.ok("DELETE qux2/bar2");
    a.ok("DELETE qux2");
    let r = a.ok("LIST (RECURSIVEMATCH SUBSCRIBED) \"\" \"*2\"");
    let line = |name: &str| {
        r.untagged.iter().find(|l| l.ends_with(&format!(" {name}")) || l.contains(&format!(" {name} (")))
    };
    assert!(line("foo2").unwrap().contains("CHILDINFO"), "{:?}", r.untagged);
    assert!(line("eps2").unwrap().contains("CHILDINFO"), "{:?}", r.untagged);
    assert!(line("baz2").is_none(), "redundant CHILDINFO: {:?}", r.untagged);
    for name in ["foo2/bar2", "baz2/bar2", "baz2/bar22", "qux2/bar2"] {
        let l = line(name).unwrap_or_else(|| panic!("{name} missing: {:?}", r.untagged));
        assert!(!l.contains("CHILDINFO"), "{l}");
    }
    // A subscribed mailbox whose subscribed child is listed too gets no CHILDINFO.
    let r = a.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"eps2*\"");
    assert!(r.untagged.iter().all(|l| !l.contains("CHILDINFO")), "{:?}", r.untagged);
    // Two patterns: the child matched by the second one makes the first one's CHILDINFO redundant.
    let r = a.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (eps2 eps2/mamba)");
    assert!(r.untagged.iter().all(|l| !l.contains("CHILDINFO")), "{:?}", r.untagged);
    let r = a.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (eps2)");
    assert!(r.untagged.iter().any(|l| l.contains("CHILDINFO")), "{:?}", r.untagged);
    // The deleted, still subscribed name.
    let r = a.ok("LIST (SUBSCRIBED) \"\" \"qux2*\"");
    let l = r.with("* LIST").into_iter().find(|l| l.contains("qux2/bar2")).expect("qux2/bar2 listed");
    assert!(l.contains("\\Subscribed") && l.contains("\\NonExistent"), "{l}");
    // RFC 5258 §3.1: RECURSIVEMATCH alone, or with REMOTE only, is BAD; REMOTE alone is fine.
    assert_eq!(a.run("LIST (RECURSIVEMATCH) \"\" \"*\"").status(), "BAD");
    assert_eq!(a.run("LIST (RECURSIVEMATCH REMOTE) \"\" \"*\"").status(), "BAD");
    assert_eq!(a.run("LIST (UNKNOWN) \"\" \"*\"").status(), "BAD");
    a.ok("LIST (REMOTE) \"\" \"%\"");
}

/// A message delivered (LMTP 250) or appended (OK) is found by the next SEARCH of a session
/// that has the mailbox selected: the search answers about the mailbox as it is, announcing
/// the new message (EXISTS) first. Clients find their just-saved Sent copy this way.
#[test]
fn search_finds_the_message_just_delivered() {
    let server = server();
    let lmtp = server.lmtp.expect("LMTP listener");
    let mut a = Imap::login(&server);
    let mut writer = Imap::login(&server);
    a.ok("SELECT INBOX");
    for i in 0..20 {
        let id = format!("fresh{i}");
        if i % 2 == 0 {
            lmtp_deliver(lmtp, USER, &mail(&id, "delivered"));
        } else {
            writer.append("INBOX", "", &mail(&id, "appended"));
        }
        let r = a.ok(&format!("UID SEARCH HEADER Message-ID <{id}@example.org>"));
        let found = r.with("* SEARCH")[0].trim_start_matches("* SEARCH").trim().to_owned();
        assert!(!found.is_empty(), "round {i}: not found: {:?}", r.untagged);
        a.ok(&format!("UID STORE {found} +FLAGS.SILENT (\\Deleted)"));
        a.ok(&format!("UID EXPUNGE {found}"));
    }
}

/// What CAPABILITY promises, the server does: UTF8=ACCEPT's `APPEND ... UTF8 (~{n})` (RFC 6855
/// §4), SAVEDATE's search keys (RFC 8514 §4.3), OBJECTID's EMAILID/THREADID keys (RFC 8474 §6).
#[test]
fn advertised_extensions_are_complete() {
    let server = server();
    let mut a = Imap::login(&server);
    let caps = a.ok("CAPABILITY").untagged.join(" ");
    for cap in ["UTF8=ACCEPT", "SAVEDATE", "OBJECTID"] {
        assert!(caps.contains(cap), "{cap} not advertised: {caps}");
    }
    a.ok("ENABLE UTF8=ACCEPT");
    let message = "From: Jürgen <j@example.org>\r\nSubject: Grüße\r\n\r\nHallo.\r\n";
    let r = a.ok(&format!("APPEND INBOX UTF8 (~{{{}+}}\r\n{message})", message.len()));
    assert!(r.tagged.contains("[APPENDUID "), "{}", r.tagged);
    a.ok("SELECT INBOX");
    let r = a.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] EMAILID THREADID SAVEDATE)");
    let fetch = r.with("* 1 FETCH")[0].to_owned();
    assert!(fetch.contains("Grüße"), "{fetch}");
    assert!(fetch.contains("THREADID NIL"), "{fetch}");
    let email_id = fetch.split("EMAILID (").nth(1).unwrap().split(')').next().unwrap().to_owned();

    let search = |a: &mut Imap, key: &str| a.ok(&format!("SEARCH {key}")).with("* SEARCH")[0].to_owned();
    assert_eq!(search(&mut a, &format!("EMAILID {email_id}")), "* SEARCH 1");
    assert_eq!(search(&mut a, "EMAILID Mnope"), "* SEARCH");
    assert_eq!(search(&mut a, "THREADID T1"), "* SEARCH");
    assert_eq!(a.run("SEARCH EMAILID \"bad id\"").status(), "BAD");

    // Today's date in the server's terms: the SAVEDATE just fetched, as a search date.
    let saved = fetch.split("SAVEDATE \"").nth(1).unwrap();
    let day: String = saved.trim_start().split(' ').next().unwrap().to_owned();
    assert_eq!(search(&mut a, &format!("SAVEDON {day}")), "* SEARCH 1");
    assert_eq!(search(&mut a, &format!("SAVEDSINCE {day}")), "* SEARCH 1");
    assert_eq!(search(&mut a, &format!("SAVEDBEFORE {day}")), "* SEARCH");
    assert_eq!(search(&mut a, "SAVEDBEFORE 1-Jan-2200"), "* SEARCH 1");
    assert_eq!(search(&mut a, "SAVEDSINCE 1-Jan-2200"), "* SEARCH");
    assert_eq!(search(&mut a, "SAVEDATESUPPORTED"), "* SEARCH 1");
}

/// APPEND the way Python's imaplib sends it: a synchronising literal, then the message and its
/// CRLF in separate writes with Nagle's algorithm on. The server must take the literal as it
/// arrives (the speed of this is measured by postfach-bench's `append-sync`, not here).
#[test]
fn append_with_synchronising_literal_in_separate_writes() {
    let server = server();
    let mut client = server.connect_tls();
    client.read_line();
    client.send(&format!("a LOGIN {USER} \"{PASSWORD}\""));
    client.expect_tagged("a");
    for i in 0..5 {
        let message = mail(&format!("sync{i}"), "imaplib style");
        client.send(&format!("b{i} APPEND INBOX (\\Seen) {{{}}}", message.len()));
        assert!(client.read_line().starts_with('+'));
        client.send_raw(message.as_bytes());
        client.send_raw(b"\r\n");
        let done = client.expect_tagged(&format!("b{i}"));
        assert!(done.last().unwrap().starts_with(&format!("b{i} OK")), "{done:?}");
    }
}

/// RFC 3501 §7.4.1 / RFC 9051 §7.4.1: EXPUNGE is not sent while answering FETCH, so a message
/// another session expunged keeps its sequence number until this session is told; RFC 2180 §4.1
/// lets the server answer what it still knows. Its UID is served; for other items an untagged
/// OK [EXPUNGEISSUED] (RFC 5530) follows the rest, and the command still succeeds: sync clients
/// take a NO to FETCH as a failed sync.
#[test]
fn fetch_of_a_message_expunged_elsewhere() {
    let server = server();
    let mut a = Imap::login(&server);
    let mut b = Imap::login(&server);
    for i in 1..=3 {
        a.append("INBOX", "", &mail(&format!("x{i}"), "expunge"));
    }
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    let uid3 = b.ok("FETCH 3 UID").with("* 3 FETCH")[0].to_owned();
    a.ok("STORE 3 +FLAGS (\\Deleted)");
    a.ok("EXPUNGE");
    let r = b.ok("FETCH 3 UID");
    assert_eq!(r.with("* 3 FETCH"), [uid3.as_str()], "{:?}", r.untagged);
    assert!(!r.has("* 3 EXPUNGE"));
    let r = b.ok("FETCH 2:3 (FLAGS)");
    assert!(r.has("* OK [EXPUNGEISSUED]"), "{:?}", r.untagged);
    assert!(r.has("* 2 FETCH"), "the rest is answered: {:?}", r.untagged);
    let r = b.ok("NOOP");
    assert!(r.has("* 3 EXPUNGE"), "{:?}", r.untagged);
}

/// RFC 3516 §4.1 allows part numbers in BINARY's section; clients and testers also send the
/// HEADER/TEXT/MIME forms, which have nothing to decode: served as BODY[] serves them.
#[test]
fn binary_of_section_texts_is_the_body_section() {
    let server = server();
    let mut a = Imap::login(&server);
    let message = "From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\npreamble\r\n--b\r\n\
        Content-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n";
    a.append("INBOX", "", message);
    a.ok("SELECT INBOX");
    for (binary, body) in [
        ("TEXT", "TEXT"),
        ("HEADER", "HEADER"),
        ("1.MIME", "1.MIME"),
        ("2.MIME", "2.MIME"),
        ("HEADER.FIELDS (SUBJECT)", "HEADER.FIELDS (SUBJECT)"),
    ] {
        let r = a.ok(&format!("FETCH 1 (BINARY.PEEK[{binary}] BINARY.SIZE[{binary}] BODY.PEEK[{body}])"));
        let line = r.with("* 1 FETCH")[0].to_owned();
        let body_data = line.split(&format!("BODY[{body}] ")).nth(1).unwrap().to_owned();
        let binary_data = line.split(&format!("BINARY[{binary}] ")).nth(1).unwrap().to_owned();
        let size: usize = line
            .split(&format!("BINARY.SIZE[{binary}] "))
            .nth(1)
            .unwrap()
            .split([' ', ')'])
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let literal = |s: &str| -> String {
            let n: usize = s[1..s.find('}').unwrap()].parse().unwrap();
            s[s.find('}').unwrap() + 3..][..n].to_owned()
        };
        assert_eq!(literal(&binary_data), literal(&body_data), "{binary}: {line}");
        assert_eq!(size, literal(&body_data).len(), "{binary}");
    }
    // Part numbers still decode: three octets.
    let r = a.ok("FETCH 1 (BINARY.SIZE[2])");
    assert!(r.with("* 1 FETCH")[0].contains("BINARY.SIZE[2] 3"), "{:?}", r.untagged);
}
