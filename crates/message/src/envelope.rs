//! The IMAP ENVELOPE (RFC 9051 §7.5.2) of a message: selected header values as raw bytes, and
//! address lists parsed from RFC 5322 syntax.
//!
//! Limits: values are unfolded but not decoded (encoded-words stay as sent, 8-bit bytes stay as
//! they are); the address parser is lenient and never fails, so malformed lists yield a best-effort
//! split rather than an error.

use serde::{Deserialize, Serialize};

use crate::bytes_serde;
use crate::header::{Field, KnownFields};

/// ENVELOPE of one message. Sender and Reply-To already default to From (RFC 9051 §7.5.2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Envelope {
    /// `Date:`, unfolded, as sent.
    #[serde(default, with = "bytes_serde::option")]
    pub date: Option<Vec<u8>>,
    /// `Subject:`, unfolded, encoded-words as sent.
    #[serde(default, with = "bytes_serde::option")]
    pub subject: Option<Vec<u8>>,
    /// `From:` addresses.
    #[serde(default)]
    pub from: Vec<Address>,
    /// `Sender:` addresses, or From's when Sender is absent or empty.
    #[serde(default)]
    pub sender: Vec<Address>,
    /// `Reply-To:` addresses, or From's when Reply-To is absent or empty.
    #[serde(default)]
    pub reply_to: Vec<Address>,
    /// `To:` addresses.
    #[serde(default)]
    pub to: Vec<Address>,
    /// `Cc:` addresses.
    #[serde(default)]
    pub cc: Vec<Address>,
    /// `Bcc:` addresses.
    #[serde(default)]
    pub bcc: Vec<Address>,
    /// `In-Reply-To:`, unfolded, as sent.
    #[serde(default, with = "bytes_serde::option")]
    pub in_reply_to: Option<Vec<u8>>,
    /// `Message-ID:`, unfolded, as sent.
    #[serde(default, with = "bytes_serde::option")]
    pub message_id: Option<Vec<u8>>,
}

/// One element of an ENVELOPE address list.
///
/// Groups (RFC 5322 §3.4) appear as a start marker (`mailbox` = group name, `host` = None), the
/// members, and an end marker (all fields None), as RFC 9051 §7.5.2 prescribes. An address without
/// a domain gets an empty `host` (`Some(b"")`), so it cannot be mistaken for a group marker.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Address {
    /// Display name (phrase with quotes removed), or the comment when there is no phrase.
    #[serde(default, with = "bytes_serde::option")]
    pub name: Option<Vec<u8>>,
    /// Source route (`@a,@b`), obsolete syntax.
    #[serde(default, with = "bytes_serde::option")]
    pub adl: Option<Vec<u8>>,
    /// Local part, or the group name in a start-of-group marker.
    #[serde(default, with = "bytes_serde::option")]
    pub mailbox: Option<Vec<u8>>,
    /// Domain; None only in group markers.
    #[serde(default, with = "bytes_serde::option")]
    pub host: Option<Vec<u8>>,
}

impl Address {
    /// True for a start-of-group marker.
    pub fn is_group_start(&self) -> bool {
        self.host.is_none() && self.mailbox.is_some()
    }

    /// True for an end-of-group marker.
    pub fn is_group_end(&self) -> bool {
        self.host.is_none() && self.mailbox.is_none()
    }
}

/// At most this many entries (addresses and group markers) are kept per address field, so a
/// hostile `To:` of 1 MiB of commas cannot turn into tens of megabytes of structures.
pub const MAX_ADDRESSES: usize = 2000;

/// Words kept per address item; a longer phrase is cut (it is already longer than any display).
const MAX_WORDS: usize = 256;

impl Envelope {
    /// Builds the envelope from the header fields of one message.
    pub(crate) fn from_fields(raw: &[u8], known: &KnownFields) -> Envelope {
        let text = |f: Option<Field>| f.map(|f| f.unfolded(raw));
        let list = |f: Option<Field>| f.map(|f| parse_address_list(&f.unfolded(raw))).unwrap_or_default();
        let lists = |fields: &[Field]| combined_address_lists(raw, fields);
        let from = list(known.from);
        let mut sender = list(known.sender);
        let mut reply_to = lists(&known.reply_to);
        // RFC 9051 §7.5.2: Sender and Reply-To, when absent or empty, are set to From.
        if sender.is_empty() {
            sender.clone_from(&from);
        }
        if reply_to.is_empty() {
            reply_to.clone_from(&from);
        }
        Envelope {
            date: text(known.date),
            subject: text(known.subject),
            from,
            sender,
            reply_to,
            to: lists(&known.to),
            cc: lists(&known.cc),
            bcc: lists(&known.bcc),
            in_reply_to: text(known.in_reply_to),
            message_id: text(known.message_id),
        }
    }
}

