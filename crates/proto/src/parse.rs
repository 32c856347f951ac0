//! The command parser: one framed command → [`Command`] (RFC 9051 §9 and extensions).
//!
//! Hand-written recursive descent over bytes; each parser function carries its ABNF rule.
//! Keywords are case-insensitive (RFC 9051 §9 note 1), SP is exactly one space (note 2).
//! Input is one command as produced by [`crate::Framer`]: literals inline as `{n}\r\n<bytes>`
//! (also `{n+}`, and `~{n}` where literal8 is allowed), final CRLF stripped.
//!
//! Limits: recursion (search keys) is bounded by [`MAX_NESTING`]; every other loop consumes
//! input, so work and memory are linear in the input. The parser never panics.
//! Not supported (answered with BAD): CATENATE, generic tagged-ext parameters of unknown
//! extensions, SORT/THREAD, ACL, METADATA, NOTIFY.

use std::num::{NonZeroU32, NonZeroU64};

use crate::datetime::{Date, DateTime};
use crate::seqset::{SeqNum, SeqRange, SeqRanges, SequenceSet};
use crate::types::{
    AppendMessage, Command, CommandBody, CommandKind, EntryType, FetchAttribute, FetchItems, FetchModifiers,
    Flag, ListCommand, ListPattern, ListReturnOption, ListSelectOption, MailboxName, Partial, QresyncParams,
    SearchKey, SearchReturn, Secret, Section, SectionText, SelectParams, SortCriterion, SortKey, SpecialUse,
    StatusItem, StoreAction, StoreOp, Tag, ThreadAlgorithm, is_astring_char, is_atom_char, is_tag_char,
};

/// Deepest nesting of parenthesised search keys / NOT / OR we accept before giving up; stops
/// a hostile client from exhausting the stack.
pub const MAX_NESTING: usize = 64;

/// A command could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub struct ParseError {
    /// The command's tag if it could be read: answer `tag BAD`, else `* BAD`.
    pub tag: Option<Tag>,
    /// What was expected where; plain ASCII without CR/LF.
    pub message: String,
    /// Byte offset in the input where parsing failed.
    pub offset: usize,
}

/// Parses one complete command as produced by [`crate::Framer`].
pub fn parse_command(input: &[u8]) -> Result<Command, ParseError> {
    let mut p = Parser { input, pos: 0, depth: 0 };
    let tag = match p.tag() {
        Ok(t) => t,
        Err(f) => {
            return Err(ParseError { tag: None, message: f.message(), offset: f.offset });
        }
    };
    let body = p.sp().and_then(|()| p.command_body()).and_then(|b| {
        p.end()?;
        Ok(b)
    });
    match body {
        Ok(body) => Ok(Command { tag, body }),
        Err(f) => Err(ParseError { tag: Some(tag), message: f.message(), offset: f.offset }),
    }
}

/// An internal failure: what was expected, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fail {
    what: &'static str,
    offset: usize,
    /// True when `what` is a complete message rather than the name of an expected thing.
    verbatim: bool,
}

impl Fail {
    fn message(&self) -> String {
        if self.verbatim { self.what.to_string() } else { format!("expected {}", self.what) }
    }
}

type PResult<T> = Result<T, Fail>;

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    /// Current search-key nesting.
    depth: usize,
}

/// How a parsed string was transported, for APPEND's literal8 distinction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringForm {
    Literal,
    Literal8,
}

impl<'a> Parser<'a> {
    // ---- low-level helpers ------------------------------------------------------------

    fn fail<T>(&self, what: &'static str) -> PResult<T> {
        Err(Fail { what, offset: self.pos, verbatim: false })
    }

    fn fail_msg<T>(&self, msg: &'static str) -> PResult<T> {
        Err(Fail { what: msg, offset: self.pos, verbatim: true })
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.input.get(self.pos + ahead).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn end(&self) -> PResult<()> {
        if self.at_end() { Ok(()) } else { self.fail("end of command") }
    }

    fn byte(&mut self, b: u8, what: &'static str) -> PResult<()> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(what)
        }
    }

    /// `SP`: exactly one space.
    fn sp(&mut self) -> PResult<()> {
        self.byte(b' ', "SP")
    }

