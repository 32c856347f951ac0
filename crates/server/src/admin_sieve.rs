//! The `postfach sieve …` commands: a user's Sieve scripts (RFC 5228) and subaddress policy,
//! managed straight in the store of the data directory (also while the server runs).
//!
//! A script is compiled before it is stored, so a script with a mistake is refused with the
//! line, column and what was expected (`3:14: expected ';' after "keep"`), and the running
//! server never meets it. Scripts come from a file or standard input, bounded by the
//! interpreter's size limit.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use postfach_store::{Account, AccountStore, DetailDelivery, SieveStore, StoreError};

/// `postfach sieve …`.
#[derive(Debug, Subcommand)]
pub(crate) enum SieveCommand {
    /// Check and store a script (from FILE, or standard input without it).
    Put {
        /// Login name.
        user: String,
        /// Script name.
        name: String,
        /// The script file; standard input when missing.
        file: Option<PathBuf>,
        /// Make it the active script.
        #[arg(long)]
        activate: bool,
    },
    /// Print a script.
    Get {
        /// Login name.
        user: String,
        /// Script name.
        name: String,
    },
    /// List the user's scripts, one per line; the active one is marked "(active)".
    List {
        /// Login name.
        user: String,
        /// Print one JSON document: {"scripts": [{"name", "active"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Make a script the one that runs at delivery.
    Activate {
        /// Login name.
        user: String,
        /// Script name.
        name: String,
    },
    /// Run no script at delivery.
    Deactivate {
        /// Login name.
        user: String,
    },
    /// Delete a script (not the active one: deactivate it first).
    Delete {
        /// Login name.
        user: String,
        /// Script name.
        name: String,
    },
    /// Where mail to USER+DETAIL goes: "inbox", or "mailbox" (the mailbox named DETAIL when it
    /// exists).
    Subaddress {
        /// Login name.
        user: String,
        /// "inbox" or "mailbox".
        #[arg(value_parser = ["inbox", "mailbox"])]
        policy: String,
    },
}

/// Runs one `sieve` subcommand against the stores.
pub(crate) async fn run(
    command: SieveCommand,
    accounts: &dyn AccountStore,
    sieve: &dyn SieveStore,
) -> anyhow::Result<()> {
    match command {
        SieveCommand::Put { user, name, file, activate } => {
            let account = find(accounts, &user).await?;
            let bytes = read_script(file.as_ref())?;
            // Checked here so the server never runs a script with a mistake in it.
            if let Err(e) = postfach_sieve::compile_bytes(&bytes) {
                bail!("script {name:?} is not valid Sieve: {e}");
            }
            let text = String::from_utf8(bytes).context("the script is not UTF-8")?;
            sieve.put_sieve_script(account.id, &name, &text).await.map_err(|e| store_error(e, &name))?;
            if activate {
                sieve
                    .activate_sieve_script(account.id, Some(&name))
                    .await
                    .context("activating the script")?;
            }
            eprintln!(
                "postfach: script {name} of {user} stored{}",
                if activate { " and active" } else { "" }
            );
        }
        SieveCommand::Get { user, name } => {
            let account = find(accounts, &user).await?;
            match sieve.sieve_script(account.id, &name).await.context("reading the script")? {
                Some(text) => print!("{text}"),
                None => bail!("{user} has no script {name:?}"),
            }
        }
        SieveCommand::List { user, json: true } => {
            let account = find(accounts, &user).await?;
            let scripts = sieve.sieve_scripts(account.id).await.context("listing scripts")?;
            let scripts: Vec<serde_json::Value> =
                scripts.iter().map(|s| serde_json::json!({"name": s.name, "active": s.active})).collect();
            crate::admin_output::print_json(&serde_json::json!({ "scripts": scripts }))?;
        }
        SieveCommand::List { user, json: false } => {
            let account = find(accounts, &user).await?;
            let mut text = String::new();
            for script in sieve.sieve_scripts(account.id).await.context("listing scripts")? {
                text.push_str(&script.name);
                if script.active {
                    text.push_str(" (active)");
                }
                text.push('\n');
            }
            print!("{text}");
        }
        SieveCommand::Activate { user, name } => {
            let account = find(accounts, &user).await?;
            sieve.activate_sieve_script(account.id, Some(&name)).await.map_err(|e| store_error(e, &name))?;
            eprintln!("postfach: script {name} of {user} is active");
        }
        SieveCommand::Deactivate { user } => {
            let account = find(accounts, &user).await?;
            sieve.activate_sieve_script(account.id, None).await.context("deactivating")?;
            eprintln!("postfach: no script of {user} is active");
        }
        SieveCommand::Delete { user, name } => {
            let account = find(accounts, &user).await?;
            sieve.delete_sieve_script(account.id, &name).await.map_err(|e| store_error(e, &name))?;
            eprintln!("postfach: script {name} of {user} deleted");
        }
        SieveCommand::Subaddress { user, policy } => {
            let account = find(accounts, &user).await?;
            let policy = if policy == "mailbox" { DetailDelivery::Mailbox } else { DetailDelivery::Inbox };
            sieve.set_detail_delivery(account.id, policy).await.context("changing the subaddress policy")?;
        }
    }
    Ok(())
}

fn store_error(e: StoreError, name: &str) -> anyhow::Error {
    match e {
        StoreError::NotFound => anyhow::anyhow!("no script {name:?}"),
        StoreError::NotAllowed(why) | StoreError::InvalidName(why) | StoreError::Limit(why) => {
            anyhow::anyhow!("{name:?}: {why}")
        }
        other => anyhow::Error::new(other).context(format!("script {name:?}")),
    }
}

async fn find(accounts: &dyn AccountStore, name: &str) -> anyhow::Result<Account> {
    match accounts.account_by_name(name).await.with_context(|| format!("looking up user {name}"))? {
        Some(account) => Ok(account),
        None => bail!("no such user: {name}"),
    }
}

/// The script's bytes, at most one byte over the interpreter's limit (so that an oversized
/// script is reported as such, without reading an endless stream).
fn read_script(file: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    let bound = u64::try_from(postfach_sieve::MAX_SCRIPT_SIZE + 1).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    match file {
        Some(path) => std::fs::File::open(path)
            .with_context(|| format!("opening {}", path.display()))?
            .take(bound)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?,
        None => {
            std::io::stdin().lock().take(bound).read_to_end(&mut bytes).context("reading standard input")?
        }
    };
    Ok(bytes)
}
