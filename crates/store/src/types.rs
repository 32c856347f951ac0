//! Domain types of the mail store: identifiers, flags, mailbox and message metadata.
//!
//! These are the nouns every backend speaks. None of them is IMAP syntax: the session turns them into
//! responses, the backends into rows.

use std::num::NonZeroU32;
use std::ops::RangeInclusive;
use std::sync::Arc;

pub use postfach_message::MessageSummary;

/// An account's primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

/// A mailbox's primary key. Never reused for another mailbox, so it also serves as RFC 8474 MAILBOXID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId(pub i64);

/// A mailbox name as the store keeps it: decoded Unicode, `/`-separated, with every spelling of
/// INBOX as the first level folded to `INBOX` (RFC 9051 §5.1). Validated once, at construction,
/// against the one set of rules below; the session builds it from the wire, delivery from a Sieve
/// `fileinto` or an address's `+detail`, the admin CLI from its argument.
///
/// The rules of every name (existing, looked up, subscribed):
/// - not empty, at most [`MailboxName::MAX_BYTES`] bytes of UTF-8;
/// - at most [`MailboxName::MAX_DEPTH`] hierarchy levels, none of them empty (no leading,
///   trailing or doubled `/`);
/// - no control characters (they would break LIST output and the store's rename parking).
///
/// Names that are to be *made* (CREATE, RENAME's target, `fileinto :create`) must also pass
/// [`MailboxName::check_creatable`]: no LIST wildcards `*` or `%` (RFC 9051 §5.1). The wildcard
/// rule is a check rather than part of the type so that a name made before the rule (or by an
/// older version) can still be selected, renamed and deleted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxName(String);

/// Why a string is not a [`MailboxName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("empty mailbox name")]
    Empty,
    /// More than [`MailboxName::MAX_BYTES`] bytes.
    #[error("mailbox name too long")]
    TooLong,
    /// More than [`MailboxName::MAX_DEPTH`] levels.
    #[error("mailbox name too deep")]
    TooDeep,
    /// A leading, trailing or doubled delimiter.
    #[error("empty hierarchy level in mailbox name")]
    EmptyLevel,
    /// A control character.
    #[error("control character in mailbox name")]
    ControlChar,
    /// `*` or `%` in a name to be made (RFC 9051 §5.1).
    #[error("'*' and '%' are not allowed in mailbox names")]
    Wildcard,
}

impl MailboxName {
    /// Longest name, in bytes of UTF-8. Names travel in every LIST response; a bound keeps a
    /// hostile client from storing megabytes in the mailbox list.
    pub const MAX_BYTES: usize = 1000;
    /// Most hierarchy levels: deep enough for any real folder tree, shallow enough that walking
    /// the superiors (CREATE makes them, RFC 9051 §6.3.4) stays cheap.
    pub const MAX_DEPTH: usize = 32;
    /// The hierarchy delimiter.
    pub const DELIMITER: char = '/';
    /// The inbox's name, always spelled so.
    pub const INBOX: &'static str = "INBOX";

    /// Checks `name` and folds a leading `inbox` (any case, alone or followed by the delimiter)
    /// to `INBOX`.
    pub fn new(name: &str) -> Result<MailboxName, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > Self::MAX_BYTES {
            return Err(NameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::ControlChar);
        }
        if name.split(Self::DELIMITER).count() > Self::MAX_DEPTH {
            return Err(NameError::TooDeep);
        }
        if name.split(Self::DELIMITER).any(str::is_empty) {
            return Err(NameError::EmptyLevel);
        }
        let mut name = name.to_owned();
        let first = name.split(Self::DELIMITER).next().unwrap_or_default();
        if first.eq_ignore_ascii_case(Self::INBOX) {
            name.replace_range(..Self::INBOX.len(), Self::INBOX);
        }
        Ok(MailboxName(name))
    }

    /// The inbox.
    pub fn inbox() -> MailboxName {
        MailboxName(Self::INBOX.to_owned())
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the inbox itself (not for mailboxes below it).
    pub fn is_inbox(&self) -> bool {
        self.0 == Self::INBOX
    }

    /// The extra rule for names that are to be made: no LIST wildcards (RFC 9051 §5.1).
    pub fn check_creatable(&self) -> Result<(), NameError> {
        if self.0.contains(['*', '%']) {
            return Err(NameError::Wildcard);
        }
        Ok(())
    }

    /// The superiors of this name, outermost first (`a/b/c` → `a`, `a/b`).
    pub fn ancestors(&self) -> impl Iterator<Item = MailboxName> + '_ {
        self.0.match_indices(Self::DELIMITER).map(|(at, _)| MailboxName(self.0[..at].to_owned()))
    }

    /// True when `other` is strictly below this name in the hierarchy.
    pub fn is_ancestor_of(&self, other: &MailboxName) -> bool {
        other.0.strip_prefix(&self.0).is_some_and(|rest| rest.starts_with(Self::DELIMITER))
    }
}

