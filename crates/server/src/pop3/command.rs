//! POP3 command lines (RFC 1939 §3, RFC 2449 §3–4) → [`Command`].
//!
//! A command is a case-insensitive keyword of three or four letters, then arguments separated
//! by single spaces. `PASS` takes the rest of the line as its one argument (RFC 1939 §7: a
//! password may contain spaces). Lines arrive without their CRLF and are at most
//! [`super::MAX_COMMAND_LINE`] octets long; the driver enforces that before parsing.
//!
//! Limits: a message number has at most ten digits and must fit in `u32`; a `TOP` line count
//! too. Nothing here allocates more than the line.

use postfach_secret::Secret;

/// A message number (RFC 1939 §3: 1 for the first message of the maildrop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Msg(pub(crate) u32);

/// One parsed command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// `CAPA` (RFC 2449 §5).
    Capa,
    /// `QUIT` (RFC 1939 §5, §6).
    Quit,
    /// `NOOP`.
    Noop,
    /// `STLS` (RFC 2595 §4).
    Stls,
    /// `USER name` (RFC 1939 §7).
    User(String),
    /// `PASS string`: the rest of the line.
    Pass(Secret),
    /// `AUTH [mechanism [initial-response]]` (RFC 5034 §4). Without a mechanism: the list of
    /// mechanisms, as clients probe with it (RFC 1734 servers answered that way).
    Auth {
        /// The mechanism, uppercased.
        mechanism: Option<String>,
        /// The base64 initial response (`=` for an empty one), a secret.
        initial: Option<Secret>,
    },
    /// `STAT`.
    Stat,
    /// `LIST [msg]`.
    List(Option<Msg>),
    /// `RETR msg`.
    Retr(Msg),
    /// `DELE msg`.
    Dele(Msg),
    /// `RSET`.
    Rset,
    /// `TOP msg n` (RFC 1939 §7): the header and `n` lines of the body.
    Top(Msg, u32),
    /// `UIDL [msg]`.
    Uidl(Option<Msg>),
}

impl Command {
    /// The command's keyword, for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Command::Capa => "CAPA",
            Command::Quit => "QUIT",
            Command::Noop => "NOOP",
            Command::Stls => "STLS",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth { .. } => "AUTH",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Rset => "RSET",
            Command::Top(..) => "TOP",
            Command::Uidl(_) => "UIDL",
        }
    }
}

/// Why a line is not a command; each becomes a `-ERR` line and counts as a bad command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Nothing on the line.
    Empty,
    /// A keyword this server does not know (APOP included: no plain passwords are stored).
    Unknown,
    /// A known keyword with missing, extra or malformed arguments.
    Syntax(&'static str),
}

impl ParseError {
    /// The text of the `-ERR` answer.
    pub(crate) fn message(self) -> &'static str {
        match self {
            ParseError::Empty => "Empty command",
            ParseError::Unknown => "Unknown command",
            ParseError::Syntax(usage) => usage,
        }
    }
}

/// Most digits of a message number or line count (`u32::MAX` has ten).
const MAX_DIGITS: usize = 10;

/// Parses one command line (without CRLF).
pub(crate) fn parse(line: &[u8]) -> Result<Command, ParseError> {
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let (keyword, rest) = match line.iter().position(|b| *b == b' ') {
        Some(space) => (&line[..space], Some(&line[space + 1..])),
        None => (line, None),
    };
    if !(3..=4).contains(&keyword.len()) || !keyword.iter().all(u8::is_ascii_alphabetic) {
        return Err(ParseError::Unknown);
    }
    let mut upper = [0u8; 4];
    upper[..keyword.len()].copy_from_slice(keyword);
    upper.make_ascii_uppercase();
    let keyword = &upper[..keyword.len()];
    if keyword == b"PASS" {
        // RFC 1939 §7: spaces may be part of the password.
        return match rest {
            Some(password) if !password.is_empty() => Ok(Command::Pass(Secret::new(password.to_vec()))),
            _ => Err(ParseError::Syntax("Usage: PASS password")),
        };
    }
    let args: Vec<&[u8]> = match rest {
        // RFC 1939 §3: arguments are separated by single spaces; a trailing space is tolerated
        // (some clients send "LIST " with nothing after it).
        Some(rest) => rest.split(|b| *b == b' ').filter(|a| !a.is_empty()).collect(),
        None => Vec::new(),
    };
    match (keyword, args.as_slice()) {
        (b"CAPA", []) => Ok(Command::Capa),
        (b"QUIT", []) => Ok(Command::Quit),
        (b"NOOP", []) => Ok(Command::Noop),
        (b"STLS", []) => Ok(Command::Stls),
        (b"STAT", []) => Ok(Command::Stat),
        (b"RSET", []) => Ok(Command::Rset),
        (b"CAPA" | b"QUIT" | b"NOOP" | b"STLS" | b"STAT" | b"RSET", _) => {
            Err(ParseError::Syntax("This command takes no arguments"))
        }
        (b"USER", [name]) => match std::str::from_utf8(name) {
            Ok(name) => Ok(Command::User(name.to_owned())),
            Err(_) => Err(ParseError::Syntax("The user name is not UTF-8")),
        },
        (b"USER", _) => Err(ParseError::Syntax("Usage: USER name")),
        (b"AUTH", []) => Ok(Command::Auth { mechanism: None, initial: None }),
        (b"AUTH", [mechanism, initial @ ..]) if initial.len() <= 1 => {
            let Some(mechanism) = mechanism_name(mechanism) else {
                return Err(ParseError::Syntax("Invalid mechanism name"));
            };
            let initial = initial.first().map(|i| Secret::new(i.to_vec()));
            Ok(Command::Auth { mechanism: Some(mechanism), initial })
        }
        (b"AUTH", _) => Err(ParseError::Syntax("Usage: AUTH mechanism [initial-response]")),
        (b"LIST", []) => Ok(Command::List(None)),
        (b"LIST", [n]) => msg(n).map(|m| Command::List(Some(m))),
        (b"LIST", _) => Err(ParseError::Syntax("Usage: LIST [msg]")),
        (b"UIDL", []) => Ok(Command::Uidl(None)),
        (b"UIDL", [n]) => msg(n).map(|m| Command::Uidl(Some(m))),
        (b"UIDL", _) => Err(ParseError::Syntax("Usage: UIDL [msg]")),
        (b"RETR", [n]) => msg(n).map(Command::Retr),
        (b"RETR", _) => Err(ParseError::Syntax("Usage: RETR msg")),
        (b"DELE", [n]) => msg(n).map(Command::Dele),
        (b"DELE", _) => Err(ParseError::Syntax("Usage: DELE msg")),
        (b"TOP", [n, lines]) => {
            let m = msg(n)?;
            let lines = number(lines).ok_or(ParseError::Syntax("Invalid line count"))?;
            Ok(Command::Top(m, lines))
        }
        (b"TOP", _) => Err(ParseError::Syntax("Usage: TOP msg lines")),
        _ => Err(ParseError::Unknown),
    }
}

