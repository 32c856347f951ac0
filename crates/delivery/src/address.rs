//! SMTP paths as LMTP's MAIL and RCPT commands carry them (RFC 5321 §4.1.2), and the split of a
//! recipient address into user, `+detail` (RFC 5233) and domain.
//!
//! Parsing is lenient where real MTAs are sloppy (a space after the colon, a missing pair of
//! angle brackets, source routes) and strict where it matters: paths are bounded in length and
//! may not contain control characters.

/// Longest path accepted, in octets (RFC 5321 §4.5.3.1.3: 256 including the brackets).
pub const MAX_PATH_LEN: usize = 256;

/// Most ESMTP parameters on one MAIL or RCPT command.
const MAX_PARAMS: usize = 16;

/// Why a MAIL FROM or RCPT TO argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The argument does not start with `FROM:` / `TO:`.
    #[error("expected {0}:<address>")]
    MissingKeyword(&'static str),
    /// Unbalanced brackets or quotes, or garbage where the path should be.
    #[error("syntax error in the address")]
    Syntax,
    /// Longer than [`MAX_PATH_LEN`].
    #[error("address too long")]
    TooLong,
    /// A control character or 8-bit garbage where an address should be.
    #[error("invalid character in the address")]
    BadCharacter,
    /// More ESMTP parameters than we look at.
    #[error("too many parameters")]
    TooManyParameters,
}

/// A parsed MAIL FROM or RCPT TO argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpPath {
    /// The addr-spec without angle brackets or source route; empty for the null path `<>`.
    pub address: String,
    /// ESMTP parameters (`SIZE=1234`, `BODY=8BITMIME`): keyword upper-cased, value as sent.
    pub params: Vec<(String, Option<String>)>,
}

impl SmtpPath {
    /// Parses the argument of MAIL (`keyword` = "FROM") or RCPT (`keyword` = "TO"), e.g.
    /// `FROM:<a@example.org> SIZE=100`.
    ///
    /// # Errors
    /// See [`AddressError`].
    pub fn parse(arg: &str, keyword: &'static str) -> Result<SmtpPath, AddressError> {
        let missing = AddressError::MissingKeyword(keyword);
        let head = arg.get(..keyword.len()).ok_or(missing.clone())?;
        if !head.eq_ignore_ascii_case(keyword) {
            return Err(missing);
        }
        let rest = arg[keyword.len()..].strip_prefix(':').ok_or(missing)?;
        // Some clients put a space after the colon; RFC 5321 §4.1.1.2 does not, Postfix accepts it.
        let rest = rest.trim_start();
        let (path, params) = if let Some(inner) = rest.strip_prefix('<') {
            let close = closing_bracket(inner).ok_or(AddressError::Syntax)?;
            (&inner[..close], &inner[close + 1..])
        } else {
            // No brackets: the address runs to the first space.
            match rest.find(' ') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            }
        };
        if path.len() > MAX_PATH_LEN {
            return Err(AddressError::TooLong);
        }
        if path.chars().any(|c| c.is_control()) {
            return Err(AddressError::BadCharacter);
        }
        // RFC 5321 §4.1.2: a source route ("@a,@b:user@c") is accepted and ignored.
        let address = match path.strip_prefix('@') {
            Some(routed) => routed.split_once(':').map(|(_, a)| a).ok_or(AddressError::Syntax)?,
            None => path,
        };
        if !params.is_empty() && !params.starts_with(' ') {
            return Err(AddressError::Syntax);
        }
        let mut parsed = Vec::new();
        for word in params.split_ascii_whitespace() {
            if parsed.len() == MAX_PARAMS {
                return Err(AddressError::TooManyParameters);
            }
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v.to_owned())),
                None => (word, None),
            };
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(AddressError::Syntax);
            }
            parsed.push((key.to_ascii_uppercase(), value));
        }
        Ok(SmtpPath { address: address.to_owned(), params: parsed })
    }
}

/// Index of the `>` that closes a path, skipping quoted strings (`"a>b"@x`).
fn closing_bracket(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// A recipient address taken apart: `user+detail@domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressParts {
    /// The local part without the detail, unquoted.
    pub user: String,
    /// The subaddress after the first separator (RFC 5233), if any.
    pub detail: Option<String>,
    /// The domain, lower-cased; `None` for a bare local part.
    pub domain: Option<String>,
}

