//! Mail delivery black-box tests: LMTP over TCP and a unix socket, `postfach deliver`,
//! `postfach sieve`, IDLE clients woken by delivery, vacation replies through an SMTP relay,
//! and interop with swaks and a real Postfix (skipped when missing unless
//! POSTFACH_REQUIRE_CLIENTS=1).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, PATIENCE, TestServer};

const PASSWORD: &str = "secret-pw";

/// How long an IDLE client may take to see a delivered message (the promise).
const IDLE_PROMPTNESS: Duration = Duration::from_millis(100);

/// A blocking line client for LMTP/SMTP.
struct Line<S: Read + Write> {
    stream: BufReader<S>,
}

impl<S: Read + Write> Line<S> {
    fn new(stream: S) -> Self {
        Line { stream: BufReader::new(stream) }
    }

    fn send(&mut self, text: &str) {
        self.stream.get_mut().write_all(text.as_bytes()).unwrap();
        self.stream.get_mut().flush().unwrap();
    }

    /// One reply (all lines of a multi-line one), joined by '\n'.
    fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.stream.read_line(&mut line).unwrap() > 0, "connection closed; got {lines:?}");
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }
}

fn lmtp_tcp(addr: SocketAddr) -> Line<TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut c = Line::new(tcp);
    assert!(c.reply().starts_with("220 "));
    c
}

fn message(subject: &str, extra: &str) -> String {
    format!(
        "From: Sender <sender@remote.example>\r\nTo: bob@example.org\r\nSubject: {subject}\r\nMessage-ID: <{subject}@remote.example>\r\n{extra}\r\nHello.\r\n"
    )
}

/// A server with plaintext login allowed and users bob and carol.
fn server_with(sections: &str, kinds: &[&str]) -> TestServer {
    let server = TestServer::start_with_sections("allow_plaintext_auth = true", sections, kinds);
    server.add_user("bob", PASSWORD);
    server.add_user("carol", PASSWORD);
    server
}

/// Logs in and starts IDLE on `mailbox`.
fn idle_client(server: &TestServer, user: &str, mailbox: &str) -> Client {
    let mut c = server.connect();
    c.read_line();
    c.send(&format!("a LOGIN {user} {PASSWORD}"));
    assert!(c.expect_tagged("a").last().unwrap().starts_with("a OK"));
    c.send(&format!("b SELECT {mailbox}"));
    assert!(c.expect_tagged("b").last().unwrap().starts_with("b OK"));
    c.send("c IDLE");
    assert!(c.read_line().starts_with('+'));
    c
}

/// Waits for an untagged `* N EXISTS` and returns N.
fn wait_exists(c: &mut Client) -> u32 {
    loop {
        let line = c.read_line();
        if let Some(n) = line.strip_prefix("* ").and_then(|l| l.strip_suffix(" EXISTS")) {
            return n.parse().unwrap();
        }
    }
}

/// MESSAGES of a mailbox through a fresh IMAP login.
fn count(server: &TestServer, user: &str, mailbox: &str) -> u32 {
    let mut c = server.connect();
    c.read_line();
    c.send(&format!("a LOGIN {user} {PASSWORD}"));
    c.expect_tagged("a");
    c.send(&format!("b STATUS \"{mailbox}\" (MESSAGES)"));
    let lines = c.expect_tagged("b");
    assert!(lines.last().unwrap().starts_with("b OK"), "{lines:?}");
    let status = lines.iter().find(|l| l.starts_with("* STATUS")).unwrap();
    status.rsplit("MESSAGES ").next().unwrap().trim_end_matches(')').parse().unwrap()
}

/// The raw text of message UID `uid` of a mailbox.
fn fetch_text(server: &TestServer, user: &str, mailbox: &str, uid: u32) -> String {
    let mut c = server.connect();
    c.read_line();
    c.send(&format!("a LOGIN {user} {PASSWORD}"));
    c.expect_tagged("a");
    c.send(&format!("b EXAMINE \"{mailbox}\""));
    c.expect_tagged("b");
    c.send(&format!("c UID FETCH {uid} BODY.PEEK[HEADER]"));
    c.expect_tagged("c").join("\n")
}

