//! Reads of the per-body facts kept by [`super::index`]: SORT (RFC 5256 §3, RFC 5957), THREAD
//! input (RFC 5256) and the FETCH extras EMAILID, SAVEDATE and PREVIEW.
//!
//! Bodies without an index entry (stored before the index existed and not re-derived yet, or
//! whose indexing failed) are answered from their stored summary or raw bytes instead, so the
//! answers never depend on the index being complete.
//!
//! Limits: one SORT keeps a compact sort key per message in memory, at most [`MAX_SORT_BYTES`]
//! in all; THREAD takes at most [`MAX_THREAD_MESSAGES`] messages. Beyond that the request is
//! refused with [`StoreError::Limit`] rather than growing without bound.

use postfach_message::{BodyFacts, collation_key};
use rusqlite::{Connection, OptionalExtension, Row};

use super::conn::DbResult;
use super::index::IndexEntry;
use super::reads::{decode_summary, raw_body};
use super::rows::{MailboxRow, date_of};
use crate::types::{
    MailboxId, MessageExtras, SortCriterion, SortDirection, SortKey, ThreadFacts, Uid, UidSet,
};
use crate::{StoreError, StoreResult};

/// Most memory the sort keys of one SORT may take.
pub(crate) const MAX_SORT_BYTES: usize = 128 * 1024 * 1024;
/// Most messages one THREAD may cover.
pub(crate) const MAX_THREAD_MESSAGES: usize = 250_000;

/// One message with what SORT and THREAD compare.
pub(crate) struct Keyed {
    pub(crate) uid: Uid,
    pub(crate) internal_date: i64,
    pub(crate) size: i64,
    pub(crate) facts: BodyFacts,
}

const KEYED_SQL: &str = "SELECT m.uid, m.internal_date, m.size, m.body_id, bi.body_id, bi.sent_date,
        bi.base_subject, bi.is_reply, bi.sort_from, bi.sort_to, bi.sort_cc, bi.display_from, bi.display_to,
        bi.message_id, bi.refs
    FROM messages m LEFT JOIN body_index bi ON bi.body_id = m.body_id
    WHERE m.mailbox_id = ?1 AND m.uid BETWEEN ?2 AND ?3 ORDER BY m.uid";

fn keyed_of(conn: &Connection, r: &Row<'_>) -> StoreResult<Keyed> {
    let body_id: i64 = r.get(3).db()?;
    let indexed: Option<i64> = r.get(4).db()?;
    let facts = if indexed.is_some() {
        let refs: String = r.get(14).db()?;
        BodyFacts {
            sent_date: r.get(5).db()?,
            base_subject: r.get(6).db()?,
            is_reply: r.get(7).db()?,
            sort_from: r.get(8).db()?,
            sort_to: r.get(9).db()?,
            sort_cc: r.get(10).db()?,
            display_from: r.get(11).db()?,
            display_to: r.get(12).db()?,
            message_id: r.get(13).db()?,
            refs: refs.split_ascii_whitespace().map(str::to_owned).collect(),
        }
    } else {
        // No entry yet: the stored summary has everything the facts are made of.
        let stored: Option<Vec<u8>> = conn
            .prepare_cached("SELECT summary FROM bodies WHERE id = ?1")
            .db()?
            .query_row([body_id], |r| r.get(0))
            .optional()
            .db()?;
        match stored {
            Some(bytes) => BodyFacts::of(decode_summary(conn, body_id, &bytes)?.as_ref()),
            None => BodyFacts::default(),
        }
    };
    Ok(Keyed { uid: r.get::<_, Uid>(0).db()?, internal_date: r.get(1).db()?, size: r.get(2).db()?, facts })
}

/// Calls `each` for every existing message of `uids`, ascending.
fn for_each_keyed(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &UidSet,
    mut each: impl FnMut(Keyed) -> StoreResult<()>,
) -> StoreResult<()> {
    MailboxRow::load(conn, mailbox)?;
    let mut stmt = conn.prepare_cached(KEYED_SQL).db()?;
    for range in uids.ranges() {
        let mut rows = stmt.query(rusqlite::params![mailbox.0, range.start(), range.end()]).db()?;
        while let Some(r) = rows.next().db()? {
            each(keyed_of(conn, r)?)?;
        }
    }
    Ok(())
}

