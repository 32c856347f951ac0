//! The everyday admin CLI (issue 14) against the real binary: `who` and `kick` through the
//! running server's control socket, `mailbox list|status|create|delete`, `search` and
//! `expunge` with IMAP SEARCH keys (an IDLE client hears of the expunge at once), `index
//! rebuild`, `config check`, the `--json` document of each, and the systemd unit in `dist/`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{Client, Deployment, TestServer};
use serde_json::Value;

const PASSWORD: &str = "admin-cli-pw";

fn server() -> TestServer {
    let server = TestServer::start_with("allow_plaintext_auth = true");
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    server
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; returns its standard output.
fn cli_ok(server: &TestServer, args: &[&str]) -> String {
    let out = server.cli(args, "");
    assert!(out.status.success(), "postfach {args:?} failed: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// Runs a command with `--json` that must succeed; returns the one document it printed.
fn cli_json(server: &TestServer, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let stdout = cli_ok(server, &args);
    assert_eq!(stdout.lines().count(), 1, "one JSON document on one line: {stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("postfach {args:?}: not JSON ({e}): {stdout}"))
}

/// Runs a command that must fail with exit code 1; returns its standard error.
fn cli_fails(server: &TestServer, args: &[&str]) -> String {
    let out = server.cli(args, "");
    assert_eq!(out.status.code(), Some(1), "postfach {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stderr)
}

fn login(server: &TestServer, user: &str) -> Client {
    let mut c = server.connect();
    c.read_line();
    c.send(&format!("a LOGIN {user} {PASSWORD}"));
    let lines = c.expect_tagged("a");
    assert!(lines.last().unwrap().starts_with("a OK"), "{lines:?}");
    c
}

fn ok(c: &mut Client, tag: &str, command: &str) -> Vec<String> {
    c.send(&format!("{tag} {command}"));
    let lines = c.expect_tagged(tag);
    assert!(lines.last().unwrap().starts_with(&format!("{tag} OK")), "{command}: {lines:?}");
    lines
}

/// APPENDs a message (LITERAL+) with flags and an internal date.
fn append(c: &mut Client, mailbox: &str, flags: &str, date: &str, from: &str, subject: &str) {
    let msg = format!(
        "From: {from}\r\nTo: alice@example.org\r\nSubject: {subject}\r\nDate: {date}\r\n\r\nBody of {subject}.\r\n"
    );
    c.send_raw(format!("p APPEND {mailbox} ({flags}) \"{date}\" {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
    let lines = c.expect_tagged("p");
    assert!(lines.last().unwrap().starts_with("p OK"), "{lines:?}");
}

/// The sessions `who --json` lists, as (user, selected) pairs.
fn who(server: &TestServer, extra: &[&str]) -> Vec<(Value, Value)> {
    let mut args = vec!["who"];
    args.extend_from_slice(extra);
    let doc = cli_json(server, &args);
    let sessions = doc["sessions"].as_array().unwrap();
    for s in sessions {
        for field in ["id", "user", "address", "transport", "connected", "logged_in", "selected"] {
            assert!(s.get(field).is_some(), "{field} missing in {s}");
        }
        assert!(s["connected"].as_str().unwrap().ends_with('Z'), "{s}");
    }
    sessions.iter().map(|s| (s["user"].clone(), s["selected"].clone())).collect()
}

#[test]
fn who_lists_the_sessions_and_kick_ends_them() {
    let mut server = server();
    let socket = server.data_dir().join("control.sock");
    assert!(socket.exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);

    let mut first = login(&server, "alice");
    ok(&mut first, "s", "SELECT INBOX");
    let mut second = login(&server, "alice");
    ok(&mut second, "s", "EXAMINE Archive");
    let mut bob = login(&server, "bob");
    let mut anonymous = server.connect();
    anonymous.read_line();

    let sessions = who(&server, &[]);
    assert_eq!(
        sessions,
        vec![
            ("alice".into(), "INBOX".into()),
            ("alice".into(), "Archive".into()),
            ("bob".into(), Value::Null),
        ],
        "logged-in sessions, in the order they connected"
    );
    assert_eq!(who(&server, &["--all"]).len(), 4, "--all adds the connection that has not logged in");
    assert_eq!(who(&server, &["alice"]).len(), 2);
    let table = cli_ok(&server, &["who", "alice"]);
    assert!(table.starts_with("USER"), "{table}");
    assert_eq!(table.lines().filter(|l| l.starts_with("alice ")).count(), 2, "{table}");
    assert!(table.contains("INBOX") && table.contains("Archive") && table.contains("127.0.0.1:"), "{table}");

    // The selected mailbox follows the session.
    ok(&mut first, "c", "CLOSE");
    assert_eq!(who(&server, &["alice"])[0].1, Value::Null);
    ok(&mut first, "s", "SELECT INBOX");

    // One session idles, one waits between commands: both get BYE and are closed.
    second.send("i IDLE");
    assert!(second.read_line().starts_with('+'));
    let kicked = cli_json(&server, &["kick", "alice"]);
    assert_eq!(kicked["kicked"], 2, "{kicked}");
    assert_eq!(kicked["ended"], 2, "{kicked}");
    for client in [&mut first, &mut second] {
        let line = client.read_line();
        assert!(line.starts_with("* BYE"), "{line}");
        client.expect_closed();
    }
    ok(&mut bob, "n", "NOOP");
    assert_eq!(who(&server, &[]), vec![("bob".into(), Value::Null)]);
    let nobody = cli_json(&server, &["kick", "nobody"]);
    assert_eq!((nobody["kicked"].as_u64(), nobody["ended"].as_u64()), (Some(0), Some(0)));
    // Kicked users may come back.
    login(&server, "alice");

    // Without a server: both say so, exit code 1; the socket file went with the server.
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).is_some());
    assert!(!socket.exists(), "the control socket is removed on exit");
    let err = cli_fails(&server, &["who"]);
    assert!(err.contains("no server is running"), "{err}");
    let err = cli_fails(&server, &["kick", "alice"]);
    assert!(err.contains("no server is running"), "{err}");
}

#[test]
fn mailbox_list_status_create_delete() {
    let server = server();
    let listed = cli_json(&server, &["mailbox", "list", "alice"]);
    assert_eq!(listed["account"], "alice");
    let names: Vec<&str> =
        listed["mailboxes"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]);
    let trash = &listed["mailboxes"][5];
    assert_eq!((trash["special_use"].as_str(), trash["subscribed"].as_bool()), (Some("\\Trash"), Some(true)));
    for field in ["messages", "unseen", "size"] {
        assert_eq!(trash[field], 0, "{field}: {trash}");
    }

    let created = cli_json(&server, &["mailbox", "create", "alice", "Lists/rust", "--subscribe"]);
    assert_eq!(created["created"], serde_json::json!(["Lists", "Lists/rust"]));
    let mut c = login(&server, "alice");
    let list = ok(&mut c, "l", "LSUB \"\" Lists*");
    assert!(list.iter().any(|l| l.contains("Lists/rust")), "subscribed: {list:?}");
    assert!(!list.iter().any(|l| l.ends_with(" Lists")), "only the one asked for: {list:?}");
    append(&mut c, "Lists/rust", "\\Seen", "01-Dec-2026 10:00:00 +0000", "a@example.org", "one");
    append(&mut c, "Lists/rust", "", "02-Dec-2026 10:00:00 +0000", "b@example.org", "two");

    let status = cli_json(&server, &["mailbox", "status", "alice", "Lists/rust"]);
    assert_eq!(status["messages"], 2);
    assert_eq!(status["unseen"], 1);
    assert_eq!(status["uidnext"], 3);
    assert_eq!(status["deleted"], 0);
    assert!(status["uidvalidity"].as_u64().unwrap() > 0 && status["highestmodseq"].as_u64().unwrap() > 0);
    assert!(status["size"].as_u64().unwrap() > 0);
    let table = cli_ok(&server, &["mailbox", "status", "alice", "Lists/rust"]);
    for counter in ["UIDVALIDITY", "UIDNEXT", "HIGHESTMODSEQ", "MESSAGES", "UNSEEN", "SIZE", "DELETED"] {
        assert!(table.contains(counter), "{counter} missing: {table}");
    }
    let table = cli_ok(&server, &["mailbox", "list", "alice"]);
    assert!(table.lines().any(|l| l.starts_with("Lists/rust") && l.contains(" 2 ")), "{table}");

    assert!(cli_fails(&server, &["mailbox", "create", "alice", "Lists"]).contains("already"));
    assert!(cli_fails(&server, &["mailbox", "create", "alice", "INBOX"]).contains("INBOX"));
    assert!(cli_fails(&server, &["mailbox", "create", "nobody", "X"]).contains("no such account"));
    assert!(cli_fails(&server, &["mailbox", "delete", "alice", "INBOX"]).contains("INBOX cannot be deleted"));
    assert!(cli_fails(&server, &["mailbox", "delete", "alice", "Lists"]).contains("child mailboxes"));
    assert!(cli_fails(&server, &["mailbox", "delete", "alice", "Lists/rust"]).contains("--yes"));
    assert!(cli_fails(&server, &["mailbox", "status", "alice", "Nowhere"]).contains("no mailbox"));
    let deleted = cli_json(&server, &["mailbox", "delete", "alice", "Lists/rust", "--yes"]);
    assert_eq!(deleted["messages"], 2);
    cli_ok(&server, &["mailbox", "delete", "alice", "Lists"]);
    // The logged-in client sees it at once.
    let list = ok(&mut c, "l", "LIST \"\" Lists*");
    assert_eq!(list.len(), 1, "{list:?}");
    // The seen-mode subcommand still sits beside them.
    assert_eq!(cli_ok(&server, &["mailbox", "seen-mode", "alice", "INBOX"]).trim(), "shared");

    // The existing lists, with --json.
    assert_eq!(cli_json(&server, &["user", "list"]), serde_json::json!({"users": ["alice", "bob"]}));
    cli_ok(&server, &["team", "create", "support", "--address", "support@example.org"]);
    cli_ok(&server, &["team", "add-member", "support", "bob", "--rights", "lrs"]);
    assert_eq!(
        cli_json(&server, &["team", "list"]),
        serde_json::json!({"teams": [{"name": "support", "address": "support@example.org",
            "members": [{"name": "bob", "rights": "lrs"}]}]})
    );
}

/// Subjects of the matches of `search alice ARGS --json`.
fn found(server: &TestServer, args: &[&str]) -> Vec<String> {
    let mut all = vec!["search", "alice"];
    all.extend_from_slice(args);
    let doc = cli_json(server, &all);
    let matches = doc["matches"].as_array().unwrap();
    assert_eq!(doc["count"].as_u64(), Some(matches.len() as u64));
    for m in matches {
        for field in ["mailbox", "uid", "date", "from", "subject", "size", "flags"] {
            assert!(m.get(field).is_some(), "{field} missing in {m}");
        }
    }
    matches.iter().map(|m| m["subject"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn search_and_expunge_with_imap_search_keys() {
    let server = server();
    let mut c = login(&server, "alice");
    append(
        &mut c,
        "INBOX",
        "\\Seen",
        "20-Nov-2026 09:00:00 +0000",
        "Carol <carol@example.org>",
        "old report",
    );
    append(&mut c, "INBOX", "", "02-Dec-2026 09:00:00 +0000", "Dave <dave@example.org>", "new report");
    append(&mut c, "INBOX", "", "03-Dec-2026 09:00:00 +0000", "Carol <carol@example.org>", "lunch");
    append(&mut c, "INBOX", "\\Deleted", "04-Dec-2026 09:00:00 +0000", "eve@example.org", "spam");
    append(
        &mut c,
        "Archive",
        "\\Seen",
        "05-Dec-2026 09:00:00 +0000",
        "Carol <carol@example.org>",
        "archived",
    );

    assert_eq!(found(&server, &["FROM", "carol"]), ["archived", "old report", "lunch"]);
    assert_eq!(found(&server, &["SUBJECT report"]), ["old report", "new report"]);
    assert_eq!(found(&server, &["UNSEEN", "UNDELETED"]), ["new report", "lunch"]);
    assert_eq!(
        found(&server, &["SINCE", "1-Dec-2026", "NOT", "DELETED"]),
        ["archived", "new report", "lunch"]
    );
    assert_eq!(found(&server, &["OR FROM dave SUBJECT lunch"]), ["new report", "lunch"]);
    assert_eq!(found(&server, &["--mailbox", "Archive", "ALL"]), ["archived"]);
    assert_eq!(found(&server, &["UID", "2:*", "--mailbox", "INBOX"]), ["new report", "lunch", "spam"]);
    assert_eq!(found(&server, &["SUBJECT", "no such thing"]), Vec::<String>::new());
    let doc = cli_json(&server, &["search", "alice", "FROM", "dave"]);
    let hit = &doc["matches"][0];
    assert_eq!((hit["mailbox"].as_str(), hit["uid"].as_u64()), (Some("INBOX"), Some(2)));
    assert_eq!(hit["from"], "Dave <dave@example.org>");
    assert_eq!(hit["date"], "2026-12-02T09:00:00Z");
    let table = cli_ok(&server, &["search", "alice", "FROM", "carol"]);
    assert!(table.starts_with("MAILBOX"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("INBOX") && l.ends_with("lunch")), "{table}");

    // Keys only a session understands are refused, with the reason.
    assert!(cli_fails(&server, &["search", "alice", "$"]).contains("SAVE"));
    assert!(cli_fails(&server, &["search", "alice", "1:3"]).contains("UID 1:3"));
    assert!(cli_fails(&server, &["search", "alice", "RECENT"]).contains("session"));
    assert!(cli_fails(&server, &["search", "alice", "SINCE", "yesterday"]).contains("yesterday"));
    assert!(cli_fails(&server, &["search", "nobody", "ALL"]).contains("no such account"));

    // An IDLE client in INBOX hears of the expunge at once (the CLI tells the server).
    let mut idler = login(&server, "alice");
    ok(&mut idler, "s", "SELECT INBOX");
    idler.send("i IDLE");
    assert!(idler.read_line().starts_with('+'));

    let dry = cli_json(&server, &["expunge", "alice", "INBOX", "SUBJECT", "report", "--dry-run"]);
    assert_eq!((dry["matched"].as_u64(), dry["expunged"].as_u64()), (Some(2), Some(0)));
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["matches"].as_array().unwrap().len(), 2);
    let dry_text = cli_ok(&server, &["expunge", "alice", "INBOX", "SUBJECT report", "--dry-run"]);
    assert!(dry_text.contains("would expunge 2 message(s)"), "{dry_text}");
    assert_eq!(found(&server, &["--mailbox", "INBOX", "ALL"]).len(), 4, "a dry run removes nothing");

    let done = cli_json(&server, &["expunge", "alice", "INBOX", "SUBJECT", "report"]);
    assert_eq!(done["expunged"], 2, "{done}");
    assert_eq!(done["uids"], serde_json::json!([1, 2]));
    idler.set_timeout(Duration::from_secs(5));
    let mut expunges = Vec::new();
    while expunges.len() < 2 {
        let line = idler.read_line();
        if line.ends_with(" EXPUNGE") {
            expunges.push(line);
        }
    }
    // Messages 1 and 2 of 4: lowest first, or highest first (both name the same two).
    assert!(
        expunges == ["* 1 EXPUNGE", "* 1 EXPUNGE"] || expunges == ["* 2 EXPUNGE", "* 1 EXPUNGE"],
        "{expunges:?}"
    );
    idler.send("DONE");
    idler.expect_tagged("i");
    // Only the matches went: "spam" was flagged \Deleted before and stays (UID EXPUNGE).
    assert_eq!(found(&server, &["--mailbox", "INBOX", "ALL"]), ["lunch", "spam"]);
    let status = cli_json(&server, &["mailbox", "status", "alice", "INBOX"]);
    assert_eq!((status["messages"].as_u64(), status["deleted"].as_u64()), (Some(2), Some(1)));
    let none = cli_ok(&server, &["expunge", "alice", "INBOX", "SUBJECT", "report"]);
    assert!(none.contains("expunged 0 message(s)"), "{none}");
    assert!(cli_fails(&server, &["expunge", "alice", "INBOX", "$"]).contains("SAVE"));
}

#[test]
fn index_rebuild_derives_the_messages_again() {
    let server = server();
    let mut c = login(&server, "alice");
    append(&mut c, "INBOX", "", "01-Dec-2026 09:00:00 +0000", "carol@example.org", "first words");
    append(&mut c, "Archive", "", "01-Dec-2026 09:00:00 +0000", "carol@example.org", "second words");
    let mut b = login(&server, "bob");
    append(&mut b, "INBOX", "", "01-Dec-2026 09:00:00 +0000", "carol@example.org", "bob's words");

    let mine = cli_json(&server, &["index", "rebuild", "alice"]);
    assert_eq!(mine, serde_json::json!({"account": "alice", "scheduled": 2, "derived": 2}));
    let all = cli_json(&server, &["index", "rebuild"]);
    assert_eq!(all["account"], Value::Null);
    assert_eq!((all["scheduled"].as_u64(), all["derived"].as_u64()), (Some(3), Some(3)));
    let text = cli_ok(&server, &["index", "rebuild", "bob"]);
    assert!(text.contains("derived 1 of 1"), "{text}");
    assert!(cli_fails(&server, &["index", "rebuild", "nobody"]).contains("no such account"));
    // Search and the running server's sessions answer as before.
    assert_eq!(found(&server, &["BODY", "words"]), ["second words", "first words"]);
    let lines = ok(&mut c, "f", "EXAMINE INBOX");
    assert!(lines.iter().any(|l| l == "* 1 EXISTS"), "{lines:?}");
    let lines = ok(&mut c, "f", "FETCH 1 ENVELOPE");
    assert!(lines[0].contains("\"first words\""), "{lines:?}");
}

#[test]
fn config_check_lists_every_problem() {
    let deployment = Deployment::new("");
    let dir = deployment.data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "colour = \"blue\"\n[imap]\nlisten = [\"nowhere\"]\n").unwrap();
    let bad = bad.to_str().unwrap();

    let out = deployment.cli(&["config", "check", bad], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("2 problem(s)"), "{stdout}");
    assert!(stdout.contains("colour: unknown key"), "{stdout}");
    assert!(stdout.contains("imap.listen[0]: not an IP address with port"), "{stdout}");

    let out = deployment.cli(&["config", "check", bad, "--json"], "");
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    let paths: Vec<&str> =
        doc["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["colour", "imap.listen[0]"]);

    // Not TOML at all: one problem, still exit code 1.
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "[imap\n").unwrap();
    let out = deployment.cli(&["config", "check", broken.to_str().unwrap(), "--json"], "");
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["errors"].as_array().unwrap().len(), 1, "{doc}");
    assert!(doc["errors"][0]["problem"].as_str().unwrap().contains("TOML"), "{doc}");
    let missing = deployment.cli(&["config", "check", dir.join("none.toml").to_str().unwrap()], "");
    assert_eq!(missing.status.code(), Some(1));

    // The deployment's own file (given with --config) is valid.
    let out = deployment.cli(&["config", "check", "--json"], "");
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((doc["valid"].as_bool(), doc["errors"].as_array().map(Vec::len)), (Some(true), Some(0)));
}

/// `systemd-analyze verify` accepts dist/postfach.service (every key known and well-formed),
/// and `systemd-analyze security` rates its sandbox; skipped where systemd-analyze is missing.
#[test]
fn the_systemd_unit_verifies() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/postfach.service");
    let text_of_unit = std::fs::read_to_string(&unit).unwrap();
    for option in [
        "User=postfach",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/postfach",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "LimitNOFILE=",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(text_of_unit.lines().any(|l| l.starts_with(option)), "{option} missing");
    }
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if !analyze.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no systemd-analyze");
        return;
    }
    // `verify` insists that ExecStart's program exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("postfach.service");
    std::fs::write(&copy, text_of_unit.replace("/usr/local/bin/postfach", common::binary())).unwrap();
    let out: Output =
        Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&copy).output().unwrap();
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    // Unknown or malformed keys are only warnings: any line about the unit fails the test.
    let about_unit: Vec<&str> = said.lines().filter(|l| l.contains("postfach.service")).collect();
    assert!(out.status.success() && about_unit.is_empty(), "systemd-analyze verify:\n{said}");

    let out =
        Command::new("systemd-analyze").args(["security", "--offline=true"]).arg(&copy).output().unwrap();
    let said = text(&out.stdout);
    let exposure = said
        .lines()
        .find_map(|l| l.split("Overall exposure level for postfach.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f32>().ok());
    match exposure {
        Some(level) => assert!(level <= 2.5, "exposure {level}:\n{said}"),
        // Older systemd has no --offline: nothing to rate.
        None => eprintln!("no security rating: {}", text(&out.stderr)),
    }
}
