//! The deterministic message corpus: realistic RFC 5322 / MIME messages made from a seed.
//!
//! Every server under test receives byte-identical messages, so differences come from the
//! server, not the data. Two shapes exist: [`CorpusKind::Mixed`] spans 1 KiB to a few MiB
//! (plain text, multipart/alternative, attachments, nested multiparts) for the APPEND and
//! mixed-load scenarios; [`CorpusKind::Small`] keeps every message between 1 and 4 KiB so that
//! mailboxes of a million messages stay affordable on disk. One message in [`NEEDLE_EVERY`]
//! contains [`NEEDLE`] in its body, for `SEARCH TEXT`.
//!
//! Limits: messages are generated once and held in memory; the caller chooses the count, and
//! scenarios reuse the corpus cyclically rather than growing it.

use crate::rng::Rng;

/// A word that occurs only in the bodies of every [`NEEDLE_EVERY`]-th message.
pub const NEEDLE: &str = "quokkafjord";
/// One message in this many carries [`NEEDLE`] (those whose index is 7 modulo it).
pub const NEEDLE_EVERY: u64 = 100;

/// Which size distribution to draw messages from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorpusKind {
    /// 1 KiB .. 4 MiB, a mail-client-like mixture (mean about 125 KiB).
    Mixed,
    /// 1 .. 4 KiB text messages, for filling very large mailboxes.
    Small,
}

/// A fixed set of generated messages, reused cyclically.
#[derive(Debug, Clone)]
pub struct Corpus {
    messages: Vec<Vec<u8>>,
}

impl Corpus {
    /// Generates `count` messages (at least one) of `kind` from `seed`.
    pub fn generate(seed: u64, count: usize, kind: CorpusKind) -> Corpus {
        let count = count.max(1);
        let messages = (0..count as u64).map(|i| message(seed, i, kind)).collect();
        Corpus { messages }
    }

    /// A corpus of the given messages (an empty list gets one minimal message, so that
    /// [`Corpus::get`] always has something to return).
    pub fn from_messages(mut messages: Vec<Vec<u8>>) -> Corpus {
        if messages.is_empty() {
            messages.push(b"Subject: empty corpus\r\n\r\nnothing\r\n".to_vec());
        }
        Corpus { messages }
    }

    /// Message `index` modulo the corpus size.
    pub fn get(&self, index: u64) -> &[u8] {
        let len = self.messages.len() as u64;
        // `len` is at least 1, so the modulo is in range.
        self.messages.get((index % len) as usize).map_or(&[][..], Vec::as_slice)
    }

    /// Number of distinct messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Always false: a corpus holds at least one message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Sum of all message sizes in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.messages.iter().map(|m| m.len() as u64).sum()
    }
}

/// Generates message `index` of the corpus `(seed, kind)`. Pure: the same arguments always give
/// the same bytes.
pub fn message(seed: u64, index: u64, kind: CorpusKind) -> Vec<u8> {
    let mut rng = Rng::derive(seed ^ 0x6D61_696C, index);
    let needle = index % NEEDLE_EVERY == 7;
    match kind {
        CorpusKind::Small => {
            let size = rng.range(1024, 4096) as usize;
            plain(&mut rng, index, size, needle)
        }
        CorpusKind::Mixed => match rng.below(100) {
            0..60 => {
                let size = rng.range(1024, 8 * 1024) as usize;
                plain(&mut rng, index, size, needle)
            }
            60..85 => {
                let size = rng.range(8 * 1024, 64 * 1024) as usize;
                alternative(&mut rng, index, size, needle)
            }
            85..97 => {
                let size = rng.range(64 * 1024, 1024 * 1024) as usize;
                with_attachment(&mut rng, index, size, needle)
            }
            _ => {
                let size = rng.range(1024 * 1024, 4 * 1024 * 1024) as usize;
                with_attachment(&mut rng, index, size, needle)
            }
        },
    }
}

