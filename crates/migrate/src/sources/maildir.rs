//! Maildir → export directory: Dovecot's Maildir(++) keeping what Dovecot knows, and plain
//! Maildir.
//!
//! # What is read
//! - Folders: the root's `cur/new/tmp` is INBOX; Maildir++ folders are `.A.B` directories
//!   (`A/B`); with the `fs` layout (Dovecot `LAYOUT=fs`, mbsync `SubFolders Verbatim`) folders
//!   are nested directories, and a directory named `INBOX` is the inbox when the root has none.
//!   Names are decoded from modified UTF-7 when they are valid modified UTF-7.
//! - `dovecot-uidlist` (version 3): UIDVALIDITY (`V`), the next UID (`N`, or past the highest
//!   listed), and each file's UID by its base name. A listed file that is gone was expunged
//!   (the importer records every UID below UIDNEXT that is not present as expunged). Files not
//!   listed yet get UIDs from the next one up, in name order, as Dovecot would give them.
//! - Flags from the file name's `:2,` part: `S` `\Seen`, `R` `\Answered`, `F` `\Flagged`, `T`
//!   `\Deleted`, `D` `\Draft`; lowercase letters are keywords by their index in the folder's
//!   `dovecot-keywords`. `P` (passed) has no IMAP flag and is left out, as Dovecot does.
//! - INTERNALDATE: the file's modification time (Dovecot sets it to the internal date).
//! - Subscriptions: Dovecot's `subscriptions` (version 2: names with a tab between levels, or
//!   one name per line) and Courier's `courierimapsubscribed` (`INBOX.`-prefixed names).
//! - Without `dovecot-uidlist`: UIDs `1..n` in file-name order (the names start with the
//!   delivery time), no UIDVALIDITY (the target makes one).
//!
//! Not read: Dovecot's binary indexes (MODSEQs, save dates; MODSEQs then start afresh),
//! special-use attributes (Dovecot's configuration, not the Maildir's).
//!
//! Messages are stored with CRLF line ends (what Dovecot serves; the files usually hold LF).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use postfach_store::{InternalDate, SystemFlags};

use super::ConvertReport;
use crate::format::{self, AccountLine, MailboxLine, MessageLine, Writer};
use crate::{Error, Progress, Result};

/// One folder on disk.
#[derive(Debug)]
struct Folder {
    name: String,
    path: PathBuf,
}

/// Converts the Maildir at `root` into an export directory `out` for `account`.
pub fn convert(root: &Path, account: &str, out: &Path) -> Result<ConvertReport> {
    if !root.is_dir() {
        return Err(Error::Source(format!("{} is not a directory", root.display())));
    }
    let folders = folders(root)?;
    if folders.is_empty() {
        return Err(Error::Source(format!(
            "{} holds no Maildir (no cur/ directory anywhere)",
            root.display()
        )));
    }
    let mut writer = Writer::create(out)?;
    let mut report = ConvertReport { source: "maildir".to_owned(), ..ConvertReport::default() };
    let total: u64 = folders.iter().map(|f| count_files(&f.path)).sum();
    let progress = Progress::messages("read maildir", Some(total));
    for folder in &folders {
        progress.at(&folder.name);
        let line = convert_folder(folder, &mut writer, &mut report, &progress)?;
        writer.mailbox(line);
        report.mailboxes += 1;
    }
    progress.finish();
    let account_line = AccountLine {
        name: account.to_owned(),
        kind: "user".to_owned(),
        subscriptions: subscriptions(root),
        ..AccountLine::default()
    };
    let source = report.source.clone();
    writer.finish(&account_line, &[], &source, None)?;
    Ok(report)
}

/// A folder name from a directory name: modified UTF-7 decoded when it is that.
fn decode_name(raw: &str) -> String {
    if raw.contains('&')
        && let Ok(decoded) = postfach_proto::mutf7::decode(raw.as_bytes())
    {
        return decoded;
    }
    raw.to_owned()
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir()
}

/// Every folder under `root`, sorted by name.
fn folders(root: &Path) -> Result<Vec<Folder>> {
    let mut out: BTreeMap<String, PathBuf> = BTreeMap::new();
    if is_maildir(root) {
        out.insert("INBOX".to_owned(), root.to_owned());
    }
    let entries = fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    let mut plain = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !path.is_dir() || matches!(file.as_str(), "cur" | "new" | "tmp") {
            continue;
        }
        if let Some(dotted) = file.strip_prefix('.') {
            // Maildir++: `.A.B` is A/B.
            if !dotted.is_empty() && is_maildir(&path) {
                let name = dotted.split('.').map(decode_name).collect::<Vec<_>>().join("/");
                out.insert(name, path);
            }
            continue;
        }
        plain.push((file, path));
    }
    // The fs layout: nested directories.
    let mut stack: Vec<(String, PathBuf)> = plain;
    while let Some((name, path)) = stack.pop() {
        let shown = name.split('/').map(decode_name).collect::<Vec<_>>().join("/");
        if is_maildir(&path) {
            let shown = if shown.eq_ignore_ascii_case("INBOX") { "INBOX".to_owned() } else { shown };
            out.entry(shown).or_insert_with(|| path.clone());
        }
        let Ok(children) = fs::read_dir(&path) else { continue };
        for child in children.flatten() {
            let file = child.file_name().to_string_lossy().into_owned();
            if child.path().is_dir()
                && !file.starts_with('.')
                && !matches!(file.as_str(), "cur" | "new" | "tmp")
            {
                stack.push((format!("{name}/{file}"), child.path()));
            }
        }
    }
    Ok(out.into_iter().map(|(name, path)| Folder { name, path }).collect())
}

