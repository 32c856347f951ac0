//! Built-in ACME (RFC 8555), black box: the real server orders its certificate from pebble,
//! Let's Encrypt's test CA (Debian's `pebble` package), and serves it on IMAPS.
//!
//! Each test starts its own pebble on free loopback ports, with:
//! - its HTTPS certificate made here (the package ships no test certificates), signed by a
//!   throwaway CA the server trusts through `[tls] acme.ca_file`;
//! - a tiny DNS server of this file (UDP on loopback) that answers every A query with
//!   127.0.0.1, given to pebble as `-dnsserver`, so the test domain `mail.postfach.test`
//!   resolves to the server without touching /etc/hosts;
//! - its validation ports (`httpPort`, `tlsPort`) set to where Postfach answers: `http_listen`
//!   for HTTP-01, the IMAPS listener for TLS-ALPN-01;
//! - real validation (`PEBBLE_VA_ALWAYS_VALID=0`) without pebble's random sleeps, with no
//!   rejected nonces and no reuse of authorizations (each order is validated again), and
//!   certificates valid for ten days.
//!
//! A client then trusts only pebble's root (from its management endpoint `/roots/0`) and
//! connects to IMAPS asking for the domain: the handshake succeeding proves the chain and the
//! name. Without pebble the tests print why and pass, unless `POSTFACH_REQUIRE_CLIENTS=1` (CI),
//! which makes that a failure.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::Deployment;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;

/// The name the certificates are ordered for; the test DNS server resolves it to 127.0.0.1.
const DOMAIN: &str = "mail.postfach.test";
/// How long pebble's certificates live, seconds (ten days).
const VALIDITY: u64 = 10 * 86_400;
/// How long a test waits for a certificate to be issued and installed.
const ISSUE_PATIENCE: Duration = Duration::from_secs(60);

// --- a DNS server that says 127.0.0.1 to everything -----------------------------------------

/// Answers every A query with 127.0.0.1 and every other query with no records, until dropped.
struct Dns {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Dns {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stopping.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else { continue };
                if let Some(answer) = dns_answer(&buf[..n]) {
                    let _ = socket.send_to(&answer, peer);
                }
            }
        });
        Self { addr, stop, thread: Some(thread) }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The response to one query (RFC 1035 §4.1): the question echoed, and for type A class IN one
