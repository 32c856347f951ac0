//! Drives one POP3 connection: lines from the socket → [`Session`] → bytes to the socket.
//!
//! The session decides what POP3 means; this module reads lines (each bounded: a command line
//! [`MAX_COMMAND_LINE`], an AUTH response [`MAX_SASL_LINE`]), writes answers, streams RETR and
//! TOP in chunks, and obeys [`Next`]: STLS upgrades the stream in place after throwing away
//! whatever the client sent behind the command (RFC 2595 §4, no command injection), Close ends
//! the connection.
//!
//! Pipelining (RFC 2449 §6.6): commands run one after another; answers to commands already
//! received are collected and written together, once no complete line is waiting or about
//! 64 KiB are pending. Timeouts measure client silence (and each write): `[pop3] timeout`,
//! before login also bounded by the login deadline from accept. On shutdown the command in
//! flight finishes and the client gets `-ERR [SYS/TEMP] Server shutting down`; `postfach kick`
//! ends a session the same way. Neither enters UPDATE: nothing is expunged.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use postfach_secret::Secret;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tokio::time::{Instant, timeout};
use tracing::debug;

use super::maildrop::OUTPUT_CHUNK;
use super::session::{Next, Session};
use super::{MAX_COMMAND_LINE, MAX_SASL_LINE, Pop3Settings};
use crate::binding::channel_binding;
use crate::imap_conn::{CLOSE_GRACE, ConnSettings, Stream, shutdown_requested, write_within};
use crate::listener::TLS_BUFFER_LIMIT;
use crate::sessions::Registration;

/// Most bytes one read takes from the socket.
const READ_CHUNK: usize = 8 * 1024;
/// What `who` shows as the selected mailbox of a logged-in POP3 session.
const SHOWN_MAILBOX: &str = "INBOX (POP3)";

/// Runs one connection to its end. `accepted` starts the login deadline.
pub(crate) async fn run<S>(
    stream: Stream<S>,
    session: Session,
    settings: Arc<ConnSettings>,
    pop3: Arc<Pop3Settings>,
    shutdown: watch::Receiver<bool>,
    accepted: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut driver = Driver {
        registration: settings.sessions.register(),
        login_deadline: accepted + pop3.login_deadline,
        lines: Lines::default(),
        out: Vec::new(),
        session,
        settings,
        pop3,
        shutdown,
    };
    driver.report();
    if let Err(e) = driver.serve(stream).await {
        debug!(error = %e, "POP3 connection ended by an I/O error");
    }
}

/// Why `Driver::drive` returned.
enum Exit {
    /// Close cleanly (after QUIT or a final `-ERR`).
    Close,
    /// Upgrade to TLS, then go on.
    StartTls,
    /// The client is gone.
    Gone,
}

/// What waiting for input produced.
enum Input {
    Data,
    Eof,
    TimedOut,
    Shutdown,
    Kicked,
}

struct Driver {
    session: Session,
    lines: Lines,
    /// Answers not written yet.
    out: Vec<u8>,
    login_deadline: Instant,
    settings: Arc<ConnSettings>,
    pop3: Arc<Pop3Settings>,
    shutdown: watch::Receiver<bool>,
    registration: Registration,
}

