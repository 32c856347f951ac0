//! The LMTP session (RFC 2033), sans-I/O: the server's `lmtp_conn` pushes received bytes into
//! [`LmtpSession::input`] and writes the reply bytes it gets back; the session never touches a
//! socket. Commands may be pipelined (RFC 2920): every complete command in the input is
//! answered in order.
//!
//! Supported: LHLO (with PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME and SIZE), MAIL FROM (SIZE,
//! BODY), RCPT TO, DATA with one reply per accepted recipient (RFC 2033 §4.2), RSET, NOOP,
//! VRFY (252), HELP, QUIT. Every reply carries an RFC 3463 enhanced status code. A recipient
//! over quota is refused with `452 4.2.2` (or `552 5.2.2`, the site's choice; always for a
//! message the quota could never hold): at RCPT when its quota root is full already, else after
//! DATA, with nothing stored for it.
//!
//! Limits ([`LmtpLimits`]): command lines, recipients per transaction and message size are
//! bounded; a message over the size limit is read to its end and discarded, then refused for
//! every recipient. Too many bad commands end the session. Timeouts are the driver's job.

use std::sync::Arc;

use crate::address::SmtpPath;
use crate::deliver::{
    Deliverer, DeliveryStatus, Envelope, LocalRecipient, OverQuotaAnswer, Protocol, RecipientError,
};

/// Bounds of one LMTP session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmtpLimits {
    /// Longest command line, CRLF included. RFC 5321 §4.5.3.1.4 says 512 octets; ESMTP
    /// parameters make lines longer, so the default is 2048.
    pub max_line: usize,
    /// Most recipients per transaction (RFC 5321 §4.5.3.1.8: at least 100). Default 1000.
    pub max_recipients: usize,
    /// Largest message, in bytes (advertised with SIZE, RFC 1870).
    pub max_message_size: usize,
    /// Bad commands tolerated before the session is closed. Default 20.
    pub max_errors: usize,
}

impl Default for LmtpLimits {
    fn default() -> Self {
        LmtpLimits {
            max_line: 2048,
            max_recipients: 1000,
            max_message_size: 50 * 1024 * 1024,
            max_errors: 20,
        }
    }
}

/// Whether the driver should keep the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read more input.
    Continue,
    /// Write the replies, then close the connection.
    Close,
}

/// Where the session is (RFC 5321 §4.1.4 command ordering).
#[derive(Debug)]
enum State {
    /// Before LHLO.
    Greeted,
    /// After LHLO, no transaction.
    Ready,
    /// After MAIL FROM: collecting recipients.
    Mail(Transaction),
    /// After DATA's 354: collecting the message.
    Data(Transaction, DataReader),
}

#[derive(Debug)]
struct Transaction {
    reverse_path: String,
    recipients: Vec<LocalRecipient>,
    /// Every RCPT, accepted or not (bounded by `max_recipients`).
    attempts: usize,
}

/// Collects DATA lines: undoes dot-stuffing (RFC 5321 §4.5.2) and finds the end `.` line.
#[derive(Debug, Default)]
struct DataReader {
    message: Vec<u8>,
    at_line_start: bool,
    /// The message grew past the limit; the rest is read and thrown away.
    too_big: bool,
}

/// What [`DataReader::feed`] found.
enum DataProgress {
    /// The whole input was taken; more is needed.
    NeedMore,
    /// The end line was reached (and consumed).
    Done,
}

impl DataReader {
    fn new() -> Self {
        DataReader { message: Vec::new(), at_line_start: true, too_big: false }
    }

    fn take(&mut self, bytes: &[u8], limit: usize) {
        if self.too_big {
            return;
        }
        if self.message.len() + bytes.len() > limit {
            self.too_big = true;
            self.message = Vec::new();
            return;
        }
        self.message.extend_from_slice(bytes);
    }

