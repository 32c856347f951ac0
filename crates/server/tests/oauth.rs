//! Bearer-token logins (issue 18): OAUTHBEARER (RFC 7628) and XOAUTH2 over IMAP, POP3 and
//! ManageSieve, with tokens signed by a test key whose public half is in the server's JWKS file.
//!
//! Accepted: a token of the configured issuer and audience, unexpired, naming an account in its
//! `email` claim, with or without an authorization identity that matches it. Refused, each with
//! the RFC 7628 §3.2.2 error as a challenge and NO after the client's acknowledgement: expired,
//! another issuer, another audience, an unknown key, a changed payload, `alg: none`, an account
//! that does not exist, an authorization identity for someone else. A key added to the JWKS file
//! is picked up when a token names it. Without `[oauth]` the mechanisms are not offered.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{CLIENT_DEADLINE, Client, TestServer, available, run_program};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const ISSUER: &str = "https://idp.oauth.test";
const AUDIENCE: &str = "postfach";

/// An ES256 signing key and its JWK.
struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

impl Key {
    fn new(kid: &str) -> Key {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let point = pair.public_key_raw();
        assert_eq!((point.len(), point[0]), (65, 4), "uncompressed P-256 point");
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": base64url(&point[1..33]), "y": base64url(&point[33..]),
        });
        Key { kid: kid.to_owned(), encoding: EncodingKey::from_ec_der(&pair.serialize_der()), jwk }
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        let header = Header { kid: Some(self.kid.clone()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    base64url(bytes).replace('-', "+").replace('_', "/") + ["", "==", "="][bytes.len() % 3]
}

fn decode64(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims(email: &str) -> serde_json::Value {
    json!({ "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "iat": now(), "email": email, "sub": "1234" })
}

fn write_jwks(path: &Path, keys: &[&Key]) {
    let set = json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
    std::fs::write(path, set.to_string()).unwrap();
}

fn oauthbearer(user: Option<&str>, token: &str) -> String {
    let authzid = user.map(|u| format!("a={u}")).unwrap_or_default();
    base64(format!("n,{authzid},\x01host=127.0.0.1\x01port=993\x01auth=Bearer {token}\x01\x01").as_bytes())
}

fn xoauth2(user: &str, token: &str) -> String {
    base64(format!("user={user}\x01auth=Bearer {token}\x01\x01").as_bytes())
}

/// A server with `[oauth]` on a JWKS file of `key`, and the account alice.
fn server(dir: &Path, key: &Key, sections: &str) -> TestServer {
    let jwks = dir.join("jwks.json");
    write_jwks(&jwks, &[key]);
    let server = TestServer::start_with_sections(
        "",
        &format!(
            "[oauth]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = {jwks:?}\nscope = \"mail\"\n\
             openid_configuration = \"https://idp.oauth.test/.well-known/openid-configuration\"\n{sections}"
        ),
        &["lmtp"],
    );
    server.add_user("alice@oauth.test", "a password alice never types");
    server
}

fn imaps(server: &TestServer) -> Client {
    let mut c = server.connect_tls();
    let greeting = c.read_line();
    assert!(greeting.contains("AUTH=OAUTHBEARER") && greeting.contains("AUTH=XOAUTH2"), "{greeting}");
    c
}

/// AUTHENTICATE with an initial response that must be refused: the error challenge, then NO
/// after the acknowledgement. Returns the decoded challenge.
fn refused(server: &TestServer, mechanism: &str, response: &str) -> serde_json::Value {
    let mut c = imaps(server);
    c.send(&format!("r AUTHENTICATE {mechanism} {response}"));
    let line = c.read_line();
    let challenge = line.strip_prefix("+ ").unwrap_or_else(|| panic!("no error challenge: {line}"));
    let error: serde_json::Value = serde_json::from_slice(&decode64(challenge)).unwrap();
    c.send(if mechanism == "OAUTHBEARER" { "AQ==" } else { "" });
    let done = c.expect_tagged("r");
    assert!(done.last().unwrap().starts_with("r NO"), "{done:?}");
    error
}

#[test]
fn bearer_tokens_log_in_over_imap() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("k1");
    let server = server(dir.path(), &key, "");
    let token = key.sign(&claims("alice@oauth.test"));

    // OAUTHBEARER with SASL-IR (RFC 4959), with and without an authorization identity.
    for user in [Some("alice@oauth.test"), None] {
        let mut c = imaps(&server);
        c.send(&format!("a AUTHENTICATE OAUTHBEARER {}", oauthbearer(user, &token)));
        let done = c.expect_tagged("a");
        assert!(done.last().unwrap().starts_with("a OK"), "{done:?}");
        c.send("s SELECT INBOX");
        assert!(c.expect_tagged("s").last().unwrap().starts_with("s OK"));
    }
    // XOAUTH2 without an initial response: "+ " first, as Thunderbird does it.
    let mut c = imaps(&server);
    c.send("x AUTHENTICATE XOAUTH2");
    assert_eq!(c.read_line(), "+ ");
    c.send(&xoauth2("alice@oauth.test", &token));
    assert!(c.expect_tagged("x").last().unwrap().starts_with("x OK"));

    // Refusals: the RFC 7628 error, then NO.
    let error = refused(
        &server,
        "OAUTHBEARER",
        &oauthbearer(
            None,
            &key.sign(&json!({
                "iss": ISSUER, "aud": AUDIENCE, "exp": now() - 3600, "email": "alice@oauth.test"
            })),
        ),
    );
    assert_eq!(error["status"], "invalid_token");
    assert_eq!(error["scope"], "mail");
    assert_eq!(error["openid-configuration"], "https://idp.oauth.test/.well-known/openid-configuration");
    let mut other_issuer = claims("alice@oauth.test");
    other_issuer["iss"] = json!("https://evil.test");
    refused(&server, "OAUTHBEARER", &oauthbearer(None, &key.sign(&other_issuer)));
    let mut other_audience = claims("alice@oauth.test");
    other_audience["aud"] = json!("someone-else");
    refused(&server, "OAUTHBEARER", &oauthbearer(None, &key.sign(&other_audience)));
    let stranger = Key::new("k-unknown");
    refused(&server, "OAUTHBEARER", &oauthbearer(None, &stranger.sign(&claims("alice@oauth.test"))));
    // The payload of a good token swapped for bob's: the signature no longer holds.
    let parts: Vec<&str> = token.split('.').collect();
    let forged =
        format!("{}.{}.{}", parts[0], base64url(claims("bob@oauth.test").to_string().as_bytes()), parts[2]);
    refused(&server, "OAUTHBEARER", &oauthbearer(None, &forged));
    // alg "none".
    let unsigned = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(claims("alice@oauth.test").to_string().as_bytes())
    );
    refused(&server, "OAUTHBEARER", &oauthbearer(None, &unsigned));
    refused(&server, "OAUTHBEARER", &oauthbearer(None, &key.sign(&claims("nobody@oauth.test"))));
    // A good token for alice, presented as bob.
    refused(&server, "OAUTHBEARER", &oauthbearer(Some("bob@oauth.test"), &token));
    refused(&server, "XOAUTH2", &xoauth2("alice@oauth.test", &forged));

    // Malformed messages are BAD, not a login attempt.
    let mut c = imaps(&server);
    c.send(&format!("m AUTHENTICATE OAUTHBEARER {}", base64(b"p=tls-unique,,\x01auth=Bearer x\x01\x01")));
    assert!(c.expect_tagged("m").last().unwrap().starts_with("m BAD"));

    let log = server.log();
    assert!(log.contains("mechanism=AUTH=OAUTHBEARER result=ok"), "{}", server.log_tail(20));
    assert!(log.contains("mechanism=AUTH=XOAUTH2 result=fail"), "{}", server.log_tail(20));
}

#[test]
fn a_key_added_to_the_jwks_file_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let old = Key::new("2026-old");
    let server = server(dir.path(), &old, "");
    let new = Key::new("2026-new");
    write_jwks(&dir.path().join("jwks.json"), &[&old, &new]);
    let mut c = imaps(&server);
    c.send(&format!(
        "a AUTHENTICATE OAUTHBEARER {}",
        oauthbearer(None, &new.sign(&claims("alice@oauth.test")))
    ));
    assert!(c.expect_tagged("a").last().unwrap().starts_with("a OK"), "{}", server.log_tail(10));
}

#[test]
fn bearer_tokens_log_in_over_pop3_and_managesieve() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("k1");
    let token = key.sign(&claims("alice@oauth.test"));
    let jwks = dir.path().join("jwks.json");
    write_jwks(&jwks, &[&key]);
    // ManageSieve in cleartext on loopback (`imap.allow_plaintext_auth` governs it too).
    let server = TestServer::start_with_sections(
        "allow_plaintext_auth = true",
        &format!(
            "[oauth]\nissuer = \"{ISSUER}\"\njwks_file = {jwks:?}\n\
             [pop3]\nlisten_tls = [\"127.0.0.1:0\"]\n[managesieve]\nlisten = [\"127.0.0.1:0\"]\n"
        ),
        &["lmtp", "pop3s", "managesieve"],
    );
    server.add_user("alice@oauth.test", "a password alice never types");

    // POP3 (RFC 5034): AUTH with an initial response; CAPA lists the mechanisms.
    let mut pop = Client::tls(server.pop3s.unwrap(), &server.cert_path());
    assert!(pop.read_line().starts_with("+OK"));
    pop.send("CAPA");
    let mut capa = Vec::new();
    loop {
        let line = pop.read_line();
        if line == "." {
            break;
        }
        capa.push(line);
    }
    assert!(capa.iter().any(|l| l.starts_with("SASL") && l.contains("OAUTHBEARER")), "{capa:?}");
    pop.send(&format!("AUTH OAUTHBEARER {}", oauthbearer(None, &token)));
    let line = pop.read_line();
    assert!(line.starts_with("+OK"), "{line}");
    pop.send("STAT");
    assert!(pop.read_line().starts_with("+OK 0 0"));
    // A refused token: the error challenge, then -ERR.
    let mut pop = Client::tls(server.pop3s.unwrap(), &server.cert_path());
    pop.read_line();
    pop.send(&format!("AUTH XOAUTH2 {}", xoauth2("alice@oauth.test", "not-a-token")));
    assert!(pop.read_line().starts_with("+ "));
    pop.send("");
    assert!(pop.read_line().starts_with("-ERR"));

    // ManageSieve (RFC 5804 §2.1): the initial response as a string.
    let mut sieve = Client::plain(server.managesieve.unwrap());
    let mut capabilities = Vec::new();
    loop {
        let line = sieve.read_line();
        if line.starts_with("OK") {
            break;
        }
        capabilities.push(line);
    }
    assert!(
        capabilities.iter().any(|l| l.starts_with("\"SASL\"") && l.contains("XOAUTH2")),
        "{capabilities:?}"
    );
    sieve.send(&format!("AUTHENTICATE \"XOAUTH2\" \"{}\"", xoauth2("alice@oauth.test", &token)));
    let line = sieve.read_line();
    assert!(line.starts_with("OK"), "{line}");
}

