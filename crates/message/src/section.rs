//! `BODY[section]` (RFC 9051 §6.4.5) and `BINARY[section]` (RFC 3516) extraction from the raw
//! message, driven by a [`MessageSummary`] so nothing is re-parsed.
//!
//! Limits: partial fetches (`<offset.length>`) are the caller's job; it slices what we return.

use std::borrow::Cow;

use crate::header::Fields;
use crate::{BodyPart, MessageSummary, PartKind};

/// The text part of a section specifier (what follows the part numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionText<'a> {
    /// No text specifier: the whole message (empty part) or the part's body.
    Full,
    /// `HEADER`: the header including the blank line that ends it.
    Header,
    /// `HEADER.FIELDS (...)`: only the named fields (case-insensitive), plus the blank line.
    HeaderFields(&'a [Vec<u8>]),
    /// `HEADER.FIELDS.NOT (...)`: all but the named fields, plus the blank line.
    HeaderFieldsNot(&'a [Vec<u8>]),
    /// `TEXT`: the body of the message or of the encapsulated message.
    Text,
    /// `MIME`: the part's own MIME header; needs at least one part number.
    Mime,
}

/// Why `BINARY[...]` cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// The part's Content-Transfer-Encoding is not one we can undo (RFC 3516 §4.3: UNKNOWN-CTE).
    #[error("unknown content-transfer-encoding {0:?}")]
    UnknownCte(String),
    /// The part is multipart or message/rfc822 (RFC 9051 §6.4.5: BINARY needs a leaf part).
    #[error("BINARY needs a leaf body part")]
    NotLeaf,
}

/// The bytes of `BODY[part.text]`. `part` lists the part numbers (empty = whole message).
///
/// Returns None when the part does not exist or the text specifier does not apply to it
/// (`MIME` without a part number, `HEADER`/`TEXT` of a part that is not message/rfc822).
/// In a non-multipart message, part 1 is the message's own body, so `1.MIME` is its header.
/// Borrows from `raw` except for `HEADER.FIELDS[.NOT]` and headers that lack their blank line.
#[must_use]
pub fn section<'r>(
    raw: &'r [u8],
    summary: &MessageSummary,
    part: &[u32],
    text: SectionText<'_>,
) -> Option<Cow<'r, [u8]>> {
    if part.is_empty() {
        return match text {
            // RFC 9051 §6.4.5: an empty section is the entire message, header included.
            SectionText::Full => Some(Cow::Borrowed(raw)),
            // RFC 9051 §6.4.5.1: MIME "MUST be prefixed by one or more numeric part specifiers".
            SectionText::Mime => None,
            _ => message_text(raw, &summary.structure, text),
        };
    }
    let node = resolve(summary, part)?;
    match text {
        SectionText::Full => Some(Cow::Borrowed(node.body.slice(raw))),
        SectionText::Mime => Some(header_with_blank_line(raw, node)),
        // RFC 9051 §6.4.5.1: HEADER* and TEXT after a part number need a MESSAGE/RFC822 or
        // MESSAGE/GLOBAL part; they address the encapsulated message.
        _ => match &node.kind {
            PartKind::Message(nested) => message_text(raw, &nested.structure, text),
            _ => None,
        },
    }
}

/// The bytes of `BINARY[part]` (RFC 3516, RFC 9051 §6.4.5): the part's body with its
/// Content-Transfer-Encoding removed.
///
/// Base64 and quoted-printable content is served octet for octet as decoded: an LF-only text
/// attachment is a file whose bytes and size the sender chose, and BINARY.SIZE and `<partial>`
/// offsets must agree with what the client saves (Dovecot serves them unchanged too). A text part
/// sent without transfer encoding gets CRLF line endings, as RFC 9051 §7.5.2 asks "regardless of
/// the underlying storage representation": its bare LFs are how the message was stored (appended
/// LF-only), not content.
///
/// `Ok(None)` when the part does not exist. An empty `part` is the whole message, as sent.
///
/// # Errors
/// [`BinaryError::UnknownCte`] for a Content-Transfer-Encoding other than 7bit, 8bit, binary,
/// base64 and quoted-printable; [`BinaryError::NotLeaf`] for a multipart or message/rfc822 part.
pub fn binary<'r>(
    raw: &'r [u8],
    summary: &MessageSummary,
    part: &[u32],
) -> Result<Option<Cow<'r, [u8]>>, BinaryError> {
    if part.is_empty() {
        return Ok(Some(Cow::Borrowed(raw)));
    }
    let Some(node) = resolve(summary, part) else { return Ok(None) };
    let decoded = transfer_decoded(raw, node)?;
    let identity = matches!(node.encoding.as_slice(), b"7BIT" | b"8BIT" | b"BINARY");
    if identity && node.content_type == b"TEXT" {
        return Ok(Some(crlf_lines(decoded)));
    }
    Ok(Some(decoded))
}

