//! The web pages (issue 19), black box: the real server with `[web]` listeners on port 0.
//!
//! Plain HTTP tests speak HTTP/1.1 over a `TcpStream` (and TLS for the HTTPS listener) with a
//! tiny client of their own: cookies' attributes, the security headers, CSRF refusals, the
//! limits, the rate limits, the no-JavaScript form flows, a password change ending the other
//! sessions. The browser test drives Debian's headless Chromium through chromedriver with a
//! small W3C WebDriver client of its own (JSON over the same HTTP client): a user logs in with
//! a TOTP code, makes an app password and logs in over IMAP with it, revokes it and the IMAP
//! session ends, sets an out-of-office reply that an LMTP delivery answers through a fake
//! relay, meets a Sieve error with its line and column; an admin creates a team that a member
//! then sees over IMAP. It takes the screenshots in docs/ (`POSTFACH_SCREENSHOTS=DIR` writes
//! them elsewhere). Without chromedriver it skips with a message, unless
//! `POSTFACH_REQUIRE_CLIENTS=1` (CI).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{PATIENCE, TestServer};
use postfach_auth::totp::{self, TotpSecret};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

// --- a tiny HTTP/1.1 client -------------------------------------------------------------------

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `name=value` of the Set-Cookie for `name`, and the whole header.
    fn cookie(&self, name: &str) -> Option<(String, String)> {
        self.cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| (c.split(';').next().unwrap().to_owned(), c.to_owned()))
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let start = self.body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        self.body[start..start + self.body[start..].find('"').unwrap()].to_owned()
    }
}

fn exchange(stream: &mut (impl Read + Write), request: &[u8]) -> Reply {
    stream.write_all(request).unwrap();
    stream.flush().unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    // Until the answer is complete (chromedriver keeps connections open), or the end.
    while !complete(&raw) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
    }
    parse_reply(&raw)
}

/// Whether `raw` holds a whole answer: the head and Content-Length bytes, or a last chunk.
fn complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    if let Some(length) = head.lines().find_map(|l| l.strip_prefix("content-length:")) {
        return body.len() >= length.trim().parse::<usize>().unwrap_or(usize::MAX);
    }
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    false
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Reply { status, headers, body }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

fn request(method: &str, path: &str, cookie: Option<&str>, body: Option<&str>, extra: &str) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}");
    if let Some(c) = cookie {
        text.push_str(&format!("Cookie: {c}\r\n"));
    }
    if let Some(b) = body {
        text.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ));
    } else {
        text.push_str("\r\n");
    }
    text.into_bytes()
}

fn http(addr: SocketAddr, method: &str, path: &str, cookie: Option<&str>, body: Option<&str>) -> Reply {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    exchange(&mut tcp, &request(method, path, cookie, body, ""))
}

fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Reply {
    http(addr, "GET", path, cookie, None)
}

