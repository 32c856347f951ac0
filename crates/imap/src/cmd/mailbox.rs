//! Mailbox commands of the authenticated state (RFC 9051 §6.3): CREATE, DELETE, RENAME,
//! SUBSCRIBE, UNSUBSCRIBE, NAMESPACE (RFC 2342), STATUS, APPEND; and the name rules every
//! command that takes a mailbox name shares.
//!
//! They are also valid in the selected state; then the gate passes the selected mailbox to
//! the handlers that need it (APPEND into it must announce EXISTS).

use postfach_proto::response::{Code, Data, MailboxAttr, NamespaceDesc};
use postfach_proto::types::{AppendData, AppendMessage, CatPart, NumberSet, StatusItem, WireMailboxName};
use postfach_store::acl::namespace;
use postfach_store::{
    Criterion, MailboxId, MailboxName, MailboxStatus, NameError, NewMessage, Right, Rights, SeenMode,
    SpecialUse, StoreError, SystemFlags,
};

use crate::access::{self, Place};
use crate::cmd::catenate;
use crate::context::{Cx, Enabled};
use crate::respond::{Done, Reply};
use crate::selected::{Expunges, Poll, Selected};
use crate::{Out, convert};

/// Most messages one MULTIAPPEND may carry.
const MAX_APPEND_MESSAGES: usize = 1000;

/// Decodes a mailbox name argument (modified UTF-7 for IMAP4rev1, UTF-8 once enabled) and
/// builds the store's [`MailboxName`] from it: the one place a name from the wire is checked.
///
/// A name that does not decode, or breaks a rule of names, is syntactically a mailbox name still
/// (RFC 9051 §9 `mailbox` is any astring): no mailbox can have it, so the answer is
/// NO [NONEXISTENT], not BAD.
pub(crate) fn decode_name(enabled: &Enabled, name: &WireMailboxName) -> Result<MailboxName, Reply> {
    let nonexistent =
        |e: &dyn std::fmt::Display| Reply::no(Some(Code::Nonexistent), format!("No such mailbox: {e}"));
    let name = name.decode(enabled.utf8).map_err(|e| nonexistent(&e))?;
    // RFC 9051 §6.3.4: a trailing delimiter only declares intent to create children.
    let name = name.trim_end_matches(MailboxName::DELIMITER);
    if name.is_empty() {
        return Err(Reply::no(Some(Code::Nonexistent), "Empty mailbox name"));
    }
    MailboxName::new(name).map_err(|e| nonexistent(&e))
}

/// Decodes the name of a mailbox to be made (CREATE, RENAME's target): one that does not decode,
/// breaks a rule of names or holds a list wildcard cannot be made, NO [CANNOT].
fn decode_new_name(enabled: &Enabled, name: &WireMailboxName) -> Result<MailboxName, Reply> {
    let cannot =
        |e: &dyn std::fmt::Display| Reply::no(Some(Code::CannotDo), format!("Invalid mailbox name: {e}"));
    let decoded = name.decode(enabled.utf8).map_err(|e| cannot(&e))?;
    let trimmed = decoded.trim_end_matches(MailboxName::DELIMITER);
    if trimmed.is_empty() {
        return Err(Reply::no(Some(Code::Nonexistent), "Empty mailbox name"));
    }
    let name = MailboxName::new(trimmed).map_err(|e| match e {
        // RFC 5530: LIMIT, an implementation limit rather than a bad name.
        NameError::TooDeep | NameError::TooLong => {
            Reply::no(Some(Code::Limit), format!("Invalid mailbox name: {e}"))
        }
        _ => cannot(&e),
    })?;
    // RFC 9051 §5.1: the list wildcards must not appear in names.
    name.check_creatable().map_err(|e| cannot(&e))?;
    Ok(name)
}

/// Where a mailbox to be made goes: a namespace level (`Shared`, `Shared/team`) cannot be
/// made. In another owner's tree the user needs `k` on the nearest existing superior, or on the
/// owner's INBOX for a top-level name (RFC 4314 §4, CREATE "for parent").
async fn place_new(cx: &Cx<'_>, name: &MailboxName) -> Result<Place, Reply> {
    let refusal = Reply::no(Some(Code::CannotDo), "That name is a namespace, not a mailbox");
    let place = access::place(cx, name, refusal).await?;
    if place.is_personal() {
        return Ok(place);
    }
    let store = &cx.ctx.store;
    let mut parent = None;
    for superior in place.local.ancestors().collect::<Vec<_>>().into_iter().rev() {
        if let Some(info) = store.mailbox_by_name(place.owner, &superior).await? {
            parent = Some(info);
            break;
        }
    }
    let parent = match parent {
        Some(info) => info,
        None => store
            .mailbox_by_name(place.owner, &MailboxName::inbox())
            .await?
            .ok_or_else(access::nonexistent)?,
    };
    let rights = access::rights_on(cx, &place, &parent).await?;
    if !rights.contains(Right::Lookup) {
        return Err(access::nonexistent());
    }
    access::check(rights, Rights::NONE.and(Right::CreateMailbox))?;
    Ok(place)
}

