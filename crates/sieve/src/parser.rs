//! The generic Sieve grammar (RFC 5228 §8.2) → a syntax tree of commands, arguments and tests.
//!
//! This layer knows no command names: it only checks the shape (`command = identifier arguments
//! (";" / block)`). `compile` then checks each command against what it accepts. Limits: nesting
//! of blocks and of tests is capped at [`MAX_NESTING`] each, so recursion depth is bounded.

use crate::MAX_NESTING;
use crate::error::{CompileError, Position};
use crate::lexer::{Lexer, Tok, Token};

/// A string literal with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StrLit {
    pub(crate) value: String,
    pub(crate) pos: Position,
}

/// One argument: `argument = string-list / number / tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Argument {
    /// A single string (`bracketed == false`) or a bracketed string list.
    Strings {
        items: Vec<StrLit>,
        bracketed: bool,
        pos: Position,
        end: Position,
    },
    Number {
        value: u64,
        pos: Position,
        end: Position,
    },
    /// A tag, stored lower-case without the ':'.
    Tag {
        name: String,
        pos: Position,
        end: Position,
    },
}

impl Argument {
    pub(crate) fn pos(&self) -> Position {
        match self {
            Argument::Strings { pos, .. } | Argument::Number { pos, .. } | Argument::Tag { pos, .. } => *pos,
        }
    }

    pub(crate) fn end(&self) -> Position {
        match self {
            Argument::Strings { end, .. } | Argument::Number { end, .. } | Argument::Tag { end, .. } => *end,
        }
    }

    /// How the argument reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Argument::Strings { bracketed: false, .. } => "a string".to_owned(),
            Argument::Strings { bracketed: true, .. } => "a string list".to_owned(),
            Argument::Number { value, .. } => format!("number {value}"),
            Argument::Tag { name, .. } => format!("tag :{name}"),
        }
    }
}

/// `test = identifier arguments`, with `arguments = *argument [ test / test-list ]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestNode {
    /// The identifier, lower-case.
    pub(crate) name: String,
    pub(crate) pos: Position,
    pub(crate) args: Vec<Argument>,
    /// The trailing test or test list, if any.
    pub(crate) tests: Option<TestArgs>,
    /// Position just after the last argument (or the name).
    pub(crate) args_end: Position,
}

/// A trailing test argument: one bare test or a parenthesised list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestArgs {
    pub(crate) tests: Vec<TestNode>,
    pub(crate) parenthesized: bool,
    pub(crate) pos: Position,
}

/// `command = identifier arguments (";" / block)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommandNode {
    /// The identifier, lower-case.
    pub(crate) name: String,
    pub(crate) pos: Position,
    pub(crate) args: Vec<Argument>,
    pub(crate) tests: Option<TestArgs>,
    /// Position just after the last argument or test (where a ';' belongs).
    pub(crate) args_end: Position,
    pub(crate) block: Option<Block>,
}

/// `block = "{" commands "}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) commands: Vec<CommandNode>,
    pub(crate) pos: Position,
}

