//! Certificates from an ACME CA (RFC 8555), such as Let's Encrypt: `[tls] acme`.
//!
//! A task of `postfach serve` ([`AcmeTask::run`]) looks at the certificate at start and every
//! [`CHECK_EVERY`]; when it is missing, unreadable, for other names than `domains`, or expires
//! within `renew_before_days`, it orders a new one, and it orders at once when asked
//! (`postfach tls renew`, through the control socket). A new certificate is installed like a
//! SIGHUP reload does ([`Certificates::reload`]): new connections get it, open ones keep
//! theirs. A failed order is logged and retried after [`RETRY_FIRST`], doubling up to
//! [`RETRY_MAX`]; meanwhile the current certificate (an older ACME one, or the configured or
//! generated one) keeps serving.
//!
//! Files, in `<data_dir>/tls/acme/` (mode 0700):
//! - `account.json` (0600): the ACME account's key and URL, with the directory it belongs to;
//!   a changed `directory` makes a new account.
//! - `key.pem` (0600): the certificate's key, made once and kept across renewals, so that the
//!   only file a renewal rewrites is `cert.pem` and no crash can leave a certificate beside a
//!   key that does not match it (as `tls.rs` does for the generated certificate).
//! - `cert.pem`: the chain as the CA sent it, leaf first, checked against `key.pem` and
//!   `domains` before it replaces the old one.
//!
//! Every file is written to a temporary name, synced and renamed.
//!
//! Challenges: HTTP-01 (RFC 8555 §8.3) on `http_listen`, bound only while an order is pending
//! ([`HttpResponder`]); TLS-ALPN-01 (RFC 8737) on the implicit-TLS IMAP listeners, which hand a
//! ClientHello offering `acme-tls/1` for a name with a pending challenge to
//! [`Challenges::alpn_config`] and close after the handshake ([`accept`]).
//!
//! Limits: one certificate for all `domains` (no per-name orders); no ACME renewal information
//! (ARI), no external account binding, no revocation; DNS names only.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder,
    OrderStatus, RetryPolicy,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::acme_http::{AcmeHttp, ClientError};
use crate::cert_info::{self, CertInfo};
use crate::config::{AcmeChallenge, AcmeConfig, TlsFiles};
use crate::imap_conn::shutdown_requested;
use crate::tls::{self, Certificates, TlsError};

/// How often the task looks at the certificate when nothing is due.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(12 * 3600);
/// The pause after the first failed order; it doubles with each failure in a row.
const RETRY_FIRST: Duration = Duration::from_secs(60);
/// The longest pause between failed orders.
const RETRY_MAX: Duration = Duration::from_secs(6 * 3600);
/// The longest one order may take, from the account to the certificate.
const ORDER_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long to wait for the CA to validate the challenges, and then to issue.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(120);
/// The ALPN protocol of TLS-ALPN-01 (RFC 8737 §6.2).
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// The path prefix of HTTP-01 answers (RFC 8555 §8.3).
const HTTP_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";
/// HTTP-01 connections served at once (the CA sends a few, from several places).
const HTTP_MAX_CONNECTIONS: usize = 32;
/// Time one HTTP-01 connection may stay open.
const HTTP_CONNECTION_LIFETIME: Duration = Duration::from_secs(10);

// --- files -----------------------------------------------------------------------------------

/// Where the ACME state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AcmeFiles {
    /// `<data_dir>/tls/acme`.
    pub(crate) dir: PathBuf,
    /// The account (`account.json`).
    pub(crate) account: PathBuf,
    /// The certificate chain and its key.
    pub(crate) pair: TlsFiles,
}

/// The ACME files of `data_dir`.
pub(crate) fn files(data_dir: &Path) -> AcmeFiles {
    let dir = data_dir.join("tls").join("acme");
    AcmeFiles {
        account: dir.join("account.json"),
        pair: TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") },
        dir,
    }
}

/// Why a certificate is ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Due {
    /// There is none yet.
    Missing,
    /// `cert.pem` cannot be read.
    Unreadable(String),
    /// It is for other names than `domains` (the configuration changed).
    Names {
        /// The names it has.
        found: Vec<String>,
    },
    /// It expires within `renew_before_days`, or has expired.
    Expiring {
        /// Its end of validity.
        not_after: OffsetDateTime,
    },
    /// An administrator asked (`postfach tls renew`).
    Requested,
}

