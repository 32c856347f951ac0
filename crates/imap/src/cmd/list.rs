//! LIST (RFC 9051 §6.3.9 with LIST-EXTENDED, RFC 5258; LIST-STATUS, RFC 5819; SPECIAL-USE,
//! RFC 6154) and LSUB (RFC 3501 §6.3.9).
//!
//! The mailbox list of one account is small (hundreds of names), so we read it whole and match
//! in memory. Matching is a dynamic-programming wildcard match: linear in name × pattern, so a
//! hostile pattern like `*a*a*a*a*b` cannot blow up.

use std::collections::{BTreeMap, BTreeSet};

use postfach_proto::mutf7;
use postfach_proto::response::{Data, ListExtended, MailboxAttr};
use postfach_proto::types::{
    ListCommand, ListPattern, ListReturnOption, ListSelectOption, StatusItem, WireMailboxName,
};

use postfach_store::acl::namespace;
use postfach_store::{AccountKind, Right, Rights};

use crate::Out;
use crate::cmd::mailbox::{special_attr, write_status};
use crate::context::Cx;
use crate::respond::{Done, Reply};

/// Longest pattern we match against, in characters.
const MAX_PATTERN_CHARS: usize = 1024;

/// `*` matches anything, `%` anything but the delimiter `/` (RFC 9051 §6.3.9).
pub(crate) fn matches(pattern: &[char], name: &[char]) -> bool {
    // reach[j]: pattern[..i] can match name[..j].
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for &p in pattern {
        let mut next = vec![false; name.len() + 1];
        match p {
            '*' | '%' => {
                let mut on = false;
                for j in 0..=name.len() {
                    if reach[j] {
                        on = true;
                    }
                    next[j] = on;
                    if p == '%' && j < name.len() && name[j] == '/' {
                        on = false;
                    }
                }
            }
            c => {
                for j in 0..name.len() {
                    if reach[j] && name[j] == c {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[name.len()]
}

/// Joins reference and pattern the way RFC 9051 §6.3.9 describes ("the reference name is
/// prepended"), and normalises a leading INBOX.
fn full_pattern(reference: &str, pattern: &str) -> String {
    let joined = if pattern.starts_with('/') { pattern.to_owned() } else { format!("{reference}{pattern}") };
    let upper = joined.get(..5).map(|s| s.eq_ignore_ascii_case("INBOX")).unwrap_or(false);
    if upper && (joined.len() == 5 || joined.as_bytes()[5] == b'/') {
        format!("INBOX{}", &joined[5..])
    } else {
        joined
    }
}

/// A LIST/LSUB pattern (reference joined) ready to match.
///
/// Any astring is a legal pattern (RFC 9051 §9 `list-mailbox`), also one that is not valid
/// modified UTF-7, like `&` or `*&x`: an IMAP4rev1 client then gets OK with whatever matches.
/// Such a pattern is matched as sent against the names' modified UTF-7 form, which is what that
/// client sees on the wire.
struct Pattern {
    chars: Vec<char>,
    /// Match against the modified UTF-7 form of names instead of the decoded one.
    encoded: bool,
}

impl Pattern {
    fn new(cx: &Cx<'_>, reference: &WireMailboxName, pattern: &ListPattern) -> Result<Pattern, Reply> {
        let utf8 = cx.enabled.utf8;
        let (joined, encoded) = match (reference.decode(utf8), pattern.decode(utf8)) {
            (Ok(r), Ok(p)) => (full_pattern(&r, &p), false),
            _ => {
                let raw = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                (full_pattern(&raw(reference.as_bytes()), &raw(pattern.as_bytes())), !utf8)
            }
        };
        let chars: Vec<char> = joined.chars().collect();
        if chars.len() > MAX_PATTERN_CHARS {
            return Err(Reply::bad(None, "Pattern too long"));
        }
        Ok(Pattern { chars, encoded })
    }

    fn matches(&self, name: &str) -> bool {
        let name: Vec<char> =
            if self.encoded { mutf7::encode(name).chars().collect() } else { name.chars().collect() };
        matches(&self.chars, &name)
    }
}

/// LIST, extended.
pub(crate) async fn list(cx: &Cx<'_>, cmd: &ListCommand, out: &mut Out) -> Result<Done, Reply> {
    // RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the root.
    if cmd.patterns.len() == 1 && cmd.patterns[0].as_bytes().is_empty() && cmd.selection.is_empty() {
        let data = Data::List {
            attributes: vec![MailboxAttr::NoSelect],
            delimiter: Some('/'),
            name: String::new(),
            extended: Vec::new(),
        };
        out.data(&data);
        return Ok(Done::new());
    }

    let patterns =
        cmd.patterns.iter().map(|p| Pattern::new(cx, &cmd.reference, p)).collect::<Result<Vec<_>, _>>()?;
    let matched = |name: &str| patterns.iter().any(|p| p.matches(name));
    let sel_subscribed = cmd.selection.contains(&ListSelectOption::Subscribed);
    let sel_special = cmd.selection.contains(&ListSelectOption::SpecialUse);
    let recursive = cmd.selection.contains(&ListSelectOption::RecursiveMatch);
    if recursive && !sel_subscribed && !sel_special {
        // RFC 5258 §3.1: RECURSIVEMATCH needs another selection option.
        return Err(Reply::bad(None, "RECURSIVEMATCH needs another selection option"));
    }
    let ret_subscribed = sel_subscribed || cmd.return_opts.contains(&ListReturnOption::Subscribed);
    let ret_myrights = cmd.return_opts.contains(&ListReturnOption::MyRights);
    let status_items: Option<&Vec<StatusItem>> = cmd.return_opts.iter().find_map(|o| match o {
        ListReturnOption::Status(items) => Some(items),
        _ => None,
    });

    let store = &cx.ctx.store;
    let account = cx.user.account;
    let visible = visible_mailboxes(cx).await?;
    let mailboxes = &visible.mailboxes;
    let subscriptions: BTreeSet<String> = store.subscriptions(account).await?.into_iter().collect();
    let existing: BTreeMap<&str, &postfach_store::MailboxInfo> =
        mailboxes.iter().map(|m| (m.name.as_str(), m)).collect();

    // Candidate names: existing mailboxes and the namespace levels above shared ones, or
    // subscribed names for LIST (SUBSCRIBED).
    let mut names: BTreeSet<String> = if sel_subscribed {
        subscriptions.clone()
    } else {
        mailboxes.iter().map(|m| m.name.clone()).chain(visible.levels.iter().cloned()).collect()
    };
    if recursive && sel_subscribed {
        // RFC 5258 §3.5: parents of matching subscribed names are reported with CHILDINFO.
        let parents: Vec<String> = names.iter().flat_map(|n| ancestors(n)).collect();
        names.extend(parents);
    }

    let has_children = |name: &str| {
        let prefix = format!("{name}/");
        mailboxes.iter().any(|m| m.name.starts_with(&prefix))
    };
    // The selection criteria (RFC 5258 §3.1).
    let meets = |name: &str| {
        (!sel_subscribed || subscriptions.contains(name))
            && (!sel_special || existing.get(name).is_some_and(|i| i.special_use.is_some()))
    };
    let mut ordered: Vec<&String> = names.iter().collect();
    // INBOX first, then by name.
    ordered.sort_by_key(|n| (n.as_str() != "INBOX", n.as_str()));
    for name in ordered {
        if !matched(name) {
            continue;
        }
        let info = existing.get(name.as_str()).copied();
        let subscribed = subscriptions.contains(name);
        let mut extended = Vec::new();
        if recursive && sel_subscribed {
            // RFC 5258 §3.5: CHILDINFO when a descendant meets the criteria but is not listed
            // itself (the pattern does not match it); a name that does not meet the criteria is
            // listed only for such a descendant.
            let prefix = format!("{name}/");
            let unlisted_child = subscriptions
                .range(prefix.clone()..)
                .take_while(|s| s.starts_with(&prefix))
                .any(|s| meets(s) && !matched(s));
            if unlisted_child {
                extended.push(ListExtended::ChildInfoSubscribed);
            } else if !meets(name) {
                continue;
            }
        } else if !meets(name) {
            continue;
        }
        let mut attributes = Vec::new();
        match info {
            // RFC 2342 / RFC 5258: a namespace level holds mailboxes but is none.
            None if visible.levels.contains(name) => {
                attributes.push(MailboxAttr::NoSelect);
                attributes.push(MailboxAttr::HasChildren);
            }
            None => attributes.push(MailboxAttr::NonExistent),
            Some(i) => {
                attributes.push(if has_children(name) {
                    MailboxAttr::HasChildren
                } else {
                    MailboxAttr::HasNoChildren
                });
                if let Some(u) = i.special_use {
                    attributes.push(special_attr(u));
                }
            }
        }
        if ret_subscribed && subscribed {
            attributes.push(MailboxAttr::Subscribed);
        }
        let rights = info.map(|i| visible.rights.get(&i.id).copied().unwrap_or(Rights::ALL));
        let data = Data::List { attributes, delimiter: Some('/'), name: name.clone(), extended };
        out.data(&data);
        // RFC 5819: STATUS right after the mailbox's LIST, only for selectable mailboxes (and,
        // RFC 4314 §4, ones the user may read).
        // RFC 8440 §3: MYRIGHTS after the mailbox's LIST (and before its STATUS).
        if let (true, Some(r)) = (ret_myrights, rights) {
            out.data(&Data::MyRights { mailbox: name.clone(), rights: r.to_wire() });
        }
        let readable = rights.is_some_and(|r| r.contains(Right::Read));
        if let (Some(items), Some(info), true) = (status_items, info, readable) {
            match store.status(info.id).await {
                Ok(st) => write_status(cx, name, &st, items, out).await?,
                Err(e) => tracing::warn!(error = %e, mailbox = %name, "LIST-STATUS failed"),
            }
        }
    }
    Ok(Done::new())
}

/// What LIST shows: the user's own mailboxes, the mailboxes of others they have `l` on (named
/// in their namespace, RFC 2342), and the namespace levels above those (`Shared`,
/// `Shared/support`), which are no mailboxes.
pub(crate) struct Visible {
    /// Every mailbox the user can see, by the name the client sees, sorted.
    pub(crate) mailboxes: Vec<postfach_store::MailboxInfo>,
    /// The user's rights per shared mailbox (absent: their own, every right).
    pub(crate) rights: BTreeMap<postfach_store::MailboxId, Rights>,
    /// Namespace levels.
    pub(crate) levels: BTreeSet<String>,
}

/// Reads [`Visible`]: the account's mailbox list and its "shared with me" index; no scan of
/// other accounts.
pub(crate) async fn visible_mailboxes(cx: &Cx<'_>) -> Result<Visible, Reply> {
    let mut mailboxes = cx.ctx.store.list_mailboxes(cx.user.account).await?;
    let mut rights = BTreeMap::new();
    let mut levels = BTreeSet::new();
    for shared in cx.ctx.share.shared_with(cx.user.account).await? {
        if !shared.rights.contains(Right::Lookup) {
            continue;
        }
        let mut info = shared.mailbox;
        info.name = namespace::shown_name(shared.owner_kind, &shared.owner_name, &info.name);
        let prefix = match shared.owner_kind {
            AccountKind::Team => namespace::SHARED,
            AccountKind::User => namespace::OTHER_USERS,
        };
        levels.insert(prefix.to_owned());
        levels.insert(format!("{prefix}/{}", shared.owner_name));
        rights.insert(info.id, shared.rights);
        mailboxes.push(info);
    }
    // RFC 4314 §4: a mailbox seen without its parent shows as if the parent did not exist;
    // superiors that are missing are just not listed.
    mailboxes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Visible { mailboxes, rights, levels })
}

fn ancestors(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = name;
    while let Some(i) = rest.rfind('/') {
        rest = &rest[..i];
        out.push(rest.to_owned());
    }
    out
}

/// LSUB (IMAP4rev1): subscribed names; a `%` that stops at a level whose name is not itself
/// subscribed reports that level `\Noselect` (RFC 3501 §6.3.9).
pub(crate) async fn lsub(
    cx: &Cx<'_>,
    reference: &WireMailboxName,
    pattern: &ListPattern,
    out: &mut Out,
) -> Result<Done, Reply> {
    let pattern = Pattern::new(cx, reference, pattern)?;
    let subscriptions: BTreeSet<String> =
        cx.ctx.store.subscriptions(cx.user.account).await?.into_iter().collect();
    let mut hits: BTreeMap<String, bool> = BTreeMap::new();
    for name in &subscriptions {
        if pattern.matches(name) {
            hits.insert(name.clone(), true);
            continue;
        }
        for parent in ancestors(name) {
            if pattern.matches(&parent) {
                hits.entry(parent).or_insert(subscriptions.contains(name));
                break;
            }
        }
    }
    for (name, _) in hits {
        let mut attributes = Vec::new();
        if !subscriptions.contains(&name) {
            attributes.push(MailboxAttr::NoSelect);
        }
        out.data(&Data::Lsub { attributes, delimiter: Some('/'), name });
    }
    Ok(Done::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        let p: Vec<char> = p.chars().collect();
        let n: Vec<char> = n.chars().collect();
        matches(&p, &n)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", "a/b/c"));
        assert!(m("%", "INBOX"));
        assert!(!m("%", "a/b"));
        assert!(m("a/%", "a/b"));
        assert!(!m("a/%", "a/b/c"));
        assert!(m("a/*", "a/b/c"));
        assert!(m("*b", "a/b"));
        assert!(m("%/%", "a/b"));
        assert!(!m("INBOX", "INBOX/x"));
        assert!(m("", ""));
        assert!(!m("x", ""));
        // Pathological pattern stays cheap.
        let long = "a".repeat(500);
        assert!(!m("*a*a*a*a*a*a*a*a*a*a*b", &long));
    }

    #[test]
    fn reference_join() {
        assert_eq!(full_pattern("", "inbox"), "INBOX");
        assert_eq!(full_pattern("Archive/", "%"), "Archive/%");
        assert_eq!(full_pattern("Archive", "/%"), "/%");
    }
}
