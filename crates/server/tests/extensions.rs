//! IMAP extensions of issue 18 against the real binary, over TLS: METADATA and METADATA-SERVER
//! (RFC 5464). Each test starts its own server and replays the RFC's examples, then the edge
//! cases: limits, access rights, names, and what happens to entries when mailboxes and accounts
//! change.
//!
//! Every response of the commands under test is also decoded by imap-codec with its lenient
//! `quirk` features off (a strict reading of the RFC grammar), where imap-codec knows the
//! response.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Answer, Client, TestServer, Wire};
use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder;

const PASSWORD: &str = "metadata pw";

/// A logged-in connection that runs one command at a time.
struct Imap {
    client: Client,
    next: u32,
}

impl Imap {
    fn login(server: &TestServer, user: &str) -> Imap {
        let mut client = server.connect_tls();
        client.read_line();
        let mut imap = Imap { client, next: 0 };
        let answer = imap.run(&format!("LOGIN {user} \"{PASSWORD}\""));
        assert!(answer.ok(), "{answer:?}");
        imap
    }

    /// Sends `command` (literals must be non-synchronising, `{n+}`) and reads its answer. Every
    /// response must decode strictly where imap-codec knows its syntax; METADATA responses and
    /// tagged lines it always knows.
    fn run(&mut self, command: &str) -> Answer {
        self.next += 1;
        let tag = format!("x{}", self.next);
        self.client.send(&format!("{tag} {command}"));
        self.answer(&tag)
    }

    fn answer(&mut self, tag: &str) -> Answer {
        let mut untagged = Vec::new();
        loop {
            let response = self.client.read_response().folded();
            strict(&response);
            if let Some(done) = response.strip_prefix(&format!("{tag} ")) {
                return Answer { untagged, done: done.to_owned() };
            }
            untagged.push(response);
        }
    }
}

/// Decodes one response with imap-codec; panics if it is METADATA or tagged and does not decode.
fn strict(response: &str) {
    let wire = format!("{response}\r\n");
    let known = response.starts_with("* METADATA ")
        || response.starts_with("* OK [INPROGRESS")
        || !response.starts_with('*');
    match ResponseCodec::default().decode(wire.as_bytes()) {
        Ok((rest, _)) => assert!(rest.is_empty(), "trailing bytes after {response:?}"),
        Err(e) if known => panic!("imap-codec rejected {response:?}: {e:?}"),
        Err(_) => {}
    }
}

/// A server with alice and bob; `imap` holds extra `[imap]` settings.
fn server(imap: &str) -> TestServer {
    let server = TestServer::start_with(imap);
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    server
}

#[test]
fn metadata_rfc5464_examples() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let caps = a.run("CAPABILITY");
    let caps = caps.starting("* CAPABILITY")[0].split(' ').collect::<Vec<_>>();
    assert!(caps.contains(&"METADATA") && caps.contains(&"METADATA-SERVER"), "{caps:?}");

    // §4.2: nothing set yet; an entry asked for by name is answered NIL.
    let got = a.run("GETMETADATA \"\" /shared/comment");
    assert!(got.ok(), "{got:?}");
    assert_eq!(got.untagged, vec!["* METADATA \"\" (/shared/comment NIL)"]);

    // §4.3: a multi-line value in a synchronising literal.
    a.client.send("s1 SETMETADATA INBOX (/private/comment {33}");
    assert!(a.client.read_line().starts_with("+ "));
    a.client.send("My new comment across\r\ntwo lines.)");
    let set = a.answer("s1");
    assert_eq!(set.done, "OK SETMETADATA completed");
    assert!(set.untagged.is_empty(), "§4.3: no METADATA response to SETMETADATA: {set:?}");
    let got = a.run("GETMETADATA \"INBOX\" /private/comment");
    assert_eq!(
        got.untagged,
        vec!["* METADATA INBOX (/private/comment {33}\r\nMy new comment across\r\ntwo lines.)"]
    );

    // §4.3: two entries at once; §4.2: read back as a list.
    let set = a.run(
        "SETMETADATA INBOX (/private/comment \"My new comment\" /shared/comment \"This one is for you!\")",
    );
    assert!(set.ok(), "{set:?}");
    let got = a.run("GETMETADATA \"INBOX\" (/shared/comment /private/comment)");
    assert_eq!(
        got.untagged,
        vec![
            "* METADATA INBOX (/private/comment \"My new comment\" /shared/comment \"This one is for you!\")"
        ]
    );

    // §4.2.1: MAXSIZE leaves out the 2199-octet value and names its size.
    let long = "x".repeat(2199);
    assert!(a.run(&format!("SETMETADATA INBOX (/shared/comment {{2199+}}\r\n{long})")).ok());
    let got = a.run("GETMETADATA \"INBOX\" (MAXSIZE 1024) (/shared/comment /private/comment)");
    assert_eq!(got.untagged, vec!["* METADATA INBOX (/private/comment \"My new comment\")"]);
    assert_eq!(got.done, "OK [METADATA LONGENTRIES 2199] GETMETADATA completed");
    // The ABNF's place for the options (before the mailbox) works the same.
    let got = a.run("GETMETADATA (MAXSIZE 1024) \"INBOX\" (/shared/comment /private/comment)");
    assert_eq!(got.done, "OK [METADATA LONGENTRIES 2199] GETMETADATA completed");
    let got = a.run("GETMETADATA (MAXSIZE 5000) INBOX /shared/comment");
    assert_eq!(got.untagged.len(), 1);
    assert_eq!(got.done, "OK GETMETADATA completed");

    // §4.2.2: DEPTH 1 reaches children, not grandchildren; infinity everything.
    let set = a.run(
        "SETMETADATA INBOX (/private/filters/values/small \"SMALLER 5000\" \
         /private/filters/values/boss \"FROM \\\"boss@example.com\\\"\" /private/filters/values/boss/deep \"x\")",
    );
    assert!(set.ok(), "{set:?}");
    let got = a.run("GETMETADATA \"INBOX\" (DEPTH 1) (/private/filters/values)");
    assert_eq!(
        got.untagged,
        vec![
            "* METADATA INBOX (/private/filters/values NIL /private/filters/values/boss \
             \"FROM \\\"boss@example.com\\\"\" /private/filters/values/small \"SMALLER 5000\")"
        ]
    );
    let got = a.run("GETMETADATA INBOX (DEPTH infinity) /private");
    assert_eq!(got.untagged.len(), 1);
    assert_eq!(got.untagged[0].matches("/private/").count(), 4, "{got:?}");

    // §4.3: NIL removes; entry names are case-insensitive (§3.2).
    assert!(a.run("SETMETADATA INBOX (/Private/Comment NIL)").ok());
    let got = a.run("GETMETADATA INBOX /PRIVATE/comment");
    assert_eq!(got.untagged, vec!["* METADATA INBOX (/private/comment NIL)"]);

    // Binary values travel as literal8 (RFC 5464 §5 `value = nstring / literal8`).
    assert!(a.run("SETMETADATA \"\" (/private/vendor/postfach/blob ~{3+}\r\na\0b)").ok());
    let got = a.run("GETMETADATA \"\" /private/vendor/postfach/blob");
    assert_eq!(got.untagged, vec!["* METADATA \"\" (/private/vendor/postfach/blob ~{3}\r\na\0b)"]);

    // Private entries are the user's own; shared ones everybody's who may read the mailbox.
    let mut b = Imap::login(&server, "bob");
    let got = b.run("GETMETADATA \"\" /private/vendor/postfach/blob");
    assert_eq!(got.untagged, vec!["* METADATA \"\" (/private/vendor/postfach/blob NIL)"]);
}

