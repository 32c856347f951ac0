//! The selected mailbox as one session sees it: the sequence-number ↔ UID map and what the
//! client has been told so far.
//!
//! RFC 9051 §2.3.1.2: sequence numbers change only when the server says so (EXPUNGE/EXISTS). So
//! each session keeps its own view (`uids`), and [`Selected::sync`] brings it up to date from the
//! store's change log at the points where the RFC allows untagged updates. The cost of a sync is
//! the number of changes, not the size of the mailbox (except removing expunged UIDs from the
//! map, which costs its runs). Memory: the UID map ([`UidMap`]) holds one entry per run of
//! consecutive UIDs, nothing per message.

use postfach_proto::response::{Code, Data, FetchValue, PermanentFlag, Status};
use postfach_proto::types::{Flag, NumberSet};
use std::collections::BTreeMap;

use postfach_store::{
    AccountId, ClaimRecent, FetchWant, Flags, MailStore, MailboxId, ModSeq, Rights, ShareStore, Snapshot,
    StoreResult, SystemFlags, Uid, UidSet,
};
use tokio::sync::watch;

use crate::Out;
use crate::convert;
use crate::uidmap::UidMap;
use crate::updates::Contexts;

/// Whether untagged EXPUNGE may be sent now (RFC 9051 §7.5.1: not while answering FETCH, STORE or
/// SEARCH by sequence number, since the client could not tell which message a number meant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expunges {
    /// Send them.
    Allowed,
    /// Remember them for the next command that may send them.
    Deferred,
}

/// Whether to ask the store even when no change signal arrived (NOOP, CHECK, IDLE: changes made
/// by another process, such as the `deliver` command, signal nothing in this one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poll {
    /// Only when signalled.
    IfSignalled,
    /// Always.
    Always,
}

/// Read-write (SELECT) or read-only (EXAMINE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// SELECT.
    ReadWrite,
    /// EXAMINE.
    ReadOnly,
}

/// How the session talks: decides response shapes during a sync.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SyncStyle {
    /// IMAP4rev2 enabled: no RECENT responses.
    pub(crate) rev2: bool,
    /// CONDSTORE enabled: unsolicited FETCH carries MODSEQ (RFC 7162 §3.2).
    pub(crate) condstore: bool,
    /// QRESYNC enabled: VANISHED instead of EXPUNGE (RFC 7162 §3.2.10).
    pub(crate) qresync: bool,
    /// UIDONLY enabled: VANISHED instead of EXPUNGE too (RFC 9586 §3).
    pub(crate) uidonly: bool,
}

/// One user's own `\Seen` in a mailbox that keeps it per user: (seen, modseq of the last
/// change) by UID, for the messages whose state the user ever set. Memory: one entry per such
/// message (private mode is meant for mailboxes shared read-mostly, not for a million messages).
pub(crate) struct PrivateSeen {
    /// Whose.
    pub(crate) account: AccountId,
    state: BTreeMap<Uid, (bool, ModSeq)>,
}

impl PrivateSeen {
    /// The UIDs the user has seen.
    pub(crate) fn seen(&self) -> UidSet {
        UidSet::from_uids(self.state.iter().filter(|(_, (seen, _))| *seen).map(|(uid, _)| *uid))
    }

    /// Records changes the user made.
    pub(crate) fn record(&mut self, changed: &[(Uid, ModSeq)], seen: bool) {
        for (uid, modseq) in changed {
            self.state.insert(*uid, (seen, *modseq));
        }
    }
}

/// Whose mailbox it is and what the user may do in it, as read when it was selected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant {
    /// The owner.
    pub(crate) owner: AccountId,
    /// The user's rights.
    pub(crate) rights: Rights,
    /// The ACL generation read before the rights were (`Notifier::acl_generation`).
    pub(crate) generation: u64,
}

