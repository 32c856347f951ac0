//! The outbound queue on PostgreSQL (table `outbound_queue`, schema version 4): the behaviour
//! of `sqlite::queue` (see [`crate::queue`]), for several nodes on one database.
//!
//! Several nodes run senders against the same table. A claim is one `UPDATE … WHERE (owner_id,
//! id) IN (SELECT … FOR UPDATE SKIP LOCKED)`: concurrent claims skip each other's rows instead
//! of waiting, and a row whose lease is set is not due for anybody until the lease ends. The
//! outcome is written only while the caller's lease (`attempts`) is still the row's.
//!
//! Distribution: rows carry `owner_id` (the account whose delivery made them), so the table
//! can be distributed by it, co-located with `vacation_sent`, and the enqueue of a vacation
//! reply with its claim stays on one shard. The sender's claim spans all owners; see
//! docs/scale-out.md for what that means under Citus.

use async_trait::async_trait;

use super::{PgResult, PgStore, Tx};
use crate::queue::{
    Attempt, ClaimedMail, Enqueued, Lease, MAX_PENDING, NewOutbound, OutboundKind, QueueEntry, QueueId,
    QueueStore, check_new, clip_error, join_recipients, split_recipients,
};
use crate::types::AccountId;
use crate::{StoreError, StoreResult, VacationClaim};

/// Adds `mail` in the caller's transaction (see [`QueueStore::enqueue`]).
async fn enqueue(tx: &Tx<'_>, mail: &NewOutbound) -> PgResult<Enqueued> {
    check_new(mail)?;
    if let Some(once) = &mail.vacation {
        let claim =
            super::sieve::claim(tx, mail.owner, &once.handle, &once.sender, mail.now, once.period_secs)
                .await?;
        if claim == VacationClaim::AlreadyReplied {
            return Ok(Enqueued::AlreadyReplied);
        }
    }
    if pending(tx).await? >= MAX_PENDING {
        return Err(
            StoreError::Limit(format!("the outbound queue holds {MAX_PENDING} messages already")).into()
        );
    }
    // Two deliveries racing with one key: the second waits for the first's commit, then
    // inserts nothing.
    let row = tx
        .query_opt(
            "INSERT INTO outbound_queue (owner_id, kind, reverse_path, recipients, dedup_key, created,
                                         expires, next_attempt, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8)
             ON CONFLICT (owner_id, dedup_key) DO NOTHING RETURNING id",
            &[
                &mail.owner.0,
                &mail.kind.as_str(),
                &mail.reverse_path,
                &join_recipients(&mail.recipients),
                &mail.key,
                &mail.now,
                &mail.expires,
                &mail.data,
            ],
        )
        .await?;
    Ok(match row {
        Some(row) => Enqueued::Queued(QueueId(row.get(0))),
        None => Enqueued::Duplicate,
    })
}

