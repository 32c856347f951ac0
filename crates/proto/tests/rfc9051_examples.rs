//! Every client command from RFC 9051 sections 6 and 7 must frame and parse; and no prefix,
//! mutation or random input may make the framer or parser panic.

#![allow(clippy::unwrap_used)]

use postfach_proto::*;

/// Single-line `C:` lines from RFC 9051 §6–§7 (duplicates removed).
const SINGLE_LINE: &[&str] = &[
    "abcd CAPABILITY",
    "efgh STARTTLS",
    "ijkl CAPABILITY",
    "a002 NOOP",
    "a047 NOOP",
    "A023 LOGOUT",
    "a001 CAPABILITY",
    "a002 STARTTLS",
    "a003 CAPABILITY",
    "a004 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
    "A001 AUTHENTICATE GSSAPI",
    "A01 STARTTLS",
    "A02 CAPABILITY",
    "A03 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
    "C01 CAPABILITY",
    "A01 AUTHENTICATE PLAIN",
    "A01 AUTHENTICATE EXTERNAL =",
    "a001 LOGIN SMITH SESAME",
    "t1 CAPABILITY",
    "t2 ENABLE CONDSTORE X-GOOD-IDEA",
    "t3 CAPABILITY",
    "a1 ENABLE CONDSTORE",
    "A142 SELECT INBOX",
    "A143 SELECT Drafts",
    "A932 EXAMINE blurdybloop",
    "A003 CREATE owatagusiam/",
    "A004 CREATE owatagusiam/blurdybloop",
    "A005 CREATE NonNormalized",
    "A682 LIST \"\" *",
    "A683 DELETE blurdybloop",
    "A684 DELETE foo",
    "A685 DELETE foo/bar",
    "A686 LIST \"\" *",
    "A687 DELETE foo",
    "A82 LIST \"\" *",
    "A83 DELETE blurdybloop",
    "A84 DELETE foo",
    "A85 LIST \"\" *",
    "A86 LIST \"\" %",
    "A683 RENAME blurdybloop sarasoop",
    "A684 RENAME foo zowie",
    "A685 LIST \"\" *",
    "Z432 LIST \"\" *",
    "Z433 RENAME INBOX old-mail",
    "Z434 LIST \"\" *",
    "1001 RENAME X Y",
    "1002 SUBSCRIBE Y",
    "1003 UNSUBSCRIBE X",
    "A002 SUBSCRIBE #news.comp.mail.mime",
    "A002 UNSUBSCRIBE #news.comp.mail.mime",
    "A101 LIST \"\" \"\"",
    "A102 LIST #news.comp.mail.misc \"\"",
    "A103 LIST /usr/staff/jones \"\"",
    "A202 LIST ~/Mail/ %",
    "A01 LIST \"\" \"*\"",
    "A02 LIST (SUBSCRIBED) \"\" \"*\"",
    "A03 LIST () \"\" \"%\" RETURN (CHILDREN)",
    "A04 LIST (REMOTE) \"\" \"%\" RETURN (CHILDREN)",
    "A05 LIST (REMOTE SUBSCRIBED) \"\" \"*\"",
    "A06 LIST (REMOTE) \"\" \"*\" RETURN (SUBSCRIBED)",
    "C01 LIST \"\" \"*\"",
    "CA3 LIST \"\" \"%\" RETURN (CHILDREN)",
    "C02 LIST (SUBSCRIBED) \"\" \"*\"",
    "C04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"",
    "D01 LIST \"\" \"*\"",
    "D02 LIST (SUBSCRIBED) \"\" \"*\"",
    "D03 LIST (RECURSIVEMATCH SUBSCRIBED) \"\" \"*2\"",
    "D03 LIST (RECURSIVEMATCH SUBSCRIBED) \"\" \"*\"",
    "a1 LIST \"\" (\"foo\")",
    "a2 LIST (SUBSCRIBED) \"\" \"foo/*\"",
    "a3 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" foo RETURN (CHILDREN)",
    "a1 LIST (REMOTE) \"\" *",
    "a2 LIST () \"\" %",
    "a3 LIST (REMOTE) \"\" %",
    "a3.1 LIST \"\" (% music/rock)",
    "A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))",
    "A001 NAMESPACE",
    "A002 CREATE \"INBOX.Sent Mail\"",
    "A002 LIST (SPECIAL-USE) \"\" \"*\"",
    "A003 LIST (SPECIAL-USE) \"#mh/\" \"*\"",
    "A004 CREATE \"Sent Mail\"",
    "A005 CREATE \"Delete Items\"",
    "A006 CREATE \"#mh/Deleted Items\"",
    "A002 LIST \"\" \"Other Users/%\"",
    "A002 LIST \"\" \"#Users/%\"",
    "A003 LIST \"\" \"#Users/Mike/%\"",
    "A002 LIST \"\" \"~mark/%\"",
    "A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
    "A004 COPY 2:4 meeting",
    "A005 UID COPY 305:310 meeting",
    "A006 COPY 2 funny",
    "A007 SELECT funny",
    "A001 SELECT INBOX",
    "A002 IDLE",
    "A003 FETCH 4 ALL",
    "A004 IDLE",
    "A005 FETCH 3 ALL",
    "A006 IDLE",
    "A341 CLOSE",
    "A342 UNSELECT",
    "A202 EXPUNGE",
    "A282 SEARCH RETURN (MIN COUNT) FLAGGED",
    "A283 SEARCH RETURN () FLAGGED",
    "A284 SEARCH TEXT \"string not in mailbox\"",
    "A284 SEARCH RETURN (MIN) UNSEEN",
    "A285 UID SEARCH RETURN (MIN MAX) 1:5000",
    "A286 SEARCH RETURN (COUNT) DELETED",
    "A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994",
    "A283 FETCH $ (UID INTERNALDATE FLAGS BODY.PEEK[HEADER])",
    "A300 SEARCH RETURN (SAVE) SINCE 1-Jan-2004",
    "A301 UID SEARCH UID $ SMALLER 4096",
    "A301 UID SEARCH $ SMALLER 4096",
    "P282 SEARCH RETURN (SAVE) SINCE 1-Feb-1994",
    "B282 SEARCH RETURN (SAVE) SINCE 1-Feb-1994",
    "E282 SEARCH RETURN (SAVE) SINCE 28-Oct-2006",
    "E283 COPY $ \"Other Messages\"",
    "F282 SEARCH RETURN (SAVE) KEYWORD $Junk",
    "F283 COPY $ \"Junk\"",
    "F284 STORE $ +FLAGS.Silent (\\Deleted)",
    "G282 SEARCH RETURN (SAVE) KEYWORD $Junk",
    "G283 SEARCH RETURN (ALL) SINCE 28-Oct-2006",
    "H282 SEARCH RETURN (SAVE) KEYWORD $Junk",
    "H283 SEARCH RETURN (SAVE) SINCE 28-Oct-2006",
    "C282 SEARCH RETURN (ALL) SINCE 12-Feb-2006",
    "C283 SEARCH RETURN (ALL SAVE) SINCE 12-Feb-2006",
    "C284 SEARCH RETURN (SAVE MIN) SINCE 12-Feb-2006",
    "A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
    "A003 STORE 2:4 +FLAGS (\\Deleted)",
    "A003 COPY 2:4 MEETING",
    "a UID MOVE 42:69 foo",
    "A003 UID EXPUNGE 3000:3002",
    "A999 UID FETCH 4827313:4828442 FLAGS",
    "a441 CAPABILITY",
    "o356 RENAME this that",
    "b LOGIN \"fred\" \"foo\"",
    "c1 AUTHENTICATE PLAIN",
    "c2 AUTHENTICATE PLAIN",
    "l create \"///////\"",
    "k1 select \"/archive/projects/experiment-iv\"",
    "k2 status \"/archive/projects/experiment-iv\" (messages)",
    "e login \"fred\" \"foo\"",
    "i select \"/archive/projects/experiment-iv\"",
    "d login \"fred\" \"foo\"",
    "h search from maria@example.com",
    "m356 DELETE Notes",
    "g delete \"/archive/projects/experiment-iv\"",
    "m STORE 42 FLAGS f1 f2 f3 f4 f5 ... f250",
    "p RENAME this that",
    "f select \"/archive/projects/experiment-iv\"",
    "n1 uid copy 1:* oldmail",
    "n2 uid copy 1:* oldmail",
    "d select inbox",
    "j select \"/archive/projects/experiment-iv\"",
    "a LOGIN \"fred\" \"foo\"",
    "A001 LOGIN fred blurdybloop",
    "A222 COPY 1:2 owatagusiam",
    "A223 COPY 3:200 blurdybloop",
    "A443 EXPUNGE",
    // Commands the RFC wraps over two lines, joined.
    "C04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)",
    "A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (STATUS (MESSAGES))",
    "C285 SEARCH RETURN (MAX SAVE MIN) SINCE 12-Feb-2006 NOT FROM \"Smith\"",
    "C286 SEARCH RETURN (MAX SAVE MIN COUNT) SINCE 12-Feb-2006 NOT FROM \"Smith\"",
    "C286 SEARCH RETURN (ALL SAVE MIN) SINCE 12-Feb-2006 NOT FROM \"Smith\"",
];

