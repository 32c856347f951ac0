//! Quota roots (RFC 9208): one `quota` row per account (user or team) with its own limits,
//! its usage and the thresholds it is at; and the warnings recorded when usage crosses one.
//!
//! Every write that stores or frees messages moves the usage of the mailbox's owner inside its
//! own writer job: [`charge`] checks and increments in one conditional UPDATE (no row changed:
//! over quota, and the job's savepoint undoes everything), [`release`] gives space back. Both
//! then compare the usage with the thresholds (80, 90, 100 %) and record a warning when a
//! higher one is reached; falling below one re-arms it. The mailbox count is not a counter
//! here: `mailboxes` counts the rows, and only the per-account limit lives in this table.
//!
//! Limits are resolved against the installation's defaults (`StoreLimits`), which the caller
//! passes in as a [`QuotaLimits`] whose `None` means unlimited.

use rusqlite::{Connection, OptionalExtension};

use super::conn::DbResult;
use super::rows::unix_now;
use crate::acl::{OverQuota, Quota, QuotaLimits, QuotaResource, QuotaWarning};
use crate::types::AccountId;
use crate::{StoreError, StoreResult};

/// The thresholds that record a warning, in percent, highest first.
const THRESHOLDS: [u8; 3] = [100, 90, 80];

/// Whether a write is held to the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Refused with [`StoreError::OverQuota`] when a limit would be exceeded.
    Enforce,
    /// Counted, never refused (the quota warning itself must arrive in a full mailbox).
    Skip,
}

/// A `u64` as SQLite stores it (values beyond `i64::MAX` cannot be real sizes or counts).
fn sql_u64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored count (never negative; a negative value would be corruption and reads as 0).
fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn limit_of(n: Option<i64>) -> Option<u64> {
    n.map(u64_of)
}

fn resource_code(resource: QuotaResource) -> i64 {
    match resource {
        QuotaResource::Storage => 0,
        QuotaResource::Message => 1,
        QuotaResource::Mailbox => 2,
    }
}

fn resource_of(code: i64) -> QuotaResource {
    match code {
        0 => QuotaResource::Storage,
        1 => QuotaResource::Message,
        _ => QuotaResource::Mailbox,
    }
}

/// Creates the quota row of a new account (own limits unset, nothing used).
pub(crate) fn create_root(conn: &Connection, account: AccountId) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO quota (account_id) VALUES (?1)").db()?.execute([account.0]).db()?;
    Ok(())
}

/// Adds `bytes` and `messages` to the usage of `account`. With [`Check::Enforce`] the check and
/// the increment are one statement, so concurrent writers (serialised by the writer, and by
/// `BEGIN IMMEDIATE` across processes) cannot overshoot a limit; refused with
/// [`StoreError::OverQuota`] when either limit would be exceeded.
pub(crate) fn charge(
    conn: &Connection,
    account: AccountId,
    bytes: u64,
    messages: u64,
    defaults: &QuotaLimits,
    check: Check,
) -> StoreResult<()> {
    if bytes == 0 && messages == 0 {
        return Ok(());
    }
    let changed = conn
        .prepare_cached(
            "UPDATE quota SET storage_used = storage_used + ?2, messages_used = messages_used + ?3
             WHERE account_id = ?1
               AND (?6 OR ?2 = 0 OR coalesce(storage_limit, ?4) IS NULL
                    OR storage_used + ?2 <= coalesce(storage_limit, ?4))
               AND (?6 OR ?3 = 0 OR coalesce(message_limit, ?5) IS NULL
                    OR messages_used + ?3 <= coalesce(message_limit, ?5))",
        )
        .db()?
        .execute(rusqlite::params![
            account.0,
            sql_u64(bytes),
            sql_u64(messages),
            defaults.storage.map(sql_u64),
            defaults.messages.map(sql_u64),
            check == Check::Skip,
        ])
        .db()?;
    if changed == 0 {
        return Err(refusal(conn, account, bytes, messages, defaults)?);
    }
    match check {
        Check::Enforce => update_levels(conn, account, defaults),
        // A quota warning is counted but records no crossing of its own: a warning never sets
        // off the next one (the next real write compares against the levels as they were).
        Check::Skip => Ok(()),
    }
}

