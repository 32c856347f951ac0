//! The `postfach` binary: command line, configuration, logging, and the wiring of the server.
//!
//! `postfach serve` loads the configuration, sets up TLS and the store, binds the listeners,
//! prints one `postfach: listening <kind> <addr>` line per listener on standard output (scripts
//! and tests read the real port from it), and serves until SIGTERM or SIGINT. `postfach user …`
//! manages accounts in the same data directory, also while the server runs.
//! Exit codes: 0 success, 1 error (one line on stderr; a bad configuration lists every problem),
//! 2 usage error.
//!
//! # Layout
//! - `config`: TOML → validated `Config`.
//! - `tls`: the rustls server configuration; self-signed certificate on first start, renewed
//!   near expiry.
//! - `acme`: certificates from an ACME CA (RFC 8555): ordering, renewal, challenge answers.
//! - `acme_http`: the HTTPS client the ACME protocol runs over.
//! - `listener`: binding, accept loops, connection cap, graceful shutdown.
//! - `imap_conn`: drives one `postfach_imap::Session` over a socket.
//! - `tls_conn`: TLS for IMAP through rustls' unbuffered API, with buffers freed while idle.
//! - `pop3`: POP3 (RFC 1939) on the same store and login policy: session and driver.
//! - `compress`: the COMPRESS=DEFLATE stream layer (RFC 4978) under `imap_conn`.
//! - `admin`: the `user` subcommands.
//! - `lmtp_conn`: the LMTP listeners and connection driver (mail from the MTA).
//! - `relay`: the SMTP client the outbound queue's sender uses.
//! - `queue`: the outbound queue's wiring (outbox, sender) and `queue list|flush|delete`.
//! - `deliver`: `postfach deliver`, one message from a pipe (sysexits exit codes).
//! - `admin_sieve`: the `sieve` subcommands (users' Sieve scripts).
//! - `admin_auth`: the `user totp`, `user app-password` and `ban` subcommands.
//! - `binding`: TLS channel binding data for SCRAM-SHA-256-PLUS.
//! - `cert_info`: what a certificate says (subject, names, validity, SHA-256 fingerprint).
//! - `admin_tls`: the `tls show` and `tls renew` subcommands.
//! - `backup`: backup directories (create, verify, restore) and the data directory's lock.
//! - `admin_backup`: the `backup` subcommands, with progress bars.
//! - `backup_schedule`: the backups the server takes by itself (`[backup]`).
//! - `admin_share`: the `team`, `group`, `acl`, `quota` and `mailbox` subcommands.
//! - `quota`: sizes (`"10G"`), and the task that delivers quota warnings.
//! - `cleanup`: the automatic clean-up of Trash and Junk, and `cleanup run`.
//! - `metrics`: counters, the Prometheus exposition, the `/metrics` and `/health` listener.
//! - `status`: `postfach status`, the same figures for a person.
//! - `sessions`: the live IMAP sessions (who is logged in, what is selected; kick).
//! - `control`: the control socket (`DATA/control.sock`) admin commands reach the server by.
//! - `admin_session`: the `who` and `kick` subcommands.
//! - `admin_mailbox`: `mailbox list|status|create|delete`, `search` and `expunge`.
//! - `admin_query`: IMAP SEARCH keys on the command line → store criteria.
//! - `admin_index`: `index rebuild`.
//! - `admin_config`: `config check`.
//! - `admin_output`: tables, `--json` documents and dates for the admin commands.
//! - `admin_migrate`: `export`, `import` and the importers from other sources.
//! - `managesieve`: the ManageSieve service (RFC 5804): users' Sieve scripts over the network.
//! - `web`: the web pages: users' self-service and the admin pages (HTTP and HTTPS).
//!
//! This crate holds no business rules: it only wires and drives.

mod acme;
mod acme_http;
mod admin;
mod admin_auth;
mod admin_backup;
mod admin_config;
mod admin_index;
mod admin_mailbox;
mod admin_migrate;
mod admin_move;
mod admin_output;
mod admin_query;
mod admin_session;
mod admin_share;
mod admin_sieve;
mod admin_tls;
mod backup;
mod backup_schedule;
mod binding;
mod cert_info;
mod cleanup;
mod compress;
mod config;
mod control;
mod deliver;
mod imap_conn;
mod listener;
mod literal_budget;
mod lmtp_conn;
mod managesieve;
mod metrics;
mod oauth;
mod pop3;
mod queue;
mod quota;
mod relay;
mod sessions;
mod status;
mod tls;
mod tls_conn;
mod web;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use postfach_auth::Authenticator;
use postfach_auth::clock::SystemClock;
use postfach_imap::{ServerContext, SessionConfig};
use postfach_store::sqlite::SqliteStore;
use postfach_store::{AccountStore, MailStore, ShareStore, SieveStore, Store, StoreLimits};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, Semaphore, watch};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::admin::{Confirmation, PasswordSource};
use crate::admin_share::ShareCommand;
use crate::cert_info::CertInfo;
use crate::config::{Config, LogConfig, LogFormat};
use crate::imap_conn::ConnSettings;
use crate::listener::Shared;
use crate::tls::CertSource;

