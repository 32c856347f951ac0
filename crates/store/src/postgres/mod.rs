//! The PostgreSQL backend: the same [`MailStore`]/[`AccountStore`] behaviour as the SQLite
//! store, on a database several Postfach nodes can share.
//!
//! # Layout
//! - [`schema`]: tables, the distribution column (`owner_id`) and the versioned migrations.
//! - `accounts`: [`AccountStore`]: accounts, credentials, login blocks.
//! - `mail`: the mailbox list and message writes and reads.
//! - `search`: SEARCH, evaluated in Rust over the mailbox's rows (no index yet).
//! - `facts`: SORT, THREAD input and the FETCH extras, derived on the fly.
//! - `shares`: teams, groups and ACLs; `quota`: limits, enforcement and warnings; `seen`:
//!   private `\Seen` ([`ShareStore`]); `sieve`: scripts, vacation history, subaddress policy
//!   ([`SieveStore`]).
//!
//! # Concurrency
//! Every write is one transaction (READ COMMITTED) that first locks the rows it numbers from:
//! APPEND takes its UIDs and modseq with `UPDATE mailboxes … RETURNING`, the other writes load
//! the mailbox row `FOR UPDATE`; the lock is held to COMMIT, so UIDs become visible in order
//! and a rollback leaves no gap. COPY and MOVE lock both mailbox rows in `(owner_id, id)`
//! order; creating a mailbox locks the owner's `accounts` row (it numbers mailbox ids and
//! UIDVALIDITY). Serialization failures and deadlocks (SQLSTATE 40001, 40P01) are retried
//! with jittered backoff, [`MAX_ATTEMPTS`] times in all.
//!
//! # Notifications
//! Writers signal the in-process [`Notifier`] after COMMIT, as the SQLite store does, and hand
//! the same hints to the [`bridge`], which coalesces them into NOTIFYs for the other nodes and
//! feeds theirs into this node's notifier (with a periodic sweep for lost hints).
//!
//! # Not yet
//! TLS to the database.

mod accounts;
pub mod bridge;
mod facts;
mod mail;
mod metadata;
mod ops;
mod quota;
mod restore;
pub mod schema;
mod search;
mod seen;
mod shares;
mod sieve;
mod urlauth;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::acl::{
    AclEntry, Identifier, Quota, QuotaLimits, QuotaWarning, Rights, SeenMode, SharedMailbox, TeamMember,
};
use crate::metadata::{MetadataDepth, MetadataLimits, MetadataPlace, MetadataWrite};
use crate::notify::{MetadataChange, Notifier};
use crate::sqlite::StoreLimits;
use crate::sqlite::quota::Check;
use crate::sqlite::sieve::{MAX_SCRIPT_LEN, check_name};
use crate::types::{
    Account, AccountId, AddressBlock, AppPassword, AppPasswordId, Appended, Changes, ClaimRecent, Copied,
    Criterion, FetchWant, FlagOp, Flags, FlagsUpdated, MailboxId, MailboxInfo, MailboxName, MailboxStatus,
    MessageExtras, MessageMeta, MessageSummary, ModSeq, NewMessage, ScramCredential, Snapshot, SortCriterion,
    SpecialUse, ThreadFacts, TotpSettings, Uid, UidSet,
};
use crate::{
    AccountStore, DetailDelivery, MailStore, ShareStore, SieveScript, SieveScriptInfo, SieveStore,
    StoreError, StoreResult, VacationClaim,
};

/// Attempts of one write transaction when PostgreSQL reports a serialization failure or a
/// deadlock.
pub const MAX_ATTEMPTS: u32 = 8;

/// Connections the pool opens at most.
const DEFAULT_POOL_SIZE: usize = 16;

