//! The text of a message as SEARCH and PREVIEW see it: the searchable [`MessageText`] (SEARCH
//! TEXT/BODY/HEADER, RFC 9051 §6.4.4), the preview (RFC 8970) and the [`fold`] that makes
//! stored text and a client's needle comparable.
//!
//! # Semantics
//! The text comes from the MIME tree of [`crate::parse`], the one FETCH serves, so SEARCH and
//! FETCH agree on malformed MIME too: the top-level header fields; the text/* leaves (no
//! Content-Type counts as text/plain, RFC 2045 §5.2), HTML reduced to text ([`html_to_text`]);
//! and the header and text of encapsulated messages (message/rfc822) as body text. Other leaves
//! (images, applications, a transfer-encoded message/rfc822, which the tree keeps opaque) are
//! not text. All text is decoded (RFC 2047 words, transfer encodings, charsets), case-folded
//! with [`crate::casefold`] and stripped of control characters ([`fold`]); a caller that folds
//! the client's needle the same way gets the same answer from a full-text index built of this
//! text as from a scan.
//!
//! # Limits
//! Extraction keeps all the text; a store bounds what it indexes with [`MessageText::limit`]
//! (its limits are a storage choice, not a protocol one). The preview is at most
//! [`PREVIEW_CHARS`] characters.

use crate::{
    BodyPart, MessageSummary, PartKind, address_search_text, casefold, decode_header_text, header_fields,
    leaf_text,
};

/// Preview length in characters (RFC 8970 §3.3: SHOULD be at most 200, MUST be at most 256).
pub const PREVIEW_CHARS: usize = 200;

/// Folds a string for comparison: [`casefold`], and control characters other than line feed
/// become spaces (they cannot be typed into a search and would upset a full-text index).
#[must_use]
pub fn fold(s: &str) -> String {
    let mut out = casefold(s);
    if out.chars().any(|c| c.is_control() && c != '\n') {
        out = out.chars().map(|c| if c.is_control() && c != '\n' { ' ' } else { c }).collect();
    }
    out
}

