//! Mail Postfach sends (vacation replies, redirects, and bounces of those) goes through the
//! store's outbound queue ([`postfach_store::QueueStore`]): delivery puts it there through the
//! [`Outbox`], durably and before the LMTP reply; the [`Sender`] takes it out in the
//! background and hands it to the [`Relay`].
//!
//! So the MTA's reply never waits for the relay: a slow or unreachable relay costs the queue
//! time, not the MTA's data timeout (which would make the MTA deliver the message again).
//!
//! The sender claims due entries with a lease ([`Sender::LEASE`], longer than one relay
//! exchange may take), so several nodes on one database never send one entry at once; it
//! sends at most `concurrency` at a time; a failed attempt waits `retry_min`, doubling up to
//! `retry_max`; a refusal (5xx) or an entry older than `lifetime` is given up: a redirect
//! bounces to its reverse path (a delivery status notification, RFC 3464), a vacation reply
//! or a bounce (null reverse path) never does; either way one log line says so.

use std::sync::Arc;
use std::time::Duration;

use postfach_store::{
    AccountId, Attempt, ClaimedMail, Enqueued, NewOutbound, OutboundKind, QueueStore, StoreResult,
    VacationOnce,
};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::relay::{OutgoingMail, Relay, RelayError};
use crate::trace::rfc5322_date;

/// Header bytes of the original message quoted in a bounce (RFC 3464 `text/rfc822-headers`).
const MAX_BOUNCE_HEADERS: usize = 64 * 1024;

/// Delivery's side of the queue: puts mail in and wakes the sender.
#[derive(Clone)]
pub struct Outbox {
    queue: Arc<dyn QueueStore>,
    lifetime: Duration,
    nudge: Arc<Notify>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("lifetime", &self.lifetime).finish_non_exhaustive()
    }
}

/// One message for the [`Outbox`].
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The account whose delivery makes it.
    pub owner: AccountId,
    /// Why it is sent.
    pub kind: OutboundKind,
    /// The message and its envelope.
    pub mail: OutgoingMail,
    /// Idempotency key ([`redirect_key`]).
    pub key: Option<String>,
    /// Claim the vacation reply in the enqueue's transaction.
    pub vacation: Option<VacationOnce>,
    /// Now, Unix seconds.
    pub now: i64,
}

impl Outbox {
    /// An outbox over `queue`; entries are given up after `lifetime`.
    #[must_use]
    pub fn new(queue: Arc<dyn QueueStore>, lifetime: Duration) -> Outbox {
        Outbox { queue, lifetime, nudge: Arc::new(Notify::new()) }
    }

    /// Notified after every enqueue: hand it to the [`Sender`] of the same process.
    #[must_use]
    pub fn nudge(&self) -> Arc<Notify> {
        Arc::clone(&self.nudge)
    }

    /// Puts `out` in the queue (durable when this returns).
    ///
    /// # Errors
    /// The store's: the queue is full, the entry breaks a limit, the database failed.
    pub async fn enqueue(&self, out: Outgoing) -> StoreResult<Enqueued> {
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let entry = NewOutbound {
            owner: out.owner,
            kind: out.kind,
            reverse_path: out.mail.reverse_path,
            recipients: out.mail.recipients,
            data: out.mail.data,
            key: out.key,
            vacation: out.vacation,
            now: out.now,
            expires: out.now.saturating_add(lifetime),
        };
        let result = self.queue.enqueue(entry).await?;
        if matches!(result, Enqueued::Queued(_)) {
            self.nudge.notify_one();
        }
        Ok(result)
    }
}