/// answer, 127.0.0.1 with a TTL of 60 s. `None` for what is not a single-question query.
fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || query[4..6] != [0, 1] {
        return None;
    }
    // The question's name: labels up to the root label.
    let mut end = 12;
    loop {
        let len = usize::from(*query.get(end)?);
        end += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        end += len;
    }
    let question = query.get(12..end + 4)?;
    let qtype = u16::from_be_bytes([question[question.len() - 4], question[question.len() - 3]]);
    let is_a = qtype == 1 && question[question.len() - 2..] == [0, 1];
    let mut answer = Vec::with_capacity(end + 20);
    answer.extend_from_slice(&query[..2]);
    // QR, the query's opcode and RD, RA; NOERROR.
    answer.push(0x80 | (query[2] & 0x79));
    answer.push(0x80);
    answer.extend_from_slice(&[0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    answer.extend_from_slice(question);
    if is_a {
        // A pointer to the question's name, type A, class IN, TTL 60, 4 bytes.
        answer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(answer)
}

// --- pebble ----------------------------------------------------------------------------------

/// A running pebble, killed when dropped.
struct Pebble {
    child: Child,
    /// The ACME directory URL.
    directory: String,
    /// The management endpoint (`/roots/0`).
    management: SocketAddr,
    /// The throwaway CA of pebble's own HTTPS certificate (PEM file).
    ca_file: PathBuf,
    ca_der: Vec<u8>,
    log: PathBuf,
    _dns: Dns,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 right now (bound and released; nothing else here takes ports from
/// the same range in between, in practice).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// True if pebble is installed; otherwise says why the test is skipped (or fails, in CI).
fn pebble_available() -> bool {
    common::available("pebble", "pebble")
}

impl Pebble {
    /// Starts pebble in `dir`, validating HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port`.
    fn start(dir: &Path, http_port: u16, tls_port: u16) -> Self {
        let dns = Dns::start();
        // Pebble's HTTPS certificate, from a CA the server is told to trust.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "postfach test CA for pebble");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let ca_file = dir.join("pebble-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(dir.join("pebble-cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("pebble-key.pem"), key.serialize_pem()).unwrap();

        let acme = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let management = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": acme.to_string(),
                "managementListenAddress": management.to_string(),
                "certificate": dir.join("pebble-cert.pem"),
                "privateKey": dir.join("pebble-key.pem"),
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
                "certificateValidityPeriod": VALIDITY,
            }
        });
        let config_path = dir.join("pebble.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = dir.join("pebble.log");
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(dns.addr.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_VA_ALWAYS_VALID", "0")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pebble = Self {
            child,
            directory: format!("https://{acme}/dir"),
            management,
            ca_file,
            ca_der: ca.der().to_vec(),
            log,
            _dns: dns,
        };
        // Ready when the directory answers.
        let deadline = Instant::now() + common::PATIENCE;
        while https_get(acme, "/dir", &pebble.ca_der).is_err() {
            assert!(Instant::now() < deadline, "pebble did not start; its log:\n{}", pebble.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        pebble
    }

    /// Pebble's issuing root (it makes a new one at every start).
    fn root(&self) -> Vec<u8> {
        let pem = https_get(self.management, "/roots/0", &self.ca_der).unwrap();
        CertificateDer::from_pem_slice(&pem).unwrap().to_vec()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A TLS client config trusting exactly `roots`.
fn client_config(roots: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for der in roots {
        store.add(CertificateDer::from(der.to_vec())).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(store)
            .with_no_client_auth(),
    )
}

/// GET `path` over HTTPS from `addr` (named 127.0.0.1), trusting `ca`; the body of a 200.
fn https_get(addr: SocketAddr, path: &str, ca: &[u8]) -> std::io::Result<Vec<u8>> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(common::PATIENCE))?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(client_config(&[ca]), name).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(tls, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    // Go closes without close_notify at times; what arrived is complete with Connection: close.
    if let Err(e) = tls.read_to_end(&mut response)
        && (e.kind() != std::io::ErrorKind::UnexpectedEof || response.is_empty())
    {
        return Err(e);
    }
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or(std::io::ErrorKind::InvalidData)?;
    if !response.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other(String::from_utf8_lossy(&response[..split]).into_owned()));
    }
    Ok(response[split + 4..].to_vec())
}

// --- the server side ---------------------------------------------------------------------------

/// The configuration of a server whose IMAPS listener is on `imaps_port`, ordering from
/// `pebble` with `acme_extra` (more keys of `[tls] acme`, such as the challenge).
fn settings(imaps_port: u16, pebble: &Pebble, acme_extra: &str) -> String {
    format!(
        "[imap]\nlisten = [\"127.0.0.1:0\"]\nlisten_tls = [\"127.0.0.1:{imaps_port}\"]\n\
         [lmtp]\nlisten = []\n[log]\nlevel = \"info,postfach::acme=debug,postfach::tls_conn=debug\"\n\
         [tls]\nacme = {{ domains = [\"{DOMAIN}\"], contact = \"mailto:postmaster@postfach.test\", \
         directory = {:?}, ca_file = {:?}, {acme_extra} }}\n",
        pebble.directory,
        pebble.ca_file.display().to_string(),
    )
}

/// The leaf certificate the server presents to a client asking for `DOMAIN` and trusting only
/// `root`, once the handshake succeeds; the greeting is read too (the server still speaks IMAP).
fn presented(imaps: SocketAddr, root: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let tcp = TcpStream::connect(imaps)?;
    tcp.set_read_timeout(Some(common::PATIENCE))?;
    let name = ServerName::try_from(DOMAIN).unwrap();
    let conn = rustls::ClientConnection::new(client_config(&[root]), name).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut greeting = [0u8; 4];
    tls.read_exact(&mut greeting)?;
    assert_eq!(&greeting, b"* OK", "the IMAP greeting");
    Ok(tls.conn.peer_certificates().unwrap()[0].to_vec())
}

/// Waits until a new connection gets a certificate chaining to `root` for `DOMAIN` other than
/// `old`, and returns it.
fn wait_for_certificate(
    deployment: &Deployment,
    pebble: &Pebble,
    root: &[u8],
    old: Option<&[u8]>,
) -> Vec<u8> {
    let imaps = deployment.listeners().imaps;
    let deadline = Instant::now() + ISSUE_PATIENCE;
    loop {
        match presented(imaps, root) {
            Ok(leaf) if old != Some(leaf.as_slice()) => return leaf,
            Ok(_) | Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!(
                "no new ACME certificate within {ISSUE_PATIENCE:?} ({:?}); server log:\n{}\npebble log:\n{}",
                other.map(|_| "still the old one"),
                deployment.log_tail(40),
                pebble.log()
            ),
        }
    }
}

/// The leaf's serial number, subject alternative names and lifetime in seconds.
fn describe(der: &[u8]) -> (Vec<u8>, Vec<String>, i64) {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let names = cert
        .subject_alternative_name()
        .unwrap()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => (*d).to_owned(),
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .unwrap_or_default();
    let validity = cert.validity();
    let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
    (cert.raw_serial().to_vec(), names, lifetime)
}

/// Rewrites `renew_before_days` in the deployment's configuration.
fn set_renew_before(deployment: &Deployment, days: u32) {
    let path = deployment.config_path();
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("renew_before_days = ").unwrap();
    let end = start + text[start..].find(" }").unwrap();
    let text = format!("{}renew_before_days = {days}{}", &text[..start], &text[end..]);
    std::fs::write(path, text).unwrap();
}

// --- tests -----------------------------------------------------------------------------------

/// HTTP-01: the first start orders; the certificate chains to pebble's root and names the
/// domain; `tls show` lists it as "acme"; `tls renew` gets a new one into new connections while
/// an open connection carries on; a restart keeps a certificate that is not due, and orders
/// again at start once renew_before_days exceeds what is left of it.
#[test]
fn http01_issues_renews_and_hot_reloads() {
    if !pebble_available() {
        return;
    }
    let dir = TempDir::new().unwrap();
    let http_port = free_port();
    let imaps_port = free_port();
    let pebble = Pebble::start(dir.path(), http_port, imaps_port);
    let mut deployment = Deployment::with_settings(&settings(
        imaps_port,
        &pebble,
        &format!("challenge = \"http-01\", http_listen = \"127.0.0.1:{http_port}\", renew_before_days = 5"),
    ));
    let started = Instant::now();
    deployment.start();
    let root = pebble.root();
    let first = wait_for_certificate(&deployment, &pebble, &root, None);
    eprintln!("first certificate after {:?}", started.elapsed());
    let (serial, names, lifetime) = describe(&first);
    assert_eq!(names, [DOMAIN]);
    assert!(lifetime.abs_diff(VALIDITY as i64) < 120, "pebble's validity: {lifetime} s");
    let log = deployment.log();
    assert!(
        log.contains("ordering a certificate from the ACME CA") && log.contains("ACME certificate installed"),
        "{log}"
    );

    // The files: key and account readable by the owner only.
    let acme_dir = deployment.data_dir().join("tls/acme");
    for file in ["key.pem", "account.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(acme_dir.join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let key_before = std::fs::read(acme_dir.join("key.pem")).unwrap();

    // `tls show` lists it first, with the fingerprint clients see.
    let out = deployment.cli(&["tls", "show", "--json"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let acme = &shown["certificates"][0];
    assert_eq!(acme["origin"], "acme", "{shown}");
    assert_eq!(acme["names"], serde_json::json!([DOMAIN]));
    assert!(acme["renewal"].is_null(), "{shown}");
    let text = String::from_utf8(deployment.cli(&["tls", "show"], "").stdout).unwrap();
    assert!(text.contains("(acme, from [tls] acme's CA)"), "{text}");

    // An open connection, to check that the reload leaves it alone.
    let mut open = common::Client::tls_from(
        TcpStream::connect(deployment.listeners().imaps).unwrap(),
        &deployment.cert_path(),
    );
    open.read_line();

    // `tls renew`: a new order at once, installed for new connections.
    let out = deployment.cli(&["tls", "renew"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let second = wait_for_certificate(&deployment, &pebble, &root, Some(&first));
    let (serial2, names2, _) = describe(&second);
    assert_ne!(serial2, serial, "a new certificate, with its own serial");
    assert_eq!(names2, [DOMAIN]);
    assert!(deployment.log().contains("a renewal was requested"));
    assert_eq!(std::fs::read(acme_dir.join("key.pem")).unwrap(), key_before, "the key is kept");
    open.send("a1 NOOP");
    assert!(open.read_line().starts_with("a1 OK"), "the open connection carries on");

    // A restart with the certificate not due (10 days left, renew within 5): no order.
    let orders = deployment.log().matches("ordering a certificate").count();
    deployment.terminate();
    deployment.start();
    assert_eq!(presented(deployment.listeners().imaps, &root).unwrap(), second, "served from disk at start");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(deployment.log().matches("ordering a certificate").count(), orders, "nothing was due");

    // Due once renew_before_days exceeds the 10 days left: the start orders anew.
    deployment.terminate();
    set_renew_before(&deployment, 30);
    deployment.start();
    let third = wait_for_certificate(&deployment, &pebble, &root, Some(&second));
    assert_ne!(describe(&third).0, serial2);
    let log = deployment.log();
    assert!(log.contains("it expires on"), "the reason is logged:\n{log}");
    assert!(log.contains("the CA's certificates live shorter than renew_before_days"), "{log}");
    eprintln!("whole test {:?}", started.elapsed());
}

/// TLS-ALPN-01 on the IMAPS listener (RFC 8737): pebble validates over the port IMAP clients
/// use, and IMAP clients are served on it before and after.
#[test]
fn tls_alpn01_issues_on_the_imaps_port() {
    if !pebble_available() {
        return;
    }
    let dir = TempDir::new().unwrap();
    let imaps_port = free_port();
    // No HTTP-01 listener: pebble's httpPort points at a closed port.
    let pebble = Pebble::start(dir.path(), free_port(), imaps_port);
    let mut deployment =
        Deployment::with_settings(&settings(imaps_port, &pebble, "challenge = \"tls-alpn-01\""));
    let started = Instant::now();
    deployment.start();
    let root = pebble.root();
    let leaf = wait_for_certificate(&deployment, &pebble, &root, None);
    eprintln!("certificate after {:?}", started.elapsed());
    assert_eq!(describe(&leaf).1, [DOMAIN]);
    assert!(deployment.log().contains("answered a tls-alpn-01 validation"), "{}", deployment.log());
    // Clients asking for another name still get the generated certificate.
    let mut client = common::Client::tls(deployment.listeners().imaps, &deployment.cert_path());
    assert!(client.read_line().starts_with("* OK"));
}

/// A failed validation is logged with the CA's reason and retried later; the server keeps
/// serving its generated certificate meanwhile.
#[test]
fn failed_validation_keeps_serving() {
    if !pebble_available() {
        return;
    }
    let dir = TempDir::new().unwrap();
    let http_port = free_port();
    let imaps_port = free_port();
    // Pebble looks on a port where nothing answers.
    let pebble = Pebble::start(dir.path(), free_port(), imaps_port);
    let mut deployment = Deployment::with_settings(&settings(
        imaps_port,
        &pebble,
        &format!("challenge = \"http-01\", http_listen = \"127.0.0.1:{http_port}\""),
    ));
    deployment.start();
    let deadline = Instant::now() + ISSUE_PATIENCE;
    while !deployment.log().contains("ACME order failed") {
        assert!(Instant::now() < deadline, "no failure logged:\n{}", deployment.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = deployment.log();
    assert!(log.contains(DOMAIN) && log.contains("retry_in_s=60"), "{log}");
    assert!(!deployment.data_dir().join("tls/acme/cert.pem").exists());
    let mut client = common::Client::tls(deployment.listeners().imaps, &deployment.cert_path());
    assert!(client.read_line().starts_with("* OK"), "still serving");
    assert!(presented(deployment.listeners().imaps, &pebble.root()).is_err(), "no ACME certificate");
}

/// Bad `[tls] acme` settings are refused at start, each with its key.
#[test]
fn bad_settings_are_refused() {
    let dir = TempDir::new().unwrap();
    let config = dir.path().join("postfach.toml");
    std::fs::write(
        &config,
        "[tls]\nacme = { domains = [\"*.example.org\"], contact = \"postmaster@example.org\", \
         directory = \"http://ca.example/dir\", challenge = \"dns-01\", renew_before_days = 0 }\n",
    )
    .unwrap();
    let out = common::run_cli(&config, &["config", "check", config.to_str().unwrap()], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "tls.acme.domains[0]: \"*.example.org\": wildcard names need the dns-01 challenge",
        "tls.acme.contact: must be a mailto: URL",
        "tls.acme.directory: must be an https:// URL",
        "tls.acme.challenge: must be \"http-01\" or \"tls-alpn-01\", found \"dns-01\"",
        "tls.acme.renew_before_days: must be between 1 and 365, found 0",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}
