//! Black-box test harness: runs the real `postfach` binary and talks to it over TCP and TLS.
//!
//! [`TestServer`] writes a configuration with port-0 listeners on 127.0.0.1 and a temporary data
//! directory, starts `postfach serve`, reads the real ports from its "listening" lines, and kills
//! the process when dropped. [`Client`] is a minimal blocking, line-based IMAP client over
//! cleartext or TLS (trusting the server's generated certificate), able to STARTTLS in place.
//! The server's log goes to `server.log` in the temporary directory; failing assertions print it.

#![allow(dead_code, clippy::unwrap_used)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;

/// How long a test waits for the server to start or to answer a line.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// The path of the binary under test.
pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_postfach")
}

/// A running `postfach serve` with its own configuration and data directory.
pub(crate) struct TestServer {
    child: Child,
    dir: TempDir,
    config: PathBuf,
    /// The cleartext (STARTTLS) listener.
    pub(crate) imap: SocketAddr,
    /// The implicit-TLS listener.
    pub(crate) imaps: SocketAddr,
    /// The LMTP listener, when one was configured (by default one on port 0).
    pub(crate) lmtp: Option<SocketAddr>,
}

impl TestServer {
    /// Starts a server with the default settings (ports chosen by the kernel).
    pub(crate) fn start() -> Self {
        Self::start_with("")
    }

    /// Starts a server with `imap_extra` (TOML lines) added to its `[imap]` section.
    pub(crate) fn start_with(imap_extra: &str) -> Self {
        Self::start_with_sections(imap_extra, "", &["lmtp"])
    }

