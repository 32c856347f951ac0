//! Delivery against a real (temporary) SQLite store: LMTP conversations through the sans-I/O
//! session, recipient mapping, Sieve, the spam policy, subaddresses, vacation and redirect
//! through the store's outbound queue and an in-memory relay.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use postfach_delivery::outbound::Sent;
use postfach_delivery::{
    Deliverer, DeliveryConfig, DeliveryStatus, Envelope, Flow, LmtpLimits, LmtpSession, Outbox, OutgoingMail,
    OverQuotaAnswer, Protocol, RecipientError, Relay, RelayError, Sender, SenderSettings, Stores,
};
use postfach_store::{
    AccountId, AccountStore, DetailDelivery, FetchWant, MailStore, MailboxName, QueueStore, QuotaLimits,
    ShareStore, SieveStore, SqliteStore, Uid, UidSet,
};

/// Records what it is asked to send; can be told to fail (`fail`) or to refuse mail with a
/// reverse path (`refuse`).
#[derive(Default)]
struct FakeRelay {
    sent: Mutex<Vec<OutgoingMail>>,
    fail: Mutex<bool>,
    refuse: Mutex<bool>,
}

#[async_trait]
impl Relay for FakeRelay {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), RelayError> {
        if *self.fail.lock().unwrap() {
            return Err(RelayError::Unreachable("test".into()));
        }
        // Refuses mail from senders; bounces (null reverse path) still go.
        if *self.refuse.lock().unwrap() && !mail.reverse_path.is_empty() {
            return Err(RelayError::Refused("RCPT: 550 5.1.1 no such user".into()));
        }
        self.sent.lock().unwrap().push(mail.clone());
        Ok(())
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    relay: Arc<FakeRelay>,
    deliverer: Arc<Deliverer>,
    sender: Sender,
}

impl World {
    async fn new() -> World {
        Self::with(DeliveryConfig { hostname: "mx.test".into(), ..DeliveryConfig::default() }).await
    }

    async fn with(config: DeliveryConfig) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let relay = Arc::new(FakeRelay::default());
        let stores = Stores {
            mail: store.clone(),
            accounts: store.clone(),
            sieve: store.clone(),
            share: store.clone(),
        };
        let outbox = Outbox::new(store.clone(), Duration::from_secs(86_400));
        let deliverer = Arc::new(Deliverer::new(stores, config, Some(outbox)));
        let settings = SenderSettings { hostname: "mx.test".into(), ..SenderSettings::default() };
        let sender = Sender::new(store.clone(), relay.clone() as Arc<dyn Relay>, settings);
        World { _dir: dir, store, relay, deliverer, sender }
    }

    /// Sends what the queue holds that is due `later` seconds from now.
    async fn send(&self, later: i64) -> Vec<Sent> {
        self.sender.send_due(unix_now() + later).await.unwrap()
    }

    async fn user(&self, name: &str) -> AccountId {
        self.store.create_account(name, "not-a-hash").await.unwrap()
    }

    async fn script(&self, user: AccountId, text: &str) {
        postfach_sieve::compile(text).unwrap();
        self.store.put_sieve_script(user, "main", text).await.unwrap();
        self.store.activate_sieve_script(user, Some("main")).await.unwrap();
    }

    fn session(&self) -> LmtpSession {
        LmtpSession::new(
            Arc::clone(&self.deliverer),
            LmtpLimits { max_message_size: 10_000, max_recipients: 5, ..LmtpLimits::default() },
            Some("127.0.0.1".into()),
        )
    }

    /// The raw messages in a mailbox, by UID.
    async fn messages(&self, user: AccountId, mailbox: &str) -> Vec<String> {
        let Some(info) = self.store.mailbox_by_name(user, &MailboxName::new(mailbox).unwrap()).await.unwrap()
        else {
            return Vec::new();
        };
        let metas = self
            .store
            .fetch(info.id, &UidSet::from_ranges([1..=u32::MAX]), FetchWant::default())
            .await
            .unwrap();
        let mut out = Vec::new();
        for m in metas {
            out.push(String::from_utf8(self.store.body(info.id, m.uid).await.unwrap()).unwrap());
        }
        out
    }

    async fn keywords(&self, user: AccountId, mailbox: &str, uid: u32) -> (Vec<String>, u8) {
        let info =
            self.store.mailbox_by_name(user, &MailboxName::new(mailbox).unwrap()).await.unwrap().unwrap();
        let metas =
            self.store.fetch(info.id, &UidSet::from_uids(Uid::new(uid)), FetchWant::default()).await.unwrap();
        (metas[0].flags.keywords.clone(), metas[0].flags.system.0)
    }

    /// Delivers one message through `Deliverer` directly.
    async fn deliver(&self, from: &str, to: &[&str], message: &str) -> Vec<DeliveryStatus> {
        let mut rcpts = Vec::new();
        for t in to {
            rcpts.push(self.deliverer.resolve(t).await.unwrap());
        }
        let envelope =
            Envelope { reverse_path: from.into(), helo: None, peer: None, protocol: Protocol::Local };
        self.deliverer.deliver(&envelope, message.as_bytes().to_vec(), &rcpts).await
    }
}

