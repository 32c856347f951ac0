//! Per-account `\Seen` in shared mailboxes on PostgreSQL: the mailbox's `seen_mode` and the
//! `private_seen` rows, as in `sqlite::seen`.
//!
//! A row exists per (message, viewer) whose private `\Seen` was ever set; unsetting keeps it
//! with `seen = false` and the modseq of the unset. A change takes its modseq from the mailbox
//! row, locked `FOR UPDATE` to COMMIT, so HIGHESTMODSEQ moves for everybody and stays
//! monotonic. EXPUNGE deletes the rows of the messages it removes (`mail::remove_rows`).

use super::mail::{load, save};
use super::{Effects, PgResult, Tx, owner_of};
use crate::StoreError;
use crate::acl::SeenMode;
use crate::types::{AccountId, MailboxId, ModSeq, Uid, UidSet};

fn mode_code(mode: SeenMode) -> i64 {
    match mode {
        SeenMode::Shared => 0,
        SeenMode::Private => 1,
    }
}

fn modseq_of(v: i64) -> ModSeq {
    ModSeq(u64::try_from(v).unwrap_or(0))
}

fn sql_modseq(m: ModSeq) -> i64 {
    i64::try_from(m.0).unwrap_or(i64::MAX)
}

pub(super) async fn seen_mode(tx: &Tx<'_>, mailbox: MailboxId) -> PgResult<SeenMode> {
    let row = tx
        .query_opt(
            "SELECT seen_mode FROM mailboxes WHERE owner_id = $1 AND id = $2",
            &[&owner_of(mailbox.0), &mailbox.0],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(if row.get::<_, i64>(0) == 0 { SeenMode::Shared } else { SeenMode::Private })
}

pub(super) async fn set_seen_mode(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mailbox: MailboxId,
    mode: SeenMode,
) -> PgResult<()> {
    let n = tx
        .execute(
            "UPDATE mailboxes SET seen_mode = $3 WHERE owner_id = $1 AND id = $2 AND seen_mode <> $3",
            &[&owner_of(mailbox.0), &mailbox.0, &mode_code(mode)],
        )
        .await?;
    if n > 0 {
        fx.acl_changed(Some(mailbox));
        return Ok(());
    }
    // Unchanged, or no such mailbox.
    seen_mode(tx, mailbox).await.map(|_| ())
}

/// Fails with `NotFound` unless both exist.
async fn check_exist(tx: &Tx<'_>, mailbox: MailboxId, account: AccountId) -> PgResult<()> {
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM mailboxes WHERE owner_id = $1 AND id = $2),
                    EXISTS (SELECT 1 FROM accounts WHERE id = $3)",
            &[&owner_of(mailbox.0), &mailbox.0, &account.0],
        )
        .await?;
    if !row.get::<_, bool>(0) || !row.get::<_, bool>(1) {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}

pub(super) async fn private_seen(tx: &Tx<'_>, mailbox: MailboxId, account: AccountId) -> PgResult<UidSet> {
    check_exist(tx, mailbox, account).await?;
    let rows = tx
        .query(
            "SELECT uid FROM private_seen WHERE owner_id = $1 AND mailbox_id = $2 AND account_id = $3 AND seen
             ORDER BY uid",
            &[&owner_of(mailbox.0), &mailbox.0, &account.0],
        )
        .await?;
    let mut out = UidSet::new();
    for r in rows {
        if let Some(uid) = u32::try_from(r.get::<_, i64>(0)).ok().and_then(Uid::new) {
            out.push_ascending(uid);
        }
    }
    Ok(out)
}

pub(super) async fn private_seen_since(
    tx: &Tx<'_>,
    mailbox: MailboxId,
    account: AccountId,
    since: ModSeq,
) -> PgResult<Vec<(Uid, bool, ModSeq)>> {
    check_exist(tx, mailbox, account).await?;
    let rows = tx
        .query(
            "SELECT uid, seen, modseq FROM private_seen
             WHERE owner_id = $1 AND mailbox_id = $2 AND account_id = $3 AND modseq > $4 ORDER BY uid",
            &[&owner_of(mailbox.0), &mailbox.0, &account.0, &sql_modseq(since)],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let uid = u32::try_from(r.get::<_, i64>(0)).ok().and_then(Uid::new)?;
            Some((uid, r.get(1), modseq_of(r.get(2))))
        })
        .collect())
}

pub(super) async fn store_private_seen(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mailbox: MailboxId,
    account: AccountId,
    uids: &UidSet,
    seen: bool,
) -> PgResult<Vec<(Uid, ModSeq)>> {
    let mut mb = load(tx, mailbox, true).await?;
    if tx.query_opt("SELECT 1 FROM accounts WHERE id = $1", &[&account.0]).await?.is_none() {
        return Err(StoreError::NotFound.into());
    }
    let owner = owner_of(mailbox.0);
    let (starts, ends): (Vec<i64>, Vec<i64>) =
        uids.ranges().iter().map(|r| (i64::from(*r.start()), i64::from(*r.end()))).unzip();
    // The existing messages of the set whose state differs (no row: unseen).
    let rows = tx
        .query(
            "SELECT m.uid FROM unnest($4::bigint[], $5::bigint[]) AS r(lo, hi)
             JOIN messages m ON m.owner_id = $1 AND m.mailbox_id = $2 AND m.uid BETWEEN r.lo AND r.hi
             LEFT JOIN private_seen p ON p.owner_id = m.owner_id AND p.mailbox_id = m.mailbox_id
                                     AND p.account_id = $3 AND p.uid = m.uid
             WHERE COALESCE(p.seen, false) <> $6
             ORDER BY m.uid",
            &[&owner, &mailbox.0, &account.0, &starts, &ends, &seen],
        )
        .await?;
    let changing: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    if changing.is_empty() {
        return Ok(Vec::new());
    }
    let modseq = mb.bump_modseq()?;
    tx.execute(
        "INSERT INTO private_seen (owner_id, mailbox_id, account_id, uid, seen, modseq)
         SELECT $1, $2, $3, u, $5, $6 FROM unnest($4::bigint[]) AS u
         ON CONFLICT (owner_id, mailbox_id, account_id, uid)
         DO UPDATE SET seen = EXCLUDED.seen, modseq = EXCLUDED.modseq",
        &[&owner, &mailbox.0, &account.0, &changing, &seen, &sql_modseq(modseq)],
    )
    .await?;
    save(tx, &mb).await?;
    fx.changed(mailbox, modseq);
    Ok(changing
        .into_iter()
        .filter_map(|u| u32::try_from(u).ok().and_then(Uid::new))
        .map(|uid| (uid, modseq))
        .collect())
}
