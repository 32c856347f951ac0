//! The configuration file: TOML text → a validated [`Config`], once, at startup.
//!
//! The parsed TOML table is walked by hand rather than through serde so that one bad file yields
//! every problem at once (unknown keys, wrong types, values out of range), each with its key path,
//! instead of stopping at the first. Nothing here is global: `main` passes the `Config` down.
//! Every key, its default and the reason for the default are documented in
//! `postfach.example.toml` at the repository root; keep the two in step.
//!
//! Limits: relative paths are relative to the working directory, as the default `data_dir` is.
//! Files named by `[tls]` are checked for existence here and parsed later by `tls.rs` (and again
//! on SIGHUP); the rest of the file is read once, so changing it needs a restart.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postfach_delivery::OverQuotaAnswer;
use toml::{Table, Value};

mod acme;
pub(crate) use acme::{AcmeChallenge, AcmeConfig};

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// Where the store (and the generated TLS certificate) live.
    pub(crate) data_dir: PathBuf,
    /// The IMAP service.
    pub(crate) imap: ImapConfig,
    /// Certificate and key files, the default first (`[tls] cert/key`, then each
    /// `[[tls.certificates]]`); empty means a self-signed certificate in `data_dir/tls`.
    pub(crate) tls: Vec<TlsFiles>,
    /// More names for the generated certificate (`[tls] names`), beside the host name and the
    /// loopback names; lower case, each a DNS name or an IP address.
    pub(crate) tls_names: Vec<String>,
    /// Certificates from an ACME CA (`[tls] acme`), used before the others where valid.
    pub(crate) acme: Option<AcmeConfig>,
    /// Logging.
    pub(crate) log: LogConfig,
    /// LMTP listeners (mail from the MTA).
    pub(crate) lmtp: LmtpConfig,
    /// The POP3 service (off unless it has a listener).
    pub(crate) pop3: Pop3Config,
    /// Delivery policy.
    pub(crate) delivery: DeliverySettings,
    /// Vacation replies (and Sieve redirects).
    pub(crate) vacation: VacationConfig,
    /// Login policy: brute-force defence, trusted networks, two-factor settings.
    pub(crate) auth: AuthConfig,
    /// Default quotas (RFC 9208) and what delivery answers over them.
    pub(crate) quota: QuotaConfig,
    /// Scheduled backups.
    pub(crate) backup: BackupConfig,
    /// Automatic clean-up of Trash and Junk.
    pub(crate) cleanup: CleanupConfig,
    /// The Prometheus endpoint and `/health`.
    pub(crate) metrics: MetricsConfig,
    /// Which store backend holds the mail (`[store]`).
    pub(crate) store: StoreConfig,
    /// ManageSieve (RFC 5804): users' Sieve scripts over the network.
    pub(crate) managesieve: ManageSieveConfig,
    /// The outbound queue (vacation replies, redirects, bounces): retries and lifetime.
    pub(crate) queue: QueueConfig,
    /// The web pages: users' self-service and the admin pages (`[web]`).
    pub(crate) web: WebConfig,
    /// Bearer tokens from a single sign-on issuer (`[oauth]`): OAUTHBEARER and XOAUTH2.
    pub(crate) oauth: Option<OAuthConfig>,
}

/// The web pages (`[web]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebConfig {
    /// Plain HTTP listeners (for loopback, or behind a TLS-terminating proxy); empty: none.
    pub(crate) listen: Vec<SocketAddr>,
    /// HTTPS listeners, with the IMAP server's certificates; empty: none.
    pub(crate) listen_tls: Vec<SocketAddr>,
    /// Allow a plain HTTP listener on a non-loopback address (passwords would cross the
    /// network in the clear unless a proxy in front adds TLS).
    pub(crate) allow_remote_plaintext: bool,
    /// A logged-in page session ends after this long without a request.
    pub(crate) session_idle: Duration,
    /// Page sessions kept at once (over all users); a login past it is refused.
    pub(crate) max_sessions: usize,
    /// HTTP connections open at once, over all web listeners.
    pub(crate) max_connections: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            listen_tls: Vec::new(),
            allow_remote_plaintext: false,
            session_idle: Duration::from_secs(15 * 60),
            max_sessions: 10_000,
            max_connections: 256,
        }
    }
}

/// `[web] session_idle`, seconds: a minute to a day.
const WEB_SESSION_IDLE_RANGE: RangeInclusive<i64> = 60..=86_400;
/// `[web] max_sessions`.
const WEB_SESSIONS_RANGE: RangeInclusive<i64> = 1..=1_000_000;
/// `[web] max_connections`.
const WEB_CONNECTIONS_RANGE: RangeInclusive<i64> = 1..=100_000;

/// The ManageSieve service (`[managesieve]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManageSieveConfig {
    /// Listeners (cleartext with STARTTLS, RFC 5804 §1.8); empty turns ManageSieve off.
    pub(crate) listen: Vec<SocketAddr>,
}

impl Default for ManageSieveConfig {
    fn default() -> Self {
        // RFC 5804 §1.8: the IANA port; loopback like every default listener.
        Self { listen: vec![SocketAddr::from(([127, 0, 0, 1], 4190))] }
    }
}

/// Which store backend holds the mail (`[store]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct StoreConfig {
    /// `backend = "sqlite"` (the default: one file in `data_dir`) or `"postgres"`.
    pub(crate) backend: StoreBackend,
    /// The PostgreSQL server (`postgres://user@host/db` or libpq `key=value` form); required
    /// with `backend = "postgres"`. Keep the password out of it: use `password_file` or
    /// `password_env`.
    pub(crate) url: Option<String>,
    /// A file holding the database password (one line; a trailing newline is ignored).
    pub(crate) password_file: Option<PathBuf>,
    /// An environment variable holding the database password.
    pub(crate) password_env: Option<String>,
    /// Most database connections this node opens (default 16).
    pub(crate) pool_size: Option<usize>,
    /// TLS to the database, verified against these CA certificates (PEM) and the URL's host
    /// name; unset: no TLS (a database on this machine or a trusted network).
    pub(crate) tls_ca_file: Option<PathBuf>,
}

/// The store backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum StoreBackend {
    /// One SQLite database in `data_dir`.
    #[default]
    Sqlite,
    /// A PostgreSQL database, which several nodes can share (docs/scale-out.md).
    Postgres,
}

/// Settings of the IMAP listeners and connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImapConfig {
    /// Cleartext listeners (STARTTLS offered).
    pub(crate) listen: Vec<SocketAddr>,
    /// Implicit-TLS listeners (RFC 8314).
    pub(crate) listen_tls: Vec<SocketAddr>,
    /// Accept LOGIN/AUTHENTICATE without TLS.
    pub(crate) allow_plaintext_auth: bool,
    /// Largest message APPEND accepts (and the largest literal the framer buffers), in bytes.
    pub(crate) max_message_size: u32,
    /// Connections open at once, over all listeners.
    pub(crate) max_connections: usize,
    /// Connections open at once from one client address (IPv6: one /64 network).
    pub(crate) max_connections_per_address: usize,
    /// Logged-in connections open at once for one account.
    pub(crate) max_connections_per_account: usize,
    /// Client networks `max_connections_per_address` does not apply to (local proxies, webmail).
    pub(crate) connection_limit_exempt: Vec<IpNet>,
    /// Longest command line (without literals), in bytes.
    pub(crate) max_line_length: usize,
    /// Most mailboxes one account may have (the store refuses creating more).
    pub(crate) max_mailboxes: u32,
    /// Largest METADATA value SETMETADATA stores, in bytes (RFC 5464).
    pub(crate) metadata_max_size: u32,
    /// METADATA entries of one kind on one mailbox or on the server.
    pub(crate) metadata_max_entries: u32,
    /// METADATA entries one account holds in all.
    pub(crate) metadata_max_account_entries: u32,
    /// The `/shared/admin` server entry (RFC 5464 §3.2.1.1): a URI.
    pub(crate) admin_contact: Option<String>,
    /// How often a long command reports its progress (RFC 9585); zero: at every step.
    pub(crate) progress_interval: Duration,
    /// Accounts that administer over IMAP: SETQUOTA (RFC 9208) and reading every quota root.
    pub(crate) admins: Vec<String>,
    /// Client silence allowed before login (also bounds the implicit TLS handshake).
    pub(crate) preauth_timeout: Duration,
    /// Total time from accept to a successful login, however busy the client is (slowloris).
    pub(crate) preauth_deadline: Duration,
    /// Client silence allowed after login.
    pub(crate) auth_timeout: Duration,
    /// Interval of `* OK Still here` during IDLE.
    pub(crate) idle_keepalive: Duration,
    /// Literal bytes (APPEND data) all logged-in sessions together may hold in memory.
    pub(crate) literal_memory: u64,
    /// How long a literal may wait for room in `literal_memory` before `NO [LIMIT]`.
    pub(crate) literal_wait: Duration,
}

/// An IP network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpNet {
    /// The network's address (host bits may be set; they are ignored).
    addr: IpAddr,
    /// Leading bits that must match.
    prefix: u8,
}

impl IpNet {
    /// Parses `addr/prefix` or a bare address (a host route).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// True if `ip` is in this network. IPv4-mapped IPv6 addresses count as IPv4.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// PEM files of the server certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// Certificate chain, leaf first.
    pub(crate) cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub(crate) key: PathBuf,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogConfig {
    /// An `EnvFilter` directive such as `info` or `postfach=debug,warn`; `RUST_LOG` overrides it.
    pub(crate) level: String,
    /// Line format on stderr.
    pub(crate) format: LogFormat,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./postfach-data"),
            imap: ImapConfig::default(),
            tls: Vec::new(),
            tls_names: Vec::new(),
            acme: None,
            log: LogConfig { level: "info".to_owned(), format: LogFormat::Text },
            lmtp: LmtpConfig::default(),
            pop3: Pop3Config::default(),
            delivery: DeliverySettings::default(),
            vacation: VacationConfig::default(),
            auth: AuthConfig::default(),
            quota: QuotaConfig::default(),
            backup: BackupConfig::default(),
            cleanup: CleanupConfig::default(),
            metrics: MetricsConfig::default(),
            store: StoreConfig::default(),
            managesieve: ManageSieveConfig::default(),
            queue: QueueConfig::default(),
            web: WebConfig::default(),
            oauth: None,
        }
    }
}

impl Default for ImapConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 1143))],
            listen_tls: vec![SocketAddr::from(([127, 0, 0, 1], 1993))],
            allow_plaintext_auth: false,
            max_message_size: 50 * 1024 * 1024,
            max_connections: 10_000,
            max_connections_per_address: 100,
            max_connections_per_account: 50,
            connection_limit_exempt: loopback(),
            max_line_length: 64 * 1024,
            max_mailboxes: 10_000,
            metadata_max_size: 64 * 1024,
            metadata_max_entries: 100,
            metadata_max_account_entries: 1000,
            admin_contact: None,
            progress_interval: Duration::from_secs(10),
            admins: Vec::new(),
            preauth_timeout: Duration::from_secs(60),
            preauth_deadline: Duration::from_secs(120),
            auth_timeout: Duration::from_secs(30 * 60),
            idle_keepalive: Duration::from_secs(120),
            literal_memory: 256 * 1024 * 1024,
            literal_wait: Duration::from_secs(10),
        }
    }
}

/// The loopback networks: the default `imap.connection_limit_exempt` (where a local proxy or
/// webmail carries many users' connections from one address) and `lmtp.allowed_networks`.
fn loopback() -> Vec<IpNet> {
    vec![
        IpNet { addr: IpAddr::from([127, 0, 0, 0]), prefix: 8 },
        IpNet { addr: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]), prefix: 128 },
    ]
}

