//! Push between nodes: PostgreSQL LISTEN/NOTIFY feeding each node's [`Notifier`].
//!
//! After a write commits, its change hints — `(mailbox, modseq)` pairs and ACL changes — go to
//! this node's *coalescer*, which gathers them for [`COALESCE`], keeps the highest modseq per
//! mailbox, and sends them as few `pg_notify` calls as fit ([`MAX_PAYLOAD`] bytes each) on
//! [`CHANNEL`]. Every node keeps one direct connection (outside the pool) that `LISTEN`s on the
//! channel and feeds what other nodes sent to its own notifier, so an IDLE session on node B
//! wakes for an APPEND, flag change or expunge made on node A. A node skips its own payloads
//! (they were delivered in-process already).
//!
//! Hints can be lost (a node's LISTEN connection drops, a NOTIFY fails): every [`SWEEP_EVERY`]
//! and after every reconnect the listener reads the highest modseq of every mailbox watched on
//! this node and wakes those that moved ([`Notifier::advanced`]), and after a reconnect it also
//! bumps the ACL generation so sessions re-read their rights. A session asks the store what
//! changed, so a hint only ever needs to say "look".
//!
//! Payload: `<node>` then `;` separated items, `c<mailbox>:<modseq>`, `a<mailbox>` / `a*`
//! (an ACL of one mailbox, or any membership, changed), `k` (credentials or address blocks
//! changed: the authenticators re-read them), `l<account>` (the account's mailbox list or
//! subscriptions changed: NOTIFY sessions read them again) or `m<mailbox>:<account>:<entry>`
//! (a METADATA entry changed; `-` for the server and for a shared entry, the entry name in
//! hex). Missed `l` hints are made up for by the ACL bump after a reconnect (which makes NOTIFY
//! sessions read their lists again); missed `m` hints are lost.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Weak};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use crate::notify::{MetadataChange, Notifier};
use crate::types::{AccountId, MailboxId, ModSeq};

/// The notification channel.
pub const CHANNEL: &str = "postfach_changes";

/// How long the coalescer gathers hints before it sends them.
pub const COALESCE: Duration = Duration::from_millis(3);

/// The longest payload sent in one NOTIFY (PostgreSQL's limit is 8000 bytes).
const MAX_PAYLOAD: usize = 7900;

/// How often the listener checks the watched mailboxes for changes it was not told about.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Pause before the listener connects again after losing its connection.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// One change hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hint {
    /// The mailbox's highest modseq is now at least this.
    Changed(MailboxId, ModSeq),
    /// The ACL (or seen mode) of this mailbox changed, or (`None`) a team or group membership.
    Acl(Option<MailboxId>),
    /// Credentials or address blocks changed.
    Credentials,
    /// The mailbox list or subscriptions of this account changed.
    List(AccountId),
    /// METADATA entries changed.
    Metadata(MetadataChange),
}

/// The running bridge: dropping it stops both tasks.
pub(crate) struct Bridge {
    hints: mpsc::UnboundedSender<Hint>,
    /// Hints handed over and not sent yet (see [`Bridge::drain`]).
    pending: Arc<std::sync::atomic::AtomicUsize>,
    _stop: watch::Sender<()>,
}

impl Bridge {
    /// Starts the coalescer and the listener (on the current tokio runtime).
    pub(crate) fn start(
        config: tokio_postgres::Config,
        tls: super::Connector,
        pool: Pool,
        notifier: &Arc<Notifier>,
    ) -> Bridge {
        let node = node_id();
        let (hints, received) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(());
        let pending = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        tokio::spawn(coalesce(node, received, pool.clone(), Arc::clone(&pending), stopped.clone()));
        tokio::spawn(listen(node, config, tls, pool, Arc::downgrade(notifier), stopped));
        Bridge { hints, pending, _stop: stop }
    }

