//! CATENATE (RFC 4469): APPEND (and REPLACE, RFC 8508 §4.2) of a message joined from literal
//! text and IMAP URLs (RFC 5092) of messages or parts the user may read; and the resolution of
//! such a URL to its bytes, which URLFETCH (RFC 4467) shares.
//!
//! Memory: a URL's message is read once (consecutive parts of one message share the read) and
//! its part kept as a slice of it, unless the part is small next to the message: then the part is
//! copied and the message let go, so what a command holds stays within a few times the message
//! size limit. Everything read, and the joined message, is reserved in the server's message
//! memory budget (`SessionConfig::message_memory`) first; without room: NO [LIMIT]. The joined
//! message is built once, into a buffer of its final size.
//!
//! Errors (RFC 4469 §4): a URL that does not parse, names another server, or a mailbox or
//! message that does not exist or that the user may not read, or whose UIDVALIDITY changed, is
//! `NO [BADURL url]` (the first such URL); a message over the size limit is `NO [TOOBIG]`.

use std::sync::Arc;

use bytes::Bytes;
use postfach_proto::imapurl::ImapUrl;
use postfach_proto::response::Code;
use postfach_proto::types::{CatPart, WireMailboxName};
use postfach_store::{FetchWant, MailboxId, MailboxName, Right, Rights, Uid, UidSet};

use crate::MemoryHold;
use crate::access;
use crate::cmd::fetch::section_of;
use crate::context::Cx;
use crate::respond::Reply;
use crate::selected::Selected;

/// Most URL parts one command may resolve over all its messages (each is a store read).
pub(crate) const MAX_URLS_PER_COMMAND: usize = 1024;

/// A part smaller than 1/`KEEP_RATIO` of its message is copied rather than kept as a slice, so
/// the message's buffer can be freed.
const KEEP_RATIO: usize = 4;

/// A joined message and the memory reserved for it (held until it is stored).
pub(crate) struct Joined {
    pub(crate) data: Bytes,
    pub(crate) holds: Vec<Arc<MemoryHold>>,
}

/// Bytes of one part and the reservation that covers the buffer they lie in.
pub(crate) struct Piece {
    pub(crate) data: Bytes,
    pub(crate) hold: Option<Arc<MemoryHold>>,
}

/// The message a URL named, kept for the next part (the RFC 4469 examples take several
/// parts of one message in a row).
pub(crate) struct Source {
    mailbox: MailboxId,
    uid: Uid,
    raw: Bytes,
    summary: Option<Arc<postfach_message::MessageSummary>>,
    hold: Option<Arc<MemoryHold>>,
}

/// Why a URL part failed: a BADURL reason, or a reply of its own (LIMIT, store trouble).
pub(crate) enum UrlFailure {
    Bad(String),
    Reply(Reply),
}

impl From<Reply> for UrlFailure {
    fn from(r: Reply) -> Self {
        UrlFailure::Reply(r)
    }
}

impl From<postfach_store::StoreError> for UrlFailure {
    fn from(e: postfach_store::StoreError) -> Self {
        UrlFailure::Reply(e.into())
    }
}

/// `NO [BADURL url] why` (RFC 4469 §4.1).
pub(crate) fn bad_url(url: &str, why: &str) -> Reply {
    Reply::no(Some(Code::BadUrl(url.to_owned())), format!("Cannot use URL: {why}"))
}

/// Reserves `bytes` in the shared message memory; NO [LIMIT] when there is no room in time.
pub(crate) async fn reserve(cx: &Cx<'_>, bytes: u64) -> Result<Option<Arc<MemoryHold>>, Reply> {
    let Some(memory) = &cx.ctx.config.message_memory else { return Ok(None) };
    match memory.reserve(bytes).await {
        Some(hold) => Ok(Some(Arc::new(hold))),
        None => Err(Reply::no(
            Some(Code::Limit),
            "Server busy: too much message data in transit, try again later",
        )),
    }
}