/// How often the server reads the store's credentials generation: the longest a session opened
/// with a revoked app password lives on (one tiny read per period).
const CREDENTIALS_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Postfach, an IMAP4rev2 mail server.
#[derive(Debug, Parser)]
#[command(name = "postfach", version)]
struct Cli {
    /// Configuration file (TOML). Without it the built-in defaults apply.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the IMAP server until SIGTERM or SIGINT.
    Serve,
    /// Manage accounts (works while the server runs).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Deliver one message from standard input (for MTAs that pipe to a command). Exit codes:
    /// 0 delivered, 64 usage, 65 refused, 67 unknown user, 73 over quota for good, 75 try again
    /// later (also over quota, by default).
    Deliver(deliver::DeliverArgs),
    /// Manage users' Sieve scripts (works while the server runs).
    Sieve {
        #[command(subcommand)]
        command: admin_sieve::SieveCommand,
    },
    /// Show and lift blocks of client addresses after failed logins (works while the server
    /// runs).
    Ban {
        #[command(subcommand)]
        command: admin_auth::BanCommand,
    },
    /// Show the TLS certificates in use (works while the server runs).
    Tls {
        #[command(subcommand)]
        command: admin_tls::TlsCommand,
    },
    /// Back up the installation (while the server runs), check a backup, restore one.
    Backup {
        #[command(subcommand)]
        command: admin_backup::BackupCommand,
    },
    /// Team mailboxes: accounts that cannot log in, shared with their members under Shared/
    /// (works while the server runs).
    Team {
        #[command(subcommand)]
        command: admin_share::TeamCommand,
    },
    /// Groups of users, for `$group` ACL entries.
    Group {
        #[command(subcommand)]
        command: admin_share::GroupCommand,
    },
    /// Who may do what in a mailbox (RFC 4314 access control lists).
    Acl {
        #[command(subcommand)]
        command: admin_share::AclCommand,
    },
    /// Quotas of accounts and teams (RFC 9208).
    Quota {
        #[command(subcommand)]
        command: admin_share::QuotaCommand,
    },
    /// An account's mailboxes: list, status, create, delete, and the seen mode (works while
    /// the server runs).
    Mailbox {
        #[command(subcommand)]
        command: admin_share::MailboxCommand,
    },
    /// Automatic clean-up of Trash and Junk (`[cleanup]`; the server runs it by itself).
    Cleanup {
        #[command(subcommand)]
        command: CleanupCommand,
    },
    /// The outbound queue: vacation replies, redirects and bounces waiting for the SMTP relay
    /// (works while the server runs).
    Queue {
        #[command(subcommand)]
        command: queue::QueueCommand,
    },
    /// The store's database: schema migrations (`[store]`).
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// What the server is doing: asks the running server's metrics endpoint (`[metrics]
    /// listen`), or reads the store when there is none.
    Status {
        /// The metrics endpoint to ask ("127.0.0.1:9464") instead of `[metrics] listen`.
        #[arg(long, value_name = "ADDR")]
        address: Option<std::net::SocketAddr>,
        /// Print one JSON document: the endpoint's samples, or the store's totals.
        #[arg(long)]
        json: bool,
    },
    /// List the running server's IMAP sessions: user, address, since when, selected mailbox
    /// (exit code 1 when no server runs).
    Who(admin_session::WhoArgs),
    /// End every IMAP session of a user with `* BYE` (they may log in again; to keep them out,
    /// change the password).
    Kick(admin_session::KickArgs),
    /// Search an account's mail with IMAP SEARCH keys: FROM alice SINCE 1-Dec-2026 UNSEEN.
    Search(admin_mailbox::SearchArgs),
    /// Remove the messages of a mailbox that match IMAP SEARCH keys (as UID EXPUNGE does);
    /// IDLE clients of a running server see it at once.
    Expunge(admin_mailbox::ExpungeArgs),
    /// The stored messages' summaries, search text and sort keys.
    Index {
        #[command(subcommand)]
        command: admin_index::IndexCommand,
    },
    /// Check a configuration file (every problem, exit code 1 when there is one).
    Config {
        #[command(subcommand)]
        command: admin_config::ConfigCommand,
    },
    /// Write an account (mail, mailboxes, flags, UIDs, ACLs, quota limits, Sieve scripts) into a
    /// directory in Postfach's export format (docs/export-format.md). Works while the server runs.
    Export(admin_migrate::ExportArgs),
    /// Read an export directory into an account, UIDs and UIDVALIDITY kept where possible.
    /// Run it again after an interruption to finish.
    Import(admin_migrate::ImportArgs),
    /// Import a Maildir: Dovecot's keeps its UIDVALIDITY, UIDs, flags, keywords and
    /// subscriptions. Run it again after an interruption to finish.
    ImportMaildir(admin_migrate::ImportMaildirArgs),
    /// Import mbox files (flags from Status, X-Status and X-Keywords). Run it again after an
    /// interruption to finish.
    ImportMbox(admin_migrate::ImportMboxArgs),
    /// Import an account from a live IMAP server: every folder, flags, INTERNALDATE, UIDs and
    /// UIDVALIDITY where the folder is new here. Run it again after an interruption to resume.
    ImportImap(admin_migrate::ImportImapArgs),
    /// Move accounts from one store to another (`--from CONFIG --to CONFIG`, e.g. SQLite to
    /// PostgreSQL), keeping UIDVALIDITY, UIDs, MODSEQs and credentials. Works while the server
    /// on the source runs; run it again to catch up.
    Migrate(admin_move::MoveArgs),
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Bring the store's schema up to date (also done at start). Refuses a database written by
    /// a newer Postfach.
    Migrate,
}

