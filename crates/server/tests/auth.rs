//! Authentication against the real binary (issue 5), as an attacker and as the real user would
//! meet it: password spraying gets slowed and blocked while the user's app password still
//! works; `postfach ban` shows and lifts blocks; revoking an app password ends its live
//! sessions (also idling ones); a TOTP account refuses the bare password; SCRAM-SHA-256-PLUS
//! binds to real TLS 1.3 and TLS 1.2 connections and to STARTTLS; the LOGIN mechanism works as
//! Outlook uses it.
//!
//! Other client addresses come from the rest of 127.0.0.0/8 (Linux routes it all to loopback),
//! so "the attacker" and "the user" really are different sources to the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Client, PATIENCE, TestServer, connect_from};
use postfach_auth::encoding::{base32_decode, base64_decode, base64_encode};
use postfach_auth::scram::{ChannelBinding, ChannelBindingType, ScramClient};
use postfach_auth::totp::{self, TotpSecret};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const PASSWORD: &str = "correct horse battery";

/// A TLS client from `local`, greeting read.
fn tls_from(server: &TestServer, local: [u8; 4]) -> Client {
    let mut c = Client::tls_from(connect_from(local, server.imaps), &server.cert_path());
    assert!(c.read_line().starts_with("* OK"));
    c
}

/// Sends `tag command` and returns the tagged line.
fn run(c: &mut Client, tag: &str, command: &str) -> String {
    c.send(&format!("{tag} {command}"));
    c.expect_tagged(tag).pop().unwrap()
}

