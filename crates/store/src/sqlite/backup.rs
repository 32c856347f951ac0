//! Online backup of the database file: a copy consistent to one instant, taken while servers
//! and admin commands keep writing, and the checks a copy must pass before it is restored.
//!
//! Everything here takes paths, not a [`SqliteStore`](super::SqliteStore): the backup command
//! runs in its own process beside the server, and the server's scheduled backup runs on a
//! connection of its own, so neither queues behind the writer thread.
//!
//! # How the copy is made
//! [`copy_database`] uses SQLite's online backup API (`sqlite3_backup_step`), a page at a time
//! in steps of [`CopyOptions::pages_per_step`], **inside one read transaction** opened on the
//! source connection before the first step and ended after the last:
//! - *Consistent to one instant.* The copy is the snapshot the read transaction sees: every
//!   transaction committed before its first read, none after. Without the held transaction each
//!   step opens its own, and a commit by another connection between two steps makes SQLite start
//!   the copy over: under a steady writer it might never finish.
//! - *The writer is not blocked.* In WAL mode a reader takes no lock a writer waits for: writers
//!   append to the WAL while the snapshot reads older frames and the main file. What the held
//!   snapshot does cost is checkpointing: the WAL cannot be reset behind it, so it grows by
//!   whatever is written during the copy and shrinks again at the first checkpoint after it
//!   (`journal_size_limit`). The steps exist for progress reports, cancellation and the optional
//!   [`CopyOptions::max_rate`], which spreads the copy's disk reads out; they are not needed to
//!   let the writer in.
//!
//! `VACUUM INTO` was the other candidate: it also reads in one transaction and blocks no writer.
//! It was not taken because it is one statement (no progress to show, no cancellation, no
//! pacing), and because it rebuilds every table and index, FTS5 shadow tables included: CPU the
//! server needs on a small machine, and a larger file. Measured by `backup_methods_compared` in
//! `tests/backup.rs` (release build, 2 cores shared with other work, 20,000 messages, 235 MiB,
//! a writer appending one message at a time throughout; ranges over three runs):
//!
//! | method | time | copy | writer's slowest APPEND |
//! |---|---|---|---|
//! | page copy, one held snapshot (this module) | 0.48–1.10 s | 235 MiB | 28–119 ms |
//! | page copy, a transaction per step | never finished: 966–1,432 restarts in 20 s | — | — |
//! | `VACUUM INTO` | 0.67–0.82 s | 306–332 MiB | 103–151 ms |
//!
//! With no copy running the same writer's slowest APPEND was 37–285 ms per 3-second window:
//! the tail is mostly the shared machine. Speed does not decide between the two; in one run the
//! writer's median APPEND went from 0.3 ms to 6.9 ms during `VACUUM INTO` (CPU), and stayed at
//! 0.3–0.4 ms during the page copy.
//!
//! The copy is fsynced every [`FLUSH_EVERY`] bytes as it grows, not only once at its end: one
//! fsync of the whole file holds the disk, and the writer's WAL fsyncs queue behind it. Measured
//! with 10 backups of a 15,000-message installation beside a client appending one message at a
//! time (the real binary, debug build): the client's slowest APPEND per backup was 61–180 ms
//! with one fsync at the end, 22–57 ms with these, as in 2-second windows without a backup
//! (18–68 ms, and one 780 ms stall of the shared machine).
//!
//! # What a copy is
//! The copy is a rollback-journal (not WAL) database: one self-contained file, which opens
//! read-only without creating `-wal` or `-shm` files beside it (so checking a backup does not
//! change its directory). A store opened on it switches it back to WAL.
//!
//! # Limits
//! Only the database: files beside it in the data directory (the generated TLS key) are the
//! caller's to copy. The caller fsyncs the directory the copy is in.

use std::num::NonZeroU64;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::conn::open_reader;

/// How often [`check_database`] looks at its cancel flag.
pub const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Bytes of the copy written between two fsyncs of it.
const FLUSH_EVERY: u64 = 32 << 20;

/// Why a backup, a check or a restore preparation failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// There is no database file at the path.
    #[error("no database at {}", .0.display())]
    NoDatabase(PathBuf),
    /// The database is open in another process (a server, an admin command).
    #[error("the database {} is in use by another process; stop the server (and any postfach command) first", .0.display())]
    InUse(PathBuf),
    /// The progress callback asked to stop.
    #[error("cancelled")]
    Cancelled,
    /// SQLite failed.
    #[error("{context}: {message}")]
    Database {
        /// What was being done.
        context: String,
        /// SQLite's message.
        message: String,
    },
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// How [`copy_database`] paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyOptions {
    /// Pages copied per step (at most; fewer with a `max_rate`); between steps the progress
    /// callback runs.
    pub pages_per_step: u32,
    /// Read at most this many bytes per second, sleeping between steps; `None` (the default):
    /// as fast as the disk goes. The copy blocks no writer either way (see the module
    /// documentation); a limit only leaves more of the disk to the server for longer.
    pub max_rate: Option<NonZeroU64>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        // 1024 pages of 4 KiB: 4 MiB, a few milliseconds of reading per step.
        Self { pages_per_step: 1024, max_rate: None }
    }
}

