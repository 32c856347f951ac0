//! Access control (RFC 4314), teams, groups, namespaces (RFC 2342) and quotas (RFC 9208):
//! the nouns every backend shares, and the one place rights are resolved.
//!
//! A backend keeps ACL entries as `(mailbox, identifier, rights)` rows and hands them to
//! [`effective_rights`]; what an identifier matches and how negative rights subtract is decided
//! here, not in SQL, so every backend answers MYRIGHTS the same way.

use crate::types::{AccountId, MailboxInfo};

/// One access right of RFC 4314 §2.1. The discriminant is the bit in [`Rights`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Right {
    /// `l`: the mailbox is visible to LIST and LSUB.
    Lookup = 0,
    /// `r`: SELECT, EXAMINE, STATUS, FETCH, SEARCH, COPY from it.
    Read = 1,
    /// `s`: keep `\Seen` across sessions.
    Seen = 2,
    /// `w`: write flags other than `\Seen` and `\Deleted`.
    Write = 3,
    /// `i`: APPEND and COPY/MOVE into it.
    Insert = 4,
    /// `p`: send mail to its submission address (LMTP `+detail`, Sieve `fileinto` by others).
    Post = 5,
    /// `k`: CREATE under it, RENAME to under it.
    CreateMailbox = 6,
    /// `x`: DELETE or RENAME it.
    DeleteMailbox = 7,
    /// `t`: set or clear `\Deleted` (STORE, APPEND/COPY with it).
    DeleteMessages = 8,
    /// `e`: EXPUNGE (also CLOSE's, and MOVE's removal from the source).
    Expunge = 9,
    /// `a`: administer (SETACL, DELETEACL, GETACL, LISTRIGHTS).
    Administer = 10,
}

impl Right {
    /// Every right, in the order RFC 4314 lists them.
    pub const ALL: [Right; 11] = [
        Right::Lookup,
        Right::Read,
        Right::Seen,
        Right::Write,
        Right::Insert,
        Right::Post,
        Right::CreateMailbox,
        Right::DeleteMailbox,
        Right::DeleteMessages,
        Right::Expunge,
        Right::Administer,
    ];

    /// The RFC 4314 letter.
    pub fn letter(self) -> char {
        b"lrswipkxtea"[self as usize] as char
    }
}

/// A set of [`Right`]s.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rights(u16);

/// A rights string holds a letter that is no right (RFC 4314 §3.1: SETACL answers BAD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown right {0:?}")]
pub struct UnknownRight(pub char);

impl Rights {
    /// The empty set.
    pub const NONE: Rights = Rights(0);
    /// Every right (an owner's).
    pub const ALL: Rights = Rights((1 << 11) - 1);

    /// These rights and `right`.
    pub const fn and(self, right: Right) -> Rights {
        Rights(self.0 | 1 << right as u16)
    }

    /// True when `right` is in the set.
    pub fn contains(self, right: Right) -> bool {
        self.0 & 1 << right as u16 != 0
    }

    /// True when every right of `other` is in the set.
    pub fn contains_all(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets together.
    pub fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// The rights of `self` not in `other`.
    pub fn without(self, other: Rights) -> Rights {
        Rights(self.0 & !other.0)
    }

    /// The rights in both sets.
    pub fn intersection(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }

    /// The raw bits (for storage).
    pub fn bits(self) -> u16 {
        self.0
    }

    /// From stored bits; unknown bits are dropped.
    pub fn from_bits(bits: u16) -> Rights {
        Rights(bits & Rights::ALL.0)
    }

    /// Parses a rights string of SETACL/CLI (RFC 4314 §2.1.1, §3.1): the letters of
    /// [`Right`], the obsolete `c` (= `k`, this server ties CREATE to `k` alone) and `d`
    /// (= `x`, `t` and `e`). Digits and other letters are refused.
    pub fn parse(letters: &str) -> Result<Rights, UnknownRight> {
        let mut set = Rights::NONE;
        for c in letters.chars() {
            set = match c {
                'c' => set.and(Right::CreateMailbox),
                'd' => set.and(Right::DeleteMailbox).and(Right::DeleteMessages).and(Right::Expunge),
                _ => match Right::ALL.iter().find(|r| r.letter() == c) {
                    Some(r) => set.and(*r),
                    None => return Err(UnknownRight(c)),
                },
            };
        }
        Ok(set)
    }

    /// The letters for MYRIGHTS and ACL responses: the rights in RFC 4314 order, then `c` when
    /// `k` is held and `d` when any of `x`, `t`, `e` is (RFC 4314 §2.1.1: old clients read
    /// those).
    pub fn to_wire(self) -> String {
        let mut s = self.to_string();
        if self.contains(Right::CreateMailbox) {
            s.push('c');
        }
        if self.contains(Right::DeleteMailbox)
            || self.contains(Right::DeleteMessages)
            || self.contains(Right::Expunge)
        {
            s.push('d');
        }
        s
    }
}

impl std::fmt::Display for Rights {
    /// The RFC 4314 letters in order, e.g. `lrs`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in Right::ALL {
            if self.contains(r) {
                write!(f, "{}", r.letter())?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Rights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Who an ACL entry is about (RFC 4314 §2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grantee {
    /// One account (user or team) by its canonical name.
    Account(String),
    /// Every member of a group: `$name`.
    Group(String),
    /// Every logged-in user: `authenticated`.
    Authenticated,
    /// Everybody: `anyone`.
    Anyone,
}

/// One ACL entry's identifier: a grantee, positive or negative (`-name`, RFC 4314 §2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier {
    /// Who.
    pub grantee: Grantee,
    /// A negative entry takes its rights away from whoever it matches.
    pub negative: bool,
}

impl Identifier {
    /// Parses an identifier as SETACL/DELETEACL/LISTRIGHTS and the CLI give it. Account names
    /// are kept as given; the backend resolves them to canonical names (unknown ones are
    /// refused).
    pub fn parse(s: &str) -> Option<Identifier> {
        let (negative, rest) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if rest.is_empty() || rest.chars().any(char::is_control) {
            return None;
        }
        let grantee = if rest.eq_ignore_ascii_case("anyone") {
            Grantee::Anyone
        } else if rest.eq_ignore_ascii_case("authenticated") {
            Grantee::Authenticated
        } else if let Some(group) = rest.strip_prefix('$') {
            if group.is_empty() {
                return None;
            }
            Grantee::Group(group.to_owned())
        } else {
            Grantee::Account(rest.to_owned())
        };
        Some(Identifier { grantee, negative })
    }
}

impl std::fmt::Display for Identifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        match &self.grantee {
            Grantee::Account(name) => f.write_str(name),
            Grantee::Group(name) => write!(f, "${name}"),
            Grantee::Authenticated => f.write_str("authenticated"),
            Grantee::Anyone => f.write_str("anyone"),
        }
    }
}

/// One row of a mailbox's ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    /// Who.
    pub identifier: Identifier,
    /// What.
    pub rights: Rights,
}

