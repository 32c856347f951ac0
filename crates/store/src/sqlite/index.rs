//! What is derived from a message body once and kept beside it: the full-text index entry
//! (SEARCH TEXT/BODY/HEADER), the PREVIEW text (RFC 8970) and the SORT/THREAD keys (RFC 5256,
//! RFC 5957).
//!
//! # When entries are written
//! - At APPEND, in the same transaction as the message ([`record_appended`]): the text is
//!   extracted beforehand on the blocking pool ([`IndexEntry::extract`]), the writer only inserts.
//!   Indexing runs in its own savepoint: if it fails, the message is stored anyway and simply has
//!   no `body_index` row, which makes every search scan it instead.
//! - For bodies stored before schema version 2 or derived by an older parser, again by the
//!   re-derivation thread ([`super::rederive`], [`rewrite_entry`]), which replaces the whole
//!   entry in one writer job.
//! - COPY and MOVE share the body and so its entry; the `bodies_unindex` trigger removes the
//!   entry with the last reference to the body.
//!
//! # Semantics
//! The text comes from the MIME tree of `postfach_message::parse`, the one FETCH serves, so
//! SEARCH and FETCH agree on malformed MIME too: the top-level header fields; the text/* leaves
//! (no Content-Type counts as text/plain, RFC 2045 §5.2), HTML reduced to text; and the header
//! and text of encapsulated messages (message/rfc822) as body text. Other leaves (images,
//! applications, a transfer-encoded message/rfc822, which the tree keeps opaque) are not text.
//! All text is decoded (RFC 2047 words, transfer encodings, charsets), case-folded with
//! [`postfach_message::casefold`] and stripped of control characters before it is indexed or
//! compared, and the client's needle gets the same treatment, so the index (substring search
//! with the FTS5 trigram tokenizer) and the fallback scan answer alike.
//!
//! # Limits
//! At most [`MAX_BODY_TEXT`] bytes of body text and [`MAX_HEADER_TEXT`] bytes of header text
//! are indexed per message; a cut entry is marked (`text_state = 2`) and searches that miss in
//! the index scan such a message to be sure.

use postfach_message::{
    BodyPart, MessageSummary, PartKind, address_search_text, base_subject, casefold, decode_header_text,
    header_fields, leaf_text, message_id_list,
};
use rusqlite::{Connection, OptionalExtension};

use super::conn::DbResult;
use crate::StoreResult;
use crate::types::{Appended, MailboxId};

/// Most bytes of folded body text indexed per message.
pub(crate) const MAX_BODY_TEXT: usize = 2 * 1024 * 1024;
/// Most bytes of folded header text indexed per message.
pub(crate) const MAX_HEADER_TEXT: usize = 256 * 1024;
/// Preview length in characters (RFC 8970 §3.3: SHOULD be at most 200, MUST be at most 256).
pub(crate) const PREVIEW_CHARS: usize = 200;

/// `text_state`: the facts are written, the text waits for the [`super::indexer`].
pub(crate) const TEXT_PENDING: i64 = 0;
/// `text_state`: the index holds all of the message's text.
pub(crate) const TEXT_COMPLETE: i64 = 1;
/// `text_state`: the index holds a prefix of the message's text.
pub(crate) const TEXT_TRUNCATED: i64 = 2;

/// Folds a string for comparison: [`casefold`], and control characters other than line feed
/// become spaces (they cannot be typed into a search and would upset the index).
pub(crate) fn fold(s: &str) -> String {
    let mut out = casefold(s);
    if out.chars().any(|c| c.is_control() && c != '\n') {
        out = out.chars().map(|c| if c.is_control() && c != '\n' { ' ' } else { c }).collect();
    }
    out
}

/// Cuts `s` to at most `max` bytes at a character boundary; true when something was cut.
fn cut(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

/// The searchable text of one message, folded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct MessageText {
    /// `(lowercase field name, folded decoded value)` of the top-level header, in order.
    pub(crate) fields: Vec<(String, String)>,
    /// Folded text of the text parts (HTML reduced to text) and the header lines of nested
    /// messages, joined by line feeds.
    pub(crate) body: String,
    /// Something was left out because of the size limits.
    pub(crate) truncated: bool,
}