/// Feeds the lines to the session in one chunk (pipelining) and returns its reply lines.
async fn converse(session: &mut LmtpSession, input: &str) -> (Vec<String>, Flow) {
    let mut out = Vec::new();
    let flow = session.input(input.as_bytes(), &mut out).await;
    let text = String::from_utf8(out).unwrap();
    (text.lines().map(str::to_owned).collect(), flow)
}

const SIMPLE: &str = "From: Coyote <coyote@desert.example>\r\nTo: bob@test, carol@test\r\nSubject: hello\r\nMessage-ID: <1@desert.example>\r\n\r\nbody line\r\n..leading dot\r\n";

#[tokio::test]
async fn lmtp_conversation_with_one_reply_per_recipient() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    let carol = w.user("carol").await;
    let mut s = w.session();
    assert_eq!(String::from_utf8(s.greeting()).unwrap(), "220 mx.test LMTP Postfach ready\r\n");
    // RFC 2033 §4.2's example shape: three RCPTs, one unknown, two replies after DATA.
    let (lines, _) = converse(&mut s, "LHLO mx.desert.example\r\n").await;
    assert_eq!(
        lines,
        ["250-mx.test", "250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250 SIZE 10000"]
    );
    let (lines, _) = converse(
        &mut s,
        "MAIL FROM:<coyote@desert.example> SIZE=200 BODY=8BITMIME\r\nRCPT TO:<bob@test>\r\nRCPT TO:<nobody@test>\r\nRCPT TO:<carol+x@test>\r\nDATA\r\n",
    )
    .await;
    assert_eq!(
        lines,
        [
            "250 2.1.0 Ok",
            "250 2.1.5 Ok",
            "550 5.1.1 <nobody@test> User unknown",
            "250 2.1.5 Ok",
            "354 2.0.0 Start mail input; end with <CRLF>.<CRLF>"
        ]
    );
    let (lines, _) = converse(&mut s, &format!("{SIMPLE}.\r\n")).await;
    assert_eq!(lines, ["250 2.0.0 <bob@test> Delivered", "250 2.0.0 <carol+x@test> Delivered"]);
    let (lines, flow) = converse(&mut s, "QUIT\r\n").await;
    assert_eq!(lines, ["221 2.0.0 mx.test Bye"]);
    assert_eq!(flow, Flow::Close);

    let got = w.messages(bob, "INBOX").await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert!(m.starts_with("Return-Path: <coyote@desert.example>\r\nDelivered-To: bob@test\r\nReceived: from mx.desert.example (127.0.0.1)\r\n\tby mx.test (Postfach) with LMTP id "), "{m}");
    assert!(m.ends_with(&SIMPLE.replace("..leading", ".leading")), "dot-stuffing undone: {m}");
    let got = w.messages(carol, "INBOX").await;
    assert!(got[0].contains("Delivered-To: carol+x@test\r\n"));
}

