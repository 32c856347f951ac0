//! Serde adapters for the byte strings in a summary, so they serialise compactly.
//!
//! Human-readable formats (JSON) get a string when the bytes are UTF-8 and an array of numbers
//! otherwise; binary formats get a native byte string. Plain `Vec<u8>` would be an array of numbers
//! everywhere, three to four times the size in JSON. Used through `#[serde(with = ...)]`.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Borrowed bytes on their way out.
struct BytesOut<'a>(&'a [u8]);

impl Serialize for BytesOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable()
            && let Ok(text) = std::str::from_utf8(self.0)
        {
            return serializer.serialize_str(text);
        }
        serializer.serialize_bytes(self.0)
    }
}

/// Owned bytes on their way in, accepting every form [`BytesOut`] produces.
struct BytesIn(Vec<u8>);

impl<'de> Deserialize<'de> for BytesIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(BytesVisitor)
        } else {
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = BytesIn;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<BytesIn, E> {
        Ok(BytesIn(v.as_bytes().to_vec()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<BytesIn, E> {
        Ok(BytesIn(v.into_bytes()))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<BytesIn, E> {
        Ok(BytesIn(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<BytesIn, E> {
        Ok(BytesIn(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BytesIn, A::Error> {
        // The size hint comes from stored data, but cap it anyway: it only pre-sizes the buffer.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            out.push(byte);
        }
        Ok(BytesIn(out))
    }
}

/// `#[serde(with)]` for `Vec<u8>`.
pub(crate) mod plain {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        BytesOut(v).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        BytesIn::deserialize(d).map(|b| b.0)
    }
}

/// `#[serde(with)]` for `Option<Vec<u8>>`.
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_deref().map(BytesOut).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<BytesIn>::deserialize(d).map(|o| o.map(|b| b.0))
    }
}

/// `#[serde(with)]` for `Vec<Vec<u8>>`.
pub(crate) mod list {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|b| BytesOut(b)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<BytesIn>::deserialize(d).map(|v| v.into_iter().map(|b| b.0).collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        #[serde(with = "super::plain")]
        a: Vec<u8>,
        #[serde(with = "super::option")]
        b: Option<Vec<u8>>,
        #[serde(with = "super::list")]
        c: Vec<Vec<u8>>,
    }

    #[test]
    fn utf8_is_a_string_and_other_bytes_an_array() {
        let s = Sample { a: b"text".to_vec(), b: Some(vec![0xff, 0x00]), c: vec![b"x".to_vec(), vec![0xe9]] };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"a":"text","b":[255,0],"c":["x",[233]]}"#);
        assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), s);
        let none = Sample { a: Vec::new(), b: None, c: Vec::new() };
        let json = serde_json::to_string(&none).unwrap();
        assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), none);
    }
}