pub(crate) async fn create(
    cx: &Cx<'_>,
    name: &WireMailboxName,
    special_use: &[postfach_proto::types::SpecialUse],
) -> Result<Done, Reply> {
    let name = decode_new_name(cx.enabled, name)?;
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
    let place = place_new(cx, &name).await?;
    if place.local.is_inbox() {
        return Err(Reply::no(Some(Code::AlreadyExists), "INBOX always exists"));
    }
    let store = &cx.ctx.store;
    if store.mailbox_by_name(place.owner, &place.local).await?.is_some() {
        return Err(Reply::no(Some(Code::AlreadyExists), "Mailbox already exists"));
    }
    // RFC 9051 §6.3.4: create the missing superiors too.
    let id =
        with_superiors(cx, &place, async || store.create_mailbox(place.owner, &place.local, use_attr).await)
            .await?;
    // RFC 8474 §4.1: the new mailbox's MAILBOXID in the tagged OK.
    Ok(Done::with(Code::MailboxId(format!("M{}", id.0))))
}

pub(crate) async fn delete(
    cx: &Cx<'_>,
    selected: Option<&Selected>,
    name: &WireMailboxName,
) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    let found = access::find(cx, &name, cx.need).await?;
    if found.place.local.is_inbox() {
        return Err(Reply::no(Some(Code::CannotDo), "INBOX cannot be deleted"));
    }
    let info = found.info;
    // We keep no \Noselect placeholders, so a parent with children stays (RFC 9051 §6.3.5 allows
    // refusing with HASCHILDREN).
    let all = cx.ctx.store.list_mailboxes(found.place.owner).await?;
    let child_prefix = format!("{}/", found.place.local);
    if all.iter().any(|m| m.name.starts_with(&child_prefix)) {
        return Err(Reply::no(Some(Code::HasChildren), "Mailbox has children; delete them first"));
    }
    if selected.is_some_and(|sel| sel.id == info.id) {
        // Deleting the selected mailbox is allowed; the session notices at the next sync.
        tracing::debug!(mailbox = %name, "deleting the selected mailbox");
    }
    cx.ctx.store.delete_mailbox(found.place.owner, info.id).await?;
    Ok(Done::new())
}

pub(crate) async fn rename(cx: &Cx<'_>, from: &WireMailboxName, to: &WireMailboxName) -> Result<Done, Reply> {
    let from = decode_name(cx.enabled, from)?;
    let to = decode_new_name(cx.enabled, to)?;
    // RFC 4314 §4: `x` on the mailbox, `k` on the new parent.
    let source = access::find(cx, &from, Rights::NONE.and(Right::DeleteMailbox)).await?;
    let target = place_new(cx, &to).await?;
    if source.place.owner != target.owner {
        return Err(Reply::no(Some(Code::CannotDo), "Cannot rename a mailbox into another namespace"));
    }
    let (from, to) = (&source.place.local, &target.local);
    if to.is_inbox() || to.as_str().starts_with("INBOX/") && from.is_inbox() {
        return Err(Reply::no(Some(Code::CannotDo), "Cannot rename to INBOX"));
    }
    if to == from || from.is_ancestor_of(to) {
        return Err(Reply::no(Some(Code::CannotDo), "Cannot rename a mailbox into itself"));
    }
    let store = &cx.ctx.store;
    if store.mailbox_by_name(target.owner, to).await?.is_some() {
        return Err(Reply::no(Some(Code::AlreadyExists), "Target mailbox already exists"));
    }
    // RFC 9051 §6.3.6: create superiors of the new name as needed.
    with_superiors(cx, &target, async || store.rename_mailbox(target.owner, from, to).await).await?;
    Ok(Done::new())
}

