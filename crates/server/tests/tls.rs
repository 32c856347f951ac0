//! TLS, black box: certificates chosen by SNI, reloaded on SIGHUP without dropping connections,
//! and the STARTTLS injection cases from published research (Poddebniak et al., "Why TLS is
//! better without STARTTLS", USENIX Security 2021): commands pipelined with STARTTLS, before
//! and after it in the same packet, and no capability list volunteered after the handshake
//! (RFC 9051 §6.2.1: the client must ask again). Response injection into clients is the
//! client's problem and not testable here. Also the generated certificate: renewed at start when
//! it expires, and its fingerprint the same in the start log and in `postfach tls show`.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, Deployment, TestServer};
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;

/// Writes a self-signed certificate for `names` as `<stem>.crt`/`<stem>.key` in `dir`; returns
/// its DER.
fn write_pair(dir: &Path, stem: &str, names: &[&str]) -> Vec<u8> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let generated = rcgen::generate_simple_self_signed(names).unwrap();
    std::fs::write(dir.join(format!("{stem}.crt")), generated.cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), generated.signing_key.serialize_pem()).unwrap();
    generated.cert.der().to_vec()
}

/// `[tls]` configuration text naming the pairs `stems` in `dir`, the first as the default.
fn tls_section(dir: &Path, stems: &[&str]) -> String {
    let mut text = String::new();
    for (i, stem) in stems.iter().enumerate() {
        text.push_str(if i == 0 { "\n[tls]\n" } else { "\n[[tls.certificates]]\n" });
        text.push_str(&format!(
            "cert = {:?}\nkey = {:?}\n",
            dir.join(format!("{stem}.crt")).display().to_string(),
            dir.join(format!("{stem}.key")).display().to_string()
        ));
    }
    text
}

/// A TLS connection as the tests hold it.
struct TlsStream(rustls::StreamOwned<rustls::ClientConnection, TcpStream>);

/// A TLS client that asks for `name` and trusts exactly `roots`, handshake done.
fn connect(addr: SocketAddr, name: &str, roots: &[&[u8]]) -> TlsStream {
    let mut store = rustls::RootCertStore::empty();
    for der in roots {
        store.add(CertificateDer::from(der.to_vec())).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from(name.to_owned()).unwrap())
            .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    TlsStream(tls)
}

/// The leaf certificate the server presented.
fn leaf(tls: &TlsStream) -> Vec<u8> {
    tls.0.conn.peer_certificates().unwrap()[0].to_vec()
}

/// Reads up to and including the line starting with `prefix`.
fn read_until(tls: &mut TlsStream, prefix: &str) -> String {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tls.0.read(&mut buf).unwrap();
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&text));
        text.extend_from_slice(&buf[..n]);
        let s = String::from_utf8_lossy(&text).into_owned();
        if s.lines().any(|l| l.starts_with(prefix)) {
            return s;
        }
    }
}