impl std::fmt::Display for MailboxName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for MailboxName {
    type Error = NameError;
    fn try_from(name: &str) -> Result<Self, NameError> {
        MailboxName::new(name)
    }
}

impl AsRef<str> for MailboxName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for MailboxName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for MailboxName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A message UID (RFC 9051 §2.3.1.1): non-zero, strictly ascending within a mailbox, never reused.
///
/// Zero cannot be built: [`Uid::new`] says `None` for it, so every place that makes a UID from
/// the wire or from a row decides what a zero means there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(NonZeroU32);

impl Uid {
    /// The first UID of every mailbox.
    pub const MIN: Uid = Uid(NonZeroU32::MIN);
    /// The largest UID.
    pub const MAX: Uid = Uid(NonZeroU32::MAX);

    /// The UID `n`; `None` for zero, which is no UID.
    pub const fn new(n: u32) -> Option<Uid> {
        match NonZeroU32::new(n) {
            Some(n) => Some(Uid(n)),
            None => None,
        }
    }

    /// The UID as a number (never zero).
    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// The next UID, `None` after [`Uid::MAX`].
    pub fn next(self) -> Option<Uid> {
        self.0.checked_add(1).map(Uid)
    }
}

/// UIDNEXT of an empty, new mailbox.
impl Default for Uid {
    fn default() -> Self {
        Uid::MIN
    }
}

impl std::fmt::Display for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A mailbox's UIDVALIDITY (RFC 9051 §2.3.1.1). Changes only when the mailbox is really recreated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UidValidity(pub u32);

/// A modification sequence (RFC 7162): per mailbox, bumped by every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ModSeq(pub u64);

/// A set of UIDs as sorted, non-overlapping, non-adjacent inclusive ranges.
///
/// Large sets (`1:*` on a million-message mailbox) cost one range, not a million entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UidSet {
    ranges: Vec<RangeInclusive<u32>>,
}

