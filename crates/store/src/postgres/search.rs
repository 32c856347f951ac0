//! SEARCH on PostgreSQL, the simple way: every message of the mailbox is evaluated in Rust, in
//! chunks of [`CHUNK`] messages; summaries (SENT*) and raw bodies (HEADER, BODY, TEXT, EMAILID)
//! are loaded for a chunk only when the criterion needs them. Same semantics as the SQLite
//! backend's evaluation (`postfach_message::text` folding and extraction).
//!
//! Slow by design for now: a text search reads every body of the mailbox. TODO: a `pg_trgm`
//! GIN index over the extracted, folded text (design: scaleout-teams.md §2.4) plus a SQL
//! prefilter for flags, sizes, dates and modseq, as the SQLite backend does with FTS5.

use std::collections::HashMap;

use postfach_message::{MessageText, email_id, fold};

use super::mail::{MsgRow, load, rows_in};
use super::{PgResult, Tx, owner_of};
use crate::StoreError;
use crate::sqlite::rows::unix_now;
use crate::types::{Criterion, MailboxId, MessageSummary, Uid, UidSet};

/// Deepest criterion nesting evaluated.
const MAX_DEPTH: usize = 64;

/// Messages evaluated per round trip (bounds the bodies held in memory at once).
const CHUNK: usize = 256;

/// What a criterion needs besides the message row.
#[derive(Debug, Clone, Copy, Default)]
struct Needs {
    summary: bool,
    raw: bool,
}

