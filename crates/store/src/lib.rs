//! Postfach's mail store: what is kept, and the promise that an acknowledged write is on disk.
//!
//! # Layout
//! - [`types`]: the domain nouns (ids, flags, mailbox and message metadata, search criteria).
//! - [`restore`]: what export reads and import writes back verbatim ([`RestoreStore`]).
//! - [`queue`]: the outbound queue (vacation replies, redirects, bounces) and [`QueueStore`].
//! - [`metadata`]: RFC 5464 METADATA entries of the server and of mailboxes.
//! - [`notify`]: in-process fan-out of "mailbox changed" signals (IDLE, other sessions).
//! - [`stats`]: numbers for monitoring (a lock-free histogram, the writer's and store's figures).
//! - [`sqlite`]: the embedded default backend (one SQLite database, one writer thread with group
//!   commit, a pool of readers on the blocking thread pool).
//! - `postgres` (cargo feature `postgres`, off by default; the server enables it): the
//!   PostgreSQL backend (tokio-postgres + deadpool-postgres), for installations that outgrow one
//!   SQLite file. See `docs/scale-out.md` for what it covers so far.
//! - `conformance` (cargo feature `conformance`, off by default): the behavioural test suite every
//!   backend runs; enable it from a backend's `[dev-dependencies]`.
//!
//! The traits below are the whole surface the rest of Postfach sees. Nothing backend-specific (SQL,
//! rows, connections) shows above them, so a PostgreSQL backend is another `impl`, not a rewrite.
//! What is derived from a message (summary, search text, PREVIEW, SORT/THREAD keys, EMAILID) is
//! computed by `postfach_message` (`parse`, `text`, `facts`); a backend only stores and queries
//! it, so every backend gives the same answers from the same bytes.
//! The store shape follows Dovecot's split: mailbox *list* operations (names, hierarchy,
//! subscriptions), *mailbox* operations (select, append, expunge, changes), and *message* operations
//! (fetch, flags, copy, move).
//!
//! # Invariants every backend keeps
//! - A method that changes state returns only after the change is durable (fsync'd).
//! - UIDs are strictly ascending per mailbox and never reused, also not across a crash.
//! - UIDVALIDITY changes only when a mailbox is deleted and created again (a new row).
//! - Every change bumps the mailbox's highest modseq; expunges are remembered with their modseq so
//!   that "what changed since X" is exact for any X.

pub mod acl;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod metadata;
pub mod notify;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod queue;
pub mod restore;
pub mod sqlite;
pub mod stats;
pub mod types;

use std::sync::Arc;

use async_trait::async_trait;

pub use acl::{
    AccountKind, AclEntry, Grantee, Identifier, OverQuota, Quota, QuotaLimits, QuotaResource, QuotaWarning,
    Right, Rights, SeenMode, SharedMailbox, TeamMember, Viewer,
};
pub use metadata::{MetadataDepth, MetadataLimits, MetadataPlace, MetadataWrite};
pub use notify::{Listener, MetadataChange, Notifier, Pending};
pub use queue::{
    Attempt, ClaimedMail, Enqueued, Lease, NewOutbound, OutboundKind, QueueEntry, QueueId, QueueStore,
    VacationOnce,
};
pub use restore::{
    AccountRestore, ExpungedRun, MailboxDump, MailboxRestore, MessageDump, MessageRestore, MetadataDump,
    ModSeqRule, NewUidValidity, PresentUids, PrivateSeenDump, Restored,
};
pub use sqlite::{CleanupMailbox, CleanupOverride, SqliteStore, StoreLimits};
pub use types::*;

/// What can go wrong in the store, in terms the session can map to IMAP response codes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such account, mailbox or message.
    #[error("no such object")]
    NotFound,
    /// The mailbox (or account) already exists.
    #[error("already exists")]
    AlreadyExists,
    /// The name is not acceptable (empty, bad hierarchy, reserved).
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// The operation is not allowed on this object (e.g. deleting INBOX, deleting a mailbox that has
    /// children and no messages would be fine but this one is `\Noselect`, ...).
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// The mailbox has children and the operation needs it not to (RFC 9051 §6.3.4).
    #[error("mailbox has children")]
    HasChildren,
    /// A limit was hit (message too big, too many mailboxes, ...).
    #[error("limit: {0}")]
    Limit(String),
    /// The owner's quota (RFC 9208) would be exceeded; nothing was written.
    #[error("over quota ({0:?})")]
    OverQuota(OverQuota),
    /// Something underneath failed (I/O, database). Logged with details; the client sees a
    /// generic line.
    #[error("backend: {0}")]
    Backend(String),
}

