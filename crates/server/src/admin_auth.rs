//! The credential commands of the CLI: `user totp …`, `user app-password …` and `ban …`.
//!
//! They work on the store of the data directory, also while the server runs: the server notices
//! revocations, TOTP changes and password changes (`user passwd`, in `admin`) through the
//! store's credentials generation within about a second (see `postfach_auth::Authenticator::watch_store`), and lifted blocks at the blocked
//! address's next attempt.
//!
//! TOTP enrolment is two-step and forgiving: `totp enable` stores a *pending* secret, shows it
//! (otpauth:// URI, QR code, base32), and asks for a code from the app (or takes `--code`). A
//! wrong or missing code leaves the enrolment pending, and running `totp enable` again shows the
//! same secret, so a user never has to scan twice. Only a confirmed enrolment takes effect.
//!
//! Limits: times are printed in UTC; the QR code needs a terminal with Unicode block characters
//! (the URI and the base32 secret are printed too).

use std::io::{BufRead, IsTerminal, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Subcommand;
use postfach_auth::network::AddressKey;
use postfach_auth::totp::{self, TotpSecret};
use postfach_auth::{app_password, password};
use postfach_secret::Secret;
use postfach_store::{AccountStore, PasswordPlusCode, ScramCredential, StoreError, TotpSettings};

use crate::admin::find;

/// `postfach user totp …`
#[derive(Debug, Subcommand)]
pub(crate) enum TotpCommand {
    /// Turn on two-factor login (TOTP) for an account: shows an otpauth:// URI and a QR code for
    /// an authenticator app, then asks for the app's current code to confirm. Afterwards the
    /// password alone no longer opens IMAP; clients use app passwords (or, with
    /// --allow-password-plus-code, the password followed by the current code).
    Enable {
        /// Login name.
        name: String,
        /// Also accept the password with the current 6-digit code appended ("secret123456").
        #[arg(long)]
        allow_password_plus_code: bool,
        /// The confirming code (instead of asking on standard input).
        #[arg(long, value_name = "CODE")]
        code: Option<String>,
    },
    /// Turn two-factor login off (also cancels a pending enrolment).
    Disable {
        /// Login name.
        name: String,
    },
}

/// `postfach user app-password …`
#[derive(Debug, Subcommand)]
pub(crate) enum AppPasswordCommand {
    /// Create an app password for one device or program; it is shown once.
    Add {
        /// Login name.
        name: String,
        /// What it is for ("iPhone", "Thunderbird at work"); unique per account.
        #[arg(long)]
        label: String,
    },
    /// Show an account's app passwords: label, created, last used, and from which address.
    List {
        /// Login name.
        name: String,
        /// Print one JSON document: {"app_passwords": [{"label", "created", "last_used",
        /// "last_address"}]} (times RFC 3339, UTC; null when never used).
        #[arg(long)]
        json: bool,
    },
    /// Revoke an app password; sessions opened with it end within seconds.
    Revoke {
        /// Login name.
        name: String,
        /// The label given at `add`.
        label: String,
    },
}

/// `postfach ban …`
#[derive(Debug, Subcommand)]
pub(crate) enum BanCommand {
    /// Show the client addresses blocked after failed logins, with the end of each block.
    List {
        /// Print one JSON document: {"blocks": [{"address", "until", "reason"}]} (until:
        /// RFC 3339, UTC).
        #[arg(long)]
        json: bool,
    },
    /// Lift the block of an address (an IPv6 address lifts its /64).
    Remove {
        /// The address, as `ban list` shows it.
        address: String,
    },
}

/// Longest code line read from standard input.
const MAX_CODE_LINE: u64 = 64;

/// Runs a `user totp` command.
pub(crate) async fn totp(
    command: TotpCommand,
    accounts: &dyn AccountStore,
    issuer: &str,
) -> anyhow::Result<()> {
    match command {
        TotpCommand::Enable { name, allow_password_plus_code, code } => {
            let plus =
                if allow_password_plus_code { PasswordPlusCode::Allowed } else { PasswordPlusCode::Refused };
            totp_enable(accounts, &name, plus, code, issuer).await
        }
        TotpCommand::Disable { name } => {
            let account = find(accounts, &name).await?;
            let had = accounts.totp(account.id).await.context("reading the TOTP settings")?;
            accounts
                .set_totp(account.id, None)
                .await
                .with_context(|| format!("turning TOTP off for {name}"))?;
            match had {
                Some(t) if t.confirmed => eprintln!("postfach: two-factor login disabled for {name}"),
                Some(_) => eprintln!("postfach: pending two-factor enrolment of {name} cancelled"),
                None => eprintln!("postfach: two-factor login was not enabled for {name}"),
            }
            Ok(())
        }
    }
}

async fn totp_enable(
    accounts: &dyn AccountStore,
    name: &str,
    plus: PasswordPlusCode,
    code: Option<String>,
    issuer: &str,
) -> anyhow::Result<()> {
    let account = find(accounts, name).await?;
    let existing = accounts.totp(account.id).await.context("reading the TOTP settings")?;
    let pending = match existing {
        Some(t) if t.confirmed => {
            bail!("two-factor login is already enabled for {name}; `postfach user totp disable {name}` first")
        }
        Some(t) => t,
        None => {
            let secret = TotpSecret::generate().map_err(|e| anyhow::anyhow!(e))?;
            let pending = TotpSettings {
                secret: secret.as_bytes().to_vec(),
                confirmed: false,
                password_plus_code: plus,
                last_step: None,
                created: unix_now(),
            };
            accounts.set_totp(account.id, Some(&pending)).await.context("storing the TOTP secret")?;
            pending
        }
    };
    let secret = TotpSecret::from_bytes(pending.secret.clone());
    let uri = secret.uri(issuer, &account.name);
    let mut out = String::new();
    out.push_str(&format!("Scan this with an authenticator app, or enter the key by hand.\n\n{uri}\n\n"));
    out.push_str(&qr(&uri)?);
    out.push_str(&format!("\nKey (base32): {}\n", secret.to_base32()));
    print!("{out}");
    std::io::stdout().flush().context("writing to standard output")?;

    let code = match code {
        Some(c) => c,
        None => read_code()?,
    };
    let code = code.trim();
    if code.is_empty() {
        bail!("no code entered; the enrolment of {name} stays pending: run this command again to confirm");
    }
    let Some(step) =
        totp::verify(&secret, code.as_bytes(), SystemTime::now().duration_since(UNIX_EPOCH)?, None)
    else {
        bail!(
            "the code does not match (is the phone's clock right?); the enrolment of {name} stays pending: \
             run this command again with a fresh code"
        );
    };
    // The confirming code's step counts as used, so it cannot also open a session.
    let confirmed =
        TotpSettings { confirmed: true, password_plus_code: plus, last_step: Some(step), ..pending };
    accounts.set_totp(account.id, Some(&confirmed)).await.context("enabling TOTP")?;
    let how = match plus {
        PasswordPlusCode::Allowed => "app passwords, or the password followed by the current code",
        PasswordPlusCode::Refused => "app passwords (`postfach user app-password add`)",
    };
    eprintln!("postfach: two-factor login enabled for {name}; IMAP clients now log in with {how}");
    Ok(())
}

/// The QR code of `text`, drawn with Unicode half blocks (light modules as blocks, which reads
/// well on the dark background most terminals have).
fn qr(text: &str) -> anyhow::Result<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).context("drawing the QR code")?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build()
        + "\n")
}