    /// Consumes message bytes from `input`; returns how far it got. Bytes that cannot be
    /// judged yet (a trailing CR, a lone dot at a line start) are left in `input`.
    fn feed(&mut self, input: &[u8], limit: usize) -> (usize, DataProgress) {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            if self.at_line_start && rest[0] == b'.' {
                if rest.starts_with(b".\r\n") {
                    return (pos + 3, DataProgress::Done);
                }
                if rest.len() < 3 && b".\r\n".starts_with(rest) {
                    return (pos, DataProgress::NeedMore);
                }
                // RFC 5321 §4.5.2: a leading dot was doubled by the client; drop one.
                pos += 1;
                self.at_line_start = false;
                continue;
            }
            match rest.windows(2).position(|w| w == b"\r\n") {
                Some(i) => {
                    self.take(&rest[..i + 2], limit);
                    pos += i + 2;
                    self.at_line_start = true;
                }
                None => {
                    // Keep a trailing CR: it may start the CRLF of the next read.
                    let keep = usize::from(rest.ends_with(b"\r"));
                    self.take(&rest[..rest.len() - keep], limit);
                    self.at_line_start = false;
                    pos = input.len() - keep;
                    return (pos, DataProgress::NeedMore);
                }
            }
        }
        (pos, DataProgress::NeedMore)
    }
}

