//! ACL (RFC 4314 §3): SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS.
//!
//! Rights are kept by the store ([`postfach_store::ShareStore`]); this file parses identifiers
//! and rights strings, checks `a` (administer) and answers. The owner of a mailbox always has
//! every right: it is shown by GETACL and cannot be changed (a team owner never logs in, and a
//! user cannot lock themselves out of their own mailbox).

use postfach_proto::response::{Code, Data};
use postfach_proto::types::WireMailboxName;
use postfach_store::{AccountKind, Grantee, Identifier, Right, Rights, StoreError};

use crate::Out;
use crate::access::{self, Found};
use crate::cmd::mailbox::decode_name;
use crate::context::Cx;
use crate::respond::{Done, Reply};

/// The mailbox an ACL command names, with `a` on it.
async fn administered(cx: &Cx<'_>, name: &WireMailboxName) -> Result<Found, Reply> {
    let name = decode_name(cx.enabled, name)?;
    access::find(cx, &name, Rights::NONE.and(Right::Administer)).await
}

/// Parses an identifier argument: BAD when it is none (RFC 4314 §3).
fn identifier(raw: &str) -> Result<Identifier, Reply> {
    Identifier::parse(raw).ok_or_else(|| Reply::bad(None, format!("Invalid identifier {raw:?}")))
}

/// True when `id` names the mailbox's owner (positively or negatively).
async fn is_owner(cx: &Cx<'_>, found: &Found, id: &Identifier) -> Result<bool, Reply> {
    let Grantee::Account(name) = &id.grantee else { return Ok(false) };
    Ok(cx.ctx.accounts.account_by_name(name).await?.is_some_and(|a| a.id == found.place.owner))
}

/// SETACL mailbox identifier mod-rights (RFC 4314 §3.1): `+rights` adds, `-rights` removes,
/// anything else replaces; an empty result removes the entry.
pub(crate) async fn setacl(
    cx: &Cx<'_>,
    name: &WireMailboxName,
    who: &str,
    mod_rights: &str,
) -> Result<Done, Reply> {
    let id = identifier(who)?;
    let (op, letters) = match mod_rights.as_bytes().first() {
        Some(b'+') => (Some(true), &mod_rights[1..]),
        Some(b'-') => (Some(false), &mod_rights[1..]),
        _ => (None, mod_rights),
    };
    // RFC 4314 §3.1: an unknown right is BAD.
    let rights = Rights::parse(letters).map_err(|e| Reply::bad(None, format!("Invalid rights: {e}")))?;
    let found = administered(cx, name).await?;
    if is_owner(cx, &found, &id).await? {
        return Err(Reply::no(Some(Code::CannotDo), "The owner always has every right"));
    }
    let share = &cx.ctx.share;
    let current = share
        .acl(found.info.id)
        .await?
        .into_iter()
        .find(|e| same_identifier(&e.identifier, &id))
        .map(|e| e.rights)
        .unwrap_or(Rights::NONE);
    let new = match op {
        Some(true) => current.union(rights),
        Some(false) => current.without(rights),
        None => rights,
    };
    let new = (!new.is_empty()).then_some(new);
    share.set_acl(found.info.id, &id, new).await.map_err(unknown_identifier)?;
    Ok(Done::new())
}

/// DELETEACL mailbox identifier (RFC 4314 §3.2).
pub(crate) async fn deleteacl(cx: &Cx<'_>, name: &WireMailboxName, who: &str) -> Result<Done, Reply> {
    let id = identifier(who)?;
    let found = administered(cx, name).await?;
    if is_owner(cx, &found, &id).await? {
        return Err(Reply::no(Some(Code::CannotDo), "The owner always has every right"));
    }
    cx.ctx.share.set_acl(found.info.id, &id, None).await.map_err(unknown_identifier)?;
    Ok(Done::new())
}

/// GETACL mailbox (RFC 4314 §3.3): the owner (a user) with every right, then the entries.
pub(crate) async fn getacl(cx: &Cx<'_>, name: &WireMailboxName, out: &mut Out) -> Result<Done, Reply> {
    let found = administered(cx, name).await?;
    let mut entries = Vec::new();
    let owner = cx.ctx.share.mailbox_owner(found.info.id).await?;
    if owner.kind == AccountKind::User {
        entries.push((owner.name.clone(), Rights::ALL.to_wire()));
    }
    for entry in cx.ctx.share.acl(found.info.id).await? {
        entries.push((entry.identifier.to_string(), entry.rights.to_wire()));
    }
    out.data(&Data::Acl { mailbox: found.info.name, entries });
    Ok(Done::new())
}

/// LISTRIGHTS mailbox identifier (RFC 4314 §3.4): the owner has every right and no other;
/// anybody else may be granted each right on its own (`c` is `k`, `d` is `xte`).
pub(crate) async fn listrights(
    cx: &Cx<'_>,
    name: &WireMailboxName,
    who: &str,
    out: &mut Out,
) -> Result<Done, Reply> {
    let id = identifier(who)?;
    let found = administered(cx, name).await?;
    let (required, optional) = if is_owner(cx, &found, &id).await? {
        (Rights::ALL.to_string(), Vec::new())
    } else {
        let mut each: Vec<String> = Right::ALL.iter().map(|r| r.letter().to_string()).collect();
        each.push("c".to_owned());
        each.push("d".to_owned());
        (String::new(), each)
    };
    out.data(&Data::ListRights { mailbox: found.info.name, identifier: who.to_owned(), required, optional });
    Ok(Done::new())
}

/// MYRIGHTS mailbox (RFC 4314 §3.5): any right among `l r i k x a` lets the user ask; a
/// mailbox without `l` does not exist for them.
pub(crate) async fn myrights(cx: &Cx<'_>, name: &WireMailboxName, out: &mut Out) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    let found = access::find(cx, &name, Rights::NONE).await?;
    out.data(&Data::MyRights { mailbox: found.info.name, rights: found.rights.to_wire() });
    Ok(Done::new())
}

/// Two identifiers name the same entry (account names compare case-insensitively).
fn same_identifier(a: &Identifier, b: &Identifier) -> bool {
    a.negative == b.negative
        && match (&a.grantee, &b.grantee) {
            (Grantee::Account(x), Grantee::Account(y)) | (Grantee::Group(x), Grantee::Group(y)) => {
                x.eq_ignore_ascii_case(y)
            }
            (x, y) => x == y,
        }
}

/// The store refuses an entry for an account that does not exist.
fn unknown_identifier(e: StoreError) -> Reply {
    match e {
        StoreError::NotFound => Reply::no(Some(Code::CannotDo), "No such user or team"),
        e => e.into(),
    }
}