#[test]
fn metadata_limits_names_and_server_entries() {
    let server = server(
        "metadata_max_size = 1024\nmetadata_max_entries = 10\nadmins = [\"bob\"]\n\
         admin_contact = \"mailto:postmaster@example.org\"",
    );
    let mut a = Imap::login(&server, "alice");

    // §4.3: a value above the limit names the limit; nothing of the command is written.
    let big = "y".repeat(1025);
    let set = a.run(&format!("SETMETADATA INBOX (/shared/a \"ok\" /shared/b {{1025+}}\r\n{big})"));
    assert_eq!(set.done, "NO [METADATA MAXSIZE 1024] Metadata value too large");
    assert_eq!(a.run("GETMETADATA INBOX /shared/a").untagged, vec!["* METADATA INBOX (/shared/a NIL)"]);
    let exactly = "z".repeat(1024);
    assert!(a.run(&format!("SETMETADATA INBOX (/shared/b {{1024+}}\r\n{exactly})")).ok());

    // §4.3: TOOMANY past ten shared entries on one mailbox, all or nothing.
    let nine: Vec<String> = (1..=9).map(|i| format!("/shared/n{i} \"{i}\"")).collect();
    assert!(a.run(&format!("SETMETADATA INBOX ({})", nine.join(" "))).ok());
    let set = a.run("SETMETADATA INBOX (/shared/n1 \"changed\" /shared/n10 \"10\")");
    assert_eq!(set.done, "NO [METADATA TOOMANY] Too many metadata entries");
    assert_eq!(a.run("GETMETADATA INBOX /shared/n1").untagged, vec!["* METADATA INBOX (/shared/n1 \"1\")"]);
    // Replacing and removing still work at the limit; private entries are counted apart.
    assert!(a.run("SETMETADATA INBOX (/shared/n1 \"changed\" /shared/n2 NIL /shared/n10 \"10\")").ok());
    assert!(a.run("SETMETADATA INBOX (/private/comment \"mine\")").ok());

    // §3.2: invalid entry names are BAD in any command.
    for bad in [
        "GETMETADATA INBOX /shared/*",
        "GETMETADATA INBOX comment",
        "GETMETADATA INBOX /shared//x",
        "SETMETADATA INBOX (/shared/x/ \"v\")",
        "SETMETADATA INBOX (/public/x \"v\")",
        "SETMETADATA INBOX (/shared \"v\")",
        "GETMETADATA (DEPTH 2) INBOX /shared",
        "GETMETADATA (COLOUR red) INBOX /shared",
    ] {
        let answer = a.run(bad);
        assert!(answer.done.starts_with("BAD"), "{bad}: {answer:?}");
    }
    // A mailbox that does not exist.
    let got = a.run("GETMETADATA Nowhere /shared/comment");
    assert!(got.done.starts_with("NO [NONEXISTENT]"), "{got:?}");
    let set = a.run("SETMETADATA Nowhere (/shared/comment \"x\")");
    assert!(set.done.starts_with("NO [NONEXISTENT]"), "{set:?}");

    // Server entries: everybody reads; private ones are each user's; shared ones only an admin
    // writes (§3.3); /shared/admin is the configured contact and read-only (§3.2.1.1).
    let got = a.run("GETMETADATA \"\" /shared/admin");
    assert_eq!(got.untagged, vec!["* METADATA \"\" (/shared/admin \"mailto:postmaster@example.org\")"]);
    let set = a.run("SETMETADATA \"\" (/shared/comment \"hello\")");
    assert!(set.done.starts_with("NO [NOPERM]"), "{set:?}");
    assert!(a.run("SETMETADATA \"\" (/private/comment \"alice's\")").ok());
    let mut b = Imap::login(&server, "bob");
    assert!(b.run("SETMETADATA \"\" (/shared/comment \"Shared comment\")").ok());
    let set = b.run("SETMETADATA \"\" (/shared/admin \"mailto:me@example.org\")");
    assert!(set.done.starts_with("NO [NOPERM]"), "{set:?}");
    let got = a.run("GETMETADATA \"\" (DEPTH infinity) (/shared /private)");
    assert_eq!(
        got.untagged,
        vec![
            "* METADATA \"\" (/private/comment \"alice's\" /shared/admin \"mailto:postmaster@example.org\" \
             /shared/comment \"Shared comment\")"
        ]
    );
    // Before login: BAD, as for every command of the authenticated state.
    let mut anon = server.connect_tls();
    anon.read_line();
    anon.send("p GETMETADATA \"\" /shared/comment");
    assert!(anon.read_line().starts_with("p BAD"));
}

