//! The account export format, version 1 (`docs/export-format.md`): its lines as serde
//! structs, dates, flags, expunge runs, checksums, and the [`Writer`] every producer uses (the
//! Postfach export and the converters of other sources), so that one format leaves this crate.
//!
//! Limits: a message is held in memory while it is written or read (the store holds whole
//! messages too); the JSON-lines files are streamed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use postfach_proto::datetime::{civil_from_days, days_from_civil};
use postfach_store::{Flags, InternalDate, SystemFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// `manifest.json`'s `format`.
pub const FORMAT: &str = "postfach-export";
/// The version this crate writes and reads.
pub const VERSION: u32 = 1;

/// The files of an export, as the manifest lists them.
pub const MANIFEST: &str = "manifest.json";
/// One line: the account.
pub const ACCOUNT: &str = "account.jsonl";
/// One line per mailbox.
pub const MAILBOXES: &str = "mailboxes.jsonl";
/// One line per message.
pub const MESSAGES: &str = "messages.jsonl";
/// One line per private `\Seen` row.
pub const PRIVATE_SEEN: &str = "private_seen.jsonl";
/// One line per Sieve script.
pub const SIEVE: &str = "sieve.jsonl";
/// Message bytes by SHA-256.
pub const BLOBS: &str = "blobs";

/// The JSON-lines files, in the order the manifest lists them.
pub const JSONL_FILES: [&str; 5] = [ACCOUNT, MAILBOXES, MESSAGES, PRIVATE_SEEN, SIEVE];

/// `manifest.json`: what, from where, when, and the checksums of the JSON-lines files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The Postfach version that wrote it.
    pub postfach: String,
    /// When, RFC 3339 UTC.
    pub created: String,
    /// The account's name at the source.
    pub account: String,
    /// `postfach`, `maildir`, `dovecot-maildir`, `mbox` or `imap`.
    pub source: String,
    /// Incremental: the lowest `since_modseq` of the mailboxes; `null` for a full export.
    pub since_modseq: Option<u64>,
    /// SHA-256 (lowercase hex) of each JSON-lines file.
    pub files: BTreeMap<String, String>,
    /// What it holds.
    pub counts: Counts,
}

/// `manifest.json`'s `counts`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Mailbox lines.
    pub mailboxes: u64,
    /// Message lines.
    pub messages: u64,
    /// Sum of the messages' sizes.
    pub bytes: u64,
}

/// `account.jsonl`'s one line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountLine {
    /// Login or team name.
    pub name: String,
    /// `user` or `team`.
    pub kind: String,
    /// A team's delivery address.
    #[serde(default)]
    pub address: Option<String>,
    /// The account's own quota limits (`null`: the installation's default).
    #[serde(default)]
    pub quota: QuotaLine,
    /// Subscribed names.
    #[serde(default)]
    pub subscriptions: Vec<String>,
    /// Groups the account is a member of (`$group` ACL grantees).
    #[serde(default)]
    pub groups: Vec<String>,
    /// A team's members with the rights membership grants (Postfach's addition to version 1; an
    /// importer that does not know it ignores it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberLine>,
    /// The account's private METADATA server entries (RFC 5464; Postfach's addition to version
    /// 1; left out when empty). The installation's shared server entries are not the account's
    /// and are not exported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<MetadataLine>,
}

/// Quota limits: bytes, messages, mailboxes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLine {
    /// Bytes.
    pub storage: Option<u64>,
    /// Messages.
    pub messages: Option<u64>,
    /// Mailboxes.
    pub mailboxes: Option<u64>,
}

/// A team member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLine {
    /// The member's account name.
    pub name: String,
    /// RFC 4314 letters.
    pub rights: String,
}

