//! Quota roots (RFC 9208) on PostgreSQL: the same rules as `sqlite::quota`, on the `quota` row
//! of each account (user or team).
//!
//! [`charge`] checks and increments in one conditional `UPDATE … RETURNING` inside the write's
//! own transaction: under READ COMMITTED a concurrent writer waits for the row and PostgreSQL
//! re-evaluates the condition on the newest version, so concurrent APPENDs cannot overshoot a
//! limit; no row returned means over quota, and the caller's transaction rolls back with
//! nothing written. [`release`] gives space back. Both compare the usage with the thresholds
//! (80, 90, 100 %) from the row they returned and record a warning when a higher one is
//! reached; falling below one re-arms it. Writers lock mailbox rows first and quota rows
//! after, so the two kinds of lock are always taken in one order.

use tokio_postgres::Row;

use super::{Fail, PgResult, Tx, owner_of};
use crate::StoreError;
use crate::acl::{OverQuota, QuotaLimits, QuotaResource, QuotaWarning};
use crate::sqlite::quota::{Check, level};
use crate::sqlite::rows::unix_now;
use crate::types::AccountId;

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn resource_text(resource: QuotaResource) -> &'static str {
    match resource {
        QuotaResource::Storage => "storage",
        QuotaResource::Message => "message",
        QuotaResource::Mailbox => "mailbox",
    }
}

fn resource_of(text: &str) -> QuotaResource {
    match text {
        "storage" => QuotaResource::Storage,
        "message" => QuotaResource::Message,
        _ => QuotaResource::Mailbox,
    }
}

/// The columns [`Levels::of`] reads, after an `UPDATE quota … RETURNING`.
const LEVEL_COLUMNS: &str = "storage_used, messages_used, storage_limit, messages_limit, mailbox_limit, storage_level, messages_level";

/// One `quota` row as far as thresholds are concerned.
struct Levels {
    own: QuotaLimits,
    storage_used: u64,
    messages_used: u64,
    storage_level: u8,
    messages_level: u8,
}

impl Levels {
    fn of(r: &Row) -> Levels {
        let limit = |i: usize| r.get::<_, Option<i64>>(i).map(u64_of);
        let lvl = |i: usize| u8::try_from(r.get::<_, i64>(i)).unwrap_or(0);
        Levels {
            own: QuotaLimits { storage: limit(2), messages: limit(3), mailboxes: limit(4) },
            storage_used: u64_of(r.get(0)),
            messages_used: u64_of(r.get(1)),
            storage_level: lvl(5),
            messages_level: lvl(6),
        }
    }
}

/// Adds `bytes` and `messages` to the usage of `owner`; with [`Check::Enforce`] refused with
/// [`StoreError::OverQuota`] when a limit would be exceeded (check and increment are one
/// statement). [`Check::Skip`] (a quota warning) counts but records no crossing of its own.
pub(crate) async fn charge(
    tx: &Tx<'_>,
    owner: i64,
    bytes: i64,
    messages: i64,
    defaults: &QuotaLimits,
    check: Check,
) -> PgResult<()> {
    if bytes == 0 && messages == 0 {
        return Ok(());
    }
    let sql = format!(
        "UPDATE quota SET storage_used = storage_used + $2::bigint, messages_used = messages_used + $3::bigint
         WHERE owner_id = $1
           AND ($6::boolean OR $2::bigint = 0 OR COALESCE(storage_limit, $4::bigint) IS NULL
                OR storage_used + $2 <= COALESCE(storage_limit, $4))
           AND ($6 OR $3::bigint = 0 OR COALESCE(messages_limit, $5::bigint) IS NULL
                OR messages_used + $3 <= COALESCE(messages_limit, $5))
         RETURNING {LEVEL_COLUMNS}"
    );
    let row = tx
        .query_opt(
            &sql,
            &[
                &owner,
                &bytes,
                &messages,
                &defaults.storage.map(i64_of),
                &defaults.messages.map(i64_of),
                &(check == Check::Skip),
            ],
        )
        .await?;
    let Some(row) = row else {
        return Err(refusal(tx, owner, bytes, messages, defaults).await);
    };
    match check {
        Check::Enforce => update_levels(tx, owner, &Levels::of(&row), defaults).await,
        // A warning never sets off the next one: the next real write compares against the
        // levels as they were.
        Check::Skip => Ok(()),
    }
}

/// Why [`charge`] changed no row: the resource that would be exceeded.
async fn refusal(tx: &Tx<'_>, owner: i64, bytes: i64, messages: i64, defaults: &QuotaLimits) -> Fail {
    let sql = format!("SELECT {LEVEL_COLUMNS} FROM quota WHERE owner_id = $1");
    let row = match tx.query_opt(&sql, &[&owner]).await {
        Ok(Some(row)) => Levels::of(&row),
        Ok(None) => return StoreError::NotFound.into(),
        Err(e) => return e.into(),
    };
    let limits = row.own.resolve(*defaults);
    let (bytes, messages) = (u64_of(bytes), u64_of(messages));
    let over = |used: u64, add: u64, limit: Option<u64>| {
        limit.filter(|&limit| add > 0 && used.saturating_add(add) > limit).map(|limit| add > limit)
    };
    let refused = if let Some(alone) = over(row.storage_used, bytes, limits.storage) {
        OverQuota { resource: QuotaResource::Storage, alone }
    } else if let Some(alone) = over(row.messages_used, messages, limits.messages) {
        OverQuota { resource: QuotaResource::Message, alone }
    } else {
        return StoreError::Backend("quota update refused for no reason".to_owned()).into();
    };
    StoreError::OverQuota(refused).into()
}

