//! Tokens every command is built from: words and keywords, numbers, atoms, strings and
//! literals, sequence sets, flags, dates (RFC 9051 §9, RFC 3516, RFC 5182, RFC 7888).

use std::num::{NonZeroU32, NonZeroU64};

use super::{Fail, PResult, Parser};
use crate::datetime::{Date, DateTime};
use crate::seqset::{SeqNum, SeqRange, SeqRanges, SequenceSet};
use crate::types::{Flag, Tag, is_astring_char, is_atom_char, is_tag_char};

/// How a parsed string was transported, for APPEND's literal8 distinction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StringForm {
    Literal,
    Literal8,
}

impl<'a> Parser<'a> {
    // ---- words and keywords -----------------------------------------------------------

    /// A keyword-ish token: letters, digits, `.`, `-`, `_`, `=`. Used for command names,
    /// fetch items, search keys and options, which are then compared case-insensitively.
    pub(super) fn word(&mut self) -> &'a [u8] {
        self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'='))
    }

    /// A word that must be present.
    pub(super) fn word_req(&mut self, what: &'static str) -> PResult<&'a [u8]> {
        let w = self.word();
        if w.is_empty() {
            return self.fail(what);
        }
        Ok(w)
    }

    /// Expects the exact keyword `kw` (case-insensitive) as a whole word.
    pub(super) fn keyword(&mut self, kw: &'static str) -> PResult<()> {
        let start = self.pos;
        let w = self.word();
        if w.eq_ignore_ascii_case(kw.as_bytes()) {
            Ok(())
        } else {
            self.pos = start;
            self.fail(kw)
        }
    }

    /// Consumes the keyword `kw` if it is next as a whole word.
    pub(super) fn eat_keyword(&mut self, kw: &str) -> bool {
        let start = self.pos;
        let w = self.word();
        if w.eq_ignore_ascii_case(kw.as_bytes()) {
            true
        } else {
            self.pos = start;
            false
        }
    }

    // ---- numbers ----------------------------------------------------------------------

    /// `number = 1*DIGIT` (unsigned 32-bit).
    pub(super) fn number(&mut self) -> PResult<u32> {
        let start = self.pos;
        let v = self.number64()?;
        u32::try_from(v).or_else(|_| {
            self.pos = start;
            self.fail("32-bit number")
        })
    }

    /// `number64 = 1*DIGIT` (unsigned 63-bit).
    pub(super) fn number64(&mut self) -> PResult<u64> {
        let start = self.pos;
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return self.fail("number");
        }
        let mut v: u64 = 0;
        for &d in digits {
            v = match v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))) {
                Some(v) if v <= i64::MAX as u64 => v,
                _ => {
                    self.pos = start;
                    return self.fail("number within 63 bits");
                }
            };
        }
        Ok(v)
    }

    /// `nz-number = digit-nz *DIGIT`.
    pub(super) fn nz_number(&mut self) -> PResult<NonZeroU32> {
        let start = self.pos;
        if self.peek() == Some(b'0') {
            return self.fail("non-zero number");
        }
        let v = self.number()?;
        NonZeroU32::new(v).ok_or(Fail { what: "non-zero number", offset: start, verbatim: false })
    }

    /// `mod-sequence-value = 1*DIGIT` (1..=2^63-1).
    pub(super) fn mod_sequence_value(&mut self) -> PResult<NonZeroU64> {
        let start = self.pos;
        let v = self.number64()?;
        NonZeroU64::new(v).ok_or(Fail { what: "non-zero mod-sequence", offset: start, verbatim: false })
    }

    // ---- strings ----------------------------------------------------------------------

    /// `tag = 1*<any ASTRING-CHAR except "+">`
    pub(super) fn tag(&mut self) -> PResult<Tag> {
        let raw = self.take_while(is_tag_char);
        if raw.is_empty() {
            return self.fail("tag");
        }
        Tag::from_bytes(raw).or_else(|_| self.fail("tag"))
    }

    /// `atom = 1*ATOM-CHAR`
    pub(super) fn atom(&mut self) -> PResult<&'a [u8]> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return self.fail("atom");
        }
        Ok(a)
    }

    /// An atom as an (ASCII) String.
    pub(super) fn atom_string(&mut self) -> PResult<String> {
        let a = self.atom()?;
        // Atom characters are ASCII, so this is lossless.
        Ok(String::from_utf8_lossy(a).into_owned())
    }

    /// `string = quoted / literal`
    pub(super) fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(false).map(|(d, _)| d.to_vec()),
            _ => self.fail("string"),
        }
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`;
    /// `QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials / UTF8-2..4`.
    /// 8-bit bytes are accepted as they are; their meaning is for the consumer to check.
    pub(super) fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.byte(b'"', "quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return self.fail("closing quote"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => match self.peek_at(1) {
                    Some(c @ (b'"' | b'\\')) => {
                        out.push(c);
                        self.pos += 2;
                    }
                    _ => {
                        self.pos += 1;
                        return self.fail("quoted-special after backslash");
                    }
                },
                Some(0 | b'\r' | b'\n') => return self.fail("quoted character"),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `literal = "{" number64 ["+"] "}" CRLF *CHAR8` (RFC 9051, RFC 7888);
    /// with `allow8`, also `literal8 = "~{" number64 "}" CRLF *OCTET` (RFC 3516).
    /// Returns the data and its form. NUL is refused in a plain literal unless `allow_nul`.
    pub(super) fn literal_any(&mut self, allow8: bool, allow_nul: bool) -> PResult<(&'a [u8], StringForm)> {
        let form = if self.peek() == Some(b'~') {
            if !allow8 {
                return self.fail("string (literal8 not allowed here)");
            }
            self.pos += 1;
            StringForm::Literal8
        } else {
            StringForm::Literal
        };
        self.byte(b'{', "literal")?;
        let len = self.number64()?;
        self.eat(b'+');
        self.byte(b'}', "'}'")?;
        self.byte(b'\r', "CRLF after literal length")?;
        self.byte(b'\n', "CRLF after literal length")?;
        let avail = self.input.len() - self.pos;
        let len = match usize::try_from(len) {
            Ok(n) if n <= avail => n,
            _ => return self.fail("literal data (command truncated)"),
        };
        let data = &self.input[self.pos..self.pos + len];
        if form == StringForm::Literal && !allow_nul && data.contains(&0) {
            return self.fail("literal without NUL");
        }
        self.pos += len;
        Ok((data, form))
    }

    fn literal(&mut self, allow8: bool) -> PResult<(&'a [u8], StringForm)> {
        self.literal_any(allow8, false)
    }

    /// `astring = 1*ASTRING-CHAR / string`
    pub(super) fn astring(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    return self.fail("astring");
                }
                Ok(a.to_vec())
            }
        }
    }

    /// `nstring = string / nil`
    pub(super) fn nstring(&mut self) -> PResult<Option<Vec<u8>>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string().map(Some),
            _ => {
                self.keyword("NIL")?;
                Ok(None)
            }
        }
    }

    // ---- sets, flags, dates -----------------------------------------------------------

    /// `seq-number = nz-number / "*"`
    fn seq_number(&mut self) -> PResult<SeqNum> {
        if self.eat(b'*') {
            return Ok(SeqNum::Star);
        }
        self.nz_number().map(SeqNum::Value)
    }

    /// `sequence-set = (seq-number / seq-range) ["," sequence-set]`;
    /// `seq-range = seq-number ":" seq-number`; `sequence-set =/ "$"` (RFC 5182).
    pub(super) fn sequence_set(&mut self) -> PResult<SequenceSet> {
        if self.eat(b'$') {
            return Ok(SequenceSet::Saved);
        }
        let mut items = Vec::new();
        loop {
            let a = self.seq_number()?;
            if self.eat(b':') {
                let b = self.seq_number()?;
                items.push(SeqRange::Range(a, b));
            } else {
                items.push(SeqRange::Single(a));
            }
            if !self.eat(b',') {
                break;
            }
        }
        match SeqRanges::new(items) {
            Some(r) => Ok(SequenceSet::Ranges(r)),
            None => self.fail("sequence set"),
        }
    }

    /// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
    /// flag-extension`; `flag-extension = "\" atom`; `flag-keyword = atom`.
    pub(super) fn flag(&mut self) -> PResult<Flag> {
        if self.eat(b'\\') {
            let name = self.atom_string()?;
            return Ok(Flag::system(&name));
        }
        self.atom_string().map(Flag::Keyword)
    }

    /// `flag-list = "(" [flag *(SP flag)] ")"`
    pub(super) fn flag_list(&mut self) -> PResult<Vec<Flag>> {
        self.byte(b'(', "'(' of flag list")?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    /// `date-month = "Jan" / ... / "Dec"`
    fn month(&mut self) -> PResult<u8> {
        let m = self.input.get(self.pos..self.pos + 3).unwrap_or(b"");
        let idx = crate::datetime::MONTHS.iter().position(|name| name.as_bytes().eq_ignore_ascii_case(m));
        match idx {
            Some(i) => {
                self.pos += 3;
                // i < 12.
                Ok(i as u8 + 1)
            }
            None => self.fail("month name"),
        }
    }

    /// Exactly `n` digits as a number.
    fn fixed_digits(&mut self, n: usize, what: &'static str) -> PResult<u32> {
        let d = self.input.get(self.pos..self.pos + n).unwrap_or(b"");
        if d.len() != n || !d.iter().all(u8::is_ascii_digit) {
            return self.fail(what);
        }
        self.pos += n;
        Ok(d.iter().fold(0u32, |a, &c| a * 10 + u32::from(c - b'0')))
    }

    /// `date = date-text / DQUOTE date-text DQUOTE`;
    /// `date-text = date-day "-" date-month "-" date-year`; `date-day = 1*2DIGIT`.
    pub(super) fn date(&mut self) -> PResult<Date> {
        let quoted = self.eat(b'"');
        let start = self.pos;
        let day = self.take_while(|b| b.is_ascii_digit());
        if day.is_empty() || day.len() > 2 {
            self.pos = start;
            return self.fail("day of month");
        }
        let day = day.iter().fold(0u8, |a, &c| a * 10 + (c - b'0'));
        self.byte(b'-', "'-' in date")?;
        let month = self.month()?;
        self.byte(b'-', "'-' in date")?;
        let year = self.fixed_digits(4, "4-digit year")?;
        if quoted {
            self.byte(b'"', "closing quote of date")?;
        }
        // A 4-digit year is < 10000, so it fits u16.
        Date::new(year as u16, month, day).or_else(|_| {
            self.pos = start;
            self.fail("valid calendar date")
        })
    }

    /// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`;
    /// `date-day-fixed = (SP DIGIT) / 2DIGIT`; `time = 2DIGIT ":" 2DIGIT ":" 2DIGIT`;
    /// `zone = ("+" / "-") 4DIGIT`. A single-digit day without the space is also accepted.
    pub(super) fn date_time(&mut self) -> PResult<DateTime> {
        self.byte(b'"', "date-time")?;
        let start = self.pos;
        self.eat(b' ');
        let day = self.take_while(|b| b.is_ascii_digit());
        if day.is_empty() || day.len() > 2 {
            self.pos = start;
            return self.fail("day of month");
        }
        let day = day.iter().fold(0u8, |a, &c| a * 10 + (c - b'0'));
        self.byte(b'-', "'-' in date-time")?;
        let month = self.month()?;
        self.byte(b'-', "'-' in date-time")?;
        let year = self.fixed_digits(4, "4-digit year")?;
        self.sp()?;
        let h = self.fixed_digits(2, "hour")?;
        self.byte(b':', "':' in time")?;
        let m = self.fixed_digits(2, "minute")?;
        self.byte(b':', "':' in time")?;
        let s = self.fixed_digits(2, "second")?;
        self.sp()?;
        let sign: i16 = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return self.fail("zone sign"),
        };
        self.pos += 1;
        let zone = self.fixed_digits(4, "4-digit zone")?;
        self.byte(b'"', "closing quote of date-time")?;
        let (zh, zm) = (zone / 100, zone % 100);
        if zm > 59 {
            return self.fail("zone minutes below 60");
        }
        // zone <= 9999, so zh*60+zm fits i16 comfortably.
        let offset = sign * (zh * 60 + zm) as i16;
        let date = Date::new(year as u16, month, day).or_else(|_| self.fail("valid date"))?;
        // h, m, s are two digits each (< 100), so they fit u8.
        DateTime::from_civil(date, h as u8, m as u8, s as u8, offset)
            .or_else(|_| self.fail("valid date-time"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::parse::tests::set;

    #[test]
    fn sequence_sets() {
        let s = set("2,4:7,9,12:*");
        assert_eq!(s.resolve(15).unwrap().to_string(), "2,4:7,9,12:15");
        let s = set("*:4,5:7");
        assert_eq!(s.resolve(10).unwrap().to_string(), "4:10");
        assert_eq!(set("$"), SequenceSet::Saved);
    }
}
