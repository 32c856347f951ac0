//! Splitting a header block (RFC 5322 §2.2) into fields, without copying.
//!
//! Limits: lenient by design. A line that is neither a field (`name:`), a continuation (starts with
//! WSP) nor blank is skipped when the header still has a blank line ahead and at least one field
//! (a broken fold or a stray line must not cut the header: the fields after it would turn
//! into body text); otherwise it ends the header without a blank line and the body starts at that
//! line. A line starting with `--` is never skipped (it may be a boundary delimiter). Bare LF is
//! accepted as a line ending everywhere, as real mail has it.

use std::ops::Range;

/// One header field: absolute offsets into the raw message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    /// First byte of the field name.
    pub(crate) start: usize,
    /// End of the field name (trailing WSP before the colon excluded).
    pub(crate) name_end: usize,
    /// First byte after the colon.
    pub(crate) value_start: usize,
    /// One past the field's last line ending (or the header's limit if it has none).
    pub(crate) end: usize,
}

impl Field {
    /// The field name as sent.
    pub(crate) fn name<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        &raw[self.start..self.name_end]
    }

    /// The raw value: from after the colon to the end of the field, line endings included.
    pub(crate) fn raw_value<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        &raw[self.value_start..self.end]
    }

    /// The whole field as sent, name and final line ending included.
    pub(crate) fn bytes<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        &raw[self.start..self.end]
    }

    /// The value unfolded (RFC 5322 §2.2.3) and trimmed of surrounding whitespace.
    pub(crate) fn unfolded(&self, raw: &[u8]) -> Vec<u8> {
        unfold(self.raw_value(raw))
    }
}

/// Iterates the fields of the header that starts at `pos`, stopping at `limit`.
///
/// After the iterator returns None, [`Fields::body_start`] tells where the body begins.
#[derive(Debug, Clone)]
pub(crate) struct Fields<'r> {
    raw: &'r [u8],
    pos: usize,
    limit: usize,
    body_start: Option<usize>,
    /// A field was returned already.
    seen_field: bool,
    /// Whether lines that are not fields are skipped; decided at the first such line.
    skip_garbage: Option<bool>,
}

impl<'r> Fields<'r> {
    /// Fields of the header occupying (at most) `range` of `raw`.
    pub(crate) fn new(raw: &'r [u8], range: Range<usize>) -> Self {
        let limit = range.end.min(raw.len());
        Fields {
            raw,
            pos: range.start.min(limit),
            limit,
            body_start: None,
            seen_field: false,
            skip_garbage: None,
        }
    }

    /// Where the body starts (after the blank line, if any). Runs the iterator to its end first.
    pub(crate) fn body_start(&mut self) -> usize {
        while self.next().is_some() {}
        self.body_start.unwrap_or(self.limit)
    }

    /// One past the `\n` that ends the line starting at `pos`, or the limit.
    fn line_end(&self, pos: usize) -> usize {
        match self.raw[pos..self.limit].iter().position(|&b| b == b'\n') {
            Some(i) => pos + i + 1,
            None => self.limit,
        }
    }

    /// Whether a line that is not a field, starting at `pos`, belongs to the header: a blank line
    /// follows before the limit, no `--` line comes before it, and the header has a field (before
    /// or after `pos`). RFC 5322 §2.1 ends the header at the blank line; this keeps the fields
    /// after a broken line (a fold without leading WSP, say) instead of turning them into body.
    fn garbage_is_header(&self, pos: usize) -> bool {
        let raw = self.raw;
        let mut field = self.seen_field;
        let mut p = pos;
        while p < self.limit {
            let end = self.line_end(p);
            let line = &raw[p..end];
            if line == b"\n" || line == b"\r\n" {
                return field;
            }
            if line.starts_with(b"--") {
                return false;
            }
            field |= !is_wsp(line[0]) && line.contains(&b':');
            p = end;
        }
        false
    }

    fn finish(&mut self, body_start: usize) -> Option<Field> {
        self.body_start = Some(body_start);
        self.pos = self.limit;
        None
    }
}

