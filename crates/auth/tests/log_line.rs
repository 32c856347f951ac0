//! The per-attempt log line (target `postfach::auth`): its fields and its safety against log
//! injection. docs/auth.md documents the format for fail2ban; this test keeps it honest.

#![allow(clippy::unwrap_used)]

use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postfach_auth::clock::ManualClock;
use postfach_auth::scram::{ScramClient, Variant};
use postfach_auth::throttle::ThrottlePolicy;
use postfach_auth::{AuthSettings, Authenticator, Mechanism, password};
use postfach_secret::Secret;
use postfach_store::AccountStore;
use postfach_store::sqlite::SqliteStore;

const PASSWORD: &[u8] = b"correct horse";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn login(auth: &Authenticator, from: &str, user: &str, secret: &[u8]) {
    let _ = auth.login(ip(from), Mechanism::Plain, user, Secret::from(secret.to_vec())).await;
}

/// A `MakeWriter` that collects log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The only test in this binary: it installs the process-wide subscriber (a thread-local one
/// misses events whose call sites other test threads registered first).
#[tokio::test]
async fn every_attempt_is_one_line_on_the_auth_target() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let (hash, scram) = password::hash_with_scram(&Secret::from(PASSWORD.to_vec())).unwrap();
    let alice = store.create_account("alice", &hash).await.unwrap();
    store.set_password(alice, &hash, Some(&scram)).await.unwrap();
    let settings = AuthSettings {
        throttle: ThrottlePolicy { block_after: 2, max_delay: Duration::ZERO, ..ThrottlePolicy::default() },
        trusted_networks: Vec::new(),
    };
    let accounts: Arc<dyn AccountStore> = store;
    let auth = Authenticator::with_settings(
        accounts,
        settings,
        Arc::new(ManualClock::new(Duration::from_secs(1_700_000_000))),
    );

    let _ = login(&auth, "192.0.2.1", "alice", PASSWORD).await;
    let _ = login(&auth, "192.0.2.9", "evil\"\n name", b"x").await;
    let _ = login(&auth, "192.0.2.9", "bob", b"x").await;
    let _ = login(&auth, "192.0.2.9", "alice", PASSWORD).await;
    let mut client = ScramClient::new("alice", PASSWORD, "nonce", None);
    let exchange = auth
        .scram_start(ip("192.0.2.1"), Variant::Plain, client.client_first().as_bytes(), None)
        .await
        .unwrap();
    let last = client.client_final(exchange.server_first().as_bytes()).unwrap();
    auth.scram_finish(exchange, last.as_bytes()).await.unwrap();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("postfach::auth: authentication")).collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].contains("addr=192.0.2.1 account=\"alice\" mechanism=AUTH=PLAIN result=ok"),
        "{}",
        lines[0]
    );
    // A name with quotes and a newline cannot forge a second line.
    assert!(lines[1].contains(r#"account="evil\"\n name" mechanism=AUTH=PLAIN result=fail"#), "{}", lines[1]);
    assert!(
        lines[2].contains("addr=192.0.2.9 account=\"bob\"") && lines[2].contains("result=fail"),
        "{}",
        lines[2]
    );
    assert!(lines[3].contains("result=blocked"), "{}", lines[3]);
    assert!(lines[4].contains("mechanism=AUTH=SCRAM-SHA-256 result=ok"), "{}", lines[4]);
    assert!(text.contains("address blocked after repeated failed logins addr=192.0.2.9"), "{text}");
    assert!(!text.contains("correct horse"), "no secret in the log");
}
