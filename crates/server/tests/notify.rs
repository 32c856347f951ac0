//! NOTIFY (RFC 5465, issue 18) against the real binary: one connection sets NOTIFY, another
//! makes the changes, and the first must hear about them without asking (between commands,
//! during IDLE) or, for what it must not hear about, see nothing up to the tagged answer of a
//! NOOP (notifications go out with a command's updates at the latest).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Answer, Client, TestServer, Wire};

const PASSWORD: &str = "notify pw";

/// How long a test waits for a notification that must come.
const WAIT: Duration = Duration::from_secs(10);

/// How long a test waits to be sure a held-back notification does not come on its own.
const QUIET: Duration = Duration::from_millis(400);

/// A logged-in connection.
struct Imap {
    client: Client,
    next: u32,
}

impl Imap {
    fn login(server: &TestServer, user: &str) -> Imap {
        let mut client = server.connect();
        client.read_line();
        client.set_timeout(WAIT);
        let mut imap = Imap { client, next: 0 };
        let answer = imap.run(&format!("LOGIN {user} \"{PASSWORD}\""));
        assert!(answer.ok(), "{answer:?}");
        imap
    }

    fn run(&mut self, command: &str) -> Answer {
        self.next += 1;
        let tag = format!("x{}", self.next);
        self.client.send(&format!("{tag} {command}"));
        self.answer(&tag)
    }

    fn ok(&mut self, command: &str) -> Answer {
        let answer = self.run(command);
        assert!(answer.ok(), "{command}: {answer:?}");
        answer
    }

    fn answer(&mut self, tag: &str) -> Answer {
        common::answer(&mut self.client, tag)
    }

    /// Reads unsolicited responses until one starts with `prefix`, without sending anything;
    /// returns those read.
    fn expect(&mut self, prefix: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = match self.client.try_read_line() {
                Ok(Some(line)) => line,
                other => panic!("no {prefix:?} within {WAIT:?} ({other:?}); got {seen:?}"),
            };
            let done = line.starts_with(prefix);
            seen.push(line);
            if done {
                return seen;
            }
        }
    }

    /// Asserts that nothing arrives unasked for a while.
    fn quiet(&mut self) {
        self.client.set_timeout(QUIET);
        let got = self.client.try_read_line();
        self.client.set_timeout(WAIT);
        assert!(!matches!(got, Ok(Some(_))), "expected silence, got {got:?}");
    }

    /// Runs NOOP: what was pending comes with it.
    fn noop(&mut self) -> Answer {
        self.ok("NOOP")
    }
}

/// A server with alice and bob; `imap` holds extra `[imap]` settings.
fn server(imap: &str) -> TestServer {
    let server = TestServer::start_with(&format!("allow_plaintext_auth = true\n{imap}"));
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    server
}

const MESSAGE: &str = "From: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n";

fn append(imap: &mut Imap, mailbox: &str) {
    imap.ok(&format!("APPEND \"{mailbox}\" {{{}+}}\r\n{MESSAGE}", MESSAGE.len()));
}

/// The number after `item` in a STATUS response.
fn item(status: &str, item: &str) -> u64 {
    let rest = status.split(&format!("{item} ")).nth(1).unwrap_or_else(|| panic!("{item} in {status}"));
    rest.split([' ', ')']).next().unwrap().parse().unwrap()
}

