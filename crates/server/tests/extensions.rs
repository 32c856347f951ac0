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

use common::{Client, TestServer, Wire};
use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder;

const PASSWORD: &str = "metadata pw";

/// A logged-in connection that runs one command at a time.
struct Imap {
    client: Client,
    next: u32,
}

/// The answer to one command.
#[derive(Debug)]
struct Answer {
    /// Untagged responses, literal data folded in (`{n}\r\n<data>` kept as on the wire).
    untagged: Vec<String>,
    /// The tagged line without its tag: `OK [METADATA LONGENTRIES 2199] GETMETADATA completed`.
    done: String,
}

impl Answer {
    fn ok(&self) -> bool {
        self.done.starts_with("OK")
    }

    /// The untagged responses starting with `prefix`.
    fn starting(&self, prefix: &str) -> Vec<&str> {
        self.untagged.iter().filter(|l| l.starts_with(prefix)).map(String::as_str).collect()
    }
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
    let known = response.starts_with("* METADATA ") || !response.starts_with('*');
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