/// The messages of `uids` in SORT order.
pub(crate) fn sort(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &UidSet,
    criteria: &[SortCriterion],
) -> StoreResult<Vec<Uid>> {
    let mut keyed: Vec<(Box<[u8]>, Uid)> = Vec::new();
    let mut bytes = 0usize;
    for_each_keyed(conn, mailbox, uids, |m| {
        let key = sort_key(criteria, &m);
        bytes = bytes.saturating_add(key.len() + std::mem::size_of::<(Box<[u8]>, Uid)>());
        if bytes > MAX_SORT_BYTES {
            return Err(StoreError::Limit("too many messages to sort; narrow the search".to_owned()));
        }
        keyed.push((key, m.uid));
        Ok(())
    })?;
    // RFC 5256 §3: ties keep mailbox order (the UID, which the tuple compares last).
    keyed.sort_unstable();
    Ok(keyed.into_iter().map(|(_, uid)| uid).collect())
}

/// One byte string whose byte order is the order of `criteria`: numbers as sign-flipped
/// big-endian, strings as their i;unicode-casemap key (RFC 5256 §7: titlecased, decomposed
/// UTF-8, whose byte order is code point order) ended by a NUL, so an empty string sorts first
/// (RFC 5256 §3); a `REVERSE` component is bit-inverted. The stored strings are lowercase-folded;
/// the key is taken from them here, so rows stored before the key existed sort the same.
pub(crate) fn sort_key(criteria: &[SortCriterion], m: &Keyed) -> Box<[u8]> {
    let mut key = Vec::new();
    for c in criteria {
        let start = key.len();
        let number =
            |key: &mut Vec<u8>, n: i64| key.extend_from_slice(&((n as u64) ^ (1 << 63)).to_be_bytes());
        let text = |key: &mut Vec<u8>, s: &str| {
            key.extend(collation_key(s).bytes().filter(|&b| b != 0));
            key.push(0);
        };
        match c.key {
            SortKey::Arrival => number(&mut key, m.internal_date),
            // RFC 5256 §2.2: the internal date stands in for a missing or broken Date:.
            SortKey::Date => number(&mut key, m.facts.sent_date.unwrap_or(m.internal_date)),
            SortKey::Size => number(&mut key, m.size),
            SortKey::Subject => text(&mut key, &m.facts.base_subject),
            SortKey::From => text(&mut key, &m.facts.sort_from),
            SortKey::To => text(&mut key, &m.facts.sort_to),
            SortKey::Cc => text(&mut key, &m.facts.sort_cc),
            SortKey::DisplayFrom => text(&mut key, &m.facts.display_from),
            SortKey::DisplayTo => text(&mut key, &m.facts.display_to),
        }
        if c.direction == SortDirection::Descending {
            for b in &mut key[start..] {
                *b = !*b;
            }
        }
    }
    key.into_boxed_slice()
}

/// THREAD input for the messages of `uids`.
pub(crate) fn thread_facts(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &UidSet,
) -> StoreResult<Vec<ThreadFacts>> {
    let mut out = Vec::new();
    for_each_keyed(conn, mailbox, uids, |m| {
        if out.len() >= MAX_THREAD_MESSAGES {
            return Err(StoreError::Limit(format!(
                "THREAD covers at most {MAX_THREAD_MESSAGES} messages; narrow the search"
            )));
        }
        out.push(ThreadFacts {
            uid: m.uid,
            sent_date: m.facts.sent_date.unwrap_or(m.internal_date),
            base_subject: m.facts.base_subject,
            is_reply: m.facts.is_reply,
            message_id: m.facts.message_id,
            references: m.facts.refs,
        });
        Ok(())
    })?;
    Ok(out)
}