/// Where a copy stands, after each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyProgress {
    /// Pages copied so far.
    pub pages_done: u64,
    /// Pages of the snapshot.
    pub pages_total: u64,
    /// Bytes per page.
    pub page_size: u64,
}

/// What a database (a copy, or the snapshot it was taken from) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseFacts {
    /// `PRAGMA user_version`: the schema version.
    pub schema_version: i64,
    /// Bytes per page.
    pub page_size: u64,
    /// Pages in the file.
    pub pages: u64,
    /// Accounts (users and teams).
    pub accounts: u64,
    /// Mailboxes of all accounts.
    pub mailboxes: u64,
    /// Messages in all mailboxes.
    pub messages: u64,
}

impl DatabaseFacts {
    /// The database's size in bytes.
    pub fn bytes(&self) -> u64 {
        self.pages * self.page_size
    }
}

/// The result of [`check_database`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseCheck {
    /// What the file holds.
    pub facts: DatabaseFacts,
    /// `PRAGMA integrity_check`'s complaints; empty when it said "ok".
    pub problems: Vec<String>,
}

/// Copies the database at `source` (a live `postfach.db`) to the new file `dest`, consistent to
/// the instant the copy started, without blocking writers (see the module documentation).
/// `progress` runs after every step; returning `Break` stops the copy with
/// [`BackupError::Cancelled`] (the partial `dest` is left for the caller to delete). Blocking:
/// run it on a thread of its own or in `spawn_blocking`. `dest` is fsynced before this returns.
pub fn copy_database(
    source: &Path,
    dest: &Path,
    options: CopyOptions,
    progress: &mut dyn FnMut(CopyProgress) -> ControlFlow<()>,
) -> Result<DatabaseFacts, BackupError> {
    if !source.is_file() {
        return Err(BackupError::NoDatabase(source.to_owned()));
    }
    if dest.exists() {
        return Err(io_error(dest, std::io::ErrorKind::AlreadyExists.into()));
    }
    let src = open_reader(source).map_err(|e| database("opening the database", e))?;
    // The snapshot starts at the first read of this transaction, and every step below copies
    // from it.
    src.execute_batch("BEGIN DEFERRED").map_err(|e| database("starting the snapshot", e))?;
    let facts = read_facts(&src).map_err(|e| database("reading the snapshot", e))?;
    let copied = copy_snapshot(&src, dest, options, facts, progress);
    // A read transaction has nothing to commit; ending it lets checkpoints reset the WAL again.
    let ended = src.execute_batch("COMMIT").map_err(|e| database("ending the snapshot", e));
    copied?;
    ended?;
    sync_file(dest)?;
    Ok(facts)
}

