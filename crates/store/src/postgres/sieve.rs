//! Delivery state on PostgreSQL: Sieve scripts (at most one active per account, a partial
//! unique index), the vacation reply history and the subaddress policy, with the limits and
//! rules of `sqlite::sieve`.
//!
//! Script changes lock the account row (`FOR UPDATE`), so the per-account script count and
//! the switch of the active script are exact under concurrent uploads. A vacation claim is one
//! `INSERT … ON CONFLICT DO NOTHING`: of two deliveries racing for one sender, the second
//! waits for the first to commit and then finds its row.

use super::{PgResult, Tx};
use crate::StoreError;
use crate::sqlite::rows::unix_now;
use crate::sqlite::sieve::{MAX_SCRIPTS, MAX_VACATION_ENTRIES, MAX_VACATION_KEY_LEN};
use crate::types::AccountId;
use crate::{DetailDelivery, SieveScript, SieveScriptInfo, VacationClaim};

/// Locks the account row; `NotFound` without one.
async fn lock_account(tx: &Tx<'_>, account: AccountId) -> PgResult<()> {
    match tx.query_opt("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", &[&account.0]).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound.into()),
    }
}

pub(super) async fn put(tx: &Tx<'_>, account: AccountId, name: &str, text: &str) -> PgResult<()> {
    lock_account(tx, account).await?;
    let updated = tx
        .execute(
            "UPDATE sieve_scripts SET script = $3, updated = $4 WHERE owner_id = $1 AND name = $2",
            &[&account.0, &name, &text, &unix_now()],
        )
        .await?;
    if updated > 0 {
        return Ok(());
    }
    let count: i64 =
        tx.query_one("SELECT count(*) FROM sieve_scripts WHERE owner_id = $1", &[&account.0]).await?.get(0);
    if count >= MAX_SCRIPTS {
        return Err(StoreError::Limit(format!("at most {MAX_SCRIPTS} scripts per account")).into());
    }
    tx.execute(
        "INSERT INTO sieve_scripts (owner_id, name, script, active, updated) VALUES ($1, $2, $3, false, $4)",
        &[&account.0, &name, &text, &unix_now()],
    )
    .await?;
    Ok(())
}

pub(super) async fn script(tx: &Tx<'_>, account: AccountId, name: &str) -> PgResult<Option<String>> {
    let row = tx
        .query_opt("SELECT script FROM sieve_scripts WHERE owner_id = $1 AND name = $2", &[&account.0, &name])
        .await?;
    Ok(row.map(|r| r.get(0)))
}

pub(super) async fn scripts(tx: &Tx<'_>, account: AccountId) -> PgResult<Vec<SieveScriptInfo>> {
    let rows = tx
        .query(
            "SELECT name, active, octet_length(script)::BIGINT, updated FROM sieve_scripts
             WHERE owner_id = $1 ORDER BY name COLLATE \"C\"",
            &[&account.0],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| SieveScriptInfo {
            name: r.get(0),
            active: r.get(1),
            size: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
            updated: r.get(3),
        })
        .collect())
}

pub(super) async fn active(tx: &Tx<'_>, account: AccountId) -> PgResult<Option<SieveScript>> {
    let row = tx
        .query_opt("SELECT name, script FROM sieve_scripts WHERE owner_id = $1 AND active", &[&account.0])
        .await?;
    Ok(row.map(|r| SieveScript { name: r.get(0), text: r.get(1) }))
}

