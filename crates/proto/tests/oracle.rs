//! Differential tests against imap-codec (a strict, fuzzed implementation): every response our
//! writer emits must decode with its response decoder where it knows the syntax, and commands
//! it encodes must parse with our parser to the same meaning.

#![allow(clippy::unwrap_used)]

use std::num::NonZeroU32;

use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::response::{Data as CData, Response as CResponse, Status as CStatus};
use imap_codec::{CommandCodec, GreetingCodec, ResponseCodec};
use postfach_proto::*;

/// Decodes `bytes` as a sequence of complete responses; panics with context on failure.
fn decode_all(bytes: &[u8]) -> Vec<CResponse<'static>> {
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        match ResponseCodec::default().decode(rest) {
            Ok((r, resp)) => {
                out.push(resp.into_static());
                rest = r;
            }
            Err(e) => panic!("imap-codec rejected {:?}: {e:?}", String::from_utf8_lossy(rest)),
        }
    }
    out
}

fn one(bytes: &[u8]) -> CResponse<'static> {
    let mut v = decode_all(bytes);
    assert_eq!(v.len(), 1, "{}", String::from_utf8_lossy(bytes));
    v.remove(0)
}

fn data(d: &Data) -> Vec<u8> {
    let mut out = Vec::new();
    write_data(&mut out, d, WriteOptions::default());
    out
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn dbg(r: &CResponse<'_>) -> String {
    format!("{r:?}")
}

#[test]
fn status_responses_decode() {
    let tag = Tag::new("A142").unwrap();
    let cases: Vec<(Completion, Option<Code>, &str)> = vec![
        (Completion::Ok, Some(Code::ReadWrite), "SELECT completed"),
        (Completion::No, Some(Code::TryCreate), "no such mailbox"),
        (Completion::Bad, None, "[bracket] start is escaped"),
        (Completion::Ok, Some(Code::UidNext(4392)), "Predicted next UID"),
        (Completion::Ok, Some(Code::UidValidity(3_857_529_045)), "UIDs valid"),
        (
            Completion::Ok,
            Some(Code::PermanentFlags(vec![
                PermanentFlag::Flag(Flag::Deleted),
                PermanentFlag::Flag(Flag::Seen),
                PermanentFlag::Flag(Flag::Keyword("$Junk".into())),
                PermanentFlag::Wildcard,
            ])),
            "Limited",
        ),
        (
            Completion::Ok,
            Some(Code::CopyUid {
                uidvalidity: 38_505,
                from: NumberSet::from_numbers([304, 319, 320]),
                to: NumberSet::from_ranges([3956..=3958]),
            }),
            "Done",
        ),
        (
            Completion::Ok,
            Some(Code::AppendUid { uidvalidity: 38_505, uids: NumberSet::from_numbers([3955]) }),
            "APPEND completed",
        ),
        (Completion::Ok, Some(Code::HighestModSeq(715_194_045_007)), "Highest"),
        (Completion::Ok, Some(Code::HighestModSeq(0)), "becomes NOMODSEQ"),
        (Completion::Ok, Some(Code::Modified(NumberSet::from_numbers([7, 9]))), "Conditional STORE failed"),
        (Completion::No, Some(Code::BadCharset(vec!["UTF-8".into()])), "bad charset"),
        (Completion::No, Some(Code::BadCharset(vec![])), "bad charset"),
        (Completion::No, Some(Code::OverQuota), "quota"),
        (Completion::No, Some(Code::TooBig), "too big"),
        // RFC 4469 §4.1 and RFC 4467 §7.2: `]`, space and 8-bit bytes in a URL are encoded.
        (Completion::No, Some(Code::BadUrl("/INBOX;UIDVALIDITY=385759045/;UID=20".into())), "bad URL"),
        (Completion::No, Some(Code::BadUrl("/IN]B OX/;UID=1\u{e9}".into())), "bad URL"),
        (Completion::No, Some(Code::BadUrl(String::new())), "empty URL"),
        (Completion::Ok, Some(Code::UrlMech), "key removed"),
        (Completion::No, Some(Code::Nonexistent), "Unknown mailbox"),
        (Completion::No, Some(Code::AlreadyExists), "exists"),
        (Completion::No, Some(Code::AuthenticationFailed), "bad creds"),
        (Completion::No, Some(Code::Other("X-FOO".into(), Some("a]b\r\nc".into()))), "other"),
        (Completion::Ok, None, ""),
        (Completion::No, None, "evil\r\n* OK injected"),
        (Completion::Ok, Some(Code::UidNext(0)), "invalid code dropped"),
        (
            Completion::Ok,
            Some(Code::Capability(vec!["IMAP4rev2".into(), "AUTH=PLAIN".into(), "bad atom".into()])),
            "caps",
        ),
    ];
    for (status, code, text) in cases {
        let mut out = Vec::new();
        write_tagged(&mut out, &tag, status, code.as_ref(), text);
        let r = one(&out);
        assert!(matches!(r, CResponse::Status(CStatus::Tagged(_))), "{r:?}");
    }
    let mut out = Vec::new();
    write_tagged(&mut out, &tag, Completion::No, Some(&Code::BadUrl("/IN]B OX/;UID=1".into())), "x");
    assert_eq!(out, b"A142 NO [BADURL /IN%5DB%20OX/;UID=1] x\r\n");
    let mut out = Vec::new();
    write_tagged(&mut out, &tag, Completion::Ok, Some(&Code::UrlMech), "done");
    assert_eq!(out, b"A142 OK [URLMECH INTERNAL] done\r\n");
    let mut out = Vec::new();
    write_tagged(&mut out, &tag, Completion::No, None, "evil\r\n* OK injected");
    assert_eq!(out, b"A142 NO evil  * OK injected\r\n");

    let mut out = Vec::new();
    write_untagged_status(&mut out, Status::Bye, None, "Autologout; idle for too long");
    write_untagged_status(&mut out, Status::Ok, Some(&Code::Alert), "System shutdown in 10 minutes");
    write_untagged_status(
        &mut out,
        Status::No,
        Some(&Code::Unseen(17)),
        "Message 17 is the first unseen message",
    );
    write_untagged_status(&mut out, Status::Bad, Some(&Code::Parse), "x");
    let rs = decode_all(&out);
    assert_eq!(rs.len(), 4);
    assert!(matches!(rs[0], CResponse::Status(CStatus::Bye(_))));

    let mut out = Vec::new();
    write_untagged_status(&mut out, Status::PreAuth, None, "IMAP4rev2 server logged in as Smith");
    let (rest, _greeting) = GreetingCodec::default().decode(&out).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn continuation_requests_decode() {
    let mut out = Vec::new();
    write_continuation(&mut out, "Ready for literal data");
    write_continuation_base64(
        &mut out,
        b"YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzBeBiVHeceP2CWY0SR0fAQAgAAQEBAQ=",
    );
    let rs = decode_all(&out);
    assert_eq!(rs.len(), 2);
    assert!(rs.iter().all(|r| matches!(r, CResponse::CommandContinuationRequest(_))));
}

#[test]
fn mailbox_data_decodes() {
    let r = one(&data(&Data::Capability(vec![
        "IMAP4rev2".into(),
        "STARTTLS".into(),
        "AUTH=GSSAPI".into(),
        "LOGINDISABLED".into(),
    ])));
    assert!(matches!(r, CResponse::Data(CData::Capability(ref c)) if c.as_ref().len() == 4));

    let r = one(&data(&Data::List {
        attributes: vec![MailboxAttr::HasNoChildren, MailboxAttr::SpecialUse(SpecialUse::Sent)],
        delimiter: Some('/'),
        name: "Sent Mail/台北".into(),
        extended: vec![],
    }));
    assert!(dbg(&r).contains("&U,BTFw-"), "{r:?}");

    let r = one(&data(&Data::List {
        attributes: vec![MailboxAttr::NoSelect],
        delimiter: Some('\\'),
        name: "INBOX".into(),
        extended: vec![],
    }));
    assert!(matches!(r, CResponse::Data(CData::List { .. })));

    let r = one(&data(&Data::List {
        attributes: vec![],
        delimiter: None,
        name: "with \"quote\" and %".into(),
        extended: vec![],
    }));
    assert!(matches!(r, CResponse::Data(CData::List { delimiter: None, .. })));

    let r = one(&data(&Data::Lsub {
        attributes: vec![],
        delimiter: Some('.'),
        name: "#news.comp.mail.misc".into(),
    }));
    assert!(matches!(r, CResponse::Data(CData::Lsub { .. })));

    let r = one(&data(&Data::Status {
        mailbox: "blurdybloop".into(),
        items: vec![
            (StatusItem::Messages, 231),
            (StatusItem::UidNext, 44292),
            (StatusItem::Unseen, 3),
            (StatusItem::UidValidity, 7),
        ],
        mailbox_id: None,
    }));
    assert!(matches!(r, CResponse::Data(CData::Status { .. })), "{r:?}");
    let r = one(&data(&Data::Status {
        mailbox: "x".into(),
        items: vec![(StatusItem::HighestModSeq, 9)],
        mailbox_id: None,
    }));
    assert!(dbg(&r).contains("HighestModSeq"), "{r:?}");

    let r = one(&data(&Data::Flags(vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
        Flag::Keyword("$Forwarded".into()),
        Flag::Keyword("not an atom".into()),
    ])));
    assert!(matches!(r, CResponse::Data(CData::Flags(ref f)) if f.len() == 6));

    assert!(matches!(one(&data(&Data::Exists(23))), CResponse::Data(CData::Exists(23))));
    assert!(matches!(one(&data(&Data::Recent(5))), CResponse::Data(CData::Recent(5))));
    assert!(matches!(one(&data(&Data::Expunge(44))), CResponse::Data(CData::Expunge(n)) if n.get() == 44));
    assert!(data(&Data::Expunge(0)).is_empty());

    let r = one(&data(&Data::Search { numbers: vec![2, 84, 882], modseq: Some(917_162_500) }));
    assert!(
        matches!(r, CResponse::Data(CData::Search(ref v, Some(m))) if v.len() == 3 && m.get() == 917_162_500)
    );
    let r = one(&data(&Data::Search { numbers: vec![], modseq: Some(1) }));
    assert!(matches!(r, CResponse::Data(CData::Search(ref v, None)) if v.is_empty()));

    let r = one(&data(&Data::Enabled(vec!["CONDSTORE".into(), "UTF8=ACCEPT".into()])));
    assert!(matches!(r, CResponse::Data(CData::Enabled { .. })));

    let r = one(&data(&Data::Namespace {
        personal: vec![NamespaceDesc { prefix: String::new(), delimiter: Some('/') }],
        other: vec![NamespaceDesc { prefix: "Other Users/".into(), delimiter: Some('/') }],
        shared: vec![],
    }));
    assert!(matches!(r, CResponse::Data(CData::Namespace { .. })), "{r:?}");

    let r =
        one(&data(&Data::Id(Some(vec![("name".into(), Some("Postfach".into())), ("vendor".into(), None)]))));
    assert!(matches!(r, CResponse::Data(CData::Id { parameters: Some(ref p) }) if p.len() == 2));
    let r = one(&data(&Data::Id(None)));
    assert!(matches!(r, CResponse::Data(CData::Id { parameters: None })));

    let r = one(&data(&Data::Vanished {
        earlier: true,
        uids: NumberSet::from_ranges([41..=41, 43..=116, 118..=118, 120..=211, 214..=540]),
    }));
    assert!(matches!(r, CResponse::Data(CData::Vanished { earlier: true, .. })));
    assert!(data(&Data::Vanished { earlier: false, uids: NumberSet::new() }).is_empty());
}

fn sample_envelope() -> Envelope {
    Envelope {
        date: Some(b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)".to_vec()),
        subject: Some(b"IMAP4rev2 WG mtg summary and minutes".to_vec()),
        from: vec![Address {
            name: Some(b"Terry Gray".to_vec()),
            adl: None,
            mailbox: Some(b"gray".to_vec()),
            host: Some(b"cac.washington.edu".to_vec()),
        }],
        sender: vec![],
        reply_to: vec![],
        to: vec![
            // Group syntax: start marker, member, end marker (RFC 9051 §7.5.2).
            Address { name: None, adl: None, mailbox: Some(b"imap".to_vec()), host: None },
            Address {
                name: Some("Jörg \"J\" Smith".as_bytes().to_vec()),
                adl: None,
                mailbox: Some(b"js".to_vec()),
                host: Some(b"example.com".to_vec()),
            },
            Address::default(),
        ],
        cc: vec![],
        bcc: vec![],
        in_reply_to: None,
        message_id: Some(b"<B27397-0100000@cac.washington.edu>".to_vec()),
    }
}

fn text_part(subtype: &[u8], size: u32, lines: u32) -> Body {
    Body::Single(SinglePart {
        media_type: b"TEXT".to_vec(),
        subtype: subtype.to_vec(),
        params: vec![(b"CHARSET".to_vec(), b"US-ASCII".to_vec())],
        id: None,
        description: None,
        encoding: b"7BIT".to_vec(),
        size,
        lines: Some(lines),
        message: None,
        ext: Some(SinglePartExt {
            md5: None,
            disposition: Some(Disposition { kind: b"inline".to_vec(), params: vec![] }),
            language: vec![b"en".to_vec(), b"de".to_vec()],
            location: None,
        }),
    })
}

fn sample_body() -> Body {
    let inner = Body::Multi(MultiPart {
        parts: vec![text_part(b"PLAIN", 100, 3), text_part(b"HTML", 200, 5)],
        subtype: b"ALTERNATIVE".to_vec(),
        ext: Some(MultiPartExt {
            params: vec![(b"BOUNDARY".to_vec(), b"xyz".to_vec())],
            disposition: None,
            language: vec![],
            location: Some(b"http://example.com/".to_vec()),
        }),
    });
    let msg = Body::Single(SinglePart {
        media_type: b"MESSAGE".to_vec(),
        subtype: b"RFC822".to_vec(),
        params: vec![],
        id: Some(b"<id@x>".to_vec()),
        description: Some(b"forwarded".to_vec()),
        encoding: b"7BIT".to_vec(),
        size: 400,
        lines: None,
        message: Some(Box::new(MessagePart {
            envelope: sample_envelope(),
            body: text_part(b"PLAIN", 50, 2),
            lines: 12,
        })),
        ext: None,
    });
    let attachment = Body::Single(SinglePart {
        media_type: b"APPLICATION".to_vec(),
        subtype: b"OCTET-STREAM".to_vec(),
        params: vec![(b"NAME".to_vec(), "bäd\r\nname".as_bytes().to_vec())],
        id: None,
        description: None,
        encoding: b"BASE64".to_vec(),
        size: 4096,
        lines: None,
        message: None,
        ext: Some(SinglePartExt {
            md5: Some(b"Q2hlY2sgSW50ZWdyaXR5IQ==".to_vec()),
            disposition: Some(Disposition {
                kind: b"attachment".to_vec(),
                params: vec![(b"filename".to_vec(), b"a.bin".to_vec())],
            }),
            language: vec![b"en".to_vec()],
            location: None,
        }),
    });
    Body::Multi(MultiPart { parts: vec![inner, msg, attachment], subtype: b"MIXED".to_vec(), ext: None })
}

#[test]
fn fetch_responses_decode() {
    let dt = DateTime::from_civil(Date::new(1996, 7, 17).unwrap(), 2, 44, 25, -420).unwrap();
    let d = Data::Fetch {
        seq: 12,
        attrs: vec![
            FetchValue::Flags(vec![Flag::Seen, Flag::Recent, Flag::Keyword("$MDNSent".into())]),
            FetchValue::Uid(4827313),
            FetchValue::InternalDate(dt),
            FetchValue::Rfc822Size(4286),
            FetchValue::ModSeq(12_121_231_000),
            FetchValue::Envelope(Box::new(sample_envelope())),
            FetchValue::BodyStructure(sample_body()),
            FetchValue::Body(sample_body()),
            FetchValue::BodySection {
                section: Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFields(vec!["DATE".into(), "FROM".into()])),
                },
                origin: None,
                data: Some(b"Date: x\r\nFrom: y\r\n\r\n".to_vec()),
            },
            FetchValue::BodySection {
                section: Section { part: vec![nz(1), nz(2)], text: Some(SectionText::Mime) },
                origin: Some(0),
                data: None,
            },
            FetchValue::BodySection { section: Section::default(), origin: None, data: Some(b"".to_vec()) },
            FetchValue::Binary {
                section: Section { part: vec![nz(3)], text: None },
                origin: None,
                data: Some(b"\0\x01binary".to_vec()),
            },
            FetchValue::Binary {
                section: Section::default(),
                origin: None,
                data: Some(b"text only".to_vec()),
            },
            FetchValue::BinarySize { section: Section { part: vec![nz(3)], text: None }, size: Some(2) },
            FetchValue::Rfc822Header(Some(b"Subject: x\r\n\r\n".to_vec())),
            FetchValue::Rfc822Text(None),
            FetchValue::Rfc822(Some("8-bit ü body".as_bytes().to_vec())),
        ],
    };
    let bytes = data(&d);
    let r = one(&bytes);
    let CResponse::Data(CData::Fetch { seq, items }) = &r else { panic!("{r:?}") };
    assert_eq!(seq.get(), 12);
    assert_eq!(items.as_ref().len(), 17);
    let s = dbg(&r);
    assert!(s.contains("Uid(4827313)"), "{s}");
    assert!(s.contains("Rfc822Size(4286)"), "{s}");
    assert!(s.contains("ModSeq(12121231000)"), "{s}");
    // INTERNALDATE survives with its zone.
    assert!(s.contains("1996-07-17T02:44:25-07:00"), "{s}");

    // A FETCH with only unwritable items is dropped; UID 0 is filtered out.
    assert!(data(&Data::Fetch { seq: 1, attrs: vec![FetchValue::Uid(0)] }).is_empty());
    assert!(data(&Data::Fetch { seq: 0, attrs: vec![FetchValue::Uid(1)] }).is_empty());
}

