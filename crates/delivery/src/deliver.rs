//! The [`Deliverer`]: from "this message for these recipients" to messages in mailboxes.
//!
//! For one message: parse once (on the blocking pool); then for each recipient in turn: put
//! its trace lines on top ([`crate::trace`]: the summary is shifted, not re-parsed), run the
//! user's active Sieve script, apply the spam policy (spam goes to Junk unless the script
//! decided where the message goes), queue redirects and vacation replies in the store's
//! outbound queue ([`Outbox`]; the server's sender hands them to the relay later), and append to each target mailbox through `MailStore::append_parsed`, the same
//! ingest path as IMAP APPEND. Appends notify the store's `Notifier`, so IDLE sessions of the
//! same process see the message at once.
//!
//! Mail is never lost: a script that does not compile or fails at run time, a `fileinto` to a
//! missing mailbox, a redirect without a relay or that cannot be queued — each falls back to keeping the message
//! (RFC 5228 §2.10.6, §4.1) and logs why. A recipient is reported delivered only when its
//! appends returned, i.e. the message is durable.
//!
//! Limits: recipients are delivered one after the other, so memory holds at most one extra copy
//! of the message (its trace lines differ per recipient) besides the original.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use postfach_message::MessageSummary;
use postfach_sieve::vacation::{Decision, should_reply};
use postfach_sieve::{Action, Message, Settings, VacationAction};
use postfach_store::Enqueued;
use postfach_store::{
    Account, AccountKind, AccountStore, DetailDelivery, Flags, MailStore, MailboxId, MailboxInfo,
    MailboxName, NewMessage, OutboundKind, ShareStore, SieveStore, SpecialUse, StoreError, SystemFlags,
    VacationOnce,
};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::address::AddressParts;
use crate::outbound::{Outbox, Outgoing, redirect_key};
use crate::relay::OutgoingMail;
use crate::trace::{TraceInfo, prefix_keeps_structure, rfc5322_date, shifted_summary, trace_lines};
use crate::view::MessageView;

/// The keyword set on messages filed as spam (the `$Junk` keyword of the IANA IMAP keyword
/// registry, RFC 5788), so clients show them as junk.
const JUNK_KEYWORD: &str = "$Junk";

/// Longest keyword kept from a Sieve script's flags (the store's limit).
const MAX_KEYWORD_LEN: usize = 250;

/// The stores delivery reads and writes.
#[derive(Clone)]
pub struct Stores {
    /// Mailboxes and messages.
    pub mail: Arc<dyn MailStore>,
    /// Accounts, for recipient lookup.
    pub accounts: Arc<dyn AccountStore>,
    /// Sieve scripts, vacation history, subaddress policy.
    pub sieve: Arc<dyn SieveStore>,
    /// Teams (recipients by delivery address) and quotas.
    pub share: Arc<dyn ShareStore>,
}

/// One header that marks a message as spam, e.g. `X-Spam-Flag: YES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamHeader {
    /// Field name, compared case-insensitively.
    pub name: String,
    /// The value that means spam, compared case-insensitively; a field value matches when it
    /// is this value, or starts with it followed by a comma or space (`Yes, score=7.1`).
    pub value: String,
}

/// Which messages the upstream filter marked as spam (SpamAssassin's `X-Spam-Flag: YES`,
/// rspamd's `X-Spam: Yes` by default).
///
/// These headers come from the MTA's filter, in front of us: a sender can forge them, but then
/// only files their own message into the recipient's Junk. Filters such as SpamAssassin remove
/// or overwrite incoming copies of their headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamPolicy {
    /// Any of these marks a message as spam; empty turns the policy off.
    pub headers: Vec<SpamHeader>,
}

impl Default for SpamPolicy {
    fn default() -> Self {
        SpamPolicy::parse(&["X-Spam-Flag: YES", "X-Spam: Yes"]).unwrap_or(SpamPolicy { headers: Vec::new() })
    }
}