/// Creates the superiors of `name` that do not exist yet, outermost first (RFC 9051 §6.3.4,
/// §6.3.6), then `then` (the mailbox itself, or a rename onto the name). The superiors of a
/// creatable name are creatable. All or nothing: past the owner's mailbox limit nothing is
/// made (NO [LIMIT] up front), and when `then` fails the superiors made here are removed again.
async fn with_superiors<T, F>(cx: &Cx<'_>, place: &Place, then: F) -> Result<T, Reply>
where
    F: AsyncFnOnce() -> Result<T, StoreError>,
{
    let (store, account) = (&cx.ctx.store, place.owner);
    let mut missing = Vec::new();
    for superior in place.local.ancestors() {
        if store.mailbox_by_name(account, &superior).await?.is_none() {
            missing.push(superior);
        }
    }
    if !missing.is_empty() {
        let quota = cx.ctx.share.quota(account).await?;
        let wanted = quota.mailboxes_used + missing.len() as u64 + 1;
        if quota.limits.mailboxes.is_some_and(|limit| wanted > limit) {
            return Err(Reply::no(
                Some(Code::Limit),
                format!("That would make {wanted} mailboxes, more than this account may have"),
            ));
        }
    }
    let mut made = Vec::new();
    let mut outcome = Ok(());
    for superior in &missing {
        match store.create_mailbox(account, superior, None).await {
            Ok(id) => made.push(id),
            Err(StoreError::AlreadyExists) => {}
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let result = match outcome {
        Ok(()) => then().await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        // Innermost first, so each is childless when it goes.
        for id in made.into_iter().rev() {
            if let Err(e) = store.delete_mailbox(account, id).await {
                tracing::warn!(error = %e, "could not remove a superior made for a failed CREATE/RENAME");
            }
        }
    }
    result.map_err(Reply::from)
}

pub(crate) async fn subscribe(cx: &Cx<'_>, name: &WireMailboxName, on: bool) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    if on {
        // Subscribing to a name that does not exist is allowed by RFC 9051 §6.3.7 but almost
        // always a client mistake; Dovecot refuses it too. Needs `l` (RFC 4314 §4).
        access::find(cx, &name, Rights::NONE).await?;
    }
    cx.ctx.store.set_subscribed(cx.user.account, &name, on).await?;
    Ok(Done::new())
}

/// NAMESPACE (RFC 2342).
pub(crate) fn namespace(out: &mut Out) -> Result<Done, Reply> {
    // RFC 2342: the user's own mailboxes without prefix; other users' and teams' under theirs.
    let ns = |prefix: String| vec![NamespaceDesc { prefix, delimiter: Some('/') }];
    let data = Data::Namespace {
        personal: ns(String::new()),
        other: ns(format!("{}/", namespace::OTHER_USERS)),
        shared: ns(format!("{}/", namespace::SHARED)),
    };
    out.data(&data);
    Ok(Done::new())
}

/// The value of one STATUS item (RFC 9051 §6.3.11).
pub(crate) fn status_value(cx: &Cx<'_>, st: &MailboxStatus, item: StatusItem) -> Option<u64> {
    Some(match item {
        StatusItem::Messages => u64::from(st.messages),
        StatusItem::UidNext => u64::from(st.uid_next.get()),
        StatusItem::UidValidity => u64::from(st.uid_validity.0),
        StatusItem::Unseen => u64::from(st.unseen),
        StatusItem::Deleted => u64::from(st.deleted),
        StatusItem::Size => st.size,
        StatusItem::Recent => u64::from(st.recent),
        StatusItem::AppendLimit => u64::from(cx.ctx.config.max_message_size),
        StatusItem::HighestModSeq => st.highest_modseq.0,
        StatusItem::MailboxId => return None,
        // RFC 9208 §4.1.4: only required with QUOTA=RES-STORAGE, not advertised yet; left out.
        // Filled in by `write_status` (it costs a look at the \Deleted messages).
        StatusItem::DeletedStorage => return None,
    })
}

/// Writes `* STATUS name (items)`.
pub(crate) async fn write_status(
    cx: &Cx<'_>,
    name: &str,
    st: &MailboxStatus,
    items: &[StatusItem],
    out: &mut Out,
) -> Result<(), Reply> {
    let mut values: Vec<(StatusItem, u64)> =
        items.iter().filter_map(|i| status_value(cx, st, *i).map(|v| (*i, v))).collect();
    if items.contains(&StatusItem::DeletedStorage) {
        // RFC 9208 §4.1.4: the storage EXPUNGE would free, in units of 1024 octets; costs the
        // \Deleted messages, found through the store's index of them.
        let bytes = if st.deleted == 0 {
            0
        } else {
            let deleted = cx.ctx.store.search(st.id, &Criterion::FlagSet(SystemFlags::DELETED)).await?;
            let uids = postfach_store::UidSet::from_uids(deleted);
            let metas = cx.ctx.store.fetch(st.id, &uids, postfach_store::FetchWant::default()).await?;
            metas.iter().map(|m| u64::from(m.size)).sum::<u64>()
        };
        values.push((StatusItem::DeletedStorage, bytes.div_ceil(1024)));
    }
    let mailbox_id = items.contains(&StatusItem::MailboxId).then(|| format!("M{}", st.id.0));
    let data = Data::Status { mailbox: name.to_owned(), items: values, mailbox_id };
    out.data(&data);
    Ok(())
}

pub(crate) async fn status(
    cx: &Cx<'_>,
    name: &WireMailboxName,
    items: &[StatusItem],
    out: &mut Out,
) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    let found = access::find(cx, &name, cx.need).await?;
    let st = status_for(cx, &found.place, found.info.id).await?;
    write_status(cx, &found.info.name, &st, items, out).await?;
    Ok(Done::new())
}

pub(crate) async fn append(
    cx: &Cx<'_>,
    selected: Option<&mut Selected>,
    name: &WireMailboxName,
    messages: Vec<AppendMessage>,
    out: &mut Out,
) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    let found = target_mailbox(cx, &name).await?;
    let info = found.info;
    if messages.len() > MAX_APPEND_MESSAGES {
        return Err(Reply::no(Some(Code::Limit), "Too many messages in one APPEND"));
    }
    let urls: usize = messages
        .iter()
        .map(|m| match &m.data {
            AppendData::Catenate(parts) => parts.iter().filter(|p| matches!(p, CatPart::Url(_))).count(),
            AppendData::Literal(_) => 0,
        })
        .sum();
    if urls > catenate::MAX_URLS_PER_COMMAND {
        return Err(Reply::no(Some(Code::Limit), "Too many CATENATE URLs in one command"));
    }
    let mut batch = Vec::with_capacity(messages.len());
    // Memory reserved for catenated messages, held until they are stored.
    let mut holds = Vec::new();
    for m in messages {
        let (raw, hold) = message_bytes(cx, selected.as_deref(), m.data).await?;
        holds.extend(hold);
        let flags = convert::to_store_flags(&m.flags)
            .map_err(|f| Reply::bad(None, format!("Unknown system flag {}", f.0)))?;
        let flags = access::permitted_flags(flags, found.rights);
        batch.push(NewMessage {
            // The framed command's buffer itself (issue 17: the literal is held once), or the
            // one buffer CATENATE built.
            raw,
            flags,
            internal_date: m.date.as_ref().map(convert::internal_date),
        });
    }
    let appended = cx.ctx.store.append(info.id, batch).await?;
    drop(holds);
    if let Some(sel) = selected
        && sel.id == info.id
    {
        let style = cx.enabled.style();
        if let Err(e) =
            sel.sync(&*cx.ctx.store, &*cx.ctx.share, out, Expunges::Allowed, Poll::Always, style).await
        {
            tracing::warn!(error = %e, "sync after APPEND failed");
        }
    }
    // RFC 4315 §3: APPENDUID uidvalidity uid-set.
    let uid_validity = appended.first().map(|a| a.uid_validity.0).unwrap_or(0);
    let uids = NumberSet::from_numbers(appended.iter().map(|a| a.uid.get()));
    Ok(Done::with(Code::AppendUid { uidvalidity: uid_validity, uids }))
}

