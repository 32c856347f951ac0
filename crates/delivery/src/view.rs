//! The message as the Sieve interpreter sees it: [`MessageView`] implements
//! [`postfach_sieve::Message`] over the raw bytes and their [`MessageSummary`], so nothing is
//! parsed twice. Header values are unfolded and RFC 2047-decoded
//! ([`postfach_message::decode_header_text`]); body parts are decoded from their transfer
//! encoding and charset by [`postfach_message::leaf_text`], the decoding SEARCH and `BINARY`
//! use, so a `body` test sees the text IMAP shows.
//!
//! Limits: at most [`MAX_BODY_TEXT`] bytes of body text are handed to one `body` test, so a
//! 50 MB attachment cannot make a script test cost 50 MB of memory.

use postfach_message::{BodyPart, ByteRange, MessageSummary, PartKind, decode_header_text, leaf_text};
use postfach_sieve::{BodyTransform, Message, content_type_matches};

/// Most bytes of body text returned for one `body` test.
pub const MAX_BODY_TEXT: usize = 4 << 20;

/// One delivery's message for Sieve.
#[derive(Debug, Clone, Copy)]
pub struct MessageView<'a> {
    /// The message as it will be stored (trace lines included).
    pub raw: &'a [u8],
    /// Its summary.
    pub summary: &'a MessageSummary,
    /// MAIL FROM, empty for the null path.
    pub envelope_from: &'a str,
    /// The RCPT TO address of this delivery.
    pub envelope_to: &'a str,
    /// The names of the recipient's mailboxes (for `mailboxexists`, RFC 5490).
    pub mailboxes: &'a [String],
}

/// The fields of a header block: (name, raw value with folding) in order. Lines that are not
/// fields (no colon, empty name) are skipped; the block ends at the first empty line.
pub(crate) fn fields(header: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    // (start of the field, position of its ':')
    let mut current: Option<(usize, usize)> = None;
    let mut pos = 0;
    while pos < header.len() {
        let end = header[pos..].iter().position(|&b| b == b'\n').map_or(header.len(), |i| pos + i + 1);
        let line = &header[pos..end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // A continuation line belongs to the current field.
            pos = end;
            continue;
        }
        if let Some((start, colon)) = current.take() {
            push_field(header, start, colon, pos, &mut out);
        }
        current = line.iter().position(|&b| b == b':').map(|c| (pos, pos + c));
        pos = end;
    }
    if let Some((start, colon)) = current {
        push_field(header, start, colon, pos, &mut out);
    }
    out
}

