//! One account of the store → an export directory, full or incremental.
//!
//! Each mailbox is read with its counters first (UIDNEXT, HIGHESTMODSEQ); messages are then
//! read in batches below that UIDNEXT, so a message delivered during the export is left for the
//! next one rather than written beside counters that predate it. The mailbox line carries the
//! HIGHESTMODSEQ read first: a change made during the export may carry a higher MODSEQ (the
//! importer raises HIGHESTMODSEQ to it), and an incremental export from that value repeats it,
//! which an import takes as already there. The server may keep running.
//!
//! Incremental (`since`): per mailbox, only messages and private `\Seen` rows with a MODSEQ
//! above its `since_modseq`, and the UIDs expunged above it; METADATA entries (RFC 5464) are
//! always written whole. A mailbox whose UIDVALIDITY is not
//! the one the earlier export saw is written in full.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use postfach_store::{AccountKind, MailboxDump, ModSeq, SeenMode, StoreError};

use crate::format::{
    self, AccountLine, AclLine, Expunged, MailboxLine, MemberLine, MessageLine, MetadataLine,
    PrivateSeenLine, QuotaLine, SieveLine, Writer,
};
use crate::{Error, Progress, Result, Stores, blocking};

/// Messages read from the store per batch.
const BATCH_MESSAGES: usize = 256;
/// Bytes read from the store per batch (at least one message).
const BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Which changes an export holds.
#[derive(Debug, Clone)]
pub enum Since {
    /// Everything.
    Full,
    /// Changes above this MODSEQ in every mailbox.
    ModSeq(u64),
    /// Changes since the export in this directory: each mailbox above the HIGHESTMODSEQ that
    /// export wrote for it (in full when it was not there, or had another UIDVALIDITY).
    Previous(PathBuf),
}

