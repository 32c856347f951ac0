//! METADATA entries (RFC 5464) in SQLite: the three tables of schema version 13. SQL only; which
//! names a user may read or write is the session's rule, the limits' arithmetic is
//! [`crate::metadata`]'s.

use rusqlite::{Connection, OptionalExtension, params};

use super::conn::DbResult;
use crate::metadata::{self, MetadataDepth, MetadataLimits, MetadataPlace, MetadataWrite};
use crate::restore::MetadataDump;
use crate::types::AccountId;
use crate::{StoreError, StoreResult};

/// Where one entry's row lives: the table, and the key columns' values before `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Group {
    /// `mailbox_metadata` (mailbox id, account id or 0).
    Mailbox(i64, i64),
    /// `account_metadata` (account id).
    Account(i64),
    /// `server_metadata`.
    Server,
}

impl Group {
    fn of(place: MetadataPlace, account: AccountId, entry: &str) -> Group {
        let private = metadata::is_private(entry);
        match place {
            MetadataPlace::Mailbox(m) => Group::Mailbox(m.0, if private { account.0 } else { 0 }),
            MetadataPlace::Server if private => Group::Account(account.0),
            MetadataPlace::Server => Group::Server,
        }
    }

    /// `SELECT value` of one name.
    fn value(self, conn: &Connection, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let row = match self {
            Group::Mailbox(m, a) => conn
                .prepare_cached(
                    "SELECT value FROM mailbox_metadata WHERE mailbox_id = ?1 AND account_id = ?2 AND name = ?3",
                )
                .db()?
                .query_row(params![m, a, name], |r| r.get(0))
                .optional(),
            Group::Account(a) => conn
                .prepare_cached("SELECT value FROM account_metadata WHERE account_id = ?1 AND name = ?2")
                .db()?
                .query_row(params![a, name], |r| r.get(0))
                .optional(),
            Group::Server => conn
                .prepare_cached("SELECT value FROM server_metadata WHERE name = ?1")
                .db()?
                .query_row([name], |r| r.get(0))
                .optional(),
        };
        row.db()
    }

