//! Criterion micro-benchmarks of the wire layer: the command parser and the response writer.
//!
//! The inputs are what a busy server sees most: mail-client LOGIN/FETCH/STORE/SEARCH/SELECT
//! commands, a long sparse UID set, and the responses they produce (FETCH FLAGS lines, an
//! ENVELOPE plus BODYSTRUCTURE of a multipart message, LIST and STATUS). Run with
//! `cargo bench -p postfach-proto --bench wire`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use postfach_proto::{
    Address, Body, Data, Envelope, FetchValue, Flag, MultiPart, SinglePart, StatusItem, WriteOptions,
    parse_command, write_data,
};

const COMMANDS: &[(&str, &[u8])] = &[
    ("noop", b"a1 NOOP"),
    ("login", b"a2 LOGIN \"bench1\" \"benchpass\""),
    (
        "fetch_headers",
        b"a3 UID FETCH 1:20 (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])",
    ),
    ("fetch_all", b"a4 FETCH 1:* (ENVELOPE BODYSTRUCTURE)"),
    ("store", b"a5 UID STORE 4827,4830:4835 +FLAGS.SILENT (\\Seen \\Flagged $Forwarded)"),
    ("search", b"a6 UID SEARCH CHARSET UTF-8 TEXT \"quokkafjord\" SINCE 1-Feb-2024 NOT DELETED"),
    ("select_qresync", b"a7 SELECT \"INBOX\" (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
];

fn long_uid_set() -> Vec<u8> {
    // A CONDSTORE/QRESYNC client's sparse UID set, about 8 KiB (RFC 7162 §4).
    let mut line = b"a8 UID FETCH ".to_vec();
    for i in 0..900u32 {
        if i > 0 {
            line.push(b',');
        }
        line.extend_from_slice(format!("{}", i * 7 + 1).as_bytes());
    }
    line.extend_from_slice(b" (FLAGS)");
    line
}

fn parser(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_command");
    for (name, input) in COMMANDS {
        // The parser takes one command as the framer yields it (without CRLF); it must accept
        // every input here.
        assert!(parse_command(input).is_ok(), "{name} does not parse");
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(*name, |b| b.iter(|| parse_command(black_box(input))));
    }
    let long = long_uid_set();
    assert!(parse_command(&long).is_ok(), "long UID set does not parse");
    group.throughput(Throughput::Bytes(long.len() as u64));
    group.bench_function("long_uid_set", |b| b.iter(|| parse_command(black_box(&long))));
    group.finish();
}

fn addr(name: &str, mailbox: &str, host: &str) -> Address {
    Address {
        name: Some(name.as_bytes().to_vec()),
        adl: None,
        mailbox: Some(mailbox.as_bytes().to_vec()),
        host: Some(host.as_bytes().to_vec()),
    }
}

fn text_part(subtype: &str, size: u32) -> Body {
    Body::Single(SinglePart {
        media_type: b"TEXT".to_vec(),
        subtype: subtype.as_bytes().to_vec(),
        params: vec![(b"CHARSET".to_vec(), b"utf-8".to_vec())],
        id: None,
        description: None,
        encoding: b"8BIT".to_vec(),
        size,
        lines: Some(size / 60),
        message: None,
        ext: None,
    })
}

fn envelope_and_structure() -> Vec<FetchValue> {
    let envelope = Envelope {
        date: Some(b"3 Feb 2024 10:17:00 +0000".to_vec()),
        subject: Some(b"quarter report draft please review".to_vec()),
        from: vec![addr("Alice Example", "alice", "example.org")],
        sender: vec![addr("Alice Example", "alice", "example.org")],
        reply_to: vec![addr("Alice Example", "alice", "example.org")],
        to: vec![addr("Bob Builder", "bob", "example.net"), addr("Carol", "carol", "example.com")],
        cc: vec![],
        bcc: vec![],
        in_reply_to: None,
        message_id: Some(b"<17.3fa9@bench.example>".to_vec()),
    };
    let alternative = Body::Multi(MultiPart {
        parts: vec![text_part("PLAIN", 2048), text_part("HTML", 4096)],
        subtype: b"ALTERNATIVE".to_vec(),
        ext: None,
    });
    let attachment = Body::Single(SinglePart {
        media_type: b"APPLICATION".to_vec(),
        subtype: b"PDF".to_vec(),
        params: vec![(b"NAME".to_vec(), b"report.pdf".to_vec())],
        id: None,
        description: None,
        encoding: b"BASE64".to_vec(),
        size: 180_000,
        lines: None,
        message: None,
        ext: None,
    });
    let structure = Body::Multi(MultiPart {
        parts: vec![alternative, attachment],
        subtype: b"MIXED".to_vec(),
        ext: None,
    });
    vec![FetchValue::Envelope(Box::new(envelope)), FetchValue::BodyStructure(structure)]
}

fn writer(c: &mut Criterion) {
    let opts = WriteOptions { utf8: true, ..WriteOptions::default() };
    let mut group = c.benchmark_group("write_data");
    let flags = Data::Fetch {
        seq: 4711,
        attrs: vec![
            FetchValue::Uid(98_231),
            FetchValue::Flags(vec![Flag::Seen, Flag::Keyword("$Forwarded".into())]),
        ],
    };
    let full = Data::Fetch { seq: 4711, attrs: envelope_and_structure() };
    let list = Data::List {
        attributes: vec![],
        delimiter: Some('/'),
        name: "Archive/2024/Projekte Ä".into(),
        extended: vec![],
    };
    let status = Data::Status {
        mailbox: "INBOX".into(),
        items: vec![(StatusItem::Messages, 10_000), (StatusItem::UidNext, 10_001), (StatusItem::Unseen, 17)],
        mailbox_id: None,
    };
    let mut out = Vec::with_capacity(4096);
    for (name, data) in [
        ("fetch_flags", &flags),
        ("fetch_envelope_bodystructure", &full),
        ("list", &list),
        ("status", &status),
    ] {
        out.clear();
        write_data(&mut out, data, opts);
        group.throughput(Throughput::Bytes(out.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                write_data(&mut out, black_box(data), opts);
            })
        });
    }
    // What `UID FETCH 1:* (FLAGS)` writes for a 10,000-message mailbox.
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("fetch_flags_x10000", |b| {
        b.iter(|| {
            out.clear();
            for seq in 1..=10_000u32 {
                let d = Data::Fetch {
                    seq,
                    attrs: vec![FetchValue::Uid(seq), FetchValue::Flags(vec![Flag::Seen])],
                };
                write_data(&mut out, &d, opts);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parser, writer);
criterion_main!(benches);
