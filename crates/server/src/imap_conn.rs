//! Drives one IMAP connection: bytes from the socket → framer → [`Session`] → bytes to the socket.
//!
//! The session decides everything IMAP means; this module only reads, writes, waits and obeys
//! the [`Outcome`] of each call: STARTTLS upgrades the stream in place, AUTHENTICATE and IDLE read
//! raw lines, Close ends the connection.
//!
//! Defences against floods and slow peers, all enforced here:
//! - Before login the framer runs with [`PREAUTH_LIMITS`] (8 KiB lines and literals, a few
//!   literals), so an anonymous client can make the connection buffer at most
//!   [`PREAUTH_MEMORY_BUDGET`] (64 KiB) in all, read buffer included; after login the limits
//!   from the configuration apply (large APPENDs).
//! - Timeouts measure client silence: the short pre-auth one until login, the long one after
//!   (RFC 9051 §5.4). They also bound each write, so a client that stops reading cannot pin a
//!   connection. On top, a total pre-auth deadline counts from accept, so a client trickling a
//!   byte now and then (slowloris) is still out once it runs out.
//! - At login the session takes a place in the account's connection count
//!   (`max_connections_per_account`, through the admission hook the listener gives it) before
//!   it answers OK; a login over the limit gets `NO [LIMIT]` and the connection stays
//!   unauthenticated, with the pre-auth framing limits. The place is released when the session
//!   (dropped with this driver) ends.
//!
//! Memory per idle connection: the framer's buffers are freed whenever they are empty, the
//! 8 KiB read buffer exists only while a read is being polled, and calls into the session and
//! the STARTTLS handshake are boxed futures, so an idle connection holds no buffer of its own
//! and a future of about 1.5 KB. On TLS connections `tls_conn` frees its receive and send
//! buffers whenever they are empty too, so what stays is rustls' state (record keys, the TLS
//! 1.3 key schedule). Measured (BENCHMARKS.md, "Idle at scale"): 12.1 KiB of server PSS per
//! idle TLS connection through tokio-rustls, whose receive buffer stayed at 4 KiB, and less
//! with `tls_conn`.
//! A command's output is streamed to the socket in chunks through a small channel while the
//! session produces it.
//!
//! Literal memory across sessions: after login every literal is reserved in the server-wide
//! [`LiteralBudget`] (`imap.literal_memory`) before a byte of it is taken — for a synchronizing
//! literal before the `+` is sent. Without room within `imap.literal_wait` the command is
//! answered `NO [LIMIT]` (a synchronizing literal is then never sent; a non-synchronizing one
//! is read and thrown away). The reservation is given back when the command has run.
//!
//! COMPRESS=DEFLATE (RFC 4978): after the tagged OK the stream is wrapped in
//! [`crate::compress::Deflate`] (over cleartext or TLS); bytes already received after the command
//! go to its inflater. Inflated input reaches the same framer with the same limits. The deflater
//! (~300 KiB) is dropped when the client has been silent for [`COMPRESS_RELEASE_AFTER`] and when
//! IDLE starts waiting; the inflater (~43 KiB) stays. Corrupt compressed input gets `* BYE`.
//!
//! Limits: a client may pipeline commands; they run strictly one after another. On shutdown the
//! command in flight finishes, then `* BYE Server shutting down` is sent; `postfach kick` ends a
//! session the same way (`* BYE Disconnected by the administrator`). After every call into the
//! session the driver reports its state (login, selected mailbox) to the server's session
//! table (`sessions`), which `postfach who` reads.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use postfach_auth::scram::ChannelBinding;
use postfach_imap::{Out, Outcome, Session};
use postfach_proto::framing::{FrameError, FrameEvent, Framer, FramingLimits};
use postfach_proto::types::Tag;
use postfach_secret::Secret;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info};

use crate::compress::Deflate;
use crate::config::ImapConfig;
use crate::listener::Registry;
use crate::literal_budget::{LiteralBudget, Reservation};
use crate::metrics::Metrics;
use crate::sessions::{Registration, Sessions};
use crate::tls::Certificates;
use crate::tls_conn::{self, TlsConn};

