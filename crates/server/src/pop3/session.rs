//! One POP3 session: the states of RFC 1939 (AUTHORIZATION, TRANSACTION, UPDATE) and every
//! command's answer. No sockets: the driver (`conn.rs`) hands it lines and writes what it puts
//! into `out`, and obeys the [`Next`] it returns.
//!
//! Logging in follows IMAP's rules exactly: the same [`postfach_auth::Authenticator`] (throttling,
//! blocks, app passwords, two-factor, one log line per attempt), the same SASL mechanisms
//! (`postfach_imap::sasl`), the same cleartext rule (`imap.allow_plaintext_auth`: without TLS,
//! USER/PASS and AUTH are refused and not advertised), and the same per-account connection
//! count (the admission hook) before the `+OK`. A connection is closed after
//! [`MAX_AUTH_FAILURES`] failed attempts, or at once when its address is blocked.
//!
//! After login the session holds an exclusive lock on the maildrop among POP3 sessions
//! (RFC 1939 §4; a second session gets `-ERR [IN-USE]`), not against IMAP: IMAP sessions go on
//! reading and changing the INBOX, and a POP3 QUIT reaches them through the store's notifier.
//!
//! UPDATE (QUIT in TRANSACTION state, RFC 1939 §6): messages RETR sent whole get `\Seen`, then
//! the messages marked by DELE are expunged through the store's ordinary path
//! (`MailStore::remove_messages`: flagged `\Deleted` and expunged in one transaction, only
//! those), so IMAP sessions see EXPUNGE at once (IDLE) or at their next command. A session that
//! ends any other way changes nothing. TOP changes no flags.
//!
//! Response codes: RFC 2449 §8 (`[IN-USE]`) and RFC 3206 (`[AUTH]`, `[SYS/TEMP]`, `[SYS/PERM]`).

use std::sync::Arc;

use postfach_auth::admission::{Admission, Admitted};
use postfach_auth::scram::ChannelBinding;
use postfach_auth::{AuthError, Mechanism, Principal};
use postfach_imap::sasl::{self, BearerOutcome, Mech, Offer, Step};
use postfach_imap::{ConnInfo, ServerContext, Transport};
use postfach_secret::Secret;
use postfach_store::{FlagOp, Flags, StoreError, SystemFlags};
use tracing::{debug, error, info, warn};

use super::command::{self, Command, Msg};
use super::maildrop::{Listing, ListingKind, Maildrop, Stuffer};
use super::{MaildropLock, MaildropLocks};

/// Failed logins one connection may make before it is closed (as IMAP).
pub(crate) const MAX_AUTH_FAILURES: u32 = 5;
/// Lines that are no command (unknown, malformed, too long) one connection may send before it
/// is closed: a client speaking another protocol, or garbage, does not get to loop forever.
pub(crate) const MAX_BAD_COMMANDS: u32 = 10;

/// What the driver does after a call into the session.
pub(crate) enum Next {
    /// Write the output and read the next line.
    Continue,
    /// Write the output (the status line of RETR or TOP), then the message from the stuffer.
    Message(Stuffer),
    /// Write the output (the status line of LIST or UIDL), then the listing, chunk by chunk
    /// through [`Session::listing_chunk`].
    Listing(Listing),
    /// Write the output (`+OK` to STLS), discard every byte already received, run the TLS
    /// handshake, then call [`Session::tls_started`] (RFC 2595 §4).
    StartTls,
    /// Write the output and close the connection.
    Close,
}

/// Where the session stands.
enum State {
    /// Not logged in; `user` after a USER command (RFC 1939 §7).
    Authorization { user: Option<String> },
    /// An AUTH exchange waits for the client's next line (RFC 5034 §4).
    Sasl(Mech, Step),
    /// Logged in, the maildrop locked and read.
    Transaction(Box<Transaction>),
    /// QUIT was answered, or the connection is being closed.
    Closed,
}

