//! The backend conformance suite: one set of behavioural checks every [`MailStore`],
//! [`AccountStore`] and [`ShareStore`] implementation must pass (SQLite today, PostgreSQL
//! later).
//!
//! Each check is a `pub async fn(&Stores) -> Result<(), Failure>` that creates its own account
//! (named `conf-<check>`), so checks can share one store or each get a fresh one. A backend's
//! test file calls them one by one (one `#[test]` each, so a failure names the check) or all at
//! once through [`run_all`]. [`uids_survive_reopen`] also needs to "restart" the backend and
//! takes an opener instead.
//!
//! This is test code in the library so that other crates' tests can run it, behind the cargo
//! feature `conformance` (off by default, so the server binary does not carry it; enable it from
//! `[dev-dependencies]`). It never panics: a failed check returns a [`Failure`] naming the file
//! and line.

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use crate::acl::{
    AccountKind, AclEntry, Identifier, OverQuota, QuotaLimits, QuotaResource, Rights, SeenMode, TeamMember,
};
use crate::metadata::{MetadataDepth, MetadataLimits, MetadataPlace, MetadataWrite};
use crate::queue::{
    Attempt, Enqueued, Lease, MAX_RECIPIENTS, NewOutbound, OutboundKind, QueueId, QueueStore, VacationOnce,
};
use crate::types::{
    AccountId, ClaimRecent, Criterion, FetchWant, FlagOp, Flags, InternalDate, MailboxId, MailboxName,
    ModSeq, NewMessage, SpecialUse, SystemFlags, Uid, UidSet,
};
use crate::{AccountStore, MailStore, ShareStore, StoreError, StoreResult};

/// The faces of the backend under test (usually the same object three times).
#[derive(Clone)]
pub struct Stores {
    /// Mailboxes and messages.
    pub mail: Arc<dyn MailStore>,
    /// Accounts.
    pub accounts: Arc<dyn AccountStore>,
    /// Teams, ACLs, per-user `\Seen`, quotas.
    pub share: Arc<dyn ShareStore>,
    /// The outbound queue.
    pub queue: Arc<dyn QueueStore>,
}

/// A failed check: where it failed and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            return Err(Failure(format!("{}:{}: check failed: {}", file!(), line!(), stringify!($cond))));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Failure(format!("{}:{}: {}", file!(), line!(), format!($($fmt)+))));
        }
    };
}

macro_rules! check_eq {
    ($left:expr, $right:expr) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(Failure(format!(
                "{}:{}: {} == {}\n  left: {:?}\n right: {:?}",
                file!(),
                line!(),
                stringify!($left),
                stringify!($right),
                left,
                right
            )));
        }
    }};
}

/// Turns a store result into a check result, naming the caller's line.
trait Must<T> {
    /// The value, or a [`Failure`] saying which call failed and how.
    fn must(self) -> Result<T, Failure>;
}

impl<T> Must<T> for StoreResult<T> {
    #[track_caller]
    fn must(self) -> Result<T, Failure> {
        let at = Location::caller();
        self.map_err(|e| Failure(format!("{}:{}: store call failed: {e:?}", at.file(), at.line())))
    }
}

/// Checks that a store call failed in the expected way.
#[track_caller]
fn must_fail<T: std::fmt::Debug>(
    r: StoreResult<T>,
    expected: fn(&StoreError) -> bool,
) -> Result<(), Failure> {
    let at = Location::caller();
    match r {
        Err(e) if expected(&e) => Ok(()),
        other => {
            Err(Failure(format!("{}:{}: expected a specific error, got {other:?}", at.file(), at.line())))
        }
    }
}

fn not_found(e: &StoreError) -> bool {
    matches!(e, StoreError::NotFound)
}
fn already_exists(e: &StoreError) -> bool {
    matches!(e, StoreError::AlreadyExists)
}
fn invalid_name(e: &StoreError) -> bool {
    matches!(e, StoreError::InvalidName(_))
}
fn any_error(_: &StoreError) -> bool {
    true
}
fn not_allowed(e: &StoreError) -> bool {
    matches!(e, StoreError::NotAllowed(_))
}

/// Checks that a store call was refused on quota, for this resource.
#[track_caller]
fn must_be_over_quota<T: std::fmt::Debug>(
    r: StoreResult<T>,
    resource: QuotaResource,
    alone: bool,
) -> Result<(), Failure> {
    let at = Location::caller();
    match r {
        Err(StoreError::OverQuota(q)) if q == OverQuota { resource, alone } => Ok(()),
        other => Err(Failure(format!(
            "{}:{}: expected OverQuota({resource:?}, alone: {alone}), got {other:?}",
            at.file(),
            at.line()
        ))),
    }
}

/// Calls `$m!(check, check, ...)` with every check `run_all` runs (all but
/// `uids_survive_reopen`, which needs a way to reopen the store): the one list a backend's test
/// file and [`run_all`] share, so a new check is never left out of one of them.
#[macro_export]
macro_rules! for_each_conformance_check {
    ($m:ident) => {
        $m!(
            accounts_and_defaults,
            uids_ascending_and_counters,
            uid_validity_changes_on_recreate,
            mailbox_list_rules,
            rename_with_children,
            rename_inbox,
            flags_keywords_and_counters,
            unchanged_since,
            changes_since,
            copy_and_move,
            recent_claim,
            search_criteria,
            notifier_fires_after_writes,
            notify_listeners_hear_lists_and_metadata,
            concurrent_appends_get_distinct_uids,
            multiappend_is_atomic,
            fetch_and_body,
            expunge_subsets,
            delete_account_removes_everything,
            acl_negative_rights,
            acl_group_grants,
            acl_anyone_and_authenticated,
            acl_inherited_on_create,
            acl_changes_signal_sessions,
            team_membership_grants_and_subscribes,
            shared_with_follows_acl_changes,
            rename_moves_grantee_subscriptions,
            account_deletion_forgets_its_entries,
            quota_concurrent_appends_fill_exactly,
            quota_move_within_owner_never_fails,
            quota_copy_to_full_owner_writes_nothing,
            quota_expunge_and_delete_free_usage,
            quota_warnings_once_per_crossing,
            private_seen_per_viewer,
            metadata_entries,
            metadata_limits,
            metadata_follows_mailboxes_and_accounts,
            urlauth_keys,
            queue_enqueue_claim_finish,
            queue_leases_and_concurrent_claims,
        );
    };
}

/// Runs every check except [`uids_survive_reopen`] on one store and reports all failures.
pub async fn run_all(s: Stores) -> Result<(), Failure> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($check:ident),* $(,)?) => {
            $(
                if let Err(f) = $check(&s).await {
                    failures.push(format!("{}: {f}", stringify!($check)));
                }
            )*
        };
    }
    for_each_conformance_check!(run);
    if failures.is_empty() { Ok(()) } else { Err(Failure(failures.join("\n"))) }
}

// --- fixtures ---------------------------------------------------------------------------------

/// A fresh account for one check (an old one of the same name is deleted first) and its INBOX.
async fn account(s: &Stores, name: &str) -> Result<(AccountId, MailboxId), Failure> {
    if let Some(old) = s.accounts.account_by_name(name).await.must()? {
        s.accounts.delete_account(old.id).await.must()?;
    }
    let id = s.accounts.create_account(name, "$argon2id$dummy").await.must()?;
    let inbox = mailbox(s, id, "INBOX").await?;
    Ok((id, inbox))
}

async fn mailbox(s: &Stores, account: AccountId, name: &str) -> Result<MailboxId, Failure> {
    match s.mail.mailbox_by_name(account, &self::name(name)?).await.must()? {
        Some(info) => Ok(info.id),
        None => Err(Failure(format!("mailbox {name:?} is missing"))),
    }
}

/// A mailbox name the check spells out (and knows to be valid).
#[track_caller]
fn name(name: &str) -> Result<MailboxName, Failure> {
    let at = Location::caller();
    MailboxName::new(name)
        .map_err(|e| Failure(format!("{}:{}: bad name {name:?}: {e}", at.file(), at.line())))
}

