//! Modified UTF-7 for IMAP4rev1 mailbox names (RFC 3501 §5.1.3).
//!
//! Printable US-ASCII except "&" stands for itself; "&" is written "&-"; everything else is
//! UTF-16 in modified base64 (",", not "/") between "&" and "-". Decoding is strict: it
//! rejects what RFC 3501 forbids (encoded printable ASCII, adjacent encoded runs, non-zero pad
//! bits, bare 8-bit bytes) so that every name has exactly one encoding.

/// Why a modified UTF-7 string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mutf7Error {
    /// A byte outside printable US-ASCII appeared outside a base64 run.
    #[error("byte {0:#04x} is not allowed in modified UTF-7")]
    InvalidByte(u8),
    /// A base64 run is malformed (bad character, missing "-", bad padding).
    #[error("malformed base64 run in modified UTF-7")]
    BadBase64,
    /// The UTF-16 inside a base64 run is invalid (lone surrogate, odd length).
    #[error("invalid UTF-16 in modified UTF-7")]
    BadUtf16,
    /// The encoding is not the canonical one (e.g. encodes printable ASCII, or two runs touch).
    #[error("non-canonical modified UTF-7")]
    NotCanonical,
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b',' => Some(63),
        _ => None,
    }
}

/// Encodes a Unicode mailbox name into modified UTF-7.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut units: Vec<u16> = Vec::new();
    for c in s.chars() {
        if (' '..='~').contains(&c) {
            flush_run(&mut units, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush_run(&mut units, &mut out);
    out
}

/// Writes pending UTF-16 units as one `&...-` run.
fn flush_run(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &u in units.iter() {
        acc = (acc << 16) | u32::from(u);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 0x3f) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize]));
    }
    out.push('-');
    units.clear();
}

/// Decodes modified UTF-7 bytes into a Unicode string.
pub fn decode(input: &[u8]) -> Result<String, Mutf7Error> {
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    // Position just after the last base64 run, to reject "&AAA-&AAA-" (runs must merge).
    let mut last_run_end: Option<usize> = None;
    while i < input.len() {
        let b = input[i];
        if b != b'&' {
            if !(0x20..=0x7e).contains(&b) {
                return Err(Mutf7Error::InvalidByte(b));
            }
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let start = i + 1;
        let Some(len) = input[start..].iter().position(|&c| c == b'-') else {
            return Err(Mutf7Error::BadBase64);
        };
        let run = &input[start..start + len];
        i = start + len + 1;
        if run.is_empty() {
            out.push('&');
            continue;
        }
        if last_run_end == Some(start - 1) {
            return Err(Mutf7Error::NotCanonical);
        }
        decode_run(run, &mut out)?;
        last_run_end = Some(i);
    }
    Ok(out)
}

/// Decodes one base64 run (without "&" and "-") and appends the characters.
fn decode_run(run: &[u8], out: &mut String) -> Result<(), Mutf7Error> {
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    let mut units: Vec<u16> = Vec::with_capacity(run.len() * 6 / 16);
    for &c in run {
        let v = b64_value(c).ok_or(Mutf7Error::BadBase64)?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 16 {
            bits -= 16;
            units.push(((acc >> bits) & 0xffff) as u16);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits are padding: fewer than 6 of them and all zero (RFC 2152 rules).
    if bits >= 6 || acc != 0 {
        return Err(Mutf7Error::BadBase64);
    }
    for r in char::decode_utf16(units.iter().copied()) {
        let c = r.map_err(|_| Mutf7Error::BadUtf16)?;
        // RFC 3501 §5.1.3: printable US-ASCII must represent itself, never be encoded.
        if (' '..='~').contains(&c) {
            return Err(Mutf7Error::NotCanonical);
        }
        out.push(c);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc3501_example() {
        // RFC 3501 §5.1.3: "~peter/mail/台北/日本語".
        let s = "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}";
        assert_eq!(encode(s), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
        assert_eq!(decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(), s);
    }

    #[test]
    fn ampersand_and_round_trips() {
        assert_eq!(encode("a&b"), "a&-b");
        assert_eq!(decode(b"a&-b").unwrap(), "a&b");
        for s in ["", "Entwürfe", "😀 smile", "x\u{7f}y", "ä&ö", "Ü"] {
            assert_eq!(decode(encode(s).as_bytes()).unwrap(), s, "{s}");
        }
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode("😀"), "&2D3eAA-");
    }

    #[test]
    fn rejects_malformed() {
        // RFC 3501 §5.1.3 counter-examples: "&Jjo!" is not valid, nor "&U,BTFw-&ZeVnLIqe-".
        assert!(decode(b"&Jjo!").is_err());
        assert_eq!(decode(b"&U,BTFw-&ZeVnLIqe-"), Err(Mutf7Error::NotCanonical));
        assert!(decode(b"&AGE-").is_err()); // encodes "a"
        assert!(decode(b"\xc3\xa4").is_err()); // raw 8-bit
        assert!(decode(b"&2D0-").is_err()); // lone surrogate
        assert!(decode(b"&APx").is_err()); // no terminator
        assert!(decode(b"&APy-").is_err()); // non-zero padding bits
        assert!(decode(b"&A-").is_err()); // too short
    }
}
