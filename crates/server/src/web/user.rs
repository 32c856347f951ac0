//! The pages for every user: login and logout, the overview (quota, devices), app passwords,
//! two-factor login, the password, the out-of-office reply and the Sieve editor.
//!
//! Every change is a posted form ([`Posted`]: session, CSRF token and rate limit checked) that
//! answers with a redirect to the page it belongs to and a one-time notice (post, redirect,
//! get), except where the answer must show something once (a new app password) or keep what
//! the user typed (a script with a mistake).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use postfach_auth::totp::{self, TotpSecret};
use postfach_auth::{AuthError, Credential, app_password};
use postfach_secret::Secret;
use postfach_store::{PasswordPlusCode, StoreError, TotpSettings};
use tracing::{info, warn};

use super::session::{MAX_PASSWORD_FAILURES, Refused, random_token, same_token};
use super::vacation::{self, Vacation};
use super::{
    ConnMeta, Nav, Notice, Posted, User, Web, cookie, cross_site, login_cookie, message, page, plain,
    read_form, redirect, session_cookie, set_cookie, too_many,
};
use crate::admin_auth::format_time;
use crate::quota::human_bytes;

/// Longest login name accepted by the form, bytes.
const MAX_USER: usize = 256;
/// Longest label of an app password, characters.
const MAX_LABEL: usize = 64;
/// Shortest new password, characters.
pub(crate) const MIN_PASSWORD: usize = 8;
/// Longest new password, bytes (as `user passwd`).
pub(crate) const MAX_PASSWORD: usize = 4096;
/// Longest script the editor takes, bytes (the interpreter's own limit is larger; a form field
/// this size is plenty for a hand-written script).
const MAX_WEB_SCRIPT: usize = 256 * 1024;
/// Longest script name, bytes.
const MAX_SCRIPT_NAME: usize = 128;
/// How long the login form's token lives, seconds.
const LOGIN_TOKEN_AGE: u64 = 900;

fn store_down(nav: Option<Nav>, e: &StoreError) -> Response {
    warn!(error = %e, "a web page could not read or write the store");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        nav,
        "Not now",
        "The store did not answer; try again shortly.",
        "/",
    )
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

// --- login and logout ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "web/login.html")]
struct LoginPage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    csrf: String,
    user: String,
}

/// The login form, with a fresh login token in a cookie and in the form (double submit).
fn login_form(status: StatusCode, conn: ConnMeta, user: &str, notice: Option<Notice>) -> Response {
    let Ok(token) = random_token() else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "No randomness available.\n");
    };
    let mut response =
        page(status, &LoginPage { nav: None, notice, csrf: token.clone(), user: user.to_owned() });
    let value = set_cookie(login_cookie(conn.secure), &token, conn.secure, Some(LOGIN_TOKEN_AGE));
    if let Ok(value) = header::HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub(super) async fn login_page(State(web): State<Arc<Web>>, conn: ConnMeta, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, session_cookie(conn.secure))
        && web.pages.touch(&token).is_some()
    {
        return redirect("/");
    }
    login_form(StatusCode::OK, conn, "", None)
}

