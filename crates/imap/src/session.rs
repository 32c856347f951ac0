//! The session state machine: the one (state, command) gate, login, and IDLE.
//!
//! RFC 9051 §3 defines four states. [`State`] holds exactly what each needs, and
//! [`Session::handle`] decides in one `match` which commands are legal where; handlers receive the
//! state they need and never re-check it. Only this file assigns `self.state`.
//!
//! Login ends in one place, `auth_result`: after the credentials passed, the server's
//! [`Admission`] hook (the per-account connection limit) takes the session's place before the
//! tagged OK is written; a refusal is `NO [LIMIT]` and the session stays not authenticated.

use std::sync::Arc;

use postfach_auth::admission::{Admission, Admitted};
use postfach_auth::scram::ChannelBinding;
use postfach_auth::{AuthError, Mechanism, Principal, Secret};
use postfach_proto::parse_command;
use postfach_proto::response::{Code, Data, Status, WriteOptions};
use postfach_proto::types::{Command, CommandBody, Tag};
use postfach_store::ModSeq;
use tokio::sync::watch;

use crate::capability::{self, Phase};
use crate::mailbox;
use crate::message;
use crate::respond::{bad, no, ok};
use crate::sasl::{self, Mech, Step};
use crate::selected::{Access, Expunges, Poll, Selected, SyncStyle};
use crate::{ConnInfo, Out, Outcome, ServerContext, Transport};

/// Failed logins after which the connection is closed (RFC 9051 §6.2.3 lets the server do so).
const MAX_AUTH_FAILURES: u32 = 5;

/// RFC 9051 §3: where the session is.
enum State {
    /// Before login.
    NotAuthenticated { failures: u32 },
    /// Logged in, no mailbox selected.
    Authenticated(Principal),
    /// Logged in with a mailbox selected.
    Selected(Principal, Box<Selected>),
    /// After LOGOUT.
    Logout,
}

/// What SELECT or EXAMINE asks to open.
struct Open {
    name: postfach_proto::types::MailboxName,
    params: postfach_proto::types::SelectParams,
    access: Access,
}

/// An AUTHENTICATE exchange waiting for the client's next line.
struct PendingAuth {
    tag: Tag,
    mech: Mech,
    step: Step,
}

/// Options the client turned on with ENABLE (RFC 5161), plus SEARCHRES's saved result.
#[derive(Default)]
pub(crate) struct Enabled {
    /// `ENABLE IMAP4rev2`: rev2 response shapes (ESEARCH, no RECENT, UTF-8 names).
    pub(crate) rev2: bool,
    /// `ENABLE UTF8=ACCEPT` (RFC 6855) or IMAP4rev2: mailbox names in UTF-8.
    pub(crate) utf8: bool,
    /// CONDSTORE is on (RFC 7162 §3.1: ENABLE or any CONDSTORE-enabling command).
    pub(crate) condstore: bool,
    /// `ENABLE QRESYNC` (RFC 7162 §3.2.3); implies CONDSTORE.
    pub(crate) qresync: bool,
}

impl Enabled {
    /// How responses are encoded: IMAP4rev2 and UTF8=ACCEPT clients get UTF-8 mailbox names
    /// (RFC 9051 §5.1, RFC 6855 §3).
    pub(crate) fn write_options(&self) -> WriteOptions {
        WriteOptions { utf8: self.utf8 }
    }

    pub(crate) fn style(&self) -> SyncStyle {
        SyncStyle { rev2: self.rev2, condstore: self.condstore, qresync: self.qresync }
    }
}

/// RFC 7162 §3.1: commands that turn CONDSTORE on as a side effect.
fn enables_condstore(body: &CommandBody) -> bool {
    use postfach_proto::types::{FetchAttribute, StatusItem};
    match body {
        CommandBody::Select { params, .. } | CommandBody::Examine { params, .. } => params.condstore,
        CommandBody::Fetch { items, modifiers, .. } => {
            modifiers.changed_since.is_some() || items.attributes().contains(&FetchAttribute::ModSeq)
        }
        CommandBody::Store { unchanged_since, .. } => unchanged_since.is_some(),
        CommandBody::Search { criteria, .. } => criteria.iter().any(message::has_modseq),
        CommandBody::Status { items, .. } => items.contains(&StatusItem::HighestModSeq),
        _ => false,
    }
}

