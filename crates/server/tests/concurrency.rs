//! A model-checking concurrency test: twenty clients share one mailbox and each one checks every
//! untagged response against its own model of that mailbox.
//!
//! Every client logs in over its own connection, selects INBOX and then runs a fixed, seeded
//! sequence of random operations: APPEND, UID STORE (some with UNCHANGEDSINCE), STORE and FETCH by
//! sequence number, SEARCH, UID EXPUNGE, EXPUNGE, UID MOVE and UID COPY. A third of the clients
//! speak plain IMAP4rev1 (some with IMAP4rev2 enabled), a third enable CONDSTORE, a third QRESYNC.
//! Each client keeps a model (sequence number → UID and flags, UIDs ever expunged, the highest
//! MODSEQ seen per message) that it updates *only* from the untagged responses it receives, and
//! checks each response against it: EXPUNGE of an unknown sequence number, EXISTS that shrinks the
//! mailbox, a FETCH whose sequence number is out of range or whose UID contradicts the model, a UID
//! that comes back after it was expunged, MODSEQ going back or flags changing without a new MODSEQ,
//! EXPUNGE/VANISHED during FETCH/STORE/SEARCH, EXPUNGE where VANISHED is due, FETCH without UID and
//! MODSEQ for a CONDSTORE-aware client, a non-EARLIER VANISHED of a UID the client cannot know.
//!
//! At the end every client sends NOOP and fetches `1:* (UID FLAGS)`: the flags it had must be the
//! server's (otherwise it missed an update) and its whole view must equal the state a fresh
//! connection reads. Across clients: no UID was handed out twice (APPENDUID, COPYUID), every
//! acknowledged APPEND that no command tried to remove is there with its content, every removal a
//! client saw is permanent, and no client saw a MODSEQ above the final HIGHESTMODSEQ.
//!
//! The second test runs the same workload, kills the server with SIGKILL half-way and restarts it
//! on the same data directory; the clients reconnect (QRESYNC clients resynchronise with
//! `SELECT INBOX (QRESYNC (uidvalidity modseq))` and check that the known UIDs minus VANISHED plus
//! the changed messages are exactly the mailbox) and carry on, and the checks above must still
//! hold: nothing acknowledged, and nothing any client was shown, may be lost.
//!
//! Limits: only INBOX is watched (the MOVE/COPY target is only checked for its new UIDs); the
//! clients never IDLE (the lead's session tests cover IDLE); every read has a timeout, so a server
//! that stops answering fails the test instead of hanging it.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::{PATIENCE, binary, run_cli};

const USER: &str = "shared";
const PASSWORD: &str = "twenty clients one mailbox";
/// The mailbox every client has selected.
const WATCHED: &str = "INBOX";
/// Where MOVE and COPY put messages.
const OTHER: &str = "Elsewhere";
/// Messages in INBOX before the clients start.
const SEEDED: usize = 30;
/// Longest any single read may wait: a silent server fails the test.
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest the whole workload may take before the clients give up.
const WORKLOAD_LIMIT: Duration = Duration::from_secs(50);
/// Violations recorded per client before it stops (the first ones are the interesting ones).
const MAX_VIOLATIONS: usize = 12;
/// The flags the random STOREs play with (never `\Deleted`, which only the removals set).
const FLAGS: [&str; 4] = ["\\Seen", "\\Flagged", "\\Answered", "$Work"];

// ---------------------------------------------------------------------------------------------
// A server that can be killed and started again on its data directory
// ---------------------------------------------------------------------------------------------

/// A data directory and configuration with at most one `postfach serve` running on them.
struct Server {
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    addr: Option<SocketAddr>,
}

