//! Automatic clean-up of Trash and Junk (issue 14), driven through the real binary: the
//! `cleanup run` command at a chosen time, the per-account override (`user set`), and the
//! server's own periodic pass reaching an IDLE client as EXPUNGE.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Client, PATIENCE, TestServer};

const PASSWORD: &str = "cleanup-test-pw";
const DAY: u64 = 24 * 3600;

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
    ok(&mut c, "l", &format!("LOGIN {user} {PASSWORD}"));
    c
}

fn ok(c: &mut Client, tag: &str, command: &str) -> Vec<String> {
    c.send(&format!("{tag} {command}"));
    let lines = c.expect_tagged(tag);
    assert!(lines.last().unwrap().starts_with(&format!("{tag} OK")), "{command}: {lines:?}");
    lines
}

/// APPENDs a message with `subject` (and an INTERNALDATE far in the past: the age that counts
/// is the save date, not this).
fn append(c: &mut Client, mailbox: &str, subject: &str) {
    let msg = format!(
        "From: a@example.org\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n\r\nhi\r\n"
    );
    c.send_raw(
        format!("ap APPEND {mailbox} \"01-Jan-2000 00:00:00 +0000\" {{{}+}}\r\n{msg}\r\n", msg.len())
            .as_bytes(),
    );
    let lines = c.expect_tagged("ap");
    assert!(lines.last().unwrap().starts_with("ap OK"), "{lines:?}");
}

