//! The mailbox list and messages on PostgreSQL: CREATE/DELETE/RENAME/SUBSCRIBE, APPEND, STORE,
//! COPY/MOVE, EXPUNGE, and the reads (STATUS, SELECT, changes, FETCH, bodies).
//!
//! Every write runs in the caller's transaction (`write_tx!`) and first takes the mailbox row:
//! APPEND with one `UPDATE mailboxes SET uid_next = uid_next + n, highest_modseq =
//! highest_modseq + 1 … RETURNING`, the others with `SELECT … FOR UPDATE` (rows loaded into the
//! SQLite backend's [`MailboxRow`], whose counter arithmetic is shared), written back before
//! COMMIT. Message bodies are inserted before APPEND takes the mailbox row, so the lock is
//! held only for the message rows. Nothing here ever reads `uid_next` and inserts later
//! without holding the lock.
//!
//! Quota usage moves with every write, checked and incremented in the write's transaction
//! (`quota::charge`, after the mailbox rows are locked); a new mailbox inherits its ACL
//! (`shares::inherit_acl`) and RENAME moves the grantees' subscriptions along.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::Row;

use super::quota::{charge, release};
use super::{Effects, PgResult, Tx, is_unique_violation, owner_of, shares};
use crate::acl::QuotaLimits;
use crate::sqlite::quota::Check;
use crate::sqlite::rows::{
    MAX_MAILBOX_KEYWORDS, MailboxRow, Recency, checked_flags, flags_of, keywords_text, unix_now,
};
use crate::types::{
    AccountId, Appended, Changes, ClaimRecent, Copied, FetchWant, FlagOp, Flags, FlagsUpdated, InternalDate,
    MailboxId, MailboxInfo, MailboxName, MessageMeta, MessageSummary, ModSeq, NewMessage, Snapshot,
    SpecialUse, SystemFlags, Uid, UidSet, UidValidity,
};
use crate::{StoreError, StoreResult};

/// A message ready to insert: validated flags, a date, the encoded summary.
pub(super) struct Prepared {
    raw: bytes::Bytes,
    summary: Vec<u8>,
    /// The text SEARCH is prefiltered on (`search::prefilter_text`).
    text: Option<String>,
    /// SHA-256 of `raw`.
    hash: Vec<u8>,
    flags: Flags,
    date: InternalDate,
    size: u32,
}

/// Validates, parses and encodes messages (CPU work: call from `spawn_blocking`).
pub(super) fn prepare(
    messages: Vec<(NewMessage, Option<Arc<MessageSummary>>)>,
) -> StoreResult<Vec<Prepared>> {
    let now = unix_now();
    messages
        .into_iter()
        .map(|(m, parsed)| {
            let size = u32::try_from(m.raw.len())
                .map_err(|_| StoreError::Limit("message larger than 4 GiB".to_owned()))?;
            let flags = checked_flags(&m.flags)?;
            let summary = match parsed {
                Some(summary) => summary,
                None => Arc::new(postfach_message::parse(&m.raw)),
            };
            Ok(Prepared {
                summary: crate::sqlite::summary::encode(&summary)?,
                text: super::search::prefilter_text(&m.raw, &summary),
                hash: super::content_hash(&m.raw),
                raw: m.raw,
                flags,
                date: m.internal_date.unwrap_or(InternalDate { unix: now, offset_minutes: 0 }),
                size,
            })
        })
        .collect()
}

pub(super) fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

pub(super) fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn uid_of(v: i64) -> PgResult<Uid> {
    u32::try_from(v)
        .ok()
        .and_then(Uid::new)
        .ok_or_else(|| StoreError::Backend(format!("stored UID {v} out of range")).into())
}

/// The owner's next local id (`owner << 32 | n`), from `accounts.next_local`; locks the
/// account row until COMMIT.
pub(crate) async fn next_local_id(tx: &Tx<'_>, account: AccountId) -> PgResult<i64> {
    let row = tx
        .query_opt(
            "UPDATE accounts SET next_local = next_local + 1 WHERE id = $1 RETURNING next_local - 1",
            &[&account.0],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    local_id(account, row.get(0))
}

pub(super) fn local_id(account: AccountId, n: i64) -> PgResult<i64> {
    if !(1..1 << 32).contains(&n) {
        return Err(StoreError::Limit("the account has used up its ids".to_owned()).into());
    }
    Ok((account.0 << 32) | n)
}

/// Inserts a fresh, empty mailbox with a new UIDVALIDITY (`max(now, last + 1)` per owner).
pub(crate) async fn insert_mailbox(
    tx: &Tx<'_>,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
) -> PgResult<MailboxId> {
    let row = tx
        .query_opt(
            "UPDATE accounts SET next_local = next_local + 1,
                                 last_uid_validity = GREATEST($2, last_uid_validity + 1)
             WHERE id = $1 RETURNING next_local - 1, last_uid_validity",
            &[&account.0, &unix_now().max(1)],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    let id = local_id(account, row.get(0))?;
    let validity: i64 = row.get(1);
    if u32::try_from(validity).is_err() {
        return Err(StoreError::Limit("UIDVALIDITY values exhausted".to_owned()).into());
    }
    insert_row(tx, account, id, name, special_use, validity).await
}

/// Inserts an empty mailbox row with the given id and UIDVALIDITY; `AlreadyExists` when the
/// owner has a mailbox of that name.
pub(super) async fn insert_row(
    tx: &Tx<'_>,
    account: AccountId,
    id: i64,
    name: &str,
    special_use: Option<SpecialUse>,
    validity: i64,
) -> PgResult<MailboxId> {
    let inserted = tx
        .execute(
            "INSERT INTO mailboxes (owner_id, id, name, special_use, uid_validity, uid_next, highest_modseq,
                                    recent_from_uid)
             VALUES ($1, $2, $3, $4, $5, 1, 1, 1)",
            &[&account.0, &id, &name, &special_use.map(SpecialUse::as_str), &validity],
        )
        .await;
    match inserted {
        Ok(_) => Ok(MailboxId(id)),
        Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists.into()),
        Err(e) => Err(e.into()),
    }
}