/// The page copy of [`copy_database`], inside the source's read transaction.
fn copy_snapshot(
    src: &Connection,
    dest: &Path,
    options: CopyOptions,
    facts: DatabaseFacts,
    progress: &mut dyn FnMut(CopyProgress) -> ControlFlow<()>,
) -> Result<(), BackupError> {
    let mut dst = Connection::open_with_flags(
        dest,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| database("creating the copy", e))?;
    // A failed copy is deleted, never repaired: it needs no journal, and one fsync at the end.
    dst.pragma_update(None, "journal_mode", "OFF").map_err(|e| database("setting up the copy", e))?;
    dst.pragma_update(None, "synchronous", "OFF").map_err(|e| database("setting up the copy", e))?;
    {
        let backup = Backup::new(src, &mut dst).map_err(|e| database("starting the copy", e))?;
        // With a rate, steps of about 1/20 s of it, so that pacing works on small files too.
        let pages = match options.max_rate {
            Some(rate) => {
                (rate.get() / 20 / facts.page_size.max(1)).clamp(1, u64::from(options.pages_per_step.max(1)))
            }
            None => u64::from(options.pages_per_step),
        };
        let step = i32::try_from(pages.max(1)).unwrap_or(i32::MAX);
        let started = Instant::now();
        // Flushed as it grows: one fsync of the whole copy at its end would hold the disk (and
        // the writer's WAL fsyncs behind it) for as long as it takes to write it all.
        let flush = std::fs::File::open(dest).map_err(|e| io_error(dest, e))?;
        let mut flushed = 0;
        loop {
            let result = backup.step(step).map_err(|e| database("copying", e))?;
            let now = backup.progress();
            let total = u64::try_from(now.pagecount).unwrap_or(0);
            let left = u64::try_from(now.remaining).unwrap_or(0);
            let report = CopyProgress {
                pages_done: total.saturating_sub(left),
                pages_total: total,
                page_size: facts.page_size,
            };
            if progress(report).is_break() {
                return Err(BackupError::Cancelled);
            }
            let done = report.pages_done * report.page_size;
            if done - flushed >= FLUSH_EVERY {
                flush.sync_data().map_err(|e| io_error(dest, e))?;
                flushed = done;
            }
            match result {
                StepResult::Done => break,
                StepResult::More => {}
                // Neither happens while the source holds its snapshot and nothing else has the
                // new file open; waiting a little is the documented answer if they do.
                StepResult::Busy | StepResult::Locked => std::thread::sleep(Duration::from_millis(10)),
                _ => {}
            }
            if let Some(rate) = options.max_rate {
                // Sleep until the bytes copied so far fit the rate since the start.
                let due = Duration::from_secs_f64(
                    (report.pages_done * report.page_size) as f64 / rate.get() as f64,
                );
                if let Some(early) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(early);
                }
            }
        }
    }
    // The copied first page still says WAL. Reading the schema makes the connection see that,
    // and leaving WAL rewrites the header: the file becomes self-contained.
    let mode: String = dst
        .query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .and_then(|()| dst.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0)))
        .map_err(|e| database("finishing the copy", e))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(BackupError::Database {
            context: "finishing the copy".to_owned(),
            message: format!("journal mode stayed {mode}"),
        });
    }
    dst.close().map_err(|(_, e)| database("closing the copy", e))
}

/// Checks a database file that nothing else uses (a backup's copy): opens it read-only, runs
/// `PRAGMA integrity_check` (every page, every index entry: it reads the whole file) and reads
/// what it holds. Creates no file beside it. Setting `cancel` stops the check within
/// [`CANCEL_POLL`] with [`BackupError::Cancelled`] (a server shutting down need not wait for a
/// check of a large file).
pub fn check_database(path: &Path, cancel: Option<&AtomicBool>) -> Result<DatabaseCheck, BackupError> {
    if !path.is_file() {
        return Err(BackupError::NoDatabase(path.to_owned()));
    }
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| database("opening the copy", e))?;
    let interrupt = conn.get_interrupt_handle();
    let finished = AtomicBool::new(false);
    let checked = std::thread::scope(|scope| {
        if let Some(cancel) = cancel {
            // The check is one statement: only another thread can interrupt it. Again and again
            // until it ends: an interrupt before the statement started is lost.
            scope.spawn(|| {
                while !finished.load(Ordering::Relaxed) {
                    if cancel.load(Ordering::Relaxed) {
                        interrupt.interrupt();
                    }
                    std::thread::sleep(CANCEL_POLL);
                }
            });
        }
        let checked = (|| {
            let mut statement = conn.prepare("PRAGMA integrity_check")?;
            let rows = statement.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
        })();
        finished.store(true, Ordering::Relaxed);
        checked
    });
    if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(BackupError::Cancelled);
    }
    let problems = checked.map_err(|e| database("checking the copy", e))?;
    let problems = if problems == ["ok"] { Vec::new() } else { problems };
    // A file too damaged for the check may also fail these reads; the check's answer says why.
    let facts = match read_facts(&conn) {
        Ok(facts) => facts,
        Err(e) if !problems.is_empty() => {
            tracing::debug!(error = %e, "cannot read a damaged copy");
            DatabaseFacts {
                schema_version: 0,
                page_size: 0,
                pages: 0,
                accounts: 0,
                mailboxes: 0,
                messages: 0,
            }
        }
        Err(e) => return Err(database("reading the copy", e)),
    };
    Ok(DatabaseCheck { facts, problems })
}