/// One client's IMAP session.
pub struct Session {
    ctx: Arc<ServerContext>,
    conn: ConnInfo,
    state: State,
    enabled: Enabled,
    pending_auth: Option<PendingAuth>,
    idle_tag: Option<Tag>,
    /// The TLS channel binding (SCRAM-SHA-256-PLUS), once the connection has one.
    channel_binding: Option<ChannelBinding>,
    /// The credentials generation this session's login was last checked against (issue 5:
    /// revoked app passwords end their sessions).
    auth_generation: u64,
    /// Asked before a login is answered OK (`None`: every login is admitted).
    admission: Option<Arc<dyn Admission>>,
    /// The place the admission gave this session, held until the session is dropped.
    admitted: Option<Admitted>,
}

impl Session {
    /// A new session in the not-authenticated state.
    pub fn new(ctx: Arc<ServerContext>, conn: ConnInfo) -> Self {
        Self {
            ctx,
            conn,
            state: State::NotAuthenticated { failures: 0 },
            enabled: Enabled::default(),
            pending_auth: None,
            idle_tag: None,
            channel_binding: None,
            auth_generation: 0,
            admission: None,
            admitted: None,
        }
    }

    /// Sets the hook that admits a login after its credentials passed and before it is
    /// answered OK (the server's per-account connection limit). The place it gives is held
    /// until the session is dropped.
    pub fn set_admission(&mut self, admission: Arc<dyn Admission>) {
        self.admission = Some(admission);
    }

    /// Writes the greeting (`* OK [CAPABILITY ...] Postfach ready`, RFC 9051 §7.1.1).
    pub fn greeting(&mut self, out: &mut Out) {
        out.begin(self.enabled.write_options());
        let caps = capability::list(
            &self.ctx.config,
            self.conn.transport,
            Phase::PreAuth,
            self.channel_binding.as_ref(),
        );
        out.status(Status::Ok, Some(Code::Capability(caps)), "Postfach ready");
    }