impl Server {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("postfach.toml");
        // Cleartext logins keep 20 TLS handshakes per start out of the time budget; the
        // connection is 127.0.0.1 only.
        let text = format!(
            "data_dir = {:?}\n[imap]\nlisten = [\"127.0.0.1:0\"]\nlisten_tls = [\"127.0.0.1:0\"]\n\
             allow_plaintext_auth = true\n[log]\nlevel = \"info\"\n",
            dir.path().join("data").display().to_string()
        );
        std::fs::write(&config, text).unwrap();
        let out = run_cli(&config, &["user", "add", USER, "--password-stdin"], &format!("{PASSWORD}\n"));
        assert!(out.status.success(), "user add: {}", String::from_utf8_lossy(&out.stderr));
        Self { dir, config, child: None, addr: None }
    }

    /// Starts the server and waits for its cleartext listener (the port changes at each start).
    fn start(&mut self) -> SocketAddr {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            // Keeps draining after the listeners are known, so the server never blocks on stdout.
            for line in io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + PATIENCE;
        let addr = loop {
            let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not announce its listener; log:\n{}", self.log_tail(40));
            };
            if let Some(addr) = line.strip_prefix("postfach: listening imap ") {
                break addr.parse().unwrap();
            }
        };
        self.child = Some(child);
        self.addr = Some(addr);
        addr
    }

    /// SIGKILL: no shutdown code runs (`Child::kill` sends SIGKILL on Unix).
    fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(status.code().is_none(), "the server exited by itself before the kill: {status:?}");
        self.addr = None;
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The last `n` lines of the server's log.
    fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A seeded PRNG (splitmix64): the same seed gives the same workload
// ---------------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

// ---------------------------------------------------------------------------------------------
// The wire: whole responses (literals included) over a TCP connection
// ---------------------------------------------------------------------------------------------

/// A cleartext IMAP connection that returns I/O failures as values: in the kill test the server
/// dies under it.
struct Conn {
    tcp: TcpStream,
    pending: Vec<u8>,
    /// The last lines sent and received, for failure reports.
    transcript: VecDeque<String>,
}

impl Conn {
    fn connect(addr: SocketAddr) -> io::Result<Self> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(READ_TIMEOUT))?;
        tcp.set_write_timeout(Some(READ_TIMEOUT))?;
        Ok(Self { tcp, pending: Vec::new(), transcript: VecDeque::new() })
    }

    fn note(&mut self, line: String) {
        if self.transcript.len() == 60 {
            self.transcript.pop_front();
        }
        self.transcript.push_back(line);
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        self.note(format!("C: {}", shown.trim_end()));
        self.tcp.write_all(bytes)?;
        self.tcp.flush()
    }

    /// Fills `pending` with at least `n` bytes.
    fn fill(&mut self, n: usize) -> io::Result<()> {
        while self.pending.len() < n {
            let mut buf = [0u8; 8192];
            let got = self.tcp.read(&mut buf)?;
            if got == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            self.pending.extend_from_slice(&buf[..got]);
        }
        Ok(())
    }

    /// One line without its CRLF.
    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line = self.pending[..end].to_vec();
                self.pending.drain(..end + 2);
                return Ok(line);
            }
            if self.pending.len() > 1 << 20 {
                return Err(io::Error::other("a response line longer than 1 MiB"));
            }
            let have = self.pending.len();
            self.fill(have + 1)?;
        }
    }

    /// One complete response: its lines joined by CRLF with each literal's data in place.
    fn response(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let line = self.line()?;
            out.extend_from_slice(&line);
            let Some(n) = literal_len(&line) else { break };
            if n > 1 << 20 {
                return Err(io::Error::other("a literal larger than 1 MiB"));
            }
            out.extend_from_slice(b"\r\n");
            self.fill(n)?;
            out.extend(self.pending.drain(..n));
        }
        let shown = String::from_utf8_lossy(&out[..out.len().min(300)]).into_owned();
        self.note(format!("S: {shown}"));
        Ok(out)
    }
}

/// `... {12}` or `{12+}` at the end of a line → 12.
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = std::str::from_utf8(line).ok()?;
    let inner = line.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    inner[open + 1..].trim_end_matches('+').parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A parsed IMAP value inside a FETCH response.
