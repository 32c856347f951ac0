//! `postfach status`: the metrics for a person. Asks the running server's endpoint (`--address`,
//! else `[metrics] listen`) and summarises the exposition; without one (not configured, port 0,
//! or not answering) it prints what the store alone knows: accounts, messages, database size,
//! index backlog.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::config::Config;
use crate::metrics;
use crate::quota::human_bytes;

/// Samples of an exposition: metric name → (labels as written, value).
pub(crate) type Samples = BTreeMap<String, Vec<(String, f64)>>;

pub(crate) async fn run(config: &Config, address: Option<SocketAddr>, json: bool) -> anyhow::Result<()> {
    // Notes go to standard error with --json, so standard output is one JSON document.
    let note = |text: String| if json { eprintln!("postfach: {text}") } else { println!("{text}") };
    let target = address.or(config.metrics.listen).filter(|a| a.port() != 0).map(reachable);
    if let Some(addr) = target {
        match metrics::get(addr, "/metrics").await {
            Ok((200, body)) => {
                let health = match metrics::get(addr, "/health").await {
                    Ok((200, _)) => "ok".to_owned(),
                    Ok((code, _)) => format!("failing (HTTP {code})"),
                    Err(e) => format!("unknown ({e})"),
                };
                let samples = parse(&body);
                if json {
                    let samples: BTreeMap<&String, Vec<serde_json::Value>> = samples
                        .iter()
                        .map(|(name, values)| {
                            let values = values
                                .iter()
                                .map(|(labels, value)| serde_json::json!({"labels": labels, "value": value}))
                                .collect();
                            (name, values)
                        })
                        .collect();
                    let doc = serde_json::json!({
                        "source": "endpoint", "address": addr.to_string(), "health": health, "samples": samples,
                    });
                    return crate::admin_output::print_json(&doc);
                }
                print!("{}", summary(&samples, addr, &health));
                return Ok(());
            }
            Ok((code, _)) => {
                note(format!("the metrics endpoint {addr} answered HTTP {code}; reading the store instead"))
            }
            Err(e) => {
                note(format!("no answer from the metrics endpoint {addr} ({e}); reading the store instead"))
            }
        }
    } else {
        note("no metrics endpoint configured ([metrics] listen); reading the store".to_owned());
    }
    let store = crate::open_store(config).await?;
    let totals = store.totals().await?;
    let backlog = store.text_backlog().await?;
    if json {
        return crate::admin_output::print_json(&serde_json::json!({
            "source": "store",
            "accounts": totals.accounts,
            "messages": totals.messages,
            "bytes": totals.bytes,
            "database_bytes": store.storage_bytes().await?,
            "backend": store.backend(),
            "index_backlog": backlog,
            "quota": {
                "accounts_with_limit": totals.accounts_with_limit,
                "accounts_above_90_percent": totals.accounts_above_90_percent,
                "accounts_full": totals.accounts_full,
            },
        }));
    }
    println!("accounts:      {}", totals.accounts);
    println!("messages:      {} ({})", totals.messages, human_bytes(totals.bytes));
    let where_ = if store.sqlite().is_some() {
        config.data_dir.display().to_string()
    } else {
        "PostgreSQL".to_owned()
    };
    println!("database:      {} ({where_})", human_bytes(store.storage_bytes().await?));
    println!("index backlog: {backlog} messages");
    if totals.accounts_with_limit > 0 {
        println!(
            "quota:         {} of {} accounts with a limit at 90 % or more, {} full",
            totals.accounts_above_90_percent, totals.accounts_with_limit, totals.accounts_full
        );
    }
    Ok(())
}

/// Where to connect for a listen address: the wildcard addresses mean "this host".
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// Reads `name{labels} value` lines; comments and anything else are skipped.
pub(crate) fn parse(text: &str) -> Samples {
    let mut samples = Samples::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        samples.entry(name.to_owned()).or_default().push((labels.to_owned(), value));
    }
    samples
}

/// The value of `label="..."` in a label text.
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let rest = &labels[start..];
    Some(&rest[..rest.find('"')?])
}

fn total(samples: &Samples, name: &str, filter: impl Fn(&str) -> bool) -> f64 {
    samples.get(name).map_or(0.0, |v| v.iter().filter(|(l, _)| filter(l)).map(|(_, n)| n).sum())
}

pub(crate) fn one(samples: &Samples, name: &str) -> f64 {
    total(samples, name, |_| true)
}

