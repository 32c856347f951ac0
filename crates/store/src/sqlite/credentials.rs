//! Credentials beside the password, and login blocks: SQL only.
//!
//! The tables come from schema version 4 (see [`super::schema`]). What the rows mean, how
//! secrets are derived and when a block starts is `postfach-auth`'s business; this module keeps
//! the rows consistent: a password change replaces the SCRAM verifier in the same transaction,
//! a TOTP step is claimed with one conditional UPDATE (two sessions cannot both use one code),
//! and every change that must end live sessions bumps `credentials_generation` in the
//! transaction that makes it.

use rusqlite::{Connection, OptionalExtension, Row};

use super::conn::{DbResult, backend, is_unique_violation};
use super::mailboxes::check_can_log_in;
use super::rows::account_exists;
use crate::types::{
    AccountId, AddressBlock, AppPassword, AppPasswordId, PasswordPlusCode, ScramCredential, TotpSettings,
};
use crate::{StoreError, StoreResult};

/// Longest app password label, in bytes.
const MAX_LABEL_LEN: usize = 64;

/// Replaces the password hash and the SCRAM verifier together; bumps the generation, so
/// sessions opened with the old password end.
pub(crate) fn set_password(
    conn: &Connection,
    account: AccountId,
    password_hash: &str,
    scram: Option<&ScramCredential>,
) -> StoreResult<()> {
    // A team keeps its unusable hash: nobody logs in as a team.
    check_can_log_in(conn, account)?;
    let n = conn
        .execute(
            "UPDATE accounts SET password_hash = ?1 WHERE id = ?2",
            rusqlite::params![password_hash, account.0],
        )
        .db()?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    match scram {
        Some(c) => conn
            .execute(
                "INSERT OR REPLACE INTO scram_credentials (account_id, iterations, salt, stored_key, server_key)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![account.0, c.iterations, c.salt, c.stored_key, c.server_key],
            )
            .db()?,
        None => forget_scram(conn, account)?,
    };
    bump_generation(conn)
}

/// Removes the SCRAM verifier (after a password change that did not bring a new one).
pub(crate) fn forget_scram(conn: &Connection, account: AccountId) -> StoreResult<usize> {
    conn.execute("DELETE FROM scram_credentials WHERE account_id = ?1", [account.0]).db()
}

/// The SCRAM verifier of an account.
pub(crate) fn scram_credential(
    conn: &Connection,
    account: AccountId,
) -> StoreResult<Option<ScramCredential>> {
    conn.query_row(
        "SELECT iterations, salt, stored_key, server_key FROM scram_credentials WHERE account_id = ?1",
        [account.0],
        |r| {
            Ok(ScramCredential {
                iterations: r.get(0)?,
                salt: r.get(1)?,
                stored_key: r.get(2)?,
                server_key: r.get(3)?,
            })
        },
    )
    .optional()
    .db()
}

/// The TOTP settings of an account.
pub(crate) fn totp(conn: &Connection, account: AccountId) -> StoreResult<Option<TotpSettings>> {
    conn.query_row(
        "SELECT secret, confirmed, password_plus_code, last_step, created FROM totp WHERE account_id = ?1",
        [account.0],
        |r| {
            let last_step: Option<i64> = r.get(3)?;
            Ok(TotpSettings {
                secret: r.get(0)?,
                confirmed: r.get(1)?,
                password_plus_code: if r.get(2)? {
                    PasswordPlusCode::Allowed
                } else {
                    PasswordPlusCode::Refused
                },
                last_step: last_step.and_then(|s| u64::try_from(s).ok()),
                created: r.get(4)?,
            })
        },
    )
    .optional()
    .db()
}

/// Stores or removes the TOTP settings; bumps the generation.
pub(crate) fn set_totp(
    conn: &Connection,
    account: AccountId,
    totp: Option<&TotpSettings>,
) -> StoreResult<()> {
    if !account_exists(conn, account)? {
        return Err(StoreError::NotFound);
    }
    match totp {
        Some(t) => {
            let last_step = t.last_step.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
            conn.execute(
                "INSERT OR REPLACE INTO totp (account_id, secret, confirmed, password_plus_code, last_step, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    account.0,
                    t.secret,
                    t.confirmed,
                    t.password_plus_code == PasswordPlusCode::Allowed,
                    last_step,
                    t.created
                ],
            )
            .db()?;
        }
        None => {
            conn.execute("DELETE FROM totp WHERE account_id = ?1", [account.0]).db()?;
        }
    }
    bump_generation(conn)
}

/// Claims a TOTP step if it is later than the last one used.
pub(crate) fn claim_totp_step(conn: &Connection, account: AccountId, step: u64) -> StoreResult<bool> {
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let n = conn
        .execute(
            "UPDATE totp SET last_step = ?2 WHERE account_id = ?1 AND (last_step IS NULL OR last_step < ?2)",
            rusqlite::params![account.0, step],
        )
        .db()?;
    Ok(n == 1)
}