/// The subjects in `mailbox`, by UID.
fn subjects(c: &mut Client, mailbox: &str) -> Vec<String> {
    ok(c, "s", &format!("EXAMINE {mailbox}"));
    let lines = ok(c, "f", "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    lines.iter().filter_map(|l| l.strip_prefix("Subject: ")).map(str::to_owned).collect()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Waits until the clock's second is past `t`.
fn sleep_past(t: u64) {
    while unix_now() <= t {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn cleanup_run_removes_by_save_date_and_the_account_override_wins() {
    let server = TestServer::start_with("allow_plaintext_auth = true");
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    let out = cli_ok(&server, &["user", "set", "alice", "--trash-days", "7"]);
    assert!(out.contains("trash_days: 7 days (own setting)"), "{out}");
    assert!(out.contains("junk_days:  30 days (default)"), "{out}");

    let mut alice = login(&server, "alice");
    let mut bob = login(&server, "bob");
    append(&mut alice, "Trash", "old-1");
    append(&mut alice, "Trash", "old-2");
    append(&mut alice, "Junk", "junk-1");
    append(&mut alice, "INBOX", "inbox-1");
    append(&mut bob, "Trash", "bob-1");
    // Everything so far was saved at or before `boundary`; the next message two seconds later.
    let boundary = unix_now();
    sleep_past(boundary + 1);
    append(&mut alice, "Trash", "new-1");

    // Seven days after the boundary (plus one second): alice's limit of 7 days takes what was
    // saved up to the boundary and leaves the newer one; bob (the default 30) keeps his.
    let now = (boundary + 7 * DAY + 1).to_string();
    let out = cli_ok(&server, &["cleanup", "run", "--now", &now]);
    assert_eq!(out.trim(), "alice\tTrash\t2 expunged (older than 7 days)", "{out}");
    assert_eq!(subjects(&mut alice, "Trash"), vec!["new-1"]);
    assert_eq!(subjects(&mut alice, "Junk"), vec!["junk-1"]);
    assert_eq!(subjects(&mut bob, "Trash"), vec!["bob-1"]);

    // A session on alice's Trash (in the server) learns of the CLI's expunge at its next command.
    // Thirty-one days on: the defaults apply to the rest; INBOX is never touched.
    ok(&mut alice, "s", "SELECT Trash");
    let now = (boundary + 31 * DAY + 10).to_string();
    let out = cli_ok(&server, &["cleanup", "run", "--now", &now]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec![
            "alice\tJunk\t1 expunged (older than 30 days)",
            "alice\tTrash\t1 expunged (older than 7 days)",
            "bob\tTrash\t1 expunged (older than 30 days)",
        ]
    );
    let noop = ok(&mut alice, "n", "NOOP");
    assert!(noop.iter().any(|l| l == "* 1 EXPUNGE"), "{noop:?}");
    assert_eq!(subjects(&mut alice, "INBOX"), vec!["inbox-1"]);
    assert!(subjects(&mut bob, "Trash").is_empty());
    assert_eq!(cli_ok(&server, &["cleanup", "run", "--now", &now]).trim(), "nothing to remove");
    assert_eq!(cli_ok(&server, &["cleanup", "run", "--now", &now, "--json"]).trim(), "{\"removed\":[]}");

    // Back to the default; 0 turns it off for the account.
    let out = cli_ok(&server, &["user", "set", "alice", "--trash-days", "default", "--junk-days", "0"]);
    assert!(
        out.contains("trash_days: 30 days (default)") && out.contains("junk_days:  never (own setting)"),
        "{out}"
    );
    let refused = server.cli(&["user", "set", "alice", "--trash-days", "-3"], "");
    assert!(!refused.status.success());
}

/// A mailbox's own limit (issue 18 item 3): the METADATA entry
/// `/shared/vendor/vendor.postfach/cleanup-days` makes any mailbox cleaned, and on Trash it wins
/// over the account's and the server's limits; a value that is not a number of days is ignored.
#[test]
fn a_mailbox_metadata_entry_sets_its_own_limit() {
    let server = TestServer::start_with("allow_plaintext_auth = true");
    server.add_user("carol", PASSWORD);
    let mut carol = login(&server, "carol");
    ok(&mut carol, "c1", "CREATE Newsletters");
    // Archive is one of the mailboxes every account starts with.
    append(&mut carol, "Newsletters", "news-1");
    append(&mut carol, "Archive", "archive-1");
    append(&mut carol, "Trash", "trash-1");
    ok(&mut carol, "m1", "SETMETADATA Newsletters (/shared/vendor/vendor.postfach/cleanup-days \"3\")");
    ok(&mut carol, "m2", "SETMETADATA Trash (/shared/vendor/vendor.postfach/cleanup-days \"2\")");
    ok(&mut carol, "m3", "SETMETADATA Archive (/shared/vendor/vendor.postfach/cleanup-days \"soon\")");
    let got = ok(&mut carol, "g", "GETMETADATA Newsletters /shared/vendor/vendor.postfach/cleanup-days");
    assert!(got.iter().any(|l| l.contains("cleanup-days \"3\"")), "{got:?}");
    let saved = unix_now();

    // Two days on: nothing yet. Three and four: Trash (2) and Newsletters (3); Archive never.
    let now = (saved + 2 * DAY - 10).to_string();
    assert_eq!(cli_ok(&server, &["cleanup", "run", "--now", &now]).trim(), "nothing to remove");
    let now = (saved + 3 * DAY + 1).to_string();
    let out = cli_ok(&server, &["cleanup", "run", "--now", &now]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec![
            "carol\tNewsletters\t1 expunged (older than 3 days)",
            "carol\tTrash\t1 expunged (older than 2 days)"
        ]
    );
    assert!(subjects(&mut carol, "Newsletters").is_empty());
    assert_eq!(subjects(&mut carol, "Archive"), vec!["archive-1"]);
    let now = (saved + 400 * DAY).to_string();
    assert_eq!(cli_ok(&server, &["cleanup", "run", "--now", &now]).trim(), "nothing to remove");
}

#[test]
fn the_servers_own_pass_reaches_an_idle_client() {
    // Passes every second, on a clock eight days ahead (a debug-build test hook): what is
    // appended now is eight days old to the clean-up, inside the default 30 days.
    let skew = (8 * DAY).to_string();
    let server = TestServer::start_with_env(
        "allow_plaintext_auth = true",
        "[cleanup]\nevery = 1\n",
        &["lmtp"],
        &[("POSTFACH_TEST_CLOCK_SKEW", &skew)],
    );
    server.add_user("alice", PASSWORD);
    let mut alice = login(&server, "alice");
    append(&mut alice, "Trash", "t1");
    append(&mut alice, "Trash", "t2");
    append(&mut alice, "INBOX", "keep");
    ok(&mut alice, "s", "SELECT Trash");
    // A pass or two go by with the default limit: nothing happens.
    std::thread::sleep(Duration::from_millis(2200));
    alice.send("i IDLE");
    assert!(alice.read_line().starts_with("+ "));

    // Seven days for alice: the next pass takes both, and IDLE shows it.
    cli_ok(&server, &["user", "set", "alice", "--trash-days", "7"]);
    let deadline = Instant::now() + PATIENCE;
    let mut expunges = Vec::new();
    while expunges.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no EXPUNGE during IDLE; got {expunges:?}\n{}",
            server.log_tail(30)
        );
        let line = alice.read_line();
        if line.ends_with(" EXPUNGE") {
            expunges.push(line);
        }
    }
    assert_eq!(expunges.len(), 2, "{expunges:?}");
    alice.send("DONE");
    alice.expect_tagged("i");
    assert_eq!(subjects(&mut alice, "INBOX"), vec!["keep"]);
    assert!(subjects(&mut alice, "Trash").is_empty());
    // The log is written by its own thread: on a busy machine the line may trail the EXPUNGEs.
    let logged = |log: &str| {
        log.lines().any(|l| {
            l.contains("clean-up expunged")
                && l.contains("account=alice")
                && l.contains("mailbox=Trash")
                && l.contains("messages=2")
        })
    };
    let deadline = Instant::now() + PATIENCE;
    while !logged(&server.log()) {
        assert!(Instant::now() < deadline, "{}", server.log_tail(30));
        std::thread::sleep(Duration::from_millis(50));
    }
}
