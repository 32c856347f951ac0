//! Backup directories: what `postfach backup create` and the scheduled backups write, what
//! `backup verify` checks and what `backup restore` puts back into a data directory.
//!
//! # A backup directory
//! - `postfach.db`: the database, consistent to one instant, taken while the server writes
//!   ([`postfach_store::sqlite::backup`] says how, and why writers are not blocked).
//! - `tls/cert.pem`, `tls/key.pem`: the generated self-signed pair, when the data directory has
//!   one: restoring it spares every client a new certificate warning. Certificate files named in
//!   `[tls]` live outside the data directory and are not copied, nor is the configuration file.
//! - `manifest.json`: [`Manifest`]: format, Postfach version, creation time, source data
//!   directory, schema version, counts, and each file's size and SHA-256.
//!
//! The directory (mode 0700: it holds the TLS key and every password hash) is assembled as
//! `.NAME.partial` beside its final place, under a lock on that directory. Every file is
//! fsynced, the manifest is written last, the directory is fsynced, renamed to `NAME`, and the
//! parent fsynced. So a backup killed at any moment leaves at most a `.partial` directory,
//! which has no manifest (`verify` refuses it) and which the next backup into the same place
//! removes.
//!
//! # Restore
//! [`restore`] verifies the backup first, then refuses when a server runs on the target data
//! directory (it holds a shared lock on [`SERVE_LOCK`]) or anything else has the database open,
//! and when the data directory already holds a database unless told to replace it. The backup's
//! files are copied in under temporary names (checked against the manifest once more while they
//! are copied), the files they replace are moved into `replaced-<time>/` in the data directory
//! (never deleted: the operator deletes them), and the new ones renamed into place.
//!
//! Limits: one data directory's files only. A restore brings back the state of the backup's
//! instant; clients that synchronised later state keep what they saw of it (see README,
//! "Backups").

use std::fs::{self, File};
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use postfach_store::sqlite::DATABASE_FILE;
use postfach_store::sqlite::backup::{self as store_backup, BackupError, CopyOptions, DatabaseFacts};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The manifest's file name in a backup directory.
pub(crate) const MANIFEST_FILE: &str = "manifest.json";

/// The manifest format this program writes; it reads this one and older ones.
pub(crate) const FORMAT: u32 = 1;

/// The lock file in a data directory: a server holds a shared lock on it while it runs, a
/// restore an exclusive one.
pub(crate) const SERVE_LOCK: &str = "serve.lock";

/// Files of the data directory copied beside the database when they exist, as `/`-separated
/// paths relative to it: the generated TLS pair (`tls::self_signed_files`).
const DATA_FILES: [&str; 2] = ["tls/cert.pem", "tls/key.pem"];

/// Bytes read at a time when files are hashed or copied.
const CHUNK: usize = 1 << 20;

/// What a backup holds, written as `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// [`FORMAT`] of the program that wrote it.
    pub(crate) format: u32,
    /// Version of the program that wrote it.
    pub(crate) postfach_version: String,
    /// When the database snapshot was taken (RFC 3339, UTC).
    pub(crate) created: String,
    /// The data directory it was taken from.
    pub(crate) source_data_dir: String,
    /// The database's schema version (`PRAGMA user_version`).
    pub(crate) schema_version: i64,
    /// Accounts in the database.
    pub(crate) accounts: u64,
    /// Mailboxes in the database.
    pub(crate) mailboxes: u64,
    /// Messages in the database.
    pub(crate) messages: u64,
    /// Every file of the backup but the manifest.
    pub(crate) files: Vec<FileEntry>,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileEntry {
    /// Path relative to the backup directory, `/`-separated.
    pub(crate) path: String,
    /// Size in bytes.
    pub(crate) size: u64,
    /// SHA-256 of the content, lower-case hex.
    pub(crate) sha256: String,
}

impl Manifest {
    /// The total size of the files.
    pub(crate) fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// What a long operation is doing, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Copying the database snapshot (bytes).
    Copying,
    /// Computing or comparing checksums, or copying files in for a restore (bytes).
    Checksumming,
    /// SQLite's integrity check (no progress known: `done` and `total` are 0).
    Checking,
}

/// A progress report: the stage, bytes done and bytes in all. `Break` cancels the operation
/// (the partial backup is removed).
pub(crate) trait Progress {
    /// Reports progress; `Break` cancels.
    fn report(&mut self, stage: Stage, done: u64, total: u64) -> ControlFlow<()>;
}