#[derive(Debug, Subcommand)]
enum CleanupCommand {
    /// Run one pass now and list what it removed. Beside a running server its sessions see the
    /// expunges at their next command (the server's own passes reach IDLE at once).
    Run {
        /// Pretend it is this time: Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC).
        #[arg(long, value_name = "TIME", value_parser = cleanup::parse_time)]
        now: Option<i64>,
        /// Print one JSON document: {"removed": [{"account", "mailbox", "messages", "days"}]}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account with the default mailboxes.
    Add {
        /// Login name.
        name: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Print every account name, one per line.
    List {
        /// Print one JSON document: {"users": [names]}.
        #[arg(long)]
        json: bool,
    },
    /// Change an account's password. Sessions opened with the old password end within seconds;
    /// sessions opened with app passwords stay.
    Passwd {
        /// Login name.
        name: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account and all its mail.
    Delete {
        /// Login name.
        name: String,
        /// Confirm the deletion (required: it cannot be undone).
        #[arg(long)]
        yes: bool,
    },
    /// Two-factor login with a TOTP authenticator app.
    Totp {
        #[command(subcommand)]
        command: admin_auth::TotpCommand,
    },
    /// Per-device passwords that can be revoked one by one.
    AppPassword {
        #[command(subcommand)]
        command: admin_auth::AppPasswordCommand,
    },
    /// Change an account's (or a team's) settings; prints them.
    Set {
        /// Account or team name.
        name: String,
        /// Days messages stay in Trash before the clean-up removes them: a number (0: never),
        /// or "default" for `[cleanup] trash_days`.
        #[arg(long, value_name = "DAYS", value_parser = days_setting)]
        trash_days: Option<DaysSetting>,
        /// Days messages stay in Junk: a number (0: never), or "default".
        #[arg(long, value_name = "DAYS", value_parser = days_setting)]
        junk_days: Option<DaysSetting>,
        /// Whether the user may use the admin pages of the web interface (`[web]`): true or
        /// false.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        admin: Option<bool>,
    },
}

/// A `--trash-days`/`--junk-days` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DaysSetting {
    /// The account's own number of days.
    Days(u32),
    /// Back to the installation's default.
    Default,
}

fn days_setting(text: &str) -> Result<DaysSetting, String> {
    if text.eq_ignore_ascii_case("default") {
        return Ok(DaysSetting::Default);
    }
    match text.parse::<i64>() {
        Ok(n) if config::CLEANUP_DAYS_RANGE.contains(&n) => {
            Ok(DaysSetting::Days(u32::try_from(n).unwrap_or(0)))
        }
        _ => Err(format!(
            "expected a number of days from {} to {}, or \"default\"",
            config::CLEANUP_DAYS_RANGE.start(),
            config::CLEANUP_DAYS_RANGE.end()
        )),
    }
}

fn main() -> ExitCode {
    // Usage errors exit with 2 here, from clap; `deliver` uses sysexits' 64 instead.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && deliver::invoked() => {
            let _ = e.print();
            return ExitCode::from(deliver::EX_USAGE);
        }
        Err(e) => e.exit(),
    };
    if let Command::Deliver(args) = cli.command {
        return deliver::main(cli.config.as_deref(), args);
    }
    // Reads the two configurations it names, not the default one.
    if let Command::Migrate(args) = cli.command {
        let outcome = init_logging(&LogConfig { level: "warn".to_owned(), format: LogFormat::Text })
            .and_then(|()| {
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .context("starting the runtime")
            })
            .and_then(|runtime| runtime.block_on(admin_move::run(args)));
        return match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("postfach: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // Checks the file instead of loading it.
    if let Command::Config { command } = cli.command {
        return admin_config::run(command, cli.config.as_deref());
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postfach: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    match cli.command {
        Command::Serve => {
            init_logging(&config.log)?;
            runtime.block_on(serve(config))
        }
        Command::User { command } => {
            // Only problems are worth a log line in a one-shot command.
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime.block_on(user(command, &config))
        }
        Command::Sieve { command } => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime.block_on(async {
                let store = open_store(&config).await?;
                admin_sieve::run(command, store.as_ref(), store.as_ref()).await
            })
        }
        Command::Ban { command } => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime.block_on(async { admin_auth::ban(command, open_store(&config).await?.as_ref()).await })
        }
        Command::Tls { command } => admin_tls::run(command, &config, &runtime),
        Command::Backup { command } => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            admin_backup::run(command, &config)
        }
        Command::Team { command } => share(&runtime, &config, ShareCommand::Team(command)),
        Command::Group { command } => share(&runtime, &config, ShareCommand::Group(command)),
        Command::Acl { command } => share(&runtime, &config, ShareCommand::Acl(command)),
        Command::Quota { command } => share(&runtime, &config, ShareCommand::Quota(command)),
        Command::Mailbox { command } => share(&runtime, &config, ShareCommand::Mailbox(command)),
        Command::Cleanup { command: CleanupCommand::Run { now, json } } => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime.block_on(cleanup_run(&config, now, json))
        }
        Command::Queue { command } => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime
                .block_on(async { queue::run(command, &config, open_store(&config).await?.as_ref()).await })
        }
        Command::Db { command: DbCommand::Migrate } => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime.block_on(db_migrate(&config))
        }
        Command::Status { address, json } => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime.block_on(status::run(&config, address, json))
        }
        Command::Who(args) => runtime.block_on(admin_session::who(args, &config.data_dir)),
        Command::Kick(args) => runtime.block_on(admin_session::kick(args, &config.data_dir)),
        Command::Search(args) => mail_admin(&runtime, &config, async |stores| stores.search(args).await),
        Command::Expunge(args) => {
            mail_admin(&runtime, &config, async |stores| stores.expunge(args, &config.data_dir).await)
        }
        Command::Index { command } => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime.block_on(async { admin_index::run(command, open_store(&config).await?.as_ref()).await })
        }
        Command::Export(args) => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime.block_on(async { admin_migrate::export(args, open_store(&config).await?.as_ref()).await })
        }
        Command::Import(args) => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime.block_on(async {
                admin_migrate::import(args, open_store(&config).await?.as_ref(), &config.data_dir).await
            })
        }
        Command::ImportMaildir(args) => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime.block_on(async {
                admin_migrate::import_maildir(args, open_store(&config).await?.as_ref(), &config.data_dir)
                    .await
            })
        }
        Command::ImportMbox(args) => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime.block_on(async {
                admin_migrate::import_mbox(args, open_store(&config).await?.as_ref(), &config.data_dir).await
            })
        }
        Command::ImportImap(args) => {
            init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
            runtime.block_on(async {
                admin_migrate::import_imap(args, open_store(&config).await?.as_ref(), &config.data_dir).await
            })
        }
        // Handled in main, before the configuration is loaded.
        Command::Deliver(_) | Command::Config { .. } | Command::Migrate(_) => Ok(()),
    }
}

