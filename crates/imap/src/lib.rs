//! The IMAP session: turns one framed command into responses and a state change.
//!
//! Knows nothing about sockets, TLS or SQL. `postfach::imap_conn` (the server crate) reads bytes,
//! frames them with `postfach_proto::framing`, hands each complete command to [`Session::handle`],
//! and writes what the session put into [`Out`]. The store answers through its traits.
//!
//! # Layout
//! - `session`: the state enum and the one gate: `rule(&CommandBody)`, a table per command (legal
//!   states, EXPUNGE deferral, updates before/after, CONDSTORE enabling, ACL rights to come);
//!   dispatch to the handlers; the tagged completion; login's end; IDLE's lines.
//! - `cmd/`: one file per command family, each handed exactly the state it needs:
//!   `any` (CAPABILITY NOOP LOGOUT ID ENABLE), `login` (STARTTLS LOGIN AUTHENTICATE),
//!   `select` (SELECT EXAMINE CLOSE UNSELECT), `mailbox` (CREATE DELETE RENAME SUBSCRIBE
//!   UNSUBSCRIBE NAMESPACE STATUS APPEND), `list` (LIST LSUB), `fetch`, `store`, `copy`
//!   (COPY MOVE), `expunge`, `search`, `sort` (SORT ESORT THREAD, RFC 5256/5267/5957), `idle`,
//!   `metadata` (GETMETADATA SETMETADATA, RFC 5464), `catenate` (APPEND's CATENATE parts and the
//!   IMAP URLs they name, RFC 4469), `urlauth` (GENURLAUTH URLFETCH RESETKEY, RFC 4467).
//! - `context`: what handlers receive (`Cx`: server context, user, `Enabled` options).
//! - `out` ([`Out`]): the response API (`data`, `status`, `continuation`, `bye`; the tagged line is the
//!   gate's) with the write options ENABLE set; buffered, optionally streamed to the driver.
//! - `respond`: `Done`/`Reply`, and `From<StoreError>`/`From<AuthError>` for `Reply`.
//! - `selected`: one session's view of its mailbox (sequence numbers ↔ UIDs, pending updates).
//! - `updates`: searches that report their changes (RFC 5267 CONTEXT=SEARCH/SORT UPDATE).
//! - `notify`: NOTIFY (RFC 5465): the events a session asked for, and the STATUS, LIST and
//!   METADATA responses the store's change signals turn into.
//! - `progress`: INPROGRESS notifications of long commands (RFC 9585).
//! - `convert`, `capability`, `uidmap`: small shared pieces; `sasl` (public: the server's POP3
//!   AUTH and ManageSieve run the same mechanisms through it).
//!
//! Dependencies run one way: `session` → `cmd` → `context`, `respond`, `selected`, `out`.

mod access;
mod capability;
mod cmd;
mod context;
mod convert;
pub mod criteria;
mod notify;
mod out;
mod progress;
mod respond;
pub mod sasl;
mod selected;
mod session;
mod uidmap;
mod updates;

pub use out::Out;
pub use session::Session;

use std::net::SocketAddr;
use std::sync::Arc;

use postfach_auth::Authenticator;
use postfach_store::{AccountStore, MailStore, MetadataLimits, ShareStore};

/// Settings of the IMAP service that the session needs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Allow LOGIN/AUTHENTICATE on a connection without TLS (default false: LOGINDISABLED).
    pub allow_plaintext_auth: bool,
    /// Largest message APPEND accepts, in bytes (advertised as APPENDLIMIT).
    pub max_message_size: u32,
    /// Offer STARTTLS on cleartext connections (a TLS configuration exists).
    pub starttls_available: bool,
    /// Accounts that may set quotas with SETQUOTA (RFC 9208 §4.1.3) and read every root, and
    /// set shared server metadata (RFC 5464 §3.3).
    pub quota_admins: Vec<String>,
    /// METADATA (RFC 5464) limits and the administrator's contact.
    pub metadata: MetadataSettings,
    /// NOTIFY (RFC 5465 §5.8): changed mailboxes and METADATA changes one session may have
    /// waiting before it sends NOTIFICATIONOVERFLOW and stops notifying.
    pub notify_max_pending: usize,
    /// The memory all sessions share for message data in transit (the driver's literal
    /// budget): CATENATE reserves the messages it reads and the message it builds there.
    /// `None`: no shared budget (tests); the size limits still apply.
    pub message_memory: Option<Arc<dyn MessageMemory>>,
    /// How often a long command reports its progress (RFC 9585 INPROGRESS); zero: at every
    /// step.
    pub progress_interval: std::time::Duration,
}

