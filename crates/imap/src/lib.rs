//! The IMAP session: turns one framed command into responses and a state change.
//!
//! Knows nothing about sockets, TLS or SQL. `postfach::imap_conn` (the server crate) reads bytes,
//! frames them with `postfach_proto::framing`, hands each complete command to [`Session::handle`],
//! and writes what the session put into [`Out`]. The store answers through its traits.
//!
//! # Layout
//! - [`out`]: the response sink handlers write into (buffered, optionally streamed to the driver).
//! - `session`: the state enum and the one (state, command) gate; login and IDLE.
//! - `mailbox`, `list`: authenticated-state commands (CREATE … APPEND, LIST/LSUB).
//! - `message`: selected-state commands (FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE, …).
//! - `sort`: SORT, ESORT and THREAD (RFC 5256, RFC 5267, RFC 5957).
//! - `selected`: one session's view of its mailbox (sequence numbers ↔ UIDs, pending updates).
//! - `convert`, `respond`, `capability`: small shared pieces.

mod capability;
mod convert;
mod list;
mod mailbox;
mod message;
mod out;
mod respond;
mod sasl;
mod selected;
mod session;
mod sort;
mod uidmap;

pub use out::Out;
pub use session::Session;

use std::net::SocketAddr;
use std::sync::Arc;

use postfach_auth::Authenticator;
use postfach_store::{AccountStore, MailStore};

/// Settings of the IMAP service that the session needs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Allow LOGIN/AUTHENTICATE on a connection without TLS (default false: LOGINDISABLED).
    pub allow_plaintext_auth: bool,
    /// Largest message APPEND accepts, in bytes (advertised as APPENDLIMIT).
    pub max_message_size: u32,
    /// Offer STARTTLS on cleartext connections (a TLS configuration exists).
    pub starttls_available: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { allow_plaintext_auth: false, max_message_size: 50 * 1024 * 1024, starttls_available: true }
    }
}

/// What every session of a server shares.
pub struct ServerContext {
    /// Mailboxes and messages.
    pub store: Arc<dyn MailStore>,
    /// Accounts.
    pub accounts: Arc<dyn AccountStore>,
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
    /// Write the output and close the connection.
    Close,
}
