//! The web pages (issue 19): users' self-service and the admin pages, on `[web] listen`
//! (plain HTTP, default 127.0.0.1:8080) and `[web] listen_tls` (HTTPS with IMAP's
//! certificates).
//!
//! Server-rendered HTML that works without JavaScript (there is none), one stylesheet, no
//! asset from outside the binary. axum routes the requests; hyper's HTTP/1.1 server runs each
//! connection under our own accept loop, which holds the caps and timeouts, and does the TLS
//! handshake with the IMAP listeners' acceptor. Logins go through the IMAP server's
//! [`postfach_auth::Authenticator`] ([`Authenticator::login_web`]: same throttling, blocks and
//! log line, mechanism `WEB`; app passwords never open these pages). Changes go through the
//! same store calls as the CLI, and reach live IMAP sessions the same way (the credentials
//! generation, refreshed at once rather than at the next poll; the session registry's kick).
//!
//! # Layout
//! - this file: listeners, connections, the routes, security headers, the extractors that
//!   find the page session ([`User`]) and check a posted form ([`Posted`]), page helpers.
//! - `session`: page sessions (cookie tokens, CSRF tokens, idle timeout, cap), rate limits.
//! - `form`: form bodies and query strings under named limits.
//! - `user`: the pages for everyone (login, overview and devices, security, out of office,
//!   filters).
//! - `admin`: the pages for accounts with the admin flag (accounts, teams, sessions, bans,
//!   health).
//! - `vacation`: the out-of-office form ↔ a Sieve script.
//!
//! # Security
//! See SECURITY.md ("The web pages"). In short: session cookies HttpOnly, SameSite=Strict,
//! Secure and `__Host-` on HTTPS; a CSRF token in every form, checked in constant time; a
//! strict Content-Security-Policy (`default-src 'none'`, the stylesheet from `'self'`, no
//! script at all), framing refused, `no-store` on every page; no secret in a URL or a log
//! line; every page checks its right on the server at every request (the admin flag is read
//! from the store each time); login posts limited per address, changes per session.
//!
//! # Limits
//! [`MAX_REQUEST_HEAD`] bytes of request line and headers, at most [`MAX_HEADERS`] headers, read
//! within [`HEADER_TIMEOUT`]; form bodies at most [`form::MAX_FORM_BODY`]; a request answered
//! within [`REQUEST_DEADLINE`]; a connection lives at most [`CONNECTION_LIFETIME`]; at most
//! `[web] max_connections` connections at once (more wait in the kernel's backlog); the TLS
//! handshake within [`HANDSHAKE_TIMEOUT`].
//!
//! [`Authenticator::login_web`]: postfach_auth::Authenticator::login_web

mod admin;
mod form;
mod session;
mod user;
mod vacation;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use postfach_imap::ServerContext;
use postfach_store::{SieveStore, Store};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{Instrument, debug, info, info_span, warn};

use self::form::{Fields, MAX_FORM_BODY};
pub(crate) use self::session::{Notice, PageSession, PageSessions};
use crate::config::WebConfig;
use crate::imap_conn::shutdown_requested;
use crate::listener::SHUTDOWN_GRACE;
use crate::sessions::Sessions;

/// Longest request line plus headers, bytes.
pub(crate) const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Most headers in one request.
pub(crate) const MAX_HEADERS: usize = 64;
/// Time a client has to send a request's head (also the keep-alive idle time).
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a request has from its head to its answer (body included).
pub(crate) const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// Longest life of one connection (a browser simply opens another).
pub(crate) const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Time a TLS client has for its handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The Content-Security-Policy of every answer: nothing but our own stylesheet and forms to
/// ourselves; QR codes are inline SVG elements, not resources.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                              frame-ancestors 'none'; base-uri 'none'";

