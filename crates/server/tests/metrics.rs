//! The metrics endpoint and `/health` (issue 14), scraped while clients log in, run commands and
//! deliver over LMTP; and `postfach status` reading the same for a person.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Client, PATIENCE, TestServer};

const PASSWORD: &str = "metrics-test-pw";

/// GET `path`; the status code and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// Parses the exposition strictly: every line is a comment (`# HELP`/`# TYPE`) or
/// `name{labels} value` with a valid name, well-formed labels and a number. Returns
/// `name{labels}` → value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let (kind, name) = (words.next().unwrap(), words.next().unwrap());
            assert!(matches!(kind, "HELP" | "TYPE"), "bad comment: {line}");
            assert!(name_ok(name), "bad name in: {line}");
            if kind == "TYPE" {
                assert!(matches!(words.next(), Some("counter" | "gauge" | "histogram")), "{line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line:?}"));
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
                // key="value" pairs, values with \" escapes only.
                let mut rest = labels;
                while !rest.is_empty() {
                    let (key, after) =
                        rest.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line:?}"));
                    assert!(name_ok(key), "bad label name: {line:?}");
                    let mut end = None;
                    let mut escaped = false;
                    for (i, c) in after.char_indices() {
                        match (escaped, c) {
                            (false, '\\') => escaped = true,
                            (false, '"') => {
                                end = Some(i);
                                break;
                            }
                            _ => escaped = false,
                        }
                    }
                    let end = end.unwrap_or_else(|| panic!("unterminated label: {line:?}"));
                    rest = after[end + 1..].strip_prefix(',').unwrap_or(&after[end + 1..]);
                }
                name
            }
            None => series,
        };
        assert!(name_ok(name), "bad metric name: {line:?}");
        assert!(out.insert(series.to_owned(), value).is_none(), "duplicate series: {series}");
    }
    out
}

fn login(server: &TestServer, user: &str, password: &str) -> (Client, bool) {
    let mut c = server.connect();
    c.read_line();
    c.send(&format!("l LOGIN {user} {password}"));
    let ok = c.expect_tagged("l").last().unwrap().starts_with("l OK");
    (c, ok)
}

fn lmtp_deliver(addr: SocketAddr, rcpt: &str) {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut w = tcp.try_clone().unwrap();
    let mut r = BufReader::new(tcp);
    let mut reply = || loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    };
    assert!(reply().starts_with("220"));
    for (command, expected) in [
        ("LHLO mx.example".to_owned(), "250"),
        ("MAIL FROM:<someone@remote.example>".to_owned(), "250"),
        (format!("RCPT TO:<{rcpt}>"), "250"),
        ("DATA".to_owned(), "354"),
        ("Subject: metered\r\nMessage-ID: <m@remote.example>\r\n\r\nhello\r\n.".to_owned(), "250"),
    ] {
        w.write_all(format!("{command}\r\n").as_bytes()).unwrap();
        let answer = reply();
        assert!(answer.starts_with(expected), "{command}: {answer}");
    }
    w.write_all(b"QUIT\r\n").unwrap();
}