/// How to reach the database.
#[derive(Clone, Default)]
pub struct PgOptions {
    /// A `postgres://` URL or a libpq key/value string.
    pub url: String,
    /// Overrides the URL's password (read from a file or the environment by the caller).
    pub password: Option<String>,
    /// Most connections at once (default 16).
    pub pool_size: Option<usize>,
    /// Per-account limits, as for the SQLite store.
    pub limits: StoreLimits,
    /// TLS to the database: `None` for none, else the CA certificates (PEM) the server's
    /// certificate must chain to; its name must match the URL's host.
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .field("tls", &self.tls_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// The PostgreSQL mail store. Share it as `Arc<PgStore>`.
pub struct PgStore {
    pool: Pool,
    notifier: Arc<Notifier>,
    limits: StoreLimits,
    writes: ops::WriteStats,
    /// How to reach the database, for the bridge's own LISTEN connection.
    config: tokio_postgres::Config,
    tls: Connector,
    /// Push to and from the other nodes (started by [`PgStore::connect_with`]).
    bridge: Option<bridge::Bridge>,
}

impl Drop for PgStore {
    /// Sends the hints still queued before the store goes (an admin command exits right after
    /// its write; the other nodes must still hear of it): waits, at most a second, for the
    /// coalescer on the runtime's other workers. Only on a multi-threaded runtime (elsewhere the
    /// other nodes' periodic sweep covers it), and never with tokio's timers, which stop when
    /// the runtime shuts down.
    fn drop(&mut self) {
        let Some(bridge) = &self.bridge else { return };
        if bridge.pending() == 0 {
            return;
        }
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if !multi {
            return;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while bridge.pending() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// What went wrong inside a transaction: a store answer, or a database error that may be worth
/// retrying.
#[derive(Debug)]
pub(crate) enum Fail {
    Store(StoreError),
    Db(tokio_postgres::Error),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<crate::types::NameError> for Fail {
    fn from(e: crate::types::NameError) -> Self {
        Fail::Store(e.into())
    }
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<deadpool_postgres::PoolError> for Fail {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        // The cause (a refused connection, a TLS certificate problem) is in the source chain.
        let mut text = format!("PostgreSQL pool: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text.push_str(&format!(": {c}"));
            cause = c.source();
        }
        Fail::Store(StoreError::Backend(text))
    }
}

impl Fail {
    fn retryable(&self) -> bool {
        match self {
            Fail::Db(e) => {
                matches!(e.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
            }
            Fail::Store(_) => false,
        }
    }

    fn into_store(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Db(e) => {
                tracing::warn!(error = %e, "PostgreSQL error");
                StoreError::Backend(match e.as_db_error() {
                    Some(db) => format!("PostgreSQL: {} ({})", db.message(), db.code().code()),
                    None => match std::error::Error::source(&e) {
                        Some(cause) => format!("PostgreSQL: {e}: {cause}"),
                        None => format!("PostgreSQL: {e}"),
                    },
                })
            }
        }
    }
}

/// True when `e` is a unique violation (a name or key that exists).
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// The transaction every backend function runs in.
pub(crate) type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// Shorthand inside transactions.
pub(crate) type PgResult<T> = Result<T, Fail>;

/// Signals to send once a transaction has committed.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    changed: Vec<(MailboxId, ModSeq)>,
    acl: Vec<Option<MailboxId>>,
    credentials: bool,
    /// Accounts whose mailbox list or subscriptions changed (NOTIFY, RFC 5465 §5.4, §5.5).
    lists: Vec<AccountId>,
    /// METADATA changes (NOTIFY, RFC 5465 §5.6, §5.7).
    metadata: Vec<MetadataChange>,
}

impl Effects {
    pub(crate) fn changed(&mut self, mailbox: MailboxId, modseq: ModSeq) {
        self.changed.push((mailbox, modseq));
    }

    /// The ACL (or seen mode) of `mailbox` changed, or (`None`) a team or group membership
    /// did, which may change rights anywhere.
    pub(crate) fn acl_changed(&mut self, mailbox: Option<MailboxId>) {
        self.acl.push(mailbox);
    }

    /// The mailbox list or the subscriptions of `account` changed.
    pub(crate) fn list_changed(&mut self, account: AccountId) {
        self.lists.push(account);
    }

    /// METADATA entries changed.
    pub(crate) fn metadata_changed(&mut self, change: MetadataChange) {
        self.metadata.push(change);
    }

    /// Credentials or address blocks changed (other nodes' authenticators re-read them).
    pub(crate) fn credentials_changed(&mut self) {
        self.credentials = true;
    }

    /// After COMMIT: to this node's sessions at once, and to the other nodes through the
    /// [`bridge`].
    fn publish(self, notifier: &Notifier, bridge: Option<&bridge::Bridge>) {
        if self.credentials {
            notifier.credentials_changed();
            if let Some(bridge) = bridge {
                bridge.send(bridge::Hint::Credentials);
            }
        }
        for (mailbox, modseq) in self.changed {
            notifier.changed(mailbox, modseq);
            if let Some(bridge) = bridge {
                bridge.send(bridge::Hint::Changed(mailbox, modseq));
            }
        }
        for mailbox in self.acl {
            notifier.acl_changed(mailbox);
            if let Some(bridge) = bridge {
                bridge.send(bridge::Hint::Acl(mailbox));
            }
        }
        for account in self.lists {
            notifier.list_changed(account);
            if let Some(bridge) = bridge {
                bridge.send(bridge::Hint::List(account));
            }
        }
        for change in self.metadata {
            if let Some(bridge) = bridge {
                bridge.send(bridge::Hint::Metadata(change.clone()));
            }
            notifier.metadata_changed(change);
        }
    }
}

/// A pause before attempt `attempt` (1-based): exponential from 2 ms, with jitter from the clock.
async fn backoff(attempt: u32) {
    let base = 2u64 << attempt.min(8);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(base + nanos % base.max(1))).await;
}

/// Runs `$body` in a write transaction named `$tx` with effects `$fx`, retrying serialization
/// failures and deadlocks; commits, then publishes the effects.
macro_rules! write_tx {
    ($store:expr, |$tx:ident, $fx:ident| $body:expr) => {{
        let store = $store;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let started = std::time::Instant::now();
            let mut effects = $crate::postgres::Effects::default();
            let result: $crate::postgres::PgResult<_> = async {
                let mut client = store.pool.get().await?;
                let $tx = client.transaction().await?;
                #[allow(unused_variables)]
                let $fx = &mut effects;
                let value = $body;
                $tx.commit().await?;
                Ok(value)
            }
            .await;
            match result {
                Ok(value) => {
                    store.writes.committed(started.elapsed());
                    effects.publish(&store.notifier, store.bridge.as_ref());
                    break Ok(value);
                }
                Err(e) if e.retryable() && attempt < $crate::postgres::MAX_ATTEMPTS => {
                    tracing::debug!(attempt, "PostgreSQL transaction conflict; retrying");
                    $crate::postgres::backoff(attempt).await;
                }
                Err(e) => break Err(e.into_store()),
            }
        }
    }};
}

/// Runs `$body` in a read-only REPEATABLE READ transaction (one snapshot) named `$tx`.
macro_rules! read_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store = $store;
        let result: $crate::postgres::PgResult<_> = async {
            let mut client = store.pool.get().await?;
            let $tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let value = $body;
            $tx.commit().await?;
            Ok(value)
        }
        .await;
        result.map_err($crate::postgres::Fail::into_store)
    }};
}

