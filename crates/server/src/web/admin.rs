//! The admin pages: accounts (create, delete, quota, the admin flag), teams (create, members
//! and rights), live IMAP/POP3 sessions (kick), blocked addresses (lift), health and metrics.
//!
//! Every handler starts with [`User::require_admin`]: the flag is read from the store at each
//! request, so taking it away takes effect at the next click. The logic is the CLI's
//! (`admin_share`'s rights, address and limit parsing; the same store calls), with the answers
//! as notices instead of lines on standard error.

use std::collections::BTreeSet;
use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use postfach_auth::network::AddressKey;
use postfach_secret::Secret;
use postfach_store::{Account, AccountKind, QuotaLimits, StoreError};
use tracing::{info, warn};

use super::user::{MAX_PASSWORD, MIN_PASSWORD, QuotaRow, quota_rows};
use super::{Nav, Notice, Posted, User, Web, message, page, redirect};
use crate::admin_auth::{format_time, unix_now};
use crate::admin_share::{DEFAULT_MEMBER_RIGHTS, is_address, limit, parse_count, parse_rights};
use crate::quota::parse_size;

/// Most accounts the accounts page lists (with a line saying so when there are more).
const MAX_LISTED_ACCOUNTS: usize = 1000;
/// Longest account or team name the forms take, bytes.
const MAX_NAME: usize = 256;

fn store_down(nav: Option<Nav>, e: &StoreError) -> Response {
    warn!(error = %e, "an admin page could not read or write the store");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        nav,
        "Not now",
        "The store did not answer; try again shortly.",
        "/admin",
    )
}

/// Tells the admin what happened and goes back to `to`.
fn done(web: &Web, user: &User, error: bool, text: impl Into<String>, to: &str) -> Response {
    web.pages.notify(&user.token, error, text);
    redirect(to)
}

fn account_link(name: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!("/admin/account?name={encoded}")
}

// --- accounts -----------------------------------------------------------------------------------

struct AccountRow {
    name: String,
    kind: &'static str,
    admin: bool,
    storage: String,
    messages: String,
    mailboxes: String,
}

#[derive(Template)]
#[template(path = "web/admin_accounts.html")]
struct AccountsPage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    csrf: String,
    accounts: Vec<AccountRow>,
}

fn kind_name(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::User => "user",
        AccountKind::Team => "team",
    }
}

pub(super) async fn accounts(State(web): State<Arc<Web>>, user: User) -> Response {
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let all = match web.ctx.accounts.list_accounts().await {
        Ok(a) => a,
        Err(e) => return store_down(user.nav(), &e),
    };
    let admins: BTreeSet<_> = match web.store.admins().await {
        Ok(a) => a.into_iter().collect(),
        Err(e) => return store_down(user.nav(), &e),
    };
    let mut notice = user.session.notice.clone();
    if all.len() > MAX_LISTED_ACCOUNTS && notice.is_none() {
        notice = Some(Notice {
            error: false,
            text: format!("Showing the first {MAX_LISTED_ACCOUNTS} of {} accounts.", all.len()),
        });
    }
    let mut rows = Vec::new();
    for account in all.into_iter().take(MAX_LISTED_ACCOUNTS) {
        let quota = match web.ctx.share.quota(account.id).await {
            Ok(q) => q,
            Err(e) => return store_down(user.nav(), &e),
        };
        let q = quota_rows(&quota);
        let cell = |row: &QuotaRow| format!("{} of {}", row.used, row.limit);
        rows.push(AccountRow {
            kind: kind_name(account.kind),
            admin: admins.contains(&account.id),
            storage: cell(&q[0]),
            messages: cell(&q[1]),
            mailboxes: cell(&q[2]),
            name: account.name,
        });
    }
    page(
        StatusCode::OK,
        &AccountsPage { nav: user.nav(), notice, csrf: user.session.csrf.clone(), accounts: rows },
    )
}

