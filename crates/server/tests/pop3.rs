//! POP3 (RFC 1939, 2449, 2595, 3206, 5034) against the real binary.
//!
//! Python's poplib runs `tests/scripts/poplib_client.py` over implicit TLS and over STLS and
//! checks every answer against IMAP (sizes, UIDL = UID + UIDVALIDITY, RETR = BODY[] byte for
//! byte, DELE + QUIT = EXPUNGE, RETR = \Seen). fetchmail (Debian's) fetches over TLS and STLS
//! into an MDA, keeps mail and remembers it by UIDL, then deletes it. Raw sessions cover the
//! edges: CAPA by state and transport, the cleartext rule, STLS with bytes behind it, AUTH
//! LOGIN and its cancellation, pipelining, TOP n 0, dot-stuffing, bad and over-long lines,
//! failed logins (throttled, logged, counted), the maildrop lock, a message expunged by IMAP
//! during a session, DELE + QUIT seen by an IMAP session in IDLE, UIDL across a restart, and
//! POP3 being off by default.
//!
//! A missing client (python3, fetchmail) makes its test print why and pass, unless
//! `POSTFACH_REQUIRE_CLIENTS=1` (CI) turns the skip into a failure.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Account, CLIENT_DEADLINE, Client, Deployment, POP3_SECTION, Session, TestServer, available, connect_from,
    run_program,
};

const ACCOUNT: Account = Account { user: "alice", password: "pop3 test password", domain: "pop3.test" };

/// A server with POP3 on, and the test account.
fn server() -> TestServer {
    server_with("")
}

/// [`server`] with more TOML sections.
fn server_with(sections: &str) -> TestServer {
    let server =
        TestServer::start_with_sections("", &format!("{POP3_SECTION}{sections}"), &["pop3", "pop3s"]);
    server.add_user(ACCOUNT.user, ACCOUNT.password);
    server
}

/// A connection to the POP3S port, greeting read.
fn pop_tls(server: &TestServer) -> Client {
    greeted(Client::tls(server.pop3s.unwrap(), &server.cert_path()))
}

/// A connection to the cleartext POP3 port, greeting read.
fn pop_plain(server: &TestServer) -> Client {
    greeted(Client::plain(server.pop3.unwrap()))
}

fn greeted(mut client: Client) -> Client {
    let greeting = client.read_line();
    assert!(greeting.starts_with("+OK"), "{greeting}");
    client
}

/// Sends one command and returns its status line.
fn cmd(client: &mut Client, line: &str) -> String {
    client.send(line);
    client.read_line()
}

/// The lines of a multi-line answer after its status line, dot-stuffing undone, up to the
/// terminating ".".
fn multi(client: &mut Client) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = client.read_line();
        if line == "." {
            return lines;
        }
        lines.push(line.strip_prefix('.').map(str::to_owned).unwrap_or(line));
    }
}

/// Logs in with USER/PASS; returns the `+OK` line.
fn login(client: &mut Client) -> String {
    assert!(cmd(client, &format!("USER {}", ACCOUNT.user)).starts_with("+OK"));
    let answer = cmd(client, &format!("PASS {}", ACCOUNT.password));
    assert!(answer.starts_with("+OK"), "{answer}");
    answer
}

/// Appends the messages to INBOX over IMAP.
fn seed(server: &TestServer, messages: &[&str]) -> Session<Client> {
    let mut imap = Session::login(server, &ACCOUNT);
    for message in messages {
        imap.append("INBOX", "", message);
    }
    imap
}

/// A message with lines that need dot-stuffing.
const DOTTED: &str = "From: bob@example.org\r\nSubject: dots\r\nMessage-ID: <dots@pop3.test>\r\n\r\n\
                      first\r\n.leading dot\r\n.\r\n..two\r\nlast\r\n";

// ---------------------------------------------------------------------------------------------
// Python poplib
// ---------------------------------------------------------------------------------------------

