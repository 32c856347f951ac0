//! Commands of the authenticated state (RFC 9051 §6.3): SELECT's opening, CREATE, DELETE,
//! RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, NAMESPACE, STATUS, APPEND.
//!
//! They are also valid in the selected state; then `Cx::selected` lets a handler bring the
//! selected mailbox's view up to date (APPEND into it must announce EXISTS).

use std::sync::Arc;

use postfach_auth::Principal;
use postfach_proto::response::{Code, Data, FetchValue, MailboxAttr, NamespaceDesc, PermanentFlag, Status};
use postfach_proto::types::{
    AppendMessage, CommandBody, Flag, MailboxName, NumberSet, QresyncParams, SelectParams, StatusItem, Tag,
};
use postfach_store::{MailboxInfo, MailboxStatus, NewMessage, SpecialUse, StoreError};

use crate::convert;
use crate::list;
use crate::respond::{Reply, ok};
use crate::selected::{Access, Expunges, Poll, Selected};
use crate::session::Enabled;
use crate::{Out, ServerContext};

/// Longest mailbox name we accept, in bytes of UTF-8.
pub(crate) const MAX_NAME_BYTES: usize = 1024;
/// Deepest hierarchy we accept.
pub(crate) const MAX_NAME_DEPTH: usize = 32;
/// Most messages one MULTIAPPEND may carry.
const MAX_APPEND_MESSAGES: usize = 1000;

/// What an authenticated-state handler may use.
pub(crate) struct Cx<'a> {
    pub(crate) ctx: &'a Arc<ServerContext>,
    pub(crate) user: &'a Principal,
    pub(crate) enabled: &'a Enabled,
    pub(crate) selected: Option<&'a mut Selected>,
}

/// Handles an authenticated-state command; `false` when `body` is not one of them.
/// Handles an authenticated-state command: `None` when `body` is not one of them. The caller
/// writes the tagged completion, after any untagged updates it owes the client (RFC 9051 §7.5.1:
/// nothing may follow the tagged response).
pub(crate) async fn handle(cx: &mut Cx<'_>, body: CommandBody, out: &mut Out) -> Option<Result<Done, Reply>> {
    Some(match body {
        CommandBody::Create { mailbox, special_use } => create(cx, &mailbox, &special_use).await,
        CommandBody::Delete(mailbox) => delete(cx, &mailbox).await,
        CommandBody::Rename { from, to } => rename(cx, &from, &to).await,
        CommandBody::Subscribe(mailbox) => subscribe(cx, &mailbox, true).await,
        CommandBody::Unsubscribe(mailbox) => subscribe(cx, &mailbox, false).await,
        CommandBody::List(cmd) => list::list(cx, &cmd, out).await,
        CommandBody::Lsub { reference, pattern } => list::lsub(cx, &reference, &pattern, out).await,
        CommandBody::Namespace => {
            namespace(out);
            Ok(Done::text("NAMESPACE completed"))
        }
        CommandBody::Status { mailbox, items } => status(cx, &mailbox, &items, out).await,
        CommandBody::Append { mailbox, messages } => append(cx, &mailbox, messages, out).await,
        _ => return None,
    })
}

/// Writes the tagged completion of an authenticated-state command.
pub(crate) fn complete(out: &mut Out, tag: &Tag, result: Result<Done, Reply>) {
    match result {
        Ok(done) => ok(out, tag, done.code, &done.text),
        Err(reply) => reply.write(out, tag),
    }
}

/// A successful completion: optional response code and text.
pub(crate) struct Done {
    pub(crate) code: Option<Code>,
    pub(crate) text: String,
}

impl Done {
    pub(crate) fn text(text: &str) -> Done {
        Done { code: None, text: text.to_owned() }
    }
}

/// Decodes a mailbox name argument (modified UTF-7 for IMAP4rev1, UTF-8 once enabled).
///
/// A name that does not decode is syntactically a mailbox name still (RFC 9051 §9 `mailbox` is
/// any astring): no mailbox can have it, so the answer is NO [NONEXISTENT], not BAD.
pub(crate) fn decode_name(enabled: &Enabled, name: &MailboxName) -> Result<String, Reply> {
    let name = name
        .decode(enabled.utf8)
        .map_err(|e| Reply::no(Some(Code::Nonexistent), format!("No such mailbox: {e}")))?;
    // RFC 9051 §6.3.4: a trailing delimiter only declares intent to create children.
    let name = name.trim_end_matches('/').to_owned();
    if name.is_empty() {
        return Err(Reply::no(Some(Code::Nonexistent), "Empty mailbox name"));
    }
    Ok(name)
}