pub(super) async fn account_create(State(web): State<Arc<Web>>, mut posted: Posted) -> Response {
    let password = Secret::from(posted.fields.take("password"));
    let user = &posted.user;
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let name = match posted.fields.line("name") {
        Ok(n) if !n.is_empty() && n.len() <= MAX_NAME => n.to_owned(),
        _ => return done(&web, user, true, "Give the new user a name.", "/admin/accounts"),
    };
    let chars = std::str::from_utf8(password.expose_secret()).map_or(0, |s| s.chars().count());
    if chars < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return done(
            &web,
            user,
            true,
            format!("A password has {MIN_PASSWORD} characters at least."),
            "/admin/accounts",
        );
    }
    let (hash, scram) = match crate::admin_auth::password_credentials(password).await {
        Ok(made) => made,
        Err(e) => {
            warn!(error = %e, "cannot hash a new password");
            return done(&web, user, true, "The password cannot be hashed right now.", "/admin/accounts");
        }
    };
    let id = match web.ctx.accounts.create_account(&name, &hash).await {
        Ok(id) => id,
        Err(StoreError::AlreadyExists) => {
            return done(
                &web,
                user,
                true,
                format!("An account named {name} exists already."),
                "/admin/accounts",
            );
        }
        Err(StoreError::InvalidName(why)) => {
            return done(
                &web,
                user,
                true,
                format!("{name:?} cannot be a user's name: {why}"),
                "/admin/accounts",
            );
        }
        Err(e) => return store_down(user.nav(), &e),
    };
    if let Err(e) = web.ctx.accounts.set_password(id, &hash, Some(&scram)).await {
        return store_down(user.nav(), &e);
    }
    info!(admin = %user.session.principal.name, account = %name, "user added on the web pages");
    done(&web, user, false, format!("User {name} created."), "/admin/accounts")
}

struct MemberRow {
    name: String,
    rights: String,
}

#[derive(Template)]
#[template(path = "web/admin_account.html")]
struct AccountPage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    csrf: String,
    name: String,
    kind: &'static str,
    team: bool,
    admin: bool,
    myself: bool,
    address: Option<String>,
    quota: Vec<QuotaRow>,
    own_storage: String,
    own_messages: String,
    own_mailboxes: String,
    members: Vec<MemberRow>,
    default_rights: &'static str,
}

/// The account a form or query names; an error page when there is none.
async fn named(web: &Web, user: &User, name: &str) -> Result<Account, Response> {
    match web.ctx.accounts.account_by_name(name).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(message(
            StatusCode::NOT_FOUND,
            user.nav(),
            "No such account",
            &format!("There is no account named {name}."),
            "/admin/accounts",
        )),
        Err(e) => Err(store_down(user.nav(), &e)),
    }
}

pub(super) async fn account(State(web): State<Arc<Web>>, user: User, uri: Uri) -> Response {
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let name = match super::query(&uri) {
        Ok(q) => q.line("name").unwrap_or_default().to_owned(),
        Err(e) => {
            return message(StatusCode::BAD_REQUEST, user.nav(), "Bad address", &e.0, "/admin/accounts");
        }
    };
    let account = match named(&web, &user, &name).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    let quota = match web.ctx.share.quota(account.id).await {
        Ok(q) => q,
        Err(e) => return store_down(user.nav(), &e),
    };
    let team = account.kind == AccountKind::Team;
    let (address, members) = if team {
        let address = match web.ctx.share.team_address(account.id).await {
            Ok(a) => a,
            Err(e) => return store_down(user.nav(), &e),
        };
        let mut members = match web.ctx.share.team_members(account.id).await {
            Ok(m) => m,
            Err(e) => return store_down(user.nav(), &e),
        };
        members.sort_by(|a, b| a.name.cmp(&b.name));
        (
            address,
            members.into_iter().map(|m| MemberRow { name: m.name, rights: m.rights.to_string() }).collect(),
        )
    } else {
        (None, Vec::new())
    };
    let admin = match web.store.is_admin(account.id).await {
        Ok(a) => a,
        Err(e) => return store_down(user.nav(), &e),
    };
    let own = |v: Option<u64>, bytes: bool| {
        v.map_or_else(String::new, |n| if bytes { crate::quota::human_bytes(n) } else { n.to_string() })
    };
    page(
        StatusCode::OK,
        &AccountPage {
            nav: user.nav(),
            notice: user.session.notice.clone(),
            csrf: user.session.csrf.clone(),
            kind: if team { "Team" } else { "User" },
            team,
            admin,
            myself: account.id == user.session.principal.account,
            address,
            quota: quota_rows(&quota),
            own_storage: own(quota.own.storage, true),
            own_messages: own(quota.own.messages, false),
            own_mailboxes: own(quota.own.mailboxes, false),
            members,
            default_rights: DEFAULT_MEMBER_RIGHTS,
            name: account.name,
        },
    )
}

