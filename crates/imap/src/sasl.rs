//! The SASL side of AUTHENTICATE (RFC 9051 §6.2.2): which mechanisms exist on a connection and
//! where an exchange stands between two client lines.
//!
//! Mechanisms: PLAIN (RFC 4616), LOGIN (the old "Username:"/"Password:" exchange Outlook still
//! uses, draft-murchison-sasl-login), SCRAM-SHA-256 (RFC 7677), and SCRAM-SHA-256-PLUS when the
//! connection has channel binding data (TLS). Credential checks, throttling and logging happen
//! in `postfach_auth::Authenticator`; the session drives the steps and writes the responses.
//!
//! Public because ManageSieve (RFC 5804 §2.1) and POP3's AUTH (RFC 5034), both in the server
//! crate, offer exactly the same mechanisms through the same steps; only the framing of
//! challenges and responses differs.
//!
//! Limits: one response line is at most [`MAX_RESPONSE`] bytes of base64; no security layers.

use postfach_auth::encoding::base64_encode;
use postfach_auth::scram::{ChannelBinding, Variant};
use postfach_auth::{Mechanism, Principal, ScramExchange};
use postfach_secret::Secret;

/// Largest client response line decoded (base64 of user, password and authzid, or a SCRAM
/// message): ample for any honest client, small enough to bound the work.
pub const MAX_RESPONSE: usize = 8 * 1024;

/// The LOGIN mechanism's first challenge, "Username:".
const LOGIN_USER_PROMPT: &[u8] = b"Username:";
/// The LOGIN mechanism's second challenge, "Password:".
const LOGIN_PASSWORD_PROMPT: &[u8] = b"Password:";

/// A mechanism this server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mech {
    /// PLAIN: one response `authzid NUL authcid NUL passwd`.
    Plain,
    /// LOGIN: user name, then password, each after a prompt.
    Login,
    /// SCRAM-SHA-256 or SCRAM-SHA-256-PLUS.
    Scram(Variant),
}

impl Mech {
    /// The mechanism named by the client (already uppercased by the parser), if offered on a
    /// connection with this channel binding.
    pub fn parse(name: &str, binding: Option<&ChannelBinding>) -> Option<Mech> {
        match name {
            "PLAIN" => Some(Mech::Plain),
            "LOGIN" => Some(Mech::Login),
            "SCRAM-SHA-256" => Some(Mech::Scram(Variant::Plain)),
            "SCRAM-SHA-256-PLUS" if binding.is_some() => Some(Mech::Scram(Variant::Plus)),
            _ => None,
        }
    }

    /// The `AUTH=` capabilities for a connection with this channel binding (RFC 9051 §6.2.2:
    /// the server SHOULD list its mechanisms).
    pub fn capabilities(binding: Option<&ChannelBinding>) -> Vec<String> {
        Mech::offered(binding).into_iter().map(|m| format!("AUTH={}", m.name())).collect()
    }

    /// The SASL name (RFC 4422), e.g. `SCRAM-SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            Mech::Plain => "PLAIN",
            Mech::Login => "LOGIN",
            Mech::Scram(Variant::Plain) => "SCRAM-SHA-256",
            Mech::Scram(Variant::Plus) => "SCRAM-SHA-256-PLUS",
        }
    }

    /// Every mechanism offered on a connection with this channel binding, in order of
    /// preference.
    pub fn offered(binding: Option<&ChannelBinding>) -> Vec<Mech> {
        let mut mechs = vec![Mech::Plain, Mech::Login, Mech::Scram(Variant::Plain)];
        if binding.is_some() {
            mechs.push(Mech::Scram(Variant::Plus));
        }
        mechs
    }

    /// The name the authenticator logs.
    pub fn mechanism(self) -> Mechanism {
        match self {
            Mech::Plain => Mechanism::Plain,
            Mech::Login => Mechanism::Login,
            Mech::Scram(Variant::Plain) => Mechanism::ScramSha256,
            Mech::Scram(Variant::Plus) => Mechanism::ScramSha256Plus,
        }
    }

    /// Where an exchange without an initial response starts, and its first challenge.
    pub fn start(self) -> (Step, &'static [u8]) {
        match self {
            Mech::Plain => (Step::Plain, b""),
            Mech::Login => (Step::LoginUser, LOGIN_USER_PROMPT),
            Mech::Scram(variant) => (Step::ScramFirst(variant), b""),
        }
    }
}

