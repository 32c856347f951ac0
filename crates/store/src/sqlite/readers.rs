//! A small pool of read connections used from tokio's blocking thread pool.
//!
//! In WAL mode readers never block the writer and see the last committed state. A semaphore
//! bounds how many reads run at once (and so how many connections exist); idle connections are
//! kept for reuse. A connection that was in use when its task panicked is simply dropped.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::conn::open_reader;
use crate::{StoreError, StoreResult};

/// Reads that may run at once. The machine this targets has few cores; more parallel SQLite
/// readers than cores only add memory.
const MAX_READERS: usize = 4;

/// The pool. Share it as `Arc<Readers>`.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// A pool over the database file at `path`; connections are opened on first use.
    pub(crate) fn new(path: PathBuf) -> Readers {
        Readers { path, idle: Mutex::new(Vec::new()), permits: Arc::new(Semaphore::new(MAX_READERS)) }
    }

    /// Runs `work` on a read connection in `spawn_blocking`.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("reader pool closed".to_owned()))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = match pool.take() {
                Some(conn) => conn,
                None => open_reader(&pool.path)?,
            };
            let result = work(&conn);
            pool.put_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }

    /// Runs `work` on a read connection right here, on the calling task's thread: for reads
    /// known to be small (a mailbox's status, the mailbox list, a page of messages). Handing
    /// such a read to the blocking pool and back costs two thread wake-ups, more than the read
    /// itself; under load those hops were a large part of a short command's latency. Anything
    /// whose size depends on the mailbox goes through [`Readers::run`].
    pub(crate) async fn run_inline<T, F>(self: &Arc<Self>, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T>,
    {
        let _permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("reader pool closed".to_owned()))?;
        let conn = match self.take() {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = work(&conn);
        self.put_back(conn);
        result
    }

    fn take(&self) -> Option<Connection> {
        // A poisoned lock means a thread panicked while pushing or popping; the Vec is intact.
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn put_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_READERS {
            idle.push(conn);
        }
    }
}

/// Runs `work` inside a read transaction so that several queries see one snapshot.
pub(crate) fn snapshot<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let tx = conn.unchecked_transaction().map_err(super::conn::backend)?;
    let out = work(&tx)?;
    // A read-only transaction has nothing to lose; ending it releases the WAL snapshot.
    tx.commit().map_err(super::conn::backend)?;
    Ok(out)
}
