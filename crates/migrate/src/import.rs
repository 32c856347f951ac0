//! An export directory → one account of the store: the one import path (the importers of
//! other sources write the format first).
//!
//! # Per mailbox, one of three plans
//! - **Verbatim**: the target has no such mailbox, or an empty one (it is made again with the
//!   exported UIDVALIDITY), or it has the exported UIDVALIDITY and every exported UID is either
//!   at or above its UIDNEXT or holds the same bytes there (an earlier run of this import, or the
//!   base of an incremental export). UIDs, MODSEQs, dates and the expunge history are written as
//!   exported; messages expunged at the source since go.
//! - **Keep UIDs**: another mailbox of that name with its own UIDVALIDITY, and every new exported
//!   UID is at or above its UIDNEXT: they are stored under their UIDs; its own messages and
//!   history stay.
//! - **Renumbered**: some exported UID is below the target's UIDNEXT and does not hold the same
//!   bytes there. The mailbox is made again under a **new UIDVALIDITY** with its own messages
//!   renumbered `1..n`, and the exported ones follow in UID order (a message whose bytes are
//!   there already is not stored twice). Reported in the summary; never a silent renumbering
//!   under the same UIDVALIDITY. When the source knows no UIDVALIDITY (mbox, plain Maildir: its
//!   UIDs are only positions), its messages are appended after the target's own instead, and the
//!   mailbox keeps its UIDVALIDITY.
//!
//! A mailbox whose name cannot be a mailbox here is reported with its message count and left
//! out; the others go on.
//!
//! # MODSEQs
//! A message keeps its exported MODSEQ when it is above the HIGHESTMODSEQ the target mailbox had
//! when this import came to it (0 for a mailbox this import made, also in an earlier,
//! interrupted run: `.import-state-<account>.json` in the export directory remembers those),
//! so no client can have seen a higher HIGHESTMODSEQ without the message; else it gets a new one.
//! Afterwards every HIGHESTMODSEQ is at least the exported one.
//!
//! # Again after an interruption
//! Everything above is idempotent: messages already there (same UID, same bytes) are skipped,
//! expunges already recorded stay, counters only grow. Running the import again finishes it.
//!
//! # Bad input
//! A blob that is missing or does not match its SHA-256 and size, or bytes that are no message
//! ([`format::check_message`]), are reported with mailbox and UID and skipped (their UID is
//! recorded as expunged, so clients that knew the message drop it); invalid keywords are dropped
//! and reported. Nothing is skipped silently.
//!
//! # Quota
//! Restored messages count in the owner's usage and are never refused on quota; an account left
//! above a limit is reported in the summary.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postfach_store::{
    Account, AccountId, AccountKind, AccountRestore, ClaimRecent, ExpungedRun, Flags, Identifier,
    InternalDate, MailboxId, MailboxName, MailboxRestore, MessageRestore, MetadataLimits, MetadataPlace,
    ModSeq, ModSeqRule, NewUidValidity, PresentUids, QuotaLimits, Restored, Rights, SeenMode, SpecialUse,
    StoreError, Uid, UidSet, UidValidity, restore::MAX_EXPUNGED_PER_CALL,
};
use serde::{Deserialize, Serialize};

use postfach_proto::types::EntryUse;

use crate::format::{
    self, AccountLine, MailboxLine, Manifest, MessageLine, MetadataLine, PrivateSeenLine, SieveLine,
};
use crate::{Error, Progress, Result, Stores, blocking};

/// Messages per restore job.
const BATCH_MESSAGES: usize = 200;
/// Bytes per restore job (at least one message).
const BATCH_BYTES: usize = 16 * 1024 * 1024;

/// How the import went.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// The account was made by this import (a user then has no password yet).
    pub account_created: bool,
    /// The account is a team (it never has a password).
    pub team: bool,
    /// Mailboxes in the export.
    pub mailboxes: u64,
    /// Mailboxes made (or made again with the exported UIDVALIDITY).
    pub mailboxes_created: u64,
    /// Messages stored.
    pub inserted: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Messages that were there already (same UID, same bytes).
    pub present: u64,
    /// Of those, messages whose flags followed a newer export.
    pub flags_updated: u64,
    /// Messages of a renumbered mailbox not stored because the same bytes were there.
    pub duplicates: u64,
    /// Expunged UIDs recorded (or messages expunged).
    pub expunged: u64,
    /// Messages skipped, each with its mailbox, UID and reason.
    pub bad: Vec<String>,
    /// Mailboxes that got a new UIDVALIDITY, with the old and new value.
    pub renumbered: Vec<String>,
    /// Everything else worth knowing (dropped keywords, unknown ACL grantees, quota).
    pub notes: Vec<String>,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