/// Who asks: an account with its canonical name and the groups it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer<'a> {
    /// The account.
    pub account: AccountId,
    /// Its canonical name (case-insensitive match against [`Grantee::Account`]).
    pub name: &'a str,
    /// The groups it is a member of.
    pub groups: &'a [String],
}

/// The rights `viewer` has on a mailbox owned by `owner` with these ACL entries: the owner has
/// every right; anybody else the union of the positive entries that match them, minus the union
/// of the negative ones (RFC 4314 §2). `authenticated` matches every viewer (only logged-in
/// users ask).
pub fn effective_rights(owner: AccountId, entries: &[AclEntry], viewer: &Viewer<'_>) -> Rights {
    if viewer.account == owner {
        return Rights::ALL;
    }
    let matches = |grantee: &Grantee| match grantee {
        Grantee::Account(name) => name.eq_ignore_ascii_case(viewer.name),
        Grantee::Group(group) => viewer.groups.iter().any(|g| g.eq_ignore_ascii_case(group)),
        Grantee::Authenticated | Grantee::Anyone => true,
    };
    let (mut plus, mut minus) = (Rights::NONE, Rights::NONE);
    for entry in entries.iter().filter(|e| matches(&e.identifier.grantee)) {
        if entry.identifier.negative {
            minus = minus.union(entry.rights);
        } else {
            plus = plus.union(entry.rights);
        }
    }
    plus.without(minus)
}

/// What kind of principal owns a mailbox tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// A person: logs in, owns the personal namespace.
    User,
    /// A team (RFC 2342 shared namespace): cannot log in; members work in its mailboxes through
    /// ACL grants.
    Team,
}

/// RFC 2342 namespaces, as the session shows them. The store keeps mailbox names relative to
/// their owner; these prefixes are only how another account's mailboxes are named to a viewer
/// (and how auto-subscriptions are written).
pub mod namespace {
    use super::AccountKind;

    /// Other users' mailboxes: `Other Users/<user>/<name>`.
    pub const OTHER_USERS: &str = "Other Users";
    /// Teams' mailboxes: `Shared/<team>/<name>`.
    pub const SHARED: &str = "Shared";

    /// The name `viewer` sees for `owner`'s mailbox `name`.
    pub fn shown_name(kind: AccountKind, owner: &str, name: &str) -> String {
        let prefix = match kind {
            AccountKind::User => OTHER_USERS,
            AccountKind::Team => SHARED,
        };
        format!("{prefix}/{owner}/{name}")
    }
}

/// A mailbox of another account that a viewer has at least one right on (the "shared with me"
/// index: written in the same transaction as the ACL entry that grants it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedMailbox {
    /// The owner.
    pub owner: AccountId,
    /// The owner's canonical name.
    pub owner_name: String,
    /// User or team (which namespace it shows in).
    pub owner_kind: AccountKind,
    /// The mailbox, with its name relative to the owner; `subscribed` is the viewer's
    /// subscription of its shown name.
    pub mailbox: MailboxInfo,
    /// The viewer's effective rights on it.
    pub rights: Rights,
}

/// A team member and the rights the membership grants on the team's mailboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    /// The member's account.
    pub account: AccountId,
    /// Its canonical name.
    pub name: String,
    /// Rights granted on every mailbox of the team (new mailboxes included).
    pub rights: Rights,
}