impl MessageText {
    /// Extracts the text; with `limits`, cut to [`MAX_HEADER_TEXT`] / [`MAX_BODY_TEXT`]. Also
    /// returns the preview (RFC 8970). Never fails: input without a header is all body.
    pub(crate) fn extract(raw: &[u8], limits: bool) -> (MessageText, String) {
        MessageText::of(raw, &postfach_message::parse(raw), limits)
    }

    /// As [`MessageText::extract`], from the summary `postfach_message::parse` made of `raw`:
    /// the parts are the ones FETCH serves, so `SEARCH BODY` finds what `BODY[n]` shows.
    pub(crate) fn of(raw: &[u8], summary: &MessageSummary, limits: bool) -> (MessageText, String) {
        let root = &summary.structure;
        let mut text = MessageText {
            fields: header_fields(raw, root)
                .map(|f| {
                    let name = field_name(f.name);
                    let value = field_value(&name, f.value);
                    (name, value)
                })
                .collect(),
            ..MessageText::default()
        };
        let mut walk = TextWalk { raw, body: Vec::new(), plain: None, html: None };
        walk.part(root, false);
        text.body = walk.body.join("\n");
        let preview = walk.plain.or(walk.html).unwrap_or_default();
        if limits {
            let mut header_bytes = 0usize;
            let before = text.fields.len();
            text.fields.retain(|(n, v)| {
                header_bytes = header_bytes.saturating_add(n.len() + v.len() + 3);
                header_bytes <= MAX_HEADER_TEXT
            });
            text.truncated |= text.fields.len() != before;
            text.truncated |= cut(&mut text.body, MAX_BODY_TEXT);
        }
        (text, preview)
    }

    /// Roughly the memory the text holds, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.body.len() + self.fields.iter().map(|(n, v)| n.len() + v.len() + 48).sum::<usize>()
    }

    /// The values of every field called `name`, joined by line feeds.
    pub(crate) fn field(&self, name: &str) -> String {
        let values: Vec<&str> =
            self.fields.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        values.join("\n")
    }

    /// The header as `name: value` lines.
    pub(crate) fn header_lines(&self) -> String {
        let mut out = String::new();
        for (n, v) in &self.fields {
            out.push_str(n);
            out.push_str(": ");
            out.push_str(v);
            out.push('\n');
        }
        out
    }

    /// RFC 9051 §6.4.4 HEADER: a field called `name` exists (empty needle) or its value contains
    /// the folded needle.
    pub(crate) fn header_contains(&self, name: &str, needle: &str) -> bool {
        self.fields.iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && v.contains(needle))
    }

    /// RFC 9051 §6.4.4 BODY.
    pub(crate) fn body_contains(&self, needle: &str) -> bool {
        self.body.contains(needle)
    }

    /// RFC 9051 §6.4.4 TEXT: the header lines or the body contain the folded needle.
    pub(crate) fn text_contains(&self, needle: &str) -> bool {
        self.header_lines().contains(needle) || self.body.contains(needle)
    }
}

/// Collects the body text of a message from its MIME tree (the one FETCH serves).
struct TextWalk<'r> {
    raw: &'r [u8],
    /// Folded text of each text part and nested header, in order.
    body: Vec<String>,
    /// Preview of the first plain text part of the top-level message.
    plain: Option<String>,
    /// Preview of its first HTML part, used when there is no plain one.
    html: Option<String>,
}