impl UidSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a set from arbitrary ranges: sorts, drops empty ranges and UID 0, merges.
    pub fn from_ranges(ranges: impl IntoIterator<Item = RangeInclusive<u32>>) -> Self {
        let mut v: Vec<RangeInclusive<u32>> = ranges
            .into_iter()
            .filter_map(|r| {
                let (a, b) = (*r.start().max(&1), *r.end());
                (a <= b).then_some(a..=b)
            })
            .collect();
        v.sort_by_key(|r| *r.start());
        let mut merged: Vec<RangeInclusive<u32>> = Vec::with_capacity(v.len());
        for r in v {
            if let Some(last) = merged.last_mut()
                && *r.start() <= last.end().saturating_add(1)
            {
                if r.end() > last.end() {
                    *last = *last.start()..=*r.end();
                }
                continue;
            }
            merged.push(r);
        }
        Self { ranges: merged }
    }

    /// Builds a set from individual UIDs in any order.
    pub fn from_uids(uids: impl IntoIterator<Item = Uid>) -> Self {
        Self::from_ranges(uids.into_iter().map(|u| u.get()..=u.get()))
    }

    /// The ranges, ascending.
    pub fn ranges(&self) -> &[RangeInclusive<u32>] {
        &self.ranges
    }

    /// True when no UID is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of UIDs in the set.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|r| u64::from(r.end() - r.start()) + 1).sum()
    }

    /// The UIDs of the set inside `bounds`.
    pub fn clipped(&self, bounds: RangeInclusive<u32>) -> UidSet {
        let (lo, hi) = (*bounds.start(), *bounds.end());
        let first = self.ranges.partition_point(|r| *r.end() < lo);
        let ranges = self.ranges[first..]
            .iter()
            .take_while(|r| *r.start() <= hi)
            .map(|r| (*r.start()).max(lo)..=(*r.end()).min(hi))
            .filter(|r| r.start() <= r.end())
            .collect();
        UidSet { ranges }
    }

    /// Appends `uid` above every UID in the set (ignored otherwise): builds a set from an
    /// ascending stream in one pass, one range per run.
    pub fn push_ascending(&mut self, uid: Uid) {
        let uid = uid.get();
        match self.ranges.last_mut() {
            Some(last) if *last.end() >= uid => {}
            Some(last) if last.end().checked_add(1) == Some(uid) => *last = *last.start()..=uid,
            _ => self.ranges.push(uid..=uid),
        }
    }

    /// True when `uid` is in the set (binary search over the ranges).
    pub fn contains(&self, uid: Uid) -> bool {
        let uid = uid.get();
        self.ranges
            .binary_search_by(|r| {
                if *r.end() < uid {
                    std::cmp::Ordering::Less
                } else if *r.start() > uid {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    }

    /// Every UID in the set, ascending. Lazy: a huge range costs nothing until iterated.
    pub fn iter(&self) -> impl Iterator<Item = Uid> + '_ {
        // The ranges never hold 0 (`from_ranges` drops it), so `filter_map` drops nothing.
        self.ranges.iter().flat_map(|r| r.clone().filter_map(Uid::new))
    }
}

/// The five system flags of RFC 9051 §2.3.2 that are stored per message (\Recent is not stored:
/// it is a session property in IMAP4rev1 and gone in IMAP4rev2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SystemFlags(pub u8);

impl SystemFlags {
    /// `\Seen`
    pub const SEEN: SystemFlags = SystemFlags(1);
    /// `\Answered`
    pub const ANSWERED: SystemFlags = SystemFlags(2);
    /// `\Flagged`
    pub const FLAGGED: SystemFlags = SystemFlags(4);
    /// `\Deleted`
    pub const DELETED: SystemFlags = SystemFlags(8);
    /// `\Draft`
    pub const DRAFT: SystemFlags = SystemFlags(16);
    /// All of them, in the order IMAP lists them.
    pub const ALL: [(SystemFlags, &'static str); 5] = [
        (Self::ANSWERED, "\\Answered"),
        (Self::FLAGGED, "\\Flagged"),
        (Self::DELETED, "\\Deleted"),
        (Self::SEEN, "\\Seen"),
        (Self::DRAFT, "\\Draft"),
    ];

    /// True when every bit of `other` is set here.
    pub fn contains(self, other: SystemFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Union.
    pub fn union(self, other: SystemFlags) -> SystemFlags {
        SystemFlags(self.0 | other.0)
    }
    /// Difference.
    pub fn without(self, other: SystemFlags) -> SystemFlags {
        SystemFlags(self.0 & !other.0)
    }
}

/// A message's flags: system flags plus keywords (RFC 9051 §2.3.2).
///
/// Keywords are kept sorted and unique, compared case-insensitively (RFC 9051 §2.3.2 treats flag names
/// case-insensitively); the spelling first seen is kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flags {
    /// `\Seen`, `\Answered`, ...
    pub system: SystemFlags,
    /// Keywords such as `$Forwarded` or `$Junk`.
    pub keywords: Vec<String>,
}

impl Flags {
    /// Normalises keywords: sorted by their lowercase form, duplicates removed.
    pub fn normalise(&mut self) {
        self.keywords.sort_by_key(|k| k.to_ascii_lowercase());
        self.keywords.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    }

    /// Applies a STORE operation and returns the result.
    pub fn apply(&self, op: FlagOp, change: &Flags) -> Flags {
        let mut out = match op {
            FlagOp::Replace => change.clone(),
            FlagOp::Add => {
                let mut f = self.clone();
                f.system = f.system.union(change.system);
                f.keywords.extend(change.keywords.iter().cloned());
                f
            }
            FlagOp::Remove => {
                let mut f = self.clone();
                f.system = f.system.without(change.system);
                f.keywords.retain(|k| !change.keywords.iter().any(|c| c.eq_ignore_ascii_case(k)));
                f
            }
        };
        out.normalise();
        out
    }

    /// True when the keyword is set (case-insensitive).
    pub fn has_keyword(&self, keyword: &str) -> bool {
        self.keywords.iter().any(|k| k.eq_ignore_ascii_case(keyword))
    }
}

/// How STORE changes flags (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
    /// `FLAGS`
    Replace,
}

/// RFC 6154 special-use attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    /// `\All`
    All,
    /// `\Archive`
    Archive,
    /// `\Drafts`
    Drafts,
    /// `\Flagged`
    Flagged,
    /// `\Junk`
    Junk,
    /// `\Sent`
    Sent,
    /// `\Trash`
    Trash,
}

