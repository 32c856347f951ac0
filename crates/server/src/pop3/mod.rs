//! POP3 (RFC 1939) beside IMAP, on the same store, accounts and login policy: STLS (RFC 2595),
//! implicit TLS (RFC 8314), CAPA and response codes (RFC 2449, RFC 3206), AUTH (RFC 5034) with
//! IMAP's SASL mechanisms, TOP and UIDL. Off unless `[pop3] listen` or `listen_tls` names an
//! address; the listeners are `listener.rs`'s (same connection caps, same TLS).
//!
//! # Layout
//! - `command`: a line → [`command::Command`] (pure).
//! - `maildrop`: the INBOX snapshot of a session, UIDL strings, dot-stuffed RETR/TOP output.
//! - `session`: the states and every command's answer (no sockets).
//! - `conn`: the driver: lines in, answers out, STLS, timeouts, shutdown, kick.
//!
//! # Limits
//! - A command line is at most [`MAX_COMMAND_LINE`] octets with its CRLF (RFC 2449 §4); a
//!   response line of an AUTH exchange at most [`MAX_SASL_LINE`], and so is a command line
//!   before login: RFC 5034 §4 tells clients not to send an initial response that makes AUTH
//!   longer than 255 octets, but clients with bearer tokens (a JWT is a few KiB) do. Longer lines are thrown
//!   away (`-ERR`) and count as bad commands; after `session::MAX_BAD_COMMANDS` the
//!   connection closes, and after `session::MAX_AUTH_FAILURES` failed logins too.
//! - Client silence: `[pop3] timeout` (at least 10 minutes, RFC 1939 §3), and before login no
//!   more than `[imap] preauth_deadline` from accept in all.
//! - A connection buffers at most one line plus one read (8 KiB) of input, and about 64 KiB of
//!   output before it waits for the client to read; RETR holds the one message it sends.

pub(crate) mod command;
pub(crate) mod conn;
pub(crate) mod maildrop;
pub(crate) mod session;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postfach_store::AccountId;

use crate::config::{ImapConfig, Pop3Config};

/// RFC 2449 §4: a command line is at most 255 octets, CRLF included.
pub(crate) const MAX_COMMAND_LINE: usize = 255;
/// An AUTH exchange's response line (RFC 5034 §4 lifts the 255-octet limit for them): the
/// base64 IMAP's AUTHENTICATE accepts, with its CRLF.
pub(crate) const MAX_SASL_LINE: usize = postfach_imap::sasl::MAX_RESPONSE + 2;

/// What every POP3 connection of a server shares besides the IMAP connection settings.
pub(crate) struct Pop3Settings {
    /// Client silence allowed (RFC 1939 §3: at least 10 minutes).
    pub(crate) timeout: Duration,
    /// Time from accept to login, however busy the client is (`imap.preauth_deadline`).
    pub(crate) login_deadline: Duration,
    /// The maildrops locked by POP3 sessions.
    pub(crate) locks: Arc<MaildropLocks>,
}

impl Pop3Settings {
    /// Settings from `[pop3]` and `[imap]`.
    pub(crate) fn new(pop3: &Pop3Config, imap: &ImapConfig) -> Self {
        Self { timeout: pop3.timeout, login_deadline: imap.preauth_deadline, locks: Arc::default() }
    }
}

/// The accounts whose maildrop a POP3 session holds (RFC 1939 §4: an exclusive-access lock,
/// among POP3 sessions of this process; IMAP takes none).
#[derive(Debug, Default)]
pub(crate) struct MaildropLocks {
    held: Mutex<HashSet<AccountId>>,
}

impl MaildropLocks {
    /// Locks `account`'s maildrop, or `None` when another session holds it.
    pub(crate) fn acquire(self: &Arc<Self>, account: AccountId) -> Option<MaildropLock> {
        // A poisoned lock means a panic elsewhere while holding it; the set is still consistent
        // (every update is a single insert or remove).
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.insert(account).then(|| MaildropLock { locks: Arc::clone(self), account })
    }
}

/// A held maildrop lock; dropping it releases the maildrop.
#[derive(Debug)]
pub(crate) struct MaildropLock {
    locks: Arc<MaildropLocks>,
    account: AccountId,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        self.locks.held.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.account);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_maildrop_is_locked_once() {
        let locks = Arc::new(MaildropLocks::default());
        let held = locks.acquire(AccountId(1)).unwrap();
        assert!(locks.acquire(AccountId(1)).is_none());
        let other = locks.acquire(AccountId(2)).unwrap();
        drop(held);
        assert!(locks.acquire(AccountId(1)).is_some());
        drop(other);
        assert!(locks.held.lock().unwrap().is_empty());
    }
}
