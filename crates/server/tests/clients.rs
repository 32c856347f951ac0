//! Real mail clients against the real binary: Python's imaplib and mbsync (isync).
//!
//! imaplib runs `tests/scripts/imaplib_client.py` once over implicit TLS and once over STARTTLS:
//! folders created, renamed and deleted, a thousand varied messages appended, fetched back byte
//! for byte, flagged, half moved, some expunged, the final state checked; and
//! `tests/scripts/scram_login.py` logs in with SCRAM-SHA-256, which the server must offer.
//! mbsync syncs a local Maildir with the server both ways, propagates flags and deletions made
//! on either side, must find nothing to do on a second sync, and a second "device" (another
//! Maildir) must end up with the same state.
//!
//! A missing client (python3, mbsync) makes its test print why and pass, unless the environment
//! sets `POSTFACH_REQUIRE_CLIENTS=1` (CI does), which turns the skip into a failure. Every child
//! process runs under a deadline and is killed when it passes it.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{
    Account, CLIENT_DEADLINE, Mbsync, Session, TestServer, assert_idle_sync, available, run_program,
};

/// The account, with a password that needs quoting, and the mbsync test's messages.
const ACCOUNT: Account =
    Account { user: "alice", password: "imap client test password", domain: "mbsync.test" };
/// What the idle-sync check compares of each mailbox's STATUS.
const SNAPSHOT_STATUS: &str = "UIDVALIDITY UIDNEXT MESSAGES";

// ---------------------------------------------------------------------------------------------
// Python imaplib
// ---------------------------------------------------------------------------------------------

/// Runs a Python script from `tests/scripts` against `server` and asserts that it succeeded.
fn python(script: &str, args: &[&str], what: &str, server: &TestServer) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts").join(script);
    let dir = tempfile::tempdir().unwrap();
    let done = run_program(
        Command::new("python3")
            .arg(&script)
            .args(["--host", "127.0.0.1"])
            .args(args)
            .args(["--user", ACCOUNT.user, "--password", ACCOUNT.password])
            .arg("--cafile")
            .arg(server.cert_path()),
        dir.path(),
        "client",
        CLIENT_DEADLINE,
    );
    done.assert_success(what, server);
    done.stdout
}

fn imaplib(mode: &str) {
    if !available("python3", "python3") {
        return;
    }
    let server = ACCOUNT.server();
    let port = if mode == "ssl" { server.imaps.port() } else { server.imap.port() };
    let started = Instant::now();
    let stdout = python(
        "imaplib_client.py",
        &["--mode", mode, "--port", &port.to_string(), "--count", "1000"],
        &format!("imaplib over {mode}"),
        &server,
    );
    assert!(stdout.contains("imaplib: all checks passed"), "{stdout}");
    eprintln!("imaplib over {mode}: {:?}\n{stdout}", started.elapsed());
}

#[test]
fn imaplib_over_implicit_tls() {
    imaplib("ssl");
}

#[test]
fn imaplib_over_starttls() {
    imaplib("starttls");
}

/// AUTHENTICATE SCRAM-SHA-256 (RFC 5802, RFC 7677) is advertised and works for an account made
/// with `postfach user add`, as clients that prefer it (mbsync through Cyrus SASL) need.
#[test]
fn scram_sha_256_login() {
    if !available("python3", "python3") {
        return;
    }
    let server = ACCOUNT.server();
    let stdout =
        python("scram_login.py", &["--port", &server.imaps.port().to_string()], "SCRAM-SHA-256", &server);
    eprintln!("{stdout}");
    // The script fails when the capability is missing; its last line says every check ran.
    assert!(stdout.contains("scram: all checks passed"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// mbsync
// ---------------------------------------------------------------------------------------------

#[test]
fn mbsync_syncs_both_ways_and_a_second_device_agrees() {
    if !available("mbsync", "isync") {
        return;
    }
    let server = ACCOUNT.server();
    let dir = tempfile::tempdir().unwrap();
    let device_a = Mbsync::new(dir.path(), "device-a", &server, ACCOUNT);
    let device_b = Mbsync::new(dir.path(), "device-b", &server, ACCOUNT);
    let local = &device_a.maildir;

    // Mail on the server: INBOX and a folder of its own; on the device: INBOX and a folder the
    // server does not have yet.
    let mut imap = Session::login(&server, &ACCOUNT);
    // IMAP4rev2: no session-dependent \Recent in the flags the snapshots compare.
    imap.ok("ENABLE IMAP4rev2");
    imap.seed_server(&ACCOUNT);
    local.seed_device();

    // First sync: everything both ways, folders created on both sides.
    device_a.sync(&server);
    let want = ACCOUNT.first_sync();
    assert_eq!(imap.state(), want, "server after the first sync");
    assert_eq!(local.state(), want, "device A after the first sync");

    // Changes on both sides: flags, a deletion, a new message.
    imap.ok("SELECT INBOX");
    imap.ok("UID STORE 1:* +FLAGS.SILENT (\\Answered)");
    let found = imap.ok("SEARCH RETURN (MIN) HEADER Message-ID s2@");
    let s2 = found[0].rsplit(' ').next().unwrap().to_owned();
    imap.ok(&format!("STORE {s2} -FLAGS.SILENT (\\Answered)"));
    imap.ok(&format!("STORE {s2} +FLAGS.SILENT (\\Seen)"));
    imap.ok("SELECT Projects");
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    imap.ok("EXPUNGE");
    imap.append("INBOX", "", &ACCOUNT.mail("s4", "server four"));
    local.set_flags("INBOX", "l1", "F");
    local.remove("INBOX", "s3");
    local.set_flags("Local", "l3", "FS");

    device_a.sync(&server);
    let want = ACCOUNT.expected(&[
        ("INBOX", &[("s1", "FR"), ("s2", "S"), ("l1", "FR"), ("l2", "RS"), ("s4", "")]),
        ("Projects", &[("p2", "R")]),
        ("Local", &[("l3", "FS")]),
    ]);
    assert_eq!(imap.state(), want, "server after the second sync");
    assert_eq!(local.state(), want, "device A after the second sync");

    // A deletion by flag (T, trashed) propagates and is expunged on both sides (Expunge Both).
    local.set_flags("INBOX", "l2", "RST");
    device_a.sync(&server);
    let want = ACCOUNT.expected(&[
        ("INBOX", &[("s1", "FR"), ("s2", "S"), ("l1", "FR"), ("s4", "")]),
        ("Projects", &[("p2", "R")]),
        ("Local", &[("l3", "FS")]),
    ]);
    assert_eq!(imap.state(), want, "server after the trash sync");
    assert_eq!(local.state(), want, "device A after the trash sync");

    // Nothing left to do: another sync changes neither side.
    assert_idle_sync(&mut imap, SNAPSHOT_STATUS, local, "mbsync", || {
        device_a.sync(&server);
    });

    // A second device (an empty Maildir) sees the same state.
    device_b.sync(&server);
    assert_eq!(device_b.maildir.state(), want, "device B");
    assert_eq!(imap.state(), want, "the second device changed the server");
}