/// A small RFC 5322 message.
fn raw(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Conformance <conf@example.org>\r\nTo: you@example.org\r\nSubject: {subject}\r\n\
         Date: Mon, 1 Jan 2024 12:00:00 +0000\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn new_message(raw: Vec<u8>, flags: Flags, internal_date: Option<InternalDate>) -> NewMessage {
    NewMessage { raw: raw.into(), flags, internal_date }
}

fn plain(subject: &str) -> NewMessage {
    new_message(raw(subject, "hello"), Flags::default(), None)
}

fn flags(system: SystemFlags, keywords: &[&str]) -> Flags {
    Flags { system, keywords: keywords.iter().map(|k| (*k).to_owned()).collect() }
}

fn set(ranges: &[std::ops::RangeInclusive<u32>]) -> UidSet {
    UidSet::from_ranges(ranges.iter().cloned())
}

fn all() -> UidSet {
    UidSet::from_ranges([1..=u32::MAX])
}

/// A UID a check spells out. Checks never write 0; if one did, it would read as `Uid::MAX`,
/// which no check expects, so the check fails instead of the suite panicking.
fn uid(n: u32) -> Uid {
    Uid::new(n).unwrap_or(Uid::MAX)
}

fn uids(v: &[u32]) -> Vec<Uid> {
    v.iter().copied().map(uid).collect()
}

/// Appends messages one call at a time and returns their UIDs.
async fn append_each(s: &Stores, mailbox: MailboxId, messages: Vec<NewMessage>) -> Result<Vec<Uid>, Failure> {
    let mut out = Vec::new();
    for m in messages {
        let appended = s.mail.append(mailbox, vec![m]).await.must()?;
        check_eq!(appended.len(), 1);
        out.extend(appended.iter().map(|a| a.uid));
    }
    Ok(out)
}

/// Days since the Unix epoch of a proleptic Gregorian date (H. Hinnant's days_from_civil).
fn days(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// --- checks -----------------------------------------------------------------------------------

/// Accounts: unique case-insensitive names, lookups, password changes, the default mailboxes
/// with their RFC 6154 attributes, all subscribed.
pub async fn accounts_and_defaults(s: &Stores) -> Result<(), Failure> {
    let (id, _) = account(s, "Conf-Accounts").await?;
    must_fail(s.accounts.create_account("conf-ACCOUNTS", "x").await, already_exists)?;
    must_fail(s.accounts.create_account("", "x").await, invalid_name)?;

    let found = s.accounts.account_by_name("CONF-accounts").await.must()?;
    let found = found.ok_or_else(|| Failure("account not found case-insensitively".into()))?;
    check_eq!(found.id, id);
    check_eq!(found.name, "Conf-Accounts");
    check_eq!(found.password_hash, "$argon2id$dummy");
    check!(s.accounts.account_by_name("conf-nobody").await.must()?.is_none());

    let generation = s.accounts.credentials_generation().await.must()?;
    s.accounts.set_password_hash(id, "$argon2id$new").await.must()?;
    let found = s.accounts.account_by_name("conf-accounts").await.must()?;
    check_eq!(found.map(|a| a.password_hash), Some("$argon2id$new".to_owned()));
    // A password change reaches live sessions, whichever method made it.
    check!(s.accounts.credentials_generation().await.must()? > generation);
    check!(s.accounts.scram_credential(id).await.must()?.is_none());
    must_fail(s.accounts.set_password_hash(AccountId(i64::MAX), "x").await, not_found)?;
    check!(s.accounts.list_accounts().await.must()?.iter().any(|a| a.id == id));

    let list = s.mail.list_mailboxes(id).await.must()?;
    let summary: Vec<(&str, Option<SpecialUse>, bool)> =
        list.iter().map(|m| (m.name.as_str(), m.special_use, m.subscribed)).collect();
    check_eq!(
        summary,
        vec![
            ("Archive", Some(SpecialUse::Archive), true),
            ("Drafts", Some(SpecialUse::Drafts), true),
            ("INBOX", None, true),
            ("Junk", Some(SpecialUse::Junk), true),
            ("Sent", Some(SpecialUse::Sent), true),
            ("Trash", Some(SpecialUse::Trash), true),
        ]
    );
    check_eq!(
        s.mail.subscriptions(id).await.must()?,
        vec!["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    );
    // Every mailbox got its own UIDVALIDITY.
    let mut validities = Vec::new();
    for m in &list {
        validities.push(s.mail.status(m.id).await.must()?.uid_validity.0);
    }
    validities.sort_unstable();
    validities.dedup();
    check_eq!(validities.len(), list.len());
    Ok(())
}

/// UIDs ascend from 1, one per message, and the counters follow the appends.
pub async fn uids_ascending_and_counters(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-uids").await?;
    let before = s.mail.status(inbox).await.must()?;
    check_eq!(before.uid_next, uid(1));
    check_eq!(before.messages, 0);
    check!(before.uid_validity.0 != 0);

    let first = s.mail.append(inbox, vec![plain("one")]).await.must()?;
    let more = s
        .mail
        .append(
            inbox,
            vec![
                new_message(raw("two", "x"), flags(SystemFlags::SEEN, &[]), None),
                new_message(raw("three", "yy"), flags(SystemFlags::DELETED, &[]), None),
            ],
        )
        .await
        .must()?;
    let got: Vec<Uid> = first.iter().chain(&more).map(|a| a.uid).collect();
    check_eq!(got, uids(&[1, 2, 3]));
    check!(first.iter().chain(&more).all(|a| a.uid_validity == before.uid_validity));
    check!(first[0].modseq > before.highest_modseq);
    check!(more[0].modseq > first[0].modseq);

    let st = s.mail.status(inbox).await.must()?;
    check_eq!(st.uid_next, uid(4));
    check_eq!(st.messages, 3);
    check_eq!(st.unseen, 2);
    check_eq!(st.deleted, 1);
    check_eq!(st.recent, 3);
    let size: usize = [raw("one", "hello"), raw("two", "x"), raw("three", "yy")].iter().map(Vec::len).sum();
    check_eq!(st.size, size as u64);
    check_eq!(st.highest_modseq, more[1].modseq);
    check!(s.mail.append(inbox, Vec::new()).await.must()?.is_empty());
    check_eq!(s.mail.status(inbox).await.must()?.highest_modseq, st.highest_modseq);
    Ok(())
}

/// UIDs are never reused, also not after expunging the highest ones and restarting the
/// backend; UIDVALIDITY survives the restart. `open` opens the same backend data each time.
pub async fn uids_survive_reopen<F, Fut>(open: F) -> Result<(), Failure>
where
    F: Fn() -> Fut,
    Fut: Future<Output = StoreResult<Stores>>,
{
    let s = open().await.must()?;
    let (_, inbox) = account(&s, "conf-reopen").await?;
    append_each(&s, inbox, vec![plain("a"), plain("b"), plain("c")]).await?;
    s.mail
        .store_flags(inbox, &set(&[2..=3]), FlagOp::Add, &flags(SystemFlags::DELETED, &[]), None)
        .await
        .must()?;
    check_eq!(s.mail.expunge(inbox, None).await.must()?, uids(&[2, 3]));
    let validity = s.mail.status(inbox).await.must()?.uid_validity;
    drop(s);

    let s = open().await.must()?;
    let account = s.accounts.account_by_name("conf-reopen").await.must()?;
    let account = account.ok_or_else(|| Failure("account lost across reopen".into()))?;
    let inbox2 = mailbox(&s, account.id, "INBOX").await?;
    check_eq!(inbox2, inbox);
    let st = s.mail.status(inbox).await.must()?;
    check_eq!(st.uid_validity, validity);
    check_eq!(st.uid_next, uid(4));
    check_eq!(append_each(&s, inbox, vec![plain("d")]).await?, uids(&[4]));
    Ok(())
}

/// A mailbox deleted and created again gets a new id and a new UIDVALIDITY.
pub async fn uid_validity_changes_on_recreate(s: &Stores) -> Result<(), Failure> {
    let (id, _) = account(s, "conf-recreate").await?;
    let first = s.mail.create_mailbox(id, &name("Recreated")?, None).await.must()?;
    let v1 = s.mail.status(first).await.must()?.uid_validity;
    append_each(s, first, vec![plain("x")]).await?;
    s.mail.delete_mailbox(id, first).await.must()?;
    check!(s.mail.mailbox_by_name(id, &name("Recreated")?).await.must()?.is_none());
    must_fail(s.mail.status(first).await, not_found)?;

    let second = s.mail.create_mailbox(id, &name("Recreated")?, None).await.must()?;
    check!(second != first);
    let st = s.mail.status(second).await.must()?;
    check!(st.uid_validity != v1, "UIDVALIDITY {:?} reused", v1);
    check_eq!(st.messages, 0);
    Ok(())
}

/// Mailbox list rules: duplicates, bad names, INBOX, subscriptions by name.
pub async fn mailbox_list_rules(s: &Stores) -> Result<(), Failure> {
    let (id, inbox) = account(s, "conf-list").await?;
    let projects = s.mail.create_mailbox(id, &name("Projects")?, None).await.must()?;
    must_fail(s.mail.create_mailbox(id, &name("Projects")?, None).await, already_exists)?;
    must_fail(s.mail.create_mailbox(id, &name("inbox")?, None).await, already_exists)?;
    must_fail(s.mail.create_mailbox(id, &name("INBOX")?, None).await, already_exists)?;
    // Malformed names ("", "a//b", control characters, ...) cannot be built at all
    // (`MailboxName::new`); a well-formed name with a list wildcard must not be made.
    for bad in ["a*", "b%", "c/*"] {
        must_fail(s.mail.create_mailbox(id, &name(bad)?, None).await, invalid_name)?;
    }
    must_fail(s.mail.create_mailbox(AccountId(i64::MAX), &name("X")?, None).await, not_found)?;
    must_fail(s.mail.delete_mailbox(id, inbox).await, |e| matches!(e, StoreError::NotAllowed(_)))?;

    let flagged = s.mail.create_mailbox(id, &name("Starred")?, Some(SpecialUse::Flagged)).await.must()?;
    let info = s.mail.mailbox_by_name(id, &name("Starred")?).await.must()?;
    check_eq!(
        info.as_ref().map(|i| (i.id, i.special_use, i.subscribed)),
        Some((flagged, Some(SpecialUse::Flagged), false))
    );

    s.mail.set_subscribed(id, &name("Projects")?, true).await.must()?;
    s.mail.set_subscribed(id, &name("Projects")?, true).await.must()?;
    s.mail.set_subscribed(id, &name("Ghost/Town")?, true).await.must()?;
    check!(s.mail.mailbox_by_name(id, &name("Projects")?).await.must()?.is_some_and(|i| i.subscribed));
    let subs = s.mail.subscriptions(id).await.must()?;
    check!(subs.iter().any(|n| n == "Ghost/Town"));

    // Another account cannot delete it.
    let (other, _) = account(s, "conf-list-other").await?;
    must_fail(s.mail.delete_mailbox(other, projects).await, not_found)?;

    s.mail.delete_mailbox(id, projects).await.must()?;
    must_fail(s.mail.delete_mailbox(id, projects).await, not_found)?;
    // RFC 9051 §6.3.7: the subscription outlives the mailbox.
    check!(s.mail.subscriptions(id).await.must()?.iter().any(|n| n == "Projects"));
    check!(s.mail.list_mailboxes(id).await.must()?.iter().all(|m| m.name != "Projects"));

    s.mail.set_subscribed(id, &name("Ghost/Town")?, false).await.must()?;
    s.mail.set_subscribed(id, &name("Ghost/Town")?, false).await.must()?;
    check!(s.mail.subscriptions(id).await.must()?.iter().all(|n| n != "Ghost/Town"));
    Ok(())
}

/// RENAME moves the subtree (not name-prefix siblings), keeps ids and UIDVALIDITY, carries
/// subscriptions along, and refuses existing targets and missing sources.
pub async fn rename_with_children(s: &Stores) -> Result<(), Failure> {
    let (id, _) = account(s, "conf-rename").await?;
    let a = s.mail.create_mailbox(id, &name("a")?, None).await.must()?;
    let ab = s.mail.create_mailbox(id, &name("a/b")?, None).await.must()?;
    s.mail.create_mailbox(id, &name("a/b/c")?, None).await.must()?;
    let sibling = s.mail.create_mailbox(id, &name("ab")?, None).await.must()?;
    s.mail.set_subscribed(id, &name("a/b")?, true).await.must()?;
    s.mail.set_subscribed(id, &name("ab")?, true).await.must()?;
    append_each(s, ab, vec![plain("kept")]).await?;
    let validity = s.mail.status(ab).await.must()?.uid_validity;

    s.mail.rename_mailbox(id, &name("a")?, &name("x")?).await.must()?;
    let names: Vec<String> = s
        .mail
        .list_mailboxes(id)
        .await
        .must()?
        .into_iter()
        .map(|m| m.name)
        .filter(|n| n.starts_with('a') || n.starts_with('x'))
        .collect();
    check_eq!(names, vec!["ab", "x", "x/b", "x/b/c"]);
    check_eq!(mailbox(s, id, "x").await?, a);
    check_eq!(mailbox(s, id, "x/b").await?, ab);
    check_eq!(mailbox(s, id, "ab").await?, sibling);
    let st = s.mail.status(ab).await.must()?;
    check_eq!(st.uid_validity, validity);
    check_eq!(st.messages, 1);
    let subs = s.mail.subscriptions(id).await.must()?;
    check!(subs.iter().any(|n| n == "x/b") && subs.iter().all(|n| n != "a/b"), "{subs:?}");
    check!(subs.iter().any(|n| n == "ab"));

    must_fail(s.mail.rename_mailbox(id, &name("nope")?, &name("y")?).await, not_found)?;
    must_fail(s.mail.rename_mailbox(id, &name("x")?, &name("ab")?).await, already_exists)?;
    must_fail(s.mail.rename_mailbox(id, &name("x/b")?, &name("x")?).await, already_exists)?;
    must_fail(s.mail.rename_mailbox(id, &name("ab")?, &name("INBOX")?).await, already_exists)?;
    must_fail(s.mail.rename_mailbox(id, &name("ab")?, &name("a%b")?).await, invalid_name)?;
    must_fail(s.mail.rename_mailbox(id, &name("x")?, &name("x/inside")?).await, any_error)?;
    // The renamed subtree's names must still be names: "x/b/c" would outgrow the limit.
    let long = name(&"y".repeat(MailboxName::MAX_BYTES - 2))?;
    must_fail(s.mail.rename_mailbox(id, &name("x")?, &long).await, invalid_name)?;

    // Renaming onto an ancestor name: "p/q" → "p" while "p" does not exist, with "p/q/q"
    // becoming "p/q" (the old name of the mailbox being renamed).
    let pq = s.mail.create_mailbox(id, &name("p/q")?, None).await.must()?;
    let pqq = s.mail.create_mailbox(id, &name("p/q/q")?, None).await.must()?;
    s.mail.rename_mailbox(id, &name("p/q")?, &name("p")?).await.must()?;
    check_eq!(mailbox(s, id, "p").await?, pq);
    check_eq!(mailbox(s, id, "p/q").await?, pqq);
    Ok(())
}

/// RFC 9051 §6.3.6: renaming INBOX moves its messages to a new mailbox and leaves INBOX empty
/// (same UIDVALIDITY, UIDNEXT not reset); children of INBOX stay.
pub async fn rename_inbox(s: &Stores) -> Result<(), Failure> {
    let (id, inbox) = account(s, "conf-rename-inbox").await?;
    let date = InternalDate { unix: 1_700_000_000, offset_minutes: 60 };
    let raws = [raw("first", "1"), raw("second", "2")];
    append_each(
        s,
        inbox,
        vec![
            new_message(raws[0].clone(), Flags::default(), Some(date)),
            new_message(raws[1].clone(), flags(SystemFlags::SEEN, &["$Label1"]), Some(date)),
        ],
    )
    .await?;
    let child = s.mail.create_mailbox(id, &name("INBOX/keep")?, None).await.must()?;
    let before = s.mail.status(inbox).await.must()?;

    s.mail.rename_mailbox(id, &name("INBOX")?, &name("Old Mail")?).await.must()?;
    let old = mailbox(s, id, "Old Mail").await?;
    let st = s.mail.status(old).await.must()?;
    check_eq!((st.messages, st.unseen, st.uid_next), (2, 1, uid(3)));
    check!(st.uid_validity != before.uid_validity);
    let metas = s.mail.fetch(old, &all(), FetchWant::default()).await.must()?;
    check_eq!(metas.iter().map(|m| m.uid).collect::<Vec<_>>(), uids(&[1, 2]));
    check_eq!(metas[1].flags, flags(SystemFlags::SEEN, &["$Label1"]));
    check_eq!(metas[0].internal_date, date);
    check_eq!(s.mail.body(old, uid(2)).await.must()?, raws[1]);
    check!(s.mail.select(old, ClaimRecent::Peek).await.must()?.keywords.iter().any(|k| k == "$Label1"));

    let now = s.mail.status(inbox).await.must()?;
    check_eq!((now.messages, now.unseen, now.size), (0, 0, 0));
    check_eq!(now.uid_next, before.uid_next);
    check_eq!(now.uid_validity, before.uid_validity);
    let changes = s.mail.changes_since(inbox, before.highest_modseq, before.uid_next).await.must()?;
    check_eq!(changes.expunged, uids(&[1, 2]));
    check_eq!(mailbox(s, id, "INBOX/keep").await?, child);
    must_fail(s.mail.rename_mailbox(id, &name("INBOX")?, &name("Old Mail")?).await, already_exists)?;
    // INBOX keeps working and does not reuse UIDs.
    check_eq!(append_each(s, inbox, vec![plain("after")]).await?, uids(&[3]));
    Ok(())
}

/// STORE: +FLAGS, -FLAGS, FLAGS, keywords (case-insensitive, normalised), counters, and no
/// modseq bump for a STORE that changes nothing.
pub async fn flags_keywords_and_counters(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-flags").await?;
    append_each(
        s,
        inbox,
        vec![
            plain("1"),
            new_message(raw("2", "x"), flags(SystemFlags::SEEN, &[]), None),
            new_message(raw("3", "x"), flags(SystemFlags::DELETED, &["Work"]), None),
        ],
    )
    .await?;
    let st = s.mail.status(inbox).await.must()?;
    check_eq!((st.unseen, st.deleted), (2, 1));
    let snap = s.mail.select(inbox, ClaimRecent::Peek).await.must()?;
    check_eq!(snap.first_unseen, Some(uid(1)));
    check_eq!(snap.keywords, vec!["Work".to_owned()]);
    check_eq!(snap.uids, UidSet::from_uids(uids(&[1, 2, 3])));

    let seen = flags(SystemFlags::SEEN, &[]);
    let r = s.mail.store_flags(inbox, &set(&[1..=3]), FlagOp::Add, &seen, None).await.must()?;
    check_eq!(r.modseq_before, st.highest_modseq);
    check!(r.modseq_after > r.modseq_before);
    check!(r.modified.is_empty());
    check_eq!(r.updated.iter().map(|u| u.0).collect::<Vec<_>>(), uids(&[1, 2, 3]));
    // Message 2 already had \Seen: reported with its old modseq.
    let meta2 = &s.mail.fetch(inbox, &set(&[2..=2]), FetchWant::default()).await.must()?[0];
    check_eq!(r.updated[1], (uid(2), seen.clone(), meta2.modseq));
    check!(meta2.modseq < r.modseq_after);
    check_eq!(r.updated[0].2, r.modseq_after);
    let st = s.mail.status(inbox).await.must()?;
    check_eq!((st.unseen, st.highest_modseq), (0, r.modseq_after));
    check_eq!(s.mail.select(inbox, ClaimRecent::Peek).await.must()?.first_unseen, None);

    let r = s
        .mail
        .store_flags(
            inbox,
            &set(&[1..=1]),
            FlagOp::Add,
            &flags(SystemFlags::default(), &["work", "$Important"]),
            None,
        )
        .await
        .must()?;
    check_eq!(r.updated[0].1, flags(SystemFlags::SEEN, &["$Important", "work"]));
    let keywords = s.mail.select(inbox, ClaimRecent::Peek).await.must()?.keywords;
    check_eq!(keywords.len(), 2);
    check!(
        keywords.iter().any(|k| k == "$Important") && keywords.iter().any(|k| k.eq_ignore_ascii_case("work"))
    );

    let r = s
        .mail
        .store_flags(inbox, &set(&[1..=1]), FlagOp::Remove, &flags(SystemFlags::SEEN, &["WORK"]), None)
        .await
        .must()?;
    check_eq!(r.updated[0].1, flags(SystemFlags::default(), &["$Important"]));
    check_eq!(s.mail.status(inbox).await.must()?.unseen, 1);

    let r = s
        .mail
        .store_flags(inbox, &set(&[3..=3]), FlagOp::Replace, &flags(SystemFlags::FLAGGED, &[]), None)
        .await
        .must()?;
    check_eq!(r.updated[0].1, flags(SystemFlags::FLAGGED, &[]));
    let st = s.mail.status(inbox).await.must()?;
    check_eq!((st.deleted, st.unseen, st.messages), (0, 2, 3));

    // Nothing changes: nothing is bumped, but the message is still reported.
    let again = s
        .mail
        .store_flags(inbox, &set(&[3..=3]), FlagOp::Add, &flags(SystemFlags::FLAGGED, &[]), None)
        .await
        .must()?;
    check_eq!(again.modseq_before, again.modseq_after);
    check_eq!(again.modseq_after, r.modseq_after);
    check_eq!(again.updated, vec![(uid(3), flags(SystemFlags::FLAGGED, &[]), r.modseq_after)]);
    check_eq!(s.mail.status(inbox).await.must()?.highest_modseq, r.modseq_after);

    let none = s.mail.store_flags(inbox, &set(&[50..=60]), FlagOp::Add, &seen, None).await.must()?;
    check!(none.updated.is_empty() && none.modified.is_empty());
    must_fail(
        s.mail
            .store_flags(
                inbox,
                &set(&[1..=1]),
                FlagOp::Add,
                &flags(SystemFlags::default(), &["two words"]),
                None,
            )
            .await,
        any_error,
    )?;
    let metas = s.mail.fetch(inbox, &all(), FetchWant::default()).await.must()?;
    let got: Vec<Flags> = metas.into_iter().map(|m| m.flags).collect();
    check_eq!(
        got,
        vec![
            flags(SystemFlags::default(), &["$Important"]),
            flags(SystemFlags::SEEN, &[]),
            flags(SystemFlags::FLAGGED, &[]),
        ]
    );
    Ok(())
}

/// RFC 7162 §3.1.3: messages changed after UNCHANGEDSINCE are not touched and are reported.
pub async fn unchanged_since(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-unchangedsince").await?;
    append_each(s, inbox, vec![plain("1"), plain("2"), plain("3")]).await?;
    let base = s.mail.status(inbox).await.must()?.highest_modseq;
    let r = s
        .mail
        .store_flags(inbox, &set(&[2..=2]), FlagOp::Add, &flags(SystemFlags::FLAGGED, &[]), None)
        .await
        .must()?;
    check!(r.modseq_after > base);

    let r = s
        .mail
        .store_flags(inbox, &set(&[1..=3]), FlagOp::Add, &flags(SystemFlags::SEEN, &[]), Some(base))
        .await
        .must()?;
    check_eq!(r.modified, uids(&[2]));
    check_eq!(r.updated.iter().map(|u| u.0).collect::<Vec<_>>(), uids(&[1, 3]));
    let meta = s.mail.fetch(inbox, &set(&[2..=2]), FetchWant::default()).await.must()?;
    check_eq!(meta[0].flags, flags(SystemFlags::FLAGGED, &[]));

    // UNCHANGEDSINCE 0 fails for every message (RFC 7162 §3.1.3 example 5 uses it as a probe).
    let r = s
        .mail
        .store_flags(inbox, &set(&[1..=3]), FlagOp::Add, &flags(SystemFlags::DRAFT, &[]), Some(ModSeq(0)))
        .await
        .must()?;
    check_eq!(r.modified, uids(&[1, 2, 3]));
    check!(r.updated.is_empty());
    check_eq!(r.modseq_after, r.modseq_before);
    Ok(())
}

/// changes_since reports new messages, flag changes and expunges after a modseq.
pub async fn changes_since(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-changes").await?;
    append_each(s, inbox, vec![plain("1"), plain("2"), plain("3")]).await?;
    let st = s.mail.status(inbox).await.must()?;

    check_eq!(append_each(s, inbox, vec![plain("4")]).await?, uids(&[4]));
    let seen = s
        .mail
        .store_flags(inbox, &set(&[2..=2]), FlagOp::Add, &flags(SystemFlags::SEEN, &[]), None)
        .await
        .must()?;
    s.mail
        .store_flags(inbox, &set(&[1..=1]), FlagOp::Add, &flags(SystemFlags::DELETED, &[]), None)
        .await
        .must()?;
    check_eq!(s.mail.expunge(inbox, None).await.must()?, uids(&[1]));

    let now = s.mail.status(inbox).await.must()?;
    let c = s.mail.changes_since(inbox, st.highest_modseq, st.uid_next).await.must()?;
    check_eq!(c.highest_modseq, now.highest_modseq);
    check_eq!(c.uid_next, uid(5));
    check_eq!(c.added, uids(&[4]));
    check_eq!(c.flags, vec![(uid(2), flags(SystemFlags::SEEN, &[]), seen.modseq_after)]);
    check_eq!(c.expunged, uids(&[1]));

    let c = s.mail.changes_since(inbox, now.highest_modseq, now.uid_next).await.must()?;
    check!(c.added.is_empty() && c.flags.is_empty() && c.expunged.is_empty());

    // From the very beginning: everything is "added", nothing was known.
    let c = s.mail.changes_since(inbox, ModSeq(0), uid(1)).await.must()?;
    check_eq!(c.added, uids(&[2, 3, 4]));
    must_fail(s.mail.changes_since(MailboxId(i64::MAX), ModSeq(0), uid(1)).await, not_found)?;
    Ok(())
}

/// COPY and MOVE: UID mappings in source order, flags and dates kept, bodies shared, the
/// source of a MOVE expunged, copies within one mailbox and into another account's.
pub async fn copy_and_move(s: &Stores) -> Result<(), Failure> {
    let (id, inbox) = account(s, "conf-copy").await?;
    let date = InternalDate { unix: 1_650_000_000, offset_minutes: -420 };
    let raws = [raw("c1", "one"), raw("c2", "two"), raw("c3", "three")];
    append_each(
        s,
        inbox,
        vec![
            new_message(raws[0].clone(), flags(SystemFlags::SEEN, &[]), Some(date)),
            new_message(raws[1].clone(), flags(SystemFlags::default(), &["$Fwd"]), Some(date)),
            new_message(raws[2].clone(), Flags::default(), Some(date)),
        ],
    )
    .await?;
    let copies = s.mail.create_mailbox(id, &name("Copies")?, None).await.must()?;
    let target = s.mail.status(copies).await.must()?;

    let c = s.mail.copy(inbox, &set(&[1..=3]), copies).await.must()?;
    check_eq!(c.uid_validity, target.uid_validity);
    check_eq!(c.mapping, vec![(uid(1), uid(1)), (uid(2), uid(2)), (uid(3), uid(3))]);
    let c = s.mail.copy(inbox, &set(&[2..=3, 7..=9]), copies).await.must()?;
    check_eq!(c.mapping, vec![(uid(2), uid(4)), (uid(3), uid(5))]);
    let st = s.mail.status(copies).await.must()?;
    check_eq!((st.messages, st.unseen, st.uid_next), (5, 4, uid(6)));
    check!(st.highest_modseq > target.highest_modseq);
    let meta = s.mail.fetch(copies, &set(&[4..=4]), FetchWant::default()).await.must()?;
    check_eq!(meta[0].flags, flags(SystemFlags::default(), &["$Fwd"]));
    check_eq!(meta[0].internal_date, date);
    check_eq!(s.mail.body(copies, uid(4)).await.must()?, raws[1]);
    check!(s.mail.select(copies, ClaimRecent::Peek).await.must()?.keywords.iter().any(|k| k == "$Fwd"));

    // Into the same mailbox.
    let c = s.mail.copy(inbox, &set(&[1..=1]), inbox).await.must()?;
    check_eq!(c.mapping, vec![(uid(1), uid(4))]);
    check_eq!(s.mail.status(inbox).await.must()?.messages, 4);

    // MOVE: the source rows go, recorded as expunged.
    let moved_to = s.mail.create_mailbox(id, &name("Moved")?, None).await.must()?;
    let before = s.mail.status(inbox).await.must()?;
    let m = s.mail.move_messages(inbox, &set(&[1..=2]), moved_to).await.must()?;
    check_eq!(m.mapping, vec![(uid(1), uid(1)), (uid(2), uid(2))]);
    let st = s.mail.status(inbox).await.must()?;
    check_eq!((st.messages, st.unseen), (2, 1));
    let c = s.mail.changes_since(inbox, before.highest_modseq, before.uid_next).await.must()?;
    check_eq!(c.expunged, uids(&[1, 2]));
    check_eq!(s.mail.body(moved_to, uid(1)).await.must()?, raws[0]);
    // The copy of message 1 in INBOX shares the moved body.
    check_eq!(s.mail.body(inbox, uid(4)).await.must()?, raws[0]);
    must_fail(s.mail.body(inbox, uid(1)).await, not_found)?;

    // Dropping every copy but one keeps that one readable.
    s.mail
        .store_flags(moved_to, &all(), FlagOp::Add, &flags(SystemFlags::DELETED, &[]), None)
        .await
        .must()?;
    check_eq!(s.mail.expunge(moved_to, None).await.must()?, uids(&[1, 2]));
    check_eq!(s.mail.body(copies, uid(1)).await.must()?, raws[0]);
    check_eq!(s.mail.body(inbox, uid(4)).await.must()?, raws[0]);

    // MOVE within one mailbox renumbers.
    let m = s.mail.move_messages(inbox, &set(&[3..=3]), inbox).await.must()?;
    check_eq!(m.mapping, vec![(uid(3), uid(5))]);
    let snap = s.mail.select(inbox, ClaimRecent::Peek).await.must()?;
    check_eq!(snap.uids, UidSet::from_uids(uids(&[4, 5])));
    check_eq!(snap.status.messages, 2);

    let empty = s.mail.copy(inbox, &set(&[100..=200]), copies).await.must()?;
    check!(empty.mapping.is_empty());
    // Into another account's mailbox (the session has checked the rights): the body is
    // shared, a MOVE takes the message out of the source.
    let (_, foreign) = account(s, "conf-copy-other").await?;
    let c = s.mail.copy(inbox, &set(&[4..=4]), foreign).await.must()?;
    check_eq!(c.mapping, vec![(uid(4), uid(1))]);
    check_eq!(s.mail.body(foreign, uid(1)).await.must()?, raws[0]);
    let m = s.mail.move_messages(inbox, &set(&[5..=5]), foreign).await.must()?;
    check_eq!(m.mapping, vec![(uid(5), uid(2))]);
    check_eq!(s.mail.body(foreign, uid(2)).await.must()?, raws[2]);
    check_eq!(s.mail.status(foreign).await.must()?.messages, 2);
    check_eq!(s.mail.status(inbox).await.must()?.messages, 1);
    Ok(())
}

/// IMAP4rev1 `\Recent`: SELECT claims, EXAMINE does not, a claim is given out once.
pub async fn recent_claim(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-recent").await?;
    append_each(s, inbox, vec![plain("1"), plain("2")]).await?;
    check_eq!(s.mail.status(inbox).await.must()?.recent, 2);

    // EXAMINE sees them as recent and leaves them so.
    let peek = s.mail.select(inbox, ClaimRecent::Peek).await.must()?;
    check_eq!(peek.recent.iter().collect::<Vec<_>>(), uids(&[1, 2]));
    check_eq!(peek.status.recent, 2);
    check_eq!(s.mail.status(inbox).await.must()?.recent, 2);

    let claim = s.mail.select(inbox, ClaimRecent::Claim).await.must()?;
    check!(claim.recent.contains(uid(1)) && claim.recent.contains(uid(2)));
    check_eq!(claim.status.recent, 2);
    check_eq!(s.mail.status(inbox).await.must()?.recent, 0);

    let again = s.mail.select(inbox, ClaimRecent::Claim).await.must()?;
    check!(again.recent.is_empty());
    check_eq!(again.status.recent, 0);

    append_each(s, inbox, vec![plain("3")]).await?;
    check_eq!(s.mail.status(inbox).await.must()?.recent, 1);
    let claim = s.mail.select(inbox, ClaimRecent::Claim).await.must()?;
    check!(claim.recent.contains(uid(3)) && !claim.recent.contains(uid(2)));
    check_eq!(claim.status.recent, 1);
    check_eq!(claim.uids, UidSet::from_uids(uids(&[1, 2, 3])));

    // Recent messages expunged before anyone claimed them are neither counted nor claimed.
    append_each(s, inbox, vec![plain("4"), plain("5"), plain("6")]).await?;
    s.mail
        .store_flags(inbox, &set(&[5..=5]), FlagOp::Add, &flags(SystemFlags::DELETED, &[]), None)
        .await
        .must()?;
    s.mail.expunge(inbox, None).await.must()?;
    check_eq!(s.mail.status(inbox).await.must()?.recent, 2);
    let claim = s.mail.select(inbox, ClaimRecent::Claim).await.must()?;
    check_eq!(claim.recent.iter().collect::<Vec<_>>(), uids(&[4, 6]));
    check_eq!(claim.status.recent, 2);

    // New messages seen by sessions that have the mailbox selected: a read-only one sees them,
    // the first read-write one takes them, the next gets nothing.
    append_each(s, inbox, vec![plain("7"), plain("8")]).await?;
    let below = s.mail.status(inbox).await.must()?.uid_next;
    let seen = s.mail.claim_recent(inbox, below, ClaimRecent::Peek).await.must()?;
    check_eq!(seen.iter().collect::<Vec<_>>(), uids(&[7, 8]));
    let first = s.mail.claim_recent(inbox, uid(8), ClaimRecent::Claim).await.must()?;
    check_eq!(first.iter().collect::<Vec<_>>(), uids(&[7]));
    check_eq!(s.mail.status(inbox).await.must()?.recent, 1);
    let rest = s.mail.claim_recent(inbox, below, ClaimRecent::Claim).await.must()?;
    check_eq!(rest.iter().collect::<Vec<_>>(), uids(&[8]));
    check!(s.mail.claim_recent(inbox, below, ClaimRecent::Claim).await.must()?.is_empty());
    check_eq!(s.mail.status(inbox).await.must()?.recent, 0);
    Ok(())
}

/// SEARCH keys of RFC 9051 §6.4.4 (and RFC 5032 OLDER/YOUNGER, RFC 7162 MODSEQ).
pub async fn search_criteria(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-search").await?;
    let at = |y, mo, d, h: i64, min: i64, offset_minutes: i16| InternalDate {
        unix: days(y, mo, d) * 86_400 + h * 3600 + min * 60 - i64::from(offset_minutes) * 60,
        offset_minutes,
    };
    let m1 = b"From: Alice <alice@example.org>\r\nSubject: Quarterly report\r\n\
Date: Thu, 1 Feb 2024 09:00:00 +0100\r\n\r\nThe numbers are inside.\r\n"
        .to_vec();
    let m2 = b"From: =?UTF-8?Q?J=C3=B6rg?= <bob@example.org>\r\nSubject: a folded\r\n subject\r\n\
Date: Sun, 10 Mar 2024 22:00:00 -0500\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
aGlkZGVuIHRyZWFzdXJl\r\n"
        .to_vec();
    // Comments and folding inside the address: SEARCH FROM matches the address as parsed.
    let mut m3 =
        b"From: <carol (the cook)@\r\n (lab) example.org> (Carol)\r\nSubject: Lunch\r\n\r\nLunch at noon?\r\n".to_vec();
    m3.extend(std::iter::repeat_n(b'.', 500));
    m3.extend(b"\r\n");
    let (s1, s2, s3) = (m1.len() as u32, m2.len() as u32, m3.len() as u32);
    check!(s1 < s3 && s2 < s3);
    append_each(
        s,
        inbox,
        vec![
            new_message(m1, flags(SystemFlags::SEEN, &[]), Some(at(2024, 2, 1, 10, 0, 0))),
            // 23:30 on 10 March in New York is already 11 March in UTC.
            new_message(m2, flags(SystemFlags::FLAGGED, &["$Work"]), Some(at(2024, 3, 10, 23, 30, -300))),
        ],
    )
    .await?;
    let third = s
        .mail
        .append(inbox, vec![new_message(m3, Flags::default(), Some(at(2024, 4, 1, 0, 0, 0)))])
        .await
        .must()?;

    let b = |c: Criterion| Box::new(c);
    let cases: Vec<(Criterion, Vec<Uid>)> = vec![
        (Criterion::All, uids(&[1, 2, 3])),
        (Criterion::FlagSet(SystemFlags::SEEN), uids(&[1])),
        (Criterion::FlagUnset(SystemFlags::SEEN), uids(&[2, 3])),
        (Criterion::FlagSet(SystemFlags::SEEN.union(SystemFlags::FLAGGED)), uids(&[])),
        (Criterion::Keyword("$work".into()), uids(&[2])),
        (Criterion::NoKeyword("$WORK".into()), uids(&[1, 3])),
        (Criterion::Header("from".into(), "jörg".into()), uids(&[2])),
        (Criterion::Header("from".into(), "ALICE@".into()), uids(&[1])),
        (Criterion::Header("from".into(), "carol@example.org".into()), uids(&[3])),
        (Criterion::Header("from".into(), "carol <carol@".into()), uids(&[3])),
        (Criterion::Header("from".into(), "the cook".into()), uids(&[])),
        (Criterion::Header("subject".into(), "REPORT".into()), uids(&[1])),
        (Criterion::Header("subject".into(), "folded subject".into()), uids(&[2])),
        (Criterion::Header("date".into(), String::new()), uids(&[1, 2])),
        (Criterion::Header("x-missing".into(), String::new()), uids(&[])),
        (Criterion::Body("TREASURE".into()), uids(&[2])),
        (Criterion::Body("quarterly".into()), uids(&[])),
        (Criterion::Text("quarterly".into()), uids(&[1])),
        (Criterion::Text("noon".into()), uids(&[3])),
        (Criterion::Before(days(2024, 3, 10)), uids(&[1])),
        (Criterion::On(days(2024, 3, 10)), uids(&[2])),
        (Criterion::Since(days(2024, 3, 11)), uids(&[3])),
        (Criterion::SentBefore(days(2024, 3, 1)), uids(&[1])),
        (Criterion::SentOn(days(2024, 3, 10)), uids(&[2])),
        (Criterion::SentSince(days(2024, 3, 11)), uids(&[3])),
        (Criterion::Larger(s1.max(s2)), uids(&[3])),
        (Criterion::Smaller(s3), uids(&[1, 2])),
        (Criterion::Uids(set(&[2..=3, 9..=12])), uids(&[2, 3])),
        (Criterion::Uids(UidSet::from_uids((1..=400).map(|i| uid(i * 2 + 1)))), uids(&[3])),
        (Criterion::Not(b(Criterion::Uids(set(&[2..=2])))), uids(&[1, 3])),
        (
            Criterion::Or(b(Criterion::FlagSet(SystemFlags::SEEN)), b(Criterion::Body("treasure".into()))),
            uids(&[1, 2]),
        ),
        (
            Criterion::And(vec![Criterion::FlagUnset(SystemFlags::SEEN), Criterion::Text("lunch".into())]),
            uids(&[3]),
        ),
        (Criterion::And(vec![]), uids(&[1, 2, 3])),
        (Criterion::ModSeqAtLeast(third[0].modseq), uids(&[3])),
        (Criterion::Younger(3600), uids(&[])),
        (Criterion::Older(3600), uids(&[1, 2, 3])),
        (
            Criterion::Not(b(Criterion::Or(
                b(Criterion::Header("subject".into(), "lunch".into())),
                b(Criterion::Keyword("$Work".into())),
            ))),
            uids(&[1]),
        ),
    ];
    for (criterion, expected) in cases {
        let got = s.mail.search(inbox, &criterion).await.must()?;
        check!(got == expected, "search {criterion:?}: got {got:?}, expected {expected:?}");
    }
    must_fail(s.mail.search(MailboxId(i64::MAX), &Criterion::All).await, not_found)?;
    Ok(())
}

/// The notifier fires, with the new highest modseq, before a write returns.
pub async fn notifier_fires_after_writes(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-notify").await?;
    let mut rx = s.mail.notifier().watch(inbox);
    let appended = s.mail.append(inbox, vec![plain("ping")]).await.must()?;
    check_eq!(rx.has_changed().ok(), Some(true));
    check_eq!(*rx.borrow_and_update(), appended[0].modseq);

    let r = s
        .mail
        .store_flags(inbox, &set(&[1..=1]), FlagOp::Add, &flags(SystemFlags::SEEN, &[]), None)
        .await
        .must()?;
    check_eq!(rx.has_changed().ok(), Some(true));
    check_eq!(*rx.borrow_and_update(), r.modseq_after);

    // A STORE that changes nothing is not a change.
    s.mail
        .store_flags(inbox, &set(&[1..=1]), FlagOp::Add, &flags(SystemFlags::SEEN, &[]), None)
        .await
        .must()?;
    check_eq!(rx.has_changed().ok(), Some(false));
    Ok(())
}

/// Group commit under load: 50 concurrent APPENDs all succeed with distinct UIDs.
pub async fn concurrent_appends_get_distinct_uids(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-concurrent").await?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let mail = Arc::clone(&s.mail);
        tasks.spawn(async move { mail.append(inbox, vec![plain(&format!("m{i}"))]).await });
    }
    let mut got = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let appended = joined.map_err(|e| Failure(format!("append task failed: {e}")))?.must()?;
        got.extend(appended.into_iter().map(|a| a.uid));
    }
    got.sort_unstable();
    check_eq!(got, (1..=50).map(uid).collect::<Vec<_>>());
    let st = s.mail.status(inbox).await.must()?;
    check_eq!((st.messages, st.uid_next), (50, uid(51)));
    Ok(())
}

/// MULTIAPPEND (RFC 3502) is all or nothing; a failed APPEND uses up no UIDs.
pub async fn multiappend_is_atomic(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-multiappend").await?;
    must_fail(s.mail.append(MailboxId(i64::MAX), vec![plain("x")]).await, not_found)?;
    let bad = new_message(raw("bad", "x"), flags(SystemFlags::default(), &["no spaces allowed"]), None);
    must_fail(s.mail.append(inbox, vec![plain("a"), bad, plain("c")]).await, any_error)?;
    let st = s.mail.status(inbox).await.must()?;
    check_eq!((st.messages, st.uid_next, st.size), (0, uid(1), 0));
    let ok = s.mail.append(inbox, vec![plain("a"), plain("b")]).await.must()?;
    check_eq!(ok.iter().map(|a| a.uid).collect::<Vec<_>>(), uids(&[1, 2]));
    check_eq!(ok[0].modseq, ok[1].modseq);
    Ok(())
}

/// FETCH metadata: only existing messages, ascending, summary only on request; raw bodies.
pub async fn fetch_and_body(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-fetch").await?;
    let date = InternalDate { unix: 1_600_000_000, offset_minutes: 330 };
    let raws = [raw("f1", "one"), raw("f2", "two"), raw("f3", "three")];
    append_each(
        s,
        inbox,
        raws.iter().map(|r| new_message(r.clone(), flags(SystemFlags::ANSWERED, &[]), Some(date))).collect(),
    )
    .await?;
    s.mail
        .store_flags(inbox, &set(&[2..=2]), FlagOp::Add, &flags(SystemFlags::DELETED, &[]), None)
        .await
        .must()?;
    s.mail.expunge(inbox, None).await.must()?;

    let metas = s.mail.fetch(inbox, &set(&[3..=10, 1..=2]), FetchWant::default()).await.must()?;
    check_eq!(metas.iter().map(|m| m.uid).collect::<Vec<_>>(), uids(&[1, 3]));
    check_eq!(metas[1].size as usize, raws[2].len());
    check_eq!(metas[0].internal_date, date);
    check_eq!(metas[0].flags, flags(SystemFlags::ANSWERED, &[]));
    check!(metas.iter().all(|m| m.summary.is_none()));

    let metas = s.mail.fetch(inbox, &set(&[3..=3]), FetchWant { summary: true }).await.must()?;
    let summary = metas.first().and_then(|m| m.summary.clone());
    let summary = summary.ok_or_else(|| Failure("summary not loaded".into()))?;
    check_eq!(summary.subject.as_deref(), Some("f3"));

    check_eq!(s.mail.body(inbox, uid(3)).await.must()?, raws[2]);
    must_fail(s.mail.body(inbox, uid(2)).await, not_found)?;
    check!(s.mail.fetch(inbox, &UidSet::new(), FetchWant::default()).await.must()?.is_empty());
    must_fail(s.mail.fetch(MailboxId(i64::MAX), &all(), FetchWant::default()).await, not_found)?;
    Ok(())
}

/// EXPUNGE removes only `\Deleted` messages; UID EXPUNGE only those in its set.
pub async fn expunge_subsets(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-expunge").await?;
    append_each(s, inbox, vec![plain("1"), plain("2"), plain("3"), plain("4"), plain("5")]).await?;
    s.mail
        .store_flags(inbox, &set(&[1..=4]), FlagOp::Add, &flags(SystemFlags::DELETED, &[]), None)
        .await
        .must()?;
    check_eq!(s.mail.status(inbox).await.must()?.deleted, 4);
    check_eq!(s.mail.expunge(inbox, Some(&set(&[2..=3, 5..=5]))).await.must()?, uids(&[2, 3]));
    let st = s.mail.status(inbox).await.must()?;
    check_eq!((st.messages, st.deleted), (3, 2));
    check_eq!(s.mail.expunge(inbox, None).await.must()?, uids(&[1, 4]));
    let st = s.mail.status(inbox).await.must()?;
    check_eq!((st.messages, st.deleted, st.unseen), (1, 0, 1));
    check!(s.mail.expunge(inbox, None).await.must()?.is_empty());
    check_eq!(s.mail.status(inbox).await.must()?.highest_modseq, st.highest_modseq);
    check_eq!(s.mail.select(inbox, ClaimRecent::Peek).await.must()?.uids, UidSet::from_uids(uids(&[5])));
    Ok(())
}

/// Deleting an account removes its mailboxes, messages and subscriptions.
pub async fn delete_account_removes_everything(s: &Stores) -> Result<(), Failure> {
    let (id, inbox) = account(s, "conf-delete").await?;
    append_each(s, inbox, vec![plain("1"), plain("2")]).await?;
    let archive = mailbox(s, id, "Archive").await?;
    s.mail.copy(inbox, &all(), archive).await.must()?;
    s.mail.set_subscribed(id, &name("Elsewhere")?, true).await.must()?;

    s.accounts.delete_account(id).await.must()?;
    check!(s.accounts.account_by_name("conf-delete").await.must()?.is_none());
    check!(s.mail.list_mailboxes(id).await.must()?.is_empty());
    check!(s.mail.subscriptions(id).await.must()?.is_empty());
    must_fail(s.mail.status(inbox).await, not_found)?;
    must_fail(s.mail.body(archive, uid(1)).await, not_found)?;
    must_fail(s.accounts.delete_account(id).await, not_found)?;
    // The name is free again.
    let again = s.accounts.create_account("conf-delete", "x").await.must()?;
    check!(again != id);
    Ok(())
}

// --- teams, ACLs, per-user \Seen, quotas (ShareStore) -------------------------------------------

/// An identifier a check spells out.
#[track_caller]
fn ident(text: &str) -> Result<Identifier, Failure> {
    let at = Location::caller();
    Identifier::parse(text)
        .ok_or_else(|| Failure(format!("{}:{}: bad identifier {text:?}", at.file(), at.line())))
}

/// Rights a check spells out.
#[track_caller]
fn rights(letters: &str) -> Result<Rights, Failure> {
    let at = Location::caller();
    Rights::parse(letters).map_err(|e| Failure(format!("{}:{}: {e}", at.file(), at.line())))
}

#[track_caller]
fn entry(identifier: &str, letters: &str) -> Result<AclEntry, Failure> {
    Ok(AclEntry { identifier: ident(identifier)?, rights: rights(letters)? })
}

/// A fresh team for one check (an old account of the same name is deleted first).
async fn team(s: &Stores, name: &str, address: Option<&str>) -> Result<AccountId, Failure> {
    if let Some(old) = s.accounts.account_by_name(name).await.must()? {
        s.accounts.delete_account(old.id).await.must()?;
    }
    s.share.create_team(name, address).await.must()
}

/// A message of exactly `kib` KiB.
fn kib(subject: &str, kib: usize) -> NewMessage {
    let mut raw = format!("From: quota@example.org\r\nSubject: {subject}\r\n\r\n").into_bytes();
    raw.resize(kib * 1024 - 2, b'x');
    raw.extend_from_slice(b"\r\n");
    new_message(raw, Flags::default(), None)
}

/// The shown name of `owner`'s mailbox `name` in the other users' namespace.
fn other_users(owner: &str, name: &str) -> String {
    crate::acl::namespace::shown_name(AccountKind::User, owner, name)
}

/// Negative rights (RFC 4314 §2) subtract from what positive entries grant; account grantees
/// are stored by their canonical name; an empty or deleted entry grants nothing.
pub async fn acl_negative_rights(s: &Stores) -> Result<(), Failure> {
    let (owner, inbox) = account(s, "conf-acl-owner").await?;
    let (bob, _) = account(s, "conf-acl-Bob").await?;
    let work = s.mail.create_mailbox(owner, &name("Work")?, None).await.must()?;
    check!(s.share.acl(work).await.must()?.is_empty());
    check_eq!(s.share.my_rights(work, owner).await.must()?, Rights::ALL);
    check_eq!(s.share.my_rights(work, bob).await.must()?, Rights::NONE);

    // Named case-insensitively, stored canonically.
    s.share.set_acl(work, &ident("CONF-ACL-BOB")?, Some(rights("lrswi")?)).await.must()?;
    check_eq!(s.share.acl(work).await.must()?, vec![entry("conf-acl-Bob", "lrswi")?]);
    check_eq!(s.share.my_rights(work, bob).await.must()?, rights("lrswi")?);
    s.share.set_acl(work, &ident("-conf-acl-bob")?, Some(rights("w")?)).await.must()?;
    check_eq!(s.share.my_rights(work, bob).await.must()?, rights("lrsi")?);
    check_eq!(s.share.acl(work).await.must()?.len(), 2);
    // The owner keeps every right whatever the entries say.
    s.share.set_acl(work, &ident("-conf-acl-owner")?, Some(Rights::ALL)).await.must()?;
    check_eq!(s.share.my_rights(work, owner).await.must()?, Rights::ALL);
    s.share.set_acl(work, &ident("-conf-acl-owner")?, None).await.must()?;
    // Deleting the negative entry gives the right back; an empty entry is no entry.
    s.share.set_acl(work, &ident("-conf-acl-bob")?, None).await.must()?;
    check_eq!(s.share.my_rights(work, bob).await.must()?, rights("lrswi")?);
    s.share.set_acl(work, &ident("conf-acl-bob")?, Some(Rights::NONE)).await.must()?;
    check!(s.share.acl(work).await.must()?.is_empty());
    check_eq!(s.share.my_rights(work, bob).await.must()?, Rights::NONE);
    check_eq!(s.share.my_rights(inbox, bob).await.must()?, Rights::NONE);

    must_fail(s.share.set_acl(work, &ident("conf-acl-nobody")?, Some(rights("lr")?)).await, not_found)?;
    must_fail(s.share.set_acl(MailboxId(i64::MAX), &ident("anyone")?, Some(rights("l")?)).await, not_found)?;
    must_fail(s.share.my_rights(MailboxId(i64::MAX), bob).await, not_found)?;
    must_fail(s.share.my_rights(work, AccountId(i64::MAX)).await, not_found)?;
    must_fail(s.share.acl(MailboxId(i64::MAX)).await, not_found)?;
    Ok(())
}

/// `$group` entries match the group's members (case-insensitively), and stop matching when
/// an account leaves the group.
pub async fn acl_group_grants(s: &Stores) -> Result<(), Failure> {
    let (owner, _) = account(s, "conf-group-owner").await?;
    let (carol, _) = account(s, "conf-group-carol").await?;
    let projects = s.mail.create_mailbox(owner, &name("Projects")?, None).await.must()?;
    s.share.set_acl(projects, &ident("$conf-staff")?, Some(rights("lr")?)).await.must()?;
    check_eq!(s.share.my_rights(projects, carol).await.must()?, Rights::NONE);

    s.share.set_group_member("Conf-Staff", carol, true).await.must()?;
    s.share.set_group_member("Conf-Staff", carol, true).await.must()?;
    check_eq!(s.share.groups_of(carol).await.must()?, vec!["Conf-Staff".to_owned()]);
    check_eq!(s.share.my_rights(projects, carol).await.must()?, rights("lr")?);
    let shared = s.share.shared_with(carol).await.must()?;
    let found = shared.iter().find(|m| m.mailbox.id == projects);
    let lr = rights("lr")?;
    check!(found.is_some_and(|m| m.rights == lr && m.owner == owner));
    // Group grants do not subscribe: members subscribe themselves.
    check!(found.is_some_and(|m| !m.mailbox.subscribed));

    // A negative group entry takes away what a personal entry grants.
    s.share.set_acl(projects, &ident("conf-group-carol")?, Some(rights("lrw")?)).await.must()?;
    s.share.set_acl(projects, &ident("-$CONF-STAFF")?, Some(rights("w")?)).await.must()?;
    check_eq!(s.share.my_rights(projects, carol).await.must()?, rights("lr")?);

    s.share.set_group_member("conf-staff", carol, false).await.must()?;
    check!(s.share.groups_of(carol).await.must()?.is_empty());
    check_eq!(s.share.my_rights(projects, carol).await.must()?, rights("lrw")?);
    s.share.set_acl(projects, &ident("conf-group-carol")?, None).await.must()?;
    check_eq!(s.share.my_rights(projects, carol).await.must()?, Rights::NONE);
    check!(!s.share.shared_with(carol).await.must()?.iter().any(|m| m.mailbox.id == projects));

    must_fail(s.share.set_group_member("", carol, true).await, invalid_name)?;
    must_fail(s.share.set_group_member("conf-staff", AccountId(i64::MAX), true).await, not_found)?;
    Ok(())
}

/// `anyone` and `authenticated` match every viewer; negative ones subtract from everybody.
pub async fn acl_anyone_and_authenticated(s: &Stores) -> Result<(), Failure> {
    let (owner, _) = account(s, "conf-anyone-owner").await?;
    let (dave, _) = account(s, "conf-anyone-dave").await?;
    let public = s.mail.create_mailbox(owner, &name("Public")?, None).await.must()?;
    s.share.set_acl(public, &ident("anyone")?, Some(rights("lr")?)).await.must()?;
    check_eq!(s.share.my_rights(public, dave).await.must()?, rights("lr")?);
    check!(s.share.shared_with(dave).await.must()?.iter().any(|m| m.mailbox.id == public));
    s.share.set_acl(public, &ident("Authenticated")?, Some(rights("lrs")?)).await.must()?;
    check_eq!(s.share.my_rights(public, dave).await.must()?, rights("lrs")?);
    s.share.set_acl(public, &ident("-anyone")?, Some(rights("r")?)).await.must()?;
    check_eq!(s.share.my_rights(public, dave).await.must()?, rights("ls")?);
    check_eq!(
        s.share.acl(public).await.must()?,
        vec![entry("-anyone", "r")?, entry("anyone", "lr")?, entry("authenticated", "lrs")?]
    );
    // The owner's own mailboxes are never "shared with" it.
    check!(!s.share.shared_with(owner).await.must()?.iter().any(|m| m.owner == owner));
    for id in ["anyone", "-anyone", "authenticated"] {
        s.share.set_acl(public, &ident(id)?, None).await.must()?;
    }
    check_eq!(s.share.my_rights(public, dave).await.must()?, Rights::NONE);
    check!(!s.share.shared_with(dave).await.must()?.iter().any(|m| m.mailbox.id == public));
    Ok(())
}

/// A new mailbox inherits the ACL of its nearest existing superior (RFC 4314 §4), and account
/// grantees that can look it up are subscribed to it.
pub async fn acl_inherited_on_create(s: &Stores) -> Result<(), Failure> {
    let (owner, _) = account(s, "conf-inherit-owner").await?;
    let (erin, _) = account(s, "conf-inherit-erin").await?;
    let (fred, _) = account(s, "conf-inherit-fred").await?;
    let parent = s.mail.create_mailbox(owner, &name("Parent")?, None).await.must()?;
    s.share.set_acl(parent, &ident("conf-inherit-erin")?, Some(rights("lr")?)).await.must()?;
    s.share.set_acl(parent, &ident("conf-inherit-fred")?, Some(rights("r")?)).await.must()?;
    s.share.set_acl(parent, &ident("$conf-inherit")?, Some(rights("lrs")?)).await.must()?;
    let expected = s.share.acl(parent).await.must()?;
    check_eq!(expected.len(), 3);

    let child = s.mail.create_mailbox(owner, &name("Parent/Child")?, None).await.must()?;
    check_eq!(s.share.acl(child).await.must()?, expected);
    // No superior "Parent/Missing": the nearest existing one is Parent.
    let deep = s.mail.create_mailbox(owner, &name("Parent/Missing/Deep")?, None).await.must()?;
    check_eq!(s.share.acl(deep).await.must()?, expected);
    let top = s.mail.create_mailbox(owner, &name("Elsewhere")?, None).await.must()?;
    check!(s.share.acl(top).await.must()?.is_empty());

    let subscribed = s.mail.subscriptions(erin).await.must()?;
    for m in ["Parent", "Parent/Child", "Parent/Missing/Deep"] {
        check!(subscribed.contains(&other_users("conf-inherit-owner", m)), "erin not subscribed to {m}");
    }
    check!(!subscribed.contains(&other_users("conf-inherit-owner", "Elsewhere")));
    // Without `l` nothing is subscribed.
    check!(!s.mail.subscriptions(fred).await.must()?.iter().any(|n| n.contains("conf-inherit-owner")));
    // The owner's own list is untouched.
    check!(!s.mail.subscriptions(owner).await.must()?.iter().any(|n| n.contains("Parent")));
    Ok(())
}

/// ACL and membership changes bump the ACL generation and wake the mailbox's watchers.
pub async fn acl_changes_signal_sessions(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-signal-owner").await?;
    let (viewer, _) = account(s, "conf-signal-viewer").await?;
    let notifier = s.mail.notifier();
    let mut rx = notifier.watch(inbox);
    let generation = notifier.acl_generation();
    s.share.set_acl(inbox, &ident("conf-signal-viewer")?, Some(rights("lr")?)).await.must()?;
    check!(notifier.acl_generation() > generation);
    check_eq!(rx.has_changed().ok(), Some(true));
    rx.borrow_and_update();

    let generation = notifier.acl_generation();
    s.share.set_group_member("conf-signal", viewer, true).await.must()?;
    check!(notifier.acl_generation() > generation);
    check_eq!(rx.has_changed().ok(), Some(true));
    rx.borrow_and_update();

    let generation = notifier.acl_generation();
    s.share.set_seen_mode(inbox, SeenMode::Private).await.must()?;
    check!(notifier.acl_generation() > generation);
    check_eq!(rx.has_changed().ok(), Some(true));

    // A failed change signals nothing.
    let generation = notifier.acl_generation();
    must_fail(s.share.set_acl(inbox, &ident("conf-signal-nobody")?, Some(rights("l")?)).await, not_found)?;
    check_eq!(notifier.acl_generation(), generation);
    Ok(())
}

/// A team: no login, its own mailboxes and address; members get an entry on every mailbox
/// (also later ones) and are subscribed to those they can look up.
pub async fn team_membership_grants_and_subscribes(s: &Stores) -> Result<(), Failure> {
    let t = team(s, "conf-team", Some("Conf-Team@Example.org")).await?;
    must_fail(s.share.create_team("CONF-team", None).await, already_exists)?;
    must_fail(s.accounts.create_account("conf-TEAM", "x").await, already_exists)?;
    must_fail(s.share.create_team("conf-team-2", Some("conf-team@example.ORG")).await, already_exists)?;
    for bad in ["anyone", "Authenticated", "$conf", "-conf", "conf/team", ""] {
        must_fail(s.share.create_team(bad, None).await, invalid_name)?;
    }
    must_fail(s.share.create_team("conf-team-3", Some("no address")).await, invalid_name)?;

    let found = s.accounts.account_by_name("Conf-Team").await.must()?;
    check_eq!(found.as_ref().map(|a| (a.id, a.kind)), Some((t, AccountKind::Team)));
    let by_address = s.share.account_by_address("CONF-TEAM@example.org").await.must()?;
    check_eq!(by_address.map(|a| a.id), Some(t));
    check!(s.share.account_by_address("conf-team").await.must()?.is_none());
    check_eq!(s.share.team_address(t).await.must()?, Some("Conf-Team@Example.org".to_owned()));
    must_fail(s.accounts.set_password_hash(t, "$argon2id$x").await, not_allowed)?;
    must_fail(s.accounts.add_app_password(t, "phone", "digest").await, not_allowed)?;
    check!(
        !s.accounts
            .account_by_name("conf-team")
            .await
            .must()?
            .is_some_and(|a| a.password_hash.starts_with('$'))
    );

    let list = s.mail.list_mailboxes(t).await.must()?;
    let summary: Vec<(&str, Option<SpecialUse>, bool)> =
        list.iter().map(|m| (m.name.as_str(), m.special_use, m.subscribed)).collect();
    check_eq!(
        summary,
        vec![
            ("Archive", Some(SpecialUse::Archive), false),
            ("Drafts", Some(SpecialUse::Drafts), false),
            ("INBOX", None, false),
            ("Sent", Some(SpecialUse::Sent), false),
            ("Trash", Some(SpecialUse::Trash), false),
        ]
    );
    check!(s.mail.subscriptions(t).await.must()?.is_empty());
    let team_inbox = mailbox(s, t, "INBOX").await?;
    check_eq!(s.share.mailbox_owner(team_inbox).await.must()?.id, t);

    let (frank, _) = account(s, "conf-team-frank").await?;
    let (gina, _) = account(s, "conf-team-gina").await?;
    s.share.set_team_member(t, frank, rights("lrswite")?).await.must()?;
    s.share.set_team_member(t, gina, rights("r")?).await.must()?;
    check_eq!(
        s.share.team_members(t).await.must()?,
        vec![
            TeamMember { account: frank, name: "conf-team-frank".into(), rights: rights("lrswite")? },
            TeamMember { account: gina, name: "conf-team-gina".into(), rights: rights("r")? },
        ]
    );
    let shown = |m: &str| crate::acl::namespace::shown_name(AccountKind::Team, "conf-team", m);
    for m in &list {
        check_eq!(s.share.my_rights(m.id, frank).await.must()?, rights("lrswite")?);
        check_eq!(s.share.my_rights(m.id, gina).await.must()?, rights("r")?);
    }
    let frank_subs = s.mail.subscriptions(frank).await.must()?;
    for m in ["INBOX", "Sent", "Drafts", "Trash", "Archive"] {
        check!(frank_subs.contains(&shown(m)), "frank not subscribed to {m}");
    }
    check!(!s.mail.subscriptions(gina).await.must()?.iter().any(|n| n.starts_with("Shared/")));

    // A mailbox made later carries the memberships.
    let projects = s.mail.create_mailbox(t, &name("Projects")?, None).await.must()?;
    check_eq!(s.share.my_rights(projects, frank).await.must()?, rights("lrswite")?);
    check_eq!(s.share.my_rights(projects, gina).await.must()?, rights("r")?);
    check!(s.mail.subscriptions(frank).await.must()?.contains(&shown("Projects")));
    let shared = s.share.shared_with(frank).await.must()?;
    let of_team: Vec<&str> =
        shared.iter().filter(|m| m.owner == t).map(|m| m.mailbox.name.as_str()).collect();
    check_eq!(of_team, vec!["Archive", "Drafts", "INBOX", "Projects", "Sent", "Trash"]);
    check!(shared.iter().filter(|m| m.owner == t).all(|m| {
        m.owner_kind == AccountKind::Team && m.owner_name == "conf-team" && m.mailbox.subscribed
    }));

    // Losing `l` unsubscribes; getting it back subscribes again.
    s.share.set_team_member(t, frank, rights("rs")?).await.must()?;
    check!(!s.mail.subscriptions(frank).await.must()?.iter().any(|n| n.starts_with("Shared/conf-team/")));
    check_eq!(s.share.my_rights(team_inbox, frank).await.must()?, rights("rs")?);
    s.share.set_team_member(t, frank, rights("lrs")?).await.must()?;
    check_eq!(
        s.mail
            .subscriptions(frank)
            .await
            .must()?
            .iter()
            .filter(|n| n.starts_with("Shared/conf-team/"))
            .count(),
        6
    );

    s.share.remove_team_member(t, gina).await.must()?;
    check_eq!(s.share.my_rights(projects, gina).await.must()?, Rights::NONE);
    check!(!s.share.acl(projects).await.must()?.iter().any(|e| e.identifier.to_string() == "conf-team-gina"));
    check_eq!(s.share.team_members(t).await.must()?.len(), 1);
    must_fail(s.share.remove_team_member(t, gina).await, not_found)?;
    s.share.remove_team_member(t, frank).await.must()?;
    check!(!s.mail.subscriptions(frank).await.must()?.iter().any(|n| n.starts_with("Shared/conf-team/")));

    must_fail(s.share.set_team_member(frank, gina, rights("lr")?).await, not_allowed)?;
    must_fail(s.share.set_team_member(t, t, rights("lr")?).await, not_allowed)?;
    must_fail(s.share.set_team_member(t, AccountId(i64::MAX), rights("lr")?).await, not_found)?;
    must_fail(s.share.team_members(AccountId(i64::MAX)).await, not_found)?;
    Ok(())
}

/// The "shared with me" list follows every ACL change at once, names the owner, and carries
/// the viewer's subscription of the shown name.
pub async fn shared_with_follows_acl_changes(s: &Stores) -> Result<(), Failure> {
    let (owner, _) = account(s, "conf-sw-owner").await?;
    let (viewer, _) = account(s, "conf-sw-viewer").await?;
    let a = s.mail.create_mailbox(owner, &name("A")?, Some(SpecialUse::Flagged)).await.must()?;
    let b = s.mail.create_mailbox(owner, &name("B")?, None).await.must()?;
    let mine = |list: Vec<crate::acl::SharedMailbox>| -> Vec<(String, String, bool)> {
        list.into_iter()
            .filter(|m| m.owner == owner)
            .map(|m| (m.mailbox.name, m.rights.to_string(), m.mailbox.subscribed))
            .collect()
    };
    check!(mine(s.share.shared_with(viewer).await.must()?).is_empty());

    s.share.set_acl(a, &ident("conf-sw-viewer")?, Some(rights("lr")?)).await.must()?;
    check_eq!(mine(s.share.shared_with(viewer).await.must()?), vec![("A".to_owned(), "lr".to_owned(), true)]);
    let listed = s.share.shared_with(viewer).await.must()?;
    let first = listed.iter().find(|m| m.owner == owner);
    check!(first.is_some_and(|m| m.owner_name == "conf-sw-owner"
        && m.owner_kind == AccountKind::User
        && m.mailbox.special_use == Some(SpecialUse::Flagged)));
    s.share.set_acl(b, &ident("conf-sw-viewer")?, Some(rights("r")?)).await.must()?;
    check_eq!(
        mine(s.share.shared_with(viewer).await.must()?),
        vec![("A".to_owned(), "lr".to_owned(), true), ("B".to_owned(), "r".to_owned(), false)]
    );
    s.share.set_acl(a, &ident("conf-sw-viewer")?, None).await.must()?;
    check_eq!(mine(s.share.shared_with(viewer).await.must()?), vec![("B".to_owned(), "r".to_owned(), false)]);
    check!(!s.mail.subscriptions(viewer).await.must()?.contains(&other_users("conf-sw-owner", "A")));
    // Deleting the mailbox takes its entries along.
    s.mail.delete_mailbox(owner, b).await.must()?;
    check!(mine(s.share.shared_with(viewer).await.must()?).is_empty());
    must_fail(s.share.shared_with(AccountId(i64::MAX)).await, not_found)?;
    Ok(())
}

/// RENAME keeps the ACL and moves the grantees' subscriptions to the new shown names.
pub async fn rename_moves_grantee_subscriptions(s: &Stores) -> Result<(), Failure> {
    let (owner, _) = account(s, "conf-rn-owner").await?;
    let (viewer, _) = account(s, "conf-rn-viewer").await?;
    let old = s.mail.create_mailbox(owner, &name("Old")?, None).await.must()?;
    s.share.set_acl(old, &ident("conf-rn-viewer")?, Some(rights("lr")?)).await.must()?;
    s.mail.create_mailbox(owner, &name("Old/Sub")?, None).await.must()?;
    let subs = s.mail.subscriptions(viewer).await.must()?;
    check!(subs.contains(&other_users("conf-rn-owner", "Old")));
    check!(subs.contains(&other_users("conf-rn-owner", "Old/Sub")));

    s.mail.rename_mailbox(owner, &name("Old")?, &name("New")?).await.must()?;
    let subs = s.mail.subscriptions(viewer).await.must()?;
    check!(subs.contains(&other_users("conf-rn-owner", "New")));
    check!(subs.contains(&other_users("conf-rn-owner", "New/Sub")));
    check!(!subs.iter().any(|n| n.starts_with(&other_users("conf-rn-owner", "Old"))));
    check_eq!(s.share.acl(old).await.must()?, vec![entry("conf-rn-viewer", "lr")?]);
    Ok(())
}

/// Deleting an account removes the entries naming it (positive and negative) and its
/// memberships, so a new account of the same name inherits none of it.
pub async fn account_deletion_forgets_its_entries(s: &Stores) -> Result<(), Failure> {
    let (owner, _) = account(s, "conf-forget-owner").await?;
    let (hank, _) = account(s, "conf-forget-hank").await?;
    let t = team(s, "conf-forget-team", Some("forget@example.org")).await?;
    let team_inbox = mailbox(s, t, "INBOX").await?;
    let shared = s.mail.create_mailbox(owner, &name("Shared")?, None).await.must()?;
    s.share.set_acl(shared, &ident("conf-forget-hank")?, Some(rights("lr")?)).await.must()?;
    s.share.set_acl(shared, &ident("-conf-forget-hank")?, Some(rights("w")?)).await.must()?;
    s.share.set_acl(shared, &ident("anyone")?, Some(rights("l")?)).await.must()?;
    s.share.set_group_member("conf-forget", hank, true).await.must()?;
    s.share.set_team_member(t, hank, rights("lr")?).await.must()?;

    s.accounts.delete_account(hank).await.must()?;
    check_eq!(s.share.acl(shared).await.must()?, vec![entry("anyone", "l")?]);
    check!(s.share.acl(team_inbox).await.must()?.is_empty());
    check!(s.share.team_members(t).await.must()?.is_empty());
    must_fail(s.share.quota(hank).await, not_found)?;

    let again = s.accounts.create_account("conf-forget-hank", "x").await.must()?;
    check_eq!(s.share.my_rights(shared, again).await.must()?, rights("l")?);
    check_eq!(s.share.my_rights(team_inbox, again).await.must()?, Rights::NONE);
    check!(s.share.groups_of(again).await.must()?.is_empty());

    // Deleting a team frees its name and address.
    s.share.set_team_member(t, again, rights("lr")?).await.must()?;
    s.accounts.delete_account(t).await.must()?;
    check!(s.share.account_by_address("forget@example.org").await.must()?.is_none());
    check!(!s.share.shared_with(again).await.must()?.iter().any(|m| m.owner == t));
    s.share.create_team("conf-forget-team", Some("forget@example.org")).await.must()?;
    Ok(())
}

/// 20 concurrent APPENDs of 1 KiB against a 10 KiB quota store exactly the 10 that fit: the
/// check and the increment are one step.
pub async fn quota_concurrent_appends_fill_exactly(s: &Stores) -> Result<(), Failure> {
    let (id, inbox) = account(s, "conf-quota-fill").await?;
    s.share.set_quota(id, QuotaLimits { storage: Some(10 * 1024), ..QuotaLimits::default() }).await.must()?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let mail = Arc::clone(&s.mail);
        tasks.spawn(async move { mail.append(inbox, vec![kib(&format!("q{i}"), 1)]).await });
    }
    let (mut stored, mut refused) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(|e| Failure(format!("append task failed: {e}")))? {
            Ok(_) => stored += 1,
            Err(StoreError::OverQuota(OverQuota { resource: QuotaResource::Storage, alone: false })) => {
                refused += 1
            }
            Err(e) => return Err(Failure(format!("unexpected error {e:?}"))),
        }
    }
    check_eq!((stored, refused), (10, 10));
    let q = s.share.quota(id).await.must()?;
    check_eq!((q.storage_used, q.messages_used), (10 * 1024, 10));
    check_eq!(q.limits.storage, Some(10 * 1024));
    check_eq!(q.own.storage, Some(10 * 1024));
    let st = s.mail.status(inbox).await.must()?;
    check_eq!((st.messages, st.size, st.uid_next), (10, 10 * 1024, uid(11)));

    // A message bigger than the whole quota can never fit.
    let (big, big_inbox) = account(s, "conf-quota-big").await?;
    s.share
        .set_quota(big, QuotaLimits { storage: Some(10 * 1024), ..QuotaLimits::default() })
        .await
        .must()?;
    must_be_over_quota(s.mail.append(big_inbox, vec![kib("big", 11)]).await, QuotaResource::Storage, true)?;
    check_eq!(s.share.quota(big).await.must()?.storage_used, 0);
    must_fail(s.share.set_quota(AccountId(i64::MAX), QuotaLimits::default()).await, not_found)?;
    Ok(())
}

