//! Teams, groups and ACLs (RFC 4314) on PostgreSQL: the rules of `sqlite::shares`, on tables
//! keyed by the owner first.
//!
//! The `acl` rows are the whole truth: the "shared with me" index is `acl_by_identifier`, an
//! index on those rows by `lower(identifier)` (grantee → owner, mailbox), so it changes in
//! the transaction of every ACL change and cannot drift; [`shared_with`] asks it for the
//! viewer's name, groups, `anyone` and `authenticated`, never scanning all mailboxes. An
//! account grantee is stored by its canonical name; identifiers compare case-insensitively (an
//! entry replaces one that differs only in case).
//!
//! Rights are stored as their RFC 4314 letters (`lrswi`). Writers that change a mailbox's
//! entries lock its row first (`FOR UPDATE`); membership changes lock the team's account row,
//! which creating a team mailbox (and so copying the memberships onto it) also locks.

use std::collections::HashMap;

use super::mail::{subscribe, unsubscribe};
use super::{Effects, PgResult, Tx, is_unique_violation, owner_of};
use crate::StoreError;
use crate::acl::{
    AccountKind, AclEntry, Grantee, Identifier, Right, Rights, SharedMailbox, TeamMember, Viewer,
    effective_rights, namespace,
};
use crate::sqlite::mailboxes::{
    TEAM_MAILBOXES, TEAM_PASSWORD_HASH, account_key, check_account_name, check_team_address, kind_of,
};
use crate::sqlite::rows::unix_now;
use crate::sqlite::shares::check_group;
use crate::types::{Account, AccountId, MailboxId, MailboxInfo, MailboxName, SpecialUse};

/// A mailbox with what its shown name is made of.
struct Owned {
    owner: AccountId,
    owner_name: String,
    kind: AccountKind,
    name: String,
    special_use: Option<SpecialUse>,
}

impl Owned {
    /// The name other accounts see it under.
    fn shown(&self) -> String {
        namespace::shown_name(self.kind, &self.owner_name, &self.name)
    }
}

/// Loads a mailbox with its owner (its row `FOR UPDATE` when `lock`); `NotFound` without one.
async fn owned(tx: &Tx<'_>, mailbox: MailboxId, lock: bool) -> PgResult<Owned> {
    let sql = format!(
        "SELECT m.owner_id, a.name, a.kind, m.name, m.special_use
         FROM mailboxes m JOIN accounts a ON a.id = m.owner_id
         WHERE m.owner_id = $1 AND m.id = $2{}",
        if lock { " FOR UPDATE OF m" } else { "" }
    );
    let row = tx.query_opt(&sql, &[&owner_of(mailbox.0), &mailbox.0]).await?.ok_or(StoreError::NotFound)?;
    Ok(Owned {
        owner: AccountId(row.get(0)),
        owner_name: row.get(1),
        kind: kind_of(row.get(2)),
        name: row.get(3),
        special_use: row.get::<_, Option<String>>(4).as_deref().and_then(SpecialUse::parse),
    })
}

/// An account as [`effective_rights`] sees it: canonical name and groups.
struct Member {
    id: AccountId,
    name: String,
    kind: AccountKind,
    groups: Vec<String>,
}

impl Member {
    fn rights(&self, owner: AccountId, entries: &[AclEntry]) -> Rights {
        effective_rights(owner, entries, &Viewer { account: self.id, name: &self.name, groups: &self.groups })
    }

    fn identifier(&self) -> Identifier {
        Identifier { grantee: Grantee::Account(self.name.clone()), negative: false }
    }
}

