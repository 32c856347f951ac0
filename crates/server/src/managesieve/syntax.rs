//! ManageSieve's wire syntax (RFC 5804 §1.2, §4): one framed command → a typed [`Command`], and
//! the server's strings, response codes and OK/NO/BYE lines.
//!
//! The framer (`postfach_proto::framing`, the IMAP one: the literal markers are the same) has
//! already cut the command out of the stream and checked every size; what arrives here is the
//! command's bytes with each literal still behind its `{n+}\r\n` (or `{n}\r\n`) marker. This
//! module reads atoms, quoted strings (at most [`MAX_QUOTED`] octets, RFC 5804 §4 `quoted`),
//! literals and numbers (32-bit, no leading zeros), and checks script names (§1.6).
//!
//! Limits: every value is bounded by the framer's limits; a quoted string by [`MAX_QUOTED`];
//! script names by [`MAX_NAME_CHARS`]; a command by [`MAX_ARGUMENTS`] arguments.

use postfach_secret::Secret;

/// Longest quoted string, in octets between the quotes (RFC 5804 §4: `*1024QUOTED-CHAR`).
pub(crate) const MAX_QUOTED: usize = 1024;
/// Longest atom (RFC 5804 §4: `1*1024ATOM-CHAR`).
const MAX_ATOM: usize = 1024;
/// Longest script name in characters: RFC 5804 §1.6 says servers MUST allow 128 (the store
/// allows exactly that many and refuses longer names, never truncating them).
pub(crate) const MAX_NAME_CHARS: usize = postfach_store::sqlite::sieve::MAX_SCRIPT_NAME_LEN;
/// Most arguments any command takes (PUTSCRIPT and RENAMESCRIPT: two; AUTHENTICATE: two).
const MAX_ARGUMENTS: usize = 2;

/// A valid script name (RFC 5804 §1.6): 1 to [`MAX_NAME_CHARS`] Unicode characters, none of
/// U+0000-001F, U+007F, U+0080-009F, U+2028, U+2029.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptName(String);

impl ScriptName {
    /// Checks the bytes of a `sieve-name` string.
    pub(crate) fn parse(bytes: &[u8]) -> Result<ScriptName, String> {
        let Ok(name) = std::str::from_utf8(bytes) else {
            return Err("script names are UTF-8".to_owned());
        };
        if name.is_empty() {
            return Err("the script name is empty".to_owned());
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(format!("script names have at most {MAX_NAME_CHARS} characters"));
        }
        if name.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}') {
            return Err("control characters are not allowed in script names".to_owned());
        }
        Ok(ScriptName(name.to_owned()))
    }

    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A parsed client command (RFC 5804 §2, §4 `command`).
#[derive(Debug)]
pub(crate) enum Command {
    /// `AUTHENTICATE mechanism [initial-response]` (§2.1). The mechanism is upper-cased.
    Authenticate {
        /// The SASL mechanism's name.
        mechanism: String,
        /// The base64 initial response, if sent (it may carry a password).
        initial: Option<Secret>,
    },
    /// `STARTTLS` (§2.2).
    StartTls,
    /// `LOGOUT` (§2.3).
    Logout,
    /// `CAPABILITY` (§2.4).
    Capability,
    /// `HAVESPACE name size` (§2.5).
    HaveSpace {
        /// The script the client would store.
        name: ScriptName,
        /// Its size in octets.
        size: u32,
    },
    /// `PUTSCRIPT name script` (§2.6).
    PutScript {
        /// The script's name.
        name: ScriptName,
        /// The script's text, as sent.
        script: Vec<u8>,
    },
    /// `LISTSCRIPTS` (§2.7).
    ListScripts,
    /// `SETACTIVE name` (§2.8); `None` for `""` (deactivate).
    SetActive {
        /// The script to activate.
        name: Option<ScriptName>,
    },
    /// `GETSCRIPT name` (§2.9).
    GetScript {
        /// The script.
        name: ScriptName,
    },
    /// `DELETESCRIPT name` (§2.10).
    DeleteScript {
        /// The script.
        name: ScriptName,
    },
    /// `RENAMESCRIPT old new` (§2.11).
    RenameScript {
        /// The script's name now.
        old: ScriptName,
        /// Its new name.
        new: ScriptName,
    },
    /// `CHECKSCRIPT script` (§2.12).
    CheckScript {
        /// The script's text.
        script: Vec<u8>,
    },
    /// `NOOP [tag]` (§2.13).
    Noop {
        /// The string to echo in the TAG response code.
        tag: Option<Vec<u8>>,
    },
    /// `UNAUTHENTICATE` (§2.14.1).
    Unauthenticate,
}