    /// Queues a hint for the other nodes (after COMMIT).
    pub(crate) fn send(&self, hint: Hint) {
        self.pending.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Fails only once the coalescer has stopped (the store is going away).
        if self.hints.send(hint).is_err() {
            self.pending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Hints handed over and not sent yet.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A number telling this process's payloads from other nodes' (pid and start time).
fn node_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 40)
}

/// Gathers hints for [`COALESCE`] and sends them with `pg_notify`.
async fn coalesce(
    node: u64,
    mut received: mpsc::UnboundedReceiver<Hint>,
    pool: Pool,
    pending: Arc<std::sync::atomic::AtomicUsize>,
    mut stopped: watch::Receiver<()>,
) {
    loop {
        let first = tokio::select! {
            hint = received.recv() => match hint {
                Some(hint) => hint,
                None => return,
            },
            _ = stopped.changed() => return,
        };
        tokio::time::sleep(COALESCE).await;
        let mut batch = vec![first];
        while let Ok(hint) = received.try_recv() {
            batch.push(hint);
        }
        let payloads = encode(node, &batch);
        match pool.get().await {
            Ok(client) => {
                for payload in payloads {
                    if let Err(e) = client.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await {
                        tracing::warn!(error = %e, "NOTIFY failed; other nodes see the change at their next check");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "NOTIFY skipped: no database connection"),
        }
        pending.fetch_sub(batch.len(), std::sync::atomic::Ordering::SeqCst);
    }
}

/// The payloads for `batch`: the highest modseq per mailbox, ACL hints once each.
pub(crate) fn encode(node: u64, batch: &[Hint]) -> Vec<String> {
    let mut changed: HashMap<MailboxId, ModSeq> = HashMap::new();
    let mut acl: Vec<Option<MailboxId>> = Vec::new();
    let mut credentials = false;
    let mut lists: Vec<AccountId> = Vec::new();
    let mut metadata: Vec<String> = Vec::new();
    for hint in batch {
        match hint {
            Hint::Changed(mailbox, modseq) => {
                let seen = changed.entry(*mailbox).or_default();
                *seen = (*seen).max(*modseq);
            }
            Hint::Acl(mailbox) => {
                if !acl.contains(mailbox) {
                    acl.push(*mailbox);
                }
            }
            Hint::Credentials => credentials = true,
            Hint::List(account) => {
                if !lists.contains(account) {
                    lists.push(*account);
                }
            }
            Hint::Metadata(change) => {
                let mailbox = change.mailbox.map_or_else(|| "-".to_owned(), |m| m.0.to_string());
                let account = change.private_to.map_or_else(|| "-".to_owned(), |a| a.0.to_string());
                // One item per entry: every item fits a payload whatever the entry count.
                for entry in &change.entries {
                    let hex: String = entry.bytes().map(|b| format!("{b:02x}")).collect();
                    metadata.push(format!("m{mailbox}:{account}:{hex}"));
                }
            }
        }
    }
    let mut items: Vec<String> = changed.into_iter().map(|(m, s)| format!("c{}:{}", m.0, s.0)).collect();
    items.sort();
    items.extend(acl.into_iter().map(|m| m.map_or_else(|| "a*".to_owned(), |m| format!("a{}", m.0))));
    items.extend(lists.into_iter().map(|a| format!("l{}", a.0)));
    items.extend(metadata);
    if credentials {
        items.push("k".to_owned());
    }
    let head = format!("{node:x}");
    let mut payloads = Vec::new();
    let mut current = head.clone();
    for item in items {
        if current.len() + 1 + item.len() > MAX_PAYLOAD {
            payloads.push(std::mem::replace(&mut current, head.clone()));
        }
        let _ = write!(current, ";{item}");
    }
    if current.len() > head.len() {
        payloads.push(current);
    }
    payloads
}

/// Reads a payload: `None` when it is this node's own or not one of ours.
pub(crate) fn decode(node: u64, payload: &str) -> Option<Vec<Hint>> {
    let mut parts = payload.split(';');
    let sender = u64::from_str_radix(parts.next()?, 16).ok()?;
    if sender == node {
        return None;
    }
    let mut hints = Vec::new();
    for item in parts {
        if let Some(rest) = item.strip_prefix('c') {
            let (mailbox, modseq) = rest.split_once(':')?;
            hints.push(Hint::Changed(MailboxId(mailbox.parse().ok()?), ModSeq(modseq.parse().ok()?)));
        } else if item == "a*" {
            hints.push(Hint::Acl(None));
        } else if item == "k" {
            hints.push(Hint::Credentials);
        } else if let Some(rest) = item.strip_prefix('l') {
            hints.push(Hint::List(AccountId(rest.parse().ok()?)));
        } else if let Some(rest) = item.strip_prefix('m') {
            let mut parts = rest.splitn(3, ':');
            let (mailbox, account, hex) = (parts.next()?, parts.next()?, parts.next()?);
            let id = |s: &str| if s == "-" { Ok(None) } else { s.parse().map(Some) };
            let mailbox = id(mailbox).ok()?.map(MailboxId);
            let private_to = id(account).ok()?.map(AccountId);
            if hex.len() % 2 != 0 {
                return None;
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            let entry = String::from_utf8(bytes).ok()?;
            hints.push(Hint::Metadata(MetadataChange { mailbox, private_to, entries: vec![entry] }));
        } else if let Some(rest) = item.strip_prefix('a') {
            hints.push(Hint::Acl(Some(MailboxId(rest.parse().ok()?))));
        } else {
            return None;
        }
    }
    Some(hints)
}

/// Hands hints from other nodes to the notifier.
fn apply(notifier: &Notifier, hints: Vec<Hint>) {
    for hint in hints {
        match hint {
            Hint::Changed(mailbox, modseq) => notifier.advanced(mailbox, modseq),
            Hint::Acl(mailbox) => notifier.acl_changed(mailbox),
            Hint::Credentials => notifier.credentials_changed(),
            Hint::List(account) => notifier.list_changed(account),
            Hint::Metadata(change) => notifier.metadata_changed(change),
        }
    }
}

/// Keeps one LISTEN connection, reconnecting after a pause when it drops; sweeps after each
/// (re)connect and every [`SWEEP_EVERY`].
async fn listen(
    node: u64,
    config: tokio_postgres::Config,
    tls: super::Connector,
    pool: Pool,
    notifier: Weak<Notifier>,
    mut stopped: watch::Receiver<()>,
) {
    let mut first = true;
    loop {
        let session = match &tls {
            super::Connector::Plain => match config.connect(NoTls).await {
                Ok((client, connection)) => {
                    listen_once(node, client, connection, &pool, &notifier, &mut stopped, first).await
                }
                Err(e) => Err(e),
            },
            super::Connector::Tls(make) => match config.connect(make.clone()).await {
                Ok((client, connection)) => {
                    listen_once(node, client, connection, &pool, &notifier, &mut stopped, first).await
                }
                Err(e) => Err(e),
            },
        };
        // The store went away while the connection ended (an admin command finishing): its
        // closing is no news, and a warning would land in the command's output.
        if stopped.has_changed().is_err() {
            return;
        }
        match session {
            Ok(Ended::Stopped) => return,
            Ok(Ended::Lost) => tracing::warn!("the LISTEN connection to PostgreSQL closed; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "the LISTEN connection to PostgreSQL failed; reconnecting"),
        }
        first = false;
        tokio::select! {
            () = tokio::time::sleep(RECONNECT_AFTER) => {}
            _ = stopped.changed() => return,
        }
    }
}

enum Ended {
    Stopped,
    Lost,
}

async fn listen_once<S, T>(
    node: u64,
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<S, T>,
    pool: &Pool,
    notifier: &Weak<Notifier>,
    stopped: &mut watch::Receiver<()>,
    first: bool,
) -> Result<Ended, tokio_postgres::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (messages, mut incoming) = mpsc::unbounded_channel();
    // The connection is driven here; notifications go to the loop below.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if messages.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "LISTEN connection error");
                    return;
                }
                None => return,
            }
        }
    });
    let result = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        tracing::debug!("listening for changes from other nodes");
        // Whatever happened while this node was not listening (not on the first connect: no
        // session has anything selected yet that a missed hint could concern).
        if !first {
            let Some(n) = notifier.upgrade() else { return Ok(Ended::Stopped) };
            n.acl_changed(None);
            n.credentials_changed();
            sweep(pool, &n).await;
        }
        let mut ticker = tokio::time::interval(SWEEP_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                payload = incoming.recv() => {
                    let Some(payload) = payload else { return Ok(Ended::Lost) };
                    let Some(n) = notifier.upgrade() else { return Ok(Ended::Stopped) };
                    if let Some(hints) = decode(node, &payload) {
                        apply(&n, hints);
                    }
                }
                _ = ticker.tick() => {
                    let Some(n) = notifier.upgrade() else { return Ok(Ended::Stopped) };
                    sweep(pool, &n).await;
                }
                _ = stopped.changed() => return Ok(Ended::Stopped),
            }
        }
    }
    .await;
    driver.abort();
    result
}