async fn member_where(
    tx: &Tx<'_>,
    by_name: bool,
    id: i64,
    name: &str,
    lock: bool,
) -> PgResult<Option<Member>> {
    let sql = format!(
        "SELECT id, name, kind FROM accounts WHERE {}{}",
        if by_name { "name_key = $1" } else { "id = $1" },
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = if by_name {
        tx.query_opt(&sql, &[&account_key(name)]).await?
    } else {
        tx.query_opt(&sql, &[&id]).await?
    };
    let Some(row) = row else { return Ok(None) };
    let id = AccountId(row.get(0));
    Ok(Some(Member { id, name: row.get(1), kind: kind_of(row.get(2)), groups: groups_of(tx, id).await? }))
}

async fn member(tx: &Tx<'_>, account: AccountId) -> PgResult<Option<Member>> {
    member_where(tx, false, account.0, "", false).await
}

async fn member_by_name(tx: &Tx<'_>, name: &str) -> PgResult<Option<Member>> {
    member_where(tx, true, 0, name, false).await
}

/// Parses stored `(identifier, rights)`; an unreadable row is skipped with a warning.
fn entry_of(mailbox: i64, text: &str, letters: &str) -> Option<AclEntry> {
    match (Identifier::parse(text), Rights::parse(letters)) {
        (Some(identifier), Ok(rights)) => Some(AclEntry { identifier, rights }),
        _ => {
            tracing::warn!(mailbox, identifier = %text, rights = %letters, "unreadable ACL row");
            None
        }
    }
}

/// The entries of a mailbox, by identifier.
async fn entries(tx: &Tx<'_>, mailbox: MailboxId) -> PgResult<Vec<AclEntry>> {
    let rows = tx
        .query(
            "SELECT identifier, rights FROM acl WHERE owner_id = $1 AND mailbox_id = $2
             ORDER BY lower(identifier) COLLATE \"C\", identifier COLLATE \"C\"",
            &[&owner_of(mailbox.0), &mailbox.0],
        )
        .await?;
    Ok(rows.iter().filter_map(|r| entry_of(mailbox.0, r.get(0), r.get(1))).collect())
}

/// Writes (replacing one of the same identifier in any case) or, for empty rights, deletes
/// one entry.
async fn put_entry(tx: &Tx<'_>, mailbox: MailboxId, identifier: &Identifier, rights: Rights) -> PgResult<()> {
    let (owner, text) = (owner_of(mailbox.0), identifier.to_string());
    tx.execute(
        "DELETE FROM acl WHERE owner_id = $1 AND mailbox_id = $2 AND lower(identifier) = lower($3)",
        &[&owner, &mailbox.0, &text],
    )
    .await?;
    if !rights.is_empty() {
        tx.execute(
            "INSERT INTO acl (owner_id, mailbox_id, identifier, rights) VALUES ($1, $2, $3, $4)",
            &[&owner, &mailbox.0, &text, &rights.to_string()],
        )
        .await?;
    }
    Ok(())
}

/// Subscribes `account` to `shown` when it gained `l` (or, with `fresh`, simply has it),
/// unsubscribes when it lost `l`.
async fn follow_lookup(
    tx: &Tx<'_>,
    account: AccountId,
    shown: &str,
    before: Rights,
    after: Rights,
    fresh: bool,
) -> PgResult<()> {
    let (had, has) = (before.contains(Right::Lookup), after.contains(Right::Lookup));
    if has && (!had || fresh) {
        subscribe(tx, account, shown).await?;
    } else if had && !has {
        unsubscribe(tx, account, shown).await?;
    }
    Ok(())
}

// --- ACL --------------------------------------------------------------------------------------

pub(super) async fn acl(tx: &Tx<'_>, mailbox: MailboxId) -> PgResult<Vec<AclEntry>> {
    owned(tx, mailbox, false).await?;
    entries(tx, mailbox).await
}

pub(super) async fn set_acl(
    tx: &Tx<'_>,
    fx: &mut Effects,
    mailbox: MailboxId,
    identifier: &Identifier,
    rights: Option<Rights>,
) -> PgResult<()> {
    let mb = owned(tx, mailbox, true).await?;
    let (identifier, grantee) = match &identifier.grantee {
        Grantee::Account(name) => {
            let m = member_by_name(tx, name).await?.ok_or(StoreError::NotFound)?;
            (Identifier { grantee: Grantee::Account(m.name.clone()), negative: identifier.negative }, Some(m))
        }
        Grantee::Group(group) => {
            check_group(group)?;
            (identifier.clone(), None)
        }
        Grantee::Authenticated | Grantee::Anyone => (identifier.clone(), None),
    };
    // The owner's rights are implicit; an entry naming it changes none of its subscriptions.
    let grantee = grantee.filter(|m| m.id != mb.owner);
    let before = match &grantee {
        Some(m) => m.rights(mb.owner, &entries(tx, mailbox).await?),
        None => Rights::NONE,
    };
    put_entry(tx, mailbox, &identifier, rights.unwrap_or(Rights::NONE)).await?;
    if let Some(m) = &grantee {
        let after = m.rights(mb.owner, &entries(tx, mailbox).await?);
        follow_lookup(tx, m.id, &mb.shown(), before, after, false).await?;
    }
    fx.acl_changed(Some(mailbox));
    Ok(())
}

pub(super) async fn my_rights(tx: &Tx<'_>, mailbox: MailboxId, account: AccountId) -> PgResult<Rights> {
    let mb = owned(tx, mailbox, false).await?;
    let viewer = member(tx, account).await?.ok_or(StoreError::NotFound)?;
    Ok(viewer.rights(mb.owner, &entries(tx, mailbox).await?))
}

/// The other accounts' mailboxes `account` has a right on. Candidates come from
/// `acl_by_identifier` (its name, its groups, `authenticated`, `anyone`: negative entries
/// alone grant nothing); their entries, owners and the viewer's subscriptions are then read
/// in one statement each.
pub(super) async fn shared_with(tx: &Tx<'_>, account: AccountId) -> PgResult<Vec<SharedMailbox>> {
    let me = member(tx, account).await?.ok_or(StoreError::NotFound)?;
    let mut keys = vec![me.name.to_lowercase(), "anyone".to_owned(), "authenticated".to_owned()];
    keys.extend(me.groups.iter().map(|g| format!("${}", g.to_lowercase())));
    let rows = tx
        .query(
            "WITH c AS (SELECT DISTINCT owner_id, mailbox_id FROM acl
                        WHERE lower(identifier) = ANY($1) AND owner_id <> $2)
             SELECT m.owner_id, a.name, a.kind, m.id, m.name, m.special_use
             FROM c JOIN mailboxes m ON m.owner_id = c.owner_id AND m.id = c.mailbox_id
                    JOIN accounts a ON a.id = m.owner_id",
            &[&keys, &account.0],
        )
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let candidates: Vec<(MailboxId, Owned)> = rows
        .iter()
        .map(|r| {
            let owned = Owned {
                owner: AccountId(r.get(0)),
                owner_name: r.get(1),
                kind: kind_of(r.get(2)),
                name: r.get(4),
                special_use: r.get::<_, Option<String>>(5).as_deref().and_then(SpecialUse::parse),
            };
            (MailboxId(r.get(3)), owned)
        })
        .collect();
    let (owners, ids): (Vec<i64>, Vec<i64>) = candidates.iter().map(|(id, o)| (o.owner.0, id.0)).unzip();
    let mut by_mailbox: HashMap<i64, Vec<AclEntry>> = HashMap::new();
    for r in tx
        .query(
            "SELECT a.mailbox_id, a.identifier, a.rights
             FROM unnest($1::bigint[], $2::bigint[]) AS c(o, m)
             JOIN acl a ON a.owner_id = c.o AND a.mailbox_id = c.m",
            &[&owners, &ids],
        )
        .await?
    {
        let id: i64 = r.get(0);
        if let Some(e) = entry_of(id, r.get(1), r.get(2)) {
            by_mailbox.entry(id).or_default().push(e);
        }
    }
    let shown: Vec<String> = candidates.iter().map(|(_, o)| o.shown()).collect();
    let subscribed: std::collections::HashSet<String> = tx
        .query("SELECT name FROM subscriptions WHERE owner_id = $1 AND name = ANY($2)", &[&account.0, &shown])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for ((id, mb), shown) in candidates.into_iter().zip(shown) {
        let rights = me.rights(mb.owner, by_mailbox.get(&id.0).map_or(&[][..], Vec::as_slice));
        if rights.is_empty() {
            continue;
        }
        out.push(SharedMailbox {
            owner: mb.owner,
            owner_name: mb.owner_name,
            owner_kind: mb.kind,
            mailbox: MailboxInfo {
                id,
                name: mb.name,
                special_use: mb.special_use,
                subscribed: subscribed.contains(&shown),
            },
            rights,
        });
    }
    out.sort_by(|a, b| (&a.owner_name, &a.mailbox.name).cmp(&(&b.owner_name, &b.mailbox.name)));
    Ok(out)
}

