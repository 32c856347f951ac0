//! Status responses (RFC 9051 §7.1): tagged completions, untagged OK/NO/BAD/PREAUTH/BYE,
//! continuation requests (§7.6), response codes, and the free text after them.

use super::primitives::{
    is_atom, is_object_id, write_astring, write_atom_list, write_flag, write_number_set, write_u64,
};
use super::types::{Code, Completion, MetadataCode, PermanentFlag, Status};
use crate::types::Tag;

/// Writes `tag OK|NO|BAD [code] text\r\n` (RFC 9051 §7.1 `response-tagged`).
pub fn write_tagged(out: &mut Vec<u8>, tag: &Tag, status: Completion, code: Option<&Code>, text: &str) {
    out.extend_from_slice(tag.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(match status {
        Completion::Ok => b"OK",
        Completion::No => b"NO",
        Completion::Bad => b"BAD",
    });
    write_resp_text(out, code, text);
}

/// Writes `* OK|NO|BAD|PREAUTH|BYE [code] text\r\n` (RFC 9051 §7.1).
pub fn write_untagged_status(out: &mut Vec<u8>, status: Status, code: Option<&Code>, text: &str) {
    out.extend_from_slice(b"* ");
    out.extend_from_slice(match status {
        Status::Ok => b"OK",
        Status::No => b"NO",
        Status::Bad => b"BAD",
        Status::PreAuth => b"PREAUTH",
        Status::Bye => b"BYE",
    });
    write_resp_text(out, code, text);
}

/// Writes a continuation request `+ text\r\n` (RFC 9051 §7.6; text sanitised).
pub fn write_continuation(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"+ ");
    write_text(out, text, TextContext::Continuation);
    out.extend_from_slice(b"\r\n");
}

/// Writes a continuation request carrying base64 data, `+ data\r\n`, for AUTHENTICATE
/// challenges (RFC 9051 §6.2.2). Bytes outside the base64 alphabet are dropped.
pub fn write_continuation_base64(out: &mut Vec<u8>, base64: &[u8]) {
    out.extend_from_slice(b"+ ");
    out.extend(
        base64.iter().copied().filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')),
    );
    out.extend_from_slice(b"\r\n");
}

/// `resp-text = ["[" resp-text-code "]" SP] [text]`, then CRLF. Text is never empty because
/// IMAP4rev1 requires at least one character.
fn write_resp_text(out: &mut Vec<u8>, code: Option<&Code>, text: &str) {
    out.push(b' ');
    let mut has_code = false;
    if let Some(code) = code
        && code_is_writable(code)
    {
        out.push(b'[');
        write_code(out, code);
        out.extend_from_slice(b"] ");
        has_code = true;
    }
    let ctx = if has_code { TextContext::AfterCode } else { TextContext::NoCode };
    write_text(out, text, ctx);
    out.extend_from_slice(b"\r\n");
}

/// Where free text goes; decides which characters need replacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextContext {
    /// After `[code] `: anything printable.
    AfterCode,
    /// No code: a leading "[" would be read as the start of a code.
    NoCode,
    /// Continuation request: like `NoCode`, may stay empty.
    Continuation,
    /// Inside a code's own text: no "]".
    InCode,
}

/// Writes `text`, replacing what would break the grammar: CR, LF and other controls become
/// spaces and non-ASCII becomes "?" (IMAP4rev1 `text` is 7-bit; RFC 9051 §9 `TEXT-CHAR`).
fn write_text(out: &mut Vec<u8>, text: &str, ctx: TextContext) {
    let start = out.len();
    for (i, c) in text.chars().enumerate() {
        let b = match c {
            '[' if i == 0 && matches!(ctx, TextContext::NoCode | TextContext::Continuation) => b'(',
            ']' if ctx == TextContext::InCode => b')',
            ' '..='~' => c as u8,
            _ if c.is_ascii_control() => b' ',
            _ => b'?',
        };
        out.push(b);
    }
    if out.len() == start && ctx != TextContext::Continuation {
        // RFC 3501 `text = 1*TEXT-CHAR`: an empty text would make the line unparsable.
        out.extend_from_slice(b"(no text)");
    }
}

// ---- response codes ---------------------------------------------------------------------

/// True if `code` can be written validly (non-empty sets, valid atoms).
fn code_is_writable(code: &Code) -> bool {
    match code {
        // RFC 9051 §9: these carry nz-number; a zero would make the response unparsable.
        Code::UidNext(0) | Code::UidValidity(0) | Code::Unseen(0) => false,
        Code::AppendUid { uidvalidity, uids } => *uidvalidity > 0 && !uids.is_empty(),
        Code::CopyUid { uidvalidity, from, to } => *uidvalidity > 0 && !from.is_empty() && !to.is_empty(),
        Code::Modified(set) => !set.is_empty(),
        Code::MailboxId(id) => is_object_id(id),
        Code::Other(atom, _) => is_atom(atom.as_bytes()),
        Code::BadEvent(names) => names.iter().any(|n| is_atom(n.as_bytes())),
        _ => true,
    }
}

