//! MIME structured header values: Content-Type (RFC 2045 §5.1), Content-Disposition (RFC 2183),
//! Content-Transfer-Encoding and Content-Language, with RFC 2231 parameter decoding.
//!
//! Limits: lenient, never fails; at most [`MAX_PARAMS`] parameters per field are kept. Parameter
//! values that are unquoted may contain tspecials such as `=` and `/` (common in boundaries).

use std::borrow::Cow;

use crate::structure::{Disposition, Param};

/// Parameters kept per field; anything beyond is dropped (no real message comes close).
pub(crate) const MAX_PARAMS: usize = 100;

/// Language tags kept per Content-Language field.
const MAX_LANGUAGES: usize = 64;

/// A parsed Content-Type: uppercased type and subtype, and the parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentType {
    pub(crate) kind: Vec<u8>,
    pub(crate) subtype: Vec<u8>,
    pub(crate) params: Vec<Param>,
}

/// Parses an unfolded Content-Type value; None when it has no `type/subtype` (the caller then
/// uses the default, RFC 2045 §5.2).
pub(crate) fn content_type(value: &[u8]) -> Option<ContentType> {
    let mut c = Cursor { s: value, pos: 0 };
    c.skip_cfws();
    let kind = c.token();
    c.skip_cfws();
    if kind.is_empty() || !c.eat(b'/') {
        return None;
    }
    c.skip_cfws();
    let subtype = c.token();
    if subtype.is_empty() {
        return None;
    }
    Some(ContentType {
        kind: kind.to_ascii_uppercase(),
        subtype: subtype.to_ascii_uppercase(),
        params: c.params(),
    })
}

/// Parses an unfolded Content-Disposition value; None without a disposition type.
pub(crate) fn disposition(value: &[u8]) -> Option<Disposition> {
    let mut c = Cursor { s: value, pos: 0 };
    c.skip_cfws();
    let kind = c.token();
    if kind.is_empty() {
        return None;
    }
    Some(Disposition { kind: kind.to_ascii_uppercase(), params: c.params() })
}

/// The Content-Transfer-Encoding mechanism, uppercased; None when the value holds no token.
pub(crate) fn transfer_encoding(value: &[u8]) -> Option<Vec<u8>> {
    let mut c = Cursor { s: value, pos: 0 };
    c.skip_cfws();
    let token = c.token();
    (!token.is_empty()).then(|| token.to_ascii_uppercase())
}

/// The language tags of Content-Language (RFC 3282: a comma-separated list), comments removed.
pub(crate) fn languages(value: &[u8]) -> Vec<Vec<u8>> {
    let mut c = Cursor { s: value, pos: 0 };
    let mut out = Vec::new();
    while out.len() < MAX_LANGUAGES {
        c.skip_cfws();
        if c.at_end() {
            break;
        }
        let tag = c.token();
        if !tag.is_empty() {
            out.push(tag.to_vec());
        } else {
            // A stray special: skip it.
            c.pos += 1;
        }
    }
    out
}

