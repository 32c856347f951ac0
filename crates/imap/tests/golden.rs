//! Golden FETCH output for the tricky-message corpus, rendered through the real session.
//!
//! Every message of `crates/message/tests/corpus/` (plus a few generated ones: an enormous
//! header, a message that is nothing but bytes, NUL bytes in a body) is appended and fetched
//! with ENVELOPE, BODYSTRUCTURE, BODY and a set of sections; the responses are compared byte for
//! byte with `tests/golden/<name>.txt`. `POSTFACH_BLESS=1 cargo test -p postfach-imap --test
//! golden` rewrites the golden files after a deliberate change; review the diff before keeping it.
//!
//! Known, deliberate choices visible in the goldens (where RFC 9051 leaves room):
//! - a multipart whose boundary never occurs is shown as TEXT/PLAIN over the whole body, its
//!   Content-Type parameters kept (`18-wrong-boundary`);
//! - input without any header field is all body: an empty header, TEXT/PLAIN (`g2-only-garbage`);
//! - a `message/rfc822` part is only descended into when it is not transfer-encoded.
//!
//! Not yet compared item by item with Dovecot's output for the same messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use postfach_imap::{ConnInfo, Out, Session, Transport};

/// The items fetched for every message: structure, the whole-message sections, and the first
/// part in every form.
const ITEMS: &str = "(ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[TEXT] \
     BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[1]<2.5> \
     BINARY.SIZE[1] PREVIEW)";

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../message/tests/corpus");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    let mut huge = b"Subject: enormous header\r\nX-Long: ".to_vec();
    for i in 0..2000 {
        huge.extend_from_slice(format!("word{i}\r\n ").as_bytes());
    }
    huge.extend_from_slice(b"end\r\nTo: a@b\r\n\r\nbody\r\n");
    files.push(("g1-enormous-header".into(), huge));
    files.push(("g2-only-garbage".into(), b"\x00\xff\xfe not a message at all".to_vec()));
    files.push(("g3-nul-in-body".into(), b"Subject: nul\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\na\x00b\r\n".to_vec()));
    files
}

async fn session() -> (tempfile::TempDir, Session) {
    let (dir, ctx) = common::context(4 * 1024 * 1024).await;
    let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut s = Session::new(ctx, ConnInfo { peer, transport: Transport::Tls });
    s.greeting(&mut Out::new());
    (dir, s)
}

async fn send(s: &mut Session, bytes: Vec<u8>) -> Vec<u8> {
    let mut out = Out::new();
    s.handle(bytes, &mut out).await;
    out.take()
}

#[tokio::test]
async fn corpus_matches_golden_fetch_output() {
    let bless = std::env::var("POSTFACH_BLESS").is_ok_and(|v| v == "1");
    let golden_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let (_dir, mut s) = session().await;
    send(&mut s, b"l LOGIN alice secret".to_vec()).await;
    // IMAP4rev2 shapes (UTF-8 strings) are what current clients see.
    send(&mut s, b"e ENABLE IMAP4rev2".to_vec()).await;
    let mut failures = Vec::new();
    for (uid, (name, raw)) in corpus().into_iter().enumerate() {
        let mut append = format!("a APPEND INBOX {{{}+}}\r\n", raw.len()).into_bytes();
        append.extend_from_slice(&raw);
        let r = send(&mut s, append).await;
        assert!(String::from_utf8_lossy(&r).contains("a OK"), "{name}: {}", String::from_utf8_lossy(&r));
        send(&mut s, b"s SELECT INBOX".to_vec()).await;
        let got = send(&mut s, format!("f UID FETCH {} {ITEMS}", uid + 1).into_bytes()).await;
        let path = golden_dir.join(format!("{name}.txt"));
        if bless {
            std::fs::create_dir_all(&golden_dir).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        match std::fs::read(&path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{name}: output differs from {}\n--- want\n{}\n--- got\n{}",
                path.display(),
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got)
            )),
            Err(e) => failures.push(format!("{name}: {}: {e} (run with POSTFACH_BLESS=1)", path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
