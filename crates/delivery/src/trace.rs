//! The header lines delivery puts on top of a message (Return-Path, Delivered-To, Received), and
//! the summary shift that lets one parse of the message serve every recipient.
//!
//! Each recipient's copy starts with its own trace lines, so each copy has its own bytes; but
//! prepending whole header lines to a message moves every offset of its [`MessageSummary`] by
//! the same amount and changes nothing else (these fields are not part of ENVELOPE or
//! BODYSTRUCTURE). [`shifted_summary`] applies that shift instead of parsing the copy again;
//! [`prefix_keeps_structure`] tells when the shortcut is exact.

use postfach_message::{BodyPart, MessageSummary, PartKind};

/// Longest HELO name or peer text copied into a Received line.
const MAX_TRACE_WORD: usize = 255;

/// What the trace lines say about one delivery.
#[derive(Debug, Clone, Copy)]
pub struct TraceInfo<'a> {
    /// The envelope sender (MAIL FROM), empty for the null path.
    pub reverse_path: &'a str,
    /// The envelope recipient as the client wrote it (RCPT TO).
    pub recipient: &'a str,
    /// The client's LHLO name, if any.
    pub helo: Option<&'a str>,
    /// The client's address (`127.0.0.1`, or a unix socket), if known.
    pub peer: Option<&'a str>,
    /// Our host name.
    pub hostname: &'a str,
    /// `LMTP` or `local` (the `deliver` command).
    pub protocol: &'a str,
    /// The delivery's id, to find it in the log.
    pub id: &'a str,
    /// Now, seconds since the Unix epoch.
    pub now: i64,
}

/// The lines to prepend, in this order: `Return-Path:` (RFC 5321 §4.4: the final delivery adds
/// it), `Delivered-To:` (the recipient; also what redirect loop detection counts), and a
/// `Received:` trace line (RFC 5321 §4.4). Every value is cleaned of line breaks.
#[must_use]
pub fn trace_lines(info: &TraceInfo<'_>) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str(&format!("Return-Path: <{}>\r\n", clean(info.reverse_path)));
    out.push_str(&format!("Delivered-To: {}\r\n", clean(info.recipient)));
    out.push_str("Received:");
    if let Some(helo) = info.helo {
        out.push_str(&format!(" from {}", clean(helo).replace(['(', ')'], "")));
        if let Some(peer) = info.peer {
            out.push_str(&format!(" ({})", clean(peer).replace(['(', ')'], "")));
        }
        out.push_str("\r\n\t");
    } else {
        out.push(' ');
    }
    out.push_str(&format!(
        "by {} (Postfach) with {} id {}\r\n\tfor <{}>; {}\r\n",
        clean(info.hostname),
        info.protocol,
        clean(info.id),
        clean(info.recipient),
        rfc5322_date(info.now)
    ));
    out.into_bytes()
}

