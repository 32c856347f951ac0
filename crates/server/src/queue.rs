//! The outbound queue as the server wires it: the [`Outbox`] delivery queues into, the
//! background [`Sender`] that hands queued mail to the SMTP relay (`[vacation] smtp_relay`)
//! with the `[queue]` settings, and `postfach queue list|flush|delete`.
//!
//! Without a relay nothing is queued (vacation replies are skipped, redirected mail is kept)
//! and no sender runs; entries left from a time with a relay wait, and the start says so.
//!
//! `flush` and `delete` write to the store (so they work with or without a running server)
//! and then nudge the running server over its control socket, so a flushed entry goes at once
//! rather than at the sender's next look ([`postfach_delivery::SenderSettings::poll`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;
use postfach_delivery::{Outbox, Relay, Sender, SenderSettings};
use postfach_store::{QueueEntry, QueueId, QueueStore, Store};
use serde::Serialize;
use tracing::{info, warn};

use crate::admin_output::{print_json, rfc3339, table};
use crate::config::Config;
use crate::control::{self, AskError, Request};
use crate::relay::SmtpRelay;

/// How often the sender looks at the queue when nothing nudges it: entries queued by another
/// process (`postfach deliver`, another node on the same PostgreSQL database) wait at most
/// this long.
pub(crate) const POLL: Duration = Duration::from_secs(10);

/// The outbox delivery queues into, when a relay is configured.
pub(crate) fn outbox(config: &Config, store: &Arc<dyn Store>) -> Option<Outbox> {
    config.vacation.smtp_relay.as_ref()?;
    let queue: Arc<dyn QueueStore> = store.clone();
    Some(Outbox::new(queue, config.queue.lifetime))
}

/// The background sender, when a relay is configured.
pub(crate) fn sender(config: &Config, store: &Arc<dyn Store>, hostname: String) -> Option<Sender> {
    let address = config.vacation.smtp_relay.clone()?;
    let relay: Arc<dyn Relay> = Arc::new(SmtpRelay::new(address, hostname.clone()));
    let queue: Arc<dyn QueueStore> = store.clone();
    let settings = SenderSettings {
        retry_min: config.queue.retry_min,
        retry_max: config.queue.retry_max,
        lifetime: config.queue.lifetime,
        concurrency: config.queue.concurrency,
        poll: POLL,
        hostname,
    };
    Some(Sender::new(queue, relay, settings))
}

/// Logs what waits in the queue at start (and that it cannot go without a relay).
pub(crate) async fn report_at_start(config: &Config, store: &dyn Store) {
    match store.queue_length().await {
        Ok(0) => {}
        Ok(n) if config.vacation.smtp_relay.is_none() => warn!(
            messages = n,
            "the outbound queue holds messages but [vacation] smtp_relay is not set: they wait \
             (`postfach queue list`)"
        ),
        Ok(n) => info!(messages = n, "outbound queue: messages waiting from before"),
        Err(e) => warn!(error = %e, "cannot read the outbound queue"),
    }
}

/// `postfach queue …`
#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// The messages waiting to be sent: id, kind, sender, recipients, size, attempts, next
    /// attempt, last error.
    List {
        /// Print one JSON document: {"queue": [{id, kind, account, from, to, size, created,
        /// next_attempt, attempts, last_error, expires, sending}]}.
        #[arg(long)]
        json: bool,
    },
    /// Try one message (or all) again now, without waiting for its backoff.
    Flush {
        /// The message's id (from `queue list`); all when left out.
        id: Option<i64>,
    },
    /// Drop a message without sending it.
    Delete {
        /// The message's id (from `queue list`).
        id: i64,
    },
}

#[derive(Debug, Serialize)]
struct ListedEntry {
    id: i64,
    kind: &'static str,
    account: Option<String>,
    from: String,
    to: Vec<String>,
    size: u64,
    created: String,
    next_attempt: String,
    attempts: u32,
    last_error: Option<String>,
    expires: String,
    sending: bool,
}

#[derive(Debug, Serialize)]
struct ListOutput {
    queue: Vec<ListedEntry>,
}

/// Runs a `queue` subcommand against the store (the running server, if any, is nudged).
pub(crate) async fn run(command: QueueCommand, config: &Config, store: &dyn Store) -> anyhow::Result<()> {
    let now = crate::cleanup::unix_now();
    match command {
        QueueCommand::List { json } => {
            let entries = store.queue_list().await?;
            let names = account_names(store).await;
            let listed: Vec<ListedEntry> = entries.iter().map(|e| listed(e, &names, now)).collect();
            if json {
                return print_json(&ListOutput { queue: listed });
            }
            if listed.is_empty() {
                eprintln!("postfach: the outbound queue is empty");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = listed
                .iter()
                .map(|e| {
                    vec![
                        e.id.to_string(),
                        e.kind.to_owned(),
                        e.account.clone().unwrap_or_default(),
                        if e.from.is_empty() { "<>".to_owned() } else { e.from.clone() },
                        e.to.join(","),
                        e.size.to_string(),
                        e.attempts.to_string(),
                        if e.sending { "sending".to_owned() } else { e.next_attempt.clone() },
                        e.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &["ID", "KIND", "ACCOUNT", "FROM", "TO", "SIZE", "ATTEMPTS", "NEXT", "LAST ERROR"],
                    &rows
                )
            );
            Ok(())
        }
        QueueCommand::Flush { id } => {
            let n = store.flush_queue(id.map(QueueId), now).await?;
            if let Some(id) = id
                && n == 0
            {
                bail!("no message {id} waits in the outbound queue");
            }
            nudge(config).await;
            eprintln!("postfach: {n} message(s) due now");
            Ok(())
        }
        QueueCommand::Delete { id } => {
            if !store.delete_queued(QueueId(id)).await? {
                bail!("no message {id} waits in the outbound queue");
            }
            eprintln!("postfach: message {id} deleted from the outbound queue");
            Ok(())
        }
    }
}

/// Account names by id, for the list (empty when they cannot be read).
async fn account_names(store: &dyn Store) -> Vec<(i64, String)> {
    store
        .list_accounts()
        .await
        .map(|all| all.into_iter().map(|a| (a.id.0, a.name)).collect())
        .unwrap_or_default()
}

fn listed(e: &QueueEntry, names: &[(i64, String)], now: i64) -> ListedEntry {
    ListedEntry {
        id: e.id.0,
        kind: e.kind.as_str(),
        account: names.iter().find(|(id, _)| *id == e.owner.0).map(|(_, n)| n.clone()),
        from: e.reverse_path.clone(),
        to: e.recipients.clone(),
        size: e.size,
        created: rfc3339(e.created),
        next_attempt: rfc3339(e.next_attempt),
        attempts: e.attempts,
        last_error: e.last_error.clone(),
        expires: rfc3339(e.expires),
        sending: e.leased_until.is_some_and(|until| until > now),
    }
}

/// Tells a running server's sender to look at the queue now.
async fn nudge(config: &Config) {
    match control::ask(&config.data_dir, &Request::QueueFlush).await {
        Ok(_) => {}
        Err(AskError::NotRunning { .. }) => {
            eprintln!("postfach: no server runs here; the messages go when it starts");
        }
        Err(e) => warn!(error = %e, "the running server sends them at its next look at the queue"),
    }
}
