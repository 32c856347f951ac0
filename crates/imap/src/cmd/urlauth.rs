//! URLAUTH (RFC 4467): GENURLAUTH, RESETKEY and URLFETCH, with the INTERNAL mechanism (§6:
//! HMAC-SHA1 of the URL rump under a random access key per user and mailbox, kept by the store).
//!
//! - GENURLAUTH takes absolute URLs (`imap://user@host/mailbox[;UIDVALIDITY=n]/;UID=n
//!   [/;SECTION=s][/;PARTIAL=o.l][;EXPIRE=t];URLAUTH=access`) of the session's own user, for a
//!   mailbox the user may read; it makes the mailbox's key on first use. `anonymous` access is
//!   refused (§9 leaves it to the server): a URL is authorised for `submit+user`, `user+user`
//!   or `authuser`.
//! - URLFETCH answers each URL with its data, or NIL when it does not parse, carries no INTERNAL
//!   token, has expired, was made with a key since reset, names a message or part that is gone or
//!   that the URL's user may no longer read, or when this session is not the one the access
//!   identifier names (§7.3: `submit+u`/`user+u` only for a session of `u`). The data is what
//!   the URL's user would read (BODY.PEEK: no `\Seen`).
//! - URLAUTH=BINARY (RFC 5524): a URL in parentheses with BODYPARTSTRUCTURE, BODY or BINARY is
//!   answered with those items ([`fetch_extended`]): the part decoded as FETCH BINARY decodes
//!   it, and its structure.
//! - RESETKEY drops all of the user's keys, or one mailbox's: every URL made with them fails.
//!
//! Limits: [`MAX_URLAUTH_URLS`] URLs a command (the parser's); each URLFETCH answer is reserved
//! in the shared message memory first (NO [LIMIT] without room).

use std::sync::Arc;

use bytes::Bytes;
use postfach_auth::urlauth;
use postfach_message as msg;
use postfach_proto::imapurl::{ImapUrl, UrlAccess};
use postfach_proto::response::{Body, Code, Data, UrlFetchBytes, UrlFetchValue};
use postfach_proto::types::{MAX_URLAUTH_URLS, UrlFetchArg, UrlFetchData, UrlFetchParams, WireMailboxName};
use postfach_store::{FetchWant, MailboxId, Uid, UidSet};

use crate::cmd::catenate::{self, UrlFailure, bad_url, readable_mailbox};
use crate::cmd::fetch::section_of;
use crate::cmd::mailbox::decode_name;
use crate::context::Cx;
use crate::respond::{Done, Reply};
use crate::{MemoryHold, Out, access, convert};

/// The only mechanism offered (RFC 4467 §6).
const INTERNAL: &str = "INTERNAL";

/// GENURLAUTH (§7.1): one `* GENURLAUTH` with every URL authorised, or NO for the first that
/// cannot be (nothing is answered for the others).
pub(crate) async fn genurlauth(
    cx: &Cx<'_>,
    pairs: &[(String, String)],
    out: &mut Out,
) -> Result<Done, Reply> {
    debug_assert!(pairs.len() <= MAX_URLAUTH_URLS);
    let mut urls = Vec::with_capacity(pairs.len());
    for (rump, mechanism) in pairs {
        if mechanism != INTERNAL {
            return Err(Reply::no(None, format!("Unknown URLAUTH mechanism {mechanism}")));
        }
        let token = authorise(cx, rump).await.map_err(|f| match f {
            UrlFailure::Bad(why) => bad_url(rump, &why),
            UrlFailure::Reply(r) => r,
        })?;
        urls.push(format!("{rump}:internal:{token}"));
    }
    out.data(&Data::GenUrlAuth(urls));
    Ok(Done::new())
}