impl<F: FnMut(Stage, u64, u64) -> ControlFlow<()>> Progress for F {
    fn report(&mut self, stage: Stage, done: u64, total: u64) -> ControlFlow<()> {
        self(stage, done, total)
    }
}

/// A finished backup.
#[derive(Debug, Clone)]
pub(crate) struct Created {
    /// Its directory.
    pub(crate) dir: PathBuf,
    /// Its manifest.
    pub(crate) manifest: Manifest,
    /// How long the database copy took (the snapshot was held that long).
    pub(crate) copy_time: Duration,
}

/// Why [`create`] failed, when the caller must tell apart a cancellation.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CreateError {
    /// The progress callback asked to stop; the partial backup was removed.
    #[error("cancelled")]
    Cancelled,
    /// Anything else.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Writes a backup of the data directory `data_dir` to the new directory `dest` (which must not
/// exist, or be empty). Blocking; see the module documentation for what it holds and how a
/// crash is survived.
pub(crate) fn create(
    data_dir: &Path,
    dest: &Path,
    copy: CopyOptions,
    progress: &mut dyn Progress,
) -> Result<Created, CreateError> {
    let Some(name) = dest.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Err(anyhow::anyhow!("{} cannot be a backup directory's name", dest.display()).into());
    };
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if dest.exists() && !is_empty_dir(dest) {
        return Err(anyhow::anyhow!("{} already exists", dest.display()).into());
    }
    create_private_dir(&parent)?;
    let partial = parent.join(format!(".{name}.partial"));
    let lock = claim_partial(&partial).with_context(|| format!("preparing {}", partial.display()))?;
    let filled = fill(data_dir, &partial, copy, progress);
    let manifest = match filled {
        Ok(manifest) => manifest,
        Err(e) => {
            drop(lock);
            if let Err(removing) = fs::remove_dir_all(&partial) {
                tracing::warn!(dir = %partial.display(), error = %removing, "cannot remove a failed backup");
            }
            return Err(e);
        }
    };
    let (manifest, copy_time) = manifest;
    lock.sync_all().with_context(|| format!("syncing {}", partial.display()))?;
    fs::rename(&partial, dest)
        .with_context(|| format!("renaming {} to {}", partial.display(), dest.display()))?;
    sync_dir(&parent)?;
    Ok(Created { dir: dest.to_owned(), manifest, copy_time })
}

/// Fills the claimed `.partial` directory; returns the manifest written and the copy's time.
fn fill(
    data_dir: &Path,
    partial: &Path,
    copy: CopyOptions,
    progress: &mut dyn Progress,
) -> Result<(Manifest, Duration), CreateError> {
    let started = Instant::now();
    let created = OffsetDateTime::now_utc();
    let copied = store_backup::copy_database(
        &data_dir.join(DATABASE_FILE),
        &partial.join(DATABASE_FILE),
        copy,
        &mut |p| progress.report(Stage::Copying, p.pages_done * p.page_size, p.pages_total * p.page_size),
    );
    let facts = match copied {
        Ok(facts) => facts,
        Err(BackupError::Cancelled) => return Err(CreateError::Cancelled),
        Err(e) => return Err(anyhow::Error::new(e).context("copying the database").into()),
    };
    let copy_time = started.elapsed();
    let mut paths = vec![DATABASE_FILE.to_owned()];
    for extra in DATA_FILES {
        let from = data_dir.join(extra);
        if !from.is_file() {
            continue;
        }
        let to = partial.join(extra);
        if let Some(dir) = to.parent() {
            create_private_dir(dir)?;
        }
        // fs::copy keeps the mode: the key stays readable by its owner only.
        fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
        sync_file(&to)?;
        if let Some(dir) = to.parent() {
            sync_dir(dir)?;
        }
        paths.push(extra.to_owned());
    }
    let files = hash_files(partial, &paths, progress)?;
    let source = fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let manifest = manifest(&facts, created, &source, files);
    let text = serde_json::to_vec_pretty(&manifest).context("writing the manifest")?;
    let path = partial.join(MANIFEST_FILE);
    let mut file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((manifest, copy_time))
}