/// MOVE within one owner changes no usage, so it succeeds at the limit; COPY within one owner
/// counts.
pub async fn quota_move_within_owner_never_fails(s: &Stores) -> Result<(), Failure> {
    let (id, inbox) = account(s, "conf-quota-move").await?;
    s.share
        .set_quota(id, QuotaLimits { storage: Some(2 * 1024), messages: Some(2), mailboxes: None })
        .await
        .must()?;
    append_each(s, inbox, vec![kib("m1", 1), kib("m2", 1)]).await?;
    let archive = mailbox(s, id, "Archive").await?;
    let moved = s.mail.move_messages(inbox, &all(), archive).await.must()?;
    check_eq!(moved.mapping.len(), 2);
    let q = s.share.quota(id).await.must()?;
    check_eq!((q.storage_used, q.messages_used), (2 * 1024, 2));
    must_be_over_quota(s.mail.copy(archive, &set(&[1..=1]), inbox).await, QuotaResource::Storage, false)?;
    s.share.set_quota(id, QuotaLimits { messages: Some(2), ..QuotaLimits::default() }).await.must()?;
    must_be_over_quota(s.mail.copy(archive, &set(&[1..=1]), inbox).await, QuotaResource::Message, false)?;
    check_eq!(s.mail.status(inbox).await.must()?.messages, 0);
    Ok(())
}

