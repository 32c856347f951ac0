//! Shared set-up for the session tests: a real SQLite store in a temporary directory with one
//! account, `alice` / `secret`, wrapped in the context every session of a server shares.

#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use postfach_auth::Authenticator;
use postfach_imap::{ConnInfo, Out, Outcome, ServerContext, Session, SessionConfig, Transport};
use postfach_secret::Secret;
use postfach_store::sqlite::SqliteStore;
use postfach_store::{AccountStore, MailStore};

/// The temporary data directory (keep it alive) and the shared context.
pub(crate) async fn context(max_message_size: u32) -> (tempfile::TempDir, Arc<ServerContext>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let hash = postfach_auth::password::hash(&Secret::from(b"secret".to_vec())).unwrap();
    AccountStore::create_account(&*store, "alice", &hash).await.unwrap();
    let accounts: Arc<dyn AccountStore> = store.clone();
    let share: Arc<dyn postfach_store::ShareStore> = store.clone();
    let mail: Arc<dyn MailStore> = store;
    let ctx = Arc::new(ServerContext {
        store: mail,
        share,
        accounts: accounts.clone(),
        auth: Authenticator::new(accounts),
        config: SessionConfig { max_message_size, ..SessionConfig::default() },
    });
    (dir, ctx)
}

/// One session driven in-process: complete command bytes in (literals inline, as the framer
/// delivers them), response lines out.
pub(crate) struct Client {
    pub(crate) session: Session,
    /// The store's directory, when this client is the only one using it.
    pub(crate) dir: Option<tempfile::TempDir>,
}

impl Client {
    /// A greeted session from 127.0.0.1 over `transport`.
    pub(crate) fn new(ctx: &Arc<ServerContext>, transport: Transport) -> Client {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut session = Session::new(Arc::clone(ctx), ConnInfo { peer, transport });
        let mut out = Out::new();
        session.greeting(&mut out);
        let greeting = String::from_utf8(out.take()).unwrap();
        assert!(greeting.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2"), "{greeting}");
        Client { session, dir: None }
    }

    /// A session over TLS, logged in as alice.
    pub(crate) async fn logged_in(ctx: &Arc<ServerContext>) -> Client {
        let mut c = Client::new(ctx, Transport::Tls);
        let r = c.cmd("l LOGIN alice secret").await;
        assert!(r.last().unwrap().starts_with("l OK [CAPABILITY"), "{r:?}");
        c
    }

    /// Runs command bytes; the response lines and the outcome for the driver.
    pub(crate) async fn handle(&mut self, bytes: Vec<u8>) -> (Vec<String>, Outcome) {
        let mut out = Out::new();
        let outcome = self.session.handle(bytes, &mut out).await;
        let text = String::from_utf8_lossy(&out.take()).into_owned();
        (text.split("\r\n").filter(|l| !l.is_empty()).map(str::to_owned).collect(), outcome)
    }

    /// Runs command bytes; the response lines.
    pub(crate) async fn raw(&mut self, bytes: Vec<u8>) -> Vec<String> {
        self.handle(bytes).await.0
    }

    /// Runs one command line (no CRLF); the response lines.
    pub(crate) async fn cmd(&mut self, line: &str) -> Vec<String> {
        self.raw(line.as_bytes().to_vec()).await
    }

    /// Runs a command that must end OK and returns its one untagged line starting with `prefix`.
    pub(crate) async fn line(&mut self, command: &str, prefix: &str) -> String {
        let r = self.cmd(command).await;
        let tag = command.split(' ').next().unwrap();
        assert!(r.last().unwrap().starts_with(&format!("{tag} OK")), "{command}: {r:?}");
        let found: Vec<&String> = r.iter().filter(|l| l.starts_with(prefix)).collect();
        assert_eq!(found.len(), 1, "{command}: {r:?}");
        found[0].clone()
    }
}
