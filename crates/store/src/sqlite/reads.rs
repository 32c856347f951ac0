//! Mailbox and message reads: STATUS, SELECT snapshots, changes since a modseq, FETCH metadata
//! and raw bodies.
//!
//! These run on a reader connection inside one read transaction (one consistent snapshot),
//! except [`claim`], which moves the `\Recent` boundary and therefore runs in the writer.
//! Every query walks an index in proportion to what it returns; nothing counts rows.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};

use super::conn::DbResult;
use super::rows::{MailboxRow, date_of, flags_of, mailbox_keywords, modseq_of, sql_modseq};
use crate::types::{
    Changes, FetchWant, MailboxId, MailboxStatus, MessageMeta, MessageSummary, ModSeq, Snapshot, Uid, UidSet,
};
use crate::{StoreError, StoreResult};

/// Counters of one mailbox: one row read.
pub(crate) fn status(conn: &Connection, mailbox: MailboxId) -> StoreResult<MailboxStatus> {
    Ok(MailboxRow::load(conn, mailbox)?.status())
}

/// A snapshot without claiming `\Recent` (EXAMINE), plus the mailbox's `recent_from_uid`, so the
/// caller can tell whether a SELECT has anything to claim.
pub(crate) fn peek(conn: &Connection, mailbox: MailboxId) -> StoreResult<(Snapshot, u32)> {
    let row = MailboxRow::load(conn, mailbox)?;
    let snapshot = assemble(conn, &row)?;
    Ok((snapshot, row.recent_from_uid))
}

/// As [`claim_below`] without taking them: the messages below `below` nobody has claimed.
pub(crate) fn recent_below(conn: &Connection, mailbox: MailboxId, below: Uid) -> StoreResult<UidSet> {
    let row = MailboxRow::load(conn, mailbox)?;
    uids_between(conn, mailbox, row.recent_from_uid, below.get().min(row.uid_next))
}

/// The UIDs of `mailbox` in `[from, to)`, by the primary key.
fn uids_between(conn: &Connection, mailbox: MailboxId, from: u32, to: u32) -> StoreResult<UidSet> {
    let mut uids = UidSet::new();
    if from >= to {
        return Ok(uids);
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT uid FROM messages WHERE mailbox_id = ?1 AND uid >= ?2 AND uid < ?3 ORDER BY uid",
        )
        .db()?;
    let mut rows = stmt.query(rusqlite::params![mailbox.0, from, to]).db()?;
    while let Some(r) = rows.next().db()? {
        uids.push_ascending(r.get::<_, Uid>(0).db()?);
    }
    Ok(uids)
}

/// The mailbox's `uid_next` and `recent_from_uid`: one row read.
pub(crate) fn peek_boundary(conn: &Connection, mailbox: MailboxId) -> StoreResult<(u32, u32)> {
    let row = MailboxRow::load(conn, mailbox)?;
    Ok((row.uid_next, row.recent_from_uid))
}

/// SELECT: takes the recent boundary for this session: returns `[recent_from_uid, uid_next)` and
/// moves the boundary to `uid_next`, durably (RFC 3501 §2.3.2: only one session sees a message
/// as `\Recent`). Runs in the writer and costs O(1): the UID list is read afterwards on a reader,
/// so a SELECT of a huge mailbox never holds up other sessions' writes.
pub(crate) fn claim(conn: &Connection, mailbox: MailboxId) -> StoreResult<std::ops::Range<u32>> {
    let mut row = MailboxRow::load(conn, mailbox)?;
    let claimed = row.recent_from_uid..row.uid_next;
    row.recent_from_uid = row.uid_next;
    row.recent = 0;
    row.save(conn)?;
    Ok(claimed)
}

/// New messages seen by a session with the mailbox selected: takes `[recent_from_uid, below)`
/// and returns the UIDs of those messages, moving the boundary to `below` (never back). Costs
/// the claimed messages.
pub(crate) fn claim_below(conn: &Connection, mailbox: MailboxId, below: Uid) -> StoreResult<UidSet> {
    let mut row = MailboxRow::load(conn, mailbox)?;
    let end = below.get().min(row.uid_next);
    if row.recent_from_uid >= end {
        return Ok(UidSet::new());
    }
    let claimed = uids_between(conn, mailbox, row.recent_from_uid, end)?;
    row.recent_from_uid = end;
    row.recent = row.recent.saturating_sub(u32::try_from(claimed.len()).unwrap_or(u32::MAX));
    row.save(conn)?;
    Ok(claimed)
}