/// The INTERNAL token of `rump`, made with the access key of the mailbox it names.
async fn authorise(cx: &Cx<'_>, rump: &str) -> Result<String, UrlFailure> {
    let bad = |why: &str| UrlFailure::Bad(why.to_owned());
    let url = ImapUrl::parse(rump).map_err(|e| UrlFailure::Bad(e.to_string()))?;
    let Some(server) = &url.server else { return Err(bad("GENURLAUTH needs an absolute imap:// URL")) };
    let Some(user) = &server.user else { return Err(bad("the URL names no user")) };
    // §7.1: the URL's user is the session's; its mailboxes are named as that user sees them.
    if !user.eq_ignore_ascii_case(&cx.user.name) {
        return Err(bad("the URL's user is not the logged-in user"));
    }
    match &url.access {
        None => return Err(bad("the URL has no ;URLAUTH= access identifier")),
        Some(UrlAccess::Anonymous) => return Err(bad("anonymous URLAUTH access is not offered")),
        Some(_) => {}
    }
    if url.verifier.is_some() {
        return Err(bad("the URL already carries a token"));
    }
    let Some(name) = url.mailbox.as_deref() else { return Err(bad("no mailbox in URL")) };
    let mailbox = readable_mailbox(cx, cx.user.account, None, Some(name), url.uid_validity).await?;
    let fresh = urlauth::new_access_key().map_err(|e| {
        tracing::error!(error = %e, "no random access key for GENURLAUTH");
        UrlFailure::Reply(Reply::no(Some(Code::ServerBug), "Cannot make an access key"))
    })?;
    let Some(key) = cx.ctx.store.urlauth_key(cx.user.account, mailbox, Some(&fresh)).await? else {
        return Err(UrlFailure::Reply(Reply::no(Some(Code::ServerBug), "The access key was not stored")));
    };
    Ok(urlauth::token(&key, rump))
}

/// RESETKEY (§7.2): without a mailbox every key of the user goes; with one, that mailbox's
/// (answered `OK [URLMECH INTERNAL]`, §7.2's example).
pub(crate) async fn resetkey(
    cx: &Cx<'_>,
    mailbox: Option<&WireMailboxName>,
    mechanisms: &[String],
) -> Result<Done, Reply> {
    if let Some(m) = mechanisms.iter().find(|m| *m != INTERNAL) {
        return Err(Reply::no(None, format!("Unknown URLAUTH mechanism {m}")));
    }
    let Some(name) = mailbox else {
        cx.ctx.store.reset_urlauth_keys(cx.user.account, None).await?;
        return Ok(Done::new());
    };
    let name = decode_name(cx.enabled, name)?;
    let found = access::find(cx, &name, postfach_store::Rights::NONE).await?;
    cx.ctx.store.reset_urlauth_keys(cx.user.account, Some(found.info.id)).await?;
    Ok(Done::with(Code::UrlMech))
}

/// URLFETCH (§7.3): one `* URLFETCH` with each URL and its data or NIL; for a parenthesised
/// URL (URLAUTH=BINARY, RFC 5524) the items it asked for, or NIL when it cannot be fetched.
pub(crate) async fn urlfetch(cx: &Cx<'_>, args: &[UrlFetchArg], out: &mut Out) -> Result<Done, Reply> {
    let mut items = Vec::with_capacity(args.len());
    // What the answers hold, reserved until they are written.
    let mut holds = Vec::new();
    for arg in args {
        let url = &arg.url;
        let answer = match &arg.params {
            None => fetch_one(cx, url).await.map(|piece| {
                holds.extend(piece.hold);
                UrlFetchValue::Plain(Some(piece.data))
            }),
            Some(params) => fetch_extended(cx, url, params).await.map(|(value, hold)| {
                holds.extend(hold);
                value
            }),
        };
        match answer {
            Ok(value) => items.push((url.clone(), value)),
            Err(UrlFailure::Bad(why)) => {
                tracing::debug!(%url, %why, "URLFETCH answered NIL");
                items.push((url.clone(), UrlFetchValue::Plain(None)));
            }
            Err(UrlFailure::Reply(r)) => return Err(r),
        }
    }
    out.data(&Data::UrlFetch(items));
    drop(holds);
    Ok(Done::new())
}