pub(super) async fn login(State(web): State<Arc<Web>>, conn: ConnMeta, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(wait) = web.logins.count(conn.peer.ip()) {
        return too_many(None, wait, "/login");
    }
    let mut fields = match read_form(&parts.headers, body, None).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let expected = cookie(&parts.headers, login_cookie(conn.secure)).unwrap_or_default();
    let sent = fields.text("csrf", 64).unwrap_or_default();
    if cross_site(&parts.headers) || expected.is_empty() || !same_token(sent, &expected) {
        let notice = Notice { error: true, text: "The form was too old; please log in again.".to_owned() };
        return login_form(StatusCode::FORBIDDEN, conn, "", Some(notice));
    }
    let user = match fields.line("user") {
        Ok(u) if !u.is_empty() && u.len() <= MAX_USER => u.to_owned(),
        _ => {
            let notice = Notice { error: true, text: "Enter your user name.".to_owned() };
            return login_form(StatusCode::BAD_REQUEST, conn, "", Some(notice));
        }
    };
    let password = Secret::from(fields.take("password"));
    if password.is_empty() || password.len() > MAX_PASSWORD {
        let notice = Notice { error: true, text: "Enter your password.".to_owned() };
        return login_form(StatusCode::BAD_REQUEST, conn, &user, Some(notice));
    }
    let code: String = fields.take("code").chars().filter(|c| !c.is_whitespace()).take(16).collect();
    let code = (!code.is_empty()).then(|| Secret::from(code));
    let refused = |status: StatusCode, text: String| {
        login_form(status, conn, &user, Some(Notice { error: true, text }))
    };
    let principal = match web.ctx.auth.login_web(conn.peer.ip(), &user, password, code).await {
        Ok(p) => p,
        Err(AuthError::BadCredentials | AuthError::Authorization) => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "Wrong user name, password or two-factor code.".to_owned(),
            );
        }
        Err(AuthError::Throttled { retry_after }) => {
            return refused(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed logins for this account; try again in {} seconds.",
                    retry_after.as_secs().max(1)
                ),
            );
        }
        Err(AuthError::Blocked { until }) => {
            let until = i64::try_from(until.as_secs()).unwrap_or(i64::MAX);
            return refused(
                StatusCode::FORBIDDEN,
                format!(
                    "Your address is blocked after too many failed logins, until {} UTC.",
                    format_time(until)
                ),
            );
        }
        Err(e) => {
            warn!(error = %e, "web login failed on the server's side");
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "Logins do not work right now; try again shortly.".to_owned(),
            );
        }
    };
    let token = match web.pages.start(principal, web.ctx.auth.generation()) {
        Ok(t) => t,
        Err(Refused::Full) => {
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many people are logged in; try again later.".to_owned(),
            );
        }
        Err(Refused::NoRandomness) => {
            return refused(StatusCode::SERVICE_UNAVAILABLE, "No randomness available.".to_owned());
        }
    };
    let mut response = redirect("/");
    for value in [
        set_cookie(session_cookie(conn.secure), &token, conn.secure, None),
        set_cookie(login_cookie(conn.secure), "", conn.secure, Some(0)),
    ] {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

pub(super) async fn logout(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = posted.user;
    web.pages.end(&user.token);
    let mut response = redirect("/login");
    let value = set_cookie(session_cookie(user.conn.secure), "", user.conn.secure, Some(0));
    if let Ok(value) = header::HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

// --- overview and devices -----------------------------------------------------------------------

/// One quota row.
pub(crate) struct QuotaRow {
    pub(crate) name: &'static str,
    pub(crate) used: String,
    pub(crate) limit: String,
    pub(crate) percent: Option<u64>,
}

/// The rows of a quota: storage, messages, mailboxes.
pub(crate) fn quota_rows(quota: &postfach_store::Quota) -> Vec<QuotaRow> {
    let rows = [
        ("Storage", quota.storage_used, quota.limits.storage, true),
        ("Messages", quota.messages_used, quota.limits.messages, false),
        ("Mailboxes", quota.mailboxes_used, quota.limits.mailboxes, false),
    ];
    rows.into_iter()
        .map(|(name, used, limit, bytes)| {
            let show = |n: u64| if bytes { human_bytes(n) } else { n.to_string() };
            QuotaRow {
                name,
                used: show(used),
                limit: limit.map_or_else(|| "unlimited".to_owned(), show),
                percent: limit
                    .map(|l| u64::try_from(u128::from(used) * 100 / u128::from(l.max(1))).unwrap_or(100)),
            }
        })
        .collect()
}

struct DeviceRow {
    label: String,
    created: String,
    last_used: String,
    last_address: String,
}

#[derive(Template)]
#[template(path = "web/overview.html")]
struct OverviewPage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    csrf: String,
    name: String,
    quota: Vec<QuotaRow>,
    devices: Vec<DeviceRow>,
    totp: bool,
}

pub(super) async fn overview(State(web): State<Arc<Web>>, user: User) -> Response {
    let account = user.session.principal.account;
    let quota = match web.ctx.share.quota(account).await {
        Ok(q) => q,
        Err(e) => return store_down(user.nav(), &e),
    };
    let devices = match web.ctx.accounts.app_passwords(account).await {
        Ok(d) => d,
        Err(e) => return store_down(user.nav(), &e),
    };
    let totp = match web.ctx.accounts.totp(account).await {
        Ok(t) => t.is_some_and(|t| t.confirmed),
        Err(e) => return store_down(user.nav(), &e),
    };
    let devices = devices
        .into_iter()
        .map(|d| DeviceRow {
            label: d.label,
            created: format_time(d.created),
            last_used: d.last_used.map_or_else(|| "never".to_owned(), format_time),
            last_address: d.last_address.unwrap_or_else(|| "-".to_owned()),
        })
        .collect();
    page(
        StatusCode::OK,
        &OverviewPage {
            nav: user.nav(),
            notice: user.session.notice.clone(),
            csrf: user.session.csrf.clone(),
            name: user.session.principal.name.clone(),
            quota: quota_rows(&quota),
            devices,
            totp,
        },
    )
}

#[derive(Template)]
#[template(path = "web/device.html")]
struct DevicePage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    label: String,
    password: String,
    user: String,
    qr: String,
}