    /// Names and values strictly between `low` and `high`.
    fn range(self, conn: &Connection, low: &str, high: &str) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let map = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
        let rows = match self {
            Group::Mailbox(m, a) => conn
                .prepare_cached(
                    "SELECT name, value FROM mailbox_metadata
                     WHERE mailbox_id = ?1 AND account_id = ?2 AND name > ?3 AND name < ?4 ORDER BY name",
                )
                .db()?
                .query_map(params![m, a, low, high], map)
                .db()?
                .collect::<Result<Vec<_>, _>>(),
            Group::Account(a) => conn
                .prepare_cached(
                    "SELECT name, value FROM account_metadata
                     WHERE account_id = ?1 AND name > ?2 AND name < ?3 ORDER BY name",
                )
                .db()?
                .query_map(params![a, low, high], map)
                .db()?
                .collect::<Result<Vec<_>, _>>(),
            Group::Server => conn
                .prepare_cached(
                    "SELECT name, value FROM server_metadata WHERE name > ?1 AND name < ?2 ORDER BY name",
                )
                .db()?
                .query_map(params![low, high], map)
                .db()?
                .collect::<Result<Vec<_>, _>>(),
        };
        rows.db()
    }

    /// Entries in the group.
    fn count(self, conn: &Connection) -> StoreResult<u64> {
        let n: i64 = match self {
            Group::Mailbox(m, a) => conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM mailbox_metadata WHERE mailbox_id = ?1 AND account_id = ?2",
                )
                .db()?
                .query_row(params![m, a], |r| r.get(0)),
            Group::Account(a) => conn
                .prepare_cached("SELECT COUNT(*) FROM account_metadata WHERE account_id = ?1")
                .db()?
                .query_row([a], |r| r.get(0)),
            Group::Server => {
                conn.prepare_cached("SELECT COUNT(*) FROM server_metadata").db()?.query_row([], |r| r.get(0))
            }
        }
        .db()?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Sets or removes one entry.
    fn write(self, conn: &Connection, name: &str, value: Option<&[u8]>) -> StoreResult<()> {
        match (self, value) {
            (Group::Mailbox(m, a), Some(v)) => conn
                .prepare_cached(
                    "INSERT INTO mailbox_metadata (mailbox_id, account_id, name, value) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (mailbox_id, account_id, name) DO UPDATE SET value = excluded.value",
                )
                .db()?
                .execute(params![m, a, name, v]),
            (Group::Mailbox(m, a), None) => conn
                .prepare_cached(
                    "DELETE FROM mailbox_metadata WHERE mailbox_id = ?1 AND account_id = ?2 AND name = ?3",
                )
                .db()?
                .execute(params![m, a, name]),
            (Group::Account(a), Some(v)) => conn
                .prepare_cached(
                    "INSERT INTO account_metadata (account_id, name, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (account_id, name) DO UPDATE SET value = excluded.value",
                )
                .db()?
                .execute(params![a, name, v]),
            (Group::Account(a), None) => conn
                .prepare_cached("DELETE FROM account_metadata WHERE account_id = ?1 AND name = ?2")
                .db()?
                .execute(params![a, name]),
            (Group::Server, Some(v)) => conn
                .prepare_cached(
                    "INSERT INTO server_metadata (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .db()?
                .execute(params![name, v]),
            (Group::Server, None) => {
                conn.prepare_cached("DELETE FROM server_metadata WHERE name = ?1").db()?.execute([name])
            }
        }
        .db()?;
        Ok(())
    }

    /// The account whose total the group counts against (the mailbox's owner, or the account
    /// of private server entries); `None` for the installation's shared entries.
    fn owner(self, conn: &Connection) -> StoreResult<Option<i64>> {
        match self {
            Group::Mailbox(m, _) => conn
                .prepare_cached("SELECT account_id FROM mailboxes WHERE id = ?1")
                .db()?
                .query_row([m], |r| r.get(0))
                .optional()
                .db()?
                .ok_or(StoreError::NotFound)
                .map(Some),
            Group::Account(a) => Ok(Some(a)),
            Group::Server => Ok(None),
        }
    }
}

/// Entries an account owns in all (see [`MetadataLimits::max_account_entries`]).
fn account_total(conn: &Connection, owner: i64) -> StoreResult<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM mailbox_metadata mm JOIN mailboxes m ON m.id = mm.mailbox_id
                     WHERE m.account_id = ?1)
                  + (SELECT COUNT(*) FROM account_metadata WHERE account_id = ?1)",
        )
        .db()?
        .query_row([owner], |r| r.get(0))
        .db()?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// [`crate::MailStore::metadata`].
pub(crate) fn read(
    conn: &Connection,
    place: MetadataPlace,
    account: AccountId,
    entries: &[String],
    depth: MetadataDepth,
) -> StoreResult<Vec<(String, Vec<u8>)>> {
    let mut found = std::collections::BTreeMap::new();
    for entry in entries {
        let group = Group::of(place, account, entry);
        if let Some(value) = group.value(conn, entry)? {
            found.insert(entry.clone(), value);
        }
        if depth == MetadataDepth::Entry {
            continue;
        }
        let (low, high) = metadata::below(entry);
        for (name, value) in group.range(conn, &low, &high)? {
            if metadata::reaches(entry, &name, depth) {
                found.insert(name, value);
            }
        }
    }
    Ok(found.into_iter().collect())
}

