//! Progress notifications of long commands (RFC 9585 INPROGRESS): `* OK [INPROGRESS ("tag"
//! done total)] ...` while a command runs, at most once per [`crate::SessionConfig`]'s
//! `progress_interval` (0: at every step, which tests use).
//!
//! Two shapes: a command that works in steps (FETCH by chunk, ESEARCH by mailbox) reports
//! `done` of `total` between steps ([`Progress::step`]); one that waits for a single store call
//! (SEARCH, SORT, THREAD, COPY, MOVE) races it with a timer and reports `("tag" NIL NIL)` each
//! time the interval passes ([`Progress::wait`]). Each notification is handed to the driver at
//! once ([`Out::flush`]), so the client sees it while the command still runs; the connection's
//! output limits are the driver's as for any response.

use std::future::Future;
use std::time::Duration;

use postfach_proto::response::{Code, InProgress, Status};
use postfach_proto::types::Tag;
use tokio::time::Instant;

use crate::Out;

/// The progress of one command.
pub(crate) struct Progress {
    tag: Tag,
    interval: Duration,
    /// When the last notification went out (or the command started).
    last: Instant,
}

impl Progress {
    /// A command tagged `tag` starts now.
    pub(crate) fn new(tag: &Tag, interval: Duration) -> Progress {
        Progress { tag: tag.clone(), interval, last: Instant::now() }
    }

    /// Between steps: `done` items of `total` (when known) are finished. Notifies when the
    /// interval has passed since the last notification.
    pub(crate) async fn step(&mut self, done: u64, total: Option<u64>, out: &mut Out) {
        if self.last.elapsed() < self.interval {
            return;
        }
        self.notify(Some(done), total, "Still working", out).await;
    }

    /// Awaits `work`, notifying `("tag" NIL NIL)` each time the interval passes meanwhile (once
    /// before it, when the interval is 0).
    pub(crate) async fn wait<F: Future>(&mut self, work: F, out: &mut Out) -> F::Output {
        if self.interval.is_zero() {
            self.notify(None, None, "Still working", out).await;
            return work.await;
        }
        tokio::pin!(work);
        loop {
            let due = self.last + self.interval;
            tokio::select! {
                result = &mut work => return result,
                () = tokio::time::sleep_until(due) => self.notify(None, None, "Still working", out).await,
            }
        }
    }

    async fn notify(&mut self, done: Option<u64>, total: Option<u64>, text: &str, out: &mut Out) {
        let progress = InProgress { tag: Some(self.tag.clone()), done, total };
        out.status(Status::Ok, Some(Code::InProgress(Some(progress))), text);
        out.flush().await;
        self.last = Instant::now();
    }
}
