//! Base64 (RFC 4648 §4) and base32 (RFC 4648 §6): the text forms SASL and TOTP secrets travel in.
//!
//! Small and strict on purpose: SASL data must be rejected on any stray character or misplaced
//! pad (RFC 9051 §6.2.2), and the few hundred bytes involved never need a SIMD codec. Base32 is
//! the alphabet authenticator apps expect for TOTP secrets in `otpauth://` URIs; it is decoded
//! leniently (case, spaces, optional padding) because people type it.

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Encodes bytes as standard base64 with padding.
pub fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 with padding; `None` on any character outside the alphabet, a
/// length that is not a multiple of four, or padding anywhere but the end.
pub fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let chunks = input.chunks_exact(4);
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.enumerate() {
        let pad = chunk.iter().rev().take_while(|b| **b == b'=').count();
        if pad > 2 || (pad > 0 && i != last) {
            return None;
        }
        let mut n: u32 = 0;
        for (j, b) in chunk.iter().enumerate() {
            let v = if j >= 4 - pad { 0 } else { base64_value(*b)? };
            n = (n << 6) | u32::from(v);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

fn base64_value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Encodes bytes as base32 without padding (the form `otpauth://` URIs use).
pub fn base32_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for byte in input {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32, ignoring case, spaces and trailing `=`; `None` on any other character or on
/// leftover bits that are not zero (a truncated or mistyped secret).
pub fn base32_decode(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in input.trim_end_matches('=').bytes().filter(|b| *b != b' ') {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    (buffer == 0 && bits < 5).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §10 test vectors.
    const VECTORS: [(&str, &str, &str); 7] = [
        ("", "", ""),
        ("f", "Zg==", "MY"),
        ("fo", "Zm8=", "MZXQ"),
        ("foo", "Zm9v", "MZXW6"),
        ("foob", "Zm9vYg==", "MZXW6YQ"),
        ("fooba", "Zm9vYmE=", "MZXW6YTB"),
        ("foobar", "Zm9vYmFy", "MZXW6YTBOI"),
    ];

    #[test]
    fn rfc4648_base64() {
        for (plain, b64, _) in VECTORS {
            assert_eq!(base64_encode(plain.as_bytes()), b64);
            assert_eq!(base64_decode(b64.as_bytes()).as_deref(), Some(plain.as_bytes()), "{b64}");
        }
    }

    #[test]
    fn rfc4648_base32() {
        for (plain, _, b32) in VECTORS {
            assert_eq!(base32_encode(plain.as_bytes()), b32);
            assert_eq!(base32_decode(b32).as_deref(), Some(plain.as_bytes()), "{b32}");
        }
        // Padding, lower case and spaces are accepted as people type them.
        assert_eq!(base32_decode("mzxw 6ytb oi======").as_deref(), Some(&b"foobar"[..]));
    }

    #[test]
    fn base64_rejects_garbage() {
        // RFC 9051 §6.2.2 names "=AAA" and "AAA=BBB" explicitly.
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9*", "Zm9v\r\n", "=AAA", "AAA=BBBB"] {
            assert_eq!(base64_decode(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn base32_rejects_garbage() {
        for bad in ["MZ1", "M!", "MZXW6YTBO"] {
            assert_eq!(base32_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for n in 0..data.len() {
            let slice = &data[..n];
            assert_eq!(base64_decode(base64_encode(slice).as_bytes()).as_deref(), Some(slice));
            assert_eq!(base32_decode(&base32_encode(slice)).as_deref(), Some(slice));
        }
    }
}