/// REPLACE / UID REPLACE (RFC 8508): the new message goes into `name` like an APPEND (rights,
/// quota, APPENDUID), then the old one leaves the selected mailbox like a UID EXPUNGE of it
/// alone (`\Deleted` and expunge in one store transaction; other `\Deleted` messages stay). The
/// APPENDUID comes in an untagged OK before the EXPUNGE (§3.1, as MOVE's COPYUID). When the
/// append fails nothing is expunged; the two writes are two transactions, so a crash between
/// them leaves both messages, never neither.
pub(crate) async fn replace(
    cx: &Cx<'_>,
    sel: &mut Selected,
    kind: postfach_proto::types::CommandKind,
    target: std::num::NonZeroU32,
    name: &WireMailboxName,
    message: AppendMessage,
    out: &mut Out,
) -> Result<Done, Reply> {
    use postfach_proto::types::CommandKind;
    if sel.access == crate::selected::Access::ReadOnly {
        return Err(Reply::no(Some(Code::CannotDo), "Mailbox is read-only"));
    }
    let old = match kind {
        CommandKind::Seq => {
            let n = target.get();
            if n > sel.exists() {
                return Err(Reply::bad(None, "No such message"));
            }
            sel.uids.uid_ranges_of_seqs(n..=n).into_iter().flatten().next().and_then(postfach_store::Uid::new)
        }
        CommandKind::Uid => postfach_store::Uid::new(target.get()).filter(|u| sel.seq_of(*u).is_some()),
    };
    let Some(old) = old else {
        return Err(Reply::no(Some(Code::Nonexistent), "No such message"));
    };
    let name = decode_name(cx.enabled, name)?;
    let found = target_mailbox(cx, &name).await?;
    // RFC 8508 §4.2: CATENATE works here too; a URL may name the message being replaced.
    let (raw, holds) = message_bytes(cx, Some(&*sel), message.data).await?;
    let flags = convert::to_store_flags(&message.flags)
        .map_err(|f| Reply::bad(None, format!("Unknown system flag {}", f.0)))?;
    let new = NewMessage {
        flags: access::permitted_flags(flags, found.rights),
        internal_date: message.date.as_ref().map(convert::internal_date),
        raw,
    };
    let appended = cx.ctx.store.append(found.info.id, vec![new]).await?;
    drop(holds);
    let Some(first) = appended.first() else {
        return Err(Reply::no(Some(Code::ServerBug), "The message was not stored"));
    };
    let code = Code::AppendUid {
        uidvalidity: first.uid_validity.0,
        uids: NumberSet::from_numbers([first.uid.get()]),
    };
    out.status(postfach_proto::response::Status::Ok, Some(code), "Replacement stored");
    let gone = cx.ctx.store.remove_messages(sel.id, &postfach_store::UidSet::from_uids([old])).await?;
    sel.announce_expunges(&gone, cx.enabled.style(), out);
    if found.info.id == sel.id {
        // The replacement landed in the selected mailbox: EXISTS for it.
        let style = cx.enabled.style();
        if let Err(e) =
            sel.sync(&*cx.ctx.store, &*cx.ctx.share, out, Expunges::Allowed, Poll::Always, style).await
        {
            tracing::warn!(error = %e, "sync after REPLACE failed");
        }
    }
    Ok(Done::new())
}