pub(super) async fn account_quota(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = &posted.user;
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let name = posted.fields.line("name").unwrap_or_default().to_owned();
    let back = account_link(&name);
    let value = |field: &str, parse: fn(&str) -> Result<u64, String>| -> Result<Option<u64>, String> {
        let text = posted.fields.line(field).map_err(|e| e.0)?;
        if text.is_empty() {
            return Ok(None);
        }
        limit(text, field, parse).map_err(|e| e.to_string())
    };
    let limits =
        match (value("storage", parse_size), value("messages", parse_count), value("mailboxes", parse_count))
        {
            (Ok(storage), Ok(messages), Ok(mailboxes)) => QuotaLimits { storage, messages, mailboxes },
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return done(&web, user, true, e, &back),
        };
    let account = match named(&web, user, &name).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    if let Err(e) = web.ctx.share.set_quota(account.id, limits).await {
        return store_down(user.nav(), &e);
    }
    info!(admin = %user.session.principal.name, account = %account.name, "quota set on the web pages");
    done(&web, user, false, format!("Quota of {} set.", account.name), &back)
}

pub(super) async fn account_admin(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = &posted.user;
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let name = posted.fields.line("name").unwrap_or_default().to_owned();
    let back = account_link(&name);
    let account = match named(&web, user, &name).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    if account.kind != AccountKind::User || account.id == user.session.principal.account {
        return done(&web, user, true, "Only another user's admin flag can be changed here.", &back);
    }
    let admin = posted.fields.line("admin").unwrap_or_default() == "true";
    if let Err(e) = web.store.set_admin(account.id, admin).await {
        return store_down(user.nav(), &e);
    }
    info!(admin = %user.session.principal.name, account = %account.name, flag = admin, "admin flag changed on the web pages");
    let text = if admin { "is an administrator now" } else { "is no longer an administrator" };
    done(&web, user, false, format!("{} {text}.", account.name), &back)
}

pub(super) async fn account_delete(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = &posted.user;
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let name = posted.fields.line("name").unwrap_or_default().to_owned();
    let back = account_link(&name);
    if posted.fields.line("confirm").unwrap_or_default() != "yes" {
        return done(&web, user, true, "Tick the box to confirm the deletion.", &back);
    }
    let account = match named(&web, user, &name).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    if account.id == user.session.principal.account {
        return done(&web, user, true, "You cannot delete your own account here.", &back);
    }
    if let Err(e) = web.ctx.accounts.delete_account(account.id).await {
        return store_down(user.nav(), &e);
    }
    web.pages.end_account(account.id, None);
    let kicked = web.imap_sessions.kick(&account.name).len();
    if let Err(e) = web.ctx.auth.refresh().await {
        warn!(error = %e, "cannot read the credentials generation");
    }
    info!(admin = %user.session.principal.name, account = %account.name, kicked, "account deleted on the web pages");
    let to = if account.kind == AccountKind::Team { "/admin/teams" } else { "/admin/accounts" };
    done(
        &web,
        user,
        false,
        format!("{} {} deleted with all its mail.", kind_name(account.kind), account.name),
        to,
    )
}

// --- teams --------------------------------------------------------------------------------------

struct TeamRow {
    name: String,
    address: String,
    members: String,
}

#[derive(Template)]
#[template(path = "web/admin_teams.html")]
struct TeamsPage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    csrf: String,
    teams: Vec<TeamRow>,
}

