//! Black-box test harness: runs the real `postfach` binary and talks to it over TCP and TLS.
//!
//! [`Deployment`] is a temporary data directory and configuration with at most one
//! `postfach serve` running on them: it reads the real ports from the server's "listening" lines,
//! can kill the process (SIGKILL or SIGTERM) and start it again on the same data, and kills it
//! when dropped. [`TestServer`] is a started deployment with port-0 listeners on 127.0.0.1.
//! [`Client`] is a minimal blocking, line-based IMAP client over cleartext or TLS (trusting the
//! server's generated certificate), able to STARTTLS in place. The server's log goes to
//! `server.log` in the temporary directory; failing assertions print it.
//!
//! For the tests that drive real mail clients (mbsync, offlineimap, interimap, imaplib): running
//! a client program under a deadline ([`run_program`]), skipping when it is not installed
//! ([`available`]), a small IMAP [`Session`] that folds literals into its response lines, test
//! messages known by a short name ([`Account`]) and a Maildir reader ([`Maildir`]), both compared
//! as a [`State`].
//!
//! The store backend: SQLite in the data directory, or, with `POSTFACH_TEST_BACKEND=postgres`
//! and `POSTFACH_TEST_PG_URL` (a libpq key/value string naming a server, as `.ci/run` exports),
//! a new PostgreSQL database per deployment, created with `psql` and dropped with it
//! ([`PgDatabase`]); configurations that name their own `[store]` keep it.
//!
//! Every test binary compiles this module on its own and uses only part of it, hence
//! `dead_code` is allowed here.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
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

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

/// The addresses a started server announced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listeners {
    /// The cleartext (STARTTLS) listener.
    pub(crate) imap: SocketAddr,
    /// The implicit-TLS listener.
    pub(crate) imaps: SocketAddr,
    /// The first LMTP TCP listener, when one was awaited.
    pub(crate) lmtp: Option<SocketAddr>,
    /// The metrics endpoint, when it was awaited (kind "metrics").
    pub(crate) metrics: Option<SocketAddr>,
    /// The first ManageSieve listener, when it was awaited (kind "managesieve").
    pub(crate) managesieve: Option<SocketAddr>,
    /// The first POP3 cleartext (STLS) listener, when it was awaited (kind "pop3").
    pub(crate) pop3: Option<SocketAddr>,
    /// The first POP3 implicit-TLS listener, when it was awaited (kind "pop3s").
    pub(crate) pop3s: Option<SocketAddr>,
    /// The first plain HTTP web listener, when it was awaited (kind "web").
    pub(crate) web: Option<SocketAddr>,
    /// The first HTTPS web listener, when it was awaited (kind "webs").
    pub(crate) webs: Option<SocketAddr>,
}

/// A data directory and configuration, with at most one `postfach serve` running on them.
pub(crate) struct Deployment {
    child: Option<Child>,
    dir: TempDir,
    config: PathBuf,
    listeners: Option<Listeners>,
    /// Environment variables for the server process.
    env: Vec<(String, String)>,
    /// The PostgreSQL database of this deployment (dropped after the server stops).
    database: Option<PgDatabase>,
}

/// The `[store]` section naming `database` (empty for SQLite, the default).
fn store_section(database: Option<&PgDatabase>) -> String {
    match database {
        Some(db) => format!("\n[store]\nbackend = \"postgres\"\nurl = {:?}\npool_size = 8\n", db.url()),
        None => String::new(),
    }
}

/// Whether the tests run on PostgreSQL (`POSTFACH_TEST_BACKEND=postgres`).
pub(crate) fn on_postgres() -> bool {
    std::env::var("POSTFACH_TEST_BACKEND").is_ok_and(|v| v == "postgres")
}

/// A database of its own on the PostgreSQL server of `POSTFACH_TEST_PG_URL`, dropped on drop.
pub(crate) struct PgDatabase {
    server: String,
    name: String,
}

