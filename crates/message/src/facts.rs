//! What SORT and THREAD compare (RFC 5256, RFC 5957), derived once per message and kept beside
//! it as [`BodyFacts`], and the message's EMAILID (RFC 8474, [`email_id`]).
//!
//! Limits: the facts hold folded strings ([`crate::text::fold`]); ordering them by
//! i;unicode-casemap is the reader's job ([`crate::collation_key`]).

use crate::text::fold;
use crate::{
    Address, MessageSummary, base_subject, decode_header_text, message_id_list, normalize_message_id,
};

/// What SORT and THREAD need from one message (RFC 5256, RFC 5957), strings folded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyFacts {
    /// Sent date, Unix seconds (UTC), when the `Date:` header parses (RFC 5256 §2.2).
    pub sent_date: Option<i64>,
    /// Folded base subject (RFC 5256 §2.1).
    pub base_subject: String,
    /// Extracting the base subject removed a reply or forward marker.
    pub is_reply: bool,
    /// addr-mailbox of the first From / To / Cc address (RFC 5256 FROM, TO, CC).
    pub sort_from: String,
    /// See `sort_from`.
    pub sort_to: String,
    /// See `sort_from`.
    pub sort_cc: String,
    /// RFC 5957 DISPLAY value of the first From / To address.
    pub display_from: String,
    /// See `display_from`.
    pub display_to: String,
    /// Normalised Message-ID.
    pub message_id: Option<String>,
    /// Normalised references: References, else the first id of In-Reply-To (RFC 5256 §3).
    pub refs: Vec<String>,
}

impl BodyFacts {
    /// Computes the facts from a parsed summary.
    #[must_use]
    pub fn of(summary: &MessageSummary) -> BodyFacts {
        let env = &summary.envelope;
        let base = base_subject(summary.subject.as_deref().unwrap_or_default());
        let mailbox = |list: &[Address]| {
            list.first()
                .and_then(|a| a.mailbox.as_deref())
                .map(|m| fold(&String::from_utf8_lossy(m)))
                .unwrap_or_default()
        };
        let mut refs: Vec<String> =
            summary.references.iter().filter_map(|r| normalize_message_id(r)).collect();
        if refs.is_empty() {
            refs = env.in_reply_to.as_deref().map(message_id_list).unwrap_or_default();
            refs.truncate(1);
        }
        BodyFacts {
            sent_date: summary.sent_date.map(|d| d.unix),
            base_subject: fold(&base.text),
            is_reply: base.is_reply_or_forward,
            sort_from: mailbox(&env.from),
            sort_to: mailbox(&env.to),
            sort_cc: mailbox(&env.cc),
            display_from: display(&env.from),
            display_to: display(&env.to),
            message_id: env.message_id.as_deref().and_then(normalize_message_id),
            refs,
        }
    }
}

/// RFC 5957 §3: the DISPLAY sort value of the first address of a list.
fn display(list: &[Address]) -> String {
    let Some(a) = list.first() else { return String::new() };
    if let Some(name) = a.name.as_deref() {
        let decoded = decode_header_text(name);
        if !decoded.trim().is_empty() {
            return fold(decoded.trim());
        }
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match (a.mailbox.as_deref(), a.host.as_deref()) {
        (Some(m), Some(h)) if !h.is_empty() => fold(&format!("{}@{}", text(m), text(h))),
        (Some(m), _) => fold(&text(m)),
        _ => String::new(),
    }
}

/// RFC 8474 EMAILID of a message: `E` and a 128-bit FNV-1a hash of its bytes (two 64-bit
/// lanes with different bases) in hex. Derived from the content, so it survives COPY, MOVE and
/// a re-import, is the same in every store backend, and never names a different message (up to
/// a hash collision), which a database row id handed out again after a delete could.
#[must_use]
pub fn email_id(raw: &[u8]) -> String {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let (mut a, mut b) = (0xcbf2_9ce4_8422_2325_u64, 0x6c62_272e_07bb_0142_u64);
    for &byte in raw {
        a = (a ^ u64::from(byte)).wrapping_mul(PRIME);
        b = (b ^ u64::from(byte.rotate_left(3))).wrapping_mul(PRIME);
    }
    b ^= raw.len() as u64;
    format!("E{a:016x}{b:016x}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn email_ids_are_objectids_and_differ() {
        let a = email_id(b"Subject: a\r\n\r\nx");
        assert_eq!(a.len(), 33);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(a, email_id(b"Subject: a\r\n\r\nx"));
        assert_ne!(a, email_id(b"Subject: a\r\n\r\ny"));
        assert_ne!(email_id(b""), email_id(b"\0"));
    }

    #[test]
    fn facts_follow_rfc5256_and_rfc5957() {
        let raw = b"From: =?utf-8?q?Zo=C3=AB?= <Zoe@Example.org>\r\n\
To: undisclosed-recipients:;\r\nCc: carl@example.net\r\n\
Subject: Re: [list] Fwd: Plans\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n\
Message-ID: <\"a b\"@x>\r\nIn-Reply-To: <p@x> (sent by p)\r\n\r\nbody\r\n";
        let f = BodyFacts::of(&crate::parse(raw));
        assert_eq!(f.base_subject, "plans");
        assert!(f.is_reply);
        assert_eq!(f.sort_from, "zoe");
        assert_eq!(f.display_from, "zoë");
        assert_eq!(f.sort_to, "undisclosed-recipients");
        assert_eq!(f.display_to, "undisclosed-recipients");
        assert_eq!(f.sort_cc, "carl");
        assert_eq!(f.sent_date, Some(760_686_745));
        assert_eq!(f.message_id.as_deref(), Some("ab@x"));
        assert_eq!(f.refs, vec!["p@x".to_owned()]);
        let f = BodyFacts::of(&crate::parse(b"References: <a@x> <b@x>\r\nIn-Reply-To: <c@x>\r\n\r\n"));
        assert_eq!(f.refs, vec!["a@x".to_owned(), "b@x".to_owned()]);
        assert_eq!(f.sent_date, None);
        assert_eq!(f.display_from, "");
    }
}
