//! URLAUTH's INTERNAL mechanism (RFC 4467 §6): a random mailbox access key per user and mailbox
//! (the store keeps it), and the authorization token of a URL: HMAC-SHA1 of the URL's rump (the
//! whole URL up to and including the access identifier), keyed with the access key, in hex.

use crate::crypto::{self, HashAlgorithm};

/// Bytes of a mailbox access key: 256 bits (RFC 4467 §6 asks for at least 128).
pub const ACCESS_KEY_LEN: usize = 32;

/// A new random mailbox access key.
pub fn new_access_key() -> Result<Vec<u8>, String> {
    crypto::random_bytes(ACCESS_KEY_LEN)
}

/// The INTERNAL token of `rump` under `key`: 40 lowercase hex digits (`enc-urlauth`).
pub fn token(key: &[u8], rump: &str) -> String {
    crypto::hmac(HashAlgorithm::Sha1, key, rump.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// True if `candidate` (hex, any case) is the token of `rump` under `key`; compared in constant
/// time.
pub fn verify(key: &[u8], rump: &str, candidate: &str) -> bool {
    crypto::ct_eq(token(key, rump).as_bytes(), candidate.to_ascii_lowercase().as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hmac_sha1_of_the_rump() {
        // RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?").
        assert_eq!(
            token(b"Jefe", "what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        let key = new_access_key().unwrap();
        assert_eq!(key.len(), ACCESS_KEY_LEN);
        assert_ne!(key, new_access_key().unwrap());
        let rump = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred";
        let t = token(&key, rump);
        assert_eq!(t.len(), 40);
        assert!(verify(&key, rump, &t));
        assert!(verify(&key, rump, &t.to_ascii_uppercase()));
        assert!(!verify(&key, &format!("{rump}x"), &t));
        assert!(!verify(b"other", rump, &t));
        assert!(!verify(&key, rump, &t[..32]));
    }
}
