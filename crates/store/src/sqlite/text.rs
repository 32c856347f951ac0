//! The full-text index, one SQLite file per account (`text/<account id>.db` beside the
//! database).
//!
//! # Why per account
//! One FTS5 index for the whole installation made every APPEND's index write cost grow with
//! everybody's mail (FTS5 merges its segments level by level: the more text the index holds,
//! the more levels each text is merged through) and put that work into the one writer that
//! every STORE and EXPUNGE waits for. An account's own file costs what the account holds, is
//! written by the indexer thread on its own connection (its commits never queue behind client
//! writes, nor client writes behind them), is read by a SEARCH of that account only, and goes
//! with the account.
//!
//! # What is where
//! - In the account's file: `body_text` (FTS5, contentless, trigram; `rowid` = body id),
//!   `texts(body_id, email_id)` (which body's text each row is: ids are reused after a delete)
//!   and `shard(token)`, the file's generation.
//! - In the database: `text_shards(account_id, token)`, the generation the database trusts;
//!   `body_index.text_state` and `unindexed_bodies`, which bodies the file holds completely
//!   (as before); `body_index.text_account`, whose file holds (or will hold) a body's text;
//!   `dead_texts`, texts of deleted bodies still to be removed from a file.
//!
//! # Consistency
//! The file is written and its log fsynced first ([`TextShards::sync`]); then a writer job
//! marks the bodies complete in the database. So the database never says "complete" for a text the file lacks; a crash between
//! the two leaves the bodies pending, and the indexer writes them again (a write replaces any
//! row of the same body). A file whose token is not the database's (deleted, from before a
//! restore, damaged) is not trusted: SEARCH scans, and the indexer makes a new file and marks
//! the account's bodies pending again ([`register`]).
//!
//! Several processes may index (the server, an admin command, a delivery): a file is made and
//! registered inside a writer job, under the database's write lock, so no process replaces a
//! file another has just made; and a text is marked indexed only while the file it went into
//! is still the trusted one ([`mark_indexed`] checks the token).
//!
//! A body belongs to one account: a COPY or MOVE to another account's mailbox copies the body
//! (`messages::transfer`), so one file is enough to answer for every message of a mailbox.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use postfach_message::MessageText;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::conn::DbResult;
use super::index::{TEXT_COMPLETE, TEXT_PENDING, TEXT_TRUNCATED};
use crate::types::AccountId;
use crate::{StoreError, StoreResult};

/// The directory of the account files, beside the database file.
pub const TEXT_DIR: &str = "text";

/// The schema of an account's file.
const SHARD_SCHEMA: &str = "
CREATE VIRTUAL TABLE body_text USING fts5(
    h_subject, h_from, h_to, h_cc, h_bcc, headers, body,
    content = '', contentless_delete = 1, tokenize = 'trigram case_sensitive 1'
);
INSERT INTO body_text (body_text, rank) VALUES ('automerge', 16);
CREATE TABLE texts (
    body_id  INTEGER PRIMARY KEY,
    email_id TEXT NOT NULL
);
CREATE TABLE shard (
    token INTEGER NOT NULL
);
";

/// Where the account files are.
#[derive(Debug, Clone)]
pub(crate) struct TextShards {
    dir: PathBuf,
}

impl TextShards {
    /// The files of the database at `database`.
    pub(crate) fn beside(database: &Path) -> TextShards {
        TextShards { dir: database.parent().unwrap_or_else(|| Path::new(".")).join(TEXT_DIR) }
    }

    fn path(&self, account: i64) -> PathBuf {
        self.dir.join(format!("{account}.db"))
    }

