//! `postfach index rebuild [ACCOUNT]`: derives the stored messages' summaries (ENVELOPE,
//! BODYSTRUCTURE), search text and sort keys again from their raw bytes, with this program's
//! parser, in this process.
//!
//! Works beside a running server: each message changes in one short write transaction, and the
//! server's sessions read the new rows at once. Without ACCOUNT every stored message is done,
//! and the work is recorded first, so an interrupted rebuild is finished by the next start of
//! the server (or of any admin command); for one account it is simply run again. Upgrades
//! need none of this: a new parser version re-derives by itself at the first start.

use anyhow::Context;
use clap::Subcommand;
use postfach_store::Store;
use postfach_store::sqlite::{Rederivation, Rederived};
use serde::Serialize;

use crate::admin_output::print_json;

/// `postfach index …`
#[derive(Debug, Subcommand)]
pub(crate) enum IndexCommand {
    /// Derive the summaries, search text and sort keys of stored messages again (all, or one
    /// account's), now; prints how many.
    Rebuild {
        /// Only this account's (user or team) messages.
        account: Option<String>,
        /// Print one JSON document: {"account" (null for all), "scheduled", "derived"}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Serialize)]
struct Rebuilt {
    account: Option<String>,
    /// Stored messages to derive again (copies share one).
    scheduled: u64,
    /// Derived again (fewer when some were expunged meanwhile).
    derived: u64,
}

/// Runs an `index` command.
pub(crate) async fn run(command: IndexCommand, store: &dyn Store) -> anyhow::Result<()> {
    let IndexCommand::Rebuild { account, json } = command;
    let what = match &account {
        None => Rederivation::All,
        Some(name) => {
            match store.account_by_name(name).await.with_context(|| format!("looking up {name}"))? {
                Some(found) => Rederivation::Account(found.id),
                None => anyhow::bail!("no such account: {name}"),
            }
        }
    };
    let whose = account.as_deref().map_or_else(|| "all accounts".to_owned(), |n| format!("{n}'s mailboxes"));
    if !json {
        eprintln!("postfach: deriving the stored messages of {whose} again ...");
    }
    let Rederived { scheduled, derived } = store.rederive(what).await.context("rebuilding the index")?;
    if json {
        return print_json(&Rebuilt { account, scheduled, derived });
    }
    println!("derived {derived} of {scheduled} stored message(s) of {whose} again");
    Ok(())
}
