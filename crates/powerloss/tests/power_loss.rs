//! Power loss under load: every acknowledged write survives, nothing is half-written.
//!
//! Four workers write to their own two mailboxes of one SQLite store (APPEND of one or two
//! messages, flag changes, EXPUNGE, MOVE), each keeping a model of what the store has
//! acknowledged. At a random write, truncation or sync the power goes (`postfach_powerloss`):
//! everything not synced is lost, or, every other round, each unsynced write is lost, kept or
//! torn. The store is dropped, the power comes back, and the reopened store must hold, for each
//! worker, exactly its acknowledged state or that state plus the one operation that was in
//! flight, whole (both mailboxes of a MOVE agree; both messages of a MULTIAPPEND or neither).
//! UIDVALIDITY stays, UIDNEXT and HIGHESTMODSEQ never go below what was acknowledged, bodies
//! are byte for byte, counters match the rows, and `PRAGMA integrity_check` says ok. The same
//! database goes through every round, so recovery is itself recovered from.
//!
//! `POSTFACH_POWERLOSS_ROUNDS` (default 150) and `POSTFACH_POWERLOSS_SEED` repeat or reproduce
//! a run; the seed is printed first.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postfach_powerloss::{Loss, PowerLoss};
use postfach_store::{
    AccountStore, FetchWant, FlagOp, Flags, MailStore, MailboxId, MailboxName, NewMessage, SqliteStore,
    StoreResult, SystemFlags, Uid, UidSet, UidValidity,
};

/// The flags the workers use; others (none are set) are ignored when comparing.
const MASK: u8 = SystemFlags::SEEN.0 | SystemFlags::FLAGGED.0 | SystemFlags::DELETED.0;
const WORKERS: usize = 4;
/// How long one store call may take before the test calls it a hang.
const CALL_LIMIT: Duration = Duration::from_secs(20);

/// A message as the model knows it: which body (regenerated from its key) and which flags.
type Msg = (u64, u8);
/// One mailbox's messages by UID.
type Contents = BTreeMap<u32, Msg>;

