//! NOTIFY (RFC 5465): what one session asked to hear about, and turning the store's signals
//! into untagged responses.
//!
//! `NOTIFY SET` is checked against §3.1, §5 and §6.1 (BAD for a broken rule, NO [BADEVENT] for
//! an event not supported), then resolved: the mailboxes the user can see (`l`, RFC 4314;
//! message events also need `r`, §5) are read once into a [`Snapshot`], each is matched against
//! the event groups, and the session's [`Listener`] is registered with the store's notifier for
//! exactly the watched mailboxes and the accounts owning them. Nothing is polled: a change marks
//! its mailbox in the listener, and only those mailboxes' STATUS is read and compared with what
//! was last reported (§5.1–§5.3). Mailbox-list events only say that a list moved: the snapshot
//! is read again and compared, which gives created, deleted and renamed mailboxes (by id, so a
//! rename carries OLDNAME, §5.4) and subscription changes (§5.5); ACL changes come the same way
//! (§5.9: a mailbox that became visible or invisible). METADATA changes carry the entry names
//! (§5.6, §5.7).
//!
//! The selected mailbox is the session's own business ([`crate::selected`]): SELECTED sends its
//! updates as they happen, SELECTED-DELAYED holds expunges back until a command may carry them
//! (§6.1.2); MessageNew with fetch attributes adds a FETCH after EXISTS (§5.2).
//!
//! Limits: at most [`MAX_WATCHED`] watched mailboxes (else NO [NOTIFICATIONOVERFLOW], §3.1);
//! the listener keeps at most the configured number of pending mailboxes and METADATA changes,
//! past which the session sends `* OK [NOTIFICATIONOVERFLOW]` and behaves as after NOTIFY NONE
//! (§5.8). Changes this session makes to its own mailbox list are not reported back to it (§5).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use postfach_proto::response::{Code, Data, ListExtended, MailboxAttr, Status};
use postfach_proto::seqset::SequenceSet;
use postfach_proto::types::{
    FetchAttribute, FetchItems, FetchModifiers, Notify, NotifyEvent, NotifyFilter, NotifyGroup, StatusItem,
};
use postfach_store::{
    AccountId, Listener, MailboxId, MailboxStatus, Right, Rights, SeenMode, SpecialUse, Uid,
};

use crate::Out;
use crate::cmd::mailbox::{decode_name, special_attr, status_value};
use crate::context::Cx;
use crate::respond::{Done, Reply};
use crate::selected::{Expunges, Selected};

/// Mailboxes one NOTIFY may watch (RFC 5465 §3.1: a server may refuse what is too expensive).
pub(crate) const MAX_WATCHED: usize = 5000;

/// The events of RFC 5465 this server reports, as BADEVENT lists them (§3.1). AnnotationChange
/// is accepted: message annotations (RFC 5257) do not exist here, so it never fires.
const SUPPORTED: [&str; 8] = [
    "MessageNew",
    "MessageExpunge",
    "FlagChange",
    "AnnotationChange",
    "MailboxName",
    "SubscriptionChange",
    "MailboxMetadataChange",
    "ServerMetadataChange",
];

/// A set of events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Events {
    new: bool,
    expunge: bool,
    flags: bool,
    name: bool,
    subscription: bool,
    mailbox_metadata: bool,
    server_metadata: bool,
}

impl Events {
    fn union(self, o: Events) -> Events {
        Events {
            new: self.new || o.new,
            expunge: self.expunge || o.expunge,
            flags: self.flags || o.flags,
            name: self.name || o.name,
            subscription: self.subscription || o.subscription,
            mailbox_metadata: self.mailbox_metadata || o.mailbox_metadata,
            server_metadata: self.server_metadata || o.server_metadata,
        }
    }

    /// MessageNew, MessageExpunge or FlagChange: reported as STATUS outside the selected mailbox.
    fn has_message_events(self) -> bool {
        self.new || self.expunge || self.flags
    }
}