/// Allowed range of `imap.max_message_size`: the framer holds a whole literal in memory, so the
/// top is bounded by what one connection may reasonably cost.
const MESSAGE_SIZE_RANGE: RangeInclusive<i64> = 1024..=1024 * 1024 * 1024;
/// Allowed range of `imap.max_connections`.
const CONNECTIONS_RANGE: RangeInclusive<i64> = 1..=1_000_000;
/// Allowed range of `imap.max_line_length`. RFC 7162 §4: clients may send lines of about 8192
/// octets, so less would break CONDSTORE/QRESYNC clients.
const LINE_LENGTH_RANGE: RangeInclusive<i64> = 8192..=16 * 1024 * 1024;
/// Allowed range of `imap.max_mailboxes`: at least the six every account is made with.
const MAILBOXES_RANGE: RangeInclusive<i64> = 6..=1_000_000;
/// Allowed range of `imap.metadata_max_size`: RFC 5464 §4.1 wants at least 1024 octets; the
/// top keeps one GETMETADATA answer within what a connection may reasonably cost.
const METADATA_SIZE_RANGE: RangeInclusive<i64> = 1024..=16 * 1024 * 1024;
/// Allowed range of `imap.metadata_max_entries`: RFC 5464 §4.1 wants at least 10.
const METADATA_ENTRIES_RANGE: RangeInclusive<i64> = 10..=100_000;
/// Allowed range of `imap.metadata_max_account_entries`.
const METADATA_ACCOUNT_RANGE: RangeInclusive<i64> = 10..=10_000_000;
/// Allowed range of `imap.progress_interval`, seconds (0: at every step of a command).
const PROGRESS_RANGE: RangeInclusive<i64> = 0..=3600;
/// Allowed range of `imap.preauth_deadline`, seconds.
const PREAUTH_DEADLINE_RANGE: RangeInclusive<i64> = 1..=3600;
/// Allowed range of `imap.preauth_timeout`, seconds.
const PREAUTH_TIMEOUT_RANGE: RangeInclusive<i64> = 1..=3600;
/// Allowed range of `imap.auth_timeout`, seconds. RFC 9051 §5.4: at least 30 minutes.
const AUTH_TIMEOUT_RANGE: RangeInclusive<i64> = 1800..=7 * 24 * 3600;
/// Allowed range of `imap.idle_keepalive`, seconds.
const KEEPALIVE_RANGE: RangeInclusive<i64> = 1..=3600;
/// Allowed range of `imap.literal_memory`, bytes (at least `max_message_size`, checked apart).
const LITERAL_MEMORY_RANGE: RangeInclusive<i64> = 1024..=1024 * 1024 * 1024 * 1024;
/// Allowed range of `imap.literal_wait`, seconds (0: refuse at once when there is no room).
const LITERAL_WAIT_RANGE: RangeInclusive<i64> = 0..=600;

/// `imap.admin_contact`: a URI (`scheme:rest`, RFC 3986 §3.1) of printable ASCII, at most 1024
/// bytes, since it is sent as a METADATA value.
fn admin_contact(text: &str) -> Result<String, String> {
    let scheme_ok = text.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if !scheme_ok || text.len() > 1024 || !text.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("not a URI such as \"mailto:postmaster@example.org\"".to_owned());
    }
    Ok(text.to_owned())
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    /// Dotted key path (`imap.listen[1]`), or the section for problems spanning keys.
    pub(crate) path: String,
    /// What is wrong.
    pub(crate) problem: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{} is not valid TOML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's description, with line and column.
        message: String,
    },
    /// The file is TOML but its content is wrong; every problem found is listed.
    #[error("{}", describe_issues(path, issues))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// All problems, sorted by key path within each section.
        issues: Vec<Issue>,
    },
}

fn describe_issues(path: &Path, issues: &[Issue]) -> String {
    let mut text = format!("invalid configuration in {} ({} problems):", path.display(), issues.len());
    for issue in issues {
        text.push_str("\n  ");
        text.push_str(&issue.to_string());
    }
    text
}

impl Config {
    /// Loads and validates the file at `path`, or returns the defaults when there is none.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_toml(&text).map_err(|e| match e {
            ParseFailure::Syntax(message) => ConfigError::Syntax { path: path.to_owned(), message },
            ParseFailure::Invalid(issues) => ConfigError::Invalid { path: path.to_owned(), issues },
        })
    }

    /// Parses and validates TOML text, collecting every problem.
    fn from_toml(text: &str) -> Result<Self, ParseFailure> {
        let table: Table = text.parse().map_err(|e: toml::de::Error| ParseFailure::Syntax(e.to_string()))?;
        let mut check = Checker::default();
        let config = check.config(&table);
        if check.issues.is_empty() { Ok(config) } else { Err(ParseFailure::Invalid(check.issues)) }
    }
}

/// `from_toml`'s error before the file path is attached.
#[derive(Debug)]
enum ParseFailure {
    Syntax(String),
    Invalid(Vec<Issue>),
}

/// Walks the TOML table, filling a `Config` from defaults and recording every problem.
///
/// Each section reader is a `match` over its keys, one line a key: a typed accessor reads the
/// value (recording an issue with the key path and returning `None` when it is wrong) and [`set`]
/// stores it, so a wrong value leaves the default in place.
#[derive(Default)]
struct Checker {
    issues: Vec<Issue>,
}

/// Stores `found` in `slot` when the key's value was valid; otherwise the default stays (the
/// accessor that returned `None` has recorded why).
fn set<T>(slot: &mut T, found: Option<T>) {
    if let Some(value) = found {
        *slot = value;
    }
}

/// A parse step for [`Checker::text`] that refuses the empty string.
fn non_empty(text: &str) -> Result<String, String> {
    if text.is_empty() { Err("must not be empty".to_owned()) } else { Ok(text.to_owned()) }
}

/// A parse step for [`Checker::text`] that refuses the empty string with `problem`.
fn non_empty_path(problem: &'static str) -> impl FnOnce(&str) -> Result<PathBuf, String> {
    move |text| if text.is_empty() { Err(problem.to_owned()) } else { Ok(PathBuf::from(text)) }
}

impl Checker {
    fn config(&mut self, root: &Table) -> Config {
        let mut config = Config::default();
        self.walk(root, "", |c, key, value, path| match key {
            "data_dir" => set(&mut config.data_dir, c.text(value, path, non_empty_path("must not be empty"))),
            "imap" => c.imap(value, &mut config.imap),
            "tls" => c.tls(value, &mut config.tls, &mut config.tls_names, &mut config.acme),
            "log" => c.log(value, &mut config.log),
            "lmtp" => c.lmtp(value, &mut config.lmtp),
            "pop3" => c.pop3(value, &mut config.pop3),
            "delivery" => c.delivery(value, &mut config.delivery),
            "vacation" => c.vacation(value, &mut config.vacation),
            "auth" => c.auth(value, &mut config.auth),
            "quota" => c.quota(value, &mut config.quota),
            "backup" => c.backup(value, &mut config.backup),
            "cleanup" => c.cleanup(value, &mut config.cleanup),
            "metrics" => c.metrics(value, &mut config.metrics),
            "store" => c.store(value, &mut config.store),
            "managesieve" => c.managesieve(value, &mut config.managesieve),
            "queue" => c.queue(value, &mut config.queue),
            "web" => c.web(value, &mut config.web),
            "oauth" => config.oauth = c.oauth(value),
            _ => c.unknown(path),
        });
        self.pop3_addresses(&config.pop3, &config.imap);
        let alpn = config.acme.as_ref().is_some_and(|a| a.challenge == AcmeChallenge::TlsAlpn01);
        if alpn && config.imap.listen_tls.is_empty() {
            self.issue("tls.acme.challenge", "tls-alpn-01 is answered on imap.listen_tls, which is empty");
        }
        let both = config.quota.mailboxes.is_some()
            && root.get("imap").and_then(Value::as_table).is_some_and(|t| t.contains_key("max_mailboxes"));
        if both {
            self.issue(
                "quota.mailboxes",
                "imap.max_mailboxes is set too: keep one (quota.mailboxes replaces it)",
            );
        }
        if config.store.backend == StoreBackend::Postgres && config.backup.dir.is_some() {
            self.issue(
                "backup.dir",
                "scheduled backups copy the SQLite store; back up PostgreSQL with its own tools \
                 (pg_dump, or base backups with WAL archiving)",
            );
        }
        config
    }

    fn imap(&mut self, value: &Value, imap: &mut ImapConfig) {
        let read = self.section(value, "imap", |c, key, value, path| match key {
            "listen" => set(&mut imap.listen, c.addresses(value, path)),
            "listen_tls" => set(&mut imap.listen_tls, c.addresses(value, path)),
            "allow_plaintext_auth" => set(&mut imap.allow_plaintext_auth, c.boolean(value, path)),
            "max_message_size" => set(&mut imap.max_message_size, c.number(value, path, MESSAGE_SIZE_RANGE)),
            "max_connections" => set(&mut imap.max_connections, c.number(value, path, CONNECTIONS_RANGE)),
            "max_connections_per_address" => {
                set(&mut imap.max_connections_per_address, c.number(value, path, CONNECTIONS_RANGE))
            }
            "max_connections_per_account" => {
                set(&mut imap.max_connections_per_account, c.number(value, path, CONNECTIONS_RANGE))
            }
            "connection_limit_exempt" => set(&mut imap.connection_limit_exempt, c.networks(value, path)),
            "max_line_length" => set(&mut imap.max_line_length, c.number(value, path, LINE_LENGTH_RANGE)),
            "max_mailboxes" => set(&mut imap.max_mailboxes, c.number(value, path, MAILBOXES_RANGE)),
            "metadata_max_size" => {
                set(&mut imap.metadata_max_size, c.number(value, path, METADATA_SIZE_RANGE))
            }
            "metadata_max_entries" => {
                set(&mut imap.metadata_max_entries, c.number(value, path, METADATA_ENTRIES_RANGE))
            }
            "metadata_max_account_entries" => {
                set(&mut imap.metadata_max_account_entries, c.number(value, path, METADATA_ACCOUNT_RANGE))
            }
            "admin_contact" => set(&mut imap.admin_contact, c.text(value, path, admin_contact).map(Some)),
            "progress_interval" => set(&mut imap.progress_interval, c.seconds(value, path, PROGRESS_RANGE)),
            "admins" => set(&mut imap.admins, c.strings(value, path)),
            "preauth_deadline" => {
                set(&mut imap.preauth_deadline, c.seconds(value, path, PREAUTH_DEADLINE_RANGE))
            }
            "preauth_timeout" => {
                set(&mut imap.preauth_timeout, c.seconds(value, path, PREAUTH_TIMEOUT_RANGE))
            }
            "auth_timeout" => set(&mut imap.auth_timeout, c.seconds(value, path, AUTH_TIMEOUT_RANGE)),
            "idle_keepalive" => set(&mut imap.idle_keepalive, c.seconds(value, path, KEEPALIVE_RANGE)),
            "literal_memory" => set(&mut imap.literal_memory, c.number(value, path, LITERAL_MEMORY_RANGE)),
            "literal_wait" => set(&mut imap.literal_wait, c.seconds(value, path, LITERAL_WAIT_RANGE)),
            _ => c.unknown(path),
        });
        if read.is_none() {
            // Not a table: the defaults stand and need no cross-key checks.
            return;
        }
        if imap.listen.is_empty() && imap.listen_tls.is_empty() {
            self.issue("imap", "listen and listen_tls are both empty: nothing to serve");
        }
        if imap.literal_memory < u64::from(imap.max_message_size) {
            self.issue(
                "imap.literal_memory",
                "smaller than max_message_size: a message of the largest allowed size could never be appended",
            );
        }
        // Two listeners on one fixed address would fail at bind time with a less helpful error.
        let mut seen = Vec::new();
        for addr in imap.listen.iter().chain(&imap.listen_tls) {
            if addr.port() != 0 && seen.contains(addr) {
                self.issue("imap", format!("address {addr} is listed more than once"));
            }
            seen.push(*addr);
        }
    }