/// Why [`charge`] changed no row: the resource that would be exceeded.
fn refusal(
    conn: &Connection,
    account: AccountId,
    bytes: u64,
    messages: u64,
    defaults: &QuotaLimits,
) -> StoreResult<StoreError> {
    let Some(row) = load(conn, account)? else {
        return Err(StoreError::Backend(format!("account {} has no quota row", account.0)));
    };
    let limits = row.own.resolve(*defaults);
    let over = |used: u64, add: u64, limit: Option<u64>| {
        limit.filter(|&limit| add > 0 && used.saturating_add(add) > limit).map(|limit| add > limit)
    };
    let refused = if let Some(alone) = over(row.storage_used, bytes, limits.storage) {
        OverQuota { resource: QuotaResource::Storage, alone }
    } else if let Some(alone) = over(row.messages_used, messages, limits.messages) {
        OverQuota { resource: QuotaResource::Message, alone }
    } else {
        return Err(StoreError::Backend("quota update refused for no reason".to_owned()));
    };
    Ok(StoreError::OverQuota(refused))
}

/// Takes `bytes` and `messages` off the usage of `account` (expunge, move out, delete).
pub(crate) fn release(
    conn: &Connection,
    account: AccountId,
    bytes: u64,
    messages: u64,
    defaults: &QuotaLimits,
) -> StoreResult<()> {
    if bytes == 0 && messages == 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "UPDATE quota SET storage_used = max(storage_used - ?2, 0), messages_used = max(messages_used - ?3, 0)
         WHERE account_id = ?1",
    )
    .db()?
    .execute(rusqlite::params![account.0, sql_u64(bytes), sql_u64(messages)])
    .db()?;
    update_levels(conn, account, defaults)
}

/// One `quota` row.
struct Row {
    own: QuotaLimits,
    storage_used: u64,
    messages_used: u64,
    storage_level: u8,
    messages_level: u8,
}

fn load(conn: &Connection, account: AccountId) -> StoreResult<Option<Row>> {
    conn.prepare_cached(
        "SELECT storage_limit, message_limit, mailbox_limit, storage_used, messages_used, storage_level,
                messages_level
         FROM quota WHERE account_id = ?1",
    )
    .db()?
    .query_row([account.0], |r| {
        Ok(Row {
            own: QuotaLimits {
                storage: limit_of(r.get(0)?),
                messages: limit_of(r.get(1)?),
                mailboxes: limit_of(r.get(2)?),
            },
            storage_used: u64_of(r.get(3)?),
            messages_used: u64_of(r.get(4)?),
            storage_level: r.get(5)?,
            messages_level: r.get(6)?,
        })
    })
    .optional()
    .db()
}

/// The highest threshold `used` is at or above (0: none, or no limit).
pub(crate) fn level(used: u64, limit: Option<u64>) -> u8 {
    let Some(limit) = limit else { return 0 };
    if used == 0 {
        return 0;
    }
    let used = u128::from(used) * 100;
    THRESHOLDS.into_iter().find(|&t| used >= u128::from(t) * u128::from(limit)).unwrap_or(0)
}