/// What an export wrote.
#[derive(Debug, Clone, Default)]
pub struct ExportSummary {
    /// Mailboxes.
    pub mailboxes: u64,
    /// Messages.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Expunged UIDs listed.
    pub expunged: u64,
    /// The lowest HIGHESTMODSEQ written (what `--since-modseq` takes next time).
    pub next_since: u64,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

/// Exports `account` into `dir` (created; it must not hold a finished export).
pub async fn export(stores: Stores<'_>, account: &str, dir: &Path, since: Since) -> Result<ExportSummary> {
    let started = std::time::Instant::now();
    let owner = stores
        .accounts
        .account_by_name(account)
        .await?
        .ok_or_else(|| Error::Usage(format!("no account or team named {account:?}")))?;
    let previous: Option<BTreeMap<String, MailboxLine>> = match &since {
        Since::Previous(prev) => {
            format::read_manifest(prev)?;
            let lines: Vec<MailboxLine> = format::read_lines(&prev.join(format::MAILBOXES))?;
            Some(lines.into_iter().map(|l| (l.name.clone(), l)).collect())
        }
        _ => None,
    };
    let dir_owned = dir.to_owned();
    let mut writer = blocking(move || Writer::create(&dir_owned)).await?;
    let mailboxes = stores.mail.list_mailboxes(owner.id).await?;
    let mut dumps = Vec::with_capacity(mailboxes.len());
    for mailbox in &mailboxes {
        dumps.push(stores.restore.dump_mailbox(mailbox.id).await?);
    }
    let total = matches!(since, Since::Full).then(|| dumps.iter().map(|d| u64::from(d.messages)).sum());
    let progress = Progress::messages("export", total);
    let mut summary = ExportSummary::default();
    let mut lowest_since: Option<u64> = None;
    let mut lowest_highest: Option<u64> = None;

    for dump in dumps {
        progress.at(&dump.name);
        let since_modseq = match (&since, &previous) {
            (Since::Full, _) => 0,
            (Since::ModSeq(n), _) => *n,
            (Since::Previous(_), Some(prev)) => match prev.get(&dump.name) {
                Some(l) if l.uid_validity == Some(dump.uid_validity.0) => l.highest_modseq.unwrap_or(0),
                _ => 0,
            },
            (Since::Previous(_), None) => 0,
        };
        let incremental = !matches!(since, Since::Full);
        if incremental {
            lowest_since = Some(lowest_since.map_or(since_modseq, |l| l.min(since_modseq)));
        }
        lowest_highest = Some(lowest_highest.map_or(dump.highest_modseq.0, |l| l.min(dump.highest_modseq.0)));
        writer = export_messages(stores, &dump, since_modseq, writer, &progress, &mut summary).await?;

        let expunged: Vec<(u32, u64)> = stores
            .restore
            .dump_expunged(dump.id, ModSeq(since_modseq))
            .await?
            .into_iter()
            .filter(|(uid, _)| *uid < dump.uid_next)
            .map(|(uid, modseq)| (uid.get(), modseq.0))
            .collect();
        summary.expunged += expunged.len() as u64;
        let acl = stores
            .share
            .acl(dump.id)
            .await?
            .into_iter()
            .map(|e| AclLine { identifier: e.identifier.to_string(), rights: e.rights.to_string() })
            .collect();
        if dump.seen_mode == SeenMode::Private {
            for row in stores.restore.dump_private_seen(dump.id, ModSeq(since_modseq)).await? {
                writer.private_seen(&PrivateSeenLine {
                    mailbox: dump.name.clone(),
                    uid: row.uid.get(),
                    account: row.account,
                    seen: row.seen,
                    modseq: Some(row.modseq.0),
                })?;
            }
        }
        // RFC 5464 entries: whole in every export (they have no MODSEQ).
        let metadata = match stores.restore.dump_mailbox_metadata(dump.id).await {
            Ok(rows) => rows.into_iter().map(|r| MetadataLine::new(r.entry, r.account, r.value)).collect(),
            // Deleted while we were at it, as for its messages.
            Err(StoreError::NotFound) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        writer.mailbox(MailboxLine {
            name: dump.name.clone(),
            mailbox_id: Some(format!("M{}", dump.id.0)),
            uid_validity: Some(dump.uid_validity.0),
            uid_next: Some(dump.uid_next.get()),
            highest_modseq: Some(dump.highest_modseq.0),
            special_use: dump.special_use.map(|s| s.as_str().to_owned()),
            seen_mode: Some(seen_mode_name(dump.seen_mode).to_owned()),
            acl,
            expunged: Some(Expunged {
                ranges: format::runs(expunged.iter().map(|(uid, _)| *uid)),
                modseq: Some(format::runs_with_modseq(&expunged)),
            }),
            since_modseq: incremental.then_some(since_modseq),
            metadata,
        });
        summary.mailboxes += 1;
    }
    progress.finish();

    let quota = stores.share.quota(owner.id).await?.own;
    let members = match owner.kind {
        AccountKind::Team => stores
            .share
            .team_members(owner.id)
            .await?
            .into_iter()
            .map(|m| MemberLine { name: m.name, rights: m.rights.to_string() })
            .collect(),
        AccountKind::User => Vec::new(),
    };
    let account_line = AccountLine {
        name: owner.name.clone(),
        kind: match owner.kind {
            AccountKind::User => "user",
            AccountKind::Team => "team",
        }
        .to_owned(),
        address: stores.share.team_address(owner.id).await?,
        quota: QuotaLine { storage: quota.storage, messages: quota.messages, mailboxes: quota.mailboxes },
        subscriptions: stores.mail.subscriptions(owner.id).await?,
        groups: stores.share.groups_of(owner.id).await?,
        members,
        metadata: stores
            .restore
            .dump_account_metadata(owner.id)
            .await?
            .into_iter()
            .map(|r| MetadataLine::new(r.entry, None, r.value))
            .collect(),
    };
    let mut sieve = Vec::new();
    for script in stores.sieve.sieve_scripts(owner.id).await? {
        let Some(text) = stores.sieve.sieve_script(owner.id, &script.name).await? else { continue };
        sieve.push(SieveLine { name: script.name, active: script.active, script: text });
    }
    blocking(move || writer.finish(&account_line, &sieve, "postfach", lowest_since)).await?;
    summary.next_since = lowest_highest.unwrap_or(0);
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// `shared` or `private`.
pub(crate) fn seen_mode_name(mode: SeenMode) -> &'static str {
    match mode {
        SeenMode::Shared => "shared",
        SeenMode::Private => "private",
    }
}

/// Writes the messages of one mailbox (blobs and lines), batch by batch; hands the writer back.
/// The next batch is read from the store while the last one is written to disk.
async fn export_messages(
    stores: Stores<'_>,
    dump: &MailboxDump,
    since: u64,
    writer: Writer,
    progress: &Progress,
    summary: &mut ExportSummary,
) -> Result<Writer> {
    let mut after = 0u32;
    let mut writer = Some(writer);
    let mut writing: Option<tokio::task::JoinHandle<Result<(Writer, u64, u64)>>> = None;
    loop {
        let batch = match stores
            .restore
            .dump_messages(dump.id, after, dump.uid_next, ModSeq(since), BATCH_MESSAGES, BATCH_BYTES)
            .await
        {
            Ok(batch) => batch,
            // Deleted while we were at it: what was written stays; the mailbox line is written
            // with the counters read before.
            Err(StoreError::NotFound) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        if let Some(task) = writing.take() {
            let (w, n, bytes) = task.await.map_err(|e| Error::Source(format!("a writer failed: {e}")))??;
            writer = Some(w);
            summary.messages += n;
            summary.bytes += bytes;
            progress.add(n);
        }
        let Some(last) = batch.last() else { break };
        after = last.uid.get();
        let name = dump.name.clone();
        let Some(mut w) = writer.take() else {
            return Err(Error::Source("the export writer is gone".to_owned()));
        };
        writing = Some(tokio::task::spawn_blocking(move || {
            let mut bytes = 0u64;
            let n = batch.len() as u64;
            for m in batch {
                let sha256 = w.blob(&m.raw)?;
                bytes += m.raw.len() as u64;
                w.message(&MessageLine {
                    mailbox: name.clone(),
                    uid: m.uid.get(),
                    modseq: Some(m.modseq.0),
                    sha256,
                    size: m.raw.len() as u64,
                    flags: format::flag_names(m.flags.system),
                    keywords: m.flags.keywords,
                    internal_date: format::format_date(m.internal_date),
                    save_date: m.save_date.map(format::format_utc),
                    email_id: Some(postfach_message::email_id(&m.raw)),
                    thread_id: None,
                })?;
            }
            Ok((w, n, bytes))
        }));
    }
    writer.ok_or_else(|| Error::Source("the export writer is gone".to_owned()))
}