impl PgStore {
    /// Connects to `url`, runs the migrations (refusing a newer schema), and returns the store.
    pub async fn connect(url: &str) -> StoreResult<PgStore> {
        Self::connect_with(PgOptions { url: url.to_owned(), ..PgOptions::default() }).await
    }

    /// [`PgStore::connect`] with options.
    /// Starts the push between nodes ([`bridge`]) on the current tokio runtime.
    pub async fn connect_with(options: PgOptions) -> StoreResult<PgStore> {
        let mut store = Self::open(&options)?;
        store.migrate().await?;
        store.bridge = Some(bridge::Bridge::start(
            store.config.clone(),
            store.tls.clone(),
            store.pool.clone(),
            &store.notifier,
        ));
        Ok(store)
    }

    /// The store without touching the database: no connection is made and nothing is migrated
    /// until first use. For `postfach db migrate`, which then calls [`PgStore::migrate`]; every
    /// other user wants [`PgStore::connect_with`].
    pub fn unmigrated(options: &PgOptions) -> StoreResult<PgStore> {
        Self::open(options)
    }

    fn open(options: &PgOptions) -> StoreResult<PgStore> {
        let mut config: tokio_postgres::Config =
            options.url.parse().map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))?;
        if let Some(password) = &options.password {
            config.password(password);
        }
        let tls = match &options.tls_ca_pem {
            None => Connector::Plain,
            Some(pem) => {
                // Never fall back to cleartext when TLS was asked for.
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Connector::Tls(tls_connector(pem)?)
            }
        };
        let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match &tls {
            Connector::Plain => Manager::from_config(config.clone(), NoTls, manager_config),
            Connector::Tls(make) => Manager::from_config(config.clone(), make.clone(), manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.unwrap_or(DEFAULT_POOL_SIZE))
            .build()
            .map_err(|e| StoreError::Backend(format!("PostgreSQL pool: {e}")))?;
        Ok(PgStore {
            pool,
            notifier: Arc::new(Notifier::new()),
            limits: options.limits,
            writes: ops::WriteStats::new(),
            config,
            tls,
            bridge: None,
        })
    }

    /// Brings the schema up to date (what `postfach db migrate` runs). Returns the version
    /// found before.
    pub async fn migrate(&self) -> StoreResult<i64> {
        let result: PgResult<i64> = async {
            let mut client = self.pool.get().await?;
            schema::migrate(&mut client).await
        }
        .await;
        result.map_err(Fail::into_store)
    }

    /// The schema version of the database (0: empty).
    pub async fn schema_version(&self) -> StoreResult<i64> {
        let result: PgResult<i64> = async {
            let client = self.pool.get().await?;
            let exists = client.query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[]).await?;
            if !exists.get::<_, bool>(0) {
                return Ok(0);
            }
            let row = client.query_opt("SELECT version FROM schema_version WHERE id = 1", &[]).await?;
            Ok(row.map(|r| r.get(0)).unwrap_or(0))
        }
        .await;
        result.map_err(Fail::into_store)
    }
}

