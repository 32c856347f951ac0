//! Accounts (users and teams) and the mailbox list: create, delete, rename, subscribe.
//!
//! Every function here runs inside the writer's transaction (or, for the `*_read` ones, on a
//! reader) and does SQL only. The session decides the hierarchy rules (which parents to
//! create, whether a mailbox with children may be deleted); this module keeps names unique,
//! UIDVALIDITY fresh, subscriptions in step with renames, ACLs inherited by new mailboxes
//! ([`super::shares`]) and the owner's quota in step with deletions ([`super::quota`]).

use rusqlite::{Connection, OptionalExtension};

use super::conn::{DbResult, backend, is_unique_violation};
use super::quota;
use super::rows::{MailboxRow, account_exists, insert_mailbox, sql_modseq, unix_now};
use super::shares;
use super::writer::Effects;
use crate::acl::{AccountKind, Grantee, Identifier, QuotaLimits};
use crate::types::{Account, AccountId, MailboxId, MailboxName, ModSeq, SpecialUse};
use crate::{StoreError, StoreResult};

/// The mailboxes every new account gets, with their RFC 6154 attributes.
pub(crate) const DEFAULT_MAILBOXES: [(&str, Option<SpecialUse>); 6] = [
    ("INBOX", None),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Sent", Some(SpecialUse::Sent)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

/// The mailboxes every new team gets (no Junk: delivery to a team is filtered upstream), with
/// their RFC 6154 attributes; nobody is subscribed to them until a member is added.
pub(crate) const TEAM_MAILBOXES: [(&str, Option<SpecialUse>); 5] = [
    ("INBOX", None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Archive", Some(SpecialUse::Archive)),
];

/// The password hash of a team: not a PHC string, so no password verifies against it (the
/// authenticator treats an unparsable hash as a mismatch), and the store refuses to give a
/// team a password or an app password.
pub(crate) const TEAM_PASSWORD_HASH: &str = "!team";

/// Longest login name accepted, in bytes.
const MAX_ACCOUNT_NAME_LEN: usize = 255;

/// Longest team delivery address accepted, in bytes (RFC 5321 §4.5.3.1: 64 + 1 + 255).
const MAX_ADDRESS_LEN: usize = 320;

/// The case-insensitive key of a login name.
pub(crate) fn account_key(name: &str) -> String {
    name.to_lowercase()
}

/// `accounts.kind` as stored.
pub(crate) fn kind_code(kind: AccountKind) -> i64 {
    match kind {
        AccountKind::User => 0,
        AccountKind::Team => 1,
    }
}

/// `accounts.kind` as read (an unknown value reads as a team: it cannot log in).
pub(crate) fn kind_of(code: i64) -> AccountKind {
    if code == 0 { AccountKind::User } else { AccountKind::Team }
}

/// The rules of user and team names: not empty, at most [`MAX_ACCOUNT_NAME_LEN`] bytes, no
/// control characters; and, so that every account can be named in an ACL (RFC 4314) and under
/// `Other Users/<name>/` or `Shared/<name>/` (RFC 2342), no `/` and nothing an ACL identifier
/// reads otherwise (`anyone`, `authenticated`, `$group`, `-negative`).
pub(crate) fn check_account_name(name: &str) -> StoreResult<()> {
    if name.is_empty() || name.len() > MAX_ACCOUNT_NAME_LEN || name.chars().any(char::is_control) {
        return Err(StoreError::InvalidName(format!("bad account name: {name:?}")));
    }
    let plain =
        matches!(Identifier::parse(name), Some(Identifier { grantee: Grantee::Account(_), negative: false }));
    if !plain || name.contains(MailboxName::DELIMITER) {
        return Err(StoreError::InvalidName(format!("not usable as an account name: {name:?}")));
    }
    Ok(())
}

/// Inserts an account row and its quota root.
pub(crate) fn insert_account(
    conn: &Connection,
    name: &str,
    password_hash: &str,
    kind: AccountKind,
    address: Option<&str>,
) -> StoreResult<AccountId> {
    let inserted = conn.execute(
        "INSERT INTO accounts (name, name_key, password_hash, created, kind, address)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![name, account_key(name), password_hash, unix_now(), kind_code(kind), address],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists),
        Err(e) => return Err(backend(e)),
    }
    let account = AccountId(conn.last_insert_rowid());
    quota::create_root(conn, account)?;
    Ok(account)
}

/// Creates an account with its default mailboxes, all subscribed.
pub(crate) fn create_account(conn: &Connection, name: &str, password_hash: &str) -> StoreResult<AccountId> {
    check_account_name(name)?;
    let account = insert_account(conn, name, password_hash, AccountKind::User, None)?;
    for (mailbox, special_use) in DEFAULT_MAILBOXES {
        insert_mailbox(conn, account, mailbox, special_use)?;
        subscribe(conn, account, mailbox)?;
    }
    Ok(account)
}

/// Refuses a team delivery address that is not an addr-spec of acceptable length.
pub(crate) fn check_team_address(address: &str) -> StoreResult<()> {
    let well_formed = address.len() <= MAX_ADDRESS_LEN
        && address.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !address.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        return Err(StoreError::InvalidName(format!("not a delivery address: {address:?}")));
    }
    Ok(())
}

/// Creates a team: an account that cannot log in, with the team mailboxes and, when given, a
/// delivery address. Its name is shown as `Shared/<name>/…`, so it must read as an account
/// identifier (not `anyone`, `authenticated`, `$…` or `-…`) and hold no `/`.
pub(crate) fn create_team(conn: &Connection, name: &str, address: Option<&str>) -> StoreResult<AccountId> {
    check_account_name(name)?;
    if let Some(address) = address {
        check_team_address(address)?;
    }
    let team = insert_account(conn, name, TEAM_PASSWORD_HASH, AccountKind::Team, address)?;
    for (mailbox, special_use) in TEAM_MAILBOXES {
        insert_mailbox(conn, team, mailbox, special_use)?;
    }
    Ok(team)
}

/// Refuses credentials for a team (it cannot log in); [`StoreError::NotFound`] when the
/// account does not exist.
pub(crate) fn check_can_log_in(conn: &Connection, account: AccountId) -> StoreResult<()> {
    let kind: Option<i64> = conn
        .prepare_cached("SELECT kind FROM accounts WHERE id = ?1")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .optional()
        .db()?;
    match kind.map(kind_of) {
        None => Err(StoreError::NotFound),
        Some(AccountKind::Team) => Err(StoreError::NotAllowed("a team cannot log in".to_owned())),
        Some(AccountKind::User) => Ok(()),
    }
}

/// Deletes an account with its mailboxes, messages (bodies go with their last reference),
/// subscriptions, quota root, the ACL entries that name it and its memberships.
pub(crate) fn delete_account(conn: &Connection, fx: &mut Effects, account: AccountId) -> StoreResult<()> {
    if !account_exists(conn, account)? {
        return Err(StoreError::NotFound);
    }
    shares::forget_account(conn, fx, account)?;
    let ids: Vec<(i64, i64)> = {
        let mut stmt = conn.prepare("SELECT id, highest_modseq FROM mailboxes WHERE account_id = ?1").db()?;
        let rows = stmt.query_map([account.0], |r| Ok((r.get(0)?, r.get(1)?))).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    for (id, highest) in ids {
        drop_mailbox_contents(conn, MailboxId(id))?;
        // Wake sessions that have it selected; they will find it gone.
        fx.changed(MailboxId(id), ModSeq(u64::try_from(highest).unwrap_or(0).saturating_add(1)));
    }
    conn.execute("DELETE FROM mailboxes WHERE account_id = ?1", [account.0]).db()?;
    conn.execute("DELETE FROM subscriptions WHERE account_id = ?1", [account.0]).db()?;
    conn.execute("DELETE FROM private_seen WHERE account_id = ?1", [account.0]).db()?;
    conn.execute("DELETE FROM quota_warnings WHERE account_id = ?1", [account.0]).db()?;
    conn.execute("DELETE FROM quota WHERE account_id = ?1", [account.0]).db()?;
    conn.execute("DELETE FROM accounts WHERE id = ?1", [account.0]).db()?;
    Ok(())
}

/// Removes the messages, expunge records and keywords of a mailbox (not its row).
fn drop_mailbox_contents(conn: &Connection, mailbox: MailboxId) -> StoreResult<()> {
    // The delete trigger releases each body and removes it with its last reference.
    conn.execute("DELETE FROM messages WHERE mailbox_id = ?1", [mailbox.0]).db()?;
    conn.execute("DELETE FROM expunged WHERE mailbox_id = ?1", [mailbox.0]).db()?;
    conn.execute("DELETE FROM mailbox_keywords WHERE mailbox_id = ?1", [mailbox.0]).db()?;
    Ok(())
}

/// Refuses with [`StoreError::Limit`] when `account` has more mailboxes than its own mailbox
/// limit (the quota's MAILBOX resource), else `max`. Called after the insert, in the same
/// transaction (the writer's savepoint undoes the insert on error), so a name that exists still
/// answers [`StoreError::AlreadyExists`] and concurrent creates, serialized by the writer (and
/// `BEGIN IMMEDIATE` across processes), cannot overshoot.
fn check_mailbox_count(conn: &Connection, account: AccountId, max: u32) -> StoreResult<()> {
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM mailboxes WHERE account_id = ?1")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .db()?;
    let limit = quota::mailbox_limit(conn, account, max)?;
    if u64::try_from(count).unwrap_or(0) > limit {
        return Err(StoreError::Limit(format!("at most {limit} mailboxes in this account")));
    }
    Ok(())
}

/// Creates a mailbox with a fresh UIDVALIDITY and the ACL it inherits, unless the account
/// would then have more mailboxes than its limit (`max_mailboxes` unless it has its own).
pub(crate) fn create_mailbox(
    conn: &Connection,
    fx: &mut Effects,
    account: AccountId,
    name: &MailboxName,
    special_use: Option<SpecialUse>,
    max_mailboxes: u32,
) -> StoreResult<MailboxId> {
    name.check_creatable()?;
    if !account_exists(conn, account)? {
        return Err(StoreError::NotFound);
    }
    // Every account has INBOX (the name folds every spelling of it, RFC 9051 §5.1).
    if name.is_inbox() {
        return Err(StoreError::AlreadyExists);
    }
    let id = insert_mailbox(conn, account, name.as_str(), special_use)?;
    check_mailbox_count(conn, account, max_mailboxes)?;
    shares::inherit_acl(conn, fx, account, id, name)?;
    Ok(id)
}

/// Deletes a mailbox, its messages (their space goes back to the owner's quota) and its ACL;
/// its subscription stays (RFC 9051 §6.3.7: the server must not unilaterally remove a name
/// from the subscription list), and so do the grantees'.
pub(crate) fn delete_mailbox(
    conn: &Connection,
    fx: &mut Effects,
    account: AccountId,
    mailbox: MailboxId,
    quota_defaults: &QuotaLimits,
) -> StoreResult<()> {
    let row = MailboxRow::load(conn, mailbox)?;
    if row.account != account {
        // Someone else's mailbox reads as missing: never reveal that it exists.
        return Err(StoreError::NotFound);
    }
    // RFC 9051 §6.3.5: it is an error to attempt to delete INBOX.
    if row.name == "INBOX" {
        return Err(StoreError::NotAllowed("INBOX cannot be deleted".to_owned()));
    }
    drop_mailbox_contents(conn, mailbox)?;
    quota::release(conn, account, row.size, u64::from(row.messages), quota_defaults)?;
    // The cascade would take the ACL too; deleting it first tells whether anybody had a right.
    let shared = conn.execute("DELETE FROM acl WHERE mailbox_id = ?1", [mailbox.0]).db()? > 0;
    conn.execute("DELETE FROM mailboxes WHERE id = ?1", [mailbox.0]).db()?;
    fx.changed(mailbox, ModSeq(row.highest_modseq.saturating_add(1)));
    if shared {
        fx.acl_changed(Some(mailbox));
    }
    Ok(())
}

/// Renames `from` and every mailbox below it, with the grantees' subscriptions of their shown
/// names; renaming INBOX moves its messages instead (into a new mailbox, which counts against
/// the mailbox limit and inherits an ACL as a created one does).
pub(crate) fn rename_mailbox(
    conn: &Connection,
    fx: &mut Effects,
    account: AccountId,
    from: &MailboxName,
    to: &MailboxName,
    max_mailboxes: u32,
) -> StoreResult<()> {
    to.check_creatable()?;
    if !account_exists(conn, account)? {
        return Err(StoreError::NotFound);
    }
    if from.is_inbox() {
        return rename_inbox(conn, fx, account, to, max_mailboxes);
    }
    if MailboxRow::by_name(conn, account, from.as_str())?.is_none() {
        return Err(StoreError::NotFound);
    }
    let (from, to) = (from.as_str(), to.as_str());
    // RFC 9051 §6.3.6: renaming to a name that exists is an error; INBOX always exists.
    if from == to || to == MailboxName::INBOX {
        return Err(StoreError::AlreadyExists);
    }
    let from_prefix = format!("{from}/");
    if to.starts_with(&from_prefix) {
        return Err(StoreError::NotAllowed("cannot move a mailbox below itself".to_owned()));
    }

    let all: Vec<(i64, String)> = {
        let mut stmt = conn.prepare("SELECT id, name FROM mailboxes WHERE account_id = ?1").db()?;
        let rows = stmt.query_map([account.0], |r| Ok((r.get(0)?, r.get(1)?))).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    // RFC 9051 §6.3.6: inferior hierarchical names MUST be renamed too.
    let renamed = |name: &str| -> Option<String> {
        if name == from {
            Some(to.to_owned())
        } else {
            name.strip_prefix(&from_prefix).map(|rest| format!("{to}/{rest}"))
        }
    };
    let mut moves: Vec<(i64, String)> = Vec::new();
    let mut staying: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (id, name) in &all {
        match renamed(name) {
            Some(new) => moves.push((*id, new)),
            None => {
                staying.insert(name.as_str());
            }
        }
    }
    for (_, new) in &moves {
        // The subtree's names grow by the difference in length: each must still be a name.
        MailboxName::new(new)?;
        if staying.contains(new.as_str()) {
            return Err(StoreError::AlreadyExists);
        }
    }
    // Two steps, because UNIQUE is checked row by row: when `to` is an ancestor of `from`, a
    // new name can equal an old name that is itself about to move. Control characters cannot
    // occur in real names, so the parking names cannot collide.
    let mut update = conn.prepare_cached("UPDATE mailboxes SET name = ?1 WHERE id = ?2").db()?;
    for (id, _) in &moves {
        update.execute(rusqlite::params![format!("\u{1}rename\u{1}{id}"), id]).db()?;
    }
    for (id, new) in &moves {
        match update.execute(rusqlite::params![new, id]) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists),
            Err(e) => return Err(backend(e)),
        }
    }
    move_subscriptions(conn, account, &renamed)?;
    let moved: Vec<(MailboxId, String, String)> = all
        .iter()
        .filter_map(|(id, old)| renamed(old).map(|new| (MailboxId(*id), old.clone(), new)))
        .collect();
    shares::rename_grantee_subscriptions(conn, account, &moved)
}

/// Renames the subscriptions of a renamed subtree along with it.
fn move_subscriptions(
    conn: &Connection,
    account: AccountId,
    renamed: &dyn Fn(&str) -> Option<String>,
) -> StoreResult<()> {
    for old in subscriptions(conn, account)? {
        let Some(new) = renamed(&old) else { continue };
        conn.execute(
            "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2",
            rusqlite::params![account.0, old],
        )
        .db()?;
        subscribe(conn, account, &new)?;
    }
    Ok(())
}

/// RFC 9051 §6.3.6: renaming INBOX moves all its messages into a new mailbox (new UIDVALIDITY,
/// new UIDs in the old order) and leaves INBOX empty; mailboxes below INBOX are unaffected.
fn rename_inbox(
    conn: &Connection,
    fx: &mut Effects,
    account: AccountId,
    to: &MailboxName,
    max_mailboxes: u32,
) -> StoreResult<()> {
    if to.is_inbox() {
        return Err(StoreError::AlreadyExists);
    }
    let mut inbox = MailboxRow::by_name(conn, account, MailboxName::INBOX)?.ok_or(StoreError::NotFound)?;
    let target_id = insert_mailbox(conn, account, to.as_str(), None)?;
    check_mailbox_count(conn, account, max_mailboxes)?;
    shares::inherit_acl(conn, fx, account, target_id, to)?;
    let mut target = MailboxRow::load(conn, target_id)?;
    let keep_modseq = target.bump_modseq()?;
    super::metadata::copy_mailbox_entries(conn, inbox.id.0, target_id.0)?;

    let moved = conn
        .execute(
            "INSERT INTO messages (mailbox_id, uid, body_id, flags, keywords, internal_date, date_offset, size, modseq)
             SELECT ?1, ROW_NUMBER() OVER (ORDER BY uid), body_id, flags, keywords, internal_date, date_offset,
                    size, ?2
             FROM messages WHERE mailbox_id = ?3 ORDER BY uid",
            rusqlite::params![target_id.0, sql_modseq(keep_modseq), inbox.id.0],
        )
        .db()?;
    if moved == 0 {
        return Ok(());
    }
    conn.execute(
        "INSERT INTO mailbox_keywords (mailbox_id, keyword)
         SELECT ?1, keyword FROM mailbox_keywords WHERE mailbox_id = ?2",
        rusqlite::params![target_id.0, inbox.id.0],
    )
    .db()?;

    // The target's counters from what actually landed there (the moved messages are new to the
    // target, so they count as recent there, as COPY would make them).
    let (messages, unseen, deleted, size): (u32, u32, u32, i64) = conn
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM((flags & 1) = 0), 0), COALESCE(SUM((flags & 8) <> 0), 0),
                    COALESCE(SUM(size), 0)
             FROM messages WHERE mailbox_id = ?1",
            [target_id.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .db()?;
    target.messages = messages;
    target.unseen = unseen;
    target.deleted = deleted;
    target.size = u64::try_from(size).unwrap_or(0);
    target.recent = messages;
    target.uid_next = messages.saturating_add(1);
    target.save(conn)?;

    // INBOX keeps its UIDVALIDITY and UIDNEXT; its messages are expunged from it.
    let expunge_modseq = inbox.bump_modseq()?;
    conn.execute(
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)
         SELECT mailbox_id, uid, ?1 FROM messages WHERE mailbox_id = ?2",
        rusqlite::params![sql_modseq(expunge_modseq), inbox.id.0],
    )
    .db()?;
    conn.execute("DELETE FROM messages WHERE mailbox_id = ?1", [inbox.id.0]).db()?;
    inbox.messages = 0;
    inbox.unseen = 0;
    inbox.deleted = 0;
    inbox.size = 0;
    inbox.recent = 0;
    inbox.save(conn)?;
    fx.changed(inbox.id, expunge_modseq);
    fx.changed(target_id, keep_modseq);
    Ok(())
}

