//! `mixed`: N concurrent clients running realistic sessions for a fixed time.
//!
//! Each client loops over sessions: connect, LOGIN, then commands drawn with fixed weights from
//! LIST, STATUS, SELECT, FETCH (a page of headers, or one whole message), STORE, APPEND,
//! EXPUNGE and NOOP until LOGOUT is drawn. The draw sequence of client i depends only on the seed
//! and i. INBOX is pre-filled to `--fill` messages and APPEND/EXPUNGE keep it near that size.
//! Every response is checked by the client; figures are per command: rate, p50, p99, errors.
//!
//! Limits: clients beyond the number of accounts share mailboxes, which makes sequence numbers
//! race (expect NO/BAD on STORE then); run with `--users` ≥ `--clients`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use crate::client::{Client, ClientError, Counters, Done};
use crate::corpus::{Corpus, CorpusKind, message};
use crate::report::Report;
use crate::rng::Rng;
use crate::scenario::{Ctx, Pacer, merge_counters, timed_bar};
use crate::stats::Recorder;

/// Options of the mixed scenario.
#[derive(Debug, Clone, Args)]
pub struct MixedOpts {
    /// Concurrent clients.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Messages each client's INBOX holds before the run.
    #[arg(long, default_value_t = 100)]
    pub fill: u32,
    /// Commands per second offered by all clients together (an open loop; see
    /// [`crate::scenario::Pacer`]). Without it every client sends as fast as it is answered.
    #[arg(long)]
    pub rate: Option<f64>,
}

/// What a client can do next, with its weight in the draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    List,
    Status,
    Select,
    FetchHeaders,
    FetchBody,
    Store,
    Append,
    Expunge,
    Noop,
    Logout,
}

const OPS: &[(Op, u32)] = &[
    (Op::List, 5),
    (Op::Status, 8),
    (Op::Select, 6),
    (Op::FetchHeaders, 22),
    (Op::FetchBody, 12),
    (Op::Store, 15),
    (Op::Append, 6),
    (Op::Expunge, 6),
    (Op::Noop, 4),
    (Op::Logout, 1),
];

/// APPENDed messages in the mix stay below this size: the mixed load measures command handling,
/// the `append` scenario measures bulk ingest.
const MAX_MIXED_APPEND: usize = 128 * 1024;

/// Runs the scenario.
pub async fn run(ctx: &Ctx, opts: &MixedOpts) -> anyhow::Result<Report> {
    let clients = opts.clients.max(1);
    let params = json!({"clients": clients, "duration_s": opts.duration, "fill": opts.fill,
        "users": ctx.users.count, "seed": ctx.seed, "rate": opts.rate});
    let mut report = ctx.report("mixed", params);

    // Fill every account's INBOX up to `fill` (once: later runs find it filled).
    let accounts = clients.min(ctx.users.count.max(1));
    let bar = ctx.bar(accounts as u64, "filling INBOX");
    let mut fills = Vec::new();
    for i in 0..accounts {
        let ctx = ctx.clone();
        let fill = opts.fill;
        let bar = bar.clone();
        fills.push(tokio::spawn(async move {
            let r = fill_inbox(&ctx, i, fill).await;
            bar.inc(1);
            r
        }));
    }
    for f in fills {
        f.await??;
    }
    bar.finish_and_clear();
    let probe = ctx.login(0).await?;
    report.capabilities = probe.capabilities().to_vec();
    probe.logout().await?;

    let corpus = Arc::new(mixed_corpus(ctx.seed));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(opts.duration);
    let mut workers = Vec::new();
    for i in 0..clients {
        let ctx = ctx.clone();
        let corpus = Arc::clone(&corpus);
        let done = Arc::clone(&done);
        let fill = opts.fill;
        let pacer = Pacer::new(opts.rate, clients, i as f64 / clients as f64);
        workers
            .push(tokio::spawn(async move { worker(&ctx, i, fill, deadline, &corpus, &done, pacer).await }));
    }
    let results = timed_bar(ctx, "mixed", Duration::from_secs(opts.duration), async {
        let mut out = Vec::new();
        for w in workers {
            out.push(w.await);
        }
        out
    })
    .await;
    let elapsed = start.elapsed().as_secs_f64();
    let mut rec = Recorder::default();
    let mut counters = Vec::new();
    let mut sessions = 0u64;
    let mut connection_errors = 0u64;
    for r in results {
        let w = r?;
        rec.merge(&w.rec);
        counters.push(w.counters);
        sessions += w.sessions;
        connection_errors += w.connection_errors;
    }
    // CONNECT (TCP + greeting) is reported but is not a command.
    // Figures of other client counts get their own keys, so one comparison can hold both.
    let prefix = match (clients, opts.rate) {
        (50, None) => "mixed".to_owned(),
        (c, None) => format!("mixed.c{c}"),
        (c, Some(r)) => format!("mixed.c{c}.r{r}"),
    };
    report.push_ops(&prefix, &rec, elapsed, |name| name != "CONNECT");
    report.push(format!("{prefix}.sessions"), Some(sessions as f64), "count", crate::report::Better::Neither);
    report.push(
        format!("{prefix}.connection_errors"),
        Some(connection_errors as f64),
        "count",
        crate::report::Better::Neither,
    );
    report.set_counters(&merge_counters(&counters));
    Ok(report)
}