/// Adds an app password.
pub(crate) fn add_app_password(
    conn: &Connection,
    account: AccountId,
    label: &str,
    hash: &str,
    now: i64,
) -> StoreResult<AppPasswordId> {
    if label.is_empty() || label.len() > MAX_LABEL_LEN || label.chars().any(char::is_control) {
        return Err(StoreError::InvalidName(format!(
            "an app password label must be 1 to {MAX_LABEL_LEN} bytes without control characters"
        )));
    }
    // A team cannot log in, with an app password neither.
    check_can_log_in(conn, account)?;
    let inserted = conn.execute(
        "INSERT INTO app_passwords (account_id, label, hash, created) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![account.0, label, hash, now],
    );
    match inserted {
        Ok(_) => Ok(AppPasswordId(conn.last_insert_rowid())),
        Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
        Err(e) => Err(backend(e)),
    }
}

fn app_password_row(r: &Row<'_>) -> rusqlite::Result<AppPassword> {
    Ok(AppPassword {
        id: AppPasswordId(r.get(0)?),
        account: AccountId(r.get(1)?),
        label: r.get(2)?,
        hash: r.get(3)?,
        created: r.get(4)?,
        last_used: r.get(5)?,
        last_address: r.get(6)?,
    })
}

/// The app passwords of an account, by label.
pub(crate) fn app_passwords(conn: &Connection, account: AccountId) -> StoreResult<Vec<AppPassword>> {
    let mut stmt = conn
        .prepare(
            "SELECT id, account_id, label, hash, created, last_used, last_address
             FROM app_passwords WHERE account_id = ?1 ORDER BY label",
        )
        .db()?;
    let rows = stmt.query_map([account.0], app_password_row).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// Deletes an app password by label; bumps the generation.
pub(crate) fn revoke_app_password(conn: &Connection, account: AccountId, label: &str) -> StoreResult<()> {
    let n = conn
        .execute(
            "DELETE FROM app_passwords WHERE account_id = ?1 AND label = ?2",
            rusqlite::params![account.0, label],
        )
        .db()?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    bump_generation(conn)
}

/// Records a login with an app password.
pub(crate) fn app_password_used(
    conn: &Connection,
    id: AppPasswordId,
    at: i64,
    address: &str,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE app_passwords SET last_used = ?2, last_address = ?3 WHERE id = ?1",
        rusqlite::params![id.0, at, address],
    )
    .db()?;
    Ok(())
}

/// Whether an app password exists.
pub(crate) fn app_password_exists(conn: &Connection, id: AppPasswordId) -> StoreResult<bool> {
    conn.query_row("SELECT 1 FROM app_passwords WHERE id = ?1", [id.0], |_| Ok(()))
        .optional()
        .db()
        .map(|r| r.is_some())
}

/// The current credentials generation.
pub(crate) fn credentials_generation(conn: &Connection) -> StoreResult<u64> {
    let value: i64 =
        conn.query_row("SELECT value FROM credentials_generation WHERE id = 1", [], |r| r.get(0)).db()?;
    Ok(u64::try_from(value).unwrap_or(0))
}

fn bump_generation(conn: &Connection) -> StoreResult<()> {
    conn.execute("UPDATE credentials_generation SET value = value + 1 WHERE id = 1", []).db()?;
    Ok(())
}

/// Blocks an address (replacing an earlier block).
pub(crate) fn block_address(conn: &Connection, block: &AddressBlock) -> StoreResult<()> {
    conn.execute(
        "INSERT OR REPLACE INTO address_blocks (address, until, created, reason) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![block.address, block.until, block.created, block.reason],
    )
    .db()?;
    Ok(())
}

fn block_row(r: &Row<'_>) -> rusqlite::Result<AddressBlock> {
    Ok(AddressBlock { address: r.get(0)?, until: r.get(1)?, created: r.get(2)?, reason: r.get(3)? })
}

/// One address's block if in force.
pub(crate) fn address_block(conn: &Connection, address: &str, now: i64) -> StoreResult<Option<AddressBlock>> {
    conn.query_row(
        "SELECT address, until, created, reason FROM address_blocks WHERE address = ?1 AND until > ?2",
        rusqlite::params![address, now],
        block_row,
    )
    .optional()
    .db()
}

