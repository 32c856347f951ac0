//! `big-mailbox`: whole-mailbox operations on mailboxes of 10k, 100k, 1M messages.
//!
//! The mailbox `bench-big-<size>` of the first account is filled once from the small corpus
//! (1-4 KiB messages, one in 100 containing the search needle) and reused by later runs: its
//! message count is checked first and only the shortfall is appended, in MULTIAPPEND batches
//! with LITERAL+ when the server offers them. Then each operation runs `--repeat` times and
//! reports its median and first (coldest) time and the bytes it put on the wire:
//! SELECT, `UID FETCH 1:* (FLAGS)`, `FETCH 1:* (ENVELOPE BODYSTRUCTURE)`, `UID SEARCH TEXT`,
//! `STORE 1:* +FLAGS (\Flagged)` (undone, untimed, after each run), and a QRESYNC resync
//! (RFC 7162 §3.2.5) after a few changes made by a second connection — "n/a" when the server
//! does not advertise QRESYNC.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use crate::client::{Client, Counters, number_after, quote};
use crate::corpus::{CorpusKind, NEEDLE, message};
use crate::report::{Better, Report, median};
use crate::scenario::{Ctx, merge_counters};

/// Options of the big-mailbox scenario.
#[derive(Debug, Clone, Args)]
pub struct BigOpts {
    /// Mailbox sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub sizes: Vec<u64>,
    /// Runs of each operation (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Messages per MULTIAPPEND while filling.
    #[arg(long, default_value_t = 500)]
    pub batch: u64,
    /// Operations not to run, comma-separated (`uid_fetch_flags`, `fetch_envelope_bodystructure`,
    /// `uid_search_text`, `store_flags`, `qresync_resync`): on a million messages Dovecot's
    /// STORE renames a million files per run.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
}

/// One timed operation's runs.
#[derive(Default)]
struct Runs {
    ms: Vec<f64>,
    wire_bytes: Vec<f64>,
    ok: bool,
}

impl Runs {
    fn push(&mut self, took: Duration, bytes: u64, ok: bool) {
        self.ms.push(took.as_secs_f64() * 1000.0);
        self.wire_bytes.push(bytes as f64);
        self.ok = if self.ms.len() == 1 { ok } else { self.ok && ok };
    }
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx, opts: &BigOpts) -> anyhow::Result<Report> {
    let params = json!({"sizes": opts.sizes, "repeat": opts.repeat, "seed": ctx.seed, "needle": NEEDLE});
    let mut report = ctx.report("big-mailbox", params);
    let mut counters = Vec::new();
    for &size in &opts.sizes {
        let mailbox = format!("bench-big-{size}");
        let mut c = ctx.login(0).await?;
        report.capabilities = c.capabilities().to_vec();
        let (count, fill_secs) = ensure_filled(ctx, &mut c, &mailbox, size, opts.batch.max(1)).await?;
        let prefix = format!("big.{size}");
        report.push(format!("{prefix}.messages"), Some(count as f64), "count", Better::Neither);
        if let Some(secs) = fill_secs {
            report.push(
                format!("{prefix}.fill_msg_per_s"),
                Some((size - count.min(size)) as f64 / secs),
                "msg/s",
                Better::Higher,
            );
        }
        let repeat = opts.repeat.max(1);
        let quoted = quote(&mailbox);
        let ops: [(&str, String); 4] = [
            ("uid_fetch_flags", "UID FETCH 1:* (FLAGS)".to_owned()),
            ("fetch_envelope_bodystructure", "FETCH 1:* (ENVELOPE BODYSTRUCTURE)".to_owned()),
            ("uid_search_text", format!("UID SEARCH TEXT {}", quote(NEEDLE))),
            ("store_flags", "STORE 1:* +FLAGS (\\Flagged)".to_owned()),
        ];
        // SELECT: leave the mailbox first so each run is a full open.
        let mut runs = Runs::default();
        for r in 0..repeat {
            // RFC 9051 §6.4.2: UNSELECT without a selected mailbox is a BAD; skip it the first time.
            if r > 0 {
                let _ = c.command("UNSELECT", &mut |_| {}).await?;
            }
            let t = Instant::now();
            let done = c.command(&format!("SELECT {quoted}"), &mut |_| {}).await?;
            runs.push(t.elapsed(), done.bytes, done.is_ok());
        }
        push_runs(&mut report, &prefix, "select", &runs);
        for (name, cmd) in ops.iter().filter(|(name, _)| !opts.skip.iter().any(|s| s == name)) {
            let mut runs = Runs::default();
            let mut hits = 0u64;
            for _ in 0..repeat {
                let t = Instant::now();
                let mut found = 0u64;
                let done = c
                    .command(cmd, &mut |d| {
                        if d.keyword == b"SEARCH" {
                            found = d.raw.split(|b| *b == b' ').skip(2).count() as u64;
                        }
                    })
                    .await?;
                runs.push(t.elapsed(), done.bytes, done.is_ok());
                hits = found;
                if *name == "store_flags" {
                    let undo = c.command("STORE 1:* -FLAGS.SILENT (\\Flagged)", &mut |_| {}).await?;
                    anyhow::ensure!(undo.is_ok(), "undoing STORE failed: {}", undo.text);
                }
            }
            push_runs(&mut report, &prefix, name, &runs);
            if *name == "uid_search_text" {
                report.push(
                    format!("{prefix}.uid_search_text.hits"),
                    Some(hits as f64),
                    "count",
                    Better::Neither,
                );
            }
        }
        if opts.skip.iter().any(|s| s == "qresync_resync") {
            // Not run: no figure.
        } else if c.has_capability("QRESYNC") {
            let runs = qresync(ctx, &mut c, &mailbox, repeat, &mut counters).await?;
            push_runs(&mut report, &prefix, "qresync_resync", &runs);
        } else {
            report.push(format!("{prefix}.qresync_resync.median_ms"), None, "ms", Better::Lower);
        }
        counters.push(c.logout().await?);
    }
    report.set_counters(&merge_counters(&counters));
    Ok(report)
}

