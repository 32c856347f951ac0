//! The single writer: one OS thread owns the write connection and commits jobs in groups.
//!
//! Callers hand a closure to [`Writer::run`]; it travels through a bounded channel to the writer
//! thread. The thread takes every job that is queued (up to [`MAX_BATCH`]), opens one
//! `BEGIN IMMEDIATE` transaction, runs each job inside its own SAVEPOINT (a failing job is rolled
//! back alone and answers with its error), COMMITs once (one fsync for the whole group), tells
//! the [`Notifier`] which mailboxes changed, and only then answers each job through its oneshot.
//! So an `Ok` from [`Writer::run`] always means "durable".
//!
//! Limits: jobs must only do SQL (parsing and serialising happen in the caller's
//! `spawn_blocking`), because a slow job delays every other writer. A panicking job is caught
//! and answered with an error; a dead thread turns into [`StoreError::Backend`] for callers.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::notify::Notifier;
use crate::stats::{BATCH_SIZE_BOUNDS, COMMIT_SECONDS_BOUNDS, Histogram, WriterStats};
use crate::types::{MailboxId, ModSeq};
use crate::{StoreError, StoreResult};

/// The most jobs committed by one transaction. Bounds the latency one group adds to its last
/// member and the work lost to a failing COMMIT.
pub(crate) const MAX_BATCH: usize = 128;

/// Jobs that may wait in the channel; senders beyond that wait (back-pressure instead of
/// unbounded memory).
const QUEUE_DEPTH: usize = 1024;

/// What a job changed, reported to the [`Notifier`] after the COMMIT.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    changed: Vec<(MailboxId, ModSeq)>,
    /// ACLs (or memberships, `None`: any mailbox) that changed.
    acl: Vec<Option<MailboxId>>,
}

impl Effects {
    /// Records that `mailbox` changed and its highest modseq is now `modseq`.
    pub(crate) fn changed(&mut self, mailbox: MailboxId, modseq: ModSeq) {
        self.changed.push((mailbox, modseq));
    }

    /// Records that the ACL of `mailbox` changed, or (`None`) that a team or group membership
    /// did, which may change rights anywhere ([`Notifier::acl_changed`]).
    pub(crate) fn acl_changed(&mut self, mailbox: Option<MailboxId>) {
        self.acl.push(mailbox);
    }
}

/// A type-erased write job.
trait Job: Send {
    /// Runs the job's SQL inside the open transaction; true when it succeeded.
    fn run(&mut self, conn: &Connection, effects: &mut Effects) -> bool;
    /// Answers the caller. `lost` is the reason when the job's changes did not get committed
    /// although the job itself succeeded.
    fn finish(self: Box<Self>, lost: Option<&str>);
    /// Background work (the text indexer, re-deriving summaries): committed in groups of its
    /// own, when no client's write is waiting (see [`writer_loop`]).
    fn background(&self) -> bool;
}

struct TypedJob<T, F> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
    background: bool,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: FnOnce(&Connection, &mut Effects) -> StoreResult<T> + Send,
{
    fn run(&mut self, conn: &Connection, effects: &mut Effects) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(conn, effects);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, lost: Option<&str>) {
        let answer = match (self.result, lost) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), Some(reason)) | (None, Some(reason)) => Err(StoreError::Backend(reason.to_owned())),
            (Some(Ok(v)), None) => Ok(v),
            (None, None) => Err(StoreError::Backend("write job failed unexpectedly".to_owned())),
        };
        // The caller may have gone away (connection closed); the change is committed anyway.
        let _ = self.reply.send(answer);
    }

    fn background(&self) -> bool {
        self.background
    }
}

/// Handle to the writer thread. Dropping it closes the channel and waits for the thread to
/// finish the jobs already queued.
pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    /// Successful COMMITs so far (each one fsync), their latency and sizes: shows that group
    /// commit groups, and what a write waits for.
    stats: Arc<Stats>,
}