impl SpamPolicy {
    /// Reads `Name: value` lines (the configuration's `spam_headers`).
    ///
    /// # Errors
    /// The first line that is not `Name: value`, with the reason.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<SpamPolicy, String> {
        let mut headers = Vec::with_capacity(lines.len());
        for line in lines {
            let line = line.as_ref();
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("{line:?} is not \"Name: value\""));
            };
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!("{name:?} is not a header field name"));
            }
            if value.is_empty() {
                return Err(format!("{line:?} has no value"));
            }
            headers.push(SpamHeader { name: name.to_owned(), value: value.to_owned() });
        }
        Ok(SpamPolicy { headers })
    }

    /// Whether the message carries one of the spam marks.
    #[must_use]
    pub fn is_spam(&self, msg: &dyn postfach_sieve::Message) -> bool {
        self.headers.iter().any(|h| {
            msg.header(&h.name).iter().any(|v| {
                let v = v.trim();
                let Some(head) = v.get(..h.value.len()) else { return false };
                head.eq_ignore_ascii_case(&h.value)
                    && v[h.value.len()..].chars().next().is_none_or(|c| c == ',' || c.is_whitespace())
            })
        })
    }
}

/// Site settings of delivery.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Our host name, for trace lines and generated Message-IDs.
    pub hostname: String,
    /// Domains whose addresses map to accounts by local part (lower case). Empty: every
    /// domain (the MTA in front decides what is local).
    pub local_domains: Vec<String>,
    /// What counts as spam.
    pub spam: SpamPolicy,
    /// Sieve evaluation settings (limits, spamtest headers, subaddress separator).
    pub sieve: Settings,
    /// Largest message accepted, in bytes (advertised as LMTP SIZE).
    pub max_message_size: usize,
    /// What a recipient over quota is told (a message too large for the quota on its own is
    /// always refused for good).
    pub over_quota: OverQuotaAnswer,
}

/// How a recipient over quota (RFC 9208) is refused: the site's choice between "try again
/// later" and "give up", as Dovecot's `quota_full_tempfail` and Cyrus's
/// `lmtp_over_quota_perm_failure` offer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverQuotaAnswer {
    /// LMTP `452 4.2.2`, `deliver` exit 75: the MTA keeps the message and retries, so it
    /// arrives once the owner made room (or bounces when the MTA's queue lifetime ends).
    #[default]
    Temporary,
    /// LMTP `552 5.2.2`, `deliver` exit 73: the sender gets the message back at once.
    Permanent,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            hostname: "localhost".to_owned(),
            local_domains: Vec::new(),
            spam: SpamPolicy::default(),
            sieve: Settings::default(),
            max_message_size: 50 * 1024 * 1024,
            over_quota: OverQuotaAnswer::default(),
        }
    }
}

/// How a message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// LMTP (RFC 2033).
    Lmtp,
    /// `postfach deliver` (a pipe from the MTA).
    Local,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Lmtp => "LMTP",
            Protocol::Local => "local",
        }
    }
}

/// The SMTP envelope of a message and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// MAIL FROM; empty for the null reverse-path (bounces).
    pub reverse_path: String,
    /// The client's LHLO name.
    pub helo: Option<String>,
    /// The client's address.
    pub peer: Option<String>,
    /// How the message came in.
    pub protocol: Protocol,
}

/// A recipient that maps to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRecipient {
    /// The address as the client gave it.
    pub address: String,
    /// The account it maps to.
    pub account: Account,
    /// The subaddress (RFC 5233), if any.
    pub detail: Option<String>,
}

/// Why a recipient was refused.
#[derive(Debug, thiserror::Error)]
pub enum RecipientError {
    /// No account has this address (LMTP 550 5.1.1, `deliver` exit 67).
    #[error("no such user")]
    Unknown,
    /// The address cannot be a local recipient (LMTP 501 5.1.3).
    #[error("bad recipient address: {0}")]
    BadAddress(String),
    /// The lookup failed (LMTP 451 4.3.0, `deliver` exit 75).
    #[error("temporary failure looking up the recipient: {0}")]
    Temporary(StoreError),
}

/// What happened to the message for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Stored (durably) in these mailboxes; redirects and replies, if any, were queued
    /// (durably too).
    Delivered {
        /// Mailbox names, in the order written.
        mailboxes: Vec<String>,
    },
    /// The recipient's script discarded it, or only redirected it.
    NotStored,
    /// Nothing was stored; the sender should try again later (LMTP 451, exit 75).
    TemporaryFailure(String),
    /// Nothing was stored and trying again will not help (LMTP 552, exit 65).
    PermanentFailure(String),
    /// Nothing was stored: the recipient's quota root is full (LMTP 452 4.2.2 or 552 5.2.2,
    /// exit 75 or 73).
    OverQuota(OverQuotaAnswer),
}

impl DeliveryStatus {
    /// True for outcomes the MTA may forget about (delivered, discarded, redirected).
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self, DeliveryStatus::Delivered { .. } | DeliveryStatus::NotStored)
    }
}

