//! SEARCH and UID SEARCH (RFC 9051 §6.4.4), with ESEARCH (RFC 4731), SEARCHRES (RFC 5182)
//! and CONDSTORE's MODSEQ criterion (RFC 7162 §3.1.5). Also the translation of search keys to
//! store criteria, which SORT and THREAD share.

use postfach_proto::response::{Code, Data, ESearchItem};
use postfach_proto::types::{
    CommandKind, FetchAttribute, NumberSet, PartialRange, SearchKey, SearchReturn, Tag,
};
use postfach_store::{Criterion, FetchWant, SystemFlags, Uid, UidSet};

use crate::Out;
use crate::cmd::fetch::resolve;
use crate::context::Cx;
use crate::criteria::{self, KeyScope};
use crate::respond::{Done, Reply};
use crate::selected::Selected;
use crate::updates::{self, NewContext, Refusal};

/// RFC 9051 §6.4.4: the charsets we understand (everything is matched as UTF-8).
pub(crate) fn charset_ok(charset: Option<&str>) -> bool {
    match charset {
        None => true,
        Some(c) => c.eq_ignore_ascii_case("UTF-8") || c.eq_ignore_ascii_case("US-ASCII"),
    }
}

/// SEARCH / UID SEARCH.
///
/// Memory: the result is not capped, so that UID SEARCH ALL still answers on a
/// million-message mailbox. What grows is the store's `Vec<Uid>` and the numbers (4 bytes a
/// message each, bounded by the mailbox's size, as the selected state's UID map already is) and
/// the response line (about 8 bytes a message), which is the large one: the `* SEARCH` line is
/// streamed to the driver in chunks ([`Out::search_line`]). ESEARCH's ALL is a compact
/// sequence set, small for the dense results that large searches are. SORT and THREAD must
/// hold every message's key at once, so the store caps them instead (`MAX_SORT_BYTES`,
/// `MAX_THREAD_MESSAGES`) and they answer NO [LIMIT] above it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn search(
    cx: &Cx<'_>,
    sel: &mut Selected,
    tag: &Tag,
    kind: CommandKind,
    charset: Option<&str>,
    return_opts: Option<&[SearchReturn]>,
    update_fetch: Vec<FetchAttribute>,
    criteria: Vec<SearchKey>,
    out: &mut Out,
) -> Result<Done, Reply> {
    if !charset_ok(charset) {
        return Err(Reply::no(
            Some(Code::BadCharset(vec!["UTF-8".to_owned(), "US-ASCII".to_owned()])),
            "Unsupported charset",
        ));
    }
    let update = return_opts.is_some_and(|r| r.contains(&SearchReturn::Update));
    if update {
        updatable(sel, tag, 0)?;
    }
    let criterion =
        Criterion::And(criteria.iter().map(|k| to_criterion(sel, k, 0)).collect::<Result<Vec<_>, Reply>>()?);
    // RFC 9585: a long search is reported while it runs.
    let found = cx.progress().wait(cx.ctx.store.search(sel.id, &criterion), out).await?;
    // Only messages the client knows of (new ones are announced first, at the next sync).
    let found: Vec<Uid> = found.into_iter().filter(|u| sel.seq_of(*u).is_some()).collect();
    let numbers: Vec<u32> = match kind {
        CommandKind::Uid => found.iter().map(|u| u.get()).collect(),
        CommandKind::Seq => found.iter().filter_map(|u| sel.seq_of(*u)).collect(),
    };

    // RFC 4731 / RFC 9051 §6.4.4.1: ESEARCH when RETURN was given or IMAP4rev2 is on; with
    // no result option (`RETURN ()`, or only CONTEXT and UPDATE, RFC 5267), ALL.
    let returns: Option<Vec<SearchReturn>> = match return_opts {
        Some(list) => Some(with_default_all(list)),
        None if cx.enabled.rev2 => Some(vec![SearchReturn::All]),
        None => None,
    };
    // RFC 7162 §3.1.5: a search with MODSEQ reports the highest modseq of what it returns;
    // RFC 4731 §3.2: with only MIN and/or MAX, that is of the one or two messages returned.
    let modseq = if criteria.iter().any(has_modseq) && !found.is_empty() {
        let reported = modseq_messages(returns.as_deref(), &found);
        let metas = cx.ctx.store.fetch(sel.id, &reported, FetchWant::default()).await?;
        metas.iter().map(|m| m.modseq.0).max()
    } else {
        None
    };
    let Some(returns) = returns else {
        out.search_line(&numbers, modseq).await;
        return Ok(Done::new());
    };
    let has = |r: SearchReturn| returns.contains(&r);
    let partial = partial_of(&returns)?;
    if has(SearchReturn::Save) {
        sel.saved = UidSet::from_uids(saved_results(&returns, partial, &found));
    }
    if update {
        let context = NewContext { criterion, order: None, fetch: update_fetch, correlation: None };
        keep_updated(sel, tag, kind, context, found.clone(), out);
    }
    let only_save = returns.iter().filter(|r| r.is_result()).all(|r| *r == SearchReturn::Save);
    if only_save {
        return Ok(Done::new());
    }
    let items = result_items(&returns, partial, &numbers, modseq);
    let data = Data::ESearch { tag: Some(tag.clone()), uid: kind.is_uid(), items };
    out.data(&data);
    Ok(Done::new())
}

