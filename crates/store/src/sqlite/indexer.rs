//! The text indexer: writes the full-text entries of appended messages in batches, after their
//! APPEND has committed.
//!
//! An APPEND writes the message, its facts (`body_index`, text pending) and its
//! `unindexed_bodies` row in one transaction and hands the extracted text to this thread
//! ([`Indexer::submit`]). The thread gathers texts for up to [`GATHER`] and writes up to
//! [`BATCH`] of them (at most [`BATCH_BYTES`] of text) as one writer job. So an APPEND answers
//! without waiting for FTS5, which in a profile of the mixed load was half of the writer
//! thread's time, and the index work runs beside the next commands instead of inside them.
//! Jobs stay small on purpose: the writer runs one job at a time, and a first version that
//! wrote up to 16 MiB of text per job stalled every other write for hundreds of milliseconds
//! (APPEND throughput fell 3×); with 256 KiB jobs, measured on a fresh database, APPEND is 5 %
//! faster and the mixed load 20 % faster than indexing inside each APPEND.
//!
//! Until its text is written a message is in `unindexed_bodies` with `text_state` pending, so
//! SEARCH reads and scans it: answers are the same, only slower for those few messages.
//! Nothing is lost in a crash: the pending state is durable with the message. What the queue
//! cannot hold (more than [`MAX_QUEUED_BYTES`] of text waiting) and what a previous run left
//! pending is found in the database when the queue is empty, and extracted again from the raw
//! message.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postfach_message::{MessageText, email_id};
use rusqlite::Connection;

use super::conn::{DbResult, open_reader};
use super::index::{PendingText, TEXT_PENDING, limit, write_text};
use super::writer::WriterHandle;
use crate::{StoreError, StoreResult};

/// Most texts written by one writer job.
const BATCH: usize = 64;
/// Most text bytes written by one writer job (at least one text is always taken). Small on
/// purpose: the writer runs one job at a time, and every other write waits behind it, so a
/// job must stay short (FTS5 indexes a few MiB of text per second).
const BATCH_BYTES: usize = 64 * 1024;
/// How long the thread waits for more texts before writing a batch that is not full.
const GATHER: Duration = Duration::from_millis(5);
/// Text bytes that may wait in memory; beyond it texts are dropped and later extracted again
/// from the database.
const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;
/// How often an idle thread looks for pending texts in the database anyway (a text dropped by
/// a failed job, written by another process).
const RESCAN: Duration = Duration::from_secs(60);

/// Handle to the indexer thread; dropping it stops the thread after its current batch.
pub(crate) struct Indexer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    texts: VecDeque<PendingText>,
    bytes: usize,
    /// Look in the database for pending texts when the queue is empty.
    rescan: bool,
    stop: bool,
}

impl Indexer {
    /// Starts the thread; it first picks up what a previous run left pending.
    pub(crate) fn start(path: &Path, writer: WriterHandle) -> StoreResult<Indexer> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue { rescan: true, ..Queue::default() }),
            wake: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let path = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("postfach-sqlite-indexer".to_owned())
            .spawn(move || run(&thread_shared, &path, &writer))
            .map_err(|e| StoreError::Backend(format!("cannot start the text indexer: {e}")))?;
        Ok(Indexer { shared, thread: Some(thread) })
    }

    /// Queues the texts of committed appends.
    pub(crate) fn submit(&self, texts: Vec<PendingText>) {
        if texts.is_empty() {
            return;
        }
        let mut q = lock(&self.shared.queue);
        for pending in texts {
            let size = pending.text.bytes();
            if q.bytes.saturating_add(size) > MAX_QUEUED_BYTES {
                // Still pending in the database: found by the next rescan.
                q.rescan = true;
                continue;
            }
            q.bytes += size;
            q.texts.push_back(pending);
        }
        drop(q);
        self.shared.wake.notify_one();
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        lock(&self.shared.queue).stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // A panic while holding the lock leaves a consistent queue (plain pushes and pops).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the thread does next.
enum Work {
    Write(Vec<PendingText>),
    Rescan,
    Stop,
}

fn run(shared: &Shared, path: &Path, writer: &WriterHandle) {
    let mut reader: Option<Connection> = None;
    loop {
        match next(shared) {
            Work::Stop => return,
            Work::Write(batch) => {
                if let Err(e) = write(writer, batch) {
                    tracing::warn!(error = %e, "writing full-text entries failed; retried from the database");
                    lock(&shared.queue).rescan = true;
                }
            }
            Work::Rescan => {
                if reader.is_none() {
                    reader = open_reader(path)
                        .map_err(|e| tracing::warn!(error = %e, "the text indexer cannot read the database"))
                        .ok();
                }
                let Some(conn) = reader.as_ref() else { continue };
                match rescan(conn, writer) {
                    // A full batch: there may be more.
                    Ok(n) if n == BATCH => lock(&shared.queue).rescan = true,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "indexing pending texts failed"),
                }
            }
        }
    }
}