/// What the client asked for the selected mailbox (§6.1).
#[derive(Debug, Clone)]
pub(crate) struct SelectedSpec {
    /// SELECTED: expunges at once; SELECTED-DELAYED: when a command allows them (§6.1.2).
    pub(crate) expunges: Expunges,
    /// The fetch attributes of MessageNew, if any (§5.2).
    pub(crate) fetch: Option<Vec<FetchAttribute>>,
}

/// Which mailboxes a group names.
#[derive(Debug, Clone)]
enum Filter {
    /// `personal` and `inboxes` (mail can be filed into any personal mailbox, so §6.3's
    /// fallback applies).
    Personal,
    Subscribed,
    /// Names as the client sees them.
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

#[derive(Debug, Clone)]
struct Group {
    filter: Filter,
    events: Events,
}

/// One visible mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// The name the client sees.
    name: String,
    owner: AccountId,
    personal: bool,
    rights: Rights,
    special_use: Option<SpecialUse>,
}

/// The mailboxes the user can see and the names they subscribed.
#[derive(Debug, Default)]
struct Snapshot {
    mailboxes: BTreeMap<MailboxId, Entry>,
    subscriptions: BTreeSet<String>,
}

/// One session's NOTIFY registration.
pub(crate) struct NotifyState {
    listener: Listener,
    /// The NOTIFY command's tag: what the notifications' own work (a MessageNew FETCH) names
    /// if it reports progress (RFC 9585).
    tag: postfach_proto::types::Tag,
    selected: Option<SelectedSpec>,
    groups: Vec<Group>,
    snapshot: Snapshot,
    /// The STATUS items and values last reported per watched mailbox.
    reported: HashMap<MailboxId, Vec<(StatusItem, u64)>>,
}

impl NotifyState {
    /// The listener the driver waits on.
    pub(crate) fn listener(&self) -> &Listener {
        &self.listener
    }

    /// The tag of the NOTIFY command that set this up.
    pub(crate) fn tag(&self) -> &postfach_proto::types::Tag {
        &self.tag
    }

    /// What was asked for the selected mailbox.
    pub(crate) fn selected(&self) -> Option<&SelectedSpec> {
        self.selected.as_ref()
    }

    /// The events the groups ask for on the mailbox named `name`.
    fn events_for(&self, name: &str, personal: bool) -> Events {
        events_for(&self.groups, &self.snapshot.subscriptions, name, personal)
    }
}

fn events_for(groups: &[Group], subscriptions: &BTreeSet<String>, name: &str, personal: bool) -> Events {
    groups
        .iter()
        .filter(|g| matches(&g.filter, subscriptions, name, personal))
        .fold(Events::default(), |a, g| a.union(g.events))
}

fn matches(filter: &Filter, subscriptions: &BTreeSet<String>, name: &str, personal: bool) -> bool {
    match filter {
        Filter::Personal => personal,
        Filter::Subscribed => subscriptions.contains(name),
        Filter::Subtree(roots) => roots.iter().any(|root| {
            name == root || name.strip_prefix(root.as_str()).is_some_and(|rest| rest.starts_with('/'))
        }),
        Filter::Mailboxes(names) => names.iter().any(|n| n == name),
    }
}

