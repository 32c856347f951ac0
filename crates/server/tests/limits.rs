//! Flood and slow-peer defences, black box: every limit is pushed past, and then a normal user
//! must still log in and read their mail.
//!
//! The limits: connections per address and per account, the pre-auth framing limits (line,
//! literal size and count, command text), the post-auth command-text limit, search nesting,
//! the pre-auth silence timeout and total deadline (slowloris), a client that never reads, the
//! mailboxes per account (count and hierarchy depth) and the shared literal memory
//! (`literal_memory`). The global connection cap is tested in `server.rs`. A last test measures
//! what idle TLS
//! connections cost the server (RSS from /proc), with `POSTFACH_IDLE_CONNS` connections
//! (default 300; the figures in SECURITY.md are from 2000).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use std::time::{Duration, Instant};

use common::{Client, TestServer, connect_from};

/// The message every test's user finds in their INBOX.
const MAIL: &str = "From: a@example.org\r\nSubject: still here\r\n\r\nHello.\r\n";

/// Creates `alice` (and `bob`) with one message each in INBOX.
fn setup(server: &TestServer) {
    for user in ["alice", "bob"] {
        server.add_user(user, "secret");
        let mut c = server.connect_tls();
        c.read_line();
        c.send(&format!("l LOGIN {user} secret"));
        assert!(c.expect_tagged("l").last().unwrap().starts_with("l OK"));
        c.send(&format!("a APPEND INBOX {{{}+}}", MAIL.len()));
        c.send_raw(MAIL.as_bytes());
        c.send_raw(b"\r\n");
        let done = c.expect_tagged("a");
        assert!(done.last().unwrap().starts_with("a OK"), "{done:?}");
        c.send("z LOGOUT");
        c.expect_tagged("z");
        c.expect_closed();
    }
}

/// Logs `user` in over `client` (fresh, greeting unread) and checks the mail is all there.
fn reads_mail(mut client: Client, user: &str) {
    client.set_timeout(Duration::from_secs(20));
    let greeting = client.read_line();
    assert!(greeting.starts_with("* OK"), "{greeting:?}");
    client.send(&format!("l LOGIN {user} secret"));
    let login = client.expect_tagged("l");
    assert!(login.last().unwrap().starts_with("l OK"), "{login:?}");
    client.send("s SELECT INBOX");
    let select = client.expect_tagged("s");
    assert!(select.iter().any(|l| l == "* 1 EXISTS"), "{select:?}");
    client.send("f FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]");
    let fetch = client.expect_tagged("f");
    assert!(fetch.iter().any(|l| l.contains("Subject: still here")), "{fetch:?}");
    assert!(fetch.last().unwrap().starts_with("f OK"), "{fetch:?}");
    client.send("z LOGOUT");
    client.expect_tagged("z");
}

/// A normal user on the implicit-TLS port reads their mail.
fn user_reads_mail(server: &TestServer, user: &str) {
    reads_mail(server.connect_tls(), user);
}

/// Repeats `check` until it returns true or 10 s pass (a closed connection's slot is released
/// by the server a moment after the client sees the close).
fn eventually(mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "condition not reached in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn per_address_limit_turns_away_one_address_only() {
    let server = TestServer::start_with("max_connections_per_address = 3\nconnection_limit_exempt = []");
    setup(&server);
    // The setup's connections may take a moment to be uncounted after they close.
    let mut held: Vec<Client> = Vec::new();
    eventually(|| {
        held = (0..3).map(|_| server.connect()).collect();
        held.iter_mut().all(|c| c.read_line().starts_with("* OK"))
    });
    let mut extra = server.connect();
    assert_eq!(extra.read_line(), "* BYE [UNAVAILABLE] Too many connections from your address");
    extra.expect_closed();
    // On the TLS port: closed without a handshake.
    Client::plain(server.imaps).expect_closed();

    // Another address is served, over cleartext+STARTTLS and implicit TLS.
    let mut other = Client::plain_from(connect_from([127, 0, 0, 2], server.imap));
    assert!(other.read_line().starts_with("* OK"));
    reads_mail(Client::tls_from(connect_from([127, 0, 0, 3], server.imaps), &server.cert_path()), "alice");

    // The address gets its slots back when its connections go.
    drop(held);
    eventually(|| {
        let mut c = server.connect();
        c.read_line().starts_with("* OK")
    });
    user_reads_mail(&server, "bob");
}