/// Imports the export in `dir` into `account` (made when missing). `target` names the
/// installation (its data directory), so that the resume state of one is not taken for
/// another's.
pub async fn import(stores: Stores<'_>, account: &str, dir: &Path, target: &str) -> Result<ImportSummary> {
    let started = std::time::Instant::now();
    let dir_owned = dir.to_owned();
    let (manifest, account_line, mailbox_lines, private_seen, sieve) = blocking(move || {
        let manifest = format::read_manifest(&dir_owned)?;
        let accounts: Vec<AccountLine> = format::read_lines(&dir_owned.join(format::ACCOUNT))?;
        let mailboxes: Vec<MailboxLine> = format::read_lines(&dir_owned.join(format::MAILBOXES))?;
        let seen: Vec<PrivateSeenLine> = format::read_lines(&dir_owned.join(format::PRIVATE_SEEN))?;
        let sieve: Vec<SieveLine> = format::read_lines(&dir_owned.join(format::SIEVE))?;
        Ok((manifest, accounts.into_iter().next().unwrap_or_default(), mailboxes, seen, sieve))
    })
    .await?;
    let dir_owned = dir.to_owned();
    let segments = blocking(move || scan_messages(&dir_owned)).await?;
    for name in segments.keys() {
        if !mailbox_lines.iter().any(|m| &m.name == name) {
            return Err(Error::Format(format!(
                "messages.jsonl names mailbox {name:?}, which mailboxes.jsonl lacks"
            )));
        }
    }

    let mut summary = ImportSummary::default();
    let owner = find_or_make_account(stores, account, &account_line, &mut summary).await?;
    let mut state = State::load(dir, account, target);
    let progress = Progress::messages("import", Some(manifest.counts.messages));
    let mut seen_by_mailbox: BTreeMap<&str, Vec<&PrivateSeenLine>> = BTreeMap::new();
    for row in &private_seen {
        seen_by_mailbox.entry(row.mailbox.as_str()).or_default().push(row);
    }
    for line in &mailbox_lines {
        progress.at(&line.name);
        summary.mailboxes += 1;
        let segment = segments.get(&line.name);
        let name = MailboxName::new(&line.name).map_err(|e| e.to_string()).and_then(|n| {
            n.check_creatable().map_err(|e| e.to_string())?;
            Ok(n)
        });
        if let Err(why) = name {
            let n = segment.map_or(0, |s| s.uids.len());
            summary.bad.push(format!("mailbox {:?} and its {n} message(s) left out: {why}", line.name));
            progress.add(n as u64);
            continue;
        }
        let mut job = MailboxJob {
            stores,
            dir,
            owner: &owner,
            line,
            segment,
            summary: &mut summary,
            progress: &progress,
        };
        let rows = seen_by_mailbox.get(line.name.as_str()).map_or(&[][..], Vec::as_slice);
        job.run(&mut state, rows).await?;
    }
    progress.finish();

    if stores.mail.mailbox_by_name(owner.id, &MailboxName::inbox()).await?.is_none() {
        let fresh = MailboxRestore { uid_validity: None, special_use: None, id_hint: None };
        stores.restore.restore_mailbox(owner.id, &MailboxName::inbox(), &fresh).await?;
    }
    account_settings(stores, &owner, &account_line, &manifest, &sieve, &mut summary).await?;
    restore_metadata(stores, MetadataPlace::Server, owner.id, &account_line.metadata, "server", &mut summary)
        .await?;
    report_quota(stores, owner.id, &mut summary).await?;
    state.remove();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Where the messages of one mailbox are in `messages.jsonl`, and their UIDs.
#[derive(Debug, Default)]
struct Segment {
    start: u64,
    end: u64,
    uids: Vec<u32>,
}

/// Reads `messages.jsonl` once: each mailbox's lines must be together and ascending by UID (the
/// format's order), which lets every later pass read one mailbox alone.
fn scan_messages(dir: &Path) -> Result<BTreeMap<String, Segment>> {
    let path = dir.join(format::MESSAGES);
    let mut out: BTreeMap<String, Segment> = BTreeMap::new();
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(&path, e)),
    };
    #[derive(Deserialize)]
    struct Head {
        mailbox: String,
        uid: u32,
    }
    let mut reader = BufReader::new(file);
    let (mut offset, mut current, mut line, mut n) = (0u64, None::<String>, String::new(), 0usize);
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(|e| Error::io(&path, e))?;
        if read == 0 {
            break;
        }
        n += 1;
        let start = offset;
        offset += read as u64;
        if line.trim().is_empty() {
            continue;
        }
        let head: Head =
            serde_json::from_str(&line).map_err(|e| Error::Format(format!("{}:{n}: {e}", path.display())))?;
        if head.uid == 0 {
            return Err(Error::Format(format!("{}:{n}: UID 0", path.display())));
        }
        if current.as_deref() != Some(head.mailbox.as_str()) {
            if out.contains_key(&head.mailbox) {
                return Err(Error::Format(format!(
                    "{}:{n}: the messages of {:?} are not together",
                    path.display(),
                    head.mailbox
                )));
            }
            out.insert(head.mailbox.clone(), Segment { start, end: start, uids: Vec::new() });
            current = Some(head.mailbox.clone());
        }
        let segment = out.get_mut(&head.mailbox).ok_or_else(|| Error::Format("scan".to_owned()))?;
        if segment.uids.last().is_some_and(|last| *last >= head.uid) {
            return Err(Error::Format(format!(
                "{}:{n}: UIDs of {:?} do not ascend",
                path.display(),
                head.mailbox
            )));
        }
        segment.uids.push(head.uid);
        segment.end = offset;
    }
    Ok(out)
}