/// One session's view of its selected mailbox.
pub(crate) struct Selected {
    pub(crate) id: MailboxId,
    pub(crate) name: String,
    pub(crate) access: Access,
    /// The messages the client knows of: sequence number ↔ UID.
    pub(crate) uids: UidMap,
    /// Messages this session sees as `\Recent` (IMAP4rev1).
    pub(crate) recent: UidSet,
    /// Keywords announced in FLAGS.
    pub(crate) keywords: Vec<String>,
    /// The result saved by `SEARCH RETURN (SAVE)`, for `$` (RFC 5182); reset by SELECT.
    pub(crate) saved: UidSet,
    /// The owner of the mailbox (the user, another user, or a team).
    pub(crate) owner: AccountId,
    /// The user's rights on it (RFC 4314), as of [`Selected::acl_generation`].
    pub(crate) rights: Rights,
    /// The store's ACL generation when `rights` was read: the session reads the rights again
    /// when it moves (`Notifier::acl_generation`).
    pub(crate) acl_generation: u64,
    /// The user's own `\Seen` in a mailbox of another owner kept in [`SeenMode::Private`]
    /// (`None`: the message's flag is everybody's).
    pub(crate) private: Option<PrivateSeen>,
    known_modseq: ModSeq,
    known_uid_next: Uid,
    /// Searches that report their changes (RFC 5267 UPDATE); they end with the selection.
    pub(crate) contexts: Contexts,
    /// Changes are waiting that could not be sent yet (expunges during a sequence-number command).
    dirty: bool,
    watch: watch::Receiver<ModSeq>,
}

impl Selected {
    /// Opens the mailbox through the store.
    pub(crate) async fn open(
        store: &dyn MailStore,
        id: MailboxId,
        name: String,
        access: Access,
        grant: Grant,
    ) -> StoreResult<(Selected, Snapshot)> {
        // Subscribe before reading, so that a change between the two is not lost.
        let watch = store.notifier().watch(id);
        let Grant { owner, rights, generation: acl_generation } = grant;
        let claim = match access {
            Access::ReadWrite => ClaimRecent::Claim,
            Access::ReadOnly => ClaimRecent::Peek,
        };
        let mut snap = store.select(id, claim).await?;
        let selected = Selected {
            id,
            name,
            access,
            uids: UidMap::from_set(&std::mem::take(&mut snap.uids)),
            recent: snap.recent.clone(),
            keywords: snap.keywords.clone(),
            saved: UidSet::new(),
            owner,
            rights,
            acl_generation,
            private: None,
            known_modseq: snap.status.highest_modseq,
            known_uid_next: snap.status.uid_next,
            contexts: Contexts::default(),
            dirty: false,
            watch,
        };
        Ok((selected, snap))
    }

    /// Keeps the user's `\Seen` apart from the message's flag (a [`SeenMode::Private`]
    /// mailbox of another owner): reads the user's state once; syncs keep it current.
    pub(crate) async fn keep_private_seen(
        &mut self,
        share: &dyn ShareStore,
        account: AccountId,
    ) -> StoreResult<()> {
        let rows = share.private_seen_since(self.id, account, ModSeq(0)).await?;
        let mut private = PrivateSeen { account, state: BTreeMap::new() };
        for (uid, seen, modseq) in rows {
            private.state.insert(uid, (seen, modseq));
        }
        self.private = Some(private);
        Ok(())
    }

    /// The flags and modseq this user sees for a message: its own, with `\Seen` (and the
    /// modseq, when later) from the user's private state in a private-`\Seen` mailbox.
    pub(crate) fn view(&self, uid: Uid, flags: &mut Flags, modseq: &mut ModSeq) {
        let Some(private) = &self.private else { return };
        let (seen, at) = private.state.get(&uid).copied().unwrap_or((false, ModSeq(0)));
        flags.system = if seen {
            flags.system.union(SystemFlags::SEEN)
        } else {
            flags.system.without(SystemFlags::SEEN)
        };
        *modseq = (*modseq).max(at);
    }

    /// Number of messages the client knows of.
    pub(crate) fn exists(&self) -> u32 {
        self.uids.len()
    }