#[test]
fn lmtp_delivery_wakes_idle_clients() {
    let server = server_with("", &["lmtp"]);
    let mut idle = idle_client(&server, "bob", "INBOX");
    let mut lmtp = lmtp_tcp(server.lmtp.unwrap());
    lmtp.send("LHLO mx.example\r\n");
    let caps = lmtp.reply();
    for cap in ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE"] {
        assert!(caps.contains(cap), "{caps}");
    }
    // Pipelined, as Postfix sends it (RFC 2920).
    lmtp.send("MAIL FROM:<sender@remote.example>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<carol+news@example.org>\r\nDATA\r\n");
    assert_eq!(lmtp.reply(), "250 2.1.0 Ok");
    assert_eq!(lmtp.reply(), "250 2.1.5 Ok");
    assert_eq!(lmtp.reply(), "550 5.1.1 <nobody@example.org> User unknown");
    assert_eq!(lmtp.reply(), "250 2.1.5 Ok");
    assert!(lmtp.reply().starts_with("354 "));
    lmtp.send(&format!("{}.\r\n", message("first", "")));
    let first = lmtp.reply();
    let stored = Instant::now();
    assert_eq!(first, "250 2.0.0 <bob@example.org> Delivered");
    assert_eq!(lmtp.reply(), "250 2.0.0 <carol+news@example.org> Delivered");
    idle.set_timeout(PATIENCE);
    assert_eq!(wait_exists(&mut idle), 1);
    let waited = stored.elapsed();
    eprintln!("IDLE saw the message {waited:?} after the LMTP reply");
    assert!(waited < IDLE_PROMPTNESS, "IDLE client woke after {waited:?}");
    lmtp.send("QUIT\r\n");
    assert!(lmtp.reply().starts_with("221 2.0.0"));
    idle.send("DONE");
    idle.expect_tagged("c");

    let header = fetch_text(&server, "carol", "INBOX", 1);
    assert!(header.contains("Return-Path: <sender@remote.example>"), "{header}");
    assert!(header.contains("Delivered-To: carol+news@example.org"), "{header}");
    assert_eq!(count(&server, "bob", "INBOX"), 1);
}

