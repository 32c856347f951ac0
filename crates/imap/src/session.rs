//! The session state machine, and the one gate every command passes.
//!
//! RFC 9051 §3 defines four states. [`State`] holds exactly what each needs. [`Session::handle`]
//! looks the command up in one table, [`rule`]: where it is legal, whether untagged EXPUNGE may
//! be sent while answering it, which untagged updates surround it, whether it turns CONDSTORE
//! on, and the ACL rights it will need. A command illegal in the current state gets a tagged BAD
//! and never reaches a handler; a legal one goes to its handler in `cmd/` with exactly the state
//! it needs, and the handler never re-checks it. Only this file assigns `self.state` and writes
//! the tagged completion (after every untagged response the command owes, RFC 9051 §7.5.1).
//!
//! Login ends in one place, `finish_login`: after the credentials passed, the server's
//! [`Admission`] hook (the per-account connection limit) takes the session's place before the
//! tagged OK is written; a refusal is `NO [LIMIT]` and the session stays not authenticated.

use std::sync::Arc;

use postfach_auth::admission::{Admission, Admitted};
use postfach_auth::scram::ChannelBinding;
use postfach_auth::{Mechanism, Principal};
use postfach_proto::parse_command_bytes;
use postfach_proto::response::{Code, Completion, Status};
use postfach_proto::types::{
    Command, CommandBody, CommandKind, CompressionAlgorithm, FetchAttribute, StatusItem, Tag,
};
use postfach_secret::Secret;
use postfach_store::{ModSeq, Right, Rights};
use tokio::sync::watch;

use crate::access;
use crate::capability::{self, Phase};
use crate::cmd::login::{Failure, Login, LoginCx};
use crate::cmd::{self, copy::Transfer};
use crate::context::{Cx, Enabled};
use crate::notify;
use crate::respond::{Done, Reply};
use crate::sasl::{Mech, Offer, Step};
use crate::selected::{Access, Expunges, Poll, Selected};
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

/// An AUTHENTICATE exchange waiting for the client's next line.
struct PendingAuth {
    tag: Tag,
    mech: Mech,
    step: Step,
}

/// One client's IMAP session.
pub struct Session {
    ctx: Arc<ServerContext>,
    conn: ConnInfo,
    state: State,
    enabled: Enabled,
    /// Boxed: only a session in the middle of AUTHENTICATE has one, and every idle connection
    /// keeps the session in its future (`imap_conn`'s size test).
    pending_auth: Option<Box<PendingAuth>>,
    idle_tag: Option<Tag>,
    /// The TLS channel binding (SCRAM-SHA-256-PLUS), once the connection has one.
    channel_binding: Option<ChannelBinding>,
    /// The credentials generation this session's login was last checked against (issue 5:
    /// revoked app passwords end their sessions).
    auth_generation: u64,
    /// Asked before a login is answered OK (`None`: every login is admitted).
    admission: Option<Arc<dyn Admission>>,
    /// The place the admission gave this session, held until LOGOUT or the session is dropped.
    admitted: Option<Admitted>,
    /// The name of the command [`Session::handle`] ran last (`None`: it did not parse).
    last_command: Option<&'static str>,
    /// Whether COMPRESS is on (it stays on until the connection ends, UNAUTHENTICATE too).
    compression: Compression,
    /// What NOTIFY asked for (RFC 5465); `None` before NOTIFY SET and after NOTIFY NONE.
    notify: Option<Box<notify::NotifyState>>,
    /// The command running adds messages itself (APPEND, COPY, MOVE, REPLACE): RFC 5465 §5.2
    /// wants no MessageNew FETCH for them.
    own_arrivals: bool,
}

