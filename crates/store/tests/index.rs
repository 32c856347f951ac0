//! The full-text index, SORT/THREAD facts and FETCH extras through the public store API.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use postfach_store::sqlite::SqliteStore;
use postfach_store::{
    AccountStore, Criterion, FetchWant, FlagOp, Flags, MailStore, MailboxId, MailboxName, NewMessage,
    SortCriterion, SortDirection, SortKey, SystemFlags, Uid, UidSet,
};

/// A UID from a literal in this test.
fn uid(n: u32) -> Uid {
    Uid::new(n).expect("UIDs start at 1")
}

async fn store_with(messages: &[&str]) -> (tempfile::TempDir, SqliteStore, MailboxId) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("a", "x").await.unwrap();
    let inbox =
        store.mailbox_by_name(account, &MailboxName::new("INBOX").unwrap()).await.unwrap().unwrap().id;
    let new: Vec<NewMessage> = messages
        .iter()
        .map(|m| NewMessage {
            raw: bytes::Bytes::copy_from_slice(m.as_bytes()),
            flags: Flags::default(),
            internal_date: None,
        })
        .collect();
    store.append(inbox, new).await.unwrap();
    (dir, store, inbox)
}

/// Appends one message, without flags.
async fn append_one(store: &SqliteStore, inbox: MailboxId, raw: &str) {
    let new = NewMessage {
        raw: bytes::Bytes::copy_from_slice(raw.as_bytes()),
        flags: Flags::default(),
        internal_date: None,
    };
    store.append(inbox, vec![new]).await.unwrap();
}

const MESSAGES: [&str; 4] = [
    "From: Zed <zed@example.org>\r\nTo: amy@example.org\r\nSubject: Re: Budget\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\nMessage-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\n\r\nLooks fine to me\r\n",
    "From: amy@example.org\r\nTo: Zed <zed@example.org>\r\nSubject: Budget\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <a@x>\r\n\r\nPlease review the budget\r\n",
    "From: Bob <bob@example.org>\r\nSubject: [team] lunch\r\nDate: Wed, 3 Jan 2024 10:00:00 +0000\r\n\r\nPizza?\r\n",
    "Subject: no date\r\n\r\nsecret plans\r\n",
];

#[tokio::test]
async fn appended_messages_are_searchable_sortable_and_previewed() {
    let (_dir, store, inbox) = store_with(&MESSAGES).await;
    let found = store.search(inbox, &Criterion::Body("REVIEW THE".into())).await.unwrap();
    assert_eq!(found, vec![uid(2)]);
    let found = store.search(inbox, &Criterion::Header("subject".into(), "budget".into())).await.unwrap();
    assert_eq!(found, vec![uid(1), uid(2)]);

    let all = UidSet::from_ranges([1..=10]);
    let by = |key, direction| SortCriterion { key, direction };
    let sorted = store.sort(inbox, &all, &[by(SortKey::Subject, SortDirection::Ascending)]).await.unwrap();
    // "budget", "budget", "lunch", "no date": ties in UID order.
    assert_eq!(sorted, vec![uid(1), uid(2), uid(3), uid(4)]);
    let sorted = store
        .sort(
            inbox,
            &all,
            &[by(SortKey::Subject, SortDirection::Ascending), by(SortKey::Date, SortDirection::Descending)],
        )
        .await
        .unwrap();
    assert_eq!(sorted, vec![uid(1), uid(2), uid(3), uid(4)]);
    let sorted = store.sort(inbox, &all, &[by(SortKey::Date, SortDirection::Ascending)]).await.unwrap();
    // Message 4 has no Date: its internal date (now) sorts last.
    assert_eq!(sorted, vec![uid(2), uid(1), uid(3), uid(4)]);
    let sorted =
        store.sort(inbox, &all, &[by(SortKey::DisplayFrom, SortDirection::Ascending)]).await.unwrap();
    assert_eq!(sorted, vec![uid(4), uid(2), uid(3), uid(1)]);
    let sorted = store
        .sort(inbox, &UidSet::from_ranges([2..=3]), &[by(SortKey::From, SortDirection::Descending)])
        .await
        .unwrap();
    assert_eq!(sorted, vec![uid(3), uid(2)]);

    let facts = store.thread_facts(inbox, &all).await.unwrap();
    assert_eq!(facts.len(), 4);
    assert_eq!(facts[0].message_id.as_deref(), Some("b@x"));
    assert_eq!(facts[0].references, vec!["a@x".to_owned()]);
    assert!(facts[0].is_reply);
    assert_eq!(facts[2].base_subject, "lunch");

    let extras = store.fetch_extras(inbox, &all).await.unwrap();
    assert_eq!(extras.len(), 4);
    assert_eq!(extras[0].preview, "Looks fine to me");
    assert_eq!(extras[3].preview, "secret plans");
    assert_ne!(extras[0].email_id, extras[1].email_id);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((extras[0].save_date.unix - now).abs() < 60);
}