/// Nesting depth, measured without recursion.
fn depth(c: &Criterion) -> usize {
    let mut max = 0;
    let mut stack = vec![(c, 1usize)];
    while let Some((c, d)) = stack.pop() {
        max = max.max(d);
        match c {
            Criterion::Not(inner) => stack.push((inner, d + 1)),
            Criterion::Or(a, b) => {
                stack.push((a, d + 1));
                stack.push((b, d + 1));
            }
            Criterion::And(all) => stack.extend(all.iter().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    max
}

fn needs(c: &Criterion, n: &mut Needs) {
    match c {
        Criterion::SentBefore(_) | Criterion::SentOn(_) | Criterion::SentSince(_) => n.summary = true,
        Criterion::EmailId(_) | Criterion::Header(..) | Criterion::Body(_) | Criterion::Text(_) => {
            n.raw = true
        }
        Criterion::Not(inner) => needs(inner, n),
        Criterion::Or(a, b) => {
            needs(a, n);
            needs(b, n);
        }
        Criterion::And(all) => all.iter().for_each(|x| needs(x, n)),
        _ => {}
    }
}

pub(super) async fn search(tx: &Tx<'_>, mailbox: MailboxId, criterion: &Criterion) -> PgResult<Vec<Uid>> {
    if depth(criterion) > MAX_DEPTH {
        return Err(StoreError::Limit(format!("search criteria nested deeper than {MAX_DEPTH}")).into());
    }
    load(tx, mailbox, false).await?;
    let mut need = Needs::default();
    needs(criterion, &mut need);
    let rows = rows_in(tx, mailbox, &UidSet::from_ranges([1..=u32::MAX]), false).await?;
    let now = unix_now();
    let mut out = Vec::new();
    for chunk in rows.chunks(CHUNK) {
        let mut loaded: HashMap<i64, (Option<MessageSummary>, Option<Vec<u8>>)> = HashMap::new();
        if need.summary || need.raw {
            let ids: Vec<i64> = chunk.iter().map(|r| r.body_id).collect();
            let sql = format!(
                "SELECT id, {}, {} FROM bodies WHERE owner_id = $1 AND id = ANY($2)",
                if need.summary { "summary" } else { "NULL::bytea" },
                if need.raw { "raw" } else { "NULL::bytea" },
            );
            for r in &tx.query(&sql, &[&owner_of(mailbox.0), &ids]).await? {
                let summary: Option<Vec<u8>> = r.get(1);
                let raw: Option<Vec<u8>> = r.get(2);
                let summary = summary.map(|b| match crate::sqlite::summary::decode(&b) {
                    Ok(s) => s,
                    Err(_) => postfach_message::parse(raw.as_deref().unwrap_or_default()),
                });
                loaded.insert(r.get(0), (summary, raw));
            }
        }
        for m in chunk {
            let (summary, raw) =
                loaded.get(&m.body_id).map(|(s, r)| (s.as_ref(), r.as_deref())).unwrap_or_default();
            let mut cx = Message { row: m, summary, raw, text: None };
            if matches(criterion, &mut cx, now) {
                out.push(m.uid);
            }
        }
    }
    Ok(out)
}

/// One message under test, with what is loaded for it.
struct Message<'a> {
    row: &'a MsgRow,
    summary: Option<&'a MessageSummary>,
    raw: Option<&'a [u8]>,
    text: Option<MessageText>,
}

impl Message<'_> {
    fn text(&mut self) -> &MessageText {
        let raw = self.raw.unwrap_or_default();
        self.text.get_or_insert_with(|| MessageText::extract(raw).0)
    }
}

/// The calendar day of an instant seen in a zone `offset_secs` east of UTC.
fn day_of(unix: i64, offset_secs: i64) -> i64 {
    unix.saturating_add(offset_secs).div_euclid(86_400)
}

fn older_limit(now: i64, secs: u64) -> i64 {
    now.saturating_sub(i64::try_from(secs).unwrap_or(i64::MAX))
}

fn matches(c: &Criterion, m: &mut Message<'_>, now: i64) -> bool {
    let row = m.row;
    let internal_day = day_of(row.date, row.offset.saturating_mul(60));
    let sent_day = |m: &Message<'_>| match m.summary.and_then(|s| s.sent_date) {
        Some(d) => day_of(d.unix, i64::from(d.offset)),
        None => internal_day,
    };
    match c {
        Criterion::All => true,
        Criterion::Uids(set) => set.contains(row.uid),
        Criterion::FlagSet(f) => row.flags.system.contains(*f),
        Criterion::FlagUnset(f) => row.flags.system.0 & f.0 == 0,
        Criterion::Keyword(k) => row.flags.has_keyword(k),
        Criterion::NoKeyword(k) => !row.flags.has_keyword(k),
        Criterion::Before(day) => internal_day < *day,
        Criterion::On(day) => internal_day == *day,
        Criterion::Since(day) => internal_day >= *day,
        Criterion::SentBefore(day) => sent_day(m) < *day,
        Criterion::SentOn(day) => sent_day(m) == *day,
        Criterion::SentSince(day) => sent_day(m) >= *day,
        Criterion::Older(secs) => row.date <= older_limit(now, *secs),
        Criterion::Younger(secs) => row.date >= older_limit(now, *secs),
        Criterion::SavedBefore(day) => day_of(row.saved_at, 0) < *day,
        Criterion::SavedOn(day) => day_of(row.saved_at, 0) == *day,
        Criterion::SavedSince(day) => day_of(row.saved_at, 0) >= *day,
        Criterion::EmailId(id) => email_id(m.raw.unwrap_or_default()) == *id,
        Criterion::Larger(n) => row.size > *n,
        Criterion::Smaller(n) => row.size < *n,
        Criterion::ModSeqAtLeast(min) => row.modseq >= *min,
        Criterion::Header(name, value) => m.text().header_contains(name, &fold(value)),
        Criterion::Body(needle) => m.text().body_contains(&fold(needle)),
        Criterion::Text(needle) => m.text().text_contains(&fold(needle)),
        Criterion::Not(inner) => !matches(inner, m, now),
        Criterion::And(all) => all.iter().all(|x| matches(x, m, now)),
        Criterion::Or(a, b) => matches(a, m, now) || matches(b, m, now),
    }
}