impl fmt::Display for Due {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("there is no ACME certificate yet"),
            Self::Unreadable(why) => write!(f, "the ACME certificate is not readable ({why})"),
            Self::Names { found } => {
                write!(f, "its names ({}) are not the configured domains", found.join(", "))
            }
            Self::Expiring { not_after } => write!(f, "it expires on {}", cert_info::date(*not_after)),
            Self::Requested => f.write_str("a renewal was requested"),
        }
    }
}

/// Why the certificate in `files` must be ordered anew at `now`, if it must.
pub(crate) fn due(files: &AcmeFiles, config: &AcmeConfig, now: OffsetDateTime) -> Option<Due> {
    if !files.pair.cert.is_file() {
        return Some(Due::Missing);
    }
    let info = match CertInfo::read(&files.pair.cert) {
        Ok(info) => info,
        Err(e) => return Some(Due::Unreadable(e.to_string())),
    };
    let mut found: Vec<String> = info.names.iter().map(|n| n.to_ascii_lowercase()).collect();
    found.sort();
    let mut wanted = config.domains.clone();
    wanted.sort();
    if found != wanted {
        return Some(Due::Names { found: info.names });
    }
    let left = info.not_after - now;
    (left < config.renew_before).then_some(Due::Expiring { not_after: info.not_after })
}

// --- errors ----------------------------------------------------------------------------------

/// Why an order failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AcmeError {
    /// The HTTPS client could not be set up.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The CA answered with a problem, or could not be reached.
    #[error("ACME: {0}")]
    Protocol(#[from] instant_acme::Error),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// `account.json` is not what this module writes.
    #[error("{}: not a stored ACME account ({reason}); remove it to create a new account", path.display())]
    AccountFile {
        /// The file.
        path: PathBuf,
        /// The parser's description.
        reason: String,
    },
    /// The HTTP-01 listener could not be bound.
    #[error("cannot listen on {addr} for http-01 challenges: {source}")]
    HttpListen {
        /// `http_listen`.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// An authorization is in a state no challenge can change.
    #[error("the authorization for {name} is {status:?}")]
    Authorization {
        /// The name.
        name: String,
        /// Its state.
        status: AuthorizationStatus,
    },
    /// The CA offers no challenge of the configured type for a name.
    #[error("the CA offers no {challenge} challenge for {name}")]
    NoChallenge {
        /// The name.
        name: String,
        /// The configured type.
        challenge: &'static str,
    },
    /// Validation failed or did not finish.
    #[error("the order is {status:?}, not ready: {reasons}")]
    NotReady {
        /// The order's state.
        status: OrderStatus,
        /// What the CA said about each failed challenge.
        reasons: String,
    },
    /// A key, CSR or challenge certificate could not be made.
    #[error("making a key or certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The certificate the CA sent is not usable.
    #[error("the CA's certificate is not usable: {0}")]
    BadCertificate(String),
    /// The certificate files (`tls.rs`' errors).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The whole order took longer than [`ORDER_TIMEOUT`].
    #[error("no certificate within {} s", ORDER_TIMEOUT.as_secs())]
    Timeout,
}

// --- challenge responses ---------------------------------------------------------------------

/// The answers to pending challenges, shared by the ordering task, the HTTP-01 listener and
/// the implicit-TLS listeners.
#[derive(Default)]
pub(crate) struct Challenges {
    /// HTTP-01: token → key authorization.
    http: RwLock<HashMap<String, String>>,
    /// TLS-ALPN-01: name (lower case) → the challenge certificate.
    alpn: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl fmt::Debug for Challenges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenges").finish_non_exhaustive()
    }
}

impl Challenges {
    /// The key authorization for an HTTP-01 `token`.
    fn http_response(&self, token: &str) -> Option<String> {
        self.http.read().unwrap_or_else(PoisonError::into_inner).get(token).cloned()
    }

