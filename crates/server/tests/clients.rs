//! Real mail clients against the real binary: Python's imaplib and mbsync (isync).
//!
//! imaplib runs `tests/scripts/imaplib_client.py` once over implicit TLS and once over STARTTLS:
//! folders created, renamed and deleted, a thousand varied messages appended, fetched back byte
//! for byte, flagged, half moved, some expunged, the final state checked; and
//! `tests/scripts/scram_login.py` logs in with SCRAM-SHA-256 when the server offers it.
//! mbsync syncs a local Maildir with the server both ways, propagates flags and deletions made
//! on either side, must find nothing to do on a second sync, and a second "device" (another
//! Maildir) must end up with the same state.
//!
//! A missing client (python3, mbsync) makes its test print why and pass, unless the environment
//! sets `POSTFACH_REQUIRE_CLIENTS=1` (CI does), which turns the skip into a failure. Every child
//! process runs under a deadline and is killed when it passes it.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{Client, TestServer};

const USER: &str = "alice";
const PASSWORD: &str = "imap client test password";

/// Longest a client program may run.
const CLIENT_DEADLINE: Duration = Duration::from_secs(120);

/// Whether a missing client must fail the test instead of skipping it.
fn clients_required() -> bool {
    std::env::var("POSTFACH_REQUIRE_CLIENTS").is_ok_and(|v| v == "1")
}

/// True if `program --version` can be run; otherwise reports the skip (or fails, in CI).
fn available(program: &str, package: &str) -> bool {
    let found =
        Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        let message = format!("skipping: {program} not installed (apt-get install {package})");
        assert!(!clients_required(), "POSTFACH_REQUIRE_CLIENTS=1 but {message}");
        eprintln!("{message}");
    }
    found
}

/// Output of a finished client program.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `command` with its output in files under `dir`, killing it after `limit`.
fn run(command: &mut Command, dir: &Path, limit: Duration) -> Finished {
    let out_path = dir.join("client.out");
    let err_path = dir.join("client.err");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

fn server() -> TestServer {
    let server = TestServer::start();
    server.add_user(USER, PASSWORD);
    server
}

// ---------------------------------------------------------------------------------------------
// Python imaplib
// ---------------------------------------------------------------------------------------------

fn imaplib(mode: &str) {
    if !available("python3", "python3") {
        return;
    }
    let server = server();
    let port = if mode == "ssl" { server.imaps.port() } else { server.imap.port() };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/imaplib_client.py");
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let done = run(
        Command::new("python3")
            .arg(&script)
            .args(["--mode", mode, "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--user", USER, "--password", PASSWORD, "--count", "1000"])
            .arg("--cafile")
            .arg(server.cert_path()),
        dir.path(),
        CLIENT_DEADLINE,
    );
    assert!(
        done.status.success(),
        "imaplib over {mode} failed ({:?}):\nstdout:\n{}\nstderr:\n{}\nserver log (tail):\n{}",
        done.status,
        done.stdout,
        done.stderr,
        tail(&server.log(), 40)
    );
    assert!(done.stdout.contains("imaplib: all checks passed"), "{}", done.stdout);
    eprintln!("imaplib over {mode}: {:?}\n{}", started.elapsed(), done.stdout);
}

/// The last `n` lines of `text` above debug level.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains(" DEBUG ")).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn imaplib_over_implicit_tls() {
    imaplib("ssl");
}

#[test]
fn imaplib_over_starttls() {
    imaplib("starttls");
}

/// AUTHENTICATE SCRAM-SHA-256 (RFC 5802, RFC 7677), when advertised, works for an account made
/// with `postfach user add`, as clients that prefer it (mbsync through Cyrus SASL) need.
#[test]
fn scram_sha_256_login() {
    if !available("python3", "python3") {
        return;
    }
    let server = server();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/scram_login.py");
    let dir = tempfile::tempdir().unwrap();
    let done = run(
        Command::new("python3")
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", &server.imaps.port().to_string()])
            .args(["--user", USER, "--password", PASSWORD])
            .arg("--cafile")
            .arg(server.cert_path()),
        dir.path(),
        CLIENT_DEADLINE,
    );
    assert!(
        done.status.success(),
        "SCRAM-SHA-256 failed ({:?}):\nstdout:\n{}\nstderr:\n{}\nserver log (tail):\n{}",
        done.status,
        done.stdout,
        done.stderr,
        tail(&server.log(), 20)
    );
    eprintln!("{}", done.stdout);
}

