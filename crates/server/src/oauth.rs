//! `[oauth]`: the issuer's keys and introspection for bearer-token logins (OAUTHBEARER, XOAUTH2;
//! the checks themselves are `postfach_auth::oauth`).
//!
//! The keys come from a JWKS file (read at start and again whenever a token names a key the
//! server does not have, at most once a minute) or from a URL (fetched at start, every
//! `jwks_refresh`, and on an unknown key id).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use postfach_auth::oauth::{JwkSet, KeySource, OAuthSettings, TokenVerifier};

use crate::config::OAuthConfig;

/// Largest JWKS accepted (a key set holds a handful of keys: a few KiB).
const MAX_JWKS: u64 = 1024 * 1024;

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
    let source: Option<Arc<dyn KeySource>> =
        config.jwks_file.clone().map(|path| Arc::new(JwksFile { path }) as Arc<dyn KeySource>);
    let keys = match &source {
        Some(source) => {
            source.fetch().await.map_err(anyhow::Error::msg).context("loading oauth.jwks_file")?
        }
        None => JwkSet { keys: Vec::new() },
    };
    tracing::info!(issuer = %config.issuer, keys = keys.keys.len(), "bearer tokens accepted (OAUTHBEARER, XOAUTH2)");
    Ok(Arc::new(TokenVerifier::new(settings, keys, source, None)))
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