#[tokio::test]
async fn ordering_and_syntax_errors() {
    let w = World::new().await;
    w.user("bob").await;
    let mut s = w.session();
    let (lines, _) = converse(&mut s, "MAIL FROM:<a@x>\r\nEHLO x\r\nLHLO\r\nLHLO x\r\nRCPT TO:<bob@test>\r\nDATA\r\nMAIL FROM:<a@x> FOO=1\r\nMAIL FROM:<a@x>\r\nDATA\r\nRCPT TO:<nobody@test>\r\nDATA\r\nMAIL FROM:<b@x>\r\nRSET\r\nNOOP\r\nVRFY bob\r\nBDAT 10\r\n").await;
    assert_eq!(
        lines,
        [
            "503 5.5.1 Send LHLO first",
            "500 5.5.1 This is LMTP: use LHLO",
            "501 5.5.4 LHLO needs a host name",
            "250-mx.test",
            "250-PIPELINING",
            "250-ENHANCEDSTATUSCODES",
            "250-8BITMIME",
            "250 SIZE 10000",
            "503 5.5.1 Send MAIL first",
            "503 5.5.1 Send MAIL and RCPT first",
            "555 5.5.4 Unsupported parameter FOO",
            "250 2.1.0 Ok",
            // RFC 2033 §4.2: DATA without an accepted recipient fails with 503.
            "503 5.5.1 No valid recipients",
            "550 5.1.1 <nobody@test> User unknown",
            "503 5.5.1 No valid recipients",
            "503 5.5.1 Nested MAIL command",
            "250 2.0.0 Ok",
            "250 2.0.0 Ok",
            "252 2.5.2 Cannot VRFY user; send mail and LMTP will answer per recipient",
            "500 5.5.2 Command not recognized",
        ]
    );
}

#[tokio::test]
async fn limits_size_recipients_lines_errors() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    let mut s = w.session();
    converse(&mut s, "LHLO x\r\n").await;
    let (lines, _) = converse(&mut s, "MAIL FROM:<a@x> SIZE=20000\r\n").await;
    assert_eq!(lines, ["552 5.3.4 Message size exceeds the fixed maximum message size"]);
    let rcpts: String = (0..6).map(|_| "RCPT TO:<bob@test>\r\n").collect();
    let (lines, _) = converse(&mut s, &format!("MAIL FROM:<a@x>\r\n{rcpts}DATA\r\n")).await;
    assert_eq!(lines[6], "452 4.5.3 Too many recipients");
    // Too big: read to the end, then one refusal per accepted recipient; nothing stored.
    let big = format!("Subject: big\r\n\r\n{}\r\n.\r\nNOOP\r\n", "x".repeat(12_000));
    let (lines, _) = converse(&mut s, &big).await;
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(lines[..5].iter().all(|l| l.starts_with("552 5.3.4")));
    assert_eq!(lines[5], "250 2.0.0 Ok");
    assert!(w.messages(bob, "INBOX").await.is_empty());
    let (lines, _) = converse(&mut s, &format!("NOOP {}\r\nNOOP\r\n", "y".repeat(3000))).await;
    assert_eq!(lines, ["500 5.5.2 Line too long", "250 2.0.0 Ok"]);
    // An endless line is cut off without buffering it.
    let (lines, _) = converse(&mut s, &"z".repeat(5000)).await;
    assert_eq!(lines, ["500 5.5.2 Line too long"]);
    let (lines, _) = converse(&mut s, &"z".repeat(5000)).await;
    assert!(lines.is_empty());
    let (lines, _) = converse(&mut s, "zz\r\nNOOP\r\n").await;
    assert_eq!(lines, ["250 2.0.0 Ok"]);
    let junk: String = (0..30).map(|_| "WHAT\r\n").collect();
    let (lines, flow) = converse(&mut s, &junk).await;
    assert_eq!(flow, Flow::Close);
    assert_eq!(lines.last().unwrap(), "421 4.7.0 Too many errors; closing connection");
}

#[tokio::test]
async fn data_split_across_reads() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    let mut s = w.session();
    converse(&mut s, "LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<BOB@test>\r\nDATA\r\n").await;
    let body = format!("{SIMPLE}.\r\n");
    let mut replies = Vec::new();
    for chunk in body.as_bytes().chunks(7) {
        let mut out = Vec::new();
        s.input(chunk, &mut out).await;
        replies.extend(out);
    }
    assert_eq!(String::from_utf8(replies).unwrap(), "250 2.0.0 <BOB@test> Delivered\r\n");
    let got = w.messages(bob, "INBOX").await;
    assert!(got[0].starts_with("Return-Path: <>\r\n"), "{}", got[0]);
}