#[test]
fn metadata_needs_rights_on_shared_mailboxes() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let mut b = Imap::login(&server, "bob");
    assert!(b.run("SETMETADATA INBOX (/shared/comment \"bob's inbox\" /private/comment \"bob only\")").ok());
    let theirs = "\"Other Users/bob/INBOX\"";

    // No `l`: the mailbox does not exist for alice.
    let got = a.run(&format!("GETMETADATA {theirs} /shared/comment"));
    assert!(got.done.starts_with("NO [NONEXISTENT]"), "{got:?}");
    // `l` alone is not enough (RFC 5464 §3.3: `l` and one of `rswip`).
    assert!(b.run("SETACL INBOX alice l").ok());
    let got = a.run(&format!("GETMETADATA {theirs} /shared/comment"));
    assert!(got.done.starts_with("NO [NOPERM]"), "{got:?}");
    let set = a.run(&format!("SETMETADATA {theirs} (/private/comment \"x\")"));
    assert!(set.done.starts_with("NO [NOPERM]"), "{set:?}");
    // With `lr`: the shared entry, and alice's own private entry beside bob's.
    assert!(b.run("SETACL INBOX alice lr").ok());
    let got = a.run(&format!("GETMETADATA {theirs} (/shared/comment /private/comment)"));
    assert_eq!(
        got.untagged,
        vec!["* METADATA \"Other Users/bob/INBOX\" (/private/comment NIL /shared/comment \"bob's inbox\")"]
    );
    assert!(a.run(&format!("SETMETADATA {theirs} (/private/comment \"alice's note\")")).ok());
    let got = b.run("GETMETADATA INBOX /private/comment");
    assert_eq!(got.untagged, vec!["* METADATA INBOX (/private/comment \"bob only\")"]);
    let got = a.run(&format!("GETMETADATA {theirs} /private/comment"));
    assert_eq!(
        got.untagged,
        vec!["* METADATA \"Other Users/bob/INBOX\" (/private/comment \"alice's note\")"]
    );
}

#[test]
fn metadata_follows_rename_and_goes_with_delete() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    assert!(a.run("CREATE Projects").ok());
    assert!(a.run("SETMETADATA Projects (/shared/comment \"plans\")").ok());
    assert!(a.run("RENAME Projects Archive/Projects").ok());
    let got = a.run("GETMETADATA Archive/Projects /shared/comment");
    assert_eq!(got.untagged, vec!["* METADATA Archive/Projects (/shared/comment \"plans\")"]);
    // §4.1: renaming INBOX copies its entries; INBOX keeps them.
    assert!(a.run("SETMETADATA INBOX (/private/comment \"inbox note\")").ok());
    assert!(a.run("RENAME INBOX Old-Inbox").ok());
    for mailbox in ["INBOX", "Old-Inbox"] {
        let got = a.run(&format!("GETMETADATA {mailbox} /private/comment"));
        assert_eq!(got.untagged, vec![format!("* METADATA {mailbox} (/private/comment \"inbox note\")")]);
    }
    // §4.1: a deleted mailbox's entries go; a new one of the same name starts empty.
    assert!(a.run("DELETE Archive/Projects").ok());
    assert!(a.run("CREATE Archive/Projects").ok());
    let got = a.run("GETMETADATA Archive/Projects /shared/comment");
    assert_eq!(got.untagged, vec!["* METADATA Archive/Projects (/shared/comment NIL)"]);
}

// ---------------------------------------------------------------------------------------------
// CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267)
// ---------------------------------------------------------------------------------------------

impl Imap {
    /// Runs `command` under the client's own `tag`.
    fn tagged(&mut self, tag: &str, command: &str) -> Answer {
        self.client.send(&format!("{tag} {command}"));
        self.answer(tag)
    }

    /// APPENDs a small message with `subject` and `flags` to `mailbox`.
    fn append(&mut self, mailbox: &str, flags: &str, subject: &str) {
        let message = format!("From: a@example.org\r\nSubject: {subject}\r\n\r\n{subject}\r\n");
        let answer = self.run(&format!("APPEND {mailbox} ({flags}) {{{}+}}\r\n{message}", message.len()));
        assert!(answer.ok(), "{answer:?}");
    }
}

/// One ADDTO or REMOVEFROM item: (context position, numbers in order) pairs.
type UpdatePairs = Vec<(u32, Vec<u32>)>;

/// An ESEARCH update: the tag, whether the numbers are UIDs, the items (`true`: ADDTO).
type Update = (String, bool, Vec<(bool, UpdatePairs)>);

/// An ESEARCH response carrying context updates, read by RFC 5267 §5's grammar (strictly: a
/// line that does not follow it panics): the tag, whether the numbers are UIDs, and the items
/// in order (`true` for ADDTO, `false` for REMOVEFROM).
fn context_update(line: &str) -> Option<Update> {
    let rest = line.strip_prefix("* ESEARCH (TAG \"")?;
    let (tag, rest) = rest.split_once("\")").unwrap();
    let (uid, mut rest) = match rest.strip_prefix(" UID") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let mut items = Vec::new();
    while !rest.is_empty() {
        let (add, r) = if let Some(r) = rest.strip_prefix(" ADDTO (") {
            (true, r)
        } else if let Some(r) = rest.strip_prefix(" REMOVEFROM (") {
            (false, r)
        } else {
            return None;
        };
        let (body, r) = r.split_once(')').unwrap_or_else(|| panic!("unterminated item in {line:?}"));
        let words: Vec<&str> = body.split(' ').collect();
        assert!(!words.is_empty() && words.len().is_multiple_of(2), "position/set pairs in {line:?}");
        let mut pairs = Vec::new();
        for pair in words.chunks(2) {
            let position: u32 = pair[0].parse().unwrap_or_else(|_| panic!("context-position in {line:?}"));
            let mut numbers = Vec::new();
            for element in pair[1].split(',') {
                let (a, b) = element.split_once(':').unwrap_or((element, element));
                let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                assert!(a > 0 && b > 0, "nz-number in {line:?}");
                if a <= b { numbers.extend(a..=b) } else { numbers.extend((b..=a).rev()) }
            }
            pairs.push((position, numbers));
        }
        items.push((add, pairs));
        rest = r;
    }
    Some((tag.to_owned(), uid, items))
}

