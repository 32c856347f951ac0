//! `postfach mailbox list|status|create|delete`, `postfach search` and `postfach expunge`: an
//! account's mailboxes and messages, straight through the store's traits.
//!
//! They work while the server runs (SQLite takes several processes). The server's sessions read
//! mailbox lists and counters from the store, so they see created and deleted mailboxes at
//! once; `expunge` also tells a running server over its control socket, so a client idling in
//! the mailbox hears of the EXPUNGE at once (without a server there is nobody to tell).
//!
//! Names on the command line are account names (users and teams alike) and mailbox names as
//! their owner sees them (`INBOX`, `Archive/2026`). Queries are IMAP SEARCH keys
//! (`admin_query`).
//!
//! Limits: `search` fetches what it prints [`FETCH_CHUNK`] messages at a time, so memory does
//! not grow with the number of matches; its `--json` document is written as it goes (a failure
//! half-way leaves it cut off, and the exit code is 1).

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use postfach_store::{
    Account, AccountStore, FetchWant, MailStore, MailboxInfo, MailboxName, MessageMeta, SpecialUse,
    StoreError, SystemFlags, Uid, UidSet,
};
use serde::Serialize;

use crate::admin_output::{print_json, rfc3339, table};
use crate::admin_query::Query;
use crate::control;
use crate::quota::human_bytes;

/// Messages fetched (and printed) at a time by `search`.
const FETCH_CHUNK: usize = 256;

/// `postfach mailbox list|status|create|delete` (beside `seen-mode`, in `admin_share`).
#[derive(Debug, Subcommand)]
pub(crate) enum MailboxAdmin {
    /// List an account's mailboxes: name, special use, messages, unseen, size, subscribed.
    List {
        /// The owner (user or team).
        account: String,
        /// Print one JSON document: {"account", "mailboxes": [{name, special_use, messages,
        /// unseen, size, subscribed}]}.
        #[arg(long)]
        json: bool,
    },
    /// Show a mailbox's counters: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, MESSAGES, UNSEEN, SIZE,
    /// DELETED.
    Status {
        /// The owner (user or team).
        account: String,
        /// The mailbox, as its owner names it.
        mailbox: String,
        /// Print one JSON document with those counters in lower case.
        #[arg(long)]
        json: bool,
    },
    /// Create a mailbox, and its missing parents (`Projects/2027` makes `Projects` too).
    Create {
        /// The owner (user or team).
        account: String,
        /// The new mailbox's name; `/` separates levels.
        mailbox: String,
        /// An RFC 6154 special use: \Archive, \Drafts, \Junk, \Sent, \Trash, \Flagged or \All.
        #[arg(long, value_name = "USE")]
        special_use: Option<String>,
        /// Subscribe the owner to it (clients that show subscribed folders only show it then).
        #[arg(long)]
        subscribe: bool,
        /// Print one JSON document: {"account", "mailbox", "created": [names]}.
        #[arg(long)]
        json: bool,
    },
    /// Delete a mailbox with its messages. INBOX cannot be deleted, nor a mailbox with child
    /// mailboxes (delete those first); one that holds messages needs --yes.
    Delete {
        /// The owner (user or team).
        account: String,
        /// The mailbox, as its owner names it.
        mailbox: String,
        /// Delete it although it holds messages (they cannot be brought back).
        #[arg(long)]
        yes: bool,
        /// Print one JSON document: {"account", "mailbox", "messages"}.
        #[arg(long)]
        json: bool,
    },
}

/// `postfach search`
#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// The account (user or team).
    account: String,
    /// IMAP SEARCH keys, e.g. FROM alice SINCE 1-Dec-2026 UNSEEN. An argument with spaces is
    /// one string (SUBJECT 'annual report'); one argument may also hold the whole query.
    #[arg(required = true, value_name = "QUERY")]
    query: Vec<String>,
    /// Search only this mailbox (default: every mailbox of the account).
    #[arg(long, value_name = "NAME")]
    mailbox: Option<String>,
    /// Print one JSON document: {"account", "query", "matches": [{mailbox, uid, date, from,
    /// subject, size, flags}], "count"}.
    #[arg(long)]
    json: bool,
}