    fn managesieve(&mut self, value: &Value, managesieve: &mut ManageSieveConfig) {
        self.section(value, "managesieve", |c, key, value, path| match key {
            "listen" => set(&mut managesieve.listen, c.addresses(value, path)),
            _ => c.unknown(path),
        });
    }

    fn web(&mut self, value: &Value, web: &mut WebConfig) {
        let read = self.section(value, "web", |c, key, value, path| match key {
            "listen" => set(&mut web.listen, c.addresses(value, path)),
            "listen_tls" => set(&mut web.listen_tls, c.addresses(value, path)),
            "allow_remote_plaintext" => set(&mut web.allow_remote_plaintext, c.boolean(value, path)),
            "session_idle" => set(&mut web.session_idle, c.seconds(value, path, WEB_SESSION_IDLE_RANGE)),
            "max_sessions" => set(&mut web.max_sessions, c.number(value, path, WEB_SESSIONS_RANGE)),
            "max_connections" => set(&mut web.max_connections, c.number(value, path, WEB_CONNECTIONS_RANGE)),
            _ => c.unknown(path),
        });
        if read.is_none() {
            return;
        }
        if !web.allow_remote_plaintext
            && let Some(addr) = web.listen.iter().find(|a| !a.ip().is_loopback())
        {
            self.issue(
                "web.listen",
                format!(
                    "{addr} is not a loopback address: passwords would cross the network in the clear; \
                     use listen_tls, or set allow_remote_plaintext = true behind a TLS proxy"
                ),
            );
        }
        let mut seen = Vec::new();
        for addr in web.listen.iter().chain(&web.listen_tls) {
            if addr.port() != 0 && seen.contains(addr) {
                self.issue("web", format!("address {addr} is listed more than once"));
            }
            seen.push(*addr);
        }
    }

    /// `[tls]`: an optional `cert`/`key` pair (the default certificate), an optional
    /// `[[tls.certificates]]` list of more pairs, chosen by SNI, and `names` for the generated
    /// certificate (refused beside configured files, which it would not change), and `acme`.
    fn tls(
        &mut self,
        value: &Value,
        tls: &mut Vec<TlsFiles>,
        names: &mut Vec<String>,
        acme: &mut Option<AcmeConfig>,
    ) {
        let Some(table) = self.table(value, "tls") else { return };
        let mut files = Vec::new();
        if let Some(pair) = self.cert_pair(table, "tls", &["certificates", "names", "acme"]) {
            files.push(pair);
        }
        if let Some(value) = table.get("acme") {
            *acme = self.acme(value);
        }
        if let Some(value) = table.get("names") {
            set(
                names,
                self.list(value, "tls.names", "a list of host names or IP addresses", certificate_name),
            );
            let configured = table.contains_key("cert") || table.contains_key("certificates");
            if configured && !names.is_empty() {
                self.issue("tls.names", "only used for the generated certificate; remove it or cert/key");
            }
        }
        if let Some(value) = table.get("certificates") {
            if let Value::Array(items) = value {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("tls.certificates[{i}]");
                    let Some(entry) = self.table(item, &path) else { continue };
                    if !entry.contains_key("cert") && !entry.contains_key("key") {
                        self.issue(&path, "give cert and key");
                        continue;
                    }
                    if let Some(pair) = self.cert_pair(entry, &path, &[]) {
                        files.push(pair);
                    }
                }
            } else {
                self.wrong_type("tls.certificates", "an array of tables ([[tls.certificates]])", value);
            }
        }
        *tls = files;
    }

    /// A `cert`/`key` pair in `table` at `section`; `None` when absent or wrong. Keys listed in
    /// `others` belong to the section but not to the pair.
    fn cert_pair(&mut self, table: &Table, section: &str, others: &[&str]) -> Option<TlsFiles> {
        let mut cert = None;
        let mut key = None;
        self.walk(table, section, |c, name, value, path| match name {
            "cert" => cert = c.existing_file(value, path),
            "key" => key = c.existing_file(value, path),
            other if others.contains(&other) => {}
            _ => c.unknown(path),
        });
        if table.contains_key("cert") != table.contains_key("key") {
            self.issue(section, "give both cert and key, or neither (for a self-signed certificate)");
        }
        Some(TlsFiles { cert: cert?, key: key? })
    }

    fn log(&mut self, value: &Value, log: &mut LogConfig) {
        self.section(value, "log", |c, key, value, path| match key {
            "level" => set(&mut log.level, c.text(value, path, log_filter)),
            "format" => set(
                &mut log.format,
                c.choice(value, path, &[("text", LogFormat::Text), ("json", LogFormat::Json)]),
            ),
            _ => c.unknown(path),
        });
    }

    // --- walking tables ---------------------------------------------------------------------------

    /// Hands every key of `table` to `read` with its value and dotted path (`section.key`, or
    /// just `key` at the top level). `read` matches on the key and ends with `unknown`.
    fn walk<'v>(
        &mut self,
        table: &'v Table,
        section: &str,
        mut read: impl FnMut(&mut Self, &str, &'v Value, &str),
    ) {
        for (key, value) in table {
            let path = if section.is_empty() { key.clone() } else { format!("{section}.{key}") };
            read(self, key, value, &path);
        }
    }

    /// [`Checker::walk`] over the section at `path`, after checking that it is a table; the
    /// table, or `None` (with the issue recorded) when it is not one.
    fn section<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        read: impl FnMut(&mut Self, &str, &'v Value, &str),
    ) -> Option<&'v Table> {
        let table = self.table(value, path)?;
        self.walk(table, path, read);
        Some(table)
    }

    // --- typed accessors; each records an issue and returns None on a mismatch ------------------

    fn issue(&mut self, path: &str, problem: impl Into<String>) {
        self.issues.push(Issue { path: path.to_owned(), problem: problem.into() });
    }

    fn unknown(&mut self, path: &str) {
        self.issue(path, "unknown key");
    }

    fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        self.issue(path, format!("expected {expected}, found {}", found.type_str()));
    }

    /// The value of a check, or `None` with its problem recorded at `path`.
    fn valid<T>(&mut self, path: &str, checked: Result<T, String>) -> Option<T> {
        checked.map_err(|problem| self.issue(path, problem)).ok()
    }

    fn table<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v Table> {
        match value {
            Value::Table(t) => Some(t),
            other => {
                self.wrong_type(path, "a table", other);
                None
            }
        }
    }

    fn string<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v str> {
        match value {
            Value::String(s) => Some(s),
            other => {
                self.wrong_type(path, "a string", other);
                None
            }
        }
    }

    /// A string turned into a `T` by `parse`, whose error text becomes the issue.
    fn text<T>(
        &mut self,
        value: &Value,
        path: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.string(value, path)?;
        self.valid(path, parse(text))
    }

    /// One of the strings in `choices`, mapped to its value.
    fn choice<T: Copy>(&mut self, value: &Value, path: &str, choices: &[(&str, T)]) -> Option<T> {
        self.text(value, path, |text| match choices.iter().find(|(name, _)| *name == text) {
            Some((_, chosen)) => Ok(*chosen),
            None => {
                let names: Vec<String> = choices.iter().map(|(name, _)| format!("{name:?}")).collect();
                Err(format!("must be {}, found {text:?}", names.join(" or ")))
            }
        })
    }

    fn boolean(&mut self, value: &Value, path: &str) -> Option<bool> {
        match value {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(path, "true or false", other);
                None
            }
        }
    }

    fn integer(&mut self, value: &Value, path: &str, range: RangeInclusive<i64>) -> Option<i64> {
        match value {
            Value::Integer(n) if range.contains(n) => Some(*n),
            Value::Integer(n) => {
                self.issue(path, format!("must be between {} and {}, found {n}", range.start(), range.end()));
                None
            }
            other => {
                self.wrong_type(path, "an integer", other);
                None
            }
        }
    }

    /// An integer in `range`, as the field's type (every range fits the types it is used with).
    fn number<T: TryFrom<i64>>(
        &mut self,
        value: &Value,
        path: &str,
        range: RangeInclusive<i64>,
    ) -> Option<T> {
        let n = self.integer(value, path, range)?;
        self.valid(path, T::try_from(n).map_err(|_| format!("{n} is too large here")))
    }

    fn seconds(&mut self, value: &Value, path: &str, range: RangeInclusive<i64>) -> Option<Duration> {
        let n = self.integer(value, path, range)?;
        Some(Duration::from_secs(n.unsigned_abs()))
    }

    /// A list of strings, each turned into a `T` by `parse`; `expected` describes the list in
    /// the wrong-type message. Every bad item is reported (at `path[i]`); `None` if any was bad.
    fn list<T>(
        &mut self,
        value: &Value,
        path: &str,
        expected: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let Value::Array(items) = value else {
            self.wrong_type(path, expected, value);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(parsed) = self.text(item, &format!("{path}[{i}]"), &parse) {
                out.push(parsed);
            }
        }
        (out.len() == items.len()).then_some(out)
    }

    fn addresses(&mut self, value: &Value, path: &str) -> Option<Vec<SocketAddr>> {
        self.list(value, path, "a list of addresses like [\"127.0.0.1:143\"]", |text| {
            text.parse().map_err(|_| format!("not an IP address with port: {text:?}"))
        })
    }

    fn networks(&mut self, value: &Value, path: &str) -> Option<Vec<IpNet>> {
        self.list(value, path, "a list of networks like [\"127.0.0.0/8\"]", |text| {
            IpNet::parse(text).ok_or_else(|| format!("not an address or network (CIDR): {text:?}"))
        })
    }

    /// A list of strings.
    fn strings(&mut self, value: &Value, path: &str) -> Option<Vec<String>> {
        self.list(value, path, "a list of strings", |text| Ok(text.to_owned()))
    }

    fn existing_file(&mut self, value: &Value, path: &str) -> Option<PathBuf> {
        self.text(value, path, |text| {
            let file = PathBuf::from(text);
            if file.is_file() { Ok(file) } else { Err(format!("no such file: {}", file.display())) }
        })
    }
}

/// One of `tls.names`: a host name or an IP address, kept in lower case (names compare that way).
fn certificate_name(text: &str) -> Result<String, String> {
    let name = text.to_ascii_lowercase();
    match rustls::pki_types::ServerName::try_from(name.as_str()) {
        Ok(_) => Ok(name),
        Err(_) => Err(format!("not a host name or IP address: {text:?}")),
    }
}

/// `log.level`: an `EnvFilter` directive, kept as text (`main` builds the filter).
fn log_filter(level: &str) -> Result<String, String> {
    match tracing_subscriber::EnvFilter::builder().parse(level) {
        Ok(_) => Ok(level.to_owned()),
        Err(e) => Err(format!("not a log level or filter ({e})")),
    }
}

// --- delivery: [lmtp], [delivery], [vacation] ------------------------------------------------

/// The LMTP service (RFC 2033): where the MTA hands mail over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LmtpConfig {
    /// TCP listeners; empty turns LMTP over TCP off.
    pub(crate) listen: Vec<SocketAddr>,
    /// A unix socket path to listen on as well.
    pub(crate) listen_unix: Option<PathBuf>,
    /// Client networks the TCP listeners serve; others get a 554 greeting and are closed. The
    /// unix socket is always served (its directory's permissions decide who reaches it).
    pub(crate) allowed_networks: Vec<IpNet>,
}

impl Default for LmtpConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2424))],
            listen_unix: None,
            allowed_networks: loopback(),
        }
    }
}

