//! Time as the authentication policy sees it: injected, so TOTP steps, throttling windows and
//! block expiry can be tested without waiting.
//!
//! Times are [`Duration`]s since the Unix epoch: TOTP counts from the epoch (RFC 6238 §4) and
//! blocks are persisted with Unix timestamps the CLI can print. A wall clock that steps back
//! only makes throttling forget early or late; nothing here panics or wraps on it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, since the Unix epoch.
    fn now(&self) -> Duration;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // Before 1970 only on a badly broken host; treat it as the epoch.
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `start` after the epoch.
    pub fn new(start: Duration) -> Self {
        let clock = Self::default();
        clock.set(start);
        clock
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: Duration) {
        self.millis.store(u64::try_from(at.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self.millis.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| Some(m.saturating_add(by)));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Duration::from_secs(59));
        let shared = c.clone();
        assert_eq!(c.now(), Duration::from_secs(59));
        shared.advance(Duration::from_millis(1500));
        assert_eq!(c.now(), Duration::from_millis(60_500));
        c.set(Duration::from_secs(1));
        assert_eq!(shared.now(), Duration::from_secs(1));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > Duration::from_secs(1_577_836_800));
    }
}
