//! The MIME tree of a message, shaped like IMAP BODYSTRUCTURE (RFC 9051 §7.5.2) plus the byte
//! offsets that `BODY[section]` needs.
//!
//! Limits: nesting deeper than [`MAX_DEPTH`] levels is not descended into (the deeper part becomes
//! an opaque leaf), so the tree, its serialised form and every recursive walk over it stay small.
//! A message is split into at most [`MAX_PARTS`] parts; later delimiters are not looked for.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::header::KnownFields;
use crate::{Envelope, NestedMessage, bytes_serde, params};

/// How many multipart / message levels below the root are split out; deeper parts are leaves.
///
/// Each level costs a few levels of recursion when the tree is walked, serialised or dropped, and
/// common deserialisers (serde_json: 128) refuse deep input, so the bound must stay well below that.
pub const MAX_DEPTH: usize = 24;

/// How many body parts one message may be split into; later parts stay inside their parent.
///
/// A part costs a few hundred bytes in memory and in the stored summary, and a hostile message can
/// declare a part every eight bytes; real messages stay far below this.
pub const MAX_PARTS: usize = 5_000;

/// A half-open byte range `start..end` into the raw message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

/// One `attribute=value` parameter of Content-Type or Content-Disposition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// The attribute name, ASCII-uppercased (names are case-insensitive, RFC 2045 §5.1).
    #[serde(with = "bytes_serde::plain")]
    pub name: Vec<u8>,
    /// The value as sent, with the quotes of a quoted-string removed.
    #[serde(with = "bytes_serde::plain")]
    pub value: Vec<u8>,
}

/// The Content-Disposition of a part (RFC 2183).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    /// The disposition type, ASCII-uppercased (`INLINE`, `ATTACHMENT`, ...).
    #[serde(with = "bytes_serde::plain")]
    pub kind: Vec<u8>,
    /// The disposition parameters, as for [`BodyPart::params`].
    #[serde(default)]
    pub params: Vec<Param>,
}

/// One node of the MIME tree.
///
/// Case: the media type, subtype, parameter names, encoding and disposition type are
/// ASCII-uppercased (they are case-insensitive tokens); every other value is kept as sent.
/// Parameters are RFC 2231-decoded as RFC 9051 §7.5.2 asks: continuations are joined, and an
/// extended value is converted to UTF-8 and named `name*` (so `boundary*=...` yields
/// `BOUNDARY*`, which the multipart split honours like `BOUNDARY`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyPart {
    /// Media type, e.g. `TEXT`. Defaults to `TEXT` (RFC 2045 §5.2), or `MESSAGE` inside a
    /// multipart/digest (RFC 2046 §5.1.5).
    #[serde(with = "bytes_serde::plain")]
    pub content_type: Vec<u8>,
    /// Media subtype, e.g. `PLAIN`. Defaults to `PLAIN`, or `RFC822` inside a multipart/digest.
    #[serde(with = "bytes_serde::plain")]
    pub subtype: Vec<u8>,
    /// Content-Type parameters in the order sent. A text part without a charset gets
    /// `CHARSET=us-ascii` (RFC 2045 §5.2), as BODYSTRUCTURE shows it.
    #[serde(default)]
    pub params: Vec<Param>,
    /// Content-ID, unfolded.
    #[serde(default, with = "bytes_serde::option")]
    pub id: Option<Vec<u8>>,
    /// Content-Description, unfolded, encoded-words left as sent.
    #[serde(default, with = "bytes_serde::option")]
    pub description: Option<Vec<u8>>,
    /// Content-Transfer-Encoding, uppercased; `7BIT` when absent (RFC 2045 §6.1).
    #[serde(with = "bytes_serde::plain")]
    pub encoding: Vec<u8>,
    /// Content-MD5, as sent.
    #[serde(default, with = "bytes_serde::option")]
    pub md5: Option<Vec<u8>>,
    /// Content-Disposition.
    #[serde(default)]
    pub disposition: Option<Disposition>,
    /// Content-Language tags, in order.
    #[serde(default, with = "bytes_serde::list")]
    pub language: Vec<Vec<u8>>,
    /// Content-Location, unfolded.
    #[serde(default, with = "bytes_serde::option")]
    pub location: Option<Vec<u8>>,
    /// This part's header, including the blank line that ends it when there is one.
    /// For the root and for the root of a nested message this is the message header.
    pub header: ByteRange,
    /// This part's body: what `BODY[n]` returns. For a part inside a multipart it excludes the
    /// line break before the next boundary (RFC 2046 §5.1.1).
    pub body: ByteRange,
    /// Lines in the body (BODYSTRUCTURE body-fld-lines): its line feeds. A last line without a
    /// line feed of its own is not counted, as Dovecot and c-client count; inside a multipart
    /// that is nearly every part, the CRLF before a delimiter being the delimiter's.
    pub lines: u32,
    /// Leaf, multipart or encapsulated message.
    #[serde(default)]
    pub kind: PartKind,
}

