//! The few primitives the credential code needs, in one place: HMAC and hashes over the
//! RustCrypto crates, constant-time comparison, and operating-system randomness.
//!
//! Everything returns owned byte vectors: the inputs are a few dozen bytes, and one shape for
//! every algorithm keeps the SCRAM and TOTP code free of generic plumbing. PBKDF2's output is a
//! password equivalent, so it is a [`Secret`].

use hmac::{Hmac, KeyInit, Mac};
use postfach_secret::Secret;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

/// A hash function usable with HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-1: TOTP's default (RFC 6238) and the RFC 5802 SCRAM examples; nothing else.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384 (certificate hashes for tls-server-end-point, RFC 5929 §4.1).
    Sha384,
    /// SHA-512 (RFC 6238 allows it for TOTP).
    Sha512,
}

impl HashAlgorithm {
    /// Digest length in bytes.
    fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }
}

/// `HMAC(key, data)` (RFC 2104).
pub(crate) fn hmac(algorithm: HashAlgorithm, key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so the `Err` arms cannot happen; an empty tag would
    // only make a comparison fail, never succeed.
    match algorithm {
        HashAlgorithm::Sha1 => match Hmac::<Sha1>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
        HashAlgorithm::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
        HashAlgorithm::Sha384 => match Hmac::<Sha384>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
        HashAlgorithm::Sha512 => match Hmac::<Sha512>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
    }
}

/// `H(data)`.
pub(crate) fn hash(algorithm: HashAlgorithm, data: &[u8]) -> Vec<u8> {
    match algorithm {
        HashAlgorithm::Sha1 => Sha1::digest(data).to_vec(),
        HashAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
        HashAlgorithm::Sha384 => Sha384::digest(data).to_vec(),
        HashAlgorithm::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// PBKDF2 with HMAC (RFC 8018), which is SCRAM's `Hi()` (RFC 5802 §2.2).
/// The result (SCRAM's SaltedPassword, a password equivalent) is written straight into a
/// [`Secret`], so no copy of it is left behind.
pub(crate) fn pbkdf2(algorithm: HashAlgorithm, password: &[u8], salt: &[u8], rounds: u32) -> Secret {
    let mut out = vec![0u8; algorithm.output_len()];
    match algorithm {
        HashAlgorithm::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, rounds, &mut out),
        HashAlgorithm::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out),
        HashAlgorithm::Sha384 => pbkdf2::pbkdf2_hmac::<Sha384>(password, salt, rounds, &mut out),
        HashAlgorithm::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out),
    }
    Secret::new(out)
}

/// Equality that takes the same time wherever the inputs differ (lengths are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `n` bytes from the operating system's random source.
pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| format!("no randomness from the operating system: {e}"))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc4231_hmac_sha256_case_2() {
        let tag = hmac(HashAlgorithm::Sha256, b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex(&tag), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn rfc2202_hmac_sha1_case_2() {
        let tag = hmac(HashAlgorithm::Sha1, b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex(&tag), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }

    #[test]
    fn rfc6070_pbkdf2_sha1() {
        let dk = pbkdf2(HashAlgorithm::Sha1, b"password", b"salt", 4096);
        assert_eq!(hex(dk.expose_secret()), "4b007901b765489abead49d926f721d065a429c1");
    }

    #[test]
    fn comparison_and_randomness() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        let a = random_bytes(16).unwrap_or_default();
        let b = random_bytes(16).unwrap_or_default();
        assert_eq!(a.len(), 16);
        assert_ne!(a, b, "two draws of 128 random bits are equal");
    }
}