// ---------------------------------------------------------------------------------------------
// mbsync
// ---------------------------------------------------------------------------------------------

/// Per mailbox: Message-ID → Maildir flag letters (D F R S T), sorted.
type State = BTreeMap<String, BTreeMap<String, String>>;

/// A tiny IMAP session for setting up and inspecting the server side.
struct Imap {
    client: Client,
    tag: u32,
}

impl Imap {
    fn login(server: &TestServer) -> Self {
        let mut client = server.connect_tls();
        client.read_line();
        let mut imap = Self { client, tag: 0 };
        imap.ok(&format!("LOGIN {USER} \"{PASSWORD}\""));
        // IMAP4rev2: no session-dependent \Recent in the flags the snapshots compare.
        imap.ok("ENABLE IMAP4rev2");
        imap
    }

    /// Runs a command (CRLF-separated literals allowed) and returns its response lines, literal
    /// data folded into the line that announced it.
    fn ok(&mut self, command: &str) -> Vec<String> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        self.client.send(&format!("{tag} {command}"));
        let mut lines = Vec::new();
        loop {
            let mut line = self.client.read_line();
            // `... {n}`: read the literal's n bytes and the rest of the response line.
            while let Some(n) = line
                .rfind('{')
                .filter(|_| line.ends_with('}'))
                .and_then(|i| line[i + 1..line.len() - 1].parse::<usize>().ok())
            {
                let mut data = String::new();
                while data.len() < n {
                    data.push_str(&self.client.read_line());
                    data.push_str("\r\n");
                }
                let rest = if data.len() == n {
                    self.client.read_line()
                } else {
                    data[n..data.len() - 2].to_owned()
                };
                line = format!("{line}\r\n{}{rest}", &data[..n]);
            }
            if line.starts_with(&format!("{tag} ")) {
                assert!(line.starts_with(&format!("{tag} OK")), "{command}: {line}\n{lines:#?}");
                return lines;
            }
            lines.push(line);
        }
    }

    fn append(&mut self, mailbox: &str, flags: &str, message: &str) {
        self.ok(&format!("APPEND {mailbox} ({flags}) {{{}+}}\r\n{message}", message.len()));
    }

    /// Every mailbox with its messages' Message-IDs and flags.
    fn state(&mut self) -> State {
        let mut state = State::new();
        let names: Vec<String> = self
            .ok("LIST \"\" \"*\"")
            .iter()
            .map(|l| l.rsplit_once("\"/\" ").unwrap().1.trim_matches('"').to_owned())
            .collect();
        for name in names {
            let mut messages = BTreeMap::new();
            self.ok(&format!("EXAMINE \"{name}\""));
            for line in self.ok("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])") {
                if !line.contains(" FETCH ") {
                    continue;
                }
                let flags = line.split("FLAGS (").nth(1).unwrap().split(')').next().unwrap();
                let id = message_id(&line).unwrap_or_else(|| panic!("no Message-ID in {line:?}"));
                assert!(
                    messages.insert(id.clone(), imap_to_maildir(flags)).is_none(),
                    "{id} twice in {name}"
                );
            }
            state.insert(name, messages);
        }
        state
    }

    /// (mailbox, UID, flags) of everything: equal snapshots mean nothing changed.
    fn snapshot(&mut self) -> BTreeSet<(String, String)> {
        let mut all = BTreeSet::new();
        let names: Vec<String> = self
            .ok("LIST \"\" \"*\"")
            .iter()
            .map(|l| l.rsplit_once("\"/\" ").unwrap().1.trim_matches('"').to_owned())
            .collect();
        for name in names {
            let status = self.ok(&format!("STATUS \"{name}\" (UIDVALIDITY UIDNEXT MESSAGES)"));
            all.insert((name.clone(), status.join(" ")));
            self.ok(&format!("EXAMINE \"{name}\""));
            for line in self.ok("UID FETCH 1:* (UID FLAGS)") {
                all.insert((name.clone(), line));
            }
        }
        all
    }
}