/// Takes `bytes` and `messages` off the usage of `owner` (expunge, move out, delete).
pub(crate) async fn release(
    tx: &Tx<'_>,
    owner: i64,
    bytes: i64,
    messages: i64,
    defaults: &QuotaLimits,
) -> PgResult<()> {
    if bytes == 0 && messages == 0 {
        return Ok(());
    }
    let sql = format!(
        "UPDATE quota SET storage_used = GREATEST(storage_used - $2::bigint, 0),
                          messages_used = GREATEST(messages_used - $3::bigint, 0)
         WHERE owner_id = $1 RETURNING {LEVEL_COLUMNS}"
    );
    match tx.query_opt(&sql, &[&owner, &bytes, &messages]).await? {
        Some(row) => update_levels(tx, owner, &Levels::of(&row), defaults).await,
        None => Ok(()),
    }
}

/// Compares the usage with the thresholds: a higher one reached records one warning (for the
/// highest reached); a lower level re-arms. The caller holds the quota row.
async fn update_levels(tx: &Tx<'_>, owner: i64, row: &Levels, defaults: &QuotaLimits) -> PgResult<()> {
    let limits = row.own.resolve(*defaults);
    let storage = level(row.storage_used, limits.storage);
    let messages = level(row.messages_used, limits.messages);
    if storage == row.storage_level && messages == row.messages_level {
        return Ok(());
    }
    for (resource, new, old, used, limit) in [
        (QuotaResource::Storage, storage, row.storage_level, row.storage_used, limits.storage),
        (QuotaResource::Message, messages, row.messages_level, row.messages_used, limits.messages),
    ] {
        if new > old {
            record_warning(tx, owner, resource, new, used, limit.unwrap_or(0)).await?;
        }
    }
    tx.execute(
        "UPDATE quota SET storage_level = $2, messages_level = $3 WHERE owner_id = $1",
        &[&owner, &i64::from(storage), &i64::from(messages)],
    )
    .await?;
    Ok(())
}

/// Inserts a warning numbered from the root's own counter (`owner << 32 | n`).
async fn record_warning(
    tx: &Tx<'_>,
    owner: i64,
    resource: QuotaResource,
    percent: u8,
    used: u64,
    limit: u64,
) -> PgResult<()> {
    let n: i64 = tx
        .query_one(
            "UPDATE quota SET next_warning = next_warning + 1 WHERE owner_id = $1 RETURNING next_warning - 1",
            &[&owner],
        )
        .await?
        .get(0);
    if !(1..1 << 32).contains(&n) {
        return Err(StoreError::Limit("the account has used up its warning ids".to_owned()).into());
    }
    tx.execute(
        "INSERT INTO quota_warnings (owner_id, id, resource, threshold, created, used, limit_value)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &owner,
            &((owner << 32) | n),
            &resource_text(resource),
            &i64::from(percent),
            &unix_now(),
            &i64_of(used),
            &i64_of(limit),
        ],
    )
    .await?;
    Ok(())
}

/// Sets a root's own limits; the thresholds are compared again at once.
pub(crate) async fn set_quota(
    tx: &Tx<'_>,
    account: AccountId,
    limits: QuotaLimits,
    defaults: &QuotaLimits,
) -> PgResult<()> {
    let sql = format!(
        "UPDATE quota SET storage_limit = $2, messages_limit = $3, mailbox_limit = $4
         WHERE owner_id = $1 RETURNING {LEVEL_COLUMNS}"
    );
    let row = tx
        .query_opt(
            &sql,
            &[
                &account.0,
                &limits.storage.map(i64_of),
                &limits.messages.map(i64_of),
                &limits.mailboxes.map(i64_of),
            ],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    update_levels(tx, account.0, &Levels::of(&row), defaults).await
}

/// Warnings not delivered yet, oldest first.
pub(crate) async fn pending_warnings(tx: &Tx<'_>) -> PgResult<Vec<QuotaWarning>> {
    let rows = tx
        .query(
            "SELECT id, owner_id, resource, threshold, used, limit_value FROM quota_warnings
             WHERE NOT delivered ORDER BY seq",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| QuotaWarning {
            id: r.get(0),
            account: AccountId(r.get(1)),
            resource: resource_of(r.get::<_, &str>(2)),
            percent: u8::try_from(r.get::<_, i64>(3)).unwrap_or(100),
            used: u64_of(r.get(4)),
            limit: u64_of(r.get(5)),
        })
        .collect())
}

/// Marks a warning delivered and returns its root; `None` when it was delivered already,
/// [`StoreError::NotFound`] when there is no such warning.
pub(crate) async fn claim_warning(tx: &Tx<'_>, warning: i64) -> PgResult<Option<AccountId>> {
    let owner = owner_of(warning);
    let row = tx
        .query_opt(
            "SELECT delivered FROM quota_warnings WHERE owner_id = $1 AND id = $2 FOR UPDATE",
            &[&owner, &warning],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    if row.get::<_, bool>(0) {
        return Ok(None);
    }
    tx.execute(
        "UPDATE quota_warnings SET delivered = true WHERE owner_id = $1 AND id = $2",
        &[&owner, &warning],
    )
    .await?;
    Ok(Some(AccountId(owner)))
}