/// Everything the pages share.
pub(crate) struct Web {
    /// The IMAP server's context: store traits and the authenticator.
    pub(crate) ctx: Arc<ServerContext>,
    /// The whole store (admin flag, health).
    pub(crate) store: Arc<dyn Store>,
    /// Sieve scripts.
    pub(crate) sieve: Arc<dyn SieveStore>,
    /// The live IMAP and POP3 sessions (admin: list and kick).
    pub(crate) imap_sessions: Arc<Sessions>,
    /// What the metrics endpoint reads (admin: health).
    pub(crate) sources: Arc<crate::metrics::Sources>,
    /// Page sessions.
    pub(crate) pages: PageSessions,
    /// Login posts per address.
    pub(crate) logins: session::LoginLimiter,
    /// The TOTP issuer shown by authenticator apps (`[auth] totp_issuer`).
    pub(crate) issuer: String,
    /// IMAP's TLS acceptor (same certificates).
    pub(crate) tls: TlsAcceptor,
    /// Connections open at once.
    pub(crate) slots: Arc<Semaphore>,
    /// Wakes the outbound queue's sender after "Send now" (none without a relay).
    pub(crate) queue_nudge: Option<Arc<tokio::sync::Notify>>,
}

impl Web {
    /// The pages' shared state.
    pub(crate) fn new(
        config: &WebConfig,
        parts: (Arc<ServerContext>, Arc<dyn Store>, Arc<dyn SieveStore>),
        imap_sessions: Arc<Sessions>,
        sources: Arc<crate::metrics::Sources>,
        issuer: String,
        tls: TlsAcceptor,
    ) -> Self {
        let (ctx, store, sieve) = parts;
        Self {
            ctx,
            store,
            sieve,
            imap_sessions,
            sources,
            pages: PageSessions::new(config.session_idle, config.max_sessions),
            logins: session::LoginLimiter::default(),
            issuer,
            tls,
            slots: Arc::new(Semaphore::new(config.max_connections)),
            queue_nudge: None,
        }
    }
}

/// The bound web listeners.
pub(crate) struct Listeners {
    plain: Vec<TcpListener>,
    tls: Vec<TcpListener>,
}

/// Binds every `[web] listen` and `listen_tls` address; fails on the first that cannot be bound.
pub(crate) async fn bind(config: &WebConfig) -> anyhow::Result<Listeners> {
    let mut listeners = Listeners { plain: Vec::new(), tls: Vec::new() };
    for (addresses, into, kind) in
        [(&config.listen, &mut listeners.plain, "web"), (&config.listen_tls, &mut listeners.tls, "webs")]
    {
        for addr in addresses {
            let socket = TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({kind}): {e}"))?;
            into.push(socket);
        }
    }
    Ok(listeners)
}

/// The `postfach: listening web ADDR` and `… webs ADDR` lines.
pub(crate) fn announcement(listeners: &Listeners) -> std::io::Result<String> {
    let mut text = String::new();
    for (list, kind) in [(&listeners.plain, "web"), (&listeners.tls, "webs")] {
        for l in list {
            let addr = l.local_addr()?;
            text.push_str(&format!("postfach: listening {kind} {addr}\n"));
            info!(kind, %addr, "listening");
        }
    }
    Ok(text)
}

/// Where a request came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnMeta {
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// Whether the connection is HTTPS.
    pub(crate) secure: bool,
}