/// `resp-text-code` (RFC 9051 §9, RFC 4315, RFC 5530, RFC 7162, RFC 6154, RFC 8474).
fn write_code(out: &mut Vec<u8>, code: &Code) {
    let simple: &[u8] = match code {
        Code::Alert => b"ALERT",
        Code::Parse => b"PARSE",
        Code::ReadOnly => b"READ-ONLY",
        Code::ReadWrite => b"READ-WRITE",
        Code::TryCreate => b"TRYCREATE",
        Code::UidNotSticky => b"UIDNOTSTICKY",
        Code::Closed => b"CLOSED",
        Code::NoModSeq => b"NOMODSEQ",
        Code::AuthenticationFailed => b"AUTHENTICATIONFAILED",
        Code::AuthorizationFailed => b"AUTHORIZATIONFAILED",
        Code::Expired => b"EXPIRED",
        Code::PrivacyRequired => b"PRIVACYREQUIRED",
        Code::ContactAdmin => b"CONTACTADMIN",
        Code::NoPerm => b"NOPERM",
        Code::InUse => b"INUSE",
        Code::ExpungeIssued => b"EXPUNGEISSUED",
        Code::Corruption => b"CORRUPTION",
        Code::ServerBug => b"SERVERBUG",
        Code::ClientBug => b"CLIENTBUG",
        Code::CannotDo => b"CANNOT",
        Code::Limit => b"LIMIT",
        Code::OverQuota => b"OVERQUOTA",
        Code::AlreadyExists => b"ALREADYEXISTS",
        Code::Nonexistent => b"NONEXISTENT",
        Code::TooBig => b"TOOBIG",
        Code::UnknownCte => b"UNKNOWN-CTE",
        Code::HasChildren => b"HASCHILDREN",
        Code::UseAttr => b"USEATTR",
        Code::Unavailable => b"UNAVAILABLE",
        Code::NotificationOverflow => b"NOTIFICATIONOVERFLOW",
        Code::NotSaved => b"NOTSAVED",
        Code::CompressionActive => b"COMPRESSIONACTIVE",
        Code::UrlMech => b"URLMECH INTERNAL",
        Code::UidRequired => b"UIDREQUIRED",
        Code::TooFew => b"TOOFEW",
        Code::TooMany => b"TOOMANY",
        _ => b"",
    };
    if !simple.is_empty() {
        out.extend_from_slice(simple);
        return;
    }
    match code {
        Code::BadCharset(charsets) => {
            out.extend_from_slice(b"BADCHARSET");
            if !charsets.is_empty() {
                out.extend_from_slice(b" (");
                for (i, cs) in charsets.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    // `charset = atom / quoted`
                    write_astring(out, cs.as_bytes());
                }
                out.push(b')');
            }
        }
        Code::Capability(caps) => {
            out.extend_from_slice(b"CAPABILITY");
            write_atom_list(out, caps);
        }
        Code::PermanentFlags(flags) => {
            out.extend_from_slice(b"PERMANENTFLAGS (");
            let mut first = true;
            for f in flags {
                let start = out.len();
                if !first {
                    out.push(b' ');
                }
                let ok = match f {
                    PermanentFlag::Flag(f) => write_flag(out, f),
                    PermanentFlag::Wildcard => {
                        out.extend_from_slice(b"\\*");
                        true
                    }
                };
                if ok {
                    first = false;
                } else {
                    out.truncate(start);
                }
            }
            out.push(b')');
        }
        Code::UidNext(n) => write_num_code(out, b"UIDNEXT", u64::from(*n)),
        Code::UidValidity(n) => write_num_code(out, b"UIDVALIDITY", u64::from(*n)),
        Code::Unseen(n) => write_num_code(out, b"UNSEEN", u64::from(*n)),
        // RFC 7162 §3.1.2.2: a mailbox without mod-sequences reports NOMODSEQ instead.
        Code::HighestModSeq(0) => out.extend_from_slice(b"NOMODSEQ"),
        Code::HighestModSeq(n) => write_num_code(out, b"HIGHESTMODSEQ", *n),
        Code::AppendUid { uidvalidity, uids } => {
            write_num_code(out, b"APPENDUID", u64::from(*uidvalidity));
            out.push(b' ');
            write_number_set(out, uids);
        }
        Code::CopyUid { uidvalidity, from, to } => {
            write_num_code(out, b"COPYUID", u64::from(*uidvalidity));
            out.push(b' ');
            write_number_set(out, from);
            out.push(b' ');
            write_number_set(out, to);
        }
        Code::Modified(set) => {
            out.extend_from_slice(b"MODIFIED ");
            write_number_set(out, set);
        }
        Code::MailboxId(id) => {
            out.extend_from_slice(b"MAILBOXID (");
            out.extend_from_slice(id.as_bytes());
            out.push(b')');
        }
        Code::Metadata(code) => {
            // RFC 5464 §5: `"METADATA" SP "LONGENTRIES" SP number` and `"METADATA" SP
            // ("MAXSIZE" SP number / "TOOMANY" / "NOPRIVATE")`.
            out.extend_from_slice(b"METADATA ");
            match code {
                MetadataCode::LongEntries(n) => write_num_code(out, b"LONGENTRIES", *n),
                MetadataCode::MaxSize(n) => write_num_code(out, b"MAXSIZE", *n),
                MetadataCode::TooMany => out.extend_from_slice(b"TOOMANY"),
                MetadataCode::NoPrivate => out.extend_from_slice(b"NOPRIVATE"),
            }
        }
        Code::BadEvent(names) => {
            // RFC 5465 §8: `"BADEVENT" SP "(" event-name *(SP event-name) ")"`.
            out.extend_from_slice(b"BADEVENT (");
            let mut first = true;
            for name in names.iter().filter(|n| is_atom(n.as_bytes())) {
                if !first {
                    out.push(b' ');
                }
                first = false;
                out.extend_from_slice(name.as_bytes());
            }
            out.push(b')');
        }
        Code::BadUrl(url) => {
            // RFC 4469 §5 `url-resp-text`: any TEXT-CHAR but "]"; encoding keeps it a URL.
            out.extend_from_slice(b"BADURL ");
            if url.is_empty() {
                // `1*` TEXT-CHAR: an empty URL is shown as the empty string it was sent as.
                out.extend_from_slice(b"\"\"");
            }
            for &b in url.as_bytes() {
                if b == b']' || !(0x21..0x7f).contains(&b) {
                    out.extend_from_slice(format!("%{b:02X}").as_bytes());
                } else {
                    out.push(b);
                }
            }
        }
        Code::InProgress(None) => out.extend_from_slice(b"INPROGRESS"),
        Code::InProgress(Some(progress)) => {
            // RFC 9585 §5: `"INPROGRESS" [SP "(" inprogress-tag SP inprogress-state ")"]`.
            out.extend_from_slice(b"INPROGRESS (");
            match progress.tag.as_ref().filter(|t| !t.as_str().contains(']')) {
                Some(tag) => {
                    out.push(b'"');
                    out.extend_from_slice(tag.as_str().as_bytes());
                    out.push(b'"');
                }
                None => out.extend_from_slice(b"NIL"),
            }
            match (progress.done, progress.total.filter(|t| *t > 0)) {
                (Some(done), Some(total)) => {
                    out.push(b' ');
                    write_u64(out, done);
                    out.push(b' ');
                    write_u64(out, total);
                }
                (Some(done), None) => {
                    out.push(b' ');
                    write_u64(out, done);
                    out.extend_from_slice(b" NIL");
                }
                (None, _) => out.extend_from_slice(b" NIL NIL"),
            }
            out.push(b')');
        }
        Code::NoUpdate(tag) => {
            // RFC 5267 §5: `"NOUPDATE" SP quoted`; tag characters need no escaping.
            out.extend_from_slice(b"NOUPDATE \"");
            out.extend_from_slice(tag.as_str().as_bytes());
            out.push(b'"');
        }
        Code::Other(atom, text) => {
            out.extend_from_slice(atom.as_bytes());
            if let Some(t) = text
                && !t.is_empty()
            {
                out.push(b' ');
                write_text(out, t, TextContext::InCode);
            }
        }
        _ => {}
    }
}