    /// A server configuration answering the TLS-ALPN-01 challenge for the client of `hello`, if
    /// it offers `acme-tls/1` and names a name with a pending challenge (RFC 8737 §3).
    pub(crate) fn alpn_config(&self, hello: &ClientHello<'_>) -> Option<Arc<ServerConfig>> {
        let offered = hello.alpn().is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if !offered {
            return None;
        }
        let name = hello.server_name()?.to_ascii_lowercase();
        let key = self.alpn.read().unwrap_or_else(PoisonError::into_inner).get(&name).cloned()?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        // RFC 8737 §4: TLS 1.2 or later; the CA sends the name it validates as SNI.
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .ok()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(OneCertificate(key)));
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        Some(Arc::new(config))
    }

    fn add_http(&self, token: String, key_authorization: String) {
        self.http.write().unwrap_or_else(PoisonError::into_inner).insert(token, key_authorization);
    }

    fn add_alpn(&self, name: String, key: Arc<CertifiedKey>) {
        self.alpn.write().unwrap_or_else(PoisonError::into_inner).insert(name, key);
    }

    fn clear(&self) {
        self.http.write().unwrap_or_else(PoisonError::into_inner).clear();
        self.alpn.write().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// A resolver with one certificate for every client.
#[derive(Debug)]
struct OneCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// The self-signed certificate of a TLS-ALPN-01 answer for `name` (RFC 8737 §3): the name as
/// its only SAN and the critical acmeIdentifier extension holding the SHA-256 of the key
/// authorization.
fn alpn_certificate(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, AcmeError> {
    if digest.len() != 32 {
        return Err(AcmeError::BadCertificate("the key authorization digest is not SHA-256".to_owned()));
    }
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key)?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let der =
        PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| AcmeError::BadCertificate(e.to_owned()))?;
    // Not `CertifiedKey::from_der`: its key check parses the certificate with webpki, which
    // refuses the critical acmeIdentifier extension it does not know.
    let signing_key =
        provider.key_provider.load_private_key(der).map_err(|e| AcmeError::BadCertificate(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing_key)))
}

/// The HTTP-01 listener of one order; stops when dropped.
struct HttpResponder {
    task: JoinHandle<()>,
}

impl Drop for HttpResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpResponder {
    /// Binds `addr` and answers `GET /.well-known/acme-challenge/<token>` from `challenges`.
    async fn start(addr: SocketAddr, challenges: Arc<Challenges>) -> Result<Self, AcmeError> {
        let listener =
            TcpListener::bind(addr).await.map_err(|source| AcmeError::HttpListen { addr, source })?;
        debug!(%addr, "listening for http-01 validations");
        let slots = Arc::new(Semaphore::new(HTTP_MAX_CONNECTIONS));
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        debug!(error = %e, "http-01 accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Over the cap the connection is closed at once: the CA retries.
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else { continue };
                let challenges = Arc::clone(&challenges);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let answer = http_answer(&challenges, &request);
                        async move { Ok::<_, std::convert::Infallible>(answer) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service);
                    match tokio::time::timeout(HTTP_CONNECTION_LIFETIME, conn).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => debug!(%peer, error = %e, "http-01 connection ended with an error"),
                        Err(_) => debug!(%peer, "http-01 connection timed out"),
                    }
                    drop(permit);
                });
            }
        });
        Ok(Self { task })
    }
}

/// The answer to one HTTP-01 request: the key authorization of a pending token, else 404.
fn http_answer<B>(challenges: &Challenges, request: &http::Request<B>) -> http::Response<Full<Bytes>> {
    let found = (request.method() == http::Method::GET || request.method() == http::Method::HEAD)
        .then(|| request.uri().path().strip_prefix(HTTP_CHALLENGE_PREFIX))
        .flatten()
        .and_then(|token| challenges.http_response(token));
    let (status, body) = match found {
        Some(key_authorization) => (http::StatusCode::OK, key_authorization),
        None => (http::StatusCode::NOT_FOUND, "no such challenge\n".to_owned()),
    };
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    // RFC 8555 §8.3: the body is the key authorization; text/plain is what CAs expect.
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    response
}

// --- ordering --------------------------------------------------------------------------------

/// The account as `account.json` holds it.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    /// The directory URL the account belongs to.
    directory: String,
    /// instant-acme's credentials (key and account URL).
    credentials: AccountCredentials,
}

/// The task that keeps the ACME certificate fresh.
pub(crate) struct AcmeTask {
    /// `[tls] acme`.
    pub(crate) config: AcmeConfig,
    /// Where the files go.
    pub(crate) files: AcmeFiles,
    /// Reloaded after each new certificate.
    pub(crate) certificates: Arc<Certificates>,
    /// The answers to pending challenges.
    pub(crate) challenges: Arc<Challenges>,
    /// Notified to order at once (`postfach tls renew`).
    pub(crate) renew: Arc<Notify>,
}