/// `NOTIFY SET ...` or `NOTIFY NONE` (RFC 5465 §3.1). `limit` bounds the listener's pending
/// work (§5.8).
pub(crate) async fn command(
    cx: &Cx<'_>,
    sel: Option<&Selected>,
    state: &mut Option<Box<NotifyState>>,
    arg: Notify,
    limit: usize,
    out: &mut Out,
) -> Result<Done, Reply> {
    let (status, groups) = match arg {
        Notify::None => {
            stop(cx, state);
            return Ok(Done::new());
        }
        Notify::Set { status, groups } => (status, groups),
    };
    let (selected, groups) = check(cx, &groups)?;
    let listener = Listener::new(limit);
    let mut next = NotifyState {
        listener,
        tag: cx.tag.clone(),
        selected,
        groups,
        snapshot: Snapshot::default(),
        reported: HashMap::new(),
    };
    next.snapshot = snapshot(cx).await?;
    let watched = register(cx, &next)?;
    // §3.1: a named mailbox the user can list but not read is answered \NoAccess.
    for group in &next.groups {
        let Filter::Mailboxes(names) = &group.filter else { continue };
        for entry in next.snapshot.mailboxes.values() {
            if names.contains(&entry.name) && !entry.rights.contains(Right::Read) {
                let attributes = vec![MailboxAttr::Other("NoAccess".into())];
                out.data(&Data::List {
                    attributes,
                    delimiter: Some('/'),
                    name: entry.name.clone(),
                    extended: Vec::new(),
                });
            }
        }
    }
    // §3.1: with STATUS, one STATUS per watched mailbox but the selected one, before the OK.
    let selected_id = sel.map(|s| s.id);
    for id in watched {
        if Some(id) == selected_id {
            continue;
        }
        let Some(entry) = next.snapshot.mailboxes.get(&id) else { continue };
        let events = next.events_for(&entry.name, entry.personal);
        let values = match status_values(cx, id, entry, events, Moment::Set).await {
            Ok(values) => values,
            Err(e) => {
                tracing::warn!(error = ?e, mailbox = %entry.name, "NOTIFY status failed");
                continue;
            }
        };
        if status {
            out.data(&Data::Status { mailbox: entry.name.clone(), items: values.clone(), mailbox_id: None });
            out.flush_if_large().await;
        }
        next.reported.insert(id, values);
    }
    if let Some(old) = state.take() {
        cx.ctx.store.notifier().unregister(&old.listener);
    }
    *state = Some(Box::new(next));
    Ok(Done::new())
}

/// NOTIFY NONE, or the end of notifications after an overflow.
pub(crate) fn stop(cx: &Cx<'_>, state: &mut Option<Box<NotifyState>>) {
    if let Some(old) = state.take() {
        cx.ctx.store.notifier().unregister(&old.listener);
    }
}

/// Checks the event groups against RFC 5465 §3.1, §5 and §6.1.
fn check(cx: &Cx<'_>, groups: &[NotifyGroup]) -> Result<(Option<SelectedSpec>, Vec<Group>), Reply> {
    let mut selected = None;
    let mut seen_selected = false;
    let mut out = Vec::new();
    let mut unsupported = false;
    for group in groups {
        let is_selected = matches!(group.filter, NotifyFilter::Selected | NotifyFilter::SelectedDelayed);
        let mut events = Events::default();
        let mut fetch = None;
        let mut annotation = false;
        for event in &group.events {
            match event {
                NotifyEvent::MessageNew(atts) => {
                    events.new = true;
                    if let Some(atts) = atts {
                        // §8: the fetch-att list only with SELECTED/SELECTED-DELAYED.
                        if !is_selected {
                            return Err(Reply::bad(
                                None,
                                "MessageNew fetch attributes need SELECTED or SELECTED-DELAYED",
                            ));
                        }
                        fetch = Some(atts.clone());
                    }
                }
                NotifyEvent::MessageExpunge => events.expunge = true,
                NotifyEvent::FlagChange => events.flags = true,
                NotifyEvent::AnnotationChange => annotation = true,
                NotifyEvent::MailboxName => events.name = true,
                NotifyEvent::SubscriptionChange => events.subscription = true,
                NotifyEvent::MailboxMetadataChange => events.mailbox_metadata = true,
                NotifyEvent::ServerMetadataChange => events.server_metadata = true,
                NotifyEvent::Other(_) => unsupported = true,
            }
            // §6.1: only message events with SELECTED and SELECTED-DELAYED.
            if is_selected && !event.is_message_event() && !matches!(event, NotifyEvent::Other(_)) {
                return Err(Reply::bad(
                    None,
                    format!("{} is not a message event; SELECTED takes only those", event.name()),
                ));
            }
        }
        // §5: MessageNew and MessageExpunge together; FlagChange and AnnotationChange need both.
        if events.new != events.expunge {
            return Err(Reply::bad(None, "MessageNew and MessageExpunge must be given together"));
        }
        if (events.flags || annotation) && !events.new {
            return Err(Reply::bad(
                None,
                "FlagChange and AnnotationChange need MessageNew and MessageExpunge",
            ));
        }
        let filter = match &group.filter {
            NotifyFilter::Selected | NotifyFilter::SelectedDelayed => {
                // §6.1: only one of them in a command.
                if seen_selected {
                    return Err(Reply::bad(None, "Only one SELECTED or SELECTED-DELAYED group is allowed"));
                }
                seen_selected = true;
                if events.has_message_events() {
                    let expunges = match group.filter {
                        NotifyFilter::Selected => Expunges::Allowed,
                        _ => Expunges::Deferred,
                    };
                    selected = Some(SelectedSpec { expunges, fetch });
                }
                continue;
            }
            NotifyFilter::Inboxes | NotifyFilter::Personal => Filter::Personal,
            NotifyFilter::Subscribed => Filter::Subscribed,
            NotifyFilter::Subtree(names) => Filter::Subtree(names_of(cx, names)),
            NotifyFilter::Mailboxes(names) => Filter::Mailboxes(names_of(cx, names)),
        };
        out.push(Group { filter, events });
    }
    // §3.1: an unsupported event is NO (not BAD), naming every supported one.
    if unsupported {
        return Err(Reply::no(
            Some(Code::BadEvent(SUPPORTED.iter().map(|s| (*s).to_owned()).collect())),
            "Unsupported NOTIFY event",
        ));
    }
    Ok((selected, out))
}

