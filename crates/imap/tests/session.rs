//! Session transcripts against a real SQLite store in a temporary directory, no sockets.
//!
//! Each test drives one or more `Session`s with complete command bytes (literals inline, as the
//! framer delivers them) and checks the responses line by line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use postfach_imap::{Out, Outcome, ServerContext, Transport};

use common::Client;

struct Harness {
    ctx: Arc<ServerContext>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        let (dir, ctx) = common::context(1024 * 1024).await;
        Harness { ctx, _dir: dir }
    }

    fn client(&self, transport: Transport) -> Client {
        Client::new(&self.ctx, transport)
    }

    async fn logged_in(&self) -> Client {
        Client::logged_in(&self.ctx).await
    }
}

impl Client {
    /// APPENDs `msg` to `mailbox` with a synchronising literal (inline, as the framer delivers
    /// it).
    async fn append(&mut self, tag: &str, mailbox: &str, msg: &str) -> Vec<String> {
        self.raw(format!("{tag} APPEND {mailbox} {{{}}}\r\n{msg}", msg.len()).into_bytes()).await
    }
}

fn message(n: usize) -> String {
    format!(
        "From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: note {n}\r\n\
         Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <{n}@example.org>\r\n\r\nbody number {n}\r\n"
    )
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[tokio::test]
async fn login_is_refused_on_cleartext_and_accepted_on_tls() {
    let h = Harness::new().await;
    let mut plain = h.client(Transport::Plain);
    let caps = plain.cmd("c CAPABILITY").await;
    assert!(has(&caps, "LOGINDISABLED") && has(&caps, "STARTTLS"), "{caps:?}");
    let r = plain.cmd("a LOGIN alice secret").await;
    assert_eq!(r, vec!["a NO [PRIVACYREQUIRED] Use TLS (STARTTLS or port 993) before logging in"]);
    let (r, outcome) = plain.handle(b"s STARTTLS".to_vec()).await;
    assert_eq!(outcome, Outcome::StartTls);
    assert_eq!(r, vec!["s OK Begin TLS negotiation now"]);
    plain.session.tls_started();
    let r = plain.cmd("b LOGIN alice wrong").await;
    assert_eq!(r, vec!["b NO [AUTHENTICATIONFAILED] Authentication failed"]);
    let r = plain.cmd("c LOGIN alice secret").await;
    assert!(r[0].starts_with("c OK [CAPABILITY") && r[0].contains("UIDPLUS"), "{r:?}");
    let r = plain.cmd("d STARTTLS").await;
    assert!(r[0].starts_with("d BAD"), "{r:?}");
}

#[tokio::test]
async fn authenticate_plain_with_and_without_initial_response() {
    let h = Harness::new().await;
    let mut c = h.client(Transport::Tls);
    // "\0alice\0secret"
    let r = c.cmd("a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==").await;
    assert!(r[0].starts_with("a OK"), "{r:?}");

    let mut c = h.client(Transport::Tls);
    let (r, outcome) = c.handle(b"b AUTHENTICATE PLAIN".to_vec()).await;
    assert_eq!(outcome, Outcome::AuthContinue);
    assert_eq!(r, vec!["+ "]);
    let mut out = Out::new();
    c.session.auth_line(postfach_secret::Secret::from(b"AGFsaWNlAHNlY3JldA==".to_vec()), &mut out).await;
    let text = String::from_utf8(out.take()).unwrap();
    assert!(text.starts_with("b OK"), "{text}");
    assert!(c.session.is_authenticated());
}

#[tokio::test]
async fn commands_illegal_in_state_get_bad() {
    let h = Harness::new().await;
    let mut c = h.client(Transport::Tls);
    assert!(c.cmd("a FETCH 1 FLAGS").await[0].starts_with("a BAD"));
    assert!(c.cmd("b SELECT INBOX").await[0].starts_with("b BAD"));
    let mut c = h.logged_in().await;
    assert!(c.cmd("c FETCH 1 FLAGS").await[0].starts_with("c BAD"));
    assert!(c.cmd("d EXPUNGE").await[0].starts_with("d BAD"));
    assert!(c.cmd("e NOSUCHCOMMAND").await[0].starts_with("e BAD"));
    assert!(c.cmd("f LOGIN a b").await[0].starts_with("f BAD"));
}

#[tokio::test]
async fn append_select_fetch_store_search_expunge() {
    let h = Harness::new().await;
    let mut c = h.logged_in().await;
    for n in 1..=3 {
        let r = c.append(&format!("a{n}"), "INBOX", &message(n)).await;
        assert!(r[0].starts_with(&format!("a{n} OK [APPENDUID ")), "{r:?}");
        assert!(r[0].contains(&format!(" {n}] ")), "{r:?}");
    }
    let r = c.cmd("s SELECT INBOX").await;
    assert!(has(&r, "* 3 EXISTS"), "{r:?}");
    assert!(has(&r, "* 3 RECENT"), "{r:?}");
    assert!(has(&r, "[UIDNEXT 4]"), "{r:?}");
    assert!(has(&r, "[UNSEEN 1]"), "{r:?}");
    assert!(r.last().unwrap().starts_with("s OK [READ-WRITE]"), "{r:?}");

    let r = c.cmd("f FETCH 1:* (UID FLAGS RFC822.SIZE)").await;
    assert_eq!(r.len(), 4, "{r:?}");
    assert!(r[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE "), "{r:?}");

    let r = c.cmd("g FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] ENVELOPE)").await;
    assert!(r[0].contains("BODY[HEADER.FIELDS (SUBJECT)] {19}"), "{r:?}");
    assert!(has(&r, "ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800\" \"note 2\""), "{r:?}");

    let r = c.cmd("h FETCH 3 BODY[TEXT]<0.4>").await;
    assert!(r[0].ends_with("BODY[TEXT]<0> {4}"), "{r:?}");
    assert!(r[1].starts_with("body FLAGS (\\Seen"), "implicit \\Seen reported: {r:?}");

    let r = c.cmd("i STORE 1:2 +FLAGS (\\Deleted $Work)").await;
    assert!(has(&r, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)"), "{r:?}");
    assert!(has(&r, "* 1 FETCH (FLAGS (\\Deleted \\Recent $Work))"), "{r:?}");
    assert!(r.last().unwrap().starts_with("i OK"), "{r:?}");

    let r = c.cmd("j SEARCH DELETED SUBJECT \"note 2\"").await;
    assert_eq!(r[0], "* SEARCH 2");
    let r = c.cmd("k UID SEARCH RETURN (MIN MAX COUNT) NOT DELETED").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"k\") UID MIN 3 MAX 3 COUNT 1");

    let r = c.cmd("l EXPUNGE").await;
    assert_eq!(&r[..2], ["* 2 EXPUNGE", "* 1 EXPUNGE"]);
    let r = c.cmd("m FETCH 1 UID").await;
    assert_eq!(r[0], "* 1 FETCH (UID 3)");
    let r = c.cmd("n FETCH 2 UID").await;
    assert!(r[0].starts_with("n BAD"), "{r:?}");
}

#[tokio::test]
async fn second_session_sees_changes_and_expunge_waits_for_a_safe_point() {
    let h = Harness::new().await;
    let mut a = h.logged_in().await;
    let mut b = h.logged_in().await;
    a.append("x", "INBOX", &message(1)).await;
    a.append("y", "INBOX", &message(2)).await;
    a.cmd("s SELECT INBOX").await;
    let r = b.cmd("s SELECT INBOX").await;
    assert!(has(&r, "* 2 EXISTS"));

    a.append("z", "INBOX", &message(3)).await;
    let r = b.cmd("n NOOP").await;
    assert_eq!(r[0], "* 3 EXISTS", "{r:?}");

    a.cmd("f STORE 1 +FLAGS (\\Flagged)").await;
    let r = b.cmd("n NOOP").await;
    assert!(r[0].starts_with("* 1 FETCH (FLAGS (\\Flagged"), "{r:?}");

    a.cmd("d STORE 2 +FLAGS (\\Deleted)").await;
    a.cmd("e EXPUNGE").await;
    // RFC 9051 §7.5.1: not during FETCH by sequence number...
    let r = b.cmd("f FETCH 1:* FLAGS").await;
    assert!(!r.iter().any(|l| l.starts_with("* ") && l.ends_with(" EXPUNGE")), "{r:?}");
    // Sequence numbers are unchanged for b: the third message is still number 3. (The expunged
    // message's flags are gone: RFC 2180 §4.1 lets the server say so, OK [EXPUNGEISSUED].)
    assert!(has(&r, "* 3 FETCH (FLAGS ())"), "{r:?}");
    assert!(has(&r, "* OK [EXPUNGEISSUED]"), "{r:?}");
    assert!(r.last().is_some_and(|l| l.starts_with("f OK")), "{r:?}");
    // ...but at the next NOOP.
    let r = b.cmd("n NOOP").await;
    assert_eq!(r[0], "* 2 EXPUNGE", "{r:?}");
    let r = b.cmd("u UID FETCH 1:* UID").await;
    assert_eq!(&r[..2], ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"]);
}

#[tokio::test]
async fn mailbox_hierarchy_create_list_rename_delete() {
    let h = Harness::new().await;
    let mut c = h.logged_in().await;
    let r = c.cmd("l LIST \"\" \"\"").await;
    assert_eq!(r[0], "* LIST (\\Noselect) \"/\" \"\"");
    assert!(c.cmd("a CREATE Work/Projects/2026").await[0].starts_with("a OK"));
    let r = c.cmd("b LIST \"\" Work/*").await;
    assert_eq!(r[0], "* LIST (\\HasChildren) \"/\" Work/Projects");
    assert_eq!(r[1], "* LIST (\\HasNoChildren) \"/\" Work/Projects/2026");
    let r = c.cmd("c LIST \"\" %").await;
    assert!(has(&r, "* LIST (\\HasNoChildren \\Trash) \"/\" Trash"), "{r:?}");
    assert!(has(&r, "* LIST (\\HasChildren) \"/\" Work"), "{r:?}");
    assert!(r[0].contains("INBOX"), "INBOX first: {r:?}");
    let r = c.cmd("d DELETE Work").await;
    assert!(r[0].starts_with("d NO [HASCHILDREN]"), "{r:?}");
    assert!(c.cmd("e RENAME Work Job").await[0].starts_with("e OK"));
    let r = c.cmd("f LIST \"\" Job/*").await;
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(c.cmd("g CREATE Job").await[0].starts_with("g NO [ALREADYEXISTS]"));
    assert!(c.cmd("h DELETE Nope").await[0].starts_with("h NO [NONEXISTENT]"));
    let r = c.cmd("i STATUS Job (MESSAGES UIDNEXT UNSEEN SIZE)").await;
    assert_eq!(r[0], "* STATUS Job (MESSAGES 0 UIDNEXT 1 UNSEEN 0 SIZE 0)");

    // RENAME INBOX moves the messages and leaves an empty INBOX (RFC 9051 §6.3.6).
    c.append("j", "INBOX", &message(1)).await;
    assert!(c.cmd("k RENAME INBOX Old").await[0].starts_with("k OK"));
    let r = c.cmd("l STATUS INBOX (MESSAGES)").await;
    assert_eq!(r[0], "* STATUS INBOX (MESSAGES 0)");
    let r = c.cmd("m STATUS Old (MESSAGES)").await;
    assert_eq!(r[0], "* STATUS Old (MESSAGES 1)");
}

#[tokio::test]
async fn copy_and_move_report_copyuid() {
    let h = Harness::new().await;
    let mut c = h.logged_in().await;
    for n in 1..=3 {
        c.append("a", "INBOX", &message(n)).await;
    }
    c.cmd("s SELECT INBOX").await;
    let r = c.cmd("c COPY 1:2 Archive").await;
    assert!(r[0].starts_with("c OK [COPYUID "), "{r:?}");
    assert!(r[0].contains(" 1:2 1:2]"), "{r:?}");
    let r = c.cmd("m UID MOVE 2 Trash").await;
    assert!(r[0].starts_with("* OK [COPYUID ") && r[0].ends_with(" 2 1] Moved"), "{r:?}");
    assert_eq!(r[1], "* 2 EXPUNGE");
    assert!(r[2].starts_with("m OK"), "{r:?}");
    let r = c.cmd("x COPY 1 Nowhere").await;
    assert!(r[0].starts_with("x NO [TRYCREATE]"), "{r:?}");
}

#[tokio::test]
async fn rev2_search_answers_esearch_and_searchres_saves() {
    let h = Harness::new().await;
    let mut c = h.logged_in().await;
    for n in 1..=4 {
        c.append("a", "INBOX", &message(n)).await;
    }
    let r = c.cmd("e ENABLE IMAP4rev2").await;
    assert_eq!(r[0], "* ENABLED IMAP4rev2");
    let r = c.cmd("s SELECT INBOX").await;
    assert!(!has(&r, "RECENT"), "no RECENT in rev2: {r:?}");
    assert!(has(&r, "* LIST () \"/\" INBOX"), "{r:?}");
    let r = c.cmd("t SEARCH SUBJECT note").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"t\") ALL 1:4");
    let r = c.cmd("u SEARCH RETURN (SAVE) OR SUBJECT \"note 1\" SUBJECT \"note 3\"").await;
    assert!(r[0].starts_with("u OK"), "{r:?}");
    let r = c.cmd("v FETCH $ UID").await;
    assert_eq!(&r[..2], ["* 1 FETCH (UID 1)", "* 3 FETCH (UID 3)"]);
}

#[tokio::test]
async fn idle_reports_other_sessions_append() {
    let h = Harness::new().await;
    let mut a = h.logged_in().await;
    let mut b = h.logged_in().await;
    b.cmd("s SELECT INBOX").await;
    let (r, outcome) = b.handle(b"i IDLE".to_vec()).await;
    assert_eq!(outcome, Outcome::Idle);
    assert_eq!(r, vec!["+ idling"]);
    let mut watch = b.session.change_watch().expect("selected");
    a.append("x", "INBOX", &message(1)).await;
    tokio::time::timeout(std::time::Duration::from_secs(2), watch.changed()).await.unwrap().unwrap();
    let mut out = Out::new();
    b.session.idle_update(&mut out).await;
    // IMAP4rev1: the new message is recent in the session that has the mailbox selected.
    assert_eq!(String::from_utf8(out.take()).unwrap(), "* 1 EXISTS\r\n* 1 RECENT\r\n");
    b.session.idle_line(b"DONE".to_vec(), &mut out).await;
    assert_eq!(String::from_utf8(out.take()).unwrap(), "i OK IDLE terminated\r\n");
}

#[tokio::test]
async fn syntax_errors_keep_the_session_usable() {
    let h = Harness::new().await;
    let mut c = h.logged_in().await;
    let r = c.cmd("a SELECT").await;
    assert!(r[0].starts_with("a BAD"), "{r:?}");
    let r = c.cmd("\u{1}bad").await;
    assert!(r[0].starts_with("* BAD"), "{r:?}");
    let r = c.cmd("b FETCH 1:x FLAGS").await;
    assert!(r[0].starts_with("b BAD"), "{r:?}");
    assert!(c.cmd("c NOOP").await[0].starts_with("c OK"));
}

#[tokio::test]
async fn condstore_modseq_changedsince_unchangedsince() {
    let h = Harness::new().await;
    let mut c = h.logged_in().await;
    for n in 1..=3 {
        c.append("a", "INBOX", &message(n)).await;
    }
    let r = c.cmd("s SELECT INBOX (CONDSTORE)").await;
    let hms = r.iter().find(|l| l.contains("[HIGHESTMODSEQ ")).expect("HIGHESTMODSEQ on SELECT (CONDSTORE)");
    let base: u64 = hms.split("HIGHESTMODSEQ ").nth(1).unwrap().split(']').next().unwrap().parse().unwrap();
    let r = c.cmd("f FETCH 1:* (UID MODSEQ)").await;
    assert!(r[0].starts_with("* 1 FETCH (UID 1 MODSEQ ("), "{r:?}");

    let r = c.cmd("t STORE 2 +FLAGS.SILENT (\\Seen)").await;
    assert!(r[0].starts_with("* 2 FETCH (UID 2 MODSEQ ("), "silent STORE still reports MODSEQ: {r:?}");
    let r = c.cmd(&format!("u UID FETCH 1:* (FLAGS) (CHANGEDSINCE {base})")).await;
    assert_eq!(r.len(), 2, "only the changed message: {r:?}");
    assert!(r[0].starts_with("* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ ("), "{r:?}");

    let r = c.cmd(&format!("v STORE 1:2 (UNCHANGEDSINCE {base}) +FLAGS (\\Flagged)")).await;
    assert!(r.last().unwrap().starts_with("v OK [MODIFIED 2]"), "{r:?}");
    assert!(has(&r, "* 1 FETCH (FLAGS (\\Flagged \\Recent) UID 1 MODSEQ ("), "{r:?}");

    let r = c.cmd(&format!("w SEARCH MODSEQ {}", base + 1)).await;
    assert!(r[0].starts_with("* SEARCH 1 2 (MODSEQ "), "{r:?}");
    let r = c.cmd("x STATUS INBOX (HIGHESTMODSEQ)").await;
    assert!(r[0].starts_with("* STATUS INBOX (HIGHESTMODSEQ "), "{r:?}");
}

#[tokio::test]
async fn qresync_select_reports_vanished_and_changes() {
    let h = Harness::new().await;
    let mut a = h.logged_in().await;
    for n in 1..=5 {
        a.append("a", "INBOX", &message(n)).await;
    }
    let mut b = h.logged_in().await;
    assert_eq!(b.cmd("e ENABLE QRESYNC").await[0], "* ENABLED QRESYNC");
    let r = b.cmd("s SELECT INBOX").await;
    let uv = r.iter().find(|l| l.contains("[UIDVALIDITY ")).unwrap();
    let uidvalidity: u32 =
        uv.split("UIDVALIDITY ").nth(1).unwrap().split(']').next().unwrap().parse().unwrap();
    let hms = r.iter().find(|l| l.contains("[HIGHESTMODSEQ ")).unwrap();
    let modseq: u64 = hms.split("HIGHESTMODSEQ ").nth(1).unwrap().split(']').next().unwrap().parse().unwrap();
    b.cmd("l LOGOUT").await;

    // Device A changes things while B is away.
    a.cmd("s SELECT INBOX").await;
    a.cmd("t STORE 2,4 +FLAGS (\\Deleted)").await;
    a.cmd("x EXPUNGE").await;
    a.cmd("f STORE 1 +FLAGS (\\Answered)").await;

    let mut b = h.logged_in().await;
    b.cmd("e ENABLE QRESYNC").await;
    let r = b.cmd(&format!("s SELECT INBOX (QRESYNC ({uidvalidity} {modseq}))")).await;
    assert!(has(&r, "* VANISHED (EARLIER) 2,4"), "{r:?}");
    assert!(has(&r, "* 1 FETCH (UID 1 FLAGS (\\Answered) MODSEQ ("), "{r:?}");
    assert!(has(&r, "* 3 EXISTS"), "{r:?}");

    // Once QRESYNC is on, expunges are VANISHED, and EXPUNGE's OK carries HIGHESTMODSEQ.
    b.cmd("d STORE 1 +FLAGS (\\Deleted)").await;
    let r = b.cmd("x EXPUNGE").await;
    assert_eq!(r[0], "* VANISHED 1");
    assert!(r[1].starts_with("x OK [HIGHESTMODSEQ "), "{r:?}");
    let r = b.cmd(&format!("v UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")).await;
    assert!(r[0].starts_with("* VANISHED (EARLIER) 1:2,4"), "{r:?}");
}
