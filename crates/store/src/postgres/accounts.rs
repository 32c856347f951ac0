//! [`AccountStore`](crate::AccountStore) on PostgreSQL: accounts with their default mailboxes,
//! credentials beside the password, the credentials generation and login blocks. Same rules
//! as the SQLite store (`sqlite::mailboxes`, `sqlite::credentials`), whose name checks are
//! reused.

use tokio_postgres::Row;

use super::mail::{insert_mailbox, subscribe};
use super::{Effects, PgResult, Tx, is_unique_violation, owner_of};
use crate::StoreError;
use crate::acl::{AccountKind, Quota, QuotaLimits};
use crate::sqlite::mailboxes::{DEFAULT_MAILBOXES, account_key, check_account_name};
use crate::sqlite::rows::unix_now;
use crate::types::{
    Account, AccountId, AddressBlock, AppPassword, AppPasswordId, MailboxId, ModSeq, PasswordPlusCode,
    ScramCredential, TotpSettings,
};

const ACCOUNT_COLUMNS: &str = "id, name, password_hash, created, kind";

fn account_of(r: &Row) -> Account {
    Account {
        id: AccountId(r.get(0)),
        name: r.get(1),
        password_hash: r.get(2),
        created: r.get(3),
        kind: if r.get::<_, i64>(4) == 0 { AccountKind::User } else { AccountKind::Team },
    }
}

/// Creates a user with its default mailboxes, all subscribed.
pub(super) async fn create_account(tx: &Tx<'_>, name: &str, password_hash: &str) -> PgResult<AccountId> {
    check_account_name(name)?;
    let inserted = tx
        .query_one(
            "INSERT INTO accounts (name, name_key, password_hash, created, kind) VALUES ($1, $2, $3, $4, 0)
             RETURNING id",
            &[&name, &account_key(name), &password_hash, &unix_now()],
        )
        .await;
    let account = match inserted {
        Ok(row) => AccountId(row.get(0)),
        Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists.into()),
        Err(e) => return Err(e.into()),
    };
    tx.execute("INSERT INTO quota (owner_id) VALUES ($1)", &[&account.0]).await?;
    for (mailbox, special_use) in DEFAULT_MAILBOXES {
        insert_mailbox(tx, account, mailbox, special_use).await?;
        subscribe(tx, account, mailbox).await?;
    }
    Ok(account)
}

pub(super) async fn account_by_name(tx: &Tx<'_>, name: &str) -> PgResult<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name_key = $1");
    Ok(tx.query_opt(&sql, &[&account_key(name)]).await?.as_ref().map(account_of))
}

pub(super) async fn list_accounts(tx: &Tx<'_>) -> PgResult<Vec<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name_key COLLATE \"C\", id");
    Ok(tx.query(&sql, &[]).await?.iter().map(account_of).collect())
}

pub(super) async fn mailbox_owner(tx: &Tx<'_>, mailbox: MailboxId) -> PgResult<Account> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a
         WHERE a.id = $1 AND EXISTS (SELECT 1 FROM mailboxes m WHERE m.owner_id = $1 AND m.id = $2)"
    );
    let row = tx.query_opt(&sql, &[&owner_of(mailbox.0), &mailbox.0]).await?;
    row.as_ref().map(account_of).ok_or(StoreError::NotFound.into())
}

/// Deletes the account; its mailboxes, messages, bodies, credentials, subscriptions, quota and
/// groups go by cascade, the entries and memberships naming it by `shares::forget_account`.
/// Wakes sessions with one of its mailboxes selected.
pub(super) async fn delete_account(tx: &Tx<'_>, fx: &mut Effects, account: AccountId) -> PgResult<()> {
    // Lock the account first: a concurrent create_mailbox would otherwise race the cascade.
    if tx.query_opt("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", &[&account.0]).await?.is_none() {
        return Err(StoreError::NotFound.into());
    }
    super::shares::forget_account(tx, fx, account).await?;
    super::metadata::forget_account(tx, account).await?;
    let mailboxes = tx
        .query("SELECT id, highest_modseq FROM mailboxes WHERE owner_id = $1 FOR UPDATE", &[&account.0])
        .await?;
    // Messages first (they reference bodies without a cascade), then the account.
    tx.execute("DELETE FROM messages WHERE owner_id = $1", &[&account.0]).await?;
    tx.execute("DELETE FROM accounts WHERE id = $1", &[&account.0]).await?;
    bump_generation(tx).await?;
    for r in &mailboxes {
        let modseq: i64 = r.get(1);
        fx.changed(MailboxId(r.get(0)), ModSeq(u64::try_from(modseq).unwrap_or(0).saturating_add(1)));
    }
    Ok(())
}