/// The names as the client sees them; ones that cannot name a mailbox are left out (§3.1:
/// a name that names no mailbox is ignored).
fn names_of(cx: &Cx<'_>, names: &[postfach_proto::types::WireMailboxName]) -> Vec<String> {
    names.iter().filter_map(|n| decode_name(cx.enabled, n).ok()).map(|n| n.as_str().to_owned()).collect()
}

/// Reads what the user can see: their own mailboxes and those shared with them with `l`.
async fn snapshot(cx: &Cx<'_>) -> Result<Snapshot, Reply> {
    let account = cx.user.account;
    let mut mailboxes = BTreeMap::new();
    for info in cx.ctx.store.list_mailboxes(account).await? {
        let entry = Entry {
            name: info.name,
            owner: account,
            personal: true,
            rights: Rights::ALL,
            special_use: info.special_use,
        };
        mailboxes.insert(info.id, entry);
    }
    for shared in cx.ctx.share.shared_with(account).await? {
        if !shared.rights.contains(Right::Lookup) {
            continue;
        }
        let name = postfach_store::acl::namespace::shown_name(
            shared.owner_kind,
            &shared.owner_name,
            &shared.mailbox.name,
        );
        let entry = Entry {
            name,
            owner: shared.owner,
            personal: false,
            rights: shared.rights,
            special_use: shared.mailbox.special_use,
        };
        mailboxes.insert(shared.mailbox.id, entry);
    }
    let subscriptions = cx.ctx.store.subscriptions(account).await?.into_iter().collect();
    Ok(Snapshot { mailboxes, subscriptions })
}

/// Registers the listener for the mailboxes the groups watch; returns those with message
/// events the user may read (§5: `l` and `r`).
fn register(cx: &Cx<'_>, state: &NotifyState) -> Result<Vec<MailboxId>, Reply> {
    let mut ids = Vec::new();
    let mut readable = Vec::new();
    let mut accounts: BTreeSet<AccountId> = BTreeSet::from([cx.user.account]);
    for (id, entry) in &state.snapshot.mailboxes {
        let events = state.events_for(&entry.name, entry.personal);
        let watched = events.has_message_events() || events.mailbox_metadata;
        if !watched || !entry.rights.contains(Right::Read) {
            if events.name && !entry.personal {
                accounts.insert(entry.owner);
            }
            continue;
        }
        ids.push(*id);
        accounts.insert(entry.owner);
        if events.has_message_events() {
            readable.push(*id);
        }
    }
    // The selected mailbox too: its metadata may be watched through a group.
    if ids.len() > MAX_WATCHED {
        return Err(Reply::no(
            Some(Code::NotificationOverflow),
            format!("NOTIFY watches at most {MAX_WATCHED} mailboxes"),
        ));
    }
    let accounts: Vec<AccountId> = accounts.into_iter().collect();
    cx.ctx.store.notifier().register(&state.listener, &ids, &accounts);
    Ok(readable)
}