fn manifest(
    facts: &DatabaseFacts,
    created: OffsetDateTime,
    source: &Path,
    files: Vec<FileEntry>,
) -> Manifest {
    Manifest {
        format: FORMAT,
        postfach_version: env!("CARGO_PKG_VERSION").to_owned(),
        created: rfc3339(created),
        source_data_dir: source.display().to_string(),
        schema_version: facts.schema_version,
        accounts: facts.accounts,
        mailboxes: facts.mailboxes,
        messages: facts.messages,
        files,
    }
}

/// Sizes and SHA-256 of `paths` in `dir`, reported as [`Stage::Checksumming`].
fn hash_files(
    dir: &Path,
    paths: &[String],
    progress: &mut dyn Progress,
) -> Result<Vec<FileEntry>, CreateError> {
    let mut total = 0;
    for path in paths {
        let file = dir.join(path);
        total += fs::metadata(&file).with_context(|| format!("reading {}", file.display()))?.len();
    }
    let mut done = 0;
    let mut entries = Vec::new();
    for path in paths {
        let file = dir.join(path);
        let (size, sha256) = match hash_file(&file, &mut |n| {
            done += n;
            progress.report(Stage::Checksumming, done, total)
        }) {
            Ok(Some(hashed)) => hashed,
            Ok(None) => return Err(CreateError::Cancelled),
            Err(e) => return Err(e.into()),
        };
        entries.push(FileEntry { path: path.clone(), size, sha256 });
    }
    Ok(entries)
}

/// Size and SHA-256 of a file; `read` hears of every chunk and may cancel (`None`).
fn hash_file(
    path: &Path,
    read: &mut dyn FnMut(u64) -> ControlFlow<()>,
) -> anyhow::Result<Option<(u64, String)>> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; CHUNK];
    let mut size = 0;
    loop {
        let n = file.read(&mut buffer).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            return Ok(Some((size, hex(&hasher.finalize()))));
        }
        hasher.update(&buffer[..n]);
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        size += n;
        if read(n).is_break() {
            return Ok(None);
        }
    }
}

// --- verify ------------------------------------------------------------------------------------

/// A backup that passed [`verify`].
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    /// Its manifest.
    pub(crate) manifest: Manifest,
}

/// Checks the backup in `dir`: the manifest is there and readable, every file it lists is there
/// with its size and SHA-256, no other file is, and the database passes SQLite's integrity check
/// and holds what the manifest says. The error lists every problem found. `cancel` stops the
/// integrity check too (the progress callback stops the rest).
pub(crate) fn verify(
    dir: &Path,
    progress: &mut dyn Progress,
    cancel: Option<&AtomicBool>,
) -> anyhow::Result<Verified> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let manifest = read_manifest(dir)?;
    let mut problems = Vec::new();
    if !manifest.files.iter().any(|f| f.path == DATABASE_FILE) {
        problems.push(format!("the manifest lists no {DATABASE_FILE}"));
    }
    let mut listed = vec![MANIFEST_FILE.to_owned()];
    let mut total = 0;
    for entry in &manifest.files {
        if !is_plain_relative(&entry.path) {
            bail!("{}: the manifest names a file outside the backup: {:?}", dir.display(), entry.path);
        }
        listed.push(entry.path.clone());
        total += entry.size;
    }
    for found in files_under(dir)? {
        if !listed.contains(&found) {
            problems.push(format!("{found}: not in the manifest"));
        }
    }
    let mut done = 0;
    for entry in &manifest.files {
        let path = dir.join(&entry.path);
        match fs::metadata(&path) {
            Err(_) => {
                problems.push(format!("{}: missing", entry.path));
                continue;
            }
            Ok(meta) if meta.len() != entry.size => {
                problems.push(format!(
                    "{}: {} bytes, the manifest says {}",
                    entry.path,
                    meta.len(),
                    entry.size
                ));
                continue;
            }
            Ok(_) => {}
        }
        let hashed = hash_file(&path, &mut |n| {
            done += n;
            progress.report(Stage::Checksumming, done, total)
        })?;
        match hashed {
            None => bail!("cancelled"),
            Some((_, sha256)) if sha256 != entry.sha256 => {
                problems
                    .push(format!("{}: SHA-256 {sha256}, the manifest says {}", entry.path, entry.sha256));
            }
            Some(_) => {}
        }
    }
    let db = dir.join(DATABASE_FILE);
    if db.is_file() {
        let _ = progress.report(Stage::Checking, 0, 0);
        match store_backup::check_database(&db, cancel) {
            Ok(check) => {
                for problem in &check.problems {
                    problems.push(format!("{DATABASE_FILE}: integrity check: {problem}"));
                }
                if check.problems.is_empty() {
                    let facts = check.facts;
                    if facts.schema_version != manifest.schema_version {
                        problems.push(format!(
                            "{DATABASE_FILE}: schema version {}, the manifest says {}",
                            facts.schema_version, manifest.schema_version
                        ));
                    }
                    if (facts.accounts, facts.mailboxes, facts.messages)
                        != (manifest.accounts, manifest.mailboxes, manifest.messages)
                    {
                        problems.push(format!(
                            "{DATABASE_FILE}: holds {} accounts, {} mailboxes, {} messages; the manifest says {}, {}, {}",
                            facts.accounts,
                            facts.mailboxes,
                            facts.messages,
                            manifest.accounts,
                            manifest.mailboxes,
                            manifest.messages
                        ));
                    }
                }
            }
            Err(BackupError::Cancelled) => bail!("cancelled"),
            Err(e) => problems.push(format!("{DATABASE_FILE}: cannot be checked: {e}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "the backup in {} is damaged ({} problem{}):\n  {}",
            dir.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("\n  ")
        );
    }
    Ok(Verified { manifest })
}

/// Reads and parses `dir/manifest.json`, refusing formats newer than [`FORMAT`].
pub(crate) fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{} has no {MANIFEST_FILE}: not a backup, or one that did not finish", dir.display())
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a backup manifest", path.display()))?;
    if manifest.format > FORMAT {
        bail!(
            "{} was written by a newer Postfach ({}, format {}); this one reads format {FORMAT}",
            dir.display(),
            manifest.postfach_version,
            manifest.format
        );
    }
    Ok(manifest)
}