/// How delivered mail is mapped and filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeliverySettings {
    /// Local domains (lower case); empty means every domain the MTA sends us.
    pub(crate) domains: Vec<String>,
    /// `Name: value` lines that mark spam.
    pub(crate) spam_headers: Vec<String>,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            spam_headers: vec!["X-Spam-Flag: YES".to_owned(), "X-Spam: Yes".to_owned()],
        }
    }
}

/// Where vacation replies and redirects are sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct VacationConfig {
    /// `host:port` of an SMTP relay that accepts our mail without authentication; `None`
    /// disables vacation replies and redirects.
    pub(crate) smtp_relay: Option<String>,
}

impl Checker {
    fn lmtp(&mut self, value: &Value, lmtp: &mut LmtpConfig) {
        self.section(value, "lmtp", |c, key, value, path| match key {
            "listen" => set(&mut lmtp.listen, c.addresses(value, path)),
            "listen_unix" => {
                let unix =
                    c.text(value, path, non_empty_path("must not be empty (leave the key out instead)"));
                set(&mut lmtp.listen_unix, unix.map(Some));
            }
            "allowed_networks" => set(&mut lmtp.allowed_networks, c.networks(value, path)),
            _ => c.unknown(path),
        });
    }

    fn delivery(&mut self, value: &Value, delivery: &mut DeliverySettings) {
        self.section(value, "delivery", |c, key, value, path| match key {
            "domains" => {
                // The whole list is checked only once every item is a string.
                let domains = c.strings(value, path).and_then(|list| c.valid(path, domain_list(list)));
                set(&mut delivery.domains, domains);
            }
            "spam_headers" => {
                let headers = c.strings(value, path).and_then(|list| {
                    let checked = postfach_delivery::SpamPolicy::parse(&list).map(|_| list);
                    c.valid(path, checked)
                });
                set(&mut delivery.spam_headers, headers);
            }
            _ => c.unknown(path),
        });
    }

    fn vacation(&mut self, value: &Value, vacation: &mut VacationConfig) {
        self.section(value, "vacation", |c, key, value, path| match key {
            "smtp_relay" => set(&mut vacation.smtp_relay, c.text(value, path, smtp_relay).map(Some)),
            _ => c.unknown(path),
        });
    }
}

/// `delivery.domains`: domain names, lower-cased.
fn domain_list(list: Vec<String>) -> Result<Vec<String>, String> {
    match list.iter().find(|d| d.is_empty() || d.contains(|c: char| c.is_whitespace() || c == '@')) {
        Some(d) => Err(format!("not a domain name: {d:?}")),
        None => Ok(list.iter().map(|d| d.to_ascii_lowercase()).collect()),
    }
}

/// `vacation.smtp_relay`: `host:port` with a non-empty host and a non-zero port.
fn smtp_relay(relay: &str) -> Result<String, String> {
    let port_ok = relay
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0));
    if port_ok { Ok(relay.to_owned()) } else { Err(format!("expected \"host:port\", found {relay:?}")) }
}

// --- POP3: [pop3] (issue 18) -------------------------------------------------------------------

/// The POP3 service (RFC 1939). Off by default: it serves only when `listen` or `listen_tls`
/// names an address. Connection caps, the cleartext-login rule and the pre-login deadline are
/// IMAP's (`[imap]`), so one policy covers both protocols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pop3Config {
    /// Cleartext listeners (STLS offered, RFC 2595).
    pub(crate) listen: Vec<SocketAddr>,
    /// Implicit-TLS listeners (RFC 8314, port 995).
    pub(crate) listen_tls: Vec<SocketAddr>,
    /// Client silence allowed in any state (RFC 1939 §3: at least 10 minutes).
    pub(crate) timeout: Duration,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Self { listen: Vec::new(), listen_tls: Vec::new(), timeout: Duration::from_secs(600) }
    }
}

/// Allowed range of `pop3.timeout`, seconds. RFC 1939 §3: an autologout timer MUST be of at
/// least 10 minutes.
const POP3_TIMEOUT_RANGE: RangeInclusive<i64> = 600..=24 * 3600;

impl Checker {
    fn pop3(&mut self, value: &Value, pop3: &mut Pop3Config) {
        self.section(value, "pop3", |c, key, value, path| match key {
            "listen" => set(&mut pop3.listen, c.addresses(value, path)),
            "listen_tls" => set(&mut pop3.listen_tls, c.addresses(value, path)),
            "timeout" => set(&mut pop3.timeout, c.seconds(value, path, POP3_TIMEOUT_RANGE)),
            _ => c.unknown(path),
        });
    }

    /// POP3 addresses listed twice, or also by `[imap]`: the bind would fail with a less helpful
    /// error. Checked once the whole file is read (the sections may come in any order).
    fn pop3_addresses(&mut self, pop3: &Pop3Config, imap: &ImapConfig) {
        let taken: Vec<SocketAddr> = imap.listen.iter().chain(&imap.listen_tls).copied().collect();
        let mut seen = Vec::new();
        for addr in pop3.listen.iter().chain(&pop3.listen_tls) {
            if addr.port() != 0 && (seen.contains(addr) || taken.contains(addr)) {
                self.issue("pop3", format!("address {addr} is listed more than once"));
            }
            seen.push(*addr);
        }
    }
}

// --- bearer tokens: [oauth] (RFC 7628) ---------------------------------------------------------

/// Where tokens come from and how they are checked (`[oauth]`). At least one of `jwks_file`,
/// `jwks_url` and `introspection_url` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthConfig {
    /// The issuer (`iss`) every token must name.
    pub(crate) issuer: String,
    /// Accepted audiences (`aud`); empty: not checked.
    pub(crate) audiences: Vec<String>,
    /// The claim that names the account.
    pub(crate) username_claim: String,
    /// The issuer's signing keys as a JWKS file, re-read on SIGHUP.
    pub(crate) jwks_file: Option<PathBuf>,
    /// The issuer's JWKS URL, fetched at start, every `jwks_refresh`, and when a token names
    /// an unknown key (at most once a minute).
    pub(crate) jwks_url: Option<String>,
    /// How often `jwks_url` is fetched again.
    pub(crate) jwks_refresh: Duration,
    /// RFC 7662 token introspection, for tokens that are not JWTs.
    pub(crate) introspection_url: Option<String>,
    /// The client id for introspection (HTTP Basic).
    pub(crate) client_id: Option<String>,
    /// A file holding the client secret for introspection.
    pub(crate) client_secret_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) trusted for the issuer's HTTPS endpoints.
    pub(crate) ca_file: Option<PathBuf>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub(crate) leeway: Duration,
    /// The scope named in the OAUTHBEARER error.
    pub(crate) scope: Option<String>,
    /// The OpenID configuration URL named in the OAUTHBEARER error.
    pub(crate) openid_configuration: Option<String>,
}

/// Allowed range of `oauth.jwks_refresh`: a minute to a week.
const JWKS_REFRESH_RANGE: RangeInclusive<u64> = 60..=7 * 86_400;
/// Allowed range of `oauth.leeway`: none to ten minutes.
const OAUTH_LEEWAY_RANGE: RangeInclusive<u64> = 0..=600;

/// An issuer endpoint: `https://`, or `http://` to a loopback address only (a token or a key
/// set over the network in the clear could be read or replaced).
fn endpoint_url(text: &str) -> Result<String, String> {
    if text.starts_with("https://") {
        return Ok(text.to_owned());
    }
    let Some(rest) = text.strip_prefix("http://") else {
        return Err(format!("must be an https:// URL, found {text:?}"));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(text.to_owned())
    } else {
        Err(format!("must be https:// (http:// only to loopback), found {text:?}"))
    }
}

impl Checker {
    fn oauth(&mut self, value: &Value) -> Option<OAuthConfig> {
        let mut issuer = None;
        let mut oauth = OAuthConfig {
            issuer: String::new(),
            audiences: Vec::new(),
            username_claim: "email".to_owned(),
            jwks_file: None,
            jwks_url: None,
            jwks_refresh: Duration::from_secs(3600),
            introspection_url: None,
            client_id: None,
            client_secret_file: None,
            ca_file: None,
            leeway: Duration::from_secs(60),
            scope: None,
            openid_configuration: None,
        };
        self.section(value, "oauth", |c, key, value, path| match key {
            "issuer" => issuer = c.text(value, path, non_empty),
            "audience" => {
                oauth.audiences = match value {
                    Value::String(_) => c.text(value, path, non_empty).map(|a| vec![a]),
                    _ => c.strings(value, path),
                }
                .unwrap_or_default();
            }
            "username_claim" => set(&mut oauth.username_claim, c.text(value, path, non_empty)),
            "jwks_file" => oauth.jwks_file = c.existing_file(value, path),
            "jwks_url" => oauth.jwks_url = c.text(value, path, endpoint_url),
            "jwks_refresh" => set(&mut oauth.jwks_refresh, c.duration(value, path, JWKS_REFRESH_RANGE)),
            "introspection_url" => oauth.introspection_url = c.text(value, path, endpoint_url),
            "client_id" => oauth.client_id = c.text(value, path, non_empty),
            "client_secret_file" => oauth.client_secret_file = c.existing_file(value, path),
            "ca_file" => oauth.ca_file = c.existing_file(value, path),
            "leeway" => set(&mut oauth.leeway, c.duration(value, path, OAUTH_LEEWAY_RANGE)),
            "scope" => oauth.scope = c.text(value, path, non_empty),
            "openid_configuration" => oauth.openid_configuration = c.text(value, path, endpoint_url),
            _ => c.unknown(path),
        });
        let Some(issuer) = issuer else {
            self.issue("oauth.issuer", "must be set: the `iss` tokens carry");
            return None;
        };
        oauth.issuer = issuer;
        if oauth.jwks_file.is_none() && oauth.jwks_url.is_none() && oauth.introspection_url.is_none() {
            self.issue("oauth", "needs jwks_file, jwks_url or introspection_url: where tokens are checked");
            return None;
        }
        if oauth.jwks_file.is_some() && oauth.jwks_url.is_some() {
            self.issue("oauth.jwks_url", "set jwks_file or jwks_url, not both");
        }
        if oauth.introspection_url.is_some()
            && (oauth.client_id.is_none() || oauth.client_secret_file.is_none())
        {
            self.issue("oauth.introspection_url", "needs client_id and client_secret_file");
        }
        Some(oauth)
    }
}

// --- the outbound queue: [queue] (issue 17) ---------------------------------------------------

/// How the server sends what delivery queued (vacation replies, redirects, bounces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueConfig {
    /// How long a message is retried before it is given up (and a redirect bounced).
    pub(crate) lifetime: Duration,
    /// Wait after the first failed attempt; it doubles with every further failure.
    pub(crate) retry_min: Duration,
    /// Longest wait between attempts.
    pub(crate) retry_max: Duration,
    /// Messages sent at once (per server).
    pub(crate) concurrency: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        // Postfix's defaults, roughly: 5 days (maximal_queue_lifetime), backoff up to an hour
        // (maximal_backoff_time 4000 s).
        Self {
            lifetime: Duration::from_secs(5 * 86_400),
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            concurrency: 4,
        }
    }
}

/// Allowed range of `queue.lifetime`, seconds: a minute to 30 days.
const QUEUE_LIFETIME_RANGE: RangeInclusive<u64> = 60..=30 * 86_400;
/// Allowed range of `queue.retry_min` and `retry_max`, seconds: a second to a day.
const QUEUE_RETRY_RANGE: RangeInclusive<u64> = 1..=86_400;
/// Allowed range of `queue.concurrency`: the relay is one local MTA.
const QUEUE_CONCURRENCY_RANGE: RangeInclusive<i64> = 1..=64;