impl From<NameError> for StoreError {
    fn from(e: NameError) -> Self {
        StoreError::InvalidName(e.to_string())
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Accounts and their credentials.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account with the given password hash and its default mailboxes (INBOX, Drafts,
    /// Sent, Trash, Junk, Archive, with their RFC 6154 attributes), all subscribed.
    async fn create_account(&self, name: &str, password_hash: &str) -> StoreResult<AccountId>;
    /// Looks an account up by login name (case-insensitive).
    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>>;
    /// Every account, by name.
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;
    /// Replaces the password hash and removes the SCRAM verifier, which would no longer match:
    /// [`set_password`](AccountStore::set_password) without a verifier. Like every password
    /// change it bumps the credentials generation, so sessions opened with the old password end.
    async fn set_password_hash(&self, account: AccountId, password_hash: &str) -> StoreResult<()> {
        self.set_password(account, password_hash, None).await
    }
    /// Deletes the account (user or team) with all its mailboxes and messages, its quota root,
    /// the ACL entries that name it (`name` and `-name`) and its team and group memberships.
    async fn delete_account(&self, account: AccountId) -> StoreResult<()>;

    // --- credentials beside the password (issue 5) ----------------------------------------------

    /// Replaces the password hash and the password's SCRAM verifier in one transaction
    /// (`None` removes the verifier: SCRAM then fails for the account), and bumps the
    /// credentials generation: sessions opened with the old password end. Refused with
    /// [`StoreError::NotAllowed`] for a team, which cannot log in.
    async fn set_password(
        &self,
        account: AccountId,
        password_hash: &str,
        scram: Option<&ScramCredential>,
    ) -> StoreResult<()>;
    /// The SCRAM verifier of the account's password, if one is stored.
    async fn scram_credential(&self, account: AccountId) -> StoreResult<Option<ScramCredential>>;
    /// The account's TOTP settings, confirmed or pending.
    async fn totp(&self, account: AccountId) -> StoreResult<Option<TotpSettings>>;
    /// Stores (replacing) or removes the account's TOTP settings and bumps the credentials
    /// generation, so sessions re-check what opened them.
    async fn set_totp(&self, account: AccountId, totp: Option<&TotpSettings>) -> StoreResult<()>;
    /// Records `step` as the last used TOTP time step if it is later than the stored one, in one
    /// statement; false when it is not (a replayed code) or TOTP is not set up.
    async fn claim_totp_step(&self, account: AccountId, step: u64) -> StoreResult<bool>;
    /// Adds an app password (its digest); [`StoreError::AlreadyExists`] when the account has
    /// one with this label, [`StoreError::NotAllowed`] for a team (it cannot log in).
    async fn add_app_password(
        &self,
        account: AccountId,
        label: &str,
        hash: &str,
    ) -> StoreResult<AppPasswordId>;
    /// The account's app passwords, by label.
    async fn app_passwords(&self, account: AccountId) -> StoreResult<Vec<AppPassword>>;
    /// Deletes the app password with this label ([`StoreError::NotFound`] when there is none)
    /// and bumps the credentials generation, so sessions opened with it end.
    async fn revoke_app_password(&self, account: AccountId, label: &str) -> StoreResult<()>;
    /// Notes a successful login with an app password: when (Unix seconds) and from where.
    async fn app_password_used(&self, id: AppPasswordId, at: i64, address: &str) -> StoreResult<()>;
    /// Whether the app password still exists.
    async fn app_password_exists(&self, id: AppPasswordId) -> StoreResult<bool>;
    /// A counter bumped by every change that must reach live sessions (a password changed, an
    /// app password revoked, TOTP switched). Sessions compare it cheaply and re-check their credential when it moves.
    async fn credentials_generation(&self) -> StoreResult<u64>;
    /// Blocks an address from logging in (replacing an earlier block of it).
    async fn block_address(&self, block: &AddressBlock) -> StoreResult<()>;
    /// The block of one address if it is in force at `now` (Unix seconds).
    async fn address_block(&self, address: &str, now: i64) -> StoreResult<Option<AddressBlock>>;
    /// Blocks in force at `now` (Unix seconds), by address.
    async fn address_blocks(&self, now: i64) -> StoreResult<Vec<AddressBlock>>;
    /// Lifts the block of an address (false when there was none) and forgets expired blocks.
    async fn unblock_address(&self, address: &str, now: i64) -> StoreResult<bool>;
}

/// Mailboxes and messages of accounts.
#[async_trait]
pub trait MailStore: Send + Sync {
    // --- mailbox list -------------------------------------------------------------------------

    /// Every mailbox of the account, sorted by name.
    async fn list_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxInfo>>;
    /// One mailbox by name.
    async fn mailbox_by_name(
        &self,
        account: AccountId,
        name: &MailboxName,
    ) -> StoreResult<Option<MailboxInfo>>;
    /// Creates a mailbox with a fresh UIDVALIDITY. Missing parents are not created here; the
    /// session does that (RFC 9051 §6.3.4 says a server SHOULD create them). The name must pass
    /// [`MailboxName::check_creatable`], else [`StoreError::InvalidName`]. The mailbox inherits
    /// the ACL of its nearest existing superior (RFC 4314 §4), a team's mailbox its members'
    /// entries, and account grantees that can look it up are subscribed to its shown name
    /// ([`ShareStore`]). Past the account's mailbox limit: [`StoreError::Limit`].
    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &MailboxName,
        special_use: Option<SpecialUse>,
    ) -> StoreResult<MailboxId>;
    /// Deletes a mailbox and its messages. Its UIDs and UIDVALIDITY die with it.
    async fn delete_mailbox(&self, account: AccountId, mailbox: MailboxId) -> StoreResult<()>;
    /// Renames a mailbox and every mailbox below it (`from/…` → `to/…`), keeping UIDVALIDITY.
    /// Renaming INBOX moves all its messages into a new mailbox `to` and leaves INBOX empty
    /// (RFC 9051 §6.3.6). `to` must pass [`MailboxName::check_creatable`].
    async fn rename_mailbox(
        &self,
        account: AccountId,
        from: &MailboxName,
        to: &MailboxName,
    ) -> StoreResult<()>;
    /// Sets or clears the subscription of a name. RFC 9051 §6.3.7 allows subscribing to names that
    /// do not exist; the store keeps subscriptions by name.
    async fn set_subscribed(
        &self,
        account: AccountId,
        name: &MailboxName,
        subscribed: bool,
    ) -> StoreResult<()>;
    /// Subscribed names, including ones without a mailbox.
    async fn subscriptions(&self, account: AccountId) -> StoreResult<Vec<String>>;

    // --- mailbox ------------------------------------------------------------------------------

    /// Counters of one mailbox.
    async fn status(&self, mailbox: MailboxId) -> StoreResult<MailboxStatus>;
    /// Opens a mailbox: counters, the UID list, keywords, and (for SELECT) the claimed recent set.
    async fn select(&self, mailbox: MailboxId, recent: ClaimRecent) -> StoreResult<Snapshot>;
    /// A session that has the mailbox selected learned of messages up to (not including)
    /// `below`: returns those no session has claimed yet as `\Recent`, and with
    /// [`ClaimRecent::Claim`] (SELECT) takes them, so that no other session sees them as recent
    /// (RFC 3501 §2.3.2); with [`ClaimRecent::Peek`] (EXAMINE) leaves them.
    async fn claim_recent(&self, mailbox: MailboxId, below: Uid, claim: ClaimRecent) -> StoreResult<UidSet>;
    /// Adds messages to a mailbox in one durable transaction (MULTIAPPEND is all or nothing,
    /// RFC 3502). Each message is parsed once here.
    async fn append(&self, mailbox: MailboxId, messages: Vec<NewMessage>) -> StoreResult<Vec<Appended>>;
    /// [`MailStore::append`] with summaries the caller already has, so that one message
    /// delivered to several mailboxes is parsed once (delivery parses it before running Sieve).
    /// Each summary must be `postfach_message::parse` of its message's `raw`. The default
    /// ignores the summaries and parses again; backends override it.
    async fn append_parsed(
        &self,
        mailbox: MailboxId,
        messages: Vec<(NewMessage, Arc<MessageSummary>)>,
    ) -> StoreResult<Vec<Appended>> {
        self.append(mailbox, messages.into_iter().map(|(m, _)| m).collect()).await
    }
    /// What changed since `since`: new messages with UID ≥ `known_uid_next`, flag changes of
    /// older ones, and expunges.
    async fn changes_since(
        &self,
        mailbox: MailboxId,
        since: ModSeq,
        known_uid_next: Uid,
    ) -> StoreResult<Changes>;
    /// Removes the messages flagged `\Deleted` (only those in `uids` when given, RFC 4315 UID
    /// EXPUNGE). Returns the expunged UIDs, ascending.
    async fn expunge(&self, mailbox: MailboxId, uids: Option<&UidSet>) -> StoreResult<Vec<Uid>>;
    /// Flags the messages of `uids` `\Deleted` and expunges exactly those (RFC 4315 UID
    /// EXPUNGE: other messages flagged `\Deleted` stay), for the admin CLI's `expunge`.
    /// Returns the expunged UIDs, ascending. The default takes two writes; a backend does
    /// both in one transaction, so no message is left flagged but not expunged.
    async fn remove_messages(&self, mailbox: MailboxId, uids: &UidSet) -> StoreResult<Vec<Uid>> {
        let deleted = Flags { system: SystemFlags::DELETED, keywords: Vec::new() };
        self.store_flags(mailbox, uids, FlagOp::Add, &deleted, None).await?;
        self.expunge(mailbox, Some(uids)).await
    }

    // --- messages -----------------------------------------------------------------------------

    /// Metadata of the messages in `uids` that exist, ascending by UID.
    async fn fetch(
        &self,
        mailbox: MailboxId,
        uids: &UidSet,
        want: FetchWant,
    ) -> StoreResult<Vec<MessageMeta>>;
    /// The raw message, byte for byte as appended.
    async fn body(&self, mailbox: MailboxId, uid: Uid) -> StoreResult<Vec<u8>>;
    /// The first `limit` bytes (or all, when shorter) of several messages in one round trip, in
    /// the order asked; messages that no longer exist are left out. FETCH of header sections asks
    /// only for the header's bytes, so a page of headers never reads whole messages.
    async fn bodies(&self, mailbox: MailboxId, wanted: &[(Uid, u32)]) -> StoreResult<Vec<(Uid, Vec<u8>)>> {
        let mut out = Vec::with_capacity(wanted.len());
        for &(uid, limit) in wanted {
            match self.body(mailbox, uid).await {
                Ok(mut raw) => {
                    raw.truncate(limit as usize);
                    out.push((uid, raw));
                }
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
    /// Changes flags of the messages in `uids`, skipping those whose modseq is above
    /// `unchanged_since` (RFC 7162 §3.1.3).
    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &UidSet,
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<ModSeq>,
    ) -> StoreResult<FlagsUpdated>;
    /// Copies messages into another mailbox, keeping flags and internal date. The target may
    /// belong to another account (a team's, a sharer's: the session has checked the rights);
    /// its owner's quota is charged, [`StoreError::OverQuota`] with nothing written when it
    /// would be exceeded.
    async fn copy(&self, from: MailboxId, uids: &UidSet, to: MailboxId) -> StoreResult<Copied>;
    /// Moves messages atomically (RFC 6851): copy + expunge from the source in one transaction.
    /// Within one owner no quota usage changes (it never fails on quota); to another owner the
    /// target's owner is charged and the source's owner gets the space back.
    async fn move_messages(&self, from: MailboxId, uids: &UidSet, to: MailboxId) -> StoreResult<Copied>;
    /// UIDs of the messages matching the criterion, ascending.
    async fn search(&self, mailbox: MailboxId, criterion: &Criterion) -> StoreResult<Vec<Uid>>;

    /// The messages of `uids` that exist, in SORT order (RFC 5256 §3, RFC 5957): by each
    /// criterion in turn, then by UID. Refused with [`StoreError::Limit`] when the sort keys
    /// would take more memory than the store allows for one sort.
    async fn sort(
        &self,
        mailbox: MailboxId,
        uids: &UidSet,
        criteria: &[SortCriterion],
    ) -> StoreResult<Vec<Uid>>;
    /// THREAD input (RFC 5256) for the messages of `uids` that exist, ascending by UID.
    /// Refused with [`StoreError::Limit`] above a message count the store bounds.
    async fn thread_facts(&self, mailbox: MailboxId, uids: &UidSet) -> StoreResult<Vec<ThreadFacts>>;
    /// EMAILID, SAVEDATE and PREVIEW of the messages of `uids` that exist, ascending by UID.
    async fn fetch_extras(&self, mailbox: MailboxId, uids: &UidSet) -> StoreResult<Vec<MessageExtras>>;

    // --- metadata (RFC 5464) ---------------------------------------------------------------

    /// The metadata entries of `place` that `account` reads: shared ones and its own private
    /// ones. For each name of `entries` (lowercase, `/shared…` or `/private…`), the entry
    /// itself and, by `depth`, the entries below it; by name, each once. A mailbox that does
    /// not exist has none.
    async fn metadata(
        &self,
        place: MetadataPlace,
        account: AccountId,
        entries: &[String],
        depth: MetadataDepth,
    ) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// Sets (`Some`) or removes (`None`) entries of `place` in one transaction: private ones
    /// (`/private/…`) as `account`'s own, shared ones for everybody. All or nothing:
    /// [`MetadataWrite::TooMany`] with nothing written when a group of entries would grow past
    /// `limits` ([`metadata::too_many`]). `NotFound` when the mailbox does not exist.
    async fn set_metadata(
        &self,
        place: MetadataPlace,
        account: AccountId,
        entries: &[(String, Option<Vec<u8>>)],
        limits: MetadataLimits,
    ) -> StoreResult<MetadataWrite>;

    // --- URLAUTH (RFC 4467) -----------------------------------------------------------------

    /// `account`'s mailbox access key for `mailbox` (RFC 4467 §6, the INTERNAL mechanism's HMAC
    /// key). With `fresh`, a missing key is stored as `fresh` first (when two sessions race, the
    /// first one's key is kept and returned to both). `NotFound` when the mailbox does not exist.
    async fn urlauth_key(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        fresh: Option<&[u8]>,
    ) -> StoreResult<Option<Vec<u8>>>;
    /// RESETKEY: forgets `account`'s access keys, for `mailbox` or for every mailbox, so every
    /// URL authorised with them stops working.
    async fn reset_urlauth_keys(&self, account: AccountId, mailbox: Option<MailboxId>) -> StoreResult<()>;

    /// The change fan-out this store publishes to after every durable change.
    fn notifier(&self) -> &Notifier;
}

/// A user's Sieve script as listed (RFC 5804 LISTSCRIPTS shape: name and whether it is active).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveScriptInfo {
    /// The script's name, unique per account.
    pub name: String,
    /// Whether this is the account's active script (at most one is).
    pub active: bool,
    /// Size of the script text in bytes.
    pub size: u64,
    /// When it was last uploaded, seconds since the Unix epoch.
    pub updated: i64,
}

/// A stored Sieve script with its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveScript {
    /// The script's name.
    pub name: String,
    /// The script text (UTF-8, checked when it was uploaded).
    pub text: String,
}

/// Where mail to `user+detail@domain` goes when the account has a mailbox named `detail`
/// (RFC 5233 subaddresses). The account owner decides; the default is the inbox, so that a
/// stranger cannot file mail into arbitrary folders by guessing their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetailDelivery {
    /// Deliver to INBOX; the detail is only visible to Sieve.
    #[default]
    Inbox,
    /// Deliver to the mailbox named by the detail when it exists, else to INBOX.
    Mailbox,
}

