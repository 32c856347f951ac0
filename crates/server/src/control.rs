//! The control socket: how admin commands reach the running server's memory.
//!
//! `postfach serve` listens on `DATA/control.sock`, a Unix socket with mode 0600 that is removed
//! when the server stops (one left behind by a crash is replaced at the next start). A request
//! and its answer are one JSON object on one line each; a connection may send several:
//! - `{"op":"who"}` → `{"reply":"sessions","sessions":[{"id":1,"user":"alice",...}]}`
//! - `{"op":"kick","user":"alice"}` → `{"reply":"kicked","kicked":2,"ended":2}`: every session
//!   of the user gets `* BYE` and closes; the answer comes when they have closed (or after
//!   [`KICK_WAIT`]).
//! - `{"op":"changed","mailboxes":[12]}` → `{"reply":"notified","mailboxes":1}`: another process
//!   (the admin CLI) wrote to these mailboxes; the server's sessions that have one selected look
//!   at once, so an IDLE client hears of it without sending a command.
//! - `{"op":"queue_flush"}` → `{"reply":"queue_nudged","sender":true}`: the outbound queue has
//!   entries due now (`postfach queue flush`); the sender looks at once (`sender` is false when
//!   this server runs none: no relay configured).
//! - `{"op":"acme_renew"}` → `{"reply":"acme_renewing","acme":true}`: the ACME task orders a
//!   certificate now (`postfach tls renew`); `acme` is false when `[tls] acme` is not set.
//! - anything else → `{"reply":"error","error":"..."}`.
//!
//! Access: the file's mode, and the peer's user id, read from the socket (`SO_PEERCRED`), must
//! be the server's own or root's.
//!
//! Limits: lines up to [`MAX_LINE`] bytes, [`MAX_CLIENTS`] connections at once (more are closed
//! at once), [`REQUEST_PATIENCE`] for each request line. Without the socket (bind failed, or
//! another server owns it) the server still serves mail; `who` and `kick` then say that no
//! server runs.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use postfach_store::{MailStore, MailboxId};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};
use tracing::{debug, info, warn};

use crate::imap_conn::shutdown_requested;
use crate::sessions::{SessionInfo, Sessions};

/// The socket's file name in the data directory.
pub(crate) const SOCKET_FILE: &str = "control.sock";
/// Longest request line; the longest real one (`changed` with a few mailboxes) is far shorter.
const MAX_LINE: usize = 64 * 1024;
/// Admin connections served at once; an admin runs one command at a time.
const MAX_CLIENTS: usize = 8;
/// How long the server waits for a request line, and the CLI for connecting and for an answer
/// (on top of [`KICK_WAIT`] for `kick`).
const REQUEST_PATIENCE: Duration = Duration::from_secs(10);
/// How long `kick` waits for the sessions to close before it answers: a session in the middle
/// of a command finishes the command first.
const KICK_WAIT: Duration = Duration::from_secs(5);
/// Most mailboxes one `changed` request names.
const MAX_CHANGED: usize = 1024;
/// Pause after a failed accept.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The socket's path for a data directory.
pub(crate) fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// A request, as sent on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    /// The live sessions.
    Who,
    /// End every session of `user`.
    Kick {
        /// The account name.
        user: String,
    },
    /// These mailboxes changed in another process.
    Changed {
        /// Mailbox ids.
        mailboxes: Vec<i64>,
    },
    /// Entries of the outbound queue are due now.
    QueueFlush,
    /// Order an ACME certificate now.
    AcmeRenew,
}

/// An answer, as sent on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub(crate) enum Reply {
    /// To `who`.
    Sessions {
        /// Every live session, logged in or not.
        sessions: Vec<SessionInfo>,
    },
    /// To `kick`.
    Kicked {
        /// Sessions told to end.
        kicked: usize,
        /// Of those, the ones that had closed when the answer was sent.
        ended: usize,
    },
    /// To `changed`.
    Notified {
        /// Mailboxes that exist and whose sessions were told.
        mailboxes: usize,
    },
    /// To `queue_flush`.
    QueueNudged {
        /// Whether this server runs an outbound sender.
        sender: bool,
    },
    /// To `acme_renew`.
    AcmeRenewing {
        /// Whether this server orders ACME certificates (`[tls] acme`).
        acme: bool,
    },
    /// The request was not understood.
    Error {
        /// Why.
        error: String,
    },
}

// --- the server's side ----------------------------------------------------------------------

/// The bound socket; dropping it removes the file.
pub(crate) struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    /// The user id the socket file belongs to (the server's).
    owner: u32,
}