/// How connections to the database are made.
#[derive(Clone)]
pub(crate) enum Connector {
    /// Cleartext (a database on the same machine or a trusted network).
    Plain,
    /// TLS, verifying the server's certificate against the configured CAs and the host name.
    Tls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// A TLS connector that trusts exactly the certificates in `pem`.
fn tls_connector(pem: &[u8]) -> StoreResult<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| StoreError::Backend(format!("reading the database CA file: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| StoreError::Backend(format!("the database CA file holds a bad certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(StoreError::Backend("the database CA file holds no certificate".to_owned()));
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The SHA-256 of a body's bytes (`bodies.content_hash`).
pub(crate) fn content_hash(raw: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(raw).to_vec()
}

/// The owner encoded in an id handed out by this backend (`owner << 32 | n`).
pub(crate) fn owner_of(id: i64) -> i64 {
    id >> 32
}

impl PgStore {
    /// The defaults a quota root's own limits fall back to (`None`: unlimited).
    fn quota_defaults(&self) -> QuotaLimits {
        QuotaLimits {
            storage: self.limits.default_quota.storage,
            messages: self.limits.default_quota.messages,
            mailboxes: Some(u64::from(self.limits.max_mailboxes)),
        }
    }
}

#[async_trait]
impl AccountStore for PgStore {
    async fn create_account(&self, name: &str, password_hash: &str) -> StoreResult<AccountId> {
        write_tx!(self, |tx, fx| accounts::create_account(&tx, name, password_hash).await?)
    }
    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>> {
        read_tx!(self, |tx| accounts::account_by_name(&tx, name).await?)
    }
    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        read_tx!(self, |tx| accounts::list_accounts(&tx).await?)
    }
    async fn delete_account(&self, account: AccountId) -> StoreResult<()> {
        write_tx!(self, |tx, fx| {
            let done = accounts::delete_account(&tx, fx, account).await?;
            fx.credentials_changed();
            done
        })
    }
    async fn set_password(
        &self,
        account: AccountId,
        password_hash: &str,
        scram: Option<&ScramCredential>,
    ) -> StoreResult<()> {
        write_tx!(self, |tx, fx| {
            let done = accounts::set_password(&tx, account, password_hash, scram).await?;
            fx.credentials_changed();
            done
        })
    }
    async fn scram_credential(&self, account: AccountId) -> StoreResult<Option<ScramCredential>> {
        read_tx!(self, |tx| accounts::scram_credential(&tx, account).await?)
    }
    async fn totp(&self, account: AccountId) -> StoreResult<Option<TotpSettings>> {
        read_tx!(self, |tx| accounts::totp(&tx, account).await?)
    }
    async fn set_totp(&self, account: AccountId, totp: Option<&TotpSettings>) -> StoreResult<()> {
        write_tx!(self, |tx, fx| {
            let done = accounts::set_totp(&tx, account, totp).await?;
            fx.credentials_changed();
            done
        })
    }
    async fn claim_totp_step(&self, account: AccountId, step: u64) -> StoreResult<bool> {
        write_tx!(self, |tx, fx| accounts::claim_totp_step(&tx, account, step).await?)
    }
    async fn add_app_password(
        &self,
        account: AccountId,
        label: &str,
        hash: &str,
    ) -> StoreResult<AppPasswordId> {
        write_tx!(self, |tx, fx| accounts::add_app_password(&tx, account, label, hash).await?)
    }
    async fn app_passwords(&self, account: AccountId) -> StoreResult<Vec<AppPassword>> {
        read_tx!(self, |tx| accounts::app_passwords(&tx, account).await?)
    }
    async fn revoke_app_password(&self, account: AccountId, label: &str) -> StoreResult<()> {
        write_tx!(self, |tx, fx| {
            let done = accounts::revoke_app_password(&tx, account, label).await?;
            fx.credentials_changed();
            done
        })
    }
    async fn app_password_used(&self, id: AppPasswordId, at: i64, address: &str) -> StoreResult<()> {
        write_tx!(self, |tx, fx| accounts::app_password_used(&tx, id, at, address).await?)
    }
    async fn app_password_exists(&self, id: AppPasswordId) -> StoreResult<bool> {
        read_tx!(self, |tx| accounts::app_password_exists(&tx, id).await?)
    }
    async fn credentials_generation(&self) -> StoreResult<u64> {
        read_tx!(self, |tx| accounts::credentials_generation(&tx).await?)
    }
    async fn block_address(&self, block: &AddressBlock) -> StoreResult<()> {
        write_tx!(self, |tx, fx| {
            let done = accounts::block_address(&tx, block).await?;
            fx.credentials_changed();
            done
        })
    }
    async fn address_block(&self, address: &str, now: i64) -> StoreResult<Option<AddressBlock>> {
        read_tx!(self, |tx| accounts::address_block(&tx, address, now).await?)
    }
    async fn address_blocks(&self, now: i64) -> StoreResult<Vec<AddressBlock>> {
        read_tx!(self, |tx| accounts::address_blocks(&tx, now).await?)
    }
    async fn unblock_address(&self, address: &str, now: i64) -> StoreResult<bool> {
        write_tx!(self, |tx, fx| {
            let done = accounts::unblock_address(&tx, address, now).await?;
            fx.credentials_changed();
            done
        })
    }
}

#[async_trait]
impl MailStore for PgStore {
    async fn list_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxInfo>> {
        read_tx!(self, |tx| mail::mailbox_infos(&tx, account, None).await?)
    }
    async fn mailbox_by_name(
        &self,
        account: AccountId,
        name: &MailboxName,
    ) -> StoreResult<Option<MailboxInfo>> {
        read_tx!(self, |tx| mail::mailbox_infos(&tx, account, Some(name.as_str())).await?.into_iter().next())
    }
    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &MailboxName,
        special_use: Option<SpecialUse>,
    ) -> StoreResult<MailboxId> {
        let max = self.limits.max_mailboxes;
        write_tx!(self, |tx, fx| {
            fx.list_changed(account);
            mail::create_mailbox(&tx, fx, account, name, special_use, max).await?
        })
    }
    async fn delete_mailbox(&self, account: AccountId, mailbox: MailboxId) -> StoreResult<()> {
        let defaults = self.quota_defaults();
        write_tx!(self, |tx, fx| {
            fx.list_changed(account);
            mail::delete_mailbox(&tx, fx, account, mailbox, &defaults).await?
        })
    }
    async fn rename_mailbox(
        &self,
        account: AccountId,
        from: &MailboxName,
        to: &MailboxName,
    ) -> StoreResult<()> {
        let max = self.limits.max_mailboxes;
        write_tx!(self, |tx, fx| {
            fx.list_changed(account);
            mail::rename_mailbox(&tx, fx, account, from, to, max).await?
        })
    }
    async fn set_subscribed(
        &self,
        account: AccountId,
        name: &MailboxName,
        subscribed: bool,
    ) -> StoreResult<()> {
        write_tx!(self, |tx, fx| {
            fx.list_changed(account);
            mail::set_subscribed(&tx, account, name.as_str(), subscribed).await?
        })
    }
    async fn subscriptions(&self, account: AccountId) -> StoreResult<Vec<String>> {
        read_tx!(self, |tx| mail::subscriptions(&tx, account).await?)
    }
    async fn status(&self, mailbox: MailboxId) -> StoreResult<MailboxStatus> {
        read_tx!(self, |tx| mail::load(&tx, mailbox, false).await?.status())
    }
    async fn select(&self, mailbox: MailboxId, recent: ClaimRecent) -> StoreResult<Snapshot> {
        match recent {
            ClaimRecent::Peek => read_tx!(self, |tx| mail::select(&tx, mailbox, recent).await?),
            ClaimRecent::Claim => write_tx!(self, |tx, fx| mail::select(&tx, mailbox, recent).await?),
        }
    }
    async fn claim_recent(&self, mailbox: MailboxId, below: Uid, claim: ClaimRecent) -> StoreResult<UidSet> {
        match claim {
            ClaimRecent::Peek => read_tx!(self, |tx| mail::claim_recent(&tx, mailbox, below, claim).await?),
            ClaimRecent::Claim => {
                write_tx!(self, |tx, fx| mail::claim_recent(&tx, mailbox, below, claim).await?)
            }
        }
    }
    async fn append(&self, mailbox: MailboxId, messages: Vec<NewMessage>) -> StoreResult<Vec<Appended>> {
        self.append_prepared(mailbox, messages.into_iter().map(|m| (m, None)).collect()).await
    }
    async fn append_parsed(
        &self,
        mailbox: MailboxId,
        messages: Vec<(NewMessage, Arc<MessageSummary>)>,
    ) -> StoreResult<Vec<Appended>> {
        self.append_prepared(mailbox, messages.into_iter().map(|(m, s)| (m, Some(s))).collect()).await
    }
    async fn changes_since(
        &self,
        mailbox: MailboxId,
        since: ModSeq,
        known_uid_next: Uid,
    ) -> StoreResult<Changes> {
        read_tx!(self, |tx| mail::changes_since(&tx, mailbox, since, known_uid_next).await?)
    }
    async fn expunge(&self, mailbox: MailboxId, uids: Option<&UidSet>) -> StoreResult<Vec<Uid>> {
        let defaults = self.quota_defaults();
        write_tx!(self, |tx, fx| mail::expunge(&tx, fx, mailbox, uids, &defaults).await?)
    }
    async fn fetch(
        &self,
        mailbox: MailboxId,
        uids: &UidSet,
        want: FetchWant,
    ) -> StoreResult<Vec<MessageMeta>> {
        read_tx!(self, |tx| mail::fetch(&tx, mailbox, uids, want).await?)
    }
    async fn body(&self, mailbox: MailboxId, uid: Uid) -> StoreResult<Vec<u8>> {
        read_tx!(self, |tx| mail::body(&tx, mailbox, uid).await?)
    }
    async fn bodies(&self, mailbox: MailboxId, wanted: &[(Uid, u32)]) -> StoreResult<Vec<(Uid, Vec<u8>)>> {
        read_tx!(self, |tx| mail::bodies(&tx, mailbox, wanted).await?)
    }
    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &UidSet,
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<ModSeq>,
    ) -> StoreResult<FlagsUpdated> {
        let change = crate::sqlite::rows::checked_flags(flags)?;
        write_tx!(self, |tx, fx| mail::store_flags(&tx, fx, mailbox, uids, op, &change, unchanged_since)
            .await?)
    }
    async fn copy(&self, from: MailboxId, uids: &UidSet, to: MailboxId) -> StoreResult<Copied> {
        let defaults = self.quota_defaults();
        write_tx!(self, |tx, fx| mail::transfer(&tx, fx, from, uids, to, mail::Transfer::Copy, &defaults)
            .await?)
    }
    async fn move_messages(&self, from: MailboxId, uids: &UidSet, to: MailboxId) -> StoreResult<Copied> {
        let defaults = self.quota_defaults();
        write_tx!(self, |tx, fx| mail::transfer(&tx, fx, from, uids, to, mail::Transfer::Move, &defaults)
            .await?)
    }
    async fn search(&self, mailbox: MailboxId, criterion: &Criterion) -> StoreResult<Vec<Uid>> {
        read_tx!(self, |tx| search::search(&tx, mailbox, criterion).await?)
    }
    async fn sort(
        &self,
        mailbox: MailboxId,
        uids: &UidSet,
        criteria: &[SortCriterion],
    ) -> StoreResult<Vec<Uid>> {
        read_tx!(self, |tx| facts::sort(&tx, mailbox, uids, criteria).await?)
    }
    async fn thread_facts(&self, mailbox: MailboxId, uids: &UidSet) -> StoreResult<Vec<ThreadFacts>> {
        read_tx!(self, |tx| facts::thread_facts(&tx, mailbox, uids).await?)
    }
    async fn fetch_extras(&self, mailbox: MailboxId, uids: &UidSet) -> StoreResult<Vec<MessageExtras>> {
        read_tx!(self, |tx| facts::fetch_extras(&tx, mailbox, uids).await?)
    }
    async fn metadata(
        &self,
        place: MetadataPlace,
        account: AccountId,
        entries: &[String],
        depth: MetadataDepth,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        read_tx!(self, |tx| metadata::read(&tx, place, account, entries, depth).await?)
    }

