//! Numbers for monitoring: a lock-free fixed-bucket histogram and what the store reports.
//!
//! The histogram is plain atomics (one relaxed increment per bucket hit, one for the sum, one
//! for the count), so recording on the writer thread or in a connection's command loop costs a
//! few nanoseconds and never blocks. Snapshots are not atomic across buckets: a scrape that
//! races a record may see the count one ahead of a bucket, which Prometheus tolerates.

use std::sync::atomic::{AtomicU64, Ordering};

/// A fixed-bucket histogram of non-negative values (Prometheus' shape: cumulative buckets with
/// upper bounds, a sum and a count).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); one more than `bounds` for `+Inf`.
    buckets: Vec<AtomicU64>,
    /// The sum of observations, in millionths of the unit (exact for durations in µs).
    sum_millionths: AtomicU64,
    count: AtomicU64,
}

/// A copy of a [`Histogram`] at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Each bucket's upper bound and the observations at or below it (cumulative), ascending;
    /// the `+Inf` bucket is [`HistogramSnapshot::count`].
    pub buckets: Vec<(f64, u64)>,
    /// Sum of every observation.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// An empty histogram with these upper bounds (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_millionths: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation (negative values count as 0).
    pub fn record(&self, value: f64) {
        let value = value.max(0.0);
        let index = self.bounds.iter().position(|b| value <= *b).unwrap_or(self.bounds.len());
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        // Saturating float → integer conversion: huge values pin the sum instead of wrapping.
        let millionths = (value * 1e6) as u64;
        self.sum_millionths.fetch_add(millionths, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        let count = self.count.load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            sum: self.sum_millionths.load(Ordering::Relaxed) as f64 / 1e6,
            count: count.max(cumulative),
        }
    }
}

/// Upper bounds of the commit-latency histogram, seconds: an fsync takes 0.1–20 ms on SSDs,
/// a busy disk or a large group can take longer.
pub const COMMIT_SECONDS_BOUNDS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Upper bounds of the batch-size histogram: jobs per commit, up to the writer's group limit.
pub const BATCH_SIZE_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// What the writer thread has done since the store was opened.
#[derive(Debug, Clone, PartialEq)]
pub struct WriterStats {
    /// Transactions committed (one fsync each).
    pub commits: u64,
    /// Time from `BEGIN IMMEDIATE` to the end of `COMMIT` of each committed group, seconds.
    pub commit_seconds: HistogramSnapshot,
    /// Jobs carried by each committed group.
    pub batch_size: HistogramSnapshot,
}

/// How much the store holds, over every account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreTotals {
    /// Users and teams.
    pub accounts: u64,
    /// Messages in every mailbox.
    pub messages: u64,
    /// Their bytes (as quota counts them; a body shared by copies counts per copy).
    pub bytes: u64,
    /// Accounts with a storage or message limit (their own or the default).
    pub accounts_with_limit: u64,
    /// Of those, the accounts at or above 90 % of a limit.
    pub accounts_above_90_percent: u64,
    /// Of those, the accounts at or above 100 % of a limit.
    pub accounts_full: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_sum_is_kept() {
        let h = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 1.0, 3.0, 50.0, -2.0] {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(1.0, 3), (10.0, 4)]);
        assert_eq!(s.count, 5);
        assert!((s.sum - 54.5).abs() < 1e-9, "{}", s.sum);
    }
}
