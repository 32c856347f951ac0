//! `[tls] acme`: certificates from an ACME CA (RFC 8555), read and checked like the rest of the
//! file (every problem reported with its key path).
//!
//! ```toml
//! [tls]
//! acme = { domains = ["mail.example.org"], contact = "mailto:postmaster@example.org",
//!          directory = "https://acme-v02.api.letsencrypt.org/directory",
//!          challenge = "http-01", http_listen = "0.0.0.0:80" }
//! ```
//!
//! Limits: DNS names only (no IP identifiers, RFC 8738) and no wildcards (they need DNS-01,
//! which needs a DNS provider's API).

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use toml::Value;

use super::{Checker, set};

/// Where the certificate of `[tls] acme` comes from and how it is proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AcmeConfig {
    /// The names the certificate is for, lower case, each once; the first is the subject.
    pub(crate) domains: Vec<String>,
    /// `mailto:` URLs the CA may write to about the account (RFC 8555 §7.3); may be empty.
    pub(crate) contact: Vec<String>,
    /// The CA's directory URL (`https://`, RFC 8555 §7.1.1).
    pub(crate) directory: String,
    /// How control of the names is proven.
    pub(crate) challenge: AcmeChallenge,
    /// Extra PEM roots for the directory's own TLS certificate (a test CA such as pebble's),
    /// trusted beside the system's.
    pub(crate) ca_file: Option<PathBuf>,
    /// A certificate that expires within this time is renewed.
    pub(crate) renew_before: Duration,
}

/// The challenge type (RFC 8555 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcmeChallenge {
    /// HTTP-01 (RFC 8555 §8.3): the CA fetches a token over plain HTTP from port 80 of each
    /// name; Postfach answers on `listen` while an order is pending.
    Http01 {
        /// Where to listen (what the names' port 80 reaches).
        listen: SocketAddr,
    },
    /// TLS-ALPN-01 (RFC 8737): the CA opens TLS with ALPN `acme-tls/1` to port 443 of each
    /// name; Postfach answers on its implicit-TLS IMAP listeners (`imap.listen_tls`).
    TlsAlpn01,
}

impl AcmeChallenge {
    /// The RFC's name of the challenge type.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Http01 { .. } => "http-01",
            Self::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

/// Allowed range of `tls.acme.renew_before_days`.
const RENEW_BEFORE_DAYS_RANGE: RangeInclusive<i64> = 1..=365;
/// Default of `tls.acme.renew_before_days`: Let's Encrypt's certificates live 90 days, and
/// 30 days leave time for a few failed attempts to be noticed.
const DEFAULT_RENEW_BEFORE_DAYS: u64 = 30;
/// Most names one order may carry (Let's Encrypt's limit).
const MAX_DOMAINS: usize = 100;

/// Which challenge `challenge = "..."` names, before `http_listen` is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChallengeKind {
    Http01,
    TlsAlpn01,
}

