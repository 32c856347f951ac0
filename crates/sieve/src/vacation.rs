//! Whether a [`VacationAction`] should really be answered, and the reply message if so
//! (RFC 5230 §4.5–§5, RFC 3834). Pure: the caller supplies the reply history and sends the mail.
//!
//! [`should_reply`] refuses to answer bounces (empty sender, MAILER-DAEMON & co.), automated mail
//! (`Auto-Submitted`), mailing lists (`List-*`, `Precedence: bulk/list/junk`), mail from the
//! user, mail not addressed to the user, and senders already answered with the same handle
//! within `:days`. After sending, the caller records `(handle, sender)` with the time, so the next
//! lookup sees it; RFC 5230 §4.2 asks to remember at least 1000 such entries.

use std::time::Duration;

use crate::address;
use crate::eval::VacationAction;
use crate::message::Message;

/// The verdict of [`should_reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send this reply (through the SMTP relay, with an empty envelope sender: RFC 5230 §5.1).
    Send(Box<Reply>),
    /// Do not reply, for this reason (worth a debug log line).
    Skip(SkipReason),
}

/// Why no vacation reply is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The envelope sender is empty or unknown: a bounce or notification (RFC 3834 §2).
    NoSender,
    /// The sender is a system address such as MAILER-DAEMON or owner-* (RFC 5230 §4.6).
    AutomatedSender,
    /// The message says it was sent automatically (`Auto-Submitted` other than "no").
    AutoSubmitted,
    /// The message came through a mailing list (List-* header or Precedence bulk/list/junk).
    MailingList,
    /// The message came from one of the user's own addresses.
    FromSelf,
    /// None of the user's addresses is in To, Cc, Bcc or Resent-To/Cc/Bcc (RFC 5230 §4.5).
    NotAddressedToUser,
    /// This sender got this response less than `:days` ago (RFC 5230 §4.2).
    AlreadyReplied,
}

/// A vacation reply ready to be rendered and sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The envelope recipient: the original envelope sender.
    pub recipient: String,
    /// The `From:` field: `:from`, else the user's first address.
    pub from: String,
    /// The `Subject:` field, unencoded UTF-8 ("Auto: " + original subject by default).
    pub subject: String,
    /// The original Message-ID, for `In-Reply-To:` (RFC 5230 §5.8).
    pub in_reply_to: Option<String>,
    /// The `References:` field: the original's references plus its Message-ID.
    pub references: Option<String>,
    /// The reason text, or a complete MIME entity when `mime` is set.
    pub body: String,
    /// `body` is a MIME entity with its own headers (RFC 5230 §4.4).
    pub mime: bool,
    /// The tracking handle to record together with `recipient` once sent.
    pub handle: String,
}

/// Local parts that belong to software, never to a person on holiday (RFC 5230 §4.6).
const AUTOMATED_LOCAL_PARTS: [&str; 9] = [
    "mailer-daemon",
    "listserv",
    "majordomo",
    "noreply",
    "no-reply",
    "do-not-reply",
    "donotreply",
    "bounce",
    "bounces",
];

/// Header fields that mark mailing-list traffic (RFC 2919, RFC 2369; RFC 5230 §4.6).
const LIST_HEADERS: [&str; 7] =
    ["List-Id", "List-Help", "List-Subscribe", "List-Unsubscribe", "List-Post", "List-Owner", "List-Archive"];

/// Fields that name the recipients a personal reply may be owed to (RFC 5230 §4.5).
const RECIPIENT_HEADERS: [&str; 6] = ["To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"];

