//! The embedded SQLite backend: one database file, one writer thread with group commit, a pool
//! of readers on tokio's blocking pool.
//!
//! # Layout
//! - [`schema`]: tables, indexes, triggers and the `user_version` migrations.
//! - `conn`: connection settings (WAL, `synchronous=FULL`, busy timeout) and error mapping.
//! - `writer`: the writer thread: batches jobs into one `BEGIN IMMEDIATE` transaction with a
//!   savepoint per job, commits once, notifies, answers.
//! - `readers`: bounded pool of read connections used from `spawn_blocking`.
//! - `checkpointer`: the thread that copies the write-ahead log into the database file, so no
//!   commit waits for a checkpoint.
//! - `rows`: the mailbox row and its counters, flag encoding, name and keyword checks.
//! - `mailboxes`: accounts (users and teams), the mailbox list, subscriptions.
//! - `shares`: ACLs (RFC 4314), team and group memberships, grantees' subscriptions.
//! - `seen`: per-account `\Seen` in shared mailboxes.
//! - `quota`: quota roots (RFC 9208): usage checked and moved inside each write, warnings.
//! - `credentials`: SCRAM verifiers, TOTP settings, app passwords, the credentials generation
//!   and login blocks (issue 5).
//! - `messages`: APPEND, STORE, COPY/MOVE, EXPUNGE, and the clean-up's expunge by save date.
//! - `cleanup`: which Trash and Junk mailboxes the clean-up visits, per-account limits.
//! - `reads`: STATUS, SELECT snapshots, changes since a modseq, FETCH, bodies.
//! - `search`: SEARCH: full-text index, SQL prefilter, then streaming evaluation.
//! - `index`: the full-text index and per-body facts (PREVIEW, SORT/THREAD keys, EMAILID),
//!   written at APPEND; what they hold is derived by `postfach_message` (`text`, `facts`), this
//!   module keeps the SQL and the index's size limits.
//! - `indexer`: the thread that writes appended messages' full-text entries after their commit.
//! - `text`: the full-text index files, one per account (`text/<id>.db`), and the database's
//!   record of which file and which bodies in it are trusted.
//! - `rederive`: the thread that derives summaries, facts and full-text entries again for
//!   bodies stored by an older parser (or before the index existed).
//! - `facts`: SORT, THREAD input and the FETCH extras, read from those facts.
//! - `restore`: export reads and exact restore (given UIDVALIDITY, UIDs, MODSEQs, dates).
//! - [`sieve`]: delivery state: Sieve scripts, vacation history, subaddress policy.
//! - `queue`: the outbound queue (vacation replies, redirects, bounces; [`crate::QueueStore`]).
//! - [`backup`]: online copies of the database file (consistent to one instant, writers never
//!   blocked), the integrity check of a copy, and taking a database offline for a restore.
//!
//! # Durability and concurrency
//! Every write goes through the writer thread and returns only after its COMMIT, which in WAL
//! mode with `synchronous=FULL` has fsynced the log. Message bodies live in the database, so
//! body and row commit together: `kill -9` leaves neither orphan files nor half a message.
//! Several processes may open the same file (the admin CLI beside the server): writes use
//! `BEGIN IMMEDIATE` and wait up to a busy timeout for each other.
//!
//! # Limits
//! One file for all accounts means one write queue for all of them; group commit keeps the
//! fsync count low, but a very busy installation may want the PostgreSQL backend.

pub mod backup;
mod checkpointer;
mod cleanup;
mod conn;
mod credentials;
pub(crate) mod facts;
pub(crate) mod index;
mod indexer;
pub(crate) mod mailboxes;
mod messages;
mod metadata;
mod queue;
pub(crate) mod quota;
mod readers;
mod reads;
mod rederive;
pub(crate) mod restore;
pub(crate) mod rows;
pub mod schema;
mod search;
mod seen;
pub(crate) mod shares;
pub mod sieve;
pub(crate) mod summary;
mod text;
mod urlauth;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use self::messages::Transfer;
use self::quota::Check;
use self::readers::{Readers, snapshot};
use self::writer::Writer;
use crate::acl::{
    AclEntry, Identifier, Quota, QuotaLimits, QuotaWarning, Rights, SeenMode, SharedMailbox, TeamMember,
};
use crate::metadata::{MetadataDepth, MetadataLimits, MetadataPlace, MetadataWrite};
use crate::notify::{MetadataChange, Notifier};
use crate::restore::{
    AccountRestore, ExpungedRun, MailboxDump, MailboxRestore, MessageDump, MessageRestore, NewUidValidity,
    PresentUids, PrivateSeenDump, Restored,
};
use crate::stats::{StoreTotals, WriterStats};
use crate::types::{
    Account, AccountId, AddressBlock, AppPassword, AppPasswordId, Appended, Changes, ClaimRecent, Copied,
    Criterion, FetchWant, FlagOp, Flags, FlagsUpdated, MailboxId, MailboxInfo, MailboxName, MailboxStatus,
    MessageExtras, MessageMeta, MessageSummary, ModSeq, NewMessage, ScramCredential, Snapshot, SortCriterion,
    SpecialUse, ThreadFacts, TotpSettings, Uid, UidSet,
};
use crate::{AccountStore, MailStore, RestoreStore, ShareStore, StoreError, StoreResult};

pub use self::cleanup::{CleanupMailbox, CleanupOverride};
pub use self::rederive::{Rederivation, Rederived};
pub use self::text::{TEXT_DIR, forget_text_indexes};