/// Refuses credentials for a team; `NotFound` for a missing account.
async fn check_can_log_in(tx: &Tx<'_>, account: AccountId) -> PgResult<()> {
    let kind = tx.query_opt("SELECT kind FROM accounts WHERE id = $1", &[&account.0]).await?;
    match kind.map(|r| r.get::<_, i64>(0)) {
        None => Err(StoreError::NotFound.into()),
        Some(0) => Ok(()),
        Some(_) => Err(StoreError::NotAllowed("a team cannot log in".to_owned()).into()),
    }
}

async fn bump_generation(tx: &Tx<'_>) -> PgResult<()> {
    tx.execute("UPDATE credentials_generation SET value = value + 1 WHERE id = 1", &[]).await?;
    Ok(())
}

pub(super) async fn set_password(
    tx: &Tx<'_>,
    account: AccountId,
    password_hash: &str,
    scram: Option<&ScramCredential>,
) -> PgResult<()> {
    check_can_log_in(tx, account).await?;
    tx.execute("UPDATE accounts SET password_hash = $1 WHERE id = $2", &[&password_hash, &account.0]).await?;
    match scram {
        Some(s) => {
            tx.execute(
                "INSERT INTO scram_credentials (owner_id, iterations, salt, stored_key, server_key)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (owner_id) DO UPDATE SET iterations = EXCLUDED.iterations, salt = EXCLUDED.salt,
                     stored_key = EXCLUDED.stored_key, server_key = EXCLUDED.server_key",
                &[&account.0, &i64::from(s.iterations), &s.salt, &s.stored_key, &s.server_key],
            )
            .await?;
        }
        None => {
            tx.execute("DELETE FROM scram_credentials WHERE owner_id = $1", &[&account.0]).await?;
        }
    }
    bump_generation(tx).await
}

pub(super) async fn scram_credential(tx: &Tx<'_>, account: AccountId) -> PgResult<Option<ScramCredential>> {
    let row = tx
        .query_opt(
            "SELECT iterations, salt, stored_key, server_key FROM scram_credentials WHERE owner_id = $1",
            &[&account.0],
        )
        .await?;
    Ok(row.map(|r| ScramCredential {
        iterations: u32::try_from(r.get::<_, i64>(0)).unwrap_or(0),
        salt: r.get(1),
        stored_key: r.get(2),
        server_key: r.get(3),
    }))
}

pub(super) async fn totp(tx: &Tx<'_>, account: AccountId) -> PgResult<Option<TotpSettings>> {
    let row = tx
        .query_opt(
            "SELECT secret, confirmed, password_plus_code, last_step, created FROM totp WHERE owner_id = $1",
            &[&account.0],
        )
        .await?;
    Ok(row.map(|r| TotpSettings {
        secret: r.get(0),
        confirmed: r.get(1),
        password_plus_code: if r.get(2) { PasswordPlusCode::Allowed } else { PasswordPlusCode::Refused },
        last_step: r.get::<_, Option<i64>>(3).and_then(|s| u64::try_from(s).ok()),
        created: r.get(4),
    }))
}

pub(super) async fn set_totp(tx: &Tx<'_>, account: AccountId, totp: Option<&TotpSettings>) -> PgResult<()> {
    check_can_log_in(tx, account).await?;
    match totp {
        Some(t) => {
            let last_step = t.last_step.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
            let plus = t.password_plus_code == PasswordPlusCode::Allowed;
            tx.execute(
                "INSERT INTO totp (owner_id, secret, confirmed, password_plus_code, last_step, created)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (owner_id) DO UPDATE SET secret = EXCLUDED.secret, confirmed = EXCLUDED.confirmed,
                     password_plus_code = EXCLUDED.password_plus_code, last_step = EXCLUDED.last_step,
                     created = EXCLUDED.created",
                &[&account.0, &t.secret, &t.confirmed, &plus, &last_step, &t.created],
            )
            .await?;
        }
        None => {
            tx.execute("DELETE FROM totp WHERE owner_id = $1", &[&account.0]).await?;
        }
    }
    bump_generation(tx).await
}

pub(super) async fn claim_totp_step(tx: &Tx<'_>, account: AccountId, step: u64) -> PgResult<bool> {
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let n = tx
        .execute(
            "UPDATE totp SET last_step = $2 WHERE owner_id = $1 AND (last_step IS NULL OR last_step < $2)",
            &[&account.0, &step],
        )
        .await?;
    Ok(n > 0)
}

