//! Search and sort contexts that report their changes (RFC 5267 §4.3, CONTEXT=SEARCH and
//! CONTEXT=SORT): `SEARCH`/`SORT ... RETURN (UPDATE ...)` keeps the result here, and every sync
//! of the selected mailbox tells the client how it changed, as `ADDTO` and `REMOVEFROM` items of
//! an ESEARCH response tagged with the searching command's tag.
//!
//! The updates ride on the selected mailbox's change tracking ([`crate::selected`]): only the
//! messages a sync reports (expunged, flags changed, new; and those this session changed
//! itself, [`Contexts::touched`]) are looked at. Expunged messages leave every result without
//! asking the store; changed and new ones are matched against each context's criterion in one
//! store search narrowed to them, so the cost is the number of changes, not the size of the
//! mailbox. A SORT context places a new match by binary search over its sorted result, asking
//! the store to order two messages at a time (sort keys never change), or with one sort of the
//! result when many arrive at once.
//!
//! `UPDATE (fetch-att ...)` (RFC 5465 §7) also asks for a FETCH of each new message that joins
//! a result: the sync notes them ([`Contexts::take_new_fetches`]) and the session sends the
//! FETCH after the sync's EXISTS and ADDTO, together with NOTIFY's (`notify::new_messages`).
//!
//! The criterion is resolved once, when the searching command runs (RFC 5267 §4.3: sequence
//! numbers in it mean what they meant then); so are the keys that depend on the session
//! (`\Recent`, a private `\Seen`), which a later change does not move.
//!
//! Limits: [`MAX_CONTEXTS`] per selected mailbox and [`MAX_CONTEXT_RESULTS`] results each; past
//! either the search is answered as usual with an untagged `NO [NOUPDATE "tag"]` (§4.3.1).

use std::collections::HashSet;

use postfach_proto::response::{Code, Data, ESearchItem, Status};
use postfach_proto::types::{CommandKind, FetchAttribute, Tag};
use postfach_store::{Criterion, MailStore, MailboxId, SortCriterion, StoreResult, Uid, UidSet};

use crate::Out;
use crate::uidmap::UidMap;

/// Updating contexts one session may hold on its selected mailbox (RFC 5267 §4.3.1: at least
/// one; each costs its result, [`MAX_CONTEXT_RESULTS`] × 4 bytes at most).
pub(crate) const MAX_CONTEXTS: usize = 8;

/// Results an updating context may hold; a larger result is answered without updates.
pub(crate) const MAX_CONTEXT_RESULTS: usize = 100_000;

/// New matches of a SORT context above which it is sorted again in one store call instead of
/// placing each by binary search (each placement takes about log2(results) small sorts).
const PLACE_ONE_BY_ONE: usize = 8;

/// One searching command that asked for UPDATE.
struct Context {
    /// The searching command's tag, the correlator of its updates.
    tag: Tag,
    /// UIDs or message numbers in the updates.
    kind: CommandKind,
    /// The search criterion, resolved when the command ran.
    criterion: Criterion,
    /// `None` for SEARCH (results in mailbox order), else the SORT order.
    order: Option<Vec<SortCriterion>>,
    /// The current result in the requested order (ascending UIDs for SEARCH).
    results: Vec<Uid>,
    /// The mailbox's name and UIDVALIDITY, for updates of an ESEARCH (RFC 7377 §2.1: its
    /// responses carry them).
    correlation: Option<(String, u32)>,
    /// `UPDATE (fetch-att ...)` (RFC 5465 §7): what to FETCH of a new message that joins the
    /// result; empty for none.
    fetch: Vec<FetchAttribute>,
}

/// Messages and what to FETCH of each (RFC 5465 §7), ascending by UID.
pub(crate) type NewFetches = Vec<(Uid, Vec<FetchAttribute>)>;

