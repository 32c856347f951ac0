//! Assembling one command from the byte stream (RFC 9051 §2.2, §4.3, §7.6; RFC 7888).
//!
//! A command is one or more CRLF-terminated lines glued together by literals: a line ending in
//! `{n}` (synchronizing), `{n+}` (non-synchronizing, LITERAL+), `~{n}` or `~{n+}` (literal8,
//! RFC 3516) is followed by exactly n raw bytes and then the rest of the command. The
//! [`Framer`] finds those boundaries, asks the driver to send continuation requests, and
//! enforces [`FramingLimits`] so that a peer can never make it hold more than the limits allow.
//! It does not interpret the command; [`crate::parse_command`] does.
//!
//! The driver's loop is: read a chunk, [`Framer::push`] it, then call [`Framer::next`] until it
//! returns `None`. Used that way the framer buffers at most one partial line or literal plus
//! one read chunk.

use crate::types::{Tag, is_tag_char};

/// Size limits for one command. Every field bounds memory or work a peer can cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingLimits {
    /// Longest line (text between literals, without CRLF). 64 KiB is ample for any command
    /// text; longer lines are rejected and skipped without buffering.
    pub max_line: usize,
    /// Largest single literal we accept (advertise as APPENDLIMIT, RFC 7889).
    pub max_literal: u32,
    /// Largest whole command, literal data included (MULTIAPPEND can carry several literals).
    pub max_command: usize,
    /// Most literals in one command (bounds per-literal bookkeeping and continuation rounds).
    pub max_literals: usize,
    /// Most command text (line bytes, literal data not counted) in one command. With the
    /// literal count this bounds how many arguments one command can carry, and so the size of
    /// the parsed command: a 50 MiB command of `ALL ALL ...` would otherwise parse into
    /// millions of search keys.
    pub max_text: usize,
    /// A too-big non-synchronizing literal up to this size is read and thrown away so the
    /// connection can continue (RFC 7888 §4 choice 1); bigger ones end the connection
    /// (choice 2) because skipping would waste too much bandwidth.
    pub max_skip_literal: u64,
}

impl Default for FramingLimits {
    fn default() -> Self {
        const MIB: u32 = 1024 * 1024;
        FramingLimits {
            max_line: 64 * 1024,
            max_literal: 50 * MIB,
            // One maximal literal plus 64 KiB of command text, as Dovecot does.
            max_command: 50 * MIB as usize + 64 * 1024,
            max_literals: 256,
            // MULTIAPPEND of 256 messages needs ~20 KiB of text; long UID sets fit in a line.
            max_text: 256 * 1024,
            max_skip_literal: 100 * u64::from(MIB),
        }
    }
}

/// Why a command was rejected by the framer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A line exceeded [`FramingLimits::max_line`].
    #[error("line too long (limit {max} bytes)")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
    /// A literal exceeded [`FramingLimits::max_literal`] (answer with `[TOOBIG]`).
    #[error("literal of {size} bytes too large (limit {max})")]
    LiteralTooLarge {
        /// The announced size.
        size: u64,
        /// The limit.
        max: u32,
    },
    /// A literal's length does not fit in 64 bits.
    #[error("literal length overflows")]
    LiteralLengthOverflow,
    /// The whole command exceeded [`FramingLimits::max_command`].
    #[error("command too long (limit {max} bytes)")]
    CommandTooLong {
        /// The limit.
        max: usize,
    },
    /// The command has more literals than [`FramingLimits::max_literals`].
    #[error("too many literals (limit {max})")]
    TooManyLiterals {
        /// The limit.
        max: usize,
    },
    /// The command's text outside literals exceeded [`FramingLimits::max_text`].
    #[error("too many arguments (limit {max} bytes of command text)")]
    TextTooLong {
        /// The limit.
        max: usize,
    },
    /// The driver refused an announced literal ([`Framer::refuse_literal`]): the server has
    /// too much literal data in memory right now (answer with `NO [LIMIT]`; a retry may work).
    #[error("server busy: too much message data in transit, try again later")]
    Busy,
}

/// What the framer has to say after [`Framer::next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEvent {
    /// A complete command: all its bytes including literal data (each literal still preceded
    /// by its `{n}\r\n` marker), the final CRLF stripped.
    Command(Vec<u8>),
    /// The client announced a synchronizing literal `{n}` within limits: the driver must send
    /// `+ Ready for literal data\r\n` before the client sends the bytes (RFC 9051 §7.6).
    NeedContinuation,
    /// Only with [`Framer::gate_literals`] on: the client announced a literal of `size` bytes
    /// within the limits. No byte of it has been taken; the framer waits (`next` returns
    /// `None`) until the driver calls [`Framer::accept_literal`] or [`Framer::refuse_literal`].
    LiteralAnnounced {
        /// The announced size, at most [`FramingLimits::max_literal`].
        size: u64,
        /// `{n}`: the client waits for a continuation request before sending the data.
        sync: bool,
    },
    /// A command was rejected by a limit. `tag` is its tag if readable, for `tag BAD ...`.
    /// With `fatal` the driver must send `* BYE` and close; otherwise framing continues with
    /// the next command (the rest of the rejected one is skipped without buffering).
    Rejected {
        /// The command's tag, if it could be read.
        tag: Option<Tag>,
        /// What went wrong.
        error: FrameError,
        /// The connection cannot continue.
        fatal: bool,
    },
}