/// Reads the lines of one segment.
fn segment_lines(dir: &Path, segment: &Segment, from: u64, limit: usize) -> Result<(Vec<MessageLine>, u64)> {
    let path = dir.join(format::MESSAGES);
    let mut file = File::open(&path).map_err(|e| Error::io(&path, e))?;
    file.seek(SeekFrom::Start(from)).map_err(|e| Error::io(&path, e))?;
    let mut reader = BufReader::new(file);
    let (mut out, mut offset, mut line) = (Vec::new(), from, String::new());
    while offset < segment.end && out.len() < limit {
        line.clear();
        let read = reader.read_line(&mut line).map_err(|e| Error::io(&path, e))?;
        if read == 0 {
            break;
        }
        offset += read as u64;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| Error::Format(format!("{}: {e}", path.display())))?);
    }
    Ok((out, offset))
}

/// Mailboxes this import made, remembered in the export directory so that an interrupted import
/// run again still keeps their MODSEQs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    target: String,
    account: String,
    created: HashSet<String>,
    #[serde(skip)]
    path: PathBuf,
    #[serde(skip)]
    writable: bool,
}

impl State {
    fn load(dir: &Path, account: &str, target: &str) -> State {
        let file = format!(".import-state-{}.json", account.to_lowercase().replace(['/', '\\'], "_"));
        let path = dir.join(file);
        let loaded: Option<State> =
            std::fs::read_to_string(&path).ok().and_then(|text| serde_json::from_str(&text).ok());
        let mut state = match loaded {
            Some(s) if s.target == target && s.account.eq_ignore_ascii_case(account) => s,
            _ => State { target: target.to_owned(), account: account.to_owned(), ..State::default() },
        };
        state.path = path;
        state.writable = true;
        state
    }

    fn made(&self, name: &str) -> bool {
        self.created.contains(name)
    }

    /// Notes a mailbox as made by this import, on disk before any message goes into it.
    fn note(&mut self, name: &str, summary: &mut ImportSummary) {
        self.created.insert(name.to_owned());
        if !self.writable {
            return;
        }
        let saved = serde_json::to_string(self).map_err(std::io::Error::other).and_then(|text| {
            let tmp = self.path.with_extension("tmp");
            std::fs::write(&tmp, text)?;
            File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        });
        if let Err(e) = saved {
            self.writable = false;
            summary.notes.push(format!(
                "cannot write {} ({e}): an interrupted import run again gives messages of the mailboxes it \
                 made new MODSEQs",
                self.path.display()
            ));
        }
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn find_or_make_account(
    stores: Stores<'_>,
    name: &str,
    line: &AccountLine,
    summary: &mut ImportSummary,
) -> Result<Account> {
    let kind = if line.kind == "team" { AccountKind::Team } else { AccountKind::User };
    if let Some(account) = stores.accounts.account_by_name(name).await? {
        if account.kind != kind && !line.kind.is_empty() {
            return Err(Error::Usage(format!(
                "{name} is a {}, the export holds a {}",
                kind_name(account.kind),
                kind_name(kind)
            )));
        }
        return Ok(account);
    }
    let address = line.address.clone();
    stores.restore.restore_account(&AccountRestore { name: name.to_owned(), kind, address }).await?;
    summary.account_created = true;
    summary.team = kind == AccountKind::Team;
    stores
        .accounts
        .account_by_name(name)
        .await?
        .ok_or_else(|| Error::Store(StoreError::Backend("the new account is not there".to_owned())))
}

fn kind_name(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::User => "user",
        AccountKind::Team => "team",
    }
}

/// How one mailbox is imported (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Verbatim,
    KeepUids,
    /// New UIDs after the target's own: in a mailbox made again under a new UIDVALIDITY, or, when
    /// the source knows no UIDVALIDITY (its UIDs are only positions), as they come.
    Appended,
}

/// One mailbox's import.
struct MailboxJob<'a, 'b> {
    stores: Stores<'a>,
    dir: &'b Path,
    owner: &'b Account,
    line: &'b MailboxLine,
    segment: Option<&'b Segment>,
    summary: &'b mut ImportSummary,
    progress: &'b Progress,
}

/// What the import of one mailbox decided and learned.
struct Plan {
    target: MailboxId,
    mode: Mode,
    /// Exported MODSEQs above this are kept.
    keep_above: u64,
    /// Keep UIDs: the target's UIDNEXT before, below which its own history stays.
    floor: u32,
    /// Appended: the target's messages by EMAILID.
    existing: HashMap<String, Uid>,
    /// Exported UID → target UID, where they differ.
    moved: HashMap<u32, Uid>,
    /// Exported UIDs skipped as bad.
    bad_uids: Vec<u32>,
    /// Whether a message present under an exported expunged UID goes: only where the mailbox is
    /// certainly the source's own (made by this import, or the base of an incremental export
    /// with the same UIDVALIDITY). An equal UIDVALIDITY alone proves nothing: values drawn
    /// from the clock coincide across servers.
    expunge_present: bool,
}

impl MailboxJob<'_, '_> {
    async fn run(&mut self, state: &mut State, private_seen: &[&PrivateSeenLine]) -> Result<()> {
        let name = MailboxName::new(&self.line.name)
            .map_err(|e| Error::Format(format!("mailbox name {:?}: {e}", self.line.name)))?;
        let mut plan = self.plan(&name, state).await?;
        self.messages(&mut plan).await?;
        self.expunges(&plan).await?;
        let (uid_next, highest) =
            (self.line.uid_next.and_then(Uid::new), self.line.highest_modseq.unwrap_or(0));
        let uid_next = match plan.mode {
            Mode::Appended => Uid::MIN,
            Mode::Verbatim | Mode::KeepUids => uid_next.unwrap_or(Uid::MIN),
        };
        self.stores.restore.restore_counters(plan.target, uid_next, ModSeq(highest)).await?;
        self.private_seen(&plan, private_seen).await?;
        self.settings(plan.target).await?;
        restore_metadata(
            self.stores,
            MetadataPlace::Mailbox(plan.target),
            self.owner.id,
            &self.line.metadata,
            &self.line.name,
            self.summary,
        )
        .await
    }