/// The ACL of a mailbox just made (CREATE, RENAME INBOX): a copy of its nearest existing
/// superior's entries (RFC 4314 §4), plus, in a team, the entry of every member the copy does
/// not name. Account grantees that can look it up are subscribed to it. The caller holds the
/// owner's account row.
pub(crate) async fn inherit_acl(
    tx: &Tx<'_>,
    fx: &mut Effects,
    owner: AccountId,
    mailbox: MailboxId,
    name: &MailboxName,
) -> PgResult<()> {
    let ancestors: Vec<String> = name.ancestors().map(|a| a.as_str().to_owned()).collect();
    if !ancestors.is_empty() {
        tx.execute(
            "INSERT INTO acl (owner_id, mailbox_id, identifier, rights)
             SELECT owner_id, $2, identifier, rights FROM acl
             WHERE owner_id = $1 AND mailbox_id = (
                 SELECT id FROM mailboxes WHERE owner_id = $1 AND name = ANY($3)
                 ORDER BY length(name) DESC LIMIT 1)",
            &[&owner.0, &mailbox.0, &ancestors],
        )
        .await?;
    }
    // Users are no team: no rows, one probe of the primary key's prefix.
    tx.execute(
        "INSERT INTO acl (owner_id, mailbox_id, identifier, rights)
         SELECT $1, $2, a.name, t.rights FROM team_members t JOIN accounts a ON a.id = t.member_id
         WHERE t.owner_id = $1 AND t.rights <> ''
           AND NOT EXISTS (SELECT 1 FROM acl x WHERE x.owner_id = $1 AND x.mailbox_id = $2
                                                 AND lower(x.identifier) = lower(a.name))",
        &[&owner.0, &mailbox.0],
    )
    .await?;
    let list = entries(tx, mailbox).await?;
    if list.is_empty() {
        return Ok(());
    }
    let shown = owned(tx, mailbox, false).await?.shown();
    for entry in &list {
        let Grantee::Account(grantee) = &entry.identifier.grantee else { continue };
        if entry.identifier.negative {
            continue;
        }
        let Some(m) = member_by_name(tx, grantee).await? else { continue };
        if m.id != owner && m.rights(owner, &list).contains(Right::Lookup) {
            subscribe(tx, m.id, &shown).await?;
        }
    }
    fx.acl_changed(Some(mailbox));
    Ok(())
}

