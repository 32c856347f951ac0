//! COPY, MOVE and their UID forms (RFC 9051 §6.4.7, §6.4.8; RFC 6851), with COPYUID
//! (RFC 4315 §3).

use postfach_proto::response::{Code, Status};
use postfach_proto::types::{CommandKind, NumberSet, SequenceSet};
use postfach_store::Uid;

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
    let Some(info) = store.mailbox_by_name(cx.user.account, &name).await? else {
        // RFC 9051 §6.4.7: a missing target gets TRYCREATE.
        return Err(Reply::no(Some(Code::TryCreate), "No such mailbox; create it first"));
    };
    if uids.is_empty() {
        return Ok(Done::new());
    }
    let copied = match transfer {
        Transfer::Copy => store.copy(sel.id, &uids, info.id).await?,
        Transfer::Move => store.move_messages(sel.id, &uids, info.id).await?,
    };
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