pub(super) async fn teams(State(web): State<Arc<Web>>, user: User) -> Response {
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let all = match web.ctx.accounts.list_accounts().await {
        Ok(a) => a,
        Err(e) => return store_down(user.nav(), &e),
    };
    let mut rows = Vec::new();
    for team in all.into_iter().filter(|a| a.kind == AccountKind::Team).take(MAX_LISTED_ACCOUNTS) {
        let address = match web.ctx.share.team_address(team.id).await {
            Ok(a) => a.unwrap_or_else(|| "(none: receives no mail)".to_owned()),
            Err(e) => return store_down(user.nav(), &e),
        };
        let mut members = match web.ctx.share.team_members(team.id).await {
            Ok(m) => m,
            Err(e) => return store_down(user.nav(), &e),
        };
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let members =
            members.iter().map(|m| format!("{} ({})", m.name, m.rights)).collect::<Vec<_>>().join(", ");
        rows.push(TeamRow { name: team.name, address, members });
    }
    page(
        StatusCode::OK,
        &TeamsPage {
            nav: user.nav(),
            notice: user.session.notice.clone(),
            csrf: user.session.csrf.clone(),
            teams: rows,
        },
    )
}

pub(super) async fn team_create(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = &posted.user;
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let name = match posted.fields.line("name") {
        Ok(n) if !n.is_empty() && n.len() <= MAX_NAME => n.to_owned(),
        _ => return done(&web, user, true, "Give the team a name.", "/admin/teams"),
    };
    let address = match posted.fields.line("address") {
        Ok("") => None,
        Ok(a) if a.len() <= MAX_NAME && is_address(a) => Some(a.to_owned()),
        _ => {
            return done(
                &web,
                user,
                true,
                "The address is a mail address like support@example.org.",
                "/admin/teams",
            );
        }
    };
    match web.ctx.share.create_team(&name, address.as_deref()).await {
        Ok(_) => {}
        Err(StoreError::AlreadyExists) => {
            return done(
                &web,
                user,
                true,
                "An account with that name (or a team with that address) exists.",
                "/admin/teams",
            );
        }
        Err(StoreError::InvalidName(why)) => {
            return done(
                &web,
                user,
                true,
                format!("{name:?} cannot be a team's name: {why}"),
                "/admin/teams",
            );
        }
        Err(e) => return store_down(user.nav(), &e),
    }
    info!(admin = %user.session.principal.name, team = %name, "team created on the web pages");
    done(&web, user, false, format!("Team {name} created; add its members here."), &account_link(&name))
}

/// The team and the user a member form names, or the page that says what is wrong.
async fn team_and_user(web: &Web, posted: &Posted) -> Result<(Account, Account), Response> {
    let user = &posted.user;
    let team_name = posted.fields.line("team").unwrap_or_default();
    let back = account_link(team_name);
    let team = named(web, user, team_name).await?;
    if team.kind != AccountKind::Team {
        return Err(done(web, user, true, format!("{} is a user, not a team.", team.name), &back));
    }
    let member_name = posted.fields.line("user").unwrap_or_default();
    let member = match web.ctx.accounts.account_by_name(member_name).await {
        Ok(Some(a)) if a.kind == AccountKind::User => a,
        Ok(_) => return Err(done(web, user, true, format!("There is no user named {member_name}."), &back)),
        Err(e) => return Err(store_down(user.nav(), &e)),
    };
    Ok((team, member))
}

pub(super) async fn team_member(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = &posted.user;
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let (team, member) = match team_and_user(&web, &posted).await {
        Ok(pair) => pair,
        Err(response) => return response,
    };
    let back = account_link(&team.name);
    let rights = match parse_rights(posted.fields.line("rights").unwrap_or_default()) {
        Ok(r) if !r.is_empty() => r,
        Ok(_) => return done(&web, user, true, "A member needs at least one right.", &back),
        Err(e) => return done(&web, user, true, e.to_string(), &back),
    };
    if let Err(e) = web.ctx.share.set_team_member(team.id, member.id, rights).await {
        return store_down(user.nav(), &e);
    }
    info!(admin = %user.session.principal.name, team = %team.name, member = %member.name, %rights, "team member set on the web pages");
    done(
        &web,
        user,
        false,
        format!(
            "{} is a member of {} with rights {rights}; they see it under Shared/{}/.",
            member.name, team.name, team.name
        ),
        &back,
    )
}