const WORDS: &[&str] = &[
    "the",
    "meeting",
    "report",
    "quarter",
    "budget",
    "please",
    "review",
    "attached",
    "draft",
    "thanks",
    "schedule",
    "tomorrow",
    "project",
    "update",
    "customer",
    "invoice",
    "server",
    "release",
    "deadline",
    "question",
    "answer",
    "team",
    "office",
    "travel",
    "lunch",
    "weekend",
    "agenda",
    "minutes",
    "follow",
    "regards",
    "numbers",
    "forecast",
    "design",
    "document",
    "contract",
    "shipping",
    "order",
    "delivery",
    "mailbox",
    "folder",
    "calendar",
    "holiday",
    "Montag",
    "Bericht",
    "réunion",
    "naïve",
    "coördinate",
    "and",
    "of",
    "to",
    "in",
    "for",
    "with",
    "on",
    "at",
    "from",
    "by",
    "about",
    "as",
    "is",
    "are",
    "we",
];
const NAMES: &[(&str, &str)] = &[
    ("Alice Example", "alice@example.org"),
    ("Bob Builder", "bob@example.net"),
    ("Carol Jörgensen", "carol@example.com"),
    ("Dave O'Neil", "dave@mail.example"),
    ("Erin Smith", "erin@example.org"),
    ("Frank Müller", "frank@beispiel.example"),
];
const MONTHS: &[&str] = &["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// The common RFC 5322 header block, without the MIME part headers and the blank line.
fn headers(rng: &mut Rng, index: u64, out: &mut Vec<u8>) {
    let from = rng.pick(NAMES).copied().unwrap_or(("A", "a@example.org"));
    let to = rng.pick(NAMES).copied().unwrap_or(("B", "b@example.org"));
    let minute = index;
    let day = 1 + (minute / 1440) % 28;
    let month = MONTHS.get(((minute / (1440 * 28)) % 12) as usize).copied().unwrap_or("Jan");
    let subject = sentence(rng, 3, 8);
    let text = format!(
        "Return-Path: <{fa}>\r\n\
         Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n\tby mail.example.net; \
         {day} {month} 2024 {h:02}:{m:02}:00 +0000\r\n\
         Message-ID: <{index}.{r:x}@bench.example>\r\n\
         Date: {day} {month} 2024 {h:02}:{m:02}:00 +0000\r\n\
         From: \"{fname}\" <{fa}>\r\n\
         To: \"{tname}\" <{ta}>\r\n\
         Subject: {subject}\r\n\
         MIME-Version: 1.0\r\n",
        fa = from.1,
        fname = from.0,
        ta = to.1,
        tname = to.0,
        h = (minute / 60) % 24,
        m = minute % 60,
        r = rng.next_u64(),
    );
    out.extend_from_slice(text.as_bytes());
}

fn sentence(rng: &mut Rng, min: u64, max: u64) -> String {
    let n = rng.range(min, max);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS).copied().unwrap_or("word"));
    }
    s
}

/// Appends wrapped text lines until `out` has grown by about `size` bytes.
fn text_body(rng: &mut Rng, size: usize, needle: bool, out: &mut Vec<u8>) {
    let start = out.len();
    let needle_at = start + size / 2;
    let mut line_len = 0;
    let mut placed = !needle;
    while out.len() - start < size {
        let word = if !placed && out.len() >= needle_at {
            NEEDLE
        } else {
            rng.pick(WORDS).copied().unwrap_or("word")
        };
        if word == NEEDLE {
            placed = true;
        }
        if line_len + word.len() > 72 {
            out.extend_from_slice(b"\r\n");
            line_len = 0;
        } else if line_len > 0 {
            out.push(b' ');
            line_len += 1;
        }
        out.extend_from_slice(word.as_bytes());
        line_len += word.len();
    }
    out.extend_from_slice(b"\r\n");
}

fn plain(rng: &mut Rng, index: u64, size: usize, needle: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 1024);
    headers(rng, index, &mut out);
    out.extend_from_slice(
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    );
    let body = size.saturating_sub(out.len()).max(64);
    text_body(rng, body, needle, &mut out);
    out
}

fn alternative(rng: &mut Rng, index: u64, size: usize, needle: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 1024);
    headers(rng, index, &mut out);
    let boundary = format!("alt-{index}-{:x}", rng.next_u64());
    push_alternative(rng, &boundary, size, needle, &mut out);
    out
}

/// A complete `multipart/alternative` entity (its Content-Type header, then the parts).
fn push_alternative(rng: &mut Rng, boundary: &str, size: usize, needle: bool, out: &mut Vec<u8>) {
    let half = size / 2;
    out.extend_from_slice(
        format!("Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n").as_bytes(),
    );
    out.extend_from_slice(b"This is a multi-part message in MIME format.\r\n");
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    out.extend_from_slice(
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    );
    text_body(rng, half, needle, out);
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    out.extend_from_slice(
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    );
    out.extend_from_slice(b"<html><body><p>\r\n");
    text_body(rng, half, false, out);
    out.extend_from_slice(b"</p></body></html>\r\n");
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
}

