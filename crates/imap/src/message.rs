//! Commands of the selected state (RFC 9051 §6.4): CHECK, CLOSE, UNSELECT, EXPUNGE, SEARCH,
//! FETCH, STORE, COPY, MOVE and their UID forms. Authenticated-state commands fall through to
//! [`crate::mailbox`].
//!
//! Sequence numbers are turned into UIDs through the session's [`Selected`] view; the store only
//! ever sees UIDs. Large FETCHes go to the store in chunks and to the client as they are
//! rendered, so memory stays bounded whatever the mailbox size.

use std::borrow::Cow;
use std::sync::Arc;

use postfach_auth::Principal;
use postfach_message::{self as msg, MessageSummary, SectionText as MsgText};
use postfach_proto::response::{Code, Data, ESearchItem, FetchValue, Status};
use postfach_proto::types::{
    CommandBody, CommandKind, FetchAttribute, FetchItems, FetchModifiers, Flag, NumberSet, Partial,
    SearchKey, SearchReturn, Section, SectionText, SequenceSet, StoreAction, StoreOp, Tag,
};
use postfach_store::{
    Criterion, FetchWant, FlagOp, Flags, MessageExtras, MessageMeta, SystemFlags, Uid, UidSet,
};

use crate::convert;
use crate::mailbox::{self, Cx};
use crate::respond::{Reply, bad, ok};
use crate::selected::{Access, Expunges, Poll, Selected};
use crate::session::Enabled;
use crate::{Out, ServerContext};

/// Messages fetched from the store per round trip.
const FETCH_CHUNK: usize = 256;
/// Messages per round trip when only per-message metadata is fetched (FLAGS, UID, sizes,
/// dates, MODSEQ).
const FETCH_META_CHUNK: usize = 4096;

/// Most messages per store call of one STORE: a STORE over a huge mailbox becomes several
/// transactions (RFC 9051 does not make STORE atomic), so it neither holds the writer for
/// seconds nor keeps the whole result in memory; the tagged OK still waits for all of them.
const STORE_CHUNK: usize = 16_384;
/// Deepest SEARCH key nesting we translate (the parser bounds it too).
const MAX_SEARCH_DEPTH: usize = 64;

/// What a selected-state handler may use.
pub(crate) struct SelectedCx<'a> {
    pub(crate) ctx: &'a Arc<ServerContext>,
    pub(crate) user: &'a Principal,
    pub(crate) enabled: &'a Enabled,
}

/// Whether the session stays in the selected state.
pub(crate) enum Next {
    /// Still selected.
    Stay,
    /// Back to the authenticated state (CLOSE, UNSELECT).
    Unselect,
}

/// Handles a command in the selected state.
pub(crate) async fn handle(
    cx: &SelectedCx<'_>,
    sel: &mut Selected,
    tag: &Tag,
    body: CommandBody,
    out: &mut Out,
) -> Next {
    let store = &*cx.ctx.store;
    let style = cx.enabled.style();
    let done = format!("{} completed", body.name());
    // RFC 9051 §7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH by sequence number.
    let expunges = match &body {
        CommandBody::Fetch { kind: CommandKind::Seq, .. }
        | CommandBody::Store { kind: CommandKind::Seq, .. }
        | CommandBody::Search { kind: CommandKind::Seq, .. }
        // RFC 5256 §3: likewise during SORT and THREAD (not their UID forms).
        | CommandBody::Sort { kind: CommandKind::Seq, .. }
        | CommandBody::Thread { kind: CommandKind::Seq, .. } => Expunges::Deferred,
        _ => Expunges::Allowed,
    };
    if matches!(body, CommandBody::Search { .. } | CommandBody::Sort { .. } | CommandBody::Thread { .. }) {
        // A search answers about the messages the client knows of: announce what arrived since
        // (EXISTS) first, also from other processes (`deliver`), so that a message delivered
        // or appended before the command is found by it.
        if let Err(e) = sel.sync(store, out, expunges, Poll::Always, style).await {
            tracing::warn!(error = %e, "sync failed");
        }
    }
    let result: Result<Option<Code>, Reply> = match body {
        CommandBody::Check => {
            let _ = sel.sync(store, out, Expunges::Allowed, Poll::Always, style).await;
            Ok(None)
        }
        CommandBody::Close => {
            if sel.access == Access::ReadWrite {
                // RFC 9051 §6.4.1: expunge silently, then leave.
                if let Err(e) = store.expunge(sel.id, None).await {
                    Reply::from(e).write(out, tag);
                    return Next::Unselect;
                }
            }
            ok(out, tag, None, "CLOSE completed");
            return Next::Unselect;
        }
        CommandBody::Unselect => {
            ok(out, tag, None, "UNSELECT completed");
            return Next::Unselect;
        }
        CommandBody::Expunge { uids } => expunge(cx, sel, uids.as_ref(), out).await,
        CommandBody::Search { kind, charset, return_opts, criteria } => {
            search(cx, sel, tag, kind, charset.as_deref(), return_opts.as_deref(), criteria, out).await
        }
        CommandBody::Fetch { kind, set, items, modifiers } => {
            fetch(cx, sel, kind, &set, &items, &modifiers, out).await
        }
        CommandBody::Store { kind, set, action, unchanged_since } => {
            store_flags(cx, sel, kind, &set, &action, unchanged_since, out).await
        }
        CommandBody::Copy { kind, set, mailbox } => {
            copy(cx, sel, kind, &set, &mailbox, Transfer::Copy, out).await
        }
        CommandBody::Move { kind, set, mailbox } => {
            copy(cx, sel, kind, &set, &mailbox, Transfer::Move, out).await
        }
        CommandBody::Sort { kind, return_opts, criteria, charset, search } => {
            crate::sort::sort(cx, sel, tag, kind, return_opts.as_deref(), &criteria, &charset, &search, out)
                .await
        }
        CommandBody::Thread { kind, algorithm, charset, search } => {
            crate::sort::thread(cx, sel, kind, algorithm, &charset, &search, out).await
        }
        body => {
            let name = body.name();
            let mut mcx = Cx { ctx: cx.ctx, user: cx.user, enabled: cx.enabled, selected: Some(&mut *sel) };
            let result = mailbox::handle(&mut mcx, body, out).await;
            // Untagged updates first: nothing may follow the tagged response (RFC 9051 §7.5.1).
            if let Err(e) = sel.sync(store, out, Expunges::Allowed, Poll::IfSignalled, style).await {
                tracing::warn!(error = %e, "sync failed");
            }
            match result {
                Some(result) => mailbox::complete(out, tag, result),
                None => bad(out, tag, None, &format!("{name} is not valid in this state")),
            }
            return Next::Stay;
        }
    };
    if let Err(e) = sel.sync(store, out, expunges, Poll::IfSignalled, style).await {
        tracing::warn!(error = %e, "sync failed");
    }
    match result {
        Ok(code) => ok(out, tag, code, &done),
        Err(reply) => reply.write(out, tag),
    }
    Next::Stay
}

