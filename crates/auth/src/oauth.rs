//! Bearer tokens instead of passwords: OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's older
//! mechanism, still what many clients send), for single sign-on.
//!
//! A token is accepted when it is a JWT signed by one of the issuer's keys (a JWKS, RFC 7517),
//! with the configured `iss`, an `aud` among the configured audiences (when any are), not
//! expired (`exp` required, `nbf` honoured, with a leeway), or, for an opaque token, when the
//! issuer's introspection endpoint (RFC 7662) says it is active. The account is the one named
//! by a configured claim (`email` by default; `preferred_username` or `sub` are common too).
//!
//! This module does no I/O: the server hands it the keys ([`TokenVerifier::set_keys`]) and, for
//! key rotation and introspection, a [`KeySource`] and an [`Introspect`] that fetch over HTTPS.
//! The SASL messages are parsed here too ([`parse_oauthbearer`], [`parse_xoauth2`]), so IMAP,
//! POP3 and ManageSieve share them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

pub use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use postfach_secret::Secret;
use serde_json::Value;

/// Longest token accepted (a JWT with many group claims runs to a few KiB); with its framing and
/// base64 it fits the 12 KiB SASL line.
pub const MAX_TOKEN: usize = 8 * 1024;

/// How often an unknown key id may send us to the issuer for its current keys.
const REFETCH_SPACING: Duration = Duration::from_secs(60);

/// Signature algorithms accepted from JWKS keys: asymmetric only (a shared secret in a JWKS
/// would be a configuration mistake).
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What the server's `[oauth]` section says about tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// Accepted `aud` values; empty: `aud` is not checked.
    pub audiences: Vec<String>,
    /// The claim naming the account (`email`, `preferred_username`, `sub`, ...).
    pub username_claim: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// The scope a client should ask for, sent back in the OAUTHBEARER error (RFC 7628 §3.2.2).
    pub scope: Option<String>,
    /// The issuer's OpenID configuration URL, sent back in the OAUTHBEARER error so a client can
    /// find where to get a token.
    pub openid_configuration: Option<String>,
}

/// Fetches the issuer's current keys (from a URL or a file): called when a token names a key
/// id we do not have, at most once a minute.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    /// The current key set.
    async fn fetch(&self) -> Result<JwkSet, String>;
}

/// Asks the issuer about an opaque token (RFC 7662 §2.1) and returns its JSON answer.
#[async_trait::async_trait]
pub trait Introspect: Send + Sync {
    /// The introspection response for `token`.
    async fn introspect(&self, token: &str) -> Result<Value, String>;
}

/// Why a token was refused (for the log; the client learns only "invalid_token").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenRefused(pub String);

/// Checks bearer tokens; one per server, shared by every listener.
pub struct TokenVerifier {
    settings: OAuthSettings,
    keys: RwLock<JwkSet>,
    source: Option<Arc<dyn KeySource>>,
    introspect: Option<Arc<dyn Introspect>>,
    last_fetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier with these settings, keys, and optional key source and introspection.
    pub fn new(
        settings: OAuthSettings,
        keys: JwkSet,
        source: Option<Arc<dyn KeySource>>,
        introspect: Option<Arc<dyn Introspect>>,
    ) -> Self {
        Self { settings, keys: RwLock::new(keys), source, introspect, last_fetch: Mutex::new(None) }
    }