impl SpecialUse {
    /// The attribute as IMAP spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    /// Parses an attribute, case-insensitively.
    pub fn parse(s: &str) -> Option<SpecialUse> {
        [
            SpecialUse::All,
            SpecialUse::Archive,
            SpecialUse::Drafts,
            SpecialUse::Flagged,
            SpecialUse::Junk,
            SpecialUse::Sent,
            SpecialUse::Trash,
        ]
        .into_iter()
        .find(|u| u.as_str().eq_ignore_ascii_case(s))
    }
}

/// A message's internal date (RFC 9051 §2.3.3): an instant plus the zone it was given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InternalDate {
    /// Seconds since the Unix epoch.
    pub unix: i64,
    /// The zone offset the date is shown in, in minutes east of UTC.
    pub offset_minutes: i16,
}

/// An account as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Primary key.
    pub id: AccountId,
    /// Login name, unique, compared case-insensitively.
    pub name: String,
    /// The argon2id PHC string of the password.
    pub password_hash: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: i64,
    /// A person (logs in) or a team (cannot log in; shared namespace).
    pub kind: crate::acl::AccountKind,
}

/// One mailbox in an account's mailbox list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Primary key.
    pub id: MailboxId,
    /// Full hierarchical name, `/`-separated, UTF-8; the inbox is always `INBOX`.
    pub name: String,
    /// RFC 6154 attribute, if any.
    pub special_use: Option<SpecialUse>,
    /// Whether the account subscribed to it.
    pub subscribed: bool,
}

/// Counters of a mailbox, as STATUS and SELECT report them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxStatus {
    /// Primary key.
    pub id: MailboxId,
    /// UIDVALIDITY.
    pub uid_validity: UidValidity,
    /// The UID the next message will get.
    pub uid_next: Uid,
    /// Number of messages.
    pub messages: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// Messages with `\Deleted`.
    pub deleted: u32,
    /// Sum of message sizes in bytes (RFC 9051 STATUS SIZE).
    pub size: u64,
    /// Messages that no session has claimed as recent yet (IMAP4rev1 `\Recent`).
    pub recent: u32,
    /// Highest modification sequence of the mailbox.
    pub highest_modseq: ModSeq,
}

/// Whether SELECT claims the mailbox's recent messages for this session (IMAP4rev1 §2.3.2: only one
/// session sees a message as `\Recent`; EXAMINE does not claim them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRecent {
    /// SELECT: take the recent messages and clear them for everybody else.
    Claim,
    /// EXAMINE, STATUS: look only.
    Peek,
}

/// What SELECT/EXAMINE needs: counters, the UID list for sequence numbers, and the keywords in use.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The counters at the moment of the snapshot.
    pub status: MailboxStatus,
    /// Every message's UID (the `n`-th is sequence number `n`), as ranges: a mailbox costs one
    /// range per run of consecutive UIDs, not one entry per message.
    pub uids: UidSet,
    /// Keywords defined in this mailbox (for FLAGS and PERMANENTFLAGS).
    pub keywords: Vec<String>,
    /// UIDs this session claimed as recent (empty unless `ClaimRecent::Claim`).
    pub recent: UidSet,
    /// UID of the first message without `\Seen`.
    pub first_unseen: Option<Uid>,
}

/// A message to add to a mailbox (the one ingest path: APPEND, delivery, restore).
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The message exactly as received. `Bytes` so APPEND can hand over the framed command's
    /// buffer itself (a slice of it, no copy); `Bytes::from(Vec)` is free too.
    pub raw: bytes::Bytes,
    /// Initial flags.
    pub flags: Flags,
    /// Internal date; `None` means now.
    pub internal_date: Option<InternalDate>,
}

