//! SEARCH (RFC 9051 §6.4.4) over one mailbox.
//!
//! Two stages. SQL first: the cheap parts of the criterion (UID ranges, system flags, size,
//! modseq, OLDER/YOUNGER) become a WHERE clause that every match must satisfy, so most
//! non-matches never leave SQLite. Then Rust evaluates the whole criterion on each remaining
//! row, streaming: the summary (SENT*) and the raw message (HEADER, BODY, TEXT) are loaded only
//! for the message at hand and only when a cheaper test did not already decide. `And` and `Or`
//! evaluate their cheaper members first.
//!
//! Limits: substring matching folds case with Unicode lowercase mapping (close to, but not
//! exactly, i;unicode-casemap) on decoded text; there is no full-text index yet, so
//! HEADER/BODY/TEXT read every candidate message. Criteria nested deeper than
//! [`MAX_DEPTH`] are refused with [`StoreError::Limit`].

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};

use super::conn::DbResult;
use super::reads::{decode_summary, raw_body};
use super::rows::{MailboxRow, flags_of, sql_modseq, unix_now};
use crate::types::{Criterion, Flags, MailboxId, MessageSummary, Uid};
use crate::{StoreError, StoreResult};

/// Deepest criterion nesting evaluated (recursion depth, SQL expression depth).
pub(crate) const MAX_DEPTH: usize = 64;

/// Most UID ranges written into SQL as an exact test; larger sets are narrowed to their bounds
/// in SQL and tested exactly in Rust.
const MAX_SQL_RANGES: usize = 16;

/// Most bound parameters in the prefilter (SQLite's limit is much higher; a huge prefilter
/// would cost more to plan than it saves).
const MAX_SQL_PARAMS: usize = 500;

/// UIDs of the messages in `mailbox` that match, ascending.
pub(crate) fn search(conn: &Connection, mailbox: MailboxId, criterion: &Criterion) -> StoreResult<Vec<Uid>> {
    if depth(criterion) > MAX_DEPTH {
        return Err(StoreError::Limit(format!("search criteria nested deeper than {MAX_DEPTH}")));
    }
    MailboxRow::load(conn, mailbox)?;
    let now = unix_now();

    let mut params: Vec<Value> = vec![Value::Integer(mailbox.0)];
    let mut filter = necessary(criterion, now, &mut params).unwrap_or_else(|| "1".to_owned());
    if params.len() > MAX_SQL_PARAMS {
        params.truncate(1);
        filter = "1".to_owned();
    }
    let sql = format!(
        "SELECT uid, body_id, flags, keywords, internal_date, date_offset, size, modseq FROM messages
         WHERE mailbox_id = ? AND ({filter}) ORDER BY uid"
    );
    let mut stmt = conn.prepare(&sql).db()?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params)).db()?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().db()? {
        let keywords: String = r.get(3).db()?;
        let mut candidate = Candidate {
            uid: Uid(r.get(0).db()?),
            body_id: r.get(1).db()?,
            flags: flags_of(r.get(2).db()?, &keywords),
            date: r.get(4).db()?,
            offset_minutes: r.get(5).db()?,
            size: r.get(6).db()?,
            modseq: r.get(7).db()?,
            summary: None,
            text: None,
        };
        if matches(criterion, &mut candidate, conn, now)? {
            out.push(candidate.uid);
        }
    }
    Ok(out)
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
        Criterion::FlagSet(f) => {
            p.push(int(i64::from(f.0)));
            p.push(int(i64::from(f.0)));
            "(flags & ?) = ?".to_owned()
        }
        Criterion::FlagUnset(f) => {
            p.push(int(i64::from(f.0)));
            "(flags & ?) = 0".to_owned()
        }
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
    summary: Option<Option<std::sync::Arc<MessageSummary>>>,
    text: Option<Text>,
}