/// Marks the messages of `claimed` in `snapshot` as this session's recent ones.
pub(crate) fn apply_claim(snapshot: &mut Snapshot, claimed: std::ops::Range<u32>) {
    if claimed.start >= claimed.end {
        return;
    }
    let mine = snapshot.uids.clipped(claimed.start..=claimed.end - 1);
    // The session reports the claimed messages as its RECENT count.
    snapshot.status.recent = u32::try_from(mine.len()).unwrap_or(u32::MAX);
    snapshot.recent = mine;
}

/// Every UID of the mailbox, read message by message (what `uid_runs` must agree with).
fn uids_by_walk(conn: &Connection, mailbox: MailboxId) -> StoreResult<UidSet> {
    let mut stmt = conn.prepare_cached("SELECT uid FROM messages WHERE mailbox_id = ?1 ORDER BY uid").db()?;
    let mut rows = stmt.query([mailbox.0]).db()?;
    let mut uids = UidSet::new();
    while let Some(r) = rows.next().db()? {
        uids.push_ascending(r.get::<_, Uid>(0).db()?);
    }
    Ok(uids)
}

/// The snapshot without a recent claim.
fn assemble(conn: &Connection, row: &MailboxRow) -> StoreResult<Snapshot> {
    // One row per run of consecutive UIDs (schema V6), not one per message.
    let uids = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT first_uid, last_uid FROM uid_runs WHERE mailbox_id = ?1 ORDER BY first_uid",
            )
            .db()?;
        let rows = stmt.query_map([row.id.0], |r| Ok(r.get::<_, u32>(0)?..=r.get::<_, u32>(1)?)).db()?;
        UidSet::from_ranges(rows.collect::<rusqlite::Result<Vec<_>>>().db()?)
    };
    // Debug builds (every test) check the runs against the messages themselves.
    debug_assert_eq!(uids, uids_by_walk(conn, row.id)?, "uid_runs out of step with messages");
    // The partial index messages_unseen makes this one index probe, however many messages are
    // seen. Named explicitly: without statistics the planner would walk the primary key.
    let first_unseen = conn
        .prepare_cached(
            "SELECT uid FROM messages INDEXED BY messages_unseen
             WHERE mailbox_id = ?1 AND (flags & 1) = 0 ORDER BY uid LIMIT 1",
        )
        .db()?
        .query_row([row.id.0], |r| r.get::<_, Uid>(0))
        .optional()
        .db()?;
    Ok(Snapshot {
        status: row.status(),
        uids,
        keywords: mailbox_keywords(conn, row.id)?,
        recent: UidSet::new(),
        first_unseen,
    })
}

/// What changed since `since`: see [`Changes`].
pub(crate) fn changes_since(
    conn: &Connection,
    mailbox: MailboxId,
    since: ModSeq,
    known_uid_next: Uid,
) -> StoreResult<Changes> {
    let all = changes_up_to(conn, mailbox, since, known_uid_next, None)?;
    all.ok_or_else(|| StoreError::Backend("changes without a limit came out limited".to_owned()))
}

