//! METADATA entries (RFC 5464) in PostgreSQL: the tables of schema version 8, the same rules as
//! `sqlite::metadata`. A write takes a transaction-scoped advisory lock per owner (one for the
//! installation's shared server entries) before it counts, so two writers cannot both pass a
//! limit.

use std::collections::{BTreeMap, HashMap};

use tokio_postgres::types::ToSql;

use super::{PgResult, Tx, owner_of};
use crate::StoreError;
use crate::metadata::{self, MetadataDepth, MetadataLimits, MetadataPlace, MetadataWrite};
use crate::restore::MetadataDump;
use crate::types::AccountId;

/// Advisory lock keys of metadata writes: this plus the owner's id (ids are below 2^31), and
/// this alone for the shared server entries. Apart from the migration lock's key.
const LOCK_BASE: i64 = 0x6d65_7461 << 32;

/// Where one entry's row lives (see `sqlite::metadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Group {
    /// `mailbox_metadata` (owner, mailbox id, account id or 0).
    Mailbox(i64, i64, i64),
    /// `account_metadata` (account id).
    Account(i64),
    /// `server_metadata`.
    Server,
}

impl Group {
    fn of(place: MetadataPlace, account: AccountId, entry: &str) -> Group {
        let private = metadata::is_private(entry);
        match place {
            MetadataPlace::Mailbox(m) => {
                Group::Mailbox(owner_of(m.0), m.0, if private { account.0 } else { 0 })
            }
            MetadataPlace::Server if private => Group::Account(account.0),
            MetadataPlace::Server => Group::Server,
        }
    }

    /// The table and the condition that selects the group, with its parameters from `$1`.
    fn scope(&self) -> (&'static str, &'static str, Vec<i64>) {
        match *self {
            Group::Mailbox(o, m, a) => {
                ("mailbox_metadata", "owner_id = $1 AND mailbox_id = $2 AND account_id = $3", vec![o, m, a])
            }
            Group::Account(a) => ("account_metadata", "owner_id = $1", vec![a]),
            Group::Server => ("server_metadata", "TRUE", vec![]),
        }
    }

    /// The owner whose total the group counts against; `None` for the shared server entries.
    fn owner(&self) -> Option<i64> {
        match *self {
            Group::Mailbox(o, ..) => Some(o),
            Group::Account(a) => Some(a),
            Group::Server => None,
        }
    }
}

/// The group's parameters, then `extra`, as tokio-postgres wants them.
fn params<'a>(keys: &'a [i64], extra: &'a [&'a (dyn ToSql + Sync)]) -> Vec<&'a (dyn ToSql + Sync)> {
    keys.iter().map(|k| k as &(dyn ToSql + Sync)).chain(extra.iter().copied()).collect()
}

async fn value(tx: &Tx<'_>, group: Group, name: &str) -> PgResult<Option<Vec<u8>>> {
    let (table, cond, keys) = group.scope();
    let n = keys.len() + 1;
    let sql = format!("SELECT value FROM {table} WHERE {cond} AND name = ${n}");
    let row = tx.query_opt(&sql, &params(&keys, &[&name])).await?;
    Ok(row.map(|r| r.get(0)))
}