/// The state of a logged-in session.
struct Transaction {
    principal: Principal,
    maildrop: Maildrop,
    /// The credentials generation the principal was last checked at.
    generation: u64,
    /// The place in the account's connection count; released with the session.
    _admitted: Option<Admitted>,
    /// The maildrop lock; released with the session.
    _lock: MaildropLock,
}

/// A POP3 session.
pub(crate) struct Session {
    ctx: Arc<ServerContext>,
    locks: Arc<MaildropLocks>,
    conn: ConnInfo,
    admission: Option<Arc<dyn Admission>>,
    binding: Option<ChannelBinding>,
    state: State,
    auth_failures: u32,
    bad_commands: u32,
}

/// How a failed login weighs on the connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Not an attempt at credentials (a malformed exchange, a limit).
    Uncounted,
    /// A failed attempt.
    Counted,
    /// The address is blocked: close.
    Fatal,
}

impl Session {
    /// A session on a new connection.
    pub(crate) fn new(
        ctx: Arc<ServerContext>,
        locks: Arc<MaildropLocks>,
        conn: ConnInfo,
        admission: Option<Arc<dyn Admission>>,
        binding: Option<ChannelBinding>,
    ) -> Self {
        Self {
            ctx,
            locks,
            conn,
            admission,
            binding,
            state: State::Authorization { user: None },
            auth_failures: 0,
            bad_commands: 0,
        }
    }

    /// The greeting (RFC 1939 §4). No APOP timestamp: APOP needs the plain password stored.
    pub(crate) fn greeting(&self, out: &mut Vec<u8>) {
        ok(out, "Postfach POP3 server ready");
    }