async fn user(command: UserCommand, config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let accounts: &dyn AccountStore = store.as_ref();
    let source = |stdin: bool| if stdin { PasswordSource::Stdin } else { PasswordSource::Prompt };
    match command {
        UserCommand::Add { name, password_stdin } => {
            admin::add(accounts, &name, source(password_stdin)).await
        }
        UserCommand::List { json } => admin::list(accounts, json).await,
        UserCommand::Passwd { name, password_stdin } => {
            admin::passwd(accounts, &name, source(password_stdin)).await
        }
        UserCommand::Delete { name, yes } => {
            let confirmation = if yes { Confirmation::Confirmed } else { Confirmation::Missing };
            admin::delete(accounts, &name, confirmation).await
        }
        UserCommand::Totp { command } => admin_auth::totp(command, accounts, &config.auth.totp_issuer).await,
        UserCommand::AppPassword { command } => admin_auth::app_password(command, accounts).await,
        UserCommand::Set { name, trash_days, junk_days, admin } => {
            user_set(store.as_ref(), config, &name, (trash_days, junk_days), admin).await
        }
    }
}

/// `user set`: changes the given settings, then prints them all.
async fn user_set(
    store: &dyn Store,
    config: &Config,
    name: &str,
    (trash_days, junk_days): (Option<DaysSetting>, Option<DaysSetting>),
    admin: Option<bool>,
) -> anyhow::Result<()> {
    let account = store.account_by_name(name).await?.ok_or_else(|| anyhow::anyhow!("no account {name:?}"))?;
    if let Some(admin) = admin {
        if admin && account.kind == postfach_store::AccountKind::Team {
            anyhow::bail!("{name} is a team: teams never log in, so they cannot administer");
        }
        store.set_admin(account.id, admin).await.context("changing the admin flag")?;
    }
    let mut own = store.cleanup_override(account.id).await?;
    let apply = |slot: &mut Option<u32>, setting: Option<DaysSetting>| match setting {
        Some(DaysSetting::Days(n)) => *slot = Some(n),
        Some(DaysSetting::Default) => *slot = None,
        None => {}
    };
    apply(&mut own.trash_days, trash_days);
    apply(&mut own.junk_days, junk_days);
    if trash_days.is_some() || junk_days.is_some() {
        store.set_cleanup_override(account.id, own).await?;
    }
    let show = |own: Option<u32>, default: u32| match own {
        Some(0) => "never (own setting)".to_owned(),
        Some(n) => format!("{n} days (own setting)"),
        None if default == 0 => "never (default)".to_owned(),
        None => format!("{default} days (default)"),
    };
    println!("{}", account.name);
    println!("  trash_days: {}", show(own.trash_days, config.cleanup.trash_days));
    println!("  junk_days:  {}", show(own.junk_days, config.cleanup.junk_days));
    let admin = store.is_admin(account.id).await.context("reading the admin flag")?;
    println!("  admin:      {}", if admin { "yes (the web's admin pages)" } else { "no" });
    Ok(())
}