/// Dot-stuffs a message for sending with DATA (RFC 5321 §4.5.2) and terminates it: a line that
/// starts with "." gets another one, the message ends with CRLF, then the end line ".".
/// For SMTP and LMTP clients (the relay, `postfach deliver`).
#[must_use]
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut line_start = true;
    for &b in message {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !message.is_empty() && !message.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The reply for a recipient over quota (RFC 3463 X.2.2: mailbox full).
fn over_quota_reply(answer: OverQuotaAnswer, address: &str) -> String {
    match answer {
        OverQuotaAnswer::Temporary => format!("452 4.2.2 <{address}> Mailbox over quota"),
        OverQuotaAnswer::Permanent => format!("552 5.2.2 <{address}> Mailbox over quota"),
    }
}

/// One LMTP connection's protocol state.
pub struct LmtpSession {
    deliverer: Arc<Deliverer>,
    limits: LmtpLimits,
    peer: Option<String>,
    helo: Option<String>,
    state: State,
    input: Vec<u8>,
    /// Discarding the rest of an over-long command line.
    skipping_line: bool,
    errors: usize,
}

impl std::fmt::Debug for LmtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmtpSession")
            .field("peer", &self.peer)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Appends one reply line.
fn reply(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl LmtpSession {
    /// A session for a client at `peer` (an IP address, or e.g. "unix" for a unix socket).
    #[must_use]
    pub fn new(deliverer: Arc<Deliverer>, limits: LmtpLimits, peer: Option<String>) -> LmtpSession {
        LmtpSession {
            deliverer,
            limits,
            peer,
            helo: None,
            state: State::Greeted,
            input: Vec::new(),
            skipping_line: false,
            errors: 0,
        }
    }

    /// The greeting to send when the connection opens (RFC 5321 §4.2: 220).
    #[must_use]
    pub fn greeting(&self) -> Vec<u8> {
        format!("220 {} LMTP Postfach ready\r\n", self.deliverer.config().hostname).into_bytes()
    }

    /// The line to send before closing because the client was silent too long
    /// (RFC 5321 §4.5.3.2: the server may close with 421).
    #[must_use]
    pub fn timeout_reply(&self) -> Vec<u8> {
        format!("421 4.4.2 {} Timeout; closing connection\r\n", self.deliverer.config().hostname).into_bytes()
    }

    /// The line to send before closing for a server shutdown (RFC 5321 §3.8).
    #[must_use]
    pub fn shutdown_reply(&self) -> Vec<u8> {
        format!("421 4.3.2 {} Service shutting down\r\n", self.deliverer.config().hostname).into_bytes()
    }

    /// True while a transaction (MAIL … DATA) is open; the driver may use it to wait a little
    /// longer before a shutdown.
    #[must_use]
    pub fn in_transaction(&self) -> bool {
        matches!(self.state, State::Mail(_) | State::Data(..))
    }

    /// Processes `bytes` from the client and appends the replies to `out`. Runs deliveries to
    /// their end (the replies after DATA come only once the message is durable).
    pub async fn input(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Flow {
        self.input.extend_from_slice(bytes);
        let mut consumed = 0;
        let flow = loop {
            let pending = &self.input[consumed..];
            if pending.is_empty() {
                break Flow::Continue;
            }
            if let State::Data(_, reader) = &mut self.state {
                let (used, progress) = reader.feed(pending, self.limits.max_message_size);
                consumed += used;
                match progress {
                    DataProgress::NeedMore => break Flow::Continue,
                    DataProgress::Done => {
                        self.finish_data(out).await;
                        continue;
                    }
                }
            }
            let Some(end) = pending.iter().position(|&b| b == b'\n') else {
                if pending.len() > self.limits.max_line {
                    // Drop what we have; the rest of the line goes when its LF comes.
                    consumed = self.input.len();
                    if !self.skipping_line {
                        self.skipping_line = true;
                        if self.error(out, "500 5.5.2 Line too long") == Flow::Close {
                            break Flow::Close;
                        }
                    }
                }
                break Flow::Continue;
            };
            let line_bytes = pending[..end].strip_suffix(b"\r").unwrap_or(&pending[..end]).to_vec();
            consumed += end + 1;
            if std::mem::take(&mut self.skipping_line) {
                continue;
            }
            if line_bytes.len() + 2 > self.limits.max_line {
                if self.error(out, "500 5.5.2 Line too long") == Flow::Close {
                    break Flow::Close;
                }
                continue;
            }
            if self.command(&line_bytes, out).await == Flow::Close {
                break Flow::Close;
            }
        };
        self.input.drain(..consumed.min(self.input.len()));
        flow
    }

    /// Counts a bad command and replies; closes after too many.
    fn error(&mut self, out: &mut Vec<u8>, text: &str) -> Flow {
        reply(out, text);
        self.errors += 1;
        if self.errors >= self.limits.max_errors {
            reply(out, "421 4.7.0 Too many errors; closing connection");
            return Flow::Close;
        }
        Flow::Continue
    }

    async fn command(&mut self, line: &[u8], out: &mut Vec<u8>) -> Flow {
        let Ok(line) = std::str::from_utf8(line) else {
            return self.error(out, "500 5.5.2 Command is not UTF-8");
        };
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v, a.trim()),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "LHLO" => self.lhlo(arg, out),
            // RFC 2033 §4.1: LMTP has LHLO instead of HELO and EHLO.
            "HELO" | "EHLO" => self.error(out, "500 5.5.1 This is LMTP: use LHLO"),
            "MAIL" => self.mail(arg, out),
            "RCPT" => self.rcpt(arg, out).await,
            "DATA" => self.data(arg, out),
            "RSET" => {
                if !matches!(self.state, State::Greeted) {
                    self.state = State::Ready;
                }
                reply(out, "250 2.0.0 Ok");
                Flow::Continue
            }
            "NOOP" => {
                reply(out, "250 2.0.0 Ok");
                Flow::Continue
            }
            // RFC 5321 §3.5.3: 252 when we will not verify.
            "VRFY" => {
                reply(out, "252 2.5.2 Cannot VRFY user; send mail and LMTP will answer per recipient");
                Flow::Continue
            }
            "HELP" => {
                reply(out, "214 2.0.0 Commands: LHLO MAIL RCPT DATA RSET NOOP VRFY QUIT");
                Flow::Continue
            }
            "QUIT" => {
                reply(out, &format!("221 2.0.0 {} Bye", self.deliverer.config().hostname));
                Flow::Close
            }
            "" => self.error(out, "500 5.5.2 Empty command"),
            _ => self.error(out, "500 5.5.2 Command not recognized"),
        }
    }

    fn lhlo(&mut self, arg: &str, out: &mut Vec<u8>) -> Flow {
        if arg.is_empty() {
            return self.error(out, "501 5.5.4 LHLO needs a host name");
        }
        // RFC 5321 §4.1.4: like EHLO, LHLO resets any transaction.
        self.helo = Some(arg.chars().take(255).collect());
        self.state = State::Ready;
        let host = &self.deliverer.config().hostname;
        reply(out, &format!("250-{host}"));
        reply(out, "250-PIPELINING");
        reply(out, "250-ENHANCEDSTATUSCODES");
        reply(out, "250-8BITMIME");
        reply(out, &format!("250 SIZE {}", self.limits.max_message_size));
        Flow::Continue
    }

    fn mail(&mut self, arg: &str, out: &mut Vec<u8>) -> Flow {
        match self.state {
            State::Greeted => return self.error(out, "503 5.5.1 Send LHLO first"),
            State::Mail(_) | State::Data(..) => return self.error(out, "503 5.5.1 Nested MAIL command"),
            State::Ready => {}
        }
        let path = match SmtpPath::parse(arg, "FROM") {
            Ok(path) => path,
            Err(e) => return self.error(out, &format!("501 5.5.4 {e}")),
        };
        for (key, value) in &path.params {
            match (key.as_str(), value.as_deref()) {
                // RFC 1870 §6: refuse early what will not fit.
                ("SIZE", Some(v)) => match v.parse::<u64>() {
                    Ok(n) if n > self.limits.max_message_size as u64 => {
                        reply(out, "552 5.3.4 Message size exceeds the fixed maximum message size");
                        return Flow::Continue;
                    }
                    Ok(_) => {}
                    Err(_) => return self.error(out, "501 5.5.4 Bad SIZE value"),
                },
                // RFC 6152: 8BITMIME; 7BIT is the default body type.
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") || v.eq_ignore_ascii_case("7BIT") => {
                }
                _ => return self.error(out, &format!("555 5.5.4 Unsupported parameter {key}")),
            }
        }
        self.state =
            State::Mail(Transaction { reverse_path: path.address, recipients: Vec::new(), attempts: 0 });
        reply(out, "250 2.1.0 Ok");
        Flow::Continue
    }

    async fn rcpt(&mut self, arg: &str, out: &mut Vec<u8>) -> Flow {
        let max = self.limits.max_recipients;
        let State::Mail(txn) = &mut self.state else {
            return self.error(out, "503 5.5.1 Send MAIL first");
        };
        if txn.attempts >= max {
            // RFC 5321 §4.5.3.1.10: 452 makes the client send the rest in another transaction.
            reply(out, "452 4.5.3 Too many recipients");
            return Flow::Continue;
        }
        txn.attempts += 1;
        let path = match SmtpPath::parse(arg, "TO") {
            Ok(path) => path,
            Err(e) => return self.error(out, &format!("501 5.5.4 {e}")),
        };
        if let Some((key, _)) = path.params.first() {
            return self.error(out, &format!("555 5.5.4 Unsupported parameter {key}"));
        }
        if path.address.is_empty() {
            return self.error(out, "501 5.1.3 Empty recipient address");
        }
        let resolved = self.deliverer.resolve(&path.address).await;
        // A quota root that is full already is refused here, before the message is sent (as
        // Dovecot's lmtp_rcpt_check_quota does); one that fills up on the way is caught at DATA.
        let full = match &resolved {
            Ok(recipient) => self.deliverer.over_quota(recipient).await,
            Err(_) => None,
        };
        let State::Mail(txn) = &mut self.state else { return Flow::Continue };
        if let Some(answer) = full {
            reply(out, &over_quota_reply(answer, &path.address));
            return Flow::Continue;
        }
        match resolved {
            Ok(recipient) => {
                txn.recipients.push(recipient);
                reply(out, "250 2.1.5 Ok");
            }
            // RFC 3463: X.1.1 bad destination mailbox address.
            Err(RecipientError::Unknown) => {
                reply(out, &format!("550 5.1.1 <{}> User unknown", path.address));
            }
            Err(RecipientError::BadAddress(why)) => reply(out, &format!("501 5.1.3 {why}")),
            Err(RecipientError::Temporary(e)) => {
                tracing::warn!(error = %e, "recipient lookup failed");
                reply(out, "451 4.3.0 Temporary failure; try again later");
            }
        }
        Flow::Continue
    }

    fn data(&mut self, arg: &str, out: &mut Vec<u8>) -> Flow {
        if !arg.is_empty() {
            return self.error(out, "501 5.5.4 DATA takes no arguments");
        }
        match std::mem::replace(&mut self.state, State::Ready) {
            // RFC 2033 §4.2: without an accepted recipient, DATA fails with 503.
            State::Mail(txn) if !txn.recipients.is_empty() => {
                self.state = State::Data(txn, DataReader::new());
                reply(out, "354 2.0.0 Start mail input; end with <CRLF>.<CRLF>");
                Flow::Continue
            }
            State::Mail(txn) => {
                self.state = State::Mail(txn);
                self.error(out, "503 5.5.1 No valid recipients")
            }
            other => {
                self.state = other;
                self.error(out, "503 5.5.1 Send MAIL and RCPT first")
            }
        }
    }

    /// The end of DATA: one reply per accepted recipient, in RCPT order (RFC 2033 §4.2).
    async fn finish_data(&mut self, out: &mut Vec<u8>) {
        let State::Data(txn, reader) = std::mem::replace(&mut self.state, State::Ready) else { return };
        if reader.too_big {
            for _ in &txn.recipients {
                reply(out, "552 5.3.4 Message size exceeds the fixed maximum message size");
            }
            return;
        }
        let envelope = Envelope {
            reverse_path: txn.reverse_path,
            helo: self.helo.clone(),
            peer: self.peer.clone(),
            protocol: Protocol::Lmtp,
        };
        let statuses = self.deliverer.deliver(&envelope, reader.message, &txn.recipients).await;
        for (rcpt, status) in txn.recipients.iter().zip(statuses) {
            let line = match status {
                DeliveryStatus::Delivered { .. } => format!("250 2.0.0 <{}> Delivered", rcpt.address),
                DeliveryStatus::NotStored => format!("250 2.0.0 <{}> Accepted", rcpt.address),
                DeliveryStatus::TemporaryFailure(_) => {
                    format!("451 4.3.0 <{}> Temporary failure; try again later", rcpt.address)
                }
                DeliveryStatus::PermanentFailure(why) => format!("552 5.3.4 <{}> {why}", rcpt.address),
                DeliveryStatus::OverQuota(answer) => over_quota_reply(answer, &rcpt.address),
            };
            reply(out, &line);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read_all(chunks: &[&[u8]]) -> (Vec<u8>, bool, usize) {
        let mut reader = DataReader::new();
        let mut buffer = Vec::new();
        for chunk in chunks {
            buffer.extend_from_slice(chunk);
            let (used, progress) = reader.feed(&buffer, 1000);
            buffer.drain(..used);
            if let DataProgress::Done = progress {
                return (reader.message, true, buffer.len());
            }
        }
        (reader.message, false, buffer.len())
    }

    #[test]
    fn dot_stuffing_and_the_end_line() {
        let (m, done, left) = read_all(&[b"a\r\n..b\r\n.\r\nQUIT\r\n"]);
        assert_eq!(m, b"a\r\n.b\r\n");
        assert!(done);
        assert_eq!(left, 6);
        // Split anywhere, including inside CRLF and right after a line-start dot.
        let whole: &[u8] = b"line one\r\n..dot\r\n.\r\n";
        for cut in 0..whole.len() {
            let (m, done, _) = read_all(&[&whole[..cut], &whole[cut..]]);
            assert!(done, "cut at {cut}");
            assert_eq!(m, b"line one\r\n.dot\r\n", "cut at {cut}");
        }
        // A bare ".x" line start is unstuffed, a dot mid-line is not.
        let (m, _, _) = read_all(&[b".x a.b\r\n.\r\n"]);
        assert_eq!(m, b"x a.b\r\n");
        // The end line must be at a line start.
        let (_, done, _) = read_all(&[b"a.\r\n"]);
        assert!(!done);
    }

    #[test]
    fn dot_stuffing_round_trips() {
        let message: &[u8] = b".starts with a dot\r\nmiddle . dot\r\n.\r\n..two\r\nno final line end";
        let stuffed = dot_stuff(message);
        assert!(stuffed.starts_with(b"..starts"));
        let (m, done, left) = read_all(&[&stuffed]);
        assert!(done);
        assert_eq!(left, 0);
        assert_eq!(m, [message, b"\r\n"].concat());
        assert_eq!(dot_stuff(b""), b".\r\n");
    }

    #[test]
    fn oversized_messages_are_drained() {
        let mut reader = DataReader::new();
        let big = vec![b'x'; 3000];
        let (used, _) = reader.feed(&big, 1000);
        assert_eq!(used, 3000);
        assert!(reader.too_big);
        assert!(reader.message.is_empty());
        let (_, progress) = reader.feed(b"\r\n.\r\n", 1000);
        assert!(matches!(progress, DataProgress::Done));
    }
}
