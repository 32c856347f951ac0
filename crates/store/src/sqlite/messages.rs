//! Message writes: APPEND, STORE, COPY/MOVE and EXPUNGE.
//!
//! [`prepare_parsed`] runs in the caller's `spawn_blocking` (parsing and serialising are CPU
//! work the writer thread must not do); everything else runs inside the writer's transaction
//! and does SQL only. Each operation loads the mailbox row, changes rows and counters, and writes the row
//! back, so UIDNEXT, HIGHESTMODSEQ and the counters move in the same transaction as the
//! messages. All messages changed by one operation share one new modseq (RFC 7162 allows it).
//! The owner's quota usage moves in the same job ([`super::quota`]): APPEND and COPY charge
//! the target's owner, MOVE only when the owners differ, EXPUNGE and MOVE out give it back.

use std::sync::Arc;

use rusqlite::Connection;

use super::conn::DbResult;
use super::quota::{self, Check};
use super::rows::{
    MailboxRow, Recency, checked_flags, flags_of, keywords_text, register_keywords, sql_modseq, unix_now,
};
use super::writer::Effects;
use crate::acl::QuotaLimits;
use crate::types::{
    Appended, Copied, FlagOp, Flags, FlagsUpdated, InternalDate, MailboxId, MessageSummary, ModSeq,
    NewMessage, SystemFlags, Uid, UidSet,
};
use crate::{StoreError, StoreResult};

/// A message ready for the writer: validated flags, a date, and the serialised summary.
pub(crate) struct Prepared {
    raw: bytes::Bytes,
    summary: Vec<u8>,
    flags: Flags,
    date: InternalDate,
    size: u32,
}

/// Validates, parses and serialises messages for [`append`]. CPU-bound: call it from
/// `spawn_blocking`. A message that comes with its summary (delivery parses once for all
/// recipients) is not parsed again.
pub(crate) fn prepare_parsed(
    messages: Vec<(NewMessage, Option<Arc<MessageSummary>>)>,
) -> StoreResult<Vec<Prepared>> {
    let now = unix_now();
    messages
        .into_iter()
        .map(|(m, parsed)| {
            // RFC 9051 §2.3.4: RFC822.SIZE is a number; offsets in the summary are u32 too.
            let size = u32::try_from(m.raw.len())
                .map_err(|_| StoreError::Limit("message larger than 4 GiB".to_owned()))?;
            let flags = checked_flags(&m.flags)?;
            let summary = match parsed {
                Some(summary) => summary,
                None => Arc::new(postfach_message::parse(&m.raw)),
            };
            let summary = super::summary::encode(&summary)?;
            Ok(Prepared {
                raw: m.raw,
                summary,
                flags,
                date: m.internal_date.unwrap_or(InternalDate { unix: now, offset_minutes: 0 }),
                size,
            })
        })
        .collect()
}

/// Adds messages to a mailbox, charging its owner's quota (unless `check` is
/// [`Check::Skip`]). All or nothing: the writer runs the job in one savepoint (RFC 3502
/// MULTIAPPEND), so a refusal on quota leaves nothing behind.
pub(crate) fn append(
    conn: &Connection,
    fx: &mut Effects,
    mailbox: MailboxId,
    messages: &[Prepared],
    quota_defaults: &QuotaLimits,
    check: Check,
) -> StoreResult<Vec<Appended>> {
    let mut mb = MailboxRow::load(conn, mailbox)?;
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let bytes = messages.iter().map(|m| u64::from(m.size)).sum();
    quota::charge(conn, mb.account, bytes, messages.len() as u64, quota_defaults, check)?;
    let modseq = mb.bump_modseq()?;
    let mut insert_message = conn.prepare_cached(INSERT_MESSAGE).db()?;
    let mut mark_unindexed =
        conn.prepare_cached("INSERT INTO unindexed_bodies (body_id) VALUES (?1)").db()?;
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let uid = mb.take_uid()?;
        let body_id = insert_body(conn, &m.raw, &m.summary)?;
        // Unindexed until its complete index entry is written (schema V5).
        mark_unindexed.execute([body_id]).db()?;
        insert_message
            .execute(rusqlite::params![
                mailbox.0,
                uid.get(),
                body_id,
                m.flags.system.0,
                keywords_text(&m.flags),
                m.date.unix,
                m.date.offset_minutes,
                m.size,
                sql_modseq(modseq),
            ])
            .db()?;
        mb.count_in(m.flags.system, m.size, Recency::Recent);
        out.push(Appended { uid_validity: mb.uid_validity, uid, modseq });
    }
    register_keywords(conn, mailbox, messages.iter().flat_map(|m| m.flags.keywords.iter()))?;
    mb.save(conn)?;
    fx.changed(mailbox, modseq);
    Ok(out)
}

