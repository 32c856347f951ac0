//! The sharing commands of the CLI: `team …`, `group …`, `acl …` (RFC 4314), `quota …`
//! (RFC 9208) and `mailbox seen-mode …` (the other `mailbox` commands are `admin_mailbox`'s),
//! straight in the store of the data directory (also
//! while the server runs: ACL and membership changes reach live sessions through the store).
//!
//! Names on the command line are account names (users and teams alike) and mailbox names as
//! their owner sees them (`support INBOX`, not `Shared/support/INBOX`). Every unknown account,
//! mailbox, right or identifier is refused with one line on stderr and exit code 1; nothing is
//! changed then.
//!
//! Limits: the rules for names, rights and quotas belong to the store; this module only parses
//! the command line and turns the store's answers into sentences.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use clap::Subcommand;
use postfach_store::{
    Account, AccountKind, AccountStore, Grantee, Identifier, MailStore, MailboxInfo, MailboxName, Quota,
    QuotaLimits, Rights, SeenMode, ShareStore, StoreError,
};

use crate::quota::{human_bytes, parse_size};

/// The rights a new team member gets unless `--rights` says otherwise: everything but `a`
/// (administer: change the ACL), so members work with the mail and folders but cannot change
/// who else may.
pub(crate) const DEFAULT_MEMBER_RIGHTS: &str = "lrswipkxte";

/// `postfach team …`
#[derive(Debug, Subcommand)]
pub(crate) enum TeamCommand {
    /// Create a team: an account that cannot log in, with INBOX, Sent, Drafts, Trash and
    /// Archive, that its members see under Shared/NAME/.
    Create {
        /// The team's name (unique among users and teams).
        name: String,
        /// The address mail to the team is delivered at (LMTP, `deliver`), e.g.
        /// support@example.org. Without it the team receives no mail.
        #[arg(long, value_name = "ADDR")]
        address: Option<String>,
    },
    /// Make USER a member of TEAM, or change a member's rights: the rights hold on every
    /// mailbox of the team, later ones included, and the member is subscribed to them.
    AddMember {
        /// The team.
        team: String,
        /// The user.
        user: String,
        /// RFC 4314 rights: l lookup, r read, s keep \Seen, w write flags, i insert, p post,
        /// k create folders, x delete folders, t delete messages, e expunge, a administer.
        #[arg(long, default_value = DEFAULT_MEMBER_RIGHTS)]
        rights: String,
    },
    /// End a membership: the user's rights on the team's mailboxes and the subscriptions go.
    RemoveMember {
        /// The team.
        team: String,
        /// The user.
        user: String,
    },
    /// List the teams with their address, and each member with their rights.
    List {
        /// Print one JSON document: {"teams": [{name, address, members: [{name, rights}]}]}.
        #[arg(long)]
        json: bool,
    },
}

/// `postfach group …`
#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Add USER to GROUP (ACL entries for `$GROUP` then apply to them).
    Add {
        /// The group's name (with or without the leading `$`).
        group: String,
        /// The user.
        user: String,
    },
    /// Remove USER from GROUP.
    Remove {
        /// The group's name (with or without the leading `$`).
        group: String,
        /// The user.
        user: String,
    },
}