#[test]
fn endpoint_counts_logins_commands_and_deliveries_under_load() {
    let server = TestServer::start_with_sections(
        "allow_plaintext_auth = true",
        "[metrics]\nlisten = \"127.0.0.1:0\"\n",
        &["lmtp", "metrics"],
    );
    let metrics = server.metrics.expect("the metrics endpoint was announced");
    assert!(metrics.ip().is_loopback());
    server.add_user("alice", PASSWORD);

    assert_eq!(get(metrics, "/health"), (200, "ok\n".to_owned()));
    let (status, _) = get(metrics, "/nothing");
    assert_eq!(status, 404);
    let before = parse(&get(metrics, "/metrics").1);

    // Load: a client running commands in a loop while the test logs in, delivers and scrapes.
    let stop = Arc::new(AtomicBool::new(false));
    let (mut busy, ok) = login(&server, "alice", PASSWORD);
    assert!(ok);
    let flag = Arc::clone(&stop);
    let load = std::thread::spawn(move || {
        let mut n = 0;
        busy.send("s SELECT INBOX");
        busy.expect_tagged("s");
        while !flag.load(Ordering::Relaxed) && n < 5000 {
            busy.send("n NOOP");
            busy.expect_tagged("n");
            busy.send("f FETCH 1:* (FLAGS)");
            busy.expect_tagged("f");
            n += 1;
        }
        n
    });
    let (_failed, ok) = login(&server, "alice", "wrong-password");
    assert!(!ok);
    lmtp_deliver(server.lmtp.unwrap(), "alice@example.org");
    let started = Instant::now();
    let mut scrapes = 0;
    while started.elapsed() < Duration::from_millis(600) {
        let (status, body) = get(metrics, "/metrics");
        assert_eq!(status, 200);
        parse(&body);
        scrapes += 1;
    }
    let scraping = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let loops = load.join().unwrap();
    eprintln!("{scrapes} scrapes in {scraping:?} beside {loops} NOOP+FETCH rounds");
    assert!(loops > 0 && scrapes > 0);

    let after = parse(&get(metrics, "/metrics").1);
    let moved = |series: &str| {
        let was = before.get(series).copied().unwrap_or(0.0);
        let now = after.get(series).copied().unwrap_or_else(|| panic!("{series} missing"));
        now - was
    };
    assert_eq!(moved("postfach_logins_total{mechanism=\"LOGIN\",result=\"ok\"}"), 1.0);
    assert_eq!(moved("postfach_logins_total{mechanism=\"LOGIN\",result=\"fail\"}"), 1.0);
    assert_eq!(moved("postfach_deliveries_total{result=\"delivered\"}"), 1.0);
    assert!(moved("postfach_connections_total{kind=\"imap\"}") >= 2.0);
    assert!(moved("postfach_connections_total{kind=\"lmtp\"}") >= 1.0);
    // The failed client is still connected (the busy one may or may not be closed yet).
    assert!(after["postfach_connections_open{kind=\"imap\"}"] >= 1.0);
    let noops = after["postfach_command_duration_seconds_count{command=\"NOOP\"}"];
    assert!(noops >= loops as f64, "{noops} < {loops}");
    assert_eq!(after["postfach_command_duration_seconds_bucket{command=\"NOOP\",le=\"+Inf\"}"], noops);
    assert!(after["postfach_command_duration_seconds_count{command=\"LOGIN\"}"] >= 2.0);
    assert!(moved("postfach_store_commits_total") >= 1.0);
    assert_eq!(after["postfach_store_commit_duration_seconds_count"], after["postfach_store_commits_total"]);
    assert_eq!(after["postfach_store_commit_batch_size_count"], after["postfach_store_commits_total"]);
    assert_eq!(after["postfach_accounts"], 1.0);
    assert_eq!(after["postfach_messages"], 1.0);
    assert!(after["postfach_quota_used_bytes"] > 0.0);
    assert!(after.contains_key("postfach_index_backlog_messages"));
    assert!(after["postfach_store_disk_bytes"] > 0.0);

    // `postfach status` asks the same endpoint.
    let out = server.cli(&["status", "--address", &metrics.to_string()], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("health ok"), "{text}");
    assert!(text.contains("logins:        1 ok, 1 failed"), "{text}");
    assert!(text.contains("deliveries:    1 delivered"), "{text}");
    assert!(text.contains("accounts:      1; messages 1"), "{text}");
    let out = server.cli(&["status", "--address", &metrics.to_string(), "--json"], "");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["source"], "endpoint");
    assert_eq!(json["health"], "ok");
    assert!(json["samples"]["postfach_store_disk_bytes"][0]["value"].as_f64().unwrap() > 0.0, "{json}");
}

#[test]
fn status_without_an_endpoint_reads_the_store_and_metrics_are_off_by_default() {
    let server = TestServer::start_with("allow_plaintext_auth = true");
    assert!(server.metrics.is_none());
    assert!(!server.log().contains("metrics"), "{}", server.log_tail(10));
    server.add_user("bob", PASSWORD);
    let out = server.cli(&["status"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("no metrics endpoint configured"), "{text}");
    assert!(text.contains("accounts:      1"), "{text}");
    assert!(text.contains("index backlog: 0 messages"), "{text}");
    let out = server.cli(&["status", "--json"], "");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["source"], "store");
    assert_eq!(json["accounts"], 1);
    assert_eq!(json["index_backlog"], 0);
}