/// Where an exchange stands: what the next client response means.
#[derive(Debug)]
pub enum Step {
    /// PLAIN's one response.
    Plain,
    /// LOGIN: the user name.
    LoginUser,
    /// LOGIN: the password for this user.
    LoginPassword(String),
    /// SCRAM: the client-first message.
    ScramFirst(Variant),
    /// SCRAM: the client-final message.
    ScramFinal(Box<ScramExchange>),
    /// SCRAM succeeded and the server-final message went out as a challenge; RFC 9051 has no
    /// "additional data with success", so the client answers with an empty response and then
    /// gets the tagged OK.
    ScramAcknowledge(Principal),
}

/// The LOGIN mechanism's password prompt.
pub fn password_prompt() -> &'static [u8] {
    LOGIN_PASSWORD_PROMPT
}

/// A `+ base64` continuation request line (RFC 9051 §7.5); `+ ` alone for an empty challenge.
pub fn challenge(data: &[u8]) -> String {
    base64_encode(data)
}

/// Decodes one client response: `None` when it is too long or not base64 (RFC 9051 §6.2.2:
/// answer BAD). A lone `=` is the empty response (RFC 4959 writes it that way for SASL-IR;
/// some clients use it in continuations too). The decoded bytes may hold a password: a
/// [`Secret`].
pub fn decode(line: &[u8]) -> Option<Secret> {
    if line == b"=" {
        return Some(Secret::default());
    }
    if line.len() > MAX_RESPONSE {
        return None;
    }
    postfach_auth::encoding::base64_decode(line).map(Secret::new)
}

/// Splits a PLAIN response into `(authzid, authcid, passwd)` (RFC 4616 §2).
pub fn split_plain(data: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = data.splitn(3, |b| *b == 0);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(authz), Some(authc), Some(pass)) if !authc.is_empty() => Some((authz, authc, pass)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postfach_auth::scram::ChannelBindingType;

    #[test]
    fn mechanisms_depend_on_channel_binding() {
        let binding = ChannelBinding::new(ChannelBindingType::TlsExporter, vec![1; 32]);
        assert_eq!(Mech::parse("PLAIN", None), Some(Mech::Plain));
        assert_eq!(Mech::parse("LOGIN", None), Some(Mech::Login));
        assert_eq!(Mech::parse("SCRAM-SHA-256", None), Some(Mech::Scram(Variant::Plain)));
        assert_eq!(Mech::parse("SCRAM-SHA-256-PLUS", None), None);
        assert_eq!(Mech::parse("SCRAM-SHA-256-PLUS", Some(&binding)), Some(Mech::Scram(Variant::Plus)));
        assert_eq!(Mech::parse("CRAM-MD5", Some(&binding)), None);
        assert!(!Mech::capabilities(None).contains(&"AUTH=SCRAM-SHA-256-PLUS".to_owned()));
        assert!(Mech::capabilities(Some(&binding)).contains(&"AUTH=SCRAM-SHA-256-PLUS".to_owned()));
    }

    #[test]
    fn login_prompts_are_the_classic_ones() {
        // What Outlook expects to see: "+ VXNlcm5hbWU6" and "+ UGFzc3dvcmQ6".
        assert_eq!(challenge(Mech::Login.start().1), "VXNlcm5hbWU6");
        assert_eq!(challenge(password_prompt()), "UGFzc3dvcmQ6");
        assert_eq!(challenge(Mech::Plain.start().1), "");
    }

    #[test]
    fn responses_decode_strictly() {
        assert_eq!(decode(b"="), Some(Secret::default()));
        assert_eq!(decode(b""), Some(Secret::default()));
        assert_eq!(decode(b"dGVzdA=="), Some(Secret::new(b"test".to_vec())));
        assert_eq!(decode(b"dGVzdA"), None);
        assert_eq!(decode(&[b'A'; MAX_RESPONSE + 4]), None);
    }

    #[test]
    fn plain_responses_split() {
        assert_eq!(
            split_plain(b"\0tim\0tanstaaftanstaaf"),
            Some((&b""[..], &b"tim"[..], &b"tanstaaftanstaaf"[..]))
        );
        assert_eq!(
            split_plain(b"Ursel\0Kurt\0xipj3plmq"),
            Some((&b"Ursel"[..], &b"Kurt"[..], &b"xipj3plmq"[..]))
        );
        assert_eq!(split_plain(b"\0\0pw"), None, "empty authcid");
        assert_eq!(split_plain(b"nouser"), None);
    }
}
