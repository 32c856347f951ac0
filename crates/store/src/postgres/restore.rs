//! Export reads and exact restore on PostgreSQL: [`RestoreStore`](crate::RestoreStore) with the
//! same rules as the SQLite store (`sqlite::restore`, whose module text explains them): a UID is
//! stored only at or above UIDNEXT unless the mailbox holds the same bytes under it, UIDNEXT and
//! HIGHESTMODSEQ only grow, a UIDVALIDITY changes only with a new mailbox row, restored messages
//! are counted in the owner's quota without a check.
//!
//! Ids here carry their owner (`owner << 32 | n`): a MAILBOXID hint from another store is used
//! only when it is this owner's and its number was never handed out.

use std::sync::Arc;

use super::mail::{i64_of, load, local_id, register_keywords, save, u32_of, u64_of, uid_of};
use super::quota::{charge, release};
use super::{Effects, PgResult, Tx, is_unique_violation, owner_of};
use crate::StoreError;
use crate::acl::{AccountKind, QuotaLimits, SeenMode};
use crate::restore::{
    AccountRestore, ExpungedRun, MAX_EXPUNGED_PER_CALL, MailboxDump, MailboxRestore, MessageDump,
    MessageRestore, ModSeqRule, NewUidValidity, PresentUids, PrivateSeenDump, Restored,
};
use crate::sqlite::mailboxes::{TEAM_PASSWORD_HASH, account_key, check_account_name};
use crate::sqlite::quota::Check;
use crate::sqlite::restore::{RESTORED_PASSWORD_HASH, fresh_modseq};
use crate::sqlite::rows::{Recency, checked_flags, date_of, flags_of, keywords_text, unix_now};
use crate::types::{
    AccountId, Flags, InternalDate, MailboxId, MailboxName, ModSeq, SpecialUse, Uid, UidValidity,
};

/// Leaves room below `u32::MAX` when a restored UIDVALIDITY raises the owner's counter.
const UID_VALIDITY_HEADROOM: i64 = 1 << 26;

// --- reads ------------------------------------------------------------------------------------

async fn attributes(tx: &Tx<'_>, mailbox: MailboxId) -> PgResult<(Option<SpecialUse>, SeenMode)> {
    let row = tx
        .query_one(
            "SELECT special_use, seen_mode FROM mailboxes WHERE owner_id = $1 AND id = $2",
            &[&owner_of(mailbox.0), &mailbox.0],
        )
        .await?;
    let special: Option<String> = row.get(0);
    let mode = if row.get::<_, i64>(1) == 0 { SeenMode::Shared } else { SeenMode::Private };
    Ok((special.as_deref().and_then(SpecialUse::parse), mode))
}

pub(super) async fn dump_mailbox(tx: &Tx<'_>, mailbox: MailboxId) -> PgResult<MailboxDump> {
    let row = load(tx, mailbox, false).await?;
    let (special_use, seen_mode) = attributes(tx, mailbox).await?;
    Ok(MailboxDump {
        id: row.id,
        name: row.name.clone(),
        special_use,
        uid_validity: row.uid_validity,
        uid_next: row.uid_next(),
        highest_modseq: ModSeq(row.highest_modseq),
        seen_mode,
        messages: row.messages,
    })
}

pub(super) async fn dump_messages(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    after: u32,
    below: Uid,
    since: ModSeq,
    max_count: usize,
    max_bytes: usize,
) -> PgResult<Vec<MessageDump>> {
    load(tx, mailbox, false).await?;
    let owner = owner_of(mailbox.0);
    // Sizes first, so that no more bytes are read than the caller takes.
    let limit = i64::try_from(max_count.max(1)).unwrap_or(i64::MAX);
    let sizes = tx
        .query(
            "SELECT uid, size FROM messages
             WHERE owner_id = $1 AND mailbox_id = $2 AND uid > $3 AND uid < $4 AND modseq > $5
             ORDER BY uid LIMIT $6",
            &[&owner, &mailbox.0, &i64::from(after), &i64::from(below.get()), &i64_of(since.0), &limit],
        )
        .await?;
    let (mut last, mut bytes) = (None, 0usize);
    for row in &sizes {
        last = Some(row.get::<_, i64>(0));
        bytes += usize::try_from(row.get::<_, i64>(1)).unwrap_or(usize::MAX);
        if bytes >= max_bytes {
            break;
        }
    }
    let Some(last) = last else { return Ok(Vec::new()) };
    let rows = tx
        .query(
            "SELECT m.uid, m.modseq, m.flags, m.keywords, m.internal_date, m.date_offset, m.saved_at, b.raw
             FROM messages m JOIN bodies b ON b.owner_id = m.owner_id AND b.id = m.body_id
             WHERE m.owner_id = $1 AND m.mailbox_id = $2 AND m.uid > $3 AND m.uid <= $4 AND m.modseq > $5
             ORDER BY m.uid",
            &[&owner, &mailbox.0, &i64::from(after), &last, &i64_of(since.0)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let keywords: String = r.get(3);
            Ok(MessageDump {
                uid: uid_of(r.get(0))?,
                modseq: ModSeq(u64_of(r.get(1))),
                flags: flags_of(r.get(2), &keywords),
                internal_date: date_of(r.get(4), r.get(5)),
                save_date: Some(r.get(6)),
                raw: r.get(7),
            })
        })
        .collect()
}

