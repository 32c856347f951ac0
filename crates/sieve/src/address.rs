//! A forgiving RFC 5322 address-list reader for the `address` and `envelope` tests, the
//! `redirect` target and the vacation checks.
//!
//! It finds the addr-spec of every mailbox in a header value (display names, comments, group
//! names and source routes are dropped) and splits it into local part and domain. It never
//! fails: text that is not an address comes back as an [`Addr`] without a domain, which
//! RFC 5228 §2.7.4 says must not match `:localpart` or `:domain`. Work is linear in the input.

/// Header fields that hold addresses. RFC 5228 §5.1: the address test MUST be restricted to
/// such headers and MUST include From, To, Cc, Bcc, Sender, Resent-From and Resent-To.
const ADDRESS_HEADERS: [&str; 20] = [
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-bcc",
    "resent-reply-to",
    "return-path",
    "disposition-notification-to",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "errors-to",
    "mail-followup-to",
    "mail-reply-to",
];

/// Whether the `address` test may look at header `name`.
pub(crate) fn is_address_header(name: &str) -> bool {
    ADDRESS_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// One mailbox found in an address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Addr {
    /// The addr-spec as written (quotes kept, whitespace and comments removed); the whole text
    /// if it is not a valid address; empty for the null address `<>`.
    pub(crate) all: String,
    /// Local part with quoting removed, when the address is valid.
    pub(crate) local: Option<String>,
    /// Domain, when the address is valid.
    pub(crate) domain: Option<String>,
}

impl Addr {
    /// The `:user` part (RFC 5233 §4): the local part up to the first `separator`, or all of it.
    pub(crate) fn user(&self, separator: &str) -> Option<&str> {
        let local = self.local.as_deref()?;
        if separator.is_empty() {
            return Some(local);
        }
        Some(local.split_once(separator).map_or(local, |(user, _)| user))
    }

    /// The `:detail` part (RFC 5233 §4): after the first `separator`; `None` if there is no
    /// separator (then the address matches no key).
    pub(crate) fn detail(&self, separator: &str) -> Option<&str> {
        if separator.is_empty() {
            return None;
        }
        self.local.as_deref()?.split_once(separator).map(|(_, detail)| detail)
    }

    /// Whether this is a syntactically valid addr-spec.
    pub(crate) fn is_valid(&self) -> bool {
        self.local.is_some() && self.domain.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum T {
    /// An atom or dot-atom run, or a domain literal with its brackets.
    Word(String),
    /// A quoted string's content (unescaped).
    Quoted(String),
    Special(char),
}

fn tokenize(s: &str) -> Vec<T> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => {
                // Comments nest; a backslash quotes the next character.
                let mut depth = 1usize;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '"' => {
                let mut q = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                q.push(n);
                            }
                        }
                        '"' => break,
                        c => q.push(c),
                    }
                }
                out.push(T::Quoted(q));
            }
            '[' => {
                let mut lit = String::from("[");
                for c in chars.by_ref() {
                    if !c.is_whitespace() {
                        lit.push(c);
                    }
                    if c == ']' {
                        break;
                    }
                }
                out.push(T::Word(lit));
            }
            '<' | '>' | ',' | ':' | ';' | '@' | ')' | '\\' => out.push(T::Special(c)),
            c => {
                let mut w = String::new();
                w.push(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "()<>[]:;@\\,\"".contains(n) {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push(T::Word(w));
            }
        }
    }
    out
}

/// All mailboxes in an address-list header value (groups contribute their members).
pub(crate) fn parse_list(value: &str) -> Vec<Addr> {
    let toks = tokenize(value);
    let mut out = Vec::new();
    let mut item: Vec<T> = Vec::new();
    let mut angle = false;
    let mut in_group = false;
    for t in toks {
        match t {
            T::Special('<') => {
                angle = true;
                item.push(t);
            }
            T::Special('>') => {
                angle = false;
                item.push(t);
            }
            T::Special(',') if !angle => flush(&mut item, &mut out),
            T::Special(';') if !angle && in_group => {
                flush(&mut item, &mut out);
                in_group = false;
            }
            // "display-name:" opens a group; the name is not an address.
            T::Special(':') if !angle && !in_group => {
                item.clear();
                in_group = true;
            }
            t => item.push(t),
        }
    }
    flush(&mut item, &mut out);
    out
}