fn with_attachment(rng: &mut Rng, index: u64, size: usize, needle: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 4096);
    headers(rng, index, &mut out);
    let outer = format!("mix-{index}-{:x}", rng.next_u64());
    out.extend_from_slice(format!("Content-Type: multipart/mixed; boundary=\"{outer}\"\r\n\r\n").as_bytes());
    out.extend_from_slice(format!("--{outer}\r\n").as_bytes());
    // Half of these nest a multipart/alternative, as mail clients send them.
    if rng.percent(50) {
        let inner = format!("alt-{index}-{:x}", rng.next_u64());
        push_alternative(rng, &inner, 4096, needle, &mut out);
    } else {
        out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n\r\n");
        text_body(rng, 2048, needle, &mut out);
    }
    let (name, ctype) = match rng.below(3) {
        0 => ("report.pdf", "application/pdf"),
        1 => ("photo.jpg", "image/jpeg"),
        _ => ("data.zip", "application/zip"),
    };
    out.extend_from_slice(format!("--{outer}\r\n").as_bytes());
    out.extend_from_slice(
        format!(
            "Content-Type: {ctype}; name=\"{name}\"\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        )
        .as_bytes(),
    );
    // Base64 grows data by 4/3; aim the encoded size at what is left of `size`.
    let raw_len = size.saturating_sub(out.len() + 64) * 3 / 4;
    let mut raw = Vec::with_capacity(raw_len + 8);
    while raw.len() < raw_len {
        raw.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    raw.truncate(raw_len);
    base64_lines(&raw, &mut out);
    out.extend_from_slice(format!("--{outer}--\r\n").as_bytes());
    out
}

/// Standard base64 (RFC 4648 §4) in lines of 76 characters (RFC 2045 §6.8).
fn base64_lines(data: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |v: u32| ALPHABET[(v & 63) as usize];
    let mut line = 0;
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(sym(v >> 18));
        out.push(sym(v >> 12));
        out.push(if chunk.len() > 1 { sym(v >> 6) } else { b'=' });
        out.push(if chunk.len() > 2 { sym(v) } else { b'=' });
        line += 4;
        if line == 76 {
            out.extend_from_slice(b"\r\n");
            line = 0;
        }
    }
    if line > 0 {
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn deterministic() {
        let a = Corpus::generate(1, 40, CorpusKind::Mixed);
        let b = Corpus::generate(1, 40, CorpusKind::Mixed);
        for i in 0..40 {
            assert_eq!(a.get(i), b.get(i));
        }
        assert_ne!(message(1, 3, CorpusKind::Mixed), message(2, 3, CorpusKind::Mixed));
        assert_eq!(a.get(40), a.get(0), "cyclic reuse");
    }

    #[test]
    fn sizes_within_range_and_varied() {
        let c = Corpus::generate(9, 200, CorpusKind::Mixed);
        let sizes: Vec<usize> = (0..200).map(|i| c.get(i).len()).collect();
        assert!(sizes.iter().all(|s| (1000..=4 * 1024 * 1024 + 16 * 1024).contains(s)), "{sizes:?}");
        assert!(sizes.iter().any(|s| *s < 8 * 1024));
        assert!(sizes.iter().any(|s| *s > 64 * 1024));
        let small = Corpus::generate(9, 200, CorpusKind::Small);
        assert!((0..200).all(|i| (1000..=4096 + 1024).contains(&small.get(i).len())));
    }

    #[test]
    fn messages_are_well_formed() {
        for i in 0..60 {
            let m = message(5, i, CorpusKind::Mixed);
            // Header block ends with an empty line; every line ends with CRLF; no bare LF.
            assert!(contains(&m, b"\r\n\r\n"));
            assert!(m.ends_with(b"\r\n"));
            for (pos, b) in m.iter().enumerate() {
                if *b == b'\n' {
                    assert_eq!(m.get(pos.wrapping_sub(1)), Some(&b'\r'), "bare LF in message {i}");
                }
            }
            assert!(m.split(|b| *b == b'\n').all(|l| l.len() <= 998), "line too long in {i}");
            if contains(&m, b"multipart/") {
                let text = String::from_utf8_lossy(&m);
                let start = text.find("boundary=\"").map(|p| p + 10).unwrap_or(0);
                let end = text[start..].find('"').map(|e| start + e).unwrap_or(start);
                let close = format!("--{}--", &text[start..end]);
                assert!(text.contains(&close), "message {i} lacks its closing boundary");
            }
        }
    }

    #[test]
    fn needle_in_one_of_a_hundred() {
        for i in 0..300 {
            let m = message(2, i, CorpusKind::Small);
            assert_eq!(contains(&m, NEEDLE.as_bytes()), i % NEEDLE_EVERY == 7, "message {i}");
        }
    }

    #[test]
    fn base64_known_answers() {
        // RFC 4648 §10 test vectors.
        for (raw, enc) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            let mut out = Vec::new();
            base64_lines(raw.as_bytes(), &mut out);
            let expect = if enc.is_empty() { String::new() } else { format!("{enc}\r\n") };
            assert_eq!(String::from_utf8_lossy(&out), expect);
        }
    }
}
