//! QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA, SETQUOTA.
//!
//! Every account and team is one quota root, named by its canonical name; a mailbox's root is
//! its owner's (a team mailbox counts against the team). Usage and limits come from the store,
//! which enforces them in the transaction that writes. A user may read the roots of the
//! mailboxes they can see; SETQUOTA is for the accounts the configuration names as admins.

use postfach_proto::response::{Code, Data};
use postfach_proto::types::WireMailboxName;
use postfach_store::{Account, Quota, QuotaLimits};

use crate::Out;
use crate::access;
use crate::cmd::mailbox::decode_name;
use crate::context::Cx;
use crate::respond::{Done, Reply};

/// STORAGE is counted in units of 1024 octets (RFC 9208 §5.1), rounded up.
fn kib(bytes: u64) -> u64 {
    bytes.div_ceil(1024)
}

/// The QUOTA response of a root: every limited resource with usage and limit.
fn quota_data(root: &str, q: &Quota) -> Data {
    let mut resources = Vec::new();
    if let Some(limit) = q.limits.storage {
        resources.push(("STORAGE".to_owned(), kib(q.storage_used), limit / 1024));
    }
    if let Some(limit) = q.limits.messages {
        resources.push(("MESSAGE".to_owned(), q.messages_used, limit));
    }
    if let Some(limit) = q.limits.mailboxes {
        resources.push(("MAILBOX".to_owned(), q.mailboxes_used, limit));
    }
    Data::Quota { root: root.to_owned(), resources }
}

/// GETQUOTAROOT mailbox (RFC 9208 §4.1.2).
pub(crate) async fn getquotaroot(cx: &Cx<'_>, name: &WireMailboxName, out: &mut Out) -> Result<Done, Reply> {
    let name = decode_name(cx.enabled, name)?;
    let found = access::find(cx, &name, cx.need).await?;
    let owner = cx.ctx.share.mailbox_owner(found.info.id).await?;
    let quota = cx.ctx.share.quota(owner.id).await?;
    out.data(&Data::QuotaRoot { mailbox: found.info.name, roots: vec![owner.name.clone()] });
    out.data(&quota_data(&owner.name, &quota));
    Ok(Done::new())
}

/// The account of quota root `root` if the user may read it: their own, or the owner of a
/// mailbox they can see. Anything else does not exist for them.
async fn readable_root(cx: &Cx<'_>, root: &str) -> Result<Account, Reply> {
    let unknown = || Reply::no(Some(Code::Nonexistent), "No such quota root");
    let Some(account) = cx.ctx.accounts.account_by_name(root).await? else { return Err(unknown()) };
    if account.id == cx.user.account || is_admin(cx) {
        return Ok(account);
    }
    let shared = cx.ctx.share.shared_with(cx.user.account).await?;
    if shared.iter().any(|s| s.owner == account.id && s.rights.contains(postfach_store::Right::Lookup)) {
        Ok(account)
    } else {
        Err(unknown())
    }
}

/// True when the logged-in account may set quotas.
fn is_admin(cx: &Cx<'_>) -> bool {
    cx.ctx.config.quota_admins.iter().any(|a| a.eq_ignore_ascii_case(&cx.user.name))
}

/// GETQUOTA root (RFC 9208 §4.1.1).
pub(crate) async fn getquota(cx: &Cx<'_>, root: &str, out: &mut Out) -> Result<Done, Reply> {
    let account = readable_root(cx, root).await?;
    let quota = cx.ctx.share.quota(account.id).await?;
    out.data(&quota_data(&account.name, &quota));
    Ok(Done::new())
}

/// SETQUOTA root (resource limit ...) (RFC 9208 §4.1.3): replaces the root's limits; a resource
/// left out goes back to the installation's default. STORAGE is in units of 1024 octets.
pub(crate) async fn setquota(
    cx: &Cx<'_>,
    root: &str,
    limits: &[(String, u64)],
    out: &mut Out,
) -> Result<Done, Reply> {
    if !is_admin(cx) {
        return Err(Reply::no(Some(Code::NoPerm), "Only administrators may set quotas"));
    }
    let Some(account) = cx.ctx.accounts.account_by_name(root).await? else {
        return Err(Reply::no(Some(Code::Nonexistent), "No such quota root"));
    };
    let mut new = QuotaLimits::default();
    for (resource, limit) in limits {
        match resource.to_ascii_uppercase().as_str() {
            "STORAGE" => new.storage = Some(limit.saturating_mul(1024)),
            "MESSAGE" => new.messages = Some(*limit),
            "MAILBOX" => new.mailboxes = Some(*limit),
            other => {
                return Err(Reply::no(
                    Some(Code::CannotDo),
                    format!("Resource {other} cannot be limited here"),
                ));
            }
        }
    }
    cx.ctx.share.set_quota(account.id, new).await?;
    let quota = cx.ctx.share.quota(account.id).await?;
    out.data(&quota_data(&account.name, &quota));
    Ok(Done::new())
}