impl Checker {
    fn queue(&mut self, value: &Value, queue: &mut QueueConfig) {
        self.section(value, "queue", |c, key, value, path| match key {
            "lifetime" => set(&mut queue.lifetime, c.duration(value, path, QUEUE_LIFETIME_RANGE)),
            "retry_min" => set(&mut queue.retry_min, c.duration(value, path, QUEUE_RETRY_RANGE)),
            "retry_max" => set(&mut queue.retry_max, c.duration(value, path, QUEUE_RETRY_RANGE)),
            "concurrency" => set(&mut queue.concurrency, c.number(value, path, QUEUE_CONCURRENCY_RANGE)),
            _ => c.unknown(path),
        });
        if queue.retry_max < queue.retry_min {
            self.issue("queue.retry_max", "must not be shorter than queue.retry_min");
        }
    }
}

// --- authentication: [auth] (issue 5) --------------------------------------------------------

/// The login policy (see `postfach_auth`'s module documentation for what each knob does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthConfig {
    /// Networks exempt from delays and blocks (default: none, loopback included).
    pub(crate) trusted_networks: Vec<postfach_auth::network::Network>,
    /// Failed logins from one address answered without delay.
    pub(crate) failures_before_delay: u32,
    /// Longest delay before answering a failing address.
    pub(crate) max_delay: Duration,
    /// Failed logins that block an address (0: never block).
    pub(crate) failures_before_block: u32,
    /// How long a block lasts.
    pub(crate) block_time: Duration,
    /// Password failures on one account, from anywhere, before its password attempts are
    /// spaced out (0: never).
    pub(crate) account_failures_before_throttle: u32,
    /// How long an address that logged in to an account stays exempt from that account's
    /// throttle (0: no exemption).
    pub(crate) known_address_time: Duration,
    /// Most such addresses remembered per account.
    pub(crate) known_addresses_per_account: usize,
    /// Issuer shown by authenticator apps for TOTP enrolments.
    pub(crate) totp_issuer: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let policy = postfach_auth::throttle::ThrottlePolicy::default();
        Self {
            trusted_networks: Vec::new(),
            failures_before_delay: policy.free_failures,
            max_delay: policy.max_delay,
            failures_before_block: policy.block_after,
            block_time: policy.block_time,
            account_failures_before_throttle: policy.account_free_failures,
            known_address_time: policy.known_address_ttl,
            known_addresses_per_account: policy.known_addresses_per_account,
            totp_issuer: "Postfach".to_owned(),
        }
    }
}

impl AuthConfig {
    /// The authenticator's settings.
    pub(crate) fn settings(&self) -> postfach_auth::AuthSettings {
        postfach_auth::AuthSettings {
            throttle: postfach_auth::throttle::ThrottlePolicy {
                free_failures: self.failures_before_delay,
                max_delay: self.max_delay,
                block_after: self.failures_before_block,
                block_time: self.block_time,
                account_free_failures: self.account_failures_before_throttle,
                known_address_ttl: self.known_address_time,
                known_addresses_per_account: self.known_addresses_per_account,
                ..postfach_auth::throttle::ThrottlePolicy::default()
            },
            trusted_networks: self.trusted_networks.clone(),
        }
    }
}

/// Allowed range of the `auth.*failures*` counts.
const AUTH_FAILURES_RANGE: RangeInclusive<i64> = 0..=1000;
/// Allowed range of `auth.max_delay`, seconds: longer only holds connections open.
const AUTH_DELAY_RANGE: RangeInclusive<i64> = 0..=60;
/// Allowed range of `auth.block_time`, seconds (a week at most).
const AUTH_BLOCK_RANGE: RangeInclusive<i64> = 1..=7 * 24 * 3600;
/// Allowed range of `auth.known_address_days` (a year at most).
const AUTH_KNOWN_DAYS_RANGE: RangeInclusive<i64> = 0..=365;
/// Allowed range of `auth.known_addresses_per_account` (the memory bound of the list).
const AUTH_KNOWN_PER_ACCOUNT_RANGE: RangeInclusive<i64> = 1..=64;

impl Checker {
    fn auth(&mut self, value: &Value, auth: &mut AuthConfig) {
        self.section(value, "auth", |c, key, value, path| match key {
            "trusted_networks" => {
                let networks =
                    c.list(value, path, "a list of strings", |text| text.parse().map_err(|e| format!("{e}")));
                set(&mut auth.trusted_networks, networks);
            }
            "failures_before_delay" => {
                set(&mut auth.failures_before_delay, c.number(value, path, AUTH_FAILURES_RANGE))
            }
            "failures_before_block" => {
                set(&mut auth.failures_before_block, c.number(value, path, AUTH_FAILURES_RANGE))
            }
            "account_failures_before_throttle" => {
                set(&mut auth.account_failures_before_throttle, c.number(value, path, AUTH_FAILURES_RANGE))
            }
            "max_delay" => set(&mut auth.max_delay, c.seconds(value, path, AUTH_DELAY_RANGE)),
            "block_time" => set(&mut auth.block_time, c.seconds(value, path, AUTH_BLOCK_RANGE)),
            "known_address_days" => {
                let days: Option<u64> = c.number(value, path, AUTH_KNOWN_DAYS_RANGE);
                set(&mut auth.known_address_time, days.map(|d| Duration::from_secs(d * 24 * 3600)));
            }
            "known_addresses_per_account" => set(
                &mut auth.known_addresses_per_account,
                c.number(value, path, AUTH_KNOWN_PER_ACCOUNT_RANGE),
            ),
            "totp_issuer" => set(&mut auth.totp_issuer, c.text(value, path, totp_issuer)),
            _ => c.unknown(path),
        });
    }
}

/// `auth.totp_issuer`: shown by authenticator apps; ':' separates issuer and account in the
/// `otpauth://` label, so it may not appear in the name.
fn totp_issuer(issuer: &str) -> Result<String, String> {
    if issuer.trim().is_empty() || issuer.contains(':') {
        Err("must be a non-empty name without ':'".to_owned())
    } else {
        Ok(issuer.to_owned())
    }
}

// --- quotas: [quota] (RFC 9208) ---------------------------------------------------------------

/// The installation's default quota of every account and team (each may have its own, set with
/// `postfach quota set`), and what delivery answers when a recipient is over it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct QuotaConfig {
    /// Bytes of mail (`storage`); `None`: unlimited.
    pub(crate) storage: Option<u64>,
    /// Messages (`messages`); `None`: unlimited.
    pub(crate) messages: Option<u64>,
    /// Mailboxes (`mailboxes`); `None`: `imap.max_mailboxes`.
    pub(crate) mailboxes: Option<u32>,
    /// The LMTP answer (and `deliver` exit code) for a recipient over quota.
    pub(crate) over_quota: OverQuotaAnswer,
    /// The sender of quota warnings; `None`: `postmaster@<host name>`.
    pub(crate) postmaster: Option<String>,
}

impl Config {
    /// Most mailboxes an account may have by default: `quota.mailboxes`, else the older
    /// `imap.max_mailboxes` (which stays valid, and is the default's default).
    pub(crate) fn max_mailboxes(&self) -> u32 {
        self.quota.mailboxes.unwrap_or(self.imap.max_mailboxes)
    }

    /// The default quota limits of every account and team, for the store.
    pub(crate) fn default_quota(&self) -> postfach_store::QuotaLimits {
        postfach_store::QuotaLimits {
            storage: self.quota.storage,
            messages: self.quota.messages,
            mailboxes: Some(u64::from(self.max_mailboxes())),
        }
    }
}

/// Allowed range of `quota.storage`, bytes: 1 KiB to 1 PiB.
const QUOTA_STORAGE_RANGE: RangeInclusive<u64> = 1024..=1 << 50;
/// Allowed range of `quota.messages`.
const QUOTA_MESSAGES_RANGE: RangeInclusive<i64> = 1..=1_000_000_000_000;

impl Checker {
    fn quota(&mut self, value: &Value, quota: &mut QuotaConfig) {
        self.section(value, "quota", |c, key, value, path| match key {
            "storage" => set(&mut quota.storage, c.size(value, path, QUOTA_STORAGE_RANGE).map(Some)),
            "messages" => set(&mut quota.messages, c.number(value, path, QUOTA_MESSAGES_RANGE).map(Some)),
            "mailboxes" => set(&mut quota.mailboxes, c.number(value, path, MAILBOXES_RANGE).map(Some)),
            "over_quota" => set(
                &mut quota.over_quota,
                c.choice(
                    value,
                    path,
                    &[("temporary", OverQuotaAnswer::Temporary), ("permanent", OverQuotaAnswer::Permanent)],
                ),
            ),
            "postmaster" => set(&mut quota.postmaster, c.text(value, path, mail_address).map(Some)),
            _ => c.unknown(path),
        });
    }

    /// A size in bytes: an integer, or a string with a binary unit (`"10G"`, `"512 MiB"`),
    /// within `range`.
    fn size(&mut self, value: &Value, path: &str, range: RangeInclusive<u64>) -> Option<u64> {
        let bytes = match value {
            Value::Integer(n) => u64::try_from(*n).map_err(|_| format!("must not be negative, found {n}")),
            Value::String(text) => crate::quota::parse_size(text),
            other => {
                self.wrong_type(path, "a size like \"10G\" or a number of bytes", other);
                return None;
            }
        };
        let bytes = self.valid(path, bytes)?;
        let checked = if range.contains(&bytes) {
            Ok(bytes)
        } else {
            Err(format!(
                "must be between {} and {}, found {}",
                crate::quota::human_bytes(*range.start()),
                crate::quota::human_bytes(*range.end()),
                crate::quota::human_bytes(bytes)
            ))
        };
        self.valid(path, checked)
    }
}

/// `quota.postmaster`: an addr-spec (`local@domain`), no display name or brackets.
fn mail_address(text: &str) -> Result<String, String> {
    let valid = text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && text
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '"'))
    });
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!("not a mail address like \"postmaster@example.org\": {text:?}"))
    }
}

// --- operations: [cleanup], [metrics] (issue 14) ----------------------------------------------

/// Automatic clean-up: messages in `\Trash` and `\Junk` mailboxes older (by save date) than a
/// limit are expunged by the server itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CleanupConfig {
    /// Days messages stay in Trash (0: never removed); an account's own setting wins.
    pub(crate) trash_days: u32,
    /// Days messages stay in Junk (0: never removed); an account's own setting wins.
    pub(crate) junk_days: u32,
    /// Time between passes.
    pub(crate) every: Duration,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        Self { trash_days: 30, junk_days: 30, every: Duration::from_secs(3600) }
    }
}

/// The metrics endpoint (`/metrics` in Prometheus' text format, `/health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct MetricsConfig {
    /// Where to listen; `None` (the default): no endpoint.
    pub(crate) listen: Option<SocketAddr>,
    /// Allow a non-loopback `listen` address (the endpoint has no authentication).
    pub(crate) allow_remote: bool,
}

/// `[store] pool_size`: connections to PostgreSQL per node.
pub(crate) const POOL_SIZE_RANGE: RangeInclusive<i64> = 1..=1000;

/// Allowed range of `cleanup.trash_days` and `cleanup.junk_days` (0: never; ten years at most).
pub(crate) const CLEANUP_DAYS_RANGE: RangeInclusive<i64> = 0..=3650;
/// Allowed range of `cleanup.every`, seconds (a day at most: a limit is counted in days).
const CLEANUP_EVERY_RANGE: RangeInclusive<i64> = 1..=24 * 3600;

impl Checker {
    fn cleanup(&mut self, value: &Value, cleanup: &mut CleanupConfig) {
        self.section(value, "cleanup", |c, key, value, path| match key {
            "trash_days" => set(&mut cleanup.trash_days, c.number(value, path, CLEANUP_DAYS_RANGE)),
            "junk_days" => set(&mut cleanup.junk_days, c.number(value, path, CLEANUP_DAYS_RANGE)),
            "every" => set(&mut cleanup.every, c.seconds(value, path, CLEANUP_EVERY_RANGE)),
            _ => c.unknown(path),
        });
    }