/// Makes sure no other process has the database at `path` open, and folds its WAL into the
/// main file so that the file alone holds everything committed: for a restore, before the file
/// is moved aside. Leaving WAL mode needs an exclusive lock, which SQLite cannot take while any
/// other connection (idle ones too) has the file open: then this fails with
/// [`BackupError::InUse`] without waiting. A store opened later switches back to WAL.
pub fn take_offline(path: &Path) -> Result<(), BackupError> {
    if !path.is_file() {
        return Err(BackupError::NoDatabase(path.to_owned()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| database("opening the database", e))?;
    conn.busy_timeout(Duration::ZERO).map_err(|e| database("opening the database", e))?;
    let mode = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get::<_, String>(0));
    match mode {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => {}
        // SQLite answers "wal" (no error) when it could not leave WAL mode.
        Ok(_) => return Err(BackupError::InUse(path.to_owned())),
        Err(e) if is_busy(&e) => return Err(BackupError::InUse(path.to_owned())),
        Err(e) => return Err(database("taking the database offline", e)),
    }
    conn.close().map_err(|(_, e)| database("closing the database", e))
}

/// Schema version, size and counts, read in the connection's current transaction.
fn read_facts(conn: &Connection) -> rusqlite::Result<DatabaseFacts> {
    let count = |table: &str| {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    let pragma = |name: &str| {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    Ok(DatabaseFacts {
        schema_version: conn.query_row("PRAGMA user_version", [], |r| r.get(0))?,
        page_size: pragma("page_size")?,
        pages: pragma("page_count")?,
        accounts: count("accounts")?,
        mailboxes: count("mailboxes")?,
        messages: count("messages")?,
    })
}

/// fsyncs a file's data and metadata.
fn sync_file(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| io_error(path, e))
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::DatabaseBusy || f.code == ErrorCode::DatabaseLocked)
}

fn database(context: &str, e: impl std::fmt::Display) -> BackupError {
    BackupError::Database { context: context.to_owned(), message: e.to_string() }
}

fn io_error(path: &Path, source: std::io::Error) -> BackupError {
    BackupError::Io { path: path.to_owned(), source }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::sqlite::{DATABASE_FILE, SqliteStore};
    use crate::{AccountStore, Flags, MailStore, MailboxName, NewMessage};

    fn message(n: usize) -> NewMessage {
        let raw = format!(
            "From: a@example.org\r\nSubject: message {n}\r\nMessage-ID: <{n}@backup>\r\n\r\n{}\r\n",
            "body text ".repeat(50)
        );
        NewMessage { raw: raw.into_bytes().into(), flags: Flags::default(), internal_date: None }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    }

    /// A store with one account and `n` messages in INBOX; returns the INBOX id too.
    fn filled(rt: &tokio::runtime::Runtime, dir: &Path, n: usize) -> (Arc<SqliteStore>, crate::MailboxId) {
        rt.block_on(async {
            let store = Arc::new(SqliteStore::open(dir).unwrap());
            let account = store.create_account("alice", "x").await.unwrap();
            let inbox = store
                .mailbox_by_name(account, &MailboxName::new("INBOX").unwrap())
                .await
                .unwrap()
                .unwrap()
                .id;
            for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
                store.append(inbox, chunk.iter().map(|&i| message(i)).collect()).await.unwrap();
            }
            (store, inbox)
        })
    }

    #[test]
    fn copy_is_a_checked_self_contained_snapshot() {
        let rt = rt();
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = filled(&rt, dir.path(), 300);
        let copy = dir.path().join("copy.db");
        let mut reports = Vec::new();
        let options = CopyOptions { pages_per_step: 16, max_rate: None };
        let facts = copy_database(&dir.path().join(DATABASE_FILE), &copy, options, &mut |p| {
            reports.push(p);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!((facts.accounts, facts.messages), (1, 300));
        assert!(reports.len() > 2, "{reports:?}");
        let last = reports.last().unwrap();
        assert_eq!((last.pages_done, last.pages_total), (facts.pages, facts.pages));
        assert!(reports.windows(2).all(|w| w[0].pages_done <= w[1].pages_done), "restarted: {reports:?}");
        // Not WAL (header bytes 18 and 19 are 1), and nothing beside it.
        let bytes = std::fs::read(&copy).unwrap();
        assert_eq!((bytes[18], bytes[19]), (1, 1));
        assert_eq!(u64::try_from(bytes.len()).unwrap(), facts.bytes());
        let check = check_database(&copy, None).unwrap();
        assert_eq!(check.problems, Vec::<String>::new());
        assert_eq!(check.facts, facts);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(!names.iter().any(|n| n.to_string_lossy().starts_with("copy.db-")), "{names:?}");
        // A copy refuses to overwrite.
        let again =
            copy_database(
                &dir.path().join(DATABASE_FILE),
                &copy,
                options,
                &mut |_| ControlFlow::Continue(()),
            );
        assert!(matches!(again, Err(BackupError::Io { .. })), "{again:?}");
        drop(store);
    }

    #[test]
    fn a_steady_writer_neither_restarts_nor_changes_the_copy() {
        let rt = rt();
        let dir = tempfile::tempdir().unwrap();
        let (store, inbox) = filled(&rt, dir.path(), 500);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
            rt.spawn(async move {
                let mut n = 500;
                while !stop.load(Ordering::Relaxed) {
                    store.append(inbox, vec![message(n)]).await.unwrap();
                    n += 1;
                }
                n - 500
            })
        };
        // Small, slow steps: the copy spans many of the writer's commits.
        let options = CopyOptions { pages_per_step: 8, max_rate: NonZeroU64::new(8 << 20) };
        let copy = dir.path().join("copy.db");
        let mut reports = Vec::new();
        let facts = copy_database(&dir.path().join(DATABASE_FILE), &copy, options, &mut |p| {
            reports.push(p);
            ControlFlow::Continue(())
        })
        .unwrap();
        stop.store(true, Ordering::Relaxed);
        let appended_meanwhile = rt.block_on(writer).unwrap();
        assert!(appended_meanwhile > 0, "the writer never got in");
        assert!(reports.windows(2).all(|w| w[0].pages_done <= w[1].pages_done), "restarted");
        assert!(reports.iter().all(|p| p.pages_total == facts.pages), "the snapshot moved");
        let check = check_database(&copy, None).unwrap();
        assert!(check.problems.is_empty(), "{:?}", check.problems);
        assert_eq!(check.facts.messages, facts.messages);
        assert!(facts.messages >= 500);
        // The copy opens as a store, and its counters agree with its rows.
        drop(store);
        let restored = tempfile::tempdir().unwrap();
        std::fs::copy(&copy, restored.path().join(DATABASE_FILE)).unwrap();
        rt.block_on(async {
            let store = SqliteStore::open(restored.path()).unwrap();
            let status = store.status(inbox).await.unwrap();
            assert_eq!(u64::from(status.messages), facts.messages);
            assert_eq!(u64::from(status.uid_next.get()), facts.messages + 1);
        });
    }

    #[test]
    fn cancelling_stops_the_copy() {
        let rt = rt();
        let dir = tempfile::tempdir().unwrap();
        let (_store, _) = filled(&rt, dir.path(), 100);
        let copy = dir.path().join("copy.db");
        let options = CopyOptions { pages_per_step: 4, max_rate: None };
        let mut steps = 0;
        let result = copy_database(&dir.path().join(DATABASE_FILE), &copy, options, &mut |_| {
            steps += 1;
            if steps == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
        assert!(matches!(result, Err(BackupError::Cancelled)), "{result:?}");
        assert_eq!(steps, 3);
    }

    #[test]
    fn a_flipped_byte_fails_the_check() {
        let rt = rt();
        let dir = tempfile::tempdir().unwrap();
        let (_store, _) = filled(&rt, dir.path(), 200);
        let copy = dir.path().join("copy.db");
        copy_database(&dir.path().join(DATABASE_FILE), &copy, CopyOptions::default(), &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        let mut bytes = std::fs::read(&copy).unwrap();
        // Page 2 is the first page of the first table created (`accounts`), and a b-tree
        // page's header starts with its type byte: a byte no b-tree page may hold breaks it.
        bytes[4096] = 0xff;
        std::fs::write(&copy, &bytes).unwrap();
        match check_database(&copy, None) {
            Ok(check) => assert!(!check.problems.is_empty(), "a damaged page passed the check"),
            Err(BackupError::Database { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_check_can_be_cancelled() {
        let rt = rt();
        let dir = tempfile::tempdir().unwrap();
        let (_store, _) = filled(&rt, dir.path(), 50);
        let copy = dir.path().join("copy.db");
        copy_database(&dir.path().join(DATABASE_FILE), &copy, CopyOptions::default(), &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        let cancel = AtomicBool::new(true);
        assert!(matches!(check_database(&copy, Some(&cancel)), Err(BackupError::Cancelled)));
        cancel.store(false, Ordering::Relaxed);
        assert!(check_database(&copy, Some(&cancel)).unwrap().problems.is_empty());
    }

    #[test]
    fn take_offline_refuses_while_a_store_is_open() {
        let rt = rt();
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = filled(&rt, dir.path(), 10);
        let db = dir.path().join(DATABASE_FILE);
        assert!(matches!(take_offline(&db), Err(BackupError::InUse(_))));
        drop(store);
        take_offline(&db).unwrap();
        assert!(!dir.path().join(format!("{DATABASE_FILE}-wal")).exists());
        let check = check_database(&db, None).unwrap();
        assert_eq!(check.facts.messages, 10);
        assert!(matches!(take_offline(&dir.path().join("none.db")), Err(BackupError::NoDatabase(_))));
    }
}