/// Subscribes or unsubscribes a name (existing mailbox or not).
pub(crate) fn set_subscribed(
    conn: &Connection,
    account: AccountId,
    name: &MailboxName,
    subscribed: bool,
) -> StoreResult<()> {
    let name = name.as_str();
    if !account_exists(conn, account)? {
        return Err(StoreError::NotFound);
    }
    if subscribed {
        subscribe(conn, account, name)
    } else {
        unsubscribe(conn, account, name)?;
        Ok(())
    }
}

/// Subscribes `account` to `name` (no error when it is already).
pub(crate) fn subscribe(conn: &Connection, account: AccountId, name: &str) -> StoreResult<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)")
        .db()?
        .execute(rusqlite::params![account.0, name])
        .db()?;
    Ok(())
}

/// Unsubscribes `account` from `name`; returns how many subscriptions went (0 or 1).
pub(crate) fn unsubscribe(conn: &Connection, account: AccountId, name: &str) -> StoreResult<usize> {
    conn.prepare_cached("DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2")
        .db()?
        .execute(rusqlite::params![account.0, name])
        .db()
}

// --- reads ------------------------------------------------------------------------------------

/// Columns of [`Account`], in the order `account_of` reads them.
const ACCOUNT_COLUMNS: &str = "id, name, password_hash, created, kind";

