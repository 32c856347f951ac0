//! CATENATE (RFC 4469) against the real binary, over TLS: the examples of Appendix A, then the
//! §4 failures (BADURL for every kind of unusable URL, TOOBIG), MULTIAPPEND all or nothing,
//! URLs into a mailbox shared by ACL, URLs relative to the selected mailbox, REPLACE with
//! CATENATE (RFC 8508 §4.2), literal forms inside CATENATE, and the shared memory budget.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Answer, Imap, TestServer};

const PASSWORD: &str = "catenate pw";

/// What these tests add to the shared [`Imap`].
impl Imap {
    fn login(server: &TestServer, user: &str) -> Imap {
        Imap::login_as(server, user, PASSWORD)
    }

    /// Reads up to the completion of `tag` (a command sent by hand).
    fn answer(&mut self, tag: &str) -> Answer {
        common::answer(&mut self.client, tag)
    }

    /// APPENDs `message` to `mailbox`; its UID.
    fn append(&mut self, mailbox: &str, message: &str) -> u32 {
        let a = self.run(&format!("APPEND {mailbox} {{{}+}}\r\n{message}", message.len()));
        assert!(a.ok(), "{a:?}");
        appended_uid(&a)
    }

    /// The mailbox's UIDVALIDITY.
    fn uid_validity(&mut self, mailbox: &str) -> u32 {
        let a = self.run(&format!("STATUS {mailbox} (UIDVALIDITY)"));
        let line = &a.untagged[0];
        line.split("UIDVALIDITY ").nth(1).unwrap().trim_end_matches(')').parse().unwrap()
    }

    /// A message's bytes, read without setting `\Seen`.
    fn body(&mut self, mailbox: &str, uid: u32) -> String {
        assert!(self.run(&format!("EXAMINE {mailbox}")).ok());
        let a = self.run(&format!("UID FETCH {uid} BODY.PEEK[]"));
        assert!(self.run("UNSELECT").ok());
        let line = a.untagged.iter().find(|l| l.contains(" FETCH ")).unwrap();
        let start = line.find("}\r\n").unwrap() + 3;
        line[start..line.len() - 1].to_owned()
    }

    fn messages(&mut self, mailbox: &str) -> u32 {
        let a = self.run(&format!("STATUS {mailbox} (MESSAGES)"));
        a.untagged[0].split("MESSAGES ").nth(1).unwrap().trim_end_matches(')').parse().unwrap()
    }
}

/// The UID of `[APPENDUID v uid]`.
fn appended_uid(a: &Answer) -> u32 {
    let code = a.done.split("[APPENDUID ").nth(1).unwrap_or_else(|| panic!("no APPENDUID: {a:?}"));
    // The first of a range `a:b` (MULTIAPPEND).
    code.split([' ', ']']).nth(1).unwrap().split(':').next().unwrap().parse().unwrap()
}

fn server(imap: &str) -> TestServer {
    let server = TestServer::start_with(imap);
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    server
}

const BOUNDARY: &str = "------------030308070208000400050907";

/// The draft of RFC 4469 Appendix A (UID 20 there): multipart/mixed with a text/plain part and
/// an application/x-zip-compressed part.
fn draft() -> String {
    format!(
        "Return-Path: <bar@example.org>\r\nMessage-ID: <419399E1.6000505@example.org>\r\n\
         Date: Thu, 12 Nov 2004 16:57:05 +0000\r\nFrom: Bob Ar <bar@example.org>\r\n\
         MIME-Version: 1.0\r\nTo: foo@example.net\r\nSubject: About our holiday trip\r\n\
         Content-Type: multipart/mixed;\r\n boundary=\"{BOUNDARY}\"\r\n\r\n\
         --{BOUNDARY}\r\nContent-Type: text/plain; charset=us-ascii; format=flowed\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\nOur travel agent has sent the schedule.\r\n\r\n\
         --{BOUNDARY}\r\nContent-Type: application/x-zip-compressed; name=\"trip.zip\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nUEsDBAoAAAAAAA==\r\n\r\n--{BOUNDARY}--\r\n"
    )
}