/// Joins `parts` into one message (RFC 4469 §3): TEXT as sent, each URL's bytes as FETCH
/// BODY.PEEK would return them. `selected` is the base of URLs relative to the selected mailbox.
pub(crate) async fn join(
    cx: &Cx<'_>,
    selected: Option<&Selected>,
    parts: Vec<CatPart>,
) -> Result<Joined, Reply> {
    let limit = u64::from(cx.ctx.config.max_message_size);
    let too_big = || Reply::no(Some(Code::TooBig), "The catenated message is larger than APPENDLIMIT");
    let mut pieces: Vec<Piece> = Vec::with_capacity(parts.len());
    let mut total: u64 = 0;
    let mut source: Option<Source> = None;
    for part in parts {
        let piece = match part {
            // Already in memory: reserved by the driver as the literal arrived.
            CatPart::Text(data) => Piece { data, hold: None },
            CatPart::Url(url) => {
                match url_piece(cx, selected, &url, limit.saturating_sub(total), &mut source).await {
                    Ok(Some(piece)) => piece,
                    Ok(None) => return Err(too_big()),
                    Err(UrlFailure::Bad(why)) => return Err(bad_url(&url, &why)),
                    Err(UrlFailure::Reply(r)) => return Err(r),
                }
            }
        };
        total = total.saturating_add(piece.data.len() as u64);
        if total > limit {
            return Err(too_big());
        }
        pieces.push(piece);
    }
    drop(source);
    if total == 0 {
        return Err(Reply::no(None, "Refusing to store an empty message"));
    }
    if pieces.len() == 1
        && let Some(only) = pieces.pop()
    {
        return Ok(Joined { data: only.data, holds: only.hold.into_iter().collect() });
    }
    let hold = reserve(cx, total).await?;
    let mut buf = Vec::with_capacity(usize::try_from(total).unwrap_or(usize::MAX));
    for p in &pieces {
        buf.extend_from_slice(&p.data);
    }
    // The parts and the messages they were cut from are freed here.
    drop(pieces);
    Ok(Joined { data: Bytes::from(buf), holds: hold.into_iter().collect() })
}

/// The bytes a URL names, as the user of `cx` may read them: `Ok(None)` when they would exceed
/// `room` (TOOBIG; the message is not read when its size alone tells).
async fn url_piece(
    cx: &Cx<'_>,
    selected: Option<&Selected>,
    url: &str,
    room: u64,
    source: &mut Option<Source>,
) -> Result<Option<Piece>, UrlFailure> {
    let parsed = ImapUrl::parse(url).map_err(|e| UrlFailure::Bad(e.to_string()))?;
    // RFC 4469 §3: only URLs of this session, relative to `imap://user@server/[mailbox]`.
    if parsed.server.is_some() {
        return Err(UrlFailure::Bad("only relative URLs of this session are supported".into()));
    }
    if parsed.access.is_some() {
        return Err(UrlFailure::Bad("URLAUTH URLs are for URLFETCH".into()));
    }
    let viewer = cx.user.account;
    let mailbox =
        readable_mailbox(cx, viewer, selected, parsed.mailbox.as_deref(), parsed.uid_validity).await?;
    part_bytes(cx, mailbox, &parsed, room, source).await
}

