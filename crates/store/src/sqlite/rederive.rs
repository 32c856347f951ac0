//! Re-derivation: keeps what is stored beside each body in step with the current parser.
//!
//! Beside its raw bytes a body has results derived from them once, at APPEND: the summary
//! (`bodies.summary`: BODYSTRUCTURE, ENVELOPE, ...), the facts (`body_index`) and the full-text
//! row (in the account's index file, written by the indexer: this marks it pending). When parsing or text extraction changes, the rows of older bodies would
//! keep answering the old way; so the `derived` table (schema version 8) records which
//! [`DERIVED_VERSION`] made them, and which range of body ids still predates it.
//!
//! # When it runs
//! At open, [`plan`] reads that one row (one query when there is nothing to do). When the
//! recorded version is not this program's (older, or newer after a downgrade), every body
//! present is put in the range and the version recorded; bodies appended from then on are
//! derived by this program at APPEND. If there is a range, a [`Rederive`] thread walks it in
//! ascending id order: it reads a batch of bodies on a reader connection, parses them and
//! extracts their text off the writer, then hands the writer one job per chunk that replaces the
//! summary and the facts of each body still present, marks its text pending for the indexer
//! (which replaces the row in the account's file) and moves `derived.next_body` past the
//! chunk, in the same transaction.
//! A restart resumes at `next_body`; when the range is walked it is cleared.
//!
//! # Limits
//! A writer job holds at most [`JOB_ROWS`] bodies, [`JOB_RAW_BYTES`] of raw messages (changing
//! the summary rewrites the row with its raw bytes) and [`JOB_TEXT_BYTES`] of text (FTS5
//! indexes a few MiB per second), at least one body: APPEND and STORE wait behind it for a few
//! milliseconds at most. Until a body is reached its old rows answer, as they did before the
//! upgrade; each body changes in one transaction, so no read sees half of it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension};

use super::conn::{DbResult, open_reader};
use super::index::{IndexEntry, rewrite_entry};
use super::indexer::Poker;
use super::writer::WriterHandle;
use crate::types::AccountId;
use crate::{StoreError, StoreResult};

/// Version of what is derived from a body. Bump it when a change to `postfach_message` (the
/// summary: BODYSTRUCTURE, ENVELOPE, dates, header parsing) or to the text extraction and facts
/// of [`super::index`] changes what a stored body would give, so that installations derive
/// their stored bodies again at the next start. Not for changes that leave every stored row as
/// it was (speed, new code paths for input that was refused before): a pass reads every body.
///
/// History:
/// - 0: before versions were recorded (schema version 7 and older).
/// - 1: BODYSTRUCTURE line counts, nested multiparts that reuse a parent's boundary, repeated
///   To/Cc/Bcc/Reply-To combined in ENVELOPE, From/To/Cc/Bcc search text as parsed addresses.
pub(crate) const DERIVED_VERSION: i64 = 1;

/// Most bodies per writer job.
const JOB_ROWS: usize = 32;
/// Most raw bytes per writer job (at least one body is always taken).
const JOB_RAW_BYTES: i64 = 1024 * 1024;
/// Most bytes of extracted text per writer job (at least one body is always taken); the
/// indexer's bound, for the same reason.
const JOB_TEXT_BYTES: usize = 256 * 1024;

/// Body ids whose stored results predate [`DERIVED_VERSION`], both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) next: i64,
    pub(crate) last: i64,
}

