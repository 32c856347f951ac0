//! TLS: the rustls server configuration used by implicit-TLS listeners and by STARTTLS.
//!
//! TLS 1.2 and 1.3 only, with the aws-lc-rs provider's default cipher suites: AEAD ciphers with
//! forward secrecy (ECDHE, and the X25519MLKEM768 hybrid), nothing older; rustls implements no
//! SSL 3, TLS 1.0/1.1, RC4, CBC or export suites at all. Implicit TLS (port 993) is the
//! recommended way in (RFC 8314 §3.3); STARTTLS is offered on the cleartext port for older
//! clients, with its injection defences in `imap_conn`.
//!
//! Certificates come from the PEM files named in `[tls]` (`cert`/`key`, then each
//! `[[tls.certificates]]`). The first pair is the default; the others are chosen by the name
//! the client sends (SNI) when their certificate is valid for it, wildcards included. Without
//! any, a self-signed certificate is generated into `<data_dir>/tls/` on first start and reused
//! afterwards, so a fresh install works out of the box but clients will not trust it; a warning
//! says so on every start. It names the machine (common name: the host name) and is valid for
//! the host name, the `[tls] names`, `localhost`, `127.0.0.1` and `::1`, for a year from the day
//! before it was made. A start that finds it expiring within 30 days, or naming other names than
//! these (the host name or the configuration changed), renews it with the same key: only
//! `cert.pem` is rewritten, so no crash can leave a certificate and a key that do not match.
//! Each renewal gets a fresh random serial number (NSS, in Firefox and Thunderbird, refuses two
//! certificates with the same issuer and serial). Configured certificates are never touched.
//!
//! [`Certificates`] is the rustls certificate resolver: it holds the loaded set behind a lock
//! and swaps it whole on [`Certificates::reload`] (SIGHUP), so new handshakes use the new files
//! while established connections, which no longer need the certificate, are untouched. A reload
//! that fails (missing file, key not matching) keeps the old set.
//!
//! With `[tls] acme`, the certificate the `acme` module orders (`<data_dir>/tls/acme/`) comes
//! first, before the configured or generated ones, whenever its files exist and load; until
//! then, or when they are broken, the others serve alone (a warning says why). The ACME task
//! installs a new certificate through the same [`Certificates::reload`] as SIGHUP.
//!
//! Limits: no client certificates, no OCSP stapling; only the files named at startup are
//! re-read (adding a certificate needs a restart).

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use time::{Duration, OffsetDateTime};
use tokio_rustls::TlsAcceptor;
use tracing::{error, info, warn};

use crate::cert_info::{self, CertInfo};
use crate::config::{Config, TlsFiles};

/// Names the generated certificate is valid for besides the host name and `[tls] names`: what a
/// local client will connect to.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How long a generated certificate is valid, from the day before it was made.
const SELF_SIGNED_VALIDITY: Duration = Duration::days(365);

/// A start renews the generated certificate when it expires within this time.
const RENEW_BEFORE: Duration = Duration::days(30);

/// Where the host name is on Linux (what `hostname` prints).
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// A PEM file could not be read or decoded.
    #[error("{}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: rustls::pki_types::pem::Error,
    },
    /// Writing the generated certificate failed.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A certificate that is PEM but not X.509 as x509-parser reads it.
    #[error("{}: not a readable X.509 certificate", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
    },
    /// The system's random generator failed (for a serial number).
    #[error("no random bytes for a certificate serial number")]
    Random,
    /// Only one of the two generated files exists.
    #[error("{} exists but {} does not; remove the first to generate a new pair", found.display(), missing.display())]
    HalfPair {
        /// The file that exists.
        found: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// The certificate could not be generated.
    #[error("generating a self-signed certificate")]
    Generate(#[from] rcgen::Error),
    /// rustls refused a certificate or key (for example, they do not match).
    #[error("{}: the certificate or key is not usable", cert.display())]
    Rustls {
        /// The certificate file of the refused pair.
        cert: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// rustls refused the protocol versions (cannot happen with the built-in provider).
    #[error("the TLS configuration is not usable")]
    Config(#[from] rustls::Error),
}

/// Where the certificates in use came from; `main` logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertSource {
    /// The files named in `[tls]`, the default first.
    Configured(Vec<TlsFiles>),
    /// A self-signed certificate generated by this start.
    Generated(TlsFiles),
    /// A self-signed certificate generated by an earlier start.
    Reused(TlsFiles),
    /// A self-signed certificate generated by an earlier start and renewed by this one (same
    /// key, new certificate).
    Renewed(TlsFiles, Renewal),
}

/// Why a start renews the generated certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// It expires within 30 days, or has expired.
    Expiring {
        /// Its end of validity.
        not_after: OffsetDateTime,
    },
    /// Its names differ from the wanted ones.
    Names {
        /// The subject common name and alternative names it has.
        found: SelfSignedNames,
    },
}

impl fmt::Display for Renewal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expiring { not_after } => write!(f, "it expires on {}", cert_info::date(*not_after)),
            Self::Names { found } => write!(
                f,
                "its names ({}; {}) are not the wanted ones",
                found.common_name,
                found.names.join(", ")
            ),
        }
    }
}

