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

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{
    Account, CLIENT_DEADLINE, Client, Maildir, Mbsync, PATIENCE, Session, State, TestServer, Wire,
    assert_idle_sync, available, maildir_letters, run_program,
};

/// No spaces in the password: it goes unquoted into INI-style configuration files.
const ACCOUNT: Account = Account { user: "devices", password: "sync-clients-secret", domain: "sync.test" };
const USER: &str = ACCOUNT.user;
const PASSWORD: &str = ACCOUNT.password;
/// Dovecot's IMAP process, run pre-authenticated for interimap's `tunnel`.
const DOVECOT_IMAP: &str = "/usr/lib/dovecot/imap";
/// What the idle-sync checks compare of each mailbox's STATUS: HIGHESTMODSEQ too, so that a
/// sync that rewrote flags to the same values is seen.
const SNAPSHOT_STATUS: &str = "UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ";

fn mail(short: &str, subject: &str) -> String {
    ACCOUNT.mail(short, subject)
}

// ---------------------------------------------------------------------------------------------
// A device's Dovecot, over a pipe
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------------

/// An offlineimap3 device: a Maildir plus offlineimap's own metadata.
struct Offlineimap {
    dir: PathBuf,
    maildir: Maildir,
    rc: PathBuf,
}

impl Offlineimap {
    fn new(dir: &Path, name: &str, server: &TestServer) -> Self {
        let dir = dir.join(name);
        let maildir = Maildir::new(dir.join("mail"), ACCOUNT);
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
        let done = run_program(
            Command::new("offlineimap").arg("-c").arg(&self.rc).arg("-o").arg("-u").arg("basic"),
            &self.dir,
            "offlineimap",
            CLIENT_DEADLINE,
        );
        done.assert_success("offlineimap", server);
        // offlineimap exits 0 even after some errors: its "ERROR" lines count too.
        let output = done.output();
        assert!(
            !output.contains("ERROR"),
            "offlineimap failed:\n{output}\nserver log (tail):\n{}",
            server.log_tail(40)
        );
        output
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
    fn local(&self) -> Session<DovecotPipe> {
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
        Session::new(pipe)
    }

    fn sync(&self, server: &TestServer) -> String {
        let done = run_program(
            Command::new("interimap").arg(format!("--config={}", self.config.display())),
            &self.dir,
            "interimap",
            CLIENT_DEADLINE,
        );
        if !done.status.success() {
            let log = std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default();
            eprintln!("Dovecot log:\n{log}");
        }
        done.assert_success("interimap", server);
        done.output()
    }
}

// ---------------------------------------------------------------------------------------------
// offlineimap3
// ---------------------------------------------------------------------------------------------

/// The server-side changes of the two-device tests: flags, a deletion, a move, new mail.
fn change_server(imap: &mut Session<Client>) {
    imap.store("INBOX", "s1", "+FLAGS (\\Answered)");
    imap.store("INBOX", "s2", "+FLAGS (\\Seen)");
    imap.delete("Projects", "p1");
    imap.move_to("INBOX", "s3", "Projects");
    imap.append("INBOX", "", &mail("s4", "server four"));
}

/// The state after [`change_server`] and the device's own changes: l1 flagged, l2 deleted, l3
/// seen, l4 new in Local.
fn after_changes() -> State {
    ACCOUNT.expected(&[
        ("INBOX", &[("s1", "FR"), ("s2", "S"), ("l1", "F"), ("s4", "")]),
        ("Projects", &[("p2", "R"), ("s3", "S")]),
        ("Local", &[("l3", "FS"), ("l4", "")]),
    ])
}

/// The state after the second device's changes: s4 seen, p2 deleted, m1 new (flagged).
fn after_second_device() -> State {
    ACCOUNT.expected(&[
        ("INBOX", &[("s1", "FR"), ("s2", "S"), ("l1", "F"), ("s4", "S"), ("m1", "F")]),
        ("Projects", &[("s3", "S")]),
        ("Local", &[("l3", "FS"), ("l4", "")]),
    ])
}

// ---------------------------------------------------------------------------------------------
// offlineimap3
// ---------------------------------------------------------------------------------------------

#[test]
fn offlineimap_syncs_both_ways_and_a_second_device_agrees() {
    if !available("offlineimap", "offlineimap3") {
        return;
    }
    let server = ACCOUNT.server();
    let dir = tempfile::tempdir().unwrap();
    let phone = Offlineimap::new(dir.path(), "phone", &server);
    let laptop = Offlineimap::new(dir.path(), "laptop", &server);

    let mut imap = Session::login(&server, &ACCOUNT);
    imap.seed_server(&ACCOUNT);
    let local = &phone.maildir;
    local.seed_device();

    // First sync: mail and folders both ways.
    phone.sync(&server);
    let want = ACCOUNT.first_sync();
    assert_eq!(imap.state(), want, "server after the first sync");
    assert_eq!(local.state(), want, "phone after the first sync");

    // Changes on both sides: flags, deletions, a move on the server, new mail.
    change_server(&mut imap);
    local.set_flags("INBOX", "l1", "F");
    local.remove("INBOX", "l2");
    local.set_flags("Local", "l3", "FS");
    local.deliver("Local", "l4", None, &mail("l4", "local four"));

    phone.sync(&server);
    let want = after_changes();
    assert_eq!(imap.state(), want, "server after the second sync");
    assert_eq!(local.state(), want, "phone after the second sync");

    // Nothing left to do: another sync changes neither side.
    assert_idle_sync(&mut imap, SNAPSHOT_STATUS, local, "offlineimap", || {
        phone.sync(&server);
    });

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
    let want = after_second_device();
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
    let server = ACCOUNT.server();
    let dir = tempfile::tempdir().unwrap();
    let phone = Interimap::new(dir.path(), "phone", &server);
    let laptop = Interimap::new(dir.path(), "laptop", &server);

    let mut imap = Session::login(&server, &ACCOUNT);
    imap.seed_server(&ACCOUNT);
    let mut local = phone.local();
    local.seed_device(&ACCOUNT);

    phone.sync(&server);
    let want = ACCOUNT.first_sync();
    assert_eq!(imap.state(), want, "server after the first sync");
    assert_eq!(local.state(), want, "phone after the first sync");

    // Changes on both sides; interimap finds the server's through SELECT (QRESYNC ...).
    change_server(&mut imap);
    local.store("INBOX", "l1", "+FLAGS (\\Flagged)");
    local.delete("INBOX", "l2");
    local.store("Local", "l3", "+FLAGS (\\Seen)");
    local.append("Local", "", &mail("l4", "local four"));

    phone.sync(&server);
    let want = after_changes();
    assert_eq!(imap.state(), want, "server after the second sync");
    assert_eq!(local.state(), want, "phone after the second sync");

    // Nothing left to do: same UIDs, flags and HIGHESTMODSEQ on both sides.
    let server_before = imap.snapshot(SNAPSHOT_STATUS);
    let local_before = local.snapshot(SNAPSHOT_STATUS);
    phone.sync(&server);
    assert_eq!(imap.snapshot(SNAPSHOT_STATUS), server_before, "an idle interimap sync changed the server");
    assert_eq!(local.snapshot(SNAPSHOT_STATUS), local_before, "an idle interimap sync changed the phone");

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
    let want = after_second_device();
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
    let server = ACCOUNT.server();
    let dir = tempfile::tempdir().unwrap();
    let laptop = Mbsync::new(dir.path(), "laptop", &server, ACCOUNT);
    let desktop = Offlineimap::new(dir.path(), "desktop", &server);
    let phone = Interimap::new(dir.path(), "phone", &server);

    let mut imap = Session::login(&server, &ACCOUNT);
    let mut inbox: Vec<(String, String)> = Vec::new();
    for i in 0..9 {
        let flags = if i % 3 == 0 { "\\Seen" } else { "" };
        imap.append("INBOX", flags, &mail(&format!("s{i}"), &format!("server {i}")));
        inbox.push((format!("s{i}"), maildir_letters(flags)));
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
            let mut mta = Session::login(&server, &ACCOUNT);
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
    let want = ACCOUNT.expected(&[("INBOX", &inbox_refs), ("Lists", &[("list0", ""), ("b1", "")])]);
    assert_eq!(imap.state(), want, "server");
    assert_eq!(laptop.maildir.state(), want, "laptop (mbsync)");
    assert_eq!(desktop.maildir.state(), want, "desktop (offlineimap)");
    assert_eq!(phone.local().state(), want, "phone (interimap)");

    // A further round finds nothing to do anywhere.
    let server_before = imap.snapshot(SNAPSHOT_STATUS);
    laptop.sync(&server);
    desktop.sync(&server);
    phone.sync(&server);
    assert_eq!(imap.snapshot(SNAPSHOT_STATUS), server_before, "a quiet round changed the server");
}
