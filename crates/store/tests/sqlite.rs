//! Runs the backend conformance suite against the SQLite store (a fresh database in a temporary
//! directory per check), plus checks only SQLite can answer: what is left in the file.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use postfach_store::conformance::{self, Stores};
use postfach_store::sqlite::DATABASE_FILE;
use postfach_store::{
    AccountStore, MailStore, MailboxName, SqliteStore, StoreError, StoreLimits, StoreResult,
};

fn open(dir: &Path) -> StoreResult<Stores> {
    let store = Arc::new(SqliteStore::open(dir)?);
    Ok(Stores { mail: Arc::clone(&store) as Arc<dyn MailStore>, accounts: store as Arc<dyn AccountStore> })
}

fn fresh() -> (tempfile::TempDir, Stores) {
    let dir = tempfile::tempdir().unwrap();
    let stores = open(dir.path()).unwrap();
    (dir, stores)
}

/// Counts rows of a table through a separate connection (a second process would see the same).
fn count(dir: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(dir.join(DATABASE_FILE)).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (_dir, stores) = fresh();
                if let Err(failure) = conformance::$check(&stores).await {
                    panic!("{failure}");
                }
            }
        )*
    };
}

conformance_tests!(
    accounts_and_defaults,
    uids_ascending_and_counters,
    uid_validity_changes_on_recreate,
    mailbox_list_rules,
    rename_with_children,
    rename_inbox,
    flags_keywords_and_counters,
    unchanged_since,
    changes_since,
    copy_and_move,
    recent_claim,
    search_criteria,
    notifier_fires_after_writes,
    concurrent_appends_get_distinct_uids,
    multiappend_is_atomic,
    fetch_and_body,
    expunge_subsets,
    delete_account_removes_everything,
);

/// The mailbox cap holds under concurrent creates (the count is taken in the insert's
/// transaction), counts RENAME INBOX's new mailbox, and binds one account only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_cap_holds_under_concurrent_creates() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open_with(dir.path(), StoreLimits { max_mailboxes: 10, ..StoreLimits::default() })
            .unwrap(),
    );
    let alice = store.create_account("alice", "x").await.unwrap();
    let bob = store.create_account("bob", "x").await.unwrap();
    // Six default mailboxes: room for four more, however many ask at once.
    let tries = (0..20).map(|i| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store.create_mailbox(alice, &MailboxName::new(&format!("m{i}")).unwrap(), None).await
        })
    });
    let mut made = 0;
    for t in tries {
        match t.await.unwrap() {
            Ok(_) => made += 1,
            Err(StoreError::Limit(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(made, 4);
    assert_eq!(store.list_mailboxes(alice).await.unwrap().len(), 10);
    // An existing name is still "exists", not "limit".
    let m0 = MailboxName::new("m0").unwrap();
    let taken = store.create_mailbox(alice, &m0, None).await;
    assert!(matches!(taken, Err(StoreError::AlreadyExists)), "{taken:?}");
    let inbox = MailboxName::new("INBOX").unwrap();
    let moved = store.rename_mailbox(alice, &inbox, &MailboxName::new("Old").unwrap()).await;
    assert!(matches!(moved, Err(StoreError::Limit(_))), "{moved:?}");
    // Renaming within the count is fine; deleting makes room again.
    store
        .rename_mailbox(alice, &MailboxName::new("Junk").unwrap(), &MailboxName::new("Spam").unwrap())
        .await
        .unwrap();
    let spam = store.mailbox_by_name(alice, &MailboxName::new("Spam").unwrap()).await.unwrap().unwrap();
    store.delete_mailbox(alice, spam.id).await.unwrap();
    store.create_mailbox(alice, &MailboxName::new("again").unwrap(), None).await.unwrap();
    // Bob is not affected by Alice's mailboxes.
    store.create_mailbox(bob, &MailboxName::new("bobs").unwrap(), None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uids_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let result = conformance::uids_survive_reopen(|| {
        let path = path.clone();
        async move { open(&path) }
    })
    .await;
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_one_store() {
    let (_dir, stores) = fresh();
    if let Err(failure) = conformance::run_all(stores.mail, stores.accounts).await {
        panic!("{failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_everything_leaves_no_bodies() {
    let (dir, stores) = fresh();
    conformance::copy_and_move(&stores).await.unwrap();
    conformance::delete_account_removes_everything(&stores).await.unwrap();
    assert!(count(dir.path(), "bodies") > 0);
    for account in stores.accounts.list_accounts().await.unwrap() {
        stores.accounts.delete_account(account.id).await.unwrap();
    }
    drop(stores);
    for table in
        ["bodies", "messages", "expunged", "mailboxes", "mailbox_keywords", "subscriptions", "accounts"]
    {
        assert_eq!(count(dir.path(), table), 0, "{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_share_one_body() {
    let (dir, stores) = fresh();
    let account = stores.accounts.create_account("share", "x").await.unwrap();
    let inbox =
        stores.mail.mailbox_by_name(account, &MailboxName::new("INBOX").unwrap()).await.unwrap().unwrap().id;
    let archive = stores
        .mail
        .mailbox_by_name(account, &MailboxName::new("Archive").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let message = postfach_store::NewMessage {
        raw: b"Subject: shared\r\n\r\nbody\r\n".to_vec().into(),
        flags: postfach_store::Flags::default(),
        internal_date: None,
    };
    stores.mail.append(inbox, vec![message]).await.unwrap();
    let all = postfach_store::UidSet::from_ranges([1..=u32::MAX]);
    stores.mail.copy(inbox, &all, archive).await.unwrap();
    stores.mail.copy(inbox, &all, inbox).await.unwrap();
    assert_eq!(count(dir.path(), "bodies"), 1);
    assert_eq!(count(dir.path(), "messages"), 3);
}

#[test]
fn a_second_process_can_open_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let first = open(dir.path()).unwrap();
    // The admin CLI opens the database while the server runs.
    let second = open(dir.path()).unwrap();
    rt.block_on(async {
        let id = second.accounts.create_account("cli-made", "x").await.unwrap();
        let seen = first.accounts.account_by_name("CLI-MADE").await.unwrap().unwrap();
        assert_eq!(seen.id, id);
        let inbox =
            first.mail.mailbox_by_name(id, &MailboxName::new("INBOX").unwrap()).await.unwrap().unwrap().id;
        let (a, b) = tokio::join!(
            first.mail.append(
                inbox,
                vec![postfach_store::NewMessage {
                    raw: b"Subject: a\r\n\r\na\r\n".to_vec().into(),
                    flags: postfach_store::Flags::default(),
                    internal_date: None,
                }]
            ),
            second.mail.append(
                inbox,
                vec![postfach_store::NewMessage {
                    raw: b"Subject: b\r\n\r\nb\r\n".to_vec().into(),
                    flags: postfach_store::Flags::default(),
                    internal_date: None,
                }]
            ),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_ne!(a[0].uid, b[0].uid);
        assert_eq!(second.mail.status(inbox).await.unwrap().messages, 2);
    });
}