/// The names of a generated certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SelfSignedNames {
    /// The subject common name: the host name (`localhost` when it cannot be read).
    pub(crate) common_name: String,
    /// The subject alternative names: the host name, `[tls] names`, then the loopback names,
    /// each once, in lower case.
    pub(crate) names: Vec<String>,
}

impl SelfSignedNames {
    /// The names the generated certificate should have with `config` on a machine called
    /// `host` (`None` when the host name is unknown or not a usable DNS name).
    pub(crate) fn wanted(host: Option<&str>, config: &Config) -> Self {
        let mut names: Vec<String> = Vec::new();
        let candidates =
            host.into_iter().chain(config.tls_names.iter().map(String::as_str)).chain(LOOPBACK_NAMES);
        for name in candidates {
            let name = name.to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Self { common_name: host.unwrap_or("localhost").to_ascii_lowercase(), names }
    }

    /// The names of an existing certificate.
    fn of(info: &CertInfo) -> Self {
        Self {
            common_name: info.common_name.clone().unwrap_or_default(),
            names: info.names.iter().map(|n| n.to_ascii_lowercase()).collect(),
        }
    }

    /// True if both have the same common name and the same set of alternative names.
    fn same(&self, other: &Self) -> bool {
        let sorted = |names: &[String]| {
            let mut names = names.to_vec();
            names.sort();
            names
        };
        self.common_name == other.common_name && sorted(&self.names) == sorted(&other.names)
    }
}

/// The machine's host name, if it is readable and a DNS name a certificate can carry.
pub(crate) fn host_name() -> Option<String> {
    let text = fs::read_to_string(HOSTNAME_FILE).ok()?;
    let name = text.trim().to_ascii_lowercase();
    matches!(ServerName::try_from(name.as_str()), Ok(ServerName::DnsName(_))).then_some(name)
}

/// Why the generated certificate described by `info` must be renewed at `now`, if it must.
pub(crate) fn renewal(info: &CertInfo, wanted: &SelfSignedNames, now: OffsetDateTime) -> Option<Renewal> {
    let found = SelfSignedNames::of(info);
    if !found.same(wanted) {
        return Some(Renewal::Names { found });
    }
    (info.not_after - now < RENEW_BEFORE).then_some(Renewal::Expiring { not_after: info.not_after })
}

/// The generated certificate's files in `data_dir`.
pub(crate) fn self_signed_files(data_dir: &Path) -> TlsFiles {
    let dir = data_dir.join("tls");
    TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") }
}

/// TLS as the server uses it.
pub(crate) struct Tls {
    /// Runs handshakes (implicit TLS and STARTTLS).
    pub(crate) acceptor: TlsAcceptor,
    /// Where the certificates came from.
    pub(crate) source: CertSource,
    /// The certificates behind `acceptor`, for reloading.
    pub(crate) certificates: Arc<Certificates>,
}

/// Sets up TLS from the configuration, generating a certificate when none is configured.
pub(crate) fn setup(config: &Config) -> Result<Tls, TlsError> {
    let source = if config.tls.is_empty() {
        let wanted = SelfSignedNames::wanted(host_name().as_deref(), config);
        self_signed(&config.data_dir, &wanted, OffsetDateTime::now_utc())?
    } else {
        CertSource::Configured(config.tls.clone())
    };
    let files = match &source {
        CertSource::Configured(files) => files.clone(),
        CertSource::Generated(f) | CertSource::Reused(f) | CertSource::Renewed(f, _) => vec![f.clone()],
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let acme = config.acme.as_ref().map(|_| crate::acme::files(&config.data_dir).pair);
    let certificates = Arc::new(Certificates::load(files, acme, Arc::clone(&provider))?);
    let resolver: Arc<dyn ResolvesServerCert> = certificates.clone();
    let server_config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(server_config)), source, certificates })
}

