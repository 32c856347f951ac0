//! A live IMAP server → export directory: every folder with its UIDVALIDITY, UIDNEXT (and
//! HIGHESTMODSEQ where the server has CONDSTORE), every message with its UID, flags, keywords,
//! INTERNALDATE (and MODSEQ), the subscriptions and the RFC 6154 attributes LIST shows.
//!
//! The source is only read: folders are opened with EXAMINE and bodies fetched with
//! `BODY.PEEK[]`, so no `\Seen` or `\Recent` changes there.
//!
//! # Resumable
//! Bodies go into the work directory as they arrive (content-addressed blobs), and
//! `imap-state/<folder>.tsv` notes each UID fetched with its SHA-256. Run again, the download
//! fetches only what it lacks (all of a folder whose UIDVALIDITY changed meanwhile); flags and
//! dates are read afresh each time, so they are current.
//!
//! Folder names are decoded from modified UTF-7 and their levels joined with `/`; a folder whose
//! name holds `/` under another delimiter cannot be named here and is reported and left out.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use postfach_proto::datetime::days_from_civil;
use postfach_store::InternalDate;

use super::ConvertReport;
pub use super::imap_client::Security;
use super::imap_client::{Client, Response, Token, quote};
use crate::format::{self, AccountLine, MailboxLine, MessageLine, Writer};
use crate::{Error, Progress, Result};

/// Bodies fetched per command: at most this many messages...
const FETCH_MESSAGES: usize = 100;
/// ...and about this many bytes (by RFC822.SIZE).
const FETCH_BYTES: u64 = 8 * 1024 * 1024;

/// Where and as whom to read.
#[derive(Clone)]
pub struct Source {
    /// Host name (checked against the certificate) or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS from the start, STARTTLS, or none.
    pub security: Security,
    /// Login name.
    pub user: String,
    /// Password.
    pub password: String,
    /// CA certificates (PEM) to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// One folder as LIST shows it.
#[derive(Debug, Clone)]
struct Folder {
    /// The name as the server spells it (modified UTF-7), for commands.
    wire: String,
    /// The name here.
    name: String,
    special_use: Option<String>,
}

/// One message's metadata.
#[derive(Debug, Clone)]
struct Meta {
    uid: u32,
    flags: Vec<String>,
    internal_date: Option<InternalDate>,
    size: u64,
    modseq: Option<u64>,
}

/// Reads the account at `source` into the export directory `out` for `account`.
pub fn download(source: &Source, account: &str, out: &Path) -> Result<ConvertReport> {
    let mut client = Client::connect(&source.host, source.port, source.security, source.ca_file.as_deref())?;
    client.login(&source.user, &source.password)?;
    let condstore = client.has("CONDSTORE");
    let mut report = ConvertReport { source: "imap".to_owned(), ..ConvertReport::default() };
    let folders = list(&mut client, "LIST", &mut report)?;
    let subscribed: Vec<String> =
        list(&mut client, "LSUB", &mut ConvertReport::default())?.into_keys().collect();
    let state_dir = out.join("imap-state");
    fs::create_dir_all(&state_dir).map_err(|e| Error::io(&state_dir, e))?;
    let mut writer = Writer::create(out)?;
    let progress = Progress::messages("download", None);
    for folder in folders.values() {
        progress.at(&folder.name);
        let line =
            download_folder(&mut client, folder, condstore, &mut writer, &state_dir, &mut report, &progress)?;
        writer.mailbox(line);
        report.mailboxes += 1;
    }
    progress.finish();
    let _ = client.command("LOGOUT");
    let account_line = AccountLine {
        name: account.to_owned(),
        kind: "user".to_owned(),
        subscriptions: subscribed,
        ..AccountLine::default()
    };
    writer.finish(&account_line, &[], "imap", None)?;
    Ok(report)
}

/// The selectable folders (LIST) or the subscribed names (LSUB), by name here.
fn list(client: &mut Client, command: &str, report: &mut ConvertReport) -> Result<BTreeMap<String, Folder>> {
    let mut out = BTreeMap::new();
    for response in client.command(&format!("{command} \"\" \"*\""))? {
        let tokens = response.tokens();
        let (Some(Token::Atom(star)), Some(Token::Atom(kind))) = (tokens.first(), tokens.get(1)) else {
            continue;
        };
        if star != "*" || !kind.eq_ignore_ascii_case(command) {
            continue;
        }
        let (Some(Token::List(attributes)), Some(delimiter), Some(wire)) =
            (tokens.get(2), tokens.get(3), tokens.get(4))
        else {
            continue;
        };
        let attributes: Vec<String> = attributes.iter().filter_map(Token::text).collect();
        let Some(wire) = wire.text() else { continue };
        let selectable = !attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent"));
        if command == "LIST" && !selectable {
            continue;
        }
        let delimiter = delimiter.text().and_then(|d| d.chars().next());
        let Some(name) = local_name(&wire, delimiter) else {
            report
                .notes
                .push(format!("folder {wire:?} left out: its name holds '/', which names a level here"));
            continue;
        };
        let special_use = attributes
            .iter()
            .find(|a| {
                ["\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"]
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(a))
            })
            .cloned();
        out.insert(name.clone(), Folder { wire, name, special_use });
    }
    Ok(out)
}