#[tokio::test]
async fn recipients_by_full_address_and_local_domains() {
    let w =
        World::with(DeliveryConfig { local_domains: vec!["test".into()], ..DeliveryConfig::default() }).await;
    let full = w.user("dave@example.org").await;
    let bob = w.user("bob").await;
    assert_eq!(w.deliverer.resolve("Dave+x@EXAMPLE.org").await.unwrap().account.id, full);
    assert_eq!(w.deliverer.resolve("bob@test").await.unwrap().account.id, bob);
    assert_eq!(w.deliverer.resolve("bob").await.unwrap().account.id, bob);
    // Not a local domain: the local part alone does not match.
    assert!(matches!(
        w.deliverer.resolve("bob@elsewhere").await,
        Err(postfach_delivery::RecipientError::Unknown)
    ));
    assert!(matches!(
        w.deliverer.resolve("+x@test").await,
        Err(postfach_delivery::RecipientError::BadAddress(_))
    ));
}

#[tokio::test]
async fn subaddress_folder_when_the_user_allows_it() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    w.store.create_mailbox(bob, &MailboxName::new("lists").unwrap(), None).await.unwrap();
    w.deliver("a@x", &["bob+lists@test"], SIMPLE).await;
    assert_eq!(w.messages(bob, "INBOX").await.len(), 1, "default policy: INBOX");
    w.store.set_detail_delivery(bob, DetailDelivery::Mailbox).await.unwrap();
    let st = w.deliver("a@x", &["bob+lists@test"], SIMPLE).await;
    assert_eq!(st, [DeliveryStatus::Delivered { mailboxes: vec!["lists".into()] }]);
    // A detail without a mailbox of that name goes to INBOX.
    w.deliver("a@x", &["bob+nothere@test"], SIMPLE).await;
    assert_eq!(w.messages(bob, "INBOX").await.len(), 2);
    assert_eq!(w.messages(bob, "lists").await.len(), 1);
}

const SPAM: &str = "From: spammer@x\r\nTo: bob@test\r\nSubject: buy\r\nX-Spam-Flag: YES\r\n\r\ncheap\r\n";

#[tokio::test]
async fn spam_goes_to_junk_unless_sieve_decides() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    let carol = w.user("carol").await;
    let st = w.deliver("s@x", &["bob@test"], SPAM).await;
    assert_eq!(st, [DeliveryStatus::Delivered { mailboxes: vec!["Junk".into()] }]);
    assert_eq!(w.keywords(bob, "Junk", 1).await.0, vec!["$Junk"]);
    // A script that only files other mail leaves the spam policy in charge...
    w.script(
        bob,
        "require \"fileinto\"; if header :contains \"subject\" \"report\" { fileinto \"Archive\"; }",
    )
    .await;
    w.deliver("s@x", &["bob@test"], SPAM).await;
    assert_eq!(w.messages(bob, "Junk").await.len(), 2);
    // ...one that decides explicitly wins.
    w.script(carol, "require \"spamtest\"; keep;").await;
    let st = w.deliver("s@x", &["carol@test"], SPAM).await;
    assert_eq!(st, [DeliveryStatus::Delivered { mailboxes: vec!["INBOX".into()] }]);
}