    async fn set_metadata(
        &self,
        place: MetadataPlace,
        account: AccountId,
        entries: &[(String, Option<Vec<u8>>)],
        limits: MetadataLimits,
    ) -> StoreResult<MetadataWrite> {
        write_tx!(self, |tx, fx| {
            let written = metadata::write(&tx, place, account, entries, limits).await?;
            if written == MetadataWrite::Written {
                let names = entries.iter().map(|(name, _)| name.as_str());
                for change in MetadataChange::of_write(place, account, names) {
                    fx.metadata_changed(change);
                }
            }
            written
        })
    }

    async fn urlauth_key(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        fresh: Option<&[u8]>,
    ) -> StoreResult<Option<Vec<u8>>> {
        match fresh {
            None => read_tx!(self, |tx| urlauth::key(&tx, account, mailbox, None).await?),
            Some(fresh) => write_tx!(self, |tx, fx| urlauth::key(&tx, account, mailbox, Some(fresh)).await?),
        }
    }

    async fn reset_urlauth_keys(&self, account: AccountId, mailbox: Option<MailboxId>) -> StoreResult<()> {
        write_tx!(self, |tx, fx| urlauth::reset(&tx, account, mailbox).await?)
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }
}

impl PgStore {
    async fn append_prepared(
        &self,
        mailbox: MailboxId,
        messages: Vec<(NewMessage, Option<Arc<MessageSummary>>)>,
    ) -> StoreResult<Vec<Appended>> {
        // Parse and encode outside the transaction (CPU work must not hold the row lock).
        let prepared = tokio::task::spawn_blocking(move || mail::prepare(messages))
            .await
            .map_err(|e| StoreError::Backend(format!("append preparation failed: {e}")))??;
        let defaults = self.quota_defaults();
        write_tx!(self, |tx, fx| mail::append(&tx, fx, mailbox, &prepared, &defaults, Check::Enforce).await?)
    }
}