/// [`changes_since`] when each kind of change (added, flags, expunged) has at most `limit`
/// rows; None when one has more (nothing else read then). None as `limit`: no limit.
pub(crate) fn changes_up_to(
    conn: &Connection,
    mailbox: MailboxId,
    since: ModSeq,
    known_uid_next: Uid,
    limit: Option<usize>,
) -> StoreResult<Option<Changes>> {
    // SQLite reads LIMIT -1 as no limit; one row more than the limit tells "too many".
    let sql_limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX - 1) + 1);
    let over = |n: usize| limit.is_some_and(|l| n > l);
    let row = MailboxRow::load(conn, mailbox)?;
    let mut out = Changes {
        highest_modseq: ModSeq(row.highest_modseq),
        uid_next: row.uid_next(),
        ..Changes::default()
    };
    {
        let mut stmt = conn
            .prepare_cached(
                "SELECT uid FROM messages WHERE mailbox_id = ?1 AND uid >= ?2 ORDER BY uid LIMIT ?3",
            )
            .db()?;
        let rows = stmt
            .query_map(rusqlite::params![mailbox.0, known_uid_next.get(), sql_limit], |r| r.get::<_, Uid>(0))
            .db()?;
        out.added = rows.collect::<rusqlite::Result<_>>().db()?;
        if over(out.added.len()) {
            return Ok(None);
        }
    }
    // Both queries walk the (mailbox_id, modseq) indexes, so they cost what changed since
    // `since`, not what the mailbox holds; named explicitly because without statistics the
    // planner may prefer the primary key's UID range.
    if since.0 < row.highest_modseq {
        let mut stmt = conn
            .prepare_cached(
                "SELECT uid, flags, keywords, modseq FROM messages INDEXED BY messages_by_modseq
                 WHERE mailbox_id = ?1 AND modseq > ?2 AND uid < ?3 LIMIT ?4",
            )
            .db()?;
        let rows = stmt
            .query_map(
                rusqlite::params![mailbox.0, sql_modseq(since), known_uid_next.get(), sql_limit],
                |r| {
                    let keywords: String = r.get(2)?;
                    Ok((r.get::<_, Uid>(0)?, flags_of(r.get(1)?, &keywords), modseq_of(r.get(3)?)))
                },
            )
            .db()?;
        out.flags = rows.collect::<rusqlite::Result<_>>().db()?;
        if over(out.flags.len()) {
            return Ok(None);
        }
        // The (mailbox_id, modseq) index returns them in modseq order; callers want UID order.
        out.flags.sort_unstable_by_key(|(uid, _, _)| *uid);

        let mut stmt = conn
            .prepare_cached(
                "SELECT uid FROM expunged INDEXED BY expunged_by_modseq
                 WHERE mailbox_id = ?1 AND modseq > ?2 AND uid < ?3 LIMIT ?4",
            )
            .db()?;
        let rows = stmt
            .query_map(
                rusqlite::params![mailbox.0, sql_modseq(since), known_uid_next.get(), sql_limit],
                |r| r.get::<_, Uid>(0),
            )
            .db()?;
        out.expunged = rows.collect::<rusqlite::Result<_>>().db()?;
        if over(out.expunged.len()) {
            return Ok(None);
        }
        out.expunged.sort_unstable();
    }
    if !out.added.is_empty() || !out.flags.is_empty() {
        out.keywords = mailbox_keywords(conn, mailbox)?;
    }
    Ok(Some(out))
}

/// Metadata of the existing messages in `uids`, ascending; one range query per range.
pub(crate) fn fetch(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &UidSet,
    want: FetchWant,
) -> StoreResult<Vec<MessageMeta>> {
    MailboxRow::load(conn, mailbox)?;
    let sql = if want.summary {
        "SELECT m.uid, m.flags, m.keywords, m.internal_date, m.date_offset, m.size, m.modseq, m.body_id, b.summary
         FROM messages m JOIN bodies b ON b.id = m.body_id
         WHERE m.mailbox_id = ?1 AND m.uid BETWEEN ?2 AND ?3 ORDER BY m.uid"
    } else {
        "SELECT uid, flags, keywords, internal_date, date_offset, size, modseq FROM messages
         WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid"
    };
    let mut stmt = conn.prepare_cached(sql).db()?;
    let mut out = Vec::new();
    for range in uids.ranges() {
        let mut rows = stmt.query(rusqlite::params![mailbox.0, range.start(), range.end()]).db()?;
        while let Some(r) = rows.next().db()? {
            let keywords: String = r.get(2).db()?;
            let summary = if want.summary {
                let body_id: i64 = r.get(7).db()?;
                let bytes: Vec<u8> = r.get(8).db()?;
                Some(decode_summary(conn, body_id, &bytes)?)
            } else {
                None
            };
            out.push(MessageMeta {
                uid: r.get::<_, Uid>(0).db()?,
                flags: flags_of(r.get(1).db()?, &keywords),
                internal_date: date_of(r.get(3).db()?, r.get(4).db()?),
                size: r.get(5).db()?,
                modseq: modseq_of(r.get(6).db()?),
                summary,
            });
        }
    }
    Ok(out)
}

/// Decodes a stored summary. When it does not decode (stored by an older or newer version of
/// `postfach-message`), the message is parsed again from its raw bytes: a format change must
/// not make old mail unreadable.
pub(crate) fn decode_summary(
    conn: &Connection,
    body_id: i64,
    bytes: &[u8],
) -> StoreResult<Arc<MessageSummary>> {
    match super::summary::decode(bytes) {
        Ok(summary) => Ok(Arc::new(summary)),
        Err(e) => {
            tracing::warn!(body_id, error = %e, "stored summary does not decode; parsing the message again");
            let raw = raw_body(conn, body_id)?;
            Ok(Arc::new(postfach_message::parse(&raw)))
        }
    }
}

