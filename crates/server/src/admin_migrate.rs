//! The migration commands of the CLI: `export`, `import` and the importers from other sources
//! (`import-maildir`, `import-mbox`, `import-imap`), straight in the store of the data
//! directory (also while the server runs). The work is `postfach_migrate`'s; this module parses
//! the command line and prints the summary on standard output (progress bars and problems go
//! to standard error).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use postfach_migrate::Stores;
use postfach_migrate::export::{ExportSummary, Since};
use postfach_migrate::import::ImportSummary;
use postfach_migrate::sources::ConvertReport;
use postfach_migrate::sources::imap::{Security, Source};
use postfach_store::Store;

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
    /// Print the summary as one JSON document.
    #[arg(long)]
    json: bool,
}

/// `postfach import`
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The account (user or team) to import into; made when missing (without a password).
    account: String,
    /// The export directory.
    dir: PathBuf,
    /// Print the summary as one JSON document.
    #[arg(long)]
    json: bool,
}

/// Where an importer from another source converts to, and whether that stays.
#[derive(Debug, Args)]
pub(crate) struct WorkDir {
    /// The directory the source is converted into (Postfach's export format) before the import;
    /// default `<data_dir>/import-work/<account>-<source>`. Kept when the import fails, so that
    /// running the command again resumes; removed when it succeeds.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Keep the work directory after a successful import (it is a complete export).
    #[arg(long)]
    keep_work_dir: bool,
    /// Print the summary as one JSON document.
    #[arg(long)]
    json: bool,
}

/// `postfach import-maildir`
#[derive(Debug, Args)]
pub(crate) struct ImportMaildirArgs {
    /// The account to import into; made when missing (without a password).
    account: String,
    /// The Maildir: Dovecot's (with dovecot-uidlist, dovecot-keywords, subscriptions; Maildir++
    /// or LAYOUT=fs) or a plain one.
    maildir: PathBuf,
    #[command(flatten)]
    work: WorkDir,
}

/// `postfach import-mbox`
#[derive(Debug, Args)]
pub(crate) struct ImportMboxArgs {
    /// The account to import into; made when missing (without a password).
    account: String,
    /// An mbox file, or a directory of them (each file a mailbox named by its path).
    path: PathBuf,
    /// The mailbox a single file goes into (default INBOX).
    #[arg(long, value_name = "NAME")]
    mailbox: Option<String>,
    #[command(flatten)]
    work: WorkDir,
}

/// `postfach import-imap`
#[derive(Debug, Args)]
pub(crate) struct ImportImapArgs {
    /// The account to import into; made when missing (without a password).
    account: String,
    /// The IMAP server.
    #[arg(long)]
    host: String,
    /// Its port (default 993 with --tls implicit, else 143).
    #[arg(long)]
    port: Option<u16>,
    /// implicit (TLS from the start), starttls, or none (cleartext: a server on this machine
    /// or a trusted network only).
    #[arg(long, default_value = "implicit", value_parser = ["implicit", "starttls", "none"])]
    tls: String,
    /// The login name there.
    #[arg(long)]
    user: String,
    /// A file whose first line is the password there.
    #[arg(long, value_name = "FILE")]
    password_file: PathBuf,
    /// CA certificates (PEM) to trust instead of the system's.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    #[command(flatten)]
    work: WorkDir,
}

/// The stores of one backend; export and import need its verbatim reads and writes, which the
/// PostgreSQL backend does not have yet.
pub(crate) fn stores(store: &dyn Store) -> anyhow::Result<Stores<'_>> {
    let restore = store.restore_store().ok_or_else(|| {
        anyhow::anyhow!("export and import are not available on the {} store yet", store.backend())
    })?;
    Ok(Stores { accounts: store, mail: store, share: store, sieve: store, restore })
}

pub(crate) async fn export(args: ExportArgs, store: &dyn Store) -> anyhow::Result<()> {
    let since = match (args.since_modseq, args.since) {
        (Some(n), _) => Since::ModSeq(n),
        (None, Some(dir)) => Since::Previous(dir),
        (None, None) => Since::Full,
    };
    let summary = postfach_migrate::export::export(stores(store)?, &args.account, &args.dir, since).await?;
    if args.json {
        return crate::admin_output::print_json(&serde_json::json!({
            "account": args.account,
            "dir": args.dir.display().to_string(),
            "mailboxes": summary.mailboxes,
            "messages": summary.messages,
            "bytes": summary.bytes,
            "expunged": summary.expunged,
            "next_since_modseq": summary.next_since,
            "seconds": summary.elapsed.as_secs_f64(),
        }));
    }
    print!("{}", export_report(&args.account, &args.dir, &summary));
    Ok(())
}

pub(crate) async fn import(args: ImportArgs, store: &dyn Store, data_dir: &Path) -> anyhow::Result<()> {
    let target = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_owned()).display().to_string();
    let summary = postfach_migrate::import::import(stores(store)?, &args.account, &args.dir, &target).await?;
    if args.json {
        return crate::admin_output::print_json(&import_json(&args.account, &summary, None));
    }
    print!("{}", import_report(&format!("import of {}", args.dir.display()), &args.account, &summary));
    Ok(())
}