/// Turns a client's set into the UIDs it names, among the messages the client knows of.
///
/// Sequence numbers beyond the mailbox are an error (RFC 9051 §6.4.5 "BAD"), except in SEARCH,
/// where they simply match nothing.
fn resolve(sel: &Selected, kind: CommandKind, set: &SequenceSet, strict: bool) -> Result<UidSet, Reply> {
    let numbers = match set.resolve(match kind {
        CommandKind::Seq => sel.exists(),
        CommandKind::Uid => sel.uids.last().map_or(0, |u| u.0),
    }) {
        Some(n) => n,
        None => return Ok(sel.saved.clone()),
    };
    match kind {
        CommandKind::Uid => Ok(UidSet::from_ranges(numbers.ranges().iter().cloned())),
        CommandKind::Seq => {
            let exists = sel.exists();
            if exists == 0 {
                return Ok(UidSet::new());
            }
            if strict && numbers.max().is_some_and(|m| m > exists) {
                return Err(Reply::bad(None, "Invalid sequence number: beyond the last message"));
            }
            let ranges = numbers.ranges().iter().flat_map(|r| sel.uids.uid_ranges_of_seqs(r.clone()));
            Ok(UidSet::from_ranges(ranges))
        }
    }
}

/// The known UIDs inside `set`, in chunks of at most `size` messages, without materialising the
/// whole list.
fn known_chunks<'a>(sel: &'a Selected, set: &'a UidSet, size: usize) -> impl Iterator<Item = UidSet> + 'a {
    chunked(sel.uids.known_ranges(set), size)
}

/// Ascending UID ranges regrouped into sets of at most `size` UIDs each.
fn chunked(
    mut ranges: impl Iterator<Item = std::ops::RangeInclusive<u32>>,
    size: usize,
) -> impl Iterator<Item = UidSet> {
    let size = u32::try_from(size.max(1)).unwrap_or(u32::MAX);
    let mut pending: Option<std::ops::RangeInclusive<u32>> = None;
    std::iter::from_fn(move || {
        let mut chunk = Vec::new();
        let mut room = size;
        while room > 0 {
            let Some(r) = pending.take().or_else(|| ranges.next()) else { break };
            let (a, b) = (*r.start(), *r.end());
            let take = (b - a).min(room - 1);
            chunk.push(a..=a + take);
            room -= take + 1;
            if a + take < b {
                pending = Some(a + take + 1..=b);
            }
        }
        (!chunk.is_empty()).then(|| UidSet::from_ranges(chunk))
    })
}

/// The known UIDs inside `set`.
fn known(sel: &Selected, set: &UidSet) -> UidSet {
    UidSet::from_ranges(sel.uids.known_ranges(set))
}

async fn expunge(
    cx: &SelectedCx<'_>,
    sel: &mut Selected,
    uids: Option<&SequenceSet>,
    out: &mut Out,
) -> Result<Option<Code>, Reply> {
    if sel.access == Access::ReadOnly {
        return Err(Reply::no(None, "Mailbox is read-only"));
    }
    let set = match uids {
        Some(set) => Some(resolve(sel, CommandKind::Uid, set, false)?),
        None => None,
    };
    let gone = cx.ctx.store.expunge(sel.id, set.as_ref()).await?;
    sel.announce_expunges(&gone, cx.enabled.style(), out);
    if cx.enabled.qresync && !gone.is_empty() {
        // RFC 7162 §3.2.10: the tagged OK carries the mailbox's new HIGHESTMODSEQ.
        let st = cx.ctx.store.status(sel.id).await?;
        return Ok(Some(Code::HighestModSeq(st.highest_modseq.0)));
    }
    Ok(None)
}

// ------------------------------------------------------------------------------------------------
// FETCH

