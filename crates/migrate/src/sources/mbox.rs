//! mbox → export directory.
//!
//! # What is read
//! - A file is one mailbox (INBOX, or the name given); a directory is a tree of them, named by
//!   their paths below it (`Lists/rust`; a top-level `inbox` is INBOX). Files that do not start
//!   with a `From ` line are not mbox and are left out with a note.
//! - Messages start at lines beginning with `From ` (mboxo/mboxrd); `>From ` lines are unquoted
//!   once (mboxrd). The blank line a writer puts before the next `From ` is not part of the
//!   message.
//! - Flags from the headers mail programs (mutt, Dovecot, UW IMAP, Thunderbird) keep them in:
//!   `Status:` (`R` `\Seen`), `X-Status:` (`A` `\Answered`, `F` `\Flagged`, `T` `\Draft`, `D`
//!   `\Deleted`), `X-Keywords:` (keywords, comma or space separated). UIDs from `X-UID:` with
//!   UIDVALIDITY and UIDNEXT from `X-IMAPbase:` (Dovecot, UW IMAP) when every message has an
//!   ascending one; else `1..n` in file order and no UIDVALIDITY.
//! - INTERNALDATE from the `From ` line's date (asctime, read as UTC), else now.
//!
//! Those metadata headers (`Status`, `X-Status`, `X-Keywords`, `X-UID`, `X-IMAP`, `X-IMAPbase`,
//! `Content-Length`) are removed from the stored message, as Dovecot hides them from IMAP
//! clients; the message is stored with CRLF line ends. A message that is no message
//! ([`format::check_message`]) is reported with its file and line and skipped.

use std::fs;
use std::path::{Path, PathBuf};

use postfach_proto::datetime::days_from_civil;
use postfach_store::{InternalDate, SystemFlags};

use super::ConvertReport;
use crate::format::{self, AccountLine, MailboxLine, MessageLine, Writer};
use crate::{Error, Progress, Result};

/// Headers that hold mbox metadata, not message content.
const METADATA: [&str; 7] =
    ["status", "x-status", "x-keywords", "x-uid", "x-imap", "x-imapbase", "content-length"];

/// Converts the mbox file or directory `path` into an export directory `out` for `account`. A
/// single file becomes `mailbox` (INBOX when `None`).
pub fn convert(path: &Path, mailbox: Option<&str>, account: &str, out: &Path) -> Result<ConvertReport> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut report = ConvertReport { source: "mbox".to_owned(), ..ConvertReport::default() };
    if path.is_dir() {
        collect(path, "", &mut files, &mut report)?;
    } else if path.is_file() {
        files.push((mailbox.unwrap_or("INBOX").to_owned(), path.to_owned()));
    } else {
        return Err(Error::Source(format!("{} is neither a file nor a directory", path.display())));
    }
    files.sort();
    let mut writer = Writer::create(out)?;
    let progress = Progress::messages("read mbox", None);
    for (name, file) in &files {
        progress.at(name);
        let data = fs::read(file).map_err(|e| Error::io(file, e))?;
        let line = convert_file(name, file, &data, &mut writer, &mut report, &progress)?;
        writer.mailbox(line);
        report.mailboxes += 1;
    }
    progress.finish();
    let account_line =
        AccountLine { name: account.to_owned(), kind: "user".to_owned(), ..AccountLine::default() };
    writer.finish(&account_line, &[], "mbox", None)?;
    Ok(report)
}

/// The mbox files below `dir`, named by their relative paths.
fn collect(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, PathBuf)>,
    report: &mut ConvertReport,
) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with('.') {
            continue;
        }
        let name = if prefix.is_empty() { file.clone() } else { format!("{prefix}/{file}") };
        let path = entry.path();
        if path.is_dir() {
            collect(&path, &name, out, report)?;
        } else if looks_like_mbox(&path) {
            let name = if prefix.is_empty() && file.eq_ignore_ascii_case("inbox") {
                "INBOX".to_owned()
            } else {
                name
            };
            out.push((name, path));
        } else {
            report.notes.push(format!("{}: not an mbox file (no From line first), left out", path.display()));
        }
    }
    Ok(())
}

fn looks_like_mbox(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 5];
    fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == b"From "
}

/// One message as cut out of the file.
struct Cut<'a> {
    /// Line number of its `From ` line (1-based).
    line: usize,
    from_line: &'a [u8],
    body: Vec<u8>,
}

