//! Mail that delivery sends out (vacation replies, Sieve redirects) and the [`Relay`] that
//! carries it.
//!
//! This crate never opens sockets: the server implements [`Relay`] with an SMTP client to the
//! configured relay, and tests implement it in memory. Without a relay, vacation replies are
//! skipped and redirects fall back to keeping the message (nothing is lost).

use async_trait::async_trait;

/// One message to hand to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The SMTP reverse-path; empty for the null path `<>` (vacation replies, RFC 5230 §5.1).
    pub reverse_path: String,
    /// The envelope recipients.
    pub recipients: Vec<String>,
    /// The complete message with CRLF line ends (not dot-stuffed: the relay client does that).
    pub data: Vec<u8>,
}

/// Why the relay did not take a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// It could not be reached, or the conversation broke off (worth trying again later).
    #[error("relay unreachable: {0}")]
    Unreachable(String),
    /// It refused the message with this reply.
    #[error("relay refused the message: {0}")]
    Refused(String),
}

/// Sends mail onward.
#[async_trait]
pub trait Relay: Send + Sync {
    /// Hands `mail` to the relay; `Ok` means the relay accepted responsibility for it.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), RelayError>;
}
