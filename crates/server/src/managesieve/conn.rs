//! Drives one ManageSieve connection: socket → framer → [`Session`] → socket, and STARTTLS.
//!
//! The framer is IMAP's (`postfach_proto::framing`): ManageSieve's literals `{n+}` and `{n}`
//! are IMAP's. Before login it runs with IMAP's [`PREAUTH_LIMITS`] (8 KiB lines and literals,
//! room for any SASL response); after login with [`limits`]: literals up to the interpreter's
//! script size, two per command. A synchronizing literal `{n}` within the limits gets a
//! continuation request `+ "..."` (ACAP style; RFC 5804 clients send `{n+}`), one over the
//! limits a NO and no continuation, so the client never sends it.
//!
//! Timeouts are IMAP's: the pre-auth silence timeout and login deadline (counted again after
//! UNAUTHENTICATE), the post-auth silence timeout (RFC 5804 §1.2: at least 30 minutes), and
//! every write. On shutdown the command in flight finishes, then `BYE`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postfach_proto::framing::{FrameEvent, Framer, FramingLimits};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, timeout};
use tracing::debug;

use super::Service;
use super::session::{Outcome, Session};
use crate::binding::channel_binding;
use crate::imap_conn::{PREAUTH_LIMITS, Stream, read_into, shutdown_requested, write_within};
use crate::listener::TLS_BUFFER_LIMIT;

/// Continuation request for a synchronizing literal (ACAP, RFC 2244 §2.6.3, whose syntax
/// ManageSieve borrows).
const LITERAL_CONTINUATION: &[u8] = b"+ \"Ready for literal data\"\r\n";
/// Command text besides the literals after login: two script names and the command.
const MAX_COMMAND_TEXT: usize = 16 * 1024;
/// Literals per command: PUTSCRIPT and RENAMESCRIPT take two strings.
const MAX_LITERALS: usize = 2;
/// How long closing (TLS close_notify, TCP FIN) may take.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The framing limits after login: one script (the interpreter's limit) and a name.
pub(crate) fn limits() -> FramingLimits {
    let max_literal = u32::try_from(postfach_sieve::MAX_SCRIPT_SIZE).unwrap_or(u32::MAX);
    FramingLimits {
        max_line: PREAUTH_LIMITS.max_line,
        max_literal,
        max_command: postfach_sieve::MAX_SCRIPT_SIZE + MAX_COMMAND_TEXT + PREAUTH_LIMITS.max_literal as usize,
        max_literals: MAX_LITERALS,
        max_text: MAX_COMMAND_TEXT,
        // A too-large `{n+}` script is read and dropped (the session goes on) up to twice the
        // limit; beyond that the connection ends.
        max_skip_literal: 2 * u64::from(max_literal),
    }
}

/// Why `drive` returned.
enum Exit {
    /// Close cleanly (after LOGOUT or BYE).
    Close,
    /// Upgrade to TLS, then go on.
    StartTls,
    /// The client is gone.
    Gone,
}

/// Runs one connection to its end; errors only end it (logged at debug level).
pub(crate) async fn run(
    tcp: TcpStream,
    peer: SocketAddr,
    service: Arc<Service>,
    shutdown: watch::Receiver<bool>,
    accepted: Instant,
) {
    let mut driver = Driver {
        session: Session::new(Arc::clone(&service), peer),
        framer: Framer::new(PREAUTH_LIMITS),
        login_deadline: accepted + service.settings.preauth_deadline,
        logged_in: false,
        service,
        shutdown,
    };
    if let Err(e) = driver.serve(Stream::Plain(tcp)).await {
        debug!(error = %e, "connection ended by an I/O error");
    }
}

struct Driver {
    session: Session,
    framer: Framer,
    /// When the client must have logged in.
    login_deadline: Instant,
    /// Whether the framer runs with the post-login limits.
    logged_in: bool,
    service: Arc<Service>,
    shutdown: watch::Receiver<bool>,
}