/// The mailbox and parsed URL of an authorised URL, once its token verifies and this session
/// may use it; anything else is a reason for NIL.
async fn authorised(cx: &Cx<'_>, url: &str) -> Result<(MailboxId, ImapUrl), UrlFailure> {
    let bad = |why: &str| UrlFailure::Bad(why.to_owned());
    let parsed = ImapUrl::parse(url).map_err(|e| UrlFailure::Bad(e.to_string()))?;
    let Some(server) = &parsed.server else { return Err(bad("not an absolute URL")) };
    let Some(owner_name) = &server.user else { return Err(bad("no user in URL")) };
    let (Some(access), Some(verifier)) = (&parsed.access, &parsed.verifier) else {
        return Err(bad("no URLAUTH token"));
    };
    if verifier.mechanism != INTERNAL {
        return Err(bad("unknown mechanism"));
    }
    if let Some(expire) = parsed.expire {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if now >= expire {
            return Err(bad("expired"));
        }
    }
    // §7.3: who may use it.
    let allowed = match access {
        UrlAccess::Submit(u) | UrlAccess::User(u) => u.eq_ignore_ascii_case(&cx.user.name),
        UrlAccess::AuthUser => true,
        UrlAccess::Anonymous => false,
    };
    if !allowed {
        return Err(bad("not for this session's user"));
    }
    let Some(owner) = cx.ctx.accounts.account_by_name(owner_name).await? else {
        return Err(bad("no such user"));
    };
    let Some(name) = parsed.mailbox.as_deref() else { return Err(bad("no mailbox in URL")) };
    // The mailbox as the URL's user sees it, who must still be allowed to read it.
    let mailbox = readable_mailbox(cx, owner.id, None, Some(name), parsed.uid_validity).await?;
    let Some(key) = cx.ctx.store.urlauth_key(owner.id, mailbox, None).await? else {
        return Err(bad("no access key (reset)"));
    };
    let rump = url.get(..parsed.rump_len).unwrap_or(url);
    if !urlauth::verify(&key, rump, &verifier.token) {
        return Err(bad("token does not verify"));
    }
    Ok((mailbox, parsed))
}

/// The data of one plain URL (RFC 4467), or why it is NIL.
async fn fetch_one(cx: &Cx<'_>, url: &str) -> Result<catenate::Piece, UrlFailure> {
    let (mailbox, parsed) = authorised(cx, url).await?;
    let mut source = None;
    match catenate::part_bytes(cx, mailbox, &parsed, u64::from(cx.ctx.config.max_message_size), &mut source)
        .await?
    {
        Some(piece) => Ok(piece),
        None => Err(UrlFailure::Bad("too big".to_owned())),
    }
}

