//! `idle`: the memory a server spends per idle connection.
//!
//! Opens N connections, each logged in (with `--compress`: COMPRESS=DEFLATE on, RFC 4978), with
//! INBOX selected and in IDLE (RFC 2177), and measures
//! the RSS and PSS of the server's process tree (`--server-pid`, descendants included) before
//! and after. A warm-up of LOGIN/LOGOUT cycles runs first, so that memory an allocator keeps
//! after password hashing is in the baseline. The per-connection figure is the difference
//! divided by N. Without a PID (a remote
//! server) only the setup rate is reported and the memory figures are "n/a".
//!
//! Limits: needs file descriptors for N sockets (raise `ulimit -n` for large N) and a server
//! that allows N concurrent sessions from one address.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::client::Client;
use crate::procmem::{Memory, tree_memory};
use crate::report::{Better, Report};
use crate::scenario::{Ctx, merge_counters};

/// Options of the idle scenario.
#[derive(Debug, Clone, Args)]
pub struct IdleOpts {
    /// Idle connections to open.
    #[arg(long, default_value_t = 500)]
    pub clients: usize,
    /// Server process(es) whose memory (with all descendants) is measured; repeatable.
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// Seconds to let the server settle before each measurement.
    #[arg(long, default_value_t = 3)]
    pub settle: u64,
    /// Connections set up at once.
    #[arg(long, default_value_t = 32)]
    pub parallel: usize,
    /// LOGIN/LOGOUT cycles run (with the same parallelism) before the baseline measurement.
    #[arg(long, default_value_t = 128)]
    pub warmup: usize,
    /// Turn COMPRESS=DEFLATE (RFC 4978) on in every connection before SELECT.
    #[arg(long)]
    pub compress: bool,
    /// After the memory measurement, append one message to the first account's INBOX and time
    /// how long each of its IDLE sessions takes to see the EXISTS (the push fan-out), with every
    /// other connection still open.
    #[arg(long)]
    pub fanout: bool,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx, opts: &IdleOpts) -> anyhow::Result<Report> {
    let params = json!({"clients": opts.clients, "server_pids": opts.server_pids, "settle_s": opts.settle,
        "parallel": opts.parallel, "warmup": opts.warmup, "compress": opts.compress, "fanout": opts.fanout});
    let mut report = ctx.report("idle", params);
    let measure = |pids: &[u32]| if pids.is_empty() { None } else { Some(tree_memory(pids)) };
    let gate = Arc::new(Semaphore::new(opts.parallel.max(1)));
    // Logging in costs transient memory (password hashing: Argon2 takes tens of MiB per
    // verification) that allocators keep for reuse. Paying it before the baseline keeps that
    // high-water mark out of the per-connection figure, which should be session state only.
    let mut warm = Vec::new();
    for i in 0..opts.warmup {
        let ctx = ctx.clone();
        let gate = Arc::clone(&gate);
        warm.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let c = ctx.login(i).await?;
            c.logout().await?;
            Ok::<(), anyhow::Error>(())
        }));
    }
    for w in warm {
        w.await??;
    }
    tokio::time::sleep(Duration::from_secs(opts.settle)).await;
    let before = measure(&opts.server_pids);

    let bar = ctx.bar(opts.clients as u64, "idle setup");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..opts.clients {
        let ctx = ctx.clone();
        let gate = Arc::clone(&gate);
        let bar = bar.clone();
        let compress = opts.compress;
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let mut c = ctx.login(i).await?;
            if compress {
                let done = c.compress().await?;
                anyhow::ensure!(done.is_ok(), "COMPRESS DEFLATE failed: {}", done.text);
            }
            let done = c.command("SELECT \"INBOX\"", &mut |_| {}).await?;
            anyhow::ensure!(done.is_ok(), "SELECT INBOX failed: {}", done.text);
            let tag = c.idle().await?;
            bar.inc(1);
            Ok::<(Client, String, usize), anyhow::Error>((c, tag, i))
        }));
    }
    let mut idle: Vec<(Client, String, usize)> = Vec::new();
    let mut failures = 0u64;
    let mut first_failure = None;
    for t in tasks {
        match t.await? {
            Ok(pair) => idle.push(pair),
            Err(e) => {
                failures += 1;
                first_failure.get_or_insert(format!("{e:#}"));
            }
        }
    }
    let setup = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some((c, _, _)) = idle.first() {
        report.capabilities = c.capabilities().to_vec();
    }
    tokio::time::sleep(Duration::from_secs(opts.settle)).await;
    let after = measure(&opts.server_pids);
    let n = idle.len();
    report.push("idle.connections", Some(n as f64), "count", Better::Neither);
    report.push("idle.setup_failures", Some(failures as f64), "count", Better::Neither);
    report.push("idle.setup_per_s", Some(n as f64 / setup.max(1e-9)), "conn/s", Better::Higher);
    let per_conn = |f: fn(&Memory) -> u64| match (before, after) {
        (Some(b), Some(a)) if n > 0 => Some((f(&a) as f64 - f(&b) as f64) / n as f64),
        _ => None,
    };
    report.push("idle.pss_kib_per_conn", per_conn(|m| m.pss_kib), "KiB", Better::Lower);
    report.push("idle.rss_kib_per_conn", per_conn(|m| m.rss_kib), "KiB", Better::Lower);
    report.push("idle.pss_mib_total", after.map(|m| m.pss_kib as f64 / 1024.0), "MiB", Better::Lower);
    report.push("idle.processes_after", after.map(|m| m.processes as f64), "count", Better::Neither);
    if let Some(e) = first_failure {
        eprintln!("idle: {failures} connection(s) failed; first: {e}");
    }

    if opts.fanout {
        idle = fanout(ctx, idle, &mut report).await?;
    }

    // End IDLE and log out everywhere, a bounded number at a time.
    let mut closers = Vec::new();
    for (mut c, tag, _) in idle {
        let gate = Arc::clone(&gate);
        closers.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            let _ = c.idle_done(&tag).await;
            c.logout().await.unwrap_or_default()
        }));
    }
    let mut counters = Vec::new();
    for c in closers {
        counters.push(c.await?);
    }
    report.set_counters(&merge_counters(&counters));
    Ok(report)
}

