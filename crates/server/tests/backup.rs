//! Backups of the real binary: `postfach backup create` while clients write, `verify`,
//! `restore` into a new data directory, and a server started on it that clients need not
//! resynchronise with.
//!
//! The comparison reads, over IMAP, every mailbox's UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and
//! every message's UID, FLAGS, MODSEQ, INTERNALDATE, RFC822.SIZE and BODY[] (SHA-256), on the
//! source and on the restored server. A backup taken while a client appends holds the source's
//! state of one instant: each message it holds is identical in every field to the source's,
//! it has every message below its UIDNEXT (no holes), and its counters are those of that
//! instant; messages appended after it may be missing.
//!
//! Also: SIGKILL of `backup create` midway leaves nothing `verify` accepts and a rerun works;
//! SIGKILL of the server during a backup does not spoil the backup; `verify` catches a flipped
//! byte (by checksum, and by SQLite's integrity check when the checksum is forged too); the
//! server's scheduled backups (`every = "2s"`, `keep = 2`) are made and pruned.
//!
//! The account is also a member of a team: its `Shared/support/` mailboxes are compared like
//! its own.
//!
//! Limits: messages are small text (the harness's line-based client); the backup is slowed
//! with `--max-rate` so that a small database takes seconds to copy.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, Deployment, Session};
use sha2::{Digest, Sha256};

const USER: &str = "keeper";
const PASSWORD: &str = "backed up twice";

// ---------------------------------------------------------------------------------------------
// What a client can see, read over IMAP
// ---------------------------------------------------------------------------------------------

/// One message as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    flags: BTreeSet<String>,
    modseq: u64,
    internal_date: String,
    size: u64,
    body_sha256: String,
}

/// One mailbox as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mailbox {
    uid_validity: u32,
    uid_next: u32,
    highest_modseq: u64,
    messages: BTreeMap<u32, Message>,
}

/// Everything a syncing client keeps: the LIST lines and every mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    list: BTreeSet<String>,
    mailboxes: BTreeMap<String, Mailbox>,
}

fn login(imaps: SocketAddr, cert: &Path) -> Session<Client> {
    let mut client = Client::tls(imaps, cert);
    client.read_line();
    let mut session = Session::new(client);
    session.ok(&format!("LOGIN {USER} \"{PASSWORD}\""));
    session.ok("ENABLE CONDSTORE");
    session
}

fn read_account(session: &mut Session<Client>) -> Account {
    let list: BTreeSet<String> = session
        .ok("LIST \"\" \"*\" RETURN (SUBSCRIBED SPECIAL-USE)")
        .into_iter()
        .filter(|l| l.starts_with("* LIST"))
        .collect();
    let mut mailboxes = BTreeMap::new();
    for name in session.mailboxes() {
        let status = session
            .ok(&format!("STATUS \"{name}\" (UIDVALIDITY UIDNEXT HIGHESTMODSEQ)"))
            .into_iter()
            .find(|l| l.starts_with("* STATUS"))
            .unwrap();
        session.ok(&format!("EXAMINE \"{name}\""));
        let mut messages = BTreeMap::new();
        for line in session.ok("UID FETCH 1:* (UID FLAGS MODSEQ INTERNALDATE RFC822.SIZE BODY.PEEK[])") {
            if line.starts_with("* ") && line.contains(" FETCH (") {
                let (uid, message) = parse_fetch(&line);
                messages.insert(uid, message);
            }
        }
        let mailbox = Mailbox {
            uid_validity: number_after(&status, "UIDVALIDITY ").try_into().unwrap(),
            uid_next: number_after(&status, "UIDNEXT ").try_into().unwrap(),
            highest_modseq: number_after(&status, "HIGHESTMODSEQ "),
            messages,
        };
        mailboxes.insert(name, mailbox);
    }
    session.ok("UNSELECT");
    Account { list, mailboxes }
}