/// `mailboxes.jsonl`: one mailbox.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MailboxLine {
    /// `/`-separated, `INBOX` for the inbox.
    pub name: String,
    /// RFC 8474 MAILBOXID at the source.
    #[serde(default)]
    pub mailbox_id: Option<String>,
    /// UIDVALIDITY; `null` when the source has none (plain Maildir, mbox).
    #[serde(default)]
    pub uid_validity: Option<u32>,
    /// UIDNEXT.
    #[serde(default)]
    pub uid_next: Option<u32>,
    /// HIGHESTMODSEQ; `null` when the source keeps none.
    #[serde(default)]
    pub highest_modseq: Option<u64>,
    /// RFC 6154 attribute.
    #[serde(default)]
    pub special_use: Option<String>,
    /// `shared` or `private`.
    #[serde(default)]
    pub seen_mode: Option<String>,
    /// ACL entries other than the owner's.
    #[serde(default)]
    pub acl: Vec<AclLine>,
    /// Expunged UIDs (what QRESYNC needs); `null`: unknown to the source.
    #[serde(default)]
    pub expunged: Option<Expunged>,
    /// Incremental: changes above this modseq only.
    #[serde(default)]
    pub since_modseq: Option<u64>,
    /// METADATA entries (RFC 5464): shared ones and every account's private ones (Postfach's
    /// addition to version 1; left out when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<MetadataLine>,
}

/// One METADATA entry (RFC 5464) of a mailbox, or of the account's private server entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataLine {
    /// The entry's name, lowercase (`/shared/comment`, `/private/vendor/acme/x`).
    pub entry: String,
    /// Whose private entry it is, by name; `null` for a shared entry (and in `account.jsonl`,
    /// where every entry is the account's own).
    #[serde(default)]
    pub account: Option<String>,
    /// The value, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value in lowercase hex, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_hex: Option<String>,
}

impl MetadataLine {
    /// A line for `value`: as text when it is UTF-8, else in hex.
    pub fn new(entry: String, account: Option<String>, value: Vec<u8>) -> MetadataLine {
        match String::from_utf8(value) {
            Ok(text) => MetadataLine { entry, account, value: Some(text), value_hex: None },
            Err(e) => {
                let hex = e.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
                MetadataLine { entry, account, value: None, value_hex: Some(hex) }
            }
        }
    }

    /// The value's bytes; `None` when the line has none or its hex is broken.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        if let Some(text) = &self.value {
            return Some(text.as_bytes().to_vec());
        }
        let hex = self.value_hex.as_deref()?.as_bytes();
        if hex.len() % 2 != 0 {
            return None;
        }
        hex.chunks(2)
            .map(|pair| std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok()))
            .collect()
    }
}

/// One ACL entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclLine {
    /// As in SETACL: `bob`, `-eve`, `$staff`, `anyone`, `authenticated`.
    pub identifier: String,
    /// RFC 4314 letters.
    pub rights: String,
}

/// Expunged UIDs as runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expunged {
    /// `[first, last]` runs.
    #[serde(default)]
    pub ranges: Vec<[u32; 2]>,
    /// `[first, last, modseq]` runs, when the source knows when.
    #[serde(default)]
    pub modseq: Option<Vec<[u64; 3]>>,
}

/// `messages.jsonl`: one message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessageLine {
    /// Its mailbox's name.
    pub mailbox: String,
    /// UID.
    pub uid: u32,
    /// MODSEQ; `null` when the source keeps none.
    #[serde(default)]
    pub modseq: Option<u64>,
    /// Names the blob.
    pub sha256: String,
    /// Length of the blob.
    pub size: u64,
    /// System flags other than `\Recent`.
    #[serde(default)]
    pub flags: Vec<String>,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// RFC 3339 with the zone offset.
    pub internal_date: String,
    /// RFC 8514 SAVEDATE, RFC 3339.
    #[serde(default)]
    pub save_date: Option<String>,
    /// RFC 8474 EMAILID (informative).
    #[serde(default)]
    pub email_id: Option<String>,
    /// RFC 8474 THREADID (informative).
    #[serde(default)]
    pub thread_id: Option<String>,
}

/// `private_seen.jsonl`: one viewer's `\Seen` of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateSeenLine {
    /// The mailbox.
    pub mailbox: String,
    /// The message.
    pub uid: u32,
    /// The viewer's account name.
    pub account: String,
    /// Seen or not.
    pub seen: bool,
    /// MODSEQ of the change.
    #[serde(default)]
    pub modseq: Option<u64>,
}

/// `sieve.jsonl`: one script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SieveLine {
    /// Its name.
    pub name: String,
    /// Whether it is the active one.
    pub active: bool,
    /// The script text.
    pub script: String,
}

// --- flags ----------------------------------------------------------------------------------------