async fn pending(tx: &Tx<'_>) -> PgResult<u64> {
    let n: i64 = tx.query_one("SELECT count(*) FROM outbound_queue WHERE NOT done", &[]).await?.get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

fn kind(text: &str) -> OutboundKind {
    OutboundKind::parse(text).unwrap_or(OutboundKind::Redirect)
}

fn attempts(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

async fn claim(tx: &Tx<'_>, now: i64, lease_secs: i64, max: usize) -> PgResult<Vec<ClaimedMail>> {
    tx.execute("DELETE FROM outbound_queue WHERE done AND expires <= $1", &[&now]).await?;
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let rows = tx
        .query(
            "UPDATE outbound_queue SET lease_until = $2, attempts = attempts + 1
             WHERE (owner_id, id) IN (
                 SELECT owner_id, id FROM outbound_queue
                 WHERE NOT done AND next_attempt <= $1 AND (lease_until IS NULL OR lease_until <= $1)
                 ORDER BY next_attempt, id LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             RETURNING id, attempts, owner_id, kind, reverse_path, recipients, data, created, expires",
            &[&now, &now.saturating_add(lease_secs), &max],
        )
        .await?;
    let mut claimed: Vec<ClaimedMail> = rows
        .iter()
        .map(|r| ClaimedMail {
            lease: Lease { id: QueueId(r.get(0)), attempt: attempts(r.get(1)) },
            owner: AccountId(r.get(2)),
            kind: kind(r.get(3)),
            reverse_path: r.get(4),
            recipients: split_recipients(r.get(5)),
            data: r.get(6),
            created: r.get(7),
            expires: r.get(8),
        })
        .collect();
    claimed.sort_by_key(|c| c.lease.id);
    Ok(claimed)
}

async fn finish(tx: &Tx<'_>, lease: Lease, outcome: &Attempt) -> PgResult<bool> {
    let attempt = i32::try_from(lease.attempt).unwrap_or(i32::MAX);
    const HELD: &str = "id = $1 AND attempts = $2 AND NOT done AND lease_until IS NOT NULL";
    let changed = match outcome {
        Attempt::Sent => {
            tx.execute(
                &format!(
                    "UPDATE outbound_queue SET done = true, data = '', lease_until = NULL, last_error = NULL
                     WHERE {HELD}"
                ),
                &[&lease.id.0, &attempt],
            )
            .await?
        }
        Attempt::RetryAt { next_attempt, error } => {
            tx.execute(
                &format!(
                    "UPDATE outbound_queue SET next_attempt = $3, last_error = $4, lease_until = NULL
                     WHERE {HELD}"
                ),
                &[&lease.id.0, &attempt, next_attempt, &clip_error(error)],
            )
            .await?
        }
        Attempt::Failed { error, .. } => {
            tx.execute(
                &format!(
                    "UPDATE outbound_queue SET done = true, data = '', lease_until = NULL, last_error = $3
                     WHERE {HELD}"
                ),
                &[&lease.id.0, &attempt, &clip_error(error)],
            )
            .await?
        }
    };
    if changed == 0 {
        return Ok(false);
    }
    if let Attempt::Failed { bounce: Some(bounce), .. } = outcome {
        enqueue(tx, bounce).await?;
    }
    Ok(true)
}

async fn list(tx: &Tx<'_>) -> PgResult<Vec<QueueEntry>> {
    let rows = tx
        .query(
            "SELECT id, owner_id, kind, reverse_path, recipients, octet_length(data), created,
                    next_attempt, attempts, last_error, expires, lease_until
             FROM outbound_queue WHERE NOT done ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| QueueEntry {
            id: QueueId(r.get(0)),
            owner: AccountId(r.get(1)),
            kind: kind(r.get(2)),
            reverse_path: r.get(3),
            recipients: split_recipients(r.get(4)),
            size: u64::try_from(r.get::<_, i32>(5)).unwrap_or(0),
            created: r.get(6),
            next_attempt: r.get(7),
            attempts: attempts(r.get(8)),
            last_error: r.get(9),
            expires: r.get(10),
            leased_until: r.get(11),
        })
        .collect())
}

async fn flush(tx: &Tx<'_>, id: Option<QueueId>, now: i64) -> PgResult<u64> {
    let n = match id {
        Some(id) => {
            tx.execute(
                "UPDATE outbound_queue SET next_attempt = LEAST(next_attempt, $2) WHERE NOT done AND id = $1",
                &[&id.0, &now],
            )
            .await?
        }
        None => {
            tx.execute(
                "UPDATE outbound_queue SET next_attempt = LEAST(next_attempt, $1) WHERE NOT done",
                &[&now],
            )
            .await?
        }
    };
    Ok(n)
}

async fn delete(tx: &Tx<'_>, id: QueueId) -> PgResult<bool> {
    let n = tx
        .execute(
            "UPDATE outbound_queue SET done = true, data = '', lease_until = NULL,
                                       last_error = 'deleted by the administrator'
             WHERE id = $1 AND NOT done",
            &[&id.0],
        )
        .await?;
    Ok(n > 0)
}

#[async_trait]
impl QueueStore for PgStore {
    async fn enqueue(&self, mail: NewOutbound) -> StoreResult<Enqueued> {
        write_tx!(self, |tx, fx| enqueue(&tx, &mail).await?)
    }

    async fn claim_outbound(&self, now: i64, lease_secs: i64, max: usize) -> StoreResult<Vec<ClaimedMail>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        write_tx!(self, |tx, fx| claim(&tx, now, lease_secs, max).await?)
    }

    async fn finish_attempt(&self, lease: Lease, outcome: Attempt) -> StoreResult<bool> {
        write_tx!(self, |tx, fx| finish(&tx, lease, &outcome).await?)
    }

    async fn queue_list(&self) -> StoreResult<Vec<QueueEntry>> {
        read_tx!(self, |tx| list(&tx).await?)
    }

    async fn flush_queue(&self, id: Option<QueueId>, now: i64) -> StoreResult<u64> {
        write_tx!(self, |tx, fx| flush(&tx, id, now).await?)
    }

    async fn delete_queued(&self, id: QueueId) -> StoreResult<bool> {
        write_tx!(self, |tx, fx| delete(&tx, id).await?)
    }

    async fn queue_length(&self) -> StoreResult<u64> {
        read_tx!(self, |tx| pending(&tx).await?)
    }
}