/// Decodes the name of a mailbox to be made (CREATE, RENAME's target): one that does not decode
/// cannot be made, NO [CANNOT].
fn decode_new_name(enabled: &Enabled, name: &MailboxName) -> Result<String, Reply> {
    if let Err(e) = name.decode(enabled.utf8) {
        return Err(Reply::no(Some(Code::CannotDo), format!("Invalid mailbox name: {e}")));
    }
    decode_name(enabled, name)
}

/// Checks that a name may be created: no empty levels, no wildcards, bounded length and depth.
fn check_new_name(name: &str) -> Result<(), Reply> {
    let cannot = |why: &str| Err(Reply::no(Some(Code::CannotDo), format!("Invalid mailbox name: {why}")));
    if name.len() > MAX_NAME_BYTES {
        return cannot("too long");
    }
    if name.split('/').count() > MAX_NAME_DEPTH {
        return cannot("too deep");
    }
    if name.split('/').any(str::is_empty) {
        return cannot("empty hierarchy level");
    }
    // RFC 9051 §5.1: the list wildcards must not appear in names.
    if name.contains(['*', '%']) {
        return cannot("'*' and '%' are not allowed");
    }
    Ok(())
}

/// Looks a mailbox up by decoded name.
pub(crate) async fn find(cx: &Cx<'_>, name: &str) -> Result<MailboxInfo, Reply> {
    match cx.ctx.store.mailbox_by_name(cx.user.account, name).await {
        Ok(Some(info)) => Ok(info),
        Ok(None) => Err(Reply::no(Some(Code::Nonexistent), "No such mailbox")),
        Err(e) => Err(e.into()),
    }
}

/// SELECT/EXAMINE's work: open the mailbox and send its untagged responses (RFC 9051 §6.3.2).
pub(crate) async fn open(
    ctx: &Arc<ServerContext>,
    user: &Principal,
    enabled: &Enabled,
    name: &MailboxName,
    params: &SelectParams,
    access: Access,
    out: &mut Out,
) -> Result<Selected, Reply> {
    let cx = Cx { ctx, user, enabled, selected: None };
    let name = decode_name(enabled, name)?;
    let info = find(&cx, &name).await?;
    let (mut sel, snap) = Selected::open(&*ctx.store, info.id, info.name.clone(), access).await?;
    // RFC 7162 §3.2.5.2: what changed since the client's modseq. Read before anything is sent,
    // and expunges that landed after the snapshot leave the view at once, so EXISTS, VANISHED
    // and the FETCHes below describe one and the same mailbox.
    let resync = match &params.qresync {
        Some(q) if q.uidvalidity.get() == snap.status.uid_validity.0 => {
            let since = postfach_store::ModSeq(q.modseq.get());
            let changes = ctx.store.changes_since(sel.id, since, snap.status.uid_next).await?;
            let late: Vec<postfach_store::Uid> =
                changes.expunged.iter().copied().filter(|u| sel.seq_of(*u).is_some()).collect();
            sel.forget(&late);
            Some((q, changes))
        }
        _ => None,
    };

    let mut flags = vec![Flag::Answered, Flag::Flagged, Flag::Deleted, Flag::Seen, Flag::Draft];
    flags.extend(snap.keywords.iter().map(|k| Flag::Keyword(k.clone())));
    out.data(&Data::Flags(flags.clone()));
    let permanent = match access {
        Access::ReadWrite => {
            let mut p: Vec<PermanentFlag> = flags.into_iter().map(PermanentFlag::Flag).collect();
            p.push(PermanentFlag::Wildcard);
            p
        }
        Access::ReadOnly => Vec::new(),
    };
    out.status(Status::Ok, Some(Code::PermanentFlags(permanent)), "Flags permitted");
    out.data(&Data::Exists(sel.exists()));
    if !enabled.rev2 {
        // IMAP4rev1 §6.3.1: RECENT and the first unseen message.
        out.data(&Data::Recent(snap.status.recent));
        if let Some(seq) = snap.first_unseen.and_then(|u| sel.seq_of(u)) {
            out.status(Status::Ok, Some(Code::Unseen(seq)), "First unseen");
        }
    }
    out.status(Status::Ok, Some(Code::UidValidity(snap.status.uid_validity.0)), "UIDs valid");
    out.status(Status::Ok, Some(Code::UidNext(snap.status.uid_next.0)), "Predicted next UID");
    // RFC 8474 §4.1: OBJECTID servers name the mailbox's MAILBOXID on SELECT/EXAMINE.
    out.status(Status::Ok, Some(Code::MailboxId(format!("M{}", info.id.0))), "Ok");
    if enabled.condstore {
        // RFC 7162 §3.1.2.1.
        let code = Code::HighestModSeq(snap.status.highest_modseq.0);
        out.status(Status::Ok, Some(code), "Highest");
    }
    if enabled.rev2 {
        // RFC 9051 §6.3.2: SELECT returns the mailbox's LIST response.
        out.data(&Data::List {
            attributes: Vec::new(),
            delimiter: Some('/'),
            name: info.name,
            extended: Vec::new(),
        });
    }
    if let Some((q, changes)) = resync {
        resync_responses(enabled, &sel, &snap, q, changes, out).await;
    }
    Ok(sel)
}

