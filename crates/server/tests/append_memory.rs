//! Issue 17: an APPEND's literal is held once on its way from the socket to the store.
//!
//! Appends a 50 MiB message (the default APPENDLIMIT) and reads how much the server's peak
//! resident memory (VmHWM) grew. The framer reserves the literal's size when it is announced and
//! fills that one buffer; the parsed message is a slice of it, and the store gets that slice
//! (before: framed command → `to_vec` → `Arc::from`). The store's text extraction decodes only
//! what the index keeps, and SQLite gets the body through incremental blob I/O, page by page,
//! so it never holds a copy of its own.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::TestServer;

/// The server's peak resident memory so far, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_50_mib_append_holds_its_literal_once() {
    let server = TestServer::start_with("allow_plaintext_auth = true");
    server.add_user("dora", "append memory password");
    let mut client = server.connect();
    client.read_line();
    client.send("l LOGIN dora \"append memory password\"");
    assert!(client.expect_tagged("l").last().unwrap().starts_with("l OK"));
    // A small APPEND first, so the store's one-time costs (caches, the writer) are in the baseline.
    client.send_raw(b"w APPEND INBOX {21+}\r\nSubject: warm\r\n\r\nup\r\n\r\n");
    assert!(client.expect_tagged("w").last().unwrap().starts_with("w OK"));
    std::thread::sleep(Duration::from_millis(300));
    let before = peak_rss_kib(server.pid());

    let size: usize = 50 * 1024 * 1024;
    let header = b"From: a@example.org\r\nSubject: big\r\n\r\n";
    let line = b"0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789\r\n";
    client.send_raw(format!("a APPEND INBOX {{{size}+}}\r\n").as_bytes());
    client.send_raw(header);
    let mut sent = header.len();
    let chunk: Vec<u8> = line.iter().copied().cycle().take(line.len() * 13_000).collect();
    while sent < size {
        let n = chunk.len().min(size - sent);
        client.send_raw(&chunk[..n]);
        sent += n;
    }
    client.send_raw(b"\r\n");
    client.set_timeout(Duration::from_secs(120));
    let lines = client.expect_tagged("a");
    assert!(lines.last().unwrap().starts_with("a OK"), "{lines:?}");

    let grown = peak_rss_kib(server.pid()).saturating_sub(before);
    let literal_kib = (size / 1024) as u64;
    eprintln!(
        "APPEND of {} MiB: peak RSS grew by {} KiB ({:.2} literals)",
        size >> 20,
        grown,
        grown as f64 / literal_kib as f64
    );
    // Measured (debug build): 5.04 literals before issue 17, 4.20 once the IMAP path held the
    // literal once, 1.48 since the store writes the body with incremental blob I/O and no longer
    // updates the body row (SQLite rebuilt the whole record, blob included, to bump a reference
    // count). The one literal is the framer's buffer; the rest is text extraction for the index
    // (bounded) and allocator slack.
    assert!(grown < literal_kib * 2, "peak RSS grew by {grown} KiB for a {literal_kib} KiB literal");
}