/// The ESEARCH result items (RFC 4731 §3.1, RFC 9394, RFC 7162 §3.1.5) of `numbers` (ascending).
pub(crate) fn result_items(
    returns: &[SearchReturn],
    partial: Option<PartialRange>,
    numbers: &[u32],
    modseq: Option<u64>,
) -> Vec<ESearchItem> {
    let has = |r: SearchReturn| returns.contains(&r);
    let mut items = Vec::new();
    if has(SearchReturn::Min)
        && let Some(m) = numbers.iter().min()
    {
        items.push(ESearchItem::Min(*m));
    }
    if has(SearchReturn::Max)
        && let Some(m) = numbers.iter().max()
    {
        items.push(ESearchItem::Max(*m));
    }
    if has(SearchReturn::All) && !numbers.is_empty() {
        items.push(ESearchItem::All(NumberSet::from_numbers(numbers.iter().copied())));
    }
    if let Some(range) = partial {
        items.push(ESearchItem::Partial(range, numbers[range.select(numbers.len())].to_vec()));
    }
    if has(SearchReturn::Count) {
        items.push(ESearchItem::Count(u32::try_from(numbers.len()).unwrap_or(u32::MAX)));
    }
    if let Some(m) = modseq {
        items.push(ESearchItem::ModSeq(m));
    }
    items
}

/// A RETURN list as it is answered: with no result option (`RETURN ()`, or only CONTEXT and
/// UPDATE, RFC 5267 §4), ALL is assumed (RFC 4731 §3.1).
pub(crate) fn with_default_all(list: &[SearchReturn]) -> Vec<SearchReturn> {
    let mut returns = list.to_vec();
    if !returns.iter().any(|r| r.is_result()) {
        returns.push(SearchReturn::All);
    }
    returns
}

/// RFC 5267 §4.3: BAD when a search with this tag is updating already; checked before the search
/// runs. The limits (NOUPDATE) are [`keep_updated`]'s.
pub(crate) fn updatable(sel: &Selected, tag: &Tag, results: usize) -> Result<(), Reply> {
    match sel.contexts.check(tag, results) {
        Err(Refusal::TagInUse) => {
            Err(Reply::bad(Some(Code::ClientBug), "Tag reuse: that tag's search is updating"))
        }
        _ => Ok(()),
    }
}

/// RFC 5267 §4.3: keeps the result of a searching command with UPDATE, whose changes the
/// following syncs report (with the MAILBOX and UIDVALIDITY correlators of the context's
/// `correlation`, for ESEARCH, RFC 7377 §2.1); past a limit, `* NO [NOUPDATE "tag"]` and no
/// updates (§4.3.1).
pub(crate) fn keep_updated(
    sel: &mut Selected,
    tag: &Tag,
    kind: CommandKind,
    context: NewContext,
    results: Vec<Uid>,
    out: &mut Out,
) {
    match sel.contexts.check(tag, results.len()) {
        Ok(()) => sel.contexts.add(tag.clone(), kind, context, results),
        Err(Refusal::Limit(why)) => updates::refuse(tag, why, out),
        // Checked before the search (`updatable`); nothing changed since.
        Err(Refusal::TagInUse) => updates::refuse(tag, "Tag reuse", out),
    }
}

/// CANCELUPDATE "tag" ... (RFC 5267 §4.3.5): no more updates for these searches. A tag that
/// names no updating search is a client error (BAD [CLIENTBUG]); the others are cancelled.
pub(crate) fn cancel_update(sel: &mut Selected, tags: &[String]) -> Result<Done, Reply> {
    if sel.contexts.cancel(tags) {
        Ok(Done::new())
    } else {
        Err(Reply::bad(Some(Code::ClientBug), "No updating search has that tag"))
    }
}

/// The PARTIAL option of a RETURN list; a second PARTIAL, or PARTIAL beside ALL, is a
/// BAD (RFC 9394 §3.1).
pub(crate) fn partial_of(returns: &[SearchReturn]) -> Result<Option<PartialRange>, Reply> {
    let mut partial = None;
    for r in returns {
        if let SearchReturn::Partial(range) = r
            && partial.replace(*range).is_some()
        {
            return Err(Reply::bad(None, "At most one PARTIAL return option"));
        }
    }
    if partial.is_some() && returns.contains(&SearchReturn::All) {
        return Err(Reply::bad(None, "PARTIAL and ALL cannot be combined"));
    }
    Ok(partial)
}