    /// Sequence number of a UID the client knows of.
    pub(crate) fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.uids.seq_of(uid)
    }

    /// The change signal, for IDLE.
    pub(crate) fn watch(&self) -> watch::Receiver<ModSeq> {
        self.watch.clone()
    }

    /// After a change made by this session: if nobody else changed the mailbox in between
    /// (`before` is what we knew), we already told the client everything, so skip it later.
    /// The `changed` messages are still matched against the updating searches at the next sync.
    pub(crate) fn own_change(
        &mut self,
        before: ModSeq,
        after: ModSeq,
        changed: impl IntoIterator<Item = Uid>,
    ) {
        self.contexts.touch(changed);
        if before == self.known_modseq && after > self.known_modseq {
            self.known_modseq = after;
        }
    }

    /// Removes UIDs this session expunged itself and has already announced.
    pub(crate) fn forget(&mut self, expunged: &[Uid]) {
        if expunged.is_empty() {
            return;
        }
        let gone = UidSet::from_uids(expunged.iter().copied());
        self.uids.remove(&gone);
        self.recent = UidSet::from_uids(self.recent.iter().filter(|u| !gone.contains(*u)));
    }

    /// Brings the client's view up to date with untagged EXPUNGE (or VANISHED), EXISTS and FETCH
    /// responses.
    ///
    /// When expunges may not be sent now, nothing of this round is sent and the view stays where
    /// it was (marked dirty), so the next sync that may send them redoes the round from the same
    /// point: no response ever carries a MODSEQ above an expunge the client has not been told of
    /// (RFC 7162 §3.2), and sequence numbers never go wrong.
    pub(crate) async fn sync(
        &mut self,
        store: &dyn MailStore,
        share: &dyn ShareStore,
        out: &mut Out,
        expunges: Expunges,
        poll: Poll,
        style: SyncStyle,
    ) -> StoreResult<()> {
        let signalled = self.dirty || self.contexts.has_touched() || self.watch.has_changed().unwrap_or(true);
        if !signalled && poll == Poll::IfSignalled {
            return Ok(());
        }
        self.watch.borrow_and_update();
        let changes = store.changes_since(self.id, self.known_modseq, self.known_uid_next).await?;

        // Expunges of messages the client knows of.
        let gone: Vec<Uid> =
            changes.expunged.iter().copied().filter(|u| self.uids.seq_of(*u).is_some()).collect();
        if !gone.is_empty() && expunges == Expunges::Deferred {
            self.dirty = true;
            if style.condstore {
                // RFC 7162 §6: tell the client how far it is safe to trust its MODSEQs.
                out.status(Status::Ok, Some(Code::HighestModSeq(self.known_modseq.0)), "Expunges pending");
            }
            return Ok(());
        }
        self.dirty = false;
        self.announce_expunges(&gone, style, out);
        // Keywords first: no FETCH may carry a keyword the client has not seen in FLAGS.
        self.learn_keywords(&changes.keywords, out);

        // Flag changes of messages the client knows of (RFC 9051 §7.5.2 unsolicited FETCH).
        let mut flag_changes = changes.flags;
        if let Some(private) = &self.private {
            // The user's private \Seen changes: reported like flag changes, with the message's
            // other flags.
            let mine = share.private_seen_since(self.id, private.account, self.known_modseq).await?;
            if !mine.is_empty() {
                let private = self.private.as_mut().expect("checked above");
                for (uid, seen, modseq) in &mine {
                    private.state.insert(*uid, (*seen, *modseq));
                }
                let listed: UidSet = UidSet::from_uids(flag_changes.iter().map(|(u, _, _)| *u));
                let extra =
                    UidSet::from_uids(mine.iter().map(|(u, _, _)| *u).filter(|u| !listed.contains(*u)));
                if !extra.is_empty() {
                    for meta in store.fetch(self.id, &extra, FetchWant::default()).await? {
                        flag_changes.push((meta.uid, meta.flags, meta.modseq));
                    }
                }
            }
        }
        for (uid, flags, modseq) in &flag_changes {
            let Some(seq) = self.seq_of(*uid) else { continue };
            let (mut flags, mut modseq) = (flags.clone(), *modseq);
            self.view(*uid, &mut flags, &mut modseq);
            let mut attrs = vec![
                FetchValue::Flags(convert::flags(&flags, self.recent.contains(*uid) && !style.rev2)),
                FetchValue::Uid(uid.get()),
            ];
            if style.condstore {
                attrs.push(FetchValue::ModSeq(modseq.0));
            }
            out.data(&Data::Fetch { seq, attrs });
        }

        // New messages (never ones that were expunged again before we noticed).
        let before = self.uids.len();
        let last = self.uids.last();
        let mut new = Vec::new();
        for uid in changes.added {
            if last.is_none_or(|last| uid > last) && changes.expunged.binary_search(&uid).is_err() {
                self.uids.push(uid);
                new.push(uid);
            }
        }
        if self.uids.len() != before {
            out.data(&Data::Exists(self.exists()));
            if !style.rev2 {
                // RFC 3501 §7.3.2: RECENT comes with a change of the mailbox's size. A session
                // with the mailbox selected read-write takes the new messages as its recent
                // ones, unless another session did first (RFC 3501 §2.3.2); a read-only one sees
                // them as recent without taking them.
                let claim = match self.access {
                    Access::ReadWrite => ClaimRecent::Claim,
                    Access::ReadOnly => ClaimRecent::Peek,
                };
                let claimed = store.claim_recent(self.id, changes.uid_next, claim).await?;
                if !claimed.is_empty() {
                    self.recent = UidSet::from_uids(self.recent.iter().chain(claimed.iter()));
                }
                let recent = u32::try_from(self.recent.len()).unwrap_or(u32::MAX);
                out.data(&Data::Recent(recent));
            }
        }
        // RFC 5267 §4.3: the updating searches follow, after the FETCH and EXISTS they stem from.
        let changed: Vec<Uid> = flag_changes.iter().map(|(uid, ..)| *uid).collect();
        self.contexts.changed(store, self.id, &changed, &new, &self.uids, out).await?;
        self.known_modseq = self.known_modseq.max(changes.highest_modseq);
        self.known_uid_next = self.known_uid_next.max(changes.uid_next);
        Ok(())
    }

    /// Announces expunged messages the client knows of, as EXPUNGE (highest sequence number first,
    /// so every number is valid when it is read) or, once QRESYNC or UIDONLY is on, as one
    /// VANISHED (RFC 7162 §3.2.10, RFC 9586 §3); then drops them from the view.
    pub(crate) fn announce_expunges(&mut self, gone: &[Uid], style: SyncStyle, out: &mut Out) {
        if gone.is_empty() {
            return;
        }
        // RFC 5267 §4.3.4: REMOVEFROM while the numbers are still valid, before the EXPUNGE.
        self.contexts.expunging(gone, &self.uids, out);
        if style.qresync || style.uidonly {
            let uids =
                NumberSet::from_numbers(gone.iter().filter(|u| self.seq_of(**u).is_some()).map(|u| u.get()));
            if !uids.is_empty() {
                out.data(&Data::Vanished { earlier: false, uids });
            }
        } else {
            let mut seqs: Vec<u32> = gone.iter().filter_map(|u| self.seq_of(*u)).collect();
            seqs.sort_unstable_by(|a, b| b.cmp(a));
            for seq in seqs {
                out.data(&Data::Expunge(seq));
            }
        }
        self.forget(gone);
    }

    /// Announces keywords the client has not seen yet: FLAGS and, since keywords may be
    /// created, OK [PERMANENTFLAGS] (RFC 9051 §7.3.5, RFC 3501 §7.2.6), before any FETCH that
    /// carries one of them.
    pub(crate) fn learn_keywords(&mut self, keywords: &[String], out: &mut Out) {
        let mut grew = false;
        for k in keywords {
            if !self.keywords.iter().any(|have| have.eq_ignore_ascii_case(k)) {
                self.keywords.push(k.clone());
                grew = true;
            }
        }
        if !grew {
            return;
        }
        let mut list = vec![Flag::Answered, Flag::Flagged, Flag::Deleted, Flag::Seen, Flag::Draft];
        list.extend(self.keywords.iter().map(|k| Flag::Keyword(k.clone())));
        out.data(&Data::Flags(list.clone()));
        let permanent = permanent_flags(list, self.access, self.rights);
        out.status(Status::Ok, Some(Code::PermanentFlags(permanent)), "Flags permitted");
    }

    /// The highest modseq the client has been told of.
    pub(crate) fn known_modseq(&self) -> ModSeq {
        self.known_modseq
    }
}

/// PERMANENTFLAGS (RFC 9051 §7.1): the flags of `list` the user may change for good: none when
/// read-only; else `\Seen` with `s`, `\Deleted` with `t`, the others and new keywords (`\*`)
/// with `w` (RFC 4314 §4).
pub(crate) fn permanent_flags(list: Vec<Flag>, access: Access, rights: Rights) -> Vec<PermanentFlag> {
    use postfach_store::Right;
    if access == Access::ReadOnly {
        return Vec::new();
    }
    let allowed = |f: &Flag| match f {
        Flag::Seen => rights.contains(Right::Seen),
        Flag::Deleted => rights.contains(Right::DeleteMessages),
        _ => rights.contains(Right::Write),
    };
    let mut out: Vec<PermanentFlag> = list.into_iter().filter(allowed).map(PermanentFlag::Flag).collect();
    if rights.contains(Right::Write) {
        out.push(PermanentFlag::Wildcard);
    }
    out
}
