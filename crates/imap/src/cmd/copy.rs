//! COPY, MOVE and their UID forms (RFC 9051 §6.4.7, §6.4.8; RFC 6851), with COPYUID
//! (RFC 4315 §3).

use postfach_proto::response::{Code, Status};
use postfach_proto::types::{CommandKind, NumberSet, SequenceSet};
use postfach_store::{Copied, FlagOp, Flags, Right, SystemFlags, Uid, UidSet};

use crate::Out;
use crate::cmd::fetch::{known, resolve};
use crate::cmd::mailbox;
use crate::context::Cx;
use crate::respond::{Done, Reply};
use crate::selected::{Access, Selected};
// ------------------------------------------------------------------------------------------------
// COPY / MOVE

/// COPY or MOVE.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transfer {
    /// COPY: the source keeps the messages.
    Copy,
    /// MOVE (RFC 6851): the source loses them.
    Move,
}

pub(crate) async fn copy(
    cx: &Cx<'_>,
    sel: &mut Selected,
    kind: CommandKind,
    set: &SequenceSet,
    target: &postfach_proto::types::WireMailboxName,
    transfer: Transfer,
    out: &mut Out,
) -> Result<Done, Reply> {
    if transfer == Transfer::Move && sel.access == Access::ReadOnly {
        return Err(Reply::no(None, "Mailbox is read-only"));
    }
    let uids = known(sel, &resolve(sel, kind, set, true)?);
    let name = mailbox::decode_name(cx.enabled, target)?;
    let store = &*cx.ctx.store;
    // RFC 4314 §4: `i` on the target (the gate checked the source's rights).
    let found = mailbox::target_mailbox(cx, &name).await?;
    let info = found.info.clone();
    if uids.is_empty() {
        return Ok(Done::new());
    }
    // RFC 9585: one store call; a long one is reported while it runs.
    let mut progress = cx.progress();
    let copied = match transfer {
        Transfer::Copy => progress.wait(store.copy(sel.id, &uids, info.id), out).await?,
        Transfer::Move => progress.wait(store.move_messages(sel.id, &uids, info.id), out).await?,
    };
    strip_unpermitted(cx, &found, &copied).await?;
    // RFC 4315 §3: COPYUID uidvalidity source-uids target-uids, in matching order.
    let from = NumberSet::from_numbers(copied.mapping.iter().map(|(s, _)| s.get()));
    let to = NumberSet::from_numbers(copied.mapping.iter().map(|(_, t)| t.get()));
    let code = (!copied.mapping.is_empty()).then_some(Code::CopyUid {
        uidvalidity: copied.uid_validity.0,
        from,
        to,
    });
    match transfer {
        Transfer::Copy => Ok(Done { code }),
        Transfer::Move => {
            // RFC 6851 §4.3: COPYUID goes in an untagged OK before the expunges.
            if let Some(code) = &code {
                out.status(Status::Ok, Some(code.clone()), "Moved");
            }
            let gone: Vec<Uid> = copied.mapping.iter().map(|(s, _)| *s).collect();
            sel.announce_expunges(&gone, cx.enabled.style(), out);
            Ok(Done::new())
        }
    }
}

/// RFC 4314 §4: a copied message keeps only the flags the user may set in the target; the
/// others are cleared right after the copy (the rare case of a target shared without `s`, `t`
/// or `w`; COPY never fails for it).
async fn strip_unpermitted(cx: &Cx<'_>, found: &crate::access::Found, copied: &Copied) -> Result<(), Reply> {
    if found.rights.contains_all(crate::access::FLAG_RIGHTS) || copied.mapping.is_empty() {
        return Ok(());
    }
    let every = [
        SystemFlags::SEEN,
        SystemFlags::ANSWERED,
        SystemFlags::FLAGGED,
        SystemFlags::DELETED,
        SystemFlags::DRAFT,
    ]
    .into_iter()
    .fold(SystemFlags(0), SystemFlags::union);
    let strip =
        Flags { system: every.without(crate::access::settable_flags(found.rights)), keywords: Vec::new() };
    let uids = UidSet::from_uids(copied.mapping.iter().map(|(_, t)| *t));
    if strip.system.0 != 0 {
        cx.ctx.store.store_flags(found.info.id, &uids, FlagOp::Remove, &strip, None).await?;
    }
    if !found.rights.contains(Right::Write) {
        // Keywords: whatever the copies carry.
        let metas = cx.ctx.store.fetch(found.info.id, &uids, postfach_store::FetchWant::default()).await?;
        let keywords: Vec<String> = metas.iter().flat_map(|m| m.flags.keywords.iter().cloned()).collect();
        if !keywords.is_empty() {
            let strip = Flags { system: SystemFlags(0), keywords };
            cx.ctx.store.store_flags(found.info.id, &uids, FlagOp::Remove, &strip, None).await?;
        }
    }
    Ok(())
}