/// When a STATUS goes out: the STATUS option of NOTIFY SET, or a change later.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Moment {
    Set,
    Change,
}

/// The STATUS items a mailbox's events call for (§3.1, §5.1–§5.3), with their values.
async fn status_values(
    cx: &Cx<'_>,
    id: MailboxId,
    entry: &Entry,
    events: Events,
    moment: Moment,
) -> Result<Vec<(StatusItem, u64)>, Reply> {
    let mut st: MailboxStatus = cx.ctx.store.status(id).await?;
    if !entry.personal && events.flags && cx.ctx.share.seen_mode(id).await? == SeenMode::Private {
        let seen = cx.ctx.share.private_seen(id, cx.user.account).await?;
        st.unseen = st.messages.saturating_sub(u32::try_from(seen.len()).unwrap_or(u32::MAX));
    }
    // §3.1: the STATUS option's answer for FlagChange/AnnotationChange MUST carry
    // HIGHESTMODSEQ when the server supports CONDSTORE (this one does); §5.1–§5.3: a later
    // change's STATUS carries it when the client enabled CONDSTORE or QRESYNC.
    let condstore = cx.enabled.condstore || cx.enabled.qresync || (moment == Moment::Set && events.flags);
    let mut items = Vec::new();
    if events.new || events.expunge {
        items.push(StatusItem::Messages);
    }
    if events.new {
        items.push(StatusItem::UidNext);
    }
    // §5.1: FlagChange reports UIDVALIDITY changes too.
    if events.new || events.flags {
        items.push(StatusItem::UidValidity);
    }
    // §5.1: without CONDSTORE a flag change shows as UNSEEN (or not at all).
    if events.flags && !condstore {
        items.push(StatusItem::Unseen);
    }
    if condstore {
        items.push(StatusItem::HighestModSeq);
    }
    Ok(items.into_iter().filter_map(|i| status_value(cx, &st, i).map(|v| (i, v))).collect())
}

/// Reports what the listener collected: mailbox-list changes, STATUS of changed mailboxes
/// (not the selected one: that is [`crate::selected`]'s), METADATA changes; or, after an
/// overflow, `* OK [NOTIFICATIONOVERFLOW]` and no more notifications (§5.8).
pub(crate) async fn report(
    cx: &Cx<'_>,
    sel: Option<&Selected>,
    state: &mut Option<Box<NotifyState>>,
    out: &mut Out,
) {
    let Some(st) = state.as_deref_mut() else { return };
    let pending = st.listener.take();
    if pending.overflow {
        stop(cx, state);
        out.status(Status::Ok, Some(Code::NotificationOverflow), "Too many notifications; NOTIFY is off now");
        return;
    }
    if pending.lists
        && let Err(e) = lists_changed(cx, st, out, Reported::Yes).await
    {
        // Past MAX_WATCHED mailboxes: too expensive to go on (§5.8), as at NOTIFY SET (§3.1).
        if e.code == Some(Code::NotificationOverflow) {
            stop(cx, state);
            out.status(
                Status::Ok,
                Some(Code::NotificationOverflow),
                "Too many mailboxes to watch; NOTIFY is off now",
            );
            return;
        }
        tracing::warn!(error = ?e, "NOTIFY list update failed");
    }
    let selected_id = sel.map(|s| s.id);
    for id in pending.mailboxes {
        if Some(id) == selected_id {
            continue;
        }
        let Some(entry) = st.snapshot.mailboxes.get(&id) else { continue };
        let events = st.events_for(&entry.name, entry.personal);
        if !events.has_message_events() || !entry.rights.contains(Right::Read) {
            continue;
        }
        let values = match status_values(cx, id, entry, events, Moment::Change).await {
            Ok(values) => values,
            // Deleted meanwhile: the list change says so.
            Err(_) => continue,
        };
        if st.reported.get(&id) == Some(&values) {
            continue;
        }
        out.data(&Data::Status { mailbox: entry.name.clone(), items: values.clone(), mailbox_id: None });
        st.reported.insert(id, values);
        out.flush_if_large().await;
    }
    for change in pending.metadata {
        if change.private_to.is_some_and(|a| a != cx.user.account) {
            continue;
        }
        let mailbox = match change.mailbox {
            None => {
                if !st.groups.iter().any(|g| g.events.server_metadata) {
                    continue;
                }
                String::new()
            }
            Some(id) => {
                let Some(entry) = st.snapshot.mailboxes.get(&id) else { continue };
                // RFC 5464 §3.3: reading a mailbox's entries needs `l` and `r` here too (§5).
                if !st.events_for(&entry.name, entry.personal).mailbox_metadata
                    || !entry.rights.contains(Right::Read)
                {
                    continue;
                }
                entry.name.clone()
            }
        };
        out.data(&Data::MetadataChanged { mailbox, entries: change.entries });
    }
}

