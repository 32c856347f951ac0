//! STORE and UID STORE (RFC 9051 §6.4.6), with CONDSTORE's UNCHANGEDSINCE (RFC 7162 §3.1.3).
//!
//! What STORE may do is decided by the gate (`session::rule`: selected state only, no EXPUNGE
//! while answering STORE by sequence number, UNCHANGEDSINCE enables CONDSTORE, the rights it
//! will need); this file only does it.

use postfach_proto::response::{Code, Data, FetchValue};
use postfach_proto::types::{CommandKind, NumberSet, SequenceSet, StoreAction, StoreOp};
use postfach_store::{FlagOp, Flags, Right, Rights, SystemFlags, UidSet};

use crate::access;
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
    let op = match action.op {
        StoreOp::Add => FlagOp::Add,
        StoreOp::Remove => FlagOp::Remove,
        StoreOp::Replace => FlagOp::Replace,
    };
    let resolved = resolve(sel, kind, set, true)?;
    let chunks: Vec<UidSet> = known_chunks(sel, &resolved, STORE_CHUNK).collect();
    // RFC 4314 §4: change only the flags the user has rights for, and fail only when that
    // leaves nothing of a STORE that asked for something.
    // In another owner's mailbox that keeps \Seen per user, the user's \Seen is their own and
    // the message's flag is left alone.
    let private_seen = match (&sel.private, op) {
        (None, _) => None,
        _ if !sel.rights.contains(Right::Seen) => None,
        (Some(_), FlagOp::Replace) => Some(flags.system.contains(SystemFlags::SEEN)),
        (Some(_), _) if !flags.system.contains(SystemFlags::SEEN) => None,
        (Some(_), FlagOp::Add) => Some(true),
        (Some(_), FlagOp::Remove) => Some(false),
    };
    let row_rights =
        if sel.private.is_some() { sel.rights.without(Rights::NONE.and(Right::Seen)) } else { sel.rights };
    let steps = permitted_steps(row_rights, op, flags, &sel.keywords);
    if steps.is_empty() && private_seen.is_none() {
        let needed = rights_for(action);
        return Err(Reply::no(
            Some(Code::NoPerm),
            format!("You lack the right(s) \"{}\" to change these flags", needed.without(sel.rights)),
        ));
    }
    let mut modified = Vec::new();
    if let (Some(seen), Some(private)) = (private_seen, &sel.private) {
        let account = private.account;
        for uids in &chunks {
            let before = sel.known_modseq();
            let changed = cx.ctx.share.store_private_seen(sel.id, account, uids, seen).await?;
            if let Some(after) = changed.iter().map(|(_, m)| *m).max() {
                sel.own_change(before, after, changed.iter().map(|(u, _)| *u));
            }
            if let Some(private) = sel.private.as_mut() {
                private.record(&changed, seen);
            }
        }
    }
    // With a private \Seen the answers are written at the end, with the user's view.
    let report = sel.private.is_none();
    for (op, flags) in steps {
        if let Some(done) =
            apply(cx, sel, kind, &chunks, action, report, op, &flags, unchanged_since, out).await?
        {
            modified.extend(done);
        }
    }
    if !report && (!action.silent || cx.enabled.condstore) {
        report_view(cx, sel, kind, &chunks, action.silent, out).await?;
    }
    if !modified.is_empty() {
        modified.sort_unstable();
        modified.dedup();
        // RFC 7162 §3.1.3: MODIFIED lists what UNCHANGEDSINCE protected.
        let nums: NumberSet = match kind {
            CommandKind::Uid => NumberSet::from_numbers(modified.iter().map(|u| u.get())),
            CommandKind::Seq => NumberSet::from_numbers(modified.iter().filter_map(|u| sel.seq_of(*u))),
        };
        return Ok(Done::with(Code::Modified(nums)));
    }
    Ok(Done::new())
}

/// The rights a STORE needs to change everything it names (RFC 4314 §4): `s` for `\Seen`, `t`
/// for `\Deleted`, `w` for the rest; a replacing STORE may change them all.
pub(crate) fn rights_for(action: &StoreAction) -> Rights {
    use postfach_proto::types::Flag;
    if action.op == StoreOp::Replace {
        return Rights::NONE.and(Right::Seen).and(Right::DeleteMessages).and(Right::Write);
    }
    action.flags.iter().fold(Rights::NONE, |set, flag| {
        set.and(match flag {
            Flag::Seen => Right::Seen,
            Flag::Deleted => Right::DeleteMessages,
            _ => Right::Write,
        })
    })
}

/// The store calls that do what `op flags` asks within `rights`. With every right, the STORE
/// itself; otherwise the flags the user may not change are left out, and a replacing STORE
/// becomes "add the permitted flags it lists, remove the permitted ones it does not" (the
/// keywords removed are those the mailbox knows). Empty when nothing is left to do.
fn permitted_steps(rights: Rights, op: FlagOp, flags: Flags, known: &[String]) -> Vec<(FlagOp, Flags)> {
    let all = access::FLAG_RIGHTS;
    if rights.contains_all(all) {
        return vec![(op, flags)];
    }
    let settable = access::settable_flags(rights);
    let keep = |f: &Flags| access::permitted_flags(f.clone(), rights);
    let listed = keep(&flags);
    let is_empty = |f: &Flags| f.system.0 == 0 && f.keywords.is_empty();
    match op {
        FlagOp::Add | FlagOp::Remove => {
            if is_empty(&listed) {
                Vec::new()
            } else {
                vec![(op, listed)]
            }
        }
        FlagOp::Replace => {
            let unlisted = Flags {
                system: settable.without(flags.system),
                keywords: if rights.contains(Right::Write) {
                    known.iter().filter(|k| !flags.has_keyword(k)).cloned().collect()
                } else {
                    Vec::new()
                },
            };
            let mut steps = Vec::new();
            if !is_empty(&listed) {
                steps.push((FlagOp::Add, listed));
            }
            if !is_empty(&unlisted) {
                steps.push((FlagOp::Remove, unlisted));
            }
            if steps.is_empty() && rights.intersection(all).is_empty() {
                return Vec::new();
            }
            if steps.is_empty() {
                // Nothing to change, but the user may change some flags: a no-op STORE.
                steps.push((FlagOp::Add, Flags::default()));
            }
            steps
        }
    }
}