/// `* 3 FETCH (UID 5 FLAGS (...) MODSEQ (9) INTERNALDATE "..." RFC822.SIZE 12 BODY[] {12}\r\n...)`.
fn parse_fetch(line: &str) -> (u32, Message) {
    let open = line.find("BODY[] {").unwrap_or_else(|| panic!("no BODY[] in {line:?}"));
    let after_open = &line[open + "BODY[] {".len()..];
    let close = after_open.find("}\r\n").unwrap();
    let length: usize = after_open[..close].parse().unwrap();
    let body = &after_open[close + 3..close + 3 + length];
    // The other items sit before and after the literal; the body may contain anything.
    let items = format!("{} {}", &line[..open], &after_open[close + 3 + length..]);
    let flags = items.split("FLAGS (").nth(1).unwrap().split(')').next().unwrap();
    let message = Message {
        flags: flags.split_whitespace().filter(|f| *f != "\\Recent").map(str::to_owned).collect(),
        modseq: number_after(&items, "MODSEQ ("),
        internal_date: items.split("INTERNALDATE \"").nth(1).unwrap().split('"').next().unwrap().to_owned(),
        size: number_after(&items, "RFC822.SIZE "),
        body_sha256: sha256(body.as_bytes()),
    };
    assert_eq!(message.size, u64::try_from(length).unwrap(), "RFC822.SIZE and BODY[] disagree");
    (number_after(&items, "UID ").try_into().unwrap(), message)
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn number_after(text: &str, key: &str) -> u64 {
    let start = text.find(key).unwrap_or_else(|| panic!("no {key:?} in {text:?}")) + key.len();
    let digits: String = text[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Setting up a source, and a writer that appends all along
// ---------------------------------------------------------------------------------------------

fn text(n: usize, words: usize) -> String {
    format!(
        "From: Ann <ann@example.org>\r\nTo: {USER}@example.com\r\nSubject: message {n}\r\n\
         Date: Thu, 3 Mar 2022 12:00:00 +0000\r\nMessage-ID: <{n}.{words}@backup.test>\r\n\r\n{}\r\n",
        format!("word{n} ").repeat(words)
    )
}

/// A started deployment with an account holding mail in three mailboxes with flags, keywords,
/// internal dates, expunged gaps and STOREs (so MODSEQs vary).
fn source(messages: usize, words: usize) -> Deployment {
    let mut deployment = Deployment::new("");
    let listeners = deployment.start();
    deployment.add_user(USER, PASSWORD);
    // A team the user works in: its mailboxes show under Shared/ and are compared too.
    for args in [
        &["team", "create", "support", "--address", "support@example.org"][..],
        &["team", "add-member", "support", USER],
    ] {
        succeeds("team setup", &deployment.cli(args, ""));
    }
    let mut s = login(listeners.imaps, &deployment.cert_path());
    s.ok("CREATE Projects");
    s.ok("CREATE Archive/2021");
    s.ok("SUBSCRIBE Projects");
    let boxes = ["INBOX", "Projects", "Archive/2021", "Shared/support/INBOX"];
    let flags = ["", "\\Seen", "\\Flagged $Label1", "\\Answered \\Seen", "$Important"];
    for n in 0..messages {
        let message = text(n, words);
        let date = format!("{:02}-Mar-2021 10:{:02}:00 +0100", 1 + n % 28, n % 60);
        s.ok(&format!(
            "APPEND {} ({}) \"{date}\" {{{}+}}\r\n{message}",
            boxes[n % boxes.len()],
            flags[n % flags.len()],
            message.len()
        ));
    }
    s.ok("SELECT Projects");
    s.ok("UID STORE 1:10 +FLAGS.SILENT (\\Deleted)");
    s.ok("UID EXPUNGE 3:6");
    s.ok("UID STORE 7:20 +FLAGS.SILENT ($Later)");
    s.ok("SELECT INBOX");
    s.ok("UID STORE 2:* -FLAGS.SILENT (\\Seen)");
    s.ok("UNSELECT");
    s.ok("LOGOUT");
    deployment
}

/// A client appending to INBOX one message at a time until stopped (or its connection dies),
/// recording each acknowledged UID with how long its APPEND took.
struct Writer {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<(u32, Instant, Duration)>>>,
    thread: thread::JoinHandle<()>,
}

impl Writer {
    fn start(imaps: SocketAddr, cert: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, acknowledged) = (Arc::clone(&stop), Arc::clone(&acknowledged));
            thread::spawn(move || {
                let result = (|| -> io::Result<()> {
                    let mut client = Client::try_tls(imaps, &cert)?;
                    client.try_read_line()?;
                    command(&mut client, "w0", &format!("LOGIN {USER} \"{PASSWORD}\""))?;
                    let mut n = 100_000;
                    while !stop.load(Ordering::Relaxed) {
                        let message = text(n, 300);
                        let started = Instant::now();
                        let done = command(
                            &mut client,
                            &format!("w{n}"),
                            &format!("APPEND INBOX ($Writer) {{{}+}}\r\n{message}", message.len()),
                        )?;
                        let uid = appended_uid(&done);
                        acknowledged.lock().unwrap().push((uid, Instant::now(), started.elapsed()));
                        n += 1;
                    }
                    Ok(())
                })();
                if let Err(e) = result {
                    eprintln!("writer stopped: {e}");
                }
            })
        };
        Self { stop, acknowledged, thread }
    }

    fn count(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }

    fn stop(self) -> Vec<(u32, Instant, Duration)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        Arc::try_unwrap(self.acknowledged).unwrap().into_inner().unwrap()
    }
}

