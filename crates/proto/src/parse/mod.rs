//! The command parser: one framed command → [`Command`] (RFC 9051 §9 and extensions).
//!
//! Hand-written recursive descent over bytes; each parser function carries its ABNF rule.
//! Keywords are case-insensitive (RFC 9051 §9 note 1), SP is exactly one space (note 2).
//! Input is one command as produced by [`crate::Framer`]: literals inline as `{n}\r\n<bytes>`
//! (also `{n+}`, and `~{n}` where literal8 is allowed), final CRLF stripped.
//!
//! Limits: recursion (search keys) is bounded by [`MAX_NESTING`]; every other loop consumes
//! input, so work and memory are linear in the input. The parser never panics.
//! Not supported (answered with BAD): generic tagged-ext parameters of unknown extensions.
//!
//! # Layout
//!
//! Split by area, as imap-codec splits its grammar. Every parser function is a method on the one
//! `Parser` cursor defined here, so a file holds the rules of its area and nothing else:
//!
//! - `lexer`: the tokens commands are built from: words and keywords, numbers, atoms, strings,
//!   literals, sequence sets, flags and dates.
//! - `command`: the dispatch on the command name (and `UID`), and the small commands
//!   AUTHENTICATE, LOGIN, ENABLE and ID.
//! - `mailbox`: mailbox names, SELECT/EXAMINE, CREATE, APPEND, COPY/MOVE and STORE.
//! - `list`: LIST and LSUB patterns and options, STATUS items.
//! - `fetch`: FETCH items, sections, partials and modifiers.
//! - `search`: SEARCH, SORT, THREAD and the search keys (the only recursion).
//! - `acl`: the ACL (RFC 4314) and QUOTA (RFC 9208) commands.
//! - `metadata`: GETMETADATA and SETMETADATA (RFC 5464).
//! - `notify`: NOTIFY (RFC 5465).
//! - `urlauth`: GENURLAUTH, RESETKEY and URLFETCH (RFC 4467).

mod acl;
mod command;
mod fetch;
mod lexer;
mod list;
mod mailbox;
mod metadata;
mod notify;
mod search;
mod urlauth;

use bytes::Bytes;

use crate::types::{Command, Tag};

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

/// Parses one complete command as produced by [`crate::Framer`]. Message literals (APPEND,
/// REPLACE) are copied out of `input`; [`parse_command_bytes`] avoids that copy.
pub fn parse_command(input: &[u8]) -> Result<Command, ParseError> {
    parse(Parser { input, source: None, pos: 0, depth: 0 })
}

/// Parses one complete command like [`parse_command`], with every message literal (APPEND,
/// REPLACE) a slice of `input` sharing its buffer: the framed command, turned into [`Bytes`]
/// without a copy (`Bytes::from(Vec)`), becomes the messages' one buffer down to the store.
pub fn parse_command_bytes(input: &Bytes) -> Result<Command, ParseError> {
    parse(Parser { input, source: Some(input), pos: 0, depth: 0 })
}

/// Parses a section spec without its brackets (`1.2.MIME`, `HEADER.FIELDS (TO)`, empty for
/// the whole message), as an IMAP URL's `;SECTION=` carries it (RFC 5092 `enc-section`).
pub(crate) fn parse_section_spec(text: &[u8]) -> Option<crate::types::Section> {
    let mut input = Vec::with_capacity(text.len() + 2);
    input.push(b'[');
    input.extend_from_slice(text);
    input.push(b']');
    let mut p = Parser { input: &input, source: None, pos: 0, depth: 0 };
    let section = p.section().ok()?;
    p.end().ok()?;
    Some(section)
}

fn parse(mut p: Parser<'_>) -> Result<Command, ParseError> {
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

/// The cursor every parser function advances: the input, how far it has been read, and the
/// current search-key nesting.
struct Parser<'a> {
    input: &'a [u8],
    /// The buffer `input` lies in, when message literals may be handed on as slices of it.
    source: Option<&'a Bytes>,
    pos: usize,
    /// Current search-key nesting.
    depth: usize,
}

impl<'a> Parser<'a> {
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::seqset::SequenceSet;
    use crate::types::CommandBody;

    pub(super) fn ok(s: &str) -> Command {
        match parse_command(s.as_bytes()) {
            Ok(c) => c,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    pub(super) fn body(s: &str) -> CommandBody {
        ok(s).body
    }

    pub(super) fn err(s: &[u8]) -> ParseError {
        match parse_command(s) {
            Ok(c) => panic!("{:?} parsed as {c:?}", String::from_utf8_lossy(s)),
            Err(e) => e,
        }
    }

    pub(super) fn set(s: &str) -> SequenceSet {
        let mut p = Parser { input: s.as_bytes(), source: None, pos: 0, depth: 0 };
        let r = p.sequence_set().unwrap();
        assert!(p.at_end());
        r
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
}
