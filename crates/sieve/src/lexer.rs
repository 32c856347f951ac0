//! Sieve tokens (RFC 5228 §8.1): identifiers, tags, numbers, quoted and multi-line strings and
//! the one-character separators, each with its start and end position.
//!
//! Comments and whitespace are skipped. Strings come out decoded (escapes resolved, multi-line
//! strings dot-unstuffed); line ends inside them are normalised to CRLF. RFC 5228 allows only CRLF
//! line ends in a script, but scripts edited on Unix arrive with bare LF, so LF (and a lone CR) is
//! accepted as a line end everywhere. Limits: the caller bounds the script size; the lexer keeps
//! one token of look-ahead, so memory is one token plus the script.

use crate::error::{CompileError, Position};

/// A token kind with its decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An identifier as written (callers compare case-insensitively).
    Identifier(String),
    /// A tag without its leading ':' as written.
    Tag(String),
    /// A number with its K/M/G quantifier applied.
    Number(u64),
    /// A quoted or multi-line string, decoded.
    Str(String),
    LBracket,
    RBracket,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Semicolon,
    Comma,
    Eof,
}

impl Tok {
    /// How the token reads in an error message ("identifier \"keep\"", "';'", ...).
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Identifier(s) => format!("identifier \"{s}\""),
            Tok::Tag(s) => format!("tag \":{s}\""),
            Tok::Number(n) => format!("number {n}"),
            Tok::Str(_) => "a string".to_owned(),
            Tok::LBracket => "'['".to_owned(),
            Tok::RBracket => "']'".to_owned(),
            Tok::LParen => "'('".to_owned(),
            Tok::RParen => "')'".to_owned(),
            Tok::LBrace => "'{'".to_owned(),
            Tok::RBrace => "'}'".to_owned(),
            Tok::Semicolon => "';'".to_owned(),
            Tok::Comma => "','".to_owned(),
            Tok::Eof => "end of script".to_owned(),
        }
    }
}

/// A token and where it starts and ends (end is the position just after its last character).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) start: Position,
    pub(crate) end: Position,
}

