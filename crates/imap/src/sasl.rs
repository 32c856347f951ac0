//! The SASL side of AUTHENTICATE (RFC 9051 §6.2.2): which mechanisms exist on a connection and
//! where an exchange stands between two client lines.
//!
//! Mechanisms: PLAIN (RFC 4616), LOGIN (the old "Username:"/"Password:" exchange Outlook still
//! uses, draft-murchison-sasl-login), SCRAM-SHA-256 (RFC 7677), SCRAM-SHA-256-PLUS when the
//! connection has channel binding data (TLS), and OAUTHBEARER (RFC 7628) and XOAUTH2 when the
//! server accepts bearer tokens (`[oauth]`). Credential checks, throttling and logging happen
//! in `postfach_auth::Authenticator`; the session drives the steps and writes the responses.
//!
//! Public because ManageSieve (RFC 5804 §2.1) and POP3's AUTH (RFC 5034), both in the server
//! crate, offer exactly the same mechanisms through the same steps; only the framing of
//! challenges and responses differs.
//!
//! Limits: one response line is at most [`MAX_RESPONSE`] bytes of base64; no security layers.

use std::net::IpAddr;

use postfach_auth::encoding::base64_encode;
use postfach_auth::oauth::{self, OAuthBearerMessage};
use postfach_auth::scram::{ChannelBinding, Variant};
use postfach_auth::{AuthError, Authenticator, Mechanism, Principal, ScramExchange};
use postfach_secret::Secret;

/// Largest client response line decoded (base64 of user, password and authzid, a SCRAM message,
/// or a bearer token of up to [`oauth::MAX_TOKEN`] bytes with its framing): ample for any honest
/// client, small enough to bound the work.
pub const MAX_RESPONSE: usize = 12 * 1024;

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
    /// OAUTHBEARER (RFC 7628): a bearer token in a GS2-style message.
    OAuthBearer,
    /// XOAUTH2: Google's bearer-token message, `user=…^Aauth=Bearer …^A^A`.
    XOAuth2,
}

/// What a connection can offer beyond the password mechanisms.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offer<'a> {
    /// The TLS channel binding, for SCRAM-SHA-256-PLUS.
    pub binding: Option<&'a ChannelBinding>,
    /// Bearer tokens are accepted (`[oauth]`): OAUTHBEARER and XOAUTH2.
    pub tokens: bool,
}

impl<'a> Offer<'a> {
    /// The offer of a connection with this binding, on a server with this authenticator.
    pub fn of(binding: Option<&'a ChannelBinding>, auth: &Authenticator) -> Self {
        Offer { binding, tokens: auth.oauth().is_some() }
    }
}

impl Mech {
    /// The mechanism named by the client (already uppercased by the parser), if offered.
    pub fn parse(name: &str, offer: Offer<'_>) -> Option<Mech> {
        match name {
            "PLAIN" => Some(Mech::Plain),
            "LOGIN" => Some(Mech::Login),
            "SCRAM-SHA-256" => Some(Mech::Scram(Variant::Plain)),
            "SCRAM-SHA-256-PLUS" if offer.binding.is_some() => Some(Mech::Scram(Variant::Plus)),
            "OAUTHBEARER" if offer.tokens => Some(Mech::OAuthBearer),
            "XOAUTH2" if offer.tokens => Some(Mech::XOAuth2),
            _ => None,
        }
    }

    /// The `AUTH=` capabilities (RFC 9051 §6.2.2: the server SHOULD list its mechanisms).
    pub fn capabilities(offer: Offer<'_>) -> Vec<String> {
        Mech::offered(offer).into_iter().map(|m| format!("AUTH={}", m.name())).collect()
    }