const MAILBOX_COLUMNS: &str = "id, owner_id, name, uid_validity, uid_next, highest_modseq, recent_from_uid, \
     messages, unseen, deleted, size, recent";

fn mailbox_row(r: &Row) -> MailboxRow {
    MailboxRow {
        id: MailboxId(r.get(0)),
        account: AccountId(r.get(1)),
        name: r.get(2),
        uid_validity: UidValidity(u32_of(r.get(3))),
        uid_next: u32_of(r.get(4)).max(1),
        highest_modseq: u64_of(r.get(5)),
        recent_from_uid: u32_of(r.get(6)),
        messages: u32_of(r.get(7)),
        unseen: u32_of(r.get(8)),
        deleted: u32_of(r.get(9)),
        size: u64_of(r.get(10)),
        recent: u32_of(r.get(11)),
    }
}

/// A mailbox row (`FOR UPDATE` when `lock`); `NotFound` when there is none.
pub(super) async fn load(tx: &Tx<'_>, mailbox: MailboxId, lock: bool) -> PgResult<MailboxRow> {
    let sql = format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE owner_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = tx.query_opt(&sql, &[&owner_of(mailbox.0), &mailbox.0]).await?;
    row.as_ref().map(mailbox_row).ok_or(StoreError::NotFound.into())
}

async fn by_name(tx: &Tx<'_>, account: AccountId, name: &str, lock: bool) -> PgResult<Option<MailboxRow>> {
    let sql = format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE owner_id = $1 AND name = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(tx.query_opt(&sql, &[&account.0, &name]).await?.as_ref().map(mailbox_row))
}

/// Writes the counters, `uid_next`, `highest_modseq` and `recent_from_uid` back.
pub(super) async fn save(tx: &Tx<'_>, mb: &MailboxRow) -> PgResult<()> {
    tx.execute(
        "UPDATE mailboxes SET uid_next = $3, highest_modseq = $4, recent_from_uid = $5, messages = $6,
                              unseen = $7, deleted = $8, size = $9, recent = $10
         WHERE owner_id = $1 AND id = $2",
        &[
            &owner_of(mb.id.0),
            &mb.id.0,
            &i64::from(mb.uid_next),
            &i64_of(mb.highest_modseq),
            &i64::from(mb.recent_from_uid),
            &i64::from(mb.messages),
            &i64::from(mb.unseen),
            &i64::from(mb.deleted),
            &i64_of(mb.size),
            &i64::from(mb.recent),
        ],
    )
    .await?;
    Ok(())
}

/// Deletes the bodies among `ids` that no message of the owner points at any more.
pub(crate) async fn drop_orphan_bodies(tx: &Tx<'_>, owner: i64, ids: &[i64]) -> PgResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    tx.execute(
        "DELETE FROM bodies b WHERE b.owner_id = $1 AND b.id = ANY($2)
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.owner_id = $1 AND m.body_id = b.id)",
        &[&owner, &ids],
    )
    .await?;
    Ok(())
}

/// Remembers keywords as used in the mailbox; `Limit` past [`MAX_MAILBOX_KEYWORDS`].
pub(super) async fn register_keywords<'a>(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    keywords: impl IntoIterator<Item = &'a String>,
) -> PgResult<()> {
    let mut seen = std::collections::HashSet::new();
    let list: Vec<&str> =
        keywords.into_iter().filter(|k| seen.insert(k.to_ascii_lowercase())).map(String::as_str).collect();
    if list.is_empty() {
        return Ok(());
    }
    let owner = owner_of(mailbox.0);
    let added = tx
        .execute(
            "INSERT INTO mailbox_keywords (owner_id, mailbox_id, keyword_key, keyword)
             SELECT $1, $2, lower(k), k FROM unnest($3::text[]) AS k
             ON CONFLICT DO NOTHING",
            &[&owner, &mailbox.0, &list],
        )
        .await?;
    if added > 0 {
        let count: i64 = tx
            .query_one(
                "SELECT count(*) FROM mailbox_keywords WHERE owner_id = $1 AND mailbox_id = $2",
                &[&owner, &mailbox.0],
            )
            .await?
            .get(0);
        if count > MAX_MAILBOX_KEYWORDS {
            return Err(StoreError::Limit(format!(
                "a mailbox can hold at most {MAX_MAILBOX_KEYWORDS} distinct keywords"
            ))
            .into());
        }
    }
    Ok(())
}

async fn mailbox_keywords(tx: &Tx<'_>, mailbox: MailboxId) -> PgResult<Vec<String>> {
    let rows = tx
        .query(
            "SELECT keyword FROM mailbox_keywords WHERE owner_id = $1 AND mailbox_id = $2
             ORDER BY keyword_key COLLATE \"C\"",
            &[&owner_of(mailbox.0), &mailbox.0],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

// --- the mailbox list -------------------------------------------------------------------------

pub(super) async fn mailbox_infos(
    tx: &Tx<'_>,
    account: AccountId,
    only: Option<&str>,
) -> PgResult<Vec<MailboxInfo>> {
    let rows = tx
        .query(
            "SELECT m.id, m.name, m.special_use,
                    EXISTS (SELECT 1 FROM subscriptions s WHERE s.owner_id = m.owner_id AND s.name = m.name)
             FROM mailboxes m
             WHERE m.owner_id = $1 AND ($2::text IS NULL OR m.name = $2)
             ORDER BY m.name COLLATE \"C\"",
            &[&account.0, &only],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| MailboxInfo {
            id: MailboxId(r.get(0)),
            name: r.get(1),
            special_use: r.get::<_, Option<String>>(2).as_deref().and_then(SpecialUse::parse),
            subscribed: r.get(3),
        })
        .collect())
}

/// Locks the account row (serialising the owner's list changes); `NotFound` without one.
async fn lock_account(tx: &Tx<'_>, account: AccountId) -> PgResult<()> {
    match tx.query_opt("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", &[&account.0]).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound.into()),
    }
}

