//! Scheduled backups (`[backup] dir`, `every`, `keep`): the server backs itself up in the
//! background and keeps the last result for metrics.
//!
//! Each run writes `dir/YYYYMMDDTHHMMSSZ/` (the start time, UTC) with [`backup::create`] on
//! tokio's blocking pool, verifies it ([`backup::verify`]: checksums and SQLite's integrity
//! check), and only then deletes the oldest backups beyond `keep`. Runs are `every` apart,
//! counted from the newest backup in `dir`, so restarting the server neither skips nor repeats
//! one; the first runs at start when `dir` holds none or the newest is overdue. A failed run is
//! retried after `every` or [`RETRY_AFTER`], whichever is sooner. Start, end, size and duration
//! are logged (target `postfach::backup`); [`BackupMetrics`] keeps the last result for a metrics
//! endpoint.
//!
//! A run in progress at shutdown is cancelled (between two steps of its copy or its checksums,
//! or within 50 ms during its integrity check) and what it wrote is removed, so a stop never
//! waits for a whole backup.
//!
//! Limits: directories in `dir` not named like a backup are left alone (nor counted for
//! `keep`).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postfach_store::sqlite::backup::CopyOptions;
use time::OffsetDateTime;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::backup::{self, CreateError, Stage};

/// Longest wait before a failed run is tried again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What the schedule needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// The data directory backed up.
    pub(crate) data_dir: PathBuf,
    /// Where the backups go.
    pub(crate) dir: PathBuf,
    /// Time from one backup's start to the next one's.
    pub(crate) every: Duration,
    /// Backups kept.
    pub(crate) keep: usize,
}

/// How the last scheduled backup went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastBackup {
    /// When it started.
    pub(crate) started: OffsetDateTime,
    /// How long it ran (copy, checksums, verification, pruning).
    pub(crate) duration: Duration,
    /// Its result.
    pub(crate) outcome: Outcome,
}

/// The result of one scheduled backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Written and verified.
    Succeeded {
        /// Its directory.
        dir: PathBuf,
        /// Its size in bytes.
        bytes: u64,
        /// Messages it holds.
        messages: u64,
        /// Older backups deleted after it.
        pruned: usize,
    },
    /// It failed; why.
    Failed(String),
}

/// The scheduled backups' results, for the metrics endpoint (`postfach_backups_total`,
/// `postfach_backup_last_success_timestamp_seconds`; they are logged too). Cheap to read.
#[derive(Debug, Default)]
pub(crate) struct BackupMetrics {
    state: Mutex<MetricsState>,
}

/// A copy of [`BackupMetrics`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MetricsState {
    /// The last run, successful or not.
    pub(crate) last: Option<LastBackup>,
    /// When the last successful run started.
    pub(crate) last_success: Option<OffsetDateTime>,
    /// Successful runs since the server started.
    pub(crate) successes: u64,
    /// Failed runs since the server started.
    pub(crate) failures: u64,
}

impl BackupMetrics {
    /// The current state.
    pub(crate) fn snapshot(&self) -> MetricsState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn record(&self, last: LastBackup) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match last.outcome {
            Outcome::Succeeded { .. } => {
                state.successes += 1;
                state.last_success = Some(last.started);
            }
            Outcome::Failed(_) => state.failures += 1,
        }
        state.last = Some(last);
    }
}

/// Runs the schedule until `stopped` turns true.
pub(crate) async fn run(schedule: Schedule, metrics: Arc<BackupMetrics>, mut stopped: watch::Receiver<bool>) {
    info!(
        target: "postfach::backup",
        dir = %schedule.dir.display(),
        every_secs = schedule.every.as_secs(),
        keep = schedule.keep,
        "scheduled backups on"
    );
    let mut retry_at: Option<OffsetDateTime> = None;
    loop {
        let now = OffsetDateTime::now_utc();
        let due = retry_at.unwrap_or_else(|| next_due(&schedule.dir, schedule.every, now));
        let wait = Duration::try_from(due - now).unwrap_or(Duration::ZERO);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = until_stopped(&mut stopped) => return,
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let job = {
            let (schedule, cancel) = (schedule.clone(), Arc::clone(&cancel));
            tokio::task::spawn_blocking(move || run_once(&schedule, &cancel))
        };
        tokio::pin!(job);
        let last = tokio::select! {
            done = &mut job => done,
            () = until_stopped(&mut stopped) => {
                cancel.store(true, Ordering::Relaxed);
                let _ = job.await;
                info!(target: "postfach::backup", "scheduled backup cancelled by the shutdown");
                return;
            }
        };
        let Ok(last) = last else {
            error!(target: "postfach::backup", "the backup task panicked");
            retry_at = Some(OffsetDateTime::now_utc() + schedule.every.min(RETRY_AFTER));
            continue;
        };
        retry_at = match &last.outcome {
            Outcome::Succeeded { .. } => None,
            Outcome::Failed(_) => Some(OffsetDateTime::now_utc() + schedule.every.min(RETRY_AFTER)),
        };
        metrics.record(last);
        log_result(&metrics.snapshot());
    }
}

/// Logs the last run as the metrics hold it.
fn log_result(state: &MetricsState) {
    let Some(last) = &state.last else { return };
    let duration_ms = u64::try_from(last.duration.as_millis()).unwrap_or(u64::MAX);
    let last_success = state.last_success.map(backup::rfc3339).unwrap_or_default();
    match &last.outcome {
        Outcome::Succeeded { dir, bytes, messages, pruned } => info!(
            target: "postfach::backup",
            dir = %dir.display(),
            bytes,
            messages,
            pruned,
            duration_ms,
            successes = state.successes,
            failures = state.failures,
            "backup done"
        ),
        Outcome::Failed(why) => error!(
            target: "postfach::backup",
            error = %why,
            started = %backup::rfc3339(last.started),
            duration_ms,
            successes = state.successes,
            failures = state.failures,
            %last_success,
            "backup failed"
        ),
    }
}

