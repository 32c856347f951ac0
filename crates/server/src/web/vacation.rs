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
    /// First day of the absence (`YYYY-MM-DD`, UTC), if any.
    pub(crate) from: Option<String>,
    /// Last day of the absence (`YYYY-MM-DD`, UTC), if any.
    pub(crate) until: Option<String>,
    /// The script that was active before, to activate again when the reply is turned off.
    pub(crate) previous: Option<String>,
}

impl Vacation {
    /// The Sieve script. Dates become `currentdate` tests (RFC 5260 §5) when given.
    pub(crate) fn script(&self) -> String {
        let mut fields = form_urlencoded::Serializer::new(String::new());
        fields.append_pair("subject", &self.subject);
        fields.append_pair("text", &self.text);
        fields.append_pair("days", &self.days.to_string());
        if let Some(d) = &self.from {
            fields.append_pair("from", d);
        }
        if let Some(d) = &self.until {
            fields.append_pair("until", d);
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
        let mut tests = Vec::new();
        if let Some(d) = &self.from {
            tests.push(format!("currentdate :value \"ge\" \"date\" {}", quoted(d)));
        }
        if let Some(d) = &self.until {
            tests.push(format!("currentdate :value \"le\" \"date\" {}", quoted(d)));
        }
        let (require, body) = if tests.is_empty() {
            ("require [\"vacation\"];".to_owned(), format!("{action}\n"))
        } else {
            (
                "require [\"vacation\", \"date\", \"relational\"];".to_owned(),
                format!("if allof ({}) {{\n    {action}\n}}\n", tests.join(", ")),
            )
        };
        format!(
            "# Out-of-office reply, written by Postfach's web pages (change it there).\n{MARKER}{}\n{require}\n{body}",
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
                "from" => v.from = Some(value.into_owned()),
                "until" => v.until = Some(value.into_owned()),
                "previous" => v.previous = Some(value.into_owned()),
                _ => {}
            }
        }
        Some(v)
    }
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

/// Checks a `YYYY-MM-DD` date from the form (a real calendar day).
pub(crate) fn valid_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return false };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else { return false };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
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
            from: None,
            until: None,
            previous: Some("filters".to_owned()),
        };
        let script = v.script();
        postfach_sieve::compile(&script).unwrap();
        assert_eq!(Vacation::from_script(&script), Some(v));
        assert_eq!(Vacation::from_script("keep;\n"), None);
    }

    #[test]
    fn dates_are_checked() {
        assert!(valid_date("2026-12-24"));
        assert!(valid_date("2024-02-29"));
        assert!(!valid_date("2023-02-29"));
        assert!(!valid_date("2026-13-01"));
        assert!(!valid_date("26-12-01"));
        assert!(!valid_date("2026-1-01"));
        assert!(!valid_date(""));
    }
}