/// What a [`BodyPart`] contains.
///
/// A part declared multipart but without a usable boundary is a `Leaf` whose type is rewritten to
/// TEXT/PLAIN; a message/rfc822 or message/global part that is transfer-encoded, or nested past
/// [`MAX_DEPTH`], is a `Leaf` of type APPLICATION/OCTET-STREAM. So `Multipart` ⇔ a MULTIPART type
/// and `Message` ⇔ MESSAGE/RFC822 or MESSAGE/GLOBAL, and BODYSTRUCTURE can be rendered from
/// either without a contradiction.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PartKind {
    /// A single body (text, image, application, or message types other than rfc822/global).
    #[default]
    Leaf,
    /// A multipart body; the subtype is in [`BodyPart::subtype`]. Never empty.
    Multipart(Vec<BodyPart>),
    /// An encapsulated message (message/rfc822 or message/global).
    Message(Box<NestedMessage>),
}

impl PartKind {
    /// True for [`PartKind::Leaf`].
    pub fn is_leaf(&self) -> bool {
        matches!(self, PartKind::Leaf)
    }
}

impl ByteRange {
    /// Number of bytes in the range.
    pub fn len(&self) -> u32 {
        self.end.saturating_sub(self.start)
    }

    /// True when the range holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// The bytes of this range in `raw`, or an empty slice if `raw` is shorter than the range
    /// (a summary paired with the wrong message must not panic).
    pub fn slice<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        raw.get(self.start as usize..self.end as usize).unwrap_or_default()
    }
}

impl BodyPart {
    /// Size of the body in bytes, as BODYSTRUCTURE's body-fld-octets reports it.
    pub fn size(&self) -> u32 {
        self.body.len()
    }
}

/// Splits one message into its MIME tree. Holds the part budget shared by the whole message.
///
/// The multiparts of one message are split in a single pass over its lines, with the boundaries
/// of the multiparts open at that point on a stack (outermost first). A delimiter line belongs to
/// the innermost open multipart whose boundary it matches, as in Dovecot's parser: a nested
/// multipart that reuses its parent's boundary (Outlook Express and others did) takes the
/// delimiters until its close delimiter, and the parent's parts resume after it. A delimiter of an
/// outer multipart ends every multipart inside it, closed or not.
pub(crate) struct Builder<'r> {
    raw: &'r [u8],
    parts: usize,
}

/// What a part without a (valid) Content-Type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DefaultType {
    /// RFC 2045 §5.2: text/plain; charset=us-ascii.
    TextPlain,
    /// RFC 2046 §5.1.5: inside multipart/digest, message/rfc822.
    Message,
}

/// A delimiter line of one of the open multiparts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Delimiter {
    /// First byte of the line (the `-` of `--boundary`).
    start: usize,
    /// One past the line's line feed (or the limit).
    end: usize,
    /// Index of the multipart on the stack of open boundaries.
    level: usize,
    /// A close delimiter (`--boundary--`).
    closes: bool,
}

/// The boundaries of the open multiparts, outermost first.
type Open = Vec<Vec<u8>>;

impl<'r> Builder<'r> {
    /// A builder over `raw`, which must fit u32 offsets (the caller truncates).
    pub(crate) fn new(raw: &'r [u8]) -> Self {
        Builder { raw, parts: 0 }
    }