const APPEND_BODY: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu.example\r\n\
Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

/// The RFC's commands that carry literals, as the client sends them (CRLF included).
fn literal_commands() -> Vec<Vec<u8>> {
    let mut v = vec![
        format!("A003 APPEND saved-messages (\\Seen) {{{}}}\r\n{}\r\n", APPEND_BODY.len(), APPEND_BODY)
            .into_bytes(),
        format!("A003 APPEND saved-messages (\\Seen) {{{}+}}\r\n{}\r\n", APPEND_BODY.len(), APPEND_BODY)
            .into_bytes(),
        "A285 SEARCH CHARSET UTF-8 TEXT {12}\r\n\u{043e}\u{0442}\u{043f}\u{0443}\u{0441}\u{043a}\r\n"
            .as_bytes()
            .to_vec(),
        "P283 SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8+}\r\n\u{043c}\u{0430}\u{0442}\u{044c}\r\n"
            .as_bytes()
            .to_vec(),
        b"B283 SEARCH RETURN (SAVE) CHARSET KOI8-R (OR $ 1,3000:3021) TEXT {4}\r\nXXXX\r\n".to_vec(),
        b"A001 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man\r\n".to_vec(),
    ];
    // RFC 9051 §7.6 also shows `A044 BLURDYBLOOP {102856}`: an unknown command with a
    // literal; it is rejected below with its tag.
    let mut big = b"A044 BLURDYBLOOP {10}\r\n".to_vec();
    big.extend_from_slice(b"0123456789\r\n");
    v.push(big);
    v
}

