//! The outbound queue ([`QueueStore`]): mail that Postfach itself sends (vacation replies, Sieve
//! redirects, bounces of those), kept in the store until the relay has taken it.
//!
//! Delivery only *enqueues* (durably, before the LMTP reply); the server's sender claims due
//! messages, hands them to the SMTP relay and records the outcome. So a slow or unreachable
//! relay never delays an LMTP answer, and a crash loses nothing that was acknowledged.
//!
//! # Exactly once, as far as SMTP allows
//! - A vacation reply is enqueued in the same transaction that records it in the reply history
//!   ([`NewOutbound::vacation`]): a crash leaves both or neither, and a second delivery of the
//!   same message finds the history and queues nothing.
//! - A redirect carries a key ([`NewOutbound::key`], a hash of the message and destination):
//!   the MTA delivering the same message again (its reply timed out, the session broke) finds
//!   the key and queues nothing. Keys are remembered until the entry's `expires`, also after
//!   it was sent.
//! - Senders *claim* entries with a lease ([`QueueStore::claim_outbound`]): while the lease
//!   runs no other sender (another node on the same PostgreSQL database) takes the entry, and
//!   the outcome is recorded only by the holder of the lease ([`Lease`]). A sender that dies
//!   mid-send leaves the lease to expire, and the entry is tried again: a relay that accepted
//!   the message just before may then get it twice (RFC 5321 §6.1 accepts that risk).
//!
//! # Limits
//! At most [`MAX_PENDING`] entries wait at once (an enqueue beyond it is refused with
//! [`StoreError::Limit`](crate::StoreError::Limit)); recipients per entry
//! [`MAX_RECIPIENTS`], each at most [`MAX_ADDRESS_LEN`] bytes; keys [`MAX_KEY_LEN`]; the
//! error kept per entry is cut at [`MAX_ERROR_LEN`].

use async_trait::async_trait;

use crate::types::AccountId;
use crate::{StoreError, StoreResult};

/// Entries waiting at once, over the installation: a Sieve loop or a relay down for days
/// cannot fill the disk with copies (each redirect holds a whole message).
pub const MAX_PENDING: u64 = 100_000;
/// Recipients of one entry (delivery queues one each; a bounce has one).
pub const MAX_RECIPIENTS: usize = 100;
/// Longest recipient or reverse path, bytes (RFC 5321 §4.5.3.1.3: 256 for a path).
pub const MAX_ADDRESS_LEN: usize = 512;
/// Longest idempotency key, bytes.
pub const MAX_KEY_LEN: usize = 200;
/// Longest error text kept per entry, bytes (the relay's reply line is at most 2 KiB).
pub const MAX_ERROR_LEN: usize = 1000;

/// A queue entry's id, unique in the installation (shown by `postfach queue list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(pub i64);

impl std::fmt::Display for QueueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why Postfach sends this mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundKind {
    /// A vacation reply (RFC 5230), null reverse path.
    Vacation,
    /// A Sieve redirect (RFC 5228 §4.2), the original reverse path.
    Redirect,
    /// A delivery status notification about a queued message that could not be sent, null
    /// reverse path.
    Bounce,
}

impl OutboundKind {
    /// The stored and displayed name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundKind::Vacation => "vacation",
            OutboundKind::Redirect => "redirect",
            OutboundKind::Bounce => "bounce",
        }
    }

    /// The kind a stored name stands for.
    #[must_use]
    pub fn parse(text: &str) -> Option<OutboundKind> {
        match text {
            "vacation" => Some(OutboundKind::Vacation),
            "redirect" => Some(OutboundKind::Redirect),
            "bounce" => Some(OutboundKind::Bounce),
            _ => None,
        }
    }
}