impl Iterator for Fields<'_> {
    type Item = Field;

    fn next(&mut self) -> Option<Field> {
        loop {
            if self.body_start.is_some() {
                return None;
            }
            let p = self.pos;
            if p >= self.limit {
                return self.finish(self.limit);
            }
            let raw = self.raw;
            // RFC 5322 §2.1: the header ends at the first empty line (CRLF; bare LF tolerated).
            match raw[p] {
                b'\n' => return self.finish(p + 1),
                b'\r' if p + 1 >= self.limit || raw[p + 1] == b'\n' => {
                    return self.finish((p + 2).min(self.limit));
                }
                b' ' | b'\t' => {
                    // A continuation line with no field before it: skip it.
                    self.pos = self.line_end(p);
                    continue;
                }
                _ => {}
            }
            let first_end = self.line_end(p);
            let Some(colon) = raw[p..first_end].iter().position(|&b| b == b':') else {
                // Not a header line: skipped inside a header that goes on (the decision is made
                // once: the blank line it relies on is still ahead for every later line), else
                // the header ends here, without a blank line.
                let skip = match self.skip_garbage {
                    Some(skip) => skip,
                    None => *self.skip_garbage.insert(self.garbage_is_header(p)),
                };
                if skip && !raw[p..first_end].starts_with(b"--") {
                    self.pos = first_end;
                    continue;
                }
                return self.finish(p);
            };
            let colon = p + colon;
            let mut name_end = colon;
            while name_end > p && matches!(raw[name_end - 1], b' ' | b'\t') {
                name_end -= 1;
            }
            // RFC 5322 §2.2.3: a field continues on lines that start with WSP.
            let mut end = first_end;
            while end < self.limit && matches!(raw[end], b' ' | b'\t') {
                end = self.line_end(end);
            }
            self.pos = end;
            self.seen_field = true;
            return Some(Field { start: p, name_end, value_start: colon + 1, end });
        }
    }
}

/// The fields the summary looks at: the first occurrence of each, and every occurrence of the
/// destination fields and Reply-To.
///
/// RFC 5322 §3.6 allows each of these at most once. When a message repeats one, the first wins,
/// except for To, Cc and Bcc, whose address lists RFC 5322 §4.5.3 says to combine, and Reply-To,
/// which Dovecot combines too (a reply should reach every address the sender listed). From and
/// Sender keep their first occurrence: they name the author, not recipients.
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownFields {
    pub(crate) date: Option<Field>,
    pub(crate) subject: Option<Field>,
    pub(crate) from: Option<Field>,
    pub(crate) sender: Option<Field>,
    pub(crate) reply_to: Vec<Field>,
    pub(crate) to: Vec<Field>,
    pub(crate) cc: Vec<Field>,
    pub(crate) bcc: Vec<Field>,
    pub(crate) in_reply_to: Option<Field>,
    pub(crate) message_id: Option<Field>,
    pub(crate) references: Option<Field>,
    pub(crate) content_type: Option<Field>,
    pub(crate) content_transfer_encoding: Option<Field>,
    pub(crate) content_id: Option<Field>,
    pub(crate) content_description: Option<Field>,
    pub(crate) content_md5: Option<Field>,
    pub(crate) content_disposition: Option<Field>,
    pub(crate) content_language: Option<Field>,
    pub(crate) content_location: Option<Field>,
}

impl KnownFields {
    /// Reads the header at `range`; returns the known fields and where the body starts.
    pub(crate) fn scan(raw: &[u8], range: Range<usize>) -> (KnownFields, usize) {
        let mut known = KnownFields::default();
        let mut fields = Fields::new(raw, range);
        for field in fields.by_ref() {
            let name = field.name(raw);
            let all = match name.len() {
                2 if name.eq_ignore_ascii_case(b"to") => Some(&mut known.to),
                2 if name.eq_ignore_ascii_case(b"cc") => Some(&mut known.cc),
                3 if name.eq_ignore_ascii_case(b"bcc") => Some(&mut known.bcc),
                8 if name.eq_ignore_ascii_case(b"reply-to") => Some(&mut known.reply_to),
                _ => None,
            };
            if let Some(all) = all {
                all.push(field);
                continue;
            }
            let slot = match name.len() {
                4 if name.eq_ignore_ascii_case(b"date") => &mut known.date,
                4 if name.eq_ignore_ascii_case(b"from") => &mut known.from,
                6 if name.eq_ignore_ascii_case(b"sender") => &mut known.sender,
                7 if name.eq_ignore_ascii_case(b"subject") => &mut known.subject,
                10 if name.eq_ignore_ascii_case(b"message-id") => &mut known.message_id,
                10 if name.eq_ignore_ascii_case(b"references") => &mut known.references,
                10 if name.eq_ignore_ascii_case(b"content-id") => &mut known.content_id,
                11 if name.eq_ignore_ascii_case(b"in-reply-to") => &mut known.in_reply_to,
                11 if name.eq_ignore_ascii_case(b"content-md5") => &mut known.content_md5,
                12 if name.eq_ignore_ascii_case(b"content-type") => &mut known.content_type,
                16 if name.eq_ignore_ascii_case(b"content-language") => &mut known.content_language,
                16 if name.eq_ignore_ascii_case(b"content-location") => &mut known.content_location,
                19 if name.eq_ignore_ascii_case(b"content-description") => &mut known.content_description,
                19 if name.eq_ignore_ascii_case(b"content-disposition") => &mut known.content_disposition,
                25 if name.eq_ignore_ascii_case(b"content-transfer-encoding") => {
                    &mut known.content_transfer_encoding
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(field);
            }
        }
        let body_start = fields.body_start();
        (known, body_start)
    }
}

/// Unfolds a raw field value: removes every line ending followed by WSP (RFC 5322 §2.2.3) and the
/// final line ending, then trims surrounding WSP.
pub(crate) fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'\r' if value.get(i + 1) == Some(&b'\n') => i += 2,
            b'\n' => i += 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let start = out.iter().position(|b| !is_wsp(*b)).unwrap_or(out.len());
    let end = out.iter().rposition(|b| !is_wsp(*b)).map_or(start, |e| e + 1);
    out.truncate(end);
    out.drain(..start);
    out
}