impl PgDatabase {
    /// Creates a new, empty database.
    pub(crate) fn create() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let server = std::env::var("POSTFACH_TEST_PG_URL")
            .expect("POSTFACH_TEST_BACKEND=postgres needs POSTFACH_TEST_PG_URL (libpq key=value string)");
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("pf_{}_{n}", std::process::id());
        let db = Self { server, name };
        db.psql(&format!("CREATE DATABASE {}", db.name));
        db
    }

    /// The libpq string of this database, for `[store] url`.
    pub(crate) fn url(&self) -> String {
        format!("{} dbname={}", self.server, self.name)
    }

    fn psql(&self, sql: &str) {
        let out = Command::new("psql")
            .arg(format!("{} dbname=postgres", self.server))
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
            .output()
            .expect("running psql (POSTFACH_TEST_BACKEND=postgres needs PostgreSQL's client)");
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(format!("{} dbname=postgres", self.server))
            .args(["-q", "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}

impl Deployment {
    /// A deployment for restart tests: cleartext and TLS listeners on 127.0.0.1 port 0 with
    /// `imap_extra` (TOML lines) in `[imap]`, no LMTP listener (its default port is fixed and
    /// tests run side by side), logging at info level.
    pub(crate) fn new(imap_extra: &str) -> Self {
        Self::with_settings(&format!(
            "[imap]\nlisten = [\"127.0.0.1:0\"]\nlisten_tls = [\"127.0.0.1:0\"]\n{imap_extra}\n\
             [lmtp]\nlisten = []\n[log]\nlevel = \"info\"\n"
        ))
    }

    /// A new temporary directory whose `postfach.toml` is a `data_dir` line followed by
    /// `settings`. Without a `[managesieve]` section in `settings`, ManageSieve is off: its
    /// default port (4190) is fixed and tests run side by side; the same goes for `[web]`.
    pub(crate) fn with_settings(settings: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("postfach.toml");
        let data = dir.path().join("data").display().to_string();
        let database = (on_postgres() && !settings.contains("[store]")).then(PgDatabase::create);
        let store = store_section(database.as_ref());
        let managesieve =
            if settings.contains("[managesieve]") { "" } else { "\n[managesieve]\nlisten = []\n" };
        // The web pages' default port (8080) is fixed too.
        let web = if settings.contains("[web]") { "" } else { "\n[web]\nlisten = []\n" };
        std::fs::write(&config, format!("data_dir = {data:?}\n{settings}{managesieve}{web}{store}")).unwrap();
        Self { child: None, dir, config, listeners: None, env: Vec::new(), database }
    }

    /// Opens this deployment's store in the test process (SQLite in the data directory, or its
    /// PostgreSQL database), to check what the server wrote.
    pub(crate) async fn open_store(&self) -> Arc<dyn postfach_store::Store> {
        match &self.database {
            Some(db) => Arc::new(postfach_store::postgres::PgStore::connect(&db.url()).await.unwrap()),
            None => Arc::new(postfach_store::SqliteStore::open(&self.data_dir()).unwrap()),
        }
    }

    /// Starts `postfach serve` and waits for its IMAP listeners (the ports change at every
    /// start).
    pub(crate) fn start(&mut self) -> Listeners {
        self.start_awaiting(&[])
    }

    /// Sets an environment variable for the server processes started from now on.
    pub(crate) fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// [`Deployment::start`], also waiting for the "listening" line of each LMTP kind in
    /// `lmtp_kinds` ("lmtp", "lmtp-unix"), of the metrics endpoint ("metrics"), of ManageSieve
    /// ("managesieve"), of the POP3 listeners ("pop3", "pop3s") and of the web pages ("web",
    /// "webs").
    pub(crate) fn start_awaiting(&mut self, lmtp_kinds: &[&str]) -> Listeners {
        assert!(self.child.is_none(), "already running");
        let log = OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();

        // A thread reads stdout so that a hung server cannot hang the test, and keeps draining
        // it so that the server never blocks on a full pipe.
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
        let mut metrics = None;
        let mut managesieve = None;
        let mut pop3 = None;
        let mut pop3s = None;
        let mut web = None;
        let mut webs = None;
        let mut lmtp_kinds: Vec<&str> = lmtp_kinds.to_vec();
        let deadline = Instant::now() + PATIENCE;
        while imap.is_none() || imaps.is_none() || !lmtp_kinds.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not announce its listeners; log:\n{}", self.log());
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
                (Some("postfach:"), Some("listening"), Some("metrics"), Some(addr)) => {
                    metrics = addr.parse().ok();
                    lmtp_kinds.retain(|k| *k != "metrics");
                }
                (Some("postfach:"), Some("listening"), Some("managesieve"), Some(addr)) => {
                    if managesieve.is_none() {
                        managesieve = addr.parse().ok();
                    }
                    lmtp_kinds.retain(|k| *k != "managesieve");
                }
                (Some("postfach:"), Some("listening"), Some(kind @ ("web" | "webs")), Some(addr)) => {
                    let slot = if kind == "web" { &mut web } else { &mut webs };
                    if slot.is_none() {
                        *slot = addr.parse().ok();
                    }
                    lmtp_kinds.retain(|k| *k != kind);
                }
                (Some("postfach:"), Some("listening"), Some(kind @ ("pop3" | "pop3s")), Some(addr)) => {
                    let slot = if kind == "pop3" { &mut pop3 } else { &mut pop3s };
                    if slot.is_none() {
                        *slot = addr.parse().ok();
                    }
                    lmtp_kinds.retain(|k| *k != kind);
                }
                _ => panic!("unexpected line on stdout: {line:?}"),
            }
        }
        let listeners = Listeners {
            imap: imap.unwrap(),
            imaps: imaps.unwrap(),
            lmtp,
            metrics,
            managesieve,
            pop3,
            pop3s,
            web,
            webs,
        };
        self.child = Some(child);
        self.listeners = Some(listeners);
        listeners
    }

    /// Where the running server listens.
    pub(crate) fn listeners(&self) -> Listeners {
        self.listeners.expect("the server is not running")
    }

    /// SIGKILL: no shutdown code runs (`Child::kill` sends SIGKILL on Unix).
    pub(crate) fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        self.listeners = None;
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(status.code().is_none(), "the server exited by itself before the kill: {status:?}");
    }

    /// SIGTERM, then waits (up to [`PATIENCE`]) for the exit.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        let sent_at = Instant::now();
        let Some(status) = self.wait_exit(PATIENCE) else {
            panic!("no exit within {PATIENCE:?} of SIGTERM; log:\n{}", self.log());
        };
        eprintln!("exited {:?} after SIGTERM", sent_at.elapsed());
        self.child = None;
        self.listeners = None;
        status
    }

    /// The running server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal (`TERM`, `INT`, ...) with the `kill` command.
    pub(crate) fn signal(&self, name: &str) {
        let status =
            Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `limit` for the process to exit.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The configuration file.
    pub(crate) fn config_path(&self) -> &Path {
        &self.config
    }

    /// Runs `postfach ARGS --config <this deployment's config>` with `stdin` as standard input.
    pub(crate) fn cli(&self, args: &[&str], stdin: &str) -> Output {
        run_cli(&self.config, args, stdin)
    }

    /// Adds an account through the CLI (`user add NAME --password-stdin`).
    pub(crate) fn add_user(&self, name: &str, password: &str) {
        let out = self.cli(&["user", "add", name, "--password-stdin"], &format!("{password}\n"));
        assert!(out.status.success(), "user add failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The server's data directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The generated certificate the TLS clients trust.
    pub(crate) fn cert_path(&self) -> PathBuf {
        self.data_dir().join("tls").join("cert.pem")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// What the server logged so far (over every start).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last `n` lines of the log above debug level.
    pub(crate) fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().filter(|l| !l.contains(" DEBUG ")).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running `postfach serve` with its own configuration and data directory, logging at debug
/// level.
pub(crate) struct TestServer {
    deployment: Deployment,
    /// The cleartext (STARTTLS) listener.
    pub(crate) imap: SocketAddr,
    /// The implicit-TLS listener.
    pub(crate) imaps: SocketAddr,
    /// The LMTP listener, when one was configured (by default one on port 0).
    pub(crate) lmtp: Option<SocketAddr>,
    /// The metrics endpoint, when "metrics" was among the awaited kinds.
    pub(crate) metrics: Option<SocketAddr>,
    /// The ManageSieve listener, when "managesieve" was among the awaited kinds.
    pub(crate) managesieve: Option<SocketAddr>,
    /// The POP3 listeners, when "pop3" and "pop3s" were among the awaited kinds.
    pub(crate) pop3: Option<SocketAddr>,
    /// See `pop3`.
    pub(crate) pop3s: Option<SocketAddr>,
    /// The web listeners, when "web" and "webs" were among the awaited kinds.
    pub(crate) web: Option<SocketAddr>,
    /// See `web`.
    pub(crate) webs: Option<SocketAddr>,
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
        Self::start_with_env(imap_extra, sections, lmtp_kinds, &[])
    }

    /// [`TestServer::start_with_sections`] with environment variables for the server process.
    pub(crate) fn start_with_env(
        imap_extra: &str,
        sections: &str,
        lmtp_kinds: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let lmtp_section =
            if sections.contains("[lmtp]") { "" } else { "[lmtp]\nlisten = [\"127.0.0.1:0\"]\n" };
        let mut deployment = Deployment::with_settings(&format!(
            "[imap]\n\
             listen = [\"127.0.0.1:0\"]\n\
             listen_tls = [\"127.0.0.1:0\"]\n\
             {imap_extra}\n\
             [log]\n\
             level = \"debug\"\n\
             {lmtp_section}{sections}\n",
        ));
        for (name, value) in env {
            deployment.set_env(name, value);
        }
        let Listeners { imap, imaps, lmtp, metrics, managesieve, pop3, pop3s, web, webs } =
            deployment.start_awaiting(lmtp_kinds);
        Self { deployment, imap, imaps, lmtp, metrics, managesieve, pop3, pop3s, web, webs }
    }

    /// The server's data directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.deployment.data_dir()
    }

    /// The `[store]` section of this server's configuration (empty on SQLite), for other
    /// configurations a test writes over the same data.
    pub(crate) fn store_settings(&self) -> String {
        store_section(self.deployment.database.as_ref())
    }

    /// See [`Deployment::open_store`].
    pub(crate) async fn open_store(&self) -> Arc<dyn postfach_store::Store> {
        self.deployment.open_store().await
    }

    /// The generated certificate the TLS clients trust.
    pub(crate) fn cert_path(&self) -> PathBuf {
        self.deployment.cert_path()
    }

    /// What the server logged so far.
    pub(crate) fn log(&self) -> String {
        self.deployment.log()
    }

    /// The last `n` lines of the log above debug level.
    pub(crate) fn log_tail(&self, n: usize) -> String {
        self.deployment.log_tail(n)
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.deployment.pid()
    }

    /// Runs `postfach ARGS --config <this server's config>` with `stdin` as standard input.
    pub(crate) fn cli(&self, args: &[&str], stdin: &str) -> Output {
        self.deployment.cli(args, stdin)
    }

    /// Adds an account through the CLI (`user add NAME --password-stdin`).
    pub(crate) fn add_user(&self, name: &str, password: &str) {
        self.deployment.add_user(name, password);
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
        self.deployment.signal(name);
    }

    /// Waits up to `limit` for the process to exit.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.deployment.wait_exit(limit)
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

// ---------------------------------------------------------------------------------------------
// The line-based client
// ---------------------------------------------------------------------------------------------

/// The transport under a [`Client`].
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    /// COMPRESS=DEFLATE (RFC 4978) over one of the others.
    Deflate(Box<DeflateConn>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref(),
            Conn::Deflate(d) => d.inner.tcp(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Deflate(d) => d.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Deflate(d) => d.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Deflate(d) => d.inner.flush(),
        }
    }
}

/// The test's own COMPRESS=DEFLATE client side (flate2, raw deflate): every write is
/// compressed and sync-flushed at once; reads inflate what the server sent.
struct DeflateConn {
    inner: Conn,
    deflater: flate2::Compress,
    inflater: flate2::Decompress,
    /// Compressed bytes received, not inflated yet: `input[pos..]`.
    input: Vec<u8>,
    pos: usize,
}

impl Read for DeflateConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // Also with no input left: the inflater may hold output a full `buf` did not take.
            let (before_in, before_out) = (self.inflater.total_in(), self.inflater.total_out());
            self.inflater
                .decompress(&self.input[self.pos..], buf, flate2::FlushDecompress::None)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            self.pos += (self.inflater.total_in() - before_in) as usize;
            let produced = (self.inflater.total_out() - before_out) as usize;
            if produced > 0 || buf.is_empty() {
                return Ok(produced);
            }
            let mut wire = [0u8; 8192];
            let n = self.inner.read(&mut wire)?;
            if n == 0 {
                return Ok(0);
            }
            self.input.drain(..self.pos);
            self.pos = 0;
            self.input.extend_from_slice(&wire[..n]);
        }
    }
}

