//! `postfach migrate --from CONFIG_A --to CONFIG_B [--account NAME]`: moves accounts between two
//! stores (SQLite → PostgreSQL, or back, or between two databases), account by account, while
//! the server on the source runs.
//!
//! Each account goes through Postfach's export format (`postfach_migrate`) in a temporary
//! directory: UIDVALIDITY, UIDs, MODSEQs, flags, dates, ACLs, quota limits, seen modes and Sieve
//! scripts stay as they are, so clients resynchronise nothing. Beside the export, what only a
//! move between Postfach stores can carry: the password hash, the SCRAM credential, the TOTP
//! secret and the app passwords (by label). Users move before teams, so a team's members exist
//! when its ACL entries arrive.
//!
//! Running it again brings the target up to date (messages that are there stay, new ones
//! arrive, flags follow newer MODSEQs, expunges are recorded): move once with the server
//! running, point the server at the target, and move once more to catch what arrived between.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use postfach_migrate::export::Since;
use postfach_store::{AccountKind, Store};

use crate::admin_migrate::stores;
use crate::config::Config;

/// `postfach migrate`
#[derive(Debug, Args)]
pub(crate) struct MoveArgs {
    /// The configuration of the store to read.
    #[arg(long, value_name = "CONFIG")]
    from: PathBuf,
    /// The configuration of the store to write.
    #[arg(long, value_name = "CONFIG")]
    to: PathBuf,
    /// Only this account (user or team); default: every account.
    #[arg(long)]
    account: Option<String>,
    /// Where each account's export is written on its way (default: the system's temporary
    /// directory); removed afterwards.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Print one JSON document per account.
    #[arg(long)]
    json: bool,
}

/// A directory removed when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `postfach migrate`.
pub(crate) async fn run(args: MoveArgs) -> anyhow::Result<()> {
    let from_config =
        Config::load(Some(&args.from)).with_context(|| format!("reading {}", args.from.display()))?;
    let to_config = Config::load(Some(&args.to)).with_context(|| format!("reading {}", args.to.display()))?;
    let from = crate::open_store(&from_config).await.context("opening the source store")?;
    let to = crate::open_store(&to_config).await.context("opening the target store")?;
    let target = describe(&to_config, to.as_ref());
    let mut accounts = from.list_accounts().await?;
    if let Some(name) = &args.account {
        accounts.retain(|a| a.name.eq_ignore_ascii_case(name));
        anyhow::ensure!(!accounts.is_empty(), "no account or team named {name:?} in the source store");
    }
    // Users first: a team's ACL entries name its members.
    accounts.sort_by_key(|a| (a.kind == AccountKind::Team, a.name.to_lowercase()));
    let (mut moved, mut failed) = (0usize, 0usize);
    for account in &accounts {
        let base = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        let work = WorkDir(base.join(format!("postfach-migrate-{}-{}", std::process::id(), moved + failed)));
        std::fs::create_dir_all(&work.0).with_context(|| format!("making {}", work.0.display()))?;
        let dir = work.0.join("export");
        let outcome = async {
            postfach_migrate::export::export(stores(from.as_ref())?, &account.name, &dir, Since::Full)
                .await?;
            let summary =
                postfach_migrate::import::import(stores(to.as_ref())?, &account.name, &dir, &target).await?;
            let credentials = copy_credentials(from.as_ref(), to.as_ref(), &account.name).await?;
            anyhow::Ok((summary, credentials))
        }
        .await;
        match outcome {
            Ok((summary, credentials)) => {
                moved += 1;
                if args.json {
                    crate::admin_output::print_json(&serde_json::json!({
                        "account": account.name,
                        "team": summary.team,
                        "created": summary.account_created,
                        "mailboxes": summary.mailboxes,
                        "inserted": summary.inserted,
                        "present": summary.present,
                        "flags_updated": summary.flags_updated,
                        "expunged": summary.expunged,
                        "renumbered": summary.renumbered,
                        "credentials": credentials,
                        "notes": summary.notes,
                        "bad": summary.bad,
                    }))?;
                } else {
                    println!(
                        "{}: {} mailbox(es), {} message(s) stored, {} already there ({} with newer flags), \
                         {} expunge(s) recorded; {credentials}",
                        account.name,
                        summary.mailboxes,
                        summary.inserted,
                        summary.present,
                        summary.flags_updated,
                        summary.expunged,
                    );
                    for line in summary.renumbered.iter().chain(&summary.notes).chain(&summary.bad) {
                        println!("  {line}");
                    }
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("postfach: {}: {e:#}", account.name);
            }
        }
    }
    if !args.json {
        println!("moved {moved} account(s) to {target}");
    }
    anyhow::ensure!(failed == 0, "{failed} account(s) could not be moved; run the command again to retry");
    Ok(())
}

/// Where the target store is, for the summary and the export's provenance.
fn describe(config: &Config, store: &dyn Store) -> String {
    match store.sqlite() {
        Some(_) => config.data_dir.display().to_string(),
        None => format!("{} store", store.backend()),
    }
}

/// Copies what the export format leaves out: the password hash, SCRAM, TOTP and app passwords.
/// Teams have none. Returns a line for the summary.
async fn copy_credentials(from: &dyn Store, to: &dyn Store, name: &str) -> anyhow::Result<String> {
    let source = from.account_by_name(name).await?.context("the account went away at the source")?;
    if source.kind == AccountKind::Team {
        return Ok("a team has no credentials".to_owned());
    }
    let target = to.account_by_name(name).await?.context("the account is missing at the target")?;
    let scram = from.scram_credential(source.id).await?;
    if target.password_hash != source.password_hash || to.scram_credential(target.id).await? != scram {
        to.set_password(target.id, &source.password_hash, scram.as_ref()).await?;
    }
    let totp = from.totp(source.id).await?;
    if to.totp(target.id).await? != totp {
        to.set_totp(target.id, totp.as_ref()).await?;
    }
    let present: Vec<String> = to.app_passwords(target.id).await?.into_iter().map(|p| p.label).collect();
    let mut added = 0;
    for app in from.app_passwords(source.id).await? {
        if !present.contains(&app.label) {
            to.add_app_password(target.id, &app.label, &app.hash).await?;
            added += 1;
        }
    }
    Ok(format!(
        "password{}{}, {added} app password(s) added",
        if scram.is_some() { " and SCRAM credential" } else { "" },
        if totp.is_some() { ", two-factor secret" } else { "" },
    ))
}