/// RFC 7162 §3.2.5.2: after SELECT (QRESYNC ...), what changed since the client's modseq:
/// VANISHED (EARLIER) for expunged messages, then FETCH for changed ones. Costs the changes,
/// not the mailbox: expunges are remembered with their modseq.
async fn resync_responses(
    enabled: &Enabled,
    sel: &Selected,
    snap: &postfach_store::Snapshot,
    q: &QresyncParams,
    changes: postfach_store::Changes,
    out: &mut Out,
) {
    let known = match &q.known_uids {
        Some(set) => set.resolve(snap.status.uid_next.0.saturating_sub(1)),
        None => None,
    };
    let vanished = NumberSet::from_numbers(
        changes.expunged.iter().map(|u| u.0).filter(|u| known.as_ref().is_none_or(|k| k.contains(*u))),
    );
    if !vanished.is_empty() {
        out.data(&Data::Vanished { earlier: true, uids: vanished });
    }
    // Changes made after the snapshot may show here with a MODSEQ above the HIGHESTMODSEQ this
    // SELECT announced; that is safe: the client must take the announced HIGHESTMODSEQ over any
    // MODSEQ it sees (RFC 7162 §6), and every message in EXISTS must be reported if it is new
    // to the client.
    for (uid, flags, modseq) in &changes.flags {
        let Some(seq) = sel.seq_of(*uid) else { continue };
        let recent = !enabled.rev2 && sel.recent.contains(*uid);
        let attrs = vec![
            FetchValue::Uid(uid.0),
            FetchValue::Flags(convert::flags(flags, recent)),
            FetchValue::ModSeq(modseq.0),
        ];
        out.data(&Data::Fetch { seq, attrs });
        out.flush_if_large().await;
    }
}

