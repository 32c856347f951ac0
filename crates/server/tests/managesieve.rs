//! ManageSieve (RFC 5804) black-box tests: the real server over TCP. RFC 5804's examples
//! section by section, literals (synchronizing and not), bad input and its limits, STARTTLS then
//! AUTHENTICATE PLAIN, throttling and blocks shared with IMAP, two-factor rules, a script made
//! active over ManageSieve applied by an LMTP delivery, and the real clients Python's
//! `managesieve` (PyPI) and `sieve-connect` (Debian), skipped when missing unless
//! POSTFACH_REQUIRE_CLIENTS=1.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    CLIENT_DEADLINE, Client, PATIENCE, TestServer, available, connect_from, python_module, run_program,
};
use postfach_auth::totp::{self, TotpSecret};

const PASSWORD: &str = "secret-pw";

/// A ManageSieve section with a port-0 listener, for `start_with_sections`.
const MANAGESIEVE: &str = "[managesieve]\nlisten = [\"127.0.0.1:0\"]\n";

/// A server with ManageSieve (and LMTP) on port 0, `imap_extra` in `[imap]`, `sections` added,
/// and the user alice.
fn server(imap_extra: &str, sections: &str) -> TestServer {
    let server = TestServer::start_with_sections(
        imap_extra,
        &format!("{MANAGESIEVE}{sections}"),
        &["lmtp", "managesieve"],
    );
    server.add_user("alice", PASSWORD);
    server
}

/// One ManageSieve response: the lines before the status line (literals folded in, each
/// literal's text as one element) and the status line.
#[derive(Debug)]
struct Response {
    data: Vec<String>,
    status: String,
}

impl Response {
    fn is_ok(&self) -> bool {
        self.status.starts_with("OK")
    }
}

/// A blocking ManageSieve client on top of the IMAP test client's line reader.
struct Sieve {
    c: Client,
}

impl Sieve {
    fn plain(addr: SocketAddr) -> (Sieve, Response) {
        let mut s = Sieve { c: Client::plain(addr) };
        let greeting = s.response();
        (s, greeting)
    }

    fn from(local: [u8; 4], addr: SocketAddr) -> (Sieve, Response) {
        let mut s = Sieve { c: Client::plain_from(connect_from(local, addr)) };
        let greeting = s.response();
        (s, greeting)
    }

    /// Reads lines up to an OK/NO/BYE line; a line ending in `{n}` takes the next n bytes.
    fn response(&mut self) -> Response {
        let mut data = Vec::new();
        loop {
            let line = self.c.read_line();
            if line.starts_with("OK") || line.starts_with("NO") || line.starts_with("BYE") {
                let status = self.fold(line);
                return Response { data, status };
            }
            data.push(self.fold(line));
        }
    }

    /// Replaces a trailing `{n}` by the literal's text (and what follows it on its line).
    fn fold(&mut self, line: String) -> String {
        let Some(open) = line.rfind('{').filter(|_| line.ends_with('}')) else { return line };
        let Ok(size) = line[open + 1..line.len() - 1].parse::<usize>() else { return line };
        let mut text = String::new();
        while text.len() < size {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            text.push_str(&self.c.read_line());
        }
        format!("{}{}", &line[..open], text)
    }

    fn run(&mut self, command: &str) -> Response {
        self.c.send(command);
        self.response()
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.c.send_raw(bytes);
    }

    fn start_tls(&mut self, server: &TestServer) -> Response {
        let r = self.run("STARTTLS");
        assert!(r.is_ok(), "{r:?}");
        self.c.start_tls(&server.cert_path());
        // RFC 5804 §2.2: the capabilities come again, unasked.
        self.response()
    }

    fn login(&mut self, user: &str, password: &str) -> Response {
        self.run(&format!("AUTHENTICATE \"PLAIN\" \"{}\"", plain(user, password)))
    }
}

fn plain(user: &str, password: &str) -> String {
    base64(format!("\0{user}\0{password}").as_bytes())
}

fn base64(data: &[u8]) -> String {
    postfach_auth::encoding::base64_encode(data)
}