/// Decides whether to answer `msg` with `action`.
///
/// `my_addresses` are the user's known addresses (the first is the default `From:`); the
/// action's `:addresses` and the envelope recipient count as the user's too. A local part with
/// a "+detail" also matches its address without the detail. `last_sent(handle, sender)` returns
/// how long ago this response was last sent to this sender, or `None` if never (or forgotten).
pub fn should_reply(
    action: &VacationAction,
    msg: &dyn Message,
    my_addresses: &[String],
    last_sent: impl FnOnce(&str, &str) -> Option<Duration>,
) -> Decision {
    let sender = action.to.trim();
    let sender_addr = address::parse_envelope(sender);
    // RFC 3834 §2: never answer a message with an empty return path.
    if sender_addr.all.is_empty() {
        return Decision::Skip(SkipReason::NoSender);
    }
    let local = sender_addr.local.as_deref().unwrap_or(&sender_addr.all).to_ascii_lowercase();
    if AUTOMATED_LOCAL_PARTS.contains(&local.as_str())
        || local.starts_with("owner-")
        || local.starts_with("bounce-")
        || local.ends_with("-request")
        || local.ends_with("-owner")
        || local.ends_with("-bounces")
    {
        return Decision::Skip(SkipReason::AutomatedSender);
    }
    // RFC 5230 §4.6 / RFC 3834 §2: SHOULD NOT respond to Auto-Submitted other than "no".
    if msg.header("Auto-Submitted").iter().any(|v| {
        let keyword = v.split(';').next().unwrap_or_default().trim();
        !keyword.eq_ignore_ascii_case("no")
    }) {
        return Decision::Skip(SkipReason::AutoSubmitted);
    }
    if LIST_HEADERS.iter().any(|h| !msg.header(h).is_empty())
        || msg.header("Precedence").iter().any(|v| {
            let p = v.trim().to_ascii_lowercase();
            p == "bulk" || p == "list" || p == "junk"
        })
    {
        return Decision::Skip(SkipReason::MailingList);
    }

    let mut mine: Vec<String> = my_addresses.iter().chain(&action.addresses).map(|a| normalize(a)).collect();
    if let Some(to) = msg.envelope_to() {
        mine.push(normalize(&address::parse_envelope(to).all));
    }
    mine.retain(|a| !a.is_empty());
    let is_mine = |addr: &str| {
        let a = normalize(addr);
        let base = strip_detail(&a);
        mine.iter().any(|m| *m == a || *m == base)
    };
    if is_mine(&sender_addr.all) {
        return Decision::Skip(SkipReason::FromSelf);
    }
    let addressed = RECIPIENT_HEADERS
        .iter()
        .flat_map(|h| msg.header_raw(h))
        .any(|v| address::parse_list(&v).iter().any(|a| a.is_valid() && is_mine(&a.all)));
    if !addressed {
        return Decision::Skip(SkipReason::NotAddressedToUser);
    }
    if let Some(ago) = last_sent(&action.handle, &sender_addr.all)
        && ago < Duration::from_secs(u64::from(action.days) * 86_400)
    {
        return Decision::Skip(SkipReason::AlreadyReplied);
    }

    // RFC 5230 §5.3: "Auto: " + the original subject, or a fixed subject without one.
    let subject = match &action.subject {
        Some(s) => s.clone(),
        None => match msg.header("Subject").first() {
            Some(orig) if !orig.trim().is_empty() => format!("Auto: {}", orig.trim()),
            _ => "Automated reply".to_owned(),
        },
    };
    let from = action
        .from
        .clone()
        .or_else(|| my_addresses.first().cloned())
        .or_else(|| msg.envelope_to().map(|t| address::parse_envelope(t).all))
        .unwrap_or_default();
    // RFC 5230 §5.8 and RFC 5322 §3.6.4: In-Reply-To is the Message-ID; References extends the
    // original's References (or its single In-Reply-To id) with it.
    let message_id = msg.header("Message-ID").first().map(|m| m.trim().to_owned()).filter(|m| !m.is_empty());
    let references = message_id.as_ref().map(|id| {
        let parent =
            msg.header("References").first().map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).or_else(
                || {
                    msg.header("In-Reply-To")
                        .first()
                        .map(|r| r.trim().to_owned())
                        .filter(|r| r.starts_with('<') && r.matches('<').count() == 1)
                },
            );
        match parent {
            Some(p) => format!("{p} {id}"),
            None => id.clone(),
        }
    });
    Decision::Send(Box::new(Reply {
        recipient: sender_addr.all,
        from,
        subject,
        in_reply_to: message_id,
        references,
        body: action.reason.clone(),
        mime: action.mime,
        handle: action.handle.clone(),
    }))
}

/// Lower-cased addr-spec for comparisons.
fn normalize(a: &str) -> String {
    address::parse_single(a).unwrap_or_else(|| a.trim().to_owned()).to_ascii_lowercase()
}

/// "user+detail@domain" → "user@domain".
fn strip_detail(a: &str) -> String {
    match a.rsplit_once('@') {
        Some((local, domain)) => match local.split_once('+') {
            Some((user, _)) => format!("{user}@{domain}"),
            None => a.to_owned(),
        },
        None => a.to_owned(),
    }
}

