//! Hand-written messages under `tests/corpus/` with their envelopes, structures and section
//! bytes asserted. The part-numbering test follows the example tree of RFC 9051 §6.4.5.1.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use postfach_message::{
    Address, BinaryError, BodyPart, MessageSummary, Param, PartKind, SectionText, binary, days_from_civil,
    parse, section,
};

fn load(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `BODY[part.text]` as an owned byte string, for comparisons.
fn sec(raw: &[u8], s: &MessageSummary, part: &[u32], text: SectionText<'_>) -> Option<Vec<u8>> {
    section(raw, s, part, text).map(Cow::into_owned)
}

fn body(raw: &[u8], s: &MessageSummary, part: &[u32]) -> Vec<u8> {
    sec(raw, s, part, SectionText::Full).unwrap()
}

fn fields(names: &[&str]) -> Vec<Vec<u8>> {
    names.iter().map(|n| n.as_bytes().to_vec()).collect()
}

fn addr(name: Option<&str>, adl: Option<&str>, mailbox: Option<&str>, host: Option<&str>) -> Address {
    let b = |s: Option<&str>| s.map(|s| s.as_bytes().to_vec());
    Address { name: b(name), adl: b(adl), mailbox: b(mailbox), host: b(host) }
}

fn param(name: &str, value: &str) -> Param {
    Param { name: name.as_bytes().to_vec(), value: value.as_bytes().to_vec() }
}

fn bytes(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

/// The tree as `TYPE/SUB(children)` and `MESSAGE/RFC822{root}`, for whole-tree assertions.
fn shape(part: &BodyPart) -> String {
    let mut out =
        format!("{}/{}", String::from_utf8_lossy(&part.content_type), String::from_utf8_lossy(&part.subtype));
    match &part.kind {
        PartKind::Leaf => {}
        PartKind::Multipart(children) => {
            let inner: Vec<String> = children.iter().map(shape).collect();
            out += &format!("({})", inner.join(", "));
        }
        PartKind::Message(nested) => out += &format!("{{{}}}", shape(&nested.structure)),
    }
    out
}

/// Checks what holds for every part of every message: ranges inside the message, body after
/// header, size = body length, Multipart never empty.
fn check_invariants(raw: &[u8], part: &BodyPart) {
    assert!(part.header.start <= part.header.end && part.header.end <= part.body.start);
    assert!(part.body.start <= part.body.end && part.body.end as usize <= raw.len());
    assert_eq!(part.size() as usize, part.body.slice(raw).len());
    match &part.kind {
        PartKind::Leaf => {}
        PartKind::Multipart(children) => {
            assert!(!children.is_empty());
            for c in children {
                assert!(c.header.start >= part.body.start && c.body.end <= part.body.end);
                check_invariants(raw, c);
            }
        }
        PartKind::Message(nested) => {
            assert_eq!(nested.structure.header.start, part.body.start);
            assert_eq!(nested.structure.body.end, part.body.end);
            check_invariants(raw, &nested.structure);
        }
    }
}

fn parse_checked(name: &str) -> (Vec<u8>, MessageSummary) {
    let raw = load(name);
    let s = parse(&raw);
    check_invariants(&raw, &s.structure);
    // The summary is stored as a blob: it must survive a serde round trip unchanged.
    let json = serde_json::to_string(&s).unwrap();
    let back: MessageSummary = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s, "{name}: serde round trip");
    (raw, s)
}

#[test]
fn simple_text_message() {
    let (raw, s) = parse_checked("01-simple.eml");
    // RFC 9051 §7.5.2 / RFC 3501 §7.4.2 example envelope.
    let terry = vec![addr(Some("Terry Gray"), None, Some("gray"), Some("cac.washington.edu"))];
    let e = &s.envelope;
    assert_eq!(e.date, bytes("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)"));
    assert_eq!(e.subject, bytes("IMAP4rev2 WG mtg summary and minutes"));
    assert_eq!(e.from, terry);
    assert_eq!(e.sender, terry);
    assert_eq!(e.reply_to, terry);
    assert_eq!(e.to, vec![addr(None, None, Some("imap"), Some("cac.washington.edu"))]);
    assert_eq!(
        e.cc,
        vec![
            addr(None, None, Some("minutes"), Some("CNRI.Reston.VA.US")),
            addr(Some("John Klensin"), None, Some("KLENSIN"), Some("MIT.EDU")),
        ]
    );
    assert!(e.bcc.is_empty());
    assert_eq!(e.in_reply_to, None);
    assert_eq!(e.message_id, bytes("<B27397-0100000@cac.washington.edu>"));

    let date = s.sent_date.unwrap();
    assert_eq!(date.unix, days_from_civil(1996, 7, 17) * 86_400 + 9 * 3600 + 23 * 60 + 25);
    assert_eq!(date.offset, -7 * 3600);
    assert_eq!(date.civil_day(), days_from_civil(1996, 7, 17));
    assert_eq!(s.subject.as_deref(), Some("IMAP4rev2 WG mtg summary and minutes"));

    let root = &s.structure;
    assert_eq!(shape(root), "TEXT/PLAIN");
    assert_eq!(root.params, vec![param("CHARSET", "US-ASCII")]);
    assert_eq!(root.encoding, b"7BIT");
    assert_eq!(root.lines, 2);
    let text = b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\nSecond line\r\n";
    assert_eq!(root.size() as usize, text.len());

    let header_len = raw.len() - text.len();
    assert_eq!(sec(&raw, &s, &[], SectionText::Header).unwrap(), &raw[..header_len]);
    assert_eq!(sec(&raw, &s, &[], SectionText::Text).unwrap(), text);
    assert_eq!(sec(&raw, &s, &[], SectionText::Full).unwrap(), raw);
    // RFC 9051 §6.4.5.1: a non-multipart message has only part 1, its body.
    assert_eq!(body(&raw, &s, &[1]), text);
    assert_eq!(sec(&raw, &s, &[1], SectionText::Mime).unwrap(), &raw[..header_len]);
    assert_eq!(sec(&raw, &s, &[2], SectionText::Full), None);
    assert_eq!(sec(&raw, &s, &[0], SectionText::Full), None);
    assert_eq!(sec(&raw, &s, &[1, 1], SectionText::Full), None);
    assert_eq!(sec(&raw, &s, &[1], SectionText::Header), None, "HEADER needs message/rfc822");
    assert_eq!(sec(&raw, &s, &[1], SectionText::Text), None);
    assert_eq!(sec(&raw, &s, &[], SectionText::Mime), None, "MIME needs a part number");

    // Case-insensitive names, original order and bytes (folding kept), then the blank line.
    let names = fields(&["CC", "subject"]);
    assert_eq!(
        sec(&raw, &s, &[], SectionText::HeaderFields(&names)).unwrap(),
        b"Subject: IMAP4rev2 WG mtg summary and minutes\r\ncc: minutes@CNRI.Reston.VA.US,\r\n John Klensin <KLENSIN@MIT.EDU>\r\n\r\n"
    );
    let names = fields(&["from", "To", "cc", "date", "message-id", "mime-version", "content-type"]);
    assert_eq!(
        sec(&raw, &s, &[], SectionText::HeaderFieldsNot(&names)).unwrap(),
        b"Subject: IMAP4rev2 WG mtg summary and minutes\r\n\r\n"
    );
    let names = fields(&["X-Absent"]);
    assert_eq!(sec(&raw, &s, &[], SectionText::HeaderFields(&names)).unwrap(), b"\r\n");
    assert_eq!(sec(&raw, &s, &[], SectionText::HeaderFields(&[])).unwrap(), b"\r\n");

    assert_eq!(binary(&raw, &s, &[1]).unwrap().unwrap(), &text[..]);
    assert_eq!(binary(&raw, &s, &[]).unwrap().unwrap(), &raw[..]);
    assert_eq!(binary(&raw, &s, &[2]).unwrap(), None);
    // Sections borrow from the raw message where they can.
    assert!(matches!(section(&raw, &s, &[1], SectionText::Full), Some(Cow::Borrowed(_))));
}

#[test]
fn multipart_alternative() {
    let (raw, s) = parse_checked("02-alternative.eml");
    let root = &s.structure;
    assert_eq!(shape(root), "MULTIPART/ALTERNATIVE(TEXT/PLAIN, TEXT/HTML)");
    assert_eq!(root.params, vec![param("BOUNDARY", "b1_alt")]);
    let PartKind::Multipart(children) = &root.kind else { panic!() };
    assert_eq!(children[0].encoding, b"QUOTED-PRINTABLE");
    assert_eq!(children[0].params, vec![param("CHARSET", "utf-8")]);
    // Line feeds: the last line of each part has none of its own (it is the delimiter's).
    assert_eq!(children[0].lines, 1);
    assert_eq!(children[1].encoding, b"7BIT");
    assert_eq!(children[1].lines, 0);

    // RFC 2046 §5.1.1: the CRLF before a delimiter belongs to the delimiter.
    assert_eq!(body(&raw, &s, &[1]), b"Caf=C3=A9 for two, =\r\nplease.");
    assert_eq!(body(&raw, &s, &[2]), b"<p>Caf&eacute; for two, please.</p>");
    assert_eq!(
        sec(&raw, &s, &[1], SectionText::Mime).unwrap(),
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    assert_eq!(
        sec(&raw, &s, &[2], SectionText::Mime).unwrap(),
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    );
    let text = sec(&raw, &s, &[], SectionText::Text).unwrap();
    assert!(text.starts_with(b"This is a multi-part message in MIME format.\r\n--b1_alt\r\n"));
    assert!(text.ends_with(b"--b1_alt--\r\nepilogue text\r\n"));
    assert_eq!(binary(&raw, &s, &[1]).unwrap().unwrap(), "Café for two, please.".as_bytes());
    assert_eq!(sec(&raw, &s, &[3], SectionText::Full), None);

    // 00:30 +0100 on 3 Jan is 2 Jan in UTC; SENTON compares the sender's date (RFC 9051 §6.4.4).
    let date = s.sent_date.unwrap();
    assert_eq!(date.civil_day(), days_from_civil(2023, 1, 3));
    assert_eq!(date.unix.div_euclid(86_400), days_from_civil(2023, 1, 2));
}

#[test]
fn multipart_mixed_with_attachment() {
    let (raw, s) = parse_checked("03-mixed-attachment.eml");
    assert_eq!(shape(&s.structure), "MULTIPART/MIXED(TEXT/PLAIN, APPLICATION/PDF, APPLICATION/OCTET-STREAM)");
    assert_eq!(s.structure.params, vec![param("BOUNDARY", "----=_Part_1_2.3")]);
    let PartKind::Multipart(children) = &s.structure.kind else { panic!() };

    let text = &children[0];
    assert_eq!(text.params, vec![param("CHARSET", "us-ascii")], "RFC 2046 default charset");
    assert_eq!(body(&raw, &s, &[1]), b"See attached.");

    let pdf = &children[1];
    assert_eq!(pdf.params, vec![param("NAME", "r.pdf")]);
    assert_eq!(pdf.encoding, b"BASE64");
    assert_eq!(pdf.id, bytes("<part2@example.com>"));
    assert_eq!(pdf.description, bytes("The report"));
    assert_eq!(pdf.md5, bytes("Q2hlY2sgSW50ZWdyaXR5IQ=="));
    let disposition = pdf.disposition.as_ref().unwrap();
    assert_eq!(disposition.kind, b"ATTACHMENT");
    // RFC 9051 §7.5.2: RFC 2231 values decoded to UTF-8 under the name "filename*".
    assert_eq!(disposition.params, vec![param("FILENAME*", "résumé.pdf"), param("SIZE", "512")]);
    assert_eq!(pdf.language, vec![b"en".to_vec(), b"de".to_vec()]);
    assert_eq!(pdf.location, bytes("http://example.com/r.pdf"));
    assert_eq!(pdf.lines, 0, "lines are only counted for text and message parts");
    let expected: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    assert_eq!(binary(&raw, &s, &[2]).unwrap().unwrap(), &expected[..]);
    let encoded = body(&raw, &s, &[2]);
    assert!(encoded.starts_with(b"AAECAwQF") && encoded.ends_with(b"/v8="));
    assert_eq!(pdf.size() as usize, encoded.len());

    assert_eq!(binary(&raw, &s, &[3]), Err(BinaryError::UnknownCte("X-UUENCODE".into())));
    assert_eq!(binary(&raw, &s, &[4]), Ok(None));
}

#[test]
fn nested_message_part_numbers_follow_rfc9051_example() {
    let (raw, s) = parse_checked("04-nested-rfc822.eml");
    assert_eq!(
        shape(&s.structure),
        "MULTIPART/MIXED(TEXT/PLAIN, APPLICATION/OCTET-STREAM, \
         MESSAGE/RFC822{MULTIPART/MIXED(TEXT/PLAIN, APPLICATION/OCTET-STREAM)}, \
         MULTIPART/MIXED(IMAGE/GIF, MESSAGE/RFC822{MULTIPART/MIXED(TEXT/PLAIN, \
         MULTIPART/ALTERNATIVE(TEXT/PLAIN, TEXT/RICHTEXT))}))"
    );
    let full = |part: &[u32]| String::from_utf8(body(&raw, &s, part)).unwrap();
    let text =
        |part: &[u32], t: SectionText<'_>| sec(&raw, &s, part, t).map(|b| String::from_utf8(b).unwrap());

    assert_eq!(full(&[1]), "part 1");
    assert_eq!(full(&[2]), "AAEC");
    assert_eq!(binary(&raw, &s, &[2]).unwrap().unwrap(), &[0u8, 1, 2][..]);
    let inner3 =
        "From: b@example.com\r\nSubject: inner 3\r\nContent-Type: multipart/mixed; boundary=\"in3\"\r\n\r\n";
    assert_eq!(
        full(&[3]),
        format!(
            "{inner3}--in3\r\nContent-Type: text/plain\r\n\r\npart 3.1\r\n--in3\r\nContent-Type: application/octet-stream\r\n\r\npart 3.2\r\n--in3--"
        )
    );
    assert_eq!(text(&[3], SectionText::Header).unwrap(), inner3);
    assert!(text(&[3], SectionText::Text).unwrap().starts_with("--in3\r\n"));
    assert_eq!(text(&[3], SectionText::Mime).unwrap(), "Content-Type: message/rfc822\r\n\r\n");
    let subject = fields(&["SUBJECT"]);
    assert_eq!(text(&[3], SectionText::HeaderFields(&subject)).unwrap(), "Subject: inner 3\r\n\r\n");
    assert_eq!(full(&[3, 1]), "part 3.1");
    assert_eq!(full(&[3, 2]), "part 3.2");
    assert_eq!(text(&[3, 1], SectionText::Mime).unwrap(), "Content-Type: text/plain\r\n\r\n");
    assert!(full(&[4]).starts_with("--p4\r\n") && full(&[4]).ends_with("--p4--"));
    assert_eq!(full(&[4, 1]), "R0lGODlh");
    assert_eq!(
        text(&[4, 1], SectionText::Mime).unwrap(),
        "Content-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    );
    assert_eq!(
        text(&[4, 2], SectionText::Header).unwrap(),
        "From: c@example.com\r\nSubject: inner 4.2\r\nContent-Type: multipart/mixed; boundary=\"in42\"\r\n\r\n"
    );
    assert!(text(&[4, 2], SectionText::Text).unwrap().ends_with("--in42--"));
    assert_eq!(full(&[4, 2, 1]), "part 4.2.1");
    assert!(full(&[4, 2, 2]).starts_with("--alt\r\n"));
    assert_eq!(full(&[4, 2, 2, 1]), "part 4.2.2.1");
    assert_eq!(full(&[4, 2, 2, 2]), "part 4.2.2.2");

    for missing in [&[5][..], &[1, 1], &[3, 3], &[4, 3], &[4, 2, 1, 1], &[4, 2, 2, 3], &[4, 1, 1]] {
        assert_eq!(sec(&raw, &s, missing, SectionText::Full), None, "{missing:?}");
    }
    assert_eq!(text(&[2], SectionText::Header), None);
    assert_eq!(text(&[4], SectionText::Text), None, "TEXT of a multipart part is not defined");
    assert_eq!(binary(&raw, &s, &[3]), Err(BinaryError::NotLeaf));
    assert_eq!(binary(&raw, &s, &[4]), Err(BinaryError::NotLeaf));

    let PartKind::Multipart(children) = &s.structure.kind else { panic!() };
    let PartKind::Message(nested) = &children[2].kind else { panic!() };
    assert_eq!(nested.envelope.from, vec![addr(None, None, Some("b"), Some("example.com"))]);
    assert_eq!(nested.envelope.subject, bytes("inner 3"));
    assert_eq!(children[2].lines, 12, "line feeds of the whole encapsulated message");
}

#[test]
fn multipart_signed_parts_are_byte_exact() {
    let (raw, s) = parse_checked("05-signed.eml");
    assert_eq!(
        shape(&s.structure),
        "MULTIPART/SIGNED(MULTIPART/MIXED(TEXT/PLAIN), APPLICATION/PGP-SIGNATURE)"
    );
    assert_eq!(
        s.structure.params,
        vec![
            param("MICALG", "pgp-sha256"),
            param("PROTOCOL", "application/pgp-signature"),
            param("BOUNDARY", "sig")
        ]
    );
    // RFC 1847: what was signed is exactly the bytes between "--sig CRLF" and "CRLF --sig";
    // a client verifies over BODY[1.MIME] followed by BODY[1].
    let text = String::from_utf8(raw.clone()).unwrap();
    let start = text.find("--sig\r\n").unwrap() + 7;
    let end = text[start..].find("\r\n--sig").unwrap() + start;
    let mut signed = sec(&raw, &s, &[1], SectionText::Mime).unwrap();
    signed.extend(body(&raw, &s, &[1]));
    assert_eq!(signed, &raw[start..end]);
    assert!(signed.ends_with(b"--inner--\r\n"));
    assert_eq!(body(&raw, &s, &[1, 1]), b"Signed text.  ");
    assert_eq!(
        body(&raw, &s, &[2]),
        b"-----BEGIN PGP SIGNATURE-----\r\niQEzBAEBCAAdFiEE\r\n-----END PGP SIGNATURE-----\r\n"
    );
}

#[test]
fn nested_multipart_reusing_the_outer_boundary_keeps_every_attachment() {
    // Outlook Express style: the alternative inside the mixed has the mixed's boundary. A
    // delimiter line belongs to the innermost open multipart, so the alternative ends at its own
    // close delimiter and the four attachments after it are parts 2 to 5.
    let (raw, s) = parse_checked("19-shared-boundary.eml");
    assert_eq!(
        shape(&s.structure),
        "MULTIPART/MIXED(MULTIPART/ALTERNATIVE(TEXT/PLAIN, TEXT/HTML), IMAGE/JPEG, IMAGE/JPEG, TEXT/PLAIN, \
         APPLICATION/OCTET-STREAM)"
    );
    assert_eq!(body(&raw, &s, &[1, 1]), b"Here are the pictures from the trip.\r\nBient=F4t!");
    assert_eq!(
        binary(&raw, &s, &[1, 1]).unwrap().unwrap(),
        &b"Here are the pictures from the trip.\r\nBient\xf4t!"[..]
    );
    assert_eq!(body(&raw, &s, &[1, 2]), b"<p>Here are the pictures from the trip.</p>");
    assert!(body(&raw, &s, &[1]).ends_with(b"</p>\r\n------=_NextPart_000_0007_01C2A9A6.3E2C4B20--\r\n"));
    let mime = |part: u32| String::from_utf8(sec(&raw, &s, &[part], SectionText::Mime).unwrap()).unwrap();
    assert!(mime(2).contains("one.jpg") && mime(3).contains("two.jpg"));
    assert!(mime(4).contains("list.txt") && mime(5).contains("data.bin"));
    assert_eq!(body(&raw, &s, &[2]), b"/9j/4AAQSkZJRgABAQ==");
    assert_eq!(body(&raw, &s, &[3]), b"/9j/4AAQSkZJRgABAg==");
    assert_eq!(binary(&raw, &s, &[4]).unwrap().unwrap(), &b"milk\neggs\nbread\n"[..]);
    assert_eq!(binary(&raw, &s, &[5]).unwrap().unwrap(), (0..40).collect::<Vec<u8>>());
    assert_eq!(sec(&raw, &s, &[6], SectionText::Full), None);
}

#[test]
fn multipart_without_boundary_is_text() {
    let (raw, s) = parse_checked("06-missing-boundary.eml");
    assert_eq!(shape(&s.structure), "TEXT/PLAIN");
    assert_eq!(s.structure.params, vec![param("CHARSET", "us-ascii")]);
    assert_eq!(s.structure.lines, 5);
    assert!(body(&raw, &s, &[1]).starts_with(b"--whatever\r\n"));
    assert_eq!(sec(&raw, &s, &[1, 1], SectionText::Full), None);
}

#[test]
fn unclosed_multipart_runs_to_the_end() {
    let (raw, s) = parse_checked("07-unclosed-multipart.eml");
    assert_eq!(shape(&s.structure), "MULTIPART/MIXED(TEXT/PLAIN, TEXT/PLAIN)");
    assert_eq!(body(&raw, &s, &[1]), b"first");
    assert_eq!(body(&raw, &s, &[2]), b"second, never closed\r\n");
}

#[test]
fn bare_lf_line_endings() {
    let (raw, s) = parse_checked("08-bare-lf.eml");
    assert_eq!(shape(&s.structure), "MULTIPART/MIXED(TEXT/PLAIN, TEXT/PLAIN)");
    assert_eq!(s.envelope.subject, bytes("bare LF"));
    assert_eq!(body(&raw, &s, &[1]), b"line one\nline two");
    assert_eq!(sec(&raw, &s, &[1], SectionText::Mime).unwrap(), b"Content-Type: text/plain\n\n");
    let header = sec(&raw, &s, &[], SectionText::Header).unwrap();
    assert!(header.starts_with(b"From: h@example.com\n") && header.ends_with(b"\"lf\"\n\n"));
    let subject = fields(&["subject"]);
    // A composed subset is CRLF throughout (docs/dovecot-differences.md item 10).
    assert_eq!(sec(&raw, &s, &[], SectionText::HeaderFields(&subject)).unwrap(), b"Subject: bare LF\r\n\r\n");
    // RFC 9051 §7.5.2: BINARY sends text with CRLF line endings, whatever the storage has...
    assert_eq!(binary(&raw, &s, &[1]).unwrap().unwrap(), &b"line one\r\nline two"[..]);
    // ...but base64 content is the sender's octets: 9 decoded, 9 served (Dovecot too).
    assert_eq!(binary(&raw, &s, &[2]).unwrap().unwrap(), &b"hi\nthere\n"[..]);
    let PartKind::Multipart(children) = &s.structure.kind else { panic!() };
    assert_eq!(children[0].lines, 1);
}

#[test]
fn eight_bit_header_is_kept_raw() {
    let (raw, s) = parse_checked("09-8bit-header.eml");
    let e = &s.envelope;
    assert_eq!(e.from, vec![addr(Some("Jürgen Groß"), None, Some("juergen"), Some("example.de"))]);
    assert_eq!(e.to, vec![addr(Some("=?ISO-8859-1?Q?Andr=E9?="), None, Some("andre"), Some("example.fr"))]);
    assert_eq!(e.subject, bytes("Grüße aus Köln"));
    assert_eq!(s.subject.as_deref(), Some("Grüße aus Köln"));
    assert_eq!(s.structure.params, vec![param("CHARSET", "utf-8")]);
    assert_eq!(s.structure.encoding, b"8BIT");
    let latin1 = fields(&["x-latin1"]);
    assert_eq!(sec(&raw, &s, &[], SectionText::HeaderFields(&latin1)).unwrap(), b"X-Latin1: caf\xe9\r\n\r\n");
    assert_eq!(body(&raw, &s, &[1]), "Schöne Grüße\r\n".as_bytes());
}

#[test]
fn encoded_word_subject() {
    let (_, s) = parse_checked("10-encoded-word.eml");
    // ENVELOPE: unfolded, encoded-words as sent.
    assert_eq!(s.envelope.subject, bytes("=?UTF-8?B?SGVsbG8g4pyTIFdvcmxk?= =?ISO-8859-1?Q?_caf=E9?="));
    // RFC 2047 §6.2: whitespace between adjacent encoded-words is dropped.
    assert_eq!(s.subject.as_deref(), Some("Hello ✓ World café"));
    let date = s.sent_date.unwrap();
    assert_eq!(date.unix, days_from_civil(2000, 2, 29) * 86_400 + 1);
    assert_eq!(date.offset, 0);
}

#[test]
fn group_addresses_and_defaults() {
    let (_, s) = parse_checked("11-groups.eml");
    let e = &s.envelope;
    let leader = vec![addr(Some("Leader, The"), None, Some("lead"), Some("example.com"))];
    assert_eq!(e.from, leader);
    assert_eq!(e.sender, leader, "RFC 9051 §7.5.2: absent Sender is From");
    assert_eq!(e.reply_to, vec![addr(None, None, Some("list"), Some("example.com"))]);
    assert_eq!(
        e.to,
        vec![addr(None, None, Some("undisclosed-recipients"), None), addr(None, None, None, None)]
    );
    assert_eq!(
        e.cc,
        vec![
            addr(None, None, Some("Team"), None),
            addr(None, None, Some("m1"), Some("example.com")),
            addr(Some("M Two"), None, Some("m2"), Some("example.com")),
            addr(None, None, None, None),
            addr(None, None, Some("solo"), Some("example.com")),
        ]
    );
    assert!(e.bcc.is_empty(), "present but empty is NIL");
    assert_eq!(e.subject, bytes(""), "present but empty is the empty string");
    assert_eq!(e.date, None);
    assert_eq!(s.sent_date, None);
    assert_eq!(e.in_reply_to, bytes("<parent@example.com>"));
    assert_eq!(s.references, vec![b"<root@example.com>".to_vec(), b"<parent@example.com>".to_vec()]);
}

#[test]
fn message_without_body() {
    let (raw, s) = parse_checked("12-no-body.eml");
    assert_eq!(shape(&s.structure), "TEXT/PLAIN");
    assert_eq!((s.structure.size(), s.structure.lines), (0, 0));
    assert_eq!(sec(&raw, &s, &[], SectionText::Header).unwrap(), raw);
    assert_eq!(sec(&raw, &s, &[], SectionText::Text).unwrap(), b"");
    assert_eq!(body(&raw, &s, &[1]), b"");
    let subject = fields(&["Subject"]);
    assert_eq!(
        sec(&raw, &s, &[], SectionText::HeaderFields(&subject)).unwrap(),
        b"Subject: nothing follows\r\n\r\n"
    );
}

#[test]
fn header_only_message_has_no_blank_line() {
    let (raw, s) = parse_checked("13-header-only.eml");
    assert_eq!(s.envelope.subject, bytes("no blank line"));
    assert_eq!(s.structure.size(), 0);
    // RFC 9051 §6.4.5.1: the blank line is included "except in the case of a message that has no
    // body and no blank line".
    assert_eq!(sec(&raw, &s, &[], SectionText::Header).unwrap(), raw);
    let from = fields(&["from"]);
    assert_eq!(sec(&raw, &s, &[], SectionText::HeaderFields(&from)).unwrap(), b"From: o@example.com\r\n");
    assert_eq!(sec(&raw, &s, &[], SectionText::Text).unwrap(), b"");
}

#[test]
fn digest_parts_default_to_message() {
    let (raw, s) = parse_checked("14-digest.eml");
    // RFC 2046 §5.1.5: in a digest, a part without Content-Type is message/rfc822.
    assert_eq!(shape(&s.structure), "MULTIPART/DIGEST(MESSAGE/RFC822{TEXT/PLAIN}, TEXT/PLAIN)");
    assert_eq!(sec(&raw, &s, &[1], SectionText::Mime).unwrap(), b"\r\n");
    assert_eq!(
        sec(&raw, &s, &[1], SectionText::Header).unwrap(),
        b"From: p@example.com\r\nSubject: first\r\n\r\n"
    );
    assert_eq!(sec(&raw, &s, &[1], SectionText::Text).unwrap(), b"one");
    assert_eq!(body(&raw, &s, &[1, 1]), b"one");
    let PartKind::Multipart(children) = &s.structure.kind else { panic!() };
    let PartKind::Message(nested) = &children[0].kind else { panic!() };
    assert_eq!(nested.envelope.subject, bytes("first"));
    assert_eq!(nested.structure.params, vec![param("CHARSET", "us-ascii")]);
}

#[test]
fn top_level_message_rfc822() {
    let (raw, s) = parse_checked("15-toplevel-rfc822.eml");
    assert_eq!(shape(&s.structure), "MESSAGE/RFC822{TEXT/PLAIN}");
    assert_eq!(s.envelope.subject, bytes("forwarded as body"));
    let inner = b"From: q@example.com\r\nSubject: the original\r\n\r\noriginal text\r\n";
    assert_eq!(body(&raw, &s, &[1]), inner);
    assert_eq!(sec(&raw, &s, &[], SectionText::Text).unwrap(), inner);
    assert_eq!(
        sec(&raw, &s, &[1], SectionText::Header).unwrap(),
        b"From: q@example.com\r\nSubject: the original\r\n\r\n"
    );
    assert_eq!(sec(&raw, &s, &[1], SectionText::Text).unwrap(), b"original text\r\n");
    assert_eq!(body(&raw, &s, &[1, 1]), b"original text\r\n");
    assert_eq!(sec(&raw, &s, &[1, 2], SectionText::Full), None);
    assert_eq!(s.structure.lines, 4);
}

#[test]
fn encoded_message_rfc822_is_an_opaque_leaf() {
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
        Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        U3ViamVjdDogeA0KDQp5DQo=\r\n--b--\r\n";
    let s = parse(raw);
    check_invariants(raw, &s.structure);
    // RFC 9051 §9: body-type-basic must not claim MESSAGE/RFC822, so the part is shown as bytes.
    assert_eq!(shape(&s.structure), "MULTIPART/MIXED(APPLICATION/OCTET-STREAM)");
    assert_eq!(binary(raw, &s, &[1]).unwrap().unwrap(), &b"Subject: x\r\n\r\ny\r\n"[..]);
}

#[test]
fn serialised_summary_round_trips() {
    // Every field is written (the store uses a compact binary encoding, which cannot skip
    // fields); summaries from before, which skipped empty ones, still read through `default`.
    let (_, s) = parse_checked("13-header-only.eml");
    let json = serde_json::to_string(&s).unwrap();
    let mut sparse: serde_json::Value = serde_json::from_str(&json).unwrap();
    if let Some(envelope) = sparse.get_mut("envelope").and_then(|e| e.as_object_mut()) {
        envelope.retain(|_, v| !(v.is_null() || v.as_array().is_some_and(|a| a.is_empty())));
    }
    assert_eq!(serde_json::from_value::<MessageSummary>(sparse).unwrap(), s);
    // Byte strings are JSON strings when they are UTF-8, not arrays of numbers.
    assert!(json.contains("\"subject\":\"no blank line\""), "{json}");
    let (_, s) = parse_checked("09-8bit-header.eml");
    let back: MessageSummary = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
}
