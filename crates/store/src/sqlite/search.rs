//! SEARCH (RFC 9051 §6.4.4) over one mailbox.
//!
//! Three stages. The full-text index first: every BODY, TEXT and HEADER/FROM/TO/CC/BCC/SUBJECT
//! key with a needle of at least three characters becomes one FTS5 query (trigram substring
//! match) that yields the UIDs of this mailbox whose bodies contain the needle. Then SQL: the
//! cheap parts of the criterion (UID ranges, system flags, size, modseq, OLDER/YOUNGER) become a
//! WHERE clause that every match must satisfy, so most non-matches never leave SQLite. Then Rust
//! evaluates the whole criterion on each remaining row, streaming: index hits are binary
//! searches; the summary (SENT*) and the raw message are loaded only for the message at hand and
//! only when a cheaper test did not already decide. The raw message is read only when the index
//! cannot answer: needles shorter than three characters or holding a line feed, HEADER fields
//! other than the five indexed ones (the index narrows, the scan decides), messages whose index
//! entry is missing (stored before the index existed and not yet re-derived, or indexing failed)
//! or cut at the size limit.
//!
//! Matching is on decoded text folded with [`fold`] (simple Unicode case folding, close
//! to i;unicode-casemap), identically for the index and the scan.
//!
//! Limits: criteria nested deeper than [`MAX_DEPTH`] are refused with [`StoreError::Limit`];
//! at most [`MAX_INDEX_QUERIES`] keys per search use the index, further ones scan. Index hits
//! cost 4 bytes per matching message of the mailbox.

use std::collections::HashMap;

use postfach_message::{MessageText, email_id, fold};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};

use super::conn::DbResult;
use super::index::{TEXT_COMPLETE, TEXT_TRUNCATED};
use super::reads::{decode_summary, raw_body};
use super::rows::{MailboxRow, flags_of, sql_modseq, unix_now};
use super::text::TextShards;
use crate::types::{Criterion, Flags, MailboxId, MessageSummary, SystemFlags, Uid};
use crate::{StoreError, StoreResult};

/// Deepest criterion nesting evaluated (recursion depth, SQL expression depth).
pub(crate) const MAX_DEPTH: usize = 64;

/// Most UID ranges written into SQL as an exact test; larger sets are narrowed to their bounds
/// in SQL and tested exactly in Rust.
const MAX_SQL_RANGES: usize = 16;

/// Most bound parameters in the prefilter (SQLite's limit is much higher; a huge prefilter
/// would cost more to plan than it saves).
const MAX_SQL_PARAMS: usize = 500;

/// Most keys of one search answered through the full-text index.
pub(crate) const MAX_INDEX_QUERIES: usize = 16;

/// UIDs of the messages in `mailbox` that match, ascending. The full-text index is the file of
/// the mailbox's owner in `text`.
pub(crate) fn search(
    conn: &Connection,
    text: &TextShards,
    mailbox: MailboxId,
    criterion: &Criterion,
) -> StoreResult<Vec<Uid>> {
    let row = MailboxRow::load(conn, mailbox)?;
    let shard = if has_text_key(criterion) {
        // An index that cannot answer must not fail the search: the messages are scanned.
        text.open_for_search(conn, row.account).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot open the full-text index; scanning instead");
            None
        })
    } else {
        None
    };
    search_with(conn, shard.as_ref(), &row, criterion, Plan::Cheapest)
}

/// Whether some key of `c` can be answered by the full-text index.
fn has_text_key(c: &Criterion) -> bool {
    keys(c).into_iter().any(|k| fts_query(k).is_some())
}

/// The keys of a criterion tree (everything below NOT, AND and OR), in no particular order.
fn keys(c: &Criterion) -> Vec<&Criterion> {
    let mut out = Vec::new();
    let mut stack = vec![c];
    while let Some(c) = stack.pop() {
        match c {
            Criterion::Not(inner) => stack.push(inner),
            Criterion::And(all) => stack.extend(all.iter()),
            Criterion::Or(a, b) => {
                stack.push(a);
                stack.push(b);
            }
            key => out.push(key),
        }
    }
    out
}

/// How [`search_with`] finds the messages to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Visit the index's candidates when there are few enough, else walk the mailbox.
    Cheapest,
    /// Always walk the mailbox (tests compare both ways).
    #[cfg_attr(not(test), allow(dead_code))]
    Walk,
}

fn search_with(
    conn: &Connection,
    shard: Option<&Connection>,
    row: &MailboxRow,
    criterion: &Criterion,
    plan: Plan,
) -> StoreResult<Vec<Uid>> {
    if depth(criterion) > MAX_DEPTH {
        return Err(StoreError::Limit(format!("search criteria nested deeper than {MAX_DEPTH}")));
    }
    let mailbox = row.id;
    let now = unix_now();
    let hits = Hits::collect(conn, shard, mailbox, criterion, row.messages);

    let mut params: Vec<Value> = Vec::new();
    let mut filter = necessary(criterion, now, &mut params).unwrap_or_else(|| "1".to_owned());
    if params.len() > MAX_SQL_PARAMS {
        params.clear();
        filter = "1".to_owned();
    }
    let cx = Eval { conn, now, hits: &hits, mailbox };
    let mut out = Vec::new();
    let visit = match plan {
        Plan::Cheapest => candidates(conn, mailbox, &hits, criterion, row.messages)?,
        Plan::Walk => None,
    };
    match visit {
        // Few candidates: visit each by its primary key.
        Some(uids) => {
            let sql = format!("{CANDIDATE_COLUMNS} WHERE m.mailbox_id = ? AND m.uid = ? AND ({filter})");
            let mut stmt = conn.prepare(&sql).db()?;
            let mut p = Vec::with_capacity(params.len() + 2);
            p.extend([Value::Integer(mailbox.0), Value::Integer(0)]);
            p.extend(params);
            for uid in uids {
                p[1] = Value::Integer(i64::from(uid.get()));
                let mut rows = stmt.query(rusqlite::params_from_iter(p.iter())).db()?;
                if let Some(r) = rows.next().db()? {
                    let mut candidate = Candidate::of(r)?;
                    if matches(criterion, &mut candidate, &cx)? {
                        out.push(candidate.uid);
                    }
                }
            }
        }
        // Otherwise walk the mailbox in UID order; the filter keeps most non-matches in SQLite.
        None => {
            let walk = |index: &str| {
                let columns = CANDIDATE_COLUMNS.replace("messages m", &format!("messages m {index}"));
                format!("{columns} WHERE m.mailbox_id = ? AND ({filter}) ORDER BY m.uid")
            };
            let hint = flag_index(criterion, row);
            // INDEXED BY refuses to prepare when the filter lost the flag test (too many
            // parameters): then walk the table.
            let mut stmt = match hint.map(|index| conn.prepare(&walk(index))) {
                Some(Ok(stmt)) => stmt,
                _ => conn.prepare(&walk("")).db()?,
            };
            let mut p = vec![Value::Integer(mailbox.0)];
            p.extend(params);
            let mut rows = stmt.query(rusqlite::params_from_iter(p)).db()?;
            while let Some(r) = rows.next().db()? {
                let mut candidate = Candidate::of(r)?;
                if matches(criterion, &mut candidate, &cx)? {
                    out.push(candidate.uid);
                }
            }
        }
    }
    Ok(out)
}

