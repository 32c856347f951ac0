//! ManageSieve (RFC 5804): users manage their Sieve scripts with a client (Thunderbird's
//! sieve add-on, Roundcube, sieve-connect) on `[managesieve] listen` (default 127.0.0.1:4190).
//!
//! A front end to what `postfach sieve` does: scripts live in the store (`SieveStore`), are
//! compiled by our interpreter (`postfach_sieve`) before they are stored, and delivery runs
//! the active one. Logins are IMAP's: the same [`postfach_auth::Authenticator`] (throttling,
//! blocks, two-factor and app-password rules, the one log line per attempt), the same SASL
//! mechanisms (`postfach_imap::sasl`), the same cleartext rule (`[imap]
//! allow_plaintext_auth`), the same TLS certificate for STARTTLS, and the same connection caps
//! (over all listeners, per client address, per account) and timeouts as `[imap]`.
//!
//! # Layout
//! - `syntax`: commands (atoms, quoted strings, literals, numbers, script names) and the
//!   server's strings, response codes and OK/NO/BYE lines.
//! - `session`: the state machine and the commands, sans I/O.
//! - `conn`: the connection driver: framing limits, timeouts, STARTTLS, shutdown.
//! - this file: binding, the accept loop, the connection caps, graceful shutdown.
//!
//! Limits: see `conn` (framing) and `session` (failed logins, invalid commands, scripts).
//! Not kept in the session table, so `postfach who` and `kick` do not show ManageSieve
//! connections; a revoked credential still ends them at their next command.

mod conn;
mod session;
mod syntax;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use postfach_imap::ServerContext;
use postfach_store::SieveStore;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, timeout};
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::imap_conn::{ConnSettings, shutdown_requested};
use crate::listener::SHUTDOWN_GRACE;

/// The refusal for a client over a connection cap (RFC 5804 §1.2: BYE may come at any time).
const TOO_MANY_CONNECTIONS: &[u8] = b"BYE (TRYLATER) \"Too many connections\"\r\n";
/// Pause after a failed accept.
const ACCEPT_ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// What every ManageSieve connection shares.
pub(crate) struct Service {
    /// The IMAP server's context: authenticator, accounts, the cleartext rule.
    pub(crate) ctx: Arc<ServerContext>,
    /// Where the scripts are.
    pub(crate) sieve: Arc<dyn SieveStore>,
    /// IMAP's connection settings: TLS, timeouts, per-address and per-account counts.
    pub(crate) settings: Arc<ConnSettings>,
    /// IMAP's connection cap over all listeners.
    pub(crate) slots: Arc<Semaphore>,
    /// The interpreter's limit on redirects per delivery, advertised as MAXREDIRECTS.
    pub(crate) max_redirects: usize,
}

/// Binds every `[managesieve] listen` address; fails on the first that cannot be bound.
pub(crate) async fn bind(addresses: &[SocketAddr]) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for addr in addresses {
        let socket = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (managesieve): {e}"))?;
        listeners.push(socket);
    }
    Ok(listeners)
}

/// The `postfach: listening managesieve ADDR` lines of the bound listeners.
pub(crate) fn announcement(listeners: &[TcpListener]) -> io::Result<String> {
    let mut text = String::new();
    for l in listeners {
        let addr = l.local_addr()?;
        text.push_str(&format!("postfach: listening managesieve {addr}\n"));
        info!(kind = "managesieve", %addr, "listening");
    }
    Ok(text)
}

/// Serves every listener until `shutdown`, then waits (bounded) for the connections.
pub(crate) async fn serve(
    listeners: Vec<TcpListener>,
    service: Arc<Service>,
    shutdown: watch::Receiver<bool>,
) {
    let mut loops = JoinSet::new();
    for listener in listeners {
        loops.spawn(accept_loop(listener, Arc::clone(&service), shutdown.clone()));
    }
    while let Some(result) = loops.join_next().await {
        if let Err(e) = result {
            error!(error = %e, "ManageSieve accept loop failed");
        }
    }
}

async fn accept_loop(listener: TcpListener, service: Arc<Service>, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => reap(done),
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => admit(tcp, peer, &service, &shutdown, &mut connections),
                Err(e) => {
                    warn!(error = %e, kind = "managesieve", "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    drop(listener);
    let drained = timeout(SHUTDOWN_GRACE, async {
        while let Some(done) = connections.join_next().await {
            reap(done);
        }
    })
    .await;
    if drained.is_err() {
        warn!(left = connections.len(), "ManageSieve connections did not close in time; aborting them");
        connections.shutdown().await;
    }
}

/// Starts a connection's task within IMAP's caps, or turns the client away with BYE.
fn admit(
    tcp: TcpStream,
    peer: SocketAddr,
    service: &Arc<Service>,
    shutdown: &watch::Receiver<bool>,
    connections: &mut JoinSet<()>,
) {
    let accepted = Instant::now();
    let Some(address_slot) = service.settings.registry.admit_address(peer.ip()) else {
        debug!(%peer, "ManageSieve connection refused: too many connections from this address");
        let _ = tcp.try_write(TOO_MANY_CONNECTIONS);
        return;
    };
    let Ok(permit) = Arc::clone(&service.slots).try_acquire_owned() else {
        debug!(%peer, "ManageSieve connection refused: too many connections");
        let _ = tcp.try_write(TOO_MANY_CONNECTIONS);
        return;
    };
    let _ = tcp.set_nodelay(true);
    let span = info_span!("conn", %peer, kind = "managesieve");
    let service = Arc::clone(service);
    let shutdown = shutdown.clone();
    connections.spawn(
        async move {
            debug!("connection opened");
            Box::pin(conn::run(tcp, peer, service, shutdown, accepted)).await;
            debug!("connection closed");
            drop(address_slot);
            drop(permit);
        }
        .instrument(span),
    );
}

fn reap(done: Result<(), JoinError>) {
    match done {
        Ok(()) => {}
        Err(e) if e.is_panic() => {
            error!(error = %e, "ManageSieve connection task panicked; the server goes on")
        }
        Err(e) => debug!(error = %e, "connection task cancelled"),
    }
}
