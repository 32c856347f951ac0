//! Shared set-up for the session tests: a real SQLite store in a temporary directory with one
//! account, `alice` / `secret`, wrapped in the context every session of a server shares.

#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;

use postfach_auth::Authenticator;
use postfach_imap::{ServerContext, SessionConfig};
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
    let mail: Arc<dyn MailStore> = store;
    let ctx = Arc::new(ServerContext {
        store: mail,
        accounts: accounts.clone(),
        auth: Authenticator::new(accounts),
        config: SessionConfig { max_message_size, ..SessionConfig::default() },
    });
    (dir, ctx)
}