fn count_files(folder: &Path) -> u64 {
    ["cur", "new"]
        .iter()
        .filter_map(|sub| fs::read_dir(folder.join(sub)).ok())
        .map(|entries| entries.flatten().filter(|e| e.path().is_file()).count() as u64)
        .sum()
}

/// `dovecot-uidlist`: UIDVALIDITY, the next UID, and base name → UID.
#[derive(Debug, Default)]
struct UidList {
    uid_validity: Option<u32>,
    next_uid: u32,
    uids: HashMap<String, u32>,
}

fn read_uidlist(folder: &Path) -> Option<UidList> {
    let text = fs::read_to_string(folder.join("dovecot-uidlist")).ok()?;
    let mut lines = text.lines();
    let header = lines.next()?;
    let mut fields = header.split_ascii_whitespace();
    let mut list = UidList { next_uid: 1, ..UidList::default() };
    match fields.next()? {
        "3" => {
            for field in fields {
                match field.split_at(1) {
                    ("V", v) => list.uid_validity = v.parse().ok(),
                    ("N", n) => list.next_uid = n.parse().unwrap_or(1),
                    _ => {}
                }
            }
        }
        // Version 1: `1 <uidvalidity> <next uid>`.
        "1" => {
            list.uid_validity = fields.next()?.parse().ok();
            list.next_uid = fields.next()?.parse().unwrap_or(1);
        }
        _ => return None,
    }
    for line in lines {
        let Some((uid, rest)) = line.split_once(' ') else { continue };
        let Ok(uid) = uid.parse::<u32>() else { continue };
        // Version 3 puts extension fields first and the name after " :"; version 1 the name
        // alone.
        let name = match rest.find(':') {
            Some(at) if rest[..at].is_empty() || rest[..at].ends_with(' ') => &rest[at + 1..],
            _ => rest,
        };
        list.uids.insert(base_name(name).to_owned(), uid);
        list.next_uid = list.next_uid.max(uid.saturating_add(1));
    }
    Some(list)
}

/// A Maildir file name without its `:2,…` info part.
fn base_name(file: &str) -> &str {
    file.split_once(':').map_or(file, |(base, _)| base)
}

/// `dovecot-keywords`: index → keyword.
fn read_keywords(folder: &Path) -> HashMap<u32, String> {
    let Ok(text) = fs::read_to_string(folder.join("dovecot-keywords")) else { return HashMap::new() };
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(i, k)| Some((i.parse().ok()?, k.trim().to_owned())))
        .collect()
}

/// Flags from a file name's info part.
fn flags_of_name(file: &str, keywords: &HashMap<u32, String>) -> (SystemFlags, Vec<String>, Vec<char>) {
    let (mut flags, mut names, mut unknown) = (SystemFlags::default(), Vec::new(), Vec::new());
    let Some((_, info)) = file.split_once(":2,") else { return (flags, names, unknown) };
    for c in info.chars() {
        match c {
            'S' => flags = flags.union(SystemFlags::SEEN),
            'R' => flags = flags.union(SystemFlags::ANSWERED),
            'F' => flags = flags.union(SystemFlags::FLAGGED),
            'T' => flags = flags.union(SystemFlags::DELETED),
            'D' => flags = flags.union(SystemFlags::DRAFT),
            'a'..='z' => match keywords.get(&(u32::from(c) - u32::from('a'))) {
                Some(k) => names.push(k.clone()),
                None => unknown.push(c),
            },
            _ => {}
        }
    }
    (flags, names, unknown)
}