/// Inserts a body row and returns its id. The bytes go in through incremental blob I/O: the row
/// is made with a zero-filled blob of the right size, then written page by page. Binding the
/// message as a parameter would make SQLite copy it twice (the bound value, then the record it
/// builds), three times the message in memory at once; this way the caller's buffer is the only
/// whole copy, and dirty pages spill to the WAL as the page cache fills.
pub(crate) fn insert_body(conn: &Connection, raw: &[u8], summary: &[u8]) -> StoreResult<i64> {
    let size =
        i32::try_from(raw.len()).map_err(|_| StoreError::Limit("message larger than 2 GiB".to_owned()))?;
    conn.prepare_cached("INSERT INTO bodies (size, summary, raw) VALUES (?1, ?2, zeroblob(?1))")
        .db()?
        .execute(rusqlite::params![size, summary])
        .db()?;
    let body_id = conn.last_insert_rowid();
    let mut blob = conn.blob_open(rusqlite::MAIN_DB, "bodies", "raw", body_id, false).db()?;
    blob.write_all_at(raw, 0).db()?;
    Ok(body_id)
}

/// Copies a body with its facts for another account, its text pending in that account's index
/// file (the indexer finds it in `unindexed_bodies`); the new body's id.
fn copy_body(conn: &Connection, body_id: i64, account: i64) -> StoreResult<i64> {
    conn.prepare_cached(
        "INSERT INTO bodies (size, summary, raw) SELECT size, summary, raw FROM bodies WHERE id = ?1",
    )
    .db()?
    .execute([body_id])
    .db()?;
    let copy = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO body_index
            (body_id, text_state, preview, sent_date, base_subject, is_reply, sort_from, sort_to, sort_cc,
             display_from, display_to, message_id, refs, email_id, text_account)
         SELECT ?2, ?3, preview, sent_date, base_subject, is_reply, sort_from, sort_to, sort_cc,
             display_from, display_to, message_id, refs, email_id, ?4
         FROM body_index WHERE body_id = ?1",
    )
    .db()?
    .execute(rusqlite::params![body_id, copy, super::index::TEXT_PENDING, account])
    .db()?;
    conn.prepare_cached("INSERT INTO unindexed_bodies (body_id) VALUES (?1)").db()?.execute([copy]).db()?;
    Ok(copy)
}

pub(crate) const INSERT_MESSAGE: &str = "INSERT INTO messages
    (mailbox_id, uid, body_id, flags, keywords, internal_date, date_offset, size, modseq)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// One message as COPY/MOVE/EXPUNGE/STORE need it.
struct Row {
    uid: Uid,
    body_id: i64,
    flags: Flags,
    date: i64,
    offset: i64,
    size: u32,
    modseq: ModSeq,
}

/// The messages of `mailbox` in `uids` (only `\Deleted` ones when `deleted_only`), ascending.
/// One range query per range of the set; collected first because the caller then changes the
/// same table.
fn rows_in(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &UidSet,
    deleted_only: bool,
) -> StoreResult<Vec<Row>> {
    let sql = if deleted_only {
        // The partial index messages_deleted visits only \Deleted messages. Named explicitly:
        // without statistics the planner would walk the primary key.
        "SELECT uid, body_id, flags, keywords, internal_date, date_offset, size, modseq
         FROM messages INDEXED BY messages_deleted
         WHERE mailbox_id = ?1 AND (flags & 8) <> 0 AND uid BETWEEN ?2 AND ?3 ORDER BY uid"
    } else {
        "SELECT uid, body_id, flags, keywords, internal_date, date_offset, size, modseq FROM messages
         WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid"
    };
    let mut stmt = conn.prepare_cached(sql).db()?;
    let mut out = Vec::new();
    for range in uids.ranges() {
        let rows = stmt
            .query_map(rusqlite::params![mailbox.0, range.start(), range.end()], |r| {
                let keywords: String = r.get(3)?;
                Ok(Row {
                    uid: r.get::<_, Uid>(0)?,
                    body_id: r.get(1)?,
                    flags: flags_of(r.get(2)?, &keywords),
                    date: r.get(4)?,
                    offset: r.get(5)?,
                    size: r.get(6)?,
                    modseq: super::rows::modseq_of(r.get(7)?),
                })
            })
            .db()?;
        for row in rows {
            out.push(row.db()?);
        }
    }
    Ok(out)
}

