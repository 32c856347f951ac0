//! STARTTLS, LOGIN and AUTHENTICATE (RFC 9051 §6.2), with SASL-IR (RFC 4959).
//!
//! Handlers here never write the tagged completion or change the session's state: they return
//! a [`Login`] and the gate (`session.rs`) answers it. Login ends in one place, the gate's
//! `finish_login`; before a success is answered, the server's admission hook (the per-account
//! connection limit) takes the session's place here, and a refusal is `NO [LIMIT]`.

use std::sync::Arc;

use postfach_auth::admission::{Admission, Admitted};
use postfach_auth::scram::ChannelBinding;
use postfach_auth::{AuthError, Mechanism, Principal};
use postfach_proto::response::Code;
use postfach_secret::Secret;

use crate::capability;
use crate::respond::Reply;
use crate::sasl::{self, BearerOutcome, Mech, Offer, Step};
use crate::{ConnInfo, Out, ServerContext, Transport};

/// What a login handler may use.
pub(crate) struct LoginCx<'a> {
    /// The authenticator and the settings.
    pub(crate) ctx: &'a ServerContext,
    /// The client's address and whether the connection is encrypted.
    pub(crate) conn: &'a ConnInfo,
    /// The TLS channel binding (SCRAM-SHA-256-PLUS), once the connection has one.
    pub(crate) channel_binding: Option<&'a ChannelBinding>,
    /// Asked before a login is answered OK (`None`: every login is admitted).
    pub(crate) admission: Option<&'a Arc<dyn Admission>>,
}

/// How a login step ended.
pub(crate) enum Login {
    /// A `+` challenge went out; the exchange waits for the client's next line.
    Challenge(Mech, Step),
    /// The credentials passed and the admission hook let the session in.
    LoggedIn(Principal, Option<Admitted>),
    /// Not logged in: the tagged answer, and what the failure means for the connection.
    Refused(Reply, Failure),
}

/// What a refused login means for the connection (RFC 9051 §6.2.3 lets the server close it
/// after failed attempts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Not an attempt at credentials (cleartext refused, a malformed exchange, a limit).
    Uncounted,
    /// A failed attempt: counts toward the connection's limit.
    Counted,
    /// The client's address is blocked: say BYE and close.
    Fatal,
}

impl Login {
    fn refused(reply: Reply) -> Login {
        Login::Refused(reply, Failure::Uncounted)
    }
}

/// STARTTLS (RFC 9051 §6.2.1): `Ok` when the driver may start the handshake.
pub(crate) fn starttls(cx: &LoginCx<'_>) -> Result<(), Reply> {
    if cx.conn.transport == Transport::Tls {
        return Err(Reply::bad(None, "TLS is already active"));
    }
    if !cx.ctx.config.starttls_available {
        return Err(Reply::bad(None, "STARTTLS is not available"));
    }
    Ok(())
}

/// LOGIN (RFC 9051 §6.2.3), and the end of the SASL mechanisms that carry a password.
pub(crate) async fn login(cx: &LoginCx<'_>, user: &str, password: Secret, mechanism: Mechanism) -> Login {
    if !capability::auth_allowed(&cx.ctx.config, cx.conn.transport) {
        // RFC 9051 §6.2.3: no cleartext passwords.
        return Login::refused(privacy_required());
    }
    let result = cx.ctx.auth.login(cx.conn.peer.ip(), mechanism, user, password).await;
    auth_result(cx, result)
}

fn privacy_required() -> Reply {
    Reply::no(Some(Code::PrivacyRequired), "Use TLS (STARTTLS or port 993) before logging in")
}

/// AUTHENTICATE (RFC 9051 §6.2.2): picks the mechanism and runs its first step, with the
/// SASL-IR initial response (RFC 4959) when the client sent one.
pub(crate) async fn authenticate(
    cx: &LoginCx<'_>,
    mechanism: &str,
    initial: Option<Secret>,
    out: &mut Out,
) -> Login {
    if !capability::auth_allowed(&cx.ctx.config, cx.conn.transport) {
        // RFC 9051 §6.2.3 (and §11.1): no credentials over cleartext.
        return Login::refused(privacy_required());
    }
    let Some(mech) = Mech::parse(mechanism, Offer::of(cx.channel_binding, &cx.ctx.auth)) else {
        // RFC 9051 §6.2.2: an unsupported mechanism SHOULD get a tagged NO.
        return Login::refused(Reply::no(Some(Code::CannotDo), "Unsupported authentication mechanism"));
    };
    let (step, first_challenge) = mech.start();
    match initial {
        Some(line) => sasl_step(cx, mech, step, &line, out).await,
        None => challenge(mech, step, first_challenge, out),
    }
}

/// Sends a `+ base64` challenge and waits for the client's next line.
fn challenge(mech: Mech, step: Step, challenge: &[u8], out: &mut Out) -> Login {
    out.continuation(&sasl::challenge(challenge));
    Login::Challenge(mech, step)
}