#[test]
fn exempt_networks_are_not_limited_per_address() {
    let server = TestServer::start_with("max_connections_per_address = 1");
    setup(&server);
    // The default exemption covers loopback (a local proxy or webmail).
    let mut held: Vec<Client> = (0..3).map(|_| server.connect()).collect();
    for c in &mut held {
        assert!(c.read_line().starts_with("* OK"));
    }
    user_reads_mail(&server, "alice");
}

#[test]
fn per_account_limit_refuses_the_extra_login_only() {
    let server = TestServer::start_with("max_connections_per_account = 2");
    setup(&server);
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let mut c = server.connect_tls();
        c.read_line();
        c.send("l LOGIN alice secret");
        assert!(c.expect_tagged("l").last().unwrap().starts_with("l OK"));
        sessions.push(c);
    }
    // The setup's sessions may take a moment to be uncounted after they close.
    let mut third = server.connect_tls();
    third.read_line();
    let mut attempt = 0;
    eventually(|| {
        attempt += 1;
        let tag = format!("l{attempt}");
        third.send(&format!("{tag} LOGIN alice secret"));
        let answer = third.expect_tagged(&tag);
        assert!(!answer.last().unwrap().starts_with(&format!("{tag} OK")), "a third session got in");
        answer == vec![format!("{tag} NO [LIMIT] Too many connections for this account")]
    });
    // RFC 5530 LIMIT on a tagged NO (RFC 9051 §6.2.3: a failed login): the connection stays
    // open and not authenticated, with the small pre-auth framing limits.
    third.send("s SELECT INBOX");
    assert!(third.expect_tagged("s").last().unwrap().starts_with("s BAD"));
    third.send("p LOGIN alice {9000}");
    let line = third.read_line();
    assert!(line.starts_with("p BAD [LIMIT]"), "{line:?}");

    // Other accounts are not affected, and the held sessions still work.
    user_reads_mail(&server, "bob");
    sessions[0].send("n NOOP");
    assert!(sessions[0].expect_tagged("n").last().unwrap().starts_with("n OK"));

    // A session that ends gives its slot back: the waiting client logs in on the same
    // connection, and then has the full limits.
    sessions.pop();
    eventually(|| {
        attempt += 1;
        let tag = format!("l{attempt}");
        third.send(&format!("{tag} LOGIN alice secret"));
        third.expect_tagged(&tag).last().unwrap().starts_with(&format!("{tag} OK"))
    });
    third.send("a APPEND INBOX {9000}");
    assert_eq!(third.read_line(), "+ Ready for literal data");
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    body.resize(9000, b'x');
    third.send_raw(&body);
    third.send_raw(b"\r\n");
    assert!(third.expect_tagged("a").last().unwrap().starts_with("a OK"));
    // Now at the limit again: a new login is refused, the logged-in ones go on.
    let mut fourth = server.connect_tls();
    fourth.read_line();
    fourth.send("l LOGIN alice secret");
    assert_eq!(fourth.expect_tagged("l"), vec!["l NO [LIMIT] Too many connections for this account"]);
    fourth.send("z LOGOUT");
    assert!(fourth.expect_tagged("z").last().unwrap().starts_with("z OK"));
    user_reads_mail(&server, "bob");
}