/// The connection's compression layer (RFC 4978).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    /// Nothing compresses.
    Off,
    /// COMPRESS DEFLATE was answered OK.
    Deflate,
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
            last_command: None,
            compression: Compression::Off,
            notify: None,
            own_arrivals: false,
        }
    }

    /// The name of the command the last [`Session::handle`] ran (`"FETCH"`,
    /// `"UID FETCH"`, ...), `None` when it did not parse: for per-command metrics.
    pub fn last_command_name(&self) -> Option<&'static str> {
        self.last_command
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
            Offer::of(self.channel_binding.as_ref(), &self.ctx.auth),
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

    /// The selected mailbox's name as the user sees it (`Shared/support/INBOX` for a team's),
    /// `None` when none is selected (for the server's list of sessions, `postfach who`).
    pub fn selected_name(&self) -> Option<&str> {
        match &self.state {
            State::Selected(_, sel) => Some(&sel.name),
            _ => None,
        }
    }

    /// The connection this session runs on: the client's address, and whether it is encrypted
    /// (it changes with STARTTLS).
    pub fn connection(&self) -> &ConnInfo {
        &self.conn
    }

    /// The change signal of the selected mailbox, if any (for IDLE).
    pub fn change_watch(&self) -> Option<watch::Receiver<ModSeq>> {
        match &self.state {
            State::Selected(_, sel) => Some(sel.watch()),
            _ => None,
        }
    }

    /// The NOTIFY listener, while NOTIFY is on (RFC 5465): when it wakes, and between commands
    /// when it has something, the driver calls [`Session::notify_update`].
    pub fn notify_listener(&self) -> Option<postfach_store::Listener> {
        self.notify.as_ref().map(|n| n.listener().clone())
    }

    /// The selected mailbox's change signal while NOTIFY asks for its events as they happen
    /// (SELECTED or SELECTED-DELAYED, RFC 5465 §6.1): the driver calls
    /// [`Session::notify_update`] when it fires between commands.
    pub fn notify_selected_watch(&self) -> Option<watch::Receiver<ModSeq>> {
        self.notify.as_ref().and_then(|n| n.selected())?;
        self.change_watch()
    }

    /// Between commands, with NOTIFY on: the selected mailbox's events (SELECTED-DELAYED keeps
    /// expunges for a command that may carry them, RFC 5465 §6.1.2) and what the listener
    /// collected. [`Outcome::Close`] when the user lost the right to read the selected mailbox.
    pub async fn notify_update(&mut self, out: &mut Out) -> Outcome {
        out.begin(self.enabled.write_options());
        if let Some(spec) = self.notify.as_ref().and_then(|n| n.selected()) {
            let expunges = spec.expunges;
            if self.sync(out, expunges, Poll::IfSignalled).await == Outcome::Close {
                return Outcome::Close;
            }
        }
        self.notify_report(out).await;
        Outcome::Continue
    }

    /// Sends what the NOTIFY listener collected (RFC 5465 §5).
    async fn notify_report(&mut self, out: &mut Out) {
        let (user, sel) = match &self.state {
            State::Authenticated(user) => (user, None),
            State::Selected(user, sel) => (user, Some(&**sel)),
            _ => return,
        };
        let Some(tag) = self.notify.as_ref().map(|n| n.tag().clone()) else { return };
        let cx = Cx { ctx: &self.ctx, user, enabled: &self.enabled, need: Rights::NONE, tag: &tag };
        notify::report(&cx, sel, &mut self.notify, out).await;
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
            Some(tag) => out.tagged(&tag, Completion::Bad, Some(&Code::Limit), message),
            None => out.status(Status::Bad, None, message),
        }
    }

    /// Answers a command the driver refused for lack of server resources (the literal memory
    /// budget): `tag NO [LIMIT] message` (RFC 5530: a retry later may work).
    pub fn refused(&mut self, tag: Option<&[u8]>, message: &str, out: &mut Out) {
        out.begin(self.enabled.write_options());
        match tag.and_then(|t| Tag::from_bytes(t).ok()) {
            Some(tag) => out.tagged(&tag, Completion::No, Some(&Code::Limit), message),
            None => out.status(Status::No, Some(Code::Limit), message),
        }
    }

    /// Handles one complete command as framed by `postfach_proto::framing` (literals inline).
    ///
    /// The gate: parse, look the command up in `rule`, refuse it here if the state does not
    /// allow it, turn CONDSTORE on if it says so, send the updates it allows before and after
    /// the handler, and write the tagged completion last.
    pub async fn handle(&mut self, command: Vec<u8>, out: &mut Out) -> Outcome {
        out.begin(self.enabled.write_options());
        self.last_command = None;
        // Shared, not copied: APPEND's messages are slices of this buffer (issue 17).
        let command = bytes::Bytes::from(command);
        let Command { tag, body } = match parse_command_bytes(&command) {
            Ok(c) => c,
            Err(e) => {
                let text = format!("Syntax error: {e}");
                match &e.tag {
                    Some(tag) => out.tagged(tag, Completion::Bad, Some(&Code::Parse), &text),
                    None => out.status(Status::Bad, Some(Code::Parse), &text),
                }
                return Outcome::Continue;
            }
        };
        // Free the framed bytes now unless the parsed command holds on to them (APPEND's
        // messages are slices of this one buffer, which goes to the store as it is).
        drop(command);
        let name = body.name();
        self.last_command = Some(name);
        let rule = rule(&body);
        tracing::debug!(command = name, rights = ?rule.rights, "command");
        // Issue 5: a session whose app password was revoked ends at its next command.
        if self.check_credential(out).await == Outcome::Close {
            return Outcome::Close;
        }
        if let Some((text, outcome)) = refusal(&self.state, rule.states, &body) {
            out.tagged(&tag, Completion::Bad, None, text);
            return outcome;
        }
        // RFC 9586 §3: once UIDONLY is on, a command with message numbers is BAD [UIDREQUIRED].
        if self.enabled.uidonly && uses_message_numbers(&body) {
            out.tagged(
                &tag,
                Completion::Bad,
                Some(&Code::UidRequired),
                "Message numbers are off (UIDONLY): use UIDs",
            );
            return Outcome::Continue;
        }
        if rule.condstore && !self.enabled.condstore && self.is_authenticated() {
            self.enabled.condstore = true;
            // RFC 7162 §3.1: the first CONDSTORE-enabling command reports the selected mailbox's
            // HIGHESTMODSEQ.
            if let State::Selected(_, sel) = &self.state {
                cmd::any::condstore_enabled(sel.known_modseq().0, out);
            }
        }
        if let Some(poll) = rule.before
            && self.sync(out, rule.expunges, poll).await == Outcome::Close
        {
            return Outcome::Close;
        }
        // RFC 4314 §4: the rights the command needs on the selected mailbox.
        if let State::Selected(_, sel) = &self.state
            && let Err(reply) = access::check(sel.rights, rule.in_selected)
        {
            complete(out, &tag, name, Err(reply));
            return Outcome::Continue;
        }
        self.own_arrivals = matches!(
            body,
            CommandBody::Append { .. }
                | CommandBody::Copy { .. }
                | CommandBody::Move { .. }
                | CommandBody::Replace { .. }
        );
        let (answer, mut outcome) = self.dispatch(tag.clone(), body, rule.rights, out).await;
        // Untagged updates first: nothing may follow the tagged response (RFC 9051 §7.5.1).
        if let Some(poll) = rule.after
            && self.sync(out, rule.expunges, poll).await == Outcome::Close
        {
            outcome = Outcome::Close;
        }
        self.own_arrivals = false;
        // RFC 5465 §3.1: notifications about other mailboxes go out with a command's updates.
        if outcome == Outcome::Continue && answer.is_some() && self.notify.is_some() {
            self.notify_report(out).await;
        }
        if let Some(result) = answer {
            complete(out, &tag, name, result);
        }
        outcome
    }

    /// Runs a command the gate let through. Returns the result to complete it with, or `None`
    /// when the command's answer is already arranged (a login step, IDLE, STARTTLS).
    async fn dispatch(
        &mut self,
        tag: Tag,
        body: CommandBody,
        need: Rights,
        out: &mut Out,
    ) -> (Option<Result<Done, Reply>>, Outcome) {
        // Commands valid in every state (RFC 9051 §6.1), and ENABLE, which changes the session.
        let result = match &body {
            CommandBody::Capability => {
                let phase = if self.is_authenticated() { Phase::LoggedIn } else { Phase::PreAuth };
                let mut caps = capability::list(
                    &self.ctx.config,
                    self.conn.transport,
                    phase,
                    Offer::of(self.channel_binding.as_ref(), &self.ctx.auth),
                );
                if self.compression != Compression::Off {
                    // After UNAUTHENTICATE on a compressed cleartext connection: TLS would
                    // have to go under the compression layer (RFC 4978 §3), which is not done.
                    caps.retain(|c| c != "STARTTLS");
                }
                Some(cmd::any::capability(caps, out))
            }
            CommandBody::Noop => Some(cmd::any::noop()),
            CommandBody::Logout => {
                self.state = State::Logout;
                // The account's place goes now, not when the connection is torn down: a client
                // that reconnects on the tagged OK finds it free (imaptest's 50 clients on one
                // account under a limit of 50 did not).
                self.admitted = None;
                return (Some(cmd::any::logout(out)), Outcome::Close);
            }
            CommandBody::Id(_) => Some(cmd::any::id(out)),
            CommandBody::Enable(names) => {
                let result = cmd::any::enable(&mut self.enabled, names, out);
                // RFC 9586 §3: no message numbers from now on, also not in the updates of a
                // search that asked for them before (they end here).
                if self.enabled.uidonly
                    && let State::Selected(_, sel) = &mut self.state
                {
                    sel.contexts.forget_numbered();
                }
                Some(result)
            }
            _ => None,
        };
        if let Some(result) = result {
            return (Some(result), Outcome::Continue);
        }
        if let CommandBody::Unauthenticate = body {
            // RFC 8437 §3: as if the connection were new, but for TLS: the login, its place
            // among the account's connections, the selected mailbox and everything ENABLEd go.
            // (The gate let it through logged in only.)
            if let Some(old) = self.notify.take() {
                self.ctx.store.notifier().unregister(old.listener());
            }
            self.state = State::NotAuthenticated { failures: 0 };
            self.enabled = Enabled::default();
            self.admitted = None;
            self.auth_generation = 0;
            return (Some(Ok(Done::new())), Outcome::Continue);
        }
        match std::mem::replace(&mut self.state, State::Logout) {
            State::NotAuthenticated { failures } => {
                (None, self.not_authenticated(failures, tag, body, out).await)
            }
            State::Authenticated(user) => self.logged_in(user, None, tag, body, need, out).await,
            State::Selected(user, sel) => self.logged_in(user, Some(sel), tag, body, need, out).await,
            // Not reached: the gate refused everything but the commands above.
            State::Logout => (Some(Err(Reply::bad(None, "Logging out"))), Outcome::Close),
        }
    }

    /// STARTTLS, LOGIN, AUTHENTICATE (RFC 9051 §6.2).
    async fn not_authenticated(
        &mut self,
        failures: u32,
        tag: Tag,
        body: CommandBody,
        out: &mut Out,
    ) -> Outcome {
        let cx = LoginCx {
            ctx: &self.ctx,
            conn: &self.conn,
            channel_binding: self.channel_binding.as_ref(),
            admission: self.admission.as_ref(),
        };
        let login = match body {
            CommandBody::StartTls => {
                let allowed = match self.compression {
                    Compression::Off => cmd::login::starttls(&cx),
                    Compression::Deflate => Err(Reply::bad(None, "STARTTLS is not available under COMPRESS")),
                };
                let outcome = match allowed {
                    Ok(()) => {
                        out.tagged(&tag, Completion::Ok, None, "Begin TLS negotiation now");
                        Outcome::StartTls
                    }
                    Err(reply) => {
                        complete(out, &tag, "STARTTLS", Err(reply));
                        Outcome::Continue
                    }
                };
                self.state = State::NotAuthenticated { failures };
                return outcome;
            }
            CommandBody::Login { username, password } => {
                let user = String::from_utf8_lossy(&username).into_owned();
                cmd::login::login(&cx, &user, password, Mechanism::LoginCommand).await
            }
            CommandBody::Authenticate { mechanism, initial_response } => {
                cmd::login::authenticate(&cx, &mechanism, initial_response, out).await
            }
            // Not reached: the gate refused every other command in this state.
            _ => Login::Refused(Reply::bad(None, "Log in first"), Failure::Uncounted),
        };
        self.finish_login(tag, failures, login, out)
    }

    /// Answers the end of a login step and moves the session on.
    fn finish_login(&mut self, tag: Tag, failures: u32, login: Login, out: &mut Out) -> Outcome {
        match login {
            Login::Challenge(mech, step) => {
                self.pending_auth = Some(Box::new(PendingAuth { tag, mech, step }));
                self.state = State::NotAuthenticated { failures };
                Outcome::AuthContinue
            }
            Login::LoggedIn(principal, admitted) => {
                if admitted.is_some() {
                    self.admitted = admitted;
                }
                self.auth_generation = self.ctx.auth.generation();
                let caps = capability::list(
                    &self.ctx.config,
                    self.conn.transport,
                    Phase::LoggedIn,
                    Offer::default(),
                );
                out.tagged(&tag, Completion::Ok, Some(&Code::Capability(caps)), "Logged in");
                self.state = State::Authenticated(principal);
                Outcome::Continue
            }
            Login::Refused(reply, failure) => {
                complete(out, &tag, "LOGIN", Err(reply));
                let failures = match failure {
                    Failure::Uncounted => failures,
                    Failure::Counted => failures.saturating_add(1),
                    Failure::Fatal => MAX_AUTH_FAILURES,
                };
                if failures >= MAX_AUTH_FAILURES {
                    out.bye("Too many failed logins");
                    self.state = State::Logout;
                    return Outcome::Close;
                }
                self.state = State::NotAuthenticated { failures };
                Outcome::Continue
            }
        }
    }

    /// A command of the authenticated or selected state; `selected` is the selected mailbox.
    async fn logged_in(
        &mut self,
        user: Principal,
        mut selected: Option<Box<Selected>>,
        tag: Tag,
        body: CommandBody,
        need: Rights,
        out: &mut Out,
    ) -> (Option<Result<Done, Reply>>, Outcome) {
        let cx = Cx { ctx: &self.ctx, user: &user, enabled: &self.enabled, need, tag: &tag };
        let leaves = matches!(body, CommandBody::Close | CommandBody::Unselect);
        let lists = matches!(
            body,
            CommandBody::Create { .. }
                | CommandBody::Delete(_)
                | CommandBody::Rename { .. }
                | CommandBody::Subscribe(_)
                | CommandBody::Unsubscribe(_)
        );
        let own_metadata = match &body {
            CommandBody::SetMetadata { mailbox, entries } => {
                Some((mailbox.clone(), entries.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>()))
            }
            _ => None,
        };
        let result = match body {
            CommandBody::Notify(arg) => {
                let limit = self.ctx.config.notify_max_pending;
                notify::command(&cx, selected.as_deref(), &mut self.notify, arg, limit, out).await
            }
            CommandBody::Select { mailbox, params } => {
                cmd::select::select(&cx, &mut selected, &mailbox, &params, Access::ReadWrite, out).await
            }
            CommandBody::Examine { mailbox, params } => {
                cmd::select::select(&cx, &mut selected, &mailbox, &params, Access::ReadOnly, out).await
            }
            CommandBody::Compress(CompressionAlgorithm::Deflate) => {
                self.state = restore(user, selected);
                return match self.compression {
                    // RFC 4978 §3: NO with COMPRESSIONACTIVE, saying which layer compresses.
                    Compression::Deflate => (
                        Some(Err(Reply::no(Some(Code::CompressionActive), "DEFLATE is active already"))),
                        Outcome::Continue,
                    ),
                    Compression::Off => {
                        // The OK goes out uncompressed; compression starts right after its CRLF.
                        self.compression = Compression::Deflate;
                        out.tagged(&tag, Completion::Ok, None, "DEFLATE active");
                        (None, Outcome::Compress)
                    }
                };
            }
            CommandBody::Idle => {
                cmd::idle::start(out);
                self.idle_tag = Some(tag);
                self.state = restore(user, selected);
                // The tagged completion follows DONE (`idle_line`).
                return (None, Outcome::Idle);
            }
            body => run(&cx, selected.as_deref_mut(), &tag, body, out).await,
        };
        if lists && result.is_ok() {
            notify::own_list_change(&cx, &mut self.notify).await;
        }
        if let (Some((mailbox, entries)), true) = (own_metadata, result.is_ok()) {
            notify::own_metadata_change(&cx, &self.notify, &mailbox, &entries);
        }
        if leaves {
            selected = None;
        }
        self.state = restore(user, selected);
        (Some(result), Outcome::Continue)
    }

    /// The next line of an AUTHENTICATE exchange (RFC 9051 §6.2.2): base64 that may carry a
    /// password, so the driver wraps it in a [`Secret`] as it reads it.
    pub async fn auth_line(&mut self, line: Secret, out: &mut Out) -> Outcome {
        out.begin(self.enabled.write_options());
        let Some(PendingAuth { tag, mech, step }) = self.pending_auth.take().map(|p| *p) else {
            out.status(Status::Bad, None, "No authentication in progress");
            return Outcome::Continue;
        };
        let failures = match self.state {
            State::NotAuthenticated { failures } => failures,
            _ => 0,
        };
        // RFC 9051 §6.2.2: "*" cancels the exchange, answered with BAD.
        if line.expose_secret() == b"*" {
            out.tagged(&tag, Completion::Bad, None, "Authentication cancelled");
            return Outcome::Continue;
        }
        let cx = LoginCx {
            ctx: &self.ctx,
            conn: &self.conn,
            channel_binding: self.channel_binding.as_ref(),
            admission: self.admission.as_ref(),
        };
        let login = cmd::login::sasl_step(&cx, mech, step, &line, out).await;
        self.finish_login(tag, failures, login, out)
    }

    /// During IDLE: report what changed in the selected mailbox. [`Outcome::Close`] when the
    /// user lost the right to read it (`* BYE` written).
    pub async fn idle_update(&mut self, out: &mut Out) -> Outcome {
        out.begin(self.enabled.write_options());
        // RFC 5465 §4: during IDLE exactly the events NOTIFY asked for; without SELECTED none
        // of the selected mailbox's.
        if let Some(n) = &self.notify
            && n.selected().is_none()
        {
            return Outcome::Continue;
        }
        self.sync(out, Expunges::Allowed, Poll::Always).await
    }

    /// During IDLE with NOTIFY on: what the listener collected (RFC 5465 §4).
    pub async fn idle_notify(&mut self, out: &mut Out) {
        out.begin(self.enabled.write_options());
        self.notify_report(out).await;
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
        match cmd::idle::line(&line) {
            Ok(_) => {
                if self.sync(out, Expunges::Allowed, Poll::IfSignalled).await == Outcome::Close {
                    return Outcome::Close;
                }
                out.tagged(&tag, Completion::Ok, None, "IDLE terminated");
            }
            Err(reply) => complete(out, &tag, "IDLE", Err(reply)),
        }
        Outcome::Continue
    }

    /// Untagged updates for the selected mailbox, if any. When an ACL changed since the
    /// mailbox was selected (another user's or a team's), its rights are read again first: a
    /// user who lost `l` or `r` gets `* BYE` and the connection closes (never stale data);
    /// other losses take effect at once ([`Outcome::Close`] or [`Outcome::Continue`]).
    async fn sync(&mut self, out: &mut Out, expunges: Expunges, poll: Poll) -> Outcome {
        let State::Selected(user, sel) = &mut self.state else { return Outcome::Continue };
        let generation = self.ctx.store.notifier().acl_generation();
        if sel.acl_generation != generation && sel.owner != user.account {
            match self.ctx.share.my_rights(sel.id, user.account).await {
                Ok(rights) => {
                    sel.acl_generation = generation;
                    sel.rights = rights;
                }
                Err(postfach_store::StoreError::NotFound) => sel.rights = Rights::NONE,
                Err(e) => tracing::warn!(error = %e, "cannot re-read rights"),
            }
            if !sel.rights.contains(Right::Lookup) || !sel.rights.contains(Right::Read) {
                tracing::info!(account = %user.name, mailbox = %sel.name, "selected mailbox no longer readable");
                out.bye("Your access to the selected mailbox was withdrawn");
                self.state = State::Logout;
                return Outcome::Close;
            }
        }
        let before = sel.exists();
        if let Err(e) =
            sel.sync(&*self.ctx.store, &*self.ctx.share, out, expunges, poll, self.enabled.style()).await
        {
            tracing::warn!(error = %e, mailbox = %sel.name, "sync failed");
        }
        // RFC 5465 §5.2: after EXISTS (and the ESEARCH ADDTO of updating searches), the FETCH
        // NOTIFY asked for, combined with what `SEARCH/SORT RETURN (UPDATE (...))` asked for the
        // new messages that joined their results (§7); not for the session's own.
        let after = sel.exists();
        let from_searches = sel.contexts.take_new_fetches();
        let from_notify = self.notify.as_ref().and_then(|n| Some((n.tag(), n.selected()?.fetch.as_deref()?)));
        if after > before && !self.own_arrivals && (from_notify.is_some() || from_searches.is_some()) {
            let tag = match (&from_notify, &from_searches) {
                (Some((tag, _)), _) => *tag,
                (None, Some((tag, _))) => tag,
                (None, None) => return Outcome::Continue,
            };
            let cx = Cx { ctx: &self.ctx, user, enabled: &self.enabled, need: Rights::NONE, tag };
            let all = from_notify.map(|(_, atts)| atts);
            let some = from_searches.as_ref().map_or(&[][..], |(_, list)| list.as_slice());
            notify::new_messages(&cx, sel, all, some, before + 1, after, out).await;
        }
        Outcome::Continue
    }
}