/// Serves every listener until `shutdown`, then waits (bounded) for the connections.
pub(crate) async fn serve(listeners: Listeners, web: Arc<Web>, shutdown: watch::Receiver<bool>) {
    let router = routes(Arc::clone(&web));
    let mut loops = JoinSet::new();
    for (list, secure) in [(listeners.plain, false), (listeners.tls, true)] {
        for listener in list {
            loops.spawn(accept_loop(listener, secure, Arc::clone(&web), router.clone(), shutdown.clone()));
        }
    }
    while let Some(result) = loops.join_next().await {
        if let Err(e) = result {
            warn!(error = %e, "web accept loop failed");
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    secure: bool,
    web: Arc<Web>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        // Wait for a slot first: over the cap, clients wait in the backlog.
        let permit = tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            permit = Arc::clone(&web.slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, kind = "web", "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let meta = ConnMeta { peer, secure };
        let span = info_span!("web", %peer);
        let (web, router, shutdown) = (Arc::clone(&web), router.clone(), shutdown.clone());
        connections.spawn(
            async move {
                connection(tcp, meta, web, router, shutdown).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
    drop(listener);
    let drained =
        tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} })
            .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

async fn connection(
    tcp: TcpStream,
    meta: ConnMeta,
    web: Arc<Web>,
    router: Router,
    shutdown: watch::Receiver<bool>,
) {
    if meta.secure {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, web.tls.accept(tcp)).await {
            Ok(Ok(tls)) => http(tls, meta, router, shutdown).await,
            Ok(Err(e)) => debug!(error = %e, "TLS handshake failed"),
            Err(_) => debug!("TLS handshake timed out"),
        }
    } else {
        http(tcp, meta, router, shutdown).await;
    }
}

/// Runs HTTP/1.1 on one connection until the client leaves, a limit ends it, or shutdown.
async fn http<S>(stream: S, meta: ConnMeta, router: Router, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(meta);
        let mut router = router.clone();
        async move {
            let call = tower_service::Service::call(&mut router, request.map(Body::new));
            let mut response = match tokio::time::timeout(REQUEST_DEADLINE, call).await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => plain(StatusCode::SERVICE_UNAVAILABLE, "The request took too long.\n"),
            };
            security_headers(response.headers_mut(), meta.secure);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD)
        .max_headers(MAX_HEADERS);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
    tokio::pin!(lifetime);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    debug!(error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = shutdown_requested(&mut shutdown), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = &mut lifetime, if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// The headers every answer carries (see the module documentation).
fn security_headers(headers: &mut HeaderMap, secure: bool) {
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (header::HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if secure {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
}

fn routes(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(user::overview))
        .route("/login", get(user::login_page).post(user::login))
        .route("/logout", post(user::logout))
        .route("/devices/add", post(user::device_add))
        .route("/devices/revoke", post(user::device_revoke))
        .route("/security", get(user::security))
        .route("/totp/start", post(user::totp_start))
        .route("/totp/confirm", post(user::totp_confirm))
        .route("/totp/disable", post(user::totp_disable))
        .route("/password", post(user::password))
        .route("/vacation", get(user::vacation_page).post(user::vacation))
        .route("/sieve", get(user::sieve_page).post(user::sieve))
        .route("/admin", get(|| async { redirect("/admin/accounts") }))
        .route("/admin/accounts", get(admin::accounts))
        .route("/admin/accounts/create", post(admin::account_create))
        .route("/admin/account", get(admin::account))
        .route("/admin/account/quota", post(admin::account_quota))
        .route("/admin/account/admin", post(admin::account_admin))
        .route("/admin/account/delete", post(admin::account_delete))
        .route("/admin/teams", get(admin::teams))
        .route("/admin/teams/create", post(admin::team_create))
        .route("/admin/team/member", post(admin::team_member))
        .route("/admin/team/remove-member", post(admin::team_remove_member))
        .route("/admin/sessions", get(admin::sessions))
        .route("/admin/sessions/kick", post(admin::kick))
        .route("/admin/bans", get(admin::bans))
        .route("/admin/bans/remove", post(admin::ban_remove))
        .route("/admin/health", get(admin::health))
        .route("/admin/queue", get(admin::queue).post(admin::queue_change))
        .route("/health", get(health))
        .route("/static/style.css", get(stylesheet))
        .fallback(|| async { plain(StatusCode::NOT_FOUND, "Not found.\n") })
        .with_state(web)
}

async fn stylesheet() -> Response {
    let mut response =
        ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("style.css")).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

/// `/health`: 200 when the store answers (as on the metrics listener; no figures here).
async fn health(axum::extract::State(web): axum::extract::State<Arc<Web>>) -> Response {
    let healthy = matches!(tokio::time::timeout(Duration::from_secs(2), web.store.ping()).await, Ok(Ok(())));
    if healthy {
        plain(StatusCode::OK, "ok\n")
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
    }
}

// --- answers ------------------------------------------------------------------------------------

/// A plain-text answer.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// 303 See Other to a path of ours.
pub(crate) fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A rendered template with a status.
pub(crate) fn page(status: StatusCode, template: &impl askama::Template) -> Response {
    match template.render() {
        Ok(html) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => {
            warn!(error = %e, "a page did not render");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "The page could not be shown; see the server log.\n")
        }
    }
}

/// The navigation bar of a logged-in page.
#[derive(Debug, Clone)]
pub(crate) struct Nav {
    /// The account's name.
    pub(crate) user: String,
    /// Whether the admin links show.
    pub(crate) admin: bool,
    /// The session's CSRF token (the logout form).
    pub(crate) csrf: String,
}

/// A page with a heading, a sentence and a way back.
#[derive(askama::Template)]
#[template(path = "web/message.html")]
pub(crate) struct MessagePage {
    nav: Option<Nav>,
    notice: Option<Notice>,
    heading: String,
    text: String,
    back: String,
}

/// An error page (also for visitors without a session).
pub(crate) fn message(
    status: StatusCode,
    nav: Option<Nav>,
    heading: &str,
    text: &str,
    back: &str,
) -> Response {
    page(
        status,
        &MessagePage {
            nav,
            notice: None,
            heading: heading.to_owned(),
            text: text.to_owned(),
            back: back.to_owned(),
        },
    )
}

/// 429 with Retry-After.
pub(crate) fn too_many(nav: Option<Nav>, wait: Duration, back: &str) -> Response {
    let seconds = wait.as_secs().max(1);
    let mut response = message(
        StatusCode::TOO_MANY_REQUESTS,
        nav,
        "Slow down",
        &format!("Too many requests; try again in {seconds} seconds."),
        back,
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Whether the browser says the request came from another site (Fetch Metadata).
fn cross_site(headers: &HeaderMap) -> bool {
    headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site")
}

// --- cookies ------------------------------------------------------------------------------------

/// The session cookie's name: `__Host-` on HTTPS (the browser then insists on Secure, Path=/
/// and no Domain).
pub(crate) fn session_cookie(secure: bool) -> &'static str {
    if secure { "__Host-postfach" } else { "postfach" }
}

/// The login form's token cookie.
pub(crate) fn login_cookie(secure: bool) -> &'static str {
    if secure { "__Host-postfach-login" } else { "postfach-login" }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure on HTTPS; `max_age` 0
/// deletes it, `None` makes a browser-session cookie.
pub(crate) fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> String {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        text.push_str("; Secure");
    }
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    text
}

/// The value of cookie `name` in the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

// --- extractors ---------------------------------------------------------------------------------

impl<S: Send + Sync> FromRequestParts<S> for ConnMeta {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ConnMeta>()
            .copied()
            .ok_or_else(|| plain(StatusCode::INTERNAL_SERVER_ERROR, "no connection data\n"))
    }
}

/// A logged-in visitor: the page session, checked against the credentials at every request.
pub(crate) struct User {
    /// The session's token (from the cookie).
    pub(crate) token: String,
    /// The session as it was at the start of the request.
    pub(crate) session: PageSession,
    /// The connection.
    pub(crate) conn: ConnMeta,
    /// Whether the account has the admin flag (read from the store for this request).
    pub(crate) admin: bool,
}

impl User {
    /// The navigation bar.
    pub(crate) fn nav(&self) -> Option<Nav> {
        Some(Nav {
            user: self.session.principal.name.clone(),
            admin: self.admin,
            csrf: self.session.csrf.clone(),
        })
    }

    /// 403 unless the account has the admin flag.
    pub(crate) fn require_admin(&self) -> Result<(), Response> {
        if self.admin {
            return Ok(());
        }
        Err(message(
            StatusCode::FORBIDDEN,
            self.nav(),
            "Not allowed",
            "These pages are for administrators.",
            "/",
        ))
    }
}

impl FromRequestParts<Arc<Web>> for User {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Arc<Web>) -> Result<Self, Self::Rejection> {
        let conn = ConnMeta::from_request_parts(parts, web).await?;
        let Some(token) = cookie(&parts.headers, session_cookie(conn.secure)) else {
            return Err(redirect("/login"));
        };
        let Some(session) = web.pages.touch(&token) else {
            return Err(redirect("/login"));
        };
        // Credentials changed somewhere (a password, a second factor, an account deleted):
        // the auth layer says whether this login still holds, as for an IMAP session.
        let generation = web.ctx.auth.generation();
        if generation != session.generation {
            match web.ctx.auth.still_valid(&session.principal).await {
                Ok(true) => web.pages.update(&token, |s| s.generation = generation),
                Ok(false) => {
                    web.pages.end(&token);
                    return Err(redirect("/login"));
                }
                Err(e) => {
                    warn!(error = %e, "cannot check a page session's credentials");
                    return Err(plain(StatusCode::SERVICE_UNAVAILABLE, "The store is not answering.\n"));
                }
            }
        }
        let admin = match web.store.is_admin(session.principal.account).await {
            Ok(admin) => admin,
            Err(e) => {
                warn!(error = %e, "cannot read the admin flag");
                return Err(plain(StatusCode::SERVICE_UNAVAILABLE, "The store is not answering.\n"));
            }
        };
        Ok(User { token, session, conn, admin })
    }
}

/// A posted form of a logged-in visitor: the session found, the body read under the limits,
/// the CSRF token checked, the change counted against the session's rate limit.
pub(crate) struct Posted {
    /// The visitor.
    pub(crate) user: User,
    /// The form's fields.
    pub(crate) fields: Fields,
}

impl FromRequest<Arc<Web>> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, web: &Arc<Web>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let user = User::from_request_parts(&mut parts, web).await?;
        let fields = read_form(&parts.headers, body, user.nav()).await?;
        let sent = fields.text("csrf", 64).unwrap_or_default();
        if cross_site(&parts.headers) || !session::same_token(sent, &user.session.csrf) {
            return Err(message(
                StatusCode::FORBIDDEN,
                user.nav(),
                "Form refused",
                "The form was not sent from this site's page (or it is too old); reload the page and try again.",
                "/",
            ));
        }
        if let Err(wait) = web.pages.count_change(&user.token) {
            return Err(too_many(user.nav(), wait, "/"));
        }
        Ok(Posted { user, fields })
    }
}

/// Reads an urlencoded form body under [`MAX_FORM_BODY`] and the field limits.
pub(crate) async fn read_form(headers: &HeaderMap, body: Body, nav: Option<Nav>) -> Result<Fields, Response> {
    let urlencoded = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|t| t.trim() == "application/x-www-form-urlencoded")
    });
    if !urlencoded {
        return Err(message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            nav,
            "Form refused",
            "Forms are sent as application/x-www-form-urlencoded.",
            "/",
        ));
    }
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Err(message(
                StatusCode::PAYLOAD_TOO_LARGE,
                nav,
                "Form refused",
                &format!("The form is larger than {} KiB.", MAX_FORM_BODY / 1024),
                "/",
            ));
        }
    };
    Fields::parse(&bytes).map_err(|e| message(StatusCode::BAD_REQUEST, nav, "Form refused", &e.0, "/"))
}

/// The fields of a request's query string (`?name=...`), under the form limits.
pub(crate) fn query(parts: &axum::http::Uri) -> Result<Fields, form::FormError> {
    Fields::parse(parts.query().unwrap_or_default().as_bytes())
}