impl Command {
    /// The command's name as the log shows it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::StartTls => "STARTTLS",
            Command::Logout => "LOGOUT",
            Command::Capability => "CAPABILITY",
            Command::HaveSpace { .. } => "HAVESPACE",
            Command::PutScript { .. } => "PUTSCRIPT",
            Command::ListScripts => "LISTSCRIPTS",
            Command::SetActive { .. } => "SETACTIVE",
            Command::GetScript { .. } => "GETSCRIPT",
            Command::DeleteScript { .. } => "DELETESCRIPT",
            Command::RenameScript { .. } => "RENAMESCRIPT",
            Command::CheckScript { .. } => "CHECKSCRIPT",
            Command::Noop { .. } => "NOOP",
            Command::Unauthenticate => "UNAUTHENTICATE",
        }
    }
}

/// One argument as it appeared on the wire.
#[derive(Debug, PartialEq, Eq)]
enum Value {
    /// An atom (also a number: `number` is digits, which are ATOM-CHARs).
    Atom(Vec<u8>),
    /// A quoted string or a literal.
    String(Vec<u8>),
}

/// Reads the framed bytes of a command.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Skips the spaces between arguments (RFC 5804 writes one SP; more are tolerated).
    fn spaces(&mut self) -> usize {
        let start = self.pos;
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
        self.pos - start
    }

    /// The next argument, `None` at the end of the command.
    fn value(&mut self) -> Result<Option<Value>, String> {
        match self.peek() {
            None => Ok(None),
            Some(b'"') => self.quoted().map(|s| Some(Value::String(s))),
            Some(b'{') => self.literal().map(|s| Some(Value::String(s))),
            Some(c) if is_atom_char(c) => Ok(Some(Value::Atom(self.atom()?))),
            Some(c) => Err(format!("unexpected character {:?}", char::from(c))),
        }
    }

    fn atom(&mut self) -> Result<Vec<u8>, String> {
        let start = self.pos;
        while self.peek().is_some_and(is_atom_char) {
            self.pos += 1;
        }
        if self.pos - start > MAX_ATOM {
            return Err(format!("atom longer than {MAX_ATOM} characters"));
        }
        Ok(self.bytes[start..self.pos].to_vec())
    }

    /// `DQUOTE *1024QUOTED-CHAR DQUOTE`, with `\"` and `\\` as the only escapes.
    fn quoted(&mut self) -> Result<Vec<u8>, String> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err("unterminated quoted string".to_owned());
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => match self.peek() {
                    Some(e @ (b'"' | b'\\')) => {
                        self.pos += 1;
                        out.push(e);
                    }
                    _ => return Err("only \\\" and \\\\ may be escaped in a quoted string".to_owned()),
                },
                b'\r' | b'\n' | 0 => {
                    return Err("CR, LF and NUL are not allowed in a quoted string".to_owned());
                }
                c => out.push(c),
            }
            if out.len() > MAX_QUOTED {
                return Err(format!("quoted string longer than {MAX_QUOTED} octets; send a literal"));
            }
        }
        if std::str::from_utf8(&out).is_err() {
            return Err("quoted strings are UTF-8".to_owned());
        }
        Ok(out)
    }

    /// `{n+}` CRLF n-octets (RFC 5804 `literal-c2s`), or `{n}` CRLF n-octets after our
    /// continuation request (a synchronizing literal, as in ACAP).
    fn literal(&mut self) -> Result<Vec<u8>, String> {
        let rest = &self.bytes[self.pos..];
        let Some(close) = rest.iter().position(|b| *b == b'}') else {
            return Err("malformed literal".to_owned());
        };
        let inside = &rest[1..close];
        let digits = inside.strip_suffix(b"+").unwrap_or(inside);
        let size = number(digits).ok_or_else(|| "malformed literal length".to_owned())?;
        if !rest[close + 1..].starts_with(b"\r\n") {
            return Err("a literal's length must end its line".to_owned());
        }
        let start = self.pos + close + 3;
        // The framer put exactly `size` octets behind the marker.
        let size = usize::try_from(size).map_err(|_| "literal too large".to_owned())?;
        let Some(data) = self.bytes.get(start..start.saturating_add(size)) else {
            return Err("literal shorter than announced".to_owned());
        };
        self.pos = start + size;
        Ok(data.to_vec())
    }
}