async fn create(
    cx: &mut Cx<'_>,
    name: &MailboxName,
    special_use: &[postfach_proto::types::SpecialUse],
) -> Result<Done, Reply> {
    let name = decode_new_name(cx.enabled, name)?;
    if name.eq_ignore_ascii_case("INBOX") {
        return Err(Reply::no(Some(Code::AlreadyExists), "INBOX always exists"));
    }
    check_new_name(&name)?;
    // RFC 6154 §3: CREATE (USE (...)); we keep at most one attribute per mailbox.
    let mut use_attr = None;
    for u in special_use {
        match SpecialUse::parse(&u.to_string()) {
            Some(s) if use_attr.is_none() => use_attr = Some(s),
            Some(_) => {
                return Err(Reply::no(Some(Code::UseAttr), "Only one special-use attribute per mailbox"));
            }
            None => {
                return Err(Reply::no(Some(Code::UseAttr), format!("Unsupported special-use attribute {u}")));
            }
        }
    }
    let store = &cx.ctx.store;
    let account = cx.user.account;
    if store.mailbox_by_name(account, &name).await?.is_some() {
        return Err(Reply::no(Some(Code::AlreadyExists), "Mailbox already exists"));
    }
    // RFC 9051 §6.3.4: create the missing superiors too.
    let mut prefix = String::new();
    let levels: Vec<&str> = name.split('/').collect();
    for level in &levels[..levels.len() - 1] {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(level);
        if store.mailbox_by_name(account, &prefix).await?.is_none() {
            match store.create_mailbox(account, &prefix, None).await {
                Ok(_) | Err(StoreError::AlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let id = store.create_mailbox(account, &name, use_attr).await?;
    // RFC 8474 §4.1: the new mailbox's MAILBOXID in the tagged OK.
    Ok(Done { code: Some(Code::MailboxId(format!("M{}", id.0))), text: "CREATE completed".to_owned() })
}

async fn delete(cx: &mut Cx<'_>, name: &MailboxName) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    if name == "INBOX" {
        return Err(Reply::no(Some(Code::CannotDo), "INBOX cannot be deleted"));
    }
    let info = find(cx, &name).await?;
    // We keep no \Noselect placeholders, so a parent with children stays (RFC 9051 §6.3.5 allows
    // refusing with HASCHILDREN).
    let all = cx.ctx.store.list_mailboxes(cx.user.account).await?;
    let child_prefix = format!("{name}/");
    if all.iter().any(|m| m.name.starts_with(&child_prefix)) {
        return Err(Reply::no(Some(Code::HasChildren), "Mailbox has children; delete them first"));
    }
    if cx.selected.as_deref().is_some_and(|sel| sel.id == info.id) {
        // Deleting the selected mailbox is allowed; the session notices at the next sync.
        tracing::debug!(mailbox = %name, "deleting the selected mailbox");
    }
    cx.ctx.store.delete_mailbox(cx.user.account, info.id).await?;
    Ok(Done::text("DELETE completed"))
}

async fn rename(cx: &mut Cx<'_>, from: &MailboxName, to: &MailboxName) -> Result<Done, Reply> {
    let from = decode_name(cx.enabled, from)?;
    let to = decode_new_name(cx.enabled, to)?;
    check_new_name(&to)?;
    if to.eq_ignore_ascii_case("INBOX") || to.starts_with("INBOX/") && from == "INBOX" {
        return Err(Reply::no(Some(Code::CannotDo), "Cannot rename to INBOX"));
    }
    if to == from || to.starts_with(&format!("{from}/")) {
        return Err(Reply::no(Some(Code::CannotDo), "Cannot rename a mailbox into itself"));
    }
    find(cx, &from).await?;
    let store = &cx.ctx.store;
    let account = cx.user.account;
    if store.mailbox_by_name(account, &to).await?.is_some() {
        return Err(Reply::no(Some(Code::AlreadyExists), "Target mailbox already exists"));
    }
    // RFC 9051 §6.3.6: create superiors of the new name as needed.
    let levels: Vec<&str> = to.split('/').collect();
    let mut prefix = String::new();
    for level in &levels[..levels.len() - 1] {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(level);
        if store.mailbox_by_name(account, &prefix).await?.is_none() {
            match store.create_mailbox(account, &prefix, None).await {
                Ok(_) | Err(StoreError::AlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    store.rename_mailbox(account, &from, &to).await?;
    Ok(Done::text("RENAME completed"))
}

async fn subscribe(cx: &mut Cx<'_>, name: &MailboxName, on: bool) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    if on {
        // Subscribing to a name that does not exist is allowed by RFC 9051 §6.3.7 but almost
        // always a client mistake; Dovecot refuses it too.
        find(cx, &name).await?;
    }
    cx.ctx.store.set_subscribed(cx.user.account, &name, on).await?;
    Ok(Done::text(if on { "SUBSCRIBE completed" } else { "UNSUBSCRIBE completed" }))
}

fn namespace(out: &mut Out) {
    // RFC 2342: one personal namespace, no prefix, "/" delimiter.
    let data = Data::Namespace {
        personal: vec![NamespaceDesc { prefix: String::new(), delimiter: Some('/') }],
        other: Vec::new(),
        shared: Vec::new(),
    };
    out.data(&data);
}

/// The value of one STATUS item (RFC 9051 §6.3.11).
pub(crate) fn status_value(cx: &Cx<'_>, st: &MailboxStatus, item: StatusItem) -> Option<u64> {
    Some(match item {
        StatusItem::Messages => u64::from(st.messages),
        StatusItem::UidNext => u64::from(st.uid_next.0),
        StatusItem::UidValidity => u64::from(st.uid_validity.0),
        StatusItem::Unseen => u64::from(st.unseen),
        StatusItem::Deleted => u64::from(st.deleted),
        StatusItem::Size => st.size,
        StatusItem::Recent => u64::from(st.recent),
        StatusItem::AppendLimit => u64::from(cx.ctx.config.max_message_size),
        StatusItem::HighestModSeq => st.highest_modseq.0,
        StatusItem::MailboxId => return None,
    })
}

/// Writes `* STATUS name (items)`.
pub(crate) fn write_status(cx: &Cx<'_>, name: &str, st: &MailboxStatus, items: &[StatusItem], out: &mut Out) {
    let values = items.iter().filter_map(|i| status_value(cx, st, *i).map(|v| (*i, v))).collect();
    let mailbox_id = items.contains(&StatusItem::MailboxId).then(|| format!("M{}", st.id.0));
    let data = Data::Status { mailbox: name.to_owned(), items: values, mailbox_id };
    out.data(&data);
}

async fn status(
    cx: &mut Cx<'_>,
    name: &MailboxName,
    items: &[StatusItem],
    out: &mut Out,
) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    let info = find(cx, &name).await?;
    let st = cx.ctx.store.status(info.id).await?;
    write_status(cx, &info.name, &st, items, out);
    Ok(Done::text("STATUS completed"))
}

async fn append(
    cx: &mut Cx<'_>,
    name: &MailboxName,
    messages: Vec<AppendMessage>,
    out: &mut Out,
) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    let info = match cx.ctx.store.mailbox_by_name(cx.user.account, &name).await? {
        Some(info) => info,
        // RFC 9051 §6.3.12: a missing target gets TRYCREATE.
        None => return Err(Reply::no(Some(Code::TryCreate), "No such mailbox; create it first")),
    };
    if messages.len() > MAX_APPEND_MESSAGES {
        return Err(Reply::no(Some(Code::Limit), "Too many messages in one APPEND"));
    }
    let limit = cx.ctx.config.max_message_size as usize;
    let mut batch = Vec::with_capacity(messages.len());
    for m in messages {
        if m.data.is_empty() {
            return Err(Reply::no(None, "Refusing to store an empty message"));
        }
        if m.data.len() > limit {
            return Err(Reply::no(Some(Code::TooBig), "Message is larger than APPENDLIMIT"));
        }
        let flags = convert::to_store_flags(&m.flags)
            .map_err(|f| Reply::bad(None, format!("Unknown system flag {}", f.0)))?;
        batch.push(NewMessage {
            raw: Arc::from(m.data.into_boxed_slice()),
            flags,
            internal_date: m.date.as_ref().map(convert::internal_date),
        });
    }
    let appended = cx.ctx.store.append(info.id, batch).await?;
    if let Some(sel) = cx.selected.as_deref_mut()
        && sel.id == info.id
    {
        let style = cx.enabled.style();
        if let Err(e) = sel.sync(&*cx.ctx.store, out, Expunges::Allowed, Poll::Always, style).await {
            tracing::warn!(error = %e, "sync after APPEND failed");
        }
    }
    // RFC 4315 §3: APPENDUID uidvalidity uid-set.
    let uid_validity = appended.first().map(|a| a.uid_validity.0).unwrap_or(0);
    let uids = NumberSet::from_numbers(appended.iter().map(|a| a.uid.0));
    Ok(Done {
        code: Some(Code::AppendUid { uidvalidity: uid_validity, uids }),
        text: "APPEND completed".to_owned(),
    })
}

/// LIST attributes of a mailbox from the store's special-use.
pub(crate) fn special_attr(u: SpecialUse) -> MailboxAttr {
    use postfach_proto::types::SpecialUse as W;
    MailboxAttr::SpecialUse(match u {
        SpecialUse::All => W::All,
        SpecialUse::Archive => W::Archive,
        SpecialUse::Drafts => W::Drafts,
        SpecialUse::Flagged => W::Flagged,
        SpecialUse::Junk => W::Junk,
        SpecialUse::Sent => W::Sent,
        SpecialUse::Trash => W::Trash,
    })
}