/// The value of capability `name` (`"NAME" "value"`), `Some("")` for one without a value.
fn capability(r: &Response, name: &str) -> Option<String> {
    let quoted = format!("\"{name}\"");
    r.data
        .iter()
        .find(|l| l.to_ascii_uppercase().starts_with(&quoted))
        .map(|l| l[quoted.len()..].trim().trim_matches('"').to_owned())
}

/// RFC 5804 §2.1-§2.14 in order, on one connection: STARTTLS, AUTHENTICATE PLAIN, every script
/// command with the answers the RFC's examples show, UNAUTHENTICATE, LOGOUT.
#[test]
fn rfc5804_examples_over_starttls() {
    let server = server("", "");
    let (mut s, greeting) = Sieve::plain(server.managesieve.unwrap());
    // §1.7: IMPLEMENTATION, SIEVE and VERSION always; SASL empty before TLS, with STARTTLS.
    assert!(greeting.is_ok(), "{greeting:?}");
    assert!(capability(&greeting, "IMPLEMENTATION").unwrap().starts_with("Postfach"));
    let sieve = capability(&greeting, "SIEVE").unwrap();
    for ext in ["fileinto", "vacation", "variables", "imap4flags", "body", "relational"] {
        assert!(sieve.split(' ').any(|e| e == ext), "{ext} missing from {sieve}");
    }
    assert_eq!(capability(&greeting, "VERSION").as_deref(), Some("1.0"));
    assert_eq!(capability(&greeting, "SASL").as_deref(), Some(""));
    assert_eq!(capability(&greeting, "STARTTLS").as_deref(), Some(""));
    assert_eq!(capability(&greeting, "MAXREDIRECTS").as_deref(), Some("4"));
    assert!(capability(&greeting, "OWNER").is_none());

    // §2: before authentication only AUTHENTICATE, STARTTLS, CAPABILITY, NOOP and LOGOUT.
    let r = s.run("LISTSCRIPTS");
    assert!(r.status.starts_with("NO"), "{r:?}");
    // The IMAP rule: no credentials over cleartext.
    let r = s.login("alice", PASSWORD);
    assert!(r.status.starts_with("NO (ENCRYPT-NEEDED)"), "{r:?}");

    // §2.2: STARTTLS, then the capabilities without STARTTLS and with the mechanisms.
    let caps = s.start_tls(&server);
    assert!(caps.is_ok(), "{caps:?}");
    assert!(capability(&caps, "STARTTLS").is_none(), "{caps:?}");
    let sasl = capability(&caps, "SASL").unwrap();
    assert!(sasl.contains("PLAIN") && sasl.contains("SCRAM-SHA-256"), "{sasl}");
    let r = s.run("STARTTLS");
    assert!(r.status.starts_with("NO"), "{r:?}");

    // §2.1: an unknown mechanism, a wrong password, then PLAIN with an initial response.
    assert!(s.run("AUTHENTICATE \"DIGEST-MD5\"").status.starts_with("NO"));
    assert!(s.login("alice", "wrong").status.starts_with("NO"));
    let r = s.login("alice", PASSWORD);
    assert!(r.is_ok(), "{r:?}");
    let caps = s.run("CAPABILITY");
    assert_eq!(capability(&caps, "OWNER").as_deref(), Some("alice"));
    assert!(s.run("AUTHENTICATE \"PLAIN\"").status.starts_with("NO"), "already authenticated");

    // §2.5 HAVESPACE.
    assert!(s.run("HAVESPACE \"myscript\" 999999").is_ok());
    let r = s.run("HAVESPACE \"myscript\" 2000000");
    assert!(r.status.starts_with("NO (QUOTA/MAXSIZE)"), "{r:?}");

    // §2.6 PUTSCRIPT: the first example is refused with the line and column.
    s.send_raw(b"Putscript \"foo\" {31+}\r\n#comment\r\nInvalidSieveCommand\r\n\r\n");
    let r = s.response();
    assert!(r.status.starts_with("NO"), "{r:?}");
    assert!(r.status.contains("line 2:20: expected ';'"), "line:column in {r:?}");
    // The RFC's second example forgets `require "envelope"` (RFC 5228 §5.4), which our
    // interpreter insists on.
    let script = "require [\"fileinto\", \"envelope\"];\r\n\r\nif envelope :contains \"to\" \"tmartin+sent\" {\r\n  fileinto \"INBOX.sent\";\r\n}";
    s.send_raw(format!("Putscript \"mysievescript\" {{{}+}}\r\n{script}\r\n", script.len()).as_bytes());
    let r = s.response();
    assert!(r.is_ok(), "{r:?}");
    // A require the interpreter lacks is refused (§2.6: extensions are checked).
    let r = s.run("PUTSCRIPT \"x\" \"require \\\"reject\\\"; keep;\"");
    assert!(r.status.starts_with("NO") && r.status.contains("reject"), "{r:?}");
    assert!(s.run("PUTSCRIPT \"foo\" \"keep;\"").is_ok());

    // §2.7 LISTSCRIPTS, §2.8 SETACTIVE.
    let r = s.run("Listscripts");
    assert_eq!(r.data, ["\"foo\"", "\"mysievescript\""]);
    assert!(s.run("Setactive \"mysievescript\"").is_ok());
    let r = s.run("listscripts");
    assert_eq!(r.data, ["\"foo\"", "\"mysievescript\" ACTIVE"]);
    let r = s.run("Setactive \"baz\"");
    assert!(r.status.starts_with("NO (NONEXISTENT)"), "{r:?}");

    // §2.9 GETSCRIPT: a literal with the script as stored.
    let r = s.run("Getscript \"mysievescript\"");
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.data, [script]);
    assert!(s.run("GETSCRIPT \"nothere\"").status.starts_with("NO (NONEXISTENT)"));

    // §2.10 DELETESCRIPT: not the active one.
    let r = s.run("Deletescript \"mysievescript\"");
    assert!(r.status.starts_with("NO (ACTIVE)"), "{r:?}");
    assert!(s.run("DELETESCRIPT \"nothere\"").status.starts_with("NO (NONEXISTENT)"));

    // §2.11 RENAMESCRIPT: the active script stays active; the new name must be free.
    assert!(s.run("Renamescript \"mysievescript\" \"bar\"").is_ok());
    let r = s.run("Renamescript \"foo\" \"bar\"");
    assert!(r.status.starts_with("NO (ALREADYEXISTS)"), "{r:?}");
    assert!(s.run("RENAMESCRIPT \"nothere\" \"x\"").status.starts_with("NO (NONEXISTENT)"));
    assert_eq!(s.run("LISTSCRIPTS").data, ["\"bar\" ACTIVE", "\"foo\""]);

    // §2.8 SETACTIVE "" deactivates (also when nothing is active); then DELETESCRIPT works.
    assert!(s.run("Setactive \"\"").is_ok());
    assert!(s.run("Setactive \"\"").is_ok());
    assert_eq!(s.run("LISTSCRIPTS").data, ["\"bar\"", "\"foo\""]);
    assert!(s.run("Deletescript \"bar\"").is_ok());

    // §2.12 CHECKSCRIPT stores nothing.
    let r = s.run("CheckScript {31+}\r\n#comment\r\nInvalidSieveCommand\r\n");
    assert!(r.status.starts_with("NO") && r.status.contains("line 2:20"), "{r:?}");
    assert!(s.run("CHECKSCRIPT \"keep;\"").is_ok());
    assert_eq!(s.run("LISTSCRIPTS").data, ["\"foo\""]);

    // §2.13 NOOP with and without a tag.
    assert_eq!(s.run("NOOP").status, "OK \"NOOP completed\"");
    assert_eq!(s.run("NOOP \"STARTTLS-SYNC-42\"").status, "OK (TAG \"STARTTLS-SYNC-42\") \"Done\"");

    // §2.14.1 UNAUTHENTICATE, then §2.3 LOGOUT.
    assert!(s.run("UNAUTHENTICATE").is_ok());
    assert!(s.run("LISTSCRIPTS").status.starts_with("NO"));
    assert!(s.run("UNAUTHENTICATE").status.starts_with("NO"), "not authenticated");
    assert!(s.login("alice", PASSWORD).is_ok(), "log in again on the same connection");
    assert!(s.run("Logout").is_ok());
    s.c.expect_closed();

    // The server logged the ManageSieve logins like IMAP's.
    let log = server.log();
    assert!(log.contains("mechanism=AUTH=PLAIN result=ok"), "{log}");
    assert!(log.contains("kind=\"managesieve\"") || log.contains("kind=managesieve"), "{log}");
}

