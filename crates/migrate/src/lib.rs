//! Moving mail in and out of Postfach (issue 14): the account export format, export, import,
//! and importers from where users come from.
//!
//! # Layout
//! - [`format`]: the export format of `docs/export-format.md` (serde lines, dates, checksums)
//!   and its [`format::Writer`].
//! - [`export`]: one account of the store → an export directory (full or incremental).
//! - [`import`]: an export directory → one account of the store. The only import path: the
//!   importers below write the format and then call it.
//! - [`sources`]: Dovecot Maildir(++) and plain Maildir, mbox, and a live IMAP server, each
//!   converted into an export directory.
//! - `progress`: progress bars on standard error when it is a terminal.
//!
//! Knows no configuration files or command lines: the `postfach` binary opens the store and
//! calls in. Talks to the store only through its traits ([`Stores`]).

pub mod export;
pub mod format;
pub mod import;
mod progress;
pub mod sources;

use std::path::{Path, PathBuf};

use postfach_store::{AccountStore, MailStore, RestoreStore, ShareStore, SieveStore, StoreError};

pub use progress::Progress;

/// What can go wrong while moving mail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// An export directory that does not follow the format (or a checksum that does not match).
    #[error("export format: {0}")]
    Format(String),
    /// The store refused or failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Talking to an IMAP server.
    #[error("IMAP: {0}")]
    Imap(String),
    /// A source that cannot be read as what it was given as.
    #[error("source: {0}")]
    Source(String),
    /// Asked for something that cannot be done (a missing account, an occupied directory).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_owned(), source }
    }
}

/// Shorthand for this crate's results.
pub type Result<T> = std::result::Result<T, Error>;

/// The store's traits export and import use. The SQLite store implements all of them.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    /// Accounts by name.
    pub accounts: &'a dyn AccountStore,
    /// Mailboxes and messages.
    pub mail: &'a dyn MailStore,
    /// ACLs, seen modes, quotas, teams, groups.
    pub share: &'a dyn ShareStore,
    /// Sieve scripts.
    pub sieve: &'a dyn SieveStore,
    /// Verbatim reads and writes.
    pub restore: &'a dyn RestoreStore,
}

/// Runs blocking work (file I/O, hashing) off the async worker threads.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::Source(format!("a worker failed: {e}")))?
}
