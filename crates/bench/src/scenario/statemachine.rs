//! `statemachine`: many clients walking the random client state machine of a public IMAP stress
//! tester (imaptest's default mode) over one shared mailbox.
//!
//! Where `mixed` gives every client its own account and long sessions, this load is what a
//! stress tester does by default: every client logs in as the same account, and each session
//! is one walk through the states, with the commands of a state pipelined as far as their
//! dependencies allow (RFC 9051 §5.5):
//!
//! 1. connect, LOGIN;
//! 2. LIST (50 %), STATUS (MESSAGES UNSEEN RECENT) (50 %), SELECT (with CONDSTORE when offered),
//!    sent together;
//! 3. once selected: FETCH of a random set of up to 100 messages with 1–4 random items (UID,
//!    FLAGS, ENVELOPE, INTERNALDATE, BODY, BODYSTRUCTURE, RFC822.SIZE, or a few header fields);
//!    FETCH of one message's header, whole body, first part or text (again with 30 %); STORE of
//!    random flags and keywords on a few messages (50 %, half of them `.SILENT`); STORE
//!    `+FLAGS \Deleted` on a few messages; EXPUNGE; APPEND (with flags and a date half of the
//!    time; again with 5 %) while the mailbox holds fewer than `--msgs` messages — all sent
//!    together when the server offers LITERAL+;
//! 4. LOGOUT.
//!
//! So the mailbox stays near `--msgs` messages, every session sees the others' flag changes and
//! expunges, and connection set-up, LOGIN and SELECT are a large part of the load. Figures are
//! per command (rate, p50, p99 measured from the moment the command was sent) and in total.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use crate::client::{Client, ClientError, Counters, Done};
use crate::corpus::Corpus;
use crate::report::{Better, Report};
use crate::rng::Rng;
use crate::scenario::mixed::{fill_inbox, mixed_corpus};
use crate::scenario::{Ctx, Pacer, merge_counters, timed_bar};
use crate::stats::Recorder;

/// Options of the state-machine scenario.
#[derive(Debug, Clone, Args)]
pub struct StateMachineOpts {
    /// Concurrent clients.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// APPEND only while the mailbox holds fewer messages than this; DELETE marks more of them
    /// when it holds more (imaptest's `msgs`).
    #[arg(long, default_value_t = 30)]
    pub msgs: u32,
    /// Accounts the clients share (1 = every client on the first account, as imaptest does).
    #[arg(long, default_value_t = 1)]
    pub accounts: usize,
    /// Commands per second offered by all clients together (an open loop; see
    /// [`crate::scenario::Pacer`]). Without it every client sends as fast as it is answered.
    #[arg(long)]
    pub rate: Option<f64>,
}

/// FETCH items of the first FETCH state.
const FETCH_ITEMS: &[&str] =
    &["UID", "FLAGS", "ENVELOPE", "INTERNALDATE", "BODY", "BODYSTRUCTURE", "RFC822.SIZE"];
/// Header fields it may ask for.
const HEADER_FIELDS: &[&str] =
    &["From", "To", "Cc", "Subject", "References", "In-Reply-To", "Message-ID", "Delivered-To"];
/// Items of the second FETCH state (one message).
const FETCH2_ITEMS: &[&str] =
    &["BODY.PEEK[HEADER]", "RFC822.HEADER", "BODY.PEEK[]", "BODY.PEEK[1]", "BODY.PEEK[TEXT]"];
/// Flags and keywords STORE and APPEND pick from.
const FLAGS: &[&str] =
    &["\\Seen", "\\Answered", "\\Flagged", "\\Draft", "$Label1", "$Label2", "$Junk", "$Work"];

