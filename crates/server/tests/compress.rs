//! COMPRESS=DEFLATE (RFC 4978), black box: the test's own deflate client (flate2, raw deflate,
//! a sync flush per write) against the real server over TCP.
//!
//! Covered: the RFC's exchange on cleartext, after STARTTLS and on implicit TLS; where the
//! command is legal (not before login) and where the capability is listed; `NO
//! [COMPRESSIONACTIVE]` the second time and BAD for an unknown algorithm (compression stays
//! off then); a big FETCH costs fewer bytes on the wire compressed than not; IDLE updates arrive
//! at once, also after the server dropped its idle compressor; garbage instead of compressed
//! data gets `* BYE` and a closed connection, the server living on; a decompression bomb (a
//! 256 MiB line, an oversized literal) meets the same limits as uncompressed input without the
//! server's memory growing. Real clients: mbsync (isync) uses COMPRESS by itself, offlineimap3
//! with `usecompression = yes`; each syncs and the server log shows COMPRESS was on. A missing
//! client skips unless `POSTFACH_REQUIRE_CLIENTS=1`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Account, CLIENT_DEADLINE, Client, Maildir, Mbsync, Session, TestServer, available, run_program,
};

const USER: &str = "carol";
const PASSWORD: &str = "deflate test password";
const ACCOUNT: Account = Account { user: USER, password: "deflate test password", domain: "compress.test" };

/// A server that allows LOGIN on cleartext (the cleartext case) with one account.
fn server() -> TestServer {
    let server = TestServer::start_with("allow_plaintext_auth = true");
    server.add_user(USER, PASSWORD);
    server
}

/// Sends a tagged command and returns every line up to its tagged answer.
fn run(client: &mut Client, tag: &str, command: &str) -> Vec<String> {
    client.send(&format!("{tag} {command}"));
    client.expect_tagged(tag)
}

/// The tagged answer of `lines`.
fn tagged(lines: &[String]) -> &str {
    lines.last().unwrap()
}

fn login(client: &mut Client) {
    let lines = run(client, "l", &format!("LOGIN {USER} \"{PASSWORD}\""));
    assert!(tagged(&lines).starts_with("l OK"), "{lines:?}");
    assert!(tagged(&lines).contains("COMPRESS=DEFLATE"), "the login's capabilities: {lines:?}");
}

/// `COMPRESS DEFLATE`, answered OK uncompressed; then the client compresses too.
fn compress(client: &mut Client) {
    let lines = run(client, "c", "COMPRESS DEFLATE");
    assert_eq!(lines, ["c OK DEFLATE active"]);
    client.start_compress();
}

/// The RFC 4978 exchange and its refusals, on any transport, after the greeting was read.
fn exchange(client: &mut Client) {
    // §5: `command-auth`: not before login, and not advertised there.
    let lines = run(client, "p", "CAPABILITY");
    assert!(!lines[0].contains("COMPRESS"), "{lines:?}");
    let lines = run(client, "q", "COMPRESS DEFLATE");
    assert!(tagged(&lines).starts_with("q BAD"), "{lines:?}");
    login(client);
    // §3: an unknown algorithm is BAD, and compression stays off (this answer and the next
    // command are plain text).
    let lines = run(client, "u", "COMPRESS LZ77");
    assert!(tagged(&lines).starts_with("u BAD"), "{lines:?}");
    assert_eq!(run(client, "n", "NOOP"), ["n OK NOOP completed"]);
    compress(client);
    let lines = run(client, "k", "CAPABILITY");
    assert!(lines[0].contains(" COMPRESS=DEFLATE"), "{lines:?}");
    // §3: compressing twice is refused with COMPRESSIONACTIVE.
    let lines = run(client, "d", "COMPRESS DEFLATE");
    assert!(tagged(&lines).starts_with("d NO [COMPRESSIONACTIVE]"), "{lines:?}");
    let lines = run(client, "s", "SELECT INBOX");
    assert!(tagged(&lines).starts_with("s OK"), "{lines:?}");
    // A literal inside compressed input: APPEND with LITERAL+, then read it back.
    let message = "From: a@example.org\r\nSubject: squeezed\r\n\r\nHello, compressed world.\r\n";
    client.send_raw(format!("a APPEND INBOX {{{}+}}\r\n{message}\r\n", message.len()).as_bytes());
    let lines = client.expect_tagged("a");
    assert!(tagged(&lines).starts_with("a OK"), "{lines:?}");
    let lines = run(client, "f", "FETCH 1 BODY[]");
    assert!(lines.iter().any(|l| l == "Hello, compressed world."), "{lines:?}");
    let lines = run(client, "o", "LOGOUT");
    assert!(lines[0].starts_with("* BYE"), "{lines:?}");
    client.expect_closed();
}

#[test]
fn compress_on_cleartext() {
    let server = server();
    let mut client = server.connect();
    client.read_line();
    exchange(&mut client);
}

