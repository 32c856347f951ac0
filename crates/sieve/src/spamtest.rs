//! The normalised result of the `spamtest` test (RFC 5235 §3.2), read from headers an upstream
//! spam filter added.
//!
//! Where the score comes from, in order (header names are configurable):
//! 1. `X-Spam-Score: 7.3` — the first number in the value (so "7.3 / 5.0" works too);
//! 2. `X-Spam-Status: Yes, score=7.3 required=5.0 ...` — the number after `score=`
//!    (SpamAssassin's format);
//! 3. `X-Spam-Flag: YES` / `NO` alone — definitely spam / tested and clean.
//!
//! A score maps linearly onto the RFC scales with [`SpamTestSettings::max_score`] as "definitely
//! spam": `spamtest` gives `1 + round(9 × score / max)` (1 = clean … 10 = spam), `:percent`
//! gives `round(100 × score / max)`, both clamped. No header at all means "not tested": the
//! result is "0" and its `:count` is 0 (RFC 5235 §3.1). These headers can be forged by a sender;
//! the delivery code must remove or overwrite them for mail that did not pass our own filter
//! (RFC 5235 §4).

use crate::ir::SpamScale;
use crate::message::Message;

/// Where `spamtest` finds the spam filter's verdict (RFC 5235).
///
/// The score is read from, in order: `score_header` (first number in the value, e.g.
/// `X-Spam-Score: 7.3`), `status_header` (the number after `score=`, SpamAssassin's
/// `X-Spam-Status: Yes, score=7.3 required=5.0`), and finally `flag_header` alone (`YES` =
/// definitely spam, `NO` = tested and clean). The score maps linearly with `max_score` as
/// "definitely spam": `spamtest` gives `1 + round(9 × score / max_score)` (1 clean … 10 spam),
/// `:percent` gives `round(100 × score / max_score)`, both clamped. No header means "not
/// tested": the result is "0" and `:count` is 0. Senders can forge these headers; delivery must
/// strip or overwrite them unless our own filter added them (RFC 5235 §4).
#[derive(Debug, Clone, PartialEq)]
pub struct SpamTestSettings {
    /// Header holding just the score (default `X-Spam-Score`).
    pub score_header: String,
    /// Header in SpamAssassin's `X-Spam-Status` format with `score=` (default `X-Spam-Status`).
    pub status_header: String,
    /// Header holding YES / NO (default `X-Spam-Flag`), used when no score is present.
    pub flag_header: String,
    /// The score that counts as "definitely spam" (10, or 100 with `:percent`); default 10.0.
    pub max_score: f64,
}

impl Default for SpamTestSettings {
    fn default() -> Self {
        Self {
            score_header: "X-Spam-Score".to_owned(),
            status_header: "X-Spam-Status".to_owned(),
            flag_header: "X-Spam-Flag".to_owned(),
            max_score: 10.0,
        }
    }
}

/// The normalised result for `scale`: `None` if the message was not tested.
pub(crate) fn result(msg: &dyn Message, settings: &SpamTestSettings, scale: SpamScale) -> Option<u32> {
    let ratio = match score(msg, settings) {
        Some(s) => {
            let max = if settings.max_score > 0.0 { settings.max_score } else { 10.0 };
            (s / max).clamp(0.0, 1.0)
        }
        None => {
            let flag = msg.header(&settings.flag_header).into_iter().next()?;
            match flag.trim() {
                f if f.eq_ignore_ascii_case("yes") => 1.0,
                f if f.eq_ignore_ascii_case("no") => 0.0,
                _ => return None,
            }
        }
    };
    // The ratio is within [0, 1], so both products fit a u32 after rounding.
    let scaled = match scale {
        SpamScale::Tenths => 1.0 + (ratio * 9.0).round(),
        SpamScale::Percent => (ratio * 100.0).round(),
    };
    Some(if scaled >= 100.0 {
        100
    } else if scaled >= 1.0 {
        scaled as u32
    } else {
        0
    })
}

fn score(msg: &dyn Message, settings: &SpamTestSettings) -> Option<f64> {
    if let Some(v) = msg.header(&settings.score_header).first()
        && let Some(s) = leading_number(v.trim_start())
    {
        return Some(s);
    }
    let status = msg.header(&settings.status_header).into_iter().next()?;
    let lower = status.to_ascii_lowercase();
    let at = lower.find("score=")?;
    leading_number(&status[at + "score=".len()..])
}

/// The decimal number at the start of `s` ("-1.5", "7", "3.25/5"), if finite.
fn leading_number(s: &str) -> Option<f64> {
    let bytes = s.as_bytes();
    let mut end = usize::from(matches!(bytes.first(), Some(b'-' | b'+')));
    let digits_start = end;
    while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
        end += 1;
    }
    if end == digits_start {
        return None;
    }
    s[..end].parse::<f64>().ok().filter(|f| f.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::BodyTransform;

    struct Headers(Vec<(&'static str, &'static str)>);

    impl Message for Headers {
        fn header(&self, name: &str) -> Vec<String> {
            self.0
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| (*v).to_owned())
                .collect()
        }
        fn envelope_from(&self) -> Option<&str> {
            None
        }
        fn envelope_to(&self) -> Option<&str> {
            None
        }
        fn size(&self) -> u64 {
            0
        }
        fn body_text(&self, _: &BodyTransform) -> Vec<String> {
            Vec::new()
        }
    }

    fn r(h: Vec<(&'static str, &'static str)>, scale: SpamScale) -> Option<u32> {
        result(&Headers(h), &SpamTestSettings::default(), scale)
    }

    #[test]
    fn mapping() {
        use SpamScale::*;
        assert_eq!(r(vec![], Tenths), None);
        assert_eq!(r(vec![("X-Spam-Score", "0")], Tenths), Some(1));
        assert_eq!(r(vec![("X-Spam-Score", "-3.2")], Tenths), Some(1));
        assert_eq!(r(vec![("X-Spam-Score", "5.0")], Tenths), Some(6));
        assert_eq!(r(vec![("X-Spam-Score", "25")], Tenths), Some(10));
        assert_eq!(r(vec![("X-Spam-Score", " 3.7 / 5.0")], Percent), Some(37));
        assert_eq!(r(vec![("X-Spam-Score", "0")], Percent), Some(0));
        assert_eq!(r(vec![("X-Spam-Status", "Yes, score=8.1 required=5.0 tests=FOO")], Tenths), Some(8));
        assert_eq!(r(vec![("X-Spam-Status", "No, hits=1")], Tenths), None);
        assert_eq!(r(vec![("X-Spam-Flag", "YES")], Tenths), Some(10));
        assert_eq!(r(vec![("X-Spam-Flag", "no")], Percent), Some(0));
        assert_eq!(r(vec![("X-Spam-Flag", "no")], Tenths), Some(1));
        assert_eq!(r(vec![("X-Spam-Score", "nan")], Tenths), None);
        assert_eq!(r(vec![("X-Spam-Score", "garbage"), ("X-Spam-Flag", "YES")], Percent), Some(100));
    }
}