/// Moves the auto-subscriptions of account grantees along with renamed mailboxes of `owner`
/// (`moves`: mailbox, old name, new name).
pub(crate) async fn rename_grantee_subscriptions(
    tx: &Tx<'_>,
    owner: AccountId,
    moves: &[(MailboxId, String, String)],
) -> PgResult<()> {
    let Some(o) = member(tx, owner).await? else { return Ok(()) };
    for (mailbox, old, new) in moves {
        let (old, new) =
            (namespace::shown_name(o.kind, &o.name, old), namespace::shown_name(o.kind, &o.name, new));
        for entry in entries(tx, *mailbox).await? {
            let Grantee::Account(grantee) = &entry.identifier.grantee else { continue };
            if entry.identifier.negative {
                continue;
            }
            let Some(m) = member_by_name(tx, grantee).await? else { continue };
            if m.id != owner && unsubscribe(tx, m.id, &old).await? > 0 {
                subscribe(tx, m.id, &new).await?;
            }
        }
    }
    Ok(())
}

/// Removes everything that names an account about to be deleted: its entries (`name` and
/// `-name`, found through `acl_by_identifier`), its memberships of teams, its private `\Seen`
/// rows in other accounts' mailboxes. Its own rows (groups, the team's members) go with the
/// account by cascade.
pub(crate) async fn forget_account(tx: &Tx<'_>, fx: &mut Effects, account: AccountId) -> PgResult<()> {
    let Some(m) = member(tx, account).await? else { return Ok(()) };
    let keys = vec![m.name.to_lowercase(), format!("-{}", m.name.to_lowercase())];
    let affected =
        tx.query("DELETE FROM acl WHERE lower(identifier) = ANY($1) RETURNING mailbox_id", &[&keys]).await?;
    let mut ids: Vec<i64> = affected.iter().map(|r| r.get(0)).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        fx.acl_changed(Some(MailboxId(id)));
    }
    let memberships = tx.execute("DELETE FROM team_members WHERE member_id = $1", &[&account.0]).await?
        + tx.execute("DELETE FROM team_members WHERE owner_id = $1", &[&account.0]).await?
        + tx.execute("DELETE FROM group_members WHERE owner_id = $1", &[&account.0]).await?;
    tx.execute("DELETE FROM private_seen WHERE account_id = $1", &[&account.0]).await?;
    if memberships > 0 {
        fx.acl_changed(None);
    }
    Ok(())
}

