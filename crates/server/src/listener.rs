//! Listening sockets: binding, accept loops, connection caps and graceful shutdown, for IMAP and
//! POP3 alike (one set of caps covers both; `pop3` drives the POP3 connections).
//!
//! Each listener gets one accept loop that owns the tasks of its connections (a `JoinSet`), so a
//! panic inside a connection is caught at the task boundary and logged instead of taking the
//! server down. Three caps keep one client from crowding out the others: a semaphore over all
//! listeners, a count per client address ([`Registry`]; an IPv6 client counts by its /64,
//! exempt networks not at all), both checked here before any work is spent on the connection,
//! and a count per account that the session takes through its admission hook at login, before
//! it answers OK (a login beyond it gets `NO [LIMIT]`). A client beyond the first two gets
//! `* BYE [UNAVAILABLE] ...` on the cleartext port and is closed at once; on the TLS port it is
//! closed without a word. On shutdown the loops stop accepting, every connection is told
//! through a `watch` channel, finishes its command in flight, says BYE and closes; connections
//! still open after [`SHUTDOWN_GRACE`] are aborted.
//!
//! Limits: accept errors (for example, out of file descriptors) are logged and retried after a
//! short pause. The counts live in this process only.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postfach_auth::Principal;
use postfach_auth::admission::{Admission, Admitted};
use postfach_auth::scram::ChannelBinding;
use postfach_imap::{ConnInfo, ServerContext, Session, Transport};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, timeout};
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::binding::channel_binding;
use crate::config::{ImapConfig, IpNet, Pop3Config};
use crate::imap_conn::{self, ConnSettings, Stream, shutdown_requested};
use crate::metrics::ConnKind;
use crate::pop3::{self, Pop3Settings};
use crate::tls_conn;

/// How long connections may take to finish after shutdown was requested.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed accept, so a persistent error (no file descriptors) does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// RFC 9051 §7.1.5 (case 4) BYE greeting with the RFC 5530 UNAVAILABLE code.
const TOO_MANY_CONNECTIONS: &[u8] = b"* BYE [UNAVAILABLE] Too many connections\r\n";
/// The same for a client over its address's cap.
const TOO_MANY_FROM_ADDRESS: &[u8] = b"* BYE [UNAVAILABLE] Too many connections from your address\r\n";
/// Bytes rustls may hold of output the client has not read yet (its default is 64 KiB). The
/// driver writes whole responses with a timeout, so a small buffer only means more, smaller
/// writes; it bounds what a client that stops reading costs.
pub(crate) const TLS_BUFFER_LIMIT: usize = 16 * 1024;

/// RFC 2449 §8 / RFC 3206 §4: the POP3 refusal of a client over the connection caps.
const POP3_TOO_MANY_CONNECTIONS: &[u8] = b"-ERR [SYS/TEMP] Too many connections\r\n";

/// The kinds of listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// IMAP, cleartext with STARTTLS.
    Imap,
    /// IMAP, implicit TLS (RFC 8314).
    Imaps,
    /// POP3, cleartext with STLS (RFC 2595).
    Pop3,
    /// POP3, implicit TLS (RFC 8314).
    Pop3s,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Imap => "imap",
            Kind::Imaps => "imaps",
            Kind::Pop3 => "pop3",
            Kind::Pop3s => "pop3s",
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

/// Binds every configured address (IMAP first, then POP3); fails on the first that cannot be
/// bound.
pub(crate) async fn bind(imap: &ImapConfig, pop3: &Pop3Config) -> Result<Vec<Listener>, BindError> {
    let wanted = imap
        .listen
        .iter()
        .map(|a| (Kind::Imap, *a))
        .chain(imap.listen_tls.iter().map(|a| (Kind::Imaps, *a)))
        .chain(pop3.listen.iter().map(|a| (Kind::Pop3, *a)))
        .chain(pop3.listen_tls.iter().map(|a| (Kind::Pop3s, *a)));
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
    /// What POP3 connections need besides `settings`.
    pub(crate) pop3: Arc<Pop3Settings>,
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

/// Open connections per key (client address or account), each bounded by `max`.
pub(crate) struct Counter<K: Hash + Eq + Clone> {
    counts: Mutex<HashMap<K, usize>>,
    max: usize,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { counts: Mutex::new(HashMap::new()), max })
    }

    /// Counts one more connection for `key`, or `None` if `key` is at the limit. The count
    /// goes down when the returned slot is dropped, so the map only holds keys with open
    /// connections.
    pub(crate) fn acquire(self: &Arc<Self>, key: K) -> Option<Slot<K>> {
        // A poisoned lock means a panic elsewhere while holding it; the map is still consistent
        // (every update is a single insert or remove).
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot { counter: Arc::clone(self), key })
    }

    /// Open connections counted for `key`.
    #[cfg(test)]
    fn count(&self, key: &K) -> usize {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).get(key).copied().unwrap_or(0)
    }
}