#[test]
fn bad_and_unsupported_events() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let caps = a.ok("CAPABILITY");
    assert!(caps.starting("* CAPABILITY")[0].split(' ').any(|c| c == "NOTIFY"), "{caps:?}");
    // RFC 5465 §5: MessageNew and MessageExpunge go together; FlagChange and AnnotationChange
    // need both; §6.1: SELECTED takes only message events, and only one of the two selected
    // filters; §8: fetch attributes only with SELECTED.
    for bad in [
        "NOTIFY SET (selected (MessageNew))",
        "NOTIFY SET (personal (MessageExpunge))",
        "NOTIFY SET (selected (FlagChange))",
        "NOTIFY SET (personal (MessageNew FlagChange))",
        "NOTIFY SET (personal (AnnotationChange MailboxName))",
        "NOTIFY SET (selected (MailboxName))",
        "NOTIFY SET (selected-delayed (MessageNew MessageExpunge SubscriptionChange))",
        "NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed (MessageNew MessageExpunge))",
        "NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
        "NOTIFY SET (personal)",
        "NOTIFY SET",
        "NOTIFY MAYBE",
    ] {
        let answer = a.run(bad);
        assert!(answer.done.starts_with("BAD"), "{bad}: {answer:?}");
    }
    // §3.1: an unknown event is NO [BADEVENT] with every supported one.
    let answer = a.run("NOTIFY SET (personal (MessageNew MessageExpunge)) (subscribed (MessageMoved))");
    assert!(answer.done.starts_with("NO [BADEVENT ("), "{answer:?}");
    for event in ["MessageNew", "MessageExpunge", "FlagChange", "MailboxName", "SubscriptionChange"] {
        assert!(answer.done.contains(event), "{answer:?}");
    }
    assert!(answer.done.contains("MailboxMetadataChange") && answer.done.contains("ServerMetadataChange"));
    // Refused commands leave NOTIFY off: nothing comes.
    let mut b = Imap::login(&server, "alice");
    append(&mut b, "INBOX");
    a.quiet();
    assert!(a.noop().starting("* STATUS").is_empty());
    // Allowed: NONE as events (§5), AnnotationChange with both message events.
    a.ok("NOTIFY SET (selected NONE) (personal (MessageNew MessageExpunge FlagChange AnnotationChange))");
    a.ok("NOTIFY NONE");
}

#[test]
fn status_indicator_and_message_events_of_other_mailboxes() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let mut b = Imap::login(&server, "alice");
    for name in ["Lists", "Lists/Lemonade", "Lists/Im2000", "misc"] {
        b.ok(&format!("CREATE {name}"));
    }
    append(&mut b, "Lists/Lemonade");
    // §3.1's example asks `(subtree Lists MessageNew)`, which §5 makes BAD (MessageNew needs
    // MessageExpunge); the test asks as §5 wants.
    let set =
        a.run("NOTIFY SET STATUS (selected (MessageNew (uid) MessageExpunge)) (subtree Lists MessageNew)");
    assert!(set.done.starts_with("BAD") && set.untagged.is_empty(), "{set:?}");
    // §3.1: STATUS for every watched mailbox before the OK, with the items §3.1 names.
    let set = a.ok("NOTIFY SET STATUS (subtree Lists (MessageNew MessageExpunge))");
    let statuses = set.starting("* STATUS");
    assert_eq!(statuses.len(), 3, "{set:?}");
    let lemonade = statuses.iter().find(|s| s.starts_with("* STATUS Lists/Lemonade ")).unwrap();
    assert_eq!(item(lemonade, "MESSAGES"), 1);
    assert_eq!(item(lemonade, "UIDNEXT"), 2);
    assert!(item(lemonade, "UIDVALIDITY") > 0);
    assert!(!set.untagged.iter().any(|l| l.contains("misc")), "{set:?}");
    // §3.1: with FlagChange the answer carries HIGHESTMODSEQ, because the server supports
    // CONDSTORE (whether or not the client enabled it), and UIDVALIDITY.
    let set = a.ok("NOTIFY SET STATUS (subtree Lists (MessageNew MessageExpunge FlagChange))");
    let lemonade = set.starting("* STATUS Lists/Lemonade ");
    assert!(item(lemonade[0], "HIGHESTMODSEQ") > 0 && item(lemonade[0], "UIDVALIDITY") > 0, "{set:?}");
    // Without STATUS: none.
    let set = a.ok("NOTIFY SET (subtree Lists (MessageNew MessageExpunge))");
    assert!(set.starting("* STATUS").is_empty(), "{set:?}");

    // §5.2: a new message elsewhere is a STATUS, unasked.
    append(&mut b, "Lists/Lemonade");
    let got = a.expect("* STATUS");
    let status = got.last().unwrap();
    assert!(status.starts_with("* STATUS Lists/Lemonade ("), "{got:?}");
    assert_eq!(item(status, "MESSAGES"), 2);
    assert_eq!(item(status, "UIDNEXT"), 3);
    // A mailbox outside the filter: nothing.
    append(&mut b, "misc");
    a.quiet();
    assert!(a.noop().starting("* STATUS").is_empty());
    // §5.3: an expunge elsewhere.
    b.ok("SELECT Lists/Lemonade");
    b.ok("STORE 1 +FLAGS (\\Deleted)");
    // A flag change alone is not watched (no FlagChange): nothing.
    a.quiet();
    b.ok("EXPUNGE");
    let got = a.expect("* STATUS");
    assert_eq!(item(got.last().unwrap(), "MESSAGES"), 1, "{got:?}");
    // NOTIFY NONE stops them.
    a.ok("NOTIFY NONE");
    append(&mut b, "Lists/Lemonade");
    a.quiet();
    assert!(a.noop().untagged.is_empty());
}