/// Waits for work: a batch of queued texts (gathered for up to [`GATHER`]), a rescan, or stop.
fn next(shared: &Shared) -> Work {
    let mut q = lock(&shared.queue);
    let idle_since = Instant::now();
    loop {
        if q.stop {
            return Work::Stop;
        }
        if !q.texts.is_empty() {
            break;
        }
        if q.rescan {
            q.rescan = false;
            return Work::Rescan;
        }
        let (guard, timeout) =
            shared.wake.wait_timeout(q, RESCAN).unwrap_or_else(std::sync::PoisonError::into_inner);
        q = guard;
        if timeout.timed_out() && idle_since.elapsed() >= RESCAN {
            q.rescan = true;
        }
    }
    // Gather: more appends are likely on their way; one transaction for all of them.
    let deadline = Instant::now() + GATHER;
    while q.texts.len() < BATCH && !q.stop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let (guard, _) =
            shared.wake.wait_timeout(q, deadline - now).unwrap_or_else(std::sync::PoisonError::into_inner);
        q = guard;
    }
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    while let Some(pending) = q.texts.front() {
        let size = pending.text.bytes();
        if !batch.is_empty() && (batch.len() >= BATCH || bytes.saturating_add(size) > BATCH_BYTES) {
            break;
        }
        bytes += size;
        q.bytes = q.bytes.saturating_sub(size);
        if let Some(item) = q.texts.pop_front() {
            batch.push(item);
        }
    }
    Work::Write(batch)
}

/// One writer job for the whole batch.
fn write(writer: &WriterHandle, batch: Vec<PendingText>) -> StoreResult<()> {
    writer.run_blocking(move |conn, _| {
        for pending in &batch {
            write_text(conn, pending.body_id, &pending.email_id, &pending.text)?;
        }
        Ok(())
    })
}

/// Bodies whose text is pending, oldest first.
fn pending(conn: &Connection, limit: usize) -> StoreResult<Vec<i64>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT u.body_id FROM unindexed_bodies u JOIN body_index bi ON bi.body_id = u.body_id
             WHERE bi.text_state = ?1 ORDER BY u.body_id LIMIT ?2",
        )
        .db()?;
    let rows = stmt
        .query_map(rusqlite::params![TEXT_PENDING, i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))
        .db()?;
    rows.collect::<rusqlite::Result<Vec<i64>>>().db()
}

/// Extracts and writes up to [`BATCH`] pending texts found in the database; how many it found.
fn rescan(conn: &Connection, writer: &WriterHandle) -> StoreResult<usize> {
    let ids = pending(conn, BATCH)?;
    let found = ids.len();
    let mut batch = Vec::with_capacity(found);
    let mut bytes = 0usize;
    for id in ids {
        let raw: Option<Vec<u8>> = {
            let mut stmt = conn.prepare_cached("SELECT raw FROM bodies WHERE id = ?1").db()?;
            let mut rows = stmt.query([id]).db()?;
            match rows.next().db()? {
                Some(r) => Some(r.get(0).db()?),
                None => None,
            }
        };
        // Expunged meanwhile: nothing to index.
        let Some(raw) = raw else { continue };
        let (mut text, _) = MessageText::extract(&raw);
        limit(&mut text);
        bytes += text.bytes();
        batch.push(PendingText { body_id: id, email_id: email_id(&raw), text });
        if bytes >= BATCH_BYTES {
            write(writer, std::mem::take(&mut batch))?;
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        write(writer, batch)?;
    }
    Ok(found)
}
