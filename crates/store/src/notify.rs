//! In-process fan-out of "this mailbox changed" signals.
//!
//! A backend calls [`Notifier::changed`] after a change is durable; every session that has the
//! mailbox selected holds a [`tokio::sync::watch`] receiver and wakes (IDLE) or checks at the next
//! command. The signal carries only the new highest modseq: the session asks the store what
//! changed, so a missed wake-up loses nothing. A multi-node backend feeds the same interface from
//! PostgreSQL LISTEN/NOTIFY.
//!
//! Memory: one small entry per mailbox that somebody watches; entries nobody watches are dropped
//! on the next `changed` call for them.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::types::{MailboxId, ModSeq};

/// The fan-out hub. Cheap to share behind the store.
#[derive(Debug)]
pub struct Notifier {
    mailboxes: Mutex<HashMap<MailboxId, watch::Sender<ModSeq>>>,
    /// Moves on every ACL, team-membership or group change anywhere: a session compares it at
    /// each command (and when its mailbox's watch fires) and re-reads its rights only then.
    acl: watch::Sender<u64>,
    /// Moves when credentials or address blocks changed somewhere (another node's write, told
    /// through the store): the authenticator re-reads them at once instead of at its next poll.
    credentials: watch::Sender<u64>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self { mailboxes: Mutex::default(), acl: watch::channel(0).0, credentials: watch::channel(0).0 }
    }
}

impl Notifier {
    /// A hub with no watchers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A receiver that sees every later `changed` of `mailbox`.
    pub fn watch(&self, mailbox: MailboxId) -> watch::Receiver<ModSeq> {
        let mut map = self.lock();
        match map.get(&mailbox) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(ModSeq(0));
                map.insert(mailbox, tx);
                rx
            }
        }
    }

    /// Signals that `mailbox` changed and its highest modseq is now `modseq`.
    pub fn changed(&self, mailbox: MailboxId, modseq: ModSeq) {
        let mut map = self.lock();
        let Some(tx) = map.get(&mailbox) else { return };
        if tx.receiver_count() == 0 {
            map.remove(&mailbox);
            return;
        }
        tx.send_replace(modseq);
    }

    /// Like [`Notifier::changed`] for a signal from elsewhere (another node, a periodic
    /// check): wakes the watchers only when `modseq` is above what they last saw, so late or
    /// repeated hints cost nothing.
    pub fn advanced(&self, mailbox: MailboxId, modseq: ModSeq) {
        let map = self.lock();
        if let Some(tx) = map.get(&mailbox) {
            tx.send_if_modified(|seen| {
                let newer = modseq > *seen;
                if newer {
                    *seen = modseq;
                }
                newer
            });
        }
    }

    /// The mailboxes somebody watches, with the modseq their watchers last saw.
    pub fn watched(&self) -> Vec<(MailboxId, ModSeq)> {
        self.lock()
            .iter()
            .filter(|(_, tx)| tx.receiver_count() > 0)
            .map(|(id, tx)| (*id, *tx.borrow()))
            .collect()
    }

    /// An ACL of `mailbox` (or group/team membership, `None`: any mailbox) changed: bumps the
    /// ACL generation and wakes the mailbox's watchers (with its modseq unchanged) so that an
    /// idling session re-checks its rights at once.
    pub fn acl_changed(&self, mailbox: Option<MailboxId>) {
        self.acl.send_modify(|g| *g += 1);
        let map = self.lock();
        match mailbox {
            Some(id) => {
                if let Some(tx) = map.get(&id) {
                    tx.send_modify(|_| {});
                }
            }
            None => {
                for tx in map.values() {
                    tx.send_modify(|_| {});
                }
            }
        }
    }

    /// Credentials (passwords, app passwords, TOTP, accounts) or address blocks changed.
    pub fn credentials_changed(&self) {
        self.credentials.send_modify(|g| *g += 1);
    }

    /// A receiver that wakes at every [`Notifier::credentials_changed`].
    pub fn watch_credentials(&self) -> watch::Receiver<u64> {
        self.credentials.subscribe()
    }

    /// The ACL generation (see [`Notifier::acl_changed`]).
    pub fn acl_generation(&self) -> u64 {
        *self.acl.borrow()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MailboxId, watch::Sender<ModSeq>>> {
        // A poisoned lock only means another thread panicked while holding it; the map is still
        // consistent (every operation on it is a single insert/remove).
        self.mailboxes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watcher_sees_change() {
        let n = Notifier::new();
        let mut rx = n.watch(MailboxId(1));
        n.changed(MailboxId(1), ModSeq(5));
        rx.changed().await.expect("sender alive");
        assert_eq!(*rx.borrow(), ModSeq(5));
    }

    #[tokio::test]
    async fn advanced_only_wakes_for_a_higher_modseq() {
        let n = Notifier::new();
        let mut rx = n.watch(MailboxId(1));
        n.changed(MailboxId(1), ModSeq(5));
        rx.changed().await.expect("sender alive");
        n.advanced(MailboxId(1), ModSeq(5));
        n.advanced(MailboxId(1), ModSeq(3));
        assert!(!rx.has_changed().expect("sender alive"));
        n.advanced(MailboxId(1), ModSeq(7));
        assert!(rx.has_changed().expect("sender alive"));
        assert_eq!(n.watched(), vec![(MailboxId(1), ModSeq(7))]);
    }

    #[test]
    fn unwatched_entries_are_dropped() {
        let n = Notifier::new();
        drop(n.watch(MailboxId(1)));
        n.changed(MailboxId(1), ModSeq(2));
        assert!(n.lock().is_empty());
    }
}
