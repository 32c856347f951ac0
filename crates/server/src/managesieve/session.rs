//! One ManageSieve session (RFC 5804): its state, and what each command does to the user's
//! scripts in the store. Sans-I/O: the driver (`conn`) hands in framed commands and writes
//! what the session appended to the output buffer, then obeys the [`Outcome`].
//!
//! States (§2): not authenticated (AUTHENTICATE, STARTTLS, CAPABILITY, NOOP, LOGOUT), in the
//! middle of an AUTHENTICATE exchange (the next command is the client's SASL response, §2.1),
//! and authenticated (everything but AUTHENTICATE and STARTTLS). Logins go through the IMAP
//! server's [`postfach_auth::Authenticator`] with the IMAP session's mechanisms
//! (`postfach_imap::sasl`), cleartext policy (`[imap] allow_plaintext_auth`), per-account
//! connection limit, throttling, blocks, two-factor rules and log line.
//!
//! Limits: [`MAX_AUTH_FAILURES`] failed logins and [`MAX_BAD_COMMANDS`] invalid commands per
//! connection, then BYE; scripts are at most [`postfach_sieve::MAX_SCRIPT_SIZE`] bytes and
//! [`MAX_SCRIPTS`] per account (the store's limits, advertised through HAVESPACE).

use std::net::SocketAddr;
use std::sync::Arc;

use postfach_auth::admission::Admitted;
use postfach_auth::encoding::base64_encode;
use postfach_auth::scram::ChannelBinding;
use postfach_auth::{AuthError, Principal};
use postfach_imap::Transport;
use postfach_imap::sasl::{self, BearerOutcome, Mech, Offer, Step};
use postfach_proto::framing::FrameError;
use postfach_secret::Secret;
use postfach_store::{StoreError, sqlite::sieve::MAX_SCRIPTS};
use tracing::{debug, error, info};

use super::Service;
use super::syntax::{
    Code, Command, ScriptName, Status, parse_auth_response, parse_command, push_capability, push_status,
    push_string,
};

/// Failed logins one connection may make before it is closed with BYE (as IMAP's session).
pub(crate) const MAX_AUTH_FAILURES: u32 = 5;
/// Invalid commands (unknown, malformed, over a framing limit) one connection may send before
/// it is closed with BYE.
pub(crate) const MAX_BAD_COMMANDS: u32 = 20;

/// What the driver does after a call into the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Write the output, read the next command.
    Continue,
    /// Write the output (the OK of STARTTLS), drop any bytes already received, run the TLS
    /// handshake, call [`Session::tls_started`], then send the capabilities (RFC 5804 §2.2).
    StartTls,
    /// Write the output and close the connection.
    Close,
}

/// Where the session stands.
enum State {
    /// Before a successful AUTHENTICATE (or after UNAUTHENTICATE).
    Anonymous,
    /// An AUTHENTICATE exchange waits for the client's next response.
    Authenticating(Mech, Step),
    /// Logged in; `admitted` holds the account's place in the connection count.
    Authenticated {
        /// Who.
        principal: Principal,
        /// Released when the session ends or unauthenticates.
        #[allow(dead_code)]
        admitted: Option<Admitted>,
    },
}

/// One connection's ManageSieve session.
pub(crate) struct Session {
    service: Arc<Service>,
    peer: SocketAddr,
    transport: Transport,
    binding: Option<ChannelBinding>,
    state: State,
    auth_failures: u32,
    bad_commands: u32,
    /// The authenticator's credentials generation when the login was last known valid.
    auth_generation: u64,
}

impl Session {
    /// A new session on a cleartext connection from `peer`.
    pub(crate) fn new(service: Arc<Service>, peer: SocketAddr) -> Session {
        Session {
            service,
            peer,
            transport: Transport::Plain,
            binding: None,
            state: State::Anonymous,
            auth_failures: 0,
            bad_commands: 0,
            auth_generation: 0,
        }
    }