/// What a searching command with UPDATE keeps besides its tag, kind and result.
pub(crate) struct NewContext {
    /// The search criterion, resolved when the command ran.
    pub(crate) criterion: Criterion,
    /// `None` for SEARCH, else the SORT order.
    pub(crate) order: Option<Vec<SortCriterion>>,
    /// The fetch attributes of `UPDATE (...)` (RFC 5465 §7); empty for none.
    pub(crate) fetch: Vec<FetchAttribute>,
    /// MAILBOX and UIDVALIDITY correlators, for ESEARCH (RFC 7377 §2.1).
    pub(crate) correlation: Option<(String, u32)>,
}

/// The updating contexts of a selected mailbox.
#[derive(Default)]
pub(crate) struct Contexts {
    list: Vec<Context>,
    /// Messages this session changed itself (STORE, FETCH setting `\Seen`): the sync that
    /// follows does not see them as changes, but the contexts must.
    touched: Vec<Uid>,
    /// New messages that joined a context with `UPDATE (fetch-att ...)` in the last sync, and
    /// what to fetch of each (RFC 5465 §7); the session sends the FETCH after the sync. The tag
    /// is the first such context's (INPROGRESS names it, should the FETCH take long).
    new_fetch: NewFetches,
    new_fetch_tag: Option<Tag>,
}

/// Why a context was not made.
pub(crate) enum Refusal {
    /// A context with this tag is updating already: the command is BAD (RFC 5267 §4.3).
    TagInUse,
    /// A limit: the search is answered without updates, `NO [NOUPDATE]`.
    Limit(&'static str),
}

impl Contexts {
    /// True when messages changed by this session wait to be checked.
    pub(crate) fn has_touched(&self) -> bool {
        !self.touched.is_empty()
    }

    /// Whether a context with `tag` may be made: BAD for a tag in use, NOUPDATE past a limit.
    pub(crate) fn check(&self, tag: &Tag, results: usize) -> Result<(), Refusal> {
        if self.list.iter().any(|c| c.tag == *tag) {
            return Err(Refusal::TagInUse);
        }
        if self.list.len() >= MAX_CONTEXTS {
            return Err(Refusal::Limit("Too many updating searches; CANCELUPDATE one first"));
        }
        if results > MAX_CONTEXT_RESULTS {
            return Err(Refusal::Limit("Too many results to keep up to date"));
        }
        Ok(())
    }

    /// Keeps a context (after [`Contexts::check`] passed).
    pub(crate) fn add(&mut self, tag: Tag, kind: CommandKind, context: NewContext, results: Vec<Uid>) {
        let NewContext { criterion, order, fetch, correlation } = context;
        self.list.push(Context { tag, kind, criterion, order, results, correlation, fetch });
    }

    /// The new messages of the last sync that joined a context with `UPDATE (fetch-att ...)`,
    /// ascending, each with the attributes of every such context (duplicates left out), and
    /// the tag of one of those contexts; `None` when there are none.
    pub(crate) fn take_new_fetches(&mut self) -> Option<(Tag, NewFetches)> {
        let tag = self.new_fetch_tag.take()?;
        let mut all = std::mem::take(&mut self.new_fetch);
        all.sort_by_key(|(uid, _)| *uid);
        let mut merged: NewFetches = Vec::with_capacity(all.len());
        for (uid, atts) in all {
            match merged.last_mut() {
                Some((last, have)) if *last == uid => {
                    for a in atts {
                        if !have.contains(&a) {
                            have.push(a);
                        }
                    }
                }
                _ => merged.push((uid, atts)),
            }
        }
        Some((tag, merged))
    }

    /// CANCELUPDATE: drops the contexts of these tags; false when one names none.
    pub(crate) fn cancel(&mut self, tags: &[String]) -> bool {
        let all_known = tags.iter().all(|t| self.list.iter().any(|c| c.tag.as_str() == t));
        self.list.retain(|c| !tags.iter().any(|t| c.tag.as_str() == t));
        all_known
    }

    /// UIDONLY was enabled (RFC 9586 §3): the contexts that report message numbers end.
    pub(crate) fn forget_numbered(&mut self) {
        self.list.retain(|c| c.kind == CommandKind::Uid);
    }

    /// Notes messages this session changed itself.
    pub(crate) fn touch(&mut self, uids: impl IntoIterator<Item = Uid>) {
        if !self.list.is_empty() {
            self.touched.extend(uids);
        }
    }

