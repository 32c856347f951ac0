//! Automatic clean-up of Trash and Junk (issue 14): the server's periodic task and the
//! `postfach cleanup run` command share one pass.
//!
//! A pass reads every `\Trash` and `\Junk` mailbox of users and teams with its owner's own limit
//! and its earliest save date (one read), and asks the writer only about the mailboxes that
//! hold something older than their limit, [`BATCH`] messages per writer job, so other writes
//! wait at most one batch. The expunges take the ordinary path: sessions of this process see
//! EXPUNGE or VANISHED at once (IDLE included); a pass run by the CLI beside a running server is
//! seen by that server's sessions at their next command. Each mailbox that lost messages gets
//! one log line.
//!
//! Limits: a limit is whole days (`[cleanup] trash_days`, `junk_days`, or the account's own,
//! `postfach user set NAME --trash-days N`); 0 keeps mail for ever. Any mailbox may carry its
//! own limit in the METADATA entry `/shared/vendor/vendor.postfach/cleanup-days` (RFC 5464,
//! set by a client with SETMETADATA), which wins over the others. The age is the save date
//! (RFC 8514): when the message came into that mailbox, not its internal date.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postfach_store::{SpecialUse, Store};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::CleanupConfig;
use crate::imap_conn::shutdown_requested;
use crate::metrics::Metrics;

/// Messages expunged per writer job. Each removal also drops the body's full-text entry, which
/// dominates: measured (release build, 100,000 old messages in one Trash) 68 ms per 1000 on
/// average and 0.3 s for the slowest 1000, so 250 keeps one job to tens of milliseconds.
pub(crate) const BATCH: usize = 250;

/// Seconds in a day: limits are whole days.
const DAY: i64 = 24 * 3600;

/// Only in debug builds (tests): shifts the server's clean-up clock by this many seconds, so a
/// black-box test can make a message "eight days old" without waiting. Release builds ignore it.
pub(crate) const TEST_CLOCK_SKEW: &str = "POSTFACH_TEST_CLOCK_SKEW";

/// What one pass removed from one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Removed {
    /// The owner.
    pub(crate) account: String,
    /// The mailbox's name.
    pub(crate) mailbox: String,
    /// Trash or Junk; `None` for a mailbox cleaned by its own METADATA entry.
    pub(crate) kind: Option<SpecialUse>,
    /// The limit that applied, days.
    pub(crate) days: u32,
    /// Messages expunged.
    pub(crate) messages: usize,
}

/// One pass at `now` (Unix seconds): every mailbox that lost messages, in order.
pub(crate) async fn pass(
    store: &dyn Store,
    config: &CleanupConfig,
    now: i64,
) -> anyhow::Result<Vec<Removed>> {
    let mut report = Vec::new();
    for mailbox in store.cleanup_mailboxes().await? {
        // The mailbox's own METADATA entry first, then its owner's limit for the kind, then
        // the server's; a mailbox that is neither Trash nor Junk has only its own.
        let default = match mailbox.special_use {
            Some(SpecialUse::Junk) => config.junk_days,
            Some(SpecialUse::Trash) => config.trash_days,
            _ => 0,
        };
        let days = mailbox.mailbox_days.or(mailbox.days).unwrap_or(default);
        if days == 0 {
            continue;
        }
        let before = now.saturating_sub(i64::from(days) * DAY);
        if mailbox.oldest_saved.is_none_or(|oldest| oldest >= before) {
            continue;
        }
        let mut messages = 0;
        loop {
            let batch = match store.expunge_saved_before(mailbox.mailbox, before, BATCH).await {
                Ok(batch) => batch,
                // Deleted meanwhile: nothing left to clean.
                Err(postfach_store::StoreError::NotFound) => break,
                Err(e) => return Err(e.into()),
            };
            messages += batch.len();
            if batch.len() < BATCH {
                break;
            }
        }
        if messages > 0 {
            info!(
                account = %mailbox.account_name,
                mailbox = %mailbox.name,
                messages,
                days,
                "clean-up expunged messages older than the limit"
            );
            report.push(Removed {
                account: mailbox.account_name,
                mailbox: mailbox.name,
                kind: mailbox.special_use,
                days,
                messages,
            });
        }
    }
    Ok(report)
}

/// Runs a pass every `config.every` until `shutdown`; the first one a little after the start
/// (the listeners come first).
pub(crate) async fn run(
    store: Arc<dyn Store>,
    config: CleanupConfig,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    if config.trash_days == 0 && config.junk_days == 0 {
        info!("clean-up: trash_days and junk_days are 0; only accounts with their own limits are cleaned");
    }
    let skew = clock_skew();
    let mut next = tokio::time::Instant::now() + config.every.min(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown_requested(&mut shutdown) => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        next = tokio::time::Instant::now() + config.every;
        let now = unix_now().saturating_add(skew);
        match pass(store.as_ref(), &config, now).await {
            Ok(report) => {
                let count =
                    |kind| report.iter().filter(|r| r.kind == Some(kind)).map(|r| r.messages as u64).sum();
                metrics.cleanup_pass(count(SpecialUse::Trash), count(SpecialUse::Junk));
            }
            Err(e) => warn!(error = %e, "clean-up pass failed; trying again at the next one"),
        }
    }
}

/// The debug-only clock shift for tests ([`TEST_CLOCK_SKEW`]); 0 in release builds.
fn clock_skew() -> i64 {
    if !cfg!(debug_assertions) {
        return 0;
    }
    let skew = std::env::var(TEST_CLOCK_SKEW).ok().and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    if skew != 0 {
        warn!(seconds = skew, "clean-up clock shifted by {TEST_CLOCK_SKEW} (debug build, tests only)");
    }
    skew
}

/// Seconds since the Unix epoch now.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `--now` of `postfach cleanup run`: Unix seconds, or a date `YYYY-MM-DD` (midnight UTC), or
/// `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    let bad = || format!("not Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ: {text:?}");
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
        None => (text, None),
    };
    let numbers = |s: &str, sep: char| -> Option<Vec<u32>> { s.split(sep).map(|p| p.parse().ok()).collect() };
    let [y, m, d] = numbers(date, '-').ok_or_else(bad)?[..] else { return Err(bad()) };
    let (hh, mm, ss) = match time {
        Some(t) => match numbers(t, ':').ok_or_else(bad)?[..] {
            [hh, mm, ss] => (hh, mm, ss),
            _ => return Err(bad()),
        },
        None => (0, 0, 0),
    };
    let month = time::Month::try_from(u8::try_from(m).map_err(|_| bad())?).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(
        i32::try_from(y).map_err(|_| bad())?,
        month,
        u8::try_from(d).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    let time = time::Time::from_hms(
        u8::try_from(hh).map_err(|_| bad())?,
        u8::try_from(mm).map_err(|_| bad())?,
        u8::try_from(ss).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    Ok(time::PrimitiveDateTime::new(date, time).assume_utc().unix_timestamp())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_seconds_dates_and_instants() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_time("2024-03-01"), Ok(1_709_251_200));
        assert_eq!(parse_time("2024-03-01T12:00:30Z"), Ok(1_709_251_200 + 12 * 3600 + 30));
        for bad in ["2024-13-01", "2024-03-01T12:00", "yesterday", "2024-03"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