/// Runs the scenario.
pub async fn run(ctx: &Ctx, opts: &StateMachineOpts) -> anyhow::Result<Report> {
    let clients = opts.clients.max(1);
    let accounts = opts.accounts.clamp(1, ctx.users.count.max(1));
    let params = json!({"clients": clients, "duration_s": opts.duration, "msgs": opts.msgs,
        "accounts": accounts, "seed": ctx.seed, "rate": opts.rate});
    let mut report = ctx.report("statemachine", params);
    for i in 0..accounts {
        fill_inbox(ctx, i, opts.msgs).await?;
    }
    let probe = ctx.login(0).await?;
    report.capabilities = probe.capabilities().to_vec();
    probe.logout().await?;

    let corpus = Arc::new(mixed_corpus(ctx.seed));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(opts.duration);
    let mut workers = Vec::new();
    for i in 0..clients {
        let ctx = ctx.clone();
        let corpus = Arc::clone(&corpus);
        let msgs = u64::from(opts.msgs);
        let pacer = Pacer::new(opts.rate, clients, i as f64 / clients as f64);
        workers.push(tokio::spawn(async move {
            worker(&ctx, i, i % accounts, msgs, deadline, &corpus, pacer).await
        }));
    }
    let results = timed_bar(ctx, "statemachine", Duration::from_secs(opts.duration), async {
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
    let (mut sessions, mut connection_errors) = (0u64, 0u64);
    for r in results {
        let w = r?;
        rec.merge(&w.rec);
        counters.push(w.counters);
        sessions += w.sessions;
        connection_errors += w.connection_errors;
    }
    // Figures of other client counts get their own keys, so one comparison can hold both.
    let prefix = match (clients, opts.rate) {
        (50, None) => "statemachine".to_owned(),
        (c, None) => format!("statemachine.c{c}"),
        (c, Some(r)) => format!("statemachine.c{c}.r{r}"),
    };
    report.push_ops(&prefix, &rec, elapsed, |name| name != "CONNECT");
    report.push(format!("{prefix}.sessions"), Some(sessions as f64), "count", Better::Neither);
    report.push(
        format!("{prefix}.connection_errors"),
        Some(connection_errors as f64),
        "count",
        Better::Neither,
    );
    report.set_counters(&merge_counters(&counters));
    Ok(report)
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
    account: usize,
    msgs: u64,
    deadline: Instant,
    corpus: &Corpus,
    mut pacer: Pacer,
) -> WorkerResult {
    let mut rng = Rng::derive(ctx.seed, index as u64);
    let mut out = WorkerResult {
        rec: Recorder::default(),
        counters: Counters::default(),
        sessions: 0,
        connection_errors: 0,
    };
    let user = ctx.users.name(account);
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
        let mut walk =
            Walk { client: &mut client, rec: &mut out.rec, rng: &mut rng, exists: 0, pacer: &mut pacer };
        match walk.run(ctx, &user, msgs, corpus, &mut append_index).await {
            Ok(()) => {
                let t = Instant::now();
                match client.logout().await {
                    Ok(c) => {
                        out.rec.record("LOGOUT", t.elapsed(), true);
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

/// One session's walk through the states.
struct Walk<'a> {
    client: &'a mut Client,
    rec: &'a mut Recorder,
    rng: &'a mut Rng,
    /// Messages in the selected mailbox as this session knows it.
    exists: u64,
    /// When the next command may go.
    pacer: &'a mut Pacer,
}

/// A command to send: its name in the figures, its text, and a literal that follows it.
type Planned<'m> = (&'static str, String, Option<&'m [u8]>);

/// A command sent and not yet completed.
struct Pending {
    name: &'static str,
    tag: String,
    sent: Instant,
}

impl Walk<'_> {
    async fn run(
        &mut self,
        ctx: &Ctx,
        user: &str,
        msgs: u64,
        corpus: &Corpus,
        append_index: &mut u64,
    ) -> Result<(), ClientError> {
        self.pacer.pace(1).await;
        let t = Instant::now();
        let login = self.client.login(user, &ctx.users.password).await;
        self.record("LOGIN", t, &login);
        let login = login?;
        if !login.is_ok() {
            return Err(ClientError::Protocol(format!("LOGIN refused: {}", login.text)));
        }

        // LIST, STATUS and SELECT go together: none depends on another's answer.
        let mut plan: Vec<Planned<'_>> = Vec::new();
        if self.rng.percent(50) {
            plan.push(("LIST", "LIST \"\" *".into(), None));
        }
        if self.rng.percent(50) {
            plan.push(("STATUS", "STATUS \"INBOX\" (MESSAGES UNSEEN RECENT)".into(), None));
        }
        let condstore = if self.client.has_capability("CONDSTORE") { " (CONDSTORE)" } else { "" };
        plan.push(("SELECT", format!("SELECT \"INBOX\"{condstore}"), None));
        let batch = self.send_all(plan).await?;
        self.complete(batch).await?;

        // The selected state: everything up to APPEND in one go, since sequence numbers stay
        // valid until our own EXPUNGE (RFC 9051 §7.5.1 keeps other sessions' expunges out of
        // FETCH and STORE responses).
        let mut plan: Vec<Planned<'_>> = Vec::new();
        let n = self.exists;
        if n > 0 {
            let set = self.random_set(n.min(100));
            let items = self.fetch_items();
            plan.push(("FETCH", format!("FETCH {set} ({items})"), None));
            loop {
                let seq = self.rng.range(1, n);
                let item = self.rng.pick(FETCH2_ITEMS).copied().unwrap_or("BODY.PEEK[]");
                plan.push(("FETCH2", format!("FETCH {seq} (UID {item})"), None));
                if !self.rng.percent(30) {
                    break;
                }
            }
            if self.rng.percent(50) {
                let count = self.rng.below(if n < 10 { n } else { (n / 5).min(50) });
                if count > 0 {
                    let set = self.random_set(count);
                    let sign = ["+", "-", ""][self.rng.below(3) as usize];
                    let silent = if self.rng.percent(50) { ".SILENT" } else { "" };
                    let flags = self.random_flags();
                    plan.push(("STORE", format!("STORE {set} {sign}FLAGS{silent} ({flags})"), None));
                }
            }
            let count = if n > msgs + 5 { self.rng.below(n - msgs) } else { self.rng.below(5) };
            if count > 0 {
                let set = self.random_set(count);
                let silent = if self.rng.percent(50) { ".SILENT" } else { "" };
                plan.push(("DELETE", format!("STORE {set} +FLAGS{silent} (\\Deleted)"), None));
            }
            plan.push(("EXPUNGE", "EXPUNGE".into(), None));
        }
        let mut appends = Vec::new();
        if n < msgs {
            loop {
                let message = corpus.get(*append_index);
                *append_index += 1;
                let flags = if self.rng.percent(50) { self.random_flags() } else { String::new() };
                let date = self.rng.percent(50);
                appends.push((message, flags, date));
                if !self.rng.percent(5) {
                    break;
                }
            }
        }
        if self.client.has_capability("LITERAL+") {
            for (message, flags, date) in &appends {
                let flags = if flags.is_empty() { String::new() } else { format!(" ({flags})") };
                let date = if *date { " \"06-Dec-2026 10:00:00 +0000\"" } else { "" };
                let cmd = format!("APPEND \"INBOX\"{flags}{date} {{{}+}}", message.len());
                plan.push(("APPEND", cmd, Some(*message)));
            }
            appends.clear();
        }
        let batch = self.send_all(plan).await?;
        self.complete(batch).await?;
        // Without LITERAL+ each literal waits for "+", so these go one by one.
        for (message, flags, _) in appends {
            self.pacer.pace(1).await;
            let t = Instant::now();
            let r = self.client.append("INBOX", &flags, &[message]).await;
            self.record("APPEND", t, &r);
            r?;
        }
        Ok(())
    }

    fn random_set(&mut self, count: u64) -> String {
        random_set(self.rng, self.exists, count)
    }

    /// One to four FETCH items; a quarter of them a HEADER.FIELDS of one to four fields.
    fn fetch_items(&mut self) -> String {
        let mut items = Vec::new();
        for _ in 0..self.rng.range(1, 4) {
            if self.rng.percent(75) {
                items.push(self.rng.pick(FETCH_ITEMS).copied().unwrap_or("UID").to_owned());
            } else {
                let fields: Vec<&str> =
                    (0..self.rng.range(1, 4)).filter_map(|_| self.rng.pick(HEADER_FIELDS).copied()).collect();
                items.push(format!("BODY.PEEK[HEADER.FIELDS ({})]", fields.join(" ")));
            }
        }
        items.join(" ")
    }

    /// One to three flags or keywords.
    fn random_flags(&mut self) -> String {
        let mut flags: Vec<&str> =
            (0..self.rng.range(1, 3)).filter_map(|_| self.rng.pick(FLAGS).copied()).collect();
        flags.sort_unstable();
        flags.dedup();
        flags.join(" ")
    }

    /// Sends the planned commands back to back (pipelined), after waiting for their slots
    /// when the load is paced.
    async fn send_all(&mut self, plan: Vec<Planned<'_>>) -> Result<Vec<Pending>, ClientError> {
        self.pacer.pace(u32::try_from(plan.len()).unwrap_or(u32::MAX)).await;
        let mut sent = Vec::with_capacity(plan.len());
        for (name, cmd, literal) in plan {
            let at = Instant::now();
            let tag = self.client.send(&cmd, literal).await?;
            sent.push(Pending { name, tag, sent: at });
        }
        Ok(sent)
    }

    /// Reads the completions of `batch` in order, following EXISTS and EXPUNGE.
    async fn complete(&mut self, batch: Vec<Pending>) -> Result<(), ClientError> {
        for p in batch {
            let mut exists = self.exists;
            let r = self
                .client
                .complete(&p.tag, &mut |d| match d.keyword {
                    b"EXISTS" => exists = d.number.map_or(exists, u64::from),
                    b"EXPUNGE" => exists = exists.saturating_sub(1),
                    _ => {}
                })
                .await;
            self.exists = exists;
            self.record(p.name, p.sent, &r);
            r?;
        }
        Ok(())
    }

    fn record(&mut self, name: &'static str, since: Instant, r: &Result<Done, ClientError>) {
        let ok = matches!(r, Ok(d) if d.is_ok());
        self.rec.record(name, since.elapsed(), ok);
    }
}

/// A random message set of up to `count` distinct sequence numbers in `1..=exists`, written as
/// ranges (`2:4,9`).
fn random_set(rng: &mut Rng, exists: u64, count: u64) -> String {
    let mut seqs: Vec<u64> = (0..count).map(|_| rng.range(1, exists)).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let mut out = String::new();
    let mut i = 0;
    while let Some(&first) = seqs.get(i) {
        let mut last = first;
        while seqs.get(i + 1) == Some(&(last + 1)) {
            last += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&first.to_string());
        if last != first {
            out.push(':');
            out.push_str(&last.to_string());
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_ranges_within_the_mailbox() {
        let mut rng = Rng::new(7);
        let set = random_set(&mut rng, 30, 100);
        let mut seen = Vec::new();
        for part in set.split(',') {
            let (a, b) = part.split_once(':').unwrap_or((part, part));
            let (a, b): (u64, u64) = (a.parse().expect("a number"), b.parse().expect("a number"));
            assert!(1 <= a && a <= b && b <= 30, "{set}");
            seen.extend(a..=b);
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{set}");
        assert!(seen.len() > 20, "100 draws from 30 cover most of them: {set}");
        assert_eq!(random_set(&mut rng, 5, 0), "");
    }
}