#[tokio::test]
async fn copies_keep_the_email_id_and_expunge_drops_the_index_entry() {
    let (_dir, store, inbox) = store_with(&MESSAGES[..2]).await;
    let account = store.list_accounts().await.unwrap()[0].id;
    let trash =
        store.mailbox_by_name(account, &MailboxName::new("Trash").unwrap()).await.unwrap().unwrap().id;
    let copied = store.copy(inbox, &UidSet::from_uids([uid(2)]), trash).await.unwrap();
    let new_uid = copied.mapping[0].1;
    let a = store.fetch_extras(inbox, &UidSet::from_uids([uid(2)])).await.unwrap();
    let b = store.fetch_extras(trash, &UidSet::from_uids([new_uid])).await.unwrap();
    assert_eq!(a[0].email_id, b[0].email_id);
    assert_eq!(store.search(trash, &Criterion::Body("review".into())).await.unwrap(), vec![new_uid]);

    // Expunging the original leaves the copy searchable; expunging the copy too removes the body.
    let deleted = Flags { system: SystemFlags::DELETED, keywords: Vec::new() };
    store.store_flags(inbox, &UidSet::from_uids([uid(2)]), FlagOp::Add, &deleted, None).await.unwrap();
    store.expunge(inbox, None).await.unwrap();
    assert_eq!(store.search(trash, &Criterion::Body("review".into())).await.unwrap(), vec![new_uid]);
    assert!(store.search(inbox, &Criterion::Body("review".into())).await.unwrap().is_empty());
    store.store_flags(trash, &UidSet::from_uids([new_uid]), FlagOp::Add, &deleted, None).await.unwrap();
    store.expunge(trash, None).await.unwrap();
    assert!(store.search(trash, &Criterion::Body("review".into())).await.unwrap().is_empty());
    assert!(store.fetch_extras(trash, &UidSet::from_uids([new_uid])).await.unwrap().is_empty());
}

/// Most texts the indexer writes in one job (`BATCH` in crates/store/src/sqlite/indexer.rs).
const INDEXER_BATCH: u32 = 256;

