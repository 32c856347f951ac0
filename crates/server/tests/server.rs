//! Black-box tests of the `postfach` binary: listeners, TLS, STARTTLS, limits, timeouts,
//! shutdown, configuration errors and the `user` commands.
//!
//! They test what the server crate owns (sockets, TLS, the driver, the CLI); what a command means
//! is the session's business and is tested there. One test needs the real session's STARTTLS
//! and fails until it exists; its doc comment says so.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Client, TestServer, run_cli};

#[test]
fn greeting_over_tcp() {
    let server = TestServer::start();
    let mut client = server.connect();
    let greeting = client.read_line();
    assert!(greeting.starts_with("* OK"), "{greeting:?}");
}

#[test]
fn greeting_over_implicit_tls() {
    let server = TestServer::start();
    assert!(server.cert_path().is_file(), "a self-signed certificate is generated on first start");
    let mut client = server.connect_tls();
    let greeting = client.read_line();
    assert!(greeting.starts_with("* OK"), "{greeting:?}");
}

/// A synchronizing literal gets the driver's continuation request before its data is sent.
#[test]
fn synchronizing_literal_gets_a_continuation_request() {
    let server = TestServer::start();
    let mut client = server.connect();
    client.read_line();
    client.send("a APPEND INBOX {5}");
    assert_eq!(client.read_line(), "+ Ready for literal data");
}

/// STARTTLS upgrades the cleartext connection, and a command pipelined after `STARTTLS` in the
/// same write is thrown away, never executed (RFC 9051 §6.2.1, STARTTLS command injection).
///
/// NEEDS THE REAL SESSION: it fails while `postfach_imap::Session` is the placeholder that does
/// not answer STARTTLS; it passes once the session answers `a OK` with `Outcome::StartTls`.
#[test]
fn starttls_upgrades_and_discards_pipelined_commands() {
    let server = TestServer::start();
    let mut client = server.connect();
    client.set_timeout(Duration::from_secs(5));
    client.read_line();
    client.send_raw(b"a STARTTLS\r\nb NOOP\r\n");
    let lines = client.expect_tagged("a");
    let done = lines.last().unwrap();
    assert!(done.starts_with("a OK"), "STARTTLS failed: {lines:?}");
    client.start_tls(&server.cert_path());
    client.send("c NOOP");
    let lines = client.expect_tagged("c");
    assert!(lines.last().unwrap().starts_with("c OK"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("b ")), "the injected command ran: {lines:?}");
}

#[test]
fn bad_config_lists_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "data_dir = 5\n\
         colour = \"blue\"\n\
         [imap]\n\
         listen = [\"not an address\"]\n\
         max_connections = -1\n\
         preauth_timeout = \"long\"\n\
         [tls]\n\
         cert = \"/nonexistent/cert.pem\"\n\
         [log]\n\
         format = \"xml\"\n",
    )
    .unwrap();
    let out = run_cli(&config, &["serve"], "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "data_dir: expected a string",
        "colour: unknown key",
        "imap.listen[0]: not an IP address with port",
        "imap.max_connections: must be between",
        "imap.preauth_timeout: expected an integer",
        "tls.cert: no such file",
        "tls: give both cert and key",
        "log.format: must be \"text\" or \"json\"",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(out.stdout.is_empty(), "nothing may listen with a bad configuration");
}

#[test]
fn usage_error_exits_2() {
    let out = std::process::Command::new(common::binary()).args(["user", "delete"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The user commands work against the data directory of a running server.
#[test]
fn user_add_list_passwd_delete() {
    let server = TestServer::start();
    let list = |server: &TestServer| {
        let out = server.cli(&["user", "list"], "");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(list(&server), "");

    server.add_user("alice", "correct horse");
    server.add_user("bob", "battery staple");
    assert_eq!(list(&server), "alice\nbob\n");

    let again = server.cli(&["user", "add", "alice", "--password-stdin"], "x\n");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let empty = server.cli(&["user", "add", "carol", "--password-stdin"], "\n");
    assert_eq!(empty.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("must not be empty"));

    let passwd = server.cli(&["user", "passwd", "alice", "--password-stdin"], "new secret\n");
    assert!(passwd.status.success(), "{}", String::from_utf8_lossy(&passwd.stderr));
    let nobody = server.cli(&["user", "passwd", "nobody", "--password-stdin"], "x\n");
    assert_eq!(nobody.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no such user"));

    let refused = server.cli(&["user", "delete", "alice"], "");
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("--yes"), "the refusal must say why: {message}");
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    assert_eq!(list(&server), "alice\nbob\n");

    let deleted = server.cli(&["user", "delete", "alice", "--yes"], "");
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    assert_eq!(list(&server), "bob\n");
}

#[test]
fn sigterm_says_bye_and_exits_0() {
    let mut server = TestServer::start();
    let mut plain = server.connect();
    let mut tls = server.connect_tls();
    plain.read_line();
    tls.read_line();
    server.signal("TERM");
    assert_eq!(plain.read_line(), "* BYE Server shutting down");
    assert_eq!(tls.read_line(), "* BYE Server shutting down");
    plain.expect_closed();
    tls.expect_closed();
    let status = server.wait_exit(Duration::from_secs(15)).expect("the server did not exit");
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
}

#[test]
fn sigint_also_shuts_down_cleanly() {
    let mut server = TestServer::start();
    server.signal("INT");
    let status = server.wait_exit(Duration::from_secs(15)).expect("the server did not exit");
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
}

#[test]
fn connection_cap_turns_clients_away() {
    let server = TestServer::start_with("max_connections = 1");
    let mut first = server.connect();
    assert!(first.read_line().starts_with("* OK"));

    let mut second = server.connect();
    assert_eq!(second.read_line(), "* BYE [UNAVAILABLE] Too many connections");
    second.expect_closed();
    // On the TLS port the client is closed without a word (no handshake under overload).
    let mut raw = Client::plain(server.imaps);
    raw.expect_closed();

    // The slot comes back when the first client leaves.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut next = server.connect();
        let line = next.read_line();
        if line.starts_with("* OK") {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was not released: {line:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn preauth_timeout_logs_out_silent_clients() {
    let server = TestServer::start_with("preauth_timeout = 1");
    let mut client = server.connect();
    client.read_line();
    let start = Instant::now();
    assert_eq!(client.read_line(), "* BYE Autologout; idle for too long");
    client.expect_closed();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(800), "logged out too early: {waited:?}");
    assert!(waited < Duration::from_secs(5), "logged out too late: {waited:?}");

    // A client that never starts its TLS handshake is dropped after the same timeout.
    let mut silent = Client::plain(server.imaps);
    let start = Instant::now();
    silent.expect_closed();
    assert!(start.elapsed() < Duration::from_secs(5));
}