    /// Opens the account's file for a SEARCH when it is the generation the database trusts;
    /// None when there is none (every message of the account is then pending or scanned).
    pub(crate) fn open_for_search(
        &self,
        main: &Connection,
        account: AccountId,
    ) -> StoreResult<Option<Connection>> {
        let Some(token) = trusted_token(main, account.0)? else { return Ok(None) };
        let path = self.path(account.0);
        if !path.is_file() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .db()?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).db()?;
        conn.pragma_update(None, "query_only", true).db()?;
        Ok((file_token(&conn)? == Some(token)).then_some(conn))
    }

    /// Opens the account's file for writing, with its token; None when there is none.
    pub(crate) fn open_for_write(&self, account: i64) -> StoreResult<Option<(Connection, i64)>> {
        let path = self.path(account);
        if !path.is_file() {
            return Ok(None);
        }
        let conn = writer_connection(&path, OpenFlags::empty())?;
        match file_token(&conn) {
            Ok(Some(token)) => Ok(Some((conn, token))),
            // Half made or damaged: as good as none.
            Ok(None) | Err(_) => Ok(None),
        }
    }

    /// Makes a new, empty file for the account (replacing any), with a new token.
    pub(crate) fn create(&self, account: i64) -> StoreResult<(Connection, i64)> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, &e))?;
        self.remove(account)?;
        let path = self.path(account);
        let conn = writer_connection(&path, OpenFlags::SQLITE_OPEN_CREATE)?;
        let token = new_token();
        conn.execute_batch(&format!(
            "BEGIN; {SHARD_SCHEMA} INSERT INTO shard (token) VALUES ({token}); COMMIT;"
        ))
        .db()?;
        // The new file's directory entry must survive a power cut before the database is told.
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok((conn, token))
    }

    /// Bytes the files take on disk.
    pub(crate) fn disk_size(&self) -> u64 {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return 0 };
        entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()
    }

    /// fsyncs the account file's write-ahead log: what its commits wrote is durable after it.
    /// Nothing to do when there is no log (closing the last connection checkpoints and
    /// removes it, with a sync).
    pub(crate) fn sync(&self, account: i64) -> StoreResult<()> {
        let mut wal = self.path(account).into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        match std::fs::File::open(&wal).and_then(|f| f.sync_data()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&wal, &e)),
            _ => Ok(()),
        }
    }

    /// Removes the account's file (and its log), if any.
    pub(crate) fn remove(&self, account: i64) -> StoreResult<()> {
        let path = self.path(account);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let p = PathBuf::from(p);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&p, &e)),
            }
        }
        Ok(())
    }
}

/// Removes every account file of the database at `database`: after a restore the files
/// describe another state of the mail. The store makes them again from the messages.
pub fn forget_text_indexes(database: &Path) -> std::io::Result<()> {
    let dir = TextShards::beside(database).dir;
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn writer_connection(path: &Path, create: OpenFlags) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | create,
    )
    .db()?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).db()?;
    if create.contains(OpenFlags::SQLITE_OPEN_CREATE) {
        // Before anything is written to a new file, or it cannot be set: pages the deleted
        // texts free can be given back to the file system ([`reclaim`]).
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL").db()?;
    }
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).db()?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!("text index {}: not in WAL mode ({mode})", path.display())));
    }
    // Commits do not sync; the indexer fsyncs the log ([`TextShards::sync`]) before it tells
    // the database that texts are indexed, once for many commits. A checkpoint syncs.
    conn.pragma_update(None, "synchronous", "NORMAL").db()?;
    Ok(conn)
}

fn file_token(conn: &Connection) -> StoreResult<Option<i64>> {
    conn.query_row("SELECT token FROM shard", [], |r| r.get(0)).optional().db()
}

/// The generation of the account's file the database trusts.
pub(crate) fn trusted_token(main: &Connection, account: i64) -> StoreResult<Option<i64>> {
    main.prepare_cached("SELECT token FROM text_shards WHERE account_id = ?1")
        .db()?
        .query_row([account], |r| r.get(0))
        .optional()
        .db()
}

/// A token no earlier file of the account had: the clock in nanoseconds.
fn new_token() -> i64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    i64::try_from(nanos % (i64::MAX as u128)).unwrap_or(1)
}

fn io(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Backend(format!("text index {}: {e}", path.display()))
}

// --- writes into an account's file (the indexer thread) -------------------------------------------

/// One text to write into an account's file.
pub(crate) struct ShardText<'a> {
    pub(crate) body_id: i64,
    pub(crate) email_id: &'a str,
    pub(crate) text: &'a MessageText,
}