/// Applies the updates for `tag` in `answer` to `result` as RFC 5267 §4.3.3–4 say; returns how
/// many ESEARCH update responses there were. A REMOVEFROM at a position must find its numbers
/// there. For a context of message numbers, each `* n EXPUNGE` renumbers the result, as a
/// client does.
fn apply_updates(answer: &Answer, tag: &str, by_number: bool, result: &mut Vec<u32>) -> usize {
    let mut seen = 0;
    for line in &answer.untagged {
        if let (true, Some(n)) = (by_number, line.strip_prefix("* ").and_then(|l| l.strip_suffix(" EXPUNGE")))
        {
            let n: u32 = n.parse().unwrap();
            assert!(!result.contains(&n), "{line}: still in the result {result:?}");
            result.iter_mut().filter(|m| **m > n).for_each(|m| *m -= 1);
            continue;
        }
        let Some((t, uid, items)) = context_update(line) else { continue };
        assert!(t != tag || uid != by_number, "{line}: UID or not as the context asked");
        if t != tag {
            continue;
        }
        seen += 1;
        for (add, pairs) in items {
            for (position, numbers) in pairs {
                match (add, position) {
                    (true, 0) => {
                        result.extend(numbers);
                        result.sort_unstable();
                    }
                    (true, p) => {
                        let at = p as usize - 1;
                        assert!(at <= result.len(), "{line}: position {p} past {result:?}");
                        result.splice(at..at, numbers);
                    }
                    (false, 0) => result.retain(|n| !numbers.contains(n)),
                    (false, p) => {
                        let at = p as usize - 1;
                        for n in numbers {
                            assert_eq!(result.get(at), Some(&n), "{line}: REMOVEFROM position in {result:?}");
                            result.remove(at);
                        }
                    }
                }
            }
        }
    }
    seen
}

/// The numbers of `* ESEARCH ... ALL set` (none when ALL is absent), in the order written.
fn esearch_all(answer: &Answer) -> Vec<u32> {
    let line = answer.starting("* ESEARCH")[0];
    let Some((_, set)) = line.split_once(" ALL ") else { return Vec::new() };
    let set = set.split(' ').next().unwrap();
    let mut numbers = Vec::new();
    for element in set.split(',') {
        let (a, b) = element.split_once(':').unwrap_or((element, element));
        numbers.extend(a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap());
    }
    numbers
}

