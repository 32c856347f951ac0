//! Real synchronisation clients against the real binary: offlineimap3 and interimap, and several
//! devices (mbsync, offlineimap3, interimap) syncing one account while mail arrives.
//!
//! offlineimap3 syncs a local Maildir both ways; interimap (which needs QRESYNC, LIST-EXTENDED,
//! LIST-STATUS and UIDPLUS) syncs the server with a local Dovecot that keeps a private Maildir
//! and runs as a pre-authenticated `imap` process on interimap's tunnel. For each client: mail,
//! folders, flag changes and deletions made on either side arrive on the other, a second sync
//! changes nothing (same UIDs, flags and, for interimap, the same HIGHESTMODSEQ), and a second
//! device that starts empty ends up with the same state and can send its own changes back through
//! the server to the first. The last test puts three devices with three different clients on one
//! account: they sync at the same moment while mail is delivered, each with its own local
//! changes, and after two quiet rounds all of them and the server hold the same state and a
//! further round changes nothing. The server's state is always read over IMAP, not taken from the
//! clients' word. (The mbsync-only flow is in `clients.rs`.)
//!
//! A missing client makes its test print why and pass, unless `POSTFACH_REQUIRE_CLIENTS=1` (CI
//! sets it), which turns the skip into a failure. Every child process runs under a deadline.
//!
//! Limits: only system flags are compared (mbsync does not carry keywords); a message is known
//! by its Message-ID; Dovecot runs as `nobody` when the tests run as root (it refuses root).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, PATIENCE, TestServer};

const USER: &str = "devices";
/// No spaces: it goes unquoted into INI-style configuration files.
const PASSWORD: &str = "sync-clients-secret";
/// Longest one client run may take.
const CLIENT_DEADLINE: Duration = Duration::from_secs(120);
/// Dovecot's IMAP process, run pre-authenticated for interimap's `tunnel`.
const DOVECOT_IMAP: &str = "/usr/lib/dovecot/imap";
/// The folders the server creates for every account (RFC 6154 special use).
const DEFAULT_FOLDERS: [&str; 6] = ["INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"];

// ---------------------------------------------------------------------------------------------
// Running client programs
// ---------------------------------------------------------------------------------------------

/// Whether a missing client must fail the test instead of skipping it.
fn clients_required() -> bool {
    std::env::var("POSTFACH_REQUIRE_CLIENTS").is_ok_and(|v| v == "1")
}

/// True if `program` exists; otherwise reports the skip (or fails, in CI).
fn available(program: &str, package: &str) -> bool {
    let found = if program.starts_with('/') {
        Path::new(program).is_file()
    } else {
        Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    };
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
    output: String,
}

/// Runs `command` with its output in a file under `dir`, killing it after `limit`.
fn run(command: &mut Command, dir: &Path, name: &str, limit: Duration) -> Finished {
    let out_path = dir.join(format!("{name}.out"));
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
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
                "{command:?} did not finish within {limit:?}:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Finished { status, output: std::fs::read_to_string(&out_path).unwrap_or_default() }
}

/// A server with the test account.
fn server() -> TestServer {
    let server = TestServer::start();
    server.add_user(USER, PASSWORD);
    server
}

/// The last `n` lines of the server's log above debug level.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains(" DEBUG ")).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// IMAP sessions: the server (over TLS) and a device's Dovecot (over a pipe)
// ---------------------------------------------------------------------------------------------

/// A line transport for [`Imap`].
trait Wire {
    fn send(&mut self, line: &str);
    fn read_line(&mut self) -> String;
}

impl Wire for Client {
    fn send(&mut self, line: &str) {
        Client::send(self, line);
    }

    fn read_line(&mut self) -> String {
        Client::read_line(self)
    }
}