/// A message number: decimal, non-zero.
fn msg(text: &[u8]) -> Result<Msg, ParseError> {
    match number(text) {
        Some(n) if n > 0 => Ok(Msg(n)),
        _ => Err(ParseError::Syntax("Invalid message number")),
    }
}

/// A decimal number that fits in `u32` (digits only: no sign, no spaces).
fn number(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > MAX_DIGITS || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A SASL mechanism name (RFC 4422 §3.1: up to 20 of A-Z, 0-9, `-`, `_`), uppercased.
fn mechanism_name(text: &[u8]) -> Option<String> {
    let valid = (1..=20).contains(&text.len())
        && text.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
    valid.then(|| String::from_utf8_lossy(text).to_ascii_uppercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_examples_parse() {
        assert_eq!(parse(b"USER mrose"), Ok(Command::User("mrose".to_owned())));
        assert_eq!(parse(b"PASS secret"), Ok(Command::Pass(Secret::new(b"secret".to_vec()))));
        assert_eq!(parse(b"STAT"), Ok(Command::Stat));
        assert_eq!(parse(b"LIST"), Ok(Command::List(None)));
        assert_eq!(parse(b"LIST 2"), Ok(Command::List(Some(Msg(2)))));
        assert_eq!(parse(b"RETR 1"), Ok(Command::Retr(Msg(1))));
        assert_eq!(parse(b"DELE 1"), Ok(Command::Dele(Msg(1))));
        assert_eq!(parse(b"TOP 1 10"), Ok(Command::Top(Msg(1), 10)));
        assert_eq!(parse(b"TOP 1 0"), Ok(Command::Top(Msg(1), 0)));
        assert_eq!(parse(b"UIDL 2"), Ok(Command::Uidl(Some(Msg(2)))));
        assert_eq!(parse(b"QUIT"), Ok(Command::Quit));
        assert_eq!(parse(b"capa"), Ok(Command::Capa), "keywords are case-insensitive");
        assert_eq!(parse(b"LIST "), Ok(Command::List(None)), "a trailing space is tolerated");
    }

    #[test]
    fn pass_keeps_spaces_and_auth_splits() {
        assert_eq!(parse(b"PASS a b  c"), Ok(Command::Pass(Secret::new(b"a b  c".to_vec()))));
        assert_eq!(parse(b"PASS"), Err(ParseError::Syntax("Usage: PASS password")));
        assert_eq!(parse(b"AUTH"), Ok(Command::Auth { mechanism: None, initial: None }));
        assert_eq!(
            parse(b"AUTH plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".to_owned()),
                initial: Some(Secret::new(b"AGEAYg==".to_vec()))
            })
        );
        assert_eq!(
            parse(b"AUTH SCRAM-SHA-256"),
            Ok(Command::Auth { mechanism: Some("SCRAM-SHA-256".to_owned()), initial: None })
        );
        assert!(matches!(parse(b"AUTH PLAIN a b"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"AUTH PL@IN"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn bad_lines_are_refused() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb"), Err(ParseError::Unknown));
        assert_eq!(parse(b"XYZZY"), Err(ParseError::Unknown));
        assert_eq!(parse(b"RE TR 1"), Err(ParseError::Unknown));
        assert_eq!(parse(b"\x00\x01\x02"), Err(ParseError::Unknown));
        for bad in
            [&b"RETR"[..], b"RETR 0", b"RETR -1", b"RETR +1", b"RETR 1 2", b"RETR 99999999999", b"RETR x"]
        {
            assert!(matches!(parse(bad), Err(ParseError::Syntax(_))), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(matches!(parse(b"TOP 1"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"TOP 1 x"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"STAT 1"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"USER"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"USER \xff"), Err(ParseError::Syntax(_))));
        assert_eq!(parse(b"RETR 4294967295"), Ok(Command::Retr(Msg(u32::MAX))));
        assert!(matches!(parse(b"RETR 4294967296"), Err(ParseError::Syntax(_))));
    }
}
