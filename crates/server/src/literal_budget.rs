//! The memory all logged-in sessions together may spend on literal data (APPEND messages):
//! `imap.literal_memory`. A connection reserves a literal's announced size before it takes a
//! byte of it (before the `+` of a synchronizing literal) and gives the reservation back once
//! the command has run and its bytes are freed. Without it, 50 sessions each sending a 50 MiB
//! message would hold 2.5 GiB at once, several times over counting the copies on the way.
//!
//! A counter and a wake-up, not a FIFO semaphore: a big literal waiting for room must not hold
//! up small ones that fit now (a fair semaphore hands the waiting head every freed byte). The
//! price is that a big literal can lose to a stream of small ones; its wait is bounded
//! (`imap.literal_wait`) and then answered `NO [LIMIT]`, so the client retries later.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The shared budget of literal bytes in memory.
#[derive(Debug)]
pub(crate) struct LiteralBudget {
    /// Bytes all reservations together may hold.
    total: u64,
    /// Bytes reserved now.
    used: AtomicU64,
    /// Woken whenever a reservation is given back.
    freed: Notify,
    /// How long a reservation may wait for room.
    wait: Duration,
}

/// Bytes taken from a [`LiteralBudget`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<LiteralBudget>,
    bytes: u64,
}

impl LiteralBudget {
    /// A budget of `total` bytes; reservations wait at most `wait` for room.
    pub(crate) fn new(total: u64, wait: Duration) -> Arc<Self> {
        Arc::new(Self { total, used: AtomicU64::new(0), freed: Notify::new(), wait })
    }

    /// Bytes reserved now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Takes `bytes` if they fit now.
    fn try_take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&after| after <= self.total)
            })
            .is_ok()
    }

    /// Adds `bytes` to `held` (the reservation of the command being received, if any),
    /// waiting up to the configured time for room. False if there was no room in time, or
    /// never can be (the command would need more than the whole budget): `held` is then
    /// unchanged.
    pub(crate) async fn reserve(self: &Arc<Self>, held: &mut Option<Reservation>, bytes: u64) -> bool {
        let already = held.as_ref().map_or(0, |r| r.bytes);
        if already.saturating_add(bytes) > self.total {
            return false;
        }
        let deadline = Instant::now() + self.wait;
        loop {
            // Registered before the check, so a release between the check and the wait wakes us.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_take(bytes) {
                match held {
                    Some(r) => r.bytes += bytes,
                    None => *held = Some(Reservation { budget: Arc::clone(self), bytes }),
                }
                return true;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return false;
            }
        }
    }
}

/// The budget as the IMAP session sees it: CATENATE reserves the messages it reads and builds
/// in the same memory as the literals (`postfach_imap::MessageMemory`).
#[derive(Debug)]
pub(crate) struct SessionMemory(pub(crate) Arc<LiteralBudget>);

impl postfach_imap::MessageMemory for SessionMemory {
    fn reserve(
        &self,
        bytes: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<postfach_imap::MemoryHold>> + Send + '_>>
    {
        Box::pin(async move {
            let mut held = None;
            if self.0.reserve(&mut held, bytes).await {
                held.map(|r| postfach_imap::MemoryHold(Box::new(r)))
            } else {
                None
            }
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
            self.budget.freed.notify_waiters();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_add_up_wait_and_are_given_back() {
        let budget = LiteralBudget::new(1000, Duration::from_secs(5));
        let mut first = None;
        assert!(budget.reserve(&mut first, 600).await);
        assert!(budget.reserve(&mut first, 300).await, "a second literal of the same command");
        assert_eq!(budget.used(), 900);
        let mut second = None;
        assert!(!budget.reserve(&mut second, 2000).await, "never fits: refused at once");
        // Waits until the first is given back.
        let waiter = {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move {
                let mut held = None;
                let ok = budget.reserve(&mut held, 500).await;
                (ok, held)
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        // A small one that fits goes ahead of the waiting big one.
        let mut small = None;
        assert!(budget.reserve(&mut small, 100).await);
        drop(small);
        drop(first);
        let (ok, held) = waiter.await.unwrap();
        assert!(ok);
        assert_eq!(budget.used(), 500);
        drop(held);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn sessions_reserve_in_the_same_budget() {
        use postfach_imap::MessageMemory;
        let budget = LiteralBudget::new(1000, Duration::from_millis(50));
        let memory = SessionMemory(Arc::clone(&budget));
        let hold = memory.reserve(600).await.unwrap();
        assert_eq!(budget.used(), 600);
        assert!(memory.reserve(500).await.is_none(), "over the budget");
        drop(hold);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn the_wait_is_bounded() {
        let budget = LiteralBudget::new(1000, Duration::from_millis(50));
        let mut first = None;
        assert!(budget.reserve(&mut first, 1000).await);
        let mut second = None;
        let started = std::time::Instant::now();
        assert!(!budget.reserve(&mut second, 1).await);
        assert!(second.is_none());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