/// Reads the confirming code: prompted on a terminal, else the first line of standard input.
fn read_code() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("Code shown by the app: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    std::io::stdin().lock().take(MAX_CODE_LINE).read_line(&mut line).context("reading the code")?;
    Ok(line)
}

/// Runs a `user app-password` command.
pub(crate) async fn app_password(
    command: AppPasswordCommand,
    accounts: &dyn AccountStore,
) -> anyhow::Result<()> {
    match command {
        AppPasswordCommand::Add { name, label } => {
            let account = find(accounts, &name).await?;
            let password = app_password::generate().map_err(|e| anyhow::anyhow!(e))?;
            let hash = app_password::hash(&password).map_err(|e| anyhow::anyhow!(e))?;
            match accounts.add_app_password(account.id, &label, &hash).await {
                Ok(_) => {}
                Err(StoreError::AlreadyExists) => {
                    bail!("{name} already has an app password labelled {label:?}; revoke it first")
                }
                Err(e) => return Err(e).with_context(|| format!("adding an app password for {name}")),
            }
            println!("{}", app_password::display(&password));
            eprintln!(
                "postfach: app password {label:?} added for {name}. It is shown only this once; \
                 enter it in the client instead of the account password (spaces are optional)."
            );
            Ok(())
        }
        AppPasswordCommand::List { name, json: true } => {
            let account = find(accounts, &name).await?;
            let all = accounts.app_passwords(account.id).await.context("listing app passwords")?;
            let list: Vec<serde_json::Value> = all
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "label": p.label,
                        "created": crate::admin_output::rfc3339(p.created),
                        "last_used": p.last_used.map(crate::admin_output::rfc3339),
                        "last_address": p.last_address,
                    })
                })
                .collect();
            crate::admin_output::print_json(&serde_json::json!({ "app_passwords": list }))
        }
        AppPasswordCommand::List { name, json: false } => {
            let account = find(accounts, &name).await?;
            let all = accounts.app_passwords(account.id).await.context("listing app passwords")?;
            if all.is_empty() {
                eprintln!("postfach: {name} has no app passwords");
                return Ok(());
            }
            let width = all.iter().map(|p| p.label.chars().count()).max().unwrap_or(0).max(5);
            let mut text =
                format!("{:width$}  {:19}  {:19}  FROM\n", "LABEL", "CREATED (UTC)", "LAST USED (UTC)");
            for p in all {
                text.push_str(&format!(
                    "{:width$}  {:19}  {:19}  {}\n",
                    p.label,
                    format_time(p.created),
                    p.last_used.map_or_else(|| "never".to_owned(), format_time),
                    p.last_address.as_deref().unwrap_or("-"),
                ));
            }
            print!("{text}");
            Ok(())
        }
        AppPasswordCommand::Revoke { name, label } => {
            let account = find(accounts, &name).await?;
            match accounts.revoke_app_password(account.id, &label).await {
                Ok(()) => {
                    eprintln!(
                        "postfach: app password {label:?} of {name} revoked; its sessions end within seconds"
                    );
                    Ok(())
                }
                Err(StoreError::NotFound) => bail!("{name} has no app password labelled {label:?}"),
                Err(e) => Err(e).with_context(|| format!("revoking an app password of {name}")),
            }
        }
    }
}