impl Reply {
    /// The complete RFC 5322 message: `date` is the `Date:` value (RFC 5322 date-time, RFC 5230
    /// §5.2) and `message_id` the new `Message-ID:` with angle brackets. Lines end in CRLF;
    /// values taken from the script or the original message cannot inject header lines.
    #[must_use]
    pub fn to_message(&self, date: &str, message_id: &str) -> String {
        let mut out = String::new();
        let mut header = |name: &str, value: &str| {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(&one_line(value));
            out.push_str("\r\n");
        };
        header("From", &self.from);
        header("To", &format!("<{}>", self.recipient));
        header("Date", date);
        header("Message-ID", message_id);
        if let Some(id) = &self.in_reply_to {
            header("In-Reply-To", id);
        }
        // RFC 5230 §5.6: auto-replied marks this as an automatic response.
        header("Auto-Submitted", "auto-replied");
        header("MIME-Version", "1.0");
        if let Some(refs) = &self.references {
            out.push_str("References: ");
            out.push_str(&fold_ids(&one_line(refs)));
            out.push_str("\r\n");
        }
        out.push_str("Subject: ");
        out.push_str(&encode_subject(&one_line(&self.subject)));
        out.push_str("\r\n");
        let body = crlf(&self.body);
        if self.mime {
            // The reason is a MIME entity: its headers continue ours (RFC 5230 §4.4).
            out.push_str(&body);
        } else if body.is_ascii() {
            out.push_str(
                "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
            );
            out.push_str(&body);
        } else {
            out.push_str("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
            out.push_str(&quoted_printable(&body));
        }
        if !out.ends_with("\r\n") {
            out.push_str("\r\n");
        }
        out
    }
}

/// A header value on one line: CR and LF become spaces.
fn one_line(v: &str) -> String {
    v.replace(['\r', '\n'], " ").trim().to_owned()
}

/// Normalises line ends to CRLF.
fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n").replace('\n', "\r\n")
}

/// Folds a list of message ids so no line gets long (RFC 5322 §2.1.1).
fn fold_ids(refs: &str) -> String {
    refs.split_whitespace().collect::<Vec<_>>().join("\r\n ")
}