/// The `<...>` of a Message-ID header field in `text`.
fn message_id(text: &str) -> Option<String> {
    let at = text.to_ascii_lowercase().find("message-id:")?;
    let rest = &text[at + "message-id:".len()..];
    let start = rest.find('<')?;
    let end = rest[start..].find('>')?;
    Some(rest[start..=start + end].to_owned())
}

/// IMAP system flags → Maildir info letters, sorted (other flags are not synced by mbsync).
fn imap_to_maildir(flags: &str) -> String {
    let mut letters: Vec<char> = flags
        .split_whitespace()
        .filter_map(|f| match f.to_ascii_lowercase().as_str() {
            "\\draft" => Some('D'),
            "\\flagged" => Some('F'),
            "\\answered" => Some('R'),
            "\\seen" => Some('S'),
            "\\deleted" => Some('T'),
            _ => None,
        })
        .collect();
    letters.sort_unstable();
    letters.into_iter().collect()
}

/// A Maildir tree as mbsync lays it out with `SubFolders Verbatim`.
struct Maildir {
    root: PathBuf,
}

impl Maildir {
    /// The directory of mailbox `name` (INBOX is `root/INBOX`, `a/b` is `root/a/b`).
    fn folder(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Creates `name` with its cur/new/tmp.
    fn create(&self, name: &str) {
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(self.folder(name).join(sub)).unwrap();
        }
    }

    /// Delivers a message as a mail program would: into `new/`, or `cur/` with flags.
    fn deliver(&self, name: &str, file: &str, flags: Option<&str>, message: &str) {
        let path = match flags {
            None => self.folder(name).join("new").join(file),
            Some(f) => self.folder(name).join("cur").join(format!("{file}:2,{f}")),
        };
        std::fs::write(path, message).unwrap();
    }

    /// Every message file: (mailbox, path, Message-ID, flags).
    fn files(&self) -> Vec<(String, PathBuf, String, String)> {
        let mut out = Vec::new();
        self.walk(&self.root, "", &mut out);
        out.sort();
        out
    }

    fn walk(&self, dir: &Path, name: &str, out: &mut Vec<(String, PathBuf, String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let entry = entry.unwrap();
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with('.') || !entry.file_type().unwrap().is_dir() {
                continue;
            }
            match file.as_str() {
                "cur" | "new" => {
                    for message in std::fs::read_dir(entry.path()).unwrap() {
                        let path = message.unwrap().path();
                        let base = path.file_name().unwrap().to_string_lossy().into_owned();
                        let flags = base.split_once(":2,").map(|(_, f)| f.to_owned()).unwrap_or_default();
                        let mut letters: Vec<char> =
                            flags.chars().filter(|c| c.is_ascii_uppercase()).collect();
                        letters.sort_unstable();
                        let text = std::fs::read_to_string(&path).unwrap();
                        let id = message_id(&text)
                            .unwrap_or_else(|| panic!("no Message-ID in {}", path.display()));
                        out.push((name.to_owned(), path, id, letters.into_iter().collect()));
                    }
                }
                "tmp" => {}
                sub => {
                    let child = if name.is_empty() { sub.to_owned() } else { format!("{name}/{sub}") };
                    self.walk(&entry.path(), &child, out);
                }
            }
        }
    }

    /// Per mailbox: Message-ID → flags, without messages marked T (deleted).
    fn state(&self) -> State {
        let mut state = State::new();
        for dir in std::fs::read_dir(&self.root).unwrap() {
            // Every folder exists in the state, even when empty.
            let dir = dir.unwrap();
            if dir.file_type().unwrap().is_dir() && !dir.file_name().to_string_lossy().starts_with('.') {
                self.folders(&dir.path(), &dir.file_name().to_string_lossy(), &mut state);
            }
        }
        for (mailbox, _, id, flags) in self.files() {
            let messages = state.entry(mailbox.clone()).or_default();
            assert!(messages.insert(id.clone(), flags).is_none(), "{id} twice in {mailbox}");
        }
        state
    }

