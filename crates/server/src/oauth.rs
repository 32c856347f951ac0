//! `[oauth]`: the issuer's keys and introspection for bearer-token logins (OAUTHBEARER, XOAUTH2;
//! the checks themselves are `postfach_auth::oauth`).
//!
//! The keys come from a JWKS file (read at start and again whenever a token names a key the
//! server does not have, at most once a minute) or from a URL (fetched at start, every
//! `jwks_refresh`, and on an unknown key id). Opaque tokens go to the issuer's introspection
//! endpoint (RFC 7662) with the server's client credentials. Both fetches use the ACME client's
//! HTTPS (`acme_http::exchange`: system roots plus `oauth.ca_file`), `http://` only to loopback,
//! [`FETCH_TIMEOUT`] per request and [`MAX_JWKS`] bytes per answer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use postfach_auth::oauth::{Introspect, JwkSet, KeySource, OAuthSettings, TokenVerifier};
use postfach_secret::Secret;
use tokio_rustls::TlsConnector;

use crate::acme_http::{self, AcmeHttp};

use crate::config::OAuthConfig;

/// Largest JWKS (or introspection answer) accepted: a key set holds a handful of keys.
const MAX_JWKS: u64 = 1024 * 1024;
/// Time for one request to the issuer, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The verifier for `[oauth]`, with its key set loaded.
pub(crate) async fn verifier(config: &OAuthConfig) -> anyhow::Result<Arc<TokenVerifier>> {
    let settings = OAuthSettings {
        issuer: config.issuer.clone(),
        audiences: config.audiences.clone(),
        username_claim: config.username_claim.clone(),
        leeway: config.leeway,
        scope: config.scope.clone(),
        openid_configuration: config.openid_configuration.clone(),
    };
    let tls = match (&config.jwks_url, &config.introspection_url) {
        (None, None) => None,
        _ => Some(AcmeHttp::new(config.ca_file.as_deref()).context("oauth: the HTTPS client")?.connector()),
    };
    let source: Option<Arc<dyn KeySource>> = match (&config.jwks_file, &config.jwks_url, &tls) {
        (Some(path), _, _) => Some(Arc::new(JwksFile { path: path.clone() })),
        (None, Some(url), Some(tls)) => Some(Arc::new(JwksUrl { url: url.clone(), tls: tls.clone() })),
        _ => None,
    };
    let introspect: Option<Arc<dyn Introspect>> = match (&config.introspection_url, &tls) {
        (Some(url), Some(tls)) => {
            let secret_file = config.client_secret_file.as_deref().context("oauth.client_secret_file")?;
            let secret = std::fs::read_to_string(secret_file)
                .with_context(|| format!("reading {}", secret_file.display()))?;
            Some(Arc::new(Introspection {
                url: url.clone(),
                tls: tls.clone(),
                client_id: config.client_id.clone().unwrap_or_default(),
                secret: Secret::new(secret.trim_end().as_bytes().to_vec()),
            }))
        }
        _ => None,
    };
    let keys = match &source {
        Some(source) => {
            source.fetch().await.map_err(anyhow::Error::msg).context("loading the issuer's keys")?
        }
        None => JwkSet { keys: Vec::new() },
    };
    tracing::info!(
        issuer = %config.issuer,
        keys = keys.keys.len(),
        introspection = introspect.is_some(),
        "bearer tokens accepted (OAUTHBEARER, XOAUTH2)"
    );
    let verifier = Arc::new(TokenVerifier::new(settings, keys, source.clone(), introspect));
    if let (Some(source), Some(_)) = (source, &config.jwks_url) {
        let refresh = config.jwks_refresh;
        let weak = Arc::downgrade(&verifier);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(refresh).await;
                let Some(verifier) = weak.upgrade() else { return };
                match source.fetch().await {
                    Ok(keys) => verifier.set_keys(keys),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot refresh the issuer's keys; keeping the old ones")
                    }
                }
            }
        });
    }
    Ok(verifier)
}

/// The issuer's JWKS URL.
struct JwksUrl {
    url: String,
    tls: TlsConnector,
}

#[async_trait::async_trait]
impl KeySource for JwksUrl {
    async fn fetch(&self) -> Result<JwkSet, String> {
        let request = http::Request::get(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        parse_jwks(&fetch(&self.tls, request).await?)
    }
}

/// RFC 7662 token introspection with the server's client credentials (HTTP Basic, §2.1).
struct Introspection {
    url: String,
    tls: TlsConnector,
    client_id: String,
    secret: Secret,
}

#[async_trait::async_trait]
impl Introspect for Introspection {
    async fn introspect(&self, token: &str) -> Result<serde_json::Value, String> {
        // RFC 6749 §2.3.1: id and secret are form-encoded before they go into Basic.
        let encode = |b: &[u8]| form_urlencoded::byte_serialize(b).collect::<String>();
        let credentials =
            format!("{}:{}", encode(self.client_id.as_bytes()), encode(self.secret.expose_secret()));
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let request = http::Request::post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::AUTHORIZATION,
                format!("Basic {}", postfach_auth::encoding::base64_encode(credentials.as_bytes())),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let answer = fetch(&self.tls, request).await?;
        serde_json::from_slice(&answer).map_err(|e| format!("introspection answer is not JSON: {e}"))
    }
}

/// One request to the issuer: the body of a 2xx answer, within [`FETCH_TIMEOUT`] and
/// [`MAX_JWKS`] bytes.
async fn fetch(tls: &TlsConnector, request: http::Request<Full<Bytes>>) -> Result<Vec<u8>, String> {
    let uri = request.uri().to_string();
    let work = async {
        let response = acme_http::exchange(tls, request, true).await?;
        let status = response.status();
        let limit = usize::try_from(MAX_JWKS).unwrap_or(usize::MAX);
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| format!("{uri}: {e}"))?
            .to_bytes();
        if status.is_success() { Ok(body.to_vec()) } else { Err(format!("{uri}: HTTP {status}")) }
    };
    tokio::time::timeout(FETCH_TIMEOUT, work).await.map_err(|_| format!("{uri}: no answer in time"))?
}

/// A JWKS file.
struct JwksFile {
    path: PathBuf,
}

#[async_trait::async_trait]
impl KeySource for JwksFile {
    async fn fetch(&self) -> Result<JwkSet, String> {
        let path = self.path.clone();
        let text = tokio::task::spawn_blocking(move || {
            let size = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?.len();
            if size > MAX_JWKS {
                return Err(format!("{}: larger than {MAX_JWKS} bytes", path.display()));
            }
            std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
        })
        .await
        .map_err(|e| e.to_string())??;
        parse_jwks(&text)
    }
}

/// A JWKS document (RFC 7517 §5).
fn parse_jwks(text: &[u8]) -> Result<JwkSet, String> {
    serde_json::from_slice(text).map_err(|e| format!("not a JWKS: {e}"))
}
