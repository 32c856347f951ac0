//! Crash safety of the real binary: an acknowledged change survives SIGKILL.
//!
//! A client streams pipelined APPENDs (and STOREs of flags on earlier messages) and records every
//! tagged OK with the APPENDUID it got; the server is killed with SIGKILL in the middle, at three
//! different moments (small APPENDs in flight, STOREs in flight, a large literal in flight), and
//! restarted on the same data directory. After each restart every acknowledged APPEND must be
//! there with the same UID and the same bytes, every acknowledged STORE's flags must be there,
//! nothing may be duplicated, UIDVALIDITY must not change, and the next APPEND must get a UID
//! above every earlier one. Unacknowledged commands may or may not have happened, but wholly or
//! not at all. A last round stops the server with SIGTERM and checks the same after a clean start.
//!
//! Limits: the server runs in the harness's restartable `Deployment` (info-level log, no LMTP);
//! the streaming client uses the harness's fallible calls (`try_tls`, `try_send_raw`,
//! `try_read_line`) and reports I/O errors instead of panicking, since the connection dying under
//! it is the point.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, Deployment, Wire};

const USER: &str = "crash";
const PASSWORD: &str = "survives everything";

// ---------------------------------------------------------------------------------------------
// The streaming client: a TLS connection whose errors are values, as it is expected to die
// ---------------------------------------------------------------------------------------------

/// The next line; the end of the stream is an error here.
fn line(client: &mut Client) -> io::Result<String> {
    client.try_read_line()?.ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
}