/// Refuses with `Limit` when the account has more mailboxes than its limit (after the insert,
/// in its transaction; the account row is locked, so concurrent creates cannot overshoot).
async fn check_mailbox_count(tx: &Tx<'_>, account: AccountId, max: u32) -> PgResult<()> {
    let row = tx
        .query_one(
            "SELECT (SELECT count(*) FROM mailboxes WHERE owner_id = $1),
                    (SELECT mailbox_limit FROM quota WHERE owner_id = $1)",
            &[&account.0],
        )
        .await?;
    let count: i64 = row.get(0);
    let limit = row.get::<_, Option<i64>>(1).unwrap_or(i64::from(max));
    if count > limit {
        return Err(StoreError::Limit(format!("at most {limit} mailboxes in this account")).into());
    }
    Ok(())
}

pub(super) async fn create_mailbox(
    tx: &Tx<'_>,
    fx: &mut Effects,
    account: AccountId,
    name: &MailboxName,
    special_use: Option<SpecialUse>,
    max: u32,
) -> PgResult<MailboxId> {
    name.check_creatable()?;
    lock_account(tx, account).await?;
    if name.is_inbox() {
        return Err(StoreError::AlreadyExists.into());
    }
    let id = insert_mailbox(tx, account, name.as_str(), special_use).await?;
    check_mailbox_count(tx, account, max).await?;
    shares::inherit_acl(tx, fx, account, id, name).await?;
    Ok(id)
}

pub(super) async fn delete_mailbox(
    tx: &Tx<'_>,
    fx: &mut Effects,
    account: AccountId,
    mailbox: MailboxId,
    defaults: &QuotaLimits,
) -> PgResult<()> {
    if owner_of(mailbox.0) != account.0 {
        // Someone else's mailbox reads as missing.
        return Err(StoreError::NotFound.into());
    }
    let row = load(tx, mailbox, true).await?;
    if row.name == MailboxName::INBOX {
        return Err(StoreError::NotAllowed("INBOX cannot be deleted".to_owned()).into());
    }
    let gone = tx
        .query(
            "DELETE FROM messages WHERE owner_id = $1 AND mailbox_id = $2 RETURNING body_id",
            &[&account.0, &mailbox.0],
        )
        .await?;
    let bodies: Vec<i64> = gone.iter().map(|r| r.get(0)).collect();
    release(tx, account.0, i64_of(row.size), i64::from(row.messages), defaults).await?;
    tx.execute("DELETE FROM mailboxes WHERE owner_id = $1 AND id = $2", &[&account.0, &mailbox.0]).await?;
    drop_orphan_bodies(tx, account.0, &bodies).await?;
    fx.changed(mailbox, ModSeq(row.highest_modseq.saturating_add(1)));
    Ok(())
}

pub(super) async fn rename_mailbox(
    tx: &Tx<'_>,
    fx: &mut Effects,
    account: AccountId,
    from: &MailboxName,
    to: &MailboxName,
    max: u32,
) -> PgResult<()> {
    to.check_creatable()?;
    lock_account(tx, account).await?;
    if from.is_inbox() {
        return rename_inbox(tx, fx, account, to, max).await;
    }
    if by_name(tx, account, from.as_str(), false).await?.is_none() {
        return Err(StoreError::NotFound.into());
    }
    let (from, to) = (from.as_str(), to.as_str());
    if from == to || to == MailboxName::INBOX {
        return Err(StoreError::AlreadyExists.into());
    }
    let from_prefix = format!("{from}/");
    if to.starts_with(&from_prefix) {
        return Err(StoreError::NotAllowed("cannot move a mailbox below itself".to_owned()).into());
    }
    let all: Vec<(i64, String)> = tx
        .query("SELECT id, name FROM mailboxes WHERE owner_id = $1", &[&account.0])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let renamed = |name: &str| -> Option<String> {
        if name == from {
            Some(to.to_owned())
        } else {
            name.strip_prefix(&from_prefix).map(|rest| format!("{to}/{rest}"))
        }
    };
    let mut moves: Vec<(i64, String)> = Vec::new();
    let mut moved: Vec<(MailboxId, String, String)> = Vec::new();
    let mut staying = std::collections::HashSet::new();
    for (id, name) in &all {
        match renamed(name) {
            Some(new) => {
                moved.push((MailboxId(*id), name.clone(), new.clone()));
                moves.push((*id, new));
            }
            None => {
                staying.insert(name.as_str());
            }
        }
    }
    for (_, new) in &moves {
        MailboxName::new(new)?;
        if staying.contains(new.as_str()) {
            return Err(StoreError::AlreadyExists.into());
        }
    }
    // One statement: the UNIQUE (owner_id, name) check then sees the final names only for
    // rows it has not updated yet, so park the names first (a new name may be an old one).
    for (id, _) in &moves {
        tx.execute(
            "UPDATE mailboxes SET name = $3 WHERE owner_id = $1 AND id = $2",
            &[&account.0, id, &format!("\u{1}rename\u{1}{id}")],
        )
        .await?;
    }
    for (id, new) in &moves {
        let updated = tx
            .execute("UPDATE mailboxes SET name = $3 WHERE owner_id = $1 AND id = $2", &[&account.0, id, new])
            .await;
        match updated {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists.into()),
            Err(e) => return Err(e.into()),
        }
    }
    for old in subscriptions(tx, account).await? {
        let Some(new) = renamed(&old) else { continue };
        unsubscribe(tx, account, &old).await?;
        subscribe(tx, account, &new).await?;
    }
    shares::rename_grantee_subscriptions(tx, account, &moved).await
}