/// The answer of [`SieveStore::claim_vacation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VacationClaim {
    /// No reply with this handle went to this sender within the period: one is now recorded,
    /// and the caller sends it (or releases the claim if sending fails).
    Claimed,
    /// A reply was already sent within the period (RFC 5230 §4.2): do not send another.
    AlreadyReplied,
}

/// Per-account delivery state: Sieve scripts (one active), the vacation reply history and the
/// subaddress policy. Kept in the store so the server and `postfach deliver` share it.
#[async_trait]
pub trait SieveStore: Send + Sync {
    /// Stores (or replaces) a script. The caller has checked that it compiles.
    async fn put_sieve_script(&self, account: AccountId, name: &str, text: &str) -> StoreResult<()>;
    /// One script's text, `None` when there is no script of that name.
    async fn sieve_script(&self, account: AccountId, name: &str) -> StoreResult<Option<String>>;
    /// Every script of the account, by name.
    async fn sieve_scripts(&self, account: AccountId) -> StoreResult<Vec<SieveScriptInfo>>;
    /// The active script, if any.
    async fn active_sieve_script(&self, account: AccountId) -> StoreResult<Option<SieveScript>>;
    /// Makes `name` the only active script; `None` deactivates all (RFC 5804 SETACTIVE "").
    /// [`StoreError::NotFound`] when there is no script of that name.
    async fn activate_sieve_script(&self, account: AccountId, name: Option<&str>) -> StoreResult<()>;
    /// Deletes a script. Refused with [`StoreError::NotAllowed`] for the active one (RFC 5804
    /// §2.10), [`StoreError::NotFound`] when there is none of that name.
    async fn delete_sieve_script(&self, account: AccountId, name: &str) -> StoreResult<()>;
    /// Renames a script in one step; the active script stays active (RFC 5804 §2.11).
    /// [`StoreError::NotFound`] when there is no script `old`, [`StoreError::AlreadyExists`] when
    /// a script `new` exists (also when `new` is `old`), [`StoreError::InvalidName`] for a `new`
    /// that is no valid script name.
    async fn rename_sieve_script(&self, account: AccountId, old: &str, new: &str) -> StoreResult<()>;
    /// Atomically checks and records a vacation reply to `sender` with `handle` at `now`
    /// (Unix seconds): [`VacationClaim::Claimed`] unless one was recorded within the last
    /// `period_secs` (RFC 5230 §4.2). Entries older than their period are forgotten.
    async fn claim_vacation(
        &self,
        account: AccountId,
        handle: &str,
        sender: &str,
        now: i64,
        period_secs: i64,
    ) -> StoreResult<VacationClaim>;
    /// Forgets a claim whose reply could not be sent, so the next message may try again.
    async fn release_vacation(&self, account: AccountId, handle: &str, sender: &str) -> StoreResult<()>;
    /// Where the account wants mail to `user+detail` addresses.
    async fn detail_delivery(&self, account: AccountId) -> StoreResult<DetailDelivery>;
    /// Changes where mail to `user+detail` addresses goes.
    async fn set_detail_delivery(&self, account: AccountId, policy: DetailDelivery) -> StoreResult<()>;
}

