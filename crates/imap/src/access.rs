//! Where a mailbox name lives (RFC 2342 namespaces) and what the user may do there (RFC 4314).
//!
//! Three namespaces: the personal one (no prefix: the user's own mailboxes), `Other Users/<user>/`
//! (mailboxes other users shared) and `Shared/<team>/` (team mailboxes). The store keeps every
//! name relative to its owner; this module turns a name the client sent into (owner, name) and
//! back, and resolves the user's rights on the mailbox. A mailbox the user has no `l` right on is
//! answered exactly like one that does not exist (RFC 4314 §6), so names never leak.
//!
//! The user's own mailboxes cost nothing extra: only a name under one of the two prefixes is
//! looked up in the account table and the ACL.

use postfach_proto::response::Code;
use postfach_store::acl::namespace;
use postfach_store::{AccountId, AccountKind, Flags, MailboxInfo, MailboxName, Right, Rights, SystemFlags};

use crate::context::Cx;
use crate::respond::Reply;

/// Where a name lives.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// The owner of the mailbox (whose quota it counts against).
    pub(crate) owner: AccountId,
    /// `None` for the personal namespace; else the owner's kind and canonical name, which make
    /// the prefix the client sees.
    pub(crate) foreign: Option<(AccountKind, String)>,
    /// The name relative to the owner.
    pub(crate) local: MailboxName,
}

impl Place {
    /// The name the client sees for the owner's mailbox `local`.
    pub(crate) fn shown(&self, local: &str) -> String {
        match &self.foreign {
            None => local.to_owned(),
            Some((kind, owner)) => namespace::shown_name(*kind, owner, local),
        }
    }

    /// True when the mailbox is the user's own.
    pub(crate) fn is_personal(&self) -> bool {
        self.foreign.is_none()
    }
}

/// A name that is a namespace's prefix or a level of it (`Shared`, `Other Users/bob`): listed
/// as `\Noselect`, never a mailbox.
#[derive(Debug)]
pub(crate) enum Resolved {
    /// A mailbox name (that may or may not exist).
    Mailbox(Place),
    /// A namespace level, not a mailbox.
    Namespace,
}

/// Splits `name` into owner and local name. A prefix level alone (`Shared`, `Shared/team`) is
/// [`Resolved::Namespace`]; an unknown owner, or an owner of the wrong kind for the prefix, is
/// NO [NONEXISTENT].
pub(crate) async fn resolve(cx: &Cx<'_>, name: &MailboxName) -> Result<Resolved, Reply> {
    resolve_for(cx, cx.user.account, name).await
}

/// [`resolve`] as `viewer` sees the namespaces (URLFETCH reads as the URL's user, RFC 4467 §7.3).
async fn resolve_for(cx: &Cx<'_>, viewer: AccountId, name: &MailboxName) -> Result<Resolved, Reply> {
    let s = name.as_str();
    let (kind, rest) = if let Some(rest) = strip_level(s, namespace::SHARED) {
        (AccountKind::Team, rest)
    } else if let Some(rest) = strip_level(s, namespace::OTHER_USERS) {
        (AccountKind::User, rest)
    } else {
        return Ok(Resolved::Mailbox(Place { owner: viewer, foreign: None, local: name.clone() }));
    };
    let Some(rest) = rest else { return Ok(Resolved::Namespace) };
    let (owner_name, local) = match rest.split_once(MailboxName::DELIMITER) {
        Some((owner, local)) => (owner, Some(local)),
        None => (rest, None),
    };
    let owner = match cx.ctx.accounts.account_by_name(owner_name).await? {
        Some(a) if a.kind == kind => a,
        _ => return Err(nonexistent()),
    };
    let Some(local) = local else { return Ok(Resolved::Namespace) };
    let local = MailboxName::new(local)
        .map_err(|e| Reply::no(Some(Code::Nonexistent), format!("No such mailbox: {e}")))?;
    Ok(Resolved::Mailbox(Place { owner: owner.id, foreign: Some((kind, owner.name)), local }))
}

/// `Some(None)` when `name` is exactly `prefix`, `Some(Some(rest))` when it is `prefix/rest`,
/// `None` when it is not under `prefix`.
fn strip_level<'a>(name: &'a str, prefix: &str) -> Option<Option<&'a str>> {
    let rest = name.strip_prefix(prefix)?;
    if rest.is_empty() {
        return Some(None);
    }
    rest.strip_prefix(MailboxName::DELIMITER).map(Some)
}

/// Resolves `name` to a place that can hold a mailbox: a namespace level is refused with `refusal`.
pub(crate) async fn place(cx: &Cx<'_>, name: &MailboxName, refusal: Reply) -> Result<Place, Reply> {
    match resolve(cx, name).await? {
        Resolved::Mailbox(place) => Ok(place),
        Resolved::Namespace => Err(refusal),
    }
}

