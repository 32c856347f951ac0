//! Authentication at the session level (issue 5): the SASL mechanisms of AUTHENTICATE (PLAIN,
//! LOGIN, SCRAM-SHA-256, SCRAM-SHA-256-PLUS with SASL-IR and without), what CAPABILITY offers,
//! two-factor accounts, app passwords, revocation of live sessions, and blocked addresses.
//!
//! Real SQLite store in a temporary directory, no sockets: commands go into `Session::handle`
//! and continuation lines into `Session::auth_line`, as the connection driver would pass them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postfach_auth::admission::{Admission, Admitted};
use postfach_auth::clock::SystemClock;
use postfach_auth::encoding::{base64_decode, base64_encode};
use postfach_auth::scram::{ChannelBinding, ChannelBindingType, ScramClient};
use postfach_auth::throttle::ThrottlePolicy;
use postfach_auth::totp::TotpSecret;
use postfach_auth::{AuthSettings, Authenticator, app_password, password};
use postfach_imap::{ConnInfo, Out, Outcome, ServerContext, Session, SessionConfig, Transport};
use postfach_secret::Secret;
use postfach_store::sqlite::SqliteStore;
use postfach_store::{AccountId, AccountStore, MailStore, PasswordPlusCode, TotpSettings};

struct Harness {
    ctx: Arc<ServerContext>,
    store: Arc<SqliteStore>,
    alice: AccountId,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(policy: ThrottlePolicy) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let (hash, scram) = password::hash_with_scram(&Secret::from(b"secret".to_vec())).unwrap();
        let alice = store.create_account("alice", &hash).await.unwrap();
        store.set_password(alice, &hash, Some(&scram)).await.unwrap();
        let accounts: Arc<dyn AccountStore> = store.clone();
        let mail: Arc<dyn MailStore> = store.clone();
        let settings = AuthSettings { throttle: policy, trusted_networks: Vec::new() };
        let ctx = Arc::new(ServerContext {
            store: mail,
            share: store.clone(),
            accounts: accounts.clone(),
            auth: Authenticator::with_settings(accounts, settings, Arc::new(SystemClock)),
            config: SessionConfig { max_message_size: 1024 * 1024, ..SessionConfig::default() },
        });
        Harness { ctx, store, alice, _dir: dir }
    }

    async fn quick() -> Harness {
        Harness::new(ThrottlePolicy { max_delay: Duration::ZERO, ..ThrottlePolicy::default() }).await
    }

    fn client(&self, transport: Transport, binding: Option<ChannelBinding>) -> Client {
        let peer: SocketAddr = "192.0.2.10:4000".parse().unwrap();
        let mut session = Session::new(self.ctx.clone(), ConnInfo { peer, transport });
        session.set_channel_binding(binding);
        Client { session }
    }

    async fn app_password(&self, label: &str) -> String {
        let password = app_password::generate().unwrap();
        self.store
            .add_app_password(self.alice, label, &app_password::hash(&password).unwrap())
            .await
            .unwrap();
        password
    }
}

struct Client {
    session: Session,
}

impl Client {
    async fn cmd(&mut self, line: &str) -> (Vec<String>, Outcome) {
        let mut out = Out::new();
        let outcome = self.session.handle(line.as_bytes().to_vec(), &mut out).await;
        (lines(out), outcome)
    }

    async fn line(&mut self, line: &str) -> (Vec<String>, Outcome) {
        let mut out = Out::new();
        let outcome = self.session.auth_line(Secret::from(line.as_bytes().to_vec()), &mut out).await;
        (lines(out), outcome)
    }

    fn greeting(&mut self) -> String {
        let mut out = Out::new();
        self.session.greeting(&mut out);
        lines(out).remove(0)
    }
}