/// RFC 9051 §6.3.6: renaming INBOX moves its messages to a new mailbox and leaves INBOX empty.
async fn rename_inbox(
    tx: &Tx<'_>,
    fx: &mut Effects,
    account: AccountId,
    to: &MailboxName,
    max: u32,
) -> PgResult<()> {
    if to.is_inbox() {
        return Err(StoreError::AlreadyExists.into());
    }
    let mut inbox = by_name(tx, account, MailboxName::INBOX, true).await?.ok_or(StoreError::NotFound)?;
    let target_id = insert_mailbox(tx, account, to.as_str(), None).await?;
    check_mailbox_count(tx, account, max).await?;
    shares::inherit_acl(tx, fx, account, target_id, to).await?;
    let mut target = load(tx, target_id, true).await?;
    let keep_modseq = target.bump_modseq()?;
    super::metadata::copy_mailbox_entries(tx, account.0, inbox.id.0, target_id.0).await?;
    let moved = tx
        .execute(
            "INSERT INTO messages (owner_id, mailbox_id, uid, body_id, flags, keywords, internal_date,
                                   date_offset, size, modseq, saved_at)
             SELECT owner_id, $3, ROW_NUMBER() OVER (ORDER BY uid), body_id, flags, keywords, internal_date,
                    date_offset, size, $4, saved_at
             FROM messages WHERE owner_id = $1 AND mailbox_id = $2",
            &[&account.0, &inbox.id.0, &target_id.0, &i64_of(keep_modseq.0)],
        )
        .await?;
    if moved == 0 {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO mailbox_keywords (owner_id, mailbox_id, keyword_key, keyword)
         SELECT owner_id, $3, keyword_key, keyword FROM mailbox_keywords WHERE owner_id = $1 AND mailbox_id = $2",
        &[&account.0, &inbox.id.0, &target_id.0],
    )
    .await?;
    let counts = tx
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE (flags & 1) = 0), count(*) FILTER (WHERE (flags & 8) <> 0),
                    COALESCE(sum(size), 0)::BIGINT
             FROM messages WHERE owner_id = $1 AND mailbox_id = $2",
            &[&account.0, &target_id.0],
        )
        .await?;
    target.messages = u32_of(counts.get(0));
    target.unseen = u32_of(counts.get(1));
    target.deleted = u32_of(counts.get(2));
    target.size = u64_of(counts.get(3));
    target.recent = target.messages;
    target.uid_next = target.messages.saturating_add(1);
    save(tx, &target).await?;

    let expunge_modseq = inbox.bump_modseq()?;
    tx.execute(
        "INSERT INTO expunged (owner_id, mailbox_id, uid, modseq)
         SELECT owner_id, mailbox_id, uid, $3 FROM messages WHERE owner_id = $1 AND mailbox_id = $2
         ON CONFLICT (owner_id, mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq",
        &[&account.0, &inbox.id.0, &i64_of(expunge_modseq.0)],
    )
    .await?;
    tx.execute("DELETE FROM messages WHERE owner_id = $1 AND mailbox_id = $2", &[&account.0, &inbox.id.0])
        .await?;
    tx.execute(
        "DELETE FROM private_seen WHERE owner_id = $1 AND mailbox_id = $2",
        &[&account.0, &inbox.id.0],
    )
    .await?;
    inbox.messages = 0;
    inbox.unseen = 0;
    inbox.deleted = 0;
    inbox.size = 0;
    inbox.recent = 0;
    save(tx, &inbox).await?;
    fx.changed(inbox.id, expunge_modseq);
    fx.changed(target_id, keep_modseq);
    Ok(())
}

pub(super) async fn set_subscribed(
    tx: &Tx<'_>,
    account: AccountId,
    name: &str,
    subscribed: bool,
) -> PgResult<()> {
    if tx.query_opt("SELECT 1 FROM accounts WHERE id = $1", &[&account.0]).await?.is_none() {
        return Err(StoreError::NotFound.into());
    }
    if subscribed {
        subscribe(tx, account, name).await
    } else {
        unsubscribe(tx, account, name).await.map(|_| ())
    }
}

pub(crate) async fn subscribe(tx: &Tx<'_>, account: AccountId, name: &str) -> PgResult<()> {
    tx.execute(
        "INSERT INTO subscriptions (owner_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&account.0, &name],
    )
    .await?;
    Ok(())
}

/// Removes a subscription; returns how many there were (0 or 1).
pub(crate) async fn unsubscribe(tx: &Tx<'_>, account: AccountId, name: &str) -> PgResult<u64> {
    Ok(tx
        .execute("DELETE FROM subscriptions WHERE owner_id = $1 AND name = $2", &[&account.0, &name])
        .await?)
}