/// One place to store the message.
#[derive(Debug, Clone)]
struct Target {
    mailbox: String,
    flags: Vec<String>,
    create: bool,
    /// From `keep` or the implicit keep (the spam policy may move it to Junk).
    keep: bool,
}

/// What a delivery does for one recipient, after Sieve and the policies.
#[derive(Debug, Default)]
struct Plan {
    targets: Vec<Target>,
    redirects: Vec<String>,
    vacation: Option<Box<VacationAction>>,
}

/// Delivers messages to local recipients. Cheap to share as `Arc<Deliverer>`.
pub struct Deliverer {
    stores: Stores,
    config: DeliveryConfig,
    /// Where vacation replies and redirects go (`None`: no relay is configured).
    outbox: Option<Outbox>,
    serial: AtomicU64,
    /// Notified after every delivery that stored something (the server's quota-warning task
    /// looks for new threshold crossings then).
    stored: Option<Arc<Notify>>,
    /// Outcomes so far, per recipient.
    counts: DeliveryCounts,
}

/// Delivery outcomes per recipient since the start, for the metrics endpoint: one counter per
/// [`DeliveryStatus`] kind (atomics).
#[derive(Debug, Default)]
pub struct DeliveryCounts {
    cells: [AtomicU64; DeliveryCounts::RESULTS.len()],
}

impl DeliveryCounts {
    /// The result names, in the order [`DeliveryCounts::snapshot`] gives them.
    pub const RESULTS: [&str; 5] =
        ["delivered", "not_stored", "temporary_failure", "permanent_failure", "over_quota"];

    fn count(&self, status: &DeliveryStatus) {
        let index = match status {
            DeliveryStatus::Delivered { .. } => 0,
            DeliveryStatus::NotStored => 1,
            DeliveryStatus::TemporaryFailure(_) => 2,
            DeliveryStatus::PermanentFailure(_) => 3,
            DeliveryStatus::OverQuota(_) => 4,
        };
        self.cells[index].fetch_add(1, Ordering::Relaxed);
    }

