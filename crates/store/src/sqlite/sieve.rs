//! Delivery state in SQLite: Sieve scripts (at most one active per account), the vacation reply
//! history and the subaddress policy; the [`SieveStore`] implementation of [`SqliteStore`].
//!
//! Writes go through the writer thread like every other write, so a script upload or a vacation
//! claim is durable when it returns, and a claim is atomic: two deliveries racing for the same
//! sender cannot both claim.
//!
//! Limits: names are bounded by [`MAX_SCRIPT_NAME_LEN`], script text by [`MAX_SCRIPT_LEN`]
//! (the interpreter's own limit), scripts per account by [`MAX_SCRIPTS`], and the vacation
//! history per account by [`MAX_VACATION_ENTRIES`] (the oldest entries go first; RFC 5230 §4.2
//! asks for at least 1000).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};

use super::SqliteStore;
use super::conn::{DbResult, is_unique_violation};
use super::rows::unix_now;
use crate::types::AccountId;
use crate::{
    DetailDelivery, SieveScript, SieveScriptInfo, SieveStore, StoreError, StoreResult, VacationClaim,
};

/// Longest script name, in characters (RFC 5804 §1.6: servers MUST allow 128 Unicode
/// characters, up to 512 bytes of UTF-8, and MUST refuse, never truncate, longer ones).
pub const MAX_SCRIPT_NAME_LEN: usize = 128;
/// Largest script text, in bytes (the interpreter refuses larger scripts anyway).
pub const MAX_SCRIPT_LEN: usize = 1 << 20;
/// Most scripts one account may keep.
pub const MAX_SCRIPTS: i64 = 100;
/// Most vacation history entries kept per account.
pub const MAX_VACATION_ENTRIES: i64 = 10_000;
/// Longest handle or sender address kept in the vacation history, in bytes.
pub(crate) const MAX_VACATION_KEY_LEN: usize = 1024;

/// Checks a script name: non-empty, bounded, no control characters and no line or paragraph
/// separator (RFC 5804 §1.6 forbids U+0000-001F, U+007F, U+0080-009F, U+2028 and U+2029).
pub(crate) fn check_name(name: &str) -> StoreResult<()> {
    if name.is_empty() {
        return Err(StoreError::InvalidName("empty script name".to_owned()));
    }
    if name.chars().count() > MAX_SCRIPT_NAME_LEN {
        return Err(StoreError::InvalidName(format!(
            "script name longer than {MAX_SCRIPT_NAME_LEN} characters"
        )));
    }
    if name.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}') {
        return Err(StoreError::InvalidName(format!("control character in script name {name:?}")));
    }
    Ok(())
}

fn account_exists(conn: &Connection, account: AccountId) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM accounts WHERE id = ?1")
        .db()?
        .query_row([account.0], |_| Ok(()))
        .optional()
        .db()?
        .is_some())
}

fn put(conn: &Connection, account: AccountId, name: &str, text: &str) -> StoreResult<()> {
    if !account_exists(conn, account)? {
        return Err(StoreError::NotFound);
    }
    let updated = conn
        .prepare_cached(
            "UPDATE sieve_scripts SET script = ?3, updated = ?4 WHERE account_id = ?1 AND name = ?2",
        )
        .db()?
        .execute(rusqlite::params![account.0, name, text, unix_now()])
        .db()?;
    if updated > 0 {
        return Ok(());
    }
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM sieve_scripts WHERE account_id = ?1")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .db()?;
    if count >= MAX_SCRIPTS {
        return Err(StoreError::Limit(format!("at most {MAX_SCRIPTS} scripts per account")));
    }
    conn.prepare_cached(
        "INSERT INTO sieve_scripts (account_id, name, script, active, updated) VALUES (?1, ?2, ?3, 0, ?4)",
    )
    .db()?
    .execute(rusqlite::params![account.0, name, text, unix_now()])
    .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists } else { super::conn::backend(e) })?;
    Ok(())
}