fn post(addr: SocketAddr, path: &str, cookie: &str, body: &str) -> Reply {
    http(addr, "POST", path, Some(cookie), Some(body))
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Logs in through the form, as a browser without JavaScript does; returns the session cookie.
fn login(addr: SocketAddr, user: &str, password: &str, code: &str) -> Result<String, Reply> {
    let page = get(addr, "/login", None);
    assert_eq!(page.status, 200);
    let (token_cookie, _) = page.cookie("postfach-login").expect("a login token cookie");
    let body = form(&[("csrf", &page.csrf()), ("user", user), ("password", password), ("code", code)]);
    let reply = post(addr, "/login", &token_cookie, &body);
    if reply.status != 303 {
        return Err(reply);
    }
    assert_eq!(reply.header("location"), Some("/"));
    Ok(reply.cookie("postfach").expect("a session cookie").0)
}

fn server(extra_sections: &str, kinds: &[&str]) -> TestServer {
    let sections =
        format!("[web]\nlisten = [\"127.0.0.1:0\"]\nlisten_tls = [\"127.0.0.1:0\"]\n{extra_sections}");
    let mut all = vec!["web", "webs"];
    all.extend_from_slice(kinds);
    TestServer::start_with_sections("", &sections, &all)
}

fn cli_ok(server: &TestServer, args: &[&str], stdin: &str) -> String {
    let out = server.cli(args, stdin);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// Turns on TOTP for `user` through the CLI, confirming with the previous step's code (inside
/// the window), so the current step's code is still free for a login. Returns the secret.
fn enable_totp(server: &TestServer, user: &str) -> TotpSecret {
    let out = server.cli(&["user", "totp", "enable", user], "\n");
    let text = String::from_utf8_lossy(&out.stdout);
    let secret = text.split("secret=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let secret = TotpSecret::from_bytes(postfach_auth::encoding::base32_decode(&secret).unwrap());
    let previous = totp::code(&secret, totp::step_at(now()) - 1);
    cli_ok(server, &["user", "totp", "enable", user, "--code", &previous], "");
    secret
}

fn current_code(secret: &TotpSecret) -> String {
    totp::code(secret, totp::step_at(now()))
}

/// Reads an IMAP session's lines until it ends (BYE or close); returns how long that took.
fn wait_for_end(client: &mut common::Client, limit: Duration) -> Duration {
    let started = Instant::now();
    client.set_timeout(limit);
    loop {
        match client.try_read_line() {
            Ok(None) => return started.elapsed(),
            Ok(Some(line)) if line.starts_with("* BYE") => return started.elapsed(),
            Ok(Some(_)) => {}
            Err(e) => panic!("the IMAP session did not end within {limit:?}: {e}"),
        }
    }
}

/// Logs in over IMAP and waits in IDLE on INBOX, as mail programs do (an idling session ends
/// the moment its credential goes; others at their next command).
fn imap_idle(server: &TestServer, user: &str, secret: &str) -> common::Client {
    let mut c = imap_login(server, user, secret);
    c.send("s SELECT INBOX");
    c.expect_tagged("s");
    c.send("i IDLE");
    assert!(c.read_line().starts_with('+'));
    c
}

fn imap_login(server: &TestServer, user: &str, secret: &str) -> common::Client {
    let mut c = server.connect_tls();
    c.read_line();
    c.send(&format!("a LOGIN {user} \"{secret}\""));
    let lines = c.expect_tagged("a");
    assert!(lines.last().unwrap().starts_with("a OK"), "{lines:?}");
    c
}

// --- plain HTTP tests ---------------------------------------------------------------------------

#[test]
fn headers_cookies_csrf_and_the_no_script_flows() {
    let server = server("", &[]);
    server.add_user("alice", PASSWORD);
    let web = server.web.unwrap();

    // Every answer: a strict CSP, no framing, no caching, no sniffing.
    let page = get(web, "/login", None);
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    for part in ["default-src 'none'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.header("strict-transport-security").is_none(), "no HSTS over plain HTTP");
    assert!(!page.body.contains("<script"), "no script at all");
    let (_, attributes) = page.cookie("postfach-login").unwrap();
    assert!(attributes.contains("HttpOnly") && attributes.contains("SameSite=Strict"), "{attributes}");
    assert!(!attributes.contains("Secure"), "{attributes}");

    // Without a session: to the login form.
    let anonymous = get(web, "/", None);
    assert_eq!((anonymous.status, anonymous.header("location")), (303, Some("/login")));

    // A login post without the form's token (another site's form) is refused.
    let forged = http(web, "POST", "/login", None, Some(&form(&[("user", "alice"), ("password", PASSWORD)])));
    assert_eq!(forged.status, 403);
    assert!(forged.cookie("postfach").is_none());

    // Wrong password, then right.
    assert_eq!(login(web, "alice", "wrong", "").unwrap_err().status, 401);
    let session = login(web, "alice", PASSWORD, "").unwrap();
    let overview = get(web, "/", Some(&session));
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains("Hello, alice"), "{}", overview.body);
    assert_eq!(overview.header("cache-control"), Some("no-store"));
    let csrf = overview.csrf();

    // Forms without the CSRF token, or with another, change nothing.
    let no_token = post(web, "/devices/add", &session, &form(&[("label", "Phone")]));
    assert_eq!(no_token.status, 403);
    let wrong =
        post(web, "/devices/add", &session, &form(&[("label", "Phone"), ("csrf", "x".repeat(43).as_str())]));
    assert_eq!(wrong.status, 403);
    let cross = http(
        web,
        "POST",
        "/devices/add",
        Some(&session),
        Some(&form(&[("label", "Phone"), ("csrf", &csrf)])),
    );
    assert_eq!(cross.status, 200, "the same form with its token works");
    let list = cli_ok(&server, &["user", "app-password", "list", "alice", "--json"], "");
    assert_eq!(list.matches("\"label\"").count(), 1, "{list}");
    let shown =
        cross.body.split("id=\"app-password\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(cross.body.contains("<svg"), "a QR code");

    // The app password opens IMAP but never the web pages.
    imap_login(&server, "alice", &shown);
    assert_eq!(login(web, "alice", &shown, "").unwrap_err().status, 401);

    // Admin pages: refused without the flag, checked at every request.
    assert_eq!(get(web, "/admin/accounts", Some(&session)).status, 403);
    cli_ok(&server, &["user", "set", "alice", "--admin", "true"], "");
    let accounts = get(web, "/admin/accounts", Some(&session));
    assert_eq!(accounts.status, 200);
    assert!(accounts.body.contains("alice") && accounts.body.contains(">admin<"), "{}", accounts.body);
    cli_ok(&server, &["user", "set", "alice", "--admin", "false"], "");
    assert_eq!(get(web, "/admin/health", Some(&session)).status, 403);

    // Limits: a body too large, too many fields, a form of the wrong type.
    let big = format!("csrf={csrf}&label={}", "x".repeat(1024 * 1024 + 10));
    assert_eq!(post(web, "/devices/add", &session, &big).status, 413);
    let many: String = (0..40).map(|i| format!("f{i}=1&")).collect();
    assert_eq!(post(web, "/devices/add", &session, &format!("{many}csrf={csrf}")).status, 400);
    let mut tcp = TcpStream::connect(web).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let json = exchange(
        &mut tcp,
        format!(
            "POST /devices/add HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: {session}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        )
        .as_bytes(),
    );
    assert_eq!(json.status, 415);
    // A request head over the limit gets 431, not a hang or a crash.
    let mut tcp = TcpStream::connect(web).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let huge = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(20 * 1024));
    let _ = tcp.write_all(huge.as_bytes());
    let mut raw = Vec::new();
    let _ = tcp.read_to_end(&mut raw);
    assert!(
        raw.is_empty() || String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );

    // Page latency (the overview: a session check, the admin flag, quota, devices, TOTP).
    let started = Instant::now();
    let rounds = 50;
    for _ in 0..rounds {
        assert_eq!(get(web, "/", Some(&session)).status, 200);
    }
    let each = started.elapsed() / rounds;
    let rss = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or_default()
        .to_owned();
    eprintln!(
        "overview page: {:.2} ms per request over {rounds} (new connection each); server {rss}",
        each.as_secs_f64() * 1000.0
    );

    // Logout ends the session.
    let out = post(web, "/logout", &session, &form(&[("csrf", &csrf)]));
    assert_eq!((out.status, out.header("location")), (303, Some("/login")));
    assert_eq!(get(web, "/", Some(&session)).header("location"), Some("/login"));

    // Login posts are limited per address (10 a minute), before any password is checked.
    let mut limited = None;
    for _ in 0..12 {
        let page = get(web, "/login", None);
        let (token, _) = page.cookie("postfach-login").unwrap();
        let reply = post(web, "/login", &token, &form(&[("csrf", &page.csrf()), ("user", "alice")]));
        if reply.status == 429 {
            limited = Some(reply);
            break;
        }
        assert_eq!(reply.status, 400);
    }
    let limited = limited.expect("the 11th login post is refused");
    assert!(limited.header("retry-after").is_some());
}

#[test]
fn https_cookies_are_secure_and_a_password_change_ends_the_other_sessions() {
    let server = server("", &[]);
    server.add_user("bob", PASSWORD);
    let webs = server.webs.unwrap();
    let tls_get = |path: &str| {
        let tcp = TcpStream::connect(webs).unwrap();
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut tls = common::tls_over(tcp, &server.cert_path());
        exchange(&mut tls, &request("GET", path, None, None, ""))
    };
    let page = tls_get("/login");
    assert_eq!(page.status, 200);
    let (_, attributes) = page.cookie("__Host-postfach-login").expect("the __Host- cookie over HTTPS");
    for part in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.contains(part), "{attributes}");
    }
    assert!(page.header("strict-transport-security").is_some());
    assert_eq!(tls_get("/health").body, "ok\n");

    // Two page sessions and an IMAP session opened with the password.
    let web = server.web.unwrap();
    let first = login(web, "bob", PASSWORD, "").unwrap();
    let second = login(web, "bob", PASSWORD, "").unwrap();
    let mut imap = imap_idle(&server, "bob", PASSWORD);
    let security = get(web, "/security", Some(&first));
    let csrf = security.csrf();
    let wrong = post(
        web,
        "/password",
        &first,
        &form(&[
            ("csrf", &csrf),
            ("current", "nope"),
            ("new", "new password 1"),
            ("repeat", "new password 1"),
        ]),
    );
    assert_eq!(wrong.status, 303);
    assert!(get(web, "/security", Some(&first)).body.contains("The current password is wrong."));
    let changed = post(
        web,
        "/password",
        &first,
        &form(&[
            ("csrf", &csrf),
            ("current", PASSWORD),
            ("new", "new password 1"),
            ("repeat", "new password 1"),
        ]),
    );
    assert_eq!(changed.status, 303);
    let after = get(web, "/security", Some(&first));
    assert_eq!(after.status, 200, "the session that changed it goes on");
    assert!(after.body.contains("Password changed"), "{}", after.body);
    assert_eq!(get(web, "/", Some(&second)).header("location"), Some("/login"), "the other one ended");
    let took = wait_for_end(&mut imap, Duration::from_secs(5));
    eprintln!("the IMAP session opened with the old password ended {took:?} after the change");
    assert!(login(web, "bob", "new password 1", "").is_ok());
}

// --- the browser --------------------------------------------------------------------------------

/// chromedriver and a headless Chromium session, ended on drop.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser; `None` (skip) when they are not installed.
    fn start() -> Option<Self> {
        let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let chromium =
            ["/usr/bin/chromium", "/usr/lib/chromium/chromium"].into_iter().find(|p| Path::new(p).exists());
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            assert!(
                std::env::var("POSTFACH_REQUIRE_CLIENTS").as_deref() != Ok("1"),
                "chromium and chromedriver are required (POSTFACH_REQUIRE_CLIENTS=1) but missing"
            );
            eprintln!(
                "skipping: chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser { driver: child, addr, session: String::new(), _profile: profile };
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1200,900",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let created = browser.call("POST", "/session", Some(caps));
        browser.session = created["sessionId"].as_str().expect("a WebDriver session").to_owned();
        Some(browser)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut tcp = TcpStream::connect(self.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let body = body.map(|b| b.to_string());
        let mut text = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        match &body {
            Some(b) => text.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => text.push_str("\r\n"),
        }
        let reply = exchange(&mut tcp, text.as_bytes());
        let value: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        assert!(
            reply.status < 400 || path.ends_with("/element"),
            "WebDriver {method} {path}: {}",
            reply.body
        );
        if reply.status >= 400 {
            return Value::Null;
        }
        value["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    /// The element `css` selects, waiting for it to appear (pages load after a click).
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found =
                self.session_call("POST", "/element", Some(json!({"using": "css selector", "value": css})));
            // The W3C element reference: an object with one string member.
            if let Some(id) = found.as_object().and_then(|o| o.values().find_map(Value::as_str)) {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css:?} on {}", self.source());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn fill(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.session_call("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.session_call("POST", &format!("/element/{id}/value"), Some(json!({ "text": text })));
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.session_call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.session_call("GET", &format!("/element/{id}/text"), None).as_str().unwrap_or_default().to_owned()
    }

    fn source(&self) -> String {
        self.session_call("GET", "/source", None).as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the page contains `text`.
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.source().contains(text) {
            assert!(Instant::now() < deadline, "the page never showed {text:?}: {}", self.source());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, name: &str) {
        let data = self.session_call("GET", "/screenshot", None);
        let png = postfach_auth::encoding::base64_decode(data.as_str().unwrap().as_bytes()).unwrap();
        let dir = std::env::var_os("POSTFACH_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.call("DELETE", &format!("/session/{}", self.session), None);
            }));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A fake SMTP relay that keeps the DATA of each message (the vacation reply goes out here).
fn fake_relay() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&got);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            conn.set_read_timeout(Some(PATIENCE)).unwrap();
            let _ = conn.write_all(b"220 relay ESMTP\r\n");
            let mut lines = BufReader::new(conn.try_clone().unwrap());
            let mut data: Option<String> = None;
            loop {
                let mut line = String::new();
                if lines.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(text) = data.as_mut() {
                    if line == ".\r\n" {
                        kept.lock().unwrap().push(data.take().unwrap());
                        let _ = conn.write_all(b"250 queued\r\n");
                    } else {
                        text.push_str(&line);
                    }
                    continue;
                }
                let reply: &[u8] = match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                    "DATA" => {
                        data = Some(String::new());
                        b"354 go\r\n"
                    }
                    "QUIT" => b"221 bye\r\n",
                    _ => b"250 ok\r\n",
                };
                let _ = conn.write_all(reply);
            }
        }
    });
    (addr, got)
}

