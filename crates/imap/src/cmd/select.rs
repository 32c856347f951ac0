//! SELECT and EXAMINE (RFC 9051 §6.3.2, §6.3.3), with CONDSTORE and QRESYNC (RFC 7162), and
//! CLOSE and UNSELECT (RFC 9051 §6.4.1, §6.4.2), which leave the selected state.

use postfach_proto::response::{Code, Data, FetchValue, Status};
use postfach_proto::types::{Flag, NumberSet, QresyncParams, SelectParams, WireMailboxName};
use postfach_store::{Right, Rights, SeenMode};

use crate::access;
use crate::cmd::mailbox::decode_name;
use crate::context::{Cx, Enabled};
use crate::respond::{Done, Reply};
use crate::selected::{Access, Grant, Selected, permanent_flags};
use crate::{Out, convert};

/// SELECT / EXAMINE (RFC 9051 §6.3.2, §6.3.3). `slot` is the session's selected mailbox:
/// replaced by the new one on success, emptied when the old one was closed and the new one
/// could not be opened, left alone when the command is refused before anything happened.
pub(crate) async fn select(
    cx: &Cx<'_>,
    slot: &mut Option<Box<Selected>>,
    name: &WireMailboxName,
    params: &SelectParams,
    access: Access,
    out: &mut Out,
) -> Result<Done, Reply> {
    if params.qresync.is_some() && !cx.enabled.qresync {
        // RFC 7162 §3.2.5: QRESYNC parameters need ENABLE QRESYNC first.
        return Err(Reply::bad(None, "ENABLE QRESYNC first"));
    }
    if slot.take().is_some() {
        // RFC 9051 §6.3.2: leaving the old mailbox is announced with [CLOSED].
        out.status(Status::Ok, Some(Code::Closed), "Previous mailbox closed");
    }
    let sel = open(cx, name, params, access, out).await?;
    let code = match sel.access {
        Access::ReadWrite => Code::ReadWrite,
        Access::ReadOnly => Code::ReadOnly,
    };
    *slot = Some(Box::new(sel));
    Ok(Done::with(code))
}

/// CLOSE (RFC 9051 §6.4.1): expunge silently if read-write; the gate then leaves the selected
/// state whatever the result.
pub(crate) async fn close(cx: &Cx<'_>, sel: &Selected) -> Result<Done, Reply> {
    // RFC 4314 §4: without `e`, CLOSE only closes.
    if sel.access == Access::ReadWrite && sel.rights.contains(Right::Expunge) {
        cx.ctx.store.expunge(sel.id, None).await?;
    }
    Ok(Done::new())
}

/// UNSELECT (RFC 3691, RFC 9051 §6.4.2): leave without expunging; the gate does the leaving.
pub(crate) fn unselect() -> Result<Done, Reply> {
    Ok(Done::new())
}

/// SELECT/EXAMINE's work: open the mailbox and send its untagged responses (RFC 9051 §6.3.2).
async fn open(
    cx: &Cx<'_>,
    name: &WireMailboxName,
    params: &SelectParams,
    access: Access,
    out: &mut Out,
) -> Result<Selected, Reply> {
    let (ctx, enabled) = (cx.ctx, cx.enabled);
    let name = decode_name(enabled, name)?;
    // Read before the rights: an ACL change after this is noticed at the next command.
    let generation = ctx.store.notifier().acl_generation();
    let found = access::find(cx, &name, cx.need).await?;
    // RFC 4314 §5.2: READ-ONLY unless the user may insert, expunge or change a flag.
    let writes = Rights::NONE
        .and(Right::Insert)
        .and(Right::Expunge)
        .and(Right::Write)
        .and(Right::Seen)
        .and(Right::DeleteMessages);
    let access = if found.rights.intersection(writes).is_empty() { Access::ReadOnly } else { access };
    let grant = Grant { owner: found.place.owner, rights: found.rights, generation };
    let info = found.info.clone();
    let (mut sel, mut snap) = Selected::open(&*ctx.store, info.id, info.name.clone(), access, grant).await?;
    if !found.place.is_personal() && ctx.share.seen_mode(info.id).await? == SeenMode::Private {
        // The user's own \Seen: UNSEEN and the first unseen message are theirs.
        sel.keep_private_seen(&*ctx.share, cx.user.account).await?;
        if let Some(private) = &sel.private {
            let seen = private.seen();
            let ranges =
                if sel.exists() == 0 { Vec::new() } else { sel.uids.uid_ranges_of_seqs(1..=sel.exists()) };
            snap.first_unseen = ranges
                .into_iter()
                .flatten()
                .filter_map(postfach_store::Uid::new)
                .find(|u| !seen.contains(*u));
        }
    }
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
    let permanent = permanent_flags(flags, access, sel.rights);
    out.status(Status::Ok, Some(Code::PermanentFlags(permanent)), "Flags permitted");
    out.data(&Data::Exists(sel.exists()));
    if !enabled.rev2 {
        // IMAP4rev1 §6.3.1: RECENT and the first unseen message.
        out.data(&Data::Recent(snap.status.recent));
        // RFC 9586 §3: UNSEEN names a message number, which UIDONLY clients never get.
        if let Some(seq) = snap.first_unseen.and_then(|u| sel.seq_of(u)).filter(|_| !enabled.uidonly) {
            out.status(Status::Ok, Some(Code::Unseen(seq)), "First unseen");
        }
    }
    out.status(Status::Ok, Some(Code::UidValidity(snap.status.uid_validity.0)), "UIDs valid");
    out.status(Status::Ok, Some(Code::UidNext(snap.status.uid_next.get())), "Predicted next UID");
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
        Some(set) => set.resolve(snap.status.uid_next.get().saturating_sub(1)),
        None => None,
    };
    let vanished = NumberSet::from_numbers(
        changes.expunged.iter().map(|u| u.get()).filter(|u| known.as_ref().is_none_or(|k| k.contains(*u))),
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
        let (mut flags, mut modseq) = (flags.clone(), *modseq);
        sel.view(*uid, &mut flags, &mut modseq);
        let attrs = vec![
            FetchValue::Uid(uid.get()),
            FetchValue::Flags(convert::flags(&flags, recent)),
            FetchValue::ModSeq(modseq.0),
        ];
        out.data(&Data::Fetch { seq, attrs });
        out.flush_if_large().await;
    }
}