/// Literals both ways, limits, and bad input: every one gets NO (or BYE) and the session goes
/// on where it can.
#[test]
fn literals_limits_and_bad_input() {
    let server = server("allow_plaintext_auth = true", "");
    let (mut s, greeting) = Sieve::plain(server.managesieve.unwrap());
    // Allowed in cleartext here: the mechanisms are offered.
    assert!(capability(&greeting, "SASL").unwrap().contains("PLAIN"));
    // Before login: a literal beyond the 8 KiB pre-auth limit is refused without a continuation.
    s.send_raw(b"AUTHENTICATE \"PLAIN\" {100000}\r\n");
    let r = s.response();
    assert!(r.status.starts_with("NO"), "{r:?}");
    // The initial response as a non-synchronizing literal (Python's managesieve sends it so).
    let ir = plain("alice", PASSWORD);
    s.send_raw(format!("AUTHENTICATE \"PLAIN\" {{{}+}}\r\n{ir}\r\n", ir.len()).as_bytes());
    assert!(s.response().is_ok());

    // A synchronizing literal gets a continuation request first.
    s.send_raw(b"PUTSCRIPT \"sync\" {5}\r\n");
    let cont = s.c.read_line();
    assert!(cont.starts_with('+'), "{cont:?}");
    s.send_raw(b"keep;\r\n");
    assert!(s.response().is_ok());
    assert_eq!(s.run("GETSCRIPT \"sync\"").data, ["keep;"]);

    // Too large: a synchronizing literal is refused before its data (QUOTA/MAXSIZE)...
    s.send_raw(b"PUTSCRIPT \"big\" {2000000}\r\n");
    let r = s.response();
    assert!(r.status.starts_with("NO (QUOTA/MAXSIZE)"), "{r:?}");
    // ...a non-synchronizing one is read, dropped and refused, and the session goes on.
    let big = vec![b'#'; 1_100_000];
    let mut command = b"PUTSCRIPT \"big\" {1100000+}\r\n".to_vec();
    command.extend_from_slice(&big);
    command.extend_from_slice(b"\r\n");
    s.send_raw(&command);
    let r = s.response();
    assert!(r.status.starts_with("NO (QUOTA/MAXSIZE)"), "{r:?}");
    assert!(s.run("NOOP").is_ok());
    // The largest script the interpreter takes fits (1 MiB of comment and `keep;`).
    let mut script = vec![b'#'; (1 << 20) - 7];
    script.extend_from_slice(b"\nkeep;");
    let mut command = format!("PUTSCRIPT \"large\" {{{}+}}\r\n", script.len()).into_bytes();
    command.extend_from_slice(&script);
    command.extend_from_slice(b"\r\n");
    s.send_raw(&command);
    let r = s.response();
    assert!(r.is_ok(), "{r:?}");

    // Scripts must be UTF-8 (position of the bad byte), non-empty; names per RFC 5804 §1.6.
    s.send_raw(b"PUTSCRIPT \"bin\" {9+}\r\nkeep;\n\xff\xfe\n\r\n");
    let r = s.response();
    assert!(r.status.starts_with("NO") && r.status.contains("2:1") && r.status.contains("UTF-8"), "{r:?}");
    assert!(s.run("PUTSCRIPT \"empty\" \"\"").status.starts_with("NO"));
    s.send_raw(b"PUTSCRIPT {3+}\r\na\x01b \"keep;\"\r\n");
    assert!(s.response().status.starts_with("NO"));
    let long_name = "n".repeat(129);
    assert!(s.run(&format!("PUTSCRIPT \"{long_name}\" \"keep;\"")).status.starts_with("NO"));
    let name_128 = "ü".repeat(128);
    assert!(s.run(&format!("PUTSCRIPT \"{name_128}\" \"keep;\"")).is_ok(), "128 characters are allowed");
    assert!(s.run(&format!("GETSCRIPT \"{name_128}\"")).is_ok());

    // Syntax errors, each with its reason; a long line; a long quoted string.
    for bad in [
        "FROBNICATE",
        "GETSCRIPT",
        "GETSCRIPT unquoted",
        "HAVESPACE \"x\" 007",
        "PUTSCRIPT \"x\"",
        "LOGOUT \"now\"",
    ] {
        let r = s.run(bad);
        assert!(r.status.starts_with("NO \""), "{bad}: {r:?}");
    }
    let r = s.run(&format!("NOOP \"{}\"", "x".repeat(20_000)));
    assert!(r.status.starts_with("NO") && r.status.contains("line too long"), "{r:?}");
    let r = s.run(&format!("NOOP \"{}\"", "x".repeat(2000)));
    assert!(r.status.starts_with("NO") && r.status.contains("literal"), "{r:?}");
    assert!(s.run("NOOP").is_ok());

    // Enough invalid commands end the connection with BYE.
    let mut last = None;
    for _ in 0..30 {
        let r = s.run("NONSENSE");
        if r.status.starts_with("BYE") {
            last = Some(r);
            break;
        }
    }
    assert!(last.is_some(), "no BYE after many invalid commands");
    s.c.expect_closed();
}