/// COPY (or MOVE) to another owner over its quota fails with nothing written on either side;
/// within the quota it charges the target and a MOVE frees the source.
pub async fn quota_copy_to_full_owner_writes_nothing(s: &Stores) -> Result<(), Failure> {
    let (src, src_inbox) = account(s, "conf-quota-src").await?;
    let (dst, dst_inbox) = account(s, "conf-quota-dst").await?;
    append_each(s, src_inbox, vec![kib("c1", 1), kib("c2", 1), kib("c3", 1)]).await?;
    s.share.set_quota(dst, QuotaLimits { storage: Some(2 * 1024), ..QuotaLimits::default() }).await.must()?;
    let before = s.mail.status(dst_inbox).await.must()?;

    must_be_over_quota(s.mail.copy(src_inbox, &all(), dst_inbox).await, QuotaResource::Storage, true)?;
    must_be_over_quota(
        s.mail.move_messages(src_inbox, &all(), dst_inbox).await,
        QuotaResource::Storage,
        true,
    )?;
    check_eq!(s.mail.status(dst_inbox).await.must()?, before);
    check_eq!(s.mail.status(src_inbox).await.must()?.messages, 3);
    check_eq!(s.share.quota(dst).await.must()?.storage_used, 0);
    check_eq!(s.share.quota(src).await.must()?.storage_used, 3 * 1024);

    s.mail.copy(src_inbox, &set(&[1..=1]), dst_inbox).await.must()?;
    s.mail.move_messages(src_inbox, &set(&[2..=2]), dst_inbox).await.must()?;
    let (q_src, q_dst) = (s.share.quota(src).await.must()?, s.share.quota(dst).await.must()?);
    check_eq!((q_src.storage_used, q_src.messages_used), (2 * 1024, 2));
    check_eq!((q_dst.storage_used, q_dst.messages_used), (2 * 1024, 2));
    // Full now: even one more message to the full owner is refused.
    must_be_over_quota(
        s.mail.copy(src_inbox, &set(&[3..=3]), dst_inbox).await,
        QuotaResource::Storage,
        false,
    )?;
    check_eq!(s.mail.status(dst_inbox).await.must()?.messages, 2);
    Ok(())
}

