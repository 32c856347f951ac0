//! Metrics and health (issue 14): counters the connection drivers feed, the Prometheus text
//! exposition, and the small HTTP listener that serves `/metrics` and `/health`.
//!
//! Hand-rolled rather than `metrics` + `metrics-exporter-prometheus`: `/health` must answer from
//! a store read, which the exporter's listener cannot serve (it answers the exposition on every
//! path), so a listener of our own was needed anyway; the set of metrics is small and fixed; and
//! the exporter with its listener brings hyper, hyper-util, metrics-util, quanta and
//! crossbeam into a tree that has none of them. What is counted lives where it happens, as
//! atomics: connections and commands here, logins in `postfach_auth` (`AttemptCounts`),
//! deliveries in `postfach_delivery` (`DeliveryCounts`), commits in the store's writer
//! (`WriterStats`); a scrape reads them all and asks the store two small questions (index
//! backlog, totals).
//!
//! Quota usage is exported as totals (bytes, messages, accounts) and as counts of accounts with
//! a limit that are at or above 90 % and at 100 %, not per account: a series per account would
//! be one per mailbox owner (tens of thousands), most of them unlimited, and `postfach quota
//! show NAME` answers for one account.
//!
//! The HTTP side is HTTP/1.0-style: one request per connection, `Connection: close`, GET or
//! HEAD, a request head of at most 8 KiB read within 10 s, at most 16 connections at once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use postfach_delivery::Deliverer;
use postfach_imap::ServerContext;
use postfach_store::Store;
use postfach_store::stats::{Histogram, HistogramSnapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

use crate::imap_conn::shutdown_requested;

/// Upper bounds of the command-latency histogram, seconds: most commands take well under a
/// millisecond; a SEARCH over a large mailbox or a big APPEND takes seconds.
const COMMAND_SECONDS_BOUNDS: &[f64] =
    &[0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Longest request head the listener reads.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Time a client has to send its request and take the answer.
const HTTP_DEADLINE: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the kernel's backlog.
const HTTP_CONNECTIONS: usize = 16;
/// Longest `/health` waits for the store.
const HEALTH_DEADLINE: Duration = Duration::from_secs(2);

/// The kinds of connection counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnKind {
    /// IMAP on the cleartext (STARTTLS) port.
    Imap,
    /// IMAP on the implicit-TLS port.
    Imaps,
    /// LMTP (TCP and unix socket).
    Lmtp,
    /// POP3 on the cleartext (STLS) port.
    Pop3,
    /// POP3 on the implicit-TLS port.
    Pop3s,
}

impl ConnKind {
    const ALL: [ConnKind; 5] =
        [ConnKind::Imap, ConnKind::Imaps, ConnKind::Lmtp, ConnKind::Pop3, ConnKind::Pop3s];

    fn name(self) -> &'static str {
        match self {
            ConnKind::Imap => "imap",
            ConnKind::Imaps => "imaps",
            ConnKind::Lmtp => "lmtp",
            ConnKind::Pop3 => "pop3",
            ConnKind::Pop3s => "pop3s",
        }
    }
}

/// What the server counts itself. Shared as `Arc<Metrics>`; every method is atomics (the
/// command table takes a read lock, and a write lock the first time a command name is seen).
#[derive(Debug)]
pub(crate) struct Metrics {
    started: Instant,
    opened: [AtomicU64; ConnKind::ALL.len()],
    open: [AtomicU64; ConnKind::ALL.len()],
    commands: RwLock<BTreeMap<&'static str, Arc<Histogram>>>,
    /// Messages the clean-up expunged, from Trash and from Junk.
    cleaned: [AtomicU64; 2],
    cleanup_passes: AtomicU64,
}

/// Holds a connection's place in the `open` gauge; dropping it gives the place back.
#[derive(Debug)]
pub(crate) struct OpenConnection {
    metrics: Arc<Metrics>,
    kind: usize,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.open[self.kind].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            opened: Default::default(),
            open: Default::default(),
            commands: RwLock::default(),
            cleaned: Default::default(),
            cleanup_passes: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts a new connection; it stays in the `open` gauge while the guard lives.
    pub(crate) fn connection(self: &Arc<Self>, kind: ConnKind) -> OpenConnection {
        let index = kind as usize;
        self.opened[index].fetch_add(1, Ordering::Relaxed);
        self.open[index].fetch_add(1, Ordering::Relaxed);
        OpenConnection { metrics: Arc::clone(self), kind: index }
    }