pub(super) async fn subscriptions(tx: &Tx<'_>, account: AccountId) -> PgResult<Vec<String>> {
    let rows = tx
        .query(
            "SELECT name FROM subscriptions WHERE owner_id = $1 ORDER BY name COLLATE \"C\"",
            &[&account.0],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

// --- mailbox reads ----------------------------------------------------------------------------

/// The UIDs of the mailbox in `[from, to)`.
async fn uids_between(tx: &Tx<'_>, mailbox: MailboxId, from: u32, to: u32) -> PgResult<UidSet> {
    let mut uids = UidSet::new();
    if from >= to {
        return Ok(uids);
    }
    let rows = tx
        .query(
            "SELECT uid FROM messages WHERE owner_id = $1 AND mailbox_id = $2 AND uid >= $3 AND uid < $4
             ORDER BY uid",
            &[&owner_of(mailbox.0), &mailbox.0, &i64::from(from), &i64::from(to)],
        )
        .await?;
    for r in &rows {
        uids.push_ascending(uid_of(r.get(0))?);
    }
    Ok(uids)
}

/// SELECT (claiming `\Recent` under the row lock) or EXAMINE.
pub(super) async fn select(tx: &Tx<'_>, mailbox: MailboxId, recent: ClaimRecent) -> PgResult<Snapshot> {
    let claim = recent == ClaimRecent::Claim;
    let mut row = load(tx, mailbox, claim).await?;
    let claimed = row.recent_from_uid..row.uid_next;
    if claim && claimed.start < claimed.end {
        row.recent_from_uid = row.uid_next;
        row.recent = 0;
        save(tx, &row).await?;
    }
    // TODO(perf): one row per message; SQLite keeps runs of UIDs (schema V6) for huge mailboxes.
    let uids = uids_between(tx, mailbox, 1, u32::MAX).await?;
    let first_unseen = tx
        .query_opt(
            "SELECT uid FROM messages WHERE owner_id = $1 AND mailbox_id = $2 AND (flags & 1) = 0
             ORDER BY uid LIMIT 1",
            &[&owner_of(mailbox.0), &mailbox.0],
        )
        .await?
        .map(|r| uid_of(r.get(0)))
        .transpose()?;
    let mut snapshot = Snapshot {
        status: row.status(),
        uids,
        keywords: mailbox_keywords(tx, mailbox).await?,
        recent: UidSet::new(),
        first_unseen,
    };
    if claimed.start < claimed.end {
        let mine = snapshot.uids.clipped(claimed.start..=claimed.end - 1);
        snapshot.status.recent = u32::try_from(mine.len()).unwrap_or(u32::MAX);
        snapshot.recent = mine;
    }
    Ok(snapshot)
}

pub(super) async fn claim_recent(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    below: Uid,
    claim: ClaimRecent,
) -> PgResult<UidSet> {
    let claim = claim == ClaimRecent::Claim;
    let mut row = load(tx, mailbox, claim).await?;
    let end = below.get().min(row.uid_next);
    if row.recent_from_uid >= end {
        return Ok(UidSet::new());
    }
    let claimed = uids_between(tx, mailbox, row.recent_from_uid, end).await?;
    if claim {
        row.recent_from_uid = end;
        row.recent = row.recent.saturating_sub(u32::try_from(claimed.len()).unwrap_or(u32::MAX));
        save(tx, &row).await?;
    }
    Ok(claimed)
}

pub(super) async fn changes_since(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    since: ModSeq,
    known_uid_next: Uid,
) -> PgResult<Changes> {
    let row = load(tx, mailbox, false).await?;
    let owner = owner_of(mailbox.0);
    let mut out = Changes {
        highest_modseq: ModSeq(row.highest_modseq),
        uid_next: row.uid_next(),
        ..Changes::default()
    };
    let known = i64::from(known_uid_next.get());
    for r in &tx
        .query(
            "SELECT uid FROM messages WHERE owner_id = $1 AND mailbox_id = $2 AND uid >= $3 ORDER BY uid",
            &[&owner, &mailbox.0, &known],
        )
        .await?
    {
        out.added.push(uid_of(r.get(0))?);
    }
    if since.0 < row.highest_modseq {
        let since = i64_of(since.0);
        for r in &tx
            .query(
                "SELECT uid, flags, keywords, modseq FROM messages
                 WHERE owner_id = $1 AND mailbox_id = $2 AND modseq > $3 AND uid < $4 ORDER BY uid",
                &[&owner, &mailbox.0, &since, &known],
            )
            .await?
        {
            let keywords: String = r.get(2);
            out.flags.push((uid_of(r.get(0))?, flags_of(r.get(1), &keywords), ModSeq(u64_of(r.get(3)))));
        }
        for r in &tx
            .query(
                "SELECT uid FROM expunged WHERE owner_id = $1 AND mailbox_id = $2 AND modseq > $3 AND uid < $4
                 ORDER BY uid",
                &[&owner, &mailbox.0, &since, &known],
            )
            .await?
        {
            out.expunged.push(uid_of(r.get(0))?);
        }
    }
    if !out.added.is_empty() || !out.flags.is_empty() {
        out.keywords = mailbox_keywords(tx, mailbox).await?;
    }
    Ok(out)
}

/// One message row as the writes and FETCH need it.
pub(super) struct MsgRow {
    pub(super) uid: Uid,
    pub(super) body_id: i64,
    pub(super) flags: Flags,
    pub(super) date: i64,
    pub(super) offset: i64,
    pub(super) size: u32,
    pub(super) modseq: ModSeq,
    pub(super) saved_at: i64,
}

pub(super) const MSG_COLUMNS: &str =
    "m.uid, m.body_id, m.flags, m.keywords, m.internal_date, m.date_offset, m.size, m.modseq, m.saved_at";

pub(super) fn msg_row(r: &Row) -> PgResult<MsgRow> {
    let keywords: String = r.get(3);
    Ok(MsgRow {
        uid: uid_of(r.get(0))?,
        body_id: r.get(1),
        flags: flags_of(r.get(2), &keywords),
        date: r.get(4),
        offset: r.get(5),
        size: u32_of(r.get(6)),
        modseq: ModSeq(u64_of(r.get(7))),
        saved_at: r.get(8),
    })
}

/// The messages of `mailbox` in `uids` (only `\Deleted` ones when `deleted_only`), ascending;
/// one statement for the whole set (its ranges as two arrays).
pub(super) async fn rows_in(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    uids: &UidSet,
    deleted_only: bool,
) -> PgResult<Vec<MsgRow>> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let lo: Vec<i64> = uids.ranges().iter().map(|r| i64::from(*r.start())).collect();
    let hi: Vec<i64> = uids.ranges().iter().map(|r| i64::from(*r.end())).collect();
    let sql = format!(
        "SELECT {MSG_COLUMNS} FROM messages m JOIN unnest($3::bigint[], $4::bigint[]) AS r(lo, hi)
           ON m.uid BETWEEN r.lo AND r.hi
         WHERE m.owner_id = $1 AND m.mailbox_id = $2{} ORDER BY m.uid",
        if deleted_only { " AND (m.flags & 8) <> 0" } else { "" }
    );
    tx.query(&sql, &[&owner_of(mailbox.0), &mailbox.0, &lo, &hi]).await?.iter().map(msg_row).collect()
}

pub(super) async fn fetch(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    uids: &UidSet,
    want: FetchWant,
) -> PgResult<Vec<MessageMeta>> {
    load(tx, mailbox, false).await?;
    let rows = rows_in(tx, mailbox, uids, false).await?;
    let mut summaries: HashMap<i64, Arc<MessageSummary>> = HashMap::new();
    if want.summary && !rows.is_empty() {
        let ids: Vec<i64> = rows.iter().map(|r| r.body_id).collect();
        for r in &tx
            .query(
                "SELECT id, summary FROM bodies WHERE owner_id = $1 AND id = ANY($2)",
                &[&owner_of(mailbox.0), &ids],
            )
            .await?
        {
            let id: i64 = r.get(0);
            let bytes: Vec<u8> = r.get(1);
            let summary = match crate::sqlite::summary::decode(&bytes) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    tracing::warn!(body_id = id, error = %e, "stored summary does not decode; parsing again");
                    Arc::new(postfach_message::parse(&raw_body(tx, owner_of(mailbox.0), id).await?))
                }
            };
            summaries.insert(id, summary);
        }
    }
    Ok(rows
        .into_iter()
        .map(|r| MessageMeta {
            uid: r.uid,
            summary: if want.summary { summaries.get(&r.body_id).cloned() } else { None },
            flags: r.flags,
            internal_date: InternalDate {
                unix: r.date,
                offset_minutes: i16::try_from(r.offset).unwrap_or(0),
            },
            size: r.size,
            modseq: r.modseq,
        })
        .collect())
}