// --- restore -----------------------------------------------------------------------------------

/// Whether [`restore`] may replace the database a data directory already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Refuse when there is one.
    Keep,
    /// Move it (and the files the backup replaces) into `replaced-<time>/`.
    MoveAside,
}

/// A finished restore.
#[derive(Debug, Clone)]
pub(crate) struct Restored {
    /// The restored backup's manifest.
    pub(crate) manifest: Manifest,
    /// Where the replaced files went, if there were any.
    pub(crate) replaced: Option<PathBuf>,
}

/// Restores the backup in `backup` into the data directory `data_dir` (created when missing);
/// see the module documentation. Nothing in `data_dir` changes unless the backup verifies and
/// no process uses the data directory.
pub(crate) fn restore(
    backup: &Path,
    data_dir: &Path,
    existing: Existing,
    progress: &mut dyn Progress,
) -> anyhow::Result<Restored> {
    let Verified { manifest } = verify(backup, progress, None).context("nothing was restored")?;
    create_private_dir(data_dir)?;
    let _lock = DataDirLock::exclusive(data_dir)?;
    let db = data_dir.join(DATABASE_FILE);
    let database_files: Vec<PathBuf> = ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|s| data_dir.join(format!("{DATABASE_FILE}{s}")))
        .collect();
    if database_files.iter().any(|p| p.exists()) {
        if existing == Existing::Keep {
            bail!(
                "{} already holds a database; stop the server and pass --force to replace it \
                 (the files replaced are moved into {}/replaced-<time>/)",
                data_dir.display(),
                data_dir.display()
            );
        }
        match store_backup::take_offline(&db) {
            Ok(()) | Err(BackupError::NoDatabase(_)) => {}
            Err(e @ BackupError::InUse(_)) => return Err(e.into()),
            // A damaged database is what a restore is for: it is moved aside as it is.
            Err(e) => tracing::warn!(error = %e, "the database being replaced cannot be opened"),
        }
    }

    // In under temporary names, checked against the manifest as they are copied.
    let total = manifest.bytes();
    let mut done = 0;
    for entry in &manifest.files {
        let to = data_dir.join(format!("{}.restoring", entry.path));
        if let Some(dir) = to.parent() {
            create_private_dir(dir)?;
        }
        copy_checked(&backup.join(&entry.path), &to, entry, &mut |n| {
            done += n;
            let _ = progress.report(Stage::Checksumming, done, total);
        })?;
    }

    // The replaced files aside, kept together: a database with its WAL and its accounts'
    // full-text index files. A backup holds no index files: the store makes them again from
    // the restored messages (it does not trust files it has no record of).
    let mut replacing: Vec<PathBuf> = database_files.into_iter().filter(|p| p.exists()).collect();
    let text_indexes = data_dir.join(postfach_store::sqlite::TEXT_DIR);
    if text_indexes.exists() {
        replacing.push(text_indexes);
    }
    for entry in &manifest.files {
        let path = data_dir.join(&entry.path);
        if entry.path != DATABASE_FILE && path.exists() {
            replacing.push(path);
        }
    }
    let replaced = if replacing.is_empty() {
        None
    } else {
        let aside = data_dir.join(format!("replaced-{}", compact_time(OffsetDateTime::now_utc())));
        for path in &replacing {
            let relative = path.strip_prefix(data_dir).unwrap_or(path);
            let to = aside.join(relative);
            if let Some(dir) = to.parent() {
                create_private_dir(dir)?;
            }
            fs::rename(path, &to)
                .with_context(|| format!("moving {} to {}", path.display(), to.display()))?;
        }
        sync_tree_dirs(&aside)?;
        Some(aside)
    };

    for entry in &manifest.files {
        let from = data_dir.join(format!("{}.restoring", entry.path));
        let to = data_dir.join(&entry.path);
        fs::rename(&from, &to).with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
    }
    sync_tree_dirs(data_dir)?;
    Ok(Restored { manifest, replaced })
}