impl Write for DeflateConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = Vec::with_capacity(buf.len() + 64);
        let mut input = buf;
        loop {
            out.reserve(buf.len() / 2 + 1024);
            let before = self.deflater.total_in();
            self.deflater
                .compress_vec(input, &mut out, flate2::FlushCompress::Sync)
                .map_err(io::Error::other)?;
            input = &input[(self.deflater.total_in() - before) as usize..];
            // Done when all input went in and the flush left room in the buffer.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A line-based IMAP test client.
pub(crate) struct Client {
    conn: Option<Conn>,
    /// Bytes received but not yet returned as lines.
    pending: Vec<u8>,
    /// Bytes the reads returned, for [`Client::received`].
    received: u64,
}

impl Client {
    /// Connects in cleartext.
    pub(crate) fn plain(addr: SocketAddr) -> Self {
        Self::plain_from(TcpStream::connect(addr).unwrap())
    }

    /// Connects with TLS, trusting the certificate in `cert` for the name `localhost`.
    pub(crate) fn tls(addr: SocketAddr, cert: &Path) -> Self {
        Self::tls_from(TcpStream::connect(addr).unwrap(), cert)
    }

    /// Connects with TLS like [`Client::tls`], with write timeouts too, returning failures: for
    /// connections the server is expected to drop (the crash tests kill it under them).
    pub(crate) fn try_tls(addr: SocketAddr, cert: &Path) -> io::Result<Self> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(PATIENCE))?;
        tcp.set_write_timeout(Some(PATIENCE))?;
        Ok(Self::over(Conn::Tls(Box::new(tls_over(tcp, cert)))))
    }

    /// A cleartext client over an already connected socket (for example one bound to another
    /// local address).
    pub(crate) fn plain_from(tcp: TcpStream) -> Self {
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        Self::over(Conn::Plain(tcp))
    }

    /// A TLS client over an already connected socket, trusting `cert` for `localhost`.
    pub(crate) fn tls_from(tcp: TcpStream, cert: &Path) -> Self {
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        Self::over(Conn::Tls(Box::new(tls_over(tcp, cert))))
    }

    fn over(conn: Conn) -> Self {
        Self { conn: Some(conn), pending: Vec::new(), received: 0 }
    }

    /// Changes how long a read may wait.
    pub(crate) fn set_timeout(&mut self, limit: Duration) {
        self.conn.as_ref().unwrap().tcp().set_read_timeout(Some(limit)).unwrap();
    }

    /// Starts compressing both ways (after a tagged OK to COMPRESS DEFLATE, RFC 4978 §3).
    pub(crate) fn start_compress(&mut self) {
        assert!(
            self.pending.is_empty(),
            "the server sent data after the COMPRESS response: {:?}",
            self.pending
        );
        let inner = self.conn.take().unwrap();
        self.conn = Some(Conn::Deflate(Box::new(DeflateConn {
            inner,
            deflater: flate2::Compress::new(flate2::Compression::new(6), false),
            inflater: flate2::Decompress::new(false),
            input: Vec::new(),
            pos: 0,
        })));
    }

    /// Bytes received from the transport so far: compressed bytes once COMPRESS is on,
    /// otherwise what the reads returned (after TLS decryption).
    pub(crate) fn received(&self) -> u64 {
        match self.conn.as_ref().unwrap() {
            Conn::Deflate(d) => d.inflater.total_in(),
            _ => self.received,
        }
    }

    /// Writes `bytes` to the transport under the compression, as they are (garbage tests).
    pub(crate) fn send_uncompressed(&mut self, bytes: &[u8]) {
        let Some(Conn::Deflate(d)) = self.conn.as_mut() else { panic!("COMPRESS is not on") };
        d.inner.write_all(bytes).unwrap();
        d.inner.flush().unwrap();
    }

    /// Sends `line` followed by CRLF.
    pub(crate) fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    /// Sends bytes as they are, in one write.
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes).unwrap();
    }

    /// Sends bytes as they are, in one write, returning a failure.
    pub(crate) fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let conn = self.conn.as_mut().unwrap();
        conn.write_all(bytes)?;
        conn.flush()
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
            let mut buf = [0u8; 8192];
            match self.conn.as_mut().unwrap().read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    self.received += n as u64;
                    self.pending.extend_from_slice(&buf[..n]);
                }
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