impl TextWalk<'_> {
    /// Adds the text of `part` and its descendants; `nested` is true inside an encapsulated
    /// message. The tree is at most `postfach_message::structure::MAX_DEPTH` levels deep.
    fn part(&mut self, part: &BodyPart, nested: bool) {
        match &part.kind {
            PartKind::Multipart(children) => {
                for child in children {
                    self.part(child, nested);
                }
            }
            PartKind::Message(inner) => {
                // RFC 9051 §6.4.4 BODY: an encapsulated message's header is part of the outer
                // message's body.
                for f in header_fields(self.raw, &inner.structure) {
                    self.body.push(format!("{}: {}", field_name(f.name), header_value(f.value)));
                }
                self.part(&inner.structure, true);
            }
            // RFC 2045 §5.2: a part without Content-Type is text/plain (the tree says so).
            PartKind::Leaf if part.content_type == b"TEXT" => {
                let Some(decoded) = leaf_text(self.raw, part) else { return };
                let html = part.subtype == b"HTML";
                let text = if html { mail_parser::decoders::html::html_to_text(&decoded) } else { decoded };
                // RFC 8970 §3.2: the preview comes from the message's own text, not from an
                // attachment or a forwarded message.
                let attachment = part.disposition.as_ref().is_some_and(|d| d.kind == b"ATTACHMENT");
                if !nested && !attachment {
                    let slot = if html { &mut self.html } else { &mut self.plain };
                    if slot.is_none() {
                        *slot = Some(normalise_preview(&text));
                    }
                }
                self.body.push(fold(&text));
            }
            // Images, applications, message/partial...: no text to search.
            PartKind::Leaf => {}
        }
    }
}

/// A field name as the index keeps it: ASCII lowercase.
fn field_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name).to_ascii_lowercase()
}

/// The searchable value of a top-level header field. From, To, Cc and Bcc (what SEARCH FROM, TO,
/// CC and BCC look at, RFC 9051 §6.4.4) hold their addresses as RFC 5322 parses them, in the
/// normal form of [`address_search_text`] (`Name <local@domain>`, groups as `name: members;`):
/// `user@domain` is then found in `<user (comment)@ (comment) domain>`, as in Dovecot. Every
/// other field is [`header_value`].
fn field_value(name: &str, value: &[u8]) -> String {
    match name {
        "from" | "to" | "cc" | "bcc" => fold(&address_search_text(value)).replace('\n', " "),
        _ => header_value(value),
    }
}

/// A header's raw value as folded text: unfolded (RFC 5322 §2.2.3), RFC 2047 words decoded,
/// line feeds made spaces.
fn header_value(value: &[u8]) -> String {
    fold(decode_header_text(value).trim()).replace('\n', " ")
}

fn normalise_preview(text: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        if space {
            if chars + 1 >= PREVIEW_CHARS {
                break;
            }
            out.push(' ');
            chars += 1;
            space = false;
        }
        out.push(c);
        chars += 1;
        if chars >= PREVIEW_CHARS {
            break;
        }
    }
    out
}

/// What SORT and THREAD need from one message (RFC 5256, RFC 5957), strings folded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BodyFacts {
    /// Sent date, Unix seconds (UTC), when the `Date:` header parses (RFC 5256 §2.2).
    pub(crate) sent_date: Option<i64>,
    /// Folded base subject (RFC 5256 §2.1).
    pub(crate) base_subject: String,
    /// Extracting the base subject removed a reply or forward marker.
    pub(crate) is_reply: bool,
    /// addr-mailbox of the first From / To / Cc address (RFC 5256 FROM, TO, CC).
    pub(crate) sort_from: String,
    /// See `sort_from`.
    pub(crate) sort_to: String,
    /// See `sort_from`.
    pub(crate) sort_cc: String,
    /// RFC 5957 DISPLAY value of the first From / To address.
    pub(crate) display_from: String,
    /// See `display_from`.
    pub(crate) display_to: String,
    /// Normalised Message-ID.
    pub(crate) message_id: Option<String>,
    /// Normalised references: References, else the first id of In-Reply-To (RFC 5256 §3).
    pub(crate) refs: Vec<String>,
}