fn lmtp_deliver(addr: SocketAddr, to: &str) {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut writer = tcp.try_clone().unwrap();
    let mut reader = BufReader::new(tcp);
    let mut reply = || {
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    };
    assert!(reply().starts_with("220"));
    for command in
        ["LHLO mx\r\n", "MAIL FROM:<sender@remote.example>\r\n", &format!("RCPT TO:<{to}>\r\n"), "DATA\r\n"]
    {
        writer.write_all(command.as_bytes()).unwrap();
        let line = reply();
        assert!(line.starts_with('2') || line.starts_with('3'), "{command}: {line}");
    }
    writer
        .write_all(
            b"From: Sender <sender@remote.example>\r\nTo: alice@example.org\r\nSubject: a question\r\n\
              Message-ID: <q1@remote.example>\r\n\r\nAre you there?\r\n.\r\n",
        )
        .unwrap();
    let line = reply();
    assert!(line.starts_with("250"), "{line}");
}

#[test]
fn a_real_browser_logs_in_with_totp_manages_devices_vacation_and_teams() {
    let Some(browser) = Browser::start() else { return };
    let (relay, sent) = fake_relay();
    let server = server(&format!("[vacation]\nsmtp_relay = \"{relay}\"\n"), &["lmtp"]);
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    cli_ok(&server, &["user", "set", "alice", "--admin", "true"], "");
    let secret = enable_totp(&server, "alice");
    let base = format!("http://{}", server.web.unwrap());

    // Log in with the password and the code computed from the secret.
    browser.goto(&format!("{base}/login"));
    browser.screenshot("web-login.png");
    browser.fill("input[name=user]", "alice");
    browser.fill("input[name=password]", PASSWORD);
    browser.fill("input[name=code]", &current_code(&secret));
    browser.click("button[type=submit]");
    browser.wait_for("Hello, alice");

    // An app password, shown once; it opens IMAP.
    browser.fill("input[name=label]", "Phone");
    browser.click("form[action='/devices/add'] button");
    let shown = browser.text("#app-password");
    assert_eq!(shown.replace(' ', "").len(), 16, "{shown}");
    browser.screenshot("web-app-password.png");
    let mut imap = imap_idle(&server, "alice", &shown);

    // The overview lists it; revoking it ends the IMAP session at once.
    browser.goto(&format!("{base}/"));
    browser.wait_for("Phone");
    browser.screenshot("web-overview.png");
    browser.click("form[action='/devices/revoke'] button");
    let took = wait_for_end(&mut imap, Duration::from_secs(5));
    eprintln!("the IMAP session ended {took:?} after the revocation");
    browser.wait_for("revoked");

    // Out of office: the form writes and activates a vacation script; a delivery is answered.
    browser.goto(&format!("{base}/vacation"));
    browser.fill("input[name=subject]", "Away until Monday");
    browser.fill("textarea[name=text]", "I am away; back on Monday.");
    browser.click("button[value=on]");
    browser.wait_for("Out-of-office reply on.");
    browser.screenshot("web-vacation.png");
    let script = cli_ok(&server, &["sieve", "get", "alice", "out-of-office"], "");
    assert!(script.contains("vacation :days 7 :subject \"Away until Monday\""), "{script}");
    assert!(cli_ok(&server, &["sieve", "list", "alice"], "").contains("out-of-office (active)"));
    lmtp_deliver(server.lmtp.unwrap(), "alice@example.org");
    let deadline = Instant::now() + PATIENCE;
    while sent.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no vacation reply reached the relay");
        std::thread::sleep(Duration::from_millis(50));
    }
    let reply = sent.lock().unwrap()[0].clone();
    assert!(reply.contains("Subject: Away until Monday"), "{reply}");
    assert!(reply.contains("To: <sender@remote.example>"), "{reply}");

    // The Sieve editor shows the interpreter's line and column.
    browser.goto(&format!("{base}/sieve?name=filters"));
    browser.fill(
        "textarea[name=script]",
        "require \"fileinto\";\nif header :contains \"Subject\" \"x\" {\n  fileinto \"Junk\"\n}\n",
    );
    browser.click("form[action='/sieve'] button");
    let error = browser.text("#sieve-error");
    assert!(error.contains("3:18: expected ';'"), "{error}");
    assert!(error.starts_with("Not saved: "), "{error}");
    browser.screenshot("web-sieve.png");

    // An admin creates a team and adds bob, who then sees it over IMAP.
    browser.goto(&format!("{base}/admin/teams"));
    browser.fill("input[name=name]", "support");
    browser.fill("input[name=address]", "support@example.org");
    browser.click("form[action='/admin/teams/create'] button");
    browser.wait_for("Team support created");
    browser.fill("form[action='/admin/team/member'] input[name=user]", "bob");
    browser.click("form[action='/admin/team/member'] button");
    browser.wait_for("bob is a member of support");
    browser.screenshot("web-admin-team.png");
    let mut bob = imap_login(&server, "bob", PASSWORD);
    bob.send("l LIST \"\" \"*\"");
    let listed = bob.expect_tagged("l");
    assert!(listed.iter().any(|l| l.contains("Shared/support")), "{listed:?}");
    bob.send("s SELECT INBOX");
    bob.expect_tagged("s");
    bob.send("i IDLE");
    assert!(bob.read_line().starts_with('+'));

    browser.goto(&format!("{base}/admin/accounts"));
    browser.wait_for("support");
    browser.screenshot("web-admin.png");
    browser.goto(&format!("{base}/admin/health"));
    browser.wait_for("Health and metrics");
    browser.screenshot("web-admin-health.png");

    // Two-factor set-up as bob sees it (QR code and key), for the documentation.
    browser.click("form.logout button");
    browser.wait_for("Log in");
    browser.fill("input[name=user]", "bob");
    browser.fill("input[name=password]", PASSWORD);
    browser.click("button[type=submit]");
    browser.wait_for("Hello, bob");
    browser.goto(&format!("{base}/security"));
    browser.click("form[action='/totp/start'] button");
    let key = browser.text("#totp-key");
    browser.screenshot("web-security.png");
    let bob_secret = TotpSecret::from_bytes(postfach_auth::encoding::base32_decode(&key).unwrap());
    browser.fill("form[action='/totp/confirm'] input[name=code]", &current_code(&bob_secret));
    browser.click("form[action='/totp/confirm'] button");
    browser.wait_for("Two-factor login is on.");
    // bob's IMAP session opened with the password alone has ended meanwhile.
    let took = wait_for_end(&mut bob, Duration::from_secs(5));
    eprintln!("bob's password-only IMAP session ended {took:?} after two-factor login went on");
}