/// A value fit for one header line: control characters become spaces, length is bounded.
fn clean(value: &str) -> String {
    value.chars().take(MAX_TRACE_WORD).map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// An RFC 5322 §3.3 date-time in UTC, e.g. `Thu, 01 Jan 1970 00:00:00 +0000`.
#[must_use]
pub fn rfc5322_date(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(month - 1).unwrap_or(0).min(11)];
    format!(
        "{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31), proleptic Gregorian
/// (Howard Hinnant's civil_from_days).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether prepending complete header lines to `raw` shifts its summary exactly (see
/// [`shifted_summary`]). False when the message starts with folding whitespace, which would
/// continue our last trace line, or has no header at all (its first line is not a field), so
/// our lines would turn body into header.
#[must_use]
pub fn prefix_keeps_structure(raw: &[u8]) -> bool {
    match raw.first() {
        None | Some(b' ' | b'\t') => false,
        Some(b'\r' | b'\n') => true,
        Some(_) => {
            let line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
            let line = &raw[..line_end];
            // RFC 5322 §2.2: a field name is printable ASCII without ':' and without spaces.
            match line.iter().position(|&b| b == b':') {
                Some(colon) => colon > 0 && line[..colon].iter().all(|&b| b.is_ascii_graphic()),
                None => false,
            }
        }
    }
}

/// The summary of `prefix_len` bytes of complete header lines followed by the message that
/// `summary` describes: every offset moves by `prefix_len`, and the top-level header now starts
/// at 0. Exact when [`prefix_keeps_structure`] holds for the message.
#[must_use]
pub fn shifted_summary(summary: &MessageSummary, prefix_len: u32) -> MessageSummary {
    let mut out = summary.clone();
    shift(&mut out.structure, prefix_len);
    out.structure.header.start = 0;
    out
}

fn shift(part: &mut BodyPart, by: u32) {
    part.header.start = part.header.start.saturating_add(by);
    part.header.end = part.header.end.saturating_add(by);
    part.body.start = part.body.start.saturating_add(by);
    part.body.end = part.body.end.saturating_add(by);
    match &mut part.kind {
        PartKind::Leaf => {}
        PartKind::Multipart(children) => children.iter_mut().for_each(|c| shift(c, by)),
        PartKind::Message(nested) => shift(&mut nested.structure, by),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        // RFC 5322 §A.1.1's example instant, in UTC.
        assert_eq!(rfc5322_date(880_127_706), "Fri, 21 Nov 1997 15:55:06 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc5322_date(-1), "Wed, 31 Dec 1969 23:59:59 +0000");
    }

    fn info<'a>(helo: Option<&'a str>) -> TraceInfo<'a> {
        TraceInfo {
            reverse_path: "a@x.example",
            recipient: "b+c@y.example",
            helo,
            peer: Some("127.0.0.1"),
            hostname: "mail.y.example",
            protocol: "LMTP",
            id: "abc",
            now: 0,
        }
    }

    #[test]
    fn trace_lines_are_well_formed() {
        let text = String::from_utf8(trace_lines(&info(Some("mx\r\nBcc: evil")))).unwrap();
        assert!(text.starts_with("Return-Path: <a@x.example>\r\nDelivered-To: b+c@y.example\r\nReceived: from mx  Bcc: evil (127.0.0.1)\r\n\tby mail.y.example (Postfach) with LMTP id abc\r\n\tfor <b+c@y.example>; Thu, 01 Jan 1970"), "{text}");
        assert!(text.ends_with("+0000\r\n"));
        assert_eq!(text.matches("\r\n").count(), 5);
        let text = String::from_utf8(trace_lines(&info(None))).unwrap();
        assert!(text.contains("Received: by mail.y.example"), "{text}");
    }

    const SAMPLES: &[&[u8]] = &[
        b"From: a@x\r\nSubject: hi\r\n\r\nbody\r\n",
        b"Subject: no body\r\n",
        b"\r\nonly a body\r\n",
        b"From: a@x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\npost\r\n",
        b"Subject: x\nFrom: bare-lf@x\n\nbody\n",
        b"",
        b"not a header line\r\n\r\nbody\r\n",
        b" folded start: x\r\n\r\nbody\r\n",
    ];

    /// The shortcut must give exactly what parsing the prefixed copy gives, whenever it claims
    /// to be exact.
    #[test]
    fn shift_matches_a_fresh_parse() {
        let prefix = trace_lines(&info(Some("mx")));
        for raw in SAMPLES {
            if !prefix_keeps_structure(raw) {
                continue;
            }
            let mut copy = prefix.clone();
            copy.extend_from_slice(raw);
            let fresh = postfach_message::parse(&copy);
            let shifted =
                shifted_summary(&postfach_message::parse(raw), u32::try_from(prefix.len()).unwrap());
            assert_eq!(fresh, shifted, "{}", String::from_utf8_lossy(raw));
        }
        assert!(prefix_keeps_structure(SAMPLES[0]));
        assert!(prefix_keeps_structure(SAMPLES[2]));
        assert!(!prefix_keeps_structure(SAMPLES[5]));
        assert!(!prefix_keeps_structure(SAMPLES[6]));
        assert!(!prefix_keeps_structure(SAMPLES[7]));
    }
}
