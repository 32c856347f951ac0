//! Raw RFC 5322 / MIME bytes → [`MessageSummary`]: everything IMAP FETCH and SEARCH need, computed
//! once when a message is appended and stored beside it. Every MIME and text transformation of
//! Postfach lives here (stores and delivery call it; no other crate depends on mail-parser), so
//! each store backend derives the same text, keys and ids from the same bytes.
//!
//! # Layout
//! - [`envelope`]: the IMAP ENVELOPE (RFC 9051 §7.5.2) and address lists.
//! - [`structure`]: the MIME tree shaped like BODYSTRUCTURE, with the byte offsets of every part.
//! - [`section`]: `BODY[section]` and `BINARY[section]` extraction from the raw bytes.
//!   [`leaf_text`] is one part's content as UTF-8 text (transfer encoding and charset undone).
//! - [`collate`]: case folding, the RFC 5256 base subject and Message-ID normalisation (SEARCH,
//!   SORT, THREAD).
//! - [`text`]: the searchable text of a message ([`MessageText`]: decoded, HTML reduced to text,
//!   folded), its PREVIEW (RFC 8970) and the [`fold`] that needles get too.
//! - [`facts`]: the SORT/THREAD keys of a message ([`BodyFacts`], RFC 5256, RFC 5957) and its
//!   EMAILID ([`email_id`], RFC 8474).
//!
//! # Limits
//! This crate is pure: no I/O, no async. It never fails: malformed input yields a best-effort
//! summary, because RFC 9051 wants the message served byte for byte anyway. The summary never
//! copies body bytes; it holds header values and offsets into the raw message, which the caller
//! keeps. Offsets are `u32`, so messages must be smaller than 4 GiB (larger inputs are summarised
//! as far as the first 4 GiB reach).

mod bytes_serde;
pub mod collate;
pub mod envelope;
pub mod facts;
mod header;
mod params;
pub mod section;
pub mod structure;
pub mod text;

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;
use serde::{Deserialize, Serialize};

pub use collate::{
    BaseSubject, base_subject, casefold, collation_key, message_id_list, normalize_message_id,
};
pub use envelope::{Address, Envelope, address_search_text, parse_address_list};
pub use facts::{BodyFacts, email_id};
pub use section::{BinaryError, HeaderField, SectionText, binary, header_fields, leaf_text, part, section};
pub use structure::{BodyPart, ByteRange, Disposition, Param, PartKind};
pub use text::{MessageText, PREVIEW_CHARS, fold, html_to_text};

/// What FETCH, SEARCH and SORT need from one message, computed once by [`parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSummary {
    /// ENVELOPE of the top-level message.
    pub envelope: Envelope,
    /// The MIME tree; the root is the whole message.
    pub structure: BodyPart,
    /// The `Date:` header, when it parses.
    #[serde(default)]
    pub sent_date: Option<SentDate>,
    /// The `Subject:` with encoded-words decoded to UTF-8 (for SEARCH SUBJECT and SORT).
    #[serde(default)]
    pub subject: Option<String>,
    /// Message-IDs listed in `References:`, in order, angle brackets kept (for THREAD).
    #[serde(default, with = "bytes_serde::list")]
    pub references: Vec<Vec<u8>>,
}

/// The `Date:` header of a message as a point in time plus the sender's zone offset.
///
/// RFC 9051 §6.4.4 compares SENTBEFORE/SENTON/SENTSINCE on the date "disregarding time and
/// timezone", i.e. the civil date as written by the sender; [`SentDate::civil_day`] gives that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentDate {
    /// Seconds since the Unix epoch (UTC).
    pub unix: i64,
    /// The zone offset the sender wrote, in seconds east of UTC.
    pub offset: i32,
}

/// One message nested in a message/rfc822 (or message/global) part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NestedMessage {
    /// ENVELOPE of the encapsulated message.
    pub envelope: Envelope,
    /// MIME tree of the encapsulated message; its root covers the encapsulated header and body.
    pub structure: BodyPart,
}

/// Message-IDs kept from `References:`; threads deeper than this are cut at the oldest end.
pub const MAX_REFERENCES: usize = 500;

/// Parses a raw message once. Never panics, never fails.
///
/// Malformed input yields a best-effort summary: RFC 9051 serves the message byte for byte
/// anyway, and a client is better served by an approximate BODYSTRUCTURE than by none.
/// Input beyond 4 GiB is ignored (offsets are u32).
#[must_use]
pub fn parse(raw: &[u8]) -> MessageSummary {
    let raw = &raw[..raw.len().min(u32::MAX as usize)];
    let (known, body_start) = header::KnownFields::scan(raw, 0..raw.len());
    let envelope = Envelope::from_fields(raw, &known);
    let structure = structure::Builder::new(raw).root(&known, 0..body_start, body_start..raw.len());
    MessageSummary {
        envelope,
        structure,
        sent_date: known.date.and_then(|f| SentDate::parse(&f.unfolded(raw))),
        subject: known.subject.map(|f| decode_header_text(f.raw_value(raw))),
        references: known.references.map(|f| message_ids(&f.unfolded(raw))).unwrap_or_default(),
    }
}