impl BodyFacts {
    /// Computes the facts from a parsed summary.
    pub(crate) fn of(summary: &MessageSummary) -> BodyFacts {
        let env = &summary.envelope;
        let base = base_subject(summary.subject.as_deref().unwrap_or_default());
        let mailbox = |list: &[postfach_message::Address]| {
            list.first()
                .and_then(|a| a.mailbox.as_deref())
                .map(|m| fold(&String::from_utf8_lossy(m)))
                .unwrap_or_default()
        };
        let mut refs: Vec<String> =
            summary.references.iter().filter_map(|r| postfach_message::normalize_message_id(r)).collect();
        if refs.is_empty() {
            refs = env.in_reply_to.as_deref().map(message_id_list).unwrap_or_default();
            refs.truncate(1);
        }
        BodyFacts {
            sent_date: summary.sent_date.map(|d| d.unix),
            base_subject: fold(&base.text),
            is_reply: base.is_reply_or_forward,
            sort_from: mailbox(&env.from),
            sort_to: mailbox(&env.to),
            sort_cc: mailbox(&env.cc),
            display_from: display(&env.from),
            display_to: display(&env.to),
            message_id: env.message_id.as_deref().and_then(postfach_message::normalize_message_id),
            refs,
        }
    }
}

/// RFC 5957 §3: the DISPLAY sort value of the first address of a list.
fn display(list: &[postfach_message::Address]) -> String {
    let Some(a) = list.first() else { return String::new() };
    if let Some(name) = a.name.as_deref() {
        let decoded = decode_header_text(name);
        if !decoded.trim().is_empty() {
            return fold(decoded.trim());
        }
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match (a.mailbox.as_deref(), a.host.as_deref()) {
        (Some(m), Some(h)) if !h.is_empty() => fold(&format!("{}@{}", text(m), text(h))),
        (Some(m), _) => fold(&text(m)),
        _ => String::new(),
    }
}

/// Everything stored for one body.
#[derive(Debug, Clone)]
pub(crate) struct IndexEntry {
    pub(crate) text: MessageText,
    pub(crate) preview: String,
    pub(crate) facts: BodyFacts,
    pub(crate) email_id: String,
}

impl IndexEntry {
    /// Extracts the entry of a raw message. CPU-bound: call it off the writer thread.
    pub(crate) fn extract(raw: &[u8]) -> IndexEntry {
        IndexEntry::of(raw, &postfach_message::parse(raw))
    }

    /// As [`IndexEntry::extract`], from the summary `postfach_message::parse` made of `raw`.
    pub(crate) fn of(raw: &[u8], summary: &MessageSummary) -> IndexEntry {
        let (text, preview) = MessageText::of(raw, summary, true);
        IndexEntry { text, preview, facts: BodyFacts::of(summary), email_id: email_id(raw) }
    }
}

/// RFC 8474 EMAILID of a message: `E` and a 128-bit FNV-1a hash of its bytes (two 64-bit
/// lanes with different bases) in hex. Derived from the content, so it survives COPY, MOVE and
/// a re-import, and never names a different message (up to a hash collision); `bodies.id` could
/// not serve, as SQLite may hand out a deleted body's id again.
pub(crate) fn email_id(raw: &[u8]) -> String {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let (mut a, mut b) = (0xcbf2_9ce4_8422_2325_u64, 0x6c62_272e_07bb_0142_u64);
    for &byte in raw {
        a = (a ^ u64::from(byte)).wrapping_mul(PRIME);
        b = (b ^ u64::from(byte.rotate_left(3))).wrapping_mul(PRIME);
    }
    b ^= raw.len() as u64;
    format!("E{a:016x}{b:016x}")
}

/// Replaces the whole entry of `body_id` (facts, full-text row, `unindexed_bodies` row) with
/// `entry`, or writes it when there is none. The caller knows the body exists. SQL only.
pub(crate) fn rewrite_entry(conn: &Connection, body_id: i64, entry: &IndexEntry) -> StoreResult<()> {
    let state: Option<i64> = conn
        .prepare_cached("SELECT text_state FROM body_index WHERE body_id = ?1")
        .db()?
        .query_row([body_id], |r| r.get(0))
        .optional()
        .db()?;
    let done = if entry.text.truncated { TEXT_TRUNCATED } else { TEXT_COMPLETE };
    put_facts(conn, UPSERT_FACTS, body_id, done, entry)?;
    // Only a written text has a row to delete (a pending one has none yet).
    if matches!(state, Some(TEXT_COMPLETE | TEXT_TRUNCATED)) {
        conn.prepare_cached("DELETE FROM body_text WHERE rowid = ?1").db()?.execute([body_id]).db()?;
    }
    insert_text(conn, body_id, &entry.text)?;
    let unindexed = if entry.text.truncated {
        "INSERT OR IGNORE INTO unindexed_bodies (body_id) VALUES (?1)"
    } else {
        "DELETE FROM unindexed_bodies WHERE body_id = ?1"
    };
    conn.prepare_cached(unindexed).db()?.execute([body_id]).db()?;
    Ok(())
}

/// Writes the facts of `body_id` (PREVIEW, SORT/THREAD keys, EMAILID) with its text pending,
/// unless it has an entry already; true when it wrote. SQL only.
pub(crate) fn write_facts(conn: &Connection, body_id: i64, entry: &IndexEntry) -> StoreResult<bool> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM body_index WHERE body_id = ?1")
        .db()?
        .query_row([body_id], |_| Ok(()))
        .optional()
        .db()?
        .is_some();
    if exists {
        return Ok(false);
    }
    put_facts(conn, INSERT_FACTS, body_id, TEXT_PENDING, entry)?;
    Ok(true)
}