/// Texts of many concurrent APPENDs reach the index in batched transactions, after the
/// APPENDs answered; meanwhile and afterwards SEARCH gives the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_are_indexed_in_batches_after_the_appends() {
    let (_dir, store, inbox) = store_with(&[]).await;
    let store = Arc::new(store);
    let total = 300u32;
    let mut tasks = Vec::new();
    for i in 0..total {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let word = if i % 10 == 0 { "kumquat" } else { "apple" };
            append_one(&store, inbox, &format!("Subject: m{i}\r\n\r\nan {word} a day\r\n")).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Right at once, whether or not the indexer has written the texts yet (the appends ran
    // concurrently, so which UIDs got the word is not known in advance).
    let want = store.search(inbox, &Criterion::Body("KUMQUAT".into())).await.unwrap();
    assert_eq!(want.len(), 30);
    // "m29" and "m290" to "m299".
    let m29 = store.search(inbox, &Criterion::Header("subject".into(), "m29".into())).await.unwrap();
    assert_eq!(m29.len(), 11);
    let commits = store.commits();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.text_backlog().await.unwrap() > 0 {
        assert!(std::time::Instant::now() < deadline, "the indexer did not catch up");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Every APPEND had queued its text before it answered, so what is left is marked indexed in
    // writer jobs of up to 256 texts (the indexer's BATCH; tiny texts, far below its byte
    // limit): at most total / 256 jobs, plus the one the indexer may have been writing when
    // `commits` was read, plus the registration of the account's index file if that batch was
    // the first.
    // Nothing else writes meanwhile, and the writer never splits a job, so this bound holds on
    // any machine; how many texts each job gathered *during* the appends depends on timing and
    // is not counted.
    let bound = u64::from(total.div_ceil(INDEXER_BATCH)) + 2;
    let written_in = store.commits() - commits;
    assert!(written_in <= bound, "{written_in} commits for the last of {total} texts, at most {bound}");
    assert_eq!(store.search(inbox, &Criterion::Body("KUMQUAT".into())).await.unwrap(), want);
    assert_eq!(store.search(inbox, &Criterion::Header("subject".into(), "m29".into())).await.unwrap(), m29);
}

/// Texts still pending when the store closes (or dropped from a full queue) are found in the
/// database and indexed from the raw messages by the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_texts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = {
        let store = SqliteStore::open(dir.path()).unwrap();
        let account = store.create_account("a", "x").await.unwrap();
        let inbox =
            store.mailbox_by_name(account, &MailboxName::new("INBOX").unwrap()).await.unwrap().unwrap().id;
        let new: Vec<NewMessage> = (0..50)
            .map(|i| {
                let raw = format!("Subject: s{i}\r\n\r\nbody of quince {i}\r\n");
                NewMessage {
                    raw: bytes::Bytes::copy_from_slice(raw.as_bytes()),
                    flags: Flags::default(),
                    internal_date: None,
                }
            })
            .collect();
        store.append(inbox, new).await.unwrap();
        inbox
        // Dropped at once: the indexer stops after at most its current batch.
    };
    let store = SqliteStore::open(dir.path()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.text_backlog().await.unwrap() > 0 {
        assert!(std::time::Instant::now() < deadline, "pending texts were not picked up");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(store.search(inbox, &Criterion::Body("QUINCE".into())).await.unwrap().len(), 50);
    assert_eq!(store.search(inbox, &Criterion::Body("quince 42".into())).await.unwrap(), vec![uid(43)]);
}

/// Rows written by an older parser (here: a JSON summary whose ENVELOPE has the first To only,
/// and From indexed as raw text) are derived again after the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_an_older_parser_are_derived_again_at_start() {
    const RAW: &str = "From: <user-from (comment)@ (comment) domain.org>\r\nTo: amy@example.org\r\n\
To: bob@example.org\r\nSubject: plans\r\n\r\nsome body words\r\n";
    let (dir, store, inbox) = store_with(&[RAW]).await;
    let db = dir.path().join(postfach_store::sqlite::DATABASE_FILE);
    while store.text_backlog().await.unwrap() > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    drop(store);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let old = postfach_message::parse(
            b"From: <user-from (comment)@ (comment) domain.org>\r\n\
To: amy@example.org\r\nSubject: plans\r\n\r\nsome body words\r\n",
        );
        conn.execute("UPDATE bodies SET summary = ?1", [serde_json::to_vec(&old).unwrap()]).unwrap();
        conn.execute_batch("UPDATE derived SET version = 0").unwrap();
        // The account's index file, as the older parser wrote it.
        let text = rusqlite::Connection::open(dir.path().join(postfach_store::sqlite::TEXT_DIR).join("1.db"))
            .unwrap();
        text.execute_batch(
            "DELETE FROM body_text WHERE rowid = 1;
             INSERT INTO body_text (rowid, h_subject, h_from, h_to, h_cc, h_bcc, headers, body)
                 VALUES (1, 'plans', '<user-from (comment)@ (comment) domain.org>', 'amy@example.org', '', '',
                         'subject: plans', 'some body words');",
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let conn = rusqlite::Connection::open(&db).unwrap();
    loop {
        let left: Option<i64> = conn.query_row("SELECT next_body FROM derived", [], |r| r.get(0)).unwrap();
        if left.is_none() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the re-derivation did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Searches right away scan what the indexer has not written again yet; after it, the index
    // answers the new way too.
    let from = Criterion::Header("from".into(), "user-from@domain.org".into());
    assert_eq!(store.search(inbox, &from).await.unwrap(), vec![uid(1)]);
    while store.text_backlog().await.unwrap() > 0 {
        assert!(std::time::Instant::now() < deadline, "the indexer did not catch up");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let all = UidSet::from_ranges([1..=1]);
    let meta = store.fetch(inbox, &all, FetchWant { summary: true }).await.unwrap();
    let summary = meta[0].summary.as_ref().unwrap();
    assert_eq!(**summary, postfach_message::parse(RAW.as_bytes()));
    assert_eq!(summary.envelope.to.len(), 2);
    let from = Criterion::Header("from".into(), "user-from@domain.org".into());
    assert_eq!(store.search(inbox, &from).await.unwrap(), vec![uid(1)]);
    let to = Criterion::Header("to".into(), "bob@example.org".into());
    assert_eq!(store.search(inbox, &to).await.unwrap(), vec![uid(1)]);
}

/// Waits until the indexer has written every pending text.
async fn indexed(store: &SqliteStore) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.text_backlog().await.unwrap() > 0 {
        assert!(std::time::Instant::now() < deadline, "the indexer did not catch up");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The body ids in an account's index file; none while there is no (complete) file.
fn file_rows(dir: &std::path::Path, account: i64) -> Vec<i64> {
    let path = dir.join(postfach_store::sqlite::TEXT_DIR).join(format!("{account}.db"));
    let Ok(conn) = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT body_id FROM texts ORDER BY body_id") else { return Vec::new() };
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

/// Each account's texts are in its own file; a COPY into another account's mailbox gives that
/// account a body and an index row of its own, and expunging either side leaves the other
/// searchable through its index; expunged bodies' rows leave the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_account_has_its_own_index_file() {
    let (dir, store, inbox) = store_with(&MESSAGES).await;
    let a = store.list_accounts().await.unwrap()[0].id;
    let b = store.create_account("b", "y").await.unwrap();
    let b_inbox = store.mailbox_by_name(b, &MailboxName::new("INBOX").unwrap()).await.unwrap().unwrap().id;
    indexed(&store).await;
    assert_eq!(file_rows(dir.path(), a.0).len(), 4);

    let copied = store.copy(inbox, &UidSet::from_uids([uid(2)]), b_inbox).await.unwrap();
    let new_uid = copied.mapping[0].1;
    // Found at once (scanned while pending), and through b's own file once indexed.
    let review = Criterion::Body("review the budget".into());
    assert_eq!(store.search(b_inbox, &review).await.unwrap(), vec![new_uid]);
    indexed(&store).await;
    assert_eq!(file_rows(dir.path(), b.0).len(), 1);
    assert_eq!(file_rows(dir.path(), a.0).len(), 4);
    assert_eq!(store.search(b_inbox, &review).await.unwrap(), vec![new_uid]);
    assert_eq!(store.search(inbox, &review).await.unwrap(), vec![uid(2)]);
    let ea = store.fetch_extras(inbox, &UidSet::from_uids([uid(2)])).await.unwrap();
    let eb = store.fetch_extras(b_inbox, &UidSet::from_uids([new_uid])).await.unwrap();
    assert_eq!(ea[0].email_id, eb[0].email_id);

    // Expunge a's original: b's copy stays searchable, a's file loses the row.
    let deleted = Flags { system: SystemFlags::DELETED, keywords: Vec::new() };
    store.store_flags(inbox, &UidSet::from_uids([uid(2)]), FlagOp::Add, &deleted, None).await.unwrap();
    store.expunge(inbox, None).await.unwrap();
    assert!(store.search(inbox, &review).await.unwrap().is_empty());
    assert_eq!(store.search(b_inbox, &review).await.unwrap(), vec![new_uid]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while file_rows(dir.path(), a.0).len() != 3 {
        assert!(std::time::Instant::now() < deadline, "the expunged body's text stayed in the file");
        // The indexer removes dead texts when it looks in the database; a copy pokes it.
        store.copy(b_inbox, &UidSet::from_uids([new_uid]), b_inbox).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Deleting the account removes its file.
    store.delete_account(a).await.unwrap();
    let path = dir.path().join(postfach_store::sqlite::TEXT_DIR).join(format!("{}.db", a.0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while path.exists() {
        assert!(std::time::Instant::now() < deadline, "the deleted account's file stayed");
        store.copy(b_inbox, &UidSet::from_uids([new_uid]), b_inbox).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// An index file that is lost (or left from another state of the database: a restore) is not
/// trusted: searches scan, and the next start makes the file again from the messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_index_file_is_made_again() {
    let (dir, store, inbox) = store_with(&MESSAGES).await;
    indexed(&store).await;
    drop(store);
    postfach_store::sqlite::forget_text_indexes(&dir.path().join(postfach_store::sqlite::DATABASE_FILE))
        .unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    // Right away: scanned.
    let secret = Criterion::Body("secret plans".into());
    assert_eq!(store.search(inbox, &secret).await.unwrap(), vec![uid(4)]);
    // The indexer finds the file missing, makes it again and indexes the account anew.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while file_rows(dir.path(), 1).len() < 4 {
        assert!(std::time::Instant::now() < deadline, "the lost file was not made again");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    indexed(&store).await;
    // Answered by the new file alone: without the raw bytes a scan would find nothing.
    drop(store);
    {
        let conn =
            rusqlite::Connection::open(dir.path().join(postfach_store::sqlite::DATABASE_FILE)).unwrap();
        conn.execute_batch("UPDATE bodies SET raw = zeroblob(length(raw))").unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.search(inbox, &secret).await.unwrap(), vec![uid(4)]);
}

/// Two processes on one data directory (the server and an admin command or a delivery) both
/// index: whatever either marks indexed is in the file the database trusts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_directory_index_into_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let first = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let second = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let mut inboxes = Vec::new();
    for name in ["a", "b", "c"] {
        let account = first.create_account(name, "x").await.unwrap();
        inboxes.push(
            first.mailbox_by_name(account, &MailboxName::new("INBOX").unwrap()).await.unwrap().unwrap().id,
        );
    }
    let mut tasks = Vec::new();
    for (i, store) in [&first, &second].into_iter().enumerate() {
        for &inbox in &inboxes {
            let store = Arc::clone(store);
            tasks.push(tokio::spawn(async move {
                for k in 0..20 {
                    let raw = format!("Subject: s{i}-{k}\r\n\r\nwords from store{i} number{k}\r\n");
                    append_one(&store, inbox, &raw).await;
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    indexed(&first).await;
    indexed(&second).await;
    drop(first);
    drop(second);
    {
        // Only the index can answer now.
        let conn =
            rusqlite::Connection::open(dir.path().join(postfach_store::sqlite::DATABASE_FILE)).unwrap();
        let pending: i64 = conn
            .query_row("SELECT count(*) FROM body_index WHERE text_state <> 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(pending, 0);
        conn.execute_batch("UPDATE bodies SET raw = zeroblob(length(raw))").unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    for &inbox in &inboxes {
        for i in 0..2 {
            let found = store.search(inbox, &Criterion::Body(format!("from store{i}"))).await.unwrap();
            assert_eq!(found.len(), 20, "store{i} in {inbox:?}");
        }
    }
}