/// Compares the usage with the thresholds: a higher one reached records one warning (for the
/// highest reached: a jump from 70 % to 95 % warns once, at 90 %); a lower level re-arms.
fn update_levels(conn: &Connection, account: AccountId, defaults: &QuotaLimits) -> StoreResult<()> {
    let Some(row) = load(conn, account)? else { return Ok(()) };
    let limits = row.own.resolve(*defaults);
    let storage = level(row.storage_used, limits.storage);
    let messages = level(row.messages_used, limits.messages);
    if storage == row.storage_level && messages == row.messages_level {
        return Ok(());
    }
    let mut record = conn
        .prepare_cached(
            "INSERT INTO quota_warnings (account_id, resource, percent, used, limit_value, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .db()?;
    for (resource, new, old, used, limit) in [
        (QuotaResource::Storage, storage, row.storage_level, row.storage_used, limits.storage),
        (QuotaResource::Message, messages, row.messages_level, row.messages_used, limits.messages),
    ] {
        if new > old {
            record
                .execute(rusqlite::params![
                    account.0,
                    resource_code(resource),
                    new,
                    sql_u64(used),
                    sql_u64(limit.unwrap_or(0)),
                    unix_now(),
                ])
                .db()?;
        }
    }
    conn.prepare_cached("UPDATE quota SET storage_level = ?2, messages_level = ?3 WHERE account_id = ?1")
        .db()?
        .execute(rusqlite::params![account.0, storage, messages])
        .db()?;
    Ok(())
}

/// The mailbox limit of `account`: its own, else `default` (`StoreLimits::max_mailboxes`).
pub(crate) fn mailbox_limit(conn: &Connection, account: AccountId, default: u32) -> StoreResult<u64> {
    let own: Option<i64> = conn
        .prepare_cached("SELECT mailbox_limit FROM quota WHERE account_id = ?1")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .optional()
        .db()?
        .flatten();
    Ok(limit_of(own).unwrap_or(u64::from(default)))
}

/// Usage and limits of a root; [`StoreError::NotFound`] when the account does not exist.
pub(crate) fn quota(conn: &Connection, account: AccountId, defaults: &QuotaLimits) -> StoreResult<Quota> {
    let row = load(conn, account)?.ok_or(StoreError::NotFound)?;
    let mailboxes: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM mailboxes WHERE account_id = ?1")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .db()?;
    Ok(Quota {
        storage_used: row.storage_used,
        messages_used: row.messages_used,
        mailboxes_used: u64_of(mailboxes),
        limits: row.own.resolve(*defaults),
        own: row.own,
    })
}

/// Sets a root's own limits; the thresholds are compared again at once (a lowered limit can
/// put the usage above one).
pub(crate) fn set_quota(
    conn: &Connection,
    account: AccountId,
    limits: QuotaLimits,
    defaults: &QuotaLimits,
) -> StoreResult<()> {
    let n = conn
        .prepare_cached(
            "UPDATE quota SET storage_limit = ?2, message_limit = ?3, mailbox_limit = ?4
             WHERE account_id = ?1",
        )
        .db()?
        .execute(rusqlite::params![
            account.0,
            limits.storage.map(sql_u64),
            limits.messages.map(sql_u64),
            limits.mailboxes.map(sql_u64),
        ])
        .db()?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    update_levels(conn, account, defaults)
}

/// Warnings not delivered yet, oldest first.
pub(crate) fn pending_warnings(conn: &Connection) -> StoreResult<Vec<QuotaWarning>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, account_id, resource, percent, used, limit_value FROM quota_warnings
             INDEXED BY quota_warnings_pending WHERE delivered = 0 ORDER BY id",
        )
        .db()?;
    let rows = stmt
        .query_map([], |r| {
            Ok(QuotaWarning {
                id: r.get(0)?,
                account: AccountId(r.get(1)?),
                resource: resource_of(r.get(2)?),
                percent: r.get(3)?,
                used: u64_of(r.get(4)?),
                limit: u64_of(r.get(5)?),
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// Marks a warning delivered and returns its root; `None` when it was delivered already.
/// [`StoreError::NotFound`] when there is no such warning.
pub(crate) fn claim_warning(conn: &Connection, warning: i64) -> StoreResult<Option<AccountId>> {
    let row: Option<(i64, bool)> = conn
        .prepare_cached("SELECT account_id, delivered FROM quota_warnings WHERE id = ?1")
        .db()?
        .query_row([warning], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?;
    match row {
        None => Err(StoreError::NotFound),
        Some((_, true)) => Ok(None),
        Some((account, false)) => {
            conn.prepare_cached("UPDATE quota_warnings SET delivered = 1 WHERE id = ?1")
                .db()?
                .execute([warning])
                .db()?;
            Ok(Some(AccountId(account)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(level(0, Some(100)), 0);
        assert_eq!(level(79, Some(100)), 0);
        assert_eq!(level(80, Some(100)), 80);
        assert_eq!(level(95, Some(100)), 90);
        assert_eq!(level(100, Some(100)), 100);
        assert_eq!(level(500, Some(100)), 100);
        assert_eq!(level(1, Some(0)), 100);
        assert_eq!(level(u64::MAX, None), 0);
        assert_eq!(level(u64::MAX, Some(u64::MAX)), 100);
    }
}