/// The system flags as the format names them.
pub fn flag_names(flags: SystemFlags) -> Vec<String> {
    SystemFlags::ALL.iter().filter(|(f, _)| flags.contains(*f)).map(|(_, n)| (*n).to_owned()).collect()
}

/// System flags from their names (case-insensitive); unknown ones (and `\Recent`) are returned
/// apart for the caller to report.
pub fn parse_flags(names: &[String]) -> (SystemFlags, Vec<String>) {
    let (mut flags, mut unknown) = (SystemFlags::default(), Vec::new());
    for name in names {
        match SystemFlags::ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)) {
            Some((f, _)) => flags = flags.union(*f),
            None if name.eq_ignore_ascii_case("\\Recent") => {}
            None => unknown.push(name.clone()),
        }
    }
    (flags, unknown)
}

/// Longest keyword the store takes.
const MAX_KEYWORD_LEN: usize = 250;

/// Whether a keyword is an IMAP atom the store takes (RFC 9051 §9 `flag-keyword`).
pub fn valid_keyword(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_KEYWORD_LEN
        && k.bytes().all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
}

/// Flags from a message line: the valid ones, and a note about each name that was dropped.
pub fn flags_of(line: &MessageLine) -> (Flags, Vec<String>) {
    let (system, mut dropped) = parse_flags(&line.flags);
    let mut keywords = Vec::new();
    for k in &line.keywords {
        if valid_keyword(k) {
            keywords.push(k.clone());
        } else {
            dropped.push(k.clone());
        }
    }
    let mut flags = Flags { system, keywords };
    flags.normalise();
    (flags, dropped)
}

// --- dates ----------------------------------------------------------------------------------------

/// RFC 3339 with the date's own zone offset: `2026-11-30T08:15:02+01:00` (`Z` for UTC).
pub fn format_date(date: InternalDate) -> String {
    let local = date.unix + i64::from(date.offset_minutes) * 60;
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let mut out = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if date.offset_minutes == 0 {
        out.push('Z');
    } else {
        let sign = if date.offset_minutes < 0 { '-' } else { '+' };
        let off = date.offset_minutes.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", off / 60, off % 60));
    }
    out
}

/// RFC 3339 in UTC.
pub fn format_utc(unix: i64) -> String {
    format_date(InternalDate { unix, offset_minutes: 0 })
}

/// Parses RFC 3339 (`T` or a space between date and time, fractions of a second ignored,
/// `Z` or `±hh:mm`).
pub fn parse_date(s: &str) -> Option<InternalDate> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':'
    {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset_minutes: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = rest[1..].split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 60 + m)
        }
    };
    let days = days_from_civil(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?);
    let local = days * 86_400 + hour * 3600 + minute * 60 + second.min(59);
    Some(InternalDate {
        unix: local - offset_minutes * 60,
        offset_minutes: i16::try_from(offset_minutes).ok()?,
    })
}

/// Seconds since the epoch now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

// --- expunge runs ---------------------------------------------------------------------------------

/// `(uid, modseq)` pairs, ascending by UID, as `[first, last, modseq]` runs: consecutive UIDs
/// with the same modseq share a run.
pub fn runs_with_modseq(pairs: &[(u32, u64)]) -> Vec<[u64; 3]> {
    let mut out: Vec<[u64; 3]> = Vec::new();
    for &(uid, modseq) in pairs {
        match out.last_mut() {
            Some(last) if last[1] + 1 == u64::from(uid) && last[2] == modseq => last[1] = u64::from(uid),
            _ => out.push([u64::from(uid), u64::from(uid), modseq]),
        }
    }
    out
}

/// Ascending UIDs as `[first, last]` runs.
pub fn runs(uids: impl IntoIterator<Item = u32>) -> Vec<[u32; 2]> {
    let mut out: Vec<[u32; 2]> = Vec::new();
    for uid in uids {
        match out.last_mut() {
            Some(last) if last[1].checked_add(1) == Some(uid) => last[1] = uid,
            _ => out.push([uid, uid]),
        }
    }
    out
}

/// The UIDs below `uid_next` not in `present` (ascending), as runs: what a source without an
/// expunge history has handed out and lost.
pub fn gaps(present: &[u32], uid_next: u32) -> Vec<[u32; 2]> {
    let mut out = Vec::new();
    let mut next = 1u32;
    for &uid in present {
        if uid >= uid_next {
            break;
        }
        if uid > next {
            out.push([next, uid - 1]);
        }
        next = next.max(uid.saturating_add(1));
    }
    if next < uid_next {
        out.push([next, uid_next - 1]);
    }
    out
}

