//! `fill`: gives every account (`--users`) an INBOX of `--messages` messages, so that other
//! scenarios run on an installation that holds mail, not on an empty one (the index and
//! table sizes a server's write path meets grow with it).
//!
//! `--clients` connections take accounts one after the other from a shared counter. Each
//! account's INBOX is topped up to the target count in MULTIAPPEND batches (single APPENDs
//! without MULTIAPPEND), so a second run appends nothing. Figures: messages appended, the
//! messages per second of the fill, and the installation's total afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clap::Args;
use serde_json::json;

use crate::report::{Better, Report};
use crate::scenario::big::ensure_filled;
use crate::scenario::{Ctx, merge_counters};

/// Options of the fill scenario.
#[derive(Debug, Clone, Args)]
pub struct FillOpts {
    /// Messages each account's INBOX holds afterwards.
    #[arg(long, default_value_t = 1000)]
    pub messages: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Messages per MULTIAPPEND.
    #[arg(long, default_value_t = 100)]
    pub batch: u64,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx, opts: &FillOpts) -> anyhow::Result<Report> {
    let accounts = ctx.users.count;
    let params = json!({"accounts": accounts, "messages_per_account": opts.messages, "clients": opts.clients,
        "batch": opts.batch, "seed": ctx.seed});
    let mut report = ctx.report("fill", params);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.clients.clamp(1, accounts.max(1)) {
        let (ctx, next, opts) = (ctx.clone(), Arc::clone(&next), opts.clone());
        tasks.push(tokio::spawn(async move {
            let mut appended = 0u64;
            let mut counters = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= accounts {
                    break;
                }
                let mut c = ctx.login(index).await?;
                let (had, _) = ensure_filled(&ctx, &mut c, "INBOX", opts.messages, opts.batch).await?;
                appended += opts.messages.saturating_sub(had);
                counters.push(c.logout().await?);
            }
            anyhow::Ok((appended, merge_counters(&counters)))
        }));
    }
    let mut appended = 0u64;
    let mut counters = Vec::new();
    for t in tasks {
        let (n, c) = t.await??;
        appended += n;
        counters.push(c);
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    report.push("fill.appended", Some(appended as f64), "messages", Better::Neither);
    report.push("fill.msg_per_s", (appended > 0).then(|| appended as f64 / secs), "msg/s", Better::Higher);
    report.push(
        "fill.installation_messages",
        Some(accounts as f64 * opts.messages as f64),
        "messages",
        Better::Neither,
    );
    report.set_counters(&merge_counters(&counters));
    Ok(report)
}