async fn count(tx: &Tx<'_>, group: Group) -> PgResult<u64> {
    let (table, cond, keys) = group.scope();
    let sql = format!("SELECT count(*) FROM {table} WHERE {cond}");
    let n: i64 = tx.query_one(&sql, &params(&keys, &[])).await?.get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// [`crate::MailStore::metadata`].
pub(super) async fn read(
    tx: &Tx<'_>,
    place: MetadataPlace,
    account: AccountId,
    entries: &[String],
    depth: MetadataDepth,
) -> PgResult<Vec<(String, Vec<u8>)>> {
    let mut found = BTreeMap::new();
    for entry in entries {
        let group = Group::of(place, account, entry);
        if let Some(v) = value(tx, group, entry).await? {
            found.insert(entry.clone(), v);
        }
        if depth == MetadataDepth::Entry {
            continue;
        }
        let (low, high) = metadata::below(entry);
        let (table, cond, keys) = group.scope();
        let n = keys.len();
        let sql = format!(
            "SELECT name, value FROM {table} WHERE {cond} AND name > ${} AND name < ${} ORDER BY name",
            n + 1,
            n + 2
        );
        for row in tx.query(&sql, &params(&keys, &[&low, &high])).await? {
            let name: String = row.get(0);
            if metadata::reaches(entry, &name, depth) {
                found.insert(name, row.get(1));
            }
        }
    }
    Ok(found.into_iter().collect())
}

/// [`crate::MailStore::set_metadata`].
pub(super) async fn write(
    tx: &Tx<'_>,
    place: MetadataPlace,
    account: AccountId,
    entries: &[(String, Option<Vec<u8>>)],
    limits: MetadataLimits,
) -> PgResult<MetadataWrite> {
    // Lock every owner involved (ascending: no deadlock between two writers), then check that
    // a mailbox exists.
    let mut locks: Vec<i64> = entries
        .iter()
        .map(|(name, _)| Group::of(place, account, name).owner().map_or(LOCK_BASE, |o| LOCK_BASE + o))
        .collect();
    locks.sort_unstable();
    locks.dedup();
    for key in &locks {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[key]).await?;
    }
    if let MetadataPlace::Mailbox(m) = place
        && tx
            .query_opt("SELECT 1 FROM mailboxes WHERE owner_id = $1 AND id = $2", &[&owner_of(m.0), &m.0])
            .await?
            .is_none()
    {
        return Err(StoreError::NotFound.into());
    }

    let mut groups: Vec<(Group, u64, i64)> = Vec::new();
    let mut owners: Vec<(i64, i64)> = Vec::new();
    let mut last: HashMap<(Group, &str), bool> = HashMap::new();
    for (name, v) in entries {
        let group = Group::of(place, account, name);
        let exists = match last.get(&(group, name.as_str())) {
            Some(present) => *present,
            None => value(tx, group, name).await?.is_some(),
        };
        last.insert((group, name.as_str()), v.is_some());
        let delta: i64 = match (exists, v.is_some()) {
            (false, true) => 1,
            (true, false) => -1,
            _ => 0,
        };
        match groups.iter_mut().find(|(g, ..)| *g == group) {
            Some(g) => g.2 += delta,
            None => groups.push((group, count(tx, group).await?, delta)),
        }
        if let Some(owner) = group.owner() {
            match owners.iter_mut().find(|(o, _)| *o == owner) {
                Some(o) => o.1 += delta,
                None => owners.push((owner, delta)),
            }
        }
    }
    for (_, before, delta) in &groups {
        if metadata::too_many(*before, before.saturating_add_signed(*delta), limits.max_entries) {
            return Ok(MetadataWrite::TooMany);
        }
    }
    for (owner, delta) in &owners {
        let n: i64 = tx
            .query_one(
                "SELECT (SELECT count(*) FROM mailbox_metadata WHERE owner_id = $1)
                      + (SELECT count(*) FROM account_metadata WHERE owner_id = $1)",
                &[owner],
            )
            .await?
            .get(0);
        let before = u64::try_from(n).unwrap_or(0);
        if metadata::too_many(before, before.saturating_add_signed(*delta), limits.max_account_entries) {
            return Ok(MetadataWrite::TooMany);
        }
    }
    for (name, v) in entries {
        let group = Group::of(place, account, name);
        let (table, cond, keys) = group.scope();
        let n = keys.len();
        match v {
            Some(v) => {
                let (columns, conflict) = match group {
                    Group::Mailbox(..) => (
                        "owner_id, mailbox_id, account_id, name, value",
                        "owner_id, mailbox_id, account_id, name",
                    ),
                    Group::Account(_) => ("owner_id, name, value", "owner_id, name"),
                    Group::Server => ("name, value", "name"),
                };
                let placeholders: Vec<String> = (1..=n + 2).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "INSERT INTO {table} ({columns}) VALUES ({}) ON CONFLICT ({conflict}) DO UPDATE SET value = EXCLUDED.value",
                    placeholders.join(", ")
                );
                tx.execute(&sql, &params(&keys, &[name, v])).await?;
            }
            None => {
                let sql = format!("DELETE FROM {table} WHERE {cond} AND name = ${}", n + 1);
                tx.execute(&sql, &params(&keys, &[name])).await?;
            }
        }
    }
    Ok(MetadataWrite::Written)
}

/// Renaming INBOX copies its entries to the new mailbox (RFC 5464 §4.1).
pub(super) async fn copy_mailbox_entries(tx: &Tx<'_>, owner: i64, from: i64, to: i64) -> PgResult<()> {
    tx.execute(
        "INSERT INTO mailbox_metadata (owner_id, mailbox_id, account_id, name, value)
         SELECT owner_id, $3, account_id, name, value FROM mailbox_metadata WHERE owner_id = $1 AND mailbox_id = $2",
        &[&owner, &from, &to],
    )
    .await?;
    Ok(())
}

/// An account is deleted: its private entries on other owners' mailboxes go too.
pub(super) async fn forget_account(tx: &Tx<'_>, account: AccountId) -> PgResult<()> {
    tx.execute("DELETE FROM mailbox_metadata WHERE account_id = $1", &[&account.0]).await?;
    Ok(())
}

/// [`crate::RestoreStore::dump_mailbox_metadata`].
pub(super) async fn dump_mailbox(tx: &Tx<'_>, mailbox: crate::MailboxId) -> PgResult<Vec<MetadataDump>> {
    let owner = owner_of(mailbox.0);
    if tx
        .query_opt("SELECT 1 FROM mailboxes WHERE owner_id = $1 AND id = $2", &[&owner, &mailbox.0])
        .await?
        .is_none()
    {
        return Err(StoreError::NotFound.into());
    }
    let rows = tx
        .query(
            "SELECT mm.account_id, a.name, mm.name, mm.value FROM mailbox_metadata mm
             LEFT JOIN accounts a ON a.id = mm.account_id
             WHERE mm.owner_id = $1 AND mm.mailbox_id = $2 AND (mm.account_id = 0 OR a.id IS NOT NULL)
             ORDER BY mm.account_id, mm.name",
            &[&owner, &mailbox.0],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let account_id: i64 = r.get(0);
            MetadataDump {
                account: if account_id == 0 { None } else { r.get(1) },
                entry: r.get(2),
                value: r.get(3),
            }
        })
        .collect())
}

/// [`crate::RestoreStore::dump_account_metadata`].
pub(super) async fn dump_account(tx: &Tx<'_>, account: AccountId) -> PgResult<Vec<MetadataDump>> {
    let rows = tx
        .query("SELECT name, value FROM account_metadata WHERE owner_id = $1 ORDER BY name", &[&account.0])
        .await?;
    Ok(rows.iter().map(|r| MetadataDump { account: None, entry: r.get(0), value: r.get(1) }).collect())
}