/// A QR code as an inline SVG element (no XML prolog), or nothing when the text does not fit.
pub(crate) fn qr_svg(text: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else { return String::new() };
    let svg =
        code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
    match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => String::new(),
    }
}

pub(super) async fn device_add(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = posted.user;
    let label = match posted.fields.line("label") {
        Ok(l) if !l.is_empty() && l.chars().count() <= MAX_LABEL => l.to_owned(),
        _ => {
            web.pages.notify(
                &user.token,
                true,
                format!("A label is 1 to {MAX_LABEL} characters on one line."),
            );
            return redirect("/#devices");
        }
    };
    let made = app_password::generate().and_then(|p| app_password::hash(&p).map(|h| (p, h)));
    let Ok((password, hash)) = made else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "No randomness available.\n");
    };
    let account = user.session.principal.account;
    match web.ctx.accounts.add_app_password(account, &label, &hash).await {
        Ok(_) => {}
        Err(StoreError::AlreadyExists) => {
            web.pages.notify(
                &user.token,
                true,
                format!("There is an app password labelled “{label}” already."),
            );
            return redirect("/#devices");
        }
        Err(e) => return store_down(user.nav(), &e),
    }
    info!(account = %user.session.principal.name, label = %label, "app password added on the web pages");
    let shown = app_password::display(&password);
    let qr = qr_svg(&shown);
    page(
        StatusCode::OK,
        &DevicePage {
            nav: user.nav(),
            notice: None,
            label,
            password: shown,
            user: user.session.principal.name.clone(),
            qr,
        },
    )
}

pub(super) async fn device_revoke(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = posted.user;
    let label = posted.fields.line("label").unwrap_or_default().to_owned();
    match web.ctx.accounts.revoke_app_password(user.session.principal.account, &label).await {
        Ok(()) => {
            // The store moved the credentials generation; reading it now (not at the next
            // poll) ends the sessions opened with this app password at once.
            refresh(&web).await;
            info!(account = %user.session.principal.name, label = %label, "app password revoked on the web pages");
            web.pages.notify(&user.token, false, format!("“{label}” revoked; its sessions have ended."));
        }
        Err(StoreError::NotFound) => {
            web.pages.notify(&user.token, true, format!("There is no app password labelled “{label}”."));
        }
        Err(e) => return store_down(user.nav(), &e),
    }
    redirect("/#devices")
}

/// Publishes the store's credentials generation now, so live sessions re-check at once.
async fn refresh(web: &Web) {
    if let Err(e) = web.ctx.auth.refresh().await {
        warn!(error = %e, "cannot read the credentials generation");
    }
}

// --- security: two-factor login and the password ------------------------------------------------

struct Enrolment {
    qr: String,
    key: String,
    uri: String,
}

#[derive(Template)]
#[template(path = "web/security.html")]
struct SecurityPage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    csrf: String,
    totp: bool,
    enrolment: Option<Enrolment>,
}

pub(super) async fn security(State(web): State<Arc<Web>>, user: User) -> Response {
    let settings = match web.ctx.accounts.totp(user.session.principal.account).await {
        Ok(s) => s,
        Err(e) => return store_down(user.nav(), &e),
    };
    let totp = settings.as_ref().is_some_and(|t| t.confirmed);
    let enrolment = settings.filter(|t| !t.confirmed).map(|t| {
        let secret = TotpSecret::from_bytes(t.secret);
        let uri = secret.uri(&web.issuer, &user.session.principal.name);
        Enrolment { qr: qr_svg(&uri), key: secret.to_base32(), uri }
    });
    page(
        StatusCode::OK,
        &SecurityPage {
            nav: user.nav(),
            notice: user.session.notice.clone(),
            csrf: user.session.csrf.clone(),
            totp,
            enrolment,
        },
    )
}