#[test]
fn utf8_mode_writes_utf8_names() {
    let mut out = Vec::new();
    write_data(
        &mut out,
        &Data::List { attributes: vec![], delimiter: Some('/'), name: "Entwürfe".into(), extended: vec![] },
        WriteOptions { utf8: true, ..WriteOptions::default() },
    );
    assert_eq!(out, "* LIST () \"/\" \"Entwürfe\"\r\n".as_bytes());
}

/// Encodes `body` with imap-codec, frames and parses it with ours.
fn via_codec(body: imap_codec::imap_types::command::CommandBody<'static>) -> Command {
    let cmd = imap_codec::imap_types::command::Command::new("C1", body).unwrap();
    let bytes = CommandCodec::default().encode(&cmd).dump();
    let mut f = Framer::new(FramingLimits::default());
    f.push(&bytes);
    loop {
        match f.next() {
            Some(FrameEvent::Command(c)) => {
                return parse_command(&c)
                    .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(&bytes)));
            }
            Some(FrameEvent::NeedContinuation) => continue,
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(&bytes)),
        }
    }
}

#[test]
fn commands_encoded_by_imap_codec_parse_the_same() {
    use imap_codec::imap_types::command::CommandBody as C;
    use imap_codec::imap_types::fetch::{Macro, MacroOrMessageDataItemNames, MessageDataItemName};
    use imap_codec::imap_types::flag::{Flag as CFlag, StoreResponse, StoreType};
    use imap_codec::imap_types::search::SearchKey as CKey;
    use imap_codec::imap_types::status::StatusDataItemName;

    let c = via_codec(C::login("alice", "p a\"ss\\w").unwrap());
    assert_eq!(c.tag.as_str(), "C1");
    match c.body {
        CommandBody::Login { username, password } => {
            assert_eq!(username, b"alice");
            assert_eq!(password.expose_secret(), b"p a\"ss\\w");
        }
        b => panic!("{b:?}"),
    }

    // A password with CR forces a literal.
    let c = via_codec(
        C::login("bob", imap_codec::imap_types::core::Literal::try_from(&b"x\ry"[..]).unwrap()).unwrap(),
    );
    assert!(matches!(c.body, CommandBody::Login { password, .. } if password.expose_secret() == b"x\ry"));

    match via_codec(C::select("inbox").unwrap()).body {
        CommandBody::Select { mailbox, params } => {
            assert_eq!(mailbox.decode(false).unwrap(), "INBOX");
            assert_eq!(params, SelectParams::default());
        }
        b => panic!("{b:?}"),
    }
    match via_codec(C::rename("a b", "Entw&APw-rfe").unwrap()).body {
        CommandBody::Rename { from, to } => {
            assert_eq!(from.as_bytes(), b"a b");
            assert_eq!(to.decode(false).unwrap(), "Entwürfe");
        }
        b => panic!("{b:?}"),
    }
    match via_codec(C::list("", "%").unwrap()).body {
        CommandBody::List(l) => assert_eq!(l.patterns[0].as_bytes(), b"%"),
        b => panic!("{b:?}"),
    }
    match via_codec(
        C::status(
            "Sent",
            vec![StatusDataItemName::Messages, StatusDataItemName::UidNext, StatusDataItemName::Unseen],
        )
        .unwrap(),
    )
    .body
    {
        CommandBody::Status { items, .. } => {
            assert_eq!(items, vec![StatusItem::Messages, StatusItem::UidNext, StatusItem::Unseen])
        }
        b => panic!("{b:?}"),
    }

    match via_codec(
        C::fetch(
            "1:5,7",
            MacroOrMessageDataItemNames::MessageDataItemNames(vec![
                MessageDataItemName::Uid,
                MessageDataItemName::Flags,
                MessageDataItemName::BodyExt { section: None, partial: Some((10, nz(20))), peek: true },
            ]),
            true,
        )
        .unwrap(),
    )
    .body
    {
        CommandBody::Fetch { kind, set, items, .. } => {
            assert_eq!(kind, CommandKind::Uid);
            assert_eq!(set.resolve(100).unwrap().to_string(), "1:5,7");
            assert_eq!(
                items,
                FetchItems::Attributes(vec![
                    FetchAttribute::Uid,
                    FetchAttribute::Flags,
                    FetchAttribute::BodySection {
                        peek: true,
                        section: Section::default(),
                        partial: Some(Partial { offset: 10, length: nz(20) })
                    }
                ])
            );
        }
        b => panic!("{b:?}"),
    }
    assert!(matches!(
        via_codec(C::fetch("*", Macro::Full, false).unwrap()).body,
        CommandBody::Fetch { items: FetchItems::Full, kind: CommandKind::Seq, .. }
    ));

    match via_codec(
        C::store(
            "2:4",
            StoreType::Add,
            StoreResponse::Silent,
            vec![CFlag::Deleted, CFlag::Keyword("$Junk".try_into().unwrap())],
            false,
        )
        .unwrap(),
    )
    .body
    {
        CommandBody::Store { action, .. } => assert_eq!(
            action,
            StoreAction {
                op: StoreOp::Add,
                silent: true,
                flags: vec![Flag::Deleted, Flag::Keyword("$Junk".into())]
            }
        ),
        b => panic!("{b:?}"),
    }

    let criteria = vec![
        CKey::Unseen,
        CKey::Or(Box::new(CKey::From("alice".try_into().unwrap())), Box::new(CKey::Larger(1000))),
        CKey::Not(Box::new(CKey::Subject(
            imap_codec::imap_types::core::AString::try_from("hi there").unwrap(),
        ))),
    ];
    match via_codec(C::search(None, criteria.try_into().unwrap(), true)).body {
        CommandBody::Search { kind, criteria, .. } => {
            assert_eq!(kind, CommandKind::Uid);
            assert_eq!(
                criteria,
                vec![
                    SearchKey::Unseen,
                    SearchKey::Or(
                        Box::new(SearchKey::From(b"alice".to_vec())),
                        Box::new(SearchKey::Larger(1000))
                    ),
                    SearchKey::Not(Box::new(SearchKey::Subject(b"hi there".to_vec())))
                ]
            );
        }
        b => panic!("{b:?}"),
    }

    match via_codec(
        C::append("Drafts", vec![CFlag::Draft], None, &b"Subject: hi\r\n\r\nbody\r\n"[..]).unwrap(),
    )
    .body
    {
        CommandBody::Append { mailbox, messages } => {
            assert_eq!(mailbox.as_bytes(), b"Drafts");
            assert_eq!(messages.len(), 1);
            assert_eq!(messages[0].flags, vec![Flag::Draft]);
            assert_eq!(messages[0].data.literal().unwrap(), &b"Subject: hi\r\n\r\nbody\r\n"[..]);
        }
        b => panic!("{b:?}"),
    }

    match via_codec(
        C::copy("$", "Archive", false).unwrap_or_else(|_| C::copy("1", "Archive", false).unwrap()),
    )
    .body
    {
        CommandBody::Copy { mailbox, .. } => assert_eq!(mailbox.as_bytes(), b"Archive"),
        b => panic!("{b:?}"),
    }
}