/// Runs a `ban` command.
pub(crate) async fn ban(command: BanCommand, accounts: &dyn AccountStore) -> anyhow::Result<()> {
    let now = unix_now();
    match command {
        BanCommand::List { json: true } => {
            let blocks = accounts.address_blocks(now).await.context("listing blocked addresses")?;
            let blocks: Vec<serde_json::Value> = blocks
                .iter()
                .map(|b| {
                    serde_json::json!({
                        "address": b.address,
                        "until": crate::admin_output::rfc3339(b.until),
                        "reason": b.reason,
                    })
                })
                .collect();
            crate::admin_output::print_json(&serde_json::json!({ "blocks": blocks }))
        }
        BanCommand::List { json: false } => {
            let blocks = accounts.address_blocks(now).await.context("listing blocked addresses")?;
            if blocks.is_empty() {
                eprintln!("postfach: no address is blocked");
                return Ok(());
            }
            let width = blocks.iter().map(|b| b.address.len()).max().unwrap_or(0).max(7);
            let mut text = format!("{:width$}  {:19}  REASON\n", "ADDRESS", "UNTIL (UTC)");
            for b in blocks {
                text.push_str(&format!("{:width$}  {:19}  {}\n", b.address, format_time(b.until), b.reason));
            }
            print!("{text}");
            Ok(())
        }
        BanCommand::Remove { address } => {
            let key: AddressKey = address.parse()?;
            if accounts.unblock_address(&key.to_string(), now).await.context("lifting the block")? {
                eprintln!("postfach: {key} may log in again");
                Ok(())
            } else {
                bail!("{key} is not blocked")
            }
        }
    }
}

/// The argon2id hash and the SCRAM verifier of a new password, computed on the blocking pool
/// (both are deliberately slow). The [`Secret`] moves there and is wiped when they are done.
pub(crate) async fn password_credentials(password: Secret) -> anyhow::Result<(String, ScramCredential)> {
    let made =
        tokio::task::spawn_blocking(move || password::hash_with_scram(&password)).await.context("hashing")?;
    made.map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC (proleptic Gregorian calendar, H. Hinnant's `civil_from_days`).
pub(crate) fn format_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_time(1_234_567_890), "2009-02-13 23:31:30");
        assert_eq!(format_time(4_102_444_799), "2099-12-31 23:59:59");
        assert_eq!(format_time(-1), "1969-12-31 23:59:59");
    }

    #[test]
    fn qr_codes_are_drawn_with_blocks() {
        let art = qr("otpauth://totp/Postfach:alice?secret=GEZDGNBVGY3TQOJQ").unwrap_or_default();
        assert!(art.lines().count() > 10, "{art}");
        assert!(art.contains('\u{2588}') || art.contains('\u{2580}'), "{art}");
    }
}