    /// Starts a server with `imap_extra` in `[imap]` and `sections` (whole TOML sections)
    /// appended. Without an `[lmtp]` section in `sections`, LMTP listens on 127.0.0.1 port 0
    /// (never on the default 2424, which parallel tests would fight over). Waits for the
    /// "listening" lines of the IMAP listeners and of each LMTP kind in `lmtp_kinds`
    /// ("lmtp", "lmtp-unix").
    pub(crate) fn start_with_sections(imap_extra: &str, sections: &str, lmtp_kinds: &[&str]) -> Self {
        let lmtp_section =
            if sections.contains("[lmtp]") { "" } else { "[lmtp]\nlisten = [\"127.0.0.1:0\"]\n" };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("postfach.toml");
        let data_dir = dir.path().join("data");
        let text = format!(
            "data_dir = {data:?}\n\
             [imap]\n\
             listen = [\"127.0.0.1:0\"]\n\
             listen_tls = [\"127.0.0.1:0\"]\n\
             {imap_extra}\n\
             [log]\n\
             level = \"debug\"\n\
             {lmtp_section}{sections}\n",
            data = data_dir.display().to_string(),
        );
        std::fs::write(&config, text).unwrap();
        let log = File::create(dir.path().join("server.log")).unwrap();
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();

        // A thread reads stdout so that a hung server cannot hang the test, and keeps draining it.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = io::BufReader::new(stdout);
            let mut line = String::new();
            while io::BufRead::read_line(&mut lines, &mut line).is_ok_and(|n| n > 0) {
                let _ = tx.send(line.trim_end().to_owned());
                line.clear();
            }
        });
        let mut imap = None;
        let mut imaps = None;
        let mut lmtp = None;
        let mut lmtp_kinds: Vec<&str> = lmtp_kinds.to_vec();
        let deadline = Instant::now() + PATIENCE;
        while imap.is_none() || imaps.is_none() || !lmtp_kinds.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                panic!("the server did not announce its listeners; log:\n{log}");
            };
            let mut words = line.split(' ');
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("postfach:"), Some("listening"), Some("imap"), Some(addr)) => imap = addr.parse().ok(),
                (Some("postfach:"), Some("listening"), Some("imaps"), Some(addr)) => {
                    imaps = addr.parse().ok()
                }
                (Some("postfach:"), Some("listening"), Some(kind @ ("lmtp" | "lmtp-unix")), Some(addr)) => {
                    if kind == "lmtp" && lmtp.is_none() {
                        lmtp = addr.parse().ok();
                    }
                    lmtp_kinds.retain(|k| *k != kind);
                }
                _ => panic!("unexpected line on stdout: {line:?}"),
            }
        }
        Self { child, dir, config, imap: imap.unwrap(), imaps: imaps.unwrap(), lmtp }
    }

    /// The server's data directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The generated certificate the TLS clients trust.
    pub(crate) fn cert_path(&self) -> PathBuf {
        self.data_dir().join("tls").join("cert.pem")
    }

    /// What the server logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `postfach ARGS --config <this server's config>` with `stdin` as standard input.
    pub(crate) fn cli(&self, args: &[&str], stdin: &str) -> Output {
        run_cli(&self.config, args, stdin)
    }

    /// Adds an account through the CLI (`user add NAME --password-stdin`).
    pub(crate) fn add_user(&self, name: &str, password: &str) {
        let out = self.cli(&["user", "add", name, "--password-stdin"], &format!("{password}\n"));
        assert!(out.status.success(), "user add failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A cleartext connection to the STARTTLS port.
    pub(crate) fn connect(&self) -> Client {
        Client::plain(self.imap)
    }

    /// A TLS connection to the implicit-TLS port.
    pub(crate) fn connect_tls(&self) -> Client {
        Client::tls(self.imaps, &self.cert_path())
    }

    /// Sends a signal (`TERM`, `INT`, ...) with the `kill` command.
    pub(crate) fn signal(&self, name: &str) {
        let status =
            Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `limit` for the process to exit.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary with `--config config` and the given arguments and standard input.
pub(crate) fn run_cli(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Write and close stdin before waiting, so the child sees EOF.
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    child.wait_with_output().unwrap()
}

/// The transport under a [`Client`].
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// A line-based IMAP test client.
pub(crate) struct Client {
    conn: Option<Conn>,
    /// Bytes received but not yet returned as lines.
    pending: Vec<u8>,
}

impl Client {
    /// Connects in cleartext.
    pub(crate) fn plain(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        Self { conn: Some(Conn::Plain(tcp)), pending: Vec::new() }
    }

    /// Connects with TLS, trusting the certificate in `cert` for the name `localhost`.
    pub(crate) fn tls(addr: SocketAddr, cert: &Path) -> Self {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        Self { conn: Some(Conn::Tls(Box::new(tls_over(tcp, cert)))), pending: Vec::new() }
    }

    /// A cleartext client over an already connected socket (for example one bound to another
    /// local address).
    pub(crate) fn plain_from(tcp: TcpStream) -> Self {
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        Self { conn: Some(Conn::Plain(tcp)), pending: Vec::new() }
    }

    /// A TLS client over an already connected socket, trusting `cert` for `localhost`.
    pub(crate) fn tls_from(tcp: TcpStream, cert: &Path) -> Self {
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        Self { conn: Some(Conn::Tls(Box::new(tls_over(tcp, cert)))), pending: Vec::new() }
    }

    /// Changes how long a read may wait.
    pub(crate) fn set_timeout(&mut self, limit: Duration) {
        let tcp = match self.conn.as_ref().unwrap() {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref(),
        };
        tcp.set_read_timeout(Some(limit)).unwrap();
    }

    /// Sends `line` followed by CRLF.
    pub(crate) fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    /// Sends bytes as they are, in one write.
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        let conn = self.conn.as_mut().unwrap();
        conn.write_all(bytes).unwrap();
        conn.flush().unwrap();
    }

    /// The next line without CRLF; panics on timeout or end of stream.
    pub(crate) fn read_line(&mut self) -> String {
        match self.try_read_line() {
            Ok(Some(line)) => line,
            Ok(None) => panic!("connection closed while a line was expected"),
            Err(e) => panic!("no line: {e}"),
        }
    }

    /// The next line, `None` at end of stream (a reset counts as the end too).
    pub(crate) fn try_read_line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                self.pending.drain(..end + 2);
                return Ok(Some(line));
            }
            let mut buf = [0u8; 4096];
            match self.conn.as_mut().unwrap().read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if is_end(&e) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads lines up to and including the one tagged `tag`; returns them all.
    pub(crate) fn expect_tagged(&mut self, tag: &str) -> Vec<String> {
        let prefix = format!("{tag} ");
        let mut lines = Vec::new();
        loop {
            let line = match self.try_read_line() {
                Ok(Some(line)) => line,
                Ok(None) => panic!("connection closed before the {tag} response; got {lines:?}"),
                Err(e) => panic!("no {tag} response ({e}); got {lines:?}"),
            };
            let done = line.starts_with(&prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Asserts that the server closes the connection without sending anything more.
    pub(crate) fn expect_closed(&mut self) {
        match self.try_read_line() {
            Ok(None) => {}
            Ok(Some(line)) => panic!("expected the connection to close, got {line:?}"),
            Err(e) => panic!("expected the connection to close: {e}"),
        }
    }

    /// Runs the TLS handshake on the same TCP connection (after a tagged OK to STARTTLS).
    pub(crate) fn start_tls(&mut self, cert: &Path) {
        assert!(
            self.pending.is_empty(),
            "the server sent data after the STARTTLS response: {:?}",
            self.pending
        );
        let Some(Conn::Plain(tcp)) = self.conn.take() else { panic!("STARTTLS on a TLS connection") };
        let mut tls = tls_over(tcp, cert);
        // Drive the handshake now, so a failure shows here rather than at the next read.
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        self.conn = Some(Conn::Tls(Box::new(tls)));
    }
}

/// True for errors that mean "the peer closed the connection".
fn is_end(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

fn tls_over(tcp: TcpStream, cert: &Path) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(cert).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}
