//! The IMAP and POP3 sessions this server process is running, for `postfach who` and `postfach kick`
//! (through the control socket, `control`).
//!
//! Each connection registers when its driver starts and is removed when the driver ends (the
//! [`Registration`] is dropped). The driver reports its session's state after every call into
//! the session: who logged in, the transport (STARTTLS changes it), the selected mailbox.
//! `kick` sets a per-session flag the driver waits on beside the socket, between commands and
//! during IDLE, the way it waits for shutdown: the session says `* BYE` and closes. The wait is
//! a hand-made future of one pointer (a flag and a waker slot) rather than a `watch`, because
//! every idle connection keeps it inside its driver's future (`imap_conn`'s size test).
//!
//! Cost: one small allocation per connection; the table's lock is taken at connect, at close and
//! by the control socket, never per command (a session's own entry has its own lock, which only
//! `who` contends for).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use postfach_imap::{ConnInfo, Session, Transport};
use serde::{Deserialize, Serialize};

/// Every live session of the process.
#[derive(Default)]
pub(crate) struct Sessions {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next: u64,
    /// By registration number: `who` lists them in the order they connected.
    live: BTreeMap<u64, Arc<Live>>,
}

/// One session's entry.
struct Live {
    connected: i64,
    state: Mutex<LiveState>,
    /// Set to end the session (`kick`).
    kicked: AtomicBool,
    /// The driver waiting for `kicked`, woken when it is set.
    waiter: Mutex<Option<Waker>>,
}

impl Live {
    fn kick(&self) {
        self.kicked.store(true, Ordering::SeqCst);
        if let Some(waker) = lock(&self.waiter).take() {
            waker.wake();
        }
    }
}

/// What changes during a session.
#[derive(Clone, PartialEq, Eq)]
struct LiveState {
    /// The client (unspecified until the first [`Registration::update`]).
    peer: SocketAddr,
    transport: Transport,
    user: Option<String>,
    logged_in: Option<i64>,
    selected: Option<String>,
}

/// One session as `postfach who` shows it (and the control socket sends it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionInfo {
    /// Registration number, unique in this server process.
    pub(crate) id: u64,
    /// The logged-in account, `None` before login.
    pub(crate) user: Option<String>,
    /// The client's address and port.
    pub(crate) address: String,
    /// "tls" or "plain".
    pub(crate) transport: String,
    /// When the connection was accepted, Unix seconds.
    pub(crate) connected: i64,
    /// When the login succeeded, Unix seconds.
    pub(crate) logged_in: Option<i64>,
    /// The selected mailbox, as the user names it.
    pub(crate) selected: Option<String>,
}

impl Sessions {
    /// An empty table.
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Registers a new connection; the entry goes when the returned registration is dropped.
    /// Its [`Registration::update`] says whose it is.
    pub(crate) fn register(self: &Arc<Self>) -> Registration {
        let live = Arc::new(Live {
            connected: unix_now(),
            state: Mutex::new(LiveState {
                peer: SocketAddr::from(([0, 0, 0, 0], 0)),
                transport: Transport::Plain,
                user: None,
                logged_in: None,
                selected: None,
            }),
            kicked: AtomicBool::new(false),
            waiter: Mutex::new(None),
        });
        let mut table = self.lock();
        table.next += 1;
        let id = table.next;
        table.live.insert(id, Arc::clone(&live));
        Registration { sessions: Arc::clone(self), id, live }
    }

    /// Every live session, logged in or not, in the order they connected.
    pub(crate) fn list(&self) -> Vec<SessionInfo> {
        let live: Vec<(u64, Arc<Live>)> =
            self.lock().live.iter().map(|(id, l)| (*id, Arc::clone(l))).collect();
        live.into_iter()
            .map(|(id, live)| {
                let state = lock(&live.state).clone();
                SessionInfo {
                    id,
                    user: state.user,
                    address: state.peer.to_string(),
                    transport: transport_name(state.transport).to_owned(),
                    connected: live.connected,
                    logged_in: state.logged_in,
                    selected: state.selected,
                }
            })
            .collect()
    }