    fn store(&mut self, value: &Value, store: &mut StoreConfig) {
        let read = self.section(value, "store", |c, key, value, path| match key {
            "backend" => set(
                &mut store.backend,
                c.choice(
                    value,
                    path,
                    &[("sqlite", StoreBackend::Sqlite), ("postgres", StoreBackend::Postgres)],
                ),
            ),
            "url" => set(&mut store.url, c.text(value, path, |t| non_empty(t).map(Some))),
            "password_file" => set(
                &mut store.password_file,
                c.text(value, path, non_empty_path("must not be empty")).map(Some),
            ),
            "password_env" => set(&mut store.password_env, c.text(value, path, |t| non_empty(t).map(Some))),
            "pool_size" => set(&mut store.pool_size, c.number(value, path, POOL_SIZE_RANGE).map(Some)),
            "tls_ca_file" => set(
                &mut store.tls_ca_file,
                c.text(value, path, non_empty_path("must not be empty")).map(Some),
            ),
            _ => c.unknown(path),
        });
        if read.is_none() {
            return;
        }
        let postgres_only = store.url.is_some()
            || store.password_file.is_some()
            || store.password_env.is_some()
            || store.pool_size.is_some()
            || store.tls_ca_file.is_some();
        match store.backend {
            StoreBackend::Postgres if store.url.is_none() => {
                self.issue("store.url", "required with backend = \"postgres\"");
            }
            StoreBackend::Sqlite if postgres_only => {
                self.issue(
                    "store.backend",
                    "url and password settings are only read with backend = \"postgres\"",
                );
            }
            _ => {}
        }
        if store.password_file.is_some() && store.password_env.is_some() {
            self.issue("store.password_file", "password_env is set too: keep one");
        }
    }