/// Turns the tokens of one mailbox into an [`Addr`] (nothing for an empty item).
fn flush(item: &mut Vec<T>, out: &mut Vec<Addr>) {
    let toks = std::mem::take(item);
    if toks.is_empty() {
        return;
    }
    let spec: &[T] = match toks.iter().position(|t| *t == T::Special('<')) {
        Some(open) => {
            let inner = &toks[open + 1..];
            let inner = match inner.iter().position(|t| *t == T::Special('>')) {
                Some(close) => &inner[..close],
                None => inner,
            };
            // Drop a source route "@a,@b:" (RFC 5228 §5.4 for envelopes; harmless elsewhere).
            match inner.iter().rposition(|t| *t == T::Special(':')) {
                Some(colon) => &inner[colon + 1..],
                None => inner,
            }
        }
        None => &toks,
    };
    out.push(addr_from_tokens(spec));
}

fn addr_from_tokens(toks: &[T]) -> Addr {
    let render = |ts: &[T], quoted_raw: bool| {
        let mut s = String::new();
        for t in ts {
            match t {
                T::Word(w) => s.push_str(w),
                T::Quoted(q) if quoted_raw => {
                    s.push('"');
                    for c in q.chars() {
                        if c == '"' || c == '\\' {
                            s.push('\\');
                        }
                        s.push(c);
                    }
                    s.push('"');
                }
                T::Quoted(q) => s.push_str(q),
                T::Special(c) => s.push(*c),
            }
        }
        s
    };
    let all = render(toks, true);
    let Some(at) = toks.iter().rposition(|t| *t == T::Special('@')) else {
        return Addr { all, local: None, domain: None };
    };
    let (local, domain) = (&toks[..at], &toks[at + 1..]);
    let structurally_ok = !local.is_empty()
        && !domain.is_empty()
        && local.iter().all(|t| !matches!(t, T::Special(_)))
        && domain.iter().all(|t| matches!(t, T::Word(_)));
    if !structurally_ok {
        return Addr { all, local: None, domain: None };
    }
    Addr { all, local: Some(render(local, false)), domain: Some(render(domain, false)) }
}

/// Longest text [`parse_single`] accepts, in bytes.
pub(crate) const MAX_SINGLE_ADDRESS: usize = 1000;

