//! FETCH and UID FETCH (RFC 9051 §6.4.5), with CONDSTORE's CHANGEDSINCE and QRESYNC's
//! VANISHED (RFC 7162 §3.1.4, §3.2.6); and the resolution of a client's sequence set into UIDs
//! that every command taking a set shares.
//!
//! Sequence numbers are turned into UIDs through the session's [`Selected`] view; the store only
//! ever sees UIDs. Large FETCHes go to the store in chunks and to the client as they are
//! rendered, so memory stays bounded whatever the mailbox size.

use std::borrow::Cow;

use postfach_message::{self as msg, MessageSummary, SectionText as MsgText};
use postfach_proto::response::{Code, Data, FetchValue, Status};
use postfach_proto::types::{
    CommandKind, FetchAttribute, FetchItems, FetchModifiers, NumberSet, Partial, Section, SectionText,
    SequenceSet,
};
use postfach_store::{FetchWant, FlagOp, Flags, MessageExtras, MessageMeta, SystemFlags, Uid, UidSet};

use crate::context::Cx;
use crate::respond::{Done, Reply};
use crate::selected::{Access, Selected};
use crate::{Out, convert};

/// Messages fetched from the store per round trip.
const FETCH_CHUNK: usize = 256;
/// Messages per round trip when only per-message metadata is fetched (FLAGS, UID, sizes,
/// dates, MODSEQ).
const FETCH_META_CHUNK: usize = 4096;

/// Turns a client's set into the UIDs it names, among the messages the client knows of.
///
/// Sequence numbers beyond the mailbox are an error (RFC 9051 §6.4.5 "BAD"), except in SEARCH,
/// where they simply match nothing.
pub(crate) fn resolve(
    sel: &Selected,
    kind: CommandKind,
    set: &SequenceSet,
    strict: bool,
) -> Result<UidSet, Reply> {
    let numbers = match set.resolve(match kind {
        CommandKind::Seq => sel.exists(),
        CommandKind::Uid => sel.uids.last().map_or(0, Uid::get),
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
pub(crate) fn known_chunks<'a>(
    sel: &'a Selected,
    set: &'a UidSet,
    size: usize,
) -> impl Iterator<Item = UidSet> + 'a {
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
pub(crate) fn known(sel: &Selected, set: &UidSet) -> UidSet {
    UidSet::from_ranges(sel.uids.known_ranges(set))
}

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

/// The UIDs of `set` at the positions `range` selects (in UID order), without listing the
/// set's UIDs one by one.
fn slice_of(set: &UidSet, range: postfach_proto::types::PartialRange) -> UidSet {
    let len = usize::try_from(set.len()).unwrap_or(usize::MAX);
    let wanted = range.select(len);
    let (mut at, mut out) = (0usize, Vec::new());
    for r in set.ranges() {
        let n = (*r.end() - *r.start()) as usize + 1;
        let (from, to) = (wanted.start.max(at), wanted.end.min(at + n));
        if from < to {
            let first = *r.start() + (from - at) as u32;
            let last = *r.start() + (to - at) as u32 - 1;
            out.push(first..=last);
        }
        at += n;
        if at >= wanted.end {
            break;
        }
    }
    UidSet::from_ranges(out)
}

pub(crate) async fn fetch(
    cx: &Cx<'_>,
    sel: &mut Selected,
    kind: CommandKind,
    set: &SequenceSet,
    items: &FetchItems,
    modifiers: &FetchModifiers,
    out: &mut Out,
) -> Result<Done, Reply> {
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
    // RFC 9586 §3.3: a UIDFETCH response carries the UID item only when it was asked for.
    let keep_uid = cx.enabled.uidonly && attrs.contains(&FetchAttribute::Uid);
    // RFC 9051 §6.4.9: UID FETCH always returns UID.
    if kind.is_uid() && !attrs.contains(&FetchAttribute::Uid) {
        attrs.insert(0, FetchAttribute::Uid);
    }
    let need = needs(&attrs);
    // RFC 4314 §4: without `s`, a FETCH that would set `\Seen` does not.
    let set_seen =
        need.sets_seen && sel.access == Access::ReadWrite && sel.rights.contains(postfach_store::Right::Seen);
    if set_seen && !attrs.contains(&FetchAttribute::Flags) {
        // RFC 9051 §6.4.5: the implicit \Seen change is reported in the same response.
        attrs.push(FetchAttribute::Flags);
    }
    let mut uids = resolve(sel, kind, set, true)?;
    if let Some(range) = modifiers.partial {
        // RFC 9394 §3.3: only UID FETCH; the positions count among the messages of the set, in
        // UID order, before CHANGEDSINCE narrows them (§3.4).
        if !kind.is_uid() {
            return Err(Reply::bad(None, "PARTIAL is a UID FETCH modifier"));
        }
        uids = slice_of(&known(sel, &uids), range);
    }
    let rev2 = cx.enabled.rev2;
    if let Some(since) = modifiers.changed_since {
        // Only what changed after `since`: ask the change log instead of reading every message.
        let uid_next = sel.uids.last().map_or(Some(Uid::MIN), Uid::next).unwrap_or(Uid::MAX);
        let changes = store.changes_since(sel.id, postfach_store::ModSeq(since), uid_next).await?;
        if modifiers.vanished {
            let gone = NumberSet::from_numbers(
                changes.expunged.iter().filter(|u| uids.contains(**u)).map(|u| u.get()),
            );
            if !gone.is_empty() {
                out.data(&Data::Vanished { earlier: true, uids: gone });
            }
        }
        let mut changed: Vec<Uid> = changes.flags.iter().map(|(u, _, _)| *u).collect();
        if let Some(private) = &sel.private {
            // The user's own \Seen changes count as changes of the message for them.
            let mine = cx
                .ctx
                .share
                .private_seen_since(sel.id, private.account, postfach_store::ModSeq(since))
                .await?;
            changed.extend(mine.iter().map(|(u, _, _)| *u));
            changed.sort_unstable();
            changed.dedup();
        }
        uids = UidSet::from_uids(changed.into_iter().filter(|u| uids.contains(*u)));
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
    // this session is told. Its UID is still known and served; for anything else the client
    // gets `* OK [EXPUNGEISSUED]` (RFC 5530) after the rest, and the EXPUNGE at the next
    // command that may carry it.
    let uid_only = attrs.iter().all(|a| *a == FetchAttribute::Uid);
    let mut expunge_issued = false;
    // RFC 9585: a long FETCH reports how many of its messages are done.
    let mut progress = cx.progress();
    let total: u64 = chunks.iter().map(UidSet::len).sum();
    let mut done = 0;
    let (id, want) = (sel.id, FetchWant { summary: need.summary });
    // Unless \Seen has to be set first, the next chunk's rows are read (on the blocking pool,
    // so on the other core) while this chunk is rendered and written: a FETCH 1:* of a big
    // mailbox keeps both cores busy instead of alternating between reading and writing.
    let mut chunks = chunks.into_iter().peekable();
    let mut ahead: Option<postfach_store::StoreResult<Vec<MessageMeta>>> = None;
    while let Some(chunk) = chunks.next() {
        if done > 0 {
            progress.step(done, Some(total), out).await;
        }
        done += chunk.len();
        if set_seen {
            set_seen_on(cx, sel, &chunk).await?;
        }
        let metas = match ahead.take() {
            Some(read) => read?,
            None => store.fetch(id, &chunk, want).await?,
        };
        if metas.len() < usize::try_from(chunk.len()).unwrap_or(usize::MAX) {
            let present = UidSet::from_uids(metas.iter().map(|m| m.uid));
            for uid in chunk.iter().filter(|u| !present.contains(*u)) {
                let Some(seq) = sel.seq_of(uid) else { continue };
                if uid_only {
                    let data = Data::Fetch { seq, attrs: vec![FetchValue::Uid(uid.get())] };
                    out.data(&data);
                } else {
                    expunge_issued = true;
                }
            }
        }
        let next = if set_seen { None } else { chunks.peek().cloned() };
        let read_next = async {
            match &next {
                Some(c) => Some(store.fetch(id, c, want).await),
                None => None,
            }
        };
        let sel = &*sel;
        let expunge_issued = &mut expunge_issued;
        let write_this = async {
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
                                *expunge_issued = true;
                                continue;
                            }
                        },
                        false => None,
                    };
                    let recent = !rev2 && sel.recent.contains(meta.uid);
                    let extra =
                        extras.binary_search_by_key(&meta.uid, |e| e.uid).ok().and_then(|i| extras.get(i));
                    let values = if sel.private.is_some() {
                        let mut mine = meta.clone();
                        sel.view(meta.uid, &mut mine.flags, &mut mine.modseq);
                        render(&attrs, &mine, raw, extra, recent)
                    } else {
                        render(&attrs, meta, raw, extra, recent)
                    };
                    if keep_uid {
                        out.data(&Data::UidFetch { uid: meta.uid.get(), attrs: values });
                    } else {
                        out.data(&Data::Fetch { seq, attrs: values });
                    }
                    out.flush_if_large().await;
                }
                start = end;
            }
            Ok::<(), Reply>(())
        };
        let (read, written) = tokio::join!(read_next, write_this);
        written?;
        ahead = read;
    }
    if expunge_issued {
        // Untagged, with a tagged OK: sync clients (mbsync, offlineimap) take a NO to a FETCH
        // as a failed sync, though the rest was answered.
        out.status(Status::Ok, Some(Code::ExpungeIssued), "Some messages were expunged by another session");
    }
    Ok(Done::new())
}