/// A position in a structured value.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skips whitespace and (nested) comments.
    fn skip_cfws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => {
                    let mut depth = 0usize;
                    while let Some(b) = self.peek() {
                        self.pos += 1;
                        match b {
                            b'\\' => self.pos += 1,
                            b'(' => depth += 1,
                            b')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    self.pos = self.pos.min(self.s.len());
                }
                _ => break,
            }
        }
    }

    /// An RFC 2045 token: bytes that are not tspecials, whitespace or controls.
    fn token(&mut self) -> &'a [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b <= b' ' || b == 0x7f || b"()<>@,;:\\\"/[]?=".contains(&b) {
                break;
            }
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// A parameter value: a quoted-string (quotes and escapes removed) or, leniently, a run up to
    /// whitespace, `;`, `(` or `"`.
    fn value(&mut self) -> Vec<u8> {
        if self.eat(b'"') {
            let mut out = Vec::new();
            while let Some(b) = self.peek() {
                self.pos += 1;
                match b {
                    b'"' => break,
                    b'\\' => {
                        if let Some(next) = self.peek() {
                            out.push(next);
                            self.pos += 1;
                        }
                    }
                    // Unfolding may leave a bare CR or LF inside quotes; they are not content.
                    b'\r' | b'\n' => {}
                    _ => out.push(b),
                }
            }
            return out;
        }
        let start = self.pos;
        while let Some(b) = self.peek() {
            if matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b'"') {
                break;
            }
            self.pos += 1;
        }
        self.s[start..self.pos].to_vec()
    }

    /// `*(";" attribute "=" value)`, then RFC 2231 decoding.
    fn params(&mut self) -> Vec<Param> {
        let mut raw = Vec::new();
        while raw.len() < MAX_PARAMS {
            self.skip_cfws();
            if self.at_end() {
                break;
            }
            if !self.eat(b';') {
                // Garbage between parameters: resume at the next `;`.
                match self.s[self.pos..].iter().position(|&b| b == b';') {
                    Some(i) => self.pos += i + 1,
                    None => break,
                }
            }
            self.skip_cfws();
            let name = self.token();
            self.skip_cfws();
            if name.is_empty() || !self.eat(b'=') {
                continue;
            }
            self.skip_cfws();
            let value = self.value();
            raw.push(Param { name: name.to_ascii_uppercase(), value });
        }
        decode_rfc2231(raw)
    }
}

/// How an RFC 2231 parameter name is built: `base`, `base*`, `base*N` or `base*N*`.
struct SectionName<'a> {
    base: &'a [u8],
    section: Option<u32>,
    extended: bool,
}

fn section_name(name: &[u8]) -> Option<SectionName<'_>> {
    let star = name.iter().position(|&b| b == b'*')?;
    let base = &name[..star];
    let rest = &name[star + 1..];
    if base.is_empty() {
        return None;
    }
    if rest.is_empty() {
        return Some(SectionName { base, section: None, extended: true });
    }
    let (digits, extended) = match rest.strip_suffix(b"*") {
        Some(d) => (d, true),
        None => (rest, false),
    };
    if digits.is_empty() || digits.len() > 4 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let section = digits.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    Some(SectionName { base, section: Some(section), extended })
}

/// RFC 9051 §7.5.2: servers SHOULD join RFC 2231 continuations (`baz*0`, `baz*1` → `baz`) and
/// decode extended values to UTF-8 (`foo*0*`, `foo*1*` → `foo*`). Other parameters pass through.
fn decode_rfc2231(raw: Vec<Param>) -> Vec<Param> {
    if !raw.iter().any(|p| p.name.contains(&b'*')) {
        return raw;
    }
    let mut out: Vec<Param> = Vec::with_capacity(raw.len());
    let mut done = vec![false; raw.len()];
    for i in 0..raw.len() {
        if done[i] {
            continue;
        }
        let Some(first) = section_name(&raw[i].name) else {
            done[i] = true;
            out.push(raw[i].clone());
            continue;
        };
        // Gather every section of this base name, in section order; duplicates keep the first.
        let mut sections: Vec<(u32, bool, &[u8])> = Vec::new();
        for (j, p) in raw.iter().enumerate().skip(i) {
            let Some(name) = section_name(&p.name) else { continue };
            if done[j] || name.base != first.base {
                continue;
            }
            done[j] = true;
            let n = name.section.unwrap_or(0);
            if !sections.iter().any(|s| s.0 == n) {
                sections.push((n, name.extended, &p.value));
            }
        }
        sections.sort_by_key(|s| s.0);
        let any_extended = sections.iter().any(|s| s.1);
        let mut charset: &[u8] = b"";
        let mut bytes = Vec::new();
        for (k, &(_, extended, value)) in sections.iter().enumerate() {
            if !extended {
                bytes.extend_from_slice(value);
                continue;
            }
            let mut value = value;
            if k == 0 {
                // RFC 2231 §4: the first extended section is charset'language'value.
                let mut quotes = value.iter().enumerate().filter(|(_, b)| **b == b'\'').map(|(i, _)| i);
                if let (Some(q1), Some(q2)) = (quotes.next(), quotes.next()) {
                    charset = &value[..q1];
                    value = &value[q2 + 1..];
                }
            }
            percent_decode_into(value, &mut bytes);
        }
        let mut name = first.base.to_vec();
        let value = if any_extended {
            name.push(b'*');
            to_utf8(charset, &bytes).into_owned().into_bytes()
        } else {
            bytes
        };
        out.push(Param { name, value });
    }
    out
}

