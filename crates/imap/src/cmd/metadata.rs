//! METADATA (RFC 5464): GETMETADATA and SETMETADATA, on the server (the empty mailbox name) and
//! on mailboxes.
//!
//! Who may do what (RFC 5464 §3.3 with RFC 4314): on a mailbox, reading and writing entries,
//! shared or private, needs `l` and any of `r`, `s`, `w`, `i`, `p`; without `l` the mailbox does
//! not exist for the user. Server entries can always be read; private ones are each user's to
//! write; shared ones only the accounts of `imap.admins` write, and `/shared/admin` nobody (it
//! is the configured contact, read-only by §3.2.1.1).
//!
//! Limits ([`crate::SessionConfig::metadata`]): a value above `max_value` octets is refused with
//! `[METADATA MAXSIZE n]` before the store is asked; the store refuses entries past its counts
//! with `[METADATA TOOMANY]`, writing nothing (§4.3: all or nothing). Entry names are checked by
//! the parser (`postfach_proto::metadata_entry`, at most `MAX_METADATA_ENTRY` octets, BAD
//! otherwise). A GETMETADATA answer holds at most the entries those limits allow. Private entries
//! are kept on every mailbox, so `[METADATA NOPRIVATE]` is never needed. No unsolicited METADATA
//! responses are sent (§4.4: optional), so `ENABLE METADATA` enables nothing.

use postfach_proto::response::{Code, Data, MetadataCode};
use postfach_proto::types::{EntryUse, MetadataDepth as WireDepth, WireMailboxName, metadata_entry};
use postfach_store::metadata::reaches;
use postfach_store::{MetadataDepth, MetadataPlace, MetadataWrite, Right, Rights};

use crate::Out;
use crate::access;
use crate::cmd::mailbox::decode_name;
use crate::context::Cx;
use crate::respond::{Done, Reply};

/// The server entry that names the administrator (RFC 5464 §3.2.1.1).
const ADMIN_ENTRY: &str = "/shared/admin";

/// Rights of which a user needs one (beside `l`) to read or write a mailbox's entries
/// (RFC 5464 §3.3).
const ANNOTATE_RIGHTS: [Right; 5] = [Right::Read, Right::Seen, Right::Write, Right::Insert, Right::Post];

/// Where a command's entries are, and the mailbox name to answer with.
async fn place(cx: &Cx<'_>, mailbox: &WireMailboxName) -> Result<(MetadataPlace, String), Reply> {
    if mailbox.as_bytes().is_empty() {
        return Ok((MetadataPlace::Server, String::new()));
    }
    let name = decode_name(cx.enabled, mailbox)?;
    let found = access::find(cx, &name, Rights::NONE).await?;
    // RFC 5464 §3.3: `l` (checked by `find`) and any one of `r`, `s`, `w`, `i`, `p`.
    if !ANNOTATE_RIGHTS.iter().any(|r| found.rights.contains(*r)) {
        return Err(Reply::no(Some(Code::NoPerm), "You need one of the rights \"rswip\" for its metadata"));
    }
    Ok((MetadataPlace::Mailbox(found.info.id), found.info.name))
}

fn depth(depth: WireDepth) -> MetadataDepth {
    match depth {
        WireDepth::Zero => MetadataDepth::Entry,
        WireDepth::One => MetadataDepth::Children,
        WireDepth::Infinity => MetadataDepth::All,
    }
}

/// GETMETADATA [(MAXSIZE n DEPTH d)] mailbox entries (RFC 5464 §4.2). Every entry asked for
/// by name is answered, `NIL` when it has no value; entries below it by DEPTH only when they
/// exist. Values above MAXSIZE are left out and the biggest is named by `[METADATA
/// LONGENTRIES n]` (§4.2.1).
pub(crate) async fn getmetadata(
    cx: &Cx<'_>,
    mailbox: &WireMailboxName,
    max_size: Option<u32>,
    wire_depth: WireDepth,
    entries: &[String],
    out: &mut Out,
) -> Result<Done, Reply> {
    let (place, shown) = place(cx, mailbox).await?;
    let depth = depth(wire_depth);
    let mut found = cx.ctx.store.metadata(place, cx.user.account, entries, depth).await?;
    if place == MetadataPlace::Server
        && let Some(contact) = &cx.ctx.config.metadata.admin_contact
        && entries.iter().any(|e| reaches(e, ADMIN_ENTRY, depth))
    {
        found.retain(|(name, _)| name != ADMIN_ENTRY);
        found.push((ADMIN_ENTRY.to_owned(), contact.as_bytes().to_vec()));
    }
    let mut answer: Vec<(String, Option<Vec<u8>>)> = Vec::with_capacity(found.len() + entries.len());
    let mut dropped: Vec<String> = Vec::new();
    let mut longest = None;
    for (name, value) in found {
        match max_size {
            Some(max) if value.len() > max as usize => {
                longest = longest.max(Some(value.len() as u64));
                dropped.push(name);
            }
            _ => answer.push((name, Some(value))),
        }
    }
    // An entry named but without a value is answered NIL (a name that can hold one: not the
    // `/shared` or `/private` roots); one left out for MAXSIZE is not.
    for entry in entries {
        let known = answer.iter().any(|(name, _)| name == entry) || dropped.contains(entry);
        if !known && metadata_entry(entry.as_bytes(), EntryUse::Set).is_ok() {
            answer.push((entry.clone(), None));
        }
    }
    answer.sort_by(|a, b| a.0.cmp(&b.0));
    answer.dedup_by(|a, b| a.0 == b.0);
    out.data(&Data::Metadata { mailbox: shown, entries: answer });
    Ok(match longest {
        Some(n) => Done::with(Code::Metadata(MetadataCode::LongEntries(n))),
        None => Done::new(),
    })
}

/// SETMETADATA mailbox (entry value ...) (RFC 5464 §4.3): all entries or none.
pub(crate) async fn setmetadata(
    cx: &Cx<'_>,
    mailbox: &WireMailboxName,
    entries: &[(String, Option<Vec<u8>>)],
) -> Result<Done, Reply> {
    let (place, _) = place(cx, mailbox).await?;
    if place == MetadataPlace::Server {
        if entries.iter().any(|(name, _)| name == ADMIN_ENTRY) {
            // RFC 5464 §3.2.1.1: "always read-only".
            return Err(Reply::no(Some(Code::NoPerm), "/shared/admin is read-only"));
        }
        let admin = cx.ctx.config.quota_admins.iter().any(|a| a.eq_ignore_ascii_case(&cx.user.name));
        if !admin && entries.iter().any(|(name, _)| !postfach_store::metadata::is_private(name)) {
            // RFC 5464 §3.3: servers may restrict creating server entries; NO when they do.
            return Err(Reply::no(Some(Code::NoPerm), "Only administrators set shared server entries"));
        }
    }
    let max = cx.ctx.config.metadata.max_value;
    if entries.iter().any(|(_, v)| v.as_ref().is_some_and(|v| v.len() > max as usize)) {
        return Err(Reply::no(
            Some(Code::Metadata(MetadataCode::MaxSize(u64::from(max)))),
            "Metadata value too large",
        ));
    }
    match cx.ctx.store.set_metadata(place, cx.user.account, entries, cx.ctx.config.metadata.limits).await? {
        MetadataWrite::Written => Ok(Done::new()),
        MetadataWrite::TooMany => {
            Err(Reply::no(Some(Code::Metadata(MetadataCode::TooMany)), "Too many metadata entries"))
        }
    }
}