/// RFC 5230 §4.3: non-ASCII subjects become RFC 2047 encoded-words (UTF-8, base64); so do very
/// long ones, which encoded-words let us fold.
fn encode_subject(s: &str) -> String {
    if s.is_ascii() && s.len() <= 900 {
        return s.to_owned();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        // 45 bytes → 60 base64 characters: each encoded-word stays within 75 (RFC 2047 §2).
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Quoted-printable (RFC 2045 §6.7) of CRLF text, lines at most 76 characters.
fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for (i, line) in text.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let bytes = line.as_bytes();
        let mut width = 0;
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let literal = (b.is_ascii_graphic() && b != b'=') || ((b == b' ' || b == b'\t') && !last);
            let piece = if literal { char::from(b).to_string() } else { format!("={b:02X}") };
            if width + piece.len() > 75 {
                out.push_str("=\r\n");
                width = 0;
            }
            width += piece.len();
            out.push_str(&piece);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::message::BodyTransform;

    struct Msg {
        headers: Vec<(&'static str, &'static str)>,
        from: Option<&'static str>,
        to: Option<&'static str>,
    }

    impl Message for Msg {
        fn header(&self, name: &str) -> Vec<String> {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| (*v).to_owned())
                .collect()
        }
        fn envelope_from(&self) -> Option<&str> {
            self.from
        }
        fn envelope_to(&self) -> Option<&str> {
            self.to
        }
        fn size(&self) -> u64 {
            100
        }
        fn body_text(&self, _: &BodyTransform) -> Vec<String> {
            Vec::new()
        }
    }

    fn action(to: &str) -> VacationAction {
        VacationAction {
            to: to.to_owned(),
            subject: None,
            from: None,
            reason: "I'm away until October 19.".to_owned(),
            days: 7,
            handle: "h".to_owned(),
            addresses: vec!["tjs@example.edu".to_owned()],
            mime: false,
        }
    }

    fn msg(extra: &[(&'static str, &'static str)]) -> Msg {
        let mut headers = vec![
            ("From", "Coyote <coyote@desert.example.org>"),
            ("To", "Road Runner <roadrunner@acme.example.com>"),
            ("Subject", "I have a present for you"),
            ("Message-ID", "<1@desert.example.org>"),
        ];
        headers.extend_from_slice(extra);
        Msg { headers, from: Some("coyote@desert.example.org"), to: Some("roadrunner@acme.example.com") }
    }

    fn me() -> Vec<String> {
        vec!["roadrunner@acme.example.com".to_owned()]
    }

    #[test]
    fn sends_a_personal_reply() {
        let d = should_reply(&action("coyote@desert.example.org"), &msg(&[]), &me(), |_, _| None);
        let Decision::Send(reply) = d else { panic!("{d:?}") };
        assert_eq!(reply.recipient, "coyote@desert.example.org");
        assert_eq!(reply.from, "roadrunner@acme.example.com");
        assert_eq!(reply.subject, "Auto: I have a present for you");
        assert_eq!(reply.in_reply_to.as_deref(), Some("<1@desert.example.org>"));
        assert_eq!(reply.references.as_deref(), Some("<1@desert.example.org>"));
        let text = reply.to_message("Tue, 1 Apr 1997 09:06:31 -0800", "<r1@acme.example.com>");
        assert!(text.contains("\r\nAuto-Submitted: auto-replied\r\n"), "{text}");
        assert!(text.contains("\r\nIn-Reply-To: <1@desert.example.org>\r\n"));
        assert!(text.contains("To: <coyote@desert.example.org>\r\n"));
        assert!(text.ends_with("\r\n\r\nI'm away until October 19.\r\n"));
    }

    #[test]
    fn skip_reasons() {
        let me = me();
        let check = |a: VacationAction, m: Msg| match should_reply(&a, &m, &me, |_, _| None) {
            Decision::Skip(r) => Some(r),
            Decision::Send(_) => None,
        };
        let a = || action("coyote@desert.example.org");
        assert_eq!(check(action(""), msg(&[])), Some(SkipReason::NoSender));
        assert_eq!(check(action("<>"), msg(&[])), Some(SkipReason::NoSender));
        assert_eq!(
            check(action("MAILER-DAEMON@acme.example.com"), msg(&[])),
            Some(SkipReason::AutomatedSender)
        );
        assert_eq!(check(action("owner-list@lists.example"), msg(&[])), Some(SkipReason::AutomatedSender));
        assert_eq!(check(action("list-request@lists.example"), msg(&[])), Some(SkipReason::AutomatedSender));
        assert_eq!(check(a(), msg(&[("Auto-Submitted", "auto-generated")])), Some(SkipReason::AutoSubmitted));
        assert_eq!(check(a(), msg(&[("Auto-Submitted", "no")])), None);
        assert_eq!(check(a(), msg(&[("List-Id", "<x.lists.example>")])), Some(SkipReason::MailingList));
        assert_eq!(check(a(), msg(&[("Precedence", " Bulk")])), Some(SkipReason::MailingList));
        assert_eq!(check(action("roadrunner@acme.example.com"), msg(&[])), Some(SkipReason::FromSelf));
        let mut other = msg(&[]);
        other.headers[1] = ("To", "someone@else.example");
        assert_eq!(check(a(), other), Some(SkipReason::NotAddressedToUser));
        // :addresses count as the user's (RFC 5230 §4.5), as do +details of known addresses.
        let mut alias = msg(&[]);
        alias.headers[1] = ("To", "TJS@example.edu");
        alias.to = None;
        assert_eq!(check(a(), alias), None);
        let mut detail = msg(&[]);
        detail.headers[1] = ("Cc", "roadrunner+fun@acme.example.com");
        detail.to = None;
        assert_eq!(check(a(), detail), None);
    }

    #[test]
    fn days_suppress_repeats() {
        let a = action("coyote@desert.example.org");
        let m = msg(&[]);
        let mut asked = None;
        let d = should_reply(&a, &m, &me(), |h, s| {
            asked = Some((h.to_owned(), s.to_owned()));
            Some(Duration::from_secs(6 * 86_400))
        });
        assert_eq!(d, Decision::Skip(SkipReason::AlreadyReplied));
        assert_eq!(asked, Some(("h".to_owned(), "coyote@desert.example.org".to_owned())));
        let d = should_reply(&a, &m, &me(), |_, _| Some(Duration::from_secs(7 * 86_400)));
        assert!(matches!(d, Decision::Send(_)));
    }

    #[test]
    fn rendering_encodes_and_sanitises() {
        let reply = Reply {
            recipient: "a@b.example".into(),
            from: "me@x.example".into(),
            subject: "Grüße\r\nBcc: evil@x.example".into(),
            in_reply_to: None,
            references: Some("<a@x> <b@x>".into()),
            body: "Schöne Grüße\nbis bald".into(),
            mime: false,
            handle: "h".into(),
        };
        let text = reply.to_message("d", "<id@x>");
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(text.contains("Subject: =?UTF-8?B?"));
        assert!(text.contains("References: <a@x>\r\n <b@x>\r\n"));
        assert!(text.contains("quoted-printable\r\n\r\nSch=C3=B6ne Gr=C3=BC=C3=9Fe\r\nbis bald"), "{text}");
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(quoted_printable("a \r\nb=c"), "a=20\r\nb=3Dc");
        let long = quoted_printable(&"x".repeat(200));
        assert!(long.split("\r\n").all(|l| l.len() <= 76));
    }
}