/// The items one parenthesised URL asked for (RFC 5524 §3), or why it is NIL.
///
/// - BODY is RFC 4467's data.
/// - BINARY is what FETCH BINARY of the part would return: a leaf part with its
///   Content-Transfer-Encoding removed, a multipart or message part (or the whole message) as
///   sent, a section text (HEADER, TEXT, MIME, ...) as BODY. A transfer encoding the server
///   cannot undo is `BINARY NIL` beside the other items (the URL itself is good, only that
///   form of its data does not exist); FETCH refuses it with UNKNOWN-CTE instead.
/// - BODYPARTSTRUCTURE is the part's BODYSTRUCTURE (the message's for a URL without a
///   section). With BINARY, a leaf part whose encoding was undone is described as it is
///   served: its size and lines are those of the decoded data, and its encoding the one the
///   decoded octets would need (7BIT for ASCII without NUL, 8BIT with 8-bit octets, BINARY
///   with NUL), so a client can trust the structure for the data it receives. A section text
///   has no part structure of its own: such a URL is NIL when BODYPARTSTRUCTURE is asked for.
/// - `;PARTIAL=` cuts the data (decoded data for BINARY), not the structure.
async fn fetch_extended(
    cx: &Cx<'_>,
    url: &str,
    params: &UrlFetchParams,
) -> Result<(UrlFetchValue, Option<Arc<MemoryHold>>), UrlFailure> {
    let bad = |why: &str| UrlFailure::Bad(why.to_owned());
    let (mailbox, parsed) = authorised(cx, url).await?;
    let Some(uid) = Uid::new(parsed.uid.get()) else { return Err(bad("no such message")) };
    let metas = cx.ctx.store.fetch(mailbox, &UidSet::from_uids([uid]), FetchWant { summary: true }).await?;
    let Some(meta) = metas.into_iter().next() else { return Err(bad("no such message")) };
    let Some(summary) = meta.summary else { return Err(bad("no such message")) };
    // The message, and for BINARY a decoded copy no larger than it.
    let binary = params.data == Some(UrlFetchData::Binary);
    let reserve = u64::from(meta.size).saturating_mul(if binary { 2 } else { 1 });
    let hold = catenate::reserve(cx, reserve).await?;
    let raw = match cx.ctx.store.body(mailbox, uid).await {
        Ok(raw) => Bytes::from(raw),
        Err(postfach_store::StoreError::NotFound) => return Err(bad("no such message")),
        Err(e) => return Err(e.into()),
    };
    let section = parsed.section.clone().unwrap_or_default();
    let part: Vec<u32> = section.part.iter().map(|p| p.get()).collect();
    let node = if part.is_empty() {
        &summary.structure
    } else {
        msg::part(&summary, &part).ok_or_else(|| bad("no such body part"))?
    };

    let data = match params.data {
        None => None,
        Some(kind) => {
            let decoded = if kind == UrlFetchData::Body || section.text.is_some() {
                let bytes = section_of(&raw, &summary, &section).ok_or_else(|| bad("no such body part"))?;
                Some(Bytes::copy_from_slice(&bytes))
            } else {
                match msg::binary(&raw, &summary, &part) {
                    Ok(Some(std::borrow::Cow::Borrowed(slice))) => Some(raw.slice_ref(slice)),
                    Ok(Some(std::borrow::Cow::Owned(v))) => Some(Bytes::from(v)),
                    Ok(None) => return Err(bad("no such body part")),
                    // A multipart or message part has no encoding of its own: as sent.
                    Err(msg::BinaryError::NotLeaf) => Some(raw.slice_ref(node.body.slice(&raw))),
                    Err(msg::BinaryError::UnknownCte(cte)) => {
                        tracing::debug!(%url, %cte, "URLFETCH BINARY of an unknown transfer encoding");
                        None
                    }
                }
            };
            Some((kind, decoded))
        }
    };

    let structure = if params.body_part_structure {
        if section.text.is_some() {
            return Err(bad("BODYPARTSTRUCTURE of a section text"));
        }
        let mut body = convert::body(node, true);
        // Decoded base64 or quoted-printable, or a text part whose bare LFs became CRLF.
        let identity = matches!(node.encoding.as_slice(), b"7BIT" | b"8BIT" | b"BINARY");
        if let Some((UrlFetchData::Binary, Some(decoded))) = &data
            && node.kind.is_leaf()
            && (!identity || decoded.len() as u64 != u64::from(node.size()))
        {
            describe_decoded(&mut body, decoded);
        }
        Some(Box::new(body))
    } else {
        None
    };

    let data = match data {
        None => None,
        Some((kind, bytes)) => {
            let bytes = bytes.map(|b| match parsed.partial {
                Some(p) => {
                    let start = usize::try_from(p.offset).unwrap_or(usize::MAX).min(b.len());
                    let end =
                        p.length.map_or(b.len(), |l| start.saturating_add(l.get() as usize).min(b.len()));
                    b.slice(start..end)
                }
                None => b,
            });
            if bytes.as_ref().is_some_and(|b| b.len() as u64 > u64::from(cx.ctx.config.max_message_size)) {
                return Err(bad("too big"));
            }
            Some(UrlFetchBytes { binary: kind == UrlFetchData::Binary, data: bytes })
        }
    };
    Ok((UrlFetchValue::Extended { structure, data }, hold))
}

/// Makes `body` (a leaf part's structure) describe `decoded`, its data with the transfer
/// encoding removed: size, lines (text only), and the encoding those octets would need.
fn describe_decoded(body: &mut Body, decoded: &[u8]) {
    let Body::Single(single) = body else { return };
    single.size = u32::try_from(decoded.len()).unwrap_or(u32::MAX);
    if single.lines.is_some() {
        let lines = decoded.iter().filter(|b| **b == b'\n').count();
        single.lines = Some(u32::try_from(lines).unwrap_or(u32::MAX));
    }
    single.encoding = if decoded.contains(&0) {
        b"BINARY".to_vec()
    } else if decoded.is_ascii() {
        b"7BIT".to_vec()
    } else {
        b"8BIT".to_vec()
    };
}