/// Blocks in force.
pub(crate) fn address_blocks(conn: &Connection, now: i64) -> StoreResult<Vec<AddressBlock>> {
    let mut stmt = conn
        .prepare(
            "SELECT address, until, created, reason FROM address_blocks WHERE until > ?1 ORDER BY address",
        )
        .db()?;
    let rows = stmt.query_map([now], block_row).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// Lifts a block and forgets expired ones.
pub(crate) fn unblock_address(conn: &Connection, address: &str, now: i64) -> StoreResult<bool> {
    let live = conn
        .execute(
            "DELETE FROM address_blocks WHERE address = ?1 AND until > ?2",
            rusqlite::params![address, now],
        )
        .db()?;
    conn.execute("DELETE FROM address_blocks WHERE until <= ?1", [now]).db()?;
    Ok(live > 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sqlite::schema::migrate;

    fn db() -> (Connection, AccountId) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        migrate(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created) VALUES ('a', 'a', 'h0', 0)",
        )
        .unwrap();
        let id = AccountId(conn.last_insert_rowid());
        (conn, id)
    }

    fn scram() -> ScramCredential {
        ScramCredential {
            iterations: 4096,
            salt: vec![1; 16],
            stored_key: vec![2; 32],
            server_key: vec![3; 32],
        }
    }

    #[test]
    fn password_and_scram_change_together() {
        let (conn, a) = db();
        let g = credentials_generation(&conn).unwrap();
        set_password(&conn, a, "h1", Some(&scram())).unwrap();
        assert!(credentials_generation(&conn).unwrap() > g, "a password change reaches live sessions");
        assert_eq!(scram_credential(&conn, a).unwrap(), Some(scram()));
        set_password(&conn, a, "h2", None).unwrap();
        assert_eq!(scram_credential(&conn, a).unwrap(), None);
        assert!(matches!(set_password(&conn, AccountId(99), "h", None), Err(StoreError::NotFound)));
    }

    #[test]
    fn totp_steps_are_claimed_once_and_in_order() {
        let (conn, a) = db();
        let g0 = credentials_generation(&conn).unwrap();
        assert!(!claim_totp_step(&conn, a, 5).unwrap(), "no TOTP set up");
        let settings = TotpSettings {
            secret: vec![9; 20],
            confirmed: true,
            password_plus_code: PasswordPlusCode::Allowed,
            last_step: None,
            created: 7,
        };
        set_totp(&conn, a, Some(&settings)).unwrap();
        assert_eq!(totp(&conn, a).unwrap(), Some(settings));
        assert!(credentials_generation(&conn).unwrap() > g0);
        assert!(claim_totp_step(&conn, a, 5).unwrap());
        assert!(!claim_totp_step(&conn, a, 5).unwrap(), "replay");
        assert!(!claim_totp_step(&conn, a, 4).unwrap(), "older");
        assert!(claim_totp_step(&conn, a, 6).unwrap());
        assert_eq!(totp(&conn, a).unwrap().unwrap().last_step, Some(6));
        set_totp(&conn, a, None).unwrap();
        assert_eq!(totp(&conn, a).unwrap(), None);
    }

    #[test]
    fn app_passwords_lifecycle() {
        let (conn, a) = db();
        let id = add_app_password(&conn, a, "iPhone", "x", 10).unwrap();
        assert!(matches!(add_app_password(&conn, a, "iphone", "y", 11), Err(StoreError::AlreadyExists)));
        assert!(matches!(add_app_password(&conn, a, "", "y", 11), Err(StoreError::InvalidName(_))));
        assert!(matches!(add_app_password(&conn, AccountId(99), "x", "y", 11), Err(StoreError::NotFound)));
        add_app_password(&conn, a, "Laptop", "z", 12).unwrap();
        app_password_used(&conn, id, 20, "192.0.2.1").unwrap();
        let list = app_passwords(&conn, a).unwrap();
        assert_eq!(list.iter().map(|p| p.label.as_str()).collect::<Vec<_>>(), ["iPhone", "Laptop"]);
        assert_eq!((list[0].last_used, list[0].last_address.as_deref()), (Some(20), Some("192.0.2.1")));
        let g = credentials_generation(&conn).unwrap();
        revoke_app_password(&conn, a, "IPHONE").unwrap();
        assert!(!app_password_exists(&conn, id).unwrap());
        assert!(credentials_generation(&conn).unwrap() > g);
        assert!(matches!(revoke_app_password(&conn, a, "iPhone"), Err(StoreError::NotFound)));
    }

    #[test]
    fn deleting_the_account_bumps_the_generation_and_cascades() {
        let (conn, a) = db();
        add_app_password(&conn, a, "x", "y", 1).unwrap();
        let g = credentials_generation(&conn).unwrap();
        conn.execute("DELETE FROM accounts WHERE id = ?1", [a.0]).unwrap();
        assert!(credentials_generation(&conn).unwrap() > g);
        let left: i64 = conn.query_row("SELECT COUNT(*) FROM app_passwords", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn blocks_expire_and_lift() {
        let (conn, _) = db();
        let block = |address: &str, until| AddressBlock {
            address: address.to_owned(),
            until,
            created: 0,
            reason: "test".to_owned(),
        };
        block_address(&conn, &block("192.0.2.1", 100)).unwrap();
        block_address(&conn, &block("192.0.2.2", 50)).unwrap();
        assert_eq!(address_blocks(&conn, 10).unwrap().len(), 2);
        assert_eq!(address_blocks(&conn, 60).unwrap(), vec![block("192.0.2.1", 100)]);
        assert_eq!(address_block(&conn, "192.0.2.2", 60).unwrap(), None);
        assert!(address_block(&conn, "192.0.2.1", 60).unwrap().is_some());
        // Re-blocking replaces.
        block_address(&conn, &block("192.0.2.1", 200)).unwrap();
        assert_eq!(address_block(&conn, "192.0.2.1", 150).unwrap().map(|b| b.until), Some(200));
        assert!(unblock_address(&conn, "192.0.2.1", 60).unwrap());
        assert!(!unblock_address(&conn, "192.0.2.1", 60).unwrap());
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM address_blocks", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 0, "the expired block was forgotten too");
    }
}
