//! Who is this, and may they try again.
//!
//! # Layout
//! - [`password`]: argon2id hashing of account passwords (plus the SCRAM verifier made with it).
//! - [`scram`]: the SCRAM-SHA-256(-PLUS) exchange and channel binding (RFC 5802, 7677, 9266).
//! - [`totp`]: RFC 6238 one-time codes, the second factor.
//! - [`app_password`]: per-device random passwords, stored as salted SHA-256.
//! - [`throttle`]: failure counters per address and per account; delays, blocks.
//! - [`network`]: address grouping (IPv6 /64) and trusted networks.
//! - [`clock`]: injected time; [`encoding`]: base64/base32.
//! - [`admission`]: the hook that takes a session's place (per-account connection limit)
//!   before a login is answered OK.
//! - [`Authenticator`]: the policy that ties them together: every login attempt of every
//!   mechanism goes through it, is throttled by it, and is logged by it, once.
//!
//! Passwords, codes and app passwords arrive as a `postfach_secret::Secret` (built from the
//! wire, the SASL response or the CLI) and stay one: [`Authenticator::login`] takes it by
//! value, splits "password + code" without copying it out, and hands the password to the
//! hashing workers, whose job owns it until argon2 is done. Copies made on the way (SASLprep,
//! digest inputs, SCRAM keys) are wrapped or zeroised too.
//!
//! No SQL and no sockets here: the store answers "which credentials belong to this name", the
//! session decides what to say to the client. Hashing costs tens of milliseconds of CPU, so it
//! runs on the blocking pool behind a concurrency limit: a flood of logins cannot starve the
//! runtime.
//!
//! # Order of checks in one login
//! A team's name (a principal that owns shared mailboxes and never logs in) is an unknown name
//! throughout: same checks, same argon2 cost, same answer.
//! 1. Trusted networks skip all throttling (nothing is counted for them).
//! 2. A blocked address is refused before anything is checked (the store is asked whether
//!    `postfach ban remove` lifted the block meanwhile).
//! 3. An address with recent failures waits (a delay that doubles, see [`throttle`]).
//! 4. App passwords of the named account are tried (microseconds each): they work whatever
//!    the state of the password counters, so a user keeps access while their password is
//!    under attack.
//! 5. An account whose password attracted many recent failures (from anywhere) is refused
//!    without a password check until its next attempt slot, unless the client's address
//!    logged in to this account successfully in the last 30 days (the owner is not locked out
//!    by a distributed attack; see [`throttle`]).
//! 6. The password is checked (argon2id, or SCRAM); with TOTP on, the password alone fails,
//!    and "password followed by the code" works only where the account allows it. A code's
//!    time step is claimed in the store, so it cannot be used twice. A password is remembered
//!    (a few minutes, to spare argon2 for a client's next connections) only after a login with
//!    it fully succeeded, and only on an account without a second factor: there, a right
//!    password without the right code costs a full argon2 run, exactly like a wrong one.
//! 7. Failures count against the address (all of them) and the account name (password
//!    checks); enough failures block the address, in memory and in the store.
//!
//! # The log line
//! Every attempt ends in exactly one `info` event with target `postfach::auth`, message
//! `authentication`, and the fields `addr` (client IP), `account` (the name as sent, quoted and
//! escaped), `mechanism`, `result` (`ok`, `fail`, `throttled`, `blocked`, `error`) and `detail`.
//! With the text log format this reads
//! `... INFO ...: postfach::auth: authentication addr=192.0.2.7 account="alice" mechanism=AUTH=PLAIN result=fail detail="bad credentials"`;
//! docs/auth.md has fail2ban patterns.

pub mod admission;
pub mod app_password;
pub mod clock;
mod crypto;
pub mod encoding;
mod hasher;
pub mod network;
pub mod oauth;
pub mod password;
pub mod scram;
pub mod throttle;
pub mod totp;
pub mod urlauth;

pub use crypto::HashAlgorithm;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postfach_secret::Secret;
use postfach_store::{
    Account, AccountId, AccountKind, AccountStore, AddressBlock, AppPasswordId, PasswordPlusCode,
    ScramCredential, StoreError, TotpSettings,
};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::clock::{Clock, SystemClock};
use crate::network::{AddressKey, Network};
use crate::scram::{ChannelBinding, ClientFirst, ScramError, ScramServer, Variant};
use crate::throttle::{AddressVerdict, Throttle, ThrottlePolicy};
use crate::totp::TotpSecret;

/// The tracing target of the per-attempt log line (stable: log filters match on it).
pub const LOG_TARGET: &str = "postfach::auth";

/// What a session proved itself with; decides what can end the session later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The account password (no second factor set up).
    Password,
    /// The account password followed by the current TOTP code.
    PasswordAndCode,
    /// SCRAM-SHA-256(-PLUS) with the account password.
    Scram,
    /// A bearer token from the configured issuer (OAUTHBEARER, XOAUTH2): the issuer vouched for
    /// the user, second factor included; the session lasts while the account does.
    Token,
    /// An app password; revoking it ends the session.
    AppPassword {
        /// Its key.
        id: AppPasswordId,
        /// Its label.
        label: String,
    },
}