/// Where the framer is within the current command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading a line of the current command.
    Line,
    /// Copying this many more literal bytes into the command.
    Literal { remaining: usize },
    /// A literal of `len` bytes was announced; waiting for the driver's decision.
    Announced { len: usize, sync: bool },
    /// Throwing away the rest of a rejected command's line; `tail` keeps its last bytes so a
    /// literal marker at the end can still be recognised.
    DiscardLine { tail: Vec<u8> },
    /// Throwing away this many literal bytes of a rejected command.
    DiscardLiteral { remaining: u64 },
    /// A fatal error was reported; all further input is dropped.
    Dead,
}

/// The longest literal marker we need to recognise in a discarded line: `~{` + 20 digits +
/// `+}`, rounded up.
const MARKER_TAIL: usize = 32;

/// Room reserved after a literal for the rest of its command (`)` of an APPEND, or the next
/// message's flags and date in MULTIAPPEND); more grows the buffer as usual.
const LITERAL_TAIL: usize = 256;
/// Compaction threshold: consumed bytes are dropped from the buffer's front once they are
/// at least this many and at least half the buffer, keeping consumption amortised linear.
const COMPACT_MIN: usize = 4096;

/// Splits a byte stream into commands; see the module docs for the driving loop.
#[derive(Debug)]
pub struct Framer {
    limits: FramingLimits,
    /// Received, not yet consumed bytes are `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// Bytes of `buf[pos..]` already searched for LF in the current line.
    scanned: usize,
    /// The command assembled so far.
    cmd: Vec<u8>,
    /// Literals in the current command.
    literals: usize,
    /// Line bytes (literal data excluded) in the current command.
    text: usize,
    state: State,
    /// Tag of the command being discarded, for a later fatal event.
    discard_tag: Option<Tag>,
    /// Report literals with [`FrameEvent::LiteralAnnounced`] and wait for a decision.
    gate: bool,
}

/// Outcome of one step of [`Framer::step_line`].
enum Step {
    Event(FrameEvent),
    NeedInput,
    /// State changed without an event; keep going.
    Continue,
}

/// A literal marker found at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Marker {
    /// `None` if the digits overflow u64.
    len: Option<u64>,
    /// `{n}` rather than `{n+}`.
    sync: bool,
}

impl Framer {
    /// A framer enforcing `limits`.
    pub fn new(limits: FramingLimits) -> Framer {
        Framer {
            limits,
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            cmd: Vec::new(),
            literals: 0,
            text: 0,
            state: State::Line,
            discard_tag: None,
            gate: false,
        }
    }

    /// With `on`, every literal within the limits is announced ([`FrameEvent::LiteralAnnounced`])
    /// and only taken once the driver accepts it, so the driver can reserve memory for it
    /// first. Applies from the next literal marker on.
    pub fn gate_literals(&mut self, on: bool) {
        self.gate = on;
    }

    /// Accepts the announced literal: its bytes become part of the command. Returns true if
    /// the driver must now send the continuation request (a synchronizing literal). Does
    /// nothing (false) when no literal is waiting.
    pub fn accept_literal(&mut self) -> bool {
        let State::Announced { len, sync } = self.state else {
            return false;
        };
        self.start_literal(len);
        sync
    }

    /// Enters [`State::Literal`], with room for the literal and a short rest of the command in
    /// `cmd` at once: the command buffer is not reallocated (copied) while the data arrives,
    /// and with a single literal it is the one buffer the message keeps down to the store.
    fn start_literal(&mut self, len: usize) {
        // Never beyond the command limit: that much `cmd` may hold anyway (and the limit
        // checks made sure the literal fits in it).
        let room = self.limits.max_command.saturating_sub(self.cmd.len());
        self.cmd.reserve(len.saturating_add(LITERAL_TAIL).min(room));
        self.state = State::Literal { remaining: len };
    }

    /// Refuses the announced literal with `error` and rejects its command: a synchronizing
    /// literal is never sent (no continuation request), a non-synchronizing one is read and
    /// thrown away. `None` when no literal is waiting.
    pub fn refuse_literal(&mut self, error: FrameError) -> Option<FrameEvent> {
        let State::Announced { len, sync } = self.state else {
            return None;
        };
        let tag = self.current_tag(&[]);
        self.cmd = Vec::new();
        self.literals = 0;
        self.text = 0;
        self.state = State::Line;
        Some(self.reject_literal(tag, error, Marker { len: Some(len as u64), sync }))
    }

    /// The limits in force.
    pub fn limits(&self) -> &FramingLimits {
        &self.limits
    }

    /// Replaces the limits, for example when a session logs in and may send bigger commands
    /// than before. They apply to every line and literal marker framed from now on; a literal
    /// already accepted keeps the size it was accepted with.
    pub fn set_limits(&mut self, limits: FramingLimits) {
        self.limits = limits;
    }

    /// Frees the buffers' memory when they hold nothing, so that an idle connection costs no
    /// buffer space. Cheap; meant to be called before waiting for input.
    pub fn release_unused_memory(&mut self) {
        if self.pos == self.buf.len() && self.buf.capacity() > 0 {
            self.buf = Vec::new();
            self.pos = 0;
            self.scanned = 0;
        }
        if self.cmd.is_empty() && self.cmd.capacity() > 0 {
            self.cmd = Vec::new();
        }
    }