impl Drop for Session {
    /// The NOTIFY listener leaves the notifier's index with the session.
    fn drop(&mut self) {
        if let Some(old) = self.notify.take() {
            self.ctx.store.notifier().unregister(old.listener());
        }
    }
}

/// The logged-in state a session is in after a command.
fn restore(user: Principal, selected: Option<Box<Selected>>) -> State {
    match selected {
        Some(sel) => State::Selected(user, sel),
        None => State::Authenticated(user),
    }
}

/// Writes the tagged completion: `tag OK [code] NAME completed`, or the failure's answer.
fn complete(out: &mut Out, tag: &Tag, name: &str, result: Result<Done, Reply>) {
    match result {
        Ok(done) => out.tagged(tag, Completion::Ok, done.code.as_ref(), &format!("{name} completed")),
        Err(reply) => out.tagged(tag, reply.status, reply.code.as_ref(), &reply.text),
    }
}

/// Runs a mailbox or message command: authenticated-state commands with or without a
/// selected mailbox, selected-state commands with it.
async fn run(
    cx: &Cx<'_>,
    selected: Option<&mut Selected>,
    tag: &Tag,
    body: CommandBody,
    out: &mut Out,
) -> Result<Done, Reply> {
    use CommandBody as C;
    match (selected, body) {
        // --- authenticated state, also valid when selected (RFC 9051 §6.3) ---
        (_, C::Create { mailbox, special_use }) => cmd::mailbox::create(cx, &mailbox, &special_use).await,
        (sel, C::Delete(mailbox)) => cmd::mailbox::delete(cx, sel.as_deref(), &mailbox).await,
        (_, C::Rename { from, to }) => cmd::mailbox::rename(cx, &from, &to).await,
        (_, C::Subscribe(mailbox)) => cmd::mailbox::subscribe(cx, &mailbox, true).await,
        (_, C::Unsubscribe(mailbox)) => cmd::mailbox::subscribe(cx, &mailbox, false).await,
        (_, C::List(list)) => cmd::list::list(cx, &list, out).await,
        (_, C::Lsub { reference, pattern }) => cmd::list::lsub(cx, &reference, &pattern, out).await,
        (_, C::Namespace) => cmd::mailbox::namespace(out),
        (_, C::SetAcl { mailbox, identifier, rights }) => {
            cmd::acl::setacl(cx, &mailbox, &identifier, &rights).await
        }
        (_, C::DeleteAcl { mailbox, identifier }) => cmd::acl::deleteacl(cx, &mailbox, &identifier).await,
        (_, C::GetAcl(mailbox)) => cmd::acl::getacl(cx, &mailbox, out).await,
        (_, C::ListRights { mailbox, identifier }) => {
            cmd::acl::listrights(cx, &mailbox, &identifier, out).await
        }
        (_, C::MyRights(mailbox)) => cmd::acl::myrights(cx, &mailbox, out).await,
        (_, C::GetQuota(root)) => cmd::quota::getquota(cx, &root, out).await,
        (_, C::GetQuotaRoot(mailbox)) => cmd::quota::getquotaroot(cx, &mailbox, out).await,
        (_, C::SetQuota { root, limits }) => cmd::quota::setquota(cx, &root, &limits, out).await,
        (_, C::Status { mailbox, items }) => cmd::mailbox::status(cx, &mailbox, &items, out).await,
        (sel, C::ESearch { sources, return_opts, charset, criteria }) => {
            let (return_opts, charset) = (return_opts.as_deref(), charset.as_deref());
            cmd::multisearch::esearch(cx, sel, tag, &sources, return_opts, charset, &criteria, out).await
        }
        (_, C::GetMetadata { mailbox, max_size, depth, entries }) => {
            cmd::metadata::getmetadata(cx, &mailbox, max_size, depth, &entries, out).await
        }
        (_, C::SetMetadata { mailbox, entries }) => cmd::metadata::setmetadata(cx, &mailbox, &entries).await,
        (sel, C::Append { mailbox, messages }) => {
            cmd::mailbox::append(cx, sel, &mailbox, messages, out).await
        }
        (_, C::GenUrlAuth(pairs)) => cmd::urlauth::genurlauth(cx, &pairs, out).await,
        (_, C::ResetKey { mailbox, mechanisms }) => {
            cmd::urlauth::resetkey(cx, mailbox.as_ref(), &mechanisms).await
        }
        (_, C::UrlFetch(urls)) => cmd::urlauth::urlfetch(cx, &urls, out).await,

        // --- selected state (RFC 9051 §6.4) ---
        (Some(_), C::Check) => Ok(Done::new()),
        (Some(sel), C::Close) => cmd::select::close(cx, sel).await,
        (Some(_), C::Unselect) => cmd::select::unselect(),
        (Some(sel), C::Expunge { uids }) => cmd::expunge::expunge(cx, sel, uids.as_ref(), out).await,
        (Some(sel), C::Search { kind, charset, return_opts, update_fetch, criteria }) => {
            let (charset, return_opts) = (charset.as_deref(), return_opts.as_deref());
            cmd::search::search(cx, sel, tag, kind, charset, return_opts, update_fetch, criteria, out).await
        }
        (Some(sel), C::Fetch { kind, set, items, modifiers }) => {
            cmd::fetch::fetch(cx, sel, kind, &set, &items, &modifiers, out).await
        }
        (Some(sel), C::Store { kind, set, action, unchanged_since }) => {
            cmd::store::store_flags(cx, sel, kind, &set, &action, unchanged_since, out).await
        }
        (Some(sel), C::Copy { kind, set, mailbox }) => {
            cmd::copy::copy(cx, sel, kind, &set, &mailbox, Transfer::Copy, out).await
        }
        (Some(sel), C::Replace { kind, target, mailbox, message }) => {
            cmd::mailbox::replace(cx, sel, kind, target, &mailbox, message, out).await
        }
        (Some(sel), C::Move { kind, set, mailbox }) => {
            cmd::copy::copy(cx, sel, kind, &set, &mailbox, Transfer::Move, out).await
        }
        (Some(sel), C::Sort { kind, return_opts, update_fetch, criteria, charset, search }) => {
            let return_opts = return_opts.as_deref();
            cmd::sort::sort(cx, sel, tag, kind, return_opts, update_fetch, &criteria, &charset, &search, out)
                .await
        }
        (Some(sel), C::CancelUpdate(tags)) => cmd::search::cancel_update(sel, &tags),
        (Some(sel), C::UidBatches { size, range }) => cmd::uidbatches::uidbatches(sel, tag, size, range, out),
        (Some(sel), C::Thread { kind, algorithm, charset, search }) => {
            cmd::sort::thread(cx, sel, kind, algorithm, &charset, &search, out).await
        }
        // Not reached: the gate refused it (`rule`); kept so this match stays total.
        (_, body) => Err(Reply::bad(None, format!("{} is not valid in this state", body.name()))),
    }
}

