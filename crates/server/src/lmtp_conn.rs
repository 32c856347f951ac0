//! LMTP (RFC 2033) over TCP and a unix socket: binding, accept loops, and the driver that feeds
//! one connection's bytes to a [`LmtpSession`] and writes its replies.
//!
//! The session decides everything; this module only moves bytes, enforces the idle timeout and
//! the connection cap, and closes with `421` on shutdown or silence. Deliveries run inside the
//! server process, so the store's notifier wakes IDLE sessions the moment a message is durable.
//!
//! Limits: at most [`MAX_CONNECTIONS`] LMTP connections at once (MTAs open few: Postfix's
//! default is 20 per destination); a client silent for [`IDLE_TIMEOUT`] is disconnected.
//! LMTP has no authentication: listen only where the MTA alone can connect. TCP clients outside
//! `lmtp.allowed_networks` (default: loopback) get a `554` greeting and are closed (RFC 5321
//! §3.1); the unix socket is always served. Listening on a non-loopback address logs a warning
//! at start.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use postfach_delivery::{Deliverer, DeliveryConfig, LmtpLimits, LmtpSession, SpamPolicy, Stores};
use postfach_store::Store;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::{Config, IpNet};
use crate::imap_conn::shutdown_requested;
use crate::listener::SHUTDOWN_GRACE;
use crate::metrics::{ConnKind, Metrics};

/// LMTP connections open at once, over all LMTP listeners.
pub(crate) const MAX_CONNECTIONS: usize = 256;
/// Client silence allowed (RFC 5321 §4.5.3.2.7: a server waits at least 5 minutes).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// This host's name for greetings, trace lines and Message-IDs.
pub(crate) fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().to_owned())
        .find(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The deliverer the configuration describes, over `store`; `stored` is notified after each
/// delivery that stored something. Vacation replies and redirects go into `outbox` (the
/// store's outbound queue; `None` without a relay).
pub(crate) fn deliverer(
    config: &Config,
    store: Arc<dyn Store>,
    stored: Option<Arc<Notify>>,
    outbox: Option<postfach_delivery::Outbox>,
) -> Arc<Deliverer> {
    let host = hostname();
    let stores = Stores { mail: store.clone(), accounts: store.clone(), sieve: store.clone(), share: store };
    let settings = DeliveryConfig {
        hostname: host,
        local_domains: config.delivery.domains.clone(),
        // Checked when the configuration was loaded.
        spam: SpamPolicy::parse(&config.delivery.spam_headers).unwrap_or_default(),
        max_message_size: usize::try_from(config.imap.max_message_size).unwrap_or(usize::MAX),
        over_quota: config.quota.over_quota,
        ..DeliveryConfig::default()
    };
    let deliverer = Deliverer::new(stores, settings, outbox);
    Arc::new(match stored {
        Some(stored) => deliverer.notify_stored(stored),
        None => deliverer,
    })
}

/// The session limits the configuration describes.
pub(crate) fn limits(config: &Config) -> LmtpLimits {
    LmtpLimits {
        max_message_size: usize::try_from(config.imap.max_message_size).unwrap_or(usize::MAX),
        ..LmtpLimits::default()
    }
}

/// Bound LMTP sockets, with the client networks the TCP ones serve.
pub(crate) struct LmtpListeners {
    tcp: Vec<TcpListener>,
    unix: Option<(UnixListener, PathBuf)>,
    allowed: Arc<[IpNet]>,
}

impl LmtpListeners {
    /// Binds every configured LMTP address and the unix socket.
    pub(crate) async fn bind(config: &Config) -> anyhow::Result<Self> {
        let mut tcp = Vec::new();
        for addr in &config.lmtp.listen {
            let socket =
                TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (lmtp)"))?;
            if !addr.ip().to_canonical().is_loopback() {
                let allowed: Vec<String> =
                    config.lmtp.allowed_networks.iter().map(ToString::to_string).collect();
                warn!(
                    %addr,
                    allowed_networks = %allowed.join(", "),
                    "LMTP listens on a non-loopback address: it has no authentication, so anyone in \
                     lmtp.allowed_networks can deliver mail to any mailbox"
                );
            }
            tcp.push(socket);
        }
        let unix = match &config.lmtp.listen_unix {
            Some(path) => Some((
                bind_unix(path).with_context(|| format!("cannot listen on {}", path.display()))?,
                path.clone(),
            )),
            None => None,
        };
        Ok(Self { tcp, unix, allowed: config.lmtp.allowed_networks.clone().into() })
    }

    /// One `postfach: listening lmtp ADDR` / `lmtp-unix PATH` line per socket.
    pub(crate) fn announcement(&self) -> io::Result<String> {
        let mut text = String::new();
        for l in &self.tcp {
            text.push_str(&format!("postfach: listening lmtp {}\n", l.local_addr()?));
        }
        if let Some((_, path)) = &self.unix {
            text.push_str(&format!("postfach: listening lmtp-unix {}\n", path.display()));
        }
        Ok(text)
    }
}

/// Binds a unix socket at `path`, replacing a stale socket file that nobody listens on.
fn bind_unix(path: &Path) -> anyhow::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        anyhow::ensure!(meta.file_type().is_socket(), "{} exists and is not a socket", path.display());
        anyhow::ensure!(
            std::os::unix::net::UnixStream::connect(path).is_err(),
            "another server listens on {}",
            path.display()
        );
        std::fs::remove_file(path).context("removing the stale socket")?;
    }
    let listener = UnixListener::bind(path)?;
    // As open as the loopback TCP port: the MTA usually runs as another user. Restrict access
    // with the directory's permissions.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .context("setting the socket's mode")?;
    Ok(listener)
}

