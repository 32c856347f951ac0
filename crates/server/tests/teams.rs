//! Team mailboxes, ACLs (RFC 4314), namespaces (RFC 2342) and quotas (RFC 9208), driven the way
//! users drive them: several members logged in at once over IMAP, mail arriving by LMTP, the
//! admin CLI setting teams, rights and quotas.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Client, PATIENCE, TestServer};

const PASSWORD: &str = "team-test-pw";
const INBOX: &str = "Shared/support/INBOX";

/// A server with users alice, bob and eve and a team `support` (support@example.org) in which
/// alice has every member right and bob may read and flag but not delete or expunge.
fn team_server() -> TestServer {
    let server = TestServer::start_with_sections("allow_plaintext_auth = true", "", &["lmtp"]);
    for user in ["alice", "bob", "eve"] {
        server.add_user(user, PASSWORD);
    }
    cli_ok(&server, &["team", "create", "support", "--address", "support@example.org"]);
    cli_ok(&server, &["team", "add-member", "support", "alice", "--rights", "lrswipkxte"]);
    cli_ok(&server, &["team", "add-member", "support", "bob", "--rights", "lrsw"]);
    server
}

fn cli_ok(server: &TestServer, args: &[&str]) -> String {
    let out = server.cli(args, "");
    assert!(
        out.status.success(),
        "postfach {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn login(server: &TestServer, user: &str) -> Client {
    let mut c = server.connect();
    c.read_line();
    c.send(&format!("a LOGIN {user} {PASSWORD}"));
    let lines = c.expect_tagged("a");
    assert!(lines.last().unwrap().starts_with("a OK"), "{lines:?}");
    c
}

/// Sends `tag command` and returns every line up to the tagged one.
fn run(c: &mut Client, tag: &str, command: &str) -> Vec<String> {
    c.send(&format!("{tag} {command}"));
    c.expect_tagged(tag)
}

fn ok(c: &mut Client, tag: &str, command: &str) -> Vec<String> {
    let lines = run(c, tag, command);
    assert!(lines.last().unwrap().starts_with(&format!("{tag} OK")), "{command}: {lines:?}");
    lines
}

fn tagged(lines: &[String]) -> &str {
    lines.last().unwrap()
}

fn message(subject: &str, size: usize) -> String {
    let body = "x".repeat(size);
    format!(
        "From: Customer <customer@remote.example>\r\nTo: support@example.org\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@remote.example>\r\n\r\n{body}\r\n"
    )
}

/// One LMTP transaction for `rcpt`; returns the reply to RCPT and, when accepted, to DATA.
fn lmtp(addr: SocketAddr, rcpt: &str, msg: &str) -> (String, Option<String>) {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut w = tcp.try_clone().unwrap();
    let mut r = BufReader::new(tcp);
    let mut reply = || {
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            assert!(r.read_line(&mut line).unwrap() > 0, "LMTP closed; got {out:?}");
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            out.push(line);
            if last {
                return out.join("\n");
            }
        }
    };
    assert!(reply().starts_with("220"));
    w.write_all(b"LHLO mx.example\r\n").unwrap();
    reply();
    w.write_all(b"MAIL FROM:<customer@remote.example>\r\n").unwrap();
    assert!(reply().starts_with("250"));
    w.write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes()).unwrap();
    let rcpt_reply = reply();
    if !rcpt_reply.starts_with("250") {
        return (rcpt_reply, None);
    }
    w.write_all(b"DATA\r\n").unwrap();
    assert!(reply().starts_with("354"));
    w.write_all(format!("{msg}.\r\n").as_bytes()).unwrap();
    let data_reply = reply();
    w.write_all(b"QUIT\r\n").unwrap();
    (rcpt_reply, Some(data_reply))
}

/// Waits for `* N EXISTS`, returns N.
fn wait_exists(c: &mut Client) -> u32 {
    loop {
        let line = c.read_line();
        if let Some(n) = line.strip_prefix("* ").and_then(|l| l.strip_suffix(" EXISTS")) {
            return n.parse().unwrap();
        }
    }
}

/// Waits for an untagged FETCH and returns it.
fn wait_fetch(c: &mut Client) -> String {
    loop {
        let line = c.read_line();
        if line.starts_with("* ") && line.contains(" FETCH ") {
            return line;
        }
    }
}