/// One counted connection; dropping it uncounts it.
pub(crate) struct Slot<K: Hash + Eq + Clone> {
    counter: Arc<Counter<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self.counter.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// The per-address and per-account connection counts of the whole server.
pub(crate) struct Registry {
    addresses: Arc<Counter<IpAddr>>,
    accounts: Arc<AccountAdmission>,
    exempt: Vec<IpNet>,
}

/// The per-account count as the sessions' admission hook: a login takes a slot of its account
/// before the session answers OK, and the session holds it until it ends.
pub(crate) struct AccountAdmission(Arc<Counter<String>>);

impl Admission for AccountAdmission {
    fn admit(&self, principal: &Principal) -> Option<Admitted> {
        self.0.acquire(principal.name.clone()).map(Admitted::new)
    }
}

/// A connection's place in the per-address count.
pub(crate) enum AddressSlot {
    /// Counted; uncounted when dropped. The slot is only held, never read: its `Drop` is
    /// what matters.
    Counted(#[allow(dead_code)] Slot<IpAddr>),
    /// From an exempt network: not counted.
    Exempt,
}

impl Registry {
    /// Empty counts with the limits of `[imap]`.
    pub(crate) fn new(imap: &ImapConfig) -> Self {
        Self {
            addresses: Counter::new(imap.max_connections_per_address),
            accounts: Arc::new(AccountAdmission(Counter::new(imap.max_connections_per_account))),
            exempt: imap.connection_limit_exempt.clone(),
        }
    }

    /// Counts a connection from `ip`; `None` when its address (or /64) is at the limit.
    pub(crate) fn admit_address(&self, ip: IpAddr) -> Option<AddressSlot> {
        if self.exempt.iter().any(|net| net.contains(ip)) {
            return Some(AddressSlot::Exempt);
        }
        self.addresses.acquire(address_key(ip)).map(AddressSlot::Counted)
    }

    /// Counts a logged-in connection of `account`; `None` when the account is at the limit.
    #[cfg(test)]
    fn admit_account(&self, account: &str) -> Option<Slot<String>> {
        self.accounts.0.acquire(account.to_owned())
    }