/// EMAILID, SAVEDATE and PREVIEW of the messages of `uids`.
pub(crate) fn fetch_extras(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &UidSet,
) -> StoreResult<Vec<MessageExtras>> {
    MailboxRow::load(conn, mailbox)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.uid, m.body_id, m.internal_date, m.date_offset, s.unix, bi.preview, bi.email_id
             FROM messages m
             LEFT JOIN saved_at s ON s.mailbox_id = m.mailbox_id AND s.uid = m.uid
             LEFT JOIN body_index bi ON bi.body_id = m.body_id
             WHERE m.mailbox_id = ?1 AND m.uid BETWEEN ?2 AND ?3 ORDER BY m.uid",
        )
        .db()?;
    let mut out = Vec::new();
    for range in uids.ranges() {
        let mut rows = stmt.query(rusqlite::params![mailbox.0, range.start(), range.end()]).db()?;
        while let Some(r) = rows.next().db()? {
            let body_id: i64 = r.get(1).db()?;
            let internal = date_of(r.get(2).db()?, r.get(3).db()?);
            let saved: Option<i64> = r.get(4).db()?;
            let preview: Option<String> = r.get(5).db()?;
            let email_id: Option<String> = r.get(6).db()?;
            let (preview, email_id) = match (preview, email_id) {
                (Some(p), Some(e)) => (p, e),
                // Not indexed yet: derive both from the message itself (RFC 8970 forbids NIL
                // without LAZY).
                _ => {
                    let raw = match raw_body(conn, body_id) {
                        Ok(raw) => raw,
                        Err(StoreError::NotFound) => Vec::new(),
                        Err(e) => return Err(e),
                    };
                    let entry = IndexEntry::extract(&raw);
                    (entry.preview, entry.email_id)
                }
            };
            out.push(MessageExtras {
                uid: r.get::<_, Uid>(0).db()?,
                email_id,
                save_date: saved.map_or(internal, |unix| date_of(unix, 0)),
                preview,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn keyed(uid: u32, date: i64, size: i64, subject: &str, from: &str) -> Keyed {
        Keyed {
            uid: Uid::new(uid).unwrap(),
            internal_date: date,
            size,
            facts: BodyFacts {
                base_subject: subject.into(),
                sort_from: from.into(),
                sent_date: (date > 0).then_some(date * 10),
                ..BodyFacts::default()
            },
        }
    }

    fn order(criteria: &[(SortKey, SortDirection)], messages: &[Keyed]) -> Vec<u32> {
        let criteria: Vec<SortCriterion> =
            criteria.iter().map(|&(key, direction)| SortCriterion { key, direction }).collect();
        let mut v: Vec<(Box<[u8]>, Uid)> = messages.iter().map(|m| (sort_key(&criteria, m), m.uid)).collect();
        v.sort_unstable();
        v.into_iter().map(|(_, u)| u.get()).collect()
    }

    #[test]
    fn sort_keys_order_like_rfc5256() {
        use SortDirection::{Ascending as Up, Descending as Down};
        let m = [
            keyed(1, 5, 300, "b", "x"),
            keyed(2, 3, 100, "", "y"),
            keyed(3, -7, 200, "a", "x"),
            keyed(4, 3, 100, "ab", ""),
        ];
        assert_eq!(order(&[(SortKey::Arrival, Up)], &m), vec![3, 2, 4, 1]);
        assert_eq!(order(&[(SortKey::Arrival, Down)], &m), vec![1, 2, 4, 3]);
        // The empty string first; "a" before "ab".
        assert_eq!(order(&[(SortKey::Subject, Up)], &m), vec![2, 3, 4, 1]);
        assert_eq!(order(&[(SortKey::Subject, Down)], &m), vec![1, 4, 3, 2]);
        // REVERSE does not reverse the implicit UID order of ties.
        assert_eq!(order(&[(SortKey::Size, Down)], &m), vec![1, 3, 2, 4]);
        assert_eq!(order(&[(SortKey::From, Up), (SortKey::Size, Down)], &m), vec![4, 1, 3, 2]);
        // DATE uses the sent date, the internal date when there is none.
        assert_eq!(order(&[(SortKey::Date, Up)], &m), vec![3, 2, 4, 1]);
    }

    #[test]
    fn strings_sort_by_unicode_casemap_keys() {
        use SortDirection::{Ascending as Up, Descending as Down};
        // Stored as lowercase folds; i;unicode-casemap orders titlecased, decomposed text, so
        // `[`, `_` and `` ` `` come after the letters and "äpfel" right after "apfel".
        let m = [
            keyed(1, 1, 1, "_", "[x]@y"),
            keyed(2, 1, 1, "[xyz]", "b@y"),
            keyed(3, 1, 1, "c", "_@y"),
            keyed(4, 1, 1, "äpfel", "a@y"),
            keyed(5, 1, 1, "apfel", ""),
            keyed(6, 1, 1, "apfelz", "ä@y"),
        ];
        assert_eq!(order(&[(SortKey::Subject, Up)], &m), vec![5, 6, 4, 3, 2, 1]);
        assert_eq!(order(&[(SortKey::Subject, Down)], &m), vec![1, 2, 3, 4, 6, 5]);
        assert_eq!(order(&[(SortKey::From, Up)], &m), vec![5, 4, 6, 2, 1, 3]);
    }
}