/// The address lists of every occurrence of one field, one after the other (RFC 5322 §4.5.3).
///
/// Each field is parsed on its own, so a group left open in one does not swallow the next. At
/// most [`MAX_ADDRESSES`] entries in all: a field that would go past them is left out whole, so
/// group markers stay balanced.
fn combined_address_lists(raw: &[u8], fields: &[Field]) -> Vec<Address> {
    let mut out = Vec::new();
    for field in fields {
        let list = parse_address_list(&field.unfolded(raw));
        if out.len() + list.len() > MAX_ADDRESSES {
            break;
        }
        out.extend(list);
    }
    out
}

/// Parses an unfolded RFC 5322 address list (§3.4) into ENVELOPE address structures.
///
/// Lenient: never fails. Display names and local parts lose their quoting (RFC 9051 §7.5.2
/// addr-name, addr-mailbox); encoded-words are left alone. When there is no display name, a
/// comment (`joe@example.com (Joe)`) is used instead, as is common practice.
pub fn parse_address_list(value: &[u8]) -> Vec<Address> {
    let mut out = Vec::new();
    let mut tokens = Tokens { s: value, pos: 0 };
    let mut item = Item::default();
    let mut in_group = false;
    while out.len() < MAX_ADDRESSES {
        let Some(token) = tokens.next() else { break };
        match token.tok {
            Tok::Special(b',') => item.finish(&mut out),
            Tok::Special(b';') => {
                item.finish(&mut out);
                if in_group {
                    out.push(Address::default());
                    in_group = false;
                }
            }
            Tok::Special(b':') if !in_group => {
                // RFC 5322 §3.4: group = display-name ":" [group-list] ";"
                let name = phrase(&item.words);
                item = Item::default();
                out.push(Address { mailbox: Some(name), ..Address::default() });
                in_group = true;
            }
            Tok::Special(b'<') => {
                let mut angle = Vec::new();
                for t in tokens.by_ref() {
                    if matches!(t.tok, Tok::Special(b'>')) {
                        break;
                    }
                    if angle.len() < MAX_WORDS {
                        angle.push(t);
                    }
                }
                if item.angle.is_none() {
                    item.angle = Some(angle);
                }
            }
            Tok::Comment(c) => {
                if item.comment.is_none() {
                    item.comment = Some(c);
                }
            }
            // Stray brackets and nested group colons carry no address information.
            Tok::Special(b'>' | b')' | b':') => {}
            _ => {
                // Words after `<...>` are garbage; words before it are the display name.
                if item.angle.is_none() && item.words.len() < MAX_WORDS {
                    item.words.push(token);
                }
            }
        }
    }
    if out.len() < MAX_ADDRESSES {
        item.finish(&mut out);
    }
    out.truncate(MAX_ADDRESSES);
    // An unterminated group (or one cut by the limit) is closed, so the markers stay balanced.
    let open = out.iter().fold(false, |open, a| match (a.is_group_start(), a.is_group_end()) {
        (true, _) => true,
        (_, true) => false,
        _ => open,
    });
    if open {
        out.push(Address::default());
    }
    out
}

/// The text SEARCH FROM/TO/CC/BCC match for one raw address field value: the addresses as
/// RFC 5322 §3.4 parses them, written back in a normal form.
///
/// Each address is `Display Name <local@domain>`, or `local@domain` without a display name (a
/// comment stands in for a missing one, as in ENVELOPE); a group is `name: members;`; items are
/// separated by `, `. Comments, quoting, folding white space and source routes are gone, and
/// RFC 2047 encoded-words in display and group names are decoded, so a substring search finds
/// `user@domain` in `<user (comment)@ (comment) domain>` and the name a client shows. Lenient and
/// never failing, like [`parse_address_list`]; `value` may be folded.
#[must_use]
pub fn address_search_text(value: &[u8]) -> String {
    let list = parse_address_list(&crate::header::unfold(value));
    let mut out = String::new();
    // Whether the next item is the first of its level (the field, or a group's member list).
    let mut first = true;
    for a in &list {
        if a.is_group_end() {
            out.push(';');
            first = false;
            continue;
        }
        if !first {
            out.push_str(", ");
        }
        first = false;
        let name = a.name.as_deref().map(crate::decode_header_text).filter(|n| !n.is_empty());
        let mailbox = String::from_utf8_lossy(a.mailbox.as_deref().unwrap_or_default());
        if a.is_group_start() {
            out.push_str(&crate::decode_header_text(mailbox.as_bytes()));
            out.push_str(": ");
            first = true;
            continue;
        }
        let host = String::from_utf8_lossy(a.host.as_deref().unwrap_or_default());
        let spec = if host.is_empty() { mailbox.into_owned() } else { format!("{mailbox}@{host}") };
        match name {
            Some(name) => {
                out.push_str(&name);
                out.push_str(" <");
                out.push_str(&spec);
                out.push('>');
            }
            None => out.push_str(&spec),
        }
    }
    out
}