/// The body of the leaf `part` with its Content-Transfer-Encoding removed (RFC 2045 §6), line
/// endings as sent.
fn transfer_decoded<'r>(raw: &'r [u8], part: &BodyPart) -> Result<Cow<'r, [u8]>, BinaryError> {
    if !part.kind.is_leaf() {
        return Err(BinaryError::NotLeaf);
    }
    let body = part.body.slice(raw);
    Ok(match part.encoding.as_slice() {
        b"7BIT" | b"8BIT" | b"BINARY" => Cow::Borrowed(body),
        b"BASE64" => Cow::Owned(decode_base64(body)),
        b"QUOTED-PRINTABLE" => Cow::Owned(decode_quoted_printable(body)),
        // RFC 3516 §4.3 / RFC 9051 §7.5.2: fail with UNKNOWN-CTE.
        other => return Err(BinaryError::UnknownCte(String::from_utf8_lossy(other).into_owned())),
    })
}

/// The content of a leaf part as UTF-8 text, for SEARCH and PREVIEW: the body FETCH serves as
/// `BODY[n]` with its Content-Transfer-Encoding undone (as `BINARY[n]`) and converted from the
/// part's charset (RFC 2046 §4.1.2; RFC 2231 `charset*` too). Lenient, like the rest of the
/// crate: an unknown transfer encoding leaves the body as sent, an unknown charset or invalid
/// bytes become U+FFFD. None for a multipart or message/rfc822 part. The media type is not
/// looked at: the caller decides which parts are text.
#[must_use]
pub fn leaf_text(raw: &[u8], part: &BodyPart) -> Option<String> {
    let decoded = match transfer_decoded(raw, part) {
        Ok(bytes) => bytes,
        Err(BinaryError::NotLeaf) => return None,
        Err(BinaryError::UnknownCte(_)) => Cow::Borrowed(part.body.slice(raw)),
    };
    let charset = crate::structure::param(&part.params, b"CHARSET").unwrap_or_default();
    Some(crate::params::to_utf8(charset, &decoded).into_owned())
}

/// One field of a header block, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderField<'r> {
    /// The field name, without the whitespace some senders put before the colon.
    pub name: &'r [u8],
    /// The raw value: everything after the colon, folds and the final line ending included.
    /// [`crate::decode_header_text`] unfolds and decodes it.
    pub value: &'r [u8],
}

/// The fields of `part`'s header in order (for the root or an encapsulated message's root, the
/// message header; for a part inside a multipart, its MIME header), split exactly as FETCH
/// splits them for `HEADER.FIELDS`, so that SEARCH sees the same fields.
pub fn header_fields<'r>(raw: &'r [u8], part: &BodyPart) -> impl Iterator<Item = HeaderField<'r>> + 'r {
    let range = part.header.start as usize..part.header.end as usize;
    Fields::new(raw, range).map(move |f| HeaderField { name: f.name(raw), value: f.raw_value(raw) })
}

/// The MIME part that the part numbers `part` name (RFC 9051 §6.4.5.1), `None` when there is
/// none; URLFETCH's BODYPARTSTRUCTURE (RFC 5524) describes it.
#[must_use]
pub fn part<'s>(summary: &'s MessageSummary, part: &[u32]) -> Option<&'s BodyPart> {
    resolve(summary, part)
}

