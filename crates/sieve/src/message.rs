//! What the interpreter may ask about the message being delivered: the [`Message`] trait, which
//! the delivery code implements over its parsed message, and the body transforms of RFC 5173.
//!
//! The interpreter never parses MIME itself; it asks for header values, envelope addresses,
//! the size and body text. [`content_type_matches`] implements the RFC 5173 §5.2 content-type
//! rule so that implementations of [`Message::body_text`] do not have to.

/// Which body text the `body` test wants (RFC 5173 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyTransform {
    /// `:raw`: the whole undecoded body (after the header's empty line) as one string;
    /// transfer encodings, MIME headers and boundaries are left in (RFC 5173 §5.1).
    Raw,
    /// `:content <types>`: each MIME part whose type matches one of these (see
    /// [`content_type_matches`]), decoded and converted to UTF-8, as its own string. A matching
    /// multipart contributes its prologue and epilogue as two strings; a matching
    /// message/rfc822 contributes the nested header as one string (RFC 5173 §5.2).
    Content(Vec<String>),
    /// `:text` (the default): the decoded text of the message. Treating it as
    /// `Content(vec!["text"])` is allowed (RFC 5173 §5.3).
    Text,
}

/// The message being delivered, as the interpreter sees it.
///
/// Implementations must not panic and should answer cheaply; the interpreter calls these once
/// per test, not per key.
pub trait Message {
    /// Values of all header fields named `name` (case-insensitive), in message order: unfolded,
    /// encoded-words (RFC 2047) decoded to UTF-8. Empty if there is no such field.
    fn header(&self, name: &str) -> Vec<String>;

    /// Like [`Message::header`] but without RFC 2047 decoding; the `address` test reads these so
    /// a decoded display name containing ',' or '<' cannot change where addresses split.
    /// Defaults to [`Message::header`].
    fn header_raw(&self, name: &str) -> Vec<String> {
        self.header(name)
    }

    /// The first field called `name` read as an RFC 5322 date-time: the instant (Unix seconds)
    /// and the zone written in it (seconds east of UTC); `None` when there is no such field or
    /// it is not a date (RFC 5260 §4). The default knows no dates.
    fn header_date(&self, name: &str) -> Option<(i64, i32)> {
        let _ = name;
        None
    }

    /// The SMTP MAIL FROM address: `Some("")` for the null reverse-path `<>`, `None` if unknown.
    /// Angle brackets are optional.
    fn envelope_from(&self) -> Option<&str>;

    /// The SMTP RCPT TO address that caused delivery to this user (only this one, RFC 5228
    /// §5.4), `None` if unknown.
    fn envelope_to(&self) -> Option<&str>;

    /// Size of the message in octets as delivered (RFC 5228 §5.9).
    fn size(&self) -> u64;

    /// The strings the `body` test matches against for `transform`. Empty when the message has
    /// no body at all (a header not followed by an empty line): then every `body` test is false
    /// (RFC 5173 §4).
    fn body_text(&self, transform: &BodyTransform) -> Vec<String>;

    /// Whether the mailbox `name` exists and could be filed into (RFC 5490 `mailboxexists`).
    /// Defaults to false, which makes `mailboxexists` always false.
    fn mailbox_exists(&self, name: &str) -> bool {
        let _ = name;
        false
    }
}

/// Whether a MIME part of `content_type` (like "text/plain", parameters allowed) is selected by
/// the `:content` item `spec` (RFC 5173 §5.2): "" selects every part; "type" selects any subtype
/// of it; "type/subtype" selects exactly that; anything with a leading or trailing '/' or more
/// than one '/' selects nothing. Comparison ignores ASCII case.
#[must_use]
pub fn content_type_matches(spec: &str, content_type: &str) -> bool {
    let spec = spec.trim();
    if spec.is_empty() {
        return true;
    }
    if spec.starts_with('/') || spec.ends_with('/') || spec.matches('/').count() > 1 {
        return false;
    }
    let bare = content_type.split(';').next().unwrap_or_default().trim();
    let (ty, sub) = bare.split_once('/').unwrap_or((bare, ""));
    match spec.split_once('/') {
        Some((want_ty, want_sub)) => {
            ty.trim().eq_ignore_ascii_case(want_ty) && sub.trim().eq_ignore_ascii_case(want_sub)
        }
        None => ty.trim().eq_ignore_ascii_case(spec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5173_content_type_rules() {
        assert!(content_type_matches("", "audio/mp3"));
        assert!(content_type_matches("text", "text/html; charset=us-ascii"));
        assert!(content_type_matches("TEXT/plain", "text/PLAIN"));
        assert!(!content_type_matches("text/plain", "text/html"));
        assert!(!content_type_matches("text", "multipart/alternative"));
        assert!(content_type_matches("multipart", "multipart/alternative; boundary=inner"));
        assert!(content_type_matches("message/rfc822", "message/rfc822"));
        assert!(!content_type_matches("/plain", "text/plain"));
        assert!(!content_type_matches("text/", "text/plain"));
        assert!(!content_type_matches("text/plain/x", "text/plain"));
    }
}