    /// Tells every session logged in as `user` (account names compare without case) to end;
    /// returns their registration numbers.
    pub(crate) fn kick(&self, user: &str) -> Vec<u64> {
        let table = self.lock();
        let mut kicked = Vec::new();
        for (id, live) in &table.live {
            let matches = lock(&live.state).user.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(user));
            if matches {
                live.kick();
                kicked.push(*id);
            }
        }
        kicked
    }

    /// How many of `ids` are still registered.
    pub(crate) fn still_open(&self, ids: &[u64]) -> usize {
        let table = self.lock();
        ids.iter().filter(|id| table.live.contains_key(id)).count()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        lock(&self.table)
    }
}

/// A connection's place in [`Sessions`]; dropping it removes the entry.
pub(crate) struct Registration {
    sessions: Arc<Sessions>,
    id: u64,
    live: Arc<Live>,
}

impl Registration {
    /// Records the session's current state (after each call into it). Compares before it
    /// writes, so the usual command costs one uncontended lock and no allocation.
    pub(crate) fn update(&self, session: &Session) {
        self.record(session.connection(), session.account(), session.selected_name());
    }

    /// Records a session's state given piecewise (POP3 sessions: the maildrop is the
    /// "selected" mailbox).
    pub(crate) fn record(&self, conn: &ConnInfo, user: Option<&str>, selected: Option<&str>) {
        let mut state = lock(&self.live.state);
        state.peer = conn.peer;
        state.transport = conn.transport;
        if state.user.as_deref() != user {
            state.logged_in = user.map(|_| unix_now());
            state.user = user.map(str::to_owned);
        }
        if state.selected.as_deref() != selected {
            state.selected = selected.map(str::to_owned);
        }
    }

    /// Resolves once `kick` asked this session to end (at once if it already did): the
    /// driver waits for it beside its reads. Only one waiter at a time is woken.
    pub(crate) async fn kicked(&self) {
        std::future::poll_fn(|cx| {
            if self.live.kicked.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            let mut waiter = lock(&self.live.waiter);
            match waiter.as_ref() {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waiter = Some(cx.waker().clone()),
            }
            drop(waiter);
            // Set between the first look and the waker's registration: do not miss it.
            if self.live.kicked.load(Ordering::SeqCst) { Poll::Ready(()) } else { Poll::Pending }
        })
        .await
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sessions.lock().live.remove(&self.id);
    }
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Plain => "plain",
        Transport::Tls => "tls",
    }
}

/// A lock whose holder never leaves its data half-changed (every update is whole), so a poisoned
/// one is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(0)).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_kick_wakes_the_waiting_driver_or_is_seen_at_once() {
        let sessions = Sessions::new();
        let registration = Arc::new(register(&sessions, 1000));
        let waiting = Arc::clone(&registration);
        let waiter = tokio::spawn(async move { waiting.kicked().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        {
            let mut state = lock(&registration.live.state);
            state.user = Some("alice".to_owned());
        }
        sessions.kick("alice");
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        // Asked again later (the next read): resolves at once.
        tokio::time::timeout(Duration::from_millis(100), registration.kicked()).await.unwrap();
    }

    /// A registration as `update` leaves it for a TLS client at 127.0.0.1:`port`.
    fn register(sessions: &Arc<Sessions>, port: u16) -> Registration {
        let registration = sessions.register();
        let mut state = lock(&registration.live.state);
        state.peer = SocketAddr::from(([127, 0, 0, 1], port));
        state.transport = Transport::Tls;
        drop(state);
        registration
    }

    #[test]
    fn sessions_are_listed_until_dropped_and_kicked_by_user() {
        let sessions = Sessions::new();
        let one = register(&sessions, 1000);
        let two = register(&sessions, 1001);
        {
            let mut state = lock(&two.live.state);
            state.user = Some("Alice".to_owned());
            state.selected = Some("INBOX".to_owned());
        }
        let listed = sessions.list();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].user, None);
        assert_eq!(listed[1].user.as_deref(), Some("Alice"));
        assert_eq!(listed[1].address, "127.0.0.1:1001");
        assert_eq!(listed[1].transport, "tls");
        assert_eq!(listed[1].selected.as_deref(), Some("INBOX"));

        let kicked = sessions.kick("alice");
        assert_eq!(kicked, vec![listed[1].id]);
        assert!(two.live.kicked.load(Ordering::SeqCst));
        assert!(!one.live.kicked.load(Ordering::SeqCst));
        assert!(sessions.kick("bob").is_empty());
        assert_eq!(sessions.still_open(&kicked), 1);
        drop(two);
        assert_eq!(sessions.still_open(&kicked), 0);
        drop(one);
        assert!(sessions.list().is_empty());
    }
}
