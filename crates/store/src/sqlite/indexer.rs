//! The text indexer: writes the full-text entries of appended messages in batches, after their
//! APPEND has committed, into each account's own index file ([`super::text`]).
//!
//! An APPEND writes the message, its facts (`body_index`, text pending) and its
//! `unindexed_bodies` row in one transaction and hands the extracted text to this thread
//! ([`Indexer::submit`]). The thread gathers texts for up to [`GATHER`] and writes up to
//! [`BATCH`] of them (at most [`BATCH_BYTES`] of text) into their accounts' files, one
//! transaction per file without a sync; at most [`FLUSH_AFTER`] later it fsyncs each file
//! written meanwhile once and marks all those texts indexed in the database with one small
//! writer job. The FTS5 work
//! runs on this thread's own connections: no client write waits behind it (it was half of the
//! writer thread's time when it ran inside each APPEND, and a queue stall for every STORE
//! behind an indexer job after that).
//!
//! Until its text is marked a message is in `unindexed_bodies` with `text_state` pending, so
//! SEARCH reads and scans it: answers are the same, only slower for those few messages.
//! Nothing is lost in a crash: the pending state is durable with the message, and a file is
//! written before the database says so. What the queue cannot hold (more than
//! [`MAX_QUEUED_BYTES`] of text waiting) and what a previous run left pending is found in the
//! database when the queue is empty, and extracted again from the raw message. So are the texts
//! of deleted bodies (`dead_texts`), which are then removed from their files; and at start
//! every file the database trusts is checked once, so a missing or replaced file is made again.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postfach_message::{MessageText, email_id};
use rusqlite::Connection;

use super::conn::{DbResult, open_reader};
use super::index::{PendingText, TEXT_PENDING, limit};
use super::text::{
    ShardText, TextShards, mark_indexed, reclaim, register, remove_texts, text_alive, text_destination,
    trusted_token, write_texts,
};
use super::writer::WriterHandle;
use crate::{StoreError, StoreResult};

/// Most texts written per batch. Each batch costs an fsync per account file it touches and
/// one writer job (only marking texts indexed: short whatever the batch), so batches are as
/// large as memory allows.
const BATCH: usize = 256;
/// Most text bytes written per batch (at least one text is always taken).
const BATCH_BYTES: usize = 1024 * 1024;
/// Account files kept open for writing; beyond it the least recently used is closed.
const MAX_OPEN: usize = 256;
/// How long written texts may wait before they are made durable and marked indexed (SEARCH
/// scans them meanwhile, with the same answers).
const FLUSH_AFTER: Duration = Duration::from_millis(500);
/// Written texts that make a flush due at once.
const MAX_UNMARKED: usize = 4096;
/// Deleted bodies' texts handled per pass.
const DEAD_BATCH: usize = 1024;
/// How long the thread waits for more texts before writing a batch that is not full. Written
/// texts serve SEARCH only once a flush marks them, so waiting costs no search speed; it makes
/// each file's transaction larger (FTS5 writes a segment and does merge work per transaction:
/// at 5 ms, under a busy state-machine load, that was most of the thread's time), and a
/// message expunged meanwhile is not written at all.
const GATHER: Duration = Duration::from_millis(100);
/// Text bytes that may wait in memory; beyond it texts are dropped and later extracted again
/// from the database.
const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;
/// How often the thread looks in the database anyway, idle or busy (a text dropped by a failed
/// job or left pending by another process, deleted bodies' texts).
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

    /// Makes the thread look in the database for pending texts soon (bodies a transfer copied,
    /// or the re-derivation marked).
    pub(crate) fn poke(&self) {
        self.poker().poke();
    }

    /// A handle that only pokes, for other threads.
    pub(crate) fn poker(&self) -> Poker {
        Poker(Arc::clone(&self.shared))
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

/// See [`Indexer::poker`].
#[derive(Clone)]
pub(crate) struct Poker(Arc<Shared>);

impl Poker {
    /// See [`Indexer::poke`].
    pub(crate) fn poke(&self) {
        lock(&self.0.queue).rescan = true;
        self.0.wake.notify_one();
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
    /// Make the written texts durable and mark them indexed.
    Flush,
    Rescan,
    Stop,
}

/// The nice value of the indexer thread: background work that gives way to the threads that
/// answer clients when the CPU is short, and takes what is left otherwise. Without it the
/// thread took 44 % of the server's CPU under a busy state-machine load, where the same work
/// used to give way inside the writer. A backlog it leaves is written in larger batches later.
const NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`NICE`] (on Linux the nice value is a
/// thread's own; elsewhere it would be the process's, so it is left alone there).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE) {
        tracing::debug!(error = %e, "cannot lower the indexer thread's priority");
    }
}