impl AcmeTask {
    /// Checks and orders until `stopped` turns true.
    pub(crate) async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut requested = false;
        let mut failures: u32 = 0;
        loop {
            let why = if requested { Some(Due::Requested) } else { due(&self.files, &self.config, now()) };
            requested = false;
            let wait = match why {
                None => CHECK_EVERY,
                Some(why) => {
                    info!(%why, domains = %self.config.domains.join(","), "ordering a certificate from the ACME CA");
                    let ordered = tokio::select! {
                        ordered = tokio::time::timeout(ORDER_TIMEOUT, self.order()) => ordered,
                        _ = shutdown_requested(&mut stopped) => return,
                    };
                    self.challenges.clear();
                    match ordered.unwrap_or(Err(AcmeError::Timeout)) {
                        Ok(info) => {
                            failures = 0;
                            self.install(&info).await;
                            CHECK_EVERY
                        }
                        Err(e) => {
                            failures = failures.saturating_add(1);
                            let retry = retry_delay(failures);
                            error!(
                                error = %e,
                                retry_in_s = retry.as_secs(),
                                "ACME order failed; the current certificate stays in use"
                            );
                            retry
                        }
                    }
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.renew.notified() => requested = true,
                _ = shutdown_requested(&mut stopped) => return,
            }
        }
    }

    /// Installs the certificate just written, as a SIGHUP reload does.
    async fn install(&self, info: &CertInfo) {
        let certificates = Arc::clone(&self.certificates);
        match tokio::task::spawn_blocking(move || certificates.reload()).await {
            Ok(Ok(count)) => info!(
                sha256 = %info.sha256,
                names = %info.names.join(","),
                not_after = %cert_info::date(info.not_after),
                certificates = count,
                "ACME certificate installed; new connections use it"
            ),
            Ok(Err(e)) => {
                error!(error = %e, "ACME certificate stored but the reload failed; the old certificates stay")
            }
            Err(e) => {
                error!(error = %e, "ACME certificate stored but the reload failed; the old certificates stay")
            }
        }
        if info.not_after - now() < self.config.renew_before {
            warn!(
                not_after = %cert_info::date(info.not_after),
                "the CA's certificates live shorter than renew_before_days: each check orders anew"
            );
        }
    }

