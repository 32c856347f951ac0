//! ESEARCH (RFC 7377 MULTISEARCH): one UID search over several mailboxes, each answered by its
//! own `* ESEARCH (TAG "t" MAILBOX m UIDVALIDITY n) UID ...` (none for a mailbox without
//! matches).
//!
//! The sources (`IN (...)`, RFC 7377 §2.2 with RFC 5465 §6): `selected` (the default),
//! `personal` and `inboxes` (every personal mailbox: mail can be filed into any of them by
//! Sieve, so `inboxes` is `personal`, as §6.3 of RFC 5465 allows), `subscribed`, `mailboxes`,
//! `subtree` and `subtree-one` (the mailboxes under a name of any namespace; a namespace level
//! such as `Other Users` alone names no mailbox). A mailbox the user may not read (`r`, and `l`,
//! without which it does not exist for the user) is skipped without a word (§2.2), as is a
//! name that names none; duplicates are searched once.
//!
//! In a mailbox other than the selected one the keys that need a session mean: sequence
//! numbers the positions in the mailbox's UID order, `*` its last message, `\Recent` and NEW
//! nothing, OLD everything; `$` (SEARCHRES) only exists for the selected mailbox (BAD
//! elsewhere). SAVE needs `selected` as the only source, UPDATE a selected mailbox among the
//! sources (BAD otherwise, §2.2); its updates carry the MAILBOX and UIDVALIDITY correlators too.
//!
//! Limits: at most [`MAX_MAILBOXES`] mailboxes per command, else `NO [LIMIT]` before any
//! search (§2.4); each mailbox's search is a SEARCH's, with its bounds.

use std::collections::HashSet;

use postfach_proto::response::{Code, Data};
use postfach_proto::types::{CommandKind, SearchKey, SearchReturn, SearchSource, Tag, WireMailboxName};
use postfach_store::{Criterion, FetchWant, MailboxId, MailboxName, Right, Rights, SeenMode, Uid, UidSet};

use crate::Out;
use crate::access::{self, Resolved};
use crate::cmd::mailbox::decode_name;
use crate::cmd::search::{
    charset_ok, has_modseq, keep_updated, modseq_messages, partial_of, result_items, saved_results,
    to_criterion, updatable, with_default_all,
};
use crate::context::Cx;
use crate::criteria::{self, KeyScope};
use crate::respond::{Done, Reply};
use crate::selected::Selected;
use crate::updates::NewContext;

/// Mailboxes one ESEARCH may search (RFC 7377 §2.4, §5: a bound on one command's work).
pub(crate) const MAX_MAILBOXES: usize = 1000;

/// One mailbox to search.
struct Target {
    id: MailboxId,
    /// The name the client sees.
    name: String,
    /// Another owner's mailbox that keeps `\Seen` per user.
    private_seen: bool,
}

/// `ESEARCH [IN (...)] [RETURN (...)] [CHARSET x] keys`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn esearch(
    cx: &Cx<'_>,
    mut sel: Option<&mut Selected>,
    tag: &Tag,
    sources: &[SearchSource],
    return_opts: Option<&[SearchReturn]>,
    charset: Option<&str>,
    criteria: &[SearchKey],
    out: &mut Out,
) -> Result<Done, Reply> {
    let default = [SearchSource::Selected];
    let sources = if sources.is_empty() { &default[..] } else { sources };
    let has_selected = sources.contains(&SearchSource::Selected);
    // RFC 7377 §2.2: "selected" needs the selected state; so does UPDATE; SAVE only alone.
    if has_selected && sel.is_none() {
        return Err(Reply::bad(None, "No mailbox selected"));
    }
    // RFC 7377 §2.1: without a result option, ALL.
    let returns = with_default_all(return_opts.unwrap_or(&[]));
    let has = |r: SearchReturn| returns.contains(&r);
    if has(SearchReturn::Save) && sources != [SearchSource::Selected] {
        return Err(Reply::bad(None, "SAVE needs the selected mailbox as the only source"));
    }
    let update = has(SearchReturn::Update);
    if update && !has_selected {
        return Err(Reply::bad(None, "UPDATE applies to the selected mailbox, which is not a source"));
    }
    if update && let Some(sel) = sel.as_deref() {
        updatable(sel, tag, 0)?;
    }
    let partial = partial_of(&returns)?;
    if !charset_ok(charset) {
        return Err(Reply::no(
            Some(Code::BadCharset(vec!["UTF-8".to_owned(), "US-ASCII".to_owned()])),
            "Unsupported charset",
        ));
    }
    let targets = targets(cx, sel.as_deref(), sources).await?;
    let selected_id = sel.as_deref().map(|s| s.id);
    // RFC 9585: a search over many mailboxes reports how many are done.
    let mut progress = cx.progress();
    let total = targets.len() as u64;
    for (done, target) in targets.into_iter().enumerate() {
        if done > 0 {
            progress.step(done as u64, Some(total), out).await;
        }
        let in_selected = Some(target.id) == selected_id;
        let criterion = match sel.as_deref() {
            Some(s) if in_selected => {
                Criterion::And(criteria.iter().map(|k| to_criterion(s, k, 0)).collect::<Result<_, Reply>>()?)
            }
            _ => unselected_criterion(cx, &target, criteria).await?,
        };
        let found = cx.ctx.store.search(target.id, &criterion).await?;
        let found: Vec<Uid> = match sel.as_deref() {
            // Only messages the client knows of, as for SEARCH.
            Some(s) if in_selected => found.into_iter().filter(|u| s.seq_of(*u).is_some()).collect(),
            _ => found,
        };
        let answers =
            !found.is_empty() && !returns.iter().filter(|r| r.is_result()).all(|r| *r == SearchReturn::Save);
        let correlated = update && in_selected;
        // The UIDVALIDITY correlator, only where a response (or an update) will carry it.
        let uid_validity =
            if answers || correlated { cx.ctx.store.status(target.id).await?.uid_validity.0 } else { 0 };
        if let Some(s) = sel.as_deref_mut()
            && in_selected
        {
            if has(SearchReturn::Save) {
                s.saved = UidSet::from_uids(saved_results(&returns, partial, &found));
            }
            if update {
                let correlation = Some((target.name.clone(), uid_validity));
                // RFC 5465 §7's fetch attributes are for SEARCH and SORT only.
                let context = NewContext { criterion, order: None, fetch: Vec::new(), correlation };
                keep_updated(s, tag, CommandKind::Uid, context, found.clone(), out);
            }
        }
        // RFC 7377 §2.1: no response for a mailbox without matches, whatever was asked.
        if !answers {
            continue;
        }
        let modseq = if criteria.iter().any(has_modseq) {
            let reported = modseq_messages(Some(&returns), &found);
            let metas = cx.ctx.store.fetch(target.id, &reported, FetchWant::default()).await?;
            metas.iter().map(|m| m.modseq.0).max()
        } else {
            None
        };
        let numbers: Vec<u32> = found.iter().map(|u| u.get()).collect();
        let items = result_items(&returns, partial, &numbers, modseq);
        out.data(&Data::MultiSearch { tag: tag.clone(), mailbox: target.name, uid_validity, items });
        out.flush_if_large().await;
    }
    Ok(Done::new())
}

