//! What the server advertises, by state and transport (RFC 9051 §6.1.1, §7.2.2).

use crate::sasl::{Mech, Offer};
use crate::{SessionConfig, Transport};

/// Capabilities valid in every state.
const BASE: &[&str] = &["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"];

/// Capabilities offered once logged in.
const AUTHENTICATED: &[&str] = &[
    "NAMESPACE",
    "UNSELECT",
    "UIDPLUS",
    "MOVE",
    "CHILDREN",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "ESEARCH",
    "SEARCHRES",
    "STATUS=SIZE",
    "MULTIAPPEND",
    // RFC 4469: APPEND (and REPLACE) from TEXT literals and URLs of readable messages/parts.
    "CATENATE",
    // RFC 4467: GENURLAUTH, URLFETCH and RESETKEY with the INTERNAL mechanism; RFC 5550
    // URL-PARTIAL: `;PARTIAL=` in those URLs and in CATENATE's.
    "URLAUTH",
    // RFC 5524: URLFETCH's `(url BODYPARTSTRUCTURE BINARY|BODY)`, decoded data and structure.
    "URLAUTH=BINARY",
    "URL-PARTIAL",
    "BINARY",
    "UTF8=ACCEPT",
    "CONDSTORE",
    "QRESYNC",
    "WITHIN",
    "SORT",
    "SORT=DISPLAY",
    "ESORT",
    "PARTIAL",
    // RFC 5267 §4: UPDATE, CONTEXT and CANCELUPDATE for SEARCH and SORT (PARTIAL is RFC 9394's).
    "CONTEXT=SEARCH",
    "CONTEXT=SORT",
    // RFC 7377: ESEARCH IN (...) over several mailboxes.
    "MULTISEARCH",
    // RFC 9586: ENABLE UIDONLY.
    "UIDONLY",
    // RFC 10022 (draft-ietf-mailmaint-imap-uidbatches): UID ranges of equal-sized batches.
    "UIDBATCHES",
    // RFC 9585: long commands report their progress. §3 defines the capability: a server that
    // sends the INPROGRESS response code MUST list it.
    "INPROGRESS",
    "THREAD=ORDEREDSUBJECT",
    "THREAD=REFERENCES",
    "OBJECTID",
    "SAVEDATE",
    "PREVIEW",
    "ACL",
    "RIGHTS=texk",
    "LIST-MYRIGHTS",
    "QUOTA",
    "QUOTA=RES-STORAGE",
    "QUOTA=RES-MESSAGE",
    "QUOTA=RES-MAILBOX",
    "QUOTASET",
    "REPLACE",
    "UNAUTHENTICATE",
    // RFC 4978: `command-auth =/ compress`, so offered once logged in.
    "COMPRESS=DEFLATE",
    // RFC 5464 §1: server and mailbox entries (METADATA-SERVER too, for clients that look for
    // server entries by that name).
    "METADATA",
    "METADATA-SERVER",
    // RFC 5465: events of the selected and other mailboxes, unasked.
    "NOTIFY",
];

/// Whether the session has logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not authenticated: only what is needed to log in.
    PreAuth,
    /// Authenticated or selected.
    LoggedIn,
}

/// The capability list for a session. `offer` says whether SCRAM-SHA-256-PLUS (the
/// connection's TLS channel binding) and the bearer-token mechanisms are offered.
pub(crate) fn list(
    config: &SessionConfig,
    transport: Transport,
    phase: Phase,
    offer: Offer<'_>,
) -> Vec<String> {
    let mut caps: Vec<String> = BASE.iter().map(|s| (*s).to_owned()).collect();
    match phase {
        Phase::PreAuth => {
            if transport == Transport::Plain && config.starttls_available {
                caps.push("STARTTLS".to_owned());
            }
            if auth_allowed(config, transport) {
                // RFC 9051 §6.2.2: the server SHOULD list its SASL mechanisms.
                caps.extend(Mech::capabilities(offer));
            } else {
                // RFC 9051 §6.2.3: LOGIN (and AUTHENTICATE) refused until TLS is up.
                caps.push("LOGINDISABLED".to_owned());
            }
        }
        Phase::LoggedIn => {
            caps.extend(AUTHENTICATED.iter().map(|s| (*s).to_owned()));
            caps.push(format!("APPENDLIMIT={}", config.max_message_size));
        }
    }
    caps
}

/// True when credentials may be sent on this transport.
pub(crate) fn auth_allowed(config: &SessionConfig, transport: Transport) -> bool {
    transport == Transport::Tls || config.allow_plaintext_auth
}