    /// One order, from the account to `cert.pem`; returns what the new certificate says.
    async fn order(&self) -> Result<CertInfo, AcmeError> {
        make_dir(&self.files.dir)?;
        let account = self.account().await?;
        // Listening before the CA is told to look.
        let _responder = match self.config.challenge {
            AcmeChallenge::Http01 { listen } => {
                Some(HttpResponder::start(listen, Arc::clone(&self.challenges)).await?)
            }
            AcmeChallenge::TlsAlpn01 => None,
        };
        let identifiers: Vec<Identifier> = self.config.domains.iter().cloned().map(Identifier::Dns).collect();
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        let kind = match self.config.challenge {
            AcmeChallenge::Http01 { .. } => ChallengeType::Http01,
            AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
        };
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            let name = authorization.identifier().to_string();
            match authorization.status {
                AuthorizationStatus::Pending => {}
                // RFC 8555 §7.1.3: the CA may reuse an authorization it still holds.
                AuthorizationStatus::Valid => continue,
                status => return Err(AcmeError::Authorization { name, status }),
            }
            let challenge_name = self.config.challenge.name();
            let Some(mut challenge) = authorization.challenge(kind.clone()) else {
                return Err(AcmeError::NoChallenge { name, challenge: challenge_name });
            };
            let key_authorization = challenge.key_authorization();
            match self.config.challenge {
                AcmeChallenge::Http01 { .. } => {
                    self.challenges.add_http(challenge.token.clone(), key_authorization.as_str().to_owned())
                }
                AcmeChallenge::TlsAlpn01 => self.challenges.add_alpn(
                    name.to_ascii_lowercase(),
                    alpn_certificate(&name, key_authorization.digest().as_ref())?,
                ),
            }
            debug!(%name, challenge = challenge_name, "challenge ready");
            challenge.set_ready().await?;
        }
        let retries = RetryPolicy::new().timeout(VALIDATION_TIMEOUT);
        let status = order.poll_ready(&retries).await?;
        if status != OrderStatus::Ready {
            let reasons = failure_reasons(&mut order).await;
            return Err(AcmeError::NotReady { status, reasons });
        }
        let key = self.certificate_key()?;
        let mut params = rcgen::CertificateParams::new(self.config.domains.clone())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params.serialize_request(&key)?;
        order.finalize_csr(csr.der()).await?;
        let chain = order.poll_certificate(&retries).await?;
        self.store(&chain, &key)
    }

    /// The account: the stored one for this directory, or a new one (stored at once).
    async fn account(&self) -> Result<Account, AcmeError> {
        let http = || AcmeHttp::new(self.config.ca_file.as_deref());
        let path = &self.files.account;
        match fs::read(path) {
            Ok(bytes) => {
                let stored: StoredAccount = serde_json::from_slice(&bytes)
                    .map_err(|e| AcmeError::AccountFile { path: path.clone(), reason: e.to_string() })?;
                if stored.directory == self.config.directory {
                    return Ok(Account::builder_with_http(Box::new(http()?))
                        .from_credentials(stored.credentials)
                        .await?);
                }
                info!(old = %stored.directory, new = %self.config.directory, "the ACME directory changed; creating an account there");
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(AcmeError::Io { path: path.clone(), source }),
        }
        let contact: Vec<&str> = self.config.contact.iter().map(String::as_str).collect();
        let new =
            NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
        let (account, credentials) = Account::builder_with_http(Box::new(http()?))
            .create(&new, self.config.directory.clone(), None)
            .await?;
        let stored = StoredAccount { directory: self.config.directory.clone(), credentials };
        let json = serde_json::to_vec_pretty(&stored)
            .map_err(|e| AcmeError::AccountFile { path: path.clone(), reason: e.to_string() })?;
        tls::write_atomically(path, &json, 0o600)?;
        info!(id = %account.id(), "ACME account created");
        Ok(account)
    }

    /// The certificate's key: `key.pem`, made (ECDSA P-256) and stored on the first order.
    fn certificate_key(&self) -> Result<rcgen::KeyPair, AcmeError> {
        let path = &self.files.pair.key;
        match fs::read_to_string(path) {
            Ok(pem) => Ok(rcgen::KeyPair::from_pem(&pem)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = rcgen::KeyPair::generate()?;
                tls::write_atomically(path, key.serialize_pem().as_bytes(), 0o600)?;
                Ok(key)
            }
            Err(source) => Err(AcmeError::Io { path: path.clone(), source }),
        }
    }

    /// Checks the chain against the key and the domains, then replaces `cert.pem` with it.
    fn store(&self, chain_pem: &str, key: &rcgen::KeyPair) -> Result<CertInfo, AcmeError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AcmeError::BadCertificate(format!("not PEM: {e}")))?;
        let Some(leaf) = chain.first().cloned() else {
            return Err(AcmeError::BadCertificate("no certificate in the answer".to_owned()));
        };
        let private = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| AcmeError::BadCertificate(e.to_owned()))?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let certified = CertifiedKey::from_der(chain, private, &provider)
            .map_err(|e| AcmeError::BadCertificate(e.to_string()))?;
        certified.keys_match().map_err(|e| AcmeError::BadCertificate(format!("not for our key: {e}")))?;
        for domain in &self.config.domains {
            let name = ServerName::try_from(domain.as_str())
                .map_err(|_| AcmeError::BadCertificate(format!("{domain} is not a DNS name")))?;
            if !tls::valid_for(&certified, &name) {
                return Err(AcmeError::BadCertificate(format!("not valid for {domain}")));
            }
        }
        let info = CertInfo::from_der(&leaf)
            .ok_or_else(|| AcmeError::BadCertificate("the leaf is not readable X.509".to_owned()))?;
        tls::write_atomically(&self.files.pair.cert, chain_pem.as_bytes(), 0o644)?;
        Ok(info)
    }
}

/// What the CA said about the challenges of a failed order.
async fn failure_reasons(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    if let Some(problem) = &order.state().error {
        reasons.push(problem.to_string());
    }
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authorization)) = authorizations.next().await {
        let name = authorization.identifier().to_string();
        let Ok(state) = authorization.refresh().await else { continue };
        for challenge in &state.challenges {
            if let Some(problem) = &challenge.error {
                reasons.push(format!("{name}: {problem}"));
            }
        }
    }
    if reasons.is_empty() { "the CA gave no reason".to_owned() } else { reasons.join("; ") }
}

/// The pause after `failures` failed orders in a row.
fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RETRY_FIRST.saturating_mul(1 << doublings).min(RETRY_MAX)
}