/// What a FETCH needs from the store.
struct Needs {
    summary: bool,
    body: bool,
    /// Some item sets `\Seen` (BODY[...] without PEEK, RFC822, RFC822.TEXT, BINARY[...]).
    sets_seen: bool,
}

fn needs(attrs: &[FetchAttribute]) -> Needs {
    let mut n = Needs { summary: false, body: false, sets_seen: false };
    for a in attrs {
        match a {
            FetchAttribute::Envelope | FetchAttribute::Body | FetchAttribute::BodyStructure => {
                n.summary = true
            }
            FetchAttribute::BodySection { peek, .. } | FetchAttribute::Binary { peek, .. } => {
                n.summary = true;
                n.body = true;
                n.sets_seen |= !peek;
            }
            FetchAttribute::BinarySize { .. } | FetchAttribute::Rfc822Header => {
                n.summary = true;
                n.body = true;
            }
            FetchAttribute::Rfc822 | FetchAttribute::Rfc822Text => {
                n.summary = true;
                n.body = true;
                n.sets_seen = true;
            }
            _ => {}
        }
    }
    n
}

async fn fetch(
    cx: &SelectedCx<'_>,
    sel: &mut Selected,
    kind: CommandKind,
    set: &SequenceSet,
    items: &FetchItems,
    modifiers: &FetchModifiers,
    out: &mut Out,
) -> Result<Option<Code>, Reply> {
    let store = &*cx.ctx.store;
    let mut attrs = items.attributes();
    if modifiers.vanished && (!kind.is_uid() || modifiers.changed_since.is_none() || !cx.enabled.qresync) {
        // RFC 7162 §3.2.6: VANISHED only with UID FETCH, CHANGEDSINCE and QRESYNC enabled.
        return Err(Reply::bad(None, "VANISHED needs UID FETCH with CHANGEDSINCE after ENABLE QRESYNC"));
    }
    let condstore = cx.enabled.condstore;
    if (modifiers.changed_since.is_some() || (condstore && needs(&attrs).sets_seen))
        && !attrs.contains(&FetchAttribute::ModSeq)
    {
        // RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ.
        attrs.push(FetchAttribute::ModSeq);
    }
    // RFC 9051 §6.4.9: UID FETCH always returns UID.
    if kind.is_uid() && !attrs.contains(&FetchAttribute::Uid) {
        attrs.insert(0, FetchAttribute::Uid);
    }
    let need = needs(&attrs);
    let set_seen = need.sets_seen && sel.access == Access::ReadWrite;
    if set_seen && !attrs.contains(&FetchAttribute::Flags) {
        // RFC 9051 §6.4.5: the implicit \Seen change is reported in the same response.
        attrs.push(FetchAttribute::Flags);
    }
    let mut uids = resolve(sel, kind, set, true)?;
    let rev2 = cx.enabled.rev2;
    if let Some(since) = modifiers.changed_since {
        // Only what changed after `since`: ask the change log instead of reading every message.
        let uid_next = Uid(sel.uids.last().map_or(1, |u| u.0.saturating_add(1)));
        let changes = store.changes_since(sel.id, postfach_store::ModSeq(since), uid_next).await?;
        if modifiers.vanished {
            let gone =
                NumberSet::from_numbers(changes.expunged.iter().filter(|u| uids.contains(**u)).map(|u| u.0));
            if !gone.is_empty() {
                out.data(&Data::Vanished { earlier: true, uids: gone });
            }
        }
        uids = UidSet::from_uids(changes.flags.iter().map(|(u, _, _)| *u).filter(|u| uids.contains(*u)));
    }
    let want_extras = attrs.iter().any(|a| {
        matches!(a, FetchAttribute::EmailId | FetchAttribute::SaveDate | FetchAttribute::Preview { .. })
    });
    // Flags, sizes and dates only: a few dozen bytes per message, so bigger chunks.
    let chunk = if need.body || need.summary || want_extras { FETCH_CHUNK } else { FETCH_META_CHUNK };
    let chunks: Vec<UidSet> = known_chunks(sel, &uids, chunk).collect();
    if let [only] = chunks.as_slice()
        && let Some(uid) = only.iter().next()
        && only.iter().nth(1).is_none()
    {
        check_cte(store, sel, uid, &attrs).await?;
    }
    let header_only = only_header(&attrs);
    // RFC 2180 §4.1: a message another session expunged keeps its sequence number here until
    // this session is told. Its UID is still known and served; anything else ends the FETCH
    // with NO [EXPUNGEISSUED] (RFC 5530) after the rest was sent.
    let uid_only = attrs.iter().all(|a| *a == FetchAttribute::Uid);
    let mut expunge_issued = false;
    for chunk in chunks {
        if set_seen {
            let seen = Flags { system: SystemFlags::SEEN, keywords: Vec::new() };
            let r = store.store_flags(sel.id, &chunk, FlagOp::Add, &seen, None).await?;
            sel.own_change(r.modseq_before, r.modseq_after);
        }
        let metas = store.fetch(sel.id, &chunk, FetchWant { summary: need.summary }).await?;
        if metas.len() < usize::try_from(chunk.len()).unwrap_or(usize::MAX) {
            let present = UidSet::from_uids(metas.iter().map(|m| m.uid));
            for uid in chunk.iter().filter(|u| !present.contains(*u)) {
                let Some(seq) = sel.seq_of(uid) else { continue };
                if uid_only {
                    let data = Data::Fetch { seq, attrs: vec![FetchValue::Uid(uid.0)] };
                    out.data(&data);
                } else {
                    expunge_issued = true;
                }
            }
        }
        let extras = if want_extras { store.fetch_extras(sel.id, &chunk).await? } else { Vec::new() };
        // Message bytes come in batches of about BODY_BATCH bytes: a page of headers is one
        // round trip, and a FETCH of large messages never holds more than a batch in memory.
        let mut start = 0;
        while start < metas.len() {
            let mut end = start;
            let mut wanted = Vec::new();
            let mut bytes = 0usize;
            while end < metas.len() && (end == start || bytes < BODY_BATCH) {
                let meta = &metas[end];
                if need.body {
                    let limit = if header_only { header_bytes(meta) } else { meta.size };
                    bytes += limit as usize;
                    wanted.push((meta.uid, limit));
                }
                end += 1;
            }
            let raws = if need.body { store.bodies(sel.id, &wanted).await? } else { Vec::new() };
            for meta in &metas[start..end] {
                let Some(seq) = sel.seq_of(meta.uid) else { continue };
                let raw = match need.body {
                    true => match raws.binary_search_by_key(&meta.uid, |(u, _)| *u) {
                        Ok(i) => Some(raws[i].1.as_slice()),
                        // Expunged meanwhile: nothing to say about it.
                        Err(_) => {
                            expunge_issued = true;
                            continue;
                        }
                    },
                    false => None,
                };
                let recent = !rev2 && sel.recent.contains(meta.uid);
                let extra =
                    extras.binary_search_by_key(&meta.uid, |e| e.uid).ok().and_then(|i| extras.get(i));
                let values = render(&attrs, meta, raw, extra, recent);
                out.data(&Data::Fetch { seq, attrs: values });
                out.flush_if_large().await;
            }
            start = end;
        }
    }
    if expunge_issued {
        return Err(Reply::no(Some(Code::ExpungeIssued), "Some messages were expunged by another session"));
    }
    Ok(None)
}

