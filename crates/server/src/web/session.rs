//! Page sessions, login tokens and rate limits: the web's own state, all in memory.
//!
//! A page session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie (Secure,
//! and named `__Host-…`, on HTTPS). The table keys it by its SHA-256, so the token itself is
//! kept nowhere on the server. Each session holds the [`Principal`] the login made (so the
//! auth layer's `still_valid` ends it on a password change, a revoked account or a second
//! factor switched on elsewhere), its CSRF token, when it was last used (idle timeout) and
//! made (absolute lifetime), and a window of recent changes (the per-session rate limit).
//!
//! Limits: at most `[web] max_sessions` sessions (expired ones are swept when the table is
//! full; a login beyond the cap is refused), [`MAX_SESSION_AGE`] per session whatever its use,
//! [`CHANGES_PER_MINUTE`] form posts that change something per session, [`LOGINS_PER_MINUTE`]
//! login posts per client address (on top of the authenticator's throttling), and at most
//! [`MAX_TRACKED_ADDRESSES`] addresses tracked (the map is cleared past it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postfach_auth::Principal;
use postfach_auth::network::AddressKey;
use postfach_store::AccountId;
use sha2::{Digest, Sha256};

/// A session ends this long after login, however busy.
pub(crate) const MAX_SESSION_AGE: Duration = Duration::from_secs(12 * 3600);
/// Changes (posts of forms that change something) one session may make per minute.
pub(crate) const CHANGES_PER_MINUTE: usize = 30;
/// Login posts one client address (IPv6: its /64) may make per minute.
pub(crate) const LOGINS_PER_MINUTE: usize = 10;
/// Addresses the login limiter tracks at once.
pub(crate) const MAX_TRACKED_ADDRESSES: usize = 10_000;
/// Wrong current passwords (password change) before the session is ended.
pub(crate) const MAX_PASSWORD_FAILURES: u32 = 5;
/// The window of the rate limits.
const WINDOW: Duration = Duration::from_secs(60);
/// Bytes of randomness in a session token, a CSRF token and a login token.
const TOKEN_BYTES: usize = 32;

/// A fresh random token, base64url without padding (43 characters).
pub(crate) fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(base64url(&bytes))
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Constant-time equality of two tokens.
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What a session knows.
#[derive(Debug, Clone)]
pub(crate) struct PageSession {
    /// Who logged in, and with what (the auth layer re-checks it when credentials change).
    pub(crate) principal: Principal,
    /// The token every form of this session carries.
    pub(crate) csrf: String,
    /// The credentials generation `principal` was last checked at.
    pub(crate) generation: u64,
    /// A one-time notice for the next page.
    pub(crate) notice: Option<Notice>,
    /// Wrong current passwords given so far.
    pub(crate) password_failures: u32,
    created: Instant,
    last_seen: Instant,
    changes: Vec<Instant>,
}

/// A one-line message shown once at the top of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    /// Error (true) or success.
    pub(crate) error: bool,
    /// The text.
    pub(crate) text: String,
}

/// Why a new session was not made.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The table is full of live sessions.
    Full,
    /// No randomness.
    NoRandomness,
}

/// Every page session of the process.
pub(crate) struct PageSessions {
    table: Mutex<HashMap<[u8; 32], PageSession>>,
    idle: Duration,
    max: usize,
}

impl PageSessions {
    /// An empty table.
    pub(crate) fn new(idle: Duration, max: usize) -> Self {
        Self { table: Mutex::new(HashMap::new()), idle, max }
    }

    /// Starts a session; returns its token (for the cookie).
    pub(crate) fn start(&self, principal: Principal, generation: u64) -> Result<String, Refused> {
        let token = random_token().map_err(|_| Refused::NoRandomness)?;
        let csrf = random_token().map_err(|_| Refused::NoRandomness)?;
        let now = Instant::now();
        let mut table = self.lock();
        if table.len() >= self.max {
            table.retain(|_, s| self.alive(s, now));
            if table.len() >= self.max {
                return Err(Refused::Full);
            }
        }
        let session = PageSession {
            principal,
            csrf,
            generation,
            notice: None,
            password_failures: 0,
            created: now,
            last_seen: now,
            changes: Vec::new(),
        };
        table.insert(digest(&token), session);
        Ok(token)
    }