/// `ATOM-CHAR`: any CHAR except `(`, `)`, `{`, SP, CTL, `"` and `\` (RFC 5804 §4).
fn is_atom_char(c: u8) -> bool {
    c.is_ascii() && !c.is_ascii_control() && !matches!(c, b'(' | b')' | b'{' | b' ' | b'"' | b'\\')
}

/// `number`: `(NZDIGIT *DIGIT) / "0"`, below 2^32 (RFC 5804 §4).
fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || (digits.len() > 1 && digits[0] == b'0')
    {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Parses one framed command. The error text is for a `NO` answer.
pub(crate) fn parse_command(bytes: &[u8]) -> Result<Command, String> {
    let mut reader = Reader { bytes, pos: 0 };
    reader.spaces();
    let Some(Value::Atom(name)) = reader.value()? else {
        return Err("expected a command name".to_owned());
    };
    let mut args = Vec::new();
    loop {
        let had_space = reader.spaces() > 0;
        if reader.at_end() {
            break;
        }
        if !had_space {
            return Err("expected a space between arguments".to_owned());
        }
        if args.len() == MAX_ARGUMENTS {
            return Err("too many arguments".to_owned());
        }
        match reader.value()? {
            Some(v) => args.push(v),
            None => break,
        }
    }
    let name = String::from_utf8_lossy(&name).to_ascii_uppercase();
    let mut args = args.into_iter();
    let command = match name.as_str() {
        "AUTHENTICATE" => {
            let mechanism = match args.next() {
                // RFC 5804 writes the mechanism as a quoted string; some clients send an atom.
                Some(Value::String(m) | Value::Atom(m)) => String::from_utf8_lossy(&m).to_ascii_uppercase(),
                None => return Err("AUTHENTICATE needs a mechanism".to_owned()),
            };
            let initial = match args.next() {
                Some(Value::String(s)) => Some(Secret::new(s)),
                Some(Value::Atom(_)) => return Err("the initial response is a string".to_owned()),
                None => None,
            };
            Command::Authenticate { mechanism, initial }
        }
        "STARTTLS" => Command::StartTls,
        "LOGOUT" => Command::Logout,
        "CAPABILITY" => Command::Capability,
        "LISTSCRIPTS" => Command::ListScripts,
        "UNAUTHENTICATE" => Command::Unauthenticate,
        "HAVESPACE" => {
            let name = name_arg(args.next())?;
            let size = match args.next() {
                Some(Value::Atom(n)) => number(&n).ok_or_else(|| "the size is a 32-bit number".to_owned())?,
                _ => return Err("HAVESPACE needs a script name and a size".to_owned()),
            };
            Command::HaveSpace { name, size }
        }
        "PUTSCRIPT" => {
            let name = name_arg(args.next())?;
            let script = string_arg(args.next(), "PUTSCRIPT needs a script name and the script")?;
            Command::PutScript { name, script }
        }
        "SETACTIVE" => {
            let raw = string_arg(args.next(), "SETACTIVE needs a script name (\"\" to deactivate)")?;
            let name = if raw.is_empty() { None } else { Some(ScriptName::parse(&raw)?) };
            Command::SetActive { name }
        }
        "GETSCRIPT" => Command::GetScript { name: name_arg(args.next())? },
        "DELETESCRIPT" => Command::DeleteScript { name: name_arg(args.next())? },
        "RENAMESCRIPT" => {
            let old = name_arg(args.next())?;
            let new = name_arg(args.next())?;
            Command::RenameScript { old, new }
        }
        "CHECKSCRIPT" => {
            Command::CheckScript { script: string_arg(args.next(), "CHECKSCRIPT needs the script")? }
        }
        "NOOP" => {
            let tag = match args.next() {
                Some(Value::String(s)) => Some(s),
                Some(Value::Atom(_)) => return Err("NOOP takes a string".to_owned()),
                None => None,
            };
            Command::Noop { tag }
        }
        _ => return Err("unknown command".to_owned()),
    };
    if args.next().is_some() {
        return Err(format!("too many arguments for {}", command.name()));
    }
    Ok(command)
}

fn string_arg(value: Option<Value>, missing: &str) -> Result<Vec<u8>, String> {
    match value {
        Some(Value::String(s)) => Ok(s),
        Some(Value::Atom(_)) => Err("expected a string (quoted or literal), not an atom".to_owned()),
        None => Err(missing.to_owned()),
    }
}

fn name_arg(value: Option<Value>) -> Result<ScriptName, String> {
    ScriptName::parse(&string_arg(value, "a script name is missing")?)
}

/// Parses a client's response during AUTHENTICATE (RFC 5804 §2.1): one string, quoted or
/// literal. `Ok(None)` is the cancel response `"*"`.
pub(crate) fn parse_auth_response(bytes: &[u8]) -> Result<Option<Secret>, String> {
    let mut reader = Reader { bytes, pos: 0 };
    let value = match reader.peek() {
        Some(b'"') => reader.quoted(),
        Some(b'{') => reader.literal(),
        _ => Err("expected a string".to_owned()),
    };
    let value = Secret::new(value?);
    reader.spaces();
    if !reader.at_end() {
        return Err("expected a single string".to_owned());
    }
    Ok(if value.expose_secret() == b"*" { None } else { Some(value) })
}

// --- responses ------------------------------------------------------------------------------

/// A response code (RFC 5804 §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Code {
    /// `QUOTA/MAXSCRIPTS`: the account has as many scripts as it may keep.
    QuotaMaxScripts,
    /// `QUOTA/MAXSIZE`: the script is larger than allowed.
    QuotaMaxSize,
    /// `NONEXISTENT`: no script of that name.
    Nonexistent,
    /// `ALREADYEXISTS`: a script of that name exists.
    AlreadyExists,
    /// `ACTIVE`: not allowed on the active script.
    Active,
    /// `TRYLATER`: a temporary failure.
    TryLater,
    /// `ENCRYPT-NEEDED`: authenticate after STARTTLS.
    EncryptNeeded,
    /// `SASL string`: the server's last SASL data (SCRAM's server-final message), base64.
    Sasl(String),
    /// `TAG string`: NOOP's echo.
    Tag(Vec<u8>),
}