/// One lexical token of an address list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    /// A run of atom text (8-bit bytes included, RFC 6532).
    Atom(&'a [u8]),
    /// The inside of a quoted-string, escapes not yet removed.
    Quoted(&'a [u8]),
    /// The inside of a comment.
    Comment(&'a [u8]),
    /// A domain literal, brackets included.
    Literal(&'a [u8]),
    /// One of `< > : ; @ , .` or a stray `)`.
    Special(u8),
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    tok: Tok<'a>,
    /// Whitespace or a comment came before this token (it separates phrase words).
    space_before: bool,
}

/// Streaming tokenizer over an unfolded value (RFC 5322 §3.2).
struct Tokens<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Tokens<'a> {
    /// Scans a delimited run starting after the opening byte; returns (inside, next position).
    /// Backslash escapes the next byte; `nest` allows nested comments.
    fn delimited(&self, open: u8, close: u8, nest: bool) -> (&'a [u8], usize) {
        let s = self.s;
        let start = self.pos + 1;
        let mut depth = 1usize;
        let mut i = start;
        while i < s.len() {
            match s[i] {
                b'\\' => i += 1,
                b if b == close => {
                    depth -= 1;
                    if depth == 0 {
                        return (&s[start..i], i + 1);
                    }
                }
                b if nest && b == open => depth += 1,
                _ => {}
            }
            i += 1;
        }
        // Unterminated: everything to the end.
        (&s[start.min(s.len())..], s.len())
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let s = self.s;
        let mut space_before = false;
        while self.pos < s.len() {
            let b = s[self.pos];
            let tok = match b {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    space_before = true;
                    self.pos += 1;
                    continue;
                }
                b'"' => {
                    let (inside, next) = self.delimited(b'"', b'"', false);
                    self.pos = next;
                    Tok::Quoted(inside)
                }
                b'(' => {
                    let (inside, next) = self.delimited(b'(', b')', true);
                    self.pos = next;
                    Tok::Comment(inside)
                }
                b'[' => {
                    let start = self.pos;
                    let (_, next) = self.delimited(b'[', b']', false);
                    self.pos = next;
                    Tok::Literal(&s[start..next])
                }
                b'<' | b'>' | b':' | b';' | b'@' | b',' | b'.' | b')' | b']' => {
                    self.pos += 1;
                    Tok::Special(b)
                }
                _ => {
                    let start = self.pos;
                    while self.pos < s.len() && !is_atom_end(s[self.pos]) {
                        self.pos += 1;
                    }
                    Tok::Atom(&s[start..self.pos])
                }
            };
            return Some(Token { tok, space_before });
        }
        None
    }
}

/// Bytes that end an atom: whitespace and the RFC 5322 specials that matter here.
fn is_atom_end(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t'
            | b'\r'
            | b'\n'
            | b'"'
            | b'('
            | b')'
            | b'['
            | b']'
            | b'<'
            | b'>'
            | b':'
            | b';'
            | b'@'
            | b','
            | b'.'
    )
}

/// The tokens of one address between separators.
#[derive(Debug, Default)]
struct Item<'a> {
    words: Vec<Token<'a>>,
    angle: Option<Vec<Token<'a>>>,
    comment: Option<&'a [u8]>,
}

impl Item<'_> {
    /// Turns the collected tokens into an address (if they make one) and resets.
    fn finish(&mut self, out: &mut Vec<Address>) {
        let item = std::mem::take(self);
        let comment_name = || item.comment.map(|c| unescape(trim_wsp(c))).filter(|c| !c.is_empty());
        if let Some(angle) = &item.angle {
            // RFC 5322 §3.4: name-addr = [display-name] angle-addr
            let name = Some(phrase(&item.words)).filter(|n| !n.is_empty()).or_else(comment_name);
            let (adl, spec) = split_route(angle);
            if spec.is_empty() && name.is_none() {
                return;
            }
            let (mailbox, host) = addr_spec(spec);
            out.push(Address { name, adl, mailbox: Some(mailbox), host: Some(host) });
        } else if !item.words.is_empty() {
            let (mailbox, host) = addr_spec(&item.words);
            out.push(Address { name: comment_name(), adl: None, mailbox: Some(mailbox), host: Some(host) });
        }
    }
}

