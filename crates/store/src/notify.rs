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
//!
//! NOTIFY (RFC 5465) sessions watch many mailboxes at once and also mailbox-list events. Each
//! holds a [`Listener`] registered for the mailboxes and accounts it cares about: a change marks
//! the mailbox in the listener's [`Pending`] set and wakes it, so the session reads the status
//! of the mailboxes that changed and of no other. List events (create, delete, rename,
//! subscribe, ACL) only say "the list of this account moved": the session reads the list
//! again and compares. METADATA changes carry the entry names. A listener's pending work is
//! bounded ([`Listener::new`]'s limit); past it the listener is marked overflowed and keeps
//! nothing more, and the session stops notifying (RFC 5465 §5.8).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;

use crate::types::{AccountId, MailboxId, ModSeq};

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
    /// NOTIFY listeners by what they registered for.
    listeners: Mutex<Listeners>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self {
            mailboxes: Mutex::default(),
            acl: watch::channel(0).0,
            credentials: watch::channel(0).0,
            listeners: Mutex::default(),
        }
    }
}

/// The NOTIFY listeners, indexed by the mailboxes and accounts they registered for. A listener
/// changing its registration touches only its own entries. Entries of listeners dropped without
/// [`Notifier::unregister`] go when a signal for them comes, and all of them every
/// [`SWEEP_AFTER`] registrations.
#[derive(Debug, Default)]
struct Listeners {
    by_mailbox: HashMap<MailboxId, Vec<Weak<Shared>>>,
    by_account: HashMap<AccountId, Vec<Weak<Shared>>>,
    /// Every listener (server metadata, ACL changes), by its address.
    all: HashMap<usize, Weak<Shared>>,
    registrations: u64,
}

/// Registrations between two sweeps of the listener index.
const SWEEP_AFTER: u64 = 4096;

/// A METADATA change (RFC 5464) a NOTIFY session may report (RFC 5465 §5.6, §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataChange {
    /// The mailbox whose entries changed; `None` for server entries.
    pub mailbox: Option<MailboxId>,
    /// The account whose `/private/` entries changed; `None` for `/shared/` ones, which
    /// everyone who may read the mailbox sees.
    pub private_to: Option<AccountId>,
    /// The changed entries' names.
    pub entries: Vec<String>,
}

impl MetadataChange {
    /// The changes one SETMETADATA of `account` on `place` made: one for its private entries,
    /// one for its shared ones (either left out when empty).
    pub fn of_write<'a>(
        place: crate::metadata::MetadataPlace,
        account: AccountId,
        entries: impl Iterator<Item = &'a str>,
    ) -> Vec<MetadataChange> {
        let mailbox = match place {
            crate::metadata::MetadataPlace::Server => None,
            crate::metadata::MetadataPlace::Mailbox(id) => Some(id),
        };
        let (private, shared): (Vec<String>, Vec<String>) =
            entries.map(str::to_owned).partition(|e| crate::metadata::is_private(e));
        let mut changes = Vec::new();
        if !private.is_empty() {
            changes.push(MetadataChange { mailbox, private_to: Some(account), entries: private });
        }
        if !shared.is_empty() {
            changes.push(MetadataChange { mailbox, private_to: None, entries: shared });
        }
        changes
    }
}

/// What happened since a [`Listener`] last took its pending work.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Mailboxes whose messages, flags or status changed.
    pub mailboxes: BTreeSet<MailboxId>,
    /// A mailbox list, subscription or ACL changed somewhere the listener registered for.
    pub lists: bool,
    /// METADATA changes, oldest first.
    pub metadata: Vec<MetadataChange>,
    /// More happened than the listener's limit: everything else was dropped.
    pub overflow: bool,
}

#[derive(Debug)]
struct Shared {
    /// What the listener is registered for (guarded by the notifier's index lock).
    registered: Mutex<(Vec<MailboxId>, Vec<AccountId>)>,
    pending: Mutex<Pending>,
    wake: tokio::sync::Notify,
    /// Pending mailboxes plus metadata changes kept at most.
    limit: usize,
}

impl Shared {
    fn update(&self, change: impl FnOnce(&mut Pending)) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.overflow {
            return;
        }
        change(&mut pending);
        if pending.mailboxes.len() + pending.metadata.len() > self.limit {
            *pending = Pending { overflow: true, ..Pending::default() };
        }
        drop(pending);
        self.wake.notify_one();
    }
}