/// Re-reads every certificate on each SIGHUP for as long as the runtime runs. Installs the
/// handler before returning, so a SIGHUP sent after this call is never the default "terminate".
pub(crate) fn reload_on_sighup(certificates: Arc<Certificates>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let certs = Arc::clone(&certificates);
            // Reading files and parsing keys blocks; keep it off the runtime's threads.
            match tokio::task::spawn_blocking(move || certs.reload()).await {
                Ok(Ok(count)) => info!(certificates = count, "TLS certificates reloaded"),
                Ok(Err(e)) => {
                    error!(error = %e, "TLS certificate reload failed; keeping the old certificates")
                }
                Err(e) => error!(error = %e, "TLS certificate reload failed; keeping the old certificates"),
            }
        }
    });
    Ok(())
}

/// The loaded certificates and the files they came from; the rustls resolver.
pub(crate) struct Certificates {
    /// The files, default first; re-read on reload.
    files: Vec<TlsFiles>,
    /// The ACME certificate's files (`[tls] acme`), put before `files` when they load.
    acme: Option<TlsFiles>,
    /// Parses keys.
    provider: Arc<CryptoProvider>,
    /// The set in use. Handshakes clone the `Arc` under a short read lock; reload replaces it.
    current: RwLock<Arc<Vec<Arc<CertifiedKey>>>>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates").field("files", &self.files).finish_non_exhaustive()
    }
}

impl Certificates {
    /// Loads every pair of `files` (at least one), after the ACME pair when it loads.
    fn load(
        files: Vec<TlsFiles>,
        acme: Option<TlsFiles>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let set = load_with_acme(acme.as_ref(), &files, &provider)?;
        Ok(Self { files, acme, provider, current: RwLock::new(Arc::new(set)) })
    }

    /// Reads every file again and swaps the new set in; on any error the old set stays (a
    /// broken ACME pair is left out instead, with a warning: the task that wrote it orders
    /// again). Returns how many certificates are in use.
    pub(crate) fn reload(&self) -> Result<usize, TlsError> {
        let set = load_with_acme(self.acme.as_ref(), &self.files, &self.provider)?;
        let count = set.len();
        // A poisoned lock only means a reader panicked; the value is a plain Arc and still whole.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        Ok(count)
    }

    /// The certificate for a client that asked for `name` (SNI): the first whose certificate
    /// is valid for it, else the default.
    fn choose(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let set = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        let wanted = name.and_then(|n| ServerName::try_from(n).ok());
        if let Some(wanted) = wanted {
            // The default is tried too: it may be the only one valid for the name.
            for key in set.iter() {
                if valid_for(key, &wanted) {
                    return Some(Arc::clone(key));
                }
            }
        }
        set.first().cloned()
    }
}

impl Certificates {
    /// The DER leaf certificates in use, the default first.
    pub(crate) fn leaves(&self) -> Vec<Vec<u8>> {
        let set = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        set.iter().filter_map(|key| key.cert.first().map(|c| c.as_ref().to_vec())).collect()
    }

    /// The DER end-entity certificate a client asking for `name` gets (for the TLS 1.2 channel
    /// binding `tls-server-end-point`, RFC 5929 §4).
    pub(crate) fn end_entity(&self, name: Option<&str>) -> Option<Vec<u8>> {
        self.choose(name).and_then(|key| key.cert.first().map(|c| c.as_ref().to_vec()))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(hello.server_name())
    }
}

/// True if the leaf certificate of `key` covers `name` (RFC 6125 rules, as webpki checks them).
pub(crate) fn valid_for(key: &CertifiedKey, name: &ServerName<'_>) -> bool {
    let Some(leaf) = key.cert.first() else { return false };
    webpki::EndEntityCert::try_from(leaf)
        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(name).is_ok())
}

/// Loads every pair, or fails on the first bad one.
fn load_all(files: &[TlsFiles], provider: &CryptoProvider) -> Result<Vec<Arc<CertifiedKey>>, TlsError> {
    files.iter().map(|f| load_pair(f, provider).map(Arc::new)).collect()
}