// --- messages ---------------------------------------------------------------------------------------

/// Why a message cannot be stored as one: empty, holding a NUL (IMAP cannot send it without
/// BINARY, RFC 9051 §4.3), or not starting with a header field (nor with the empty line of a
/// message without fields, RFC 5322 §3.5). `None` when it is fine.
pub fn check_message(raw: &[u8]) -> Option<String> {
    if raw.is_empty() {
        return Some("empty message".to_owned());
    }
    if let Some(at) = raw.iter().position(|b| *b == 0) {
        return Some(format!("NUL byte at offset {at}"));
    }
    if raw.starts_with(b"\r\n") || raw.starts_with(b"\n") {
        return None;
    }
    let name_len = raw.iter().take_while(|b| b.is_ascii_graphic() && **b != b':').count();
    let after = raw[name_len..].iter().find(|b| **b != b' ' && **b != b'\t');
    if name_len == 0 || after != Some(&b':') {
        let first: String =
            String::from_utf8_lossy(&raw[..raw.len().min(40)]).chars().take_while(|c| *c != '\n').collect();
        return Some(format!("does not start with a header field: {:?}", first.trim_end()));
    }
    None
}

/// Bare LF line ends as CRLF (what IMAP serves; Maildir and mbox files usually hold LF).
pub fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut previous = 0u8;
    for &b in raw {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    out
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Whether `s` can name a blob (64 lowercase hex digits): a line cannot point outside `blobs/`.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Where the blob of `sha256` lives under `dir`.
pub fn blob_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(BLOBS).join(&sha256[..2]).join(sha256)
}

/// Reads a blob and checks it against its line: the bytes, or why they cannot be used.
pub fn read_blob(dir: &Path, sha256: &str, size: u64) -> std::result::Result<Vec<u8>, String> {
    if !is_sha256(sha256) {
        return Err(format!("not a SHA-256: {sha256:?}"));
    }
    let path = blob_path(dir, sha256);
    let raw = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if raw.len() as u64 != size {
        return Err(format!("blob {sha256} has {} bytes, the line says {size}", raw.len()));
    }
    if sha256_hex(&raw) != sha256 {
        return Err(format!("blob {sha256} does not match its SHA-256"));
    }
    Ok(raw)
}

// --- writing ----------------------------------------------------------------------------------------

/// Writes an export directory: blobs as they come, message and private-seen lines streamed,
/// mailbox, account and Sieve lines at [`Writer::finish`], the manifest last: a directory
/// without a manifest is an unfinished export.
pub struct Writer {
    dir: PathBuf,
    messages: BufWriter<File>,
    private_seen: BufWriter<File>,
    mailboxes: Vec<MailboxLine>,
    counts: Counts,
    /// Blob directories known to exist.
    made: std::collections::HashSet<[u8; 2]>,
}

impl Writer {
    /// Starts an export in `dir` (created if needed). Refused when `dir` holds a finished
    /// export; the blobs of an unfinished one are reused.
    pub fn create(dir: &Path) -> Result<Writer> {
        if dir.join(MANIFEST).exists() {
            return Err(Error::Usage(format!(
                "{} already holds an export (manifest.json); choose another directory",
                dir.display()
            )));
        }
        fs::create_dir_all(dir.join(BLOBS)).map_err(|e| Error::io(dir, e))?;
        let open = |name: &str| -> Result<BufWriter<File>> {
            let path = dir.join(name);
            File::create(&path).map(BufWriter::new).map_err(|e| Error::io(&path, e))
        };
        Ok(Writer {
            messages: open(MESSAGES)?,
            private_seen: open(PRIVATE_SEEN)?,
            dir: dir.to_owned(),
            mailboxes: Vec::new(),
            counts: Counts::default(),
            made: std::collections::HashSet::new(),
        })
    }

