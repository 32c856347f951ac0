//! The login policy end to end: `Authenticator` over a real SQLite store in a temporary
//! directory, with a manual clock, no sockets.
//!
//! Covers the order of checks (app passwords before the throttled password), TOTP with replay
//! protection, SCRAM-SHA-256(-PLUS) against stored verifiers, blocks that survive a restart and
//! can be lifted through the store, trusted networks, and revocation. The log line has its own
//! test binary (`log_line.rs`): it needs the process-wide subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use postfach_auth::clock::{Clock, ManualClock};
use postfach_auth::scram::{ChannelBinding, ChannelBindingType, ScramClient, Variant};
use postfach_auth::throttle::ThrottlePolicy;
use postfach_auth::totp::{self, TotpSecret};
use postfach_auth::{AuthError, AuthSettings, Authenticator, Credential, Mechanism, app_password, password};
use postfach_secret::Secret;
use postfach_store::sqlite::SqliteStore;
use postfach_store::{AccountId, AccountStore, PasswordPlusCode, TotpSettings};

const PASSWORD: &[u8] = b"correct horse";

struct World {
    store: Arc<SqliteStore>,
    clock: ManualClock,
    alice: AccountId,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let (hash, scram) = password::hash_with_scram(&Secret::from(PASSWORD.to_vec())).unwrap();
        let alice = store.create_account("alice", &hash).await.unwrap();
        store.set_password(alice, &hash, Some(&scram)).await.unwrap();
        // 2023-11-14T22:13:20Z: a time step boundary is 20 s away, far from the window edges.
        let clock = ManualClock::new(Duration::from_secs(1_700_000_000));
        World { store, clock, alice, _dir: dir }
    }

    fn auth(&self, policy: ThrottlePolicy, trusted: &[&str]) -> Authenticator {
        let settings = AuthSettings {
            throttle: policy,
            trusted_networks: trusted.iter().map(|n| n.parse().unwrap()).collect(),
        };
        let accounts: Arc<dyn AccountStore> = self.store.clone();
        Authenticator::with_settings(accounts, settings, Arc::new(self.clock.clone()))
    }

    async fn add_app_password(&self, label: &str) -> String {
        let password = app_password::generate().unwrap();
        self.store
            .add_app_password(self.alice, label, &app_password::hash(&password).unwrap())
            .await
            .unwrap();
        password
    }

    async fn enable_totp(&self, plus: PasswordPlusCode) -> TotpSecret {
        let secret = TotpSecret::generate().unwrap();
        let settings = TotpSettings {
            secret: secret.as_bytes().to_vec(),
            confirmed: true,
            password_plus_code: plus,
            last_step: None,
            created: 0,
        };
        self.store.set_totp(self.alice, Some(&settings)).await.unwrap();
        secret
    }
}