// ------------------------------------------------------------------------------------------------
// The gate's table

/// Where a command is legal (RFC 9051 §3, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum States {
    /// Every state (RFC 9051 §6.1: CAPABILITY, NOOP, LOGOUT; ID, RFC 2971 §3.1).
    Any,
    /// Only before login (RFC 9051 §6.2).
    NotAuthenticated,
    /// Logged in, selected or not (RFC 9051 §6.3; RFC 5161 §3.1 for ENABLE).
    LoggedIn,
    /// Only with a mailbox selected (RFC 9051 §6.4).
    Selected,
}

/// What the gate needs to know about one command (after Dovecot's command table with flags,
/// `src/imap/imap-commands.c`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    /// Where the command is legal.
    pub(crate) states: States,
    /// Whether untagged EXPUNGE may be sent while answering it (RFC 9051 §7.5.1).
    pub(crate) expunges: Expunges,
    /// Updates of the selected mailbox sent before the handler runs.
    pub(crate) before: Option<Poll>,
    /// Updates of the selected mailbox sent after the handler, before the tagged completion.
    pub(crate) after: Option<Poll>,
    /// The command turns CONDSTORE on (RFC 7162 §3.1).
    pub(crate) condstore: bool,
    /// The ACL rights it needs on the mailbox it names (RFC 4314 §4): the handler checks them
    /// where it resolves the name ([`Cx::need`]). For COPY and MOVE, the target's.
    pub(crate) rights: Rights,
    /// The rights it needs on the selected mailbox, checked here before the handler runs
    /// (`r` is implied by the selection, RFC 4314 §4). Rights a command only uses when it has
    /// them (FETCH's implicit `\Seen`, CLOSE's expunge, STORE's flags) are the handler's.
    pub(crate) in_selected: Rights,
}