impl AddressParts {
    /// Splits `address` at the last `@` and the local part at the first `separator`.
    /// An empty separator disables subaddresses.
    #[must_use]
    pub fn split(address: &str, separator: &str) -> AddressParts {
        let (local, domain) = match address.rsplit_once('@') {
            Some((l, d)) => (l, Some(d.to_ascii_lowercase())),
            None => (address, None),
        };
        let local = unquote(local);
        let (user, detail) = match (separator.is_empty(), local.split_once(separator)) {
            (false, Some((u, d))) => (u.to_owned(), Some(d.to_owned())),
            _ => (local, None),
        };
        AddressParts { user, detail, domain }
    }
}

/// Removes the quotes and backslash escapes of a quoted local part (RFC 5321 §4.1.2).
fn unquote(local: &str) -> String {
    let Some(inner) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
        return local.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_parameters() {
        let p = SmtpPath::parse("FROM:<a@example.org> SIZE=100 BODY=8BITMIME", "FROM").unwrap();
        assert_eq!(p.address, "a@example.org");
        assert_eq!(
            p.params,
            vec![("SIZE".into(), Some("100".into())), ("BODY".into(), Some("8BITMIME".into()))]
        );
        // RFC 5321 §4.1.1.2: the null reverse-path.
        assert_eq!(SmtpPath::parse("from:<>", "FROM").unwrap().address, "");
        assert_eq!(SmtpPath::parse("TO: <b@x>", "TO").unwrap().address, "b@x");
        assert_eq!(SmtpPath::parse("TO:b@x", "TO").unwrap().address, "b@x");
        assert_eq!(SmtpPath::parse("TO:<@relay.example,@r2:b@x>", "TO").unwrap().address, "b@x");
        assert_eq!(SmtpPath::parse("TO:<\"a>b\"@x>", "TO").unwrap().address, "\"a>b\"@x");
        assert_eq!(SmtpPath::parse("TO:<b@x> notify=never", "TO").unwrap().params[0].0, "NOTIFY");
    }

    #[test]
    fn bad_paths() {
        assert_eq!(SmtpPath::parse("TO<b@x>", "TO"), Err(AddressError::MissingKeyword("TO")));
        assert_eq!(SmtpPath::parse("FROM:<b@x>", "TO"), Err(AddressError::MissingKeyword("TO")));
        assert_eq!(SmtpPath::parse("T", "TO"), Err(AddressError::MissingKeyword("TO")));
        assert_eq!(SmtpPath::parse("TO:<b@x", "TO"), Err(AddressError::Syntax));
        assert_eq!(SmtpPath::parse("TO:<b@x>junk", "TO"), Err(AddressError::Syntax));
        assert_eq!(SmtpPath::parse("TO:<b\u{1}@x>", "TO"), Err(AddressError::BadCharacter));
        let long = format!("TO:<{}@x>", "a".repeat(MAX_PATH_LEN));
        assert_eq!(SmtpPath::parse(&long, "TO"), Err(AddressError::TooLong));
        let many = format!("TO:<b@x>{}", " A=1".repeat(MAX_PARAMS + 1));
        assert_eq!(SmtpPath::parse(&many, "TO"), Err(AddressError::TooManyParameters));
        // Multi-byte input next to the keyword must not panic on a char boundary.
        assert!(SmtpPath::parse("é", "TO").is_err());
        assert!(SmtpPath::parse("Tö:<x>", "TO").is_err());
    }

    #[test]
    fn subaddresses() {
        // RFC 5233 §1: "ken+sieve@example.org": user "ken", detail "sieve".
        let a = AddressParts::split("Ken+sieve@Example.ORG", "+");
        assert_eq!(
            (a.user.as_str(), a.detail.as_deref(), a.domain.as_deref()),
            ("Ken", Some("sieve"), Some("example.org"))
        );
        let a = AddressParts::split("ken+a+b@x", "+");
        assert_eq!(a.detail.as_deref(), Some("a+b"));
        let a = AddressParts::split("ken+@x", "+");
        assert_eq!(a.detail.as_deref(), Some(""));
        let a = AddressParts::split("ken", "+");
        assert_eq!((a.user.as_str(), a.domain), ("ken", None));
        let a = AddressParts::split("\"john\\\"doe\"@x", "+");
        assert_eq!(a.user, "john\"doe");
        let a = AddressParts::split("ken+x@y", "");
        assert_eq!((a.user.as_str(), a.detail), ("ken+x", None));
    }
}