#[test]
fn preauth_lines_and_literals_are_small_until_login() {
    let server = TestServer::start();
    setup(&server);
    let mut c = server.connect_tls();
    c.read_line();

    // A 20 KiB line is over the 12 KiB pre-auth limit: rejected, the connection goes on.
    let long_id = format!("i ID (\"x\" \"{}\")", "y".repeat(20 * 1024));
    c.send(&long_id);
    let line = c.read_line();
    assert!(line.starts_with("i BAD [LIMIT]") && line.contains("line too long"), "{line:?}");
    // A 100 KiB line without end, pushed in one go: skipped without buffering.
    c.send_raw(&vec![b'z'; 100 * 1024]);
    c.send_raw(b"\r\n");
    assert!(c.read_line().starts_with("* BAD"));
    // A synchronizing literal over 8 KiB gets no continuation request.
    c.send("p LOGIN alice {9000}");
    let line = c.read_line();
    assert!(line.starts_with("p BAD [LIMIT]"), "{line:?}");
    // More literals than LOGIN or ID need.
    c.send_raw(b"q ID ({1+}\r\na {1+}\r\nb {1+}\r\nc {1+}\r\nd {1+}\r\ne)\r\n");
    let line = c.read_line();
    assert!(line.starts_with("q BAD [LIMIT]") && line.contains("too many literals"), "{line:?}");
    c.send("n NOOP");
    assert!(c.expect_tagged("n").last().unwrap().starts_with("n OK"));

    // After login the configured limits apply: the same long line and a big literal are fine.
    c.send("l LOGIN alice secret");
    assert!(c.expect_tagged("l").last().unwrap().starts_with("l OK"));
    c.send(&long_id);
    let id = c.expect_tagged("i");
    assert!(id.last().unwrap().starts_with("i OK"), "{id:?}");
    c.send("a APPEND INBOX {9000}");
    assert_eq!(c.read_line(), "+ Ready for literal data");
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    body.resize(9000, b'x');
    c.send_raw(&body);
    c.send_raw(b"\r\n");
    assert!(c.expect_tagged("a").last().unwrap().starts_with("a OK"));

    user_reads_mail(&server, "bob");
}

#[test]
fn oversized_non_synchronizing_literal_before_login_closes() {
    let server = TestServer::start();
    setup(&server);
    let mut c = server.connect();
    c.read_line();
    // Skipping 1 MiB for an anonymous client costs too much: BYE and close (RFC 7888 §4).
    c.send("a LOGIN {1048576+}");
    let lines = [c.read_line(), c.read_line()];
    assert!(lines[0].starts_with("a BAD [LIMIT]"), "{lines:?}");
    assert!(lines[1].starts_with("* BYE"), "{lines:?}");
    c.expect_closed();
    user_reads_mail(&server, "alice");
}

#[test]
fn command_text_and_nesting_are_bounded_after_login() {
    let server = TestServer::start();
    setup(&server);
    let mut c = server.connect_tls();
    c.read_line();
    c.send("l LOGIN alice secret");
    c.expect_tagged("l");
    c.send("s SELECT INBOX");
    c.expect_tagged("s");

    // 5 lines of 60 KiB joined by tiny literals: each line is fine, 300 KiB of arguments not.
    let mut cmd = b"t SEARCH".to_vec();
    for _ in 0..5 {
        cmd.extend_from_slice(" ALL".repeat(15 * 1024).as_bytes());
        cmd.extend_from_slice(b" SUBJECT {1+}\r\nx");
    }
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let line = c.read_line();
    assert!(line.starts_with("t BAD [LIMIT]") && line.contains("too many arguments"), "{line:?}");

    // Nesting deeper than the parser allows is a syntax error, not a crash.
    let deep = format!("d SEARCH {}ALL{}", "(".repeat(5000), ")".repeat(5000));
    c.send(&deep);
    let line = c.read_line();
    assert!(line.starts_with("d BAD"), "{line:?}");
    let deep_not = format!("e SEARCH {}ALL", "NOT ".repeat(5000));
    c.send(&deep_not);
    assert!(c.read_line().starts_with("e BAD"));

    // The connection is still usable, and so is the server.
    c.send("f FETCH 1 FLAGS");
    assert!(c.expect_tagged("f").last().unwrap().starts_with("f OK"));
    user_reads_mail(&server, "bob");
}