/// Frames `input` byte by byte and parses every command.
fn frame_and_parse(input: &[u8]) -> Vec<Result<Command, ParseError>> {
    let mut f = Framer::new(FramingLimits::default());
    let mut out = Vec::new();
    for b in input {
        f.push(std::slice::from_ref(b));
        while let Some(ev) = f.next() {
            match ev {
                FrameEvent::Command(c) => out.push(parse_command(&c)),
                FrameEvent::NeedContinuation | FrameEvent::LiteralAnnounced { .. } => {}
                FrameEvent::Rejected { error, .. } => panic!("rejected: {error}"),
            }
        }
    }
    out
}

#[test]
fn rfc9051_single_line_commands_parse() {
    for line in SINGLE_LINE {
        let mut input = line.as_bytes().to_vec();
        input.extend_from_slice(b"\r\n");
        let r = frame_and_parse(&input);
        assert_eq!(r.len(), 1, "{line}");
        if let Err(e) = &r[0] {
            panic!("{line}: {e}");
        }
    }
}

#[test]
fn rfc9051_literal_commands_parse() {
    let cmds = literal_commands();
    let (unknown, known) = cmds.split_last().unwrap();
    for input in known {
        let r = frame_and_parse(input);
        assert_eq!(r.len(), 1);
        let c = r[0].as_ref().unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(input)));
        if let CommandBody::Append { messages, .. } = &c.body {
            assert_eq!(messages[0].data.literal().unwrap(), APPEND_BODY.as_bytes());
        }
        if let CommandBody::Login { username, password } = &c.body {
            assert_eq!(username, b"FRED FOOBAR");
            assert_eq!(password.expose_secret(), b"fat man");
        }
    }
    let r = frame_and_parse(unknown);
    let e = r[0].as_ref().unwrap_err();
    assert_eq!(e.tag.as_ref().map(Tag::as_str), Some("A044"));
}

#[test]
fn unknown_command_is_bad_with_tag() {
    // RFC 9051 §6.5 example `A442 XPIG-LATIN`: an X-command we do not implement must
    // fail with its tag so the session can answer `A442 BAD`.
    let e = parse_command(b"A442 XPIG-LATIN").unwrap_err();
    assert_eq!(e.tag.unwrap().as_str(), "A442");
}

/// Every prefix of every valid command, and byte-level mutations of them, must return
/// Ok or Err without panicking, in the parser and in the framer.
#[test]
fn no_panic_on_prefixes_and_mutations() {
    let mut corpus: Vec<Vec<u8>> = SINGLE_LINE.iter().map(|s| s.as_bytes().to_vec()).collect();
    for c in literal_commands() {
        corpus.push(c[..c.len() - 2].to_vec());
    }
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let interesting = b"\0\r\n \"\\(){}[]<>*%$~+-.:,0123456789";
    for cmd in &corpus {
        for end in 0..=cmd.len() {
            let _ = parse_command(&cmd[..end]);
        }
        for _ in 0..40 {
            let mut m = cmd.clone();
            let pos = (next() as usize) % m.len().max(1);
            let b = interesting[(next() as usize) % interesting.len()];
            match next() % 3 {
                0 if !m.is_empty() => m[pos] = b,
                1 => m.insert(pos.min(m.len()), b),
                _ if !m.is_empty() => {
                    m.remove(pos);
                }
                _ => {}
            }
            let _ = parse_command(&m);
            let mut f = Framer::new(FramingLimits {
                max_line: 200,
                max_literal: 500,
                max_command: 1000,
                max_literals: 4,
                max_text: 1000,
                max_skip_literal: 1000,
            });
            f.push(&m);
            f.push(b"\r\n");
            while let Some(ev) = f.next() {
                if let FrameEvent::Command(c) = ev {
                    let _ = parse_command(&c);
                }
            }
        }
    }
    // Pure noise.
    for _ in 0..2000 {
        let len = (next() % 64) as usize;
        let noise: Vec<u8> = (0..len).map(|_| (next() & 0xff) as u8).collect();
        let _ = parse_command(&noise);
        let mut with_tag = b"a ".to_vec();
        with_tag.extend_from_slice(&noise);
        let _ = parse_command(&with_tag);
    }
}
