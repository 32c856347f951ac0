//! Team mailboxes, ACLs and quotas from the operator's side, against the real binary: the
//! `team`, `group`, `acl`, `quota` and `mailbox` commands beside a running server, mail to a
//! team's address over LMTP, the LMTP answers and `deliver` exit codes over quota, and the
//! quota warning that arrives once per threshold crossed.
//!
//! What members see over IMAP (Shared/<team>/…, MYRIGHTS, GETQUOTAROOT) is the session's and
//! is tested with it; here IMAP only checks that a team cannot log in and counts warnings.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Client, PATIENCE, Session, TestServer, run_cli};

const PASSWORD: &str = "secret-pw";

/// A server with plaintext login allowed, LMTP on a free port, and users alice and bob.
fn server_with(sections: &str) -> TestServer {
    let server = TestServer::start_with_sections("allow_plaintext_auth = true", sections, &["lmtp"]);
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    server
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a CLI command that must succeed; its standard output.
fn ok(server: &TestServer, args: &[&str]) -> String {
    let out = server.cli(args, "");
    assert!(out.status.success(), "{args:?} failed: {}", stderr(&out));
    stdout(&out)
}

/// Runs a CLI command that must fail with exit code 1 and a one-line message containing
/// `expected`.
fn refused(server: &TestServer, args: &[&str], expected: &str) {
    let out = server.cli(args, "");
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail: {}{}", stdout(&out), stderr(&out));
    let message = stderr(&out);
    assert!(message.contains(expected), "{args:?}: expected {expected:?} in {message:?}");
    assert_eq!(message.lines().count(), 1, "one line: {message}");
}

/// A blocking LMTP client.
struct Lmtp {
    stream: BufReader<TcpStream>,
}

impl Lmtp {
    fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut lmtp = Lmtp { stream: BufReader::new(tcp) };
        assert!(lmtp.reply().starts_with("220 "));
        lmtp.send("LHLO test.example\r\n");
        assert!(lmtp.reply().starts_with("250"));
        lmtp
    }

    fn send(&mut self, text: &str) {
        self.stream.get_mut().write_all(text.as_bytes()).unwrap();
    }

    /// One reply; multi-line replies joined by '\n'.
    fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.stream.read_line(&mut line).unwrap() > 0, "connection closed; got {lines:?}");
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    /// One transaction: the RCPT replies, then (when a recipient was accepted) the replies
    /// after DATA.
    fn send_mail(&mut self, recipients: &[&str], message: &str) -> (Vec<String>, Vec<String>) {
        self.send("MAIL FROM:<sender@remote.example>\r\n");
        assert_eq!(self.reply(), "250 2.1.0 Ok");
        let mut rcpt = Vec::new();
        for r in recipients {
            self.send(&format!("RCPT TO:<{r}>\r\n"));
            rcpt.push(self.reply());
        }
        let accepted = rcpt.iter().filter(|r| r.starts_with("250")).count();
        if accepted == 0 {
            self.send("RSET\r\n");
            self.reply();
            return (rcpt, Vec::new());
        }
        self.send("DATA\r\n");
        assert!(self.reply().starts_with("354"));
        self.send(&format!("{message}.\r\n"));
        let data = (0..accepted).map(|_| self.reply()).collect();
        (rcpt, data)
    }
}

fn message(subject: &str, body: &str) -> String {
    format!("From: Sender <sender@remote.example>\r\nSubject: {subject}\r\n\r\n{body}\r\n")
}

/// A logged-in IMAP session.
fn imap(server: &TestServer, user: &str) -> Session<Client> {
    let mut client = server.connect();
    client.read_line();
    let mut session = Session::new(client);
    session.ok(&format!("LOGIN {user} {PASSWORD}"));
    session
}

/// A number from a user's `STATUS INBOX (item)` answer (MESSAGES, SIZE).
fn inbox_status(server: &TestServer, user: &str, item: &str) -> u64 {
    let lines = imap(server, user).ok(&format!("STATUS INBOX ({item})"));
    let status = lines.iter().find(|l| l.starts_with("* STATUS")).unwrap();
    let after = status.split(&format!("{item} ")).nth(1).unwrap();
    after.split([' ', ')']).next().unwrap().parse().unwrap()
}

/// The subjects in a user's INBOX that are not quota warnings (which arrive on their own).
fn mail(server: &TestServer, user: &str) -> Vec<String> {
    subjects(server, user).into_iter().filter(|s| !s.ends_with("% full")).collect()
}

