//! ACLs (RFC 4314), team memberships and groups: SQL only. What an entry means (who it
//! matches, how negative rights subtract) is decided by [`crate::acl::effective_rights`]; this
//! module keeps the rows and the grantees' subscriptions in step with them.
//!
//! The `acl` rows are the whole truth: the "shared with me" index is `acl_by_identifier`, an
//! index on those rows (grantee → mailboxes), so it changes in the transaction of every ACL
//! change and cannot drift. An account grantee is stored by its canonical name
//! (`accounts.name`); identifiers compare case-insensitively.
//!
//! Auto-subscriptions: an account that gains `l` on another account's mailbox through a change
//! here is subscribed to the mailbox's shown name (`Other Users/<owner>/<name>` or
//! `Shared/<team>/<name>`), and unsubscribed when it loses `l`. Only account grantees are
//! followed: members of a group or of `anyone` subscribe themselves.

use rusqlite::{Connection, OptionalExtension};

use super::conn::DbResult;
use super::mailboxes::{account_key, kind_of, subscribe, unsubscribe};
use super::writer::Effects;
use crate::acl::{
    AccountKind, AclEntry, Grantee, Identifier, Right, Rights, SharedMailbox, TeamMember, Viewer,
    effective_rights, namespace,
};
use crate::types::{AccountId, MailboxId, MailboxInfo, MailboxName, SpecialUse};
use crate::{StoreError, StoreResult};

/// Longest group name accepted, in bytes.
const MAX_GROUP_NAME_LEN: usize = 255;

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

/// Loads a mailbox with its owner; [`StoreError::NotFound`] when there is none.
fn owned(conn: &Connection, mailbox: MailboxId) -> StoreResult<Owned> {
    conn.prepare_cached(
        "SELECT m.account_id, a.name, a.kind, m.name, m.special_use
         FROM mailboxes m JOIN accounts a ON a.id = m.account_id WHERE m.id = ?1",
    )
    .db()?
    .query_row([mailbox.0], |r| {
        let special: Option<String> = r.get(4)?;
        Ok(Owned {
            owner: AccountId(r.get(0)?),
            owner_name: r.get(1)?,
            kind: kind_of(r.get(2)?),
            name: r.get(3)?,
            special_use: special.as_deref().and_then(SpecialUse::parse),
        })
    })
    .optional()
    .db()?
    .ok_or(StoreError::NotFound)
}

/// An account as [`effective_rights`] sees it: canonical name and groups.
struct Member {
    id: AccountId,
    name: String,
    kind: AccountKind,
    groups: Vec<String>,
}

impl Member {
    /// Its rights on a mailbox of `owner` with these entries.
    fn rights(&self, owner: AccountId, entries: &[AclEntry]) -> Rights {
        effective_rights(owner, entries, &Viewer { account: self.id, name: &self.name, groups: &self.groups })
    }

    /// The identifier of its positive entry.
    fn identifier(&self) -> Identifier {
        Identifier { grantee: Grantee::Account(self.name.clone()), negative: false }
    }
}

fn member_where(conn: &Connection, sql: &str, key: &dyn rusqlite::ToSql) -> StoreResult<Option<Member>> {
    let found: Option<(i64, String, i64)> = conn
        .prepare_cached(sql)
        .db()?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .db()?;
    let Some((id, name, kind)) = found else { return Ok(None) };
    let id = AccountId(id);
    Ok(Some(Member { id, name, kind: kind_of(kind), groups: groups_of(conn, id)? }))
}

fn member(conn: &Connection, account: AccountId) -> StoreResult<Option<Member>> {
    member_where(conn, "SELECT id, name, kind FROM accounts WHERE id = ?1", &account.0)
}

fn member_by_name(conn: &Connection, name: &str) -> StoreResult<Option<Member>> {
    member_where(conn, "SELECT id, name, kind FROM accounts WHERE name_key = ?1", &account_key(name))
}