/// Whether list changes found are sent or only taken in (the session's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reported {
    /// Send LIST responses.
    Yes,
    /// Take them in silently (the session made them, §5).
    Silently,
}

/// After the session's own CREATE, DELETE, RENAME, (UN)SUBSCRIBE: take the new list in
/// without telling the client (RFC 5465 §5: the server SHOULD NOT notify a client of its own
/// changes).
pub(crate) async fn own_list_change(cx: &Cx<'_>, state: &mut Option<Box<NotifyState>>) {
    let Some(st) = state.as_deref_mut() else { return };
    if let Err(e) = lists_changed(cx, st, &mut Out::new(), Reported::Silently).await {
        tracing::warn!(error = ?e, "NOTIFY list update failed");
    }
}

/// After the session's own SETMETADATA: its changes are not reported back (§5).
pub(crate) fn own_metadata_change(
    cx: &Cx<'_>,
    state: &Option<Box<NotifyState>>,
    mailbox: &postfach_proto::types::WireMailboxName,
    entries: &[String],
) {
    let Some(st) = state.as_deref() else { return };
    let place = if mailbox.as_bytes().is_empty() {
        None
    } else {
        let Ok(name) = decode_name(cx.enabled, mailbox) else { return };
        match st.snapshot.mailboxes.iter().find(|(_, e)| e.name == name.as_str()) {
            Some((id, _)) => Some(*id),
            None => return,
        }
    };
    st.listener.discard_metadata(|c| {
        c.mailbox == place
            && c.private_to.is_none_or(|a| a == cx.user.account)
            && c.entries.iter().all(|e| entries.contains(e))
    });
}