/// `cleanup run`: one pass now (or at `--now`), one line per mailbox that lost messages.
async fn cleanup_run(config: &Config, now: Option<i64>, json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let report =
        cleanup::pass(store.as_ref(), &config.cleanup, now.unwrap_or_else(cleanup::unix_now)).await?;
    if json {
        let removed: Vec<serde_json::Value> = report
            .iter()
            .map(|r| {
                serde_json::json!({
                    "account": r.account, "mailbox": r.mailbox, "messages": r.messages, "days": r.days,
                })
            })
            .collect();
        return admin_output::print_json(&serde_json::json!({ "removed": removed }));
    }
    if report.is_empty() {
        println!("nothing to remove");
    }
    for removed in report {
        println!(
            "{}\t{}\t{} expunged (older than {} days)",
            removed.account, removed.mailbox, removed.messages, removed.days
        );
    }
    Ok(())
}

/// Runs one of the sharing commands (`team`, `group`, `acl`, `quota`, `mailbox`).
fn share(runtime: &tokio::runtime::Runtime, config: &Config, command: ShareCommand) -> anyhow::Result<()> {
    init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
    runtime.block_on(async {
        let store = open_store(config).await?;
        admin_share::Admin { accounts: store.as_ref(), mail: store.as_ref(), share: store.as_ref() }
            .run(command)
            .await
    })
}