    /// Records one command's run time under its name (`None`: it did not parse).
    pub(crate) fn command(&self, name: Option<&'static str>, took: Duration) {
        let name = name.unwrap_or("(unparsed)");
        let found = self.commands.read().ok().and_then(|table| table.get(name).cloned());
        let histogram = match found {
            Some(h) => h,
            None => match self.commands.write() {
                Ok(mut table) => Arc::clone(
                    table.entry(name).or_insert_with(|| Arc::new(Histogram::new(COMMAND_SECONDS_BOUNDS))),
                ),
                Err(_) => return,
            },
        };
        histogram.record(took.as_secs_f64());
    }

    /// Counts what one clean-up pass expunged.
    pub(crate) fn cleanup_pass(&self, trash: u64, junk: u64) {
        self.cleaned[0].fetch_add(trash, Ordering::Relaxed);
        self.cleaned[1].fetch_add(junk, Ordering::Relaxed);
        self.cleanup_passes.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything a scrape reads.
pub(crate) struct Sources {
    /// The server's own counters.
    pub(crate) metrics: Arc<Metrics>,
    /// The store (writer figures, backlog, totals, health).
    pub(crate) store: Arc<dyn Store>,
    /// The sessions' context: login attempts are counted by its authenticator.
    pub(crate) ctx: Arc<ServerContext>,
    /// Delivery outcomes.
    pub(crate) deliverer: Arc<Deliverer>,
    /// Scheduled backups' results.
    pub(crate) backups: Arc<crate::backup_schedule::BackupMetrics>,
}

/// Builds the exposition text: `# HELP`/`# TYPE` lines, then `name{labels} value` lines.
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape_label(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        for (bound, count) in &h.buckets {
            let le = bound.to_string();
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, count);
        }
        let mut with_inf = labels.to_vec();
        with_inf.push(("le", "+Inf"));
        self.sample(&bucket, &with_inf, h.count);
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count);
    }
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The whole exposition. Store questions that fail leave their metrics out (and are logged);
/// the counters are always there.
pub(crate) async fn render(sources: &Sources) -> String {
    let mut out = Exposition { text: String::with_capacity(16 * 1024) };
    let m = &sources.metrics;
    out.single(
        "postfach_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        m.started.elapsed().as_secs(),
    );

    out.family("postfach_connections_total", "counter", "Connections accepted, by kind.");
    for kind in ConnKind::ALL {
        out.sample(
            "postfach_connections_total",
            &[("kind", kind.name())],
            m.opened[kind as usize].load(Ordering::Relaxed),
        );
    }
    out.family("postfach_connections_open", "gauge", "Connections open now, by kind.");
    for kind in ConnKind::ALL {
        out.sample(
            "postfach_connections_open",
            &[("kind", kind.name())],
            m.open[kind as usize].load(Ordering::Relaxed),
        );
    }

    out.family(
        "postfach_command_duration_seconds",
        "histogram",
        "IMAP commands by name: time from the parsed command to its last response line.",
    );
    let commands: Vec<(&'static str, HistogramSnapshot)> = match m.commands.read() {
        Ok(table) => table.iter().map(|(name, h)| (*name, h.snapshot())).collect(),
        Err(_) => Vec::new(),
    };
    for (name, h) in &commands {
        out.histogram("postfach_command_duration_seconds", &[("command", name)], h);
    }

    out.family("postfach_logins_total", "counter", "Authentication attempts by mechanism and result.");
    for (mechanism, result, n) in sources.ctx.auth.attempts().snapshot() {
        out.sample("postfach_logins_total", &[("mechanism", mechanism), ("result", result)], n);
    }

    out.family(
        "postfach_deliveries_total",
        "counter",
        "Deliveries (LMTP and `postfach deliver` through the server) per recipient, by result.",
    );
    for (result, n) in sources.deliverer.counts().snapshot() {
        out.sample("postfach_deliveries_total", &[("result", result)], n);
    }

    let writer = sources.store.writer_stats();
    out.single(
        "postfach_store_commits_total",
        "counter",
        "Write transactions committed (one fsync each).",
        writer.commits,
    );
    out.family(
        "postfach_store_commit_duration_seconds",
        "histogram",
        "Time the writer spends on one group: BEGIN, the jobs, COMMIT.",
    );
    out.histogram("postfach_store_commit_duration_seconds", &[], &writer.commit_seconds);
    out.family(
        "postfach_store_commit_batch_size",
        "histogram",
        "Write jobs carried by one commit (group commit).",
    );
    out.histogram("postfach_store_commit_batch_size", &[], &writer.batch_size);
    match sources.store.storage_bytes().await {
        Ok(bytes) => out.single(
            "postfach_store_disk_bytes",
            "gauge",
            "Size of the database (SQLite: main file and write-ahead log; PostgreSQL: the database).",
            bytes,
        ),
        Err(e) => warn!(error = %e, "metrics: cannot read the store's size"),
    }

    match sources.store.text_backlog().await {
        Ok(backlog) => out.single(
            "postfach_index_backlog_messages",
            "gauge",
            "Messages whose full-text entry is not written yet (SEARCH scans them meanwhile).",
            backlog,
        ),
        Err(e) => warn!(error = %e, "metrics: cannot read the index backlog"),
    }
    match sources.store.queue_length().await {
        Ok(waiting) => out.single(
            "postfach_queue_messages",
            "gauge",
            "Messages in the outbound queue (vacation replies, redirects, bounces) not sent yet.",
            waiting,
        ),
        Err(e) => warn!(error = %e, "metrics: cannot read the outbound queue"),
    }
    match sources.store.totals().await {
        Ok(t) => {
            out.single("postfach_accounts", "gauge", "Accounts (users and teams).", t.accounts);
            out.single("postfach_messages", "gauge", "Messages stored, over every account.", t.messages);
            out.single(
                "postfach_quota_used_bytes",
                "gauge",
                "Quota usage over every account (bytes of messages).",
                t.bytes,
            );
            out.single(
                "postfach_quota_limited_accounts",
                "gauge",
                "Accounts with a storage or message limit.",
                t.accounts_with_limit,
            );
            out.single(
                "postfach_quota_above_90_percent_accounts",
                "gauge",
                "Accounts at or above 90 % of a storage or message limit.",
                t.accounts_above_90_percent,
            );
            out.single(
                "postfach_quota_full_accounts",
                "gauge",
                "Accounts at or above 100 % of a limit.",
                t.accounts_full,
            );
        }
        Err(e) => warn!(error = %e, "metrics: cannot read the store's totals"),
    }

    out.family(
        "postfach_cleanup_expunged_total",
        "counter",
        "Messages the automatic clean-up expunged, by mailbox kind.",
    );
    out.sample(
        "postfach_cleanup_expunged_total",
        &[("mailbox", "trash")],
        m.cleaned[0].load(Ordering::Relaxed),
    );
    out.sample(
        "postfach_cleanup_expunged_total",
        &[("mailbox", "junk")],
        m.cleaned[1].load(Ordering::Relaxed),
    );
    out.single(
        "postfach_cleanup_passes_total",
        "counter",
        "Clean-up passes run.",
        m.cleanup_passes.load(Ordering::Relaxed),
    );
    let backups = sources.backups.snapshot();
    out.family("postfach_backups_total", "counter", "Scheduled backups since the start, by result.");
    out.sample("postfach_backups_total", &[("result", "ok")], backups.successes);
    out.sample("postfach_backups_total", &[("result", "failed")], backups.failures);
    if let Some(at) = backups.last_success {
        out.single(
            "postfach_backup_last_success_timestamp_seconds",
            "gauge",
            "Start of the last successful scheduled backup, Unix time.",
            at.unix_timestamp(),
        );
    }
    out.text
}