/// No delays: the tests would only wait.
fn no_delay() -> ThrottlePolicy {
    ThrottlePolicy { max_delay: Duration::ZERO, ..ThrottlePolicy::default() }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn login(auth: &Authenticator, from: &str, user: &str, secret: &[u8]) -> Result<Credential, AuthError> {
    auth.login(ip(from), Mechanism::Plain, user, Secret::from(secret.to_vec())).await.map(|p| p.credential)
}

#[tokio::test]
async fn app_passwords_keep_working_while_the_password_is_under_attack() {
    let w = World::new().await;
    let auth = w.auth(no_delay(), &[]);
    let app = w.add_app_password("iPhone").await;
    assert_eq!(login(&auth, "192.0.2.1", "alice", PASSWORD).await.unwrap(), Credential::Password);

    // A botnet: every address guesses a couple of times, staying under the address limits.
    let mut throttled = 0;
    for i in 0..40 {
        match login(&auth, &format!("198.51.100.{i}"), "alice", format!("guess{i}").as_bytes()).await {
            Err(AuthError::BadCredentials) => {}
            Err(AuthError::Throttled { .. }) => throttled += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(throttled > 30, "password attempts were not spaced out: {throttled} throttled");
    // The real password is refused (without being checked) from an address the account never
    // logged in from: the account is throttled...
    assert!(matches!(login(&auth, "192.0.2.2", "alice", PASSWORD).await, Err(AuthError::Throttled { .. })));
    // ...but not for its owner: the address alice logged in from keeps its password check...
    assert!(matches!(login(&auth, "192.0.2.1", "alice", b"typo").await, Err(AuthError::BadCredentials)));
    assert_eq!(login(&auth, "192.0.2.1", "alice", PASSWORD).await.unwrap(), Credential::Password);
    // ...and the account is not locked for anyone: the app password opens it, typed with or
    // without spaces.
    let shown = app_password::display(&app);
    for typed in [app.as_str(), shown.as_str(), &shown.to_uppercase()] {
        let credential = login(&auth, "192.0.2.1", "alice", typed.as_bytes()).await.unwrap();
        assert!(
            matches!(credential, Credential::AppPassword { ref label, .. } if label == "iPhone"),
            "{typed}"
        );
    }
    // And its use is recorded.
    let listed = w.store.app_passwords(w.alice).await.unwrap();
    assert_eq!(listed[0].last_address.as_deref(), Some("192.0.2.1"));
    assert_eq!(listed[0].last_used, Some(1_700_000_000));

    // Once the attack fades, the password works again.
    w.clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(login(&auth, "192.0.2.1", "alice", PASSWORD).await.unwrap(), Credential::Password);
}

#[tokio::test]
async fn one_address_is_blocked_and_the_block_outlives_a_restart_until_lifted() {
    let w = World::new().await;
    let policy = ThrottlePolicy { block_after: 4, ..no_delay() };
    let auth = w.auth(policy.clone(), &[]);
    for n in 0..4 {
        let r = login(&auth, "203.0.113.9", &format!("user{n}"), b"x").await;
        assert!(matches!(r, Err(AuthError::BadCredentials)), "{r:?}");
    }
    // Even the right password is refused now, without a check.
    assert!(matches!(login(&auth, "203.0.113.9", "alice", PASSWORD).await, Err(AuthError::Blocked { .. })));
    assert!(auth.is_blocked(ip("203.0.113.9")));
    // Others are not affected.
    assert_eq!(login(&auth, "192.0.2.1", "alice", PASSWORD).await.unwrap(), Credential::Password);

    // The block is in the store, so a restarted server (and `postfach ban list`) sees it.
    let now = w.clock.now().as_secs() as i64;
    let blocks = w.store.address_blocks(now).await.unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].address, "203.0.113.9");
    assert_eq!(blocks[0].until, now + 900);
    let restarted = w.auth(policy, &[]);
    assert_eq!(restarted.load_blocks().await.unwrap(), 1);
    assert!(matches!(
        login(&restarted, "203.0.113.9", "alice", PASSWORD).await,
        Err(AuthError::Blocked { .. })
    ));

    // `postfach ban remove` deletes the row; the next attempt notices.
    assert!(w.store.unblock_address("203.0.113.9", now).await.unwrap());
    assert_eq!(login(&restarted, "203.0.113.9", "alice", PASSWORD).await.unwrap(), Credential::Password);

    // Blocks expire on their own.
    for n in 0..4 {
        let _ = login(&restarted, "203.0.113.9", &format!("user{n}"), b"x").await;
    }
    assert!(restarted.is_blocked(ip("203.0.113.9")));
    w.clock.advance(Duration::from_secs(901));
    assert!(!restarted.is_blocked(ip("203.0.113.9")));
}

#[tokio::test]
async fn trusted_networks_are_never_slowed_or_blocked() {
    let w = World::new().await;
    let auth = w.auth(ThrottlePolicy { block_after: 2, ..ThrottlePolicy::default() }, &["10.0.0.0/8"]);
    for _ in 0..10 {
        assert!(matches!(login(&auth, "10.1.2.3", "alice", b"wrong").await, Err(AuthError::BadCredentials)));
    }
    assert_eq!(login(&auth, "10.1.2.3", "alice", PASSWORD).await.unwrap(), Credential::Password);
    assert_eq!(auth.throttle().tracked(), (0, 0), "nothing is counted for trusted networks");
}

#[tokio::test(start_paused = true)]
async fn a_failing_address_is_slowed_down() {
    let w = World::new().await;
    let auth = w.auth(ThrottlePolicy::default(), &[]);
    for _ in 0..3 {
        let _ = login(&auth, "192.0.2.5", "alice", b"wrong").await;
    }
    // The fourth attempt waits a second, the fifth two, even with the right password.
    let started = tokio::time::Instant::now();
    let _ = login(&auth, "192.0.2.5", "alice", b"wrong").await;
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    let started = tokio::time::Instant::now();
    assert_eq!(login(&auth, "192.0.2.5", "alice", PASSWORD).await.unwrap(), Credential::Password);
    assert!(started.elapsed() >= Duration::from_secs(2), "{:?}", started.elapsed());
    // Success forgets the address's failures.
    let started = tokio::time::Instant::now();
    let _ = login(&auth, "192.0.2.5", "alice", PASSWORD).await;
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn totp_makes_the_password_alone_useless() {
    let w = World::new().await;
    let auth = w.auth(no_delay(), &[]);
    let app = w.add_app_password("laptop").await;
    let secret = w.enable_totp(PasswordPlusCode::Refused).await;
    let code = totp::code(&secret, totp::step_at(w.clock.now()));

    assert!(matches!(login(&auth, "192.0.2.1", "alice", PASSWORD).await, Err(AuthError::BadCredentials)));
    // Not allowed for this account: password followed by the code.
    let plus = [PASSWORD, code.as_bytes()].concat();
    assert!(matches!(login(&auth, "192.0.2.1", "alice", &plus).await, Err(AuthError::BadCredentials)));
    // App passwords are the way in.
    assert!(matches!(
        login(&auth, "192.0.2.1", "alice", app.as_bytes()).await,
        Ok(Credential::AppPassword { .. })
    ));
}

#[tokio::test]
async fn password_plus_code_works_once_per_code() {
    let w = World::new().await;
    let auth = w.auth(no_delay(), &[]);
    let secret = w.enable_totp(PasswordPlusCode::Allowed).await;
    let code = |at: Duration| totp::code(&secret, totp::step_at(at));

    assert!(matches!(login(&auth, "192.0.2.1", "alice", PASSWORD).await, Err(AuthError::BadCredentials)));
    let first = [PASSWORD, code(w.clock.now()).as_bytes()].concat();
    assert_eq!(login(&auth, "192.0.2.1", "alice", &first).await.unwrap(), Credential::PasswordAndCode);
    // RFC 6238 §5.2: the same code is not accepted twice (another session, same step).
    assert!(matches!(login(&auth, "192.0.2.2", "alice", &first).await, Err(AuthError::BadCredentials)));
    // A wrong password with the right next code fails too.
    w.clock.advance(Duration::from_secs(30));
    let wrong = [&b"wrong"[..], code(w.clock.now()).as_bytes()].concat();
    assert!(matches!(login(&auth, "192.0.2.1", "alice", &wrong).await, Err(AuthError::BadCredentials)));
    // The next step's code works.
    let next = [PASSWORD, code(w.clock.now()).as_bytes()].concat();
    assert_eq!(login(&auth, "192.0.2.1", "alice", &next).await.unwrap(), Credential::PasswordAndCode);
    // An old code is refused after a newer one was used.
    let old = [PASSWORD, code(w.clock.now() - Duration::from_secs(30)).as_bytes()].concat();
    assert!(matches!(login(&auth, "192.0.2.1", "alice", &old).await, Err(AuthError::BadCredentials)));
}

/// Runs a SCRAM exchange through the authenticator.
async fn scram(
    auth: &Authenticator,
    user: &str,
    password: &[u8],
    client_binding: Option<&ChannelBinding>,
    server_binding: Option<&ChannelBinding>,
) -> Result<Credential, AuthError> {
    let variant = if client_binding.is_some() { Variant::Plus } else { Variant::Plain };
    let mut client = ScramClient::new(user, password, "rOprNGfwEbeRWgbNEkqO", client_binding);
    let exchange =
        auth.scram_start(ip("192.0.2.1"), variant, client.client_first().as_bytes(), server_binding).await?;
    let client_final = client.client_final(exchange.server_first().as_bytes()).expect("client-final");
    let (principal, server_final) = auth.scram_finish(exchange, client_final.as_bytes()).await?;
    assert!(client.verify_server_final(server_final.as_bytes()), "the server proved itself");
    Ok(principal.credential)
}

#[tokio::test]
async fn scram_uses_the_stored_verifier() {
    let w = World::new().await;
    let auth = w.auth(no_delay(), &[]);
    assert_eq!(scram(&auth, "alice", PASSWORD, None, None).await.unwrap(), Credential::Scram);
    assert!(matches!(scram(&auth, "alice", b"wrong", None, None).await, Err(AuthError::BadCredentials)));
    assert!(matches!(scram(&auth, "nobody", PASSWORD, None, None).await, Err(AuthError::BadCredentials)));

    // SCRAM-SHA-256-PLUS: bound to this connection.
    let ours = ChannelBinding::new(ChannelBindingType::TlsExporter, vec![1; 32]);
    let mitm = ChannelBinding::new(ChannelBindingType::TlsExporter, vec![2; 32]);
    assert_eq!(scram(&auth, "alice", PASSWORD, Some(&ours), Some(&ours)).await.unwrap(), Credential::Scram);
    assert!(matches!(
        scram(&auth, "alice", PASSWORD, Some(&mitm), Some(&ours)).await,
        Err(AuthError::BadCredentials)
    ));

    // A password set without a verifier (`set_password_hash`) disables SCRAM only.
    let hash = password::hash(&Secret::from(b"new password".to_vec())).unwrap();
    w.store.set_password_hash(w.alice, &hash).await.unwrap();
    assert!(matches!(
        scram(&auth, "alice", b"new password", None, None).await,
        Err(AuthError::BadCredentials)
    ));
    assert_eq!(login(&auth, "192.0.2.1", "alice", b"new password").await.unwrap(), Credential::Password);
}

#[tokio::test]
async fn scram_is_refused_with_totp_and_counts_failures() {
    let w = World::new().await;
    let auth = w.auth(ThrottlePolicy { block_after: 3, ..no_delay() }, &[]);
    w.enable_totp(PasswordPlusCode::Allowed).await;
    // The right password, but SCRAM carries no second factor.
    assert!(matches!(scram(&auth, "alice", PASSWORD, None, None).await, Err(AuthError::BadCredentials)));
    assert!(matches!(scram(&auth, "alice", PASSWORD, None, None).await, Err(AuthError::BadCredentials)));
    assert!(matches!(scram(&auth, "alice", PASSWORD, None, None).await, Err(AuthError::BadCredentials)));
    assert!(matches!(scram(&auth, "alice", PASSWORD, None, None).await, Err(AuthError::Blocked { .. })));
    // Protocol errors are not credential failures.
    let broken = auth.scram_start(ip("192.0.2.77"), Variant::Plain, b"garbage", None).await;
    assert!(matches!(broken, Err(AuthError::Protocol(_))), "{broken:?}");
}

#[tokio::test]
async fn revocation_reaches_sessions_through_the_generation() {
    let w = World::new().await;
    let auth = w.auth(no_delay(), &[]);
    auth.refresh().await.unwrap();
    let app = w.add_app_password("phone").await;
    let by_app =
        auth.login(ip("192.0.2.1"), Mechanism::Plain, "alice", Secret::from(app.into_bytes())).await.unwrap();
    let by_password = auth
        .login(ip("192.0.2.1"), Mechanism::Plain, "alice", Secret::from(PASSWORD.to_vec()))
        .await
        .unwrap();
    let seen = auth.generation();
    let watch = auth.subscribe_generation();

    w.store.revoke_app_password(w.alice, "phone").await.unwrap();
    assert_eq!(auth.generation(), seen, "not before the store is read");
    auth.refresh().await.unwrap();
    assert_ne!(auth.generation(), seen);
    assert!(watch.has_changed().unwrap(), "idle sessions are woken");
    assert!(!auth.still_valid(&by_app).await.unwrap());
    assert!(auth.still_valid(&by_password).await.unwrap());

    // Switching TOTP on ends sessions opened with the password alone.
    w.enable_totp(PasswordPlusCode::Refused).await;
    assert!(!auth.still_valid(&by_password).await.unwrap());
    // Deleting the account ends everything.
    w.store.delete_account(w.alice).await.unwrap();
    assert!(!auth.still_valid(&by_app).await.unwrap());
}

#[tokio::test]
async fn a_password_change_ends_the_sessions_opened_with_the_old_password() {
    let w = World::new().await;
    let auth = w.auth(no_delay(), &[]);
    auth.refresh().await.unwrap();
    let app = w.add_app_password("phone").await;
    let by_app =
        auth.login(ip("192.0.2.1"), Mechanism::Plain, "alice", Secret::from(app.into_bytes())).await.unwrap();
    let by_password = auth
        .login(ip("192.0.2.1"), Mechanism::Plain, "alice", Secret::from(PASSWORD.to_vec()))
        .await
        .unwrap();
    let mut client = ScramClient::new("alice", PASSWORD, "rOprNGfwEbeRWgbNEkqO", None);
    let exchange = auth
        .scram_start(ip("192.0.2.1"), Variant::Plain, client.client_first().as_bytes(), None)
        .await
        .unwrap();
    let client_final = client.client_final(exchange.server_first().as_bytes()).unwrap();
    let (by_scram, _) = auth.scram_finish(exchange, client_final.as_bytes()).await.unwrap();
    assert!(auth.still_valid(&by_password).await.unwrap());
    assert!(auth.still_valid(&by_scram).await.unwrap());
    let seen = auth.generation();

    // What `postfach user passwd` does.
    let (hash, verifier) = password::hash_with_scram(&Secret::from(b"new password".to_vec())).unwrap();
    w.store.set_password(w.alice, &hash, Some(&verifier)).await.unwrap();
    auth.refresh().await.unwrap();
    assert_ne!(auth.generation(), seen, "the change reaches live sessions");
    assert!(!auth.still_valid(&by_password).await.unwrap());
    assert!(!auth.still_valid(&by_scram).await.unwrap());
    // App passwords are separate credentials: their sessions stay.
    assert!(auth.still_valid(&by_app).await.unwrap());
    // The new password opens a session that is valid; the old one opens nothing.
    let fresh = auth
        .login(ip("192.0.2.1"), Mechanism::Plain, "alice", Secret::from(b"new password".to_vec()))
        .await
        .unwrap();
    assert!(auth.still_valid(&fresh).await.unwrap());
    assert!(matches!(login(&auth, "192.0.2.1", "alice", PASSWORD).await, Err(AuthError::BadCredentials)));
}

/// Logs in and returns how many argon2 verifications the attempt ran.
async fn hash_runs_of(
    auth: &Authenticator,
    user: &str,
    secret: &[u8],
) -> (Result<Credential, AuthError>, u64) {
    let before = auth.password_hash_runs();
    let result = login(auth, "192.0.2.1", user, secret).await;
    (result, auth.password_hash_runs() - before)
}

#[tokio::test]
async fn a_right_password_without_the_code_costs_a_full_hash_like_a_wrong_one() {
    let w = World::new().await;
    // Trusted: no throttling, so every attempt reaches the password check.
    let auth = w.auth(no_delay(), &["192.0.2.0/24"]);
    let secret = w.enable_totp(PasswordPlusCode::Allowed).await;
    for _ in 0..3 {
        let (right, right_runs) = hash_runs_of(&auth, "alice", PASSWORD).await;
        assert!(matches!(right, Err(AuthError::BadCredentials)));
        let (wrong, wrong_runs) = hash_runs_of(&auth, "alice", b"wrong horse").await;
        assert!(matches!(wrong, Err(AuthError::BadCredentials)));
        assert_eq!((right_runs, wrong_runs), (1, 1), "argon2 every time, right password or not");
    }
    // A login that fully succeeded does not make the password part cheaper afterwards either.
    let full = [PASSWORD, totp::code(&secret, totp::step_at(w.clock.now())).as_bytes()].concat();
    let (ok, runs) = hash_runs_of(&auth, "alice", &full).await;
    assert_eq!(ok.unwrap(), Credential::PasswordAndCode);
    assert_eq!(runs, 1);
    let (right, runs) = hash_runs_of(&auth, "alice", PASSWORD).await;
    assert!(matches!(right, Err(AuthError::BadCredentials)));
    assert_eq!(runs, 1);
    // Nor does a right password with a wrong code.
    let bad_code = [PASSWORD, b"000000"].concat();
    for _ in 0..2 {
        let (r, runs) = hash_runs_of(&auth, "alice", &bad_code).await;
        assert!(matches!(r, Err(AuthError::BadCredentials)));
        assert_eq!(runs, 1);
    }
}

#[tokio::test]
async fn only_a_successful_password_login_is_remembered() {
    let w = World::new().await;
    let auth = w.auth(no_delay(), &["192.0.2.0/24"]);
    // Failures are never remembered.
    for _ in 0..2 {
        let (r, runs) = hash_runs_of(&auth, "alice", b"wrong horse").await;
        assert!(matches!(r, Err(AuthError::BadCredentials)));
        assert_eq!(runs, 1);
    }
    // The first success pays for argon2, the next connections do not.
    let (r, runs) = hash_runs_of(&auth, "alice", PASSWORD).await;
    assert_eq!((r.unwrap(), runs), (Credential::Password, 1));
    let (r, runs) = hash_runs_of(&auth, "alice", PASSWORD).await;
    assert_eq!((r.unwrap(), runs), (Credential::Password, 0));
    // A wrong password still costs a full hash after that.
    let (r, runs) = hash_runs_of(&auth, "alice", b"wrong horse").await;
    assert!(matches!(r, Err(AuthError::BadCredentials)));
    assert_eq!(runs, 1);
    // Turning TOTP on stops the memory from answering: the password alone now fails, at full cost.
    w.enable_totp(PasswordPlusCode::Allowed).await;
    let (r, runs) = hash_runs_of(&auth, "alice", PASSWORD).await;
    assert!(matches!(r, Err(AuthError::BadCredentials)));
    assert_eq!(runs, 1);
}

/// A team (an account that owns shared mailboxes) never logs in: not with LOGIN, PLAIN, SCRAM
/// or an app password, not even with credentials somehow stored for it; and trying costs
/// exactly what an unknown name costs (one argon2 run, the same answer), so its name cannot
/// be told apart from a free one.
#[tokio::test]
async fn a_team_never_logs_in_and_costs_what_an_unknown_name_costs() {
    use postfach_store::ShareStore;
    let w = World::new().await;
    let team = w.store.create_team("support", Some("help@example.org")).await.unwrap();
    // The store refuses credentials for a team; if one slipped in, it must open nothing.
    let (hash, verifier) = password::hash_with_scram(&Secret::from(PASSWORD.to_vec())).unwrap();
    let stored_password = w.store.set_password(team, &hash, Some(&verifier)).await.is_ok();
    let app = app_password::generate().unwrap();
    let stored_app =
        w.store.add_app_password(team, "phone", &app_password::hash(&app).unwrap()).await.is_ok();
    eprintln!("credentials stored for the team: password {stored_password}, app password {stored_app}");

    // Trusted: no throttling, so every attempt reaches the password check.
    let auth = w.auth(no_delay(), &["192.0.2.0/24"]);
    for _ in 0..2 {
        let (team_result, team_runs) = hash_runs_of(&auth, "support", PASSWORD).await;
        let (unknown_result, unknown_runs) = hash_runs_of(&auth, "nobody", PASSWORD).await;
        assert!(matches!(team_result, Err(AuthError::BadCredentials)), "{team_result:?}");
        assert!(matches!(unknown_result, Err(AuthError::BadCredentials)), "{unknown_result:?}");
        assert_eq!((team_runs, unknown_runs), (1, 1), "argon2 once, like an unknown name");
        let (by_app, runs) = hash_runs_of(&auth, "support", app.as_bytes()).await;
        assert!(matches!(by_app, Err(AuthError::BadCredentials)), "{by_app:?}");
        assert_eq!(runs, 1);
    }
    for mechanism in [Mechanism::LoginCommand, Mechanism::Login] {
        let result = auth.login(ip("192.0.2.1"), mechanism, "SUPPORT", Secret::from(PASSWORD.to_vec())).await;
        assert!(matches!(result, Err(AuthError::BadCredentials)), "{mechanism:?}: {result:?}");
    }
    assert!(matches!(scram(&auth, "support", PASSWORD, None, None).await, Err(AuthError::BadCredentials)));
    let ours = ChannelBinding::new(ChannelBindingType::TlsExporter, vec![1; 32]);
    assert!(matches!(
        scram(&auth, "support", PASSWORD, Some(&ours), Some(&ours)).await,
        Err(AuthError::BadCredentials)
    ));
    // A user still logs in next to it.
    assert_eq!(login(&auth, "192.0.2.1", "alice", PASSWORD).await.unwrap(), Credential::Password);
}

/// The web form: app passwords never open it; with TOTP on, the code comes in its own field
/// (whatever the password-plus-code setting) and works once.
#[tokio::test]
async fn the_web_form_takes_the_password_and_a_separate_code_never_an_app_password() {
    let world = World::new().await;
    let auth = world.auth(no_delay(), &[]);
    let web = |password: &[u8], code: Option<String>| {
        auth.login_web(
            ip("192.0.2.9"),
            "alice",
            Secret::from(password.to_vec()),
            code.map(|c| Secret::from(c.into_bytes())),
        )
    };
    let device = world.add_app_password("phone").await;
    assert!(matches!(web(device.as_bytes(), None).await, Err(AuthError::BadCredentials)));
    let p = web(PASSWORD, None).await.unwrap();
    assert_eq!(p.credential, Credential::Password);

    let secret = world.enable_totp(PasswordPlusCode::Refused).await;
    assert!(matches!(web(PASSWORD, None).await, Err(AuthError::BadCredentials)));
    let code = totp::code(&secret, totp::step_at(world.clock.now()));
    assert!(matches!(web(b"wrong", Some(code.clone())).await, Err(AuthError::BadCredentials)));
    let p = web(PASSWORD, Some(code.clone())).await.unwrap();
    assert_eq!(p.credential, Credential::PasswordAndCode);
    // The same code a second time: refused (RFC 6238 §5.2).
    assert!(matches!(web(PASSWORD, Some(code)).await, Err(AuthError::BadCredentials)));
    assert_eq!(auth.attempts().snapshot().iter().filter(|(m, _, n)| *m == "WEB" && *n > 0).count(), 2);
}