/// The addr-spec of a single address in "sieve-address" syntax (RFC 5228 §2.4.2.3:
/// `addr-spec / phrase "<" addr-spec ">"`, no groups, exactly one). `None` if invalid.
pub(crate) fn parse_single(value: &str) -> Option<String> {
    // RFC 5321 §4.5.3.1 limits a path to 256 octets; allow room for a display name.
    if value.len() > MAX_SINGLE_ADDRESS {
        return None;
    }
    if value.contains([':', ';']) && !value.contains('<') {
        return None; // group syntax is not allowed
    }
    let mut list = parse_list(value);
    if list.len() != 1 {
        return None;
    }
    let a = list.pop()?;
    if !a.is_valid() {
        return None;
    }
    let domain = a.domain.as_deref().unwrap_or_default();
    let domain_ok = domain.starts_with('[')
        || (domain.split('.').all(|label| !label.is_empty())
            && domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.'));
    let local_ok = a.all.len() > domain.len() + 1;
    if !domain_ok || !local_ok || a.all.chars().any(char::is_control) {
        return None;
    }
    Some(a.all)
}

/// An envelope address (RFC 5321 path): angle brackets and a source route are dropped; the null
/// path `<>` (or an empty string) becomes the empty address.
pub(crate) fn parse_envelope(value: &str) -> Addr {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed == "<>" {
        return Addr { all: String::new(), local: None, domain: None };
    }
    let mut inner = trimmed.strip_prefix('<').unwrap_or(trimmed);
    inner = inner.strip_suffix('>').unwrap_or(inner);
    // Source route "@a,@b:user@host" (RFC 5228 §5.4: MUST drop source routes).
    if inner.starts_with('@')
        && let Some((_, rest)) = inner.split_once(':')
    {
        inner = rest;
    }
    let mut list = parse_list(inner);
    match (list.len(), list.pop()) {
        (1, Some(a)) => a,
        _ => Addr { all: inner.to_owned(), local: None, domain: None },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn alls(v: &str) -> Vec<String> {
        parse_list(v).into_iter().map(|a| a.all).collect()
    }

    #[test]
    fn address_lists() {
        assert_eq!(alls("coyote@desert.example.org"), vec!["coyote@desert.example.org"]);
        assert_eq!(
            alls("\"Wile E. Coyote\" <coyote@desert.example.org>, road@acme.example.com (Road Runner)"),
            vec!["coyote@desert.example.org", "road@acme.example.com"]
        );
        assert_eq!(alls("undisclosed-recipients:;"), Vec::<String>::new());
        assert_eq!(
            alls("Friends: a@x.org, \"B, b\" <b@y.org>; c@z.org"),
            vec!["a@x.org", "b@y.org", "c@z.org"]
        );
        assert_eq!(alls("<@route.example,@r2:user@host.example>"), vec!["user@host.example"]);
        assert_eq!(alls("foo@example.com, , bar@example.com,"), vec!["foo@example.com", "bar@example.com"]);
        assert_eq!(alls("<>"), vec![""]);
    }

    #[test]
    fn parts() {
        let a = &parse_list("Ken <ken+sieve@Example.ORG>")[0];
        assert_eq!(a.local.as_deref(), Some("ken+sieve"));
        assert_eq!(a.domain.as_deref(), Some("Example.ORG"));
        assert_eq!(a.user("+"), Some("ken"));
        assert_eq!(a.detail("+"), Some("sieve"));
        let a = &parse_list("ken@example.org")[0];
        assert_eq!(a.user("+"), Some("ken"));
        assert_eq!(a.detail("+"), None);
        let a = &parse_list("ken+@example.org")[0];
        assert_eq!(a.detail("+"), Some(""));
        let a = &parse_list("\"john doe\"@example.org")[0];
        assert_eq!(a.all, "\"john doe\"@example.org");
        assert_eq!(a.local.as_deref(), Some("john doe"));
        let bad = &parse_list("youcouldberich!")[0];
        assert!(!bad.is_valid());
        assert_eq!(bad.all, "youcouldberich!");
        assert_eq!(bad.user("+"), None);
    }

    #[test]
    fn single_addresses() {
        assert_eq!(parse_single("bart@example.com").as_deref(), Some("bart@example.com"));
        assert_eq!(parse_single("Bart Simpson <bart@example.com>").as_deref(), Some("bart@example.com"));
        assert_eq!(parse_single("bart"), None);
        assert_eq!(parse_single("a@b.com, c@d.com"), None);
        assert_eq!(parse_single("group: a@b.com;"), None);
        assert_eq!(parse_single("a@b..com"), None);
        assert_eq!(parse_single("@b.com"), None);
        assert_eq!(parse_single(""), None);
        assert_eq!(parse_single("a@[192.0.2.1]").as_deref(), Some("a@[192.0.2.1]"));
    }

    #[test]
    fn envelope_paths() {
        assert_eq!(parse_envelope("<>").all, "");
        assert_eq!(parse_envelope("").all, "");
        assert_eq!(parse_envelope("<tim@example.com>").all, "tim@example.com");
        assert_eq!(parse_envelope("@a.example,@b.example:tim@example.com").all, "tim@example.com");
        assert_eq!(parse_envelope("<@a.example:tim@example.com>").domain.as_deref(), Some("example.com"));
        assert_eq!(parse_envelope("MAILER-DAEMON").all, "MAILER-DAEMON");
    }
}