pub(crate) fn tls_over(
    tcp: TcpStream,
    cert: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
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

// ---------------------------------------------------------------------------------------------
// Whole responses and small IMAP sessions
// ---------------------------------------------------------------------------------------------

/// One response as read: its text pieces and the literals between them.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    /// The first line up to and including its `{n}`, then the text after each literal (one more
    /// piece than there are literals).
    pieces: Vec<String>,
    /// The data of each literal, in order.
    pub(crate) literals: Vec<String>,
}

impl Response {
    /// The text without the literals' data (their `{n}` announcements stay).
    pub(crate) fn text(&self) -> String {
        self.pieces.concat()
    }

    /// The response as it came over the wire: `... {n}\r\n<data>...` for each literal.
    pub(crate) fn folded(&self) -> String {
        let mut out = self.pieces[0].clone();
        for (literal, piece) in self.literals.iter().zip(&self.pieces[1..]) {
            out.push_str("\r\n");
            out.push_str(literal);
            out.push_str(piece);
        }
        out
    }
}

/// `... {12}` at the end of a line → 12.
fn literal_at_end(line: &str) -> Option<usize> {
    let open = line.rfind('{').filter(|_| line.ends_with('}'))?;
    line[open + 1..line.len() - 1].parse().ok()
}

/// A line transport an IMAP [`Session`] runs over: a [`Client`], or a local IMAP server's pipe.
pub(crate) trait Wire {
    /// Sends `line` followed by CRLF.
    fn send(&mut self, line: &str);

    /// The next line without CRLF; panics when there is none.
    fn read_line(&mut self) -> String;

    /// One whole response: a line and, for each literal it announces (`{n}` at its end), the
    /// literal's data and the line's continuation. The data is read line by line: the tests'
    /// messages are text with CRLF line ends.
    fn read_response(&mut self) -> Response {
        let mut pieces = Vec::new();
        let mut literals = Vec::new();
        let mut line = self.read_line();
        while let Some(n) = literal_at_end(&line) {
            let mut data = String::new();
            while data.len() < n {
                data.push_str(&self.read_line());
                data.push_str("\r\n");
            }
            // The literal ends inside a line when the response continues after it.
            let rest = if data.len() == n { self.read_line() } else { data[n..data.len() - 2].to_owned() };
            data.truncate(n);
            pieces.push(std::mem::replace(&mut line, rest));
            literals.push(data);
        }
        pieces.push(line);
        Response { pieces, literals }
    }
}

impl Wire for Client {
    fn send(&mut self, line: &str) {
        Client::send(self, line);
    }

    fn read_line(&mut self) -> String {
        Client::read_line(self)
    }
}

/// Per mailbox: Message-ID → Maildir flag letters (D F R S T), sorted.
pub(crate) type State = BTreeMap<String, BTreeMap<String, String>>;

/// The folders the server creates for every account (RFC 6154 special use).
pub(crate) const DEFAULT_FOLDERS: [&str; 6] = ["INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"];

/// The answer to one command: its untagged responses (literal data folded into the line that
/// announced it) and its tagged line without the tag (`OK [APPENDUID 1 4] APPEND completed`).
#[derive(Debug)]
pub(crate) struct Answer {
    /// Untagged responses, in order.
    pub(crate) untagged: Vec<String>,
    /// The tagged completion without its tag.
    pub(crate) done: String,
}

impl Answer {
    /// True for a tagged OK.
    pub(crate) fn ok(&self) -> bool {
        self.done.starts_with("OK")
    }

    /// The untagged responses starting with `prefix`.
    pub(crate) fn starting(&self, prefix: &str) -> Vec<&str> {
        self.untagged.iter().filter(|l| l.starts_with(prefix)).map(String::as_str).collect()
    }
}

/// Reads responses from `wire` until the completion of `tag`.
pub(crate) fn answer<W: Wire>(wire: &mut W, tag: &str) -> Answer {
    let mut untagged = Vec::new();
    loop {
        let response = wire.read_response().folded();
        if let Some(done) = response.strip_prefix(&format!("{tag} ")) {
            return Answer { untagged, done: done.to_owned() };
        }
        untagged.push(response);
    }
}

/// A logged-in IMAP connection of an extension's tests: tagged commands (`x1`, `x2`, ...)
/// answered as [`Answer`]s; each test file adds the helpers it needs in its own `impl Imap`.
pub(crate) struct Imap {
    /// The connection, for what `run` does not cover (IDLE, raw literals, reading on).
    pub(crate) client: Client,
    /// The number of the last tag sent.
    pub(crate) next: u32,
}