#[async_trait]
impl ShareStore for PgStore {
    async fn create_team(&self, name: &str, address: Option<&str>) -> StoreResult<AccountId> {
        write_tx!(self, |tx, fx| shares::create_team(&tx, name, address).await?)
    }
    async fn account_by_address(&self, address: &str) -> StoreResult<Option<Account>> {
        read_tx!(self, |tx| shares::account_by_address(&tx, address).await?)
    }
    async fn team_address(&self, team: AccountId) -> StoreResult<Option<String>> {
        read_tx!(self, |tx| shares::team_address(&tx, team).await?)
    }
    async fn team_members(&self, team: AccountId) -> StoreResult<Vec<TeamMember>> {
        read_tx!(self, |tx| shares::team_members(&tx, team).await?)
    }
    async fn set_team_member(&self, team: AccountId, member: AccountId, rights: Rights) -> StoreResult<()> {
        write_tx!(self, |tx, fx| shares::set_team_member(&tx, fx, team, member, rights).await?)
    }
    async fn remove_team_member(&self, team: AccountId, member: AccountId) -> StoreResult<()> {
        write_tx!(self, |tx, fx| shares::remove_team_member(&tx, fx, team, member).await?)
    }
    async fn set_group_member(&self, group: &str, account: AccountId, member_of: bool) -> StoreResult<()> {
        write_tx!(self, |tx, fx| shares::set_group_member(&tx, fx, group, account, member_of).await?)
    }
    async fn groups_of(&self, account: AccountId) -> StoreResult<Vec<String>> {
        read_tx!(self, |tx| shares::groups_of(&tx, account).await?)
    }
    async fn mailbox_owner(&self, mailbox: MailboxId) -> StoreResult<Account> {
        read_tx!(self, |tx| accounts::mailbox_owner(&tx, mailbox).await?)
    }
    async fn acl(&self, mailbox: MailboxId) -> StoreResult<Vec<AclEntry>> {
        read_tx!(self, |tx| shares::acl(&tx, mailbox).await?)
    }
    async fn set_acl(
        &self,
        mailbox: MailboxId,
        identifier: &Identifier,
        rights: Option<Rights>,
    ) -> StoreResult<()> {
        write_tx!(self, |tx, fx| shares::set_acl(&tx, fx, mailbox, identifier, rights).await?)
    }
    async fn my_rights(&self, mailbox: MailboxId, account: AccountId) -> StoreResult<Rights> {
        read_tx!(self, |tx| shares::my_rights(&tx, mailbox, account).await?)
    }
    async fn shared_with(&self, account: AccountId) -> StoreResult<Vec<SharedMailbox>> {
        read_tx!(self, |tx| shares::shared_with(&tx, account).await?)
    }
    async fn set_seen_mode(&self, mailbox: MailboxId, mode: SeenMode) -> StoreResult<()> {
        write_tx!(self, |tx, fx| seen::set_seen_mode(&tx, fx, mailbox, mode).await?)
    }
    async fn seen_mode(&self, mailbox: MailboxId) -> StoreResult<SeenMode> {
        read_tx!(self, |tx| seen::seen_mode(&tx, mailbox).await?)
    }
    async fn private_seen(&self, mailbox: MailboxId, account: AccountId) -> StoreResult<UidSet> {
        read_tx!(self, |tx| seen::private_seen(&tx, mailbox, account).await?)
    }
    async fn private_seen_since(
        &self,
        mailbox: MailboxId,
        account: AccountId,
        since: ModSeq,
    ) -> StoreResult<Vec<(Uid, bool, ModSeq)>> {
        read_tx!(self, |tx| seen::private_seen_since(&tx, mailbox, account, since).await?)
    }
    async fn store_private_seen(
        &self,
        mailbox: MailboxId,
        account: AccountId,
        uids: &UidSet,
        seen: bool,
    ) -> StoreResult<Vec<(Uid, ModSeq)>> {
        write_tx!(self, |tx, fx| seen::store_private_seen(&tx, fx, mailbox, account, uids, seen).await?)
    }
    async fn quota(&self, account: AccountId) -> StoreResult<Quota> {
        let defaults = self.quota_defaults();
        read_tx!(self, |tx| accounts::quota(&tx, account, defaults).await?)
    }
    async fn set_quota(&self, account: AccountId, limits: QuotaLimits) -> StoreResult<()> {
        let defaults = self.quota_defaults();
        write_tx!(self, |tx, fx| quota::set_quota(&tx, account, limits, &defaults).await?)
    }
    async fn pending_quota_warnings(&self) -> StoreResult<Vec<QuotaWarning>> {
        read_tx!(self, |tx| quota::pending_warnings(&tx).await?)
    }
    async fn deliver_quota_warning(&self, warning: i64, message: NewMessage) -> StoreResult<()> {
        let prepared = tokio::task::spawn_blocking(move || mail::prepare(vec![(message, None)]))
            .await
            .map_err(|e| StoreError::Backend(format!("append preparation failed: {e}")))??;
        let defaults = self.quota_defaults();
        write_tx!(self, |tx, fx| {
            // Delivered already (by another node): nothing to append.
            if let Some(account) = quota::claim_warning(&tx, warning).await? {
                let inbox = mail::mailbox_infos(&tx, account, Some(MailboxName::INBOX))
                    .await?
                    .into_iter()
                    .next()
                    .ok_or(StoreError::NotFound)?;
                // Not held to the quota: the warning must arrive when the mailbox is full.
                mail::append(&tx, fx, inbox.id, &prepared, &defaults, Check::Skip).await?;
            }
        })
    }
}