/// `postfach acl …`
#[derive(Debug, Subcommand)]
pub(crate) enum AclCommand {
    /// Print a mailbox's access control list: the owner, then one line per entry.
    Get {
        /// The owner (user or team).
        account: String,
        /// The mailbox, as its owner names it (e.g. INBOX).
        mailbox: String,
        /// Print one JSON document: {"owner", "mailbox", "entries": [{"identifier", "rights"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Set the rights of IDENTIFIER (a user or team, $group, authenticated, anyone; a leading
    /// `-` makes a negative entry) on a mailbox. RIGHTS replaces the entry's rights; +RIGHTS
    /// adds to them, -RIGHTS takes away. An entry left without rights is removed.
    Set {
        /// The owner (user or team).
        account: String,
        /// The mailbox, as its owner names it.
        mailbox: String,
        /// Who: alice, $staff, authenticated, anyone, -bob.
        #[arg(allow_hyphen_values = true)]
        identifier: String,
        /// What: e.g. lrs, +w, -x (RFC 4314 letters; c and d are accepted as k and xte).
        #[arg(allow_hyphen_values = true)]
        rights: String,
    },
    /// Remove IDENTIFIER's entry from a mailbox's ACL.
    Delete {
        /// The owner (user or team).
        account: String,
        /// The mailbox, as its owner names it.
        mailbox: String,
        /// Who, as `acl get` shows it.
        #[arg(allow_hyphen_values = true)]
        identifier: String,
    },
}

/// `postfach quota …`
#[derive(Debug, Subcommand)]
pub(crate) enum QuotaCommand {
    /// Print an account's (or team's) usage and limits.
    Get {
        /// The account or team.
        account: String,
        /// Print one JSON document: usage and limits (bytes, messages, mailboxes; null:
        /// unlimited) and the account's own limits (null: the default).
        #[arg(long)]
        json: bool,
    },
    /// Give an account (or team) its own limits; "default" goes back to the `[quota]` default.
    /// Limits not given stay as they are.
    Set {
        /// The account or team.
        account: String,
        /// Bytes of mail: a size like 500M, 10G, or "default".
        #[arg(long, value_name = "SIZE")]
        storage: Option<String>,
        /// Messages: a number, or "default".
        #[arg(long, value_name = "N")]
        messages: Option<String>,
        /// Mailboxes: a number, or "default".
        #[arg(long, value_name = "N")]
        mailboxes: Option<String>,
    },
}

/// `postfach mailbox …`
#[derive(Debug, Subcommand)]
pub(crate) enum MailboxCommand {
    /// Show or set how a mailbox keeps \Seen: "shared" (what one member reads is read for
    /// everybody) or "private" (each user has their own; the owner's is the message's flag).
    SeenMode {
        /// The owner (user or team).
        account: String,
        /// The mailbox, as its owner names it.
        mailbox: String,
        /// "shared" or "private"; without it the current mode is printed.
        #[arg(value_parser = ["shared", "private"])]
        mode: Option<String>,
    },
    /// list, status, create, delete (`admin_mailbox`).
    #[command(flatten)]
    Manage(crate::admin_mailbox::MailboxAdmin),
}

/// One of the sharing commands.
#[derive(Debug)]
pub(crate) enum ShareCommand {
    /// `team …`
    Team(TeamCommand),
    /// `group …`
    Group(GroupCommand),
    /// `acl …`
    Acl(AclCommand),
    /// `quota …`
    Quota(QuotaCommand),
    /// `mailbox …`
    Mailbox(MailboxCommand),
}

/// The stores the sharing commands use.
#[derive(Clone, Copy)]
pub(crate) struct Admin<'a> {
    /// Accounts by name.
    pub(crate) accounts: &'a dyn AccountStore,
    /// Mailboxes by name.
    pub(crate) mail: &'a dyn MailStore,
    /// Teams, groups, ACLs, quotas.
    pub(crate) share: &'a dyn ShareStore,
}