    /// Appends received bytes. Call [`Framer::next`] until `None` before pushing more, so
    /// the buffer stays bounded.
    pub fn push(&mut self, data: &[u8]) {
        if self.state == State::Dead {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// True while part of a command has been received but not all of it (say a literal, and
    /// the line that follows it not yet).
    pub fn mid_command(&self) -> bool {
        self.buf.len() > self.pos || !self.cmd.is_empty()
    }

    /// Bytes held (unconsumed input plus the command assembled so far), for memory budgets.
    pub fn buffered(&self) -> usize {
        (self.buf.len() - self.pos) + self.cmd.capacity().max(self.cmd.len())
    }

    /// Drops all unconsumed input and any partial command. Used after STARTTLS: bytes sent
    /// before the TLS handshake must not be executed (RFC 9051 §6.2.1).
    pub fn discard_buffered(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.scanned = 0;
        self.cmd = Vec::new();
        self.literals = 0;
        self.text = 0;
        self.discard_tag = None;
        if self.state != State::Dead {
            self.state = State::Line;
        }
    }

    /// Takes the received bytes not yet consumed, leaving the framer empty and ready for a new
    /// command. Used after COMPRESS (RFC 4978 §3): whatever followed the command on the wire is
    /// already compressed and belongs to the decompressor, not to the framer.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let rest = self.buf.get(self.pos..).map(<[u8]>::to_vec).unwrap_or_default();
        self.discard_buffered();
        rest
    }

    /// Returns one raw line without its CRLF (or bare LF) and without literal handling: the
    /// client's AUTHENTICATE responses (RFC 9051 §6.2.2) and IDLE's `DONE` (§6.3.13). `None`
    /// means more input is needed. A line over `max_line` is an error that ends the
    /// connection (the framer drops all further input).
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        if self.state == State::Dead {
            return None;
        }
        match self.find_lf() {
            Some(idx) => {
                let line = strip_cr(&self.buf[self.pos..self.pos + idx]);
                if line.len() > self.limits.max_line {
                    self.die();
                    return Some(Err(FrameError::LineTooLong { max: self.limits.max_line }));
                }
                let line = line.to_vec();
                self.consume(idx + 1);
                Some(Ok(line))
            }
            None if self.unconsumed() > self.limits.max_line.saturating_add(1) => {
                self.die();
                Some(Err(FrameError::LineTooLong { max: self.limits.max_line }))
            }
            None => None,
        }
    }

    /// Advances over buffered input and reports the next event; `None` means more input
    /// is needed.
    #[allow(clippy::should_implement_trait)] // not an Iterator: `None` is "not yet", not "end"
    pub fn next(&mut self) -> Option<FrameEvent> {
        loop {
            match self.state {
                State::Dead => {
                    self.buf.clear();
                    self.pos = 0;
                    return None;
                }
                State::Line => match self.step_line() {
                    Step::Event(ev) => return Some(ev),
                    Step::NeedInput => return None,
                    Step::Continue => {}
                },
                State::Literal { remaining } => {
                    let take = remaining.min(self.unconsumed());
                    self.cmd.extend_from_slice(&self.buf[self.pos..self.pos + take]);
                    self.consume(take);
                    if take < remaining {
                        self.state = State::Literal { remaining: remaining - take };
                        return None;
                    }
                    self.state = State::Line;
                }
                // The driver decides right after the announcement; until then nothing moves.
                State::Announced { .. } => return None,
                State::DiscardLiteral { remaining } => {
                    let avail = self.unconsumed();
                    let take = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
                    self.consume(take);
                    // `take` <= remaining, so this cannot underflow.
                    let left = remaining - take as u64;
                    if left > 0 {
                        self.state = State::DiscardLiteral { remaining: left };
                        return None;
                    }
                    self.state = State::DiscardLine { tail: Vec::new() };
                }
                State::DiscardLine { .. } => {
                    if let Some(ev) = self.step_discard_line() {
                        return Some(ev);
                    }
                    if matches!(self.state, State::DiscardLine { .. }) {
                        return None;
                    }
                }
            }
        }
    }

