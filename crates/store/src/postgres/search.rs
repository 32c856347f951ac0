//! SEARCH on PostgreSQL, the simple way: every message of the mailbox is evaluated in Rust, in
//! chunks of [`CHUNK`] messages; summaries (SENT*) and raw bodies (HEADER, BODY, TEXT, EMAILID)
//! are loaded for a chunk only when the criterion needs them. Same semantics as the SQLite
//! backend's evaluation (`postfach_message::text` folding and extraction).
//!
//! A text search (HEADER, BODY, TEXT under AND) is first narrowed in SQL: every body keeps its
//! extracted, folded text in `body_text`, with a `pg_trgm` GIN index, and only messages whose
//! text contains every needle (or that have no text row) are read and evaluated. The text is a
//! superset of what each key looks into, so the prefilter never drops a match; the evaluation
//! in Rust stays the one that decides. A UID set at the top of the criterion reads only its rows.
//! TODO: a SQL prefilter for flags, sizes, dates, modseq.

use std::collections::HashMap;

use postfach_message::{MessageText, email_id, fold};

use super::mail::{MSG_COLUMNS, MsgRow, load, msg_row, rows_in};
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

/// The UID set every match lies in, when the criterion says so at its top (`Uids`, or one in an
/// `And`); `None` when any message may match.
fn top_uids(c: &Criterion) -> Option<&UidSet> {
    match c {
        Criterion::Uids(set) => Some(set),
        Criterion::And(all) => {
            all.iter().find_map(|x| if let Criterion::Uids(set) = x { Some(set) } else { None })
        }
        _ => None,
    }
}

pub(super) async fn search(tx: &Tx<'_>, mailbox: MailboxId, criterion: &Criterion) -> PgResult<Vec<Uid>> {
    if depth(criterion) > MAX_DEPTH {
        return Err(StoreError::Limit(format!("search criteria nested deeper than {MAX_DEPTH}")).into());
    }
    load(tx, mailbox, false).await?;
    let mut need = Needs::default();
    needs(criterion, &mut need);
    let mut needles = Vec::new();
    required_needles(criterion, &mut needles);
    let rows = if needles.is_empty() {
        // A criterion that names its UIDs at the top (a context update asks about the changed
        // messages only, RFC 5267) reads only those rows.
        let scope = top_uids(criterion).cloned().unwrap_or_else(|| UidSet::from_ranges([1..=u32::MAX]));
        rows_in(tx, mailbox, &scope, false).await?
    } else {
        candidates(tx, mailbox, &needles).await?
    };
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

/// The messages whose prefilter text contains every needle, and those without a text to look
/// into (bodies stored before the text was kept, or too long): the only ones a text search can
/// match. The trigram index (`body_text_trgm`) answers the LIKEs.
async fn candidates(tx: &Tx<'_>, mailbox: MailboxId, needles: &[String]) -> PgResult<Vec<MsgRow>> {
    let patterns: Vec<String> = needles.iter().map(|n| like_pattern(n)).collect();
    let sql = format!(
        "SELECT {MSG_COLUMNS} FROM messages m
         LEFT JOIN body_text t ON t.owner_id = m.owner_id AND t.body_id = m.body_id
         WHERE m.owner_id = $1 AND m.mailbox_id = $2
           AND (t.text IS NULL OR t.text LIKE ALL ($3::text[]))
         ORDER BY m.uid"
    );
    tx.query(&sql, &[&owner_of(mailbox.0), &mailbox.0, &patterns]).await?.iter().map(msg_row).collect()
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

// --- the text prefilter -------------------------------------------------------------------------

/// Most bytes of extracted text kept per body for the prefilter; a body with more has no text
/// row value (NULL) and is always a candidate, evaluated from its bytes.
pub(crate) const MAX_PREFILTER_TEXT: usize = 1 << 20;

/// The text a body's messages are prefiltered on: the folded header lines and the folded body
/// text, exactly what HEADER, BODY and TEXT look into (`MessageText`), so any message they
/// match contains their folded needle here. `None` when it is too long to keep.
pub(crate) fn prefilter_text(raw: &[u8], summary: &MessageSummary) -> Option<String> {
    let (text, _) = MessageText::of(raw, summary);
    let mut out = text.header_lines();
    out.push('\n');
    out.push_str(&text.body);
    // PostgreSQL text cannot hold NUL.
    if out.contains('\0') {
        out = out.replace('\0', " ");
    }
    (out.len() <= MAX_PREFILTER_TEXT).then_some(out)
}

/// Writes the prefilter text of a new body.
pub(crate) async fn record_text(tx: &Tx<'_>, owner: i64, body: i64, text: Option<&str>) -> PgResult<()> {
    tx.execute(
        "INSERT INTO body_text (owner_id, body_id, text) VALUES ($1, $2, $3)
         ON CONFLICT (owner_id, body_id) DO UPDATE SET text = excluded.text",
        &[&owner, &body, &text],
    )
    .await?;
    Ok(())
}

/// The folded needles every match of `c` contains (from its HEADER, BODY and TEXT keys under
/// AND; nothing is required under NOT or OR).
fn required_needles(c: &Criterion, out: &mut Vec<String>) {
    match c {
        Criterion::Header(_, needle) | Criterion::Body(needle) | Criterion::Text(needle) => {
            let folded = fold(needle);
            if !folded.is_empty() && !out.contains(&folded) {
                out.push(folded);
            }
        }
        Criterion::And(all) => all.iter().for_each(|x| required_needles(x, out)),
        _ => {}
    }
}

/// A LIKE pattern matching any text that contains `needle`.
fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for ch in needle.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}