/// What [`Candidate::of`] reads. The columns of the prefilter (uid, flags, size, modseq,
/// internal_date) exist only in `messages`, so they need no table prefix.
const CANDIDATE_COLUMNS: &str =
    "SELECT m.uid, m.body_id, m.flags, m.keywords, m.internal_date, m.date_offset, m.size, m.modseq,
            bi.text_state
     FROM messages m LEFT JOIN body_index bi ON bi.body_id = m.body_id";

/// A walk of the mailbox costs about this many primary-key visits per message; with more index
/// candidates than `messages / VISIT_COST`, walking is cheaper.
const VISIT_COST: usize = 4;

/// A partial index that walks fewer rows than the mailbox, when every match needs `\Seen`
/// unset or `\Deleted` set and the mailbox's counters say few messages qualify. (SQLite has
/// no statistics to tell this itself.)
fn flag_index(criterion: &Criterion, row: &MailboxRow) -> Option<&'static str> {
    let conjuncts: &[Criterion] = match criterion {
        Criterion::And(all) => all,
        one => std::slice::from_ref(one),
    };
    let few = |n: u32| n <= row.messages / u32::try_from(VISIT_COST).unwrap_or(u32::MAX);
    conjuncts.iter().find_map(|c| match c {
        Criterion::FlagUnset(f) if *f == SystemFlags::SEEN && few(row.unseen) => {
            Some("INDEXED BY messages_unseen")
        }
        Criterion::FlagSet(f) if *f == SystemFlags::DELETED && few(row.deleted) => {
            Some("INDEXED BY messages_deleted")
        }
        _ => None,
    })
}

/// The only UIDs that can match, when the index narrows the search enough to visit them one by
/// one instead of walking the mailbox: the hits of a text key every match must satisfy, plus
/// the messages whose bodies the index does not hold completely (`unindexed_bodies`, normally
/// none), which are decided by scanning. Costs the hits and the unindexed bodies of the
/// database, not the mailbox.
fn candidates(
    conn: &Connection,
    mailbox: MailboxId,
    hits: &Hits,
    criterion: &Criterion,
    messages: u32,
) -> StoreResult<Option<Vec<Uid>>> {
    let Some(mut uids) = hits.required(criterion) else { return Ok(None) };
    let walk = usize::try_from(messages).unwrap_or(usize::MAX) / VISIT_COST;
    if uids.len() > walk {
        return Ok(None);
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.uid FROM unindexed_bodies u JOIN messages m INDEXED BY messages_by_body
                 ON m.body_id = u.body_id
             WHERE m.mailbox_id = ?1",
        )
        .db()?;
    let mut rows = stmt.query([mailbox.0]).db()?;
    while let Some(r) = rows.next().db()? {
        uids.push(r.get::<_, Uid>(0).db()?);
        if uids.len() > walk {
            return Ok(None);
        }
    }
    uids.sort_unstable();
    uids.dedup();
    Ok(Some(uids))
}

// --- full-text index ----------------------------------------------------------------------------

/// How far an index hit decides a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precision {
    /// Hit ⇔ match (for a completely indexed message).
    Exact,
    /// Hit is necessary, the scan decides (HEADER of a field without its own column).
    Narrowing,
}

/// The index's answer for one key: the matching UIDs of the mailbox, ascending.
struct KeyHits {
    precision: Precision,
    uids: Vec<Uid>,
}

/// Index answers per key, by the key's address in the criterion tree.
struct Hits {
    by_key: HashMap<usize, KeyHits>,
}

impl Hits {
    /// Without an index file (`shard`) there are no hits: every key is decided by scanning.
    fn collect(
        conn: &Connection,
        shard: Option<&Connection>,
        mailbox: MailboxId,
        criterion: &Criterion,
        messages: u32,
    ) -> Hits {
        let mut by_key = HashMap::new();
        let Some(shard) = shard else { return Hits { by_key } };
        for c in keys(criterion) {
            if by_key.len() >= MAX_INDEX_QUERIES {
                break;
            }
            let Some((query, precision)) = fts_query(c) else { continue };
            // An index that cannot answer (damaged, say) must not fail the search: the key is
            // then decided by scanning, as for unindexed messages.
            match index_uids(conn, shard, mailbox, &query, messages) {
                Ok(uids) => {
                    by_key.insert(key_of(c), KeyHits { precision, uids });
                }
                Err(e) => tracing::warn!(error = %e, "full-text query failed; scanning instead"),
            }
        }
        Hits { by_key }
    }

    fn of(&self, c: &Criterion) -> Option<&KeyHits> {
        self.by_key.get(&key_of(c))
    }

    /// UIDs a match of `c` must be among, when the index says so for every completely indexed
    /// message: a text key's hits (a hit is necessary at either precision), the smallest such
    /// set of a conjunction, the union of both sides of an OR. Unsorted for a union.
    fn required(&self, c: &Criterion) -> Option<Vec<Uid>> {
        match c {
            Criterion::Header(..) | Criterion::Body(_) | Criterion::Text(_) => {
                self.of(c).map(|k| k.uids.clone())
            }
            Criterion::And(all) => {
                // Pick the smallest set before copying any.
                let smallest =
                    all.iter().filter_map(|x| self.required_len(x).map(|n| (n, x))).min_by_key(|p| p.0)?;
                self.required(smallest.1)
            }
            Criterion::Or(a, b) => {
                let mut left = self.required(a)?;
                left.extend(self.required(b)?);
                Some(left)
            }
            _ => None,
        }
    }