#[test]
fn compress_after_starttls() {
    let server = server();
    let mut client = server.connect();
    client.read_line();
    assert_eq!(run(&mut client, "t", "STARTTLS"), ["t OK Begin TLS negotiation now"]);
    client.start_tls(&server.cert_path());
    exchange(&mut client);
}

#[test]
fn compress_on_implicit_tls() {
    let server = server();
    let mut client = server.connect_tls();
    client.read_line();
    exchange(&mut client);
    assert!(server.log().contains("COMPRESS DEFLATE active"));
}

/// Text that compresses like mail does: words from a small vocabulary in varying order.
fn mail_text(bytes: usize) -> String {
    const WORDS: &[&str] = &[
        "the",
        "meeting",
        "report",
        "quarterly",
        "numbers",
        "please",
        "review",
        "attached",
        "budget",
        "project",
        "deadline",
        "thanks",
        "regards",
        "tomorrow",
        "office",
        "team",
        "update",
        "draft",
        "customer",
        "invoice",
        "schedule",
        "question",
        "answer",
        "server",
        "mailbox",
        "compress",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut text = String::from("From: bob@example.org\r\nTo: carol@example.org\r\nSubject: big\r\n\r\n");
    let mut line = String::new();
    while text.len() < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        line.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
        line.push(' ');
        if line.len() > 70 {
            text.push_str(line.trim_end());
            text.push_str("\r\n");
            line.clear();
        }
    }
    text
}

#[test]
fn a_big_fetch_costs_fewer_bytes_compressed() {
    let server = server();
    let text = mail_text(400_000);
    let mut setup = server.connect_tls();
    setup.read_line();
    login(&mut setup);
    setup.send_raw(format!("a APPEND INBOX {{{}+}}\r\n{text}\r\n", text.len()).as_bytes());
    assert!(tagged(&setup.expect_tagged("a")).starts_with("a OK"));

    let fetch = |compressed: bool| {
        let mut client = server.connect_tls();
        client.read_line();
        login(&mut client);
        if compressed {
            compress(&mut client);
        }
        run(&mut client, "s", "SELECT INBOX");
        let before = client.received();
        let lines = run(&mut client, "f", "FETCH 1 BODY[]");
        let bytes = client.received() - before;
        let body: usize = lines.iter().map(|l| l.len() + 2).sum();
        assert!(body > text.len(), "the whole message came: {body} bytes");
        bytes
    };
    let plain = fetch(false);
    let squeezed = fetch(true);
    eprintln!("FETCH of a {} byte message: {plain} bytes plain, {squeezed} compressed", text.len());
    assert!(squeezed * 2 < plain, "{squeezed} compressed vs {plain} plain");
}

#[test]
fn idle_updates_arrive_at_once_also_after_the_compressor_was_freed() {
    let server = server();
    let mut idler = server.connect();
    idler.read_line();
    login(&mut idler);
    compress(&mut idler);
    run(&mut idler, "s", "SELECT INBOX");
    idler.send("i IDLE");
    assert!(idler.read_line().starts_with("+ "));
    let mut other = server.connect();
    other.read_line();
    login(&mut other);
    for round in 1..=2 {
        // Longer than the server's release delay: each update needs a new compressor.
        std::thread::sleep(Duration::from_millis(1500));
        let message = format!("Subject: round {round}\r\n\r\nbody\r\n");
        let started = Instant::now();
        other.send_raw(format!("a APPEND INBOX {{{}+}}\r\n{message}\r\n", message.len()).as_bytes());
        assert!(tagged(&other.expect_tagged("a")).starts_with("a OK"));
        idler.set_timeout(Duration::from_secs(5));
        loop {
            let line = idler.read_line();
            if line == format!("* {round} EXISTS") {
                break;
            }
        }
        let waited = started.elapsed();
        eprintln!("IDLE update {round} arrived {waited:?} after the APPEND was sent");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
    }
    idler.send("DONE");
    let lines = idler.expect_tagged("i");
    assert!(tagged(&lines).starts_with("i OK"), "{lines:?}");
}

#[test]
fn garbage_instead_of_compressed_data_gets_bye() {
    let server = server();
    for garbage in [&[0xffu8, 0xff, 0xff, 0xff][..], b"a NOOP\r\n"] {
        let mut client = server.connect();
        client.read_line();
        login(&mut client);
        compress(&mut client);
        client.send_uncompressed(garbage);
        let line = client.read_line();
        assert_eq!(line, "* BYE Corrupt compressed data; closing connection", "after {garbage:?}");
        client.expect_closed();
    }
    // The server lives on.
    let mut client = server.connect();
    assert!(client.read_line().starts_with("* OK"));
    assert!(!server.log().contains("panicked"));
}