/// The UID in `... OK [APPENDUID <validity> <uid>] ...`.
fn appended_uid(line: &str) -> u32 {
    let code = line.split("[APPENDUID ").nth(1).unwrap_or_else(|| panic!("no APPENDUID: {line}"));
    code.split([' ', ']']).nth(1).unwrap().parse().unwrap()
}

/// Sends `tag command` and returns the tagged line (which must be OK).
fn command(client: &mut Client, tag: &str, command: &str) -> io::Result<String> {
    client.try_send_raw(format!("{tag} {command}\r\n").as_bytes())?;
    loop {
        let line = client.try_read_line()?.ok_or(io::ErrorKind::UnexpectedEof)?;
        if line.starts_with(&format!("{tag} ")) {
            assert!(line.starts_with(&format!("{tag} OK")), "{command}: {line}");
            return Ok(line);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running the commands
// ---------------------------------------------------------------------------------------------

fn succeeds(what: &str, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed ({}): {stderr}", out.status);
    stderr
}

fn fails(what: &str, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{what} should have failed: {stderr}");
    stderr
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Restores `backup` into a new deployment and starts it.
fn restored(backup: &Path) -> Deployment {
    let mut target = Deployment::new("");
    let out = target.cli(&["backup", "restore", path(backup), "--data-dir", path(&target.data_dir())], "");
    let said = succeeds("backup restore", &out);
    assert!(said.contains("restored"), "{said}");
    target.start();
    target
}

fn account_of(deployment: &Deployment) -> Account {
    let mut session = login(deployment.listeners().imaps, &deployment.cert_path());
    let account = read_account(&mut session);
    session.ok("LOGOUT");
    account
}

/// The restored account holds the source's state of one instant: `source` is the source read
/// after the backup, `writes` the writer's acknowledged UIDs in INBOX (the only changes after
/// `before`, the source's INBOX when the writer started; appends only). Returns how many of the
/// writer's messages the backup holds.
fn assert_one_instant(restored: &Account, source: &Account, before: &Mailbox, writes: &[u32]) -> usize {
    assert_eq!(restored.list, source.list, "LIST differs");
    assert_eq!(
        restored.mailboxes.keys().collect::<Vec<_>>(),
        source.mailboxes.keys().collect::<Vec<_>>(),
        "mailboxes differ"
    );
    for (name, got) in &restored.mailboxes {
        let want = &source.mailboxes[name];
        if name != "INBOX" {
            assert_eq!(got, want, "{name} differs");
            continue;
        }
        assert_eq!(got.uid_validity, want.uid_validity, "UIDVALIDITY of INBOX");
        // Every message the backup holds is the source's, field for field.
        for (uid, message) in &got.messages {
            assert_eq!(Some(message), want.messages.get(uid), "INBOX UID {uid} differs");
        }
        // One instant: the source's messages below the backup's UIDNEXT, all of them.
        let below: BTreeSet<u32> = want.messages.keys().copied().filter(|u| *u < got.uid_next).collect();
        assert_eq!(got.messages.keys().copied().collect::<BTreeSet<u32>>(), below, "INBOX has holes");
        // And the counters of that instant: after the writer's last message in it, or as before.
        let last_write = got.messages.keys().copied().filter(|u| writes.contains(u)).max();
        match last_write {
            Some(uid) => {
                assert_eq!(got.uid_next, uid + 1, "UIDNEXT of INBOX");
                assert_eq!(got.highest_modseq, got.messages[&uid].modseq, "HIGHESTMODSEQ of INBOX");
            }
            None => {
                assert_eq!((got.uid_next, got.highest_modseq), (before.uid_next, before.highest_modseq));
            }
        }
        for (uid, message) in &before.messages {
            assert_eq!(got.messages.get(uid), Some(message), "INBOX UID {uid} from before the writer");
        }
    }
    restored.mailboxes["INBOX"].messages.keys().filter(|u| writes.contains(u)).count()
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// `backup create` while a client appends all along, then `verify`, `restore` into a new data
/// directory and a server on it: the state of one instant, and clients have nothing to resync.
#[test]
fn backup_while_appending_restores_one_instant() {
    backup_under_writes(ServerFate::KeepsRunning);
}

/// SIGKILL of the server while `backup create` copies: the backup still completes, verifies,
/// and restores to a state of one instant of the source.
#[test]
fn server_killed_during_a_backup() {
    backup_under_writes(ServerFate::KilledMidway);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerFate {
    KeepsRunning,
    KilledMidway,
}

fn backup_under_writes(fate: ServerFate) {
    let mut source = source(150, 400);
    let listeners = source.listeners();
    let before = {
        let mut s = login(listeners.imaps, &source.cert_path());
        read_account(&mut s).mailboxes.remove("INBOX").unwrap()
    };
    let out_dir = tempfile::tempdir().unwrap();
    let backup = out_dir.path().join("b1");

    let writer = Writer::start(listeners.imaps, source.cert_path());
    while writer.count() < 20 {
        thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let acked_before = writer.count();
    // Slow enough that the copy spans many APPENDs (the database is a few MiB).
    let mut child = Command::new(common::binary())
        .args(["backup", "create", path(&backup), "--max-rate", "1M", "--config", path(source.config_path())])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if fate == ServerFate::KilledMidway {
        let partial = out_dir.path().join(".b1.partial").join("postfach.db");
        while !partial.exists() && started.elapsed() < Duration::from_secs(20) {
            thread::sleep(Duration::from_millis(10));
        }
        thread::sleep(Duration::from_millis(700));
        assert!(child.try_wait().unwrap().is_none(), "the backup ended before the kill");
        source.kill9();
    }
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let said = succeeds("backup create", &out);
    let acked_during = writer.count() - acked_before;
    thread::sleep(Duration::from_millis(300));
    let writes = writer.stop();
    if fate == ServerFate::KeepsRunning {
        assert!(acked_during >= 10, "only {acked_during} APPENDs during the backup");
    }
    // The writer's slowest APPEND among those that overlapped the backup, and before it.
    let overlapped = |&&(_, acked, latency): &&(u32, Instant, Duration)| {
        acked >= started && acked - latency <= started + took
    };
    let slowest = writes.iter().filter(overlapped).map(|w| w.2).max().unwrap_or_default();
    let alone = writes.iter().take(acked_before).map(|w| w.2).max().unwrap_or_default();
    eprintln!(
        "{said}backup took {took:.2?} with --max-rate 1M; {acked_during} APPENDs acknowledged meanwhile, \
         slowest {slowest:.2?} (slowest before the backup: {alone:.2?})"
    );
    succeeds("backup verify", &source.cli(&["backup", "verify", path(&backup)], ""));
    let out = source.cli(&["backup", "verify", path(&backup), "--json"], "");
    succeeds("backup verify --json", &out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true, "{doc}");
    assert!(doc["manifest"]["files"].is_array() || doc["manifest"]["files"].is_object(), "{doc}");

    if fate == ServerFate::KilledMidway {
        source.start();
    }
    let source_now = account_of(&source);
    let target = restored(&backup);
    let restored_now = account_of(&target);
    let uids: Vec<u32> = writes.iter().map(|(uid, _, _)| *uid).collect();
    let held = assert_one_instant(&restored_now, &source_now, &before, &uids);
    eprintln!("the backup holds {held} of the writer's {} messages", uids.len());
    // Acknowledged before the backup started: in it. Written after it ended: not.
    assert!(held >= acked_before, "{held} < {acked_before}");
    assert!(source_now.mailboxes["INBOX"].uid_next > restored_now.mailboxes["INBOX"].uid_next);
    // The generated certificate came along: clients see the same one.
    assert_eq!(std::fs::read(target.cert_path()).unwrap(), std::fs::read(source.cert_path()).unwrap());
}

/// SIGKILL of `backup create` midway leaves no directory that `verify` accepts, and a rerun
/// succeeds; restoring it gives back every field. A restore is refused while the target's
/// server runs, and over an existing database without `--force`.
#[test]
fn killed_backup_leaves_nothing_verify_accepts() {
    let source = source(150, 400);
    let out_dir = tempfile::tempdir().unwrap();
    let backup = out_dir.path().join("b2");
    let partial = out_dir.path().join(".b2.partial");
    let mut child = Command::new(common::binary())
        .args([
            "backup",
            "create",
            path(&backup),
            "--max-rate",
            "256K",
            "--config",
            path(source.config_path()),
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !partial.join("postfach.db").exists() && started.elapsed() < Duration::from_secs(20) {
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(800));
    assert!(child.try_wait().unwrap().is_none(), "the backup ended before the kill");
    child.kill().unwrap();
    assert!(child.wait().unwrap().code().is_none(), "not killed");
    // (The copy may still be all in SQLite's page cache, an empty file: it is written at its end.)

    assert!(!backup.exists(), "a killed backup left {backup:?}");
    let said = fails("verify of the killed backup", &source.cli(&["backup", "verify", path(&backup)], ""));
    assert!(said.contains("not a directory"), "{said}");
    let said = fails("verify of its .partial", &source.cli(&["backup", "verify", path(&partial)], ""));
    assert!(said.contains("no manifest.json"), "{said}");

    succeeds("the rerun", &source.cli(&["backup", "create", path(&backup)], ""));
    assert!(!partial.exists(), "the rerun left {partial:?}");
    succeeds("backup verify", &source.cli(&["backup", "verify", path(&backup)], ""));

    // Not onto a running server's data directory, not even with --force.
    let said = fails(
        "restore onto a running server",
        &source.cli(
            &["backup", "restore", path(&backup), "--data-dir", path(&source.data_dir()), "--force"],
            "",
        ),
    );
    assert!(said.contains("a server is running"), "{said}");

    let mut target = restored(&backup);
    let source_account = account_of(&source);
    assert!(source_account.mailboxes.contains_key("Shared/support/INBOX"), "{:?}", source_account.list);
    assert_eq!(account_of(&target), source_account, "the restored server differs");
    let teams = |d: &Deployment| succeeds("team list", &d.cli(&["team", "list"], ""));
    assert_eq!(teams(&target), teams(&source));
    // Over an existing database only with --force; the replaced one is kept.
    target.terminate();
    let data = target.data_dir();
    let said = fails(
        "restore over a database",
        &target.cli(&["backup", "restore", path(&backup), "--data-dir", path(&data)], ""),
    );
    assert!(said.contains("--force"), "{said}");
    let said = succeeds(
        "restore --force",
        &target.cli(&["backup", "restore", path(&backup), "--data-dir", path(&data), "--force"], ""),
    );
    assert!(said.contains("replaced-"), "{said}");
    target.start();
    assert_eq!(account_of(&target), account_of(&source));
}

/// `verify` catches a flipped byte: by checksum, and by SQLite's integrity check when the
/// manifest's checksum is forged to match.
#[test]
fn verify_detects_a_flipped_byte() {
    let source = source(30, 50);
    let out_dir = tempfile::tempdir().unwrap();
    let backup = out_dir.path().join("b3");
    succeeds("backup create", &source.cli(&["backup", "create", path(&backup)], ""));
    succeeds("backup verify", &source.cli(&["backup", "verify", path(&backup)], ""));
    let db = backup.join("postfach.db");
    let mut bytes = std::fs::read(&db).unwrap();
    // Page 2's first byte: the page type of a b-tree page (`accounts`' root).
    bytes[4096] ^= 0xff;
    std::fs::write(&db, &bytes).unwrap();
    let said = fails("verify of a flipped byte", &source.cli(&["backup", "verify", path(&backup)], ""));
    assert!(said.contains("postfach.db: SHA-256"), "{said}");

    let manifest_path = backup.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let forged = sha256(&bytes);
    for file in manifest["files"].as_array_mut().unwrap() {
        if file["path"] == "postfach.db" {
            file["sha256"] = forged.clone().into();
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let said = fails("verify with a forged checksum", &source.cli(&["backup", "verify", path(&backup)], ""));
    assert!(!said.contains("SHA-256"), "{said}");
    assert!(said.contains("integrity check") || said.contains("cannot be checked"), "{said}");
    // Nothing is restored from it.
    let target = Deployment::new("");
    let said = fails(
        "restore of a damaged backup",
        &target.cli(&["backup", "restore", path(&backup), "--data-dir", path(&target.data_dir())], ""),
    );
    assert!(said.contains("nothing was restored"), "{said}");
    assert!(!target.data_dir().join("postfach.db").exists());
}

/// `[backup] every = "2s", keep = 2`: the server makes backups by itself, logs them, verifies
/// them and deletes the oldest beyond two.
#[test]
fn scheduled_backups_are_made_and_pruned() {
    let out_dir = tempfile::tempdir().unwrap();
    let dir = out_dir.path().join("scheduled");
    let mut deployment = Deployment::with_settings(&format!(
        "[imap]\nlisten = [\"127.0.0.1:0\"]\nlisten_tls = [\"127.0.0.1:0\"]\n[lmtp]\nlisten = []\n\
         [log]\nlevel = \"info\"\n[backup]\ndir = {:?}\nevery = \"2s\"\nkeep = 2\n",
        path(&dir)
    ));
    deployment.start();
    deployment.add_user(USER, PASSWORD);
    let started = Instant::now();
    while deployment.log().matches("backup done").count() < 4 {
        assert!(started.elapsed() < Duration::from_secs(60), "too few backups; log:\n{}", deployment.log());
        thread::sleep(Duration::from_millis(100));
    }
    deployment.terminate();
    let log = deployment.log();
    assert!(log.contains("scheduled backups on"), "{log}");
    assert!(log.contains("old backup deleted"), "{log}");
    assert!(!log.contains("backup failed"), "{log}");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "keep = 2, found {names:?}");
    for name in &names {
        assert!(name.len() == 16 && name.ends_with('Z') && name.as_bytes()[8] == b'T', "{name}");
        succeeds(
            "verify of a scheduled backup",
            &deployment.cli(&["backup", "verify", path(&dir.join(name))], ""),
        );
    }
    // The last one holds the account.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(&names[1]).join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["accounts"], 1, "{manifest}");
}