/// The name here of a folder the server names `wire` with `delimiter` between levels.
fn local_name(wire: &str, delimiter: Option<char>) -> Option<String> {
    let decoded = postfach_proto::mutf7::decode(wire.as_bytes()).unwrap_or_else(|_| wire.to_owned());
    let levels: Vec<&str> = match delimiter {
        Some(d) => decoded.split(d).collect(),
        None => vec![decoded.as_str()],
    };
    if delimiter != Some('/') && levels.iter().any(|l| l.contains('/')) {
        return None;
    }
    let name = levels.join("/");
    Some(if name.eq_ignore_ascii_case("INBOX") { "INBOX".to_owned() } else { name })
}

/// Reads one folder: its counters and metadata, the bodies it lacks, then its message lines.
fn download_folder(
    client: &mut Client,
    folder: &Folder,
    condstore: bool,
    writer: &mut Writer,
    state_dir: &Path,
    report: &mut ConvertReport,
    progress: &Progress,
) -> Result<MailboxLine> {
    let params = if condstore { " (CONDSTORE)" } else { "" };
    let examined = client.command(&format!("EXAMINE {}{params}", quote(&folder.wire)))?;
    let code = |name: &str| -> Option<u64> {
        examined.iter().find_map(|r| {
            let line = r.line();
            let at = line.find(&format!("[{name} "))?;
            line[at + name.len() + 2..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
    };
    let uid_validity = code("UIDVALIDITY").and_then(|v| u32::try_from(v).ok());
    let mut uid_next = code("UIDNEXT").and_then(|v| u32::try_from(v).ok());
    let highest_modseq = if condstore { code("HIGHESTMODSEQ") } else { None };
    let exists = examined.iter().any(|r| {
        let line = r.line();
        line.ends_with(" EXISTS") && !line.starts_with("* 0 ")
    });
    let mut metas: Vec<Meta> = Vec::new();
    if exists {
        let items = if condstore {
            "UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ"
        } else {
            "UID FLAGS INTERNALDATE RFC822.SIZE"
        };
        for response in client.command(&format!("UID FETCH 1:* ({items})"))? {
            if let Some(meta) = meta_of(&response) {
                metas.push(meta);
            }
        }
    }
    metas.sort_by_key(|m| m.uid);
    metas.dedup_by_key(|m| m.uid);
    if let Some(last) = metas.last() {
        uid_next = Some(uid_next.unwrap_or(0).max(last.uid.saturating_add(1)));
    }

    // What an earlier run fetched already.
    let state_path = state_dir.join(format!("{}.tsv", hex_name(&folder.name)));
    let mut known: HashMap<u32, (String, u64)> = HashMap::new();
    if let Ok(text) = fs::read_to_string(&state_path) {
        let mut lines = text.lines();
        let same = lines.next().and_then(|l| l.strip_prefix("uidvalidity ")).map(str::to_owned)
            == Some(uid_validity.map_or("-".to_owned(), |v| v.to_string()));
        if same {
            for line in lines {
                let mut fields = line.split('\t');
                let (Some(uid), Some(sha), Some(size)) = (fields.next(), fields.next(), fields.next()) else {
                    continue;
                };
                let (Ok(uid), Ok(size)) = (uid.parse(), size.parse()) else { continue };
                if format::blob_path(writer.dir(), sha).is_file() {
                    known.insert(uid, (sha.to_owned(), size));
                }
            }
        }
    }
    let mut state = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&state_path)
        .map_err(|e| Error::io(&state_path, e))?;
    if known.is_empty() {
        state.set_len(0).map_err(|e| Error::io(&state_path, e))?;
        writeln!(state, "uidvalidity {}", uid_validity.map_or("-".to_owned(), |v| v.to_string()))
            .map_err(|e| Error::io(&state_path, e))?;
    }

    let missing: Vec<&Meta> = metas.iter().filter(|m| !known.contains_key(&m.uid)).collect();
    progress.add((metas.len() - missing.len()) as u64);
    for chunk in chunks(&missing) {
        let set = chunk.iter().map(|m| m.uid.to_string()).collect::<Vec<_>>().join(",");
        let mut got: HashMap<u32, Vec<u8>> = HashMap::new();
        for response in client.command(&format!("UID FETCH {set} (UID BODY.PEEK[])"))? {
            if let Some((uid, body)) = body_of(&response) {
                got.insert(uid, body);
            }
        }
        for meta in chunk {
            progress.add(1);
            let Some(raw) = got.remove(&meta.uid) else {
                report.bad.push(format!(
                    "{} UID {}: the server sent no body (expunged meanwhile?)",
                    folder.name, meta.uid
                ));
                continue;
            };
            let sha = writer.blob(&raw)?;
            writeln!(state, "{}\t{sha}\t{}", meta.uid, raw.len()).map_err(|e| Error::io(&state_path, e))?;
            known.insert(meta.uid, (sha, raw.len() as u64));
        }
    }

    for meta in &metas {
        let Some((sha, size)) = known.get(&meta.uid) else { continue };
        let (system, keywords): (Vec<String>, Vec<String>) = meta
            .flags
            .iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .cloned()
            .partition(|f| f.starts_with('\\'));
        let date = meta.internal_date.unwrap_or(InternalDate { unix: format::unix_now(), offset_minutes: 0 });
        writer.message(&MessageLine {
            mailbox: folder.name.clone(),
            uid: meta.uid,
            modseq: meta.modseq,
            sha256: sha.clone(),
            size: *size,
            flags: system,
            keywords,
            internal_date: format::format_date(date),
            save_date: None,
            email_id: None,
            thread_id: None,
        })?;
        report.messages += 1;
    }
    Ok(MailboxLine {
        name: folder.name.clone(),
        uid_validity,
        uid_next,
        highest_modseq,
        special_use: folder.special_use.clone(),
        ..MailboxLine::default()
    })
}

/// Groups messages for one FETCH each: bounded in count and (announced) bytes.
fn chunks<'a>(messages: &[&'a Meta]) -> Vec<Vec<&'a Meta>> {
    let mut out: Vec<Vec<&Meta>> = Vec::new();
    let mut bytes = 0u64;
    for m in messages {
        match out.last_mut() {
            Some(last) if last.len() < FETCH_MESSAGES && bytes + m.size <= FETCH_BYTES => {
                last.push(m);
                bytes += m.size;
            }
            _ => {
                out.push(vec![m]);
                bytes = m.size;
            }
        }
    }
    out
}