/// The bytes of one APPEND/REPLACE message, checked against APPENDLIMIT: the literal as sent,
/// or the message CATENATE joined (with the memory reserved for it).
async fn message_bytes(
    cx: &Cx<'_>,
    selected: Option<&Selected>,
    data: AppendData,
) -> Result<(bytes::Bytes, Vec<std::sync::Arc<crate::MemoryHold>>), Reply> {
    let (raw, holds) = match data {
        AppendData::Literal(raw) => (raw, Vec::new()),
        AppendData::Catenate(parts) => {
            let joined = catenate::join(cx, selected, parts).await?;
            (joined.data, joined.holds)
        }
    };
    if raw.is_empty() {
        return Err(Reply::no(None, "Refusing to store an empty message"));
    }
    if raw.len() > cx.ctx.config.max_message_size as usize {
        return Err(Reply::no(Some(Code::TooBig), "Message is larger than APPENDLIMIT"));
    }
    Ok((raw, holds))
}

/// A mailbox's counters as the user sees them: in another owner's mailbox that keeps `\Seen`
/// per user, UNSEEN counts the user's own.
pub(crate) async fn status_for(cx: &Cx<'_>, place: &Place, id: MailboxId) -> Result<MailboxStatus, Reply> {
    let mut st = cx.ctx.store.status(id).await?;
    if !place.is_personal() && cx.ctx.share.seen_mode(id).await? == SeenMode::Private {
        let seen = cx.ctx.share.private_seen(id, cx.user.account).await?;
        st.unseen = st.messages.saturating_sub(u32::try_from(seen.len()).unwrap_or(u32::MAX));
    }
    Ok(st)
}

/// The target of APPEND, COPY or MOVE, with the user's `i` right on it (RFC 4314 §4). A target
/// that does not exist (or that the user cannot see) gets TRYCREATE (RFC 9051 §6.3.12, §6.4.7).
pub(crate) async fn target_mailbox(cx: &Cx<'_>, name: &MailboxName) -> Result<access::Found, Reply> {
    let trycreate = || Reply::no(Some(Code::TryCreate), "No such mailbox; create it first");
    let place = access::place(cx, name, trycreate()).await.map_err(|e| match e.code {
        Some(Code::Nonexistent) => trycreate(),
        _ => e,
    })?;
    access::find_in(cx, place, Rights::NONE.and(Right::Insert)).await.map_err(|e| match e.code {
        Some(Code::Nonexistent) => trycreate(),
        _ => e,
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