fn script(conn: &Connection, account: AccountId, name: &str) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT script FROM sieve_scripts WHERE account_id = ?1 AND name = ?2")
        .db()?
        .query_row(rusqlite::params![account.0, name], |r| r.get(0))
        .optional()
        .db()
}

fn scripts(conn: &Connection, account: AccountId) -> StoreResult<Vec<SieveScriptInfo>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, active, length(CAST(script AS BLOB)), updated FROM sieve_scripts
             WHERE account_id = ?1 ORDER BY name",
        )
        .db()?;
    let rows = stmt
        .query_map([account.0], |r| {
            Ok(SieveScriptInfo {
                name: r.get(0)?,
                active: r.get::<_, i64>(1)? != 0,
                size: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                updated: r.get(3)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

fn active(conn: &Connection, account: AccountId) -> StoreResult<Option<SieveScript>> {
    conn.prepare_cached("SELECT name, script FROM sieve_scripts WHERE account_id = ?1 AND active = 1")
        .db()?
        .query_row([account.0], |r| Ok(SieveScript { name: r.get(0)?, text: r.get(1)? }))
        .optional()
        .db()
}

fn activate(conn: &Connection, account: AccountId, name: Option<&str>) -> StoreResult<()> {
    if let Some(name) = name
        && script(conn, account, name)?.is_none()
    {
        return Err(StoreError::NotFound);
    }
    // Off first, then on: the partial UNIQUE index allows one active row at any moment.
    conn.prepare_cached("UPDATE sieve_scripts SET active = 0 WHERE account_id = ?1 AND active = 1")
        .db()?
        .execute([account.0])
        .db()?;
    if let Some(name) = name {
        conn.prepare_cached("UPDATE sieve_scripts SET active = 1 WHERE account_id = ?1 AND name = ?2")
            .db()?
            .execute(rusqlite::params![account.0, name])
            .db()?;
    }
    Ok(())
}

fn delete(conn: &Connection, account: AccountId, name: &str) -> StoreResult<()> {
    let state: Option<i64> = conn
        .prepare_cached("SELECT active FROM sieve_scripts WHERE account_id = ?1 AND name = ?2")
        .db()?
        .query_row(rusqlite::params![account.0, name], |r| r.get(0))
        .optional()
        .db()?;
    match state {
        None => Err(StoreError::NotFound),
        // RFC 5804 §2.10: deleting the active script is an error; deactivate it first.
        Some(active) if active != 0 => {
            Err(StoreError::NotAllowed("the script is active; deactivate it first".to_owned()))
        }
        Some(_) => {
            conn.prepare_cached("DELETE FROM sieve_scripts WHERE account_id = ?1 AND name = ?2")
                .db()?
                .execute(rusqlite::params![account.0, name])
                .db()?;
            Ok(())
        }
    }
}

fn rename(conn: &Connection, account: AccountId, old: &str, new: &str) -> StoreResult<()> {
    if script(conn, account, old)?.is_none() {
        return Err(StoreError::NotFound);
    }
    if script(conn, account, new)?.is_some() {
        return Err(StoreError::AlreadyExists);
    }
    // The active flag is a column of the row: it moves with the name.
    conn.prepare_cached("UPDATE sieve_scripts SET name = ?3 WHERE account_id = ?1 AND name = ?2")
        .db()?
        .execute(rusqlite::params![account.0, old, new])
        .db()?;
    Ok(())
}

pub(super) fn claim(
    conn: &Connection,
    account: AccountId,
    handle: &str,
    sender: &str,
    now: i64,
    period: i64,
) -> StoreResult<VacationClaim> {
    if handle.len() > MAX_VACATION_KEY_LEN || sender.len() > MAX_VACATION_KEY_LEN {
        return Err(StoreError::Limit("vacation handle or sender too long".to_owned()));
    }
    // Forget what has expired: the history stays as small as the replies in their periods.
    conn.prepare_cached("DELETE FROM vacation_sent WHERE account_id = ?1 AND expires <= ?2")
        .db()?
        .execute(rusqlite::params![account.0, now])
        .db()?;
    let recent = conn
        .prepare_cached("SELECT 1 FROM vacation_sent WHERE account_id = ?1 AND handle = ?2 AND sender = ?3")
        .db()?
        .query_row(rusqlite::params![account.0, handle, sender], |_| Ok(()))
        .optional()
        .db()?;
    if recent.is_some() {
        return Ok(VacationClaim::AlreadyReplied);
    }
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM vacation_sent WHERE account_id = ?1")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .db()?;
    if count >= MAX_VACATION_ENTRIES {
        // Drop the entries closest to expiring; a sender may then get a second reply early,
        // which RFC 5230 §4.2 tolerates beyond its 1000-entry minimum.
        // The table is WITHOUT ROWID: rows are named by their key.
        conn.prepare_cached(
            "DELETE FROM vacation_sent WHERE (account_id, handle, sender) IN
             (SELECT account_id, handle, sender FROM vacation_sent WHERE account_id = ?1
              ORDER BY expires LIMIT ?2)",
        )
        .db()?
        .execute(rusqlite::params![account.0, count - MAX_VACATION_ENTRIES + 1])
        .db()?;
    }
    conn.prepare_cached(
        "INSERT INTO vacation_sent (account_id, handle, sender, sent_at, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .db()?
    .execute(rusqlite::params![account.0, handle, sender, now, now.saturating_add(period.max(0))])
    .db()?;
    Ok(VacationClaim::Claimed)
}

fn release(conn: &Connection, account: AccountId, handle: &str, sender: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM vacation_sent WHERE account_id = ?1 AND handle = ?2 AND sender = ?3")
        .db()?
        .execute(rusqlite::params![account.0, handle, sender])
        .db()?;
    Ok(())
}

fn detail(conn: &Connection, account: AccountId) -> StoreResult<DetailDelivery> {
    let value: Option<i64> = conn
        .prepare_cached("SELECT detail_mailbox FROM delivery_settings WHERE account_id = ?1")
        .db()?
        .query_row([account.0], |r| r.get(0))
        .optional()
        .db()?;
    Ok(if value.unwrap_or(0) != 0 { DetailDelivery::Mailbox } else { DetailDelivery::Inbox })
}

fn set_detail(conn: &Connection, account: AccountId, policy: DetailDelivery) -> StoreResult<()> {
    if !account_exists(conn, account)? {
        return Err(StoreError::NotFound);
    }
    let value = i64::from(policy == DetailDelivery::Mailbox);
    conn.prepare_cached(
        "INSERT INTO delivery_settings (account_id, detail_mailbox) VALUES (?1, ?2)
         ON CONFLICT (account_id) DO UPDATE SET detail_mailbox = excluded.detail_mailbox",
    )
    .db()?
    .execute(rusqlite::params![account.0, value])
    .db()?;
    Ok(())
}

#[async_trait]
impl SieveStore for SqliteStore {
    async fn put_sieve_script(&self, account: AccountId, name: &str, text: &str) -> StoreResult<()> {
        check_name(name)?;
        if text.len() > MAX_SCRIPT_LEN {
            return Err(StoreError::Limit(format!("script larger than {MAX_SCRIPT_LEN} bytes")));
        }
        let (name, text) = (name.to_owned(), text.to_owned());
        self.writer.run(move |conn, _| put(conn, account, &name, &text)).await
    }

    async fn sieve_script(&self, account: AccountId, name: &str) -> StoreResult<Option<String>> {
        let name = name.to_owned();
        self.read(move |conn| script(conn, account, &name)).await
    }

    async fn sieve_scripts(&self, account: AccountId) -> StoreResult<Vec<SieveScriptInfo>> {
        self.read(move |conn| scripts(conn, account)).await
    }

    async fn active_sieve_script(&self, account: AccountId) -> StoreResult<Option<SieveScript>> {
        self.read(move |conn| active(conn, account)).await
    }

    async fn activate_sieve_script(&self, account: AccountId, name: Option<&str>) -> StoreResult<()> {
        let name = name.map(str::to_owned);
        self.writer.run(move |conn, _| activate(conn, account, name.as_deref())).await
    }

    async fn delete_sieve_script(&self, account: AccountId, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.writer.run(move |conn, _| delete(conn, account, &name)).await
    }

    async fn rename_sieve_script(&self, account: AccountId, old: &str, new: &str) -> StoreResult<()> {
        check_name(new)?;
        let (old, new) = (old.to_owned(), new.to_owned());
        self.writer.run(move |conn, _| rename(conn, account, &old, &new)).await
    }

    async fn claim_vacation(
        &self,
        account: AccountId,
        handle: &str,
        sender: &str,
        now: i64,
        period_secs: i64,
    ) -> StoreResult<VacationClaim> {
        let (handle, sender) = (handle.to_owned(), sender.to_owned());
        self.writer.run(move |conn, _| claim(conn, account, &handle, &sender, now, period_secs)).await
    }

    async fn release_vacation(&self, account: AccountId, handle: &str, sender: &str) -> StoreResult<()> {
        let (handle, sender) = (handle.to_owned(), sender.to_owned());
        self.writer.run(move |conn, _| release(conn, account, &handle, &sender)).await
    }

    async fn detail_delivery(&self, account: AccountId) -> StoreResult<DetailDelivery> {
        self.read(move |conn| detail(conn, account)).await
    }

    async fn set_detail_delivery(&self, account: AccountId, policy: DetailDelivery) -> StoreResult<()> {
        self.writer.run(move |conn, _| set_detail(conn, account, policy)).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        super::super::schema::migrate(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created) VALUES ('a', 'a', '', 0);",
        )
        .unwrap();
        conn
    }

    const A: AccountId = AccountId(1);

    #[test]
    fn one_active_script_at_a_time() {
        let conn = db();
        put(&conn, A, "one", "keep;").unwrap();
        put(&conn, A, "two", "discard;").unwrap();
        activate(&conn, A, Some("one")).unwrap();
        activate(&conn, A, Some("two")).unwrap();
        let list = scripts(&conn, A).unwrap();
        assert_eq!(
            list.iter().map(|s| (s.name.as_str(), s.active)).collect::<Vec<_>>(),
            [("one", false), ("two", true)]
        );
        assert_eq!(active(&conn, A).unwrap().unwrap().text, "discard;");
        // RFC 5804 §2.10: the active script cannot be deleted.
        assert!(matches!(delete(&conn, A, "two"), Err(StoreError::NotAllowed(_))));
        assert!(matches!(delete(&conn, A, "none"), Err(StoreError::NotFound)));
        assert!(matches!(activate(&conn, A, Some("none")), Err(StoreError::NotFound)));
        activate(&conn, A, None).unwrap();
        assert!(active(&conn, A).unwrap().is_none());
        delete(&conn, A, "two").unwrap();
        // Replacing keeps the active flag.
        activate(&conn, A, Some("one")).unwrap();
        put(&conn, A, "one", "stop;").unwrap();
        assert_eq!(active(&conn, A).unwrap().unwrap().text, "stop;");
        assert!(matches!(put(&conn, AccountId(9), "x", "keep;"), Err(StoreError::NotFound)));
    }

    #[test]
    fn rename_keeps_the_active_flag() {
        let conn = db();
        put(&conn, A, "one", "keep;").unwrap();
        put(&conn, A, "two", "discard;").unwrap();
        activate(&conn, A, Some("one")).unwrap();
        // RFC 5804 §2.11: the renamed active script stays active.
        rename(&conn, A, "one", "uno").unwrap();
        assert_eq!(active(&conn, A).unwrap().unwrap().name, "uno");
        assert!(script(&conn, A, "one").unwrap().is_none());
        assert!(matches!(rename(&conn, A, "one", "x"), Err(StoreError::NotFound)));
        assert!(matches!(rename(&conn, A, "uno", "two"), Err(StoreError::AlreadyExists)));
        assert!(matches!(rename(&conn, A, "two", "two"), Err(StoreError::AlreadyExists)));
        rename(&conn, A, "two", "dos").unwrap();
        assert_eq!(script(&conn, A, "dos").unwrap().as_deref(), Some("discard;"));
    }

    #[test]
    fn vacation_claims_expire() {
        let conn = db();
        let day = 86_400;
        assert_eq!(claim(&conn, A, "h", "s@x", 1000, 7 * day).unwrap(), VacationClaim::Claimed);
        assert_eq!(claim(&conn, A, "h", "s@x", 1000 + day, 7 * day).unwrap(), VacationClaim::AlreadyReplied);
        // Another handle or sender is another entry.
        assert_eq!(claim(&conn, A, "g", "s@x", 1000 + day, 7 * day).unwrap(), VacationClaim::Claimed);
        assert_eq!(claim(&conn, A, "h", "t@x", 1000 + day, 7 * day).unwrap(), VacationClaim::Claimed);
        assert_eq!(claim(&conn, A, "h", "s@x", 1000 + 7 * day, 7 * day).unwrap(), VacationClaim::Claimed);
        release(&conn, A, "h", "s@x").unwrap();
        assert_eq!(claim(&conn, A, "h", "s@x", 1000 + 7 * day, 7 * day).unwrap(), VacationClaim::Claimed);
    }

    #[test]
    fn vacation_history_is_bounded() {
        let conn = db();
        for i in 0..MAX_VACATION_ENTRIES + 5 {
            claim(&conn, A, "h", &format!("s{i}@x"), 10, 1000 + i).unwrap();
        }
        let n: i64 = conn.query_row("SELECT count(*) FROM vacation_sent", [], |r| r.get(0)).unwrap();
        assert_eq!(n, MAX_VACATION_ENTRIES);
        // The newest survive.
        let last = format!("s{}@x", MAX_VACATION_ENTRIES + 4);
        assert_eq!(claim(&conn, A, "h", &last, 11, 1).unwrap(), VacationClaim::AlreadyReplied);
    }

    #[test]
    fn detail_policy_defaults_to_inbox() {
        let conn = db();
        assert_eq!(detail(&conn, A).unwrap(), DetailDelivery::Inbox);
        set_detail(&conn, A, DetailDelivery::Mailbox).unwrap();
        assert_eq!(detail(&conn, A).unwrap(), DetailDelivery::Mailbox);
        set_detail(&conn, A, DetailDelivery::Inbox).unwrap();
        assert_eq!(detail(&conn, A).unwrap(), DetailDelivery::Inbox);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(MAX_SCRIPT_NAME_LEN + 1)).is_err());
        assert!(check_name("vacation · 2026").is_ok());
        assert!(check_name("a\u{2028}b").is_err() && check_name("a\u{85}b").is_err());
        // 128 characters are allowed even when they take 512 bytes.
        assert!(check_name(&"\u{1F600}".repeat(MAX_SCRIPT_NAME_LEN)).is_ok());
    }

    #[test]
    fn account_deletion_takes_the_scripts() {
        let conn = db();
        put(&conn, A, "one", "keep;").unwrap();
        claim(&conn, A, "h", "s@x", 1, 10).unwrap();
        set_detail(&conn, A, DetailDelivery::Mailbox).unwrap();
        conn.execute("DELETE FROM accounts WHERE id = 1", []).unwrap();
        for table in ["sieve_scripts", "vacation_sent", "delivery_settings"] {
            let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap();
            assert_eq!(n, 0, "{table}");
        }
    }
}