/// SCRAM-SHA-256 (RFC 5804 §2.1): challenges and responses are strings, the server's proof
/// comes in `OK (SASL "...")`; LOGIN's two prompts; `"*"` cancels.
#[test]
fn scram_login_and_cancel_exchanges() {
    use postfach_auth::encoding::base64_decode;
    use postfach_auth::scram::ScramClient;
    let server = server("allow_plaintext_auth = true", "");
    let (mut s, _) = Sieve::plain(server.managesieve.unwrap());
    let mut client = ScramClient::new("alice", PASSWORD.as_bytes(), "cnonce1234", None);
    let first = base64(client.client_first().as_bytes());
    s.c.send(&format!("AUTHENTICATE \"SCRAM-SHA-256\" \"{first}\""));
    // The challenge is a string line, not a status line.
    let challenge = s.c.read_line();
    panic_unless_string(&challenge);
    let server_first = base64_decode(challenge.trim_matches('"').as_bytes()).unwrap();
    let last = client.client_final(&server_first).unwrap();
    // The response as a literal this time.
    let last = base64(last.as_bytes());
    s.send_raw(format!("{{{}+}}\r\n{last}\r\n", last.len()).as_bytes());
    let r = s.response();
    let proof = r.status.strip_prefix("OK (SASL \"").and_then(|p| p.split('"').next()).expect(&r.status);
    assert!(client.verify_server_final(&base64_decode(proof.as_bytes()).unwrap()), "server proof");
    assert!(s.run("LISTSCRIPTS").is_ok());
    assert!(s.run("UNAUTHENTICATE").is_ok());

    // LOGIN: "Username:" and "Password:" prompts, each answered with a string.
    s.c.send("AUTHENTICATE \"LOGIN\"");
    assert_eq!(s.c.read_line(), format!("\"{}\"", base64(b"Username:")));
    s.c.send(&format!("\"{}\"", base64(b"alice")));
    assert_eq!(s.c.read_line(), format!("\"{}\"", base64(b"Password:")));
    s.c.send(&format!("\"{}\"", base64(PASSWORD.as_bytes())));
    assert!(s.response().is_ok());
    assert!(s.run("UNAUTHENTICATE").is_ok());

    // "*" cancels (the server MUST answer NO); bad base64 is refused.
    s.c.send("AUTHENTICATE \"PLAIN\"");
    assert_eq!(s.c.read_line(), "\"\"");
    let r = s.run("\"*\"");
    assert!(r.status.starts_with("NO"), "{r:?}");
    s.c.send("AUTHENTICATE \"PLAIN\"");
    s.c.read_line();
    assert!(s.run("\"not base64!\"").status.starts_with("NO"));
    assert!(s.run("LISTSCRIPTS").status.starts_with("NO"), "still not authenticated");
    // A response over the pre-auth line limit ends the exchange too.
    s.c.send("AUTHENTICATE \"PLAIN\"");
    s.c.read_line();
    assert!(s.run(&format!("\"{}\"", "A".repeat(10_000))).status.starts_with("NO"));
    assert!(s.login("alice", PASSWORD).is_ok(), "a new exchange starts cleanly");
}