/// Where a message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// UIDVALIDITY of the target mailbox.
    pub uid_validity: UidValidity,
    /// The message's new UID.
    pub uid: Uid,
    /// Modification sequence of the change.
    pub modseq: ModSeq,
}

/// Which per-message data a fetch should load. Loading the summary costs a blob decode per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchWant {
    /// Load the parsed summary (ENVELOPE, BODYSTRUCTURE, section offsets).
    pub summary: bool,
}

/// A message's metadata.
#[derive(Debug, Clone)]
pub struct MessageMeta {
    /// UID.
    pub uid: Uid,
    /// Current flags.
    pub flags: Flags,
    /// Internal date.
    pub internal_date: InternalDate,
    /// RFC822.SIZE.
    pub size: u32,
    /// Modification sequence of the last change to this message.
    pub modseq: ModSeq,
    /// The parsed summary when asked for.
    pub summary: Option<Arc<MessageSummary>>,
}

/// The result of a STORE.
#[derive(Debug, Clone, Default)]
pub struct FlagsUpdated {
    /// Messages whose flags changed (or were matched, for a no-op change): uid, new flags, modseq.
    pub updated: Vec<(Uid, Flags, ModSeq)>,
    /// Messages left alone because their modseq was above UNCHANGEDSINCE (RFC 7162 §3.1.3).
    pub modified: Vec<Uid>,
    /// The mailbox's highest modseq before this change (lets a session know whether anybody else
    /// changed the mailbox in between).
    pub modseq_before: ModSeq,
    /// The mailbox's highest modseq after this change.
    pub modseq_after: ModSeq,
}

/// The result of COPY or MOVE (RFC 4315 COPYUID).
#[derive(Debug, Clone, Default)]
pub struct Copied {
    /// UIDVALIDITY of the target mailbox (0 if nothing was copied).
    pub uid_validity: UidValidity,
    /// Source UID → new UID in the target, in source order.
    pub mapping: Vec<(Uid, Uid)>,
}

/// What changed in a mailbox since a modseq: the material for EXISTS, EXPUNGE and FETCH FLAGS
/// updates, IDLE and (later) QRESYNC. Its size follows the changes, not the mailbox.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Highest modseq covered by this answer.
    pub highest_modseq: ModSeq,
    /// UIDNEXT now.
    pub uid_next: Uid,
    /// Messages added with UID ≥ the caller's `known_uid_next`, ascending (and not expunged since).
    pub added: Vec<Uid>,
    /// Messages below `known_uid_next` whose flags changed after `since`: uid, flags, modseq.
    pub flags: Vec<(Uid, Flags, ModSeq)>,
    /// Messages below `known_uid_next` expunged after `since`, ascending (the caller never saw
    /// the others, and they are not in `added` either).
    pub expunged: Vec<Uid>,
    /// When messages were added or flags changed: every keyword the mailbox knows (a superset
    /// of the keywords of its messages), so that the session can announce new ones in FLAGS
    /// before any FETCH carries them (RFC 9051 §7.3.5). Empty otherwise.
    pub keywords: Vec<String>,
}

/// A search criterion in store terms (sequence numbers already turned into UIDs by the session).
/// RFC 9051 §6.4.4 semantics.
#[derive(Debug, Clone, PartialEq)]
pub enum Criterion {
    /// Every message.
    All,
    /// UID in set.
    Uids(UidSet),
    /// All of these system flags set.
    FlagSet(SystemFlags),
    /// None of these system flags set.
    FlagUnset(SystemFlags),
    /// Keyword set.
    Keyword(String),
    /// Keyword not set.
    NoKeyword(String),
    /// Internal date (in its own zone's calendar day) before this day (days since epoch).
    Before(i64),
    /// Internal date on this day.
    On(i64),
    /// Internal date on or after this day.
    Since(i64),
    /// Date: header before this day.
    SentBefore(i64),
    /// Date: header on this day.
    SentOn(i64),
    /// Date: header on or after this day.
    SentSince(i64),
    /// Internal date older than this many seconds (RFC 5032).
    Older(u64),
    /// Internal date younger than this many seconds (RFC 5032).
    Younger(u64),
    /// Saved in the mailbox before this day, UTC (RFC 8514 SAVEDBEFORE); messages without a
    /// recorded save date count with their internal date, as FETCH SAVEDATE reports them.
    SavedBefore(i64),
    /// Saved on this day (RFC 8514 SAVEDON).
    SavedOn(i64),
    /// Saved on or after this day (RFC 8514 SAVEDSINCE).
    SavedSince(i64),
    /// The message's EMAILID is this (RFC 8474).
    EmailId(String),
    /// Size above.
    Larger(u32),
    /// Size below.
    Smaller(u32),
    /// Header field (lowercase name) contains substring (case-insensitive); empty value = header exists.
    Header(String, String),
    /// Body text contains substring.
    Body(String),
    /// Header or body contains substring.
    Text(String),
    /// Message modseq ≥.
    ModSeqAtLeast(ModSeq),
    /// Negation.
    Not(Box<Criterion>),
    /// Conjunction.
    And(Vec<Criterion>),
    /// Disjunction.
    Or(Box<Criterion>, Box<Criterion>),
}