#[test]
fn context_search_updates_rfc5267() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let caps = a.run("CAPABILITY");
    assert!(caps.untagged[0].contains(" CONTEXT=SEARCH") && caps.untagged[0].contains(" CONTEXT=SORT"));
    for i in 1..=3 {
        a.append("INBOX", "", &format!("m{i}"));
    }
    assert!(a.run("SELECT INBOX").ok());
    let mut b = Imap::login(&server, "alice");
    assert!(b.run("SELECT INBOX").ok());

    // §4.2: CONTEXT is a hint; the answer is as without it.
    let got = a.tagged("A01", "SEARCH RETURN (CONTEXT COUNT) UNDELETED UNKEYWORD $Junk");
    assert_eq!(got.untagged, vec!["* ESEARCH (TAG \"A01\") COUNT 3"]);
    // §4.3's example, then the tag may not be reused while it updates.
    let got = a.tagged("B01", "UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk");
    assert_eq!(got.untagged, vec!["* ESEARCH (TAG \"B01\") UID COUNT 0"]);
    let reuse = a.tagged("B01", "SORT RETURN (UPDATE) (DATE) UTF-8 FLAGGED");
    assert!(reuse.done.starts_with("BAD"), "{reuse:?}");
    let mut deleted_junk: Vec<u32> = Vec::new();
    // A sequence-number context: only UPDATE, so ALL is answered too.
    let got = a.tagged("C01", "SEARCH RETURN (UPDATE) UNSEEN");
    let mut unseen = esearch_all(&got);
    assert_eq!(unseen, vec![1, 2, 3]);

    // PARTIAL (RFC 9394) answers a window; UPDATE still reports every change (RFC 5267 §4.4).
    let got = a.tagged("P01", "UID SEARCH RETURN (UPDATE PARTIAL 1:1) UNDELETED");
    assert_eq!(got.untagged, vec!["* ESEARCH (TAG \"P01\") UID PARTIAL (1:1 1)"]);
    let mut undeleted = vec![1, 2, 3];

    // Another session's flag change: the FETCH, then ADDTO (§4.3.3's example).
    assert!(b.run("UID STORE 2 +FLAGS (\\Deleted $Junk)").ok());
    let noop = a.run("NOOP");
    let fetch = noop.untagged.iter().position(|l| l.starts_with("* 2 FETCH")).expect("the FETCH");
    let addto =
        noop.untagged.iter().position(|l| l.contains("(TAG \"B01\") UID ADDTO (0 2)")).expect("ADDTO");
    assert!(fetch < addto, "{noop:?}");
    assert_eq!(apply_updates(&noop, "B01", false, &mut deleted_junk), 1);
    assert_eq!(apply_updates(&noop, "C01", true, &mut unseen), 0);
    // Message 2 lies outside the PARTIAL window; its removal is reported all the same.
    assert!(noop.untagged.contains(&"* ESEARCH (TAG \"P01\") UID REMOVEFROM (0 2)".to_owned()), "{noop:?}");
    apply_updates(&noop, "P01", false, &mut undeleted);
    assert_eq!(undeleted, vec![1, 3]);

    // This session's own change is reported too, before the tagged OK.
    let store = a.run("STORE 3 +FLAGS (\\Deleted $Junk \\Seen)");
    assert_eq!(apply_updates(&store, "B01", false, &mut deleted_junk), 1);
    assert!(store.untagged.contains(&"* ESEARCH (TAG \"C01\") REMOVEFROM (0 3)".to_owned()), "{store:?}");
    apply_updates(&store, "C01", true, &mut unseen);

    // A new message that matches: ADDTO after the EXISTS.
    b.append("INBOX", "\\Deleted $Junk", "m4");
    let noop = a.run("NOOP");
    let exists = noop.untagged.iter().position(|l| l == "* 4 EXISTS").expect("EXISTS");
    let addto =
        noop.untagged.iter().position(|l| l.contains("(TAG \"B01\") UID ADDTO (0 4)")).expect("ADDTO");
    assert!(exists < addto, "{noop:?}");
    apply_updates(&noop, "B01", false, &mut deleted_junk);
    assert!(noop.untagged.contains(&"* ESEARCH (TAG \"C01\") ADDTO (0 4)".to_owned()), "{noop:?}");
    apply_updates(&noop, "C01", true, &mut unseen);

    // An expunge: REMOVEFROM before the EXPUNGE (§4.3.4), while number 2 still means UID 2.
    assert!(b.run("UID EXPUNGE 2").ok());
    let noop = a.run("NOOP");
    let removefrom = noop
        .untagged
        .iter()
        .position(|l| l == "* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 2)")
        .expect("REMOVEFROM");
    let expunge = noop.untagged.iter().position(|l| l == "* 2 EXPUNGE").expect("EXPUNGE");
    assert!(removefrom < expunge, "{noop:?}");
    apply_updates(&noop, "B01", false, &mut deleted_junk);
    apply_updates(&noop, "C01", true, &mut unseen);
    // A flag taken away: no longer a match.
    assert!(b.run("UID STORE 3 -FLAGS ($Junk)").ok());
    let noop = a.run("NOOP");
    apply_updates(&noop, "B01", false, &mut deleted_junk);
    apply_updates(&noop, "C01", true, &mut unseen);
    // The result as kept by the updates is the result of searching again.
    let again = a.run("UID SEARCH RETURN (ALL) DELETED KEYWORD $Junk");
    assert_eq!(deleted_junk, esearch_all(&again));
    assert_eq!(deleted_junk, vec![4]);
    let again = a.run("SEARCH RETURN (ALL) UNSEEN");
    assert_eq!(unseen, esearch_all(&again));

    // Updates also flow during IDLE.
    a.client.send("I1 IDLE");
    assert!(a.client.read_line().starts_with("+ "));
    assert!(b.run("UID STORE 1 +FLAGS (\\Deleted $Junk)").ok());
    let mut idle = Vec::new();
    while !idle.iter().any(|l: &String| l.contains("TAG \"B01\"")) {
        idle.push(a.client.read_line());
    }
    a.client.send("DONE");
    let done = a.answer("I1");
    assert!(done.ok(), "{done:?}");
    assert!(idle.contains(&"* ESEARCH (TAG \"B01\") UID ADDTO (0 1)".to_owned()), "{idle:?}");

    // §4.3.5: CANCELUPDATE ends the updates; an unknown tag is a client error.
    assert!(a.tagged("B04", "CANCELUPDATE \"B01\"").ok());
    assert!(b.run("UID STORE 4 -FLAGS ($Junk)").ok());
    let noop = a.run("NOOP");
    assert!(!noop.untagged.iter().any(|l| l.contains("TAG \"B01\"")), "{noop:?}");
    assert!(a.tagged("B05", "CANCELUPDATE \"B01\"").done.starts_with("BAD"));
    // The tag is free again.
    assert!(a.tagged("B01", "SEARCH RETURN (UPDATE COUNT) ALL").ok());

    // §4.3.1: past the limit, NO [NOUPDATE] and the search still answered.
    for i in 0..6 {
        assert!(a.tagged(&format!("L{i}"), "UID SEARCH RETURN (UPDATE) ALL").ok());
    }
    let refused = a.tagged("L9", "UID SEARCH RETURN (UPDATE COUNT) ALL");
    assert!(refused.ok(), "{refused:?}");
    assert!(refused.untagged.iter().any(|l| l.starts_with("* NO [NOUPDATE \"L9\"]")), "{refused:?}");
    assert!(
        refused.untagged.iter().any(|l| l.starts_with("* ESEARCH (TAG \"L9\") UID COUNT")),
        "{refused:?}"
    );

    // Updates end with the selection (RFC 5267 §4.3).
    assert!(a.run("UNSELECT").ok());
    assert!(a.run("SELECT INBOX").ok());
    assert!(b.run("UID STORE 4 +FLAGS ($Junk)").ok());
    let noop = a.run("NOOP");
    assert!(!noop.untagged.iter().any(|l| l.starts_with("* ESEARCH")), "{noop:?}");
}

#[test]
fn context_sort_updates_keep_the_order() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    for subject in ["b", "d", "f"] {
        a.append("INBOX", "", subject);
    }
    assert!(a.run("SELECT INBOX").ok());
    let mut b = Imap::login(&server, "alice");
    assert!(b.run("SELECT INBOX").ok());

    let got = a.tagged("S1", "UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 ALL");
    let mut by_subject = esearch_all(&got);
    assert_eq!(by_subject, vec![1, 2, 3]);
    let got = a.tagged("S2", "SORT RETURN (UPDATE) (REVERSE SUBJECT) UTF-8 UNDELETED");
    let mut reversed = esearch_all(&got);
    assert_eq!(reversed, vec![3, 2, 1]);

    // One new message: placed by position (§4.3.3).
    b.append("INBOX", "", "c");
    let noop = a.run("NOOP");
    assert!(noop.untagged.contains(&"* ESEARCH (TAG \"S1\") UID ADDTO (2 4)".to_owned()), "{noop:?}");
    assert!(noop.untagged.contains(&"* ESEARCH (TAG \"S2\") ADDTO (3 4)".to_owned()), "{noop:?}");
    apply_updates(&noop, "S1", false, &mut by_subject);
    apply_updates(&noop, "S2", true, &mut reversed);

    // Two at the ends, then many at once (one sort instead of placing each).
    b.append("INBOX", "", "a");
    b.append("INBOX", "", "z");
    let noop = a.run("NOOP");
    apply_updates(&noop, "S1", false, &mut by_subject);
    apply_updates(&noop, "S2", true, &mut reversed);
    assert_eq!(by_subject, vec![5, 1, 4, 2, 3, 6]);
    let many: Vec<String> = ["q", "e", "k", "a2", "y", "m", "g", "t", "h", "w", "bb", "ee"]
        .iter()
        .map(|s| {
            let m = format!("From: a@example.org\r\nSubject: {s}\r\n\r\n{s}\r\n");
            format!("{{{}+}}\r\n{m}", m.len())
        })
        .collect();
    assert!(b.run(&format!("APPEND INBOX {}", many.join(" "))).ok());
    let noop = a.run("NOOP");
    apply_updates(&noop, "S1", false, &mut by_subject);
    apply_updates(&noop, "S2", true, &mut reversed);
    assert_eq!(by_subject, esearch_all(&a.run("UID SORT RETURN (ALL) (SUBJECT) UTF-8 ALL")));
    assert_eq!(reversed, esearch_all(&a.run("SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 UNDELETED")));

    // Removals at their positions: an expunge, and a message that stops matching.
    assert!(b.run("UID STORE 4 +FLAGS.SILENT (\\Deleted)").ok());
    assert!(b.run("UID EXPUNGE 4").ok());
    assert!(b.run("UID STORE 2 +FLAGS (\\Deleted)").ok());
    let noop = a.run("NOOP");
    let removefrom =
        noop.untagged.iter().position(|l| l.starts_with("* ESEARCH (TAG \"S1\") UID REMOVEFROM (5 4)"));
    let expunge = noop.untagged.iter().position(|l| l == "* 4 EXPUNGE");
    assert!(removefrom.is_some() && removefrom < expunge, "{noop:?}");
    apply_updates(&noop, "S1", false, &mut by_subject);
    apply_updates(&noop, "S2", true, &mut reversed);
    assert_eq!(by_subject, esearch_all(&a.run("UID SORT RETURN (ALL) (SUBJECT) UTF-8 ALL")));
    assert_eq!(reversed, esearch_all(&a.run("SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 UNDELETED")));
}