/// A logged-in client of `user` (greeting read).
fn logged_in(server: &TestServer, user: &str) -> Client {
    let mut c = server.connect_tls();
    c.set_timeout(Duration::from_secs(20));
    c.read_line();
    c.send(&format!("l LOGIN {user} secret"));
    assert!(c.expect_tagged("l").last().unwrap().starts_with("l OK"));
    c
}

/// A message of exactly `size` bytes.
fn message(size: usize) -> Vec<u8> {
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    body.resize(size, b'x');
    body
}

/// Sends the literal and the end of an APPEND whose continuation arrived; expects OK.
fn finish_append(c: &mut Client, tag: &str, body: &[u8]) {
    c.send_raw(body);
    c.send_raw(b"\r\n");
    let done = c.expect_tagged(tag);
    assert!(done.last().unwrap().starts_with(&format!("{tag} OK")), "{done:?}");
}

/// `imap.literal_memory` bounds the literal data all sessions hold at once: with 1 MiB, one
/// 800 KiB APPEND is received while a second waits (and after `literal_wait` is refused with
/// NO [LIMIT]); small commands of other sessions go on meanwhile; once the first is stored the
/// budget is back.
#[test]
fn literal_memory_is_shared_by_all_sessions() {
    const BIG: usize = 800 * 1024;
    let server =
        TestServer::start_with("max_message_size = 1048576\nliteral_memory = 1048576\nliteral_wait = 3");
    setup(&server);
    let big = message(BIG);
    let mut first = logged_in(&server, "alice");
    let mut second = logged_in(&server, "bob");
    let mut third = logged_in(&server, "alice");

    // The first takes 800 KiB of the budget (and holds it while it has not sent the data).
    first.send(&format!("a APPEND INBOX {{{BIG}}}"));
    assert_eq!(first.read_line(), "+ Ready for literal data");
    // The second gets no continuation: it waits for room...
    second.send(&format!("b APPEND INBOX {{{BIG}}}"));
    let asked = Instant::now();
    // ...while the third's small commands are served.
    third.send("n NOOP");
    assert!(third.expect_tagged("n").last().unwrap().starts_with("n OK"));
    third.send("s APPEND INBOX {100}");
    assert_eq!(third.read_line(), "+ Ready for literal data");
    finish_append(&mut third, "s", &message(100));
    // ...until literal_wait runs out: NO [LIMIT], and the literal was never sent.
    let refused = second.read_line();
    assert!(refused.starts_with("b NO [LIMIT]"), "{refused:?}");
    assert!(asked.elapsed() >= Duration::from_secs(2), "refused after {:?}", asked.elapsed());
    // A non-synchronizing literal without room is read, thrown away and refused the same way;
    // the connection goes on.
    second.send(&format!("c APPEND INBOX {{{BIG}+}}"));
    second.send_raw(&big);
    second.send_raw(b"\r\n");
    let refused = second.read_line();
    assert!(refused.starts_with("c NO [LIMIT]"), "{refused:?}");
    second.send("n NOOP");
    assert!(second.expect_tagged("n").last().unwrap().starts_with("n OK"));

    // A waiting APPEND is served as soon as the first one is done.
    second.send(&format!("d APPEND INBOX {{{BIG}}}"));
    std::thread::sleep(Duration::from_millis(300));
    finish_append(&mut first, "a", &big);
    assert_eq!(second.read_line(), "+ Ready for literal data");
    finish_append(&mut second, "d", &big);

    // All given back: another big APPEND goes through at once, and both are stored.
    third.send(&format!("e APPEND INBOX {{{BIG}}}"));
    assert_eq!(third.read_line(), "+ Ready for literal data");
    finish_append(&mut third, "e", &big);
    third.send("x STATUS INBOX (MESSAGES)");
    let status = third.expect_tagged("x");
    assert!(status.iter().any(|l| l.contains("MESSAGES 4")), "{status:?}");
    second.send("y STATUS INBOX (MESSAGES)");
    let status = second.expect_tagged("y");
    assert!(status.iter().any(|l| l.contains("MESSAGES 2")), "{status:?}");
}

