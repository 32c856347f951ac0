//! The outbound queue (issue 17) against the real server: LMTP answers at once whatever the
//! SMTP relay does, vacation replies and redirects wait in the store's queue (`postfach queue
//! list`), survive `kill -9`, go out exactly once when the relay takes them, and a refused
//! redirect bounces to its sender. The relay is a small SMTP server in this file that can
//! hang (accept TCP and never answer), accept, or refuse recipients.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Deployment, PATIENCE, TestServer};

const PASSWORD: &str = "secret-pw";

/// What the relay does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Accept the TCP connection and never say a word (a hung MTA).
    Hang,
    /// Accept every message.
    Accept,
    /// Refuse recipients containing "far@" with 550 5.1.1; accept the rest.
    RefuseFar,
}

/// One message the relay accepted.
#[derive(Debug, Clone)]
struct Received {
    from: String,
    to: Vec<String>,
    data: String,
}

/// A fake SMTP relay on 127.0.0.1, port 0.
struct Relay {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    /// Connections held open in `Hang` mode; dropped (closed) when the mode changes.
    held: Arc<Mutex<Vec<TcpStream>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Relay {
    fn start(mode: Mode) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let relay = Relay {
            addr,
            mode: Arc::new(Mutex::new(mode)),
            held: Arc::new(Mutex::new(Vec::new())),
            received: Arc::new(Mutex::new(Vec::new())),
        };
        let (mode, held, received) =
            (Arc::clone(&relay.mode), Arc::clone(&relay.held), Arc::clone(&relay.received));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let now = *mode.lock().unwrap();
                if now == Mode::Hang {
                    held.lock().unwrap().push(conn);
                    continue;
                }
                let received = Arc::clone(&received);
                std::thread::spawn(move || serve_smtp(conn, now, &received));
            }
        });
        relay
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
        self.held.lock().unwrap().clear();
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages arrived.
    fn wait_for(&self, n: usize, server_log: impl Fn() -> String) -> Vec<Received> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the relay got {} of {n} messages; log:\n{}",
                got.len(),
                server_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve_smtp(conn: TcpStream, mode: Mode, received: &Mutex<Vec<Received>>) {
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut c = Line::new(conn);
    c.send("220 relay ESMTP\r\n");
    let (mut from, mut to, mut data) = (String::new(), Vec::new(), None::<String>);
    loop {
        let mut line = String::new();
        if c.stream.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(text) = data.as_mut() {
            if line == ".\r\n" {
                let data = data.take().unwrap();
                received.lock().unwrap().push(Received {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                });
                c.send("250 2.0.0 queued\r\n");
            } else {
                text.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            continue;
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().trim_matches(['<', '>']).to_owned();
            c.send("250 2.1.0 ok\r\n");
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = line[8..].trim().trim_matches(['<', '>']).to_owned();
            if mode == Mode::RefuseFar && rcpt.contains("far@") {
                c.send("550 5.1.1 <far@remote.example>: Recipient address rejected\r\n");
            } else {
                to.push(rcpt);
                c.send("250 2.1.5 ok\r\n");
            }
        } else if upper.starts_with("DATA") {
            data = Some(String::new());
            c.send("354 go\r\n");
        } else if upper.starts_with("QUIT") {
            c.send("221 bye\r\n");
            return;
        } else {
            c.send("250 ok\r\n");
        }
    }
}

/// A blocking line client for LMTP/SMTP.
struct Line<S: Read + Write> {
    stream: BufReader<S>,
}

impl<S: Read + Write> Line<S> {
    fn new(stream: S) -> Self {
        Line { stream: BufReader::new(stream) }
    }

    fn send(&mut self, text: &str) {
        self.stream.get_mut().write_all(text.as_bytes()).unwrap();
        self.stream.get_mut().flush().unwrap();
    }

    /// One reply (all lines of a multi-line one), joined by '\n'.
    fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.stream.read_line(&mut line).unwrap() > 0, "connection closed; got {lines:?}");
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }
}