/// An HTML part's text as a reader sees it: tags dropped, entities decoded (for SEARCH and
/// PREVIEW, which match what is shown rather than the markup).
#[must_use]
pub fn html_to_text(html: &str) -> String {
    mail_parser::decoders::html::html_to_text(html)
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
pub struct MessageText {
    /// `(lowercase field name, folded decoded value)` of the top-level header, in order.
    pub fields: Vec<(String, String)>,
    /// Folded text of the text parts (HTML reduced to text) and the header lines of nested
    /// messages, joined by line feeds.
    pub body: String,
    /// Something was left out by [`MessageText::limit`].
    pub truncated: bool,
}

impl MessageText {
    /// Extracts the text of a raw message and its preview (RFC 8970), all of it. Never fails:
    /// input without a header is all body.
    #[must_use]
    pub fn extract(raw: &[u8]) -> (MessageText, String) {
        MessageText::of(raw, &crate::parse(raw))
    }

    /// As [`MessageText::extract`], from the summary [`crate::parse`] made of `raw`: the parts
    /// are the ones FETCH serves, so `SEARCH BODY` finds what `BODY[n]` shows.
    #[must_use]
    pub fn of(raw: &[u8], summary: &MessageSummary) -> (MessageText, String) {
        MessageText::of_bounded(raw, summary, usize::MAX)
    }

    /// As [`MessageText::of`], decoding only about `max_body` bytes of body text: a part
    /// beyond that is decoded from a prefix of its raw bytes (cut at a line end), and parts
    /// after the budget is spent are skipped, so a 50 MiB message costs the budget, not
    /// copies of the message (issue 17). The result is marked
    /// [`truncated`](MessageText::truncated) when something was left out; the body may still
    /// exceed `max_body` a little (apply [`MessageText::limit`] for an exact cut).
    #[must_use]
    pub fn of_bounded(raw: &[u8], summary: &MessageSummary, max_body: usize) -> (MessageText, String) {
        let root = &summary.structure;
        let mut walk =
            TextWalk { raw, body: Vec::new(), plain: None, html: None, budget: max_body, cut: false };
        walk.part(root, false);
        let text = MessageText {
            fields: header_fields(raw, root)
                .map(|f| {
                    let name = field_name(f.name);
                    let value = field_value(&name, f.value);
                    (name, value)
                })
                .collect(),
            body: walk.body.join("\n"),
            truncated: walk.cut,
        };
        let preview = walk.plain.or(walk.html).unwrap_or_default();
        (text, preview)
    }

    /// Keeps the header fields that fit in `max_header` bytes (counting `name: value\n`) and
    /// at most `max_body` bytes of body text, cut at a character boundary; marks the text
    /// [`truncated`](MessageText::truncated) when something went.
    pub fn limit(&mut self, max_header: usize, max_body: usize) {
        let mut header_bytes = 0usize;
        let before = self.fields.len();
        self.fields.retain(|(n, v)| {
            header_bytes = header_bytes.saturating_add(n.len() + v.len() + 3);
            header_bytes <= max_header
        });
        self.truncated |= self.fields.len() != before;
        self.truncated |= cut(&mut self.body, max_body);
    }

    /// Roughly the memory the text holds, in bytes.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.body.len() + self.fields.iter().map(|(n, v)| n.len() + v.len() + 48).sum::<usize>()
    }

    /// The values of every field called `name`, joined by line feeds.
    #[must_use]
    pub fn field(&self, name: &str) -> String {
        let values: Vec<&str> =
            self.fields.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        values.join("\n")
    }

    /// The header as `name: value` lines.
    #[must_use]
    pub fn header_lines(&self) -> String {
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
    #[must_use]
    pub fn header_contains(&self, name: &str, needle: &str) -> bool {
        self.fields.iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && v.contains(needle))
    }

    /// RFC 9051 §6.4.4 BODY: the body text contains the folded needle.
    #[must_use]
    pub fn body_contains(&self, needle: &str) -> bool {
        self.body.contains(needle)
    }

    /// RFC 9051 §6.4.4 TEXT: the header lines or the body contain the folded needle.
    #[must_use]
    pub fn text_contains(&self, needle: &str) -> bool {
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
    /// Bytes of body text still wanted.
    budget: usize,
    /// Text was left out for the budget.
    cut: bool,
}

/// Raw bytes of a part decoded to get `budget` bytes of text: room for any transfer encoding
/// (base64 adds a third, quoted-printable at most triples a byte) and line breaks.
fn raw_for(budget: usize) -> usize {
    budget.saturating_mul(4).saturating_add(4096)
}

/// `part` with its body cut to at most `max` bytes, at the last line end within them.
fn body_prefix(raw: &[u8], part: &BodyPart, max: usize) -> BodyPart {
    let body = part.body.slice(raw);
    let head = body.get(..max).unwrap_or(body);
    let keep = head.iter().rposition(|&b| b == b'\n').map_or(head.len(), |i| i + 1);
    let mut cut = part.clone();
    // `keep` <= the part's length, which is a u32.
    cut.body.end = cut.body.start.saturating_add(u32::try_from(keep).unwrap_or(u32::MAX));
    cut
}

impl TextWalk<'_> {
    /// Adds the text of `part` and its descendants; `nested` is true inside an encapsulated
    /// message. The tree is at most [`crate::structure::MAX_DEPTH`] levels deep.
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
                if self.budget == 0 {
                    self.cut = true;
                    return;
                }
                let wanted = raw_for(self.budget);
                let shortened;
                let part = if part.body.len() as usize > wanted {
                    self.cut = true;
                    shortened = body_prefix(self.raw, part, wanted);
                    &shortened
                } else {
                    part
                };
                let Some(decoded) = leaf_text(self.raw, part) else { return };
                let html = part.subtype == b"HTML";
                let text = if html { html_to_text(&decoded) } else { decoded };
                // RFC 8970 §3.2: the preview comes from the message's own text, not from an
                // attachment or a forwarded message.
                let attachment = part.disposition.as_ref().is_some_and(|d| d.kind == b"ATTACHMENT");
                if !nested && !attachment {
                    let slot = if html { &mut self.html } else { &mut self.plain };
                    if slot.is_none() {
                        *slot = Some(preview(&text));
                    }
                }
                let folded = fold(&text);
                self.budget = self.budget.saturating_sub(folded.len());
                self.body.push(folded);
            }
            // Images, applications, message/partial...: no text to search.
            PartKind::Leaf => {}
        }
    }
}

/// A field name as the text keeps it: ASCII lowercase.
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

