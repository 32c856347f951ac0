//! `handshakes`: TLS handshakes per second and logins per second.
//!
//! Phase one (only when an implicit-TLS port is known): N workers each loop over connect, TLS
//! handshake, greeting, LOGOUT. Phase two: N workers loop over connect, greeting, LOGIN, LOGOUT
//! on the main target; the LOGIN latency is reported separately, because it is dominated by the
//! server's password hashing.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use crate::client::{Client, Counters, Target};
use crate::report::{Better, Report};
use crate::scenario::{Ctx, merge_counters, timed_bar};
use crate::stats::Recorder;

/// Options of the handshake scenario.
#[derive(Debug, Clone, Args)]
pub struct HandshakeOpts {
    /// Concurrent workers per phase.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx, opts: &HandshakeOpts) -> anyhow::Result<Report> {
    let params = json!({"clients": opts.clients, "duration_s": opts.duration,
        "tls_port": ctx.tls_target.as_ref().map(|t| t.port)});
    let mut report = ctx.report("handshakes", params);
    let duration = Duration::from_secs(opts.duration);
    let mut counters = Vec::new();
    match &ctx.tls_target {
        Some(tls) => {
            let (rec, secs, c) = phase(ctx, tls, opts.clients, duration, false).await?;
            let op = rec.ops.get("TLS").cloned().unwrap_or_default();
            report.push("handshakes.tls.per_s", Some(op.ok as f64 / secs), "hs/s", Better::Higher);
            report.push("handshakes.tls.p50_ms", Some(op.latency.quantile_ms(0.5)), "ms", Better::Lower);
            report.push("handshakes.tls.p99_ms", Some(op.latency.quantile_ms(0.99)), "ms", Better::Lower);
            report.push("handshakes.tls.errors", Some(op.errors as f64), "count", Better::Neither);
            counters.push(c);
        }
        None => report.push("handshakes.tls.per_s", None, "hs/s", Better::Higher),
    }
    let (rec, secs, c) = phase(ctx, &ctx.target, opts.clients, duration, true).await?;
    let op = rec.ops.get("LOGIN").cloned().unwrap_or_default();
    report.push("handshakes.login.per_s", Some(op.ok as f64 / secs), "login/s", Better::Higher);
    report.push("handshakes.login.p50_ms", Some(op.latency.quantile_ms(0.5)), "ms", Better::Lower);
    report.push("handshakes.login.p99_ms", Some(op.latency.quantile_ms(0.99)), "ms", Better::Lower);
    report.push("handshakes.login.errors", Some(op.errors as f64), "count", Better::Neither);
    counters.push(c);
    report.set_counters(&merge_counters(&counters));
    Ok(report)
}

/// One phase: workers loop until the deadline; returns their records, the real span in seconds
/// and their counters.
async fn phase(
    ctx: &Ctx,
    target: &Target,
    clients: usize,
    duration: Duration,
    login: bool,
) -> anyhow::Result<(Recorder, f64, Counters)> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::new();
    for i in 0..clients.max(1) {
        let ctx = ctx.clone();
        let target = target.clone();
        workers.push(tokio::spawn(async move {
            let mut rec = Recorder::default();
            let mut counters = Counters::default();
            let user = ctx.users.name(i);
            while Instant::now() < deadline {
                let t = Instant::now();
                let mut c = match Client::connect(&target).await {
                    Ok(c) => c,
                    Err(_) => {
                        rec.record(if login { "CONNECT" } else { "TLS" }, t.elapsed(), false);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if !login {
                    rec.record("TLS", t.elapsed(), true);
                } else {
                    let t = Instant::now();
                    let r = c.login(&user, &ctx.users.password).await;
                    rec.record("LOGIN", t.elapsed(), matches!(&r, Ok(d) if d.is_ok()));
                }
                match c.logout().await {
                    Ok(k) => counters.merge(&k),
                    Err(_) => rec.record("LOGOUT", Duration::ZERO, false),
                }
            }
            (rec, counters)
        }));
    }
    let what = if login { "logins" } else { "tls handshakes" };
    let results = timed_bar(ctx, what, duration, async {
        let mut out = Vec::new();
        for w in workers {
            out.push(w.await);
        }
        out
    })
    .await;
    let secs = start.elapsed().as_secs_f64();
    let mut rec = Recorder::default();
    let mut counters = Vec::new();
    for r in results {
        let (r, c) = r?;
        rec.merge(&r);
        counters.push(c);
    }
    Ok((rec, secs, merge_counters(&counters)))
}