fn write_num_code(out: &mut Vec<u8>, name: &[u8], n: u64) {
    out.extend_from_slice(name);
    out.push(b' ');
    write_u64(out, n);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::response::tests::w;
    use crate::seqset::NumberSet;

    #[test]
    fn status_lines() {
        let tag = Tag::new("a1").unwrap();
        assert_eq!(
            w(|o| write_tagged(o, &tag, Completion::Ok, Some(&Code::ReadWrite), "SELECT completed")),
            "a1 OK [READ-WRITE] SELECT completed\r\n"
        );
        assert_eq!(
            w(|o| write_tagged(o, &tag, Completion::No, None, "[x] fake\ncode")),
            "a1 NO (x] fake code\r\n"
        );
        assert_eq!(
            w(|o| write_untagged_status(o, Status::Ok, Some(&Code::UidNext(0)), "")),
            "* OK (no text)\r\n"
        );
        assert_eq!(
            w(|o| write_untagged_status(
                o,
                Status::Ok,
                Some(&Code::CopyUid {
                    uidvalidity: 9,
                    from: NumberSet::from_numbers([1, 2, 3, 7]),
                    to: NumberSet::from_ranges([10..=13]),
                }),
                "done"
            )),
            "* OK [COPYUID 9 1:3,7 10:13] done\r\n"
        );
        assert_eq!(
            w(|o| write_untagged_status(o, Status::Ok, Some(&Code::Other("X]".into(), None)), "t")),
            "* OK t\r\n"
        );
        assert_eq!(
            w(|o| write_untagged_status(
                o,
                Status::No,
                Some(&Code::Other("XFOO".into(), Some("a]b".into()))),
                "t"
            )),
            "* NO [XFOO a)b] t\r\n"
        );
        assert_eq!(w(|o| write_continuation(o, "")), "+ \r\n");
        assert_eq!(w(|o| write_continuation_base64(o, b"ab\r\n=")), "+ ab=\r\n");
    }

    #[test]
    fn metadata_codes_rfc5464() {
        let tag = Tag::new("a").unwrap();
        let line = |code: MetadataCode| {
            w(|o| write_tagged(o, &tag, Completion::No, Some(&Code::Metadata(code)), "SETMETADATA failed"))
        };
        assert_eq!(
            line(MetadataCode::LongEntries(2199)),
            "a NO [METADATA LONGENTRIES 2199] SETMETADATA failed\r\n"
        );
        assert_eq!(line(MetadataCode::MaxSize(1024)), "a NO [METADATA MAXSIZE 1024] SETMETADATA failed\r\n");
        assert_eq!(line(MetadataCode::TooMany), "a NO [METADATA TOOMANY] SETMETADATA failed\r\n");
        assert_eq!(line(MetadataCode::NoPrivate), "a NO [METADATA NOPRIVATE] SETMETADATA failed\r\n");
    }

    #[test]
    fn noupdate_rfc5267() {
        let code = Code::NoUpdate(Tag::new("B02").unwrap());
        assert_eq!(
            w(|o| write_untagged_status(o, Status::No, Some(&code), "Too many contexts")),
            "* NO [NOUPDATE \"B02\"] Too many contexts\r\n"
        );
        // RFC 9585 §4's four degrees of completeness.
        let progress = |tag: Option<&str>, done, total| {
            let tag = tag.map(|t| Tag::new(t).unwrap());
            Code::InProgress(Some(crate::response::types::InProgress { tag, done, total }))
        };
        let line = |code: Code| w(|o| write_untagged_status(o, Status::Ok, Some(&code), "Hang in there"));
        assert_eq!(line(Code::InProgress(None)), "* OK [INPROGRESS] Hang in there\r\n");
        assert_eq!(
            line(progress(Some("A1"), None, None)),
            "* OK [INPROGRESS (\"A1\" NIL NIL)] Hang in there\r\n"
        );
        assert_eq!(
            line(progress(Some("A1"), Some(175), None)),
            "* OK [INPROGRESS (\"A1\" 175 NIL)] Hang in there\r\n"
        );
        assert_eq!(
            line(progress(Some("A1"), Some(175), Some(1000))),
            "* OK [INPROGRESS (\"A1\" 175 1000)] Hang in there\r\n"
        );
        assert_eq!(
            line(progress(Some("a]"), Some(0), Some(0))),
            "* OK [INPROGRESS (NIL 0 NIL)] Hang in there\r\n"
        );
        assert_eq!(line(progress(None, None, Some(5))), "* OK [INPROGRESS (NIL NIL NIL)] Hang in there\r\n");
        // RFC 9586 §5: `resp-text-code =/ "UIDREQUIRED"`.
        let tag = Tag::new("a").unwrap();
        assert_eq!(
            w(|o| write_tagged(o, &tag, Completion::Bad, Some(&Code::UidRequired), "UIDs only")),
            "a BAD [UIDREQUIRED] UIDs only\r\n"
        );
    }

    #[test]
    fn notify_codes_rfc5465() {
        let code = Code::NotificationOverflow;
        assert_eq!(
            w(|o| write_untagged_status(o, Status::Ok, Some(&code), "Too many notifications")),
            "* OK [NOTIFICATIONOVERFLOW] Too many notifications\r\n"
        );
        let tag = Tag::new("a").unwrap();
        let code = Code::BadEvent(vec!["MessageNew".into(), "bad name".into(), "FlagChange".into()]);
        assert_eq!(
            w(|o| write_tagged(o, &tag, Completion::No, Some(&code), "Unsupported event")),
            "a NO [BADEVENT (MessageNew FlagChange)] Unsupported event\r\n"
        );
    }
}