/// Serves LMTP until `shutdown`, then waits (bounded) for open connections; removes the unix
/// socket file at the end.
pub(crate) async fn serve(
    listeners: LmtpListeners,
    deliverer: Arc<Deliverer>,
    limits: LmtpLimits,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut loops = JoinSet::new();
    let ctx = || Ctx {
        deliverer: Arc::clone(&deliverer),
        limits: limits.clone(),
        slots: Arc::clone(&slots),
        shutdown: shutdown.clone(),
        allowed: Arc::clone(&listeners.allowed),
        metrics: Arc::clone(&metrics),
    };
    for tcp in listeners.tcp {
        loops.spawn(accept_loop(Acceptor::Tcp(tcp), ctx()));
    }
    let socket_path = listeners.unix.as_ref().map(|(_, p)| p.clone());
    if let Some((unix, _)) = listeners.unix {
        loops.spawn(accept_loop(Acceptor::Unix(unix), ctx()));
    }
    while let Some(done) = loops.join_next().await {
        if let Err(e) = done {
            warn!(error = %e, "LMTP accept loop failed");
        }
    }
    if let Some(path) = socket_path {
        let _ = std::fs::remove_file(path);
    }
}

enum Acceptor {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// What every accept loop shares.
struct Ctx {
    deliverer: Arc<Deliverer>,
    limits: LmtpLimits,
    slots: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
    /// Client networks served over TCP.
    allowed: Arc<[IpNet]>,
    /// Connections are counted here.
    metrics: Arc<Metrics>,
}

async fn accept_loop(acceptor: Acceptor, ctx: Ctx) {
    let Ctx { deliverer, limits, slots, mut shutdown, allowed, metrics } = ctx;
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = accept(&acceptor) => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "LMTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Some(ip) = peer
            && !allowed.iter().any(|net| net.contains(ip))
        {
            info!(peer = %ip, "LMTP connection refused: not in lmtp.allowed_networks");
            // RFC 5321 §3.1: a 554 greeting, then nothing but QUIT would be answered; close.
            let mut stream = stream;
            connections.spawn(async move {
                let _ = stream.write_all(b"554 5.7.1 Not allowed to deliver here\r\n").await;
                let _ = stream.shutdown().await;
            });
            continue;
        }
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            // RFC 5321 §3.8: 421 and close when the service is not available.
            let mut stream = stream;
            connections.spawn(async move {
                let _ = stream.write_all(b"421 4.3.2 Too many connections; try again later\r\n").await;
            });
            continue;
        };
        let peer = peer.map(|ip| ip.to_string());
        let session = LmtpSession::new(Arc::clone(&deliverer), limits.clone(), peer.clone());
        let span = info_span!("lmtp", peer = peer.as_deref().unwrap_or("unix"));
        let shutdown = shutdown.clone();
        let counted = metrics.connection(ConnKind::Lmtp);
        connections.spawn(
            async move {
                let _counted = counted;
                debug!("connection opened");
                drive(stream, session, shutdown).await;
                debug!("connection closed");
                drop(permit);
            }
            .instrument(span),
        );
    }
    drop(acceptor);
    if timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} }).await.is_err() {
        warn!(left = connections.len(), "LMTP connections did not close in time; aborting them");
        connections.shutdown().await;
    }
}

/// A connected LMTP client socket.
enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

/// A connection and its client's address (`None` on the unix socket).
async fn accept(acceptor: &Acceptor) -> io::Result<(Stream, Option<IpAddr>)> {
    match acceptor {
        Acceptor::Tcp(l) => {
            let (s, peer): (_, SocketAddr) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((Stream::Tcp(s), Some(peer.ip())))
        }
        Acceptor::Unix(l) => {
            let (s, _) = l.accept().await?;
            Ok((Stream::Unix(s), None))
        }
    }
}

impl Stream {
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(bytes).await,
            Stream::Unix(s) => s.write_all(bytes).await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown().await,
            Stream::Unix(s) => s.shutdown().await,
        }
    }
}

async fn drive(stream: Stream, session: LmtpSession, shutdown: watch::Receiver<bool>) {
    let result = match stream {
        Stream::Tcp(s) => run(s, session, shutdown).await,
        Stream::Unix(s) => run(s, session, shutdown).await,
    };
    if let Err(e) = result {
        debug!(error = %e, "LMTP connection ended with an error");
    }
}

/// The read → session → write loop of one connection.
async fn run<S>(
    mut stream: S,
    mut session: LmtpSession,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(&session.greeting()).await?;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let read = tokio::select! {
            read = timeout(IDLE_TIMEOUT, stream.read(&mut buf)) => read,
            _ = shutdown_requested(&mut shutdown) => {
                if session.in_transaction() {
                    info!("closing an LMTP connection in the middle of a transaction for shutdown");
                }
                stream.write_all(&session.shutdown_reply()).await?;
                return stream.shutdown().await;
            }
        };
        let n = match read {
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                stream.write_all(&session.timeout_reply()).await?;
                return stream.shutdown().await;
            }
        };
        let mut out = Vec::new();
        let flow = session.input(&buf[..n], &mut out).await;
        if !out.is_empty() {
            stream.write_all(&out).await?;
            stream.flush().await?;
        }
        if flow == postfach_delivery::Flow::Close {
            return stream.shutdown().await;
        }
    }
}