/// Sends `tag command` and waits for the tagged OK.
fn ok(client: &mut Client, tag: &str, command: &str) -> io::Result<String> {
    client.try_send_raw(format!("{tag} {command}\r\n").as_bytes())?;
    loop {
        let line = line(client)?;
        if let Some(done) = line.strip_prefix(&format!("{tag} ")) {
            assert!(done.starts_with("OK"), "{command}: {line}");
            return Ok(line);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the client knows was done
// ---------------------------------------------------------------------------------------------

/// A message whose APPEND was acknowledged (or found after a restart).
#[derive(Debug, Clone)]
struct Known {
    body: String,
    flags: BTreeSet<String>,
}

/// A command sent whose tagged response has not been seen.
#[derive(Debug, Clone)]
enum InFlight {
    Append { body: String, flags: BTreeSet<String> },
    Store { uid: u32, flags: BTreeSet<String> },
}

/// Everything the streaming client learnt, shared with the test thread.
#[derive(Debug, Default)]
struct Ledger {
    validity: Option<u32>,
    /// UID → message, for every acknowledged APPEND (and every in-flight one found later).
    known: BTreeMap<u32, Known>,
    /// Tag → command, for commands sent and not yet answered.
    in_flight: BTreeMap<String, InFlight>,
    /// UIDs a STORE was ever sent for (each message gets at most one).
    stored: BTreeSet<u32>,
    /// Tagged OKs received (APPENDs and STOREs).
    acks: usize,
    /// Highest UID ever seen.
    max_uid: u32,
    /// Message counter, for unique Message-IDs.
    serial: usize,
}

fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    // A worker that panicked while holding the lock still left consistent data behind.
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the streaming client sends in one round.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// Pipelined batches of four small APPENDs.
    SmallAppends,
    /// Batches of one APPEND and three STOREs on earlier messages.
    Stores,
    /// One APPEND of a few hundred KiB at a time.
    LargeAppends,
}

/// A unique message of about `size` bytes, ASCII, CRLF line ends.
fn message(serial: usize, size: usize) -> String {
    let mut text = format!(
        "From: Streamer <s@example.org>\r\nTo: crash@example.org\r\nSubject: message {serial}\r\n\
         Message-ID: <crash-{serial}@test>\r\n\r\n"
    );
    let line = format!("{serial:08} the quick brown fox jumps over the lazy dog 0123456789\r\n");
    while text.len() < size {
        text.push_str(&line);
    }
    text
}

fn flag_set(text: &str) -> BTreeSet<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// Streams `load` until the connection dies; every step is recorded in `ledger` before it is sent
/// and when it is acknowledged.
fn stream(addr: SocketAddr, cert: PathBuf, ledger: Arc<Mutex<Ledger>>, load: Load) {
    let result = (|| -> io::Result<()> {
        let mut s = Client::try_tls(addr, &cert)?;
        line(&mut s)?; // greeting
        ok(&mut s, "L", &format!("LOGIN {USER} \"{PASSWORD}\""))?;
        ok(&mut s, "S", "SELECT INBOX")?;
        let mut tag_serial = 0usize;
        loop {
            let mut batch = Vec::new();
            let mut tags = Vec::new();
            {
                let mut l = lock(&ledger);
                let (appends, stores, size) = match load {
                    Load::SmallAppends => (4, 0, 1500),
                    Load::Stores => (1, 3, 800),
                    Load::LargeAppends => (1, 0, 400 * 1024),
                };
                for _ in 0..appends {
                    l.serial += 1;
                    tag_serial += 1;
                    let tag = format!("A{tag_serial}");
                    let body = message(l.serial, size + (l.serial % 7) * 100);
                    let flags = if l.serial.is_multiple_of(3) { flag_set("\\Seen") } else { BTreeSet::new() };
                    let list = flags.iter().cloned().collect::<Vec<_>>().join(" ");
                    batch.extend_from_slice(
                        format!("{tag} APPEND INBOX ({list}) {{{}+}}\r\n", body.len()).as_bytes(),
                    );
                    batch.extend_from_slice(body.as_bytes());
                    batch.extend_from_slice(b"\r\n");
                    l.in_flight.insert(tag.clone(), InFlight::Append { body, flags });
                    tags.push(tag);
                }
                let candidates: Vec<u32> =
                    l.known.keys().copied().filter(|u| !l.stored.contains(u)).take(stores).collect();
                for uid in candidates {
                    tag_serial += 1;
                    let tag = format!("S{tag_serial}");
                    let flags = flag_set(&format!("\\Flagged $Label{}", uid % 4));
                    let list = flags.iter().cloned().collect::<Vec<_>>().join(" ");
                    batch.extend_from_slice(
                        format!("{tag} UID STORE {uid} FLAGS.SILENT ({list})\r\n").as_bytes(),
                    );
                    l.stored.insert(uid);
                    l.in_flight.insert(tag.clone(), InFlight::Store { uid, flags });
                    tags.push(tag);
                }
            }
            s.try_send_raw(&batch)?;
            let mut open: BTreeSet<String> = tags.into_iter().collect();
            while !open.is_empty() {
                let line = line(&mut s)?;
                let Some((tag, done)) = line.split_once(' ') else { continue };
                if !open.remove(tag) {
                    continue;
                }
                assert!(done.starts_with("OK"), "{line}");
                let mut l = lock(&ledger);
                match l.in_flight.remove(tag) {
                    Some(InFlight::Append { body, flags }) => {
                        let (validity, uid) =
                            append_uid(done).unwrap_or_else(|| panic!("no APPENDUID: {line}"));
                        assert_eq!(*l.validity.get_or_insert(validity), validity, "UIDVALIDITY changed");
                        assert!(uid > l.max_uid, "APPENDUID {uid} not above {}", l.max_uid);
                        l.max_uid = uid;
                        l.known.insert(uid, Known { body, flags });
                    }
                    Some(InFlight::Store { uid, flags }) => {
                        l.known.get_mut(&uid).unwrap().flags = flags;
                    }
                    None => unreachable!("tag {tag} was in flight"),
                }
                l.acks += 1;
            }
        }
    })();
    // The connection is expected to die; anything else is the server misbehaving.
    if let Err(e) = result {
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            ),
            "the stream ended with an unexpected error: {e}"
        );
    }
}

