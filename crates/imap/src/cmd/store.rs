//! STORE and UID STORE (RFC 9051 §6.4.6), with CONDSTORE's UNCHANGEDSINCE (RFC 7162 §3.1.3).
//!
//! What STORE may do is decided by the gate (`session::rule`: selected state only, no EXPUNGE
//! while answering STORE by sequence number, UNCHANGEDSINCE enables CONDSTORE, the rights it
//! will need); this file only does it.

use postfach_proto::response::{Code, Data, FetchValue};
use postfach_proto::types::{CommandKind, NumberSet, SequenceSet, StoreAction, StoreOp};
use postfach_store::{FlagOp, UidSet};

use crate::cmd::fetch::{known_chunks, resolve};
use crate::context::Cx;
use crate::respond::{Done, Reply};
use crate::selected::{Access, Selected};
use crate::{Out, convert};

/// Most messages per store call of one STORE: a STORE over a huge mailbox becomes several
/// transactions (RFC 9051 does not make STORE atomic), so it neither holds the writer for
/// seconds nor keeps the whole result in memory; the tagged OK still waits for all of them.
const STORE_CHUNK: usize = 16_384;

pub(crate) async fn store_flags(
    cx: &Cx<'_>,
    sel: &mut Selected,
    kind: CommandKind,
    set: &SequenceSet,
    action: &StoreAction,
    unchanged_since: Option<u64>,
    out: &mut Out,
) -> Result<Done, Reply> {
    if sel.access == Access::ReadOnly {
        return Err(Reply::no(None, "Mailbox is read-only"));
    }
    let flags = convert::to_store_flags(&action.flags)
        .map_err(|f| Reply::bad(None, format!("Unknown system flag {}", f.0)))?;
    let resolved = resolve(sel, kind, set, true)?;
    let chunks: Vec<UidSet> = known_chunks(sel, &resolved, STORE_CHUNK).collect();
    let op = match action.op {
        StoreOp::Add => FlagOp::Add,
        StoreOp::Remove => FlagOp::Remove,
        StoreOp::Replace => FlagOp::Replace,
    };
    let store = &*cx.ctx.store;
    let rev2 = cx.enabled.rev2;
    let condstore = cx.enabled.condstore;
    let mut modified = Vec::new();
    for (i, uids) in chunks.iter().enumerate() {
        let result =
            store.store_flags(sel.id, uids, op, &flags, unchanged_since.map(postfach_store::ModSeq)).await?;
        sel.own_change(result.modseq_before, result.modseq_after);
        if i == 0 {
            sel.learn_keywords(&flags.keywords, out);
        }
        for (uid, flags, modseq) in &result.updated {
            let Some(seq) = sel.seq_of(*uid) else { continue };
            // RFC 7162 §3.1.3: with CONDSTORE the client needs the new MODSEQ even after .SILENT.
            if action.silent && !condstore {
                continue;
            }
            let mut attrs = Vec::with_capacity(3);
            if !action.silent {
                attrs.push(FetchValue::Flags(convert::flags(flags, !rev2 && sel.recent.contains(*uid))));
            }
            // RFC 7162 §3.2.4: CONDSTORE/QRESYNC clients get the UID with every FETCH.
            if kind.is_uid() || condstore {
                attrs.push(FetchValue::Uid(uid.get()));
            }
            if condstore {
                attrs.push(FetchValue::ModSeq(modseq.0));
            }
            out.data(&Data::Fetch { seq, attrs });
            out.flush_if_large().await;
        }
        modified.extend(result.modified);
    }
    if !modified.is_empty() {
        // RFC 7162 §3.1.3: MODIFIED lists what UNCHANGEDSINCE protected.
        let nums: NumberSet = match kind {
            CommandKind::Uid => NumberSet::from_numbers(modified.iter().map(|u| u.get())),
            CommandKind::Seq => NumberSet::from_numbers(modified.iter().filter_map(|u| sel.seq_of(*u))),
        };
        return Ok(Done::with(Code::Modified(nums)));
    }
    Ok(Done::new())
}