/// Most bytes one read takes from the socket (the buffer exists only during the read).
const READ_CHUNK: usize = 8 * 1024;
/// What an anonymous client may make one connection buffer: read buffer, unconsumed input
/// and the command being assembled, together.
pub(crate) const PREAUTH_MEMORY_BUDGET: usize = 64 * 1024;
/// Framing before login: enough for LOGIN, AUTHENTICATE (SASL lines: a bearer token of up to
/// 8 KiB in base64 is the longest), ID, STARTTLS and CAPABILITY with room to spare, small
/// enough for [`PREAUTH_MEMORY_BUDGET`]: read chunk (8 KiB) + unconsumed input (a line plus a
/// chunk, 20 KiB) + command (16 KiB, up to 32 KiB of capacity while growing) stays below 64 KiB.
pub(crate) const PREAUTH_LIMITS: FramingLimits = FramingLimits {
    max_line: 12 * 1024,
    max_literal: 8 * 1024,
    max_command: 16 * 1024,
    // LOGIN needs two; ID may quote a few values as literals.
    max_literals: 4,
    max_text: 16 * 1024,
    // Skipping costs bandwidth, not memory; beyond this the client is closed.
    max_skip_literal: 64 * 1024,
};
// The budget holds by construction: the read chunk, unconsumed input (a partial line plus one
// chunk) and the command with its capacity doubled by growth.
const _: () = assert!(
    READ_CHUNK + (PREAUTH_LIMITS.max_line + 1 + READ_CHUNK) + 2 * PREAUTH_LIMITS.max_command
        <= PREAUTH_MEMORY_BUDGET
);
/// Command text allowed after login (bytes outside literals): MULTIAPPEND of 1024 messages
/// needs ~100 KiB; it bounds how many arguments (and so parsed values) one command carries.
const MAX_COMMAND_TEXT: usize = 256 * 1024;
/// Chunks of streamed output in flight between the session and the socket writer. With the
/// session's 64 KiB chunks this bounds a command's pending output to a few hundred KiB.
const STREAM_DEPTH: usize = 4;
/// Command text allowed on top of the largest literal (Dovecot's and imap-next's margin).
const COMMAND_TEXT_MARGIN: usize = 64 * 1024;
/// Literals allowed in one command: MULTIAPPEND (RFC 3502) of many small messages.
const MAX_LITERALS: usize = 1024;
/// Client silence after which a compressed connection frees its deflater (it is made again
/// for the next response; see `compress`). Long enough to keep it across a burst of commands.
const COMPRESS_RELEASE_AFTER: Duration = Duration::from_secs(1);
/// Text of the BYE sent when the client's compressed data cannot be inflated.
const BYE_CORRUPT: &str = "Corrupt compressed data; closing connection";
/// How long closing (TLS close_notify, TCP FIN) may take before the socket is just dropped.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// RFC 9051 §7.5: the continuation request that lets the client send a synchronizing literal.
const LITERAL_CONTINUATION: &[u8] = b"+ Ready for literal data\r\n";
/// RFC 9051 §7.1.5 (case 3): text of the BYE sent on an inactivity autologout.
const BYE_AUTOLOGOUT: &str = "Autologout; idle for too long";
/// BYE text when the total pre-auth deadline ran out.
const BYE_LOGIN_DEADLINE: &str = "Autologout; login took too long";
/// Text of the BYE sent when the server stops.
pub(crate) const BYE_SHUTDOWN: &str = "Server shutting down";
/// Text of the BYE sent to a session `postfach kick` ends.
const BYE_KICKED: &str = "Disconnected by the administrator";

/// What every connection of a server needs besides its session.
pub(crate) struct ConnSettings {
    /// Framer limits after login, derived from the configuration ([`PREAUTH_LIMITS`] before).
    pub(crate) limits: FramingLimits,
    /// Client silence allowed before authentication (also bounds TLS handshakes).
    pub(crate) preauth_timeout: Duration,
    /// Time from accept to login, however busy the client is.
    pub(crate) preauth_deadline: Duration,
    /// Client silence allowed after authentication, IDLE included.
    pub(crate) auth_timeout: Duration,
    /// Interval of keepalive responses during IDLE.
    pub(crate) idle_keepalive: Duration,
    /// The TLS configuration for STARTTLS.
    pub(crate) tls: TlsAcceptor,
    /// Connection counts per address and per account.
    pub(crate) registry: Registry,
    /// Literal bytes in memory over all sessions.
    pub(crate) literals: Arc<LiteralBudget>,
    /// The server certificates, for the TLS 1.2 channel binding (`None`: only TLS 1.3 binds).
    pub(crate) certificates: Option<Arc<Certificates>>,
    /// Connections and command latencies are counted here.
    pub(crate) metrics: Arc<Metrics>,
    /// The live sessions (`postfach who`, `postfach kick`).
    pub(crate) sessions: Arc<Sessions>,
    /// Pending TLS-ALPN-01 answers, for the implicit-TLS IMAP listeners (`[tls] acme` with
    /// `challenge = "tls-alpn-01"`); `None`: every handshake is a client's.
    pub(crate) acme_alpn: Option<Arc<crate::acme::Challenges>>,
}

impl ConnSettings {
    /// Settings from the `[imap]` configuration.
    pub(crate) fn new(imap: &ImapConfig, tls: TlsAcceptor) -> Self {
        let max_literal = imap.max_message_size;
        let limits = FramingLimits {
            max_line: imap.max_line_length,
            max_literal,
            max_command: usize::try_from(max_literal)
                .unwrap_or(usize::MAX)
                .saturating_add(COMMAND_TEXT_MARGIN),
            max_literals: MAX_LITERALS,
            max_text: MAX_COMMAND_TEXT,
            // RFC 7888 §4: skipping a too-big LITERAL+ keeps the connection usable; beyond twice
            // the limit it is cheaper to drop the client than to read the data.
            max_skip_literal: u64::from(max_literal).saturating_mul(2),
        };
        Self {
            limits,
            preauth_timeout: imap.preauth_timeout,
            preauth_deadline: imap.preauth_deadline,
            auth_timeout: imap.auth_timeout,
            idle_keepalive: imap.idle_keepalive,
            tls,
            registry: Registry::new(imap),
            literals: LiteralBudget::new(imap.literal_memory, imap.literal_wait),
            certificates: None,
            metrics: Arc::new(Metrics::default()),
            sessions: Sessions::new(),
            acme_alpn: None,
        }
    }

    /// The same settings, counting into `metrics`.
    pub(crate) fn with_metrics(self, metrics: Arc<Metrics>) -> Self {
        Self { metrics, ..self }
    }

    /// The same settings, reserving literals in `literals` (shared with the sessions' CATENATE).
    pub(crate) fn with_literal_budget(self, literals: Arc<LiteralBudget>) -> Self {
        Self { literals, ..self }
    }

