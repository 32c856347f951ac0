//! Automatic clean-up of Trash and Junk (issue 14): which mailboxes, whose limits, and the
//! per-account overrides. The expunge itself is [`super::messages::expunge_saved_before`], the
//! same path as EXPUNGE.
//!
//! Mailboxes are found by their special-use attribute (RFC 6154 `\Trash`, `\Junk`), for users
//! and teams alike, so a renamed Trash is still cleaned and a folder merely called "Trash" is
//! not. The save date (RFC 8514) decides a message's age: moving a message to Trash starts its
//! clock, its internal date does not.

use rusqlite::{Connection, OptionalExtension};

use super::conn::DbResult;
use crate::metadata::{CLEANUP_DAYS_ENTRY, cleanup_days};
use crate::types::{AccountId, MailboxId, SpecialUse};
use crate::{StoreError, StoreResult};

/// An account's own clean-up limits, in days (0: never); `None` follows the installation's
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanupOverride {
    /// Days messages stay in `\Trash` mailboxes.
    pub trash_days: Option<u32>,
    /// Days messages stay in `\Junk` mailboxes.
    pub junk_days: Option<u32>,
}

/// One mailbox the clean-up visits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupMailbox {
    /// The owner (a user or a team).
    pub account: AccountId,
    /// The owner's name, for the log.
    pub account_name: String,
    /// The mailbox.
    pub mailbox: MailboxId,
    /// Its full name, for the log.
    pub name: String,
    /// `Trash` or `Junk`; `None` for another mailbox that has its own limit.
    pub special_use: Option<SpecialUse>,
    /// The owner's own limit for this kind of mailbox (`None`: the default).
    pub days: Option<u32>,
    /// The mailbox's own limit, its [`crate::metadata::CLEANUP_DAYS_ENTRY`] METADATA entry
    /// (`None`: no entry, or not a number of days); it wins over `days` and the default.
    pub mailbox_days: Option<u32>,
    /// The earliest save date in the mailbox (Unix seconds; `None`: empty), so a pass asks the
    /// writer only about mailboxes that have something to remove.
    pub oldest_saved: Option<i64>,
}

/// Every `\Trash` and `\Junk` mailbox, and every other mailbox with a clean-up METADATA entry,
/// with its owner's override, the mailbox's own limit and its earliest save date (one probe of
/// `saved_at_by_time` each), by owner and name.
pub(crate) fn mailboxes(conn: &Connection) -> StoreResult<Vec<CleanupMailbox>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT a.id, a.name, m.id, m.name, m.special_use, c.trash_days, c.junk_days,
                    (SELECT min(s.unix) FROM saved_at s WHERE s.mailbox_id = m.id), md.value
             FROM mailboxes m
             JOIN accounts a ON a.id = m.account_id
             LEFT JOIN cleanup_settings c ON c.account_id = a.id
             LEFT JOIN mailbox_metadata md
                    ON md.mailbox_id = m.id AND md.account_id = 0 AND md.name = ?3
             WHERE m.special_use IN (?1, ?2) OR md.value IS NOT NULL
             ORDER BY a.name_key, m.name",
        )
        .db()?;
    let rows = stmt
        .query_map(
            rusqlite::params![SpecialUse::Trash.as_str(), SpecialUse::Junk.as_str(), CLEANUP_DAYS_ENTRY],
            |r| {
                let special: Option<String> = r.get(4)?;
                let trash: Option<u32> = r.get(5)?;
                let junk: Option<u32> = r.get(6)?;
                let entry: Option<Vec<u8>> = r.get(8)?;
                let special_use = match special.as_deref() {
                    Some(s) if s == SpecialUse::Junk.as_str() => Some(SpecialUse::Junk),
                    Some(s) if s == SpecialUse::Trash.as_str() => Some(SpecialUse::Trash),
                    _ => None,
                };
                Ok(CleanupMailbox {
                    account: AccountId(r.get(0)?),
                    account_name: r.get(1)?,
                    mailbox: MailboxId(r.get(2)?),
                    name: r.get(3)?,
                    special_use,
                    days: match special_use {
                        Some(SpecialUse::Junk) => junk,
                        Some(SpecialUse::Trash) => trash,
                        _ => None,
                    },
                    mailbox_days: entry.as_deref().and_then(cleanup_days),
                    oldest_saved: r.get(7)?,
                })
            },
        )
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// The account's own limits (both `None` when it has none).
pub(crate) fn override_of(conn: &Connection, account: AccountId) -> StoreResult<CleanupOverride> {
    let found = conn
        .prepare_cached("SELECT trash_days, junk_days FROM cleanup_settings WHERE account_id = ?1")
        .db()?
        .query_row([account.0], |r| Ok(CleanupOverride { trash_days: r.get(0)?, junk_days: r.get(1)? }))
        .optional()
        .db()?;
    Ok(found.unwrap_or_default())
}

/// Replaces the account's own limits; both `None` removes the row.
pub(crate) fn set_override(
    conn: &Connection,
    account: AccountId,
    limits: CleanupOverride,
) -> StoreResult<()> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?1)")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .db()?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    if limits == CleanupOverride::default() {
        conn.prepare_cached("DELETE FROM cleanup_settings WHERE account_id = ?1")
            .db()?
            .execute([account.0])
            .db()?;
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO cleanup_settings (account_id, trash_days, junk_days) VALUES (?1, ?2, ?3)
         ON CONFLICT (account_id) DO UPDATE SET trash_days = ?2, junk_days = ?3",
    )
    .db()?
    .execute(rusqlite::params![account.0, limits.trash_days, limits.junk_days])
    .db()?;
    Ok(())
}

/// Whether the account has the web admin flag.
pub(crate) fn is_admin(conn: &Connection, account: AccountId) -> StoreResult<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM web_admins WHERE account_id = ?1)")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .db()
}

/// Every account with the web admin flag, by id.
pub(crate) fn admins(conn: &Connection) -> StoreResult<Vec<AccountId>> {
    let mut stmt = conn.prepare_cached("SELECT account_id FROM web_admins ORDER BY account_id").db()?;
    let rows = stmt.query_map([], |r| Ok(AccountId(r.get(0)?))).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// Grants or takes the web admin flag; `NotFound` for an unknown account.
pub(crate) fn set_admin(conn: &Connection, account: AccountId, admin: bool) -> StoreResult<()> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?1)")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .db()?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    let sql = if admin {
        "INSERT INTO web_admins (account_id) VALUES (?1) ON CONFLICT (account_id) DO NOTHING"
    } else {
        "DELETE FROM web_admins WHERE account_id = ?1"
    };
    conn.prepare_cached(sql).db()?.execute([account.0]).db()?;
    Ok(())
}