/// The entries of a mailbox, by identifier. A row whose identifier no longer parses (it cannot
/// be written so) is skipped with a warning rather than failing every reader.
fn entries(conn: &Connection, mailbox: MailboxId) -> StoreResult<Vec<AclEntry>> {
    let mut stmt = conn
        .prepare_cached("SELECT identifier, rights FROM acl WHERE mailbox_id = ?1 ORDER BY identifier")
        .db()?;
    let rows = stmt.query_map([mailbox.0], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u16>(1)?))).db()?;
    let mut out = Vec::new();
    for row in rows {
        let (text, bits) = row.db()?;
        match Identifier::parse(&text) {
            Some(identifier) => out.push(AclEntry { identifier, rights: Rights::from_bits(bits) }),
            None => tracing::warn!(mailbox = mailbox.0, identifier = %text, "unreadable ACL identifier"),
        }
    }
    Ok(out)
}

/// Writes (replacing) or, for empty rights, deletes one entry.
fn put_entry(
    conn: &Connection,
    mailbox: MailboxId,
    identifier: &Identifier,
    rights: Rights,
) -> StoreResult<()> {
    let text = identifier.to_string();
    if rights.is_empty() {
        conn.prepare_cached("DELETE FROM acl WHERE mailbox_id = ?1 AND identifier = ?2")
            .db()?
            .execute(rusqlite::params![mailbox.0, text])
            .db()?;
    } else {
        conn.prepare_cached(
            "INSERT INTO acl (mailbox_id, identifier, rights) VALUES (?1, ?2, ?3)
             ON CONFLICT (mailbox_id, identifier) DO UPDATE SET identifier = excluded.identifier,
                                                                 rights = excluded.rights",
        )
        .db()?
        .execute(rusqlite::params![mailbox.0, text, rights.bits()])
        .db()?;
    }
    Ok(())
}

/// Subscribes `account` to `shown` when it gained `l` (or, with `fresh`, simply has it: a new
/// membership), unsubscribes when it lost `l`.
fn follow_lookup(
    conn: &Connection,
    account: AccountId,
    shown: &str,
    before: Rights,
    after: Rights,
    fresh: bool,
) -> StoreResult<()> {
    let (had, has) = (before.contains(Right::Lookup), after.contains(Right::Lookup));
    if has && (!had || fresh) {
        subscribe(conn, account, shown)?;
    } else if had && !has {
        unsubscribe(conn, account, shown)?;
    }
    Ok(())
}

/// Refuses group names that cannot be an identifier's `$name`.
pub(crate) fn check_group(group: &str) -> StoreResult<()> {
    if group.is_empty() || group.len() > MAX_GROUP_NAME_LEN || group.chars().any(char::is_control) {
        return Err(StoreError::InvalidName(format!("bad group name: {group:?}")));
    }
    Ok(())
}

// --- ACL --------------------------------------------------------------------------------------

/// A mailbox's entries; [`StoreError::NotFound`] when it does not exist.
pub(crate) fn acl(conn: &Connection, mailbox: MailboxId) -> StoreResult<Vec<AclEntry>> {
    owned(conn, mailbox)?;
    entries(conn, mailbox)
}