fn convert_folder(
    folder: &Folder,
    writer: &mut Writer,
    report: &mut ConvertReport,
    progress: &Progress,
) -> Result<MailboxLine> {
    let uidlist = read_uidlist(&folder.path);
    if uidlist.is_some() {
        report.source = "dovecot-maildir".to_owned();
    }
    let keywords = read_keywords(&folder.path);
    // (base name, file name, path)
    let mut files: Vec<(String, String, PathBuf)> = Vec::new();
    for sub in ["cur", "new"] {
        let dir = folder.path.join(sub);
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with('.') || !entry.path().is_file() {
                continue;
            }
            files.push((base_name(&file).to_owned(), file, entry.path()));
        }
    }
    files.sort();
    let mut next_uid = uidlist.as_ref().map_or(1, |l| l.next_uid);
    let mut numbered: Vec<(u32, String, PathBuf)> = Vec::with_capacity(files.len());
    let mut unlisted = Vec::new();
    for (base, file, path) in files {
        match uidlist.as_ref().and_then(|l| l.uids.get(&base)) {
            Some(uid) => numbered.push((*uid, file, path)),
            None => unlisted.push((file, path)),
        }
    }
    for (file, path) in unlisted {
        numbered.push((next_uid, file, path));
        next_uid = next_uid.saturating_add(1);
    }
    numbered.sort_by_key(|(uid, _, _)| *uid);
    numbered.dedup_by_key(|(uid, _, _)| *uid);

    let mut unknown_letters = 0u64;
    for (uid, file, path) in numbered {
        progress.add(1);
        let raw = match fs::read(&path) {
            Ok(raw) => format::crlf(&raw),
            Err(e) => {
                report.bad.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        if let Some(why) = format::check_message(&raw) {
            report.bad.push(format!("{}: {why}", path.display()));
            continue;
        }
        let (system, names, unknown) = flags_of_name(&file, &keywords);
        unknown_letters += unknown.len() as u64;
        let mtime = fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(format::unix_now, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let sha256 = writer.blob(&raw)?;
        writer.message(&MessageLine {
            mailbox: folder.name.clone(),
            uid,
            modseq: None,
            sha256,
            size: raw.len() as u64,
            flags: format::flag_names(system),
            keywords: names,
            internal_date: format::format_date(InternalDate { unix: mtime, offset_minutes: 0 }),
            save_date: None,
            email_id: Some(postfach_message::email_id(&raw)),
            thread_id: None,
        })?;
        report.messages += 1;
    }
    if unknown_letters > 0 {
        report.notes.push(format!(
            "{}: {unknown_letters} keyword letter(s) in file names not in dovecot-keywords, left out",
            folder.name
        ));
    }
    Ok(MailboxLine {
        name: folder.name.clone(),
        uid_validity: uidlist.as_ref().and_then(|l| l.uid_validity),
        uid_next: Some(next_uid),
        ..MailboxLine::default()
    })
}

/// Subscribed names from Dovecot's or Courier's file, `/`-separated.
fn subscriptions(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(text) = fs::read_to_string(root.join("subscriptions")) {
        let mut lines = text.lines().peekable();
        let tabbed = lines.peek().is_some_and(|l| l.starts_with("V\t"));
        if tabbed {
            lines.next();
        }
        for line in lines.filter(|l| !l.is_empty()) {
            let name = if tabbed { line.replace('\t', "/") } else { line.replace('.', "/") };
            out.push(name);
        }
    }
    if let Ok(text) = fs::read_to_string(root.join("courierimapsubscribed")) {
        for line in text.lines().filter(|l| !l.is_empty()) {
            let name = line.strip_prefix("INBOX.").unwrap_or(line);
            out.push(if name == "INBOX" { name.to_owned() } else { name.replace('.', "/") });
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uidlist_version_3() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("dovecot-uidlist"),
            "3 V1796607854 N3 G88bd\n1 :1796.M1.vm,S=23,W=26\n2 W26 :1796.M2.vm,S=23,W=26:2,S\n5 :1796.M5.vm\n",
        )
        .unwrap();
        let list = read_uidlist(dir.path()).unwrap();
        assert_eq!(list.uid_validity, Some(1_796_607_854));
        assert_eq!(list.next_uid, 6);
        assert_eq!(list.uids.get("1796.M2.vm,S=23,W=26"), Some(&2));
        assert_eq!(list.uids.get("1796.M5.vm"), Some(&5));
    }

    #[test]
    fn flags_from_names() {
        let keywords: HashMap<u32, String> = [(0, "$Forwarded".to_owned()), (2, "$Label1".to_owned())].into();
        let (flags, names, unknown) = flags_of_name("x,S=1:2,FRSacP", &keywords);
        assert_eq!(flags, SystemFlags::FLAGGED.union(SystemFlags::ANSWERED).union(SystemFlags::SEEN));
        assert_eq!(names, vec!["$Forwarded".to_owned(), "$Label1".to_owned()]);
        assert!(unknown.is_empty());
        let (_, _, unknown) = flags_of_name("x:2,b", &keywords);
        assert_eq!(unknown, vec!['b']);
        assert_eq!(flags_of_name("x", &keywords).0, SystemFlags::default());
    }

    #[test]
    fn subscriptions_of_dovecot_and_courier() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("subscriptions"), "V\t2\n\nArchive\t2026\nINBOX\n").unwrap();
        fs::write(dir.path().join("courierimapsubscribed"), "INBOX.Sent\nINBOX\n").unwrap();
        assert_eq!(subscriptions(dir.path()), vec!["Archive/2026", "INBOX", "Sent"]);
    }
}