/// OK, NO or BYE (RFC 5804 §4 `response-oknobye`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Success.
    Ok,
    /// Failure; the session goes on.
    No,
    /// The server closes the connection.
    Bye,
}

/// Appends a string: quoted when it can be (UTF-8, no CR/LF/NUL, at most [`MAX_QUOTED`]
/// octets), a `{n}` literal (RFC 5804 `literal-s2c`) otherwise.
pub(crate) fn push_string(out: &mut Vec<u8>, value: &[u8]) {
    let quotable = value.len() <= MAX_QUOTED
        && !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
        && std::str::from_utf8(value).is_ok();
    if quotable {
        out.push(b'"');
        for &b in value {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", value.len()).as_bytes());
        out.extend_from_slice(value);
    }
}

/// Appends `OK|NO|BYE [(code)] ["text"]` CRLF.
pub(crate) fn push_status(out: &mut Vec<u8>, status: Status, code: Option<&Code>, text: &str) {
    out.extend_from_slice(match status {
        Status::Ok => b"OK",
        Status::No => b"NO",
        Status::Bye => b"BYE",
    });
    if let Some(code) = code {
        out.extend_from_slice(b" (");
        match code {
            Code::QuotaMaxScripts => out.extend_from_slice(b"QUOTA/MAXSCRIPTS"),
            Code::QuotaMaxSize => out.extend_from_slice(b"QUOTA/MAXSIZE"),
            Code::Nonexistent => out.extend_from_slice(b"NONEXISTENT"),
            Code::AlreadyExists => out.extend_from_slice(b"ALREADYEXISTS"),
            Code::Active => out.extend_from_slice(b"ACTIVE"),
            Code::TryLater => out.extend_from_slice(b"TRYLATER"),
            Code::EncryptNeeded => out.extend_from_slice(b"ENCRYPT-NEEDED"),
            Code::Sasl(data) => {
                out.extend_from_slice(b"SASL ");
                push_string(out, data.as_bytes());
            }
            Code::Tag(tag) => {
                out.extend_from_slice(b"TAG ");
                push_string(out, tag);
            }
        }
        out.push(b')');
    }
    if !text.is_empty() {
        out.push(b' ');
        push_string(out, text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one capability line: `"NAME"` or `"NAME" "value"` CRLF (RFC 5804 §1.7).
pub(crate) fn push_capability(out: &mut Vec<u8>, name: &str, value: Option<&str>) {
    push_string(out, name.as_bytes());
    if let Some(value) = value {
        out.push(b' ');
        push_string(out, value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Command, String> {
        parse_command(text.as_bytes())
    }

    #[test]
    fn commands_are_case_insensitive_and_take_quoted_strings_and_literals() {
        // RFC 5804 §2.6's first example, with a non-synchronizing literal.
        let c = parse("Putscript \"foo\" {31+}\r\n#comment\r\nInvalidSieveCommand\r\n").unwrap();
        let Command::PutScript { name, script } = c else { panic!() };
        assert_eq!(name.as_str(), "foo");
        assert_eq!(script, b"#comment\r\nInvalidSieveCommand\r\n");
        // A synchronizing literal as the name, a quoted script with escapes.
        let c = parse("PUTSCRIPT {3}\r\nabc \"keep;\\\\ \\\"x\\\"\"").unwrap();
        let Command::PutScript { name, script } = c else { panic!() };
        assert_eq!((name.as_str(), script.as_slice()), ("abc", &b"keep;\\ \"x\""[..]));
        assert!(matches!(parse("listscripts").unwrap(), Command::ListScripts));
        assert!(matches!(parse("StartTls").unwrap(), Command::StartTls));
        let Command::RenameScript { old, new } = parse("Renamescript \"foo\" \"bar\"").unwrap() else {
            panic!()
        };
        assert_eq!((old.as_str(), new.as_str()), ("foo", "bar"));
    }

    #[test]
    fn authenticate_and_its_responses() {
        let Command::Authenticate { mechanism, initial } =
            parse("Authenticate \"plain\" \"AGEAYg==\"").unwrap()
        else {
            panic!()
        };
        assert_eq!(mechanism, "PLAIN");
        assert_eq!(initial.unwrap().expose_secret(), b"AGEAYg==");
        let Command::Authenticate { initial, .. } = parse("AUTHENTICATE \"GSSAPI\" {4+}\r\nYIIE").unwrap()
        else {
            panic!()
        };
        assert_eq!(initial.unwrap().expose_secret(), b"YIIE");
        assert_eq!(parse_auth_response(b"\"abc=\"").unwrap().unwrap().expose_secret(), b"abc=");
        assert_eq!(parse_auth_response(b"{0+}\r\n").unwrap().unwrap().expose_secret(), b"");
        assert_eq!(parse_auth_response(b"\"\"").unwrap().unwrap().expose_secret(), b"");
        assert!(parse_auth_response(b"\"*\"").unwrap().is_none(), "cancel");
        assert!(parse_auth_response(b"abc").is_err());
        assert!(parse_auth_response(b"\"a\" \"b\"").is_err());
    }

    #[test]
    fn havespace_numbers_are_strict() {
        let Command::HaveSpace { name, size } = parse("HAVESPACE \"myscript\" 999999").unwrap() else {
            panic!()
        };
        assert_eq!((name.as_str(), size), ("myscript", 999_999));
        assert!(parse("HAVESPACE \"x\" 0").is_ok());
        assert!(parse("HAVESPACE \"x\" 012").is_err(), "leading zero");
        assert!(parse("HAVESPACE \"x\" 4294967296").is_err(), "beyond 32 bits");
        assert!(parse("HAVESPACE \"x\" \"12\"").is_err(), "a string is no number");
        assert!(parse("HAVESPACE \"x\"").is_err());
    }

    #[test]
    fn script_names_follow_rfc_5804_section_1_6() {
        assert!(ScriptName::parse("vacation · 2026".as_bytes()).is_ok());
        assert!(ScriptName::parse(b"").is_err());
        assert!(ScriptName::parse(b"a\x7fb").is_err());
        assert!(ScriptName::parse("a\u{85}b".as_bytes()).is_err());
        assert!(ScriptName::parse("a\u{2028}b".as_bytes()).is_err());
        assert!(ScriptName::parse(b"\xff").is_err());
        assert!(ScriptName::parse("é".repeat(MAX_NAME_CHARS).as_bytes()).is_ok());
        assert!(ScriptName::parse("é".repeat(MAX_NAME_CHARS + 1).as_bytes()).is_err());
        // SETACTIVE "" deactivates; other commands refuse the empty name.
        assert!(matches!(parse("SETACTIVE \"\"").unwrap(), Command::SetActive { name: None }));
        assert!(parse("GETSCRIPT \"\"").is_err());
        assert!(parse("DELETESCRIPT \"a\r\"").is_err());
    }

    #[test]
    fn bad_commands_are_refused_with_a_reason() {
        for bad in [
            "",
            "\"quoted\"",
            "FROBNICATE",
            "GETSCRIPT",
            "GETSCRIPT foo",
            "GETSCRIPT \"a\" \"b\"",
            "GETSCRIPT \"unterminated",
            "GETSCRIPT \"bad \\n escape\"",
            "NOOP \"a\"\"b\"",
            "PUTSCRIPT \"a\" {5+}\r\nab",
            "PUTSCRIPT \"a\" {x}\r\n",
            "CHECKSCRIPT (",
            "LOGOUT now",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        let long = format!("GETSCRIPT \"{}\"", "a".repeat(MAX_QUOTED + 1));
        assert!(parse(&long).unwrap_err().contains("literal"));
    }

    #[test]
    fn responses_quote_or_use_literals() {
        let mut out = Vec::new();
        push_status(&mut out, Status::No, Some(&Code::Nonexistent), "There is no script by that name");
        assert_eq!(out, b"NO (NONEXISTENT) \"There is no script by that name\"\r\n");
        out.clear();
        push_status(&mut out, Status::Ok, Some(&Code::Tag(b"STARTTLS-SYNC-42".to_vec())), "Done");
        assert_eq!(out, b"OK (TAG \"STARTTLS-SYNC-42\") \"Done\"\r\n");
        out.clear();
        push_status(&mut out, Status::No, None, "line 1\r\nline 2");
        assert_eq!(out, b"NO {14}\r\nline 1\r\nline 2\r\n");
        out.clear();
        push_string(&mut out, b"clever\"script");
        assert_eq!(out, b"\"clever\\\"script\"");
        out.clear();
        push_capability(&mut out, "VERSION", Some("1.0"));
        push_capability(&mut out, "STARTTLS", None);
        assert_eq!(out, b"\"VERSION\" \"1.0\"\r\n\"STARTTLS\"\r\n");
        out.clear();
        push_status(&mut out, Status::Ok, None, "");
        assert_eq!(out, b"OK\r\n");
    }
}
