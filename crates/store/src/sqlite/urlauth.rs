//! URLAUTH mailbox access keys (RFC 4467 §6) in SQLite: `urlauth_keys` of schema version 15.

use rusqlite::{Connection, OptionalExtension, params};

use super::conn::DbResult;
use crate::types::{AccountId, MailboxId};
use crate::{StoreError, StoreResult};

/// `account`'s key for `mailbox`; with `fresh`, stored first when there is none (the first
/// writer's key wins). `NotFound` when the mailbox does not exist.
pub(super) fn key(
    conn: &Connection,
    account: AccountId,
    mailbox: MailboxId,
    fresh: Option<&[u8]>,
) -> StoreResult<Option<Vec<u8>>> {
    let exists: Option<i64> =
        conn.query_row("SELECT 1 FROM mailboxes WHERE id = ?1", [mailbox.0], |r| r.get(0)).optional().db()?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    if let Some(fresh) = fresh {
        conn.execute(
            "INSERT OR IGNORE INTO urlauth_keys (account_id, mailbox_id, key) VALUES (?1, ?2, ?3)",
            params![account.0, mailbox.0, fresh],
        )
        .db()?;
    }
    conn.query_row(
        "SELECT key FROM urlauth_keys WHERE account_id = ?1 AND mailbox_id = ?2",
        params![account.0, mailbox.0],
        |r| r.get(0),
    )
    .optional()
    .db()
}

/// Forgets `account`'s keys: the one for `mailbox`, or all.
pub(super) fn reset(conn: &Connection, account: AccountId, mailbox: Option<MailboxId>) -> StoreResult<()> {
    match mailbox {
        Some(m) => conn.execute(
            "DELETE FROM urlauth_keys WHERE account_id = ?1 AND mailbox_id = ?2",
            params![account.0, m.0],
        ),
        None => conn.execute("DELETE FROM urlauth_keys WHERE account_id = ?1", [account.0]),
    }
    .db()?;
    Ok(())
}