pub(super) async fn dump_expunged(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    since: ModSeq,
) -> PgResult<Vec<(Uid, ModSeq)>> {
    load(tx, mailbox, false).await?;
    let rows = tx
        .query(
            "SELECT uid, modseq FROM expunged WHERE owner_id = $1 AND mailbox_id = $2 AND modseq > $3 ORDER BY uid",
            &[&owner_of(mailbox.0), &mailbox.0, &i64_of(since.0)],
        )
        .await?;
    rows.iter().map(|r| Ok((uid_of(r.get(0))?, ModSeq(u64_of(r.get(1)))))).collect()
}

pub(super) async fn dump_private_seen(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    since: ModSeq,
) -> PgResult<Vec<PrivateSeenDump>> {
    load(tx, mailbox, false).await?;
    let rows = tx
        .query(
            "SELECT p.uid, a.name, p.seen, p.modseq FROM private_seen p JOIN accounts a ON a.id = p.account_id
             WHERE p.owner_id = $1 AND p.mailbox_id = $2 AND p.modseq > $3 ORDER BY p.uid, a.name",
            &[&owner_of(mailbox.0), &mailbox.0, &i64_of(since.0)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(PrivateSeenDump {
                uid: uid_of(r.get(0))?,
                account: r.get(1),
                seen: r.get(2),
                modseq: ModSeq(u64_of(r.get(3))),
            })
        })
        .collect()
}

// --- accounts and mailboxes ---------------------------------------------------------------------

pub(super) async fn restore_account(tx: &Tx<'_>, account: &AccountRestore) -> PgResult<AccountId> {
    check_account_name(&account.name)?;
    let (hash, kind, address) = match account.kind {
        AccountKind::User => (RESTORED_PASSWORD_HASH, 0i64, None),
        AccountKind::Team => (TEAM_PASSWORD_HASH, 1, account.address.as_deref()),
    };
    let inserted = tx
        .query_one(
            "INSERT INTO accounts (name, name_key, password_hash, created, kind, address)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[&account.name, &account_key(&account.name), &hash, &unix_now(), &kind, &address],
        )
        .await;
    let id = match inserted {
        Ok(row) => AccountId(row.get(0)),
        Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists.into()),
        Err(e) => return Err(e.into()),
    };
    tx.execute("INSERT INTO quota (owner_id) VALUES ($1)", &[&id.0]).await?;
    Ok(id)
}

