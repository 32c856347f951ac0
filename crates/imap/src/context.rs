//! What handlers receive: the options the client enabled, and the context of a logged-in
//! command.
//!
//! The gate (`session.rs`) builds a [`Cx`] for each command it lets through; a handler gets it
//! together with exactly the state it needs (the selected mailbox, for selected-state
//! commands) and never looks at the session's state itself.

use std::sync::Arc;

use postfach_auth::Principal;
use postfach_proto::response::WriteOptions;
use postfach_store::Rights;

use postfach_proto::types::Tag;

use crate::ServerContext;
use crate::progress::Progress;
use crate::selected::SyncStyle;

/// Options the client turned on with ENABLE (RFC 5161), plus SEARCHRES's saved result.
#[derive(Default)]
pub(crate) struct Enabled {
    /// `ENABLE IMAP4rev2`: rev2 response shapes (ESEARCH, no RECENT, UTF-8 names).
    pub(crate) rev2: bool,
    /// `ENABLE UTF8=ACCEPT` (RFC 6855) or IMAP4rev2: mailbox names in UTF-8.
    pub(crate) utf8: bool,
    /// CONDSTORE is on (RFC 7162 §3.1: ENABLE or any CONDSTORE-enabling command).
    pub(crate) condstore: bool,
    /// `ENABLE QRESYNC` (RFC 7162 §3.2.3); implies CONDSTORE.
    pub(crate) qresync: bool,
    /// `ENABLE UIDONLY` (RFC 9586): no message numbers in commands or responses.
    pub(crate) uidonly: bool,
}

impl Enabled {
    /// How responses are encoded: IMAP4rev2 and UTF8=ACCEPT clients get UTF-8 mailbox names
    /// (RFC 9051 §5.1, RFC 6855 §3), UIDONLY clients UIDFETCH instead of FETCH (RFC 9586 §3.3).
    /// The session hands them to [`crate::Out`].
    pub(crate) fn write_options(&self) -> WriteOptions {
        WriteOptions { utf8: self.utf8, uidonly: self.uidonly }
    }

    /// What the selected mailbox's untagged updates look like.
    pub(crate) fn style(&self) -> SyncStyle {
        SyncStyle { rev2: self.rev2, condstore: self.condstore, qresync: self.qresync, uidonly: self.uidonly }
    }
}

/// What every handler of a logged-in session may use (authenticated and selected state).
pub(crate) struct Cx<'a> {
    /// The store, accounts and settings every session shares.
    pub(crate) ctx: &'a Arc<ServerContext>,
    /// Who is logged in.
    pub(crate) user: &'a Principal,
    /// What the client enabled.
    pub(crate) enabled: &'a Enabled,
    /// The ACL rights the command needs on the mailbox it names (`session::Rule::rights`),
    /// checked where the handler resolves the name.
    pub(crate) need: Rights,
    /// The command's tag (progress notifications name it, RFC 9585).
    pub(crate) tag: &'a Tag,
}

impl Cx<'_> {
    /// The progress notifications of this command (RFC 9585).
    pub(crate) fn progress(&self) -> Progress {
        Progress::new(self.tag, self.ctx.config.progress_interval)
    }
}