/// How long a change takes to reach every IDLE session of its mailbox: one APPEND to the first
/// account's INBOX from a fresh connection, then the time from its OK until each IDLE session of
/// that account has read `* n EXISTS`. Reported: sessions reached, median and slowest.
async fn fanout(
    ctx: &Ctx,
    idle: Vec<(Client, String, usize)>,
    report: &mut Report,
) -> anyhow::Result<Vec<(Client, String, usize)>> {
    let first = ctx.users.name(0);
    let (watching, others): (Vec<_>, Vec<_>) =
        idle.into_iter().partition(|(_, _, i)| ctx.users.name(*i) == first);
    let (ready, _) = tokio::sync::watch::channel(None::<Instant>);
    let mut waiters = Vec::new();
    for (mut c, tag, i) in watching {
        let mut went = ready.subscribe();
        waiters.push(tokio::spawn(async move {
            let seen = tokio::time::timeout(Duration::from_secs(30), c.wait_untagged("EXISTS")).await;
            let at = Instant::now();
            let _ = went.wait_for(Option::is_some).await;
            let sent = (*went.borrow()).unwrap_or(at);
            let latency = match seen {
                Ok(Ok(())) => Some(at.saturating_duration_since(sent).as_secs_f64() * 1000.0),
                _ => None,
            };
            (c, tag, i, latency)
        }));
    }
    let mut writer = ctx.login(0).await?;
    let message = b"From: bench@example.org\r\nSubject: fan-out\r\n\r\nOne change, every IDLE session.\r\n";
    // The clock starts when the APPEND is sent: the OK comes after the commit, and the push may
    // overtake it.
    let sent = Instant::now();
    let _ = ready.send(Some(sent));
    let done = writer.append("INBOX", "", &[&message[..]]).await?;
    anyhow::ensure!(done.is_ok(), "the fan-out APPEND failed: {}", done.text);
    let _ = writer.logout().await;
    let mut latencies = Vec::new();
    let mut back = others;
    let mut missed = 0u64;
    for w in waiters {
        let (c, tag, i, latency) = w.await?;
        match latency {
            Some(ms) => latencies.push(ms),
            None => missed += 1,
        }
        back.push((c, tag, i));
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied();
    report.push("idle.fanout_sessions", Some(latencies.len() as f64), "count", Better::Neither);
    report.push("idle.fanout_missed", Some(missed as f64), "count", Better::Lower);
    report.push("idle.fanout_ms_p50", pick(0.5), "ms", Better::Lower);
    report.push("idle.fanout_ms_max", latencies.last().copied(), "ms", Better::Lower);
    Ok(back)
}