#[test]
fn without_oauth_the_mechanisms_are_not_offered() {
    let server = TestServer::start();
    let mut c = server.connect_tls();
    let greeting = c.read_line();
    assert!(!greeting.contains("OAUTHBEARER") && !greeting.contains("XOAUTH2"), "{greeting}");
    c.send(&format!("a AUTHENTICATE OAUTHBEARER {}", oauthbearer(None, "x.y.z")));
    let done = c.expect_tagged("a");
    assert!(done.last().unwrap().starts_with("a NO [CANNOT]"), "{done:?}");
}

/// Python's imaplib, as scripts use it for single sign-on: `authenticate("XOAUTH2", …)` and
/// `authenticate("OAUTHBEARER", …)`, and a refused token raising after the error challenge.
#[test]
fn imaplib_logs_in_with_a_bearer_token() {
    if !available("python3", "python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("k1");
    let server = server(dir.path(), &key, "");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/oauth_login.py");
    let mut expired = claims("alice@oauth.test");
    expired["exp"] = json!(now() - 3600);
    let done = run_program(
        Command::new("python3")
            .arg(&script)
            .args(["--port", &server.imaps.port().to_string(), "--user", "alice@oauth.test"])
            .args(["--token", &key.sign(&claims("alice@oauth.test")), "--bad-token", &key.sign(&expired)])
            .arg("--cafile")
            .arg(server.cert_path()),
        dir.path(),
        "imaplib",
        CLIENT_DEADLINE,
    );
    done.assert_success("imaplib with bearer tokens", &server);
    assert!(done.stdout.contains("oauth: all checks passed"), "{}", done.stdout);
}

/// A one-thread HTTP issuer on loopback: `/jwks` answers the key set, `/introspect` (RFC 7662)
/// answers `active` for the one opaque token it knows when the client credentials are right.
/// Returns its base URL and a log of the requests' first lines.
fn issuer(
    jwks: String,
    opaque: &'static str,
    user: &'static str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            let (mut length, mut authorization) = (0usize, String::new());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end().to_owned();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "authorization" => authorization = value.trim().to_owned(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            log.lock().unwrap().push(first.trim_end().to_owned());
            let answer = if first.starts_with("GET /jwks ") {
                jwks.clone()
            } else if first.starts_with("POST /introspect ") {
                let known = body.split('&').any(|p| p == format!("token={opaque}"));
                let client = authorization == format!("Basic {}", base64(b"postfach:s3cret"));
                if known && client {
                    json!({ "active": true, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "email": user })
                        .to_string()
                } else {
                    json!({ "active": false }).to_string()
                }
            } else {
                String::new()
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (base, seen)
}

/// Keys from a JWKS URL, and opaque tokens through RFC 7662 introspection with the server's
/// client credentials.
#[test]
fn keys_from_a_url_and_opaque_tokens_by_introspection() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("url-key");
    let jwks = json!({ "keys": [key.jwk.clone()] }).to_string();
    let (base, seen) = issuer(jwks, "opaque-2f7c", "alice@oauth.test");
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let server = TestServer::start_with_sections(
        "",
        &format!(
            "[oauth]\nissuer = \"{ISSUER}\"\naudience = [\"{AUDIENCE}\", \"other\"]\njwks_url = \"{base}/jwks\"\n\
             introspection_url = \"{base}/introspect\"\nclient_id = \"postfach\"\nclient_secret_file = {secret:?}\n"
        ),
        &["lmtp"],
    );
    server.add_user("alice@oauth.test", "a password alice never types");
    assert!(seen.lock().unwrap().iter().any(|l| l.starts_with("GET /jwks ")), "keys fetched at start");

    let mut c = imaps(&server);
    c.send(&format!(
        "a AUTHENTICATE OAUTHBEARER {}",
        oauthbearer(None, &key.sign(&claims("alice@oauth.test")))
    ));
    assert!(c.expect_tagged("a").last().unwrap().starts_with("a OK"), "{}", server.log_tail(10));
    let mut c = imaps(&server);
    c.send(&format!("b AUTHENTICATE XOAUTH2 {}", xoauth2("alice@oauth.test", "opaque-2f7c")));
    assert!(c.expect_tagged("b").last().unwrap().starts_with("b OK"), "{}", server.log_tail(10));
    refused(&server, "XOAUTH2", &xoauth2("alice@oauth.test", "opaque-unknown"));
    let introspections = seen.lock().unwrap().iter().filter(|l| l.starts_with("POST /introspect ")).count();
    assert_eq!(introspections, 2, "JWTs are checked locally, opaque tokens asked about");
}

#[test]
fn issuer_endpoints_must_be_https_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("postfach.toml");
    std::fs::write(
        &config,
        format!("[oauth]\nissuer = \"{ISSUER}\"\njwks_url = \"http://idp.example.org/jwks\"\n"),
    )
    .unwrap();
    let out = common::run_cli(&config, &["config", "check"], "");
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("oauth.jwks_url"), "{text}");
    std::fs::write(&config, "[oauth]\nissuer = \"x\"\n").unwrap();
    let out = common::run_cli(&config, &["config", "check"], "");
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("needs jwks_file, jwks_url or introspection_url"),
        "{text}"
    );
}