fn poplib(mode: &str) {
    if !available("python3", "python3") {
        return;
    }
    let server = server();
    let port = if mode == "ssl" { server.pop3s.unwrap() } else { server.pop3.unwrap() };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/poplib_client.py");
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let done = run_program(
        Command::new("python3")
            .arg(&script)
            .args(["--mode", mode, "--host", "127.0.0.1", "--port", &port.port().to_string()])
            .args(["--imaps-port", &server.imaps.port().to_string()])
            .args(["--user", ACCOUNT.user, "--password", ACCOUNT.password, "--count", "60"])
            .arg("--cafile")
            .arg(server.cert_path()),
        dir.path(),
        "poplib",
        CLIENT_DEADLINE,
    );
    done.assert_success(&format!("poplib over {mode}"), &server);
    assert!(done.stdout.contains("poplib: all checks passed"), "{}", done.stdout);
    eprintln!("poplib over {mode}: {:?}\n{}", started.elapsed(), done.stdout);
}

#[test]
fn poplib_over_implicit_tls() {
    poplib("ssl");
}

#[test]
fn poplib_over_stls_with_scram() {
    poplib("stls");
}

// ---------------------------------------------------------------------------------------------
// Raw sessions
// ---------------------------------------------------------------------------------------------

#[test]
fn capabilities_follow_state_and_transport_and_cleartext_logins_are_refused() {
    let server = server();
    let mut pop = pop_plain(&server);
    assert!(cmd(&mut pop, "CAPA").starts_with("+OK"));
    let caps = multi(&mut pop);
    for cap in
        ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS", "IMPLEMENTATION Postfach"]
    {
        assert!(caps.iter().any(|c| c == cap), "{cap} missing: {caps:?}");
    }
    // RFC 2595 §4 and IMAP's rule (imap.allow_plaintext_auth = false): no logins in cleartext.
    assert!(!caps.iter().any(|c| c == "USER" || c.starts_with("SASL")), "{caps:?}");
    assert!(cmd(&mut pop, "USER alice").starts_with("-ERR [AUTH]"));
    assert!(cmd(&mut pop, "AUTH PLAIN AGFsaWNlAHg=").starts_with("-ERR [AUTH]"));
    assert!(cmd(&mut pop, "STAT").starts_with("-ERR"));

    // STLS with a command behind it in the same packet: the command is thrown away (RFC 2595
    // §4: nothing sent before the handshake may run), so the handshake starts clean.
    pop.send_raw(b"STLS\r\nCAPA\r\n");
    assert_eq!(pop.read_line(), "+OK Begin TLS negotiation");
    pop.start_tls(&server.cert_path());
    assert!(cmd(&mut pop, "CAPA").starts_with("+OK"));
    let caps = multi(&mut pop);
    assert!(caps.iter().any(|c| c == "USER"), "{caps:?}");
    let sasl = caps.iter().find(|c| c.starts_with("SASL ")).unwrap();
    for mech in ["PLAIN", "LOGIN", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"] {
        assert!(sasl.split(' ').any(|m| m == mech), "{mech} missing: {sasl}");
    }
    assert!(!caps.iter().any(|c| c == "STLS"), "{caps:?}");
    assert_eq!(cmd(&mut pop, "STLS"), "-ERR Command not permitted when TLS active");

    // AUTH without a mechanism lists them; "*" cancels an exchange (RFC 5034 §4).
    assert!(cmd(&mut pop, "AUTH").starts_with("+OK"));
    assert!(multi(&mut pop).contains(&"SCRAM-SHA-256".to_owned()));
    assert_eq!(cmd(&mut pop, "AUTH LOGIN"), "+ VXNlcm5hbWU6");
    assert!(cmd(&mut pop, "*").starts_with("-ERR"));
    assert!(cmd(&mut pop, "AUTH CRAM-MD5").starts_with("-ERR"));
    // AUTH LOGIN: user name, then password, each after its prompt.
    assert_eq!(cmd(&mut pop, "AUTH LOGIN"), "+ VXNlcm5hbWU6");
    assert_eq!(cmd(&mut pop, &base64(ACCOUNT.user.as_bytes())), "+ UGFzc3dvcmQ6");
    let answer = cmd(&mut pop, &base64(ACCOUNT.password.as_bytes()));
    assert!(answer.starts_with("+OK"), "{answer}");

    // In TRANSACTION state only the transaction capabilities remain.
    assert!(cmd(&mut pop, "CAPA").starts_with("+OK"));
    let caps = multi(&mut pop);
    assert!(!caps.iter().any(|c| c == "USER" || c.starts_with("SASL")), "{caps:?}");
    assert!(cmd(&mut pop, "USER alice").starts_with("-ERR"));
    assert_eq!(cmd(&mut pop, "QUIT"), "+OK Bye; 0 messages deleted");
    pop.expect_closed();
}