impl Imap {
    /// Logs `user` in to `server` over implicit TLS.
    pub(crate) fn login_as(server: &TestServer, user: &str, password: &str) -> Imap {
        let mut client = server.connect_tls();
        client.read_line();
        let mut imap = Imap { client, next: 0 };
        let answer = imap.run(&format!("LOGIN {user} \"{password}\""));
        assert!(answer.ok(), "{answer:?}");
        imap
    }

    /// Sends `command` with the next tag and reads up to its completion.
    pub(crate) fn run(&mut self, command: &str) -> Answer {
        self.next += 1;
        let tag = format!("x{}", self.next);
        self.client.send(&format!("{tag} {command}"));
        answer(&mut self.client, &tag)
    }
}

/// A small IMAP session for setting up and inspecting one side of a sync.
pub(crate) struct Session<W: Wire> {
    wire: W,
    tag: u32,
}

impl Session<Client> {
    /// Logs `account` in to `server` over implicit TLS.
    pub(crate) fn login(server: &TestServer, account: &Account) -> Self {
        let mut client = server.connect_tls();
        client.read_line();
        let mut session = Self::new(client);
        session.ok(&format!("LOGIN {} \"{}\"", account.user, account.password));
        session
    }
}

impl<W: Wire> Session<W> {
    /// A session over `wire`, whose greeting has been read.
    pub(crate) fn new(wire: W) -> Self {
        Self { wire, tag: 0 }
    }

    /// Runs a command (CRLF-separated literals allowed) and returns its untagged responses,
    /// literal data folded into the line that announced it. Panics unless the answer is OK.
    pub(crate) fn ok(&mut self, command: &str) -> Vec<String> {
        self.tag += 1;
        let tag = format!("s{}", self.tag);
        self.wire.send(&format!("{tag} {command}"));
        let mut lines = Vec::new();
        loop {
            let line = self.wire.read_response().folded();
            if line.starts_with(&format!("{tag} ")) {
                assert!(line.starts_with(&format!("{tag} OK")), "{command}: {line}\n{lines:#?}");
                return lines;
            }
            lines.push(line);
        }
    }

    /// APPENDs `message` with `flags` (a space-separated list) as a non-synchronising literal.
    pub(crate) fn append(&mut self, mailbox: &str, flags: &str, message: &str) {
        self.ok(&format!("APPEND {mailbox} ({flags}) {{{}+}}\r\n{message}", message.len()));
    }

    /// Selectable mailboxes.
    pub(crate) fn mailboxes(&mut self) -> Vec<String> {
        self.ok("LIST \"\" \"*\"")
            .iter()
            // Untagged updates about the selected mailbox may come along (RFC 9051 §7.5.1).
            .filter(|l| l.starts_with("* LIST "))
            .filter(|l| !l.to_ascii_lowercase().contains("\\noselect"))
            .map(|l| l.rsplit_once("\"/\" ").unwrap().1.trim_matches('"').to_owned())
            .collect()
    }

    /// Every mailbox with its messages' Message-IDs and system flags.
    pub(crate) fn state(&mut self) -> State {
        let mut state = State::new();
        for name in self.mailboxes() {
            let mut messages = BTreeMap::new();
            self.ok(&format!("EXAMINE \"{name}\""));
            for line in self.ok("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])") {
                // Another client's flag change may come along as a FETCH of flags alone
                // (RFC 9051 §7.5.2): only the answers carry the header.
                if !line.contains(" FETCH ") || !line.contains("BODY[") {
                    continue;
                }
                let flags = line.split("FLAGS (").nth(1).unwrap().split(')').next().unwrap();
                let id = message_id(&line).unwrap_or_else(|| panic!("no Message-ID in {line:?}"));
                assert!(
                    messages.insert(id.clone(), maildir_letters(flags)).is_none(),
                    "{id} twice in {name}"
                );
            }
            state.insert(name, messages);
        }
        self.ok("UNSELECT");
        state
    }

    /// Everything a sync could change: per mailbox its STATUS (`status_items`) and every
    /// message's UID and flags. Equal snapshots mean nothing changed.
    pub(crate) fn snapshot(&mut self, status_items: &str) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for name in self.mailboxes() {
            for line in self.ok(&format!("STATUS \"{name}\" ({status_items})")) {
                all.insert(line);
            }
            self.ok(&format!("EXAMINE \"{name}\""));
            for line in self.ok("UID FETCH 1:* (UID FLAGS)") {
                all.insert(format!("{name}: {line}"));
            }
        }
        self.ok("UNSELECT");
        all
    }

    /// Selects `mailbox` and returns the UID of the message with Message-ID `<short@...>`.
    pub(crate) fn find(&mut self, mailbox: &str, short: &str) -> u32 {
        self.ok(&format!("SELECT \"{mailbox}\""));
        let found = self.ok(&format!("UID SEARCH HEADER Message-ID \"<{short}@\""));
        let uids: Vec<u32> = found
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|l| l.split_whitespace().map(|n| n.parse::<u32>().unwrap()))
            .collect();
        assert_eq!(uids.len(), 1, "{short} in {mailbox}: {found:?}");
        uids[0]
    }

    /// `+FLAGS`/`-FLAGS` on one message.
    pub(crate) fn store(&mut self, mailbox: &str, short: &str, change: &str) {
        let uid = self.find(mailbox, short);
        self.ok(&format!("UID STORE {uid} {change}"));
    }

    /// The mail every two-way sync test starts with on the server: three messages in INBOX and
    /// two in a new folder, Projects (see [`Account::first_sync`]).
    pub(crate) fn seed_server(&mut self, account: &Account) {
        self.append("INBOX", "\\Flagged", &account.mail("s1", "server one"));
        self.append("INBOX", "", &account.mail("s2", "server two"));
        self.append("INBOX", "\\Seen", &account.mail("s3", "server three"));
        self.ok("CREATE Projects");
        self.append("Projects", "", &account.mail("p1", "project one"));
        self.append("Projects", "\\Answered", &account.mail("p2", "project two"));
    }

    /// The mail every two-way sync test starts with on the device, when the device is an IMAP
    /// server: see [`Maildir::seed_device`].
    pub(crate) fn seed_device(&mut self, account: &Account) {
        self.append("INBOX", "", &account.mail("l1", "local one"));
        self.append("INBOX", "\\Seen", &account.mail("l2", "local two"));
        self.ok("CREATE Local");
        self.append("Local", "\\Flagged", &account.mail("l3", "local three"));
    }

    /// Deletes one message for good (UIDPLUS).
    pub(crate) fn delete(&mut self, mailbox: &str, short: &str) {
        let uid = self.find(mailbox, short);
        self.ok(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"));
        self.ok(&format!("UID EXPUNGE {uid}"));
    }

    /// Moves one message (RFC 6851).
    pub(crate) fn move_to(&mut self, mailbox: &str, short: &str, to: &str) {
        let uid = self.find(mailbox, short);
        self.ok(&format!("UID MOVE {uid} \"{to}\""));
    }
}

