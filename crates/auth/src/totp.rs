//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): the second factor.
//!
//! Parameters are the ones every authenticator app understands without asking: HMAC-SHA-1,
//! 6 digits, 30-second steps, a 160-bit secret (RFC 4226 §4 R6 recommends 160 bits). A code is
//! accepted for the current step and one step either side (RFC 6238 §5.2 allows a small window
//! for clock drift and typing time), and only for a step later than the last one used, so a
//! code seen over a shoulder or in a log cannot be replayed (RFC 6238 §5.2: "MUST NOT accept
//! the second attempt of the same OTP"). Remembering that step is the caller's job: the store
//! claims it atomically, so two sessions racing with one code cannot both win.
//!
//! Limits: the secret must be kept in a form the server can use, so unlike passwords it cannot
//! be hashed; it sits in the store next to the account.

use std::fmt;
use std::time::Duration;

use postfach_secret::Secret;

use crate::crypto::{self, HashAlgorithm};
use crate::encoding::base32_encode;

/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Length of a time step, seconds (RFC 6238 §4.1 default X).
pub const STEP_SECONDS: u64 = 30;
/// Bytes of a generated secret (160 bits, RFC 4226 §4 R6).
pub const SECRET_LEN: usize = 20;
/// Steps accepted either side of the current one.
const WINDOW: u64 = 1;

/// A TOTP shared secret. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(/* REDACTED */)")
    }
}

impl TotpSecret {
    /// A fresh random secret.
    pub fn generate() -> Result<Self, String> {
        crypto::random_bytes(SECRET_LEN).map(Self)
    }

    /// Wraps stored secret bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The raw secret, for storing.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret in base32, as authenticator apps take it when typed in.
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// The `otpauth://totp/...` URI (Google Authenticator's key URI format, understood by all
    /// common apps) that a QR code carries.
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        let label = format!("{}:{}", uri_escape(issuer), uri_escape(account));
        format!(
            "otpauth://totp/{label}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            secret = self.to_base32(),
            issuer = uri_escape(issuer),
        )
    }
}

/// The time step containing `now` (RFC 6238 §4.2: T = floor((now - T0) / X), T0 = 0).
pub fn step_at(now: Duration) -> u64 {
    now.as_secs() / STEP_SECONDS
}

/// The HOTP value for `counter` (RFC 4226 §5.3), `digits` long.
pub fn hotp(secret: &[u8], algorithm: HashAlgorithm, counter: u64, digits: u32) -> u32 {
    let mac = crypto::hmac(algorithm, secret, &counter.to_be_bytes());
    // Dynamic truncation: the low nibble of the last byte picks four bytes.
    let Some(last) = mac.last() else {
        return 0;
    };
    let offset = usize::from(last & 0x0f);
    let Some(four) = mac.get(offset..offset + 4) else {
        return 0;
    };
    let binary = u32::from_be_bytes([four[0] & 0x7f, four[1], four[2], four[3]]);
    binary % 10u32.pow(digits.min(9))
}

/// The 6-digit code of `secret` for `step`, zero-padded.
pub fn code(secret: &TotpSecret, step: u64) -> String {
    format!("{:0width$}", hotp(&secret.0, HashAlgorithm::Sha1, step, DIGITS), width = DIGITS as usize)
}

/// Checks `candidate` against the steps around `now`. Returns the matching step when it is
/// later than `last_used` (the step of the last accepted code), `None` otherwise. Every
/// candidate step is computed and compared in constant time, so timing does not tell which
/// step matched or how close a wrong guess was.
pub fn verify(secret: &TotpSecret, candidate: &[u8], now: Duration, last_used: Option<u64>) -> Option<u64> {
    if candidate.len() != DIGITS as usize || !candidate.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let current = step_at(now);
    let mut matched = None;
    for step in current.saturating_sub(WINDOW)..=current.saturating_add(WINDOW) {
        let expected = code(secret, step);
        if crypto::ct_eq(expected.as_bytes(), candidate) && last_used.is_none_or(|last| step > last) {
            matched = Some(step);
        }
    }
    matched
}

