//! The `postfach backup …` commands: an online backup of the data directory, its check, and
//! restoring one onto a stopped installation.
//!
//! `backup create DIR` works while the server runs: it reads the database in a snapshot of one
//! instant and blocks no writer ([`postfach_store::sqlite::backup`]); `--max-rate` leaves disk
//! bandwidth to the server. `backup verify DIR` recomputes every checksum and runs SQLite's
//! integrity check; `backup restore DIR` verifies, then refuses while a server (or any other
//! process) uses the target data directory. What a backup directory holds and how a killed
//! backup is survived: [`crate::backup`].
//!
//! Progress bars go to stderr when it is a terminal; the one-line results go to stderr too,
//! like the other admin commands'. Exit codes: 0 success, 1 failure (one message listing every
//! problem).

use std::num::NonZeroU64;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use postfach_store::sqlite::backup::CopyOptions;

use crate::backup::{self, CreateError, Existing, Manifest, Stage};
use crate::config::Config;

/// `postfach backup …`.
#[derive(Debug, Subcommand)]
pub(crate) enum BackupCommand {
    /// Back up the whole installation into DIR, a new directory, while the server runs: the
    /// database as of one instant (writers are not blocked), the generated TLS certificate and
    /// key, and manifest.json with every file's SHA-256.
    Create {
        /// The new backup directory (must not exist, or be empty).
        dir: PathBuf,
        /// Read the database at most this fast, per second ("50MiB", "200M", "1G", bytes), to
        /// leave disk bandwidth to the server. Default: as fast as the disk goes.
        #[arg(long, value_name = "SIZE", value_parser = parse_rate)]
        max_rate: Option<NonZeroU64>,
    },
    /// Check a backup: every file against the manifest's size and SHA-256, no file missing or
    /// added, and SQLite's integrity check of the database. Exits 1 listing every problem.
    Verify {
        /// The backup directory.
        dir: PathBuf,
        /// Print one JSON document: {"ok": true, "manifest": {...}} or {"ok": false, "error"}
        /// (the exit code is 1 then, as without it).
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup into a data directory whose server is stopped. The backup is verified
    /// first; the files it replaces are moved into <data dir>/replaced-<time>/, not deleted.
    Restore {
        /// The backup directory.
        dir: PathBuf,
        /// The data directory to restore into (created when missing). Default: the configured
        /// data_dir.
        #[arg(long, value_name = "PATH")]
        data_dir: Option<PathBuf>,
        /// Replace the database the data directory already holds.
        #[arg(long)]
        force: bool,
    },
}

/// Runs a `backup` subcommand (blocking).
pub(crate) fn run(command: BackupCommand, config: &Config) -> anyhow::Result<()> {
    if config.store.backend == crate::config::StoreBackend::Postgres {
        anyhow::bail!(
            "`postfach backup` copies the SQLite store of the data directory; a PostgreSQL store is \
             backed up with PostgreSQL's own tools (pg_dump, or base backups with WAL archiving)"
        );
    }
    match command {
        BackupCommand::Create { dir, max_rate } => create(config, &dir, max_rate),
        BackupCommand::Verify { dir, json: true } => {
            let mut bar = Bar::new();
            let verified = backup::verify(&dir, &mut bar, None);
            bar.finish();
            match verified {
                Ok(v) => {
                    crate::admin_output::print_json(&serde_json::json!({"ok": true, "manifest": v.manifest}))
                }
                Err(e) => {
                    crate::admin_output::print_json(
                        &serde_json::json!({"ok": false, "error": format!("{e:#}")}),
                    )?;
                    anyhow::bail!("the backup in {} is not good", dir.display())
                }
            }
        }
        BackupCommand::Verify { dir, json: false } => {
            let mut bar = Bar::new();
            let verified = backup::verify(&dir, &mut bar, None);
            bar.finish();
            let manifest = verified?.manifest;
            eprintln!("postfach: the backup in {} is good: {}", dir.display(), describe(&manifest));
            Ok(())
        }
        BackupCommand::Restore { dir, data_dir, force } => {
            let data_dir = data_dir.unwrap_or_else(|| config.data_dir.clone());
            let existing = if force { Existing::MoveAside } else { Existing::Keep };
            let mut bar = Bar::new();
            let restored = backup::restore(&dir, &data_dir, existing, &mut bar);
            bar.finish();
            let restored = restored.with_context(|| format!("restoring {}", dir.display()))?;
            eprintln!(
                "postfach: restored {} into {}: {}",
                dir.display(),
                data_dir.display(),
                describe(&restored.manifest)
            );
            if let Some(aside) = restored.replaced {
                eprintln!(
                    "postfach: the files it replaced are in {} (delete them when done)",
                    aside.display()
                );
            }
            Ok(())
        }
    }
}

fn create(config: &Config, dir: &Path, max_rate: Option<NonZeroU64>) -> anyhow::Result<()> {
    let options = CopyOptions { max_rate, ..CopyOptions::default() };
    let started = Instant::now();
    let mut bar = Bar::new();
    let created = backup::create(&config.data_dir, dir, options, &mut bar);
    bar.finish();
    let created = match created {
        Ok(created) => created,
        Err(CreateError::Cancelled) => anyhow::bail!("cancelled"),
        Err(CreateError::Failed(e)) => return Err(e.context(format!("backing up into {}", dir.display()))),
    };
    eprintln!(
        "postfach: backup written to {}: {}; database copied in {}, all done in {}",
        created.dir.display(),
        describe(&created.manifest),
        seconds(created.copy_time),
        seconds(started.elapsed())
    );
    Ok(())
}

/// `created 2027-01-04T03:00:00Z, 3 accounts, 18 mailboxes, 12034 messages, 3 files, 91.2 MiB`.
fn describe(manifest: &Manifest) -> String {
    format!(
        "created {}, {} accounts, {} mailboxes, {} messages, {} files, {}",
        manifest.created,
        manifest.accounts,
        manifest.mailboxes,
        manifest.messages,
        manifest.files.len(),
        HumanBytes(manifest.bytes())
    )
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// `"50MiB"`, `"200M"`, `"1G"`, `"1048576"`: bytes per second (K, M, G are powers of 1024, with
/// or without `iB`/`B`).
fn parse_rate(text: &str) -> Result<NonZeroU64, String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let number: u64 = text[..digits].parse().map_err(|_| format!("not a size like \"50MiB\": {text:?}"))?;
    let unit: u64 = match text[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} (use K, M or G)")),
    };
    number.checked_mul(unit).and_then(NonZeroU64::new).ok_or_else(|| format!("not a usable rate: {text:?}"))
}