fn account_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: AccountId(r.get(0)?),
        name: r.get(1)?,
        password_hash: r.get(2)?,
        created: r.get(3)?,
        kind: kind_of(r.get(4)?),
    })
}

/// Looks an account up by login name, case-insensitively.
pub(crate) fn account_by_name(conn: &Connection, name: &str) -> StoreResult<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name_key = ?1");
    conn.prepare_cached(&sql).db()?.query_row([account_key(name)], account_of).optional().db()
}

/// Every account, sorted by name.
pub(crate) fn list_accounts(conn: &Connection) -> StoreResult<Vec<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name_key, id");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt.query_map([], account_of).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// Subscribed names of an account, sorted.
pub(crate) fn subscriptions(conn: &Connection, account: AccountId) -> StoreResult<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT name FROM subscriptions WHERE account_id = ?1 ORDER BY name").db()?;
    let rows = stmt.query_map([account.0], |r| r.get(0)).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// The team whose delivery address is `address` (case-insensitive, ASCII folding). Users are
/// not found here: their mail is addressed by login name.
pub(crate) fn account_by_address(conn: &Connection, address: &str) -> StoreResult<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE lower(address) = lower(?1) AND kind = 1");
    conn.prepare_cached(&sql).db()?.query_row([address], account_of).optional().db()
}

/// A team's delivery address (`None` for users and teams without one); [`StoreError::NotFound`]
/// when the account does not exist.
pub(crate) fn team_address(conn: &Connection, account: AccountId) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT address FROM accounts WHERE id = ?1")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .optional()
        .db()?
        .ok_or(StoreError::NotFound)
}

/// The owner of a mailbox; [`StoreError::NotFound`] when there is no such mailbox.
pub(crate) fn mailbox_owner(conn: &Connection, mailbox: MailboxId) -> StoreResult<Account> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?1)"
    );
    conn.prepare_cached(&sql)
        .db()?
        .query_row([mailbox.0], account_of)
        .optional()
        .db()?
        .ok_or(StoreError::NotFound)
}