/// RFC 4469 Appendix A, example 1: the header, part 1 (MIME header and body) of the draft and a
/// whole second message (UID 30 there) joined with literal boundaries; the literals are
/// synchronising, so each gets its continuation request.
#[test]
fn rfc4469_example_1_replaces_an_attachment() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let caps = a.run("CAPABILITY");
    assert!(caps.untagged[0].split(' ').any(|c| c == "CATENATE"), "{caps:?}");
    let draft = draft();
    let uid20 = a.append("Drafts", &draft);
    let other = "From: x@example.org\r\nSubject: attached\r\n\r\nforwarded\r\n";
    let uid30 = a.append("Drafts", other);
    let v = a.uid_validity("Drafts");
    let sep = format!("\r\n--{BOUNDARY}\r\n");
    let end = format!("\r\n--{BOUNDARY}--\r\n");

    a.client.send(&format!(
        "A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL \"/Drafts;UIDVALIDITY={v}/;UID={uid20}/;section=HEADER\" TEXT {{{}}}",
        sep.len()
    ));
    assert!(a.client.read_line().starts_with("+ "));
    a.client.send(&format!(
        "{sep} URL \"/Drafts;UIDVALIDITY={v}/;UID={uid20}/;section=1.MIME\" URL \"/Drafts;UIDVALIDITY={v}/;UID={uid20}/;section=1\" TEXT {{{}}}",
        sep.len()
    ));
    assert!(a.client.read_line().starts_with("+ "));
    a.client.send(&format!("{sep} URL \"/Drafts;UIDVALIDITY={v}/;UID={uid30}\" TEXT {{{}}}", end.len()));
    assert!(a.client.read_line().starts_with("+ "));
    a.client.send(&format!("{end})"));
    let done = a.answer("A003");
    assert!(done.ok(), "{done:?}");
    let new = appended_uid(&done);

    // The header with its blank line, part 1's MIME header and body, the other message whole.
    let header_end = draft.find("\r\n\r\n").unwrap() + 4;
    let part1_mime = "Content-Type: text/plain; charset=us-ascii; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n";
    let part1 = "Our travel agent has sent the schedule.\r\n";
    let got = a.body("Drafts", new);
    let want = format!("{}{sep}{part1_mime}{part1}{sep}{other}{end}", &draft[..header_end]);
    assert_eq!(got, want);
    // §3: the parts' messages are not marked \Seen; the new one has the flags asked for.
    assert!(a.run("EXAMINE Drafts").ok());
    let flags = a.run(&format!("UID FETCH {uid20}:{new} FLAGS"));
    assert!(!flags.untagged[0].contains("\\Seen"), "{flags:?}");
    assert!(!flags.untagged[1].contains("\\Seen"), "{flags:?}");
    assert!(flags.untagged[2].contains("\\Seen") && flags.untagged[2].contains("$MDNSent"), "{flags:?}");
}