/// Writes `texts` into an account's file in one transaction, replacing any row of the same
/// body (an earlier body under the same id, or this one from a write the database never
/// heard of).
pub(crate) fn write_texts(shard: &Connection, texts: &[ShardText<'_>]) -> StoreResult<()> {
    shard.execute_batch("BEGIN IMMEDIATE").db()?;
    let result = (|| {
        let mut existing = shard.prepare_cached("SELECT 1 FROM texts WHERE body_id = ?1").db()?;
        for t in texts {
            if existing.query_row([t.body_id], |_| Ok(())).optional().db()?.is_some() {
                remove_row(shard, t.body_id)?;
            }
            insert_row(shard, t)?;
        }
        Ok(())
    })();
    finish(shard, result)
}

/// Removes the texts of deleted bodies, `(body id, EMAILID)`, from an account's file, leaving
/// a row that is another body's by now; how many it removed.
pub(crate) fn remove_texts(shard: &Connection, dead: &[(i64, String)]) -> StoreResult<usize> {
    shard.execute_batch("BEGIN IMMEDIATE").db()?;
    let result = (|| {
        let mut forget =
            shard.prepare_cached("DELETE FROM texts WHERE body_id = ?1 AND email_id = ?2").db()?;
        let mut n = 0;
        for (body, email) in dead {
            if forget.execute(rusqlite::params![body, email]).db()? > 0 {
                shard.prepare_cached("DELETE FROM body_text WHERE rowid = ?1").db()?.execute([body]).db()?;
                n += 1;
            }
        }
        Ok(n)
    })();
    finish(shard, result)
}

/// Gives the file's free pages back to the file system when they are a quarter of it or more
/// (after removals: an account that deletes much of its mail, a mailbox deleted), so a file
/// does not keep the size of the most mail the account ever held.
pub(crate) fn reclaim(shard: &Connection) -> StoreResult<()> {
    let free: i64 = shard.query_row("PRAGMA freelist_count", [], |r| r.get(0)).db()?;
    let pages: i64 = shard.query_row("PRAGMA page_count", [], |r| r.get(0)).db()?;
    if free >= RECLAIM_PAGES && free.saturating_mul(4) >= pages {
        // The pragma frees one page per row it returns: all of them must be stepped through.
        let mut stmt = shard.prepare("PRAGMA incremental_vacuum").db()?;
        let mut rows = stmt.query([]).db()?;
        while rows.next().db()?.is_some() {}
    }
    Ok(())
}

/// Free pages below which a file is not shrunk.
const RECLAIM_PAGES: i64 = 256;

fn finish<T>(shard: &Connection, result: StoreResult<T>) -> StoreResult<T> {
    match result {
        Ok(v) => {
            shard.execute_batch("COMMIT").db()?;
            Ok(v)
        }
        Err(e) => {
            let _ = shard.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn remove_row(shard: &Connection, body_id: i64) -> StoreResult<()> {
    shard.prepare_cached("DELETE FROM body_text WHERE rowid = ?1").db()?.execute([body_id]).db()?;
    shard.prepare_cached("DELETE FROM texts WHERE body_id = ?1").db()?.execute([body_id]).db()?;
    Ok(())
}

fn insert_row(shard: &Connection, t: &ShardText<'_>) -> StoreResult<()> {
    let text = t.text;
    shard
        .prepare_cached(
            "INSERT INTO body_text (rowid, h_subject, h_from, h_to, h_cc, h_bcc, headers, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .db()?
        .execute(rusqlite::params![
            t.body_id,
            text.field("subject"),
            text.field("from"),
            text.field("to"),
            text.field("cc"),
            text.field("bcc"),
            text.header_lines(),
            text.body,
        ])
        .db()?;
    shard
        .prepare_cached("INSERT INTO texts (body_id, email_id) VALUES (?1, ?2)")
        .db()?
        .execute(rusqlite::params![t.body_id, t.email_id])
        .db()?;
    Ok(())
}

// --- the database's side (writer jobs) ------------------------------------------------------------

/// Records `token` as the account's trusted file and marks every body of the account pending
/// again (the new file is empty). False, and nothing done, for an account that is gone. SQL
/// only.
pub(crate) fn register(conn: &Connection, account: i64, token: i64) -> StoreResult<bool> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM accounts WHERE id = ?1")
        .db()?
        .query_row([account], |_| Ok(()))
        .optional()
        .db()?
        .is_some();
    if !exists {
        return Ok(false);
    }
    conn.prepare_cached("INSERT OR REPLACE INTO text_shards (account_id, token) VALUES (?1, ?2)")
        .db()?
        .execute([account, token])
        .db()?;
    conn.prepare_cached(
        "UPDATE body_index SET text_state = ?2 WHERE text_state <> ?2 AND body_id IN
             (SELECT m.body_id FROM mailboxes mb JOIN messages m ON m.mailbox_id = mb.id WHERE mb.account_id = ?1)",
    )
    .db()?
    .execute([account, TEXT_PENDING])
    .db()?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO unindexed_bodies (body_id)
         SELECT m.body_id FROM mailboxes mb JOIN messages m ON m.mailbox_id = mb.id
         WHERE mb.account_id = ?1",
    )
    .db()?
    .execute([account])
    .db()?;
    Ok(true)
}

/// Marks a body's text written into `account`'s file of generation `token`, if that file is
/// still the trusted one and the body is still the one the text was taken from and still
/// pending; a complete text takes it off `unindexed_bodies`. SQL only.
pub(crate) fn mark_indexed(
    conn: &Connection,
    account: i64,
    token: i64,
    body_id: i64,
    email_id: &str,
    truncated: bool,
) -> StoreResult<()> {
    let done = if truncated { TEXT_TRUNCATED } else { TEXT_COMPLETE };
    let changed = conn
        .prepare_cached(
            "UPDATE body_index SET text_state = ?3, text_account = ?4
             WHERE body_id = ?1 AND email_id = ?2 AND text_state = ?5
               AND (text_account IS NULL OR text_account = ?4)
               AND EXISTS (SELECT 1 FROM text_shards WHERE account_id = ?4 AND token = ?6)",
        )
        .db()?
        .execute(rusqlite::params![body_id, email_id, done, account, TEXT_PENDING, token])
        .db()?;
    if changed > 0 && !truncated {
        conn.prepare_cached("DELETE FROM unindexed_bodies WHERE body_id = ?1")
            .db()?
            .execute([body_id])
            .db()?;
    }
    Ok(())
}

/// Which account's file a text goes into, or None when it is no longer wanted: its body is gone
/// or holds another content under that id (expunged before this batch), or its text is
/// recorded as another account's than `known` (the condition under which [`mark_indexed`]
/// would mark it). Without a known account, the body's recorded one, else the account of a
/// mailbox holding it (bodies from before schema 16). One primary-key read in the usual case.
pub(crate) fn text_destination(
    conn: &Connection,
    known: Option<i64>,
    body_id: i64,
    email_id: &str,
) -> StoreResult<Option<i64>> {
    let recorded: Option<Option<i64>> = conn
        .prepare_cached("SELECT text_account FROM body_index WHERE body_id = ?1 AND email_id = ?2")
        .db()?
        .query_row(rusqlite::params![body_id, email_id], |r| r.get(0))
        .optional()
        .db()?;
    match (recorded, known) {
        (None, _) => Ok(None),
        (Some(Some(recorded)), Some(known)) => Ok((recorded == known).then_some(known)),
        (Some(Some(recorded)), None) => Ok(Some(recorded)),
        (Some(None), Some(known)) => Ok(Some(known)),
        (Some(None), None) => conn
            .prepare_cached(
                "SELECT mb.account_id FROM messages m INDEXED BY messages_by_body
                 JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE m.body_id = ?1 LIMIT 1",
            )
            .db()?
            .query_row([body_id], |r| r.get(0))
            .optional()
            .db(),
    }
}

/// Whether a deleted body's text is in use again: a body under the same id, with the same
/// content, whose text belongs to the same account.
pub(crate) fn text_alive(conn: &Connection, account: i64, body_id: i64, email_id: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM body_index WHERE body_id = ?1 AND email_id = ?2 AND text_account = ?3")
        .db()?
        .query_row(rusqlite::params![body_id, email_id, account], |_| Ok(()))
        .optional()
        .db()?
        .is_some())
}

/// An index file in memory, for tests of its readers.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn in_memory() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(SHARD_SCHEMA).unwrap();
    conn
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn files_are_trusted_only_with_the_databases_token() {
        let dir = tempfile::tempdir().unwrap();
        let main = Connection::open(dir.path().join("postfach.db")).unwrap();
        super::super::schema::migrate(&main).unwrap();
        main.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created) VALUES ('a', 'a', '', 0)",
        )
        .unwrap();
        let shards = TextShards::beside(&dir.path().join("postfach.db"));
        assert!(shards.open_for_search(&main, AccountId(1)).unwrap().is_none());
        let (conn, token) = shards.create(1).unwrap();
        // Not registered yet.
        assert!(shards.open_for_search(&main, AccountId(1)).unwrap().is_none());
        assert!(register(&main, 1, token).unwrap());
        assert!(shards.open_for_search(&main, AccountId(1)).unwrap().is_some());
        let (text, _) = MessageText::extract(b"Subject: hello\r\n\r\nbody words\r\n");
        write_texts(&conn, &[ShardText { body_id: 7, email_id: "E", text: &text }]).unwrap();
        // Written again (a crash before the database heard of it): replaced, not doubled.
        write_texts(&conn, &[ShardText { body_id: 7, email_id: "E", text: &text }]).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM body_text WHERE body_text MATCH '\"words\"'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        // Another body under the same id is not removed by the old one's death.
        assert_eq!(remove_texts(&conn, &[(7, "other".to_owned())]).unwrap(), 0);
        assert_eq!(remove_texts(&conn, &[(7, "E".to_owned())]).unwrap(), 1);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM body_text WHERE body_text MATCH '\"words\"'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        // Many texts written and removed again: the file gives the pages back.
        let big = "x".repeat(2000);
        let texts: Vec<MessageText> = (0..400)
            .map(|i| MessageText::extract(format!("Subject: {i}\r\n\r\n{big} {i} {big}\r\n").as_bytes()).0)
            .collect();
        let rows: Vec<ShardText<'_>> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| ShardText { body_id: i as i64, email_id: "E", text: t })
            .collect();
        write_texts(&conn, &rows).unwrap();
        let pages = |c: &Connection| c.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0)).unwrap();
        let full = pages(&conn);
        let dead: Vec<(i64, String)> = (0..400).map(|i| (i, "E".to_owned())).collect();
        assert_eq!(remove_texts(&conn, &dead).unwrap(), 400);
        // FTS5 folds its deletions into the segments as it merges; optimize makes that happen now.
        conn.execute_batch("INSERT INTO body_text (body_text) VALUES ('optimize')").unwrap();
        reclaim(&conn).unwrap();
        assert!(pages(&conn) * 2 < full, "{} pages of {full}", pages(&conn));
        // A new file under the same account is another generation.
        drop(conn);
        let (_conn, newer) = shards.create(1).unwrap();
        assert_ne!(newer, token);
        assert!(shards.open_for_search(&main, AccountId(1)).unwrap().is_none());
        forget_text_indexes(&dir.path().join("postfach.db")).unwrap();
        assert!(shards.open_for_write(1).unwrap().is_none());
    }

    #[test]
    fn a_text_is_wanted_while_its_body_is_stored_and_not_another_accounts() {
        let main = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&main).unwrap();
        main.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created) VALUES ('a', 'a', '', 0), ('b', 'b', '', 0);
             INSERT INTO bodies (id, size, summary, raw) VALUES (1, 1, x'', x'00'), (2, 1, x'', x'00');
             INSERT INTO body_index (body_id, text_state, base_subject, is_reply, sort_from, sort_to, sort_cc,
                                     display_from, display_to, refs, email_id, text_account)
                 VALUES (1, 0, '', 0, '', '', '', '', '', '', 'E1', NULL),
                        (2, 0, '', 0, '', '', '', '', '', '', 'E2', 2);",
        )
        .unwrap();
        // No account recorded yet (a body from before version 16): any account's file may take it.
        assert_eq!(text_destination(&main, Some(1), 1, "E1").unwrap(), Some(1));
        assert_eq!(text_destination(&main, Some(2), 2, "E2").unwrap(), Some(2));
        assert_eq!(text_destination(&main, None, 2, "E2").unwrap(), Some(2), "the recorded account");
        assert_eq!(text_destination(&main, Some(1), 2, "E2").unwrap(), None, "another account's text");
        assert_eq!(text_destination(&main, Some(1), 1, "E2").unwrap(), None, "another content under the id");
        // Neither known nor recorded, and in no mailbox: nobody's.
        assert_eq!(text_destination(&main, None, 1, "E1").unwrap(), None);
        main.execute_batch("DELETE FROM body_index WHERE body_id = 1").unwrap();
        assert_eq!(text_destination(&main, Some(1), 1, "E1").unwrap(), None, "expunged before its batch");
    }
}