/// The bytes `parsed` (a message URL) names in `mailbox`, read through `source` (the message the
/// previous part came from, reused when it is the same): `Ok(None)` when they would exceed `room`.
pub(crate) async fn part_bytes(
    cx: &Cx<'_>,
    mailbox: MailboxId,
    parsed: &ImapUrl,
    room: u64,
    source: &mut Option<Source>,
) -> Result<Option<Piece>, UrlFailure> {
    let Some(uid) = Uid::new(parsed.uid.get()) else { return Err(UrlFailure::Bad("no such message".into())) };
    let cached = source.as_ref().is_some_and(|s| s.mailbox == mailbox && s.uid == uid);
    if !cached {
        *source = None;
        let want = FetchWant { summary: parsed.section.is_some() };
        let metas = cx.ctx.store.fetch(mailbox, &UidSet::from_uids([uid]), want).await?;
        let Some(meta) = metas.into_iter().next() else {
            return Err(UrlFailure::Bad("no such message".into()));
        };
        if parsed.section.is_none() && parsed.partial.is_none() && u64::from(meta.size) > room {
            return Ok(None);
        }
        let hold = reserve(cx, u64::from(meta.size)).await?;
        let raw = match cx.ctx.store.body(mailbox, uid).await {
            Ok(raw) => raw,
            Err(postfach_store::StoreError::NotFound) => {
                return Err(UrlFailure::Bad("no such message".into()));
            }
            Err(e) => return Err(e.into()),
        };
        *source = Some(Source { mailbox, uid, raw: Bytes::from(raw), summary: meta.summary, hold });
    }
    let Some(src) = source.as_mut() else { return Err(UrlFailure::Bad("no such message".into())) };
    if parsed.section.is_some() && src.summary.is_none() {
        // Read for a whole-message URL before; the summary is needed now.
        let metas =
            cx.ctx.store.fetch(mailbox, &UidSet::from_uids([uid]), FetchWant { summary: true }).await?;
        src.summary = metas.into_iter().next().and_then(|m| m.summary);
    }
    let mut data = match &parsed.section {
        None => src.raw.clone(),
        Some(section) => {
            let Some(summary) = src.summary.as_deref() else {
                return Err(UrlFailure::Bad("no such message".into()));
            };
            match section_of(&src.raw, summary, section) {
                None => return Err(UrlFailure::Bad("no such body part".into())),
                Some(std::borrow::Cow::Borrowed(slice)) => src.raw.slice_ref(slice),
                Some(std::borrow::Cow::Owned(v)) => Bytes::from(v),
            }
        }
    };
    if let Some(p) = parsed.partial {
        let start = (p.offset as usize).min(data.len());
        let end = p.length.map_or(data.len(), |l| start.saturating_add(l.get() as usize).min(data.len()));
        data = data.slice(start..end);
    }
    if data.len() as u64 > room {
        return Ok(None);
    }
    // A small part of a big message: copy it so the message can go.
    if data.len().saturating_mul(KEEP_RATIO) < src.raw.len() {
        let hold = reserve(cx, data.len() as u64).await?;
        return Ok(Some(Piece { data: Bytes::copy_from_slice(&data), hold }));
    }
    Ok(Some(Piece { data, hold: src.hold.clone() }))
}

/// The mailbox a URL names (`None`: the selected one), if `viewer` may read it and its
/// UIDVALIDITY is `uid_validity` when given. Any failure is a BADURL reason: RFC 4469 §4.1
/// treats a mailbox the user cannot use like a bad URL, and a missing mailbox and a forbidden one
/// look alike (RFC 4314 §6).
pub(crate) async fn readable_mailbox(
    cx: &Cx<'_>,
    viewer: postfach_store::AccountId,
    selected: Option<&Selected>,
    name: Option<&str>,
    uid_validity: Option<std::num::NonZeroU32>,
) -> Result<MailboxId, UrlFailure> {
    let read = Rights::NONE.and(Right::Read);
    let id = match name {
        None => {
            let Some(sel) = selected else {
                return Err(UrlFailure::Bad("a relative URL needs a selected mailbox".into()));
            };
            if !sel.rights.contains(Right::Read) {
                return Err(UrlFailure::Bad("no read right on the mailbox".into()));
            }
            sel.id
        }
        Some(name) => {
            // RFC 5092 §3.1: names in URLs are UTF-8; INBOX in any case is INBOX.
            let wire = WireMailboxName::new(name.as_bytes().to_vec());
            let decoded = wire.decode(true).map_err(|_| UrlFailure::Bad("no such mailbox".into()))?;
            let trimmed = decoded.trim_end_matches(MailboxName::DELIMITER);
            let name = MailboxName::new(trimmed).map_err(|_| UrlFailure::Bad("no such mailbox".into()))?;
            match access::find_for(cx, viewer, &name, read).await {
                Ok(found) => found.info.id,
                Err(r) if matches!(r.code, Some(Code::Nonexistent)) => {
                    return Err(UrlFailure::Bad("no such mailbox".into()));
                }
                Err(r) if matches!(r.code, Some(Code::NoPerm)) => {
                    return Err(UrlFailure::Bad("no read right on the mailbox".into()));
                }
                Err(r) => return Err(UrlFailure::Reply(r)),
            }
        }
    };
    if let Some(want) = uid_validity {
        let status = cx.ctx.store.status(id).await?;
        if status.uid_validity.0 != want.get() {
            return Err(UrlFailure::Bad("UIDVALIDITY mismatch".into()));
        }
    }
    Ok(id)
}