/// RFC 4469 Appendix A, examples 2 and 3: new text and header in a literal, the draft's second
/// part kept by URL; then the old draft is marked deleted. APPENDUID names the new message.
#[test]
fn rfc4469_examples_2_and_3_edit_text_and_strip_attachments() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let draft = draft();
    let uid20 = a.append("Drafts", &draft);
    let v = a.uid_validity("Drafts");
    let head = format!(
        "From: Bob Ar <bar@example.org>\r\nTo: foo@example.net\r\nSubject: About our holiday trip\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"{BOUNDARY}\"\r\n\r\n\
         --{BOUNDARY}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nCheers,\r\nBob\r\n--{BOUNDARY}\r\n"
    );
    let end = format!("\r\n--{BOUNDARY}--\r\n");
    let done = a.run(&format!(
        "APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (TEXT {{{}+}}\r\n{head} URL \"/Drafts;UIDVALIDITY={v}/;UID={uid20}/;Section=2.MIME\" URL \"/Drafts;UIDVALIDITY={v}/;UID={uid20}/;Section=2\" TEXT {{{}+}}\r\n{end})",
        head.len(),
        end.len()
    ));
    assert!(done.ok(), "{done:?}");
    assert!(done.done.starts_with(&format!("OK [APPENDUID {v} ")), "{done:?}");
    let new = appended_uid(&done);
    let part2 = "Content-Type: application/x-zip-compressed; name=\"trip.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBAoAAAAAAA==\r\n";
    assert_eq!(a.body("Drafts", new), format!("{head}{part2}{end}"));
    assert!(a.run("SELECT Drafts").ok());
    assert!(a.run(&format!("UID STORE {uid20} +FLAGS.SILENT (\\Deleted)")).ok());

    // Example 3: the attachment replaced by a note; header and part 1 by URL.
    let note = format!(
        "\r\n--{BOUNDARY}\r\nContent-type: text/plain; charset=\"us-ascii\"\r\nContent-transfer-encoding: 7bit\r\n\r\n\
         This body part contained a Power Point presentation that was\r\ndeleted upon your request.\r\n--{BOUNDARY}--\r\n"
    );
    let sep = format!("\r\n--{BOUNDARY}\r\n");
    let done = a.run(&format!(
        "APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL \"/Drafts;UIDVALIDITY={v}/;UID={uid20}/;section=HEADER\" TEXT {{{}+}}\r\n{sep} URL \"/Drafts;UIDVALIDITY={v}/;UID={uid20}/;section=1.MIME\" URL \"/Drafts;UIDVALIDITY={v}/;UID={uid20}/;section=1\" TEXT {{{}+}}\r\n{note})",
        sep.len(),
        note.len()
    ));
    assert!(done.ok(), "{done:?}");
    let stripped = a.body("Drafts", appended_uid(&done));
    assert!(stripped.starts_with("Return-Path: <bar@example.org>\r\n"), "{stripped}");
    assert!(stripped.contains("Our travel agent") && !stripped.contains("UEsDB"), "{stripped}");
    assert!(stripped.ends_with(&note));
}

/// §4.1: every kind of URL the server cannot use is `NO [BADURL url]` naming the first such URL,
/// and nothing is stored.
#[test]
fn unusable_urls_are_badurl() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let uid = a.append("INBOX", &draft());
    let v = a.uid_validity("INBOX");
    assert!(a.run("CREATE Private").ok());
    let secret = a.append("Private", "Subject: secret\r\n\r\nfor alice only\r\n");
    let mut b = Imap::login(&server, "bob");
    // bob may see alice's Private mailbox but not read it.
    assert!(a.run("SETACL Private bob l").ok());
    let before = a.messages("INBOX");
    let cases = [
        // RFC 4469 §4.1 with a UIDVALIDITY that is not the mailbox's.
        (format!("/INBOX;UIDVALIDITY={}/;UID={uid}", v + 1), "UIDVALIDITY"),
        (format!("/INBOX;UIDVALIDITY={v}/;UID={}", uid + 100), "no such message"),
        ("/NoSuchBox/;UID=1".to_owned(), "no such mailbox"),
        (format!("/INBOX/;UID={uid}/;SECTION=9"), "no such body part"),
        (format!("/INBOX/;UID={uid}/;SECTION=1.HEADER"), "no such body part"),
        (format!("imap://alice@localhost/INBOX/;UID={uid}"), "relative"),
        (format!("/INBOX/;UID={uid};URLAUTH=authuser"), "URLFETCH"),
        ("/INBOX?SUBJECT%20x".to_owned(), "message list"),
        ("notaurl".to_owned(), "UID"),
        // A relative URL without a selected mailbox.
        (format!(";UID={uid}"), "selected mailbox"),
    ];
    for (url, why) in &cases {
        let done = a
            .run(&format!("APPEND INBOX CATENATE (TEXT {{2+}}\r\nx: URL \"{url}\" URL \"/INBOX/;UID=999\")"));
        assert!(done.done.starts_with(&format!("NO [BADURL {url}] ")), "{url}: {done:?}");
        assert!(done.done.contains(why), "{url}: {done:?}");
    }
    // bob: alice's mailbox without the read right looks like a bad URL; so does one he cannot see.
    let url = format!("/Other%20Users/alice/Private/;UID={secret}");
    let done = b.run(&format!("APPEND INBOX CATENATE (URL \"{url}\")"));
    assert!(done.done.starts_with(&format!("NO [BADURL {url}] ")), "{done:?}");
    assert!(done.done.contains("read right"), "{done:?}");
    let url = format!("/Other%20Users/alice/INBOX/;UID={uid}");
    let done = b.run(&format!("APPEND INBOX CATENATE (URL \"{url}\")"));
    assert!(
        done.done.starts_with(&format!("NO [BADURL {url}] no such mailbox"))
            || done.done.contains("no such mailbox"),
        "{done:?}"
    );
    // A `]` in a URL is percent-encoded in the code, so the response stays parsable.
    let done = a.run("APPEND INBOX CATENATE (URL \"/IN]BOX/;UID=1\")");
    assert!(done.done.starts_with("NO [BADURL /IN%5DBOX/;UID=1] "), "{done:?}");
    assert_eq!(a.messages("INBOX"), before);
    assert_eq!(b.messages("INBOX"), 0);
    // Syntax errors in the command itself stay BAD.
    let done = a.run("APPEND INBOX CATENATE ()");
    assert!(done.done.starts_with("BAD"), "{done:?}");
    let done = a.run("APPEND INBOX CATENATE (TEXT \"quoted\")");
    assert!(done.done.starts_with("BAD"), "{done:?}");
}