pub(super) async fn team_remove_member(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = &posted.user;
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let (team, member) = match team_and_user(&web, &posted).await {
        Ok(pair) => pair,
        Err(response) => return response,
    };
    let back = account_link(&team.name);
    match web.ctx.share.remove_team_member(team.id, member.id).await {
        Ok(()) => {
            done(&web, user, false, format!("{} is no longer a member of {}.", member.name, team.name), &back)
        }
        Err(StoreError::NotFound) => {
            done(&web, user, true, format!("{} is not a member of {}.", member.name, team.name), &back)
        }
        Err(e) => store_down(user.nav(), &e),
    }
}

// --- sessions, bans, health ---------------------------------------------------------------------

struct SessionRow {
    user: String,
    logged_in: bool,
    address: String,
    transport: String,
    since: String,
    selected: String,
}

#[derive(Template)]
#[template(path = "web/admin_sessions.html")]
struct SessionsPage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    csrf: String,
    sessions: Vec<SessionRow>,
    web_sessions: usize,
}

pub(super) async fn sessions(State(web): State<Arc<Web>>, user: User) -> Response {
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let rows = web
        .imap_sessions
        .list()
        .into_iter()
        .map(|s| SessionRow {
            logged_in: s.user.is_some(),
            user: s.user.unwrap_or_else(|| "(not logged in)".to_owned()),
            address: s.address,
            transport: s.transport,
            since: format_time(s.logged_in.unwrap_or(s.connected)),
            selected: s.selected.unwrap_or_default(),
        })
        .collect();
    page(
        StatusCode::OK,
        &SessionsPage {
            nav: user.nav(),
            notice: user.session.notice.clone(),
            csrf: user.session.csrf.clone(),
            sessions: rows,
            web_sessions: web.pages.len(),
        },
    )
}

pub(super) async fn kick(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = &posted.user;
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let name = posted.fields.line("user").unwrap_or_default().to_owned();
    let kicked = web.imap_sessions.kick(&name).len();
    info!(admin = %user.session.principal.name, account = %name, kicked, "sessions kicked on the web pages");
    done(&web, user, false, format!("{kicked} session(s) of {name} told to end."), "/admin/sessions")
}

struct BanRow {
    address: String,
    until: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "web/admin_bans.html")]
struct BansPage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    csrf: String,
    bans: Vec<BanRow>,
}

pub(super) async fn bans(State(web): State<Arc<Web>>, user: User) -> Response {
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let blocks = match web.ctx.accounts.address_blocks(unix_now()).await {
        Ok(b) => b,
        Err(e) => return store_down(user.nav(), &e),
    };
    let bans = blocks
        .into_iter()
        .map(|b| BanRow { address: b.address, until: format_time(b.until), reason: b.reason })
        .collect();
    page(
        StatusCode::OK,
        &BansPage {
            nav: user.nav(),
            notice: user.session.notice.clone(),
            csrf: user.session.csrf.clone(),
            bans,
        },
    )
}

pub(super) async fn ban_remove(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = &posted.user;
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let text = posted.fields.line("address").unwrap_or_default();
    let Ok(key) = text.parse::<AddressKey>() else {
        return done(&web, user, true, format!("Not an address: {text}"), "/admin/bans");
    };
    match web.ctx.accounts.unblock_address(&key.to_string(), unix_now()).await {
        Ok(lifted) => {
            // This process forgets the block at once too (the CLI's is noticed at the next try).
            web.ctx.auth.throttle().unblock(key);
            info!(admin = %user.session.principal.name, address = %key, "block lifted on the web pages");
            let text =
                if lifted { format!("{key} may log in again.") } else { format!("{key} was not blocked.") };
            done(&web, user, !lifted, text, "/admin/bans")
        }
        Err(e) => store_down(user.nav(), &e),
    }
}

#[derive(Template)]
#[template(path = "web/admin_health.html")]
struct HealthPage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    healthy: bool,
    lines: Vec<(String, String)>,
}