    /// The root part of a message whose header fields are `known`.
    pub(crate) fn root(&mut self, known: &KnownFields, header: Range<usize>, body: Range<usize>) -> BodyPart {
        self.part(known, header, body, DefaultType::TextPlain, 0, &mut Open::new()).0
    }

    /// An encapsulated message occupying `range` (the body of a message/rfc822 part). Its
    /// multiparts start a stack of their own: the range already ends before the next delimiter
    /// of the enclosing message.
    fn nested(&mut self, range: Range<usize>, depth: usize) -> NestedMessage {
        let (known, body_start) = KnownFields::scan(self.raw, range.clone());
        let envelope = Envelope::from_fields(self.raw, &known);
        let (structure, _) = self.part(
            &known,
            range.start..body_start,
            body_start..range.end,
            DefaultType::TextPlain,
            depth,
            &mut Open::new(),
        );
        NestedMessage { envelope, structure }
    }

    /// One part, its header at `header`. Its body starts at `within.start` and runs up to the line
    /// break before the next delimiter line of a multipart in `open` (the part's own delimiters,
    /// if it is a multipart, excluded), or to `within.end`. Returns the part and that delimiter,
    /// None when the body ran to `within.end`.
    fn part(
        &mut self,
        known: &KnownFields,
        header: Range<usize>,
        within: Range<usize>,
        default: DefaultType,
        depth: usize,
        open: &mut Open,
    ) -> (BodyPart, Option<Delimiter>) {
        self.parts += 1;
        let raw = self.raw;
        let unfolded = |f: Option<crate::header::Field>| f.map(|f| f.unfolded(raw));
        let (mut content_type, mut subtype, mut params) = match unfolded(known.content_type)
            .and_then(|v| params::content_type(&v))
        {
            Some(ct) => (ct.kind, ct.subtype, ct.params),
            None if default == DefaultType::Message => (b"MESSAGE".to_vec(), b"RFC822".to_vec(), Vec::new()),
            None => (b"TEXT".to_vec(), b"PLAIN".to_vec(), Vec::new()),
        };
        let encoding = unfolded(known.content_transfer_encoding)
            .and_then(|v| params::transfer_encoding(&v))
            .unwrap_or_else(|| b"7BIT".to_vec());

        let mut kind = PartKind::Leaf;
        let mut split = None;
        if content_type == b"MULTIPART" {
            match self.multipart(&subtype, &params, within.clone(), depth, open) {
                Ok((children, stop)) => {
                    kind = PartKind::Multipart(children);
                    split = Some(stop);
                }
                // No boundary, or no delimiter line: the body is shown as the text it is.
                Err(Unsplit::NoParts) => (content_type, subtype) = (b"TEXT".to_vec(), b"PLAIN".to_vec()),
                Err(Unsplit::OverLimit) => (content_type, subtype) = octet_stream(),
            }
        }
        // A multipart found its own end; any other part ends at the next delimiter.
        let stop = split.unwrap_or_else(|| next_delimiter(raw, within.clone(), open));
        let body = match stop {
            // RFC 2046 §5.1.1: the line break before a delimiter belongs to the delimiter.
            Some(d) => within.start..line_break_start(raw, within.start, d.start),
            None => within.clone(),
        };
        if content_type == b"MESSAGE" && (subtype == b"RFC822" || subtype == b"GLOBAL") {
            // Offsets of an encapsulated message only make sense if its bytes are not encoded
            // (RFC 2046 §5.2.1 allows only 7bit, 8bit and binary for message/rfc822).
            let identity = matches!(encoding.as_slice(), b"7BIT" | b"8BIT" | b"BINARY");
            if identity && depth < MAX_DEPTH && self.parts < MAX_PARTS {
                kind = PartKind::Message(Box::new(self.nested(body.clone(), depth + 1)));
            } else {
                // RFC 9051 §9: body-type-basic must not be MESSAGE/RFC822 or MESSAGE/GLOBAL.
                (content_type, subtype) = octet_stream();
            }
        }
        // RFC 2046 §4.1.2: the default charset of text/* is US-ASCII; BODYSTRUCTURE shows it.
        // A charset given in RFC 2231 form (`charset*=''utf-8`) is a charset too.
        if content_type == b"TEXT" && param(&params, b"CHARSET").is_none() {
            params.push(Param { name: b"CHARSET".to_vec(), value: b"us-ascii".to_vec() });
        }
        let counts_lines = content_type == b"TEXT" || matches!(kind, PartKind::Message(_));
        let lines = if counts_lines { count_lines(&raw[body.clone()]) } else { 0 };
        let part = BodyPart {
            content_type,
            subtype,
            params,
            id: unfolded(known.content_id),
            description: unfolded(known.content_description),
            encoding,
            md5: unfolded(known.content_md5),
            disposition: unfolded(known.content_disposition).and_then(|v| params::disposition(&v)),
            language: unfolded(known.content_language).map(|v| params::languages(&v)).unwrap_or_default(),
            location: unfolded(known.content_location),
            header: to_range(header),
            body: to_range(body),
            lines,
            kind,
        };
        (part, stop)
    }

