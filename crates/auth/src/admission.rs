//! The last word before a login is answered OK: may one more session of this account open?
//!
//! The credential check says *who* the client is; an [`Admission`] says whether the server
//! takes one more session of that account now (the per-account connection limit). The IMAP
//! session asks it after the credentials passed and before it writes the tagged OK, so a
//! refusal is a tagged `NO [LIMIT]` (RFC 5530) and the connection stays unauthenticated, and
//! the place is taken in the same step as the decision: two logins racing for the last place
//! cannot both get it.
//!
//! The place is held by the returned [`Admitted`] value: the session keeps it while it is
//! logged in and dropping it gives the place back. What a place is (a counter slot, a lease in
//! a shared database) is up to the implementation; this crate only carries it.
//!
//! Limits: the hook is synchronous and must be cheap (it runs inside the login command).

use std::any::Any;
use std::fmt;

use crate::Principal;

/// Decides whether a session of an authenticated account may start, and takes its place.
pub trait Admission: Send + Sync {
    /// Takes a place for one more session of `principal`; `None` when its account is at its
    /// limit (the login is then refused with `NO [LIMIT]` and nothing is taken).
    fn admit(&self, principal: &Principal) -> Option<Admitted>;
}

/// A session's place, held from login to the end of the session; dropping it releases it.
pub struct Admitted(
    /// Never read: only its `Drop` matters.
    #[allow(dead_code)]
    Box<dyn Any + Send + Sync>,
);

impl Admitted {
    /// Wraps whatever releases the place when dropped (a counter slot, a guard).
    pub fn new<T: Any + Send + Sync>(held: T) -> Self {
        Self(Box::new(held))
    }
}

impl fmt::Debug for Admitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Admitted")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts how many places are held.
    struct Held(Arc<AtomicUsize>);

    impl Drop for Held {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn dropping_the_admission_releases_its_place() {
        let count = Arc::new(AtomicUsize::new(1));
        let admitted = Admitted::new(Held(Arc::clone(&count)));
        assert_eq!(format!("{admitted:?}"), "Admitted");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        drop(admitted);
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }
}
