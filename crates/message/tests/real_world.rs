//! Regressions found by comparing FETCH output with Dovecot's over a corpus of real-world
//! messages (`bench/compare-fetch.py`, see `docs/dovecot-differences.md`). The corpus is not ours
//! to commit; every message here is a minimal one written to reproduce the case.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use postfach_message::{MessageSummary, PartKind, SectionText, parse, section};

fn sec(raw: &[u8], s: &MessageSummary, part: &[u32], text: SectionText<'_>) -> Option<Vec<u8>> {
    section(raw, s, part, text).map(Cow::into_owned)
}

/// A forwarded message whose `Received:` field was folded without leading whitespace (a broken
/// fold, as some relays write): the fields after the broken line must stay header fields, and the
/// encapsulated message's body must not start in the middle of its header (RFC 5322 §2.1: the
/// header ends at the first empty line).
#[test]
fn broken_fold_does_not_cut_an_encapsulated_header() {
    let raw: &[u8] = b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
\r\n\
see attached\r\n\
--b\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Received: from relay.example (relay.example [192.0.2.1])\r\n\
(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n\
by mx.example with ESMTPS id 4084ACAF;\r\n\
From: Alice <alice@example.org>\r\n\
Subject: the real subject\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
inner body\r\n\
--b--\r\n";
    let s = parse(raw);
    let PartKind::Multipart(parts) = &s.structure.kind else { panic!("not multipart") };
    let PartKind::Message(nested) = &parts[1].kind else { panic!("part 2 is not a message") };
    assert_eq!(nested.envelope.subject.as_deref(), Some(&b"the real subject"[..]));
    assert_eq!(nested.envelope.from[0].mailbox.as_deref(), Some(&b"alice"[..]));
    assert_eq!(nested.structure.params[0].value, b"utf-8");
    assert_eq!(sec(raw, &s, &[2, 1], SectionText::Full).unwrap(), b"inner body");
    assert_eq!(sec(raw, &s, &[2], SectionText::Text).unwrap(), b"inner body");
    let header = sec(raw, &s, &[2], SectionText::Header).unwrap();
    assert!(header.starts_with(b"Received:") && header.ends_with(b"charset=utf-8\r\n\r\n"));
    // The broken lines are not fields: HEADER.FIELDS.NOT leaves them out, with the fields named.
    let not = sec(raw, &s, &[2], SectionText::HeaderFieldsNot(&[b"received".to_vec(), b"from".to_vec()]));
    assert_eq!(not.unwrap(), b"Subject: the real subject\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
}

/// The same at the top level, with a stray line before the first field.
#[test]
fn stray_line_before_the_fields_is_skipped() {
    let raw: &[u8] = b"stray text\r\nSubject: s\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n";
    let s = parse(raw);
    assert_eq!(s.envelope.subject.as_deref(), Some(&b"s"[..]));
    assert_eq!(s.structure.subtype, b"HTML");
    assert_eq!(sec(raw, &s, &[], SectionText::Text).unwrap(), b"<p>x</p>\r\n");
}

/// What does not change: without a blank line further on, or without any field before it, a
/// line that is not a field still ends the header (the body starts there); and a line that may
/// be a boundary delimiter is never taken into a part header.
#[test]
fn lines_that_still_end_the_header() {
    let raw: &[u8] = b"Subject: s\r\nhello world\r\nbye\r\n";
    let s = parse(raw);
    assert_eq!(sec(raw, &s, &[], SectionText::Text).unwrap(), b"hello world\r\nbye\r\n");

    let raw: &[u8] = b"no header here\r\n\r\nsecond paragraph\r\n";
    let s = parse(raw);
    assert_eq!(s.structure.size() as usize, raw.len());

    // A part header without its blank line, directly followed by the nested multipart's first
    // delimiter: the delimiter is not swallowed into the header.
    let raw: &[u8] = b"Content-Type: multipart/mixed; boundary=\"o\"\r\n\
\r\n\
--o\r\n\
Content-Type: multipart/mixed; boundary=\"i\"\r\n\
X-Note: no blank line follows\r\n\
--i\r\n\
Content-Type: text/plain\r\n\
\r\n\
deep\r\n\
--i--\r\n\
--o--\r\n";
    let s = parse(raw);
    let PartKind::Multipart(outer) = &s.structure.kind else { panic!("not multipart") };
    let PartKind::Multipart(inner) = &outer[0].kind else { panic!("part 1 is not multipart") };
    assert_eq!(inner.len(), 1);
    assert_eq!(sec(raw, &s, &[1, 1], SectionText::Full).unwrap(), b"deep");
}

/// A boundary (and a charset) sent in RFC 2231 extended form, as some mailers write every
/// parameter: the multipart is still split (RFC 2231 §4 allows the form for any parameter), and
/// the text part's charset is not doubled by the US-ASCII default.
#[test]
fn rfc2231_boundary_splits_the_multipart() {
    let raw: &[u8] = b"Content-Type: multipart/signed; micalg*=us-ascii''pgp-sha256;\r\n\
\tprotocol*=us-ascii''application%2Fpgp-signature;\r\n\
\tboundary*=\"us-ascii''Sig42\"\r\n\
\r\n\
--Sig42\r\n\
Content-Type: text/plain; charset*=us-ascii''utf-8\r\n\
\r\n\
signed text\r\n\
--Sig42\r\n\
Content-Type: application/pgp-signature\r\n\
\r\n\
sig\r\n\
--Sig42--\r\n";
    let s = parse(raw);
    let PartKind::Multipart(parts) = &s.structure.kind else { panic!("not split") };
    assert_eq!(parts.len(), 2);
    assert_eq!(s.structure.subtype, b"SIGNED");
    assert_eq!(sec(raw, &s, &[1], SectionText::Full).unwrap(), b"signed text");
    let names: Vec<&[u8]> = parts[0].params.iter().map(|p| p.name.as_slice()).collect();
    assert_eq!(names, vec![&b"CHARSET*"[..]]);
    assert_eq!(parts[0].params[0].value, b"utf-8");
    // The RFC 9051 §7.5.2 `foo*` form of the decoded boundary is what BODYSTRUCTURE shows.
    let boundary = s.structure.params.iter().find(|p| p.name == b"BOUNDARY*").unwrap();
    assert_eq!(boundary.value, b"Sig42");
}