/// Returns once `stopped` is true (or its sender is gone).
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: dropped here, not held in the caller's select.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// When the next backup is due: `every` after the newest in `dir`, or `now` when there is none.
fn next_due(dir: &Path, every: Duration, now: OffsetDateTime) -> OffsetDateTime {
    match backups_in(dir).last() {
        Some((started, _)) => *started + every,
        None => now,
    }
}

/// One scheduled backup: create, verify, prune; logged, and returned for the metrics.
fn run_once(schedule: &Schedule, cancel: &AtomicBool) -> LastBackup {
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let dest = schedule.dir.join(backup::compact_time(started));
    info!(target: "postfach::backup", dir = %dest.display(), "backup started");
    let outcome = match create_verified(schedule, &dest, cancel) {
        Ok((bytes, messages)) => {
            let pruned = prune(&schedule.dir, schedule.keep);
            Outcome::Succeeded { dir: dest, bytes, messages, pruned }
        }
        Err(e) => Outcome::Failed(format!("{}: {e:#}", dest.display())),
    };
    LastBackup { started, duration: clock.elapsed(), outcome }
}

/// Writes and verifies one backup; its size and message count.
fn create_verified(schedule: &Schedule, dest: &Path, cancel: &AtomicBool) -> anyhow::Result<(u64, u64)> {
    match backup::remove_abandoned(&schedule.dir) {
        Ok(0) => {}
        Ok(n) => info!(target: "postfach::backup", removed = n, "removed what interrupted backups left"),
        Err(e) => {
            warn!(target: "postfach::backup", error = %format!("{e:#}"), "cannot clean up the backup directory")
        }
    }
    let mut progress = |_: Stage, _: u64, _: u64| {
        if cancel.load(Ordering::Relaxed) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    };
    let created = match backup::create(&schedule.data_dir, dest, CopyOptions::default(), &mut progress) {
        Ok(created) => created,
        Err(CreateError::Cancelled) => anyhow::bail!("cancelled"),
        Err(CreateError::Failed(e)) => return Err(e),
    };
    let verified = backup::verify(&created.dir, &mut progress, Some(cancel));
    if let Err(e) = verified {
        // A backup that fails its own check must not count towards `keep`.
        let _ = std::fs::remove_dir_all(&created.dir);
        return Err(e.context("the new backup failed verification and was deleted"));
    }
    Ok((created.manifest.bytes(), created.manifest.messages))
}

/// The backups in `dir` (directories named like a backup, with a manifest), oldest first.
fn backups_in(dir: &Path) -> Vec<(OffsetDateTime, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(OffsetDateTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let started = backup::parse_compact_time(&entry.file_name().to_string_lossy())?;
            let path = entry.path();
            path.join(backup::MANIFEST_FILE).is_file().then_some((started, path))
        })
        .collect();
    found.sort();
    found
}

/// Deletes the oldest backups in `dir` beyond `keep`; returns how many went.
fn prune(dir: &Path, keep: usize) -> usize {
    let all = backups_in(dir);
    let excess = all.len().saturating_sub(keep);
    let mut pruned = 0;
    for (_, path) in all.into_iter().take(excess) {
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                info!(target: "postfach::backup", dir = %path.display(), "old backup deleted");
                pruned += 1;
            }
            Err(e) => {
                warn!(target: "postfach::backup", dir = %path.display(), error = %e, "cannot delete an old backup")
            }
        }
    }
    pruned
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn backup_named(dir: &Path, name: &str) {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join(backup::MANIFEST_FILE), "{}").unwrap();
    }

    #[test]
    fn due_after_the_newest_and_prunes_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let now = backup::parse_compact_time("20270104T120000Z").unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(next_due(dir.path(), day, now), now, "nothing yet: at once");
        backup_named(dir.path(), "20270102T030000Z");
        backup_named(dir.path(), "20270104T030000Z");
        backup_named(dir.path(), "20270103T030000Z");
        // Neither counted nor touched: other names, an unfinished one.
        std::fs::create_dir(dir.path().join("20270101T030000Z")).unwrap();
        std::fs::create_dir(dir.path().join("keep-me")).unwrap();
        assert_eq!(next_due(dir.path(), day, now), backup::parse_compact_time("20270105T030000Z").unwrap());
        assert_eq!(prune(dir.path(), 2), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        left.sort();
        assert_eq!(left, ["20270101T030000Z", "20270103T030000Z", "20270104T030000Z", "keep-me"]);
    }

    #[test]
    fn metrics_keep_the_last_result() {
        let metrics = BackupMetrics::default();
        let started = OffsetDateTime::now_utc();
        let ok = Outcome::Succeeded { dir: PathBuf::from("/b/1"), bytes: 10, messages: 2, pruned: 0 };
        metrics.record(LastBackup { started, duration: Duration::from_secs(1), outcome: ok });
        metrics.record(LastBackup {
            started: started + Duration::from_secs(5),
            duration: Duration::from_secs(1),
            outcome: Outcome::Failed("disk full".to_owned()),
        });
        let state = metrics.snapshot();
        assert_eq!((state.successes, state.failures), (1, 1));
        assert_eq!(state.last_success, Some(started));
        assert_eq!(state.last.unwrap().outcome, Outcome::Failed("disk full".to_owned()));
    }
}
