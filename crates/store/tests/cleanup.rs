//! The clean-up's store side (issue 14): which mailboxes it visits, per-account limits, and the
//! expunge by save date in bounded batches through the ordinary expunge path.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Instant;

use postfach_store::sqlite::DATABASE_FILE;
use postfach_store::{
    AccountStore, CleanupOverride, Flags, MailStore, MailboxId, MailboxName, ModSeq, NewMessage, ShareStore,
    SpecialUse, SqliteStore, Uid,
};

fn message(n: usize) -> NewMessage {
    let raw = format!("Subject: m{n}\r\nMessage-ID: <m{n}@example.org>\r\n\r\nbody {n}\r\n");
    NewMessage { raw: raw.into_bytes().into(), flags: Flags::default(), internal_date: None }
}

async fn mailbox(store: &SqliteStore, account: postfach_store::AccountId, name: &str) -> MailboxId {
    store.mailbox_by_name(account, &MailboxName::new(name).unwrap()).await.unwrap().unwrap().id
}

/// Sets the save date of messages `uids` of `mailbox` behind the store's back (what a
/// message moved to Trash long ago looks like).
fn age(dir: &Path, mailbox: MailboxId, uids: &[u32], unix: i64) {
    let conn = rusqlite::Connection::open(dir.join(DATABASE_FILE)).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    for uid in uids {
        let n = conn
            .execute(
                "UPDATE saved_at SET unix = ?3 WHERE mailbox_id = ?1 AND uid = ?2",
                (mailbox.0, uid, unix),
            )
            .unwrap();
        assert_eq!(n, 1);
    }
}