/// A SORT key (RFC 5256 §3, RFC 5957 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// Internal date and time.
    Arrival,
    /// addr-mailbox of the first Cc address.
    Cc,
    /// Sent date and time (the internal date when `Date:` does not parse).
    Date,
    /// addr-mailbox of the first From address.
    From,
    /// RFC822.SIZE.
    Size,
    /// Base subject (RFC 5256 §2.1).
    Subject,
    /// addr-mailbox of the first To address.
    To,
    /// Display name (else address) of the first From address (RFC 5957).
    DisplayFrom,
    /// Display name (else address) of the first To address (RFC 5957).
    DisplayTo,
}

/// Which way one SORT key orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortDirection {
    /// Smallest first.
    Ascending,
    /// `REVERSE`: largest first (RFC 5256: only this key, not the implicit UID order).
    Descending,
}

/// One SORT criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortCriterion {
    /// What to compare.
    pub key: SortKey,
    /// Which way.
    pub direction: SortDirection,
}

/// What THREAD (RFC 5256) needs to know about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadFacts {
    /// The message.
    pub uid: Uid,
    /// Sent date (RFC 5256 §2.2), Unix seconds; the internal date when `Date:` does not parse.
    pub sent_date: i64,
    /// Base subject, case-folded (RFC 5256 §2.1).
    pub base_subject: String,
    /// Extracting the base subject removed a reply or forward marker.
    pub is_reply: bool,
    /// Normalised Message-ID, if the message has a valid one.
    pub message_id: Option<String>,
    /// Normalised references, oldest first (References, else the first In-Reply-To id).
    pub references: Vec<String>,
}

/// Per-message FETCH data kept beside the message: EMAILID (RFC 8474), SAVEDATE (RFC 8514) and
/// PREVIEW (RFC 8970).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExtras {
    /// The message.
    pub uid: Uid,
    /// RFC 8474 EMAILID: derived from the message's bytes, so copies and moves keep it and
    /// different messages do not share it (up to a 128-bit hash collision).
    pub email_id: String,
    /// When the message was put into this mailbox; the internal date for messages stored before
    /// save dates were recorded.
    pub save_date: InternalDate,
    /// Preview text (RFC 8970), at most 200 characters; empty when there is no text.
    pub preview: String,
}

// --- credentials beside the password (issue 5) -------------------------------------------------

/// An account password's SCRAM verifier (RFC 5802 §3): what SCRAM-SHA-256 needs instead of the
/// password. Made from the password when it is set; `Debug` hides the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// Salt.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// An account's TOTP second factor (RFC 6238). `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSettings {
    /// The shared secret (it cannot be hashed: the server computes codes from it).
    pub secret: Vec<u8>,
    /// False while enrolment waits for the first code; only confirmed settings take effect.
    pub confirmed: bool,
    /// Whether "password followed by the current code" opens IMAP (besides app passwords).
    pub password_plus_code: PasswordPlusCode,
    /// The time step of the last accepted code (replay protection); `None` before the first.
    pub last_step: Option<u64>,
    /// When enrolment started, Unix seconds.
    pub created: i64,
}