/// The FETCH attributes of a `* n FETCH (...)` response.
fn fetch_items(response: &Response) -> Option<Vec<Token>> {
    let tokens = response.tokens();
    match (tokens.get(2), tokens.get(3)) {
        (Some(Token::Atom(kind)), Some(Token::List(items))) if kind.eq_ignore_ascii_case("FETCH") => {
            Some(items.clone())
        }
        _ => None,
    }
}

fn meta_of(response: &Response) -> Option<Meta> {
    let items = fetch_items(response)?;
    let mut meta = Meta { uid: 0, flags: Vec::new(), internal_date: None, size: 0, modseq: None };
    for pair in items.chunks(2) {
        let [Token::Atom(key), value] = pair else { continue };
        match key.to_ascii_uppercase().as_str() {
            "UID" => meta.uid = value.text()?.parse().ok()?,
            "FLAGS" => {
                if let Token::List(flags) = value {
                    meta.flags = flags.iter().filter_map(Token::text).collect();
                }
            }
            "INTERNALDATE" => meta.internal_date = value.text().and_then(|t| parse_internal_date(&t)),
            "RFC822.SIZE" => meta.size = value.text()?.parse().unwrap_or(0),
            "MODSEQ" => {
                if let Token::List(m) = value {
                    meta.modseq = m.first().and_then(Token::text).and_then(|t| t.parse().ok());
                }
            }
            _ => {}
        }
    }
    (meta.uid > 0).then_some(meta)
}