/// Inserts a mailbox row of `account` with the given identity (a fresh UIDVALIDITY and id when
/// none is usable); locks the account row.
async fn insert_new_row(
    tx: &Tx<'_>,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
    uid_validity: Option<UidValidity>,
    id_hint: Option<i64>,
) -> PgResult<MailboxId> {
    let row = tx
        .query_opt(
            "SELECT next_local, last_uid_validity FROM accounts WHERE id = $1 FOR UPDATE",
            &[&account.0],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    let (next_local, last_validity): (i64, i64) = (row.get(0), row.get(1));
    // A hint is this owner's id whose number was never handed out.
    let local = id_hint
        .filter(|h| owner_of(*h) == account.0 && (*h & 0xffff_ffff) >= next_local)
        .map_or(next_local, |h| h & 0xffff_ffff);
    let id = local_id(account, local)?;
    let validity = match uid_validity {
        Some(v) if v.0 > 0 => i64::from(v.0),
        _ => unix_now().max(1).max(last_validity + 1),
    };
    if u32::try_from(validity).is_err() {
        return Err(StoreError::Limit("UIDVALIDITY values exhausted".to_owned()).into());
    }
    let noted =
        if validity <= i64::from(u32::MAX) - UID_VALIDITY_HEADROOM { validity } else { last_validity };
    tx.execute(
        "UPDATE accounts SET next_local = GREATEST(next_local, $2::bigint + 1),
                             last_uid_validity = GREATEST(last_uid_validity, $3)
         WHERE id = $1",
        &[&account.0, &local, &noted],
    )
    .await?;
    super::mail::insert_row(tx, account, id, name, special_use, validity).await
}

pub(super) async fn restore_mailbox(
    tx: &Tx<'_>,
    account: AccountId,
    name: &MailboxName,
    mailbox: &MailboxRestore,
) -> PgResult<MailboxId> {
    name.check_creatable()?;
    insert_new_row(tx, account, name.as_str(), mailbox.special_use, mailbox.uid_validity, mailbox.id_hint)
        .await
}

pub(super) async fn recreate_mailbox(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mailbox: MailboxId,
    uid_validity: NewUidValidity,
) -> PgResult<MailboxId> {
    let old = load(tx, mailbox, true).await?;
    let owner = old.account.0;
    let last: i64 = tx
        .query_one("SELECT last_uid_validity FROM accounts WHERE id = $1 FOR UPDATE", &[&owner])
        .await?
        .get(0);
    let uid_validity = match uid_validity {
        NewUidValidity::Given(v) if v == old.uid_validity || v.0 == 0 => {
            return Err(
                StoreError::NotAllowed("a recreated mailbox needs another UIDVALIDITY".to_owned()).into()
            );
        }
        NewUidValidity::Given(v) => v,
        NewUidValidity::Fresh { avoid } => {
            let mut v = unix_now().max(1).max(last + 1);
            while u32::try_from(v).ok().map(UidValidity) == Some(old.uid_validity)
                || u32::try_from(v).ok().map(UidValidity) == avoid
            {
                v += 1;
            }
            UidValidity(
                u32::try_from(v).map_err(|_| StoreError::Limit("UIDVALIDITY values exhausted".to_owned()))?,
            )
        }
    };
    let (special, seen_mode) = attributes(tx, mailbox).await?;
    // Park the old row's name (control characters cannot be in real names), then make the new.
    tx.execute(
        "UPDATE mailboxes SET name = $3 WHERE owner_id = $1 AND id = $2",
        &[&owner, &mailbox.0, &format!("\u{1}recreate\u{1}{}", mailbox.0)],
    )
    .await?;
    let new = insert_new_row(tx, old.account, &old.name, special, Some(uid_validity), None).await?;
    tx.execute(
        "UPDATE mailboxes SET seen_mode = $3 WHERE owner_id = $1 AND id = $2",
        &[&owner, &new.0, &i64::from(seen_mode == SeenMode::Private)],
    )
    .await?;
    // The messages renumbered 1..=n in UID order (bodies are the owner's, shared), their
    // private \Seen rows along, the keywords and the ACL.
    let copied = tx.execute(
        "INSERT INTO messages (owner_id, mailbox_id, uid, body_id, flags, keywords, internal_date, date_offset,
                               size, modseq, saved_at)
         SELECT owner_id, $3, row_number() OVER (ORDER BY uid), body_id, flags, keywords, internal_date,
                date_offset, size, modseq, saved_at
         FROM messages WHERE owner_id = $1 AND mailbox_id = $2",
        &[&owner, &mailbox.0, &new.0],
    )
    .await?;
    tx.execute(
        "INSERT INTO private_seen (owner_id, mailbox_id, account_id, uid, seen, modseq)
         SELECT p.owner_id, $3, p.account_id, n.new_uid, p.seen, p.modseq
         FROM private_seen p
         JOIN (SELECT uid, row_number() OVER (ORDER BY uid) AS new_uid FROM messages
               WHERE owner_id = $1 AND mailbox_id = $2) n ON n.uid = p.uid
         WHERE p.owner_id = $1 AND p.mailbox_id = $2",
        &[&owner, &mailbox.0, &new.0],
    )
    .await?;
    tx.execute(
        "INSERT INTO mailbox_keywords (owner_id, mailbox_id, keyword_key, keyword)
         SELECT owner_id, $3, keyword_key, keyword FROM mailbox_keywords WHERE owner_id = $1 AND mailbox_id = $2",
        &[&owner, &mailbox.0, &new.0],
    )
    .await?;
    let shared = tx
        .execute(
            "UPDATE acl SET mailbox_id = $3 WHERE owner_id = $1 AND mailbox_id = $2",
            &[&owner, &mailbox.0, &new.0],
        )
        .await?
        > 0;
    // The old row goes with what hangs on it (messages, expunge history, keywords, private
    // \Seen: ON DELETE CASCADE). No quota moves: the same messages stay.
    tx.execute("DELETE FROM mailboxes WHERE owner_id = $1 AND id = $2", &[&owner, &mailbox.0]).await?;
    let mut row = load(tx, new, true).await?;
    let n = u32::try_from(copied).map_err(|_| StoreError::Limit("too many messages".to_owned()))?;
    row.uid_next = n + 1;
    row.recent_from_uid = n + 1;
    row.highest_modseq = old.highest_modseq.max(1);
    row.messages = old.messages;
    row.unseen = old.unseen;
    row.deleted = old.deleted;
    row.size = old.size;
    row.recent = 0;
    save(tx, &row).await?;
    fx.changed(mailbox, ModSeq(old.highest_modseq.saturating_add(1)));
    fx.changed(new, ModSeq(row.highest_modseq));
    if shared {
        fx.acl_changed(Some(mailbox));
        fx.acl_changed(Some(new));
    }
    Ok(new)
}

