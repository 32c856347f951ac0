//! Who is this, and may they try again.
//!
//! # Layout
//! - [`password`]: argon2id hashing and verification of account passwords.
//! - [`Authenticator`]: checks credentials against the [`AccountStore`] and yields a [`Principal`].
//!
//! No SQL and no sockets here: the store answers "which hash belongs to this name", the session
//! decides what to say to the client. Hashing costs tens of milliseconds of CPU, so it runs on
//! the blocking pool behind a concurrency limit: a flood of logins cannot starve the runtime.

pub mod password;

use std::fmt;
use std::sync::Arc;

use postfach_store::{AccountId, AccountStore, StoreError};
use tokio::sync::Semaphore;

/// A secret that never shows in `Debug` output, so logging a command cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(pub T);

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("/* REDACTED */")
    }
}

/// An authenticated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account's id in the store.
    pub account: AccountId,
    /// The account's canonical login name.
    pub name: String,
}

/// Why authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password; the two are deliberately indistinguishable.
    #[error("bad credentials")]
    BadCredentials,
    /// The store could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed or its worker died.
    #[error("internal: {0}")]
    Internal(String),
}

/// Hash computations allowed at once: each takes a core for tens of milliseconds.
const MAX_CONCURRENT_HASHES: usize = 4;

/// Checks credentials against the account store.
pub struct Authenticator {
    accounts: Arc<dyn AccountStore>,
    hashing: Semaphore,
}

impl Authenticator {
    /// An authenticator over the given account store.
    pub fn new(accounts: Arc<dyn AccountStore>) -> Self {
        Self { accounts, hashing: Semaphore::new(MAX_CONCURRENT_HASHES) }
    }

    /// Verifies a user name and password. Unknown users cost the same hash work as known ones, so
    /// timing does not tell which names exist.
    pub async fn verify_password(
        &self,
        user: &str,
        password: &Secret<Vec<u8>>,
    ) -> Result<Principal, AuthError> {
        let account = self.accounts.account_by_name(user).await?;
        let hash = match &account {
            Some(a) => a.password_hash.clone(),
            None => password::dummy_hash().to_owned(),
        };
        let pw = password.0.clone();
        let _permit = self.hashing.acquire().await.map_err(|e| AuthError::Internal(e.to_string()))?;
        let ok = tokio::task::spawn_blocking(move || password::verify(&hash, &pw))
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        match (ok, account) {
            (true, Some(a)) => Ok(Principal { account: a.id, name: a.name }),
            _ => Err(AuthError::BadCredentials),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted() {
        let s = Secret(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "/* REDACTED */");
    }
}