pub(super) async fn activate(tx: &Tx<'_>, account: AccountId, name: Option<&str>) -> PgResult<()> {
    lock_account(tx, account).await?;
    if let Some(name) = name
        && script(tx, account, name).await?.is_none()
    {
        return Err(StoreError::NotFound.into());
    }
    // Off first, then on: the partial unique index allows one active row at any moment.
    tx.execute("UPDATE sieve_scripts SET active = false WHERE owner_id = $1 AND active", &[&account.0])
        .await?;
    if let Some(name) = name {
        tx.execute(
            "UPDATE sieve_scripts SET active = true WHERE owner_id = $1 AND name = $2",
            &[&account.0, &name],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn delete(tx: &Tx<'_>, account: AccountId, name: &str) -> PgResult<()> {
    lock_account(tx, account).await?;
    let state = tx
        .query_opt("SELECT active FROM sieve_scripts WHERE owner_id = $1 AND name = $2", &[&account.0, &name])
        .await?;
    match state.map(|r| r.get::<_, bool>(0)) {
        None => Err(StoreError::NotFound.into()),
        // RFC 5804 §2.10: deleting the active script is an error; deactivate it first.
        Some(true) => {
            Err(StoreError::NotAllowed("the script is active; deactivate it first".to_owned()).into())
        }
        Some(false) => {
            tx.execute("DELETE FROM sieve_scripts WHERE owner_id = $1 AND name = $2", &[&account.0, &name])
                .await?;
            Ok(())
        }
    }
}

pub(super) async fn rename(tx: &Tx<'_>, account: AccountId, old: &str, new: &str) -> PgResult<()> {
    lock_account(tx, account).await?;
    if script(tx, account, old).await?.is_none() {
        return Err(StoreError::NotFound.into());
    }
    if script(tx, account, new).await?.is_some() {
        return Err(StoreError::AlreadyExists.into());
    }
    // The active flag is a column of the row: it moves with the name (RFC 5804 §2.11).
    tx.execute(
        "UPDATE sieve_scripts SET name = $3 WHERE owner_id = $1 AND name = $2",
        &[&account.0, &old, &new],
    )
    .await?;
    Ok(())
}

pub(super) async fn claim(
    tx: &Tx<'_>,
    account: AccountId,
    handle: &str,
    sender: &str,
    now: i64,
    period: i64,
) -> PgResult<VacationClaim> {
    if handle.len() > MAX_VACATION_KEY_LEN || sender.len() > MAX_VACATION_KEY_LEN {
        return Err(StoreError::Limit("vacation handle or sender too long".to_owned()).into());
    }
    // Forget what has expired: the history stays as small as the replies in their periods.
    tx.execute("DELETE FROM vacation_sent WHERE owner_id = $1 AND expires <= $2", &[&account.0, &now])
        .await?;
    let inserted = tx
        .execute(
            "INSERT INTO vacation_sent (owner_id, handle, sender, sent_at, expires) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (owner_id, handle, sender) DO NOTHING",
            &[&account.0, &handle, &sender, &now, &now.saturating_add(period.max(0))],
        )
        .await?;
    if inserted == 0 {
        return Ok(VacationClaim::AlreadyReplied);
    }
    let count: i64 =
        tx.query_one("SELECT count(*) FROM vacation_sent WHERE owner_id = $1", &[&account.0]).await?.get(0);
    if count > MAX_VACATION_ENTRIES {
        // Drop the entries closest to expiring (never the one just made); a sender may then
        // get a second reply early, which RFC 5230 §4.2 tolerates beyond its 1000 minimum.
        tx.execute(
            "DELETE FROM vacation_sent WHERE (owner_id, handle, sender) IN
             (SELECT owner_id, handle, sender FROM vacation_sent
              WHERE owner_id = $1 AND NOT (handle = $2 AND sender = $3)
              ORDER BY expires LIMIT $4)",
            &[&account.0, &handle, &sender, &(count - MAX_VACATION_ENTRIES)],
        )
        .await?;
    }
    Ok(VacationClaim::Claimed)
}

pub(super) async fn release(tx: &Tx<'_>, account: AccountId, handle: &str, sender: &str) -> PgResult<()> {
    tx.execute(
        "DELETE FROM vacation_sent WHERE owner_id = $1 AND handle = $2 AND sender = $3",
        &[&account.0, &handle, &sender],
    )
    .await?;
    Ok(())
}

pub(super) async fn detail(tx: &Tx<'_>, account: AccountId) -> PgResult<DetailDelivery> {
    let row = tx
        .query_opt("SELECT detail_mailbox FROM delivery_settings WHERE owner_id = $1", &[&account.0])
        .await?;
    Ok(if row.is_some_and(|r| r.get::<_, bool>(0)) { DetailDelivery::Mailbox } else { DetailDelivery::Inbox })
}

pub(super) async fn set_detail(tx: &Tx<'_>, account: AccountId, policy: DetailDelivery) -> PgResult<()> {
    if tx.query_opt("SELECT 1 FROM accounts WHERE id = $1", &[&account.0]).await?.is_none() {
        return Err(StoreError::NotFound.into());
    }
    tx.execute(
        "INSERT INTO delivery_settings (owner_id, detail_mailbox) VALUES ($1, $2)
         ON CONFLICT (owner_id) DO UPDATE SET detail_mailbox = EXCLUDED.detail_mailbox",
        &[&account.0, &(policy == DetailDelivery::Mailbox)],
    )
    .await?;
    Ok(())
}