/// The Subject lines in a user's INBOX.
fn subjects(server: &TestServer, user: &str) -> Vec<String> {
    let mut session = imap(server, user);
    session.ok("EXAMINE INBOX");
    let lines = session.ok("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    lines
        .iter()
        .filter_map(|l| l.split("Subject: ").nth(1))
        .map(|s| s.split("\r\n").next().unwrap_or(s).trim().to_owned())
        .collect()
}

/// The messages in the INBOX of an account (a team too), read from the store directly.
fn inbox_of(server: &TestServer, account: &str) -> Vec<String> {
    use postfach_store::{FetchWant, MailboxName, UidSet};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = server.open_store().await;
        let owner = store.account_by_name(account).await.unwrap().unwrap();
        let inbox = store.mailbox_by_name(owner.id, &MailboxName::inbox()).await.unwrap().unwrap();
        let all = UidSet::from_ranges([1..=u32::MAX]);
        let mut out = Vec::new();
        for meta in store.fetch(inbox.id, &all, FetchWant::default()).await.unwrap() {
            out.push(String::from_utf8(store.body(inbox.id, meta.uid).await.unwrap()).unwrap());
        }
        out
    })
}

/// Every sharing command, its output and its refusals, beside a running server.
#[test]
fn team_group_acl_quota_and_seen_mode_commands() {
    let server = server_with("");
    // Teams.
    let created = server.cli(&["team", "create", "support", "--address", "help@example.org"], "");
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stderr(&created).contains("help@example.org"), "{}", stderr(&created));
    ok(&server, &["team", "create", "sales"]);
    refused(&server, &["team", "create", "support"], "exists already");
    refused(&server, &["team", "create", "alice"], "exists already");
    refused(&server, &["team", "create", "x", "--address", "not an address"], "not a mail address");
    ok(&server, &["team", "add-member", "support", "alice"]);
    ok(&server, &["team", "add-member", "support", "bob", "--rights", "lr"]);
    refused(&server, &["team", "add-member", "support", "nobody"], "no such user: nobody");
    refused(&server, &["team", "add-member", "nowhere", "bob"], "no such team: nowhere");
    refused(&server, &["team", "add-member", "alice", "bob"], "alice is a user, not a team");
    refused(&server, &["team", "add-member", "support", "sales"], "sales is a team, not a user");
    refused(&server, &["team", "add-member", "support", "bob", "--rights", "lrz"], "unknown right 'z'");
    assert_eq!(
        ok(&server, &["team", "list"]),
        "sales (no address)\nsupport <help@example.org>\n  alice lrswipkxte\n  bob lr\n"
    );
    // Teams are no users: not listed, no password.
    assert_eq!(ok(&server, &["user", "list"]), "alice\nbob\n");
    let passwd = server.cli(&["user", "passwd", "support", "--password-stdin"], "x\n");
    assert_eq!(passwd.status.code(), Some(1));
    assert!(stderr(&passwd).contains("is a team"), "{}", stderr(&passwd));

    // ACLs: the membership shows as entries; +/- change them; negative entries and groups.
    let acl = |server: &TestServer| ok(server, &["acl", "get", "support", "INBOX"]);
    assert_eq!(acl(&server), "support lrswipkxtea (owner)\nalice lrswipkxte\nbob lr\n");
    ok(&server, &["acl", "set", "support", "INBOX", "bob", "+ws"]);
    assert!(acl(&server).contains("\nbob lrsw\n"), "{}", acl(&server));
    ok(&server, &["acl", "set", "support", "INBOX", "BOB", "-s"]);
    assert!(acl(&server).contains("\nbob lrw\n"), "{}", acl(&server));
    ok(&server, &["acl", "set", "support", "INBOX", "-bob", "w"]);
    ok(&server, &["acl", "set", "support", "INBOX", "$staff", "lr"]);
    ok(&server, &["acl", "set", "support", "INBOX", "anyone", "l"]);
    let text = acl(&server);
    for line in ["\n-bob w\n", "\n$staff lr\n", "\nanyone l\n"] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    ok(&server, &["acl", "delete", "support", "INBOX", "-bob"]);
    assert!(!acl(&server).contains("-bob"), "{}", acl(&server));
    // Rights taken away to nothing remove the entry.
    ok(&server, &["acl", "set", "support", "INBOX", "anyone", "-l"]);
    assert!(!acl(&server).contains("anyone"), "{}", acl(&server));
    refused(&server, &["acl", "delete", "support", "INBOX", "anyone"], "has no entry for anyone");
    refused(&server, &["acl", "set", "support", "Nope", "bob", "lr"], "support has no mailbox \"Nope\"");
    refused(&server, &["acl", "set", "nobody", "INBOX", "bob", "lr"], "no such account: nobody");
    refused(&server, &["acl", "set", "support", "INBOX", "ghost", "lr"], "no such account: ghost");
    refused(&server, &["acl", "set", "support", "INBOX", "bob", "lrq"], "unknown right 'q'");
    refused(&server, &["acl", "get", "support", "Nope"], "support has no mailbox");
    // A user's own mailbox has an ACL too.
    ok(&server, &["acl", "set", "alice", "Archive", "bob", "lr"]);
    assert_eq!(ok(&server, &["acl", "get", "alice", "Archive"]), "alice lrswipkxtea (owner)\nbob lr\n");

    // Memberships end; groups.
    ok(&server, &["team", "remove-member", "support", "bob"]);
    refused(&server, &["team", "remove-member", "support", "bob"], "bob is not a member of team support");
    assert_eq!(
        ok(&server, &["team", "list"]),
        "sales (no address)\nsupport <help@example.org>\n  alice lrswipkxte\n"
    );
    ok(&server, &["group", "add", "staff", "bob"]);
    ok(&server, &["group", "add", "$staff", "alice"]);
    ok(&server, &["group", "remove", "staff", "bob"]);
    refused(&server, &["group", "add", "staff", "nobody"], "no such user: nobody");
    refused(&server, &["group", "add", "two words", "bob"], "not a group name");

    // Quotas.
    let quota = ok(&server, &["quota", "get", "alice"]);
    assert!(
        quota.starts_with("storage   0 B, unlimited, default\nmessages  0, unlimited, default\nmailboxes "),
        "{quota}"
    );
    let set = ok(&server, &["quota", "set", "alice", "--storage", "10M", "--messages", "100"]);
    assert!(set.starts_with("storage   0 B of 10 MiB (0 %), set for this account\n"), "{set}");
    assert!(set.contains("messages  0 of 100 (0 %), set for this account\n"), "{set}");
    let quota = ok(&server, &["quota", "set", "alice", "--storage", "default"]);
    assert!(quota.contains("storage   0 B, unlimited, default\n"), "{quota}");
    assert!(quota.contains("messages  0 of 100 (0 %), set for this account\n"), "{quota}");
    assert!(ok(&server, &["quota", "get", "support"]).starts_with("storage   0 B, unlimited, default\n"));
    refused(&server, &["quota", "set", "alice"], "give --storage, --messages or --mailboxes");
    refused(&server, &["quota", "set", "alice", "--storage", "10X"], "--storage: not a size");
    refused(&server, &["quota", "set", "alice", "--messages", "0"], "at least 1");
    refused(&server, &["quota", "get", "nobody"], "no such account: nobody");

    // Seen mode.
    assert_eq!(ok(&server, &["mailbox", "seen-mode", "support", "INBOX"]), "shared\n");
    ok(&server, &["mailbox", "seen-mode", "support", "INBOX", "private"]);
    assert_eq!(ok(&server, &["mailbox", "seen-mode", "support", "INBOX"]), "private\n");
    refused(&server, &["mailbox", "seen-mode", "support", "Nope", "shared"], "support has no mailbox");
    let bad = server.cli(&["mailbox", "seen-mode", "support", "INBOX", "half"], "");
    assert_eq!(bad.status.code(), Some(2), "a usage error");

    // A team never logs in, whatever is tried.
    let mut c = server.connect();
    c.read_line();
    c.send("a LOGIN support anything");
    let answer = c.expect_tagged("a");
    assert!(answer.last().unwrap().starts_with("a NO [AUTHENTICATIONFAILED]"), "{answer:?}");
}