/// Runs `search` or `expunge` on the store of the data directory.
fn mail_admin(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    command: impl AsyncFnOnce(admin_mailbox::Stores<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format })?;
    runtime.block_on(async {
        let store = open_store(config).await?;
        command(admin_mailbox::Stores { accounts: store.as_ref(), mail: store.as_ref() }).await
    })
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Held until the server ends: a restore into this data directory refuses to run meanwhile.
    let _serving = backup::DataDirLock::shared(&config.data_dir)?;
    let tls = tls::setup(&config).context("setting up TLS")?;
    let acceptor = tls.acceptor;
    match &tls.source {
        CertSource::Configured(files) => {
            for f in files {
                info!(cert = %f.cert.display(), "TLS certificate loaded");
            }
        }
        CertSource::Generated(files) | CertSource::Reused(files) | CertSource::Renewed(files, _) => {
            if let CertSource::Generated(_) = &tls.source {
                info!("generated a self-signed certificate");
            } else if let CertSource::Renewed(_, why) = &tls.source {
                warn!(%why, "renewed the self-signed certificate (same key); clients ask to accept it again");
            }
            if config.acme.is_some() {
                info!(
                    cert = %files.cert.display(),
                    "a self-signed certificate serves the names the ACME certificate does not cover"
                );
            } else {
                warn!(
                    cert = %files.cert.display(),
                    key = %files.key.display(),
                    "no [tls] section: using a self-signed certificate that clients will not trust; \
                     set [tls] cert and key (or acme) for production"
                );
            }
        }
    }
    // The fingerprint users compare with what their client shows (also `postfach tls show`).
    for der in tls.certificates.leaves() {
        if let Some(cert) = CertInfo::from_der(&der) {
            info!(
                sha256 = %cert.sha256,
                subject = %cert.subject,
                names = %cert.names.join(","),
                not_after = %cert_info::date(cert.not_after),
                "TLS certificate in use"
            );
        }
    }
    let store = open_store(&config).await?;
    info!(backend = store.backend(), "store opened");
    let counters = Arc::new(metrics::Metrics::default());
    // Deliveries nudge the quota-warning task, so a warning follows the message that crossed.
    let stored = Arc::new(Notify::new());
    // Vacation replies and redirects: queued in the store by delivery, sent by this task.
    queue::report_at_start(&config, store.as_ref()).await;
    let outbox = queue::outbox(&config, &store);
    let queue_nudge = outbox.as_ref().map(postfach_delivery::Outbox::nudge);
    let queue_sender = queue::sender(&config, &store, lmtp_conn::hostname());
    let deliverer = lmtp_conn::deliverer(&config, Arc::clone(&store), Some(Arc::clone(&stored)), outbox);
    let warner = quota::Warner::new(store.clone(), store.clone(), quota_warning_settings(&config));
    let mail: Arc<dyn MailStore> = store.clone();
    let share: Arc<dyn ShareStore> = store.clone();
    let sieve: Arc<dyn SieveStore> = store.clone();
    let accounts: Arc<dyn AccountStore> = store.clone();
    // One budget for literals and for the messages CATENATE reads and builds.
    let literal_budget =
        literal_budget::LiteralBudget::new(config.imap.literal_memory, config.imap.literal_wait);
    let mut auth =
        Authenticator::with_settings(Arc::clone(&accounts), config.auth.settings(), Arc::new(SystemClock));
    if let Some(oauth) = &config.oauth {
        auth = auth.with_oauth(oauth::verifier(oauth).await?);
    }
    let ctx = ServerContext {
        store: mail,
        share,
        auth,
        accounts,
        config: SessionConfig {
            allow_plaintext_auth: config.imap.allow_plaintext_auth,
            max_message_size: config.imap.max_message_size,
            // A certificate always exists (configured or self-signed).
            starttls_available: true,
            quota_admins: config.imap.admins.clone(),
            metadata: postfach_imap::MetadataSettings {
                max_value: config.imap.metadata_max_size,
                limits: postfach_store::MetadataLimits {
                    max_entries: config.imap.metadata_max_entries,
                    max_account_entries: config.imap.metadata_max_account_entries,
                },
                admin_contact: config.imap.admin_contact.clone(),
            },
            notify_max_pending: config.imap.notify_max_pending,
            message_memory: Some(Arc::new(literal_budget::SessionMemory(Arc::clone(&literal_budget)))),
            progress_interval: config.imap.progress_interval,
        },
    };

    // Handlers go in before the "listening" lines: whoever reads them may signal at once.
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tls::reload_on_sighup(Arc::clone(&tls.certificates)).context("installing the SIGHUP handler")?;
    let listeners = listener::bind(&config.imap, &config.pop3).await?;
    // Before the "listening" lines: whoever reads them may run `postfach who` at once.
    let control_socket = control::ControlSocket::bind(&config.data_dir).await;
    let mut announcement = String::new();
    for l in &listeners {
        let addr = l.local_addr().context("reading a listener's address")?;
        announcement.push_str(&format!("postfach: listening {} {addr}\n", l.kind));
        info!(kind = %l.kind, %addr, "listening");
    }
    // After the IMAP lines: scripts that wait for those read them first.
    let lmtp_listeners = lmtp_conn::LmtpListeners::bind(&config).await?;
    announcement.push_str(&lmtp_listeners.announcement().context("reading an LMTP listener's address")?);
    let managesieve_listeners = managesieve::bind(&config.managesieve.listen).await?;
    announcement.push_str(
        &managesieve::announcement(&managesieve_listeners)
            .context("reading a ManageSieve listener's address")?,
    );
    let metrics_listener = metrics::bind(config.metrics.listen).await?;
    if let Some(l) = &metrics_listener {
        let addr = l.local_addr().context("reading the metrics listener's address")?;
        announcement.push_str(&format!("postfach: listening metrics {addr}\n"));
        info!(kind = "metrics", %addr, "listening");
    }
    let web_listeners = web::bind(&config.web).await?;
    announcement.push_str(&web::announcement(&web_listeners).context("reading a web listener's address")?);
    // Scripts and tests read the real ports here. A closed stdout is no reason not to serve.
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(announcement.as_bytes()).and_then(|()| stdout.flush()) {
        warn!(error = %e, "cannot write the listening addresses to stdout");
    }
    drop(stdout);

    let (stop, stopped) = watch::channel(false);
    let ctx = Arc::new(ctx);
    // Stored blocks, and revocations made by the CLI, reach this process through the store.
    let watcher = Arc::clone(&ctx);
    // Other nodes' credential and block changes wake it at once (PostgreSQL's LISTEN/NOTIFY).
    let told = watcher.store.notifier().watch_credentials();
    tokio::spawn(async move { watcher.auth.watch_store_with(CREDENTIALS_POLL, Some(told)).await });
    // The scheduled backups' last results: logged, and on the metrics endpoint.
    let backup_metrics = Arc::new(backup_schedule::BackupMetrics::default());
    // What a scrape reads; the web's health page reads the same.
    let sources = Arc::new(metrics::Sources {
        metrics: Arc::clone(&counters),
        store: Arc::clone(&store),
        ctx: Arc::clone(&ctx),
        deliverer: Arc::clone(&deliverer),
        backups: Arc::clone(&backup_metrics),
    });
    let endpoint = metrics_listener
        .map(|listener| tokio::spawn(metrics::serve(listener, Arc::clone(&sources), stopped.clone())));
    // Built-in ACME (`[tls] acme`): answers to pending challenges, and the nudge of `tls renew`.
    let acme_challenges = Arc::new(acme::Challenges::default());
    let acme_renew = config.acme.as_ref().map(|_| Arc::new(Notify::new()));
    let mut conn_settings = ConnSettings::new(&config.imap, acceptor)
        .with_literal_budget(literal_budget)
        .with_certificates(Arc::clone(&tls.certificates))
        .with_metrics(Arc::clone(&counters));
    if config.acme.as_ref().is_some_and(|a| a.challenge == config::AcmeChallenge::TlsAlpn01) {
        conn_settings = conn_settings.with_acme_alpn(Arc::clone(&acme_challenges));
    }
    let shared = Arc::new(Shared {
        ctx,
        settings: Arc::new(conn_settings),
        slots: Arc::new(Semaphore::new(config.imap.max_connections)),
        pop3: Arc::new(pop3::Pop3Settings::new(&config.pop3, &config.imap)),
    });
    let control = control_socket.map(|socket| {
        let control = control::Control {
            sessions: Arc::clone(&shared.settings.sessions),
            store: Arc::clone(&shared.ctx.store),
            queue: queue_nudge.clone(),
            acme_renew: acme_renew.clone(),
        };
        tokio::spawn(control::serve(socket, Arc::new(control), stopped.clone()))
    });
    let mut web = web::Web::new(
        &config.web,
        (Arc::clone(&shared.ctx), Arc::clone(&store), Arc::clone(&sieve)),
        Arc::clone(&shared.settings.sessions),
        sources,
        config.auth.totp_issuer.clone(),
        shared.settings.tls.clone(),
    );
    web.queue_nudge = queue_nudge.clone();
    let web = tokio::spawn(web::serve(web_listeners, Arc::new(web), stopped.clone()));
    let managesieve = tokio::spawn(managesieve::serve(
        managesieve_listeners,
        Arc::new(managesieve::Service {
            ctx: Arc::clone(&shared.ctx),
            sieve,
            settings: Arc::clone(&shared.settings),
            slots: Arc::clone(&shared.slots),
            max_redirects: postfach_sieve::Limits::default().max_redirects,
        }),
        stopped.clone(),
    ));
    let lmtp = tokio::spawn(lmtp_conn::serve(
        lmtp_listeners,
        deliverer,
        lmtp_conn::limits(&config),
        Arc::clone(&counters),
        stopped.clone(),
    ));
    let backups = config.backup.dir.clone().map(|dir| {
        let schedule = backup_schedule::Schedule {
            data_dir: config.data_dir.clone(),
            dir,
            every: config.backup.every,
            keep: config.backup.keep,
        };
        tokio::spawn(backup_schedule::run(schedule, Arc::clone(&backup_metrics), stopped.clone()))
    });
    let warnings = tokio::spawn(warner.run(stored, stopped.clone()));
    let outbound = match (queue_sender, queue_nudge) {
        (Some(sender), Some(nudge)) => {
            Some(tokio::spawn(sender.run(nudge, stopped.clone(), listener::SHUTDOWN_GRACE)))
        }
        _ => None,
    };
    let cleaner = tokio::spawn(cleanup::run(store, config.cleanup, counters, stopped.clone()));
    let mut server = tokio::spawn(listener::serve(listeners, shared, stopped.clone()));
    // After the listeners: a TLS-ALPN-01 validation connects to them.
    let acme = match (config.acme.clone(), acme_renew) {
        (Some(acme_config), Some(renew)) => {
            let task = acme::AcmeTask {
                config: acme_config,
                files: acme::files(&config.data_dir),
                certificates: Arc::clone(&tls.certificates),
                challenges: acme_challenges,
                renew,
            };
            Some(tokio::spawn(task.run(stopped)))
        }
        _ => None,
    };
    tokio::select! {
        _ = sigterm.recv() => info!("SIGTERM received; shutting down"),
        _ = sigint.recv() => info!("SIGINT received; shutting down"),
        ended = &mut server => {
            ended.context("the server task failed")?;
            anyhow::bail!("the server stopped by itself");
        }
    }
    stop.send_replace(true);
    server.await.context("the server task failed")?;
    lmtp.await.context("the LMTP task failed")?;
    managesieve.await.context("the ManageSieve task failed")?;
    web.await.context("the web task failed")?;
    if let Some(backups) = backups {
        backups.await.context("the backup task failed")?;
    }
    warnings.await.context("the quota-warning task failed")?;
    if let Some(outbound) = outbound {
        outbound.await.context("the outbound queue's task failed")?;
    }
    cleaner.await.context("the clean-up task failed")?;
    if let Some(acme) = acme {
        acme.await.context("the ACME task failed")?;
    }
    if let Some(endpoint) = endpoint {
        endpoint.await.context("the metrics listener failed")?;
    }
    if let Some(control) = control {
        control.await.context("the control socket's task failed")?;
    }
    info!("stopped");
    Ok(())
}