/// The writer's figures, recorded by its thread after each committed group (atomics only).
#[derive(Debug)]
struct Stats {
    commits: AtomicU64,
    /// From BEGIN to the end of COMMIT (the fsync), counted before the group is answered.
    commit_seconds: Histogram,
    /// Jobs in the group (failed ones included: they waited for the same commit).
    batch_size: Histogram,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            commits: AtomicU64::new(0),
            commit_seconds: Histogram::new(COMMIT_SECONDS_BOUNDS),
            batch_size: Histogram::new(BATCH_SIZE_BOUNDS),
        }
    }
}

impl Writer {
    /// Starts the writer thread on `conn` (already migrated).
    pub(crate) fn start(conn: Connection, notifier: Arc<Notifier>) -> StoreResult<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let stats = Arc::new(Stats::new());
        let recorder = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("postfach-sqlite-writer".to_owned())
            .spawn(move || writer_loop(conn, rx, &notifier, &recorder))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs: Some(tx), thread: Some(thread), stats })
    }

    /// How many transactions the writer has committed.
    pub(crate) fn commits(&self) -> u64 {
        self.stats.commits.load(Ordering::Relaxed)
    }

    /// Commits, commit latency and group sizes so far.
    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.commits(),
            commit_seconds: self.stats.commit_seconds.snapshot(),
            batch_size: self.stats.batch_size.snapshot(),
        }
    }

    /// A handle for threads outside the async runtime (the text indexer). While any handle
    /// lives the channel stays open, so drop the handles before the [`Writer`].
    pub(crate) fn handle(&self) -> StoreResult<WriterHandle> {
        Ok(WriterHandle { jobs: self.jobs.clone().ok_or_else(stopped)? })
    }

    /// Runs `work` in the writer's transaction and returns its result once it is durable.
    pub(crate) async fn run<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Effects) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> =
            Box::new(TypedJob { work: Some(work), result: None, reply, background: false });
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the loop after the queued jobs; joining makes "drop the
        // store" mean "everything acknowledged is written and the connection is closed".
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Submits background jobs from a plain thread, blocking it until the job is durable. Its
/// jobs yield to the clients' writes ([`writer_loop`]).
pub(crate) struct WriterHandle {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl WriterHandle {
    /// As [`Writer::run`] for background work, from a thread that is not inside the async
    /// runtime (blocks it).
    pub(crate) fn run_blocking<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Effects) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> =
            Box::new(TypedJob { work: Some(work), result: None, reply, background: true });
        self.jobs.blocking_send(job).map_err(|_| stopped())?;
        answer.blocking_recv().map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Backend("the database writer thread has stopped".to_owned())
}

/// Client writes queued behind background work are what make a write's latency; background
/// work waits for a gap instead, but never longer than this many client groups in a row.
const MAX_BACKGROUND_SKIPS: u32 = 16;

/// The thread's loop: takes what is queued, commits the client writes of it as one group and
/// holds background jobs back while client writes keep coming. A background job (an indexer
/// batch is tens of milliseconds of FTS5 work) runs in a group of its own when nothing else
/// waits, or after [`MAX_BACKGROUND_SKIPS`] client groups passed it, so a busy server still
/// indexes. It never shares a commit with a client's write, which would wait for it.
fn writer_loop(conn: Connection, mut rx: mpsc::Receiver<Box<dyn Job>>, notifier: &Notifier, stats: &Stats) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut background: std::collections::VecDeque<Box<dyn Job>> = std::collections::VecDeque::new();
    let mut skipped = 0u32;
    loop {
        // Block for work only when nothing at all waits.
        if batch.is_empty() && background.is_empty() {
            match rx.blocking_recv() {
                Some(job) => sort(job, &mut batch, &mut background),
                None => break,
            }
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => sort(job, &mut batch, &mut background),
                Err(_) => break,
            }
        }
        let group: Vec<Box<dyn Job>> = if !batch.is_empty() && skipped < MAX_BACKGROUND_SKIPS {
            if !background.is_empty() {
                skipped += 1;
            }
            std::mem::take(&mut batch)
        } else if let Some(job) = background.pop_front() {
            skipped = 0;
            vec![job]
        } else {
            std::mem::take(&mut batch)
        };
        if group.is_empty() {
            continue;
        }
        run_batch(&conn, group, notifier, stats);
    }
    // The channel is closed: what is held back still gets written.
    for job in background {
        run_batch(&conn, vec![job], notifier, stats);
    }
}