/// Mail to a team's address lands in the team's INBOX; a recipient over quota is refused with
/// 452 4.2.2 (or 552 5.2.2) and nothing stored, the other recipients get theirs; `deliver`
/// exits 75 or 73.
#[test]
fn team_delivery_and_over_quota_answers() {
    let server = server_with("");
    ok(&server, &["team", "create", "support", "--address", "help@example.org"]);
    ok(&server, &["team", "add-member", "support", "alice"]);
    let mut lmtp = Lmtp::connect(server.lmtp.unwrap());
    let (rcpt, data) =
        lmtp.send_mail(&["help+billing@example.org", "support@example.org"], &message("ticket", "help!"));
    assert_eq!(rcpt, ["250 2.1.5 Ok", "550 5.1.1 <support@example.org> User unknown"]);
    assert_eq!(data, ["250 2.0.0 <help+billing@example.org> Delivered"]);
    let inbox = inbox_of(&server, "support");
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].contains("Delivered-To: help+billing@example.org\r\n"), "{}", inbox[0]);
    assert!(ok(&server, &["quota", "get", "support"]).contains("messages  1, unlimited"));

    // bob may keep one message: the second is refused at RCPT, alice's copy goes through.
    ok(&server, &["quota", "set", "bob", "--messages", "1"]);
    let (_, data) = lmtp.send_mail(&["bob@example.org"], &message("first", "fits"));
    assert_eq!(data, ["250 2.0.0 <bob@example.org> Delivered"]);
    let (rcpt, data) = lmtp.send_mail(&["bob@example.org", "alice@example.org"], &message("second", "full"));
    assert_eq!(rcpt, ["452 4.2.2 <bob@example.org> Mailbox over quota", "250 2.1.5 Ok"]);
    assert_eq!(data, ["250 2.0.0 <alice@example.org> Delivered"]);
    assert_eq!(mail(&server, "bob"), ["first"]);
    assert_eq!(mail(&server, "alice"), ["second"]);

    // A message larger than alice's whole storage quota: 552 5.2.2 after DATA.
    ok(&server, &["quota", "set", "alice", "--storage", "2K"]);
    let (rcpt, data) = lmtp.send_mail(&["alice@example.org"], &message("big", &"b".repeat(4000)));
    assert_eq!(rcpt, ["250 2.1.5 Ok"]);
    assert_eq!(data, ["552 5.2.2 <alice@example.org> Mailbox over quota"]);
    assert_eq!(mail(&server, "alice"), ["second"]);

    // `deliver` through the server: 75 (try later) for bob, 73 (for good) for the big one.
    let deliver = |config: &Path, to: &str, body: &str| {
        run_cli(config, &["deliver", "--recipient", to], &format!("Subject: piped\n\n{body}\n")).status.code()
    };
    let config = server.data_dir().parent().unwrap().join("postfach.toml");
    assert_eq!(deliver(&config, "bob@example.org", "x"), Some(75), "EX_TEMPFAIL");
    assert_eq!(deliver(&config, "alice@example.org", &"b".repeat(4000)), Some(73), "EX_CANTCREAT");
    // Without a server (no LMTP listener in this configuration), over_quota = "permanent".
    let direct = server.data_dir().parent().unwrap().join("direct.toml");
    std::fs::write(
        &direct,
        format!(
            "data_dir = {:?}\n[lmtp]\nlisten = []\n[quota]\nover_quota = \"permanent\"\n{}",
            server.data_dir().display().to_string(),
            server.store_settings(),
        ),
    )
    .unwrap();
    assert_eq!(deliver(&direct, "bob@example.org", "x"), Some(73), "EX_CANTCREAT");
    assert_eq!(deliver(&direct, "help@example.org", "for the team"), Some(0));
    assert_eq!(inbox_of(&server, "support").len(), 2);
    assert_eq!(mail(&server, "bob"), ["first"]);

    // With over_quota = "permanent", LMTP answers 552 5.2.2 at RCPT.
    drop(lmtp);
    let permanent = server_with("[quota]\nover_quota = \"permanent\"\n");
    ok(&permanent, &["quota", "set", "bob", "--messages", "1"]);
    let mut lmtp = Lmtp::connect(permanent.lmtp.unwrap());
    lmtp.send_mail(&["bob@example.org"], &message("first", "fits"));
    let (rcpt, _) = lmtp.send_mail(&["bob@example.org"], &message("second", "full"));
    assert_eq!(rcpt, ["552 5.2.2 <bob@example.org> Mailbox over quota"]);
}

