//! URLAUTH (RFC 4467) against the real binary, over TLS: the §7 examples (joe authorises a part
//! of a message for the submission server fred, fred fetches it), then who may fetch (submit+,
//! user+, authuser; anonymous refused), tokens that do not verify, EXPIRE, RESETKEY per mailbox
//! and for all, URLs into a mailbox shared by ACL (and the ACL taken back), PARTIAL, and the
//! GENURLAUTH refusals; URLAUTH=BINARY (RFC 5524): decoded parts and their structure.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Imap, TestServer};

const PASSWORD: &str = "urlauth pw";

impl Imap {
    fn login(server: &TestServer, user: &str) -> Imap {
        Imap::login_as(server, user, PASSWORD)
    }

    fn append(&mut self, mailbox: &str, message: &str) -> u32 {
        let a = self.run(&format!("APPEND {mailbox} {{{}+}}\r\n{message}", message.len()));
        assert!(a.ok(), "{a:?}");
        let code = a.done.split("[APPENDUID ").nth(1).unwrap();
        code.split([' ', ']']).nth(1).unwrap().parse().unwrap()
    }

    /// GENURLAUTH of one rump; the authorised URL.
    fn genurlauth(&mut self, rump: &str) -> String {
        let a = self.run(&format!("GENURLAUTH \"{rump}\" INTERNAL"));
        assert!(a.ok(), "{rump}: {a:?}");
        assert_eq!(a.untagged.len(), 1, "{a:?}");
        a.untagged[0].strip_prefix("* GENURLAUTH ").unwrap().trim_matches('"').to_owned()
    }

    /// URLFETCH of one URL: its data, `None` for NIL.
    fn urlfetch(&mut self, url: &str) -> Option<String> {
        let a = self.run(&format!("URLFETCH \"{url}\""));
        assert!(a.ok(), "{a:?}");
        assert_eq!(a.untagged.len(), 1, "{a:?}");
        let rest = a.untagged[0].strip_prefix("* URLFETCH ").unwrap();
        let value = rest.split_once(' ').unwrap().1;
        if value == "NIL" {
            return None;
        }
        if let Some(at) = value.find("}\r\n") {
            return Some(value[at + 3..].to_owned());
        }
        Some(value.trim_matches('"').to_owned())
    }
}

fn server() -> TestServer {
    let server = TestServer::start_with("");
    for user in ["joe", "fred", "bob"] {
        server.add_user(user, PASSWORD);
    }
    server
}

/// A message whose part 1.2 is the text of RFC 4467's example.
const MESSAGE: &str = "From: joe@example.com\r\nSubject: quote\r\nMIME-Version: 1.0\r\n\
    Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n\
    Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\n\
    Content-Type: text/plain\r\n\r\nIf you want peace...\r\n--inner\r\n\
    Content-Type: text/plain\r\n\r\nSi vis pacem, para bellum.\r\n\r\n--inner--\r\n\r\n--outer--\r\n";

const PART: &str = "Si vis pacem, para bellum.\r\n";