/// Wakes the watchers of every watched mailbox whose highest modseq moved past what they saw.
async fn sweep(pool: &Pool, notifier: &Notifier) {
    let watched = notifier.watched();
    if watched.is_empty() {
        return;
    }
    let ids: Vec<i64> = watched.iter().map(|(m, _)| m.0).collect();
    let owners: Vec<i64> = ids.iter().map(|id| super::owner_of(*id)).collect();
    let rows = match pool.get().await {
        Ok(client) => {
            client
                .query(
                    "SELECT m.id, m.highest_modseq FROM mailboxes m
                     JOIN unnest($1::bigint[], $2::bigint[]) AS w(owner_id, id)
                       ON m.owner_id = w.owner_id AND m.id = w.id",
                    &[&owners, &ids],
                )
                .await
        }
        Err(e) => {
            tracing::warn!(error = %e, "change sweep skipped: no database connection");
            return;
        }
    };
    match rows {
        Ok(rows) => {
            for row in rows {
                let modseq = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
                notifier.advanced(MailboxId(row.get(0)), ModSeq(modseq));
            }
        }
        Err(e) => tracing::warn!(error = %e, "change sweep failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_skip_their_own_node() {
        let batch = [
            Hint::Changed(MailboxId(7), ModSeq(3)),
            Hint::Changed(MailboxId(7), ModSeq(9)),
            Hint::Acl(None),
            Hint::Acl(Some(MailboxId(4))),
            Hint::Credentials,
            Hint::Acl(None),
        ];
        let payloads = encode(0xabc, &batch);
        assert_eq!(payloads, ["abc;c7:9;a*;a4;k"]);
        assert_eq!(decode(0xabc, &payloads[0]), None);
        assert_eq!(
            decode(1, &payloads[0]),
            Some(vec![
                Hint::Changed(MailboxId(7), ModSeq(9)),
                Hint::Acl(None),
                Hint::Acl(Some(MailboxId(4))),
                Hint::Credentials
            ])
        );
        assert_eq!(decode(1, "zz;c1:2"), None);
        assert_eq!(decode(1, "1;x"), None);
    }

    #[test]
    fn list_and_metadata_hints_round_trip() {
        let shared = MetadataChange {
            mailbox: Some(MailboxId(5)),
            private_to: None,
            entries: vec!["/shared/a;b".into()],
        };
        let private = MetadataChange {
            mailbox: None,
            private_to: Some(AccountId(3)),
            entries: vec!["/private/x".into(), "/private/y".into()],
        };
        let batch = [
            Hint::List(AccountId(2)),
            Hint::List(AccountId(2)),
            Hint::Metadata(shared.clone()),
            Hint::Metadata(private),
        ];
        let payloads = encode(0xabc, &batch);
        assert_eq!(payloads.len(), 1);
        let split = |entry: &str| MetadataChange {
            mailbox: None,
            private_to: Some(AccountId(3)),
            entries: vec![entry.into()],
        };
        assert_eq!(
            decode(1, &payloads[0]),
            Some(vec![
                Hint::List(AccountId(2)),
                Hint::Metadata(shared),
                Hint::Metadata(split("/private/x")),
                Hint::Metadata(split("/private/y")),
            ])
        );
        assert_eq!(decode(1, "1;m1:-:6"), None);
        assert_eq!(decode(1, "1;m1:-:zz"), None);
        assert_eq!(decode(1, "1;lx"), None);
    }

    #[test]
    fn many_hints_split_into_payloads_under_the_limit() {
        let batch: Vec<Hint> =
            (0..2000).map(|i| Hint::Changed(MailboxId(1 << 40 | i), ModSeq(u64::MAX))).collect();
        let payloads = encode(u64::MAX, &batch);
        assert!(payloads.len() > 1);
        let mut seen = 0;
        for p in &payloads {
            assert!(p.len() <= MAX_PAYLOAD, "{}", p.len());
            seen += decode(1, p).expect("a payload of ours").len();
        }
        assert_eq!(seen, 2000);
    }
}