    /// The settings.
    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// Replaces the key set (a periodic refresh, a reload).
    pub fn set_keys(&self, keys: JwkSet) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
    }

    /// The account name the token stands for, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<String, TokenRefused> {
        if token.len() > MAX_TOKEN {
            return Err(TokenRefused("token too long".into()));
        }
        match jsonwebtoken::decode_header(token) {
            Ok(header) => self.verify_jwt(token, header.kid.as_deref()).await,
            Err(_) if self.introspect.is_some() => self.introspected(token).await,
            Err(e) => Err(TokenRefused(format!("not a JWT: {e}"))),
        }
    }

    async fn verify_jwt(&self, token: &str, kid: Option<&str>) -> Result<String, TokenRefused> {
        let key = match self.key_for(kid) {
            Some(key) => key,
            None => {
                self.refetch().await;
                self.key_for(kid)
                    .ok_or_else(|| TokenRefused(format!("no key {kid:?} in the issuer's key set")))?
            }
        };
        let (key, algorithm) = key;
        let mut validation = Validation::new(algorithm);
        validation.algorithms = ALGORITHMS.iter().copied().filter(|a| *a == algorithm).collect();
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        let mut required: HashSet<String> = ["exp", "iss"].iter().map(|s| (*s).to_owned()).collect();
        if self.settings.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.settings.audiences);
            required.insert("aud".to_owned());
        }
        validation.required_spec_claims = required;
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| TokenRefused(format!("JWT refused: {e}")))?;
        self.username(&data.claims)
    }

    /// The key a token's `kid` names (the only key when it names none and there is one), with
    /// its algorithm.
    fn key_for(&self, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let jwk = match kid {
            Some(kid) => keys.find(kid)?,
            None if keys.keys.len() == 1 => &keys.keys[0],
            None => return None,
        };
        let algorithm = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok())
            .or_else(|| default_algorithm(jwk))?;
        if !ALGORITHMS.contains(&algorithm) {
            return None;
        }
        DecodingKey::from_jwk(jwk).ok().map(|k| (k, algorithm))
    }

    /// Fetches the key set again, unless that happened less than a minute ago.
    async fn refetch(&self) {
        let Some(source) = &self.source else { return };
        {
            let mut last = self.last_fetch.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < REFETCH_SPACING) {
                return;
            }
            *last = Some(Instant::now());
        }
        match source.fetch().await {
            Ok(keys) => self.set_keys(keys),
            Err(e) => tracing::warn!(target: crate::LOG_TARGET, error = %e, "cannot fetch the issuer's keys"),
        }
    }

    async fn introspected(&self, token: &str) -> Result<String, TokenRefused> {
        let Some(introspect) = &self.introspect else {
            return Err(TokenRefused("no introspection endpoint".into()));
        };
        let answer = introspect
            .introspect(token)
            .await
            .map_err(|e| TokenRefused(format!("introspection failed: {e}")))?;
        // RFC 7662 §2.2: `active` is the one required member.
        if answer.get("active") != Some(&Value::Bool(true)) {
            return Err(TokenRefused("token not active".into()));
        }
        if let Some(iss) = answer.get("iss").and_then(Value::as_str)
            && iss != self.settings.issuer
        {
            return Err(TokenRefused(format!("issuer {iss:?}")));
        }
        if let Some(exp) = answer.get("exp").and_then(Value::as_i64) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            if exp.saturating_add(i64::try_from(self.settings.leeway.as_secs()).unwrap_or(0)) < now {
                return Err(TokenRefused("token expired".into()));
            }
        }
        if !self.settings.audiences.is_empty()
            && !audience_matches(answer.get("aud"), &self.settings.audiences)
        {
            return Err(TokenRefused("audience".into()));
        }
        self.username(&answer)
    }

    fn username(&self, claims: &Value) -> Result<String, TokenRefused> {
        claims
            .get(&self.settings.username_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| TokenRefused(format!("no {:?} claim", self.settings.username_claim)))
    }

    /// The OAUTHBEARER failure challenge (RFC 7628 §3.2.2): a JSON object the client answers
    /// with a lone %x01 before it gets the failure.
    pub fn oauthbearer_error(&self) -> Vec<u8> {
        let mut error = serde_json::Map::new();
        error.insert("status".into(), Value::from("invalid_token"));
        if let Some(scope) = &self.settings.scope {
            error.insert("scope".into(), Value::from(scope.as_str()));
        }
        if let Some(url) = &self.settings.openid_configuration {
            error.insert("openid-configuration".into(), Value::from(url.as_str()));
        }
        Value::Object(error).to_string().into_bytes()
    }

    /// The XOAUTH2 failure challenge (Google's format); the client answers with an empty line.
    pub fn xoauth2_error(&self) -> Vec<u8> {
        let mut error = serde_json::Map::new();
        error.insert("status".into(), Value::from("401"));
        error.insert("schemes".into(), Value::from("bearer"));
        if let Some(scope) = &self.settings.scope {
            error.insert("scope".into(), Value::from(scope.as_str()));
        }
        Value::Object(error).to_string().into_bytes()
    }
}

fn audience_matches(aud: Option<&Value>, accepted: &[String]) -> bool {
    match aud {
        Some(Value::String(a)) => accepted.iter().any(|x| x == a),
        Some(Value::Array(list)) => {
            list.iter().filter_map(Value::as_str).any(|a| accepted.iter().any(|x| x == a))
        }
        _ => false,
    }
}

/// The algorithm a key without `alg` implies (RFC 7518): RSA → RS256, P-256 → ES256, P-384 →
/// ES384, Ed25519 → EdDSA.
fn default_algorithm(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Some(Algorithm::EdDSA)
        }
        _ => None,
    }
}

/// A client's bearer-token message, parsed.
#[derive(Debug)]
pub struct BearerRequest {
    /// The authorization identity (OAUTHBEARER's `a=`, XOAUTH2's `user=`), if given.
    pub user: Option<String>,
    /// The token.
    pub token: Secret,
}

/// What a client sent in an OAUTHBEARER exchange.
#[derive(Debug)]
pub enum OAuthBearerMessage {
    /// The client response with the token (RFC 7628 §3.1).
    Request(BearerRequest),
    /// The lone %x01 that acknowledges a failure challenge (§3.2.3).
    Acknowledge,
}