#[tokio::test]
async fn sieve_fileinto_flags_create_and_fallbacks() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    w.script(
        bob,
        r#"require ["fileinto", "imap4flags", "mailbox", "copy"];
        if header :is "subject" "hello" { fileinto :create :flags ["\\Seen", "$Label1"] "lists/new"; }
        if header :is "subject" "missing" { fileinto "does-not-exist"; }
        if header :is "subject" "both" { fileinto :copy "Archive"; }
        if header :is "subject" "bye" { discard; }"#,
    )
    .await;
    let st = w.deliver("a@x", &["bob@test"], SIMPLE).await;
    assert_eq!(st, [DeliveryStatus::Delivered { mailboxes: vec!["lists/new".into()] }]);
    let (keywords, system) = w.keywords(bob, "lists/new", 1).await;
    assert_eq!(keywords, vec!["$Label1"]);
    assert_eq!(system & 1, 1, "\\Seen");
    // RFC 5228 §4.1: a missing mailbox without :create falls back to INBOX.
    let st = w.deliver("a@x", &["bob@test"], "Subject: missing\r\n\r\nx\r\n").await;
    assert_eq!(st, [DeliveryStatus::Delivered { mailboxes: vec!["INBOX".into()] }]);
    let st = w.deliver("a@x", &["bob@test"], "Subject: both\r\n\r\nx\r\n").await;
    assert_eq!(st, [DeliveryStatus::Delivered { mailboxes: vec!["Archive".into(), "INBOX".into()] }]);
    let st = w.deliver("a@x", &["bob@test"], "Subject: bye\r\n\r\nx\r\n").await;
    assert_eq!(st, [DeliveryStatus::NotStored]);
    assert_eq!(w.messages(bob, "INBOX").await.len(), 2);
}

#[tokio::test]
async fn a_failing_script_keeps_the_message() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    // Five redirects exceed the interpreter's limit of four: a run-time error.
    w.script(bob, r#"redirect "a@x"; redirect "b@x"; redirect "c@x"; redirect "d@x"; redirect "e@x";"#).await;
    let st = w.deliver("a@x", &["bob@test"], SIMPLE).await;
    assert_eq!(st, [DeliveryStatus::Delivered { mailboxes: vec!["INBOX".into()] }]);
    assert!(w.send(0).await.is_empty(), "all actions of a failed run are dropped");
    // A stored script that does not compile (e.g. from an older version) keeps mail too.
    w.store.put_sieve_script(bob, "main", "if {").await.unwrap();
    let st = w.deliver("a@x", &["bob@test"], SIMPLE).await;
    assert_eq!(st, [DeliveryStatus::Delivered { mailboxes: vec!["INBOX".into()] }]);
}

#[tokio::test]
async fn vacation_replies_once_within_days() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    w.script(bob, r#"require "vacation"; vacation :days 7 :subject "Away" "I am away.";"#).await;
    let personal = "From: coyote@desert.example\r\nTo: bob@test\r\nSubject: hi\r\nMessage-ID: <m1@desert.example>\r\n\r\nx\r\n";
    w.deliver("coyote@desert.example", &["bob@test"], personal).await;
    w.deliver("coyote@desert.example", &["bob@test"], personal).await;
    assert_eq!(w.store.queue_length().await.unwrap(), 1, "queued once, nothing sent yet");
    assert!(w.relay.sent.lock().unwrap().is_empty());
    assert_eq!(w.send(0).await, [Sent::Accepted]);
    {
        let sent = w.relay.sent.lock().unwrap();
        assert_eq!(sent.len(), 1, "never twice within :days");
        assert_eq!(sent[0].reverse_path, "", "RFC 5230 §5.1: null reverse-path");
        assert_eq!(sent[0].recipients, vec!["coyote@desert.example"]);
        let text = String::from_utf8(sent[0].data.clone()).unwrap();
        assert!(
            text.contains("Subject: Away\r\n") && text.contains("In-Reply-To: <m1@desert.example>"),
            "{text}"
        );
        assert!(text.contains("Auto-Submitted: auto-replied"));
    }
    // Lists and bounces never get one.
    w.deliver(
        "list@lists.example",
        &["bob@test"],
        "From: list@lists.example\r\nTo: bob@test\r\nList-Id: <l.lists.example>\r\n\r\nx\r\n",
    )
    .await;
    w.deliver("", &["bob@test"], personal).await;
    assert!(w.send(0).await.is_empty());
    // A relay that is down delays the reply; it is retried, not lost, and not queued twice.
    *w.relay.fail.lock().unwrap() = true;
    let other = personal.replace("coyote@desert", "road@runner");
    w.deliver("road@runner.example", &["bob@test"], &other).await;
    assert_eq!(w.send(0).await, [Sent::Deferred]);
    *w.relay.fail.lock().unwrap() = false;
    w.deliver("road@runner.example", &["bob@test"], &other).await;
    assert!(w.send(0).await.is_empty(), "not due before the backoff");
    assert_eq!(w.send(60).await, [Sent::Accepted]);
    assert_eq!(w.relay.sent.lock().unwrap().len(), 2);
    // Past its lifetime (a day here) it is given up, without a bounce: a vacation reply has
    // the null reverse path.
    *w.relay.fail.lock().unwrap() = true;
    let third = personal.replace("coyote@desert", "wile@acme");
    w.deliver("wile@acme.example", &["bob@test"], &third).await;
    assert_eq!(w.send(0).await, [Sent::Deferred]);
    assert_eq!(w.send(2 * 86_400).await, [Sent::GaveUp { bounced: false }]);
    *w.relay.fail.lock().unwrap() = false;
    assert_eq!(w.store.queue_length().await.unwrap(), 0);
    assert_eq!(w.messages(bob, "INBOX").await.len(), 7, "vacation never stops delivery");
}