/// Teams, groups, ACLs (RFC 4314) and quotas (RFC 9208).
///
/// Every ACL change writes the "shared with me" index in its own transaction (a backend may
/// serve it from an index on the ACL rows themselves); nothing here is ever rebuilt by a scan.
/// Quota usage moves in the transaction of the write that changes it (APPEND, COPY, MOVE to
/// another owner, delivery, EXPUNGE, DELETE), checked and incremented in one step.
#[async_trait]
pub trait ShareStore: Send + Sync {
    /// Creates a team: an account that cannot log in, with the mailboxes INBOX, Sent, Drafts,
    /// Trash, Archive, and the delivery `address` (an addr-spec, unique among team addresses)
    /// when given. Refused with `AlreadyExists` when an account of that name (or a team with
    /// that address) exists, `InvalidName` for a name that would not read as an account in an
    /// ACL or a shown name (`anyone`, `authenticated`, `$…`, `-…`, a `/`).
    async fn create_team(&self, name: &str, address: Option<&str>) -> StoreResult<AccountId>;

    /// The team whose delivery address is `address` (case-insensitive), for LMTP and
    /// `deliver`; `None` when no team has it. Users are never found here: their mail is
    /// addressed by login name ([`AccountStore::account_by_name`]).
    async fn account_by_address(&self, address: &str) -> StoreResult<Option<Account>>;

