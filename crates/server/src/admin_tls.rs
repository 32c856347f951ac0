//! The `postfach tls …` commands: what the server's certificates say.
//!
//! `tls show` reads the certificates the server uses (the `[tls]` files, or the generated one in
//! `<data_dir>/tls/`) and prints, for each, its files, subject, names, validity and SHA-256
//! fingerprint, so the fingerprint a mail client shows can be checked against it. It changes
//! nothing: a generated certificate due for renewal is only reported, the next start renews it.
//! With `[tls] acme`, the ACME certificate comes first (origin `acme`), with why it is due for
//! renewal, if it is.
//!
//! `tls renew` asks the running server, through the control socket, to order an ACME
//! certificate now, whatever the current one's expiry; the server log tells the outcome, and
//! `tls show` the new certificate once it is installed.

use std::fmt::Write as _;

use anyhow::Context;
use clap::Subcommand;
use time::OffsetDateTime;

use crate::acme;
use crate::cert_info::{self, CertInfo};
use crate::config::{Config, TlsFiles};
use crate::control::{self, Reply, Request};
use crate::tls::{self, SelfSignedNames};

/// `postfach tls …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TlsCommand {
    /// Print the subject, names, validity, SHA-256 fingerprint and files of each certificate in
    /// use (compare the fingerprint with the one your mail client shows).
    Show {
        /// Print one JSON document: {"certificates": [{"cert", "key", "origin", "subject",
        /// "names", "not_before", "not_after", "sha256", "renewal"}]} (times RFC 3339, UTC).
        #[arg(long)]
        json: bool,
    },
    /// Ask the running server to order a new ACME certificate now ([tls] acme).
    Renew,
}

/// Runs a `tls` subcommand.
pub(crate) fn run(
    command: TlsCommand,
    config: &Config,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    match command {
        TlsCommand::Renew => runtime.block_on(renew(config)),
        TlsCommand::Show { json: false } => {
            print!("{}", show(config, OffsetDateTime::now_utc())?);
            Ok(())
        }
        TlsCommand::Show { json: true } => {
            crate::admin_output::print_json(&show_json(config, OffsetDateTime::now_utc())?)
        }
    }
}

/// What `tls show --json` prints at `now`.
fn show_json(config: &Config, now: OffsetDateTime) -> anyhow::Result<serde_json::Value> {
    let time = |t: OffsetDateTime| crate::admin_output::rfc3339(t.unix_timestamp());
    let one = |files: &TlsFiles, info: &CertInfo, origin: &str, renewal: Option<String>| {
        serde_json::json!({
            "cert": files.cert.display().to_string(),
            "key": files.key.display().to_string(),
            "origin": origin,
            "subject": info.subject,
            "names": info.names,
            "not_before": time(info.not_before),
            "not_after": time(info.not_after),
            "sha256": info.sha256,
            "renewal": renewal,
        })
    };
    let mut certificates = Vec::new();
    if let Some(acme) = &config.acme {
        let files = acme::files(&config.data_dir);
        if files.pair.cert.is_file() {
            let info = CertInfo::read(&files.pair.cert)
                .with_context(|| format!("reading {}", files.pair.cert.display()))?;
            let renewal = acme::due(&files, acme, now).map(|why| why.to_string());
            certificates.push(one(&files.pair, &info, "acme", renewal));
        }
    }
    if config.tls.is_empty() {
        let files = tls::self_signed_files(&config.data_dir);
        if !files.cert.is_file() {
            anyhow::bail!("no certificate yet: `postfach serve` generates one");
        }
        let info =
            CertInfo::read(&files.cert).with_context(|| format!("reading {}", files.cert.display()))?;
        let wanted = SelfSignedNames::wanted(tls::host_name().as_deref(), config);
        let renewal = tls::renewal(&info, &wanted, now).map(|why| why.to_string());
        certificates.push(one(&files, &info, "generated", renewal));
    }
    for (i, files) in config.tls.iter().enumerate() {
        let info =
            CertInfo::read(&files.cert).with_context(|| format!("reading {}", files.cert.display()))?;
        certificates.push(one(files, &info, if i == 0 { "configured" } else { "sni" }, None));
    }
    Ok(serde_json::json!({ "certificates": certificates }))
}

