//! Criterion micro-benchmarks of message parsing: raw bytes → `MessageSummary` (ENVELOPE and the
//! BODYSTRUCTURE tree with part offsets), which APPEND pays once per message.
//!
//! Inputs: every file of the golden corpus (`tests/corpus/*.eml`, small and odd messages) and
//! three generated shapes that dominate real mailboxes: a plain text mail, a multipart/alternative
//! newsletter, and a 1 MiB multipart/mixed with a base64 attachment (where the cost should follow
//! the MIME structure, not the attachment bytes). Run with
//! `cargo bench -p postfach-message --bench bodystructure`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn generated(kind: &str, body_bytes: usize) -> Vec<u8> {
    let mut m = b"From: \"Alice Example\" <alice@example.org>\r\nTo: bob@example.net, \"Carol\" <carol@example.com>\r\n\
Subject: =?UTF-8?Q?Quartalsbericht_f=C3=BCr_Q3?=\r\nDate: 3 Feb 2024 10:17:00 +0000\r\n\
Message-ID: <17.3fa9@bench.example>\r\nMIME-Version: 1.0\r\n"
        .to_vec();
    let line = b"the meeting report for the quarter budget please review attached draft thanks\r\n";
    let text = |m: &mut Vec<u8>, n: usize| {
        for _ in 0..n / line.len() {
            m.extend_from_slice(line);
        }
    };
    match kind {
        "plain" => {
            m.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n\r\n");
            text(&mut m, body_bytes);
        }
        "alternative" => {
            m.extend_from_slice(b"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\n");
            m.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n\r\n");
            text(&mut m, body_bytes / 2);
            m.extend_from_slice(b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n");
            text(&mut m, body_bytes / 2);
            m.extend_from_slice(b"</body></html>\r\n--b1--\r\n");
        }
        _ => {
            m.extend_from_slice(b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n");
            m.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n\r\n");
            text(&mut m, 2048);
            m.extend_from_slice(
                b"--outer\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            );
            let b64 = b"JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29kZT4+\r\n";
            for _ in 0..body_bytes / b64.len() {
                m.extend_from_slice(b64);
            }
            m.extend_from_slice(b"--outer--\r\n");
        }
    }
    m
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, kind, size) in [
        ("plain_4k", "plain", 4 * 1024),
        ("alternative_32k", "alternative", 32 * 1024),
        ("attachment_1m", "mixed", 1 << 20),
    ] {
        let raw = generated(kind, size);
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function(name, |b| b.iter(|| postfach_message::parse(black_box(&raw))));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect()
        })
        .unwrap_or_default();
    files.sort();
    let corpus: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    let total: usize = corpus.iter().map(Vec::len).sum();
    if !corpus.is_empty() {
        group.throughput(Throughput::Bytes(total as u64));
        group.bench_function("golden_corpus", |b| {
            b.iter(|| {
                for raw in &corpus {
                    black_box(postfach_message::parse(black_box(raw)));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