/// Commands that imap-codec parses must parse with ours as well (same bytes).
#[test]
fn commands_imap_codec_accepts_we_accept() {
    let lines: &[&[u8]] = &[
        b"a1 CAPABILITY\r\n",
        b"a2 LOGIN \"user\" {4}\r\npass\r\n",
        b"a3 SELECT \"INBOX\"\r\n",
        b"a4 FETCH 1:* (FLAGS BODY.PEEK[1.2.HEADER.FIELDS.NOT (X-A \"X-B\")]<0.100>)\r\n",
        b"a5 UID SEARCH CHARSET UTF-8 OR SEEN (NOT DELETED SINCE 1-Jan-2024)\r\n",
        b"a6 STORE 1,2,3 -FLAGS.SILENT (\\Seen \\Answered)\r\n",
        b"a7 APPEND INBOX (\\Seen) \"01-Jan-2024 10:00:00 +0100\" {5}\r\nhello\r\n",
        b"a8 EXAMINE Trash\r\n",
        b"a9 ID (\"name\" \"x\")\r\n",
        b"b1 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)\r\n",
        b"b2 UID FETCH 1 BINARY.PEEK[1]<0.10>\r\n",
        b"b3 ENABLE IMAP4rev2\r\n",
        b"b4 SEARCH HEADER Message-ID <x@y> SENTBEFORE 02-Feb-2020\r\n",
    ];
    for line in lines {
        let (rest, _) = CommandCodec::default()
            .decode(line)
            .unwrap_or_else(|e| panic!("oracle rejects {:?}: {e:?}", String::from_utf8_lossy(line)));
        assert!(rest.is_empty());
        let body = &line[..line.len() - 2];
        parse_command(body).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(line)));
    }
}

