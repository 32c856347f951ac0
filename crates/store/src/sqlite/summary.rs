//! How a message's summary (`bodies.summary`: BODYSTRUCTURE offsets, ENVELOPE, ...) is stored.
//!
//! The first byte says the encoding:
//! - `{`: JSON, as earlier versions of Postfach wrote it; still read, no longer written.
//! - [`POSTCARD`]: the postcard encoding of [`MessageSummary`]. FETCH ENVELOPE/BODYSTRUCTURE
//!   decodes one summary per message; with JSON that was 42 % of a `FETCH 1:* (ENVELOPE
//!   BODYSTRUCTURE)` in a profile, postcard is several times faster and smaller.
//!
//! Limits: the summary's depth is bounded when it is made (`postfach_message::structure::
//! MAX_DEPTH`), so decoding recursion is bounded too; bytes that do not decode are an error,
//! and the caller parses the raw message again.

use postfach_message::MessageSummary;

use crate::{StoreError, StoreResult};

/// Tag of the postcard encoding.
pub(crate) const POSTCARD: u8 = 1;

/// The stored form of `summary`.
pub(crate) fn encode(summary: &MessageSummary) -> StoreResult<Vec<u8>> {
    let mut out = vec![POSTCARD];
    let body = postcard::to_allocvec(summary)
        .map_err(|e| StoreError::Backend(format!("cannot serialise a message summary: {e}")))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// A stored summary, in either encoding.
pub(crate) fn decode(bytes: &[u8]) -> Result<MessageSummary, String> {
    match bytes.first() {
        Some(&POSTCARD) => postcard::from_bytes(&bytes[1..]).map_err(|e| e.to_string()),
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Some(other) => Err(format!("unknown summary encoding {other:#04x}")),
        None => Err("empty summary".to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MESSAGES: [&[u8]; 3] = [
        b"From: A <a@example.org>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nhi\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset*=utf-8''x\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ntwo\r\n--b--\r\n",
        b"Subject: \xff\xfe 8-bit\r\n\r\n\x00\r\n",
    ];

    #[test]
    fn both_encodings_decode_to_the_same_summary() {
        for raw in MESSAGES {
            let summary = postfach_message::parse(raw);
            let stored = encode(&summary).unwrap();
            assert_eq!(stored[0], POSTCARD);
            assert_eq!(decode(&stored).unwrap(), summary);
            // Rows written by earlier versions.
            let json = serde_json::to_vec(&summary).unwrap();
            assert_eq!(decode(&json).unwrap(), summary);
            assert!(stored.len() < json.len(), "{} vs {}", stored.len(), json.len());
        }
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let stored = encode(&postfach_message::parse(MESSAGES[1])).unwrap();
        for cut in 0..stored.len() {
            let _ = decode(&stored[..cut]);
        }
        assert!(decode(&[]).is_err());
        assert!(decode(&[7, 1, 2]).is_err());
        let mut flipped = stored.clone();
        flipped[stored.len() / 2] ^= 0xff;
        let _ = decode(&flipped);
    }
}