#[async_trait]
impl SieveStore for PgStore {
    async fn put_sieve_script(&self, account: AccountId, name: &str, text: &str) -> StoreResult<()> {
        check_name(name)?;
        if text.len() > MAX_SCRIPT_LEN {
            return Err(StoreError::Limit(format!("script larger than {MAX_SCRIPT_LEN} bytes")));
        }
        write_tx!(self, |tx, fx| sieve::put(&tx, account, name, text).await?)
    }
    async fn sieve_script(&self, account: AccountId, name: &str) -> StoreResult<Option<String>> {
        read_tx!(self, |tx| sieve::script(&tx, account, name).await?)
    }
    async fn sieve_scripts(&self, account: AccountId) -> StoreResult<Vec<SieveScriptInfo>> {
        read_tx!(self, |tx| sieve::scripts(&tx, account).await?)
    }
    async fn active_sieve_script(&self, account: AccountId) -> StoreResult<Option<SieveScript>> {
        read_tx!(self, |tx| sieve::active(&tx, account).await?)
    }
    async fn activate_sieve_script(&self, account: AccountId, name: Option<&str>) -> StoreResult<()> {
        write_tx!(self, |tx, fx| sieve::activate(&tx, account, name).await?)
    }
    async fn delete_sieve_script(&self, account: AccountId, name: &str) -> StoreResult<()> {
        write_tx!(self, |tx, fx| sieve::delete(&tx, account, name).await?)
    }
    async fn rename_sieve_script(&self, account: AccountId, old: &str, new: &str) -> StoreResult<()> {
        check_name(new)?;
        write_tx!(self, |tx, fx| sieve::rename(&tx, account, old, new).await?)
    }
    async fn claim_vacation(
        &self,
        account: AccountId,
        handle: &str,
        sender: &str,
        now: i64,
        period_secs: i64,
    ) -> StoreResult<VacationClaim> {
        write_tx!(self, |tx, fx| sieve::claim(&tx, account, handle, sender, now, period_secs).await?)
    }
    async fn release_vacation(&self, account: AccountId, handle: &str, sender: &str) -> StoreResult<()> {
        write_tx!(self, |tx, fx| sieve::release(&tx, account, handle, sender).await?)
    }
    async fn detail_delivery(&self, account: AccountId) -> StoreResult<DetailDelivery> {
        read_tx!(self, |tx| sieve::detail(&tx, account).await?)
    }
    async fn set_detail_delivery(&self, account: AccountId, policy: DetailDelivery) -> StoreResult<()> {
        write_tx!(self, |tx, fx| sieve::set_detail(&tx, account, policy).await?)
    }
}

#[async_trait]
impl crate::OperationsStore for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }
    fn commits(&self) -> u64 {
        self.writes.commits()
    }
    fn writer_stats(&self) -> crate::stats::WriterStats {
        self.writes.snapshot()
    }
    async fn text_backlog(&self) -> StoreResult<u64> {
        // SEARCH reads the stored bytes; there is no separate text index to fall behind.
        Ok(0)
    }
    async fn ping(&self) -> StoreResult<()> {
        read_tx!(self, |tx| {
            tx.query_one("SELECT 1", &[]).await?;
        })
    }
    async fn storage_bytes(&self) -> StoreResult<u64> {
        read_tx!(self, |tx| {
            let row = tx.query_one("SELECT pg_database_size(current_database())", &[]).await?;
            u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)
        })
    }
    async fn totals(&self) -> StoreResult<crate::stats::StoreTotals> {
        let defaults = self.quota_defaults();
        read_tx!(self, |tx| ops::totals(&tx, &defaults).await?)
    }
    async fn cleanup_mailboxes(&self) -> StoreResult<Vec<crate::CleanupMailbox>> {
        read_tx!(self, |tx| ops::cleanup_mailboxes(&tx).await?)
    }
    async fn cleanup_override(&self, account: AccountId) -> StoreResult<crate::CleanupOverride> {
        read_tx!(self, |tx| ops::cleanup_override(&tx, account).await?)
    }
    async fn set_cleanup_override(
        &self,
        account: AccountId,
        limits: crate::CleanupOverride,
    ) -> StoreResult<()> {
        write_tx!(self, |tx, fx| ops::set_cleanup_override(&tx, account, limits).await?)
    }
    async fn is_admin(&self, account: AccountId) -> StoreResult<bool> {
        read_tx!(self, |tx| ops::is_admin(&tx, account).await?)
    }
    async fn admins(&self) -> StoreResult<Vec<AccountId>> {
        read_tx!(self, |tx| ops::admins(&tx).await?)
    }
    async fn set_admin(&self, account: AccountId, admin: bool) -> StoreResult<()> {
        write_tx!(self, |tx, fx| ops::set_admin(&tx, account, admin).await?)
    }
    async fn expunge_saved_before(
        &self,
        mailbox: MailboxId,
        before: i64,
        max: usize,
    ) -> StoreResult<Vec<Uid>> {
        let defaults = self.quota_defaults();
        write_tx!(self, |tx, fx| mail::expunge_saved_before(&tx, fx, mailbox, before, max, &defaults).await?)
    }
    async fn rederive(&self, what: crate::sqlite::Rederivation) -> StoreResult<crate::sqlite::Rederived> {
        // SORT/THREAD facts are derived from the stored bytes when asked; the summary and the
        // search prefilter text kept with each body are what go stale. Page by page: parse off
        // the async threads, then one short write per page.
        let only = match what {
            crate::sqlite::Rederivation::All => None,
            crate::sqlite::Rederivation::Account(account) => Some(account),
        };
        let scheduled = read_tx!(self, |tx| ops::rederive_count(&tx, only).await?)?;
        let (mut after, mut derived) = ((0i64, 0i64), 0u64);
        loop {
            let page = read_tx!(self, |tx| ops::rederive_page(&tx, only, after).await?)?;
            let Some(&(owner, id, _)) = page.last() else { break };
            after = (owner, id);
            let summaries = tokio::task::spawn_blocking(move || {
                page.into_iter()
                    .map(|(owner, id, raw)| {
                        let summary = postfach_message::parse(&raw);
                        Ok(ops::Rederived {
                            owner,
                            id,
                            text: search::prefilter_text(&raw, &summary),
                            hash: content_hash(&raw),
                            summary: crate::sqlite::summary::encode(&summary)?,
                        })
                    })
                    .collect::<StoreResult<Vec<_>>>()
            })
            .await
            .map_err(|e| StoreError::Backend(format!("re-derivation failed: {e}")))??;
            derived += write_tx!(self, |tx, fx| ops::rederive_write(&tx, &summaries).await?)?;
        }
        Ok(crate::sqlite::Rederived { scheduled, derived })
    }
    fn restore_store(&self) -> Option<&dyn crate::RestoreStore> {
        Some(self)
    }
}