/// `postfach expunge`
#[derive(Debug, Args)]
pub(crate) struct ExpungeArgs {
    /// The account (user or team).
    account: String,
    /// The mailbox, as its owner names it.
    mailbox: String,
    /// IMAP SEARCH keys choosing the messages to remove, e.g. BEFORE 1-Jan-2026 SEEN.
    #[arg(required = true, value_name = "QUERY")]
    query: Vec<String>,
    /// Only list what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON document: {"account", "mailbox", "query", "dry_run", "matched",
    /// "expunged", "uids"}; with --dry-run also "matches", as `search` lists them.
    #[arg(long)]
    json: bool,
}

/// The stores these commands use.
#[derive(Clone, Copy)]
pub(crate) struct Stores<'a> {
    /// Accounts by name.
    pub(crate) accounts: &'a dyn AccountStore,
    /// Mailboxes and messages.
    pub(crate) mail: &'a dyn MailStore,
}

// --- mailbox ---------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct MailboxRow {
    name: String,
    special_use: Option<&'static str>,
    messages: u32,
    unseen: u32,
    size: u64,
    subscribed: bool,
}

#[derive(Debug, Serialize)]
struct MailboxList {
    account: String,
    mailboxes: Vec<MailboxRow>,
}

#[derive(Debug, Serialize)]
struct MailboxStatusOutput {
    account: String,
    mailbox: String,
    uidvalidity: u32,
    uidnext: u32,
    highestmodseq: u64,
    messages: u32,
    unseen: u32,
    size: u64,
    deleted: u32,
}

#[derive(Debug, Serialize)]
struct Created {
    account: String,
    mailbox: String,
    created: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Deleted {
    account: String,
    mailbox: String,
    messages: u32,
}

impl Stores<'_> {
    /// Runs a `mailbox list|status|create|delete` command.
    pub(crate) async fn mailbox(self, command: MailboxAdmin) -> anyhow::Result<()> {
        match command {
            MailboxAdmin::List { account, json } => self.list(&account, json).await,
            MailboxAdmin::Status { account, mailbox, json } => {
                let (owner, info) = self.mailbox_named(&account, &mailbox).await?;
                let st = self.mail.status(info.id).await.context("reading the mailbox's counters")?;
                let out = MailboxStatusOutput {
                    account: owner.name,
                    mailbox: info.name,
                    uidvalidity: st.uid_validity.0,
                    uidnext: st.uid_next.get(),
                    highestmodseq: st.highest_modseq.0,
                    messages: st.messages,
                    unseen: st.unseen,
                    size: st.size,
                    deleted: st.deleted,
                };
                if json {
                    return print_json(&out);
                }
                let rows = [
                    ("UIDVALIDITY", out.uidvalidity.to_string()),
                    ("UIDNEXT", out.uidnext.to_string()),
                    ("HIGHESTMODSEQ", out.highestmodseq.to_string()),
                    ("MESSAGES", out.messages.to_string()),
                    ("UNSEEN", out.unseen.to_string()),
                    ("SIZE", format!("{} ({})", out.size, human_bytes(out.size))),
                    ("DELETED", out.deleted.to_string()),
                ];
                let rows: Vec<Vec<String>> = rows.into_iter().map(|(k, v)| vec![k.to_owned(), v]).collect();
                print!("{}", table(&["COUNTER", "VALUE"], &rows));
                Ok(())
            }
            MailboxAdmin::Create { account, mailbox, special_use, subscribe, json } => {
                self.create(&account, &mailbox, special_use.as_deref(), subscribe, json).await
            }
            MailboxAdmin::Delete { account, mailbox, yes, json } => {
                self.delete(&account, &mailbox, yes, json).await
            }
        }
    }

