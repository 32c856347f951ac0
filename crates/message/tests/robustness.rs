//! `parse` and the section functions never panic and stay bounded: every truncation of every
//! corpus message, pseudo-random input, hostile nesting and part counts, and a 1 MiB message.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use postfach_message::structure::{MAX_DEPTH, MAX_PARTS};
use postfach_message::{BodyPart, MessageSummary, PartKind, SectionText, binary, parse, section};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = format!("{}/tests/corpus", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    assert!(files.len() >= 12, "corpus missing in {dir}");
    files.into_iter().map(|p| (p.display().to_string(), std::fs::read(&p).unwrap())).collect()
}

/// Walks the tree checking that every range lies inside the message.
fn check(raw: &[u8], part: &BodyPart) -> usize {
    assert!(part.header.start <= part.header.end && part.header.end <= part.body.start);
    assert!(part.body.start <= part.body.end && part.body.end as usize <= raw.len());
    match &part.kind {
        PartKind::Leaf => 1,
        PartKind::Multipart(children) => 1 + children.iter().map(|c| check(raw, c)).sum::<usize>(),
        PartKind::Message(nested) => 1 + check(raw, &nested.structure),
    }
}

/// Nesting depth of the tree (a leaf root is 0).
fn depth(part: &BodyPart) -> usize {
    match &part.kind {
        PartKind::Leaf => 0,
        PartKind::Multipart(children) => 1 + children.iter().map(depth).max().unwrap_or(0),
        PartKind::Message(nested) => 1 + depth(&nested.structure),
    }
}

/// Parses and asks for a spread of sections; any panic fails the test.
fn exercise(raw: &[u8]) -> MessageSummary {
    let s = parse(raw);
    check(raw, &s.structure);
    section_all(raw, &s);
    s
}

/// Asks for a spread of sections of `raw` using the summary `s`.
fn section_all(raw: &[u8], s: &MessageSummary) {
    let names = vec![b"subject".to_vec(), b"content-type".to_vec()];
    let texts = [
        SectionText::Full,
        SectionText::Header,
        SectionText::HeaderFields(&names),
        SectionText::HeaderFieldsNot(&names),
        SectionText::Text,
        SectionText::Mime,
    ];
    for part in [&[][..], &[1], &[2], &[1, 1], &[1, 2], &[2, 1], &[3, 1, 1], &[0], &[u32::MAX]] {
        for text in texts {
            let _ = section(raw, s, part, text);
        }
        let _ = binary(raw, s, part);
    }
}

#[test]
fn every_truncation_of_the_corpus_parses() {
    for (name, raw) in corpus() {
        let lf: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\r').collect();
        for variant in [&raw, &lf] {
            let whole = parse(variant);
            for len in 0..=variant.len() {
                let s = exercise(&variant[..len]);
                assert!(s.structure.body.end as usize <= len, "{name} at {len}");
                // A summary paired with the wrong (shorter) bytes must not panic either.
                section_all(&variant[..len], &whole);
            }
        }
    }
}

/// A small deterministic generator (Knuth's MMIX LCG), so failures reproduce without a crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_input_parses() {
    // Fragments that steer random input into the interesting paths of the parser.
    const PIECES: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b"--b",
        b"--b--",
        b"--c\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b"Content-Type: multipart/digest; boundary=c\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Type: text/plain; charset*0*=utf-8''%C3; charset*1=x\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"Content-Disposition: attachment; filename=\"a\\\"b\"\r\n",
        b"From: \"a\" <b@c>, d:e@f;\r\n",
        b"To: <@r:x@y>, (c (n)) z@[1.2.3.4]\r\n",
        b"Subject: =?utf-8?q?a_b?= =?utf-8?b?w6k=?=\r\n",
        b"Date: Tue, 29 Feb 2000 25:61:61 +9999\r\n",
        b" folded\r\n",
        b":",
        b"\"",
        b"(",
        b"<",
        b"=",
        b"=?",
    ];
    let mut rng = Lcg(0x5eed);
    for round in 0..400 {
        let mut raw = Vec::new();
        let pieces = rng.below(60);
        for _ in 0..pieces {
            if round % 4 == 0 || rng.below(3) == 0 {
                // Plain random bytes, including NUL, CR, LF and 8-bit.
                for _ in 0..rng.below(12) {
                    raw.push(rng.next() as u8);
                }
            } else {
                raw.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
        }
        exercise(&raw);
    }
}

/// Runs `f` on a thread with a stack of `kib` KiB: recursion must stay bounded whatever the input.
fn on_stack<T: Send + 'static>(kib: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(kib * 1024).spawn(f).unwrap().join().unwrap()
}

/// Parsing, walking and sections at the depth limit fit a small stack even unoptimised; the
/// serde_json round trip (derive code, unoptimised) needs more, but under half of the 2 MiB a
/// tokio worker thread has.
fn deep_input_is_bounded(raw: Vec<u8>) {
    let s = on_stack(256, move || {
        let s = exercise(&raw);
        assert_eq!(depth(&s.structure), MAX_DEPTH);
        s
    });
    on_stack(1024, move || {
        // serde_json also refuses input nested deeper than 128 levels.
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<MessageSummary>(&json).unwrap(), s);
    });
}

#[test]
fn deeply_nested_messages_are_cut_at_max_depth() {
    let mut raw = b"Content-Type: message/rfc822\r\n\r\n".repeat(20_000);
    raw.extend_from_slice(b"Subject: deep\r\n\r\nbody\r\n");
    deep_input_is_bounded(raw);
}

#[test]
fn deeply_nested_multiparts_are_cut_at_max_depth() {
    let mut raw = Vec::new();
    for i in 0..20_000 {
        raw.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    raw.extend_from_slice(b"\r\ninnermost\r\n");
    deep_input_is_bounded(raw);
}

#[test]
fn part_count_is_bounded() {
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    raw.extend_from_slice(&b"--b\r\n\r\nx\r\n".repeat(MAX_PARTS * 3));
    raw.extend_from_slice(b"--b--\r\n");
    let s = parse(&raw);
    let total = check(&raw, &s.structure);
    assert!(total <= MAX_PARTS, "{total} parts");
    assert!(total >= MAX_PARTS - 1);
}

#[test]
fn one_mebibyte_message_parses_quickly() {
    let mut raw =
        b"From: a@example.com\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n\
        --zz\r\nContent-Type: text/plain\r\n\r\n"
            .to_vec();
    for i in 0..6_000 {
        raw.extend_from_slice(
            format!("line {i} of some ordinary text in the body of the message\r\n").as_bytes(),
        );
    }
    raw.extend_from_slice(
        b"--zz\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    while raw.len() < 1 << 20 {
        raw.extend_from_slice(
            b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n",
        );
    }
    raw.extend_from_slice(b"--zz--\r\n");
    let start = Instant::now();
    let s = parse(&raw);
    let elapsed = start.elapsed();
    assert_eq!(check(&raw, &s.structure), 3);
    // A few ms in release; the generous bound keeps unoptimised test builds from flaking.
    assert!(elapsed.as_millis() < 500, "parse took {elapsed:?}");
    eprintln!("1 MiB parse: {elapsed:?}");
    // The summary holds offsets, not body bytes.
    let blob = serde_json::to_vec(&s).unwrap();
    assert!(blob.len() < 2048, "summary is {} bytes", blob.len());
}