pub(super) async fn totp_start(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = posted.user;
    let account = user.session.principal.account;
    match web.ctx.accounts.totp(account).await {
        Ok(Some(t)) if t.confirmed => {
            web.pages.notify(&user.token, true, "Two-factor login is on already.");
        }
        // A pending enrolment is shown again: the app may have it already.
        Ok(Some(_)) => {}
        Ok(None) => {
            let Ok(secret) = TotpSecret::generate() else {
                return plain(StatusCode::SERVICE_UNAVAILABLE, "No randomness available.\n");
            };
            let pending = TotpSettings {
                secret: secret.as_bytes().to_vec(),
                confirmed: false,
                password_plus_code: PasswordPlusCode::Refused,
                last_step: None,
                created: crate::admin_auth::unix_now(),
            };
            if let Err(e) = web.ctx.accounts.set_totp(account, Some(&pending)).await {
                return store_down(user.nav(), &e);
            }
        }
        Err(e) => return store_down(user.nav(), &e),
    }
    redirect("/security")
}

/// The code field: digits only, spaces dropped.
fn code_field(posted: &mut Posted) -> String {
    posted.fields.take("code").chars().filter(|c| !c.is_whitespace()).take(16).collect()
}

pub(super) async fn totp_confirm(State(web): State<Arc<Web>>, mut posted: Posted) -> Response {
    let code = code_field(&mut posted);
    let user = posted.user;
    let account = user.session.principal.account;
    let pending = match web.ctx.accounts.totp(account).await {
        Ok(Some(t)) if !t.confirmed => t,
        Ok(_) => {
            web.pages.notify(&user.token, true, "There is no enrolment to confirm; start again.");
            return redirect("/security");
        }
        Err(e) => return store_down(user.nav(), &e),
    };
    let secret = TotpSecret::from_bytes(pending.secret.clone());
    let Some(step) = totp::verify(&secret, code.as_bytes(), now(), None) else {
        web.pages.notify(
            &user.token,
            true,
            "That code does not match; is the phone's clock right? Try the next code.",
        );
        return redirect("/security");
    };
    // The confirming code's step counts as used, so it cannot also open a session.
    let confirmed = TotpSettings { confirmed: true, last_step: Some(step), ..pending };
    if let Err(e) = web.ctx.accounts.set_totp(account, Some(&confirmed)).await {
        return store_down(user.nav(), &e);
    }
    // This session proved the code just now; sessions opened with the password alone end.
    web.pages.update(&user.token, |s| s.principal.credential = Credential::PasswordAndCode);
    refresh(&web).await;
    info!(account = %user.session.principal.name, "two-factor login enabled on the web pages");
    web.pages.notify(
        &user.token,
        false,
        "Two-factor login is on. Mail programs now need app passwords; sessions opened with the password alone have ended.",
    );
    redirect("/security")
}

pub(super) async fn totp_disable(State(web): State<Arc<Web>>, mut posted: Posted) -> Response {
    let code = code_field(&mut posted);
    let user = posted.user;
    let account = user.session.principal.account;
    let settings = match web.ctx.accounts.totp(account).await {
        Ok(Some(t)) => t,
        Ok(None) => return redirect("/security"),
        Err(e) => return store_down(user.nav(), &e),
    };
    if settings.confirmed {
        let secret = TotpSecret::from_bytes(settings.secret.clone());
        let claimed = match totp::verify(&secret, code.as_bytes(), now(), settings.last_step) {
            Some(step) => match web.ctx.accounts.claim_totp_step(account, step).await {
                Ok(claimed) => claimed,
                Err(e) => return store_down(user.nav(), &e),
            },
            None => false,
        };
        if !claimed {
            web.pages.notify(
                &user.token,
                true,
                "That code does not match (or was used already); two-factor login stays on.",
            );
            return redirect("/security");
        }
    }
    if let Err(e) = web.ctx.accounts.set_totp(account, None).await {
        return store_down(user.nav(), &e);
    }
    refresh(&web).await;
    let text = if settings.confirmed {
        info!(account = %user.session.principal.name, "two-factor login disabled on the web pages");
        "Two-factor login is off."
    } else {
        "Set-up cancelled."
    };
    web.pages.notify(&user.token, false, text);
    redirect("/security")
}