#[tokio::test]
async fn redirect_through_the_queue_or_keep() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    w.script(bob, r#"redirect "elsewhere@remote.example";"#).await;
    let st = w.deliver("a@x", &["bob@test"], SIMPLE).await;
    assert_eq!(st, [DeliveryStatus::NotStored]);
    assert_eq!(w.send(0).await, [Sent::Accepted]);
    {
        let sent = w.relay.sent.lock().unwrap();
        assert_eq!(sent[0].recipients, vec!["elsewhere@remote.example"]);
        assert_eq!(sent[0].reverse_path, "a@x");
        assert!(
            String::from_utf8_lossy(&sent[0].data)
                .starts_with("Return-Path: <a@x>\r\nDelivered-To: bob@test\r\n")
        );
    }
    // The MTA delivers the same message again (its reply timed out): nothing is queued twice.
    let st = w.deliver("a@x", &["bob@test"], SIMPLE).await;
    assert_eq!(st, [DeliveryStatus::NotStored]);
    assert!(w.send(0).await.is_empty());
    // Relay down: the redirect waits in the queue and goes once the relay is back.
    *w.relay.fail.lock().unwrap() = true;
    let second = SIMPLE.replace("hello", "second");
    assert_eq!(w.deliver("a@x", &["bob@test"], &second).await, [DeliveryStatus::NotStored]);
    assert_eq!(w.send(0).await, [Sent::Deferred]);
    *w.relay.fail.lock().unwrap() = false;
    assert_eq!(w.send(60).await, [Sent::Accepted]);
    assert_eq!(w.relay.sent.lock().unwrap().len(), 2);
    // Refused for good: the sender gets a delivery status notification (null reverse path).
    *w.relay.refuse.lock().unwrap() = true;
    let third = SIMPLE.replace("hello", "third");
    w.deliver("a@x", &["bob@test"], &third).await;
    assert_eq!(w.send(0).await, [Sent::GaveUp { bounced: true }, Sent::Accepted]);
    *w.relay.refuse.lock().unwrap() = false;
    {
        let sent = w.relay.sent.lock().unwrap();
        assert_eq!(sent.len(), 3);
        let bounce = sent.last().unwrap();
        assert_eq!((bounce.reverse_path.as_str(), bounce.recipients.clone()), ("", vec!["a@x".to_owned()]));
        let text = String::from_utf8_lossy(&bounce.data);
        assert!(text.contains("Content-Type: multipart/report; report-type=delivery-status"), "{text}");
        assert!(
            text.contains(
                "Final-Recipient: rfc822; elsewhere@remote.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            ),
            "{text}"
        );
        assert!(text.contains("Content-Type: text/rfc822-headers\r\n\r\nReturn-Path: <a@x>"), "{text}");
        assert!(text.contains("Subject: third\r\n"), "{text}");
    }
    // A message that was here before is not redirected again (loop).
    let looped = format!("Delivered-To: bob@test\r\n{}", SIMPLE.replace("hello", "looped"));
    let st = w.deliver("a@x", &["bob@test"], &looped).await;
    assert_eq!(st, [DeliveryStatus::Delivered { mailboxes: vec!["INBOX".into()] }]);
    assert!(w.send(0).await.is_empty());
}

#[tokio::test]
async fn watchers_are_woken_by_delivery() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    let inbox = w.store.mailbox_by_name(bob, &MailboxName::new("INBOX").unwrap()).await.unwrap().unwrap();
    let mut rx = w.store.notifier().watch(inbox.id);
    let deliverer = Arc::clone(&w.deliverer);
    let task = tokio::spawn(async move {
        let r = deliverer.resolve("bob@test").await.unwrap();
        let env = Envelope { reverse_path: "a@x".into(), helo: None, peer: None, protocol: Protocol::Lmtp };
        deliverer.deliver(&env, SIMPLE.as_bytes().to_vec(), &[r]).await
    });
    tokio::time::timeout(Duration::from_secs(10), rx.changed()).await.unwrap().unwrap();
    assert!(task.await.unwrap()[0].is_success());
    assert_eq!(w.store.status(inbox.id).await.unwrap().messages, 1);
}