fn push_runs(report: &mut Report, prefix: &str, name: &str, runs: &Runs) {
    let mut ms = runs.ms.clone();
    let mut bytes = runs.wire_bytes.clone();
    let ok = runs.ok;
    report.push(format!("{prefix}.{name}.median_ms"), median(&mut ms).filter(|_| ok), "ms", Better::Lower);
    report.push(
        format!("{prefix}.{name}.first_ms"),
        runs.ms.first().copied().filter(|_| ok),
        "ms",
        Better::Lower,
    );
    report.push(
        format!("{prefix}.{name}.wire_kib"),
        median(&mut bytes).map(|b| b / 1024.0),
        "KiB",
        Better::Neither,
    );
}

/// Makes `mailbox` hold at least `size` messages; returns the count found before filling and
/// the seconds spent filling (None when nothing was appended).
pub(crate) async fn ensure_filled(
    ctx: &Ctx,
    c: &mut Client,
    mailbox: &str,
    size: u64,
    batch: u64,
) -> anyhow::Result<(u64, Option<f64>)> {
    let quoted = quote(mailbox);
    let mut have = None;
    let status = c
        .command(&format!("STATUS {quoted} (MESSAGES)"), &mut |d| {
            if d.keyword == b"STATUS" {
                have = number_after(d.raw, "MESSAGES");
            }
        })
        .await?;
    if !status.is_ok() {
        let created = c.command(&format!("CREATE {quoted}"), &mut |_| {}).await?;
        anyhow::ensure!(created.is_ok(), "CREATE {mailbox} failed: {}", created.text);
    }
    let have = have.unwrap_or(0);
    if have >= size {
        return Ok((have, None));
    }
    let bar = ctx.bar(size, &format!("fill {size}"));
    bar.set_position(have);
    let start = Instant::now();
    let multi = c.has_capability("MULTIAPPEND");
    let mut next = have;
    while next < size {
        let end = size.min(next + batch);
        // Message numbers continue from what is there, so refills keep the needle every 100th.
        let msgs: Vec<Vec<u8>> = (next..end).map(|k| message(ctx.seed, k, CorpusKind::Small)).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        if multi {
            let done = c.append(mailbox, "", &refs).await?;
            anyhow::ensure!(done.is_ok(), "MULTIAPPEND to {mailbox} failed: {}", done.text);
        } else {
            for m in refs {
                let done = c.append(mailbox, "", &[m]).await?;
                anyhow::ensure!(done.is_ok(), "APPEND to {mailbox} failed: {}", done.text);
            }
        }
        next = end;
        bar.set_position(next);
    }
    bar.finish_and_clear();
    Ok((have, Some(start.elapsed().as_secs_f64())))
}

/// QRESYNC resync timing: remember (UIDVALIDITY, HIGHESTMODSEQ), let a second connection flag
/// ten messages and append-then-expunge two, then reselect with the QRESYNC parameter.
async fn qresync(
    ctx: &Ctx,
    c: &mut Client,
    mailbox: &str,
    repeat: usize,
    counters: &mut Vec<Counters>,
) -> anyhow::Result<Runs> {
    let quoted = quote(mailbox);
    let enabled = c.command("ENABLE QRESYNC", &mut |_| {}).await?;
    anyhow::ensure!(enabled.is_ok(), "ENABLE QRESYNC failed: {}", enabled.text);
    let mut validity = 0;
    let mut modseq = 0;
    let observe = |raw: &[u8], validity: &mut u64, modseq: &mut u64| {
        if let Some(v) = number_after(raw, "[UIDVALIDITY") {
            *validity = v;
        }
        if let Some(m) = number_after(raw, "[HIGHESTMODSEQ") {
            *modseq = m;
        }
    };
    let done =
        c.command(&format!("SELECT {quoted}"), &mut |d| observe(d.raw, &mut validity, &mut modseq)).await?;
    anyhow::ensure!(done.is_ok(), "SELECT failed: {}", done.text);
    let mut other = ctx.login(0).await?;
    let mut runs = Runs::default();
    for r in 0..repeat {
        let sign = if r % 2 == 0 { '+' } else { '-' };
        let changes = [format!("SELECT {quoted}"), format!("STORE 1:10 {sign}FLAGS.SILENT (\\Answered)")];
        for cmd in changes {
            let d = other.command(&cmd, &mut |_| {}).await?;
            anyhow::ensure!(d.is_ok(), "{cmd} failed: {}", d.text);
        }
        for k in 0..2 {
            let msg = message(ctx.seed, 1_000_000_000 + k, CorpusKind::Small);
            let d = other.append(mailbox, "\\Deleted", &[&msg]).await?;
            anyhow::ensure!(d.is_ok(), "APPEND failed: {}", d.text);
        }
        let d = other.command("EXPUNGE", &mut |_| {}).await?;
        anyhow::ensure!(d.is_ok(), "EXPUNGE failed: {}", d.text);
        let t = Instant::now();
        let cmd = format!("SELECT {quoted} (QRESYNC ({validity} {modseq}))");
        let done = c.command(&cmd, &mut |d| observe(d.raw, &mut validity, &mut modseq)).await?;
        runs.push(t.elapsed(), done.bytes, done.is_ok());
    }
    counters.push(other.logout().await?);
    Ok(runs)
}