    /// Handles [`State::Line`]: finds the end of the line and decides what it means.
    fn step_line(&mut self) -> Step {
        let Some(idx) = self.find_lf() else {
            if self.unconsumed() > self.limits.max_line.saturating_add(1) {
                // The line is already too long: reject now and skip the rest unbuffered.
                let tag = self.current_tag(&self.buf[self.pos..]);
                let start = self.buf.len().saturating_sub(MARKER_TAIL).max(self.pos);
                let tail = self.buf[start..].to_vec();
                let n = self.unconsumed();
                self.consume(n);
                // The line has not ended yet: keep discarding until it does.
                self.cmd = Vec::new();
                self.literals = 0;
                self.text = 0;
                self.discard_tag = tag.clone();
                self.state = State::DiscardLine { tail };
                return Step::Event(FrameEvent::Rejected {
                    tag,
                    error: FrameError::LineTooLong { max: self.limits.max_line },
                    fatal: false,
                });
            }
            return Step::NeedInput;
        };
        let line_end = self.pos + idx;
        let line = strip_cr(&self.buf[self.pos..line_end]);
        let line_len = line.len();
        let tag = self.current_tag(line);
        if line_len > self.limits.max_line {
            // Exactly as when the line is rejected before its end arrived (above): the last
            // bytes of the line and its LF stay for `DiscardLine`, so that the events do not
            // depend on how the input was chunked.
            let keep = idx.min(MARKER_TAIL);
            self.consume(idx - keep);
            self.cmd = Vec::new();
            self.literals = 0;
            self.text = 0;
            self.discard_tag = tag.clone();
            self.state = State::DiscardLine { tail: Vec::new() };
            return Step::Event(FrameEvent::Rejected {
                tag,
                error: FrameError::LineTooLong { max: self.limits.max_line },
                fatal: false,
            });
        }
        let marker = literal_marker(line);
        let text_len = self.cmd.len() + line_len;
        if text_len > self.limits.max_command {
            let start = line_len.saturating_sub(MARKER_TAIL);
            let tail = line[start..].to_vec();
            self.consume(idx + 1);
            return Step::Event(self.reject_discarding(
                tag,
                FrameError::CommandTooLong { max: self.limits.max_command },
                tail,
            ));
        }
        if self.text.saturating_add(line_len) > self.limits.max_text {
            let start = line_len.saturating_sub(MARKER_TAIL);
            let tail = line[start..].to_vec();
            self.consume(idx + 1);
            return Step::Event(self.reject_discarding(
                tag,
                FrameError::TextTooLong { max: self.limits.max_text },
                tail,
            ));
        }
        let Some(marker) = marker else {
            let mut cmd = std::mem::take(&mut self.cmd);
            cmd.extend_from_slice(line);
            self.consume(idx + 1);
            self.literals = 0;
            self.text = 0;
            return Step::Event(FrameEvent::Command(cmd));
        };
        // Validate the literal against every limit before accepting a byte of it.
        let error = match marker.len {
            None => Some(FrameError::LiteralLengthOverflow),
            Some(n) if n > u64::from(self.limits.max_literal) => {
                Some(FrameError::LiteralTooLarge { size: n, max: self.limits.max_literal })
            }
            Some(_) if self.literals >= self.limits.max_literals => {
                Some(FrameError::TooManyLiterals { max: self.limits.max_literals })
            }
            Some(n)
                if (text_len as u64).saturating_add(2).saturating_add(n) > self.limits.max_command as u64 =>
            {
                Some(FrameError::CommandTooLong { max: self.limits.max_command })
            }
            Some(_) => None,
        };
        if let Some(error) = error {
            self.consume(idx + 1);
            self.cmd = Vec::new();
            self.literals = 0;
            self.text = 0;
            return Step::Event(self.reject_literal(tag, error, marker));
        }
        // Limits checked above: n <= max_literal (u32), so it fits usize on 32/64-bit targets.
        let n = usize::try_from(marker.len.unwrap_or(0)).unwrap_or(usize::MAX);
        self.cmd.extend_from_slice(line);
        self.cmd.extend_from_slice(b"\r\n");
        self.consume(idx + 1);
        self.literals += 1;
        self.text += line_len;
        if self.gate {
            self.state = State::Announced { len: n, sync: marker.sync };
            return Step::Event(FrameEvent::LiteralAnnounced { size: n as u64, sync: marker.sync });
        }
        self.start_literal(n);
        if marker.sync {
            return Step::Event(FrameEvent::NeedContinuation);
        }
        Step::Continue
    }

    /// Handles [`State::DiscardLine`]: skips to the end of the line, then skips literals
    /// that follow it, until the rejected command is over.
    fn step_discard_line(&mut self) -> Option<FrameEvent> {
        let State::DiscardLine { tail } = &mut self.state else {
            return None;
        };
        let mut tail = std::mem::take(tail);
        let avail = &self.buf[self.pos..];
        let Some(idx) = avail.iter().position(|&b| b == b'\n') else {
            push_tail(&mut tail, avail);
            let n = avail.len();
            self.consume(n);
            self.state = State::DiscardLine { tail };
            return None;
        };
        push_tail(&mut tail, &avail[..idx]);
        self.consume(idx + 1);
        let line = strip_cr(&tail);
        match literal_marker(line) {
            // The command ended, or it ends because the client waits for a `+` we never send.
            None | Some(Marker { sync: true, .. }) => {
                self.finish_discard();
                None
            }
            Some(Marker { len: Some(n), sync: false }) if n <= self.limits.max_skip_literal => {
                self.state = State::DiscardLiteral { remaining: n };
                None
            }
            Some(Marker { len, .. }) => {
                let tag = self.discard_tag.take();
                self.die();
                Some(FrameEvent::Rejected {
                    tag,
                    error: match len {
                        Some(size) => FrameError::LiteralTooLarge { size, max: self.limits.max_literal },
                        None => FrameError::LiteralLengthOverflow,
                    },
                    fatal: true,
                })
            }
        }
    }

    /// Rejects the current command and skips the rest of it, starting after a line whose
    /// last bytes are `tail` (already consumed).
    fn reject_discarding(&mut self, tag: Option<Tag>, error: FrameError, tail: Vec<u8>) -> FrameEvent {
        self.cmd = Vec::new();
        self.literals = 0;
        self.text = 0;
        let line = strip_cr(&tail);
        match literal_marker(line) {
            // The line ended the command, or the client waits for a `+` that never comes.
            None | Some(Marker { sync: true, .. }) => {
                self.finish_discard();
                FrameEvent::Rejected { tag, error, fatal: false }
            }
            Some(m) => self.reject_literal(tag, error, m),
        }
    }

    /// Rejects the current command whose line (consumed) ends with literal marker `m`.
    fn reject_literal(&mut self, tag: Option<Tag>, error: FrameError, m: Marker) -> FrameEvent {
        if m.sync {
            // RFC 9051 §7.6: without our `+` the client does not send the literal data.
            self.finish_discard();
            return FrameEvent::Rejected { tag, error, fatal: false };
        }
        match m.len {
            // RFC 7888 §4 choice 1: read and drop the data, then carry on.
            Some(n) if n <= self.limits.max_skip_literal => {
                self.discard_tag = tag.clone();
                self.state = State::DiscardLiteral { remaining: n };
                FrameEvent::Rejected { tag, error, fatal: false }
            }
            // RFC 7888 §4 choice 2: too much to skip; the driver sends BYE and closes.
            _ => {
                self.die();
                FrameEvent::Rejected { tag, error, fatal: true }
            }
        }
    }