/// Waits until `user`'s INBOX holds a message whose Subject is `subject`; returns the subjects.
fn wait_for_subject(server: &TestServer, user: &str, subject: &str) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let found = subjects(server, user);
        if found.iter().any(|s| s == subject) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {subject:?} within {PATIENCE:?}; INBOX has {found:?}\n{}",
            server.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Crossing 80 % of a quota by delivery brings exactly one warning into INBOX, at once;
/// crossing 90 % by IMAP APPEND one more, found by the task's poll.
#[test]
fn one_quota_warning_per_threshold_crossed() {
    const LIMIT: u64 = 20 * 1024;
    let server = server_with("[quota]\npostmaster = \"postmaster@example.org\"\n");
    ok(&server, &["quota", "set", "alice", "--storage", "20K"]);
    let mut lmtp = Lmtp::connect(server.lmtp.unwrap());
    // About 1.3 KB each (6.5 % of the quota) with the trace lines: the first to reach 80 %
    // stays below 87 %, and the warning (under 1 KB) keeps it below 90 %.
    let mut sent = 0;
    while inbox_status(&server, "alice", "SIZE") * 100 < LIMIT * 80 {
        let (_, data) =
            lmtp.send_mail(&["alice@example.org"], &message(&format!("m{sent}"), &"x".repeat(1000)));
        assert_eq!(data, ["250 2.0.0 <alice@example.org> Delivered"], "message {sent}");
        sent += 1;
        assert!(sent < 20, "the quota never filled");
    }
    let found = wait_for_subject(&server, "alice", "Your mailbox is 80 % full");
    // Deliveries nudge the warning task; give a stray second warning the time to show up.
    let (_, data) = lmtp.send_mail(&["bob@example.org"], &message("elsewhere", "x"));
    assert_eq!(data, ["250 2.0.0 <bob@example.org> Delivered"]);
    std::thread::sleep(Duration::from_secs(1));
    let found_again = subjects(&server, "alice");
    for subjects in [&found, &found_again] {
        let warnings: Vec<&String> = subjects.iter().filter(|s| s.ends_with("% full")).collect();
        assert_eq!(warnings, ["Your mailbox is 80 % full"], "{subjects:?}");
    }
    assert_eq!(found_again.len(), sent + 1);

    // The warning reads as a message from the postmaster about this mailbox.
    let mut session = imap(&server, "alice");
    session.ok("EXAMINE INBOX");
    let text = session.ok(&format!("UID FETCH {} (BODY.PEEK[])", sent + 1)).join("\n");
    for expected in [
        "From: Postmaster <postmaster@example.org>",
        "To: <alice@",
        "Subject: Your mailbox is 80 % full",
        "Date: ",
        "Message-ID: <quota-",
        "Auto-Submitted: auto-generated",
        "KiB of mail; its limit is 20 KiB.",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }

    // One APPEND to about 94 %: the poll finds the 90 % crossing (and no 100 % one).
    session.ok("UNSELECT");
    let size = inbox_status(&server, "alice", "SIZE");
    let wanted = usize::try_from(LIMIT * 94 / 100 - size).unwrap();
    let header = "From: a@example.org\r\nSubject: appended\r\n\r\n";
    session.append("INBOX", "", &format!("{header}{}\r\n", "y".repeat(wanted - header.len() - 2)));
    let found = wait_for_subject(&server, "alice", "Your mailbox is 90 % full");
    std::thread::sleep(Duration::from_secs(1));
    let warnings: Vec<String> =
        subjects(&server, "alice").into_iter().filter(|s| s.ends_with("% full")).collect();
    assert_eq!(warnings, ["Your mailbox is 80 % full", "Your mailbox is 90 % full"], "{found:?}");
}

/// A warning is stored even in a full mailbox and counts like any message, but it records no
/// threshold crossing of its own (`ShareStore::deliver_quota_warning`), so it can never cause
/// the next one: at 8 of 10 messages one 80 % warning arrives, and nothing more.
#[test]
fn a_warning_never_causes_another() {
    let server = server_with("");
    ok(&server, &["quota", "set", "alice", "--messages", "10"]);
    let mut lmtp = Lmtp::connect(server.lmtp.unwrap());
    for i in 0..8 {
        lmtp.send_mail(&["alice@example.org"], &message(&format!("m{i}"), "x"));
    }
    wait_for_subject(&server, "alice", "Your mailbox is 80 % full");
    // Longer than the task's poll: every warning there is to deliver has arrived.
    std::thread::sleep(Duration::from_secs(7));
    let warnings: Vec<String> =
        subjects(&server, "alice").into_iter().filter(|s| s.ends_with("% full")).collect();
    assert_eq!(warnings, ["Your mailbox is 80 % full"]);
    assert!(ok(&server, &["quota", "get", "alice"]).contains("messages  9 of 10 (90 %)"));
}