// --- teams and groups -------------------------------------------------------------------------

pub(super) async fn create_team(tx: &Tx<'_>, name: &str, address: Option<&str>) -> PgResult<AccountId> {
    check_account_name(name)?;
    if let Some(address) = address {
        check_team_address(address)?;
    }
    let inserted = tx
        .query_one(
            "INSERT INTO accounts (name, name_key, password_hash, created, kind, address)
             VALUES ($1, $2, $3, $4, 1, $5) RETURNING id",
            &[&name, &account_key(name), &TEAM_PASSWORD_HASH, &unix_now(), &address],
        )
        .await;
    let team = match inserted {
        Ok(row) => AccountId(row.get(0)),
        Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists.into()),
        Err(e) => return Err(e.into()),
    };
    tx.execute("INSERT INTO quota (owner_id) VALUES ($1)", &[&team.0]).await?;
    for (mailbox, special_use) in TEAM_MAILBOXES {
        super::mail::insert_mailbox(tx, team, mailbox, special_use).await?;
    }
    Ok(team)
}

const ACCOUNT_COLUMNS: &str = "id, name, password_hash, created, kind";

pub(super) async fn account_by_address(tx: &Tx<'_>, address: &str) -> PgResult<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE lower(address) = lower($1) AND kind = 1");
    Ok(tx.query_opt(&sql, &[&address]).await?.map(|r| Account {
        id: AccountId(r.get(0)),
        name: r.get(1),
        password_hash: r.get(2),
        created: r.get(3),
        kind: kind_of(r.get(4)),
    }))
}

pub(super) async fn team_address(tx: &Tx<'_>, team: AccountId) -> PgResult<Option<String>> {
    let row = tx.query_opt("SELECT address FROM accounts WHERE id = $1", &[&team.0]).await?;
    Ok(row.ok_or(StoreError::NotFound)?.get(0))
}

/// The team `team`, its account row locked (`NotFound`, or `NotAllowed` for a user).
async fn team(tx: &Tx<'_>, team: AccountId) -> PgResult<Member> {
    let t = member_where(tx, false, team.0, "", true).await?.ok_or(StoreError::NotFound)?;
    if t.kind != AccountKind::Team {
        return Err(StoreError::NotAllowed(format!("{} is not a team", t.name)).into());
    }
    Ok(t)
}

pub(super) async fn team_members(tx: &Tx<'_>, team_id: AccountId) -> PgResult<Vec<TeamMember>> {
    let t = member(tx, team_id).await?.ok_or(StoreError::NotFound)?;
    if t.kind != AccountKind::Team {
        return Err(StoreError::NotAllowed(format!("{} is not a team", t.name)).into());
    }
    let rows = tx
        .query(
            "SELECT t.member_id, a.name, t.rights FROM team_members t JOIN accounts a ON a.id = t.member_id
             WHERE t.owner_id = $1 ORDER BY a.name_key COLLATE \"C\"",
            &[&team_id.0],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TeamMember {
            account: AccountId(r.get(0)),
            name: r.get(1),
            rights: Rights::parse(r.get(2)).unwrap_or(Rights::NONE),
        })
        .collect())
}

