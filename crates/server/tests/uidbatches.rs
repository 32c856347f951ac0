//! UIDBATCHES (RFC 10022, draft-ietf-mailmaint-imap-uidbatches) against the real binary, over
//! TLS: batches of a mailbox with holes checked against a plain list of its UIDs, batch
//! ranges, the refusals (TOOFEW, TOOMANY, CLIENTBUG, syntax, state), an empty mailbox, UIDONLY,
//! and a message that arrives from another session before the command.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Imap, TestServer};

const PASSWORD: &str = "uidbatches pw";

impl Imap {
    fn login(server: &TestServer, user: &str) -> Imap {
        Imap::login_as(server, user, PASSWORD)
    }

    /// Appends `count` small messages to `mailbox`, a hundred per MULTIAPPEND.
    fn fill(&mut self, mailbox: &str, count: usize) {
        let mut left = count;
        while left > 0 {
            let n = left.min(100);
            let mut command = format!("APPEND {mailbox}");
            for i in 0..n {
                let message = format!("Subject: m{}\r\n\r\nbody\r\n", count - left + i);
                command.push_str(&format!(" {{{}+}}\r\n{message}", message.len()));
            }
            let a = self.run(&command);
            assert!(a.ok(), "{a:?}");
            left -= n;
        }
    }

    /// The tag the next command will carry.
    fn next_tag(&self) -> String {
        format!("x{}", self.next + 1)
    }

    /// Runs UIDBATCHES `args` and returns its ranges as (high, low), checking the response
    /// names the command's tag and comes exactly once.
    fn batches(&mut self, args: &str) -> Vec<(u32, u32)> {
        let tag = self.next_tag();
        let a = self.run(&format!("UIDBATCHES {args}"));
        assert!(a.ok(), "UIDBATCHES {args}: {a:?}");
        let lines = a.starting("* UIDBATCHES ");
        assert_eq!(lines.len(), 1, "{a:?}");
        let rest = lines[0].strip_prefix(&format!("* UIDBATCHES (TAG \"{tag}\")")).unwrap();
        if rest.is_empty() {
            return Vec::new();
        }
        rest.strip_prefix(' ')
            .unwrap()
            .split(',')
            .map(|r| {
                let (high, low) = r.split_once(':').unwrap();
                (high.parse().unwrap(), low.parse().unwrap())
            })
            .collect()
    }
}

fn server() -> TestServer {
    let server = TestServer::start_with("");
    for user in ["ann", "ben"] {
        server.add_user(user, PASSWORD);
    }
    server
}

/// The batches RFC 10022 describes, from a plain ascending list of UIDs: newest first; a batch
/// from the UID right below the newer batch (or the newest UID) down to its oldest message's
/// UID, the last batch down to 1.
fn expected(uids: &[u32], size: usize) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut high = match uids.last() {
        Some(u) => *u,
        None => return out,
    };
    let mut end = uids.len();
    while end > 0 {
        let start = end.saturating_sub(size);
        let low = if start == 0 { 1 } else { uids[start] };
        out.push((high, low));
        high = low - 1;
        end = start;
    }
    out
}