/// Runs `sync` (of the device holding `local`, with `client`) once more and asserts that it
/// changed neither the server (`imap`'s snapshot with `status_items`) nor the Maildir: a sync
/// with nothing to do must do nothing.
pub(crate) fn assert_idle_sync(
    imap: &mut Session<Client>,
    status_items: &str,
    local: &Maildir,
    client: &str,
    sync: impl FnOnce(),
) {
    let server_before = imap.snapshot(status_items);
    let files_before = local.paths();
    sync();
    assert_eq!(imap.snapshot(status_items), server_before, "an idle {client} sync changed the server");
    assert_eq!(local.paths(), files_before, "an idle {client} sync changed the Maildir");
}

/// The `<...>` of a Message-ID header field in `text`.
pub(crate) fn message_id(text: &str) -> Option<String> {
    let at = text.to_ascii_lowercase().find("message-id:")?;
    let rest = &text[at + "message-id:".len()..];
    let start = rest.find('<')?;
    let end = rest[start..].find('>')?;
    Some(rest[start..=start + end].to_owned())
}

/// IMAP system flags → Maildir info letters, sorted; keywords and `\Recent` are left out (the
/// sync clients do not all carry them).
pub(crate) fn maildir_letters(flags: &str) -> String {
    let mut letters: Vec<char> = flags
        .split_whitespace()
        .filter_map(|f| match f.to_ascii_lowercase().as_str() {
            "\\draft" => Some('D'),
            "\\flagged" => Some('F'),
            "\\answered" => Some('R'),
            "\\seen" => Some('S'),
            "\\deleted" => Some('T'),
            _ => None,
        })
        .collect();
    letters.sort_unstable();
    letters.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Test messages and Maildirs
// ---------------------------------------------------------------------------------------------

/// A test file's account and its test messages, each known by a short name: its Message-ID is
/// `<short@domain>`, and it is addressed to `user@example.com`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Account {
    /// The login name.
    pub(crate) user: &'static str,
    /// The password (quoted wherever it is written, so it may hold spaces).
    pub(crate) password: &'static str,
    /// The Message-ID domain.
    pub(crate) domain: &'static str,
}

impl Account {
    /// A server with this account.
    pub(crate) fn server(&self) -> TestServer {
        let server = TestServer::start();
        server.add_user(self.user, self.password);
        server
    }

    /// The message `short`.
    pub(crate) fn mail(&self, short: &str, subject: &str) -> String {
        format!(
            "From: Bob <bob@example.org>\r\nTo: {user}@example.com\r\nSubject: {subject}\r\n\
             Date: Thu, 3 Mar 2022 12:00:00 +0000\r\nMessage-ID: <{short}@{domain}>\r\n\r\n\
             Body of {subject}.\r\n",
            user = self.user,
            domain = self.domain,
        )
    }

    /// The Message-ID of the message `short`.
    pub(crate) fn id(&self, short: &str) -> String {
        format!("<{short}@{}>", self.domain)
    }

    /// The state both sides must reach after a first sync of [`Session::seed_server`]'s mail with a
    /// device holding l1 and l2 (seen) in INBOX and l3 (flagged) in a folder of its own, Local.
    pub(crate) fn first_sync(&self) -> State {
        self.expected(&[
            ("INBOX", &[("s1", "F"), ("s2", ""), ("s3", "S"), ("l1", ""), ("l2", "S")]),
            ("Projects", &[("p1", ""), ("p2", "R")]),
            ("Local", &[("l3", "F")]),
        ])
    }

    /// The expected state: `(mailbox, [(message, flags)])`, every other default folder empty.
    pub(crate) fn expected(&self, boxes: &[(&str, &[(&str, &str)])]) -> State {
        let mut state: State = DEFAULT_FOLDERS.iter().map(|n| ((*n).to_owned(), BTreeMap::new())).collect();
        for (name, messages) in boxes {
            let entry = state.entry((*name).to_owned()).or_default();
            for (short, flags) in *messages {
                entry.insert(self.id(short), (*flags).to_owned());
            }
        }
        state
    }
}

/// One message file: (mailbox, path, Message-ID, flags).
type MessageFile = (String, PathBuf, String, String);

/// A Maildir tree as mbsync (`SubFolders Verbatim`) and offlineimap (`sep = /`) lay it out:
/// `root/INBOX`, `root/a/b` for mailbox `a/b`, each with cur/new/tmp. Its messages come from a
/// [`Account`].
pub(crate) struct Maildir {
    /// The top directory.
    pub(crate) root: PathBuf,
    account: Account,
}

impl Maildir {
    /// The Maildir at `root` (not created: the clients create it, or [`Maildir::create`]).
    pub(crate) fn new(root: PathBuf, account: Account) -> Self {
        Self { root, account }
    }

    /// The directory of mailbox `name`.
    pub(crate) fn folder(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Creates `name` with its cur/new/tmp.
    pub(crate) fn create(&self, name: &str) {
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(self.folder(name).join(sub)).unwrap();
        }
    }

    /// Delivers a message as a local mail program would: into `new/`, or `cur/` with flags.
    pub(crate) fn deliver(&self, name: &str, short: &str, flags: Option<&str>, message: &str) {
        let file = format!("1700000000.{short}.device");
        let path = match flags {
            None => self.folder(name).join("new").join(file),
            Some(f) => self.folder(name).join("cur").join(format!("{file}:2,{f}")),
        };
        std::fs::write(path, message).unwrap();
    }

    /// The mail every two-way sync test starts with on the device: l1 and l2 (seen) in INBOX,
    /// l3 (flagged) in a folder the server does not have yet, Local.
    pub(crate) fn seed_device(&self) {
        let account = self.account;
        self.create("INBOX");
        self.deliver("INBOX", "l1", None, &account.mail("l1", "local one"));
        self.deliver("INBOX", "l2", Some("S"), &account.mail("l2", "local two"));
        self.create("Local");
        self.deliver("Local", "l3", Some("F"), &account.mail("l3", "local three"));
    }