impl Credential {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Password => "password",
            Credential::PasswordAndCode => "password+totp",
            Credential::Scram => "scram",
            Credential::Token => "oauth",
            Credential::AppPassword { .. } => "app-password",
        }
    }
}

/// An authenticated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account's id in the store.
    pub account: AccountId,
    /// The account's canonical login name.
    pub name: String,
    /// How it logged in.
    pub credential: Credential,
    /// Which password the account had at login: a password change ends the sessions opened
    /// with the password (see [`Authenticator::still_valid`]).
    pub password: PasswordStamp,
}

/// A keyed digest of an account's stored password hash at login. Every password change stores
/// a new hash (a new salt, even for the same password), so a different stamp means "changed".
/// Only the [`Authenticator`] makes stamps; the digest is keyed per process and says nothing
/// about the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordStamp([u8; 16]);

impl fmt::Debug for PasswordStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordStamp")
    }
}

/// How the client presented its credentials (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// The IMAP `LOGIN` command (RFC 9051 §6.2.3).
    LoginCommand,
    /// SASL PLAIN (RFC 4616).
    Plain,
    /// The SASL "LOGIN" mechanism (draft-murchison-sasl-login), as Outlook uses it.
    Login,
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-256-PLUS (RFC 7677, with channel binding).
    ScramSha256Plus,
    /// POP3's `USER` and `PASS` commands (RFC 1939 §7).
    UserPass,
    /// The web pages' login form: password and, with two-factor on, the code in its own
    /// field; app passwords never open it ([`Authenticator::login_web`]).
    WebForm,
    /// OAUTHBEARER (RFC 7628).
    OAuthBearer,
    /// XOAUTH2 (Google's bearer-token mechanism).
    XOAuth2,
}

impl Mechanism {
    /// Every mechanism, in the order [`AttemptCounts`] keeps them.
    pub const ALL: [Mechanism; 9] = [
        Mechanism::LoginCommand,
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::ScramSha256,
        Mechanism::ScramSha256Plus,
        Mechanism::UserPass,
        Mechanism::WebForm,
        Mechanism::OAuthBearer,
        Mechanism::XOAuth2,
    ];

    /// The name used in log lines.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::LoginCommand => "LOGIN",
            Mechanism::Plain => "AUTH=PLAIN",
            Mechanism::Login => "AUTH=LOGIN",
            Mechanism::ScramSha256 => "AUTH=SCRAM-SHA-256",
            Mechanism::ScramSha256Plus => "AUTH=SCRAM-SHA-256-PLUS",
            Mechanism::UserPass => "USER",
            Mechanism::WebForm => "WEB",
            Mechanism::OAuthBearer => "AUTH=OAUTHBEARER",
            Mechanism::XOAuth2 => "AUTH=XOAUTH2",
        }
    }
}

/// Why authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password, missing or wrong second factor; deliberately
    /// indistinguishable.
    #[error("bad credentials")]
    BadCredentials,
    /// Too many recent password failures on this account: try later (or use an app password).
    #[error("too many failed logins for this account; retry in {retry_after:?}")]
    Throttled {
        /// When the next attempt may be made.
        retry_after: Duration,
    },
    /// The client's address is blocked after too many failures.
    #[error("address blocked after too many failed logins")]
    Blocked {
        /// End of the block, since the Unix epoch.
        until: Duration,
    },
    /// The client asked to act as another user (SASL authorization identity).
    #[error("authorization identity differs from the authentication identity")]
    Authorization,
    /// The SASL exchange broke the mechanism's syntax or rules (answer BAD).
    #[error(transparent)]
    Protocol(ScramError),
    /// The store could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed or its worker died.
    #[error("internal: {0}")]
    Internal(String),
}

/// The `result` values of the log line, in the order [`AttemptCounts`] keeps them.
pub const RESULTS: [&str; 5] = ["ok", "fail", "throttled", "blocked", "error"];

/// Authentication attempts by mechanism and result since the start: the same events as the
/// log line, as counters for the metrics endpoint. Atomics in a fixed table (35 cells).
#[derive(Debug, Default)]
pub struct AttemptCounts {
    cells: [[AtomicU64; RESULTS.len()]; Mechanism::ALL.len()],
}

