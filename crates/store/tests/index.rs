//! The full-text index, SORT/THREAD facts and FETCH extras through the public store API.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use postfach_store::sqlite::SqliteStore;
use postfach_store::{
    AccountStore, Criterion, FlagOp, Flags, MailStore, MailboxId, NewMessage, SortCriterion, SortDirection,
    SortKey, SystemFlags, Uid, UidSet,
};

async fn store_with(messages: &[&str]) -> (tempfile::TempDir, SqliteStore, MailboxId) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let account = store.create_account("a", "x").await.unwrap();
    let inbox = store.mailbox_by_name(account, "INBOX").await.unwrap().unwrap().id;
    let new: Vec<NewMessage> = messages
        .iter()
        .map(|m| NewMessage { raw: Arc::from(m.as_bytes()), flags: Flags::default(), internal_date: None })
        .collect();
    store.append(inbox, new).await.unwrap();
    (dir, store, inbox)
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
    assert_eq!(found, vec![Uid(2)]);
    let found = store.search(inbox, &Criterion::Header("subject".into(), "budget".into())).await.unwrap();
    assert_eq!(found, vec![Uid(1), Uid(2)]);

    let all = UidSet::from_ranges([1..=10]);
    let by = |key, direction| SortCriterion { key, direction };
    let sorted = store.sort(inbox, &all, &[by(SortKey::Subject, SortDirection::Ascending)]).await.unwrap();
    // "budget", "budget", "lunch", "no date": ties in UID order.
    assert_eq!(sorted, vec![Uid(1), Uid(2), Uid(3), Uid(4)]);
    let sorted = store
        .sort(
            inbox,
            &all,
            &[by(SortKey::Subject, SortDirection::Ascending), by(SortKey::Date, SortDirection::Descending)],
        )
        .await
        .unwrap();
    assert_eq!(sorted, vec![Uid(1), Uid(2), Uid(3), Uid(4)]);
    let sorted = store.sort(inbox, &all, &[by(SortKey::Date, SortDirection::Ascending)]).await.unwrap();
    // Message 4 has no Date: its internal date (now) sorts last.
    assert_eq!(sorted, vec![Uid(2), Uid(1), Uid(3), Uid(4)]);
    let sorted =
        store.sort(inbox, &all, &[by(SortKey::DisplayFrom, SortDirection::Ascending)]).await.unwrap();
    assert_eq!(sorted, vec![Uid(4), Uid(2), Uid(3), Uid(1)]);
    let sorted = store
        .sort(inbox, &UidSet::from_ranges([2..=3]), &[by(SortKey::From, SortDirection::Descending)])
        .await
        .unwrap();
    assert_eq!(sorted, vec![Uid(3), Uid(2)]);

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
    let trash = store.mailbox_by_name(account, "Trash").await.unwrap().unwrap().id;
    let copied = store.copy(inbox, &UidSet::from_uids([Uid(2)]), trash).await.unwrap();
    let new_uid = copied.mapping[0].1;
    let a = store.fetch_extras(inbox, &UidSet::from_uids([Uid(2)])).await.unwrap();
    let b = store.fetch_extras(trash, &UidSet::from_uids([new_uid])).await.unwrap();
    assert_eq!(a[0].email_id, b[0].email_id);
    assert_eq!(store.search(trash, &Criterion::Body("review".into())).await.unwrap(), vec![new_uid]);

    // Expunging the original leaves the copy searchable; expunging the copy too removes the body.
    let deleted = Flags { system: SystemFlags::DELETED, keywords: Vec::new() };
    store.store_flags(inbox, &UidSet::from_uids([Uid(2)]), FlagOp::Add, &deleted, None).await.unwrap();
    store.expunge(inbox, None).await.unwrap();
    assert_eq!(store.search(trash, &Criterion::Body("review".into())).await.unwrap(), vec![new_uid]);
    assert!(store.search(inbox, &Criterion::Body("review".into())).await.unwrap().is_empty());
    store.store_flags(trash, &UidSet::from_uids([new_uid]), FlagOp::Add, &deleted, None).await.unwrap();
    store.expunge(trash, None).await.unwrap();
    assert!(store.search(trash, &Criterion::Body("review".into())).await.unwrap().is_empty());
    assert!(store.fetch_extras(trash, &UidSet::from_uids([new_uid])).await.unwrap().is_empty());
}