pub(crate) async fn import_maildir(
    args: ImportMaildirArgs,
    store: &dyn Store,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let work = work_dir(&args.work, data_dir, &args.account, "maildir");
    let (maildir, account, out) = (args.maildir.clone(), args.account.clone(), work.clone());
    let report = tokio::task::spawn_blocking(move || {
        postfach_migrate::sources::prepare_work_dir(&out)?;
        postfach_migrate::sources::maildir::convert(&maildir, &account, &out)
    })
    .await??;
    let what = format!("import of the Maildir {}", args.maildir.display());
    finish_import(store, data_dir, &args.account, &work, &args.work, report, &what).await
}

pub(crate) async fn import_mbox(
    args: ImportMboxArgs,
    store: &dyn Store,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let work = work_dir(&args.work, data_dir, &args.account, "mbox");
    let (path, mailbox, account, out) =
        (args.path.clone(), args.mailbox.clone(), args.account.clone(), work.clone());
    let report = tokio::task::spawn_blocking(move || {
        postfach_migrate::sources::prepare_work_dir(&out)?;
        postfach_migrate::sources::mbox::convert(&path, mailbox.as_deref(), &account, &out)
    })
    .await??;
    let what = format!("import of the mbox {}", args.path.display());
    finish_import(store, data_dir, &args.account, &work, &args.work, report, &what).await
}

pub(crate) async fn import_imap(
    args: ImportImapArgs,
    store: &dyn Store,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let security = match args.tls.as_str() {
        "starttls" => Security::StartTls,
        "none" => Security::None,
        _ => Security::Implicit,
    };
    let password = std::fs::read_to_string(&args.password_file)
        .with_context(|| format!("reading {}", args.password_file.display()))?;
    let password = password.lines().next().unwrap_or_default().to_owned();
    let source = Source {
        host: args.host.clone(),
        port: args.port.unwrap_or(if security == Security::Implicit { 993 } else { 143 }),
        security,
        user: args.user.clone(),
        password,
        ca_file: args.ca_file.clone(),
    };
    let work = work_dir(&args.work, data_dir, &args.account, "imap");
    let (account, out) = (args.account.clone(), work.clone());
    let report = tokio::task::spawn_blocking(move || {
        postfach_migrate::sources::prepare_work_dir(&out)?;
        postfach_migrate::sources::imap::download(&source, &account, &out)
    })
    .await?
    .with_context(|| format!("reading {} at {} (run the command again to resume)", args.user, args.host))?;
    let what = format!("import of {} at {}", args.user, args.host);
    finish_import(store, data_dir, &args.account, &work, &args.work, report, &what).await
}

/// The work directory an importer converts into.
fn work_dir(work: &WorkDir, data_dir: &Path, account: &str, source: &str) -> PathBuf {
    work.work_dir.clone().unwrap_or_else(|| {
        let safe: String = account
            .chars()
            .map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        data_dir.join("import-work").join(format!("{safe}-{source}"))
    })
}

/// Imports a converted work directory, prints the summary with what the conversion left out,
/// and removes the work directory when it worked.
async fn finish_import(
    store: &dyn Store,
    data_dir: &Path,
    account: &str,
    work: &Path,
    settings: &WorkDir,
    report: ConvertReport,
    what: &str,
) -> anyhow::Result<()> {
    let target = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_owned()).display().to_string();
    let mut summary = postfach_migrate::import::import(stores(store)?, account, work, &target).await?;
    let mut bad = report.bad;
    bad.append(&mut summary.bad);
    summary.bad = bad;
    let mut notes = report.notes;
    notes.append(&mut summary.notes);
    summary.notes = notes;
    if settings.json {
        let kept = settings.keep_work_dir.then(|| work.display().to_string());
        crate::admin_output::print_json(&import_json(account, &summary, kept))?;
    } else {
        print!("{}", import_report(what, account, &summary));
        if settings.keep_work_dir {
            println!("  work directory kept: {}", work.display());
        }
    }
    if !settings.keep_work_dir
        && let Err(e) = std::fs::remove_dir_all(work)
    {
        eprintln!("postfach: cannot remove the work directory {}: {e}", work.display());
    }
    Ok(())
}

/// An import's summary as `--json` prints it.
fn import_json(account: &str, s: &ImportSummary, work_dir_kept: Option<String>) -> serde_json::Value {
    serde_json::json!({
        "account": account,
        "account_created": s.account_created,
        "team": s.team,
        "mailboxes": s.mailboxes,
        "mailboxes_created": s.mailboxes_created,
        "inserted": s.inserted,
        "bytes": s.bytes,
        "present": s.present,
        "flags_updated": s.flags_updated,
        "duplicates": s.duplicates,
        "expunged": s.expunged,
        "bad": s.bad,
        "renumbered": s.renumbered,
        "notes": s.notes,
        "seconds": s.elapsed.as_secs_f64(),
        "work_dir_kept": work_dir_kept,
    })
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
    if s.account_created && s.team {
        let _ = writeln!(out, "  the team {account} was made by this import");
    } else if s.account_created {
        let _ = writeln!(
            out,
            "  the account {account} was made by this import and has no password: set one with \
             `postfach user passwd {account}`"
        );
    }
    out
}
