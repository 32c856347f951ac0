//! SORT, THREAD input and the FETCH extras (EMAILID, SAVEDATE, PREVIEW) on PostgreSQL, derived
//! on the fly: SORT and THREAD from each message's stored summary (`BodyFacts::of`), the extras
//! from its raw bytes. The ordering itself is the SQLite backend's (`sqlite::facts::sort_key`),
//! so both backends answer alike.
//!
//! TODO(perf): the SQLite backend keeps these facts per body at APPEND (`body_index`); here
//! every SORT decodes every summary of the set and every PREVIEW reads the whole message. A
//! `body_facts(owner_id, body_id, …)` table written at APPEND is the next step.

use postfach_message::BodyFacts;

use super::mail::{MsgRow, load, rows_in};
use super::{PgResult, Tx, owner_of};
use crate::StoreError;
use crate::sqlite::facts::{Keyed, MAX_SORT_BYTES, MAX_THREAD_MESSAGES, sort_key};
use crate::sqlite::index::IndexEntry;
use crate::types::{InternalDate, MailboxId, MessageExtras, SortCriterion, ThreadFacts, Uid, UidSet};

/// Messages whose bodies are read per round trip.
const CHUNK: usize = 256;

/// Each existing message of `uids` with its facts, ascending, in chunks.
async fn keyed(tx: &Tx<'_>, mailbox: MailboxId, uids: &UidSet, max: usize) -> PgResult<Vec<Keyed>> {
    load(tx, mailbox, false).await?;
    let rows = rows_in(tx, mailbox, uids, false).await?;
    if rows.len() > max {
        return Err(StoreError::Limit(format!("at most {max} messages at once; narrow the search")).into());
    }
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(CHUNK) {
        let ids: Vec<i64> = chunk.iter().map(|r| r.body_id).collect();
        let mut facts = std::collections::HashMap::new();
        for r in &tx
            .query(
                "SELECT id, summary, raw FROM bodies WHERE owner_id = $1 AND id = ANY($2)",
                &[&owner_of(mailbox.0), &ids],
            )
            .await?
        {
            let bytes: Vec<u8> = r.get(1);
            let summary = match crate::sqlite::summary::decode(&bytes) {
                Ok(s) => s,
                Err(_) => postfach_message::parse(&r.get::<_, Vec<u8>>(2)),
            };
            facts.insert(r.get::<_, i64>(0), BodyFacts::of(&summary));
        }
        for m in chunk {
            out.push(Keyed {
                uid: m.uid,
                internal_date: m.date,
                size: i64::from(m.size),
                facts: facts.get(&m.body_id).cloned().unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

pub(super) async fn sort(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    uids: &UidSet,
    criteria: &[SortCriterion],
) -> PgResult<Vec<Uid>> {
    // A bound on the count keeps the keys' memory near MAX_SORT_BYTES (keys are short).
    let mut keyed: Vec<(Box<[u8]>, Uid)> = Vec::new();
    let mut bytes = 0usize;
    for m in keyed_all(tx, mailbox, uids).await? {
        let key = sort_key(criteria, &m);
        bytes = bytes.saturating_add(key.len() + std::mem::size_of::<(Box<[u8]>, Uid)>());
        if bytes > MAX_SORT_BYTES {
            return Err(StoreError::Limit("too many messages to sort; narrow the search".to_owned()).into());
        }
        keyed.push((key, m.uid));
    }
    keyed.sort_unstable();
    Ok(keyed.into_iter().map(|(_, uid)| uid).collect())
}

async fn keyed_all(tx: &Tx<'_>, mailbox: MailboxId, uids: &UidSet) -> PgResult<Vec<Keyed>> {
    keyed(tx, mailbox, uids, usize::MAX).await
}

pub(super) async fn thread_facts(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    uids: &UidSet,
) -> PgResult<Vec<ThreadFacts>> {
    Ok(keyed(tx, mailbox, uids, MAX_THREAD_MESSAGES)
        .await?
        .into_iter()
        .map(|m| ThreadFacts {
            uid: m.uid,
            sent_date: m.facts.sent_date.unwrap_or(m.internal_date),
            base_subject: m.facts.base_subject,
            is_reply: m.facts.is_reply,
            message_id: m.facts.message_id,
            references: m.facts.refs,
        })
        .collect())
}

pub(super) async fn fetch_extras(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    uids: &UidSet,
) -> PgResult<Vec<MessageExtras>> {
    load(tx, mailbox, false).await?;
    let rows: Vec<MsgRow> = rows_in(tx, mailbox, uids, false).await?;
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(CHUNK) {
        let ids: Vec<i64> = chunk.iter().map(|r| r.body_id).collect();
        let mut entries = std::collections::HashMap::new();
        for r in &tx
            .query(
                "SELECT id, raw FROM bodies WHERE owner_id = $1 AND id = ANY($2)",
                &[&owner_of(mailbox.0), &ids],
            )
            .await?
        {
            let entry = IndexEntry::extract(&r.get::<_, Vec<u8>>(1));
            entries.insert(r.get::<_, i64>(0), (entry.preview, entry.email_id));
        }
        for m in chunk {
            let (preview, email_id) = entries.get(&m.body_id).cloned().unwrap_or_else(|| {
                let e = IndexEntry::extract(&[]);
                (e.preview, e.email_id)
            });
            out.push(MessageExtras {
                uid: m.uid,
                email_id,
                save_date: InternalDate { unix: m.saved_at, offset_minutes: 0 },
                preview,
            });
        }
    }
    Ok(out)
}
