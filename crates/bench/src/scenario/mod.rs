//! The scenarios and what they share: the target, the accounts, the seed, progress display.
//!
//! Each scenario module exposes an options struct (clap arguments) and an async `run` that
//! returns a [`Report`]. Scenarios only talk IMAP, so they work against any server.

pub mod append;
pub mod big;
pub mod fill;
pub mod handshakes;
pub mod idle;
pub mod mixed;
pub mod statemachine;

use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::{Client, Counters, Target};
use crate::report::Report;

/// The accounts the benchmark logs in as: `pattern` with `{n}` replaced by 1..=count.
#[derive(Debug, Clone)]
pub struct Users {
    /// Login name pattern, e.g. `bench{n}`.
    pub pattern: String,
    /// Number of accounts.
    pub count: usize,
    /// The one password they share.
    pub password: String,
}

impl Users {
    /// The login name for worker `index` (accounts are reused round-robin).
    pub fn name(&self, index: usize) -> String {
        let n = index % self.count.max(1) + 1;
        self.pattern.replace("{n}", &n.to_string())
    }
}

/// Everything a scenario needs besides its own options.
#[derive(Clone)]
pub struct Ctx {
    /// Where the IMAP server listens (plain or implicit TLS).
    pub target: Target,
    /// The implicit-TLS listener, when known (for the handshake scenario).
    pub tls_target: Option<Target>,
    /// Accounts.
    pub users: Users,
    /// Seed of every random choice and of the corpus.
    pub seed: u64,
    /// Label written into the report.
    pub label: String,
    /// Show progress bars.
    pub progress: bool,
}

impl Ctx {
    /// Connects and logs in as account `index`; a refused login is an error.
    pub async fn login(&self, index: usize) -> anyhow::Result<Client> {
        let mut client = Client::connect(&self.target)
            .await
            .with_context(|| format!("connecting to {}:{}", self.target.host, self.target.port))?;
        let user = self.users.name(index);
        let done =
            client.login(&user, &self.users.password).await.with_context(|| format!("LOGIN {user}"))?;
        if !done.is_ok() {
            bail!("LOGIN {user} refused: {:?} {}", done.status, done.text);
        }
        Ok(client)
    }

    /// An empty report for `scenario` with the common fields filled.
    pub fn report(&self, scenario: &str, params: serde_json::Value) -> Report {
        Report {
            scenario: scenario.to_owned(),
            label: self.label.clone(),
            target: format!("{}:{}", self.target.host, self.target.port),
            capabilities: Vec::new(),
            params,
            protocol_errors: 0,
            first_protocol_error: None,
            figures: Vec::new(),
        }
    }

    /// A progress bar of `len` steps (hidden when progress is off or stderr is no terminal).
    pub fn bar(&self, len: u64, what: &str) -> ProgressBar {
        let bar = if self.progress {
            ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        let style =
            ProgressStyle::with_template("{prefix:>14} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(what.to_owned());
        bar
    }
}

/// Runs `work` with a progress bar that ticks once per second over `duration`.
pub async fn timed_bar<F: std::future::Future>(
    ctx: &Ctx,
    what: &str,
    duration: Duration,
    work: F,
) -> F::Output {
    let bar = ctx.bar(duration.as_secs().max(1), what);
    let ticker = {
        let bar = bar.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.tick().await;
            loop {
                every.tick().await;
                bar.inc(1);
            }
        })
    };
    let out = work.await;
    ticker.abort();
    bar.finish_and_clear();
    out
}

/// Spreads one client's commands evenly over time, for an offered load that does not depend on
/// the server's speed (an open loop): with `--rate`, every server gets the same commands per
/// second, so their latencies are compared at equal load. Without a rate the client sends its
/// next command as soon as the last one completed (a closed loop, where a faster server is
/// given more work and its latency measured under a heavier load).
pub struct Pacer {
    interval: Option<Duration>,
    next: tokio::time::Instant,
}

impl Pacer {
    /// A pacer for one of `clients` clients sharing `rate` commands per second (`None`: no
    /// pacing). `offset` in 0..1 staggers the clients so that they do not send in step.
    pub fn new(rate: Option<f64>, clients: usize, offset: f64) -> Pacer {
        let interval = rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(clients.max(1) as f64 / r));
        let start = tokio::time::Instant::now()
            + interval.map_or(Duration::ZERO, |i| i.mul_f64(offset.clamp(0.0, 1.0)));
        Pacer { interval, next: start }
    }

    /// Waits for the time slot of the next `commands` commands. A client that fell behind
    /// (a slow answer) does not sleep and does not catch up with a burst either.
    pub async fn pace(&mut self, commands: u32) {
        let Some(interval) = self.interval else { return };
        let now = tokio::time::Instant::now();
        if self.next > now {
            tokio::time::sleep_until(self.next).await;
        } else {
            self.next = now;
        }
        self.next += interval * commands;
    }
}

/// Merges counters from finished workers.
pub fn merge_counters<'a>(parts: impl IntoIterator<Item = &'a Counters>) -> Counters {
    let mut total = Counters::default();
    for c in parts {
        total.merge(c);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pacer_spreads_commands_over_time() {
        // 100 commands/s for one client: ten slots take at least 90 ms (a lower bound only).
        let mut pacer = Pacer::new(Some(100.0), 1, 0.0);
        let start = std::time::Instant::now();
        for _ in 0..10 {
            pacer.pace(1).await;
        }
        assert!(start.elapsed() >= Duration::from_millis(90), "{:?}", start.elapsed());
        // Without a rate there is no schedule at all.
        assert!(Pacer::new(None, 50, 0.5).interval.is_none());
        assert!(Pacer::new(Some(0.0), 50, 0.5).interval.is_none());
    }

    #[test]
    fn user_names_cycle() {
        let users = Users { pattern: "bench{n}".into(), count: 3, password: "p".into() };
        assert_eq!(users.name(0), "bench1");
        assert_eq!(users.name(2), "bench3");
        assert_eq!(users.name(3), "bench1");
        let zero = Users { count: 0, ..users };
        assert_eq!(zero.name(5), "bench1");
    }
}