#[test]
fn pipelined_commands_top_and_dot_stuffing() {
    let server = server();
    let plain = ACCOUNT.mail("p1", "plain one");
    seed(&server, &[&plain, DOTTED]);
    let mut pop = pop_tls(&server);
    // RFC 2449 §6.6: the whole transaction in one write; answers come in order.
    let batch = format!(
        "USER {}\r\nPASS {}\r\nSTAT\r\nLIST\r\nUIDL 2\r\nTOP 2 0\r\nTOP 2 2\r\nRETR 2\r\nLIST 3\r\nRETR 0\r\n\
         DELE 1\r\nDELE 1\r\nRETR 1\r\nLIST\r\nRSET\r\nSTAT\r\nNOOP\r\nQUIT\r\n",
        ACCOUNT.user, ACCOUNT.password
    );
    pop.send_raw(batch.as_bytes());
    assert!(pop.read_line().starts_with("+OK"), "USER");
    assert!(pop.read_line().starts_with("+OK Logged in; 2 messages"), "PASS");
    let sizes = [plain.len(), DOTTED.len()];
    assert_eq!(pop.read_line(), format!("+OK 2 {}", sizes[0] + sizes[1]));
    assert!(pop.read_line().starts_with("+OK 2 messages"));
    assert_eq!(multi(&mut pop), vec![format!("1 {}", sizes[0]), format!("2 {}", sizes[1])]);
    let uidl = pop.read_line();
    assert!(uidl.starts_with("+OK 2 00000002") && uidl.len() == "+OK 2 ".len() + 16, "{uidl}");
    // TOP n 0: the header and the blank line that ends it.
    assert_eq!(pop.read_line(), "+OK Top of message follows");
    assert_eq!(
        multi(&mut pop),
        vec!["From: bob@example.org", "Subject: dots", "Message-ID: <dots@pop3.test>", ""]
    );
    assert_eq!(pop.read_line(), "+OK Top of message follows");
    assert_eq!(multi(&mut pop)[4..], ["first", ".leading dot"]);
    // RETR: the raw lines on the wire carry the stuffing dot.
    assert_eq!(pop.read_line(), format!("+OK {} octets", sizes[1]));
    let mut wire = Vec::new();
    loop {
        let line = pop.read_line();
        if line == "." {
            break;
        }
        wire.push(line);
    }
    assert_eq!(wire[4..], ["first", "..leading dot", "..", "...two", "last"]);
    assert_eq!(pop.read_line(), "-ERR No such message", "LIST 3");
    assert!(pop.read_line().starts_with("-ERR"), "RETR 0");
    assert_eq!(pop.read_line(), "+OK Message 1 deleted");
    assert_eq!(pop.read_line(), "-ERR Message is marked deleted");
    assert_eq!(pop.read_line(), "-ERR Message is marked deleted", "RETR 1");
    assert!(pop.read_line().starts_with("+OK 1 messages"));
    assert_eq!(multi(&mut pop), vec![format!("2 {}", sizes[1])]);
    assert!(pop.read_line().starts_with("+OK 2 messages"), "RSET");
    assert_eq!(pop.read_line(), format!("+OK 2 {}", sizes[0] + sizes[1]));
    assert_eq!(pop.read_line(), "+OK", "NOOP");
    assert_eq!(pop.read_line(), "+OK Bye; 0 messages deleted");
    pop.expect_closed();
}

