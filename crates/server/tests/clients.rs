//! Real mail clients against the real binary: Python's imaplib, IMAPClient, Perl's
//! Mail::IMAPClient, mbsync (isync), getmail, NeoMutt, IMAPFilter, aerc and Alpine.
//!
//! imaplib runs `tests/scripts/imaplib_client.py` once over implicit TLS and once over STARTTLS:
//! folders created, renamed and deleted, a thousand varied messages appended, fetched back byte
//! for byte, flagged, half moved, some expunged, the final state checked; and
//! `tests/scripts/scram_login.py` logs in with SCRAM-SHA-256, which the server must offer.
//! mbsync syncs a local Maildir with the server both ways, propagates flags and deletions made
//! on either side, must find nothing to do on a second sync, and a second "device" (another
//! Maildir) must end up with the same state.
//!
//! IMAPClient (PyPI `imapclient`) runs `tests/scripts/imapclient_client.py` over both TLS
//! modes: every response it parses into Python values (ENVELOPE, BODYSTRUCTURE, dates,
//! modified UTF-7 names), SEARCH with a UTF-8 literal, SORT, THREAD, CONDSTORE, QUOTA, ACL, and
//! IDLE seeing another connection's changes. Mail::IMAPClient (under imapsync) runs
//! `tests/scripts/mail_imapclient.pl`, a two-pass migration checked message by message.
//! getmail (getmail6) fetches over IMAP and POP3 on TLS, remembers what it saw, and deletes.
//! IMAPFilter runs `tests/scripts/imapfilter.lua`, a user's filing rules (SEARCH, flags, COPY,
//! MOVE, TRYCREATE, IDLE). NeoMutt, aerc (go-imap) and Alpine (UW c-client) run in tmux, keys
//! typed and the screen read: they read, flag, delete, move or save, and show what another
//! device does meanwhile.
//!
//! A missing client (python3, imapclient, Mail::IMAPClient, mbsync, getmail, neomutt, tmux,
//! imapfilter, aerc, alpine) makes its test print why and pass, unless the environment sets
//! `POSTFACH_REQUIRE_CLIENTS=1` (CI does), which turns the skip into a failure. Every child
//! process runs under a deadline and is killed when it passes it.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Account, CLIENT_DEADLINE, Client, Mbsync, PATIENCE, POP3_SECTION, Session, State, TestServer,
    assert_idle_sync, available, python_module, run_program,
};

/// The account, with a password that needs quoting, and the mbsync test's messages.
const ACCOUNT: Account =
    Account { user: "alice", password: "imap client test password", domain: "mbsync.test" };
/// What the idle-sync check compares of each mailbox's STATUS.
const SNAPSHOT_STATUS: &str = "UIDVALIDITY UIDNEXT MESSAGES";

// ---------------------------------------------------------------------------------------------
// Python imaplib
// ---------------------------------------------------------------------------------------------

/// Runs a Python script from `tests/scripts` against `server` and asserts that it succeeded.
fn python(script: &str, args: &[&str], what: &str, server: &TestServer) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts").join(script);
    let dir = tempfile::tempdir().unwrap();
    let done = run_program(
        Command::new("python3")
            .arg(&script)
            .args(["--host", "127.0.0.1"])
            .args(args)
            .args(["--user", ACCOUNT.user, "--password", ACCOUNT.password])
            .arg("--cafile")
            .arg(server.cert_path()),
        dir.path(),
        "client",
        CLIENT_DEADLINE,
    );
    done.assert_success(what, server);
    done.stdout
}

fn imaplib(mode: &str) {
    if !available("python3", "python3") {
        return;
    }
    let server = ACCOUNT.server();
    let port = if mode == "ssl" { server.imaps.port() } else { server.imap.port() };
    let started = Instant::now();
    let stdout = python(
        "imaplib_client.py",
        &["--mode", mode, "--port", &port.to_string(), "--count", "1000"],
        &format!("imaplib over {mode}"),
        &server,
    );
    assert!(stdout.contains("imaplib: all checks passed"), "{stdout}");
    eprintln!("imaplib over {mode}: {:?}\n{stdout}", started.elapsed());
}

#[test]
fn imaplib_over_implicit_tls() {
    imaplib("ssl");
}

#[test]
fn imaplib_over_starttls() {
    imaplib("starttls");
}