/// Bytes reserved in a [`MessageMemory`]: the budget's own reservation, given back when dropped.
pub struct MemoryHold(pub Box<dyn std::any::Any + Send + Sync>);

/// A memory budget shared by all sessions (the server's `imap.literal_memory`).
pub trait MessageMemory: Send + Sync + std::fmt::Debug {
    /// Reserves `bytes`, waiting a bounded time for room; `None` if there was none.
    fn reserve(
        &self,
        bytes: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<MemoryHold>> + Send + '_>>;
}

/// METADATA (RFC 5464) settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataSettings {
    /// Largest value SETMETADATA stores, in octets (`[METADATA MAXSIZE n]` above it; RFC 5464
    /// §4.1: at least 1024).
    pub max_value: u32,
    /// Entry counts the store enforces (`[METADATA TOOMANY]`; §4.1: at least 10 per mailbox).
    pub limits: MetadataLimits,
    /// The value of the read-only `/shared/admin` server entry (a URI such as
    /// `mailto:postmaster@example.org`, §3.2.1.1), if configured.
    pub admin_contact: Option<String>,
}

impl Default for MetadataSettings {
    fn default() -> Self {
        Self { max_value: 64 * 1024, limits: MetadataLimits::default(), admin_contact: None }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            allow_plaintext_auth: false,
            max_message_size: 50 * 1024 * 1024,
            starttls_available: true,
            quota_admins: Vec::new(),
            metadata: MetadataSettings::default(),
            notify_max_pending: 1000,
            message_memory: None,
            progress_interval: std::time::Duration::from_secs(10),
        }
    }
}

/// What every session of a server shares.
pub struct ServerContext {
    /// Mailboxes and messages.
    pub store: Arc<dyn MailStore>,
    /// Accounts.
    pub accounts: Arc<dyn AccountStore>,
    /// ACLs, teams and quotas.
    pub share: Arc<dyn ShareStore>,
    /// Credential checks.
    pub auth: Authenticator,
    /// Settings.
    pub config: SessionConfig,
}

/// Whether the connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Cleartext (port 143 before STARTTLS).
    Plain,
    /// TLS, implicit (993) or after STARTTLS.
    Tls,
}

/// Facts about the connection a session runs on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address (for logs and, later, throttling).
    pub peer: SocketAddr,
    /// Encrypted or not.
    pub transport: Transport,
}

/// What the driver must do after a call into the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Write the output and read the next command.
    Continue,
    /// Write the output (the tagged OK of STARTTLS), discard every byte already received, run the
    /// TLS handshake, then call [`Session::tls_started`] (RFC 9051 §6.2.1).
    StartTls,
    /// Write the output (a `+` continuation request) and pass the next raw line to
    /// [`Session::auth_line`] (AUTHENTICATE, RFC 9051 §6.2.2).
    AuthContinue,
    /// Write the output (`+ idling`) and wait: for a line (pass it to [`Session::idle_line`]),
    /// for a change signal from [`Session::change_watch`] (call [`Session::idle_update`]), or
    /// for the keepalive timer (call [`Session::idle_keepalive`]). RFC 2177.
    Idle,
    /// Write the output (the tagged OK of COMPRESS) uncompressed, then compress everything
    /// sent and decompress everything received from the next byte on (RFC 4978 §3). Bytes
    /// already received after the command are compressed input.
    Compress,
    /// Write the output and close the connection.
    Close,
}