#[derive(Debug, Clone)]
enum Value {
    Atom(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
}

impl Value {
    fn atom(&self) -> Option<&str> {
        match self {
            Value::Atom(a) => Some(a),
            _ => None,
        }
    }
}

/// Parses the values of `input` from `*at` up to a closing `)` (or the end).
fn parse_values(input: &[u8], at: &mut usize) -> Result<Vec<Value>, String> {
    let mut values = Vec::new();
    loop {
        while input.get(*at) == Some(&b' ') {
            *at += 1;
        }
        let Some(&c) = input.get(*at) else { return Ok(values) };
        match c {
            b')' => {
                *at += 1;
                return Ok(values);
            }
            b'(' => {
                *at += 1;
                values.push(Value::List(parse_values(input, at)?));
            }
            b'"' => {
                *at += 1;
                let mut s = Vec::new();
                loop {
                    match input.get(*at) {
                        None => return Err("unterminated quoted string".into()),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            s.push(*input.get(*at + 1).ok_or("bad escape")?);
                            *at += 2;
                        }
                        Some(&b) => {
                            s.push(b);
                            *at += 1;
                        }
                    }
                }
                *at += 1;
                values.push(Value::Bytes(s));
            }
            b'{' => {
                let close = input[*at..].iter().position(|&b| b == b'}').ok_or("bad literal")? + *at;
                let n: usize = std::str::from_utf8(&input[*at + 1..close])
                    .map_err(|_| "bad literal length")?
                    .trim_end_matches('+')
                    .parse()
                    .map_err(|_| "bad literal length")?;
                let start = close + 3;
                let data = input.get(start..start + n).ok_or("short literal")?;
                values.push(Value::Bytes(data.to_vec()));
                *at = start + n;
            }
            _ => {
                // An atom; a `[...]` section inside it (BODY[HEADER.FIELDS (X)]) may hold spaces.
                let start = *at;
                let mut depth = 0;
                while let Some(&b) = input.get(*at) {
                    match b {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b' ' | b'(' | b')' if depth == 0 => break,
                        _ => {}
                    }
                    *at += 1;
                }
                values.push(Value::Atom(String::from_utf8_lossy(&input[start..*at]).into_owned()));
            }
        }
    }
}

/// What one FETCH response says about a message.
#[derive(Debug, Clone, Default)]
struct FetchData {
    uid: Option<u32>,
    flags: Option<BTreeSet<String>>,
    modseq: Option<u64>,
    /// The `X-Op` header field value, when a header section was fetched.
    marker: Option<String>,
}

/// Flags as a set, lower-cased, without `\Recent` (which is per session).
fn flag_set<'a>(flags: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    flags.into_iter().map(str::to_ascii_lowercase).filter(|f| f != "\\recent").collect()
}

fn parse_fetch(input: &[u8]) -> Result<FetchData, String> {
    let open = input.iter().position(|&b| b == b'(').ok_or("FETCH without a list")?;
    let mut at = open + 1;
    let items = parse_values(input, &mut at)?;
    let mut data = FetchData::default();
    let mut it = items.iter();
    while let Some(name) = it.next() {
        let name = name.atom().ok_or("FETCH item name is not an atom")?.to_ascii_uppercase();
        let value = it.next().ok_or_else(|| format!("FETCH item {name} without a value"))?;
        match (name.as_str(), value) {
            ("UID", Value::Atom(n)) => data.uid = Some(n.parse().map_err(|_| format!("bad UID {n}"))?),
            ("FLAGS", Value::List(flags)) => {
                data.flags = Some(flag_set(flags.iter().filter_map(Value::atom)));
            }
            ("MODSEQ", Value::List(m)) => {
                let m = m.first().and_then(Value::atom).ok_or("bad MODSEQ")?;
                data.modseq = Some(m.parse().map_err(|_| format!("bad MODSEQ {m}"))?);
            }
            (n, Value::Bytes(b)) if n.starts_with("BODY[") => {
                let text = String::from_utf8_lossy(b);
                data.marker = text
                    .lines()
                    .find_map(|l| l.strip_prefix("X-Op:").or_else(|| l.strip_prefix("x-op:")))
                    .map(|v| v.trim().to_owned());
            }
            _ => {}
        }
    }
    Ok(data)
}