impl Admin<'_> {
    /// Runs a sharing command.
    pub(crate) async fn run(self, command: ShareCommand) -> anyhow::Result<()> {
        match command {
            ShareCommand::Team(command) => self.team(command).await,
            ShareCommand::Group(command) => self.group(command).await,
            ShareCommand::Acl(command) => self.acl(command).await,
            ShareCommand::Quota(command) => self.quota(command).await,
            ShareCommand::Mailbox(command) => self.mailbox_command(command).await,
        }
    }

    /// Runs a `team` command.
    async fn team(self, command: TeamCommand) -> anyhow::Result<()> {
        match command {
            TeamCommand::Create { name, address } => {
                let address = address.map(|a| a.trim().to_owned());
                if let Some(a) = &address
                    && !is_address(a)
                {
                    bail!("not a mail address like support@example.org: {a:?}");
                }
                match self.share.create_team(&name, address.as_deref()).await {
                    Ok(_) => {}
                    Err(StoreError::AlreadyExists) => match &address {
                        Some(a) => {
                            bail!("an account named {name} or a team with the address {a} exists already")
                        }
                        None => bail!("an account named {name} exists already"),
                    },
                    Err(StoreError::InvalidName(why)) => bail!("{name:?} cannot be a team's name: {why}"),
                    Err(e) => return Err(e).with_context(|| format!("creating team {name}")),
                }
                match address {
                    Some(a) => eprintln!("postfach: team {name} created; mail to {a} goes to its INBOX"),
                    None => eprintln!("postfach: team {name} created (no address: it receives no mail)"),
                }
            }
            TeamCommand::AddMember { team, user, rights } => {
                let team = self.team_named(&team).await?;
                let user = self.user_named(&user).await?;
                let rights = parse_rights(&rights)?;
                if rights.is_empty() {
                    bail!("a member needs at least one right (to end a membership use remove-member)");
                }
                self.share
                    .set_team_member(team.id, user.id, rights)
                    .await
                    .with_context(|| format!("adding {} to team {}", user.name, team.name))?;
                eprintln!(
                    "postfach: {} is a member of team {} with rights {rights}; they see it under Shared/{}/",
                    user.name, team.name, team.name
                );
            }
            TeamCommand::RemoveMember { team, user } => {
                let team = self.team_named(&team).await?;
                let user = self.user_named(&user).await?;
                match self.share.remove_team_member(team.id, user.id).await {
                    Ok(()) => {
                        eprintln!("postfach: {} is no longer a member of team {}", user.name, team.name)
                    }
                    Err(StoreError::NotFound) => bail!("{} is not a member of team {}", user.name, team.name),
                    Err(e) => return Err(e).context("ending the membership"),
                }
            }
            TeamCommand::List { json: false } => print!("{}", self.team_list().await?),
            TeamCommand::List { json: true } => crate::admin_output::print_json(&self.teams().await?)?,
        }
        Ok(())
    }

    /// The text of `team list`: a line per team (name, address), an indented line per member.
    async fn team_list(self) -> anyhow::Result<String> {
        let mut text = String::new();
        let accounts = self.accounts.list_accounts().await.context("listing accounts")?;
        for team in accounts.iter().filter(|a| a.kind == AccountKind::Team) {
            let address = self.share.team_address(team.id).await.context("reading a team's address")?;
            match address {
                Some(a) => {
                    let _ = writeln!(text, "{} <{a}>", team.name);
                }
                None => {
                    let _ = writeln!(text, "{} (no address)", team.name);
                }
            }
            let mut members = self.share.team_members(team.id).await.context("reading a team's members")?;
            members.sort_by(|a, b| a.name.cmp(&b.name));
            for member in members {
                let _ = writeln!(text, "  {} {}", member.name, member.rights);
            }
        }
        Ok(text)
    }

    /// What `team list --json` prints.
    async fn teams(self) -> anyhow::Result<TeamsOutput> {
        let mut teams = Vec::new();
        let accounts = self.accounts.list_accounts().await.context("listing accounts")?;
        for team in accounts.into_iter().filter(|a| a.kind == AccountKind::Team) {
            let address = self.share.team_address(team.id).await.context("reading a team's address")?;
            let mut members = self.share.team_members(team.id).await.context("reading a team's members")?;
            members.sort_by(|a, b| a.name.cmp(&b.name));
            let members = members
                .into_iter()
                .map(|m| MemberOutput { name: m.name, rights: m.rights.to_string() })
                .collect();
            teams.push(TeamOutput { name: team.name, address, members });
        }
        Ok(TeamsOutput { teams })
    }

    /// Runs a `group` command.
    async fn group(self, command: GroupCommand) -> anyhow::Result<()> {
        let (group, user, member_of) = match command {
            GroupCommand::Add { group, user } => (group, user, true),
            GroupCommand::Remove { group, user } => (group, user, false),
        };
        let group = group_name(&group)?;
        let user = self.user_named(&user).await?;
        self.share
            .set_group_member(&group, user.id, member_of)
            .await
            .with_context(|| format!("changing group {group}"))?;
        if member_of {
            eprintln!("postfach: {} is in group {group}; entries for ${group} apply to them", user.name);
        } else {
            eprintln!("postfach: {} is not in group {group}", user.name);
        }
        Ok(())
    }

    /// Runs an `acl` command.
    async fn acl(self, command: AclCommand) -> anyhow::Result<()> {
        match command {
            AclCommand::Get { account, mailbox, json: true } => {
                let (owner, found) = self.mailbox(&account, &mailbox).await?;
                let entries = self.share.acl(found.id).await.context("reading the ACL")?;
                let entries: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| serde_json::json!({"identifier": e.identifier.to_string(), "rights": e.rights.to_string()}))
                    .collect();
                crate::admin_output::print_json(
                    &serde_json::json!({"owner": owner.name, "mailbox": found.name, "entries": entries}),
                )?;
            }
            AclCommand::Get { account, mailbox, json: false } => {
                let (owner, mailbox) = self.mailbox(&account, &mailbox).await?;
                let entries = self.share.acl(mailbox.id).await.context("reading the ACL")?;
                let mut text = format!("{} {} (owner)\n", owner.name, Rights::ALL);
                for entry in entries {
                    let _ = writeln!(text, "{} {}", entry.identifier, entry.rights);
                }
                print!("{text}");
            }
            AclCommand::Set { account, mailbox, identifier, rights } => {
                let (owner, mailbox) = self.mailbox(&account, &mailbox).await?;
                let identifier = parse_identifier(&identifier)?;
                let current = self.current_rights(&mailbox, &identifier).await?;
                let wanted = match (rights.strip_prefix('+'), rights.strip_prefix('-')) {
                    (Some(add), _) => current.unwrap_or_default().union(parse_rights(add)?),
                    (_, Some(remove)) => current.unwrap_or_default().without(parse_rights(remove)?),
                    _ => parse_rights(&rights)?,
                };
                let on = format!("{}'s {}", owner.name, mailbox.name);
                if wanted.is_empty() {
                    if current.is_some() {
                        self.set_acl(&mailbox, &identifier, None).await?;
                    }
                    eprintln!("postfach: {identifier} has no entry on {on}");
                } else {
                    self.set_acl(&mailbox, &identifier, Some(wanted)).await?;
                    eprintln!("postfach: {identifier} has {wanted} on {on}");
                }
            }
            AclCommand::Delete { account, mailbox, identifier } => {
                let (owner, mailbox) = self.mailbox(&account, &mailbox).await?;
                let identifier = parse_identifier(&identifier)?;
                if self.current_rights(&mailbox, &identifier).await?.is_none() {
                    bail!("{}'s {} has no entry for {identifier}", owner.name, mailbox.name);
                }
                self.set_acl(&mailbox, &identifier, None).await?;
                eprintln!(
                    "postfach: the entry of {identifier} on {}'s {} is removed",
                    owner.name, mailbox.name
                );
            }
        }
        Ok(())
    }

    /// The rights of `identifier`'s entry on `mailbox`, `None` when it has none. Account and
    /// group names compare without case, as [`postfach_store::acl::effective_rights`] does.
    async fn current_rights(
        &self,
        mailbox: &MailboxInfo,
        identifier: &Identifier,
    ) -> anyhow::Result<Option<Rights>> {
        let entries = self.share.acl(mailbox.id).await.context("reading the ACL")?;
        Ok(entries.into_iter().find(|e| same_identifier(&e.identifier, identifier)).map(|e| e.rights))
    }

    async fn set_acl(
        &self,
        mailbox: &MailboxInfo,
        identifier: &Identifier,
        rights: Option<Rights>,
    ) -> anyhow::Result<()> {
        match self.share.set_acl(mailbox.id, identifier, rights).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => match &identifier.grantee {
                Grantee::Account(name) => bail!("no such account: {name}"),
                _ => bail!("the mailbox {} no longer exists", mailbox.name),
            },
            Err(StoreError::InvalidName(why) | StoreError::NotAllowed(why)) => bail!("{identifier}: {why}"),
            Err(e) => Err(e).context("changing the ACL"),
        }
    }

    /// Runs a `quota` command.
    async fn quota(self, command: QuotaCommand) -> anyhow::Result<()> {
        match command {
            QuotaCommand::Get { account, json } => {
                let account = self.account_named(&account).await?;
                let quota = self.share.quota(account.id).await.context("reading the quota")?;
                if json {
                    let limits = |l: &postfach_store::QuotaLimits| serde_json::json!({"storage": l.storage, "messages": l.messages, "mailboxes": l.mailboxes});
                    crate::admin_output::print_json(&serde_json::json!({
                        "account": account.name,
                        "used": {"storage": quota.storage_used, "messages": quota.messages_used, "mailboxes": quota.mailboxes_used},
                        "limits": limits(&quota.limits),
                        "own": limits(&quota.own),
                    }))?;
                } else {
                    print!("{}", describe_quota(&quota));
                }
            }
            QuotaCommand::Set { account, storage, messages, mailboxes } => {
                if storage.is_none() && messages.is_none() && mailboxes.is_none() {
                    bail!("give --storage, --messages or --mailboxes (a value, or \"default\")");
                }
                // Parsed before anything is read, so a typo changes nothing.
                let storage = storage.map(|s| limit(&s, "--storage", parse_size)).transpose()?;
                let messages = messages.map(|s| limit(&s, "--messages", parse_count)).transpose()?;
                let mailboxes = mailboxes.map(|s| limit(&s, "--mailboxes", parse_count)).transpose()?;
                let account = self.account_named(&account).await?;
                let mut own = self.share.quota(account.id).await.context("reading the quota")?.own;
                for (slot, given) in [
                    (&mut own.storage, storage),
                    (&mut own.messages, messages),
                    (&mut own.mailboxes, mailboxes),
                ] {
                    if let Some(value) = given {
                        *slot = value;
                    }
                }
                self.share.set_quota(account.id, own).await.context("setting the quota")?;
                let quota = self.share.quota(account.id).await.context("reading the quota")?;
                eprintln!("postfach: quota of {} set", account.name);
                print!("{}", describe_quota(&quota));
            }
        }
        Ok(())
    }

    /// Runs a `mailbox` command.
    async fn mailbox_command(self, command: MailboxCommand) -> anyhow::Result<()> {
        match command {
            MailboxCommand::Manage(command) => {
                let stores = crate::admin_mailbox::Stores { accounts: self.accounts, mail: self.mail };
                return stores.mailbox(command).await;
            }
            MailboxCommand::SeenMode { account, mailbox, mode } => {
                let (owner, mailbox) = self.mailbox(&account, &mailbox).await?;
                let Some(mode) = mode else {
                    let mode = self.share.seen_mode(mailbox.id).await.context("reading the seen mode")?;
                    println!("{}", seen_mode_name(mode));
                    return Ok(());
                };
                let mode = if mode == "private" { SeenMode::Private } else { SeenMode::Shared };
                self.share.set_seen_mode(mailbox.id, mode).await.context("setting the seen mode")?;
                let how = match mode {
                    SeenMode::Shared => "one \\Seen for everybody",
                    SeenMode::Private => "a \\Seen of their own for each user",
                };
                eprintln!(
                    "postfach: {}'s {} keeps {how} ({})",
                    owner.name,
                    mailbox.name,
                    seen_mode_name(mode)
                );
            }
        }
        Ok(())
    }

    // --- looking things up ----------------------------------------------------------------------

    async fn account_named(&self, name: &str) -> anyhow::Result<Account> {
        match self.accounts.account_by_name(name).await.with_context(|| format!("looking up {name}"))? {
            Some(account) => Ok(account),
            None => bail!("no such account: {name}"),
        }
    }

    async fn team_named(&self, name: &str) -> anyhow::Result<Account> {
        let account = self.account_named(name).await.map_err(|_| anyhow::anyhow!("no such team: {name}"))?;
        if account.kind != AccountKind::Team {
            bail!("{name} is a user, not a team");
        }
        Ok(account)
    }

    async fn user_named(&self, name: &str) -> anyhow::Result<Account> {
        let account = self.account_named(name).await.map_err(|_| anyhow::anyhow!("no such user: {name}"))?;
        if account.kind != AccountKind::User {
            bail!("{name} is a team, not a user");
        }
        Ok(account)
    }

    /// An account and one of its mailboxes by name.
    async fn mailbox(&self, account: &str, mailbox: &str) -> anyhow::Result<(Account, MailboxInfo)> {
        let owner = self.account_named(account).await?;
        let name = MailboxName::new(mailbox)
            .map_err(|e| anyhow::anyhow!("not a mailbox name: {mailbox:?} ({e})"))?;
        match self.mail.mailbox_by_name(owner.id, &name).await.context("looking up the mailbox")? {
            Some(info) => Ok((owner, info)),
            None => bail!("{} has no mailbox {mailbox:?}", owner.name),
        }
    }
}

