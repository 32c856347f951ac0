//! Opening SQLite connections with Postfach's settings, and turning SQLite errors into
//! [`StoreError`]s.
//!
//! Every connection gets the same pragmas (busy timeout, foreign keys); only the writer
//! connection sets the journal mode and the durability level, because those are what make a
//! COMMIT durable. Nothing here knows about mail.

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::{StoreError, StoreResult};

/// How long a statement waits for a lock another process (the admin CLI, a second server)
/// holds before giving up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Upper bound on the WAL file size kept after a checkpoint, so one burst of large APPENDs does
/// not leave a huge file behind.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Opens the one connection that writes. WAL lets readers run beside it; `synchronous=FULL`
/// makes every COMMIT fsync the WAL, so a returned write survives power loss (in WAL mode
/// `NORMAL` may lose the last transactions).
pub(crate) fn open_writer(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .db()?;
    common_pragmas(&conn)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).db()?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!("could not switch the database to WAL mode (got {mode})")));
    }
    conn.pragma_update(None, "synchronous", "FULL").db()?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT).db()?;
    Ok(conn)
}

/// Opens a connection for reading. It is refused writes (`query_only`), so a bug cannot write
/// around the writer thread and its group commit.
pub(crate) fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .db()?;
    common_pragmas(&conn)?;
    conn.pragma_update(None, "query_only", true).db()?;
    // Pages read through a memory map instead of a read() each: a whole-mailbox FETCH reads a
    // page per message, and copying those out of the page cache was a fifth of its time. The
    // map is address space, not memory: what it shows in RSS is the kernel's page cache.
    conn.pragma_update(None, "mmap_size", READER_MMAP).db()?;
    Ok(conn)
}

/// Bytes of the database file a reader maps (the rest is read with `read()` as before).
const READER_MMAP: i64 = 8 << 30;

/// Opens the connection of the WAL checkpointer thread (`checkpointer`): it writes only what
/// a checkpoint writes, with the writer's durability (`synchronous=FULL` fsyncs the database
/// file before the log may be reused).
pub(crate) fn open_checkpointer(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .db()?;
    common_pragmas(&conn)?;
    conn.pragma_update(None, "synchronous", "FULL").db()?;
    // Its own checkpoints only, never one at its (absent) commits.
    conn.pragma_update(None, "wal_autocheckpoint", 0).db()?;
    Ok(conn)
}

/// Prepared statements kept per connection. The writer alone uses a few dozen distinct ones;
/// rusqlite's default of 16 would re-prepare them in turn.
const STATEMENT_CACHE: usize = 64;

fn common_pragmas(conn: &Connection) -> StoreResult<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Plans that do not depend on bound values. Without this SQLite marks a statement's
    // parameters as "may change the plan" (comparing them with the constants of our partial
    // indexes), and clearing the bindings, which rusqlite does every time a cached statement
    // goes back to its cache, then expires the statement: every cached statement was parsed
    // and planned again at each use, two re-prepares per IMAP command under load (a third of
    // the server's CPU in a profile). The queries that need a partial index say so with
    // literal constants and INDEXED BY, which this does not affect.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).db()?;
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    conn.pragma_update(None, "foreign_keys", true).db()?;
    Ok(())
}

/// Maps a SQLite error to the store's error type: [`StoreError::Backend`] with the text.
pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    tracing::error!(error = %e, "sqlite error");
    StoreError::Backend(e.to_string())
}

/// True when the error is a UNIQUE or PRIMARY KEY violation, i.e. "that name is taken".
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            f.code == ErrorCode::ConstraintViolation
                && (f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
        }
        _ => false,
    }
}

/// `.db()?` turns a rusqlite result into a store result (kept private to the backend so that no
/// rusqlite type shows in the crate's public API).
pub(crate) trait DbResult<T> {
    /// Maps the error with [`backend`].
    fn db(self) -> StoreResult<T>;
}

impl<T> DbResult<T> for rusqlite::Result<T> {
    fn db(self) -> StoreResult<T> {
        self.map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    #[test]
    fn cached_statements_are_not_prepared_again_at_each_use() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let writer = open_writer(&path).expect("writer");
        super::super::schema::migrate(&writer).expect("schema");
        let reader = open_reader(&path).expect("reader");
        // A read of the kind every FETCH makes, through the statement cache as the store does.
        let sql =
            "SELECT uid, flags FROM messages WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid";
        let mut reprepared = 0;
        for i in 0..50i64 {
            let mut stmt = reader.prepare_cached(sql).expect("prepare");
            let mut rows = stmt.query(rusqlite::params![1, i, i + 5]).expect("query");
            while rows.next().expect("row").is_some() {}
            drop(rows);
            reprepared = stmt.get_status(StatementStatus::RePrepare);
        }
        // Without ENABLE_QPSG this was 50: one parse and plan per use.
        assert!(reprepared <= 1, "re-prepared {reprepared} times in 50 uses");
    }
}