/// Copies `from` to `to` (created or truncated), checking size and SHA-256 against `entry` on
/// the way; fsyncs `to`.
fn copy_checked(from: &Path, to: &Path, entry: &FileEntry, read: &mut dyn FnMut(u64)) -> anyhow::Result<()> {
    let mut input = File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let mode = fs::metadata(from).with_context(|| format!("reading {}", from.display()))?.permissions();
    let mut output = File::create(to).with_context(|| format!("creating {}", to.display()))?;
    fs::set_permissions(to, mode).with_context(|| format!("setting the mode of {}", to.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; CHUNK];
    let mut size = 0;
    loop {
        let n = input.read(&mut buffer).with_context(|| format!("reading {}", from.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        output.write_all(&buffer[..n]).with_context(|| format!("writing {}", to.display()))?;
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        size += n;
        read(n);
    }
    output.sync_all().with_context(|| format!("syncing {}", to.display()))?;
    let sha256 = hex(&hasher.finalize());
    if size != entry.size || sha256 != entry.sha256 {
        bail!("{} changed while it was restored; nothing was replaced", from.display());
    }
    Ok(())
}

// --- the data directory lock -------------------------------------------------------------------

/// A lock on [`SERVE_LOCK`] in a data directory, held until dropped. Servers share it (several
/// may serve one data directory); a restore needs it alone. The kernel drops it with the
/// process, so a killed server leaves no stale lock.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// The lock `postfach serve` holds, creating the data directory when needed. Refused only
    /// while a restore runs.
    pub(crate) fn shared(data_dir: &Path) -> anyhow::Result<Self> {
        let file = Self::open(data_dir)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(Self { _file: file }),
            Err(fs::TryLockError::WouldBlock) => {
                bail!("a restore into {} is running; start the server when it is done", data_dir.display())
            }
            Err(fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", data_dir.join(SERVE_LOCK).display()))
            }
        }
    }

    /// The lock a restore holds. Refused while a server runs on the data directory.
    pub(crate) fn exclusive(data_dir: &Path) -> anyhow::Result<Self> {
        let file = Self::open(data_dir)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(fs::TryLockError::WouldBlock) => {
                bail!("a server is running on {}; stop it first", data_dir.display())
            }
            Err(fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", data_dir.join(SERVE_LOCK).display()))
            }
        }
    }

    fn open(data_dir: &Path) -> anyhow::Result<File> {
        fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let path = data_dir.join(SERVE_LOCK);
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))
    }
}

// --- small file helpers ------------------------------------------------------------------------