fn push_field<'h>(
    header: &'h [u8],
    start: usize,
    colon: usize,
    end: usize,
    out: &mut Vec<(&'h [u8], &'h [u8])>,
) {
    let name = trim_end(&header[start..colon]);
    if !name.is_empty() {
        out.push((name, &header[colon + 1..end]));
    }
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let Some((last, rest)) = s.split_last() {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// A raw field value unfolded (RFC 5322 §2.2.3) and trimmed, as text.
fn unfolded(value: &[u8]) -> String {
    let text: Vec<u8> = value.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
    String::from_utf8_lossy(&text).trim().to_owned()
}

impl MessageView<'_> {
    fn header_block(&self) -> &[u8] {
        self.summary.structure.header.slice(self.raw)
    }

    fn values(&self, name: &str) -> impl Iterator<Item = &[u8]> {
        fields(self.header_block())
            .into_iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

impl Message for MessageView<'_> {
    fn header(&self, name: &str) -> Vec<String> {
        self.values(name).map(|v| decode_header_text(v).trim().to_owned()).collect()
    }

    fn header_raw(&self, name: &str) -> Vec<String> {
        self.values(name).map(unfolded).collect()
    }

    fn header_date(&self, name: &str) -> Option<(i64, i32)> {
        let first = self.values(name).next()?;
        postfach_message::SentDate::parse(unfolded(first).as_bytes()).map(|d| (d.unix, d.offset))
    }

    fn envelope_from(&self) -> Option<&str> {
        Some(self.envelope_from)
    }

    fn envelope_to(&self) -> Option<&str> {
        Some(self.envelope_to)
    }

    fn size(&self) -> u64 {
        u64::try_from(self.raw.len()).unwrap_or(u64::MAX)
    }

    fn body_text(&self, transform: &BodyTransform) -> Vec<String> {
        let root = &self.summary.structure;
        // RFC 5173 §4: a message without a body (no empty line after the header) fails every test.
        let header = root.header.slice(self.raw);
        if !(header.ends_with(b"\n\n")
            || header.ends_with(b"\r\n\r\n")
            || header == b"\r\n"
            || header == b"\n")
        {
            return Vec::new();
        }
        let mut out = Collector { texts: Vec::new(), left: MAX_BODY_TEXT };
        match transform {
            // RFC 5173 §5.1: the undecoded body, MIME structure and all.
            BodyTransform::Raw => out.push(String::from_utf8_lossy(root.body.slice(self.raw)).into_owned()),
            BodyTransform::Content(types) => self.walk(root, types, &mut out),
            // RFC 5173 §5.3: `:text` may be treated as `:content "text"`.
            BodyTransform::Text => self.walk(root, &["text".to_owned()], &mut out),
        }
        out.texts
    }

    fn mailbox_exists(&self, name: &str) -> bool {
        let inbox = name.eq_ignore_ascii_case("INBOX");
        self.mailboxes.iter().any(|m| if inbox { m == "INBOX" } else { m == name })
    }
}

/// Body strings with a shared byte budget.
struct Collector {
    texts: Vec<String>,
    left: usize,
}

impl Collector {
    fn push(&mut self, mut text: String) {
        if self.left == 0 {
            return;
        }
        if text.len() > self.left {
            let mut cut = self.left;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        self.left -= text.len();
        self.texts.push(text);
    }
}

impl MessageView<'_> {
    /// RFC 5173 §5.2: every part whose type matches contributes; a matching multipart gives its
    /// prologue and epilogue, a matching message/rfc822 its header; then the walk goes on into
    /// the children.
    fn walk(&self, part: &BodyPart, types: &[String], out: &mut Collector) {
        let content_type = format!(
            "{}/{}",
            String::from_utf8_lossy(&part.content_type),
            String::from_utf8_lossy(&part.subtype)
        );
        let wanted = types.iter().any(|t| content_type_matches(t, &content_type));
        match &part.kind {
            PartKind::Leaf => {
                if wanted {
                    // RFC 5173 §5.2: decoded from its transfer encoding and charset.
                    out.push(leaf_text(self.raw, part).unwrap_or_default());
                }
            }
            PartKind::Multipart(children) => {
                if wanted {
                    let (prologue, epilogue) = self.prologue_epilogue(part, children);
                    out.push(prologue);
                    out.push(epilogue);
                }
                for child in children {
                    self.walk(child, types, out);
                }
            }
            PartKind::Message(nested) => {
                if wanted {
                    out.push(unfolded_header(nested.structure.header.slice(self.raw)));
                }
                self.walk(&nested.structure, types, out);
            }
        }
    }

    /// The text before the first and after the last boundary of a multipart body.
    fn prologue_epilogue(&self, part: &BodyPart, children: &[BodyPart]) -> (String, String) {
        let (Some(first), Some(last)) = (children.first(), children.last()) else {
            return (String::new(), String::new());
        };
        let before = ByteRange { start: part.body.start, end: first.header.start.max(part.body.start) };
        let before = before.slice(self.raw);
        // Drop the delimiter line that ends the prologue.
        let prologue = match before.windows(3).rposition(|w| w == b"\n--") {
            Some(i) => &before[..i],
            None if before.starts_with(b"--") => &[][..],
            None => before,
        };
        let after = ByteRange { start: last.body.end.min(part.body.end), end: part.body.end }.slice(self.raw);
        // Skip the line break, the close delimiter and the rest of its line.
        let epilogue = after.iter().position(|&b| b == b'\n').map_or(&[][..], |i| {
            let rest = &after[i + 1..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(j) => &rest[j + 1..],
                None => &[][..],
            }
        });
        (lossy_trim_crlf(prologue), lossy_trim_crlf(epilogue))
    }
}

fn lossy_trim_crlf(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end_matches(['\r', '\n']).to_owned()
}

/// A header block as text, each field unfolded on its own line.
fn unfolded_header(header: &[u8]) -> String {
    fields(header)
        .into_iter()
        .map(|(n, v)| format!("{}: {}", String::from_utf8_lossy(n), unfolded(v)))
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn view<'a>(raw: &'a [u8], summary: &'a MessageSummary, boxes: &'a [String]) -> MessageView<'a> {
        MessageView { raw, summary, envelope_from: "a@x", envelope_to: "b@y", mailboxes: boxes }
    }

    #[test]
    fn headers_are_unfolded_and_decoded() {
        let raw = b"Subject: =?utf-8?q?caf=C3=A9?=\r\n  au lait\r\nX-A: one\r\nx-a:two\r\nTo: \"=?utf-8?q?J=C3=B6rg?=\" <j@x>\r\n\r\nbody\r\n";
        let s = postfach_message::parse(raw);
        let v = view(raw, &s, &[]);
        assert_eq!(v.header("subject"), vec!["café au lait"]);
        assert_eq!(v.header("X-A"), vec!["one", "two"]);
        assert_eq!(v.header_raw("to"), vec!["\"=?utf-8?q?J=C3=B6rg?=\" <j@x>"]);
        assert!(v.header("Missing").is_empty());
        assert_eq!(v.size(), raw.len() as u64);
    }

    const MIME: &[u8] = b"From: a@x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\nprologue text\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe\r\n--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+aGk8L2I+\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\nepilogue text\r\n";

    #[test]
    fn body_parts_are_decoded_by_type() {
        let s = postfach_message::parse(MIME);
        let v = view(MIME, &s, &[]);
        // RFC 5173 §5.2: text parts, decoded, nested message parts included.
        assert_eq!(v.body_text(&BodyTransform::Text), vec!["Grüße", "<b>hi</b>", "inner body"]);
        assert_eq!(v.body_text(&BodyTransform::Content(vec!["text/html".into()])), vec!["<b>hi</b>"]);
        assert_eq!(
            v.body_text(&BodyTransform::Content(vec!["multipart".into()])),
            vec!["prologue text", "epilogue text"]
        );
        assert_eq!(
            v.body_text(&BodyTransform::Content(vec!["message/rfc822".into()])),
            vec!["Subject: inner"]
        );
        let raw = v.body_text(&BodyTransform::Raw);
        assert!(raw[0].starts_with("prologue text\r\n--b\r\n"));
    }

    #[test]
    fn leaf_decoding_is_the_one_imap_uses() {
        // Lenient as `BINARY` and SEARCH: a stray byte in base64 is skipped (RFC 2045 §6.8),
        // `charset*` (RFC 2231) names the charset.
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGk!gdGhlcmU=\r\n\
--b\r\nContent-Type: text/plain; charset*=us-ascii''iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
caf=E9\r\n--b--\r\n";
        let s = postfach_message::parse(raw);
        assert_eq!(view(raw, &s, &[]).body_text(&BodyTransform::Text), vec!["hi there", "café"]);
    }

    #[test]
    fn no_body_means_no_text() {
        let raw = b"Subject: header only\r\n";
        let s = postfach_message::parse(raw);
        assert!(view(raw, &s, &[]).body_text(&BodyTransform::Text).is_empty());
        let raw = b"Subject: x\r\n\r\n";
        let s = postfach_message::parse(raw);
        assert_eq!(view(raw, &s, &[]).body_text(&BodyTransform::Text), vec![""]);
    }

    #[test]
    fn body_text_is_bounded() {
        let mut raw = b"Subject: big\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'x', MAX_BODY_TEXT + 100));
        let s = postfach_message::parse(&raw);
        let texts = view(&raw, &s, &[]).body_text(&BodyTransform::Text);
        assert_eq!(texts.iter().map(String::len).sum::<usize>(), MAX_BODY_TEXT);
    }

    #[test]
    fn mailbox_existence() {
        let boxes = vec!["INBOX".to_owned(), "lists/rust".to_owned()];
        let raw = b"\r\n";
        let s = postfach_message::parse(raw);
        let v = view(raw, &s, &boxes);
        assert!(v.mailbox_exists("inbox"));
        assert!(v.mailbox_exists("lists/rust"));
        assert!(!v.mailbox_exists("Lists/Rust"));
    }

    #[test]
    fn field_splitting_survives_junk() {
        assert_eq!(
            fields(b"no colon\r\nA: 1\r\n\tmore\r\n: empty name\r\n\r\nB: body"),
            vec![(&b"A"[..], &b" 1\r\n\tmore\r\n"[..])]
        );
        assert!(fields(b"").is_empty());
        assert_eq!(fields(b"A: unterminated"), vec![(&b"A"[..], &b" unterminated"[..])]);
    }
}