    /// Decides the plan, making or remaking the mailbox as it needs.
    async fn plan(&mut self, name: &MailboxName, state: &mut State) -> Result<Plan> {
        let (stores, line) = (self.stores, self.line);
        let exported_validity = line.uid_validity.filter(|v| *v > 0).map(UidValidity);
        let special_use = line.special_use.as_deref().and_then(SpecialUse::parse);
        let mut plan = Plan {
            target: MailboxId(0),
            mode: Mode::Verbatim,
            keep_above: 0,
            floor: 1,
            existing: HashMap::new(),
            moved: HashMap::new(),
            bad_uids: Vec::new(),
            expunge_present: false,
        };
        if line.since_modseq.is_some() {
            // An incremental export holds only what changed; onto a target without the mailbox
            // the rest is missing.
            if stores.mail.mailbox_by_name(self.owner.id, name).await?.is_none() {
                self.summary.notes.push(format!(
                    "{}: incremental export onto an account without this mailbox: only the changed messages come",
                    line.name
                ));
            }
        }
        let Some(info) = stores.mail.mailbox_by_name(self.owner.id, name).await? else {
            let id_hint =
                line.mailbox_id.as_deref().and_then(|m| m.strip_prefix('M')).and_then(|n| n.parse().ok());
            let restore = MailboxRestore { uid_validity: exported_validity, special_use, id_hint };
            state.note(&line.name, self.summary);
            plan.target = stores.restore.restore_mailbox(self.owner.id, name, &restore).await?;
            plan.expunge_present = true;
            self.summary.mailboxes_created += 1;
            return Ok(plan);
        };
        let dump = stores.restore.dump_mailbox(info.id).await?;
        plan.target = info.id;
        let lineage = exported_validity == Some(dump.uid_validity);
        if dump.messages == 0 && !lineage && exported_validity.is_some() {
            // Empty (a new account's default mailbox): nothing of it can be in a client's
            // cache, so it takes the exported UIDVALIDITY.
            state.note(&line.name, self.summary);
            let given = NewUidValidity::Given(exported_validity.unwrap_or(dump.uid_validity));
            plan.target = stores.restore.recreate_mailbox(info.id, given).await?;
            plan.expunge_present = true;
            self.summary.mailboxes_created += 1;
            return Ok(plan);
        }
        plan.keep_above = if state.made(&line.name) && lineage { 0 } else { dump.highest_modseq.0 };
        if !self.conflicts(&plan, dump.uid_next).await? {
            plan.mode = if lineage { Mode::Verbatim } else { Mode::KeepUids };
            plan.floor = if lineage { 1 } else { dump.uid_next.get() };
            plan.expunge_present = lineage && (state.made(&line.name) || line.since_modseq.is_some());
            return Ok(plan);
        }
        plan.mode = Mode::Appended;
        plan.existing = self.contents(plan.target).await?;
        if exported_validity.is_none() {
            // The source's UIDs are only positions (mbox, plain Maildir): nothing a client knows
            // hangs on them, so its messages go after the target's under the target's UIDs.
            self.summary.notes.push(format!(
                "{}: the source has no UIDVALIDITY; its messages were added after the mailbox's own, with new UIDs",
                line.name
            ));
            return Ok(plan);
        }
        let ours = self.exported_ids(u32::MAX).await?;
        if ours.iter().all(|(_, id)| id.as_ref().is_none_or(|id| plan.existing.contains_key(id))) {
            // Every exported message is there already (an earlier run of this import renumbered
            // the mailbox): nothing to store, so no reason to renumber again.
            return Ok(plan);
        }
        let fresh = NewUidValidity::Fresh { avoid: exported_validity };
        plan.target = stores.restore.recreate_mailbox(info.id, fresh).await?;
        let now = stores.restore.dump_mailbox(plan.target).await?;
        self.summary.renumbered.push(format!(
            "{}: exported UIDs collide with the mailbox's own: new UIDVALIDITY {} (was {}), its {} messages \
             renumbered 1..{}, the imported ones follow",
            line.name, now.uid_validity.0, dump.uid_validity.0, now.messages, now.messages
        ));
        plan.existing = self.contents(plan.target).await?;
        Ok(plan)
    }

    /// The messages of a mailbox by EMAILID (a hash of their bytes).
    async fn contents(&self, mailbox: MailboxId) -> Result<HashMap<String, Uid>> {
        let status = self.stores.mail.status(mailbox).await?;
        let mut out = HashMap::new();
        if status.messages > 0 {
            let all = UidSet::from_ranges([1..=status.uid_next.get().saturating_sub(1).max(1)]);
            for extra in self.stores.mail.fetch_extras(mailbox, &all).await? {
                out.insert(extra.email_id, extra.uid);
            }
        }
        Ok(out)
    }