    fn folders(&self, dir: &Path, name: &str, state: &mut State) {
        if dir.join("cur").is_dir() {
            state.entry(name.to_owned()).or_default();
        }
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let file = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir()
                && !["cur", "new", "tmp"].contains(&file.as_str())
                && !file.starts_with('.')
            {
                self.folders(&entry.path(), &format!("{name}/{file}"), state);
            }
        }
    }

    /// The file holding Message-ID `id` in `mailbox`.
    fn find(&self, mailbox: &str, id: &str) -> PathBuf {
        self.files()
            .into_iter()
            .find(|(m, _, i, _)| m == mailbox && i == id)
            .unwrap_or_else(|| panic!("{id} not in local {mailbox}"))
            .1
    }

    /// Sets the flags of a message file the way a Maildir client does: by renaming into cur/.
    fn set_flags(&self, mailbox: &str, id: &str, flags: &str) {
        let path = self.find(mailbox, id);
        let base = path.file_name().unwrap().to_string_lossy().into_owned();
        let stem = base.split_once(":2,").map_or(base.as_str(), |(s, _)| s).to_owned();
        std::fs::rename(&path, self.folder(mailbox).join("cur").join(format!("{stem}:2,{flags}"))).unwrap();
    }
}

fn mail(id: &str, subject: &str) -> String {
    format!(
        "From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\
         Date: Thu, 3 Mar 2022 12:00:00 +0000\r\nMessage-ID: <{id}@mbsync.test>\r\n\r\nBody of {subject}.\r\n"
    )
}

fn id(short: &str) -> String {
    format!("<{short}@mbsync.test>")
}

/// The expected state: `(mailbox, [(message, flags)])`, the other folders empty.
fn expected(boxes: &[(&str, &[(&str, &str)])]) -> State {
    let mut state: State = ["INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"]
        .iter()
        .map(|n| ((*n).to_owned(), BTreeMap::new()))
        .collect();
    for (name, messages) in boxes {
        let entry = state.entry((*name).to_owned()).or_default();
        for (short, flags) in *messages {
            entry.insert(id(short), (*flags).to_owned());
        }
    }
    state
}

/// Runs `mbsync -c rc channel` and asserts success.
fn mbsync(dir: &Path, rc: &Path, channel: &str, server: &TestServer) -> String {
    let done = run(Command::new("mbsync").arg("-c").arg(rc).arg(channel), dir, CLIENT_DEADLINE);
    assert!(
        done.status.success(),
        "mbsync {channel} failed ({:?}):\nstdout:\n{}\nstderr:\n{}\nserver log (tail):\n{}",
        done.status,
        done.stdout,
        done.stderr,
        tail(&server.log(), 60)
    );
    format!("{}{}", done.stdout, done.stderr)
}