impl AttemptCounts {
    fn count(&self, mechanism: Mechanism, result: &str) {
        let row = Mechanism::ALL.iter().position(|m| *m == mechanism);
        let column = RESULTS.iter().position(|r| *r == result);
        if let (Some(row), Some(column)) = (row, column) {
            self.cells[row][column].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(mechanism name, result, attempts)` for every cell, zeros included.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::with_capacity(Mechanism::ALL.len() * RESULTS.len());
        for (mechanism, row) in Mechanism::ALL.iter().zip(&self.cells) {
            for (result, cell) in RESULTS.iter().zip(row) {
                out.push((mechanism.name(), *result, cell.load(Ordering::Relaxed)));
            }
        }
        out
    }
}

impl AuthError {
    /// The `result` field of the log line.
    fn result(&self) -> &'static str {
        match self {
            AuthError::BadCredentials | AuthError::Authorization => "fail",
            AuthError::Throttled { .. } => "throttled",
            AuthError::Blocked { .. } => "blocked",
            AuthError::Protocol(_) | AuthError::Store(_) | AuthError::Internal(_) => "error",
        }
    }
}

/// The policy settings of an [`Authenticator`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// Delays, blocks and account spacing.
    pub throttle: ThrottlePolicy,
    /// Networks exempt from all throttling (default: none; loopback too is counted).
    pub trusted_networks: Vec<Network>,
}

/// Most password-hashing threads: each takes a core for tens of milliseconds and keeps 19 MiB.
const MAX_HASH_WORKERS: usize = 4;
/// How long a verified password is remembered, so that a client opening several connections
/// (Thunderbird opens five) pays for argon2 once (as Dovecot's auth cache does).
const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// Most remembered verifications; past that the memory is simply cleared.
const MAX_VERIFIED: usize = 10_000;
/// Longest login name echoed into a log line.
const MAX_LOGGED_NAME: usize = 64;

/// The verdict of a password check.
struct PasswordCheck {
    /// The password matched the stored hash.
    ok: bool,
    /// What to remember (stored hash, keyed digest of the password) if the login it belongs to
    /// fully succeeds; `None` when the verdict came from memory or must not be remembered.
    remember: Option<(String, Vec<u8>)>,
}

/// Checks credentials against the account store under the brute-force policy.
pub struct Authenticator {
    accounts: Arc<dyn AccountStore>,
    hasher: hasher::Hasher,
    /// Recently verified passwords: stored hash → (keyed digest of the password, expiry). Only
    /// logins that fully succeeded on accounts without a second factor are kept, and only such
    /// accounts consult it; a changed password has a new stored hash and so misses.
    verified: Mutex<HashMap<String, (Vec<u8>, Duration)>>,
    throttle: Throttle,
    trusted: Vec<Network>,
    clock: Arc<dyn Clock>,
    /// The store's credentials generation as last seen ([`Authenticator::refresh`]).
    generation: watch::Sender<u64>,
    /// Key for the stand-in SCRAM credentials of names that have none (random per process).
    decoy_key: Vec<u8>,
    /// Every logged attempt, counted.
    attempts: AttemptCounts,
    /// Bearer tokens (`[oauth]`), when configured.
    oauth: Option<Arc<oauth::TokenVerifier>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("throttle", &self.throttle).finish_non_exhaustive()
    }
}

/// A SCRAM exchange between the server-first and the client-final message.
#[derive(Debug)]
pub struct ScramExchange {
    server: ScramServer,
    peer: IpAddr,
    mechanism: Mechanism,
    user: String,
    /// The account, when its real credential is in use (a decoy otherwise: the proof cannot
    /// match).
    account: Option<Account>,
}

impl ScramExchange {
    /// The server-first message to send.
    pub fn server_first(&self) -> &str {
        self.server.server_first()
    }
}

impl Authenticator {
    /// An authenticator with the default policy and the system clock.
    pub fn new(accounts: Arc<dyn AccountStore>) -> Self {
        Self::with_settings(accounts, AuthSettings::default(), Arc::new(SystemClock))
    }

    /// An authenticator with the given policy and clock.
    pub fn with_settings(
        accounts: Arc<dyn AccountStore>,
        settings: AuthSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        // Without randomness the decoys are merely predictable, which only tells an attacker
        // which names lack a SCRAM credential; logins stay safe.
        let decoy_key = crypto::random_bytes(32).unwrap_or_else(|_| b"postfach-decoy".to_vec());
        Self {
            accounts,
            hasher: hasher::Hasher::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()).min(MAX_HASH_WORKERS),
            ),
            verified: Mutex::new(HashMap::new()),
            throttle: Throttle::new(settings.throttle, Arc::clone(&clock)),
            trusted: settings.trusted_networks,
            clock,
            generation: watch::Sender::new(0),
            decoy_key,
            attempts: AttemptCounts::default(),
            oauth: None,
        }
    }

    /// This authenticator, accepting bearer tokens checked by `verifier` (OAUTHBEARER, XOAUTH2).
    #[must_use]
    pub fn with_oauth(mut self, verifier: Arc<oauth::TokenVerifier>) -> Self {
        self.oauth = Some(verifier);
        self
    }

    /// The bearer-token verifier, when tokens are accepted.
    pub fn oauth(&self) -> Option<&Arc<oauth::TokenVerifier>> {
        self.oauth.as_ref()
    }

    /// Attempts so far by mechanism and result (the log line's `mechanism` and `result`).
    pub fn attempts(&self) -> &AttemptCounts {
        &self.attempts
    }

    /// The failure counters.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// True when `ip` is in a trusted network.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// True when `ip` is blocked as far as this process knows (a cheap check a listener can
    /// make at accept time; logins also ask the store).
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        !self.is_trusted(ip)
            && matches!(self.throttle.check_address(AddressKey::of(ip)), AddressVerdict::Blocked(_))
    }

    // --- password mechanisms -----------------------------------------------------------------

    /// Checks a user name and secret (LOGIN, PLAIN, SASL LOGIN): an app password, the password,
    /// or the password followed by the TOTP code, in the order and under the rules the module
    /// documentation lists. Logs the attempt.
    pub async fn login(
        &self,
        peer: IpAddr,
        mechanism: Mechanism,
        user: &str,
        secret: Secret,
    ) -> Result<Principal, AuthError> {
        let result = self.login_checked(peer, user, Presented::Combined(secret)).await;
        self.log_attempt(peer, mechanism, user, result.as_ref().map(|(_, detail)| *detail));
        result.map(|(p, _)| p)
    }

    /// Checks the web pages' login form: the account password and, when two-factor login is
    /// on, the current code from its own field (whatever the account's password-plus-code
    /// setting, which is about IMAP clients). App passwords are never tried: they are for
    /// devices, and must not open the pages where app passwords are made. Same throttling,
    /// blocks and log line as [`Authenticator::login`], with mechanism `WEB`.
    pub async fn login_web(
        &self,
        peer: IpAddr,
        user: &str,
        password: Secret,
        code: Option<Secret>,
    ) -> Result<Principal, AuthError> {
        let result = self.login_checked(peer, user, Presented::Separate { password, code }).await;
        self.log_attempt(peer, Mechanism::WebForm, user, result.as_ref().map(|(_, detail)| *detail));
        result.map(|(p, _)| p)
    }

    async fn login_checked(
        &self,
        peer: IpAddr,
        user: &str,
        presented: Presented,
    ) -> Result<(Principal, &'static str), AuthError> {
        let key = AddressKey::of(peer);
        let trusted = self.is_trusted(peer);
        if !trusted {
            self.admit(key).await?;
        }
        let account = login_account(self.accounts.account_by_name(user).await?);
        if let Some(a) = &account
            && let Presented::Combined(secret) = &presented
            && let Some(principal) = self.app_password(a, peer, secret).await?
        {
            if !trusted {
                self.throttle.record_success(key, user);
            }
            return Ok((principal, "app password"));
        }
        // An address the account logged in from recently is its owner's (or shares their
        // network): not held to the account's spacing, only to its own address counter.
        if !trusted && let Some(retry_after) = self.throttle.account_wait_from(user, key) {
            // Not a password check, so not an account failure; the address pays for it.
            self.count_failure(key, None).await;
            return Err(AuthError::Throttled { retry_after });
        }
        let totp = match &account {
            Some(a) => self.accounts.totp(a.id).await?.filter(|t| t.confirmed),
            None => None,
        };
        let (password, code) = match (presented, &totp) {
            (Presented::Separate { password, code }, _) => (password, code),
            (Presented::Combined(secret), Some(t)) if t.password_plus_code == PasswordPlusCode::Allowed => {
                totp::split_password_and_code(secret)
            }
            (Presented::Combined(secret), _) => (secret, None),
        };
        // The memory of verified passwords serves accounts without a second factor only:
        // consulted for an account with one, it would answer a right password faster than a
        // wrong one whatever the code, telling a guesser which half they have right.
        let use_cache = totp.is_none();
        let check =
            self.verify_hash(account.as_ref().map(|a| a.password_hash.as_str()), password, use_cache).await?;
        let outcome = match (check.ok, account, totp) {
            (true, Some(a), None) => Ok((self.principal(a, Credential::Password), "password")),
            (true, Some(a), Some(t)) => match code {
                Some(code) => self.second_factor(a, t, &code).await?,
                None => Err("second factor required"),
            },
            _ => Err("bad credentials"),
        };
        match outcome {
            Ok(found) => {
                // Only now, with every factor checked, is the password worth remembering.
                self.remember(check.remember);
                if !trusted {
                    self.throttle.record_success(key, user);
                }
                Ok(found)
            }
            Err(detail) => {
                if !trusted {
                    self.count_failure(key, Some(user)).await;
                }
                tracing::debug!(target: LOG_TARGET, detail, "credential check failed");
                Err(AuthError::BadCredentials)
            }
        }
    }

    // --- bearer tokens -------------------------------------------------------------------------

    /// Checks a bearer token (OAUTHBEARER, XOAUTH2): the issuer's signature or introspection,
    /// then the account its claim names, which must be the authorization identity when the
    /// client gave one. Throttled, blocked and logged like a password; no second factor (the
    /// issuer asked for it). Without `[oauth]` every token fails.
    pub async fn login_token(
        &self,
        peer: IpAddr,
        mechanism: Mechanism,
        request: oauth::BearerRequest,
    ) -> Result<Principal, AuthError> {
        let shown = request.user.clone().unwrap_or_default();
        let result = self.token_checked(peer, request).await;
        let logged = match &result {
            Ok(p) => p.name.clone(),
            Err(_) => shown,
        };
        self.log_attempt(peer, mechanism, &logged, result.as_ref().map(|_| "bearer token"));
        result
    }

    async fn token_checked(
        &self,
        peer: IpAddr,
        request: oauth::BearerRequest,
    ) -> Result<Principal, AuthError> {
        let key = AddressKey::of(peer);
        let trusted = self.is_trusted(peer);
        if !trusted {
            self.admit(key).await?;
        }
        let verdict = match (&self.oauth, std::str::from_utf8(request.token.expose_secret())) {
            (Some(verifier), Ok(token)) => verifier.verify(token).await.map_err(|e| e.0),
            (None, _) => Err("bearer tokens are not configured".to_owned()),
            (_, Err(_)) => Err("token is not UTF-8".to_owned()),
        };
        let outcome = match verdict {
            Ok(name) => match &request.user {
                Some(asked) if !asked.eq_ignore_ascii_case(&name) => {
                    Err(format!("token is for {name:?}, not the authorization identity"))
                }
                _ => match login_account(self.accounts.account_by_name(&name).await?) {
                    Some(account) => Ok(account),
                    None => Err(format!("no account {name:?}")),
                },
            },
            Err(why) => Err(why),
        };
        match outcome {
            Ok(account) => {
                if !trusted {
                    self.throttle.record_success(key, &account.name);
                }
                Ok(self.principal(account, Credential::Token))
            }
            Err(detail) => {
                if !trusted {
                    self.count_failure(key, None).await;
                }
                tracing::debug!(target: LOG_TARGET, detail, "bearer token refused");
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// Tries the account's app passwords; on a match notes the use.
    async fn app_password(
        &self,
        account: &Account,
        peer: IpAddr,
        secret: &Secret,
    ) -> Result<Option<Principal>, AuthError> {
        let Some(canonical) = app_password::canonical(secret.expose_secret()) else {
            return Ok(None);
        };
        let found = self
            .accounts
            .app_passwords(account.id)
            .await?
            .into_iter()
            .find(|p| app_password::verify(&p.hash, &canonical));
        let Some(found) = found else {
            return Ok(None);
        };
        let now = unix_seconds(self.clock.now());
        if let Err(e) = self.accounts.app_password_used(found.id, now, &peer.to_string()).await {
            // The login is valid; only the "last used" column is stale.
            tracing::warn!(target: LOG_TARGET, error = %e, "cannot record the app password's use");
        }
        Ok(Some(
            self.principal(account.clone(), Credential::AppPassword { id: found.id, label: found.label }),
        ))
    }

    /// Checks the TOTP code after the password matched; claims its time step.
    async fn second_factor(
        &self,
        account: Account,
        settings: TotpSettings,
        code: &Secret,
    ) -> Result<Result<(Principal, &'static str), &'static str>, AuthError> {
        let secret = TotpSecret::from_bytes(settings.secret);
        let Some(step) = totp::verify(&secret, code.expose_secret(), self.clock.now(), settings.last_step)
        else {
            return Ok(Err("wrong or reused TOTP code"));
        };
        // RFC 6238 §5.2: one use per code; the store decides races between sessions.
        if !self.accounts.claim_totp_step(account.id, step).await? {
            return Ok(Err("reused TOTP code"));
        }
        Ok(Ok((self.principal(account, Credential::PasswordAndCode), "password and TOTP code")))
    }

    /// argon2id verification on the hashing workers; unknown users cost the same as known ones.
    /// With `use_cache`, a password remembered from a login that fully succeeded in the last few
    /// minutes against the same stored hash is accepted from memory (a keyed digest, never the
    /// password itself). Nothing is remembered here: a match returns what to remember, and the
    /// caller calls [`Authenticator::remember`] only once the whole login succeeded. The password
    /// moves into the hashing job; the worker wipes it.
    async fn verify_hash(
        &self,
        hash: Option<&str>,
        password: Secret,
        use_cache: bool,
    ) -> Result<PasswordCheck, AuthError> {
        let now = self.clock.now();
        let digest = hash.filter(|_| use_cache).map(|_| self.verified_digest(&password));
        if let (Some(hash), Some(digest)) = (hash, &digest) {
            let remembered = self
                .verified_lock()
                .get(hash)
                .is_some_and(|(d, expiry)| *expiry > now && crypto::ct_eq(d, digest));
            if remembered {
                return Ok(PasswordCheck { ok: true, remember: None });
            }
        }
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| password::dummy_hash()).to_owned();
        let ok = self.hasher.verify(hash.clone(), password).await.map_err(AuthError::Internal)?;
        if !known {
            // An unknown user's password never matches, whatever the dummy hash said.
            return Ok(PasswordCheck { ok: false, remember: None });
        }
        let remember = digest.filter(|_| ok).map(|digest| (hash, digest));
        Ok(PasswordCheck { ok, remember })
    }

    /// Remembers a password after the login it opened fully succeeded.
    fn remember(&self, entry: Option<(String, Vec<u8>)>) {
        let Some((hash, digest)) = entry else { return };
        let expiry = self.clock.now() + VERIFIED_TTL;
        let mut verified = self.verified_lock();
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(hash, (digest, expiry));
    }

    /// How many argon2 verifications this authenticator has run (a remembered password runs
    /// none). For tests that check which logins pay for a full hash, without timing them.
    pub fn password_hash_runs(&self) -> u64 {
        self.hasher.jobs()
    }

    fn verified_digest(&self, password: &Secret) -> Vec<u8> {
        let mut data = Zeroizing::new(Vec::with_capacity(9 + password.len()));
        data.extend_from_slice(b"verified:");
        data.extend_from_slice(password.expose_secret());
        crypto::hmac(HashAlgorithm::Sha256, &self.decoy_key, &data)
    }

    fn verified_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<u8>, Duration)>> {
        // A poisoned lock only means a panic elsewhere; the map is still a valid cache.
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    // --- SCRAM -------------------------------------------------------------------------------

    /// Reads a SCRAM client-first message and prepares the server-first message. `binding` is
    /// the connection's channel binding, `Some` exactly when SCRAM-SHA-256-PLUS is offered.
    /// Failures here (blocked, throttled, protocol errors) are logged; success is logged by
    /// [`Authenticator::scram_finish`].
    pub async fn scram_start(
        &self,
        peer: IpAddr,
        variant: Variant,
        client_first: &[u8],
        binding: Option<&ChannelBinding>,
    ) -> Result<ScramExchange, AuthError> {
        let mechanism = match variant {
            Variant::Plain => Mechanism::ScramSha256,
            Variant::Plus => Mechanism::ScramSha256Plus,
        };
        let first = match ClientFirst::parse(client_first) {
            Ok(f) => f,
            Err(e) => {
                let e = AuthError::Protocol(e);
                self.log_attempt(peer, mechanism, "", Err(&e));
                return Err(e);
            }
        };
        let started = self.scram_prepare(peer, mechanism, variant, &first, binding).await;
        if let Err(e) = &started {
            self.log_attempt(peer, mechanism, &first.username, Err(e));
        }
        started
    }

    async fn scram_prepare(
        &self,
        peer: IpAddr,
        mechanism: Mechanism,
        variant: Variant,
        first: &ClientFirst,
        binding: Option<&ChannelBinding>,
    ) -> Result<ScramExchange, AuthError> {
        if first.authzid.as_ref().is_some_and(|z| *z != first.username) {
            return Err(AuthError::Authorization);
        }
        let key = AddressKey::of(peer);
        let trusted = self.is_trusted(peer);
        if !trusted {
            self.admit(key).await?;
            if let Some(retry_after) = self.throttle.account_wait_from(&first.username, key) {
                self.count_failure(key, None).await;
                return Err(AuthError::Throttled { retry_after });
            }
        }
        let account = login_account(self.accounts.account_by_name(&first.username).await?);
        let mut credential = None;
        if let Some(a) = &account {
            // With TOTP on, the password alone must not open IMAP, and SCRAM carries no code.
            let totp_on = self.accounts.totp(a.id).await?.is_some_and(|t| t.confirmed);
            if !totp_on {
                credential = self.accounts.scram_credential(a.id).await?;
            }
        }
        let (credential, account) = match credential {
            Some(c) => (c, account),
            None => (self.decoy_credential(&first.username), None),
        };
        let nonce = scram::server_nonce().map_err(AuthError::Internal)?;
        let server = ScramServer::new(first, variant, binding, credential, &nonce).map_err(|e| {
            // A downgrade attempt is an authentication failure, other misuse a protocol error.
            if e.is_credential_failure() { AuthError::BadCredentials } else { AuthError::Protocol(e) }
        })?;
        Ok(ScramExchange { server, peer, mechanism, user: first.username.clone(), account })
    }

    /// Checks the SCRAM client-final message. On success returns the principal and the
    /// server-final message to send before the tagged OK. Logs the attempt.
    pub async fn scram_finish(
        &self,
        exchange: ScramExchange,
        client_final: &[u8],
    ) -> Result<(Principal, String), AuthError> {
        let ScramExchange { server, peer, mechanism, user, account } = exchange;
        let key = AddressKey::of(peer);
        let trusted = self.is_trusted(peer);
        // `Err(None)`: the credentials failed; `Err(Some(e))`: the client broke the protocol.
        let verdict = match server.finish(client_final) {
            // A decoy credential cannot verify; if it somehow did, it opens nothing.
            Ok(server_final) => account.map(|a| (a, server_final)).ok_or(None),
            Err(e) if e.is_credential_failure() => Err(None),
            Err(e) => Err(Some(e)),
        };
        let result = match verdict {
            Ok((a, server_final)) => {
                if !trusted {
                    self.throttle.record_success(key, &user);
                }
                Ok((self.principal(a, Credential::Scram), server_final))
            }
            Err(Some(e)) => Err(AuthError::Protocol(e)),
            Err(None) => {
                if !trusted {
                    self.count_failure(key, Some(&user)).await;
                }
                Err(AuthError::BadCredentials)
            }
        };
        self.log_attempt(peer, mechanism, &user, result.as_ref().map(|_| "scram"));
        result
    }

    /// A stand-in credential for names without a usable one: stable per name within this
    /// process, so probing twice shows the same salt, and no proof can match it.
    fn decoy_credential(&self, user: &str) -> ScramCredential {
        let salt = crypto::hmac(HashAlgorithm::Sha256, &self.decoy_key, format!("salt:{user}").as_bytes());
        let stored =
            crypto::hmac(HashAlgorithm::Sha256, &self.decoy_key, format!("stored:{user}").as_bytes());
        ScramCredential {
            iterations: scram::ITERATIONS,
            salt: salt.get(..16).unwrap_or_default().to_vec(),
            stored_key: stored,
            server_key: crypto::hmac(
                HashAlgorithm::Sha256,
                &self.decoy_key,
                format!("server:{user}").as_bytes(),
            ),
        }
    }

    // --- throttling helpers ------------------------------------------------------------------

    /// Refuses a blocked address (unless the store says the block was lifted) and makes a
    /// failing one wait.
    async fn admit(&self, key: AddressKey) -> Result<(), AuthError> {
        match self.throttle.check_address(key) {
            AddressVerdict::Blocked(_) => {
                let now = unix_seconds(self.clock.now());
                match self.accounts.address_block(&key.to_string(), now).await? {
                    Some(block) => {
                        Err(AuthError::Blocked { until: Duration::from_secs(block.until.unsigned_abs()) })
                    }
                    None => {
                        // `postfach ban remove` lifted it.
                        self.throttle.unblock(key);
                        Ok(())
                    }
                }
            }
            AddressVerdict::Proceed(delay) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(())
            }
        }
    }

    /// Counts a failure; persists a block it starts.
    async fn count_failure(&self, key: AddressKey, account: Option<&str>) {
        let Some(until) = self.throttle.record_failure(key, account) else {
            return;
        };
        let now = unix_seconds(self.clock.now());
        let until = unix_seconds(until);
        tracing::warn!(target: LOG_TARGET, addr = %key, until, "address blocked after repeated failed logins");
        let block = AddressBlock {
            address: key.to_string(),
            until,
            created: now,
            reason: format!("{} failed logins", self.throttle.policy().block_after),
        };
        if let Err(e) = self.accounts.block_address(&block).await {
            // The block holds in memory; only `ban list` and a restart will not see it.
            tracing::warn!(target: LOG_TARGET, error = %e, "cannot store the address block");
        }
    }

    // --- live sessions -----------------------------------------------------------------------

    /// The store's credentials generation as last seen. Sessions note it at login and re-check
    /// their credential with [`Authenticator::still_valid`] when it moves.
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// A receiver that wakes when the credentials generation moves (for idle sessions).
    pub fn subscribe_generation(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Reads the credentials generation from the store and publishes a change.
    pub async fn refresh(&self) -> Result<(), AuthError> {
        let current = self.accounts.credentials_generation().await?;
        self.generation.send_if_modified(|seen| {
            let moved = *seen != current;
            *seen = current;
            moved
        });
        Ok(())
    }

    /// Loads the address blocks in force from the store (after a restart).
    pub async fn load_blocks(&self) -> Result<usize, AuthError> {
        let blocks = self.accounts.address_blocks(unix_seconds(self.clock.now())).await?;
        let mut loaded = 0;
        for block in blocks {
            if let Ok(key) = block.address.parse::<AddressKey>() {
                self.throttle.block(key, Duration::from_secs(block.until.unsigned_abs()));
                loaded += 1;
            }
        }
        Ok(loaded)
    }

    /// Runs forever: loads the stored blocks once, then polls the credentials generation every
    /// `period`, so revocations made by the CLI (another process) reach live sessions. Spawn it
    /// once per server.
    pub async fn watch_store(&self, period: Duration) {
        self.watch_store_with(period, None).await;
    }

    /// [`Authenticator::watch_store`], also woken by `told` (the store's word that credentials
    /// or address blocks changed, e.g. on another node of a shared database): then the
    /// generation is read at once and the blocks in force are loaded again.
    pub async fn watch_store_with(
        &self,
        period: Duration,
        mut told: Option<tokio::sync::watch::Receiver<u64>>,
    ) {
        if let Err(e) = self.load_blocks().await {
            tracing::warn!(target: LOG_TARGET, error = %e, "cannot load address blocks");
        }
        loop {
            if let Err(e) = self.refresh().await {
                tracing::warn!(target: LOG_TARGET, error = %e, "cannot read the credentials generation");
            }
            let woken = match told.as_mut() {
                Some(rx) => tokio::select! {
                    changed = rx.changed() => changed.is_ok(),
                    () = tokio::time::sleep(period) => false,
                },
                None => {
                    tokio::time::sleep(period).await;
                    false
                }
            };
            if woken && let Err(e) = self.load_blocks().await {
                tracing::warn!(target: LOG_TARGET, error = %e, "cannot load address blocks");
            }
        }
    }

    /// Whether what opened a session still holds: its account exists; an app password session's
    /// app password exists (a password change leaves it: app passwords are separate, revocable
    /// credentials); a session opened with the password sees the same password (a change ends
    /// it), and with the password alone did not see TOTP switched on since.
    pub async fn still_valid(&self, principal: &Principal) -> Result<bool, AuthError> {
        let Some(account) = login_account(self.accounts.account_by_name(&principal.name).await?) else {
            return Ok(false);
        };
        if account.id != principal.account {
            return Ok(false);
        }
        let same_password = self.password_stamp(&account.password_hash) == principal.password;
        Ok(match &principal.credential {
            Credential::AppPassword { id, .. } => self.accounts.app_password_exists(*id).await?,
            Credential::Password | Credential::Scram => {
                same_password && !self.accounts.totp(account.id).await?.is_some_and(|t| t.confirmed)
            }
            Credential::PasswordAndCode => same_password,
            Credential::Token => true,
        })
    }

    /// Whether `password` is the principal's account password now: a logged-in user confirming
    /// a change (the web's password form). Not a login: no log line and no counters (the
    /// caller limits attempts); one argon2 run on the hashing workers.
    pub async fn confirm_password(&self, principal: &Principal, password: Secret) -> Result<bool, AuthError> {
        let account = login_account(self.accounts.account_by_name(&principal.name).await?)
            .filter(|a| a.id == principal.account);
        let hash = account.as_ref().map(|a| a.password_hash.as_str());
        let check = self.verify_hash(hash, password, false).await?;
        Ok(check.ok && account.is_some())
    }

    /// The principal again, stamped with the account's current password: for the session that
    /// changed the password itself, which goes on while the others end.
    pub async fn restamp(&self, principal: &Principal) -> Result<Principal, AuthError> {
        let account = login_account(self.accounts.account_by_name(&principal.name).await?)
            .filter(|a| a.id == principal.account)
            .ok_or(AuthError::BadCredentials)?;
        Ok(Principal { password: self.password_stamp(&account.password_hash), ..principal.clone() })
    }

    /// The principal of a successful login, stamped with the account's current password.
    fn principal(&self, account: Account, credential: Credential) -> Principal {
        let password = self.password_stamp(&account.password_hash);
        Principal { account: account.id, name: account.name, credential, password }
    }

    /// The keyed digest of a stored password hash (the same key as the decoys: per process).
    fn password_stamp(&self, password_hash: &str) -> PasswordStamp {
        let mut data = b"stamp:".to_vec();
        data.extend_from_slice(password_hash.as_bytes());
        let digest = crypto::hmac(HashAlgorithm::Sha256, &self.decoy_key, &data);
        let mut stamp = [0u8; 16];
        for (to, from) in stamp.iter_mut().zip(&digest) {
            *to = *from;
        }
        PasswordStamp(stamp)
    }

    // --- logging -----------------------------------------------------------------------------

    /// The one structured line per attempt (see the module documentation). `Ok` carries what
    /// opened the account.
    fn log_attempt(&self, peer: IpAddr, mechanism: Mechanism, user: &str, result: Result<&str, &AuthError>) {
        let account: String = user.chars().take(MAX_LOGGED_NAME).collect();
        self.attempts.count(mechanism, result.map_or_else(AuthError::result, |_| "ok"));
        let mechanism = mechanism.name();
        match result {
            Ok(detail) => {
                tracing::info!(target: LOG_TARGET, addr = %peer, account = ?account, mechanism = %mechanism, result = %"ok", detail, "authentication");
            }
            Err(e) => {
                let detail = e.to_string();
                let result = e.result();
                tracing::info!(target: LOG_TARGET, addr = %peer, account = ?account, mechanism = %mechanism, result = %result, detail, "authentication");
            }
        }
    }
}

/// What a login presented: one secret (IMAP, POP3: an app password, the password, or the
/// password followed by the code), or the web form's separate fields.
enum Presented {
    Combined(Secret),
    Separate { password: Secret, code: Option<Secret> },
}

/// The account a login name may open: a team (RFC 2342 shared namespace) never logs in, by any
/// mechanism, so it is treated exactly like an unknown name from here on (no app password or
/// TOTP lookup, the dummy argon2 run, a decoy SCRAM credential): a guesser cannot tell a team's
/// name from a free one by the answer or its timing.
fn login_account(account: Option<Account>) -> Option<Account> {
    account.filter(|a| a.kind == AccountKind::User)
}

fn unix_seconds(t: Duration) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted() {
        let s = Secret::from(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "/* REDACTED */");
    }
}