/// The gate's table: one entry per command.
pub(crate) fn rule(body: &CommandBody) -> Rule {
    use CommandBody as C;
    use Right::*;
    let rights = |list: &[Right]| list.iter().fold(Rights::NONE, |set, r| set.and(*r));
    // RFC 9051 §7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH by sequence number
    // (UID variants are fine); RFC 5256 §3: likewise during SORT and THREAD.
    let by_number = |kind: &CommandKind| match kind {
        CommandKind::Seq => Expunges::Deferred,
        CommandKind::Uid => Expunges::Allowed,
    };
    // Most commands: logged in, updates after if the mailbox signalled a change.
    let base = Rule {
        states: States::LoggedIn,
        expunges: Expunges::Allowed,
        before: None,
        after: Some(Poll::IfSignalled),
        condstore: false,
        rights: Rights::NONE,
        in_selected: Rights::NONE,
    };
    let selected = Rule { states: States::Selected, ..base };
    match body {
        C::Capability | C::Id(_) | C::Logout => Rule { states: States::Any, after: None, ..base },
        // NOOP asks the store even unsignalled: another process (`deliver`) signals nothing here.
        C::Noop => Rule { states: States::Any, after: Some(Poll::Always), ..base },
        C::StartTls | C::Login { .. } | C::Authenticate { .. } => {
            Rule { states: States::NotAuthenticated, after: None, ..base }
        }
        C::Enable(_) => Rule { after: None, ..base },
        // RFC 2177: updates may flow from the start of IDLE.
        C::Idle => Rule { before: Some(Poll::Always), after: None, ..base },
        C::Select { params, .. } | C::Examine { params, .. } => {
            Rule { after: None, condstore: params.condstore, rights: rights(&[Read]), ..base }
        }
        C::Create { .. } => Rule { rights: rights(&[CreateMailbox]), ..base },
        C::Delete(_) => Rule { rights: rights(&[DeleteMailbox]), ..base },
        C::Rename { .. } => Rule { rights: rights(&[DeleteMailbox, CreateMailbox]), ..base },
        C::Subscribe(_) | C::Unsubscribe(_) | C::Namespace => base,
        C::List(_) | C::Lsub { .. } => Rule { rights: rights(&[Lookup]), ..base },
        C::Status { items, .. } => {
            Rule { condstore: items.contains(&StatusItem::HighestModSeq), rights: rights(&[Read]), ..base }
        }
        C::Append { .. } => Rule { rights: rights(&[Insert]), ..base },
        C::Check => Rule { after: Some(Poll::Always), ..selected },
        // RFC 4314 §4: without `e`, CLOSE closes without expunging and answers OK.
        C::Close => Rule { after: None, ..selected },
        C::Unselect => Rule { after: None, ..selected },
        C::Expunge { .. } => Rule { in_selected: rights(&[Expunge]), ..selected },
        // A search answers about the messages the client knows of: announce what arrived
        // since (EXISTS) first, also from other processes, so that a message delivered or
        // appended before the command is found by it.
        C::Search { kind, criteria, .. } => Rule {
            expunges: by_number(kind),
            before: Some(Poll::Always),
            condstore: criteria.iter().any(cmd::search::has_modseq),
            ..selected
        },
        C::Sort { kind, .. } | C::Thread { kind, .. } => {
            Rule { expunges: by_number(kind), before: Some(Poll::Always), ..selected }
        }
        C::Fetch { kind, items, modifiers, .. } => {
            let attrs = items.attributes();
            // RFC 4314 §4: without `s`, a FETCH that would set `\Seen` does not (the handler).
            Rule {
                expunges: by_number(kind),
                condstore: modifiers.changed_since.is_some() || attrs.contains(&FetchAttribute::ModSeq),
                ..selected
            }
        }
        // RFC 4314 §4: STORE changes the flags the user has rights for and fails only when
        // there is none (the handler); this is the most it may need.
        C::Store { kind, unchanged_since, .. } => {
            Rule { expunges: by_number(kind), condstore: unchanged_since.is_some(), ..selected }
        }
        C::Copy { .. } => Rule { rights: rights(&[Insert]), ..selected },
        // RFC 6851 §3.3 with RFC 4314: insert into the target; delete and expunge at the source.
        C::Move { .. } => {
            Rule { rights: rights(&[Insert]), in_selected: rights(&[DeleteMessages, Expunge]), ..selected }
        }
        // RFC 8508 §3.3: insert into the target; delete and expunge at the source.
        C::Replace { .. } => {
            Rule { rights: rights(&[Insert]), in_selected: rights(&[DeleteMessages, Expunge]), ..selected }
        }
        // RFC 8437: back to the not-authenticated state (the handler is the gate's own).
        C::Unauthenticate => Rule { after: None, ..base },
        // RFC 4978 §5: `command-auth`. Nothing untagged around it: the client waits for the
        // tagged answer, and what follows it is compressed.
        C::Compress(_) => Rule { after: None, ..base },
        // RFC 4314 §4: SETACL, DELETEACL, GETACL and LISTRIGHTS need `a` on the mailbox;
        // MYRIGHTS any right (a mailbox without `l` does not exist for the user).
        C::SetAcl { .. } | C::DeleteAcl { .. } | C::GetAcl(_) | C::ListRights { .. } => {
            Rule { rights: rights(&[Administer]), ..base }
        }
        C::MyRights(_) => base,
        // RFC 9208 §4.1: GETQUOTA, GETQUOTAROOT and SETQUOTA in the authenticated state; the
        // handlers decide who may read or set a root.
        C::GetQuota(_) | C::GetQuotaRoot(_) | C::SetQuota { .. } => base,
        // RFC 7377 §4: `command-auth` and `command-select` (the handler wants a selected
        // mailbox for `selected`); UIDs only, so expunges may be sent; the selected mailbox's
        // new messages are announced first, as for SEARCH.
        C::ESearch { criteria, .. } => Rule {
            before: Some(Poll::Always),
            condstore: criteria.iter().any(cmd::search::has_modseq),
            ..base
        },
        // RFC 5267 §5: `command-select`.
        C::CancelUpdate(_) => selected,
        // RFC 10022: selected state; UIDs only, so expunges may be sent. The batches are cut
        // from the messages the client knows of: announce what arrived first, as for SEARCH.
        C::UidBatches { .. } => Rule { before: Some(Poll::Always), ..selected },
        // RFC 5464 §4.2, §4.3: authenticated state; the rights (§3.3: `l` and any of `rswip`)
        // are the handlers', which also decide who writes server entries.
        C::GetMetadata { .. } | C::SetMetadata { .. } => base,
        // RFC 5465 §3.1: `command-auth`; a successful NOTIFY SET implies a NOOP.
        C::Notify(_) => Rule { after: Some(Poll::Always), ..base },
        // RFC 4467: rights are checked per URL (`r` on the mailbox a URL names).
        C::GenUrlAuth(_) | C::ResetKey { .. } | C::UrlFetch(_) => base,
        // A command the parser learnt and this table not yet (`CommandBody` is non-exhaustive):
        // it reaches no handler and is answered BAD.
        _ => Rule { after: None, ..base },
    }
}

