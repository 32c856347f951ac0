//! String values in a compiled script: constants, or templates with `${name}` / `${1}` references
//! (RFC 5229 §3) resolved when the command runs; plus "encoded-character" decoding (RFC 5228
//! §2.4.2.4), applied once at compile time.
//!
//! Limits: variable names longer than [`MAX_VARIABLE_NAME_LEN`] and match variables above
//! [`MAX_MATCH_VARIABLE`] are compile errors (RFC 5229 §6 asks for at least 32 and 9).

use crate::error::{CompileError, Position};

/// Longest variable name accepted (RFC 5229 §6: at least 32 characters must work).
pub(crate) const MAX_VARIABLE_NAME_LEN: usize = 128;
/// Highest match variable index (RFC 5229 §6: `${1}`..`${9}` must work; higher is a syntax error).
pub(crate) const MAX_MATCH_VARIABLE: usize = 9;

/// A string argument: fixed at compile time or expanded when the command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Str {
    Const(String),
    Template(Vec<Part>),
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Lit(String),
    /// A named variable, lower-case (names are case-insensitive, RFC 5229 §3).
    Var(String),
    /// A match variable `${n}` (RFC 5229 §3.2).
    Match(usize),
}

impl Str {
    /// The value if it is fixed at compile time.
    pub(crate) fn as_const(&self) -> Option<&str> {
        match self {
            Str::Const(s) => Some(s),
            Str::Template(_) => None,
        }
    }

    /// The text as written, for response tracking that must ignore variable expansion
    /// (RFC 5230 §4.2: vacation arguments are compared before expansion).
    pub(crate) fn source_text(&self) -> String {
        match self {
            Str::Const(s) => s.clone(),
            Str::Template(parts) => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        Part::Lit(s) => out.push_str(s),
                        Part::Var(n) => {
                            out.push_str("${");
                            out.push_str(n);
                            out.push('}');
                        }
                        Part::Match(i) => out.push_str(&format!("${{{i}}}")),
                    }
                }
                out
            }
        }
    }
}

/// Is `s` an identifier (`(ALPHA / "_") *(ALPHA / DIGIT / "_")`)?
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.bytes();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Splits `value` into literal text and variable references (RFC 5229 §3). Strings without a
/// reference stay `Str::Const`.
pub(crate) fn parse_variables(value: &str, pos: Position) -> Result<Str, CompileError> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        lit.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let name_len =
            after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.').count();
        let name = &after[..name_len];
        if after.as_bytes().get(name_len) == Some(&b'}')
            && let Some(part) = reference(name, pos)?
        {
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(part);
            rest = &after[name_len + 1..];
            continue;
        }
        // Not a reference: keep "$" and rescan from the next character ("${BAD${x}" → "${BAD" + x).
        lit.push('$');
        rest = &rest[i + 1..];
    }
    lit.push_str(rest);
    if parts.is_empty() {
        return Ok(Str::Const(lit));
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(Str::Template(parts))
}

/// Classifies the text between "${" and "}"; `None` if it is not a variable reference at all
/// (then it stays verbatim).
fn reference(name: &str, pos: Position) -> Result<Option<Part>, CompileError> {
    // variable-ref = "${" [namespace] variable-name "}" (RFC 5229 §3)
    let components: Vec<&str> = name.split('.').collect();
    let valid_component =
        |c: &str| is_identifier(c) || (!c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()));
    if components.iter().any(|c| !valid_component(c))
        || (components.len() > 1 && !is_identifier(components[0]))
    {
        return Ok(None);
    }
    if components.len() > 1 {
        // RFC 5229 §3: references to a namespace without its extension MUST cause an error;
        // we implement no namespaced variables.
        return Err(CompileError::new(
            pos,
            format!("unknown variable namespace \"{}\" in \"${{{name}}}\"", components[0]),
        ));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        // Leading zeroes are allowed and ignored (RFC 5229 §3.2).
        let digits = name.trim_start_matches('0');
        let index = if digits.is_empty() { Some(0) } else { digits.parse::<usize>().ok() };
        return match index {
            Some(i) if i <= MAX_MATCH_VARIABLE => Ok(Some(Part::Match(i))),
            // RFC 5229 §6: higher indices than supported MUST be a syntax error.
            _ => Err(CompileError::new(
                pos,
                format!(
                    "match variable ${{{name}}} is out of range (only ${{0}} to ${{{MAX_MATCH_VARIABLE}}})"
                ),
            )),
        };
    }
    if name.len() > MAX_VARIABLE_NAME_LEN {
        return Err(CompileError::new(
            pos,
            format!("variable name is too long (limit {MAX_VARIABLE_NAME_LEN} characters)"),
        ));
    }
    Ok(Some(Part::Var(name.to_ascii_lowercase())))
}