/// A challenge line is one quoted string.
fn panic_unless_string(line: &str) {
    assert!(line.starts_with('"') && line.ends_with('"') && line.len() > 2, "not a challenge: {line:?}");
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

fn cli_ok(server: &TestServer, args: &[&str], stdin: &str) -> String {
    let out = server.cli(args, stdin);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn totp_secret(stdout: &str) -> TotpSecret {
    let uri = stdout.lines().find(|l| l.starts_with("otpauth://totp/")).expect(stdout);
    let secret = uri.split(['?', '&']).find_map(|p| p.strip_prefix("secret=")).expect(uri);
    TotpSecret::from_bytes(postfach_auth::encoding::base32_decode(secret).unwrap())
}

/// Wrong passwords over ManageSieve are slowed, then block the address, for IMAP too (one
/// authenticator); another address gets in. Two-factor: the password alone fails where IMAP
/// refuses it, an app password works.
#[test]
fn throttling_blocks_and_two_factor_follow_imap() {
    let server = server(
        "allow_plaintext_auth = true",
        "[auth]\nfailures_before_delay = 2\nmax_delay = 1\nfailures_before_block = 4\nblock_time = 600\n",
    );
    let addr = server.managesieve.unwrap();
    const ATTACKER: [u8; 4] = [127, 0, 0, 2];
    const USER: [u8; 4] = [127, 0, 0, 3];
    let (mut attacker, _) = Sieve::from(ATTACKER, addr);
    let mut took = Vec::new();
    for i in 1..=3 {
        let started = Instant::now();
        let r = attacker.login(&format!("user{i}"), "guess");
        took.push(started.elapsed());
        assert!(r.status.starts_with("NO"), "{r:?}");
    }
    assert!(took[2] >= Duration::from_millis(900), "the third failure is slowed: {took:?}");
    // The fourth failure blocks the address; the next attempt, even with the right password,
    // gets BYE and the connection closes (RFC 5804 §2.1's example).
    assert!(attacker.login("user4", "guess").status.starts_with("NO"));
    let r = attacker.login("alice", PASSWORD);
    assert!(r.status.starts_with("BYE"), "{r:?}");
    attacker.c.expect_closed();
    // Blocked for new ManageSieve connections and for IMAP.
    let (mut again, _) = Sieve::from(ATTACKER, addr);
    assert!(again.login("alice", PASSWORD).status.starts_with("BYE"));
    let mut imap = Client::plain_from(connect_from(ATTACKER, server.imap));
    imap.read_line();
    imap.send(&format!("a LOGIN alice {PASSWORD}"));
    let answer = imap.read_line();
    assert!(answer.starts_with("a NO") || answer.starts_with("* BYE"), "{answer}");
    let (mut user, _) = Sieve::from(USER, addr);
    assert!(user.login("alice", PASSWORD).is_ok());
    let log = server.log();
    assert!(log.contains("result=blocked"), "{log}");

    // Two-factor on: the bare password fails over ManageSieve as over IMAP...
    let out = server.cli(&["user", "totp", "enable", "alice"], "");
    let secret = totp_secret(&String::from_utf8(out.stdout).unwrap());
    let code = totp::code(&secret, totp::step_at(now()));
    cli_ok(&server, &["user", "totp", "enable", "alice"], &format!("{code}\n"));
    let (mut s, _) = Sieve::from(USER, addr);
    let r = s.login("alice", PASSWORD);
    assert!(r.status.starts_with("NO"), "{r:?}");
    // ...an app password works, and a session opened with the password ends at its next
    // command (TOTP switched on since).
    let app =
        cli_ok(&server, &["user", "app-password", "add", "alice", "--label", "sieve"], "").trim().to_owned();
    assert!(s.login("alice", &app).is_ok());
    assert!(s.run("LISTSCRIPTS").is_ok());
    wait_for_bye(&mut user);
    // Revoking the app password ends its session too.
    cli_ok(&server, &["user", "app-password", "revoke", "alice", "sieve"], "");
    wait_for_bye(&mut s);
}

/// Sends NOOP until the server answers BYE (credential changes reach the server within a
/// second or so: it polls the store).
fn wait_for_bye(s: &mut Sieve) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = s.run("NOOP");
        if r.status.starts_with("BYE") {
            assert!(r.status.contains("revoked"), "{r:?}");
            s.c.expect_closed();
            return;
        }
        assert!(r.is_ok(), "{r:?}");
        assert!(Instant::now() < deadline, "the session with a revoked credential lives on");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A blocking LMTP client.
fn lmtp_deliver(addr: SocketAddr, subject: &str) {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut r = BufReader::new(tcp.try_clone().unwrap());
    let mut w = tcp;
    let mut reply = || {
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.trim_end().to_owned();
            }
        }
    };
    assert!(reply().starts_with("220"));
    let message = format!(
        "From: s@remote.example\r\nTo: alice@example.org\r\nSubject: {subject}\r\nMessage-ID: <{}@x>\r\n\r\nHi.\r\n",
        subject.len()
    );
    for (line, expect) in [
        ("LHLO mx\r\n".to_owned(), "250"),
        ("MAIL FROM:<s@remote.example>\r\n".to_owned(), "250"),
        ("RCPT TO:<alice@example.org>\r\n".to_owned(), "250"),
        ("DATA\r\n".to_owned(), "354"),
        (format!("{message}.\r\n"), "250"),
    ] {
        w.write_all(line.as_bytes()).unwrap();
        let answer = reply();
        assert!(answer.starts_with(expect), "{line:?}: {answer}");
    }
}

