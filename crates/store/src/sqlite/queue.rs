//! The outbound queue in SQLite (table `outbound_queue`, schema version 11): see
//! [`crate::queue`] for what it promises.
//!
//! Every change is a writer job, so an enqueue is durable when it returns and a claim is
//! atomic: the writer runs one job at a time, and other processes wait for the write lock
//! (`BEGIN IMMEDIATE`), so two senders can never claim one row.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};

use super::SqliteStore;
use super::conn::DbResult;
use crate::queue::{
    Attempt, ClaimedMail, Enqueued, Lease, MAX_PENDING, NewOutbound, OutboundKind, QueueEntry, QueueId,
    QueueStore, check_new, clip_error, join_recipients, split_recipients,
};
use crate::types::AccountId;
use crate::{StoreError, StoreResult, VacationClaim};

/// Adds `mail` in the caller's transaction (see [`QueueStore::enqueue`]).
pub(super) fn enqueue(conn: &Connection, mail: &NewOutbound) -> StoreResult<Enqueued> {
    check_new(mail)?;
    if let Some(once) = &mail.vacation {
        let claim =
            super::sieve::claim(conn, mail.owner, &once.handle, &once.sender, mail.now, once.period_secs)?;
        if claim == VacationClaim::AlreadyReplied {
            return Ok(Enqueued::AlreadyReplied);
        }
    }
    if let Some(key) = &mail.key {
        let seen = conn
            .prepare_cached("SELECT 1 FROM outbound_queue WHERE owner_id = ?1 AND dedup_key = ?2")
            .db()?
            .query_row(rusqlite::params![mail.owner.0, key], |_| Ok(()))
            .optional()
            .db()?;
        if seen.is_some() {
            return Ok(Enqueued::Duplicate);
        }
    }
    if pending(conn)? >= MAX_PENDING {
        return Err(StoreError::Limit(format!("the outbound queue holds {MAX_PENDING} messages already")));
    }
    let id = conn
        .prepare_cached(
            "INSERT INTO outbound_queue (owner_id, kind, reverse_path, recipients, dedup_key, created,
                                         expires, next_attempt, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6, ?8) RETURNING id",
        )
        .db()?
        .query_row(
            rusqlite::params![
                mail.owner.0,
                mail.kind.as_str(),
                mail.reverse_path,
                join_recipients(&mail.recipients),
                mail.key,
                mail.now,
                mail.expires,
                mail.data,
            ],
            |r| r.get(0),
        )
        .db()?;
    Ok(Enqueued::Queued(QueueId(id)))
}

fn pending(conn: &Connection) -> StoreResult<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM outbound_queue WHERE done = 0")
        .db()?
        .query_row([], |r| r.get(0))
        .db()?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn claim(conn: &Connection, now: i64, lease_secs: i64, max: usize) -> StoreResult<Vec<ClaimedMail>> {
    conn.prepare_cached("DELETE FROM outbound_queue WHERE done = 1 AND expires <= ?1")
        .db()?
        .execute([now])
        .db()?;
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "UPDATE outbound_queue SET lease_until = ?2, attempts = attempts + 1
             WHERE id IN (SELECT id FROM outbound_queue
                          WHERE done = 0 AND next_attempt <= ?1
                            AND (lease_until IS NULL OR lease_until <= ?1)
                          ORDER BY next_attempt, id LIMIT ?3)
             RETURNING id, attempts, owner_id, kind, reverse_path, recipients, data, created, expires",
        )
        .db()?;
    let rows = stmt
        .query_map(rusqlite::params![now, now.saturating_add(lease_secs), max], |r| {
            let kind: String = r.get(3)?;
            let recipients: String = r.get(5)?;
            Ok(ClaimedMail {
                lease: Lease { id: QueueId(r.get(0)?), attempt: r.get(1)? },
                owner: AccountId(r.get(2)?),
                kind: OutboundKind::parse(&kind).unwrap_or(OutboundKind::Redirect),
                reverse_path: r.get(4)?,
                recipients: split_recipients(&recipients),
                data: r.get(6)?,
                created: r.get(7)?,
                expires: r.get(8)?,
            })
        })
        .db()?;
    let mut claimed: Vec<ClaimedMail> = rows.collect::<rusqlite::Result<_>>().db()?;
    claimed.sort_by_key(|c| c.lease.id);
    Ok(claimed)
}