#[test]
fn bad_and_over_long_lines_are_answered_then_the_connection_ends() {
    let server = server();
    let mut pop = pop_plain(&server);
    // RFC 2449 §4: 255 octets with CRLF. Longer is refused, and the session goes on.
    let long = format!("USER {}", "a".repeat(300));
    assert_eq!(cmd(&mut pop, &long), "-ERR Line too long");
    // A megabyte without a line end costs no memory: it is thrown away as it arrives.
    pop.send_raw(&vec![b'x'; 1 << 20]);
    pop.send_raw(b"\r\n");
    assert_eq!(pop.read_line(), "-ERR Line too long");
    assert_eq!(cmd(&mut pop, "NOOP"), "-ERR Log in first");
    assert_eq!(cmd(&mut pop, "HELO there"), "-ERR Unknown command");
    assert!(cmd(&mut pop, "RETR x").starts_with("-ERR"));
    assert_eq!(cmd(&mut pop, ""), "-ERR Empty command");
    // Ten bad lines in all: the tenth closes the connection.
    for _ in 0..4 {
        assert!(cmd(&mut pop, "\u{1}\u{2}").starts_with("-ERR Unknown"));
    }
    assert_eq!(cmd(&mut pop, "GET / HTTP/1.1"), "-ERR Too many bad commands; closing");
    pop.expect_closed();
}

#[test]
fn failed_logins_are_logged_throttled_and_end_the_connection() {
    let server = server();
    let mut attacker =
        greeted(Client::tls_from(connect_from([127, 0, 0, 7], server.pop3s.unwrap()), &server.cert_path()));
    let mut took = Vec::new();
    let mut answers = Vec::new();
    for i in 1..=5 {
        assert!(cmd(&mut attacker, &format!("USER user{i}")).starts_with("+OK"), "USER says nothing");
        let started = Instant::now();
        answers.push(cmd(&mut attacker, &format!("PASS guess{i}")));
        took.push(started.elapsed());
    }
    assert!(answers.iter().all(|a| a == "-ERR [AUTH] Authentication failed"), "{answers:?}");
    // IMAP's throttle: three free failures from an address, then a delay that doubles.
    assert!(took[3] >= Duration::from_millis(950) && took[4] >= Duration::from_millis(1900), "{took:?}");
    // The fifth failure on one connection closes it (as IMAP).
    attacker.expect_closed();
    let log = server.log();
    assert!(
        log.contains("kind=pop3s") && log.contains("account=\"user1\" mechanism=USER result=fail"),
        "the authenticator's log line: {}",
        server.log_tail(20)
    );
    // The user, from elsewhere, gets in.
    let mut user =
        greeted(Client::tls_from(connect_from([127, 0, 0, 8], server.pop3s.unwrap()), &server.cert_path()));
    login(&mut user);
}