/// Sets `\Seen` on the messages of `uids` for this user (FETCH of a body without PEEK): the
/// message's flag, or the user's own in a private-`\Seen` mailbox of another owner.
pub(crate) async fn set_seen_on(cx: &Cx<'_>, sel: &mut Selected, uids: &UidSet) -> Result<(), Reply> {
    if let Some(private) = &sel.private {
        let before = sel.known_modseq();
        let changed = cx.ctx.share.store_private_seen(sel.id, private.account, uids, true).await?;
        if let Some(after) = changed.iter().map(|(_, m)| *m).max() {
            sel.own_change(before, after, changed.iter().map(|(u, _)| *u));
        }
        if let Some(private) = sel.private.as_mut() {
            private.record(&changed, true);
        }
        return Ok(());
    }
    let seen = Flags { system: SystemFlags::SEEN, keywords: Vec::new() };
    let r = cx.ctx.store.store_flags(sel.id, uids, FlagOp::Add, &seen, None).await?;
    sel.own_change(r.modseq_before, r.modseq_after, r.updated.iter().map(|(u, ..)| *u));
    Ok(())
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
pub(crate) async fn check_cte(
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
            FetchAttribute::Uid => FetchValue::Uid(meta.uid.get()),
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
    section_of(raw, summary, section).map(Cow::into_owned)
}

/// The bytes of `BODY[section]`, borrowed from `raw` where they lie in it (CATENATE keeps them
/// as a slice of the message it read).
pub(crate) fn section_of<'r>(
    raw: &'r [u8],
    summary: &MessageSummary,
    section: &Section,
) -> Option<Cow<'r, [u8]>> {
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
    msg::section(raw, summary, &part, text)
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