impl Driver {
    async fn serve<S>(&mut self, mut stream: Stream<S>) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        self.session.greeting(&mut self.out);
        self.flush(&mut stream).await?;
        loop {
            match self.drive(&mut stream).await? {
                Exit::Gone => return Ok(()),
                Exit::Close => {
                    let _ = timeout(CLOSE_GRACE, stream.shutdown()).await;
                    return Ok(());
                }
                Exit::StartTls => {
                    let Stream::Plain(plain) = stream else { return Ok(()) };
                    // RFC 2595 §4: nothing the client sent before the handshake may run.
                    self.lines = Lines::default();
                    let acceptor = self.settings.tls.clone();
                    match timeout(self.patience(), Box::pin(acceptor.accept(plain))).await {
                        Ok(Ok(mut tls)) => {
                            tls.get_mut().1.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
                            let binding =
                                channel_binding(tls.get_ref().1, self.settings.certificates.as_deref());
                            self.session.tls_started(binding);
                            stream = Stream::Tls(Box::new(tls));
                        }
                        Ok(Err(e)) => {
                            debug!(error = %e, "STLS handshake failed");
                            return Ok(());
                        }
                        Err(_) => {
                            debug!("STLS handshake timed out");
                            return Ok(());
                        }
                    }
                    self.report();
                    debug!("STLS completed");
                }
            }
        }
    }

    /// Runs commands until the connection must close or change its transport.
    async fn drive<S>(&mut self, stream: &mut Stream<S>) -> io::Result<Exit>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        loop {
            // Before login AUTH may carry a long initial response (a bearer token): see mod.rs;
            // other commands are held to MAX_COMMAND_LINE below.
            let limit = if self.session.in_sasl_exchange() || !self.session.is_authenticated() {
                MAX_SASL_LINE
            } else {
                MAX_COMMAND_LINE
            };
            let Some(line) = self.lines.next(limit) else {
                self.flush(stream).await?;
                match self.read(stream).await? {
                    Input::Data => continue,
                    Input::Eof => return Ok(Exit::Gone),
                    Input::TimedOut => {
                        let text =
                            if !self.session.is_authenticated() && Instant::now() >= self.login_deadline {
                                "Autologout; login took too long"
                            } else {
                                "Autologout; idle for too long"
                            };
                        return self.farewell(stream, text).await;
                    }
                    Input::Shutdown => return self.farewell(stream, "[SYS/TEMP] Server shutting down").await,
                    Input::Kicked => {
                        tracing::info!(
                            account = self.session.account().unwrap_or_default(),
                            "session ended by the administrator"
                        );
                        return self.farewell(stream, "Disconnected by the administrator").await;
                    }
                }
            };
            // Pipelined commands are not started once the server is stopping.
            if *self.shutdown.borrow() {
                return self.farewell(stream, "[SYS/TEMP] Server shutting down").await;
            }
            let next = match line {
                // Only AUTH may use the longer pre-login limit (its initial response).
                Line::Complete(line)
                    if line.len() + 2 > MAX_COMMAND_LINE
                        && !self.session.in_sasl_exchange()
                        && !line.get(..5).is_some_and(|p| p.eq_ignore_ascii_case(b"AUTH ")) =>
                {
                    self.session.line_too_long(&mut self.out)
                }
                Line::Complete(line) => Box::pin(self.session.handle(Secret::new(line), &mut self.out)).await,
                Line::TooLong => self.session.line_too_long(&mut self.out),
            };
            self.report();
            match next {
                Next::Continue => {}
                Next::Message(mut stuffer) => {
                    while stuffer.next_chunk(&mut self.out) {
                        if self.out.len() >= OUTPUT_CHUNK {
                            self.flush(stream).await?;
                        }
                    }
                }
                Next::Listing(mut listing) => {
                    while self.session.listing_chunk(&mut listing, &mut self.out) {
                        if self.out.len() >= OUTPUT_CHUNK {
                            self.flush(stream).await?;
                        }
                    }
                }
                Next::StartTls => {
                    self.flush(stream).await?;
                    return Ok(Exit::StartTls);
                }
                Next::Close => {
                    self.flush(stream).await?;
                    return Ok(Exit::Close);
                }
            }
            // Answers of pipelined commands go out together (RFC 2449 §6.6).
            if self.out.len() >= OUTPUT_CHUNK || !self.lines.has_line() {
                self.flush(stream).await?;
            }
        }
    }

    /// Ends the connection with `-ERR text` (no UPDATE).
    async fn farewell<S>(&mut self, stream: &mut Stream<S>, text: &str) -> io::Result<Exit>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        self.session.farewell(text, &mut self.out);
        self.flush(stream).await?;
        Ok(Exit::Close)
    }

    /// Waits for input, for as long as the session's state allows, or for shutdown or a kick.
    async fn read<S>(&mut self, stream: &mut Stream<S>) -> io::Result<Input>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        if !self.session.is_authenticated() && Instant::now() >= self.login_deadline {
            return Ok(Input::TimedOut);
        }
        let patience = self.patience();
        let read = tokio::select! {
            read = timeout(patience, read_into(stream, &mut self.lines.buf)) => read,
            _ = shutdown_requested(&mut self.shutdown) => return Ok(Input::Shutdown),
            _ = self.registration.kicked() => return Ok(Input::Kicked),
        };
        match read {
            Err(_) => Ok(Input::TimedOut),
            Ok(Ok(0)) => Ok(Input::Eof),
            Ok(Ok(_)) => Ok(Input::Data),
            Ok(Err(e)) => Err(e),
        }
    }

    /// Writes the pending answers.
    async fn flush<S>(&mut self, stream: &mut Stream<S>) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let patience = self.patience();
        let result = write_within(stream, &self.out, patience).await;
        self.out.clear();
        if self.out.capacity() > 2 * OUTPUT_CHUNK {
            self.out.shrink_to(OUTPUT_CHUNK);
        }
        result
    }

    /// How long the client may keep us waiting: the silence timeout, before login no later
    /// than the login deadline.
    fn patience(&self) -> std::time::Duration {
        if self.session.is_authenticated() {
            self.pop3.timeout
        } else {
            self.pop3.timeout.min(self.login_deadline.saturating_duration_since(Instant::now()))
        }
    }

    /// Tells the session table (`postfach who`) who is logged in.
    fn report(&self) {
        let account = self.session.account();
        self.registration.record(self.session.connection(), account, account.map(|_| SHOWN_MAILBOX));
    }
}