/// Corpus of the APPENDs in the mix: mail-client sized messages below [`MAX_MIXED_APPEND`].
pub(crate) fn mixed_corpus(seed: u64) -> Corpus {
    let all = Corpus::generate(seed, 96, CorpusKind::Mixed);
    let small: Vec<Vec<u8>> = (0..all.len() as u64)
        .map(|i| all.get(i))
        .filter(|m| m.len() <= MAX_MIXED_APPEND)
        .map(<[u8]>::to_vec)
        .collect();
    Corpus::from_messages(small)
}

pub(crate) async fn fill_inbox(ctx: &Ctx, index: usize, fill: u32) -> anyhow::Result<()> {
    let mut c = ctx.login(index).await?;
    let mut have = 0u64;
    let done = c
        .command("STATUS \"INBOX\" (MESSAGES)", &mut |d| {
            if d.keyword == b"STATUS" {
                have = crate::client::number_after(d.raw, "MESSAGES").unwrap_or(0);
            }
        })
        .await?;
    anyhow::ensure!(done.is_ok(), "STATUS INBOX failed: {}", done.text);
    let mut next = have;
    while next < u64::from(fill) {
        let batch: Vec<Vec<u8>> = (next..u64::from(fill).min(next + 50))
            .map(|k| message(ctx.seed ^ index as u64, k, CorpusKind::Small))
            .collect();
        let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        let done = if c.has_capability("MULTIAPPEND") {
            c.append("INBOX", "", &refs).await?
        } else {
            let mut last = None;
            for m in &refs {
                last = Some(c.append("INBOX", "", &[m]).await?);
            }
            last.ok_or_else(|| anyhow::anyhow!("empty batch"))?
        };
        anyhow::ensure!(done.is_ok(), "filling INBOX failed: {}", done.text);
        next += batch.len() as u64;
    }
    c.logout().await?;
    Ok(())
}

struct WorkerResult {
    rec: Recorder,
    counters: Counters,
    sessions: u64,
    connection_errors: u64,
}