#[test]
fn mailboxes_per_account_are_capped() {
    // Six default mailboxes: room for two more.
    let server = TestServer::start_with("max_mailboxes = 8");
    setup(&server);
    let mut c = server.connect_tls();
    c.read_line();
    c.send("l LOGIN alice secret");
    c.expect_tagged("l");
    let answer = |c: &mut Client, tag: &str, command: &str| {
        c.send(&format!("{tag} {command}"));
        c.expect_tagged(tag).last().unwrap().clone()
    };

    assert!(answer(&mut c, "a", "CREATE one").starts_with("a OK"));
    // The superior "two" would fit, "two/deep" not: nothing is made, not even "two".
    let line = answer(&mut c, "b", "CREATE two/deep");
    assert!(line.starts_with("b NO [LIMIT]"), "{line:?}");
    c.send("b2 LIST \"\" two*");
    let listed = c.expect_tagged("b2");
    assert!(!listed.iter().any(|l| l.starts_with("* LIST")), "{listed:?}");
    assert!(answer(&mut c, "b3", "CREATE two").starts_with("b3 OK"));
    let line = answer(&mut c, "c", "CREATE three");
    assert!(line.starts_with("c NO [LIMIT]"), "{line:?}");
    // RENAME's new superior would be a ninth mailbox; RENAME INBOX makes one too.
    let line = answer(&mut c, "d", "RENAME one new/one");
    assert!(line.starts_with("d NO [LIMIT]"), "{line:?}");
    let line = answer(&mut c, "e", "RENAME INBOX old-inbox");
    assert!(line.starts_with("e NO [LIMIT]"), "{line:?}");
    // A name that exists is still "exists"; a rename within the count still works.
    let line = answer(&mut c, "f", "CREATE one");
    assert!(line.starts_with("f NO [ALREADYEXISTS]"), "{line:?}");
    assert!(answer(&mut c, "g", "RENAME one uno").starts_with("g OK"));
    let list = {
        c.send("h LIST \"\" *");
        c.expect_tagged("h")
    };
    assert_eq!(list.iter().filter(|l| l.starts_with("* LIST")).count(), 8, "{list:?}");
    // Deleting makes room again.
    assert!(answer(&mut c, "i", "DELETE uno").starts_with("i OK"));
    assert!(answer(&mut c, "j", "CREATE three").starts_with("j OK"));

    // Hierarchy depth: 32 levels are a name, 33 are not (checked before anything is made).
    assert!(answer(&mut c, "k", "DELETE three").starts_with("k OK"));
    let too_deep = vec!["x"; 33].join("/");
    let line = answer(&mut c, "m", &format!("CREATE {too_deep}"));
    assert!(line.starts_with("m NO [LIMIT]") && line.contains("too deep"), "{line:?}");
    let line = answer(&mut c, "n", &format!("RENAME two {too_deep}"));
    assert!(line.starts_with("n NO [LIMIT]"), "{line:?}");

    // Alice still reads her mail, and bob's own count is untouched.
    reads_mail_on(&mut c);
    c.send("z LOGOUT");
    c.expect_tagged("z");
    user_reads_mail(&server, "alice");
    let mut b = server.connect_tls();
    b.read_line();
    b.send("l LOGIN bob secret");
    b.expect_tagged("l");
    assert!(answer(&mut b, "a", "CREATE bobs").starts_with("a OK"));
    b.send("z LOGOUT");
    b.expect_tagged("z");
    user_reads_mail(&server, "bob");
}

