//! IMAP URLs (RFC 5092) of one message or message part, as CATENATE (RFC 4469) and URLAUTH
//! (RFC 4467) use them.
//!
//! Three shapes are accepted:
//! - absolute, `imap://user@host/INBOX;UIDVALIDITY=1/;UID=20/;SECTION=1.2` (URLAUTH);
//! - an absolute path, `/INBOX;UIDVALIDITY=1/;UID=20` (CATENATE, relative to `imap://user@server/`),
//!   or the same without the leading `/`;
//! - relative to the selected mailbox, `;UID=20/;SECTION=1` (CATENATE in the selected state).
//!
//! After the UID come an optional `;SECTION=` (RFC 5092 `isection`), an optional `;PARTIAL=`
//! (RFC 5550 URL-PARTIAL) and an optional URLAUTH part: `[;EXPIRE=date-time] ;URLAUTH=access
//! [:mechanism:token]` (RFC 4467 §2.1, RFC 5092 §11). Keys are case-insensitive. Message
//! lists (`?search`), a mailbox alone or a server alone are not message URLs and are refused.
//!
//! Limits: at most [`MAX_URL_LEN`] bytes; the parser is linear and never panics.

use std::num::NonZeroU32;

use crate::types::Section;

/// Longest URL accepted (RFC 5092 sets none; 8 KiB holds any sane mailbox name and section).
pub const MAX_URL_LEN: usize = 8 * 1024;

/// A parsed message (or message part) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// `imap://[user[;AUTH=...]@]host[:port]` of an absolute URL; `None` for a relative one.
    pub server: Option<UrlServer>,
    /// The mailbox name, percent-decoded (UTF-8, RFC 5092 §3.1 uses no modified UTF-7);
    /// `None` when the URL is relative to the selected mailbox.
    pub mailbox: Option<String>,
    /// `;UIDVALIDITY=`: the URL is only valid while the mailbox has this UIDVALIDITY.
    pub uid_validity: Option<NonZeroU32>,
    /// `;UID=`.
    pub uid: NonZeroU32,
    /// `;SECTION=`, parsed as a FETCH section spec; `None`: the whole message.
    pub section: Option<Section>,
    /// `;PARTIAL=offset[.length]` (RFC 5092 §3, RFC 5550 URL-PARTIAL).
    pub partial: Option<UrlPartial>,
    /// `;EXPIRE=` as Unix seconds (RFC 4467 §2.1: after it the URL is invalid).
    pub expire: Option<i64>,
    /// `;URLAUTH=access` (RFC 4467 §2.1).
    pub access: Option<UrlAccess>,
    /// `:mechanism:token` after the access identifier.
    pub verifier: Option<UrlVerifier>,
    /// Bytes of the URL before the verifier: the `url-rump` a URLAUTH token is computed over
    /// (RFC 4467 §6: the whole URL up to and including the access identifier).
    pub rump_len: usize,
}

/// The server part of an absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlServer {
    /// `enc-user`, decoded.
    pub user: Option<String>,
    /// The host, lowercased.
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
}

/// `;PARTIAL=offset[.length]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlPartial {
    /// First octet (0-based).
    pub offset: u32,
    /// How many octets at most; `None`: to the end.
    pub length: Option<NonZeroU32>,
}

/// Who may use a URLAUTH URL (RFC 4467 §3 `access`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlAccess {
    /// `submit+user`: a session authenticated as this user, acting for the submission server.
    Submit(String),
    /// `user+user`: a session authenticated as this user.
    User(String),
    /// `authuser`: any authenticated session.
    AuthUser,
    /// `anonymous`: any session at all.
    Anonymous,
}

/// `:mechanism:token` (RFC 4467 §3 `iua-verifier`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlVerifier {
    /// The mechanism name, uppercased (`INTERNAL`).
    pub mechanism: String,
    /// The token, 32 or more hex digits, lowercased.
    pub token: String,
}

/// Why a URL is not a usable message URL (the text goes into a `NO [BADURL ...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(pub &'static str);