    /// Consumes `b` if it is next.
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes bytes while `f` holds; returns them.
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if !f(b) {
                break;
            }
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    /// A keyword-ish token: letters, digits, `.`, `-`, `_`, `=`. Used for command names,
    /// fetch items, search keys and options, which are then compared case-insensitively.
    fn word(&mut self) -> &'a [u8] {
        self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'='))
    }

    /// A word that must be present.
    fn word_req(&mut self, what: &'static str) -> PResult<&'a [u8]> {
        let w = self.word();
        if w.is_empty() {
            return self.fail(what);
        }
        Ok(w)
    }

    /// Expects the exact keyword `kw` (case-insensitive) as a whole word.
    fn keyword(&mut self, kw: &'static str) -> PResult<()> {
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
    fn eat_keyword(&mut self, kw: &str) -> bool {
        let start = self.pos;
        let w = self.word();
        if w.eq_ignore_ascii_case(kw.as_bytes()) {
            true
        } else {
            self.pos = start;
            false
        }
    }

    // ---- numbers ---------------------------------------------------------------------

    /// `number = 1*DIGIT` (unsigned 32-bit).
    fn number(&mut self) -> PResult<u32> {
        let start = self.pos;
        let v = self.number64()?;
        u32::try_from(v).or_else(|_| {
            self.pos = start;
            self.fail("32-bit number")
        })
    }

    /// `number64 = 1*DIGIT` (unsigned 63-bit).
    fn number64(&mut self) -> PResult<u64> {
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
    fn nz_number(&mut self) -> PResult<NonZeroU32> {
        let start = self.pos;
        if self.peek() == Some(b'0') {
            return self.fail("non-zero number");
        }
        let v = self.number()?;
        NonZeroU32::new(v).ok_or(Fail { what: "non-zero number", offset: start, verbatim: false })
    }

    /// `mod-sequence-value = 1*DIGIT` (1..=2^63-1).
    fn mod_sequence_value(&mut self) -> PResult<NonZeroU64> {
        let start = self.pos;
        let v = self.number64()?;
        NonZeroU64::new(v).ok_or(Fail { what: "non-zero mod-sequence", offset: start, verbatim: false })
    }

    // ---- strings ---------------------------------------------------------------------

    /// `tag = 1*<any ASTRING-CHAR except "+">`
    fn tag(&mut self) -> PResult<Tag> {
        let raw = self.take_while(is_tag_char);
        if raw.is_empty() {
            return self.fail("tag");
        }
        Tag::from_bytes(raw).or_else(|_| self.fail("tag"))
    }

    /// `atom = 1*ATOM-CHAR`
    fn atom(&mut self) -> PResult<&'a [u8]> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return self.fail("atom");
        }
        Ok(a)
    }

    /// An atom as an (ASCII) String.
    fn atom_string(&mut self) -> PResult<String> {
        let a = self.atom()?;
        // Atom characters are ASCII, so this is lossless.
        Ok(String::from_utf8_lossy(a).into_owned())
    }

    /// `string = quoted / literal`
    fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(false).map(|(d, _)| d.to_vec()),
            _ => self.fail("string"),
        }
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`;
    /// `QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials / UTF8-2..4`.
    /// 8-bit bytes are accepted as they are; their meaning is for the consumer to check.
    fn quoted(&mut self) -> PResult<Vec<u8>> {
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
    fn literal_any(&mut self, allow8: bool, allow_nul: bool) -> PResult<(&'a [u8], StringForm)> {
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
    fn astring(&mut self) -> PResult<Vec<u8>> {
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
    fn nstring(&mut self) -> PResult<Option<Vec<u8>>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string().map(Some),
            _ => {
                self.keyword("NIL")?;
                Ok(None)
            }
        }
    }

    /// `mailbox = "INBOX" / astring` (INBOX normalisation happens in [`MailboxName::decode`]).
    fn mailbox(&mut self) -> PResult<MailboxName> {
        self.astring().map(MailboxName::new)
    }

    /// `list-mailbox = 1*list-char / string`; `list-char = ATOM-CHAR / list-wildcards /
    /// resp-specials`.
    fn list_mailbox(&mut self) -> PResult<ListPattern> {
        match self.peek() {
            Some(b'"' | b'{') => self.string().map(ListPattern::new),
            _ => {
                let a = self.take_while(|b| is_astring_char(b) || b == b'%' || b == b'*');
                if a.is_empty() {
                    return self.fail("list-mailbox");
                }
                Ok(ListPattern::new(a))
            }
        }
    }

    // ---- sets, flags, dates ----------------------------------------------------------

    /// `seq-number = nz-number / "*"`
    fn seq_number(&mut self) -> PResult<SeqNum> {
        if self.eat(b'*') {
            return Ok(SeqNum::Star);
        }
        self.nz_number().map(SeqNum::Value)
    }

    /// `sequence-set = (seq-number / seq-range) ["," sequence-set]`;
    /// `seq-range = seq-number ":" seq-number`; `sequence-set =/ "$"` (RFC 5182).
    fn sequence_set(&mut self) -> PResult<SequenceSet> {
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
    fn flag(&mut self) -> PResult<Flag> {
        if self.eat(b'\\') {
            let name = self.atom_string()?;
            return Ok(Flag::system(&name));
        }
        self.atom_string().map(Flag::Keyword)
    }

    /// `flag-list = "(" [flag *(SP flag)] ")"`
    fn flag_list(&mut self) -> PResult<Vec<Flag>> {
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
    fn date(&mut self) -> PResult<Date> {
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
    fn date_time(&mut self) -> PResult<DateTime> {
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

    // ---- commands --------------------------------------------------------------------

    /// `command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF`
    fn command_body(&mut self) -> PResult<CommandBody> {
        let name = self.word_req("command name")?;
        let upper = name.to_ascii_uppercase();
        Ok(match upper.as_slice() {
            b"CAPABILITY" => CommandBody::Capability,
            b"NOOP" => CommandBody::Noop,
            b"LOGOUT" => CommandBody::Logout,
            b"STARTTLS" => CommandBody::StartTls,
            b"NAMESPACE" => CommandBody::Namespace,
            b"IDLE" => CommandBody::Idle,
            b"CHECK" => CommandBody::Check,
            b"CLOSE" => CommandBody::Close,
            b"UNSELECT" => CommandBody::Unselect,
            b"EXPUNGE" => CommandBody::Expunge { uids: None },
            b"AUTHENTICATE" => self.authenticate()?,
            b"LOGIN" => self.login()?,
            b"ENABLE" => self.enable()?,
            b"SELECT" => {
                let (mailbox, params) = self.select()?;
                CommandBody::Select { mailbox, params }
            }
            b"EXAMINE" => {
                let (mailbox, params) = self.select()?;
                CommandBody::Examine { mailbox, params }
            }
            b"CREATE" => self.create()?,
            b"DELETE" => {
                self.sp()?;
                CommandBody::Delete(self.mailbox()?)
            }
            b"RENAME" => {
                self.sp()?;
                let from = self.mailbox()?;
                self.sp()?;
                let to = self.mailbox()?;
                CommandBody::Rename { from, to }
            }
            b"SUBSCRIBE" => {
                self.sp()?;
                CommandBody::Subscribe(self.mailbox()?)
            }
            b"UNSUBSCRIBE" => {
                self.sp()?;
                CommandBody::Unsubscribe(self.mailbox()?)
            }
            b"LIST" => self.list()?,
            b"LSUB" => {
                self.sp()?;
                let reference = self.mailbox()?;
                self.sp()?;
                let pattern = self.list_mailbox()?;
                CommandBody::Lsub { reference, pattern }
            }
            b"STATUS" => self.status()?,
            b"APPEND" => self.append()?,
            b"SEARCH" => self.search(CommandKind::Seq)?,
            b"SORT" => self.sort(CommandKind::Seq)?,
            b"THREAD" => self.thread(CommandKind::Seq)?,
            b"FETCH" => self.fetch(CommandKind::Seq)?,
            b"STORE" => self.store(CommandKind::Seq)?,
            b"COPY" => self.copy_move(CommandKind::Seq, false)?,
            b"MOVE" => self.copy_move(CommandKind::Seq, true)?,
            b"UID" => self.uid()?,
            b"ID" => self.id()?,
            _ => {
                self.pos -= name.len();
                return self.fail_msg("unknown command");
            }
        })
    }

    /// `uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)`;
    /// `uid-expunge = "EXPUNGE" SP sequence-set`
    fn uid(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let name = self.word_req("UID command")?;
        let upper = name.to_ascii_uppercase();
        match upper.as_slice() {
            b"SEARCH" => self.search(CommandKind::Uid),
            b"SORT" => self.sort(CommandKind::Uid),
            b"THREAD" => self.thread(CommandKind::Uid),
            b"FETCH" => self.fetch(CommandKind::Uid),
            b"STORE" => self.store(CommandKind::Uid),
            b"COPY" => self.copy_move(CommandKind::Uid, false),
            b"MOVE" => self.copy_move(CommandKind::Uid, true),
            b"EXPUNGE" => {
                self.sp()?;
                Ok(CommandBody::Expunge { uids: Some(self.sequence_set()?) })
            }
            _ => {
                self.pos -= name.len();
                self.fail("COPY, MOVE, FETCH, SEARCH, SORT, THREAD, STORE or EXPUNGE after UID")
            }
        }
    }

    /// `authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]`;
    /// `initial-resp = (base64 / "=")` (RFC 4959).
    fn authenticate(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mech = self.atom_string()?.to_ascii_uppercase();
        let mut initial_response = None;
        if self.eat(b' ') {
            let ir = self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
            if ir.is_empty() {
                return self.fail("base64 initial response or '='");
            }
            initial_response = Some(Secret::new(ir.to_vec()));
        }
        Ok(CommandBody::Authenticate { mechanism: mech, initial_response })
    }

    /// `login = "LOGIN" SP userid SP password`; `userid = astring`; `password = astring`
    fn login(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let username = self.astring()?;
        self.sp()?;
        let password = Secret::new(self.astring()?);
        Ok(CommandBody::Login { username, password })
    }

    /// `enable = "ENABLE" 1*(SP capability)` (RFC 5161)
    fn enable(&mut self) -> PResult<CommandBody> {
        let mut caps = Vec::new();
        loop {
            self.sp()?;
            caps.push(self.atom_string()?.to_ascii_uppercase());
            if self.at_end() {
                return Ok(CommandBody::Enable(caps));
            }
        }
    }

    /// `select = "SELECT" SP mailbox [select-params]` (RFC 4466);
    /// `select-params = SP "(" select-param *(SP select-param) ")"`;
    /// `select-param =/ "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
    ///  [SP known-uids] [SP seq-match-data] ")"` (RFC 7162 §7).
    fn select(&mut self) -> PResult<(MailboxName, SelectParams)> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut params = SelectParams::default();
        if !self.eat(b' ') {
            return Ok((mailbox, params));
        }
        self.byte(b'(', "'(' of select parameters")?;
        if self.eat(b')') {
            return Ok((mailbox, params));
        }
        loop {
            let start = self.pos;
            let name = self.word_req("select parameter")?;
            if name.eq_ignore_ascii_case(b"CONDSTORE") {
                params.condstore = true;
            } else if name.eq_ignore_ascii_case(b"QRESYNC") {
                self.sp()?;
                params.qresync = Some(self.qresync()?);
            } else {
                self.pos = start;
                return self.fail("CONDSTORE or QRESYNC");
            }
            if self.eat(b')') {
                return Ok((mailbox, params));
            }
            self.sp()?;
        }
    }

    /// The parenthesised part of `"QRESYNC" SP "(" ... ")"`;
    /// `seq-match-data = "(" known-sequence-set SP known-uid-set ")"`.
    fn qresync(&mut self) -> PResult<QresyncParams> {
        self.byte(b'(', "'(' of QRESYNC parameters")?;
        let uidvalidity = self.nz_number()?;
        self.sp()?;
        let modseq = self.mod_sequence_value()?;
        let mut known_uids = None;
        let mut seq_match = None;
        if self.eat(b' ') {
            if self.peek() == Some(b'(') {
                seq_match = Some(self.seq_match()?);
            } else {
                known_uids = Some(self.sequence_set()?);
                if self.eat(b' ') {
                    seq_match = Some(self.seq_match()?);
                }
            }
        }
        self.byte(b')', "')' of QRESYNC parameters")?;
        Ok(QresyncParams { uidvalidity, modseq, known_uids, seq_match })
    }

    fn seq_match(&mut self) -> PResult<(SequenceSet, SequenceSet)> {
        self.byte(b'(', "'(' of seq-match-data")?;
        let seqs = self.sequence_set()?;
        self.sp()?;
        let uids = self.sequence_set()?;
        self.byte(b')', "')' of seq-match-data")?;
        Ok((seqs, uids))
    }

    /// `create = "CREATE" SP mailbox [create-params]` (RFC 4466);
    /// `create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"` (RFC 6154 §6).
    fn create(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut special_use = Vec::new();
        if self.eat(b' ') {
            self.byte(b'(', "'(' of create parameters")?;
            loop {
                self.keyword("USE")?;
                self.sp()?;
                self.byte(b'(', "'(' of USE")?;
                if !self.eat(b')') {
                    loop {
                        self.byte(b'\\', "special-use attribute")?;
                        let name = self.atom_string()?;
                        special_use.push(SpecialUse::from_name(&name));
                        if self.eat(b')') {
                            break;
                        }
                        self.sp()?;
                    }
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::Create { mailbox, special_use })
    }

    /// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`;
    /// `mbox-or-pat = list-mailbox / patterns`;
    /// `patterns = "(" list-mailbox *(SP list-mailbox) ")"` (RFC 5258 §6).
    fn list(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mut selection = Vec::new();
        if self.peek() == Some(b'(') {
            selection = self.list_select_opts()?;
            self.sp()?;
        }
        let reference = self.mailbox()?;
        self.sp()?;
        let mut patterns = Vec::new();
        if self.eat(b'(') {
            loop {
                patterns.push(self.list_mailbox()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else {
            patterns.push(self.list_mailbox()?);
        }
        let mut return_opts = Vec::new();
        if self.eat(b' ') {
            return_opts = self.list_return_opts()?;
        }
        Ok(CommandBody::List(ListCommand { selection, reference, patterns, return_opts }))
    }

    /// `list-select-opts = "(" [list-select-opt *(SP list-select-opt)] ")"`, where
    /// RECURSIVEMATCH needs a base option (SUBSCRIBED) too (RFC 5258 §6).
    fn list_select_opts(&mut self) -> PResult<Vec<ListSelectOption>> {
        self.byte(b'(', "'(' of selection options")?;
        let mut opts = Vec::new();
        if !self.eat(b')') {
            loop {
                let start = self.pos;
                let w = self.word_req("selection option")?.to_ascii_uppercase();
                let opt = match w.as_slice() {
                    b"SUBSCRIBED" => ListSelectOption::Subscribed,
                    b"REMOTE" => ListSelectOption::Remote,
                    b"RECURSIVEMATCH" => ListSelectOption::RecursiveMatch,
                    b"SPECIAL-USE" => ListSelectOption::SpecialUse,
                    _ => {
                        // RFC 5258 §3: unrecognised selection options get BAD.
                        self.pos = start;
                        return self.fail("SUBSCRIBED, REMOTE, RECURSIVEMATCH or SPECIAL-USE");
                    }
                };
                opts.push(opt);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        // RFC 5258 §3: RECURSIVEMATCH alone (without a base option) is a syntax error.
        if opts.contains(&ListSelectOption::RecursiveMatch) && !opts.contains(&ListSelectOption::Subscribed) {
            return self.fail_msg("RECURSIVEMATCH requires SUBSCRIBED");
        }
        Ok(opts)
    }

    /// `list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"`;
    /// `return-option = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" / status-option`.
    fn list_return_opts(&mut self) -> PResult<Vec<ListReturnOption>> {
        self.keyword("RETURN")?;
        self.sp()?;
        self.byte(b'(', "'(' of return options")?;
        let mut opts = Vec::new();
        if self.eat(b')') {
            return Ok(opts);
        }
        loop {
            let start = self.pos;
            let w = self.word_req("return option")?.to_ascii_uppercase();
            let opt = match w.as_slice() {
                b"SUBSCRIBED" => ListReturnOption::Subscribed,
                b"CHILDREN" => ListReturnOption::Children,
                b"SPECIAL-USE" => ListReturnOption::SpecialUse,
                b"STATUS" => {
                    self.sp()?;
                    ListReturnOption::Status(self.status_atts()?)
                }
                _ => {
                    self.pos = start;
                    return self.fail("SUBSCRIBED, CHILDREN, SPECIAL-USE or STATUS");
                }
            };
            opts.push(opt);
            if self.eat(b')') {
                return Ok(opts);
            }
            self.sp()?;
        }
    }

    /// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"`
    fn status(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let items = self.status_atts()?;
        Ok(CommandBody::Status { mailbox, items })
    }

    /// `"(" status-att *(SP status-att) ")"`
    fn status_atts(&mut self) -> PResult<Vec<StatusItem>> {
        self.byte(b'(', "'(' of status items")?;
        let mut items = Vec::new();
        loop {
            let start = self.pos;
            let w = self.word_req("status item")?;
            match StatusItem::from_name(w) {
                Some(i) => items.push(i),
                None => {
                    self.pos = start;
                    return self.fail("status item");
                }
            }
            if self.eat(b')') {
                return Ok(items);
            }
            self.sp()?;
        }
    }

    /// `append = "APPEND" SP mailbox 1*append-message` (RFC 3502, RFC 4466);
    /// `append-message = [SP flag-list] [SP date-time] SP append-data`;
    /// `append-data = literal / literal8 / utf8-literal` with
    /// `utf8-literal = "UTF8" SP "(" literal8 ")"` (RFC 6855 §4).
    fn append(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut messages = Vec::new();
        loop {
            self.sp()?;
            let mut flags = Vec::new();
            if self.peek() == Some(b'(') {
                flags = self.flag_list()?;
                self.sp()?;
            }
            let mut date = None;
            if self.peek() == Some(b'"') {
                date = Some(self.date_time()?);
                self.sp()?;
            }
            let utf8 =
                self.input.get(self.pos..self.pos + 5).is_some_and(|w| w.eq_ignore_ascii_case(b"UTF8 "));
            if utf8 {
                self.pos += 5;
                self.byte(b'(', "'(' before the UTF8 message literal")?;
                if self.peek() != Some(b'~') {
                    return self.fail("literal8 in UTF8 (...)");
                }
            } else if !matches!(self.peek(), Some(b'{' | b'~')) {
                return self.fail("message literal");
            }
            // NUL is tolerated in a plain literal here: messages are stored as received and
            // the session may refuse them; literal8 is the proper way to send them.
            let (data, form) = self.literal_any(true, true)?;
            if utf8 {
                self.byte(b')', "')' after the UTF8 message literal")?;
            }
            messages.push(AppendMessage {
                flags,
                date,
                data: data.to_vec(),
                binary: form == StringForm::Literal8,
            });
            if self.at_end() {
                return Ok(CommandBody::Append { mailbox, messages });
            }
        }
    }

    /// `copy = "COPY" SP sequence-set SP mailbox`; `move = "MOVE" SP sequence-set SP mailbox`
    fn copy_move(&mut self, kind: CommandKind, is_move: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mailbox = self.mailbox()?;
        Ok(if is_move {
            CommandBody::Move { kind, set, mailbox }
        } else {
            CommandBody::Copy { kind, set, mailbox }
        })
    }

    /// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags`;
    /// `store-modifiers = SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"` (RFC 7162);
    /// `store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))`
    fn store(&mut self, kind: CommandKind) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.eat(b'(') {
            self.keyword("UNCHANGEDSINCE")?;
            self.sp()?;
            unchanged_since = Some(self.number64()?);
            self.byte(b')', "')' of store modifiers")?;
            self.sp()?;
        }
        let op = if self.eat(b'+') {
            StoreOp::Add
        } else if self.eat(b'-') {
            StoreOp::Remove
        } else {
            StoreOp::Replace
        };
        let start = self.pos;
        let w = self.word_req("FLAGS or FLAGS.SILENT")?;
        let silent = if w.eq_ignore_ascii_case(b"FLAGS") {
            false
        } else if w.eq_ignore_ascii_case(b"FLAGS.SILENT") {
            true
        } else {
            self.pos = start;
            return self.fail("FLAGS or FLAGS.SILENT");
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(CommandBody::Store { kind, set, action: StoreAction { op, silent, flags }, unchanged_since })
    }

    /// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    /// "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]` (RFC 9051, RFC 4466);
    /// `fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"`.
    fn fetch(&mut self, kind: CommandKind) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let items = if self.eat(b'(') {
            let mut atts = Vec::new();
            loop {
                atts.push(self.fetch_att()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
            FetchItems::Attributes(atts)
        } else {
            let start = self.pos;
            let w = self.word();
            if w.eq_ignore_ascii_case(b"ALL") {
                FetchItems::All
            } else if w.eq_ignore_ascii_case(b"FAST") {
                FetchItems::Fast
            } else if w.eq_ignore_ascii_case(b"FULL") {
                FetchItems::Full
            } else {
                self.pos = start;
                FetchItems::Attributes(vec![self.fetch_att()?])
            }
        };
        let mut modifiers = FetchModifiers::default();
        if self.eat(b' ') {
            self.byte(b'(', "'(' of fetch modifiers")?;
            loop {
                let start = self.pos;
                let w = self.word_req("fetch modifier")?;
                if w.eq_ignore_ascii_case(b"CHANGEDSINCE") {
                    self.sp()?;
                    modifiers.changed_since = Some(self.mod_sequence_value()?.get());
                } else if w.eq_ignore_ascii_case(b"VANISHED") {
                    modifiers.vanished = true;
                } else {
                    self.pos = start;
                    return self.fail("CHANGEDSINCE or VANISHED");
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::Fetch { kind, set, items, modifiers })
    }

    /// `fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822" [".HEADER" / ".SIZE" /
    /// ".TEXT"] / "BODY" ["STRUCTURE"] / "UID" / "BODY" section [partial] /
    /// "BODY.PEEK" section [partial] / "BINARY" [".PEEK"] section-binary [partial] /
    /// "BINARY.SIZE" section-binary / "MODSEQ" / "EMAILID" / "THREADID" / "SAVEDATE" /
    /// "PREVIEW" [SP "(" "LAZY" ")"]`
    fn fetch_att(&mut self) -> PResult<FetchAttribute> {
        use FetchAttribute as A;
        let start = self.pos;
        let w = self.word_req("fetch attribute")?.to_ascii_uppercase();
        Ok(match w.as_slice() {
            b"ENVELOPE" => A::Envelope,
            b"FLAGS" => A::Flags,
            b"INTERNALDATE" => A::InternalDate,
            b"RFC822" => A::Rfc822,
            b"RFC822.HEADER" => A::Rfc822Header,
            b"RFC822.SIZE" => A::Rfc822Size,
            b"RFC822.TEXT" => A::Rfc822Text,
            b"BODYSTRUCTURE" => A::BodyStructure,
            b"UID" => A::Uid,
            b"MODSEQ" => A::ModSeq,
            b"EMAILID" => A::EmailId,
            b"THREADID" => A::ThreadId,
            b"SAVEDATE" => A::SaveDate,
            b"BODY" | b"BODY.PEEK" => {
                let peek = w.len() > 4;
                if self.peek() != Some(b'[') {
                    if peek {
                        return self.fail("'[' after BODY.PEEK");
                    }
                    return Ok(A::Body);
                }
                let section = self.section()?;
                let partial = self.partial()?;
                A::BodySection { peek, section, partial }
            }
            b"BINARY" | b"BINARY.PEEK" => {
                let peek = w.len() > 6;
                let section = self.section()?;
                let partial = self.partial()?;
                A::Binary { peek, section, partial }
            }
            b"BINARY.SIZE" => A::BinarySize { section: self.section()? },
            b"PREVIEW" => {
                // RFC 8970 §6: `PREVIEW (LAZY)`. Look ahead so that a following fetch
                // modifier list like `(CHANGEDSINCE 1)` is not taken for preview modifiers.
                let rest = &self.input[self.pos..];
                let lazy = rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b" (LAZY)");
                if lazy {
                    self.pos += 7;
                }
                A::Preview { lazy }
            }
            _ => {
                self.pos = start;
                return self.fail("fetch attribute");
            }
        })
    }

    /// `section = "[" [section-spec] "]"`;
    /// `section-spec = section-msgtext / (section-part ["." section-text])`;
    /// `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`;
    /// `section-text = section-msgtext / "MIME"`; `section-part = nz-number *("." nz-number)`.
    fn section(&mut self) -> PResult<Section> {
        self.byte(b'[', "'[' of section")?;
        let mut section = Section::default();
        if self.eat(b']') {
            return Ok(section);
        }
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            loop {
                section.part.push(self.nz_number()?);
                if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                    continue;
                }
                break;
            }
            if self.eat(b']') {
                return Ok(section);
            }
            self.byte(b'.', "'.' or ']' in section")?;
        }
        let start = self.pos;
        // Section text words contain dots (HEADER.FIELDS.NOT), so read letters and dots.
        let w = self.take_while(|b| b.is_ascii_alphabetic() || b == b'.').to_ascii_uppercase();
        section.text = Some(match w.as_slice() {
            b"HEADER" => SectionText::Header,
            b"TEXT" => SectionText::Text,
            b"MIME" if !section.part.is_empty() => SectionText::Mime,
            b"HEADER.FIELDS" => {
                self.sp()?;
                SectionText::HeaderFields(self.header_list()?)
            }
            b"HEADER.FIELDS.NOT" => {
                self.sp()?;
                SectionText::HeaderFieldsNot(self.header_list()?)
            }
            _ => {
                self.pos = start;
                return self.fail("HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME");
            }
        });
        self.byte(b']', "']' of section")?;
        Ok(section)
    }

    /// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`;
    /// `header-fld-name = astring` (kept only if UTF-8; field names are ASCII).
    fn header_list(&mut self) -> PResult<Vec<String>> {
        self.byte(b'(', "'(' of header list")?;
        let mut names = Vec::new();
        loop {
            let start = self.pos;
            let raw = self.astring()?;
            match String::from_utf8(raw) {
                Ok(s) => names.push(s),
                Err(_) => {
                    self.pos = start;
                    return self.fail("ASCII header field name");
                }
            }
            if self.eat(b')') {
                return Ok(names);
            }
            self.sp()?;
        }
    }

    /// `partial = "<" number64 "." nz-number64 ">"` (offsets beyond 32 bits are refused).
    fn partial(&mut self) -> PResult<Option<Partial>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let offset = self.number()?;
        self.byte(b'.', "'.' in partial")?;
        let length = self.nz_number()?;
        self.byte(b'>', "'>' of partial")?;
        Ok(Some(Partial { offset, length }))
    }

    /// `search = "SEARCH" [search-return-opts] SP search-program`;
    /// `search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"`;
    /// `search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)`.
    fn search(&mut self, kind: CommandKind) -> PResult<CommandBody> {
        self.sp()?;
        let mut return_opts = None;
        if self.eat_keyword("RETURN") {
            self.sp()?;
            return_opts = Some(self.search_return_opts()?);
            self.sp()?;
        }
        let mut charset = None;
        if self.eat_keyword("CHARSET") {
            self.sp()?;
            // `charset = atom / quoted`
            let cs = if self.peek() == Some(b'"') { self.quoted()? } else { self.atom()?.to_vec() };
            charset = Some(String::from_utf8_lossy(&cs).into_owned());
            self.sp()?;
        }
        let mut criteria = vec![self.search_key()?];
        while self.eat(b' ') {
            criteria.push(self.search_key()?);
        }
        Ok(CommandBody::Search { kind, charset, return_opts, criteria })
    }

    /// `sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria SP search-criteria`
    /// (RFC 5256 §5, RFC 5267 §5); `sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"`;
    /// `search-criteria = charset 1*(SP search-key)`.
    fn sort(&mut self, kind: CommandKind) -> PResult<CommandBody> {
        self.sp()?;
        let mut return_opts = None;
        if self.eat_keyword("RETURN") {
            self.sp()?;
            return_opts = Some(self.search_return_opts()?);
            self.sp()?;
        }
        self.byte(b'(', "'(' of sort criteria")?;
        let mut criteria = Vec::new();
        loop {
            let reverse = self.eat_keyword("REVERSE");
            if reverse {
                self.sp()?;
            }
            let start = self.pos;
            let w = self.word_req("sort key")?.to_ascii_uppercase();
            let key = match w.as_slice() {
                b"ARRIVAL" => SortKey::Arrival,
                b"CC" => SortKey::Cc,
                b"DATE" => SortKey::Date,
                b"FROM" => SortKey::From,
                b"SIZE" => SortKey::Size,
                b"SUBJECT" => SortKey::Subject,
                b"TO" => SortKey::To,
                b"DISPLAYFROM" => SortKey::DisplayFrom,
                b"DISPLAYTO" => SortKey::DisplayTo,
                _ => {
                    self.pos = start;
                    return self.fail("sort key");
                }
            };
            criteria.push(SortCriterion { reverse, key });
            if self.eat(b')') {
                break;
            }
            self.sp()?;
        }
        self.sp()?;
        let charset = self.charset()?;
        let search = self.search_keys()?;
        Ok(CommandBody::Sort { kind, return_opts, criteria, charset, search })
    }

    /// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria` (RFC 5256 §5);
    /// `thread-alg = "ORDEREDSUBJECT" / "REFERENCES"`.
    fn thread(&mut self, kind: CommandKind) -> PResult<CommandBody> {
        self.sp()?;
        let start = self.pos;
        let w = self.word_req("threading algorithm")?.to_ascii_uppercase();
        let algorithm = match w.as_slice() {
            b"ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            b"REFERENCES" => ThreadAlgorithm::References,
            _ => {
                self.pos = start;
                return self.fail("ORDEREDSUBJECT or REFERENCES");
            }
        };
        self.sp()?;
        let charset = self.charset()?;
        let search = self.search_keys()?;
        Ok(CommandBody::Thread { kind, algorithm, charset, search })
    }

    /// `charset = atom / quoted`
    fn charset(&mut self) -> PResult<String> {
        let cs = if self.peek() == Some(b'"') { self.quoted()? } else { self.atom()?.to_vec() };
        Ok(String::from_utf8_lossy(&cs).into_owned())
    }

    /// `1*(SP search-key)`, the SP before the first included.
    fn search_keys(&mut self) -> PResult<Vec<SearchKey>> {
        let mut keys = Vec::new();
        while self.eat(b' ') {
            keys.push(self.search_key()?);
        }
        if keys.is_empty() {
            return self.fail("SP and a search key");
        }
        Ok(keys)
    }

    /// `"(" [search-return-opt *(SP search-return-opt)] ")"`;
    /// `search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE"` (RFC 4731, RFC 5182).
    fn search_return_opts(&mut self) -> PResult<Vec<SearchReturn>> {
        self.byte(b'(', "'(' of return options")?;
        let mut opts = Vec::new();
        if self.eat(b')') {
            return Ok(opts);
        }
        loop {
            let start = self.pos;
            let w = self.word_req("search return option")?.to_ascii_uppercase();
            opts.push(match w.as_slice() {
                b"MIN" => SearchReturn::Min,
                b"MAX" => SearchReturn::Max,
                b"ALL" => SearchReturn::All,
                b"COUNT" => SearchReturn::Count,
                b"SAVE" => SearchReturn::Save,
                _ => {
                    self.pos = start;
                    return self.fail("MIN, MAX, ALL, COUNT or SAVE");
                }
            });
            if self.eat(b')') {
                return Ok(opts);
            }
            self.sp()?;
        }
    }

    /// `search-key` of RFC 9051 §9 plus RFC 3501 (NEW, OLD, RECENT), RFC 7162 (MODSEQ),
    /// RFC 5032 (OLDER, YOUNGER) and RFC 5182 (`$`). Nesting is bounded by [`MAX_NESTING`].
    fn search_key(&mut self) -> PResult<SearchKey> {
        if self.depth >= MAX_NESTING {
            return self.fail_msg("search criteria nested too deeply");
        }
        self.depth += 1;
        let r = self.search_key_inner();
        self.depth -= 1;
        r
    }

    fn search_key_inner(&mut self) -> PResult<SearchKey> {
        use SearchKey as K;
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let mut keys = vec![self.search_key()?];
                while self.eat(b' ') {
                    keys.push(self.search_key()?);
                }
                self.byte(b')', "')' or SP in search key list")?;
                return Ok(K::And(keys));
            }
            Some(b'0'..=b'9' | b'*' | b'$') => return self.sequence_set().map(K::SequenceSet),
            _ => {}
        }
        let start = self.pos;
        let w = self.word_req("search key")?.to_ascii_uppercase();
        Ok(match w.as_slice() {
            b"ALL" => K::All,
            b"ANSWERED" => K::Answered,
            b"DELETED" => K::Deleted,
            b"DRAFT" => K::Draft,
            b"FLAGGED" => K::Flagged,
            b"NEW" => K::New,
            b"OLD" => K::Old,
            b"RECENT" => K::Recent,
            b"SEEN" => K::Seen,
            b"UNANSWERED" => K::Unanswered,
            b"UNDELETED" => K::Undeleted,
            b"UNDRAFT" => K::Undraft,
            b"UNFLAGGED" => K::Unflagged,
            b"UNSEEN" => K::Unseen,
            b"BCC" => K::Bcc(self.sp_astring()?),
            b"BODY" => K::Body(self.sp_astring()?),
            b"CC" => K::Cc(self.sp_astring()?),
            b"FROM" => K::From(self.sp_astring()?),
            b"SUBJECT" => K::Subject(self.sp_astring()?),
            b"TEXT" => K::Text(self.sp_astring()?),
            b"TO" => K::To(self.sp_astring()?),
            b"HEADER" => {
                let name = self.sp_astring()?;
                K::Header(name, self.sp_astring()?)
            }
            b"BEFORE" => K::Before(self.sp_date()?),
            b"ON" => K::On(self.sp_date()?),
            b"SINCE" => K::Since(self.sp_date()?),
            b"SENTBEFORE" => K::SentBefore(self.sp_date()?),
            b"SENTON" => K::SentOn(self.sp_date()?),
            b"SENTSINCE" => K::SentSince(self.sp_date()?),
            b"KEYWORD" => {
                self.sp()?;
                K::Keyword(self.flag()?)
            }
            b"UNKEYWORD" => {
                self.sp()?;
                K::Unkeyword(self.flag()?)
            }
            b"LARGER" => {
                self.sp()?;
                K::Larger(self.number64()?)
            }
            b"SMALLER" => {
                self.sp()?;
                K::Smaller(self.number64()?)
            }
            b"UID" => {
                self.sp()?;
                K::Uid(self.sequence_set()?)
            }
            b"NOT" => {
                self.sp()?;
                K::Not(Box::new(self.search_key()?))
            }
            b"OR" => {
                self.sp()?;
                let a = self.search_key()?;
                self.sp()?;
                let b = self.search_key()?;
                K::Or(Box::new(a), Box::new(b))
            }
            b"OLDER" => {
                self.sp()?;
                K::Older(self.nz_number()?)
            }
            b"YOUNGER" => {
                self.sp()?;
                K::Younger(self.nz_number()?)
            }
            b"MODSEQ" => self.search_modseq()?,
            b"SAVEDBEFORE" => K::SavedBefore(self.sp_date()?),
            b"SAVEDON" => K::SavedOn(self.sp_date()?),
            b"SAVEDSINCE" => K::SavedSince(self.sp_date()?),
            b"SAVEDATESUPPORTED" => K::SaveDateSupported,
            b"EMAILID" => {
                self.sp()?;
                K::EmailId(self.objectid()?)
            }
            b"THREADID" => {
                self.sp()?;
                K::ThreadId(self.objectid()?)
            }
            _ => {
                self.pos = start;
                return self.fail("search key");
            }
        })
    }

    /// `search-modsequence = "MODSEQ" [SP entry-name SP entry-type-req] SP
    /// mod-sequence-valzer` (RFC 7162 §7); `entry-type-req = "priv" / "shared" / "all"`.
    fn search_modseq(&mut self) -> PResult<SearchKey> {
        self.sp()?;
        let mut entry = None;
        if self.peek() == Some(b'"') {
            let name = self.quoted()?;
            self.sp()?;
            let start = self.pos;
            let t = self.word_req("entry type")?;
            let ty = if t.eq_ignore_ascii_case(b"priv") {
                EntryType::Private
            } else if t.eq_ignore_ascii_case(b"shared") {
                EntryType::Shared
            } else if t.eq_ignore_ascii_case(b"all") {
                EntryType::All
            } else {
                self.pos = start;
                return self.fail("priv, shared or all");
            };
            entry = Some((name, ty));
            self.sp()?;
        }
        let modseq = self.number64()?;
        Ok(SearchKey::ModSeq { entry, modseq })
    }

    fn sp_astring(&mut self) -> PResult<Vec<u8>> {
        self.sp()?;
        self.astring()
    }

    /// `objectid = 1*255(ALPHA / DIGIT / "_" / "-")` (RFC 8474 §7).
    fn objectid(&mut self) -> PResult<String> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            self.pos += 1;
        }
        let len = self.pos - start;
        if len == 0 || len > 255 {
            self.pos = start;
            return self.fail("object id (1-255 letters, digits, '_' or '-')");
        }
        Ok(String::from_utf8_lossy(&self.input[start..self.pos]).into_owned())
    }

    fn sp_date(&mut self) -> PResult<Date> {
        self.sp()?;
        self.date()
    }

    /// `id = "ID" SP id_params_list`;
    /// `id_params_list = "(" #(string SP nstring) ")" / nil` (RFC 2971 §4).
    fn id(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        if !self.eat(b'(') {
            self.keyword("NIL")?;
            return Ok(CommandBody::Id(None));
        }
        let mut params = Vec::new();
        if self.eat(b')') {
            return Ok(CommandBody::Id(Some(params)));
        }
        loop {
            let key = self.string()?;
            self.sp()?;
            let value = self.nstring()?;
            params.push((
                String::from_utf8_lossy(&key).into_owned(),
                value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            ));
            if self.eat(b')') {
                return Ok(CommandBody::Id(Some(params)));
            }
            self.sp()?;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Command {
        match parse_command(s.as_bytes()) {
            Ok(c) => c,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    fn body(s: &str) -> CommandBody {
        ok(s).body
    }

    fn err(s: &[u8]) -> ParseError {
        match parse_command(s) {
            Ok(c) => panic!("{:?} parsed as {c:?}", String::from_utf8_lossy(s)),
            Err(e) => e,
        }
    }

    fn set(s: &str) -> SequenceSet {
        let mut p = Parser { input: s.as_bytes(), pos: 0, depth: 0 };
        let r = p.sequence_set().unwrap();
        assert!(p.at_end());
        r
    }

    #[test]
    fn sort_and_thread_rfc5256() {
        use SearchKey as K;
        // RFC 5256 §3 examples.
        match body("A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994") {
            CommandBody::Sort { kind, return_opts, criteria, charset, search } => {
                assert_eq!(kind, CommandKind::Seq);
                assert_eq!(return_opts, None);
                assert_eq!(criteria, vec![SortCriterion { reverse: false, key: SortKey::Subject }]);
                assert_eq!(charset, "UTF-8");
                assert!(matches!(search.as_slice(), [K::Since(_)]));
            }
            other => panic!("{other:?}"),
        }
        match body("A283 UID sort (SUBJECT REVERSE DATE displayfrom) \"US-ASCII\" TEXT \"x\" ALL") {
            CommandBody::Sort { kind, criteria, charset, search, .. } => {
                assert_eq!(kind, CommandKind::Uid);
                assert_eq!(
                    criteria,
                    vec![
                        SortCriterion { reverse: false, key: SortKey::Subject },
                        SortCriterion { reverse: true, key: SortKey::Date },
                        SortCriterion { reverse: false, key: SortKey::DisplayFrom },
                    ]
                );
                assert_eq!(charset, "US-ASCII");
                assert_eq!(search, vec![K::Text(b"x".to_vec()), K::All]);
            }
            other => panic!("{other:?}"),
        }
        // RFC 5267 §3.3: ESORT return options.
        match body("B1 UID SORT RETURN (MIN COUNT) (REVERSE ARRIVAL) UTF-8 UNDELETED") {
            CommandBody::Sort { return_opts, criteria, .. } => {
                assert_eq!(return_opts, Some(vec![SearchReturn::Min, SearchReturn::Count]));
                assert_eq!(criteria, vec![SortCriterion { reverse: true, key: SortKey::Arrival }]);
            }
            other => panic!("{other:?}"),
        }
        match body("A285 THREAD REFERENCES UTF-8 SINCE 5-MAR-2000") {
            CommandBody::Thread { kind, algorithm, charset, search } => {
                assert_eq!((kind, algorithm), (CommandKind::Seq, ThreadAlgorithm::References));
                assert_eq!(charset, "UTF-8");
                assert_eq!(search.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            body("t UID THREAD orderedsubject US-ASCII TEXT \"gewp\""),
            CommandBody::Thread { kind: CommandKind::Uid, algorithm: ThreadAlgorithm::OrderedSubject, .. }
        ));
        assert_eq!(ok("A284 SORT (SUBJECT) US-ASCII TEXT \"x\"").body.name(), "SORT");
        // The charset is mandatory, criteria and keys may not be empty.
        err(b"a SORT (SUBJECT) ALL");
        err(b"a SORT () UTF-8 ALL");
        err(b"a SORT (SUBJECT) UTF-8");
        err(b"a SORT (NAME) UTF-8 ALL");
        err(b"a SORT (REVERSE) UTF-8 ALL");
        err(b"a THREAD XYZ UTF-8 ALL");
        err(b"a THREAD REFERENCES UTF-8");
    }

    #[test]
    fn simple_commands() {
        assert_eq!(ok("a1 CAPABILITY").tag.as_str(), "a1");
        assert_eq!(body("a noop"), CommandBody::Noop);
        assert_eq!(body("a LOGOUT"), CommandBody::Logout);
        assert_eq!(body("a StartTLS"), CommandBody::StartTls);
        assert_eq!(body("a IDLE"), CommandBody::Idle);
        assert_eq!(body("a UNSELECT"), CommandBody::Unselect);
        assert_eq!(body("a EXPUNGE"), CommandBody::Expunge { uids: None });
        assert_eq!(body("a UID EXPUNGE 3000:3002"), CommandBody::Expunge { uids: Some(set("3000:3002")) });
    }

    #[test]
    fn errors_carry_tag_and_position() {
        let e = err(b"a1 FROB");
        assert_eq!(e.tag, Some(Tag::new("a1").unwrap()));
        assert_eq!(e.message, "unknown command");
        assert_eq!(e.offset, 3);
        let e = err(b"+ NOOP");
        assert_eq!(e.tag, None);
        let e = err(b"a1 NOOP extra");
        assert_eq!(e.message, "expected end of command");
        assert!(err(b"").tag.is_none());
        assert!(err(b"a1").tag.is_some());
        assert!(err(b"a1  NOOP").message.contains("command name"));
    }

    #[test]
    fn login_and_authenticate() {
        match body("a001 LOGIN SMITH SESAME") {
            CommandBody::Login { username, password } => {
                assert_eq!(username, b"SMITH");
                assert_eq!(password.expose_secret(), b"SESAME");
            }
            b => panic!("{b:?}"),
        }
        match body("a LOGIN {4}\r\nfr\"d \"p\\\\w\"") {
            CommandBody::Login { username, password } => {
                assert_eq!(username, b"fr\"d");
                assert_eq!(password.expose_secret(), b"p\\w");
            }
            b => panic!("{b:?}"),
        }
        assert_eq!(
            body("A01 AUTHENTICATE plain"),
            CommandBody::Authenticate { mechanism: "PLAIN".into(), initial_response: None }
        );
        match body("A01 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=") {
            CommandBody::Authenticate { initial_response: Some(ir), .. } => {
                assert_eq!(ir.expose_secret(), b"dGVzdAB0ZXN0AHRlc3Q=")
            }
            b => panic!("{b:?}"),
        }
        assert!(matches!(
            body("A01 AUTHENTICATE PLAIN ="),
            CommandBody::Authenticate { initial_response: Some(_), .. }
        ));
        assert!(parse_command(b"a LOGIN {3}\r\nab").is_err());
        assert!(parse_command(b"a LOGIN {3}\r\na\0b x").is_err());
    }

    #[test]
    fn select_with_qresync() {
        match body("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))") {
            CommandBody::Select { mailbox, params } => {
                assert_eq!(mailbox.as_bytes(), b"INBOX");
                let q = params.qresync.unwrap();
                assert_eq!(q.uidvalidity.get(), 67_890_007);
                assert_eq!(q.modseq.get(), 20_050_715_194_045_000);
                assert_eq!(q.known_uids, Some(set("41,43:211,214:541")));
                assert!(q.seq_match.is_none());
            }
            b => panic!("{b:?}"),
        }
        match body(
            "B02 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
        ) {
            CommandBody::Select { params, .. } => {
                let (s, u) = params.qresync.unwrap().seq_match.unwrap();
                assert_eq!(s, set("5000,7500,9000,9990:9999"));
                assert!(matches!(u, SequenceSet::Ranges(r) if r.items().len() == 13));
            }
            b => panic!("{b:?}"),
        }
        match body("a examine \"Sent\" (CONDSTORE)") {
            CommandBody::Examine { mailbox, params } => {
                assert_eq!(mailbox.as_bytes(), b"Sent");
                assert!(params.condstore);
            }
            b => panic!("{b:?}"),
        }
        assert!(parse_command(b"a SELECT INBOX (FOO)").is_err());
        assert!(parse_command(b"a SELECT INBOX (QRESYNC (0 1))").is_err());
    }

    #[test]
    fn create_rename_delete() {
        assert_eq!(
            body("t1 CREATE MySpecialArchive (USE (\\Archive))"),
            CommandBody::Create {
                mailbox: MailboxName::new(b"MySpecialArchive".to_vec()),
                special_use: vec![SpecialUse::Archive]
            }
        );
        assert_eq!(
            body("A003 CREATE owatagusiam/"),
            CommandBody::Create { mailbox: MailboxName::new(b"owatagusiam/".to_vec()), special_use: vec![] }
        );
        assert!(matches!(body("A683 RENAME blurdybloop sarasoop"), CommandBody::Rename { .. }));
        assert!(matches!(body("A142 DELETE blurdybloop"), CommandBody::Delete(_)));
        assert!(parse_command(b"a CREATE x (FOO)").is_err());
    }

    #[test]
    fn list_variants() {
        match body("A101 LIST \"\" \"\"") {
            CommandBody::List(l) => {
                assert!(l.selection.is_empty() && l.return_opts.is_empty());
                assert_eq!(l.reference.as_bytes(), b"");
                assert_eq!(l.patterns, vec![ListPattern::new(b"".to_vec())]);
            }
            b => panic!("{b:?}"),
        }
        match body(
            "A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"*\" %/%) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))",
        ) {
            CommandBody::List(l) => {
                assert_eq!(l.selection, vec![ListSelectOption::Subscribed, ListSelectOption::RecursiveMatch]);
                assert_eq!(l.patterns.len(), 2);
                assert_eq!(l.patterns[1].as_bytes(), b"%/%");
                assert_eq!(
                    l.return_opts,
                    vec![
                        ListReturnOption::Children,
                        ListReturnOption::Status(vec![StatusItem::Messages, StatusItem::Unseen])
                    ]
                );
            }
            b => panic!("{b:?}"),
        }
        assert!(matches!(body("a list #news.comp.mail.misc \"\""), CommandBody::List(_)));
        assert!(matches!(body("a LIST ~/Mail/ %"), CommandBody::List(_)));
        assert!(parse_command(b"a LIST (RECURSIVEMATCH) \"\" *").is_err());
        assert!(parse_command(b"a LIST (FOO) \"\" *").is_err());
        assert!(matches!(body("a LSUB \"#news.\" \"comp.mail.*\""), CommandBody::Lsub { .. }));
    }

    #[test]
    fn status_and_enable_and_id() {
        assert_eq!(
            body("A042 STATUS blurdybloop (UIDNEXT MESSAGES mailboxid highestmodseq)"),
            CommandBody::Status {
                mailbox: MailboxName::new(b"blurdybloop".to_vec()),
                items: vec![
                    StatusItem::UidNext,
                    StatusItem::Messages,
                    StatusItem::MailboxId,
                    StatusItem::HighestModSeq
                ]
            }
        );
        assert_eq!(
            body("t2 enable condstore utf8=accept"),
            CommandBody::Enable(vec!["CONDSTORE".into(), "UTF8=ACCEPT".into()])
        );
        assert_eq!(
            body("a023 ID (\"name\" \"sodr\" \"version\" NIL)"),
            CommandBody::Id(Some(vec![("name".into(), Some("sodr".into())), ("version".into(), None)]))
        );
        assert_eq!(body("a ID NIL"), CommandBody::Id(None));
        assert!(parse_command(b"a STATUS x ()").is_err());
    }

    #[test]
    fn append_single_and_multi() {
        let msg = "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\nHello\r\n";
        let cmd = format!(
            "A003 APPEND saved-messages (\\Seen) \"7-Feb-1994 21:52:25 -0800\" {{{}}}\r\n{}",
            msg.len(),
            msg
        );
        match body(&cmd) {
            CommandBody::Append { mailbox, messages } => {
                assert_eq!(mailbox.as_bytes(), b"saved-messages");
                assert_eq!(messages.len(), 1);
                assert_eq!(messages[0].flags, vec![Flag::Seen]);
                assert_eq!(messages[0].date.unwrap().unix(), 760_686_745);
                assert_eq!(messages[0].data, msg.as_bytes());
                assert!(!messages[0].binary);
            }
            b => panic!("{b:?}"),
        }
        let cmd =
            "A1 APPEND INBOX {3+}\r\nabc (\\Draft $x) \" 1-Jan-2020 00:00:00 +0000\" ~{2}\r\n\0\x01 {0}\r\n";
        match body(cmd) {
            CommandBody::Append { messages, .. } => {
                assert_eq!(messages.len(), 3);
                assert_eq!(messages[1].flags, vec![Flag::Draft, Flag::Keyword("$x".into())]);
                assert!(messages[1].binary);
                assert_eq!(messages[1].data, b"\0\x01");
                assert!(messages[2].data.is_empty());
            }
            b => panic!("{b:?}"),
        }
        assert!(parse_command(b"a APPEND INBOX").is_err());
        // RFC 6855 §4: utf8-literal, also in MULTIAPPEND and after flags and date.
        let cmd = "A2 APPEND INBOX (\\Seen) UTF8 (~{4}\r\nSü\n) utf8 (~{1}\r\nx)";
        match body(cmd) {
            CommandBody::Append { messages, .. } => {
                assert_eq!(messages.len(), 2);
                assert_eq!(messages[0].flags, vec![Flag::Seen]);
                assert_eq!(messages[0].data, "Sü\n".as_bytes());
                assert!(messages[0].binary);
                assert_eq!(messages[1].data, b"x");
            }
            b => panic!("{b:?}"),
        }
        assert!(parse_command(b"a APPEND INBOX UTF8 ({1}\r\nx)").is_err());
        assert!(parse_command(b"a APPEND INBOX UTF8 (~{1}\r\nx").is_err());
        assert!(parse_command(b"a APPEND INBOX \"31-Feb-2020 00:00:00 +0000\" {0}\r\n").is_err());
        assert!(parse_command(b"a APPEND INBOX \"1-Feb-2020 00:00:00 +0099\" {0}\r\n").is_err());
    }

    #[test]
    fn fetch_items() {
        use FetchAttribute as A;
        match body("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])") {
            CommandBody::Fetch { kind, set: s, items, .. } => {
                assert_eq!(kind, CommandKind::Seq);
                assert_eq!(s, set("2:4"));
                assert_eq!(
                    items,
                    FetchItems::Attributes(vec![
                        A::Flags,
                        A::BodySection {
                            peek: false,
                            section: Section {
                                part: vec![],
                                text: Some(SectionText::HeaderFields(vec!["DATE".into(), "FROM".into()]))
                            },
                            partial: None
                        }
                    ])
                );
            }
            b => panic!("{b:?}"),
        }
        match body(
            "a uid fetch 1:* (body.peek[1.2.3.mime]<0.1024> BINARY.PEEK[1]<5.10> binary.size[] PREVIEW (LAZY) BODY BODYSTRUCTURE rfc822.size MODSEQ EMAILID THREADID SAVEDATE) (CHANGEDSINCE 12345 VANISHED)",
        ) {
            CommandBody::Fetch { kind, items, modifiers, .. } => {
                assert_eq!(kind, CommandKind::Uid);
                let FetchItems::Attributes(a) = items else { panic!() };
                assert_eq!(a.len(), 11);
                assert_eq!(
                    a[0],
                    A::BodySection {
                        peek: true,
                        section: Section {
                            part: vec![
                                NonZeroU32::new(1).unwrap(),
                                NonZeroU32::new(2).unwrap(),
                                NonZeroU32::new(3).unwrap()
                            ],
                            text: Some(SectionText::Mime)
                        },
                        partial: Some(Partial { offset: 0, length: NonZeroU32::new(1024).unwrap() })
                    }
                );
                assert!(
                    matches!(&a[1], A::Binary { peek: true, section, partial: Some(_) } if section.part.len() == 1 && section.text.is_none())
                );
                assert_eq!(a[2], A::BinarySize { section: Section::default() });
                assert_eq!(a[3], A::Preview { lazy: true });
                assert_eq!(modifiers.changed_since, Some(12345));
                assert!(modifiers.vanished);
            }
            b => panic!("{b:?}"),
        }
        assert!(matches!(
            body("a FETCH 1 PREVIEW (CHANGEDSINCE 5)"),
            CommandBody::Fetch { items: FetchItems::Attributes(a), modifiers: FetchModifiers { changed_since: Some(5), .. }, .. }
                if a == vec![A::Preview { lazy: false }]
        ));
        assert!(matches!(body("a FETCH 1 all"), CommandBody::Fetch { items: FetchItems::All, .. }));
        assert!(matches!(body("a FETCH $ FAST"), CommandBody::Fetch { set: SequenceSet::Saved, .. }));
        assert!(matches!(body("a FETCH 1 BODY[]"), CommandBody::Fetch { .. }));
        assert!(matches!(body("a FETCH 1 body[text]<0.5>"), CommandBody::Fetch { .. }));
        for bad in [
            "a FETCH 1 BODY[MIME]",
            "a FETCH 1 BODY[0]",
            "a FETCH 1 BODY[1.]",
            "a FETCH 1 BODY[1]<0.0>",
            "a FETCH 1 BODY.PEEK",
            "a FETCH 0 FLAGS",
            "a FETCH 1:0 FLAGS",
            "a FETCH 1, FLAGS",
            "a FETCH 1 ()",
            "a FETCH 1 (FLAGS) (FOO)",
            "a FETCH 99999999999 FLAGS",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn store_variants() {
        assert_eq!(
            body("A003 STORE 2:4 +FLAGS (\\Deleted)"),
            CommandBody::Store {
                kind: CommandKind::Seq,
                set: set("2:4"),
                action: StoreAction { op: StoreOp::Add, silent: false, flags: vec![Flag::Deleted] },
                unchanged_since: None
            }
        );
        assert_eq!(
            body("a UID STORE 1 (UNCHANGEDSINCE 0) -flags.silent \\Seen $Junk"),
            CommandBody::Store {
                kind: CommandKind::Uid,
                set: set("1"),
                action: StoreAction {
                    op: StoreOp::Remove,
                    silent: true,
                    flags: vec![Flag::Seen, Flag::Keyword("$Junk".into())]
                },
                unchanged_since: Some(0)
            }
        );
        assert!(matches!(
            body("a STORE 1 FLAGS ()"),
            CommandBody::Store { action: StoreAction { op: StoreOp::Replace, .. }, .. }
        ));
        assert!(parse_command(b"a STORE 1 FLAGS").is_err());
        assert!(parse_command(b"a STORE 1 +FLAG (\\Seen)").is_err());
    }

    #[test]
    fn search_savedate_and_objectid_keys() {
        use SearchKey as K;
        let d = |y, m, dd| Date::new(y, m, dd).unwrap();
        match body(
            "A1 SEARCH SAVEDBEFORE 1-Feb-2020 SAVEDON 2-Feb-2020 SAVEDSINCE 3-Feb-2020 SAVEDATESUPPORTED EMAILID M6d99ac3275bb4e THREADID T64b478a75b7ea9",
        ) {
            CommandBody::Search { criteria, .. } => assert_eq!(
                criteria,
                vec![
                    K::SavedBefore(d(2020, 2, 1)),
                    K::SavedOn(d(2020, 2, 2)),
                    K::SavedSince(d(2020, 2, 3)),
                    K::SaveDateSupported,
                    K::EmailId("M6d99ac3275bb4e".into()),
                    K::ThreadId("T64b478a75b7ea9".into()),
                ]
            ),
            b => panic!("{b:?}"),
        }
        assert!(parse_command(b"a SEARCH EMAILID \"x\"").is_err());
        assert!(parse_command(format!("a SEARCH EMAILID {}", "x".repeat(256)).as_bytes()).is_err());
    }

    #[test]
    fn search_variants() {
        use SearchKey as K;
        let d = |y, m, dd| Date::new(y, m, dd).unwrap();
        match body("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"") {
            CommandBody::Search { kind, charset, return_opts, criteria } => {
                assert_eq!(kind, CommandKind::Seq);
                assert_eq!(charset, None);
                assert_eq!(return_opts, Some(vec![SearchReturn::Min, SearchReturn::Count]));
                assert_eq!(
                    criteria,
                    vec![K::Flagged, K::Since(d(1994, 2, 1)), K::Not(Box::new(K::From(b"Smith".to_vec())))]
                );
            }
            b => panic!("{b:?}"),
        }
        match body("A284 SEARCH CHARSET UTF-8 TEXT {12}\r\n\u{0445}\u{043e}\u{0440}\u{043e}\u{0448}\u{043e}")
        {
            CommandBody::Search { charset, criteria, .. } => {
                assert_eq!(charset.as_deref(), Some("UTF-8"));
                assert_eq!(criteria, vec![K::Text("хорошо".as_bytes().to_vec())]);
            }
            b => panic!("{b:?}"),
        }
        match body(
            "a UID SEARCH OR (SEEN 1:5) UID $ HEADER X-Foo \"\" MODSEQ \"/flags/\\\\draft\" all 620162338 ON \"5-Jul-2004\" OLDER 10 larger 100",
        ) {
            CommandBody::Search { kind, criteria, return_opts, .. } => {
                assert_eq!(kind, CommandKind::Uid);
                assert_eq!(return_opts, None);
                assert_eq!(criteria.len(), 6);
                assert_eq!(
                    criteria[0],
                    K::Or(
                        Box::new(K::And(vec![K::Seen, K::SequenceSet(set("1:5"))])),
                        Box::new(K::Uid(SequenceSet::Saved))
                    )
                );
                assert_eq!(criteria[1], K::Header(b"X-Foo".to_vec(), vec![]));
                assert_eq!(
                    criteria[2],
                    K::ModSeq {
                        entry: Some((b"/flags/\\draft".to_vec(), EntryType::All)),
                        modseq: 620_162_338
                    }
                );
                assert_eq!(criteria[3], K::On(d(2004, 7, 5)));
                assert_eq!(criteria[4], K::Older(NonZeroU32::new(10).unwrap()));
                assert_eq!(criteria[5], K::Larger(100));
            }
            b => panic!("{b:?}"),
        }
        assert!(matches!(
            body("a SEARCH RETURN () $"),
            CommandBody::Search { return_opts: Some(v), criteria, .. } if v.is_empty() && criteria == vec![K::SequenceSet(SequenceSet::Saved)]
        ));
        for bad in [
            "a SEARCH",
            "a SEARCH FOO",
            "a SEARCH SINCE 32-Jan-2020",
            "a SEARCH SINCE 1-Foo-2020",
            "a SEARCH SINCE 1-Jan-20",
            "a SEARCH (SEEN",
            "a SEARCH OLDER 0",
            "a SEARCH RETURN (FOO) ALL",
            "a SEARCH CHARSET",
            "a SEARCH UID 3,$",
            "a SEARCH ALL RETURN",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("a SEARCH {}ALL{}", "(".repeat(10_000), ")".repeat(10_000));
        let e = err(deep.as_bytes());
        assert_eq!(e.message, "search criteria nested too deeply");
        let nots = format!("a SEARCH {}ALL", "NOT ".repeat(10_000));
        assert!(parse_command(nots.as_bytes()).is_err());
        let ok_depth = format!("a SEARCH {}ALL{}", "(".repeat(60), ")".repeat(60));
        assert!(parse_command(ok_depth.as_bytes()).is_ok());
    }

    #[test]
    fn copy_move() {
        assert_eq!(
            body("A003 COPY 2:4 MEETING"),
            CommandBody::Copy {
                kind: CommandKind::Seq,
                set: set("2:4"),
                mailbox: MailboxName::new(b"MEETING".to_vec())
            }
        );
        assert!(matches!(body("a UID MOVE 42:69 foo"), CommandBody::Move { kind: CommandKind::Uid, .. }));
        assert!(parse_command(b"a UID FOO 1").is_err());
    }

    #[test]
    fn sequence_sets() {
        let s = set("2,4:7,9,12:*");
        assert_eq!(s.resolve(15).unwrap().to_string(), "2,4:7,9,12:15");
        let s = set("*:4,5:7");
        assert_eq!(s.resolve(10).unwrap().to_string(), "4:10");
        assert_eq!(set("$"), SequenceSet::Saved);
    }
}