/// [`load_all`], preceded by the ACME pair when its certificate exists and the pair loads.
fn load_with_acme(
    acme: Option<&TlsFiles>,
    files: &[TlsFiles],
    provider: &CryptoProvider,
) -> Result<Vec<Arc<CertifiedKey>>, TlsError> {
    let mut set = Vec::with_capacity(files.len() + 1);
    if let Some(acme) = acme.filter(|f| f.cert.is_file()) {
        match load_pair(acme, provider) {
            Ok(key) => set.push(Arc::new(key)),
            Err(e) => warn!(error = %e, "the ACME certificate is not usable; serving without it"),
        }
    }
    set.extend(load_all(files, provider)?);
    Ok(set)
}

/// A certificate chain and its key from PEM files, checked to belong together.
pub(crate) fn load_pair(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let pem_error = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Pem { path, source }
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(pem_error(&files.cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error(&files.cert))?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: files.cert.clone(),
            source: rustls::pki_types::pem::Error::NoItemsFound,
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(pem_error(&files.key))?;
    let rustls_error = |source| TlsError::Rustls { cert: files.cert.clone(), source };
    let key = CertifiedKey::from_der(certs, key, provider).map_err(rustls_error)?;
    // `from_der` lets keys it cannot compare pass; refuse those too rather than fail handshakes.
    key.keys_match().map_err(rustls_error)?;
    Ok(key)
}

/// Returns the self-signed pair in `data_dir/tls`, generating it when absent and renewing it
/// (same key) when [`renewal`] says so at `now`. The key is written first and the certificate
/// last, each through a rename, so an existing `cert.pem` means a complete pair.
fn self_signed(
    data_dir: &Path,
    wanted: &SelfSignedNames,
    now: OffsetDateTime,
) -> Result<CertSource, TlsError> {
    let files = self_signed_files(data_dir);
    match (files.cert.is_file(), files.key.is_file()) {
        (true, true) => {
            let Some(why) = renewal(&CertInfo::read(&files.cert)?, wanted, now) else {
                return Ok(CertSource::Reused(files));
            };
            let key_pem = fs::read_to_string(&files.key)
                .map_err(|source| TlsError::Io { path: files.key.clone(), source })?;
            let key = rcgen::KeyPair::from_pem(&key_pem)?;
            let cert = self_signed_certificate(&key, wanted, now)?;
            write_atomically(&files.cert, cert.pem().as_bytes(), 0o644)?;
            return Ok(CertSource::Renewed(files, why));
        }
        (true, false) => return Err(TlsError::HalfPair { found: files.cert, missing: files.key }),
        // A key without a certificate is what a crash between the two renames leaves: redo both.
        (false, _) => {}
    }
    let dir = data_dir.join("tls");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| TlsError::Io { path: dir.clone(), source })?;
    let key = rcgen::KeyPair::generate()?;
    let cert = self_signed_certificate(&key, wanted, now)?;
    // The private key is readable by the owner only.
    write_atomically(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(&files.cert, cert.pem().as_bytes(), 0o644)?;
    Ok(CertSource::Generated(files))
}

/// A certificate for `names` signed by `key`, valid from a day before `now` (clocks differ) for
/// [`SELF_SIGNED_VALIDITY`], with a random serial number.
fn self_signed_certificate(
    key: &rcgen::KeyPair,
    names: &SelfSignedNames,
    now: OffsetDateTime,
) -> Result<rcgen::Certificate, TlsError> {
    let mut params = rcgen::CertificateParams::new(names.names.clone())?;
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, names.common_name.as_str());
    params.distinguished_name = subject;
    // X.509 times have whole seconds.
    let now = now.replace_nanosecond(0).unwrap_or(now);
    params.not_before = now - Duration::days(1);
    params.not_after = params.not_before + SELF_SIGNED_VALIDITY;
    let mut serial = [0u8; 16];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut serial)
        .map_err(|_| TlsError::Random)?;
    // Positive (RFC 5280 §4.1.2.2).
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    Ok(params.self_signed(key)?)
}