/// RFC 8970 §3.3: the preview of a part's text: runs of white space and control characters
/// become one space, none at either end, at most [`PREVIEW_CHARS`] characters.
fn preview(text: &str) -> String {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Issue 17: extracting the index text of a huge message decodes only a prefix of it.
    #[test]
    fn bounded_extraction_decodes_a_prefix() {
        let mut raw = b"Subject: big\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        let mut second = b"--b\r\nContent-Type: text/plain\r\n\r\nsecond part\r\n--b--\r\n".to_vec();
        while raw.len() < 1_000_000 {
            raw.extend_from_slice(b"Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n");
        }
        let full = MessageText::extract(&raw).0;
        assert!(!full.truncated && full.body.len() > 900_000);
        let summary = crate::parse(&raw);
        let (bounded, preview) = MessageText::of_bounded(&raw, &summary, 10_000);
        assert!(bounded.truncated);
        assert!(bounded.body.len() >= 10_000 && bounded.body.len() <= 50_000, "{}", bounded.body.len());
        assert!(full.body.starts_with(&bounded.body));
        assert_eq!(preview, MessageText::extract(&raw).1);
        // A part after the budget is spent is skipped, and that is reported.
        let mut multi = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n".to_vec();
        multi.extend_from_slice(&raw[raw.len() - 200_000..]);
        multi.extend_from_slice(b"\r\n");
        multi.append(&mut second);
        let summary = crate::parse(&multi);
        let (bounded, _) = MessageText::of_bounded(&multi, &summary, 1_000);
        assert!(bounded.truncated && !bounded.body.contains("second part"));
        assert!(MessageText::of(&multi, &summary).0.body.contains("second part"));
    }

    #[test]
    fn header_values_are_unfolded_decoded_and_folded() {
        let raw = b"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <jm@example.org>\r\n\
Subject: a folded\r\n  subject line\r\n\
X-Note: =?ISO-8859-1?Q?caf=E9?=\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello W\xc3\xb6rld\r\n";
        let (t, preview) = MessageText::extract(raw);
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
        let (t, preview) = MessageText::extract(raw);
        assert!(t.body_contains("hidden treasure"), "{:?}", t.body);
        assert!(t.body_contains("softbreak"), "{:?}", t.body);
        assert_eq!(preview, "hidden treasure");
    }

    /// `BODY[part]` as FETCH serves it ([`crate::section`]), as text.
    fn fetched(raw: &[u8], part: &[u32]) -> String {
        let summary = crate::parse(raw);
        let body = crate::section(raw, &summary, part, crate::SectionText::Full);
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
        let (t, preview) = MessageText::extract(raw);
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
        let (t, _) = MessageText::extract(raw);
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
        let (t, preview) = MessageText::extract(raw);
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
    fn shapes_that_tripped_mail_parser_are_extracted() {
        // A message/rfc822 part whose encapsulated message is only a header declaring
        // message/rfc822 again: mail-parser 0.11.9 hit `debug_assert!` on this shape
        // ("Invalid part ID, could not find multipart"), so a debug build refused the APPEND.
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n\
Content-Type: message/rfc822\n\n\n--b--\n";
        let (t, preview) = MessageText::extract(raw);
        assert!(t.body_contains("content-type: message/rfc822"), "{:?}", t.body);
        assert_eq!(preview, "");
    }

    #[test]
    fn headerless_input_is_all_body() {
        let (t, preview) = MessageText::extract(b"just some\r\n\r\n  WORDS");
        assert!(t.body_contains("some"));
        assert!(t.body_contains("words"));
        assert!(t.fields.is_empty());
        assert_eq!(preview, "just some WORDS");
        let (t, preview) = MessageText::extract(b"");
        assert!(!t.body_contains("x"));
        assert_eq!(preview, "");
    }

    #[test]
    fn limits_cut_and_mark() {
        let mut raw = b"Subject: big\r\nX-Long: ".to_vec();
        raw.extend(std::iter::repeat_n(b'h', 100));
        raw.extend(b"\r\n\r\n");
        raw.extend(std::iter::repeat_n(b'a', 1000));
        raw.extend("é".as_bytes());
        let (whole, _) = MessageText::extract(&raw);
        assert!(!whole.truncated);
        assert_eq!(whole.body.len(), 1002);
        let mut t = whole.clone();
        t.limit(usize::MAX, 1002);
        assert_eq!(t, whole, "what fits is not marked");
        // A cut inside a character goes back to its start.
        t.limit(usize::MAX, 1001);
        assert!(t.truncated);
        assert_eq!(t.body.len(), 1000);
        // "subject: big\n" is 13 bytes; the long field does not fit after it.
        let mut t = whole.clone();
        t.limit(20, usize::MAX);
        assert!(t.truncated);
        assert_eq!(t.fields, vec![("subject".to_owned(), "big".to_owned())]);
    }

    #[test]
    fn preview_is_bounded() {
        let long = "word ".repeat(200);
        let p = preview(&long);
        assert!(p.chars().count() <= PREVIEW_CHARS, "{}", p.len());
        assert!(p.starts_with("word word"));
        assert!(!p.ends_with(' '));
        assert_eq!(preview(" \t\r\n a\u{7}b \n"), "a b");
    }

    #[test]
    fn folding_blanks_control_characters() {
        assert_eq!(fold("A\u{7}B\nC\tD"), "a b\nc d");
    }
}
