//! The restore primitive ([`RestoreStore`]) on the SQLite store: given UIDVALIDITY, UIDs and
//! MODSEQs kept, the UID invariants kept, a restore run twice changing nothing, renumbering only
//! through a new mailbox row.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use postfach_store::{
    AccountKind, AccountRestore, ClaimRecent, ExpungedRun, Flags, InternalDate, MailStore, MailboxName,
    MailboxRestore, MessageRestore, ModSeq, ModSeqRule, NewUidValidity, PresentUids, RestoreStore, Restored,
    ShareStore, SqliteStore, StoreError, SystemFlags, Uid, UidSet, UidValidity,
};

fn uid(n: u32) -> Uid {
    Uid::new(n).unwrap()
}

fn message(n: u32, modseq: u64, rule: ModSeqRule) -> MessageRestore {
    let raw = format!("Subject: m{n}\r\nMessage-ID: <{n}@x>\r\n\r\nbody {n}\r\n");
    MessageRestore {
        uid: Some(uid(n)),
        modseq: ModSeq(modseq),
        rule,
        raw: raw.into_bytes().into(),
        flags: Flags { system: SystemFlags::SEEN, keywords: vec!["$Label1".into()] },
        internal_date: InternalDate { unix: 1_700_000_000 + i64::from(n), offset_minutes: 60 },
        save_date: Some(1_700_100_000),
    }
}