    /// Every message file, sorted.
    pub(crate) fn files(&self) -> Vec<MessageFile> {
        let mut out = Vec::new();
        self.walk(&self.root, "", &mut out);
        out.sort();
        out
    }

    fn walk(&self, dir: &Path, name: &str, out: &mut Vec<MessageFile>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let entry = entry.unwrap();
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with('.') || !entry.file_type().unwrap().is_dir() {
                continue;
            }
            match file.as_str() {
                "cur" | "new" => {
                    for message in std::fs::read_dir(entry.path()).unwrap() {
                        let path = message.unwrap().path();
                        let base = path.file_name().unwrap().to_string_lossy().into_owned();
                        let info = base.split_once(":2,").map(|(_, f)| f.to_owned()).unwrap_or_default();
                        let mut flags: Vec<char> = info.chars().filter(|c| c.is_ascii_uppercase()).collect();
                        flags.sort_unstable();
                        let text = std::fs::read_to_string(&path).unwrap();
                        let id = message_id(&text)
                            .unwrap_or_else(|| panic!("no Message-ID in {}", path.display()));
                        out.push((name.to_owned(), path, id, flags.into_iter().collect()));
                    }
                }
                "tmp" => {}
                sub => {
                    let child = if name.is_empty() { sub.to_owned() } else { format!("{name}/{sub}") };
                    self.walk(&entry.path(), &child, out);
                }
            }
        }
    }

    /// Per mailbox: Message-ID → flags. Every folder is in the state, even when empty.
    pub(crate) fn state(&self) -> State {
        let mut state = State::new();
        self.folders(&self.root, "", &mut state);
        for (mailbox, _, id, flags) in self.files() {
            let messages = state.entry(mailbox.clone()).or_default();
            assert!(messages.insert(id.clone(), flags).is_none(), "{id} twice in local {mailbox}");
        }
        state
    }

    fn folders(&self, dir: &Path, name: &str, state: &mut State) {
        if dir.join("cur").is_dir() {
            state.entry(name.to_owned()).or_default();
        }
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let file = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir()
                && !["cur", "new", "tmp"].contains(&file.as_str())
                && !file.starts_with('.')
            {
                let child = if name.is_empty() { file } else { format!("{name}/{file}") };
                self.folders(&entry.path(), &child, state);
            }
        }
    }

    /// The file holding message `short` in `mailbox`.
    pub(crate) fn find(&self, mailbox: &str, short: &str) -> PathBuf {
        let id = self.account.id(short);
        self.files()
            .into_iter()
            .find(|(m, _, i, _)| m == mailbox && *i == id)
            .unwrap_or_else(|| panic!("{short} not in local {mailbox}"))
            .1
    }

    /// Sets a message's flags the Maildir way: by renaming it into `cur/`.
    pub(crate) fn set_flags(&self, mailbox: &str, short: &str, flags: &str) {
        let path = self.find(mailbox, short);
        let base = path.file_name().unwrap().to_string_lossy().into_owned();
        let stem = base.split_once(":2,").map_or(base.as_str(), |(s, _)| s).to_owned();
        std::fs::rename(&path, self.folder(mailbox).join("cur").join(format!("{stem}:2,{flags}"))).unwrap();
    }

    /// Deletes a message file, as a Maildir client deletes a message.
    pub(crate) fn remove(&self, mailbox: &str, short: &str) {
        std::fs::remove_file(self.find(mailbox, short)).unwrap();
    }

    /// Paths of every message file: equal lists mean the Maildir did not change.
    pub(crate) fn paths(&self) -> Vec<PathBuf> {
        self.files().into_iter().map(|f| f.1).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Client programs
// ---------------------------------------------------------------------------------------------

/// Longest one run of a client program may take.
pub(crate) const CLIENT_DEADLINE: Duration = Duration::from_secs(120);

/// Whether a missing client must fail the test instead of skipping it
/// (`POSTFACH_REQUIRE_CLIENTS=1`, as CI sets).
pub(crate) fn clients_required() -> bool {
    std::env::var("POSTFACH_REQUIRE_CLIENTS").is_ok_and(|v| v == "1")
}

/// True if `program` (a command run as `program --version`, or an absolute path to a file)
/// exists; otherwise prints why the test is skipped, or fails when clients are required.
pub(crate) fn available(program: &str, package: &str) -> bool {
    let found = if program.starts_with('/') {
        Path::new(program).is_file()
    } else {
        Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    };
    if !found {
        let message = format!("skipping: {program} not installed (apt-get install {package})");
        assert!(!clients_required(), "POSTFACH_REQUIRE_CLIENTS=1 but {message}");
        eprintln!("{message}");
    }
    found
}

/// True if `python3` can import `module` (from PyPI's `package`); otherwise prints why the test
/// is skipped, or fails when clients are required, as [`available`] does.
pub(crate) fn python_module(module: &str, package: &str) -> bool {
    if !available("python3", "python3") {
        return false;
    }
    let found =
        Command::new("python3").args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success());
    if !found {
        let message = format!("skipping: python3 cannot import {module} (python3 -m pip install {package})");
        assert!(!clients_required(), "POSTFACH_REQUIRE_CLIENTS=1 but {message}");
        eprintln!("{message}");
    }
    found
}

/// The `[pop3]` section that turns both POP3 listeners on, on port 0.
pub(crate) const POP3_SECTION: &str = "[pop3]\nlisten = [\"127.0.0.1:0\"]\nlisten_tls = [\"127.0.0.1:0\"]\n";

/// Output of a finished client program.
pub(crate) struct Finished {
    /// How it exited.
    pub(crate) status: ExitStatus,
    /// Its standard output.
    pub(crate) stdout: String,
    /// Its standard error.
    pub(crate) stderr: String,
}

impl Finished {
    /// Standard output, then standard error.
    pub(crate) fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Asserts that `what` exited successfully, showing its output and the server's log.
    pub(crate) fn assert_success(&self, what: &str, server: &TestServer) {
        assert!(
            self.status.success(),
            "{what} failed ({:?}):\nstdout:\n{}\nstderr:\n{}\nserver log (tail):\n{}",
            self.status,
            self.stdout,
            self.stderr,
            server.log_tail(40)
        );
    }
}

