//! [`OperationsStore`](crate::OperationsStore) on PostgreSQL: health, totals, write statistics
//! and the Trash/Junk clean-up.

use std::time::Duration;

use super::{PgResult, Tx};
use crate::StoreError;
use crate::acl::QuotaLimits;
use crate::metadata::{CLEANUP_DAYS_ENTRY, cleanup_days};
use crate::sqlite::{CleanupMailbox, CleanupOverride};
use crate::stats::{BATCH_SIZE_BOUNDS, COMMIT_SECONDS_BOUNDS, Histogram, StoreTotals, WriterStats};
use crate::types::{AccountId, MailboxId, SpecialUse};

/// This process's write transactions: how many committed and how long each took from its first
/// statement to the end of COMMIT. Each is one transaction of one write (PostgreSQL groups
/// commits itself), so the group size is always 1.
pub(crate) struct WriteStats {
    commit_seconds: Histogram,
    batch_size: Histogram,
}

impl WriteStats {
    pub(crate) fn new() -> Self {
        Self {
            commit_seconds: Histogram::new(COMMIT_SECONDS_BOUNDS),
            batch_size: Histogram::new(BATCH_SIZE_BOUNDS),
        }
    }

    pub(crate) fn committed(&self, took: Duration) {
        self.commit_seconds.record(took.as_secs_f64());
        self.batch_size.record(1.0);
    }

    pub(crate) fn commits(&self) -> u64 {
        self.batch_size.snapshot().count
    }

    pub(crate) fn snapshot(&self) -> WriterStats {
        let batch_size = self.batch_size.snapshot();
        WriterStats { commits: batch_size.count, commit_seconds: self.commit_seconds.snapshot(), batch_size }
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn days(v: Option<i64>) -> Option<u32> {
    v.map(|d| u32::try_from(d).unwrap_or(u32::MAX))
}

/// Sums over the quota rows, with `defaults` for roots without their own limits.
pub(crate) async fn totals(tx: &Tx<'_>, defaults: &QuotaLimits) -> PgResult<StoreTotals> {
    let limit = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    let (storage, messages) = (limit(defaults.storage), limit(defaults.messages));
    let row = tx
        .query_one(
            "SELECT count(*)::bigint,
                    coalesce(sum(storage_used), 0)::bigint,
                    coalesce(sum(messages_used), 0)::bigint,
                    count(*) FILTER (WHERE coalesce(storage_limit, $1) IS NOT NULL
                                        OR coalesce(messages_limit, $2) IS NOT NULL)::bigint,
                    count(*) FILTER (WHERE coalesce(storage_used * 10 >= coalesce(storage_limit, $1) * 9, false)
                                        OR coalesce(messages_used * 10 >= coalesce(messages_limit, $2) * 9, false))::bigint,
                    count(*) FILTER (WHERE coalesce(storage_used >= coalesce(storage_limit, $1), false)
                                        OR coalesce(messages_used >= coalesce(messages_limit, $2), false))::bigint
             FROM quota",
            &[&storage, &messages],
        )
        .await?;
    Ok(StoreTotals {
        accounts: to_u64(row.get(0)),
        bytes: to_u64(row.get(1)),
        messages: to_u64(row.get(2)),
        accounts_with_limit: to_u64(row.get(3)),
        accounts_above_90_percent: to_u64(row.get(4)),
        accounts_full: to_u64(row.get(5)),
    })
}

/// Every `\Trash` and `\Junk` mailbox with its owner's override and its earliest save date.
pub(crate) async fn cleanup_mailboxes(tx: &Tx<'_>) -> PgResult<Vec<CleanupMailbox>> {
    let rows = tx
        .query(
            "SELECT a.id, a.name, m.id, m.name, m.special_use, c.trash_days, c.junk_days,
                    (SELECT min(s.saved_at) FROM messages s
                      WHERE s.owner_id = m.owner_id AND s.mailbox_id = m.id), md.value
             FROM mailboxes m
             JOIN accounts a ON a.id = m.owner_id
             LEFT JOIN cleanup_settings c ON c.owner_id = a.id
             LEFT JOIN mailbox_metadata md
                    ON md.owner_id = m.owner_id AND md.mailbox_id = m.id AND md.account_id = 0
                   AND md.name = $3
             WHERE m.special_use IN ($1, $2) OR md.value IS NOT NULL
             ORDER BY a.name_key, m.name",
            &[&SpecialUse::Trash.as_str(), &SpecialUse::Junk.as_str(), &CLEANUP_DAYS_ENTRY],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let special: Option<String> = r.get(4);
            let special_use = match special.as_deref() {
                Some(s) if s == SpecialUse::Junk.as_str() => Some(SpecialUse::Junk),
                Some(s) if s == SpecialUse::Trash.as_str() => Some(SpecialUse::Trash),
                _ => None,
            };
            let (trash, junk) = (days(r.get(5)), days(r.get(6)));
            let entry: Option<Vec<u8>> = r.get(8);
            CleanupMailbox {
                account: AccountId(r.get(0)),
                account_name: r.get(1),
                mailbox: MailboxId(r.get(2)),
                name: r.get(3),
                special_use,
                days: match special_use {
                    Some(SpecialUse::Junk) => junk,
                    Some(SpecialUse::Trash) => trash,
                    _ => None,
                },
                mailbox_days: entry.as_deref().and_then(cleanup_days),
                oldest_saved: r.get(7),
            }
        })
        .collect())
}

