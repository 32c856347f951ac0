//! Runs the backend conformance suite against the SQLite store (a fresh database in a temporary
//! directory per check), plus checks only SQLite can answer: what is left in the file.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use postfach_store::conformance::{self, Stores};
use postfach_store::sqlite::DATABASE_FILE;
use postfach_store::{
    AccountStore, MailStore, MailboxName, OverQuota, QuotaLimits, QuotaResource, ShareStore, SqliteStore,
    StoreError, StoreLimits, StoreResult,
};

fn stores(store: Arc<SqliteStore>) -> Stores {
    Stores {
        mail: Arc::clone(&store) as Arc<dyn MailStore>,
        accounts: Arc::clone(&store) as Arc<dyn AccountStore>,
        share: Arc::clone(&store) as Arc<dyn ShareStore>,
        queue: store as Arc<dyn postfach_store::QueueStore>,
    }
}

fn open(dir: &Path) -> StoreResult<Stores> {
    Ok(stores(Arc::new(SqliteStore::open(dir)?)))
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

postfach_store::for_each_conformance_check!(conformance_tests);

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

/// The default quota comes from `StoreLimits` (`max_mailboxes` being the MAILBOX default);
/// an account's own limits override it field by field; usage survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_quota_comes_from_store_limits() {
    let dir = tempfile::tempdir().unwrap();
    let limits = StoreLimits {
        max_mailboxes: 8,
        default_quota: QuotaLimits { storage: Some(4096), messages: Some(3), mailboxes: None },
    };
    let message = |size: usize| {
        let mut raw = b"Subject: q\r\n\r\n".to_vec();
        raw.resize(size, b'x');
        postfach_store::NewMessage {
            raw: raw.into(),
            flags: postfach_store::Flags::default(),
            internal_date: None,
        }
    };
    let store = Arc::new(SqliteStore::open_with(dir.path(), limits).unwrap());
    let alice = store.create_account("alice", "x").await.unwrap();
    let inbox = store.mailbox_by_name(alice, &MailboxName::new("INBOX").unwrap()).await.unwrap().unwrap().id;
    let q = store.quota(alice).await.unwrap();
    assert_eq!(q.limits, QuotaLimits { storage: Some(4096), messages: Some(3), mailboxes: Some(8) });
    assert_eq!(q.own, QuotaLimits::default());
    assert_eq!(q.mailboxes_used, 6);
    let refused = store.append(inbox, vec![message(5000)]).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::OverQuota(OverQuota { resource: QuotaResource::Storage, alone: true }))
        ),
        "{refused:?}"
    );
    store.set_quota(alice, QuotaLimits { storage: Some(100_000), ..QuotaLimits::default() }).await.unwrap();
    store.append(inbox, vec![message(5000), message(100), message(100)]).await.unwrap();
    let refused = store.append(inbox, vec![message(100)]).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::OverQuota(OverQuota { resource: QuotaResource::Message, alone: false }))
        ),
        "{refused:?}"
    );
    let team = store.create_team("crew", None).await.unwrap();
    let q = store.quota(team).await.unwrap();
    assert_eq!((q.storage_used, q.mailboxes_used, q.limits.storage), (0, 5, Some(4096)));
    drop(store);

    let store = SqliteStore::open_with(dir.path(), limits).unwrap();
    let q = store.quota(alice).await.unwrap();
    assert_eq!((q.storage_used, q.messages_used, q.own.storage), (5200, 3, Some(100_000)));
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
    if let Err(failure) = conformance::run_all(stores).await {
        panic!("{failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_everything_leaves_no_bodies() {
    let (dir, stores) = fresh();
    conformance::copy_and_move(&stores).await.unwrap();
    conformance::delete_account_removes_everything(&stores).await.unwrap();
    conformance::team_membership_grants_and_subscribes(&stores).await.unwrap();
    conformance::acl_group_grants(&stores).await.unwrap();
    conformance::private_seen_per_viewer(&stores).await.unwrap();
    conformance::quota_warnings_once_per_crossing(&stores).await.unwrap();
    let team = stores.accounts.account_by_name("conf-team").await.unwrap().unwrap();
    let frank = stores.accounts.account_by_name("conf-team-frank").await.unwrap().unwrap();
    stores.share.set_team_member(team.id, frank.id, postfach_store::Rights::ALL).await.unwrap();
    stores.share.set_group_member("conf-leftover", frank.id, true).await.unwrap();
    for table in ["bodies", "acl", "team_members", "group_members", "private_seen", "quota_warnings"] {
        assert!(count(dir.path(), table) > 0, "{table}");
    }
    for account in stores.accounts.list_accounts().await.unwrap() {
        stores.accounts.delete_account(account.id).await.unwrap();
    }
    drop(stores);
    for table in [
        "bodies",
        "messages",
        "expunged",
        "mailboxes",
        "mailbox_keywords",
        "subscriptions",
        "accounts",
        "acl",
        "team_members",
        "group_members",
        "private_seen",
        "quota",
        "quota_warnings",
    ] {
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