    async fn list(self, account: &str, json: bool) -> anyhow::Result<()> {
        let owner = self.account_named(account).await?;
        let mailboxes = self.mail.list_mailboxes(owner.id).await.context("listing the mailboxes")?;
        let mut rows = Vec::with_capacity(mailboxes.len());
        for info in mailboxes {
            let st = match self.mail.status(info.id).await {
                Ok(st) => st,
                // Deleted between the list and now.
                Err(StoreError::NotFound) => continue,
                Err(e) => return Err(e).context("reading a mailbox's counters"),
            };
            rows.push(MailboxRow {
                name: info.name,
                special_use: info.special_use.map(SpecialUse::as_str),
                messages: st.messages,
                unseen: st.unseen,
                size: st.size,
                subscribed: info.subscribed,
            });
        }
        if json {
            return print_json(&MailboxList { account: owner.name, mailboxes: rows });
        }
        let cells: Vec<Vec<String>> = rows
            .into_iter()
            .map(|r| {
                vec![
                    r.name,
                    r.special_use.unwrap_or("-").to_owned(),
                    r.messages.to_string(),
                    r.unseen.to_string(),
                    human_bytes(r.size),
                    if r.subscribed { "yes" } else { "no" }.to_owned(),
                ]
            })
            .collect();
        print!("{}", table(&["NAME", "SPECIAL-USE", "MESSAGES", "UNSEEN", "SIZE", "SUBSCRIBED"], &cells));
        Ok(())
    }

    async fn create(
        self,
        account: &str,
        mailbox: &str,
        special_use: Option<&str>,
        subscribe: bool,
        json: bool,
    ) -> anyhow::Result<()> {
        let special_use = match special_use {
            None => None,
            Some(text) => {
                let with_backslash =
                    if text.starts_with('\\') { text.to_owned() } else { format!("\\{text}") };
                match SpecialUse::parse(&with_backslash) {
                    Some(u) => Some(u),
                    None => bail!(
                        "not a special use: {text:?} (\\Archive, \\Drafts, \\Junk, \\Sent, \\Trash, \\Flagged, \\All)"
                    ),
                }
            }
        };
        let owner = self.account_named(account).await?;
        let name = mailbox_name(mailbox)?;
        name.check_creatable().map_err(|e| anyhow::anyhow!("{mailbox:?} cannot be a mailbox's name: {e}"))?;
        if name.is_inbox() {
            bail!("INBOX always exists");
        }
        if self.mail.mailbox_by_name(owner.id, &name).await.context("looking up the mailbox")?.is_some() {
            bail!("{} has a mailbox {name} already", owner.name);
        }
        // RFC 9051 §6.3.4, as CREATE does: the missing superiors first.
        let mut created = Vec::new();
        for superior in name.ancestors() {
            if self.mail.mailbox_by_name(owner.id, &superior).await.context("looking up a parent")?.is_none()
            {
                match self.mail.create_mailbox(owner.id, &superior, None).await {
                    Ok(_) => created.push(superior.to_string()),
                    Err(StoreError::AlreadyExists) => {}
                    Err(e) => return Err(refusal(e, &superior)),
                }
            }
        }
        match self.mail.create_mailbox(owner.id, &name, special_use).await {
            Ok(_) => created.push(name.to_string()),
            Err(StoreError::AlreadyExists) => bail!("{} has a mailbox {name} already", owner.name),
            Err(e) => return Err(refusal(e, &name)),
        }
        if subscribe {
            self.mail.set_subscribed(owner.id, &name, true).await.context("subscribing")?;
        }
        if json {
            return print_json(&Created { account: owner.name, mailbox: name.to_string(), created });
        }
        eprintln!("postfach: created {}'s {}", owner.name, created.join(", "));
        Ok(())
    }