// ---------------------------------------------------------------------------------------------
// MULTISEARCH (RFC 7377)
// ---------------------------------------------------------------------------------------------

/// One `* ESEARCH (TAG "t" MAILBOX m UIDVALIDITY n) UID ...` response read by RFC 7377 §4 (each
/// correlator once, UIDVALIDITY non-zero, `UID` always; the result items as RFC 4731 writes
/// them): (tag, mailbox, result items text).
fn multisearch(line: &str) -> Option<(String, String, String)> {
    let rest = line.strip_prefix("* ESEARCH (TAG \"")?;
    let (tag, rest) = rest.split_once('"').unwrap();
    let rest = rest.strip_prefix(" MAILBOX ").unwrap_or_else(|| panic!("MAILBOX correlator in {line:?}"));
    let (mailbox, rest) = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split_once('"').unwrap(),
        None => rest.split_once(' ').unwrap(),
    };
    let rest =
        rest.trim_start().strip_prefix("UIDVALIDITY ").unwrap_or_else(|| panic!("UIDVALIDITY in {line:?}"));
    let (validity, rest) = rest.split_once(')').unwrap();
    assert!(validity.parse::<u32>().unwrap() > 0, "nz-number UIDVALIDITY in {line:?}");
    let items = rest.strip_prefix(" UID").unwrap_or_else(|| panic!("UID in {line:?}"));
    let mut words = items.split_whitespace();
    while let Some(word) = words.next() {
        match word {
            "MIN" | "MAX" | "COUNT" | "MODSEQ" => {
                assert!(words.next().unwrap().parse::<u64>().is_ok(), "{line:?}")
            }
            "ALL" | "ADDTO" | "REMOVEFROM" | "PARTIAL" => {
                words.next().unwrap();
            }
            // The rest of an ADDTO/REMOVEFROM/PARTIAL list.
            w if w.ends_with(')') || w.chars().all(|c| c.is_ascii_digit() || c == ':' || c == ',') => {}
            w => panic!("unexpected {w:?} in {line:?}"),
        }
    }
    Some((tag.to_owned(), mailbox.to_owned(), items.trim().to_owned()))
}

/// (mailbox, result items) of the MULTISEARCH responses of an answer, in order.
fn per_mailbox(answer: &Answer) -> Vec<(String, String)> {
    answer.untagged.iter().filter_map(|l| multisearch(l)).map(|(_, m, items)| (m, items)).collect()
}