/// With `r` (granted by ACL) a URL into another user's mailbox works, and the message is read as
/// that user keeps it; `\Seen` of the source stays untouched.
#[test]
fn urls_into_a_mailbox_shared_by_acl() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    assert!(a.run("CREATE Team").ok());
    let uid = a.append("Team", &draft());
    assert!(a.run("SETACL Team bob lr").ok());
    let mut b = Imap::login(&server, "bob");
    let v = b.uid_validity("\"Other Users/alice/Team\"");
    let head = "Subject: fwd\r\nX-Y: z\r\n\r\n";
    let done = b.run(&format!(
        "APPEND INBOX CATENATE (TEXT {{{}+}}\r\n{head} URL \"/Other%20Users/alice/Team;UIDVALIDITY={v}/;UID={uid}/;SECTION=1\")",
        head.len()
    ));
    assert!(done.ok(), "{done:?}");
    let got = b.body("INBOX", appended_uid(&done));
    assert_eq!(got, "Subject: fwd\r\nX-Y: z\r\n\r\nOur travel agent has sent the schedule.\r\n");
    assert!(a.run("EXAMINE Team").ok());
    let flags = a.run(&format!("UID FETCH {uid} FLAGS"));
    assert!(!flags.untagged[0].contains("\\Seen"), "{flags:?}");
}

/// MULTIAPPEND (RFC 3502) with CATENATE messages is all or nothing: one bad URL in the third
/// message stores none; all good stores all, with one APPENDUID range.
#[test]
fn multiappend_with_catenate_is_all_or_nothing() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let uid = a.append("INBOX", &draft());
    let before = a.messages("INBOX");
    let good = format!("CATENATE (URL \"/INBOX/;UID={uid}/;SECTION=HEADER\" TEXT {{6+}}\r\nbody\r\n)");
    let done = a.run(&format!(
        "APPEND INBOX {{14+}}\r\nSubject: a\r\n\r\n {good} (\\Flagged) CATENATE (URL \"/INBOX/;UID={}\")",
        uid + 7
    ));
    assert!(done.done.starts_with("NO [BADURL "), "{done:?}");
    assert_eq!(a.messages("INBOX"), before);
    let done = a.run(&format!("APPEND INBOX {{14+}}\r\nSubject: a\r\n\r\n {good} (\\Flagged) {good}"));
    assert!(done.ok(), "{done:?}");
    assert_eq!(a.messages("INBOX"), before + 3);
    let first = appended_uid(&done);
    let header_end = draft().find("\r\n\r\n").unwrap() + 4;
    assert_eq!(a.body("INBOX", first + 1), format!("{}body\r\n", &draft()[..header_end]));
}