/// Dovecot's `imap` process on a pipe, pre-authenticated.
struct DovecotPipe {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Wire for DovecotPipe {
    fn send(&mut self, line: &str) {
        self.stdin.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn read_line(&mut self) -> String {
        self.lines.recv_timeout(PATIENCE).expect("Dovecot did not answer")
    }
}

impl Drop for DovecotPipe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Per mailbox: Message-ID → Maildir flag letters (D F R S T), sorted.
type State = BTreeMap<String, BTreeMap<String, String>>;

/// A small IMAP session for setting up and inspecting one side.
struct Imap<W: Wire> {
    wire: W,
    tag: u32,
}

impl Imap<Client> {
    /// Logs in to the server over implicit TLS.
    fn server(server: &TestServer) -> Self {
        let mut client = server.connect_tls();
        client.read_line();
        let mut imap = Self { wire: client, tag: 0 };
        imap.ok(&format!("LOGIN {USER} {PASSWORD}"));
        imap
    }
}

impl<W: Wire> Imap<W> {
    /// Runs a command (CRLF-separated literals allowed) and returns its untagged responses,
    /// literal data folded into the line that announced it. Panics unless the answer is OK.
    fn ok(&mut self, command: &str) -> Vec<String> {
        self.tag += 1;
        let tag = format!("s{}", self.tag);
        self.wire.send(&format!("{tag} {command}"));
        let mut lines = Vec::new();
        loop {
            let mut line = self.wire.read_line();
            // `... {n}`: the literal's n bytes, then the rest of the response line.
            while let Some(n) = line
                .rfind('{')
                .filter(|_| line.ends_with('}'))
                .and_then(|i| line[i + 1..line.len() - 1].parse::<usize>().ok())
            {
                let mut data = String::new();
                while data.len() < n {
                    data.push_str(&self.wire.read_line());
                    data.push_str("\r\n");
                }
                let rest =
                    if data.len() == n { self.wire.read_line() } else { data[n..data.len() - 2].to_owned() };
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

    /// Selectable mailboxes.
    fn mailboxes(&mut self) -> Vec<String> {
        self.ok("LIST \"\" \"*\"")
            .iter()
            // Untagged updates about the selected mailbox may come along (RFC 9051 §7.5.1).
            .filter(|l| l.starts_with("* LIST "))
            .filter(|l| !l.to_ascii_lowercase().contains("\\noselect"))
            .map(|l| l.rsplit_once("\"/\" ").unwrap().1.trim_matches('"').to_owned())
            .collect()
    }

    /// Every mailbox with its messages' Message-IDs and system flags.
    fn state(&mut self) -> State {
        let mut state = State::new();
        for name in self.mailboxes() {
            let mut messages = BTreeMap::new();
            self.ok(&format!("EXAMINE \"{name}\""));
            for line in self.ok("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])") {
                if !line.contains(" FETCH ") {
                    continue;
                }
                let flags = line.split("FLAGS (").nth(1).unwrap().split(')').next().unwrap();
                let id = message_id(&line).unwrap_or_else(|| panic!("no Message-ID in {line:?}"));
                assert!(messages.insert(id.clone(), letters(flags)).is_none(), "{id} twice in {name}");
            }
            state.insert(name, messages);
        }
        self.ok("UNSELECT");
        state
    }

    /// Everything a sync could change: per mailbox its STATUS (with HIGHESTMODSEQ) and every
    /// message's UID and flags. Equal snapshots mean nothing changed.
    fn snapshot(&mut self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for name in self.mailboxes() {
            for line in self.ok(&format!("STATUS \"{name}\" (UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ)")) {
                all.insert(line);
            }
            self.ok(&format!("EXAMINE \"{name}\""));
            for line in self.ok("UID FETCH 1:* (UID FLAGS)") {
                all.insert(format!("{name}: {line}"));
            }
        }
        self.ok("UNSELECT");
        all
    }

    /// Selects `mailbox` and returns the UID of the message with Message-ID `<short@...>`.
    fn find(&mut self, mailbox: &str, short: &str) -> u32 {
        self.ok(&format!("SELECT \"{mailbox}\""));
        let found = self.ok(&format!("UID SEARCH HEADER Message-ID \"<{short}@\""));
        let uids: Vec<u32> = found
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|l| l.split_whitespace().map(|n| n.parse::<u32>().unwrap()))
            .collect();
        assert_eq!(uids.len(), 1, "{short} in {mailbox}: {found:?}");
        uids[0]
    }

    /// `+FLAGS`/`-FLAGS` on one message.
    fn store(&mut self, mailbox: &str, short: &str, change: &str) {
        let uid = self.find(mailbox, short);
        self.ok(&format!("UID STORE {uid} {change}"));
    }

    /// Deletes one message for good (UIDPLUS).
    fn delete(&mut self, mailbox: &str, short: &str) {
        let uid = self.find(mailbox, short);
        self.ok(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"));
        self.ok(&format!("UID EXPUNGE {uid}"));
    }

    /// Moves one message (RFC 6851).
    fn move_to(&mut self, mailbox: &str, short: &str, to: &str) {
        let uid = self.find(mailbox, short);
        self.ok(&format!("UID MOVE {uid} \"{to}\""));
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

/// IMAP system flags → Maildir info letters, sorted; keywords and `\Recent` are left out.
fn letters(flags: &str) -> String {
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

fn mail(short: &str, subject: &str) -> String {
    format!(
        "From: Bob <bob@example.org>\r\nTo: {USER}@example.com\r\nSubject: {subject}\r\n\
         Date: Thu, 3 Mar 2022 12:00:00 +0000\r\nMessage-ID: <{short}@sync.test>\r\n\r\n\
         Body of {subject}.\r\n"
    )
}

fn id(short: &str) -> String {
    format!("<{short}@sync.test>")
}

/// The expected state: the given messages, every other default folder empty.
fn expected(boxes: &[(&str, &[(&str, &str)])]) -> State {
    let mut state: State = DEFAULT_FOLDERS.iter().map(|n| ((*n).to_owned(), BTreeMap::new())).collect();
    for (name, messages) in boxes {
        let entry = state.entry((*name).to_owned()).or_default();
        for (short, flags) in *messages {
            entry.insert(id(short), (*flags).to_owned());
        }
    }
    state
}

// ---------------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------------

/// A flat Maildir tree (`root/NAME/{cur,new,tmp}`) as offlineimap (`sep = /`) and mbsync
/// (`SubFolders Verbatim`) lay it out.
struct Maildir {
    root: PathBuf,
}

impl Maildir {
    fn folder(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn create(&self, name: &str) {
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(self.folder(name).join(sub)).unwrap();
        }
    }

    /// Delivers a message as a local mail program would: into `new/`, or `cur/` with flags.
    fn deliver(&self, name: &str, short: &str, flags: Option<&str>, message: &str) {
        let file = format!("1700000000.{short}.device");
        let path = match flags {
            None => self.folder(name).join("new").join(file),
            Some(f) => self.folder(name).join("cur").join(format!("{file}:2,{f}")),
        };
        std::fs::write(path, message).unwrap();
    }

    /// Every message file: (mailbox, path, Message-ID, flags).
    fn files(&self) -> Vec<(String, PathBuf, String, String)> {
        let mut out = Vec::new();
        let Ok(folders) = std::fs::read_dir(&self.root) else { return out };
        for folder in folders {
            let folder = folder.unwrap();
            let name = folder.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !folder.path().join("cur").is_dir() {
                continue;
            }
            for sub in ["cur", "new"] {
                for message in std::fs::read_dir(folder.path().join(sub)).unwrap() {
                    let path = message.unwrap().path();
                    let base = path.file_name().unwrap().to_string_lossy().into_owned();
                    let info = base.split_once(":2,").map(|(_, f)| f.to_owned()).unwrap_or_default();
                    let mut flags: Vec<char> = info.chars().filter(|c| c.is_ascii_uppercase()).collect();
                    flags.sort_unstable();
                    let text = std::fs::read_to_string(&path).unwrap();
                    let id =
                        message_id(&text).unwrap_or_else(|| panic!("no Message-ID in {}", path.display()));
                    out.push((name.clone(), path, id, flags.into_iter().collect()));
                }
            }
        }
        out.sort();
        out
    }

    fn state(&self) -> State {
        let mut state = State::new();
        for folder in std::fs::read_dir(&self.root).unwrap() {
            let folder = folder.unwrap();
            let name = folder.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && folder.path().join("cur").is_dir() {
                state.entry(name).or_default();
            }
        }
        for (mailbox, _, id, flags) in self.files() {
            let messages = state.entry(mailbox.clone()).or_default();
            assert!(messages.insert(id.clone(), flags).is_none(), "{id} twice in local {mailbox}");
        }
        state
    }

    fn find(&self, mailbox: &str, short: &str) -> PathBuf {
        self.files()
            .into_iter()
            .find(|(m, _, i, _)| m == mailbox && *i == id(short))
            .unwrap_or_else(|| panic!("{short} not in local {mailbox}"))
            .1
    }

    /// Sets a message's flags the Maildir way: by renaming it into `cur/`.
    fn set_flags(&self, mailbox: &str, short: &str, flags: &str) {
        let path = self.find(mailbox, short);
        let base = path.file_name().unwrap().to_string_lossy().into_owned();
        let stem = base.split_once(":2,").map_or(base.as_str(), |(s, _)| s).to_owned();
        std::fs::rename(&path, self.folder(mailbox).join("cur").join(format!("{stem}:2,{flags}"))).unwrap();
    }

    fn remove(&self, mailbox: &str, short: &str) {
        std::fs::remove_file(self.find(mailbox, short)).unwrap();
    }

    /// Paths of every message file: equal lists mean the Maildir did not change.
    fn paths(&self) -> Vec<PathBuf> {
        self.files().into_iter().map(|f| f.1).collect()
    }
}

/// An offlineimap3 device: a Maildir plus offlineimap's own metadata.
struct Offlineimap {
    dir: PathBuf,
    maildir: Maildir,
    rc: PathBuf,
}

impl Offlineimap {
    fn new(dir: &Path, name: &str, server: &TestServer) -> Self {
        let dir = dir.join(name);
        let maildir = Maildir { root: dir.join("mail") };
        std::fs::create_dir_all(&maildir.root).unwrap();
        std::fs::create_dir_all(dir.join("meta")).unwrap();
        let rc = dir.join("offlineimaprc");
        // `localhost`, not 127.0.0.1: offlineimap matches the certificate against DNS names only
        // (the generated certificate names both).
        let config = format!(
            "[general]\naccounts = {name}\nmetadata = {meta}\nui = basic\n\n\
             [Account {name}]\nlocalrepository = {name}-local\nremoterepository = {name}-remote\n\n\
             [Repository {name}-local]\ntype = Maildir\nlocalfolders = {root}\nsep = /\n\n\
             [Repository {name}-remote]\ntype = IMAP\nremotehost = localhost\nremoteport = {port}\n\
             remoteuser = {USER}\nremotepass = {PASSWORD}\nssl = yes\nsslcacertfile = {cert}\n",
            meta = dir.join("meta").display(),
            root = maildir.root.display(),
            port = server.imaps.port(),
            cert = server.cert_path().display(),
        );
        std::fs::write(&rc, config).unwrap();
        Self { dir, maildir, rc }
    }

    fn sync(&self, server: &TestServer) -> String {
        let done = run(
            Command::new("offlineimap").arg("-c").arg(&self.rc).arg("-o").arg("-u").arg("basic"),
            &self.dir,
            "offlineimap",
            CLIENT_DEADLINE,
        );
        // offlineimap exits 0 even after some errors: its "ERROR" lines count too.
        assert!(
            done.status.success() && !done.output.contains("ERROR"),
            "offlineimap failed ({:?}):\n{}\nserver log (tail):\n{}",
            done.status,
            done.output,
            tail(&server.log(), 40)
        );
        done.output
    }
}

/// An interimap device: a private Dovecot (Maildir) as interimap's "local" side, the server as
/// its "remote", and interimap's UID-mapping database.
struct Interimap {
    dir: PathBuf,
    config: PathBuf,
    dovecot_conf: PathBuf,
    /// Dovecot's mail user: `nobody` when running as root (Dovecot refuses root), else ourselves.
    mail_user: (String, u32),
}

impl Interimap {
    fn new(dir: &Path, name: &str, server: &TestServer) -> Self {
        let dir = dir.join(name);
        let maildir = dir.join("Maildir");
        std::fs::create_dir_all(&maildir).unwrap();
        let me = std::fs::metadata(&dir).unwrap().uid();
        let mail_user = if me == 0 {
            // Dovecot drops to `nobody`, which must reach the Maildir through the temporary
            // directories (created 0700) and own it.
            let mut at = dir.as_path();
            while let Some(parent) = at.parent() {
                if parent == std::env::temp_dir() || parent == Path::new("/") {
                    break;
                }
                let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755));
                at = parent;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(&maildir, Some(65534), Some(65534)).unwrap();
            ("nobody".to_owned(), 65534)
        } else {
            (std::env::var("USER").unwrap_or_else(|_| "postfach".to_owned()), me)
        };
        let dovecot_conf = dir.join("dovecot.conf");
        let dovecot = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
             mail_location = maildir:{maildir}:LAYOUT=fs\nmail_uid = {uid}\nmail_gid = {uid}\n\
             first_valid_uid = 0\nfirst_valid_gid = 0\nssl = no\nprotocols = imap\n",
            d = dir.display(),
            maildir = maildir.display(),
            uid = mail_user.1,
        );
        std::fs::write(&dovecot_conf, dovecot).unwrap();
        let config = dir.join("interimap.conf");
        // Dovecot's imap refuses to run as root on a socket ("started from inetd"): interimap's
        // tunnel is a socketpair, so its output goes through a pipe (`| cat`).
        let interimap = format!(
            "database = {db}\n\n[local]\ntype = tunnel\ncommand = {tunnel} | cat\nnull-stderr = YES\n\n\
             [remote]\ntype = imaps\nhost = 127.0.0.1\nport = {port}\nusername = {USER}\n\
             password = {PASSWORD}\nSSL_CAfile = {cert}\n",
            db = dir.join("interimap.db").display(),
            tunnel = Self::tunnel(&dovecot_conf, &dir, &mail_user.0),
            port = server.imaps.port(),
            cert = server.cert_path().display(),
        );
        std::fs::write(&config, interimap).unwrap();
        Self { dir, config, dovecot_conf, mail_user }
    }

    fn tunnel(conf: &Path, home: &Path, user: &str) -> String {
        format!("env USER={user} HOME={} {DOVECOT_IMAP} -c {}", home.display(), conf.display())
    }

    /// A session with the device's Dovecot, to change and read the local side.
    fn local(&self) -> Imap<DovecotPipe> {
        let mut child = Command::new(DOVECOT_IMAP)
            .arg("-c")
            .arg(&self.dovecot_conf)
            .env("USER", &self.mail_user.0)
            .env("HOME", &self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut pipe = DovecotPipe { child, stdin, lines };
        let greeting = pipe.read_line();
        assert!(greeting.starts_with("* PREAUTH"), "Dovecot: {greeting}");
        Imap { wire: pipe, tag: 0 }
    }

    fn sync(&self, server: &TestServer) -> String {
        let done = run(
            Command::new("interimap").arg(format!("--config={}", self.config.display())),
            &self.dir,
            "interimap",
            CLIENT_DEADLINE,
        );
        assert!(
            done.status.success(),
            "interimap failed ({:?}):\n{}\nDovecot log:\n{}\nserver log (tail):\n{}",
            done.status,
            done.output,
            std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default(),
            tail(&server.log(), 40)
        );
        done.output
    }
}

/// mbsync's configuration for one device: the server as far side, a Maildir as near side.
struct Mbsync {
    dir: PathBuf,
    maildir: Maildir,
    rc: PathBuf,
}

impl Mbsync {
    fn new(dir: &Path, name: &str, server: &TestServer) -> Self {
        let dir = dir.join(name);
        let maildir = Maildir { root: dir.join("mail") };
        std::fs::create_dir_all(&maildir.root).unwrap();
        let rc = dir.join("mbsyncrc");
        let root = maildir.root.display();
        // SSLType (isync 1.4) is still understood by 1.5, which renamed it TLSType.
        let config = format!(
            "IMAPAccount server\nHost 127.0.0.1\nPort {port}\nUser {USER}\nPass {PASSWORD}\n\
             SSLType IMAPS\nCertificateFile {cert}\nTimeout 30\n\n\
             IMAPStore remote\nAccount server\n\n\
             MaildirStore local\nPath {root}/\nInbox {root}/INBOX\nSubFolders Verbatim\n\n\
             Channel device\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\n\
             SyncState *\n",
            port = server.imaps.port(),
            cert = server.cert_path().display(),
        );
        std::fs::write(&rc, config).unwrap();
        Self { dir, maildir, rc }
    }

    fn sync(&self, server: &TestServer) -> String {
        let done = run(
            Command::new("mbsync").arg("-c").arg(&self.rc).arg("device"),
            &self.dir,
            "mbsync",
            CLIENT_DEADLINE,
        );
        assert!(
            done.status.success(),
            "mbsync failed ({:?}):\n{}\nserver log (tail):\n{}",
            done.status,
            done.output,
            tail(&server.log(), 40)
        );
        done.output
    }
}

// ---------------------------------------------------------------------------------------------
// offlineimap3
// ---------------------------------------------------------------------------------------------

#[test]
fn offlineimap_syncs_both_ways_and_a_second_device_agrees() {
    if !available("offlineimap", "offlineimap3") {
        return;
    }
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let phone = Offlineimap::new(dir.path(), "phone", &server);
    let laptop = Offlineimap::new(dir.path(), "laptop", &server);

    let mut imap = Imap::server(&server);
    imap.append("INBOX", "\\Flagged", &mail("s1", "server one"));
    imap.append("INBOX", "", &mail("s2", "server two"));
    imap.append("INBOX", "\\Seen", &mail("s3", "server three"));
    imap.ok("CREATE Projects");
    imap.append("Projects", "", &mail("p1", "project one"));
    imap.append("Projects", "\\Answered", &mail("p2", "project two"));
    let local = &phone.maildir;
    local.create("INBOX");
    local.deliver("INBOX", "l1", None, &mail("l1", "local one"));
    local.deliver("INBOX", "l2", Some("S"), &mail("l2", "local two"));
    local.create("Local");
    local.deliver("Local", "l3", Some("F"), &mail("l3", "local three"));

    // First sync: mail and folders both ways.
    phone.sync(&server);
    let want = expected(&[
        ("INBOX", &[("s1", "F"), ("s2", ""), ("s3", "S"), ("l1", ""), ("l2", "S")]),
        ("Projects", &[("p1", ""), ("p2", "R")]),
        ("Local", &[("l3", "F")]),
    ]);
    assert_eq!(imap.state(), want, "server after the first sync");
    assert_eq!(local.state(), want, "phone after the first sync");

    // Changes on both sides: flags, deletions, a move on the server, new mail.
    imap.store("INBOX", "s1", "+FLAGS (\\Answered)");
    imap.store("INBOX", "s2", "+FLAGS (\\Seen)");
    imap.delete("Projects", "p1");
    imap.move_to("INBOX", "s3", "Projects");
    imap.append("INBOX", "", &mail("s4", "server four"));
    local.set_flags("INBOX", "l1", "F");
    local.remove("INBOX", "l2");
    local.set_flags("Local", "l3", "FS");
    local.deliver("Local", "l4", None, &mail("l4", "local four"));

    phone.sync(&server);
    let want = expected(&[
        ("INBOX", &[("s1", "FR"), ("s2", "S"), ("l1", "F"), ("s4", "")]),
        ("Projects", &[("p2", "R"), ("s3", "S")]),
        ("Local", &[("l3", "FS"), ("l4", "")]),
    ]);
    assert_eq!(imap.state(), want, "server after the second sync");
    assert_eq!(local.state(), want, "phone after the second sync");

    // Nothing left to do: another sync changes neither side.
    let server_before = imap.snapshot();
    let files_before = local.paths();
    phone.sync(&server);
    assert_eq!(imap.snapshot(), server_before, "an idle offlineimap sync changed the server");
    assert_eq!(local.paths(), files_before, "an idle offlineimap sync changed the Maildir");

    // A second device starts empty and gets the same state...
    laptop.sync(&server);
    assert_eq!(laptop.maildir.state(), want, "laptop after its first sync");
    assert_eq!(imap.state(), want, "the laptop's first sync changed the server");

    // ...and its own changes reach the first device through the server.
    laptop.maildir.set_flags("INBOX", "s4", "S");
    laptop.maildir.remove("Projects", "p2");
    laptop.maildir.deliver("INBOX", "m1", Some("F"), &mail("m1", "laptop one"));
    laptop.sync(&server);
    phone.sync(&server);
    let want = expected(&[
        ("INBOX", &[("s1", "FR"), ("s2", "S"), ("l1", "F"), ("s4", "S"), ("m1", "F")]),
        ("Projects", &[("s3", "S")]),
        ("Local", &[("l3", "FS"), ("l4", "")]),
    ]);
    assert_eq!(imap.state(), want, "server after the laptop's changes");
    assert_eq!(laptop.maildir.state(), want, "laptop after its changes");
    assert_eq!(local.state(), want, "phone after the laptop's changes");
}

// ---------------------------------------------------------------------------------------------
// interimap (QRESYNC)
// ---------------------------------------------------------------------------------------------

#[test]
fn interimap_syncs_with_qresync_and_a_second_device_agrees() {
    if !available("interimap", "interimap") || !available(DOVECOT_IMAP, "dovecot-imapd") {
        return;
    }
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let phone = Interimap::new(dir.path(), "phone", &server);
    let laptop = Interimap::new(dir.path(), "laptop", &server);

    let mut imap = Imap::server(&server);
    imap.append("INBOX", "\\Flagged", &mail("s1", "server one"));
    imap.append("INBOX", "", &mail("s2", "server two"));
    imap.append("INBOX", "\\Seen", &mail("s3", "server three"));
    imap.ok("CREATE Projects");
    imap.append("Projects", "", &mail("p1", "project one"));
    imap.append("Projects", "\\Answered", &mail("p2", "project two"));
    let mut local = phone.local();
    local.append("INBOX", "", &mail("l1", "local one"));
    local.append("INBOX", "\\Seen", &mail("l2", "local two"));
    local.ok("CREATE Local");
    local.append("Local", "\\Flagged", &mail("l3", "local three"));

    phone.sync(&server);
    let want = expected(&[
        ("INBOX", &[("s1", "F"), ("s2", ""), ("s3", "S"), ("l1", ""), ("l2", "S")]),
        ("Projects", &[("p1", ""), ("p2", "R")]),
        ("Local", &[("l3", "F")]),
    ]);
    assert_eq!(imap.state(), want, "server after the first sync");
    assert_eq!(local.state(), want, "phone after the first sync");

    // Changes on both sides; interimap finds the server's through SELECT (QRESYNC ...).
    imap.store("INBOX", "s1", "+FLAGS (\\Answered)");
    imap.store("INBOX", "s2", "+FLAGS (\\Seen)");
    imap.delete("Projects", "p1");
    imap.move_to("INBOX", "s3", "Projects");
    imap.append("INBOX", "", &mail("s4", "server four"));
    local.store("INBOX", "l1", "+FLAGS (\\Flagged)");
    local.delete("INBOX", "l2");
    local.store("Local", "l3", "+FLAGS (\\Seen)");
    local.append("Local", "", &mail("l4", "local four"));

    phone.sync(&server);
    let want = expected(&[
        ("INBOX", &[("s1", "FR"), ("s2", "S"), ("l1", "F"), ("s4", "")]),
        ("Projects", &[("p2", "R"), ("s3", "S")]),
        ("Local", &[("l3", "FS"), ("l4", "")]),
    ]);
    assert_eq!(imap.state(), want, "server after the second sync");
    assert_eq!(local.state(), want, "phone after the second sync");

    // Nothing left to do: same UIDs, flags and HIGHESTMODSEQ on both sides.
    let server_before = imap.snapshot();
    let local_before = local.snapshot();
    phone.sync(&server);
    assert_eq!(imap.snapshot(), server_before, "an idle interimap sync changed the server");
    assert_eq!(local.snapshot(), local_before, "an idle interimap sync changed the phone");

    // A second device starts empty and gets the same state...
    laptop.sync(&server);
    let mut laptop_local = laptop.local();
    assert_eq!(laptop_local.state(), want, "laptop after its first sync");
    assert_eq!(imap.state(), want, "the laptop's first sync changed the server");

    // ...and its own changes reach the first device through the server.
    laptop_local.store("INBOX", "s4", "+FLAGS (\\Seen)");
    laptop_local.delete("Projects", "p2");
    laptop_local.append("INBOX", "\\Flagged", &mail("m1", "laptop one"));
    laptop.sync(&server);
    phone.sync(&server);
    let want = expected(&[
        ("INBOX", &[("s1", "FR"), ("s2", "S"), ("l1", "F"), ("s4", "S"), ("m1", "F")]),
        ("Projects", &[("s3", "S")]),
        ("Local", &[("l3", "FS"), ("l4", "")]),
    ]);
    assert_eq!(imap.state(), want, "server after the laptop's changes");
    assert_eq!(laptop_local.state(), want, "laptop after its changes");
    assert_eq!(local.state(), want, "phone after the laptop's changes");
}

// ---------------------------------------------------------------------------------------------
// Three devices, three clients, one account, mail arriving
// ---------------------------------------------------------------------------------------------

#[test]
fn three_devices_with_three_clients_converge_while_mail_arrives() {
    if !available("mbsync", "isync")
        || !available("offlineimap", "offlineimap3")
        || !available("interimap", "interimap")
        || !available(DOVECOT_IMAP, "dovecot-imapd")
    {
        return;
    }
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let laptop = Mbsync::new(dir.path(), "laptop", &server);
    let desktop = Offlineimap::new(dir.path(), "desktop", &server);
    let phone = Interimap::new(dir.path(), "phone", &server);

    let mut imap = Imap::server(&server);
    let mut inbox: Vec<(String, String)> = Vec::new();
    for i in 0..9 {
        let flags = if i % 3 == 0 { "\\Seen" } else { "" };
        imap.append("INBOX", flags, &mail(&format!("s{i}"), &format!("server {i}")));
        inbox.push((format!("s{i}"), letters(flags)));
    }
    imap.ok("CREATE Lists");
    imap.append("Lists", "", &mail("list0", "list zero"));

    // Everyone starts from the server's state.
    laptop.sync(&server);
    desktop.sync(&server);
    phone.sync(&server);

    // Each device changes its own messages: a flag, a deletion, a new message.
    laptop.maildir.set_flags("INBOX", "s1", "F");
    laptop.maildir.remove("INBOX", "s2");
    laptop.maildir.deliver("INBOX", "a1", Some("S"), &mail("a1", "from the laptop"));
    desktop.maildir.set_flags("INBOX", "s4", "R");
    desktop.maildir.remove("INBOX", "s5");
    desktop.maildir.deliver("Lists", "b1", None, &mail("b1", "from the desktop"));
    let mut phone_local = phone.local();
    phone_local.store("INBOX", "s7", "+FLAGS (\\Flagged)");
    phone_local.delete("INBOX", "s8");
    phone_local.append("INBOX", "\\Draft", &mail("c1", "from the phone"));
    drop(phone_local);

    // All three sync at once while new mail is delivered.
    let delivered = thread::scope(|scope| {
        let delivery = scope.spawn(|| {
            let mut mta = Imap::server(&server);
            let mut delivered = Vec::new();
            for i in 0..12 {
                let short = format!("n{i}");
                mta.append("INBOX", "", &mail(&short, &format!("new {i}")));
                delivered.push(short);
                thread::sleep(Duration::from_millis(60));
            }
            delivered
        });
        let syncs = [
            scope.spawn(|| laptop.sync(&server)),
            scope.spawn(|| desktop.sync(&server)),
            scope.spawn(|| phone.sync(&server)),
        ];
        for sync in syncs {
            sync.join().unwrap();
        }
        delivery.join().unwrap()
    });

    // Two quiet rounds: the second carries what the others brought in the first.
    for _ in 0..2 {
        laptop.sync(&server);
        desktop.sync(&server);
        phone.sync(&server);
    }
    let mut want_inbox: Vec<(String, String)> = inbox
        .into_iter()
        .filter(|(s, _)| !["s2", "s5", "s8"].contains(&s.as_str()))
        .map(|(s, f)| match s.as_str() {
            "s1" => (s, "F".to_owned()),
            "s4" => (s, "R".to_owned()),
            "s7" => (s, "F".to_owned()),
            _ => (s, f),
        })
        .collect();
    want_inbox.push(("a1".into(), "S".into()));
    want_inbox.push(("c1".into(), "D".into()));
    want_inbox.extend(delivered.into_iter().map(|s| (s, String::new())));
    let inbox_refs: Vec<(&str, &str)> = want_inbox.iter().map(|(s, f)| (s.as_str(), f.as_str())).collect();
    let want = expected(&[("INBOX", &inbox_refs), ("Lists", &[("list0", ""), ("b1", "")])]);
    assert_eq!(imap.state(), want, "server");
    assert_eq!(laptop.maildir.state(), want, "laptop (mbsync)");
    assert_eq!(desktop.maildir.state(), want, "desktop (offlineimap)");
    assert_eq!(phone.local().state(), want, "phone (interimap)");

    // A further round finds nothing to do anywhere.
    let server_before = imap.snapshot();
    laptop.sync(&server);
    desktop.sync(&server);
    phone.sync(&server);
    assert_eq!(imap.snapshot(), server_before, "a quiet round changed the server");
}
