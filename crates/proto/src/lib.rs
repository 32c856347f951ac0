//! Postfach's IMAP wire layer: framing, command parsing and response writing, with no I/O.
//!
//! Everything here is pure and synchronous: bytes in, values out, and values in, bytes out.
//! The session crate decides what the commands mean; the server crate does the I/O.
//!
//! # Layout
//!
//! - [`framing`]: splits the client's byte stream into complete commands, handles literal
//!   continuations and enforces size limits ([`Framer`]).
//! - [`parse`]: turns one framed command into a typed [`Command`] ([`parse_command`]). Split by
//!   area as imap-codec does: `parse/mod.rs` holds the cursor and errors, `lexer` the tokens
//!   (atoms, strings, literals, numbers, sequence sets, flags, dates), `command` the dispatch and
//!   small commands, `mailbox` SELECT/CREATE/APPEND/COPY/STORE, `list` LIST/LSUB/STATUS,
//!   `fetch` FETCH items and sections, `search` SEARCH/SORT/THREAD keys, `acl` the ACL and
//!   QUOTA commands, `urlauth` GENURLAUTH/RESETKEY/URLFETCH.
//! - [`imapurl`]: IMAP URLs (RFC 5092) of a message or part, for CATENATE and URLAUTH.
//! - [`types`]: the command AST (tags, mailbox names, flags, search keys, fetch items, ...).
//! - [`seqset`]: client sequence sets with `*` and `$`, and normalised number sets.
//! - [`datetime`]: IMAP dates and date-times without a calendar crate.
//! - [`response`]: server responses as values and the writer that encodes them. Split by area:
//!   `types` (the values), `status` (status lines, codes, continuations), `data` (untagged
//!   data), `fetch` and `bodystructure` (FETCH items, ENVELOPE, BODY), `primitives` (numbers,
//!   atoms, quoting, literals, nstring, mailbox names).
//! - [`mutf7`]: modified UTF-7 for IMAP4rev1 mailbox names.
//!
//! # Limits
//!
//! No function here panics on any input, recursion is bounded ([`parse::MAX_NESTING`],
//! [`response::MAX_BODY_DEPTH`]), and memory is bounded by [`FramingLimits`].

#![warn(missing_docs)]

pub mod datetime;
pub mod framing;
pub mod imapurl;
pub mod mutf7;
pub mod parse;
pub mod response;
pub mod seqset;
pub mod types;

pub use framing::{FrameError, FrameEvent, Framer, FramingLimits};
pub use parse::{ParseError, parse_command, parse_command_bytes};
pub use response::{
    Address, Body, Code, Completion, Data, Disposition, ESearchItem, Envelope, FetchValue, InProgress,
    ListExtended, MailboxAttr, MessagePart, MetadataCode, MultiPart, MultiPartExt, NamespaceDesc,
    PermanentFlag, SinglePart, SinglePartExt, Status, ThreadToken, WriteOptions, write_astring,
    write_continuation, write_continuation_base64, write_data, write_mailbox, write_nstring, write_string,
    write_string_opts, write_tagged, write_untagged_status,
};
pub use types::*;