impl Checker {
    /// `[tls] acme = { ... }`.
    pub(super) fn acme(&mut self, value: &Value) -> Option<AcmeConfig> {
        const PATH: &str = "tls.acme";
        let table = self.table(value, PATH)?;
        let mut domains = None;
        let mut contact = Vec::new();
        let mut directory = None;
        let mut kind = ChallengeKind::Http01;
        let mut http_listen = None;
        let mut ca_file = None;
        let mut renew_before = Duration::from_secs(DEFAULT_RENEW_BEFORE_DAYS * 86_400);
        self.walk(table, PATH, |c, key, value, path| match key {
            "domains" => domains = c.acme_domains(value, path),
            "contact" => set(&mut contact, c.acme_contact(value, path)),
            "directory" => directory = c.text(value, path, directory_url),
            "challenge" => set(
                &mut kind,
                c.choice(
                    value,
                    path,
                    &[("http-01", ChallengeKind::Http01), ("tls-alpn-01", ChallengeKind::TlsAlpn01)],
                ),
            ),
            "http_listen" => {
                http_listen = c.text(value, path, |text| {
                    text.parse::<SocketAddr>().map_err(|_| format!("not an IP address with port: {text:?}"))
                })
            }
            "ca_file" => ca_file = c.existing_file(value, path),
            "renew_before_days" => {
                let days = c.integer(value, path, RENEW_BEFORE_DAYS_RANGE);
                set(&mut renew_before, days.map(|d| Duration::from_secs(d.unsigned_abs() * 86_400)));
            }
            _ => c.unknown(path),
        });
        if !table.contains_key("domains") {
            self.issue(PATH, "give domains, the names the certificate is for");
        }
        if !table.contains_key("directory") {
            self.issue(
                PATH,
                "give directory, the CA's directory URL (Let's Encrypt: \
                 \"https://acme-v02.api.letsencrypt.org/directory\")",
            );
        }
        let challenge = match (kind, http_listen) {
            (ChallengeKind::Http01, Some(listen)) => Some(AcmeChallenge::Http01 { listen }),
            (ChallengeKind::Http01, None) => {
                if !table.contains_key("http_listen") {
                    self.issue(
                        "tls.acme.http_listen",
                        "http-01 needs the address to answer on, one that port 80 of every domain \
                         reaches (such as \"0.0.0.0:80\"); or use challenge = \"tls-alpn-01\"",
                    );
                }
                None
            }
            (ChallengeKind::TlsAlpn01, listen) => {
                if listen.is_some() {
                    self.issue("tls.acme.http_listen", "only used by challenge = \"http-01\"");
                }
                Some(AcmeChallenge::TlsAlpn01)
            }
        };
        Some(AcmeConfig {
            domains: domains?,
            contact,
            directory: directory?,
            challenge: challenge?,
            ca_file,
            renew_before,
        })
    }

    /// `tls.acme.domains`: a non-empty list of DNS names, each once.
    fn acme_domains(&mut self, value: &Value, path: &str) -> Option<Vec<String>> {
        let names = self.list(value, path, "a list of DNS names", acme_domain)?;
        if names.is_empty() {
            self.issue(path, "must name at least one domain");
            return None;
        }
        if names.len() > MAX_DOMAINS {
            self.issue(path, format!("at most {MAX_DOMAINS} names fit one certificate"));
            return None;
        }
        let mut unique: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            if unique.contains(&name) {
                self.issue(path, format!("{name} is listed more than once"));
                return None;
            }
            unique.push(name);
        }
        Some(unique)
    }

    /// `tls.acme.contact`: one `mailto:` URL or a list of them.
    fn acme_contact(&mut self, value: &Value, path: &str) -> Option<Vec<String>> {
        match value {
            Value::String(_) => self.text(value, path, contact_url).map(|url| vec![url]),
            _ => self.list(value, path, "a mailto: URL or a list of them", contact_url),
        }
    }
}

/// One of `tls.acme.domains`: a DNS name a CA can validate, in lower case.
fn acme_domain(text: &str) -> Result<String, String> {
    let name = text.to_ascii_lowercase();
    if name.starts_with("*.") {
        return Err(format!(
            "{text:?}: wildcard names need the dns-01 challenge, which Postfach does not answer"
        ));
    }
    match rustls::pki_types::ServerName::try_from(name.as_str()) {
        Ok(rustls::pki_types::ServerName::DnsName(_)) if name.contains('.') => Ok(name),
        Ok(rustls::pki_types::ServerName::IpAddress(_)) => {
            Err(format!("{text:?}: IP addresses are not supported, only DNS names"))
        }
        _ => Err(format!("not a fully qualified DNS name: {text:?}")),
    }
}

/// One contact: `mailto:` and one address (RFC 8555 §7.3; CAs refuse other schemes).
fn contact_url(text: &str) -> Result<String, String> {
    let Some(address) = text.strip_prefix("mailto:") else {
        return Err(format!(
            "must be a mailto: URL such as \"mailto:postmaster@example.org\", found {text:?}"
        ));
    };
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, ',' | '?' | '<' | '>');
    match address.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') && !address.contains(bad) => {
            Ok(text.to_owned())
        }
        _ => Err(format!("not one e-mail address after mailto: {text:?}")),
    }
}

