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
//! - RESETKEY drops all of the user's keys, or one mailbox's: every URL made with them fails.
//!
//! Limits: [`MAX_URLAUTH_URLS`] URLs a command (the parser's); each URLFETCH answer is reserved
//! in the shared message memory first (NO [LIMIT] without room).

use postfach_auth::urlauth;
use postfach_proto::imapurl::{ImapUrl, UrlAccess};
use postfach_proto::response::{Code, Data};
use postfach_proto::types::{MAX_URLAUTH_URLS, WireMailboxName};

use crate::Out;
use crate::access;
use crate::cmd::catenate::{self, UrlFailure, bad_url, readable_mailbox};
use crate::cmd::mailbox::decode_name;
use crate::context::Cx;
use crate::respond::{Done, Reply};

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

/// URLFETCH (§7.3): one `* URLFETCH` with each URL and its data or NIL.
pub(crate) async fn urlfetch(cx: &Cx<'_>, urls: &[String], out: &mut Out) -> Result<Done, Reply> {
    let mut items = Vec::with_capacity(urls.len());
    // What the answers hold, reserved until they are written.
    let mut holds = Vec::new();
    for url in urls {
        match fetch_one(cx, url).await {
            Ok(piece) => {
                holds.extend(piece.hold);
                items.push((url.clone(), Some(piece.data)));
            }
            Err(UrlFailure::Bad(why)) => {
                tracing::debug!(%url, %why, "URLFETCH answered NIL");
                items.push((url.clone(), None));
            }
            Err(UrlFailure::Reply(r)) => return Err(r),
        }
    }
    out.data(&Data::UrlFetch(items));
    drop(holds);
    Ok(Done::new())
}

/// The data of one URL, or why it is NIL.
async fn fetch_one(cx: &Cx<'_>, url: &str) -> Result<catenate::Piece, UrlFailure> {
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
    let mut source = None;
    match catenate::part_bytes(cx, mailbox, &parsed, u64::from(cx.ctx.config.max_message_size), &mut source)
        .await?
    {
        Some(piece) => Ok(piece),
        None => Err(bad("too big")),
    }
}
