//! `append`: APPEND throughput from one client, then from N clients at once.
//!
//! Each client logs in as its own account, recreates the mailbox `bench-append` and appends
//! messages from the deterministic mixed corpus (1 KiB .. 4 MiB) one APPEND at a time until the
//! phase ends; the mailbox is deleted afterwards so disks do not fill up over repeated runs.
//! Figures: messages/s, MiB/s and APPEND latency p50/p99 per phase. With `--imaplib` the clients
//! write as Python's imaplib does (see `Target::imaplib_style`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use crate::client::Counters;
use crate::corpus::{Corpus, CorpusKind};
use crate::report::{Better, Report};
use crate::scenario::{Ctx, merge_counters, timed_bar};
use crate::stats::Recorder;

/// The mailbox the scenario appends to (recreated by each run).
const MAILBOX: &str = "bench-append";

/// Options of the append scenario.
#[derive(Debug, Clone, Args)]
pub struct AppendOpts {
    /// Clients of the concurrent phase (the first phase always uses one).
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 15)]
    pub duration: u64,
    /// Distinct messages in the corpus (reused cyclically).
    #[arg(long, default_value_t = 200)]
    pub corpus: usize,
    /// Write like Python's imaplib (Nagle on, synchronising literals, message and CRLF in
    /// separate writes); figures are reported as `append.imaplib.*`.
    #[arg(long)]
    pub imaplib: bool,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx, opts: &AppendOpts) -> anyhow::Result<Report> {
    let mut ctx = ctx.clone();
    ctx.target.imaplib_style = opts.imaplib;
    let ctx = &ctx;
    let prefix = if opts.imaplib { "append.imaplib" } else { "append" };
    let corpus = Arc::new(Corpus::generate(ctx.seed, opts.corpus, CorpusKind::Mixed));
    let params = json!({"clients": opts.clients, "duration_s": opts.duration, "corpus_messages": corpus.len(),
        "corpus_mib": corpus.total_bytes() as f64 / 1048576.0, "seed": ctx.seed, "imaplib_style": opts.imaplib});
    let mut report = ctx.report("append", params);
    let mut all = Vec::new();
    for (name, clients) in [("c1".to_owned(), 1), (format!("c{}", opts.clients.max(1)), opts.clients.max(1))]
    {
        let phase = phase(ctx, &corpus, clients, Duration::from_secs(opts.duration)).await?;
        let secs = phase.seconds.max(1e-9);
        let op = phase.rec.ops.get("APPEND").cloned().unwrap_or_default();
        report.push(format!("{prefix}.{name}.msg_per_s"), Some(op.ok as f64 / secs), "msg/s", Better::Higher);
        report.push(
            format!("{prefix}.{name}.mib_per_s"),
            Some(phase.bytes as f64 / 1048576.0 / secs),
            "MiB/s",
            Better::Higher,
        );
        report.push(
            format!("{prefix}.{name}.p50_ms"),
            Some(op.latency.quantile_ms(0.5)),
            "ms",
            Better::Lower,
        );
        report.push(
            format!("{prefix}.{name}.p99_ms"),
            Some(op.latency.quantile_ms(0.99)),
            "ms",
            Better::Lower,
        );
        report.push(format!("{prefix}.{name}.errors"), Some(op.errors as f64), "count", Better::Neither);
        if report.capabilities.is_empty() {
            report.capabilities = phase.capabilities;
        }
        all.push(phase.counters);
    }
    report.set_counters(&merge_counters(&all));
    Ok(report)
}

struct Phase {
    rec: Recorder,
    counters: Counters,
    bytes: u64,
    seconds: f64,
    capabilities: Vec<String>,
}

async fn phase(ctx: &Ctx, corpus: &Arc<Corpus>, clients: usize, duration: Duration) -> anyhow::Result<Phase> {
    // Log in and recreate the mailboxes before the clock starts.
    let mut sessions = Vec::new();
    for i in 0..clients {
        let mut c = ctx.login(i).await?;
        let _ = c.command(&format!("DELETE \"{MAILBOX}\""), &mut |_| {}).await?;
        let created = c.command(&format!("CREATE \"{MAILBOX}\""), &mut |_| {}).await?;
        anyhow::ensure!(created.is_ok(), "CREATE {MAILBOX} failed: {}", created.text);
        sessions.push(c);
    }
    let capabilities = sessions.first().map(|c| c.capabilities().to_vec()).unwrap_or_default();
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::new();
    for (i, mut c) in sessions.into_iter().enumerate() {
        let corpus = Arc::clone(corpus);
        workers.push(tokio::spawn(async move {
            let mut rec = Recorder::default();
            let mut bytes = 0u64;
            // Clients start at different corpus positions so that they do not append in lockstep.
            let mut k = (i as u64) * 37;
            while Instant::now() < deadline {
                let msg = corpus.get(k);
                k += 1;
                let t = Instant::now();
                let r = c.append(MAILBOX, "", &[msg]).await;
                let ok = matches!(&r, Ok(d) if d.is_ok());
                rec.record("APPEND", t.elapsed(), ok);
                if ok {
                    bytes += msg.len() as u64;
                }
                if r.is_err() {
                    break;
                }
            }
            let end = Instant::now();
            (rec, bytes, c, end)
        }));
    }
    let label = format!("append x{clients}");
    let finished = timed_bar(ctx, &label, duration, async {
        let mut out = Vec::new();
        for w in workers {
            out.push(w.await);
        }
        out
    })
    .await;
    let mut rec = Recorder::default();
    let mut bytes = 0;
    let mut counters = Vec::new();
    let mut last_end = start;
    let mut open = Vec::new();
    for f in finished {
        let (r, b, c, end) = f?;
        rec.merge(&r);
        bytes += b;
        last_end = last_end.max(end);
        open.push(c);
    }
    // The last APPEND may end after the deadline: divide by the real span.
    let seconds = last_end.duration_since(start).as_secs_f64();
    for mut c in open {
        let _ = c.command(&format!("DELETE \"{MAILBOX}\""), &mut |_| {}).await;
        counters.push(c.logout().await.unwrap_or_default());
    }
    Ok(Phase { rec, counters: merge_counters(&counters), bytes, seconds, capabilities })
}