/// Sets (`Some`, non-empty) or deletes (`None` or empty rights: an empty entry grants and
/// denies nothing) the entry of `identifier`, following an account grantee's subscription.
pub(crate) fn set_acl(
    conn: &Connection,
    fx: &mut Effects,
    mailbox: MailboxId,
    identifier: &Identifier,
    rights: Option<Rights>,
) -> StoreResult<()> {
    let mb = owned(conn, mailbox)?;
    let (identifier, grantee) = match &identifier.grantee {
        Grantee::Account(name) => {
            let m = member_by_name(conn, name)?.ok_or(StoreError::NotFound)?;
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
        Some(m) => m.rights(mb.owner, &entries(conn, mailbox)?),
        None => Rights::NONE,
    };
    put_entry(conn, mailbox, &identifier, rights.unwrap_or(Rights::NONE))?;
    if let Some(m) = &grantee {
        let after = m.rights(mb.owner, &entries(conn, mailbox)?);
        follow_lookup(conn, m.id, &mb.shown(), before, after, false)?;
    }
    fx.acl_changed(Some(mailbox));
    Ok(())
}

/// The rights of `account` on `mailbox`; [`StoreError::NotFound`] when either is missing.
pub(crate) fn my_rights(conn: &Connection, mailbox: MailboxId, account: AccountId) -> StoreResult<Rights> {
    let mb = owned(conn, mailbox)?;
    let viewer = member(conn, account)?.ok_or(StoreError::NotFound)?;
    Ok(viewer.rights(mb.owner, &entries(conn, mailbox)?))
}

/// The other accounts' mailboxes `account` has a right on. Candidates come from the
/// identifier index (its name, its groups, `authenticated`, `anyone`: negative entries alone
/// grant nothing); each is then resolved over all of its entries.
pub(crate) fn shared_with(conn: &Connection, account: AccountId) -> StoreResult<Vec<SharedMailbox>> {
    let me = member(conn, account)?.ok_or(StoreError::NotFound)?;
    let mut identifiers = vec![me.name.clone(), "anyone".to_owned(), "authenticated".to_owned()];
    identifiers.extend(me.groups.iter().map(|g| format!("${g}")));
    let placeholders: Vec<String> = (1..=identifiers.len()).map(|i| format!("?{i}")).collect();
    // INDEXED BY: this must be an index lookup, never a scan of every ACL row.
    let sql = format!(
        "SELECT DISTINCT mailbox_id FROM acl INDEXED BY acl_by_identifier WHERE identifier IN ({})",
        placeholders.join(", ")
    );
    let candidates: Vec<i64> = {
        let mut stmt = conn.prepare_cached(&sql).db()?;
        let rows = stmt.query_map(rusqlite::params_from_iter(identifiers.iter()), |r| r.get(0)).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    let mut out = Vec::new();
    for id in candidates {
        let id = MailboxId(id);
        let mb = owned(conn, id)?;
        if mb.owner == account {
            continue;
        }
        let rights = me.rights(mb.owner, &entries(conn, id)?);
        if rights.is_empty() {
            continue;
        }
        let subscribed = is_subscribed(conn, account, &mb.shown())?;
        out.push(SharedMailbox {
            owner: mb.owner,
            owner_name: mb.owner_name,
            owner_kind: mb.kind,
            mailbox: MailboxInfo { id, name: mb.name, special_use: mb.special_use, subscribed },
            rights,
        });
    }
    out.sort_by(|a, b| (&a.owner_name, &a.mailbox.name).cmp(&(&b.owner_name, &b.mailbox.name)));
    Ok(out)
}

fn is_subscribed(conn: &Connection, account: AccountId, name: &str) -> StoreResult<bool> {
    conn.prepare_cached("SELECT 1 FROM subscriptions WHERE account_id = ?1 AND name = ?2")
        .db()?
        .query_row(rusqlite::params![account.0, name], |_| Ok(()))
        .optional()
        .db()
        .map(|r| r.is_some())
}

/// The ACL of a mailbox just made (CREATE, RENAME INBOX, a team's default mailboxes): a copy
/// of its nearest existing superior's entries (RFC 4314 §4: it SHOULD inherit the parent's ACL,
/// as Cyrus and Dovecot do), plus, in a team, the entry of every member the copy does not name
/// (RFC 2342 team mailboxes: a membership covers mailboxes made later). Account grantees that
/// can look it up are subscribed to it.
pub(crate) fn inherit_acl(
    conn: &Connection,
    fx: &mut Effects,
    owner: AccountId,
    mailbox: MailboxId,
    name: &MailboxName,
) -> StoreResult<()> {
    let ancestors: Vec<MailboxName> = name.ancestors().collect();
    let mut find =
        conn.prepare_cached("SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2").db()?;
    for ancestor in ancestors.iter().rev() {
        let parent: Option<i64> =
            find.query_row(rusqlite::params![owner.0, ancestor.as_str()], |r| r.get(0)).optional().db()?;
        if let Some(parent) = parent {
            conn.prepare_cached(
                "INSERT INTO acl (mailbox_id, identifier, rights)
                 SELECT ?1, identifier, rights FROM acl WHERE mailbox_id = ?2",
            )
            .db()?
            .execute(rusqlite::params![mailbox.0, parent])
            .db()?;
            break;
        }
    }
    // Users are no team: no rows, one probe of the primary key.
    conn.prepare_cached(
        "INSERT OR IGNORE INTO acl (mailbox_id, identifier, rights)
         SELECT ?1, a.name, t.rights FROM team_members t JOIN accounts a ON a.id = t.account_id
         WHERE t.team_id = ?2 AND t.rights <> 0",
    )
    .db()?
    .execute(rusqlite::params![mailbox.0, owner.0])
    .db()?;

    let list = entries(conn, mailbox)?;
    if list.is_empty() {
        return Ok(());
    }
    let shown = owned(conn, mailbox)?.shown();
    for entry in &list {
        let Grantee::Account(grantee) = &entry.identifier.grantee else { continue };
        if entry.identifier.negative {
            continue;
        }
        let Some(m) = member_by_name(conn, grantee)? else { continue };
        if m.id != owner && m.rights(owner, &list).contains(Right::Lookup) {
            subscribe(conn, m.id, &shown)?;
        }
    }
    fx.acl_changed(Some(mailbox));
    Ok(())
}

/// Moves the auto-subscriptions of account grantees along with renamed mailboxes of `owner`
/// (`moves`: mailbox, old name, new name). Only subscriptions of accounts with an entry on the
/// mailbox are followed: the subscriptions table has no index by name.
pub(crate) fn rename_grantee_subscriptions(
    conn: &Connection,
    owner: AccountId,
    moves: &[(MailboxId, String, String)],
) -> StoreResult<()> {
    let Some(o) = member(conn, owner)? else { return Ok(()) };
    for (mailbox, old, new) in moves {
        let (old, new) =
            (namespace::shown_name(o.kind, &o.name, old), namespace::shown_name(o.kind, &o.name, new));
        for entry in entries(conn, *mailbox)? {
            let Grantee::Account(grantee) = &entry.identifier.grantee else { continue };
            if entry.identifier.negative {
                continue;
            }
            let Some(m) = member_by_name(conn, grantee)? else { continue };
            if m.id != owner && unsubscribe(conn, m.id, &old)? > 0 {
                subscribe(conn, m.id, &new)?;
            }
        }
    }
    Ok(())
}

/// Removes everything that names an account about to be deleted: its entries (`name` and
/// `-name`, found through the identifier index), its team memberships (as member and as team)
/// and its group memberships.
pub(crate) fn forget_account(conn: &Connection, fx: &mut Effects, account: AccountId) -> StoreResult<()> {
    let Some(m) = member(conn, account)? else { return Ok(()) };
    let (positive, negative) = (m.name.clone(), format!("-{}", m.name));
    let affected: Vec<i64> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT DISTINCT mailbox_id FROM acl INDEXED BY acl_by_identifier
                 WHERE identifier IN (?1, ?2)",
            )
            .db()?;
        let rows = stmt.query_map(rusqlite::params![positive, negative], |r| r.get(0)).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    conn.prepare_cached("DELETE FROM acl WHERE identifier IN (?1, ?2)")
        .db()?
        .execute(rusqlite::params![positive, negative])
        .db()?;
    for mailbox in affected {
        fx.acl_changed(Some(MailboxId(mailbox)));
    }
    let memberships = conn.execute("DELETE FROM team_members WHERE account_id = ?1", [account.0]).db()?
        + conn.execute("DELETE FROM team_members WHERE team_id = ?1", [account.0]).db()?
        + conn.execute("DELETE FROM group_members WHERE account_id = ?1", [account.0]).db()?;
    if memberships > 0 {
        fx.acl_changed(None);
    }
    Ok(())
}

// --- teams and groups -------------------------------------------------------------------------

/// The team `team` ([`StoreError::NotFound`] when there is no such account,
/// [`StoreError::NotAllowed`] when it is a user).
fn team(conn: &Connection, team: AccountId) -> StoreResult<Member> {
    let t = member(conn, team)?.ok_or(StoreError::NotFound)?;
    if t.kind != AccountKind::Team {
        return Err(StoreError::NotAllowed(format!("{} is not a team", t.name)));
    }
    Ok(t)
}

/// The members of a team with their rights, by name.
pub(crate) fn team_members(conn: &Connection, team_id: AccountId) -> StoreResult<Vec<TeamMember>> {
    team(conn, team_id)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT t.account_id, a.name, t.rights FROM team_members t JOIN accounts a ON a.id = t.account_id
             WHERE t.team_id = ?1 ORDER BY a.name_key",
        )
        .db()?;
    let rows = stmt
        .query_map([team_id.0], |r| {
            Ok(TeamMember {
                account: AccountId(r.get(0)?),
                name: r.get(1)?,
                rights: Rights::from_bits(r.get(2)?),
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// Makes (or changes) a membership: the member's entry on every mailbox of the team, and its
/// subscriptions to those it can look up.
pub(crate) fn set_team_member(
    conn: &Connection,
    fx: &mut Effects,
    team_id: AccountId,
    member_id: AccountId,
    rights: Rights,
) -> StoreResult<()> {
    let t = team(conn, team_id)?;
    let m = member(conn, member_id)?.ok_or(StoreError::NotFound)?;
    if m.kind == AccountKind::Team {
        return Err(StoreError::NotAllowed("a team cannot be a member of a team".to_owned()));
    }
    let fresh = conn
        .prepare_cached("SELECT 1 FROM team_members WHERE team_id = ?1 AND account_id = ?2")
        .db()?
        .query_row(rusqlite::params![t.id.0, m.id.0], |_| Ok(()))
        .optional()
        .db()?
        .is_none();
    conn.prepare_cached(
        "INSERT INTO team_members (team_id, account_id, rights) VALUES (?1, ?2, ?3)
         ON CONFLICT (team_id, account_id) DO UPDATE SET rights = excluded.rights",
    )
    .db()?
    .execute(rusqlite::params![t.id.0, m.id.0, rights.bits()])
    .db()?;
    apply_membership(conn, fx, &t, &m, rights, fresh)
}

/// Ends a membership; [`StoreError::NotFound`] when there was none.
pub(crate) fn remove_team_member(
    conn: &Connection,
    fx: &mut Effects,
    team_id: AccountId,
    member_id: AccountId,
) -> StoreResult<()> {
    let t = team(conn, team_id)?;
    let m = member(conn, member_id)?.ok_or(StoreError::NotFound)?;
    let n = conn
        .prepare_cached("DELETE FROM team_members WHERE team_id = ?1 AND account_id = ?2")
        .db()?
        .execute(rusqlite::params![t.id.0, m.id.0])
        .db()?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    apply_membership(conn, fx, &t, &m, Rights::NONE, false)
}

/// Writes a member's entry (`rights`, empty: none) on every mailbox of the team and follows
/// its subscriptions.
fn apply_membership(
    conn: &Connection,
    fx: &mut Effects,
    t: &Member,
    m: &Member,
    rights: Rights,
    fresh: bool,
) -> StoreResult<()> {
    let mailboxes: Vec<(i64, String)> = {
        let mut stmt = conn.prepare_cached("SELECT id, name FROM mailboxes WHERE account_id = ?1").db()?;
        let rows = stmt.query_map([t.id.0], |r| Ok((r.get(0)?, r.get(1)?))).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    let identifier = m.identifier();
    for (id, name) in mailboxes {
        let id = MailboxId(id);
        let before = m.rights(t.id, &entries(conn, id)?);
        put_entry(conn, id, &identifier, rights)?;
        let after = m.rights(t.id, &entries(conn, id)?);
        follow_lookup(
            conn,
            m.id,
            &namespace::shown_name(AccountKind::Team, &t.name, &name),
            before,
            after,
            fresh,
        )?;
        fx.acl_changed(Some(id));
    }
    Ok(())
}

/// Adds an account to a group or removes it (no change is no error).
pub(crate) fn set_group_member(
    conn: &Connection,
    fx: &mut Effects,
    group: &str,
    account: AccountId,
    member_of: bool,
) -> StoreResult<()> {
    check_group(group)?;
    if !super::rows::account_exists(conn, account)? {
        return Err(StoreError::NotFound);
    }
    let sql = if member_of {
        "INSERT OR IGNORE INTO group_members (account_id, group_name) VALUES (?1, ?2)"
    } else {
        "DELETE FROM group_members WHERE account_id = ?1 AND group_name = ?2"
    };
    if conn.prepare_cached(sql).db()?.execute(rusqlite::params![account.0, group]).db()? > 0 {
        fx.acl_changed(None);
    }
    Ok(())
}

/// The groups of an account, sorted.
pub(crate) fn groups_of(conn: &Connection, account: AccountId) -> StoreResult<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT group_name FROM group_members WHERE account_id = ?1 ORDER BY group_name")
        .db()?;
    let rows = stmt.query_map([account.0], |r| r.get(0)).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}