/// How expensive a criterion is to evaluate: metadata < summary < raw message.
fn cost(c: &Criterion) -> u8 {
    match c {
        Criterion::SentBefore(_) | Criterion::SentOn(_) | Criterion::SentSince(_) => 1,
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

fn matches(c: &Criterion, m: &mut Candidate, conn: &Connection, now: i64) -> StoreResult<bool> {
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
        Criterion::Larger(n) => m.size > *n,
        Criterion::Smaller(n) => m.size < *n,
        Criterion::ModSeqAtLeast(min) => m.modseq >= sql_modseq(*min),
        Criterion::Header(name, value) => text_of(m, conn)?.header_contains(name, value),
        Criterion::Body(needle) => text_of(m, conn)?.body_contains(needle),
        Criterion::Text(needle) => {
            let text = text_of(m, conn)?;
            text.any_header_contains(needle) || text.body_contains(needle)
        }
        Criterion::Not(inner) => !matches(inner, m, conn, now)?,
        Criterion::And(all) => {
            let mut order: Vec<&Criterion> = all.iter().collect();
            order.sort_by_key(|x| cost(x));
            for x in order {
                if !matches(x, m, conn, now)? {
                    return Ok(false);
                }
            }
            true
        }
        Criterion::Or(a, b) => {
            let (first, second) = if cost(b) < cost(a) { (b, a) } else { (a, b) };
            matches(first, m, conn, now)? || matches(second, m, conn, now)?
        }
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

fn text_of<'a>(m: &'a mut Candidate, conn: &Connection) -> StoreResult<&'a Text> {
    if m.text.is_none() {
        // A body that vanished under a concurrent expunge cannot match anything.
        let raw = match raw_body(conn, m.body_id) {
            Ok(raw) => raw,
            Err(StoreError::NotFound) => Vec::new(),
            Err(e) => return Err(e),
        };
        m.text = Some(Text::extract(&raw));
    }
    m.text.as_ref().ok_or_else(|| StoreError::Backend("message text missing".to_owned()))
}

/// The searchable text of one message, lowercased: unfolded, RFC 2047-decoded top-level header
/// fields, and the decoded text of its text parts (HTML reduced to text, nested messages
/// included).
#[derive(Debug, Default)]
struct Text {
    /// (lowercase field name, lowercase decoded value).
    headers: Vec<(String, String)>,
    body: Vec<String>,
}

impl Text {
    fn extract(raw: &[u8]) -> Text {
        let parser = mail_parser::MessageParser::new().with_mime_headers().default_header_text();
        // RFC 5322 §2.2: a field name has no whitespace. When nothing parsed as a real field,
        // the input has no header at all and all of it is body.
        let has_header = |m: &mail_parser::Message<'_>| {
            m.parts
                .first()
                .is_some_and(|root| root.headers.iter().any(|h| !h.name().contains(char::is_whitespace)))
        };
        let message = match parser.parse(raw) {
            Some(message) if has_header(&message) => message,
            _ => {
                return Text { headers: Vec::new(), body: vec![String::from_utf8_lossy(raw).to_lowercase()] };
            }
        };
        let mut text = Text::default();
        text.add_message(raw, &message, true);
        text
    }

    /// `raw` is the whole stored message: mail-parser's offsets are absolute in it, nested
    /// messages included.
    fn add_message(&mut self, raw: &[u8], message: &mail_parser::Message<'_>, top: bool) {
        if let Some(root) = message.parts.first() {
            for h in &root.headers {
                let value = header_value(raw, h);
                if top {
                    self.headers.push((h.name().to_ascii_lowercase(), value));
                } else {
                    // A nested message's header is part of the outer message's body.
                    self.body.push(format!("{}: {value}", h.name().to_ascii_lowercase()));
                }
            }
        }
        for part in &message.parts {
            match &part.body {
                mail_parser::PartType::Text(t) => self.body.push(t.to_lowercase()),
                mail_parser::PartType::Html(h) => {
                    self.body.push(mail_parser::decoders::html::html_to_text(h).to_lowercase());
                }
                mail_parser::PartType::Message(inner) => self.add_message(raw, inner, false),
                _ => {}
            }
        }
    }

    /// RFC 9051 §6.4.4 HEADER: the field exists (empty needle) or its value contains the needle.
    fn header_contains(&self, name: &str, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        self.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && v.contains(&needle))
    }

    fn any_header_contains(&self, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        self.headers.iter().any(|(n, v)| n.contains(&needle) || v.contains(&needle))
    }

    fn body_contains(&self, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        self.body.iter().any(|b| b.contains(&needle))
    }
}

/// A header's value as text: decoded by mail-parser where it parsed it as text, otherwise the
/// raw value unfolded (RFC 5322 §2.2.3: unfolding removes the CRLF before folding whitespace).
fn header_value(raw: &[u8], h: &mail_parser::Header<'_>) -> String {
    let value = match &h.value {
        mail_parser::HeaderValue::Text(t) => t.to_string(),
        mail_parser::HeaderValue::TextList(list) => list.join(", "),
        _ => {
            let start = usize::try_from(h.offset_start).unwrap_or(usize::MAX);
            let end = usize::try_from(h.offset_end).unwrap_or(usize::MAX);
            let bytes = raw.get(start..end).unwrap_or_default();
            String::from_utf8_lossy(bytes).replace(['\r', '\n'], "")
        }
    };
    value.trim().to_lowercase()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::types::{ModSeq, SystemFlags, UidSet};

    #[test]
    fn header_values_are_unfolded_and_decoded() {
        let raw = b"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <jm@example.org>\r\n\
Subject: a folded\r\n  subject line\r\n\
X-Note: =?ISO-8859-1?Q?caf=E9?=\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello W\xc3\xb6rld\r\n";
        let t = Text::extract(raw);
        assert!(t.header_contains("from", "jörg müller"), "{:?}", t.headers);
        assert!(t.header_contains("from", "JM@EXAMPLE"));
        assert!(t.header_contains("subject", "folded subject"), "{:?}", t.headers);
        assert!(t.header_contains("x-note", "CAFÉ"), "{:?}", t.headers);
        assert!(t.header_contains("content-type", "text/plain"));
        assert!(t.header_contains("subject", ""));
        assert!(!t.header_contains("cc", ""));
        assert!(t.body_contains("WÖRLD"));
        assert!(!t.body_contains("subject"));
        assert!(t.any_header_contains("müller"));
    }

    #[test]
    fn body_search_decodes_transfer_encodings() {
        let raw = b"Subject: x\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\
aGlkZGVuIHRyZWFzdXJl\r\n\
--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
<p>soft=\r\nbreak</p>\r\n\
--b--\r\n";
        let t = Text::extract(raw);
        assert!(t.body_contains("hidden treasure"), "{:?}", t.body);
        assert!(t.body_contains("softbreak"), "{:?}", t.body);
    }

    #[test]
    fn headerless_input_is_all_body() {
        let t = Text::extract(b"just some words");
        assert!(t.body_contains("some"));
        assert!(t.headers.is_empty());
        let t = Text::extract(b"");
        assert!(!t.body_contains("x"));
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
        assert_eq!(sql, "((flags & ?) = ?) AND (uid BETWEEN ? AND ?)");
        assert_eq!(p.len(), 4);

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