/// Writes `data` to `path` via a fresh temporary file with `mode`, fsync and rename.
pub(crate) fn write_atomically(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("pem.tmp");
    let io_error = |p: &Path| {
        let p = p.to_owned();
        move |source| TlsError::Io { path: p, source }
    };
    // A leftover temporary file may have other permissions; `mode` applies only on creation.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&tmp)(e)),
    }
    let mut file =
        fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(io_error(&tmp))?;
    file.write_all(data).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    fs::rename(&tmp, path).map_err(io_error(path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn config_in(dir: &Path) -> Config {
        Config { data_dir: dir.to_owned(), ..Config::default() }
    }

    fn acceptor(config: &Config) -> Result<(TlsAcceptor, CertSource), TlsError> {
        setup(config).map(|tls| (tls.acceptor, tls.source))
    }

    /// Writes a self-signed certificate for `names` and its key into `dir` as `<stem>.crt/.key`.
    fn write_pair(dir: &Path, stem: &str, names: &[&str]) -> (TlsFiles, Vec<u8>) {
        let generated =
            rcgen::generate_simple_self_signed(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let files = TlsFiles { cert: dir.join(format!("{stem}.crt")), key: dir.join(format!("{stem}.key")) };
        fs::write(&files.cert, generated.cert.pem()).unwrap();
        fs::write(&files.key, generated.signing_key.serialize_pem()).unwrap();
        (files, generated.cert.der().to_vec())
    }

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let (_, first) = acceptor(&config).unwrap();
        let tls_dir = dir.path().join("tls");
        let files = TlsFiles { cert: tls_dir.join("cert.pem"), key: tls_dir.join("key.pem") };
        assert_eq!(first, CertSource::Generated(files.clone()));
        let key_mode = fs::metadata(&files.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(key_mode, 0o600);
        let dir_mode = fs::metadata(&tls_dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let cert = fs::read(&files.cert).unwrap();

        let (_, second) = acceptor(&config).unwrap();
        assert_eq!(second, CertSource::Reused(files.clone()));
        assert_eq!(fs::read(&files.cert).unwrap(), cert, "the certificate must not change");
    }

    #[test]
    fn half_pair_is_an_error_or_regenerated() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        acceptor(&config).unwrap();
        let tls_dir = dir.path().join("tls");
        // Key without certificate: an interrupted generation, redone.
        fs::remove_file(tls_dir.join("cert.pem")).unwrap();
        assert!(matches!(acceptor(&config).unwrap().1, CertSource::Generated(_)));
        // Certificate without key: refuse rather than silently replace a certificate.
        fs::remove_file(tls_dir.join("key.pem")).unwrap();
        assert!(matches!(acceptor(&config), Err(TlsError::HalfPair { .. })));
    }

    fn names(host: &str, extra: &[&str]) -> SelfSignedNames {
        let config =
            Config { tls_names: extra.iter().map(|n| (*n).to_owned()).collect(), ..Config::default() };
        SelfSignedNames::wanted(Some(host), &config)
    }

    fn at(days_from_now: i64) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::days(days_from_now)
    }

    /// The generated certificate read back: CN the host name, every name as a SAN, a year.
    #[test]
    fn generated_certificate_names_the_machine() {
        let dir = tempfile::tempdir().unwrap();
        let wanted = names("mail.example.org", &["imap.example.org", "192.0.2.7", "Mail.Example.org"]);
        assert_eq!(
            wanted.names,
            ["mail.example.org", "imap.example.org", "192.0.2.7", "localhost", "127.0.0.1", "::1"]
        );
        let now = at(0);
        assert!(matches!(self_signed(dir.path(), &wanted, now).unwrap(), CertSource::Generated(_)));
        let info = CertInfo::read(&self_signed_files(dir.path()).cert).unwrap();
        assert_eq!(info.subject, "CN=mail.example.org");
        assert_eq!(info.common_name.as_deref(), Some("mail.example.org"));
        assert_eq!(info.names, wanted.names);
        let from_now = info.not_before - now;
        assert!(from_now <= -Duration::hours(23) && from_now > -Duration::hours(25), "{from_now}");
        assert_eq!(info.not_after - info.not_before, Duration::days(365));
        assert_eq!(renewal(&info, &wanted, now), None);

        // Without a host name: only the loopback names, CN localhost.
        let local = SelfSignedNames::wanted(None, &Config::default());
        assert_eq!(local.common_name, "localhost");
        assert_eq!(local.names, LOOPBACK_NAMES);
    }

    /// A start close to expiry, or with other names, renews the certificate with the same key.
    #[test]
    fn generated_certificate_is_renewed_when_expiring_or_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let files = self_signed_files(dir.path());
        let wanted = names("mail.example.org", &[]);
        // Made 340 days ago: 24 days left.
        self_signed(dir.path(), &wanted, at(-340)).unwrap();
        let key = fs::read(&files.key).unwrap();
        let old = CertInfo::read(&files.cert).unwrap();
        match self_signed(dir.path(), &wanted, at(0)).unwrap() {
            CertSource::Renewed(f, Renewal::Expiring { not_after }) => {
                assert_eq!(f, files);
                assert_eq!(not_after, old.not_after);
            }
            other => panic!("expected a renewal for expiry, got {other:?}"),
        }
        let new = CertInfo::read(&files.cert).unwrap();
        assert_ne!(new.sha256, old.sha256);
        assert!(new.not_after - at(0) > Duration::days(360));
        assert_eq!(fs::read(&files.key).unwrap(), key, "the key is kept");
        load_pair(&files, &rustls::crypto::aws_lc_rs::default_provider()).unwrap();
        // 35 days left: kept.
        assert!(matches!(self_signed(dir.path(), &wanted, at(329)).unwrap(), CertSource::Reused(_)));

        // A new configured name, or a new host name.
        let more = names("mail.example.org", &["imap.example.org"]);
        assert!(matches!(
            self_signed(dir.path(), &more, at(0)).unwrap(),
            CertSource::Renewed(_, Renewal::Names { .. })
        ));
        assert_eq!(CertInfo::read(&files.cert).unwrap().names, more.names);
        assert!(matches!(self_signed(dir.path(), &more, at(0)).unwrap(), CertSource::Reused(_)));
        let moved = names("other.example.org", &["imap.example.org"]);
        assert!(matches!(
            self_signed(dir.path(), &moved, at(0)).unwrap(),
            CertSource::Renewed(_, Renewal::Names { .. })
        ));
        assert_eq!(fs::read(&files.key).unwrap(), key, "the key is kept");
    }

    /// Two certificates from one key still differ in serial number (NSS refuses duplicates).
    #[test]
    fn serial_numbers_are_random() {
        let key = rcgen::KeyPair::generate().unwrap();
        let wanted = names("mail.example.org", &[]);
        let serial = |cert: &rcgen::Certificate| {
            x509_parser::parse_x509_certificate(cert.der()).unwrap().1.raw_serial().to_vec()
        };
        let a = self_signed_certificate(&key, &wanted, at(0)).unwrap();
        let b = self_signed_certificate(&key, &wanted, at(0)).unwrap();
        assert_ne!(serial(&a), serial(&b));
    }

    #[test]
    fn configured_files_are_used_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = write_pair(dir.path(), "a", &["a.example"]);
        let (b, _) = write_pair(dir.path(), "b", &["b.example"]);

        let config = Config { tls: vec![a.clone(), b.clone()], ..config_in(dir.path()) };
        assert_eq!(acceptor(&config).unwrap().1, CertSource::Configured(vec![a.clone(), b.clone()]));
        assert!(!dir.path().join("tls").exists(), "nothing is generated when files are configured");

        let mismatched = TlsFiles { cert: a.cert.clone(), key: b.key.clone() };
        let config = Config { tls: vec![b.clone(), mismatched], ..config_in(dir.path()) };
        match acceptor(&config) {
            Err(TlsError::Rustls { cert, .. }) => assert_eq!(cert, a.cert, "the error names the bad pair"),
            other => panic!("expected a key mismatch, got {:?}", other.map(|(_, s)| s)),
        }

        let garbage = dir.path().join("garbage.pem");
        fs::write(&garbage, "not pem at all").unwrap();
        let bad =
            Config { tls: vec![TlsFiles { cert: garbage.clone(), key: garbage }], ..config_in(dir.path()) };
        assert!(matches!(acceptor(&bad), Err(TlsError::Pem { .. })));
    }

    /// Completes a handshake asking for `name` (none for an IP address) against `acceptor` and
    /// returns the leaf certificate the server presented, plus the protocol version.
    async fn presented(
        acceptor: &TlsAcceptor,
        name: &str,
        roots: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<(Vec<u8>, rustls::ProtocolVersion), std::io::Error> {
        let mut store = rustls::RootCertStore::empty();
        for der in roots {
            store.add(CertificateDer::from(der.to_vec())).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(store)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(server_io).await {
                    let _ = tls.write_all(b"* OK hello\r\n").await;
                    let _ = tls.flush().await;
                }
            })
        };
        let server_name = ServerName::try_from(name.to_owned()).unwrap();
        let result = connector.connect(server_name, client_io).await;
        let mut tls = result?;
        let mut buf = [0u8; 12];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"* OK hello\r\n");
        server.await.unwrap();
        let (_, conn) = tls.get_ref();
        let leaf = conn.peer_certificates().unwrap()[0].to_vec();
        Ok((leaf, conn.protocol_version().unwrap()))
    }

    const MODERN: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

    /// A client that trusts the generated certificate completes a handshake for each of its names.
    #[tokio::test]
    async fn generated_certificate_is_accepted_by_a_client() {
        let dir = tempfile::tempdir().unwrap();
        let (acceptor, _) = acceptor(&config_in(dir.path())).unwrap();
        let cert_pem = fs::read(dir.path().join("tls/cert.pem")).unwrap();
        let der = CertificateDer::from_pem_slice(&cert_pem).unwrap().to_vec();
        let config = config_in(dir.path());
        for name in SelfSignedNames::wanted(host_name().as_deref(), &config).names {
            let (leaf, _) = presented(&acceptor, &name, &[&der], MODERN).await.unwrap();
            assert_eq!(leaf, der);
        }
    }

    #[tokio::test]
    async fn tls_1_3_is_preferred_and_1_2_still_works() {
        let dir = tempfile::tempdir().unwrap();
        let (a, der) = write_pair(dir.path(), "a", &["a.example"]);
        let (acceptor, _) = acceptor(&Config { tls: vec![a], ..config_in(dir.path()) }).unwrap();
        let (_, version) = presented(&acceptor, "a.example", &[&der], MODERN).await.unwrap();
        assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
        let (_, version) =
            presented(&acceptor, "a.example", &[&der], &[&rustls::version::TLS12]).await.unwrap();
        assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);
    }

    /// SNI picks the certificate valid for the asked name (wildcards too); no name or an
    /// unknown one gets the default, the first.
    #[tokio::test]
    async fn sni_chooses_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (main, main_der) = write_pair(dir.path(), "main", &["mail.example", "127.0.0.1"]);
        let (other, other_der) = write_pair(dir.path(), "other", &["imap.other.test"]);
        let (wild, wild_der) = write_pair(dir.path(), "wild", &["*.wild.test"]);
        let config = Config { tls: vec![main, other, wild], ..config_in(dir.path()) };
        let (acceptor, _) = acceptor(&config).unwrap();
        let all: [&[u8]; 3] = [&main_der, &other_der, &wild_der];
        let cases: [(&str, &[u8]); 4] = [
            ("mail.example", &main_der),
            ("imap.other.test", &other_der),
            ("imap.wild.test", &wild_der),
            // An IP address is not sent as SNI: the default answers.
            ("127.0.0.1", &main_der),
        ];
        for (name, expected) in cases {
            let (leaf, _) = presented(&acceptor, name, &all, MODERN).await.unwrap();
            assert_eq!(leaf, expected, "certificate for {name}");
        }
        // An unknown name gets the default, which the client then rejects for the name.
        assert!(presented(&acceptor, "unknown.test", &all, MODERN).await.is_err());
    }

    /// A reload swaps the certificates for new handshakes; a broken file keeps the old ones.
    #[tokio::test]
    async fn reload_swaps_and_keeps_the_old_set_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let (files, old_der) = write_pair(dir.path(), "a", &["a.example"]);
        let tls = setup(&Config { tls: vec![files.clone()], ..config_in(dir.path()) }).unwrap();
        let (leaf, _) = presented(&tls.acceptor, "a.example", &[&old_der], MODERN).await.unwrap();
        assert_eq!(leaf, old_der);

        let (_, new_der) = write_pair(dir.path(), "a", &["a.example"]);
        assert_ne!(new_der, old_der);
        assert_eq!(tls.certificates.reload().unwrap(), 1);
        let (leaf, _) = presented(&tls.acceptor, "a.example", &[&new_der], MODERN).await.unwrap();
        assert_eq!(leaf, new_der, "new handshakes use the new certificate");

        fs::write(&files.key, "broken").unwrap();
        assert!(matches!(tls.certificates.reload(), Err(TlsError::Pem { .. })));
        let (leaf, _) = presented(&tls.acceptor, "a.example", &[&new_der], MODERN).await.unwrap();
        assert_eq!(leaf, new_der, "a failed reload keeps what worked");
    }
}