/// True when a command names messages by their numbers (RFC 9586 §3: refused under UIDONLY):
/// the non-UID forms of the message commands, sequence sets in search criteria (`$` is the
/// saved UIDs), and QRESYNC's sequence match data.
fn uses_message_numbers(body: &CommandBody) -> bool {
    use postfach_proto::types::{SearchKey, SequenceSet};
    fn numbered(key: &SearchKey) -> bool {
        match key {
            SearchKey::SequenceSet(set) => !matches!(set, SequenceSet::Saved),
            SearchKey::Not(k) => numbered(k),
            SearchKey::Or(a, b) => numbered(a) || numbered(b),
            SearchKey::And(keys) => keys.iter().any(numbered),
            _ => false,
        }
    }
    use CommandBody as C;
    match body {
        C::Fetch { kind, .. } | C::Store { kind, .. } | C::Copy { kind, .. } | C::Move { kind, .. } => {
            *kind == CommandKind::Seq
        }
        C::Replace { kind, .. } => *kind == CommandKind::Seq,
        C::Search { kind, criteria, .. } => *kind == CommandKind::Seq || criteria.iter().any(numbered),
        C::Sort { kind, search, .. } | C::Thread { kind, search, .. } => {
            *kind == CommandKind::Seq || search.iter().any(numbered)
        }
        C::ESearch { criteria, .. } => criteria.iter().any(numbered),
        C::Select { params, .. } | C::Examine { params, .. } => {
            params.qresync.as_ref().is_some_and(|q| q.seq_match.is_some())
        }
        _ => false,
    }
}

