//! Mailbox commands of the authenticated state (RFC 9051 §6.3): CREATE, DELETE, RENAME,
//! SUBSCRIBE, UNSUBSCRIBE, NAMESPACE (RFC 2342), STATUS, APPEND; and the name rules every
//! command that takes a mailbox name shares.
//!
//! They are also valid in the selected state; then the gate passes the selected mailbox to
//! the handlers that need it (APPEND into it must announce EXISTS).

use std::sync::Arc;

use postfach_proto::response::{Code, Data, MailboxAttr, NamespaceDesc};
use postfach_proto::types::{AppendMessage, NumberSet, StatusItem, WireMailboxName};
use postfach_store::{
    MailboxInfo, MailboxName, MailboxStatus, NameError, NewMessage, SpecialUse, StoreError,
};

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

/// Looks a mailbox up by name.
pub(crate) async fn find(cx: &Cx<'_>, name: &MailboxName) -> Result<MailboxInfo, Reply> {
    match cx.ctx.store.mailbox_by_name(cx.user.account, name).await {
        Ok(Some(info)) => Ok(info),
        Ok(None) => Err(Reply::no(Some(Code::Nonexistent), "No such mailbox")),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn create(
    cx: &Cx<'_>,
    name: &WireMailboxName,
    special_use: &[postfach_proto::types::SpecialUse],
) -> Result<Done, Reply> {
    let name = decode_new_name(cx.enabled, name)?;
    if name.is_inbox() {
        return Err(Reply::no(Some(Code::AlreadyExists), "INBOX always exists"));
    }
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
    create_superiors(cx, &name).await?;
    let id = store.create_mailbox(account, &name, use_attr).await?;
    // RFC 8474 §4.1: the new mailbox's MAILBOXID in the tagged OK.
    Ok(Done::with(Code::MailboxId(format!("M{}", id.0))))
}

pub(crate) async fn delete(
    cx: &Cx<'_>,
    selected: Option<&Selected>,
    name: &WireMailboxName,
) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    if name.is_inbox() {
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
    if selected.is_some_and(|sel| sel.id == info.id) {
        // Deleting the selected mailbox is allowed; the session notices at the next sync.
        tracing::debug!(mailbox = %name, "deleting the selected mailbox");
    }
    cx.ctx.store.delete_mailbox(cx.user.account, info.id).await?;
    Ok(Done::new())
}

pub(crate) async fn rename(cx: &Cx<'_>, from: &WireMailboxName, to: &WireMailboxName) -> Result<Done, Reply> {
    let from = decode_name(cx.enabled, from)?;
    let to = decode_new_name(cx.enabled, to)?;
    if to.is_inbox() || to.as_str().starts_with("INBOX/") && from.is_inbox() {
        return Err(Reply::no(Some(Code::CannotDo), "Cannot rename to INBOX"));
    }
    if to == from || from.is_ancestor_of(&to) {
        return Err(Reply::no(Some(Code::CannotDo), "Cannot rename a mailbox into itself"));
    }
    find(cx, &from).await?;
    let store = &cx.ctx.store;
    let account = cx.user.account;
    if store.mailbox_by_name(account, &to).await?.is_some() {
        return Err(Reply::no(Some(Code::AlreadyExists), "Target mailbox already exists"));
    }
    // RFC 9051 §6.3.6: create superiors of the new name as needed.
    create_superiors(cx, &to).await?;
    store.rename_mailbox(account, &from, &to).await?;
    Ok(Done::new())
}

/// Creates the superiors of `name` that do not exist yet, outermost first (RFC 9051 §6.3.4,
/// §6.3.6). The superiors of a creatable name are creatable.
async fn create_superiors(cx: &Cx<'_>, name: &MailboxName) -> Result<(), Reply> {
    let (store, account) = (&cx.ctx.store, cx.user.account);
    for superior in name.ancestors() {
        if store.mailbox_by_name(account, &superior).await?.is_none() {
            match store.create_mailbox(account, &superior, None).await {
                Ok(_) | Err(StoreError::AlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

pub(crate) async fn subscribe(cx: &Cx<'_>, name: &WireMailboxName, on: bool) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    if on {
        // Subscribing to a name that does not exist is allowed by RFC 9051 §6.3.7 but almost
        // always a client mistake; Dovecot refuses it too.
        find(cx, &name).await?;
    }
    cx.ctx.store.set_subscribed(cx.user.account, &name, on).await?;
    Ok(Done::new())
}

/// NAMESPACE (RFC 2342).
pub(crate) fn namespace(out: &mut Out) -> Result<Done, Reply> {
    // RFC 2342: one personal namespace, no prefix, "/" delimiter.
    let data = Data::Namespace {
        personal: vec![NamespaceDesc { prefix: String::new(), delimiter: Some('/') }],
        other: Vec::new(),
        shared: Vec::new(),
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
        StatusItem::DeletedStorage => return None,
    })
}

/// Writes `* STATUS name (items)`.
pub(crate) fn write_status(cx: &Cx<'_>, name: &str, st: &MailboxStatus, items: &[StatusItem], out: &mut Out) {
    let values = items.iter().filter_map(|i| status_value(cx, st, *i).map(|v| (*i, v))).collect();
    let mailbox_id = items.contains(&StatusItem::MailboxId).then(|| format!("M{}", st.id.0));
    let data = Data::Status { mailbox: name.to_owned(), items: values, mailbox_id };
    out.data(&data);
}

pub(crate) async fn status(
    cx: &Cx<'_>,
    name: &WireMailboxName,
    items: &[StatusItem],
    out: &mut Out,
) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    let info = find(cx, &name).await?;
    let st = cx.ctx.store.status(info.id).await?;
    write_status(cx, &info.name, &st, items, out);
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
    if let Some(sel) = selected
        && sel.id == info.id
    {
        let style = cx.enabled.style();
        if let Err(e) = sel.sync(&*cx.ctx.store, out, Expunges::Allowed, Poll::Always, style).await {
            tracing::warn!(error = %e, "sync after APPEND failed");
        }
    }
    // RFC 4315 §3: APPENDUID uidvalidity uid-set.
    let uid_validity = appended.first().map(|a| a.uid_validity.0).unwrap_or(0);
    let uids = NumberSet::from_numbers(appended.iter().map(|a| a.uid.get()));
    Ok(Done::with(Code::AppendUid { uidvalidity: uid_validity, uids }))
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