pub(super) async fn raw_body(tx: &Tx<'_>, owner: i64, body_id: i64) -> PgResult<Vec<u8>> {
    let row =
        tx.query_opt("SELECT raw FROM bodies WHERE owner_id = $1 AND id = $2", &[&owner, &body_id]).await?;
    row.map(|r| r.get(0)).ok_or(StoreError::NotFound.into())
}

pub(super) async fn body(tx: &Tx<'_>, mailbox: MailboxId, uid: Uid) -> PgResult<Vec<u8>> {
    let row = tx
        .query_opt(
            "SELECT b.raw FROM messages m JOIN bodies b ON b.owner_id = m.owner_id AND b.id = m.body_id
             WHERE m.owner_id = $1 AND m.mailbox_id = $2 AND m.uid = $3",
            &[&owner_of(mailbox.0), &mailbox.0, &i64::from(uid.get())],
        )
        .await?;
    row.map(|r| r.get(0)).ok_or(StoreError::NotFound.into())
}

/// The first bytes of several messages in one statement. TODO(perf): `substring` of a
/// compressed (EXTENDED) value still decompresses it whole; `STORAGE EXTERNAL` would make
/// header reads cheap at the cost of compression.
pub(super) async fn bodies(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    wanted: &[(Uid, u32)],
) -> PgResult<Vec<(Uid, Vec<u8>)>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let uids: Vec<i64> = wanted.iter().map(|(u, _)| i64::from(u.get())).collect();
    let limits: Vec<i64> = wanted.iter().map(|(_, l)| i64::from(*l)).collect();
    let rows = tx
        .query(
            "SELECT w.uid, substring(b.raw FROM 1 FOR w.lim::int)
             FROM unnest($3::bigint[], $4::bigint[]) WITH ORDINALITY AS w(uid, lim, pos)
             JOIN messages m ON m.owner_id = $1 AND m.mailbox_id = $2 AND m.uid = w.uid
             JOIN bodies b ON b.owner_id = m.owner_id AND b.id = m.body_id
             ORDER BY w.pos",
            &[&owner_of(mailbox.0), &mailbox.0, &uids, &limits],
        )
        .await?;
    rows.iter().map(|r| Ok((uid_of(r.get(0))?, r.get(1)))).collect()
}

// --- message writes ---------------------------------------------------------------------------

pub(super) async fn append(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mailbox: MailboxId,
    messages: &[Prepared],
    defaults: &QuotaLimits,
    check: Check,
) -> PgResult<Vec<Appended>> {
    let owner = owner_of(mailbox.0);
    load(tx, mailbox, false).await?;
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    // The bodies first: large writes happen before the mailbox row is locked.
    let mut body_ids = Vec::with_capacity(messages.len());
    for m in messages {
        let row = tx
            .query_one(
                "INSERT INTO bodies (owner_id, size, summary, raw, content_hash) VALUES ($1, $2, $3, $4, $5)
                 RETURNING id",
                &[&owner, &i64::from(m.size), &m.summary, &&m.raw[..], &m.hash],
            )
            .await?;
        let body = row.get::<_, i64>(0);
        super::search::record_text(tx, owner, body, m.text.as_deref()).await?;
        body_ids.push(body);
    }
    // Allocate the UIDs and the modseq under the row lock, held until COMMIT.
    let n = i64::try_from(messages.len()).unwrap_or(i64::MAX);
    let row = tx
        .query_opt(
            "UPDATE mailboxes SET uid_next = uid_next + $3, highest_modseq = highest_modseq + 1
             WHERE owner_id = $1 AND id = $2
             RETURNING uid_next - $3, highest_modseq, uid_validity",
            &[&owner, &mailbox.0, &n],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    let first: i64 = row.get(0);
    let modseq = ModSeq(u64_of(row.get(1)));
    let uid_validity = UidValidity(u32_of(row.get(2)));
    // UIDNEXT must still fit in 32 bits afterwards (the last usable UID is u32::MAX - 1).
    if first + n > i64::from(u32::MAX) {
        return Err(StoreError::Limit("the mailbox has used up its UIDs".to_owned()).into());
    }
    if modseq.0 >= i64::MAX as u64 {
        return Err(StoreError::Limit("mod-sequence space exhausted".to_owned()).into());
    }
    let now = unix_now();
    let (mut unseen, mut deleted, mut bytes) = (0i64, 0i64, 0i64);
    let mut out = Vec::with_capacity(messages.len());
    let mut uids = Vec::with_capacity(messages.len());
    let mut flags = Vec::with_capacity(messages.len());
    let mut keywords = Vec::with_capacity(messages.len());
    let mut dates = Vec::with_capacity(messages.len());
    let mut offsets = Vec::with_capacity(messages.len());
    let mut sizes = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let uid = first + i64::try_from(i).unwrap_or(0);
        uids.push(uid);
        flags.push(i64::from(m.flags.system.0));
        keywords.push(keywords_text(&m.flags));
        dates.push(m.date.unix);
        offsets.push(i64::from(m.date.offset_minutes));
        sizes.push(i64::from(m.size));
        if !m.flags.system.contains(SystemFlags::SEEN) {
            unseen += 1;
        }
        if m.flags.system.contains(SystemFlags::DELETED) {
            deleted += 1;
        }
        bytes += i64::from(m.size);
        out.push(Appended { uid_validity, uid: uid_of(uid)?, modseq });
    }
    tx.execute(
        "INSERT INTO messages (owner_id, mailbox_id, uid, body_id, flags, keywords, internal_date, date_offset,
                               size, modseq, saved_at)
         SELECT $1, $2, u, b, f, k, d, o, s, $10, $11
         FROM unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[],
                     $9::bigint[]) AS x(u, b, f, k, d, o, s)",
        &[
            &owner,
            &mailbox.0,
            &uids,
            &body_ids,
            &flags,
            &keywords,
            &dates,
            &offsets,
            &sizes,
            &i64_of(modseq.0),
            &now,
        ],
    )
    .await?;
    // Every new UID is at or above the recent boundary: all count as recent.
    tx.execute(
        "UPDATE mailboxes SET messages = messages + $3, unseen = unseen + $4, deleted = deleted + $5,
                              size = size + $6, recent = recent + $3
         WHERE owner_id = $1 AND id = $2",
        &[&owner, &mailbox.0, &n, &unseen, &deleted, &bytes],
    )
    .await?;
    register_keywords(tx, mailbox, messages.iter().flat_map(|m| m.flags.keywords.iter())).await?;
    charge(tx, owner, bytes, n, defaults, check).await?;
    fx.changed(mailbox, modseq);
    Ok(out)
}