/// AUTHENTICATE SCRAM-SHA-256 (RFC 5802, RFC 7677) is advertised and works for an account made
/// with `postfach user add`, as clients that prefer it (mbsync through Cyrus SASL) need.
#[test]
fn scram_sha_256_login() {
    if !available("python3", "python3") {
        return;
    }
    let server = ACCOUNT.server();
    let stdout =
        python("scram_login.py", &["--port", &server.imaps.port().to_string()], "SCRAM-SHA-256", &server);
    eprintln!("{stdout}");
    // The script fails when the capability is missing; its last line says every check ran.
    assert!(stdout.contains("scram: all checks passed"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// mbsync
// ---------------------------------------------------------------------------------------------

#[test]
fn mbsync_syncs_both_ways_and_a_second_device_agrees() {
    if !available("mbsync", "isync") {
        return;
    }
    let server = ACCOUNT.server();
    let dir = tempfile::tempdir().unwrap();
    let device_a = Mbsync::new(dir.path(), "device-a", &server, ACCOUNT);
    let device_b = Mbsync::new(dir.path(), "device-b", &server, ACCOUNT);
    let local = &device_a.maildir;

    // Mail on the server: INBOX and a folder of its own; on the device: INBOX and a folder the
    // server does not have yet.
    let mut imap = Session::login(&server, &ACCOUNT);
    // IMAP4rev2: no session-dependent \Recent in the flags the snapshots compare.
    imap.ok("ENABLE IMAP4rev2");
    imap.seed_server(&ACCOUNT);
    local.seed_device();

    // First sync: everything both ways, folders created on both sides.
    device_a.sync(&server);
    let want = ACCOUNT.first_sync();
    assert_eq!(imap.state(), want, "server after the first sync");
    assert_eq!(local.state(), want, "device A after the first sync");

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
    imap.append("INBOX", "", &ACCOUNT.mail("s4", "server four"));
    local.set_flags("INBOX", "l1", "F");
    local.remove("INBOX", "s3");
    local.set_flags("Local", "l3", "FS");

    device_a.sync(&server);
    let want = ACCOUNT.expected(&[
        ("INBOX", &[("s1", "FR"), ("s2", "S"), ("l1", "FR"), ("l2", "RS"), ("s4", "")]),
        ("Projects", &[("p2", "R")]),
        ("Local", &[("l3", "FS")]),
    ]);
    assert_eq!(imap.state(), want, "server after the second sync");
    assert_eq!(local.state(), want, "device A after the second sync");

    // A deletion by flag (T, trashed) propagates and is expunged on both sides (Expunge Both).
    local.set_flags("INBOX", "l2", "RST");
    device_a.sync(&server);
    let want = ACCOUNT.expected(&[
        ("INBOX", &[("s1", "FR"), ("s2", "S"), ("l1", "FR"), ("s4", "")]),
        ("Projects", &[("p2", "R")]),
        ("Local", &[("l3", "FS")]),
    ]);
    assert_eq!(imap.state(), want, "server after the trash sync");
    assert_eq!(local.state(), want, "device A after the trash sync");

    // Nothing left to do: another sync changes neither side.
    assert_idle_sync(&mut imap, SNAPSHOT_STATUS, local, "mbsync", || {
        device_a.sync(&server);
    });

    // A second device (an empty Maildir) sees the same state.
    device_b.sync(&server);
    assert_eq!(device_b.maildir.state(), want, "device B");
    assert_eq!(imap.state(), want, "the second device changed the server");
}

// ---------------------------------------------------------------------------------------------
// IMAPClient (PyPI)
// ---------------------------------------------------------------------------------------------

fn imapclient(mode: &str) {
    if !python_module("imapclient", "imapclient") {
        return;
    }
    let server = ACCOUNT.server();
    let port = if mode == "ssl" { server.imaps.port() } else { server.imap.port() };
    let stdout = python(
        "imapclient_client.py",
        &["--mode", mode, "--port", &port.to_string()],
        &format!("imapclient over {mode}"),
        &server,
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    eprintln!("{stdout}");
}

#[test]
fn imapclient_over_implicit_tls() {
    imapclient("ssl");
}

#[test]
fn imapclient_over_starttls() {
    imapclient("starttls");
}

// ---------------------------------------------------------------------------------------------
// Mail::IMAPClient (Perl)
// ---------------------------------------------------------------------------------------------

/// Perl's Mail::IMAPClient, the library under imapsync, runs `tests/scripts/mail_imapclient.pl`:
/// a two-pass migration into the server (the second pass finds every message by Message-ID),
/// sizes, internal dates, flags and bytes as they were, flags, COPY, MOVE, UID EXPUNGE, and IDLE.
#[test]
fn mail_imapclient_migrates_in_and_checks_every_message() {
    if !available("/usr/share/perl5/Mail/IMAPClient.pm", "libmail-imapclient-perl") {
        return;
    }
    let server = ACCOUNT.server();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/mail_imapclient.pl");
    let dir = tempfile::tempdir().unwrap();
    let done = run_program(
        Command::new("perl")
            .arg(&script)
            .arg(server.imaps.port().to_string())
            .args([ACCOUNT.user, ACCOUNT.password])
            .arg(server.cert_path()),
        dir.path(),
        "mail_imapclient",
        CLIENT_DEADLINE,
    );
    done.assert_success("Mail::IMAPClient", &server);
    assert!(done.stdout.contains("all checks passed"), "{}", done.output());
}

// ---------------------------------------------------------------------------------------------
// getmail (getmail6)
// ---------------------------------------------------------------------------------------------

/// The uid and gid of `nobody` and `nogroup` on Debian.
const NOBODY: u32 = 65534;

/// One getmail configuration: a retriever section over TLS, a Maildir, its own getmail
/// directory (where getmail remembers what it has seen).
struct Getmail {
    dir: PathBuf,
    retriever: String,
    /// Running as root: getmail refuses to deliver as root, so it delivers as `nobody`, into a
    /// Maildir of nobody's.
    as_nobody: bool,
}

impl Getmail {
    fn new(root: &Path, name: &str, retriever: String) -> Self {
        let dir = root.join(name);
        let maildir = dir.join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        let out = Command::new("id").arg("-u").output().unwrap();
        let as_nobody = String::from_utf8_lossy(&out.stdout).trim() == "0";
        if as_nobody {
            for path in [maildir.clone(), maildir.join("cur"), maildir.join("new"), maildir.join("tmp")] {
                std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
            }
        }
        Self { dir, retriever, as_nobody }
    }

    /// Runs getmail once; `delete` removes what it retrieved from the server.
    fn run(&self, delete: bool, server: &TestServer) -> String {
        let rc = self.dir.join("getmailrc");
        std::fs::write(
            &rc,
            format!(
                "[retriever]\n{retriever}\nserver = 127.0.0.1\nusername = {user}\npassword = {password}\n\
                 ca_certs = {cert}\n\n\
                 [destination]\ntype = Maildir\npath = {maildir}/\n{user_line}\n\
                 [options]\nread_all = false\ndelete = {delete}\ndelivered_to = false\nreceived = false\n\
                 verbose = 2\n",
                retriever = self.retriever,
                user = ACCOUNT.user,
                password = ACCOUNT.password,
                cert = server.cert_path().display(),
                maildir = self.dir.join("Maildir").display(),
                user_line = if self.as_nobody { "user = nobody\n" } else { "" },
            ),
        )
        .unwrap();
        let done = run_program(
            Command::new("getmail").arg("--getmaildir").arg(&self.dir).arg("--rcfile").arg(&rc),
            &self.dir,
            "getmail",
            CLIENT_DEADLINE,
        );
        done.assert_success("getmail", server);
        done.output()
    }

    /// The messages delivered so far, sorted: line ends made CRLF again (a Maildir keeps LF),
    /// and without the `Return-Path: <unknown>` that getmail puts first (it knows no envelope
    /// sender).
    fn delivered(&self) -> Vec<String> {
        let mut found: Vec<String> = std::fs::read_dir(self.dir.join("Maildir/new"))
            .unwrap()
            .map(|e| {
                let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
                assert!(!text.contains('\r'), "getmail keeps a Maildir's LF line ends: {text:?}");
                let text = text.replace('\n', "\r\n");
                text.strip_prefix("Return-Path: <unknown>\r\n").unwrap_or(&text).to_owned()
            })
            .collect();
        found.sort();
        found
    }
}

/// The messages of `shorts` as [`ACCOUNT`] writes them, sorted as [`Getmail::delivered`] sorts.
fn mails(shorts: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = shorts.iter().map(|s| ACCOUNT.mail(s, &format!("getmail {s}"))).collect();
    all.sort();
    all
}

/// getmail over IMAP (two folders) and over POP3, both on TLS with the certificate checked:
/// every message arrives byte for byte (line ends aside: a Maildir keeps LF), a second run
/// finds nothing new (IMAP: UIDVALIDITY and UIDs; POP3: UIDL), a new message alone is fetched
/// next, and `delete` empties the server's mailbox as IMAP then sees.
#[test]
fn getmail_retrieves_over_imap_and_pop3_and_deletes() {
    if !available("getmail", "getmail6") {
        return;
    }
    let server = TestServer::start_with_sections("", POP3_SECTION, &["pop3", "pop3s"]);
    server.add_user(ACCOUNT.user, ACCOUNT.password);
    let mut imap = Session::login(&server, &ACCOUNT);
    for short in ["g1", "g2"] {
        imap.append("INBOX", if short == "g2" { "\\Seen" } else { "" }, &mails(&[short])[0]);
    }
    imap.append("Archive", "", &mails(&["g3"])[0]);
    let root = tempfile::tempdir().unwrap();

    let over_imap = Getmail::new(
        root.path(),
        "imap",
        format!(
            "type = SimpleIMAPSSLRetriever\nport = {}\nmailboxes = (\"INBOX\", \"Archive\")\nrecord_mailbox = false",
            server.imaps.port()
        ),
    );
    let said = over_imap.run(false, &server);
    assert_eq!(over_imap.delivered(), mails(&["g1", "g2", "g3"]), "{said}");
    let said = over_imap.run(false, &server);
    assert_eq!(over_imap.delivered().len(), 3, "a second run fetched again: {said}");
    imap.append("INBOX", "", &mails(&["g4"])[0]);
    let said = over_imap.run(true, &server);
    assert_eq!(over_imap.delivered(), mails(&["g1", "g2", "g3", "g4"]), "{said}");
    // With `delete`, getmail deletes what it retrieved now and what it had seen before: both
    // folders end empty.
    let state = imap.state();
    assert!(state["INBOX"].is_empty() && state["Archive"].is_empty(), "{state:?}");

    // POP3: the same account's INBOX.
    let over_pop3 = Getmail::new(
        root.path(),
        "pop3",
        format!("type = SimplePOP3SSLRetriever\nport = {}", server.pop3s.unwrap().port()),
    );
    for short in ["p1", "p2"] {
        imap.append("INBOX", "", &mails(&[short])[0]);
    }
    let said = over_pop3.run(false, &server);
    assert_eq!(over_pop3.delivered(), mails(&["p1", "p2"]), "{said}");
    let said = over_pop3.run(false, &server);
    assert_eq!(over_pop3.delivered().len(), 2, "a second run fetched again: {said}");
    imap.append("INBOX", "", &mails(&["p3"])[0]);
    let said = over_pop3.run(true, &server);
    assert_eq!(over_pop3.delivered(), mails(&["p1", "p2", "p3"]), "{said}");
    let state = imap.state();
    assert!(state["INBOX"].is_empty(), "{state:?}");
    assert!(server.log().contains("mechanism=USER result=ok"), "getmail logs in to POP3 with USER/PASS");
}

// ---------------------------------------------------------------------------------------------
// NeoMutt, driven in tmux
// ---------------------------------------------------------------------------------------------

/// A program in a detached tmux session on a private tmux server: keys in, the screen out.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts `command` in a `width` x `height` window, in `dir`, with `HOME` there.
    fn start(dir: &Path, command: &[&str], width: u16, height: u16) -> Self {
        Self::start_with_env(dir, command, width, height, &[])
    }

    /// [`Tmux::start`] with more environment variables for `command`.
    fn start_with_env(dir: &Path, command: &[&str], width: u16, height: u16, env: &[(&str, &str)]) -> Self {
        let tmux = Self { socket: dir.join("tmux.sock") };
        let mut tmux_command = Command::new("tmux");
        for (name, value) in env {
            tmux_command.env(name, value);
        }
        let out = tmux_command
            .arg("-S")
            .arg(&tmux.socket)
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "client", "-x", &width.to_string()])
            .args(["-y", &height.to_string()])
            .args(command)
            .current_dir(dir)
            .env("HOME", dir)
            .env("TERM", "xterm")
            .output()
            .unwrap();
        assert!(out.status.success(), "tmux: {}", String::from_utf8_lossy(&out.stderr));
        tmux
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().unwrap()
    }

    /// What the window shows now.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "client"]).stdout).into_owned()
    }

    /// What the window shows now, with its colours and attributes as escape sequences.
    fn coloured_screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-e", "-p", "-t", "client"]).stdout).into_owned()
    }

    /// Types `text` literally.
    fn keys(&self, text: &str) {
        let out = self.tmux(&["send-keys", "-t", "client", "-l", text]);
        assert!(out.status.success(), "send-keys: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Presses one key by its tmux name (`Enter`, `C-u`).
    fn key(&self, name: &str) {
        let out = self.tmux(&["send-keys", "-t", "client", name]);
        assert!(out.status.success(), "send-keys: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Waits until the screen satisfies `done`; fails with the screen after [`PATIENCE`].
    fn wait(&self, what: &str, server: &TestServer, done: impl Fn(&str) -> bool) -> String {
        self.wait_up_to(PATIENCE, what, server, done)
    }

    /// [`Tmux::wait`] for at most `patience`.
    fn wait_up_to(
        &self,
        patience: Duration,
        what: &str,
        server: &TestServer,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + patience;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited {patience:?} for {what}; the screen:\n{screen}\nserver log (tail):\n{}",
                server.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the program still runs.
    fn running(&self) -> bool {
        self.tmux(&["has-session", "-t", "client"]).status.success()
    }

    /// Waits for the program (`name`) to end, as it must after its quit command.
    fn assert_ends(&self, name: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!self.running(), "{name} did not quit:\n{}", self.screen());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// A server whose INBOX holds four messages, "`name` one" to "`name` four" (Message-IDs
/// `<{letter}1@...>` to `<{letter}4@...>`), a session on it, and the four subjects.
fn four_messages(name: &str, letter: char) -> (TestServer, Session<Client>, Vec<String>) {
    let server = ACCOUNT.server();
    let mut imap = Session::login(&server, &ACCOUNT);
    let subjects: Vec<String> =
        ["one", "two", "three", "four"].iter().map(|n| format!("{name} {n}")).collect();
    for (i, subject) in subjects.iter().enumerate() {
        imap.append("INBOX", "", &ACCOUNT.mail(&format!("{letter}{}", i + 1), subject));
    }
    (server, imap, subjects)
}

/// What a terminal client test leaves on the server (its messages' `letter`): 1 read, 2
/// flagged, 3 deleted, 4 saved or moved to Archive.
fn after_client(letter: char) -> State {
    let short = |n: u8| format!("{letter}{n}");
    let (one, two, four) = (short(1), short(2), short(4));
    ACCOUNT.expected(&[("INBOX", &[(&one, "S"), (&two, "F")]), ("Archive", &[(&four, "")])])
}

/// [`after_client`] and then [`another_device`]'s changes.
fn after_both(letter: char) -> State {
    let short = |n: u8| format!("{letter}{n}");
    let (one, four, five) = (short(1), short(4), short(5));
    ACCOUNT.expected(&[("INBOX", &[(&one, "FS"), (&five, "")]), ("Archive", &[(&four, "")])])
}

/// Another device changes the INBOX a terminal client (its messages "`name` one" ...,
/// `letter`) shows: new mail ("`name` five"), \Flagged on one, two expunged. Waits up to
/// `patience` for the client's screen to show all three (`flagged` tells a flagged line).
fn another_device(
    imap: &mut Session<Client>,
    client: &Tmux,
    server: &TestServer,
    name: &str,
    letter: char,
    patience: Duration,
    flagged: impl Fn(&str) -> bool,
) {
    imap.append("INBOX", "", &ACCOUNT.mail(&format!("{letter}5"), &format!("{name} five")));
    imap.store("INBOX", &format!("{letter}1"), "+FLAGS (\\Flagged)");
    imap.store("INBOX", &format!("{letter}2"), "+FLAGS (\\Deleted)");
    imap.ok("EXPUNGE");
    imap.ok("UNSELECT");
    client.wait_up_to(patience, "another device's changes", server, |s| {
        s.contains(&format!("{name} five"))
            && !s.contains(&format!("{name} two"))
            && index_line(s, &format!("{name} one")).is_some_and(&flagged)
    });
}

/// The index line of the message with `subject`, if shown.
fn index_line<'a>(screen: &'a str, subject: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(subject))
}

/// Polls the server until `check` holds for its state; fails with the state after PATIENCE.
fn wait_for_state(imap: &mut Session<Client>, what: &str, check: impl Fn(&State) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let state = imap.state();
        if check(&state) {
            return;
        }
        assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what}: {state:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// NeoMutt over IMAPS, as a person uses it, keys typed into tmux: it verifies the certificate
/// against the server's (no prompt), shows the INBOX, and what is done in it reaches the
/// server (read = \Seen, flag, delete and sync = EXPUNGE, save to Archive). What another
/// device does meanwhile (new mail, a flag, an expunge) shows on its screen while it sits
/// in the index, by IDLE.
#[test]
fn neomutt_in_tmux_reads_flags_deletes_saves_and_sees_other_devices() {
    if !available("neomutt", "neomutt") || !available("tmux", "tmux") {
        return;
    }
    let (server, mut imap, subjects) = four_messages("Neomutt", 'n');

    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certificates");
    std::fs::copy(server.cert_path(), &certs).unwrap();
    let rc = dir.path().join("neomuttrc");
    std::fs::write(
        &rc,
        format!(
            "set folder = \"imaps://{user}@127.0.0.1:{port}/\"\n\
             set spoolfile = \"+INBOX\"\n\
             set imap_user = \"{user}\"\n\
             set imap_pass = \"{password}\"\n\
             set certificate_file = \"{certs}\"\n\
             set ssl_verify_host = yes\n\
             set header_cache = \"\"\n\
             set message_cachedir = \"\"\n\
             set record = \"\"\n\
             set imap_idle = yes\n\
             set mail_check = 1\n\
             set timeout = 1\n\
             set sort = mailbox-order\n\
             set delete = yes\n\
             set move = no\n\
             set quit = yes\n\
             set confirmappend = no\n\
             set wait_key = no\n\
             set mark_old = no\n\
             set help = no\n\
             set index_format = \"%4C [%Z] %s\"\n",
            user = ACCOUNT.user,
            password = ACCOUNT.password,
            port = server.imaps.port(),
            certs = certs.display(),
        ),
    )
    .unwrap();
    let rc = rc.display().to_string();
    let mutt = Tmux::start(dir.path(), &["neomutt", "-n", "-F", &rc], 120, 30);
    mutt.wait("the INBOX index", &server, |s| subjects.iter().all(|subject| s.contains(subject)));

    // Read message 1 (the pager shows its body), back to the index.
    mutt.keys("1");
    mutt.key("Enter");
    mutt.key("Enter");
    mutt.wait("the pager", &server, |s| s.contains("Body of Neomutt one."));
    mutt.keys("q");
    mutt.wait("the index again", &server, |s| s.contains("Neomutt four") && !s.contains("Body of"));
    // Flag 2, delete 3, save 4 to Archive, then sync.
    mutt.keys("2");
    mutt.key("Enter");
    mutt.keys("F");
    mutt.keys("3");
    mutt.key("Enter");
    mutt.keys("d");
    mutt.keys("4");
    mutt.key("Enter");
    mutt.keys("s");
    mutt.wait("the save prompt", &server, |s| s.contains("Save to mailbox"));
    // The prompt offers a default; clear the line first (^U), then the folder.
    mutt.key("C-u");
    mutt.keys("=Archive");
    mutt.key("Enter");
    // Saved: marked deleted in the INBOX (or gone at once, where it was moved).
    mutt.wait("the saved message marked deleted", &server, |s| {
        index_line(s, "Neomutt four").is_none_or(|l| l.contains('D'))
    });
    mutt.keys("$");

    wait_for_state(&mut imap, "NeoMutt's changes on the server", |state| *state == after_client('n'));
    another_device(&mut imap, &mutt, &server, "Neomutt", 'n', PATIENCE, |l| l.contains('!'));

    // Quit: NeoMutt ends, and the server holds what both devices did.
    mutt.keys("q");
    mutt.assert_ends("NeoMutt");
    assert_eq!(imap.state(), after_both('n'));
    assert_no_session_warnings(&server);
}

/// A well-behaved client's sessions log no warning (rustls's about the IP address that GnuTLS
/// sends as the server name included).
fn assert_no_session_warnings(server: &TestServer) {
    let log = server.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN conn{")).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

// ---------------------------------------------------------------------------------------------
// IMAPFilter
// ---------------------------------------------------------------------------------------------

/// A message for the IMAPFilter test: `short` with `headers` added and `body`.
fn filter_mail(short: &str, headers: &str, body: &str) -> String {
    format!(
        "From: Bob <bob@example.org>\r\nTo: {user}@example.com\r\n{headers}\
         Date: Thu, 3 Mar 2022 12:00:00 +0000\r\nMessage-ID: <{short}@{domain}>\r\n\r\n{body}\r\n",
        user = ACCOUNT.user,
        domain = ACCOUNT.domain,
    )
}

/// IMAPFilter (its own IMAP code, in C) runs `tests/scripts/imapfilter.lua`: rules that become
/// SEARCH (SUBJECT, FROM or LARGER, BEFORE, BODY, TO, UNSEEN), a client-side regular
/// expression over fetched headers, flags, a keyword, COPY and MOVE, delete with EXPUNGE, a
/// mailbox created on NO [TRYCREATE] only, and IDLE woken by new mail. The server's state after
/// is what the rules say.
#[test]
fn imapfilter_rules_file_the_mail_and_idle_wakes_it() {
    if !available("imapfilter", "imapfilter") {
        return;
    }
    let server = ACCOUNT.server();
    let mut imap = Session::login(&server, &ACCOUNT);
    let big = "A long line of holiday photos, described in words rather than sent.\r\n".repeat(80);
    let seed: [(&str, &str, &str, &str); 9] = [
        ("i1", "", "Subject: Invoice 2026-11\r\n", "Please pay."),
        (
            "i2",
            "",
            "Subject: Meeting\r\nReply-To: boss@example.org\r\nSender: boss@example.org\r\n",
            "At ten.",
        ),
        ("i3", "", "Subject: Photos\r\n", &big),
        ("i4", "", "Subject: Ancient\r\n", "From long ago."),
        ("i5", "", "Subject: Cheap pills\r\nX-Spam-Flag: YES\r\n", "Buy now."),
        ("i6", "", "Subject: Weekly news\r\n", "Click here to unsubscribe."),
        ("i7", "", "Subject: Electricity\r\nCc: bills@example.com\r\n", "Your bill."),
        ("i8", "", "Subject: Please read me\r\n", "Important."),
        ("i9", "\\Seen", "Subject: Keep for later\r\n", "Someday."),
    ];
    for (short, flags, headers, body) in seed {
        let mut text = filter_mail(short, headers, body);
        if short == "i2" {
            text = text.replace("From: Bob <bob@example.org>", "From: The Boss <boss@example.org>");
        }
        if short == "i7" {
            text = text.replace(&format!("To: {}@example.com", ACCOUNT.user), "To: bills@example.com");
        }
        // i4 arrived years ago: its internal date is what BEFORE compares.
        let date = if short == "i4" { " \"01-Jan-2020 00:00:00 +0000\"" } else { "" };
        imap.ok(&format!("APPEND INBOX ({flags}){date} {{{}+}}\r\n{text}", text.len()));
    }

    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/imapfilter.lua");
    let out_path = dir.path().join("imapfilter.out");
    let err_path = dir.path().join("imapfilter.err");
    let mut child = Command::new("imapfilter")
        .arg("-c")
        .arg(&script)
        .arg("-t")
        .arg(server.cert_path())
        .env("HOME", dir.path())
        .env("POSTFACH_PORT", server.imaps.port().to_string())
        .env("POSTFACH_USER", ACCOUNT.user)
        .env("POSTFACH_PASSWORD", ACCOUNT.password)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let output = || {
        format!(
            "stdout:\n{}\nstderr:\n{}\nserver log (tail):\n{}",
            std::fs::read_to_string(&out_path).unwrap_or_default(),
            std::fs::read_to_string(&err_path).unwrap_or_default(),
            server.log_tail(30)
        )
    };
    // Once it idles, one more invoice arrives.
    let deadline = Instant::now() + CLIENT_DEADLINE;
    while !(std::fs::read_to_string(&out_path).unwrap_or_default().contains("idling")
        && server.log().contains("command=\"IDLE\""))
    {
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            let _ = child.kill();
            panic!("IMAPFilter did not reach IDLE:\n{}", output());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    imap.append("INBOX", "", &filter_mail("i10", "Subject: Invoice 2026-12\r\n", "Please pay again."));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("IMAPFilter did not finish:\n{}", output());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "IMAPFilter failed ({status:?}):\n{}", output());
    assert!(std::fs::read_to_string(&out_path).unwrap().contains("imapfilter: done"), "{}", output());

    let mut want = ACCOUNT.expected(&[
        ("INBOX", &[("i2", "F"), ("i3", "F"), ("i6", ""), ("i7", ""), ("i8", "S")]),
        ("Archive", &[("i1", ""), ("i10", "")]),
        ("Junk", &[("i5", "")]),
        ("Filtered/Bills", &[("i7", "")]),
        ("Later", &[("i9", "S")]),
    ]);
    let state = imap.state();
    // Whether CREATE Filtered/Bills made Filtered selectable is the server's choice.
    if state.contains_key("Filtered") {
        want.insert("Filtered".to_owned(), Default::default());
    }
    assert_eq!(state, want, "{}", output());
    imap.ok("EXAMINE INBOX");
    let tagged = imap.ok("UID SEARCH KEYWORD $Newsletter");
    assert_eq!(tagged, vec![format!("* SEARCH {}", imap_uid(&mut imap, "i6"))]);
    // The target was created because the server said TRYCREATE, not on IMAPFilter's own guess.
    assert!(server.log().matches("command=\"CREATE\"").count() == 2, "{}", output());
}

/// The UID of `short` in the selected mailbox.
fn imap_uid(imap: &mut Session<Client>, short: &str) -> u32 {
    let found = imap.ok(&format!("UID SEARCH HEADER Message-ID \"<{short}@\""));
    found[0].rsplit(' ').next().unwrap().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// aerc, driven in tmux
// ---------------------------------------------------------------------------------------------

/// aerc (Go, go-imap) over IMAPS, its own commands typed into tmux: it verifies the certificate
/// (`SSL_CERT_FILE`), lists the INBOX, finds messages by server-side SEARCH, flags, deletes,
/// moves and reads them, and shows what another device does meanwhile.
#[test]
fn aerc_in_tmux_searches_flags_deletes_moves_and_sees_other_devices() {
    if !available("aerc", "aerc") || !available("tmux", "tmux") {
        return;
    }
    let (server, mut imap, subjects) = four_messages("Aerc", 'a');

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(".config/aerc");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("aerc.conf"), "[ui]\nmouse-enabled = false\n\n[filters]\ntext/plain = cat\n")
        .unwrap();
    std::fs::write(config.join("binds.conf"), "[messages]\nq = :quit<Enter>\n").unwrap();
    let accounts = config.join("accounts.conf");
    std::fs::write(
        &accounts,
        format!(
            "[Test]\nsource = imaps://{user}:{password}@127.0.0.1:{port}\noutgoing = /bin/true\n\
             default = INBOX\nfrom = Alice <{user}@example.com>\narchive = Archive\ncopy-to = Sent\n",
            user = ACCOUNT.user,
            password = ACCOUNT.password.replace(' ', "%20"),
            port = server.imaps.port(),
        ),
    )
    .unwrap();
    // aerc refuses an accounts.conf that others may read.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&accounts, std::fs::Permissions::from_mode(0o600)).unwrap();

    let cert = server.cert_path().display().to_string();
    let aerc = Tmux::start_with_env(dir.path(), &["aerc"], 140, 30, &[("SSL_CERT_FILE", &cert)]);
    aerc.wait("the INBOX", &server, |s| subjects.iter().all(|subject| s.contains(subject)));
    let command = |line: &str| {
        aerc.keys(&format!(":{line}"));
        aerc.key("Enter");
    };

    // Server-side SEARCH: aerc marks the results (green, in its default style set).
    command("search two");
    aerc.wait("the search result marked", &server, |_| {
        let coloured = aerc.coloured_screen();
        let marked: Vec<&str> =
            coloured.lines().filter(|l| l.contains("Aerc ") && l.contains("\x1b[32m")).collect();
        marked.len() == 1 && marked[0].contains("Aerc two")
    });
    command("clear");
    // The rest on a message chosen by its place in the list (`:select` waits for nothing).
    let select = |subject: &str| {
        let screen = aerc.screen();
        let place = screen.lines().filter(|l| l.contains("Aerc ")).position(|l| l.contains(subject));
        let place = place.unwrap_or_else(|| panic!("{subject} not listed:\n{screen}"));
        command(&format!("select {place}"));
    };
    select("Aerc two");
    command("flag");
    aerc.wait("the flag", &server, |s| index_line(s, "Aerc two").is_some_and(|l| l.contains('!')));
    select("Aerc three");
    command("delete");
    aerc.wait("the deletion", &server, |s| !s.contains("Aerc three"));
    select("Aerc four");
    command("move Archive");
    aerc.wait("the move", &server, |s| !s.contains("Aerc four"));
    select("Aerc one");
    command("view");
    aerc.wait("the message", &server, |s| s.contains("Body of Aerc one."));
    command("close");

    wait_for_state(&mut imap, "aerc's changes on the server", |state| *state == after_client('a'));
    another_device(&mut imap, &aerc, &server, "Aerc", 'a', PATIENCE, |l| l.contains('!'));

    command("quit");
    aerc.assert_ends("aerc");
    assert_eq!(imap.state(), after_both('a'));
    assert_no_session_warnings(&server);
}

// ---------------------------------------------------------------------------------------------
// Alpine (UW c-client), driven in tmux
// ---------------------------------------------------------------------------------------------

/// How long Alpine may take to notice another device's change: its mail check runs at most
/// every 15 seconds.
const ALPINE_PATIENCE: Duration = Duration::from_secs(60);

/// Alpine over IMAPS (UW c-client underneath, the library of PHP's imap functions too), keys
/// typed into tmux: it checks the certificate for `localhost` (`SSL_CERT_FILE`), asks for the
/// password, lists the INBOX, and what is done there reaches the server (read, flag, delete
/// with expunge, save to Archive); another device's new mail and expunge show by its polling.
#[test]
fn alpine_in_tmux_reads_flags_deletes_saves_and_sees_other_devices() {
    if !available("alpine", "alpine") || !available("tmux", "tmux") {
        return;
    }
    let (server, mut imap, subjects) = four_messages("Alpine", 'p');
    let dir = tempfile::tempdir().unwrap();
    let folder = format!("{{localhost:{}/ssl/user={}}}", server.imaps.port(), ACCOUNT.user);
    std::fs::write(
        dir.path().join("pinerc"),
        format!(
            "inbox-path={folder}INBOX\nfolder-collections={folder}[]\nuser-domain=example.com\n\
             personal-name=Alice\nlast-version-used=2.26\nmail-check-interval=1\n\
             feature-list=quit-without-confirm,expunge-without-confirm\n"
        ),
    )
    .unwrap();
    let cert = server.cert_path().display().to_string();
    let pinerc = dir.path().join("pinerc").display().to_string();
    let alpine = Tmux::start_with_env(
        dir.path(),
        &["alpine", "-p", &pinerc, "-i"],
        120,
        30,
        &[("SSL_CERT_FILE", &cert)],
    );
    alpine.wait("the greeting", &server, |s| s.contains("Exit this greeting"));
    alpine.keys("E");
    alpine.wait("the password prompt", &server, |s| s.contains("ENTER PASSWORD"));
    alpine.keys(ACCOUNT.password);
    alpine.key("Enter");
    alpine.wait("the question about keeping the password", &server, |s| s.contains("Preserve password"));
    alpine.keys("N");
    alpine.wait("the INBOX index", &server, |s| {
        s.contains("Folder: INBOX") && subjects.iter().all(|subject| s.contains(subject))
    });

    // Message 1 is current: read it, back to the index.
    alpine.key("Enter");
    alpine.wait("the message", &server, |s| s.contains("Body of Alpine one."));
    alpine.keys("i");
    alpine.wait("the index again", &server, |s| s.contains("MESSAGE INDEX"));
    // 2: flag (important), 3: delete, 4: save to Archive (marked deleted), then expunge.
    alpine.keys("n");
    alpine.keys("*");
    alpine.wait("the flag menu", &server, |s| s.contains("Important ?"));
    alpine.key("Enter");
    alpine.wait("the flag", &server, |s| index_line(s, "Alpine two").is_some_and(|l| l.contains('*')));
    alpine.keys("n");
    alpine.keys("d");
    alpine.wait("the deletion mark", &server, |s| {
        index_line(s, "Alpine three").is_some_and(|l| l.contains(" D "))
    });
    // Deleting moved on to message 4.
    alpine.wait("message 4 current", &server, |s| s.contains("Message 4 of 4"));
    alpine.keys("s");
    alpine.wait("the save prompt", &server, |s| s.contains("SAVE Msg #4 to folder"));
    alpine.keys("Archive");
    alpine.key("Enter");
    alpine.wait("the saved message marked deleted", &server, |s| {
        index_line(s, "Alpine four").is_some_and(|l| l.contains(" D "))
    });
    alpine.keys("x");
    alpine.wait("the expunge", &server, |s| !s.contains("Alpine three") && !s.contains("Alpine four"));

    wait_for_state(&mut imap, "Alpine's changes on the server", |state| *state == after_client('p'));
    // Alpine looks at most every 15 s (its shortest mail-check-interval), by NOOP.
    another_device(&mut imap, &alpine, &server, "Alpine", 'p', ALPINE_PATIENCE, |l| l.starts_with('*'));

    alpine.keys("q");
    alpine.assert_ends("Alpine");
    assert_eq!(imap.state(), after_both('p'));
    assert_no_session_warnings(&server);
}
