//! The `postfach user …` commands: accounts managed straight in the store of the data directory.
//!
//! They open the same store as the server and work while it runs (SQLite allows several
//! processes). Passwords are read from the terminal without echo (twice, to catch typos) or, for
//! scripts, as the first line of standard input; only their argon2id hash (and the SCRAM
//! verifier derived beside it) is stored.
//!
//! Limits: the rules for acceptable account names belong to the store; this module only refuses
//! an empty password and a delete without `--yes`.

use std::io::{BufRead, Read};

use anyhow::{Context, bail};
use postfach_secret::Secret;
use postfach_store::{AccountKind, AccountStore, StoreError};

/// Longest password accepted on standard input; anything longer is surely not a password.
const MAX_PASSWORD_LEN: usize = 4096;

/// Where a new password comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PasswordSource {
    /// The first line of standard input (`--password-stdin`).
    Stdin,
    /// Prompted twice on the terminal, without echo.
    Prompt,
}

/// Whether the operator confirmed a destructive command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confirmation {
    /// `--yes` was given.
    Confirmed,
    /// It was not.
    Missing,
}

/// `user add NAME`: creates an account with its default mailboxes.
pub(crate) async fn add(
    accounts: &dyn AccountStore,
    name: &str,
    source: PasswordSource,
) -> anyhow::Result<()> {
    let (hash, scram) = crate::admin_auth::password_credentials(read_password(source)?).await?;
    match accounts.create_account(name, &hash).await {
        Ok(id) => {
            // The SCRAM verifier goes beside the hash (issue 5); the account works without it
            // for every mechanism but SCRAM.
            accounts
                .set_password(id, &hash, Some(&scram))
                .await
                .with_context(|| format!("adding user {name}"))?;
            eprintln!("postfach: user {name} added");
            Ok(())
        }
        Err(StoreError::AlreadyExists) => bail!("user {name} already exists"),
        Err(e) => Err(e).with_context(|| format!("adding user {name}")),
    }
}

/// `user list`: prints every account name, one per line, on standard output; with `json`
/// one document, `{"users": [names]}`.
pub(crate) async fn list(accounts: &dyn AccountStore, json: bool) -> anyhow::Result<()> {
    let all = accounts.list_accounts().await.context("listing users")?;
    // Teams are accounts too, but nobody logs in as one: `team list` shows them.
    let users: Vec<String> =
        all.into_iter().filter(|a| a.kind == AccountKind::User).map(|a| a.name).collect();
    if json {
        #[derive(serde::Serialize)]
        struct Users {
            users: Vec<String>,
        }
        return crate::admin_output::print_json(&Users { users });
    }
    let mut text = String::new();
    for name in users {
        text.push_str(&name);
        text.push('\n');
    }
    print!("{text}");
    Ok(())
}

/// `user passwd NAME`: replaces an account's password. The store bumps the credentials
/// generation with it, so a running server ends the sessions opened with the old password
/// (`postfach_auth::Authenticator::still_valid`).
pub(crate) async fn passwd(
    accounts: &dyn AccountStore,
    name: &str,
    source: PasswordSource,
) -> anyhow::Result<()> {
    let account = find(accounts, name).await?;
    let (hash, scram) = crate::admin_auth::password_credentials(read_password(source)?).await?;
    accounts
        .set_password(account.id, &hash, Some(&scram))
        .await
        .with_context(|| format!("changing the password of {name}"))?;
    eprintln!(
        "postfach: password of {name} changed; sessions opened with the old password end within seconds"
    );
    Ok(())
}

/// `user delete NAME --yes`: deletes an account with all its mail.
pub(crate) async fn delete(
    accounts: &dyn AccountStore,
    name: &str,
    confirmation: Confirmation,
) -> anyhow::Result<()> {
    if confirmation == Confirmation::Missing {
        bail!("refusing to delete user {name} and all their mail without --yes");
    }
    // A team is deleted the same way, with all its mail.
    let Some(account) = accounts.account_by_name(name).await.with_context(|| format!("looking up {name}"))?
    else {
        bail!("no such user: {name}");
    };
    let kind = match account.kind {
        AccountKind::User => "user",
        AccountKind::Team => "team",
    };
    accounts.delete_account(account.id).await.with_context(|| format!("deleting {kind} {name}"))?;
    eprintln!("postfach: {kind} {name} deleted");
    Ok(())
}

/// A user by login name; a team's name is refused: teams have no credentials.
pub(crate) async fn find(accounts: &dyn AccountStore, name: &str) -> anyhow::Result<postfach_store::Account> {
    match accounts.account_by_name(name).await.with_context(|| format!("looking up user {name}"))? {
        Some(account) if account.kind == AccountKind::Team => {
            bail!("{name} is a team: teams never log in, so they have no password or second factor")
        }
        Some(account) => Ok(account),
        None => bail!("no such user: {name}"),
    }
}

/// The new password, a [`Secret`] from the moment it is read until the hashing is done.
fn read_password(source: PasswordSource) -> anyhow::Result<Secret> {
    let password = match source {
        PasswordSource::Stdin => {
            // Bounded read: the limit plus room for CRLF, so an endless stream cannot fill memory.
            // The buffer has that room from the start, so it never grows (a grown buffer would
            // leave a copy behind), and it is wrapped before anything can return early.
            let bound = MAX_PASSWORD_LEN + 2;
            let mut line = String::with_capacity(bound);
            let read =
                std::io::stdin().lock().take(u64::try_from(bound).unwrap_or(u64::MAX)).read_line(&mut line);
            let mut line = Secret::from(line);
            read.context("reading the password from standard input")?;
            let mut end = line.len();
            for ending in [b'\n', b'\r'] {
                if end > 0 && line.expose_secret()[end - 1] == ending {
                    end -= 1;
                }
            }
            // The line ending goes (and is wiped with the rest of the tail).
            drop(line.split_off(end));
            line
        }
        PasswordSource::Prompt => {
            let hint = "cannot read the password from a terminal (use --password-stdin)";
            let first = Secret::from(rpassword::prompt_password("Password: ").context(hint)?);
            let second = Secret::from(rpassword::prompt_password("Repeat password: ").context(hint)?);
            if first != second {
                bail!("the passwords do not match");
            }
            first
        }
    };
    if password.is_empty() {
        bail!("the password must not be empty");
    }
    if password.len() > MAX_PASSWORD_LEN {
        bail!("the password is longer than {MAX_PASSWORD_LEN} bytes");
    }
    Ok(password)
}