/// Pull lexer over the script bytes; all syntax characters are ASCII, so strings are sliced at
/// ASCII boundaries and stay valid UTF-8.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    at: usize,
    line: u32,
    column: u32,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self { src, bytes: src.as_bytes(), at: 0, line: 1, column: 1 }
    }

    fn pos(&self) -> Position {
        Position::new(self.line, self.column)
    }

    fn peek_byte(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.at + offset).copied()
    }

    /// Advances over one byte, keeping line and column (columns count characters, so UTF-8
    /// continuation bytes do not move the column).
    fn bump(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        match b {
            b'\n' => {
                self.line = self.line.saturating_add(1);
                self.column = 1;
            }
            // A CR directly before LF is part of the CRLF line end: no column of its own.
            b'\r' if self.peek_byte(0) == Some(b'\n') => {}
            b'\r' => {
                self.line = self.line.saturating_add(1);
                self.column = 1;
            }
            b if b & 0xC0 == 0x80 => {}
            _ => self.column = self.column.saturating_add(1),
        }
        Some(b)
    }

    /// Consumes a line end (CRLF, LF or a lone CR) if one is next; true if it did.
    fn eat_newline(&mut self) -> bool {
        match self.peek_byte(0) {
            Some(b'\r') => {
                self.bump();
                if self.peek_byte(0) == Some(b'\n') {
                    self.bump();
                }
                true
            }
            Some(b'\n') => {
                self.bump();
                true
            }
            _ => false,
        }
    }

    /// Skips whitespace and comments (RFC 5228 §2.3: comments are whitespace).
    fn skip_trivia(&mut self) -> Result<(), CompileError> {
        loop {
            match self.peek_byte(0) {
                Some(b' ' | b'\t' | b'\r' | b'\n') => {
                    self.bump();
                }
                Some(b'#') => self.skip_hash_comment(),
                Some(b'/') if self.peek_byte(1) == Some(b'*') => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match self.peek_byte(0) {
                            None => {
                                return Err(CompileError::new(
                                    start,
                                    "unterminated comment: expected '*/' to close the '/*' here",
                                ));
                            }
                            Some(b'*') if self.peek_byte(1) == Some(b'/') => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            Some(0) => return Err(self.nul_error()),
                            Some(_) => {
                                self.bump();
                            }
                        }
                    }
                }
                Some(0) => return Err(self.nul_error()),
                _ => return Ok(()),
            }
        }
    }

    /// Skips a `#` comment including its line end (or up to the end of the script).
    fn skip_hash_comment(&mut self) {
        while let Some(b) = self.peek_byte(0) {
            if b == b'\n' || b == b'\r' {
                self.eat_newline();
                return;
            }
            self.bump();
        }
    }

    fn nul_error(&self) -> CompileError {
        // RFC 5228 §2.1: NUL is never permitted in scripts.
        CompileError::new(self.pos(), "NUL character is not allowed in a script")
    }

    /// The next token; `Tok::Eof` at the end (repeatedly).
    pub(crate) fn next_token(&mut self) -> Result<Token, CompileError> {
        self.skip_trivia()?;
        let start = self.pos();
        let Some(b) = self.peek_byte(0) else {
            return Ok(Token { tok: Tok::Eof, start, end: start });
        };
        let tok = match b {
            b'[' | b']' | b'(' | b')' | b'{' | b'}' | b';' | b',' => {
                self.bump();
                match b {
                    b'[' => Tok::LBracket,
                    b']' => Tok::RBracket,
                    b'(' => Tok::LParen,
                    b')' => Tok::RParen,
                    b'{' => Tok::LBrace,
                    b'}' => Tok::RBrace,
                    b';' => Tok::Semicolon,
                    _ => Tok::Comma,
                }
            }
            b'"' => self.quoted_string(start)?,
            b':' => {
                self.bump();
                match self.peek_byte(0) {
                    Some(c) if c.is_ascii_alphabetic() || c == b'_' => Tok::Tag(self.identifier_text()),
                    _ => return Err(CompileError::new(start, "expected a tag name after ':'")),
                }
            }
            b'0'..=b'9' => self.number(start)?,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let ident = self.identifier_text();
                if ident.eq_ignore_ascii_case("text") && self.peek_byte(0) == Some(b':') {
                    self.bump();
                    self.multi_line(start)?
                } else {
                    Tok::Identifier(ident)
                }
            }
            _ => {
                let ch = self.src[self.at..].chars().next().unwrap_or('?');
                return Err(CompileError::new(start, format!("unexpected character {ch:?}")));
            }
        };
        Ok(Token { tok, start, end: self.pos() })
    }

    /// identifier = (ALPHA / "_") *(ALPHA / DIGIT / "_")
    fn identifier_text(&mut self) -> String {
        let from = self.at;
        while let Some(c) = self.peek_byte(0) {
            if c.is_ascii_alphanumeric() || c == b'_' {
                self.bump();
            } else {
                break;
            }
        }
        self.src[from..self.at].to_owned()
    }

    /// number = 1*DIGIT [ QUANTIFIER ]; QUANTIFIER = "K" / "M" / "G" (RFC 5228 §2.4.1, powers of 2).
    fn number(&mut self, start: Position) -> Result<Tok, CompileError> {
        let too_large = || CompileError::new(start, "number too large");
        let mut value: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek_byte(0) {
            self.bump();
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .ok_or_else(too_large)?;
        }
        let shift = match self.peek_byte(0) {
            Some(b'k' | b'K') => 10,
            Some(b'm' | b'M') => 20,
            Some(b'g' | b'G') => 30,
            _ => 0,
        };
        if shift > 0 {
            self.bump();
            value = value.checked_mul(1 << shift).ok_or_else(too_large)?;
        }
        Ok(Tok::Number(value))
    }

    /// quoted-string (RFC 5228 §2.4.2, §8.1): `\"` and `\\` are escapes; any other backslash is
    /// dropped ("\a" is "a").
    fn quoted_string(&mut self, start: Position) -> Result<Tok, CompileError> {
        self.bump(); // opening quote
        let mut out = String::new();
        let mut from = self.at;
        loop {
            match self.peek_byte(0) {
                None => {
                    return Err(CompileError::new(start, "unterminated string: expected '\"' to close it"));
                }
                Some(0) => return Err(self.nul_error()),
                Some(b'"') => {
                    out.push_str(&self.src[from..self.at]);
                    self.bump();
                    return Ok(Tok::Str(out));
                }
                Some(b'\\') => {
                    out.push_str(&self.src[from..self.at]);
                    self.bump();
                    match self.peek_byte(0) {
                        None => {
                            return Err(CompileError::new(
                                start,
                                "unterminated string: expected '\"' to close it",
                            ));
                        }
                        Some(0) => return Err(self.nul_error()),
                        // A backslash before a line end escapes nothing; keep the line end.
                        Some(b'\r' | b'\n') => {}
                        Some(_) => {
                            let ch_start = self.at;
                            self.bump();
                            while self.peek_byte(0).is_some_and(|b| b & 0xC0 == 0x80) {
                                self.bump();
                            }
                            out.push_str(&self.src[ch_start..self.at]);
                        }
                    }
                    from = self.at;
                }
                Some(b'\r' | b'\n') => {
                    out.push_str(&self.src[from..self.at]);
                    self.eat_newline();
                    out.push_str("\r\n");
                    from = self.at;
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
    }

    /// multi-line (RFC 5228 §2.4.2, §8.1): "text:" *(SP / HTAB) (hash-comment / CRLF), then lines
    /// up to a line holding only "."; a leading ".." loses one dot.
    fn multi_line(&mut self, start: Position) -> Result<Tok, CompileError> {
        while matches!(self.peek_byte(0), Some(b' ' | b'\t')) {
            self.bump();
        }
        match self.peek_byte(0) {
            Some(b'#') => self.skip_hash_comment(),
            Some(b'\r' | b'\n') => {
                self.eat_newline();
            }
            _ => {
                return Err(CompileError::new(
                    self.pos(),
                    "expected end of line after \"text:\" (the text starts on the next line)",
                ));
            }
        }
        let mut out = String::new();
        loop {
            if self.at >= self.bytes.len() {
                return Err(CompileError::new(
                    start,
                    "unterminated multi-line string: expected a line with only '.' to end it",
                ));
            }
            let line_start = self.at;
            while let Some(b) = self.peek_byte(0) {
                if b == b'\r' || b == b'\n' {
                    break;
                }
                if b == 0 {
                    return Err(self.nul_error());
                }
                self.bump();
            }
            let line = &self.src[line_start..self.at];
            let had_newline = self.eat_newline();
            if line == "." {
                return Ok(Tok::Str(out));
            }
            if !had_newline {
                return Err(CompileError::new(
                    start,
                    "unterminated multi-line string: expected a line with only '.' to end it",
                ));
            }
            // Dot-unstuffing: "..x" is ".x"; ".x" stays ".x" (RFC 5228 §2.4.2).
            let line = if line.starts_with("..") { &line[1..] } else { line };
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        let mut lx = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = lx.next_token().unwrap();
            if t.tok == Tok::Eof {
                return out;
            }
            out.push(t.tok);
        }
    }

    fn err(src: &str) -> CompileError {
        let mut lx = Lexer::new(src);
        loop {
            match lx.next_token() {
                Err(e) => return e,
                Ok(t) if t.tok == Tok::Eof => panic!("no error in {src:?}"),
                Ok(_) => {}
            }
        }
    }

    #[test]
    fn basic_tokens() {
        assert_eq!(
            toks("if size :over 100K { discard; }"),
            vec![
                Tok::Identifier("if".into()),
                Tok::Identifier("size".into()),
                Tok::Tag("over".into()),
                Tok::Number(100 * 1024),
                Tok::LBrace,
                Tok::Identifier("discard".into()),
                Tok::Semicolon,
                Tok::RBrace,
            ]
        );
    }

    #[test]
    fn quantifiers_are_powers_of_two() {
        assert_eq!(
            toks("1k 2M 3g 0"),
            vec![Tok::Number(1024), Tok::Number(2 << 20), Tok::Number(3 << 30), Tok::Number(0)]
        );
        assert_eq!(err("99999999999999999999").message, "number too large");
        assert_eq!(err("18014398509481984G").message, "number too large");
    }

    #[test]
    fn quoted_string_escapes() {
        assert_eq!(toks(r#""a\"b\\c\d""#), vec![Tok::Str("a\"b\\cd".into())]);
        assert_eq!(toks("\"two\nlines\""), vec![Tok::Str("two\r\nlines".into())]);
        assert_eq!(toks("\"two\r\nlines\""), vec![Tok::Str("two\r\nlines".into())]);
        assert_eq!(toks("\"\\ü\""), vec![Tok::Str("ü".into())]);
    }

    #[test]
    fn comments_are_whitespace() {
        // RFC 5228 §2.3 examples.
        let src = "if size :over 100K { # this is a comment\r\n discard;\r\n}";
        assert_eq!(toks(src).len(), 8);
        let src = "if size :over 100K { /* this is a comment\r\n this is still a comment */ discard /* this is a comment\r\n */ ;\r\n}";
        assert_eq!(toks(src).len(), 8);
        assert_eq!(toks("/* a ** b */ keep /***/"), vec![Tok::Identifier("keep".into())]);
    }

    #[test]
    fn multi_line_strings() {
        let src = "text:\r\nline one\r\n..dot\r\n.x\r\n.\r\n";
        assert_eq!(toks(src), vec![Tok::Str("line one\r\n.dot\r\n.x\r\n".into())]);
        let src = "TEXT: # comment\nhello\n.\n;";
        assert_eq!(toks(src), vec![Tok::Str("hello\r\n".into()), Tok::Semicolon]);
        assert_eq!(toks("text:\n.\n"), vec![Tok::Str(String::new())]);
        // The terminating dot line may end the script without a line end.
        assert_eq!(toks("text:\nx\n."), vec![Tok::Str("x\r\n".into())]);
    }

    #[test]
    fn positions_count_characters() {
        let mut lx = Lexer::new("# ä\n  \"ü\" keep");
        let s = lx.next_token().unwrap();
        assert_eq!((s.start, s.end), (Position::new(2, 3), Position::new(2, 6)));
        let k = lx.next_token().unwrap();
        assert_eq!(k.start, Position::new(2, 7));
        let mut lx = Lexer::new("a\r\nb");
        lx.next_token().unwrap();
        assert_eq!(lx.next_token().unwrap().start, Position::new(2, 1));
    }

    #[test]
    fn lexical_errors() {
        let e = err("keep;\n  \"abc");
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.message.starts_with("unterminated string"), "{e}");
        let e = err("x /* abc");
        assert_eq!((e.line, e.column), (1, 3));
        assert!(e.message.starts_with("unterminated comment"));
        let e = err("a text:\nabc\n");
        assert_eq!((e.line, e.column), (1, 3));
        assert!(e.message.starts_with("unterminated multi-line"));
        let e = err("text: x\n.\n");
        assert_eq!((e.line, e.column), (1, 7));
        assert_eq!(err("keep @").message, "unexpected character '@'");
        assert_eq!(err(": x").message, "expected a tag name after ':'");
        assert!(err("\"a\0\"").message.contains("NUL"));
        assert!(err("/x").message.contains("'/'"));
    }
}