#[test]
fn batches_follow_the_uids_with_holes() {
    let server = server();
    let mut ann = Imap::login(&server, "ann");
    let caps = ann.run("CAPABILITY");
    assert!(caps.untagged[0].split(' ').any(|c| c == "UIDBATCHES"), "{caps:?}");
    // Selected state only.
    let a = ann.run("UIDBATCHES 500");
    assert!(a.done.starts_with("BAD"), "{a:?}");

    ann.fill("INBOX", 1207);
    assert!(ann.run("SELECT INBOX").ok());
    // Holes: at the bottom, in the middle, across a batch edge, at the top.
    for set in ["1:3", "200:260", "700:705", "1207"] {
        assert!(ann.run(&format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)")).ok());
    }
    assert!(ann.run("EXPUNGE").ok());
    let gone =
        |u: &u32| (1..=3).contains(u) || (200..=260).contains(u) || (700..=705).contains(u) || *u == 1207;
    let uids: Vec<u32> = (1..=1207).filter(|u| !gone(u)).collect();
    assert_eq!(uids.len(), 1207 - 3 - 61 - 6 - 1);

    for size in [500, 501, 600, 1135, 1136, 5000] {
        let got = ann.batches(&size.to_string());
        assert_eq!(got, expected(&uids, size), "size {size}");
        // The ranges tile the UIDs up to the newest: no gap, no overlap, down to 1.
        assert_eq!(got[0].0, 1206);
        assert_eq!(got.last().unwrap().1, 1);
        for w in got.windows(2) {
            assert_eq!(w[1].0 + 1, w[0].1, "{got:?}");
        }
    }
    // Batch ranges pick batches by number; past the last batch there is nothing.
    let all = expected(&uids, 500);
    assert_eq!(all.len(), 3);
    assert_eq!(ann.batches("500 1:1"), all[..1]);
    assert_eq!(ann.batches("500 2:3"), all[1..]);
    assert_eq!(ann.batches("500 3:10"), all[2..]);
    assert_eq!(ann.batches("500 4:4"), vec![]);
    assert_eq!(ann.batches("500 100:100"), vec![]);
    // The batches name the messages a UID FETCH of the range finds: 500 in the first.
    let (high, low) = all[0];
    let fetched = ann.run(&format!("UID FETCH {low}:{high} (UID)"));
    assert_eq!(fetched.starting("* ").len(), 500, "{fetched:?}");
}

#[test]
fn refusals_and_edges() {
    let server = server();
    let mut ann = Imap::login(&server, "ann");
    assert!(ann.run("CREATE Empty").ok());
    assert!(ann.run("SELECT Empty").ok());
    // An empty mailbox has no batches: the response carries the tag only.
    assert_eq!(ann.batches("1000"), vec![]);
    assert_eq!(ann.batches("500 1:3"), vec![]);

    // Batches smaller than 500 messages: NO [TOOFEW].
    for small in ["1", "100", "499", "1 100:100"] {
        let a = ann.run(&format!("UIDBATCHES {small}"));
        assert!(a.done.starts_with("NO [TOOFEW]"), "{small}: {a:?}");
        assert!(a.starting("* UIDBATCHES").is_empty());
    }
    // A range from a higher batch to a lower one is the client's mistake.
    let a = ann.run("UIDBATCHES 1000 4:1");
    assert!(a.done.starts_with("BAD [CLIENTBUG]"), "{a:?}");
    // More batches than one answer carries: NO [TOOMANY] (10,000 is the most).
    let a = ann.run("UIDBATCHES 500 1:10001");
    assert!(a.done.starts_with("NO [TOOMANY]"), "{a:?}");
    assert!(ann.run("UIDBATCHES 500 1:10000").ok());
    assert!(ann.run("UIDBATCHES 500 4294967295:4294967295").ok());
    // Syntax: BAD, never a panic, and the session goes on.
    for bad in
        ["", " ", "abc", "0", "-5", "500 10", "500 0:3", "500 1:", "500 1:*", "500 1:2 3", "4294967296"]
    {
        let a = ann.run(&format!("UIDBATCHES{}{bad}", if bad.is_empty() { "" } else { " " }));
        assert!(a.done.starts_with("BAD"), "{bad:?}: {a:?}");
    }
    assert!(ann.run("NOOP").ok());
}

#[test]
fn uidonly_and_new_arrivals() {
    let server = server();
    let mut ann = Imap::login(&server, "ann");
    ann.fill("INBOX", 600);
    assert!(ann.run("ENABLE UIDONLY").ok());
    assert!(ann.run("SELECT INBOX").ok());
    // RFC 9586 forbids message numbers, not UIDBATCHES: it is how such a client cuts a mailbox.
    assert_eq!(ann.batches("500"), vec![(600, 101), (100, 1)]);

    // A message appended by another session is announced first and counted in batch 1.
    let mut other = Imap::login(&server, "ann");
    other.fill("INBOX", 1);
    let tag = ann.next_tag();
    let a = ann.run("UIDBATCHES 500");
    assert!(a.ok(), "{a:?}");
    let exists = a.untagged.iter().position(|l| l == "* 601 EXISTS").expect("EXISTS first");
    let batches = a.untagged.iter().position(|l| l.starts_with("* UIDBATCHES")).unwrap();
    assert!(exists < batches, "{a:?}");
    assert_eq!(a.untagged[batches], format!("* UIDBATCHES (TAG \"{tag}\") 601:102,101:1"));
}