    /// A team's delivery address (`None` for a user or a team without one; `NotFound` when
    /// the account does not exist).
    async fn team_address(&self, team: AccountId) -> StoreResult<Option<String>>;

    /// The members of a team with the rights their membership grants, by name. `NotFound`
    /// when there is no such account, `NotAllowed` when it is a user.
    async fn team_members(&self, team: AccountId) -> StoreResult<Vec<TeamMember>>;

    /// Makes `member` a member of `team` with `rights` on every mailbox of the team (and on
    /// mailboxes created later): sets the member's ACL entry on each, and subscribes the member
    /// to each mailbox it can look up (`Shared/<team>/<name>`), all in one transaction. Called
    /// again, changes the rights (replacing the member's entry on each mailbox, and following
    /// its subscriptions only where it gains or loses `l`). `NotFound` when either account is
    /// missing, `NotAllowed` when `team` is a user or `member` a team. Signals
    /// [`Notifier::acl_changed`] for each mailbox.
    async fn set_team_member(&self, team: AccountId, member: AccountId, rights: Rights) -> StoreResult<()>;

    /// Ends a membership: removes the member's entries from every mailbox of the team and its
    /// subscriptions to them, in one transaction. `NotFound` when it was no member.
    async fn remove_team_member(&self, team: AccountId, member: AccountId) -> StoreResult<()>;

