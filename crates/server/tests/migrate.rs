//! Moving mail in and out (issue 14), driving the real binary: `postfach export` / `import`
//! round trips compared field by field over IMAP and the CLI, incremental exports, imports onto
//! an account that has mail, and the importers from Maildir, mbox and IMAP (against a real
//! Dovecot, with an mbsync state that must stay valid).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use common::{Client, Session, TestServer};

const PASSWORD: &str = "secret pass";

fn login(server: &TestServer, user: &str) -> Session<Client> {
    let mut client = server.connect_tls();
    client.read_line();
    let mut session = Session::new(client);
    session.ok(&format!("LOGIN {user} \"{PASSWORD}\""));
    session
}

fn mail(id: &str, subject: &str) -> String {
    format!(
        "From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\
         Date: Thu, 3 Mar 2022 12:00:00 +0000\r\nMessage-ID: <{id}@migrate.test>\r\n\r\nBody of {subject}.\r\n"
    )
}

fn append(s: &mut Session<Client>, mailbox: &str, flags: &str, date: &str, message: &str) {
    s.ok(&format!("APPEND \"{mailbox}\" ({flags}) \"{date}\" {{{}+}}\r\n{message}", message.len()));
}

fn success(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cli(server: &TestServer, args: &[&str]) -> String {
    success(&server.cli(args, ""), &args.join(" "))
}

/// Every mailbox name of the logged-in user (personal namespace only).
fn mailboxes(s: &mut Session<Client>) -> Vec<String> {
    s.mailboxes()
        .into_iter()
        .filter(|m| !m.starts_with("Other Users/") && !m.starts_with("Shared/"))
        .collect()
}

/// A number after `key ` in `line` (`UIDVALIDITY 123`).
fn number(line: &str, key: &str) -> u64 {
    let at = line.find(&format!("{key} ")).unwrap_or_else(|| panic!("no {key} in {line}"));
    line[at + key.len() + 1..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

/// What a client can see of one mailbox: STATUS counters, and every message's UID, FLAGS,
/// INTERNALDATE, MODSEQ, SAVEDATE, EMAILID and bytes.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    uid_validity: u64,
    uid_next: u64,
    highest_modseq: u64,
    messages: Vec<String>,
    vanished: Vec<String>,
}

fn look(s: &mut Session<Client>, mailbox: &str) -> Seen {
    let status = s.ok(&format!("STATUS \"{mailbox}\" (UIDVALIDITY UIDNEXT HIGHESTMODSEQ MESSAGES)"));
    let status = status.iter().find(|l| l.starts_with("* STATUS")).unwrap().clone();
    let uid_validity = number(&status, "UIDVALIDITY");
    // QRESYNC from MODSEQ 1: every expunge the mailbox remembers comes as VANISHED (EARLIER).
    let selected = s.ok(&format!("EXAMINE \"{mailbox}\" (QRESYNC ({uid_validity} 1))"));
    let vanished = selected.iter().filter(|l| l.starts_with("* VANISHED")).cloned().collect();
    let messages = s
        .ok("UID FETCH 1:* (UID FLAGS INTERNALDATE MODSEQ SAVEDATE EMAILID BODY.PEEK[])")
        .into_iter()
        .filter(|l| l.contains(" FETCH "))
        // Sequence numbers may differ only if UIDs do; compare from the attributes on.
        // \Recent is a session's, not the message's (never exported).
        .map(|l| {
            l.split_once(" FETCH ")
                .unwrap()
                .1
                .replace(" \\Recent", "")
                .replace("(\\Recent ", "(")
                .replace("(\\Recent)", "()")
        })
        .collect();
    s.ok("UNSELECT");
    Seen {
        uid_validity,
        uid_next: number(&status, "UIDNEXT"),
        highest_modseq: number(&status, "HIGHESTMODSEQ"),
        messages,
        vanished,
    }
}

fn look_all(s: &mut Session<Client>) -> BTreeMap<String, Seen> {
    s.ok("ENABLE QRESYNC");
    mailboxes(s).into_iter().map(|m| (m.clone(), look(s, &m))).collect()
}

/// Every field matches; HIGHESTMODSEQ is at least the source's.
fn assert_same(source: &BTreeMap<String, Seen>, target: &BTreeMap<String, Seen>) {
    assert_eq!(source.keys().collect::<Vec<_>>(), target.keys().collect::<Vec<_>>(), "mailbox lists");
    for (name, a) in source {
        let b = &target[name];
        assert_eq!(
            (a.uid_validity, a.uid_next),
            (b.uid_validity, b.uid_next),
            "{name}: UIDVALIDITY, UIDNEXT"
        );
        assert!(
            b.highest_modseq >= a.highest_modseq,
            "{name}: HIGHESTMODSEQ {} < {}",
            b.highest_modseq,
            a.highest_modseq
        );
        assert_eq!(a.messages, b.messages, "{name}: messages");
        assert_eq!(a.vanished, b.vanished, "{name}: VANISHED (EARLIER) from modseq 1");
    }
}

/// Fills alice's account on `a` with everything the format carries.
fn fill(a: &TestServer, dir: &Path) {
    a.add_user("alice", PASSWORD);
    a.add_user("bob", PASSWORD);
    let mut s = login(a, "alice");
    s.ok("CREATE Projects/2026");
    s.ok("CREATE Lists");
    append(&mut s, "INBOX", "\\Seen $Forwarded Project-X", "30-Nov-2025 08:15:02 +0100", &mail("m1", "one"));
    append(&mut s, "INBOX", "", "01-Jan-2024 23:59:59 -0530", &mail("m2", "two"));
    append(&mut s, "INBOX", "\\Flagged \\Answered", "15-Jul-2023 12:00:00 +0000", &mail("m3", "three"));
    append(&mut s, "INBOX", "\\Draft", "15-Jul-2023 12:00:01 +0000", &mail("m4", "four"));
    append(&mut s, "INBOX", "$Junk", "16-Jul-2023 12:00:01 +0200", &mail("m5", "five"));
    append(&mut s, "Projects/2026", "\\Seen", "02-Feb-2026 10:00:00 +0100", &mail("p1", "plan"));
    append(&mut s, "Projects/2026", "", "02-Feb-2026 10:00:01 +0100", &mail("p2", "plan two"));
    append(&mut s, "Projects", "", "03-Feb-2026 10:00:01 +0100", &mail("q1", "shared one"));
    append(&mut s, "Projects", "", "03-Feb-2026 10:00:02 +0100", &mail("q2", "shared two"));
    append(&mut s, "Sent", "\\Seen", "04-Feb-2026 10:00:02 +0100", &mail("s1", "sent"));
    // Expunges: the history QRESYNC needs.
    s.ok("SELECT INBOX");
    s.ok("UID STORE 2,4 +FLAGS.SILENT (\\Deleted)");
    s.ok("UID EXPUNGE 2,4");
    s.ok("UID STORE 1 +FLAGS.SILENT (\\Answered)");
    s.ok("UNSELECT");
    s.ok("SUBSCRIBE Lists");
    s.ok("UNSUBSCRIBE Junk");
    s.ok("LOGOUT");

    cli(a, &["acl", "set", "alice", "Projects", "bob", "lrsw"]);
    cli(a, &["acl", "set", "alice", "Projects/2026", "-bob", "w"]);
    cli(a, &["acl", "set", "alice", "Lists", "anyone", "lr"]);
    cli(a, &["mailbox", "seen-mode", "alice", "Projects", "private"]);
    cli(a, &["quota", "set", "alice", "--storage", "100M", "--messages", "5000"]);
    cli(a, &["group", "add", "staff", "alice"]);
    let filter = dir.join("filter.sieve");
    std::fs::write(
        &filter,
        "require \"fileinto\";\nif header :contains \"subject\" \"list\" { fileinto \"Lists\"; }\n",
    )
    .unwrap();
    let vacation = dir.join("vacation.sieve");
    std::fs::write(&vacation, "require \"vacation\";\nvacation :days 3 \"Away.\";\n").unwrap();
    cli(a, &["sieve", "put", "alice", "filter", filter.to_str().unwrap(), "--activate"]);
    cli(a, &["sieve", "put", "alice", "vacation", vacation.to_str().unwrap()]);

    // Bob reads q2 in Projects, which keeps \Seen per user.
    let mut b = login(a, "bob");
    b.ok("SELECT \"Other Users/alice/Projects\"");
    b.ok("UID STORE 2 +FLAGS.SILENT (\\Seen)");
    b.ok("LOGOUT");
}

/// What the admin CLI says about alice's account.
fn admin_view(server: &TestServer) -> Vec<String> {
    vec![
        cli(server, &["acl", "get", "alice", "Projects"]),
        cli(server, &["acl", "get", "alice", "Projects/2026"]),
        cli(server, &["acl", "get", "alice", "Lists"]),
        cli(server, &["quota", "get", "alice"]),
        cli(server, &["sieve", "list", "alice"]),
        cli(server, &["sieve", "get", "alice", "vacation"]),
        cli(server, &["mailbox", "seen-mode", "alice", "Projects"]),
    ]
}

/// Bob's private \Seen in alice's Projects.
fn bobs_view(server: &TestServer) -> Vec<String> {
    let mut b = login(server, "bob");
    b.ok("EXAMINE \"Other Users/alice/Projects\"");
    let lines = b.ok("UID FETCH 1:* (UID FLAGS)");
    b.ok("LOGOUT");
    lines
}

fn subscriptions(s: &mut Session<Client>) -> Vec<String> {
    let mut lines = s.ok("LSUB \"\" \"*\"");
    lines.sort();
    lines
}

#[test]
fn export_and_import_onto_another_installation_keeps_every_field() {
    let work = tempfile::tempdir().unwrap();
    let a = TestServer::start();
    fill(&a, work.path());
    let export = work.path().join("export");
    let out = cli(&a, &["export", "alice", export.to_str().unwrap()]);
    assert!(out.contains("messages: 8 "), "{out}");

    let b = TestServer::start();
    b.add_user("bob", PASSWORD);
    let out = cli(&b, &["import", "alice", export.to_str().unwrap()]);
    assert!(out.contains("messages stored: 8 "), "{out}");
    assert!(out.contains("skipped (bad): 0"), "{out}");
    assert!(out.contains("has no password"), "{out}");
    success(&b.cli(&["user", "passwd", "alice", "--password-stdin"], &format!("{PASSWORD}\n")), "passwd");

    let (mut sa, mut sb) = (login(&a, "alice"), login(&b, "alice"));
    let (before, after) = (look_all(&mut sa), look_all(&mut sb));
    assert!(
        before["INBOX"].vanished.iter().any(|v| v.contains('2') && v.contains('4')),
        "{:?}",
        before["INBOX"]
    );
    assert_eq!(before["INBOX"].messages.len(), 3);
    assert_same(&before, &after);
    assert_eq!(subscriptions(&mut sa), subscriptions(&mut sb));
    assert_eq!(admin_view(&a), admin_view(&b));
    assert_eq!(bobs_view(&a), bobs_view(&b));
    // Exported again from the target, the files say the same (MAILBOXIDs aside).
    let again = work.path().join("again");
    cli(&b, &["export", "alice", again.to_str().unwrap()]);
    assert_same_exports(&export, &again);

    // Again: nothing changes, nothing is stored twice.
    let out = cli(&b, &["import", "alice", export.to_str().unwrap()]);
    assert!(out.contains("messages stored: 0 ") && out.contains("already there: 8 "), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&cli(&b, &["import", "alice", export.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!((json["inserted"].as_u64(), json["present"].as_u64()), (Some(0), Some(8)), "{json}");
    let third = work.path().join("third");
    let json: serde_json::Value =
        serde_json::from_str(&cli(&b, &["export", "alice", third.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(json["messages"], 8, "{json}");
    assert_same(&before, &look_all(&mut sb));
}

/// Two exports hold the same account, mailboxes (MAILBOXIDs aside), messages, private \Seen and
/// Sieve scripts.
fn assert_same_exports(a: &Path, b: &Path) {
    for file in ["account.jsonl", "messages.jsonl", "private_seen.jsonl", "sieve.jsonl"] {
        let (x, y) =
            (std::fs::read_to_string(a.join(file)).unwrap(), std::fs::read_to_string(b.join(file)).unwrap());
        assert_eq!(x, y, "{file}");
    }
    let mailboxes = |dir: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join("mailboxes.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("mailbox_id");
                v
            })
            .collect()
    };
    assert_eq!(mailboxes(a), mailboxes(b), "mailboxes.jsonl");
}

/// The value the export's summary names for the next `--since-modseq`.
fn next_since(summary: &str) -> String {
    let at = summary.find("--since-modseq ").unwrap_or_else(|| panic!("{summary}"));
    summary[at + "--since-modseq ".len()..].chars().take_while(char::is_ascii_digit).collect()
}

#[test]
fn incremental_exports_apply_on_top() {
    let work = tempfile::tempdir().unwrap();
    let a = TestServer::start();
    fill(&a, work.path());
    let base = work.path().join("base");
    let summary = cli(&a, &["export", "alice", base.to_str().unwrap()]);
    let b = TestServer::start();
    b.add_user("bob", PASSWORD);
    cli(&b, &["import", "alice", base.to_str().unwrap()]);
    success(&b.cli(&["user", "passwd", "alice", "--password-stdin"], &format!("{PASSWORD}\n")), "passwd");

    // Changes in existing mailboxes: new mail, flags, an expunge, bob's private \Seen.
    let mut s = login(&a, "alice");
    append(&mut s, "INBOX", "\\Flagged", "05-Mar-2026 09:00:00 +0100", &mail("m6", "six"));
    append(&mut s, "Projects", "", "05-Mar-2026 09:00:01 +0100", &mail("q3", "shared three"));
    s.ok("SELECT INBOX");
    s.ok("UID STORE 3 -FLAGS.SILENT (\\Flagged)");
    s.ok("UID STORE 5 +FLAGS.SILENT (\\Deleted)");
    s.ok("UID EXPUNGE 5");
    s.ok("SELECT \"Projects/2026\"");
    s.ok("UID STORE 2 +FLAGS.SILENT (\\Seen $Important)");
    s.ok("LOGOUT");
    let mut bob = login(&a, "bob");
    bob.ok("SELECT \"Other Users/alice/Projects\"");
    bob.ok("UID STORE 1 +FLAGS.SILENT (\\Seen)");
    bob.ok("UID STORE 2 -FLAGS.SILENT (\\Seen)");
    bob.ok("LOGOUT");

    let step = work.path().join("step");
    let n = next_since(&summary);
    let out = cli(&a, &["export", "alice", step.to_str().unwrap(), "--since-modseq", &n]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(step.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["since_modseq"].as_u64().unwrap().to_string(), n, "{manifest}");
    let _ = out;
    let out = cli(&b, &["import", "alice", step.to_str().unwrap()]);
    assert!(out.contains("skipped (bad): 0") && !out.contains("new UIDVALIDITY"), "{out}");

    let (mut sa, mut sb) = (login(&a, "alice"), login(&b, "alice"));
    assert_same(&look_all(&mut sa), &look_all(&mut sb));
    assert_eq!(bobs_view(&a), bobs_view(&b));

    // A mailbox made since: `--since DIR` knows it was not in the base and writes it whole.
    let mut s = login(&a, "alice");
    s.ok("CREATE Later");
    append(&mut s, "Later", "\\Seen", "06-Mar-2026 09:00:00 +0100", &mail("l1", "later"));
    append(&mut s, "INBOX", "", "06-Mar-2026 09:00:01 +0100", &mail("m7", "seven"));
    s.ok("LOGOUT");
    let step2 = work.path().join("step2");
    cli(&a, &["export", "alice", step2.to_str().unwrap(), "--since", step.to_str().unwrap()]);
    // Per mailbox since the last export: m7, and Later whole.
    let lines = std::fs::read_to_string(step2.join("messages.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    cli(&b, &["import", "alice", step2.to_str().unwrap()]);
    let (mut sa, mut sb) = (login(&a, "alice"), login(&b, "alice"));
    assert_same(&look_all(&mut sa), &look_all(&mut sb));
    let full_a = work.path().join("full-a");
    let full_b = work.path().join("full-b");
    cli(&a, &["export", "alice", full_a.to_str().unwrap()]);
    cli(&b, &["export", "alice", full_b.to_str().unwrap()]);
    assert_same_exports(&full_a, &full_b);
}

/// UIDs of a mailbox, from `UID SEARCH ALL`.
fn uids(s: &mut Session<Client>, mailbox: &str) -> (u64, Vec<u32>) {
    let status = s.ok(&format!("STATUS \"{mailbox}\" (UIDVALIDITY)"));
    let validity = number(status.iter().find(|l| l.starts_with("* STATUS")).unwrap(), "UIDVALIDITY");
    s.ok(&format!("EXAMINE \"{mailbox}\""));
    let found = s.ok("UID SEARCH ALL");
    let uids = found
        .iter()
        .filter_map(|l| l.strip_prefix("* SEARCH"))
        .flat_map(|l| l.split_whitespace().map(|n| n.parse::<u32>().unwrap()))
        .collect();
    s.ok("UNSELECT");
    (validity, uids)
}

#[test]
fn importing_onto_an_account_with_mail_keeps_uids_where_free_else_takes_a_new_uidvalidity() {
    let work = tempfile::tempdir().unwrap();
    let a = TestServer::start();
    a.add_user("alice", PASSWORD);
    let mut s = login(&a, "alice");
    for (i, id) in ["a1", "a2", "a3"].iter().enumerate() {
        append(&mut s, "INBOX", "", &format!("0{}-Jan-2026 10:00:00 +0000", i + 1), &mail(id, id));
    }
    s.ok("CREATE Keep");
    for id in ["k1", "k2", "k3", "k4", "k5", "k6", "k7"] {
        append(&mut s, "Keep", "\\Seen", "01-Feb-2026 10:00:00 +0000", &mail(id, id));
    }
    s.ok("SELECT Keep");
    s.ok("UID STORE 1:4 +FLAGS.SILENT (\\Deleted)");
    s.ok("UID EXPUNGE 1:4");
    append(&mut s, "Sent", "\\Seen", "01-Mar-2026 10:00:00 +0000", &mail("s1", "sent"));
    let (a_inbox, _) = uids(&mut s, "INBOX");
    let (a_sent, a_sent_uids) = uids(&mut s, "Sent");
    s.ok("LOGOUT");
    let export = work.path().join("export");
    cli(&a, &["export", "alice", export.to_str().unwrap()]);

    // The target account has mail of its own: INBOX 1..2, Keep 1..2 (UIDNEXT 3 < 5); Sent empty.
    let b = TestServer::start();
    b.add_user("alice", PASSWORD);
    let mut t = login(&b, "alice");
    append(&mut t, "INBOX", "", "01-Jan-2020 10:00:00 +0000", &mail("b1", "own one"));
    append(&mut t, "INBOX", "", "01-Jan-2020 10:00:00 +0000", &mail("b2", "own two"));
    t.ok("CREATE Keep");
    append(&mut t, "Keep", "", "01-Jan-2020 10:00:00 +0000", &mail("c1", "own keep one"));
    append(&mut t, "Keep", "", "01-Jan-2020 10:00:00 +0000", &mail("c2", "own keep two"));
    let (b_inbox, _) = uids(&mut t, "INBOX");
    let (b_keep, _) = uids(&mut t, "Keep");
    t.ok("LOGOUT");

    let out = cli(&b, &["import", "alice", export.to_str().unwrap()]);
    assert!(out.contains("new UIDVALIDITY: INBOX"), "{out}");
    assert!(!out.contains("new UIDVALIDITY: Keep"), "{out}");
    let mut t = login(&b, "alice");
    // Keep: every exported UID (5, 6, 7) is at or above the target's UIDNEXT (3): kept, under
    // the target's own UIDVALIDITY, beside its own messages.
    assert_eq!(uids(&mut t, "Keep"), (b_keep, vec![1, 2, 5, 6, 7]));
    // INBOX: exported 1..3 collide with the target's 1..2: a new UIDVALIDITY (neither side's
    // old one), its own messages first, then the imported ones.
    let (validity, inbox) = uids(&mut t, "INBOX");
    assert!(validity != b_inbox && validity != a_inbox, "{validity} {b_inbox} {a_inbox}");
    assert_eq!(inbox, vec![1, 2, 3, 4, 5]);
    let ids: Vec<String> = t
        .ok("EXAMINE INBOX")
        .into_iter()
        .chain(t.ok("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"))
        .filter_map(|l| common::message_id(&l))
        .collect();
    assert_eq!(ids, ["b1", "b2", "a1", "a2", "a3"].map(|id| format!("<{id}@migrate.test>")));
    // Sent was empty: it takes the exported UIDVALIDITY and UIDs.
    assert_eq!(uids(&mut t, "Sent"), (a_sent, a_sent_uids));
    t.ok("LOGOUT");

    // Again: the renumbered mailbox gets neither the same messages twice nor another
    // UIDVALIDITY.
    let out = cli(&b, &["import", "alice", export.to_str().unwrap()]);
    assert!(out.contains("messages stored: 0 ") && !out.contains("new UIDVALIDITY"), "{out}");
    let mut t = login(&b, "alice");
    assert_eq!(uids(&mut t, "INBOX"), (validity, inbox));
    assert_eq!(uids(&mut t, "Keep").1, vec![1, 2, 5, 6, 7]);
}

/// `UID FETCH 1:* (UID FLAGS ...)` lines of a mailbox.
fn fetch(s: &mut Session<Client>, mailbox: &str, items: &str) -> Vec<String> {
    s.ok(&format!("EXAMINE \"{mailbox}\""));
    let lines =
        s.ok(&format!("UID FETCH 1:* ({items})")).into_iter().filter(|l| l.contains(" FETCH ")).collect();
    s.ok("UNSELECT");
    lines
}

#[test]
fn mbox_flags_come_from_status_headers_and_a_corrupt_message_is_reported_and_skipped() {
    let work = tempfile::tempdir().unwrap();
    let server = TestServer::start();
    server.add_user("alice", PASSWORD);
    let mbox = work.path().join("saved.mbox");
    std::fs::write(
        &mbox,
        "From bob@example.org Thu Mar  3 12:00:00 2022\n\
         From: bob@example.org\nSubject: read and answered\nStatus: RO\nX-Status: AF\n\
         X-Keywords: $Label1, Project-X\nMessage-ID: <x1@mbox.test>\n\nHello.\n>From the quoted line\n\n\
         From bob@example.org Fri Mar  4 08:30:00 2022\n\
         From: bob@example.org\nSubject: unread\nStatus: O\nMessage-ID: <x2@mbox.test>\n\nSecond.\n\n\
         From bob@example.org Fri Mar  4 08:31:00 2022\n\
         this line is no header field\nand neither is this\n\n\
         From bob@example.org Sat Mar  5 10:00:00 2022\n\
         From: bob@example.org\nSubject: draft, deleted\nX-Status: TD\nMessage-ID: <x3@mbox.test>\n\nThird.\n",
    )
    .unwrap();
    let out = cli(&server, &["import-mbox", "alice", mbox.to_str().unwrap(), "--mailbox", "Old/Saved"]);
    assert!(out.contains("messages stored: 3 "), "{out}");
    assert!(out.contains("skipped (bad): 1"), "{out}");
    assert!(out.contains("saved.mbox:20: does not start with a header field"), "{out}");

    let mut s = login(&server, "alice");
    let lines = fetch(&mut s, "Old/Saved", "UID FLAGS INTERNALDATE BODY.PEEK[]");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].contains("UID 1 FLAGS (\\Answered \\Flagged \\Seen $Label1 Project-X)"), "{}", lines[0]);
    assert!(lines[0].contains("INTERNALDATE \" 3-Mar-2022 12:00:00 +0000\""), "{}", lines[0]);
    assert!(lines[0].contains("\r\nHello.\r\nFrom the quoted line\r\n)"), "{:?}", lines[0]);
    assert!(!lines[0].contains("Status:") && !lines[0].contains("X-Keywords"), "{}", lines[0]);
    assert!(lines[1].contains("UID 2 FLAGS ()"), "{}", lines[1]);
    assert!(lines[2].contains("UID 3 FLAGS (\\Deleted \\Draft)"), "{}", lines[2]);

    // A tree of mbox files: each a mailbox by its path, `inbox` at the top is INBOX.
    let tree = work.path().join("mail");
    std::fs::create_dir_all(tree.join("Lists")).unwrap();
    std::fs::write(tree.join("inbox"), "From a Thu Mar  3 12:00:00 2022\nSubject: in\n\nx\n").unwrap();
    std::fs::write(tree.join("Lists/rust"), "From a Thu Mar  3 12:00:00 2022\nSubject: rust\n\ny\n").unwrap();
    std::fs::write(tree.join("notes.txt"), "not mail\n").unwrap();
    let out = cli(&server, &["import-mbox", "alice", tree.to_str().unwrap()]);
    assert!(out.contains("messages stored: 2 ") && out.contains("notes.txt: not an mbox file"), "{out}");
    assert_eq!(fetch(&mut s, "Lists/rust", "UID").len(), 1);
    assert_eq!(fetch(&mut s, "INBOX", "UID").len(), 1);

    // An mbox into an INBOX that has mail: its UIDs are only positions, so its messages go after
    // the INBOX's own and nobody's UIDVALIDITY changes; again, nothing is stored twice.
    let (validity, before) = uids(&mut s, "INBOX");
    let more = work.path().join("more.mbox");
    std::fs::write(&more, "From a Thu Mar  3 12:00:00 2022\nSubject: more 1\n\nx\n\nFrom a Thu Mar  3 12:00:00 2022\nSubject: more 2\n\ny\n").unwrap();
    for round in 0..2 {
        let out = cli(&server, &["import-mbox", "alice", more.to_str().unwrap()]);
        assert!(!out.contains("new UIDVALIDITY"), "{out}");
        assert!(
            out.contains(if round == 0 { "messages stored: 2 " } else { "messages stored: 0 " }),
            "{out}"
        );
    }
    assert_eq!(uids(&mut s, "INBOX"), (validity, vec![before[0], before[0] + 1, before[0] + 2]));
}

#[test]
fn dovecot_and_plain_maildirs_keep_what_they_know() {
    let work = tempfile::tempdir().unwrap();
    let server = TestServer::start();
    server.add_user("alice", PASSWORD);
    // A Dovecot Maildir++: INBOX at the root, Archive/2026 as .Archive.2026; UID 2 of INBOX was
    // expunged (listed, file gone); one file arrived after Dovecot last wrote the list.
    let root = work.path().join("Maildir");
    for dir in ["cur", "new", "tmp", ".Archive.2026/cur", ".Archive.2026/new", ".Archive.2026/tmp"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(
        root.join("dovecot-uidlist"),
        "3 V1700000123 N4 G88bd2f2b6d0f166be915000083ecc375\n1 :100.M1.host,S=30,W=32\n2 :100.M2.host,S=30,W=32\n\
         3 :100.M3.host,S=30,W=32\n",
    )
    .unwrap();
    std::fs::write(root.join("dovecot-keywords"), "0 $Forwarded\n1 Project-X\n").unwrap();
    std::fs::write(root.join("cur/100.M1.host,S=30,W=32:2,Sab"), "Subject: one\n\nfirst\n").unwrap();
    std::fs::write(root.join("cur/100.M3.host,S=30,W=32:2,FR"), "Subject: three\n\nthird\n").unwrap();
    std::fs::write(root.join("new/200.M9.host"), "Subject: nine\n\nlate\n").unwrap();
    std::fs::write(root.join(".Archive.2026/dovecot-uidlist"), "3 V1700000999 N8\n7 :300.M1.host\n").unwrap();
    std::fs::write(root.join(".Archive.2026/cur/300.M1.host:2,D"), "Subject: draft\n\nd\n").unwrap();
    std::fs::write(root.join("subscriptions"), "V\t2\n\nArchive\t2026\n").unwrap();

    let out = cli(&server, &["import-maildir", "alice", root.to_str().unwrap()]);
    assert!(out.contains("messages stored: 4 ") && out.contains("skipped (bad): 0"), "{out}");
    let mut s = login(&server, "alice");
    s.ok("ENABLE QRESYNC");
    let inbox = look(&mut s, "INBOX");
    assert_eq!((inbox.uid_validity, inbox.uid_next), (1_700_000_123, 5));
    let uids: Vec<&str> = inbox.messages.iter().map(|m| &m[..m.find(" FLAGS").unwrap()]).collect();
    assert_eq!(uids, vec!["(UID 1", "(UID 3", "(UID 4"]);
    assert!(inbox.messages[0].contains("FLAGS (\\Seen $Forwarded Project-X)"), "{}", inbox.messages[0]);
    assert!(inbox.messages[1].contains("FLAGS (\\Answered \\Flagged)"), "{}", inbox.messages[1]);
    assert!(inbox.messages[0].contains("Subject: one\r\n\r\nfirst\r\n"), "{}", inbox.messages[0]);
    assert_eq!(inbox.vanished, vec!["* VANISHED (EARLIER) 2".to_owned()]);
    let archive = look(&mut s, "Archive/2026");
    assert_eq!((archive.uid_validity, archive.uid_next), (1_700_000_999, 8));
    assert!(archive.messages[0].starts_with("(UID 7 FLAGS (\\Draft)"), "{:?}", archive.messages);
    let subscribed = subscriptions(&mut s);
    assert!(subscribed.iter().any(|l| l.ends_with("Archive/2026")), "{subscribed:?}");

    // A plain Maildir (mbsync's SubFolders Verbatim layout): UIDs 1..n by file name.
    let plain = work.path().join("plain");
    for dir in ["INBOX/cur", "INBOX/new", "INBOX/tmp", "Work/Notes/cur", "Work/Notes/new", "Work/Notes/tmp"] {
        std::fs::create_dir_all(plain.join(dir)).unwrap();
    }
    std::fs::write(plain.join("Work/Notes/cur/2.x:2,S"), "Subject: b\n\nb\n").unwrap();
    std::fs::write(plain.join("Work/Notes/new/1.x"), "Subject: a\n\na\n").unwrap();
    std::fs::write(plain.join("Work/Notes/cur/3.x:2,"), "not a message\n").unwrap();
    server.add_user("carol", PASSWORD);
    let out = cli(&server, &["import-maildir", "carol", plain.to_str().unwrap()]);
    assert!(
        out.contains("messages stored: 2 ") && out.contains("3.x:2,: does not start with a header field"),
        "{out}"
    );
    let mut c = login(&server, "carol");
    let notes = fetch(&mut c, "Work/Notes", "UID FLAGS");
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("UID 1 FLAGS ()") && notes[1].contains("UID 2 FLAGS (\\Seen)"), "{notes:?}");
}

// ---------------------------------------------------------------------------------------------
// From a real Dovecot
// ---------------------------------------------------------------------------------------------

/// A private Dovecot (Debian's `dovecot-imapd`) on loopback ports, with one user, its mail in a
/// Maildir++ under a temporary directory. Killed when dropped.
struct Dovecot {
    dir: std::path::PathBuf,
    child: std::process::Child,
    tls_port: u16,
    /// Where the user's Maildir is.
    maildir: std::path::PathBuf,
}

const DOVECOT: &str = "/usr/sbin/dovecot";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Dovecot {
    /// Starts Dovecot for `user` with `PASSWORD`, serving TLS with `cert`/`key` (Postfach's
    /// generated pair, which the clients already trust).
    fn start(dir: &Path, user: &str, cert: &Path, key: &Path) -> Dovecot {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = dir.join("dovecot");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let me = std::fs::metadata(&dir).unwrap().uid();
        // As root, mail is kept as `nobody` (Dovecot refuses root), who must reach it.
        let (mail_uid, users) = if me == 0 {
            let mut at = dir.as_path();
            while let Some(parent) = at.parent() {
                if parent == Path::new("/") {
                    break;
                }
                let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755));
                at = parent;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
            (65534, String::new())
        } else {
            let name = std::env::var("USER").unwrap_or_else(|_| "postfach".to_owned());
            (me, format!("default_login_user = {name}\ndefault_internal_user = {name}\n"))
        };
        std::fs::write(dir.join("passwd"), format!("{user}:{{PLAIN}}{PASSWORD}::::::\n")).unwrap();
        let (plain_port, tls_port) = (free_port(), free_port());
        let d = dir.display();
        let config = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
             protocols = imap\nlisten = 127.0.0.1\nssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n\
             disable_plaintext_auth = no\nauth_mechanisms = plain login\n\
             mail_location = maildir:{d}/home/%u/Maildir\nfirst_valid_uid = 0\nfirst_valid_gid = 0\n{users}\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={mail_uid} gid={mail_uid} home={d}/home/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {plain_port}\n  }}\n\
               inet_listener imaps {{\n    port = {tls_port}\n    ssl = yes\n  }}\n}}\n",
            cert = cert.display(),
            key = key.display(),
        );
        let conf = dir.join("dovecot.conf");
        std::fs::write(&conf, config).unwrap();
        let child = std::process::Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.join("dovecot.out")).unwrap())
            .stderr(std::fs::File::create(dir.join("dovecot.err")).unwrap())
            .spawn()
            .unwrap();
        let dovecot = Dovecot { maildir: home.join(user).join("Maildir"), dir, child, tls_port };
        let deadline = std::time::Instant::now() + common::PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "Dovecot did not start:\n{}", dovecot.log());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        dovecot
    }

    fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}{}{}", read("dovecot.log"), read("dovecot.out"), read("dovecot.err"))
    }

    /// A logged-in session over TLS (trusting `cert`).
    fn login(&self, user: &str, cert: &Path) -> Session<Client> {
        let mut client = Client::tls(std::net::SocketAddr::from(([127, 0, 0, 1], self.tls_port)), cert);
        client.read_line();
        let mut session = Session::new(client);
        session.ok(&format!("LOGIN {user} \"{PASSWORD}\""));
        session
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An mbsync channel between a local Maildir and an IMAPS server on 127.0.0.1.
fn mbsync_rc(rc: &Path, local: &Path, port: u16, cert: &Path, user: &str) {
    let root = local.display();
    std::fs::write(
        rc,
        format!(
            "IMAPAccount server\nHost 127.0.0.1\nPort {port}\nUser {user}\nPass \"{PASSWORD}\"\n\
             SSLType IMAPS\nCertificateFile {cert}\nTimeout 30\n\n\
             IMAPStore remote\nAccount server\n\n\
             MaildirStore local\nPath {root}/\nInbox {root}/INBOX\nSubFolders Verbatim\n\n\
             Channel device\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\n\
             SyncState *\n",
            cert = cert.display(),
        ),
    )
    .unwrap();
}

fn mbsync(rc: &Path, dir: &Path, name: &str) -> String {
    let done = common::run_program(
        std::process::Command::new("mbsync").arg("-V").arg("-c").arg(rc).arg("device"),
        dir,
        name,
        common::CLIENT_DEADLINE,
    );
    assert!(done.status.success(), "mbsync ({name}) failed:\n{}", done.output());
    done.output()
}

/// Every message file under a Maildir, sorted (names carry mbsync's UIDs and the flags).
fn maildir_files(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.parent().is_some_and(|p| p.ends_with("cur") || p.ends_with("new")) {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// What a client sees of every folder: UIDVALIDITY, UIDNEXT, and per message UID, FLAGS
/// (without \Recent), INTERNALDATE and the bytes.
fn folder_view(s: &mut Session<Client>, names: &[&str]) -> BTreeMap<String, (u64, u64, Vec<String>)> {
    let mut out = BTreeMap::new();
    for name in names {
        let status = s.ok(&format!("STATUS \"{name}\" (UIDVALIDITY UIDNEXT)"));
        let status = status.iter().find(|l| l.starts_with("* STATUS")).unwrap().clone();
        let messages = fetch(s, name, "UID FLAGS INTERNALDATE BODY.PEEK[]")
            .into_iter()
            .map(|l| {
                l.split_once(" FETCH ")
                    .unwrap()
                    .1
                    .replace(" \\Recent", "")
                    .replace("(\\Recent ", "(")
                    .replace("(\\Recent)", "()")
                    // Both day forms are the same date (RFC 9051 `date-day-fixed`: " 4" or "04").
                    .replace("INTERNALDATE \" ", "INTERNALDATE \"0")
            })
            .collect();
        out.insert(
            (*name).to_owned(),
            (number(&status, "UIDVALIDITY"), number(&status, "UIDNEXT"), messages),
        );
    }
    out
}

#[test]
fn from_dovecot_over_imap_and_from_its_maildir_an_mbsync_state_stays_valid() {
    if !common::available(DOVECOT, "dovecot-imapd") || !common::available("mbsync", "isync") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let postfach = TestServer::start();
    let cert = postfach.cert_path();
    let key = postfach.data_dir().join("tls").join("key.pem");
    let dovecot = Dovecot::start(work.path(), "alice", &cert, &key);

    // Mail in Dovecot: the folders Postfach gives every account, nested ones, flags, keywords,
    // dates, an expunge (a UID gap), subscriptions. Dovecot's Maildir++ separates levels with '.'.
    let mut d = dovecot.login("alice", &cert);
    for folder in ["Drafts", "Sent", "Trash", "Junk", "Archive", "Archive.2026", "Lists"] {
        d.ok(&format!("CREATE {folder}"));
    }
    let mut append_to = |mailbox: &str, flags: &str, date: &str, id: &str| {
        let m = mail(id, id);
        d.ok(&format!("APPEND \"{mailbox}\" ({flags}) \"{date}\" {{{}}}\r\n{m}", m.len()));
    };
    append_to("INBOX", "\\Seen $Forwarded Project-X", "30-Nov-2025 08:15:02 +0100", "d1");
    append_to("INBOX", "", "01-Dec-2025 09:00:00 +0000", "d2");
    append_to("INBOX", "\\Answered \\Flagged", "02-Dec-2025 10:00:00 -0500", "d3");
    append_to("INBOX", "$Label1", "03-Dec-2025 11:00:00 +0000", "d4");
    append_to("Archive.2026", "\\Seen", "04-Dec-2025 12:00:00 +0000", "d5");
    append_to("Archive.2026", "\\Draft \\Seen", "05-Dec-2025 12:00:00 +0000", "d6");
    append_to("Sent", "\\Seen", "06-Dec-2025 12:00:00 +0000", "d7");
    d.ok("SELECT INBOX");
    d.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)");
    d.ok("UID EXPUNGE 2");
    d.ok("SUBSCRIBE Archive.2026");
    d.ok("SUBSCRIBE Lists");
    d.ok("LOGOUT");

    // A device syncs with Dovecot.
    let device = work.path().join("device");
    let local = device.join("mail");
    std::fs::create_dir_all(&local).unwrap();
    let to_dovecot = device.join("dovecot.rc");
    mbsync_rc(&to_dovecot, &local, dovecot.tls_port, &cert, "alice");
    mbsync(&to_dovecot, &device, "mbsync-dovecot");
    let synced = maildir_files(&local);
    assert_eq!(synced.len(), 6, "{synced:?}");
    // A second device state for the Maildir import below (same mail, same state).
    let device2 = work.path().join("device2");
    std::fs::create_dir_all(&device2).unwrap();
    let status =
        std::process::Command::new("cp").arg("-a").arg(&local).arg(device2.join("mail")).status().unwrap();
    assert!(status.success());

    let folders = ["INBOX", "Archive", "Archive/2026", "Drafts", "Junk", "Lists", "Sent", "Trash"];
    let dovecot_folders: Vec<String> = folders.iter().map(|f| f.replace('/', ".")).collect();
    let dovecot_names: Vec<&str> = dovecot_folders.iter().map(String::as_str).collect();
    let mut d = dovecot.login("alice", &cert);
    let source = folder_view(&mut d, &dovecot_names);
    let source: BTreeMap<String, _> = source.into_iter().map(|(k, v)| (k.replace('.', "/"), v)).collect();
    d.ok("LOGOUT");

    // 1. import-imap from the running Dovecot into alice (who has Postfach's default folders).
    postfach.add_user("alice", PASSWORD);
    let password = work.path().join("password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let port = dovecot.tls_port.to_string();
    let args = [
        "import-imap",
        "alice",
        "--host",
        "localhost",
        "--port",
        &port,
        "--ca-file",
        cert.to_str().unwrap(),
        "--user",
        "alice",
        "--password-file",
        password.to_str().unwrap(),
    ];
    let out = success(&postfach.cli(&args, ""), "import-imap");
    assert!(
        out.contains("messages stored: 6 ") && out.contains("skipped (bad): 0"),
        "{out}\n{}",
        dovecot.log()
    );
    assert!(!out.contains("new UIDVALIDITY"), "{out}");
    let mut p = login(&postfach, "alice");
    assert_eq!(folder_view(&mut p, &folders), source, "Postfach after import-imap against Dovecot");
    let subscribed = subscriptions(&mut p);
    assert!(subscribed.iter().any(|l| l.ends_with("Archive/2026")), "{subscribed:?}");
    p.ok("LOGOUT");
    // Run again (as after an interruption): nothing new.
    let again = success(&postfach.cli(&args, ""), "import-imap again");
    assert!(again.contains("messages stored: 0 ") && again.contains("already there: 6 "), "{again}");

    // The device now syncs with Postfach, keeping its state: nothing to download, nothing changes.
    let to_postfach = device.join("postfach.rc");
    mbsync_rc(&to_postfach, &local, postfach.imaps.port(), &cert, "alice");
    let output = mbsync(&to_postfach, &device, "mbsync-postfach");
    assert_eq!(maildir_files(&local), synced, "mbsync against Postfach changed the Maildir:\n{output}");
    assert!(!output.contains("UIDVALIDITY"), "{output}");
    let mut p = login(&postfach, "alice");
    assert_eq!(folder_view(&mut p, &folders), source, "mbsync changed Postfach:\n{output}");
    p.ok("LOGOUT");

    // 2. import-maildir straight from Dovecot's Maildir on disk, into another account.
    postfach.add_user("carol", PASSWORD);
    let out = cli(&postfach, &["import-maildir", "carol", dovecot.maildir.to_str().unwrap()]);
    assert!(out.contains("messages stored: 6 ") && out.contains("skipped (bad): 0"), "{out}");
    let mut c = login(&postfach, "carol");
    let from_disk = folder_view(&mut c, &folders);
    c.ok("LOGOUT");
    for (name, (validity, uid_next, messages)) in &source {
        let (v, n, m) = &from_disk[name];
        assert_eq!((v, n), (validity, uid_next), "{name}: UIDVALIDITY and UIDNEXT from dovecot-uidlist");
        // The dates come from the files' times (Dovecot sets them to INTERNALDATE, in UTC);
        // UIDs, flags, keywords and bytes must match as they are.
        let strip = |l: &String| {
            let at = l.find("INTERNALDATE").unwrap();
            let end = l[at..].find(" BODY[]").unwrap();
            format!("{}{}", &l[..at], &l[at + end..])
        };
        assert_eq!(
            m.iter().map(strip).collect::<Vec<_>>(),
            messages.iter().map(strip).collect::<Vec<_>>(),
            "{name}"
        );
    }
    let to_carol = device2.join("postfach.rc");
    let local2 = device2.join("mail");
    mbsync_rc(&to_carol, &local2, postfach.imaps.port(), &cert, "carol");
    let output = mbsync(&to_carol, &device2, "mbsync-carol");
    assert_eq!(
        maildir_files(&local2),
        synced,
        "mbsync against the Maildir import changed the Maildir:\n{output}"
    );

    // A last run at the switch-over carries flags changed at the source since: over IMAP by
    // their newer MODSEQ, from the Maildir (which has none) because the source wins there.
    let mut d = dovecot.login("alice", &cert);
    d.ok("SELECT INBOX");
    d.ok("UID STORE 4 +FLAGS.SILENT (\\Flagged)");
    d.ok("LOGOUT");
    let out = success(&postfach.cli(&args, ""), "import-imap at the switch-over");
    assert!(out.contains("flags updated: 1)"), "{out}");
    let out = cli(&postfach, &["import-maildir", "carol", dovecot.maildir.to_str().unwrap()]);
    assert!(out.contains("flags updated: 1)"), "{out}");
    for user in ["alice", "carol"] {
        let mut s = login(&postfach, user);
        let lines = fetch(&mut s, "INBOX", "UID FLAGS");
        assert!(lines.iter().any(|l| l.contains("UID 4 FLAGS (\\Flagged $Label1)")), "{user}: {lines:?}");
    }
}

#[test]
fn an_import_killed_midway_finishes_when_run_again() {
    const MESSAGES: usize = 3000;
    let work = tempfile::tempdir().unwrap();
    let a = TestServer::start();
    a.add_user("alice", PASSWORD);
    // Mail to move: an mbox of MESSAGES messages of about 2 KB.
    let mut mbox = String::new();
    for i in 0..MESSAGES {
        let status = if i % 3 == 0 { "Status: RO\n" } else { "" };
        mbox.push_str(&format!(
            "From bob@example.org Thu Mar  3 12:00:00 2022\nFrom: bob@example.org\nSubject: bulk {i}\n\
             Message-ID: <bulk{i}@migrate.test>\n{status}\n{}\n\n",
            "Some text of a message that is long enough to be a message. ".repeat(30)
        ));
    }
    let file = work.path().join("bulk.mbox");
    std::fs::write(&file, mbox).unwrap();
    let out = cli(&a, &["import-mbox", "alice", file.to_str().unwrap(), "--mailbox", "Bulk"]);
    eprintln!("{out}");
    let export = work.path().join("export");
    let out = cli(&a, &["export", "alice", export.to_str().unwrap()]);
    eprintln!("{out}");

    // Killed after a moment (wherever it is then), then run again to the end.
    let b = TestServer::start();
    let config = b.data_dir().parent().unwrap().join("postfach.toml");
    // Twice, at different moments: whatever either run left behind, the last one finishes.
    for delay in [150, 400] {
        let mut child = std::process::Command::new(common::binary())
            .args(["import", "alice", export.to_str().unwrap(), "--config", config.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = cli(&b, &["import", "alice", export.to_str().unwrap()]);
    eprintln!("{out}");
    assert!(out.contains("skipped (bad): 0") && !out.contains("new UIDVALIDITY"), "{out}");
    success(&b.cli(&["user", "passwd", "alice", "--password-stdin"], &format!("{PASSWORD}\n")), "passwd");
    let (mut sa, mut sb) = (login(&a, "alice"), login(&b, "alice"));
    let (source, target) = (look_all(&mut sa), look_all(&mut sb));
    assert_eq!(source["Bulk"].messages.len(), MESSAGES);
    // MODSEQs of messages stored before the kill are kept; those after may be new ones (the
    // target's HIGHESTMODSEQ had moved past them), so compare without them.
    let strip = |seen: &BTreeMap<String, Seen>| -> Vec<(String, u64, u64, Vec<String>)> {
        seen.iter()
            .map(|(name, s)| {
                let messages = s
                    .messages
                    .iter()
                    .map(|m| {
                        let at = m.find("MODSEQ (").unwrap();
                        let end = at + m[at..].find(')').unwrap();
                        format!("{}{}", &m[..at], &m[end..])
                    })
                    .collect();
                (name.clone(), s.uid_validity, s.uid_next, messages)
            })
            .collect()
    };
    assert_eq!(strip(&source), strip(&target));
    for (name, s) in &source {
        assert!(target[name].highest_modseq >= s.highest_modseq, "{name}");
    }
}

#[test]
fn a_team_moves_with_its_address_members_and_mail() {
    let work = tempfile::tempdir().unwrap();
    let a = TestServer::start();
    a.add_user("bob", PASSWORD);
    a.add_user("carol", PASSWORD);
    cli(&a, &["team", "create", "support", "--address", "support@example.org"]);
    cli(&a, &["team", "add-member", "support", "bob"]);
    cli(&a, &["team", "add-member", "support", "carol", "--rights", "lrs"]);
    let mut b = login(&a, "bob");
    append(&mut b, "Shared/support/INBOX", "\\Flagged", "01-Feb-2026 10:00:00 +0000", &mail("t1", "ticket"));
    b.ok("LOGOUT");
    let export = work.path().join("support");
    cli(&a, &["export", "support", export.to_str().unwrap()]);

    let target = TestServer::start();
    target.add_user("bob", PASSWORD);
    target.add_user("carol", PASSWORD);
    let out = cli(&target, &["import", "support", export.to_str().unwrap()]);
    assert!(out.contains("messages stored: 1 ") && !out.contains("has no password"), "{out}");
    assert_eq!(cli(&a, &["team", "list"]), cli(&target, &["team", "list"]));
    let (mut x, mut y) = (login(&a, "bob"), login(&target, "bob"));
    let view = |s: &mut Session<Client>| -> Vec<String> {
        fetch(s, "Shared/support/INBOX", "UID FLAGS BODY.PEEK[]")
            .iter()
            .map(|l| l.replace(" \\Recent", ""))
            .collect()
    };
    assert_eq!(view(&mut x), view(&mut y));
    assert_eq!(subscriptions(&mut x), subscriptions(&mut y));
}

/// METADATA entries (RFC 5464) move with the account: a mailbox's shared and private ones (also
/// another user's private one), binary values, and the account's private server entries.
#[test]
fn metadata_moves_with_the_account() {
    let work = tempfile::tempdir().unwrap();
    let a = TestServer::start();
    a.add_user("alice", PASSWORD);
    a.add_user("bob", PASSWORD);
    let mut alice = login(&a, "alice");
    alice.ok("CREATE Projects");
    alice.ok("SETMETADATA Projects (/shared/comment \"plans\" /private/comment \"mine\" /private/vendor/x/bin ~{3+}\r\na\0b)");
    alice.ok("SETMETADATA \"\" (/private/comment \"server note\")");
    alice.ok("SETACL Projects bob lr");
    let mut bob = login(&a, "bob");
    bob.ok("SETMETADATA \"Other Users/alice/Projects\" (/private/comment \"bob's\")");
    let export = work.path().join("export");
    cli(&a, &["export", "alice", export.to_str().unwrap()]);
    let lines = std::fs::read_to_string(export.join("mailboxes.jsonl")).unwrap();
    assert!(lines.contains("\"metadata\":[") && lines.contains("\"value\":\"a\\u0000b\""), "{lines}");

    let b = TestServer::start();
    b.add_user("bob", PASSWORD);
    let out = cli(&b, &["import", "alice", export.to_str().unwrap()]);
    assert!(!out.contains("metadata"), "nothing about metadata to report: {out}");
    success(&b.cli(&["user", "passwd", "alice", "--password-stdin"], &format!("{PASSWORD}\n")), "passwd");
    let mut alice = login(&b, "alice");
    assert_eq!(
        alice.ok("GETMETADATA Projects (/shared/comment /private/comment /private/vendor/x/bin)"),
        vec![
            "* METADATA Projects (/private/comment \"mine\" /private/vendor/x/bin ~{3}\r\na\0b /shared/comment \"plans\")"
        ]
    );
    assert_eq!(
        alice.ok("GETMETADATA \"\" /private/comment"),
        vec!["* METADATA \"\" (/private/comment \"server note\")"]
    );
    let mut bob = login(&b, "bob");
    assert_eq!(
        bob.ok("GETMETADATA \"Other Users/alice/Projects\" /private/comment"),
        vec!["* METADATA \"Other Users/alice/Projects\" (/private/comment \"bob's\")"]
    );
}
