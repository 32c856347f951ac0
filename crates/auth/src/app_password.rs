//! App passwords: random per-device secrets that open IMAP without the account password or a
//! second factor, and can be revoked one by one.
//!
//! A generated app password is 16 lowercase letters, shown once in four groups
//! (`abcd efgh ijkl mnop`); spaces and dashes are ignored when it is typed back. That is
//! 16 · log2(26) ≈ 75 bits of entropy from the operating system's random source.
//!
//! # Why a fast hash is enough here
//! Account passwords get argon2id because people choose guessable ones: a slow hash makes an
//! offline dictionary attack on a stolen database expensive. A 75-bit random secret has no
//! dictionary: even at 10^12 SHA-256 guesses per second an attacker needs over a thousand years
//! on average. So app passwords are stored as salted SHA-256 (`sha256$<salt>$<digest>`, base64),
//! which lets a login try all of an account's app passwords in microseconds, before and
//! independently of the (throttled, slow) password check.

use postfach_secret::Secret;
use zeroize::Zeroizing;

use crate::crypto::{self, HashAlgorithm};
use crate::encoding::{base64_decode, base64_encode};

/// Letters in an app password.
pub const LENGTH: usize = 16;
/// Bytes of salt in a stored digest.
const SALT_LEN: usize = 16;
/// Scheme tag of stored digests.
const SCHEME: &str = "sha256";

/// A fresh app password: [`LENGTH`] uniformly random lowercase letters.
pub fn generate() -> Result<String, String> {
    let mut out = String::with_capacity(LENGTH);
    while out.len() < LENGTH {
        for b in crypto::random_bytes(32)? {
            // Rejection sampling: 234 = 9 · 26, so every letter is equally likely.
            if b < 234 && out.len() < LENGTH {
                out.push(char::from(b'a' + b % 26));
            }
        }
    }
    Ok(out)
}

/// The app password in four groups of four, as shown to the operator.
pub fn display(password: &str) -> String {
    let mut out = String::with_capacity(password.len() + password.len() / 4);
    for (i, c) in password.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The canonical form of what a client sent, when it can be an app password: 16 ASCII letters
/// after removing spaces and dashes, lowercased. `None` means "cannot be one; skip the check".
/// The copy is a [`Secret`] from its first byte (its buffer never grows, so no older copy is
/// left behind).
pub fn canonical(candidate: &[u8]) -> Option<Secret> {
    let mut letters = Vec::with_capacity(candidate.len());
    letters.extend(candidate.iter().filter(|b| **b != b' ' && **b != b'-').map(u8::to_ascii_lowercase));
    let letters = Secret::new(letters);
    let fits = letters.len() == LENGTH && letters.expose_secret().iter().all(u8::is_ascii_lowercase);
    fits.then_some(letters)
}

/// The stored digest of a canonical app password, with a fresh salt.
pub fn hash(canonical: &str) -> Result<String, String> {
    let salt = crypto::random_bytes(SALT_LEN)?;
    Ok(format!("{SCHEME}${}${}", base64_encode(&salt), base64_encode(&digest(&salt, canonical.as_bytes()))))
}

/// True when the canonical app password matches the stored digest. A malformed digest never
/// matches.
pub fn verify(stored: &str, canonical: &Secret) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(salt), Some(expected), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(salt), Some(expected)) = (base64_decode(salt.as_bytes()), base64_decode(expected.as_bytes()))
    else {
        return false;
    };
    crypto::ct_eq(&digest(&salt, canonical.expose_secret()), &expected)
}

fn digest(salt: &[u8], canonical: &[u8]) -> Vec<u8> {
    let mut input = Zeroizing::new(Vec::with_capacity(salt.len() + canonical.len()));
    input.extend_from_slice(salt);
    input.extend_from_slice(canonical);
    crypto::hash(HashAlgorithm::Sha256, &input)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::from(s.to_owned())
    }

    #[test]
    fn generated_passwords_are_sixteen_lowercase_letters() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), LENGTH);
        assert!(a.bytes().all(|c| c.is_ascii_lowercase()), "{a}");
        assert_ne!(a, b);
        assert_eq!(display("abcdefghijklmnop"), "abcd efgh ijkl mnop");
    }

    #[test]
    fn letters_are_roughly_uniform() {
        let mut counts = [0u32; 26];
        for _ in 0..200 {
            for c in generate().unwrap().bytes() {
                counts[usize::from(c - b'a')] += 1;
            }
        }
        // 3200 letters: about 123 each; a biased generator (b % 26 without rejection) would
        // still pass this, but a broken one (always 'a') would not.
        assert!(counts.iter().all(|n| (50..250).contains(n)), "{counts:?}");
    }

    #[test]
    fn typed_forms_are_accepted() {
        let canon = Some(secret("abcdefghijklmnop"));
        assert_eq!(canonical(b"abcd efgh ijkl mnop"), canon);
        assert_eq!(canonical(b"ABCD-EFGH-IJKL-MNOP"), canon);
        assert_eq!(canonical(b"abcdefghijklmnop"), canon);
        assert_eq!(canonical(b"abcdefghijklmno"), None);
        assert_eq!(canonical(b"abcdefghijklmno1"), None);
        assert_eq!(canonical(b"secret123456"), None);
    }

    #[test]
    fn hash_and_verify() {
        let stored = hash("abcdefghijklmnop").unwrap();
        assert!(stored.starts_with("sha256$"), "{stored}");
        assert!(verify(&stored, &secret("abcdefghijklmnop")));
        assert!(!verify(&stored, &secret("abcdefghijklmnoq")));
        assert_ne!(stored, hash("abcdefghijklmnop").unwrap(), "salted");
        for bad in ["", "sha256$", "md5$AAAA$AAAA", "sha256$!!$AAAA", "sha256$AAAA$AAAA$AAAA"] {
            assert!(!verify(bad, &secret("abcdefghijklmnop")), "{bad}");
        }
    }
}