/// Puts a job into the client group or the background queue.
fn sort(
    job: Box<dyn Job>,
    batch: &mut Vec<Box<dyn Job>>,
    background: &mut std::collections::VecDeque<Box<dyn Job>>,
) {
    if job.background() {
        background.push_back(job);
    } else {
        batch.push(job);
    }
}

/// How one job inside the group transaction ended.
enum Step {
    /// Succeeded; its savepoint is released into the transaction.
    Kept(Effects),
    /// Failed; rolled back to its savepoint, the rest of the group is unaffected.
    RolledBack,
    /// SQLite rolled back the whole transaction (I/O error, full disk, ...) or the savepoint
    /// bookkeeping failed: everything since BEGIN is gone.
    TransactionLost(String),
}

/// Runs one group: BEGIN IMMEDIATE, a savepoint per job, one COMMIT, the commit counted,
/// notifications, answers (a caller that sees its answer sees the counters include its commit).
fn run_batch(conn: &Connection, jobs: Vec<Box<dyn Job>>, notifier: &Notifier, stats: &Stats) {
    let (started, size) = (Instant::now(), jobs.len());
    let mut done: Vec<Box<dyn Job>> = Vec::new();
    let mut changed: Vec<(MailboxId, ModSeq)> = Vec::new();
    let mut acl: Vec<Option<MailboxId>> = Vec::new();
    let mut open = false;
    let mut begin_failed: Option<String> = None;

    for mut job in jobs {
        if let Some(reason) = &begin_failed {
            job.finish(Some(reason));
            continue;
        }
        if !open {
            if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                tracing::error!(error = %e, "cannot begin a write transaction");
                let reason = format!("cannot begin a write transaction: {e}");
                job.finish(Some(&reason));
                begin_failed = Some(reason);
                continue;
            }
            open = true;
        }
        match run_one(conn, job.as_mut()) {
            Step::Kept(effects) => {
                changed.extend(effects.changed);
                acl.extend(effects.acl);
                done.push(job);
            }
            Step::RolledBack => done.push(job),
            Step::TransactionLost(reason) => {
                tracing::error!(%reason, "write transaction lost");
                for earlier in done.drain(..) {
                    earlier.finish(Some(&reason));
                }
                job.finish(Some(&reason));
                changed.clear();
                acl.clear();
                open = false;
            }
        }
    }

    if !open {
        return;
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        tracing::error!(error = %e, "commit failed");
        let _ = conn.execute_batch("ROLLBACK");
        let reason = format!("commit failed: {e}");
        for job in done {
            job.finish(Some(&reason));
        }
        return;
    }
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.commit_seconds.record(started.elapsed().as_secs_f64());
    stats.batch_size.record(size as f64);

    // Notify before answering: when a caller sees Ok, every watcher has been told already.
    let mut latest: BTreeMap<MailboxId, ModSeq> = BTreeMap::new();
    for (mailbox, modseq) in changed {
        let entry = latest.entry(mailbox).or_insert(modseq);
        if modseq > *entry {
            *entry = modseq;
        }
    }
    for (mailbox, modseq) in latest {
        notifier.changed(mailbox, modseq);
    }
    // One ACL signal per mailbox; a membership change (`None`) covers every mailbox at once.
    if acl.contains(&None) {
        notifier.acl_changed(None);
    } else {
        acl.sort_unstable();
        acl.dedup();
        for mailbox in acl {
            notifier.acl_changed(mailbox);
        }
    }
    for job in done {
        job.finish(None);
    }
}