/// MESSAGES of a mailbox through IMAP (plaintext login allowed on this server).
fn count(server: &TestServer, mailbox: &str) -> u32 {
    let mut c = server.connect();
    c.read_line();
    c.send(&format!("a LOGIN alice {PASSWORD}"));
    c.expect_tagged("a");
    c.send(&format!("b STATUS \"{mailbox}\" (MESSAGES)"));
    let lines = c.expect_tagged("b");
    let Some(status) = lines.iter().find(|l| l.starts_with("* STATUS")) else { return 0 };
    status.rsplit("MESSAGES ").next().unwrap().trim_end_matches(')').parse().unwrap()
}

/// A script uploaded and activated over ManageSieve sorts the next LMTP delivery; SETACTIVE ""
/// stops it.
#[test]
fn setactive_then_lmtp_delivery_applies_the_script() {
    let server = server("allow_plaintext_auth = true", "");
    let (mut s, _) = Sieve::plain(server.managesieve.unwrap());
    assert!(s.login("alice", PASSWORD).is_ok());
    let script = "require [\"fileinto\", \"mailbox\"];\nif header :contains \"subject\" \"[ms]\" {\n  fileinto :create \"Filed\";\n}\n";
    s.send_raw(format!("PUTSCRIPT \"filter\" {{{}+}}\r\n{script}\r\n", script.len()).as_bytes());
    assert!(s.response().is_ok());
    let lmtp = server.lmtp.unwrap();
    lmtp_deliver(lmtp, "[ms] before activation");
    assert_eq!(count(&server, "Filed"), 0);
    assert!(s.run("SETACTIVE \"filter\"").is_ok());
    lmtp_deliver(lmtp, "[ms] after activation");
    assert_eq!(count(&server, "Filed"), 1);
    // The CLI sees the same script, active.
    assert!(cli_ok(&server, &["sieve", "list", "alice"], "").contains("filter (active)"));
    assert!(s.run("SETACTIVE \"\"").is_ok());
    lmtp_deliver(lmtp, "[ms] after deactivation");
    assert_eq!(count(&server, "Filed"), 1);
    assert_eq!(count(&server, "INBOX"), 2);
}