/// Changes flags (RFC 9051 §6.4.6) with the UNCHANGEDSINCE test of RFC 7162 §3.1.3.
pub(crate) fn store_flags(
    conn: &Connection,
    fx: &mut Effects,
    mailbox: MailboxId,
    uids: &UidSet,
    op: FlagOp,
    change: &Flags,
    unchanged_since: Option<ModSeq>,
) -> StoreResult<FlagsUpdated> {
    let change = checked_flags(change)?;
    let mut mb = MailboxRow::load(conn, mailbox)?;
    let modseq_before = ModSeq(mb.highest_modseq);
    let rows = rows_in(conn, mailbox, uids, false)?;
    let mut out = FlagsUpdated { modseq_before, modseq_after: modseq_before, ..FlagsUpdated::default() };
    // Allocated on the first real change: a STORE that changes nothing leaves the modseq alone.
    let mut new_modseq: Option<ModSeq> = None;
    let mut update = conn
        .prepare_cached(
            "UPDATE messages SET flags = ?1, keywords = ?2, modseq = ?3 WHERE mailbox_id = ?4 AND uid = ?5",
        )
        .db()?;
    for row in rows {
        // RFC 7162 §3.1.3: a message changed after UNCHANGEDSINCE is left alone and reported.
        if unchanged_since.is_some_and(|limit| row.modseq > limit) {
            out.modified.push(row.uid);
            continue;
        }
        let new = row.flags.apply(op, &change);
        if new == row.flags {
            out.updated.push((row.uid, row.flags, row.modseq));
            continue;
        }
        let modseq = match new_modseq {
            Some(m) => m,
            None => {
                let m = mb.bump_modseq()?;
                new_modseq = Some(m);
                m
            }
        };
        update
            .execute(rusqlite::params![
                new.system.0,
                keywords_text(&new),
                sql_modseq(modseq),
                mailbox.0,
                row.uid.get()
            ])
            .db()?;
        mb.count_flag_change(row.flags.system, new.system);
        out.updated.push((row.uid, new, modseq));
    }
    if let Some(modseq) = new_modseq {
        if op != FlagOp::Remove {
            register_keywords(conn, mailbox, change.keywords.iter())?;
        }
        mb.save(conn)?;
        fx.changed(mailbox, modseq);
        out.modseq_after = modseq;
    }
    Ok(out)
}

/// Whether a transfer keeps the source messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transfer {
    /// COPY (RFC 9051 §6.4.7).
    Copy,
    /// MOVE (RFC 6851): copy, then expunge the source messages, in one transaction.
    Move,
}

/// Copies or moves messages to a mailbox of any account (the session has checked the rights).
/// The target's owner is charged for a COPY, and for a MOVE from another owner, whose usage
/// drops by as much; a MOVE within one owner changes no usage and so never fails on quota.
pub(crate) fn transfer(
    conn: &Connection,
    fx: &mut Effects,
    from: MailboxId,
    uids: &UidSet,
    to: MailboxId,
    how: Transfer,
    quota_defaults: &QuotaLimits,
) -> StoreResult<Copied> {
    let source = MailboxRow::load(conn, from)?;
    let mut target = MailboxRow::load(conn, to)?;
    let rows = rows_in(conn, from, uids, false)?;
    if rows.is_empty() {
        return Ok(Copied::default());
    }
    let across = source.account != target.account;
    let (bytes, count) = (rows.iter().map(|r| u64::from(r.size)).sum::<u64>(), rows.len() as u64);
    if how == Transfer::Copy || across {
        quota::charge(conn, target.account, bytes, count, quota_defaults, Check::Enforce)?;
    }
    if how == Transfer::Move && across {
        quota::release(conn, source.account, bytes, count, quota_defaults)?;
    }

    // RFC 4315 §3: the new UIDs ascend in the order of the source UIDs. Flags and internal date
    // are kept (RFC 9051 §6.4.7). The body is shared within an account; another account gets a
    // copy of its own, because a body's text lives in one account's index file (`text`).
    let modseq = target.bump_modseq()?;
    let mut insert = conn.prepare_cached(INSERT_MESSAGE).db()?;
    let mut mapping = Vec::with_capacity(rows.len());
    for row in &rows {
        let uid = target.take_uid()?;
        let body_id = if across { copy_body(conn, row.body_id, target.account.0)? } else { row.body_id };
        insert
            .execute(rusqlite::params![
                to.0,
                uid.get(),
                body_id,
                row.flags.system.0,
                keywords_text(&row.flags),
                row.date,
                row.offset,
                row.size,
                sql_modseq(modseq),
            ])
            .db()?;
        target.count_in(row.flags.system, row.size, Recency::Recent);
        mapping.push((row.uid, uid));
    }
    register_keywords(conn, to, rows.iter().flat_map(|r| r.flags.keywords.iter()))?;
    target.save(conn)?;
    fx.changed(to, modseq);
    let copied = Copied { uid_validity: target.uid_validity, mapping };

    if how == Transfer::Move {
        // Reload: when source and target are the same mailbox the row just changed.
        let mut source = MailboxRow::load(conn, from)?;
        let modseq = remove_rows(conn, &mut source, &rows)?;
        source.save(conn)?;
        fx.changed(from, modseq);
    }
    Ok(copied)
}