#[test]
fn dele_and_quit_reach_an_idling_imap_session_at_once() {
    let server = server();
    let mut imap =
        seed(&server, &[&ACCOUNT.mail("a", "one"), &ACCOUNT.mail("b", "two"), &ACCOUNT.mail("c", "three")]);
    imap.ok("SELECT INBOX");
    let mut idle = server.connect_tls();
    idle.read_line();
    idle.send(&format!("a LOGIN {} \"{}\"", ACCOUNT.user, ACCOUNT.password));
    idle.expect_tagged("a");
    idle.send("b SELECT INBOX");
    idle.expect_tagged("b");
    idle.send("c IDLE");
    assert!(idle.read_line().starts_with('+'));

    let mut pop = pop_tls(&server);
    login(&mut pop);
    assert!(cmd(&mut pop, "RETR 3").starts_with("+OK"));
    multi(&mut pop);
    assert!(cmd(&mut pop, "DELE 2").starts_with("+OK"));
    // Nothing happens before QUIT (RFC 1939 §6).
    idle.set_timeout(Duration::from_millis(300));
    assert!(idle.try_read_line().is_err(), "an update before QUIT");
    idle.set_timeout(Duration::from_secs(10));
    let started = Instant::now();
    assert_eq!(cmd(&mut pop, "QUIT"), "+OK Bye; 1 messages deleted");
    // RETR set \Seen on message 3, written at QUIT before the expunge. The session may
    // report both in one wake-up, and RFC 9051 §7 leaves their order to the server: the
    // FETCH may come first (as 3) or after the EXPUNGE (as 2).
    let mut seen = Vec::new();
    let expunged = |seen: &[String]| seen.iter().any(|l| l == "* 2 EXPUNGE");
    let flagged = |seen: &[String]| seen.iter().any(|l| l.contains(" FETCH ") && l.contains("\\Seen"));
    while !(expunged(&seen) && flagged(&seen)) {
        seen.push(idle.read_line());
    }
    eprintln!("EXPUNGE reached the idling session {:?} after QUIT", started.elapsed());
    assert!(
        seen.iter().all(|l| l == "* 2 EXPUNGE" || l.contains(" FETCH ")),
        "only the expunge and the flag change: {seen:?}"
    );
    idle.send("DONE");
    idle.expect_tagged("c");
    let found = imap.ok("UID SEARCH ALL");
    assert_eq!(found.last().unwrap(), "* SEARCH 1 3", "{found:?}");
}

#[test]
fn the_maildrop_is_locked_and_imap_expunges_meanwhile_are_answered() {
    let server = server();
    let mut imap = seed(&server, &[&ACCOUNT.mail("a", "one"), &ACCOUNT.mail("b", "two")]);
    let mut first = pop_tls(&server);
    login(&mut first);
    // RFC 1939 §4, RFC 2449 §8.1.1: one POP3 session per maildrop.
    let mut second = pop_tls(&server);
    assert!(cmd(&mut second, &format!("USER {}", ACCOUNT.user)).starts_with("+OK"));
    assert_eq!(
        cmd(&mut second, &format!("PASS {}", ACCOUNT.password)),
        "-ERR [IN-USE] The maildrop is in use by another POP3 session"
    );

    // IMAP removes message 1 while the POP3 session has it listed: the snapshot keeps its
    // number, RETR answers -ERR, DELE and QUIT have nothing to remove.
    imap.ok("SELECT INBOX");
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    imap.ok("EXPUNGE");
    assert!(cmd(&mut first, "STAT").starts_with("+OK 2 "));
    assert_eq!(cmd(&mut first, "RETR 1"), "-ERR The message was removed by another session");
    assert!(cmd(&mut first, "RETR 2").starts_with("+OK"));
    multi(&mut first);
    assert!(cmd(&mut first, "DELE 1").starts_with("+OK"));
    assert!(cmd(&mut first, "QUIT").starts_with("+OK"));
    first.expect_closed();

    // The lock went with the session.
    assert!(cmd(&mut second, &format!("USER {}", ACCOUNT.user)).starts_with("+OK"));
    assert!(cmd(&mut second, &format!("PASS {}", ACCOUNT.password)).starts_with("+OK Logged in; 1 messages"));

    // `postfach who` lists the POP3 session; `postfach kick` ends it without UPDATE.
    assert!(cmd(&mut second, "DELE 1").starts_with("+OK"));
    let who = server.cli(&["who"], "");
    let listed = String::from_utf8_lossy(&who.stdout);
    assert!(listed.lines().any(|l| l.contains("alice") && l.contains("INBOX (POP3)")), "{listed}");
    assert!(server.cli(&["kick", "alice"], "").status.success());
    assert_eq!(second.read_line(), "-ERR Disconnected by the administrator");
    second.expect_closed();
    // (The kick ended alice's IMAP session too.)
    let mut imap = Session::login(&server, &ACCOUNT);
    imap.ok("SELECT INBOX");
    assert_eq!(imap.ok("UID SEARCH ALL").last().unwrap(), "* SEARCH 2");
}