    /// Adds (`member_of`) or removes an account to/from the group `group` (`$group` grantees;
    /// the name without `$`, compared case-insensitively). Subscriptions are not followed:
    /// members of a group subscribe themselves. Signals [`Notifier::acl_changed`]`(None)`.
    async fn set_group_member(&self, group: &str, account: AccountId, member_of: bool) -> StoreResult<()>;

    /// The groups an account belongs to, sorted (empty for an unknown account).
    async fn groups_of(&self, account: AccountId) -> StoreResult<Vec<String>>;

    /// The owner of a mailbox (the quota root; whose namespace it is in).
    async fn mailbox_owner(&self, mailbox: MailboxId) -> StoreResult<Account>;

    /// A mailbox's ACL entries (the owner's implicit full rights are not a row), by identifier.
    async fn acl(&self, mailbox: MailboxId) -> StoreResult<Vec<AclEntry>>;

    /// Sets (`Some`) or deletes (`None`, or no rights: an empty entry grants and denies
    /// nothing) the entry of `identifier` on `mailbox`, updating the
    /// "shared with me" index and, for an account grantee that gains or loses `l`, its
    /// subscription of the mailbox's shown name, in the same transaction. An account grantee
    /// must exist (`NotFound` otherwise) and is stored by its canonical name. Signals the
    /// mailbox's watchers and bumps [`Notifier::acl_generation`].
    async fn set_acl(
        &self,
        mailbox: MailboxId,
        identifier: &Identifier,
        rights: Option<Rights>,
    ) -> StoreResult<()>;

    /// The rights `account` has on `mailbox` ([`acl::effective_rights`] over its entries and the
    /// account's groups). `NotFound` when the mailbox or the account does not exist.
    async fn my_rights(&self, mailbox: MailboxId, account: AccountId) -> StoreResult<Rights>;

    /// Every mailbox of another account on which `account` has at least one right, through an
    /// entry naming it, one of its groups, `authenticated` or `anyone`; with the effective rights
    /// (which may lack `l`: the caller shows only those with it), by owner name and mailbox name.
    async fn shared_with(&self, account: AccountId) -> StoreResult<Vec<SharedMailbox>>;

    /// Sets how `\Seen` is kept in a mailbox; a change signals [`Notifier::acl_changed`] for
    /// it, so sessions re-read it. Private rows are kept when switching back to shared.
    async fn set_seen_mode(&self, mailbox: MailboxId, mode: SeenMode) -> StoreResult<()>;

    /// How `\Seen` is kept in a mailbox.
    async fn seen_mode(&self, mailbox: MailboxId) -> StoreResult<SeenMode>;

    /// In a [`SeenMode::Private`] mailbox: the UIDs of existing messages `account` has seen
    /// (the owner's `\Seen` stays the message's own flag; everybody else keeps theirs here).
    async fn private_seen(&self, mailbox: MailboxId, account: AccountId) -> StoreResult<UidSet>;

    /// `account`'s private `\Seen` changes with a modseq above `since`: (uid, seen, modseq).
    async fn private_seen_since(
        &self,
        mailbox: MailboxId,
        account: AccountId,
        since: ModSeq,
    ) -> StoreResult<Vec<(Uid, bool, ModSeq)>>;

    /// Sets or clears `account`'s private `\Seen` on the existing messages of `uids`. The
    /// change takes a new modseq from the mailbox (HIGHESTMODSEQ moves for everybody, so
    /// CONDSTORE stays monotonic) and signals the mailbox's watchers. Returns the messages
    /// whose state changed with the new modseq (empty, and no modseq taken, when none did).
    async fn store_private_seen(
        &self,
        mailbox: MailboxId,
        account: AccountId,
        uids: &UidSet,
        seen: bool,
    ) -> StoreResult<Vec<(Uid, ModSeq)>>;