    fn metrics(&mut self, value: &Value, metrics: &mut MetricsConfig) {
        let read = self.section(value, "metrics", |c, key, value, path| match key {
            "listen" => {
                let addr = c.text(value, path, |text| {
                    text.parse::<SocketAddr>().map_err(|_| format!("not an IP address with port: {text:?}"))
                });
                set(&mut metrics.listen, addr.map(Some));
            }
            "allow_remote" => set(&mut metrics.allow_remote, c.boolean(value, path)),
            _ => c.unknown(path),
        });
        if read.is_none() {
            return;
        }
        if let Some(addr) = metrics.listen
            && !addr.ip().is_loopback()
            && !metrics.allow_remote
        {
            self.issue(
                "metrics.listen",
                format!(
                    "{addr} is not a loopback address: the endpoint has no authentication; \
                     set allow_remote = true to serve it there anyway"
                ),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod ops_tests {
    use super::*;

    #[test]
    fn store_section() {
        assert_eq!(Config::from_toml("").unwrap().store, StoreConfig::default());
        let c = Config::from_toml(
            "[store]\nbackend = \"postgres\"\nurl = \"host=db user=postfach\"\npassword_file = \"/run/pw\"\n",
        )
        .unwrap();
        assert_eq!(c.store.backend, StoreBackend::Postgres);
        assert_eq!(c.store.url.as_deref(), Some("host=db user=postfach"));
        assert_eq!(c.store.password_file, Some(PathBuf::from("/run/pw")));
        assert_eq!(
            issues("[store]\nbackend = \"postgres\"\n"),
            vec!["store.url: required with backend = \"postgres\"".to_owned()]
        );
        assert_eq!(issues("[store]\nurl = \"x\"\n").len(), 1);
        assert_eq!(issues("[store]\nbackend = \"mysql\"\n").len(), 1);
        assert_eq!(
            issues(
                "[store]\nbackend = \"postgres\"\nurl = \"x\"\npassword_env = \"P\"\npassword_file = \"f\"\n"
            )
            .len(),
            1
        );
    }

    fn issues(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Err(ParseFailure::Invalid(issues)) => issues.iter().map(Issue::to_string).collect(),
            other => panic!("expected issues, got {other:?}"),
        }
    }

    #[test]
    fn managesieve_section_is_read_and_checked() {
        assert_eq!(Config::default().managesieve.listen, vec!["127.0.0.1:4190".parse().unwrap()]);
        let c = Config::from_toml("[managesieve]\nlisten = []\n").unwrap();
        assert!(c.managesieve.listen.is_empty(), "an empty list turns ManageSieve off");
        let c = Config::from_toml("[managesieve]\nlisten = [\"127.0.0.1:0\", \"[::1]:4190\"]\n").unwrap();
        assert_eq!(c.managesieve.listen.len(), 2);
        assert_eq!(
            issues("[managesieve]\nlisten = [\"localhost\"]\nport = 4190\n"),
            vec![
                "managesieve.listen[0]: not an IP address with port: \"localhost\"",
                "managesieve.port: unknown key",
            ]
        );
    }

    #[test]
    fn web_section_is_read_and_checked() {
        let d = Config::default().web;
        assert_eq!(d.listen, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert!(d.listen_tls.is_empty());
        assert_eq!(d.session_idle, Duration::from_secs(900));
        let c = Config::from_toml("[web]\nlisten = []\nlisten_tls = [\"127.0.0.1:0\"]\nsession_idle = 120\n")
            .unwrap();
        assert!(c.web.listen.is_empty(), "an empty list turns plain HTTP off");
        assert_eq!(c.web.listen_tls.len(), 1);
        assert_eq!(c.web.session_idle, Duration::from_secs(120));
        assert_eq!(
            issues("[web]\nlisten = [\"0.0.0.0:80\"]\nsession_idle = 5\ncookie = 1\n"),
            vec![
                "web.cookie: unknown key",
                "web.session_idle: must be between 60 and 86400, found 5",
                "web.listen: 0.0.0.0:80 is not a loopback address: passwords would cross the network in \
                 the clear; use listen_tls, or set allow_remote_plaintext = true behind a TLS proxy",
            ]
        );
        let c =
            Config::from_toml("[web]\nlisten = [\"0.0.0.0:80\"]\nallow_remote_plaintext = true\n").unwrap();
        assert!(c.web.allow_remote_plaintext);
    }

    #[test]
    fn cleanup_and_metrics_sections_are_read_and_checked() {
        let c = Config::default();
        assert_eq!(
            c.cleanup,
            CleanupConfig { trash_days: 30, junk_days: 30, every: Duration::from_secs(3600) }
        );
        assert_eq!(c.metrics, MetricsConfig { listen: None, allow_remote: false });

        let c = Config::from_toml(
            "[cleanup]\ntrash_days = 7\njunk_days = 0\nevery = 60\n[metrics]\nlisten = \"127.0.0.1:9464\"\n",
        )
        .unwrap();
        assert_eq!(c.cleanup, CleanupConfig { trash_days: 7, junk_days: 0, every: Duration::from_secs(60) });
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9464".parse().unwrap()));
        let c = Config::from_toml("[metrics]\nlisten = \"[::]:9464\"\nallow_remote = true\n").unwrap();
        assert!(c.metrics.allow_remote);

        assert_eq!(
            issues("[cleanup]\ntrash_days = -1\nevery = 0\nfoo = 1\n[metrics]\nlisten = \"0.0.0.0:9464\"\n"),
            vec![
                "cleanup.every: must be between 1 and 86400, found 0",
                "cleanup.foo: unknown key",
                "cleanup.trash_days: must be between 0 and 3650, found -1",
                "metrics.listen: 0.0.0.0:9464 is not a loopback address: the endpoint has no authentication; \
                 set allow_remote = true to serve it there anyway",
            ]
        );
        assert_eq!(
            issues("[metrics]\nlisten = \"localhost\"\n"),
            vec!["metrics.listen: not an IP address with port: \"localhost\""]
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod quota_tests {
    use super::*;

    fn issues(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Err(ParseFailure::Invalid(issues)) => issues.iter().map(Issue::to_string).collect(),
            other => panic!("expected issues, got {other:?}"),
        }
    }

    #[test]
    fn quota_section_is_read_and_checked() {
        // Defaults: unlimited storage and messages, imap.max_mailboxes mailboxes, 452 over quota.
        let c = Config::default();
        assert_eq!(c.quota, QuotaConfig::default());
        assert_eq!(c.quota.over_quota, OverQuotaAnswer::Temporary);
        assert_eq!(
            c.default_quota(),
            postfach_store::QuotaLimits { storage: None, messages: None, mailboxes: Some(10_000) }
        );

        let c = Config::from_toml(
            "[quota]\nstorage = \"10G\"\nmessages = 1000000\nmailboxes = 50\nover_quota = \"permanent\"\n\
             postmaster = \"postmaster@example.org\"\n",
        )
        .unwrap();
        assert_eq!(c.quota.storage, Some(10 << 30));
        assert_eq!(c.quota.messages, Some(1_000_000));
        assert_eq!(c.max_mailboxes(), 50);
        assert_eq!(c.quota.over_quota, OverQuotaAnswer::Permanent);
        assert_eq!(c.quota.postmaster.as_deref(), Some("postmaster@example.org"));
        assert_eq!(
            c.default_quota(),
            postfach_store::QuotaLimits {
                storage: Some(10 << 30),
                messages: Some(1_000_000),
                mailboxes: Some(50)
            }
        );
        // Bytes as an integer; the older key still sets the mailbox default.
        let c = Config::from_toml("[quota]\nstorage = 1048576\n[imap]\nmax_mailboxes = 20\n").unwrap();
        assert_eq!(c.quota.storage, Some(1_048_576));
        assert_eq!(c.default_quota().mailboxes, Some(20));

        assert_eq!(
            issues(
                "[imap]\nmax_mailboxes = 20\n[quota]\nstorage = \"10X\"\nmessages = 0\nmailboxes = 30\n\
                 over_quota = \"bounce\"\npostmaster = \"nobody\"\ncolour = 1\n"
            ),
            vec![
                "quota.colour: unknown key",
                "quota.messages: must be between 1 and 1000000000000, found 0",
                "quota.over_quota: must be \"temporary\" or \"permanent\", found \"bounce\"",
                "quota.postmaster: not a mail address like \"postmaster@example.org\": \"nobody\"",
                "quota.storage: not a size: \"10X\" (a number with K, M, G or T)",
                "quota.mailboxes: imap.max_mailboxes is set too: keep one (quota.mailboxes replaces it)",
            ]
        );
        assert_eq!(
            issues("[quota]\nstorage = \"1\"\n"),
            vec!["quota.storage: must be between 1 KiB and 1 PiB, found 1 B"]
        );
        assert_eq!(issues("[quota]\nstorage = -5\n"), vec!["quota.storage: must not be negative, found -5"]);
    }
}

// --- scheduled backups: [backup] (issue 14) ---------------------------------------------------

/// Backups the server takes by itself (`postfach backup create` works without any of this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackupConfig {
    /// Where the scheduled backups go, one directory each (`YYYYMMDDTHHMMSSZ`); `None` (the
    /// default) turns scheduled backups off.
    pub(crate) dir: Option<PathBuf>,
    /// Time from one backup's start to the next one's.
    pub(crate) every: Duration,
    /// Backups kept in `dir`; the oldest beyond it are deleted once a new one has succeeded.
    pub(crate) keep: usize,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self { dir: None, every: Duration::from_secs(24 * 3600), keep: 7 }
    }
}

/// Allowed range of `backup.every`, seconds: a year at most.
const BACKUP_EVERY_RANGE: RangeInclusive<u64> = 1..=366 * 24 * 3600;
/// Allowed range of `backup.keep`.
const BACKUP_KEEP_RANGE: RangeInclusive<i64> = 1..=10_000;

impl Checker {
    fn backup(&mut self, value: &Value, backup: &mut BackupConfig) {
        self.section(value, "backup", |c, key, value, path| match key {
            "dir" => {
                let dir =
                    c.text(value, path, non_empty_path("must not be empty (leave the key out instead)"));
                set(&mut backup.dir, dir.map(Some));
            }
            "every" => set(&mut backup.every, c.duration(value, path, BACKUP_EVERY_RANGE)),
            "keep" => set(&mut backup.keep, c.number(value, path, BACKUP_KEEP_RANGE)),
            _ => c.unknown(path),
        });
    }

    /// A duration: a string of numbers with units (`"24h"`, `"90m"`, `"1h30m"`, `"7d"`, `"2s"`)
    /// or an integer of seconds, in `range` (seconds).
    fn duration(&mut self, value: &Value, path: &str, range: RangeInclusive<u64>) -> Option<Duration> {
        let seconds = match value {
            Value::String(text) => self.valid(path, duration_seconds(text))?,
            Value::Integer(n) => u64::try_from(*n).unwrap_or(0),
            other => {
                self.wrong_type(path, "a duration like \"24h\" or a number of seconds", other);
                return None;
            }
        };
        if !range.contains(&seconds) {
            self.issue(
                path,
                format!("must be between {}s and {}s, found {seconds}s", range.start(), range.end()),
            );
            return None;
        }
        Some(Duration::from_secs(seconds))
    }
}

/// `"1h30m"` → 5400: numbers each followed by a unit (`d`, `h`, `m`, `s`), largest first.
fn duration_seconds(text: &str) -> Result<u64, String> {
    let bad = || format!("not a duration like \"24h\", \"30m\", \"1h30m\" or \"7d\": {text:?}");
    let mut total: u64 = 0;
    let mut rest = text.trim();
    let mut last_unit = u64::MAX;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = match rest[digits..].chars().next() {
            Some('d') => 24 * 3600,
            Some('h') => 3600,
            Some('m') => 60,
            Some('s') => 1,
            _ => return Err(bad()),
        };
        if unit >= last_unit {
            return Err(bad());
        }
        last_unit = unit;
        total = number.checked_mul(unit).and_then(|n| total.checked_add(n)).ok_or_else(bad)?;
        rest = &rest[digits + 1..];
    }
    Ok(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod queue_tests {
    use super::*;

    #[test]
    fn queue_settings() {
        let c = Config::from_toml(
            "[queue]\nlifetime = \"2d\"\nretry_min = \"5s\"\nretry_max = \"10m\"\nconcurrency = 2\n",
        )
        .unwrap();
        assert_eq!(c.queue.lifetime, Duration::from_secs(2 * 86_400));
        assert_eq!(
            (c.queue.retry_min, c.queue.retry_max),
            (Duration::from_secs(5), Duration::from_secs(600))
        );
        assert_eq!(c.queue.concurrency, 2);
        let Err(ParseFailure::Invalid(issues)) =
            Config::from_toml("[queue]\nretry_min = \"2h\"\nretry_max = \"1h\"\nconcurrency = 0\n")
        else {
            panic!("expected issues");
        };
        let e: Vec<String> = issues.iter().map(Issue::to_string).collect();
        assert!(e.iter().any(|i| i.starts_with("queue.retry_max: must not be shorter")), "{e:?}");
        assert!(e.iter().any(|i| i.starts_with("queue.concurrency")), "{e:?}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod backup_tests {
    use super::*;

    #[test]
    fn backup_section_is_read_and_checked() {
        let c = Config::from_toml("[backup]\ndir = \"/var/backups/postfach\"\nevery = \"1h30m\"\nkeep = 2\n")
            .unwrap();
        assert_eq!(c.backup.dir, Some(PathBuf::from("/var/backups/postfach")));
        assert_eq!(c.backup.every, Duration::from_secs(5400));
        assert_eq!(c.backup.keep, 2);
        assert_eq!(
            Config::from_toml("[backup]\nevery = 60\n").unwrap().backup.every,
            Duration::from_secs(60)
        );
        assert_eq!(
            Config::default().backup,
            BackupConfig { dir: None, every: Duration::from_secs(86_400), keep: 7 }
        );

        let Err(ParseFailure::Invalid(issues)) =
            Config::from_toml("[backup]\ndir = \"\"\nevery = \"soon\"\nkeep = 0\nwhen = 1\n")
        else {
            panic!("expected issues");
        };
        let issues: Vec<String> = issues.iter().map(Issue::to_string).collect();
        for expected in [
            "backup.dir: must not be empty",
            "backup.every: not a duration",
            "backup.keep: must be between 1 and 10000",
            "backup.when: unknown key",
        ] {
            assert!(issues.iter().any(|i| i.starts_with(expected)), "missing {expected}: {issues:?}");
        }
        let Err(ParseFailure::Invalid(issues)) = Config::from_toml("[backup]\nevery = \"0s\"\n") else {
            panic!("expected issues");
        };
        assert!(issues[0].problem.starts_with("must be between 1s"), "{issues:?}");
    }

    #[test]
    fn durations() {
        for (text, seconds) in
            [("24h", 86_400), ("2s", 2), ("1h30m", 5400), ("7d", 604_800), ("1d2h3m4s", 93_784)]
        {
            assert_eq!(duration_seconds(text), Ok(seconds), "{text}");
        }
        for bad in ["", "h", "24", "24x", "30m1h", "1h1h", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(duration_seconds(bad).is_err(), "{bad:?} was accepted");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod auth_tests {
    use super::*;

    #[test]
    fn auth_section_is_read_and_checked() {
        let c = Config::from_toml(
            "[auth]\ntrusted_networks = [\"10.0.0.0/8\", \"::1\"]\nfailures_before_delay = 1\n\
             max_delay = 0\nfailures_before_block = 4\nblock_time = 60\n\
             account_failures_before_throttle = 0\nknown_address_days = 7\nknown_addresses_per_account = 3\n\
             totp_issuer = \"Example Mail\"\n",
        )
        .unwrap();
        assert_eq!(c.auth.trusted_networks.len(), 2);
        let settings = c.auth.settings();
        assert!(settings.trusted_networks[0].contains("10.1.2.3".parse().unwrap()));
        assert_eq!(settings.throttle.free_failures, 1);
        assert_eq!(settings.throttle.max_delay, Duration::ZERO);
        assert_eq!(settings.throttle.block_after, 4);
        assert_eq!(settings.throttle.block_time, Duration::from_secs(60));
        assert_eq!(settings.throttle.account_free_failures, 0);
        assert_eq!(settings.throttle.known_address_ttl, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(settings.throttle.known_addresses_per_account, 3);
        assert_eq!(c.auth.totp_issuer, "Example Mail");
        // Defaults: nothing trusted, not even loopback.
        assert!(Config::default().auth.trusted_networks.is_empty());

        let Err(ParseFailure::Invalid(issues)) = Config::from_toml(
            "[auth]\ntrusted_networks = [\"10.0.0.0/33\"]\nmax_delay = 3600\ntotp_issuer = \"a:b\"\nfoo = 1\n",
        ) else {
            panic!("expected issues");
        };
        let issues: Vec<String> = issues.iter().map(Issue::to_string).collect();
        for expected in [
            "auth.trusted_networks[0]: not an IP",
            "auth.max_delay: must be between 0 and 60",
            "auth.totp_issuer",
            "auth.foo: unknown key",
        ] {
            assert!(issues.iter().any(|i| i.starts_with(expected)), "missing {expected}: {issues:?}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn issues(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Err(ParseFailure::Invalid(issues)) => issues.iter().map(Issue::to_string).collect(),
            other => panic!("expected issues, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
        assert_eq!(Config::load(None).unwrap(), Config::default());
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let c = Config::default();
        assert_eq!(c.data_dir, PathBuf::from("./postfach-data"));
        assert_eq!(c.imap.listen, vec!["127.0.0.1:1143".parse().unwrap()]);
        assert_eq!(c.imap.listen_tls, vec!["127.0.0.1:1993".parse().unwrap()]);
        assert!(!c.imap.allow_plaintext_auth);
        assert_eq!(c.imap.max_message_size, 52_428_800);
        assert_eq!(c.imap.max_connections, 10_000);
        assert_eq!(c.imap.max_connections_per_address, 100);
        assert_eq!(c.imap.max_connections_per_account, 50);
        assert_eq!(c.imap.connection_limit_exempt, loopback());
        assert_eq!(c.imap.preauth_deadline, Duration::from_secs(120));
        assert_eq!(c.imap.max_line_length, 65_536);
        assert_eq!(c.imap.max_mailboxes, 10_000);
        assert_eq!(c.imap.preauth_timeout, Duration::from_secs(60));
        assert_eq!(c.imap.auth_timeout, Duration::from_secs(1800));
        assert_eq!(c.imap.idle_keepalive, Duration::from_secs(120));
        assert!(c.tls.is_empty());
        assert_eq!(c.log, LogConfig { level: "info".into(), format: LogFormat::Text });
    }

    #[test]
    fn metadata_limits_and_admin_contact() {
        let c = Config::from_toml(
            "[imap]\nmetadata_max_size = 1024\nmetadata_max_entries = 10\nmetadata_max_account_entries = 50\n\
             admin_contact = \"mailto:postmaster@example.org\"\n",
        )
        .unwrap();
        assert_eq!(
            (c.imap.metadata_max_size, c.imap.metadata_max_entries, c.imap.metadata_max_account_entries),
            (1024, 10, 50)
        );
        assert_eq!(c.imap.admin_contact.as_deref(), Some("mailto:postmaster@example.org"));
        assert_eq!(
            Config::from_toml("[imap]\nprogress_interval = 0\n").unwrap().imap.progress_interval,
            Duration::ZERO
        );
        assert_eq!(Config::default().imap.admin_contact, None);
        assert_eq!(
            issues(
                "[imap]\nmetadata_max_size = 100\nmetadata_max_entries = 9\nadmin_contact = \"call me\"\n"
            ),
            vec![
                "imap.admin_contact: not a URI such as \"mailto:postmaster@example.org\"",
                "imap.metadata_max_entries: must be between 10 and 100000, found 9",
                "imap.metadata_max_size: must be between 1024 and 16777216, found 100",
            ]
        );
    }

    /// The documented example must stay in step with the code: it lists exactly the defaults.
    #[test]
    fn example_file_shows_the_defaults() {
        let example = include_str!("../../../postfach.example.toml");
        assert_eq!(Config::from_toml(example).unwrap(), Config::default());
    }

    #[test]
    fn full_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "x").unwrap();
        std::fs::write(&key, "x").unwrap();
        let text = format!(
            r#"
            data_dir = "/var/lib/postfach"
            [imap]
            listen = ["0.0.0.0:143", "[::]:143"]
            listen_tls = []
            allow_plaintext_auth = true
            max_message_size = 1048576
            max_connections = 5
            max_line_length = 8192
            max_mailboxes = 50
            preauth_timeout = 1
            auth_timeout = 3600
            idle_keepalive = 30
            [tls]
            cert = {cert:?}
            key = {key:?}
            [log]
            level = "postfach=debug,warn"
            format = "json"
            "#
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/postfach"));
        assert_eq!(c.imap.listen.len(), 2);
        assert!(c.imap.listen_tls.is_empty());
        assert!(c.imap.allow_plaintext_auth);
        assert_eq!(c.imap.max_message_size, 1_048_576);
        assert_eq!(c.imap.max_connections, 5);
        assert_eq!(c.imap.max_line_length, 8192);
        assert_eq!(c.imap.max_mailboxes, 50);
        assert_eq!(c.imap.preauth_timeout, Duration::from_secs(1));
        assert_eq!(c.imap.auth_timeout, Duration::from_secs(3600));
        assert_eq!(c.imap.idle_keepalive, Duration::from_secs(30));
        assert_eq!(c.tls, vec![TlsFiles { cert, key }]);
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.log.level, "postfach=debug,warn");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let found = issues(
            r#"
            data_dir = 7
            colour = "blue"
            [imap]
            listen = ["127.0.0.1:143", "localhost", 5]
            max_connections = 0
            auth_timeout = 60
            max_message_size = "big"
            typo = true
            [tls]
            cert = "/nonexistent/cert.pem"
            [log]
            format = "xml"
            level = "[[["
            "#,
        );
        let expected = [
            "data_dir: expected a string, found integer",
            "colour: unknown key",
            "imap.listen[1]: not an IP address with port",
            "imap.listen[2]: expected a string, found integer",
            "imap.max_connections: must be between 1 and 1000000, found 0",
            "imap.auth_timeout: must be between 1800",
            "imap.max_message_size: expected an integer, found string",
            "imap.typo: unknown key",
            "tls.cert: no such file",
            "tls: give both cert and key",
            "log.format: must be \"text\" or \"json\"",
            "log.level: not a log level",
        ];
        for e in expected {
            assert!(found.iter().any(|f| f.starts_with(e)), "missing {e:?} in {found:#?}");
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
    }

    /// Every bad item of a list is reported, each at its own index, and the default stays.
    #[test]
    fn every_bad_list_item_is_reported() {
        assert_eq!(
            issues("[imap]\nlisten = [\"x\", 5, \"127.0.0.1:143\", \"y\"]\n[log]\nformat = 1\n"),
            vec![
                "imap.listen[0]: not an IP address with port: \"x\"",
                "imap.listen[1]: expected a string, found integer",
                "imap.listen[3]: not an IP address with port: \"y\"",
                "log.format: expected a string, found integer",
            ]
        );
        let c = Config::from_toml("[lmtp]\nlisten_unix = \"/run/l\"\n[vacation]\nsmtp_relay = \"h:25\"\n")
            .unwrap();
        assert_eq!(c.lmtp.listen_unix, Some(PathBuf::from("/run/l")));
        assert_eq!(c.vacation.smtp_relay.as_deref(), Some("h:25"));
    }

    #[test]
    fn pop3_is_off_by_default_and_checked() {
        let c = Config::from_toml("").unwrap();
        assert!(c.pop3.listen.is_empty() && c.pop3.listen_tls.is_empty());
        let c = Config::from_toml("[pop3]\nlisten_tls = [\"127.0.0.1:995\"]\ntimeout = 900\n").unwrap();
        assert_eq!(c.pop3.listen_tls, vec![SocketAddr::from(([127, 0, 0, 1], 995))]);
        assert_eq!(c.pop3.timeout, Duration::from_secs(900));
        assert_eq!(
            issues(
                "[imap]\nlisten = [\"127.0.0.1:1143\"]\n\
                 [pop3]\nlisten = [\"127.0.0.1:1143\"]\ntimeout = 60\nuser = true\n"
            ),
            vec![
                "pop3.timeout: must be between 600 and 86400, found 60",
                "pop3.user: unknown key",
                "pop3: address 127.0.0.1:1143 is listed more than once",
            ]
        );
    }

    #[test]
    fn sections_must_be_tables() {
        assert_eq!(
            issues("imap = 3\nlog = []"),
            vec!["imap: expected a table, found integer", "log: expected a table, found array"]
        );
    }

    #[test]
    fn no_listener_and_duplicate_listener_are_rejected() {
        assert_eq!(
            issues("[imap]\nlisten = []\nlisten_tls = []"),
            vec!["imap: listen and listen_tls are both empty: nothing to serve"]
        );
        assert_eq!(
            issues("[imap]\nlisten = [\"127.0.0.1:143\"]\nlisten_tls = [\"127.0.0.1:143\"]"),
            vec!["imap: address 127.0.0.1:143 is listed more than once"]
        );
        // Port 0 means "any free port": repeating it is fine (the tests do).
        assert!(
            Config::from_toml("[imap]\nlisten = [\"127.0.0.1:0\"]\nlisten_tls = [\"127.0.0.1:0\"]").is_ok()
        );
    }

    #[test]
    fn networks_parse_and_match() {
        let net = IpNet::parse("192.0.2.0/24").unwrap();
        assert!(net.contains("192.0.2.200".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        // An IPv4 client seen through a dual-stack socket.
        assert!(net.contains("::ffff:192.0.2.7".parse().unwrap()));
        let v6 = IpNet::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        assert!(!v6.contains("192.0.2.1".parse().unwrap()));
        let host = IpNet::parse("10.1.2.3").unwrap();
        assert!(host.contains("10.1.2.3".parse().unwrap()) && !host.contains("10.1.2.4".parse().unwrap()));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "x", "10.0.0.0/", "10.0.0.0/-1"] {
            assert_eq!(IpNet::parse(bad), None, "{bad}");
        }
        assert_eq!(IpNet::parse("::1").unwrap().to_string(), "::1/128");
    }

    #[test]
    fn connection_limits_are_read_and_checked() {
        let c = Config::from_toml(
            "[imap]\nmax_connections_per_address = 3\nmax_connections_per_account = 2\n\
             connection_limit_exempt = [\"10.0.0.0/8\"]\npreauth_deadline = 30\n",
        )
        .unwrap();
        assert_eq!(c.imap.max_connections_per_address, 3);
        assert_eq!(c.imap.max_connections_per_account, 2);
        assert_eq!(c.imap.connection_limit_exempt, vec![IpNet::parse("10.0.0.0/8").unwrap()]);
        assert_eq!(c.imap.preauth_deadline, Duration::from_secs(30));
        let empty = Config::from_toml("[imap]\nconnection_limit_exempt = []\n").unwrap();
        assert!(empty.imap.connection_limit_exempt.is_empty());
        assert_eq!(
            issues(
                "[imap]\nmax_connections_per_address = 0\nconnection_limit_exempt = [\"10/8\", 3]\n\
                 preauth_deadline = 0\n"
            ),
            vec![
                "imap.connection_limit_exempt[0]: not an address or network (CIDR): \"10/8\"",
                "imap.connection_limit_exempt[1]: expected a string, found integer",
                "imap.max_connections_per_address: must be between 1 and 1000000, found 0",
                "imap.preauth_deadline: must be between 1 and 3600, found 0",
            ]
        );
    }

    #[test]
    fn several_certificates_default_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, "x").unwrap();
            path
        };
        let (c0, k0, c1, k1) = (file("0.crt"), file("0.key"), file("1.crt"), file("1.key"));
        let text = format!(
            "[tls]\ncert = {c0:?}\nkey = {k0:?}\n[[tls.certificates]]\ncert = {c1:?}\nkey = {k1:?}\n"
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(
            c.tls,
            vec![
                TlsFiles { cert: c0.clone(), key: k0.clone() },
                TlsFiles { cert: c1.clone(), key: k1.clone() }
            ]
        );
        // Only the list: its first entry is the default.
        let text = format!("[[tls.certificates]]\ncert = {c1:?}\nkey = {k1:?}\n");
        assert_eq!(Config::from_toml(&text).unwrap().tls, vec![TlsFiles { cert: c1.clone(), key: k1 }]);
        let text = format!(
            "[[tls.certificates]]\ncert = {c1:?}\n[[tls.certificates]]\ncolour = 1\n[[tls.certificates]]\n\
             cert = \"/nonexistent\"\nkey = {k0:?}\n"
        );
        assert_eq!(
            issues(&text),
            vec![
                "tls.certificates[0]: give both cert and key, or neither (for a self-signed certificate)",
                "tls.certificates[1]: give cert and key",
                "tls.certificates[2].cert: no such file: /nonexistent",
            ]
        );
        assert_eq!(
            issues("[tls]\ncertificates = 3\n"),
            vec!["tls.certificates: expected an array of tables ([[tls.certificates]]), found integer"]
        );
    }

    #[test]
    fn names_for_the_generated_certificate() {
        let c = Config::from_toml("[tls]\nnames = [\"Mail.Example.org\", \"192.0.2.7\", \"2001:db8::1\"]\n")
            .unwrap();
        assert_eq!(c.tls_names, vec!["mail.example.org", "192.0.2.7", "2001:db8::1"]);
        assert!(c.tls.is_empty());
        assert_eq!(
            issues("[tls]\nnames = [\"ok.example\", \"not a name\", 3]\n"),
            vec![
                "tls.names[1]: not a host name or IP address: \"not a name\"",
                "tls.names[2]: expected a string, found integer",
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.pem");
        std::fs::write(&file, "x").unwrap();
        let text = format!("[tls]\ncert = {file:?}\nkey = {file:?}\nnames = [\"mail.example.org\"]\n");
        assert_eq!(
            issues(&text),
            vec!["tls.names: only used for the generated certificate; remove it or cert/key"]
        );
    }

    #[test]
    fn syntax_error_is_not_a_list() {
        assert!(matches!(Config::from_toml("imap = ["), Err(ParseFailure::Syntax(_))));
    }

    #[test]
    fn load_attaches_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "a = 1\nb = 2\n").unwrap();
        let text = Config::load(Some(&file)).unwrap_err().to_string();
        assert!(text.contains("p.toml (2 problems)"), "{text}");
        assert!(text.contains("\n  a: unknown key\n  b: unknown key"), "{text}");
        let missing = Config::load(Some(&dir.path().join("none.toml"))).unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }));
    }

    #[test]
    fn delivery_sections() {
        let c = Config::from_toml(
            "[lmtp]\nlisten = []\nlisten_unix = \"/run/postfach/lmtp\"\n\
             allowed_networks = [\"10.0.0.0/8\", \"::1\"]\n\
             [delivery]\ndomains = [\"Example.ORG\"]\nspam_headers = [\"X-Spam-Status: Yes\"]\n\
             [vacation]\nsmtp_relay = \"localhost:25\"\n",
        )
        .unwrap();
        assert!(c.lmtp.listen.is_empty());
        assert_eq!(c.lmtp.listen_unix, Some(PathBuf::from("/run/postfach/lmtp")));
        assert_eq!(
            c.lmtp.allowed_networks,
            [IpNet::parse("10.0.0.0/8").unwrap(), IpNet::parse("::1").unwrap()]
        );
        // Default: loopback only.
        let default = Config::default().lmtp.allowed_networks;
        assert!(default.iter().any(|n| n.contains("127.0.0.1".parse().unwrap())));
        assert!(default.iter().any(|n| n.contains("::1".parse().unwrap())));
        assert!(!default.iter().any(|n| n.contains("192.0.2.1".parse().unwrap())));
        assert_eq!(c.delivery.domains, vec!["example.org"]);
        assert_eq!(c.delivery.spam_headers, vec!["X-Spam-Status: Yes"]);
        assert_eq!(c.vacation.smtp_relay.as_deref(), Some("localhost:25"));
        let found = issues(
            "[lmtp]\nlisten = [\"nowhere\"]\nlisten_unix = \"\"\nport = 1\nallowed_networks = [\"10.0.0.0/33\"]\n\
             [delivery]\ndomains = [\"a b\", 3]\nspam_headers = [\"no colon\"]\n\
             [vacation]\nsmtp_relay = \"localhost\"\n",
        );
        for e in [
            "lmtp.listen[0]: not an IP address with port",
            "lmtp.listen_unix: must not be empty",
            "lmtp.port: unknown key",
            "lmtp.allowed_networks[0]: not an address or network",
            "delivery.domains[1]: expected a string",
            "delivery.spam_headers: \"no colon\" is not",
            "vacation.smtp_relay: expected \"host:port\"",
        ] {
            assert!(found.iter().any(|f| f.starts_with(e)), "missing {e:?} in {found:#?}");
        }
        assert_eq!(found.len(), 7, "{found:#?}");
    }
}