/// Splits an mbox into messages.
fn split(data: &[u8]) -> Vec<Cut<'_>> {
    let mut out: Vec<Cut<'_>> = Vec::new();
    let mut at = 0usize;
    let mut line_no = 0usize;
    while at < data.len() {
        let end = data[at..].iter().position(|b| *b == b'\n').map_or(data.len(), |p| at + p + 1);
        let line = &data[at..end];
        line_no += 1;
        if line.starts_with(b"From ") {
            out.push(Cut { line: line_no, from_line: line, body: Vec::new() });
        } else if let Some(current) = out.last_mut() {
            // mboxrd: `>From `, `>>From `, … lose one `>`.
            let quoted = line.iter().take_while(|b| **b == b'>').count();
            if quoted > 0 && line[quoted..].starts_with(b"From ") {
                current.body.extend_from_slice(&line[1..]);
            } else {
                current.body.extend_from_slice(line);
            }
        }
        at = end;
    }
    for cut in &mut out {
        // The separator's blank line belongs to the file, not the message.
        if cut.body.ends_with(b"\n\n") {
            cut.body.pop();
        } else if cut.body.ends_with(b"\r\n\r\n") {
            cut.body.truncate(cut.body.len() - 2);
        }
    }
    out
}

/// The date of a `From sender date` line: `Thu Mar  3 12:00:00 2022` (a zone after it, or none).
fn from_line_date(line: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(line);
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    // Find "Mon DD HH:MM:SS YYYY" anywhere after the sender.
    for i in 2..words.len().saturating_sub(3) + 1 {
        let Some(month) = MONTHS.iter().position(|m| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(m)))
        else {
            continue;
        };
        let day: u32 = words.get(i + 1)?.parse().ok()?;
        let time: Vec<i64> = words.get(i + 2)?.split(':').filter_map(|p| p.parse().ok()).collect();
        let year: i64 = words.get(i + 3)?.parse().ok()?;
        if time.len() < 2 || !(1..=31).contains(&day) {
            return None;
        }
        let days = days_from_civil(year, u32::try_from(month + 1).ok()?, day);
        return Some(days * 86_400 + time[0] * 3600 + time[1] * 60 + time.get(2).copied().unwrap_or(0));
    }
    None
}

/// What the metadata headers said.
#[derive(Debug, Default)]
struct Meta {
    flags: SystemFlags,
    keywords: Vec<String>,
    uid: Option<u32>,
    /// `X-IMAPbase`: UIDVALIDITY and UIDNEXT.
    base: Option<(u32, u32)>,
}

/// Removes the metadata headers from the header section and reads them.
fn strip_metadata(raw: &[u8]) -> (Vec<u8>, Meta) {
    let mut meta = Meta::default();
    let header_end = find_header_end(raw);
    let (header, body) = raw.split_at(header_end);
    let mut kept = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if continuation {
            if !skipping {
                kept.extend_from_slice(line);
            }
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let Some((name, value)) = text.split_once(':') else {
            skipping = false;
            kept.extend_from_slice(line);
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if !METADATA.contains(&name.as_str()) {
            skipping = false;
            kept.extend_from_slice(line);
            continue;
        }
        skipping = true;
        let value = value.trim();
        match name.as_str() {
            "status" if value.contains('R') => meta.flags = meta.flags.union(SystemFlags::SEEN),
            "x-status" => {
                for (c, f) in [
                    ('A', SystemFlags::ANSWERED),
                    ('F', SystemFlags::FLAGGED),
                    ('T', SystemFlags::DRAFT),
                    ('D', SystemFlags::DELETED),
                ] {
                    if value.contains(c) {
                        meta.flags = meta.flags.union(f);
                    }
                }
            }
            "x-keywords" => meta.keywords.extend(
                value.split([',', ' ', '\t']).map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned),
            ),
            "x-uid" => meta.uid = value.parse().ok(),
            "x-imapbase" => {
                let mut words = value.split_ascii_whitespace();
                if let (Some(Ok(v)), Some(Ok(n))) =
                    (words.next().map(str::parse::<u32>), words.next().map(str::parse::<u32>))
                {
                    meta.base = Some((v, n));
                }
            }
            _ => {}
        }
    }
    kept.extend_from_slice(body);
    (kept, meta)
}