pub(super) async fn password(State(web): State<Arc<Web>>, mut posted: Posted) -> Response {
    let current = Secret::from(posted.fields.take("current"));
    let new = Secret::from(posted.fields.take("new"));
    let repeat = Secret::from(posted.fields.take("repeat"));
    let user = posted.user;
    let fail = |text: &str| {
        web.pages.notify(&user.token, true, text);
        redirect("/security")
    };
    if new != repeat {
        return fail("The new passwords differ.");
    }
    let chars = std::str::from_utf8(new.expose_secret()).map_or(0, |s| s.chars().count());
    if chars < MIN_PASSWORD || new.len() > MAX_PASSWORD {
        return fail(&format!(
            "A password has {MIN_PASSWORD} characters at least (and {MAX_PASSWORD} bytes at most)."
        ));
    }
    match web.ctx.auth.confirm_password(&user.session.principal, current).await {
        Ok(true) => {}
        Ok(false) => {
            let failures = user.session.password_failures + 1;
            if failures >= MAX_PASSWORD_FAILURES {
                warn!(account = %user.session.principal.name, addr = %user.conn.peer.ip(), "page session ended after wrong current passwords");
                web.pages.end(&user.token);
                return redirect("/login");
            }
            web.pages.update(&user.token, |s| s.password_failures = failures);
            return fail("The current password is wrong.");
        }
        Err(e) => {
            warn!(error = %e, "cannot check the current password");
            return fail("The password cannot be checked right now; try again shortly.");
        }
    }
    let (hash, scram) = match crate::admin_auth::password_credentials(new).await {
        Ok(made) => made,
        Err(e) => {
            warn!(error = %e, "cannot hash a new password");
            return fail("The password cannot be changed right now; try again shortly.");
        }
    };
    let account = user.session.principal.account;
    if let Err(e) = web.ctx.accounts.set_password(account, &hash, Some(&scram)).await {
        return store_down(user.nav(), &e);
    }
    // This session goes on with the new password; every other one (pages, and IMAP sessions
    // opened with the old password) ends, as after `postfach user passwd`.
    match web.ctx.auth.restamp(&user.session.principal).await {
        Ok(principal) => web.pages.update(&user.token, |s| {
            s.principal = principal;
            s.password_failures = 0;
        }),
        Err(e) => warn!(error = %e, "cannot renew the page session after a password change"),
    }
    let ended = web.pages.end_account(account, Some(&user.token));
    refresh(&web).await;
    info!(account = %user.session.principal.name, page_sessions_ended = ended, "password changed on the web pages");
    web.pages.notify(&user.token, false, "Password changed; your other sessions have ended.");
    redirect("/security")
}

// --- out of office ------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "web/vacation.html")]
struct VacationPage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    csrf: String,
    active: bool,
    replaces: Option<String>,
    subject: String,
    text: String,
    days: u32,
    /// First day (`yyyy-mm-dd`), empty: from now.
    first: String,
    /// Last day, empty: until turned off.
    last: String,
}

/// The stored out-of-office settings, and which script is active.
async fn vacation_state(web: &Web, user: &User) -> Result<(Option<Vacation>, Option<String>), StoreError> {
    let account = user.session.principal.account;
    let stored = web.sieve.sieve_script(account, vacation::SCRIPT_NAME).await?;
    let active = web.sieve.active_sieve_script(account).await?.map(|s| s.name);
    Ok((stored.as_deref().and_then(Vacation::from_script), active))
}