    /// The directory being written.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores message bytes (once per content) and returns their SHA-256.
    pub fn blob(&mut self, raw: &[u8]) -> Result<String> {
        let sha = sha256_hex(raw);
        let path = blob_path(&self.dir, &sha);
        let key = [sha.as_bytes()[0], sha.as_bytes()[1]];
        if !self.made.contains(&key) {
            let parent = self.dir.join(BLOBS).join(&sha[..2]);
            fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
            self.made.insert(key);
        }
        if fs::metadata(&path).is_ok_and(|m| m.len() == raw.len() as u64) {
            return Ok(sha);
        }
        // Written under a temporary name and renamed: a crash leaves no half blob under the
        // real name.
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, raw).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        Ok(sha)
    }

    /// Adds a message line (its blob must be written).
    pub fn message(&mut self, line: &MessageLine) -> Result<()> {
        self.counts.messages += 1;
        self.counts.bytes += line.size;
        write_line(&mut self.messages, line, &self.dir.join(MESSAGES))
    }

    /// Adds a private `\Seen` line.
    pub fn private_seen(&mut self, line: &PrivateSeenLine) -> Result<()> {
        write_line(&mut self.private_seen, line, &self.dir.join(PRIVATE_SEEN))
    }

    /// Adds a mailbox line (written, sorted by name, at the end).
    pub fn mailbox(&mut self, line: MailboxLine) {
        self.mailboxes.push(line);
    }

    /// Writes the remaining files and the manifest, each synced to disk.
    pub fn finish(
        mut self,
        account: &AccountLine,
        sieve: &[SieveLine],
        source: &str,
        since_modseq: Option<u64>,
    ) -> Result<Manifest> {
        let flush = |w: BufWriter<File>, name: &str, dir: &Path| -> Result<()> {
            let path = dir.join(name);
            let file = w.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
            file.sync_all().map_err(|e| Error::io(&path, e))
        };
        flush(self.messages, MESSAGES, &self.dir)?;
        flush(self.private_seen, PRIVATE_SEEN, &self.dir)?;
        self.mailboxes.sort_by(|a, b| a.name.cmp(&b.name));
        self.counts.mailboxes = self.mailboxes.len() as u64;
        write_all_lines(&self.dir.join(MAILBOXES), &self.mailboxes)?;
        write_all_lines(&self.dir.join(ACCOUNT), std::slice::from_ref(account))?;
        write_all_lines(&self.dir.join(SIEVE), sieve)?;
        let mut files = BTreeMap::new();
        for name in JSONL_FILES {
            files.insert(name.to_owned(), file_sha256(&self.dir.join(name))?);
        }
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            version: VERSION,
            postfach: env!("CARGO_PKG_VERSION").to_owned(),
            created: format_utc(unix_now()),
            account: account.name.clone(),
            source: source.to_owned(),
            since_modseq,
            files,
            counts: self.counts,
        };
        let path = self.dir.join(MANIFEST);
        let tmp = self.dir.join("manifest.json.tmp");
        let mut text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::Format(e.to_string()))?;
        text.push('\n');
        let mut file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        Ok(manifest)
    }
}

fn write_line<T: Serialize>(out: &mut impl Write, line: &T, path: &Path) -> Result<()> {
    let mut text = serde_json::to_string(line).map_err(|e| Error::Format(e.to_string()))?;
    text.push('\n');
    out.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
}

fn write_all_lines<T: Serialize>(path: &Path, lines: &[T]) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut out = BufWriter::new(file);
    for line in lines {
        write_line(&mut out, line, path)?;
    }
    let file = out.into_inner().map_err(|e| Error::io(path, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

/// SHA-256 of a file, streamed.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

// --- reading ----------------------------------------------------------------------------------------

/// Reads and checks the manifest of `dir`: format, version, and every JSON-lines file against
/// its checksum.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::Usage(format!("{} holds no finished export (no manifest.json)", dir.display()))
        }
        _ => Error::io(&path, e),
    })?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| Error::Format(format!("{}: {e}", path.display())))?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        return Err(Error::Format(format!(
            "{}: format {:?} version {}, expected {FORMAT:?} version {VERSION}",
            path.display(),
            manifest.format,
            manifest.version
        )));
    }
    for (name, want) in &manifest.files {
        if !JSONL_FILES.contains(&name.as_str()) {
            continue;
        }
        let got = file_sha256(&dir.join(name))?;
        if &got != want {
            return Err(Error::Format(format!("{name} does not match the checksum in manifest.json")));
        }
    }
    Ok(manifest)
}