#[test]
fn uidl_is_derived_from_uid_and_uidvalidity_and_survives_a_restart() {
    let mut deployment = Deployment::with_settings(&format!(
        "[imap]\nlisten = [\"127.0.0.1:0\"]\nlisten_tls = [\"127.0.0.1:0\"]\n[lmtp]\nlisten = []\n{POP3_SECTION}"
    ));
    deployment.add_user(ACCOUNT.user, ACCOUNT.password);
    let uidl = |deployment: &Deployment| {
        let listeners = deployment.listeners();
        let mut pop = greeted(Client::tls(listeners.pop3s.unwrap(), &deployment.cert_path()));
        login(&mut pop);
        assert!(cmd(&mut pop, "UIDL").starts_with("+OK"));
        let ids = multi(&mut pop);
        assert!(cmd(&mut pop, "QUIT").starts_with("+OK"));
        ids
    };
    let listeners = deployment.start_awaiting(&["pop3", "pop3s"]);
    let mut imap = Client::tls(listeners.imaps, &deployment.cert_path());
    imap.read_line();
    imap.send(&format!("a LOGIN {} \"{}\"", ACCOUNT.user, ACCOUNT.password));
    imap.expect_tagged("a");
    for (i, short) in ["a", "b", "c"].iter().enumerate() {
        let message = ACCOUNT.mail(short, "uidl");
        imap.send(&format!("x{i} APPEND INBOX {{{}+}}\r\n{message}", message.len()));
        imap.expect_tagged(&format!("x{i}"));
    }
    imap.send("s STATUS INBOX (UIDVALIDITY)");
    let status = imap.expect_tagged("s");
    let validity: u32 = status[0].rsplit(' ').next().unwrap().trim_end_matches(')').parse().unwrap();
    let before = uidl(&deployment);
    // Dovecot's default form (`%08Xu%08Xv` writes lowercase digits).
    let want: Vec<String> = (1..=3).map(|uid| format!("{uid} {uid:08x}{validity:08x}")).collect();
    assert_eq!(before, want);
    drop(imap);

    // A session with a deletion pending when the server stops: told so, and nothing is
    // expunged (RFC 1939 §6: no UPDATE without QUIT).
    let mut pop = greeted(Client::tls(listeners.pop3s.unwrap(), &deployment.cert_path()));
    login(&mut pop);
    assert!(cmd(&mut pop, "DELE 1").starts_with("+OK"));
    deployment.terminate();
    assert_eq!(pop.read_line(), "-ERR [SYS/TEMP] Server shutting down");
    pop.expect_closed();

    deployment.start_awaiting(&["pop3", "pop3s"]);
    assert_eq!(uidl(&deployment), before, "UIDL changed across a restart");
}