#[test]
fn flag_changes_elsewhere_with_and_without_condstore() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let mut b = Imap::login(&server, "alice");
    b.ok("CREATE box");
    append(&mut b, "box");
    b.ok("SELECT box");
    a.ok("NOTIFY SET (mailboxes box (MessageNew MessageExpunge FlagChange))");
    // §5.1 without CONDSTORE: UNSEEN shows a \Seen change.
    b.ok("STORE 1 +FLAGS (\\Seen)");
    let got = a.expect("* STATUS");
    let status = got.last().unwrap();
    assert!(status.starts_with("* STATUS box ("), "{got:?}");
    assert_eq!(item(status, "UNSEEN"), 0);
    // With CONDSTORE: HIGHESTMODSEQ and UIDVALIDITY.
    a.ok("ENABLE CONDSTORE");
    b.ok("STORE 1 +FLAGS (\\Flagged)");
    let got = a.expect("* STATUS");
    let status = got.last().unwrap();
    assert!(item(status, "HIGHESTMODSEQ") > 1 && item(status, "UIDVALIDITY") > 0, "{got:?}");
}

#[test]
fn selected_mailbox_events_with_fetch_attributes() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let mut b = Imap::login(&server, "alice");
    append(&mut b, "INBOX");
    a.ok("SELECT INBOX");
    // §3.1's example: FETCH attributes for new messages in the selected mailbox.
    a.ok("NOTIFY SET (selected (MessageNew (uid body.peek[header.fields (subject)]) MessageExpunge))");
    append(&mut b, "INBOX");
    let got = a.expect("* 2 EXISTS");
    assert_eq!(got, vec!["* 2 EXISTS"]);
    let mut fetch = a.client.read_response().folded();
    if fetch.ends_with("RECENT") {
        fetch = a.client.read_response().folded();
    }
    assert!(
        fetch.to_ascii_uppercase().starts_with("* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {"),
        "{fetch}"
    );
    assert!(fetch.contains("Subject: hi"), "{fetch}");
    // §5.3: an expunge comes at once with SELECTED.
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS (\\Deleted)");
    b.ok("EXPUNGE");
    let got = a.expect("* 1 EXPUNGE");
    assert_eq!(got.last().unwrap(), "* 1 EXPUNGE");
    // No FETCH for a message the session appended itself (§5.2).
    let own = a.ok(&format!("APPEND INBOX {{{}+}}\r\n{MESSAGE}", MESSAGE.len()));
    assert!(own.starting("* 2 FETCH").is_empty(), "{own:?}");
}