/// One LMTP transaction as an MTA runs it, with the MTA's data timeout: the per-recipient
/// replies to DATA, and how long they took after the final dot. `None` when the timeout ran
/// out first (the MTA then drops the session and delivers again later).
fn lmtp_transaction(
    lmtp: SocketAddr,
    from: &str,
    rcpts: &[&str],
    message: &str,
    data_timeout: Duration,
) -> Option<(Vec<String>, Duration)> {
    let tcp = TcpStream::connect(lmtp).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut c = Line::new(tcp);
    assert!(c.reply().starts_with("220 "));
    c.send("LHLO mx.example\r\n");
    c.reply();
    c.send(&format!("MAIL FROM:<{from}>\r\n"));
    assert!(c.reply().starts_with("250"));
    for rcpt in rcpts {
        c.send(&format!("RCPT TO:<{rcpt}>\r\n"));
        assert!(c.reply().starts_with("250"));
    }
    c.send("DATA\r\n");
    assert!(c.reply().starts_with("354"));
    c.send(message);
    let sent = Instant::now();
    c.send(".\r\n");
    c.stream.get_ref().set_read_timeout(Some(data_timeout)).unwrap();
    let mut replies = Vec::new();
    for _ in rcpts {
        let mut line = String::new();
        match c.stream.read_line(&mut line) {
            Ok(n) if n > 0 => replies.push(line.trim_end().to_owned()),
            // The MTA's timeout: it hangs up without QUIT.
            _ => return None,
        }
    }
    let took = sent.elapsed();
    c.stream.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
    c.send("QUIT\r\n");
    Some((replies, took))
}

fn message(subject: &str) -> String {
    format!(
        "From: Sender <sender@remote.example>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@remote.example>\r\n\r\nHello.\r\n"
    )
}