#[async_trait]
impl crate::RestoreStore for PgStore {
    async fn dump_mailbox(&self, mailbox: MailboxId) -> StoreResult<crate::MailboxDump> {
        read_tx!(self, |tx| restore::dump_mailbox(&tx, mailbox).await?)
    }
    async fn dump_messages(
        &self,
        mailbox: MailboxId,
        after: u32,
        below: Uid,
        since: ModSeq,
        max_count: usize,
        max_bytes: usize,
    ) -> StoreResult<Vec<crate::MessageDump>> {
        read_tx!(self, |tx| restore::dump_messages(&tx, mailbox, after, below, since, max_count, max_bytes)
            .await?)
    }
    async fn dump_expunged(&self, mailbox: MailboxId, since: ModSeq) -> StoreResult<Vec<(Uid, ModSeq)>> {
        read_tx!(self, |tx| restore::dump_expunged(&tx, mailbox, since).await?)
    }
    async fn dump_private_seen(
        &self,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> StoreResult<Vec<crate::PrivateSeenDump>> {
        read_tx!(self, |tx| restore::dump_private_seen(&tx, mailbox, since).await?)
    }
    async fn dump_mailbox_metadata(&self, mailbox: MailboxId) -> StoreResult<Vec<crate::MetadataDump>> {
        read_tx!(self, |tx| metadata::dump_mailbox(&tx, mailbox).await?)
    }
    async fn dump_account_metadata(&self, account: AccountId) -> StoreResult<Vec<crate::MetadataDump>> {
        read_tx!(self, |tx| metadata::dump_account(&tx, account).await?)
    }
    async fn restore_account(&self, account: &crate::AccountRestore) -> StoreResult<AccountId> {
        write_tx!(self, |tx, fx| restore::restore_account(&tx, account).await?)
    }
    async fn restore_mailbox(
        &self,
        account: AccountId,
        name: &MailboxName,
        mailbox: &crate::MailboxRestore,
    ) -> StoreResult<MailboxId> {
        write_tx!(self, |tx, fx| restore::restore_mailbox(&tx, account, name, mailbox).await?)
    }
    async fn recreate_mailbox(
        &self,
        mailbox: MailboxId,
        uid_validity: crate::NewUidValidity,
    ) -> StoreResult<MailboxId> {
        write_tx!(self, |tx, fx| restore::recreate_mailbox(&tx, fx, mailbox, uid_validity).await?)
    }
    async fn restore_messages(
        &self,
        mailbox: MailboxId,
        messages: Vec<crate::MessageRestore>,
    ) -> StoreResult<Vec<crate::Restored>> {
        let prepared = tokio::task::spawn_blocking(move || restore::prepare(messages))
            .await
            .map_err(|e| StoreError::Backend(format!("message preparation failed: {e}")))??;
        let defaults = self.quota_defaults();
        write_tx!(self, |tx, fx| restore::restore_messages(&tx, fx, mailbox, &prepared, &defaults).await?)
    }
    async fn restore_expunged(
        &self,
        mailbox: MailboxId,
        runs: Vec<crate::ExpungedRun>,
        present: crate::PresentUids,
    ) -> StoreResult<u64> {
        let defaults = self.quota_defaults();
        write_tx!(self, |tx, fx| restore::restore_expunged(&tx, fx, mailbox, &runs, present, &defaults)
            .await?)
    }
    async fn restore_counters(
        &self,
        mailbox: MailboxId,
        uid_next: Uid,
        highest_modseq: ModSeq,
    ) -> StoreResult<()> {
        write_tx!(self, |tx, fx| restore::restore_counters(&tx, fx, mailbox, uid_next, highest_modseq)
            .await?)
    }
    async fn restore_private_seen(
        &self,
        mailbox: MailboxId,
        rows: Vec<(Uid, AccountId, bool, Option<ModSeq>)>,
    ) -> StoreResult<u64> {
        write_tx!(self, |tx, fx| restore::restore_private_seen(&tx, fx, mailbox, &rows).await?)
    }
}

// After the transaction macros, which it uses.
mod queue;