/// Why the gate refuses a command in `state`, and what happens then; `None` when it is legal.
fn refusal(state: &State, states: States, body: &CommandBody) -> Option<(&'static str, Outcome)> {
    match (state, states) {
        (_, States::Any) => None,
        (State::Logout, _) => Some(("Logging out", Outcome::Close)),
        (State::NotAuthenticated { .. }, States::NotAuthenticated) => None,
        (State::NotAuthenticated { .. }, _) => match body {
            CommandBody::Enable(_) => Some(("ENABLE needs a logged-in session", Outcome::Continue)),
            _ => Some(("Log in first", Outcome::Continue)),
        },
        (State::Authenticated(_) | State::Selected(..), States::NotAuthenticated) => {
            Some(("Already logged in", Outcome::Continue))
        }
        (State::Authenticated(_), States::Selected) => Some(("No mailbox selected", Outcome::Continue)),
        (State::Authenticated(_) | State::Selected(..), States::LoggedIn | States::Selected) => None,
    }
}

#[cfg(test)]
mod tests {
    use postfach_proto::parse_command;

    use super::*;

    fn rule_of(line: &str) -> Rule {
        let command = parse_command(format!("a {line}").as_bytes()).expect("parses");
        rule(&command.body)
    }

    #[test]
    fn store_rules_sit_in_one_table_entry() {
        let r = rule_of("STORE 1 +FLAGS (\\Seen)");
        assert_eq!(r.states, States::Selected);
        assert_eq!(r.expunges, Expunges::Deferred);
        assert!(!r.condstore);
        let r = rule_of("UID STORE 1 (UNCHANGEDSINCE 5) FLAGS (\\Deleted)");
        assert_eq!(r.expunges, Expunges::Allowed);
        assert!(r.condstore);
        assert!(r.rights.is_empty() && r.in_selected.is_empty());
        assert_eq!(format!("{:?}", rule_of("MOVE 1 x").in_selected), "\"te\"");
    }