/// Decodes an unstructured header value to UTF-8: unfolds it and decodes RFC 2047
/// encoded-words (for SEARCH and SORT, which compare decoded text).
#[must_use]
pub fn decode_header_text(value: &[u8]) -> String {
    let mut line = Vec::with_capacity(value.len() + 1);
    line.extend_from_slice(value);
    // mail-parser reads up to the end of the field, i.e. a line ending not followed by WSP.
    if line.last() != Some(&b'\n') {
        line.push(b'\n');
    }
    match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

/// The `<...>` message identifiers in a References or In-Reply-To value, brackets kept.
fn message_ids(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.iter().position(|&b| b == b'<') {
        let Some(len) = rest[open..].iter().position(|&b| b == b'>') else { break };
        out.push(rest[open..=open + len].to_vec());
        rest = &rest[open + len + 1..];
    }
    // Keep the newest ones: they matter most for threading.
    if out.len() > MAX_REFERENCES {
        out.drain(..out.len() - MAX_REFERENCES);
    }
    out
}

impl SentDate {
    /// Parses an RFC 5322 §3.3 date-time (obsolete forms and common mistakes tolerated).
    pub fn parse(value: &[u8]) -> Option<SentDate> {
        let mut line = value.to_vec();
        line.push(b'\n');
        let HeaderValue::DateTime(dt) = MessageStream::new(&line).parse_date() else { return None };
        if !dt.is_valid() {
            return None;
        }
        let offset = i32::from(dt.tz_hour) * 3600 + i32::from(dt.tz_minute) * 60;
        Some(SentDate { unix: dt.to_timestamp(), offset: if dt.tz_before_gmt { -offset } else { offset } })
    }

    /// The sender's civil date as days since 1970-01-01: what RFC 9051 §6.4.4 SENTON,
    /// SENTBEFORE and SENTSINCE compare, "disregarding time and timezone".
    pub fn civil_day(&self) -> i64 {
        (self.unix + i64::from(self.offset)).div_euclid(86_400)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date, to compare with [`SentDate::civil_day`].
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    // Howard Hinnant's days_from_civil: shift the year to start in March so leap days come last.
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn sent_dates() {
        let d = SentDate::parse(b"Fri, 21 Nov 1997 09:55:06 -0600").unwrap();
        assert_eq!(d.unix, 880_127_706);
        assert_eq!(d.offset, -21_600);
        // Late evening west of UTC is the next day in UTC; SENTON uses the sender's day.
        let d = SentDate::parse(b"31 Dec 1999 23:00:00 -0500").unwrap();
        assert_eq!(d.civil_day(), days_from_civil(1999, 12, 31));
        assert_eq!(d.unix.div_euclid(86_400), days_from_civil(2000, 1, 1));
        assert_eq!(SentDate::parse(b"not a date"), None);
        assert_eq!(SentDate::parse(b""), None);
    }

    #[test]
    fn first_occurrence_of_a_field_wins() {
        let s = parse(b"Subject: one\r\nsubject: two\r\nFROM: a@b\r\nFrom: c@d\r\n\r\n");
        assert_eq!(s.envelope.subject.as_deref(), Some(&b"one"[..]));
        assert_eq!(s.subject.as_deref(), Some("one"));
        assert_eq!(s.envelope.from.len(), 1);
    }

    #[test]
    fn repeated_recipient_fields_are_combined() {
        // RFC 5322 §4.5.3 for To, Cc and Bcc; Dovecot does the same for Reply-To.
        let s = parse(
            b"From: a@b\r\nTo: t1@x\r\nCc: c1@x\r\nTO: t2@x, t3@x\r\nReply-To: r1@x\r\nreply-to: r2@x\r\n\
Bcc: b1@x\r\nCc: g: c2@x\r\nCc: c3@x\r\nBcc: b2@x\r\n\r\nbody\r\n",
        );
        let mailboxes = |list: &[Address]| -> Vec<String> {
            list.iter()
                .map(|a| String::from_utf8_lossy(a.mailbox.as_deref().unwrap_or(b"NIL")).into_owned())
                .collect()
        };
        assert_eq!(mailboxes(&s.envelope.to), ["t1", "t2", "t3"]);
        // The group left open in the second Cc is closed before the third's address.
        assert_eq!(mailboxes(&s.envelope.cc), ["c1", "g", "c2", "NIL", "c3"]);
        assert_eq!(mailboxes(&s.envelope.bcc), ["b1", "b2"]);
        assert_eq!(mailboxes(&s.envelope.reply_to), ["r1", "r2"]);
        assert_eq!(mailboxes(&s.envelope.sender), ["a"]);
    }

    #[test]
    fn references_are_message_ids() {
        assert_eq!(message_ids(b"<a@b> junk <c@d>\t<e"), vec![b"<a@b>".to_vec(), b"<c@d>".to_vec()]);
        let many: Vec<u8> = (0..MAX_REFERENCES + 5).flat_map(|i| format!("<{i}@x> ").into_bytes()).collect();
        let ids = message_ids(&many);
        assert_eq!(ids.len(), MAX_REFERENCES);
        assert_eq!(ids.last().unwrap(), format!("<{}@x>", MAX_REFERENCES + 4).as_bytes());
    }

    #[test]
    fn header_text_decoding() {
        assert_eq!(decode_header_text(b" =?utf-8?q?caf=C3=A9?= au lait\r\n"), "café au lait");
        assert_eq!(decode_header_text(b" plain\r\n  folded"), "plain folded");
        assert_eq!(decode_header_text(b""), "");
    }
}