/// Where the header section ends (the offset of its blank line, or the end).
fn find_header_end(raw: &[u8]) -> usize {
    let mut at = 0;
    for line in raw.split_inclusive(|b| *b == b'\n') {
        if line == b"\n" || line == b"\r\n" {
            return at;
        }
        at += line.len();
    }
    raw.len()
}

fn convert_file(
    name: &str,
    path: &Path,
    data: &[u8],
    writer: &mut Writer,
    report: &mut ConvertReport,
    progress: &Progress,
) -> Result<MailboxLine> {
    let cuts = split(data);
    let mut prepared = Vec::with_capacity(cuts.len());
    let mut base = None;
    for cut in cuts {
        progress.add(1);
        let (stripped, meta) = strip_metadata(&cut.body);
        let raw = format::crlf(&stripped);
        if let Some(why) = format::check_message(&raw) {
            report.bad.push(format!("{}:{}: {why}", path.display(), cut.line));
            continue;
        }
        base = base.or(meta.base);
        let date = from_line_date(cut.from_line).unwrap_or_else(format::unix_now);
        prepared.push((raw, meta, date));
    }
    // X-UID only when every message has one and they ascend (else numbering could collide).
    let uids_known = base.is_some()
        && prepared.iter().all(|(_, m, _)| m.uid.is_some_and(|u| u > 0))
        && prepared.windows(2).all(|w| w[0].1.uid < w[1].1.uid);
    let mut uid_next = 1u32;
    for (index, (raw, meta, date)) in prepared.into_iter().enumerate() {
        let uid = match meta.uid.filter(|_| uids_known) {
            Some(uid) => uid,
            None => u32::try_from(index + 1).map_err(|_| Error::Source("too many messages".to_owned()))?,
        };
        uid_next = uid_next.max(uid.saturating_add(1));
        let sha256 = writer.blob(&raw)?;
        writer.message(&MessageLine {
            mailbox: name.to_owned(),
            uid,
            modseq: None,
            sha256,
            size: raw.len() as u64,
            flags: format::flag_names(meta.flags),
            keywords: meta.keywords,
            internal_date: format::format_date(InternalDate { unix: date, offset_minutes: 0 }),
            save_date: None,
            email_id: Some(postfach_message::email_id(&raw)),
            thread_id: None,
        })?;
        report.messages += 1;
    }
    let (uid_validity, uid_next) = match base.filter(|_| uids_known) {
        Some((v, n)) => (Some(v), n.max(uid_next)),
        None => (None, uid_next),
    };
    Ok(MailboxLine {
        name: name.to_owned(),
        uid_validity,
        uid_next: Some(uid_next),
        ..MailboxLine::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_unquotes() {
        let data = b"From a@b Thu Mar  3 12:00:00 2022\nSubject: one\n\n>From here\n>>From there\n\nFrom c@d Fri Mar  4 00:00:01 2022\nSubject: two\n\nx\n";
        let cuts = split(data);
        assert_eq!(cuts.len(), 2);
        assert_eq!(cuts[0].body, b"Subject: one\n\nFrom here\n>From there\n");
        assert_eq!(cuts[1].body, b"Subject: two\n\nx\n");
        assert_eq!(cuts[1].line, 7);
        assert_eq!(from_line_date(cuts[0].from_line), Some(1_646_308_800));
        assert_eq!(
            from_line_date(b"From MAILER-DAEMON Thu Mar  3 12:00:00 2022 +0000\n"),
            Some(1_646_308_800)
        );
        assert_eq!(from_line_date(b"From nobody\n"), None);
    }

    #[test]
    fn metadata_headers_become_flags_and_go() {
        let raw = b"Subject: s\nStatus: RO\nX-Status: AF\nX-Keywords: $Label1, Project-X\n  Later\nX-UID: 7\nTo: x\n\nStatus: body\n";
        let (kept, meta) = strip_metadata(raw);
        assert_eq!(kept, b"Subject: s\nTo: x\n\nStatus: body\n");
        assert_eq!(meta.flags, SystemFlags::SEEN.union(SystemFlags::ANSWERED).union(SystemFlags::FLAGGED));
        assert_eq!(meta.keywords, vec!["$Label1".to_owned(), "Project-X".to_owned()]);
        assert_eq!(meta.uid, Some(7));
    }
}