/// The account's own limits (both `None` when it has none).
pub(crate) async fn cleanup_override(tx: &Tx<'_>, account: AccountId) -> PgResult<CleanupOverride> {
    let row = tx
        .query_opt("SELECT trash_days, junk_days FROM cleanup_settings WHERE owner_id = $1", &[&account.0])
        .await?;
    Ok(row
        .map(|r| CleanupOverride { trash_days: days(r.get(0)), junk_days: days(r.get(1)) })
        .unwrap_or_default())
}

/// Replaces the account's own limits; both `None` removes the row.
pub(crate) async fn set_cleanup_override(
    tx: &Tx<'_>,
    account: AccountId,
    limits: CleanupOverride,
) -> PgResult<()> {
    let exists = tx.query_opt("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", &[&account.0]).await?;
    if exists.is_none() {
        return Err(StoreError::NotFound.into());
    }
    if limits == CleanupOverride::default() {
        tx.execute("DELETE FROM cleanup_settings WHERE owner_id = $1", &[&account.0]).await?;
        return Ok(());
    }
    let (trash, junk) = (limits.trash_days.map(i64::from), limits.junk_days.map(i64::from));
    tx.execute(
        "INSERT INTO cleanup_settings (owner_id, trash_days, junk_days) VALUES ($1, $2, $3)
         ON CONFLICT (owner_id) DO UPDATE SET trash_days = $2, junk_days = $3",
        &[&account.0, &trash, &junk],
    )
    .await?;
    Ok(())
}

/// Whether the account has the web admin flag.
pub(crate) async fn is_admin(tx: &Tx<'_>, account: AccountId) -> PgResult<bool> {
    Ok(tx.query_opt("SELECT 1 FROM web_admins WHERE account_id = $1", &[&account.0]).await?.is_some())
}

/// Every account with the web admin flag, by id.
pub(crate) async fn admins(tx: &Tx<'_>) -> PgResult<Vec<AccountId>> {
    let rows = tx.query("SELECT account_id FROM web_admins ORDER BY account_id", &[]).await?;
    Ok(rows.iter().map(|r| AccountId(r.get(0))).collect())
}

/// Grants or takes the web admin flag; `NotFound` for an unknown account.
pub(crate) async fn set_admin(tx: &Tx<'_>, account: AccountId, admin: bool) -> PgResult<()> {
    let exists = tx.query_opt("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", &[&account.0]).await?;
    if exists.is_none() {
        return Err(StoreError::NotFound.into());
    }
    if admin {
        tx.execute(
            "INSERT INTO web_admins (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING",
            &[&account.0],
        )
        .await?;
    } else {
        tx.execute("DELETE FROM web_admins WHERE account_id = $1", &[&account.0]).await?;
    }
    Ok(())
}

/// Bodies re-derived per transaction by [`rederive_batch`].
pub(crate) const REDERIVE_BATCH: i64 = 200;

/// The next bodies after `(owner, id)` (of `only`'s owner when given), ascending.
pub(crate) async fn rederive_page(
    tx: &Tx<'_>,
    only: Option<AccountId>,
    after: (i64, i64),
) -> PgResult<Vec<(i64, i64, Vec<u8>)>> {
    let rows = match only {
        Some(account) => {
            tx.query(
                "SELECT owner_id, id, raw FROM bodies WHERE owner_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                &[&account.0, &after.1, &REDERIVE_BATCH],
            )
            .await?
        }
        None => {
            tx.query(
                "SELECT owner_id, id, raw FROM bodies WHERE (owner_id, id) > ($1, $2)
                 ORDER BY owner_id, id LIMIT $3",
                &[&after.0, &after.1, &REDERIVE_BATCH],
            )
            .await?
        }
    };
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Writes the summaries derived again; bodies expunged meanwhile are skipped. Returns how many
/// were written.
pub(crate) async fn rederive_write(tx: &Tx<'_>, derived: &[Rederived]) -> PgResult<u64> {
    let mut written = 0;
    for d in derived {
        let updated = tx
            .execute(
                "UPDATE bodies SET summary = $3, content_hash = $4 WHERE owner_id = $1 AND id = $2",
                &[&d.owner, &d.id, &d.summary, &d.hash],
            )
            .await?;
        if updated > 0 {
            super::search::record_text(tx, d.owner, d.id, d.text.as_deref()).await?;
        }
        written += updated;
    }
    Ok(written)
}

/// One body derived again: its summary and prefilter text.
pub(crate) struct Rederived {
    pub(crate) owner: i64,
    pub(crate) id: i64,
    pub(crate) summary: Vec<u8>,
    pub(crate) text: Option<String>,
    pub(crate) hash: Vec<u8>,
}

/// How many bodies a re-derivation visits.
pub(crate) async fn rederive_count(tx: &Tx<'_>, only: Option<AccountId>) -> PgResult<u64> {
    let row = match only {
        Some(account) => {
            tx.query_one("SELECT count(*) FROM bodies WHERE owner_id = $1", &[&account.0]).await?
        }
        None => tx.query_one("SELECT count(*) FROM bodies", &[]).await?,
    };
    Ok(to_u64(row.get(0)))
}