fn status(c: &mut Client, tag: &str, mailbox: &str, items: &str) -> String {
    let lines = ok(c, tag, &format!("STATUS \"{mailbox}\" ({items})"));
    lines.into_iter().find(|l| l.starts_with("* STATUS")).unwrap()
}

#[test]
fn members_see_team_mail_at_once_and_share_seen() {
    let server = team_server();
    let mut alice = login(&server, "alice");
    let mut bob = login(&server, "bob");

    // RFC 2342: the namespaces; the team's mailboxes are listed and subscribed for members.
    let ns = ok(&mut alice, "n", "NAMESPACE");
    assert!(ns[0].contains("((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared/\" \"/\"))"), "{ns:?}");
    let list = ok(&mut alice, "l", "LIST \"\" \"Shared/*\"").join("\n");
    for name in ["Shared/support", INBOX, "Shared/support/Sent", "Shared/support/Archive"] {
        assert!(
            list.contains(&format!("\"{name}\""))
                || list.contains(&format!(" {name}\r"))
                || list.contains(name),
            "{list}"
        );
    }
    assert!(list.contains("\\Noselect"), "{list}");
    let lsub = ok(&mut bob, "l", "LSUB \"\" \"Shared/support/*\"").join("\n");
    assert!(lsub.contains(INBOX), "members are subscribed: {lsub}");

    for (c, tag) in [(&mut alice, "s"), (&mut bob, "s")] {
        ok(c, tag, &format!("SELECT \"{INBOX}\""));
        c.send("i IDLE");
        assert!(c.read_line().starts_with('+'));
    }
    let (rcpt, data) = lmtp(server.lmtp.unwrap(), "support@example.org", &message("order-1", 10));
    assert!(rcpt.starts_with("250"), "{rcpt}");
    assert!(data.unwrap().starts_with("250"));
    assert_eq!(wait_exists(&mut alice), 1);
    assert_eq!(wait_exists(&mut bob), 1);

    // Alice marks it read; bob (shared \Seen) sees it at once.
    alice.send("DONE");
    alice.expect_tagged("i");
    ok(&mut alice, "f", "STORE 1 +FLAGS.SILENT (\\Seen)");
    let fetch = wait_fetch(&mut bob);
    assert!(fetch.contains("\\Seen"), "{fetch}");
    bob.send("DONE");
    bob.expect_tagged("i");

    // Bob has no `t` and no `e`: \Deleted is refused, EXPUNGE too; \Flagged is his to set.
    let r = run(&mut bob, "d", "STORE 1 +FLAGS (\\Deleted)");
    assert!(tagged(&r).starts_with("d NO [NOPERM]"), "{r:?}");
    ok(&mut bob, "g", "STORE 1 +FLAGS (\\Flagged)");
    let r = run(&mut bob, "e", "EXPUNGE");
    assert!(tagged(&r).starts_with("e NO [NOPERM]"), "{r:?}");
    let r = ok(&mut bob, "m", &format!("MYRIGHTS \"{INBOX}\""));
    assert!(r[0].starts_with(&format!("* MYRIGHTS {INBOX} lrsw")), "{r:?}");

    // Alice may expunge; bob's session learns of it.
    ok(&mut alice, "x", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    ok(&mut alice, "y", "EXPUNGE");
    let r = ok(&mut bob, "n", "NOOP").join("\n");
    assert!(r.contains("* 1 EXPUNGE"), "{r}");

    // A user without `l` cannot learn the mailbox exists: the same answer as for a missing one.
    let mut eve = login(&server, "eve");
    let list = ok(&mut eve, "l", "LIST \"\" \"*\"").join("\n");
    assert!(!list.contains("Shared"), "{list}");
    for (tag, cmd) in [
        ("a", format!("SELECT \"{INBOX}\"")),
        ("b", format!("STATUS \"{INBOX}\" (MESSAGES)")),
        ("c", format!("GETACL \"{INBOX}\"")),
        ("d", format!("MYRIGHTS \"{INBOX}\"")),
        ("e", "SELECT \"Shared/nosuchteam/INBOX\"".to_owned()),
    ] {
        let r = run(&mut eve, tag, &cmd);
        assert!(tagged(&r).starts_with(&format!("{tag} NO [NONEXISTENT]")), "{cmd}: {r:?}");
    }
    let r = run(&mut eve, "f", "APPEND \"Shared/support/INBOX\" {3+}\r\nhi!");
    assert!(tagged(&r).starts_with("f NO [TRYCREATE]"), "{r:?}");
}

#[test]
fn private_seen_is_per_member() {
    let server = team_server();
    cli_ok(&server, &["mailbox", "seen-mode", "support", "INBOX", "private"]);
    let (_, data) = lmtp(server.lmtp.unwrap(), "support@example.org", &message("order-2", 10));
    assert!(data.unwrap().starts_with("250"));
    let mut alice = login(&server, "alice");
    let mut bob = login(&server, "bob");
    ok(&mut bob, "s", &format!("SELECT \"{INBOX}\""));
    ok(&mut bob, "e", "ENABLE CONDSTORE");
    let before = ok(&mut bob, "f", "FETCH 1 (FLAGS MODSEQ)").join("\n");
    assert!(!before.contains("\\Seen"), "{before}");

    ok(&mut alice, "s", &format!("SELECT \"{INBOX}\""));
    ok(&mut alice, "f", "FETCH 1 BODY[TEXT]");
    let mine = ok(&mut alice, "g", "FETCH 1 FLAGS").join("\n");
    assert!(mine.contains("\\Seen"), "{mine}");

    // Bob still has it unread, in FETCH, SEARCH and STATUS.
    let theirs = ok(&mut bob, "g", "FETCH 1 FLAGS").join("\n");
    assert!(!theirs.contains("\\Seen"), "{theirs}");
    let search = ok(&mut bob, "h", "SEARCH UNSEEN").join("\n");
    assert!(search.contains("* SEARCH 1"), "{search}");
    let mut bob2 = login(&server, "bob");
    let st = status(&mut bob2, "t", INBOX, "UNSEEN");
    assert!(st.contains("UNSEEN 1"), "{st}");

    // Bob reads it: his own \Seen, with a MODSEQ above what he saw before.
    let stored = ok(&mut bob, "i", "STORE 1 +FLAGS (\\Seen)").join("\n");
    assert!(stored.contains("\\Seen"), "{stored}");
    let modseq =
        |s: &str| -> u64 { s.split("MODSEQ (").nth(1).unwrap().split(')').next().unwrap().parse().unwrap() };
    assert!(modseq(&stored) > modseq(&before), "{before} / {stored}");
    let st = status(&mut bob2, "u", INBOX, "UNSEEN");
    assert!(st.contains("UNSEEN 0"), "{st}");
    // Alice's unread mark stays hers.
    ok(&mut alice, "j", "STORE 1 -FLAGS (\\Seen)");
    let theirs = ok(&mut bob, "k", "FETCH 1 FLAGS").join("\n");
    assert!(theirs.contains("\\Seen"), "{theirs}");
}

#[test]
fn acl_commands_share_a_personal_mailbox_and_revoke_it() {
    let server = team_server();
    let mut alice = login(&server, "alice");
    ok(&mut alice, "c", "CREATE Projects");
    let r = ok(&mut alice, "a", "APPEND Projects {3+}\r\nhi!");
    assert!(r.last().unwrap().contains("APPENDUID"), "{r:?}");
    ok(&mut alice, "s", "SETACL Projects bob lr");
    let json: serde_json::Value =
        serde_json::from_str(&cli_ok(&server, &["acl", "get", "alice", "Projects", "--json"])).unwrap();
    assert_eq!(json["entries"][0]["identifier"], "bob");
    assert_eq!(json["entries"][0]["rights"], "lr");
    let acl = ok(&mut alice, "g", "GETACL Projects");
    assert!(acl[0].starts_with("* ACL Projects alice lrswipkxteacd bob lr"), "{acl:?}");
    ok(&mut alice, "p", "SETACL Projects bob +s");
    let acl = ok(&mut alice, "g2", "GETACL Projects");
    assert!(acl[0].ends_with("bob lrs"), "{acl:?}");
    let lr = ok(&mut alice, "r", "LISTRIGHTS Projects bob");
    assert_eq!(lr[0], "* LISTRIGHTS Projects bob \"\" l r s w i p k x t e a c d");
    let r = run(&mut alice, "b", "SETACL Projects bob lrz");
    assert!(tagged(&r).starts_with("b BAD"), "{r:?}");

    let mut bob = login(&server, "bob");
    let list = ok(&mut bob, "l", "LIST \"\" \"Other Users/*\"").join("\n");
    assert!(list.contains("Other Users/alice/Projects"), "{list}");
    let r = ok(&mut bob, "s", "EXAMINE \"Other Users/alice/Projects\"").join("\n");
    assert!(r.contains("* 1 EXISTS"), "{r}");
    // No `i`: bob cannot add to it.
    let r = run(&mut bob, "a", "APPEND \"Other Users/alice/Projects\" {3+}\r\nhi!");
    assert!(tagged(&r).starts_with("a NO [NOPERM]"), "{r:?}");
    // Bob has no `a`: no GETACL for him.
    let r = run(&mut bob, "g", "GETACL \"Other Users/alice/Projects\"");
    assert!(tagged(&r).starts_with("g NO [NOPERM]"), "{r:?}");

    // Revoked while bob has it selected: his session ends instead of showing stale data.
    bob.send("i IDLE");
    assert!(bob.read_line().starts_with('+'));
    ok(&mut alice, "d", "DELETEACL Projects bob");
    bob.set_timeout(Duration::from_secs(5));
    let line = bob.read_line();
    assert!(line.starts_with("* BYE"), "{line}");
    let mut bob = login(&server, "bob");
    let r = run(&mut bob, "s", "SELECT \"Other Users/alice/Projects\"");
    assert!(tagged(&r).starts_with("s NO [NONEXISTENT]"), "{r:?}");

    // Negative rights and anyone.
    ok(&mut alice, "n1", "SETACL Projects anyone lr");
    ok(&mut alice, "n2", "SETACL Projects -eve r");
    let mut eve = login(&server, "eve");
    let r = ok(&mut eve, "m", "MYRIGHTS \"Other Users/alice/Projects\"");
    assert!(r[0].ends_with(" l"), "{r:?}");
    let r = run(&mut eve, "s", "SELECT \"Other Users/alice/Projects\"");
    assert!(tagged(&r).starts_with("s NO [NOPERM]"), "{r:?}");
    let r = ok(&mut bob, "m", "MYRIGHTS \"Other Users/alice/Projects\"");
    assert!(r[0].ends_with(" lr"), "{r:?}");

    // A child inherits its parent's ACL (RFC 4314 §5.x as Dovecot and Cyrus do).
    ok(&mut alice, "k", "CREATE Projects/2027");
    let acl = ok(&mut alice, "g3", "GETACL Projects/2027").join("\n");
    assert!(acl.contains("anyone lr") && acl.contains("-eve r"), "{acl}");
}

#[test]
fn copy_and_move_across_namespaces() {
    let server = team_server();
    let mut alice = login(&server, "alice");
    ok(&mut alice, "a", "APPEND INBOX {3+}\r\nhi!");
    ok(&mut alice, "s", "SELECT INBOX");
    let r = ok(&mut alice, "c", &format!("COPY 1 \"{INBOX}\"")).join("\n");
    assert!(r.contains("COPYUID"), "{r}");
    let r = ok(&mut alice, "m", "MOVE 1 \"Shared/support/Archive\"").join("\n");
    assert!(r.contains("* 1 EXPUNGE"), "{r}");
    let mut bob = login(&server, "bob");
    assert!(status(&mut bob, "t", INBOX, "MESSAGES").contains("MESSAGES 1"));
    assert!(status(&mut bob, "u", "Shared/support/Archive", "MESSAGES").contains("MESSAGES 1"));
    // Bob may not move out of the team mailbox (no `t`/`e` there).
    ok(&mut bob, "s", &format!("SELECT \"{INBOX}\""));
    let r = run(&mut bob, "m", "MOVE 1 INBOX");
    assert!(tagged(&r).starts_with("m NO [NOPERM]"), "{r:?}");
    ok(&mut bob, "c", "COPY 1 INBOX");
    // Members create folders in the team tree with `k`; bob has none.
    ok(&mut alice, "k", "CREATE \"Shared/support/Cases\"");
    let r = run(&mut bob, "k", "CREATE \"Shared/support/Mine\"");
    assert!(tagged(&r).starts_with("k NO [NOPERM]"), "{r:?}");
    let r = run(&mut alice, "r", "RENAME \"Shared/support/Cases\" Cases");
    assert!(tagged(&r).starts_with("r NO [CANNOT]"), "{r:?}");
}

#[test]
fn quota_enforced_on_append_lmtp_and_concurrently() {
    let server =
        TestServer::start_with_sections("allow_plaintext_auth = true\nadmins = [\"alice\"]", "", &["lmtp"]);
    for user in ["alice", "bob"] {
        server.add_user(user, PASSWORD);
    }
    cli_ok(&server, &["quota", "set", "bob", "--storage", "20K", "--messages", "100"]);
    let shown = cli_ok(&server, &["quota", "get", "bob"]);
    assert!(shown.contains("20"), "{shown}");
    let json: serde_json::Value =
        serde_json::from_str(&cli_ok(&server, &["quota", "get", "bob", "--json"])).unwrap();
    assert_eq!(json["limits"]["storage"], 20 * 1024);
    assert_eq!(json["limits"]["messages"], 100);
    assert_eq!(json["used"]["mailboxes"], 6);

    let mut bob = login(&server, "bob");
    let caps = ok(&mut bob, "c", "CAPABILITY").join(" ");
    for cap in [
        "ACL",
        "RIGHTS=texk",
        "QUOTA",
        "QUOTA=RES-STORAGE",
        "QUOTA=RES-MESSAGE",
        "QUOTA=RES-MAILBOX",
        "QUOTASET",
        "LIST-MYRIGHTS",
    ] {
        assert!(caps.split_whitespace().any(|c| c == cap), "{cap} missing: {caps}");
    }
    let r = ok(&mut bob, "q", "GETQUOTAROOT INBOX");
    assert_eq!(r[0], "* QUOTAROOT INBOX bob");
    assert!(r[1].starts_with("* QUOTA bob (STORAGE 0 20 MESSAGE 0 100 MAILBOX 6 "), "{r:?}");

    // Ten clients append 3 KiB each at once against 20 KiB: exactly as many as fit land.
    let addr = server.imap;
    let handles: Vec<_> = (0..10)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Client::plain(addr);
                c.read_line();
                c.send(&format!("a LOGIN bob {PASSWORD}"));
                c.expect_tagged("a");
                let msg = message(&format!("c{i}"), 3000);
                c.send(&format!("b APPEND INBOX {{{}+}}\r\n{msg}", msg.len()));
                c.expect_tagged("b").last().unwrap().clone()
            })
        })
        .collect();
    let answers: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let stored = answers.iter().filter(|a| a.starts_with("b OK")).count();
    let refused = answers.iter().filter(|a| a.starts_with("b NO [OVERQUOTA]")).count();
    assert_eq!(stored + refused, 10, "{answers:?}");
    let size = message("c0", 3000).len();
    assert_eq!(stored, 20 * 1024 / size, "{answers:?}");
    let r = ok(&mut bob, "q2", "GETQUOTA bob");
    let used: u64 = r[0].split("STORAGE ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(used <= 20, "{r:?}");

    // LMTP: over quota is 452 4.2.2 with nothing stored; a message alone above the limit 552.
    let before = status(&mut bob, "t", "INBOX", "MESSAGES");
    let (rcpt, data) = lmtp(server.lmtp.unwrap(), "bob@example.org", &message("late", 5000));
    let answer = data.unwrap_or(rcpt);
    assert!(answer.starts_with("452 4.2.2"), "{answer}");
    let (rcpt, data) = lmtp(server.lmtp.unwrap(), "bob@example.org", &message("huge", 30_000));
    let answer = data.unwrap_or(rcpt);
    assert!(answer.starts_with("552 5.2.2") || answer.starts_with("452 4.2.2"), "{answer}");
    assert_eq!(status(&mut bob, "t2", "INBOX", "MESSAGES"), before);

    // Expunge gives the space back at once.
    ok(&mut bob, "s", "SELECT INBOX");
    ok(&mut bob, "d", "STORE 1:* +FLAGS.SILENT (\\Deleted)");
    ok(&mut bob, "e", "EXPUNGE");
    let r = ok(&mut bob, "q3", "GETQUOTA bob");
    assert!(r[0].contains("STORAGE 0 20"), "{r:?}");
    let r = ok(&mut bob, "a", &format!("APPEND INBOX {{{}+}}\r\n{}", size, message("c0", 3000)));
    assert!(tagged(&r).starts_with("a OK"), "{r:?}");

    // SETQUOTA is for admins.
    let r = run(&mut bob, "x", "SETQUOTA bob (STORAGE 1000)");
    assert!(tagged(&r).starts_with("x NO [NOPERM]"), "{r:?}");
    let mut alice = login(&server, "alice");
    let r = ok(&mut alice, "x", "SETQUOTA bob (STORAGE 1000 MESSAGE 5)");
    assert!(r[0].starts_with("* QUOTA bob (STORAGE "), "{r:?}");
    assert!(r[0].contains("1000 MESSAGE 1 5"), "{r:?}");
}