    /// The size of [`Hits::required`]'s answer, without building it.
    fn required_len(&self, c: &Criterion) -> Option<usize> {
        match c {
            Criterion::Header(..) | Criterion::Body(_) | Criterion::Text(_) => {
                self.of(c).map(|k| k.uids.len())
            }
            Criterion::And(all) => all.iter().filter_map(|x| self.required_len(x)).min(),
            Criterion::Or(a, b) => Some(self.required_len(a)?.saturating_add(self.required_len(b)?)),
            _ => None,
        }
    }
}

fn key_of(c: &Criterion) -> usize {
    std::ptr::from_ref(c) as usize
}

/// The FTS5 query answering a text key, when the index can: a column filter and the folded
/// needle as one phrase (the trigram tokenizer turns a phrase into a substring match).
fn fts_query(c: &Criterion) -> Option<(String, Precision)> {
    let (columns, needle, precision) = match c {
        Criterion::Body(n) => ("body", n, Precision::Exact),
        Criterion::Text(n) => ("headers body", n, Precision::Exact),
        Criterion::Header(name, n) => match name.as_str() {
            "subject" => ("h_subject", n, Precision::Exact),
            "from" => ("h_from", n, Precision::Exact),
            "to" => ("h_to", n, Precision::Exact),
            "cc" => ("h_cc", n, Precision::Exact),
            "bcc" => ("h_bcc", n, Precision::Exact),
            _ => ("headers", n, Precision::Narrowing),
        },
        _ => return None,
    };
    let needle = fold(needle);
    // Trigrams need three characters; a line feed could match across two joined values.
    if needle.chars().count() < 3 || needle.contains('\n') {
        return None;
    }
    Some((format!("{{{columns}}} : \"{}\"", needle.replace('"', "\"\"")), precision))
}

/// Index hits of the account read per message of the mailbox before giving up on reading
/// them and asking about the mailbox's own messages instead (plus a fixed allowance).
const HITS_PER_MESSAGE: u64 = 16;
/// See [`HITS_PER_MESSAGE`].
const HITS_ALLOWANCE: u64 = 20_000;

/// UIDs of `mailbox` whose bodies match an FTS query in the account's index file `shard`,
/// ascending.
///
/// The file holds every mailbox of the account, so a needle may match many bodies elsewhere
/// (a small folder beside a huge archive). The hits are read (each one probe into `messages`)
/// as long as there are not many more of them than the mailbox has messages; past that budget
/// the mailbox's own messages are asked about one by one (one seek in the index each). Either
/// way the cost is bounded by about `HITS_PER_MESSAGE` times the mailbox's size.
fn index_uids(
    conn: &Connection,
    shard: &Connection,
    mailbox: MailboxId,
    query: &str,
    messages: u32,
) -> StoreResult<Vec<Uid>> {
    let budget = u64::from(messages).saturating_mul(HITS_PER_MESSAGE).saturating_add(HITS_ALLOWANCE);
    let mut uids = match hits_of_account(conn, shard, mailbox, query, budget)? {
        Some(uids) => uids,
        None => hits_by_probing(conn, shard, mailbox, query)?,
    };
    uids.sort_unstable();
    uids.dedup();
    Ok(uids)
}

/// Reads the index's hits for the whole account and keeps this mailbox's; None when there are
/// more than `budget`.
fn hits_of_account(
    conn: &Connection,
    shard: &Connection,
    mailbox: MailboxId,
    query: &str,
    budget: u64,
) -> StoreResult<Option<Vec<Uid>>> {
    let mut hits = shard.prepare_cached("SELECT rowid FROM body_text WHERE body_text MATCH ?1").db()?;
    let mut of_body = conn
        .prepare_cached(
            "SELECT uid FROM messages INDEXED BY messages_by_body WHERE body_id = ?1 AND mailbox_id = ?2",
        )
        .db()?;
    let mut rows = hits.query([query]).db()?;
    let mut seen = 0u64;
    let mut uids = Vec::new();
    while let Some(r) = rows.next().db()? {
        seen += 1;
        if seen > budget {
            return Ok(None);
        }
        let body: i64 = r.get(0).db()?;
        let mut found = of_body.query(rusqlite::params![body, mailbox.0]).db()?;
        while let Some(m) = found.next().db()? {
            uids.push(m.get::<_, Uid>(0).db()?);
        }
    }
    Ok(Some(uids))
}

/// Asks the index about each message of the mailbox (one seek per message).
fn hits_by_probing(
    conn: &Connection,
    shard: &Connection,
    mailbox: MailboxId,
    query: &str,
) -> StoreResult<Vec<Uid>> {
    let mut probe =
        shard.prepare_cached("SELECT 1 FROM body_text WHERE body_text MATCH ?1 AND rowid = ?2").db()?;
    let mut stmt = conn.prepare_cached("SELECT uid, body_id FROM messages WHERE mailbox_id = ?1").db()?;
    let mut rows = stmt.query([mailbox.0]).db()?;
    let mut uids = Vec::new();
    while let Some(r) = rows.next().db()? {
        let body: i64 = r.get(1).db()?;
        if probe.query_row(rusqlite::params![query, body], |_| Ok(())).optional().db()?.is_some() {
            uids.push(r.get::<_, Uid>(0).db()?);
        }
    }
    Ok(uids)
}

fn depth(c: &Criterion) -> usize {
    // Iterative, so that a hostile nesting cannot overflow the stack while being measured.
    let mut max = 0;
    let mut stack = vec![(c, 1usize)];
    while let Some((c, d)) = stack.pop() {
        max = max.max(d);
        match c {
            Criterion::Not(inner) => stack.push((inner, d + 1)),
            Criterion::And(all) => stack.extend(all.iter().map(|x| (x, d + 1))),
            Criterion::Or(a, b) => {
                stack.push((a, d + 1));
                stack.push((b, d + 1));
            }
            _ => {}
        }
        if max > MAX_DEPTH {
            break;
        }
    }
    max
}

// --- SQL prefilter ----------------------------------------------------------------------------

/// The save date of the message `m` (RFC 8514), its internal date when none was recorded.
const SAVED_UNIX: &str =
    "COALESCE((SELECT s.unix FROM saved_at s WHERE s.mailbox_id = m.mailbox_id AND s.uid = m.uid),
                   m.internal_date)";