    /// `(result, recipients)` for every result, zeros included.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Self::RESULTS.iter().zip(&self.cells).map(|(name, n)| (*name, n.load(Ordering::Relaxed))).collect()
    }
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").field("config", &self.config).finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Deliverer {
    /// A deliverer over `stores`; vacation replies and redirects go into `outbox` (without one,
    /// i.e. without a relay, they are skipped and redirected mail is kept).
    #[must_use]
    pub fn new(stores: Stores, config: DeliveryConfig, outbox: Option<Outbox>) -> Deliverer {
        Deliverer {
            stores,
            config,
            outbox,
            serial: AtomicU64::new(0),
            stored: None,
            counts: DeliveryCounts::default(),
        }
    }

    /// The same deliverer, notifying `stored` after each delivery that stored a message.
    #[must_use]
    pub fn notify_stored(mut self, stored: Arc<Notify>) -> Deliverer {
        self.stored = Some(stored);
        self
    }

    /// Outcomes so far, per recipient.
    #[must_use]
    pub fn counts(&self) -> &DeliveryCounts {
        &self.counts
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &DeliveryConfig {
        &self.config
    }

    /// Maps a recipient address to an account: first a team whose delivery address is the
    /// address without its detail; then the same as a user's login name (`user@domain`), then,
    /// for a local domain (or none), the local part alone as a user's login name. A team
    /// receives mail only at its delivery address, never by its name.
    ///
    /// # Errors
    /// [`RecipientError::Unknown`] when no account matches.
    pub async fn resolve(&self, address: &str) -> Result<LocalRecipient, RecipientError> {
        let parts = AddressParts::split(address, &self.config.sieve.subaddress_separator);
        if parts.user.is_empty() {
            return Err(RecipientError::BadAddress(format!("{address:?} has no local part")));
        }
        let mut candidates = Vec::with_capacity(2);
        if let Some(domain) = &parts.domain {
            let whole = format!("{}@{domain}", parts.user);
            match self.stores.share.account_by_address(&whole).await {
                Ok(Some(account)) => {
                    return Ok(LocalRecipient { address: address.to_owned(), account, detail: parts.detail });
                }
                Ok(None) => {}
                Err(e) => return Err(RecipientError::Temporary(e)),
            }
            candidates.push(whole);
        }
        let local_domain = parts.domain.as_ref().is_none_or(|d| {
            self.config.local_domains.is_empty()
                || self.config.local_domains.iter().any(|l| l.eq_ignore_ascii_case(d))
        });
        if local_domain {
            candidates.push(parts.user.clone());
        }
        for name in candidates {
            match self.stores.accounts.account_by_name(&name).await {
                Ok(Some(account)) if account.kind == AccountKind::User => {
                    return Ok(LocalRecipient { address: address.to_owned(), account, detail: parts.detail });
                }
                Ok(_) => {}
                Err(e) => return Err(RecipientError::Temporary(e)),
            }
        }
        Err(RecipientError::Unknown)
    }

    /// How to refuse `rcpt` before the message is sent (LMTP RCPT) when its quota root is
    /// already full: no storage or no message left (RFC 9208 STORAGE, MESSAGE). `None` when
    /// there is room, or when the quota cannot be read (the append decides then).
    pub async fn over_quota(&self, rcpt: &LocalRecipient) -> Option<OverQuotaAnswer> {
        let quota = match self.stores.share.quota(rcpt.account.id).await {
            Ok(quota) => quota,
            Err(e) => {
                debug!(user = %rcpt.account.name, error = %e, "cannot read the quota at RCPT");
                return None;
            }
        };
        let full = quota.limits.storage.is_some_and(|limit| quota.storage_used >= limit)
            || quota.limits.messages.is_some_and(|limit| quota.messages_used >= limit);
        full.then_some(self.config.over_quota)
    }

    /// Delivers `message` (CRLF line ends, no dot-stuffing) to each recipient; one status per
    /// recipient, in order. The message is parsed once for all of them.
    pub async fn deliver(
        &self,
        envelope: &Envelope,
        message: Vec<u8>,
        recipients: &[LocalRecipient],
    ) -> Vec<DeliveryStatus> {
        if recipients.is_empty() {
            return Vec::new();
        }
        let raw: Arc<[u8]> = message.into();
        let parse_input = Arc::clone(&raw);
        let summary = match tokio::task::spawn_blocking(move || postfach_message::parse(&parse_input)).await {
            Ok(summary) => Arc::new(summary),
            Err(e) => {
                warn!(error = %e, "parsing a delivered message failed");
                let status = DeliveryStatus::TemporaryFailure("internal error".to_owned());
                for _ in recipients {
                    self.counts.count(&status);
                }
                return vec![status; recipients.len()];
            }
        };
        let id = format!("{:x}{:04x}", unix_now(), self.serial.fetch_add(1, Ordering::Relaxed) & 0xffff);
        let mut out = Vec::with_capacity(recipients.len());
        for (i, rcpt) in recipients.iter().enumerate() {
            let one_id = format!("{id}-{i}");
            let status = self.deliver_one(envelope, &raw, &summary, rcpt, &one_id).await;
            self.counts.count(&status);
            match &status {
                DeliveryStatus::Delivered { mailboxes } => {
                    info!(id = %one_id, rcpt = %rcpt.address, ?mailboxes, size = raw.len(), "delivered")
                }
                DeliveryStatus::NotStored => info!(id = %one_id, rcpt = %rcpt.address, "not stored (script)"),
                DeliveryStatus::TemporaryFailure(why) | DeliveryStatus::PermanentFailure(why) => {
                    warn!(id = %one_id, rcpt = %rcpt.address, reason = %why, "delivery failed")
                }
                DeliveryStatus::OverQuota(answer) => {
                    info!(id = %one_id, rcpt = %rcpt.address, ?answer, size = raw.len(), "over quota; not stored")
                }
            }
            out.push(status);
        }
        if let Some(stored) = &self.stored
            && out.iter().any(|s| matches!(s, DeliveryStatus::Delivered { .. }))
        {
            stored.notify_one();
        }
        out
    }

    async fn deliver_one(
        &self,
        envelope: &Envelope,
        raw: &Arc<[u8]>,
        summary: &Arc<MessageSummary>,
        rcpt: &LocalRecipient,
        id: &str,
    ) -> DeliveryStatus {
        let now = unix_now();
        let prefix = trace_lines(&TraceInfo {
            reverse_path: &envelope.reverse_path,
            recipient: &rcpt.address,
            helo: envelope.helo.as_deref(),
            peer: envelope.peer.as_deref(),
            hostname: &self.config.hostname,
            protocol: envelope.protocol.as_str(),
            id,
            now,
        });
        let mut bytes = Vec::with_capacity(prefix.len() + raw.len());
        bytes.extend_from_slice(&prefix);
        bytes.extend_from_slice(raw);
        // Into `Bytes` without a copy; every target mailbox shares it.
        let copy = bytes::Bytes::from(bytes);
        let summary = match u32::try_from(prefix.len()) {
            Ok(len) if prefix_keeps_structure(raw) => Arc::new(shifted_summary(summary, len)),
            // Rare: the message does not start with a header field; parse this copy.
            _ => {
                let input = copy.clone();
                match tokio::task::spawn_blocking(move || postfach_message::parse(&input)).await {
                    Ok(s) => Arc::new(s),
                    Err(_) => return DeliveryStatus::TemporaryFailure("internal error".to_owned()),
                }
            }
        };

        let account = &rcpt.account;
        let infos = match self.stores.mail.list_mailboxes(account.id).await {
            Ok(infos) => infos,
            Err(e) => return self.failure(&e),
        };
        let names: Vec<String> = infos.iter().map(|m| m.name.clone()).collect();
        let view = MessageView {
            raw: &copy,
            summary: &summary,
            envelope_from: &envelope.reverse_path,
            envelope_to: &rcpt.address,
            mailboxes: &names,
        };

        let default_mailbox = match self.default_mailbox(rcpt, &names).await {
            Ok(name) => name,
            Err(e) => return self.failure(&e),
        };
        let script = match self.stores.sieve.active_sieve_script(account.id).await {
            Ok(script) => script,
            Err(e) => return self.failure(&e),
        };
        let outcome = script.and_then(|script| match postfach_sieve::compile(&script.text) {
            Ok(compiled) => Some(postfach_sieve::evaluate(&compiled, &view, &self.config.sieve)),
            Err(e) => {
                // Scripts are checked on upload; this one may predate a stricter interpreter.
                warn!(id, user = %account.name, script = %script.name, error = %e,
                      "the active Sieve script does not compile; keeping the message");
                None
            }
        });
        if let Some(error) = outcome.as_ref().and_then(|o| o.error.as_ref()) {
            // RFC 5228 §2.10.6: the user must learn that the script failed; the log says why.
            warn!(id, user = %account.name, %error, "Sieve script failed at run time; keeping the message");
        }
        let spam = self.config.spam.is_spam(&view);
        let mut plan = plan(outcome.as_ref(), spam, &default_mailbox);
        if spam {
            debug!(id, "marked as spam upstream");
        }

        // Redirects first: one that cannot be queued turns into a keep before anything is
        // stored. Queued under a key, so the MTA delivering this message again (e.g. after a
        // crash before our reply) queues nothing twice.
        let redirects = std::mem::take(&mut plan.redirects);
        for address in redirects {
            if let Err(why) = self.redirect(envelope, &view, (raw, &copy), rcpt, &address, now).await {
                warn!(id, user = %account.name, to = %address, reason = %why, "redirect failed; keeping the message");
                if !plan.targets.iter().any(|t| t.keep) {
                    plan.targets.push(Target {
                        mailbox: default_mailbox.clone(),
                        flags: Vec::new(),
                        create: false,
                        keep: true,
                    });
                }
            } else {
                info!(id, user = %account.name, to = %address, "redirect queued");
            }
        }

        let mut stored = Vec::new();
        let mut written: HashSet<MailboxId> = HashSet::new();
        for target in &plan.targets {
            let (mailbox, name) = match self.target_mailbox(account, target, &infos).await {
                Ok(found) => found,
                Err(e) if stored.is_empty() => return self.failure(&e),
                Err(e) => {
                    warn!(id, mailbox = %target.mailbox, error = %e, "could not file a copy");
                    continue;
                }
            };
            if !written.insert(mailbox) {
                continue;
            }
            let message =
                NewMessage { raw: copy.clone(), flags: store_flags(&target.flags), internal_date: None };
            match self.stores.mail.append_parsed(mailbox, vec![(message, Arc::clone(&summary))]).await {
                Ok(_) => stored.push(name),
                // Nothing stored yet: the MTA may safely try again.
                Err(e) if stored.is_empty() => return self.failure(&e),
                // Something is stored: a retry would duplicate it; report success, log the rest.
                Err(e) => warn!(id, mailbox = %name, error = %e, "could not file a copy"),
            }
        }

        if let Some(action) = plan.vacation {
            self.vacation(rcpt, &view, &action, id, now).await;
        }
        if stored.is_empty() {
            DeliveryStatus::NotStored
        } else {
            DeliveryStatus::Delivered { mailboxes: stored }
        }
    }

    /// The status for a store error: temporary unless retrying cannot help. Over quota is the
    /// site's choice, except for a message the quota could never hold.
    fn failure(&self, e: &StoreError) -> DeliveryStatus {
        match e {
            StoreError::OverQuota(over) if over.alone => {
                DeliveryStatus::OverQuota(OverQuotaAnswer::Permanent)
            }
            StoreError::OverQuota(_) => DeliveryStatus::OverQuota(self.config.over_quota),
            StoreError::Limit(why) => DeliveryStatus::PermanentFailure(why.clone()),
            other => DeliveryStatus::TemporaryFailure(other.to_string()),
        }
    }

    /// INBOX, or the mailbox named by the detail when the account allows it and it exists.
    async fn default_mailbox(&self, rcpt: &LocalRecipient, names: &[String]) -> Result<String, StoreError> {
        let inbox = || MailboxName::INBOX.to_owned();
        // A detail that is not a mailbox name (empty, "a//b", ...) names no mailbox.
        let Some(detail) = rcpt.detail.as_deref().and_then(|d| MailboxName::new(d).ok()) else {
            return Ok(inbox());
        };
        if !names.iter().any(|n| n == detail.as_str()) {
            return Ok(inbox());
        }
        Ok(match self.stores.sieve.detail_delivery(rcpt.account.id).await? {
            DetailDelivery::Mailbox => detail.to_string(),
            DetailDelivery::Inbox => inbox(),
        })
    }

    /// The mailbox to append to: found by name (INBOX case-insensitively), the Junk mailbox by
    /// its `\Junk` attribute, created for `:create`, else INBOX (RFC 5228 §4.1 allows filing
    /// into the inbox when the named mailbox cannot be used, e.g. its name is not a valid one).
    async fn target_mailbox(
        &self,
        account: &Account,
        target: &Target,
        infos: &[MailboxInfo],
    ) -> Result<(MailboxId, String), StoreError> {
        match MailboxName::new(&target.mailbox) {
            Ok(wanted) => {
                if let Some(found) = infos.iter().find(|m| m.name == wanted.as_str()) {
                    return Ok((found.id, found.name.clone()));
                }
                if wanted == JUNK {
                    if let Some(found) = infos.iter().find(|m| m.special_use == Some(SpecialUse::Junk)) {
                        return Ok((found.id, found.name.clone()));
                    }
                    match self.create(account, &wanted, Some(SpecialUse::Junk)).await {
                        // The account is at its mailbox cap: the mail is not lost over it.
                        Err(e @ (StoreError::Limit(_) | StoreError::OverQuota(_))) => {
                            warn!(user = %account.name, mailbox = %wanted, error = %e, "cannot create the mailbox")
                        }
                        other => return other,
                    }
                } else if target.create {
                    match self.create(account, &wanted, None).await {
                        Ok(created) => return Ok(created),
                        Err(e) => {
                            warn!(user = %account.name, mailbox = %wanted, error = %e, "cannot create the mailbox")
                        }
                    }
                } else {
                    warn!(user = %account.name, mailbox = %wanted, "fileinto: no such mailbox; filing into INBOX");
                }
            }
            Err(e) => warn!(user = %account.name, mailbox = %target.mailbox, error = %e,
                            "fileinto: not a mailbox name; filing into INBOX"),
        }
        match infos.iter().find(|m| m.name == MailboxName::INBOX) {
            Some(inbox) => Ok((inbox.id, inbox.name.clone())),
            None => Err(StoreError::NotFound),
        }
    }

    async fn create(
        &self,
        account: &Account,
        name: &MailboxName,
        special_use: Option<SpecialUse>,
    ) -> Result<(MailboxId, String), StoreError> {
        match self.stores.mail.create_mailbox(account.id, name, special_use).await {
            Ok(id) => {
                // Clients list subscribed mailboxes; a new folder nobody sees would hide mail.
                let _ = self.stores.mail.set_subscribed(account.id, name, true).await;
                Ok((id, name.to_string()))
            }
            // Created by a concurrent delivery in between.
            Err(StoreError::AlreadyExists) => match self.stores.mail.mailbox_by_name(account.id, name).await?
            {
                Some(info) => Ok((info.id, info.name)),
                None => Err(StoreError::NotFound),
            },
            Err(e) => Err(e),
        }
    }

    /// Queues the message for `address` (RFC 5228 §4.2) with the original envelope sender.
    /// `copy` is what goes out (with our trace lines), `original` what the MTA handed over
    /// (the idempotency key's input: the same on a repeated delivery).
    async fn redirect(
        &self,
        envelope: &Envelope,
        view: &MessageView<'_>,
        (original, copy): (&[u8], &[u8]),
        rcpt: &LocalRecipient,
        address: &str,
        now: i64,
    ) -> Result<(), String> {
        let Some(outbox) = &self.outbox else { return Err("no SMTP relay is configured".to_owned()) };
        // Loop protection (RFC 5228 §4.2): our own Delivered-To line is one; a second one for
        // this recipient means the message has been here before.
        let seen = view
            .header_raw("Delivered-To")
            .iter()
            .filter(|v| v.trim().eq_ignore_ascii_case(rcpt.address.trim()))
            .count();
        if seen > 1 {
            return Err("mail loop: the message was delivered to this recipient before".to_owned());
        }
        let owner = rcpt.account.id;
        let out = Outgoing {
            owner,
            kind: OutboundKind::Redirect,
            mail: OutgoingMail {
                reverse_path: envelope.reverse_path.clone(),
                recipients: vec![address.to_owned()],
                data: copy.to_vec(),
            },
            key: Some(redirect_key(owner, &envelope.reverse_path, address, original)),
            vacation: None,
            now,
        };
        match outbox.enqueue(out).await {
            Ok(Enqueued::Duplicate) => {
                debug!(to = %address, "redirect: this message was queued for it before");
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(format!("cannot queue it: {e}")),
        }
    }

    /// Queues a vacation reply when RFC 5230 says so, at most once per sender and handle within
    /// `:days` (the reply history is written in the enqueue's transaction). Failures are
    /// logged; they never affect the delivery.
    async fn vacation(
        &self,
        rcpt: &LocalRecipient,
        view: &MessageView<'_>,
        action: &VacationAction,
        id: &str,
        now: i64,
    ) {
        let Some(outbox) = &self.outbox else {
            debug!(id, "vacation: no SMTP relay configured; no reply");
            return;
        };
        let account = &rcpt.account;
        let parts = AddressParts::split(&rcpt.address, &self.config.sieve.subaddress_separator);
        let mut mine = Vec::new();
        if let Some(domain) = &parts.domain {
            mine.push(format!("{}@{domain}", parts.user));
        }
        if account.name.contains('@') {
            mine.push(account.name.clone());
        }
        let reply = match should_reply(action, view, &mine, |_, _| None) {
            Decision::Send(reply) => reply,
            Decision::Skip(reason) => {
                debug!(id, ?reason, "vacation: no reply");
                return;
            }
        };
        let message_id = format!("<{id}.vacation@{}>", self.config.hostname);
        let text = reply.to_message(&rfc5322_date(now), &message_id);
        // RFC 5230 §4.2: never twice to one sender with one handle within :days. The claim is
        // written with the queue entry, atomically, so concurrent or repeated deliveries
        // cannot both reply, and a crash cannot record a reply that was never queued.
        let period = i64::from(action.days).saturating_mul(86_400);
        let out = Outgoing {
            owner: account.id,
            kind: OutboundKind::Vacation,
            // RFC 5230 §5.1: the reply goes out with the null reverse-path.
            mail: OutgoingMail {
                reverse_path: String::new(),
                recipients: vec![reply.recipient.clone()],
                data: text.into_bytes(),
            },
            key: None,
            vacation: Some(VacationOnce {
                handle: reply.handle.clone(),
                sender: reply.recipient.clone(),
                period_secs: period,
            }),
            now,
        };
        match outbox.enqueue(out).await {
            Ok(Enqueued::Queued(entry)) => {
                info!(id, user = %account.name, to = %reply.recipient, queue_id = %entry, "vacation reply queued")
            }
            Ok(_) => debug!(id, to = %reply.recipient, "vacation: replied within :days already"),
            Err(e) => {
                warn!(id, to = %reply.recipient, error = %e, "vacation: cannot queue the reply; no reply")
            }
        }
    }
}

/// The name delivery uses for the Junk mailbox when the account has none with `\Junk`.
const JUNK: &str = "Junk";

/// Turns Sieve's actions into targets, and applies the spam policy: spam that the script did
/// not place explicitly goes to Junk with `$Junk`, instead of the implicit keep.
fn plan(outcome: Option<&postfach_sieve::Outcome>, spam: bool, default_mailbox: &str) -> Plan {
    let keep =
        |flags: Vec<String>| Target { mailbox: default_mailbox.to_owned(), flags, create: false, keep: true };
    let mut plan = Plan::default();
    let explicit = outcome.is_some_and(|o| o.explicit_decision);
    match outcome {
        None => plan.targets.push(keep(Vec::new())),
        Some(o) => {
            for action in &o.actions {
                match action {
                    Action::Keep { flags } => plan.targets.push(keep(flags.clone())),
                    Action::FileInto { mailbox, flags, create } => plan.targets.push(Target {
                        mailbox: mailbox.clone(),
                        flags: flags.clone(),
                        create: *create,
                        keep: false,
                    }),
                    Action::Redirect { address, .. } => plan.redirects.push(address.clone()),
                    Action::Discard => {}
                    Action::Vacation(v) => plan.vacation = Some(v.clone()),
                }
            }
        }
    }
    if spam && !explicit {
        for target in plan.targets.iter_mut().filter(|t| t.keep) {
            target.mailbox = JUNK.to_owned();
            target.flags.push(JUNK_KEYWORD.to_owned());
        }
    }
    plan
}

/// Sieve flag names (RFC 5232) → store flags: system flags case-insensitively, keywords that
/// are valid IMAP atoms; `\Recent` and anything else are dropped.
fn store_flags(names: &[String]) -> Flags {
    let mut flags = Flags::default();
    for name in names {
        if name.starts_with('\\') {
            if let Some((bit, _)) = SystemFlags::ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)) {
                flags.system = flags.system.union(*bit);
            }
        } else if is_keyword(name) {
            flags.keywords.push(name.clone());
        } else {
            debug!(flag = %name, "dropping a flag that is not an IMAP keyword");
        }
    }
    flags.normalise();
    flags
}