/// `tls.acme.directory`: an `https://` URL with a host (RFC 8555 §6.1: ACME runs over HTTPS).
fn directory_url(text: &str) -> Result<String, String> {
    let uri: axum::http::Uri = text.parse().map_err(|_| format!("not a URL: {text:?}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("must be an https:// URL (RFC 8555 §6.1), found {text:?}"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("has no host: {text:?}"));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{Config, Issue, ParseFailure};
    use super::*;

    fn issues(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Err(ParseFailure::Invalid(issues)) => issues.iter().map(Issue::to_string).collect(),
            other => panic!("expected issues, got {other:?}"),
        }
    }

    #[test]
    fn acme_is_read_with_its_defaults() {
        let c = Config::from_toml(
            "[tls]\nacme = { domains = [\"Mail.Example.org\", \"imap.example.org\"], \
             directory = \"https://acme-v02.api.letsencrypt.org/directory\", \
             http_listen = \"0.0.0.0:80\" }\n",
        )
        .unwrap();
        let acme = c.acme.unwrap();
        assert_eq!(acme.domains, ["mail.example.org", "imap.example.org"]);
        assert!(acme.contact.is_empty());
        assert_eq!(acme.challenge, AcmeChallenge::Http01 { listen: "0.0.0.0:80".parse().unwrap() });
        assert_eq!(acme.renew_before, Duration::from_secs(30 * 86_400));
        assert_eq!(acme.ca_file, None);
        assert!(c.tls.is_empty(), "the generated certificate still serves other names");

        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let c = Config::from_toml(&format!(
            "[tls.acme]\ndomains = [\"mail.example.org\"]\ncontact = [\"mailto:a@example.org\", \
             \"mailto:b@example.org\"]\ndirectory = \"https://127.0.0.1:14000/dir\"\n\
             challenge = \"tls-alpn-01\"\nca_file = {:?}\nrenew_before_days = 10\n",
            ca.display().to_string()
        ))
        .unwrap();
        let acme = c.acme.unwrap();
        assert_eq!(acme.contact, ["mailto:a@example.org", "mailto:b@example.org"]);
        assert_eq!(acme.challenge, AcmeChallenge::TlsAlpn01);
        assert_eq!(acme.ca_file, Some(ca));
        assert_eq!(acme.renew_before, Duration::from_secs(10 * 86_400));
    }

    #[test]
    fn acme_problems_are_each_reported() {
        assert_eq!(
            issues("[tls]\nacme = { challenge = \"http-01\" }"),
            vec![
                "tls.acme: give domains, the names the certificate is for",
                "tls.acme: give directory, the CA's directory URL (Let's Encrypt: \
                 \"https://acme-v02.api.letsencrypt.org/directory\")",
                "tls.acme.http_listen: http-01 needs the address to answer on, one that port 80 of \
                 every domain reaches (such as \"0.0.0.0:80\"); or use challenge = \"tls-alpn-01\"",
            ]
        );
        let text = "[tls]\nacme = { domains = [\"localhost\", \"192.0.2.1\", \"a.example\"], \
                    directory = \"https://\", contact = \"mailto:x\", challenge = \"tls-alpn-01\", \
                    http_listen = \"0.0.0.0:80\", ca_file = \"/nonexistent/ca.pem\", extra = 1 }";
        let found = issues(text);
        let expected = [
            "tls.acme.domains[0]: not a fully qualified DNS name: \"localhost\"",
            "tls.acme.domains[1]: \"192.0.2.1\": IP addresses are not supported, only DNS names",
            "tls.acme.directory: not a URL: \"https://\"",
            "tls.acme.contact: not one e-mail address after mailto: \"mailto:x\"",
            "tls.acme.http_listen: only used by challenge = \"http-01\"",
            "tls.acme.ca_file: no such file: /nonexistent/ca.pem",
            "tls.acme.extra: unknown key",
        ];
        for issue in expected {
            assert!(found.iter().any(|f| f == issue), "missing {issue:?} in {found:#?}");
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        // A duplicate, told apart from the list's other problems.
        assert_eq!(
            issues(
                "[tls]\nacme = { domains = [\"a.example\", \"A.example\"], directory = \"https://ca.test/d\", \
                 challenge = \"tls-alpn-01\" }"
            ),
            vec!["tls.acme.domains: a.example is listed more than once"]
        );
        // TLS-ALPN-01 is answered on the IMAPS listeners: there must be one.
        assert_eq!(
            issues(
                "[imap]\nlisten_tls = []\n[tls]\nacme = { domains = [\"a.example\"], \
                 directory = \"https://ca.test/d\", challenge = \"tls-alpn-01\" }"
            ),
            vec!["tls.acme.challenge: tls-alpn-01 is answered on imap.listen_tls, which is empty"]
        );
    }
}