impl std::fmt::Debug for TotpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpSettings")
            .field("confirmed", &self.confirmed)
            .field("password_plus_code", &self.password_plus_code)
            .field("last_step", &self.last_step)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// Whether an account with TOTP accepts the password with the current code appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordPlusCode {
    /// Only app passwords open IMAP.
    Refused,
    /// `password123456` opens IMAP too.
    Allowed,
}

/// An app password's primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppPasswordId(pub i64);

/// A per-device password of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    /// Primary key.
    pub id: AppPasswordId,
    /// The account it opens.
    pub account: AccountId,
    /// The operator's name for it ("iPhone"), unique per account.
    pub label: String,
    /// Its digest (never the password).
    pub hash: String,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Last successful login with it, Unix seconds.
    pub last_used: Option<i64>,
    /// The client address of that login.
    pub last_address: Option<String>,
}

/// A client address blocked from logging in after too many failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressBlock {
    /// The address (IPv4, or an IPv6 /64 prefix written as `2001:db8:1:2::/64`).
    pub address: String,
    /// Blocked until then, Unix seconds.
    pub until: i64,
    /// When the block started, Unix seconds.
    pub created: i64,
    /// Why (for `postfach ban list`).
    pub reason: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_clip_count_and_grow_in_runs() {
        let mut set = UidSet::new();
        for uid in [1, 2, 3, 3, 2, 7, 8, 10] {
            set.push_ascending(Uid::new(uid).unwrap());
        }
        assert_eq!(Uid::new(0), None);
        assert_eq!(Uid::MAX.next(), None);
        assert_eq!(set.ranges(), &[1..=3, 7..=8, 10..=10]);
        assert_eq!(set.len(), 6);
        assert_eq!(set.clipped(2..=7).ranges(), &[2..=3, 7..=7]);
        assert_eq!(set.clipped(4..=6).len(), 0);
        assert_eq!(set.clipped(9..=u32::MAX).ranges(), &[10..=10]);
        assert_eq!(UidSet::from_ranges([1..=u32::MAX]).len(), u64::from(u32::MAX));
    }

    #[test]
    fn mailbox_names_are_checked_once_and_fold_inbox() {
        assert_eq!(MailboxName::new("a/b").map(|n| n.to_string()), Ok("a/b".to_owned()));
        assert!(MailboxName::new("Entwürfe").is_ok());
        assert_eq!(MailboxName::new("inbox").map(|n| n.is_inbox()), Ok(true));
        assert_eq!(MailboxName::new("Inbox/Sub").unwrap().as_str(), "INBOX/Sub");
        assert_eq!(MailboxName::new("Inboxes").unwrap().as_str(), "Inboxes");
        let cases = [
            ("", NameError::Empty),
            ("/a", NameError::EmptyLevel),
            ("a/", NameError::EmptyLevel),
            ("a//b", NameError::EmptyLevel),
            ("a\nb", NameError::ControlChar),
            ("a\0", NameError::ControlChar),
        ];
        for (bad, why) in cases {
            assert_eq!(MailboxName::new(bad), Err(why), "{bad:?}");
        }
        let long = "x".repeat(MailboxName::MAX_BYTES);
        assert!(MailboxName::new(&long).is_ok());
        assert_eq!(MailboxName::new(&format!("{long}x")), Err(NameError::TooLong));
        let deep = vec!["a"; MailboxName::MAX_DEPTH].join("/");
        assert!(MailboxName::new(&deep).is_ok());
        assert_eq!(MailboxName::new(&format!("{deep}/a")), Err(NameError::TooDeep));
        // Wildcards may name an existing mailbox, not a new one.
        let star = MailboxName::new("a*").unwrap();
        assert_eq!(star.check_creatable(), Err(NameError::Wildcard));
        assert_eq!(MailboxName::new("a/b").unwrap().check_creatable(), Ok(()));
    }

    #[test]
    fn mailbox_name_hierarchy() {
        let name = MailboxName::new("a/b/c").unwrap();
        let up: Vec<String> = name.ancestors().map(|n| n.to_string()).collect();
        assert_eq!(up, ["a", "a/b"]);
        let a = MailboxName::new("a").unwrap();
        assert!(a.is_ancestor_of(&name));
        assert!(!a.is_ancestor_of(&a));
        assert!(!a.is_ancestor_of(&MailboxName::new("ab/c").unwrap()));
    }
}