/// RFC 2231 §4: `%XX` is an octet; anything else stands for itself.
fn percent_decode_into(s: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (s.get(i + 1).and_then(hex), s.get(i + 2).and_then(hex))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Converts `bytes` in `charset` to UTF-8; unknown charsets and invalid bytes are replaced lossily.
pub(crate) fn to_utf8<'b>(charset: &[u8], bytes: &'b [u8]) -> Cow<'b, str> {
    let is_utf8_family = charset.is_empty()
        || charset.eq_ignore_ascii_case(b"utf-8")
        || charset.eq_ignore_ascii_case(b"us-ascii");
    if !is_utf8_family && let Some(decode) = mail_parser::decoders::charsets::map::charset_decoder(charset) {
        return Cow::Owned(decode(bytes));
    }
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(name: &str, value: &str) -> Param {
        Param { name: name.as_bytes().to_vec(), value: value.as_bytes().to_vec() }
    }

    #[test]
    fn content_type_basic() {
        let ct = content_type(b"text/plain; charset=us-ascii (Plain text)").unwrap();
        assert_eq!(ct.kind, b"TEXT");
        assert_eq!(ct.subtype, b"PLAIN");
        assert_eq!(ct.params, vec![p("CHARSET", "us-ascii")]);
        let ct = content_type(b"Multipart/Mixed ; boundary=\"simple \\\"boundary\\\"\"").unwrap();
        assert_eq!(ct.subtype, b"MIXED");
        assert_eq!(ct.params, vec![p("BOUNDARY", "simple \"boundary\"")]);
        let ct = content_type(b"multipart/alternative; boundary=----=_Part_0_1.2;x=y").unwrap();
        assert_eq!(ct.params, vec![p("BOUNDARY", "----=_Part_0_1.2"), p("X", "y")]);
    }

    #[test]
    fn content_type_invalid() {
        assert!(content_type(b"").is_none());
        assert!(content_type(b"text").is_none());
        assert!(content_type(b"text/").is_none());
        assert!(content_type(b"/plain").is_none());
        let ct = content_type(b"text/plain; ; junk; a=1; =2; b").unwrap();
        assert_eq!(ct.params, vec![p("A", "1")]);
    }

    #[test]
    fn rfc2231_continuations_and_charsets() {
        // RFC 2231 §3 and §4.1 examples.
        let ct = content_type(
            b"message/external-body; access-type=URL; URL*0=\"ftp://\"; URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"",
        )
        .unwrap();
        assert_eq!(
            ct.params,
            vec![p("ACCESS-TYPE", "URL"), p("URL", "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar")]
        );
        let ct = content_type(
            b"application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
        )
        .unwrap();
        assert_eq!(ct.params, vec![p("TITLE*", "This is even more ***fun*** isn't it!")]);
        let d = disposition(b"attachment; filename*=iso-8859-1''r%E9sum%E9.pdf").unwrap();
        assert_eq!(d.kind, b"ATTACHMENT");
        assert_eq!(d.params, vec![p("FILENAME*", "résumé.pdf")]);
        // Out-of-order sections are put back in order.
        let d = disposition(b"inline; n*1=b; n*0=a").unwrap();
        assert_eq!(d.params, vec![p("N", "ab")]);
    }

    #[test]
    fn other_fields() {
        assert_eq!(transfer_encoding(b" Base64 (comment)"), Some(b"BASE64".to_vec()));
        assert_eq!(transfer_encoding(b" "), None);
        assert_eq!(languages(b"en, de (German) ,fr"), vec![b"en".to_vec(), b"de".to_vec(), b"fr".to_vec()]);
        assert!(disposition(b";x=y").is_none());
    }
}
