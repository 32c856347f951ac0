//! Server responses as values, and the writer that encodes them (RFC 9051 §7, §9).
//!
//! The session builds response values ([`Data`], [`Code`], ...) and calls the `write_*`
//! functions, which append wire bytes to a caller-provided `Vec<u8>`. The writer never panics
//! and never emits bytes that break framing: free text is stripped of CR/LF, strings become
//! quoted strings when every byte is safe and literals otherwise, and atoms that would be
//! invalid are replaced rather than written.
//!
//! # Layout
//!
//! Split by area, as imap-codec splits its encoder; the public API is re-exported here:
//!
//! - `types`: the response values ([`Data`], [`Code`], [`FetchValue`], [`Body`], ...).
//! - `status`: tagged and untagged status lines, continuation requests, response codes.
//! - `data`: untagged data responses ([`write_data`]).
//! - `fetch`: FETCH items: flags, dates, sections, message data.
//! - `bodystructure`: ENVELOPE and BODY/BODYSTRUCTURE, depth bounded by [`MAX_BODY_DEPTH`].
//! - `primitives`: numbers, sets, atoms, flags, quoted strings, literals, mailbox names.

mod bodystructure;
mod data;
mod fetch;
mod primitives;
mod status;
mod types;

pub use bodystructure::MAX_BODY_DEPTH;
pub use data::write_data;
pub use primitives::{write_astring, write_mailbox, write_nstring, write_string, write_string_opts};
pub use status::{write_continuation, write_continuation_base64, write_tagged, write_untagged_status};
pub use types::{
    Address, Body, Code, Completion, Data, Disposition, ESearchItem, Envelope, FetchValue, InProgress,
    ListExtended, MailboxAttr, MessagePart, MetadataCode, MultiPart, MultiPartExt, NamespaceDesc,
    PermanentFlag, SinglePart, SinglePartExt, Status, ThreadToken, UrlFetchBytes, UrlFetchValue,
    WriteOptions,
};

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn w(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    pub(super) fn d(data: Data) -> String {
        w(|o| write_data(o, &data, WriteOptions::default()))
    }
}