/// Decodes `${hex:..}` and `${unicode:..}` sequences (RFC 5228 §2.4.2.4). Malformed sequences
/// stay as written; a well-formed unicode value outside Unicode is an error. Decoded octets
/// that are not UTF-8 are replaced by U+FFFD, since values here are Rust strings.
pub(crate) fn decode_encoded_characters(value: &str, pos: Position) -> Result<String, CompileError> {
    if !value.contains("${") {
        return Ok(value.to_owned());
    }
    let bytes = value.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$'
            && bytes.get(i + 1) == Some(&b'{')
            && let Some((decoded, used)) = encoded_sequence(&bytes[i + 2..], pos)?
        {
            out.extend_from_slice(&decoded);
            i += 2 + used;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Parses "hex:" / "unicode:" + sequence + "}" at the start of `s` (just after "${"). Returns
/// the decoded bytes and how many bytes of `s` were used, or `None` if malformed.
fn encoded_sequence(s: &[u8], pos: Position) -> Result<Option<(Vec<u8>, usize)>, CompileError> {
    let (unicode, prefix) = if s.len() >= 4 && s[..4].eq_ignore_ascii_case(b"hex:") {
        (false, 4)
    } else if s.len() >= 8 && s[..8].eq_ignore_ascii_case(b"unicode:") {
        (true, 8)
    } else {
        return Ok(None);
    };
    // Only hex digits and blanks may come before the '}'; stopping at anything else keeps the
    // whole decoding linear in the string length.
    let close = s[prefix..]
        .iter()
        .take_while(|b| b.is_ascii_hexdigit() || matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    if s.get(prefix + close) != Some(&b'}') {
        return Ok(None);
    }
    let body = &s[prefix..prefix + close];
    // blank = WSP / CRLF; items are separated by at least one blank.
    let mut items: Vec<&[u8]> = Vec::new();
    let mut j = 0;
    while j < body.len() {
        match body[j] {
            b' ' | b'\t' => j += 1,
            b'\r' if body.get(j + 1) == Some(&b'\n') => j += 2,
            c if c.is_ascii_hexdigit() => {
                let start = j;
                while j < body.len() && body[j].is_ascii_hexdigit() {
                    j += 1;
                }
                if j < body.len() && !matches!(body[j], b' ' | b'\t' | b'\r') {
                    return Ok(None);
                }
                items.push(&body[start..j]);
            }
            _ => return Ok(None),
        }
    }
    if items.is_empty() {
        return Ok(None);
    }
    let mut decoded = Vec::new();
    for item in items {
        if !unicode {
            // hex-pair = 1*2HEXDIG
            if item.len() > 2 {
                return Ok(None);
            }
            let text = std::str::from_utf8(item).unwrap_or("0");
            decoded.push(u8::from_str_radix(text, 16).unwrap_or(0));
            continue;
        }
        let digits = item.iter().skip_while(|b| **b == b'0').count();
        let text = std::str::from_utf8(&item[item.len() - digits..]).unwrap_or("");
        let code = if digits == 0 {
            Some(0)
        } else if digits > 6 {
            None
        } else {
            u32::from_str_radix(text, 16).ok()
        };
        // RFC 5228 §2.4.2.4: values outside 0-D7FF and E000-10FFFF are an error.
        let Some(ch) = code.and_then(char::from_u32) else {
            return Err(CompileError::new(
                pos,
                format!(
                    "encoded character ${{unicode:{}}} is not a Unicode scalar value",
                    String::from_utf8_lossy(item)
                ),
            ));
        };
        let mut buf = [0u8; 4];
        decoded.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
    Ok(Some((decoded, prefix + close + 1)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p() -> Position {
        Position::new(1, 1)
    }

    #[test]
    fn rfc5229_reference_examples() {
        // RFC 5229 §3
        assert_eq!(parse_variables("&%${}!", p()).unwrap(), Str::Const("&%${}!".into()));
        assert_eq!(parse_variables("${doh!}", p()).unwrap(), Str::Const("${doh!}".into()));
        assert_eq!(
            parse_variables("${company}", p()).unwrap(),
            Str::Template(vec![Part::Var("company".into())])
        );
        assert_eq!(
            parse_variables("${BAD${Company}", p()).unwrap(),
            Str::Template(vec![Part::Lit("${BAD".into()), Part::Var("company".into())])
        );
        assert_eq!(
            parse_variables("${President, ${Company} Inc.}", p()).unwrap(),
            Str::Template(vec![
                Part::Lit("${President, ".into()),
                Part::Var("company".into()),
                Part::Lit(" Inc.}".into())
            ])
        );
        assert_eq!(parse_variables("${01}", p()).unwrap(), Str::Template(vec![Part::Match(1)]));
        assert_eq!(parse_variables("${0}", p()).unwrap(), Str::Template(vec![Part::Match(0)]));
    }

    #[test]
    fn reference_errors() {
        assert!(parse_variables("${10}", p()).unwrap_err().message.contains("out of range"));
        assert!(parse_variables("${99999999999999999999999}", p()).is_err());
        assert!(parse_variables("${env.foo}", p()).unwrap_err().message.contains("namespace"));
        assert!(parse_variables(&format!("${{{}}}", "a".repeat(200)), p()).is_err());
        // Not references at all: stay verbatim.
        assert_eq!(parse_variables("${1a}", p()).unwrap(), Str::Const("${1a}".into()));
        assert_eq!(parse_variables("${.a}", p()).unwrap(), Str::Const("${.a}".into()));
        assert_eq!(parse_variables("${a.}", p()).unwrap(), Str::Const("${a.}".into()));
    }

    #[test]
    fn source_text_round_trips() {
        let s = parse_variables("Re: ${1} from ${Who}", p()).unwrap();
        assert_eq!(s.source_text(), "Re: ${1} from ${who}");
    }

    #[test]
    fn rfc5228_encoded_character_examples() {
        let d = |s: &str| decode_encoded_characters(s, p());
        assert_eq!(d("$${hex:24 24}").unwrap(), "$$$");
        assert_eq!(d("$${hex:40}").unwrap(), "$@");
        assert_eq!(d("${hex: 40 }").unwrap(), "@");
        assert_eq!(d("${HEX: 40}").unwrap(), "@");
        assert_eq!(d("${hex:40").unwrap(), "${hex:40");
        assert_eq!(d("${hex:400}").unwrap(), "${hex:400}");
        assert_eq!(d("${hex:4${hex:30}}").unwrap(), "${hex:40}");
        assert_eq!(d("${unicode:40}").unwrap(), "@");
        assert_eq!(d("${ unicode:40}").unwrap(), "${ unicode:40}");
        assert_eq!(d("${UNICODE:40}").unwrap(), "@");
        assert_eq!(d("${UnICoDE:0000040}").unwrap(), "@");
        assert_eq!(d("${Unicode:40}").unwrap(), "@");
        assert_eq!(d("${Unicode:Cool}").unwrap(), "${Unicode:Cool}");
        assert!(d("${unicode:200000}").is_err());
        assert!(d("${Unicode:DF01}").is_err());
        assert_eq!(d("${unicode:e4 20 1F600}").unwrap(), "ä 😀");
        assert_eq!(d("dear${hex:20 24 7b 4e}ame}").unwrap(), "dear ${Name}");
        // Many unterminated sequences stay linear.
        let hostile = "${hex:0 ".repeat(100_000);
        assert_eq!(d(&hostile).unwrap(), hostile);
    }
}