/// Every line of a JSON-lines file (a missing file reads as none).
pub fn read_lines<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for_each_line(path, |line, _| {
        out.push(line);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `each` with every line of a JSON-lines file and its line number (a missing file reads
/// as none).
pub fn for_each_line<T: for<'de> Deserialize<'de>>(
    path: &Path,
    mut each: impl FnMut(T, usize) -> Result<()>,
) -> Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(&line)
            .map_err(|e| Error::Format(format!("{}:{}: {e}", path.display(), n + 1)))?;
        each(value, n + 1)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn metadata_values_as_text_or_hex() {
        let text = MetadataLine::new("/shared/c".into(), None, b"plain\0text".to_vec());
        assert_eq!(text.value.as_deref(), Some("plain\0text"));
        assert_eq!(text.bytes(), Some(b"plain\0text".to_vec()));
        let binary = MetadataLine::new("/private/b".into(), Some("bob".into()), vec![0xff, 0x00, 0x7f]);
        assert_eq!((binary.value.as_deref(), binary.value_hex.as_deref()), (None, Some("ff007f")));
        assert_eq!(binary.bytes(), Some(vec![0xff, 0x00, 0x7f]));
        let json = serde_json::to_string(&binary).unwrap();
        assert_eq!(json, r#"{"entry":"/private/b","account":"bob","value_hex":"ff007f"}"#);
        let back: MetadataLine = serde_json::from_str(&json).unwrap();
        assert_eq!(back, binary);
        let broken = MetadataLine { value_hex: Some("f".into()), ..binary.clone() };
        assert_eq!(broken.bytes(), None);
        let none = MetadataLine { value_hex: None, ..binary };
        assert_eq!(none.bytes(), None);
    }

    #[test]
    fn dates_round_trip_with_their_zone() {
        for (unix, offset) in [(0, 0), (1_733_500_000, 60), (1_733_500_000, -330), (-86_401, 14 * 60)] {
            let d = InternalDate { unix, offset_minutes: offset };
            assert_eq!(parse_date(&format_date(d)), Some(d), "{}", format_date(d));
        }
        assert_eq!(
            format_date(InternalDate { unix: 1_764_486_902, offset_minutes: 60 }),
            "2025-11-30T08:15:02+01:00"
        );
        assert_eq!(parse_date("2026-12-01T10:00:00.123Z").map(|d| d.offset_minutes), Some(0));
        for bad in ["", "2026-13-01T00:00:00Z", "2026-12-01T00:00:00", "2026-12-01T00:00:00+1:00", "x"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn runs_and_gaps() {
        assert_eq!(runs([1, 2, 3, 7, 9, 10]), vec![[1, 3], [7, 7], [9, 10]]);
        assert_eq!(
            runs_with_modseq(&[(1, 5), (2, 5), (3, 6), (5, 6)]),
            vec![[1, 2, 5], [3, 3, 6], [5, 5, 6]]
        );
        assert_eq!(gaps(&[2, 3, 6], 9), vec![[1, 1], [4, 5], [7, 8]]);
        assert_eq!(gaps(&[1, 2], 3), Vec::<[u32; 2]>::new());
        assert_eq!(gaps(&[], 1), Vec::<[u32; 2]>::new());
    }

    #[test]
    fn messages_are_checked() {
        assert_eq!(check_message(b"Subject: x\r\n\r\nbody"), None);
        assert_eq!(check_message(b"\r\nbody only"), None);
        assert_eq!(check_message(b"X-Odd-Name : y\n\nz"), None);
        assert!(check_message(b"").is_some());
        assert!(check_message(b"Subject: a\r\n\r\n\0").is_some());
        assert!(check_message(b"this is not a header\r\n").is_some());
        assert_eq!(crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
    }

    #[test]
    fn flags_keep_valid_names_only() {
        let line = MessageLine {
            flags: vec!["\\Seen".into(), "\\recent".into(), "\\Bogus".into()],
            keywords: vec!["$Forwarded".into(), "bad keyword".into()],
            ..MessageLine::default()
        };
        let (flags, dropped) = flags_of(&line);
        assert_eq!(flags.system, SystemFlags::SEEN);
        assert_eq!(flags.keywords, vec!["$Forwarded".to_owned()]);
        assert_eq!(dropped, vec!["\\Bogus".to_owned(), "bad keyword".to_owned()]);
    }
}