    fn finish_discard(&mut self) {
        self.state = State::Line;
        self.discard_tag = None;
        self.cmd = Vec::new();
        self.literals = 0;
        self.text = 0;
    }

    fn die(&mut self) {
        self.state = State::Dead;
        self.buf = Vec::new();
        self.pos = 0;
        self.scanned = 0;
        self.cmd = Vec::new();
        self.literals = 0;
        self.text = 0;
    }

    /// The tag of the command being assembled: from its first line, or from `line` if this
    /// is the first line.
    fn current_tag(&self, line: &[u8]) -> Option<Tag> {
        let first = if self.cmd.is_empty() { line } else { &self.cmd };
        // Only the first `max_line` bytes: that much is always buffered when an overlong line
        // is rejected early, so the tag found does not depend on how the input was chunked.
        let first = &first[..first.len().min(self.limits.max_line)];
        let end = first.iter().position(|&b| b == b' ')?;
        let raw = &first[..end];
        if raw.iter().all(|&b| is_tag_char(b)) { Tag::from_bytes(raw).ok() } else { None }
    }

    fn unconsumed(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Finds the next LF in the unconsumed input, resuming where the last search stopped.
    fn find_lf(&mut self) -> Option<usize> {
        let avail = &self.buf[self.pos..];
        let from = self.scanned.min(avail.len());
        match avail[from..].iter().position(|&b| b == b'\n') {
            Some(i) => Some(from + i),
            None => {
                self.scanned = avail.len();
                None
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.scanned = 0;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Drops consumed bytes from the front when that is worth the copy.
    fn compact(&mut self) {
        if self.pos >= COMPACT_MIN && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

/// Appends `data` to `tail`, keeping only the last [`MARKER_TAIL`] bytes.
fn push_tail(tail: &mut Vec<u8>, data: &[u8]) {
    if data.len() >= MARKER_TAIL {
        tail.clear();
        tail.extend_from_slice(&data[data.len() - MARKER_TAIL..]);
        return;
    }
    tail.extend_from_slice(data);
    if tail.len() > MARKER_TAIL {
        let cut = tail.len() - MARKER_TAIL;
        tail.drain(..cut);
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Recognises `{n}`, `{n+}`, `~{n}`, `~{n+}` at the end of a line (RFC 9051 §9 `literal`,
/// RFC 7888 `literal`, RFC 3516 `literal8`).
fn literal_marker(line: &[u8]) -> Option<Marker> {
    let body = line.strip_suffix(b"}")?;
    let (digits_end, sync) = match body.strip_suffix(b"+") {
        Some(b) => (b.len(), false),
        None => (body.len(), true),
    };
    let open = body[..digits_end].iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..digits_end];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = digits.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')));
    // A `~` before `{` (literal8) changes nothing for framing: the data is raw either way.
    Some(Marker { len, sync })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limits() -> FramingLimits {
        FramingLimits {
            max_line: 64,
            max_literal: 100,
            max_command: 300,
            max_literals: 3,
            max_text: 200,
            max_skip_literal: 1000,
        }
    }

    /// Feeds `input` in chunks of `chunk` bytes and collects every event.
    fn run(input: &[u8], chunk: usize, l: FramingLimits) -> Vec<FrameEvent> {
        let mut f = Framer::new(l);
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            f.push(c);
            while let Some(ev) = f.next() {
                out.push(ev);
            }
        }
        out
    }

    fn cmd(s: &[u8]) -> FrameEvent {
        FrameEvent::Command(s.to_vec())
    }

    #[test]
    fn marker_recognition() {
        assert_eq!(literal_marker(b"a {5}").unwrap().len, Some(5));
        assert!(literal_marker(b"a {5}").unwrap().sync);
        assert!(!literal_marker(b"a {5+}").unwrap().sync);
        assert_eq!(literal_marker(b"a ~{5+}").unwrap().len, Some(5));
        assert_eq!(literal_marker(b"{99999999999999999999999}").unwrap().len, None);
        assert!(literal_marker(b"a {}").is_none());
        assert!(literal_marker(b"a {x}").is_none());
        assert!(literal_marker(b"a }").is_none());
        assert!(literal_marker(b"a {+}").is_none());
    }

    #[test]
    fn every_fragmentation_gives_the_same_events() {
        let input: &[u8] =
            b"a1 NOOP\r\na2 LOGIN {3}\r\nfoo {4+}\r\nb\r\nr\r\nb3 APPEND X ~{2}\r\n\0\x01\na4 CAPABILITY\n";
        let expected = vec![
            cmd(b"a1 NOOP"),
            FrameEvent::NeedContinuation,
            cmd(b"a2 LOGIN {3}\r\nfoo {4+}\r\nb\r\nr"),
            FrameEvent::NeedContinuation,
            cmd(b"b3 APPEND X ~{2}\r\n\0\x01"),
            cmd(b"a4 CAPABILITY"),
        ];
        for chunk in 1..=input.len() {
            assert_eq!(run(input, chunk, limits()), expected, "chunk size {chunk}");
        }
        // Also split at every single boundary into exactly two pieces.
        for split in 0..=input.len() {
            let mut f = Framer::new(limits());
            let mut out = Vec::new();
            for part in [&input[..split], &input[split..]] {
                f.push(part);
                while let Some(ev) = f.next() {
                    out.push(ev);
                }
            }
            assert_eq!(out, expected, "split at {split}");
        }
    }

    #[test]
    fn sync_literal_too_big_is_not_fatal() {
        let ev = run(b"t1 APPEND INBOX {101}\r\nt2 NOOP\r\n", 7, limits());
        assert_eq!(
            ev,
            vec![
                FrameEvent::Rejected {
                    tag: Some(Tag::new("t1").unwrap()),
                    error: FrameError::LiteralTooLarge { size: 101, max: 100 },
                    fatal: false
                },
                cmd(b"t2 NOOP"),
            ]
        );
    }

    #[test]
    fn non_sync_literal_too_big_is_skipped() {
        let mut input = b"t1 APPEND INBOX {200+}\r\n".to_vec();
        input.extend_from_slice(&[b'x'; 200]);
        // The rest of the command carries a second non-sync literal, also skipped.
        input.extend_from_slice(b" {3+}\r\n\r\n\r\nt2 NOOP\r\n");
        for chunk in [1, 5, 1000] {
            let ev = run(&input, chunk, limits());
            assert_eq!(
                ev,
                vec![
                    FrameEvent::Rejected {
                        tag: Some(Tag::new("t1").unwrap()),
                        error: FrameError::LiteralTooLarge { size: 200, max: 100 },
                        fatal: false
                    },
                    cmd(b"t2 NOOP"),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn non_sync_literal_beyond_skip_bound_is_fatal() {
        let ev = run(b"t1 APPEND INBOX {5000+}\r\nxxxx\r\nt2 NOOP\r\n", 3, limits());
        assert_eq!(
            ev,
            vec![FrameEvent::Rejected {
                tag: Some(Tag::new("t1").unwrap()),
                error: FrameError::LiteralTooLarge { size: 5000, max: 100 },
                fatal: true
            }]
        );
        let ev = run(b"t1 X {99999999999999999999999+}\r\n", 3, limits());
        assert!(matches!(
            ev.as_slice(),
            [FrameEvent::Rejected { error: FrameError::LiteralLengthOverflow, fatal: true, .. }]
        ));
        let ev = run(b"t1 X {99999999999999999999999}\r\nt2 NOOP\r\n", 3, limits());
        assert!(matches!(
            ev.as_slice(),
            [
                FrameEvent::Rejected { error: FrameError::LiteralLengthOverflow, fatal: false, .. },
                FrameEvent::Command(_)
            ]
        ));
    }

    #[test]
    fn long_line_is_skipped_without_buffering() {
        let mut input = b"t1 SEARCH ".to_vec();
        input.extend_from_slice(&[b'a'; 500]);
        input.extend_from_slice(b"\r\nt2 NOOP\r\n");
        for chunk in [1, 16, 1000] {
            let mut f = Framer::new(limits());
            let mut out = Vec::new();
            for c in input.chunks(chunk) {
                f.push(c);
                while let Some(ev) = f.next() {
                    out.push(ev);
                }
                assert!(f.buffered() <= 64 + 2 + chunk + MARKER_TAIL, "buffered {}", f.buffered());
            }
            assert_eq!(
                out,
                vec![
                    FrameEvent::Rejected {
                        tag: Some(Tag::new("t1").unwrap()),
                        error: FrameError::LineTooLong { max: 64 },
                        fatal: false
                    },
                    cmd(b"t2 NOOP"),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn long_line_ending_in_non_sync_literal_skips_it() {
        let mut input = b"t1 APPEND ".to_vec();
        input.extend_from_slice(&[b'a'; 100]);
        input.extend_from_slice(b" {3+}\r\nabc\r\nt2 NOOP\r\n");
        for chunk in [1, 7, 1000] {
            let ev = run(&input, chunk, limits());
            assert_eq!(ev.len(), 2, "chunk {chunk}: {ev:?}");
            assert_eq!(ev[1], cmd(b"t2 NOOP"));
        }
    }

    #[test]
    fn too_many_literals_and_command_too_long() {
        let ev = run(b"t1 X {1+}\r\na {1+}\r\nb {1+}\r\nc {1+}\r\nd\r\nt2 NOOP\r\n", 4, limits());
        assert_eq!(
            ev,
            vec![
                FrameEvent::Rejected {
                    tag: Some(Tag::new("t1").unwrap()),
                    error: FrameError::TooManyLiterals { max: 3 },
                    fatal: false
                },
                cmd(b"t2 NOOP"),
            ]
        );
        let mut input = Vec::new();
        for _ in 0..3 {
            input.extend_from_slice(b"t1 X {99+}\r\n");
            input.extend_from_slice(&[b'z'; 99]);
        }
        input.extend_from_slice(b"\r\nt2 NOOP\r\n");
        let mut l = limits();
        l.max_literals = 10;
        let ev = run(&input, 50, l);
        assert!(matches!(
            &ev[0],
            FrameEvent::Rejected { error: FrameError::CommandTooLong { max: 300 }, fatal: false, .. }
        ));
        assert_eq!(ev.last(), Some(&cmd(b"t2 NOOP")));
    }

    #[test]
    fn command_text_is_bounded_across_literals() {
        // Four lines of 60 bytes joined by small literals: each line and the whole command are
        // within limits, but 240 bytes of text exceed max_text (200).
        let line = |end: &str| {
            let mut l = vec![b'a'; 60 - end.len()];
            l.extend_from_slice(end.as_bytes());
            l
        };
        let mut input = b"t1 SEARCH".to_vec();
        input.extend_from_slice(&line(" {1+}")[9..]);
        input.extend_from_slice(b"\r\nx");
        for _ in 0..2 {
            input.extend_from_slice(&line(" {1+}"));
            input.extend_from_slice(b"\r\nx");
        }
        input.extend_from_slice(&line(""));
        input.extend_from_slice(b"\r\nt2 NOOP\r\n");
        let mut l = limits();
        l.max_literals = 10;
        for chunk in [1, 9, 1000] {
            let ev = run(&input, chunk, l);
            assert_eq!(
                ev,
                vec![
                    FrameEvent::Rejected {
                        tag: Some(Tag::new("t1").unwrap()),
                        error: FrameError::TextTooLong { max: 200 },
                        fatal: false
                    },
                    cmd(b"t2 NOOP"),
                ],
                "chunk {chunk}"
            );
        }
        // The count starts again with every command.
        let ev = run(b"t1 X {1+}\r\na\r\nt2 X {1+}\r\nb\r\n", 3, l);
        assert_eq!(ev, vec![cmd(b"t1 X {1+}\r\na"), cmd(b"t2 X {1+}\r\nb")]);
    }

    /// Found by the `framer` fuzz target: an overlong line whose first space comes after
    /// `max_line` bytes was answered with that "tag" when it arrived whole, untagged when it
    /// arrived in small pieces.
    #[test]
    fn tag_of_an_overlong_line_does_not_depend_on_chunking() {
        let mut input = b"d".to_vec();
        input.extend_from_slice(&[b'x'; 150]);
        input.extend_from_slice(b" {3+}\r\n\r\n\r\nt2 NOOP\r\n");
        let expected = vec![
            FrameEvent::Rejected { tag: None, error: FrameError::LineTooLong { max: 64 }, fatal: false },
            cmd(b"t2 NOOP"),
        ];
        for chunk in [1, 2, 7, 64, 1000] {
            assert_eq!(run(&input, chunk, limits()), expected, "chunk {chunk}");
        }
        // A tag within the first max_line bytes is found either way.
        let mut input = b"t1 ".to_vec();
        input.extend_from_slice(&[b'x'; 150]);
        input.extend_from_slice(b"\r\n");
        for chunk in [1, 1000] {
            let ev = run(&input, chunk, limits());
            assert!(
                matches!(&ev[0], FrameEvent::Rejected { tag: Some(t), .. } if t.as_str() == "t1"),
                "{ev:?}"
            );
        }
    }

    /// Found by the `framer` fuzz target: an overlong line ending in a non-synchronizing
    /// literal too big to skip gave one fatal LineTooLong when the line arrived whole, but a
    /// LineTooLong and then a fatal LiteralTooLarge when it arrived in pieces.
    #[test]
    fn overlong_line_ending_in_a_huge_literal_gives_the_same_events_in_any_chunking() {
        let mut input = b"t1 X ".to_vec();
        input.extend_from_slice(&[b'a'; 100]);
        input.extend_from_slice(b" {9999991+}\r\nd\r\n");
        let expected = vec![
            FrameEvent::Rejected {
                tag: Some(Tag::new("t1").unwrap()),
                error: FrameError::LineTooLong { max: 64 },
                fatal: false,
            },
            FrameEvent::Rejected {
                tag: Some(Tag::new("t1").unwrap()),
                error: FrameError::LiteralTooLarge { size: 9_999_991, max: 100 },
                fatal: true,
            },
        ];
        for chunk in 1..=input.len() {
            assert_eq!(run(&input, chunk, limits()), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn gated_literals_wait_for_the_drivers_decision() {
        let mut f = Framer::new(limits());
        f.gate_literals(true);
        f.push(b"a APPEND x {3}\r\nabc b APPEND y {2+}\r\nde\r\n");
        assert_eq!(f.next(), Some(FrameEvent::LiteralAnnounced { size: 3, sync: true }));
        // Nothing moves until the driver decides.
        assert_eq!(f.next(), None);
        assert!(f.accept_literal(), "a synchronizing literal needs the continuation");
        assert_eq!(f.next(), Some(FrameEvent::LiteralAnnounced { size: 2, sync: false }));
        assert!(!f.accept_literal());
        assert_eq!(f.next(), Some(cmd(b"a APPEND x {3}\r\nabc b APPEND y {2+}\r\nde")));
        assert_eq!(f.next(), None);

        // Refused: a synchronizing literal is never sent, the next command follows at once.
        f.push(b"c APPEND x {3}\r\nd NOOP\r\n");
        assert_eq!(f.next(), Some(FrameEvent::LiteralAnnounced { size: 3, sync: true }));
        assert_eq!(
            f.refuse_literal(FrameError::Busy),
            Some(FrameEvent::Rejected {
                tag: Some(Tag::from_bytes(b"c").unwrap()),
                error: FrameError::Busy,
                fatal: false
            })
        );
        assert_eq!(f.next(), Some(cmd(b"d NOOP")));
        // A refused non-synchronizing literal is read and thrown away with the rest of its command.
        f.push(b"e APPEND x {3+}\r\nabc\r\nf NOOP\r\n");
        assert!(matches!(f.next(), Some(FrameEvent::LiteralAnnounced { size: 3, sync: false })));
        assert!(matches!(
            f.refuse_literal(FrameError::Busy),
            Some(FrameEvent::Rejected { fatal: false, .. })
        ));
        assert_eq!(f.next(), Some(cmd(b"f NOOP")));
        assert_eq!(f.next(), None);
        assert!(!f.accept_literal(), "nothing announced");
        assert_eq!(f.refuse_literal(FrameError::Busy), None);
    }

    #[test]
    fn new_limits_apply_to_the_next_command() {
        let mut small = limits();
        small.max_line = 20;
        let mut f = Framer::new(small);
        f.push(b"t1 LOGIN a-rather-long-user pw\r\n");
        assert!(matches!(
            f.next(),
            Some(FrameEvent::Rejected { error: FrameError::LineTooLong { max: 20 }, .. })
        ));
        assert_eq!(f.next(), None);
        f.set_limits(limits());
        assert_eq!(f.limits().max_line, 64);
        f.push(b"t2 LOGIN a-rather-long-user pw\r\n");
        assert_eq!(f.next(), Some(cmd(b"t2 LOGIN a-rather-long-user pw")));
    }

    #[test]
    fn idle_framer_releases_its_buffers() {
        let mut f = Framer::new(limits());
        f.push(b"t1 NOOP\r\nt2 NO");
        assert_eq!(f.next(), Some(cmd(b"t1 NOOP")));
        assert_eq!(f.next(), None);
        // A partial command is kept.
        f.release_unused_memory();
        assert_eq!(f.buffered(), 5);
        f.push(b"OP\r\n");
        assert_eq!(f.next(), Some(cmd(b"t2 NOOP")));
        assert_eq!(f.next(), None);
        f.release_unused_memory();
        assert_eq!(f.buf.capacity() + f.cmd.capacity(), 0, "nothing held while idle");
        f.push(b"t3 NOOP\r\n");
        assert_eq!(f.next(), Some(cmd(b"t3 NOOP")));
    }

    #[test]
    fn untagged_garbage_and_empty_lines() {
        let mut input = vec![b'('; 100];
        input.extend_from_slice(b"\r\n\r\n");
        let ev = run(&input, 9, limits());
        assert_eq!(
            ev,
            vec![
                FrameEvent::Rejected { tag: None, error: FrameError::LineTooLong { max: 64 }, fatal: false },
                cmd(b""),
            ]
        );
    }

    #[test]
    fn next_line_and_discard() {
        let mut f = Framer::new(limits());
        f.push(b"dGVzdA==\r\nDONE\nt1 NOOP\r\n");
        assert_eq!(f.next_line(), Some(Ok(b"dGVzdA==".to_vec())));
        assert_eq!(f.next_line(), Some(Ok(b"DONE".to_vec())));
        f.discard_buffered();
        assert_eq!(f.next(), None);
        assert_eq!(f.buffered(), 0);
        f.push(b"a\r");
        assert_eq!(f.next_line(), None);
        f.push(&[b'x'; 100]);
        assert_eq!(f.next_line(), Some(Err(FrameError::LineTooLong { max: 64 })));
        f.push(b"t1 NOOP\r\n");
        assert_eq!(f.next(), None);
    }

    /// Issue 17: a literal lands in the command buffer reserved for it when it was announced;
    /// the buffer is never reallocated (copied) while the data arrives, and the framed command
    /// is handed out as that very allocation.
    #[test]
    fn a_literal_fills_its_reserved_buffer_without_reallocation() {
        let size = 3 * 1024 * 1024;
        let mut f = Framer::new(FramingLimits::default());
        f.push(format!("a APPEND INBOX {{{size}+}}\r\n").as_bytes());
        assert_eq!(f.next(), None);
        let reserved = (f.cmd.as_ptr(), f.cmd.capacity());
        assert!(reserved.1 >= size + 20);
        let chunk = vec![b'x'; 8192];
        let mut sent = 0;
        while sent < size {
            let n = chunk.len().min(size - sent);
            f.push(&chunk[..n]);
            sent += n;
            assert_eq!(f.next(), None);
            assert_eq!((f.cmd.as_ptr(), f.cmd.capacity()), reserved, "reallocated after {sent} bytes");
        }
        f.push(b"\r\n");
        let Some(FrameEvent::Command(command)) = f.next() else { panic!("no command") };
        assert_eq!((command.as_ptr(), command.capacity()), reserved);
        // Parsed as shared bytes, the message is a slice of that same allocation.
        let command = bytes::Bytes::from(command);
        let parsed = crate::parse_command_bytes(&command).unwrap();
        let crate::types::CommandBody::Append { messages, .. } = parsed.body else { panic!() };
        assert_eq!(messages[0].data.literal().unwrap().len(), size);
        let start = command.as_ptr() as usize;
        let data = messages[0].data.literal().unwrap().as_ptr() as usize;
        assert!(data > start && data + size <= start + command.len(), "the message was copied");
    }

    #[test]
    fn take_buffered_hands_over_what_follows_a_command() {
        let mut f = Framer::new(limits());
        f.push(b"c COMPRESS DEFLATE\r\n\x01\x02\xff");
        assert_eq!(f.next(), Some(cmd(b"c COMPRESS DEFLATE")));
        assert_eq!(f.take_buffered(), vec![1, 2, 0xff]);
        assert_eq!(f.buffered(), 0);
        assert_eq!(f.take_buffered(), Vec::<u8>::new());
        f.push(b"d NOOP\r\n");
        assert_eq!(f.next(), Some(cmd(b"d NOOP")));
    }

    #[test]
    fn random_input_never_panics() {
        // A small deterministic xorshift; exercises odd markers, CR/LF and braces.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"{}+~0123456789\r\n a";
        for _ in 0..300 {
            let mut input = Vec::new();
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                input.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let mut f = Framer::new(limits());
            for c in input.chunks(((x >> 20) % 13 + 1) as usize) {
                f.push(c);
                while let Some(ev) = f.next() {
                    if let FrameEvent::Command(c) = ev {
                        assert!(c.len() <= 300);
                    }
                }
                assert!(f.buffered() <= 300 + 64 + 13);
            }
        }
    }
}
