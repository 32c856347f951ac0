//! Online backup under a steady writer: the copy made by `sqlite::backup::copy_database` is the
//! state of one instant while APPENDs keep committing, and what it costs the writer.
//!
//! `backup_methods_compared` (ignored: it builds a large database; run it with
//! `cargo test -p postfach-store --release --test backup -- --ignored --nocapture`) measures
//! the page copy with its held snapshot, the same copy without it (SQLite restarts it after
//! every commit of the writer) and `VACUUM INTO`, each beside a writer that appends one message
//! at a time, and prints time, size and the writer's slowest APPEND. The figures quoted in
//! `sqlite/backup.rs` come from it.

#![allow(clippy::unwrap_used)]

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postfach_store::sqlite::DATABASE_FILE;
use postfach_store::sqlite::backup::{CopyOptions, check_database, copy_database};
use postfach_store::{AccountStore, Flags, MailStore, MailboxId, MailboxName, NewMessage, SqliteStore};

fn message(n: u64, body_bytes: usize) -> NewMessage {
    let line = format!("line of message {n} with some words to index\r\n");
    let raw = format!(
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: message {n}\r\nMessage-ID: <{n}@backup>\r\n\r\n{}",
        line.repeat(body_bytes / line.len() + 1)
    );
    NewMessage { raw: raw.into_bytes().into(), flags: Flags::default(), internal_date: None }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A store in `dir` with one account and `n` messages of about `body_bytes` in INBOX.
fn filled(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    n: u64,
    body_bytes: usize,
) -> (Arc<SqliteStore>, MailboxId) {
    rt.block_on(async {
        let store = Arc::new(SqliteStore::open(dir).unwrap());
        let account = store.create_account("alice", "x").await.unwrap();
        let inbox =
            store.mailbox_by_name(account, &MailboxName::new("INBOX").unwrap()).await.unwrap().unwrap().id;
        let mut next = 0;
        while next < n {
            let batch: Vec<_> = (next..n.min(next + 200)).map(|i| message(i, body_bytes)).collect();
            next += u64::try_from(batch.len()).unwrap();
            store.append(inbox, batch).await.unwrap();
        }
        while store.text_backlog().await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (store, inbox)
    })
}

/// A task appending one message at a time until stopped; counts APPENDs and keeps the slowest
/// one per measuring window.
struct Writer {
    stop: Arc<AtomicBool>,
    appended: Arc<AtomicU64>,
    /// Latencies of the APPENDs since the last [`Writer::window`].
    latencies: Arc<Mutex<Vec<Duration>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(
        rt: &tokio::runtime::Runtime,
        store: &Arc<SqliteStore>,
        inbox: MailboxId,
        body_bytes: usize,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let appended = Arc::new(AtomicU64::new(0));
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let (store, stop, appended, latencies) =
                (Arc::clone(store), Arc::clone(&stop), Arc::clone(&appended), Arc::clone(&latencies));
            rt.spawn(async move {
                let mut n = 1_000_000_000;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    store.append(inbox, vec![message(n, body_bytes)]).await.unwrap();
                    latencies.lock().unwrap().push(started.elapsed());
                    appended.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        };
        Self { stop, appended, latencies, task }
    }

    /// The latencies recorded since the last call: (count, median, slowest).
    fn window(&self) -> (usize, Duration, Duration) {
        let mut all = std::mem::take(&mut *self.latencies.lock().unwrap());
        all.sort();
        let median = all.get(all.len() / 2).copied().unwrap_or_default();
        (all.len(), median, all.last().copied().unwrap_or_default())
    }

    fn stop(self, rt: &tokio::runtime::Runtime) {
        self.stop.store(true, Ordering::Relaxed);
        rt.block_on(self.task).unwrap();
    }
}

/// The copy of a database taken while a writer commits all along is one snapshot: the page
/// count never changes and progress never goes back (no restart), the writer commits during
/// the copy, and the copy passes the integrity check.
#[test]
fn the_copy_is_one_snapshot_while_the_writer_commits() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (store, inbox) = filled(&rt, dir.path(), 1500, 2000);
    let writer = Writer::start(&rt, &store, inbox, 2000);
    std::thread::sleep(Duration::from_millis(100));
    let copy = dir.path().join("copy.db");
    let mut during = (None, 0);
    let mut reports = Vec::new();
    // Small, slow steps: the copy spans many of the writer's commits.
    let options = CopyOptions { pages_per_step: 16, max_rate: std::num::NonZeroU64::new(12 << 20) };
    let facts = copy_database(&dir.path().join(DATABASE_FILE), &copy, options, &mut |p| {
        let now = writer.appended.load(Ordering::Relaxed);
        during = (during.0.or(Some(now)), now);
        reports.push(p);
        ControlFlow::Continue(())
    })
    .unwrap();
    writer.stop(&rt);
    let committed_during = during.1 - during.0.unwrap();
    assert!(committed_during > 0, "no APPEND committed during the copy");
    assert!(reports.len() > 10, "{} steps", reports.len());
    assert!(reports.iter().all(|p| p.pages_total == facts.pages), "the snapshot moved");
    assert!(reports.windows(2).all(|w| w[0].pages_done < w[1].pages_done), "the copy restarted");
    let check = check_database(&copy, None).unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    assert_eq!(check.facts, facts);
    let now = rt.block_on(store.status(inbox)).unwrap();
    assert!(u64::from(now.messages) > facts.messages, "the writer's messages are in the source");
    eprintln!(
        "copy of {} messages in {} steps; {committed_during} APPENDs committed meanwhile",
        facts.messages,
        reports.len()
    );
}

#[test]
#[ignore = "a measurement: builds a large database (run with --release --ignored --nocapture)"]
fn backup_methods_compared() {
    let messages: u64 =
        std::env::var("BACKUP_MEASURE_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let body_bytes = 4000;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let built = Instant::now();
    let (store, inbox) = filled(&rt, dir.path(), messages, body_bytes);
    let db = dir.path().join(DATABASE_FILE);
    eprintln!(
        "database: {messages} messages of ~{body_bytes} bytes, {:.1} MiB, built in {:.1?}",
        mib(std::fs::metadata(&db).unwrap().len()),
        built.elapsed()
    );
    let writer = Writer::start(&rt, &store, inbox, body_bytes);

    let idle = |label: &str| {
        writer.window();
        std::thread::sleep(Duration::from_secs(3));
        let (n, median, slowest) = writer.window();
        eprintln!("{label:<34} {n:>5} APPENDs, median {median:>9.2?}, slowest {slowest:>9.2?}");
    };
    idle("writer alone, 3 s:");

    // 1. The page copy inside one read transaction (what copy_database does).
    let copy = dir.path().join("held.db");
    writer.window();
    let started = Instant::now();
    let facts =
        copy_database(&db, &copy, CopyOptions::default(), &mut |_| ControlFlow::Continue(())).unwrap();
    let took = started.elapsed();
    let (n, median, slowest) = writer.window();
    eprintln!(
        "page copy, held snapshot:          {took:>9.2?}, {:.1} MiB, {} messages; writer: {n} APPENDs, median {median:.2?}, slowest {slowest:.2?}",
        mib(std::fs::metadata(&copy).unwrap().len()),
        facts.messages
    );
    let checked = Instant::now();
    assert!(check_database(&copy, None).unwrap().problems.is_empty());
    eprintln!("integrity_check of the copy:       {:>9.2?}", checked.elapsed());
    idle("writer alone again, 3 s:");

    // 2. The same page copy without the held transaction: every step is its own, and a commit
    // of the writer between two steps restarts the copy. Bounded, since it may never end.
    let copy = dir.path().join("unheld.db");
    writer.window();
    let started = Instant::now();
    let (restarts, finished) = unheld_copy(&db, &copy, Duration::from_secs(20));
    let (n, _, slowest) = writer.window();
    eprintln!(
        "page copy, a transaction per step: {:>9.2?}, {restarts} restarts, {}; writer: {n} APPENDs, slowest {slowest:.2?}",
        started.elapsed(),
        if finished { "finished" } else { "GAVE UP" }
    );
    idle("writer alone again, 3 s:");

    // 3. VACUUM INTO on a read connection.
    let copy = dir.path().join("vacuum.db");
    writer.window();
    let started = Instant::now();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()]).unwrap();
    std::fs::File::open(&copy).unwrap().sync_all().unwrap();
    let took = started.elapsed();
    let (n, median, slowest) = writer.window();
    eprintln!(
        "VACUUM INTO:                       {took:>9.2?}, {:.1} MiB; writer: {n} APPENDs, median {median:.2?}, slowest {slowest:.2?}",
        mib(std::fs::metadata(&copy).unwrap().len())
    );
    writer.stop(&rt);
}

/// The online backup API as its documentation shows it: steps without a transaction of their
/// own. Returns the restarts seen and whether it finished within `limit`.
fn unheld_copy(source: &Path, dest: &Path, limit: Duration) -> (u32, bool) {
    use rusqlite::backup::{Backup, StepResult};
    let src = rusqlite::Connection::open(source).unwrap();
    let mut dst = rusqlite::Connection::open(dest).unwrap();
    dst.pragma_update(None, "journal_mode", "OFF").unwrap();
    dst.pragma_update(None, "synchronous", "OFF").unwrap();
    let backup = Backup::new(&src, &mut dst).unwrap();
    let deadline = Instant::now() + limit;
    let mut restarts = 0;
    let mut left = i64::MAX;
    loop {
        let step = backup.step(1024).unwrap();
        let now = i64::from(backup.progress().remaining);
        if now > left {
            restarts += 1;
        }
        left = now;
        if step == StepResult::Done {
            return (restarts, true);
        }
        if Instant::now() > deadline {
            return (restarts, false);
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