    /// The hook every session asks at login (the per-account count).
    pub(crate) fn account_admission(&self) -> Arc<dyn Admission> {
        self.accounts.clone()
    }
}

/// The key a client address is counted under: IPv4 as is (also when mapped into IPv6), IPv6
/// by its /64 network, because one subscriber or server is usually given a whole /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
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
    let accepted = Instant::now();
    // A fresh socket's send buffer is empty, so a non-blocking write of the refusal goes
    // through. On the TLS port a cleartext line would only confuse the client, and a handshake
    // would cost CPU exactly when the server is under pressure: just close.
    let refuse = |line: &[u8]| match kind {
        Kind::Imap => {
            let _ = tcp.try_write(line);
        }
        Kind::Pop3 => {
            let _ = tcp.try_write(POP3_TOO_MANY_CONNECTIONS);
        }
        Kind::Imaps | Kind::Pop3s => {}
    };
    let Some(address_slot) = shared.settings.registry.admit_address(peer.ip()) else {
        debug!(%peer, %kind, "connection refused: too many connections from this address");
        refuse(TOO_MANY_FROM_ADDRESS);
        return;
    };
    let Ok(permit) = Arc::clone(&shared.slots).try_acquire_owned() else {
        debug!(%peer, %kind, "connection refused: too many connections");
        refuse(TOO_MANY_CONNECTIONS);
        return;
    };
    // Responses are written whole; waiting to coalesce them only adds latency.
    let _ = tcp.set_nodelay(true);
    let span = info_span!("conn", %peer, %kind);
    let counted = shared.settings.metrics.connection(match kind {
        Kind::Imap => ConnKind::Imap,
        Kind::Imaps => ConnKind::Imaps,
        Kind::Pop3 => ConnKind::Pop3,
        Kind::Pop3s => ConnKind::Pop3s,
    });
    let shared = Arc::clone(shared);
    let shutdown = shutdown.clone();
    connections.spawn(
        async move {
            let _counted = counted;
            debug!("connection opened");
            connection(kind, tcp, peer, accepted, &shared, shutdown).await;
            debug!("connection closed");
            // Released last, so the caps also cover the time spent closing.
            drop(address_slot);
            drop(permit);
        }
        .instrument(span),
    );
}

/// One connection from accept to close: the TLS handshake on the implicit-TLS ports, then the
/// IMAP or POP3 driver.
async fn connection(
    kind: Kind,
    tcp: TcpStream,
    peer: SocketAddr,
    accepted: Instant,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let secured = match kind {
        Kind::Imap | Kind::Pop3 => Some((Stream::Plain(tcp), Transport::Plain, None)),
        // Boxed: the handshake's state (its timer, the shutdown wait, rustls' handshake) is
        // needed only until it ends, while the task of every idle connection keeps this future.
        Kind::Imaps | Kind::Pop3s => {
            let handshake = Box::pin(handshake(kind, tcp, shared, &mut shutdown));
            handshake.await
        }
    };
    let Some((stream, transport, binding)) = secured else { return };
    // The sessions are made by plain functions and the drivers' futures boxed in statements
    // of their own: a session borrowed here, or a temporary alive across the `await`, would
    // keep its place in this future, and so in the task of every idle connection.
    if matches!(kind, Kind::Pop3 | Kind::Pop3s) {
        let session = pop3_session(shared, peer, transport, binding);
        let settings = Arc::clone(&shared.settings);
        let pop3 = Arc::clone(&shared.pop3);
        let run = Box::pin(pop3::conn::run(stream, session, settings, pop3, shutdown, accepted));
        run.await;
        return;
    }
    let session = imap_session(shared, peer, transport, binding);
    let run = Box::pin(imap_conn::run(stream, session, Arc::clone(&shared.settings), shutdown, accepted));
    run.await;
}

/// A new IMAP session for a connection from `peer`.
fn imap_session(
    shared: &Shared,
    peer: SocketAddr,
    transport: Transport,
    binding: Option<ChannelBinding>,
) -> Session {
    let mut session = Session::new(Arc::clone(&shared.ctx), ConnInfo { peer, transport });
    session.set_admission(shared.settings.registry.account_admission());
    if transport == Transport::Tls {
        // SCRAM-SHA-256-PLUS needs the connection's channel binding (issue 5).
        session.set_channel_binding(binding);
    }
    session
}

/// A new POP3 session for a connection from `peer`.
fn pop3_session(
    shared: &Shared,
    peer: SocketAddr,
    transport: Transport,
    binding: Option<ChannelBinding>,
) -> pop3::session::Session {
    pop3::session::Session::new(
        Arc::clone(&shared.ctx),
        Arc::clone(&shared.pop3.locks),
        ConnInfo { peer, transport },
        Some(shared.settings.registry.account_admission()),
        binding,
    )
}

/// The TLS handshake of an implicit-TLS connection (IMAP through `tls_conn`, POP3 through
/// tokio-rustls), bounded by the pre-auth timeout and deadline; `None` when there is nothing
/// to serve (it failed, timed out, was an ACME validation, or the server is stopping).
async fn handshake(
    kind: Kind,
    tcp: TcpStream,
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(Stream<TcpStream>, Transport, Option<ChannelBinding>)> {
    // The handshake counts against both the silence timeout and the login deadline.
    let limit = shared.settings.preauth_timeout.min(shared.settings.preauth_deadline);
    let certificates = shared.settings.certificates.as_deref();
    let result = if kind == Kind::Imaps {
        // TLS-ALPN-01 (RFC 8737) is answered on the IMAP port only: the CA connects to it.
        let challenges = shared.settings.acme_alpn.as_deref();
        let config = shared.settings.tls.config();
        let handshake = timeout(limit, tls_conn::accept(config, challenges, certificates, tcp));
        let tls = tokio::select! {
            tls = handshake => tls,
            _ = shutdown_requested(shutdown) => return None,
        };
        tls.map(|accepted| {
            accepted.map(|accepted| match accepted {
                tls_conn::Accepted::Connection(tls, binding) => {
                    Some((Stream::TlsOwned(tls), Transport::Tls, binding))
                }
                tls_conn::Accepted::Challenge => None,
            })
        })
    } else {
        let handshake = timeout(limit, shared.settings.tls.accept(tcp));
        let tls = tokio::select! {
            tls = handshake => tls,
            _ = shutdown_requested(shutdown) => return None,
        };
        tls.map(|accepted| {
            accepted.map(|mut tls| {
                tls.get_mut().1.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
                let binding = channel_binding(tls.get_ref().1, certificates);
                Some((Stream::Tls(Box::new(tls)), Transport::Tls, binding))
            })
        })
    };
    match result {
        Ok(Ok(secured)) => secured,
        Ok(Err(e)) => {
            debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            debug!("TLS handshake timed out");
            None
        }
    }
}

/// Logs how a connection task ended if it did not end normally.
fn reap(done: Result<(), JoinError>) {
    match done {
        Ok(()) => {}
        Err(e) if e.is_panic() => error!(error = %e, "connection task panicked; the server goes on"),
        Err(e) => debug!(error = %e, "connection task cancelled"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counter_limits_and_releases() {
        let counter = Counter::new(2);
        let a1 = counter.acquire("a").unwrap();
        let a2 = counter.acquire("a").unwrap();
        assert!(counter.acquire("a").is_none(), "third over the limit");
        let b = counter.acquire("b").unwrap();
        assert_eq!(counter.count(&"a"), 2);
        drop(a1);
        assert_eq!(counter.count(&"a"), 1);
        let a3 = counter.acquire("a").unwrap();
        drop((a2, a3, b));
        assert!(counter.counts.lock().unwrap().is_empty(), "no entries are left behind");
    }

    #[test]
    fn addresses_are_grouped_and_exemptions_apply() {
        let imap = ImapConfig {
            max_connections_per_address: 1,
            connection_limit_exempt: vec![IpNet::parse("127.0.0.0/8").unwrap()],
            ..ImapConfig::default()
        };
        let registry = Registry::new(&imap);
        let held = registry.admit_address("2001:db8::1".parse().unwrap()).unwrap();
        assert!(matches!(held, AddressSlot::Counted(_)));
        // Same /64, another host: the same key.
        assert!(registry.admit_address("2001:db8::ffff:1".parse().unwrap()).is_none());
        assert!(registry.admit_address("2001:db8:0:1::1".parse().unwrap()).is_some());
        let v4 = registry.admit_address("192.0.2.1".parse().unwrap()).unwrap();
        assert!(registry.admit_address("::ffff:192.0.2.1".parse().unwrap()).is_none(), "mapped = IPv4");
        for _ in 0..5 {
            assert!(matches!(
                registry.admit_address("127.0.0.1".parse().unwrap()),
                Some(AddressSlot::Exempt)
            ));
        }
        drop((held, v4));
        assert!(registry.admit_address("192.0.2.1".parse().unwrap()).is_some());
    }

    #[test]
    fn accounts_are_counted() {
        let imap = ImapConfig { max_connections_per_account: 2, ..ImapConfig::default() };
        let registry = Registry::new(&imap);
        let one = registry.admit_account("alice").unwrap();
        let _two = registry.admit_account("alice").unwrap();
        assert!(registry.admit_account("alice").is_none());
        assert!(registry.admit_account("bob").is_some());
        drop(one);
        assert!(registry.admit_account("alice").is_some());
    }
}