async fn worker(
    ctx: &Ctx,
    index: usize,
    fill: u32,
    deadline: Instant,
    corpus: &Corpus,
    done: &AtomicU64,
    mut pacer: Pacer,
) -> WorkerResult {
    let mut rng = Rng::derive(ctx.seed, index as u64);
    let mut out = WorkerResult {
        rec: Recorder::default(),
        counters: Counters::default(),
        sessions: 0,
        connection_errors: 0,
    };
    let user = ctx.users.name(index);
    let mut append_index = index as u64 * 1000;
    while Instant::now() < deadline {
        let t = Instant::now();
        let mut client = match Client::connect(&ctx.target).await {
            Ok(c) => c,
            Err(_) => {
                out.rec.record("CONNECT", t.elapsed(), false);
                out.connection_errors += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        out.rec.record("CONNECT", t.elapsed(), true);
        out.sessions += 1;
        let mut session =
            Session { client: &mut client, rec: &mut out.rec, done, exists: None, pacer: &mut pacer };
        let result = session.run(ctx, &user, &mut rng, fill, deadline, corpus, &mut append_index).await;
        match result {
            Ok(()) => {
                let t = Instant::now();
                match client.logout().await {
                    Ok(c) => {
                        out.rec.record("LOGOUT", t.elapsed(), true);
                        done.fetch_add(1, Ordering::Relaxed);
                        out.counters.merge(&c);
                    }
                    Err(_) => {
                        out.rec.record("LOGOUT", t.elapsed(), false);
                        out.connection_errors += 1;
                    }
                }
            }
            Err(_) => {
                out.connection_errors += 1;
                out.counters.merge(&client.close().await);
            }
        }
    }
    out
}

/// One logged-in session of a mixed-load client.
struct Session<'a> {
    client: &'a mut Client,
    rec: &'a mut Recorder,
    done: &'a AtomicU64,
    /// Messages in the selected mailbox; `None` when nothing is selected.
    exists: Option<u64>,
    /// When the next command may go.
    pacer: &'a mut Pacer,
}

impl Session<'_> {
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &mut self,
        ctx: &Ctx,
        user: &str,
        rng: &mut Rng,
        fill: u32,
        deadline: Instant,
        corpus: &Corpus,
        append_index: &mut u64,
    ) -> Result<(), ClientError> {
        let t = Instant::now();
        let login = self.client.login(user, &ctx.users.password).await;
        self.finish("LOGIN", t, &login);
        if !login?.is_ok() {
            return Err(ClientError::Protocol("LOGIN refused".into()));
        }
        let weights: Vec<u32> = OPS.iter().map(|(_, w)| *w).collect();
        while Instant::now() < deadline {
            self.pacer.pace(1).await;
            let op = OPS.get(rng.weighted(&weights)).map_or(Op::Noop, |(op, _)| *op);
            let needs_mailbox = matches!(op, Op::FetchHeaders | Op::FetchBody | Op::Store | Op::Expunge);
            if needs_mailbox && self.exists.is_none() {
                self.select().await?;
            }
            let exists = self.exists.unwrap_or(0);
            match op {
                Op::Logout => return Ok(()),
                Op::List => self.simple("LIST", "LIST \"\" \"*\"").await?,
                Op::Status => self.simple("STATUS", "STATUS \"INBOX\" (MESSAGES UIDNEXT UNSEEN)").await?,
                Op::Select => self.select().await?,
                Op::Noop => self.simple("NOOP", "NOOP").await?,
                Op::FetchHeaders if exists > 0 => {
                    let first = rng.range(1, exists);
                    let last = (first + 19).min(exists);
                    let cmd = format!(
                        "FETCH {first}:{last} (UID FLAGS RFC822.SIZE INTERNALDATE \
                         BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])"
                    );
                    self.simple("FETCH", &cmd).await?;
                }
                Op::FetchBody if exists > 0 => {
                    let n = rng.range(1, exists);
                    self.simple("FETCH", &format!("FETCH {n} BODY.PEEK[]")).await?;
                }
                Op::Store if exists > 0 => {
                    let n = rng.range(1, exists);
                    let sign = if rng.percent(50) { '+' } else { '-' };
                    let flag = if rng.percent(70) { "\\Seen" } else { "\\Flagged" };
                    self.simple("STORE", &format!("STORE {n} {sign}FLAGS ({flag})")).await?;
                }
                Op::Expunge if exists > u64::from(fill) => {
                    // Delete the newest message (normally one this tool appended).
                    self.simple("STORE", &format!("STORE {exists} +FLAGS.SILENT (\\Deleted)")).await?;
                    self.simple("EXPUNGE", "EXPUNGE").await?;
                }
                _ => {
                    // APPEND, and the operations that found too few messages to act on.
                    let msg = corpus.get(*append_index);
                    *append_index += 1;
                    let t = Instant::now();
                    let r = self.client.append("INBOX", "", &[msg]).await;
                    self.finish("APPEND", t, &r);
                    r?;
                    if self.exists.is_some() {
                        // The new message shows up as EXISTS at the next command; a NOOP-free
                        // estimate keeps the expunge target right meanwhile.
                        self.exists = Some(exists + 1);
                    }
                }
            }
        }
        Ok(())
    }

    async fn select(&mut self) -> Result<(), ClientError> {
        self.simple("SELECT", "SELECT \"INBOX\"").await
    }

    /// Runs one command, tracking EXISTS/EXPUNGE so sequence numbers stay valid.
    async fn simple(&mut self, name: &'static str, cmd: &str) -> Result<(), ClientError> {
        let t = Instant::now();
        let mut exists = self.exists;
        let selecting = name == "SELECT";
        let r = self
            .client
            .command(cmd, &mut |d| match d.keyword {
                b"EXISTS" if selecting || exists.is_some() => exists = d.number.map(u64::from),
                b"EXPUNGE" => exists = exists.map(|e| e.saturating_sub(1)),
                _ => {}
            })
            .await;
        self.exists = exists;
        self.finish(name, t, &r);
        r.map(|_| ())
    }

    fn finish(&mut self, name: &'static str, t: Instant, r: &Result<Done, ClientError>) {
        let ok = matches!(r, Ok(d) if d.is_ok());
        self.rec.record(name, t.elapsed(), ok);
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_cover_every_op_and_end_sessions() {
        let total: u32 = OPS.iter().map(|(_, w)| w).sum();
        assert_eq!(total, 85);
        let logout = OPS.iter().find(|(op, _)| *op == Op::Logout).map_or(0, |(_, w)| *w);
        // About 85 commands per session on average: long enough that the mix measures IMAP
        // commands rather than password hashing (the `handshakes` scenario measures logins).
        assert_eq!(total / logout, 85);
    }

    #[test]
    fn mixed_corpus_is_bounded() {
        let c = mixed_corpus(1);
        assert!(c.len() > 50);
        assert!((0..c.len() as u64).all(|i| c.get(i).len() <= MAX_MIXED_APPEND));
    }
}