/// What SAVE keeps of `results` (in result order: mailbox order for SEARCH, sort order for
/// SORT): with COUNT everything found; with PARTIAL the partial results and MIN/MAX (RFC 9394
/// Table 1); with only MIN and/or MAX those (RFC 5182 §2.4); else everything.
pub(crate) fn saved_results(
    returns: &[SearchReturn],
    partial: Option<PartialRange>,
    results: &[Uid],
) -> Vec<Uid> {
    let has = |r: SearchReturn| returns.contains(&r);
    let extremes = |v: &mut Vec<Uid>| {
        if has(SearchReturn::Min) {
            v.extend(results.first().copied());
        }
        if has(SearchReturn::Max) {
            v.extend(results.last().copied());
        }
    };
    match partial {
        Some(_) if has(SearchReturn::Count) => results.to_vec(),
        Some(range) => {
            let mut v = results[range.select(results.len())].to_vec();
            extremes(&mut v);
            v
        }
        None if has(SearchReturn::Min) || has(SearchReturn::Max) => {
            let mut v = Vec::new();
            extremes(&mut v);
            v
        }
        None => results.to_vec(),
    }
}

/// The messages whose MODSEQ a search reports (RFC 4731 §3.2): with MIN and/or MAX but neither
/// ALL nor COUNT, the lowest and/or highest found (and with PARTIAL, its results too);
/// otherwise every found message. `found` is ascending and not empty.
pub(crate) fn modseq_messages(returns: Option<&[SearchReturn]>, found: &[Uid]) -> UidSet {
    let has = |r: SearchReturn| returns.is_some_and(|list| list.contains(&r));
    let partial = returns.and_then(|list| {
        list.iter().find_map(|r| if let SearchReturn::Partial(p) = r { Some(*p) } else { None })
    });
    let returned_only = (has(SearchReturn::Min) || has(SearchReturn::Max) || partial.is_some())
        && !has(SearchReturn::All)
        && !has(SearchReturn::Count);
    if !returned_only {
        return UidSet::from_uids(found.iter().copied());
    }
    let mut uids = Vec::new();
    if let Some(range) = partial {
        uids.extend_from_slice(&found[range.select(found.len())]);
    }
    if has(SearchReturn::Min) {
        uids.extend(found.first().copied());
    }
    if has(SearchReturn::Max) {
        uids.extend(found.last().copied());
    }
    UidSet::from_uids(uids)
}

/// The messages this user has seen: the `\Seen` flag, or the user's own set in a
/// private-`\Seen` mailbox of another owner.
fn seen(sel: &Selected) -> Criterion {
    match &sel.private {
        Some(private) => Criterion::Uids(private.seen()),
        None => Criterion::FlagSet(SystemFlags::SEEN),
    }
}

/// The messages this user has not seen (the store's unseen index when the flag is shared).
fn unseen(sel: &Selected) -> Criterion {
    match &sel.private {
        Some(_) => Criterion::Not(Box::new(seen(sel))),
        None => Criterion::FlagUnset(SystemFlags::SEEN),
    }
}

/// A session's answers to the keys that depend on it: the user's `\Seen`, `\Recent`, NEW,
/// OLD and sets resolved against the selected mailbox.
struct SessionScope<'a>(&'a Selected);

impl KeyScope for SessionScope<'_> {
    type Error = Reply;

    fn scoped(&self, key: &SearchKey) -> Option<Result<Criterion, Reply>> {
        let sel = self.0;
        Some(Ok(match key {
            SearchKey::Seen => seen(sel),
            SearchKey::Unseen => unseen(sel),
            SearchKey::Recent => Criterion::Uids(sel.recent.clone()),
            SearchKey::New => Criterion::And(vec![Criterion::Uids(sel.recent.clone()), unseen(sel)]),
            SearchKey::Old => Criterion::Not(Box::new(Criterion::Uids(sel.recent.clone()))),
            SearchKey::Uid(set) => {
                return Some(resolve(sel, CommandKind::Uid, set, false).map(Criterion::Uids));
            }
            SearchKey::SequenceSet(set) => {
                return Some(resolve(sel, CommandKind::Seq, set, false).map(Criterion::Uids));
            }
            _ => return None,
        }))
    }

    fn too_deep(&self) -> Reply {
        Reply::bad(None, "Search criteria nested too deeply")
    }
}

/// SearchKey (RFC 9051 §6.4.4) → store criterion, with sequence numbers and `\Recent` resolved.
pub(crate) fn to_criterion(sel: &Selected, key: &SearchKey, depth: usize) -> Result<Criterion, Reply> {
    criteria::criterion(&SessionScope(sel), key, depth)
}

/// True when a search key (at any depth) uses MODSEQ (RFC 7162 §3.1.5).
pub(crate) fn has_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq { .. } => true,
        SearchKey::Not(k) => has_modseq(k),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        SearchKey::And(keys) => keys.iter().any(has_modseq),
        _ => false,
    }
}