pub(super) async fn store_flags(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mailbox: MailboxId,
    uids: &UidSet,
    op: FlagOp,
    change: &Flags,
    unchanged_since: Option<ModSeq>,
) -> PgResult<FlagsUpdated> {
    let mut mb = load(tx, mailbox, true).await?;
    let modseq_before = ModSeq(mb.highest_modseq);
    let rows = rows_in(tx, mailbox, uids, false).await?;
    let mut out = FlagsUpdated { modseq_before, modseq_after: modseq_before, ..FlagsUpdated::default() };
    let mut new_modseq: Option<ModSeq> = None;
    let (mut changed_uids, mut changed_flags, mut changed_keywords) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        if unchanged_since.is_some_and(|limit| row.modseq > limit) {
            out.modified.push(row.uid);
            continue;
        }
        let new = row.flags.apply(op, change);
        if new == row.flags {
            out.updated.push((row.uid, row.flags, row.modseq));
            continue;
        }
        let modseq = match new_modseq {
            Some(m) => m,
            None => {
                let m = mb.bump_modseq()?;
                new_modseq = Some(m);
                m
            }
        };
        changed_uids.push(i64::from(row.uid.get()));
        changed_flags.push(i64::from(new.system.0));
        changed_keywords.push(keywords_text(&new));
        mb.count_flag_change(row.flags.system, new.system);
        out.updated.push((row.uid, new, modseq));
    }
    if let Some(modseq) = new_modseq {
        tx.execute(
            "UPDATE messages m SET flags = v.f, keywords = v.k, modseq = $3
             FROM unnest($4::bigint[], $5::bigint[], $6::text[]) AS v(u, f, k)
             WHERE m.owner_id = $1 AND m.mailbox_id = $2 AND m.uid = v.u",
            &[
                &owner_of(mailbox.0),
                &mailbox.0,
                &i64_of(modseq.0),
                &changed_uids,
                &changed_flags,
                &changed_keywords,
            ],
        )
        .await?;
        if op != FlagOp::Remove {
            register_keywords(tx, mailbox, change.keywords.iter()).await?;
        }
        save(tx, &mb).await?;
        fx.changed(mailbox, modseq);
        out.modseq_after = modseq;
    }
    Ok(out)
}

/// Whether a transfer keeps the source messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transfer {
    Copy,
    Move,
}

/// COPY or MOVE to a mailbox of any owner. Both mailbox rows are locked in `(owner_id, id)`
/// order, so two transfers in opposite directions cannot deadlock.
pub(super) async fn transfer(
    tx: &Tx<'_>,
    fx: &mut Effects,
    from: MailboxId,
    uids: &UidSet,
    to: MailboxId,
    how: Transfer,
    defaults: &QuotaLimits,
) -> PgResult<Copied> {
    let (src_owner, dst_owner) = (owner_of(from.0), owner_of(to.0));
    let mut target = if from == to {
        load(tx, to, true).await?
    } else if (src_owner, from.0) < (dst_owner, to.0) {
        load(tx, from, true).await?;
        load(tx, to, true).await?
    } else {
        let target = load(tx, to, true).await?;
        load(tx, from, true).await?;
        target
    };
    let rows = rows_in(tx, from, uids, false).await?;
    if rows.is_empty() {
        return Ok(Copied::default());
    }
    let across = src_owner != dst_owner;
    let bytes: i64 = rows.iter().map(|r| i64::from(r.size)).sum();
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);

    // A body belongs to its owner's shard: copied across owners, shared within one.
    let mut body_map: HashMap<i64, i64> = HashMap::new();
    if across {
        for row in &rows {
            if body_map.contains_key(&row.body_id) {
                continue;
            }
            let new = tx
                .query_one(
                    "INSERT INTO bodies (owner_id, size, summary, raw, content_hash)
                     SELECT $3, size, summary, raw, content_hash FROM bodies WHERE owner_id = $1 AND id = $2
                     RETURNING id",
                    &[&src_owner, &row.body_id, &dst_owner],
                )
                .await?;
            let new_id: i64 = new.get(0);
            tx.execute(
                "INSERT INTO body_text (owner_id, body_id, text)
                 SELECT $3, $4, text FROM body_text WHERE owner_id = $1 AND body_id = $2",
                &[&src_owner, &row.body_id, &dst_owner, &new_id],
            )
            .await?;
            body_map.insert(row.body_id, new_id);
        }
    }
    let modseq = target.bump_modseq()?;
    let mut mapping = Vec::with_capacity(rows.len());
    let (mut new_uids, mut bodies, mut flags, mut keywords, mut dates, mut offsets, mut sizes, mut saved) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let now = unix_now();
    for row in &rows {
        let uid = target.take_uid()?;
        new_uids.push(i64::from(uid.get()));
        bodies.push(body_map.get(&row.body_id).copied().unwrap_or(row.body_id));
        flags.push(i64::from(row.flags.system.0));
        keywords.push(keywords_text(&row.flags));
        dates.push(row.date);
        offsets.push(row.offset);
        sizes.push(i64::from(row.size));
        saved.push(now);
        target.count_in(row.flags.system, row.size, Recency::Recent);
        mapping.push((row.uid, uid));
    }
    tx.execute(
        "INSERT INTO messages (owner_id, mailbox_id, uid, body_id, flags, keywords, internal_date, date_offset,
                               size, modseq, saved_at)
         SELECT $1, $2, u, b, f, k, d, o, s, $10, sa
         FROM unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[],
                     $9::bigint[], $11::bigint[]) AS x(u, b, f, k, d, o, s, sa)",
        &[
            &dst_owner,
            &to.0,
            &new_uids,
            &bodies,
            &flags,
            &keywords,
            &dates,
            &offsets,
            &sizes,
            &i64_of(modseq.0),
            &saved,
        ],
    )
    .await?;
    register_keywords(tx, to, rows.iter().flat_map(|r| r.flags.keywords.iter())).await?;
    save(tx, &target).await?;
    fx.changed(to, modseq);
    // Quota rows in owner order (after the mailbox rows): MOVE across owners frees the
    // source and charges the target; a refusal rolls everything back.
    match (how, across) {
        (Transfer::Copy, _) => charge(tx, dst_owner, bytes, count, defaults, Check::Enforce).await?,
        (Transfer::Move, false) => {}
        (Transfer::Move, true) if src_owner < dst_owner => {
            release(tx, src_owner, bytes, count, defaults).await?;
            charge(tx, dst_owner, bytes, count, defaults, Check::Enforce).await?;
        }
        (Transfer::Move, true) => {
            charge(tx, dst_owner, bytes, count, defaults, Check::Enforce).await?;
            release(tx, src_owner, bytes, count, defaults).await?;
        }
    }
    let copied = Copied { uid_validity: target.uid_validity, mapping };

    if how == Transfer::Move {
        // Reload: when source and target are one mailbox the row just changed.
        let mut source = load(tx, from, true).await?;
        let modseq = remove_rows(tx, &mut source, &rows).await?;
        save(tx, &source).await?;
        fx.changed(from, modseq);
        if across {
            let ids: Vec<i64> = rows.iter().map(|r| r.body_id).collect();
            drop_orphan_bodies(tx, src_owner, &ids).await?;
        }
    }
    Ok(copied)
}