fn run(shared: &Shared, path: &Path, writer: &WriterHandle) {
    lower_priority();
    let mut state = State {
        path: path.to_owned(),
        shards: TextShards::beside(path),
        reader: None,
        open: HashMap::new(),
        verified: false,
        next_pending: 0,
        last_rescan: Instant::now(),
        unmarked: Vec::new(),
        dirty: HashSet::new(),
        unmarked_since: None,
    };
    loop {
        match next(shared, state.flush_at()) {
            Work::Stop => {
                state.flush_logged(writer);
                return;
            }
            Work::Flush => state.flush_logged(writer),
            Work::Write(batch) => {
                if let Err(e) = state.write(batch, writer) {
                    tracing::warn!(error = %e, "writing full-text entries failed; retried from the database");
                    lock(&shared.queue).rescan = true;
                }
                // A server that is never idle still looks in the database now and then (texts
                // another process left pending, deleted bodies' texts).
                if state.last_rescan.elapsed() >= RESCAN {
                    state.rescan_now(shared, writer);
                }
            }
            Work::Rescan => state.rescan_now(shared, writer),
        }
    }
}

impl State {
    /// One look in the database; asks for another when it found a full batch.
    fn rescan_now(&mut self, shared: &Shared, writer: &WriterHandle) {
        self.last_rescan = Instant::now();
        lock(&shared.queue).rescan = false;
        match self.rescan(shared, writer) {
            // A full batch: there may be more.
            Ok(true) => lock(&shared.queue).rescan = true,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "indexing pending texts failed"),
        }
    }
}

/// An account file open for writing.
struct Shard {
    conn: Connection,
    token: i64,
    used: Instant,
}

/// What the thread keeps between batches.
struct State {
    path: std::path::PathBuf,
    shards: TextShards,
    /// A read connection to the database (tokens, accounts, pending bodies).
    reader: Option<Connection>,
    /// Account files open for writing, with their tokens and when they were last used.
    open: HashMap<i64, Shard>,
    /// Whether the files the database trusts were checked since the start.
    verified: bool,
    /// Where the next look for pending texts starts (body id): each look goes on from the last
    /// one instead of starting again at the lowest pending id, which a body that cannot be
    /// indexed now (its file is broken, say) would otherwise hold forever.
    next_pending: i64,
    /// When the database was last looked at.
    last_rescan: Instant,
    /// Texts written into their files but not yet durable there nor marked indexed:
    /// `(account, file token, body id, EMAILID, truncated)`.
    unmarked: Vec<(i64, i64, i64, String, bool)>,
    /// Accounts whose files have writes not yet fsynced.
    dirty: HashSet<i64>,
    /// When the oldest of `unmarked` was written.
    unmarked_since: Option<Instant>,
}

impl State {
    fn reader(&mut self) -> StoreResult<&Connection> {
        if self.reader.is_none() {
            let conn = open_reader(&self.path)?;
            // Not mapped: SQLite unmaps the whole map at every read transaction that follows a
            // commit, and this thread reads between every two of the writer's commits under
            // load (a profile of a fill: unmapping and faulting pages in again were a fifth of
            // the thread's time).
            conn.pragma_update(None, "mmap_size", 0).db()?;
            self.reader = Some(conn);
        }
        self.reader.as_ref().ok_or_else(|| StoreError::Backend("no reader".to_owned()))
    }

