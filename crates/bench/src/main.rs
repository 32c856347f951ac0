//! `postfach-bench`: a load generator for any IMAP server, and the comparison of its results.
//!
//! Each scenario subcommand (`mixed`, `append`, `big-mailbox`, `idle`, `handshakes`) drives the
//! server named by the global options, prints a table and, with `--json FILE`, writes a
//! `Report`. `compare` reads such reports from two servers (several runs each) and
//! prints the medians side by side with their ratio. Everything random comes from `--seed`.
//! The pieces live in the library half of this crate (`postfach_bench`).
//!
//! Limits: Linux for the memory figures. The tool accepts any server certificate only with
//! `--insecure` (the default on loopback), since it is a load tool, not a mail client.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rustls::pki_types::ServerName;

use postfach_bench::client::{Target, TlsTarget, Verification, tls_config};
use postfach_bench::report::{Report, Row, compare, comparison_table};
use postfach_bench::scenario::{self, Ctx, Users};

/// Load generator for IMAP servers.
#[derive(Debug, Parser)]
#[command(name = "postfach-bench", version)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every scenario.
#[derive(Debug, clap::Args)]
struct Global {
    /// Server host.
    #[arg(long, global = true, default_value = "127.0.0.1")]
    host: String,
    /// Server port (cleartext IMAP, or implicit TLS with --tls).
    #[arg(long, global = true, default_value_t = 143)]
    port: u16,
    /// Use implicit TLS on --port for every scenario.
    #[arg(long, global = true)]
    tls: bool,
    /// Implicit-TLS port for the TLS handshake measurement (defaults to --port with --tls).
    #[arg(long, global = true)]
    tls_port: Option<u16>,
    /// Accept any server certificate (the default when --host is a loopback address).
    #[arg(long, global = true)]
    insecure: bool,
    /// Trust the certificates in this PEM file instead.
    #[arg(long, global = true, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Login name pattern; `{n}` becomes 1..=--users.
    #[arg(long, global = true, default_value = "bench{n}")]
    user_pattern: String,
    /// Number of accounts matching the pattern.
    #[arg(long, global = true, default_value_t = 50)]
    users: usize,
    /// Password of every account.
    #[arg(long, global = true, default_value = "benchpass")]
    password: String,
    /// Seed of all random choices and of the corpus.
    #[arg(long, global = true, default_value_t = 1)]
    seed: u64,
    /// Seconds to wait for any single response.
    #[arg(long, global = true, default_value_t = 600)]
    timeout: u64,
    /// Write the result as JSON to this file.
    #[arg(long, global = true, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Label stored in the JSON (e.g. the server's name).
    #[arg(long, global = true, default_value = "server")]
    label: String,
    /// No progress bars.
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// N clients running a weighted mix of IMAP commands.
    Mixed(scenario::mixed::MixedOpts),
    /// N clients walking a stress tester's random state machine over one shared mailbox.
    Statemachine(scenario::statemachine::StateMachineOpts),
    /// APPEND throughput from 1 and from N clients.
    Append(scenario::append::AppendOpts),
    /// Whole-mailbox operations on very large mailboxes.
    BigMailbox(scenario::big::BigOpts),
    /// Gives every account an INBOX of N messages (an installation that holds mail).
    Fill(scenario::fill::FillOpts),
    /// Server memory per idle (IDLE) connection.
    Idle(scenario::idle::IdleOpts),
    /// TLS handshakes and logins per second.
    Handshakes(scenario::handshakes::HandshakeOpts),
    /// Compare JSON results of two servers: medians per figure and the ratio A/B.
    Compare(CompareOpts),
}