/// One NOTIFY session's ear (RFC 5465): register it with [`Notifier::register`], wait with
/// [`Listener::wait`], then [`Listener::take`] what happened.
#[derive(Debug, Clone)]
pub struct Listener {
    shared: Arc<Shared>,
}

impl Listener {
    /// A listener that keeps at most `limit` pending mailboxes and metadata changes.
    pub fn new(limit: usize) -> Self {
        let shared = Shared {
            registered: Mutex::default(),
            pending: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            limit: limit.max(1),
        };
        Self { shared: Arc::new(shared) }
    }

    /// Resolves once something is pending (at once if something came since the last `take`).
    pub async fn wait(&self) {
        if self.has_pending() {
            return;
        }
        self.shared.wake.notified().await;
    }

    /// Whether anything is pending.
    pub fn has_pending(&self) -> bool {
        let pending = self.shared.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending != Pending::default()
    }

    /// Drops pending METADATA changes `mine` says are the session's own (RFC 5465 §5: not
    /// reported back).
    pub fn discard_metadata(&self, mine: impl Fn(&MetadataChange) -> bool) {
        self.shared.pending.lock().unwrap_or_else(|e| e.into_inner()).metadata.retain(|c| !mine(c));
    }

    /// Takes everything pending.
    pub fn take(&self) -> Pending {
        std::mem::take(&mut *self.shared.pending.lock().unwrap_or_else(|e| e.into_inner()))
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
        self.tell_listeners(mailbox);
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
        // A NOTIFY session compares the status it reads with the one it reported last, so a
        // late hint costs it one status read.
        self.tell_listeners(mailbox);
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

    /// Registers `listener` for changes of `mailboxes` and list changes of `accounts` (and
    /// for server metadata and ACL changes), replacing what it registered before.
    pub fn register(&self, listener: &Listener, mailboxes: &[MailboxId], accounts: &[AccountId]) {
        let mut index = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        Self::drop_registration(&mut index, listener);
        let me = Arc::downgrade(&listener.shared);
        index.registrations += 1;
        if index.registrations.is_multiple_of(SWEEP_AFTER) {
            index.by_mailbox.retain(|_, v| {
                v.retain(|w| w.strong_count() > 0);
                !v.is_empty()
            });
            index.by_account.retain(|_, v| {
                v.retain(|w| w.strong_count() > 0);
                !v.is_empty()
            });
            index.all.retain(|_, w| w.strong_count() > 0);
        }
        for id in mailboxes {
            index.by_mailbox.entry(*id).or_default().push(me.clone());
        }
        for account in accounts {
            index.by_account.entry(*account).or_default().push(me.clone());
        }
        index.all.insert(Arc::as_ptr(&listener.shared) as usize, me);
        *listener.shared.registered.lock().unwrap_or_else(|e| e.into_inner()) =
            (mailboxes.to_vec(), accounts.to_vec());
    }

    /// Stops `listener` hearing anything (NOTIFY NONE, the session's end).
    pub fn unregister(&self, listener: &Listener) {
        let mut index = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        Self::drop_registration(&mut index, listener);
        index.all.remove(&(Arc::as_ptr(&listener.shared) as usize));
    }

    /// Removes `listener` from the entries it registered for.
    fn drop_registration(index: &mut Listeners, listener: &Listener) {
        let me = Arc::downgrade(&listener.shared);
        let (mailboxes, accounts) =
            std::mem::take(&mut *listener.shared.registered.lock().unwrap_or_else(|e| e.into_inner()));
        for id in mailboxes {
            if let Some(list) = index.by_mailbox.get_mut(&id) {
                list.retain(|w| !w.ptr_eq(&me) && w.strong_count() > 0);
                if list.is_empty() {
                    index.by_mailbox.remove(&id);
                }
            }
        }
        for account in accounts {
            if let Some(list) = index.by_account.get_mut(&account) {
                list.retain(|w| !w.ptr_eq(&me) && w.strong_count() > 0);
                if list.is_empty() {
                    index.by_account.remove(&account);
                }
            }
        }
    }

    /// Every live listener.
    fn all_listeners(&self) -> Vec<Arc<Shared>> {
        let mut index = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        index.all.retain(|_, w| w.strong_count() > 0);
        index.all.values().filter_map(Weak::upgrade).collect()
    }

    /// Marks `mailbox` changed for the listeners registered for it.
    fn tell_listeners(&self, mailbox: MailboxId) {
        for listener in self.listeners_of(|index| index.by_mailbox.get_mut(&mailbox)) {
            listener.update(|p| {
                p.mailboxes.insert(mailbox);
            });
        }
    }

    /// The live listeners of one index entry (dropping dead ones from it).
    fn listeners_of(
        &self,
        entry: impl FnOnce(&mut Listeners) -> Option<&mut Vec<Weak<Shared>>>,
    ) -> Vec<Arc<Shared>> {
        let mut index = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = entry(&mut index) else { return Vec::new() };
        list.retain(|w| w.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    }

    /// A mailbox of `account` was created, deleted or renamed, or its subscriptions changed:
    /// wakes the NOTIFY listeners registered for the account (they read the list again).
    pub fn list_changed(&self, account: AccountId) {
        for listener in self.listeners_of(|index| index.by_account.get_mut(&account)) {
            listener.update(|p| p.lists = true);
        }
    }

    /// METADATA entries changed: to the listeners registered for the mailbox, or to every
    /// listener for server entries.
    pub fn metadata_changed(&self, change: MetadataChange) {
        let listeners = match change.mailbox {
            Some(id) => self.listeners_of(|index| index.by_mailbox.get_mut(&id)),
            None => self.all_listeners(),
        };
        for listener in listeners {
            listener.update(|p| p.metadata.push(change.clone()));
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
        // Rights decide which mailboxes a NOTIFY session sees (RFC 5465 §5.4, §5.9).
        for listener in self.all_listeners() {
            listener.update(|p| p.lists = true);
        }
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

    #[tokio::test]
    async fn listeners_hear_only_what_they_registered_for() {
        let n = Notifier::new();
        let listener = Listener::new(10);
        n.register(&listener, &[MailboxId(1), MailboxId(2)], &[AccountId(7)]);
        n.changed(MailboxId(3), ModSeq(1));
        n.list_changed(AccountId(8));
        assert!(!listener.has_pending());
        n.changed(MailboxId(2), ModSeq(4));
        n.advanced(MailboxId(1), ModSeq(9));
        n.changed(MailboxId(2), ModSeq(5));
        n.list_changed(AccountId(7));
        n.metadata_changed(MetadataChange {
            mailbox: None,
            private_to: None,
            entries: vec!["/shared/x".into()],
        });
        n.metadata_changed(MetadataChange { mailbox: Some(MailboxId(5)), private_to: None, entries: vec![] });
        listener.wait().await;
        let pending = listener.take();
        assert_eq!(pending.mailboxes, BTreeSet::from([MailboxId(1), MailboxId(2)]));
        assert!(pending.lists && !pending.overflow);
        assert_eq!(pending.metadata.len(), 1);
        assert!(!listener.has_pending());
        // A new registration replaces the old one.
        n.register(&listener, &[MailboxId(3)], &[]);
        n.changed(MailboxId(1), ModSeq(10));
        n.list_changed(AccountId(7));
        assert!(!listener.has_pending());
        n.acl_changed(None);
        assert!(listener.take().lists);
        n.unregister(&listener);
        n.changed(MailboxId(3), ModSeq(11));
        n.acl_changed(None);
        assert!(!listener.has_pending());
    }

    #[test]
    fn a_listener_that_falls_behind_overflows() {
        let n = Notifier::new();
        let listener = Listener::new(2);
        let ids: Vec<MailboxId> = (1..=5).map(MailboxId).collect();
        n.register(&listener, &ids, &[]);
        n.changed(MailboxId(1), ModSeq(1));
        n.changed(MailboxId(1), ModSeq(2));
        n.changed(MailboxId(2), ModSeq(1));
        assert!(!listener.take().overflow, "repeated changes of one mailbox count once");
        for id in &ids {
            n.changed(*id, ModSeq(3));
        }
        let pending = listener.take();
        assert!(pending.overflow && pending.mailboxes.is_empty());
        drop(listener);
        n.changed(MailboxId(1), ModSeq(4));
        let index = n.listeners.lock().unwrap_or_else(|e| e.into_inner());
        assert!(index.by_mailbox.get(&MailboxId(1)).is_none_or(Vec::is_empty));
    }

    #[test]
    fn unwatched_entries_are_dropped() {
        let n = Notifier::new();
        drop(n.watch(MailboxId(1)));
        n.changed(MailboxId(1), ModSeq(2));
        assert!(n.lock().is_empty());
    }
}