    /// The same settings, with the certificates the TLS 1.2 channel binding is computed from.
    pub(crate) fn with_certificates(self, certificates: Arc<Certificates>) -> Self {
        Self { certificates: Some(certificates), ..self }
    }

    /// The same settings, answering TLS-ALPN-01 validations from `challenges` on IMAPS.
    pub(crate) fn with_acme_alpn(self, challenges: Arc<crate::acme::Challenges>) -> Self {
        Self { acme_alpn: Some(challenges), ..self }
    }
}

/// A connection's byte stream: cleartext or TLS over the same transport, either of them
/// compressed. An enum rather than a type parameter because STARTTLS and COMPRESS change it in
/// the middle of a session.
pub(crate) enum Stream<S> {
    /// Cleartext.
    Plain(S),
    /// TLS through tokio-rustls (POP3 and ManageSieve). Boxed: the rustls state is large.
    Tls(Box<TlsStream<S>>),
    /// TLS through rustls' unbuffered API, with buffers freed while empty (IMAP, implicit or
    /// after STARTTLS; see `tls_conn`).
    TlsOwned(Box<TlsConn<S>>),
    /// COMPRESS=DEFLATE over one of the others (RFC 4978 §3: compressed, then encrypted).
    Compressed(Box<Deflate<Stream<S>>>),
}

impl<S> Stream<S> {
    /// Whether the stream holds memory it can give back while the client is silent.
    fn holds_idle_memory(&self) -> bool {
        match self {
            Stream::Compressed(d) => d.holds_idle_memory(),
            _ => false,
        }
    }

