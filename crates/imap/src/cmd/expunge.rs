//! EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315 §2.1).

use postfach_proto::response::Code;
use postfach_proto::types::{CommandKind, SequenceSet};

use crate::Out;
use crate::cmd::fetch::resolve;
use crate::context::Cx;
use crate::respond::{Done, Reply};
use crate::selected::{Access, Selected};

pub(crate) async fn expunge(
    cx: &Cx<'_>,
    sel: &mut Selected,
    uids: Option<&SequenceSet>,
    out: &mut Out,
) -> Result<Done, Reply> {
    if sel.access == Access::ReadOnly {
        return Err(Reply::no(None, "Mailbox is read-only"));
    }
    let set = match uids {
        Some(set) => Some(resolve(sel, CommandKind::Uid, set, false)?),
        None => None,
    };
    let gone = cx.ctx.store.expunge(sel.id, set.as_ref()).await?;
    sel.announce_expunges(&gone, cx.enabled.style(), out);
    if cx.enabled.qresync && !gone.is_empty() {
        // RFC 7162 §3.2.10: the tagged OK carries the mailbox's new HIGHESTMODSEQ.
        let st = cx.ctx.store.status(sel.id).await?;
        return Ok(Done::with(Code::HighestModSeq(st.highest_modseq.0)));
    }
    Ok(Done::new())
}