#[test]
fn a_client_that_does_not_log_in_in_time_is_logged_out() {
    let server = TestServer::start_with_sections("preauth_deadline = 1", POP3_SECTION, &["pop3", "pop3s"]);
    let mut pop = pop_plain(&server);
    let started = Instant::now();
    assert_eq!(pop.read_line(), "-ERR Autologout; login took too long");
    pop.expect_closed();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn pop3_is_off_by_default() {
    let server = TestServer::start();
    assert!(server.pop3.is_none() && server.pop3s.is_none());
    assert!(!server.log().contains("kind=pop3"), "{}", server.log_tail(10));
}

// ---------------------------------------------------------------------------------------------
// fetchmail
// ---------------------------------------------------------------------------------------------

/// Runs fetchmail with `rc` (a .fetchmailrc body) and extra arguments; returns its exit code
/// (0: mail fetched, 1: no mail).
fn fetchmail(dir: &Path, rc: &str, args: &[&str], server: &TestServer) -> i32 {
    let rc_path = dir.join("fetchmailrc");
    std::fs::write(&rc_path, rc).unwrap();
    // fetchmail refuses a run-control file others may read.
    std::fs::set_permissions(&rc_path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let done = run_program(
        Command::new("fetchmail")
            .env("FETCHMAILHOME", dir)
            .env("HOME", dir)
            .args(["--nosyslog", "--nodetach", "-v", "--fetchmailrc"])
            .arg(&rc_path)
            .arg("--idfile")
            .arg(dir.join("ids"))
            .args(args),
        dir,
        "fetchmail",
        CLIENT_DEADLINE,
    );
    let code = done.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "fetchmail failed ({code}):\n{}\n{}\nserver:\n{}",
        done.stdout,
        done.stderr,
        server.log_tail(30)
    );
    code
}

/// What the MDA stored: one file per message.
fn delivered(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir.join("mail"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    found.sort();
    found
}

#[test]
fn fetchmail_keeps_by_uidl_then_fetches_and_deletes_over_tls_and_stls() {
    if !available("fetchmail", "fetchmail") {
        return;
    }
    let server = server();
    let mut imap = seed(&server, &[&ACCOUNT.mail("f1", "one"), DOTTED, &ACCOUNT.mail("f3", "three")]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mail")).unwrap();
    let mda = format!("cat > {}/mail/msg.$$", dir.path().display());
    let rc = |port: u16, tls: &str| {
        format!(
            "set no bouncemail\n\
             poll localhost via 127.0.0.1 with protocol POP3 port {port} uidl\n  \
             user \"{user}\" there with password \"{password}\" is \"root\" here\n  \
             {tls} sslcertck sslcertfile \"{cert}\" sslcommonname \"localhost\"\n  mda \"{mda}\"\n",
            user = ACCOUNT.user,
            password = ACCOUNT.password,
            cert = server.cert_path().display(),
        )
    };
    let tls = rc(server.pop3s.unwrap().port(), "ssl");

    // Keep: everything is fetched, nothing removed; UIDL remembers what was seen.
    assert_eq!(fetchmail(dir.path(), &tls, &["--keep"], &server), 0);
    let got = delivered(dir.path());
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().any(|m| m.contains("\n.leading dot\n") && m.contains("\n..two\n")), "{got:?}");
    imap.ok("SELECT INBOX");
    assert_eq!(imap.ok("SEARCH ALL"), vec!["* SEARCH 1 2 3"]);
    // Nothing new: fetchmail knows every UIDL.
    assert_eq!(fetchmail(dir.path(), &tls, &["--keep"], &server), 1);

    // A new message over STLS on the cleartext port: only it is fetched, and deleted.
    imap.append("INBOX", "", &ACCOUNT.mail("f4", "four"));
    let stls = rc(server.pop3.unwrap().port(), "sslproto tls1.2+");
    assert_eq!(fetchmail(dir.path(), &stls, &[], &server), 0);
    assert!(server.log().contains("STLS completed"), "fetchmail did not use STLS");
    assert_eq!(delivered(dir.path()).len(), 4);
    imap.ok("NOOP");
    assert_eq!(imap.ok("UID SEARCH ALL").last().unwrap(), "* SEARCH 1 2 3");

    // Fetch all and delete: the INBOX ends empty, and IMAP sees it.
    assert_eq!(fetchmail(dir.path(), &tls, &["--all"], &server), 0);
    assert_eq!(delivered(dir.path()).len(), 7);
    imap.ok("NOOP");
    assert_eq!(imap.ok("SEARCH ALL").last().unwrap(), "* SEARCH");
    assert!(server.log().contains("mechanism=USER result=ok"), "fetchmail logs in with USER/PASS");
}

/// Standard base64 (for AUTH LOGIN in the raw test).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