pub(super) async fn health(State(web): State<Arc<Web>>, user: User) -> Response {
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let healthy =
        matches!(tokio::time::timeout(std::time::Duration::from_secs(2), web.store.ping()).await, Ok(Ok(())));
    let exposition = crate::metrics::render(&web.sources).await;
    let samples = crate::status::parse(&exposition);
    let up = crate::status::one(&samples, "postfach_uptime_seconds") as u64;
    let mut lines = vec![("uptime".to_owned(), format!("{}h {:02}m", up / 3600, up / 60 % 60))];
    let health = if healthy { "ok" } else { "failing" };
    // `postfach status`'s summary, less its first line (address and uptime).
    let summary = crate::status::summary(&samples, user.conn.peer, health);
    for line in summary.lines().skip(1) {
        if let Some((key, value)) = line.split_once(':') {
            lines.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    lines.push(("page sessions".to_owned(), web.pages.len().to_string()));
    page(StatusCode::OK, &HealthPage { nav: user.nav(), notice: user.session.notice.clone(), healthy, lines })
}

// --- the outbound queue ------------------------------------------------------------------------

struct QueueRow {
    id: i64,
    kind: &'static str,
    account: String,
    to: String,
    size: u64,
    next_attempt: String,
    attempts: u32,
    last_error: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "web/admin_queue.html")]
struct QueuePage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    csrf: String,
    rows: Vec<QueueRow>,
}

/// Vacation replies, redirects and bounces waiting to be sent (`postfach queue list`).
pub(super) async fn queue(State(web): State<Arc<Web>>, user: User) -> Response {
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let entries = match web.store.queue_list().await {
        Ok(e) => e,
        Err(e) => return store_down(user.nav(), &e),
    };
    let names = match web.ctx.accounts.list_accounts().await {
        Ok(list) => list,
        Err(e) => return store_down(user.nav(), &e),
    };
    let rows = entries
        .into_iter()
        .map(|e| QueueRow {
            id: e.id.0,
            kind: e.kind.as_str(),
            account: names
                .iter()
                .find(|a| a.id == e.owner)
                .map_or_else(|| "?".to_owned(), |a| a.name.clone()),
            to: e.recipients.join(", "),
            size: e.size,
            next_attempt: format_time(e.next_attempt),
            attempts: e.attempts,
            last_error: e.last_error.unwrap_or_default(),
            expires: format_time(e.expires),
        })
        .collect();
    page(
        StatusCode::OK,
        &QueuePage {
            nav: user.nav(),
            notice: user.session.notice.clone(),
            csrf: user.session.csrf.clone(),
            rows,
        },
    )
}

/// `Send now` (one entry, or every one) and `Delete` on the queue page.
pub(super) async fn queue_change(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = &posted.user;
    if let Err(refused) = user.require_admin() {
        return refused;
    }
    let id = match posted.fields.line("id").unwrap_or_default() {
        "" | "all" => None,
        text => match text.parse::<i64>() {
            Ok(n) => Some(postfach_store::QueueId(n)),
            Err(_) => return done(&web, user, true, format!("Not a queue entry: {text}"), "/admin/queue"),
        },
    };
    let admin = &user.session.principal.name;
    if posted.fields.line("action").unwrap_or_default() == "delete" {
        let Some(id) = id else { return done(&web, user, true, "Name the entry to delete.", "/admin/queue") };
        return match web.store.delete_queued(id).await {
            Ok(true) => {
                info!(admin = %admin, id = id.0, "queued message deleted on the web pages");
                done(&web, user, false, format!("Entry {} deleted.", id.0), "/admin/queue")
            }
            Ok(false) => done(&web, user, true, format!("No waiting entry {}.", id.0), "/admin/queue"),
            Err(e) => store_down(user.nav(), &e),
        };
    }
    match web.store.flush_queue(id, unix_now()).await {
        Ok(n) => {
            if let Some(nudge) = &web.queue_nudge {
                nudge.notify_one();
            }
            info!(admin = %admin, entries = n, "queue flushed on the web pages");
            done(&web, user, n == 0, format!("{n} message(s) will be sent now."), "/admin/queue")
        }
        Err(e) => store_down(user.nav(), &e),
    }
}