#[test]
fn sieve_spam_and_subaddress_over_lmtp() {
    let server = server_with("", &["lmtp"]);
    let script = "require [\"fileinto\", \"mailbox\"];\nif header :contains \"subject\" \"[rust]\" { fileinto :create \"lists/rust\"; }\n";
    let out = server.cli(&["sieve", "put", "bob", "lists", "--activate"], script);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut lmtp = lmtp_tcp(server.lmtp.unwrap());
    lmtp.send("LHLO mx\r\n");
    lmtp.reply();
    for (subject, extra) in [
        ("[rust] news", ""),
        ("buy now", "X-Spam-Flag: YES\r\n"),
        ("plain", ""),
        ("rspamd", "X-Spam: yes\r\n"),
    ] {
        lmtp.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
        assert_eq!(lmtp.reply(), "250 2.1.0 Ok");
        assert_eq!(lmtp.reply(), "250 2.1.5 Ok");
        lmtp.reply();
        lmtp.send(&format!("{}.\r\n", message(subject, extra)));
        assert_eq!(lmtp.reply(), "250 2.0.0 <bob@example.org> Delivered");
    }
    assert_eq!(count(&server, "bob", "lists/rust"), 1);
    assert_eq!(count(&server, "bob", "Junk"), 2);
    assert_eq!(count(&server, "bob", "INBOX"), 1);

    // The subaddress folder, once bob allows it.
    let out = server.cli(&["sieve", "subaddress", "bob", "mailbox"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    lmtp.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<bob+Archive@example.org>\r\nDATA\r\n");
    lmtp.reply();
    lmtp.reply();
    lmtp.reply();
    lmtp.send(&format!("{}.\r\n", message("archived", "")));
    assert_eq!(lmtp.reply(), "250 2.0.0 <bob+Archive@example.org> Delivered");
    assert_eq!(count(&server, "bob", "Archive"), 1);
}

#[test]
fn sieve_admin_commands() {
    let server = server_with("", &["lmtp"]);
    // Checked on upload, with line, column and what was expected.
    let out = server.cli(&["sieve", "put", "bob", "bad"], "require \"fileinto\";\nkeep\nstop;\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("script \"bad\" is not valid Sieve: 2:5: expected ';' after \"keep\""),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.sieve");
    std::fs::write(&file, "keep;\n").unwrap();
    let out = server.cli(&["sieve", "put", "bob", "main", file.to_str().unwrap(), "--activate"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = server.cli(&["sieve", "put", "bob", "other"], "discard;\n");
    assert!(out.status.success());
    let out = server.cli(&["sieve", "list", "bob"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "main (active)\nother\n");
    let out = server.cli(&["sieve", "list", "bob", "--json"], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"scripts\":[{\"active\":true,\"name\":\"main\"},{\"active\":false,\"name\":\"other\"}]}\n"
    );
    let out = server.cli(&["sieve", "get", "bob", "other"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "discard;\n");
    let out = server.cli(&["sieve", "delete", "bob", "main"], "");
    assert_eq!(out.status.code(), Some(1), "the active script cannot be deleted");
    assert!(String::from_utf8_lossy(&out.stderr).contains("deactivate it first"));
    let out = server.cli(&["sieve", "activate", "bob", "other"], "");
    assert!(out.status.success());
    let out = server.cli(&["sieve", "delete", "bob", "main"], "");
    assert!(out.status.success());
    let out = server.cli(&["sieve", "deactivate", "bob"], "");
    assert!(out.status.success());
    let out = server.cli(&["sieve", "list", "bob"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "other\n");
    let out = server.cli(&["sieve", "list", "nobody"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such user: nobody"));
}

/// `lmtp.allowed_networks` decides who may connect over TCP: a client outside it gets a 554
/// greeting and the connection closes; the unix socket is served whatever the networks say.
/// Only loopback exists here, so the allowed network is one the client is not in. Listening on
/// the unspecified address (a non-loopback one) is logged as a warning at start.
#[test]
fn lmtp_refuses_clients_outside_the_allowed_networks() {
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("lmtp.sock");
    let sections = format!(
        "[lmtp]\nlisten = [\"0.0.0.0:0\"]\nlisten_unix = {:?}\nallowed_networks = [\"192.0.2.0/24\"]\n",
        socket.display().to_string()
    );
    let server = server_with(&sections, &["lmtp", "lmtp-unix"]);
    let port = server.lmtp.unwrap().port();

    let tcp = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut c = Line::new(tcp);
    let greeting = c.reply();
    assert!(greeting.starts_with("554 5.7.1 "), "{greeting}");
    // Closed: nothing more is read, whatever is sent.
    let _ = c.stream.get_mut().write_all(b"LHLO x\r\n");
    let mut rest = String::new();
    assert_eq!(c.stream.read_line(&mut rest).unwrap_or(0), 0, "{rest:?}");

    // The unix socket is always allowed, and delivers.
    let unix = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    unix.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut u = Line::new(unix);
    assert!(u.reply().starts_with("220 "));
    u.send("LHLO mta.test\r\n");
    assert!(u.reply().starts_with("250"));
    u.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    assert!(u.reply().starts_with("250"));
    assert!(u.reply().starts_with("250"));
    assert!(u.reply().starts_with("354"));
    u.send(&format!("{}.\r\n", message("via-unix", "")));
    assert!(u.reply().starts_with("250"));
    u.send("QUIT\r\n");

    let log = server.log();
    assert!(log.contains("LMTP listens on a non-loopback address"), "{log}");
    assert!(log.contains("LMTP connection refused"), "{log}");
}

#[test]
fn deliver_command_goes_through_the_running_server() {
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("lmtp.sock");
    let sections =
        format!("[lmtp]\nlisten = [\"127.0.0.1:0\"]\nlisten_unix = {:?}\n", socket.display().to_string());
    let server = server_with(&sections, &["lmtp", "lmtp-unix"]);
    let mut idle = idle_client(&server, "bob", "INBOX");
    let started = Instant::now();
    let out = server.cli(
        &["deliver", "--recipient", "bob@example.org", "--from", "s@remote.example"],
        "From x Mon Jan  1 00:00:00 2026\nSubject: piped\n\nbare LF body\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Through the server, so IDLE sees it at once (a direct append could not wake it).
    assert_eq!(wait_exists(&mut idle), 1);
    eprintln!("deliver + IDLE wake-up took {:?}", started.elapsed());
    let header = fetch_text(&server, "bob", "INBOX", 1);
    assert!(header.contains("Subject: piped"), "{header}");
    assert!(header.contains("with LMTP"), "{header}");
    assert!(!header.contains("From x Mon"), "{header}");

    let out = server.cli(&["deliver", "--recipient", "nobody@example.org"], "Subject: x\n\nx\n");
    assert_eq!(out.status.code(), Some(67), "EX_NOUSER: {}", String::from_utf8_lossy(&out.stderr));
    let out = server.cli(&["deliver"], "Subject: x\n\nx\n");
    assert_eq!(out.status.code(), Some(64), "EX_USAGE");
    let out = server.cli(&["deliver", "--recipient", "bad\naddress"], "x");
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn deliver_command_without_a_server_appends_directly() {
    let mut server = server_with("[lmtp]\nlisten = []\n", &[]);
    server.signal("TERM");
    assert!(server.wait_exit(PATIENCE).is_some());
    let out = server.cli(&["deliver", "--recipient", "carol"], "Subject: direct\r\n\r\nbody\r\n");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = server.cli(&["deliver", "--recipient", "nobody"], "Subject: direct\r\n\r\nbody\r\n");
    assert_eq!(out.status.code(), Some(67));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = server.open_store().await;
        let carol = store.account_by_name("carol").await.unwrap().unwrap();
        let inbox =
            store.mailbox_by_name(carol.id, &postfach_store::MailboxName::inbox()).await.unwrap().unwrap();
        assert_eq!(store.status(inbox.id).await.unwrap().messages, 1);
        let raw = store.body(inbox.id, postfach_store::Uid::MIN).await.unwrap();
        assert!(String::from_utf8_lossy(&raw).contains("with local id"));
    });
}

/// A fake SMTP relay: accepts everything and keeps the DATA of each message.
fn fake_relay() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::clone(&got);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            conn.set_read_timeout(Some(PATIENCE)).unwrap();
            let mut c = Line::new(conn);
            c.send("220 relay ESMTP\r\n");
            let mut data: Option<String> = None;
            loop {
                let mut line = String::new();
                if c.stream.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(text) = data.as_mut() {
                    if line == ".\r\n" {
                        store.lock().unwrap().push(data.take().unwrap());
                        c.send("250 queued\r\n");
                    } else {
                        text.push_str(&line);
                    }
                    continue;
                }
                match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                    "DATA" => {
                        data = Some(String::new());
                        c.send("354 go\r\n");
                    }
                    "QUIT" => {
                        c.send("221 bye\r\n");
                        break;
                    }
                    _ => c.send("250 ok\r\n"),
                }
            }
        }
    });
    (addr, got)
}

#[test]
fn vacation_reply_through_the_relay_once() {
    let (relay, sent) = fake_relay();
    let server = server_with(&format!("[vacation]\nsmtp_relay = \"{relay}\"\n"), &["lmtp"]);
    let script = "require \"vacation\";\nvacation :days 3 :subject \"Out of office\" \"Back on Monday.\";\n";
    assert!(server.cli(&["sieve", "put", "bob", "away", "--activate"], script).status.success());
    let mut lmtp = lmtp_tcp(server.lmtp.unwrap());
    lmtp.send("LHLO mx\r\n");
    lmtp.reply();
    for _ in 0..2 {
        lmtp.send("MAIL FROM:<sender@remote.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
        lmtp.reply();
        lmtp.reply();
        lmtp.reply();
        lmtp.send(&format!("{}.\r\n", message("question", "")));
        assert_eq!(lmtp.reply(), "250 2.0.0 <bob@example.org> Delivered");
    }
    // The reply leaves through the outbound queue, in the background.
    let deadline = Instant::now() + PATIENCE;
    while sent.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 1, "never twice within :days: {sent:?}");
    assert!(sent[0].contains("Subject: Out of office\r\n"), "{}", sent[0]);
    assert!(sent[0].contains("To: <sender@remote.example>\r\n"));
    assert!(sent[0].contains("In-Reply-To: <question@remote.example>"));
    assert_eq!(count(&server, "bob", "INBOX"), 2);
}

/// Whether an external tool is there; panics instead when CI requires it.
fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("POSTFACH_REQUIRE_CLIENTS").as_deref() != Ok("1"),
            "{tool} is required (POSTFACH_REQUIRE_CLIENTS=1) but missing"
        );
        eprintln!("skipping: {tool} is not installed (apt-get install {tool})");
    }
    found
}

#[test]
fn swaks_as_lmtp_client() {
    if !have("swaks") {
        return;
    }
    let server = server_with("", &["lmtp"]);
    let addr = server.lmtp.unwrap();
    let out = Command::new("swaks")
        .args(["--protocol", "LMTP", "--server", &addr.ip().to_string(), "--port", &addr.port().to_string()])
        .args(["--from", "sender@remote.example", "--to", "bob@example.org,carol@example.org"])
        .args(["--header", "Subject: from swaks", "--body", "Hello from swaks.", "--helo", "swaks.test"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "swaks failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("<-  250 2.0.0 <bob@example.org> Delivered"), "{text}");
    assert!(text.contains("<-  250 2.0.0 <carol@example.org> Delivered"), "{text}");
    assert_eq!(count(&server, "bob", "INBOX"), 1);
    assert_eq!(count(&server, "carol", "INBOX"), 1);
    // An unknown recipient is refused at RCPT time.
    let out = Command::new("swaks")
        .args(["--protocol", "LMTP", "--server", &addr.ip().to_string(), "--port", &addr.port().to_string()])
        .args(["--from", "sender@remote.example", "--to", "nobody@example.org"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("550 5.1.1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A private Postfix instance (root only): SMTP in on a loopback port, LMTP out to Postfach.
/// Stops itself (and only itself) when dropped.
struct Postfix {
    dir: tempfile::TempDir,
    smtp: SocketAddr,
}

impl Postfix {
    fn config_dir(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    fn start(lmtp: SocketAddr) -> Postfix {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        let smtp_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // master.cf: the system's services with chroot off, smtpd on our port only.
        let master = std::fs::read_to_string("/etc/postfix/master.cf").unwrap();
        let mut out = String::new();
        for line in master.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with(|c: char| c.is_ascii_alphanumeric()) && fields.len() >= 8 {
                if fields[0] == "smtp" && fields[1] == "inet" {
                    out.push_str(&format!("127.0.0.1:{smtp_port} inet n - n - - smtpd\n"));
                    continue;
                }
                if fields[1] == "inet" {
                    continue;
                }
                let mut f = fields.clone();
                f[4] = "n";
                out.push_str(&f.join(" "));
                out.push('\n');
            } else if !line.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                out.push_str(line);
                out.push('\n');
            }
        }
        std::fs::write(etc.join("master.cf"), out).unwrap();
        let queue = dir.path().join("queue");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&queue).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        // Postfix's daemons run as the postfix user: they must reach the directory and own
        // their data directory.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(Command::new("chown").arg("postfix").arg(&data).status().unwrap().success());
        let main = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {queue}\n\
             data_directory = {data}\n\
             myhostname = postfix.test\n\
             mydomain = test\n\
             mydestination =\n\
             inet_interfaces = loopback-only\n\
             inet_protocols = ipv4\n\
             mynetworks = 127.0.0.0/8\n\
             virtual_mailbox_domains = example.org\n\
             virtual_transport = lmtp:inet:[127.0.0.1]:{port}\n\
             lmtp_host_lookup = native\n\
             disable_dns_lookups = yes\n\
             smtp_dns_support_level = disabled\n\
             alias_maps =\n\
             alias_database =\n\
             local_recipient_maps =\n\
             relayhost =\n\
             maillog_file = {log}\n\
             maillog_file_prefixes = {dir}\n\
             queue_run_delay = 1s\n\
             minimal_backoff_time = 1s\n\
             maximal_backoff_time = 2s\n",
            queue = queue.display(),
            data = data.display(),
            port = lmtp.port(),
            log = dir.path().join("maillog").display(),
            dir = dir.path().display(),
        );
        std::fs::write(etc.join("main.cf"), main).unwrap();
        let pf = Postfix { dir, smtp: SocketAddr::from(([127, 0, 0, 1], smtp_port)) };
        let out = Command::new("postfix").arg("-c").arg(pf.config_dir()).arg("start").output().unwrap();
        assert!(
            out.status.success(),
            "postfix start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(pf.smtp).is_err() {
            assert!(Instant::now() < deadline, "postfix did not listen; log:\n{}", pf.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        pf
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Sends one message over SMTP; returns the reply to the end of DATA.
    fn send(&self, from: &str, to: &[&str], text: &str) -> Vec<String> {
        let tcp = TcpStream::connect(self.smtp).unwrap();
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut c = Line::new(tcp);
        let mut replies = vec![c.reply()];
        c.send("EHLO client.test\r\n");
        replies.push(c.reply());
        c.send(&format!("MAIL FROM:<{from}>\r\n"));
        replies.push(c.reply());
        for rcpt in to {
            c.send(&format!("RCPT TO:<{rcpt}>\r\n"));
            replies.push(c.reply());
        }
        c.send("DATA\r\n");
        replies.push(c.reply());
        c.send(&format!("{text}.\r\n"));
        replies.push(c.reply());
        c.send("QUIT\r\n");
        replies
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix").arg("-c").arg(self.config_dir()).arg("stop").output();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn postfix_delivers_over_lmtp() {
    if !have("postfix") {
        return;
    }
    // The test copies the packaged master.cf; an installed binary without it cannot run.
    if !Path::new("/etc/postfix/master.cf").exists() {
        assert!(
            std::env::var("POSTFACH_REQUIRE_CLIENTS").as_deref() != Ok("1"),
            "Postfix is required (POSTFACH_REQUIRE_CLIENTS=1) but /etc/postfix/master.cf is missing"
        );
        eprintln!("skipping: /etc/postfix/master.cf is missing (apt-get install postfix)");
        return;
    }
    if !is_root() {
        assert!(
            std::env::var("POSTFACH_REQUIRE_CLIENTS").as_deref() != Ok("1"),
            "the Postfix test needs root"
        );
        eprintln!("skipping: the Postfix test needs root");
        return;
    }
    let server = server_with("", &["lmtp"]);
    let mut idle = idle_client(&server, "bob", "INBOX");
    let postfix = Postfix::start(server.lmtp.unwrap());
    let attachment = "Content-Type: multipart/mixed; boundary=b\r\nMIME-Version: 1.0\r\n";
    let text = format!(
        "From: sender@remote.example\r\nTo: bob@example.org, carol@example.org\r\nSubject: via postfix\r\nMessage-ID: <pf1@remote.example>\r\n{attachment}\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b--\r\n"
    );
    let replies = postfix.send("sender@remote.example", &["bob@example.org", "carol@example.org"], &text);
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}\n{}", postfix.log());
    idle.set_timeout(Duration::from_secs(30));
    assert_eq!(wait_exists(&mut idle), 1, "postfix log:\n{}", postfix.log());
    // Spam and an unknown recipient in the same stream.
    let spam = "From: s@remote.example\r\nTo: carol@example.org\r\nSubject: cheap\r\nX-Spam-Flag: YES\r\n\r\nbuy\r\n";
    let replies = postfix.send("s@remote.example", &["carol@example.org", "ghost@example.org"], spam);
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&server, "carol", "Junk") == 0 {
        assert!(Instant::now() < deadline, "spam never arrived; postfix log:\n{}", postfix.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(count(&server, "carol", "INBOX"), 1);
    assert_eq!(count(&server, "bob", "INBOX"), 1);
    // Postfix learned that ghost does not exist from our 550 5.1.1 (it bounces to the sender).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !postfix.log().contains("ghost@example.org") {
        assert!(Instant::now() < deadline, "no trace of ghost in the log:\n{}", postfix.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(postfix.log().contains("5.1.1"), "{}", postfix.log());
    let header = fetch_text(&server, "bob", "INBOX", 1);
    assert!(
        header.contains("Delivered-To: bob@example.org")
            && header.contains("Return-Path: <sender@remote.example>"),
        "{header}"
    );
}