/// One client response of an AUTHENTICATE exchange (base64, RFC 9051 §6.2.2). It may carry a
/// password, so it is a [`Secret`], and so is what it decodes to.
pub(crate) async fn sasl_step(
    cx: &LoginCx<'_>,
    mech: Mech,
    step: Step,
    line: &Secret,
    out: &mut Out,
) -> Login {
    let Some(data) = sasl::decode(line.expose_secret()) else {
        // RFC 9051 §6.2.2: invalid base64 MUST be rejected with BAD.
        return Login::refused(Reply::bad(None, "Invalid base64 in authentication data"));
    };
    let peer = cx.conn.peer.ip();
    match step {
        Step::Plain => authenticate_plain(cx, mech, &data).await,
        Step::LoginUser => {
            let user = String::from_utf8_lossy(data.expose_secret()).into_owned();
            challenge(mech, Step::LoginPassword(user), sasl::password_prompt(), out)
        }
        Step::LoginPassword(user) => login(cx, &user, data, mech.mechanism()).await,
        Step::ScramFirst(variant) => {
            match cx.ctx.auth.scram_start(peer, variant, data.expose_secret(), cx.channel_binding).await {
                Ok(exchange) => {
                    let first = exchange.server_first().as_bytes().to_vec();
                    challenge(mech, Step::ScramFinal(Box::new(exchange)), &first, out)
                }
                Err(e) => auth_result(cx, Err(e)),
            }
        }
        Step::ScramFinal(exchange) => match cx.ctx.auth.scram_finish(*exchange, data.expose_secret()).await {
            Ok((principal, server_final)) => {
                challenge(mech, Step::ScramAcknowledge(principal), server_final.as_bytes(), out)
            }
            Err(e) => auth_result(cx, Err(e)),
        },
        Step::ScramAcknowledge(principal) => {
            if data.is_empty() {
                auth_result(cx, Ok(principal))
            } else {
                Login::refused(Reply::bad(None, "Expected an empty response after the server's proof"))
            }
        }
        Step::Bearer => match sasl::bearer(&cx.ctx.auth, peer, mech, data.expose_secret()).await {
            BearerOutcome::LoggedIn(principal) => auth_result(cx, Ok(principal)),
            // RFC 7628 §3.2.2: the error goes out as a challenge; the failure follows the
            // client's acknowledgement.
            BearerOutcome::Refused { challenge: error, error: e } => {
                challenge(mech, Step::BearerRefused(e), &error, out)
            }
            BearerOutcome::Failed(e) => auth_result(cx, Err(e)),
            BearerOutcome::Malformed => Login::refused(Reply::bad(None, "Malformed bearer token message")),
        },
        Step::BearerRefused(e) => {
            if sasl::bearer_acknowledged(data.expose_secret()) {
                auth_result(cx, Err(e))
            } else {
                Login::refused(Reply::bad(None, "Expected the acknowledgement of the error"))
            }
        }
    }
}

/// SASL PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`, already base64-decoded.
async fn authenticate_plain(cx: &LoginCx<'_>, mech: Mech, decoded: &Secret) -> Login {
    let Some((authz, authc, pass)) = sasl::split_plain(decoded.expose_secret()) else {
        return Login::refused(Reply::bad(None, "Malformed PLAIN credentials"));
    };
    if !authz.is_empty() && authz != authc {
        return Login::refused(Reply::from(AuthError::Authorization));
    }
    let user = String::from_utf8_lossy(authc).into_owned();
    login(cx, &user, Secret::new(pass.to_vec()), mech.mechanism()).await
}

/// The end of a login attempt (the authenticator has logged it): admission for a success,
/// the answer and its weight for a failure.
fn auth_result(cx: &LoginCx<'_>, result: Result<Principal, AuthError>) -> Login {
    let err = match result {
        Ok(principal) => {
            let Some(admission) = cx.admission else {
                return Login::LoggedIn(principal, None);
            };
            let Some(admitted) = admission.admit(&principal) else {
                tracing::info!(
                    target: postfach_auth::LOG_TARGET,
                    addr = %cx.conn.peer.ip(),
                    account = ?principal.name,
                    "login refused: too many connections for this account"
                );
                // RFC 5530 LIMIT; RFC 9051 §6.2.3: NO is a failed login, the client
                // stays in the not-authenticated state and may retry or log out.
                return Login::refused(Reply::no(Some(Code::Limit), "Too many connections for this account"));
            };
            return Login::LoggedIn(principal, Some(admitted));
        }
        Err(e) => e,
    };
    let failure = match &err {
        AuthError::BadCredentials | AuthError::Throttled { .. } => Failure::Counted,
        AuthError::Blocked { .. } => Failure::Fatal,
        AuthError::Authorization | AuthError::Protocol(_) => Failure::Uncounted,
        AuthError::Store(_) | AuthError::Internal(_) => {
            tracing::error!(peer = %cx.conn.peer, error = %err, "authentication error");
            Failure::Uncounted
        }
    };
    Login::Refused(Reply::from(err), failure)
}