/// Record a vacation reply in the account's reply history in the enqueue's transaction, and
/// enqueue only when no reply went to this sender with this handle within the period (RFC
/// 5230 §4.2, as [`SieveStore::claim_vacation`](crate::SieveStore::claim_vacation)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacationOnce {
    /// The reply's handle.
    pub handle: String,
    /// The address replied to.
    pub sender: String,
    /// `:days` in seconds.
    pub period_secs: i64,
}

/// A message to put in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutbound {
    /// The account whose delivery made it (the distribution column; its deletion drops it).
    pub owner: AccountId,
    /// Why it is sent.
    pub kind: OutboundKind,
    /// The SMTP reverse path; empty for the null path `<>`.
    pub reverse_path: String,
    /// The envelope recipients (at least one).
    pub recipients: Vec<String>,
    /// The complete message, CRLF line ends, not dot-stuffed.
    pub data: Vec<u8>,
    /// Idempotency: a second enqueue with the same owner and key, while the first entry is
    /// remembered, adds nothing ([`Enqueued::Duplicate`]).
    pub key: Option<String>,
    /// Claim a vacation reply in the same transaction.
    pub vacation: Option<VacationOnce>,
    /// Now, Unix seconds: the first attempt is due at once.
    pub now: i64,
    /// When to give up (Unix seconds); the key is remembered until then too.
    pub expires: i64,
}

/// What [`QueueStore::enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// The message waits in the queue under this id.
    Queued(QueueId),
    /// An entry with the same key exists (sent or waiting): nothing was added.
    Duplicate,
    /// [`NewOutbound::vacation`]: a reply went to this sender within the period; nothing added.
    AlreadyReplied,
}

/// Proof that a sender holds an entry: its id and the attempt number its claim started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The entry.
    pub id: QueueId,
    /// The attempt the claim started (1 for the first).
    pub attempt: u32,
}

/// An entry a sender claimed, with everything needed to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMail {
    /// The claim.
    pub lease: Lease,
    /// The account whose delivery made it.
    pub owner: AccountId,
    /// Why it is sent.
    pub kind: OutboundKind,
    /// The reverse path (empty: null).
    pub reverse_path: String,
    /// The envelope recipients.
    pub recipients: Vec<String>,
    /// The message.
    pub data: Vec<u8>,
    /// When it was queued (Unix seconds).
    pub created: i64,
    /// When to give up (Unix seconds).
    pub expires: i64,
}

/// How an attempt ended, for [`QueueStore::finish_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The relay accepted the message: the entry is done (its key is remembered).
    Sent,
    /// Try again at `next_attempt` (Unix seconds); `error` is shown by `queue list`.
    RetryAt {
        /// When the entry is due again.
        next_attempt: i64,
        /// Why this attempt failed.
        error: String,
    },
    /// Give up: the entry is done; `bounce`, if any, is enqueued in the same transaction.
    Failed {
        /// Why.
        error: String,
        /// The notification to the reverse path.
        bounce: Option<Box<NewOutbound>>,
    },
}

/// An entry as `postfach queue list` shows it (without the message itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// Its id.
    pub id: QueueId,
    /// The account whose delivery made it.
    pub owner: AccountId,
    /// Why it is sent.
    pub kind: OutboundKind,
    /// The reverse path (empty: null).
    pub reverse_path: String,
    /// The envelope recipients.
    pub recipients: Vec<String>,
    /// Size of the message, bytes.
    pub size: u64,
    /// When it was queued (Unix seconds).
    pub created: i64,
    /// When it is due next (Unix seconds).
    pub next_attempt: i64,
    /// Attempts started so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it will be given up (Unix seconds).
    pub expires: i64,
    /// A sender holds it right now (until this time, Unix seconds).
    pub leased_until: Option<i64>,
}