impl Driver {
    async fn serve(&mut self, mut stream: Stream<TcpStream>) -> io::Result<()> {
        let mut out = Vec::new();
        self.session.greeting(&mut out);
        self.write(&mut stream, &out).await?;
        loop {
            match self.drive(&mut stream).await? {
                Exit::Gone => return Ok(()),
                Exit::Close => {
                    let _ = timeout(CLOSE_GRACE, stream.shutdown()).await;
                    return Ok(());
                }
                Exit::StartTls => {
                    let Stream::Plain(plain) = stream else {
                        return Ok(());
                    };
                    // Bytes sent after STARTTLS but before the handshake must not run
                    // (plaintext command injection).
                    self.framer.discard_buffered();
                    let acceptor = self.service.settings.tls.clone();
                    let mut tls = match timeout(self.patience(), Box::pin(acceptor.accept(plain))).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            debug!(error = %e, "STARTTLS handshake failed");
                            return Ok(());
                        }
                        Err(_) => {
                            debug!("STARTTLS handshake timed out");
                            return Ok(());
                        }
                    };
                    tls.get_mut().1.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
                    let binding =
                        channel_binding(tls.get_ref().1, self.service.settings.certificates.as_deref());
                    stream = Stream::Tls(Box::new(tls));
                    self.session.tls_started(binding);
                    debug!("STARTTLS completed");
                    // RFC 5804 §2.2: the server re-issues the capabilities unasked.
                    let mut out = Vec::new();
                    self.session.capabilities_after_tls(&mut out);
                    self.write(&mut stream, &out).await?;
                }
            }
        }
    }

    /// Runs commands until the connection must close or change its transport.
    async fn drive(&mut self, stream: &mut Stream<TcpStream>) -> io::Result<Exit> {
        loop {
            let Some(event) = self.framer.next() else {
                if !self.session.is_authenticated() && Instant::now() >= self.login_deadline {
                    return self.bye(stream, "Autologout; login took too long").await;
                }
                self.framer.release_unused_memory();
                let patience = self.patience();
                let read = tokio::select! {
                    read = timeout(patience, read_into(stream, &mut self.framer)) => read,
                    _ = shutdown_requested(&mut self.shutdown) => {
                        return self.bye(stream, crate::imap_conn::BYE_SHUTDOWN).await;
                    }
                };
                match read {
                    Err(_) => return self.bye(stream, "Autologout; idle for too long").await,
                    Ok(Ok(0)) => return Ok(Exit::Gone),
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) => return Err(e),
                }
            };
            let mut out = Vec::new();
            let outcome = match event {
                FrameEvent::NeedContinuation => {
                    self.write(stream, LITERAL_CONTINUATION).await?;
                    continue;
                }
                // Only with gated literals, which this driver does not use.
                FrameEvent::LiteralAnnounced { sync, .. } => {
                    if self.framer.accept_literal() && sync {
                        self.write(stream, LITERAL_CONTINUATION).await?;
                    }
                    continue;
                }
                FrameEvent::Rejected { error, fatal, .. } => {
                    let outcome = self.session.rejected(&error, &mut out);
                    if fatal && outcome != Outcome::Close {
                        self.session.bye("Too much data; closing connection", &mut out);
                        Outcome::Close
                    } else {
                        outcome
                    }
                }
                FrameEvent::Command(command) => {
                    if *self.shutdown.borrow() {
                        return self.bye(stream, crate::imap_conn::BYE_SHUTDOWN).await;
                    }
                    Box::pin(self.session.handle(&command, &mut out)).await
                }
            };
            self.write(stream, &out).await?;
            self.check_login();
            match outcome {
                Outcome::Continue => {}
                Outcome::Close => return Ok(Exit::Close),
                Outcome::StartTls => return Ok(Exit::StartTls),
            }
        }
    }

    /// Follows logins and UNAUTHENTICATE with the framing limits and the login deadline.
    fn check_login(&mut self) {
        let now = self.session.is_authenticated();
        if now == self.logged_in {
            return;
        }
        self.logged_in = now;
        if now {
            self.framer.set_limits(limits());
        } else {
            self.framer.set_limits(PREAUTH_LIMITS);
            self.login_deadline = Instant::now() + self.service.settings.preauth_deadline;
        }
    }

    async fn bye(&mut self, stream: &mut Stream<TcpStream>, text: &str) -> io::Result<Exit> {
        let mut out = Vec::new();
        self.session.bye(text, &mut out);
        self.write(stream, &out).await?;
        Ok(Exit::Close)
    }

    async fn write(&self, stream: &mut Stream<TcpStream>, data: &[u8]) -> io::Result<()> {
        write_within(stream, data, self.patience()).await
    }

    /// How long the client may keep us waiting: the silence timeout of its state, and before
    /// login no later than the login deadline.
    fn patience(&self) -> Duration {
        if self.session.is_authenticated() {
            self.service.settings.auth_timeout
        } else {
            let left = self.login_deadline.saturating_duration_since(Instant::now());
            self.service.settings.preauth_timeout.min(left).max(Duration::from_millis(1))
        }
    }
}