/// The logged-in `client` still selects INBOX and finds its message.
fn reads_mail_on(client: &mut Client) {
    client.send("s SELECT INBOX");
    let select = client.expect_tagged("s");
    assert!(select.iter().any(|l| l == "* 1 EXISTS"), "{select:?}");
}

#[test]
fn slowloris_is_cut_off_by_the_preauth_deadline() {
    let server = TestServer::start_with("preauth_timeout = 60\npreauth_deadline = 2");
    setup(&server);
    let start = Instant::now();
    let mut plain = std::net::TcpStream::connect(server.imap).unwrap();
    plain.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut tls_raw = std::net::TcpStream::connect(server.imaps).unwrap();
    // Trickle a byte every 200 ms: never silent for 60 s, never finishing a line.
    let mut received = Vec::new();
    let mut closed = false;
    while start.elapsed() < Duration::from_secs(8) {
        if plain.write_all(b"a").is_err() {
            closed = true;
            break;
        }
        // The TLS port: trickle bytes of a ClientHello that never completes.
        let _ = tls_raw.write_all(&[0x16]);
        let mut buf = [0u8; 512];
        match std::io::Read::read(&mut plain, &mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("* BYE Autologout; login took too long"), "{text:?}\n{}", server.log());
    assert!(closed, "the trickling client was not disconnected");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6), "{waited:?}");
    // The TLS trickler is gone too (perhaps after a TLS alert).
    tls_raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    let mut alert = 0;
    loop {
        match std::io::Read::read(&mut tls_raw, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                alert += n;
                assert!(alert < 64, "the TLS port keeps talking to a broken handshake");
            }
            Err(e) => {
                let still_open =
                    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
                assert!(!still_open, "the TLS trickler is still connected");
                break;
            }
        }
    }

    // A client that pipelines commands forever and never reads is ended by the same deadline.
    let mut flood = std::net::TcpStream::connect(server.imap).unwrap();
    flood.set_write_timeout(Some(Duration::from_millis(100))).unwrap();
    let start = Instant::now();
    let chunk = b"c CAPABILITY\r\n".repeat(1000);
    let mut ended = false;
    while start.elapsed() < Duration::from_secs(15) {
        match flood.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => {
                ended = true;
                break;
            }
        }
    }
    assert!(ended, "the flooding client was not disconnected");

    // Someone who logs in normally is served.
    user_reads_mail(&server, "alice");
}

/// Opens idle TLS connections and reports what they cost the server in RSS. Asserts a generous
/// bound so a regression (a buffer kept per connection) fails; prints the figure for
/// SECURITY.md (`cargo test -p postfach --test limits idle -- --nocapture`).
#[test]
fn idle_tls_connections_cost_little_memory() {
    let count: usize = std::env::var("POSTFACH_IDLE_CONNS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let server = TestServer::start_with("max_connections = 100000");
    setup(&server);
    let rss = || -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 1024
    };
    // Warm up allocator arenas and runtime threads with a few connections first.
    let warm: Vec<Client> = (0..20).map(|_| server.connect_tls()).collect();
    drop(warm);
    std::thread::sleep(Duration::from_millis(300));
    let before = rss();
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        let mut c = server.connect_tls();
        // The greeting proves the handshake finished and the connection is in its idle wait.
        assert!(c.read_line().starts_with("* OK"));
        clients.push(c);
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = rss();
    let per_conn = after.saturating_sub(before) / count;
    println!("idle TLS connections: {count}, server RSS {before} -> {after} bytes, {per_conn} bytes each");
    assert!(per_conn < 64 * 1024, "{per_conn} bytes per idle TLS connection");
    user_reads_mail(&server, "alice");
    drop(clients);
}