fn cli_ok(server: &TestServer, args: &[&str], stdin: &str) -> String {
    let out = server.cli(args, stdin);
    assert!(
        out.status.success(),
        "postfach {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Creates an app password through the CLI; returns it as shown.
fn app_password(server: &TestServer, user: &str, label: &str) -> String {
    let shown = cli_ok(server, &["user", "app-password", "add", user, "--label", label], "");
    let shown = shown.trim().to_owned();
    assert_eq!(shown.len(), 19, "four groups of four letters: {shown:?}");
    shown
}

#[test]
fn spraying_is_slowed_then_blocked_and_the_user_still_gets_in() {
    let server = TestServer::start_with_sections(
        "",
        "[auth]\nfailures_before_delay = 2\nmax_delay = 1\nfailures_before_block = 5\nblock_time = 600\n\
         account_failures_before_throttle = 3\n",
        &["lmtp"],
    );
    server.add_user("alice", PASSWORD);
    let app = app_password(&server, "alice", "iPhone");
    const ATTACKER: [u8; 4] = [127, 0, 0, 2];
    const USER: [u8; 4] = [127, 0, 0, 3];

    // One address guesses names and passwords: the third and fourth answers are slowed down...
    let mut attacker = tls_from(&server, ATTACKER);
    let mut took = Vec::new();
    for i in 1..=4 {
        let started = Instant::now();
        let answer = run(&mut attacker, &format!("g{i}"), &format!("LOGIN user{i} guess{i}"));
        took.push(started.elapsed());
        assert!(answer.contains("NO [AUTHENTICATIONFAILED]"), "{answer}");
    }
    assert!(took[2] >= Duration::from_millis(950) && took[3] >= Duration::from_millis(950), "{took:?}");
    // ...and the fifth failure blocks the address.
    attacker.send("g5 LOGIN user5 guess5");
    let lines = attacker.expect_tagged("g5");
    assert!(lines.last().unwrap().contains("NO [AUTHENTICATIONFAILED]"), "{lines:?}");
    // Blocked: not even the right password is checked, and the connection is closed.
    let mut attacker = tls_from(&server, ATTACKER);
    attacker.send(&format!("b1 LOGIN alice \"{PASSWORD}\""));
    let first = attacker.read_line();
    let second = attacker.read_line();
    let lines = [first, second];
    assert!(lines.iter().any(|l| l.starts_with("b1 NO [UNAVAILABLE]")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("* BYE")), "{lines:?}");
    attacker.expect_closed();

    // The real user, elsewhere, is not affected.
    let mut user = tls_from(&server, USER);
    assert!(run(&mut user, "u1", &format!("LOGIN alice \"{PASSWORD}\"")).starts_with("u1 OK"));
    run(&mut user, "u2", "LOGOUT");

    // A botnet: many addresses, one guess each, all at alice's password. After three failures
    // password attempts on the account are spaced out and refused unchecked in between.
    let mut refused = 0;
    for i in 0..8u8 {
        let mut bot = tls_from(&server, [127, 0, 1, 10 + i]);
        let answer = run(&mut bot, "x", &format!("LOGIN alice guess{i}"));
        if answer.contains("NO [UNAVAILABLE]") {
            refused += 1;
        } else {
            assert!(answer.contains("NO [AUTHENTICATIONFAILED]"), "{answer}");
        }
    }
    assert!(refused > 0, "the account's password attempts were never spaced out");
    // The account is not locked: the user's app password works at once, from their address.
    let mut user = tls_from(&server, USER);
    assert!(run(&mut user, "u3", &format!("LOGIN alice \"{app}\"")).starts_with("u3 OK"));
    assert!(run(&mut user, "u4", "SELECT INBOX").starts_with("u4 OK"));

    // The block is visible to the CLI, and lifting it lets the address in again.
    let listed = cli_ok(&server, &["ban", "list"], "");
    assert!(listed.lines().any(|l| l.starts_with("127.0.0.2 ")), "{listed}");
    let json = cli_ok(&server, &["ban", "list", "--json"], "");
    assert!(json.starts_with("{\"blocks\":[{\"address\":\"127.0.0.2\""), "{json}");
    let out = server.cli(&["ban", "remove", "127.0.0.9"], "");
    assert!(!out.status.success(), "removing a block that does not exist fails");
    cli_ok(&server, &["ban", "remove", "127.0.0.2"], "");
    assert!(!cli_ok(&server, &["ban", "list"], "").contains("127.0.0.2"));
    // Wait out the account spacing the botnet caused, then the password works from .2 again.
    std::thread::sleep(Duration::from_secs(3));
    let mut forgiven = tls_from(&server, ATTACKER);
    let answer = run(&mut forgiven, "f1", &format!("LOGIN alice \"{PASSWORD}\""));
    assert!(
        answer.starts_with("f1 OK") || answer.contains("[UNAVAILABLE] Too many failed logins;"),
        "{answer}"
    );
    assert!(!answer.contains("from your address"), "the block was lifted: {answer}");

    // One line per attempt, with the fields fail2ban needs.
    let log = server.log();
    assert!(log.contains("postfach::auth: authentication addr=127.0.0.2 account=\"user1\""), "{log}");
    assert!(log.contains("result=blocked"), "{log}");
    assert!(log.contains("addr=127.0.0.3 account=\"alice\" mechanism=LOGIN result=ok"), "{log}");
    assert!(!log.contains(PASSWORD), "a password reached the log");
}

#[test]
fn revoking_an_app_password_ends_its_sessions() {
    let server = TestServer::start();
    server.add_user("alice", PASSWORD);
    let app = app_password(&server, "alice", "Laptop");

    let mut busy = server.connect_tls();
    busy.read_line();
    assert!(run(&mut busy, "a", &format!("LOGIN alice \"{app}\"")).starts_with("a OK"));
    assert!(run(&mut busy, "b", "SELECT INBOX").starts_with("b OK"));
    let mut idle = server.connect_tls();
    idle.read_line();
    assert!(run(&mut idle, "a", &format!("LOGIN alice \"{}\"", app.replace(' ', ""))).starts_with("a OK"));
    assert!(run(&mut idle, "b", "SELECT INBOX").starts_with("b OK"));
    idle.send("c IDLE");
    assert!(idle.read_line().starts_with('+'));
    let mut by_password = server.connect_tls();
    by_password.read_line();
    assert!(run(&mut by_password, "a", &format!("LOGIN alice \"{PASSWORD}\"")).starts_with("a OK"));

    // `list` shows when and from where it was used.
    let listed = cli_ok(&server, &["user", "app-password", "list", "alice"], "");
    let row = listed.lines().find(|l| l.starts_with("Laptop")).expect(&listed);
    assert!(row.ends_with("127.0.0.1") && !row.contains("never"), "{listed}");
    let json = cli_ok(&server, &["user", "app-password", "list", "alice", "--json"], "");
    assert!(
        json.contains("\"label\":\"Laptop\"") && json.contains("\"last_address\":\"127.0.0.1\""),
        "{json}"
    );

    let revoked_at = Instant::now();
    cli_ok(&server, &["user", "app-password", "revoke", "alice", "Laptop"], "");
    // The idling session is told without sending anything.
    let bye = idle.read_line();
    assert!(bye.starts_with("* BYE"), "{bye}");
    idle.expect_closed();
    assert!(revoked_at.elapsed() < Duration::from_secs(5), "{:?}", revoked_at.elapsed());
    // The busy one ends at its next command.
    busy.send("n NOOP");
    let bye = busy.read_line();
    assert!(bye.starts_with("* BYE"), "{bye}");
    busy.expect_closed();
    // The password session is unaffected; the app password no longer logs in.
    assert!(run(&mut by_password, "n", "NOOP").starts_with("n OK"));
    let mut again = server.connect_tls();
    again.read_line();
    assert!(run(&mut again, "a", &format!("LOGIN alice \"{app}\"")).contains("NO [AUTHENTICATIONFAILED]"));
    let out = server.cli(&["user", "app-password", "revoke", "alice", "Laptop"], "");
    assert!(!out.status.success(), "revoking twice fails");
}

/// The `secret=` parameter of the otpauth:// URI the CLI printed.
fn totp_secret(stdout: &str) -> TotpSecret {
    let uri = stdout.lines().find(|l| l.starts_with("otpauth://totp/")).expect(stdout);
    let secret = uri.split(['?', '&']).find_map(|p| p.strip_prefix("secret=")).expect(uri);
    TotpSecret::from_bytes(base32_decode(secret).unwrap())
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

#[test]
fn a_totp_account_refuses_the_bare_password() {
    let server = TestServer::start();
    server.add_user("alice", PASSWORD);

    // Without a code the enrolment stays pending (and shows the URI, QR code and key)...
    let out = server.cli(&["user", "totp", "enable", "alice"], "");
    assert!(!out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("otpauth://totp/Postfach:alice?secret="), "{stdout}");
    assert!(stdout.contains('\u{2588}') || stdout.contains('\u{2580}'), "a QR code: {stdout}");
    let secret = totp_secret(&stdout);
    // ...so the password still works, and a wrong code does not confirm.
    let mut c = server.connect_tls();
    c.read_line();
    assert!(run(&mut c, "a", &format!("LOGIN alice \"{PASSWORD}\"")).starts_with("a OK"));
    let wrong = if totp::code(&secret, totp::step_at(now())) == "000000" { "111111" } else { "000000" };
    assert!(!server.cli(&["user", "totp", "enable", "alice", "--code", wrong], "").status.success());

    // Running it again shows the same secret; the right code (on stdin) confirms.
    let step = totp::step_at(now());
    let out = cli_ok(
        &server,
        &["user", "totp", "enable", "alice", "--allow-password-plus-code"],
        &format!("{}\n", totp::code(&secret, step)),
    );
    assert_eq!(totp_secret(&out), secret, "no second scan needed");
    let out = server.cli(&["user", "totp", "enable", "alice"], "");
    assert!(!out.status.success(), "already enabled");

    let mut c = server.connect_tls();
    c.read_line();
    assert!(run(&mut c, "a", &format!("LOGIN alice \"{PASSWORD}\"")).contains("NO [AUTHENTICATIONFAILED]"));
    // Password followed by a code (the next step's: the confirming one is used up).
    let code = totp::code(&secret, step + 1);
    let with_code = format!("LOGIN alice \"{PASSWORD}{code}\"");
    assert!(run(&mut c, "b", &with_code).starts_with("b OK"));
    let mut replay = server.connect_tls();
    replay.read_line();
    assert!(run(&mut replay, "c", &with_code).contains("NO [AUTHENTICATIONFAILED]"), "a code works once");
    // App passwords are the everyday way in.
    let app = app_password(&server, "alice", "phone");
    assert!(run(&mut replay, "d", &format!("LOGIN alice \"{app}\"")).starts_with("d OK"));
    // The session opened with password and code survives; TOTP off restores the password.
    assert!(run(&mut c, "n", "NOOP").starts_with("n OK"));
    cli_ok(&server, &["user", "totp", "disable", "alice"], "");
    let mut c = server.connect_tls();
    c.read_line();
    assert!(run(&mut c, "a", &format!("LOGIN alice \"{PASSWORD}\"")).starts_with("a OK"));
}

// --- SCRAM over real TLS ----------------------------------------------------------------------

/// A minimal line client over any stream (the harness hides its rustls connection, and the
/// channel binding needs it).
struct Lines<S> {
    stream: S,
    pending: Vec<u8>,
}

impl<S: Read + Write> Lines<S> {
    fn send(&mut self, line: &str) {
        self.stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.stream.flush().unwrap();
    }

    fn read_line(&mut self) -> String {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                self.pending.drain(..end + 2);
                return line;
            }
            let mut buf = [0u8; 4096];
            let n = self.stream.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed");
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// Lines up to the tagged one.
    fn tagged(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line();
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// SCRAM-SHA-256(-PLUS) with SASL-IR; returns the tagged line.
    fn scram(&mut self, password: &str, binding: Option<&ChannelBinding>) -> String {
        let mechanism = if binding.is_some() { "SCRAM-SHA-256-PLUS" } else { "SCRAM-SHA-256" };
        let mut client = ScramClient::new("alice", password.as_bytes(), "cnonce1234", binding);
        self.send(&format!("s AUTHENTICATE {mechanism} {}", base64_encode(client.client_first().as_bytes())));
        let line = self.read_line();
        let Some(server_first) = line.strip_prefix("+ ") else { return line };
        let last = client.client_final(&base64_decode(server_first.as_bytes()).unwrap()).unwrap();
        self.send(&base64_encode(last.as_bytes()));
        let line = self.read_line();
        let Some(server_final) = line.strip_prefix("+ ") else { return line };
        assert!(client.verify_server_final(&base64_decode(server_final.as_bytes()).unwrap()), "server proof");
        self.send("");
        self.tagged("s").pop().unwrap()
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS client limited to `versions`, trusting the test certificate.
fn tls_client(tcp: TcpStream, cert: &Path, versions: &[&'static rustls::SupportedProtocolVersion]) -> Tls {
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(cert).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls
}

/// RFC 9266 tls-exporter as the client computes it.
fn exporter(tls: &Tls) -> ChannelBinding {
    let data = tls.conn.export_keying_material(vec![0u8; 32], ChannelBinding::EXPORTER_LABEL, None).unwrap();
    ChannelBinding::new(ChannelBindingType::TlsExporter, data)
}

#[test]
fn scram_plus_binds_to_real_tls_connections() {
    let server = TestServer::start();
    server.add_user("alice", PASSWORD);

    // TLS 1.3, implicit: tls-exporter.
    let tls = tls_client(
        TcpStream::connect(server.imaps).unwrap(),
        &server.cert_path(),
        &[&rustls::version::TLS13],
    );
    let binding = exporter(&tls);
    let mut c = Lines { stream: tls, pending: Vec::new() };
    let greeting = c.read_line();
    assert!(greeting.contains("AUTH=SCRAM-SHA-256-PLUS"), "{greeting}");
    assert!(c.scram("wrong", Some(&binding)).starts_with("s NO [AUTHENTICATIONFAILED]"));
    // Binding data of another connection (what a man in the middle would have) fails.
    let other = ChannelBinding::new(ChannelBindingType::TlsExporter, vec![0; 32]);
    assert!(c.scram(PASSWORD, Some(&other)).starts_with("s NO [AUTHENTICATIONFAILED]"));
    assert!(c.scram(PASSWORD, Some(&binding)).starts_with("s OK"));

    // TLS 1.2: tls-server-end-point, the hash of the server's certificate.
    let cert = CertificateDer::from_pem_file(server.cert_path()).unwrap();
    let end_point = ChannelBinding::tls_server_end_point(cert.as_ref());
    let tls = tls_client(
        TcpStream::connect(server.imaps).unwrap(),
        &server.cert_path(),
        &[&rustls::version::TLS12],
    );
    let mut c = Lines { stream: tls, pending: Vec::new() };
    assert!(c.read_line().contains("AUTH=SCRAM-SHA-256-PLUS"));
    assert!(c.scram(PASSWORD, Some(&end_point)).starts_with("s OK"));

    // Plain SCRAM (the client does not bind) works too.
    let tls = tls_client(
        TcpStream::connect(server.imaps).unwrap(),
        &server.cert_path(),
        &[&rustls::version::TLS13],
    );
    let mut c = Lines { stream: tls, pending: Vec::new() };
    c.read_line();
    assert!(c.scram(PASSWORD, None).starts_with("s OK"));

    // STARTTLS: no mechanism before, PLUS after the handshake.
    let mut plain = Lines { stream: TcpStream::connect(server.imap).unwrap(), pending: Vec::new() };
    plain.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    assert!(!plain.read_line().contains("AUTH="));
    plain.send("t STARTTLS");
    assert!(plain.tagged("t").pop().unwrap().starts_with("t OK"));
    let tls = tls_client(plain.stream, &server.cert_path(), &[&rustls::version::TLS13]);
    let binding = exporter(&tls);
    let mut c = Lines { stream: tls, pending: Vec::new() };
    c.send("c CAPABILITY");
    let caps = c.tagged("c");
    assert!(caps[0].contains("AUTH=SCRAM-SHA-256-PLUS"), "{caps:?}");
    assert!(c.scram(PASSWORD, Some(&binding)).starts_with("s OK"));
}

#[test]
fn the_login_mechanism_works_as_outlook_uses_it() {
    let server = TestServer::start();
    server.add_user("alice", PASSWORD);
    let mut c = server.connect_tls();
    c.read_line();
    c.send("a AUTHENTICATE LOGIN");
    assert_eq!(c.read_line(), "+ VXNlcm5hbWU6");
    c.send(&base64_encode(b"alice"));
    assert_eq!(c.read_line(), "+ UGFzc3dvcmQ6");
    c.send(&base64_encode(PASSWORD.as_bytes()));
    let done = c.expect_tagged("a").pop().unwrap();
    assert!(done.starts_with("a OK [CAPABILITY"), "{done}");
    assert!(run(&mut c, "b", "SELECT INBOX").starts_with("b OK"));
    assert!(server.log().contains("account=\"alice\" mechanism=AUTH=LOGIN result=ok"));
}

/// A TLS client from `local` that logged in with `secret` (the tagged answer must be OK).
fn logged_in(server: &TestServer, local: [u8; 4], user: &str, secret: &str) -> Client {
    let mut c = tls_from(server, local);
    let answer = run(&mut c, "l", &format!("LOGIN {user} \"{secret}\""));
    assert!(answer.starts_with("l OK"), "{answer}");
    c
}

#[test]
fn changing_the_password_ends_the_sessions_opened_with_it() {
    let server = TestServer::start();
    server.add_user("alice", PASSWORD);
    let app = app_password(&server, "alice", "Laptop");
    const USER: [u8; 4] = [127, 0, 0, 1];

    let mut idle = logged_in(&server, USER, "alice", PASSWORD);
    assert!(run(&mut idle, "s", "SELECT INBOX").starts_with("s OK"));
    idle.send("i IDLE");
    assert!(idle.read_line().starts_with('+'));
    let mut busy = logged_in(&server, USER, "alice", PASSWORD);
    let mut by_app = logged_in(&server, USER, "alice", &app);

    let changed_at = Instant::now();
    cli_ok(&server, &["user", "passwd", "alice", "--password-stdin"], "a brand new password\n");
    // The idling session is told without sending anything, within the revocation delay.
    let bye = idle.read_line();
    assert!(bye.starts_with("* BYE"), "{bye}");
    idle.expect_closed();
    assert!(changed_at.elapsed() < Duration::from_secs(5), "{:?}", changed_at.elapsed());
    // The busy one ends at its next command.
    busy.send("n NOOP");
    let bye = busy.read_line();
    assert!(bye.starts_with("* BYE"), "{bye}");
    busy.expect_closed();
    // The app password is still valid: its session stays (docs/auth.md).
    assert!(run(&mut by_app, "n", "NOOP").starts_with("n OK"));
    // The new password logs in; the old one does not.
    let mut old = tls_from(&server, USER);
    assert!(run(&mut old, "o", &format!("LOGIN alice \"{PASSWORD}\"")).contains("NO [AUTHENTICATIONFAILED]"));
    let mut fresh = logged_in(&server, USER, "alice", "a brand new password");
    assert!(run(&mut fresh, "s", "SELECT INBOX").starts_with("s OK"));
    assert!(server.log().contains("session ended: credential revoked"));
}

#[test]
fn the_owner_still_logs_in_while_the_account_is_sprayed() {
    let server = TestServer::start_with_sections(
        "",
        "[auth]\nfailures_before_delay = 5\nmax_delay = 1\nfailures_before_block = 10\n\
         account_failures_before_throttle = 1\n",
        &["lmtp"],
    );
    server.add_user("alice", PASSWORD);
    const OWNER: [u8; 4] = [127, 0, 0, 3];
    const STRANGER: [u8; 4] = [127, 0, 0, 4];
    // The owner's usual address logged in before the attack.
    let mut owner = logged_in(&server, OWNER, "alice", PASSWORD);
    run(&mut owner, "z", "LOGOUT");

    // A botnet sprays alice's password, one guess per address, until three guesses were
    // checked (and failed): the account's password attempts are then one per 4 seconds.
    let mut checked = 0;
    for i in 0..100u8 {
        let mut bot = tls_from(&server, [127, 0, 2, i]);
        let answer = run(&mut bot, "x", &format!("LOGIN alice guess{i}"));
        if answer.contains("NO [AUTHENTICATIONFAILED]") {
            checked += 1;
            if checked == 3 {
                break;
            }
        } else {
            assert!(answer.contains("NO [UNAVAILABLE]"), "{answer}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    assert_eq!(checked, 3, "the spraying never got through");

    // An address alice never logged in from is refused, even with the right password...
    let mut stranger = tls_from(&server, STRANGER);
    let answer = run(&mut stranger, "s", &format!("LOGIN alice \"{PASSWORD}\""));
    assert!(answer.starts_with("s NO [UNAVAILABLE] Too many failed logins;"), "{answer}");
    // ...while her usual address still has its password checked: a typo fails as such, and
    // the right password gets in.
    let mut owner = tls_from(&server, OWNER);
    let answer = run(&mut owner, "t", "LOGIN alice typo");
    assert!(answer.contains("NO [AUTHENTICATIONFAILED]"), "{answer}");
    let answer = run(&mut owner, "o", &format!("LOGIN alice \"{PASSWORD}\""));
    assert!(answer.starts_with("o OK"), "{answer}");
    assert!(run(&mut owner, "s", "SELECT INBOX").starts_with("s OK"));

    let log = server.log();
    assert!(log.contains("addr=127.0.0.4 account=\"alice\" mechanism=LOGIN result=throttled"), "{log}");
}