/// Deletes rows and records them as expunged with one new modseq; adjusts the counters of
/// `mb` (the caller saves it). The delete trigger releases the bodies.
fn remove_rows(conn: &Connection, mb: &mut MailboxRow, rows: &[Row]) -> StoreResult<ModSeq> {
    let modseq = mb.bump_modseq()?;
    let mut delete = conn.prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2").db()?;
    let mut record = conn
        .prepare_cached("INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)")
        .db()?;
    for row in rows {
        delete.execute(rusqlite::params![mb.id.0, row.uid.get()]).db()?;
        record.execute(rusqlite::params![mb.id.0, row.uid.get(), sql_modseq(modseq)]).db()?;
        let recency = mb.recency(row.uid);
        mb.count_out(row.flags.system, row.size, recency);
    }
    Ok(modseq)
}

/// Expunges up to `max` messages of `mailbox` saved before `before` (Unix seconds; SAVEDATE,
/// RFC 8514), whatever their flags, through the same steps as EXPUNGE: `expunged` rows with
/// one new modseq, counters, quota usage given back, watchers told. The index
/// `saved_at_by_time` makes the choice a range scan. Returns the UIDs ascending; fewer than
/// `max` means none is left.
pub(crate) fn expunge_saved_before(
    conn: &Connection,
    fx: &mut Effects,
    mailbox: MailboxId,
    before: i64,
    max: usize,
    quota_defaults: &QuotaLimits,
) -> StoreResult<Vec<Uid>> {
    let mut mb = MailboxRow::load(conn, mailbox)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.uid, m.body_id, m.flags, m.keywords, m.internal_date, m.date_offset, m.size, m.modseq
             FROM saved_at s INDEXED BY saved_at_by_time
             JOIN messages m ON m.mailbox_id = s.mailbox_id AND m.uid = s.uid
             WHERE s.mailbox_id = ?1 AND s.unix < ?2
             LIMIT ?3",
        )
        .db()?;
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let mut rows = stmt
        .query_map(rusqlite::params![mailbox.0, before, limit], |r| {
            let keywords: String = r.get(3)?;
            Ok(Row {
                uid: r.get::<_, Uid>(0)?,
                body_id: r.get(1)?,
                flags: flags_of(r.get(2)?, &keywords),
                date: r.get(4)?,
                offset: r.get(5)?,
                size: r.get(6)?,
                modseq: super::rows::modseq_of(r.get(7)?),
            })
        })
        .db()?
        .collect::<rusqlite::Result<Vec<Row>>>()
        .db()?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    rows.sort_unstable_by_key(|r| r.uid);
    let bytes = rows.iter().map(|r| u64::from(r.size)).sum();
    quota::release(conn, mb.account, bytes, rows.len() as u64, quota_defaults)?;
    let modseq = remove_rows(conn, &mut mb, &rows)?;
    mb.save(conn)?;
    fx.changed(mailbox, modseq);
    Ok(rows.into_iter().map(|r| r.uid).collect())
}

/// Removes the `\Deleted` messages (within `uids` when given, RFC 4315 UID EXPUNGE) and gives
/// their space back to the owner's quota; returns their UIDs ascending.
pub(crate) fn expunge(
    conn: &Connection,
    fx: &mut Effects,
    mailbox: MailboxId,
    uids: Option<&UidSet>,
    quota_defaults: &QuotaLimits,
) -> StoreResult<Vec<Uid>> {
    let mut mb = MailboxRow::load(conn, mailbox)?;
    let everything = UidSet::from_ranges([1..=u32::MAX]);
    let rows = rows_in(conn, mailbox, uids.unwrap_or(&everything), true)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    debug_assert!(rows.iter().all(|r| r.flags.system.contains(SystemFlags::DELETED)));
    let bytes = rows.iter().map(|r| u64::from(r.size)).sum();
    quota::release(conn, mb.account, bytes, rows.len() as u64, quota_defaults)?;
    let modseq = remove_rows(conn, &mut mb, &rows)?;
    mb.save(conn)?;
    fx.changed(mailbox, modseq);
    Ok(rows.into_iter().map(|r| r.uid).collect())
}