/// One line taken from the input.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line without its CRLF (or bare LF).
    Complete(Vec<u8>),
    /// A line over the limit, thrown away.
    TooLong,
}

/// Received bytes not yet taken as lines. Holds at most a line's limit plus one read.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
    /// Throwing away the rest of an over-long line.
    skipping: bool,
}

impl Lines {
    /// The next complete line, if one is buffered; `limit` counts the line with its CRLF.
    fn next(&mut self, limit: usize) -> Option<Line> {
        loop {
            let lf = self.buf.iter().position(|b| *b == b'\n');
            if self.skipping {
                match lf {
                    Some(lf) => {
                        self.buf.drain(..=lf);
                        self.skipping = false;
                        return Some(Line::TooLong);
                    }
                    None => {
                        self.buf.clear();
                        return None;
                    }
                }
            }
            match lf {
                Some(lf) if lf + 1 > limit => {
                    self.buf.drain(..=lf);
                    return Some(Line::TooLong);
                }
                Some(lf) => {
                    let mut line: Vec<u8> = self.buf.drain(..=lf).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if self.buf.is_empty() {
                        // Do not keep a large buffer for an idle connection.
                        self.buf = Vec::new();
                    }
                    return Some(Line::Complete(line));
                }
                None if self.buf.len() >= limit => {
                    self.skipping = true;
                }
                None => return None,
            }
        }
    }

    /// True when a complete line (or the end of a skipped one) is buffered.
    fn has_line(&self) -> bool {
        self.buf.contains(&b'\n')
    }
}

/// Reads once from `stream` (at most [`READ_CHUNK`] bytes) onto the end of `buf`; returns the
/// count, 0 at end of stream. The read buffer lives only during the poll.
async fn read_into<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut chunk = [0u8; READ_CHUNK];
        let mut read_buf = ReadBuf::new(&mut chunk);
        match Pin::new(&mut *stream).poll_read(cx, &mut read_buf) {
            Poll::Ready(Ok(())) => {
                buf.extend_from_slice(read_buf.filled());
                Poll::Ready(Ok(read_buf.filled().len()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_bounded() {
        let mut lines = Lines::default();
        lines.buf.extend_from_slice(b"STAT\r\nLIST 1\nRE");
        assert_eq!(lines.next(255), Some(Line::Complete(b"STAT".to_vec())));
        assert!(lines.has_line());
        assert_eq!(lines.next(255), Some(Line::Complete(b"LIST 1".to_vec())));
        assert_eq!(lines.next(255), None);
        assert!(!lines.has_line());
        lines.buf.extend_from_slice(b"TR 1\r\n");
        assert_eq!(lines.next(255), Some(Line::Complete(b"RETR 1".to_vec())));

        // 253 characters and CRLF fit; one more does not.
        let mut fits = vec![b'a'; 253];
        fits.extend_from_slice(b"\r\n");
        lines.buf.extend_from_slice(&fits);
        assert!(matches!(lines.next(255), Some(Line::Complete(l)) if l.len() == 253));
        let mut over = vec![b'a'; 254];
        over.extend_from_slice(b"\r\nNOOP\r\n");
        lines.buf.extend_from_slice(&over);
        assert_eq!(lines.next(255), Some(Line::TooLong));
        assert_eq!(lines.next(255), Some(Line::Complete(b"NOOP".to_vec())));
    }

    #[test]
    fn an_endless_line_is_thrown_away_as_it_comes() {
        let mut lines = Lines::default();
        for _ in 0..100 {
            lines.buf.extend_from_slice(&[b'x'; READ_CHUNK]);
            assert_eq!(lines.next(255), None);
            assert!(lines.buf.is_empty(), "nothing of the long line is kept");
        }
        lines.buf.extend_from_slice(b"xx\r\nQUIT\r\n");
        assert_eq!(lines.next(255), Some(Line::TooLong));
        assert_eq!(lines.next(255), Some(Line::Complete(b"QUIT".to_vec())));
    }
}