    /// Messages about to be expunged (the client still knows them, so their numbers are valid):
    /// `REMOVEFROM` for every context holding one (RFC 5267 §4.3.4: before the EXPUNGE).
    pub(crate) fn expunging(&mut self, gone: &[Uid], uids: &UidMap, out: &mut Out) {
        if self.list.is_empty() || gone.is_empty() {
            return;
        }
        let gone: HashSet<Uid> = gone.iter().copied().collect();
        for context in &mut self.list {
            let removed = remove_all(context, |u| gone.contains(&u), uids);
            if !removed.is_empty() {
                report(context, removed, Vec::new(), out);
            }
        }
    }

    /// After a sync announced flag changes (`changed`) and new messages (`added`), and before
    /// its tagged answer: matches those, and what this session changed itself, against every
    /// context and reports the differences (ADDTO after the EXISTS, §4.3.3).
    pub(crate) async fn changed(
        &mut self,
        store: &dyn MailStore,
        mailbox: MailboxId,
        changed: &[Uid],
        added: &[Uid],
        uids: &UidMap,
        out: &mut Out,
    ) -> StoreResult<()> {
        let touched = std::mem::take(&mut self.touched);
        if self.list.is_empty() {
            return Ok(());
        }
        let candidates = UidSet::from_uids(
            changed.iter().chain(added).chain(&touched).copied().filter(|u| uids.seq_of(*u).is_some()),
        );
        if candidates.is_empty() {
            return Ok(());
        }
        for context in &mut self.list {
            let narrowed =
                Criterion::And(vec![Criterion::Uids(candidates.clone()), context.criterion.clone()]);
            let matched: HashSet<Uid> = store.search(mailbox, &narrowed).await?.into_iter().collect();
            let removed = remove_all(context, |u| candidates.contains(u) && !matched.contains(&u), uids);
            let present: HashSet<Uid> = context.results.iter().copied().collect::<HashSet<_>>();
            let mut new: Vec<Uid> = matched.into_iter().filter(|u| !present.contains(u)).collect();
            new.sort_unstable();
            // RFC 5465 §7: FETCH for a new message that joins the result, not for one that
            // joins by a flag change.
            if !context.fetch.is_empty() {
                for uid in new.iter().filter(|u| added.contains(u)) {
                    self.new_fetch.push((*uid, context.fetch.clone()));
                    self.new_fetch_tag.get_or_insert_with(|| context.tag.clone());
                }
            }
            let added = insert_all(store, mailbox, context, new, uids).await?;
            if !removed.is_empty() || !added.is_empty() {
                report(context, removed, added, out);
            }
        }
        Ok(())
    }
}

/// The number the client sees for `uid` in a context of `kind`.
fn number(kind: CommandKind, uid: Uid, uids: &UidMap) -> Option<u32> {
    match kind {
        CommandKind::Uid => Some(uid.get()),
        CommandKind::Seq => uids.seq_of(uid),
    }
}

/// Removes the results `gone` says; returns the REMOVEFROM pairs. SEARCH: one pair at position 0
/// in mailbox order. SORT: the position of each as it is removed, consecutive ones together.
fn remove_all(context: &mut Context, gone: impl Fn(Uid) -> bool, uids: &UidMap) -> Vec<(u32, Vec<u32>)> {
    let kind = context.kind;
    let mut pairs: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut kept = Vec::with_capacity(context.results.len());
    for uid in context.results.drain(..) {
        if !gone(uid) {
            kept.push(uid);
            continue;
        }
        let Some(n) = number(kind, uid, uids) else { continue };
        match context.order {
            None => match pairs.first_mut() {
                Some((_, set)) => set.push(n),
                None => pairs.push((0, vec![n])),
            },
            Some(_) => {
                // Position before this removal: the results kept so far come first.
                let position = u32::try_from(kept.len() + 1).unwrap_or(u32::MAX);
                match pairs.last_mut() {
                    // Removing at the same position again takes the next result.
                    Some((p, set)) if *p == position => set.push(n),
                    _ => pairs.push((position, vec![n])),
                }
            }
        }
    }
    context.results = kept;
    pairs
}

/// Adds the new matches `new` (ascending) to the result; returns the ADDTO pairs.
async fn insert_all(
    store: &dyn MailStore,
    mailbox: MailboxId,
    context: &mut Context,
    new: Vec<Uid>,
    uids: &UidMap,
) -> StoreResult<Vec<(u32, Vec<u32>)>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let kind = context.kind;
    let Some(order) = context.order.clone() else {
        // SEARCH: mailbox order, position 0 (RFC 5267 §4.3.3).
        let numbers = new.iter().filter_map(|u| number(kind, *u, uids)).collect();
        context.results.extend(new);
        context.results.sort_unstable();
        context.results.dedup();
        return Ok(vec![(0, numbers)]);
    };
    // With many new results, one sort of them all gives each message's rank; otherwise two
    // messages are ordered by the store at each step. A result the store no longer has (its
    // expunge not announced yet) counts as coming first; it leaves with its REMOVEFROM.
    let rank: Option<std::collections::HashMap<Uid, usize>> = if new.len() > PLACE_ONE_BY_ONE {
        let all = UidSet::from_uids(context.results.iter().chain(&new).copied());
        let sorted = store.sort(mailbox, &all, &order).await?;
        Some(sorted.into_iter().enumerate().map(|(i, u)| (u, i)).collect())
    } else {
        None
    };
    for uid in &new {
        let (mut low, mut high) = (0, context.results.len());
        while low < high {
            let mid = (low + high) / 2;
            let other = context.results[mid];
            let before = match &rank {
                Some(rank) => match (rank.get(uid), rank.get(&other)) {
                    (Some(a), Some(b)) => a < b,
                    _ => false,
                },
                None => {
                    let ordered = store.sort(mailbox, &UidSet::from_uids([other, *uid]), &order).await?;
                    ordered.len() == 2 && ordered[0] == *uid
                }
            };
            if before {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        context.results.insert(low, *uid);
    }
    // Report at the final positions, ascending: each lands where it ends up.
    let fresh: HashSet<Uid> = new.iter().copied().collect();
    let placed: Vec<(usize, Uid)> =
        context.results.iter().enumerate().filter(|(_, u)| fresh.contains(u)).map(|(i, u)| (i, *u)).collect();
    let mut pairs: Vec<(u32, Vec<u32>)> = Vec::new();
    for (index, uid) in placed {
        let Some(n) = number(kind, uid, uids) else { continue };
        let position = u32::try_from(index + 1).unwrap_or(u32::MAX);
        match pairs.last_mut() {
            // Consecutive positions make one run: `ADDTO (4 7,3)` puts 7 at 4 and 3 at 5.
            Some((p, set)) if *p as usize + set.len() == position as usize => set.push(n),
            _ => pairs.push((position, vec![n])),
        }
    }
    Ok(pairs)
}

/// `* ESEARCH (TAG "t") [UID] REMOVEFROM (...) ADDTO (...)`.
fn report(context: &Context, removed: Vec<(u32, Vec<u32>)>, added: Vec<(u32, Vec<u32>)>, out: &mut Out) {
    let mut items = Vec::new();
    if !removed.is_empty() {
        items.push(ESearchItem::RemoveFrom(removed));
    }
    if !added.is_empty() {
        items.push(ESearchItem::AddTo(added));
    }
    match &context.correlation {
        Some((mailbox, uid_validity)) => out.data(&Data::MultiSearch {
            tag: context.tag.clone(),
            mailbox: mailbox.clone(),
            uid_validity: *uid_validity,
            items,
        }),
        None => {
            out.data(&Data::ESearch { tag: Some(context.tag.clone()), uid: context.kind.is_uid(), items })
        }
    }
}

/// `* NO [NOUPDATE "tag"] why` (RFC 5267 §4.3.1).
pub(crate) fn refuse(tag: &Tag, why: &str, out: &mut Out) {
    out.status(Status::No, Some(Code::NoUpdate(tag.clone())), why);
}