/// Binds the metrics listener (`None` when `[metrics] listen` is not set).
pub(crate) async fn bind(listen: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = listen else { return Ok(None) };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (metrics): {e}"))?;
    Ok(Some(listener))
}

/// Serves `/metrics` and `/health` until `shutdown`.
pub(crate) async fn serve(listener: TcpListener, sources: Arc<Sources>, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(HTTP_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown_requested(&mut shutdown) => return,
            permit = Arc::clone(&slots).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            _ = shutdown_requested(&mut shutdown) => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let sources = Arc::clone(&sources);
        tokio::spawn(async move {
            if tokio::time::timeout(HTTP_DEADLINE, answer(stream, &sources)).await.is_err() {
                debug!(%peer, "metrics request timed out");
            }
            drop(permit);
        });
    }
}

/// Reads one request and answers it.
async fn answer(mut stream: TcpStream, sources: &Sources) {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        if head.len() > MAX_REQUEST_HEAD {
            let _ = respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"too large\n",
                true,
            )
            .await;
            return;
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let with_body = method != "HEAD";
    if method != "GET" && method != "HEAD" {
        let _ =
            respond(&mut stream, "405 Method Not Allowed", "text/plain", b"GET or HEAD\n", with_body).await;
        return;
    }
    let path = target.split('?').next().unwrap_or_default();
    let _ = match path {
        "/metrics" => {
            let text = render(sources).await;
            respond(
                &mut stream,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                text.as_bytes(),
                with_body,
            )
            .await
        }
        "/health" => {
            let healthy =
                matches!(tokio::time::timeout(HEALTH_DEADLINE, sources.store.ping()).await, Ok(Ok(())));
            if healthy {
                respond(&mut stream, "200 OK", "text/plain", b"ok\n", with_body).await
            } else {
                respond(
                    &mut stream,
                    "503 Service Unavailable",
                    "text/plain",
                    b"store unavailable\n",
                    with_body,
                )
                .await
            }
        }
        _ => {
            respond(&mut stream, "404 Not Found", "text/plain", b"try /metrics or /health\n", with_body).await
        }
    };
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if with_body {
        stream.write_all(body).await?;
    }
    stream.shutdown().await
}