/// Messages a FETCH may ask for and still be read on the calling thread (a page of a message
/// list; see [`SqliteStore::read_small`]).
const SMALL_FETCH: u64 = 64;
/// Bytes of message text read on the calling thread at most (header pages, small messages).
const SMALL_BODIES: u64 = 256 * 1024;
/// Changes of each kind (new, flags, expunged) read on the calling thread at most: what a NOOP
/// or IDLE usually finds.
const SMALL_CHANGES: usize = 64;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "postfach.db";

/// The SQLite mail store. Share it as `Arc<SqliteStore>` (it coerces to `Arc<dyn MailStore>`
/// and `Arc<dyn AccountStore>`). Dropping the last handle finishes the queued writes and stops
/// the writer thread.
pub struct SqliteStore {
    // Only held so that dropping the store stops it; stops before the writer: it holds a
    // handle to the writer's queue.
    _rederive: rederive::Rederive,
    // Only held so that dropping the store stops it.
    _checkpointer: checkpointer::Checkpointer,
    // Stops before the writer: it holds a handle to the writer's queue.
    indexer: indexer::Indexer,
    // Declared early so it drops early: the writer finishes its queue while the rest lives.
    writer: Writer,
    readers: Arc<Readers>,
    notifier: Arc<Notifier>,
    limits: StoreLimits,
    path: PathBuf,
    /// The accounts' full-text index files.
    text: text::TextShards,
}

/// Per-account bounds the store enforces inside its write transactions, so concurrent
/// requests (or processes) cannot overshoot them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Most mailboxes one account may have, INBOX and the default ones included, unless the
    /// account has its own mailbox limit ([`ShareStore::set_quota`]): the default of the quota's
    /// MAILBOX resource. Every path that makes a mailbox (CREATE and its superiors, RENAME's
    /// superiors and RENAME INBOX, Sieve `fileinto :create`) is refused with
    /// [`StoreError::Limit`] past it; the default mailboxes of a new account are always made.
    pub max_mailboxes: u32,
    /// The default quota of every account and team without its own limits: `storage` (bytes)
    /// and `messages`, `None` = unlimited. `mailboxes` is not read: `max_mailboxes` is that
    /// default.
    pub default_quota: QuotaLimits,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self { max_mailboxes: 10_000, default_quota: QuotaLimits::default() }
    }
}

