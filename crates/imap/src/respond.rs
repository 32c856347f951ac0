//! What a command ends with ([`Done`] or [`Reply`]), and the one place where store and auth
//! errors become IMAP responses (`From<StoreError>` and `From<AuthError>` for [`Reply`]).
//!
//! After Dovecot's `imap_get_error_string`: not-found and not-allowed read alike where telling
//! them apart would reveal another account's mailboxes; internal errors are logged with detail
//! and the client gets a generic line with `[SERVERBUG]` (RFC 5530).

use postfach_auth::AuthError;
use postfach_proto::response::{Code, Completion};
use postfach_store::StoreError;

/// A successful command: the response code of its tagged OK, if any. The gate writes
/// `tag OK [code] NAME completed`.
#[derive(Debug, Default)]
pub(crate) struct Done {
    pub(crate) code: Option<Code>,
}

impl Done {
    /// `OK NAME completed`
    pub(crate) fn new() -> Done {
        Done { code: None }
    }

    /// `OK [code] NAME completed`
    pub(crate) fn with(code: Code) -> Done {
        Done { code: Some(code) }
    }
}

/// A failure answer decided before the tag is at hand.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: Completion,
    pub(crate) code: Option<Code>,
    pub(crate) text: String,
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
            // RFC 9208 §4.3.1.
            StoreError::OverQuota(_) => (Code::OverQuota, "Quota exceeded".to_owned()),
            StoreError::Backend(detail) => {
                tracing::error!(error = %detail, "store failure");
                (Code::ServerBug, "Internal error; the server log has details".to_owned())
            }
        };
        Reply::no(Some(code), text)
    }
}

/// A failed login (the authenticator has logged the attempt; the login handler logs internal
/// errors with the peer's address). Whether the failure counts against the connection is the
/// login handler's business, not the answer's.
impl From<AuthError> for Reply {
    fn from(err: AuthError) -> Reply {
        match err {
            AuthError::BadCredentials => Reply::no(Some(Code::AuthenticationFailed), "Authentication failed"),
            // RFC 5530 UNAVAILABLE: a temporary condition; the client may retry later.
            AuthError::Throttled { .. } => {
                Reply::no(Some(Code::Unavailable), "Too many failed logins; try again later")
            }
            AuthError::Blocked { .. } => Reply::no(
                Some(Code::Unavailable),
                "Too many failed logins from your address; try again later",
            ),
            AuthError::Authorization => {
                Reply::no(Some(Code::AuthorizationFailed), "Logging in as another user is not allowed")
            }
            // RFC 9051 §6.2.2: a broken exchange is cancelled with BAD.
            AuthError::Protocol(e) => Reply::bad(None, format!("Authentication exchange failed: {e}")),
            AuthError::Store(_) | AuthError::Internal(_) => {
                Reply::no(Some(Code::Unavailable), "Authentication is temporarily unavailable")
            }
        }
    }
}
