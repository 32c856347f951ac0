//! Quotas (RFC 9208) as the server wires them: sizes in configuration and CLI (`"10G"`), sizes
//! for people (`9.5 MiB`), and the task that turns the store's threshold crossings into warning
//! messages in the owner's INBOX.
//!
//! The store records a crossing of 80, 90 or 100 % in the transaction of the write that crossed
//! it ([`postfach_store::ShareStore::pending_quota_warnings`]); this task only delivers them, so
//! a warning is never lost to a crash and never sent twice: delivering the message and marking
//! the warning done are one transaction of the store
//! ([`postfach_store::ShareStore::deliver_quota_warning`]), and the message does not count
//! against the quota, so it arrives in a full mailbox too.
//!
//! Limits: the task looks every [`WARNING_POLL`], and sooner when a delivery nudges it;
//! warnings are delivered one by one, oldest first. A warning whose delivery fails stays
//! pending and is tried again at the next round.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postfach_store::{
    AccountKind, AccountStore, Flags, NewMessage, QuotaResource, QuotaWarning, ShareStore, StoreResult,
};
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

/// How often the server looks for quota warnings to deliver when nothing nudges it.
pub(crate) const WARNING_POLL: Duration = Duration::from_secs(5);

/// Binary units, largest first: (suffix letter, bytes).
const UNITS: [(char, u64); 5] =
    [('P', 1 << 50), ('T', 1 << 40), ('G', 1 << 30), ('M', 1 << 20), ('K', 1 << 10)];

/// Parses a size: a number of bytes, optionally with a fraction and a binary unit
/// (`K`, `M`, `G`, `T`, `P`; `KB`/`KiB` spellings and a space before the unit are accepted,
/// case does not matter): `"10G"`, `"1.5 GiB"`, `"512m"`, `"1048576"`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let wrong = || format!("not a size: {text:?} (a number with K, M, G or T)");
    let trimmed = text.trim();
    let digits_end = trimmed.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let unit = unit.trim().to_ascii_uppercase();
    let multiplier = match unit.as_str() {
        "" | "B" => 1,
        _ => {
            let letter = unit.chars().next().ok_or_else(wrong)?;
            let rest = &unit[1..];
            if !matches!(rest, "" | "B" | "IB") {
                return Err(wrong());
            }
            UNITS.iter().find(|(l, _)| *l == letter).map(|(_, bytes)| *bytes).ok_or_else(wrong)?
        }
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || fraction.len() > 6 {
        return Err(wrong());
    }
    let whole: u128 = whole.parse().map_err(|_| wrong())?;
    let mut bytes = whole * u128::from(multiplier);
    if !fraction.is_empty() {
        let scale = 10u128.pow(u32::try_from(fraction.len()).map_err(|_| wrong())?);
        let part: u128 = fraction.parse().map_err(|_| wrong())?;
        bytes += part * u128::from(multiplier) / scale;
    }
    u64::try_from(bytes).map_err(|_| format!("{text:?} is too large"))
}