/// The idempotency key of a redirect: the same message (as the MTA handed it over, before our
/// trace lines) from the same sender to the same destination for the same account. An MTA
/// delivering a message again finds it and queues nothing.
#[must_use]
pub fn redirect_key(owner: AccountId, reverse_path: &str, to: &str, original: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(owner.0.to_be_bytes());
    for part in [reverse_path.as_bytes(), to.as_bytes()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update(original);
    let digest = hash.finalize();
    let mut key = String::with_capacity(9 + 64);
    key.push_str("redirect:");
    for byte in digest.iter() {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

/// How the sender works.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// Wait after the first failed attempt; doubles with every further one.
    pub retry_min: Duration,
    /// Longest wait between attempts.
    pub retry_max: Duration,
    /// Entries older than this are given up (bounced where that is allowed).
    pub lifetime: Duration,
    /// Messages sent at once.
    pub concurrency: usize,
    /// How often the queue is looked at when nothing nudges the sender (other processes, e.g.
    /// `postfach deliver` or another node, enqueue without reaching this one).
    pub poll: Duration,
    /// Our host name, for bounces.
    pub hostname: String,
}

impl Default for SenderSettings {
    fn default() -> Self {
        SenderSettings {
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            lifetime: Duration::from_secs(5 * 86_400),
            concurrency: 4,
            poll: Duration::from_secs(10),
            hostname: "localhost".to_owned(),
        }
    }
}

/// What one attempt came to (for tests and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The relay took it.
    Accepted,
    /// It is tried again later.
    Deferred,
    /// Given up; `bounced` when a notification went into the queue.
    GaveUp {
        /// Whether a bounce was queued.
        bounced: bool,
    },
}

/// Takes due entries out of the queue and sends them through the relay.
pub struct Sender {
    queue: Arc<dyn QueueStore>,
    relay: Arc<dyn Relay>,
    settings: SenderSettings,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Sender {
    /// How long a claim keeps other senders off an entry: longer than the relay client's
    /// whole exchange may take (5 minutes), so a live sender never loses its lease; a dead
    /// one's entries are due again after it.
    pub const LEASE: Duration = Duration::from_secs(6 * 60);

    /// A sender over `queue` through `relay`.
    #[must_use]
    pub fn new(queue: Arc<dyn QueueStore>, relay: Arc<dyn Relay>, settings: SenderSettings) -> Sender {
        Sender { queue, relay, settings }
    }

    /// Sends what is due at `now`, one message after the other, until nothing due is left;
    /// returns the outcomes (for tests; the server uses [`Sender::run`]).
    ///
    /// # Errors
    /// The store's, when the queue cannot be read.
    pub async fn send_due(&self, now: i64) -> StoreResult<Vec<Sent>> {
        let mut outcomes = Vec::new();
        loop {
            let batch =
                self.queue.claim_outbound(now, lease_secs(), self.settings.concurrency.max(1)).await?;
            if batch.is_empty() {
                return Ok(outcomes);
            }
            for mail in batch {
                outcomes.push(self.attempt(mail, now).await);
            }
        }
    }

    /// Runs until `stop` turns true: looks at the queue every `poll` and whenever `nudge` is
    /// notified or a send finishes; sends due entries, `concurrency` at a time. At shutdown it
    /// waits up to `grace` for sends in flight, then drops them (their leases run out and they
    /// are tried again).
    pub async fn run(self, nudge: Arc<Notify>, mut stop: watch::Receiver<bool>, grace: Duration) {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(this.settings.concurrency.max(1)));
        let mut sending = JoinSet::new();
        loop {
            if *stop.borrow() {
                break;
            }
            let free = permits.available_permits();
            if free > 0 {
                match this.queue.claim_outbound(unix_now(), lease_secs(), free).await {
                    Ok(batch) => {
                        for mail in batch {
                            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else { break };
                            let this = Arc::clone(&this);
                            sending.spawn(async move {
                                this.attempt(mail, unix_now()).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => warn!(error = %e, "cannot read the outbound queue; trying again later"),
                }
            }
            tokio::select! {
                // A dropped sender side means the server is going away too.
                changed = stop.changed() => if changed.is_err() { break },
                () = nudge.notified() => {}
                () = tokio::time::sleep(this.settings.poll) => {}
                Some(_) = sending.join_next(), if !sending.is_empty() => {}
            }
        }
        if tokio::time::timeout(grace, async { while sending.join_next().await.is_some() {} }).await.is_err()
        {
            warn!(left = sending.len(), "outbound sends did not finish in time; they are retried later");
            sending.shutdown().await;
        }
    }

    /// One attempt: send, then record the outcome under the lease.
    async fn attempt(&self, mail: ClaimedMail, now: i64) -> Sent {
        let id = mail.lease.id;
        let attempt = mail.lease.attempt;
        let to = mail.recipients.join(",");
        let kind = mail.kind.as_str();
        let outgoing = OutgoingMail {
            reverse_path: mail.reverse_path.clone(),
            recipients: mail.recipients.clone(),
            data: mail.data.clone(),
        };
        let (outcome, sent) = match self.relay.send(&outgoing).await {
            Ok(()) => {
                info!(%id, kind, %to, attempt, "queued message sent");
                (Attempt::Sent, Sent::Accepted)
            }
            Err(RelayError::Unreachable(error)) => {
                let wait = backoff(attempt, self.settings.retry_min, self.settings.retry_max);
                let next = now.saturating_add(i64::try_from(wait.as_secs()).unwrap_or(i64::MAX));
                if next >= mail.expires {
                    let why = format!(
                        "gave up after {attempt} attempts in {}: {error}",
                        human(Duration::from_secs(u64::try_from(now - mail.created).unwrap_or(0)))
                    );
                    self.give_up(&mail, why, now, Expiry::Expired)
                } else {
                    info!(%id, kind, %to, attempt, %error, retry_in = %human(wait), "queued message deferred");
                    (Attempt::RetryAt { next_attempt: next, error }, Sent::Deferred)
                }
            }
            Err(RelayError::Refused(error)) => self.give_up(&mail, error, now, Expiry::Refused),
        };
        match self.queue.finish_attempt(mail.lease, outcome).await {
            Ok(true) => {}
            Ok(false) => debug!(%id, "queue entry deleted or taken over while it was being sent"),
            Err(e) => warn!(%id, error = %e, "cannot record the outcome; the entry is tried again later"),
        }
        sent
    }

    /// The final failure: a bounce to the reverse path where there is one, and the log line.
    fn give_up(&self, mail: &ClaimedMail, error: String, now: i64, why: Expiry) -> (Attempt, Sent) {
        let id = mail.lease.id;
        let to = mail.recipients.join(",");
        let kind = mail.kind.as_str();
        // RFC 3464 §2 / RFC 5321 §6.2: never bounce mail with a null reverse path (vacation
        // replies, bounces), and a redirect's sender learns only about its own message.
        let bounce = (mail.kind == OutboundKind::Redirect && !mail.reverse_path.is_empty()).then(|| {
            let lifetime = i64::try_from(self.settings.lifetime.as_secs()).unwrap_or(i64::MAX);
            Box::new(NewOutbound {
                owner: mail.owner,
                kind: OutboundKind::Bounce,
                reverse_path: String::new(),
                recipients: vec![mail.reverse_path.clone()],
                data: bounce_message(&self.settings.hostname, mail, &error, why, now),
                key: None,
                vacation: None,
                now,
                expires: now.saturating_add(lifetime),
            })
        });
        let bounced = bounce.is_some();
        warn!(
            %id, kind, %to, from = %mail.reverse_path, attempts = mail.lease.attempt, %error, bounced,
            "queued message given up"
        );
        (Attempt::Failed { error, bounce }, Sent::GaveUp { bounced })
    }
}

/// Why a message is given up, for the bounce's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// The relay refused it (5xx).
    Refused,
    /// Its lifetime ran out while the relay kept failing.
    Expired,
}

fn lease_secs() -> i64 {
    i64::try_from(Sender::LEASE.as_secs()).unwrap_or(i64::MAX)
}

/// The wait after attempt `attempt` (1-based): `min` doubled per earlier failure, at most `max`.
fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1).min(30)).unwrap_or(u32::MAX);
    min.checked_mul(factor).unwrap_or(max).min(max)
}

/// `1h 5m`, `40s`: a duration for log lines and bounces.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The enhanced status code (RFC 3463) of a relay's reply (`550 5.1.1 …` → `5.1.1`), else a
/// generic one for the reason.
fn status_code(error: &str, why: Expiry) -> String {
    let found = error.split_whitespace().find(|word| {
        let parts: Vec<&str> = word.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    });
    match (found, why) {
        (Some(code), Expiry::Refused) => format!("5{}", &code[1..]),
        (_, Expiry::Expired) => "4.4.7".to_owned(),
        (None, Expiry::Refused) => "5.0.0".to_owned(),
    }
}

/// A delivery status notification (RFC 3464, `multipart/report`) to the redirect's sender.
fn bounce_message(hostname: &str, mail: &ClaimedMail, error: &str, why: Expiry, now: i64) -> Vec<u8> {
    let boundary = format!("=_postfach_bounce_{}_{}", mail.lease.id, now);
    let error = error.replace(['\r', '\n'], " ");
    let status = status_code(&error, why);
    let headers_end = mail
        .data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(mail.data.len(), |p| p + 2)
        .min(MAX_BOUNCE_HEADERS);
    let headers = String::from_utf8_lossy(&mail.data[..headers_end]);
    let reason = match why {
        Expiry::Refused => "The mail system that handles outgoing mail refused it.",
        Expiry::Expired => "It could not be handed on for too long, so delivery was given up.",
    };
    let mut text = String::new();
    text.push_str(&format!("From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"));
    text.push_str(&format!("To: <{}>\r\n", mail.reverse_path));
    text.push_str("Subject: Undelivered Mail Returned to Sender\r\n");
    text.push_str(&format!("Date: {}\r\n", rfc5322_date(now)));
    text.push_str(&format!("Message-ID: <{}.{}.bounce@{hostname}>\r\n", mail.lease.id, now));
    text.push_str("Auto-Submitted: auto-replied\r\n");
    text.push_str("MIME-Version: 1.0\r\n");
    text.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"{boundary}\"\r\n\r\n"
    ));
    text.push_str(&format!("--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"));
    text.push_str(&format!(
        "This is the mail system at {hostname}.\r\n\r\nA filter of the recipient of your message \
         forwarded it to\r\n<{}>, and it could not be delivered there.\r\n{reason}\r\n\r\n{error}\r\n\r\n",
        mail.recipients.join(">, <")
    ));
    text.push_str(&format!("--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"));
    text.push_str(&format!(
        "Reporting-MTA: dns; {hostname}\r\nArrival-Date: {}\r\n",
        rfc5322_date(mail.created)
    ));
    for rcpt in &mail.recipients {
        text.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: {status}\r\nDiagnostic-Code: smtp; {error}\r\n"
        ));
    }
    text.push_str(&format!("\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"));
    text.push_str(&headers);
    if !headers.ends_with("\r\n") {
        text.push_str("\r\n");
    }
    text.push_str(&format!("\r\n--{boundary}--\r\n"));
    text.into_bytes()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let (min, max) = (Duration::from_secs(60), Duration::from_secs(3600));
        let waits: Vec<u64> = (1..=9).map(|a| backoff(a, min, max).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(backoff(u32::MAX, min, max), max);
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_code("RCPT: 550 5.1.1 no such user", Expiry::Refused), "5.1.1");
        assert_eq!(status_code("RCPT: 554 no", Expiry::Refused), "5.0.0");
        assert_eq!(status_code("connecting: refused", Expiry::Expired), "4.4.7");
    }

    #[test]
    fn keys_differ_by_every_part() {
        let k = redirect_key(AccountId(1), "a@x", "b@y", b"m");
        assert_eq!(k, redirect_key(AccountId(1), "a@x", "b@y", b"m"));
        assert!(k.len() <= postfach_store::queue::MAX_KEY_LEN);
        assert_ne!(k, redirect_key(AccountId(2), "a@x", "b@y", b"m"));
        assert_ne!(k, redirect_key(AccountId(1), "a@xb", "@y", b"m"));
        assert_ne!(k, redirect_key(AccountId(1), "a@x", "b@y", b"n"));
    }
}