#[test]
fn selected_delayed_holds_expunges_back() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let mut b = Imap::login(&server, "alice");
    append(&mut b, "INBOX");
    append(&mut b, "INBOX");
    a.ok("SELECT INBOX");
    a.ok("NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))");
    b.ok("SELECT INBOX");
    // Flag changes and new messages may come at once.
    b.ok("STORE 2 +FLAGS (\\Flagged)");
    let got = a.expect("* 2 FETCH");
    assert!(got.last().unwrap().contains("\\Flagged"), "{got:?}");
    // §6.1.2: an expunge waits for a command that may carry it.
    b.ok("STORE 1 +FLAGS (\\Deleted)");
    a.expect("* 1 FETCH");
    b.ok("EXPUNGE");
    a.quiet();
    // FETCH by number may not carry it (RFC 9051 §7.5.1) ...
    let fetch = a.ok("FETCH 1 FLAGS");
    assert!(fetch.starting("* 1 EXPUNGE").is_empty(), "{fetch:?}");
    // ... NOOP does.
    let noop = a.noop();
    assert_eq!(noop.starting("* 1 EXPUNGE").len(), 1, "{noop:?}");
    // Without a SELECTED group: nothing of the selected mailbox comes unasked (§3.1).
    a.ok("NOTIFY SET (personal (MailboxName))");
    b.ok("STORE 1 +FLAGS (\\Seen)");
    a.quiet();
}

#[test]
fn mailbox_names_and_subscriptions() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let mut b = Imap::login(&server, "alice");
    b.ok("CREATE parent");
    a.ok("NOTIFY SET (personal (MailboxName SubscriptionChange))");
    // §5.4: created: the mailbox and its parent.
    b.ok("CREATE parent/new");
    let got = a.expect("* LIST (\\HasChildren) \"/\" parent");
    assert!(got.contains(&"* LIST (\\HasNoChildren) \"/\" parent/new".to_owned()), "{got:?}");
    // Renamed: the new name with OLDNAME.
    b.ok("RENAME parent/new parent/renamed");
    let got = a.expect("* LIST");
    assert_eq!(
        got.last().unwrap(),
        "* LIST (\\HasNoChildren) \"/\" parent/renamed (\"OLDNAME\" (\"parent/new\"))"
    );
    // §5.5: subscribed, unsubscribed.
    b.ok("SUBSCRIBE parent/renamed");
    let got = a.expect("* LIST");
    assert_eq!(got.last().unwrap(), "* LIST (\\HasNoChildren \\Subscribed) \"/\" parent/renamed");
    b.ok("UNSUBSCRIBE parent/renamed");
    let got = a.expect("* LIST");
    assert_eq!(got.last().unwrap(), "* LIST (\\HasNoChildren) \"/\" parent/renamed");
    // Deleted: \NonExistent.
    b.ok("DELETE parent/renamed");
    let got = a.expect("* LIST (\\NonExistent) \"/\" parent/renamed");
    assert_eq!(got[0], "* LIST (\\NonExistent) \"/\" parent/renamed", "{got:?}");
    // The parent is affected too (it has no children now).
    a.expect("* LIST (\\HasNoChildren) \"/\" parent");
    // §5: not the session's own changes.
    let own = a.ok("CREATE mine");
    assert!(own.untagged.is_empty(), "{own:?}");
    a.quiet();
    assert!(a.noop().untagged.is_empty());
    // Another user's mailboxes are not in the personal namespace: nothing.
    let mut bob = Imap::login(&server, "bob");
    bob.ok("CREATE bobs");
    a.quiet();
}