/// `team list --json`.
#[derive(serde::Serialize)]
struct TeamsOutput {
    teams: Vec<TeamOutput>,
}

#[derive(serde::Serialize)]
struct TeamOutput {
    name: String,
    address: Option<String>,
    members: Vec<MemberOutput>,
}

#[derive(serde::Serialize)]
struct MemberOutput {
    name: String,
    rights: String,
}

/// RFC 4314 rights letters, with the store's reading of `c` and `d`.
pub(crate) fn parse_rights(letters: &str) -> anyhow::Result<Rights> {
    Rights::parse(letters).map_err(|e| anyhow::anyhow!("{e} in {letters:?}: use the letters lrswipkxtea"))
}

fn parse_identifier(text: &str) -> anyhow::Result<Identifier> {
    match Identifier::parse(text) {
        Some(identifier) => Ok(identifier),
        None => bail!("not an identifier: {text:?} (a user or team, $group, authenticated or anyone)"),
    }
}

/// Two identifiers name the same entry (names compare without case).
fn same_identifier(a: &Identifier, b: &Identifier) -> bool {
    a.negative == b.negative
        && match (&a.grantee, &b.grantee) {
            (Grantee::Account(x), Grantee::Account(y)) | (Grantee::Group(x), Grantee::Group(y)) => {
                x.eq_ignore_ascii_case(y)
            }
            (x, y) => x == y,
        }
}