/// The text of `tls show` at `now`.
fn show(config: &Config, now: OffsetDateTime) -> anyhow::Result<String> {
    let mut text = String::new();
    if let Some(acme) = &config.acme {
        let files = acme::files(&config.data_dir);
        if files.pair.cert.is_file() {
            let info = CertInfo::read(&files.pair.cert)
                .with_context(|| format!("reading {}", files.pair.cert.display()))?;
            describe(&mut text, &files.pair, &info, "acme, from [tls] acme's CA", now);
            if let Some(why) = acme::due(&files, acme, now) {
                let _ = writeln!(text, "renewal:     due, because {why}; the server orders one");
            }
        } else {
            let _ = writeln!(
                text,
                "certificate: {} (acme): none yet; the server orders it ({})",
                files.pair.cert.display(),
                acme.domains.join(", ")
            );
        }
        text.push('\n');
    }
    if config.tls.is_empty() {
        let files = tls::self_signed_files(&config.data_dir);
        if !files.cert.is_file() {
            anyhow::bail!(
                "no certificate yet: `postfach serve` generates one in {}",
                files.cert.parent().unwrap_or(&config.data_dir).display()
            );
        }
        let info =
            CertInfo::read(&files.cert).with_context(|| format!("reading {}", files.cert.display()))?;
        describe(&mut text, &files, &info, "generated, self-signed: clients will not trust it", now);
        let wanted = SelfSignedNames::wanted(tls::host_name().as_deref(), config);
        if let Some(why) = tls::renewal(&info, &wanted, now) {
            let _ = writeln!(text, "renewal:     at the next start, because {why}");
        }
        return Ok(text);
    }
    for (i, files) in config.tls.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        let info =
            CertInfo::read(&files.cert).with_context(|| format!("reading {}", files.cert.display()))?;
        let origin = if i == 0 { "configured, the default" } else { "configured, chosen by SNI" };
        describe(&mut text, files, &info, origin, now);
    }
    Ok(text)
}

/// `tls renew`: wakes the running server's ACME task.
async fn renew(config: &Config) -> anyhow::Result<()> {
    if config.acme.is_none() {
        anyhow::bail!("[tls] acme is not configured: there is nothing to renew");
    }
    match control::ask(&config.data_dir, &Request::AcmeRenew).await? {
        Reply::AcmeRenewing { acme: true } => {
            println!(
                "the server orders a new certificate now; `postfach tls show` shows it once installed \
                 (the server log says why if it fails)"
            );
            Ok(())
        }
        Reply::AcmeRenewing { acme: false } => {
            anyhow::bail!("the running server was started without [tls] acme; restart it to use it")
        }
        other => anyhow::bail!("unexpected answer from the server: {other:?}"),
    }
}

/// Appends the description of one certificate.
fn describe(text: &mut String, files: &TlsFiles, info: &CertInfo, origin: &str, now: OffsetDateTime) {
    let state = if now > info.not_after {
        " (EXPIRED)"
    } else if now < info.not_before {
        " (NOT YET VALID)"
    } else {
        ""
    };
    let _ = writeln!(text, "certificate: {} ({origin})", files.cert.display());
    let _ = writeln!(text, "key:         {}", files.key.display());
    let _ = writeln!(text, "subject:     {}", info.subject);
    let _ = writeln!(text, "names:       {}", info.names.join(", "));
    let _ = writeln!(
        text,
        "valid:       {} to {}{state}",
        cert_info::date(info.not_before),
        cert_info::date(info.not_after)
    );
    let _ = writeln!(text, "sha256:      {}", info.sha256);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_generated_certificate_and_refuses_before_the_first_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        let error = show(&config, OffsetDateTime::now_utc()).unwrap_err().to_string();
        assert!(error.contains("no certificate yet"), "{error}");

        let tls = tls::setup(&config).unwrap();
        let leaf = tls.certificates.leaves().remove(0);
        let text = show(&config, OffsetDateTime::now_utc()).unwrap();
        assert!(text.contains(&format!("sha256:      {}\n", cert_info::fingerprint(&leaf))), "{text}");
        let json = show_json(&config, OffsetDateTime::now_utc()).unwrap();
        assert_eq!(json["certificates"][0]["sha256"], cert_info::fingerprint(&leaf));
        assert_eq!(json["certificates"][0]["origin"], "generated");
        assert!(json["certificates"][0]["renewal"].is_null());
        assert!(text.contains("names:       ") && text.contains("localhost, 127.0.0.1, ::1"), "{text}");
        assert!(text.contains("key.pem"), "{text}");
        assert!(!text.contains("renewal"), "{text}");
        // A year later: expired, and due for renewal.
        let later = OffsetDateTime::now_utc() + time::Duration::days(400);
        let text = show(&config, later).unwrap();
        assert!(text.contains("(EXPIRED)") && text.contains("renewal:     at the next start"), "{text}");
    }
}