impl ImapUrl {
    /// Parses `url` (see the module docs for the accepted shapes).
    pub fn parse(url: &str) -> Result<ImapUrl, UrlError> {
        if url.len() > MAX_URL_LEN {
            return Err(UrlError("URL too long"));
        }
        let mut c = Cursor { s: url.as_bytes(), pos: 0 };
        let server = if c.eat_ci("imap://") {
            Some(c.server()?)
        } else if c.peek().is_some_and(|b| b.is_ascii_alphabetic()) && url.contains("://") {
            return Err(UrlError("not an IMAP URL"));
        } else {
            None
        };
        let mut mailbox = None;
        let mut uid_validity = None;
        // A path without the leading `/` is relative to the base's root as well (RFC 3986 §5.2:
        // the base `imap://user@server/` or `.../mailbox` has no directory below the root).
        let rooted = c.eat(b'/') || (server.is_none() && c.peek().is_some_and(|b| b != b';'));
        if rooted {
            let raw = c.take_while(|b| b != b';' && b != b'?');
            if c.peek() == Some(b'?') {
                return Err(UrlError("a message list is not a message URL"));
            }
            let (raw, slash) = match raw.strip_suffix(b"/") {
                Some(r) => (r, true),
                None => (raw, false),
            };
            if raw.is_empty() {
                return Err(UrlError("no mailbox in URL"));
            }
            let name = String::from_utf8(decode(raw)?).map_err(|_| UrlError("mailbox name is not UTF-8"))?;
            mailbox = Some(name);
            if !slash {
                if !c.eat_ci(";UIDVALIDITY=") {
                    return Err(UrlError("no UID in URL"));
                }
                uid_validity = Some(c.nz_number()?);
                if !c.eat(b'/') {
                    return Err(UrlError("no UID in URL"));
                }
            }
        } else if server.is_some() {
            return Err(UrlError("no mailbox in URL"));
        }
        if !c.eat_ci(";UID=") {
            return Err(UrlError("no UID in URL"));
        }
        let uid = c.nz_number()?;
        let mut section = None;
        if c.eat_ci("/;SECTION=") {
            let raw = c.take_while(|b| b != b'/' && b != b';');
            let text = decode(raw)?;
            section = Some(crate::parse::parse_section_spec(&text).ok_or(UrlError("bad section in URL"))?);
        }
        let mut partial = None;
        if c.eat_ci("/;PARTIAL=") {
            let offset = c.number()?;
            let length = if c.eat(b'.') { Some(c.nz_number()?) } else { None };
            partial = Some(UrlPartial { offset, length });
        }
        let mut expire = None;
        if c.eat_ci(";EXPIRE=") {
            let raw = c.take_while(|b| b != b';');
            expire = Some(rfc3339(raw).ok_or(UrlError("bad EXPIRE date-time"))?);
        }
        let mut access = None;
        let mut verifier = None;
        let mut rump_len = url.len();
        if c.eat_ci(";URLAUTH=") {
            let raw = c.take_while(|b| b != b':');
            access = Some(parse_access(raw)?);
            rump_len = c.pos;
            if c.eat(b':') {
                let mech = c.take_while(|b| b != b':');
                if mech.is_empty()
                    || !mech.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
                {
                    return Err(UrlError("bad URLAUTH mechanism"));
                }
                if !c.eat(b':') {
                    return Err(UrlError("no URLAUTH token"));
                }
                let token = c.take_while(|b| b.is_ascii_hexdigit());
                if token.len() < 32 {
                    return Err(UrlError("bad URLAUTH token"));
                }
                verifier = Some(UrlVerifier {
                    mechanism: String::from_utf8_lossy(mech).to_ascii_uppercase(),
                    token: String::from_utf8_lossy(token).to_ascii_lowercase(),
                });
            }
        } else if expire.is_some() {
            return Err(UrlError(";EXPIRE= without ;URLAUTH="));
        }
        if c.pos != url.len() {
            return Err(UrlError("unexpected text in URL"));
        }
        Ok(ImapUrl {
            server,
            mailbox,
            uid_validity,
            uid,
            section,
            partial,
            expire,
            access,
            verifier,
            rump_len,
        })
    }
}

/// `access = ("submit+" enc-user) / ("user+" enc-user) / "authuser" / "anonymous"`.
fn parse_access(raw: &[u8]) -> Result<UrlAccess, UrlError> {
    let user = |rest: &[u8]| -> Result<String, UrlError> {
        let name = String::from_utf8(decode(rest)?).map_err(|_| UrlError("user name is not UTF-8"))?;
        if name.is_empty() { Err(UrlError("empty user in URLAUTH access")) } else { Ok(name) }
    };
    let lower = raw.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix(b"submit+") {
        Ok(UrlAccess::Submit(user(&raw[raw.len() - rest.len()..])?))
    } else if let Some(rest) = lower.strip_prefix(b"user+") {
        Ok(UrlAccess::User(user(&raw[raw.len() - rest.len()..])?))
    } else if lower == b"authuser" {
        Ok(UrlAccess::AuthUser)
    } else if lower == b"anonymous" {
        Ok(UrlAccess::Anonymous)
    } else {
        Err(UrlError("unknown URLAUTH access identifier"))
    }
}