    /// The children of a multipart whose body starts at `within.start`, and the delimiter of an
    /// enclosing multipart that ended it (None: it ran to `within.end`); or why it stays unsplit.
    ///
    /// RFC 2046 §5.1.1: the preamble before the first delimiter and the epilogue after the close
    /// delimiter are not parts. Without a close delimiter the last part runs to the end.
    fn multipart(
        &mut self,
        subtype: &[u8],
        params: &[Param],
        within: Range<usize>,
        depth: usize,
        open: &mut Open,
    ) -> Result<(Vec<BodyPart>, Option<Delimiter>), Unsplit> {
        if depth >= MAX_DEPTH || self.parts >= MAX_PARTS {
            return Err(Unsplit::OverLimit);
        }
        let boundary = match param(params, b"BOUNDARY") {
            Some(value) if !value.is_empty() => value,
            _ => return Err(Unsplit::NoParts),
        };
        open.push(boundary.to_vec());
        let split = self.split(subtype, within, depth, open);
        open.pop();
        split
    }

    /// [`Builder::multipart`] once its boundary is the innermost of `open`.
    fn split(
        &mut self,
        subtype: &[u8],
        within: Range<usize>,
        depth: usize,
        open: &mut Open,
    ) -> Result<(Vec<BodyPart>, Option<Delimiter>), Unsplit> {
        let raw = self.raw;
        let me = open.len() - 1;
        let default = if subtype == b"DIGEST" { DefaultType::Message } else { DefaultType::TextPlain };
        let mut children = Vec::new();
        let mut next = next_delimiter(raw, within.clone(), open);
        let stop = loop {
            let Some(d) = next else { break None };
            if d.level != me {
                // An enclosing multipart's delimiter ends this one.
                break Some(d);
            }
            if d.closes || self.parts >= MAX_PARTS {
                // The epilogue, or with the part budget spent, the rest: up to the next delimiter
                // of an enclosing multipart.
                break next_delimiter(raw, d.end..within.end, &open[..me]);
            }
            let (known, body_start) = header_end(raw, d.end..within.end, open);
            let (child, stop) =
                self.part(&known, d.end..body_start, body_start..within.end, default, depth + 1, open);
            children.push(child);
            next = stop;
        };
        if children.is_empty() {
            return Err(Unsplit::NoParts);
        }
        Ok((children, stop))
    }
}

/// Why a multipart body is not split into parts.
enum Unsplit {
    /// No boundary parameter, or no delimiter line in the body.
    NoParts,
    /// Nesting or part count limit reached.
    OverLimit,
}

/// The value of parameter `name` (uppercase), also when it was sent in RFC 2231 extended form:
/// `boundary*=us-ascii''abc` arrives decoded as `BOUNDARY*` (see `params`), and RFC 2231 §4
/// allows that form for any parameter. The plain form wins when both are present.
pub(crate) fn param<'p>(params: &'p [Param], name: &[u8]) -> Option<&'p [u8]> {
    let extended =
        |p: &&Param| p.name.len() == name.len() + 1 && p.name.starts_with(name) && p.name.ends_with(b"*");
    params
        .iter()
        .find(|p| p.name == name)
        .or_else(|| params.iter().find(extended))
        .map(|p| p.value.as_slice())
}

