//! URLAUTH mailbox access keys (RFC 4467 §6), as in SQLite's version 15: `urlauth_keys(account_id,
//! owner_id, mailbox_id, key)` of schema version 9.

use super::{PgResult, Tx, owner_of};
use crate::StoreError;
use crate::types::{AccountId, MailboxId};

/// `account`'s key for `mailbox`; with `fresh`, stored first when there is none (the first
/// writer's key wins). `NotFound` when the mailbox does not exist.
pub(super) async fn key(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    fresh: Option<&[u8]>,
) -> PgResult<Option<Vec<u8>>> {
    let owner = owner_of(mailbox.0);
    if tx
        .query_opt("SELECT 1 FROM mailboxes WHERE owner_id = $1 AND id = $2", &[&owner, &mailbox.0])
        .await?
        .is_none()
    {
        return Err(StoreError::NotFound.into());
    }
    if let Some(fresh) = fresh {
        tx.execute(
            "INSERT INTO urlauth_keys (account_id, owner_id, mailbox_id, key) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&account.0, &owner, &mailbox.0, &fresh],
        )
        .await?;
    }
    let row = tx
        .query_opt(
            "SELECT key FROM urlauth_keys WHERE account_id = $1 AND owner_id = $2 AND mailbox_id = $3",
            &[&account.0, &owner, &mailbox.0],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Forgets `account`'s keys: the one for `mailbox`, or all.
pub(super) async fn reset(tx: &Tx<'_>, account: AccountId, mailbox: Option<MailboxId>) -> PgResult<()> {
    match mailbox {
        Some(m) => {
            tx.execute(
                "DELETE FROM urlauth_keys WHERE account_id = $1 AND owner_id = $2 AND mailbox_id = $3",
                &[&account.0, &owner_of(m.0), &m.0],
            )
            .await?
        }
        None => tx.execute("DELETE FROM urlauth_keys WHERE account_id = $1", &[&account.0]).await?,
    };
    Ok(())
}
