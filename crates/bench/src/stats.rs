//! Latency histograms and per-operation counters, mergeable across client tasks.
//!
//! The histogram is log-linear (32 sub-buckets per power of two, so about 3 % resolution) over
//! microseconds, in a fixed array: memory does not grow with the number of samples, however
//! long a run lasts.

use std::collections::BTreeMap;
use std::time::Duration;

/// Sub-buckets per power of two (a power of two itself).
const SUB: u64 = 32;
/// Values below this are counted exactly.
const LINEAR: u64 = 2 * SUB;
/// Buckets for the whole u64 range.
const BUCKETS: usize = (LINEAR + (64 - 6) * SUB) as usize;

/// A fixed-size latency histogram over microseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; BUCKETS], total: 0, sum: 0, max: 0 }
    }
}

fn bucket(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = 63 - u64::from(v.leading_zeros()); // >= 6
    let sub = (v >> (exp - 5)) & (SUB - 1);
    (LINEAR + (exp - 6) * SUB + sub) as usize
}

/// The middle of bucket `i`.
fn bucket_value(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let exp = (i - LINEAR) / SUB + 6;
    let sub = (i - LINEAR) % SUB;
    let low = (SUB + sub) << (exp - 5);
    let width = 1u64 << (exp - 5);
    low.saturating_add(width / 2)
}

impl Histogram {
    /// Records one sample.
    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if let Some(c) = self.counts.get_mut(bucket(micros)) {
            *c += 1;
        }
        self.total += 1;
        self.sum += u128::from(micros);
        self.max = self.max.max(micros);
    }

    /// Adds `other`'s samples.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q`-quantile (0.0..=1.0) in milliseconds; 0 without samples.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_value(i).min(self.max) as f64 / 1000.0;
            }
        }
        self.max as f64 / 1000.0
    }

    /// Mean in milliseconds; 0 without samples.
    pub fn mean_ms(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        (self.sum as f64 / self.total as f64) / 1000.0
    }
}

/// Counts and latencies of one kind of operation.
#[derive(Debug, Clone, Default)]
pub struct OpStats {
    /// Completed with OK.
    pub ok: u64,
    /// Completed with NO, or failed at the connection level.
    pub errors: u64,
    /// Latency of every completion, OK or not.
    pub latency: Histogram,
}

/// Per-operation statistics of one worker or of a whole run, keyed by operation name.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// By operation name (`LOGIN`, `FETCH`, ...), sorted for stable output.
    pub ops: BTreeMap<&'static str, OpStats>,
}

impl Recorder {
    /// Records one completed operation.
    pub fn record(&mut self, op: &'static str, took: Duration, ok: bool) {
        let entry = self.ops.entry(op).or_default();
        entry.latency.record(took);
        if ok {
            entry.ok += 1;
        } else {
            entry.errors += 1;
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Recorder) {
        for (name, stats) in &other.ops {
            let entry = self.ops.entry(name).or_default();
            entry.ok += stats.ok;
            entry.errors += stats.errors;
            entry.latency.merge(&stats.latency);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_are_monotonic_and_tight() {
        let mut last = 0;
        for v in [0u64, 1, 63, 64, 65, 127, 128, 1000, 12_345, 1 << 40, u64::MAX] {
            let b = bucket(v);
            assert!(b < BUCKETS, "{v}");
            assert!(b >= last);
            last = b;
            let mid = bucket_value(b);
            // Within about 3 % of the value.
            let err = mid.abs_diff(v) as f64 / (v.max(1) as f64);
            assert!(err <= 0.035, "{v} -> {mid}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile_ms(0.5), 0.0);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile_ms(0.5);
        let p99 = h.quantile_ms(0.99);
        assert!((48.0..=52.0).contains(&p50), "{p50}");
        assert!((96.0..=100.0).contains(&p99), "{p99}");
        assert!((h.mean_ms() - 50.5).abs() < 0.01);
        let mut other = Histogram::default();
        other.record(Duration::from_secs(2));
        h.merge(&other);
        assert_eq!(h.count(), 101);
        assert!((h.quantile_ms(1.0) - 2000.0).abs() < 70.0);
    }

    #[test]
    fn recorder_merges() {
        let mut a = Recorder::default();
        a.record("FETCH", Duration::from_millis(1), true);
        let mut b = Recorder::default();
        b.record("FETCH", Duration::from_millis(3), false);
        b.record("LOGIN", Duration::from_millis(3), true);
        a.merge(&b);
        let fetch = &a.ops["FETCH"];
        assert_eq!((fetch.ok, fetch.errors, fetch.latency.count()), (1, 1, 2));
        assert_eq!(a.ops["LOGIN"].ok, 1);
    }
}