/// The raw bytes of a stored body.
pub(crate) fn raw_body(conn: &Connection, body_id: i64) -> StoreResult<Vec<u8>> {
    conn.prepare_cached("SELECT raw FROM bodies WHERE id = ?1")
        .db()?
        .query_row([body_id], |r| r.get(0))
        .optional()
        .db()?
        .ok_or(StoreError::NotFound)
}

/// The raw message, byte for byte as appended.
/// The first `limit` bytes of each wanted message, read with incremental blob I/O so that only
/// the pages holding those bytes are touched.
pub(crate) fn bodies(
    conn: &Connection,
    mailbox: MailboxId,
    wanted: &[(Uid, u32)],
) -> StoreResult<Vec<(Uid, Vec<u8>)>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.body_id, length(b.raw) FROM messages m JOIN bodies b ON b.id = m.body_id
             WHERE m.mailbox_id = ?1 AND m.uid = ?2",
        )
        .db()?;
    let mut out = Vec::with_capacity(wanted.len());
    for &(uid, limit) in wanted {
        let found: Option<(i64, i64)> = stmt
            .query_row(rusqlite::params![mailbox.0, uid.get()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .db()?;
        let Some((body_id, len)) = found else { continue };
        let n = usize::try_from(len.max(0)).unwrap_or(0).min(limit as usize);
        let blob = conn.blob_open(rusqlite::MAIN_DB, "bodies", "raw", body_id, true).db()?;
        let mut buf = vec![0u8; n];
        blob.read_at_exact(&mut buf, 0).db()?;
        out.push((uid, buf));
    }
    Ok(out)
}

pub(crate) fn body(conn: &Connection, mailbox: MailboxId, uid: Uid) -> StoreResult<Vec<u8>> {
    conn.prepare_cached(
        "SELECT b.raw FROM messages m JOIN bodies b ON b.id = m.body_id WHERE m.mailbox_id = ?1 AND m.uid = ?2",
    )
    .db()?
    .query_row(rusqlite::params![mailbox.0, uid.get()], |r| r.get(0))
    .optional()
    .db()?
    .ok_or(StoreError::NotFound)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A mailbox (id 1) of `n` messages, UIDs 1..=n, message `i` last changed at modseq `i`.
    fn mailbox(n: i64) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created) VALUES ('a', 'a', '', 0);
             INSERT INTO bodies (id, size, summary, raw) VALUES (1, 1, x'', x'00');",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq, recent_from_uid)
             VALUES (1, 'INBOX', 1, ?1, ?2, 1)",
            [n + 1, n],
        )
        .unwrap();
        for uid in 1..=n {
            conn.execute("INSERT INTO messages VALUES (1, ?1, 1, 0, '', 0, 0, 1, ?1)", [uid]).unwrap();
        }
        conn
    }

    #[test]
    fn limited_changes_give_up_past_the_limit_and_agree_below_it() {
        let conn = mailbox(100);
        let (mb, next) = (MailboxId(1), Uid::new(101).unwrap());
        // 30 flag changes since modseq 70: within a limit of 64, the same as unlimited.
        let few = changes_up_to(&conn, mb, ModSeq(70), next, Some(64)).unwrap().unwrap();
        let all = changes_since(&conn, mb, ModSeq(70), next).unwrap();
        assert_eq!(few.flags.len(), 30);
        assert_eq!(few.flags, all.flags);
        // 100 since modseq 0: too many for the limit.
        assert!(changes_up_to(&conn, mb, ModSeq(0), next, Some(64)).unwrap().is_none());
        assert_eq!(changes_since(&conn, mb, ModSeq(0), next).unwrap().flags.len(), 100);
        // 100 new messages for a session that knew UIDNEXT 1: too many as well.
        assert!(changes_up_to(&conn, mb, ModSeq(100), Uid::MIN, Some(64)).unwrap().is_none());
        assert_eq!(
            changes_up_to(&conn, mb, ModSeq(100), Uid::MIN, Some(100)).unwrap().unwrap().added.len(),
            100
        );
    }
}