pub(super) async fn add_app_password(
    tx: &Tx<'_>,
    account: AccountId,
    label: &str,
    hash: &str,
) -> PgResult<AppPasswordId> {
    check_can_log_in(tx, account).await?;
    let id = super::mail::next_local_id(tx, account).await?;
    let inserted = tx
        .execute(
            "INSERT INTO app_passwords (owner_id, id, label, label_key, hash, created)
             VALUES ($1, $2, $3, lower($3), $4, $5)",
            &[&account.0, &id, &label, &hash, &unix_now()],
        )
        .await;
    match inserted {
        Ok(_) => Ok(AppPasswordId(id)),
        Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists.into()),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn app_passwords(tx: &Tx<'_>, account: AccountId) -> PgResult<Vec<AppPassword>> {
    let rows = tx
        .query(
            "SELECT id, owner_id, label, hash, created, last_used, last_address FROM app_passwords
             WHERE owner_id = $1 ORDER BY label_key COLLATE \"C\"",
            &[&account.0],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AppPassword {
            id: AppPasswordId(r.get(0)),
            account: AccountId(r.get(1)),
            label: r.get(2),
            hash: r.get(3),
            created: r.get(4),
            last_used: r.get(5),
            last_address: r.get(6),
        })
        .collect())
}

pub(super) async fn revoke_app_password(tx: &Tx<'_>, account: AccountId, label: &str) -> PgResult<()> {
    let n = tx
        .execute(
            "DELETE FROM app_passwords WHERE owner_id = $1 AND label_key = lower($2)",
            &[&account.0, &label],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound.into());
    }
    bump_generation(tx).await
}

pub(super) async fn app_password_used(
    tx: &Tx<'_>,
    id: AppPasswordId,
    at: i64,
    address: &str,
) -> PgResult<()> {
    tx.execute(
        "UPDATE app_passwords SET last_used = $3, last_address = $4 WHERE owner_id = $1 AND id = $2",
        &[&owner_of(id.0), &id.0, &at, &address],
    )
    .await?;
    Ok(())
}

pub(super) async fn app_password_exists(tx: &Tx<'_>, id: AppPasswordId) -> PgResult<bool> {
    let row = tx
        .query_opt("SELECT 1 FROM app_passwords WHERE owner_id = $1 AND id = $2", &[&owner_of(id.0), &id.0])
        .await?;
    Ok(row.is_some())
}

pub(super) async fn credentials_generation(tx: &Tx<'_>) -> PgResult<u64> {
    let row = tx.query_one("SELECT value FROM credentials_generation WHERE id = 1", &[]).await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

fn block_of(r: &Row) -> AddressBlock {
    AddressBlock { address: r.get(0), until: r.get(1), created: r.get(2), reason: r.get(3) }
}

pub(super) async fn block_address(tx: &Tx<'_>, block: &AddressBlock) -> PgResult<()> {
    tx.execute(
        "INSERT INTO address_blocks (address, until, created, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (address) DO UPDATE SET until = EXCLUDED.until, created = EXCLUDED.created,
             reason = EXCLUDED.reason",
        &[&block.address, &block.until, &block.created, &block.reason],
    )
    .await?;
    Ok(())
}

pub(super) async fn address_block(tx: &Tx<'_>, address: &str, now: i64) -> PgResult<Option<AddressBlock>> {
    let row = tx
        .query_opt(
            "SELECT address, until, created, reason FROM address_blocks WHERE address = $1 AND until > $2",
            &[&address, &now],
        )
        .await?;
    Ok(row.as_ref().map(block_of))
}

pub(super) async fn address_blocks(tx: &Tx<'_>, now: i64) -> PgResult<Vec<AddressBlock>> {
    let rows = tx
        .query(
            "SELECT address, until, created, reason FROM address_blocks WHERE until > $1
             ORDER BY address COLLATE \"C\"",
            &[&now],
        )
        .await?;
    Ok(rows.iter().map(block_of).collect())
}

pub(super) async fn unblock_address(tx: &Tx<'_>, address: &str, now: i64) -> PgResult<bool> {
    let n =
        tx.execute("DELETE FROM address_blocks WHERE address = $1 AND until > $2", &[&address, &now]).await?;
    tx.execute("DELETE FROM address_blocks WHERE until <= $1", &[&now]).await?;
    Ok(n > 0)
}

/// Usage and limits of an account's quota root. Limits are read (the account's own, else the
/// defaults) but only the mailbox count is enforced on PostgreSQL so far.
pub(super) async fn quota(tx: &Tx<'_>, account: AccountId, defaults: QuotaLimits) -> PgResult<Quota> {
    let row = tx
        .query_opt(
            "SELECT q.storage_used, q.messages_used, q.storage_limit, q.messages_limit, q.mailbox_limit,
                    (SELECT count(*) FROM mailboxes m WHERE m.owner_id = q.owner_id)
             FROM quota q WHERE q.owner_id = $1",
            &[&account.0],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    let own = QuotaLimits {
        storage: row.get::<_, Option<i64>>(2).map(u),
        messages: row.get::<_, Option<i64>>(3).map(u),
        mailboxes: row.get::<_, Option<i64>>(4).map(u),
    };
    Ok(Quota {
        storage_used: u(row.get(0)),
        messages_used: u(row.get(1)),
        mailboxes_used: u(row.get(5)),
        limits: own.resolve(defaults),
        own,
    })
}
