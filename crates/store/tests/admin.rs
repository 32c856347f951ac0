//! The store helpers behind the admin CLI (issue 14): `remove_messages` (`postfach expunge`)
//! and `rederive` (`postfach index rebuild`), against the SQLite store.

#![allow(clippy::unwrap_used)]

use postfach_store::sqlite::{Rederivation, Rederived};
use postfach_store::{
    AccountStore, Criterion, FetchWant, Flags, MailStore, MailboxName, NewMessage, SqliteStore, SystemFlags,
    Uid, UidSet,
};

fn message(subject: &str, flags: SystemFlags) -> NewMessage {
    let raw = format!("From: a@example.org\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n");
    NewMessage {
        raw: raw.into_bytes().into(),
        flags: Flags { system: flags, keywords: Vec::new() },
        internal_date: None,
    }
}

fn uids(list: &[u32]) -> Vec<Uid> {
    list.iter().map(|n| Uid::new(*n).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_messages_expunges_exactly_the_given_uids() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let alice = store.create_account("alice", "x").await.unwrap();
    let inbox = store.mailbox_by_name(alice, &MailboxName::inbox()).await.unwrap().unwrap().id;
    let none = SystemFlags::default();
    let batch = vec![
        message("one", none),
        message("two", SystemFlags::SEEN),
        message("three", SystemFlags::DELETED),
        message("four", none),
    ];
    store.append(inbox, batch).await.unwrap();

    let removed = store.remove_messages(inbox, &UidSet::from_uids(uids(&[1, 2, 9]))).await.unwrap();
    assert_eq!(removed, uids(&[1, 2]), "UID 9 does not exist");
    // UID 3 was flagged \Deleted before and was not asked for: it stays (UID EXPUNGE).
    let left = store.fetch(inbox, &UidSet::from_ranges([1..=9]), FetchWant::default()).await.unwrap();
    let left: Vec<u32> = left.iter().map(|m| m.uid.get()).collect();
    assert_eq!(left, vec![3, 4]);
    let status = store.status(inbox).await.unwrap();
    assert_eq!((status.messages, status.deleted), (2, 1));
    assert_eq!(store.remove_messages(inbox, &UidSet::new()).await.unwrap(), Vec::<Uid>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rederive_covers_all_bodies_or_one_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let alice = store.create_account("alice", "x").await.unwrap();
    let bob = store.create_account("bob", "x").await.unwrap();
    let a = store.mailbox_by_name(alice, &MailboxName::inbox()).await.unwrap().unwrap().id;
    let b = store.mailbox_by_name(bob, &MailboxName::inbox()).await.unwrap().unwrap().id;
    let none = SystemFlags::default();
    store.append(a, vec![message("a1", none), message("a2", none)]).await.unwrap();
    store.append(b, vec![message("b1", none)]).await.unwrap();

    let mine = store.rederive(Rederivation::Account(alice)).await.unwrap();
    assert_eq!(mine, Rederived { scheduled: 2, derived: 2 });
    let all = store.rederive(Rederivation::All).await.unwrap();
    assert_eq!(all, Rederived { scheduled: 3, derived: 3 });
    // The rows answer as before.
    let found = store.search(a, &Criterion::Header("subject".to_owned(), "a2".to_owned())).await.unwrap();
    assert_eq!(found, uids(&[2]));
    let empty = store.create_account("carol", "x").await.unwrap();
    assert_eq!(store.rederive(Rederivation::Account(empty)).await.unwrap().scheduled, 0);
}

/// The web admin flag (`postfach user set NAME --admin`): set, listed, taken, gone with the
/// account; unknown accounts are `NotFound`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_admin_flag_is_kept_per_account() {
    use postfach_store::{AccountId, OperationsStore, StoreError};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let alice = store.create_account("alice", "x").await.unwrap();
    let bob = store.create_account("bob", "x").await.unwrap();
    assert!(!OperationsStore::is_admin(&store, alice).await.unwrap());
    OperationsStore::set_admin(&store, alice, true).await.unwrap();
    OperationsStore::set_admin(&store, alice, true).await.unwrap();
    assert!(OperationsStore::is_admin(&store, alice).await.unwrap());
    assert!(!OperationsStore::is_admin(&store, bob).await.unwrap());
    assert_eq!(OperationsStore::admins(&store).await.unwrap(), vec![alice]);
    OperationsStore::set_admin(&store, bob, true).await.unwrap();
    OperationsStore::set_admin(&store, alice, false).await.unwrap();
    assert_eq!(OperationsStore::admins(&store).await.unwrap(), vec![bob]);
    store.delete_account(bob).await.unwrap();
    assert!(OperationsStore::admins(&store).await.unwrap().is_empty());
    assert!(matches!(
        OperationsStore::set_admin(&store, AccountId(9999), true).await,
        Err(StoreError::NotFound)
    ));
}