// --- messages ---------------------------------------------------------------------------------

/// A message ready for [`restore_messages`]: checked flags and the encoded summary.
pub(crate) struct PreparedRestore {
    uid: Option<Uid>,
    modseq: ModSeq,
    rule: ModSeqRule,
    raw: Arc<[u8]>,
    summary: Vec<u8>,
    text: Option<String>,
    flags: Flags,
    date: InternalDate,
    save_date: Option<i64>,
    size: u32,
}

/// Validates, parses and encodes messages. CPU-bound: call it from `spawn_blocking`.
pub(crate) fn prepare(messages: Vec<MessageRestore>) -> crate::StoreResult<Vec<PreparedRestore>> {
    messages
        .into_iter()
        .map(|m| {
            let size = u32::try_from(m.raw.len())
                .map_err(|_| StoreError::Limit("message larger than 4 GiB".to_owned()))?;
            let summary = postfach_message::parse(&m.raw);
            Ok(PreparedRestore {
                uid: m.uid,
                modseq: m.modseq,
                rule: m.rule,
                text: super::search::prefilter_text(&m.raw, &summary),
                summary: crate::sqlite::summary::encode(&summary)?,
                flags: checked_flags(&m.flags)?,
                raw: m.raw,
                date: m.internal_date,
                save_date: m.save_date,
                size,
            })
        })
        .collect()
}