fn run_one(conn: &Connection, job: &mut dyn Job) -> Step {
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        let _ = conn.execute_batch("ROLLBACK");
        return Step::TransactionLost(format!("cannot open a savepoint: {e}"));
    }
    let mut effects = Effects::default();
    // A panic in a job must not kill the only writer; the job answers with an error instead.
    let ok = catch_unwind(AssertUnwindSafe(|| job.run(conn, &mut effects))).unwrap_or(false);
    if conn.is_autocommit() {
        return Step::TransactionLost("the write transaction was rolled back by the database".to_owned());
    }
    let end = if ok { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
    match conn.execute_batch(end) {
        Ok(()) if ok => Step::Kept(effects),
        Ok(()) => Step::RolledBack,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Step::TransactionLost(format!("cannot close a savepoint: {e}"))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job<T, F>(work: F) -> (Box<dyn Job>, oneshot::Receiver<StoreResult<T>>)
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Effects) -> StoreResult<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        (Box::new(TypedJob { work: Some(work), result: None, reply, background: false }), rx)
    }

    /// Starts a job that keeps the writer busy until the returned sender is used; returns once
    /// the job is running.
    async fn hold(
        writer: &Arc<Writer>,
    ) -> (tokio::task::JoinHandle<StoreResult<()>>, std::sync::mpsc::Sender<()>) {
        let (started_tx, started_rx) = oneshot::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let w = Arc::clone(writer);
        let blocker = tokio::spawn(async move {
            w.run(move |_, _| {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
                Ok(())
            })
            .await
        });
        started_rx.await.unwrap();
        (blocker, release_tx)
    }

    fn insert(conn: &Connection, v: i64) -> StoreResult<()> {
        conn.execute("INSERT INTO t (v) VALUES (?1)", [v])
            .map(|_| ())
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    fn values(conn: &Connection) -> Vec<i64> {
        conn.prepare("SELECT v FROM t ORDER BY v")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn failing_job_rolls_back_alone() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let notifier = Notifier::new();
        let mut watch = notifier.watch(MailboxId(1));

        let (a, ra) = job(|c, fx| {
            fx.changed(MailboxId(1), ModSeq(3));
            insert(c, 1)
        });
        let (b, rb) = job(|c, fx| {
            insert(c, 2)?;
            fx.changed(MailboxId(1), ModSeq(99));
            Err::<(), _>(StoreError::NotFound)
        });
        let (p, rp) = job(|c, _| -> StoreResult<()> {
            insert(c, 4)?;
            panic!("a bug in a job")
        });
        let (d, rd) = job(|c, fx| {
            fx.changed(MailboxId(1), ModSeq(5));
            insert(c, 3)
        });
        let stats = Stats::new();
        run_batch(&conn, vec![a, b, p, d], &notifier, &stats);
        assert_eq!(stats.commits.load(Ordering::Relaxed), 1);

        assert_eq!(values(&conn), vec![1, 3]);
        assert!(ra.blocking_recv().unwrap().is_ok());
        assert!(matches!(rb.blocking_recv().unwrap(), Err(StoreError::NotFound)));
        assert!(matches!(rp.blocking_recv().unwrap(), Err(StoreError::Backend(_))));
        assert!(rd.blocking_recv().unwrap().is_ok());
        // The failed job's notification is dropped; the highest of the others wins.
        assert!(watch.has_changed().unwrap());
        assert_eq!(*watch.borrow_and_update(), ModSeq(5));
        assert!(conn.is_autocommit());
    }

    #[test]
    fn lost_transaction_fails_every_job_of_the_group() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let notifier = Notifier::new();
        let (a, ra) = job(|c, _| insert(c, 1));
        // Ends the group's transaction behind the writer's back, as an I/O error would.
        let (b, rb) = job(|c, _| c.execute_batch("ROLLBACK").map_err(|e| StoreError::Backend(e.to_string())));
        let (d, rd) = job(|c, _| insert(c, 2));
        let stats = Stats::new();
        run_batch(&conn, vec![a, b, d], &notifier, &stats);
        assert_eq!(stats.commits.load(Ordering::Relaxed), 1, "the last job's own transaction");
        assert!(ra.blocking_recv().unwrap().is_err());
        assert!(rb.blocking_recv().unwrap().is_err());
        // The next job starts a fresh transaction and commits.
        assert!(rd.blocking_recv().unwrap().is_ok());
        assert_eq!(values(&conn), vec![2]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_jobs_share_one_commit() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let writer = Arc::new(Writer::start(conn, Arc::new(Notifier::new())).unwrap());

        // Hold the writer busy (as a slow fsync would) until 50 more jobs are queued.
        let (blocker, release_tx) = hold(&writer).await;
        let mut tasks = Vec::new();
        for i in 0..50 {
            let w = Arc::clone(&writer);
            tasks.push(tokio::spawn(async move { w.run(move |c, _| insert(c, i)).await }));
        }
        let jobs = writer.jobs.clone().unwrap();
        while QUEUE_DEPTH - jobs.capacity() < 50 {
            tokio::task::yield_now().await;
        }
        drop(jobs);
        // A reserved slot may not hold its job yet (tokio's try_recv then reports "empty" and
        // the group ends early); give the senders a moment to finish pushing (generously: on
        // a loaded machine 20 ms was sometimes not enough).
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        release_tx.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // One commit for the blocker, one for the 50 queued behind it (a scheduler hiccup may
        // split the group once more; 51 commits would mean no grouping at all).
        let commits = writer.commits();
        assert!((2..=3).contains(&commits), "{commits} commits");
        assert_eq!(writer.run(|c, _| Ok(values(c).len())).await.unwrap(), 50);
    }

    #[tokio::test]
    async fn background_work_waits_for_a_gap_and_never_shares_a_commit() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let writer = Arc::new(Writer::start(conn, Arc::new(Notifier::new())).unwrap());

        // Hold the writer while a background job and then client writes queue up.
        let (blocker, release_tx) = hold(&writer).await;
        let handle = writer.handle().unwrap();
        let background = std::thread::spawn(move || handle.run_blocking(|c, _| insert(c, 100)));
        let jobs = writer.jobs.clone().unwrap();
        while QUEUE_DEPTH - jobs.capacity() < 1 {
            tokio::task::yield_now().await;
        }
        let mut tasks = Vec::new();
        for i in 0..10 {
            let w = Arc::clone(&writer);
            tasks.push(tokio::spawn(async move { w.run(move |c, _| insert(c, i)).await }));
        }
        while QUEUE_DEPTH - jobs.capacity() < 11 {
            tokio::task::yield_now().await;
        }
        drop(jobs);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        release_tx.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        background.join().unwrap().unwrap();
        let order: Vec<i64> = writer
            .run(|c, _| {
                let mut stmt = c.prepare("SELECT v FROM t ORDER BY rowid").unwrap();
                Ok(stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<Vec<i64>, _>>().unwrap())
            })
            .await
            .unwrap();
        // The blocker, the ten client writes in one group, the background job alone and this
        // read (a group is counted before it is answered): the client writes were written
        // first although the background job was queued first.
        let commits = writer.commits();
        assert_eq!(commits, 4, "{commits} commits");
        assert_eq!(order.last(), Some(&100), "{order:?}");
        assert_eq!(order.len(), 11);
    }

    #[tokio::test]
    async fn dropped_writer_reports_an_error_not_a_panic() {
        let conn = Connection::open_in_memory().unwrap();
        let mut writer = Writer::start(conn, Arc::new(Notifier::new())).unwrap();
        assert_eq!(writer.run(|_, _| Ok(7)).await.unwrap(), 7);
        drop(writer.jobs.take());
        assert!(matches!(writer.run(|_, _| Ok(1)).await, Err(StoreError::Backend(_))));
    }
}
