//! Commands valid in every state (RFC 9051 §6.1): CAPABILITY, NOOP, LOGOUT; and ID (RFC 2971)
//! and ENABLE (RFC 5161), which the gate allows where their RFCs say.

use postfach_proto::response::{Data, Status};

use crate::Out;
use crate::context::Enabled;
use crate::respond::{Done, Reply};

/// CAPABILITY (RFC 9051 §6.1.1): `caps` as the session's phase and transport allow.
pub(crate) fn capability(caps: Vec<String>, out: &mut Out) -> Result<Done, Reply> {
    out.data(&Data::Capability(caps));
    Ok(Done::new())
}

/// NOOP (RFC 9051 §6.1.2): nothing; the gate sends the selected mailbox's updates.
pub(crate) fn noop() -> Result<Done, Reply> {
    Ok(Done::new())
}

/// LOGOUT (RFC 9051 §6.1.3): `* BYE` before the tagged OK; the gate closes.
pub(crate) fn logout(out: &mut Out) -> Result<Done, Reply> {
    out.bye("Logging out");
    Ok(Done::new())
}

/// ID (RFC 2971): say who we are; what the client says is only logged.
pub(crate) fn id(out: &mut Out) -> Result<Done, Reply> {
    let id = vec![
        ("name".to_owned(), Some("Postfach".to_owned())),
        ("version".to_owned(), Some(env!("CARGO_PKG_VERSION").to_owned())),
    ];
    out.data(&Data::Id(Some(id)));
    Ok(Done::new())
}

/// ENABLE (RFC 5161): turns the named extensions on and answers with those newly enabled.
pub(crate) fn enable(enabled: &mut Enabled, names: &[String], out: &mut Out) -> Result<Done, Reply> {
    // RFC 5161 §3.1: list only what this command newly enabled.
    let mut newly = Vec::new();
    for name in names {
        if name.eq_ignore_ascii_case("IMAP4rev2") && !enabled.rev2 {
            enabled.rev2 = true;
            enabled.utf8 = true;
            newly.push("IMAP4rev2".to_owned());
        } else if name.eq_ignore_ascii_case("UTF8=ACCEPT") && !enabled.utf8 {
            enabled.utf8 = true;
            newly.push("UTF8=ACCEPT".to_owned());
        } else if name.eq_ignore_ascii_case("CONDSTORE") && !enabled.condstore {
            enabled.condstore = true;
            newly.push("CONDSTORE".to_owned());
        } else if name.eq_ignore_ascii_case("QRESYNC") && !enabled.qresync {
            // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
            enabled.qresync = true;
            enabled.condstore = true;
            newly.push("QRESYNC".to_owned());
        } else if name.eq_ignore_ascii_case("UIDONLY") && !enabled.uidonly {
            // RFC 9586 §3: from now on, UIDs only.
            enabled.uidonly = true;
            newly.push("UIDONLY".to_owned());
        }
    }
    // The write options change from here on (UTF-8 names, UIDFETCH).
    out.set_options(enabled.write_options());
    out.data(&Data::Enabled(newly));
    Ok(Done::new())
}

/// `* OK [HIGHESTMODSEQ n]` when a command turned CONDSTORE on with a mailbox selected
/// (RFC 7162 §3.1).
pub(crate) fn condstore_enabled(highest_modseq: u64, out: &mut Out) {
    let code = postfach_proto::response::Code::HighestModSeq(highest_modseq);
    out.status(Status::Ok, Some(code), "CONDSTORE enabled");
}