/// Python's `managesieve` (PyPI): STARTTLS verifying our certificate for "localhost",
/// AUTHENTICATE PLAIN (a literal initial response), and every script command.
#[test]
fn python_managesieve_client() {
    if !python_module("managesieve", "managesieve") {
        return;
    }
    let server = server("", "");
    let port = server.managesieve.unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let program = format!(
        r#"
import managesieve, sys
m = managesieve.MANAGESIEVE("localhost", {port}, use_tls=True, tls_verify=True)
assert m.login("", "alice", "{PASSWORD}") == "OK", m.response_text
script = 'require ["fileinto"];\r\nif header :contains "subject" "x" {{ fileinto "X"; }}\r\n'
assert m.havespace("main", len(script)) == "OK"
assert m.putscript("main", script) == "OK"
typ = m.putscript("bad", "keep\r\nstop;\r\n")
assert typ == "NO", typ
print("error:", m.response_text)
assert m.putscript("spare", "keep;") == "OK"
assert m.setactive("main") == "OK"
typ, scripts = m.listscripts()
assert typ == "OK"
print("list:", scripts)
typ, text = m.getscript("main")
assert typ == "OK" and text == script, repr(text)
assert m.deletescript("main") == "NO"
print("code:", m.response_code)
assert m.deletescript("spare") == "OK"
assert m.setactive("") == "OK"
assert m.logout() == "OK"
print("done")
"#
    );
    let file = dir.path().join("client.py");
    std::fs::write(&file, program).unwrap();
    let finished = run_program(
        Command::new("python3").arg(&file).env("SSL_CERT_FILE", server.cert_path()),
        dir.path(),
        "python",
        CLIENT_DEADLINE,
    );
    finished.assert_success("python managesieve", &server);
    let out = finished.stdout;
    assert!(out.contains("error: Script error at line 1:5: expected ';'"), "{out}");
    assert!(out.contains("list: [") && out.contains("('main', True)"), "{out}");
    assert!(out.contains("code: ") && out.contains("ACTIVE"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
}

/// sieve-connect (Debian): STARTTLS with our certificate as the CA, AUTHENTICATE PLAIN,
/// upload, list, activate, download, delete.
#[test]
fn sieve_connect_client() {
    if !available("/usr/bin/sieve-connect", "sieve-connect") {
        return;
    }
    let server = server("", "");
    let port = server.managesieve.unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local.sieve");
    let script = "require \"fileinto\";\nif header :contains \"subject\" \"y\" { fileinto \"Y\"; }\n";
    std::fs::write(&local, script).unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let cert = server.cert_path();
    let run = |name: &str, action: &[&str]| {
        // --passwordfd 3 reads the password from fd 3: a shell gives it from a file.
        let mut words: Vec<String> = vec![
            "/usr/bin/sieve-connect".into(),
            "--server".into(),
            "localhost".into(),
            "--port".into(),
            port.clone(),
            "--user".into(),
            "alice".into(),
            "--authmech".into(),
            "PLAIN".into(),
            "--tlscafile".into(),
            cert.display().to_string(),
            "--passwordfd".into(),
            "3".into(),
        ];
        words.extend(action.iter().map(|s| (*s).to_owned()));
        let quoted: Vec<String> = words.iter().map(|w| format!("'{}'", w.replace('\'', "'\\''"))).collect();
        let shell = format!("exec {} 3<'{}'", quoted.join(" "), password.display());
        let finished =
            run_program(Command::new("sh").args(["-c", &shell]), dir.path(), name, CLIENT_DEADLINE);
        finished.assert_success(name, &server);
        finished.output()
    };
    let local_s = local.display().to_string();
    run("upload", &["--upload", "--localsieve", &local_s, "--remotesieve", "filters"]);
    run("activate", &["--activate", "--remotesieve", "filters"]);
    let listed = run("list", &["--list"]);
    assert!(listed.contains("\"filters\" ACTIVE"), "{listed}");
    let fetched = dir.path().join("fetched.sieve");
    run(
        "download",
        &["--download", "--remotesieve", "filters", "--localsieve", &fetched.display().to_string()],
    );
    assert_eq!(std::fs::read_to_string(&fetched).unwrap(), script);
    run("deactivate", &["--deactivate"]);
    run("delete", &["--delete", "--remotesieve", "filters"]);
    let listed = run("list-empty", &["--list"]);
    assert!(!listed.contains("filters"), "{listed}");
    assert!(server.log().contains("mechanism=AUTH=PLAIN result=ok"));
}

/// SIGTERM: an idle ManageSieve session gets BYE and the server exits.
#[test]
fn shutdown_says_bye() {
    let mut server = server("allow_plaintext_auth = true", "");
    let (mut s, _) = Sieve::plain(server.managesieve.unwrap());
    assert!(s.login("alice", PASSWORD).is_ok());
    server.signal("TERM");
    let line = s.c.read_line();
    assert!(line.starts_with("BYE"), "{line}");
    s.c.expect_closed();
    let status = server.wait_exit(PATIENCE).expect("the server exits");
    assert!(status.success(), "{status:?}");
}