    fn alive(&self, s: &PageSession, now: Instant) -> bool {
        now.duration_since(s.last_seen) < self.idle && now.duration_since(s.created) < MAX_SESSION_AGE
    }

    /// The session of `token`, marked as used now; `None` (and the entry gone) when it expired.
    pub(crate) fn touch(&self, token: &str) -> Option<PageSession> {
        let key = digest(token);
        let now = Instant::now();
        let mut table = self.lock();
        let session = table.get_mut(&key)?;
        if !self.alive(session, now) {
            table.remove(&key);
            return None;
        }
        session.last_seen = now;
        let copy = session.clone();
        // The notice is shown once.
        session.notice = None;
        Some(copy)
    }

    /// Changes the session of `token` in place (no-op when it is gone).
    pub(crate) fn update(&self, token: &str, change: impl FnOnce(&mut PageSession)) {
        if let Some(session) = self.lock().get_mut(&digest(token)) {
            change(session);
        }
    }

    /// Sets the notice the next page shows.
    pub(crate) fn notify(&self, token: &str, error: bool, text: impl Into<String>) {
        let text = text.into();
        self.update(token, |s| s.notice = Some(Notice { error, text }));
    }

    /// Counts a change against the session's rate limit; `Err(retry after)` when over it.
    pub(crate) fn count_change(&self, token: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut table = self.lock();
        let Some(session) = table.get_mut(&digest(token)) else { return Ok(()) };
        over_limit(&mut session.changes, now, CHANGES_PER_MINUTE)
    }

    /// Ends one session.
    pub(crate) fn end(&self, token: &str) {
        self.lock().remove(&digest(token));
    }

    /// Ends every session of `account` but the one of `keep`.
    pub(crate) fn end_account(&self, account: AccountId, keep: Option<&str>) -> usize {
        let keep = keep.map(digest);
        let mut table = self.lock();
        let before = table.len();
        table.retain(|key, s| s.principal.account != account || Some(*key) == keep);
        before - table.len()
    }

    /// Sessions in the table (expired ones included until swept).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], PageSession>> {
        // Every change is whole; a poisoned lock still guards a valid table.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps the events of the last minute; `Err(retry after)` when `limit` are already there.
fn over_limit(events: &mut Vec<Instant>, now: Instant, limit: usize) -> Result<(), Duration> {
    events.retain(|t| now.duration_since(*t) < WINDOW);
    if events.len() >= limit {
        let oldest = events.iter().min().copied().unwrap_or(now);
        return Err(WINDOW.saturating_sub(now.duration_since(oldest)).max(Duration::from_secs(1)));
    }
    events.push(now);
    Ok(())
}

/// Login posts per client address.
#[derive(Default)]
pub(crate) struct LoginLimiter {
    recent: Mutex<HashMap<AddressKey, Vec<Instant>>>,
}

impl LoginLimiter {
    /// Counts a login post from `ip`; `Err(retry after)` when over [`LOGINS_PER_MINUTE`].
    pub(crate) fn count(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() >= MAX_TRACKED_ADDRESSES {
            recent.retain(|_, events| events.iter().any(|t| now.duration_since(*t) < WINDOW));
            if recent.len() >= MAX_TRACKED_ADDRESSES {
                recent.clear();
            }
        }
        over_limit(recent.entry(AddressKey::of(ip)).or_default(), now, LOGINS_PER_MINUTE)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_base64url() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert_eq!(base64url(b"Man"), "TWFu");
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a, ""));
    }

    #[test]
    fn limits_count_a_minute_of_events() {
        let mut events = Vec::new();
        let now = Instant::now();
        for _ in 0..3 {
            over_limit(&mut events, now, 3).unwrap();
        }
        let wait = over_limit(&mut events, now, 3).unwrap_err();
        assert!(wait <= WINDOW && wait >= Duration::from_secs(59));
        assert!(over_limit(&mut events, now + WINDOW, 3).is_ok());
        let limiter = LoginLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..LOGINS_PER_MINUTE {
            limiter.count(ip).unwrap();
        }
        assert!(limiter.count(ip).is_err());
        assert!(limiter.count("192.0.2.2".parse().unwrap()).is_ok());
    }
}