/// The outbound queue. Both backends keep it in the database, so it survives `kill -9` and,
/// on PostgreSQL, is shared by every node.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Adds a message, durably, unless its key or vacation claim says it is a repeat.
    /// Refused with [`StoreError::Limit`] past [`MAX_PENDING`] or the size limits above.
    async fn enqueue(&self, mail: NewOutbound) -> StoreResult<Enqueued>;
    /// Claims up to `max` due entries (oldest due first) for `lease_secs`: no other call
    /// returns them until the lease ends or the outcome is recorded. Each claim starts an
    /// attempt. Also forgets entries done and past their `expires`.
    async fn claim_outbound(&self, now: i64, lease_secs: i64, max: usize) -> StoreResult<Vec<ClaimedMail>>;
    /// Records how a claimed attempt ended. `false` when the lease is no longer the caller's
    /// (the entry was deleted, or the lease ran out and another sender claimed it): nothing
    /// changed.
    async fn finish_attempt(&self, lease: Lease, outcome: Attempt) -> StoreResult<bool>;
    /// Every waiting entry, oldest first.
    async fn queue_list(&self) -> StoreResult<Vec<QueueEntry>>;
    /// Makes one waiting entry (or all) due at `now`; returns how many. Entries being sent
    /// keep their lease.
    async fn flush_queue(&self, id: Option<QueueId>, now: i64) -> StoreResult<u64>;
    /// Drops a waiting entry without sending it (its key stays remembered, so a repeat
    /// delivery does not queue it again). `false` when there is no such waiting entry.
    async fn delete_queued(&self, id: QueueId) -> StoreResult<bool>;
    /// Entries waiting (the metrics' queue length).
    async fn queue_length(&self) -> StoreResult<u64>;
}

/// Checks a new entry against the limits; both backends call it before writing.
pub(crate) fn check_new(mail: &NewOutbound) -> StoreResult<()> {
    let limit = |what: &str| Err(StoreError::Limit(format!("outbound queue: {what}")));
    if mail.recipients.is_empty() {
        return limit("no recipients");
    }
    if mail.recipients.len() > MAX_RECIPIENTS {
        return limit("too many recipients");
    }
    let bad = |a: &str| a.len() > MAX_ADDRESS_LEN || a.contains(['\r', '\n', '<', '>']);
    if bad(&mail.reverse_path) || mail.recipients.iter().any(|r| r.is_empty() || bad(r)) {
        return limit("address too long or not an address");
    }
    if mail.key.as_ref().is_some_and(|k| k.len() > MAX_KEY_LEN) {
        return limit("key too long");
    }
    Ok(())
}

/// Recipients as stored: one per line (addresses hold no line breaks, see [`check_new`]).
pub(crate) fn join_recipients(recipients: &[String]) -> String {
    recipients.join("\n")
}

/// The stored recipients back as a list.
pub(crate) fn split_recipients(stored: &str) -> Vec<String> {
    stored.split('\n').filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

/// An error text cut to [`MAX_ERROR_LEN`] on a character boundary.
pub(crate) fn clip_error(error: &str) -> String {
    let mut end = error.len().min(MAX_ERROR_LEN);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    error[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_encodings() {
        let mut mail = NewOutbound {
            owner: AccountId(1),
            kind: OutboundKind::Redirect,
            reverse_path: "a@x".into(),
            recipients: vec!["b@y".into(), "c@z".into()],
            data: Vec::new(),
            key: None,
            vacation: None,
            now: 0,
            expires: 1,
        };
        assert!(check_new(&mail).is_ok());
        assert_eq!(split_recipients(&join_recipients(&mail.recipients)), mail.recipients);
        mail.recipients.push("evil\r\nRCPT TO:<x>".into());
        assert!(check_new(&mail).is_err());
        mail.recipients.clear();
        assert!(check_new(&mail).is_err());
        assert_eq!(clip_error(&"é".repeat(MAX_ERROR_LEN)).len(), MAX_ERROR_LEN);
        for kind in [OutboundKind::Vacation, OutboundKind::Redirect, OutboundKind::Bounce] {
            assert_eq!(OutboundKind::parse(kind.as_str()), Some(kind));
        }
    }
}