/// Who quota warnings come from, and the domain of account names without one.
fn quota_warning_settings(config: &Config) -> quota::WarningSettings {
    let hostname = lmtp_conn::hostname();
    quota::WarningSettings {
        from: config.quota.postmaster.clone().unwrap_or_else(|| format!("postmaster@{hostname}")),
        domain: config.delivery.domains.first().cloned().unwrap_or_else(|| hostname.clone()),
        hostname,
    }
}

/// The store's limits the configuration describes (the server, `deliver` and the admin
/// commands open the store with the same ones).
pub(crate) fn store_limits(config: &Config) -> StoreLimits {
    StoreLimits { max_mailboxes: config.max_mailboxes(), default_quota: config.default_quota() }
}

/// Opens the configured store: the SQLite store of the data directory (creating both if
/// needed; opening migrates the schema and blocks, so it runs on the blocking pool), or the
/// PostgreSQL database of `[store] url`, migrated at start.
pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    match config.store.backend {
        config::StoreBackend::Sqlite => Ok(Arc::new(open_sqlite(config).await?)),
        config::StoreBackend::Postgres => {
            let store = postfach_store::postgres::PgStore::connect_with(pg_options(config)?)
                .await
                .context("opening the PostgreSQL store ([store] url)")?;
            Ok(Arc::new(store))
        }
    }
}