/// Options of `compare`.
#[derive(Debug, clap::Args)]
struct CompareOpts {
    /// Name of server A (the numerator of the ratio).
    #[arg(long, default_value = "postfach")]
    a_name: String,
    /// Name of server B.
    #[arg(long, default_value = "dovecot")]
    b_name: String,
    /// JSON results of server A (several runs allowed).
    #[arg(long, num_args = 1.., required = true)]
    a: Vec<PathBuf>,
    /// JSON results of server B.
    #[arg(long, num_args = 1.., required = true)]
    b: Vec<PathBuf>,
    /// Also list informational figures (counts, bytes on the wire).
    #[arg(long)]
    all: bool,
    /// Only the headline figures (throughput, memory, big-mailbox medians).
    #[arg(long, conflicts_with = "all")]
    headline: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postfach-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Compare(opts) = &cli.command {
        return run_compare(opts);
    }
    let ctx = context(&cli.global)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let report = runtime.block_on(async {
        match &cli.command {
            Command::Mixed(o) => scenario::mixed::run(&ctx, o).await,
            Command::Statemachine(o) => scenario::statemachine::run(&ctx, o).await,
            Command::Append(o) => scenario::append::run(&ctx, o).await,
            Command::BigMailbox(o) => scenario::big::run(&ctx, o).await,
            Command::Fill(o) => scenario::fill::run(&ctx, o).await,
            Command::Idle(o) => scenario::idle::run(&ctx, o).await,
            Command::Handshakes(o) => scenario::handshakes::run(&ctx, o).await,
            Command::Compare(_) => anyhow::bail!("unreachable: compare runs without a server"),
        }
    })?;
    print!("{}", report.table());
    if let Some(path) = &cli.global.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    // Clients may still be closing; do not wait for stragglers.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn context(g: &Global) -> anyhow::Result<Ctx> {
    let timeout = Duration::from_secs(g.timeout.max(1));
    let tls_port = g.tls_port.or(if g.tls { Some(g.port) } else { None });
    let tls = match tls_port {
        None => None,
        Some(_) => {
            let loopback = g.host == "localhost" || g.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            let verification = match (&g.ca_file, g.insecure || loopback) {
                (Some(path), _) => Verification::CaFile(path),
                (None, true) => Verification::Insecure,
                (None, false) => anyhow::bail!("TLS to a non-loopback host needs --ca-file or --insecure"),
            };
            let config = tls_config(verification)?;
            let server_name =
                ServerName::try_from(g.host.clone()).context("--host is not a valid TLS name")?;
            Some(TlsTarget { config, server_name })
        }
    };
    let plain = Target { host: g.host.clone(), port: g.port, tls: None, timeout, imaplib_style: false };
    let tls_target = match (&tls, tls_port) {
        (Some(t), Some(port)) => Some(Target { port, tls: Some(t.clone()), ..plain.clone() }),
        _ => None,
    };
    let target = if g.tls { tls_target.clone().unwrap_or(plain) } else { plain };
    Ok(Ctx {
        target,
        tls_target,
        users: Users { pattern: g.user_pattern.clone(), count: g.users.max(1), password: g.password.clone() },
        seed: g.seed,
        label: g.label.clone(),
        progress: !g.quiet,
    })
}

fn run_compare(opts: &CompareOpts) -> anyhow::Result<()> {
    let load = |paths: &[PathBuf]| -> anyhow::Result<Vec<Report>> {
        paths
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
            })
            .collect()
    };
    let a = load(&opts.a)?;
    let b = load(&opts.b)?;
    let rows = compare(&a, &b);
    let (all, headline) = (opts.all, opts.headline);
    let filter = move |r: &Row| {
        if headline {
            return is_headline(&r.key);
        }
        all || r.unit != "count" && r.unit != "KiB" || r.key.contains("per_conn")
    };
    print!("{}", comparison_table(&rows, &opts.a_name, &opts.b_name, &filter));
    let errors_a: u64 = a.iter().map(|r| r.protocol_errors).sum();
    let errors_b: u64 = b.iter().map(|r| r.protocol_errors).sum();
    println!("\nprotocol errors: {} {errors_a}, {} {errors_b}", opts.a_name, opts.b_name);
    Ok(())
}

/// The figures the goals are stated in: mixed throughput, idle memory, APPEND rates,
/// big-mailbox medians, handshake and login rates.
fn is_headline(key: &str) -> bool {
    key.ends_with(".total.cmd_per_s")
        || key.starts_with("idle.pss")
        || key.starts_with("append.") && key.ends_with("_per_s")
        || key.starts_with("big.") && (key.ends_with(".median_ms") || key.ends_with("fill_msg_per_s"))
        || key.starts_with("handshakes.") && key.ends_with(".per_s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headline_selection() {
        assert!(is_headline("mixed.total.cmd_per_s"));
        assert!(is_headline("idle.pss_kib_per_conn"));
        assert!(is_headline("append.c10.mib_per_s"));
        assert!(is_headline("big.100000.uid_search_text.median_ms"));
        assert!(is_headline("handshakes.tls.per_s"));
        assert!(!is_headline("mixed.FETCH.p99_ms"));
        assert!(!is_headline("big.10000.select.first_ms"));
        assert!(!is_headline("idle.rss_kib_per_conn"));
    }
}
