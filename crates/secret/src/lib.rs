//! The one `Secret` type: a password, a TOTP code, an app password or a SASL response that
//! carries one, from the bytes it arrived in to the check that consumes it.
//!
//! # Layout
//! - [`Secret`]: owned bytes with a private field. `Debug` prints `/* REDACTED */`, so logging
//!   a command or a credential cannot leak it; dropping it zeroises the bytes (and the spare
//!   capacity of their buffer) with the `zeroize` crate. Every read is an explicit
//!   [`Secret::expose_secret`], so each use is visible in review.
//!
//! A leaf crate (std and zeroize only) so that every room can reach it: `proto` builds it from
//! the wire (LOGIN, AUTHENTICATE), `imap` from SASL responses, `server` from the admin CLI, and
//! `auth` carries it into the hashing workers.
//!
//! What it cannot do: bytes copied before they were wrapped (the framer's read buffer, a
//! terminal library's line) are outside its reach, and a `Vec` that grew before it was wrapped
//! may have left an older copy in freed memory. Wrap as early as possible and never grow it.

#![warn(missing_docs)]

use std::fmt;

use zeroize::Zeroize;

/// Secret bytes: redacted in `Debug`, zeroised on drop, read only through
/// [`Secret::expose_secret`].
#[derive(Clone, Default)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps bytes that are already in their own buffer (no copy is made).
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// Borrows the bytes; the name makes every use visible in review.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Splits in two at `at` (clamped to the length): `self` keeps `[0, at)`, the returned
    /// secret holds the rest. The tail's old bytes stay in `self`'s spare capacity until `self`
    /// is dropped, which zeroises them too.
    pub fn split_off(&mut self, at: usize) -> Secret {
        let at = at.min(self.0.len());
        Secret(self.0.split_off(at))
    }
}

impl From<Vec<u8>> for Secret {
    fn from(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }
}

impl From<String> for Secret {
    /// Takes over the string's buffer (no copy is made).
    fn from(text: String) -> Secret {
        Secret(text.into_bytes())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("/* REDACTED */")
    }
}

impl PartialEq for Secret {
    /// Compares without stopping at the first difference (the length may show).
    fn eq(&self, other: &Secret) -> bool {
        self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "/* REDACTED */");
        assert_eq!(format!("{:?}", Some(&s)), "Some(/* REDACTED */)");
        assert!(!format!("{s:#?}").contains("hunter2"));
        assert_eq!(s.expose_secret(), b"hunter2");
    }

    #[test]
    fn built_from_owned_buffers() {
        assert_eq!(Secret::from("pw".to_owned()).expose_secret(), b"pw");
        assert_eq!(Secret::from(b"pw".to_vec()), Secret::new(b"pw".to_vec()));
        assert_ne!(Secret::from(b"pw".to_vec()), Secret::from(b"pW".to_vec()));
        assert_ne!(Secret::from(b"pw".to_vec()), Secret::from(b"pw1".to_vec()));
        assert!(Secret::default().is_empty());
    }

    #[test]
    fn splits_without_leaving_the_wrapper() {
        let mut s = Secret::from(b"secret123456".to_vec());
        let code = s.split_off(6);
        assert_eq!(s.expose_secret(), b"secret");
        assert_eq!(code.expose_secret(), b"123456");
        assert_eq!(s.len(), 6);
        assert!(s.split_off(99).is_empty());
    }
}