/// Opens the SQLite store of the data directory.
async fn open_sqlite(config: &Config) -> anyhow::Result<SqliteStore> {
    let dir = config.data_dir.clone();
    let limits = store_limits(config);
    let context = format!("opening the store in {}", dir.display());
    let opened = tokio::task::spawn_blocking(move || SqliteStore::open_with(&dir, limits))
        .await
        .context(context.clone())?;
    opened.context(context)
}

/// How to reach the PostgreSQL store: `[store] url`, the password from `password_file` or
/// `password_env` (never from the configuration file itself).
fn pg_options(config: &Config) -> anyhow::Result<postfach_store::postgres::PgOptions> {
    let url = config.store.url.clone().context("[store] url is not set")?;
    let password = match (&config.store.password_file, &config.store.password_env) {
        (Some(file), _) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("reading store.password_file {}", file.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        ),
        (None, Some(var)) => {
            Some(std::env::var(var).with_context(|| format!("store.password_env: ${var} is not set"))?)
        }
        (None, None) => None,
    };
    let tls_ca_pem = match &config.store.tls_ca_file {
        Some(file) => Some(
            std::fs::read(file).with_context(|| format!("reading store.tls_ca_file {}", file.display()))?,
        ),
        None => None,
    };
    Ok(postfach_store::postgres::PgOptions {
        url,
        password,
        pool_size: config.store.pool_size,
        limits: store_limits(config),
        tls_ca_pem,
    })
}

/// `postfach db migrate`: opens the configured store, which migrates it, and says so.
async fn db_migrate(config: &Config) -> anyhow::Result<()> {
    match config.store.backend {
        config::StoreBackend::Sqlite => {
            drop(open_sqlite(config).await?);
            println!("the SQLite store in {} is up to date", config.data_dir.display());
        }
        config::StoreBackend::Postgres => {
            let options = postfach_store::postgres::PgOptions { pool_size: Some(2), ..pg_options(config)? };
            let store = postfach_store::postgres::PgStore::unmigrated(&options)?;
            let before = store.migrate().await.context("migrating the PostgreSQL store")?;
            let latest = postfach_store::postgres::schema::LATEST;
            if before == latest {
                println!("the PostgreSQL store is up to date (schema version {latest})");
            } else {
                println!("the PostgreSQL store was migrated from schema version {before} to {latest}");
            }
        }
    }
    Ok(())
}

/// `log.level` with rustls's own lines at `error` only, unless the level names rustls. rustls
/// warns once per connection about what a peer does, such as an IP address sent as the server
/// name (GnuTLS clients, NeoMutt among them, do that when told to connect to 127.0.0.1):
/// nothing an admin can act on, and a failed handshake is logged by the listener anyway.
fn quiet_tls(level: &str) -> String {
    if level.contains("rustls") { level.to_owned() } else { format!("{level},rustls=error") }
}

/// Logs to stderr; `RUST_LOG`, when set, overrides the configured level.
fn init_logging(log: &LogConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::builder().parse(&directives).with_context(|| format!("RUST_LOG={directives:?}"))?
        }
        _ => {
            let level = quiet_tls(&log.level);
            EnvFilter::builder().parse(&level).with_context(|| format!("log.level = {:?}", log.level))?
        }
    };
    // Colours only for a human at a terminal, not in files or journald.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}
