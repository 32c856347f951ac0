//! Password hashing: argon2id PHC strings (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
//!
//! The parameters are argon2's defaults (19 MiB, 2 passes, 1 lane: OWASP's recommendation). The
//! parameters travel inside each stored string, so raising them later keeps old hashes valid.
//! [`hash_with_scram`] also makes the SCRAM verifier, which is stored beside the hash.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use postfach_store::ScramCredential;

/// Hashes a password into an argon2id PHC string with a fresh random salt.
pub fn hash(password: &[u8]) -> Result<String, String> {
    Argon2::default().hash_password(password).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// The argon2id hash and the SCRAM-SHA-256 verifier of a new password: everything stored when
/// a password is set, so both LOGIN/PLAIN and SCRAM work with it. CPU-heavy (argon2id plus
/// PBKDF2): call it from a blocking context.
pub fn hash_with_scram(password: &[u8]) -> Result<(String, ScramCredential), String> {
    Ok((hash(password)?, crate::scram::credential(password)?))
}

/// True when `password` matches the PHC string `hash`. A malformed hash never matches.
pub fn verify(hash: &str, password: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default().verify_password(password, &parsed).is_ok()
}

/// A valid hash of a random password, used for unknown users so that their login attempt costs
/// the same time as a known user's.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash(b"postfach-dummy-password").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash(b"correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, b"correct horse"));
        assert!(!verify(&h, b"wrong horse"));
        assert!(!verify("not a hash", b"correct horse"));
    }
}