    /// The SASL name (RFC 4422), e.g. `SCRAM-SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            Mech::Plain => "PLAIN",
            Mech::Login => "LOGIN",
            Mech::Scram(Variant::Plain) => "SCRAM-SHA-256",
            Mech::Scram(Variant::Plus) => "SCRAM-SHA-256-PLUS",
            Mech::OAuthBearer => "OAUTHBEARER",
            Mech::XOAuth2 => "XOAUTH2",
        }
    }

    /// Every mechanism offered, in order of preference.
    pub fn offered(offer: Offer<'_>) -> Vec<Mech> {
        let mut mechs = vec![Mech::Plain, Mech::Login, Mech::Scram(Variant::Plain)];
        if offer.binding.is_some() {
            mechs.push(Mech::Scram(Variant::Plus));
        }
        if offer.tokens {
            mechs.extend([Mech::OAuthBearer, Mech::XOAuth2]);
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
            Mech::OAuthBearer => Mechanism::OAuthBearer,
            Mech::XOAuth2 => Mechanism::XOAuth2,
        }
    }

    /// Where an exchange without an initial response starts, and its first challenge.
    pub fn start(self) -> (Step, &'static [u8]) {
        match self {
            Mech::Plain => (Step::Plain, b""),
            Mech::Login => (Step::LoginUser, LOGIN_USER_PROMPT),
            Mech::Scram(variant) => (Step::ScramFirst(variant), b""),
            Mech::OAuthBearer | Mech::XOAuth2 => (Step::Bearer, b""),
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
    /// OAUTHBEARER or XOAUTH2: the message with the token.
    Bearer,
    /// The token was refused and the error went out as a challenge (RFC 7628 §3.2.2); the
    /// client acknowledges (OAUTHBEARER: a lone %x01; XOAUTH2: an empty response) and then
    /// gets this failure.
    BearerRefused(AuthError),
}

/// How a bearer-token response ended.
#[derive(Debug)]
pub enum BearerOutcome {
    /// The token opened the account.
    LoggedIn(Principal),
    /// The token was refused: send `challenge`, then, after the client's acknowledgement, the
    /// failure ([`Step::BearerRefused`]).
    Refused {
        /// The mechanism's error message (JSON).
        challenge: Vec<u8>,
        /// The failure to answer after the acknowledgement.
        error: AuthError,
    },
    /// Not even looked at (blocked address, throttled, store error): answer at once.
    Failed(AuthError),
    /// The message breaks the mechanism's syntax: answer BAD.
    Malformed,
}

/// Checks the bearer-token message of `mech` (decoded) with the authenticator.
pub async fn bearer(auth: &Authenticator, peer: IpAddr, mech: Mech, data: &[u8]) -> BearerOutcome {
    let request = match mech {
        Mech::OAuthBearer => match oauth::parse_oauthbearer(data) {
            Some(OAuthBearerMessage::Request(r)) => r,
            // An acknowledgement before any error: out of turn.
            Some(OAuthBearerMessage::Acknowledge) | None => return BearerOutcome::Malformed,
        },
        Mech::XOAuth2 => match oauth::parse_xoauth2(data) {
            Some(r) => r,
            None => return BearerOutcome::Malformed,
        },
        _ => return BearerOutcome::Malformed,
    };
    match auth.login_token(peer, mech.mechanism(), request).await {
        Ok(principal) => BearerOutcome::LoggedIn(principal),
        Err(error @ AuthError::BadCredentials) => {
            let challenge = match (auth.oauth(), mech) {
                (Some(v), Mech::XOAuth2) => v.xoauth2_error(),
                (Some(v), _) => v.oauthbearer_error(),
                (None, _) => br#"{"status":"invalid_token"}"#.to_vec(),
            };
            BearerOutcome::Refused { challenge, error }
        }
        Err(e) => BearerOutcome::Failed(e),
    }
}

/// Whether `data` is the acknowledgement `mech`'s client sends after an error challenge
/// (OAUTHBEARER: %x01, RFC 7628 §3.2.3; XOAUTH2: empty). Lenient: either is taken for either.
pub fn bearer_acknowledged(data: &[u8]) -> bool {
    data.is_empty() || data == b"\x01"
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
        let none = Offer::default();
        let bound = Offer { binding: Some(&binding), tokens: false };
        assert_eq!(Mech::parse("PLAIN", none), Some(Mech::Plain));
        assert_eq!(Mech::parse("LOGIN", none), Some(Mech::Login));
        assert_eq!(Mech::parse("SCRAM-SHA-256", none), Some(Mech::Scram(Variant::Plain)));
        assert_eq!(Mech::parse("SCRAM-SHA-256-PLUS", none), None);
        assert_eq!(Mech::parse("SCRAM-SHA-256-PLUS", bound), Some(Mech::Scram(Variant::Plus)));
        assert_eq!(Mech::parse("CRAM-MD5", bound), None);
        assert!(!Mech::capabilities(none).contains(&"AUTH=SCRAM-SHA-256-PLUS".to_owned()));
        assert!(Mech::capabilities(bound).contains(&"AUTH=SCRAM-SHA-256-PLUS".to_owned()));
    }

    #[test]
    fn bearer_mechanisms_need_tokens_configured() {
        let tokens = Offer { binding: None, tokens: true };
        assert_eq!(Mech::parse("OAUTHBEARER", Offer::default()), None);
        assert_eq!(Mech::parse("XOAUTH2", Offer::default()), None);
        assert_eq!(Mech::parse("OAUTHBEARER", tokens), Some(Mech::OAuthBearer));
        assert_eq!(Mech::parse("XOAUTH2", tokens), Some(Mech::XOAuth2));
        assert!(Mech::capabilities(tokens).contains(&"AUTH=OAUTHBEARER".to_owned()));
        assert!(!Mech::capabilities(Offer::default()).contains(&"AUTH=XOAUTH2".to_owned()));
        assert!(bearer_acknowledged(b"\x01"));
        assert!(bearer_acknowledged(b""));
        assert!(!bearer_acknowledged(b"n,,"));
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