#[test]
fn metadata_changes() {
    let server = server("admins = [\"bob\"]");
    let mut a = Imap::login(&server, "alice");
    let mut b = Imap::login(&server, "alice");
    let mut bob = Imap::login(&server, "bob");
    b.ok("CREATE other");
    a.ok("NOTIFY SET (mailboxes INBOX (MailboxMetadataChange)) (personal (ServerMetadataChange))");
    // §5.6: the entry names, no values.
    b.ok("SETMETADATA INBOX (/shared/comment \"hello\")");
    let got = a.expect("* METADATA");
    assert_eq!(got.last().unwrap(), "* METADATA INBOX /shared/comment");
    b.ok("SETMETADATA INBOX (/private/comment NIL)");
    let got = a.expect("* METADATA");
    assert_eq!(got.last().unwrap(), "* METADATA INBOX /private/comment");
    // A mailbox not watched for it: nothing.
    b.ok("SETMETADATA other (/shared/comment \"x\")");
    a.quiet();
    // §5.7: server entries; another user's private ones are not ours to hear about.
    bob.ok("SETMETADATA \"\" (/private/comment \"1\")");
    a.quiet();
    bob.ok("SETMETADATA \"\" (/shared/comment \"maintenance\")");
    let got = a.expect("* METADATA");
    assert_eq!(got.last().unwrap(), "* METADATA \"\" /shared/comment");
    // §5: not the session's own changes.
    let own = a.ok("SETMETADATA INBOX (/shared/comment \"mine\")");
    assert!(own.untagged.is_empty(), "{own:?}");
    a.quiet();
    assert!(a.noop().untagged.is_empty());
}

#[test]
fn shared_mailboxes_follow_the_acl() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let mut bob = Imap::login(&server, "bob");
    bob.ok("CREATE box");
    bob.ok("SETACL box alice l");
    // §3.1: a named mailbox the user can list but not read: \NoAccess; then nothing.
    let set = a.ok("NOTIFY SET (mailboxes \"Other Users/bob/box\" (MessageNew MessageExpunge)) (subtree \"Other Users/bob\" (MailboxName))");
    assert_eq!(set.starting("* LIST"), vec!["* LIST (\\NoAccess) \"/\" \"Other Users/bob/box\""], "{set:?}");
    append(&mut bob, "box");
    a.quiet();
    assert!(a.noop().starting("* STATUS").is_empty());
    // A mailbox the user cannot even list does not exist for NOTIFY.
    bob.ok("CREATE hidden");
    a.quiet();
    // §5.9: once readable, it is watched.
    bob.ok("SETACL box alice lr");
    a.noop();
    append(&mut bob, "box");
    let got = a.expect("* STATUS");
    assert!(got.last().unwrap().starts_with("* STATUS \"Other Users/bob/box\" (MESSAGES 2"), "{got:?}");
    // §5.4: granting `l` counts as creation, revoking it as deletion.
    bob.ok("SETACL hidden alice l");
    let got = a.expect("* LIST");
    let list = got.last().unwrap();
    assert!(
        list.starts_with("* LIST (\\HasNoChildren") && list.ends_with("\"/\" \"Other Users/bob/hidden\""),
        "{got:?}"
    );
    bob.ok("DELETEACL hidden alice");
    let got = a.expect("* LIST");
    assert_eq!(got.last().unwrap(), "* LIST (\\NonExistent) \"/\" \"Other Users/bob/hidden\"");
}

#[test]
fn idle_carries_notifications() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let mut b = Imap::login(&server, "alice");
    b.ok("CREATE box");
    a.ok("SELECT INBOX");
    a.ok("NOTIFY SET (mailboxes box (MessageNew MessageExpunge))");
    a.client.send("i1 IDLE");
    assert!(a.client.read_line().starts_with("+ "));
    append(&mut b, "box");
    let got = a.expect("* STATUS");
    assert!(got.last().unwrap().starts_with("* STATUS box (MESSAGES 1"), "{got:?}");
    // §4: during IDLE exactly NOTIFY's events; no SELECTED group, so not the selected one's.
    append(&mut b, "INBOX");
    a.quiet();
    a.client.send("DONE");
    let done = a.answer("i1");
    assert!(done.ok(), "{done:?}");
}