/// Reads the list again, reports MailboxName and SubscriptionChange events (§5.4, §5.5) and
/// registers the listener for the new watched set.
async fn lists_changed(
    cx: &Cx<'_>,
    st: &mut NotifyState,
    out: &mut Out,
    reported: Reported,
) -> Result<(), Reply> {
    let new = snapshot(cx).await?;
    let old = std::mem::replace(&mut st.snapshot, new);
    if reported == Reported::Yes {
        let new = &st.snapshot;
        let groups = &st.groups;
        let wants_name = |name: &str, personal: bool| {
            events_for(groups, &old.subscriptions, name, personal).name
                || events_for(groups, &new.subscriptions, name, personal).name
        };
        let mut affected_parents: BTreeSet<String> = BTreeSet::new();
        // Deleted (or no longer visible, §5.4: losing `l` counts as deletion).
        for (id, entry) in &old.mailboxes {
            if !new.mailboxes.contains_key(id) && wants_name(&entry.name, entry.personal) {
                let attributes = vec![MailboxAttr::NonExistent];
                out.data(&Data::List {
                    attributes,
                    delimiter: Some('/'),
                    name: entry.name.clone(),
                    extended: Vec::new(),
                });
                affected_parents.extend(parent(&entry.name));
            }
        }
        // Renamed: the children of a renamed mailbox are renamed with it and not reported.
        let renamed: Vec<(&str, &str)> = new
            .mailboxes
            .iter()
            .filter_map(|(id, e)| {
                old.mailboxes.get(id).filter(|o| o.name != e.name).map(|o| (o.name.as_str(), e.name.as_str()))
            })
            .collect();
        for (id, entry) in &new.mailboxes {
            let Some(before) = old.mailboxes.get(id) else {
                // Created (or newly visible). §5.4: the INBOX a RENAME INBOX leaves behind is
                // not reported.
                let inbox_renamed = entry.name == "INBOX" && renamed.iter().any(|(from, _)| *from == "INBOX");
                if !inbox_renamed && wants_name(&entry.name, entry.personal) {
                    out.data(&list_data(new, entry, Vec::new()));
                    affected_parents.extend(parent(&entry.name));
                }
                continue;
            };
            if before.name == entry.name {
                continue;
            }
            let implied = renamed.iter().any(|(from, to)| {
                before.name.strip_prefix(from).is_some_and(|rest| rest.starts_with('/'))
                    && entry.name.strip_prefix(to).is_some_and(|rest| rest.starts_with('/'))
            });
            if !implied
                && (wants_name(&entry.name, entry.personal) || wants_name(&before.name, before.personal))
            {
                out.data(&list_data(new, entry, vec![ListExtended::OldName(before.name.clone())]));
            }
        }
        // §5.4: the direct parent of a created or deleted mailbox is affected too.
        for name in affected_parents {
            if let Some(entry) = new.mailboxes.values().find(|e| e.name == name)
                && wants_name(&entry.name, entry.personal)
            {
                out.data(&list_data(new, entry, Vec::new()));
            }
        }
        // §5.5: every name whose subscription changed, with \Subscribed if it now is.
        for name in old.subscriptions.symmetric_difference(&new.subscriptions) {
            let entry = new.mailboxes.values().find(|e| &e.name == name);
            let personal = entry.is_none_or(|e| e.personal);
            let wanted = events_for(groups, &old.subscriptions, name, personal).subscription
                || events_for(groups, &new.subscriptions, name, personal).subscription;
            if !wanted {
                continue;
            }
            let data = match entry {
                Some(entry) => list_data(new, entry, Vec::new()),
                None => {
                    let mut attributes = vec![MailboxAttr::NonExistent];
                    if new.subscriptions.contains(name) {
                        attributes.push(MailboxAttr::Subscribed);
                    }
                    Data::List { attributes, delimiter: Some('/'), name: name.clone(), extended: Vec::new() }
                }
            };
            out.data(&data);
        }
    }
    register(cx, st)?;
    // Mailboxes no longer watched are forgotten; new ones report from their first change.
    let snapshot = &st.snapshot;
    st.reported.retain(|id, _| snapshot.mailboxes.contains_key(id));
    Ok(())
}

/// The parent name of `name`, if it has one.
fn parent(name: &str) -> Option<String> {
    name.rfind('/').map(|i| name[..i].to_owned())
}

/// `* LIST (attributes) "/" name [extended]` for a mailbox that exists, its attributes
/// computed as LIST computes them (§5.4, §5.5).
fn list_data(snapshot: &Snapshot, entry: &Entry, extended: Vec<ListExtended>) -> Data {
    let prefix = format!("{}/", entry.name);
    let children = snapshot.mailboxes.values().any(|e| e.name.starts_with(&prefix));
    let mut attributes = vec![if children { MailboxAttr::HasChildren } else { MailboxAttr::HasNoChildren }];
    if let Some(u) = entry.special_use {
        attributes.push(special_attr(u));
    }
    if snapshot.subscriptions.contains(&entry.name) {
        attributes.push(MailboxAttr::Subscribed);
    }
    Data::List { attributes, delimiter: Some('/'), name: entry.name.clone(), extended }
}