    /// True once logged in (the driver switches from the short pre-login timeout to the long one).
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated(_) | State::Selected(..))
    }

    /// The logged-in account's canonical name, `None` before login (for per-account limits).
    pub fn account(&self) -> Option<&str> {
        match &self.state {
            State::Authenticated(p) | State::Selected(p, _) => Some(&p.name),
            _ => None,
        }
    }

    /// The change signal of the selected mailbox, if any (for IDLE).
    pub fn change_watch(&self) -> Option<watch::Receiver<ModSeq>> {
        match &self.state {
            State::Selected(_, sel) => Some(sel.watch()),
            _ => None,
        }
    }

    /// The STARTTLS handshake succeeded: the connection is now encrypted.
    pub fn tls_started(&mut self) {
        self.conn.transport = Transport::Tls;
    }

    /// The TLS layer's channel binding for this connection (RFC 9266 `tls-exporter` on TLS 1.3,
    /// RFC 5929 `tls-server-end-point` on TLS 1.2): offers SCRAM-SHA-256-PLUS. Call it after
    /// the implicit-TLS handshake, or after STARTTLS together with [`Session::tls_started`].
    pub fn set_channel_binding(&mut self, binding: Option<ChannelBinding>) {
        self.channel_binding = binding;
    }

    /// A signal that moves when credentials change anywhere (an app password revoked, TOTP
    /// switched on). A driver waiting without commands (IDLE) calls
    /// [`Session::check_credential`] when it fires.
    pub fn credential_watch(&self) -> watch::Receiver<u64> {
        self.ctx.auth.subscribe_generation()
    }

    /// Ends the session when what it logged in with no longer holds (a revoked app password,
    /// a deleted account, TOTP switched on for a password session): writes `* BYE` and returns
    /// [`Outcome::Close`]. Otherwise returns [`Outcome::Continue`]. Costs one comparison unless
    /// the credentials generation moved since the last check.
    pub async fn check_credential(&mut self, out: &mut Out) -> Outcome {
        out.begin(self.enabled.write_options());
        let generation = self.ctx.auth.generation();
        if generation == self.auth_generation {
            return Outcome::Continue;
        }
        let principal = match &self.state {
            State::Authenticated(p) | State::Selected(p, _) => p.clone(),
            _ => {
                self.auth_generation = generation;
                return Outcome::Continue;
            }
        };
        match self.ctx.auth.still_valid(&principal).await {
            Ok(true) => {
                self.auth_generation = generation;
                Outcome::Continue
            }
            Ok(false) => {
                tracing::info!(
                    target: postfach_auth::LOG_TARGET,
                    addr = %self.conn.peer.ip(),
                    account = ?principal.name,
                    credential = principal.credential.kind(),
                    "session ended: credential revoked"
                );
                out.bye("Your login was revoked; log in again");
                self.state = State::Logout;
                Outcome::Close
            }
            Err(e) => {
                // Checked again at the next command.
                tracing::warn!(error = %e, "cannot re-check the session's credential");
                Outcome::Continue
            }
        }
    }

    /// The server is going away (shutdown, timeout): `* BYE text` (RFC 9051 §7.1.5).
    pub fn bye(&mut self, text: &str, out: &mut Out) {
        out.begin(self.enabled.write_options());
        out.bye(text);
        self.state = State::Logout;
    }

    /// The framer rejected a command (too long, bad literal): answer `tag BAD` or `* BAD`.
    pub fn rejected(&mut self, tag: Option<&[u8]>, message: &str, out: &mut Out) {
        out.begin(self.enabled.write_options());
        match tag.and_then(|t| Tag::from_bytes(t).ok()) {
            Some(tag) => bad(out, &tag, Some(Code::Limit), message),
            None => out.status(Status::Bad, None, message),
        }
    }

    /// Handles one complete command as framed by `postfach_proto::framing` (literals inline).
    pub async fn handle(&mut self, command: Vec<u8>, out: &mut Out) -> Outcome {
        out.begin(self.enabled.write_options());
        let Command { tag, body } = match parse_command(&command) {
            Ok(c) => c,
            Err(e) => {
                let text = format!("Syntax error: {e}");
                match &e.tag {
                    Some(tag) => bad(out, tag, Some(Code::Parse), &text),
                    None => out.status(Status::Bad, Some(Code::Parse), &text),
                }
                return Outcome::Continue;
            }
        };
        tracing::debug!(command = body.name(), "command");
        // Issue 5: a session whose app password was revoked ends at its next command.
        if self.check_credential(out).await == Outcome::Close {
            return Outcome::Close;
        }
        let ctx = self.ctx.clone();

        // Commands valid in every state (RFC 9051 §6.1).
        match body {
            CommandBody::Capability => {
                let phase = if self.is_authenticated() { Phase::LoggedIn } else { Phase::PreAuth };
                let caps =
                    capability::list(&ctx.config, self.conn.transport, phase, self.channel_binding.as_ref());
                out.data(&Data::Capability(caps));
                ok(out, &tag, None, "CAPABILITY completed");
                return Outcome::Continue;
            }
            CommandBody::Noop => {
                self.sync(out, Expunges::Allowed, Poll::Always).await;
                ok(out, &tag, None, "NOOP completed");
                return Outcome::Continue;
            }
            CommandBody::Logout => {
                out.bye("Logging out");
                ok(out, &tag, None, "LOGOUT completed");
                self.state = State::Logout;
                return Outcome::Close;
            }
            CommandBody::Id(_) => {
                // RFC 2971: say who we are; what the client says is only logged.
                let id = vec![
                    ("name".to_owned(), Some("Postfach".to_owned())),
                    ("version".to_owned(), Some(env!("CARGO_PKG_VERSION").to_owned())),
                ];
                out.data(&Data::Id(Some(id)));
                ok(out, &tag, None, "ID completed");
                return Outcome::Continue;
            }
            _ => {}
        }

        if !self.enabled.condstore && self.is_authenticated() && enables_condstore(&body) {
            self.enabled.condstore = true;
            // RFC 7162 §3.1: the first CONDSTORE-enabling command reports the selected mailbox's
            // HIGHESTMODSEQ.
            if let State::Selected(_, sel) = &self.state {
                let code = Code::HighestModSeq(sel.known_modseq().0);
                out.status(Status::Ok, Some(code), "CONDSTORE enabled");
            }
        }

        let state = std::mem::replace(&mut self.state, State::Logout);
        let (next, outcome) = match (state, body) {
            // --- not authenticated (RFC 9051 §6.2) ---
            (State::NotAuthenticated { failures }, CommandBody::StartTls) => {
                if self.conn.transport == Transport::Tls {
                    bad(out, &tag, None, "TLS is already active");
                    (State::NotAuthenticated { failures }, Outcome::Continue)
                } else if !ctx.config.starttls_available {
                    bad(out, &tag, None, "STARTTLS is not available");
                    (State::NotAuthenticated { failures }, Outcome::Continue)
                } else {
                    ok(out, &tag, None, "Begin TLS negotiation now");
                    (State::NotAuthenticated { failures }, Outcome::StartTls)
                }
            }
            (State::NotAuthenticated { failures }, CommandBody::Login { username, password }) => {
                let user = String::from_utf8_lossy(&username).into_owned();
                let secret = Secret(password.into_inner());
                self.login(tag, failures, &user, secret, Mechanism::LoginCommand, out).await
            }
            (
                State::NotAuthenticated { failures },
                CommandBody::Authenticate { mechanism, initial_response },
            ) => {
                let initial = initial_response.map(|r| r.into_inner());
                self.authenticate(tag, failures, &mechanism, initial, out).await
            }
            (state @ State::NotAuthenticated { .. }, body) => {
                let text = match body {
                    CommandBody::Enable(_) => "ENABLE needs a logged-in session",
                    _ => "Log in first",
                };
                bad(out, &tag, None, text);
                (state, Outcome::Continue)
            }

            // --- authenticated or selected ---
            (state @ (State::Authenticated(_) | State::Selected(..)), CommandBody::StartTls)
            | (state @ (State::Authenticated(_) | State::Selected(..)), CommandBody::Login { .. })
            | (state @ (State::Authenticated(_) | State::Selected(..)), CommandBody::Authenticate { .. }) => {
                bad(out, &tag, None, "Already logged in");
                (state, Outcome::Continue)
            }
            (state, CommandBody::Enable(names)) => {
                self.enable(&tag, &names, out);
                (state, Outcome::Continue)
            }
            (State::Authenticated(user), CommandBody::Idle) => {
                out.continuation("idling");
                self.idle_tag = Some(tag);
                (State::Authenticated(user), Outcome::Idle)
            }
            (State::Selected(user, sel), CommandBody::Idle) => {
                let mut sel = sel;
                // RFC 2177: updates may flow from the start of IDLE.
                self.sync_selected(&mut sel, out, Expunges::Allowed, Poll::Always).await;
                out.continuation("idling");
                self.idle_tag = Some(tag);
                (State::Selected(user, sel), Outcome::Idle)
            }
            (State::Authenticated(user), CommandBody::Select { mailbox, params }) => {
                self.select(tag, user, None, Open { name: mailbox, params, access: Access::ReadWrite }, out)
                    .await
            }
            (State::Selected(user, sel), CommandBody::Select { mailbox, params }) => {
                self.select(
                    tag,
                    user,
                    Some(sel),
                    Open { name: mailbox, params, access: Access::ReadWrite },
                    out,
                )
                .await
            }
            (State::Authenticated(user), CommandBody::Examine { mailbox, params }) => {
                self.select(tag, user, None, Open { name: mailbox, params, access: Access::ReadOnly }, out)
                    .await
            }
            (State::Selected(user, sel), CommandBody::Examine { mailbox, params }) => {
                self.select(
                    tag,
                    user,
                    Some(sel),
                    Open { name: mailbox, params, access: Access::ReadOnly },
                    out,
                )
                .await
            }
            (State::Authenticated(user), body) => {
                let mut cx = mailbox::Cx { ctx: &ctx, user: &user, enabled: &self.enabled, selected: None };
                match mailbox::handle(&mut cx, body, out).await {
                    Some(result) => mailbox::complete(out, &tag, result),
                    None => bad(out, &tag, None, "No mailbox selected"),
                }
                (State::Authenticated(user), Outcome::Continue)
            }
            (State::Selected(user, mut sel), body) => {
                let next = message::handle(
                    &message::SelectedCx { ctx: &ctx, user: &user, enabled: &self.enabled },
                    &mut sel,
                    &tag,
                    body,
                    out,
                )
                .await;
                match next {
                    message::Next::Stay => (State::Selected(user, sel), Outcome::Continue),
                    message::Next::Unselect => (State::Authenticated(user), Outcome::Continue),
                }
            }
            (State::Logout, _) => {
                bad(out, &tag, None, "Logging out");
                (State::Logout, Outcome::Close)
            }
        };
        self.state = next;
        outcome
    }

    /// The next line of an AUTHENTICATE exchange (RFC 9051 §6.2.2).
    pub async fn auth_line(&mut self, line: Vec<u8>, out: &mut Out) -> Outcome {
        out.begin(self.enabled.write_options());
        let Some(PendingAuth { tag, mech, step }) = self.pending_auth.take() else {
            out.status(Status::Bad, None, "No authentication in progress");
            return Outcome::Continue;
        };
        let failures = match self.state {
            State::NotAuthenticated { failures } => failures,
            _ => 0,
        };
        // RFC 9051 §6.2.2: "*" cancels the exchange, answered with BAD.
        if line == b"*" {
            bad(out, &tag, None, "Authentication cancelled");
            return Outcome::Continue;
        }
        let (next, outcome) = self.sasl_step(tag, failures, mech, step, &line, out).await;
        self.state = next;
        outcome
    }

    /// During IDLE: report what changed in the selected mailbox.
    pub async fn idle_update(&mut self, out: &mut Out) {
        out.begin(self.enabled.write_options());
        self.sync(out, Expunges::Allowed, Poll::Always).await;
    }

    /// During IDLE: a keepalive so NATs keep the connection (RFC 2177 allows untagged OK).
    pub fn idle_keepalive(&mut self, out: &mut Out) {
        out.begin(self.enabled.write_options());
        out.status(Status::Ok, None, "Still here");
    }

    /// During IDLE: the client sent a line; `DONE` ends IDLE (RFC 2177 §3).
    pub async fn idle_line(&mut self, line: Vec<u8>, out: &mut Out) -> Outcome {
        out.begin(self.enabled.write_options());
        let Some(tag) = self.idle_tag.take() else {
            out.status(Status::Bad, None, "Not idling");
            return Outcome::Continue;
        };
        if line.eq_ignore_ascii_case(b"DONE") {
            self.sync(out, Expunges::Allowed, Poll::IfSignalled).await;
            ok(out, &tag, None, "IDLE terminated");
        } else {
            bad(out, &tag, None, "Expected DONE");
        }
        Outcome::Continue
    }

    /// Untagged updates for the selected mailbox, if any.
    async fn sync(&mut self, out: &mut Out, expunges: Expunges, poll: Poll) {
        let state = std::mem::replace(&mut self.state, State::Logout);
        self.state = match state {
            State::Selected(user, mut sel) => {
                self.sync_selected(&mut sel, out, expunges, poll).await;
                State::Selected(user, sel)
            }
            other => other,
        };
    }

    async fn sync_selected(&self, sel: &mut Selected, out: &mut Out, expunges: Expunges, poll: Poll) {
        if let Err(e) = sel.sync(&*self.ctx.store, out, expunges, poll, self.enabled.style()).await {
            tracing::warn!(error = %e, mailbox = %sel.name, "sync failed");
        }
    }

    fn enable(&mut self, tag: &Tag, names: &[String], out: &mut Out) {
        // RFC 5161 §3.1: list only what this command newly enabled.
        let mut newly = Vec::new();
        for name in names {
            if name.eq_ignore_ascii_case("IMAP4rev2") && !self.enabled.rev2 {
                self.enabled.rev2 = true;
                self.enabled.utf8 = true;
                newly.push("IMAP4rev2".to_owned());
            } else if name.eq_ignore_ascii_case("UTF8=ACCEPT") && !self.enabled.utf8 {
                self.enabled.utf8 = true;
                newly.push("UTF8=ACCEPT".to_owned());
            } else if name.eq_ignore_ascii_case("CONDSTORE") && !self.enabled.condstore {
                self.enabled.condstore = true;
                newly.push("CONDSTORE".to_owned());
            } else if name.eq_ignore_ascii_case("QRESYNC") && !self.enabled.qresync {
                // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                self.enabled.qresync = true;
                self.enabled.condstore = true;
                newly.push("QRESYNC".to_owned());
            }
        }
        out.set_options(self.enabled.write_options());
        out.data(&Data::Enabled(newly));
        ok(out, tag, None, "ENABLE completed");
    }

    async fn login(
        &mut self,
        tag: Tag,
        failures: u32,
        user: &str,
        password: Secret<Vec<u8>>,
        mechanism: Mechanism,
        out: &mut Out,
    ) -> (State, Outcome) {
        if !capability::auth_allowed(&self.ctx.config, self.conn.transport) {
            // RFC 9051 §6.2.3: no cleartext passwords.
            no(out, &tag, Some(Code::PrivacyRequired), "Use TLS (STARTTLS or port 993) before logging in");
            return (State::NotAuthenticated { failures }, Outcome::Continue);
        }
        let result = self.ctx.auth.login(self.conn.peer.ip(), mechanism, user, &password).await;
        self.auth_result(tag, failures, result, out)
    }

    /// AUTHENTICATE (RFC 9051 §6.2.2): picks the mechanism and runs its first step, with the
    /// SASL-IR initial response (RFC 4959) when the client sent one.
    async fn authenticate(
        &mut self,
        tag: Tag,
        failures: u32,
        mechanism: &str,
        initial: Option<Vec<u8>>,
        out: &mut Out,
    ) -> (State, Outcome) {
        if !capability::auth_allowed(&self.ctx.config, self.conn.transport) {
            // RFC 9051 §6.2.3 (and §11.1): no credentials over cleartext.
            no(out, &tag, Some(Code::PrivacyRequired), "Use TLS (STARTTLS or port 993) before logging in");
            return (State::NotAuthenticated { failures }, Outcome::Continue);
        }
        let Some(mech) = Mech::parse(mechanism, self.channel_binding.as_ref()) else {
            // RFC 9051 §6.2.2: an unsupported mechanism SHOULD get a tagged NO.
            no(out, &tag, Some(Code::CannotDo), "Unsupported authentication mechanism");
            return (State::NotAuthenticated { failures }, Outcome::Continue);
        };
        let (step, first_challenge) = mech.start();
        match initial {
            Some(line) => self.sasl_step(tag, failures, mech, step, &line, out).await,
            None => self.sasl_challenge(tag, failures, mech, step, first_challenge, out),
        }
    }

    /// Sends a `+ base64` challenge and waits for the client's next line.
    fn sasl_challenge(
        &mut self,
        tag: Tag,
        failures: u32,
        mech: Mech,
        step: Step,
        challenge: &[u8],
        out: &mut Out,
    ) -> (State, Outcome) {
        out.continuation(&sasl::challenge(challenge));
        self.pending_auth = Some(PendingAuth { tag, mech, step });
        (State::NotAuthenticated { failures }, Outcome::AuthContinue)
    }

    /// One client response of an AUTHENTICATE exchange (base64, RFC 9051 §6.2.2).
    async fn sasl_step(
        &mut self,
        tag: Tag,
        failures: u32,
        mech: Mech,
        step: Step,
        line: &[u8],
        out: &mut Out,
    ) -> (State, Outcome) {
        let Some(data) = sasl::decode(line) else {
            // RFC 9051 §6.2.2: invalid base64 MUST be rejected with BAD.
            bad(out, &tag, None, "Invalid base64 in authentication data");
            return (State::NotAuthenticated { failures }, Outcome::Continue);
        };
        let peer = self.conn.peer.ip();
        match step {
            Step::Plain => self.authenticate_plain(tag, failures, mech, &data, out).await,
            Step::LoginUser => {
                let user = String::from_utf8_lossy(&data).into_owned();
                self.sasl_challenge(
                    tag,
                    failures,
                    mech,
                    Step::LoginPassword(user),
                    sasl::password_prompt(),
                    out,
                )
            }
            Step::LoginPassword(user) => {
                self.login(tag, failures, &user, Secret(data), mech.mechanism(), out).await
            }
            Step::ScramFirst(variant) => {
                let started =
                    self.ctx.auth.scram_start(peer, variant, &data, self.channel_binding.as_ref()).await;
                match started {
                    Ok(exchange) => {
                        let first = exchange.server_first().as_bytes().to_vec();
                        self.sasl_challenge(
                            tag,
                            failures,
                            mech,
                            Step::ScramFinal(Box::new(exchange)),
                            &first,
                            out,
                        )
                    }
                    Err(e) => self.auth_result(tag, failures, Err(e), out),
                }
            }
            Step::ScramFinal(exchange) => match self.ctx.auth.scram_finish(*exchange, &data).await {
                Ok((principal, server_final)) => self.sasl_challenge(
                    tag,
                    failures,
                    mech,
                    Step::ScramAcknowledge(principal),
                    server_final.as_bytes(),
                    out,
                ),
                Err(e) => self.auth_result(tag, failures, Err(e), out),
            },
            Step::ScramAcknowledge(principal) => {
                if data.is_empty() {
                    self.auth_result(tag, failures, Ok(principal), out)
                } else {
                    bad(out, &tag, None, "Expected an empty response after the server's proof");
                    (State::NotAuthenticated { failures }, Outcome::Continue)
                }
            }
        }
    }

    /// SASL PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`, already base64-decoded.
    async fn authenticate_plain(
        &mut self,
        tag: Tag,
        failures: u32,
        mech: Mech,
        decoded: &[u8],
        out: &mut Out,
    ) -> (State, Outcome) {
        let Some((authz, authc, pass)) = sasl::split_plain(decoded) else {
            bad(out, &tag, None, "Malformed PLAIN credentials");
            return (State::NotAuthenticated { failures }, Outcome::Continue);
        };
        if !authz.is_empty() && authz != authc {
            no(out, &tag, Some(Code::AuthorizationFailed), "Logging in as another user is not allowed");
            return (State::NotAuthenticated { failures }, Outcome::Continue);
        }
        let user = String::from_utf8_lossy(authc).into_owned();
        self.login(tag, failures, &user, Secret(pass.to_vec()), mech.mechanism(), out).await
    }

    /// Answers the end of a login attempt (the authenticator has logged it).
    fn auth_result(
        &mut self,
        tag: Tag,
        failures: u32,
        result: Result<Principal, AuthError>,
        out: &mut Out,
    ) -> (State, Outcome) {
        let failed = failures.saturating_add(1);
        match result {
            Ok(principal) => {
                if let Some(admission) = &self.admission {
                    let Some(admitted) = admission.admit(&principal) else {
                        tracing::info!(
                            target: postfach_auth::LOG_TARGET,
                            addr = %self.conn.peer.ip(),
                            account = ?principal.name,
                            "login refused: too many connections for this account"
                        );
                        // RFC 5530 LIMIT; RFC 9051 §6.2.3: NO is a failed login, the client
                        // stays in the not-authenticated state and may retry or log out.
                        no(out, &tag, Some(Code::Limit), "Too many connections for this account");
                        return (State::NotAuthenticated { failures }, Outcome::Continue);
                    };
                    self.admitted = Some(admitted);
                }
                self.auth_generation = self.ctx.auth.generation();
                let caps = capability::list(&self.ctx.config, self.conn.transport, Phase::LoggedIn, None);
                ok(out, &tag, Some(Code::Capability(caps)), "Logged in");
                return (State::Authenticated(principal), Outcome::Continue);
            }
            Err(AuthError::BadCredentials) => {
                no(out, &tag, Some(Code::AuthenticationFailed), "Authentication failed");
            }
            Err(AuthError::Throttled { .. }) => {
                // RFC 5530 UNAVAILABLE: a temporary condition; the client may retry later.
                no(out, &tag, Some(Code::Unavailable), "Too many failed logins; try again later");
            }
            Err(AuthError::Blocked { .. }) => {
                no(
                    out,
                    &tag,
                    Some(Code::Unavailable),
                    "Too many failed logins from your address; try again later",
                );
                out.bye("Too many failed logins");
                return (State::Logout, Outcome::Close);
            }
            Err(AuthError::Authorization) => {
                no(out, &tag, Some(Code::AuthorizationFailed), "Logging in as another user is not allowed");
                return (State::NotAuthenticated { failures }, Outcome::Continue);
            }
            Err(AuthError::Protocol(e)) => {
                // RFC 9051 §6.2.2: a broken exchange is cancelled with BAD.
                bad(out, &tag, None, &format!("Authentication exchange failed: {e}"));
                return (State::NotAuthenticated { failures }, Outcome::Continue);
            }
            Err(e @ (AuthError::Store(_) | AuthError::Internal(_))) => {
                tracing::error!(peer = %self.conn.peer, error = %e, "authentication error");
                no(out, &tag, Some(Code::Unavailable), "Authentication is temporarily unavailable");
                return (State::NotAuthenticated { failures }, Outcome::Continue);
            }
        }
        if failed >= MAX_AUTH_FAILURES {
            out.bye("Too many failed logins");
            return (State::Logout, Outcome::Close);
        }
        (State::NotAuthenticated { failures: failed }, Outcome::Continue)
    }

    /// SELECT / EXAMINE (RFC 9051 §6.3.2, §6.3.3).
    async fn select(
        &mut self,
        tag: Tag,
        user: Principal,
        previous: Option<Box<Selected>>,
        open: Open,
        out: &mut Out,
    ) -> (State, Outcome) {
        let Open { name, params, access } = open;
        let params = &params;
        if params.qresync.is_some() && !self.enabled.qresync {
            // RFC 7162 §3.2.5: QRESYNC parameters need ENABLE QRESYNC first.
            bad(out, &tag, None, "ENABLE QRESYNC first");
            let state = match previous {
                Some(sel) => State::Selected(user, sel),
                None => State::Authenticated(user),
            };
            return (state, Outcome::Continue);
        }
        if previous.is_some() {
            // RFC 9051 §6.3.2: leaving the old mailbox is announced with [CLOSED].
            out.status(Status::Ok, Some(Code::Closed), "Previous mailbox closed");
        }
        drop(previous);
        match mailbox::open(&self.ctx, &user, &self.enabled, &name, params, access, out).await {
            Ok(sel) => {
                let code = match access {
                    Access::ReadWrite => Code::ReadWrite,
                    Access::ReadOnly => Code::ReadOnly,
                };
                let text = match access {
                    Access::ReadWrite => "SELECT completed",
                    Access::ReadOnly => "EXAMINE completed",
                };
                ok(out, &tag, Some(code), text);
                (State::Selected(user, Box::new(sel)), Outcome::Continue)
            }
            Err(reply) => {
                reply.write(out, &tag);
                (State::Authenticated(user), Outcome::Continue)
            }
        }
    }
}
