//! IDLE (RFC 2177, RFC 9051 §6.3.13): the gate sends the selected mailbox's updates first
//! (RFC 2177: updates may flow from the start of IDLE), then this continuation; the driver
//! waits, and `DONE` ends the command.

use crate::Out;
use crate::respond::{Done, Reply};

/// Starts IDLE: `+ idling`.
pub(crate) fn start(out: &mut Out) {
    out.continuation("idling");
}

/// The client's line during IDLE: `DONE` ends it (RFC 2177 §3).
pub(crate) fn line(line: &[u8]) -> Result<Done, Reply> {
    if line.eq_ignore_ascii_case(b"DONE") { Ok(Done::new()) } else { Err(Reply::bad(None, "Expected DONE")) }
}