/// [`crate::MailStore::set_metadata`]. Runs as one writer job: nobody writes in between, so the
/// counts read first are the counts the writes change.
pub(crate) fn write(
    conn: &Connection,
    place: MetadataPlace,
    account: AccountId,
    entries: &[(String, Option<Vec<u8>>)],
    limits: MetadataLimits,
) -> StoreResult<MetadataWrite> {
    // What the writes do to each group's count and each owner's total.
    let mut groups: Vec<(Group, u64, i64)> = Vec::new();
    let mut owners: Vec<(i64, i64)> = Vec::new();
    let mut last: std::collections::HashMap<(Group, &str), bool> = std::collections::HashMap::new();
    for (name, value) in entries {
        let group = Group::of(place, account, name);
        // A name given twice: the last value counts, as if written in order.
        let exists = match last.get(&(group, name.as_str())) {
            Some(present) => *present,
            None => group.value(conn, name)?.is_some(),
        };
        last.insert((group, name.as_str()), value.is_some());
        let delta: i64 = match (exists, value.is_some()) {
            (false, true) => 1,
            (true, false) => -1,
            _ => 0,
        };
        let owner = group.owner(conn)?;
        match groups.iter_mut().find(|(g, ..)| *g == group) {
            Some(g) => g.2 += delta,
            None => groups.push((group, group.count(conn)?, delta)),
        }
        if let Some(owner) = owner {
            match owners.iter_mut().find(|(o, _)| *o == owner) {
                Some(o) => o.1 += delta,
                None => owners.push((owner, delta)),
            }
        }
    }
    for (_, before, delta) in &groups {
        let after = before.saturating_add_signed(*delta);
        if metadata::too_many(*before, after, limits.max_entries) {
            return Ok(MetadataWrite::TooMany);
        }
    }
    for (owner, delta) in &owners {
        let before = account_total(conn, *owner)?;
        if metadata::too_many(before, before.saturating_add_signed(*delta), limits.max_account_entries) {
            return Ok(MetadataWrite::TooMany);
        }
    }
    for (name, value) in entries {
        Group::of(place, account, name).write(conn, name, value.as_deref())?;
    }
    Ok(MetadataWrite::Written)
}

/// Renaming INBOX makes a new mailbox of its messages; its entries are copied there and stay
/// on INBOX too (RFC 5464 §4.1).
pub(crate) fn copy_mailbox_entries(conn: &Connection, from: i64, to: i64) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO mailbox_metadata (mailbox_id, account_id, name, value)
         SELECT ?2, account_id, name, value FROM mailbox_metadata WHERE mailbox_id = ?1",
        params![from, to],
    )
    .db()?;
    Ok(())
}

/// [`crate::RestoreStore::dump_mailbox_metadata`].
pub(crate) fn dump_mailbox(conn: &Connection, mailbox: crate::MailboxId) -> StoreResult<Vec<MetadataDump>> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([mailbox.0], |_| Ok(()))
        .optional()
        .db()?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT mm.account_id, a.name, mm.name, mm.value FROM mailbox_metadata mm
             LEFT JOIN accounts a ON a.id = mm.account_id
             WHERE mm.mailbox_id = ?1 AND (mm.account_id = 0 OR a.id IS NOT NULL)
             ORDER BY mm.account_id, mm.name",
        )
        .db()?;
    let rows = stmt
        .query_map([mailbox.0], |r| {
            let account_id: i64 = r.get(0)?;
            let name: Option<String> = r.get(1)?;
            Ok(MetadataDump {
                account: if account_id == 0 { None } else { name },
                entry: r.get(2)?,
                value: r.get(3)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// [`crate::RestoreStore::dump_account_metadata`].
pub(crate) fn dump_account(conn: &Connection, account: AccountId) -> StoreResult<Vec<MetadataDump>> {
    let mut stmt = conn
        .prepare_cached("SELECT name, value FROM account_metadata WHERE account_id = ?1 ORDER BY name")
        .db()?;
    let rows = stmt
        .query_map([account.0], |r| Ok(MetadataDump { account: None, entry: r.get(0)?, value: r.get(1)? }))
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}