/// Parses an OAUTHBEARER client response (RFC 7628 §3.1):
/// `gs2-header %x01 *(key "=" value %x01) %x01`, e.g.
/// `n,a=user@example.com,^Ahost=server.example.com^Aport=143^Aauth=Bearer TOKEN^A^A`.
/// Channel binding (`p=`) is refused: the mechanism has none.
pub fn parse_oauthbearer(data: &[u8]) -> Option<OAuthBearerMessage> {
    if data == b"\x01" {
        return Some(OAuthBearerMessage::Acknowledge);
    }
    let text = std::str::from_utf8(data).ok()?;
    let (gs2, rest) = text.split_once('\x01')?;
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    let mut parts = gs2.splitn(3, ',');
    let flag = parts.next()?;
    if flag != "n" && flag != "y" {
        return None;
    }
    let authzid = parts.next()?;
    if parts.next() != Some("") {
        return None;
    }
    let user = if authzid.is_empty() { None } else { Some(unescape_saslname(authzid.strip_prefix("a=")?)?) };
    let token = bearer_from_pairs(rest)?;
    Some(OAuthBearerMessage::Request(BearerRequest { user, token }))
}

/// Parses an XOAUTH2 client response: `user=NAME^Aauth=Bearer TOKEN^A^A`.
pub fn parse_xoauth2(data: &[u8]) -> Option<BearerRequest> {
    let text = std::str::from_utf8(data).ok()?;
    let user = text.strip_prefix("user=")?;
    let (user, rest) = user.split_once('\x01')?;
    let token = bearer_from_pairs(rest)?;
    Some(BearerRequest { user: (!user.is_empty()).then(|| user.to_owned()), token })
}

/// The `auth=Bearer TOKEN` value of a `key=value^A...^A^A` list; None when the list is
/// malformed or has no bearer token.
fn bearer_from_pairs(pairs: &str) -> Option<Secret> {
    let body = pairs.strip_suffix("\x01\x01").or_else(|| (pairs == "\x01").then_some(""))?;
    let mut token = None;
    for pair in body.split('\x01').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=')?;
        if !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        if key == "auth" {
            // RFC 6750 §2.1: "Bearer" is case-insensitive, then one space and the token.
            let (scheme, value) = value.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") || value.is_empty() {
                return None;
            }
            token = Some(Secret::new(value.trim().as_bytes().to_vec()));
        }
    }
    token
}

/// RFC 5801 saslname: `=2C` is a comma, `=3D` an equals sign; any other `=` is an error.
fn unescape_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn oauthbearer_messages_parse_as_rfc_7628_writes_them() {
        // RFC 7628 §4.1, the example client response.
        let msg = b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
        let Some(OAuthBearerMessage::Request(r)) = parse_oauthbearer(msg) else { panic!("not parsed") };
        assert_eq!(r.user.as_deref(), Some("user@example.com"));
        assert_eq!(r.token.expose_secret(), b"vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
        // No authzid.
        let Some(OAuthBearerMessage::Request(r)) = parse_oauthbearer(b"n,,\x01auth=Bearer abc\x01\x01")
        else {
            panic!("not parsed")
        };
        assert_eq!(r.user, None);
        assert!(matches!(parse_oauthbearer(b"\x01"), Some(OAuthBearerMessage::Acknowledge)));
        // Escaped authzid.
        let Some(OAuthBearerMessage::Request(r)) =
            parse_oauthbearer(b"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01")
        else {
            panic!("not parsed")
        };
        assert_eq!(r.user.as_deref(), Some("a,b=c"));
    }

    #[test]
    fn malformed_oauthbearer_messages_are_refused() {
        for bad in [
            &b"p=tls-unique,,\x01auth=Bearer t\x01\x01"[..],
            b"n,a=x,\x01auth=Bearer t\x01",
            b"n,a=x,\x01host=h\x01\x01",
            b"n,a=x,\x01auth=Basic dXNlcjpwYXNz\x01\x01",
            b"n,a=x=,\x01auth=Bearer t\x01\x01",
            b"n,b=x,\x01auth=Bearer t\x01\x01",
            b"n,a=x\x01auth=Bearer t\x01\x01",
            b"",
            b"\xff,,\x01auth=Bearer t\x01\x01",
        ] {
            assert!(
                !matches!(parse_oauthbearer(bad), Some(OAuthBearerMessage::Request(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn xoauth2_messages_parse() {
        let r = parse_xoauth2(
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01",
        )
        .unwrap();
        assert_eq!(r.user.as_deref(), Some("someuser@example.com"));
        assert_eq!(r.token.expose_secret(), b"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
        assert!(parse_xoauth2(b"user=x\x01auth=Bearer \x01\x01").is_none());
        assert!(parse_xoauth2(b"auth=Bearer t\x01\x01").is_none());
    }

    #[test]
    fn error_challenges_are_json() {
        let v = TokenVerifier::new(
            OAuthSettings {
                issuer: "https://idp.example".into(),
                audiences: vec![],
                username_claim: "email".into(),
                leeway: Duration::from_secs(60),
                scope: Some("mail".into()),
                openid_configuration: Some("https://idp.example/.well-known/openid-configuration".into()),
            },
            JwkSet { keys: vec![] },
            None,
            None,
        );
        let e: Value = serde_json::from_slice(&v.oauthbearer_error()).unwrap();
        assert_eq!(e["status"], "invalid_token");
        assert_eq!(e["scope"], "mail");
        assert_eq!(e["openid-configuration"], "https://idp.example/.well-known/openid-configuration");
        let e: Value = serde_json::from_slice(&v.xoauth2_error()).unwrap();
        assert_eq!(e["status"], "401");
    }
}
