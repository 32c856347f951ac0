//! Per-account `\Seen` in shared mailboxes (issue 13): the mailbox's seen mode and the
//! `private_seen` rows. SQL only; which account reads which `\Seen` is the session's rule.
//!
//! A row exists per (message, viewer) whose private `\Seen` was ever set; unsetting keeps the
//! row with `seen = 0` and the modseq of the unset, so "what changed since X" is exact. A
//! change takes a modseq from the mailbox row, so HIGHESTMODSEQ moves for everybody and stays
//! monotonic. The rows of an expunged message go with it (trigger `messages_forget_private_seen`);
//! COPY and MOVE do not carry them (the copy is a new message).

use rusqlite::{Connection, OptionalExtension};

use super::conn::DbResult;
use super::rows::{MailboxRow, account_exists, modseq_of, sql_modseq};
use super::writer::Effects;
use crate::acl::SeenMode;
use crate::types::{AccountId, MailboxId, ModSeq, Uid, UidSet};
use crate::{StoreError, StoreResult};

fn mode_code(mode: SeenMode) -> i64 {
    match mode {
        SeenMode::Shared => 0,
        SeenMode::Private => 1,
    }
}

/// How `\Seen` is kept in a mailbox; [`StoreError::NotFound`] when there is none.
pub(crate) fn seen_mode(conn: &Connection, mailbox: MailboxId) -> StoreResult<SeenMode> {
    let code: i64 = conn
        .prepare_cached("SELECT seen_mode FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([mailbox.0], |r| r.get(0))
        .optional()
        .db()?
        .ok_or(StoreError::NotFound)?;
    Ok(if code == 0 { SeenMode::Shared } else { SeenMode::Private })
}

/// Changes the seen mode. Sessions with the mailbox open re-read it when woken (it changes
/// what `\Seen` means for them, as an ACL change does what they may do).
pub(crate) fn set_seen_mode(
    conn: &Connection,
    fx: &mut Effects,
    mailbox: MailboxId,
    mode: SeenMode,
) -> StoreResult<()> {
    let n = conn
        .prepare_cached("UPDATE mailboxes SET seen_mode = ?2 WHERE id = ?1 AND seen_mode <> ?2")
        .db()?
        .execute(rusqlite::params![mailbox.0, mode_code(mode)])
        .db()?;
    if n > 0 {
        fx.acl_changed(Some(mailbox));
        return Ok(());
    }
    // Unchanged, or no such mailbox.
    seen_mode(conn, mailbox).map(|_| ())
}

/// Fails with [`StoreError::NotFound`] unless both exist.
fn check_exist(conn: &Connection, mailbox: MailboxId, account: AccountId) -> StoreResult<()> {
    let found = conn
        .prepare_cached("SELECT 1 FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([mailbox.0], |_| Ok(()))
        .optional()
        .db()?;
    if found.is_none() || !account_exists(conn, account)? {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The existing messages `account` has privately seen, as a set.
pub(crate) fn private_seen(conn: &Connection, mailbox: MailboxId, account: AccountId) -> StoreResult<UidSet> {
    check_exist(conn, mailbox, account)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT uid FROM private_seen INDEXED BY private_seen_by_viewer
             WHERE account_id = ?1 AND mailbox_id = ?2 AND seen = 1 ORDER BY uid",
        )
        .db()?;
    let rows = stmt.query_map(rusqlite::params![account.0, mailbox.0], |r| r.get::<_, Uid>(0)).db()?;
    let mut out = UidSet::new();
    for uid in rows {
        out.push_ascending(uid.db()?);
    }
    Ok(out)
}

/// `account`'s private `\Seen` changes above `since`, ascending by UID.
pub(crate) fn private_seen_since(
    conn: &Connection,
    mailbox: MailboxId,
    account: AccountId,
    since: ModSeq,
) -> StoreResult<Vec<(Uid, bool, ModSeq)>> {
    check_exist(conn, mailbox, account)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT uid, seen, modseq FROM private_seen INDEXED BY private_seen_by_viewer
             WHERE account_id = ?1 AND mailbox_id = ?2 AND modseq > ?3 ORDER BY uid",
        )
        .db()?;
    let rows = stmt
        .query_map(rusqlite::params![account.0, mailbox.0, sql_modseq(since)], |r| {
            Ok((r.get::<_, Uid>(0)?, r.get::<_, bool>(1)?, modseq_of(r.get(2)?)))
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// Sets or clears `account`'s private `\Seen` on the existing messages of `uids`; the messages
/// whose state changed share one new modseq of the mailbox.
pub(crate) fn store_private_seen(
    conn: &Connection,
    fx: &mut Effects,
    mailbox: MailboxId,
    account: AccountId,
    uids: &UidSet,
    seen: bool,
) -> StoreResult<Vec<(Uid, ModSeq)>> {
    let mut mb = MailboxRow::load(conn, mailbox)?;
    if !account_exists(conn, account)? {
        return Err(StoreError::NotFound);
    }
    // The existing messages of the set with the viewer's current state (no row: unseen).
    let mut current = conn
        .prepare_cached(
            "SELECT m.uid, coalesce(p.seen, 0) FROM messages m
             LEFT JOIN private_seen p ON p.mailbox_id = m.mailbox_id AND p.uid = m.uid AND p.account_id = ?2
             WHERE m.mailbox_id = ?1 AND m.uid BETWEEN ?3 AND ?4 ORDER BY m.uid",
        )
        .db()?;
    let mut changing: Vec<Uid> = Vec::new();
    for range in uids.ranges() {
        let rows = current
            .query_map(rusqlite::params![mailbox.0, account.0, range.start(), range.end()], |r| {
                Ok((r.get::<_, Uid>(0)?, r.get::<_, bool>(1)?))
            })
            .db()?;
        for row in rows {
            let (uid, was) = row.db()?;
            if was != seen {
                changing.push(uid);
            }
        }
    }
    if changing.is_empty() {
        return Ok(Vec::new());
    }
    let modseq = mb.bump_modseq()?;
    let mut write = conn
        .prepare_cached(
            "INSERT INTO private_seen (mailbox_id, uid, account_id, seen, modseq) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (mailbox_id, uid, account_id) DO UPDATE SET seen = excluded.seen,
                                                                     modseq = excluded.modseq",
        )
        .db()?;
    for uid in &changing {
        write.execute(rusqlite::params![mailbox.0, uid, account.0, seen, sql_modseq(modseq)]).db()?;
    }
    mb.save(conn)?;
    fx.changed(mailbox, modseq);
    Ok(changing.into_iter().map(|uid| (uid, modseq)).collect())
}