/// EXPUNGE, DELETE of a mailbox give the space back at once.
pub async fn quota_expunge_and_delete_free_usage(s: &Stores) -> Result<(), Failure> {
    let (id, inbox) = account(s, "conf-quota-free").await?;
    append_each(s, inbox, vec![kib("e1", 1), kib("e2", 2), kib("e3", 1)]).await?;
    let q = s.share.quota(id).await.must()?;
    check_eq!((q.storage_used, q.messages_used), (4 * 1024, 3));
    check_eq!(q.mailboxes_used, s.mail.list_mailboxes(id).await.must()?.len() as u64);
    check_eq!(q.limits.storage, None);

    s.mail
        .store_flags(inbox, &set(&[1..=2]), FlagOp::Add, &flags(SystemFlags::DELETED, &[]), None)
        .await
        .must()?;
    s.mail.expunge(inbox, None).await.must()?;
    let q = s.share.quota(id).await.must()?;
    check_eq!((q.storage_used, q.messages_used), (1024, 1));

    let tmp = s.mail.create_mailbox(id, &name("Tmp")?, None).await.must()?;
    s.mail.copy(inbox, &all(), tmp).await.must()?;
    check_eq!(s.share.quota(id).await.must()?.storage_used, 2 * 1024);
    s.mail.delete_mailbox(id, tmp).await.must()?;
    let q = s.share.quota(id).await.must()?;
    check_eq!((q.storage_used, q.messages_used), (1024, 1));

    // The mailbox count is the MAILBOX resource: the account's own limit overrides the default.
    let count = q.mailboxes_used;
    s.share
        .set_quota(id, QuotaLimits { mailboxes: Some(count + 1), ..QuotaLimits::default() })
        .await
        .must()?;
    check_eq!(s.share.quota(id).await.must()?.limits.mailboxes, Some(count + 1));
    s.mail.create_mailbox(id, &name("One")?, None).await.must()?;
    must_fail(s.mail.create_mailbox(id, &name("Two")?, None).await, |e| matches!(e, StoreError::Limit(_)))?;
    Ok(())
}