/// Splits an obsolete source route (`@a,@b:`) off the inside of an angle-addr.
fn split_route<'t, 'a>(angle: &'t [Token<'a>]) -> (Option<Vec<u8>>, &'t [Token<'a>]) {
    if !matches!(angle.first().map(|t| t.tok), Some(Tok::Special(b'@'))) {
        return (None, angle);
    }
    let Some(colon) = angle.iter().position(|t| matches!(t.tok, Tok::Special(b':'))) else {
        return (None, angle);
    };
    let mut route = Vec::new();
    for t in &angle[..colon] {
        push_raw(&mut route, t.tok);
    }
    (Some(route), &angle[colon + 1..])
}

/// local-part "@" domain → (mailbox without quoting, host). No `@` gives an empty host.
fn addr_spec(tokens: &[Token<'_>]) -> (Vec<u8>, Vec<u8>) {
    let at = tokens.iter().position(|t| matches!(t.tok, Tok::Special(b'@')));
    let (local, domain) = match at {
        Some(at) => (&tokens[..at], &tokens[at + 1..]),
        None => (tokens, &tokens[..0]),
    };
    let mut mailbox = Vec::new();
    for t in local {
        match t.tok {
            Tok::Quoted(q) => mailbox.extend_from_slice(&unescape(q)),
            other => push_raw(&mut mailbox, other),
        }
    }
    let mut host = Vec::new();
    for t in domain {
        push_raw(&mut host, t.tok);
    }
    (mailbox, host)
}

/// A phrase with its quoting removed and runs of whitespace reduced to one space.
fn phrase(words: &[Token<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in words {
        if w.space_before && !out.is_empty() {
            out.push(b' ');
        }
        match w.tok {
            Tok::Quoted(q) => out.extend_from_slice(&unescape(q)),
            other => push_raw(&mut out, other),
        }
    }
    out
}

/// Appends a token as it was written (quoted strings keep their quotes).
fn push_raw(out: &mut Vec<u8>, tok: Tok<'_>) {
    match tok {
        Tok::Atom(a) | Tok::Literal(a) => out.extend_from_slice(a),
        Tok::Quoted(q) => {
            out.push(b'"');
            out.extend_from_slice(q);
            out.push(b'"');
        }
        Tok::Comment(_) => {}
        Tok::Special(b) => out.push(b),
    }
}

/// Removes backslash quoting (RFC 5322 §3.2.1 quoted-pair).
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut iter = s.iter();
    while let Some(&b) = iter.next() {
        if b == b'\\' {
            if let Some(&next) = iter.next() {
                out.push(next);
            }
        } else {
            out.push(b);
        }
    }
    out
}

fn trim_wsp(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addr(name: Option<&str>, adl: Option<&str>, mailbox: Option<&str>, host: Option<&str>) -> Address {
        let b = |s: Option<&str>| s.map(|s| s.as_bytes().to_vec());
        Address { name: b(name), adl: b(adl), mailbox: b(mailbox), host: b(host) }
    }

    #[test]
    fn rfc9051_example_addresses() {
        // The FETCH example of RFC 9051 §7.5.2 / RFC 3501 §7.4.2.
        let list = parse_address_list(b"\"Terry Gray\" <gray@cac.washington.edu>");
        assert_eq!(list, vec![addr(Some("Terry Gray"), None, Some("gray"), Some("cac.washington.edu"))]);
        let list = parse_address_list(b"imap@cac.washington.edu");
        assert_eq!(list, vec![addr(None, None, Some("imap"), Some("cac.washington.edu"))]);
    }

    #[test]
    fn several_addresses_and_phrases() {
        let list = parse_address_list(
            b"John Q. Public <JQP@example.com>, \"Doe, Jane\" <jane@x.example>,joe@y.example (Joe B)",
        );
        assert_eq!(
            list,
            vec![
                addr(Some("John Q. Public"), None, Some("JQP"), Some("example.com")),
                addr(Some("Doe, Jane"), None, Some("jane"), Some("x.example")),
                addr(Some("Joe B"), None, Some("joe"), Some("y.example")),
            ]
        );
    }

    #[test]
    fn groups() {
        // RFC 5322 §A.1.3.
        let list = parse_address_list(
            b"A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, Undisclosed recipients:;",
        );
        assert_eq!(
            list,
            vec![
                addr(None, None, Some("A Group"), None),
                addr(Some("Ed Jones"), None, Some("c"), Some("a.test")),
                addr(None, None, Some("joe"), Some("where.test")),
                addr(Some("John"), None, Some("jdoe"), Some("one.test")),
                addr(None, None, None, None),
                addr(None, None, Some("Undisclosed recipients"), None),
                addr(None, None, None, None),
            ]
        );
        assert!(list[0].is_group_start() && list[4].is_group_end());
        // Unterminated group still gets its end marker.
        let list = parse_address_list(b"g: a@b");
        assert_eq!(list.len(), 3);
        assert!(list[2].is_group_end());
    }

    #[test]
    fn route_quoting_and_literals() {
        let list = parse_address_list(b"<@a.example,@b.example:joe@c.example>");
        assert_eq!(list, vec![addr(None, Some("@a.example,@b.example"), Some("joe"), Some("c.example"))]);
        let list = parse_address_list(b"\"john \\\"q\\\" doe\"@[192.0.2.1]");
        assert_eq!(list, vec![addr(None, None, Some("john \"q\" doe"), Some("[192.0.2.1]"))]);
        // Encoded-words stay as sent.
        let list = parse_address_list(b"=?utf-8?q?J=C3=B6rg?= <j@x.example>");
        assert_eq!(list[0].name.as_deref(), Some(&b"=?utf-8?q?J=C3=B6rg?="[..]));
    }

    #[test]
    fn search_text_is_the_parsed_addresses() {
        let t = |v: &str| address_search_text(v.as_bytes());
        assert_eq!(t(" user-from@domain.org\r\n"), "user-from@domain.org");
        assert_eq!(t(" RealFrom <user-from@domain.org>\r\n"), "RealFrom <user-from@domain.org>");
        assert_eq!(t(" <user-from (comment)@ (comment) domain.org>\r\n"), "user-from@domain.org");
        // A trailing comment serves as the display name when there is no phrase.
        assert_eq!(t(" user-from@domain.org (RealFrom)\r\n"), "RealFrom <user-from@domain.org>");
        assert_eq!(
            t(" user-from1@domain.org,\r\n user-from2@domain.org\r\n"),
            "user-from1@domain.org, user-from2@domain.org"
        );
        assert_eq!(
            t(
                " groupname: groupuser1@domain.org, groupuser2@domain.org;,\r\n  groupname2: groupuser3@domain.org;\r\n"
            ),
            "groupname: groupuser1@domain.org, groupuser2@domain.org;, groupname2: groupuser3@domain.org;"
        );
        assert_eq!(t(" Undisclosed recipients:;"), "Undisclosed recipients: ;");
        // Quotes and routes go; encoded-words are decoded (also the ones a sender wrongly quoted,
        // which is what a reader of the name expects to search for).
        assert_eq!(
            t(" \"Doe, =?utf-8?q?J=C3=B6rg?=\" <@route.example:jd@x.example>, =?utf-8?q?J=C3=B6rg?= <j@y>"),
            "Doe, Jörg <jd@x.example>, Jörg <j@y>"
        );
        assert_eq!(t(" local-only"), "local-only");
        assert_eq!(t(""), "");
    }

    #[test]
    fn malformed_input_is_tolerated() {
        assert!(parse_address_list(b"").is_empty());
        assert!(parse_address_list(b" , ,, ").is_empty());
        assert_eq!(parse_address_list(b"joe"), vec![addr(None, None, Some("joe"), Some(""))]);
        assert_eq!(parse_address_list(b"Joe <joe@x"), vec![addr(Some("Joe"), None, Some("joe"), Some("x"))]);
        assert_eq!(parse_address_list(b"\"unterminated <a@b>").len(), 1);
        assert_eq!(parse_address_list(b"(comment only)"), vec![]);
        let many = b"a@b,".repeat(MAX_ADDRESSES + 10);
        assert_eq!(parse_address_list(&many).len(), MAX_ADDRESSES);
        // A group cut by the limit still ends with its end marker.
        let mut grouped = b"g:".to_vec();
        grouped.extend(b"a@b,".repeat(MAX_ADDRESSES + 10));
        grouped.extend(b";");
        let list = parse_address_list(&grouped);
        assert_eq!(list.len(), MAX_ADDRESSES + 1);
        assert!(list[0].is_group_start() && list[MAX_ADDRESSES].is_group_end());
    }
}