/// A WHERE fragment equivalent to `c`, when `c` can be said in SQL exactly.
fn exact(c: &Criterion, now: i64, p: &mut Vec<Value>) -> Option<String> {
    let int = |v: i64| Value::Integer(v);
    Some(match c {
        Criterion::All => "1".to_owned(),
        Criterion::Uids(set) => {
            if set.ranges().len() > MAX_SQL_RANGES {
                return None;
            }
            if set.is_empty() {
                return Some("0".to_owned());
            }
            let parts: Vec<&str> = set
                .ranges()
                .iter()
                .map(|r| {
                    p.push(int(i64::from(*r.start())));
                    p.push(int(i64::from(*r.end())));
                    "uid BETWEEN ? AND ?"
                })
                .collect();
            format!("({})", parts.join(" OR "))
        }
        // Flag bits are written as literals (they are ours, not the client's) so that the
        // planner can use the partial indexes on `(flags & 1) = 0` and `(flags & 8) <> 0`.
        Criterion::FlagSet(f) if f.0 == SystemFlags::DELETED.0 => format!("(flags & {}) <> 0", f.0),
        Criterion::FlagSet(f) => format!("(flags & {0}) = {0}", f.0),
        Criterion::FlagUnset(f) => format!("(flags & {}) = 0", f.0),
        Criterion::Larger(n) => {
            p.push(int(i64::from(*n)));
            "size > ?".to_owned()
        }
        Criterion::Smaller(n) => {
            p.push(int(i64::from(*n)));
            "size < ?".to_owned()
        }
        Criterion::ModSeqAtLeast(m) => {
            p.push(int(sql_modseq(*m)));
            "modseq >= ?".to_owned()
        }
        Criterion::Older(secs) => {
            p.push(int(older_limit(now, *secs)));
            "internal_date <= ?".to_owned()
        }
        Criterion::Younger(secs) => {
            p.push(int(older_limit(now, *secs)));
            "internal_date >= ?".to_owned()
        }
        Criterion::SavedBefore(day) => {
            p.push(int(day.saturating_mul(86_400)));
            format!("{SAVED_UNIX} < ?")
        }
        Criterion::SavedOn(day) => {
            p.push(int(day.saturating_mul(86_400)));
            p.push(int(day.saturating_add(1).saturating_mul(86_400)));
            format!("{SAVED_UNIX} >= ? AND {SAVED_UNIX} < ?")
        }
        Criterion::SavedSince(day) => {
            p.push(int(day.saturating_mul(86_400)));
            format!("{SAVED_UNIX} >= ?")
        }
        Criterion::Not(inner) => format!("NOT ({})", exact(inner, now, p)?),
        Criterion::And(all) => {
            let mut parts = Vec::with_capacity(all.len());
            for x in all {
                parts.push(format!("({})", exact(x, now, p)?));
            }
            if parts.is_empty() { "1".to_owned() } else { parts.join(" AND ") }
        }
        Criterion::Or(a, b) => format!("(({}) OR ({}))", exact(a, now, p)?, exact(b, now, p)?),
        _ => return None,
    })
}

/// A WHERE fragment every match of `c` satisfies (None: no constraint).
fn necessary(c: &Criterion, now: i64, p: &mut Vec<Value>) -> Option<String> {
    let mark = p.len();
    if let Some(sql) = exact(c, now, p) {
        return Some(sql);
    }
    // `exact` may have pushed parameters for a part before giving up.
    p.truncate(mark);
    match c {
        Criterion::Uids(set) => {
            let (first, last) = (set.ranges().first()?, set.ranges().last()?);
            p.push(Value::Integer(i64::from(*first.start())));
            p.push(Value::Integer(i64::from(*last.end())));
            Some("uid BETWEEN ? AND ?".to_owned())
        }
        Criterion::And(all) => {
            let parts: Vec<String> =
                all.iter().filter_map(|x| necessary(x, now, p).map(|s| format!("({s})"))).collect();
            (!parts.is_empty()).then(|| parts.join(" AND "))
        }
        Criterion::Or(a, b) => {
            let left = necessary(a, now, p);
            let right = left.as_ref().and_then(|_| necessary(b, now, p));
            match (left, right) {
                (Some(l), Some(r)) => Some(format!("(({l}) OR ({r}))")),
                _ => {
                    p.truncate(mark);
                    None
                }
            }
        }
        _ => None,
    }
}

/// The instant `secs` seconds before `now` (RFC 5032).
fn older_limit(now: i64, secs: u64) -> i64 {
    now.saturating_sub(i64::try_from(secs).unwrap_or(i64::MAX))
}

// --- evaluation in Rust -----------------------------------------------------------------------

/// One message under test, with what has been loaded for it so far.
struct Candidate {
    uid: Uid,
    body_id: i64,
    flags: Flags,
    date: i64,
    offset_minutes: i64,
    size: u32,
    modseq: i64,
    /// `body_index.text_state`; None when the body has no index entry.
    text_state: Option<i64>,
    summary: Option<Option<std::sync::Arc<MessageSummary>>>,
    text: Option<MessageText>,
}

impl Candidate {
    /// A row of [`CANDIDATE_COLUMNS`].
    fn of(r: &rusqlite::Row<'_>) -> StoreResult<Candidate> {
        let keywords: String = r.get(3).db()?;
        Ok(Candidate {
            uid: r.get::<_, Uid>(0).db()?,
            body_id: r.get(1).db()?,
            flags: flags_of(r.get(2).db()?, &keywords),
            date: r.get(4).db()?,
            offset_minutes: r.get(5).db()?,
            size: r.get(6).db()?,
            modseq: r.get(7).db()?,
            text_state: r.get(8).db()?,
            summary: None,
            text: None,
        })
    }
}

/// What evaluation needs besides the candidate.
struct Eval<'a> {
    conn: &'a Connection,
    /// The mailbox searched.
    mailbox: MailboxId,
    now: i64,
    hits: &'a Hits,
}

/// How expensive a criterion is to evaluate: metadata < summary < raw message.
fn cost(c: &Criterion) -> u8 {
    match c {
        Criterion::SentBefore(_) | Criterion::SentOn(_) | Criterion::SentSince(_) => 1,
        Criterion::SavedBefore(_) | Criterion::SavedOn(_) | Criterion::SavedSince(_) => 1,
        Criterion::EmailId(_) => 1,
        Criterion::Header(..) | Criterion::Body(_) | Criterion::Text(_) => 2,
        Criterion::Not(inner) => cost(inner),
        Criterion::And(all) => all.iter().map(cost).max().unwrap_or(0),
        Criterion::Or(a, b) => cost(a).max(cost(b)),
        _ => 0,
    }
}