/// Finds the node that a list of part numbers names (RFC 9051 §6.4.5.1).
///
/// A multipart's parts are numbered from 1. A non-multipart message has only part 1, its body
/// (the node itself). After a message/rfc822 part, numbers continue in the encapsulated message.
fn resolve<'s>(summary: &'s MessageSummary, part: &[u32]) -> Option<&'s BodyPart> {
    // The node whose parts the next number counts: a message root or a multipart.
    let mut container = &summary.structure;
    let mut node = container;
    for (i, &n) in part.iter().enumerate() {
        let index = usize::try_from(n.checked_sub(1)?).ok()?;
        node = match &container.kind {
            PartKind::Multipart(children) => children.get(index)?,
            _ if index == 0 => container,
            _ => return None,
        };
        if i + 1 < part.len() {
            container = match &node.kind {
                PartKind::Message(nested) => &nested.structure,
                PartKind::Multipart(_) => node,
                PartKind::Leaf => return None,
            };
        }
    }
    Some(node)
}

/// HEADER, HEADER.FIELDS[.NOT] or TEXT of the message whose root part is `root`.
fn message_text<'r>(raw: &'r [u8], root: &BodyPart, text: SectionText<'_>) -> Option<Cow<'r, [u8]>> {
    match text {
        SectionText::Header => Some(header_with_blank_line(raw, root)),
        SectionText::HeaderFields(names) => Some(header_subset(raw, root, names, Subset::Only)),
        SectionText::HeaderFieldsNot(names) => Some(header_subset(raw, root, names, Subset::AllBut)),
        SectionText::Text => Some(Cow::Borrowed(root.body.slice(raw))),
        SectionText::Full | SectionText::Mime => None,
    }
}

/// Whether a header fetch ends with a blank line: RFC 9051 §6.4.5.1 always includes it, "except
/// in the case of a message that has no body and no blank line".
fn wants_blank_line(raw: &[u8], part: &BodyPart) -> bool {
    !part.body.is_empty() || ends_with_blank_line(part.header.slice(raw))
}

/// The part's header as a header fetch returns it: as sent when it already ends with its blank
/// line, otherwise completed with one where RFC 9051 wants it.
fn header_with_blank_line<'r>(raw: &'r [u8], part: &BodyPart) -> Cow<'r, [u8]> {
    let header = part.header.slice(raw);
    if ends_with_blank_line(header) || !wants_blank_line(raw, part) {
        return Cow::Borrowed(header);
    }
    let mut out = Vec::with_capacity(header.len() + 4);
    out.extend_from_slice(header);
    if !header.is_empty() && !header.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Cow::Owned(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subset {
    Only,
    AllBut,
}

/// HEADER.FIELDS / HEADER.FIELDS.NOT: the matching fields as sent, in order, then the blank line.
fn header_subset<'r>(raw: &'r [u8], part: &BodyPart, names: &[Vec<u8>], subset: Subset) -> Cow<'r, [u8]> {
    let mut out = Vec::new();
    let header = part.header;
    for field in Fields::new(raw, header.start as usize..header.end as usize) {
        // RFC 9051 §6.4.5.1: "ASCII-range case insensitive but is otherwise exact".
        let name = field.name(raw);
        let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
        if listed != (subset == Subset::Only) {
            continue;
        }
        let bytes = field.bytes(raw);
        out.extend_from_slice(bytes);
        if !bytes.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    if wants_blank_line(raw, part) {
        out.extend_from_slice(b"\r\n");
    }
    // The subset is text we compose, not the message's octets: CRLF throughout (RFC 5322 §2.3),
    // also when the message itself has bare LF lines, so that the blank line we add is found.
    Cow::Owned(crlf_lines(Cow::Owned(out)).into_owned())
}

/// True when `header` ends with an empty line (or is just one).
fn ends_with_blank_line(header: &[u8]) -> bool {
    let Some(rest) = strip_line_ending(header) else { return false };
    rest.is_empty() || rest.ends_with(b"\n")
}

fn strip_line_ending(s: &[u8]) -> Option<&[u8]> {
    let s = s.strip_suffix(b"\n")?;
    Some(s.strip_suffix(b"\r").unwrap_or(s))
}