/// Creates `dir` (mode 0700) with its parents.
fn make_dir(dir: &Path) -> Result<(), AcmeError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| AcmeError::Io { path: dir.to_owned(), source })
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(domains: &[&str]) -> AcmeConfig {
        AcmeConfig {
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            contact: Vec::new(),
            directory: "https://ca.test/dir".to_owned(),
            challenge: AcmeChallenge::TlsAlpn01,
            ca_file: None,
            renew_before: Duration::from_secs(30 * 86_400),
        }
    }

    /// Writes a certificate for `names` valid `days` from now into `files`.
    fn write_cert(files: &AcmeFiles, names: &[&str], days: i64) {
        fs::create_dir_all(&files.dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        params.not_before = now() - time::Duration::days(1);
        params.not_after = now() + time::Duration::days(days);
        fs::write(&files.pair.cert, params.self_signed(&key).unwrap().pem()).unwrap();
        fs::write(&files.pair.key, key.serialize_pem()).unwrap();
    }

    #[test]
    fn due_when_missing_renamed_or_expiring() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        let config = config(&["mail.example.org", "imap.example.org"]);
        assert_eq!(due(&files, &config, now()), Some(Due::Missing));
        fs::create_dir_all(&files.dir).unwrap();
        fs::write(&files.pair.cert, "garbage").unwrap();
        assert!(matches!(due(&files, &config, now()), Some(Due::Unreadable(_))));
        write_cert(&files, &["imap.example.org", "mail.example.org"], 60);
        assert_eq!(due(&files, &config, now()), None, "order of names does not matter");
        assert!(matches!(due(&files, &config, now() + time::Duration::days(31)), Some(Due::Expiring { .. })));
        write_cert(&files, &["mail.example.org"], 60);
        assert!(matches!(due(&files, &config, now()), Some(Due::Names { .. })));
        write_cert(&files, &["mail.example.org", "imap.example.org"], 20);
        assert!(matches!(due(&files, &config, now()), Some(Due::Expiring { .. })));
    }

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(retry_delay(1), RETRY_FIRST);
        assert_eq!(retry_delay(2), RETRY_FIRST * 2);
        assert_eq!(retry_delay(4), RETRY_FIRST * 8);
        assert_eq!(retry_delay(30), RETRY_MAX);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
    }

    #[tokio::test]
    async fn http_answers_only_pending_tokens() {
        let challenges = Challenges::default();
        challenges.add_http("tok-1_A".to_owned(), "tok-1_A.thumb".to_owned());
        let get = |path: &str| {
            let request = http::Request::get(path).body(()).unwrap();
            http_answer(&challenges, &request)
        };
        let found = get("/.well-known/acme-challenge/tok-1_A");
        assert_eq!(found.status(), http::StatusCode::OK);
        let body = http_body_util::BodyExt::collect(found.into_body()).await.unwrap().to_bytes();
        assert_eq!(body, Bytes::from("tok-1_A.thumb"));
        assert_eq!(get("/.well-known/acme-challenge/other").status(), http::StatusCode::NOT_FOUND);
        assert_eq!(get("/tok-1_A").status(), http::StatusCode::NOT_FOUND);
        let post = http::Request::post("/.well-known/acme-challenge/tok-1_A").body(()).unwrap();
        assert_eq!(http_answer(&challenges, &post).status(), http::StatusCode::NOT_FOUND);
        challenges.clear();
        assert_eq!(get("/.well-known/acme-challenge/tok-1_A").status(), http::StatusCode::NOT_FOUND);
    }

    /// The TLS-ALPN-01 certificate carries the name and the critical acmeIdentifier (RFC 8737 §3).
    #[test]
    fn alpn_certificate_has_the_acme_identifier() {
        let digest = [7u8; 32];
        let key = alpn_certificate("mail.example.org", &digest).unwrap();
        let der = key.cert[0].as_ref();
        let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
        let info = CertInfo::from_der(der).unwrap();
        assert_eq!(info.names, ["mail.example.org"]);
        let acme = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier extension");
        assert!(acme.critical);
        // An OCTET STRING (tag 4) of 32 bytes.
        assert_eq!(&acme.value[..2], &[0x04, 32]);
        assert_eq!(&acme.value[2..], &digest);
        assert!(matches!(
            alpn_certificate("mail.example.org", &[0u8; 20]),
            Err(AcmeError::BadCertificate(_))
        ));
    }
}