/// Deletes rows and records them as expunged with one new modseq; adjusts the counters of
/// `mb` (the caller saves it).
async fn remove_rows(tx: &Tx<'_>, mb: &mut MailboxRow, rows: &[MsgRow]) -> PgResult<ModSeq> {
    let modseq = mb.bump_modseq()?;
    let owner = owner_of(mb.id.0);
    let uids: Vec<i64> = rows.iter().map(|r| i64::from(r.uid.get())).collect();
    tx.execute(
        "DELETE FROM messages WHERE owner_id = $1 AND mailbox_id = $2 AND uid = ANY($3)",
        &[&owner, &mb.id.0, &uids],
    )
    .await?;
    tx.execute(
        "DELETE FROM private_seen WHERE owner_id = $1 AND mailbox_id = $2 AND uid = ANY($3)",
        &[&owner, &mb.id.0, &uids],
    )
    .await?;
    tx.execute(
        "INSERT INTO expunged (owner_id, mailbox_id, uid, modseq) SELECT $1, $2, u, $4 FROM unnest($3::bigint[]) AS u
         ON CONFLICT (owner_id, mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq",
        &[&owner, &mb.id.0, &uids, &i64_of(modseq.0)],
    )
    .await?;
    for row in rows {
        let recency = mb.recency(row.uid);
        mb.count_out(row.flags.system, row.size, recency);
    }
    Ok(modseq)
}

pub(super) async fn expunge(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mailbox: MailboxId,
    uids: Option<&UidSet>,
    defaults: &QuotaLimits,
) -> PgResult<Vec<Uid>> {
    let mut mb = load(tx, mailbox, true).await?;
    let everything = UidSet::from_ranges([1..=u32::MAX]);
    let rows = rows_in(tx, mailbox, uids.unwrap_or(&everything), true).await?;
    remove_messages_rows(tx, fx, &mut mb, rows, defaults).await
}

/// Expunges up to `max` messages saved before `before` (Unix seconds), flagged or not: the
/// Trash/Junk clean-up.
pub(super) async fn expunge_saved_before(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mailbox: MailboxId,
    before: i64,
    max: usize,
    defaults: &QuotaLimits,
) -> PgResult<Vec<Uid>> {
    let mut mb = load(tx, mailbox, true).await?;
    let sql = format!(
        "SELECT {MSG_COLUMNS} FROM messages m
         WHERE m.owner_id = $1 AND m.mailbox_id = $2 AND m.saved_at < $3 ORDER BY m.uid LIMIT $4"
    );
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let rows = tx
        .query(&sql, &[&owner_of(mailbox.0), &mailbox.0, &before, &limit])
        .await?
        .iter()
        .map(msg_row)
        .collect::<PgResult<Vec<_>>>()?;
    remove_messages_rows(tx, fx, &mut mb, rows, defaults).await
}

/// Removes `rows` of the locked mailbox `mb` as EXPUNGE does: expunge records, counters, the
/// owner's quota, orphaned bodies, and the change signalled after COMMIT.
async fn remove_messages_rows(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mb: &mut MailboxRow,
    rows: Vec<MsgRow>,
    defaults: &QuotaLimits,
) -> PgResult<Vec<Uid>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mailbox = mb.id;
    let owner = owner_of(mailbox.0);
    let bytes: i64 = rows.iter().map(|r| i64::from(r.size)).sum();
    let modseq = remove_rows(tx, mb, &rows).await?;
    save(tx, mb).await?;
    release(tx, owner, bytes, i64::try_from(rows.len()).unwrap_or(i64::MAX), defaults).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.body_id).collect();
    drop_orphan_bodies(tx, owner, &ids).await?;
    fx.changed(mailbox, modseq);
    Ok(rows.into_iter().map(|r| r.uid).collect())
}