pub(crate) fn summary(s: &Samples, addr: SocketAddr, health: &str) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let up = one(s, "postfach_uptime_seconds") as u64;
    line(format!("Postfach at {addr}: health {health}, up {}h {:02}m", up / 3600, up / 60 % 60));
    // POP3 is off by default: its kinds are shown once it has had a connection.
    let kinds: Vec<&str> = ["imap", "imaps", "lmtp", "pop3", "pop3s"]
        .into_iter()
        .filter(|k| {
            !k.starts_with("pop3")
                || total(s, "postfach_connections_total", |l| label(l, "kind") == Some(k)) > 0.0
        })
        .collect();
    let by_kind = |name: &str| {
        kinds
            .iter()
            .map(|k| format!("{k} {}", total(s, name, |l| label(l, "kind") == Some(k))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    line(format!(
        "connections:   open {}; since start {}",
        by_kind("postfach_connections_open"),
        by_kind("postfach_connections_total")
    ));
    let logins = |result: &str| total(s, "postfach_logins_total", |l| label(l, "result") == Some(result));
    line(format!(
        "logins:        {} ok, {} failed, {} throttled, {} blocked, {} errors",
        logins("ok"),
        logins("fail"),
        logins("throttled"),
        logins("blocked"),
        logins("error")
    ));
    let mut commands: Vec<(String, f64, f64)> = s
        .get("postfach_command_duration_seconds_count")
        .into_iter()
        .flatten()
        .filter_map(|(l, n)| {
            let name = label(l, "command")?.to_owned();
            let sum =
                total(s, "postfach_command_duration_seconds_sum", |o| label(o, "command") == Some(&name));
            Some((name, *n, sum))
        })
        .collect();
    commands.sort_by(|a, b| b.1.total_cmp(&a.1));
    let all: f64 = commands.iter().map(|c| c.1).sum();
    let top: Vec<String> = commands
        .iter()
        .take(5)
        .map(|(name, n, sum)| {
            format!("{name} {n} (avg {:.2} ms)", if *n > 0.0 { sum / n * 1000.0 } else { 0.0 })
        })
        .collect();
    line(format!("commands:      {all}{}{}", if top.is_empty() { "" } else { "; " }, top.join(", ")));
    let deliveries: Vec<String> = s
        .get("postfach_deliveries_total")
        .into_iter()
        .flatten()
        .filter(|(_, n)| *n > 0.0)
        .filter_map(|(l, n)| Some(format!("{n} {}", label(l, "result")?.replace('_', " "))))
        .collect();
    line(format!(
        "deliveries:    {}",
        if deliveries.is_empty() { "none".to_owned() } else { deliveries.join(", ") }
    ));
    let commits = one(s, "postfach_store_commits_total");
    let commit_sum = one(s, "postfach_store_commit_duration_seconds_sum");
    let batch_sum = one(s, "postfach_store_commit_batch_size_sum");
    let per = |v: f64| if commits > 0.0 { v / commits } else { 0.0 };
    line(format!(
        "store:         {commits} commits, avg {:.2} ms, avg {:.1} writes each; database {}",
        per(commit_sum) * 1000.0,
        per(batch_sum),
        human_bytes(one(s, "postfach_store_disk_bytes") as u64)
    ));
    line(format!("index backlog: {} messages", one(s, "postfach_index_backlog_messages")));
    line(format!("outbound queue: {} messages waiting", one(s, "postfach_queue_messages")));
    line(format!(
        "accounts:      {}; messages {} ({})",
        one(s, "postfach_accounts"),
        one(s, "postfach_messages"),
        human_bytes(one(s, "postfach_quota_used_bytes") as u64)
    ));
    let limited = one(s, "postfach_quota_limited_accounts");
    if limited > 0.0 {
        line(format!(
            "quota:         {} of {limited} accounts with a limit at 90 % or more, {} full",
            one(s, "postfach_quota_above_90_percent_accounts"),
            one(s, "postfach_quota_full_accounts")
        ));
    }
    let cleaned =
        |kind: &str| total(s, "postfach_cleanup_expunged_total", |l| label(l, "mailbox") == Some(kind));
    line(format!(
        "clean-up:      {} passes; expunged {} from Trash, {} from Junk",
        one(s, "postfach_cleanup_passes_total"),
        cleaned("trash"),
        cleaned("junk")
    ));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_exposition_becomes_a_summary() {
        let text = "# HELP x y\npostfach_uptime_seconds 3720\n\
                    postfach_logins_total{mechanism=\"LOGIN\",result=\"ok\"} 3\n\
                    postfach_logins_total{mechanism=\"AUTH=PLAIN\",result=\"ok\"} 2\n\
                    postfach_logins_total{mechanism=\"LOGIN\",result=\"fail\"} 1\n\
                    postfach_command_duration_seconds_count{command=\"NOOP\"} 4\n\
                    postfach_command_duration_seconds_sum{command=\"NOOP\"} 0.004\n\
                    postfach_deliveries_total{result=\"over_quota\"} 2\n";
        let out = summary(&parse(text), "127.0.0.1:9464".parse().unwrap(), "ok");
        assert!(out.contains("health ok, up 1h 02m"), "{out}");
        assert!(out.contains("logins:        5 ok, 1 failed"), "{out}");
        assert!(out.contains("commands:      4; NOOP 4 (avg 1.00 ms)"), "{out}");
        assert!(out.contains("deliveries:    2 over quota"), "{out}");
    }
}