    /// Whether a login succeeded (and was not undone by UNAUTHENTICATE).
    pub(crate) fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated { .. })
    }

    /// The logged-in account's name, for logs.
    pub(crate) fn account(&self) -> Option<&str> {
        match &self.state {
            State::Authenticated { principal, .. } => Some(&principal.name),
            _ => None,
        }
    }

    /// The connection is now TLS, with this channel binding (SCRAM-SHA-256-PLUS).
    pub(crate) fn tls_started(&mut self, binding: Option<ChannelBinding>) {
        self.transport = Transport::Tls;
        self.binding = binding;
    }

    /// The greeting: the capabilities and OK (RFC 5804 §1.7).
    pub(crate) fn greeting(&self, out: &mut Vec<u8>) {
        self.capabilities(out);
        push_status(out, Status::Ok, None, "Postfach ManageSieve ready");
    }

    /// The capabilities after the STARTTLS handshake (RFC 5804 §2.2: sent unasked).
    pub(crate) fn capabilities_after_tls(&self, out: &mut Vec<u8>) {
        self.capabilities(out);
        push_status(out, Status::Ok, None, "TLS negotiation successful");
    }

    /// `BYE "text"` before the driver closes the connection.
    pub(crate) fn bye(&self, text: &str, out: &mut Vec<u8>) {
        push_status(out, Status::Bye, None, text);
    }

    /// Answers a command the framer refused (a line, literal or command over a limit).
    pub(crate) fn rejected(&mut self, error: &FrameError, out: &mut Vec<u8>) -> Outcome {
        if let State::Authenticating(..) = self.state {
            // A response the framer refused ends the exchange (answered NO below).
            self.state = State::Anonymous;
        }
        if self.is_authenticated() && matches!(error, FrameError::LiteralTooLarge { .. }) {
            // RFC 5804 §1.3: the script is larger than the server takes.
            self.bad_commands += 1;
            push_status(out, Status::No, Some(&Code::QuotaMaxSize), &format!("Script too large: {error}"));
            return self.after_bad(out);
        }
        self.bad(&error.to_string(), out)
    }

    /// Runs one framed command (or, mid-AUTHENTICATE, the client's SASL response).
    pub(crate) async fn handle(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Outcome {
        if let State::Authenticating(..) = self.state {
            return self.auth_response(bytes, out).await;
        }
        if let Some(outcome) = self.check_credential(out).await {
            return outcome;
        }
        let command = match parse_command(bytes) {
            Ok(command) => command,
            Err(why) => return self.bad(&why, out),
        };
        debug!(command = command.name(), "command");
        let account = match &self.state {
            State::Authenticated { principal, .. } => Some(principal.account),
            _ => None,
        };
        match (account, command) {
            (_, Command::Capability) => {
                self.capabilities(out);
                ok(out, "Capability completed")
            }
            (_, Command::Logout) => {
                push_status(out, Status::Ok, None, "Logout completed");
                Outcome::Close
            }
            (_, Command::Noop { tag: Some(tag) }) => {
                // RFC 5804 §2.13: the string comes back in the TAG response code.
                push_status(out, Status::Ok, Some(&Code::Tag(tag)), "Done");
                Outcome::Continue
            }
            (_, Command::Noop { tag: None }) => ok(out, "NOOP completed"),
            (None, Command::StartTls) => self.starttls(out),
            (None, Command::Authenticate { mechanism, initial }) => {
                self.authenticate(&mechanism, initial, out).await
            }
            (Some(_), Command::StartTls | Command::Authenticate { .. }) => {
                no(out, None, "Already authenticated")
            }
            (None, _) => no(out, None, "Authenticate first"),
            (Some(_), Command::Unauthenticate) => {
                // RFC 5804 §2.14.1: back to the non-authenticated state; TLS stays.
                self.state = State::Anonymous;
                ok(out, "Unauthenticated")
            }
            (Some(account), command) => self.script_command(account, command, out).await,
        }
    }

    /// Counts an invalid command and answers NO, or BYE once there were too many.
    fn bad(&mut self, why: &str, out: &mut Vec<u8>) -> Outcome {
        self.bad_commands += 1;
        push_status(out, Status::No, None, why);
        self.after_bad(out)
    }

    fn after_bad(&mut self, out: &mut Vec<u8>) -> Outcome {
        if self.bad_commands >= MAX_BAD_COMMANDS {
            info!(peer = %self.peer, "too many invalid commands; closing");
            self.bye("Too many invalid commands", out);
            return Outcome::Close;
        }
        Outcome::Continue
    }

    /// The capability lines (RFC 5804 §1.7), without the OK.
    fn capabilities(&self, out: &mut Vec<u8>) {
        let implementation = format!("Postfach {}", env!("CARGO_PKG_VERSION"));
        push_capability(out, "IMPLEMENTATION", Some(&implementation));
        // §1.7: the SASL list may be empty only while STARTTLS is offered.
        let mechanisms = if self.auth_allowed() {
            Mech::offered(Offer::of(self.binding.as_ref(), &self.service.ctx.auth))
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            String::new()
        };
        push_capability(out, "SASL", Some(&mechanisms));
        push_capability(out, "SIEVE", Some(&postfach_sieve::CAPABILITIES.join(" ")));
        if self.starttls_offered() {
            push_capability(out, "STARTTLS", None);
        }
        // §1.7: the interpreter's limit on redirects per evaluation (RFC 5228 §10).
        push_capability(out, "MAXREDIRECTS", Some(&self.service.max_redirects.to_string()));
        if let Some(owner) = self.account() {
            push_capability(out, "OWNER", Some(owner));
        }
        push_capability(out, "UNAUTHENTICATE", None);
        push_capability(out, "VERSION", Some("1.0"));
    }

    /// The IMAP rule: credentials only over TLS unless `[imap] allow_plaintext_auth`.
    fn auth_allowed(&self) -> bool {
        self.transport == Transport::Tls || self.service.ctx.config.allow_plaintext_auth
    }

    /// §1.7: STARTTLS is not advertised once TLS or a login is in place.
    fn starttls_offered(&self) -> bool {
        self.transport == Transport::Plain
            && !self.is_authenticated()
            && self.service.ctx.config.starttls_available
    }

    fn starttls(&mut self, out: &mut Vec<u8>) -> Outcome {
        if self.transport == Transport::Tls {
            return no(out, None, "TLS is already active");
        }
        if !self.service.ctx.config.starttls_available {
            return no(out, None, "STARTTLS is not available");
        }
        push_status(out, Status::Ok, None, "Begin TLS negotiation now");
        Outcome::StartTls
    }

    /// Ends a session whose credential was revoked (app password revoked, password changed,
    /// TOTP switched on) since it logged in, as IMAP sessions end.
    async fn check_credential(&mut self, out: &mut Vec<u8>) -> Option<Outcome> {
        let State::Authenticated { principal, .. } = &self.state else {
            return None;
        };
        let generation = self.service.ctx.auth.generation();
        if generation == self.auth_generation {
            return None;
        }
        match self.service.ctx.auth.still_valid(principal).await {
            Ok(true) => {
                self.auth_generation = generation;
                None
            }
            Ok(false) => {
                info!(
                    target: postfach_auth::LOG_TARGET,
                    addr = %self.peer.ip(),
                    account = ?principal.name,
                    credential = principal.credential.kind(),
                    "session ended: credential revoked"
                );
                self.bye("Your login was revoked; log in again", out);
                self.state = State::Anonymous;
                Some(Outcome::Close)
            }
            // Checked again at the next command.
            Err(e) => {
                error!(error = %e, "checking the session's credential");
                None
            }
        }
    }

    // --- AUTHENTICATE (RFC 5804 §2.1) ------------------------------------------------------------

    async fn authenticate(&mut self, mechanism: &str, initial: Option<Secret>, out: &mut Vec<u8>) -> Outcome {
        if !self.auth_allowed() {
            return no(out, Some(Code::EncryptNeeded), "Use STARTTLS before authenticating");
        }
        let Some(mech) = Mech::parse(mechanism, Offer::of(self.binding.as_ref(), &self.service.ctx.auth))
        else {
            return no(out, None, "Unsupported authentication mechanism");
        };
        let (step, first_challenge) = mech.start();
        match initial {
            Some(response) => self.sasl_step(mech, step, &response, out).await,
            None => self.challenge(mech, step, first_challenge, out),
        }
    }

    /// Sends a challenge (a string of base64, §2.1) and waits for the client's response.
    fn challenge(&mut self, mech: Mech, step: Step, data: &[u8], out: &mut Vec<u8>) -> Outcome {
        push_string(out, sasl::challenge(data).as_bytes());
        out.extend_from_slice(b"\r\n");
        self.state = State::Authenticating(mech, step);
        Outcome::Continue
    }

    async fn auth_response(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Outcome {
        let State::Authenticating(mech, step) = std::mem::replace(&mut self.state, State::Anonymous) else {
            return Outcome::Continue;
        };
        match parse_auth_response(bytes) {
            Ok(Some(response)) => self.sasl_step(mech, step, &response, out).await,
            // §2.1: "*" cancels; the server MUST answer NO.
            Ok(None) => no(out, None, "Authentication cancelled"),
            Err(why) => self.bad(&format!("Authentication aborted: {why}"), out),
        }
    }

    /// One client response of an exchange (base64; it may carry a password).
    async fn sasl_step(&mut self, mech: Mech, step: Step, response: &Secret, out: &mut Vec<u8>) -> Outcome {
        let Some(data) = sasl::decode(response.expose_secret()) else {
            return no(out, None, "Invalid base64 in authentication data");
        };
        let peer = self.peer.ip();
        let auth = &self.service.ctx.auth;
        let result = match step {
            Step::Plain => {
                let Some((authz, authc, pass)) = sasl::split_plain(data.expose_secret()) else {
                    return no(out, None, "Malformed PLAIN credentials");
                };
                if !authz.is_empty() && authz != authc {
                    return no(out, None, "Acting for another user is not supported");
                }
                let user = String::from_utf8_lossy(authc).into_owned();
                auth.login(peer, mech.mechanism(), &user, Secret::new(pass.to_vec())).await
            }
            Step::LoginUser => {
                let user = String::from_utf8_lossy(data.expose_secret()).into_owned();
                return self.challenge(mech, Step::LoginPassword(user), sasl::password_prompt(), out);
            }
            Step::LoginPassword(user) => auth.login(peer, mech.mechanism(), &user, data).await,
            Step::ScramFirst(variant) => {
                match auth.scram_start(peer, variant, data.expose_secret(), self.binding.as_ref()).await {
                    Ok(exchange) => {
                        let first = exchange.server_first().as_bytes().to_vec();
                        return self.challenge(mech, Step::ScramFinal(Box::new(exchange)), &first, out);
                    }
                    Err(e) => Err(e),
                }
            }
            Step::ScramFinal(exchange) => match auth.scram_finish(*exchange, data.expose_secret()).await {
                // §2.1: the server's last SASL data goes in the OK's SASL response code.
                Ok((principal, server_final)) => {
                    let code = Code::Sasl(base64_encode(server_final.as_bytes()));
                    return self.logged_in(principal, Some(code), out);
                }
                Err(e) => Err(e),
            },
            // Not reached: the server-final message goes in the OK (above), never as a challenge.
            Step::ScramAcknowledge(principal) => Ok(principal),
            Step::Bearer => match sasl::bearer(auth, peer, mech, data.expose_secret()).await {
                BearerOutcome::LoggedIn(principal) => Ok(principal),
                // RFC 7628 §3.2.2: the error as a challenge, the failure after the client's
                // acknowledgement.
                BearerOutcome::Refused { challenge, error } => {
                    return self.challenge(mech, Step::BearerRefused(error), &challenge, out);
                }
                BearerOutcome::Failed(e) => Err(e),
                BearerOutcome::Malformed => return no(out, None, "Malformed bearer token message"),
            },
            Step::BearerRefused(e) => {
                if !sasl::bearer_acknowledged(data.expose_secret()) {
                    return no(out, None, "Expected the acknowledgement of the error");
                }
                Err(e)
            }
        };
        match result {
            Ok(principal) => self.logged_in(principal, None, out),
            Err(e) => self.login_failed(e, out),
        }
    }

    /// A login passed: take the account's place in the connection count, then OK.
    fn logged_in(&mut self, principal: Principal, code: Option<Code>, out: &mut Vec<u8>) -> Outcome {
        let Some(admitted) = self.service.settings.registry.account_admission().admit(&principal) else {
            info!(
                target: postfach_auth::LOG_TARGET,
                addr = %self.peer.ip(),
                account = ?principal.name,
                "login refused: too many connections for this account"
            );
            return no(out, Some(Code::TryLater), "Too many connections for this account");
        };
        self.auth_generation = self.service.ctx.auth.generation();
        self.state = State::Authenticated { principal, admitted: Some(admitted) };
        push_status(out, Status::Ok, code.as_ref(), "Logged in");
        Outcome::Continue
    }

    /// A failed login (already logged by the authenticator): NO, or BYE when the address is
    /// blocked or this connection failed too often (§2.1's example).
    fn login_failed(&mut self, error: AuthError, out: &mut Vec<u8>) -> Outcome {
        let (counted, code, text) = match &error {
            AuthError::BadCredentials => (true, None, "Authentication failed".to_owned()),
            AuthError::Throttled { .. } => (
                true,
                Some(Code::TryLater),
                "Too many failed logins for this account; try again later or use an app password".to_owned(),
            ),
            AuthError::Blocked { .. } => {
                self.bye("Too many failed logins from your address", out);
                return Outcome::Close;
            }
            AuthError::Authorization => (false, None, "Acting for another user is not supported".to_owned()),
            AuthError::Protocol(e) => (false, None, format!("Authentication failed: {e}")),
            AuthError::Store(_) | AuthError::Internal(_) => {
                error!(peer = %self.peer, error = %error, "authentication error");
                (false, Some(Code::TryLater), "Internal error; try again later".to_owned())
            }
        };
        if counted {
            self.auth_failures += 1;
            if self.auth_failures >= MAX_AUTH_FAILURES {
                self.bye("Too many failed authentication attempts", out);
                return Outcome::Close;
            }
        }
        no(out, code, &text)
    }

    // --- the script commands (RFC 5804 §2.5-§2.12) -------------------------------------------

    async fn script_command(
        &mut self,
        account: postfach_store::AccountId,
        command: Command,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let sieve = Arc::clone(&self.service.sieve);
        let result = match command {
            Command::HaveSpace { name, size } => self.have_space(account, &name, size).await,
            Command::PutScript { name, script } => match check_script(&script) {
                Err(refusal) => Err(refusal),
                Ok(text) => sieve
                    .put_sieve_script(account, name.as_str(), &text)
                    .await
                    .map(|()| {
                        info!(
                            account = self.account().unwrap_or_default(),
                            script = name.as_str(),
                            "script stored"
                        );
                        "Script stored"
                    })
                    .map_err(store_refusal),
            },
            Command::CheckScript { script } => check_script(&script).map(|_| "Script is valid"),
            Command::ListScripts => match sieve.sieve_scripts(account).await {
                Ok(scripts) => {
                    for script in scripts {
                        push_string(out, script.name.as_bytes());
                        if script.active {
                            out.extend_from_slice(b" ACTIVE");
                        }
                        out.extend_from_slice(b"\r\n");
                    }
                    Ok("Listscripts completed")
                }
                Err(e) => Err(store_refusal(e)),
            },
            Command::SetActive { name } => sieve
                .activate_sieve_script(account, name.as_ref().map(ScriptName::as_str))
                .await
                .map(|()| if name.is_some() { "Script activated" } else { "No script is active" })
                .map_err(store_refusal),
            Command::GetScript { name } => match sieve.sieve_script(account, name.as_str()).await {
                Ok(Some(text)) => {
                    // Always a literal: scripts are multi-line.
                    out.extend_from_slice(format!("{{{}}}\r\n", text.len()).as_bytes());
                    out.extend_from_slice(text.as_bytes());
                    out.extend_from_slice(b"\r\n");
                    Ok("Getscript completed")
                }
                Ok(None) => Err(store_refusal(StoreError::NotFound)),
                Err(e) => Err(store_refusal(e)),
            },
            Command::DeleteScript { name } => sieve
                .delete_sieve_script(account, name.as_str())
                .await
                .map(|()| "Script deleted")
                .map_err(store_refusal),
            Command::RenameScript { old, new } => sieve
                .rename_sieve_script(account, old.as_str(), new.as_str())
                .await
                .map(|()| "Script renamed")
                .map_err(store_refusal),
            // Handled by `handle` in every state.
            Command::Authenticate { .. }
            | Command::StartTls
            | Command::Logout
            | Command::Capability
            | Command::Noop { .. }
            | Command::Unauthenticate => Ok("Done"),
        };
        match result {
            Ok(text) => ok(out, text),
            Err(Refusal { code, text }) => no(out, code, &text),
        }
    }

    /// HAVESPACE (§2.5): would PUTSCRIPT of this name and size fit the store's limits?
    async fn have_space(
        &self,
        account: postfach_store::AccountId,
        name: &ScriptName,
        size: u32,
    ) -> Result<&'static str, Refusal> {
        if usize::try_from(size).map_or(true, |s| s > postfach_sieve::MAX_SCRIPT_SIZE) {
            return Err(too_large());
        }
        let scripts = self.service.sieve.sieve_scripts(account).await.map_err(store_refusal)?;
        let replaces = scripts.iter().any(|s| s.name == name.as_str());
        if !replaces && i64::try_from(scripts.len()).unwrap_or(i64::MAX) >= MAX_SCRIPTS {
            return Err(Refusal {
                code: Some(Code::QuotaMaxScripts),
                text: format!("At most {MAX_SCRIPTS} scripts per account"),
            });
        }
        Ok("Putscript would succeed")
    }
}