/// The mailboxes the sources name that the user may search, each once, in the order named.
async fn targets(
    cx: &Cx<'_>,
    sel: Option<&Selected>,
    sources: &[SearchSource],
) -> Result<Vec<Target>, Reply> {
    let mut seen: HashSet<MailboxId> = HashSet::new();
    let mut targets = Vec::new();
    let mut push = |target: Target, targets: &mut Vec<Target>| -> Result<(), Reply> {
        if seen.insert(target.id) {
            if targets.len() >= MAX_MAILBOXES {
                return Err(Reply::no(
                    Some(Code::Limit),
                    format!("ESEARCH searches at most {MAX_MAILBOXES} mailboxes at once"),
                ));
            }
            targets.push(target);
        }
        Ok(())
    };
    let readable = Rights::NONE.and(Right::Lookup).and(Right::Read);
    for source in sources {
        match source {
            SearchSource::Selected => {
                if let Some(sel) = sel {
                    let private_seen = sel.private.is_some();
                    push(Target { id: sel.id, name: sel.name.clone(), private_seen }, &mut targets)?;
                }
            }
            SearchSource::Personal | SearchSource::Inboxes => {
                for info in cx.ctx.store.list_mailboxes(cx.user.account).await? {
                    push(Target { id: info.id, name: info.name, private_seen: false }, &mut targets)?;
                }
            }
            SearchSource::Subscribed => {
                for name in cx.ctx.store.subscriptions(cx.user.account).await? {
                    let Ok(name) = MailboxName::new(&name) else { continue };
                    if let Some(target) = named(cx, &name).await? {
                        push(target, &mut targets)?;
                    }
                }
            }
            SearchSource::Mailboxes(names) => {
                for name in names {
                    let Some(name) = decoded(cx, name) else { continue };
                    if let Some(target) = named(cx, &name).await? {
                        push(target, &mut targets)?;
                    }
                }
            }
            SearchSource::Subtree(names) | SearchSource::SubtreeOne(names) => {
                let one_level = matches!(source, SearchSource::SubtreeOne(_));
                for name in names {
                    let Some(name) = decoded(cx, name) else { continue };
                    let place = match access::resolve(cx, &name).await {
                        Ok(Resolved::Mailbox(place)) => place,
                        // A namespace level, or an owner that does not exist.
                        Ok(Resolved::Namespace) | Err(_) => continue,
                    };
                    let root = place.local.as_str().to_owned();
                    for info in cx.ctx.store.list_mailboxes(place.owner).await? {
                        let below = match info.name.strip_prefix(&root) {
                            Some("") => true,
                            Some(rest) => rest.strip_prefix(MailboxName::DELIMITER).is_some_and(|r| {
                                !r.is_empty() && (!one_level || !r.contains(MailboxName::DELIMITER))
                            }),
                            None => false,
                        };
                        if !below {
                            continue;
                        }
                        let rights = access::rights_on(cx, &place, &info).await?;
                        if !rights.contains_all(readable) {
                            continue;
                        }
                        let private_seen = !place.is_personal()
                            && cx.ctx.share.seen_mode(info.id).await? == SeenMode::Private;
                        let target = Target { id: info.id, name: place.shown(&info.name), private_seen };
                        push(target, &mut targets)?;
                    }
                }
            }
        }
    }
    Ok(targets)
}