#[tokio::test]
async fn sieve_sees_envelope_detail_and_body() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    w.script(
        bob,
        r#"require ["fileinto", "envelope", "subaddress", "body", "variables"];
        if envelope :detail "to" "shop" { fileinto "Archive"; stop; }
        if body :text :contains "Grüße" { fileinto "Drafts"; }"#,
    )
    .await;
    let st = w.deliver("a@x", &["bob+shop@test"], SIMPLE).await;
    assert_eq!(st, [DeliveryStatus::Delivered { mailboxes: vec!["Archive".into()] }]);
    let qp = "Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nViele Gr=FC=DFe\r\n";
    let st = w.deliver("a@x", &["bob@test"], qp).await;
    assert_eq!(st, [DeliveryStatus::Delivered { mailboxes: vec!["Drafts".into()] }]);
}

// --- teams and quotas ------------------------------------------------------------------------

/// A team receives mail at its delivery address (with or without a detail, in any case), never
/// by its name; the message goes to the team's INBOX through the team's own Sieve script.
#[tokio::test]
async fn teams_receive_at_their_address_through_their_own_script() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    let team = w.store.create_team("support", Some("help@test")).await.unwrap();
    w.script(
        team,
        "require \"fileinto\";\nif header :contains \"subject\" \"urgent\" { fileinto \"Archive\"; }\n",
    )
    .await;
    assert_eq!(w.deliverer.resolve("help@test").await.unwrap().account.id, team);
    assert_eq!(w.deliverer.resolve("Help+tickets@TEST").await.unwrap().account.id, team);
    // The team's name is no address; a user's name still is.
    assert!(matches!(w.deliverer.resolve("support@test").await, Err(RecipientError::Unknown)));
    assert!(matches!(w.deliverer.resolve("support").await, Err(RecipientError::Unknown)));
    assert_eq!(w.deliverer.resolve("bob@test").await.unwrap().account.id, bob);

    let mut s = w.session();
    converse(&mut s, "LHLO x\r\n").await;
    let (lines, _) =
        converse(&mut s, "MAIL FROM:<c@x>\r\nRCPT TO:<help@test>\r\nRCPT TO:<bob@test>\r\nDATA\r\n").await;
    assert_eq!(lines[1..3], ["250 2.1.5 Ok", "250 2.1.5 Ok"]);
    let (lines, _) = converse(&mut s, &format!("{SIMPLE}.\r\n")).await;
    assert_eq!(lines, ["250 2.0.0 <help@test> Delivered", "250 2.0.0 <bob@test> Delivered"]);
    let urgent = SIMPLE.replace("Subject: hello", "Subject: urgent: printer on fire");
    let st = w.deliver("c@x", &["help@test"], &urgent).await;
    assert_eq!(st, [DeliveryStatus::Delivered { mailboxes: vec!["Archive".into()] }]);

    let inbox = w.messages(team, "INBOX").await;
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].contains("Delivered-To: help@test\r\n"), "{}", inbox[0]);
    assert_eq!(w.messages(team, "Archive").await.len(), 1);
    assert_eq!(w.messages(bob, "INBOX").await.len(), 1);
}

/// A small message.
const SMALL: &str = "From: a@x\r\nSubject: s\r\n\r\nbody\r\n";