/// Reads the `derived` row and, when it names another version, puts every stored body in the
/// range and records [`DERIVED_VERSION`]. Runs on the writer connection before the writer
/// thread starts; what is left to derive again, if anything.
pub(crate) fn plan(conn: &Connection) -> StoreResult<Option<Range>> {
    let (version, next, last): (i64, Option<i64>, Option<i64>) = conn
        .query_row("SELECT version, next_body, last_body FROM derived WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .db()?;
    if version == DERIVED_VERSION {
        return Ok(next.zip(last).map(|(next, last)| Range { next, last }));
    }
    // Also when a walk for another version was under way: the part it did is not ours.
    let range = conn
        .query_row(
            "UPDATE derived SET version = ?1, next_body = (SELECT min(id) FROM bodies),
                                last_body = (SELECT max(id) FROM bodies)
             WHERE id = 1 RETURNING next_body, last_body",
            [DERIVED_VERSION],
            |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
        )
        .db()?;
    tracing::info!(from = version, to = DERIVED_VERSION, "stored messages were parsed by another version");
    Ok(range.0.zip(range.1).map(|(next, last)| Range { next, last }))
}

/// What [`super::SqliteStore::rederive`] derives again (`postfach index rebuild`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rederivation {
    /// Every stored message. The range of all bodies is recorded first, as an upgrade records
    /// it, so a run that is interrupted is finished by the next start of the server (or of any
    /// admin command).
    All,
    /// The messages in one account's mailboxes. Nothing is recorded: an interrupted run is
    /// simply started again.
    Account(AccountId),
}

/// What a re-derivation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rederived {
    /// Stored bodies to derive again. One body backs every copy of a message, so this can be
    /// fewer than the messages.
    pub scheduled: u64,
    /// Bodies derived again: fewer than scheduled when some were expunged meanwhile.
    pub derived: u64,
}

impl super::SqliteStore {
    /// Derives the summary, the search text and the sort facts of stored messages again from
    /// their raw bytes, with this program's parser, now, in this process (also beside a
    /// running server: every body changes in one short write transaction, and sessions read
    /// the new rows at once). For a repaired or suspect index; an upgrade of the parser does
    /// this by itself at start ([`DERIVED_VERSION`]).
    pub async fn rederive(&self, what: Rederivation) -> StoreResult<Rederived> {
        let done = self.rederive_now(what).await;
        // The texts are pending again: the indexer writes them into the account files.
        self.indexer.poke();
        done
    }

    async fn rederive_now(&self, what: Rederivation) -> StoreResult<Rederived> {
        let writer = self.writer.handle()?;
        match what {
            Rederivation::All => {
                let range = self.writer.run(|conn, _| schedule_all(conn)).await?;
                let Some(range) = range else { return Ok(Rederived { scheduled: 0, derived: 0 }) };
                self.readers
                    .run(move |conn| {
                        let scheduled: i64 = conn
                            .query_row(
                                "SELECT count(*) FROM bodies WHERE id BETWEEN ?1 AND ?2",
                                [range.next, range.last],
                                |r| r.get(0),
                            )
                            .db()?;
                        let write = |job: Job| writer.run_blocking(move |conn, _| apply(conn, &job));
                        let walked = walk(conn, range, &AtomicBool::new(false), write)?;
                        Ok(Rederived {
                            scheduled: u64::try_from(scheduled).unwrap_or(0),
                            derived: walked.bodies,
                        })
                    })
                    .await
            }
            Rederivation::Account(account) => {
                self.readers
                    .run(move |conn| {
                        let ids: Vec<i64> = conn
                            .prepare(
                                "SELECT DISTINCT m.body_id FROM messages m
                                 JOIN mailboxes mb ON mb.id = m.mailbox_id
                                 WHERE mb.account_id = ?1 ORDER BY m.body_id",
                            )
                            .db()?
                            .query_map([account.0], |r| r.get(0))
                            .db()?
                            .collect::<rusqlite::Result<_>>()
                            .db()?;
                        let write = |job: Job| writer.run_blocking(move |conn, _| apply(conn, &job));
                        let derived = walk_listed(conn, &ids, write)?;
                        Ok(Rederived { scheduled: ids.len() as u64, derived })
                    })
                    .await
            }
        }
    }
}

/// Records every stored body as still to derive (a superset of any range recorded before);
/// the range, `None` without bodies. Refused while another version of the program owns the
/// record (it planned at its start and walks it).
fn schedule_all(conn: &Connection) -> StoreResult<Option<Range>> {
    let recorded = conn
        .query_row(
            "UPDATE derived SET next_body = (SELECT min(id) FROM bodies), last_body = (SELECT max(id) FROM bodies)
             WHERE id = 1 AND version = ?1 RETURNING next_body, last_body",
            [DERIVED_VERSION],
            |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
        )
        .optional()
        .db()?;
    match recorded {
        Some((next, last)) => Ok(next.zip(last).map(|(next, last)| Range { next, last })),
        None => Err(StoreError::NotAllowed(
            "another version of Postfach is deriving the stored messages again; let it finish".to_owned(),
        )),
    }
}