async fn setup() -> (tempfile::TempDir, Arc<SqliteStore>, postfach_store::AccountId) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let account = store
        .restore_account(&AccountRestore { name: "ann".into(), kind: AccountKind::User, address: None })
        .await
        .unwrap();
    (dir, store, account)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_comes_back_verbatim_and_a_second_run_changes_nothing() {
    let (_dir, store, account) = setup().await;
    let name = MailboxName::new("Archive/2026").unwrap();
    let restore =
        MailboxRestore { uid_validity: Some(UidValidity(1234)), special_use: None, id_hint: Some(77) };
    let mailbox = store.restore_mailbox(account, &name, &restore).await.unwrap();
    assert_eq!(mailbox.0, 77, "an id nobody had is kept");

    let batch = vec![message(3, 40, ModSeqRule::Keep), message(7, 12, ModSeqRule::Keep)];
    let done = store.restore_messages(mailbox, batch.clone()).await.unwrap();
    assert_eq!(done, vec![Restored::Inserted(uid(3), ModSeq(40)), Restored::Inserted(uid(7), ModSeq(12))]);
    let runs = vec![
        ExpungedRun { first: uid(1), last: uid(2), modseq: Some(ModSeq(9)) },
        ExpungedRun { first: uid(4), last: uid(6), modseq: Some(ModSeq(30)) },
        ExpungedRun { first: uid(8), last: uid(9), modseq: Some(ModSeq(41)) },
    ];
    assert_eq!(store.restore_expunged(mailbox, runs.clone(), PresentUids::Expunge).await.unwrap(), 7);
    store.restore_counters(mailbox, uid(12), ModSeq(50)).await.unwrap();

    let status = store.status(mailbox).await.unwrap();
    assert_eq!(status.uid_validity, UidValidity(1234));
    assert_eq!(status.uid_next, uid(12));
    assert_eq!(status.highest_modseq, ModSeq(50));
    assert_eq!(status.messages, 2);
    let metas = store.fetch(mailbox, &UidSet::from_ranges([1..=20]), Default::default()).await.unwrap();
    let got: Vec<(u32, u64, i64, i16)> = metas
        .iter()
        .map(|m| (m.uid.get(), m.modseq.0, m.internal_date.unix, m.internal_date.offset_minutes))
        .collect();
    assert_eq!(got, vec![(3, 40, 1_700_000_003, 60), (7, 12, 1_700_000_007, 60)]);
    let extras = store.fetch_extras(mailbox, &UidSet::from_ranges([1..=20])).await.unwrap();
    assert!(extras.iter().all(|e| e.save_date.unix == 1_700_100_000));
    let expunged = store.dump_expunged(mailbox, ModSeq(10)).await.unwrap();
    let expunged: Vec<(u32, u64)> = expunged.iter().map(|(u, m)| (u.get(), m.0)).collect();
    assert_eq!(expunged, vec![(4, 30), (5, 30), (6, 30), (8, 41), (9, 41)]);
    let changes = store.changes_since(mailbox, ModSeq(29), uid(12)).await.unwrap();
    assert_eq!(changes.expunged, vec![uid(4), uid(5), uid(6), uid(8), uid(9)]);

    // Again: the same bytes under the same UIDs are there, nothing moves.
    let again = store.restore_messages(mailbox, batch).await.unwrap();
    assert_eq!(again, vec![Restored::Present(uid(3)), Restored::Present(uid(7))]);
    assert_eq!(store.restore_expunged(mailbox, runs, PresentUids::Expunge).await.unwrap(), 0);
    assert_eq!(store.status(mailbox).await.unwrap(), status);
    // Newer flags of a present message follow the source.
    let mut newer = message(7, 45, ModSeqRule::Keep);
    newer.flags = Flags { system: SystemFlags::FLAGGED, keywords: vec![] };
    assert_eq!(
        store.restore_messages(mailbox, vec![newer]).await.unwrap(),
        vec![Restored::FlagsUpdated(uid(7), ModSeq(45))]
    );
    assert_eq!(store.status(mailbox).await.unwrap().unseen, 1);
    // A UID below UIDNEXT holding other bytes (or none) is refused, whole batch.
    let mut other = message(3, 60, ModSeqRule::Keep);
    other.raw = Arc::from(&b"Subject: other\r\n\r\nx\r\n"[..]);
    let refused = store.restore_messages(mailbox, vec![message(20, 61, ModSeqRule::Keep), other]).await;
    assert!(matches!(refused, Err(StoreError::NotAllowed(_))), "{refused:?}");
    assert!(matches!(
        store.restore_messages(mailbox, vec![message(5, 62, ModSeqRule::Keep)]).await,
        Err(StoreError::NotAllowed(_))
    ));
    assert_eq!(store.status(mailbox).await.unwrap().messages, 2);
    // Counters never go down.
    store.restore_counters(mailbox, uid(2), ModSeq(3)).await.unwrap();
    assert_eq!(store.status(mailbox).await.unwrap().uid_next, uid(12));
    // Usage is counted.
    assert_eq!(store.quota(account).await.unwrap().messages_used, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_modseqs_and_next_uids() {
    let (_dir, store, account) = setup().await;
    let inbox = MailboxName::inbox();
    let mailbox = store
        .restore_mailbox(
            account,
            &inbox,
            &MailboxRestore { uid_validity: None, special_use: None, id_hint: None },
        )
        .await
        .unwrap();
    let before = store.status(mailbox).await.unwrap();
    let mut first = message(1, 999, ModSeqRule::Fresh);
    first.uid = None;
    let mut second = message(2, 0, ModSeqRule::Keep);
    second.uid = None;
    let done = store.restore_messages(mailbox, vec![first, second]).await.unwrap();
    let fresh = ModSeq(before.highest_modseq.0 + 1);
    assert_eq!(done, vec![Restored::Inserted(uid(1), fresh), Restored::Inserted(uid(2), fresh)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreating_renumbers_under_a_new_row_and_uidvalidity() {
    let (_dir, store, account) = setup().await;
    let name = MailboxName::new("Work").unwrap();
    let restore = MailboxRestore { uid_validity: Some(UidValidity(500)), special_use: None, id_hint: None };
    let mailbox = store.restore_mailbox(account, &name, &restore).await.unwrap();
    store
        .restore_messages(mailbox, vec![message(4, 10, ModSeqRule::Keep), message(9, 11, ModSeqRule::Keep)])
        .await
        .unwrap();
    let bob = store
        .restore_account(&AccountRestore { name: "bob".into(), kind: AccountKind::User, address: None })
        .await
        .unwrap();
    store.set_seen_mode(mailbox, postfach_store::SeenMode::Private).await.unwrap();
    store.restore_private_seen(mailbox, vec![(uid(9), bob, true, Some(ModSeq(11)))]).await.unwrap();
    let acl_id = postfach_store::Identifier::parse("bob").unwrap();
    store.set_acl(mailbox, &acl_id, Some(postfach_store::Rights::parse("lr").unwrap())).await.unwrap();

    let new = store
        .recreate_mailbox(mailbox, NewUidValidity::Fresh { avoid: Some(UidValidity(501)) })
        .await
        .unwrap();
    assert_ne!(new, mailbox);
    assert!(store.status(mailbox).await.is_err(), "the old row is gone");
    let status = store.status(new).await.unwrap();
    assert_ne!(status.uid_validity, UidValidity(500));
    assert_eq!((status.uid_next, status.messages), (uid(3), 2));
    let snapshot = store.select(new, ClaimRecent::Peek).await.unwrap();
    assert_eq!(snapshot.uids, UidSet::from_ranges([1..=2]));
    assert_eq!(store.body(new, uid(2)).await.unwrap(), &message(9, 0, ModSeqRule::Keep).raw[..]);
    assert_eq!(store.private_seen(new, bob).await.unwrap(), UidSet::from_ranges([2..=2]));
    assert_eq!(store.acl(new).await.unwrap().len(), 1);
    assert_eq!(store.seen_mode(new).await.unwrap(), postfach_store::SeenMode::Private);
    assert_eq!(store.mailbox_by_name(account, &name).await.unwrap().unwrap().id, new);
    // An empty mailbox can take a given UIDVALIDITY this way.
    let empty = store.recreate_mailbox(new, NewUidValidity::Given(UidValidity(42))).await;
    assert!(empty.is_ok());
    assert!(matches!(
        store.recreate_mailbox(empty.unwrap(), NewUidValidity::Given(UidValidity(42))).await,
        Err(StoreError::NotAllowed(_))
    ));
}
