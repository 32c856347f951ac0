//! The migration commands of the CLI: `export`, `import` and the importers from other sources
//! (`import-maildir`, `import-mbox`, `import-imap`), straight in the store of the data
//! directory (also while the server runs). The work is `postfach_migrate`'s; this module parses
//! the command line and prints the summary on standard output (progress bars and problems go
//! to standard error).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use postfach_migrate::Stores;
use postfach_migrate::export::{ExportSummary, Since};
use postfach_migrate::import::ImportSummary;
use postfach_store::sqlite::SqliteStore;

/// `postfach export`
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The account (user or team).
    account: String,
    /// The directory to write (created; it must not hold an export already).
    dir: PathBuf,
    /// Incremental: only what changed above this MODSEQ (per mailbox; the last export's
    /// summary names the value to give).
    #[arg(long, value_name = "N", conflicts_with = "since")]
    since_modseq: Option<u64>,
    /// Incremental: only what changed since the export in this directory, mailbox by mailbox.
    #[arg(long, value_name = "DIR")]
    since: Option<PathBuf>,
}

/// `postfach import`
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The account (user or team) to import into; made when missing (without a password).
    account: String,
    /// The export directory.
    dir: PathBuf,
}

/// The stores of one `SqliteStore`.
pub(crate) fn stores(store: &SqliteStore) -> Stores<'_> {
    Stores { accounts: store, mail: store, share: store, sieve: store, restore: store }
}

pub(crate) async fn export(args: ExportArgs, store: &SqliteStore) -> anyhow::Result<()> {
    let since = match (args.since_modseq, args.since) {
        (Some(n), _) => Since::ModSeq(n),
        (None, Some(dir)) => Since::Previous(dir),
        (None, None) => Since::Full,
    };
    let summary = postfach_migrate::export::export(stores(store), &args.account, &args.dir, since).await?;
    print!("{}", export_report(&args.account, &args.dir, &summary));
    Ok(())
}

pub(crate) async fn import(args: ImportArgs, store: &SqliteStore, data_dir: &Path) -> anyhow::Result<()> {
    let target = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_owned()).display().to_string();
    let summary = postfach_migrate::import::import(stores(store), &args.account, &args.dir, &target).await?;
    print!("{}", import_report(&format!("import of {}", args.dir.display()), &args.account, &summary));
    Ok(())
}

fn per_second(n: u64, elapsed: std::time::Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 { "-".to_owned() } else { format!("{:.0}", n as f64 / secs) }
}

fn export_report(account: &str, dir: &Path, s: &ExportSummary) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "export of {account} into {}: done in {:.2} s", dir.display(), s.elapsed.as_secs_f64());
    let _ = writeln!(
        out,
        "  mailboxes: {}; messages: {} ({} bytes, {} per second); expunged UIDs listed: {}",
        s.mailboxes,
        s.messages,
        s.bytes,
        per_second(s.messages, s.elapsed),
        s.expunged
    );
    let _ = writeln!(
        out,
        "  next incremental: postfach export {account} NEWDIR --since {} (or --since-modseq {})",
        dir.display(),
        s.next_since
    );
    out
}

/// The summary of an import, as printed.
pub(crate) fn import_report(what: &str, account: &str, s: &ImportSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{what} into {account}: done in {:.2} s", s.elapsed.as_secs_f64());
    let _ = writeln!(out, "  mailboxes: {} ({} created)", s.mailboxes, s.mailboxes_created);
    let _ = writeln!(
        out,
        "  messages stored: {} ({} bytes, {} per second)",
        s.inserted,
        s.bytes,
        per_second(s.inserted, s.elapsed)
    );
    let _ = writeln!(
        out,
        "  already there: {} (flags updated: {}); same bytes already in a renumbered mailbox: {}",
        s.present, s.flags_updated, s.duplicates
    );
    let _ = writeln!(out, "  expunged UIDs recorded: {}", s.expunged);
    let _ = writeln!(out, "  skipped (bad): {}", s.bad.len());
    for bad in &s.bad {
        let _ = writeln!(out, "    {bad}");
    }
    for renumbered in &s.renumbered {
        let _ = writeln!(out, "  new UIDVALIDITY: {renumbered}");
    }
    for note in &s.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    if s.account_created {
        let _ = writeln!(
            out,
            "  the account {account} was made by this import and has no password: set one with \
             `postfach user passwd {account}`"
        );
    }
    out
}
