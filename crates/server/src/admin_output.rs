//! What the admin commands print: aligned columns for people, one JSON document for scripts
//! (`--json`), and dates in RFC 3339 (UTC) for both.
//!
//! Convention of the commands that use it: data goes to standard output (a table, or with
//! `--json` one JSON document, stable field names in snake_case); confirmations and warnings
//! go to standard error as `postfach: …` lines, so a script reading stdout never sees them.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context;
use postfach_proto::datetime::civil_from_days;
use serde::Serialize;

/// Writes `value` as one line of JSON on standard output.
pub(crate) fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string(value).context("writing JSON")?;
    text.push('\n');
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).context("writing to standard output")
}

/// `2026-12-01T09:30:00Z` for Unix seconds.
pub(crate) fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Rows under a header, each column as wide as its widest cell, two spaces apart; the last
/// column is not padded.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_tables() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_117_400), "2026-12-01T09:30:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        let rows =
            vec![vec!["INBOX".to_owned(), "3".to_owned()], vec!["Archive/2026".to_owned(), "12".to_owned()]];
        assert_eq!(
            table(&["NAME", "MESSAGES"], &rows),
            "NAME          MESSAGES\nINBOX         3\nArchive/2026  12\n"
        );
    }
}