    #[test]
    fn message_numbers_under_uidonly() {
        let numbered = |line: &str| {
            uses_message_numbers(&parse_command(format!("a {line}").as_bytes()).expect("parses").body)
        };
        for line in [
            "FETCH 1 FLAGS",
            "STORE 1 +FLAGS (\\Seen)",
            "COPY 1 x",
            "MOVE 1:* x",
            "SEARCH ALL",
            "UID SEARCH 1:10",
            "UID SEARCH NOT (OR 1 UID 2)",
            "SORT (DATE) UTF-8 ALL",
            "UID THREAD REFERENCES UTF-8 1",
            "ESEARCH IN (personal) 1:100",
            "SELECT INBOX (QRESYNC (1 5 (1,3,6 1,3,6)))",
        ] {
            assert!(numbered(line), "{line}");
        }
        for line in [
            "UID FETCH 1 FLAGS",
            "UID SEARCH UID 1:10",
            "UID SEARCH $",
            "UID SORT (DATE) UTF-8 ALL",
            "EXPUNGE",
            "UID EXPUNGE 1",
            "ESEARCH IN (personal) ALL",
            "SELECT INBOX (QRESYNC (1 5 1:9))",
            "NOOP",
        ] {
            assert!(!numbered(line), "{line}");
        }
    }

    #[test]
    fn legality_and_refusals() {
        let not_auth = State::NotAuthenticated { failures: 0 };
        let body = |line: &str| parse_command(format!("a {line}").as_bytes()).expect("parses").body;
        let refused =
            |state: &State, line: &str| refusal(state, rule_of(line).states, &body(line)).map(|r| r.0);
        assert_eq!(refused(&not_auth, "FETCH 1 FLAGS"), Some("Log in first"));
        assert_eq!(refused(&not_auth, "ENABLE CONDSTORE"), Some("ENABLE needs a logged-in session"));
        assert_eq!(refused(&not_auth, "CAPABILITY"), None);
        assert_eq!(refused(&State::Logout, "NOOP"), None);
        assert_eq!(refused(&State::Logout, "SELECT INBOX"), Some("Logging out"));
        assert_eq!(rule_of("SELECT INBOX").rights, Rights::NONE.and(Right::Read));
        assert_eq!(rule_of("SEARCH MODSEQ 5").before, Some(Poll::Always));
        assert!(rule_of("SELECT INBOX (CONDSTORE)").condstore);
    }
}