/// An existing mailbox the user may see, with its rights.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The mailbox; `name` is the name the client sees (with the namespace prefix).
    pub(crate) info: MailboxInfo,
    /// Where it lives.
    pub(crate) place: Place,
    /// The user's rights on it (every right on their own).
    pub(crate) rights: Rights,
}

/// Looks a mailbox up by the name the client sent and checks that the user holds `need` on it.
/// Missing, or without `l`: NO [NONEXISTENT]. Visible but lacking a right of `need`:
/// NO [NOPERM] (RFC 4314 §4, RFC 5530).
pub(crate) async fn find(cx: &Cx<'_>, name: &MailboxName, need: Rights) -> Result<Found, Reply> {
    let place = place(cx, name, nonexistent()).await?;
    find_in(cx, place, need).await
}

/// [`find`] as `viewer` (another account than the session's: URLFETCH, RFC 4467 §7.3).
pub(crate) async fn find_for(
    cx: &Cx<'_>,
    viewer: AccountId,
    name: &MailboxName,
    need: Rights,
) -> Result<Found, Reply> {
    let place = match resolve_for(cx, viewer, name).await? {
        Resolved::Mailbox(place) => place,
        Resolved::Namespace => return Err(nonexistent()),
    };
    find_in_for(cx, viewer, place, need).await
}

/// [`find`] for a resolved place.
pub(crate) async fn find_in(cx: &Cx<'_>, place: Place, need: Rights) -> Result<Found, Reply> {
    find_in_for(cx, cx.user.account, place, need).await
}

async fn find_in_for(cx: &Cx<'_>, viewer: AccountId, place: Place, need: Rights) -> Result<Found, Reply> {
    let Some(mut info) = cx.ctx.store.mailbox_by_name(place.owner, &place.local).await? else {
        return Err(nonexistent());
    };
    let rights =
        if place.owner == viewer { Rights::ALL } else { cx.ctx.share.my_rights(info.id, viewer).await? };
    if !rights.contains(Right::Lookup) {
        return Err(nonexistent());
    }
    check(rights, need)?;
    if !place.is_personal() {
        info.name = place.shown(&info.name);
        // The store's flag is the owner's subscription; the user's is kept by shown name.
        info.subscribed = false;
    }
    Ok(Found { info, place, rights })
}

/// The user's rights on a mailbox at `place`.
pub(crate) async fn rights_on(cx: &Cx<'_>, place: &Place, info: &MailboxInfo) -> Result<Rights, Reply> {
    if place.owner == cx.user.account {
        return Ok(Rights::ALL);
    }
    Ok(cx.ctx.share.my_rights(info.id, cx.user.account).await?)
}

/// The rights that change flags (RFC 4314 §4): `s` for `\Seen`, `t` for `\Deleted`, `w` for
/// the other flags and keywords.
pub(crate) const FLAG_RIGHTS: Rights =
    Rights::NONE.and(Right::Seen).and(Right::DeleteMessages).and(Right::Write);

/// The system flags a user with `rights` may set or clear.
pub(crate) fn settable_flags(rights: Rights) -> SystemFlags {
    [
        (SystemFlags::SEEN, Right::Seen),
        (SystemFlags::DELETED, Right::DeleteMessages),
        (SystemFlags::ANSWERED, Right::Write),
        (SystemFlags::FLAGGED, Right::Write),
        (SystemFlags::DRAFT, Right::Write),
    ]
    .into_iter()
    .filter(|(_, right)| rights.contains(*right))
    .fold(SystemFlags(0), |set, (flag, _)| set.union(flag))
}

/// `flags` cut to what a user with `rights` may set: the settable system flags, keywords with
/// `w`. APPEND, COPY and STORE drop the others rather than fail (RFC 4314 §4).
pub(crate) fn permitted_flags(mut flags: Flags, rights: Rights) -> Flags {
    flags.system = SystemFlags(flags.system.0 & settable_flags(rights).0);
    if !rights.contains(Right::Write) {
        flags.keywords.clear();
    }
    flags
}

/// NO [NOPERM] unless `rights` holds all of `need`.
pub(crate) fn check(rights: Rights, need: Rights) -> Result<(), Reply> {
    if rights.contains_all(need) {
        Ok(())
    } else {
        let missing = need.without(rights);
        Err(Reply::no(Some(Code::NoPerm), format!("You lack the right(s) \"{missing}\" on this mailbox")))
    }
}

/// The answer for a mailbox that does not exist or that the user may not see.
pub(crate) fn nonexistent() -> Reply {
    Reply::no(Some(Code::Nonexistent), "No such mailbox")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(strip_level("Shared", "Shared"), Some(None));
        assert_eq!(strip_level("Shared/support/INBOX", "Shared"), Some(Some("support/INBOX")));
        assert_eq!(strip_level("Sharedx", "Shared"), None);
        assert_eq!(strip_level("INBOX", "Shared"), None);
        assert_eq!(strip_level("Other Users/bob", "Other Users"), Some(Some("bob")));
    }
}