#[test]
fn a_client_that_falls_behind_gets_an_overflow() {
    let server = server("notify_max_pending = 2");
    let mut a = Imap::login(&server, "alice");
    let mut b = Imap::login(&server, "alice");
    for name in ["m1", "m2", "m3", "m4"] {
        b.ok(&format!("CREATE {name}"));
    }
    a.ok("NOTIFY SET (personal (MessageNew MessageExpunge))");
    // The session is in the middle of a command (a literal on its way): nothing is sent, and
    // the changes pile up past the bound.
    a.client.send(&format!("o1 APPEND INBOX {{{}}}", MESSAGE.len()));
    assert!(a.client.read_line().starts_with("+ "));
    for name in ["m1", "m2", "m3", "m4"] {
        append(&mut b, name);
    }
    a.client.send_raw(MESSAGE.as_bytes());
    a.client.send("");
    let answer = a.answer("o1");
    assert!(answer.ok(), "{answer:?}");
    // §5.8: OK [NOTIFICATIONOVERFLOW], then as after NOTIFY NONE.
    assert_eq!(answer.starting("* OK [NOTIFICATIONOVERFLOW]").len(), 1, "{answer:?}");
    assert!(answer.starting("* STATUS").is_empty(), "{answer:?}");
    append(&mut b, "m1");
    a.quiet();
    assert!(a.noop().untagged.is_empty());
    // NOTIFY works again when asked again.
    a.ok("NOTIFY SET (personal (MessageNew MessageExpunge))");
    append(&mut b, "m2");
    a.expect("* STATUS m2");
}

#[test]
fn uidonly_sessions_get_uidfetch_and_vanished() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let mut b = Imap::login(&server, "alice");
    append(&mut b, "INBOX");
    a.ok("ENABLE UIDONLY");
    a.ok("SELECT INBOX");
    a.ok("NOTIFY SET (selected (MessageNew (FLAGS) MessageExpunge))");
    append(&mut b, "INBOX");
    a.expect("* 2 EXISTS");
    // RFC 9586 §5: no message numbers, so the MessageNew FETCH is a UIDFETCH.
    let got = a.expect("* 2 UIDFETCH");
    assert!(got.last().unwrap().contains("FLAGS ("), "{got:?}");
    b.ok("SELECT INBOX");
    b.ok("UID STORE 1 +FLAGS (\\Deleted)");
    a.expect("* 1 UIDFETCH");
    b.ok("UID EXPUNGE 1");
    a.expect("* VANISHED 1");
}