/// The server's peak resident memory so far (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_decompression_bomb_meets_the_uncompressed_limits() {
    let server = server();
    let mut client = server.connect();
    client.read_line();
    login(&mut client);
    compress(&mut client);
    let before = peak_rss_kib(server.pid());
    // A 256 MiB line (64 KiB is the limit), a few hundred KiB compressed.
    let chunk = vec![b'a'; 1 << 20];
    client.send_raw(b"b1 NOOP ");
    for _ in 0..256 {
        client.send_raw(&chunk);
    }
    client.send_raw(b"\r\nz NOOP\r\n");
    client.set_timeout(Duration::from_secs(60));
    let lines = client.expect_tagged("z");
    assert!(lines.iter().any(|l| l.contains("BAD") && l.contains("too long")), "{lines:?}");
    assert_eq!(tagged(&lines), "z OK NOOP completed");
    // A literal over the size limit (50 MiB) is refused and its 60 MiB skipped.
    client.send_raw(b"b2 APPEND INBOX {62914560+}\r\n");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..60 {
        client.send_raw(&zeros);
    }
    client.send_raw(b"\r\ny NOOP\r\n");
    let lines = client.expect_tagged("y");
    assert!(lines.iter().any(|l| l.starts_with("b2 ") && !l.starts_with("b2 OK")), "{lines:?}");
    assert_eq!(tagged(&lines), "y OK NOOP completed");
    let grown = peak_rss_kib(server.pid()).saturating_sub(before);
    eprintln!("peak RSS grew by {grown} KiB while 316 MiB were inflated");
    assert!(grown < 32 * 1024, "peak RSS grew by {grown} KiB");
}

// ---------------------------------------------------------------------------------------------
// Real clients
// ---------------------------------------------------------------------------------------------

/// The number of sessions that turned COMPRESS on, from the server's debug log.
fn compressed_sessions(server: &TestServer) -> usize {
    server.log().matches("COMPRESS DEFLATE active").count()
}

#[test]
fn mbsync_compresses_by_itself() {
    if !available("mbsync", "isync") {
        return;
    }
    let server = ACCOUNT.server();
    let dir = tempfile::tempdir().unwrap();
    let device = Mbsync::new(dir.path(), "device", &server, ACCOUNT);
    let mut imap = Session::login(&server, &ACCOUNT);
    imap.ok("ENABLE IMAP4rev2");
    imap.seed_server(&ACCOUNT);
    device.maildir.seed_device();
    device.sync(&server);
    let want = ACCOUNT.first_sync();
    assert_eq!(imap.state(), want, "server after the sync");
    assert_eq!(device.maildir.state(), want, "device after the sync");
    assert!(compressed_sessions(&server) > 0, "mbsync did not use COMPRESS:\n{}", server.log_tail(40));
}

#[test]
fn offlineimap_with_usecompression() {
    if !available("offlineimap", "offlineimap3") {
        return;
    }
    let server = ACCOUNT.server();
    let dir = tempfile::tempdir().unwrap();
    let maildir = Maildir::new(dir.path().join("mail"), ACCOUNT);
    std::fs::create_dir_all(&maildir.root).unwrap();
    std::fs::create_dir_all(dir.path().join("meta")).unwrap();
    let rc = offlineimap_rc(dir.path(), &maildir.root, &server);
    let mut imap = Session::login(&server, &ACCOUNT);
    imap.seed_server(&ACCOUNT);
    maildir.seed_device();
    let done = run_program(
        Command::new("offlineimap").arg("-c").arg(&rc).arg("-o").arg("-u").arg("basic"),
        dir.path(),
        "offlineimap",
        CLIENT_DEADLINE,
    );
    done.assert_success("offlineimap", &server);
    let output = done.output();
    assert!(!output.contains("ERROR"), "offlineimap failed:\n{output}\n{}", server.log_tail(40));
    let want = ACCOUNT.first_sync();
    assert_eq!(imap.state(), want, "server after the sync");
    assert_eq!(maildir.state(), want, "device after the sync");
    assert!(compressed_sessions(&server) > 0, "offlineimap did not use COMPRESS:\n{}", server.log_tail(40));
}

/// An offlineimap configuration syncing `root` with the server over implicit TLS, compressed.
fn offlineimap_rc(dir: &Path, root: &Path, server: &TestServer) -> PathBuf {
    let rc = dir.join("offlineimaprc");
    // `localhost`: offlineimap matches the certificate against DNS names only.
    let config = format!(
        "[general]\naccounts = dev\nmetadata = {meta}\nui = basic\n\n\
         [Account dev]\nlocalrepository = dev-local\nremoterepository = dev-remote\n\n\
         [Repository dev-local]\ntype = Maildir\nlocalfolders = {root}\nsep = /\n\n\
         [Repository dev-remote]\ntype = IMAP\nremotehost = localhost\nremoteport = {port}\n\
         remoteuser = {USER}\nremotepass = {PASSWORD}\nssl = yes\nsslcacertfile = {cert}\n\
         usecompression = yes\n",
        meta = dir.join("meta").display(),
        root = root.display(),
        port = server.imaps.port(),
        cert = server.cert_path().display(),
    );
    std::fs::write(&rc, config).unwrap();
    rc
}
