//! Conversions between store/message values and IMAP wire types, in one place.

use postfach_message::{self as message, BodyPart, PartKind};
use postfach_proto::response::{
    Address, Body, Disposition, Envelope, MessagePart, MultiPart, MultiPartExt, SinglePart, SinglePartExt,
};
use postfach_proto::types::{DateTime, Flag};
use postfach_store::{Flags, InternalDate, SystemFlags};

/// Store flags → wire flags, optionally with `\Recent` (IMAP4rev1 only).
pub(crate) fn flags(f: &Flags, recent: bool) -> Vec<Flag> {
    let mut out = Vec::with_capacity(5 + f.keywords.len());
    for (bit, flag) in [
        (SystemFlags::ANSWERED, Flag::Answered),
        (SystemFlags::FLAGGED, Flag::Flagged),
        (SystemFlags::DELETED, Flag::Deleted),
        (SystemFlags::SEEN, Flag::Seen),
        (SystemFlags::DRAFT, Flag::Draft),
    ] {
        if f.system.contains(bit) {
            out.push(flag);
        }
    }
    if recent {
        out.push(Flag::Recent);
    }
    out.extend(f.keywords.iter().map(|k| Flag::Keyword(k.clone())));
    out
}

/// Why a client's flag list cannot be stored.
#[derive(Debug)]
pub(crate) struct UnknownFlag(pub(crate) String);

/// Wire flags → store flags. `\Recent` is ignored (it cannot be set, RFC 3501 §2.3.2); other
/// unknown system flags are refused.
pub(crate) fn to_store_flags(list: &[Flag]) -> Result<Flags, UnknownFlag> {
    let mut f = Flags::default();
    for flag in list {
        match flag {
            Flag::Seen => f.system = f.system.union(SystemFlags::SEEN),
            Flag::Answered => f.system = f.system.union(SystemFlags::ANSWERED),
            Flag::Flagged => f.system = f.system.union(SystemFlags::FLAGGED),
            Flag::Deleted => f.system = f.system.union(SystemFlags::DELETED),
            Flag::Draft => f.system = f.system.union(SystemFlags::DRAFT),
            Flag::Recent => {}
            Flag::Keyword(k) => f.keywords.push(k.clone()),
            Flag::Extension(e) => return Err(UnknownFlag(format!("\\{e}"))),
        }
    }
    f.normalise();
    Ok(f)
}

/// Store date → wire date. `None` only for dates outside years 1..=9999, which the store never
/// holds (every stored date came from a valid wire date or the clock).
pub(crate) fn date(d: InternalDate) -> Option<DateTime> {
    DateTime::new(d.unix, d.offset_minutes).or_else(|_| DateTime::new(d.unix, 0)).ok()
}

/// Wire date → store date.
pub(crate) fn internal_date(d: &DateTime) -> InternalDate {
    InternalDate { unix: d.unix(), offset_minutes: d.offset_minutes() }
}

fn address(a: &message::Address) -> Address {
    Address { name: a.name.clone(), adl: a.adl.clone(), mailbox: a.mailbox.clone(), host: a.host.clone() }
}

/// ENVELOPE (RFC 9051 §7.5.2) from the stored summary.
pub(crate) fn envelope(e: &message::Envelope) -> Envelope {
    Envelope {
        date: e.date.clone(),
        subject: e.subject.clone(),
        from: e.from.iter().map(address).collect(),
        sender: e.sender.iter().map(address).collect(),
        reply_to: e.reply_to.iter().map(address).collect(),
        to: e.to.iter().map(address).collect(),
        cc: e.cc.iter().map(address).collect(),
        bcc: e.bcc.iter().map(address).collect(),
        in_reply_to: e.in_reply_to.clone(),
        message_id: e.message_id.clone(),
    }
}

fn params(p: &[message::Param]) -> Vec<(Vec<u8>, Vec<u8>)> {
    p.iter().map(|p| (p.name.clone(), p.value.clone())).collect()
}

fn disposition(d: &Option<message::Disposition>) -> Option<Disposition> {
    d.as_ref().map(|d| Disposition { kind: d.kind.clone(), params: params(&d.params) })
}

/// BODYSTRUCTURE (`extended` = true) or BODY (false) of a MIME part (RFC 9051 §7.5.2).
pub(crate) fn body(part: &BodyPart, extended: bool) -> Body {
    match &part.kind {
        PartKind::Multipart(children) => Body::Multi(MultiPart {
            parts: children.iter().map(|c| body(c, extended)).collect(),
            subtype: part.subtype.clone(),
            ext: extended.then(|| MultiPartExt {
                params: params(&part.params),
                disposition: disposition(&part.disposition),
                language: part.language.clone(),
                location: part.location.clone(),
            }),
        }),
        kind => {
            let message = match kind {
                PartKind::Message(inner) => Some(Box::new(MessagePart {
                    envelope: envelope(&inner.envelope),
                    body: body(&inner.structure, extended),
                    lines: part.lines,
                })),
                _ => None,
            };
            let is_text = part.content_type.eq_ignore_ascii_case(b"text");
            Body::Single(SinglePart {
                media_type: part.content_type.clone(),
                subtype: part.subtype.clone(),
                params: params(&part.params),
                id: part.id.clone(),
                description: part.description.clone(),
                encoding: part.encoding.clone(),
                size: part.size(),
                lines: is_text.then_some(part.lines),
                message,
                ext: extended.then(|| SinglePartExt {
                    md5: part.md5.clone(),
                    disposition: disposition(&part.disposition),
                    language: part.language.clone(),
                    location: part.location.clone(),
                }),
            })
        }
    }
}