pub(super) async fn vacation_page(State(web): State<Arc<Web>>, user: User) -> Response {
    let (stored, active) = match vacation_state(&web, &user).await {
        Ok(state) => state,
        Err(e) => return store_down(user.nav(), &e),
    };
    let on = active.as_deref() == Some(vacation::SCRIPT_NAME);
    let v = stored.unwrap_or_else(|| Vacation {
        subject: "Out of office".to_owned(),
        text: "I am away and will answer your message when I am back.".to_owned(),
        days: 7,
        ..Vacation::default()
    });
    page(
        StatusCode::OK,
        &VacationPage {
            nav: user.nav(),
            notice: user.session.notice.clone(),
            csrf: user.session.csrf.clone(),
            active: on,
            replaces: active.filter(|name| name != vacation::SCRIPT_NAME),
            subject: v.subject,
            text: v.text,
            days: v.days,
            first: v.first.unwrap_or_default(),
            last: v.last.unwrap_or_default(),
        },
    )
}

pub(super) async fn vacation(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = &posted.user;
    let account = user.session.principal.account;
    let fail = |text: String| {
        web.pages.notify(&user.token, true, text);
        redirect("/vacation")
    };
    let (stored, active) = match vacation_state(&web, user).await {
        Ok(state) => state,
        Err(e) => return store_down(user.nav(), &e),
    };
    let ours_active = active.as_deref() == Some(vacation::SCRIPT_NAME);
    if posted.fields.line("action").unwrap_or_default() == "off" {
        if ours_active {
            let previous = stored.and_then(|v| v.previous);
            let back = match previous {
                Some(name) => match web.sieve.sieve_script(account, &name).await {
                    Ok(Some(_)) => Some(name),
                    Ok(None) => None,
                    Err(e) => return store_down(user.nav(), &e),
                },
                None => None,
            };
            if let Err(e) = web.sieve.activate_sieve_script(account, back.as_deref()).await {
                return store_down(user.nav(), &e);
            }
            let text = match back {
                Some(name) => format!("Out-of-office reply off; your filter “{name}” is active again."),
                None => "Out-of-office reply off.".to_owned(),
            };
            web.pages.notify(&user.token, false, text);
        }
        return redirect("/vacation");
    }
    let subject = match posted.fields.line("subject") {
        Ok(s) if !s.is_empty() && s.len() <= vacation::MAX_SUBJECT => s.to_owned(),
        _ => return fail(format!("A subject is one line of at most {} bytes.", vacation::MAX_SUBJECT)),
    };
    let text = match posted.fields.text("text", vacation::MAX_TEXT) {
        Ok(t) if !t.trim().is_empty() => t.replace("\r\n", "\n"),
        _ => return fail(format!("The message is 1 to {} bytes.", vacation::MAX_TEXT)),
    };
    let days = match posted.fields.line("days").ok().and_then(|d| d.parse::<u32>().ok()) {
        Some(d) if vacation::DAYS.contains(&d) => d,
        _ => {
            return fail(format!(
                "Days between replies: a number from {} to {}.",
                vacation::DAYS.start(),
                vacation::DAYS.end()
            ));
        }
    };
    let day = |name: &str| match posted.fields.line(name).unwrap_or_default() {
        "" => Ok(None),
        d if vacation::is_day(d) => Ok(Some(d.to_owned())),
        _ => Err(()),
    };
    let (Ok(first), Ok(last)) = (day("first"), day("last")) else {
        return fail("First and last day: a date like 2026-12-24, or empty.".to_owned());
    };
    if let (Some(f), Some(l)) = (&first, &last)
        && f > l
    {
        return fail("The last day comes before the first.".to_owned());
    }
    let previous = if ours_active { stored.and_then(|v| v.previous) } else { active };
    let v = Vacation { subject, text, days, first, last, previous };
    let script = v.script();
    if let Err(e) = postfach_sieve::compile(&script) {
        return fail(format!("The reply cannot be written as Sieve: {e}"));
    }
    if let Err(e) = web.sieve.put_sieve_script(account, vacation::SCRIPT_NAME, &script).await {
        return store_down(user.nav(), &e);
    }
    if let Err(e) = web.sieve.activate_sieve_script(account, Some(vacation::SCRIPT_NAME)).await {
        return store_down(user.nav(), &e);
    }
    info!(account = %user.session.principal.name, "out-of-office reply set on the web pages");
    web.pages.notify(&user.token, false, "Out-of-office reply on.");
    redirect("/vacation")
}

// --- the Sieve editor ---------------------------------------------------------------------------

struct ScriptLink {
    name: String,
    link: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "web/sieve.html")]