/// Handle to the re-derivation thread; dropping it stops the thread after its current job.
pub(crate) struct Rederive {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Rederive {
    /// Starts the thread when `range` holds something; otherwise does nothing.
    /// Each job marks its bodies' texts pending; `poker` tells the indexer.
    pub(crate) fn start(
        range: Option<Range>,
        path: &Path,
        writer: WriterHandle,
        poker: Poker,
    ) -> StoreResult<Rederive> {
        let stop = Arc::new(AtomicBool::new(false));
        let Some(range) = range else {
            return Ok(Rederive { stop, thread: None });
        };
        let path = path.to_owned();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("postfach-sqlite-rederive".to_owned())
            .spawn(move || {
                let started = Instant::now();
                let write = |job: Job| {
                    let done = writer.run_blocking(move |conn, _| apply(conn, &job));
                    poker.poke();
                    done
                };
                let outcome = open_reader(&path).and_then(|reader| walk(&reader, range, &flag, write));
                let elapsed_ms = started.elapsed().as_millis();
                match outcome {
                    Ok(Walked { bodies, done: true }) => {
                        tracing::info!(bodies, elapsed_ms, "stored messages derived again with this parser")
                    }
                    Ok(Walked { bodies, done: false }) => {
                        tracing::info!(
                            bodies,
                            elapsed_ms,
                            "re-derivation paused; it resumes at the next start"
                        )
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        elapsed_ms,
                        "re-derivation stopped; older messages answer as before until the next start"
                    ),
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the re-derivation: {e}")))?;
        Ok(Rederive { stop, thread: Some(thread) })
    }
}

impl Drop for Rederive {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What one walk did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Walked {
    /// Bodies derived again.
    pub(crate) bodies: u64,
    /// The range is cleared (false: stopped before the end).
    pub(crate) done: bool,
}

/// The results of one body, made by this program.
struct Derived {
    body_id: i64,
    /// The encoded summary; `None` when the stored one is the same (the row is left alone).
    summary: Option<Vec<u8>>,
    entry: IndexEntry,
}

/// A body as stored.
struct Stored {
    body_id: i64,
    summary: Vec<u8>,
    raw: Vec<u8>,
}

/// Where a writer job moves the recorded range of bodies still to derive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// On to this body id (never back: see [`apply`]).
    Advance(i64),
    /// The range is walked: clear it.
    Clear,
    /// Leave it: the job belongs to a rebuild of listed bodies ([`walk_listed`]).
    Keep,
}

/// One writer job: bodies to rewrite, then where the range goes on.
pub(crate) struct Job {
    bodies: Vec<Derived>,
    cursor: Cursor,
}

impl Job {
    fn new(cursor: Cursor) -> Job {
        Job { bodies: Vec::new(), cursor }
    }
}

/// Derives the bodies of `range` again, batch by batch, until it is walked or `stop` is set.
/// Reads on `reader`; `write` runs each [`Job`] in a writer transaction ([`apply`]).
pub(crate) fn walk(
    reader: &Connection,
    range: Range,
    stop: &AtomicBool,
    mut write: impl FnMut(Job) -> StoreResult<()>,
) -> StoreResult<Walked> {
    let mut walked = Walked { bodies: 0, done: false };
    let mut next = range.next;
    while !stop.load(Ordering::Relaxed) {
        let batch = read_batch(reader, next, range.last)?;
        let Some(last_id) = batch.last().map(|b| b.body_id) else {
            write(Job::new(Cursor::Clear))?;
            walked.done = true;
            break;
        };
        next = last_id.saturating_add(1);
        walked.bodies += derive_batch(batch, Cursor::Advance, Cursor::Advance(next), &mut write)?;
        tracing::debug!(bodies = walked.bodies, next, last = range.last, "re-derivation progress");
    }
    Ok(walked)
}

/// Derives the bodies of `ids` (ascending) again, batch by batch, without touching the
/// recorded range: `postfach index rebuild USER`, whose bodies are scattered among everybody
/// else's. Returns how many were derived (bodies gone meanwhile are skipped).
pub(crate) fn walk_listed(
    reader: &Connection,
    ids: &[i64],
    mut write: impl FnMut(Job) -> StoreResult<()>,
) -> StoreResult<u64> {
    let mut rest = ids;
    let mut bodies = 0;
    while !rest.is_empty() {
        let (batch, used) = read_listed(reader, rest)?;
        rest = rest.get(used..).unwrap_or_default();
        if !batch.is_empty() {
            bodies += derive_batch(batch, |_| Cursor::Keep, Cursor::Keep, &mut write)?;
        }
    }
    Ok(bodies)
}

/// Parses and extracts `batch` (CPU work: here, not in the writer) and hands the writer one
/// job per [`JOB_TEXT_BYTES`] of text. A job cut short moves the cursor to `split(first body
/// left)`, the last one to `last`. Returns how many bodies went to the writer.
fn derive_batch(
    batch: Vec<Stored>,
    split: impl Fn(i64) -> Cursor,
    last: Cursor,
    write: &mut impl FnMut(Job) -> StoreResult<()>,
) -> StoreResult<u64> {
    let mut written = 0;
    let mut job = Job::new(last);
    let mut text_bytes = 0usize;
    for Stored { body_id, summary: stored, raw } in batch {
        let summary = postfach_message::parse(&raw);
        let entry = IndexEntry::of(&raw, &summary);
        let encoded = super::summary::encode(&summary)?;
        let size = entry.text.bytes();
        if !job.bodies.is_empty() && text_bytes.saturating_add(size) > JOB_TEXT_BYTES {
            job.cursor = split(body_id);
            written += job.bodies.len() as u64;
            write(std::mem::replace(&mut job, Job::new(last)))?;
            text_bytes = 0;
        }
        text_bytes = text_bytes.saturating_add(size);
        let summary = (encoded != stored).then_some(encoded);
        job.bodies.push(Derived { body_id, summary, entry });
    }
    written += job.bodies.len() as u64;
    write(job)?;
    Ok(written)
}

/// The next bodies from `next` to `last`, at most [`JOB_ROWS`] and [`JOB_RAW_BYTES`] (at least
/// one body).
fn read_batch(conn: &Connection, next: i64, last: i64) -> StoreResult<Vec<Stored>> {
    let mut ids = Vec::new();
    {
        let mut stmt = conn
            .prepare_cached("SELECT id, size FROM bodies WHERE id BETWEEN ?1 AND ?2 ORDER BY id LIMIT ?3")
            .db()?;
        let mut rows = stmt.query(rusqlite::params![next, last, JOB_ROWS as i64]).db()?;
        let mut bytes = 0i64;
        while let Some(r) = rows.next().db()? {
            let (id, size): (i64, i64) = (r.get(0).db()?, r.get(1).db()?);
            if !ids.is_empty() && bytes.saturating_add(size) > JOB_RAW_BYTES {
                break;
            }
            bytes = bytes.saturating_add(size);
            ids.push(id);
        }
    }
    read_bodies(conn, &ids)
}

/// The first bodies of `ids` that exist, at most [`JOB_ROWS`] and [`JOB_RAW_BYTES`] (at least
/// one body), and how many ids that used up.
fn read_listed(conn: &Connection, ids: &[i64]) -> StoreResult<(Vec<Stored>, usize)> {
    let mut taken = Vec::new();
    let mut used = 0;
    let mut bytes = 0i64;
    let mut stmt = conn.prepare_cached("SELECT size FROM bodies WHERE id = ?1").db()?;
    for &id in ids {
        if taken.len() == JOB_ROWS {
            break;
        }
        let Some(size) = stmt.query_row([id], |r| r.get::<_, i64>(0)).optional().db()? else {
            used += 1;
            continue;
        };
        if !taken.is_empty() && bytes.saturating_add(size) > JOB_RAW_BYTES {
            break;
        }
        bytes = bytes.saturating_add(size);
        taken.push(id);
        used += 1;
    }
    Ok((read_bodies(conn, &taken)?, used))
}

/// The summary and raw bytes of the bodies `ids` that still exist.
fn read_bodies(conn: &Connection, ids: &[i64]) -> StoreResult<Vec<Stored>> {
    let mut out = Vec::with_capacity(ids.len());
    let mut stmt = conn.prepare_cached("SELECT summary, raw FROM bodies WHERE id = ?1").db()?;
    for &id in ids {
        // Expunged since the ids were read: nothing to do.
        if let Some((summary, raw)) = stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional().db()? {
            out.push(Stored { body_id: id, summary, raw });
        }
    }
    Ok(out)
}

/// Runs one [`Job`] inside the writer's transaction. SQL only.
pub(crate) fn apply(conn: &Connection, job: &Job) -> StoreResult<()> {
    let mut alive = conn
        .prepare_cached(
            "SELECT bi.email_id FROM bodies b LEFT JOIN body_index bi ON bi.body_id = b.id WHERE b.id = ?1",
        )
        .db()?;
    for d in &job.bodies {
        // A body expunged since it was read must not get an orphan entry; nor may a new body
        // that took its id (SQLite reuses the highest deleted id) get the old one's summary.
        let found: Option<Option<String>> = alive.query_row([d.body_id], |r| r.get(0)).optional().db()?;
        match found {
            None => continue,
            Some(Some(id)) if id != d.entry.email_id => continue,
            Some(_) => {}
        }
        if let Some(summary) = &d.summary {
            conn.prepare_cached("UPDATE bodies SET summary = ?2 WHERE id = ?1")
                .db()?
                .execute(rusqlite::params![d.body_id, summary])
                .db()?;
        }
        rewrite_entry(conn, d.body_id, &d.entry)?;
    }
    // Guarded by the version: a second process that planned for another version owns the range.
    // Another process walking the same range (the admin CLI beside the server) never moves the
    // cursor back, nor revives a cleared one (max() of NULL is NULL).
    let (sql, next) = match job.cursor {
        Cursor::Advance(next) => {
            ("UPDATE derived SET next_body = max(next_body, ?1) WHERE id = 1 AND version = ?2", next)
        }
        Cursor::Clear => {
            ("UPDATE derived SET next_body = NULL, last_body = NULL WHERE id = 1 AND version = ?2", 0)
        }
        Cursor::Keep => return Ok(()),
    };
    conn.prepare_cached(sql).db()?.execute(rusqlite::params![next, DERIVED_VERSION]).db()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use postfach_message::{BodyFacts, MessageText};

    use super::super::schema::{MIGRATIONS, migrate};
    use super::*;

    /// Repeated To fields and an address with comments: what the fixes of version 1 changed.
    const RAW: &[u8] = b"From: <user-from (comment)@ (comment) domain.org>\r\n\
To: amy@example.org\r\nTo: bob@example.org\r\nSubject: plans\r\n\r\nsome body words\r\n";
    /// The same message as the parser before version 1 saw its envelope: the first To only.
    const RAW_FIRST_TO: &[u8] = b"From: <user-from (comment)@ (comment) domain.org>\r\n\
To: amy@example.org\r\nSubject: plans\r\n\r\nsome body words\r\n";

    fn database() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        conn
    }

    /// Stores `raw` as body `id` with the summary and index entry an older parser made.
    fn store_old(conn: &Connection, id: i64, raw: &[u8]) {
        let old = postfach_message::parse(RAW_FIRST_TO);
        conn.execute(
            "INSERT INTO bodies (id, size, summary, raw) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id, raw.len() as i64, super::super::summary::encode(&old).unwrap(), raw],
        )
        .unwrap();
        let mut entry = IndexEntry::of(raw, &old);
        // Before version 1 the address fields were indexed as decoded raw text.
        for (name, value) in &mut entry.text.fields {
            if name == "from" {
                *value = "<user-from (comment)@ (comment) domain.org>".to_owned();
            }
        }
        entry.facts.sort_to = "old".to_owned();
        rewrite_entry(conn, id, &entry).unwrap();
    }

    /// Writes jobs on the same connection, in a transaction as the writer would.
    fn apply_here(conn: &Connection) -> impl FnMut(Job) -> StoreResult<()> + '_ {
        move |job| {
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            apply(conn, &job)?;
            conn.execute_batch("COMMIT").db()
        }
    }

    fn cursor(conn: &Connection) -> (i64, Option<i64>, Option<i64>) {
        conn.query_row("SELECT version, next_body, last_body FROM derived", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
    }

    /// Bodies whose text waits for the indexer (it writes the account files).
    fn pending(conn: &Connection) -> Vec<i64> {
        conn.prepare(
            "SELECT u.body_id FROM unindexed_bodies u JOIN body_index bi ON bi.body_id = u.body_id
             WHERE bi.text_state = 0 ORDER BY u.body_id",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// The body's rows are the ones this parser makes.
    fn assert_current(conn: &Connection, id: i64) {
        let (summary, sort_to, state): (Vec<u8>, String, i64) = conn
            .query_row(
                "SELECT b.summary, bi.sort_to, bi.text_state FROM bodies b JOIN body_index bi ON bi.body_id = b.id
                 WHERE b.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        let summary = super::super::summary::decode(&summary).unwrap();
        assert_eq!(summary, postfach_message::parse(RAW));
        assert_eq!(summary.envelope.to.len(), 2);
        assert_eq!(sort_to, BodyFacts::of(&summary).sort_to);
        // The text goes to the account's index file again.
        assert_eq!(state, super::super::index::TEXT_PENDING);
    }

    #[test]
    fn old_rows_answer_the_current_way_after_the_pass() {
        let conn = database();
        store_old(&conn, 1, RAW);
        store_old(&conn, 2, RAW);
        conn.execute_batch("UPDATE body_index SET text_state = 1; DELETE FROM unindexed_bodies").unwrap();

        let range = plan(&conn).unwrap();
        assert_eq!(range, Some(Range { next: 1, last: 2 }));
        assert_eq!(cursor(&conn), (DERIVED_VERSION, Some(1), Some(2)));
        let walked = walk(&conn, range.unwrap(), &AtomicBool::new(false), apply_here(&conn)).unwrap();
        assert_eq!(walked, Walked { bodies: 2, done: true });

        for id in [1, 2] {
            assert_current(&conn, id);
        }
        assert_eq!(pending(&conn), vec![1, 2]);
        let (mut unindexed, mut index_rows) = (0i64, 0i64);
        conn.query_row(
            "SELECT (SELECT count(*) FROM unindexed_bodies), (SELECT count(*) FROM body_index)",
            [],
            |r| {
                unindexed = r.get(0)?;
                index_rows = r.get(1)?;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!((unindexed, index_rows), (2, 2));
        assert_eq!(cursor(&conn), (DERIVED_VERSION, None, None));
        // Done: the next start finds nothing.
        assert_eq!(plan(&conn).unwrap(), None);
    }

    #[test]
    fn a_stopped_walk_resumes_where_it_stopped() {
        let conn = database();
        let total = JOB_ROWS as i64 * 2 + 5;
        for id in 1..=total {
            store_old(&conn, id, RAW);
        }
        let range = plan(&conn).unwrap().unwrap();
        // Stop after the first job, as dropping the store does.
        let stop = AtomicBool::new(false);
        let mut write = apply_here(&conn);
        let walked = walk(&conn, range, &stop, |job| {
            write(job)?;
            stop.store(true, Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
        assert_eq!(walked, Walked { bodies: JOB_ROWS as u64, done: false });
        let next = JOB_ROWS as i64 + 1;
        assert_eq!(cursor(&conn), (DERIVED_VERSION, Some(next), Some(total)));
        assert_current(&conn, next - 1);

        // A restart plans the rest only.
        let range = plan(&conn).unwrap();
        assert_eq!(range, Some(Range { next, last: total }));
        let walked = walk(&conn, range.unwrap(), &AtomicBool::new(false), apply_here(&conn)).unwrap();
        assert_eq!(walked, Walked { bodies: (total - next + 1) as u64, done: true });
        for id in 1..=total {
            assert_current(&conn, id);
        }
        assert_eq!(cursor(&conn), (DERIVED_VERSION, None, None));
    }

    #[test]
    fn a_listed_rebuild_derives_those_bodies_and_leaves_the_range_alone() {
        let conn = database();
        assert_eq!(plan(&conn).unwrap(), None);
        for id in 1..=3 {
            store_old(&conn, id, RAW);
        }
        // Body 7 does not exist: skipped.
        let derived = walk_listed(&conn, &[1, 3, 7], apply_here(&conn)).unwrap();
        assert_eq!(derived, 2);
        assert_current(&conn, 1);
        assert_current(&conn, 3);
        let sort_to: String =
            conn.query_row("SELECT sort_to FROM body_index WHERE body_id = 2", [], |r| r.get(0)).unwrap();
        assert_eq!(sort_to, "old", "a body not listed stays as it was");
        assert_eq!(cursor(&conn), (DERIVED_VERSION, None, None));
        // The recorded range of an interrupted pass is not moved either.
        conn.execute("UPDATE derived SET next_body = 2, last_body = 3", []).unwrap();
        walk_listed(&conn, &[1], apply_here(&conn)).unwrap();
        assert_eq!(cursor(&conn), (DERIVED_VERSION, Some(2), Some(3)));
    }

    #[test]
    fn an_empty_or_current_database_has_nothing_to_do() {
        let conn = database();
        assert_eq!(plan(&conn).unwrap(), None);
        assert_eq!(cursor(&conn), (DERIVED_VERSION, None, None));
        assert_eq!(plan(&conn).unwrap(), None);

        // Bodies appended by this program: recorded as current, left alone.
        store_old(&conn, 1, RAW);
        assert_eq!(plan(&conn).unwrap(), None);
        let sort_to: String =
            conn.query_row("SELECT sort_to FROM body_index WHERE body_id = 1", [], |r| r.get(0)).unwrap();
        assert_eq!(sort_to, "old");

        // Another version (a downgrade, then this program again) derives everything again.
        conn.execute("UPDATE derived SET version = ?1", [DERIVED_VERSION + 1]).unwrap();
        assert_eq!(plan(&conn).unwrap(), Some(Range { next: 1, last: 1 }));
    }

    #[test]
    fn jobs_are_bounded_by_rows_raw_bytes_and_text_bytes() {
        let conn = database();
        // 100 small bodies (the row bound decides), 12 of 200 KiB without text (the raw bound),
        // 8 of 100 KiB of text (the text bound).
        let mut id = 0i64;
        let mut add = |body: Vec<u8>| {
            id += 1;
            conn.execute(
                "INSERT INTO bodies (id, size, summary, raw) VALUES (?1, ?2, x'', ?3)",
                rusqlite::params![id, body.len() as i64, body],
            )
            .unwrap();
        };
        for n in 0..100 {
            add(format!("Subject: {n}\r\n\r\nsmall\r\n").into_bytes());
        }
        for _ in 0..12 {
            let mut raw = b"Content-Type: image/png\r\n\r\n".to_vec();
            raw.extend(std::iter::repeat_n(b'A', 200 * 1024));
            add(raw);
        }
        for _ in 0..8 {
            let mut raw = b"Subject: text\r\n\r\n".to_vec();
            raw.extend(std::iter::repeat_n(b'w', 100 * 1024));
            add(raw);
        }
        let range = plan(&conn).unwrap().unwrap();
        let mut jobs: Vec<(usize, i64, usize)> = Vec::new();
        let mut write = apply_here(&conn);
        let walked = walk(&conn, range, &AtomicBool::new(false), |job| {
            let raw: i64 = job
                .bodies
                .iter()
                .map(|d| {
                    conn.query_row("SELECT size FROM bodies WHERE id = ?1", [d.body_id], |r| {
                        r.get::<_, i64>(0)
                    })
                })
                .sum::<rusqlite::Result<i64>>()
                .unwrap();
            let text: usize = job.bodies.iter().map(|d| d.entry.text.bytes()).sum();
            jobs.push((job.bodies.len(), raw, text));
            write(job)
        })
        .unwrap();
        assert_eq!(walked, Walked { bodies: 120, done: true });
        let (rows, raw, text) =
            jobs.iter().fold((0, 0, 0), |(a, b, c), j| (a.max(j.0), b.max(j.1), c.max(j.2)));
        assert!(rows <= JOB_ROWS, "{jobs:?}");
        assert!(raw <= JOB_RAW_BYTES, "{jobs:?}");
        assert!(text <= JOB_TEXT_BYTES, "{jobs:?}");
        assert_eq!(jobs.iter().map(|j| j.0).sum::<usize>(), 120);
        // The last job only clears the range.
        assert_eq!(jobs.last().map(|j| j.0), Some(0));
        let indexed: i64 = conn.query_row("SELECT count(*) FROM body_index", [], |r| r.get(0)).unwrap();
        assert_eq!(indexed, 120);
    }

    #[test]
    fn bodies_stored_before_the_index_are_indexed_and_gone_ones_skipped() {
        // A database of schema version 1 (no index at all), upgraded.
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch("PRAGMA user_version = 1").unwrap();
        for id in 1..=3i64 {
            let raw = format!("Subject: old {id}\r\n\r\nancient text {id}\r\n");
            conn.execute(
                "INSERT INTO bodies (id, size, summary, raw) VALUES (?1, ?2, x'', ?3)",
                rusqlite::params![id, raw.len() as i64, raw.as_bytes()],
            )
            .unwrap();
        }
        migrate(&conn).unwrap();
        let range = plan(&conn).unwrap().unwrap();
        assert_eq!(range, Range { next: 1, last: 3 });
        // A body that goes away before its job is written gets no entry.
        let mut write = apply_here(&conn);
        walk(&conn, range, &AtomicBool::new(false), |job| {
            conn.execute("DELETE FROM bodies WHERE id = 2", []).unwrap();
            write(job)
        })
        .unwrap();
        let indexed: Vec<i64> = conn
            .prepare("SELECT body_id FROM body_index ORDER BY body_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexed, vec![1, 3]);
        assert_eq!(pending(&conn), vec![1, 3]);
        // The JSON-less empty summaries were replaced by real ones.
        let summary: Vec<u8> =
            conn.query_row("SELECT summary FROM bodies WHERE id = 3", [], |r| r.get(0)).unwrap();
        assert_eq!(summary[0], super::super::summary::POSTCARD);
        // The entry leaves with the body.
        conn.execute("DELETE FROM bodies WHERE id = 3", []).unwrap();
        assert_eq!(pending(&conn), vec![1]);
    }

    #[test]
    fn a_rederived_text_is_pending_and_listed_until_the_indexer_writes_it() {
        let conn = database();
        let mut raw = b"Subject: big\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'a', super::super::index::MAX_BODY_TEXT + 10));
        conn.execute(
            "INSERT INTO bodies (id, size, summary, raw) VALUES (1, ?1, x'', ?2)",
            rusqlite::params![raw.len() as i64, raw],
        )
        .unwrap();
        let range = plan(&conn).unwrap().unwrap();
        walk(&conn, range, &AtomicBool::new(false), apply_here(&conn)).unwrap();
        let (state, listed): (i64, i64) = conn
            .query_row(
                "SELECT text_state, (SELECT count(*) FROM unindexed_bodies WHERE body_id = 1) FROM body_index",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((state, listed), (super::super::index::TEXT_PENDING, 1));
        let (mut text, _) = MessageText::extract(&raw);
        super::super::index::limit(&mut text);
        assert!(text.truncated);
    }
}