/// Rewrites bare LF as CRLF; borrows when there is none.
fn crlf_lines(data: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    let bare = |i: usize, data: &[u8]| data[i] == b'\n' && (i == 0 || data[i - 1] != b'\r');
    if !(0..data.len()).any(|i| bare(i, &data)) {
        return data;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    for (i, &b) in data.iter().enumerate() {
        if bare(i, &data) {
            out.push(b'\r');
        }
        out.push(b);
    }
    Cow::Owned(out)
}

/// RFC 2045 §6.8 base64, leniently: bytes outside the alphabet are skipped (§6.8 says to ignore
/// them), decoding stops at the first `=`, and trailing bits of an incomplete group are dropped.
pub(crate) fn decode_base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in input {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Truncation intended: the low 8 bits are the decoded octet.
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// RFC 2045 §6.7 quoted-printable, leniently: `=XX` is an octet, `=` before a line ending is a
/// soft line break, trailing whitespace on a line is dropped (rule 3; the end of the input ends a
/// line too: the line break before a boundary belongs to the delimiter), and a malformed `=`
/// sequence is kept literally. Hard line breaks stay as sent (CRLF, or a bare LF).
pub(crate) fn decode_quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    // Where the current run of trailing whitespace started in `out`.
    let mut ws_from: Option<usize> = None;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        match b {
            b'=' => {
                ws_from = None;
                let hex = |o: usize| input.get(i + o).and_then(|c| (*c as char).to_digit(16));
                if let (Some(h), Some(l)) = (hex(1), hex(2)) {
                    // Two hex digits: always below 256.
                    out.push((h << 4 | l) as u8);
                    i += 3;
                    continue;
                }
                // Soft line break: "=" then optional transport padding then a line ending.
                let mut j = i + 1;
                while j < input.len() && matches!(input[j], b' ' | b'\t') {
                    j += 1;
                }
                if input.get(j) == Some(&b'\r') && input.get(j + 1) == Some(&b'\n') {
                    i = j + 2;
                    continue;
                }
                if input.get(j) == Some(&b'\n') || j == input.len() {
                    i = j + 1;
                    continue;
                }
                out.push(b'=');
                i += 1;
            }
            b'\r' | b'\n' => {
                if let Some(from) = ws_from.take() {
                    out.truncate(from);
                }
                out.push(b);
                i += 1;
            }
            b' ' | b'\t' => {
                ws_from.get_or_insert(out.len());
                out.push(b);
                i += 1;
            }
            _ => {
                ws_from = None;
                out.push(b);
                i += 1;
            }
        }
    }
    if let Some(from) = ws_from {
        out.truncate(from);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_subsets_of_bare_lf_messages_are_crlf() {
        let raw = b"From: h@example.com\nSubject: bare\n  folded\nX-Other: 1\n\nbody\n";
        let summary = crate::parse(raw);
        let names = [b"subject".to_vec(), b"from".to_vec()];
        let only = section(raw, &summary, &[], SectionText::HeaderFields(&names)).unwrap();
        assert_eq!(&only[..], b"From: h@example.com\r\nSubject: bare\r\n  folded\r\n\r\n");
        let not = section(raw, &summary, &[], SectionText::HeaderFieldsNot(&names)).unwrap();
        assert_eq!(&not[..], b"X-Other: 1\r\n\r\n");
        // HEADER stays the message's own octets.
        let header = section(raw, &summary, &[], SectionText::Header).unwrap();
        assert_eq!(&header[..], b"From: h@example.com\nSubject: bare\n  folded\nX-Other: 1\n\n");
    }

    #[test]
    fn leaf_text_undoes_encodings_and_charsets() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
caf=E9 =\r\nau lait\r\n\
--b\r\nContent-Type: text/plain; charset*=utf-8''\r\nContent-Transfer-Encoding: base64\r\n\r\nw6k=\r\n\
--b\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nas sent\r\n\
--b--\r\n";
        let summary = crate::parse(raw);
        let PartKind::Multipart(parts) = &summary.structure.kind else { panic!("not multipart") };
        assert_eq!(leaf_text(raw, &parts[0]).as_deref(), Some("café au lait"));
        assert_eq!(leaf_text(raw, &parts[1]).as_deref(), Some("é"));
        assert_eq!(leaf_text(raw, &parts[2]).as_deref(), Some("as sent"));
        assert_eq!(leaf_text(raw, &summary.structure), None);
    }

    #[test]
    fn header_fields_of_parts() {
        let raw = b"Subject: a\r\n b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n\
--x\r\nContent-Type : text/plain\r\n\r\nbody\r\n--x--\r\n";
        let summary = crate::parse(raw);
        let top: Vec<_> = header_fields(raw, &summary.structure).collect();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0], HeaderField { name: b"Subject", value: b" a\r\n b\r\n" });
        let PartKind::Multipart(parts) = &summary.structure.kind else { panic!("not multipart") };
        let mime: Vec<_> = header_fields(raw, &parts[0]).map(|f| f.name).collect();
        assert_eq!(mime, vec![&b"Content-Type"[..]]);
    }

    /// A multipart with an LF-only text attachment in base64 (30 octets, three of them LF) and a
    /// quoted-printable part with a soft break, an encoded CRLF, a bare LF and trailing blanks.
    const ENCODED: &[u8] = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\