/// RFC 9051 §9 flag-keyword = atom: printable ASCII without atom-specials.
fn is_keyword(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_KEYWORD_LEN
        && s.bytes().all(|b| {
            b.is_ascii_graphic() && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flags_from_sieve() {
        let f = store_flags(&[
            "\\seen".into(),
            "$Label1".into(),
            "\\Recent".into(),
            "bad flag".into(),
            "\\Bogus".into(),
        ]);
        assert!(f.system.contains(SystemFlags::SEEN));
        assert_eq!(f.keywords, vec!["$Label1"]);
    }

    #[test]
    fn spam_policy_matching() {
        struct H(&'static str, &'static str);
        impl postfach_sieve::Message for H {
            fn header(&self, name: &str) -> Vec<String> {
                if name.eq_ignore_ascii_case(self.0) { vec![self.1.to_owned()] } else { Vec::new() }
            }
            fn envelope_from(&self) -> Option<&str> {
                None
            }
            fn envelope_to(&self) -> Option<&str> {
                None
            }
            fn size(&self) -> u64 {
                0
            }
            fn body_text(&self, _: &postfach_sieve::BodyTransform) -> Vec<String> {
                Vec::new()
            }
        }
        let p = SpamPolicy::default();
        assert!(p.is_spam(&H("X-Spam-Flag", "YES")));
        assert!(p.is_spam(&H("x-spam", " yes ")));
        assert!(!p.is_spam(&H("X-Spam-Flag", "NO")));
        assert!(!p.is_spam(&H("X-Spam", "Yesterday")));
        let p = SpamPolicy::parse(&["X-Spam-Status: Yes"]).unwrap();
        assert!(p.is_spam(&H("X-Spam-Status", "Yes, score=7.3 required=5.0")));
        assert!(!p.is_spam(&H("X-Spam-Status", "No, score=1.0")));
        assert!(SpamPolicy::parse(&["no colon"]).is_err());
        assert!(SpamPolicy::parse(&["X-Spam:"]).is_err());
        assert!(SpamPolicy::parse(&["Bad Name: x"]).is_err());
    }

    #[test]
    fn spam_goes_to_junk_unless_the_script_decided() {
        let implicit = postfach_sieve::Outcome {
            actions: vec![Action::Keep { flags: vec!["\\Flagged".into()] }],
            explicit_decision: false,
            error: None,
        };
        let p = plan(Some(&implicit), true, "INBOX");
        assert_eq!(p.targets[0].mailbox, "Junk");
        assert_eq!(p.targets[0].flags, vec!["\\Flagged", "$Junk"]);
        let explicit = postfach_sieve::Outcome { explicit_decision: true, ..implicit.clone() };
        assert_eq!(plan(Some(&explicit), true, "INBOX").targets[0].mailbox, "INBOX");
        assert_eq!(plan(None, true, "lists").targets[0].mailbox, "Junk");
        assert_eq!(plan(None, false, "lists").targets[0].mailbox, "lists");
    }
}