fn uids(list: &[Uid]) -> Vec<u32> {
    list.iter().map(|u| u.get()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_messages_go_in_batches_like_an_expunge() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let alice = store.create_account("alice", "x").await.unwrap();
    let trash = mailbox(&store, alice, "Trash").await;
    let inbox = mailbox(&store, alice, "INBOX").await;
    store.append(trash, (1..=4).map(message).collect()).await.unwrap();
    store.append(inbox, vec![message(9)]).await.unwrap();
    age(dir.path(), trash, &[1, 2, 4], 1_000);
    age(dir.path(), inbox, &[1], 1_000);
    let before = store.quota(alice).await.unwrap();
    let mut watch = store.notifier().watch(trash);

    // Two per job: 1 and 2, then 4, then nothing.
    assert_eq!(uids(&store.expunge_saved_before(trash, 2_000, 2).await.unwrap()), vec![1, 2]);
    assert!(watch.has_changed().unwrap());
    let after_first = *watch.borrow_and_update();
    assert_eq!(uids(&store.expunge_saved_before(trash, 2_000, 2).await.unwrap()), vec![4]);
    assert!(store.expunge_saved_before(trash, 2_000, 2).await.unwrap().is_empty());

    // Recorded as expunges with their modseq: QRESYNC and IDLE clients see them.
    let changes = store.changes_since(trash, after_first, Uid::new(5).unwrap()).await.unwrap();
    assert_eq!(uids(&changes.expunged), vec![4]);
    let changes = store.changes_since(trash, ModSeq(1), Uid::new(5).unwrap()).await.unwrap();
    assert_eq!(uids(&changes.expunged), vec![1, 2, 4]);
    let status = store.status(trash).await.unwrap();
    assert_eq!(status.messages, 1);
    // Quota usage given back; INBOX's old message is not the clean-up's business here.
    let after = store.quota(alice).await.unwrap();
    assert_eq!(after.messages_used, before.messages_used - 3);
    assert!(after.storage_used < before.storage_used);
    assert_eq!(store.status(inbox).await.unwrap().messages, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_and_junk_of_users_and_teams_with_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let alice = store.create_account("alice", "x").await.unwrap();
    let bob = store.create_account("bob", "x").await.unwrap();
    let team = store.create_team("crew", None).await.unwrap();
    // A second Trash made by the user counts too; a folder merely called "Junk2" does not.
    store.create_mailbox(bob, &MailboxName::new("Bin").unwrap(), Some(SpecialUse::Trash)).await.unwrap();
    store.create_mailbox(bob, &MailboxName::new("Junk2").unwrap(), None).await.unwrap();
    store
        .set_cleanup_override(alice, CleanupOverride { trash_days: Some(7), junk_days: None })
        .await
        .unwrap();
    assert_eq!(
        store.cleanup_override(alice).await.unwrap(),
        CleanupOverride { trash_days: Some(7), junk_days: None }
    );
    assert_eq!(store.cleanup_override(bob).await.unwrap(), CleanupOverride::default());

    let bin = mailbox(&store, bob, "Bin").await;
    store.append(bin, vec![message(1), message(2)]).await.unwrap();
    age(dir.path(), bin, &[2], 1_234);
    let all = store.cleanup_mailboxes().await.unwrap();
    let oldest: Vec<Option<i64>> = all.iter().map(|m| m.oldest_saved).collect();
    assert_eq!(oldest, vec![None, None, Some(1_234), None, None, None]);
    let listed: Vec<(String, String, Option<SpecialUse>, Option<u32>)> =
        all.into_iter().map(|m| (m.account_name, m.name, m.special_use, m.days)).collect();
    let expected = vec![
        ("alice".to_owned(), "Junk".to_owned(), Some(SpecialUse::Junk), None),
        ("alice".to_owned(), "Trash".to_owned(), Some(SpecialUse::Trash), Some(7)),
        ("bob".to_owned(), "Bin".to_owned(), Some(SpecialUse::Trash), None),
        ("bob".to_owned(), "Junk".to_owned(), Some(SpecialUse::Junk), None),
        ("bob".to_owned(), "Trash".to_owned(), Some(SpecialUse::Trash), None),
        ("crew".to_owned(), "Trash".to_owned(), Some(SpecialUse::Trash), None),
    ];
    assert_eq!(listed, expected);

    // Back to the defaults: the row goes.
    store.set_cleanup_override(alice, CleanupOverride::default()).await.unwrap();
    assert_eq!(store.cleanup_override(alice).await.unwrap(), CleanupOverride::default());
    store
        .set_cleanup_override(team, CleanupOverride { trash_days: Some(0), junk_days: Some(3) })
        .await
        .unwrap();
    assert!(store.delete_account(team).await.is_ok());
    let conn = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    let rows: i64 = conn.query_row("SELECT count(*) FROM cleanup_settings", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0);
    assert!(store.set_cleanup_override(team, CleanupOverride::default()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_count_accounts_near_their_quota() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let alice = store.create_account("alice", "x").await.unwrap();
    let bob = store.create_account("bob", "x").await.unwrap();
    store.create_account("carol", "x").await.unwrap();
    let inbox = mailbox(&store, alice, "INBOX").await;
    store.append(inbox, (1..=9).map(message).collect()).await.unwrap();
    store
        .set_quota(alice, postfach_store::QuotaLimits { messages: Some(10), ..Default::default() })
        .await
        .unwrap();
    store
        .set_quota(bob, postfach_store::QuotaLimits { messages: Some(10), ..Default::default() })
        .await
        .unwrap();
    let totals = store.totals().await.unwrap();
    assert_eq!(totals.accounts, 3);
    assert_eq!(totals.messages, 9);
    assert!(totals.bytes > 0);
    assert_eq!(totals.accounts_with_limit, 2);
    assert_eq!(totals.accounts_above_90_percent, 1);
    assert_eq!(totals.accounts_full, 0);
    store.ping().await.unwrap();
    assert!(store.disk_size() > 0);
    let stats = store.writer_stats();
    assert_eq!(stats.commits, stats.commit_seconds.count);
    assert_eq!(stats.commits, stats.batch_size.count);
}

/// How long the clean-up takes for many old messages (run with `--ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn measure_cleanup_of_many_messages() {
    let n: usize = std::env::var("CLEANUP_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let alice = store.create_account("alice", "x").await.unwrap();
    let trash = mailbox(&store, alice, "Trash").await;
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        store.append(trash, chunk.iter().map(|i| message(*i)).collect()).await.unwrap();
    }
    // A few new ones that stay.
    store.append(trash, (0..10).map(message).collect()).await.unwrap();
    eprintln!("appended {n} in {:?}", started.elapsed());
    let conn = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    conn.execute("UPDATE saved_at SET unix = 1000 WHERE mailbox_id = ?1 AND uid <= ?2", (trash.0, n as i64))
        .unwrap();
    drop(conn);
    let started = Instant::now();
    let mut removed = 0;
    let mut slowest = std::time::Duration::ZERO;
    loop {
        let job = Instant::now();
        let batch = store.expunge_saved_before(trash, 2_000, 1000).await.unwrap();
        slowest = slowest.max(job.elapsed());
        removed += batch.len();
        if batch.len() < 1000 {
            break;
        }
    }
    eprintln!("cleaned {removed} in {:?} (slowest batch of 1000: {slowest:?})", started.elapsed());
    assert_eq!(removed, n);
    assert_eq!(store.status(trash).await.unwrap().messages, 10);
}