/// Percent-decoding (RFC 3986 §2.1); a `%` not followed by two hex digits is an error.
fn decode(raw: &[u8]) -> Result<Vec<u8>, UrlError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw.get(i + 1..i + 3).ok_or(UrlError("bad percent-encoding"))?;
            let hi = hex_val(hex[0]).ok_or(UrlError("bad percent-encoding"))?;
            let lo = hex_val(hex[1]).ok_or(UrlError("bad percent-encoding"))?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn hex_val(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Percent-encodes `s` for a URL path or user part: unreserved characters and `sub-delims-sh`
/// / `&` / `=` / `:` / `@` stay (RFC 5092 `bchar`), `/` stays when `keep_slash`.
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b','
            )
            || matches!(b, b'&' | b'=' | b':' | b'@')
            || (keep_slash && b == b'/');
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 3339 `date-time` (`2006-05-01T12:00:00Z`, fractions and offsets allowed) → Unix seconds.
fn rfc3339(raw: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(raw).ok()?;
    let num = |t: &str| -> Option<i64> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (date, time) = s.split_once(['T', 't'])?;
    let mut d = date.split('-');
    let (year, month, day) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let (year, month, day) = (num(year)?, num(month)?, num(day)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (c, off) = time.split_at(at);
        let (h, m) = off[1..].split_once(':')?;
        let minutes = num(h)? * 60 + num(m)?;
        (c, if off.starts_with('-') { -minutes } else { minutes })
    };
    let clock = clock.split_once('.').map_or(clock, |(whole, frac)| {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) { "" } else { whole }
    });
    let mut t = clock.split(':');
    let (h, m, sec) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    if t.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = crate::datetime::days_from_civil(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?);
    Some(days * 86_400 + h * 3600 + m * 60 + sec - offset * 60)
}