/// One store pass over the chunks with its untagged FETCH responses; the UIDs UNCHANGEDSINCE
/// protected.
#[allow(clippy::too_many_arguments)]
async fn apply(
    cx: &Cx<'_>,
    sel: &mut Selected,
    kind: CommandKind,
    chunks: &[UidSet],
    action: &StoreAction,
    report: bool,
    op: FlagOp,
    flags: &Flags,
    unchanged_since: Option<u64>,
    out: &mut Out,
) -> Result<Option<Vec<postfach_store::Uid>>, Reply> {
    let store = &*cx.ctx.store;
    let rev2 = cx.enabled.rev2;
    let condstore = cx.enabled.condstore;
    let mut modified = Vec::new();
    // RFC 9585: a long STORE reports how many of its messages are done.
    let mut progress = cx.progress();
    let total: u64 = chunks.iter().map(UidSet::len).sum();
    let mut done = 0;
    for (i, uids) in chunks.iter().enumerate() {
        if i > 0 {
            progress.step(done, Some(total), out).await;
        }
        done += uids.len();
        let result =
            store.store_flags(sel.id, uids, op, flags, unchanged_since.map(postfach_store::ModSeq)).await?;
        sel.own_change(result.modseq_before, result.modseq_after, result.updated.iter().map(|(u, ..)| *u));
        if i == 0 {
            sel.learn_keywords(&flags.keywords, out);
        }
        for (uid, flags, modseq) in &result.updated {
            let Some(seq) = sel.seq_of(*uid) else { continue };
            // RFC 7162 §3.1.3: with CONDSTORE the client needs the new MODSEQ even after .SILENT.
            if !report || action.silent && !condstore {
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
    Ok(Some(modified))
}

/// The FETCH answers of a STORE in a private-`\Seen` mailbox: every message of the set with
/// the flags and modseq this user sees.
async fn report_view(
    cx: &Cx<'_>,
    sel: &Selected,
    kind: CommandKind,
    chunks: &[UidSet],
    silent: bool,
    out: &mut Out,
) -> Result<(), Reply> {
    let condstore = cx.enabled.condstore;
    for uids in chunks {
        for mut meta in cx.ctx.store.fetch(sel.id, uids, postfach_store::FetchWant::default()).await? {
            let Some(seq) = sel.seq_of(meta.uid) else { continue };
            sel.view(meta.uid, &mut meta.flags, &mut meta.modseq);
            let mut attrs = Vec::with_capacity(3);
            if !silent {
                let recent = !cx.enabled.rev2 && sel.recent.contains(meta.uid);
                attrs.push(FetchValue::Flags(convert::flags(&meta.flags, recent)));
            }
            if kind.is_uid() || condstore {
                attrs.push(FetchValue::Uid(meta.uid.get()));
            }
            if condstore {
                attrs.push(FetchValue::ModSeq(meta.modseq.0));
            }
            out.data(&Data::Fetch { seq, attrs });
            out.flush_if_large().await;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn flags(system: SystemFlags, keywords: &[&str]) -> Flags {
        Flags { system, keywords: keywords.iter().map(|k| (*k).to_owned()).collect() }
    }

    #[test]
    fn rfc4314_store_keeps_only_permitted_flags() {
        let all = Rights::parse("lrswte").unwrap();
        let asked = flags(SystemFlags(SystemFlags::SEEN.0 | SystemFlags::DELETED.0), &["$Done"]);
        // Every right: the STORE as asked.
        assert_eq!(permitted_steps(all, FlagOp::Add, asked.clone(), &[]), vec![(FlagOp::Add, asked.clone())]);
        // `s` only: \Seen alone.
        let s = Rights::parse("lrs").unwrap();
        assert_eq!(
            permitted_steps(s, FlagOp::Add, asked.clone(), &[]),
            vec![(FlagOp::Add, flags(SystemFlags::SEEN, &[]))]
        );
        // No right for any of them: nothing to do (the handler answers NO [NOPERM]).
        let r = Rights::parse("lr").unwrap();
        assert!(permitted_steps(r, FlagOp::Add, asked.clone(), &[]).is_empty());
        // Replace with `w` only: add the listed keyword, remove the other known ones and the
        // `w` system flags not listed; \Seen and \Deleted untouched.
        let w = Rights::parse("lrw").unwrap();
        let steps = permitted_steps(w, FlagOp::Replace, asked, &["$Done".to_owned(), "$Old".to_owned()]);
        assert_eq!(
            steps,
            vec![
                (FlagOp::Add, flags(SystemFlags(0), &["$Done"])),
                (
                    FlagOp::Remove,
                    flags(
                        SystemFlags(SystemFlags::ANSWERED.0 | SystemFlags::FLAGGED.0 | SystemFlags::DRAFT.0),
                        &["$Old"]
                    )
                ),
            ]
        );
    }
}