/// Splits "password followed by the current code" into its two parts: the last six bytes when
/// they are digits and something precedes them. Otherwise the secret comes back whole, as the
/// password. Both parts stay [`Secret`]s.
pub fn split_password_and_code(mut secret: Secret) -> (Secret, Option<Secret>) {
    let digits = DIGITS as usize;
    let tail = secret.expose_secret().len().checked_sub(digits).filter(|at| *at > 0);
    match tail {
        Some(at) if secret.expose_secret()[at..].iter().all(u8::is_ascii_digit) => {
            let code = secret.split_off(at);
            (secret, Some(code))
        }
        _ => (secret, None),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn uri_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4226 Appendix D: HOTP values for the ASCII secret "12345678901234567890".
    #[test]
    fn rfc4226_hotp_vectors() {
        let expected = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", HashAlgorithm::Sha1, counter as u64, 6), value);
        }
    }

    /// RFC 6238 Appendix B: 8-digit TOTP values for the three hash functions.
    #[test]
    fn rfc6238_totp_vectors() {
        let sha1 = b"12345678901234567890".as_slice();
        let sha256 = b"12345678901234567890123456789012".as_slice();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".as_slice();
        let table: [(u64, u32, u32, u32); 6] = [
            (59, 94287082, 46119246, 90693936),
            (1111111109, 7081804, 68084774, 25091201),
            (1111111111, 14050471, 67062674, 99943326),
            (1234567890, 89005924, 91819424, 93441116),
            (2000000000, 69279037, 90698825, 38618901),
            (20000000000, 65353130, 77737706, 47863826),
        ];
        for (time, v1, v256, v512) in table {
            let step = step_at(Duration::from_secs(time));
            assert_eq!(hotp(sha1, HashAlgorithm::Sha1, step, 8), v1, "SHA1 at {time}");
            assert_eq!(hotp(sha256, HashAlgorithm::Sha256, step, 8), v256, "SHA256 at {time}");
            assert_eq!(hotp(sha512, HashAlgorithm::Sha512, step, 8), v512, "SHA512 at {time}");
        }
    }

    #[test]
    fn six_digit_codes_are_zero_padded_and_verify_within_the_window() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        // RFC 6238 at T=59: 94287082 → the last six digits.
        assert_eq!(code(&secret, 1), "287082");
        let now = Duration::from_secs(59);
        assert_eq!(verify(&secret, b"287082", now, None), Some(1));
        // One step late (the user typed slowly) and one step early (clock drift) still pass.
        assert_eq!(verify(&secret, b"287082", Duration::from_secs(89), None), Some(1));
        assert_eq!(verify(&secret, code(&secret, 2).as_bytes(), now, None), Some(2));
        // Two steps away does not.
        assert_eq!(verify(&secret, b"287082", Duration::from_secs(120), None), None);
        // Malformed input never matches.
        for bad in [&b"28708"[..], b"2870821", b"28708a", b""] {
            assert_eq!(verify(&secret, bad, now, None), None);
        }
    }

    #[test]
    fn a_used_step_cannot_be_replayed() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let now = Duration::from_secs(59);
        let step = verify(&secret, b"287082", now, None);
        assert_eq!(step, Some(1));
        assert_eq!(verify(&secret, b"287082", now, step), None, "same code again");
        // An older code is refused after a newer one was used.
        assert_eq!(verify(&secret, code(&secret, 0).as_bytes(), now, Some(1)), None);
        // The next step's code is fine.
        assert_eq!(verify(&secret, code(&secret, 2).as_bytes(), now, Some(1)), Some(2));
    }

    #[test]
    fn password_and_code_split() {
        let split = |s: &[u8]| {
            let (password, code) = split_password_and_code(Secret::from(s.to_vec()));
            (password.expose_secret().to_vec(), code.map(|c| c.expose_secret().to_vec()))
        };
        assert_eq!(split(b"secret123456"), (b"secret".to_vec(), Some(b"123456".to_vec())));
        assert_eq!(split(b"123456"), (b"123456".to_vec(), None), "a code alone has no password");
        assert_eq!(split(b"secret12345x"), (b"secret12345x".to_vec(), None));
        assert_eq!(split(b""), (Vec::new(), None));
    }

    #[test]
    fn uri_has_the_key_uri_fields() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let uri = secret.uri("Postfach mail.example.org", "alice@example.org");
        assert_eq!(
            uri,
            "otpauth://totp/Postfach%20mail.example.org:alice@example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Postfach%20mail.example.org&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(format!("{secret:?}"), "TotpSecret(/* REDACTED */)");
        let fresh = TotpSecret::generate().unwrap_or_else(|_| TotpSecret::from_bytes(Vec::new()));
        assert_eq!(fresh.as_bytes().len(), SECRET_LEN);
    }
}