struct SievePage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    csrf: String,
    scripts: Vec<ScriptLink>,
    name: String,
    script: String,
    active: bool,
    error: Option<String>,
}

async fn sieve_view(
    web: &Web,
    user: &User,
    name: String,
    script: Option<String>,
    error: Option<String>,
) -> Response {
    let account = user.session.principal.account;
    let list = match web.sieve.sieve_scripts(account).await {
        Ok(l) => l,
        Err(e) => return store_down(user.nav(), &e),
    };
    let active = list.iter().any(|s| s.active && s.name == name);
    let script = match script {
        Some(text) => text,
        None => match web.sieve.sieve_script(account, &name).await {
            Ok(text) => text.unwrap_or_default(),
            Err(e) => return store_down(user.nav(), &e),
        },
    };
    let scripts = list
        .into_iter()
        .map(|s| ScriptLink {
            link: form_urlencoded::byte_serialize(s.name.as_bytes()).collect(),
            name: s.name,
            active: s.active,
        })
        .collect();
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    page(
        status,
        &SievePage {
            nav: user.nav(),
            notice: user.session.notice.clone(),
            csrf: user.session.csrf.clone(),
            scripts,
            name,
            script,
            active,
            error,
        },
    )
}

pub(super) async fn sieve_page(State(web): State<Arc<Web>>, user: User, uri: Uri) -> Response {
    let query = match super::query(&uri) {
        Ok(q) => q,
        Err(e) => return message(StatusCode::BAD_REQUEST, user.nav(), "Bad address", &e.0, "/sieve"),
    };
    let name = match query.line("name") {
        Ok(n) if !n.is_empty() && n.len() <= MAX_SCRIPT_NAME => n.to_owned(),
        _ => match web.sieve.active_sieve_script(user.session.principal.account).await {
            Ok(Some(s)) => s.name,
            Ok(None) => "filters".to_owned(),
            Err(e) => return store_down(user.nav(), &e),
        },
    };
    sieve_view(&web, &user, name, None, None).await
}

pub(super) async fn sieve(State(web): State<Arc<Web>>, posted: Posted) -> Response {
    let user = &posted.user;
    let account = user.session.principal.account;
    let name = match posted.fields.line("name") {
        Ok(n) if !n.is_empty() && n.len() <= MAX_SCRIPT_NAME => n.to_owned(),
        _ => {
            web.pages.notify(
                &user.token,
                true,
                format!("A script name is 1 to {MAX_SCRIPT_NAME} bytes on one line."),
            );
            return redirect("/sieve");
        }
    };
    let text = match posted.fields.text("script", MAX_WEB_SCRIPT) {
        Ok(t) => t.replace("\r\n", "\n"),
        Err(_) => {
            let error = format!("The script is larger than {} KiB.", MAX_WEB_SCRIPT / 1024);
            return sieve_view(&web, user, name, Some(String::new()), Some(error)).await;
        }
    };
    // The interpreter's own message: "line:column: what was expected".
    if let Err(e) = postfach_sieve::compile(&text) {
        return sieve_view(&web, user, name, Some(text), Some(format!("Not saved: {e}"))).await;
    }
    if let Err(e) = web.sieve.put_sieve_script(account, &name, &text).await {
        let why = match e {
            StoreError::InvalidName(why) | StoreError::NotAllowed(why) | StoreError::Limit(why) => why,
            e => return store_down(user.nav(), &e),
        };
        return sieve_view(&web, user, name, Some(text), Some(format!("Not saved: {why}"))).await;
    }
    let activate = posted.fields.checked("activate");
    let was_active = match web.sieve.active_sieve_script(account).await {
        Ok(s) => s.is_some_and(|s| s.name == name),
        Err(e) => return store_down(user.nav(), &e),
    };
    let change = match (activate, was_active) {
        (true, false) => Some(Some(name.as_str())),
        (false, true) => Some(None),
        _ => None,
    };
    if let Some(target) = change
        && let Err(e) = web.sieve.activate_sieve_script(account, target).await
    {
        return store_down(user.nav(), &e);
    }
    let state = if activate { "saved and active" } else { "saved (not active)" };
    web.pages.notify(&user.token, false, format!("Script “{name}” {state}."));
    let link: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    redirect(&format!("/sieve?name={link}"))
}