    async fn delete(self, account: &str, mailbox: &str, yes: bool, json: bool) -> anyhow::Result<()> {
        let (owner, info) = self.mailbox_named(account, mailbox).await?;
        if info.name == "INBOX" {
            bail!("INBOX cannot be deleted");
        }
        let all = self.mail.list_mailboxes(owner.id).await.context("listing the mailboxes")?;
        let prefix = format!("{}{}", info.name, MailboxName::DELIMITER);
        let children: Vec<&str> =
            all.iter().filter(|m| m.name.starts_with(&prefix)).map(|m| m.name.as_str()).collect();
        if !children.is_empty() {
            bail!("{} has child mailboxes ({}); delete them first", info.name, children.join(", "));
        }
        let messages = self.mail.status(info.id).await.context("reading the mailbox's counters")?.messages;
        if messages > 0 && !yes {
            bail!("{} holds {messages} message(s); add --yes to delete them with it", info.name);
        }
        self.mail
            .delete_mailbox(owner.id, info.id)
            .await
            .with_context(|| format!("deleting {}", info.name))?;
        if json {
            return print_json(&Deleted { account: owner.name, mailbox: info.name, messages });
        }
        eprintln!("postfach: deleted {}'s {} ({messages} message(s))", owner.name, info.name);
        Ok(())
    }

    // --- looking things up ----------------------------------------------------------------------

    async fn account_named(&self, name: &str) -> anyhow::Result<Account> {
        match self.accounts.account_by_name(name).await.with_context(|| format!("looking up {name}"))? {
            Some(account) => Ok(account),
            None => bail!("no such account: {name}"),
        }
    }

    async fn mailbox_named(&self, account: &str, mailbox: &str) -> anyhow::Result<(Account, MailboxInfo)> {
        let owner = self.account_named(account).await?;
        let name = mailbox_name(mailbox)?;
        match self.mail.mailbox_by_name(owner.id, &name).await.context("looking up the mailbox")? {
            Some(info) => Ok((owner, info)),
            None => bail!("{} has no mailbox {mailbox:?}", owner.name),
        }
    }
}

fn mailbox_name(text: &str) -> anyhow::Result<MailboxName> {
    let trimmed = text.trim_end_matches(MailboxName::DELIMITER);
    MailboxName::new(trimmed).map_err(|e| anyhow::anyhow!("not a mailbox name: {text:?} ({e})"))
}

/// A store's refusal to create `name`, in words.
fn refusal(e: StoreError, name: &MailboxName) -> anyhow::Error {
    match e {
        StoreError::InvalidName(why) => anyhow::anyhow!("{name} cannot be a mailbox's name: {why}"),
        StoreError::Limit(why) => anyhow::anyhow!("cannot create {name}: {why}"),
        StoreError::OverQuota(_) => {
            anyhow::anyhow!("cannot create {name}: the account's mailbox quota is full")
        }
        e => anyhow::Error::new(e).context(format!("creating {name}")),
    }
}

// --- search and expunge ------------------------------------------------------------------------

/// One message found.
#[derive(Debug, Serialize)]
struct Match {
    mailbox: String,
    uid: u32,
    /// Internal date (when it arrived), RFC 3339 UTC.
    date: String,
    from: String,
    subject: String,
    size: u32,
    flags: Vec<String>,
}

impl Match {
    fn of(mailbox: &str, meta: &MessageMeta) -> Match {
        let (from, subject) = match &meta.summary {
            Some(summary) => {
                let from = summary.envelope.from.iter().find(|a| a.host.is_some()).map(|a| {
                    let text = |v: &Option<Vec<u8>>| {
                        String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into_owned()
                    };
                    let address = format!("{}@{}", text(&a.mailbox), text(&a.host));
                    match &a.name {
                        Some(name) => format!("{} <{address}>", postfach_message::decode_header_text(name)),
                        None => address,
                    }
                });
                let subject = summary.subject.clone().or_else(|| {
                    summary.envelope.subject.as_deref().map(|s| String::from_utf8_lossy(s).into_owned())
                });
                (from.unwrap_or_default(), subject.unwrap_or_default())
            }
            None => (String::new(), String::new()),
        };
        let mut flags: Vec<String> = SystemFlags::ALL
            .iter()
            .filter(|(bit, _)| meta.flags.system.contains(*bit))
            .map(|(_, name)| (*name).to_owned())
            .collect();
        flags.extend(meta.flags.keywords.iter().cloned());
        Match {
            mailbox: mailbox.to_owned(),
            uid: meta.uid.get(),
            date: rfc3339(meta.internal_date.unix),
            from,
            subject,
            size: meta.size,
            flags,
        }
    }