pub(super) async fn set_team_member(
    tx: &Tx<'_>,
    fx: &mut Effects,
    team_id: AccountId,
    member_id: AccountId,
    rights: Rights,
) -> PgResult<()> {
    let t = team(tx, team_id).await?;
    let m = member(tx, member_id).await?.ok_or(StoreError::NotFound)?;
    if m.kind == AccountKind::Team {
        return Err(StoreError::NotAllowed("a team cannot be a member of a team".to_owned()).into());
    }
    let fresh = tx
        .query_opt("SELECT 1 FROM team_members WHERE owner_id = $1 AND member_id = $2", &[&t.id.0, &m.id.0])
        .await?
        .is_none();
    tx.execute(
        "INSERT INTO team_members (owner_id, member_id, rights) VALUES ($1, $2, $3)
         ON CONFLICT (owner_id, member_id) DO UPDATE SET rights = EXCLUDED.rights",
        &[&t.id.0, &m.id.0, &rights.to_string()],
    )
    .await?;
    apply_membership(tx, fx, &t, &m, rights, fresh).await
}

pub(super) async fn remove_team_member(
    tx: &Tx<'_>,
    fx: &mut Effects,
    team_id: AccountId,
    member_id: AccountId,
) -> PgResult<()> {
    let t = team(tx, team_id).await?;
    let m = member(tx, member_id).await?.ok_or(StoreError::NotFound)?;
    let n = tx
        .execute("DELETE FROM team_members WHERE owner_id = $1 AND member_id = $2", &[&t.id.0, &m.id.0])
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound.into());
    }
    apply_membership(tx, fx, &t, &m, Rights::NONE, false).await
}

/// Writes a member's entry (`rights`, empty: none) on every mailbox of the team and follows
/// its subscriptions.
async fn apply_membership(
    tx: &Tx<'_>,
    fx: &mut Effects,
    t: &Member,
    m: &Member,
    rights: Rights,
    fresh: bool,
) -> PgResult<()> {
    let mailboxes: Vec<(i64, String)> = tx
        .query("SELECT id, name FROM mailboxes WHERE owner_id = $1 ORDER BY id FOR UPDATE", &[&t.id.0])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let identifier = m.identifier();
    for (id, name) in mailboxes {
        let id = MailboxId(id);
        let before = m.rights(t.id, &entries(tx, id).await?);
        put_entry(tx, id, &identifier, rights).await?;
        let after = m.rights(t.id, &entries(tx, id).await?);
        let shown = namespace::shown_name(AccountKind::Team, &t.name, &name);
        follow_lookup(tx, m.id, &shown, before, after, fresh).await?;
        fx.acl_changed(Some(id));
    }
    Ok(())
}

pub(super) async fn set_group_member(
    tx: &Tx<'_>,
    fx: &mut Effects,
    group: &str,
    account: AccountId,
    member_of: bool,
) -> PgResult<()> {
    check_group(group)?;
    if tx.query_opt("SELECT 1 FROM accounts WHERE id = $1", &[&account.0]).await?.is_none() {
        return Err(StoreError::NotFound.into());
    }
    let key = group.to_lowercase();
    let n = if member_of {
        tx.execute(
            "INSERT INTO group_members (owner_id, group_key, group_name) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&account.0, &key, &group],
        )
        .await?
    } else {
        tx.execute("DELETE FROM group_members WHERE owner_id = $1 AND group_key = $2", &[&account.0, &key])
            .await?
    };
    if n > 0 {
        fx.acl_changed(None);
    }
    Ok(())
}

pub(super) async fn groups_of(tx: &Tx<'_>, account: AccountId) -> PgResult<Vec<String>> {
    let rows = tx
        .query(
            "SELECT group_name FROM group_members WHERE owner_id = $1 ORDER BY group_name COLLATE \"C\"",
            &[&account.0],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