impl ControlSocket {
    /// Binds `DATA/control.sock`, replacing a stale one. `None`, with a warning, when it cannot:
    /// the server then runs without it.
    pub(crate) async fn bind(data_dir: &Path) -> Option<ControlSocket> {
        let path = socket_path(data_dir);
        match Self::try_bind(&path).await {
            Ok(socket) => socket,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "no control socket: `postfach who` and `kick` cannot reach this server");
                None
            }
        }
    }

    async fn try_bind(path: &Path) -> io::Result<Option<ControlSocket>> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is in the way",
                ));
            }
            Ok(_) => {
                if UnixStream::connect(path).await.is_ok() {
                    warn!(path = %path.display(), "another server answers on the control socket; admin commands reach that one");
                    return Ok(None);
                }
                // Left behind by a server that did not stop cleanly.
                std::fs::remove_file(path)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        let owner = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::metadata(path))
            .map(|meta| meta.uid());
        match owner {
            Ok(owner) => Ok(Some(ControlSocket { listener, path: path.to_owned(), owner })),
            Err(e) => {
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// True when the peer runs as the server's user or as root.
    fn allowed(&self, stream: &UnixStream) -> bool {
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == self.owner || cred.uid() == 0 => true,
            Ok(cred) => {
                warn!(uid = cred.uid(), "control socket: refused a connection from another user");
                false
            }
            Err(e) => {
                warn!(error = %e, "control socket: cannot tell who connected; refused");
                false
            }
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the server's side answers from.
pub(crate) struct Control {
    /// The live IMAP sessions.
    pub(crate) sessions: Arc<Sessions>,
    /// The store, whose notifier wakes sessions.
    pub(crate) store: Arc<dyn MailStore>,
    /// Wakes the outbound queue's sender (`None`: this server runs none).
    pub(crate) queue: Option<Arc<Notify>>,
    /// Wakes the ACME task to order now (`None`: no `[tls] acme`).
    pub(crate) acme_renew: Option<Arc<Notify>>,
}

/// Answers on `socket` until `shutdown`; then removes the socket file.
pub(crate) async fn serve(socket: ControlSocket, control: Arc<Control>, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
            accepted = socket.listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                        debug!("control socket: too many connections; one closed");
                        continue;
                    };
                    if !socket.allowed(&stream) {
                        continue;
                    }
                    let control = Arc::clone(&control);
                    clients.spawn(async move {
                        if let Err(e) = client(stream, &control).await {
                            debug!(error = %e, "control connection ended");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    clients.shutdown().await;
    drop(socket);
}

/// One admin connection: request lines until it closes.
async fn client(stream: UnixStream, control: &Control) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = Vec::new();
        let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1;
        let read = timeout(REQUEST_PATIENCE, (&mut reader).take(limit).read_until(b'\n', &mut line)).await;
        let read = read.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request"))??;
        if read == 0 {
            return Ok(());
        }
        let too_long = line.len() > MAX_LINE;
        let reply = if too_long {
            Reply::Error { error: format!("request longer than {MAX_LINE} bytes") }
        } else {
            match serde_json::from_slice::<Request>(line.trim_ascii()) {
                Ok(request) => control.answer(request).await,
                Err(e) => Reply::Error { error: format!("not a request: {e}") },
            }
        };
        let mut out = serde_json::to_vec(&reply).map_err(io::Error::other)?;
        out.push(b'\n');
        write.write_all(&out).await?;
        if too_long {
            // The rest of the line is still unread: nothing after it can be trusted.
            return Ok(());
        }
    }
}

impl Control {
    async fn answer(&self, request: Request) -> Reply {
        match request {
            Request::Who => Reply::Sessions { sessions: self.sessions.list() },
            Request::Kick { user } => {
                let ids = self.sessions.kick(&user);
                info!(account = %user, sessions = ids.len(), "kick requested on the control socket");
                let deadline = Instant::now() + KICK_WAIT;
                while self.sessions.still_open(&ids) > 0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let ended = ids.len() - self.sessions.still_open(&ids);
                Reply::Kicked { kicked: ids.len(), ended }
            }
            Request::Changed { mailboxes } => {
                if mailboxes.len() > MAX_CHANGED {
                    return Reply::Error { error: format!("more than {MAX_CHANGED} mailboxes") };
                }
                let mut told = 0;
                for id in mailboxes.into_iter().map(MailboxId) {
                    // The new highest modseq, which the signal carries; a mailbox that is gone
                    // has nobody to tell.
                    if let Ok(status) = self.store.status(id).await {
                        self.store.notifier().changed(id, status.highest_modseq);
                        told += 1;
                    }
                }
                Reply::Notified { mailboxes: told }
            }
            Request::QueueFlush => {
                if let Some(nudge) = &self.queue {
                    nudge.notify_one();
                }
                Reply::QueueNudged { sender: self.queue.is_some() }
            }
            Request::AcmeRenew => {
                if let Some(nudge) = &self.acme_renew {
                    nudge.notify_one();
                }
                Reply::AcmeRenewing { acme: self.acme_renew.is_some() }
            }
        }
    }
}

// --- the admin commands' side ---------------------------------------------------------------

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AskError {
    /// Nothing listens on the socket: no server runs on this data directory.
    #[error("no server is running on {} (nothing answers on {})", .data_dir.display(), .socket.display())]
    NotRunning {
        /// The data directory.
        data_dir: PathBuf,
        /// The socket asked.
        socket: PathBuf,
    },
    /// The conversation failed.
    #[error("talking to the server on {}: {source}", .socket.display())]
    Failed {
        /// The socket asked.
        socket: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The server did not understand the request.
    #[error("the server refused the request: {0}")]
    Refused(String),
}

/// Sends one request to the server running on `data_dir` and returns its answer.
pub(crate) async fn ask(data_dir: &Path, request: &Request) -> Result<Reply, AskError> {
    let socket = socket_path(data_dir);
    let failed = |source: io::Error| AskError::Failed { socket: socket.clone(), source };
    let stream = match timeout(REQUEST_PATIENCE, UnixStream::connect(&socket)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => {
            return Err(AskError::NotRunning { data_dir: data_dir.to_owned(), socket });
        }
        Ok(Err(e)) => return Err(failed(e)),
        Err(_) => return Err(failed(io::Error::new(io::ErrorKind::TimedOut, "no answer"))),
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request).map_err(|e| failed(io::Error::other(e)))?;
    line.push(b'\n');
    write.write_all(&line).await.map_err(failed)?;
    let mut answer = Vec::new();
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX).saturating_mul(64);
    let mut reader = BufReader::new(read).take(limit);
    let read = timeout(REQUEST_PATIENCE + KICK_WAIT, reader.read_until(b'\n', &mut answer))
        .await
        .map_err(|_| failed(io::Error::new(io::ErrorKind::TimedOut, "no answer")))?
        .map_err(failed)?;
    if read == 0 {
        return Err(failed(io::Error::new(io::ErrorKind::UnexpectedEof, "closed without an answer")));
    }
    match serde_json::from_slice::<Reply>(answer.trim_ascii()) {
        Ok(Reply::Error { error }) => Err(AskError::Refused(error)),
        Ok(reply) => Ok(reply),
        Err(e) => Err(failed(io::Error::new(io::ErrorKind::InvalidData, e))),
    }
}

/// After the CLI wrote to `mailboxes`: tells a running server, so its sessions (IDLE too) see
/// the change at once rather than at their next command. Without a server there is nobody to
/// tell; a failure is only a warning, since the change itself is done.
pub(crate) async fn tell_changed(data_dir: &Path, mailboxes: &[MailboxId]) {
    let request = Request::Changed { mailboxes: mailboxes.iter().map(|m| m.0).collect() };
    match ask(data_dir, &request).await {
        Ok(_) | Err(AskError::NotRunning { .. }) => {}
        Err(e) => warn!(error = %e, "the running server's sessions see the change at their next command"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_format_is_stable() {
        let who = serde_json::to_string(&Request::Who).unwrap();
        assert_eq!(who, r#"{"op":"who"}"#);
        let kick: Request = serde_json::from_str(r#"{"op":"kick","user":"alice"}"#).unwrap();
        assert_eq!(kick, Request::Kick { user: "alice".to_owned() });
        let reply = serde_json::to_string(&Reply::Kicked { kicked: 2, ended: 1 }).unwrap();
        assert_eq!(reply, r#"{"reply":"kicked","kicked":2,"ended":1}"#);
        assert!(serde_json::from_str::<Request>(r#"{"op":"reboot"}"#).is_err());
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_the_file_goes_with_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_path(dir.path());
        // A socket nobody listens on, as a killed server leaves it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let err = ask(dir.path(), &Request::Who).await.unwrap_err();
        assert!(matches!(err, AskError::NotRunning { .. }), "{err}");

        let socket = ControlSocket::bind(dir.path()).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A second server finds it alive and leaves it alone.
        assert!(ControlSocket::bind(dir.path()).await.is_none());

        let store = Arc::new(postfach_store::SqliteStore::open(dir.path()).unwrap());
        let control = Arc::new(Control { sessions: Sessions::new(), store, queue: None, acme_renew: None });
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(socket, control, stopped));
        let reply = ask(dir.path(), &Request::Who).await.unwrap();
        assert_eq!(reply, Reply::Sessions { sessions: Vec::new() });
        let reply = ask(dir.path(), &Request::Kick { user: "nobody".to_owned() }).await.unwrap();
        assert_eq!(reply, Reply::Kicked { kicked: 0, ended: 0 });
        let reply = ask(dir.path(), &Request::Changed { mailboxes: vec![999] }).await.unwrap();
        assert_eq!(reply, Reply::Notified { mailboxes: 0 });
        let reply = ask(dir.path(), &Request::QueueFlush).await.unwrap();
        assert_eq!(reply, Reply::QueueNudged { sender: false });
        stop.send_replace(true);
        server.await.unwrap();
        assert!(!path.exists(), "the socket file is removed when the server stops");
    }
}