/// A plain `GET path` against a metrics endpoint (for `postfach status`): the status code and
/// the body.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let work = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(HTTP_DEADLINE, work)
        .await
        .map_err(|_| anyhow::anyhow!("{addr} did not answer within {HTTP_DEADLINE:?}"))??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow::anyhow!("not an HTTP answer"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("not an HTTP status line"))?;
    Ok((status, body.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_histograms_follow_the_text_format() {
        let mut out = Exposition { text: String::new() };
        out.family("x_total", "counter", "Help.");
        out.sample("x_total", &[("a", "q\"u\\o\nte")], 3);
        let h = Histogram::new(&[0.5, 1.0]);
        h.record(0.25);
        h.record(2.0);
        out.histogram("d_seconds", &[("command", "FETCH")], &h.snapshot());
        assert_eq!(
            out.text,
            "# HELP x_total Help.\n# TYPE x_total counter\nx_total{a=\"q\\\"u\\\\o\\nte\"} 3\n\
             d_seconds_bucket{command=\"FETCH\",le=\"0.5\"} 1\n\
             d_seconds_bucket{command=\"FETCH\",le=\"1\"} 1\n\
             d_seconds_bucket{command=\"FETCH\",le=\"+Inf\"} 2\n\
             d_seconds_sum{command=\"FETCH\"} 2.25\n\
             d_seconds_count{command=\"FETCH\"} 2\n"
        );
    }

    #[test]
    fn connections_and_commands_are_counted() {
        let m = Arc::new(Metrics::default());
        let a = m.connection(ConnKind::Imaps);
        let b = m.connection(ConnKind::Imaps);
        drop(a);
        assert_eq!(m.opened[1].load(Ordering::Relaxed), 2);
        assert_eq!(m.open[1].load(Ordering::Relaxed), 1);
        drop(b);
        assert_eq!(m.open[1].load(Ordering::Relaxed), 0);
        m.command(Some("NOOP"), Duration::from_micros(50));
        m.command(Some("NOOP"), Duration::from_millis(3));
        m.command(None, Duration::from_millis(1));
        let table = m.commands.read().unwrap();
        assert_eq!(table["NOOP"].snapshot().count, 2);
        assert_eq!(table["(unparsed)"].snapshot().count, 1);
    }
}