/// A sequence set of UIDs (`1:3,7`) → the UIDs; ranges are bounded, a huge one is an error.
fn parse_set(text: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (a, b) = part.split_once(':').unwrap_or((part, part));
        let a: u32 = a.parse().map_err(|_| format!("bad set {text}"))?;
        let b: u32 = b.parse().map_err(|_| format!("bad set {text}"))?;
        let (lo, hi) = (a.min(b), a.max(b));
        if hi - lo > 100_000 {
            return Err(format!("absurd range in {text}"));
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// One untagged response, as far as the model cares.
#[derive(Debug, Clone)]
enum Untagged {
    Exists(u32),
    Expunge(u32),
    Fetch(u32, FetchData),
    Vanished { earlier: bool, uids: Vec<u32> },
    /// `SEARCH` or `ESEARCH ... ALL set`: message numbers.
    Search(Vec<u32>),
    /// `* OK [CODE ...]`: the code's text.
    Code(String),
    Bye(String),
    Other(String),
}

/// A tagged completion.
#[derive(Debug, Clone)]
struct Done {
    status: String,
    code: Option<String>,
    text: String,
    untagged: Vec<Untagged>,
}

impl Done {
    fn ok(&self) -> bool {
        self.status == "OK"
    }

    /// Every response code of the exchange, the tagged one last.
    fn codes(&self) -> impl Iterator<Item = &str> {
        self.untagged
            .iter()
            .filter_map(|u| match u {
                Untagged::Code(c) => Some(c.as_str()),
                _ => None,
            })
            .chain(self.code.as_deref())
    }

    /// `[COPYUID v from to]`, anywhere in the exchange: (v, [(from, to)]).
    fn copy_uid(&self) -> Option<(u32, Vec<(u32, u32)>)> {
        let code = self.codes().find(|c| c.starts_with("COPYUID "))?;
        let mut words = code.split(' ').skip(1);
        let validity = words.next()?.parse().ok()?;
        let from = parse_set(words.next()?).ok()?;
        let to = parse_set(words.next()?).ok()?;
        (from.len() == to.len()).then(|| (validity, from.into_iter().zip(to).collect()))
    }

    /// Every FETCH of the exchange: (sequence number, data).
    fn fetches(&self) -> Vec<(u32, &FetchData)> {
        self.untagged
            .iter()
            .filter_map(|u| match u {
                Untagged::Fetch(seq, data) => Some((*seq, data)),
                _ => None,
            })
            .collect()
    }
}

/// The text inside `[...]` at the start of `text`, and what follows.
fn split_code(text: &str) -> (Option<String>, String) {
    if let Some(rest) = text.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            return (Some(rest[..end].to_owned()), rest[end + 1..].trim_start().to_owned());
        }
    }
    (None, text.to_owned())
}

/// Parses a response; `Err` for a tagged one: (tag, status, code, text).
fn parse_response(raw: &[u8]) -> Result<Result<Untagged, (String, String, Option<String>, String)>, String> {
    let text = String::from_utf8_lossy(raw).into_owned();
    let Some(rest) = text.strip_prefix("* ") else {
        let (tag, rest) = text.split_once(' ').ok_or_else(|| format!("unparseable response {text:?}"))?;
        let (status, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let (code, text) = split_code(rest);
        return Ok(Err((tag.to_owned(), status.to_ascii_uppercase(), code, text)));
    };
    let mut words = rest.splitn(3, ' ');
    let first = words.next().unwrap_or_default();
    if let Ok(n) = first.parse::<u32>() {
        let kind = words.next().unwrap_or_default().to_ascii_uppercase();
        return Ok(Ok(match kind.as_str() {
            "EXISTS" => Untagged::Exists(n),
            "EXPUNGE" => Untagged::Expunge(n),
            "FETCH" => {
                let at = raw.windows(6).position(|w| w.eq_ignore_ascii_case(b"FETCH ")).unwrap_or(0);
                Untagged::Fetch(n, parse_fetch(&raw[at..])?)
            }
            _ => Untagged::Other(text),
        }));
    }
    let after = rest[first.len()..].trim_start();
    Ok(Ok(match first.to_ascii_uppercase().as_str() {
        "OK" | "NO" | "BAD" => match split_code(after) {
            (Some(code), _) => Untagged::Code(code),
            (None, _) => Untagged::Other(text),
        },
        "BYE" => Untagged::Bye(after.to_owned()),
        "VANISHED" => {
            let (earlier, set) = match after.strip_prefix("(EARLIER) ") {
                Some(set) => (true, set),
                None => (false, after),
            };
            Untagged::Vanished { earlier, uids: parse_set(set.trim())? }
        }
        "SEARCH" => Untagged::Search(
            after.split_whitespace().map(|n| n.parse().map_err(|_| format!("bad SEARCH {text}"))).collect::<Result<_, _>>()?,
        ),
        "ESEARCH" => {
            let words: Vec<&str> = after.split(' ').collect();
            let all = words.iter().position(|w| w.eq_ignore_ascii_case("ALL"));
            Untagged::Search(match all.and_then(|i| words.get(i + 1)) {
                Some(set) => parse_set(set)?,
                None => Vec::new(),
            })
        }
        _ => Untagged::Other(text),
    }))
}