/// MessageNew in the selected mailbox (§5.2): the FETCH the client asked for, for the messages
/// with sequence numbers `first..=last` that the session has just announced with EXISTS:
/// `all` for each of them (NOTIFY's MessageNew attributes), and for some the attributes an
/// updating SEARCH or SORT asked for (`some`, §7). §5.2: "These attributes SHOULD be combined
/// into a single FETCH response"; so one FETCH command runs per run of consecutive messages
/// that want the same attributes, each message answered once.
pub(crate) async fn new_messages(
    cx: &Cx<'_>,
    sel: &mut Selected,
    all: Option<&[FetchAttribute]>,
    some: &[(Uid, Vec<FetchAttribute>)],
    first: u32,
    last: u32,
    out: &mut Out,
) {
    let mut runs: Vec<(Vec<FetchAttribute>, u32, u32)> = Vec::new();
    for seq in first..=last {
        let mut atts = all.map(<[FetchAttribute]>::to_vec).unwrap_or_default();
        if let Some(uid) = sel.uids.uid_at(seq)
            && let Ok(i) = some.binary_search_by_key(&uid, |(u, _)| *u)
        {
            for a in &some[i].1 {
                if !atts.contains(a) {
                    atts.push(a.clone());
                }
            }
        }
        if atts.is_empty() {
            continue;
        }
        match runs.last_mut() {
            Some((same, _, end)) if *same == atts && *end + 1 == seq => *end = seq,
            _ => runs.push((atts, seq, seq)),
        }
    }
    for (atts, from, to) in runs {
        fetch_new(cx, sel, atts, from, to, out).await;
    }
}

/// FETCH `atts` of the messages `first..=last` (by UID under UIDONLY).
async fn fetch_new(
    cx: &Cx<'_>,
    sel: &mut Selected,
    atts: Vec<FetchAttribute>,
    first: u32,
    last: u32,
    out: &mut Out,
) {
    use postfach_proto::seqset::{SeqNum, SeqRange, SeqRanges};
    use postfach_proto::types::CommandKind;
    let items = FetchItems::Attributes(atts);
    // RFC 9586: a UIDONLY session gets UIDFETCH, which the FETCH by UID gives.
    let (kind, set) = if cx.enabled.uidonly {
        let ranges: Vec<SeqRange> = sel
            .uids
            .uid_ranges_of_seqs(first..=last)
            .into_iter()
            .filter_map(|r| {
                let (lo, hi) = (std::num::NonZeroU32::new(*r.start())?, std::num::NonZeroU32::new(*r.end())?);
                Some(SeqRange::Range(SeqNum::Value(lo), SeqNum::Value(hi)))
            })
            .collect();
        (CommandKind::Uid, SeqRanges::new(ranges).map(SequenceSet::Ranges))
    } else {
        (CommandKind::Seq, SequenceSet::range(first, last))
    };
    let Some(set) = set else { return };
    if let Err(reply) =
        crate::cmd::fetch::fetch(cx, sel, kind, &set, &items, &FetchModifiers::default(), out).await
    {
        tracing::debug!(text = %reply.text, "FETCH of new messages failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_names() {
        let subs = BTreeSet::from(["a/b".to_owned()]);
        assert!(matches(&Filter::Personal, &subs, "x", true));
        assert!(!matches(&Filter::Personal, &subs, "Other Users/bob/x", false));
        assert!(matches(&Filter::Subscribed, &subs, "a/b", true));
        assert!(!matches(&Filter::Subscribed, &subs, "a", true));
        let subtree = Filter::Subtree(vec!["Lists".into()]);
        assert!(matches(&subtree, &subs, "Lists", true));
        assert!(matches(&subtree, &subs, "Lists/x/y", true));
        assert!(!matches(&subtree, &subs, "Listserv", true));
        let named = Filter::Mailboxes(vec!["a*".into()]);
        assert!(matches(&named, &subs, "a*", true));
        assert!(!matches(&named, &subs, "ab", true));
    }

    #[test]
    fn events_of_several_groups_add_up() {
        let groups = vec![
            Group { filter: Filter::Personal, events: Events { name: true, ..Events::default() } },
            Group {
                filter: Filter::Mailboxes(vec!["INBOX".into()]),
                events: Events { new: true, expunge: true, ..Events::default() },
            },
        ];
        let subs = BTreeSet::new();
        let inbox = events_for(&groups, &subs, "INBOX", true);
        assert!(inbox.name && inbox.new && inbox.expunge && !inbox.flags);
        let other = events_for(&groups, &subs, "x", true);
        assert!(other.name && !other.has_message_events());
    }
}