/// A mailbox name as the client sent it, `None` when it cannot name a mailbox.
fn decoded(cx: &Cx<'_>, name: &WireMailboxName) -> Option<MailboxName> {
    decode_name(cx.enabled, name).ok()
}

/// A mailbox named explicitly, if it exists and the user may read it (`None` otherwise: such
/// mailboxes are skipped, RFC 7377 §2.2).
async fn named(cx: &Cx<'_>, name: &MailboxName) -> Result<Option<Target>, Reply> {
    let found = match access::find(cx, name, Rights::NONE.and(Right::Read)).await {
        Ok(found) => found,
        // Not there, not visible or not readable: the same to the client.
        Err(reply) if reply.status == postfach_proto::response::Completion::No => return Ok(None),
        Err(reply) => return Err(reply),
    };
    let private_seen =
        !found.place.is_personal() && cx.ctx.share.seen_mode(found.info.id).await? == SeenMode::Private;
    Ok(Some(Target { id: found.info.id, name: found.info.name, private_seen }))
}

/// The criterion of `criteria` in a mailbox that is not the selected one.
async fn unselected_criterion(
    cx: &Cx<'_>,
    target: &Target,
    criteria: &[SearchKey],
) -> Result<Criterion, Reply> {
    let uses = |f: &dyn Fn(&SearchKey) -> bool| criteria.iter().any(|k| any_key(k, f));
    // Sequence numbers and `*` need the mailbox's UIDs; a private `\Seen` the user's set.
    let uids = if uses(&|k| matches!(k, SearchKey::SequenceSet(_) | SearchKey::Uid(_))) {
        cx.ctx.store.search(target.id, &Criterion::All).await?
    } else {
        Vec::new()
    };
    let seen = if target.private_seen
        && uses(&|k| matches!(k, SearchKey::Seen | SearchKey::Unseen | SearchKey::New))
    {
        Some(cx.ctx.share.private_seen(target.id, cx.user.account).await?)
    } else {
        None
    };
    let scope = MailboxScope { uids, seen };
    Ok(Criterion::And(
        criteria.iter().map(|k| criteria::criterion(&scope, k, 0)).collect::<Result<_, Reply>>()?,
    ))
}

/// True when `key` or a key inside it satisfies `f`.
fn any_key(key: &SearchKey, f: &dyn Fn(&SearchKey) -> bool) -> bool {
    if f(key) {
        return true;
    }
    match key {
        SearchKey::Not(k) => any_key(k, f),
        SearchKey::Or(a, b) => any_key(a, f) || any_key(b, f),
        SearchKey::And(keys) => keys.iter().any(|k| any_key(k, f)),
        _ => false,
    }
}

/// The keys that need a mailbox, for one that is not selected.
struct MailboxScope {
    /// The mailbox's UIDs, ascending (when a set needs them).
    uids: Vec<Uid>,
    /// The user's own `\Seen` in a private-`\Seen` mailbox of another owner.
    seen: Option<UidSet>,
}

impl KeyScope for MailboxScope {
    type Error = Reply;

    fn scoped(&self, key: &SearchKey) -> Option<Result<Criterion, Reply>> {
        let saved = || Reply::bad(None, "$ (SEARCHRES) is the selected mailbox's result");
        match key {
            SearchKey::SequenceSet(set) => {
                Some(match set.resolve(u32::try_from(self.uids.len()).unwrap_or(u32::MAX)) {
                    None => Err(saved()),
                    Some(numbers) => {
                        let uids = numbers.ranges().iter().flat_map(|r| {
                            let (start, end) = (*r.start() as usize, *r.end() as usize);
                            self.uids
                                .get(start.saturating_sub(1)..end.min(self.uids.len()))
                                .unwrap_or(&[])
                                .iter()
                                .copied()
                        });
                        Ok(Criterion::Uids(UidSet::from_uids(uids)))
                    }
                })
            }
            SearchKey::Uid(set) => Some(match set.resolve(self.uids.last().map_or(0, |u| u.get())) {
                None => Err(saved()),
                Some(numbers) => Ok(Criterion::Uids(UidSet::from_ranges(numbers.ranges().iter().cloned()))),
            }),
            SearchKey::Seen => self.seen.as_ref().map(|s| Ok(Criterion::Uids(s.clone()))),
            SearchKey::Unseen => {
                self.seen.as_ref().map(|s| Ok(Criterion::Not(Box::new(Criterion::Uids(s.clone())))))
            }
            _ => None,
        }
    }

    fn too_deep(&self) -> Reply {
        Reply::bad(None, "Search criteria nested too deeply")
    }
}