fn finish(conn: &Connection, lease: Lease, outcome: &Attempt) -> StoreResult<bool> {
    let params = rusqlite::params![lease.id.0, lease.attempt];
    let changed = match outcome {
        Attempt::Sent => conn
            .prepare_cached(
                "UPDATE outbound_queue SET done = 1, data = x'', lease_until = NULL, last_error = NULL
                 WHERE id = ?1 AND attempts = ?2 AND done = 0 AND lease_until IS NOT NULL",
            )
            .db()?
            .execute(params)
            .db()?,
        Attempt::RetryAt { next_attempt, error } => conn
            .prepare_cached(
                "UPDATE outbound_queue SET next_attempt = ?3, last_error = ?4, lease_until = NULL
                 WHERE id = ?1 AND attempts = ?2 AND done = 0 AND lease_until IS NOT NULL",
            )
            .db()?
            .execute(rusqlite::params![lease.id.0, lease.attempt, next_attempt, clip_error(error)])
            .db()?,
        Attempt::Failed { error, .. } => conn
            .prepare_cached(
                "UPDATE outbound_queue SET done = 1, data = x'', lease_until = NULL, last_error = ?3
                 WHERE id = ?1 AND attempts = ?2 AND done = 0 AND lease_until IS NOT NULL",
            )
            .db()?
            .execute(rusqlite::params![lease.id.0, lease.attempt, clip_error(error)])
            .db()?,
    };
    if changed == 0 {
        return Ok(false);
    }
    if let Attempt::Failed { bounce: Some(bounce), .. } = outcome {
        enqueue(conn, bounce)?;
    }
    Ok(true)
}

fn list(conn: &Connection) -> StoreResult<Vec<QueueEntry>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, owner_id, kind, reverse_path, recipients, length(data), created, next_attempt,
                    attempts, last_error, expires, lease_until
             FROM outbound_queue WHERE done = 0 ORDER BY id",
        )
        .db()?;
    let rows = stmt
        .query_map([], |r| {
            let kind: String = r.get(2)?;
            let recipients: String = r.get(4)?;
            let size: i64 = r.get(5)?;
            Ok(QueueEntry {
                id: QueueId(r.get(0)?),
                owner: AccountId(r.get(1)?),
                kind: OutboundKind::parse(&kind).unwrap_or(OutboundKind::Redirect),
                reverse_path: r.get(3)?,
                recipients: split_recipients(&recipients),
                size: u64::try_from(size).unwrap_or(0),
                created: r.get(6)?,
                next_attempt: r.get(7)?,
                attempts: r.get(8)?,
                last_error: r.get(9)?,
                expires: r.get(10)?,
                leased_until: r.get(11)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

fn flush(conn: &Connection, id: Option<QueueId>, now: i64) -> StoreResult<u64> {
    let n = conn
        .prepare_cached(
            "UPDATE outbound_queue SET next_attempt = min(next_attempt, ?2)
             WHERE done = 0 AND (?1 IS NULL OR id = ?1)",
        )
        .db()?
        .execute(rusqlite::params![id.map(|i| i.0), now])
        .db()?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn delete(conn: &Connection, id: QueueId) -> StoreResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE outbound_queue SET done = 1, data = x'', lease_until = NULL,
                                       last_error = 'deleted by the administrator'
             WHERE id = ?1 AND done = 0",
        )
        .db()?
        .execute([id.0])
        .db()?;
    Ok(n > 0)
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn enqueue(&self, mail: NewOutbound) -> StoreResult<Enqueued> {
        self.writer.run(move |conn, _| enqueue(conn, &mail)).await
    }

    async fn claim_outbound(&self, now: i64, lease_secs: i64, max: usize) -> StoreResult<Vec<ClaimedMail>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.writer.run(move |conn, _| claim(conn, now, lease_secs, max)).await
    }

    async fn finish_attempt(&self, lease: Lease, outcome: Attempt) -> StoreResult<bool> {
        self.writer.run(move |conn, _| finish(conn, lease, &outcome)).await
    }

    async fn queue_list(&self) -> StoreResult<Vec<QueueEntry>> {
        self.read(list).await
    }

    async fn flush_queue(&self, id: Option<QueueId>, now: i64) -> StoreResult<u64> {
        self.writer.run(move |conn, _| flush(conn, id, now)).await
    }

    async fn delete_queued(&self, id: QueueId) -> StoreResult<bool> {
        self.writer.run(move |conn, _| delete(conn, id)).await
    }

    async fn queue_length(&self) -> StoreResult<u64> {
        self.read(pending).await
    }
}