/// Waits until the server log contains `needle`.
fn wait_for_log(server: &TestServer, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains(needle) {
        assert!(Instant::now() < deadline, "no {needle:?} in the log:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Setup {
    server: TestServer,
    dir: TempDir,
    main: Vec<u8>,
    other: Vec<u8>,
}

fn start_with_two_certificates() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let main = write_pair(dir.path(), "main", &["mail.example", "localhost"]);
    let other = write_pair(dir.path(), "other", &["imap.other.test", "*.wild.test"]);
    let server = TestServer::start_with(&tls_section(dir.path(), &["main", "other"]));
    Setup { server, dir, main, other }
}

#[test]
fn sni_picks_the_certificate_and_defaults_to_the_first() {
    let s = start_with_two_certificates();
    let roots: [&[u8]; 2] = [&s.main, &s.other];
    for (name, expected) in [
        ("mail.example", &s.main),
        ("imap.other.test", &s.other),
        ("x.wild.test", &s.other),
        ("localhost", &s.main),
    ] {
        let mut tls = connect(s.server.imaps, name, &roots);
        assert_eq!(&leaf(&tls), expected, "certificate for {name}");
        assert!(read_until(&mut tls, "* OK").starts_with("* OK"));
    }
    // No SNI (an IP address is never sent as a name): the default. The client then rejects it,
    // since the certificate has no IP address; what matters is which one was offered.
    let tcp = TcpStream::connect(s.server.imaps).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut store = rustls::RootCertStore::empty();
    store.add(CertificateDer::from(s.main.clone())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let error = tls.conn.complete_io(&mut tls.sock).and_then(|_| tls.conn.complete_io(&mut tls.sock));
    let message = format!("{:?}", error.unwrap_err());
    assert!(message.contains("NotValidForName"), "expected the default (name mismatch), got {message}");
}

#[test]
fn sighup_reloads_certificates_without_dropping_connections() {
    let s = start_with_two_certificates();
    let mut old = connect(s.server.imaps, "mail.example", &[&s.main]);
    read_until(&mut old, "* OK");

    let renewed = write_pair(s.dir.path(), "main", &["mail.example", "localhost"]);
    s.server.signal("HUP");
    wait_for_log(&s.server, "TLS certificates reloaded");
    let mut fresh = connect(s.server.imaps, "mail.example", &[&renewed]);
    assert_eq!(leaf(&fresh), renewed, "new handshakes get the renewed certificate");
    read_until(&mut fresh, "* OK");
    // STARTTLS uses the same certificates.
    let mut plain = Client::plain(s.server.imap);
    plain.read_line();
    plain.send("s STARTTLS");
    assert!(plain.expect_tagged("s").last().unwrap().starts_with("s OK"));
    plain.start_tls(&s.dir.path().join("main.crt"));
    plain.send("n NOOP");
    assert!(plain.expect_tagged("n").last().unwrap().starts_with("n OK"));

    // The connection opened before the reload is still served.
    old.0.write_all(b"n NOOP\r\n").unwrap();
    assert!(read_until(&mut old, "n ").contains("n OK"));

    // A broken file: the reload fails, the renewed certificates stay, the server goes on.
    std::fs::write(s.dir.path().join("other.key"), "garbage").unwrap();
    s.server.signal("HUP");
    wait_for_log(&s.server, "TLS certificate reload failed");
    let mut after = connect(s.server.imaps, "mail.example", &[&renewed]);
    assert_eq!(leaf(&after), renewed);
    read_until(&mut after, "* OK");
    let mut other = connect(s.server.imaps, "imap.other.test", &[&s.other]);
    assert_eq!(leaf(&other), s.other, "the old pair of the broken file is still served");
    read_until(&mut other, "* OK");
}

/// Reads from a raw cleartext socket until `needle` appears or the socket is quiet for 1 s.
fn read_plain(tcp: &mut TcpStream, needle: &str) -> String {
    tcp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = tcp.read(&mut buf) {
        text.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&text).contains(needle) {
            break;
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Commands in the same packet as STARTTLS: those before it run in cleartext (harmless, the
/// client sent them there), those after it are thrown away with the rest of the buffer.
#[test]
fn starttls_injection_in_one_packet_is_discarded() {
    let server = TestServer::start();
    server.add_user("alice", "secret");
    let cases: [&[u8]; 4] = [
        // The classic: a command right behind STARTTLS.
        b"a STARTTLS\r\nb CAPABILITY\r\n",
        // A login pipelined behind STARTTLS, hoping it runs inside the TLS session.
        b"a STARTTLS\r\nb LOGIN alice secret\r\n",
        // Half a command, to be completed by the first TLS bytes.
        b"a STARTTLS\r\nb LOG",
        // A command before STARTTLS runs (in clear), the one after does not.
        b"x NOOP\r\na STARTTLS\r\nb NOOP\r\n",
    ];
    for case in cases {
        let mut client = server.connect();
        client.set_timeout(Duration::from_secs(5));
        client.read_line();
        client.send_raw(case);
        let lines = client.expect_tagged("a");
        assert!(lines.last().unwrap().starts_with("a OK"), "{lines:?}");
        client.start_tls(&server.cert_path());
        client.send("c NOOP");
        let lines = client.expect_tagged("c");
        assert!(lines.last().unwrap().starts_with("c OK"), "{lines:?}");
        assert!(!lines.iter().any(|l| l.starts_with("b ")), "an injected command ran: {lines:?}");
        // The injected LOGIN must not have logged the session in.
        client.send("d SELECT INBOX");
        let lines = client.expect_tagged("d");
        assert!(lines.last().unwrap().starts_with("d BAD"), "logged in by injection: {lines:?}");
    }
}

/// A man in the middle who sends plaintext after the STARTTLS reply (instead of the client's
/// ClientHello) only breaks the handshake: nothing is executed.
#[test]
fn plaintext_after_starttls_response_is_never_executed() {
    let server = TestServer::start();
    let mut tcp = TcpStream::connect(server.imap).unwrap();
    read_plain(&mut tcp, "\r\n");
    tcp.write_all(b"a STARTTLS\r\n").unwrap();
    assert!(read_plain(&mut tcp, "a OK").contains("a OK"));
    tcp.write_all(b"b CAPABILITY\r\nc LOGOUT\r\n").unwrap();
    let reply = read_plain(&mut tcp, "c OK");
    assert!(!reply.contains("b OK") && !reply.contains("* CAPABILITY"), "{reply:?}");
}

/// After the handshake the server says nothing until asked; CAPABILITY then lists what TLS
/// allows (RFC 9051 §6.2.1: the client must discard and re-request capabilities).
#[test]
fn capabilities_are_sent_again_only_on_request() {
    let server = TestServer::start();
    let mut client = server.connect();
    let greeting = client.read_line();
    assert!(greeting.contains("STARTTLS") && greeting.contains("LOGINDISABLED"), "{greeting:?}");
    client.send("a STARTTLS");
    client.expect_tagged("a");
    client.start_tls(&server.cert_path());
    client.set_timeout(Duration::from_millis(700));
    match client.try_read_line() {
        Err(e) => assert!(matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        Ok(line) => panic!("the server volunteered {line:?} after the handshake"),
    }
    client.set_timeout(Duration::from_secs(10));
    client.send("b CAPABILITY");
    let lines = client.expect_tagged("b");
    let caps = lines.iter().find(|l| l.starts_with("* CAPABILITY")).unwrap();
    assert!(!caps.contains("STARTTLS") && !caps.contains("LOGINDISABLED"), "{caps:?}");
    assert!(caps.contains("AUTH=PLAIN"), "{caps:?}");
    // STARTTLS twice is refused.
    client.send("c STARTTLS");
    assert!(client.expect_tagged("c").last().unwrap().starts_with("c BAD"));
}

/// The value of the `label:` line of `tls show` output.
fn shown(output: &str, label: &str) -> String {
    let prefix = format!("{label}:");
    let line = output.lines().find(|l| l.starts_with(&prefix));
    line.unwrap_or_else(|| panic!("no {label} line in {output:?}"))
        .trim_start_matches(&prefix)
        .trim()
        .to_owned()
}

/// `postfach tls show` prints the fingerprint the start logged, of the certificate the server
/// presents, and the names it was generated for.
#[test]
fn tls_show_prints_the_logged_fingerprint() {
    let server = TestServer::start();
    let out = server.cli(&["tls", "show"], "");
    assert!(out.status.success(), "tls show failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let fingerprint = shown(&text, "sha256");
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
    assert!(server.log().contains(&format!("sha256={fingerprint}")), "log:\n{}", server.log());
    let mut tls = connect(server.imaps, "localhost", &[&pem_der(&server.cert_path())]);
    read_until(&mut tls, "* OK");
    assert_eq!(
        shown(&text, "certificate"),
        format!("{} (generated, self-signed: clients will not trust it)", server.cert_path().display())
    );
    let names = shown(&text, "names");
    assert!(names.ends_with("localhost, 127.0.0.1, ::1"), "{names}");
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim().to_ascii_lowercase();
        // A host name a certificate cannot carry is left out (the CN is then localhost).
        let usable = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
        if host.is_empty() || !host.chars().all(usable) {
            return;
        }
        assert_eq!(shown(&text, "subject"), format!("CN={host}"));
        assert!(names.starts_with(&host), "{names}");
    }
}

/// The DER of the first certificate in the PEM file `path`.
fn pem_der(path: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_file(path).unwrap().to_vec()
}

/// An expired generated certificate is renewed by the next start, with the same key; the
/// server presents the new one.
#[test]
fn expired_generated_certificate_is_renewed_at_start() {
    let mut deployment = Deployment::new("");
    let tls_dir = deployment.data_dir().join("tls");
    std::fs::create_dir_all(&tls_dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(400);
    params.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(35);
    let expired = params.self_signed(&key).unwrap();
    std::fs::write(tls_dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(tls_dir.join("cert.pem"), expired.pem()).unwrap();

    let listeners = deployment.start();
    let log = deployment.log();
    assert!(log.contains("renewed the self-signed certificate"), "log:\n{log}");
    let renewed = pem_der(&deployment.cert_path());
    assert_ne!(renewed, expired.der().to_vec());
    assert_eq!(
        std::fs::read_to_string(tls_dir.join("key.pem")).unwrap(),
        key.serialize_pem(),
        "the key is kept"
    );
    let mut tls = connect(listeners.imaps, "localhost", &[&renewed]);
    assert_eq!(leaf(&tls), renewed);
    read_until(&mut tls, "* OK");
    let out = deployment.cli(&["tls", "show"], "");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("EXPIRED") && !text.contains("renewal:"), "{text}");
    assert!(log.contains(&format!("sha256={}", shown(&text, "sha256"))), "log:\n{log}");
}