pub(super) async fn restore_messages(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mailbox: MailboxId,
    messages: &[PreparedRestore],
    defaults: &QuotaLimits,
) -> PgResult<Vec<Restored>> {
    let mut mb = load(tx, mailbox, true).await?;
    let owner = owner_of(mailbox.0);
    let mut fresh: Option<ModSeq> = None;
    let mut results = Vec::with_capacity(messages.len());
    let (mut bytes, mut count, mut highest_kept) = (0i64, 0i64, 0u64);
    for m in messages {
        let keep = m.rule == ModSeqRule::Keep && m.modseq.0 > 0;
        if let Some(uid) = m.uid.filter(|u| u.get() < mb.uid_next) {
            let held = tx
                .query_opt(
                    "SELECT m.modseq, m.flags, m.keywords, b.raw = $4
                     FROM messages m JOIN bodies b ON b.owner_id = m.owner_id AND b.id = m.body_id
                     WHERE m.owner_id = $1 AND m.mailbox_id = $2 AND m.uid = $3",
                    &[&owner, &mailbox.0, &i64::from(uid.get()), &&m.raw[..]],
                )
                .await?;
            let Some(held) = held.filter(|r| r.get::<_, bool>(3)) else {
                return Err(StoreError::NotAllowed(format!(
                    "UID {uid} is below UIDNEXT {} and does not hold this message",
                    mb.uid_next
                ))
                .into());
            };
            let (modseq, flags) =
                (ModSeq(u64_of(held.get(0))), flags_of(held.get(1), &held.get::<_, String>(2)));
            if flags == m.flags || (m.modseq.0 > 0 && m.modseq <= modseq) {
                results.push(Restored::Present(uid));
                continue;
            }
            let new_modseq = if keep { m.modseq } else { fresh_modseq(&mut mb, &mut fresh)? };
            highest_kept = highest_kept.max(new_modseq.0);
            tx.execute(
                "UPDATE messages SET flags = $4, keywords = $5, modseq = $6
                 WHERE owner_id = $1 AND mailbox_id = $2 AND uid = $3",
                &[
                    &owner,
                    &mailbox.0,
                    &i64::from(uid.get()),
                    &i64::from(m.flags.system.0),
                    &keywords_text(&m.flags),
                    &i64_of(new_modseq.0),
                ],
            )
            .await?;
            mb.count_flag_change(flags.system, m.flags.system);
            results.push(Restored::FlagsUpdated(uid, new_modseq));
            continue;
        }
        let nothing_unclaimed = mb.recent_from_uid >= mb.uid_next;
        let uid = match m.uid {
            Some(uid) => {
                if uid == Uid::MAX {
                    return Err(StoreError::Limit("UID out of range".to_owned()).into());
                }
                mb.uid_next = uid.get();
                mb.take_uid()?
            }
            None => mb.take_uid()?,
        };
        let modseq = if keep { m.modseq } else { fresh_modseq(&mut mb, &mut fresh)? };
        highest_kept = highest_kept.max(modseq.0);
        let body: i64 = tx
            .query_one(
                "INSERT INTO bodies (owner_id, size, summary, raw, content_hash) VALUES ($1, $2, $3, $4, $5)
                 RETURNING id",
                &[&owner, &i64::from(m.size), &m.summary, &&m.raw[..], &super::content_hash(&m.raw)],
            )
            .await?
            .get(0);
        super::search::record_text(tx, owner, body, m.text.as_deref()).await?;
        tx.execute(
            "INSERT INTO messages (owner_id, mailbox_id, uid, body_id, flags, keywords, internal_date,
                                   date_offset, size, modseq, saved_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &owner,
                &mailbox.0,
                &i64::from(uid.get()),
                &body,
                &i64::from(m.flags.system.0),
                &keywords_text(&m.flags),
                &m.date.unix,
                &i64::from(m.date.offset_minutes),
                &i64::from(m.size),
                &i64_of(modseq.0),
                &m.save_date.unwrap_or(m.date.unix),
            ],
        )
        .await?;
        // Restored mail is not new mail: not \Recent, unless unclaimed deliveries sit below.
        let recency = if nothing_unclaimed {
            mb.recent_from_uid = uid.get() + 1;
            Recency::Claimed
        } else {
            Recency::Recent
        };
        mb.count_in(m.flags.system, m.size, recency);
        bytes += i64::from(m.size);
        count += 1;
        results.push(Restored::Inserted(uid, modseq));
    }
    register_keywords(tx, mailbox, messages.iter().flat_map(|m| m.flags.keywords.iter())).await?;
    charge(tx, owner, bytes, count, defaults, Check::Skip).await?;
    mb.highest_modseq = mb.highest_modseq.max(highest_kept);
    save(tx, &mb).await?;
    if count > 0 || fresh.is_some() || highest_kept > 0 {
        fx.changed(mailbox, ModSeq(mb.highest_modseq));
    }
    Ok(results)
}

