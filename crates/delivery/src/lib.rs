//! Mail delivery: how a message from an MTA (over LMTP, RFC 2033) or from `postfach deliver`
//! reaches the right mailboxes, through the same `MailStore::append` as IMAP APPEND.
//!
//! # Layout
//! - [`address`]: SMTP paths (`<user+detail@domain>`) → local recipients.
//! - [`lmtp`]: the LMTP session, sans-I/O like the IMAP session: bytes in, reply bytes out; the
//!   server's `lmtp_conn` drives it over TCP or a unix socket.
//! - [`deliver`]: the [`Deliverer`]: recipient lookup, parsing once, trace headers, Sieve, the
//!   spam → Junk policy, subaddress folders, vacation replies and redirects, the appends.
//! - [`view`]: the Sieve interpreter's view of a message (decoded headers, body text; the
//!   decoding is `postfach_message`'s).
//! - [`trace`]: the Return-Path / Delivered-To / Received lines and the summary shift that lets
//!   one parse serve every recipient.
//! - [`outbound`]: the [`Outbox`] through which delivery queues vacation replies and redirects
//!   in the store (durably, before the LMTP reply), and the [`Sender`] that sends them in the
//!   background with retries, backoff, a lifetime and bounces.
//! - [`relay`]: the [`Relay`] trait the sender hands mail to; the server implements it with an
//!   SMTP client (this crate never opens sockets).
//!
//! # Guarantees
//! - A recipient is reported delivered only after every append for it returned, i.e. after the
//!   store made the message durable.
//! - Redirects and vacation replies are in the store's outbound queue before the recipient is
//!   reported; the reply never waits for the SMTP relay. A repeated delivery of the same
//!   message (the MTA retrying) queues neither again.
//! - Mail is never lost to a bad script: a script that does not compile or fails at run time
//!   delivers to INBOX (RFC 5228 §2.10.6) and the reason is logged.
//! - A message is parsed once, however many recipients it has.
//! - A recipient over quota gets nothing stored and its own answer (452 4.2.2 or 552 5.2.2);
//!   the other recipients of the message are not affected.
//!
//! # Limits
//! Message size, line length and recipients per transaction are bounded ([`lmtp::LmtpLimits`]);
//! body text handed to Sieve is capped ([`view::MAX_BODY_TEXT`]).

pub mod address;
pub mod deliver;
pub mod lmtp;
pub mod outbound;
pub mod relay;
pub mod trace;
pub mod view;

pub use address::{AddressError, SmtpPath};
pub use deliver::{
    Deliverer, DeliveryConfig, DeliveryCounts, DeliveryStatus, Envelope, LocalRecipient, OverQuotaAnswer,
    Protocol, RecipientError, SpamHeader, SpamPolicy, Stores,
};
pub use lmtp::{Flow, LmtpLimits, LmtpSession, dot_stuff};
pub use outbound::{Outbox, Outgoing, Sender, SenderSettings, redirect_key};
pub use relay::{OutgoingMail, Relay, RelayError};