/// Over quota: refused at RCPT when the root is full already, at DATA when this message would
/// overfill it (452 4.2.2), for good when the message alone is larger than the quota
/// (552 5.2.2); nothing is stored for that recipient and the others get theirs.
#[tokio::test]
async fn over_quota_is_refused_per_recipient_with_nothing_stored() {
    let w = World::new().await;
    let bob = w.user("bob").await;
    let carol = w.user("carol").await;
    w.store.set_quota(bob, QuotaLimits { messages: Some(1), ..QuotaLimits::default() }).await.unwrap();
    w.store.set_quota(carol, QuotaLimits { storage: Some(2000), ..QuotaLimits::default() }).await.unwrap();
    let mut s = w.session();
    converse(&mut s, "LHLO x\r\n").await;

    // Both fit (carol's copy with its trace lines is well under 2000 bytes).
    let one_kb = format!("From: a@x\r\nSubject: kb\r\n\r\n{}\r\n", "k".repeat(1000));
    converse(&mut s, "MAIL FROM:<a@x>\r\nRCPT TO:<bob@test>\r\nRCPT TO:<carol@test>\r\nDATA\r\n").await;
    let (lines, _) = converse(&mut s, &format!("{one_kb}.\r\n")).await;
    assert_eq!(lines, ["250 2.0.0 <bob@test> Delivered", "250 2.0.0 <carol@test> Delivered"]);

    // bob is full (1 of 1 messages): refused at RCPT. carol has room, but not for another KB.
    let (lines, _) =
        converse(&mut s, "MAIL FROM:<a@x>\r\nRCPT TO:<bob@test>\r\nRCPT TO:<carol@test>\r\nDATA\r\n").await;
    assert_eq!(lines[1], "452 4.2.2 <bob@test> Mailbox over quota");
    assert_eq!(lines[2], "250 2.1.5 Ok");
    let (lines, _) = converse(&mut s, &format!("{one_kb}.\r\n")).await;
    assert_eq!(lines, ["452 4.2.2 <carol@test> Mailbox over quota"]);

    // Larger than carol's whole quota: no retry can help.
    let huge = format!("From: a@x\r\nSubject: huge\r\n\r\n{}\r\n", "h".repeat(3000));
    converse(&mut s, "MAIL FROM:<a@x>\r\nRCPT TO:<carol@test>\r\nDATA\r\n").await;
    let (lines, _) = converse(&mut s, &format!("{huge}.\r\n")).await;
    assert_eq!(lines, ["552 5.2.2 <carol@test> Mailbox over quota"]);

    // A small one still fits carol, and another user is never affected.
    let dave = w.user("dave").await;
    let st = w.deliver("a@x", &["bob@test", "carol@test", "dave@test"], SMALL).await;
    assert_eq!(st[0], DeliveryStatus::OverQuota(OverQuotaAnswer::Temporary));
    assert!(st[1].is_success() && st[2].is_success(), "{st:?}");
    assert_eq!(w.messages(bob, "INBOX").await.len(), 1);
    assert_eq!(w.messages(carol, "INBOX").await.len(), 2);
    assert_eq!(w.messages(dave, "INBOX").await.len(), 1);
}

/// With `over_quota = Permanent` the same refusals are 552 5.2.2, at RCPT too.
#[tokio::test]
async fn over_quota_can_be_permanent() {
    let w = World::with(DeliveryConfig {
        hostname: "mx.test".into(),
        over_quota: OverQuotaAnswer::Permanent,
        ..DeliveryConfig::default()
    })
    .await;
    let bob = w.user("bob").await;
    w.store.set_quota(bob, QuotaLimits { messages: Some(1), ..QuotaLimits::default() }).await.unwrap();
    assert!(w.deliver("a@x", &["bob@test"], SMALL).await[0].is_success());
    let mut s = w.session();
    let (lines, _) = converse(&mut s, "LHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<bob@test>\r\n").await;
    assert_eq!(lines.last().unwrap(), "552 5.2.2 <bob@test> Mailbox over quota");
    assert_eq!(
        w.deliver("a@x", &["bob@test"], SMALL).await,
        [DeliveryStatus::OverQuota(OverQuotaAnswer::Permanent)]
    );
    assert_eq!(w.messages(bob, "INBOX").await.len(), 1);
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