Zmlyc3QgbGluZQpzZWNvbmQg\r\nbGluZQp0aGlyZCEK\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
soft=\r\n break\r\nhard=0D=0Aend\nbare lf\r\nlast  \r\n\
--b--\r\n";

    #[test]
    fn binary_is_the_decoded_octets() {
        let summary = crate::parse(ENCODED);
        let b64 = binary(ENCODED, &summary, &[1]).unwrap().unwrap();
        assert_eq!(&b64[..], b"first line\nsecond line\nthird!\n");
        assert_eq!(b64.len(), 30, "no CR may be added before the LFs of the attachment");
        // Line ends as the encoded text has them: the soft break goes, a CRLF stays a CRLF, a
        // bare LF stays bare, and the blanks ending the last line (the CRLF before the
        // delimiter is not the part's) go too (RFC 2045 §6.7 rule 3).
        let qp = binary(ENCODED, &summary, &[2]).unwrap().unwrap();
        assert_eq!(&qp[..], b"soft break\r\nhard\r\nend\nbare lf\r\nlast");
        assert_eq!(binary(ENCODED, &summary, &[3]), Ok(None));
        assert_eq!(binary(ENCODED, &summary, &[1, 2]), Ok(None));
    }

    #[test]
    fn base64() {
        assert_eq!(decode_base64(b"SGVsbG8s\r\nIHdvcmxkIQ==\r\n"), b"Hello, world!");
        assert_eq!(decode_base64(b"SGk"), b"Hi");
        assert_eq!(decode_base64(b"S!G*k="), b"Hi");
        assert_eq!(decode_base64(b""), b"");
    }

    #[test]
    fn quoted_printable() {
        assert_eq!(decode_quoted_printable(b"caf=C3=A9 =\r\nau lait"), "café au lait".as_bytes());
        assert_eq!(decode_quoted_printable(b"a=3db=\nc"), b"a=bc");
        assert_eq!(decode_quoted_printable(b"trailing   \r\nnext\t\nend"), b"trailing\r\nnext\nend");
        assert_eq!(decode_quoted_printable(b"bad =ZZ and = end="), b"bad =ZZ and = end");
        assert_eq!(decode_quoted_printable(b"padded=  \r\nx"), b"paddedx");
        assert_eq!(decode_quoted_printable(b"last line \t"), b"last line");
        assert_eq!(decode_quoted_printable(b"kept=20"), b"kept ");
    }

    #[test]
    fn crlf_normalisation() {
        assert!(matches!(crlf_lines(Cow::Borrowed(b"a\r\nb")), Cow::Borrowed(_)));
        assert_eq!(&*crlf_lines(Cow::Borrowed(b"a\nb\r\n\n")), b"a\r\nb\r\n\r\n");
    }

    #[test]
    fn blank_line_detection() {
        assert!(ends_with_blank_line(b"A: b\r\n\r\n"));
        assert!(ends_with_blank_line(b"A: b\n\n"));
        assert!(ends_with_blank_line(b"\r\n"));
        assert!(!ends_with_blank_line(b"A: b\r\n"));
        assert!(!ends_with_blank_line(b""));
    }
}