#[test]
fn mbsync_syncs_a_team_mailbox_both_ways() {
    if !common::available("mbsync", "isync") {
        return;
    }
    let server = team_server();
    for n in 1..=3 {
        let (_, data) = lmtp(server.lmtp.unwrap(), "support@example.org", &message(&format!("t{n}"), 10));
        assert!(data.unwrap().starts_with("250"));
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mail");
    std::fs::create_dir_all(&root).unwrap();
    let rc = dir.path().join("mbsyncrc");
    // The member's device syncs the team's tree, as a user sets up a shared folder (INBOX in
    // mbsync's Patterns always means the personal one, so the team's folders are named whole).
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount server\nHost 127.0.0.1\nPort {port}\nUser alice\nPass \"{PASSWORD}\"\n\
             SSLType IMAPS\nCertificateFile {cert}\nTimeout 30\n\n\
             IMAPStore remote\nAccount server\n\n\
             MaildirStore local\nPath {root}/\nSubFolders Verbatim\n\n\
             Channel team\nFar :remote:\nNear :local:\nPatterns Shared/support/INBOX Shared/support/Archive\nCreate Both\nExpunge Both\n\
             SyncState *\n",
            port = server.imaps.port(),
            cert = server.cert_path().display(),
            root = root.display(),
        ),
    )
    .unwrap();
    let sync = || {
        let done = common::run_program(
            std::process::Command::new("mbsync").arg("-c").arg(&rc).arg("team"),
            dir.path(),
            "mbsync",
            Duration::from_secs(60),
        );
        done.assert_success("mbsync", &server);
        done.output()
    };
    let first = sync();
    let count = |folder: &str| -> usize {
        ["cur", "new"]
            .iter()
            .map(|d| {
                std::fs::read_dir(root.join("Shared/support").join(folder).join(d))
                    .map(|r| r.count())
                    .unwrap_or(0)
            })
            .sum()
    };
    let tree: Vec<String> = walk(&root);
    assert_eq!(
        count("INBOX"),
        3,
        "the device got the team's mail: {first}\n{tree:?}\n{}",
        server.log_tail(30)
    );
    // Read on the device: the team sees it; flagged by bob on the server: the device sees it.
    let inbox = root.join("Shared/support/INBOX");
    let entry = std::fs::read_dir(inbox.join("new"))
        .unwrap()
        .chain(std::fs::read_dir(inbox.join("cur")).unwrap())
        .next()
        .unwrap()
        .unwrap()
        .path();
    let name = entry.file_name().unwrap().to_string_lossy().into_owned();
    let base = name.split(":2,").next().unwrap();
    std::fs::rename(&entry, inbox.join("cur").join(format!("{base}:2,S"))).unwrap();
    sync();
    let mut bob = login(&server, "bob");
    let st = status(&mut bob, "s", INBOX, "UNSEEN");
    assert!(st.contains("UNSEEN 2"), "{st}");
}

/// Every path below `dir` (for failure messages).
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path().display().to_string());
            out.extend(walk(&e.path()));
        }
    }
    out
}