/// The text of one stored body, on its way to the full-text index.
pub(crate) struct PendingText {
    pub(crate) body_id: i64,
    /// The EMAILID (content hash) of the body the text was taken from. SQLite may give a deleted
    /// body's id to the next body: the text is written only if the body under that id is still
    /// the same content, or a message expunged before it was indexed would lend its text to the
    /// next message stored (whose own text would then never be indexed).
    pub(crate) email_id: String,
    pub(crate) text: MessageText,
}

const INSERT_FACTS: &str = "INSERT INTO body_index
    (body_id, text_state, preview, sent_date, base_subject, is_reply, sort_from, sort_to, sort_cc, display_from,
     display_to, message_id, refs, email_id)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

const UPSERT_FACTS: &str = "INSERT INTO body_index
    (body_id, text_state, preview, sent_date, base_subject, is_reply, sort_from, sort_to, sort_cc, display_from,
     display_to, message_id, refs, email_id)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
    ON CONFLICT (body_id) DO UPDATE SET
        text_state = excluded.text_state, preview = excluded.preview, sent_date = excluded.sent_date,
        base_subject = excluded.base_subject, is_reply = excluded.is_reply, sort_from = excluded.sort_from,
        sort_to = excluded.sort_to, sort_cc = excluded.sort_cc, display_from = excluded.display_from,
        display_to = excluded.display_to, message_id = excluded.message_id, refs = excluded.refs,
        email_id = excluded.email_id";

/// Runs `sql` ([`INSERT_FACTS`] or [`UPSERT_FACTS`]) with the facts of `entry`.
fn put_facts(conn: &Connection, sql: &str, body_id: i64, state: i64, entry: &IndexEntry) -> StoreResult<()> {
    let f = &entry.facts;
    conn.prepare_cached(sql)
        .db()?
        .execute(rusqlite::params![
            body_id,
            state,
            entry.preview,
            f.sent_date,
            f.base_subject,
            f.is_reply,
            f.sort_from,
            f.sort_to,
            f.sort_cc,
            f.display_from,
            f.display_to,
            f.message_id,
            f.refs.join(" "),
            entry.email_id,
        ])
        .db()?;
    Ok(())
}