    /// Gives back what [`Stream::holds_idle_memory`] reported (the compressor).
    fn release_idle_memory(&mut self) {
        if let Stream::Compressed(d) = self {
            d.release_idle_memory();
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::TlsOwned(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Compressed(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::TlsOwned(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Compressed(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::TlsOwned(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Compressed(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::TlsOwned(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Compressed(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A transport that can acknowledge received data at once (TCP_QUICKACK), so that a client
/// holding its next bytes until then does not wait for the delayed-ACK timer.
pub(crate) trait QuickAck {
    /// Sends any pending acknowledgement now. Best effort.
    fn quick_ack(&self) {}
}

impl QuickAck for tokio::net::TcpStream {
    fn quick_ack(&self) {
        // Not permanent: the kernel leaves quick-ack mode again by itself; setting it flushes
        // a delayed acknowledgement that is pending.
        let _ = socket2::SockRef::from(self).set_tcp_quickack(true);
    }
}

impl QuickAck for tokio::io::DuplexStream {}

impl<S: QuickAck> Stream<S> {
    fn quick_ack(&self) {
        match self {
            Stream::Plain(s) => s.quick_ack(),
            Stream::Tls(s) => s.get_ref().0.quick_ack(),
            Stream::TlsOwned(s) => s.get_ref().quick_ack(),
            Stream::Compressed(s) => s.get_ref().quick_ack(),
        }
    }
}

/// Runs one connection to its end. Errors only end the connection; they are logged at debug
/// level because a vanished client is normal. `accepted` starts the pre-auth deadline.
///
/// Not an `async fn`: an async function's arguments keep their places in its future beside
/// whatever they are moved into, so the session would be there twice. The driver is built
/// here, and the future holds only it and the stream (`the_connection_future_stays_small`).
pub(crate) fn run<S>(
    stream: Stream<S>,
    session: Session,
    settings: Arc<ConnSettings>,
    shutdown: watch::Receiver<bool>,
    accepted: Instant,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
{
    let mut driver = Driver {
        registration: settings.sessions.register(),
        framer: Framer::new(PREAUTH_LIMITS),
        login_deadline: accepted + settings.preauth_deadline,
        logged_in: false,
        reserved: None,
        session,
        settings,
        shutdown,
    };
    driver.registration.update(&driver.session);
    async move {
        if let Err(e) = driver.serve(stream).await {
            debug!(error = %e, "connection ended by an I/O error");
        }
    }
}

/// Resolves once shutdown has been requested (or its sender is gone, which means the same).
pub(crate) async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, before any other await.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Why `Driver::drive` returned.
enum Exit {
    /// Close the connection cleanly (after BYE or LOGOUT).
    Close,
    /// Upgrade to TLS, then go on.
    StartTls,
    /// Compress from now on, then go on.
    Compress,
    /// The client is gone; nothing more to say.
    Gone,
}

/// What waiting for input produced.
enum Input {
    /// Bytes were pushed into the framer.
    Data,
    /// NOTIFY (RFC 5465) has something to say between commands.
    Notify,
    /// The client closed its side.
    Eof,
    /// The client was silent for too long.
    TimedOut,
    /// The server is stopping.
    Shutdown,
    /// The administrator ended the session (`postfach kick`).
    Kicked,
    /// The client's compressed data cannot be inflated.
    Corrupt,
}

/// A call into the session whose output is streamed.
enum Call {
    /// A framed command.
    Command(Vec<u8>),
    /// A line of an AUTHENTICATE exchange (it may carry a password).
    AuthLine(Secret),
    /// A line received during IDLE.
    IdleLine(Vec<u8>),
    /// The selected mailbox changed during IDLE.
    IdleUpdate,
    /// The NOTIFY listener woke during IDLE.
    IdleNotify,
    /// NOTIFY has something to say between commands.
    Notify,
}

/// One connection's state besides the stream (kept apart so STARTTLS can replace the stream).
struct Driver {
    session: Session,
    framer: Framer,
    /// When the client must have logged in.
    login_deadline: Instant,
    /// Whether the session logged in and the framing limits were lifted.
    logged_in: bool,
    /// The literal memory reserved for the command being received (and then run).
    reserved: Option<Reservation>,
    settings: Arc<ConnSettings>,
    shutdown: watch::Receiver<bool>,
    /// This session's entry among the live sessions, and its kick signal.
    registration: Registration,
}

impl Driver {
    async fn serve<S>(&mut self, mut stream: Stream<S>) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
    {
        let mut out = Out::new();
        self.session.greeting(&mut out);
        self.write(&mut stream, &out.take()).await?;
        loop {
            match self.drive(&mut stream).await? {
                Exit::Gone => return Ok(()),
                Exit::Close => {
                    // Orderly close: TLS close_notify, then FIN. A stuck peer only delays it.
                    let _ = timeout(CLOSE_GRACE, stream.shutdown()).await;
                    return Ok(());
                }
                Exit::Compress => {
                    // RFC 4978 §3: compressed from the byte after the tagged OK's CRLF, both ways.
                    let received = self.framer.take_buffered();
                    stream = Stream::Compressed(Box::new(Deflate::new(stream, received)));
                    debug!("COMPRESS DEFLATE active");
                }
                Exit::StartTls => {
                    let Stream::Plain(plain) = stream else {
                        debug!("STARTTLS requested on a TLS connection; closing");
                        return Ok(());
                    };
                    // RFC 9051 §6.2.1: anything the client sent after STARTTLS, before the
                    // handshake, must not be executed (plaintext command injection).
                    self.framer.discard_buffered();
                    self.reserved = None;
                    // Boxed, like every call into the session: what is only needed now and then
                    // should not enlarge the future every idle connection keeps.
                    let Some((tls, binding)) = Box::pin(self.start_tls(plain)).await else {
                        return Ok(());
                    };
                    stream = Stream::TlsOwned(tls);
                    // RFC 9051 §6.2.1: the session sends nothing unasked after the handshake;
                    // the client asks for CAPABILITY again (tests/tls.rs checks it).
                    self.session.tls_started();
                    self.registration.update(&self.session);
                    self.session.set_channel_binding(binding);
                    debug!("STARTTLS completed");
                }
            }
        }
    }

    /// The STARTTLS handshake on `plain`; `None` when it failed or timed out (logged).
    async fn start_tls<S>(&self, plain: S) -> Option<(Box<TlsConn<S>>, Option<ChannelBinding>)>
    where
        S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
    {
        let config = self.settings.tls.config();
        let certificates = self.settings.certificates.as_deref();
        match timeout(self.patience(), tls_conn::accept(config, None, certificates, plain)).await {
            Ok(Ok(tls_conn::Accepted::Connection(tls, binding))) => Some((tls, binding)),
            // Without challenges no handshake is a TLS-ALPN-01 validation.
            Ok(Ok(tls_conn::Accepted::Challenge)) => None,
            Ok(Err(e)) => {
                debug!(error = %e, "STARTTLS handshake failed");
                None
            }
            Err(_) => {
                debug!("STARTTLS handshake timed out");
                None
            }
        }
    }

    /// Runs commands until the connection must close or change its transport.
    async fn drive<S>(&mut self, stream: &mut Stream<S>) -> io::Result<Exit>
    where
        S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
    {
        loop {
            let Some(event) = self.framer.next() else {
                if self.framer.mid_command() {
                    // The rest of the command is on its way. A client with Nagle's algorithm on
                    // (Python's imaplib) holds back the CRLF after a literal until the literal is
                    // acknowledged, and delayed ACK would make both sides wait 40 ms for each
                    // APPEND: acknowledge now.
                    stream.quick_ack();
                }
                match self.read(stream).await? {
                    Input::Data => continue,
                    Input::Notify => {
                        if Box::pin(self.call(stream, Call::Notify)).await? == Outcome::Close {
                            return Ok(Exit::Close);
                        }
                        continue;
                    }
                    Input::Eof => return Ok(Exit::Gone),
                    Input::TimedOut => return self.bye(stream, self.timeout_text()).await,
                    Input::Shutdown => return self.bye(stream, BYE_SHUTDOWN).await,
                    Input::Kicked => return self.kicked(stream).await,
                    Input::Corrupt => return self.bye(stream, BYE_CORRUPT).await,
                }
            };
            match event {
                FrameEvent::NeedContinuation => self.write(stream, LITERAL_CONTINUATION).await?,
                FrameEvent::LiteralAnnounced { size, .. } => {
                    let budget = Arc::clone(&self.settings.literals);
                    let reserved = tokio::select! {
                        ok = budget.reserve(&mut self.reserved, size) => ok,
                        _ = shutdown_requested(&mut self.shutdown) => return self.bye(stream, BYE_SHUTDOWN).await,
                    };
                    if reserved {
                        if self.framer.accept_literal() {
                            self.write(stream, LITERAL_CONTINUATION).await?;
                        }
                    } else if let Some(FrameEvent::Rejected { tag, error, fatal }) =
                        self.framer.refuse_literal(FrameError::Busy)
                        && let Some(exit) = self.reject(stream, tag, error, fatal).await?
                    {
                        return Ok(exit);
                    }
                }
                FrameEvent::Rejected { tag, error, fatal } => {
                    if let Some(exit) = self.reject(stream, tag, error, fatal).await? {
                        return Ok(exit);
                    }
                }
                FrameEvent::Command(command) => {
                    // Pipelined commands are not started once the server is stopping.
                    if *self.shutdown.borrow() {
                        return self.bye(stream, BYE_SHUTDOWN).await;
                    }
                    let outcome = Box::pin(self.call(stream, Call::Command(command))).await?;
                    // The command ran and its bytes are freed: its literals' memory is free again.
                    self.reserved = None;
                    if let Some(exit) = self.follow(stream, outcome).await? {
                        return Ok(exit);
                    }
                }
            }
        }
    }

    /// Answers a command the framer (or the literal budget) rejected; `Some(Close)` after a
    /// fatal one. Gives back the literal memory reserved for the rejected command.
    async fn reject<S>(
        &mut self,
        stream: &mut Stream<S>,
        tag: Option<Tag>,
        error: FrameError,
        fatal: bool,
    ) -> io::Result<Option<Exit>>
    where
        S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
    {
        self.reserved = None;
        let mut out = Out::new();
        let tag = tag.as_ref().map(|t| t.as_str().as_bytes());
        if error == FrameError::Busy {
            self.session.refused(tag, &error.to_string(), &mut out);
        } else {
            self.session.rejected(tag, &error.to_string(), &mut out);
        }
        if fatal {
            self.session.bye("Too much data; closing connection", &mut out);
        }
        self.write(stream, &out.take()).await?;
        Ok(fatal.then_some(Exit::Close))
    }

    /// Acts on an outcome until the session is ready for the next command (`None`) or the
    /// connection must end or upgrade.
    async fn follow<S>(&mut self, stream: &mut Stream<S>, mut outcome: Outcome) -> io::Result<Option<Exit>>
    where
        S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
    {
        loop {
            self.check_login();
            outcome = match outcome {
                Outcome::Continue => return Ok(None),
                Outcome::Close => return Ok(Some(Exit::Close)),
                Outcome::StartTls => return Ok(Some(Exit::StartTls)),
                Outcome::Compress => return Ok(Some(Exit::Compress)),
                Outcome::AuthContinue => match self.raw_line(stream).await? {
                    Ok(line) => Box::pin(self.call(stream, Call::AuthLine(Secret::from(line)))).await?,
                    Err(exit) => return Ok(Some(exit)),
                },
                Outcome::Idle => match self.idle(stream).await? {
                    Ok(next) => next,
                    Err(exit) => return Ok(Some(exit)),
                },
            };
        }
    }

    /// Reads one raw line (an AUTHENTICATE response). `Err(exit)` when the connection ends first.
    async fn raw_line<S>(&mut self, stream: &mut Stream<S>) -> io::Result<Result<Vec<u8>, Exit>>
    where
        S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
    {
        loop {
            match self.framer.next_line() {
                Some(Ok(line)) => return Ok(Ok(line)),
                // The framer is dead after this; nothing more can be read.
                Some(Err(e)) => return self.bye(stream, &format!("{e}; closing connection")).await.map(Err),
                None => {}
            }
            let exit = match self.read(stream).await? {
                Input::Data | Input::Notify => continue,
                Input::Eof => Exit::Gone,
                Input::TimedOut => self.bye(stream, self.timeout_text()).await?,
                Input::Shutdown => self.bye(stream, BYE_SHUTDOWN).await?,
                Input::Kicked => self.kicked(stream).await?,
                Input::Corrupt => self.bye(stream, BYE_CORRUPT).await?,
            };
            return Ok(Err(exit));
        }
    }

    /// The IDLE wait (RFC 2177): client lines, mailbox changes, keepalives, silence, shutdown.
    /// Returns the outcome that ends IDLE, or `Err(exit)` when the connection ends.
    async fn idle<S>(&mut self, stream: &mut Stream<S>) -> io::Result<Result<Outcome, Exit>>
    where
        S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
    {
        /// What woke the IDLE wait.
        enum Wake {
            Read(io::Result<usize>),
            Changed,
            Notify,
            Credentials,
            Keepalive,
            Silence,
            Shutdown,
            Kicked,
        }

        let mut changes = self.session.change_watch();
        let listener = self.session.notify_listener();
        // Issue 5: a revoked app password ends an idling session too, not just at its next
        // command.
        let mut credentials = self.session.credential_watch();
        let period = self.settings.idle_keepalive;
        let mut keepalive = tokio::time::interval_at(Instant::now() + period, period);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // RFC 9051 §5.4: the autologout timer counts client silence, IDLE or not; RFC 2177
        // clients re-issue IDLE well before it runs out.
        let mut last_input = Instant::now();
        loop {
            match self.framer.next_line() {
                Some(Ok(line)) => {
                    last_input = Instant::now();
                    let outcome = Box::pin(self.call(stream, Call::IdleLine(line))).await?;
                    if outcome != Outcome::Idle {
                        return Ok(Ok(outcome));
                    }
                    continue;
                }
                Some(Err(e)) => return self.bye(stream, &format!("{e}; closing connection")).await.map(Err),
                None => {}
            }
            self.framer.release_unused_memory();
            // Waiting in IDLE is being idle: the compressor is made again for the next update.
            stream.release_idle_memory();
            let wake = tokio::select! {
                read = read_into(stream, &mut self.framer) => Wake::Read(read),
                alive = changed(&mut changes) => {
                    if !alive {
                        // The mailbox's sender is gone (mailbox deleted): stop watching it.
                        changes = None;
                    }
                    Wake::Changed
                }
                Ok(()) = credentials.changed() => Wake::Credentials,
                () = notified(listener.as_ref()) => Wake::Notify,
                _ = keepalive.tick() => Wake::Keepalive,
                _ = tokio::time::sleep_until(last_input + self.settings.auth_timeout) => Wake::Silence,
                _ = shutdown_requested(&mut self.shutdown) => Wake::Shutdown,
                _ = self.registration.kicked() => Wake::Kicked,
            };
            match wake {
                Wake::Read(Ok(0)) => return Ok(Err(Exit::Gone)),
                Wake::Read(Ok(_)) => last_input = Instant::now(),
                Wake::Read(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
                    return self.bye(stream, BYE_CORRUPT).await.map(Err);
                }
                Wake::Read(Err(e)) => return Err(e),
                Wake::Changed => {
                    if changes.is_some()
                        && Box::pin(self.call(stream, Call::IdleUpdate)).await? == Outcome::Close
                    {
                        return Ok(Err(Exit::Close));
                    }
                }
                Wake::Notify => {
                    if Box::pin(self.call(stream, Call::IdleNotify)).await? == Outcome::Close {
                        return Ok(Err(Exit::Close));
                    }
                }
                Wake::Credentials => {
                    let mut out = Out::new();
                    let outcome = Box::pin(self.session.check_credential(&mut out)).await;
                    self.write(stream, &out.take()).await?;
                    if outcome == Outcome::Close {
                        return Ok(Err(Exit::Close));
                    }
                }
                Wake::Keepalive => {
                    let mut out = Out::new();
                    self.session.idle_keepalive(&mut out);
                    self.write(stream, &out.take()).await?;
                }
                Wake::Silence => return self.bye(stream, BYE_AUTOLOGOUT).await.map(Err),
                Wake::Shutdown => return self.bye(stream, BYE_SHUTDOWN).await.map(Err),
                Wake::Kicked => return self.kicked(stream).await.map(Err),
            }
        }
    }

    /// Calls into the session while a second future on the same task writes the chunks the
    /// session streams; then writes what is left. On a write error the channel closes, so the
    /// session's further sends fail fast instead of blocking.
    async fn call<S>(&mut self, stream: &mut Stream<S>, call: Call) -> io::Result<Outcome>
    where
        S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
    {
        let patience = self.patience();
        let (tx, rx) = mpsc::channel::<Vec<u8>>(STREAM_DEPTH);
        let session = &mut self.session;
        let metrics = &self.settings.metrics;
        let work = async move {
            let mut out = Out::streaming(tx);
            let outcome = match call {
                Call::Command(command) => {
                    // Issue 14: latency per command name (AUTHENTICATE: its first step; IDLE:
                    // until the session starts waiting).
                    let started = std::time::Instant::now();
                    let outcome = session.handle(command, &mut out).await;
                    metrics.command(session.last_command_name(), started.elapsed());
                    outcome
                }
                Call::AuthLine(line) => session.auth_line(line, &mut out).await,
                Call::IdleLine(line) => session.idle_line(line, &mut out).await,
                // Still idling, unless the user lost the right to read the mailbox (BYE).
                Call::IdleUpdate => match session.idle_update(&mut out).await {
                    Outcome::Close => Outcome::Close,
                    _ => Outcome::Idle,
                },
                Call::IdleNotify => {
                    session.idle_notify(&mut out).await;
                    Outcome::Idle
                }
                Call::Notify => session.notify_update(&mut out).await,
            };
            // `out` (and with it the sender) is dropped here, which ends the writer's loop.
            (outcome, out.take())
        };
        let writer_stream = &mut *stream;
        let writer = async move {
            let mut rx = rx;
            while let Some(chunk) = rx.recv().await {
                write_within(writer_stream, &chunk, patience).await?;
            }
            Ok::<(), io::Error>(())
        };
        let ((outcome, rest), written) = tokio::join!(work, writer);
        // Logged in, selected or closed a mailbox: `who` shows it.
        self.registration.update(&self.session);
        written?;
        if !rest.is_empty() {
            self.write(stream, &rest).await?;
        }
        Ok(outcome)
    }

    /// Waits for input, for as long as the session's state allows, or for shutdown.
    async fn read<S>(&mut self, stream: &mut Stream<S>) -> io::Result<Input>
    where
        S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
    {
        if !self.session.is_authenticated() && Instant::now() >= self.login_deadline {
            // Checked before reading: a client that always has bytes ready would otherwise
            // never see the timeout fire.
            return Ok(Input::TimedOut);
        }
        let patience = self.patience();
        self.framer.release_unused_memory();
        // RFC 5465 §3.1: with NOTIFY on, events go out while the client sends nothing; not in
        // the middle of a command (a literal on its way), which they would only interrupt.
        let (listener, mut selected) = if self.framer.mid_command() {
            (None, None)
        } else {
            (self.session.notify_listener(), self.session.notify_selected_watch())
        };
        let read = tokio::select! {
            read = timeout(patience, read_stream(stream, &mut self.framer)) => read,
            () = notified(listener.as_ref()) => return Ok(Input::Notify),
            true = changed(&mut selected) => return Ok(Input::Notify),
            _ = shutdown_requested(&mut self.shutdown) => return Ok(Input::Shutdown),
            _ = self.registration.kicked() => return Ok(Input::Kicked),
        };
        match read {
            Err(_) => Ok(Input::TimedOut),
            Ok(Ok(0)) => Ok(Input::Eof),
            Ok(Ok(_)) => Ok(Input::Data),
            // Only the inflater reports InvalidData (TLS errors are InvalidData too, but a BYE
            // then fails to reach the client, which costs nothing).
            Ok(Err(e))
                if e.kind() == io::ErrorKind::InvalidData && matches!(stream, Stream::Compressed(_)) =>
            {
                Ok(Input::Corrupt)
            }
            Ok(Err(e)) => Err(e),
        }
    }

    /// After a call into the session: on the first sign of a login (the session admitted it
    /// against the account's connection limit before answering OK), lift the framing limits.
    fn check_login(&mut self) {
        if !self.logged_in && self.session.is_authenticated() {
            self.logged_in = true;
            self.framer.set_limits(self.settings.limits);
            self.framer.gate_literals(true);
        }
    }

    /// The BYE text for a read that timed out: the login deadline or plain silence.
    fn timeout_text(&self) -> &'static str {
        if !self.session.is_authenticated() && Instant::now() >= self.login_deadline {
            BYE_LOGIN_DEADLINE
        } else {
            BYE_AUTOLOGOUT
        }
    }

    /// Sends `* BYE text` and asks for the connection to close.
    async fn bye<S>(&mut self, stream: &mut Stream<S>, text: &str) -> io::Result<Exit>
    where
        S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
    {
        let mut out = Out::new();
        self.session.bye(text, &mut out);
        self.write(stream, &out.take()).await?;
        Ok(Exit::Close)
    }

    /// Ends a session `postfach kick` asked to end: `* BYE`, then close.
    async fn kicked<S>(&mut self, stream: &mut Stream<S>) -> io::Result<Exit>
    where
        S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
    {
        info!(account = self.session.account().unwrap_or_default(), "session ended by the administrator");
        self.bye(stream, BYE_KICKED).await
    }

    async fn write<S>(&self, stream: &mut Stream<S>, data: &[u8]) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + QuickAck + Unpin + Send,
    {
        write_within(stream, data, self.patience()).await
    }

    /// How long the client may keep us waiting in the session's current state: its silence
    /// timeout, and before login no later than the login deadline.
    fn patience(&self) -> Duration {
        if self.session.is_authenticated() {
            self.settings.auth_timeout
        } else {
            let left = self.login_deadline.saturating_duration_since(Instant::now());
            self.settings.preauth_timeout.min(left)
        }
    }
}

/// Reads once from `stream` (at most [`READ_CHUNK`] bytes) into `framer`; returns the count,
/// 0 at end of stream. The buffer is allocated per poll and freed before returning, so a
/// connection waiting for its client holds no read buffer.
pub(crate) async fn read_into<S: AsyncRead + Unpin>(
    stream: &mut S,
    framer: &mut Framer,
) -> io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut buf = Vec::with_capacity(READ_CHUNK);
        let mut read_buf = ReadBuf::uninit(buf.spare_capacity_mut());
        match Pin::new(&mut *stream).poll_read(cx, &mut read_buf) {
            Poll::Ready(Ok(())) => {
                let filled = read_buf.filled();
                framer.push(filled);
                Poll::Ready(Ok(filled.len()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// [`read_into`] for a connection's stream. A compressed stream that stays silent for
/// [`COMPRESS_RELEASE_AFTER`] first gives back its compressor, then goes on waiting.
async fn read_stream<S>(stream: &mut Stream<S>, framer: &mut Framer) -> io::Result<usize>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if stream.holds_idle_memory() {
        // Boxed: only compressed connections need the timer, and every idle connection keeps
        // this future (`the_connection_future_stays_small`).
        if let Ok(read) = Box::pin(timeout(COMPRESS_RELEASE_AFTER, read_into(stream, framer))).await {
            return read;
        }
        stream.release_idle_memory();
    }
    read_into(stream, framer).await
}

/// Writes and flushes `data`, failing if the client does not take it within `limit`.
pub(crate) async fn write_within<W: AsyncWrite + Unpin>(
    stream: &mut W,
    data: &[u8],
    limit: Duration,
) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let write = async {
        stream.write_all(data).await?;
        stream.flush().await
    };
    timeout(limit, write)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client does not read"))?
}

/// Resolves when the NOTIFY listener has something; never without a listener (NOTIFY off).
async fn notified(listener: Option<&postfach_store::Listener>) {
    match listener {
        Some(listener) => Box::pin(listener.wait()).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the watched value changes: `true`, or `false` when its sender is gone. Never
/// resolves without a receiver (no mailbox selected).
async fn changed<T>(changes: &mut Option<watch::Receiver<T>>) -> bool {
    match changes {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::config::Config;

    #[test]
    fn framing_limits_follow_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        let tls = crate::tls::setup(&config).unwrap().acceptor;
        let imap = ImapConfig { max_message_size: 1_000_000, max_line_length: 10_000, ..config.imap };
        let settings = ConnSettings::new(&imap, tls);
        assert_eq!(settings.limits.max_line, 10_000);
        assert_eq!(settings.limits.max_literal, 1_000_000);
        assert_eq!(settings.limits.max_command, 1_000_000 + 64 * 1024);
        assert_eq!(settings.limits.max_skip_literal, 2_000_000);
        assert_eq!(settings.limits.max_text, MAX_COMMAND_TEXT);
    }

    /// Whatever an anonymous client sends, in the driver's read-sized chunks, the read buffer
    /// plus what the pre-auth framer holds stays within the 64 KiB budget.
    #[test]
    fn preauth_framing_stays_within_the_memory_budget() {
        let mut attacks: Vec<Vec<u8>> = Vec::new();
        // One endless line.
        attacks.push(vec![b'a'; 200_000]);
        // Lines just under the limit, each ending in a literal of the largest allowed size.
        let mut literals = Vec::new();
        for _ in 0..4 {
            literals.extend_from_slice(b"a LOGIN ");
            literals.extend_from_slice(&[b'x'; 8 * 1024 - 20]);
            literals.extend_from_slice(b" {8192+}\r\n");
            literals.extend_from_slice(&[b'y'; 8192]);
        }
        attacks.push(literals);
        // Many small literals, then a too-big one to skip, then more.
        let mut many = b"a ID (".to_vec();
        for _ in 0..100 {
            many.extend_from_slice(b"{4000+}\r\n");
            many.extend_from_slice(&[b'z'; 4000]);
        }
        many.extend_from_slice(b"{60000+}\r\n");
        many.extend_from_slice(&[b'z'; 60_000]);
        attacks.push(many);
        // Nothing but CRLFs and braces.
        attacks.push(b"{1}\r\n".repeat(20_000));
        for (i, attack) in attacks.iter().enumerate() {
            let mut framer = Framer::new(PREAUTH_LIMITS);
            for chunk in attack.chunks(READ_CHUNK) {
                framer.push(chunk);
                while framer.next().is_some() {}
                let held = framer.buffered() + READ_CHUNK;
                assert!(held <= PREAUTH_MEMORY_BUDGET, "attack {i}: {held} bytes held");
            }
        }
    }

    /// Every idle connection keeps its driver's future; the rarely needed parts (a command in
    /// progress, the STARTTLS handshake) are boxed so it stays small. Was 3.6 KB unboxed, and
    /// about 2 KB while `run` was an `async fn` (its session argument kept a place beside the
    /// driver's); 1728 bytes now, in the test profile.
    #[tokio::test]
    async fn the_connection_future_stays_small() {
        use postfach_store::{AccountStore, MailStore};
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        let tls = crate::tls::setup(&config).unwrap().acceptor;
        let settings = Arc::new(ConnSettings::new(&config.imap, tls));
        let store = Arc::new(postfach_store::sqlite::SqliteStore::open(dir.path()).unwrap());
        let mail: Arc<dyn MailStore> = store.clone();
        let share: Arc<dyn postfach_store::ShareStore> = store.clone();
        let accounts: Arc<dyn AccountStore> = store;
        let ctx = postfach_imap::ServerContext {
            store: mail,
            share,
            auth: postfach_auth::Authenticator::new(Arc::clone(&accounts)),
            accounts,
            config: postfach_imap::SessionConfig::default(),
        };
        let peer = "127.0.0.1:1".parse().unwrap();
        let session = Session::new(
            Arc::new(ctx),
            postfach_imap::ConnInfo { peer, transport: postfach_imap::Transport::Plain },
        );
        let (ours, _theirs) = tokio::io::duplex(16);
        let (_stop, stopped) = watch::channel(false);
        let future = run(Stream::Plain(ours), session, settings, stopped, Instant::now());
        let size = std::mem::size_of_val(&future);
        assert!(size <= 1792, "the connection future takes {size} bytes");
    }

    #[tokio::test]
    async fn read_into_feeds_the_framer_and_reports_the_end() {
        let (mut ours, mut theirs) = tokio::io::duplex(64);
        let mut framer = Framer::new(PREAUTH_LIMITS);
        theirs.write_all(b"a NOOP\r\n").await.unwrap();
        assert_eq!(read_into(&mut ours, &mut framer).await.unwrap(), 8);
        assert_eq!(framer.next(), Some(FrameEvent::Command(b"a NOOP".to_vec())));
        drop(theirs);
        assert_eq!(read_into(&mut ours, &mut framer).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_write_the_client_does_not_read_times_out() {
        let (mut ours, _theirs) = tokio::io::duplex(16);
        let err = write_within(&mut ours, &[b'x'; 1024], Duration::from_millis(50)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn plain_stream_passes_bytes_through() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut stream = Stream::Plain(ours);
        write_within(&mut stream, b"* OK\r\n", Duration::from_secs(1)).await.unwrap();
        let mut buf = [0u8; 6];
        theirs.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"* OK\r\n");
        theirs.write_all(b"a NOOP\r\n").await.unwrap();
        let mut buf = [0u8; 8];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"a NOOP\r\n");
    }

    #[tokio::test]
    async fn change_watch_helper() {
        let (tx, rx) = watch::channel(0u64);
        let mut some = Some(rx);
        tx.send_replace(1);
        assert!(changed(&mut some).await, "a change wakes");
        drop(tx);
        assert!(!changed(&mut some).await, "a dropped sender reports false");
        let mut none: Option<watch::Receiver<u64>> = None;
        assert!(timeout(Duration::from_millis(20), changed(&mut none)).await.is_err(), "no mailbox: never");
    }

    #[tokio::test]
    async fn shutdown_helper_sees_an_earlier_request() {
        let (tx, mut rx) = watch::channel(false);
        assert!(timeout(Duration::from_millis(20), shutdown_requested(&mut rx)).await.is_err());
        tx.send_replace(true);
        // Already true before waiting: must resolve at once, not wait for another change.
        timeout(Duration::from_millis(100), shutdown_requested(&mut rx)).await.unwrap();
    }
}
