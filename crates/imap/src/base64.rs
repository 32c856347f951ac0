//! Strict base64 decoding (RFC 4648 §4) for SASL exchanges (RFC 9051 §6.2.2), which is the only
//! place IMAP carries base64 that the session must read.

/// Decodes standard base64 with padding; `None` on any invalid character or length.
pub(crate) fn decode(input: &[u8]) -> Option<Vec<u8>> {
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
            let v = if j >= 4 - pad { 0 } else { value(*b)? };
            n = (n << 6) | u32::from(v);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

fn value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_rfc4648_vectors() {
        for (enc, dec) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(decode(enc.as_bytes()).as_deref(), Some(dec.as_bytes()), "{enc}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9*", "Zm9v\r\n"] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn plain_example() {
        // RFC 4616 §4 style: "\0tim\0tanstaaftanstaaf"
        let d = decode(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm").expect("valid");
        assert_eq!(d, b"\0tim\0tanstaaftanstaaf");
    }
}