/// The oracle itself must be strict, or the tests above prove nothing.
#[test]
fn oracle_rejects_invalid_responses() {
    for bad in [
        &b"* 0 EXPUNGE\r\n"[..],
        b"A1 OK\r\n",
        b"* LIST () \"/\" a b\r\n",
        b"* 1 FETCH ()\r\n",
        b"* FLAGS (\\Seen\r\n",
        b"* CAPABILITY IMAP4rev1 \r\n",
    ] {
        assert!(
            ResponseCodec::default().decode(bad).is_err(),
            "oracle accepted {:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn quota_responses_decode() {
    use imap_codec::imap_types::extensions::quota::Resource;
    let r = one(&data(&Data::Quota {
        root: "!partition/sda4".into(),
        resources: vec![("STORAGE".into(), 104, 10_923_847), ("X-FOO".into(), 1, 2)],
    }));
    match r {
        CResponse::Data(CData::Quota { root, quotas }) => {
            assert_eq!(root.as_ref(), b"!partition/sda4");
            let quotas = quotas.into_inner();
            assert_eq!(quotas.len(), 2);
            assert_eq!(
                (&quotas[0].resource, quotas[0].usage, quotas[0].limit),
                (&Resource::Storage, 104, 10_923_847)
            );
            assert_eq!(quotas[1].resource.to_string(), "X-FOO");
        }
        r => panic!("{r:?}"),
    }
    let r = one(&data(&Data::Quota { root: "".into(), resources: vec![("MESSAGE".into(), 42, 1000)] }));
    assert!(matches!(r, CResponse::Data(CData::Quota { .. })), "{r:?}");

    let r = one(&data(&Data::QuotaRoot {
        mailbox: "Entwürfe".into(),
        roots: vec!["#user/alice".into(), "".into(), "a b".into()],
    }));
    match r {
        CResponse::Data(CData::QuotaRoot { mailbox, roots }) => {
            assert!(format!("{mailbox:?}").contains("Entw&APw-rfe"), "{mailbox:?}");
            let roots: Vec<&[u8]> = roots.iter().map(|r| r.as_ref()).collect();
            assert_eq!(roots, vec![&b"#user/alice"[..], b"", b"a b"]);
        }
        r => panic!("{r:?}"),
    }
    let r = one(&data(&Data::QuotaRoot { mailbox: "comp.mail.mime".into(), roots: vec![] }));
    assert!(matches!(r, CResponse::Data(CData::QuotaRoot { ref roots, .. }) if roots.is_empty()), "{r:?}");

    // RFC 9208 §4.1.4.
    let r = one(&data(&Data::Status {
        mailbox: "INBOX".into(),
        items: vec![(StatusItem::Messages, 12), (StatusItem::Deleted, 4), (StatusItem::DeletedStorage, 8)],
        mailbox_id: None,
    }));
    assert!(matches!(r, CResponse::Data(CData::Status { ref items, .. }) if items.len() == 3), "{r:?}");
}

#[test]
fn quota_commands_encoded_by_imap_codec_parse_the_same() {
    use imap_codec::imap_types::command::CommandBody as C;
    use imap_codec::imap_types::core::AString;
    use imap_codec::imap_types::extensions::quota::{QuotaSet, Resource};
    use imap_codec::imap_types::mailbox::Mailbox;
    use imap_codec::imap_types::status::StatusDataItemName;

    let root = |s: &'static str| AString::try_from(s).unwrap();
    assert_eq!(
        via_codec(C::GetQuota { root: root("#user/alice") }).body,
        CommandBody::GetQuota("#user/alice".into())
    );
    assert_eq!(via_codec(C::GetQuota { root: root("") }).body, CommandBody::GetQuota("".into()));
    assert_eq!(
        via_codec(C::GetQuotaRoot { mailbox: Mailbox::try_from("inbox").unwrap() }).body,
        CommandBody::GetQuotaRoot(WireMailboxName::new(b"INBOX".to_vec()))
    );
    assert_eq!(
        via_codec(C::SetQuota {
            root: root("!partition/sda4"),
            quotas: vec![
                QuotaSet::new(Resource::Storage, 99_999_999),
                QuotaSet::new(Resource::try_from("x-foo").unwrap(), 0),
            ],
        })
        .body,
        CommandBody::SetQuota {
            root: "!partition/sda4".into(),
            limits: vec![("STORAGE".into(), 99_999_999), ("X-FOO".into(), 0)]
        }
    );
    assert_eq!(
        via_codec(C::SetQuota { root: root("a b"), quotas: vec![] }).body,
        CommandBody::SetQuota { root: "a b".into(), limits: vec![] }
    );
    match via_codec(
        C::status("INBOX", vec![StatusDataItemName::Deleted, StatusDataItemName::DeletedStorage]).unwrap(),
    )
    .body
    {
        CommandBody::Status { items, .. } => {
            assert_eq!(items, vec![StatusItem::Deleted, StatusItem::DeletedStorage])
        }
        b => panic!("{b:?}"),
    }
}

#[test]
fn metadata_responses_decode() {
    use imap_codec::imap_types::extensions::metadata::{MetadataCode as CCode, MetadataResponse};
    use imap_codec::imap_types::response::Code as CCodeAll;
    let r = one(&data(&Data::Metadata {
        mailbox: "".into(),
        entries: vec![
            ("/shared/comment".into(), Some(b"Shared comment".to_vec())),
            ("/shared/x y".into(), Some(b"two\r\nlines".to_vec())),
            ("/private/blob".into(), Some(b"a\0b".to_vec())),
            ("/private/gone".into(), None),
            ("/private/empty".into(), Some(Vec::new())),
        ],
    }));
    match r {
        CResponse::Data(CData::Metadata { items: MetadataResponse::WithValues(values), .. }) => {
            assert_eq!(values.into_inner().len(), 5);
        }
        r => panic!("{r:?}"),
    }
    let r = one(&data(&Data::Metadata {
        mailbox: "Entwürfe".into(),
        entries: vec![("/private/comment".into(), Some("Grüße".as_bytes().to_vec()))],
    }));
    assert!(matches!(r, CResponse::Data(CData::Metadata { .. })), "{r:?}");

    let tag = Tag::new("a").unwrap();
    for (code, expected) in [
        (MetadataCode::LongEntries(2199), CCode::LongEntries(2199)),
        (MetadataCode::MaxSize(1024), CCode::MaxSize(1024)),
        (MetadataCode::TooMany, CCode::TooMany),
        (MetadataCode::NoPrivate, CCode::NoPrivate),
    ] {
        let mut out = Vec::new();
        write_tagged(&mut out, &tag, Completion::No, Some(&Code::Metadata(code)), "SETMETADATA failed");
        match one(&out) {
            CResponse::Status(CStatus::Tagged(t)) => {
                assert_eq!(t.body.code, Some(CCodeAll::Metadata(expected)), "{code:?}")
            }
            r => panic!("{r:?}"),
        }
    }
}

#[test]
fn metadata_commands_encoded_by_imap_codec_parse_the_same() {
    use imap_codec::imap_types::command::CommandBody as C;
    use imap_codec::imap_types::core::{AString, NString, NString8, Vec1};
    use imap_codec::imap_types::extensions::binary::Literal8;
    use imap_codec::imap_types::extensions::metadata::{Depth, Entry, EntryValue, GetMetadataOption};
    use imap_codec::imap_types::mailbox::Mailbox;

    let entry = |s: &'static str| Entry::try_from(AString::try_from(s).unwrap()).unwrap();
    let body = via_codec(C::GetMetadata {
        options: vec![GetMetadataOption::MaxSize(1024), GetMetadataOption::Depth(Depth::Infinity)],
        mailbox: Mailbox::try_from("INBOX").unwrap(),
        entries: Vec1::try_from(vec![entry("/shared/comment"), entry("/private")]).unwrap(),
    })
    .body;
    assert_eq!(
        body,
        CommandBody::GetMetadata {
            mailbox: WireMailboxName::new(b"INBOX".to_vec()),
            max_size: Some(1024),
            depth: MetadataDepth::Infinity,
            entries: vec!["/shared/comment".into(), "/private".into()],
        }
    );
    let body = via_codec(C::SetMetadata {
        mailbox: Mailbox::try_from("").unwrap(),
        entry_values: Vec1::try_from(vec![
            EntryValue {
                entry: entry("/private/comment"),
                value: NString8::NString(NString::try_from("My new comment").unwrap()),
            },
            EntryValue { entry: entry("/shared/comment"), value: NString8::NString(NString(None)) },
            EntryValue {
                entry: entry("/private/vendor/acme/blob"),
                value: NString8::Literal8(Literal8 {
                    data: b"a\0b".as_slice().into(),
                    mode: imap_codec::imap_types::core::LiteralMode::Sync,
                }),
            },
        ])
        .unwrap(),
    })
    .body;
    assert_eq!(
        body,
        CommandBody::SetMetadata {
            mailbox: WireMailboxName::new(b"".to_vec()),
            entries: vec![
                ("/private/comment".into(), Some(b"My new comment".to_vec())),
                ("/shared/comment".into(), None),
                ("/private/vendor/acme/blob".into(), Some(b"a\0b".to_vec())),
            ],
        }
    );
}