fn body_of(response: &Response) -> Option<(u32, Vec<u8>)> {
    let items = fetch_items(response)?;
    let (mut uid, mut body) = (None, None);
    for pair in items.chunks(2) {
        let [Token::Atom(key), value] = pair else { continue };
        match key.to_ascii_uppercase().as_str() {
            "UID" => uid = value.text().and_then(|t| t.parse().ok()),
            "BODY[]" => {
                if let Token::Bytes(b) = value {
                    body = Some(b.clone());
                }
            }
            _ => {}
        }
    }
    Some((uid?, body?))
}

/// `dd-Mon-yyyy hh:mm:ss +zzzz` (RFC 9051 `date-time`; the day may be space-padded).
fn parse_internal_date(s: &str) -> Option<InternalDate> {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let s = s.trim();
    let (date, rest) = s.split_once(' ')?;
    let (time, zone) = rest.trim().split_once(' ')?;
    let mut d = date.split('-');
    let (day, month, year) =
        (d.next()?.trim().parse::<u32>().ok()?, d.next()?, d.next()?.parse::<i64>().ok()?);
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))?;
    let t: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [hour, minute, second] = t[..] else { return None };
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: i64 = zone.get(1..5)?.parse().ok()?;
    let offset = sign * (digits / 100 * 60 + digits % 100);
    let local = days_from_civil(year, u32::try_from(month + 1).ok()?, day) * 86_400
        + hour * 3600
        + minute * 60
        + second;
    Some(InternalDate { unix: local - offset * 60, offset_minutes: i16::try_from(offset).ok()? })
}

/// A file name for a folder's state: its name in hex (any name, no path characters).
fn hex_name(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn internal_dates() {
        assert_eq!(
            parse_internal_date(" 3-Mar-2022 12:00:00 +0100"),
            Some(InternalDate { unix: 1_646_305_200, offset_minutes: 60 })
        );
        assert_eq!(parse_internal_date("30-Nov-2025 07:15:02 -0530").map(|d| d.offset_minutes), Some(-330));
        assert_eq!(parse_internal_date("garbage"), None);
    }

    #[test]
    fn folder_names() {
        assert_eq!(local_name("INBOX", Some('.')).as_deref(), Some("INBOX"));
        assert_eq!(local_name("Archive.2026", Some('.')).as_deref(), Some("Archive/2026"));
        assert_eq!(local_name("Entw&APw-rfe", Some('/')).as_deref(), Some("Entwürfe"));
        assert_eq!(local_name("a/b.c", Some('.')), None);
        assert_eq!(local_name("inbox", Some('/')).as_deref(), Some("INBOX"));
    }
}