    /// Usage and limits of an account's (or team's) quota root; `NotFound` when the account
    /// does not exist.
    async fn quota(&self, account: AccountId) -> StoreResult<Quota>;

    /// Sets the root's own limits (`None` fields: back to the default). Takes effect for the
    /// next write; usage above a lowered limit stays until it is expunged.
    async fn set_quota(&self, account: AccountId, limits: QuotaLimits) -> StoreResult<()>;

    /// Threshold crossings not yet turned into warning messages, oldest first. Kept for the
    /// STORAGE and MESSAGE resources (the mailbox count is refused, not warned about); a write
    /// that jumps over several thresholds records the highest only.
    async fn pending_quota_warnings(&self) -> StoreResult<Vec<QuotaWarning>>;

    /// Delivers `message` into the INBOX of the warning's root and marks the warning done, in one
    /// transaction. Never refused on quota (it must arrive when the mailbox is full); its size
    /// counts in the usage like any message, but it records no threshold crossing of its own, so
    /// a warning never sets off the next one.
    /// `NotFound` for an unknown warning; one delivered already is not delivered again.
    async fn deliver_quota_warning(&self, warning: i64, message: NewMessage) -> StoreResult<()>;
}

/// Export and exact restore of accounts (issue 14): read a mailbox with everything a client can
/// see, and write it back with the same UIDVALIDITY, UIDs, MODSEQs, flags and dates.
///
/// The writes keep the store's invariants: UIDs strictly ascending and never reused (a given UID
/// below UIDNEXT is refused unless the mailbox holds the very same message under it), UIDNEXT
/// and HIGHESTMODSEQ never lowered, a UIDVALIDITY changed only by making a new mailbox row
/// ([`RestoreStore::recreate_mailbox`]), expunges remembered with their MODSEQ. Each call is
/// one writer job; callers send bounded batches. Restored messages are counted in their
/// owner's quota and never refused on it (a restore must be complete; the caller reports an
/// account left above its limits).
#[async_trait]
pub trait RestoreStore: Send + Sync {
    // --- reading (export) -------------------------------------------------------------------

    /// Counters, attributes and seen mode of a mailbox.
    async fn dump_mailbox(&self, mailbox: MailboxId) -> StoreResult<MailboxDump>;
    /// Messages with a UID above `after` and below `below` whose MODSEQ is above `since`,
    /// ascending by UID, with their bytes: at most `max_count`, and no more once `max_bytes`
    /// are reached (at least one message when there is one).
    async fn dump_messages(
        &self,
        mailbox: MailboxId,
        after: u32,
        below: Uid,
        since: ModSeq,
        max_count: usize,
        max_bytes: usize,
    ) -> StoreResult<Vec<MessageDump>>;
    /// UIDs expunged with a MODSEQ above `since`, ascending, with that MODSEQ.
    async fn dump_expunged(&self, mailbox: MailboxId, since: ModSeq) -> StoreResult<Vec<(Uid, ModSeq)>>;
    /// Per-account `\Seen` rows with a MODSEQ above `since`, by UID then account.
    async fn dump_private_seen(&self, mailbox: MailboxId, since: ModSeq)
    -> StoreResult<Vec<PrivateSeenDump>>;
    /// A mailbox's METADATA entries (RFC 5464): shared ones and every account's private ones,
    /// by account (shared first) then name. `NotFound` when the mailbox does not exist. (Import
    /// writes them back with [`MailStore::set_metadata`].)
    async fn dump_mailbox_metadata(&self, mailbox: MailboxId) -> StoreResult<Vec<MetadataDump>>;
    /// An account's private METADATA server entries, by name (`account` is `None` in each).
    async fn dump_account_metadata(&self, account: AccountId) -> StoreResult<Vec<MetadataDump>>;

    // --- writing (import) -------------------------------------------------------------------