/// Writes the full-text entry of a body when its text is pending (not when the body is gone,
/// already indexed, or another body took its id), and takes a complete entry's body off
/// `unindexed_bodies`. SQL only.
pub(crate) fn write_text(
    conn: &Connection,
    body_id: i64,
    email_id: &str,
    t: &MessageText,
) -> StoreResult<()> {
    let state: Option<(i64, String)> = conn
        .prepare_cached("SELECT text_state, email_id FROM body_index WHERE body_id = ?1")
        .db()?
        .query_row([body_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?;
    if state.as_ref().is_none_or(|(s, id)| *s != TEXT_PENDING || id != email_id) {
        return Ok(());
    }
    insert_text(conn, body_id, t)?;
    let done = if t.truncated { TEXT_TRUNCATED } else { TEXT_COMPLETE };
    conn.prepare_cached("UPDATE body_index SET text_state = ?2 WHERE body_id = ?1")
        .db()?
        .execute([body_id, done])
        .db()?;
    if !t.truncated {
        conn.prepare_cached("DELETE FROM unindexed_bodies WHERE body_id = ?1")
            .db()?
            .execute([body_id])
            .db()?;
    }
    Ok(())
}

/// Inserts the `body_text` row of `body_id` (there must be none).
fn insert_text(conn: &Connection, body_id: i64, t: &MessageText) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO body_text (rowid, h_subject, h_from, h_to, h_cc, h_bcc, headers, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .db()?
    .execute(rusqlite::params![
        body_id,
        t.field("subject"),
        t.field("from"),
        t.field("to"),
        t.field("cc"),
        t.field("bcc"),
        t.header_lines(),
        t.body,
    ])
    .db()?;
    Ok(())
}

/// Writes the facts of freshly appended messages inside the append's transaction and returns
/// their texts with the body ids, for the [`super::indexer`] (after the commit). Never fails the
/// append: on an error the facts are rolled back, the messages stay unindexed (scanned) and no
/// text is returned.
pub(crate) fn record_appended(
    conn: &Connection,
    mailbox: MailboxId,
    appended: &[Appended],
    entries: Vec<IndexEntry>,
) -> Vec<PendingText> {
    if conn.execute_batch("SAVEPOINT body_index").is_err() {
        return Vec::new();
    }
    let result = (|| -> StoreResult<Vec<PendingText>> {
        let mut body_of =
            conn.prepare_cached("SELECT body_id FROM messages WHERE mailbox_id = ?1 AND uid = ?2").db()?;
        let mut texts = Vec::with_capacity(entries.len());
        for (a, entry) in appended.iter().zip(entries) {
            let body_id: i64 = body_of.query_row(rusqlite::params![mailbox.0, a.uid.0], |r| r.get(0)).db()?;
            if write_facts(conn, body_id, &entry)? {
                texts.push(PendingText { body_id, email_id: entry.email_id, text: entry.text });
            }
        }
        Ok(texts)
    })();
    let (end, texts) = match result {
        Ok(texts) => ("RELEASE body_index", texts),
        Err(e) => {
            tracing::warn!(error = %e, "indexing appended messages failed; they will be scanned");
            ("ROLLBACK TO body_index; RELEASE body_index", Vec::new())
        }
    };
    if let Err(e) = conn.execute_batch(end) {
        tracing::error!(error = %e, "cannot close the index savepoint");
    }
    texts
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_unfolded_decoded_and_folded() {
        let raw = b"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <jm@example.org>\r\n\
Subject: a folded\r\n  subject line\r\n\
X-Note: =?ISO-8859-1?Q?caf=E9?=\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello W\xc3\xb6rld\r\n";
        let (t, preview) = MessageText::extract(raw, true);
        assert!(t.header_contains("from", "jörg müller"), "{:?}", t.fields);
        assert!(t.header_contains("from", "jm@example"));
        assert!(t.header_contains("subject", "folded subject"), "{:?}", t.fields);
        assert!(t.header_contains("x-note", "café"), "{:?}", t.fields);
        assert!(t.header_contains("subject", ""));
        assert!(!t.header_contains("cc", ""));
        assert!(t.body_contains("wörld"));
        assert!(!t.body_contains("subject"));
        assert!(t.text_contains("müller"));
        assert!(t.text_contains("x-note: café"));
        assert_eq!(preview, "Hello Wörld");
        assert!(!t.truncated);
    }

    #[test]
    fn body_text_decodes_transfer_encodings_and_html() {
        let raw = b"Subject: x\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\
aGlkZGVuIHRyZWFzdXJl\r\n\
--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
<p>soft=\r\nbreak</p>\r\n\
--b--\r\n";
        let (t, preview) = MessageText::extract(raw, true);
        assert!(t.body_contains("hidden treasure"), "{:?}", t.body);
        assert!(t.body_contains("softbreak"), "{:?}", t.body);
        assert_eq!(preview, "hidden treasure");
    }

    /// `BODY[part]` as FETCH serves it (`postfach_message::section`), as text.
    fn fetched(raw: &[u8], part: &[u32]) -> String {
        let summary = postfach_message::parse(raw);
        let body = postfach_message::section(raw, &summary, part, postfach_message::SectionText::Full);
        String::from_utf8_lossy(&body.unwrap()).into_owned()
    }

    #[test]
    fn search_sees_the_parts_fetch_serves_with_a_strict_delimiter_rule() {
        // RFC 2046 §5.1.1: `--sepX` is not a delimiter line (the boundary is followed by
        // something other than transport padding), so it stays inside part 1.
        let raw = b"Subject: d\r\nContent-Type: multipart/mixed; boundary=sep\r\n\r\n\
--sep\r\nContent-Type: text/plain\r\n\r\nread --sep first, then the answer\r\n\
--sepX still part one\r\n\
--sep\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--sep--\r\n";
        let part1 = fetched(raw, &[1]);
        assert!(part1.contains("the answer") && part1.contains("still part one"), "{part1:?}");
        assert_eq!(fetched(raw, &[2]), "second");
        let (t, preview) = MessageText::extract(raw, false);
        assert!(t.body_contains("the answer"), "{:?}", t.body);
        assert!(t.body_contains("still part one"), "{:?}", t.body);
        assert!(t.body_contains("second"));
        assert!(!t.body_contains("content-type"), "{:?}", t.body);
        assert!(preview.starts_with("read --sep first"), "{preview:?}");
    }

    #[test]
    fn part_headers_are_not_body_text_when_an_inner_multipart_is_left_open() {
        // The inner multipart is never closed; the outer delimiter ends it (RFC 2046 §5.1.2:
        // outer boundaries are recognised at any level of nesting). Part 2's MIME header is a
        // header, not body text.
        let raw = b"Content-Type: multipart/mixed; boundary=out\r\n\r\n\
--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n\
--in\r\nContent-Type: text/plain\r\n\r\nfirst leaf\r\n\
--out\r\nContent-Type: text/plain; charset=utf-8\r\nX-Marker: zebra\r\n\r\nsecond leaf\r\n\
--out--\r\n";
        assert_eq!(fetched(raw, &[1, 1]), "first leaf");
        assert_eq!(fetched(raw, &[2]), "second leaf");
        let (t, _) = MessageText::extract(raw, false);
        assert!(t.body_contains("first leaf"), "{:?}", t.body);
        assert!(t.body_contains("second leaf"), "{:?}", t.body);
        assert!(!t.body_contains("zebra"), "{:?}", t.body);
        assert!(!t.body_contains("plain"), "{:?}", t.body);
        assert!(!t.text_contains("zebra"));
    }

    #[test]
    fn nested_messages_and_attachments() {
        let raw = b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nattached notes\r\n\
--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>outer &amp; text</p>\r\n\
--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\naW1hZ2VieXRlcw==\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\n\
Subject: =?utf-8?q?inn=C3=A9r?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nforwarded words\r\n\
--b--\r\n";
        let (t, preview) = MessageText::extract(raw, false);
        assert!(t.body_contains("outer & text"), "{:?}", t.body);
        // A text attachment is text to search, but not the preview.
        assert!(t.body_contains("attached notes"));
        // RFC 9051 §6.4.4: the encapsulated header is body text of the outer message.
        assert!(t.body_contains("subject: innér"), "{:?}", t.body);
        assert!(t.body_contains("forwarded words"));
        assert!(!t.body_contains("imagebytes"));
        assert!(!t.header_contains("subject", "innér"));
        assert_eq!(t.fields.len(), 2);
        // The preview is the outer message's own text, not an attachment or the forwarded one.
        assert_eq!(preview, "outer & text");
    }

    #[test]
    fn shapes_that_tripped_mail_parser_are_indexed() {
        // A message/rfc822 part whose encapsulated message is only a header declaring
        // message/rfc822 again: mail-parser 0.11.9 hit `debug_assert!` on this shape
        // ("Invalid part ID, could not find multipart"), so a debug build refused the APPEND.
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n\
Content-Type: message/rfc822\n\n\n--b--\n";
        let entry = IndexEntry::extract(raw);
        assert!(entry.text.body_contains("content-type: message/rfc822"), "{:?}", entry.text.body);
        assert_eq!(entry.preview, "");
    }

    #[test]
    fn headerless_input_is_all_body() {
        let (t, preview) = MessageText::extract(b"just some\r\n\r\n  WORDS", true);
        assert!(t.body_contains("some"));
        assert!(t.body_contains("words"));
        assert!(t.fields.is_empty());
        assert_eq!(preview, "just some WORDS");
        let (t, preview) = MessageText::extract(b"", true);
        assert!(!t.body_contains("x"));
        assert_eq!(preview, "");
    }

    #[test]
    fn limits_cut_and_mark() {
        let mut raw = b"Subject: big\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_BODY_TEXT + 10));
        let (t, _) = MessageText::extract(&raw, true);
        assert!(t.truncated);
        assert_eq!(t.body.len(), MAX_BODY_TEXT);
        let (t, _) = MessageText::extract(&raw, false);
        assert!(!t.truncated);
        assert!(t.body.len() > MAX_BODY_TEXT);
    }

    #[test]
    fn email_ids_are_objectids_and_differ() {
        let a = email_id(b"Subject: a\r\n\r\nx");
        assert_eq!(a.len(), 33);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(a, email_id(b"Subject: a\r\n\r\nx"));
        assert_ne!(a, email_id(b"Subject: a\r\n\r\ny"));
        assert_ne!(email_id(b""), email_id(b"\0"));
    }

    #[test]
    fn preview_is_bounded() {
        let long = "word ".repeat(200);
        let p = normalise_preview(&long);
        assert!(p.chars().count() <= PREVIEW_CHARS, "{}", p.len());
        assert!(p.starts_with("word word"));
        assert!(!p.ends_with(' '));
        assert_eq!(normalise_preview(" \t\r\n a\u{7}b \n"), "a b");
    }

    #[test]
    fn facts_follow_rfc5256_and_rfc5957() {
        let raw = b"From: =?utf-8?q?Zo=C3=AB?= <Zoe@Example.org>\r\n\
To: undisclosed-recipients:;\r\nCc: carl@example.net\r\n\
Subject: Re: [list] Fwd: Plans\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n\
Message-ID: <\"a b\"@x>\r\nIn-Reply-To: <p@x> (sent by p)\r\n\r\nbody\r\n";
        let f = BodyFacts::of(&postfach_message::parse(raw));
        assert_eq!(f.base_subject, "plans");
        assert!(f.is_reply);
        assert_eq!(f.sort_from, "zoe");
        assert_eq!(f.display_from, "zoë");
        assert_eq!(f.sort_to, "undisclosed-recipients");
        assert_eq!(f.display_to, "undisclosed-recipients");
        assert_eq!(f.sort_cc, "carl");
        assert_eq!(f.sent_date, Some(760_686_745));
        assert_eq!(f.message_id.as_deref(), Some("ab@x"));
        assert_eq!(f.refs, vec!["p@x".to_owned()]);
        let f =
            BodyFacts::of(&postfach_message::parse(b"References: <a@x> <b@x>\r\nIn-Reply-To: <c@x>\r\n\r\n"));
        assert_eq!(f.refs, vec!["a@x".to_owned(), "b@x".to_owned()]);
        assert_eq!(f.sent_date, None);
        assert_eq!(f.display_from, "");
    }
}