/// Bytes of message data fetched per store round trip.
const BODY_BATCH: usize = 4 * 1024 * 1024;

/// True when every item that needs message bytes only needs the top-level header.
fn only_header(attrs: &[FetchAttribute]) -> bool {
    attrs.iter().all(|a| match a {
        FetchAttribute::BodySection { section, .. } => {
            section.part.is_empty()
                && matches!(
                    section.text,
                    Some(
                        SectionText::Header | SectionText::HeaderFields(_) | SectionText::HeaderFieldsNot(_)
                    )
                )
        }
        FetchAttribute::Rfc822Header => true,
        FetchAttribute::Rfc822
        | FetchAttribute::Rfc822Text
        | FetchAttribute::Binary { .. }
        | FetchAttribute::BinarySize { .. } => false,
        _ => true,
    })
}

/// How many leading bytes hold a message's header and the blank line after it.
fn header_bytes(meta: &MessageMeta) -> u32 {
    match &meta.summary {
        Some(s) => s.structure.body.start.max(s.structure.header.end).min(meta.size),
        None => meta.size,
    }
}

/// RFC 3516 §4.3: when one message is fetched and a requested BINARY part has a
/// Content-Transfer-Encoding we cannot undo, the command fails with `NO [UNKNOWN-CTE]` (before
/// anything is set `\Seen`). In a FETCH of several messages such a part reads NIL instead, so
/// one odd message does not fail a whole mailbox fetch.
async fn check_cte(
    store: &dyn postfach_store::MailStore,
    sel: &Selected,
    uid: Uid,
    attrs: &[FetchAttribute],
) -> Result<(), Reply> {
    let parts: Vec<Vec<u32>> = attrs
        .iter()
        .filter_map(|a| match a {
            // Only part numbers are decoded (a section text is served as BODY[] serves it).
            FetchAttribute::Binary { section, .. } | FetchAttribute::BinarySize { section }
                if section.text.is_none() =>
            {
                Some(section.part.iter().map(|p| p.get()).collect())
            }
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        return Ok(());
    }
    let metas = store.fetch(sel.id, &UidSet::from_uids([uid]), FetchWant { summary: true }).await?;
    let Some(summary) = metas.first().and_then(|m| m.summary.clone()) else { return Ok(()) };
    let raw = store.body(sel.id, uid).await?;
    for part in parts {
        if let Err(msg::BinaryError::UnknownCte(cte)) = msg::binary(&raw, &summary, &part) {
            return Err(Reply::no(
                Some(Code::UnknownCte),
                format!("Cannot decode content-transfer-encoding {cte}"),
            ));
        }
    }
    Ok(())
}

/// Renders the requested items of one message.
fn render(
    attrs: &[FetchAttribute],
    meta: &MessageMeta,
    raw: Option<&[u8]>,
    extras: Option<&MessageExtras>,
    recent: bool,
) -> Vec<FetchValue> {
    let summary = meta.summary.as_deref();
    let mut values = Vec::with_capacity(attrs.len());
    for a in attrs {
        let v = match a {
            FetchAttribute::Flags => FetchValue::Flags(convert::flags(&meta.flags, recent)),
            FetchAttribute::Uid => FetchValue::Uid(meta.uid.0),
            FetchAttribute::InternalDate => match convert::date(meta.internal_date) {
                Some(d) => FetchValue::InternalDate(d),
                None => continue,
            },
            FetchAttribute::Rfc822Size => FetchValue::Rfc822Size(u64::from(meta.size)),
            FetchAttribute::ModSeq => FetchValue::ModSeq(meta.modseq.0),
            FetchAttribute::Envelope => match summary {
                Some(s) => FetchValue::Envelope(Box::new(convert::envelope(&s.envelope))),
                None => continue,
            },
            FetchAttribute::BodyStructure => match summary {
                Some(s) => FetchValue::BodyStructure(convert::body(&s.structure, true)),
                None => continue,
            },
            FetchAttribute::Body => match summary {
                Some(s) => FetchValue::Body(convert::body(&s.structure, false)),
                None => continue,
            },
            FetchAttribute::BodySection { section, partial, .. } => {
                let data = match (raw, summary) {
                    (Some(raw), Some(s)) => section_bytes(raw, s, section),
                    _ => None,
                };
                let (origin, data) = apply_partial(data, *partial);
                FetchValue::BodySection { section: section.clone(), origin, data }
            }
            FetchAttribute::Binary { section, partial, .. } => {
                let data = match (raw, summary) {
                    (Some(raw), Some(s)) => binary_section_bytes(raw, s, section),
                    _ => None,
                };
                let (origin, data) = apply_partial(data, *partial);
                FetchValue::Binary { section: section.clone(), origin, data }
            }
            FetchAttribute::BinarySize { section } => {
                // RFC 9051 §7.5.2: the size of exactly what BINARY[part] returns, and NIL where
                // that is NIL (a part that does not exist).
                let size = match (raw, summary) {
                    (Some(raw), Some(s)) => binary_section_bytes(raw, s, section).map(|d| d.len() as u64),
                    _ => None,
                };
                FetchValue::BinarySize { section: section.clone(), size }
            }
            FetchAttribute::Rfc822 => FetchValue::Rfc822(raw.map(<[u8]>::to_vec)),
            FetchAttribute::Rfc822Header => FetchValue::Rfc822Header(match (raw, summary) {
                (Some(raw), Some(s)) => msg::section(raw, s, &[], MsgText::Header).map(Cow::into_owned),
                _ => None,
            }),
            FetchAttribute::Rfc822Text => FetchValue::Rfc822Text(match (raw, summary) {
                (Some(raw), Some(s)) => msg::section(raw, s, &[], MsgText::Text).map(Cow::into_owned),
                _ => None,
            }),
            // RFC 8474 §5.1: EMAILID, derived from the message's bytes by the store.
            FetchAttribute::EmailId => match extras {
                Some(e) => FetchValue::EmailId(e.email_id.clone()),
                None => continue,
            },
            // RFC 8474 §5.2: THREADID NIL, as threads are not kept (THREAD computes them).
            FetchAttribute::ThreadId => FetchValue::ThreadId(None),
            // RFC 8514 §4.2.
            FetchAttribute::SaveDate => FetchValue::SaveDate(extras.and_then(|e| convert::date(e.save_date))),
            // RFC 8970 §3.2: never NIL without LAZY; the store always has a preview (maybe empty).
            FetchAttribute::Preview { .. } => match extras {
                Some(e) => FetchValue::Preview(Some(e.preview.clone())),
                None => continue,
            },
        };
        values.push(v);
    }
    values
}

/// What BINARY[part] returns: the decoded content of a leaf part; a multipart or message part
/// has no transfer encoding of its own, so its raw bytes (as Dovecot does). An encoding we cannot
/// undo reads NIL here (a single-message FETCH was already refused with UNKNOWN-CTE, RFC 3516
/// §4.3; in a multi-message FETCH one odd part does not fail the whole mailbox).
/// What BINARY[section] serves: the decoded part for part numbers, the bytes BODY[section]
/// serves for a section text (nothing there is transfer-encoded).
fn binary_section_bytes(raw: &[u8], summary: &MessageSummary, section: &Section) -> Option<Vec<u8>> {
    if section.text.is_some() {
        return section_bytes(raw, summary, section);
    }
    let part: Vec<u32> = section.part.iter().map(|p| p.get()).collect();
    binary_bytes(raw, summary, &part)
}

fn binary_bytes(raw: &[u8], summary: &MessageSummary, part: &[u32]) -> Option<Vec<u8>> {
    match msg::binary(raw, summary, part) {
        Ok(d) => d.map(Cow::into_owned),
        Err(msg::BinaryError::NotLeaf) => {
            msg::section(raw, summary, part, MsgText::Full).map(Cow::into_owned)
        }
        Err(msg::BinaryError::UnknownCte(_)) => None,
    }
}

fn section_bytes(raw: &[u8], summary: &MessageSummary, section: &Section) -> Option<Vec<u8>> {
    let part: Vec<u32> = section.part.iter().map(|p| p.get()).collect();
    let names: Vec<Vec<u8>>;
    let text = match &section.text {
        None => MsgText::Full,
        Some(SectionText::Header) => MsgText::Header,
        Some(SectionText::Text) => MsgText::Text,
        Some(SectionText::Mime) => MsgText::Mime,
        Some(SectionText::HeaderFields(list)) => {
            names = list.iter().map(|s| s.as_bytes().to_vec()).collect();
            MsgText::HeaderFields(&names)
        }
        Some(SectionText::HeaderFieldsNot(list)) => {
            names = list.iter().map(|s| s.as_bytes().to_vec()).collect();
            MsgText::HeaderFieldsNot(&names)
        }
    };
    msg::section(raw, summary, &part, text).map(Cow::into_owned)
}

/// RFC 9051 §6.4.5 partial fetch: `<offset.length>`; the response names the origin octet.
fn apply_partial(data: Option<Vec<u8>>, partial: Option<Partial>) -> (Option<u32>, Option<Vec<u8>>) {
    let Some(p) = partial else { return (None, data) };
    let data = data.map(|d| {
        let start = (p.offset as usize).min(d.len());
        let end = start.saturating_add(p.length.get() as usize).min(d.len());
        d[start..end].to_vec()
    });
    (Some(p.offset), data)
}

// ------------------------------------------------------------------------------------------------
// STORE

async fn store_flags(
    cx: &SelectedCx<'_>,
    sel: &mut Selected,
    kind: CommandKind,
    set: &SequenceSet,
    action: &StoreAction,
    unchanged_since: Option<u64>,
    out: &mut Out,
) -> Result<Option<Code>, Reply> {
    if sel.access == Access::ReadOnly {
        return Err(Reply::no(None, "Mailbox is read-only"));
    }
    let flags = convert::to_store_flags(&action.flags)
        .map_err(|f| Reply::bad(None, format!("Unknown system flag {}", f.0)))?;
    let resolved = resolve(sel, kind, set, true)?;
    let chunks: Vec<UidSet> = known_chunks(sel, &resolved, STORE_CHUNK).collect();
    let op = match action.op {
        StoreOp::Add => FlagOp::Add,
        StoreOp::Remove => FlagOp::Remove,
        StoreOp::Replace => FlagOp::Replace,
    };
    let store = &*cx.ctx.store;
    let rev2 = cx.enabled.rev2;
    let condstore = cx.enabled.condstore;
    let mut modified = Vec::new();
    for (i, uids) in chunks.iter().enumerate() {
        let result =
            store.store_flags(sel.id, uids, op, &flags, unchanged_since.map(postfach_store::ModSeq)).await?;
        sel.own_change(result.modseq_before, result.modseq_after);
        if i == 0 {
            sel.learn_keywords(&flags.keywords, out);
        }
        for (uid, flags, modseq) in &result.updated {
            let Some(seq) = sel.seq_of(*uid) else { continue };
            // RFC 7162 §3.1.3: with CONDSTORE the client needs the new MODSEQ even after .SILENT.
            if action.silent && !condstore {
                continue;
            }
            let mut attrs = Vec::with_capacity(3);
            if !action.silent {
                attrs.push(FetchValue::Flags(convert::flags(flags, !rev2 && sel.recent.contains(*uid))));
            }
            // RFC 7162 §3.2.4: CONDSTORE/QRESYNC clients get the UID with every FETCH.
            if kind.is_uid() || condstore {
                attrs.push(FetchValue::Uid(uid.0));
            }
            if condstore {
                attrs.push(FetchValue::ModSeq(modseq.0));
            }
            out.data(&Data::Fetch { seq, attrs });
            out.flush_if_large().await;
        }
        modified.extend(result.modified);
    }
    if !modified.is_empty() {
        // RFC 7162 §3.1.3: MODIFIED lists what UNCHANGEDSINCE protected.
        let nums: NumberSet = match kind {
            CommandKind::Uid => NumberSet::from_numbers(modified.iter().map(|u| u.0)),
            CommandKind::Seq => NumberSet::from_numbers(modified.iter().filter_map(|u| sel.seq_of(*u))),
        };
        return Ok(Some(Code::Modified(nums)));
    }
    Ok(None)
}

// ------------------------------------------------------------------------------------------------
// COPY / MOVE

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transfer {
    Copy,
    Move,
}

async fn copy(
    cx: &SelectedCx<'_>,
    sel: &mut Selected,
    kind: CommandKind,
    set: &SequenceSet,
    target: &postfach_proto::types::MailboxName,
    transfer: Transfer,
    out: &mut Out,
) -> Result<Option<Code>, Reply> {
    if transfer == Transfer::Move && sel.access == Access::ReadOnly {
        return Err(Reply::no(None, "Mailbox is read-only"));
    }
    let uids = known(sel, &resolve(sel, kind, set, true)?);
    let name = mailbox::decode_name(cx.enabled, target)?;
    let store = &*cx.ctx.store;
    let Some(info) = store.mailbox_by_name(cx.user.account, &name).await? else {
        // RFC 9051 §6.4.7: a missing target gets TRYCREATE.
        return Err(Reply::no(Some(Code::TryCreate), "No such mailbox; create it first"));
    };
    if uids.is_empty() {
        return Ok(None);
    }
    let copied = match transfer {
        Transfer::Copy => store.copy(sel.id, &uids, info.id).await?,
        Transfer::Move => store.move_messages(sel.id, &uids, info.id).await?,
    };
    // RFC 4315 §3: COPYUID uidvalidity source-uids target-uids, in matching order.
    let from = NumberSet::from_numbers(copied.mapping.iter().map(|(s, _)| s.0));
    let to = NumberSet::from_numbers(copied.mapping.iter().map(|(_, t)| t.0));
    let code = (!copied.mapping.is_empty()).then_some(Code::CopyUid {
        uidvalidity: copied.uid_validity.0,
        from,
        to,
    });
    match transfer {
        Transfer::Copy => Ok(code),
        Transfer::Move => {
            // RFC 6851 §4.3: COPYUID goes in an untagged OK before the expunges.
            if let Some(code) = &code {
                out.status(Status::Ok, Some(code.clone()), "Moved");
            }
            let gone: Vec<Uid> = copied.mapping.iter().map(|(s, _)| *s).collect();
            sel.announce_expunges(&gone, cx.enabled.style(), out);
            Ok(None)
        }
    }
}

// ------------------------------------------------------------------------------------------------
// SEARCH

/// RFC 9051 §6.4.4: the charsets we understand (everything is matched as UTF-8).
pub(crate) fn charset_ok(charset: Option<&str>) -> bool {
    match charset {
        None => true,
        Some(c) => c.eq_ignore_ascii_case("UTF-8") || c.eq_ignore_ascii_case("US-ASCII"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn search(
    cx: &SelectedCx<'_>,
    sel: &mut Selected,
    tag: &Tag,
    kind: CommandKind,
    charset: Option<&str>,
    return_opts: Option<&[SearchReturn]>,
    criteria: Vec<SearchKey>,
    out: &mut Out,
) -> Result<Option<Code>, Reply> {
    if !charset_ok(charset) {
        return Err(Reply::no(
            Some(Code::BadCharset(vec!["UTF-8".to_owned(), "US-ASCII".to_owned()])),
            "Unsupported charset",
        ));
    }
    let criterion =
        Criterion::And(criteria.iter().map(|k| to_criterion(sel, k, 0)).collect::<Result<Vec<_>, Reply>>()?);
    let found = cx.ctx.store.search(sel.id, &criterion).await?;
    // Only messages the client knows of (new ones are announced first, at the next sync).
    let found: Vec<Uid> = found.into_iter().filter(|u| sel.seq_of(*u).is_some()).collect();
    let numbers: Vec<u32> = match kind {
        CommandKind::Uid => found.iter().map(|u| u.0).collect(),
        CommandKind::Seq => found.iter().filter_map(|u| sel.seq_of(*u)).collect(),
    };

    // RFC 4731 / RFC 9051 §6.4.4.1: ESEARCH when RETURN was given or IMAP4rev2 is on.
    let returns: Option<Vec<SearchReturn>> = match return_opts {
        Some([]) => Some(vec![SearchReturn::All]),
        Some(list) => Some(list.to_vec()),
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
        out.data(&Data::Search { numbers, modseq });
        return Ok(None);
    };
    let has = |r: SearchReturn| returns.contains(&r);
    if has(SearchReturn::Save) {
        // RFC 5182 §2.4: with MIN or MAX, only those are saved.
        let saved: Vec<Uid> = if has(SearchReturn::Min) || has(SearchReturn::Max) {
            let mut v = Vec::new();
            if has(SearchReturn::Min) {
                v.extend(found.first().copied());
            }
            if has(SearchReturn::Max) {
                v.extend(found.last().copied());
            }
            v
        } else {
            found.clone()
        };
        sel.saved = UidSet::from_uids(saved);
    }
    let only_save = returns.iter().all(|r| *r == SearchReturn::Save);
    if only_save {
        return Ok(None);
    }
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
    if has(SearchReturn::Count) {
        items.push(ESearchItem::Count(numbers.len() as u32));
    }
    if let Some(m) = modseq {
        items.push(ESearchItem::ModSeq(m));
    }
    let data = Data::ESearch { tag: Some(tag.clone()), uid: kind.is_uid(), items };
    out.data(&data);
    Ok(None)
}

/// The messages whose MODSEQ a search reports (RFC 4731 §3.2): with MIN and/or MAX but neither
/// ALL nor COUNT, the lowest and/or highest found; otherwise every found message. `found` is
/// ascending and not empty.
fn modseq_messages(returns: Option<&[SearchReturn]>, found: &[Uid]) -> UidSet {
    let has = |r: SearchReturn| returns.is_some_and(|list| list.contains(&r));
    let extremes_only = (has(SearchReturn::Min) || has(SearchReturn::Max))
        && !has(SearchReturn::All)
        && !has(SearchReturn::Count);
    if !extremes_only {
        return UidSet::from_uids(found.iter().copied());
    }
    let mut uids = Vec::new();
    if has(SearchReturn::Min) {
        uids.extend(found.first().copied());
    }
    if has(SearchReturn::Max) {
        uids.extend(found.last().copied());
    }
    UidSet::from_uids(uids)
}

fn text(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

/// SearchKey (RFC 9051 §6.4.4) → store criterion, with sequence numbers and `\Recent` resolved.
pub(crate) fn to_criterion(sel: &Selected, key: &SearchKey, depth: usize) -> Result<Criterion, Reply> {
    if depth > MAX_SEARCH_DEPTH {
        return Err(Reply::bad(None, "Search criteria nested too deeply"));
    }
    let rec = |k: &SearchKey| to_criterion(sel, k, depth + 1);
    let header = |name: &str, v: &[u8]| Criterion::Header(name.to_owned(), text(v));
    Ok(match key {
        SearchKey::All => Criterion::All,
        SearchKey::Answered => Criterion::FlagSet(SystemFlags::ANSWERED),
        SearchKey::Deleted => Criterion::FlagSet(SystemFlags::DELETED),
        SearchKey::Draft => Criterion::FlagSet(SystemFlags::DRAFT),
        SearchKey::Flagged => Criterion::FlagSet(SystemFlags::FLAGGED),
        SearchKey::Seen => Criterion::FlagSet(SystemFlags::SEEN),
        SearchKey::Unanswered => Criterion::FlagUnset(SystemFlags::ANSWERED),
        SearchKey::Undeleted => Criterion::FlagUnset(SystemFlags::DELETED),
        SearchKey::Undraft => Criterion::FlagUnset(SystemFlags::DRAFT),
        SearchKey::Unflagged => Criterion::FlagUnset(SystemFlags::FLAGGED),
        SearchKey::Unseen => Criterion::FlagUnset(SystemFlags::SEEN),
        SearchKey::Keyword(f) => flag_criterion(f, true),
        SearchKey::Unkeyword(f) => flag_criterion(f, false),
        SearchKey::Recent => Criterion::Uids(sel.recent.clone()),
        SearchKey::New => {
            Criterion::And(vec![Criterion::Uids(sel.recent.clone()), Criterion::FlagUnset(SystemFlags::SEEN)])
        }
        SearchKey::Old => Criterion::Not(Box::new(Criterion::Uids(sel.recent.clone()))),
        SearchKey::Bcc(s) => header("bcc", s),
        SearchKey::Cc(s) => header("cc", s),
        SearchKey::From(s) => header("from", s),
        SearchKey::To(s) => header("to", s),
        SearchKey::Subject(s) => header("subject", s),
        SearchKey::Header(name, v) => Criterion::Header(text(name).to_ascii_lowercase(), text(v)),
        SearchKey::Body(s) => Criterion::Body(text(s)),
        SearchKey::Text(s) => Criterion::Text(text(s)),
        SearchKey::Before(d) => Criterion::Before(d.days_since_epoch()),
        SearchKey::On(d) => Criterion::On(d.days_since_epoch()),
        SearchKey::Since(d) => Criterion::Since(d.days_since_epoch()),
        SearchKey::SentBefore(d) => Criterion::SentBefore(d.days_since_epoch()),
        SearchKey::SentOn(d) => Criterion::SentOn(d.days_since_epoch()),
        SearchKey::SentSince(d) => Criterion::SentSince(d.days_since_epoch()),
        SearchKey::Larger(n) => Criterion::Larger(u32::try_from(*n).unwrap_or(u32::MAX)),
        SearchKey::Smaller(n) => Criterion::Smaller(u32::try_from(*n).unwrap_or(u32::MAX)),
        SearchKey::Uid(set) => Criterion::Uids(resolve(sel, CommandKind::Uid, set, false)?),
        SearchKey::SequenceSet(set) => Criterion::Uids(resolve(sel, CommandKind::Seq, set, false)?),
        SearchKey::Not(k) => Criterion::Not(Box::new(rec(k)?)),
        SearchKey::Or(a, b) => Criterion::Or(Box::new(rec(a)?), Box::new(rec(b)?)),
        SearchKey::And(keys) => Criterion::And(keys.iter().map(rec).collect::<Result<_, _>>()?),
        SearchKey::ModSeq { modseq, .. } => Criterion::ModSeqAtLeast(postfach_store::ModSeq(*modseq)),
        SearchKey::Older(n) => Criterion::Older(u64::from(n.get())),
        SearchKey::Younger(n) => Criterion::Younger(u64::from(n.get())),
        SearchKey::SavedBefore(d) => Criterion::SavedBefore(d.days_since_epoch()),
        SearchKey::SavedOn(d) => Criterion::SavedOn(d.days_since_epoch()),
        SearchKey::SavedSince(d) => Criterion::SavedSince(d.days_since_epoch()),
        // Every mailbox keeps save dates (RFC 8514 §4.3).
        SearchKey::SaveDateSupported => Criterion::All,
        SearchKey::EmailId(id) => Criterion::EmailId(id.clone()),
        // THREADID is NIL for every message (FETCH THREADID), so no message has this one.
        SearchKey::ThreadId(_) => Criterion::Uids(UidSet::new()),
    })
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

/// KEYWORD / UNKEYWORD: a system flag given as keyword still means the flag.
fn flag_criterion(f: &Flag, set: bool) -> Criterion {
    let bit = match f {
        Flag::Seen => Some(SystemFlags::SEEN),
        Flag::Answered => Some(SystemFlags::ANSWERED),
        Flag::Flagged => Some(SystemFlags::FLAGGED),
        Flag::Deleted => Some(SystemFlags::DELETED),
        Flag::Draft => Some(SystemFlags::DRAFT),
        _ => None,
    };
    match (bit, set) {
        (Some(b), true) => Criterion::FlagSet(b),
        (Some(b), false) => Criterion::FlagUnset(b),
        (None, true) => Criterion::Keyword(f.to_string()),
        (None, false) => Criterion::NoKeyword(f.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_ranges_by_message_count() {
        let sizes = |ranges: Vec<std::ops::RangeInclusive<u32>>, size| {
            chunked(ranges.into_iter(), size).map(|c| c.ranges().to_vec()).collect::<Vec<_>>()
        };
        assert_eq!(sizes(vec![1..=10], 4), vec![vec![1..=4], vec![5..=8], vec![9..=10]]);
        assert_eq!(sizes(vec![1..=2, 5..=6, 9..=9], 3), vec![vec![1..=2, 5..=5], vec![6..=6, 9..=9]]);
        assert_eq!(sizes(vec![1..=u32::MAX], usize::MAX).len(), 1);
        assert_eq!(sizes(vec![7..=7], 0), vec![vec![7..=7]]);
        assert!(sizes(vec![], 5).is_empty());
    }
}