/// A warning is recorded once per upward crossing of 80, 90 and 100 %, and again only after
/// the usage fell below the threshold; a warning is delivered into a full INBOX once.
pub async fn quota_warnings_once_per_crossing(s: &Stores) -> Result<(), Failure> {
    let (id, inbox) = account(s, "conf-quota-warn").await?;
    s.share.set_quota(id, QuotaLimits { messages: Some(10), ..QuotaLimits::default() }).await.must()?;
    let warnings = || async {
        let all = s.share.pending_quota_warnings().await.must()?;
        Ok::<_, Failure>(all.into_iter().filter(|w| w.account == id).collect::<Vec<_>>())
    };
    let percents = |w: &[crate::acl::QuotaWarning]| w.iter().map(|w| w.percent).collect::<Vec<_>>();
    for i in 0..7 {
        s.mail.append(inbox, vec![plain(&format!("w{i}"))]).await.must()?;
    }
    check!(warnings().await?.is_empty());
    s.mail.append(inbox, vec![plain("w8")]).await.must()?;
    let w = warnings().await?;
    check_eq!(percents(&w), vec![80]);
    check_eq!((w[0].resource, w[0].used, w[0].limit), (QuotaResource::Message, 8, 10));
    s.mail.append(inbox, vec![plain("w9")]).await.must()?;
    check_eq!(percents(&warnings().await?), vec![80, 90]);

    // Down to 80 % and up to 90 % again: crossed again, warned again. Staying above 80 % all
    // along: no second 80 % warning.
    let first = s.mail.select(inbox, ClaimRecent::Peek).await.must()?.uids.iter().next().unwrap_or(Uid::MAX);
    s.mail
        .store_flags(inbox, &UidSet::from_uids([first]), FlagOp::Add, &flags(SystemFlags::DELETED, &[]), None)
        .await
        .must()?;
    s.mail.expunge(inbox, None).await.must()?;
    s.mail.append(inbox, vec![plain("w9 again")]).await.must()?;
    check_eq!(percents(&warnings().await?), vec![80, 90, 90]);
    // A jump over two thresholds warns once, for the higher one.
    s.share.set_quota(id, QuotaLimits { messages: Some(100), ..QuotaLimits::default() }).await.must()?;
    s.share.set_quota(id, QuotaLimits { messages: Some(10), ..QuotaLimits::default() }).await.must()?;
    let w = warnings().await?;
    check_eq!(percents(&w), vec![80, 90, 90, 90]);
    s.mail.append(inbox, vec![plain("w10")]).await.must()?;
    let w = warnings().await?;
    check_eq!(percents(&w), vec![80, 90, 90, 90, 100]);
    must_be_over_quota(s.mail.append(inbox, vec![plain("w11")]).await, QuotaResource::Message, false)?;

    // Delivered into the full INBOX, marked done, never twice.
    let last = w.last().map(|w| w.id).unwrap_or(-1);
    s.share.deliver_quota_warning(last, plain("Your mailbox is full")).await.must()?;
    check_eq!(s.mail.status(inbox).await.must()?.messages, 11);
    check_eq!(s.share.quota(id).await.must()?.messages_used, 11);
    check_eq!(percents(&warnings().await?), vec![80, 90, 90, 90]);
    s.share.deliver_quota_warning(last, plain("Your mailbox is full")).await.must()?;
    check_eq!(s.mail.status(inbox).await.must()?.messages, 11);
    must_fail(s.share.deliver_quota_warning(i64::MAX, plain("x")).await, not_found)?;
    Ok(())
}