    /// Makes an account (user or team) without any mailbox and with no usable password (a
    /// user's is set afterwards); `AlreadyExists` when the name is taken.
    async fn restore_account(&self, account: &AccountRestore) -> StoreResult<AccountId>;
    /// Makes a mailbox with the given identity: no ACL is inherited and nobody is subscribed
    /// (the caller restores both). Never refused on the mailbox limit. `AlreadyExists` when the
    /// name is taken.
    async fn restore_mailbox(
        &self,
        account: AccountId,
        name: &MailboxName,
        mailbox: &MailboxRestore,
    ) -> StoreResult<MailboxId>;
    /// Replaces a mailbox row by a new one of the same name, attributes, ACL and seen mode,
    /// holding the same messages renumbered `1..=n` in UID order (flags, dates, MODSEQs and
    /// per-account `\Seen` kept), under a new UIDVALIDITY. Sessions that have the old row
    /// selected find it gone, as after a DELETE. Returns the new mailbox.
    async fn recreate_mailbox(
        &self,
        mailbox: MailboxId,
        uid_validity: NewUidValidity,
    ) -> StoreResult<MailboxId>;
    /// Stores messages with their UIDs (or the next free ones), in one transaction: all or
    /// nothing. A given UID below UIDNEXT that does not hold the same bytes is refused with
    /// [`StoreError::NotAllowed`]. Answers one [`Restored`] per message, in order.
    async fn restore_messages(
        &self,
        mailbox: MailboxId,
        messages: Vec<MessageRestore>,
    ) -> StoreResult<Vec<Restored>>;
    /// Records runs of expunged UIDs (at most [`restore::MAX_EXPUNGED_PER_CALL`] UIDs in all);
    /// UIDs recorded already keep their record. Present messages go or stay by `present`.
    /// UIDNEXT is raised above the last UID. Returns how many UIDs were recorded.
    async fn restore_expunged(
        &self,
        mailbox: MailboxId,
        runs: Vec<ExpungedRun>,
        present: PresentUids,
    ) -> StoreResult<u64>;
    /// Raises UIDNEXT and HIGHESTMODSEQ to at least these values (never lowers them).
    async fn restore_counters(
        &self,
        mailbox: MailboxId,
        uid_next: Uid,
        highest_modseq: ModSeq,
    ) -> StoreResult<()>;
    /// Writes per-account `\Seen` rows of existing messages (rows of missing messages are
    /// skipped), each with its MODSEQ (`None`: a new one). Returns how many were written.
    async fn restore_private_seen(
        &self,
        mailbox: MailboxId,
        rows: Vec<(Uid, AccountId, bool, Option<ModSeq>)>,
    ) -> StoreResult<u64>;
}

/// What the server's operations need beside the protocol traits: health, totals and write
/// statistics for the metrics, the Trash/Junk clean-up, and re-derivation for `postfach index
/// rebuild`. Each backend answers with what it has (PostgreSQL has no writer thread, so its
/// [`OperationsStore::writer_stats`] are empty).
#[async_trait]
pub trait OperationsStore: Send + Sync {
    /// `"sqlite"` or `"postgres"`, for logs, `postfach status` and the metrics.
    fn backend(&self) -> &'static str;
    /// Write transactions committed since the store was opened (this process's).
    fn commits(&self) -> u64;
    /// Commit latency and group sizes of this process's writes.
    fn writer_stats(&self) -> stats::WriterStats;
    /// Messages whose full-text entry is not written yet (0 where the text is indexed in the
    /// write itself).
    async fn text_backlog(&self) -> StoreResult<u64>;
    /// Answers a trivial read: the health check (`/health`).
    async fn ping(&self) -> StoreResult<()>;
    /// Bytes the store takes on disk (files, or the database's size).
    async fn storage_bytes(&self) -> StoreResult<u64>;
    /// Accounts, messages and bytes over the whole store and how many accounts are near or at
    /// their quota.
    async fn totals(&self) -> StoreResult<stats::StoreTotals>;
    /// Every `\Trash` and `\Junk` mailbox of users and teams, with its owner's own limit.
    async fn cleanup_mailboxes(&self) -> StoreResult<Vec<CleanupMailbox>>;
    /// The account's own clean-up limits.
    async fn cleanup_override(&self, account: AccountId) -> StoreResult<CleanupOverride>;
    /// Sets the account's own clean-up limits (`None`: the installation's default).
    async fn set_cleanup_override(&self, account: AccountId, limits: CleanupOverride) -> StoreResult<()>;
    /// Whether the account administers the web pages (`postfach user set NAME --admin true`).
    async fn is_admin(&self, account: AccountId) -> StoreResult<bool>;
    /// Every account with the web admin flag.
    async fn admins(&self) -> StoreResult<Vec<AccountId>>;
    /// Grants or takes the web admin flag; `NotFound` for an unknown account. The flag goes
    /// with the account when it is deleted.
    async fn set_admin(&self, account: AccountId, admin: bool) -> StoreResult<()>;
    /// Expunges up to `max` messages of `mailbox` saved (RFC 8514) before `before` (Unix
    /// seconds), as EXPUNGE does; call again while it returns `max` UIDs.
    async fn expunge_saved_before(
        &self,
        mailbox: MailboxId,
        before: i64,
        max: usize,
    ) -> StoreResult<Vec<Uid>>;
    /// Derives the stored facts of messages again from their bytes (`postfach index rebuild`).
    async fn rederive(&self, what: sqlite::Rederivation) -> StoreResult<sqlite::Rederived>;
    /// Export and exact restore, where the backend has them.
    fn restore_store(&self) -> Option<&dyn RestoreStore>;
    /// The SQLite store itself, for what only it does (online backup of its files).
    fn sqlite(&self) -> Option<&SqliteStore> {
        None
    }
}

/// Every trait of a complete backend: what the server opens from its `[store]` section and
/// hands around as `Arc<dyn Store>` (upcast to `Arc<dyn MailStore>` and the others where a
/// part needs only one).
pub trait Store: AccountStore + MailStore + ShareStore + SieveStore + OperationsStore + QueueStore {}

impl<T: AccountStore + MailStore + ShareStore + SieveStore + OperationsStore + QueueStore> Store for T {}