#[test]
fn multisearch_rfc7377() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    assert!(a.run("CAPABILITY").untagged[0].contains(" MULTISEARCH"));
    for mailbox in ["folder1", "folder2", "folder2/banana", "folder2/peach", "folder2/peach/pit", "folder3"] {
        assert!(a.run(&format!("CREATE {mailbox}")).ok());
    }
    a.append("folder1", "", "one");
    a.append("folder1", "", "two chad");
    a.append("folder1", "\\Seen", "three");
    a.append("folder2/banana", "", "chad");
    a.append("folder2/peach", "\\Seen", "chad");
    a.append("folder2/peach/pit", "", "deep");

    // §3's examples, in the authenticated state: only mailboxes with matches answer.
    let got = a.tagged("tag1", "ESEARCH IN (mailboxes \"folder1\" subtree \"folder2\") unseen");
    assert!(got.ok(), "{got:?}");
    assert_eq!(
        per_mailbox(&got),
        vec![
            ("folder1".to_owned(), "ALL 1:2".to_owned()),
            ("folder2/banana".to_owned(), "ALL 1".to_owned()),
            ("folder2/peach/pit".to_owned(), "ALL 1".to_owned()),
        ]
    );
    assert!(got.untagged.iter().all(|l| l.starts_with("* ESEARCH (TAG \"tag1\" MAILBOX ")), "{got:?}");
    let got = a.tagged("tag2", "ESEARCH IN (mailboxes \"folder1\" subtree-one \"folder2\") subject \"chad\"");
    assert_eq!(
        per_mailbox(&got),
        vec![
            ("folder1".to_owned(), "ALL 2".to_owned()),
            ("folder2/banana".to_owned(), "ALL 1".to_owned()),
            ("folder2/peach".to_owned(), "ALL 1".to_owned()),
        ]
    );
    // No match anywhere: no untagged response at all (§2.1).
    let got = a.run("ESEARCH IN (personal) SUBJECT \"nothing like this\"");
    assert!(got.ok() && got.untagged.is_empty(), "{got:?}");
    // Result options apply per mailbox; sequence numbers are positions in a mailbox.
    let got = a.run("ESEARCH IN (subtree folder1 mailboxes folder1) RETURN (MIN MAX COUNT) 2:*");
    assert_eq!(per_mailbox(&got), vec![("folder1".to_owned(), "MIN 2 MAX 3 COUNT 2".to_owned())]);
    let got = a.run("ESEARCH IN (personal) RETURN (COUNT) ALL");
    let counted: Vec<(String, String)> = per_mailbox(&got);
    assert_eq!(counted.len(), 4, "{got:?}");
    assert!(counted.contains(&("folder1".to_owned(), "COUNT 3".to_owned())));

    // §2.2: `selected` (the default) needs a selected mailbox; SAVE only with it alone; UPDATE
    // only with it.
    for bad in [
        "ESEARCH ALL",
        "ESEARCH IN (selected) ALL",
        "ESEARCH IN (personal) RETURN (SAVE) ALL",
        "ESEARCH IN (personal) RETURN (UPDATE) ALL",
    ] {
        let answer = a.run(bad);
        assert!(answer.done.starts_with("BAD"), "{bad}: {answer:?}");
    }
    // Names that name nothing readable are skipped without a word.
    let mut b = Imap::login(&server, "bob");
    b.append("INBOX", "", "bob's chad");
    let got = a.run("ESEARCH IN (mailboxes (Nowhere \"Other Users/bob/INBOX\")) ALL");
    assert!(got.ok() && got.untagged.is_empty(), "{got:?}");
    assert!(b.run("SETACL INBOX alice l").ok());
    let got = a.run("ESEARCH IN (mailboxes \"Other Users/bob/INBOX\") ALL");
    assert!(got.ok() && got.untagged.is_empty(), "`l` without `r`: {got:?}");
    assert!(b.run("SETACL INBOX alice lr").ok());
    let got =
        a.run("ESEARCH IN (mailboxes \"Other Users/bob/INBOX\" subtree \"Other Users/bob\") subject chad");
    assert_eq!(per_mailbox(&got), vec![("Other Users/bob/INBOX".to_owned(), "ALL 1".to_owned())]);

    // With a mailbox selected: it is searched once, its `$` and SAVE work, and UPDATE's
    // notifications carry the correlators too.
    assert!(a.run("SELECT folder1").ok());
    let got = a.run("ESEARCH IN (selected personal) RETURN (MIN) UNSEEN");
    let folder1: Vec<_> = per_mailbox(&got).into_iter().filter(|(m, _)| m == "folder1").collect();
    assert_eq!(folder1, vec![("folder1".to_owned(), "MIN 1".to_owned())]);
    assert!(a.run("ESEARCH RETURN (SAVE) UNSEEN").ok());
    let got = a.run("ESEARCH $");
    assert_eq!(per_mailbox(&got), vec![("folder1".to_owned(), "ALL 1:2".to_owned())]);
    assert!(a.run("ESEARCH IN (mailboxes folder2/banana) $").done.starts_with("BAD"));
    let got = a.tagged("U1", "ESEARCH IN (selected) RETURN (UPDATE COUNT) UNSEEN");
    assert_eq!(per_mailbox(&got), vec![("folder1".to_owned(), "COUNT 2".to_owned())]);
    b.run("LOGOUT");
    let mut c = Imap::login(&server, "alice");
    c.append("folder1", "", "four");
    let noop = a.run("NOOP");
    let update = noop.untagged.iter().find_map(|l| multisearch(l)).expect("an update");
    assert_eq!(update, ("U1".to_owned(), "folder1".to_owned(), "ADDTO (0 4)".to_owned()), "{noop:?}");
}

// ---------------------------------------------------------------------------------------------
// UIDONLY (RFC 9586)
// ---------------------------------------------------------------------------------------------

/// True for `* uid UIDFETCH (...)` as RFC 9586 §5 writes it (`uniqueid SP "UIDFETCH" SP msg-att`).
fn is_uidfetch(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("* ") else { return false };
    let Some((uid, rest)) = rest.split_once(' ') else { return false };
    uid.parse::<u32>().is_ok_and(|u| u > 0) && rest.starts_with("UIDFETCH (") && rest.ends_with(')')
}