/// `OK [APPENDUID 38505 3955] ...` → (38505, 3955).
fn append_uid(done: &str) -> Option<(u32, u32)> {
    let rest = done.split("[APPENDUID ").nth(1)?;
    let mut words = rest.split([' ', ']']);
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

// ---------------------------------------------------------------------------------------------
// Checking after a restart
// ---------------------------------------------------------------------------------------------

/// One message as fetched: UID, flags, bytes.
struct Fetched {
    uid: u32,
    flags: BTreeSet<String>,
    body: String,
}

/// Everything in INBOX, and its UIDVALIDITY.
fn fetch_all(client: &mut Client) -> (u32, Vec<Fetched>) {
    client.send("v1 SELECT INBOX");
    let lines = client.expect_tagged("v1");
    assert!(lines.last().unwrap().starts_with("v1 OK"), "{lines:?}");
    let validity = lines
        .iter()
        .find_map(|l| l.strip_prefix("* OK [UIDVALIDITY ")?.split(']').next()?.parse().ok())
        .expect("UIDVALIDITY in SELECT");
    client.send("v2 UID FETCH 1:* (UID FLAGS BODY.PEEK[])");
    let mut messages = Vec::new();
    loop {
        // The only literal is the last FETCH item, BODY[].
        let mut response = client.read_response();
        let (text, literal) = (response.text(), response.literals.pop());
        if text.starts_with("v2 ") {
            assert!(text.starts_with("v2 OK"), "{text}");
            return (validity, messages);
        }
        if !text.contains(" FETCH (") {
            continue;
        }
        let uid = text.split("UID ").nth(1).unwrap().split([' ', ')']).next().unwrap().parse().unwrap();
        let flags = flag_set(text.split("FLAGS (").nth(1).unwrap().split(')').next().unwrap());
        messages.push(Fetched { uid, flags, body: literal.expect("BODY[] literal") });
    }
}

/// Restart checks: acknowledged work survived exactly, in-flight work happened wholly or not at
/// all, nothing is duplicated, UIDVALIDITY is unchanged, and the next UID is above every earlier
/// one. Folds what was found into the ledger for the next round.
fn verify(deployment: &Deployment, ledger: &Mutex<Ledger>, round: &str) {
    let mut client = Client::tls(deployment.listeners().imaps, &deployment.cert_path());
    client.read_line();
    client.send(&format!("v0 LOGIN {USER} \"{PASSWORD}\""));
    assert!(client.expect_tagged("v0").last().unwrap().starts_with("v0 OK"));
    // IMAP4rev2: no \Recent in the flags compared below.
    client.send("v9 ENABLE IMAP4rev2");
    assert!(client.expect_tagged("v9").last().unwrap().starts_with("v9 OK"));
    let (validity, found) = fetch_all(&mut client);

    let mut l = lock(ledger);
    assert_eq!(Some(validity), l.validity, "{round}: UIDVALIDITY changed across the restart");
    let mut seen_ids = BTreeSet::new();
    for m in &found {
        let id = m.body.split("Message-ID: ").nth(1).unwrap().split("\r\n").next().unwrap().to_owned();
        assert!(seen_ids.insert(id.clone()), "{round}: message {id} is there twice");
    }
    let by_uid: BTreeMap<u32, &Fetched> = found.iter().map(|m| (m.uid, m)).collect();
    let in_flight: Vec<InFlight> = std::mem::take(&mut l.in_flight).into_values().collect();
    let pending_store = |uid: u32| {
        in_flight.iter().find_map(|c| match c {
            InFlight::Store { uid: u, flags } if *u == uid => Some(flags.clone()),
            _ => None,
        })
    };

    // Every acknowledged APPEND, with its UID, bytes and acknowledged flags.
    let known = std::mem::take(&mut l.known);
    for (uid, k) in &known {
        let m = by_uid.get(uid).unwrap_or_else(|| panic!("{round}: acknowledged UID {uid} is gone"));
        assert!(
            m.body == k.body,
            "{round}: UID {uid} has different bytes ({} vs {})",
            m.body.len(),
            k.body.len()
        );
        match pending_store(*uid) {
            // An unacknowledged STORE happened or not, but not halfway.
            Some(new) => {
                assert!(m.flags == k.flags || m.flags == new, "{round}: UID {uid} flags {:?}", m.flags)
            }
            None => assert_eq!(m.flags, k.flags, "{round}: UID {uid} lost acknowledged flags"),
        }
    }
    // Anything else must be an unacknowledged APPEND, whole, with its flags.
    for m in &found {
        if known.contains_key(&m.uid) {
            continue;
        }
        let matched = in_flight
            .iter()
            .any(|c| matches!(c, InFlight::Append { body, flags } if *body == m.body && *flags == m.flags));
        assert!(matched, "{round}: UID {} is neither acknowledged nor a whole in-flight APPEND", m.uid);
        // Responses come in order, so an unacknowledged APPEND ran after every acknowledged one.
        assert!(m.uid > l.max_uid, "{round}: in-flight APPEND got UID {}, not above {}", m.uid, l.max_uid);
    }
    // The state found is now the reference for the next round.
    let max_found = found.iter().map(|m| m.uid).max().unwrap_or(0);
    l.max_uid = l.max_uid.max(max_found);
    l.known = found.iter().map(|m| (m.uid, Known { body: m.body.clone(), flags: m.flags.clone() })).collect();
    let surviving_in_flight = found.len() - known.len();
    drop(l);

    // The next APPEND gets a UID above every earlier one (RFC 9051 §2.3.1.1).
    let body = message(1_000_000 + max_found as usize, 200);
    client.send_raw(format!("v3 APPEND INBOX {{{}+}}\r\n{body}\r\n", body.len()).as_bytes());
    let done = client.expect_tagged("v3").pop().unwrap();
    let (v, uid) = append_uid(&done).unwrap_or_else(|| panic!("{round}: {done}"));
    assert_eq!(v, validity);
    let mut l = lock(ledger);
    assert!(uid > l.max_uid, "{round}: new UID {uid} is not above {}", l.max_uid);
    l.max_uid = uid;
    l.known.insert(uid, Known { body, flags: BTreeSet::new() });
    eprintln!(
        "{round}: {} messages verified after {} acknowledgements; {} of {} unacknowledged commands had happened",
        found.len(),
        l.acks,
        surviving_in_flight,
        in_flight.len()
    );
}

/// Runs `load` until `more` further acknowledgements arrived, then stops the server with `stop`.
fn round(
    deployment: &mut Deployment,
    ledger: &Arc<Mutex<Ledger>>,
    load: Load,
    more: usize,
    stop: impl FnOnce(&mut Deployment),
) {
    let target = lock(ledger).acks + more;
    let worker = {
        let (addr, cert, ledger) = (deployment.listeners().imaps, deployment.cert_path(), Arc::clone(ledger));
        thread::spawn(move || stream(addr, cert, ledger, load))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while lock(ledger).acks < target {
        if worker.is_finished() {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
            panic!("the streaming client stopped early; log:\n{}", deployment.log());
        }
        assert!(Instant::now() < deadline, "{load:?}: too slow; log:\n{}", deployment.log());
        thread::sleep(Duration::from_millis(2));
    }
    stop(deployment);
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn acknowledged_changes_survive_sigkill_and_sigterm() {
    let mut deployment = Deployment::new("");
    deployment.start();
    deployment.add_user(USER, PASSWORD);
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    // Three different moments for SIGKILL.
    round(&mut deployment, &ledger, Load::SmallAppends, 40, Deployment::kill9);
    deployment.start();
    verify(&deployment, &ledger, "SIGKILL during small APPENDs");

    round(&mut deployment, &ledger, Load::Stores, 30, Deployment::kill9);
    deployment.start();
    verify(&deployment, &ledger, "SIGKILL during STOREs");

    round(&mut deployment, &ledger, Load::LargeAppends, 3, Deployment::kill9);
    deployment.start();
    verify(&deployment, &ledger, "SIGKILL during large APPENDs");

    // A clean stop keeps everything too.
    round(&mut deployment, &ledger, Load::Stores, 20, |d| {
        let status = d.terminate();
        assert_eq!(status.code(), Some(0), "SIGTERM exit; log:\n{}", d.log());
    });
    deployment.start();
    verify(&deployment, &ledger, "SIGTERM");
    let l = lock(&ledger);
    assert!(l.known.len() > 50, "the rounds did work: {} messages", l.known.len());
}