#[test]
fn mbsync_syncs_both_ways_and_a_second_device_agrees() {
    if !available("mbsync", "isync") {
        return;
    }
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let device_a = Maildir { root: dir.path().join("device-a") };
    let device_b = Maildir { root: dir.path().join("device-b") };
    let rc = dir.path().join("mbsyncrc");
    // SSLType (isync 1.4) is still understood by 1.5, which renamed it TLSType.
    let mut config = format!(
        "IMAPAccount postfach\nHost 127.0.0.1\nPort {port}\nUser {USER}\nPass \"{PASSWORD}\"\n\
         SSLType IMAPS\nCertificateFile {cert}\nTimeout 30\n\n\
         IMAPStore remote\nAccount postfach\n\n",
        port = server.imaps.port(),
        cert = server.cert_path().display()
    );
    for (channel, maildir) in [("device-a", &device_a), ("device-b", &device_b)] {
        let root = maildir.root.display();
        config.push_str(&format!(
            "MaildirStore {channel}-local\nPath {root}/\nInbox {root}/INBOX\nSubFolders Verbatim\n\n\
             Channel {channel}\nFar :remote:\nNear :{channel}-local:\nPatterns *\nCreate Both\n\
             Expunge Both\nSyncState *\n\n"
        ));
    }
    std::fs::write(&rc, config).unwrap();

    // Mail on the server: INBOX and a folder of its own.
    let mut imap = Imap::login(&server);
    imap.append("INBOX", "\\Flagged", &mail("s1", "server one"));
    imap.append("INBOX", "", &mail("s2", "server two"));
    imap.append("INBOX", "\\Seen", &mail("s3", "server three"));
    imap.ok("CREATE Projects");
    imap.append("Projects", "", &mail("p1", "project one"));
    imap.append("Projects", "\\Answered", &mail("p2", "project two"));
    // Mail on the device: INBOX and a folder the server does not have yet.
    device_a.create("INBOX");
    device_a.deliver("INBOX", "1700000000.l1.host", None, &mail("l1", "local one"));
    device_a.deliver("INBOX", "1700000000.l2.host", Some("S"), &mail("l2", "local two"));
    device_a.create("Local");
    device_a.deliver("Local", "1700000000.l3.host", Some("F"), &mail("l3", "local three"));

    // First sync: everything both ways, folders created on both sides.
    mbsync(dir.path(), &rc, "device-a", &server);
    let want = expected(&[
        ("INBOX", &[("s1", "F"), ("s2", ""), ("s3", "S"), ("l1", ""), ("l2", "S")]),
        ("Projects", &[("p1", ""), ("p2", "R")]),
        ("Local", &[("l3", "F")]),
    ]);
    assert_eq!(imap.state(), want, "server after the first sync");
    assert_eq!(device_a.state(), want, "device A after the first sync");

    // Changes on both sides: flags, a deletion, a new message.
    imap.ok("SELECT INBOX");
    imap.ok("UID STORE 1:* +FLAGS.SILENT (\\Answered)");
    let found = imap.ok("SEARCH RETURN (MIN) HEADER Message-ID s2@");
    let s2 = found[0].rsplit(' ').next().unwrap().to_owned();
    imap.ok(&format!("STORE {s2} -FLAGS.SILENT (\\Answered)"));
    imap.ok(&format!("STORE {s2} +FLAGS.SILENT (\\Seen)"));
    imap.ok("SELECT Projects");
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    imap.ok("EXPUNGE");
    imap.append("INBOX", "", &mail("s4", "server four"));
    device_a.set_flags("INBOX", &id("l1"), "F");
    std::fs::remove_file(device_a.find("INBOX", &id("s3"))).unwrap();
    device_a.set_flags("Local", &id("l3"), "FS");

    mbsync(dir.path(), &rc, "device-a", &server);
    let want = expected(&[
        ("INBOX", &[("s1", "FR"), ("s2", "S"), ("l1", "FR"), ("l2", "RS"), ("s4", "")]),
        ("Projects", &[("p2", "R")]),
        ("Local", &[("l3", "FS")]),
    ]);
    assert_eq!(imap.state(), want, "server after the second sync");
    assert_eq!(device_a.state(), want, "device A after the second sync");

    // A deletion by flag (T, trashed) propagates and is expunged on both sides (Expunge Both).
    device_a.set_flags("INBOX", &id("l2"), "RST");
    mbsync(dir.path(), &rc, "device-a", &server);
    let want = expected(&[
        ("INBOX", &[("s1", "FR"), ("s2", "S"), ("l1", "FR"), ("s4", "")]),
        ("Projects", &[("p2", "R")]),
        ("Local", &[("l3", "FS")]),
    ]);
    assert_eq!(imap.state(), want, "server after the trash sync");
    assert_eq!(device_a.state(), want, "device A after the trash sync");

    // Nothing left to do: another sync changes neither side.
    let server_before = imap.snapshot();
    let files_before: Vec<PathBuf> = device_a.files().into_iter().map(|f| f.1).collect();
    mbsync(dir.path(), &rc, "device-a", &server);
    assert_eq!(imap.snapshot(), server_before, "an idle sync changed the server");
    let files_after: Vec<PathBuf> = device_a.files().into_iter().map(|f| f.1).collect();
    assert_eq!(files_after, files_before, "an idle sync changed the Maildir");

    // A second device (an empty Maildir: mbsync needs its root to exist) sees the same state.
    std::fs::create_dir_all(&device_b.root).unwrap();
    mbsync(dir.path(), &rc, "device-b", &server);
    assert_eq!(device_b.state(), want, "device B");
    assert_eq!(imap.state(), want, "the second device changed the server");
}