/// Parses a whole script into its top-level commands.
pub(crate) fn parse(src: &str) -> Result<Vec<CommandNode>, CompileError> {
    let mut p = Parser { lexer: Lexer::new(src), peeked: None, block_depth: 0, test_depth: 0 };
    let commands = p.commands()?;
    let t = p.next()?;
    match t.tok {
        Tok::Eof => Ok(commands),
        Tok::RBrace => Err(CompileError::new(t.start, "unexpected '}' without a matching '{'")),
        other => Err(CompileError::new(t.start, format!("expected a command, found {}", other.describe()))),
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token>,
    block_depth: usize,
    test_depth: usize,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&Token, CompileError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        match &self.peeked {
            Some(t) => Ok(t),
            // Just filled above.
            None => Err(CompileError::new(Position::default(), "internal parser error")),
        }
    }

    fn next(&mut self) -> Result<Token, CompileError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_token(),
        }
    }

    /// `commands = *command`; stops before '}' or the end.
    fn commands(&mut self) -> Result<Vec<CommandNode>, CompileError> {
        let mut out = Vec::new();
        loop {
            match &self.peek()?.tok {
                Tok::Identifier(_) => out.push(self.command()?),
                _ => return Ok(out),
            }
        }
    }

    fn command(&mut self) -> Result<CommandNode, CompileError> {
        let t = self.next()?;
        let Tok::Identifier(name) = t.tok else {
            return Err(CompileError::new(
                t.start,
                format!("expected a command, found {}", t.tok.describe()),
            ));
        };
        let name = name.to_ascii_lowercase();
        let (args, tests, args_end) = self.arguments(t.end)?;
        let next = self.next()?;
        let block = match next.tok {
            Tok::Semicolon => None,
            Tok::LBrace => Some(self.block(next.start)?),
            other => {
                return Err(CompileError::new(
                    args_end,
                    format!("expected ';' after \"{name}\", found {}", other.describe()),
                ));
            }
        };
        Ok(CommandNode { name, pos: t.start, args, tests, args_end, block })
    }

    fn block(&mut self, open: Position) -> Result<Block, CompileError> {
        self.block_depth += 1;
        if self.block_depth > MAX_NESTING {
            return Err(CompileError::new(open, format!("blocks nested too deeply (limit {MAX_NESTING})")));
        }
        let commands = self.commands()?;
        let t = self.next()?;
        self.block_depth -= 1;
        match t.tok {
            Tok::RBrace => Ok(Block { commands, pos: open }),
            Tok::Eof => Err(CompileError::new(
                t.start,
                format!("expected '}}' to close the block opened at {open}, found end of script"),
            )),
            other => Err(CompileError::new(
                t.start,
                format!("expected a command or '}}', found {}", other.describe()),
            )),
        }
    }

    /// `arguments = *argument [ test / test-list ]`; returns the end of the last piece.
    fn arguments(
        &mut self,
        mut end: Position,
    ) -> Result<(Vec<Argument>, Option<TestArgs>, Position), CompileError> {
        let mut args = Vec::new();
        loop {
            let t = self.peek()?.clone();
            match t.tok {
                Tok::Str(value) => {
                    self.next()?;
                    args.push(Argument::Strings {
                        items: vec![StrLit { value, pos: t.start }],
                        bracketed: false,
                        pos: t.start,
                        end: t.end,
                    });
                    end = t.end;
                }
                Tok::LBracket => {
                    self.next()?;
                    let arg = self.string_list(t.start)?;
                    end = arg.end();
                    args.push(arg);
                }
                Tok::Number(value) => {
                    self.next()?;
                    args.push(Argument::Number { value, pos: t.start, end: t.end });
                    end = t.end;
                }
                Tok::Tag(name) => {
                    self.next()?;
                    args.push(Argument::Tag { name: name.to_ascii_lowercase(), pos: t.start, end: t.end });
                    end = t.end;
                }
                Tok::Identifier(_) => {
                    let test = self.test()?;
                    let test_end = test.args_end;
                    let tests = TestArgs { pos: test.pos, tests: vec![test], parenthesized: false };
                    return Ok((args, Some(tests), test_end));
                }
                Tok::LParen => {
                    self.next()?;
                    let (tests, close) = self.test_list(t.start)?;
                    let tests = TestArgs { tests, parenthesized: true, pos: t.start };
                    return Ok((args, Some(tests), close));
                }
                _ => return Ok((args, None, end)),
            }
        }
    }

    /// `string-list = "[" string *("," string) "]"`, after the '['.
    fn string_list(&mut self, open: Position) -> Result<Argument, CompileError> {
        let mut items = Vec::new();
        loop {
            let t = self.next()?;
            match t.tok {
                Tok::Str(value) => items.push(StrLit { value, pos: t.start }),
                other => {
                    return Err(CompileError::new(
                        t.start,
                        format!("expected a string in the list opened at {open}, found {}", other.describe()),
                    ));
                }
            }
            let t = self.next()?;
            match t.tok {
                Tok::Comma => {}
                Tok::RBracket => {
                    return Ok(Argument::Strings { items, bracketed: true, pos: open, end: t.end });
                }
                other => {
                    return Err(CompileError::new(
                        t.start,
                        format!(
                            "expected ',' or ']' in the string list opened at {open}, found {}",
                            other.describe()
                        ),
                    ));
                }
            }
        }
    }

    /// `test = identifier arguments`.
    fn test(&mut self) -> Result<TestNode, CompileError> {
        let t = self.next()?;
        let Tok::Identifier(name) = t.tok else {
            return Err(CompileError::new(t.start, format!("expected a test, found {}", t.tok.describe())));
        };
        self.test_depth += 1;
        if self.test_depth > MAX_NESTING {
            return Err(CompileError::new(t.start, format!("tests nested too deeply (limit {MAX_NESTING})")));
        }
        let (args, tests, args_end) = self.arguments(t.end)?;
        self.test_depth -= 1;
        Ok(TestNode { name: name.to_ascii_lowercase(), pos: t.start, args, tests, args_end })
    }

    /// `test-list = "(" test *("," test) ")"`, after the '('; returns the tests and the end.
    fn test_list(&mut self, open: Position) -> Result<(Vec<TestNode>, Position), CompileError> {
        let mut tests = Vec::new();
        loop {
            if !matches!(self.peek()?.tok, Tok::Identifier(_)) {
                let t = self.next()?;
                return Err(CompileError::new(
                    t.start,
                    format!("expected a test in the list opened at {open}, found {}", t.tok.describe()),
                ));
            }
            tests.push(self.test()?);
            let t = self.next()?;
            match t.tok {
                Tok::Comma => {}
                Tok::RParen => return Ok((tests, t.end)),
                other => {
                    return Err(CompileError::new(
                        t.start,
                        format!(
                            "expected ',' or ')' in the test list opened at {open}, found {}",
                            other.describe()
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_tests_and_blocks() {
        let cmds = parse(
            "require [\"fileinto\"];\nif anyof (not exists [\"From\",\"Date\"], header :contains \"from\" \"x\") { discard; } else { keep; }",
        )
        .unwrap();
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[0].name, "require");
        let if_ = &cmds[1];
        let t = &if_.tests.as_ref().unwrap().tests[0];
        assert_eq!(t.name, "anyof");
        let list = t.tests.as_ref().unwrap();
        assert!(list.parenthesized);
        assert_eq!(list.tests.len(), 2);
        assert_eq!(list.tests[0].name, "not");
        assert_eq!(list.tests[1].args.len(), 3);
        assert_eq!(if_.block.as_ref().unwrap().commands[0].name, "discard");
        assert_eq!(cmds[2].name, "else");
    }

    #[test]
    fn grammar_errors_have_positions() {
        let e = parse("keep;\nif true {\n  discard;\n").unwrap_err();
        assert_eq!((e.line, e.column), (4, 1));
        assert!(e.message.contains("expected '}' to close the block opened at 2:9"), "{e}");
        let e = parse("keep }").unwrap_err();
        assert_eq!(e.to_string(), "1:5: expected ';' after \"keep\", found '}'");
        let e = parse("}").unwrap_err();
        assert_eq!(e.to_string(), "1:1: unexpected '}' without a matching '{'");
        let e = parse("require [];").unwrap_err();
        assert_eq!(e.to_string(), "1:10: expected a string in the list opened at 1:9, found ']'");
        let e = parse("require [\"a\" \"b\"];").unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:14: expected ',' or ']' in the string list opened at 1:9, found a string"
        );
        let e = parse("\"x\";").unwrap_err();
        assert_eq!(e.to_string(), "1:1: expected a command, found a string");
        let e = parse("if anyof () {}").unwrap_err();
        assert_eq!(e.to_string(), "1:11: expected a test in the list opened at 1:10, found ')'");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "if true {".repeat(MAX_NESTING + 1) + &"}".repeat(MAX_NESTING + 1);
        assert!(parse(&deep).unwrap_err().message.contains("nested too deeply"));
        let ok = "if true {".repeat(MAX_NESTING) + &"}".repeat(MAX_NESTING);
        assert!(parse(&ok).is_ok());
        let deep = format!("if {} true {{}}", "not ".repeat(MAX_NESTING + 1));
        assert!(parse(&deep).unwrap_err().message.contains("nested too deeply"));
        let deep = format!("if {}true{} {{}}", "anyof(".repeat(100_000), ")".repeat(100_000));
        assert!(parse(&deep).unwrap_err().message.contains("nested too deeply"));
    }
}