/// The progress bar: one per command, restyled at each stage; hidden when stderr is not a
/// terminal (indicatif draws nothing then).
struct Bar {
    bar: ProgressBar,
    stage: Option<Stage>,
}

impl Bar {
    fn new() -> Self {
        Self { bar: ProgressBar::hidden(), stage: None }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl backup::Progress for Bar {
    fn report(&mut self, stage: Stage, done: u64, total: u64) -> ControlFlow<()> {
        if self.stage != Some(stage) {
            self.bar.finish_and_clear();
            self.bar = match stage {
                Stage::Copying | Stage::Checksumming => {
                    let label = if stage == Stage::Copying { "copying database" } else { "checksums" };
                    let style = ProgressStyle::with_template(&format!(
                        "{label:>16} [{{bar:40}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{eta}}"
                    ))
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                    ProgressBar::new(total).with_style(style)
                }
                Stage::Checking => {
                    let style = ProgressStyle::with_template("{spinner} integrity check {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner());
                    let spinner = ProgressBar::new_spinner().with_style(style);
                    spinner.enable_steady_tick(Duration::from_millis(120));
                    spinner
                }
            };
            self.stage = Some(stage);
        }
        if stage != Stage::Checking {
            self.bar.set_length(total);
            self.bar.set_position(done);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        for (text, bytes) in
            [("50MiB", 50 << 20), ("200M", 200 << 20), ("1G", 1 << 30), ("4096", 4096), ("64 KiB", 64 << 10)]
        {
            assert_eq!(parse_rate(text).unwrap().get(), bytes, "{text}");
        }
        for bad in ["", "0", "fast", "10T", "-1M", "99999999999G"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }
}