/// Which `\Seen` a mailbox keeps (issue 13): one for everybody, or one per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SeenMode {
    /// One `\Seen` flag per message: what one member reads is read for the team.
    #[default]
    Shared,
    /// Every account other than the owner keeps its own `\Seen`.
    Private,
}

/// RFC 9208 resources a quota root limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaResource {
    /// `STORAGE`: the sum of message sizes (reported in units of 1024 octets).
    Storage,
    /// `MESSAGE`: the number of messages.
    Message,
    /// `MAILBOX`: the number of mailboxes.
    Mailbox,
}

/// Limits of one quota root (an account or team); `None` means the installation's default,
/// see [`QuotaLimits::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaLimits {
    /// Bytes.
    pub storage: Option<u64>,
    /// Messages.
    pub messages: Option<u64>,
    /// Mailboxes.
    pub mailboxes: Option<u64>,
}

impl QuotaLimits {
    /// The limits in force: each of these limits, else the one of `default`.
    pub fn resolve(self, default: QuotaLimits) -> QuotaLimits {
        QuotaLimits {
            storage: self.storage.or(default.storage),
            messages: self.messages.or(default.messages),
            mailboxes: self.mailboxes.or(default.mailboxes),
        }
    }
}

/// Usage and the limits in force of one quota root. A limit of `None` here means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    /// Bytes stored (sum of message sizes).
    pub storage_used: u64,
    /// Messages stored.
    pub messages_used: u64,
    /// Mailboxes.
    pub mailboxes_used: u64,
    /// The limits in force (account's own, else the default).
    pub limits: QuotaLimits,
    /// The account's own limits as set (`None`: default applies).
    pub own: QuotaLimits,
}

/// Why an operation was refused on quota (StoreError::OverQuota).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuota {
    /// The resource that would be exceeded.
    pub resource: QuotaResource,
    /// The operation alone exceeds the limit, even on an empty root (LMTP answers 552 5.2.2
    /// rather than 452 4.2.2: a retry cannot succeed).
    pub alone: bool,
}

/// A quota threshold crossed upwards (80, 90, 100 %), recorded once per crossing in the same
/// transaction as the write that crossed it; the server turns it into a warning message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaWarning {
    /// Row id, to mark it delivered.
    pub id: i64,
    /// The quota root.
    pub account: AccountId,
    /// The resource.
    pub resource: QuotaResource,
    /// The threshold crossed, in percent.
    pub percent: u8,
    /// Usage and limit at the crossing.
    pub used: u64,
    /// The limit.
    pub limit: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rights_parse_and_print() {
        let r = Rights::parse("lrswipkxtea").unwrap();
        assert_eq!(r, Rights::ALL);
        assert_eq!(r.to_string(), "lrswipkxtea");
        assert_eq!(r.to_wire(), "lrswipkxteacd");
        // RFC 4314 §2.1.1: "d" expands to the delete rights, "c" to k.
        assert_eq!(Rights::parse("lrswida").unwrap().to_string(), "lrswixtea");
        assert_eq!(Rights::parse("lrswikda").unwrap().to_wire(), "lrswikxteacd");
        assert_eq!(Rights::parse("lr").unwrap().to_wire(), "lr");
        assert_eq!(Rights::parse("lrz"), Err(UnknownRight('z')));
        assert!(Rights::parse("1").is_err());
    }

    #[test]
    fn identifiers() {
        let id = Identifier::parse("-$staff").unwrap();
        assert_eq!(id, Identifier { grantee: Grantee::Group("staff".into()), negative: true });
        assert_eq!(id.to_string(), "-$staff");
        assert_eq!(Identifier::parse("Anyone").unwrap().grantee, Grantee::Anyone);
        assert_eq!(Identifier::parse("alice").unwrap().to_string(), "alice");
        assert!(Identifier::parse("").is_none());
        assert!(Identifier::parse("-").is_none());
        assert!(Identifier::parse("$").is_none());
    }

    #[test]
    fn negative_rights_subtract() {
        let e = |id: &str, r: &str| AclEntry {
            identifier: Identifier::parse(id).unwrap(),
            rights: Rights::parse(r).unwrap(),
        };
        let entries = [e("anyone", "lr"), e("$staff", "lrswi"), e("-bob", "w"), e("carol", "lrswipkxte")];
        let groups = vec!["staff".to_owned()];
        let bob = Viewer { account: AccountId(2), name: "bob", groups: &groups };
        assert_eq!(effective_rights(AccountId(1), &entries, &bob).to_string(), "lrsi");
        let dave = Viewer { account: AccountId(4), name: "dave", groups: &[] };
        assert_eq!(effective_rights(AccountId(1), &entries, &dave).to_string(), "lr");
        let owner = Viewer { account: AccountId(1), name: "owner", groups: &[] };
        assert_eq!(effective_rights(AccountId(1), &entries, &owner), Rights::ALL);
        let carol = Viewer { account: AccountId(3), name: "CAROL", groups: &[] };
        assert_eq!(effective_rights(AccountId(1), &entries, &carol).to_string(), "lrswipkxte");
    }
}