/// Per-user `\Seen`: each viewer's own, with modseqs taken from the mailbox (monotonic for
/// everybody), never touching the message's own flag; gone with the message.
pub async fn private_seen_per_viewer(s: &Stores) -> Result<(), Failure> {
    let (_, inbox) = account(s, "conf-pseen-owner").await?;
    let (ivy, _) = account(s, "conf-pseen-ivy").await?;
    let (jack, _) = account(s, "conf-pseen-jack").await?;
    append_each(s, inbox, vec![plain("p1"), plain("p2"), plain("p3")]).await?;
    check_eq!(s.share.seen_mode(inbox).await.must()?, SeenMode::Shared);
    s.share.set_seen_mode(inbox, SeenMode::Private).await.must()?;
    check_eq!(s.share.seen_mode(inbox).await.must()?, SeenMode::Private);

    let before = s.mail.status(inbox).await.must()?.highest_modseq;
    let mut rx = s.mail.notifier().watch(inbox);
    let changed = s.share.store_private_seen(inbox, ivy, &set(&[1..=2, 7..=9]), true).await.must()?;
    check_eq!(changed.iter().map(|c| c.0).collect::<Vec<_>>(), uids(&[1, 2]));
    let m1 = changed[0].1;
    check!(m1 > before);
    check!(changed.iter().all(|c| c.1 == m1));
    check_eq!(s.mail.status(inbox).await.must()?.highest_modseq, m1);
    check_eq!(rx.has_changed().ok(), Some(true));
    check_eq!(*rx.borrow_and_update(), m1);
    check_eq!(s.share.private_seen(inbox, ivy).await.must()?, set(&[1..=2]));
    check!(s.share.private_seen(inbox, jack).await.must()?.is_empty());
    // The message's own \Seen is the owner's and did not move.
    check_eq!(s.mail.status(inbox).await.must()?.unseen, 3);
    let metas = s.mail.fetch(inbox, &all(), FetchWant::default()).await.must()?;
    check!(metas.iter().all(|m| !m.flags.system.contains(SystemFlags::SEEN)));

    // Nothing to change: no modseq taken.
    check!(s.share.store_private_seen(inbox, ivy, &set(&[1..=1]), true).await.must()?.is_empty());
    check_eq!(s.mail.status(inbox).await.must()?.highest_modseq, m1);

    let m2 = s.share.store_private_seen(inbox, jack, &set(&[2..=3]), true).await.must()?[0].1;
    check!(m2 > m1);
    let m3 = s.share.store_private_seen(inbox, ivy, &set(&[1..=1]), false).await.must()?[0].1;
    check!(m3 > m2);
    check_eq!(s.share.private_seen(inbox, ivy).await.must()?, set(&[2..=2]));
    check_eq!(
        s.share.private_seen_since(inbox, ivy, before).await.must()?,
        vec![(uid(1), false, m3), (uid(2), true, m1)]
    );
    check_eq!(s.share.private_seen_since(inbox, ivy, m1).await.must()?, vec![(uid(1), false, m3)]);
    check!(s.share.private_seen_since(inbox, jack, m2).await.must()?.is_empty());
    check_eq!(s.share.private_seen(inbox, jack).await.must()?, set(&[2..=3]));

    // Expunged messages take their private state along.
    s.mail
        .store_flags(inbox, &set(&[2..=2]), FlagOp::Add, &flags(SystemFlags::DELETED, &[]), None)
        .await
        .must()?;
    s.mail.expunge(inbox, None).await.must()?;
    check!(s.share.private_seen(inbox, ivy).await.must()?.is_empty());
    check_eq!(s.share.private_seen(inbox, jack).await.must()?, set(&[3..=3]));
    check_eq!(s.share.private_seen_since(inbox, ivy, before).await.must()?, vec![(uid(1), false, m3)]);

    must_fail(s.share.private_seen(MailboxId(i64::MAX), ivy).await, not_found)?;
    must_fail(s.share.store_private_seen(MailboxId(i64::MAX), ivy, &all(), true).await, not_found)?;
    must_fail(s.share.store_private_seen(inbox, AccountId(i64::MAX), &all(), true).await, not_found)?;
    must_fail(s.share.seen_mode(MailboxId(i64::MAX)).await, not_found)?;
    Ok(())
}

// --- the outbound queue -----------------------------------------------------------------------

/// A queue entry for `owner` to `to`, due at `now`.
fn outbound(owner: AccountId, kind: OutboundKind, to: &str, key: Option<&str>, now: i64) -> NewOutbound {
    NewOutbound {
        owner,
        kind,
        reverse_path: if kind == OutboundKind::Redirect {
            "sender@example.org".into()
        } else {
            String::new()
        },
        recipients: vec![to.to_owned()],
        data: b"Subject: queued\r\n\r\nbody\r\n".to_vec(),
        key: key.map(str::to_owned),
        vacation: None,
        now,
        expires: now + 5 * 86_400,
    }
}

/// Enqueue is idempotent by key and by vacation claim; a claim leases entries to one sender;
/// outcomes are recorded only under the caller's lease; a failure enqueues its bounce in the
/// same step; flush, delete and the queue length; keys are remembered after sending; an
/// account's deletion takes its entries along.
pub async fn queue_enqueue_claim_finish(s: &Stores) -> Result<(), Failure> {
    let (owner, _) = account(s, "conf-queue").await?;
    let now = 1_700_000_000;
    let q = &s.queue;
    let redirect = outbound(owner, OutboundKind::Redirect, "far@remote.example", Some("k1"), now);
    let Enqueued::Queued(first) = q.enqueue(redirect.clone()).await.must()? else {
        return Err(Failure("the first enqueue was not queued".into()));
    };
    check_eq!(q.enqueue(redirect.clone()).await.must()?, Enqueued::Duplicate);
    let mut vacation = outbound(owner, OutboundKind::Vacation, "coyote@desert.example", None, now);
    vacation.vacation = Some(VacationOnce {
        handle: "h".into(),
        sender: "coyote@desert.example".into(),
        period_secs: 86_400,
    });
    check!(matches!(q.enqueue(vacation.clone()).await.must()?, Enqueued::Queued(_)));
    check_eq!(q.enqueue(vacation.clone()).await.must()?, Enqueued::AlreadyReplied);
    check_eq!(q.queue_length().await.must()?, 2);
    let listed = q.queue_list().await.must()?;
    check_eq!(listed.len(), 2);
    check_eq!(listed[0].id, first);
    check_eq!(listed[0].kind, OutboundKind::Redirect);
    check_eq!(listed[0].recipients, vec!["far@remote.example".to_owned()]);
    check_eq!(listed[0].size, redirect.data.len() as u64);
    check_eq!((listed[0].attempts, listed[0].next_attempt, listed[0].leased_until), (0, now, None));

    // Bad input is refused, not stored.
    let mut bad = outbound(owner, OutboundKind::Redirect, "x@y", None, now);
    bad.recipients = vec!["a@b\r\nRCPT TO:<c@d>".into()];
    must_fail(q.enqueue(bad.clone()).await, |e| matches!(e, StoreError::Limit(_)))?;
    bad.recipients = vec!["a@b".into(); MAX_RECIPIENTS + 1];
    must_fail(q.enqueue(bad).await, |e| matches!(e, StoreError::Limit(_)))?;

    // Not due yet: nothing to claim.
    check!(q.claim_outbound(now - 1, 60, 10).await.must()?.is_empty());
    let claimed = q.claim_outbound(now, 60, 10).await.must()?;
    check_eq!(claimed.len(), 2);
    check_eq!(claimed[0].lease, Lease { id: first, attempt: 1 });
    check_eq!(claimed[0].data, redirect.data);
    check_eq!(claimed[0].reverse_path, "sender@example.org");
    check_eq!(claimed[1].kind, OutboundKind::Vacation);
    // Leased: nobody else gets them.
    check!(q.claim_outbound(now, 60, 10).await.must()?.is_empty());
    check!(q.queue_list().await.must()?.iter().all(|e| e.leased_until == Some(now + 60)));

    check!(q.finish_attempt(claimed[0].lease, Attempt::Sent).await.must()?);
    check!(!q.finish_attempt(claimed[0].lease, Attempt::Sent).await.must()?, "finished twice");
    let retry = Attempt::RetryAt { next_attempt: now + 100, error: "451 4.3.0 try later".into() };
    check!(q.finish_attempt(claimed[1].lease, retry).await.must()?);
    let listed = q.queue_list().await.must()?;
    check_eq!(listed.len(), 1);
    check_eq!(listed[0].last_error.as_deref(), Some("451 4.3.0 try later"));
    check_eq!((listed[0].attempts, listed[0].next_attempt, listed[0].leased_until), (1, now + 100, None));
    check!(q.claim_outbound(now + 1, 60, 10).await.must()?.is_empty());
    // Flush makes it due now.
    check_eq!(q.flush_queue(None, now + 1).await.must()?, 1);
    check_eq!(q.flush_queue(Some(QueueId(i64::MAX)), now + 1).await.must()?, 0);
    let again = q.claim_outbound(now + 1, 60, 10).await.must()?;
    check_eq!(again.len(), 1);
    check_eq!(again[0].lease.attempt, 2);
    // A stale lease changes nothing.
    check!(!q.finish_attempt(claimed[1].lease, Attempt::Sent).await.must()?);
    let bounce = outbound(owner, OutboundKind::Bounce, "sender@example.org", None, now + 1);
    let failed = Attempt::Failed { error: "550 5.1.1 no such user".into(), bounce: Some(Box::new(bounce)) };
    check!(q.finish_attempt(again[0].lease, failed).await.must()?);
    let listed = q.queue_list().await.must()?;
    check_eq!(listed.len(), 1);
    check_eq!(listed[0].kind, OutboundKind::Bounce);

    // The sent redirect's key is remembered: the same delivery again queues nothing.
    check_eq!(q.enqueue(redirect.clone()).await.must()?, Enqueued::Duplicate);
    // ... until it expires (forgotten at the next claim after `expires`).
    check!(q.delete_queued(listed[0].id).await.must()?);
    check!(!q.delete_queued(listed[0].id).await.must()?);
    check_eq!(q.queue_length().await.must()?, 0);
    check!(q.claim_outbound(redirect.expires, 60, 10).await.must()?.is_empty());
    check!(matches!(q.enqueue(redirect).await.must()?, Enqueued::Queued(_)));

    // Deleting the account drops its entries.
    check_eq!(q.queue_length().await.must()?, 1);
    s.accounts.delete_account(owner).await.must()?;
    check_eq!(q.queue_length().await.must()?, 0);
    Ok(())
}

/// A lease that ran out lets another sender claim the entry (and only the new lease counts);
/// senders claiming at the same time never get the same entry.
pub async fn queue_leases_and_concurrent_claims(s: &Stores) -> Result<(), Failure> {
    let (owner, _) = account(s, "conf-queue-lease").await?;
    let now = 1_700_000_000;
    let q = &s.queue;
    q.enqueue(outbound(owner, OutboundKind::Vacation, "a@example.org", None, now)).await.must()?;
    let first = q.claim_outbound(now, 10, 1).await.must()?;
    check_eq!(first.len(), 1);
    check!(q.claim_outbound(now + 9, 10, 1).await.must()?.is_empty());
    let second = q.claim_outbound(now + 10, 10, 1).await.must()?;
    check_eq!(second.len(), 1);
    check_eq!(second[0].lease.attempt, 2);
    check!(!q.finish_attempt(first[0].lease, Attempt::Sent).await.must()?);
    check!(q.finish_attempt(second[0].lease, Attempt::Sent).await.must()?);

    const ENTRIES: usize = 40;
    for i in 0..ENTRIES {
        let to = format!("r{i}@example.org");
        q.enqueue(outbound(owner, OutboundKind::Redirect, &to, Some(&to), now)).await.must()?;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let q = Arc::clone(&s.queue);
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = q.claim_outbound(now + 100, 60, 3).await?;
                if batch.is_empty() {
                    return Ok::<_, StoreError>(mine);
                }
                mine.extend(batch.into_iter().map(|c| c.lease.id));
            }
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let ids = done.map_err(|e| Failure(format!("a claiming task failed: {e}")))?.must()?;
        all.extend(ids);
    }
    all.sort();
    let claimed = all.len();
    all.dedup();
    check_eq!((claimed, all.len()), (ENTRIES, ENTRIES));
    Ok(())
}

// --- metadata (RFC 5464) ------------------------------------------------------------------------

/// (name, value) pairs of a metadata read, with `&str` names and values for comparison.
fn entries_of(found: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    found.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect()
}

/// NOTIFY (RFC 5465): a listener hears the changes of the mailboxes it registered for, list
/// changes (create, rename, delete, subscribe) of the accounts it registered for, and METADATA
/// changes with their entry names, before each write returns; nothing else.
pub async fn notify_listeners_hear_lists_and_metadata(s: &Stores) -> Result<(), Failure> {
    let (owner, inbox) = account(s, "conf-listen").await?;
    let (other, other_inbox) = account(s, "conf-listen-other").await?;
    let notifier = s.mail.notifier();
    let listener = crate::notify::Listener::new(100);
    notifier.register(&listener, &[inbox], &[owner]);
    s.mail.append(other_inbox, vec![plain("elsewhere")]).await.must()?;
    s.mail.create_mailbox(other, &name("theirs")?, None).await.must()?;
    check!(!listener.has_pending(), "another account's changes reached the listener");
    s.mail.append(inbox, vec![plain("here")]).await.must()?;
    let pending = listener.take();
    check!(pending.mailboxes.contains(&inbox) && !pending.lists, "{pending:?}");
    for step in 0..4 {
        match step {
            0 => drop(s.mail.create_mailbox(owner, &name("listed")?, None).await.must()?),
            1 => s.mail.rename_mailbox(owner, &name("listed")?, &name("renamed")?).await.must()?,
            2 => s.mail.set_subscribed(owner, &name("renamed")?, true).await.must()?,
            _ => {
                let id = mailbox(s, owner, "renamed").await?;
                s.mail.delete_mailbox(owner, id).await.must()?;
            }
        }
        let pending = listener.take();
        check!(pending.lists && pending.mailboxes.is_empty(), "step {step}: {pending:?}");
    }
    let limits = MetadataLimits::default();
    let entries = md(&[("/shared/comment", Some(b"x")), ("/private/comment", Some(b"y"))]);
    s.mail.set_metadata(MetadataPlace::Mailbox(inbox), owner, &entries, limits).await.must()?;
    s.mail.set_metadata(MetadataPlace::Mailbox(other_inbox), other, &entries, limits).await.must()?;
    s.mail
        .set_metadata(MetadataPlace::Server, other, &md(&[("/shared/comment", None)]), limits)
        .await
        .must()?;
    let pending = listener.take();
    let mut got: Vec<(Option<MailboxId>, Option<AccountId>, Vec<String>)> =
        pending.metadata.into_iter().map(|c| (c.mailbox, c.private_to, c.entries)).collect();
    got.sort();
    let expected = vec![
        (None, None, vec!["/shared/comment".to_owned()]),
        (Some(inbox), None, vec!["/shared/comment".to_owned()]),
        (Some(inbox), Some(owner), vec!["/private/comment".to_owned()]),
    ];
    check_eq!(got, expected);
    notifier.unregister(&listener);
    s.mail.append(inbox, vec![plain("after")]).await.must()?;
    check!(!listener.has_pending(), "an unregistered listener heard a change");
    Ok(())
}