/// RFC 5465 §7: `SEARCH/SORT RETURN (UPDATE (fetch-att ...))` FETCHes a new message that joins
/// the result (after EXISTS and the ESEARCH ADDTO, as §5.2 orders it), not one that joins by a
/// flag change, not the session's own; with NOTIFY's MessageNew attributes, one FETCH per
/// message with both.
#[test]
fn updating_searches_fetch_new_matches() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let mut b = Imap::login(&server, "alice");
    let boss = "From: myboss@example.org\r\nTo: bob@example.org\r\nSubject: Re: good morning\r\n\r\nhi\r\n";
    let add = |imap: &mut Imap, message: &str| {
        imap.ok(&format!("APPEND INBOX {{{}+}}\r\n{message}", message.len()));
    };
    add(&mut b, MESSAGE);
    a.ok("SELECT INBOX");
    // §7's example (with BODY.PEEK, so that \Seen stays as it is).
    a.client.send(
        "a00 SEARCH RETURN (COUNT UPDATE (UID BODY.PEEK[HEADER.FIELDS (TO FROM SUBJECT)])) FROM \"boss\"",
    );
    let got = a.answer("a00");
    assert!(got.ok(), "{got:?}");
    assert_eq!(got.untagged, vec!["* ESEARCH (TAG \"a00\") COUNT 0"]);
    // A new matching message and a new other one: FETCH for the match only.
    add(&mut b, boss);
    add(&mut b, MESSAGE);
    let got = a.noop();
    let lines: Vec<&str> =
        got.untagged.iter().map(String::as_str).filter(|l| !l.ends_with("RECENT")).collect();
    assert_eq!(lines.len(), 3, "{got:?}");
    assert_eq!(lines[0], "* 3 EXISTS");
    assert_eq!(lines[1], "* ESEARCH (TAG \"a00\") ADDTO (0 2)");
    assert!(lines[2].starts_with("* 2 FETCH (UID 2 BODY[HEADER.FIELDS (TO FROM SUBJECT)] {"), "{}", lines[2]);
    assert!(lines[2].contains("From: myboss@example.org") && lines[2].contains("Subject: Re: good morning"));
    // The message stays unseen (BODY.PEEK).
    let flags = a.ok("FETCH 2 FLAGS");
    assert!(!flags.untagged[0].contains("\\Seen"), "{flags:?}");

    // A message that joins by a flag change gets its ADDTO, and no FETCH of the search's items.
    a.client.send("f1 UID SEARCH RETURN (UPDATE (ENVELOPE)) FLAGGED");
    assert!(a.answer("f1").ok());
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS (\\Flagged)");
    let got = a.noop();
    assert!(got.untagged.iter().any(|l| l == "* ESEARCH (TAG \"f1\") UID ADDTO (0 1)"), "{got:?}");
    assert!(got.untagged.iter().all(|l| !l.contains("ENVELOPE")), "{got:?}");
    a.ok("CANCELUPDATE \"f1\"");

    // The session's own APPEND: ADDTO, no FETCH (§5.2).
    let own = a.ok(&format!("APPEND INBOX {{{}+}}\r\n{boss}", boss.len()));
    assert!(own.untagged.iter().any(|l| l == "* ESEARCH (TAG \"a00\") ADDTO (0 4)"), "{own:?}");
    assert!(own.starting("* 4 FETCH").is_empty(), "{own:?}");

    // With NOTIFY's MessageNew attributes too: one FETCH per new message, the match with both.
    a.ok("NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge))");
    a.client.send("s1 UID SORT RETURN (UPDATE (UID ENVELOPE)) (SUBJECT) UTF-8 FROM \"boss\"");
    assert!(a.answer("s1").ok());
    add(&mut b, boss);
    add(&mut b, MESSAGE);
    // NOTIFY sends them unasked, each message with its own sync (raw lines: the literal of
    // the header fields is split over several).
    let seen = a.expect("* 6 FETCH");
    let fetches: Vec<&String> = seen.iter().filter(|l| l.contains(" FETCH (")).collect();
    assert_eq!(fetches.len(), 2, "{seen:?}");
    // (Which session holds \Recent depends on which selected first; the flags are not checked.)
    assert!(fetches[0].starts_with("* 5 FETCH (UID 5 FLAGS ("), "{seen:?}");
    assert!(fetches[0].contains(") BODY[HEADER.FIELDS (TO FROM SUBJECT)] {"), "{seen:?}");
    assert!(fetches[1].starts_with("* 6 FETCH (UID 6 FLAGS (") && fetches[1].ends_with("))"), "{seen:?}");
    assert!(!fetches[1].contains("BODY") && !fetches[1].contains("ENVELOPE"), "{seen:?}");
    let text = seen.join("\n");
    let at = |p: &str| text.find(p).unwrap_or_else(|| panic!("{p}: {seen:?}"));
    // The SORT's ENVELOPE is in the same FETCH as NOTIFY's and the SEARCH's items.
    assert!(at(" ENVELOPE (NIL \"Re: good morning\"") < at("* 6 EXISTS"), "{seen:?}");
    assert!(at("* 5 EXISTS") < at("* ESEARCH (TAG \"s1\") UID ADDTO (3 5)"), "{seen:?}");
    assert!(at("* ESEARCH (TAG \"a00\") ADDTO (0 5)") < at("* 5 FETCH"), "{seen:?}");
    assert!(at("* ESEARCH (TAG \"s1\") UID ADDTO (3 5)") < at("* 5 FETCH"), "{seen:?}");
    a.noop();

    // ESEARCH (RFC 7377) takes no fetch attributes after UPDATE: §7 extends SEARCH and SORT.
    assert!(a.run("ESEARCH IN (selected) RETURN (UPDATE (UID)) ALL").done.starts_with("BAD"));
}