/// A group's name without its `$`: not empty, no spaces or control characters.
fn group_name(text: &str) -> anyhow::Result<String> {
    let name = text.strip_prefix('$').unwrap_or(text);
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("not a group name: {text:?}");
    }
    Ok(name.to_owned())
}

/// An addr-spec `local@domain` without spaces or brackets.
pub(crate) fn is_address(text: &str) -> bool {
    text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && text.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | ',' | ';' | '"'))
    })
}

/// A `quota set` value: "default" (`None`), else what `parse` makes of it.
pub(crate) fn limit(
    text: &str,
    option: &str,
    parse: fn(&str) -> Result<u64, String>,
) -> anyhow::Result<Option<u64>> {
    if text.eq_ignore_ascii_case("default") {
        return Ok(None);
    }
    match parse(text) {
        Ok(0) => bail!("{option}: a limit must be at least 1 (or \"default\")"),
        Ok(n) => Ok(Some(n)),
        Err(why) => bail!("{option}: {why}"),
    }
}

pub(crate) fn parse_count(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|_| format!("not a number: {text:?}"))
}

fn seen_mode_name(mode: SeenMode) -> &'static str {
    match mode {
        SeenMode::Shared => "shared",
        SeenMode::Private => "private",
    }
}

/// The text of `quota get`: one line per resource, usage, limit, and whose limit it is.
fn describe_quota(quota: &Quota) -> String {
    let QuotaLimits { storage, messages, mailboxes } = quota.limits;
    let own = quota.own;
    let rows = [
        ("storage", quota.storage_used, storage, own.storage.is_some(), true),
        ("messages", quota.messages_used, messages, own.messages.is_some(), false),
        ("mailboxes", quota.mailboxes_used, mailboxes, own.mailboxes.is_some(), false),
    ];
    let mut text = String::new();
    for (name, used, limit, own, bytes) in rows {
        let show = |n: u64| if bytes { human_bytes(n) } else { n.to_string() };
        let whose = if own { "set for this account" } else { "default" };
        match limit {
            Some(limit) => {
                let percent = u128::from(used) * 100 / u128::from(limit.max(1));
                let _ = writeln!(text, "{name:<10}{} of {} ({percent} %), {whose}", show(used), show(limit));
            }
            None => {
                let _ = writeln!(text, "{name:<10}{}, unlimited, {whose}", show(used));
            }
        }
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_described_per_resource() {
        let quota = Quota {
            storage_used: 9_961_472,
            messages_used: 12,
            mailboxes_used: 6,
            limits: QuotaLimits { storage: Some(10 << 20), messages: None, mailboxes: Some(10_000) },
            own: QuotaLimits { storage: Some(10 << 20), messages: None, mailboxes: None },
        };
        assert_eq!(
            describe_quota(&quota),
            "storage   9.5 MiB of 10 MiB (95 %), set for this account\n\
             messages  12, unlimited, default\n\
             mailboxes 6 of 10000 (0 %), default\n"
        );
    }

    #[test]
    fn command_line_values() {
        assert_eq!(limit("default", "--storage", parse_size).unwrap(), None);
        assert_eq!(limit("10G", "--storage", parse_size).unwrap(), Some(10 << 30));
        assert!(limit("0", "--messages", parse_count).unwrap_err().to_string().contains("at least 1"));
        assert!(limit("lots", "--messages", parse_count).unwrap_err().to_string().contains("--messages"));
        assert_eq!(group_name("$staff").unwrap(), "staff");
        assert!(group_name("$").is_err() && group_name("two words").is_err());
        assert!(is_address("support@example.org") && !is_address("support") && !is_address("<a@b>"));
        let bob = parse_identifier("Bob").unwrap();
        assert!(same_identifier(&bob, &parse_identifier("bob").unwrap()));
        assert!(!same_identifier(&bob, &parse_identifier("-bob").unwrap()));
        assert!(parse_rights("lrz").unwrap_err().to_string().contains("'z'"));
    }
}