/// SP or HTAB.
pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(raw: &[u8]) -> (Vec<Vec<u8>>, usize) {
        let mut it = Fields::new(raw, 0..raw.len());
        let names = it.by_ref().map(|f| f.name(raw).to_vec()).collect();
        (names, it.body_start())
    }

    #[test]
    fn splits_fields_and_finds_body() {
        let raw = b"From: a\r\nSubject: b\r\n  c\r\n\r\nbody";
        let (n, body) = names(raw);
        assert_eq!(n, vec![b"From".to_vec(), b"Subject".to_vec()]);
        assert_eq!(&raw[body..], b"body");
    }

    #[test]
    fn bare_lf_and_name_whitespace() {
        let raw = b"Subject : x\nTo: y\n\nbody\n";
        let mut it = Fields::new(raw, 0..raw.len());
        let f = it.next().unwrap();
        assert_eq!(f.name(raw), b"Subject");
        assert_eq!(f.unfolded(raw), b"x");
        assert!(it.next().is_some());
        assert_eq!(&raw[it.body_start()..], b"body\n");
    }

    #[test]
    fn header_without_blank_line() {
        let raw = b"Subject: x\r\n";
        assert_eq!(names(raw).1, raw.len());
        let raw = b"Subject: x";
        let mut it = Fields::new(raw, 0..raw.len());
        assert_eq!(it.next().unwrap().unfolded(raw), b"x");
        assert_eq!(it.body_start(), raw.len());
        // A line that is not a field ends the header when no blank line follows; the body
        // starts there.
        let raw = b"Subject: x\nhello world\n";
        assert_eq!(names(raw).1, 11);
        let raw = b"Subject: x\nhello world\n--b\n\nbody";
        assert_eq!(names(raw).1, 11);
    }

    #[test]
    fn broken_lines_inside_a_header_are_skipped() {
        // RFC 5322 §2.1: the blank line ends the header; a broken fold does not.
        let raw = b"Received: from a\r\n(using TLS)\r\nby b\r\nSubject: s\r\n\r\nbody";
        let (n, body) = names(raw);
        assert_eq!(n, vec![b"Received".to_vec(), b"Subject".to_vec()]);
        assert_eq!(&raw[body..], b"body");
        // A stray line before the first field.
        let raw = b"garbage\nFrom: a@b\n\nbody";
        let (n, body) = names(raw);
        assert_eq!(n, vec![b"From".to_vec()]);
        assert_eq!(&raw[body..], b"body");
        // No field at all before the blank line: not a header, all body.
        let raw = b"just text\n folded\n\nmore";
        assert_eq!(names(raw), (vec![], 0));
        // A delimiter-like line is never swallowed, even with a blank line further on.
        let raw = b"A: 1\nnot a field\n--b\nB: 2\n\nx";
        assert_eq!(names(raw).1, 5);
    }

    #[test]
    fn empty_header() {
        assert_eq!(names(b"\r\nbody").1, 2);
        assert_eq!(names(b"").1, 0);
        assert_eq!(names(b"\r").1, 1);
    }

    #[test]
    fn limit_is_respected() {
        let raw = b"A: 1\r\nB: 2\r\n\r\n";
        let mut it = Fields::new(raw, 0..8);
        let f = it.next().unwrap();
        assert_eq!(f.bytes(raw), b"A: 1\r\n");
        let f = it.next().unwrap();
        assert_eq!(f.bytes(raw), b"B:");
        assert_eq!(it.body_start(), 8);
    }

    #[test]
    fn unfolding() {
        assert_eq!(unfold(b" a\r\n b\r\n"), b"a b");
        assert_eq!(unfold(b"\ta\n\tb\n"), b"a\tb");
        assert_eq!(unfold(b"   \r\n"), b"");
    }
}