/// A position in the URL being parsed.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_ci(&mut self, word: &str) -> bool {
        let n = word.len();
        let hit = self.s.get(self.pos..self.pos + n).is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()));
        if hit {
            self.pos += n;
        }
        hit
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn number(&mut self) -> Result<u32, UrlError> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()).ok_or(UrlError("bad number in URL"))
    }

    fn nz_number(&mut self) -> Result<NonZeroU32, UrlError> {
        NonZeroU32::new(self.number()?).ok_or(UrlError("zero in URL"))
    }

    /// `iserver = [iuserinfo "@"] host [":" port]`, up to the `/` of the path (not consumed).
    fn server(&mut self) -> Result<UrlServer, UrlError> {
        let authority = self.take_while(|b| b != b'/');
        let (userinfo, hostport) = match authority.iter().rposition(|&b| b == b'@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let user = match userinfo {
            Some(info) => {
                // `iuserinfo = enc-user [iauth] / [enc-user] iauth`; the mechanism is ignored.
                let end = info.iter().position(|&b| b == b';').unwrap_or(info.len());
                let name = String::from_utf8(decode(&info[..end])?)
                    .map_err(|_| UrlError("user name is not UTF-8"))?;
                (!name.is_empty()).then_some(name)
            }
            None => None,
        };
        let (host, port) = if hostport.starts_with(b"[") {
            let close = hostport.iter().position(|&b| b == b']').ok_or(UrlError("bad host"))?;
            (&hostport[..=close], &hostport[close + 1..])
        } else {
            let colon = hostport.iter().position(|&b| b == b':').unwrap_or(hostport.len());
            (&hostport[..colon], &hostport[colon..])
        };
        let port = match port {
            [] => None,
            [b':', digits @ ..] => Some(
                std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()).ok_or(UrlError("bad port"))?,
            ),
            _ => return Err(UrlError("bad host")),
        };
        if host.is_empty()
            || !host.iter().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':' | b'%')
            })
        {
            return Err(UrlError("bad host"));
        }
        Ok(UrlServer { user, host: String::from_utf8_lossy(host).to_ascii_lowercase(), port })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::types::SectionText;

    #[test]
    fn rfc4469_relative_urls() {
        let u = ImapUrl::parse("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME").unwrap();
        assert_eq!(u.server, None);
        assert_eq!(u.mailbox.as_deref(), Some("Drafts"));
        assert_eq!(u.uid_validity.unwrap().get(), 385_759_045);
        assert_eq!(u.uid.get(), 20);
        let s = u.section.unwrap();
        assert_eq!(s.part.len(), 1);
        assert_eq!(s.text, Some(SectionText::Mime));
        let u = ImapUrl::parse("/Drafts;UIDVALIDITY=385759045/;UID=30").unwrap();
        assert!(u.section.is_none());
        let u = ImapUrl::parse("/Drafts;UIDVALIDITY=385759045/;UID=20/;Section=HEADER").unwrap();
        assert_eq!(u.section.unwrap().text, Some(SectionText::Header));
        // RFC 8508 §4.2: no UIDVALIDITY, `/` before `;UID=`.
        let u = ImapUrl::parse("/Drafts/;UID=3002").unwrap();
        assert_eq!((u.mailbox.as_deref(), u.uid_validity, u.uid.get()), (Some("Drafts"), None, 3002));
        // Without the leading slash: the same, relative to the root.
        let u = ImapUrl::parse("Drafts/;UID=7").unwrap();
        assert_eq!((u.mailbox.as_deref(), u.uid.get()), (Some("Drafts"), 7));
        // Relative to the selected mailbox.
        let u = ImapUrl::parse(";UID=5/;SECTION=2.HEADER.FIELDS%20(TO%20FROM)/;PARTIAL=10.20").unwrap();
        assert_eq!(u.mailbox, None);
        assert_eq!(
            u.section.unwrap().text,
            Some(SectionText::HeaderFields(vec!["TO".into(), "FROM".into()]))
        );
        assert_eq!(u.partial, Some(UrlPartial { offset: 10, length: NonZeroU32::new(20) }));
        // Percent-encoded UTF-8 mailbox names with levels.
        let u = ImapUrl::parse("/Other%20Users/bob/K%C3%BCche/;UID=1").unwrap();
        assert_eq!(u.mailbox.as_deref(), Some("Other Users/bob/Küche"));
        assert_eq!(u.rump_len, "/Other%20Users/bob/K%C3%BCche/;UID=1".len());
    }

    #[test]
    fn rfc4467_urlauth_urls() {
        let rump = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred";
        let u = ImapUrl::parse(rump).unwrap();
        let server = u.server.clone().unwrap();
        assert_eq!(
            (server.user.as_deref(), server.host.as_str(), server.port),
            (Some("joe"), "example.com", None)
        );
        assert_eq!(u.access, Some(UrlAccess::Submit("fred".into())));
        assert_eq!(u.verifier, None);
        assert_eq!(u.rump_len, rump.len());
        let full = format!("{rump}:internal:91354a473744909de610943775f92038");
        let u = ImapUrl::parse(&full).unwrap();
        assert_eq!(u.rump_len, rump.len());
        let v = u.verifier.unwrap();
        assert_eq!(
            (v.mechanism.as_str(), v.token.as_str()),
            ("INTERNAL", "91354a473744909de610943775f92038")
        );
        let u = ImapUrl::parse(
            "imap://joe@example.com:143/INBOX;UIDVALIDITY=7/;uid=20;expire=2006-05-01T08:00:00-07:00;urlauth=anonymous",
        )
        .unwrap();
        assert_eq!(u.expire, Some(1_146_495_600));
        assert_eq!(u.server.unwrap().port, Some(143));
        assert_eq!(u.access, Some(UrlAccess::Anonymous));
        let u = ImapUrl::parse("imap://a@h/INBOX/;UID=1;URLAUTH=user+b%40c").unwrap();
        assert_eq!(u.access, Some(UrlAccess::User("b@c".into())));
        assert_eq!(
            ImapUrl::parse("imap://a@h/INBOX/;UID=1;URLAUTH=authuser").unwrap().access,
            Some(UrlAccess::AuthUser)
        );
    }

    #[test]
    fn bad_urls() {
        for bad in [
            "",
            "/",
            "/INBOX",
            "/INBOX/;UID=0",
            "/INBOX;UIDVALIDITY=0/;UID=1",
            "/INBOX;UIDVALIDITY=1;UID=1",
            "/INBOX/;UID=x",
            "/INBOX?SUBJECT%20x",
            "/INBOX/;UID=1/;SECTION=FOO",
            "/INBOX/;UID=1/;SECTION=1.MIME.x",
            "/INBOX/;UID=1 ",
            "/%ZZ/;UID=1",
            "/%FF/;UID=1",
            "http://example.com/INBOX/;UID=1",
            "imap://host",
            "imap://host/;UID=1",
            "imap://a@h/INBOX/;UID=1;URLAUTH=root",
            "imap://a@h/INBOX/;UID=1;URLAUTH=submit+",
            "imap://a@h/INBOX/;UID=1;URLAUTH=authuser:internal:abc",
            "imap://a@h/INBOX/;UID=1;URLAUTH=authuser:internal",
            "imap://a@h/INBOX/;UID=1;EXPIRE=2006-05-01;URLAUTH=authuser",
            "imap://a@h/INBOX/;UID=1;EXPIRE=2006-05-01T00:00:00Z",
            "/INBOX/;UID=1/;PARTIAL=1.0",
            "/INBOX/;UID=99999999999",
        ] {
            assert!(ImapUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(ImapUrl::parse(&format!("/{}/;UID=1", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn encoding_round_trips() {
        let name = "Other Users/bob/Küche;x";
        let enc = encode(name, true);
        assert_eq!(enc, "Other%20Users/bob/K%C3%BCche%3Bx");
        assert_eq!(String::from_utf8(decode(enc.as_bytes()).unwrap()).unwrap(), name);
    }
}
