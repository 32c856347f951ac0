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
    /// The script that was active before, to activate again when the reply is turned off.
    pub(crate) previous: Option<String>,
}

impl Vacation {
    /// The Sieve script. (First and last days would need the interpreter's `date` extension,
    /// RFC 5260, which it does not have yet: the reply runs until it is turned off.)
    pub(crate) fn script(&self) -> String {
        let mut fields = form_urlencoded::Serializer::new(String::new());
        fields.append_pair("subject", &self.subject);
        fields.append_pair("text", &self.text);
        fields.append_pair("days", &self.days.to_string());
        if let Some(p) = &self.previous {
            fields.append_pair("previous", p);
        }
        let action = format!(
            "vacation :days {} :subject {} {};",
            self.days,
            quoted(&self.subject),
            quoted(&self.text)
        );
        format!(
            "# Out-of-office reply, written by Postfach's web pages (change it there).\n{MARKER}{}\nrequire [\"vacation\"];\n{action}\n",
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
        };
        let script = v.script();
        postfach_sieve::compile(&script).unwrap();
        assert_eq!(Vacation::from_script(&script), Some(v));
        assert_eq!(Vacation::from_script("keep;\n"), None);
    }
}