/// Why a script command failed: the NO's response code and text.
struct Refusal {
    code: Option<Code>,
    text: String,
}

fn too_large() -> Refusal {
    Refusal {
        code: Some(Code::QuotaMaxSize),
        text: format!("Scripts are at most {} bytes", postfach_sieve::MAX_SCRIPT_SIZE),
    }
}

/// PUTSCRIPT's and CHECKSCRIPT's check (§2.6, §2.12): the interpreter compiles the script, so
/// what is stored is exactly what delivery can run. The error names the line and column.
fn check_script(script: &[u8]) -> Result<String, Refusal> {
    if script.len() > postfach_sieve::MAX_SCRIPT_SIZE {
        return Err(too_large());
    }
    if script.is_empty() {
        // §2.6: a script of zero length SHOULD be disallowed.
        return Err(Refusal { code: None, text: "The script is empty".to_owned() });
    }
    match postfach_sieve::compile_bytes(script) {
        Ok(_) => Ok(String::from_utf8_lossy(script).into_owned()),
        Err(e) => Err(Refusal { code: None, text: format!("Script error at line {e}") }),
    }
}

/// The one mapping of store errors to ManageSieve answers (§1.3).
fn store_refusal(error: StoreError) -> Refusal {
    let (code, text) = match error {
        StoreError::NotFound => (Some(Code::Nonexistent), "There is no script by that name".to_owned()),
        StoreError::AlreadyExists => (Some(Code::AlreadyExists), "A script by that name exists".to_owned()),
        // The only refusal: deleting the active script (§2.10).
        StoreError::NotAllowed(_) => {
            (Some(Code::Active), "You may not delete the active script; deactivate it first".to_owned())
        }
        StoreError::Limit(why) => (Some(Code::QuotaMaxScripts), why),
        StoreError::InvalidName(why) => (None, why),
        other => {
            error!(error = %other, "ManageSieve store error");
            (Some(Code::TryLater), "Internal error; try again later".to_owned())
        }
    };
    Refusal { code, text }
}

fn ok(out: &mut Vec<u8>, text: &str) -> Outcome {
    push_status(out, Status::Ok, None, text);
    Outcome::Continue
}

fn no(out: &mut Vec<u8>, code: Option<Code>, text: &str) -> Outcome {
    push_status(out, Status::No, code.as_ref(), text);
    Outcome::Continue
}