pub(super) async fn restore_expunged(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mailbox: MailboxId,
    runs: &[ExpungedRun],
    present: PresentUids,
    defaults: &QuotaLimits,
) -> PgResult<u64> {
    let total: u64 = runs.iter().map(|r| u64::from(r.last.get().saturating_sub(r.first.get())) + 1).sum();
    if total > MAX_EXPUNGED_PER_CALL {
        return Err(
            StoreError::Limit(format!("at most {MAX_EXPUNGED_PER_CALL} expunged UIDs per call")).into()
        );
    }
    let mut mb = load(tx, mailbox, true).await?;
    let owner = owner_of(mailbox.0);
    let mut fresh: Option<ModSeq> = None;
    let (mut recorded, mut freed_bytes, mut freed) = (0u64, 0i64, 0i64);
    let mut bodies = Vec::new();
    for run in runs {
        if run.first > run.last {
            continue;
        }
        // A run without its own MODSEQ takes the call's fresh one, but only if it records
        // something: a run that is all there already must not move HIGHESTMODSEQ.
        let given = run.modseq.filter(|m| m.0 > 0);
        let modseq = given.unwrap_or_else(|| fresh.unwrap_or(ModSeq(mb.highest_modseq.saturating_add(1))));
        let changed_before = (recorded, freed);
        let (first, last) = (i64::from(run.first.get()), i64::from(run.last.get()));
        if present == PresentUids::Expunge {
            let gone = tx
                .query(
                    "DELETE FROM messages WHERE owner_id = $1 AND mailbox_id = $2 AND uid BETWEEN $3 AND $4
                     RETURNING uid, flags, size, body_id",
                    &[&owner, &mailbox.0, &first, &last],
                )
                .await?;
            for row in &gone {
                let uid = uid_of(row.get(0))?;
                let size = u32_of(row.get(2));
                mb.count_out(flags_of(row.get(1), "").system, size, mb.recency(uid));
                freed_bytes += i64::from(size);
                freed += 1;
                bodies.push(row.get::<_, i64>(3));
            }
            // A record with an older modseq would hide this later expunge.
            let uids: Vec<i64> = gone.iter().map(|r| r.get(0)).collect();
            tx.execute(
                "DELETE FROM expunged WHERE owner_id = $1 AND mailbox_id = $2 AND uid = ANY($3)",
                &[&owner, &mailbox.0, &uids],
            )
            .await?;
        }
        recorded += tx
            .execute(
                "INSERT INTO expunged (owner_id, mailbox_id, uid, modseq)
                 SELECT $1, $2, u, $5 FROM generate_series($3::bigint, $4::bigint) AS u
                 WHERE NOT EXISTS (SELECT 1 FROM messages m
                                   WHERE m.owner_id = $1 AND m.mailbox_id = $2 AND m.uid = u)
                 ON CONFLICT DO NOTHING",
                &[&owner, &mailbox.0, &first, &last, &i64_of(modseq.0)],
            )
            .await?;
        if (recorded, freed) != changed_before {
            if given.is_none() {
                fresh_modseq(&mut mb, &mut fresh)?;
            }
            mb.highest_modseq = mb.highest_modseq.max(modseq.0);
        }
        if run.last.get() >= mb.uid_next {
            if run.last == Uid::MAX {
                return Err(StoreError::Limit("UID out of range".to_owned()).into());
            }
            mb.uid_next = run.last.get() + 1;
        }
    }
    super::mail::drop_orphan_bodies(tx, owner, &bodies).await?;
    release(tx, owner, freed_bytes, freed, defaults).await?;
    save(tx, &mb).await?;
    fx.changed(mailbox, ModSeq(mb.highest_modseq));
    Ok(recorded)
}

pub(super) async fn restore_counters(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mailbox: MailboxId,
    uid_next: Uid,
    highest_modseq: ModSeq,
) -> PgResult<()> {
    let mut mb = load(tx, mailbox, true).await?;
    if highest_modseq.0 > i64::MAX as u64 {
        return Err(StoreError::Limit("mod-sequence out of range".to_owned()).into());
    }
    let before = (mb.uid_next, mb.highest_modseq);
    mb.uid_next = mb.uid_next.max(uid_next.get());
    mb.highest_modseq = mb.highest_modseq.max(highest_modseq.0);
    if (mb.uid_next, mb.highest_modseq) != before {
        save(tx, &mb).await?;
        fx.changed(mailbox, ModSeq(mb.highest_modseq));
    }
    Ok(())
}

pub(super) async fn restore_private_seen(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mailbox: MailboxId,
    rows: &[(Uid, AccountId, bool, Option<ModSeq>)],
) -> PgResult<u64> {
    let mut mb = load(tx, mailbox, true).await?;
    let owner = owner_of(mailbox.0);
    let mut fresh: Option<ModSeq> = None;
    let mut written = 0u64;
    for (uid, account, seen, modseq) in rows {
        let exists = tx
            .query_opt(
                "SELECT 1 FROM messages m, accounts a
                 WHERE m.owner_id = $1 AND m.mailbox_id = $2 AND m.uid = $3 AND a.id = $4",
                &[&owner, &mailbox.0, &i64::from(uid.get()), &account.0],
            )
            .await?;
        if exists.is_none() {
            continue;
        }
        let modseq = match modseq {
            Some(m) if m.0 > 0 => *m,
            _ => fresh_modseq(&mut mb, &mut fresh)?,
        };
        mb.highest_modseq = mb.highest_modseq.max(modseq.0);
        tx.execute(
            "INSERT INTO private_seen (owner_id, mailbox_id, account_id, uid, seen, modseq)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (owner_id, mailbox_id, account_id, uid) DO UPDATE SET seen = excluded.seen,
                                                                               modseq = excluded.modseq",
            &[&owner, &mailbox.0, &account.0, &i64::from(uid.get()), seen, &i64_of(modseq.0)],
        )
        .await?;
        written += 1;
    }
    if written > 0 {
        save(tx, &mb).await?;
        fx.changed(mailbox, ModSeq(mb.highest_modseq));
    }
    Ok(written)
}