/// In the selected state a URL may be relative to the selected mailbox; REPLACE takes CATENATE
/// and a URL may name the very message it replaces (RFC 8508 §4.2 example).
#[test]
fn relative_urls_and_replace() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let first = "Subject: draft\r\n\r\nHere is the picture\r\n";
    let uid = a.append("Drafts", first);
    assert!(a.run("SELECT Drafts").ok());
    let to = "To: Mitzy <miss.mitzy@example.org>\r\n";
    let done = a.run(&format!(
        "UID REPLACE {uid} Drafts CATENATE (TEXT {{{}+}}\r\n{to} URL \"/Drafts/;UID={uid}\")",
        to.len()
    ));
    assert!(done.ok(), "{done:?}");
    let replaced = done.untagged.iter().find(|l| l.contains("APPENDUID")).unwrap();
    let new: u32 =
        replaced.split("APPENDUID ").nth(1).unwrap().split([' ', ']']).nth(1).unwrap().parse().unwrap();
    assert!(done.untagged.iter().any(|l| l.ends_with(" EXPUNGE")), "{done:?}");
    // ;UID= alone is relative to the selected mailbox.
    let done = a.run(&format!(
        "APPEND Drafts CATENATE (URL \";UID={new}/;PARTIAL=0.{}\" URL \";UID={new}/;SECTION=TEXT\")",
        to.len()
    ));
    assert!(done.ok(), "{done:?}");
    assert!(a.run("UNSELECT").ok());
    let joined = appended_uid(&done);
    assert_eq!(a.body("Drafts", new), format!("{to}{first}"));
    assert_eq!(a.body("Drafts", joined), format!("{to}Here is the picture\r\n"));
}

/// Literals inside CATENATE follow the usual rules: LITERAL+, literal8 and RFC 6855's UTF8
/// form, all in one message (the test client reads text, so no NUL here; the parser's tests
/// take NUL in literal8).
#[test]
fn literal_forms_inside_catenate() {
    let server = server("");
    let mut a = Imap::login(&server, "alice");
    let done = a.run("APPEND INBOX CATENATE (TEXT {10+}\r\nSubject: x TEXT ~{9+}\r\n\r\n\r\n\x01ab\r\n UTF8 (~{7+}\r\nK\u{fc}he\r\n))");
    assert!(done.ok(), "{done:?}");
    let got = a.body("INBOX", appended_uid(&done));
    assert_eq!(got.as_bytes(), "Subject: x\r\n\r\n\x01ab\r\nK\u{fc}he\r\n".as_bytes());
}

/// The joined size is checked against APPENDLIMIT (TOOBIG, without reading the messages when
/// their sizes tell), and what CATENATE reads and builds is counted in `literal_memory`.
#[test]
fn size_limit_and_memory_budget() {
    let server = server("max_message_size = 3000\nliteral_memory = 3000\nliteral_wait = 0");
    let mut a = Imap::login(&server, "alice");
    let big = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(1400));
    let uid = a.append("INBOX", &big);
    let url = format!("URL \"/INBOX/;UID={uid}\"");
    let done = a.run(&format!("APPEND INBOX CATENATE ({url} {url} {url})"));
    assert!(done.done.starts_with("NO [TOOBIG]"), "{done:?}");
    // 2 × 1418 fits APPENDLIMIT, but the message read plus the message built do not fit the
    // 3000 bytes of literal memory.
    let done = a.run(&format!("APPEND INBOX CATENATE ({url} {url})"));
    assert!(done.done.starts_with("NO [LIMIT]"), "{done:?}");
    // One URL alone is the message read, not copied: it fits.
    let done = a.run(&format!("APPEND INBOX CATENATE ({url})"));
    assert!(done.ok(), "{done:?}");
    // Text and a URL together over the limit: TOOBIG.
    let text = "z".repeat(1700);
    let done = a.run(&format!("APPEND INBOX CATENATE (TEXT {{1700+}}\r\n{text} {url})"));
    assert!(done.done.starts_with("NO [TOOBIG]"), "{done:?}");
    assert_eq!(a.messages("INBOX"), 2);
}