/// Deterministic message text for a key: a header naming it and a body of 100 B to 150 KiB, so
/// that big messages span many pages and WAL frames (and get torn).
fn body(key: u64) -> Vec<u8> {
    let mut x = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let len = match key % 4 {
        0 => 100 + (x % 400) as usize,
        1 | 2 => 2_000 + (x % 8_000) as usize,
        _ => 20_000 + (x % 130_000) as usize,
    };
    let mut out =
        format!("Subject: message {key}\r\nMessage-ID: <{key}@powerloss.test>\r\n\r\n").into_bytes();
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(format!("{:016x}", x).as_bytes());
        if out.len() % 78 < 16 {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A state a worker's two mailboxes may be found in: known messages by UID, plus messages whose
/// UIDs the store never told us (the operation in flight), which must sit above `floor`.
#[derive(Clone, Debug, Default)]
struct Expected {
    known: [Contents; 2],
    unnumbered: [Vec<Msg>; 2],
}

/// What one worker has had acknowledged, and what survives across rounds.
struct Worker {
    mailboxes: [MailboxId; 2],
    uid_validity: [UidValidity; 2],
    /// The acknowledged state.
    acked: [Contents; 2],
    /// Highest UID and MODSEQ ever acknowledged per mailbox: never to go back.
    max_uid: [u32; 2],
    max_modseq: [u64; 2],
    next_key: u64,
    /// Operations acknowledged, over all rounds (the report shows the test did work).
    acks: u64,
}

/// The outcome of the operation the power cut short: the state it would have produced.
struct InFlight(Expected);

impl Worker {
    fn expected_acked(&self) -> Expected {
        Expected { known: self.acked.clone(), unnumbered: [Vec::new(), Vec::new()] }
    }

    /// Runs random operations until one fails (the power went); returns what that operation
    /// would have left, had it been applied.
    async fn run(&mut self, store: Arc<SqliteStore>, rng: &mut Rng) -> InFlight {
        loop {
            let choice = rng.below(10);
            let m = rng.below(2) as usize;
            let mailbox = self.mailboxes[m];
            match choice {
                // APPEND of one or two messages (MULTIAPPEND: all or nothing).
                0..=3 => {
                    let n = 1 + rng.below(2);
                    let msgs: Vec<Msg> = (0..n)
                        .map(|_| {
                            self.next_key += 1;
                            (
                                self.next_key,
                                (rng.next() as u8) & (SystemFlags::SEEN.0 | SystemFlags::FLAGGED.0),
                            )
                        })
                        .collect();
                    let new = msgs
                        .iter()
                        .map(|&(key, flags)| NewMessage {
                            raw: bytes::Bytes::from(body(key)),
                            flags: Flags { system: SystemFlags(flags), keywords: Vec::new() },
                            internal_date: None,
                        })
                        .collect();
                    match call(store.append(mailbox, new)).await {
                        Ok(appended) => {
                            assert_eq!(appended.len(), msgs.len());
                            for (a, msg) in appended.iter().zip(&msgs) {
                                assert_eq!(a.uid_validity, self.uid_validity[m]);
                                self.acked[m].insert(a.uid.get(), *msg);
                                self.note(m, a.uid.get(), a.modseq.0);
                            }
                        }
                        Err(_) => {
                            let mut after = self.expected_acked();
                            after.unnumbered[m] = msgs;
                            return InFlight(after);
                        }
                    }
                }
                // Flags on a random subset.
                4..=6 => {
                    let uids: Vec<u32> =
                        self.acked[m].keys().copied().filter(|_| rng.below(3) == 0).collect();
                    let Some(set) = uid_set(&uids) else { continue };
                    let flag = [SystemFlags::SEEN, SystemFlags::FLAGGED, SystemFlags::DELETED]
                        [rng.below(3) as usize];
                    let op = if rng.below(3) == 0 { FlagOp::Remove } else { FlagOp::Add };
                    let mut after = self.acked.clone();
                    for uid in &uids {
                        let entry = after[m].get_mut(uid).unwrap();
                        entry.1 = if op == FlagOp::Add { entry.1 | flag.0 } else { entry.1 & !flag.0 };
                    }
                    let flags = Flags { system: flag, keywords: Vec::new() };
                    match call(store.store_flags(mailbox, &set, op, &flags, None)).await {
                        Ok(updated) => {
                            self.acked = after;
                            let modseq = updated.updated.iter().map(|u| u.2.0).max().unwrap_or(0);
                            self.note(m, 0, modseq);
                        }
                        Err(_) => return InFlight(Expected { known: after, unnumbered: Default::default() }),
                    }
                }
                // EXPUNGE.
                7 | 8 => {
                    let mut after = self.acked.clone();
                    after[m].retain(|_, msg| msg.1 & SystemFlags::DELETED.0 == 0);
                    match call(store.expunge(mailbox, None)).await {
                        Ok(gone) => {
                            self.acks += 1;
                            let expected: Vec<u32> = self.acked[m]
                                .iter()
                                .filter(|(_, msg)| msg.1 & SystemFlags::DELETED.0 != 0)
                                .map(|(uid, _)| *uid)
                                .collect();
                            assert_eq!(gone.iter().map(|u| u.get()).collect::<Vec<_>>(), expected);
                            self.acked = after;
                        }
                        Err(_) => return InFlight(Expected { known: after, unnumbered: Default::default() }),
                    }
                }
                // MOVE of a random subset to the other mailbox: both sides or neither.
                _ => {
                    let uids: Vec<u32> =
                        self.acked[m].keys().copied().filter(|_| rng.below(3) == 0).collect();
                    let Some(set) = uid_set(&uids) else { continue };
                    let to = 1 - m;
                    let mut after = self.expected_acked();
                    for uid in &uids {
                        let msg = after.known[m].remove(uid).unwrap();
                        after.unnumbered[to].push(msg);
                    }
                    match call(store.move_messages(mailbox, &set, self.mailboxes[to])).await {
                        Ok(copied) => {
                            assert_eq!(copied.mapping.len(), uids.len());
                            for (from, new) in copied.mapping {
                                let msg = self.acked[m].remove(&from.get()).unwrap();
                                self.acked[to].insert(new.get(), msg);
                                self.note(to, new.get(), 0);
                            }
                        }
                        Err(_) => return InFlight(after),
                    }
                }
            }
        }
    }

    fn note(&mut self, m: usize, uid: u32, modseq: u64) {
        self.acks += 1;
        self.max_uid[m] = self.max_uid[m].max(uid);
        self.max_modseq[m] = self.max_modseq[m].max(modseq);
    }

    /// Reads the worker's mailboxes back after the power came back and checks them against the
    /// acknowledged state and the in-flight alternative; adopts what was found.
    async fn recover(&mut self, store: &SqliteStore, in_flight: Option<&InFlight>, round: usize) {
        let mut found: [Contents; 2] = Default::default();
        for (m, contents) in found.iter_mut().enumerate() {
            let mailbox = self.mailboxes[m];
            let status = store.status(mailbox).await.unwrap();
            assert_eq!(status.uid_validity, self.uid_validity[m], "round {round}: UIDVALIDITY changed");
            assert!(
                status.uid_next.get() > self.max_uid[m],
                "round {round}: UIDNEXT {} is not above acknowledged UID {}",
                status.uid_next,
                self.max_uid[m]
            );
            assert!(
                status.highest_modseq.0 >= self.max_modseq[m],
                "round {round}: HIGHESTMODSEQ {} went below acknowledged {}",
                status.highest_modseq.0,
                self.max_modseq[m]
            );
            let all = UidSet::from_ranges([1..=u32::MAX]);
            let metas = store.fetch(mailbox, &all, FetchWant::default()).await.unwrap();
            assert_eq!(status.messages as usize, metas.len(), "round {round}: message count vs rows");
            let mut size = 0u64;
            let mut unseen = 0u32;
            for meta in &metas {
                let raw = store.body(mailbox, meta.uid).await.unwrap();
                let key =
                    key_of(&raw).unwrap_or_else(|| panic!("round {round}: UID {} is not ours", meta.uid));
                assert!(
                    raw == body(key),
                    "round {round}: body of UID {} (message {key}) is damaged",
                    meta.uid
                );
                assert_eq!(meta.size as usize, raw.len(), "round {round}: RFC822.SIZE of UID {}", meta.uid);
                size += raw.len() as u64;
                if !meta.flags.system.contains(SystemFlags::SEEN) {
                    unseen += 1;
                }
                contents.insert(meta.uid.get(), (key, meta.flags.system.0 & MASK));
            }
            assert_eq!(status.size, size, "round {round}: STATUS SIZE vs the bodies");
            assert_eq!(status.unseen, unseen, "round {round}: UNSEEN vs the flags");
        }
        let acked = self.expected_acked();
        let matched = matches(&found, &acked, &self.max_uid)
            || in_flight.is_some_and(|f| matches(&found, &f.0, &self.max_uid));
        assert!(
            matched,
            "round {round}: the store holds neither the acknowledged state nor it plus the \
             operation in flight\nfound: {found:?}\nacknowledged: {acked:?}\nin flight: {:?}",
            in_flight.map(|f| &f.0)
        );
        for (max, contents) in self.max_uid.iter_mut().zip(&found) {
            *max = contents.keys().copied().fold(*max, u32::max);
        }
        self.acked = found;
    }
}

/// Whether the found contents are `expected`: known UIDs exactly, unnumbered messages above
/// every UID acknowledged before (UIDs are never reused).
fn matches(found: &[Contents; 2], expected: &Expected, max_uid: &[u32; 2]) -> bool {
    (0..2).all(|m| {
        let mut rest: Vec<Msg> = Vec::new();
        for (uid, msg) in &found[m] {
            match expected.known[m].get(uid) {
                Some(want) if want == msg => {}
                Some(_) => return false,
                None if *uid > max_uid[m] => rest.push(*msg),
                None => return false,
            }
        }
        let mut want = expected.unnumbered[m].clone();
        rest.sort_unstable();
        want.sort_unstable();
        expected.known[m].keys().all(|uid| found[m].contains_key(uid)) && rest == want
    })
}

fn key_of(raw: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(raw.get(..40)?).ok()?;
    text.strip_prefix("Subject: message ")?.split("\r\n").next()?.parse().ok()
}

fn uid_set(uids: &[u32]) -> Option<UidSet> {
    (!uids.is_empty()).then(|| UidSet::from_uids(uids.iter().map(|&u| Uid::new(u).unwrap())))
}

/// A store call that must answer, with an error if need be, even after the power went.
async fn call<T>(f: impl std::future::Future<Output = StoreResult<T>>) -> StoreResult<T> {
    tokio::time::timeout(CALL_LIMIT, f).await.expect("a store call hung")
}

fn integrity_ok(dir: &Path) {
    let conn = rusqlite_connection(dir);
    let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(result, "ok", "integrity_check");
}

fn rusqlite_connection(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(postfach_store::sqlite::DATABASE_FILE)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_power_loss() {
    let power: PowerLoss = postfach_powerloss::install();
    let rounds: usize =
        std::env::var("POSTFACH_POWERLOSS_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let seed: u64 =
        std::env::var("POSTFACH_POWERLOSS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
    println!(
        "power-loss test: seed {seed} (POSTFACH_POWERLOSS_SEED={seed} reproduces the choices), {rounds} rounds"
    );
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();

    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let account = store.create_account(&format!("worker{w}"), "x").await.unwrap();
        let mut mailboxes = [MailboxId(0); 2];
        let mut uid_validity = [UidValidity(0); 2];
        for (m, name) in ["A", "B"].iter().enumerate() {
            mailboxes[m] =
                store.create_mailbox(account, &MailboxName::new(name).unwrap(), None).await.unwrap();
            uid_validity[m] = store.status(mailboxes[m]).await.unwrap().uid_validity;
        }
        workers.push(Worker {
            mailboxes,
            uid_validity,
            acked: Default::default(),
            max_uid: [0; 2],
            max_modseq: [0; 2],
            next_key: (w as u64) << 40,
            acks: 0,
        });
    }
    let mut store = Some(store);
    let started = Instant::now();
    let mut cut_points = Vec::new();
    for round in 0..rounds {
        let current = store.take().unwrap();
        let loss = if round % 2 == 0 { Loss::All } else { Loss::Some };
        // From the middle of the first commit (a third of the rounds) to a few dozen group
        // commits in.
        let after = 1 + rng.below(if round % 3 == 0 { 40 } else { 3_000 });
        cut_points.push(after);
        power.arm(after, loss, rng.next());
        let mut tasks = Vec::new();
        for (w, mut worker) in workers.drain(..).enumerate() {
            let store = Arc::clone(&current);
            let mut worker_rng = Rng(rng.next() | 1);
            tasks.push(tokio::spawn(async move {
                let in_flight = worker.run(store, &mut worker_rng).await;
                (w, worker, in_flight)
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert!(power.is_down(), "round {round}: the workers stopped before the power went");
        // Everything of before the cut must close before the power comes back.
        drop(current);
        let deadline = Instant::now() + CALL_LIMIT;
        while power.open_files() > 0 {
            assert!(
                Instant::now() < deadline,
                "round {round}: the store kept {} files open",
                power.open_files()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The shared-memory index does not survive a reboot in any useful state.
        let _ =
            std::fs::remove_file(dir.path().join(format!("{}-shm", postfach_store::sqlite::DATABASE_FILE)));
        power.restore();

        integrity_ok(dir.path());
        let reopened = Arc::new(SqliteStore::open(dir.path()).unwrap());
        results.sort_by_key(|r| r.0);
        for (_, mut worker, in_flight) in results {
            worker.recover(&reopened, Some(&in_flight), round).await;
            workers.push(worker);
        }
        store = Some(reopened);
    }
    // After the last recovery the store still takes writes, above every UID and MODSEQ seen.
    let store = store.take().unwrap();
    for worker in &workers {
        let m = 0;
        let appended = store
            .append(
                worker.mailboxes[m],
                vec![NewMessage {
                    raw: bytes::Bytes::from(body(1)),
                    flags: Flags::default(),
                    internal_date: None,
                }],
            )
            .await
            .unwrap();
        assert!(appended[0].uid.get() > worker.max_uid[m], "a UID was reused");
        assert!(appended[0].modseq.0 > worker.max_modseq[m], "MODSEQ went back");
    }
    let stats = power.stats();
    let messages: usize = workers.iter().map(|w| w.acked[0].len() + w.acked[1].len()).sum();
    let acks: u64 = workers.iter().map(|w| w.acks).sum();
    println!(
        "power-loss test: {rounds} rounds in {:.1} s, {} cuts, {} syncs; unsynced writes at the cuts: \
         {} lost, {} torn, {} kept; {acks} writes acknowledged, {messages} messages in the store at \
         the end",
        started.elapsed().as_secs_f64(),
        stats.cuts,
        stats.syncs,
        stats.writes_lost,
        stats.writes_torn,
        stats.writes_kept,
    );
    assert_eq!(stats.cuts as usize, rounds);
}