impl StoreLimits {
    /// The defaults a quota root's own limits fall back to (`None`: unlimited).
    fn quota_defaults(&self) -> QuotaLimits {
        QuotaLimits {
            storage: self.default_quota.storage,
            messages: self.default_quota.messages,
            mailboxes: Some(u64::from(self.max_mailboxes)),
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/postfach.db`, creating `data_dir` too, and brings
    /// the schema up to date. Blocking: call it at startup or from `spawn_blocking`.
    pub fn open(data_dir: &Path) -> StoreResult<SqliteStore> {
        Self::open_with(data_dir, StoreLimits::default())
    }

    /// [`SqliteStore::open`] with the given limits.
    pub fn open_with(data_dir: &Path, limits: StoreLimits) -> StoreResult<SqliteStore> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", data_dir.display())))?;
        let path = data_dir.join(DATABASE_FILE);
        let conn = conn::open_writer(&path)?;
        schema::migrate(&conn)?;
        let stale = rederive::plan(&conn)?;
        // The log is copied into the database file by the checkpointer thread; the writer
        // does it itself only if that thread falls far behind.
        let checkpointer = checkpointer::Checkpointer::start(&path)?;
        conn.pragma_update(None, "wal_autocheckpoint", checkpointer::FALLBACK_PAGES)
            .map_err(conn::backend)?;
        let notifier = Arc::new(Notifier::new());
        let writer = Writer::start(conn, Arc::clone(&notifier))?;
        let indexer = indexer::Indexer::start(&path, writer.handle()?)?;
        let rederive = rederive::Rederive::start(stale, &path, writer.handle()?, indexer.poker())?;
        Ok(SqliteStore {
            _rederive: rederive,
            _checkpointer: checkpointer,
            indexer,
            writer,
            readers: Arc::new(Readers::new(path.clone())),
            notifier,
            limits,
            text: text::TextShards::beside(&path),
            path,
        })
    }

    /// Write transactions committed since the store was opened. Each is one fsync, however many
    /// writes it carried; compared with the number of writes it shows how well group commit
    /// groups (a metric for the server).
    pub fn commits(&self) -> u64 {
        self.writer.commits()
    }

    /// Messages whose full-text entry the indexer has not written yet (SEARCH scans them
    /// meanwhile); a metric, and what tests wait for.
    pub async fn text_backlog(&self) -> StoreResult<u64> {
        self.read(|conn| {
            conn.query_row(
                "SELECT count(*) FROM unindexed_bodies u JOIN body_index bi ON bi.body_id = u.body_id
                 WHERE bi.text_state = 0",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(conn::backend)
        })
        .await
    }

    /// The writer's commits, commit latency and group sizes since the store was opened.
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Answers a trivial read: the health check of load balancers (`/health`).
    pub async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(conn::backend)).await
    }

    /// Bytes the database files take on disk (the main file, its write-ahead log, and the
    /// accounts' full-text index files).
    pub fn disk_size(&self) -> u64 {
        let wal = self.path.with_extension("db-wal");
        let database: u64 = [self.path.as_path(), wal.as_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        database + self.text.disk_size()
    }

    /// Accounts, messages and bytes over the whole store, and how many accounts are near or at
    /// their quota (with the default limits applied). One pass over the per-account quota rows.
    pub async fn totals(&self) -> StoreResult<StoreTotals> {
        let defaults = self.limits.quota_defaults();
        let (storage, messages) = (
            defaults.storage.map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
            defaults.messages.map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
        );
        self.read(move |conn| {
            conn.query_row(
                "SELECT count(*), coalesce(sum(storage_used), 0), coalesce(sum(messages_used), 0),
                        coalesce(sum(coalesce(storage_limit, ?1) IS NOT NULL
                                     OR coalesce(message_limit, ?2) IS NOT NULL), 0),
                        coalesce(sum(coalesce(storage_used * 10 >= coalesce(storage_limit, ?1) * 9, 0)
                                     OR coalesce(messages_used * 10 >= coalesce(message_limit, ?2) * 9, 0)), 0),
                        coalesce(sum(coalesce(storage_used >= coalesce(storage_limit, ?1), 0)
                                     OR coalesce(messages_used >= coalesce(message_limit, ?2), 0)), 0)
                 FROM quota",
                rusqlite::params![storage, messages],
                |r| {
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                    Ok(StoreTotals {
                        accounts: n(0)?,
                        bytes: n(1)?,
                        messages: n(2)?,
                        accounts_with_limit: n(3)?,
                        accounts_above_90_percent: n(4)?,
                        accounts_full: n(5)?,
                    })
                },
            )
            .map_err(conn::backend)
        })
        .await
    }

    /// Every `\Trash` and `\Junk` mailbox of users and teams, with its owner's own limit.
    pub async fn cleanup_mailboxes(&self) -> StoreResult<Vec<CleanupMailbox>> {
        self.read(cleanup::mailboxes).await
    }

    /// The account's own clean-up limits.
    pub async fn cleanup_override(&self, account: AccountId) -> StoreResult<CleanupOverride> {
        self.read(move |conn| cleanup::override_of(conn, account)).await
    }

    /// Sets the account's own clean-up limits (`None`: the installation's default).
    pub async fn set_cleanup_override(&self, account: AccountId, limits: CleanupOverride) -> StoreResult<()> {
        self.writer.run(move |conn, _| cleanup::set_override(conn, account, limits)).await
    }

    /// Whether the account has the web admin flag.
    pub async fn is_admin(&self, account: AccountId) -> StoreResult<bool> {
        self.read(move |conn| cleanup::is_admin(conn, account)).await
    }

    /// Every account with the web admin flag.
    pub async fn admins(&self) -> StoreResult<Vec<AccountId>> {
        self.read(cleanup::admins).await
    }

    /// Grants or takes the web admin flag.
    pub async fn set_admin(&self, account: AccountId, admin: bool) -> StoreResult<()> {
        self.writer.run(move |conn, _| cleanup::set_admin(conn, account, admin)).await
    }

    /// Expunges up to `max` messages of `mailbox` whose save date (RFC 8514; the internal date
    /// for messages stored before save dates were kept) is before `before` (Unix seconds), as
    /// EXPUNGE does: sessions see EXPUNGE/VANISHED, the owner's quota usage goes down. One
    /// writer job, so keep `max` small (the clean-up uses 1000) and call again while it returns
    /// `max` UIDs.
    pub async fn expunge_saved_before(
        &self,
        mailbox: MailboxId,
        before: i64,
        max: usize,
    ) -> StoreResult<Vec<Uid>> {
        let defaults = self.limits.quota_defaults();
        self.writer
            .run(move |conn, fx| messages::expunge_saved_before(conn, fx, mailbox, before, max, &defaults))
            .await
    }

    /// Runs a read inside one read transaction on a pooled connection.
    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> StoreResult<T> + Send + 'static,
    {
        self.readers.run(move |conn| snapshot(conn, work)).await
    }

    /// [`SqliteStore::read`] for reads whose size does not grow with the mailbox: run on the
    /// calling thread, without the hop to the blocking pool ([`Readers::run_inline`]).
    async fn read_small<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&rusqlite::Connection) -> StoreResult<T>,
    {
        self.readers.run_inline(move |conn| snapshot(conn, work)).await
    }

    /// APPEND with optional pre-parsed summaries: the one implementation behind
    /// [`MailStore::append`] and [`MailStore::append_parsed`].
    async fn append_with(
        &self,
        mailbox: MailboxId,
        messages: Vec<(NewMessage, Option<Arc<MessageSummary>>)>,
    ) -> StoreResult<Vec<Appended>> {
        let defaults = self.limits.quota_defaults();
        self.append_where(messages, move |conn, fx, prepared| {
            let appended = messages::append(conn, fx, mailbox, prepared, &defaults, Check::Enforce)?;
            Ok((mailbox, appended))
        })
        .await
    }

    /// Prepares `messages` on the blocking pool, then runs `store` in the writer (it picks the
    /// mailbox and appends) with the index facts in the same transaction, and hands the text
    /// to the indexer once committed.
    async fn append_where<F>(
        &self,
        messages: Vec<(NewMessage, Option<Arc<MessageSummary>>)>,
        store: F,
    ) -> StoreResult<Vec<Appended>>
    where
        F: FnOnce(
                &rusqlite::Connection,
                &mut writer::Effects,
                &[messages::Prepared],
            ) -> StoreResult<(MailboxId, Vec<Appended>)>
            + Send
            + 'static,
    {
        // Parsing and text extraction are CPU work: do them on the blocking pool, not in the
        // writer thread, which only inserts.
        // Each message is parsed once, for both its summary and its index entry.
        let (prepared, entries) = tokio::task::spawn_blocking(move || {
            let (messages, entries): (Vec<_>, Vec<_>) = messages
                .into_iter()
                .map(|(m, parsed)| {
                    let summary = parsed.unwrap_or_else(|| Arc::new(postfach_message::parse(&m.raw)));
                    let entry = index::IndexEntry::of(&m.raw, &summary);
                    ((m, Some(summary)), entry)
                })
                .unzip();
            messages::prepare_parsed(messages).map(|p| (p, entries))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("message preparation failed: {e}")))??;
        let (appended, texts) = self
            .writer
            .run(move |conn, fx| {
                let (mailbox, appended) = store(conn, fx, &prepared)?;
                // The facts in the same transaction, but never at the cost of the message
                // itself; the text goes to the indexer once this is committed.
                let texts = index::record_appended(conn, mailbox, &appended, entries);
                Ok((appended, texts))
            })
            .await?;
        self.indexer.submit(texts);
        Ok(appended)
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_account(&self, name: &str, password_hash: &str) -> StoreResult<AccountId> {
        let (name, hash) = (name.to_owned(), password_hash.to_owned());
        self.writer.run(move |conn, _| mailboxes::create_account(conn, &name, &hash)).await
    }

    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>> {
        let name = name.to_owned();
        self.read(move |conn| mailboxes::account_by_name(conn, &name)).await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.read(mailboxes::list_accounts).await
    }

    async fn delete_account(&self, account: AccountId) -> StoreResult<()> {
        self.writer.run(move |conn, fx| mailboxes::delete_account(conn, fx, account)).await
    }

    async fn set_password(
        &self,
        account: AccountId,
        password_hash: &str,
        scram: Option<&ScramCredential>,
    ) -> StoreResult<()> {
        let (hash, scram) = (password_hash.to_owned(), scram.cloned());
        self.writer.run(move |conn, _| credentials::set_password(conn, account, &hash, scram.as_ref())).await
    }

    async fn scram_credential(&self, account: AccountId) -> StoreResult<Option<ScramCredential>> {
        self.read(move |conn| credentials::scram_credential(conn, account)).await
    }

    async fn totp(&self, account: AccountId) -> StoreResult<Option<TotpSettings>> {
        self.read(move |conn| credentials::totp(conn, account)).await
    }

    async fn set_totp(&self, account: AccountId, totp: Option<&TotpSettings>) -> StoreResult<()> {
        let totp = totp.cloned();
        self.writer.run(move |conn, _| credentials::set_totp(conn, account, totp.as_ref())).await
    }

    async fn claim_totp_step(&self, account: AccountId, step: u64) -> StoreResult<bool> {
        self.writer.run(move |conn, _| credentials::claim_totp_step(conn, account, step)).await
    }

    async fn add_app_password(
        &self,
        account: AccountId,
        label: &str,
        hash: &str,
    ) -> StoreResult<AppPasswordId> {
        let (label, hash) = (label.to_owned(), hash.to_owned());
        self.writer
            .run(move |conn, _| credentials::add_app_password(conn, account, &label, &hash, rows::unix_now()))
            .await
    }

    async fn app_passwords(&self, account: AccountId) -> StoreResult<Vec<AppPassword>> {
        self.read(move |conn| credentials::app_passwords(conn, account)).await
    }

    async fn revoke_app_password(&self, account: AccountId, label: &str) -> StoreResult<()> {
        let label = label.to_owned();
        self.writer.run(move |conn, _| credentials::revoke_app_password(conn, account, &label)).await
    }

    async fn app_password_used(&self, id: AppPasswordId, at: i64, address: &str) -> StoreResult<()> {
        let address = address.to_owned();
        self.writer.run(move |conn, _| credentials::app_password_used(conn, id, at, &address)).await
    }

    async fn app_password_exists(&self, id: AppPasswordId) -> StoreResult<bool> {
        self.read(move |conn| credentials::app_password_exists(conn, id)).await
    }

    async fn credentials_generation(&self) -> StoreResult<u64> {
        self.read(credentials::credentials_generation).await
    }

    async fn block_address(&self, block: &AddressBlock) -> StoreResult<()> {
        let block = block.clone();
        self.writer.run(move |conn, _| credentials::block_address(conn, &block)).await
    }

    async fn address_block(&self, address: &str, now: i64) -> StoreResult<Option<AddressBlock>> {
        let address = address.to_owned();
        self.read(move |conn| credentials::address_block(conn, &address, now)).await
    }

    async fn address_blocks(&self, now: i64) -> StoreResult<Vec<AddressBlock>> {
        self.read(move |conn| credentials::address_blocks(conn, now)).await
    }

    async fn unblock_address(&self, address: &str, now: i64) -> StoreResult<bool> {
        let address = address.to_owned();
        self.writer.run(move |conn, _| credentials::unblock_address(conn, &address, now)).await
    }
}

#[async_trait]
impl MailStore for SqliteStore {
    async fn list_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxInfo>> {
        // Bounded by the account's mailbox limit.
        self.read_small(move |conn| rows::mailbox_infos(conn, account, None)).await
    }

    async fn mailbox_by_name(
        &self,
        account: AccountId,
        name: &MailboxName,
    ) -> StoreResult<Option<MailboxInfo>> {
        self.read_small(|conn| {
            Ok(rows::mailbox_infos(conn, account, Some(name.as_str()))?.into_iter().next())
        })
        .await
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &MailboxName,
        special_use: Option<SpecialUse>,
    ) -> StoreResult<MailboxId> {
        let (name, max) = (name.clone(), self.limits.max_mailboxes);
        let created = self
            .writer
            .run(move |conn, fx| mailboxes::create_mailbox(conn, fx, account, &name, special_use, max))
            .await?;
        self.notifier.list_changed(account);
        Ok(created)
    }

    async fn delete_mailbox(&self, account: AccountId, mailbox: MailboxId) -> StoreResult<()> {
        let defaults = self.limits.quota_defaults();
        self.writer
            .run(move |conn, fx| mailboxes::delete_mailbox(conn, fx, account, mailbox, &defaults))
            .await?;
        self.notifier.list_changed(account);
        Ok(())
    }

    async fn rename_mailbox(
        &self,
        account: AccountId,
        from: &MailboxName,
        to: &MailboxName,
    ) -> StoreResult<()> {
        let (from, to, max) = (from.clone(), to.clone(), self.limits.max_mailboxes);
        self.writer
            .run(move |conn, fx| mailboxes::rename_mailbox(conn, fx, account, &from, &to, max))
            .await?;
        self.notifier.list_changed(account);
        Ok(())
    }

    async fn set_subscribed(
        &self,
        account: AccountId,
        name: &MailboxName,
        subscribed: bool,
    ) -> StoreResult<()> {
        let name = name.clone();
        self.writer.run(move |conn, _| mailboxes::set_subscribed(conn, account, &name, subscribed)).await?;
        self.notifier.list_changed(account);
        Ok(())
    }

    async fn subscriptions(&self, account: AccountId) -> StoreResult<Vec<String>> {
        self.read_small(move |conn| mailboxes::subscriptions(conn, account)).await
    }

    async fn status(&self, mailbox: MailboxId) -> StoreResult<MailboxStatus> {
        // The mailbox row's counters: one row.
        self.read_small(move |conn| reads::status(conn, mailbox)).await
    }

    async fn select(&self, mailbox: MailboxId, recent: ClaimRecent) -> StoreResult<Snapshot> {
        let (mut peeked, recent_from_uid) = self.read(move |conn| reads::peek(conn, mailbox)).await?;
        // Most SELECTs find nothing new to claim: they stay on a reader and never queue behind
        // the writer.
        if recent == ClaimRecent::Peek || recent_from_uid >= peeked.status.uid_next.get() {
            // EXAMINE sees the unclaimed messages as recent and leaves them so (RFC 3501 §2.3.2).
            let unclaimed = recent_from_uid..peeked.status.uid_next.get();
            reads::apply_claim(&mut peeked, unclaimed);
            return Ok(peeked);
        }
        let claimed = self.writer.run(move |conn, _| reads::claim(conn, mailbox)).await?;
        let (mut snapshot, _) = self.read(move |conn| reads::peek(conn, mailbox)).await?;
        reads::apply_claim(&mut snapshot, claimed);
        Ok(snapshot)
    }

    async fn claim_recent(&self, mailbox: MailboxId, below: Uid, claim: ClaimRecent) -> StoreResult<UidSet> {
        // Usually another session (or this one's SELECT) claimed them already: answer from a
        // reader without queueing behind the writer.
        let (_, recent_from_uid) = self.read(move |conn| reads::peek_boundary(conn, mailbox)).await?;
        if recent_from_uid >= below.get() {
            return Ok(UidSet::new());
        }
        match claim {
            ClaimRecent::Claim => {
                self.writer.run(move |conn, _| reads::claim_below(conn, mailbox, below)).await
            }
            ClaimRecent::Peek => self.read(move |conn| reads::recent_below(conn, mailbox, below)).await,
        }
    }

    async fn append(&self, mailbox: MailboxId, messages: Vec<NewMessage>) -> StoreResult<Vec<Appended>> {
        self.append_with(mailbox, messages.into_iter().map(|m| (m, None)).collect()).await
    }

    async fn append_parsed(
        &self,
        mailbox: MailboxId,
        messages: Vec<(NewMessage, Arc<MessageSummary>)>,
    ) -> StoreResult<Vec<Appended>> {
        self.append_with(mailbox, messages.into_iter().map(|(m, s)| (m, Some(s))).collect()).await
    }

    async fn changes_since(
        &self,
        mailbox: MailboxId,
        since: ModSeq,
        known_uid_next: Uid,
    ) -> StoreResult<Changes> {
        // Usually a few changes (a NOOP or IDLE after another session's write): read on the
        // calling thread; a large batch of changes goes to the blocking pool.
        let few = self
            .read_small(|conn| {
                reads::changes_up_to(conn, mailbox, since, known_uid_next, Some(SMALL_CHANGES))
            })
            .await?;
        match few {
            Some(changes) => Ok(changes),
            None => self.read(move |conn| reads::changes_since(conn, mailbox, since, known_uid_next)).await,
        }
    }

    async fn expunge(&self, mailbox: MailboxId, uids: Option<&UidSet>) -> StoreResult<Vec<Uid>> {
        let (uids, defaults) = (uids.cloned(), self.limits.quota_defaults());
        self.writer.run(move |conn, fx| messages::expunge(conn, fx, mailbox, uids.as_ref(), &defaults)).await
    }

    async fn remove_messages(&self, mailbox: MailboxId, uids: &UidSet) -> StoreResult<Vec<Uid>> {
        let (uids, defaults) = (uids.clone(), self.limits.quota_defaults());
        let deleted = Flags { system: crate::types::SystemFlags::DELETED, keywords: Vec::new() };
        self.writer
            .run(move |conn, fx| {
                messages::store_flags(conn, fx, mailbox, &uids, FlagOp::Add, &deleted, None)?;
                messages::expunge(conn, fx, mailbox, Some(&uids), &defaults)
            })
            .await
    }

    async fn fetch(
        &self,
        mailbox: MailboxId,
        uids: &UidSet,
        want: FetchWant,
    ) -> StoreResult<Vec<MessageMeta>> {
        if uids.len() <= SMALL_FETCH {
            return self.read_small(|conn| reads::fetch(conn, mailbox, uids, want)).await;
        }
        let uids = uids.clone();
        self.read(move |conn| reads::fetch(conn, mailbox, &uids, want)).await
    }

    async fn body(&self, mailbox: MailboxId, uid: Uid) -> StoreResult<Vec<u8>> {
        self.read(move |conn| reads::body(conn, mailbox, uid)).await
    }

    async fn bodies(&self, mailbox: MailboxId, wanted: &[(Uid, u32)]) -> StoreResult<Vec<(Uid, Vec<u8>)>> {
        let bytes: u64 = wanted.iter().map(|(_, limit)| u64::from(*limit)).sum();
        if wanted.len() <= SMALL_FETCH as usize && bytes <= SMALL_BODIES {
            return self.read_small(|conn| reads::bodies(conn, mailbox, wanted)).await;
        }
        let wanted = wanted.to_vec();
        self.read(move |conn| reads::bodies(conn, mailbox, &wanted)).await
    }

    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &UidSet,
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<ModSeq>,
    ) -> StoreResult<FlagsUpdated> {
        let (uids, flags) = (uids.clone(), flags.clone());
        self.writer
            .run(move |conn, fx| messages::store_flags(conn, fx, mailbox, &uids, op, &flags, unchanged_since))
            .await
    }

    async fn copy(&self, from: MailboxId, uids: &UidSet, to: MailboxId) -> StoreResult<Copied> {
        let (uids, defaults) = (uids.clone(), self.limits.quota_defaults());
        let copied = self
            .writer
            .run(move |conn, fx| messages::transfer(conn, fx, from, &uids, to, Transfer::Copy, &defaults))
            .await?;
        // A copy into another account's mailbox left its bodies' texts pending.
        self.indexer.poke();
        Ok(copied)
    }

    async fn move_messages(&self, from: MailboxId, uids: &UidSet, to: MailboxId) -> StoreResult<Copied> {
        let (uids, defaults) = (uids.clone(), self.limits.quota_defaults());
        let moved = self
            .writer
            .run(move |conn, fx| messages::transfer(conn, fx, from, &uids, to, Transfer::Move, &defaults))
            .await?;
        self.indexer.poke();
        Ok(moved)
    }

    async fn search(&self, mailbox: MailboxId, criterion: &Criterion) -> StoreResult<Vec<Uid>> {
        let criterion = criterion.clone();
        let text = self.text.clone();
        self.read(move |conn| search::search(conn, &text, mailbox, &criterion)).await
    }

    async fn sort(
        &self,
        mailbox: MailboxId,
        uids: &UidSet,
        criteria: &[SortCriterion],
    ) -> StoreResult<Vec<Uid>> {
        let (uids, criteria) = (uids.clone(), criteria.to_vec());
        self.read(move |conn| facts::sort(conn, mailbox, &uids, &criteria)).await
    }

    async fn thread_facts(&self, mailbox: MailboxId, uids: &UidSet) -> StoreResult<Vec<ThreadFacts>> {
        let uids = uids.clone();
        self.read(move |conn| facts::thread_facts(conn, mailbox, &uids)).await
    }

    async fn fetch_extras(&self, mailbox: MailboxId, uids: &UidSet) -> StoreResult<Vec<MessageExtras>> {
        let uids = uids.clone();
        self.read(move |conn| facts::fetch_extras(conn, mailbox, &uids)).await
    }

    async fn metadata(
        &self,
        place: MetadataPlace,
        account: AccountId,
        entries: &[String],
        depth: MetadataDepth,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let entries = entries.to_vec();
        self.read(move |conn| metadata::read(conn, place, account, &entries, depth)).await
    }

    async fn set_metadata(
        &self,
        place: MetadataPlace,
        account: AccountId,
        entries: &[(String, Option<Vec<u8>>)],
        limits: MetadataLimits,
    ) -> StoreResult<MetadataWrite> {
        let names: Vec<String> = entries.iter().map(|(name, _)| name.clone()).collect();
        let entries = entries.to_vec();
        let written =
            self.writer.run(move |conn, _| metadata::write(conn, place, account, &entries, limits)).await?;
        if written == MetadataWrite::Written {
            for change in MetadataChange::of_write(place, account, names.iter().map(String::as_str)) {
                self.notifier.metadata_changed(change);
            }
        }
        Ok(written)
    }

    async fn urlauth_key(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        fresh: Option<&[u8]>,
    ) -> StoreResult<Option<Vec<u8>>> {
        match fresh {
            None => self.read(move |conn| urlauth::key(conn, account, mailbox, None)).await,
            Some(fresh) => {
                let fresh = fresh.to_vec();
                self.writer.run(move |conn, _| urlauth::key(conn, account, mailbox, Some(&fresh))).await
            }
        }
    }

    async fn reset_urlauth_keys(&self, account: AccountId, mailbox: Option<MailboxId>) -> StoreResult<()> {
        self.writer.run(move |conn, _| urlauth::reset(conn, account, mailbox)).await
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }
}

#[async_trait]
impl ShareStore for SqliteStore {
    async fn create_team(&self, name: &str, address: Option<&str>) -> StoreResult<AccountId> {
        let (name, address) = (name.to_owned(), address.map(str::to_owned));
        self.writer.run(move |conn, _| mailboxes::create_team(conn, &name, address.as_deref())).await
    }

    async fn account_by_address(&self, address: &str) -> StoreResult<Option<Account>> {
        let address = address.to_owned();
        self.read(move |conn| mailboxes::account_by_address(conn, &address)).await
    }

    async fn team_address(&self, team: AccountId) -> StoreResult<Option<String>> {
        self.read(move |conn| mailboxes::team_address(conn, team)).await
    }

    async fn team_members(&self, team: AccountId) -> StoreResult<Vec<TeamMember>> {
        self.read(move |conn| shares::team_members(conn, team)).await
    }

    async fn set_team_member(&self, team: AccountId, member: AccountId, rights: Rights) -> StoreResult<()> {
        self.writer.run(move |conn, fx| shares::set_team_member(conn, fx, team, member, rights)).await
    }

    async fn remove_team_member(&self, team: AccountId, member: AccountId) -> StoreResult<()> {
        self.writer.run(move |conn, fx| shares::remove_team_member(conn, fx, team, member)).await
    }

    async fn set_group_member(&self, group: &str, account: AccountId, member_of: bool) -> StoreResult<()> {
        let group = group.to_owned();
        self.writer.run(move |conn, fx| shares::set_group_member(conn, fx, &group, account, member_of)).await
    }

    async fn groups_of(&self, account: AccountId) -> StoreResult<Vec<String>> {
        self.read(move |conn| shares::groups_of(conn, account)).await
    }

    async fn mailbox_owner(&self, mailbox: MailboxId) -> StoreResult<Account> {
        self.read(move |conn| mailboxes::mailbox_owner(conn, mailbox)).await
    }

    async fn acl(&self, mailbox: MailboxId) -> StoreResult<Vec<AclEntry>> {
        self.read(move |conn| shares::acl(conn, mailbox)).await
    }

    async fn set_acl(
        &self,
        mailbox: MailboxId,
        identifier: &Identifier,
        rights: Option<Rights>,
    ) -> StoreResult<()> {
        let identifier = identifier.clone();
        self.writer.run(move |conn, fx| shares::set_acl(conn, fx, mailbox, &identifier, rights)).await
    }

    async fn my_rights(&self, mailbox: MailboxId, account: AccountId) -> StoreResult<Rights> {
        self.read(move |conn| shares::my_rights(conn, mailbox, account)).await
    }

    async fn shared_with(&self, account: AccountId) -> StoreResult<Vec<SharedMailbox>> {
        // The mailboxes shared with one account: every LIST asks, and it is the account's
        // grants, not anybody's mail.
        self.read_small(move |conn| shares::shared_with(conn, account)).await
    }

    async fn set_seen_mode(&self, mailbox: MailboxId, mode: SeenMode) -> StoreResult<()> {
        self.writer.run(move |conn, fx| seen::set_seen_mode(conn, fx, mailbox, mode)).await
    }

    async fn seen_mode(&self, mailbox: MailboxId) -> StoreResult<SeenMode> {
        self.read_small(move |conn| seen::seen_mode(conn, mailbox)).await
    }

    async fn private_seen(&self, mailbox: MailboxId, account: AccountId) -> StoreResult<UidSet> {
        self.read(move |conn| seen::private_seen(conn, mailbox, account)).await
    }

    async fn private_seen_since(
        &self,
        mailbox: MailboxId,
        account: AccountId,
        since: ModSeq,
    ) -> StoreResult<Vec<(Uid, bool, ModSeq)>> {
        self.read(move |conn| seen::private_seen_since(conn, mailbox, account, since)).await
    }

    async fn store_private_seen(
        &self,
        mailbox: MailboxId,
        account: AccountId,
        uids: &UidSet,
        seen: bool,
    ) -> StoreResult<Vec<(Uid, ModSeq)>> {
        let uids = uids.clone();
        self.writer
            .run(move |conn, fx| seen::store_private_seen(conn, fx, mailbox, account, &uids, seen))
            .await
    }

    async fn quota(&self, account: AccountId) -> StoreResult<Quota> {
        let defaults = self.limits.quota_defaults();
        self.read(move |conn| quota::quota(conn, account, &defaults)).await
    }

    async fn set_quota(&self, account: AccountId, limits: QuotaLimits) -> StoreResult<()> {
        let defaults = self.limits.quota_defaults();
        self.writer.run(move |conn, _| quota::set_quota(conn, account, limits, &defaults)).await
    }

    async fn pending_quota_warnings(&self) -> StoreResult<Vec<QuotaWarning>> {
        self.read(quota::pending_warnings).await
    }

    async fn deliver_quota_warning(&self, warning: i64, message: NewMessage) -> StoreResult<()> {
        let defaults = self.limits.quota_defaults();
        self.append_where(vec![(message, None)], move |conn, fx, prepared| {
            // Delivered already (by another process): nothing to append.
            let Some(account) = quota::claim_warning(conn, warning)? else {
                return Ok((MailboxId(0), Vec::new()));
            };
            let inbox =
                rows::MailboxRow::by_name(conn, account, MailboxName::INBOX)?.ok_or(StoreError::NotFound)?;
            // Not held to the quota: the warning must arrive when the mailbox is full.
            let appended = messages::append(conn, fx, inbox.id, prepared, &defaults, Check::Skip)?;
            Ok((inbox.id, appended))
        })
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl RestoreStore for SqliteStore {
    async fn dump_mailbox(&self, mailbox: MailboxId) -> StoreResult<MailboxDump> {
        self.read(move |conn| restore::dump_mailbox(conn, mailbox)).await
    }

    async fn dump_messages(
        &self,
        mailbox: MailboxId,
        after: u32,
        below: Uid,
        since: ModSeq,
        max_count: usize,
        max_bytes: usize,
    ) -> StoreResult<Vec<MessageDump>> {
        self.read(move |conn| {
            restore::dump_messages(conn, mailbox, after, below, since, max_count, max_bytes)
        })
        .await
    }

    async fn dump_expunged(&self, mailbox: MailboxId, since: ModSeq) -> StoreResult<Vec<(Uid, ModSeq)>> {
        self.read(move |conn| restore::dump_expunged(conn, mailbox, since)).await
    }

    async fn dump_private_seen(
        &self,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> StoreResult<Vec<PrivateSeenDump>> {
        self.read(move |conn| restore::dump_private_seen(conn, mailbox, since)).await
    }

    async fn dump_mailbox_metadata(&self, mailbox: MailboxId) -> StoreResult<Vec<crate::MetadataDump>> {
        self.read(move |conn| metadata::dump_mailbox(conn, mailbox)).await
    }

    async fn dump_account_metadata(&self, account: AccountId) -> StoreResult<Vec<crate::MetadataDump>> {
        self.read(move |conn| metadata::dump_account(conn, account)).await
    }

    async fn restore_account(&self, account: &AccountRestore) -> StoreResult<AccountId> {
        let account = account.clone();
        self.writer.run(move |conn, _| restore::restore_account(conn, &account)).await
    }

    async fn restore_mailbox(
        &self,
        account: AccountId,
        name: &MailboxName,
        mailbox: &MailboxRestore,
    ) -> StoreResult<MailboxId> {
        let (name, mailbox) = (name.clone(), mailbox.clone());
        self.writer.run(move |conn, _| restore::restore_mailbox(conn, account, &name, &mailbox)).await
    }

    async fn recreate_mailbox(
        &self,
        mailbox: MailboxId,
        uid_validity: NewUidValidity,
    ) -> StoreResult<MailboxId> {
        self.writer.run(move |conn, fx| restore::recreate_mailbox(conn, fx, mailbox, uid_validity)).await
    }

    async fn restore_messages(
        &self,
        mailbox: MailboxId,
        messages: Vec<MessageRestore>,
    ) -> StoreResult<Vec<Restored>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let defaults = self.limits.quota_defaults();
        // Parsing and text extraction on the blocking pool; the writer only inserts.
        let (prepared, entries) = tokio::task::spawn_blocking(move || restore::prepare(messages))
            .await
            .map_err(|e| StoreError::Backend(format!("message preparation failed: {e}")))??;
        let (results, texts) = self
            .writer
            .run(move |conn, fx| {
                let restore::RestoreOutcome { results, inserted } =
                    restore::restore_messages(conn, fx, mailbox, &prepared, &defaults)?;
                let mut entries: Vec<Option<index::IndexEntry>> = entries.into_iter().map(Some).collect();
                let (appended, chosen): (Vec<_>, Vec<_>) = inserted
                    .into_iter()
                    .filter_map(|(i, a)| entries.get_mut(i).and_then(Option::take).map(|e| (a, e)))
                    .unzip();
                let texts = index::record_appended(conn, mailbox, &appended, chosen);
                Ok((results, texts))
            })
            .await?;
        self.indexer.submit(texts);
        Ok(results)
    }

    async fn restore_expunged(
        &self,
        mailbox: MailboxId,
        runs: Vec<ExpungedRun>,
        present: PresentUids,
    ) -> StoreResult<u64> {
        let defaults = self.limits.quota_defaults();
        self.writer
            .run(move |conn, fx| restore::restore_expunged(conn, fx, mailbox, &runs, present, &defaults))
            .await
    }

    async fn restore_counters(
        &self,
        mailbox: MailboxId,
        uid_next: Uid,
        highest_modseq: ModSeq,
    ) -> StoreResult<()> {
        self.writer
            .run(move |conn, fx| restore::restore_counters(conn, fx, mailbox, uid_next, highest_modseq))
            .await
    }

    async fn restore_private_seen(
        &self,
        mailbox: MailboxId,
        rows: Vec<(Uid, AccountId, bool, Option<ModSeq>)>,
    ) -> StoreResult<u64> {
        self.writer.run(move |conn, fx| restore::restore_private_seen(conn, fx, mailbox, &rows)).await
    }
}

#[async_trait]
impl crate::OperationsStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
    fn commits(&self) -> u64 {
        SqliteStore::commits(self)
    }
    fn writer_stats(&self) -> WriterStats {
        SqliteStore::writer_stats(self)
    }
    async fn text_backlog(&self) -> StoreResult<u64> {
        SqliteStore::text_backlog(self).await
    }
    async fn ping(&self) -> StoreResult<()> {
        SqliteStore::ping(self).await
    }
    async fn storage_bytes(&self) -> StoreResult<u64> {
        Ok(self.disk_size())
    }
    async fn totals(&self) -> StoreResult<StoreTotals> {
        SqliteStore::totals(self).await
    }
    async fn cleanup_mailboxes(&self) -> StoreResult<Vec<CleanupMailbox>> {
        SqliteStore::cleanup_mailboxes(self).await
    }
    async fn cleanup_override(&self, account: AccountId) -> StoreResult<CleanupOverride> {
        SqliteStore::cleanup_override(self, account).await
    }
    async fn set_cleanup_override(&self, account: AccountId, limits: CleanupOverride) -> StoreResult<()> {
        SqliteStore::set_cleanup_override(self, account, limits).await
    }
    async fn is_admin(&self, account: AccountId) -> StoreResult<bool> {
        SqliteStore::is_admin(self, account).await
    }
    async fn admins(&self) -> StoreResult<Vec<AccountId>> {
        SqliteStore::admins(self).await
    }
    async fn set_admin(&self, account: AccountId, admin: bool) -> StoreResult<()> {
        SqliteStore::set_admin(self, account, admin).await
    }
    async fn expunge_saved_before(
        &self,
        mailbox: MailboxId,
        before: i64,
        max: usize,
    ) -> StoreResult<Vec<Uid>> {
        SqliteStore::expunge_saved_before(self, mailbox, before, max).await
    }
    async fn rederive(&self, what: Rederivation) -> StoreResult<Rederived> {
        SqliteStore::rederive(self, what).await
    }
    fn restore_store(&self) -> Option<&dyn RestoreStore> {
        Some(self)
    }
    fn sqlite(&self) -> Option<&SqliteStore> {
        Some(self)
    }
}