#[test]
fn rfc4467_examples_and_who_may_fetch() {
    let server = server();
    let mut joe = Imap::login(&server, "joe");
    let caps = joe.run("CAPABILITY");
    assert!(caps.untagged[0].split(' ').any(|c| c == "URLAUTH"), "{caps:?}");
    let uid = joe.append("INBOX", MESSAGE);

    // §7.1: the rump comes back with `:internal:` and the token (HMAC-SHA1: 40 hex digits).
    let rump = format!("imap://joe@example.com/INBOX/;uid={uid}/;section=1.2;urlauth=submit+fred");
    let url = joe.genurlauth(&rump);
    let token = url.strip_prefix(&format!("{rump}:internal:")).unwrap();
    assert_eq!(token.len(), 40);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    // The same rump gives the same URL while the key stands.
    assert_eq!(joe.genurlauth(&rump), url);

    // §7.3: fred (the submission server's login) fetches it; nobody else does.
    let mut fred = Imap::login(&server, "fred");
    assert_eq!(fred.urlfetch(&url).as_deref(), Some(PART));
    let mut bob = Imap::login(&server, "bob");
    assert_eq!(bob.urlfetch(&url), None);
    assert_eq!(joe.urlfetch(&url), None, "submit+fred is for fred only");
    // Several URLs in one command, in order; a bad one is NIL among good ones.
    let both = fred.run(&format!("URLFETCH \"{url}\" \"{url}x\" \"{url}\""));
    assert!(both.ok());
    assert_eq!(both.untagged.len(), 1);
    assert_eq!(both.untagged[0].matches(PART).count(), 2, "{both:?}");
    assert!(
        both.untagged[0].contains(&format!("\"{url}x\" NIL"))
            || both.untagged[0].contains(&format!("{url}x NIL"))
    );

    // user+bob: bob only; authuser: any logged-in user.
    let for_bob = joe.genurlauth(&format!("imap://joe@example.com/INBOX/;uid={uid};urlauth=user+bob"));
    assert_eq!(bob.urlfetch(&for_bob).as_deref(), Some(MESSAGE));
    assert_eq!(fred.urlfetch(&for_bob), None);
    let anyone =
        joe.genurlauth(&format!("imap://joe@example.com/INBOX/;uid={uid}/;section=1.1;urlauth=authuser"));
    assert_eq!(bob.urlfetch(&anyone).as_deref(), Some("If you want peace..."));
    assert_eq!(fred.urlfetch(&anyone).as_deref(), Some("If you want peace..."));

    // A changed token, or a changed URL under the old token, does not verify.
    let forged = format!("{}0000000000", &url[..url.len() - 10]);
    assert_eq!(fred.urlfetch(&forged), None);
    let other_part = url.replace("section=1.2", "section=1.1");
    assert_eq!(fred.urlfetch(&other_part), None);
    let elevated = url.replace("urlauth=submit+fred", "urlauth=authuser");
    assert_eq!(bob.urlfetch(&elevated), None);
    // URLFETCH does not set \Seen.
    assert!(joe.run("EXAMINE INBOX").ok());
    let flags = joe.run(&format!("UID FETCH {uid} FLAGS"));
    assert!(!flags.untagged[0].contains("\\Seen"), "{flags:?}");
    assert!(joe.run("CLOSE").ok());

    // PARTIAL (RFC 5092 §3) and UIDVALIDITY in the URL.
    let status = joe.run("STATUS INBOX (UIDVALIDITY)");
    let v: u32 =
        status.untagged[0].split("UIDVALIDITY ").nth(1).unwrap().trim_end_matches(')').parse().unwrap();
    let partial = joe.genurlauth(&format!(
        "imap://joe@example.com/INBOX;UIDVALIDITY={v}/;uid={uid}/;section=1.2/;partial=0.6;urlauth=submit+fred"
    ));
    assert_eq!(fred.urlfetch(&partial).as_deref(), Some("Si vis"));
    // The message gone: NIL.
    assert!(joe.run("SELECT INBOX").ok());
    assert!(joe.run(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)")).ok());
    assert!(joe.run("EXPUNGE").ok());
    assert_eq!(fred.urlfetch(&url), None);
}

/// EXPIRE (§2.1): a URL past its time is NIL; one in the future works.
#[test]
fn expired_urls_are_nil() {
    let server = server();
    let mut joe = Imap::login(&server, "joe");
    let uid = joe.append("INBOX", MESSAGE);
    let mut fred = Imap::login(&server, "fred");
    let past = joe.genurlauth(&format!(
        "imap://joe@example.com/INBOX/;uid={uid};expire=2001-01-01T00:00:00Z;urlauth=submit+fred"
    ));
    assert_eq!(fred.urlfetch(&past), None);
    let future = joe.genurlauth(&format!(
        "imap://joe@example.com/INBOX/;uid={uid}/;section=1.2;expire=2999-12-31T23:59:59+01:00;urlauth=submit+fred"
    ));
    assert_eq!(fred.urlfetch(&future).as_deref(), Some(PART));
    // Moving the expiry keeps the token from verifying.
    let moved = future.replace("2999-12-31", "2999-12-30");
    assert_eq!(fred.urlfetch(&moved), None);
}

/// RESETKEY (§7.2): per mailbox with `[URLMECH INTERNAL]`, or all; old URLs stop working, new
/// ones get a new token.
#[test]
fn resetkey_invalidates() {
    let server = server();
    let mut joe = Imap::login(&server, "joe");
    let uid = joe.append("INBOX", MESSAGE);
    let draft = joe.append("Drafts", MESSAGE);
    let mut fred = Imap::login(&server, "fred");
    let rump = format!("imap://joe@example.com/INBOX/;uid={uid}/;section=1.2;urlauth=submit+fred");
    let inbox = joe.genurlauth(&rump);
    let drafts = joe.genurlauth(&format!("imap://joe@example.com/Drafts/;uid={draft};urlauth=submit+fred"));
    assert!(fred.urlfetch(&inbox).is_some() && fred.urlfetch(&drafts).is_some());

    let reset = joe.run("RESETKEY INBOX INTERNAL");
    assert_eq!(reset.done, "OK [URLMECH INTERNAL] RESETKEY completed");
    assert_eq!(fred.urlfetch(&inbox), None);
    assert!(fred.urlfetch(&drafts).is_some(), "other mailboxes keep their keys");
    let again = joe.genurlauth(&rump);
    assert_ne!(again, inbox);
    assert_eq!(fred.urlfetch(&again).as_deref(), Some(PART));

    let reset = joe.run("RESETKEY");
    assert!(reset.ok() && !reset.done.contains("URLMECH"), "{reset:?}");
    assert_eq!(fred.urlfetch(&again), None);
    assert_eq!(fred.urlfetch(&drafts), None);
    // Only INTERNAL exists; a mailbox that does not exist is NO.
    assert!(joe.run("RESETKEY INBOX XSAMPLE").done.starts_with("NO"));
    assert!(joe.run("RESETKEY NoSuchBox").done.starts_with("NO [NONEXISTENT]"));
    // Another user's reset does not touch joe's keys.
    let kept = joe.genurlauth(&rump);
    assert!(fred.run("RESETKEY").ok());
    assert_eq!(fred.urlfetch(&kept).as_deref(), Some(PART));
}

/// A URL into a mailbox joe reads by ACL works for fred while joe may read it, and stops when
/// the owner takes the right back; GENURLAUTH refuses what it must.
#[test]
fn shared_mailboxes_and_refusals() {
    let server = server();
    let mut bob = Imap::login(&server, "bob");
    assert!(bob.run("CREATE Project").ok());
    let uid = bob.append("Project", MESSAGE);
    assert!(bob.run("SETACL Project joe lr").ok());
    let mut joe = Imap::login(&server, "joe");
    let mut fred = Imap::login(&server, "fred");
    let url = joe.genurlauth(&format!(
        "imap://joe@example.com/Other%20Users/bob/Project/;uid={uid}/;section=1.2;urlauth=submit+fred"
    ));
    assert_eq!(fred.urlfetch(&url).as_deref(), Some(PART));
    assert!(bob.run("SETACL Project joe l").ok());
    assert_eq!(fred.urlfetch(&url), None, "joe may no longer read it");

    let inbox = joe.append("INBOX", MESSAGE);
    for (rump, why) in [
        (format!("imap://fred@example.com/INBOX/;uid={inbox};urlauth=submit+fred"), "logged-in user"),
        (format!("imap://joe@example.com/INBOX/;uid={inbox};urlauth=anonymous"), "anonymous"),
        (format!("imap://joe@example.com/INBOX/;uid={inbox}"), "URLAUTH"),
        (format!("/INBOX/;uid={inbox};urlauth=submit+fred"), "absolute"),
        (
            format!("imap://joe@example.com/Other%20Users/bob/Project/;uid={uid};urlauth=submit+fred"),
            "read right",
        ),
        ("imap://joe@example.com/Nowhere/;uid=1;urlauth=submit+fred".to_owned(), "no such mailbox"),
        (
            format!("imap://joe@example.com/INBOX;UIDVALIDITY=1/;uid={inbox};urlauth=submit+fred"),
            "UIDVALIDITY",
        ),
        (
            format!(
                "imap://joe@example.com/INBOX/;uid={inbox};urlauth=submit+fred:internal:{}",
                "0".repeat(40)
            ),
            "token",
        ),
    ] {
        let a = joe.run(&format!("GENURLAUTH \"{rump}\" INTERNAL"));
        assert!(a.done.starts_with(&format!("NO [BADURL {rump}]")), "{rump}: {a:?}");
        assert!(a.done.contains(why), "{rump}: {a:?}");
        assert!(a.untagged.is_empty(), "{a:?}");
    }
    let a = joe
        .run(&format!("GENURLAUTH \"imap://joe@example.com/INBOX/;uid={inbox};urlauth=authuser\" XSAMPLE"));
    assert!(a.done.starts_with("NO "), "{a:?}");
    // Grammar errors are BAD.
    assert!(joe.run("GENURLAUTH").done.starts_with("BAD"));
    assert!(joe.run("URLFETCH").done.starts_with("BAD"));
    // URLAUTH=BINARY's parenthesised form: BODY and BINARY together, unknown parameters.
    assert!(joe.run("URLFETCH (\"imap://joe@h/INBOX/;uid=1\" BINARY BODY)").done.starts_with("BAD"));
    assert!(joe.run("URLFETCH (\"imap://joe@h/INBOX/;uid=1\" BINARY.PEEK)").done.starts_with("BAD"));
    assert!(joe.run("URLFETCH (\"imap://joe@h/INBOX/;uid=1\" BINARY").done.starts_with("BAD"));
    // A parenthesised URL that does not verify is NIL as a whole.
    let a = joe.run("URLFETCH (\"imap://joe@h/INBOX/;uid=1\" BINARY)");
    assert_eq!(a.untagged, vec!["* URLFETCH imap://joe@h/INBOX/;uid=1 NIL"], "{a:?}");
    // URLs that are not URLAUTH URLs are NIL in URLFETCH, not errors.
    assert_eq!(fred.urlfetch(&format!("imap://joe@example.com/INBOX/;uid={inbox}")), None);
    assert_eq!(fred.urlfetch("/INBOX/;uid=1"), None);
}

/// A message for URLAUTH=BINARY: base64 text (folded), base64 octets with NUL (ASCII ones: the
/// test client reads responses as text),
/// quoted-printable UTF-8 with soft breaks, an encoding nobody knows, and a message/rfc822.
const PARTS: &str = "From: joe@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\n\
    Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
    --b1\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: base64\r\n\r\n\
    U2kgdmlzIHBh\r\nY2VtLCBwYXJhIGJlbGx1bS4NCg==\r\n\
    --b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
    AAECAw==\r\n\
    --b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
    K=C3=BCche=20\r\nund Ke=\r\nller\r\n\
    --b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-rot13\r\n\r\nUryyb\r\n\
    --b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n\
    --b1--\r\n";

/// URLAUTH=BINARY (RFC 5524): `URLFETCH (url BINARY BODYPARTSTRUCTURE)` and its combinations,
/// against the same URLs fetched plainly and with FETCH BINARY.
#[test]
fn urlauth_binary_rfc5524() {
    let server = server();
    let mut joe = Imap::login(&server, "joe");
    let caps = joe.run("CAPABILITY");
    assert!(caps.untagged[0].split(' ').any(|c| c == "URLAUTH=BINARY"), "{caps:?}");
    let uid = joe.append("INBOX", PARTS);
    let url = |joe: &mut Imap, section: &str| {
        joe.genurlauth(&format!("imap://joe@example.com/INBOX/;uid={uid}{section};urlauth=submit+fred"))
    };
    let text = url(&mut joe, "/;section=1");
    let octets = url(&mut joe, "/;section=2");
    let qp = url(&mut joe, "/;section=3");
    let rot13 = url(&mut joe, "/;section=4");
    let inner = url(&mut joe, "/;section=5");
    let header = url(&mut joe, "/;section=5.HEADER");
    let whole = url(&mut joe, "");
    let partial = url(&mut joe, "/;section=3/;partial=1.5");
    let missing = url(&mut joe, "/;section=9");

    let mut fred = Imap::login(&server, "fred");
    let fetch = |fred: &mut Imap, url: &str, params: &str| {
        let sep = if params.is_empty() { "" } else { " " };
        let a = fred.run(&format!("URLFETCH (\"{url}\"{sep}{params})"));
        assert!(a.ok(), "{a:?}");
        assert_eq!(a.untagged.len(), 1, "{a:?}");
        // The URL comes back as an atom where it can be one.
        let line = a.untagged[0].strip_prefix("* URLFETCH ").unwrap();
        let rest =
            line.strip_prefix(&format!("\"{url}\" ")).or_else(|| line.strip_prefix(&format!("{url} ")));
        rest.unwrap_or_else(|| panic!("{line}")).to_owned()
    };

    // BINARY is the decoded part, as FETCH BINARY returns it.
    assert_eq!(fetch(&mut fred, &text, "BINARY"), "(BINARY {28}\r\nSi vis pacem, para bellum.\r\n)");
    assert_eq!(fetch(&mut fred, &octets, "BINARY"), "(BINARY ~{4}\r\n\0\x01\x02\x03)");
    assert_eq!(fetch(&mut fred, &qp, "binary"), "(BINARY {19}\r\nK\u{fc}che \r\nund Keller)");
    // BODY is the part as sent (RFC 4467's data), and the plain form still answers as before.
    assert_eq!(
        fetch(&mut fred, &text, "BODY"),
        "(BODY {42}\r\nU2kgdmlzIHBh\r\nY2VtLCBwYXJhIGJlbGx1bS4NCg==)"
    );
    assert_eq!(fetch(&mut fred, &text, ""), "(BODY {42}\r\nU2kgdmlzIHBh\r\nY2VtLCBwYXJhIGJlbGx1bS4NCg==)");
    assert_eq!(fred.urlfetch(&text).as_deref(), Some("U2kgdmlzIHBh\r\nY2VtLCBwYXJhIGJlbGx1bS4NCg=="));

    // BODYPARTSTRUCTURE alone is the part's BODYSTRUCTURE; with BINARY it describes the
    // decoded data (size, lines, the encoding those octets need), and comes first.
    assert_eq!(
        fetch(&mut fred, &text, "BODYPARTSTRUCTURE"),
        "(BODYPARTSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"BASE64\" 42 1 NIL NIL NIL NIL))"
    );
    assert_eq!(
        fetch(&mut fred, &text, "BINARY BODYPARTSTRUCTURE"),
        "(BODYPARTSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 28 1 NIL NIL NIL NIL)) \
         (BINARY {28}\r\nSi vis pacem, para bellum.\r\n)"
    );
    assert_eq!(
        fetch(&mut fred, &octets, "BODYPARTSTRUCTURE BINARY"),
        "(BODYPARTSTRUCTURE (\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BINARY\" 4 NIL NIL NIL NIL)) \
         (BINARY ~{4}\r\n\0\x01\x02\x03)"
    );
    assert!(fetch(&mut fred, &qp, "BODYPARTSTRUCTURE BINARY").starts_with(
        "(BODYPARTSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"8BIT\" 19 1 "
    ));
    // With BODY the structure stays as sent.
    let got = fetch(&mut fred, &qp, "BODY BODYPARTSTRUCTURE");
    assert!(got.contains("\"QUOTED-PRINTABLE\" 28 2 "), "{got}");

    // An encoding the server cannot undo: BINARY NIL, the structure as sent.
    assert_eq!(
        fetch(&mut fred, &rot13, "BINARY BODYPARTSTRUCTURE"),
        "(BODYPARTSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"X-ROT13\" 5 0 NIL NIL NIL NIL)) (BINARY NIL)"
    );
    // A message/rfc822 part is served as sent, its structure unchanged.
    let got = fetch(&mut fred, &inner, "BINARY BODYPARTSTRUCTURE");
    assert!(got.starts_with("(BODYPARTSTRUCTURE (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 28 "), "{got}");
    assert!(got.ends_with("(BINARY {28}\r\nSubject: inner\r\n\r\ninner body)"), "{got}");
    // The whole message: its BODYSTRUCTURE, BINARY as sent.
    let got = fetch(&mut fred, &whole, "BODYPARTSTRUCTURE BINARY");
    assert!(got.starts_with("(BODYPARTSTRUCTURE ((\"TEXT\" \"PLAIN\""), "{got}");
    assert!(got.contains(" \"MIXED\" (\"BOUNDARY\" \"b1\") NIL NIL NIL)) (BINARY {"), "{got}");
    assert!(got.ends_with(&format!("{PARTS})")), "{got}");
    // A section text: BINARY is BODY's bytes; it has no part structure, so asking for one is NIL.
    assert_eq!(fetch(&mut fred, &header, "BINARY"), "(BINARY {18}\r\nSubject: inner\r\n\r\n)");
    assert_eq!(fetch(&mut fred, &header, "BINARY BODYPARTSTRUCTURE"), "NIL");
    // PARTIAL cuts the decoded data.
    assert_eq!(fetch(&mut fred, &partial, "BINARY"), "(BINARY {5}\r\n\u{fc}che)");
    // A part that does not exist is NIL; so is a URL for someone else.
    assert_eq!(fetch(&mut fred, &missing, "BINARY BODYPARTSTRUCTURE"), "NIL");
    let mut bob = Imap::login(&server, "bob");
    assert_eq!(fetch(&mut bob, &text, "BINARY"), "NIL");

    // Several URLs in one command, plain and parenthesised, answered in order.
    let a = fred.run(&format!("URLFETCH \"{text}\" (\"{octets}\" BODYPARTSTRUCTURE) \"{missing}\""));
    assert!(a.ok(), "{a:?}");
    let line = &a.untagged[0];
    let t = line.find(&text).unwrap();
    let o = line.find(&octets).unwrap();
    let m = line.find(&missing).unwrap();
    assert!(t < o && o < m, "{line}");
    assert!(line.ends_with(&format!("{missing} NIL")), "{line}");
    assert!(
        line.contains(
            "(BODYPARTSTRUCTURE (\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 8 NIL NIL NIL NIL)) "
        ),
        "{line}"
    );

    // FETCH BINARY of the same parts agrees with URLFETCH BINARY.
    assert!(joe.run("SELECT INBOX").ok());
    let f = joe.run(&format!("UID FETCH {uid} BINARY.PEEK[3]"));
    assert!(f.untagged[0].contains("{19}\r\nK\u{fc}che \r\nund Keller"), "{f:?}");
}