/// A size for people: `512 B`, `10 GiB`, `9.5 MiB` (one decimal, rounded down).
pub(crate) fn human_bytes(bytes: u64) -> String {
    for (letter, unit) in UNITS {
        if bytes >= unit {
            let tenths = u128::from(bytes) * 10 / u128::from(unit);
            return if tenths % 10 == 0 {
                format!("{} {letter}iB", tenths / 10)
            } else {
                format!("{}.{} {letter}iB", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes} B")
}

/// Who quota warnings come from and where the recipients' addresses live.
#[derive(Debug, Clone)]
pub(crate) struct WarningSettings {
    /// The From address (`quota.postmaster`, else `postmaster@<host name>`).
    pub(crate) from: String,
    /// The domain of account names without one (the first `delivery.domains`, else the host
    /// name), for the To line.
    pub(crate) domain: String,
    /// Our host name, for Message-IDs.
    pub(crate) hostname: String,
}

/// The quota-warning task's view of the store.
pub(crate) struct Warner {
    share: Arc<dyn ShareStore>,
    accounts: Arc<dyn AccountStore>,
    settings: WarningSettings,
}

impl Warner {
    /// A warner over the store.
    pub(crate) fn new(
        share: Arc<dyn ShareStore>,
        accounts: Arc<dyn AccountStore>,
        settings: WarningSettings,
    ) -> Self {
        Self { share, accounts, settings }
    }

    /// Runs until `stop` turns true: delivers pending warnings every [`WARNING_POLL`], and at
    /// once when `nudge` is notified (after a delivery).
    pub(crate) async fn run(self, nudge: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.deliver_pending().await {
                warn!(error = %e, "cannot read or deliver quota warnings; trying again later");
            }
            tokio::select! {
                () = tokio::time::sleep(WARNING_POLL) => {}
                () = nudge.notified() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// Delivers every pending warning, oldest first; returns how many were delivered.
    pub(crate) async fn deliver_pending(&self) -> StoreResult<usize> {
        let pending = self.share.pending_quota_warnings().await?;
        if pending.is_empty() {
            return Ok(0);
        }
        // Names by id; only read when there is something to send.
        let accounts = self.accounts.list_accounts().await?;
        let mut delivered = 0;
        for warning in pending {
            let Some(account) = accounts.iter().find(|a| a.id == warning.account) else {
                debug!(id = warning.id, "quota warning for an account that no longer exists");
                continue;
            };
            let to = match account.kind {
                AccountKind::Team => self.share.team_address(account.id).await?,
                AccountKind::User => None,
            }
            .unwrap_or_else(|| address_of(&account.name, &self.settings.domain));
            let text = warning_message(&warning, &account.name, &to, &self.settings, unix_now());
            let message =
                NewMessage { raw: text.into_bytes().into(), flags: Flags::default(), internal_date: None };
            match self.share.deliver_quota_warning(warning.id, message).await {
                Ok(()) => {
                    delivered += 1;
                    info!(account = %account.name, resource = ?warning.resource, percent = warning.percent,
                          "quota warning delivered");
                }
                Err(e) => warn!(account = %account.name, error = %e, "cannot deliver a quota warning"),
            }
        }
        Ok(delivered)
    }
}

/// An account's mail address: its name when that is one, else `name@domain`.
fn address_of(name: &str, domain: &str) -> String {
    if name.contains('@') { name.to_owned() } else { format!("{name}@{domain}") }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The warning as an RFC 5322 message (CRLF line ends, plain UTF-8 text). `Auto-Submitted`
/// (RFC 3834) keeps vacation responders from answering it.
pub(crate) fn warning_message(
    warning: &QuotaWarning,
    account: &str,
    to: &str,
    settings: &WarningSettings,
    now: i64,
) -> String {
    let usage = match warning.resource {
        QuotaResource::Storage => format!(
            "Your mailbox {account} holds {} of mail; its limit is {}.",
            human_bytes(warning.used),
            human_bytes(warning.limit)
        ),
        QuotaResource::Message => {
            format!("Your mailbox {account} holds {} messages; its limit is {}.", warning.used, warning.limit)
        }
        QuotaResource::Mailbox => {
            format!("Your mailbox {account} has {} folders; its limit is {}.", warning.used, warning.limit)
        }
    };
    let advice = if warning.percent >= 100 {
        "It is full: new mail is refused (senders are told to try again later, or get it back) \
         until you delete some."
    } else {
        "When it is full, new mail is refused until you delete some."
    };
    let lines = [
        format!("From: Postmaster <{}>", settings.from),
        format!("To: <{to}>"),
        format!("Subject: Your mailbox is {} % full", warning.percent),
        format!("Date: {}", postfach_delivery::trace::rfc5322_date(now)),
        format!("Message-ID: <quota-{}-{now}@{}>", warning.id, settings.hostname),
        "Auto-Submitted: auto-generated".to_owned(),
        "MIME-Version: 1.0".to_owned(),
        "Content-Type: text/plain; charset=utf-8".to_owned(),
        "Content-Transfer-Encoding: 8bit".to_owned(),
        String::new(),
        usage,
        String::new(),
        advice.to_owned(),
        "Delete or archive mail you no longer need, and empty the Trash.".to_owned(),
        String::new(),
    ];
    lines.join("\r\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postfach_store::AccountId;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("10 GiB"), Ok(10 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("2kb"), Ok(2048));
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("7 B"), Ok(7));
        for bad in ["", "G", "10X", "10GG", "1.2.3G", "-1G", "ten", "10 Gibibytes", "1.1234567G"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("99999999999P").unwrap_err().contains("too large"));
    }

    #[test]
    fn sizes_print() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1 KiB");
        assert_eq!(human_bytes(10 << 30), "10 GiB");
        assert_eq!(human_bytes(9_961_472), "9.5 MiB");
        assert_eq!(parse_size(&human_bytes(3 << 40)), Ok(3 << 40));
    }

    #[test]
    fn the_warning_is_a_message() {
        let warning = QuotaWarning {
            id: 7,
            account: AccountId(1),
            resource: QuotaResource::Storage,
            percent: 90,
            used: 9_961_472,
            limit: 10 << 20,
        };
        let settings = WarningSettings {
            from: "postmaster@mail.test".into(),
            domain: "example.org".into(),
            hostname: "mail.test".into(),
        };
        let to = address_of("alice", &settings.domain);
        assert_eq!(to, "alice@example.org");
        assert_eq!(address_of("bob@example.net", "example.org"), "bob@example.net");
        let text = warning_message(&warning, "alice", &to, &settings, 0);
        assert!(text.starts_with("From: Postmaster <postmaster@mail.test>\r\nTo: <alice@example.org>\r\n"));
        assert!(text.contains("\r\nSubject: Your mailbox is 90 % full\r\n"), "{text}");
        assert!(text.contains("\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\n"), "{text}");
        assert!(text.contains("\r\nMessage-ID: <quota-7-0@mail.test>\r\n"), "{text}");
        assert!(text.contains("holds 9.5 MiB of mail; its limit is 10 MiB."), "{text}");
        let summary = postfach_message::parse(text.as_bytes());
        assert_eq!(summary.subject.as_deref(), Some("Your mailbox is 90 % full"));
        assert_eq!(summary.envelope.to.len(), 1);
    }
}