fn octet_stream() -> (Vec<u8>, Vec<u8>) {
    (b"APPLICATION".to_vec(), b"OCTET-STREAM".to_vec())
}

/// One past the line starting at `pos` (its line feed included), or `limit`.
fn line_end(raw: &[u8], pos: usize, limit: usize) -> usize {
    match raw[pos..limit].iter().position(|&b| b == b'\n') {
        Some(i) => pos + i + 1,
        None => limit,
    }
}

/// Whether `line` is a delimiter line of `boundary`: Some(true) for a close delimiter.
///
/// A delimiter line is `--boundary` followed only by transport padding (LWSP); a line starting
/// with `--boundary--` closes (RFC 2046 §5.1.1). Requiring the padding, rather than a prefix
/// match, keeps an inner boundary that extends the outer one (`abc` / `abcdef`) from cutting the
/// outer body.
fn delimiter_kind(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    if rest.starts_with(b"--") {
        return Some(true);
    }
    rest.iter().all(u8::is_ascii_whitespace).then_some(false)
}

/// The first delimiter line in `range` of a multipart in `open`; a line that fits several open
/// boundaries belongs to the innermost one.
fn next_delimiter(raw: &[u8], range: Range<usize>, open: &[Vec<u8>]) -> Option<Delimiter> {
    if open.is_empty() {
        return None;
    }
    let mut pos = range.start;
    while pos < range.end {
        let end = line_end(raw, pos, range.end);
        let line = &raw[pos..end];
        if line.starts_with(b"--") {
            let found = open.iter().enumerate().rev().find_map(|(level, b)| {
                delimiter_kind(line, b).map(|closes| Delimiter { start: pos, end, level, closes })
            });
            if found.is_some() {
                return found;
            }
        }
        pos = end;
    }
    None
}

/// Where the header of a part starting at `range.start` ends at the latest: after its first blank
/// line, or at a delimiter line of a multipart in `open` (a part may lack a blank line, and its
/// header must not run into the next part), or at `range.end`.
///
/// A blank line right before such a delimiter line is ambiguous: its line break may be the
/// delimiter's (RFC 2046 §5.1.1), leaving a header without a blank line and an empty body, or
/// the header's end, when the part is a multipart that reuses the boundary and the line is its
/// own first delimiter. Then the second value is the shorter end, for [`header_end`] to decide.
fn header_limit(raw: &[u8], range: Range<usize>, open: &[Vec<u8>]) -> (usize, Option<usize>) {
    let mut pos = range.start;
    while pos < range.end {
        let end = line_end(raw, pos, range.end);
        if is_delimiter(raw, pos..end, open) {
            // The line break before the delimiter is the delimiter's, as for a body.
            return (line_break_start(raw, range.start, pos), None);
        }
        let line = &raw[pos..end];
        if line == b"\n" || line == b"\r\n" {
            let next = line_end(raw, end, range.end);
            return (end, is_delimiter(raw, end..next, open).then_some(pos));
        }
        pos = end;
    }
    (range.end, None)
}

/// The header fields of a part starting at `range.start` and where its body starts (see
/// [`header_limit`]): the blank line before a delimiter ends the header only when the part is a
/// multipart whose own boundary that delimiter is (Dovecot reads both cases alike).
fn header_end(raw: &[u8], range: Range<usize>, open: &[Vec<u8>]) -> (KnownFields, usize) {
    let (end, short) = header_limit(raw, range.clone(), open);
    let (known, body_start) = KnownFields::scan(raw, range.start..end);
    let Some(short) = short else { return (known, body_start) };
    let own_boundary = known
        .content_type
        .and_then(|f| params::content_type(&f.unfolded(raw)))
        .filter(|ct| ct.kind == b"MULTIPART")
        .and_then(|ct| param(&ct.params, b"BOUNDARY").map(<[u8]>::to_vec));
    let line = &raw[end..line_end(raw, end, range.end)];
    if own_boundary.is_some_and(|b| !b.is_empty() && delimiter_kind(line, &b).is_some()) {
        return (known, body_start);
    }
    KnownFields::scan(raw, range.start..short)
}