    /// True once logged in.
    pub(crate) fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Transaction(_))
    }

    /// The logged-in account's name.
    pub(crate) fn account(&self) -> Option<&str> {
        match &self.state {
            State::Transaction(t) => Some(&t.principal.name),
            _ => None,
        }
    }

    /// The connection's facts (the transport changes with STLS).
    pub(crate) fn connection(&self) -> &ConnInfo {
        &self.conn
    }

    /// True while an AUTH exchange waits for a client response (a longer line is allowed).
    pub(crate) fn in_sasl_exchange(&self) -> bool {
        matches!(self.state, State::Sasl(..))
    }

    /// The TLS handshake after STLS succeeded.
    pub(crate) fn tls_started(&mut self, binding: Option<ChannelBinding>) {
        self.conn.transport = Transport::Tls;
        self.binding = binding;
    }

    /// Appends the next chunk of a listing [`Next::Listing`] asked for; `false` once complete.
    pub(crate) fn listing_chunk(&self, listing: &mut Listing, out: &mut Vec<u8>) -> bool {
        match &self.state {
            State::Transaction(t) => t.maildrop.listing_chunk(listing, out),
            _ => false,
        }
    }

    /// A line longer than allowed arrived (and was thrown away).
    pub(crate) fn line_too_long(&mut self, out: &mut Vec<u8>) -> Next {
        if let State::Sasl(..) = self.state {
            // RFC 5034 §4: the exchange fails; the session is back in AUTHORIZATION.
            self.state = State::Authorization { user: None };
        }
        self.bad(out, "Line too long")
    }

    /// The connection is about to close without QUIT (timeout, shutdown, kick): `-ERR text`.
    /// Nothing is expunged (RFC 1939 §6: no UPDATE without QUIT).
    pub(crate) fn farewell(&mut self, text: &str, out: &mut Vec<u8>) {
        self.state = State::Closed;
        err(out, "", text);
    }

    /// One line from the client (without its CRLF): a command, or a response in an AUTH
    /// exchange. Every line may hold a password, so it arrives as a [`Secret`].
    pub(crate) async fn handle(&mut self, line: Secret, out: &mut Vec<u8>) -> Next {
        if let State::Sasl(..) = self.state {
            let State::Sasl(mech, step) =
                std::mem::replace(&mut self.state, State::Authorization { user: None })
            else {
                return Next::Continue;
            };
            return self.sasl_response(mech, step, &line, out).await;
        }
        let command = match command::parse(line.expose_secret()) {
            Ok(command) => command,
            Err(e) => return self.bad(out, e.message()),
        };
        debug!(command = command.name(), "pop3 command");
        if let Some(next) = self.check_credential(out).await {
            return next;
        }
        match command {
            Command::Capa => {
                self.capa(out);
                Next::Continue
            }
            Command::Noop => match self.state {
                State::Transaction(_) => {
                    ok(out, "");
                    Next::Continue
                }
                _ => not_now(out, "Log in first"),
            },
            Command::Quit => self.quit(out).await,
            Command::Stls => self.stls(out),
            Command::User(name) => self.user(name, out),
            Command::Pass(password) => self.pass(password, out).await,
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial, out).await,
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Rset
            | Command::Top(..)
            | Command::Uidl(_) => self.transaction(command, out).await,
        }
    }

    // --- AUTHORIZATION ------------------------------------------------------------------------

    /// CAPA (RFC 2449 §5): what this state and transport offer.
    fn capa(&self, out: &mut Vec<u8>) {
        ok(out, "Capability list follows");
        let mut lines: Vec<String> = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        if let State::Authorization { .. } = self.state {
            if self.auth_allowed() {
                // RFC 2449 §6.2, RFC 5034 §3: only what this connection may use.
                lines.push("USER".to_owned());
                lines.push(format!(
                    "SASL {}",
                    Mech::offered(Offer::of(self.binding.as_ref(), &self.ctx.auth))
                        .iter()
                        .map(|m| m.name())
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
            if self.conn.transport == Transport::Plain && self.ctx.config.starttls_available {
                lines.push("STLS".to_owned());
            }
        }
        lines.push("IMPLEMENTATION Postfach".to_owned());
        for line in lines {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }

    /// True when credentials may be sent on this connection: IMAP's rule (TLS, or
    /// `imap.allow_plaintext_auth`).
    fn auth_allowed(&self) -> bool {
        self.conn.transport == Transport::Tls || self.ctx.config.allow_plaintext_auth
    }

    /// STLS (RFC 2595 §4).
    fn stls(&mut self, out: &mut Vec<u8>) -> Next {
        if !matches!(self.state, State::Authorization { .. }) {
            return not_now(out, "Only permitted before login");
        }
        if self.conn.transport == Transport::Tls {
            err(out, "", "Command not permitted when TLS active");
            return Next::Continue;
        }
        if !self.ctx.config.starttls_available {
            err(out, "", "TLS is not available");
            return Next::Continue;
        }
        ok(out, "Begin TLS negotiation");
        Next::StartTls
    }

    /// USER (RFC 1939 §7). Says `+OK` for any name: which names exist is not revealed.
    fn user(&mut self, name: String, out: &mut Vec<u8>) -> Next {
        if !matches!(self.state, State::Authorization { .. }) {
            return not_now(out, "Already logged in");
        }
        if !self.auth_allowed() {
            return privacy_required(out);
        }
        self.state = State::Authorization { user: Some(name) };
        ok(out, "Send PASS");
        Next::Continue
    }

    /// PASS (RFC 1939 §7), after USER.
    async fn pass(&mut self, password: Secret, out: &mut Vec<u8>) -> Next {
        let user = match &mut self.state {
            State::Authorization { user } => user.take(),
            _ => return not_now(out, "Already logged in"),
        };
        let Some(user) = user else {
            err(out, "", "Send USER first");
            return Next::Continue;
        };
        if !self.auth_allowed() {
            return privacy_required(out);
        }
        let result = self.ctx.auth.login(self.conn.peer.ip(), Mechanism::UserPass, &user, password).await;
        self.login_result(result, out).await
    }

    /// AUTH (RFC 5034 §4), or the mechanism list for a bare AUTH.
    async fn auth(&mut self, mechanism: Option<String>, initial: Option<Secret>, out: &mut Vec<u8>) -> Next {
        if !matches!(self.state, State::Authorization { .. }) {
            return not_now(out, "Already logged in");
        }
        if !self.auth_allowed() {
            return privacy_required(out);
        }
        let Some(mechanism) = mechanism else {
            ok(out, "Mechanisms follow");
            for name in
                Mech::offered(Offer::of(self.binding.as_ref(), &self.ctx.auth)).iter().map(|m| m.name())
            {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b".\r\n");
            return Next::Continue;
        };
        let Some(mech) = Mech::parse(&mechanism, Offer::of(self.binding.as_ref(), &self.ctx.auth)) else {
            err(out, "", "Unsupported authentication mechanism");
            return Next::Continue;
        };
        let (step, first) = mech.start();
        match initial {
            // RFC 5034 §4: `=` is an empty initial response; `sasl::decode` knows it.
            Some(initial) => self.sasl_response(mech, step, &initial, out).await,
            None => self.challenge(mech, step, first, out),
        }
    }

    /// Sends `+ base64` and waits for the client's response.
    fn challenge(&mut self, mech: Mech, step: Step, data: &[u8], out: &mut Vec<u8>) -> Next {
        // RFC 5034 §4: continue-req = "+" SP [base64] CRLF.
        out.extend_from_slice(b"+ ");
        out.extend_from_slice(sasl::challenge(data).as_bytes());
        out.extend_from_slice(b"\r\n");
        self.state = State::Sasl(mech, step);
        Next::Continue
    }

    /// One client response of an AUTH exchange.
    async fn sasl_response(&mut self, mech: Mech, step: Step, line: &Secret, out: &mut Vec<u8>) -> Next {
        if line.expose_secret() == b"*" {
            // RFC 5034 §4: the client cancelled; the server MUST answer -ERR.
            err(out, "", "Authentication cancelled");
            return Next::Continue;
        }
        let Some(data) = sasl::decode(line.expose_secret()) else {
            err(out, "", "Invalid base64 in authentication data");
            return Next::Continue;
        };
        let peer = self.conn.peer.ip();
        match step {
            Step::Plain => {
                let Some((authz, authc, password)) = sasl::split_plain(data.expose_secret()) else {
                    err(out, "", "Malformed PLAIN credentials");
                    return Next::Continue;
                };
                if !authz.is_empty() && authz != authc {
                    return self.failed(AuthError::Authorization, out);
                }
                let user = String::from_utf8_lossy(authc).into_owned();
                let password = Secret::new(password.to_vec());
                let result = self.ctx.auth.login(peer, mech.mechanism(), &user, password).await;
                self.login_result(result, out).await
            }
            Step::LoginUser => {
                let user = String::from_utf8_lossy(data.expose_secret()).into_owned();
                self.challenge(mech, Step::LoginPassword(user), sasl::password_prompt(), out)
            }
            Step::LoginPassword(user) => {
                let result = self.ctx.auth.login(peer, mech.mechanism(), &user, data).await;
                self.login_result(result, out).await
            }
            Step::ScramFirst(variant) => {
                let started = self
                    .ctx
                    .auth
                    .scram_start(peer, variant, data.expose_secret(), self.binding.as_ref())
                    .await;
                match started {
                    Ok(exchange) => {
                        let first = exchange.server_first().as_bytes().to_vec();
                        self.challenge(mech, Step::ScramFinal(Box::new(exchange)), &first, out)
                    }
                    Err(e) => self.failed(e, out),
                }
            }
            Step::ScramFinal(exchange) => {
                match self.ctx.auth.scram_finish(*exchange, data.expose_secret()).await {
                    // RFC 5034 §4 has no additional data with success: the server-final message
                    // goes out as a challenge, answered by an empty response (RFC 4422 §5).
                    Ok((principal, last)) => {
                        self.challenge(mech, Step::ScramAcknowledge(principal), last.as_bytes(), out)
                    }
                    Err(e) => self.failed(e, out),
                }
            }
            Step::ScramAcknowledge(principal) => {
                if data.is_empty() {
                    self.login_result(Ok(principal), out).await
                } else {
                    err(out, "", "Expected an empty response after the server's proof");
                    Next::Continue
                }
            }
            Step::Bearer => match sasl::bearer(&self.ctx.auth, peer, mech, data.expose_secret()).await {
                BearerOutcome::LoggedIn(principal) => self.login_result(Ok(principal), out).await,
                // RFC 7628 §3.2.2: the error as a challenge, the failure after the client's
                // acknowledgement.
                BearerOutcome::Refused { challenge, error } => {
                    self.challenge(mech, Step::BearerRefused(error), &challenge, out)
                }
                BearerOutcome::Failed(e) => self.failed(e, out),
                BearerOutcome::Malformed => {
                    err(out, "", "Malformed bearer token message");
                    Next::Continue
                }
            },
            Step::BearerRefused(e) => {
                if sasl::bearer_acknowledged(data.expose_secret()) {
                    self.failed(e, out)
                } else {
                    err(out, "", "Expected the acknowledgement of the error");
                    Next::Continue
                }
            }
        }
    }

    /// The end of a login attempt (the authenticator has logged it).
    async fn login_result(&mut self, result: Result<Principal, AuthError>, out: &mut Vec<u8>) -> Next {
        match result {
            Ok(principal) => self.logged_in(principal, out).await,
            Err(e) => self.failed(e, out),
        }
    }

    /// A failed login: the answer (RFC 3206 codes), and the connection's count.
    fn failed(&mut self, e: AuthError, out: &mut Vec<u8>) -> Next {
        self.state = State::Authorization { user: None };
        let failure = match &e {
            AuthError::BadCredentials => {
                err(out, "[AUTH] ", "Authentication failed");
                Failure::Counted
            }
            AuthError::Throttled { .. } => {
                err(out, "[SYS/TEMP] ", "Too many failed logins; try again later");
                Failure::Counted
            }
            AuthError::Blocked { .. } => {
                err(out, "[SYS/TEMP] ", "Too many failed logins from your address; try again later");
                Failure::Fatal
            }
            AuthError::Authorization => {
                err(out, "[AUTH] ", "Logging in as another user is not allowed");
                Failure::Uncounted
            }
            AuthError::Protocol(p) => {
                err(out, "", &format!("Authentication exchange failed: {p}"));
                Failure::Uncounted
            }
            AuthError::Store(_) | AuthError::Internal(_) => {
                error!(peer = %self.conn.peer, error = %e, "authentication error");
                err(out, "[SYS/TEMP] ", "Authentication is temporarily unavailable");
                Failure::Uncounted
            }
        };
        self.auth_failures = match failure {
            Failure::Uncounted => self.auth_failures,
            Failure::Counted => self.auth_failures.saturating_add(1),
            Failure::Fatal => MAX_AUTH_FAILURES,
        };
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.state = State::Closed;
            return Next::Close;
        }
        Next::Continue
    }

    /// The credentials passed: the account's connection count, the maildrop lock, the snapshot.
    async fn logged_in(&mut self, principal: Principal, out: &mut Vec<u8>) -> Next {
        let admitted = match &self.admission {
            None => None,
            Some(admission) => match admission.admit(&principal) {
                Some(admitted) => Some(admitted),
                None => {
                    info!(
                        target: postfach_auth::LOG_TARGET,
                        addr = %self.conn.peer.ip(),
                        account = ?principal.name,
                        "login refused: too many connections for this account"
                    );
                    err(out, "[SYS/TEMP] ", "Too many connections for this account");
                    return Next::Continue;
                }
            },
        };
        let Some(lock) = self.locks.acquire(principal.account) else {
            // RFC 1939 §4, RFC 2449 §8.1.1.
            err(out, "[IN-USE] ", "The maildrop is in use by another POP3 session");
            return Next::Continue;
        };
        let maildrop = match Maildrop::open(&self.ctx.store, principal.account).await {
            Ok(maildrop) => maildrop,
            Err(StoreError::NotFound) => {
                err(out, "[SYS/PERM] ", "The account has no INBOX");
                return Next::Continue;
            }
            Err(e) => {
                error!(account = %principal.name, error = %e, "cannot open the POP3 maildrop");
                err(out, "[SYS/TEMP] ", "The maildrop cannot be opened now; try again later");
                return Next::Continue;
            }
        };
        let (count, octets) = maildrop.totals();
        debug!(account = %principal.name, messages = count, octets, "pop3 login");
        ok(out, &format!("Logged in; {count} messages ({octets} octets)"));
        let generation = self.ctx.auth.generation();
        self.state = State::Transaction(Box::new(Transaction {
            principal,
            maildrop,
            generation,
            _admitted: admitted,
            _lock: lock,
        }));
        Next::Continue
    }

    /// After login: when the store's credentials generation moved (a password change, an app
    /// password revoked), checks that the session's credential still holds; if not, answers
    /// `-ERR [AUTH]` and closes without UPDATE.
    async fn check_credential(&mut self, out: &mut Vec<u8>) -> Option<Next> {
        let State::Transaction(t) = &mut self.state else { return None };
        let generation = self.ctx.auth.generation();
        if generation == t.generation {
            return None;
        }
        match self.ctx.auth.still_valid(&t.principal).await {
            Ok(true) => {
                t.generation = generation;
                None
            }
            Ok(false) => {
                info!(
                    target: postfach_auth::LOG_TARGET,
                    addr = %self.conn.peer.ip(),
                    account = ?t.principal.name,
                    credential = t.principal.credential.kind(),
                    "session ended: credential revoked"
                );
                self.state = State::Closed;
                err(out, "[AUTH] ", "Your login was revoked; log in again");
                Some(Next::Close)
            }
            Err(e) => {
                warn!(error = %e, "cannot re-check the session's credential");
                None
            }
        }
    }

    // --- TRANSACTION --------------------------------------------------------------------------

    /// STAT, LIST, RETR, DELE, RSET, TOP, UIDL.
    async fn transaction(&mut self, command: Command, out: &mut Vec<u8>) -> Next {
        let State::Transaction(t) = &mut self.state else {
            return not_now(out, "Log in first");
        };
        let drop = &mut t.maildrop;
        match command {
            Command::Stat => {
                let (count, octets) = drop.totals();
                // RFC 1939 §5: exactly "+OK nn mm".
                ok(out, &format!("{count} {octets}"));
            }
            Command::List(None) => {
                let (count, octets) = drop.totals();
                ok(out, &format!("{count} messages ({octets} octets)"));
                return Next::Listing(Listing::new(ListingKind::Sizes));
            }
            Command::List(Some(msg)) => match drop.message(msg) {
                Ok((_, size)) => ok(out, &format!("{} {size}", msg.0)),
                Err(e) => err(out, "", e.message()),
            },
            Command::Uidl(None) => {
                ok(out, "Unique-ID listing follows");
                return Next::Listing(Listing::new(ListingKind::UniqueIds));
            }
            Command::Uidl(Some(msg)) => match drop.message(msg) {
                Ok((uid, _)) => ok(out, &format!("{} {}", msg.0, drop.unique_id(uid))),
                Err(e) => err(out, "", e.message()),
            },
            Command::Dele(msg) => match drop.mark_deleted(msg) {
                Ok(()) => ok(out, &format!("Message {} deleted", msg.0)),
                Err(e) => err(out, "", e.message()),
            },
            Command::Rset => {
                drop.unmark_all();
                let (count, octets) = drop.totals();
                ok(out, &format!("{count} messages ({octets} octets)"));
            }
            Command::Retr(msg) => return retrieve(&self.ctx, drop, msg, None, out).await,
            Command::Top(msg, lines) => return retrieve(&self.ctx, drop, msg, Some(lines), out).await,
            _ => err(out, "", "Not a TRANSACTION command"),
        }
        Next::Continue
    }

    /// QUIT: in AUTHORIZATION just goodbye; in TRANSACTION the UPDATE state (RFC 1939 §6).
    async fn quit(&mut self, out: &mut Vec<u8>) -> Next {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let State::Transaction(t) = state else {
            ok(out, "Bye");
            return Next::Close;
        };
        let store = &self.ctx.store;
        let mailbox = t.maildrop.mailbox();
        let seen = t.maildrop.retrieved();
        if !seen.is_empty() {
            let flags = Flags { system: SystemFlags::SEEN, keywords: Vec::new() };
            if let Err(e) = store.store_flags(mailbox, &seen, FlagOp::Add, &flags, None).await {
                // Not worth failing the QUIT for: the mail was delivered to the client.
                warn!(account = %t.principal.name, error = %e, "cannot set \\Seen on retrieved messages");
            }
        }
        let deleted = t.maildrop.deleted();
        let removed = if deleted.is_empty() {
            0
        } else {
            match store.remove_messages(mailbox, &deleted).await {
                Ok(uids) => uids.len(),
                Err(e) => {
                    error!(account = %t.principal.name, error = %e, "cannot expunge at POP3 QUIT");
                    // RFC 1939 §6: the negative answer, and the connection closes all the same.
                    err(out, "[SYS/TEMP] ", "Some deleted messages not removed");
                    return Next::Close;
                }
            }
        };
        debug!(account = %t.principal.name, marked = deleted.len(), removed, "pop3 update");
        ok(out, &format!("Bye; {} messages deleted", deleted.len()));
        Next::Close
    }

    /// Counts a bad line: `-ERR text`, and after [`MAX_BAD_COMMANDS`] the connection closes.
    fn bad(&mut self, out: &mut Vec<u8>, text: &str) -> Next {
        self.bad_commands += 1;
        if self.bad_commands >= MAX_BAD_COMMANDS {
            self.state = State::Closed;
            err(out, "", "Too many bad commands; closing");
            return Next::Close;
        }
        err(out, "", text);
        Next::Continue
    }
}

/// RETR (`lines` `None`) and TOP: the status line, and the message for the driver to stream.
async fn retrieve(
    ctx: &ServerContext,
    drop: &mut Maildrop,
    msg: Msg,
    lines: Option<u32>,
    out: &mut Vec<u8>,
) -> Next {
    let (uid, size) = match drop.message(msg) {
        Ok(found) => found,
        Err(e) => {
            err(out, "", e.message());
            return Next::Continue;
        }
    };
    match ctx.store.body(drop.mailbox(), uid).await {
        Ok(raw) => {
            if lines.is_none() {
                ok(out, &format!("{size} octets"));
                drop.mark_retrieved(msg);
            } else {
                ok(out, "Top of message follows");
            }
            Next::Message(Stuffer::new(raw, lines))
        }
        Err(StoreError::NotFound) => {
            err(out, "", "The message was removed by another session");
            Next::Continue
        }
        Err(e) => {
            error!(error = %e, "cannot read a message for POP3");
            err(out, "[SYS/TEMP] ", "The message cannot be read now");
            Next::Continue
        }
    }
}

/// `+OK text` (a bare `+OK` for an empty text).
fn ok(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"+OK");
    if !text.is_empty() {
        out.push(b' ');
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `-ERR [CODE] text`; `code` is empty or ends with a space.
fn err(out: &mut Vec<u8>, code: &str, text: &str) {
    out.extend_from_slice(b"-ERR ");
    out.extend_from_slice(code.as_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A command that is valid, but not in this state.
fn not_now(out: &mut Vec<u8>, text: &str) -> Next {
    err(out, "", text);
    Next::Continue
}

/// USER, PASS or AUTH on a cleartext connection where IMAP's rule forbids it. RFC 3206 §5:
/// `[AUTH]` covers "an attempt to authenticate in violation of policy".
fn privacy_required(out: &mut Vec<u8>) -> Next {
    err(out, "[AUTH] ", "Use TLS (STLS or the POP3S port) before logging in");
    Next::Continue
}