#[test]
fn uidonly_rfc9586() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    assert!(a.run("CAPABILITY").untagged[0].contains(" UIDONLY"));
    for i in 1..=4 {
        a.append("INBOX", "", &format!("m{i}"));
    }
    assert!(a.run("SELECT INBOX").ok());
    // A search that reports message numbers ends with ENABLE UIDONLY; one by UID goes on.
    assert!(a.tagged("N1", "SEARCH RETURN (UPDATE) UNFLAGGED").ok());
    assert!(a.tagged("U1", "UID SEARCH RETURN (UPDATE) UNFLAGGED").ok());
    let enabled = a.run("ENABLE UIDONLY");
    assert_eq!(enabled.untagged, vec!["* ENABLED UIDONLY"]);

    // §3: every command with message numbers is BAD [UIDREQUIRED].
    for numbered in [
        "FETCH 1 FLAGS",
        "STORE 1 +FLAGS (\\Seen)",
        "COPY 1 Archive",
        "MOVE 1 Archive",
        "SEARCH ALL",
        "SORT (DATE) UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
        "UID SEARCH 1:2",
        "UID SEARCH NOT 1",
        "ESEARCH IN (personal) 1:2",
    ] {
        let answer = a.run(numbered);
        assert!(answer.done.starts_with("BAD [UIDREQUIRED]"), "{numbered}: {answer:?}");
        assert!(answer.untagged.is_empty(), "{numbered}: {answer:?}");
    }

    // §3.3: UIDFETCH instead of FETCH; the UID item only when asked for.
    let got = a.run("UID FETCH 1:* FLAGS");
    assert_eq!(got.untagged.len(), 4, "{got:?}");
    assert!(got.untagged.iter().all(|l| is_uidfetch(l) && !l.contains("(UID ")), "{got:?}");
    assert_eq!(got.untagged[1], "* 2 UIDFETCH (FLAGS (\\Recent))");
    let got = a.run("UID FETCH 2 (UID FLAGS)");
    assert_eq!(got.untagged, vec!["* 2 UIDFETCH (UID 2 FLAGS (\\Recent))"]);
    let store = a.run("UID STORE 2 +FLAGS (\\Seen)");
    assert_eq!(store.untagged, vec!["* 2 UIDFETCH (FLAGS (\\Seen \\Recent))"]);
    // UIDs in searches work, and so does the saved result.
    let got = a.run("UID SEARCH RETURN (SAVE) UID 2:3");
    assert!(got.ok(), "{got:?}");
    let got = a.tagged("S1", "UID SEARCH RETURN (ALL) $");
    assert_eq!(got.untagged, vec!["* ESEARCH (TAG \"S1\") UID ALL 2:3"]);

    // Another session's changes: UIDFETCH and VANISHED, never FETCH or EXPUNGE.
    let mut b = Imap::login(&server, "alice");
    assert!(b.run("SELECT INBOX").ok());
    assert!(b.run("UID STORE 3 +FLAGS (\\Flagged)").ok());
    assert!(b.run("UID STORE 1 +FLAGS (\\Deleted)").ok());
    assert!(b.run("UID EXPUNGE 1").ok());
    let noop = a.run("NOOP");
    assert!(noop.untagged.contains(&"* VANISHED 1".to_owned()), "{noop:?}");
    for uid in [1, 3] {
        let removed = format!("* ESEARCH (TAG \"U1\") UID REMOVEFROM (0 {uid})");
        assert!(noop.untagged.contains(&removed), "{noop:?}");
    }
    assert!(!noop.untagged.iter().any(|l| l.contains("\"N1\"")), "{noop:?}");
    assert!(noop.untagged.contains(&"* 3 UIDFETCH (FLAGS (\\Flagged \\Recent))".to_owned()), "{noop:?}");
    assert!(!noop.untagged.iter().any(|l| l.contains(" FETCH ") || l.ends_with(" EXPUNGE")), "{noop:?}");
    // This session's own EXPUNGE too; EXISTS (a count) is still sent for new mail.
    assert!(a.run("UID STORE 4 +FLAGS.SILENT (\\Deleted)").ok());
    let expunge = a.run("EXPUNGE");
    assert_eq!(expunge.untagged, vec!["* ESEARCH (TAG \"U1\") UID REMOVEFROM (0 4)", "* VANISHED 4"]);
    b.append("INBOX", "", "m5");
    let noop = a.run("NOOP");
    assert!(noop.untagged.contains(&"* 3 EXISTS".to_owned()), "{noop:?}");
    // SELECT: no [UNSEEN n], which names a message number; QRESYNC's sequence match is BAD.
    let select = a.run("SELECT INBOX");
    assert!(select.ok() && !select.untagged.iter().any(|l| l.contains("[UNSEEN")), "{select:?}");
    assert!(a.run("ENABLE QRESYNC").ok());
    let qresync = a.run("SELECT INBOX (QRESYNC (1 1 (1,2 2,3)))");
    assert!(qresync.done.starts_with("BAD [UIDREQUIRED]"), "{qresync:?}");
    // Without UIDONLY, the same session shape still gets numbers.
    let got = b.run("FETCH 1 FLAGS");
    assert!(got.ok() && got.untagged[0].starts_with("* 1 FETCH"), "{got:?}");
}

// ---------------------------------------------------------------------------------------------
// INPROGRESS (RFC 9585)
// ---------------------------------------------------------------------------------------------

#[test]
fn inprogress_rfc9585() {
    // Progress at every step, so that a small test sees it.
    let server = server("progress_interval = 0");
    let mut a = Imap::login(&server, "alice");
    assert!(a.run("CAPABILITY").untagged[0].contains(" INPROGRESS"));
    let messages: Vec<String> = (1..=300)
        .map(|i| {
            let m = format!("From: a@example.org\r\nSubject: n{i}\r\n\r\nbody {i}\r\n");
            format!("{{{}+}}\r\n{m}", m.len())
        })
        .collect();
    assert!(a.run(&format!("APPEND INBOX {}", messages.join(" "))).ok());
    assert!(a.run("SELECT INBOX").ok());

    // FETCH counts its messages: 256 done of 300 between its two chunks, before the last FETCH.
    let fetch = a.tagged("P1", "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(fetch.ok(), "{}", fetch.done);
    let progress: Vec<&str> = fetch.starting("* OK [INPROGRESS");
    assert_eq!(progress, vec!["* OK [INPROGRESS (\"P1\" 256 300)] Still working"]);
    let at = fetch.untagged.iter().position(|l| l.starts_with("* OK [INPROGRESS")).unwrap();
    assert_eq!(at, 256, "after the first chunk's 256 FETCH responses");
    // A search or a MOVE waits for one store call: state unknown (NIL NIL).
    let search = a.tagged("P2", "UID SEARCH RETURN (COUNT) ALL");
    assert_eq!(
        search.untagged,
        vec!["* OK [INPROGRESS (\"P2\" NIL NIL)] Still working", "* ESEARCH (TAG \"P2\") UID COUNT 300"]
    );
    let sort = a.tagged("P3", "UID SORT RETURN (MIN) (SUBJECT) UTF-8 ALL");
    assert_eq!(
        sort.starting("* OK [INPROGRESS"),
        vec!["* OK [INPROGRESS (\"P3\" NIL NIL)] Still working"; 2]
    );
    let moved = a.tagged("P4", "UID MOVE 1:10 Archive");
    assert!(moved.ok());
    assert_eq!(moved.starting("* OK [INPROGRESS"), vec!["* OK [INPROGRESS (\"P4\" NIL NIL)] Still working"]);
    // A search over the six personal mailboxes counts them.
    let multi = a.tagged("P5", "ESEARCH IN (personal) RETURN (COUNT) ALL");
    let steps: Vec<&str> = multi.starting("* OK [INPROGRESS");
    assert_eq!(steps.len(), 5, "{multi:?}");
    assert_eq!(steps[0], "* OK [INPROGRESS (\"P5\" 1 6)] Still working");
    assert_eq!(steps[4], "* OK [INPROGRESS (\"P5\" 5 6)] Still working");

    // With the default interval (10 s) these small commands report nothing.
    let quiet = self::server("");
    let mut q = Imap::login(&quiet, "alice");
    q.append("INBOX", "", "one");
    assert!(q.run("SELECT INBOX").ok());
    let search = q.run("UID SEARCH ALL");
    assert!(search.starting("* OK [INPROGRESS").is_empty(), "{search:?}");
}
