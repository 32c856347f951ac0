//! The HTTPS client instant-acme talks to the CA through: one HTTP/1.1 request per connection
//! (hyper's client on tokio-rustls), the CA's certificate checked against the system's roots
//! plus `[tls] acme.ca_file`.
//!
//! Our own rather than instant-acme's default client, which brings hyper-rustls with HTTP/2, a
//! connection pool and the platform verifier: an order makes a dozen requests, so a new
//! connection each costs nothing that matters, and this way the one rustls configuration is
//! the server's.
//!
//! Limits (what a CA's answer may cost us): [`CONNECT_TIMEOUT`] to connect and shake hands,
//! [`REQUEST_TIMEOUT`] for the whole exchange, [`MAX_BODY`] bytes of body. Only `https` URLs.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::TokioIo;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tracing::{debug, warn};

/// Time to open the TCP connection and finish the TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Time for one request, from connecting to the last byte of the response head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response body read: a certificate chain is a few KiB, a directory less.
const MAX_BODY: usize = 1024 * 1024;

/// Why the client could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// `ca_file` could not be read as PEM certificates.
    #[error("{}: not readable as PEM certificates", path.display())]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        source: rustls::pki_types::pem::Error,
    },
    /// Not one root to check the CA's certificate against.
    #[error("no trusted root certificates (the system has none, and no [tls] acme.ca_file)")]
    NoRoots,
    /// rustls refused the configuration (cannot happen with the built-in provider).
    #[error("the TLS client configuration is not usable")]
    Rustls(#[from] rustls::Error),
}

/// An [`HttpClient`] over HTTPS with our own trust roots.
pub(crate) struct AcmeHttp {
    tls: TlsConnector,
}

impl AcmeHttp {
    /// The TLS side, for other requests with the same roots ([`exchange`]).
    pub(crate) fn connector(&self) -> TlsConnector {
        self.tls.clone()
    }
}

impl AcmeHttp {
    /// A client trusting the system's roots and those in `ca_file`.
    pub(crate) fn new(ca_file: Option<&Path>) -> Result<Self, ClientError> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            debug!(error = %e, "a system root certificate could not be read");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        if ignored > 0 {
            debug!(added, ignored, "system root certificates loaded");
        }
        if let Some(path) = ca_file {
            let ca_error = |source| ClientError::CaFile { path: path.to_owned(), source };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(ca_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(ca_error)?;
            let (_, ignored) = roots.add_parsable_certificates(certs);
            if ignored > 0 {
                warn!(file = %path.display(), ignored, "certificates in [tls] acme.ca_file that are not usable roots");
            }
        }
        if roots.is_empty() {
            return Err(ClientError::NoRoots);
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { tls: TlsConnector::from(Arc::new(config)) })
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let tls = self.tls.clone();
        Box::pin(async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, send(tls, req)).await {
                Ok(result) => result,
                Err(_) => Err(other(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))),
            }
        })
    }
}

/// Connects to the request's host and sends it.
async fn send(
    tls: TlsConnector,
    req: http::Request<BodyWrapper<Bytes>>,
) -> Result<BytesResponse, instant_acme::Error> {
    let response = exchange(&tls, req, false).await.map_err(other)?;
    Ok(BytesResponse::from(response.map(|body| Limited::new(body, MAX_BODY).boxed_unsync())))
}

/// Opens a connection to the request's host, sends the request and returns the response (its
/// body still to be read). `https` always; plain `http` only with `plain_loopback` and only to a
/// loopback address (an issuer under test). Shared by ACME and the `[oauth]` key and
/// introspection fetches; the caller bounds the time and the body.
pub(crate) async fn exchange<B>(
    tls: &TlsConnector,
    mut req: http::Request<B>,
    plain_loopback: bool,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let uri = req.uri().clone();
    let secure = match uri.scheme_str() {
        Some("https") => true,
        Some("http") if plain_loopback => false,
        _ => return Err(format!("not an https URL: {uri}")),
    };
    let Some(host) = uri.host() else { return Err(format!("no host in {uri}")) };
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    // An IPv6 literal comes bracketed in URIs.
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    // HTTP/1.1 needs Host; hyper's low-level client sends only what it is given.
    let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or(host.clone());
    if let Ok(value) = http::HeaderValue::from_str(&authority) {
        req.headers_mut().insert(http::header::HOST, value);
    }
    // The request line carries only the path (origin-form, RFC 9112 §3.2.1).
    if let Some(Ok(origin)) = uri.path_and_query().map(|path| path.as_str().parse()) {
        *req.uri_mut() = origin;
    }
    let tcp = async {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(tcp)) => Ok(tcp),
            Ok(Err(e)) => Err(format!("connecting to {host}:{port}: {e}")),
            Err(_) => Err(format!("connecting to {host}:{port}: timed out")),
        }
    };
    if !secure {
        let tcp = tcp.await?;
        if !tcp.peer_addr().is_ok_and(|a| a.ip().is_loopback()) {
            return Err(format!("plain http only to a loopback address, not {host}"));
        }
        return over(tcp, req, &uri).await;
    }
    let name = ServerName::try_from(host.clone()).map_err(|_| format!("not a host name: {host}"))?;
    let tcp = tcp.await?;
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(name, tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(format!("TLS with {host}:{port}: {e}")),
        Err(_) => return Err(format!("TLS with {host}:{port}: timed out")),
    };
    over(stream, req, &uri).await
}

/// HTTP/1.1 over an open connection: one request, its response.
async fn over<S, B>(
    io: S,
    req: http::Request<B>,
    uri: &http::Uri,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP with {uri}: {e}"))?;
    // The connection is driven until the response body is read (or dropped).
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            debug!(error = %e, "HTTP client connection ended with an error");
        }
    });
    sender.send_request(req).await.map_err(|e| format!("{uri}: {e}"))
}

/// An error for instant-acme with our text.
fn other(text: String) -> instant_acme::Error {
    instant_acme::Error::Other(text.into())
}