/// Whether the line at `line` is a delimiter line of a multipart in `open`.
fn is_delimiter(raw: &[u8], line: Range<usize>, open: &[Vec<u8>]) -> bool {
    let line = &raw[line];
    line.starts_with(b"--") && open.iter().any(|b| delimiter_kind(line, b).is_some())
}

/// Where the line break that ends just before `pos` starts, not going below `floor`.
fn line_break_start(raw: &[u8], floor: usize, pos: usize) -> usize {
    let mut end = pos;
    if end > floor && raw[end - 1] == b'\n' {
        end -= 1;
        if end > floor && raw[end - 1] == b'\r' {
            end -= 1;
        }
    }
    end
}

/// Line count as BODYSTRUCTURE reports it: the line feeds (see [`BodyPart::lines`]).
fn count_lines(body: &[u8]) -> u32 {
    u32::try_from(body.iter().filter(|&&b| b == b'\n').count()).unwrap_or(u32::MAX)
}

/// Offsets fit u32 because `parse` truncates its input to u32::MAX bytes.
fn to_range(r: Range<usize>) -> ByteRange {
    let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    ByteRange { start: clamp(r.start), end: clamp(r.end) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The parts (MIME header and body) of a multipart/mixed with `boundary` and `body`.
    fn split(body: &[u8], boundary: &[u8]) -> Vec<Vec<u8>> {
        let mut raw = b"Content-Type: multipart/mixed; boundary=\"".to_vec();
        raw.extend_from_slice(boundary);
        raw.extend_from_slice(b"\"\r\n\r\n");
        raw.extend_from_slice(body);
        let root = crate::parse(&raw).structure;
        let PartKind::Multipart(children) = root.kind else { return Vec::new() };
        children.iter().map(|c| raw[c.header.start as usize..c.body.end as usize].to_vec()).collect()
    }

    #[test]
    fn delimiters_and_padding() {
        let body = b"preamble\r\n--b \t\r\nA\r\n--b\r\n\r\n--b--junk\r\nepilogue\r\n--b\r\nlost";
        assert_eq!(split(body, b"b"), vec![b"A".to_vec(), Vec::new()]);
        assert!(split(b"no delimiter here\r\n--bx\r\n", b"b").is_empty());
        assert_eq!(split(b"--b\nx\n--b", b"b"), vec![b"x".to_vec(), Vec::new()]);
    }

    /// The children of `part` as `(type/subtype, body bytes)`.
    fn children<'a>(raw: &'a [u8], part: &'a BodyPart) -> Vec<(String, &'a [u8])> {
        let PartKind::Multipart(children) = &part.kind else { panic!("not a multipart: {part:?}") };
        let name = |c: &BodyPart| {
            format!("{}/{}", String::from_utf8_lossy(&c.content_type), String::from_utf8_lossy(&c.subtype))
        };
        children.iter().map(|c| (name(c), c.body.slice(raw))).collect()
    }

    #[test]
    fn nested_multipart_reusing_the_outer_boundary() {
        // Outlook Express style: the alternative inside the mixed has the same boundary. Its
        // delimiters are its own until its close delimiter; the attachments after it are the
        // mixed's parts 2 to 4.
        let raw = b"Content-Type: multipart/mixed; boundary=\"same\"\r\n\r\n\
preamble\r\n\
--same\r\nContent-Type: multipart/alternative; boundary=\"same\"\r\n\r\n\
--same\r\nContent-Type: text/plain\r\n\r\nplain\r\n\
--same\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n\
--same--\r\n\r\n\
--same\r\nContent-Type: application/pdf\r\n\r\nPDF\r\n\
--same\r\nContent-Type: image/png\r\n\r\nPNG\r\n\
--same\r\nContent-Type: text/plain; name=notes.txt\r\n\r\nnotes\r\n\
--same--\r\nepilogue\r\n";
        let root = crate::parse(raw).structure;
        let outer = children(raw, &root);
        let names: Vec<&str> = outer.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["MULTIPART/ALTERNATIVE", "APPLICATION/PDF", "IMAGE/PNG", "TEXT/PLAIN"]);
        assert_eq!(outer[1].1, b"PDF");
        assert_eq!(outer[2].1, b"PNG");
        assert_eq!(outer[3].1, b"notes");
        // The alternative's body runs to the mixed's next delimiter, its epilogue included.
        assert!(
            outer[0].1.starts_with(b"--same\r\n") && outer[0].1.ends_with(b"--same--\r\n"),
            "{:?}",
            String::from_utf8_lossy(outer[0].1)
        );
        let PartKind::Multipart(parts) = &root.kind else { unreachable!() };
        let inner = children(raw, &parts[0]);
        assert_eq!(
            inner,
            vec![("TEXT/PLAIN".to_owned(), &b"plain"[..]), ("TEXT/HTML".to_owned(), &b"<p>html</p>"[..])]
        );
    }

    #[test]
    fn blank_line_before_a_delimiter_is_the_delimiters_line_break() {
        // ...unless the part is a multipart whose own first delimiter follows (see above).
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\n--b\r\n\r\n--b--\r\n";
        let root = crate::parse(raw).structure;
        let PartKind::Multipart(parts) = &root.kind else { panic!("not a multipart") };
        assert_eq!(parts[0].header.slice(raw), b"Content-Type: text/plain\r\n");
        assert_eq!((parts[0].body.len(), parts[1].header.len(), parts[1].body.len()), (0, 0, 0));
    }

    #[test]
    fn outer_delimiter_ends_an_unclosed_inner_multipart() {
        let raw = b"Content-Type: multipart/mixed; boundary=o\r\n\r\n\
--o\r\nContent-Type: multipart/related; boundary=i\r\n\r\n\
--i\r\n\r\none\r\n--i\r\n\r\ntwo\r\n\
--o\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n\
--o\r\n\r\nthree\r\n--o--\r\n\
--o\r\n\r\nfour\r\n\
--o--\r\n";
        let root = crate::parse(raw).structure;
        let outer = children(raw, &root);
        assert_eq!(outer.len(), 3, "{outer:?}");
        assert_eq!(outer[2], ("TEXT/PLAIN".to_owned(), &b"four"[..]));
        let PartKind::Multipart(parts) = &root.kind else { unreachable!() };
        let first = children(raw, &parts[0]);
        assert_eq!(
            first,
            vec![("TEXT/PLAIN".to_owned(), &b"one"[..]), ("TEXT/PLAIN".to_owned(), &b"two"[..])]
        );
        assert_eq!(children(raw, &parts[1]), vec![("TEXT/PLAIN".to_owned(), &b"three"[..])]);
    }

    #[test]
    fn unclosed_inner_multipart_with_the_outer_boundary_keeps_the_rest() {
        // Without its close delimiter, the inner multipart takes every later delimiter: what
        // follows belongs to it, and nothing is lost.
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\n";
        let root = crate::parse(raw).structure;
        assert_eq!(children(raw, &root).len(), 1);
        let PartKind::Multipart(parts) = &root.kind else { unreachable!() };
        assert_eq!(children(raw, &parts[0]).len(), 2);
    }

    #[test]
    fn inner_boundary_extending_the_outer_one() {
        let body = b"--abc\r\nContent-Type: multipart/mixed; boundary=abcdef\r\n\r\n--abcdef\r\nin\r\n--abcdef--\r\n--abc--";
        let parts = split(body, b"abc");
        assert_eq!(parts.len(), 1);
        assert!(parts[0].ends_with(b"--abcdef--"));
    }

    #[test]
    fn line_counts() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a"), 0);
        assert_eq!(count_lines(b"a\r\n"), 1);
        assert_eq!(count_lines(b"a\r\nb"), 1);
        assert_eq!(count_lines(b"\n\n"), 2);
    }
}