/// A SETMETADATA's entries from literals.
fn md(entries: &[(&str, Option<&[u8]>)]) -> Vec<(String, Option<Vec<u8>>)> {
    entries.iter().map(|(n, v)| ((*n).to_owned(), v.map(<[u8]>::to_vec))).collect()
}

/// Shared entries are everybody's, private ones each account's own; DEPTH reaches children or
/// everything below; NIL removes; values are octets (NUL included); server and mailbox entries
/// are apart.
pub async fn metadata_entries(s: &Stores) -> Result<(), Failure> {
    let (owner, inbox) = account(s, "conf-md-owner").await?;
    let (other, other_inbox) = account(s, "conf-md-other").await?;
    let place = MetadataPlace::Mailbox(inbox);
    let limits = MetadataLimits::default();
    let written = s
        .mail
        .set_metadata(
            place,
            owner,
            &md(&[
                ("/shared/comment", Some(b"Shared comment")),
                ("/private/comment", Some(b"My own comment")),
                ("/shared/a", Some(b"a")),
                ("/shared/a/b", Some(b"b")),
                ("/shared/a/b/c", Some(b"c\0d")),
                ("/shared/ab", Some(b"")),
            ]),
            limits,
        )
        .await
        .must()?;
    check_eq!(written, MetadataWrite::Written);
    let read = |account: AccountId, names: &[&str], depth: MetadataDepth| {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mail = Arc::clone(&s.mail);
        async move { mail.metadata(place, account, &names, depth).await }
    };
    let both = read(owner, &["/shared/comment", "/private/comment"], MetadataDepth::Entry).await.must()?;
    check_eq!(
        entries_of(&both),
        vec![("/private/comment", &b"My own comment"[..]), ("/shared/comment", &b"Shared comment"[..])]
    );
    // Another account sees the shared entry, not the owner's private one, and keeps its own.
    let theirs = read(other, &["/shared/comment", "/private/comment"], MetadataDepth::Entry).await.must()?;
    check_eq!(entries_of(&theirs), vec![("/shared/comment", &b"Shared comment"[..])]);
    s.mail.set_metadata(place, other, &md(&[("/private/comment", Some(b"Theirs"))]), limits).await.must()?;
    let theirs = read(other, &["/private/comment"], MetadataDepth::Entry).await.must()?;
    check_eq!(entries_of(&theirs), vec![("/private/comment", &b"Theirs"[..])]);
    let mine = read(owner, &["/private/comment"], MetadataDepth::Entry).await.must()?;
    check_eq!(entries_of(&mine), vec![("/private/comment", &b"My own comment"[..])]);

    // DEPTH (RFC 5464 §4.2.2): "/a" with depth 1 matches "/a/b" but not "/a/b/c"; never "/ab".
    let d0 = read(owner, &["/shared/a"], MetadataDepth::Entry).await.must()?;
    check_eq!(entries_of(&d0), vec![("/shared/a", &b"a"[..])]);
    let d1 = read(owner, &["/shared/a"], MetadataDepth::Children).await.must()?;
    check_eq!(entries_of(&d1), vec![("/shared/a", &b"a"[..]), ("/shared/a/b", &b"b"[..])]);
    let all = read(owner, &["/shared/a"], MetadataDepth::All).await.must()?;
    check_eq!(
        entries_of(&all),
        vec![("/shared/a", &b"a"[..]), ("/shared/a/b", &b"b"[..]), ("/shared/a/b/c", &b"c\0d"[..])]
    );
    let tree = read(owner, &["/shared", "/private", "/shared/a"], MetadataDepth::All).await.must()?;
    check_eq!(tree.len(), 6);
    check!(tree.windows(2).all(|w| w[0].0 < w[1].0), "sorted, each once: {tree:?}");
    check_eq!(read(owner, &["/shared/nothing"], MetadataDepth::All).await.must()?.len(), 0);

    // NIL removes; removing what is not there is no error.
    s.mail
        .set_metadata(place, owner, &md(&[("/shared/ab", None), ("/shared/never", None)]), limits)
        .await
        .must()?;
    check_eq!(read(owner, &["/shared/ab"], MetadataDepth::Entry).await.must()?.len(), 0);

    // Server entries are apart from mailbox entries; private server entries per account.
    let server = MetadataPlace::Server;
    s.mail.set_metadata(server, owner, &md(&[("/shared/conf-md", None)]), limits).await.must()?;
    s.mail
        .set_metadata(server, owner, &md(&[("/private/comment", Some(b"server note"))]), limits)
        .await
        .must()?;
    let names = ["/private/comment".to_owned(), "/shared/conf-md".to_owned()];
    let on_server = s.mail.metadata(server, owner, &names, MetadataDepth::Entry).await.must()?;
    check_eq!(entries_of(&on_server), vec![("/private/comment", &b"server note"[..])]);
    check!(s.mail.metadata(server, other, &names, MetadataDepth::Entry).await.must()?.is_empty());
    s.mail.set_metadata(server, other, &md(&[("/shared/conf-md", Some(b"for all"))]), limits).await.must()?;
    let shared = s.mail.metadata(server, owner, &names, MetadataDepth::Entry).await.must()?;
    check_eq!(shared.len(), 2);
    s.mail.set_metadata(server, other, &md(&[("/shared/conf-md", None)]), limits).await.must()?;
    let other_place = MetadataPlace::Mailbox(other_inbox);
    check!(s.mail.metadata(other_place, owner, &names, MetadataDepth::All).await.must()?.is_empty());
    Ok(())
}

/// `TOOMANY` (RFC 5464 §4.3): a write that would grow a group or an account past its limit
/// writes nothing at all; replacing and removing still work at or above the limit.
pub async fn metadata_limits(s: &Stores) -> Result<(), Failure> {
    let (owner, inbox) = account(s, "conf-md-limits").await?;
    let (other, _) = account(s, "conf-md-limits-other").await?;
    let place = MetadataPlace::Mailbox(inbox);
    let limits = MetadataLimits { max_entries: 3, max_account_entries: 5 };
    let set = |account: AccountId, entries: Vec<(String, Option<Vec<u8>>)>, limits: MetadataLimits| {
        let mail = Arc::clone(&s.mail);
        async move { mail.set_metadata(place, account, &entries, limits).await }
    };
    let three = md(&[("/shared/1", Some(b"1")), ("/shared/2", Some(b"2")), ("/shared/3", Some(b"3"))]);
    check_eq!(set(owner, three, limits).await.must()?, MetadataWrite::Written);
    // One more shared entry: refused, and the replacement beside it is not written either.
    let fourth = md(&[("/shared/1", Some(b"changed")), ("/shared/4", Some(b"4"))]);
    check_eq!(set(owner, fourth, limits).await.must()?, MetadataWrite::TooMany);
    let one = s.mail.metadata(place, owner, &["/shared/1".to_owned()], MetadataDepth::Entry).await.must()?;
    check_eq!(entries_of(&one), vec![("/shared/1", &b"1"[..])]);
    // Replace one and remove one while adding one: the count stays at the limit.
    let swap = md(&[("/shared/1", Some(b"x")), ("/shared/2", None), ("/shared/4", Some(b"4"))]);
    check_eq!(set(owner, swap, limits).await.must()?, MetadataWrite::Written);
    // A name given twice counts once.
    let twice = md(&[("/private/p", Some(b"a")), ("/private/p", Some(b"b"))]);
    check_eq!(set(owner, twice, limits).await.must()?, MetadataWrite::Written);
    // Private entries are a group of their own, but count in the owner's total (3 + 1 + 1 = 5).
    check_eq!(set(other, md(&[("/private/q", Some(b"q"))]), limits).await.must()?, MetadataWrite::Written);
    check_eq!(set(owner, md(&[("/private/r", Some(b"r"))]), limits).await.must()?, MetadataWrite::TooMany);
    let server = s
        .mail
        .set_metadata(MetadataPlace::Server, owner, &md(&[("/private/r", Some(b"r"))]), limits)
        .await
        .must()?;
    check_eq!(server, MetadataWrite::TooMany);
    // A lowered limit: what is stored stays and can be replaced or removed, not added to.
    let tight = MetadataLimits { max_entries: 1, max_account_entries: 5 };
    check_eq!(set(owner, md(&[("/shared/3", Some(b"new"))]), tight).await.must()?, MetadataWrite::Written);
    check_eq!(set(owner, md(&[("/shared/5", Some(b"5"))]), tight).await.must()?, MetadataWrite::TooMany);
    check_eq!(set(owner, md(&[("/shared/3", None)]), tight).await.must()?, MetadataWrite::Written);
    Ok(())
}

/// Entries follow a renamed mailbox, are copied when INBOX is renamed (RFC 5464 §4.1), go with
/// a deleted mailbox (a new one of the same name has none) and with a deleted account.
pub async fn metadata_follows_mailboxes_and_accounts(s: &Stores) -> Result<(), Failure> {
    let (owner, inbox) = account(s, "conf-md-follow").await?;
    let (guest, _) = account(s, "conf-md-follow-guest").await?;
    let limits = MetadataLimits::default();
    let names = vec!["/shared/comment".to_owned(), "/private/comment".to_owned()];
    let comment = md(&[("/shared/comment", Some(b"c")), ("/private/comment", Some(b"p"))]);
    s.mail.create_mailbox(owner, &name("Old")?, None).await.must()?;
    let old = mailbox(s, owner, "Old").await?;
    s.mail.set_metadata(MetadataPlace::Mailbox(old), owner, &comment, limits).await.must()?;
    s.mail.set_metadata(MetadataPlace::Mailbox(inbox), owner, &comment, limits).await.must()?;
    s.mail.set_metadata(MetadataPlace::Mailbox(inbox), guest, &comment[1..], limits).await.must()?;

    s.mail.rename_mailbox(owner, &name("Old")?, &name("New")?).await.must()?;
    let new = mailbox(s, owner, "New").await?;
    let moved =
        s.mail.metadata(MetadataPlace::Mailbox(new), owner, &names, MetadataDepth::Entry).await.must()?;
    check_eq!(moved.len(), 2);

    s.mail.rename_mailbox(owner, &name("INBOX")?, &name("Was-Inbox")?).await.must()?;
    let was = mailbox(s, owner, "Was-Inbox").await?;
    for mailbox in [inbox, was] {
        let kept =
            s.mail.metadata(MetadataPlace::Mailbox(mailbox), owner, &names, MetadataDepth::Entry).await;
        check_eq!(kept.must()?.len(), 2);
    }
    let guest_copy = s.mail.metadata(MetadataPlace::Mailbox(was), guest, &names, MetadataDepth::Entry).await;
    check_eq!(guest_copy.must()?.len(), 2);

    s.mail.delete_mailbox(owner, new).await.must()?;
    must_fail(s.mail.set_metadata(MetadataPlace::Mailbox(new), owner, &comment, limits).await, |e| {
        matches!(e, StoreError::NotFound)
    })?;
    check!(
        s.mail
            .metadata(MetadataPlace::Mailbox(new), owner, &names, MetadataDepth::All)
            .await
            .must()?
            .is_empty()
    );
    s.mail.create_mailbox(owner, &name("New")?, None).await.must()?;
    let again = mailbox(s, owner, "New").await?;
    check!(
        s.mail
            .metadata(MetadataPlace::Mailbox(again), owner, &names, MetadataDepth::All)
            .await
            .must()?
            .is_empty()
    );

    // The guest goes: its private entry on the owner's INBOX and its server entries with it.
    s.mail
        .set_metadata(MetadataPlace::Server, guest, &md(&[("/private/x", Some(b"x"))]), limits)
        .await
        .must()?;
    s.accounts.delete_account(guest).await.must()?;
    let left =
        s.mail.metadata(MetadataPlace::Mailbox(inbox), guest, &names, MetadataDepth::Entry).await.must()?;
    check_eq!(entries_of(&left), vec![("/shared/comment", &b"c"[..])]);
    let server =
        s.mail.metadata(MetadataPlace::Server, guest, &["/private".to_owned()], MetadataDepth::All).await;
    check!(server.must()?.is_empty());
    Ok(())
}

/// URLAUTH access keys (RFC 4467 §6): made once per user and mailbox (the first writer wins),
/// reset per mailbox or all at once, gone with the mailbox and with the account.
pub async fn urlauth_keys(s: &Stores) -> Result<(), Failure> {
    let (owner, inbox) = account(s, "conf-urlauth").await?;
    let (guest, _) = account(s, "conf-urlauth-guest").await?;
    s.mail.create_mailbox(owner, &name("Drafts-UA")?, None).await.must()?;
    let drafts = mailbox(s, owner, "Drafts-UA").await?;
    check_eq!(s.mail.urlauth_key(owner, inbox, None).await.must()?, None);
    check_eq!(s.mail.urlauth_key(owner, inbox, Some(b"first")).await.must()?, Some(b"first".to_vec()));
    check_eq!(s.mail.urlauth_key(owner, inbox, Some(b"second")).await.must()?, Some(b"first".to_vec()));
    check_eq!(s.mail.urlauth_key(owner, inbox, None).await.must()?, Some(b"first".to_vec()));
    // Per user: the guest's key for the same mailbox is its own.
    check_eq!(s.mail.urlauth_key(guest, inbox, Some(b"guest")).await.must()?, Some(b"guest".to_vec()));
    s.mail.urlauth_key(owner, drafts, Some(b"drafts")).await.must()?;

    s.mail.reset_urlauth_keys(owner, Some(inbox)).await.must()?;
    check_eq!(s.mail.urlauth_key(owner, inbox, None).await.must()?, None);
    check_eq!(s.mail.urlauth_key(owner, drafts, None).await.must()?, Some(b"drafts".to_vec()));
    check_eq!(s.mail.urlauth_key(guest, inbox, None).await.must()?, Some(b"guest".to_vec()));
    s.mail.urlauth_key(owner, inbox, Some(b"again")).await.must()?;
    s.mail.reset_urlauth_keys(owner, None).await.must()?;
    check_eq!(s.mail.urlauth_key(owner, inbox, None).await.must()?, None);
    check_eq!(s.mail.urlauth_key(owner, drafts, None).await.must()?, None);

    s.mail.urlauth_key(owner, drafts, Some(b"drafts")).await.must()?;
    s.mail.delete_mailbox(owner, drafts).await.must()?;
    must_fail(s.mail.urlauth_key(owner, drafts, None).await, |e| matches!(e, StoreError::NotFound))?;
    s.mail.create_mailbox(owner, &name("Drafts-UA")?, None).await.must()?;
    let again = mailbox(s, owner, "Drafts-UA").await?;
    check_eq!(s.mail.urlauth_key(owner, again, None).await.must()?, None);

    s.accounts.delete_account(guest).await.must()?;
    let (guest, _) = account(s, "conf-urlauth-guest").await?;
    check_eq!(s.mail.urlauth_key(guest, inbox, None).await.must()?, None);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days(1970, 1, 1), 0);
        assert_eq!(days(2000, 3, 1), 11_017);
        assert_eq!(days(2024, 3, 10), 19_792);
        assert_eq!(days(1969, 12, 31), -1);
    }
}