/// Runs `command` with its output in `dir/NAME.out` and `dir/NAME.err`, killing it after `limit`.
pub(crate) fn run_program(command: &mut Command, dir: &Path, name: &str, limit: Duration) -> Finished {
    let out_path = dir.join(format!("{name}.out"));
    let err_path = dir.join(format!("{name}.err"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// An mbsync device: the server as far side, a Maildir as near side, one channel (`device`).
pub(crate) struct Mbsync {
    dir: PathBuf,
    /// The device's mail.
    pub(crate) maildir: Maildir,
    rc: PathBuf,
}

impl Mbsync {
    /// A device called `name` under `dir` (its Maildir root exists, empty: mbsync needs it).
    pub(crate) fn new(dir: &Path, name: &str, server: &TestServer, account: Account) -> Self {
        let dir = dir.join(name);
        let maildir = Maildir::new(dir.join("mail"), account);
        std::fs::create_dir_all(&maildir.root).unwrap();
        let rc = dir.join("mbsyncrc");
        let root = maildir.root.display();
        // SSLType (isync 1.4) is still understood by 1.5, which renamed it TLSType.
        let config = format!(
            "IMAPAccount server\nHost 127.0.0.1\nPort {port}\nUser {user}\nPass \"{password}\"\n\
             SSLType IMAPS\nCertificateFile {cert}\nTimeout 30\n\n\
             IMAPStore remote\nAccount server\n\n\
             MaildirStore local\nPath {root}/\nInbox {root}/INBOX\nSubFolders Verbatim\n\n\
             Channel device\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\n\
             SyncState *\n",
            port = server.imaps.port(),
            cert = server.cert_path().display(),
            user = account.user,
            password = account.password,
        );
        std::fs::write(&rc, config).unwrap();
        Self { dir, maildir, rc }
    }

    /// Runs `mbsync device` and asserts success; returns its output.
    pub(crate) fn sync(&self, server: &TestServer) -> String {
        let done = run_program(
            Command::new("mbsync").arg("-c").arg(&self.rc).arg("device"),
            &self.dir,
            "mbsync",
            CLIENT_DEADLINE,
        );
        done.assert_success("mbsync", server);
        done.output()
    }
}

/// A TCP connection from another loopback address (Linux routes all of 127/8 locally), for
/// tests of per-address throttling and blocks.
pub(crate) fn connect_from(local: [u8; 4], to: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((local, 0))).unwrap();
        socket.connect(to).await.unwrap()
    });
    let std = stream.into_std().unwrap();
    std.set_nonblocking(false).unwrap();
    std
}

// --- Differential tests against Dovecot (dovecot_list.rs, dovecot_pop3.rs) ----------------------

/// Runs `bench/<script>` (a comparison with a private Dovecot that writes every difference as
/// `{command, kind, cause, ours, dovecot}` to `--json`) on this binary and checks that each
/// `(command, cause)` pair is explained: in `bench/<allowlist>` and not `other` (a cause the
/// script could not give). A pair that no longer occurs is printed as a note, so the list can
/// shrink. Skips without root (Dovecot runs as `dovebench` through runuser), without one of
/// `programs` (path, Debian package) or without the `dovebench` user; under
/// `POSTFACH_REQUIRE_CLIENTS=1` a missing program or user fails instead.
pub(crate) fn check_against_dovecot(script: &str, allowlist: &str, programs: &[(&str, &str)]) {
    let probe = tempfile::tempdir().unwrap();
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(probe.path()).unwrap()) != 0 {
        eprintln!("skipping: the Dovecot comparison runs Dovecot as `dovebench`, which needs root");
        return;
    }
    if !programs.iter().all(|(program, package)| available(program, package)) {
        return;
    }
    if !Command::new("id").arg("dovebench").output().is_ok_and(|o| o.status.success()) {
        let message = "skipping: no `dovebench` user (useradd --system --no-create-home --shell /usr/sbin/nologin dovebench)";
        assert!(!clients_required(), "POSTFACH_REQUIRE_CLIENTS=1 but {message}");
        eprintln!("{message}");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut command = Command::new("python3");
    command
        .arg(root.join("bench").join(script))
        .arg("--postfach")
        .arg(binary())
        .arg("-q")
        .arg("--json")
        .arg(&json);
    // A hundred commands or so; this only guards against a hung server.
    let finished = run_program(&mut command, dir.path(), "compare", Duration::from_secs(120));
    assert!(finished.status.success(), "{script} failed ({:?}):\n{}", finished.status, finished.output());

    // (command, cause) -> the differences behind it.
    let mut found: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let field = |v: &serde_json::Value, name: &str| v[name].as_str().unwrap_or_default().to_owned();
    for entry in report.as_array().unwrap() {
        let detail = format!(
            "{}: ours {} | dovecot {}",
            field(entry, "kind"),
            field(entry, "ours"),
            field(entry, "dovecot")
        );
        found.entry((field(entry, "command"), field(entry, "cause"))).or_default().push(detail);
    }
    eprintln!("{script}: {} (command, cause) pairs differ from Dovecot", found.len());

    let path = root.join("bench").join(allowlist);
    let allowed: BTreeSet<(String, String)> =
        read_allowlist_lines(&path, 2).into_iter().map(|f| (f[0].clone(), f[1].clone())).collect();
    let gone: Vec<_> = allowed.iter().filter(|k| !found.contains_key(*k)).collect();
    if !gone.is_empty() {
        let mut note =
            format!("note: allowlisted pairs that no longer occur; remove them from {}:\n", path.display());
        for (command, cause) in gone {
            note.push_str(&format!("  {command} | {cause}\n"));
        }
        eprintln!("{note}");
    }
    let new: Vec<_> = found.iter().filter(|(k, _)| k.1 == "other" || !allowed.contains(*k)).collect();
    if !new.is_empty() {
        let mut message = format!(
            "{} difference(s) from Dovecot are not explained (give them a cause in bench/{script}, explain it \
             in docs/dovecot-differences.md, then allowlist `command | cause` in {}):\n",
            new.len(),
            path.display()
        );
        for ((command, cause), details) in new {
            message.push_str(&format!("  {command} | {cause}\n"));
            for d in details {
                message.push_str(&format!("      {d}\n"));
            }
        }
        panic!("{message}");
    }
}

/// The lines of an allowlist of differences from Dovecot, each split into its `fields` fields
/// (separated by ` | `); `#` starts a comment.
pub(crate) fn read_allowlist_lines(path: &Path, fields: usize) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split_once('#').map_or(line, |(l, _)| l).trim();
        if line.is_empty() {
            continue;
        }
        let parts: Vec<String> = line.split(" | ").map(|f| f.trim().to_owned()).collect();
        assert_eq!(
            parts.len(),
            fields,
            "{}:{}: expected {fields} fields split by ` | `: {line}",
            path.display(),
            n + 1
        );
        out.push(parts);
    }
    out
}
