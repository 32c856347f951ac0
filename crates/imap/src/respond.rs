//! Tagged completions, and the one place where store and auth errors become IMAP responses.
//!
//! After Dovecot's `imap_get_error_string`: not-found and not-allowed read alike where telling
//! them apart would reveal another account's mailboxes; internal errors are logged with detail
//! and the client gets a generic line with `[SERVERBUG]` (RFC 5530).

use postfach_proto::response::{Code, Completion};
use postfach_proto::types::Tag;
use postfach_store::StoreError;

use crate::Out;

/// `tag OK [code] text`
pub(crate) fn ok(out: &mut Out, tag: &Tag, code: Option<Code>, text: &str) {
    out.tagged(tag, Completion::Ok, code.as_ref(), text);
}

/// `tag NO [code] text`
pub(crate) fn no(out: &mut Out, tag: &Tag, code: Option<Code>, text: &str) {
    out.tagged(tag, Completion::No, code.as_ref(), text);
}

/// `tag BAD [code] text`
pub(crate) fn bad(out: &mut Out, tag: &Tag, code: Option<Code>, text: &str) {
    out.tagged(tag, Completion::Bad, code.as_ref(), text);
}

/// A failure answer decided before the tag is at hand.
#[derive(Debug)]
pub(crate) struct Reply {
    status: Completion,
    code: Option<Code>,
    text: String,
}

impl Reply {
    /// `NO [code] text`
    pub(crate) fn no(code: Option<Code>, text: impl Into<String>) -> Reply {
        Reply { status: Completion::No, code, text: text.into() }
    }

    /// `BAD [code] text`
    pub(crate) fn bad(code: Option<Code>, text: impl Into<String>) -> Reply {
        Reply { status: Completion::Bad, code, text: text.into() }
    }

    /// Writes it as the tagged completion of `tag`.
    pub(crate) fn write(&self, out: &mut Out, tag: &Tag) {
        out.tagged(tag, self.status, self.code.as_ref(), &self.text);
    }
}

impl From<StoreError> for Reply {
    fn from(err: StoreError) -> Reply {
        let (code, text) = match &err {
            StoreError::NotFound => (Code::Nonexistent, "No such mailbox".to_owned()),
            StoreError::AlreadyExists => (Code::AlreadyExists, "Mailbox already exists".to_owned()),
            StoreError::InvalidName(why) => (Code::CannotDo, format!("Invalid mailbox name: {why}")),
            StoreError::NotAllowed(why) => (Code::CannotDo, format!("Not allowed: {why}")),
            StoreError::HasChildren => {
                (Code::HasChildren, "Mailbox has children; delete them first".to_owned())
            }
            StoreError::Limit(why) => (Code::Limit, format!("Limit reached: {why}")),
            StoreError::Backend(detail) => {
                tracing::error!(error = %detail, "store failure");
                (Code::ServerBug, "Internal error; the server log has details".to_owned())
            }
        };
        Reply::no(Some(code), text)
    }
}