    fn cells(self) -> Vec<String> {
        vec![self.mailbox, self.uid.to_string(), self.date, self.from, self.subject]
    }
}

/// Where matches go as they are found: a table (header once, columns that only grow), or the
/// `matches` array of a JSON document.
struct Listing {
    json: bool,
    count: u64,
    widths: Vec<usize>,
}

const MATCH_HEADER: [&str; 5] = ["MAILBOX", "UID", "DATE", "FROM", "SUBJECT"];

impl Listing {
    /// Starts the listing; `head` is the JSON document's opening (`{"account":...,`).
    fn start(json: bool, head: &str) -> anyhow::Result<Listing> {
        let listing = Listing { json, count: 0, widths: MATCH_HEADER.iter().map(|h| h.len()).collect() };
        if json {
            write_out(&format!("{head}\"matches\":["))?;
        }
        Ok(listing)
    }

    fn add(&mut self, matches: Vec<Match>) -> anyhow::Result<()> {
        if matches.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        if self.json {
            for m in &matches {
                if self.count > 0 {
                    text.push(',');
                }
                text.push_str(&serde_json::to_string(m).context("writing JSON")?);
                self.count += 1;
            }
            return write_out(&text);
        }
        let first = self.count == 0;
        self.count += matches.len() as u64;
        let rows: Vec<Vec<String>> = matches.into_iter().map(Match::cells).collect();
        for row in &rows {
            for (width, cell) in self.widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = MATCH_HEADER.iter().map(|h| (*h).to_owned()).collect();
        let lines = if first {
            std::iter::once(&header).chain(&rows).collect::<Vec<_>>()
        } else {
            rows.iter().collect()
        };
        for row in lines {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&self.widths).enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  "));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        write_out(&text)
    }

    /// Ends the listing; `tail` goes into the JSON document after the array (`,"count":3}`).
    fn finish(&self, tail: &str) -> anyhow::Result<()> {
        if self.json {
            write_out(&format!("]{tail}\n"))?;
        }
        Ok(())
    }
}

fn write_out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).context("writing to standard output")
}

/// A JSON string (for the hand-written parts of streamed documents).
fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

