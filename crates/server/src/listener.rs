//! Listening sockets: binding, accept loops, the global connection cap and graceful shutdown.
//!
//! Each listener gets one accept loop that owns the tasks of its connections (a `JoinSet`), so a
//! panic inside a connection is caught at the task boundary and logged instead of taking the
//! server down. A semaphore caps connections over all listeners; a client beyond the cap gets
//! `* BYE [UNAVAILABLE] Too many connections` and is closed at once. On shutdown the loops stop
//! accepting, every connection is told through a `watch` channel, finishes its command in flight,
//! says BYE and closes; connections still open after [`SHUTDOWN_GRACE`] are aborted.
//!
//! Limits: no per-IP cap yet; accept errors (for example, out of file descriptors) are logged and
//! retried after a short pause.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postfach_imap::{ConnInfo, ServerContext, Session, Transport};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinError, JoinSet};
use tokio::time::timeout;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::config::ImapConfig;
use crate::imap_conn::{self, ConnSettings, Stream, shutdown_requested};

/// How long connections may take to finish after shutdown was requested.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed accept, so a persistent error (no file descriptors) does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// RFC 9051 §7.1.5 (case 4) BYE greeting with the RFC 5530 UNAVAILABLE code.
const TOO_MANY_CONNECTIONS: &[u8] = b"* BYE [UNAVAILABLE] Too many connections\r\n";

/// The two kinds of IMAP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Cleartext with STARTTLS.
    Imap,
    /// Implicit TLS (RFC 8314).
    Imaps,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Imap => "imap",
            Kind::Imaps => "imaps",
        })
    }
}

/// A bound listening socket.
pub(crate) struct Listener {
    /// What it serves.
    pub(crate) kind: Kind,
    /// The socket.
    socket: TcpListener,
}

impl Listener {
    /// The address actually bound (the real port when the configuration said 0).
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

/// A listener could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({kind})")]
pub(crate) struct BindError {
    addr: SocketAddr,
    kind: Kind,
    source: io::Error,
}

/// Binds every configured address; fails on the first that cannot be bound.
pub(crate) async fn bind(imap: &ImapConfig) -> Result<Vec<Listener>, BindError> {
    let wanted =
        imap.listen.iter().map(|a| (Kind::Imap, *a)).chain(imap.listen_tls.iter().map(|a| (Kind::Imaps, *a)));
    let mut listeners = Vec::new();
    for (kind, addr) in wanted {
        let socket = TcpListener::bind(addr).await.map_err(|source| BindError { addr, kind, source })?;
        listeners.push(Listener { kind, socket });
    }
    Ok(listeners)
}

/// What all accept loops share.
pub(crate) struct Shared {
    /// Handed to every session.
    pub(crate) ctx: Arc<ServerContext>,
    /// Limits, timeouts and TLS for every connection.
    pub(crate) settings: Arc<ConnSettings>,
    /// One permit per allowed connection, over all listeners.
    pub(crate) slots: Arc<Semaphore>,
}

/// Serves on every listener until `shutdown` turns true, then waits (bounded) for connections.
pub(crate) async fn serve(listeners: Vec<Listener>, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let mut loops = JoinSet::new();
    for listener in listeners {
        loops.spawn(accept_loop(listener, Arc::clone(&shared), shutdown.clone()));
    }
    while let Some(result) = loops.join_next().await {
        if let Err(e) = result {
            error!(error = %e, "accept loop failed");
        }
    }
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let kind = listener.kind;
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => reap(done),
            accepted = listener.socket.accept() => match accepted {
                Ok((tcp, peer)) => admit(kind, tcp, peer, &shared, &shutdown, &mut connections),
                Err(e) => {
                    warn!(error = %e, %kind, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    drop(listener);
    let open = connections.len();
    if open > 0 {
        info!(%kind, open, "waiting for connections to close");
    }
    let drained = timeout(SHUTDOWN_GRACE, async {
        while let Some(done) = connections.join_next().await {
            reap(done);
        }
    })
    .await;
    if drained.is_err() {
        warn!(%kind, left = connections.len(), "connections did not close in time; aborting them");
        connections.shutdown().await;
    }
}

/// Starts a connection's task if a slot is free; otherwise turns the client away.
fn admit(
    kind: Kind,
    tcp: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    shutdown: &watch::Receiver<bool>,
    connections: &mut JoinSet<()>,
) {
    let Ok(permit) = Arc::clone(&shared.slots).try_acquire_owned() else {
        debug!(%peer, %kind, "connection refused: too many connections");
        if kind == Kind::Imap {
            // A fresh socket's send buffer is empty, so this non-blocking write goes through.
            // On the TLS port a cleartext line would only confuse the client, and a handshake
            // would cost CPU exactly when the server is overloaded: just close.
            let _ = tcp.try_write(TOO_MANY_CONNECTIONS);
        }
        return;
    };
    // Responses are written whole; waiting to coalesce them only adds latency.
    let _ = tcp.set_nodelay(true);
    let span = info_span!("conn", %peer, %kind);
    let shared = Arc::clone(shared);
    let shutdown = shutdown.clone();
    connections.spawn(
        async move {
            debug!("connection opened");
            connection(kind, tcp, peer, &shared, shutdown).await;
            debug!("connection closed");
            // Released last, so the cap also covers the time spent closing.
            drop(permit);
        }
        .instrument(span),
    );
}

/// One connection from accept to close: the TLS handshake on the implicit-TLS port, then the
/// IMAP driver.
async fn connection(
    kind: Kind,
    tcp: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let (stream, transport) = match kind {
        Kind::Imap => (Stream::Plain(tcp), Transport::Plain),
        Kind::Imaps => {
            let handshake = timeout(shared.settings.preauth_timeout, shared.settings.tls.accept(tcp));
            let tls = tokio::select! {
                tls = handshake => tls,
                _ = shutdown_requested(&mut shutdown) => return,
            };
            match tls {
                Ok(Ok(tls)) => (Stream::Tls(Box::new(tls)), Transport::Tls),
                Ok(Err(e)) => {
                    debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!("TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let session = Session::new(Arc::clone(&shared.ctx), ConnInfo { peer, transport });
    imap_conn::run(stream, session, Arc::clone(&shared.settings), shutdown).await;
}

/// Logs how a connection task ended if it did not end normally.
fn reap(done: Result<(), JoinError>) {
    match done {
        Ok(()) => {}
        Err(e) if e.is_panic() => error!(error = %e, "connection task panicked; the server goes on"),
        Err(e) => debug!(error = %e, "connection task cancelled"),
    }
}