fn lines(mut out: Out) -> Vec<String> {
    String::from_utf8(out.take())
        .unwrap()
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn b64(text: &str) -> String {
    base64_encode(text.as_bytes())
}

/// The data of a `+ base64` continuation line.
fn challenge(line: &str) -> Vec<u8> {
    let data = line.strip_prefix("+ ").or_else(|| line.strip_prefix('+')).expect("a continuation");
    base64_decode(data.as_bytes()).expect("base64")
}

fn exporter() -> ChannelBinding {
    ChannelBinding::new(ChannelBindingType::TlsExporter, vec![42; 32])
}

#[tokio::test]
async fn capabilities_list_the_mechanisms_of_the_connection() {
    let h = Harness::quick().await;
    let greeting = h.client(Transport::Tls, None).greeting();
    for mechanism in ["AUTH=PLAIN", "AUTH=LOGIN", "AUTH=SCRAM-SHA-256", "SASL-IR"] {
        assert!(greeting.split([' ', ']']).any(|w| w == mechanism), "{mechanism} missing: {greeting}");
    }
    assert!(!greeting.contains("AUTH=SCRAM-SHA-256-PLUS"), "no binding, no PLUS: {greeting}");

    let mut bound = h.client(Transport::Tls, Some(exporter()));
    assert!(bound.greeting().contains("AUTH=SCRAM-SHA-256-PLUS"));
    let (caps, _) = bound.cmd("c CAPABILITY").await;
    assert!(caps[0].contains("AUTH=SCRAM-SHA-256-PLUS"), "{caps:?}");

    // RFC 9051 §6.2.3: no mechanisms on cleartext, LOGINDISABLED instead.
    let plain = h.client(Transport::Plain, None).greeting();
    assert!(plain.contains("LOGINDISABLED") && !plain.contains("AUTH="), "{plain}");
    let (r, _) = h.client(Transport::Plain, None).cmd("a AUTHENTICATE SCRAM-SHA-256").await;
    assert!(r[0].starts_with("a NO [PRIVACYREQUIRED]"), "{r:?}");
}

#[tokio::test]
async fn login_mechanism_prompts_for_user_and_password() {
    let h = Harness::quick().await;
    let mut c = h.client(Transport::Tls, None);
    let (r, outcome) = c.cmd("a AUTHENTICATE LOGIN").await;
    assert_eq!((r, outcome), (vec!["+ VXNlcm5hbWU6".to_owned()], Outcome::AuthContinue));
    let (r, outcome) = c.line(&b64("alice")).await;
    assert_eq!((r, outcome), (vec!["+ UGFzc3dvcmQ6".to_owned()], Outcome::AuthContinue));
    let (r, outcome) = c.line(&b64("secret")).await;
    assert!(r[0].starts_with("a OK [CAPABILITY") && outcome == Outcome::Continue, "{r:?}");
    assert!(c.session.is_authenticated());

    // With SASL-IR the user name comes with the command; a wrong password is NO.
    let mut c = h.client(Transport::Tls, None);
    let (r, _) = c.cmd(&format!("b AUTHENTICATE LOGIN {}", b64("alice"))).await;
    assert_eq!(r, vec!["+ UGFzc3dvcmQ6"]);
    let (r, _) = c.line(&b64("wrong")).await;
    assert_eq!(r, vec!["b NO [AUTHENTICATIONFAILED] Authentication failed"]);
    // RFC 9051 §6.2.2: "*" cancels with BAD; bad base64 is BAD too.
    c.cmd("c AUTHENTICATE LOGIN").await;
    assert_eq!(c.line("*").await.0, vec!["c BAD Authentication cancelled"]);
    c.cmd("d AUTHENTICATE LOGIN").await;
    assert!(c.line("!!!").await.0[0].starts_with("d BAD"));
    assert!(!c.session.is_authenticated());
}

#[tokio::test]
async fn plain_rejects_another_authorization_identity() {
    let h = Harness::quick().await;
    let mut c = h.client(Transport::Tls, None);
    let (r, _) = c.cmd(&format!("a AUTHENTICATE PLAIN {}", b64("bob\0alice\0secret"))).await;
    assert!(r[0].starts_with("a NO [AUTHORIZATIONFAILED]"), "{r:?}");
    // Naming oneself as authzid is fine (RFC 4616 §2).
    let (r, _) = c.cmd(&format!("b AUTHENTICATE PLAIN {}", b64("alice\0alice\0secret"))).await;
    assert!(r[0].starts_with("b OK"), "{r:?}");
}

/// Runs SCRAM through the session; returns the tagged line.
async fn scram(
    c: &mut Client,
    mechanism: &str,
    password: &str,
    binding: Option<&ChannelBinding>,
    ir: bool,
) -> String {
    let mut client = ScramClient::new("alice", password.as_bytes(), "fyko+d2lbbFgONRv9qkxdawL", binding);
    let first = b64(&client.client_first());
    let (r, outcome) = if ir {
        c.cmd(&format!("s AUTHENTICATE {mechanism} {first}")).await
    } else {
        let (r, outcome) = c.cmd(&format!("s AUTHENTICATE {mechanism}")).await;
        assert_eq!((r, outcome), (vec!["+ ".to_owned()], Outcome::AuthContinue));
        c.line(&first).await
    };
    if outcome != Outcome::AuthContinue {
        return r.join("\n");
    }
    let server_first = challenge(&r[0]);
    let last = client.client_final(&server_first).unwrap();
    let (r, outcome) = c.line(&b64(&last)).await;
    if outcome != Outcome::AuthContinue {
        return r.join("\n");
    }
    // RFC 5802 §5: the client checks the server's signature before it trusts the server.
    assert!(client.verify_server_final(&challenge(&r[0])), "{r:?}");
    let (r, _) = c.line("").await;
    r.join("\n")
}

#[tokio::test]
async fn scram_sha_256_with_and_without_initial_response() {
    let h = Harness::quick().await;
    for ir in [false, true] {
        let mut c = h.client(Transport::Tls, None);
        let done = scram(&mut c, "SCRAM-SHA-256", "secret", None, ir).await;
        assert!(done.starts_with("s OK [CAPABILITY"), "SASL-IR {ir}: {done}");
        assert!(c.session.is_authenticated());
    }
    let mut c = h.client(Transport::Tls, None);
    let done = scram(&mut c, "SCRAM-SHA-256", "wrong", None, false).await;
    assert_eq!(done, "s NO [AUTHENTICATIONFAILED] Authentication failed");
    // A malformed client-first message is a protocol error: BAD.
    let (r, _) = c.cmd(&format!("t AUTHENTICATE SCRAM-SHA-256 {}", b64("x,,n=alice,r=abc"))).await;
    assert!(r[0].starts_with("t BAD"), "{r:?}");
}

#[tokio::test]
async fn scram_plus_binds_to_the_tls_connection() {
    let h = Harness::quick().await;
    let ours = exporter();
    let mut c = h.client(Transport::Tls, Some(ours.clone()));
    let done = scram(&mut c, "SCRAM-SHA-256-PLUS", "secret", Some(&ours), true).await;
    assert!(done.starts_with("s OK"), "{done}");

    // A man in the middle has another TLS connection, so other binding data.
    let theirs = ChannelBinding::new(ChannelBindingType::TlsExporter, vec![7; 32]);
    let mut c = h.client(Transport::Tls, Some(ours.clone()));
    let done = scram(&mut c, "SCRAM-SHA-256-PLUS", "secret", Some(&theirs), false).await;
    assert_eq!(done, "s NO [AUTHENTICATIONFAILED] Authentication failed");

    // Downgrade: the client believes the server cannot bind ("y"), but it can.
    let (r, _) = c.cmd(&format!("d AUTHENTICATE SCRAM-SHA-256 {}", b64("y,,n=alice,r=abcdef"))).await;
    assert!(r[0].starts_with("d NO [AUTHENTICATIONFAILED]"), "{r:?}");

    // Without channel binding data there is no PLUS.
    let mut c = h.client(Transport::Tls, None);
    let (r, _) = c.cmd("e AUTHENTICATE SCRAM-SHA-256-PLUS").await;
    assert!(r[0].starts_with("e NO [CANNOT]"), "{r:?}");
}

#[tokio::test]
async fn two_factor_accounts_need_an_app_password_or_the_code() {
    let h = Harness::quick().await;
    let app = h.app_password("phone").await;
    let secret = TotpSecret::generate().unwrap();
    let settings = TotpSettings {
        secret: secret.as_bytes().to_vec(),
        confirmed: true,
        password_plus_code: PasswordPlusCode::Allowed,
        last_step: None,
        created: 0,
    };
    h.store.set_totp(h.alice, Some(&settings)).await.unwrap();

    let mut c = h.client(Transport::Tls, None);
    let (r, _) = c.cmd("a LOGIN alice secret").await;
    assert_eq!(r, vec!["a NO [AUTHENTICATIONFAILED] Authentication failed"]);
    let done = scram(&mut c, "SCRAM-SHA-256", "secret", None, true).await;
    assert!(done.starts_with("s NO [AUTHENTICATIONFAILED]"), "SCRAM has no second factor: {done}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let code = postfach_auth::totp::code(&secret, postfach_auth::totp::step_at(now));
    let (r, _) = c.cmd(&format!("b LOGIN alice secret{code}")).await;
    assert!(r[0].starts_with("b OK"), "{r:?}");

    let mut c = h.client(Transport::Tls, None);
    let (r, _) = c.cmd(&format!("c LOGIN alice \"{}\"", app_password::display(&app))).await;
    assert!(r[0].starts_with("c OK"), "{r:?}");
}

#[tokio::test]
async fn revoking_an_app_password_ends_its_sessions() {
    let h = Harness::quick().await;
    h.ctx.auth.refresh().await.unwrap();
    let app = h.app_password("tablet").await;
    let mut by_app = h.client(Transport::Tls, None);
    assert!(by_app.cmd(&format!("a LOGIN alice {app}")).await.0[0].starts_with("a OK"));
    let mut by_password = h.client(Transport::Tls, None);
    assert!(by_password.cmd("a LOGIN alice secret").await.0[0].starts_with("a OK"));
    assert!(by_app.cmd("b SELECT INBOX").await.0.last().unwrap().starts_with("b OK"));
    let watch = by_app.session.credential_watch();

    h.store.revoke_app_password(h.alice, "tablet").await.unwrap();
    // What the server's poller does once a second.
    h.ctx.auth.refresh().await.unwrap();
    assert!(watch.has_changed().unwrap(), "an idling session would be woken");

    let (r, outcome) = by_app.cmd("c NOOP").await;
    assert_eq!(r, vec!["* BYE Your login was revoked; log in again"]);
    assert_eq!(outcome, Outcome::Close);
    // The password session goes on.
    let (r, outcome) = by_password.cmd("c NOOP").await;
    assert_eq!((r, outcome), (vec!["c OK NOOP completed".to_owned()], Outcome::Continue));
    // A fresh login with the revoked password fails.
    let mut again = h.client(Transport::Tls, None);
    assert!(again.cmd(&format!("d LOGIN alice {app}")).await.0[0].starts_with("d NO"));
}

#[tokio::test]
async fn a_blocked_address_is_told_and_disconnected() {
    let h = Harness::new(ThrottlePolicy {
        block_after: 3,
        max_delay: Duration::ZERO,
        ..ThrottlePolicy::default()
    })
    .await;
    let mut c = h.client(Transport::Tls, None);
    for tag in ["a", "b", "c"] {
        let (r, _) = c.cmd(&format!("{tag} LOGIN alice wrong")).await;
        assert!(r[0].starts_with(&format!("{tag} NO [AUTHENTICATIONFAILED]")), "{r:?}");
    }
    // Blocked now: even the right password is refused, and the connection closes.
    let (r, outcome) = c.cmd("d LOGIN alice secret").await;
    assert_eq!(r[0], "d NO [UNAVAILABLE] Too many failed logins from your address; try again later");
    assert!(r[1].starts_with("* BYE"), "{r:?}");
    assert_eq!(outcome, Outcome::Close);
    let (r, _) = h.client(Transport::Tls, None).cmd("e AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==").await;
    assert!(r[0].starts_with("e NO [UNAVAILABLE]"), "{r:?}");
}

/// An admission hook allowing `max` sessions in all, counting the places held.
struct OnePlace {
    held: Arc<std::sync::Mutex<usize>>,
    max: usize,
}

/// A place of [`OnePlace`]; dropping it gives the place back.
struct Place(Arc<std::sync::Mutex<usize>>);

impl Drop for Place {
    fn drop(&mut self) {
        *self.0.lock().unwrap() -= 1;
    }
}

impl Admission for OnePlace {
    fn admit(&self, principal: &postfach_auth::Principal) -> Option<Admitted> {
        assert_eq!(principal.name, "alice");
        let mut held = self.held.lock().unwrap();
        if *held >= self.max {
            return None;
        }
        *held += 1;
        Some(Admitted::new(Place(Arc::clone(&self.held))))
    }
}

#[tokio::test]
async fn a_login_over_the_account_limit_is_refused_with_no_limit() {
    let h = Harness::quick().await;
    let held = Arc::new(std::sync::Mutex::new(0));
    let admission: Arc<dyn Admission> = Arc::new(OnePlace { held: Arc::clone(&held), max: 1 });
    let mut first = h.client(Transport::Tls, None);
    first.session.set_admission(Arc::clone(&admission));
    assert!(first.cmd("a LOGIN alice secret").await.0[0].starts_with("a OK"));
    assert_eq!(*held.lock().unwrap(), 1);

    // RFC 5530 LIMIT on a tagged NO (RFC 9051 §6.2.3): the connection stays, not logged in.
    let mut second = h.client(Transport::Tls, None);
    second.session.set_admission(Arc::clone(&admission));
    let (r, outcome) = second.cmd("a LOGIN alice secret").await;
    assert_eq!(r, vec!["a NO [LIMIT] Too many connections for this account"]);
    assert_eq!(outcome, Outcome::Continue);
    assert!(!second.session.is_authenticated());
    let (r, _) = second.cmd("b SELECT INBOX").await;
    assert!(r[0].starts_with("b BAD"), "{r:?}");
    // Every mechanism goes through the same gate.
    let (r, _) = second.cmd(&format!("c AUTHENTICATE PLAIN {}", b64("\0alice\0secret"))).await;
    assert_eq!(r, vec!["c NO [LIMIT] Too many connections for this account"]);
    let done = scram(&mut second, "SCRAM-SHA-256", "secret", None, true).await;
    assert_eq!(done, "s NO [LIMIT] Too many connections for this account");
    assert_eq!(*held.lock().unwrap(), 1, "a refused login takes no place");
    // Refusals are not failed logins: the connection is not closed after five of them.
    for i in 0..6 {
        let (r, outcome) = second.cmd(&format!("r{i} LOGIN alice secret")).await;
        assert!(r[0].starts_with(&format!("r{i} NO [LIMIT]")), "{r:?}");
        assert_eq!(outcome, Outcome::Continue);
    }

    // The first session ends (the driver drops it): its place is free, and the client that
    // waited logs in on the same connection.
    drop(first);
    assert_eq!(*held.lock().unwrap(), 0);
    let (r, _) = second.cmd("d LOGIN alice secret").await;
    assert!(r[0].starts_with("d OK"), "{r:?}");
    assert!(second.session.is_authenticated());
    assert_eq!(*held.lock().unwrap(), 1);
    // A wrong password never reaches the hook.
    let mut third = h.client(Transport::Tls, None);
    third.session.set_admission(admission);
    let (r, _) = third.cmd("e LOGIN alice wrong").await;
    assert_eq!(r, vec!["e NO [AUTHENTICATIONFAILED] Authentication failed"]);
}

#[tokio::test]
async fn logout_gives_the_place_back_before_its_ok() {
    // The OK of LOGOUT is what a reconnecting client waits for; the session itself lives on
    // until the driver has flushed and closed, so the place must go with the command.
    let h = Harness::quick().await;
    let held = Arc::new(std::sync::Mutex::new(0));
    let admission: Arc<dyn Admission> = Arc::new(OnePlace { held: Arc::clone(&held), max: 1 });
    let mut first = h.client(Transport::Tls, None);
    first.session.set_admission(Arc::clone(&admission));
    assert!(first.cmd("a LOGIN alice secret").await.0[0].starts_with("a OK"));
    let (r, outcome) = first.cmd("z LOGOUT").await;
    assert!(r.last().unwrap().starts_with("z OK"), "{r:?}");
    assert_eq!(outcome, Outcome::Close);
    assert_eq!(*held.lock().unwrap(), 0, "the place is free while the session still exists");
    let mut next = h.client(Transport::Tls, None);
    next.session.set_admission(admission);
    assert!(next.cmd("a LOGIN alice secret").await.0[0].starts_with("a OK"));
    drop(first);
    assert_eq!(*held.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_password_change_ends_the_password_sessions() {
    let h = Harness::quick().await;
    h.ctx.auth.refresh().await.unwrap();
    let app = h.app_password("tablet").await;
    let mut by_app = h.client(Transport::Tls, None);
    assert!(by_app.cmd(&format!("a LOGIN alice {app}")).await.0[0].starts_with("a OK"));
    let mut by_password = h.client(Transport::Tls, None);
    assert!(by_password.cmd("a LOGIN alice secret").await.0[0].starts_with("a OK"));

    // What `postfach user passwd` does, then the server's poller.
    let (hash, verifier) = password::hash_with_scram(&Secret::from(b"changed".to_vec())).unwrap();
    h.store.set_password(h.alice, &hash, Some(&verifier)).await.unwrap();
    h.ctx.auth.refresh().await.unwrap();

    let (r, outcome) = by_password.cmd("b NOOP").await;
    assert_eq!(r, vec!["* BYE Your login was revoked; log in again"]);
    assert_eq!(outcome, Outcome::Close);
    // The app password is still valid, so its session stays.
    let (r, outcome) = by_app.cmd("b NOOP").await;
    assert_eq!((r, outcome), (vec!["b OK NOOP completed".to_owned()], Outcome::Continue));
    let mut again = h.client(Transport::Tls, None);
    assert!(again.cmd("c LOGIN alice secret").await.0[0].starts_with("c NO [AUTHENTICATIONFAILED]"));
    assert!(again.cmd("d LOGIN alice changed").await.0[0].starts_with("d OK"));
}