/// Creates the `.partial` directory of a backup, or takes over the one a killed backup left,
/// and locks it (the lock is on the directory itself, so it follows the final rename). Refused
/// while another process holds it.
fn claim_partial(partial: &Path) -> anyhow::Result<File> {
    for _ in 0..2 {
        match fs::DirBuilder::new().mode(0o700).create(partial) {
            Ok(()) => {
                let dir = File::open(partial)?;
                return match dir.try_lock() {
                    Ok(()) => Ok(dir),
                    Err(_) => bail!("another backup is being written to {}", partial.display()),
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let dir = File::open(partial)?;
                match dir.try_lock() {
                    Ok(()) => {
                        tracing::info!(dir = %partial.display(), "removing what an interrupted backup left");
                        fs::remove_dir_all(partial)?;
                    }
                    Err(fs::TryLockError::WouldBlock) => {
                        bail!("another backup is being written to {}", partial.display())
                    }
                    Err(fs::TryLockError::Error(e)) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    bail!("another backup keeps creating {}", partial.display())
}

/// Removes the `.partial` directories in `dir` that no running backup holds (what killed
/// backups left); returns how many.
pub(crate) fn remove_abandoned(dir: &Path) -> anyhow::Result<usize> {
    let mut removed = 0;
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with('.') && name.ends_with(".partial")) {
            continue;
        }
        let path = entry.path();
        let Ok(handle) = File::open(&path) else { continue };
        if handle.try_lock().is_ok() {
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Creates a directory and its parents; the ones it creates get mode 0700.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

fn sync_file(path: &Path) -> anyhow::Result<()> {
    File::open(path).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", path.display()))
}

/// fsyncs a directory, so that the names created or renamed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", dir.display()))
}

/// fsyncs `dir` and every directory below it.
fn sync_tree_dirs(dir: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree_dirs(&entry.path())?;
        }
    }
    sync_dir(dir)
}

/// Every file under `dir`, as `/`-separated relative paths.
fn files_under(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pending = vec![(dir.to_owned(), String::new())];
    while let Some((path, prefix)) = pending.pop() {
        for entry in fs::read_dir(&path).with_context(|| format!("reading {}", path.display()))? {
            let entry = entry?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type()?.is_dir() {
                pending.push((entry.path(), format!("{name}/")));
            } else {
                found.push(name);
            }
        }
    }
    Ok(found)
}

/// True for a relative path of plain names (`tls/key.pem`), nothing that leaves the directory.
fn is_plain_relative(path: &str) -> bool {
    !path.is_empty() && Path::new(path).components().all(|c| matches!(c, Component::Normal(_)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `2027-01-04T03:00:00Z`.
pub(crate) fn rfc3339(when: OffsetDateTime) -> String {
    let utc = when.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// `20270104T030000Z`: the name of a scheduled backup, which sorts by time.
pub(crate) fn compact_time(when: OffsetDateTime) -> String {
    let utc = when.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// The time a [`compact_time`] name stands for; `None` for other names.
pub(crate) fn parse_compact_time(name: &str) -> Option<OffsetDateTime> {
    let b = name.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = name.get(range)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(digits(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(digits(6..8)?).ok()?).ok()?;
    let at = time::Time::from_hms(
        u8::try_from(digits(9..11)?).ok()?,
        u8::try_from(digits(11..13)?).ok()?,
        u8::try_from(digits(13..15)?).ok()?,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, at).assume_utc())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn never_cancel() -> impl FnMut(Stage, u64, u64) -> ControlFlow<()> {
        |_, _, _| ControlFlow::Continue(())
    }

    /// A data directory with a (store-made) database and a TLS pair.
    fn data_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        drop(postfach_store::SqliteStore::open(dir.path()).unwrap());
        fs::create_dir(dir.path().join("tls")).unwrap();
        fs::write(dir.path().join("tls/cert.pem"), "CERT").unwrap();
        fs::write(dir.path().join("tls/key.pem"), "KEY").unwrap();
        dir
    }

    #[test]
    fn names_are_times() {
        let t = parse_compact_time("20270104T030005Z").unwrap();
        assert_eq!(compact_time(t), "20270104T030005Z");
        assert_eq!(rfc3339(t), "2027-01-04T03:00:05Z");
        for bad in ["20270104T030005", "2027010xT030005Z", "20271304T030005Z", ".20270104T030005Z", "latest"]
        {
            assert!(parse_compact_time(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn create_verify_restore() {
        let data = data_dir();
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("b1");
        let created = create(data.path(), &dest, CopyOptions::default(), &mut never_cancel()).unwrap();
        let paths: Vec<&str> = created.manifest.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, [DATABASE_FILE, "tls/cert.pem", "tls/key.pem"]);
        assert!(!out.path().join(".b1.partial").exists());
        verify(&dest, &mut never_cancel(), None).unwrap();
        // Not over an existing backup.
        let again = create(data.path(), &dest, CopyOptions::default(), &mut never_cancel());
        assert!(again.unwrap_err().to_string().contains("already exists"));

        // Into a new data directory.
        let target = out.path().join("new-data");
        let restored = restore(&dest, &target, Existing::Keep, &mut never_cancel()).unwrap();
        assert!(restored.replaced.is_none());
        assert_eq!(fs::read(target.join("tls/key.pem")).unwrap(), b"KEY");
        // Over it: refused without MoveAside; with it, the old files are kept aside.
        let refused = restore(&dest, &target, Existing::Keep, &mut never_cancel()).unwrap_err();
        assert!(refused.to_string().contains("--force"), "{refused}");
        let restored = restore(&dest, &target, Existing::MoveAside, &mut never_cancel()).unwrap();
        let aside = restored.replaced.unwrap();
        assert!(aside.join(DATABASE_FILE).is_file() && aside.join("tls/key.pem").is_file());
        // Refused while a server holds the data directory (and the server while a restore runs).
        let serving = DataDirLock::shared(&target).unwrap();
        let refused = restore(&dest, &target, Existing::MoveAside, &mut never_cancel()).unwrap_err();
        assert!(refused.to_string().contains("a server is running"), "{refused}");
        drop(serving);
        // Refused while another process (here: a store) has the database open.
        let store = postfach_store::SqliteStore::open(&target).unwrap();
        let refused = restore(&dest, &target, Existing::MoveAside, &mut never_cancel()).unwrap_err();
        assert!(refused.to_string().contains("in use"), "{refused}");
        drop(store);
        let _restoring = DataDirLock::exclusive(&target).unwrap();
        assert!(DataDirLock::shared(&target).unwrap_err().to_string().contains("restore"));
    }

    #[test]
    fn verify_finds_every_problem() {
        let data = data_dir();
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("b");
        create(data.path(), &dest, CopyOptions::default(), &mut never_cancel()).unwrap();
        fs::write(dest.join("tls/cert.pem"), "CERX").unwrap();
        fs::remove_file(dest.join("tls/key.pem")).unwrap();
        fs::write(dest.join("stray"), "").unwrap();
        let error = verify(&dest, &mut never_cancel(), None).unwrap_err().to_string();
        assert!(error.contains("(3 problems)"), "{error}");
        assert!(error.contains("tls/cert.pem: SHA-256"), "{error}");
        assert!(error.contains("tls/key.pem: missing"), "{error}");
        assert!(error.contains("stray: not in the manifest"), "{error}");
        fs::remove_file(dest.join(MANIFEST_FILE)).unwrap();
        let error = verify(&dest, &mut never_cancel(), None).unwrap_err().to_string();
        assert!(error.contains("no manifest.json"), "{error}");
    }

    #[test]
    fn a_cancelled_or_killed_backup_leaves_nothing_verify_accepts() {
        let data = data_dir();
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("b");
        let cancelled =
            create(data.path(), &dest, CopyOptions::default(), &mut |_, _, _| ControlFlow::Break(()));
        assert!(matches!(cancelled, Err(CreateError::Cancelled)), "{cancelled:?}");
        assert!(!dest.exists() && !out.path().join(".b.partial").exists());
        // What a killed run leaves: a .partial without a manifest. The next run takes it over.
        fs::create_dir(out.path().join(".b.partial")).unwrap();
        fs::write(out.path().join(".b.partial/postfach.db"), "half").unwrap();
        assert!(verify(&out.path().join(".b.partial"), &mut never_cancel(), None).is_err());
        create(data.path(), &dest, CopyOptions::default(), &mut never_cancel()).unwrap();
        verify(&dest, &mut never_cancel(), None).unwrap();
        // One still held by a running backup is neither taken over nor removed.
        let held = out.path().join(".c.partial");
        fs::create_dir(&held).unwrap();
        let holder = File::open(&held).unwrap();
        holder.try_lock().unwrap();
        let busy = create(data.path(), &out.path().join("c"), CopyOptions::default(), &mut never_cancel());
        let busy = format!("{:#}", busy.unwrap_err());
        assert!(busy.contains("another backup is being written"), "{busy}");
        fs::create_dir(out.path().join(".d.partial")).unwrap();
        assert_eq!(remove_abandoned(out.path()).unwrap(), 1);
        assert!(held.exists() && !out.path().join(".d.partial").exists());
    }
}
