//! Password hashing: argon2id PHC strings (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
//!
//! The parameters are argon2's defaults (19 MiB, 2 passes, 1 lane: OWASP's recommendation). The
//! parameters travel inside each stored string, so raising them later keeps old hashes valid.
//! [`hash_with_scram`] also makes the SCRAM verifier, which is stored beside the hash.
//!
//! Verification is not here: it runs only on the [`Authenticator`](crate::Authenticator)'s
//! hashing workers, which reuse their memory and refuse hashes that ask for too much of it.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use postfach_secret::Secret;
use postfach_store::ScramCredential;

/// Hashes a password into an argon2id PHC string with a fresh random salt.
pub fn hash(password: &Secret) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.expose_secret())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// The argon2id hash and the SCRAM-SHA-256 verifier of a new password: everything stored when
/// a password is set, so both LOGIN/PLAIN and SCRAM work with it. CPU-heavy (argon2id plus
/// PBKDF2): call it from a blocking context.
pub fn hash_with_scram(password: &Secret) -> Result<(String, ScramCredential), String> {
    Ok((hash(password)?, crate::scram::credential(password)?))
}

/// A valid hash of a random password, used for unknown users so that their login attempt costs
/// the same time as a known user's.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash(&Secret::from(b"postfach-dummy-password".to_vec())).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hasher::verify_with_memory;

    #[test]
    fn hash_then_verify() {
        let h = hash(&Secret::from(b"correct horse".to_vec())).expect("hash");
        assert!(h.starts_with("$argon2id$"));
        let mut blocks = Vec::new();
        assert!(verify_with_memory(&h, &Secret::from(b"correct horse".to_vec()), &mut blocks));
        assert!(!verify_with_memory(&h, &Secret::from(b"wrong horse".to_vec()), &mut blocks));
        assert!(verify_with_memory(
            dummy_hash(),
            &Secret::from(b"postfach-dummy-password".to_vec()),
            &mut blocks
        ));
    }
}