/// The calendar day (days since the epoch) of an instant seen in a zone `offset_secs` east of UTC.
fn day_of(unix: i64, offset_secs: i64) -> i64 {
    unix.saturating_add(offset_secs).div_euclid(86_400)
}

fn matches(c: &Criterion, m: &mut Candidate, cx: &Eval<'_>) -> StoreResult<bool> {
    let (conn, now) = (cx.conn, cx.now);
    // RFC 9051 §6.4.4: BEFORE/ON/SINCE compare the internal date's day "disregarding time and
    // timezone", i.e. the calendar day in the zone the date carries.
    let internal_day = day_of(m.date, m.offset_minutes.saturating_mul(60));
    Ok(match c {
        Criterion::All => true,
        Criterion::Uids(set) => set.contains(m.uid),
        Criterion::FlagSet(f) => m.flags.system.contains(*f),
        Criterion::FlagUnset(f) => m.flags.system.0 & f.0 == 0,
        Criterion::Keyword(k) => m.flags.has_keyword(k),
        Criterion::NoKeyword(k) => !m.flags.has_keyword(k),
        Criterion::Before(day) => internal_day < *day,
        Criterion::On(day) => internal_day == *day,
        Criterion::Since(day) => internal_day >= *day,
        Criterion::SentBefore(day) => sent_day(m, conn)? < *day,
        Criterion::SentOn(day) => sent_day(m, conn)? == *day,
        Criterion::SentSince(day) => sent_day(m, conn)? >= *day,
        // RFC 5032 §3: OLDER matches at or before now - n, YOUNGER at or after it.
        Criterion::Older(secs) => m.date <= older_limit(now, *secs),
        Criterion::Younger(secs) => m.date >= older_limit(now, *secs),
        Criterion::SavedBefore(day) => saved_day(m, cx)? < *day,
        Criterion::SavedOn(day) => saved_day(m, cx)? == *day,
        Criterion::SavedSince(day) => saved_day(m, cx)? >= *day,
        Criterion::EmailId(id) => email_id_of(m, conn)? == *id,
        Criterion::Larger(n) => m.size > *n,
        Criterion::Smaller(n) => m.size < *n,
        Criterion::ModSeqAtLeast(min) => m.modseq >= sql_modseq(*min),
        Criterion::Header(..) | Criterion::Body(_) | Criterion::Text(_) => {
            match index_verdict(c, m, cx.hits) {
                Some(verdict) => verdict,
                None => scan_matches(c, m, conn)?,
            }
        }
        Criterion::Not(inner) => !matches(inner, m, cx)?,
        Criterion::And(all) => {
            let mut order: Vec<&Criterion> = all.iter().collect();
            order.sort_by_key(|x| cost(x));
            for x in order {
                if !matches(x, m, cx)? {
                    return Ok(false);
                }
            }
            true
        }
        Criterion::Or(a, b) => {
            let (first, second) = if cost(b) < cost(a) { (b, a) } else { (a, b) };
            matches(first, m, cx)? || matches(second, m, cx)?
        }
    })
}

/// What the index says about a text key for this message, when that settles it.
fn index_verdict(c: &Criterion, m: &Candidate, hits: &Hits) -> Option<bool> {
    let key = hits.of(c)?;
    // Pending text (not written yet by the indexer) or no entry: the index cannot say.
    let state = m.text_state.filter(|s| *s == TEXT_COMPLETE || *s == TEXT_TRUNCATED)?;
    let hit = key.uids.binary_search(&m.uid).is_ok();
    match (hit, key.precision) {
        (true, Precision::Exact) => Some(true),
        (true, Precision::Narrowing) => None,
        // A miss in a cut entry may be a match in the part that was not indexed.
        (false, _) if state == TEXT_TRUNCATED => None,
        (false, _) => Some(false),
    }
}

/// Decides a text key by extracting the message's text.
fn scan_matches(c: &Criterion, m: &mut Candidate, conn: &Connection) -> StoreResult<bool> {
    let text = text_of(m, conn)?;
    Ok(match c {
        Criterion::Header(name, value) => text.header_contains(name, &fold(value)),
        Criterion::Body(needle) => text.body_contains(&fold(needle)),
        Criterion::Text(needle) => text.text_contains(&fold(needle)),
        _ => false,
    })
}

/// The day of the `Date:` header in the sender's zone; the internal date's day when the
/// message has no parseable `Date:` (RFC 9051 leaves this open; Postfach follows Dovecot in
/// falling back to the internal date).
fn sent_day(m: &mut Candidate, conn: &Connection) -> StoreResult<i64> {
    if m.summary.is_none() {
        let stored: Option<Vec<u8>> = conn
            .prepare_cached("SELECT summary FROM bodies WHERE id = ?1")
            .db()?
            .query_row([m.body_id], |r| r.get(0))
            .optional()
            .db()?;
        m.summary = Some(match stored {
            Some(bytes) => Some(decode_summary(conn, m.body_id, &bytes)?),
            None => None,
        });
    }
    let sent = m.summary.as_ref().and_then(|s| s.as_ref()).and_then(|s| s.sent_date);
    Ok(match sent {
        Some(d) => day_of(d.unix, i64::from(d.offset)),
        None => day_of(m.date, m.offset_minutes.saturating_mul(60)),
    })
}

/// The UTC day a message was saved in its mailbox (RFC 8514 §4.3 compares days "disregarding
/// time and timezone"; save dates are kept and reported in UTC).
fn saved_day(m: &Candidate, cx: &Eval<'_>) -> StoreResult<i64> {
    let unix: i64 = cx
        .conn
        .prepare_cached(&format!(
            "SELECT {SAVED_UNIX} FROM messages m WHERE m.mailbox_id = ?1 AND m.uid = ?2"
        ))
        .db()?
        .query_row(rusqlite::params![cx.mailbox.0, m.uid.get()], |r| r.get(0))
        .db()?;
    Ok(day_of(unix, 0))
}