    /// Makes sure `account`'s file is open and is the one the database trusts: opens it, or
    /// makes a new one and registers it (which marks the account's bodies pending). False when
    /// the account is gone.
    fn ensure_shard(&mut self, writer: &WriterHandle, account: i64) -> StoreResult<bool> {
        let trusted = trusted_token(self.reader()?, account)?;
        if let Some(shard) = self.open.get_mut(&account) {
            if Some(shard.token) == trusted {
                shard.used = Instant::now();
                return Ok(true);
            }
            self.open.remove(&account);
        }
        if let Some(trusted) = trusted
            && let Some((conn, token)) = self.shards.open_for_write(account)?
            && token == trusted
        {
            self.keep_open(account, conn, token);
            return Ok(true);
        }
        // Made under the database's write lock, so that a second process (an admin command, a
        // delivery) cannot replace a file this one has just made, nor the other way round.
        let shards = self.shards.clone();
        let made = writer.run_blocking(move |c, _| {
            let now = trusted_token(c, account)?;
            if now != trusted
                && let Some(now) = now
                && let Some((conn, token)) = shards.open_for_write(account)?
                && token == now
            {
                // Another process made it meanwhile.
                return Ok(Some((conn, token)));
            }
            let (conn, token) = shards.create(account)?;
            if register(c, account, token)? {
                tracing::info!(account, "made a new full-text index file");
                Ok(Some((conn, token)))
            } else {
                drop(conn);
                shards.remove(account)?;
                Ok(None)
            }
        })?;
        match made {
            Some((conn, token)) => {
                self.keep_open(account, conn, token);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Keeps a file open, closing the least recently used one beyond [`MAX_OPEN`] (closing
    /// checkpoints it, which also makes its writes durable).
    fn keep_open(&mut self, account: i64, conn: Connection, token: i64) {
        if self.open.len() >= MAX_OPEN
            && let Some(oldest) = self.open.iter().min_by_key(|(_, s)| s.used).map(|(a, _)| *a)
        {
            self.open.remove(&oldest);
        }
        self.open.insert(account, Shard { conn, token, used: Instant::now() });
    }

    /// Writes a batch into the accounts' files. The texts are marked indexed by the next
    /// [`State::flush`].
    fn write(&mut self, batch: Vec<PendingText>, writer: &WriterHandle) -> StoreResult<()> {
        let mut by_account: BTreeMap<i64, Vec<PendingText>> = BTreeMap::new();
        for pending in batch {
            // Expunged meanwhile (a message often is, under a load that deletes what it
            // appends): nothing to index, and nothing to remove from the file later. One that
            // goes after this look is written, then removed with the other deleted texts.
            if let Some(account) =
                text_destination(self.reader()?, pending.account, pending.body_id, &pending.email_id)?
            {
                by_account.entry(account).or_default().push(pending);
            }
        }
        let mut failure = None;
        for (account, texts) in by_account {
            let result = self.ensure_shard(writer, account).and_then(|alive| {
                let Some(shard) = self.open.get(&account).filter(|_| alive) else { return Ok(()) };
                let rows: Vec<ShardText<'_>> = texts
                    .iter()
                    .map(|t| ShardText { body_id: t.body_id, email_id: &t.email_id, text: &t.text })
                    .collect();
                write_texts(&shard.conn, &rows)?;
                let token = shard.token;
                self.unmarked.extend(
                    texts.into_iter().map(|t| (account, token, t.body_id, t.email_id, t.text.truncated)),
                );
                self.dirty.insert(account);
                self.unmarked_since.get_or_insert_with(Instant::now);
                Ok(())
            });
            if let Err(e) = result {
                // A broken file: made again at the next attempt.
                self.open.remove(&account);
                failure = Some(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// When the written texts must be made durable and marked: [`FLUSH_AFTER`] after the
    /// oldest of them, at once when many wait.
    fn flush_at(&self) -> Option<Instant> {
        let since = self.unmarked_since?;
        Some(if self.unmarked.len() >= MAX_UNMARKED { since } else { since + FLUSH_AFTER })
    }

    /// fsyncs the files written since the last flush (their write-ahead logs: the files are
    /// written without a sync at each commit), then marks their texts indexed in one writer
    /// job. One fsync per file per flush instead of one per file per batch: under a load that
    /// touches many accounts' files each batch, syncing at every commit was what the indexer
    /// spent its time on.
    fn flush(&mut self, writer: &WriterHandle) -> StoreResult<()> {
        for account in std::mem::take(&mut self.dirty) {
            self.shards.sync(account)?;
        }
        self.unmarked_since = None;
        let marks = std::mem::take(&mut self.unmarked);
        if marks.is_empty() {
            return Ok(());
        }
        writer.run_blocking(move |conn, _| {
            for (account, token, body_id, email_id, truncated) in &marks {
                mark_indexed(conn, *account, *token, *body_id, email_id, *truncated)?;
            }
            Ok(())
        })
    }

    fn flush_logged(&mut self, writer: &WriterHandle) {
        if let Err(e) = self.flush(writer) {
            // Still pending in the database: written again by a later look.
            tracing::warn!(error = %e, "marking full-text entries failed; retried from the database");
        }
    }

    /// Checks the trusted files once, removes deleted bodies' texts, then extracts and writes
    /// up to [`BATCH`] pending texts found in the database; true when a pass was full (there
    /// may be more).
    fn rescan(&mut self, shared: &Shared, writer: &WriterHandle) -> StoreResult<bool> {
        if !self.verified {
            // A store that closes meanwhile (an admin command) checks at its next start.
            if !self.verify(shared, writer)? {
                return Ok(false);
            }
            self.verified = true;
        }
        // What was written but not marked is still pending in the database: mark it first, or
        // this look would write it again.
        self.flush(writer)?;
        let dead = self.forget_dead(writer)?;
        let from = self.next_pending;
        let ids = pending(self.reader()?, from, BATCH)?;
        let found = ids.len();
        // Past the end: the next look starts again from the lowest id.
        self.next_pending = if found == BATCH { ids.last().map_or(0, |id| id + 1) } else { 0 };
        let mut batch = Vec::with_capacity(found);
        let mut bytes = 0usize;
        for id in ids {
            let raw: Option<Vec<u8>> = {
                let conn = self.reader()?;
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
            batch.push(PendingText { body_id: id, email_id: email_id(&raw), account: None, text });
            if bytes >= BATCH_BYTES {
                self.write(std::mem::take(&mut batch), writer)?;
                bytes = 0;
            }
        }
        if !batch.is_empty() {
            self.write(batch, writer)?;
        }
        Ok(found == BATCH || dead == DEAD_BATCH)
    }

    /// Opens every file the database trusts; one that is missing or of another generation is
    /// made again (its account's texts are then written anew). False when the store began to
    /// close before it was done.
    fn verify(&mut self, shared: &Shared, writer: &WriterHandle) -> StoreResult<bool> {
        let listed: Vec<(i64, i64)> = {
            let conn = self.reader()?;
            let mut stmt = conn.prepare("SELECT account_id, token FROM text_shards").db()?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).db()?;
            rows.collect::<rusqlite::Result<_>>().db()?
        };
        for (i, (account, token)) in listed.into_iter().enumerate() {
            if i % 64 == 63 && lock(&shared.queue).stop {
                return Ok(false);
            }
            let good = matches!(self.shards.open_for_write(account), Ok(Some((_, t))) if t == token);
            if !good {
                tracing::warn!(
                    account,
                    "the full-text index file is missing or stale; indexing the account again"
                );
                self.open.remove(&account);
                self.ensure_shard(writer, account)?;
            }
        }
        Ok(true)
    }

    /// Removes up to [`DEAD_BATCH`] deleted bodies' texts from their files; how many it handled.
    fn forget_dead(&mut self, writer: &WriterHandle) -> StoreResult<usize> {
        let rows: Vec<(i64, i64, String)> = {
            let conn = self.reader()?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT account_id, body_id, email_id FROM dead_texts ORDER BY account_id, body_id LIMIT ?1",
                )
                .db()?;
            let rows = stmt
                .query_map([i64::try_from(DEAD_BATCH).unwrap_or(i64::MAX)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .db()?;
            rows.collect::<rusqlite::Result<_>>().db()?
        };
        if rows.is_empty() {
            return Ok(0);
        }
        let mut by_account: BTreeMap<i64, Vec<(i64, String)>> = BTreeMap::new();
        for (account, body, email) in &rows {
            by_account.entry(*account).or_default().push((*body, email.clone()));
        }
        for (account, dead) in by_account {
            let trusted = trusted_token(self.reader()?, account)?;
            let Some(trusted) = trusted else {
                // The account is gone (or never had a file): so is its file.
                self.open.remove(&account);
                self.shards.remove(account)?;
                continue;
            };
            let reader = self.reader()?;
            let mut gone = Vec::with_capacity(dead.len());
            for (body, email) in dead {
                if !text_alive(reader, account, body, &email)? {
                    gone.push((body, email));
                }
            }
            let shard = match self.open.remove(&account) {
                Some(shard) if shard.token == trusted => Some(shard.conn),
                _ => self.shards.open_for_write(account)?.filter(|(_, t)| *t == trusted).map(|(c, _)| c),
            };
            // A stale file is made again anyway.
            let Some(shard) = shard else { continue };
            remove_texts(&shard, &gone)?;
            reclaim(&shard)?;
            self.keep_open(account, shard, trusted);
        }
        let handled = rows.len();
        writer.run_blocking(move |conn, _| {
            let mut forget = conn
                .prepare_cached(
                    "DELETE FROM dead_texts WHERE account_id = ?1 AND body_id = ?2 AND email_id = ?3",
                )
                .db()?;
            for (account, body, email) in &rows {
                forget.execute(rusqlite::params![account, body, email]).db()?;
            }
            Ok(())
        })?;
        Ok(handled)
    }
}

/// Waits for work: a batch of queued texts (gathered for up to [`GATHER`]), a rescan, or stop.
fn next(shared: &Shared, flush_at: Option<Instant>) -> Work {
    let mut q = lock(&shared.queue);
    let idle_since = Instant::now();
    loop {
        if q.stop {
            return Work::Stop;
        }
        if flush_at.is_some_and(|at| Instant::now() >= at) {
            return Work::Flush;
        }
        if !q.texts.is_empty() {
            break;
        }
        if q.rescan {
            q.rescan = false;
            return Work::Rescan;
        }
        let wait = flush_at.map_or(RESCAN, |at| at.saturating_duration_since(Instant::now()).min(RESCAN));
        let (guard, timeout) =
            shared.wake.wait_timeout(q, wait).unwrap_or_else(std::sync::PoisonError::into_inner);
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

/// Bodies whose text is pending, from body id `from` on, oldest first.
fn pending(conn: &Connection, from: i64, limit: usize) -> StoreResult<Vec<i64>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT u.body_id FROM unindexed_bodies u JOIN body_index bi ON bi.body_id = u.body_id
             WHERE u.body_id >= ?3 AND bi.text_state = ?1 ORDER BY u.body_id LIMIT ?2",
        )
        .db()?;
    let rows = stmt
        .query_map(rusqlite::params![TEXT_PENDING, i64::try_from(limit).unwrap_or(i64::MAX), from], |r| {
            r.get(0)
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<i64>>>().db()
}