/// The admin's queue page: a vacation reply that cannot reach its relay waits there with its
/// error; "Delete" takes it out (as `postfach queue delete` does), only with the form's token,
/// and only for an admin.
#[test]
fn the_admin_queue_page_lists_and_deletes_waiting_mail() {
    // A relay address nobody listens on: every attempt fails and the reply waits.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let server = server(&format!("[vacation]\nsmtp_relay = \"{closed}\"\n"), &["lmtp"]);
    server.add_user("alice", PASSWORD);
    server.add_user("bob", PASSWORD);
    cli_ok(&server, &["user", "set", "alice", "--admin", "true"], "");
    let script = "require \"vacation\";\nvacation :days 1 :subject \"Away\" \"I am away.\";\n";
    cli_ok(&server, &["sieve", "put", "alice", "away", "--activate"], script);
    lmtp_deliver(server.lmtp.unwrap(), "alice@example.org");
    let web = server.web.unwrap();

    let deadline = Instant::now() + PATIENCE;
    let cookie = login(web, "alice", PASSWORD, "").unwrap();
    let page = loop {
        let page = get(web, "/admin/queue", Some(&cookie));
        assert_eq!(page.status, 200);
        if page.body.contains("vacation") && page.body.contains("sender@remote.example") {
            break page;
        }
        assert!(Instant::now() < deadline, "the vacation reply never showed: {}", page.body);
        std::thread::sleep(Duration::from_millis(100));
    };
    let listed = cli_ok(&server, &["queue", "list", "--json"], "");
    let doc: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let id = doc["queue"][0]["id"].as_i64().unwrap().to_string();
    assert!(page.body.contains(&format!("<td>{id}</td>")), "{}", page.body);

    // Not an admin: refused. No token: refused. Both leave the entry.
    let bob = login(web, "bob", PASSWORD, "").unwrap();
    let refused = post(web, "/admin/queue", &bob, &form(&[("csrf", "x"), ("id", &id), ("action", "delete")]));
    assert_eq!(refused.status, 403);
    let refused = post(web, "/admin/queue", &cookie, &form(&[("id", &id), ("action", "delete")]));
    assert_eq!(refused.status, 403);
    let listed = cli_ok(&server, &["queue", "list", "--json"], "");
    assert!(listed.contains(&format!("\"id\":{id}")), "{listed}");

    let done = post(
        web,
        "/admin/queue",
        &cookie,
        &form(&[("csrf", &page.csrf()), ("id", &id), ("action", "delete")]),
    );
    assert_eq!(done.status, 303, "{}", done.body);
    let after = get(web, "/admin/queue", Some(&cookie));
    assert!(after.body.contains("Nothing is waiting"), "{}", after.body);
    let listed = cli_ok(&server, &["queue", "list", "--json"], "");
    assert!(!listed.contains(&format!("\"id\":{id}")), "{listed}");
}
