//! The out-of-office form ↔ a Sieve vacation script (RFC 5230).
//!
//! The form's values are written twice into the script: as Sieve (what delivery runs) and as
//! one comment line of URL-encoded fields (what the form reads back, so it never has to parse
//! Sieve). The script is stored under [`SCRIPT_NAME`] and activated; the script that was active
//! before is named in the comment and activated again when the reply is turned off.

/// The name of the script the form writes.
pub(crate) const SCRIPT_NAME: &str = "out-of-office";
/// Longest subject, bytes.
pub(crate) const MAX_SUBJECT: usize = 256;
/// Longest reply text, bytes.
pub(crate) const MAX_TEXT: usize = 16 * 1024;
/// The range of days between two replies to one sender (the interpreter's defaults).
pub(crate) const DAYS: std::ops::RangeInclusive<u32> = 1..=90;

const MARKER: &str = "# postfach-vacation: ";

/// What the form holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Vacation {
    /// Subject of the reply.
    pub(crate) subject: String,
    /// Body of the reply.
    pub(crate) text: String,
    /// Days before the same sender gets another reply.
    pub(crate) days: u32,
    /// First day the reply is sent (`yyyy-mm-dd`, UTC); `None`: from now.
    pub(crate) first: Option<String>,
    /// Last day the reply is sent (`yyyy-mm-dd`, UTC); `None`: until it is turned off.
    pub(crate) last: Option<String>,
    /// The script that was active before, to activate again when the reply is turned off.
    pub(crate) previous: Option<String>,
}

impl Vacation {
    /// The Sieve script: the vacation action (RFC 5230), inside a `currentdate` test (RFC 5260)
    /// when a first or last day is given.
    pub(crate) fn script(&self) -> String {
        let mut fields = form_urlencoded::Serializer::new(String::new());
        fields.append_pair("subject", &self.subject);
        fields.append_pair("text", &self.text);
        fields.append_pair("days", &self.days.to_string());
        if let Some(first) = &self.first {
            fields.append_pair("first", first);
        }
        if let Some(last) = &self.last {
            fields.append_pair("last", last);
        }
        if let Some(p) = &self.previous {
            fields.append_pair("previous", p);
        }
        let action = format!(
            "vacation :days {} :subject {} {};",
            self.days,
            quoted(&self.subject),
            quoted(&self.text)
        );
        let mut window = Vec::new();
        if let Some(first) = &self.first {
            window.push(format!("currentdate :value \"ge\" \"date\" {}", quoted(first)));
        }
        if let Some(last) = &self.last {
            window.push(format!("currentdate :value \"le\" \"date\" {}", quoted(last)));
        }
        let (require, body) = if window.is_empty() {
            ("require [\"vacation\"];".to_owned(), action)
        } else {
            (
                "require [\"vacation\", \"date\", \"relational\"];".to_owned(),
                format!("if allof({}) {{\n    {action}\n}}", window.join(", ")),
            )
        };
        format!(
            "# Out-of-office reply, written by Postfach's web pages (change it there).\n{MARKER}{}\n{require}\n{body}\n",
            fields.finish()
        )
    }

    /// Reads the form's values back from a script the form wrote; `None` for any other script.
    pub(crate) fn from_script(script: &str) -> Option<Self> {
        let line = script.lines().find_map(|l| l.strip_prefix(MARKER))?;
        let mut v = Vacation { days: 7, ..Vacation::default() };
        for (name, value) in form_urlencoded::parse(line.trim().as_bytes()) {
            match &*name {
                "subject" => v.subject = value.into_owned(),
                "text" => v.text = value.into_owned(),
                "days" => v.days = value.parse().unwrap_or(7),
                "previous" => v.previous = Some(value.into_owned()),
                "first" if is_day(&value) => v.first = Some(value.into_owned()),
                "last" if is_day(&value) => v.last = Some(value.into_owned()),
                _ => {}
            }
        }
        Some(v)
    }
}

/// Whether `text` is a day as the form's date fields send it (`yyyy-mm-dd`).
pub(crate) fn is_day(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && matches!(
            &text[5..7],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
        && text[8..10].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
}

/// A Sieve quoted string (RFC 5228 §2.4.2): `"` and `\` escaped; line ends kept.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_script_compiles_and_reads_back() {
        let v = Vacation {
            subject: "Away \"till\" Monday".to_owned(),
            text: "I am away.\nBack on Monday \\o/".to_owned(),
            days: 3,
            previous: Some("filters".to_owned()),
            ..Vacation::default()
        };
        let script = v.script();
        postfach_sieve::compile(&script).unwrap();
        assert_eq!(Vacation::from_script(&script), Some(v.clone()));
        assert_eq!(Vacation::from_script("keep;\n"), None);

        // With first and last days: the reply only inside them (RFC 5260 currentdate).
        let dated =
            Vacation { first: Some("2026-12-24".to_owned()), last: Some("2027-01-06".to_owned()), ..v };
        let script = dated.script();
        let compiled = postfach_sieve::compile(&script).unwrap();
        assert_eq!(Vacation::from_script(&script), Some(dated));
        let day = |d: i64| 1_766_534_400 + d * 86_400; // 2025-12-24 + d days, 00:00 UTC
        let message = Probe;
        let replies = |now: i64| {
            let settings = postfach_sieve::Settings { now: Some(now), ..postfach_sieve::Settings::default() };
            postfach_sieve::evaluate(&compiled, &message, &settings)
                .actions
                .iter()
                .any(|a| matches!(a, postfach_sieve::Action::Vacation(_)))
        };
        assert!(!replies(day(364)), "2026-12-23");
        assert!(replies(day(365)), "2026-12-24");
        assert!(replies(day(365 + 13)), "2027-01-06");
        assert!(!replies(day(365 + 14)), "2027-01-07");
        assert!(
            is_day("2026-02-28") && !is_day("2026-13-01") && !is_day("26-01-01") && !is_day("2026-01-32")
        );
    }

    /// A message with nothing in it: the script's tests look only at the date.
    struct Probe;

    impl postfach_sieve::Message for Probe {
        fn header(&self, _: &str) -> Vec<String> {
            Vec::new()
        }
        fn envelope_from(&self) -> Option<&str> {
            Some("someone@example.org")
        }
        fn envelope_to(&self) -> Option<&str> {
            Some("me@example.org")
        }
        fn size(&self) -> u64 {
            0
        }
        fn body_text(&self, _: &postfach_sieve::BodyTransform) -> Vec<String> {
            Vec::new()
        }
    }
}