/// `queue list --json` entries.
fn queue_list(cli: impl Fn(&[&str], &str) -> std::process::Output) -> Vec<serde_json::Value> {
    let out = cli(&["queue", "list", "--json"], "");
    assert!(out.status.success(), "queue list: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["queue"].as_array().unwrap().clone()
}

fn kinds(entries: &[serde_json::Value]) -> Vec<String> {
    let mut kinds: Vec<String> = entries.iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
    kinds.sort();
    kinds
}

/// bob answers with a vacation reply and keeps the message; carol redirects hers.
fn scripts(cli: impl Fn(&[&str], &str) -> std::process::Output) {
    let vacation =
        "require \"vacation\";\nvacation :days 3 :subject \"Out of office\" \"Back on Monday.\";\n";
    assert!(cli(&["sieve", "put", "bob", "away", "--activate"], vacation).status.success());
    let redirect = "redirect \"far@remote.example\";\n";
    assert!(cli(&["sieve", "put", "carol", "fwd", "--activate"], redirect).status.success());
}

/// Reads the metrics endpoint's `postfach_queue_messages`.
fn queue_gauge(metrics: SocketAddr) -> u64 {
    let mut tcp = TcpStream::connect(metrics).unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    tcp.read_to_string(&mut text).unwrap();
    let line = text.lines().find(|l| l.starts_with("postfach_queue_messages ")).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// The MTA's view with a relay that hangs: LMTP answers within milliseconds, nothing is
/// delivered twice over the MTA's retry window, the vacation reply and the redirect wait in
/// the queue (`queue list`, the metrics gauge), and once the relay works, a flush sends each
/// exactly once.
#[test]
fn lmtp_answers_at_once_and_the_queue_sends_once() {
    let relay = Relay::start(Mode::Hang);
    let server = TestServer::start_with_sections(
        "allow_plaintext_auth = true",
        &format!(
            "[vacation]\nsmtp_relay = \"{}\"\n[queue]\nretry_min = \"1s\"\nretry_max = \"2s\"\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n",
            relay.addr
        ),
        &["lmtp", "metrics"],
    );
    server.add_user("bob", PASSWORD);
    server.add_user("carol", PASSWORD);
    scripts(|a, i| server.cli(a, i));
    let lmtp = server.lmtp.unwrap();

    // An MTA with a data timeout (Postfix: lmtp_data_done_timeout, 600 s; scaled down here) and
    // a retry window: a delivery whose reply does not come in time is made again.
    let data_timeout = Duration::from_secs(5);
    let mut attempts = 0;
    let mut took = Duration::ZERO;
    let started = Instant::now();
    while started.elapsed() < 3 * data_timeout {
        attempts += 1;
        let rcpts = ["bob@example.org", "carol@example.org"];
        match lmtp_transaction(lmtp, "sender@remote.example", &rcpts, &message("question"), data_timeout) {
            Some((replies, elapsed)) => {
                // carol's script only redirects: nothing stored, "Accepted".
                assert_eq!(
                    replies,
                    ["250 2.0.0 <bob@example.org> Delivered", "250 2.0.0 <carol@example.org> Accepted"]
                );
                took = elapsed;
                break;
            }
            None => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    eprintln!("LMTP replies to DATA came {} ms after the final dot (relay hanging)", took.as_millis());
    assert_eq!(attempts, 1, "the MTA had to deliver again; log:\n{}", server.log_tail(30));
    assert!(took < Duration::from_secs(1), "the reply waited for the relay: {took:?}");

    // Nothing went out, both wait in the queue (the first attempt hangs on the relay).
    let listed = queue_list(|a, i| server.cli(a, i));
    assert_eq!(kinds(&listed), ["redirect", "vacation"], "{listed:?}");
    let redirect = listed.iter().find(|e| e["kind"] == "redirect").unwrap();
    assert_eq!(redirect["from"], "sender@remote.example");
    assert_eq!(redirect["to"], serde_json::json!(["far@remote.example"]));
    assert_eq!(redirect["account"], "carol");
    let vacation = listed.iter().find(|e| e["kind"] == "vacation").unwrap();
    assert_eq!((vacation["from"].as_str(), vacation["account"].as_str()), (Some(""), Some("bob")));
    assert_eq!(queue_gauge(server.metrics.unwrap()), 2);

    // The same message again, as an MTA whose timeout expired just as the reply came would
    // deliver it: the redirect is not queued twice (carol keeps nothing, so no copy either).
    let again = lmtp_transaction(
        lmtp,
        "sender@remote.example",
        &["carol@example.org"],
        &message("question"),
        data_timeout,
    );
    assert!(again.is_some());
    assert_eq!(kinds(&queue_list(|a, i| server.cli(a, i))), ["redirect", "vacation"]);

    // The relay comes back: the hung attempts fail, `queue flush` makes them due at once.
    relay.set_mode(Mode::Accept);
    let out = server.cli(&["queue", "flush"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = relay.wait_for(2, || server.log_tail(40));
    // Past a few more retry intervals: still exactly once each.
    std::thread::sleep(Duration::from_secs(3));
    let got_after = relay.received();
    assert_eq!(got_after.len(), 2, "{got_after:?}");
    let vacation = got.iter().find(|m| m.data.contains("Subject: Out of office")).unwrap();
    assert_eq!((vacation.from.as_str(), vacation.to.clone()), ("", vec!["sender@remote.example".to_owned()]));
    let redirect = got.iter().find(|m| m.data.contains("Subject: question")).unwrap();
    assert_eq!(redirect.from, "sender@remote.example");
    assert_eq!(redirect.to, ["far@remote.example"]);
    assert!(queue_list(|a, i| server.cli(a, i)).is_empty());
    assert_eq!(queue_gauge(server.metrics.unwrap()), 0);

    // One copy for bob; the vacation reply went once for both deliveries.
    let messages = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = server.open_store().await;
        let bob = store.account_by_name("bob").await.unwrap().unwrap();
        let inbox =
            store.mailbox_by_name(bob.id, &postfach_store::MailboxName::new("INBOX").unwrap()).await.unwrap();
        store.status(inbox.unwrap().id).await.unwrap().messages
    });
    assert_eq!(messages, 1);
    assert!(server.log().contains("queued message sent"));
}

/// A queued redirect survives `kill -9` and is sent once after the restart (a flush skips
/// its backoff); `queue list` shows the failed attempt's error meanwhile, `queue delete`
/// drops an entry.
#[test]
fn a_queued_message_survives_kill9_and_goes_once() {
    // A closed port: every attempt fails at once with "connection refused".
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let relay = Relay::start(Mode::Accept);
    let settings = |relay: SocketAddr| {
        format!(
            "[imap]\nlisten = [\"127.0.0.1:0\"]\nlisten_tls = [\"127.0.0.1:0\"]\n\
             [lmtp]\nlisten = [\"127.0.0.1:0\"]\n[log]\nlevel = \"debug\"\n\
             [vacation]\nsmtp_relay = \"{relay}\"\n[queue]\nretry_min = \"10m\"\n"
        )
    };
    let mut deployment = Deployment::with_settings(&settings(closed));
    deployment.add_user("bob", PASSWORD);
    deployment.add_user("carol", PASSWORD);
    scripts(|a, i| deployment.cli(a, i));
    let lmtp = deployment.start_awaiting(&["lmtp"]).lmtp.unwrap();
    let rcpts = ["carol@example.org", "bob@example.org"];
    let (replies, _) =
        lmtp_transaction(lmtp, "sender@remote.example", &rcpts, &message("kept"), PATIENCE).unwrap();
    assert!(replies.iter().all(|r| r.starts_with("250 ")), "{replies:?}");

    // Wait for the first attempts to fail and be recorded.
    let deadline = Instant::now() + PATIENCE;
    let listed = loop {
        let listed = queue_list(|a, i| deployment.cli(a, i));
        if listed.len() == 2 && listed.iter().all(|e| e["attempts"] == 1 && !e["last_error"].is_null()) {
            break listed;
        }
        assert!(Instant::now() < deadline, "{listed:?}; log:\n{}", deployment.log_tail(30));
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(listed[0]["last_error"].as_str().unwrap().contains("connecting to"), "{listed:?}");
    let out = deployment.cli(&["queue", "list"], "");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("ID ") && table.contains("far@remote.example"), "{table}");

    deployment.kill9();
    // The relay works now.
    let config = std::fs::read_to_string(deployment.config_path()).unwrap();
    std::fs::write(deployment.config_path(), config.replace(&closed.to_string(), &relay.addr.to_string()))
        .unwrap();
    deployment.start_awaiting(&["lmtp"]);
    // Still there after the crash, waiting for its 10-minute backoff.
    assert_eq!(kinds(&queue_list(|a, i| deployment.cli(a, i))), ["redirect", "vacation"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(relay.received().is_empty(), "sent before its backoff ended");

    // Drop the vacation reply, flush the redirect.
    let vacation_id = listed.iter().find(|e| e["kind"] == "vacation").unwrap()["id"].as_i64().unwrap();
    let out = deployment.cli(&["queue", "delete", &vacation_id.to_string()], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = deployment.cli(&["queue", "delete", &vacation_id.to_string()], "");
    assert!(!out.status.success(), "deleted twice");
    let redirect_id = listed.iter().find(|e| e["kind"] == "redirect").unwrap()["id"].as_i64().unwrap();
    let out = deployment.cli(&["queue", "flush", &redirect_id.to_string()], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = relay.wait_for(1, || deployment.log_tail(30));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(relay.received().len(), 1, "{got:?}");
    assert_eq!(got[0].to, ["far@remote.example"]);
    assert!(got[0].data.contains("Subject: kept"));
    assert!(queue_list(|a, i| deployment.cli(a, i)).is_empty());
    let out = deployment.cli(&["queue", "flush", "999999"], "");
    assert!(!out.status.success(), "flushing a missing entry is an error");
}

/// The relay refuses the redirect's recipient (550): the entry is given up at once with a log
/// line, and the original sender gets a delivery status notification from `<>`.
#[test]
fn a_refused_redirect_bounces_to_its_sender() {
    let relay = Relay::start(Mode::RefuseFar);
    let server = TestServer::start_with_sections(
        "allow_plaintext_auth = true",
        &format!("[vacation]\nsmtp_relay = \"{}\"\n", relay.addr),
        &["lmtp"],
    );
    server.add_user("bob", PASSWORD);
    server.add_user("carol", PASSWORD);
    scripts(|a, i| server.cli(a, i));
    let (replies, _) = lmtp_transaction(
        server.lmtp.unwrap(),
        "sender@remote.example",
        &["carol@example.org"],
        &message("refused"),
        PATIENCE,
    )
    .unwrap();
    assert_eq!(replies, ["250 2.0.0 <carol@example.org> Accepted"]);
    let got = relay.wait_for(1, || server.log_tail(30));
    let bounce = &got[0];
    assert_eq!((bounce.from.as_str(), bounce.to.clone()), ("", vec!["sender@remote.example".to_owned()]));
    assert!(
        bounce.data.contains("Content-Type: multipart/report; report-type=delivery-status"),
        "{}",
        bounce.data
    );
    assert!(
        bounce
            .data
            .contains("Final-Recipient: rfc822; far@remote.example\r\nAction: failed\r\nStatus: 5.1.1\r\n")
    );
    assert!(bounce.data.contains("Subject: refused\r\n"), "the original's header is quoted");
    assert!(queue_list(|a, i| server.cli(a, i)).is_empty());
    let log = server.log();
    let line = log.lines().find(|l| l.contains("queued message given up")).unwrap();
    assert!(line.contains("550 5.1.1") && line.contains("bounced=true"), "{line}");
}
