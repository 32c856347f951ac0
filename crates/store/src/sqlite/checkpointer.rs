//! The WAL checkpointer: copies committed pages from the write-ahead log into the database file
//! on a thread of its own, so that no write waits for it.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past its threshold:
//! the write that happens to cross it copies up to a thousand pages and fsyncs the database
//! file before it is answered. Under a mixed load that was ten checkpoints a second of 5–30 ms
//! each, every one of them stalling the writer thread and every write queued behind it (the
//! p99 of STORE and EXPUNGE was several times their median). Here a separate connection runs
//! `wal_checkpoint(PASSIVE)` every [`INTERVAL`]: a passive checkpoint takes no lock a writer or
//! reader needs, copies what no reader still uses, and leaves the rest for the next round. The
//! writer restarts the log from its beginning at its next commit once everything is copied, as
//! it always did. The writer keeps an automatic checkpoint at [`FALLBACK_PAGES`] as a safety
//! net, should this thread fall behind (a reader holding an old snapshot for long).
//!
//! Durability is unchanged: a commit is durable when the WAL is fsynced (the writer's
//! `synchronous=FULL`); a checkpoint fsyncs the database file before the log may be reused,
//! whichever connection runs it.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::conn::{DbResult, open_checkpointer};
use crate::{StoreError, StoreResult};

/// How often the log is copied into the database file.
const INTERVAL: Duration = Duration::from_millis(100);

/// The writer's own automatic checkpoint, in pages (32 MiB with 4 KiB pages): reached only
/// when this thread cannot keep up.
pub(crate) const FALLBACK_PAGES: i64 = 8192;

/// Handle to the checkpointer thread; dropping it stops the thread after its current round.
pub(crate) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to the database at `path`.
    pub(crate) fn start(path: &Path) -> StoreResult<Checkpointer> {
        let conn = open_checkpointer(path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("postfach-sqlite-checkpoint".to_owned())
            .spawn(move || {
                // A message or a dropped handle both mean stop.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    if let Err(e) = checkpoint(&conn) {
                        // The writer's fallback checkpoint still bounds the log.
                        tracing::warn!(error = %e, "background WAL checkpoint failed");
                    }
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the WAL checkpointer: {e}")))?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One passive checkpoint: `(log frames, frames copied)`.
fn checkpoint(conn: &Connection) -> StoreResult<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
        .db()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::conn::open_writer;

    #[test]
    fn the_log_is_copied_without_the_writer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let writer = open_writer(&path).expect("writer");
        writer.execute_batch("CREATE TABLE t (x BLOB)").expect("table");
        for _ in 0..20 {
            writer.execute("INSERT INTO t VALUES (zeroblob(8192))", []).expect("insert");
        }
        // Far below the writer's automatic checkpoint: the rows are only in the log so far.
        let main_before = std::fs::metadata(&path).expect("db").len();
        let ckpt = Checkpointer::start(&path).expect("start");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).expect("db").len() <= main_before {
            assert!(std::time::Instant::now() < deadline, "the database file never grew");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(ckpt);
        // Everything in the log is in the database now.
        let (log, copied) = checkpoint(&open_checkpointer(&path).expect("connection")).expect("checkpoint");
        assert!(log >= 20 && log == copied, "{log} frames, {copied} copied");
        let rows: i64 = writer.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).expect("count");
        assert_eq!(rows, 20);
    }
}