impl Stores<'_> {
    /// The UIDs in `mailbox` that match `query`, ascending.
    async fn matching(&self, mailbox: &MailboxInfo, query: &Query) -> anyhow::Result<Vec<Uid>> {
        let status = self.mail.status(mailbox.id).await.context("reading the mailbox's counters")?;
        let found = self.mail.search(mailbox.id, &query.criterion(status.uid_next)?).await;
        found.with_context(|| format!("searching {}", mailbox.name))
    }

    /// Fetches and lists `uids` of `mailbox`, a chunk at a time.
    async fn list_matches(
        &self,
        listing: &mut Listing,
        mailbox: &MailboxInfo,
        uids: &[Uid],
    ) -> anyhow::Result<()> {
        for chunk in uids.chunks(FETCH_CHUNK) {
            let set = UidSet::from_uids(chunk.iter().copied());
            let metas = self
                .mail
                .fetch(mailbox.id, &set, FetchWant { summary: true })
                .await
                .context("reading the messages found")?;
            listing.add(metas.iter().map(|m| Match::of(&mailbox.name, m)).collect())?;
        }
        Ok(())
    }

    /// `search ACCOUNT QUERY [--mailbox NAME]`: every match, with its mailbox, UID, date, sender
    /// and subject.
    pub(crate) async fn search(self, args: SearchArgs) -> anyhow::Result<()> {
        let query = Query::parse(&args.query)?;
        let (owner, mailboxes) = match &args.mailbox {
            Some(name) => {
                let (owner, mailbox) = self.mailbox_named(&args.account, name).await?;
                (owner, vec![mailbox])
            }
            None => {
                let owner = self.account_named(&args.account).await?;
                let all = self.mail.list_mailboxes(owner.id).await.context("listing the mailboxes")?;
                (owner, all)
            }
        };
        let head =
            format!("{{\"account\":{},\"query\":{},", json_string(&owner.name), json_string(query.text()));
        let mut listing = Listing::start(args.json, &head)?;
        for mailbox in &mailboxes {
            let found = match self.matching(mailbox, &query).await {
                Ok(found) => found,
                // Deleted since the list was read.
                Err(e) if matches!(e.downcast_ref::<StoreError>(), Some(StoreError::NotFound)) => continue,
                Err(e) => return Err(e),
            };
            self.list_matches(&mut listing, mailbox, &found).await?;
        }
        listing.finish(&format!(",\"count\":{}}}", listing.count))?;
        if !args.json && listing.count == 0 {
            eprintln!("postfach: no message matches");
        }
        Ok(())
    }

    /// `expunge ACCOUNT MAILBOX QUERY [--dry-run]`: removes the matches (flagged `\Deleted` and
    /// expunged in one store call; other messages flagged `\Deleted` stay).
    pub(crate) async fn expunge(self, args: ExpungeArgs, data_dir: &Path) -> anyhow::Result<()> {
        let query = Query::parse(&args.query)?;
        let (owner, mailbox) = self.mailbox_named(&args.account, &args.mailbox).await?;
        let found = self.matching(&mailbox, &query).await?;
        let head = format!(
            "{{\"account\":{},\"mailbox\":{},\"query\":{},\"dry_run\":{},",
            json_string(&owner.name),
            json_string(&mailbox.name),
            json_string(query.text()),
            args.dry_run
        );
        if args.dry_run {
            let mut listing = Listing::start(args.json, &head)?;
            self.list_matches(&mut listing, &mailbox, &found).await?;
            let uids: Vec<u32> = found.iter().map(|u| u.get()).collect();
            let uids = serde_json::to_string(&uids).context("writing JSON")?;
            listing.finish(&format!(",\"matched\":{},\"expunged\":0,\"uids\":{uids}}}", listing.count))?;
            if !args.json {
                println!("would expunge {} message(s) from {}'s {}", listing.count, owner.name, mailbox.name);
            }
            return Ok(());
        }
        let expunged = if found.is_empty() {
            Vec::new()
        } else {
            let set = UidSet::from_uids(found.iter().copied());
            let removed = self.mail.remove_messages(mailbox.id, &set).await;
            removed.with_context(|| format!("expunging from {}", mailbox.name))?
        };
        if !expunged.is_empty() {
            control::tell_changed(data_dir, &[mailbox.id]).await;
        }
        if args.json {
            #[derive(Serialize)]
            struct Expunged<'a> {
                account: &'a str,
                mailbox: &'a str,
                query: &'a str,
                dry_run: bool,
                matched: usize,
                expunged: usize,
                uids: Vec<u32>,
            }
            return print_json(&Expunged {
                account: &owner.name,
                mailbox: &mailbox.name,
                query: query.text(),
                dry_run: false,
                matched: found.len(),
                expunged: expunged.len(),
                uids: expunged.iter().map(|u| u.get()).collect(),
            });
        }
        println!("expunged {} message(s) from {}'s {}", expunged.len(), owner.name, mailbox.name);
        Ok(())
    }
}