/// The EMAILID of a message (RFC 8474): from its index entry, else from its bytes.
fn email_id_of(m: &Candidate, conn: &Connection) -> StoreResult<String> {
    let stored: Option<String> = conn
        .prepare_cached("SELECT email_id FROM body_index WHERE body_id = ?1")
        .db()?
        .query_row([m.body_id], |r| r.get(0))
        .optional()
        .db()?;
    match stored {
        Some(id) => Ok(id),
        None => match raw_body(conn, m.body_id) {
            Ok(raw) => Ok(email_id(&raw)),
            Err(StoreError::NotFound) => Ok(email_id(&[])),
            Err(e) => Err(e),
        },
    }
}

fn text_of<'a>(m: &'a mut Candidate, conn: &Connection) -> StoreResult<&'a MessageText> {
    if m.text.is_none() {
        // A body that vanished under a concurrent expunge cannot match anything.
        let raw = match raw_body(conn, m.body_id) {
            Ok(raw) => raw,
            Err(StoreError::NotFound) => Vec::new(),
            Err(e) => return Err(e),
        };
        m.text = Some(MessageText::extract(&raw).0);
    }
    m.text.as_ref().ok_or_else(|| StoreError::Backend("message text missing".to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{index, text};
    use super::*;
    use crate::types::{ModSeq, SystemFlags, UidSet};

    /// A database and its account's index file, both in memory.
    struct Db {
        conn: Connection,
        shard: Connection,
    }

    impl std::ops::Deref for Db {
        type Target = Connection;
        fn deref(&self) -> &Connection {
            &self.conn
        }
    }

    /// A migrated in-memory database with one mailbox (id 1) holding `messages` as UIDs 1..;
    /// bodies are indexed when `indexed[i]` is true.
    fn mailbox_with(messages: &[&[u8]], indexed: &[bool]) -> Db {
        let conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created) VALUES ('a', 'a', '', 0);
             INSERT INTO text_shards (account_id, token) VALUES (1, 1);
             INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq,
                                    recent_from_uid) VALUES (1, 'INBOX', 1, 1, 1, 1);
             INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq,
                                    recent_from_uid) VALUES (1, 'Other', 2, 1, 1, 1);",
        )
        .unwrap();
        let shard = super::super::text::in_memory();
        for (i, raw) in messages.iter().enumerate() {
            let summary = serde_json::to_vec(&postfach_message::parse(raw)).unwrap();
            let id = i as i64 + 1;
            conn.execute(
                "INSERT INTO bodies (id, size, summary, raw) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![id, raw.len() as i64, summary, raw],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO messages VALUES (1, ?1, ?1, 0, '', 0, 0, ?2, 1)",
                rusqlite::params![id, raw.len() as i64],
            )
            .unwrap();
            conn.execute("INSERT INTO unindexed_bodies (body_id) VALUES (?1)", [id]).unwrap();
            if indexed.get(i).copied().unwrap_or(false) {
                let entry = index::IndexEntry::extract(raw);
                index::rewrite_entry(&conn, id, &entry).unwrap();
                let row = text::ShardText { body_id: id, email_id: &entry.email_id, text: &entry.text };
                text::write_texts(&shard, &[row]).unwrap();
                text::mark_indexed(&conn, 1, 1, id, &entry.email_id, entry.text.truncated).unwrap();
            }
        }
        Db { conn, shard }
    }

    fn search_in(db: &Db, mailbox: MailboxId, c: &Criterion) -> Vec<Uid> {
        search_with(db, Some(&db.shard), &MailboxRow::load(db, mailbox).unwrap(), c, Plan::Cheapest).unwrap()
    }

    /// The answer, checked to be the same whether the index's candidates are visited or the
    /// mailbox is walked, and without the index file.
    fn uids(db: &Db, c: &Criterion) -> Vec<u32> {
        let cheapest: Vec<u32> = search_in(db, MailboxId(1), c).into_iter().map(|u| u.get()).collect();
        let walked: Vec<u32> =
            search_with(db, Some(&db.shard), &MailboxRow::load(db, MailboxId(1)).unwrap(), c, Plan::Walk)
                .unwrap()
                .into_iter()
                .map(|u| u.get())
                .collect();
        assert_eq!(cheapest, walked, "{c:?}");
        cheapest
    }

    const MESSAGES: [&[u8]; 4] = [
        b"Subject: Quarterly Report\r\nFrom: Anna <anna@example.org>\r\n\r\nNumbers are UP.\r\n",
        "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nFrom: bob@example.org\r\nX-Tag: blue\r\n\r\nSchöne GRÜSSE aus Köln\r\n"
            .as_bytes(),
        b"Subject: lunch\r\nTo: anna@example.org\r\n\r\nreport me later\r\n",
        b"no header at all, report",
    ];

    #[test]
    fn index_and_scan_agree() {
        let keys = [
            Criterion::Body("report".into()),
            Criterion::Body("REPORT".into()),
            Criterion::Text("report".into()),
            Criterion::Text("subject: quarterly".into()),
            Criterion::Header("subject".into(), "grüße".into()),
            Criterion::Header("subject".into(), "GRÜSSE".into()),
            Criterion::Header("from".into(), "anna".into()),
            Criterion::Header("to".into(), "ANNA@".into()),
            Criterion::Header("x-tag".into(), "blu".into()),
            Criterion::Header("x-tag".into(), "".into()),
            Criterion::Body("köln".into()),
            Criterion::Body("up".into()),
            Criterion::Body("\"".into()),
            Criterion::Not(Box::new(Criterion::Text("anna".into()))),
            Criterion::Or(
                Box::new(Criterion::Body("numbers".into())),
                Box::new(Criterion::Body("later".into())),
            ),
        ];
        let indexed = mailbox_with(&MESSAGES, &[true, true, true, true]);
        let scanned = mailbox_with(&MESSAGES, &[false, false, false, false]);
        let mixed = mailbox_with(&MESSAGES, &[true, false, true, false]);
        let expected: [&[u32]; 15] = [
            &[3, 4],
            &[3, 4],
            &[1, 3, 4],
            &[1],
            &[2],
            &[],
            &[1],
            &[3],
            &[2],
            &[2],
            &[2],
            &[1],
            &[],
            &[2, 4],
            &[1, 3],
        ];
        for (key, want) in keys.iter().zip(expected) {
            assert_eq!(uids(&indexed, key), want, "indexed {key:?}");
            assert_eq!(uids(&scanned, key), want, "scanned {key:?}");
            assert_eq!(uids(&mixed, key), want, "mixed {key:?}");
        }
    }

    /// SEARCH FROM/TO match the addresses as RFC 5322 parses them (comments and folding gone,
    /// a trailing comment as the display name, group names and members), indexed or scanned.
    #[test]
    fn address_keys_match_the_parsed_addresses() {
        let messages: [&[u8]; 6] = [
            b"From: user-from@domain.org\r\n\r\nx\r\n",
            b"From: RealFrom <user-from@domain.org>\r\n\r\nx\r\n",
            b"From: <user-from (comment)@ (comment) domain.org>\r\n\r\nx\r\n",
            b"From: user-from@domain.org (RealFrom)\r\n\r\nx\r\n",
            b"From: user-from1@domain.org, user-from2@domain.org\r\n\r\nx\r\n",
            b"To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\r\n  \
groupname2: groupuser3@domain.org;\r\n\r\nx\r\n",
        ];
        let from = |n: &str| Criterion::Header("from".into(), n.into());
        let to = |n: &str| Criterion::Header("to".into(), n.into());
        let cases: [(Criterion, &[u32]); 16] = [
            (from("user-from@domain.org"), &[1, 2, 3, 4]),
            (from("USER-FROM@DOMAIN.ORG"), &[1, 2, 3, 4]),
            (from("realfrom"), &[2, 4]),
            (from("ealfro"), &[2, 4]),
            (from("ser-fro"), &[1, 2, 3, 4, 5]),
            (from("user-from1@domain.org"), &[5]),
            (from("user-from2"), &[5]),
            (from("comment"), &[]),
            (from(""), &[1, 2, 3, 4, 5]),
            (to("groupname"), &[6]),
            (to("groupname2"), &[6]),
            (to("groupuser1"), &[6]),
            (to("groupuser2@domain.org"), &[6]),
            (to("groupuser3"), &[6]),
            (to("groupuser4"), &[]),
            (to(""), &[6]),
        ];
        for indexed in [true, false] {
            let conn = mailbox_with(&messages, &[indexed; 6]);
            for (key, want) in &cases {
                assert_eq!(uids(&conn, key), *want, "indexed: {indexed}, {key:?}");
            }
        }
    }

    #[test]
    fn index_answers_without_reading_bodies() {
        let conn = mailbox_with(&MESSAGES, &[true, true, true, true]);
        // Remove the raw bytes: only the index can still answer.
        conn.execute_batch("UPDATE bodies SET raw = x''").unwrap();
        assert_eq!(uids(&conn, &Criterion::Body("report".into())), vec![3, 4]);
        assert_eq!(uids(&conn, &Criterion::Header("subject".into(), "LUNCH".into())), vec![3]);
        // Another mailbox's copy of a body is not a hit here.
        conn.execute_batch("INSERT INTO messages VALUES (2, 1, 1, 0, '', 0, 0, 1, 1)").unwrap();
        assert_eq!(search_in(&conn, MailboxId(2), &Criterion::Body("numbers".into())), vec![Uid::MIN]);
        assert_eq!(uids(&conn, &Criterion::Body("numbers".into())), vec![1]);
    }

    #[test]
    fn truncated_entries_fall_back_to_the_scan() {
        let conn = mailbox_with(&MESSAGES, &[true, true, true, true]);
        // Pretend message 3's entry was cut before "later".
        conn.shard
            .execute_batch(
                "DELETE FROM body_text WHERE rowid = 3;
                 INSERT INTO body_text (rowid, body) VALUES (3, 'report me');",
            )
            .unwrap();
        conn.execute_batch(
            "UPDATE body_index SET text_state = 2 WHERE body_id = 3;
             INSERT INTO unindexed_bodies (body_id) VALUES (3);",
        )
        .unwrap();
        assert_eq!(uids(&conn, &Criterion::Body("later".into())), vec![3]);
    }

    #[test]
    fn fts_queries_quote_and_pick_columns() {
        let q = |c: Criterion| fts_query(&c).map(|(q, p)| (q, p == Precision::Exact));
        assert_eq!(
            q(Criterion::Body("Say \"hi\"".into())),
            Some(("{body} : \"say \"\"hi\"\"\"".into(), true))
        );
        assert_eq!(
            q(Criterion::Header("x-a".into(), "abc".into())),
            Some(("{headers} : \"abc\"".into(), false))
        );
        assert_eq!(q(Criterion::Text("ab".into())), None);
        assert_eq!(q(Criterion::Text("ab\ncd".into())), None);
        assert_eq!(q(Criterion::Larger(3)), None);
    }

    #[test]
    fn probing_seeks_the_index_by_rowid() {
        let conn = mailbox_with(&MESSAGES, &[true]);
        let plan: Vec<String> = conn
            .shard
            .prepare("EXPLAIN QUERY PLAN SELECT 1 FROM body_text WHERE body_text MATCH ?1 AND rowid = ?2")
            .unwrap()
            .query_map(rusqlite::params!["x", 1], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // FTS5's plan names its constraints: M = MATCH, = = rowid equality.
        assert!(plan.iter().any(|p| p.contains("VIRTUAL TABLE INDEX") && p.contains('=')), "{plan:?}");
    }

    /// A mailbox of `n` indexed messages where every tenth holds "needle".
    fn big_mailbox(n: usize) -> Db {
        let raws: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let word = if i % 10 == 3 { "needle" } else { "straw" };
                format!("Subject: m{i}\r\n\r\nsome {word} here\r\n").into_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = raws.iter().map(|r| &r[..]).collect();
        mailbox_with(&refs, &vec![true; n])
    }

    #[test]
    fn selective_text_keys_visit_only_the_candidates() {
        let conn = big_mailbox(100);
        let mailbox = MailboxId(1);
        let needle = Criterion::Body("needle".into());
        let cx_hits = |c: &Criterion| Hits::collect(&conn, Some(&conn.shard), mailbox, c, 100);
        let want: Vec<Uid> = (0..100).filter(|i| i % 10 == 3).map(|i| Uid::new(i + 1).unwrap()).collect();
        assert_eq!(candidates(&conn, mailbox, &cx_hits(&needle), &needle, 100).unwrap(), Some(want.clone()));
        // A conjunction is driven by its text key; an OR needs both sides narrowed.
        let and = Criterion::And(vec![Criterion::FlagUnset(SystemFlags::SEEN), needle.clone()]);
        assert_eq!(candidates(&conn, mailbox, &cx_hits(&and), &and, 100).unwrap(), Some(want.clone()));
        let or = Criterion::Or(Box::new(needle.clone()), Box::new(Criterion::Larger(1)));
        assert_eq!(candidates(&conn, mailbox, &cx_hits(&or), &or, 100).unwrap(), None);
        let not = Criterion::Not(Box::new(needle.clone()));
        assert_eq!(candidates(&conn, mailbox, &cx_hits(&not), &not, 100).unwrap(), None);
        // A key most messages match walks instead.
        let common = Criterion::Body("some".into());
        assert_eq!(candidates(&conn, mailbox, &cx_hits(&common), &common, 100).unwrap(), None);
        // Messages the index does not hold completely are always candidates.
        conn.execute_batch("INSERT INTO unindexed_bodies (body_id) VALUES (50)").unwrap();
        let with_unindexed = candidates(&conn, mailbox, &cx_hits(&needle), &needle, 100).unwrap().unwrap();
        assert!(with_unindexed.contains(&Uid::new(50).unwrap()) && with_unindexed.len() == want.len() + 1);
        for c in [needle, and, or, not, common] {
            uids(&conn, &c);
        }
    }

    #[test]
    fn small_mailboxes_probe_the_index_and_agree_with_reading_its_hits() {
        let conn = big_mailbox(60);
        // Another mailbox sharing some bodies: its hits must not leak into mailbox 1.
        conn.execute_batch(
            "INSERT INTO messages SELECT 2, uid, body_id, flags, keywords, internal_date, date_offset, size, modseq
             FROM messages WHERE mailbox_id = 1 AND uid > 30",
        )
        .unwrap();
        for query in
            ["{body} : \"needle\"", "{body} : \"straw\"", "{headers body} : \"m1\"", "{body} : \"nothing\""]
        {
            for mailbox in [MailboxId(1), MailboxId(2)] {
                let mut probed = hits_by_probing(&conn, &conn.shard, mailbox, query).unwrap();
                probed.sort_unstable();
                let mut read =
                    hits_of_account(&conn, &conn.shard, mailbox, query, u64::MAX).unwrap().unwrap();
                read.sort_unstable();
                assert_eq!(probed, read, "{query} in {mailbox:?}");
                assert_eq!(index_uids(&conn, &conn.shard, mailbox, query, 0).unwrap(), probed);
            }
        }
        // Over the budget, reading the hits gives up (and index_uids probes instead).
        assert_eq!(
            hits_of_account(&conn, &conn.shard, MailboxId(2), "{body} : \"straw\"", 10).unwrap(),
            None
        );
        assert_eq!(index_uids(&conn, &conn.shard, MailboxId(2), "{body} : \"needle\"", 0).unwrap().len(), 3);
    }

    #[test]
    fn appended_bodies_leave_the_unindexed_list_only_when_complete() {
        let conn = mailbox_with(&MESSAGES, &[true, false, true, false]);
        let listed: Vec<i64> = conn
            .prepare("SELECT body_id FROM unindexed_bodies ORDER BY body_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(listed, vec![2, 4]);
        // Unindexed message 2 is found although the index has no entry for it.
        assert_eq!(uids(&conn, &Criterion::Header("subject".into(), "grüße".into())), vec![2]);
        // Deleting the body (last reference) forgets it.
        conn.execute_batch("DELETE FROM messages WHERE uid = 2").unwrap();
        let left: i64 = conn.query_row("SELECT count(*) FROM unindexed_bodies", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 1);
    }

    #[test]
    fn flag_tests_use_the_partial_indexes() {
        let conn = big_mailbox(3);
        for (c, index) in [
            (Criterion::FlagUnset(SystemFlags::SEEN), "messages_unseen"),
            (Criterion::FlagSet(SystemFlags::DELETED), "messages_deleted"),
        ] {
            let mut p = Vec::new();
            let filter = necessary(&c, 0, &mut p).unwrap();
            let columns = CANDIDATE_COLUMNS.replace("messages m", &format!("messages m INDEXED BY {index}"));
            let sql =
                format!("EXPLAIN QUERY PLAN {columns} WHERE m.mailbox_id = 1 AND ({filter}) ORDER BY m.uid");
            let plan: Vec<String> = conn
                .prepare(&sql)
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(plan.iter().any(|p| p.contains(index)), "{c:?}: {plan:?}");
        }
    }

    #[test]
    fn days_follow_the_zone() {
        // 2024-01-01T23:30:00-05:00 is 2024-01-02T04:30Z; its own calendar day is Jan 1.
        let unix = 1_704_169_800;
        assert_eq!(day_of(unix, -5 * 3600), 19_723);
        assert_eq!(day_of(unix, 0), 19_724);
        assert_eq!(day_of(-1, 0), -1);
    }

    #[test]
    fn prefilter_is_exact_where_it_can_be() {
        let mut p = Vec::new();
        let c = Criterion::And(vec![
            Criterion::FlagSet(SystemFlags::SEEN),
            Criterion::Body("x".into()),
            Criterion::Uids(UidSet::from_ranges((0..100).map(|i| i * 10..=i * 10 + 1))),
            Criterion::Not(Box::new(Criterion::Body("y".into()))),
        ]);
        let sql = necessary(&c, 0, &mut p).unwrap();
        assert_eq!(sql, "((flags & 1) = 1) AND (uid BETWEEN ? AND ?)");
        assert_eq!(p.len(), 2);

        let mut p = Vec::new();
        let or = Criterion::Or(Box::new(Criterion::Body("x".into())), Box::new(Criterion::Larger(5)));
        assert_eq!(necessary(&or, 0, &mut p), None);
        assert!(p.is_empty());

        let mut p = Vec::new();
        let not = Criterion::Not(Box::new(Criterion::ModSeqAtLeast(ModSeq(u64::MAX))));
        assert_eq!(necessary(&not, 0, &mut p).unwrap(), "NOT (modseq >= ?)");
        assert_eq!(p, vec![Value::Integer(i64::MAX)]);
    }

    #[test]
    fn depth_is_measured_without_recursion() {
        let mut c = Criterion::All;
        for _ in 0..10_000 {
            c = Criterion::Not(Box::new(c));
        }
        assert!(depth(&c) > MAX_DEPTH);
        // Dropping a deep Box chain recurses in Drop; keep the test's own stack safe.
        while let Criterion::Not(inner) = c {
            c = *inner;
        }
    }
}