    /// The EMAILID of each exported message with a UID below `below` (`None` for a bad blob).
    async fn exported_ids(&self, below: u32) -> Result<Vec<(u32, Option<String>)>> {
        let Some(segment) = self.segment else { return Ok(Vec::new()) };
        let (dir, start, end) = (self.dir.to_owned(), segment.start, segment.end);
        blocking(move || {
            let segment = Segment { start, end, uids: Vec::new() };
            let mut out = Vec::new();
            let mut from = segment.start;
            loop {
                let (lines, next) = segment_lines(&dir, &segment, from, 1000)?;
                if lines.is_empty() {
                    break;
                }
                from = next;
                for l in lines.into_iter().filter(|l| l.uid < below) {
                    let id = format::read_blob(&dir, &l.sha256, l.size)
                        .ok()
                        .map(|raw| postfach_message::email_id(&raw));
                    out.push((l.uid, id));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Whether some exported UID below the target's UIDNEXT does not hold the same bytes there.
    async fn conflicts(&self, plan: &Plan, uid_next: Uid) -> Result<bool> {
        let Some(segment) = self.segment else { return Ok(false) };
        let below: Vec<u32> = segment.uids.iter().copied().filter(|u| *u < uid_next.get()).collect();
        if below.is_empty() {
            return Ok(false);
        }
        let snapshot = self.stores.mail.select(plan.target, ClaimRecent::Peek).await?;
        if below.iter().any(|u| Uid::new(*u).is_none_or(|u| !snapshot.uids.contains(u))) {
            return Ok(true);
        }
        let theirs: HashMap<Uid, String> = self
            .stores
            .mail
            .fetch_extras(plan.target, &UidSet::from_uids(below.iter().filter_map(|u| Uid::new(*u))))
            .await?
            .into_iter()
            .map(|e| (e.uid, e.email_id))
            .collect();
        // Compare the exported bytes' EMAILID (a hash of the bytes) with the target's.
        let ours = self.exported_ids(uid_next.get()).await?;
        Ok(ours.iter().any(|(uid, id)| match (Uid::new(*uid).and_then(|u| theirs.get(&u)), id) {
            (Some(theirs), Some(ours)) => theirs != ours,
            // A bad blob is skipped anyway; it does not decide the plan.
            (Some(_), None) => false,
            (None, _) => true,
        }))
    }

    /// Streams the mailbox's messages into the store in bounded batches.
    async fn messages(&mut self, plan: &mut Plan) -> Result<()> {
        let Some(segment) = self.segment else { return Ok(()) };
        let mut dropped_keywords: BTreeMap<String, u64> = BTreeMap::new();
        let load = |from: u64| {
            let (dir, end) = (self.dir.to_owned(), segment.end);
            tokio::task::spawn_blocking(move || load_batch(&dir, from, end))
        };
        let mut next = load(segment.start);
        loop {
            let loaded = next.await.map_err(|e| Error::Source(format!("a reader failed: {e}")))??;
            if loaded.lines == 0 {
                break;
            }
            // The next batch is read from disk while this one goes into the store.
            next = load(loaded.next);
            let mut batch: Vec<(u32, MessageRestore)> = Vec::with_capacity(loaded.messages.len());
            for item in loaded.messages {
                let (line, raw) = match item {
                    Loaded::Bad(line, why) => {
                        self.bad(plan, &line, &why);
                        continue;
                    }
                    Loaded::Good(line, raw) => (line, raw),
                };
                let (flags, dropped) = format::flags_of(&line);
                for d in dropped {
                    *dropped_keywords.entry(d).or_default() += 1;
                }
                let Some(date) = format::parse_date(&line.internal_date) else {
                    self.bad(plan, &line, &format!("unreadable internal_date {:?}", line.internal_date));
                    continue;
                };
                if plan.mode == Mode::Appended
                    && let Some(uid) = plan.existing.get(&postfach_message::email_id(&raw))
                {
                    plan.moved.insert(line.uid, *uid);
                    self.summary.duplicates += 1;
                    self.progress.add(1);
                    continue;
                }
                batch.push((line.uid, self.restore_of(plan, &line, raw, flags, date)));
            }
            let batch = self.skip_present(plan, batch).await?;
            self.store_batch(plan, batch).await?;
        }
        for (name, n) in dropped_keywords {
            self.summary.notes.push(format!(
                "{}: dropped flag {name:?} of {n} message(s): not a valid keyword",
                self.line.name
            ));
        }
        Ok(())
    }

    /// Leaves out the messages the target holds already under their UID with the same bytes
    /// and flags that are as new (what a run after an interruption finds), without sending
    /// them to the store to be parsed again. The store checks the others.
    async fn skip_present(
        &mut self,
        plan: &Plan,
        batch: Vec<(u32, MessageRestore)>,
    ) -> Result<Vec<(u32, MessageRestore)>> {
        if plan.mode == Mode::Appended || batch.is_empty() {
            return Ok(batch);
        }
        let uids = UidSet::from_uids(batch.iter().filter_map(|(_, m)| m.uid));
        let held = self.stores.mail.fetch(plan.target, &uids, Default::default()).await?;
        if held.is_empty() {
            return Ok(batch);
        }
        let held_uids = UidSet::from_uids(held.iter().map(|m| m.uid));
        let ids: HashMap<Uid, String> = self
            .stores
            .mail
            .fetch_extras(plan.target, &held_uids)
            .await?
            .into_iter()
            .map(|e| (e.uid, e.email_id))
            .collect();
        let held: HashMap<Uid, (Flags, ModSeq)> =
            held.into_iter().map(|m| (m.uid, (m.flags, m.modseq))).collect();
        let mut out = Vec::with_capacity(batch.len());
        for (uid, message) in batch {
            let same = message.uid.is_some_and(|u| {
                held.get(&u).is_some_and(|(flags, modseq)| {
                    ids.get(&u).is_some_and(|id| *id == postfach_message::email_id(&message.raw))
                        && (*flags == message.flags || (message.modseq.0 > 0 && message.modseq <= *modseq))
                })
            });
            if same {
                self.summary.present += 1;
                self.progress.add(1);
            } else {
                out.push((uid, message));
            }
        }
        Ok(out)
    }

    fn restore_of(
        &self,
        plan: &Plan,
        line: &MessageLine,
        raw: Vec<u8>,
        flags: Flags,
        date: InternalDate,
    ) -> MessageRestore {
        let modseq = line.modseq.unwrap_or(0);
        let rule = if modseq > plan.keep_above { ModSeqRule::Keep } else { ModSeqRule::Fresh };
        let save_date = line.save_date.as_deref().and_then(format::parse_date).map(|d| d.unix);
        MessageRestore {
            uid: match plan.mode {
                Mode::Appended => None,
                Mode::Verbatim | Mode::KeepUids => Uid::new(line.uid),
            },
            modseq: ModSeq(modseq),
            rule: if plan.mode == Mode::Appended { ModSeqRule::Fresh } else { rule },
            raw: Arc::from(raw),
            flags,
            internal_date: date,
            save_date,
        }
    }

    fn bad(&mut self, plan: &mut Plan, line: &MessageLine, why: &str) {
        self.summary.bad.push(format!("{} UID {}: {why}", self.line.name, line.uid));
        plan.bad_uids.push(line.uid);
        self.progress.add(1);
    }

    /// Stores one batch; when the store refuses it, each message alone, so that one bad message
    /// is reported and the others go in.
    async fn store_batch(&mut self, plan: &mut Plan, batch: Vec<(u32, MessageRestore)>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let (uids, messages): (Vec<u32>, Vec<MessageRestore>) = batch.into_iter().unzip();
        let sizes: Vec<u64> = messages.iter().map(|m| m.raw.len() as u64).collect();
        match self.stores.restore.restore_messages(plan.target, messages.clone()).await {
            Ok(results) => {
                for ((uid, result), size) in uids.iter().zip(results).zip(sizes) {
                    self.count(plan, *uid, result, size);
                }
                Ok(())
            }
            Err(StoreError::Backend(e)) => Err(Error::Store(StoreError::Backend(e))),
            Err(_) => {
                for ((uid, message), size) in uids.into_iter().zip(messages).zip(sizes) {
                    match self.stores.restore.restore_messages(plan.target, vec![message]).await {
                        Ok(results) => {
                            for result in results {
                                self.count(plan, uid, result, size);
                            }
                        }
                        Err(StoreError::Backend(e)) => return Err(Error::Store(StoreError::Backend(e))),
                        Err(e) => {
                            self.summary
                                .bad
                                .push(format!("{} UID {uid}: refused by the store: {e}", self.line.name));
                            plan.bad_uids.push(uid);
                            self.progress.add(1);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn count(&mut self, plan: &mut Plan, exported: u32, result: Restored, size: u64) {
        match result {
            Restored::Inserted(..) => {
                self.summary.inserted += 1;
                self.summary.bytes += size;
            }
            Restored::Present(_) => self.summary.present += 1,
            Restored::FlagsUpdated(..) => {
                self.summary.present += 1;
                self.summary.flags_updated += 1;
            }
        }
        if result.uid().get() != exported {
            plan.moved.insert(exported, result.uid());
        }
        self.progress.add(1);
    }

    /// Records the expunge history the plan keeps, in bounded calls.
    async fn expunges(&mut self, plan: &Plan) -> Result<()> {
        if plan.mode == Mode::Appended {
            return Ok(());
        }
        let line = self.line;
        let highest = line.highest_modseq.filter(|h| *h > 0);
        let kept = |modseq: Option<u64>| modseq.filter(|m| *m > plan.keep_above).map(ModSeq);
        let mut runs: Vec<(u32, u32, Option<ModSeq>)> = match (&line.expunged, line.since_modseq) {
            (Some(e), _) => match &e.modseq {
                Some(with) => with
                    .iter()
                    .filter_map(|[a, b, m]| {
                        Some((u32::try_from(*a).ok()?, u32::try_from(*b).ok()?, kept(Some(*m))))
                    })
                    .collect(),
                None => e.ranges.iter().map(|[a, b]| (*a, *b, kept(highest))).collect(),
            },
            (None, None) => match line.uid_next {
                Some(next) => {
                    let present = self.segment.map_or(&[][..], |s| s.uids.as_slice());
                    format::gaps(present, next).into_iter().map(|[a, b]| (a, b, kept(highest))).collect()
                }
                None => Vec::new(),
            },
            (None, Some(_)) => Vec::new(),
        };
        runs.extend(plan.bad_uids.iter().map(|u| (*u, *u, None)));
        let present = if plan.expunge_present { PresentUids::Expunge } else { PresentUids::Keep };
        // Bad messages' UIDs never remove a message that is there.
        let (bad, good): (Vec<_>, Vec<_>) =
            runs.into_iter().partition(|(a, b, m)| a == b && m.is_none() && plan.bad_uids.contains(a));
        for (list, present) in [(good, present), (bad, PresentUids::Keep)] {
            let mut chunk: Vec<ExpungedRun> = Vec::new();
            let mut size = 0u64;
            for (a, b, modseq) in list {
                let a = a.max(plan.floor);
                let mut a = a;
                while a <= b {
                    let room = MAX_EXPUNGED_PER_CALL - size;
                    let end = u64::from(a) + room - 1;
                    let last = u32::try_from(end.min(u64::from(b))).unwrap_or(b);
                    let (Some(first), Some(last_uid)) = (Uid::new(a), Uid::new(last)) else { break };
                    chunk.push(ExpungedRun { first, last: last_uid, modseq });
                    size += u64::from(last - a) + 1;
                    if size >= MAX_EXPUNGED_PER_CALL {
                        self.summary.expunged += self
                            .stores
                            .restore
                            .restore_expunged(plan.target, std::mem::take(&mut chunk), present)
                            .await?;
                        size = 0;
                    }
                    if last == u32::MAX {
                        break;
                    }
                    a = last + 1;
                }
            }
            if !chunk.is_empty() {
                self.summary.expunged +=
                    self.stores.restore.restore_expunged(plan.target, chunk, present).await?;
            }
        }
        Ok(())
    }

    /// Private `\Seen` rows of the mailbox's messages, under their target UIDs.
    async fn private_seen(&mut self, plan: &Plan, rows: &[&PrivateSeenLine]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut ids: HashMap<String, Option<AccountId>> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let key = row.account.to_lowercase();
            if !ids.contains_key(&key) {
                let found = self.stores.accounts.account_by_name(&row.account).await?.map(|a| a.id);
                if found.is_none() {
                    self.summary.notes.push(format!(
                        "{}: private \\Seen of {} not restored: no such account here",
                        self.line.name, row.account
                    ));
                }
                ids.insert(key.clone(), found);
            }
            let Some(Some(account)) = ids.get(&key) else { continue };
            let uid = match plan.moved.get(&row.uid) {
                Some(uid) => *uid,
                None if plan.mode == Mode::Appended => continue,
                None => match Uid::new(row.uid) {
                    Some(uid) => uid,
                    None => continue,
                },
            };
            let modseq =
                row.modseq.filter(|m| *m > plan.keep_above && plan.mode != Mode::Appended).map(ModSeq);
            out.push((uid, *account, row.seen, modseq));
        }
        for chunk in out.chunks(5000) {
            self.stores.restore.restore_private_seen(plan.target, chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// ACL and seen mode.
    async fn settings(&mut self, mailbox: MailboxId) -> Result<()> {
        let line = self.line;
        match line.seen_mode.as_deref() {
            Some("private") => self.stores.share.set_seen_mode(mailbox, SeenMode::Private).await?,
            Some("shared") => self.stores.share.set_seen_mode(mailbox, SeenMode::Shared).await?,
            _ => {}
        }
        for entry in &line.acl {
            let (Some(identifier), Ok(rights)) =
                (Identifier::parse(&entry.identifier), Rights::parse(&entry.rights))
            else {
                self.summary.notes.push(format!(
                    "{}: ACL entry {:?} {:?} is not valid",
                    line.name, entry.identifier, entry.rights
                ));
                continue;
            };
            match self.stores.share.set_acl(mailbox, &identifier, Some(rights)).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => self.summary.notes.push(format!(
                    "{}: ACL entry for {} not restored: no such account here",
                    line.name, entry.identifier
                )),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// One message as read from the export directory.
enum Loaded {
    Good(MessageLine, Vec<u8>),
    Bad(MessageLine, String),
}

/// A batch of messages read from disk.
struct Batch {
    messages: Vec<Loaded>,
    lines: usize,
    next: u64,
}

/// Reads lines from `from` (up to `end`) and their blobs, until a batch is full.
fn load_batch(dir: &Path, from: u64, end: u64) -> Result<Batch> {
    let path = dir.join(format::MESSAGES);
    let mut file = File::open(&path).map_err(|e| Error::io(&path, e))?;
    file.seek(SeekFrom::Start(from)).map_err(|e| Error::io(&path, e))?;
    let mut reader = BufReader::new(file);
    let (mut messages, mut offset, mut bytes, mut lines) = (Vec::new(), from, 0usize, 0usize);
    let mut text = String::new();
    while offset < end && messages.len() < BATCH_MESSAGES && bytes < BATCH_BYTES {
        text.clear();
        let read = reader.read_line(&mut text).map_err(|e| Error::io(&path, e))?;
        if read == 0 {
            break;
        }
        offset += read as u64;
        if text.trim().is_empty() {
            continue;
        }
        let line: MessageLine =
            serde_json::from_str(&text).map_err(|e| Error::Format(format!("{}: {e}", path.display())))?;
        lines += 1;
        match format::read_blob(dir, &line.sha256, line.size) {
            Ok(raw) => match format::check_message(&raw) {
                Some(why) => messages.push(Loaded::Bad(line, why)),
                None => {
                    bytes += raw.len();
                    messages.push(Loaded::Good(line, raw));
                }
            },
            Err(why) => messages.push(Loaded::Bad(line, why)),
        }
    }
    Ok(Batch { messages, lines, next: offset })
}

/// Subscriptions, quota, groups, team members and Sieve scripts. Only a Postfach export knows
/// the quota, groups, members and scripts: an import from elsewhere leaves them as they are.
async fn account_settings(
    stores: Stores<'_>,
    owner: &Account,
    line: &AccountLine,
    manifest: &Manifest,
    sieve: &[SieveLine],
    summary: &mut ImportSummary,
) -> Result<()> {
    for name in &line.subscriptions {
        match MailboxName::new(name) {
            Ok(name) => stores.mail.set_subscribed(owner.id, &name, true).await?,
            Err(e) => summary.notes.push(format!("subscription {name:?} not restored: {e}")),
        }
    }
    if manifest.source != "postfach" {
        return Ok(());
    }
    let q = line.quota;
    stores
        .share
        .set_quota(owner.id, QuotaLimits { storage: q.storage, messages: q.messages, mailboxes: q.mailboxes })
        .await?;
    for group in &line.groups {
        stores.share.set_group_member(group, owner.id, true).await?;
    }
    for member in &line.members {
        let (Some(account), Ok(rights)) =
            (stores.accounts.account_by_name(&member.name).await?, Rights::parse(&member.rights))
        else {
            summary.notes.push(format!("team member {} not restored: no such account here", member.name));
            continue;
        };
        stores.share.set_team_member(owner.id, account.id, rights).await?;
    }
    for script in sieve {
        if let Err(e) = postfach_sieve::compile_bytes(script.script.as_bytes()) {
            summary.notes.push(format!("Sieve script {:?} not restored: {e}", script.name));
            continue;
        }
        stores.sieve.put_sieve_script(owner.id, &script.name, &script.script).await?;
        if script.active {
            stores.sieve.activate_sieve_script(owner.id, Some(&script.name)).await?;
        }
    }
    Ok(())
}

/// Sets METADATA entries (RFC 5464) of `place`: shared ones, and each account's private ones
/// as that account's (`account: null` in `account.jsonl` is `owner`'s own). Entries the store
/// does not take (a bad name, an account this installation lacks) are noted and left out; the
/// limits of SETMETADATA do not apply to a restore (as quota does not). Entries removed at the
/// source since an earlier import stay.
async fn restore_metadata(
    stores: Stores<'_>,
    place: MetadataPlace,
    owner: AccountId,
    lines: &[MetadataLine],
    what: &str,
    summary: &mut ImportSummary,
) -> Result<()> {
    // Whose (None: shared) → (entry, value) in SETMETADATA's shape.
    type Entries = Vec<(String, Option<Vec<u8>>)>;
    let mut by_account: BTreeMap<Option<String>, Entries> = BTreeMap::new();
    for line in lines {
        let entry = match postfach_proto::types::metadata_entry(line.entry.as_bytes(), EntryUse::Set) {
            Ok(entry) => entry,
            Err(why) => {
                summary.notes.push(format!("{what}: metadata entry {:?} left out: {why}", line.entry));
                continue;
            }
        };
        let Some(value) = line.bytes() else {
            summary.notes.push(format!("{what}: metadata entry {entry:?} left out: no valid value"));
            continue;
        };
        // A shared entry is everybody's: whose name it is set under does not matter.
        let account = if postfach_store::metadata::is_private(&entry) { line.account.clone() } else { None };
        by_account.entry(account).or_default().push((entry, Some(value)));
    }
    let unlimited = MetadataLimits { max_entries: u32::MAX, max_account_entries: u32::MAX };
    for (account, entries) in by_account {
        let id = match &account {
            None => owner,
            Some(name) => match stores.accounts.account_by_name(name).await? {
                Some(a) => a.id,
                None => {
                    summary.notes.push(format!(
                        "{what}: {} private metadata entries of {name} not restored: no such account here",
                        entries.len()
                    ));
                    continue;
                }
            },
        };
        for chunk in entries.chunks(500) {
            stores.mail.set_metadata(place, id, chunk, unlimited).await?;
        }
    }
    Ok(())
}

/// Notes an account left above one of its limits.
async fn report_quota(stores: Stores<'_>, account: AccountId, summary: &mut ImportSummary) -> Result<()> {
    let quota = stores.share.quota(account).await?;
    let over = |used: u64, limit: Option<u64>| limit.is_some_and(|l| used > l);
    if over(quota.storage_used, quota.limits.storage) {
        summary.notes.push(format!(
            "the account is over its storage quota: {} of {} bytes (new mail is refused until it shrinks)",
            quota.storage_used,
            quota.limits.storage.unwrap_or(0)
        ));
    }
    if over(quota.messages_used, quota.limits.messages) {
        summary.notes.push(format!(
            "the account is over its message quota: {} of {} messages",
            quota.messages_used,
            quota.limits.messages.unwrap_or(0)
        ));
    }
    if over(quota.mailboxes_used, quota.limits.mailboxes) {
        summary.notes.push(format!(
            "the account has more mailboxes than its limit: {} of {}",
            quota.mailboxes_used,
            quota.limits.mailboxes.unwrap_or(0)
        ));
    }
    Ok(())
}
