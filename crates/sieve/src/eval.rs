//! Runs a compiled [`Script`] against one [`Message`] and returns what delivery should do.
//!
//! The interpreter only decides: it produces [`Action`]s and never files, sends or forwards
//! anything itself. Execution is atomic in the sense of RFC 5228 §2.10.6: when a run-time error
//! happens, all actions collected so far are dropped and the result is the implicit keep alone,
//! with the error reported, so mail is never lost to a bad script.
//!
//! Limits ([`Limits`]): a step budget bounds CPU time (every command, test and matching step is
//! charged), expanded strings and variables are capped in length, and actions and redirects are
//! capped in number.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::Script;
use crate::address::{self, Addr};
use crate::error::{Position, RuntimeError, excerpt};
use crate::flags;
use crate::ir::{
    AddressPart, BodySelector, Case, Cmd, DateZone, FlagOp, ImplicitKeep, MatchSpec, Modifiers, Node,
    SizeRelation, Test, VacationSpec,
};
use crate::matching::{self, Budget, Exhausted, MatchType, Pattern};
use crate::message::{BodyTransform, Message};
use crate::spamtest::{self, SpamTestSettings};
use crate::template::{Part, Str};

/// Resource limits for one evaluation. The defaults suit a multi-user server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most actions (keep, fileinto, redirect, vacation) one run may take; more is an error
    /// (RFC 5228 §2.10.4). The implicit keep is always allowed on top. Default 32.
    pub max_actions: usize,
    /// Most distinct redirect targets (RFC 5228 §10 requires a limit). Default 4.
    pub max_redirects: usize,
    /// Longest value of a variable in bytes; longer values are truncated, which RFC 5229 §6 says
    /// MUST NOT be an error. Default 16 KiB (at least 4000 characters, as §6 requires).
    pub max_variable_len: usize,
    /// Longest expanded string, and most bytes in one expanded string list. Default 2 MiB
    /// (above the 1 MiB script limit, so literal text never hits it).
    pub max_string_len: usize,
    /// Evaluation budget in steps (one per command and test, one per glob step, one per 16
    /// bytes scanned). Default 10 million, a few tens of milliseconds at most.
    pub max_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_actions: 32,
            max_redirects: 4,
            max_variable_len: 16 * 1024,
            max_string_len: 2 << 20,
            max_steps: 10_000_000,
        }
    }
}

/// Site policy and limits for [`crate::evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Resource limits.
    pub limits: Limits,
    /// Where `spamtest` reads the spam verdict.
    pub spamtest: SpamTestSettings,
    /// Separator between user and detail in a local part, for :user / :detail (RFC 5233).
    /// Default "+". The first occurrence splits.
    pub subaddress_separator: String,
    /// Smallest vacation `:days` (RFC 5230 §4.1: greater than 0). Default 1.
    pub vacation_min_days: u32,
    /// Largest vacation `:days` (RFC 5230 §4.1: greater than 7, should be greater than 30).
    /// Default 90.
    pub vacation_max_days: u32,
    /// The instant `currentdate` reads (Unix seconds); `None`: the system clock. The server's
    /// own zone is UTC for `currentdate` and `date` without `:zone`.
    pub now: Option<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            spamtest: SpamTestSettings::default(),
            subaddress_separator: "+".to_owned(),
            vacation_min_days: 1,
            vacation_max_days: 90,
            now: None,
        }
    }
}

/// Something delivery should do with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store in the user's INBOX with these flags (explicit `keep` or the implicit keep).
    Keep {
        /// IMAP flags to set (RFC 5232); system flags in canonical case.
        flags: Vec<String>,
    },
    /// Store in `mailbox` with these flags.
    FileInto {
        /// The mailbox name as the script wrote it (UTF-8, '/' or '.' are not interpreted).
        mailbox: String,
        /// IMAP flags to set (RFC 5232).
        flags: Vec<String>,
        /// `:create` (RFC 5490): create the mailbox if it does not exist. Without it, delivery
        /// decides what a missing mailbox means (RFC 5228 §4.1 allows INBOX).
        create: bool,
    },
    /// Forward the unchanged message to `address` (RFC 5228 §4.2). The delivery code must add
    /// loop protection, keep the envelope sender empty if it was empty, and log the redirect.
    Redirect {
        /// The target addr-spec.
        address: String,
        /// `:copy` was given (RFC 3894); informational, the implicit keep already reflects it.
        copy: bool,
    },
    /// The script executed `discard`. Informational: it only cancels the implicit keep and
    /// never removes other actions (RFC 5228 §4.4).
    Discard,
    /// An auto-reply candidate; see [`crate::vacation::should_reply`] for whether to send it.
    Vacation(Box<VacationAction>),
}

/// The `vacation` action with its arguments evaluated (RFC 5230 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacationAction {
    /// Where a reply goes: the envelope sender (RFC 5230 §4), empty if null or unknown.
    pub to: String,
    /// `:subject`, if given (the reply otherwise uses "Auto: " + the original subject).
    pub subject: Option<String>,
    /// `:from`, if given (the reply otherwise comes from the user's address).
    pub from: Option<String>,
    /// The reason: the reply body, or a whole MIME entity when `mime` is set.
    pub reason: String,
    /// Do not reply to the same sender with the same handle again within this many days;
    /// already clamped to the site's range.
    pub days: u32,
    /// Identifies this response for tracking: `:handle`, or a digest of the unexpanded
    /// :subject, :from, :mime and reason (RFC 5230 §4.2).
    pub handle: String,
    /// `:addresses`: more addresses of the user (valid ones only).
    pub addresses: Vec<String>,
    /// `:mime`: `reason` is a MIME entity with its own headers (RFC 5230 §4.4).
    pub mime: bool,
}

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What to do, in script order, with the implicit keep (if it applies) last. Deliveries to
    /// the same mailbox are merged (RFC 5228 §2.10.3), the last flags winning (RFC 5232 §3).
    pub actions: Vec<Action>,
    /// The script decided where the message goes: it executed `keep`, or something that
    /// cancelled the implicit keep (`fileinto` or `redirect` without `:copy`, `discard`).
    /// False when the message only reaches INBOX by the implicit keep, and after an error.
    /// Delivery uses this for its spam policy (file spam into Junk unless the script decided).
    pub explicit_decision: bool,
    /// The run-time error that stopped the script; then `actions` is exactly the implicit keep
    /// and the error should be logged (RFC 5228 §2.10.6).
    pub error: Option<RuntimeError>,
}

impl Outcome {
    /// The fallback outcome after an error: implicit keep, without flags.
    fn failed(error: RuntimeError) -> Self {
        Self {
            actions: vec![Action::Keep { flags: Vec::new() }],
            explicit_decision: false,
            error: Some(error),
        }
    }
}

/// Runs `script` on `msg`; never panics, never fails (errors become the implicit keep).
pub(crate) fn run(script: &Script, msg: &dyn Message, settings: &Settings) -> Outcome {
    let mut r = Run {
        script,
        msg,
        settings,
        limits: &settings.limits,
        budget: Budget::new(settings.limits.max_steps),
        vars: HashMap::new(),
        matched: Vec::new(),
        internal_flags: Vec::new(),
        actions: Vec::new(),
        implicit_keep: true,
        explicit: false,
        vacation_done: false,
        pos: Position::new(1, 1),
    };
    if let Err(e) = r.block(&script.commands) {
        return Outcome::failed(e);
    }
    if r.implicit_keep {
        // RFC 5232 §3: the internal variable's flags also apply to the implicit keep.
        let flags = r.internal_flags.clone();
        if let Err(e) = r.store(None, flags, false, Enforce::No) {
            return Outcome::failed(e);
        }
    }
    Outcome { actions: r.actions, explicit_decision: r.explicit, error: None }
}

/// Whether the next block continues or `stop` was executed.
enum Flow {
    Continue,
    Stop,
}

/// Whether a delivery counts against `max_actions` (the implicit keep never does: RFC 5228
/// §2.10.4 "Implementations MUST allow at least one keep or one fileinto").
#[derive(Clone, Copy, PartialEq, Eq)]
enum Enforce {
    Yes,
    No,
}

type Result<T> = std::result::Result<T, RuntimeError>;

struct Run<'a> {
    script: &'a Script,
    msg: &'a dyn Message,
    settings: &'a Settings,
    limits: &'a Limits,
    budget: Budget,
    vars: HashMap<String, String>,
    /// Match variables of the last successful :matches; [0] is the whole value.
    matched: Vec<String>,
    internal_flags: Vec<String>,
    actions: Vec<Action>,
    implicit_keep: bool,
    explicit: bool,
    vacation_done: bool,
    /// The command being executed, for error positions.
    pos: Position,
}

impl<'a> Run<'a> {
    fn fail(&self, message: impl Into<String>) -> RuntimeError {
        RuntimeError::new(self.pos, message)
    }

    fn exhausted(&self) -> RuntimeError {
        self.fail(format!(
            "the script needs too much work for this message (limit of {} steps)",
            self.limits.max_steps
        ))
    }

    fn charge(&mut self, n: u64) -> Result<()> {
        self.budget.charge(n).map_err(|Exhausted| self.exhausted())
    }

    fn block(&mut self, nodes: &'a [Node]) -> Result<Flow> {
        for node in nodes {
            self.pos = node.pos;
            self.charge(1)?;
            if let Flow::Stop = self.command(node)? {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    fn command(&mut self, node: &'a Node) -> Result<Flow> {
        match &node.cmd {
            Cmd::If { branches, otherwise } => {
                for (test, body) in branches {
                    if self.test(test)? {
                        return self.block(body);
                    }
                }
                if let Some(body) = otherwise {
                    return self.block(body);
                }
            }
            // RFC 5228 §3.3: stop ends all processing; the implicit keep still applies.
            Cmd::Stop => return Ok(Flow::Stop),
            Cmd::Keep { flags } => {
                let flags = self.flags_arg(flags.as_deref())?;
                self.store(None, flags, false, Enforce::Yes)?;
                self.implicit_keep = false;
                self.explicit = true;
            }
            Cmd::Discard => {
                // RFC 5228 §4.4: discard only cancels the implicit keep.
                self.implicit_keep = false;
                self.explicit = true;
                if !self.actions.contains(&Action::Discard) {
                    self.actions.push(Action::Discard);
                }
            }
            Cmd::FileInto { mailbox, copy, create, flags } => {
                let name = self.expand(mailbox)?.into_owned();
                check_mailbox_name(&name).map_err(|why| self.fail(why))?;
                let flags = self.flags_arg(flags.as_deref())?;
                self.store(Some(name), flags, *create, Enforce::Yes)?;
                if *copy == ImplicitKeep::Cancel {
                    self.implicit_keep = false;
                    self.explicit = true;
                }
            }
            Cmd::Redirect { address, copy } => {
                let raw = self.expand(address)?;
                // RFC 5228 §2.4.2.3: an invalid outbound address is an error.
                let Some(target) = address::parse_single(&raw) else {
                    return Err(self.fail(format!("redirect: \"{}\" is not a valid address", excerpt(&raw))));
                };
                self.redirect(target, *copy)?;
            }
            Cmd::Set { name, modifiers, value } => {
                let value = self.expand(value)?.into_owned();
                let value = apply_modifiers(*modifiers, value);
                self.set_var(name, value);
            }
            Cmd::Flags { op, variable, flags } => {
                let strings = self.expand_list(flags)?;
                let given = flags::parse(strings.iter().map(AsRef::as_ref));
                let mut current = match variable {
                    Some(v) => flags::parse([self.vars.get(v).map_or("", String::as_str)]),
                    None => std::mem::take(&mut self.internal_flags),
                };
                match op {
                    FlagOp::Set => current = given,
                    FlagOp::Add => flags::add(&mut current, given),
                    FlagOp::Remove => flags::remove(&mut current, &given),
                }
                match variable {
                    Some(v) => self.set_var(v, current.join(" ")),
                    None => self.internal_flags = current,
                }
            }
            Cmd::Vacation(spec) => self.vacation(spec)?,
        }
        Ok(Flow::Continue)
    }

    fn set_var(&mut self, name: &str, mut value: String) {
        // RFC 5229 §6: too-long values are truncated, never an error.
        truncate(&mut value, self.limits.max_variable_len);
        self.vars.insert(name.to_owned(), value);
    }

    /// The flags for keep / fileinto: `:flags` if given, else the internal variable (RFC 5232 §5).
    fn flags_arg(&mut self, given: Option<&'a [Str]>) -> Result<Vec<String>> {
        match given {
            Some(list) => {
                let strings = self.expand_list(list)?;
                Ok(flags::parse(strings.iter().map(AsRef::as_ref)))
            }
            None => Ok(self.internal_flags.clone()),
        }
    }

    /// Adds a delivery to INBOX (`mailbox: None`) or a mailbox, merging with an earlier one to
    /// the same place (RFC 5228 §2.10.3: don't deliver twice) with the newest flags winning.
    fn store(
        &mut self,
        mailbox: Option<String>,
        flags: Vec<String>,
        create: bool,
        enforce: Enforce,
    ) -> Result<()> {
        let is_inbox = |m: Option<&str>| m.is_none_or(|m| m.eq_ignore_ascii_case("INBOX"));
        let same = |a: &Action| match (a, mailbox.as_deref()) {
            (Action::Keep { .. }, m) => is_inbox(m),
            (Action::FileInto { mailbox: existing, .. }, m) => {
                if is_inbox(m) {
                    is_inbox(Some(existing))
                } else {
                    m == Some(existing.as_str())
                }
            }
            _ => false,
        };
        if let Some(existing) = self.actions.iter_mut().find(|a| same(a)) {
            match existing {
                Action::Keep { flags: f } => *f = flags,
                Action::FileInto { flags: f, create: c, .. } => {
                    *f = flags;
                    *c |= create;
                }
                _ => {}
            }
            return Ok(());
        }
        if enforce == Enforce::Yes {
            self.check_action_limit()?;
        }
        self.actions.push(match mailbox {
            None => Action::Keep { flags },
            Some(mailbox) => Action::FileInto { mailbox, flags, create },
        });
        Ok(())
    }

    fn check_action_limit(&self) -> Result<()> {
        // RFC 5228 §2.10.4: at least one keep or fileinto must always be possible.
        let limit = self.limits.max_actions.max(1);
        let taken = self.actions.iter().filter(|a| **a != Action::Discard).count();
        if taken >= limit {
            // RFC 5228 §2.10.4: hitting the action limit is an error.
            return Err(self.fail(format!("too many actions (limit {limit})")));
        }
        Ok(())
    }

    fn redirect(&mut self, target: String, copy: ImplicitKeep) -> Result<()> {
        let already = self.actions.iter_mut().find_map(|a| match a {
            Action::Redirect { address, copy } if address.eq_ignore_ascii_case(&target) => Some(copy),
            _ => None,
        });
        if let Some(existing_copy) = already {
            // The same target twice is one redirect; it is a copy only if every request was.
            *existing_copy &= copy == ImplicitKeep::Leave;
        } else {
            let redirects = self.actions.iter().filter(|a| matches!(a, Action::Redirect { .. })).count();
            if redirects >= self.limits.max_redirects {
                // RFC 5228 §4.2 / §10: the number of redirects MUST be limitable.
                return Err(self.fail(format!("too many redirects (limit {})", self.limits.max_redirects)));
            }
            self.check_action_limit()?;
            self.actions.push(Action::Redirect { address: target, copy: copy == ImplicitKeep::Leave });
        }
        if copy == ImplicitKeep::Cancel {
            self.implicit_keep = false;
            self.explicit = true;
        }
        Ok(())
    }

    fn vacation(&mut self, spec: &'a VacationSpec) -> Result<()> {
        if self.vacation_done {
            // RFC 5230 §4.7: a script MUST fail if it executes vacation twice.
            return Err(self.fail("vacation can only be executed once per message"));
        }
        self.vacation_done = true;
        let subject = match &spec.subject {
            Some(s) => Some(self.expand(s)?.into_owned()),
            None => None,
        };
        let from = match &spec.from {
            Some(s) => {
                let from = self.expand(s)?.into_owned();
                if !valid_mailbox_list(&from) {
                    // RFC 5230 §4.3: SHOULD generate an error for a syntactically invalid :from.
                    return Err(
                        self.fail(format!("vacation :from \"{}\" is not a valid address", excerpt(&from)))
                    );
                }
                Some(from)
            }
            None => None,
        };
        let reason = self.expand(&spec.reason)?.into_owned();
        if spec.mime {
            check_mime_reason(&reason).map_err(|why| self.fail(why))?;
        }
        let addresses = self
            .expand_list(&spec.addresses)?
            .iter()
            .filter_map(|a| address::parse_single(a))
            .collect::<Vec<_>>();
        let handle = match &spec.handle {
            Some(h) => self.expand(h)?.into_owned(),
            // RFC 5230 §4.2: without :handle, the response is identified by its unexpanded
            // :subject, :from, :mime and reason; each field is length-prefixed so the same text
            // in different fields gives a different handle.
            None => {
                let mut text = String::new();
                for field in [
                    spec.subject.as_ref().map(Str::source_text),
                    spec.from.as_ref().map(Str::source_text),
                    Some(if spec.mime { "mime" } else { "text" }.to_owned()),
                    Some(spec.reason.source_text()),
                ] {
                    match field {
                        Some(f) => text.push_str(&format!("{}:{f};", f.len())),
                        None => text.push_str("-;"),
                    }
                }
                format!("auto-{:032x}", fnv1a_128(text.as_bytes()))
            }
        };
        let (min, max) = (self.settings.vacation_min_days.max(1), self.settings.vacation_max_days.max(1));
        // RFC 5230 §4.1: default 7 or the minimum, whichever is greater; clamp to [min, max].
        let days = spec.days.unwrap_or(u64::from(min.max(7))).clamp(u64::from(min), u64::from(max.max(min)));
        let to = self.msg.envelope_from().map(|f| address::parse_envelope(f).all).unwrap_or_default();
        self.check_action_limit()?;
        self.actions.push(Action::Vacation(Box::new(VacationAction {
            to,
            subject,
            from,
            reason,
            days: u32::try_from(days).unwrap_or(u32::MAX),
            handle,
            addresses,
            mime: spec.mime,
        })));
        Ok(())
    }

    /// The value of a string argument now (RFC 5229 §3: with the variable values current when
    /// control reaches the command).
    fn expand(&mut self, s: &'a Str) -> Result<Cow<'a, str>> {
        let parts = match s {
            Str::Const(c) => return Ok(Cow::Borrowed(c)),
            Str::Template(parts) => parts,
        };
        let mut out = String::new();
        for part in parts {
            let piece = match part {
                Part::Lit(l) => l.as_str(),
                Part::Var(name) => self.vars.get(name).map_or("", String::as_str),
                Part::Match(i) => self.matched.get(*i).map_or("", String::as_str),
            };
            out.push_str(piece);
            if out.len() > self.limits.max_string_len {
                truncate(&mut out, self.limits.max_string_len);
                break;
            }
        }
        self.charge(1 + out.len() as u64 / 16)?;
        Ok(Cow::Owned(out))
    }

    fn expand_list(&mut self, list: &'a [Str]) -> Result<Vec<Cow<'a, str>>> {
        let mut out = Vec::with_capacity(list.len());
        let mut total = 0usize;
        for s in list {
            // One step per item also pays for whatever the item is used for (one header
            // lookup, one mailbox check), so long constant lists are bounded too.
            self.charge(1)?;
            let v = self.expand(s)?;
            total += v.len();
            if total > self.limits.max_string_len {
                return Err(self.fail(format!(
                    "expanded string list is too long (limit {} bytes)",
                    self.limits.max_string_len
                )));
            }
            out.push(v);
        }
        Ok(out)
    }

    fn test(&mut self, test: &'a Test) -> Result<bool> {
        self.charge(1)?;
        match test {
            Test::True => Ok(true),
            Test::False => Ok(false),
            Test::Not(inner) => Ok(!self.test(inner)?),
            // RFC 5229 §3.2: tests MUST short-circuit, left to right.
            Test::AllOf(list) => {
                for t in list {
                    if !self.test(t)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Test::AnyOf(list) => {
                for t in list {
                    if self.test(t)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Test::Header { spec, headers, keys } => {
                let names = self.expand_list(headers)?;
                let mut values = Vec::new();
                for name in names.iter().filter(|n| valid_header_name(n)) {
                    // RFC 5228 §5.7: leading and trailing whitespace is ignored.
                    values.extend(self.msg.header(name).into_iter().map(|v| v.trim().to_owned()));
                }
                let count = values.len();
                self.matches(*spec, &values, count, keys, Capture::Yes)
            }
            Test::Address { spec, part, headers, keys } => {
                let names = self.expand_list(headers)?;
                let mut values = Vec::new();
                let mut count = 0;
                for name in names.iter().filter(|n| valid_header_name(n) && address::is_address_header(n)) {
                    for raw in self.msg.header_raw(name) {
                        self.charge(1 + raw.len() as u64 / 16)?;
                        for addr in address::parse_list(&raw) {
                            count += 1;
                            if let Some(v) = self.address_part(&addr, *part) {
                                values.push(v);
                            }
                        }
                    }
                }
                self.matches(*spec, &values, count, keys, Capture::Yes)
            }
            Test::Envelope { spec, part, parts, keys } => {
                let names = self.expand_list(parts)?;
                let mut values = Vec::new();
                let mut count = 0;
                for name in names.iter() {
                    let path = if name.eq_ignore_ascii_case("from") {
                        self.msg.envelope_from()
                    } else if name.eq_ignore_ascii_case("to") {
                        self.msg.envelope_to()
                    } else {
                        None
                    };
                    let Some(path) = path else { continue };
                    let addr = address::parse_envelope(path);
                    if addr.all.is_empty() {
                        // RFC 5228 §5.4: the null reverse-path matches as "" whatever the
                        // address part; RFC 5231 §4.2: it counts as 0 addresses.
                        values.push(String::new());
                        continue;
                    }
                    count += 1;
                    if let Some(v) = self.address_part(&addr, *part) {
                        values.push(v);
                    }
                }
                self.matches(*spec, &values, count, keys, Capture::Yes)
            }
            Test::Exists { headers } => {
                let names = self.expand_list(headers)?;
                // RFC 5228 §5.5: all of the headers must exist.
                Ok(names.iter().all(|n| valid_header_name(n) && !self.msg.header(n).is_empty()))
            }
            Test::Size { relation, limit } => {
                let size = self.msg.size();
                Ok(match relation {
                    SizeRelation::Over => size > *limit,
                    SizeRelation::Under => size < *limit,
                })
            }
            Test::Body { spec, selector, keys } => {
                let transform = match selector {
                    BodySelector::Raw => BodyTransform::Raw,
                    BodySelector::Text => BodyTransform::Text,
                    BodySelector::Content(types) => BodyTransform::Content(
                        self.expand_list(types)?.into_iter().map(Cow::into_owned).collect(),
                    ),
                };
                let values = self.msg.body_text(&transform);
                let count = values.len();
                // RFC 5173 §6: body matches never set match variables.
                self.matches(*spec, &values, count, keys, Capture::No)
            }
            Test::CurrentDate { spec, zone, part, keys } => {
                let now = self.settings.now.unwrap_or_else(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                });
                let offset = match zone {
                    None => 0,
                    Some(z) => match crate::date::parse_zone(&self.expand(z)?) {
                        Some(o) => o,
                        // RFC 5260 §4.1: an invalid zone makes the test fail.
                        None => return Ok(false),
                    },
                };
                let part = self.expand(part)?;
                let Some(value) = crate::date::date_part(now, offset, &part) else { return Ok(false) };
                self.matches(*spec, &[value], 1, keys, Capture::Yes)
            }
            Test::Date { spec, zone, header, part, keys } => {
                let name = self.expand(header)?.into_owned();
                // RFC 5260 §4: no field, or no date in it: the test fails (a :count sees 0).
                let Some((unix, original)) =
                    valid_header_name(&name).then(|| self.msg.header_date(&name)).flatten()
                else {
                    return self.matches(*spec, &[], 0, keys, Capture::Yes);
                };
                let offset = match zone {
                    DateZone::Local => 0,
                    DateZone::Original => original,
                    DateZone::Given(z) => match crate::date::parse_zone(&self.expand(z)?) {
                        Some(o) => o,
                        None => return Ok(false),
                    },
                };
                let part = self.expand(part)?;
                let Some(value) = crate::date::date_part(unix, offset, &part) else { return Ok(false) };
                self.matches(*spec, &[value], 1, keys, Capture::Yes)
            }
            Test::String { spec, sources, keys } => {
                let values: Vec<String> =
                    self.expand_list(sources)?.into_iter().map(Cow::into_owned).collect();
                // RFC 5229 §5: the count of a string is 0 if it is empty, else 1.
                let count = values.iter().filter(|v| !v.is_empty()).count();
                self.matches(*spec, &values, count, keys, Capture::Yes)
            }
            Test::HasFlag { spec, variables, keys } => {
                let mut values: Vec<String> = Vec::new();
                match variables {
                    None => values.extend(self.internal_flags.iter().cloned()),
                    Some(names) => {
                        for name in names {
                            let set = flags::parse([self.vars.get(name).map_or("", String::as_str)]);
                            values.extend(set);
                        }
                    }
                }
                // RFC 5232 §4: :count counts distinct flags per variable, summed.
                let count = values.len();
                let expanded = self.expand_list(keys)?;
                let keys: Vec<Cow<'_, str>> = if matches!(spec.match_type, MatchType::Count(_)) {
                    expanded
                } else {
                    // RFC 5232 §2: a space-separated string is a list of flags.
                    expanded
                        .iter()
                        .flat_map(|k| {
                            k.split(' ').filter(|w| !w.is_empty()).map(|w| Cow::Owned(w.to_owned()))
                        })
                        .collect()
                };
                self.match_expanded(*spec, &values, count, &keys, Capture::Yes)
            }
            Test::Spam { spec, scale, value } => {
                let result = spamtest::result(self.msg, &self.settings.spamtest, *scale);
                let count = usize::from(result.is_some());
                let values = vec![result.unwrap_or(0).to_string()];
                let keys = std::slice::from_ref(value);
                self.matches(*spec, &values, count, keys, Capture::Yes)
            }
            Test::MailboxExists { names } => {
                let names = self.expand_list(names)?;
                Ok(names.iter().all(|n| self.msg.mailbox_exists(n)))
            }
        }
    }

    fn address_part(&self, addr: &Addr, part: AddressPart) -> Option<String> {
        let sep = self.settings.subaddress_separator.as_str();
        match part {
            AddressPart::All => Some(addr.all.clone()),
            AddressPart::LocalPart => addr.domain.as_ref().and(addr.local.clone()),
            AddressPart::Domain => addr.domain.clone(),
            AddressPart::User => addr.user(sep).map(str::to_owned),
            AddressPart::Detail => addr.detail(sep).map(str::to_owned),
        }
    }

    /// Whether any value matches any key under `spec`; `count` is what :count compares.
    fn matches(
        &mut self,
        spec: MatchSpec,
        values: &[String],
        count: usize,
        keys: &'a [Str],
        capture: Capture,
    ) -> Result<bool> {
        let keys = self.expand_list(keys)?;
        self.match_expanded(spec, values, count, &keys, capture)
    }

    fn match_expanded(
        &mut self,
        spec: MatchSpec,
        values: &[String],
        count: usize,
        keys: &[Cow<'_, str>],
        capture: Capture,
    ) -> Result<bool> {
        // Match variables are only observable with "variables" (RFC 5229 §3.2).
        let capture = if self.script.variables { capture } else { Capture::No };
        match match_values(spec, values, count, keys, capture, &mut self.budget) {
            Ok(Hit::Miss) => Ok(false),
            Ok(Hit::Match) => Ok(true),
            Ok(Hit::Captured(mut vars)) => {
                for v in &mut vars {
                    truncate(v, self.limits.max_variable_len);
                }
                self.matched = vars;
                Ok(true)
            }
            Err(Exhausted) => Err(self.exhausted()),
        }
    }
}

/// The result of matching values against keys.
enum Hit {
    Miss,
    Match,
    /// A :matches success with its match variables (\[0] is the whole value).
    Captured(Vec<String>),
}

/// Tries every value against every key (values outer, keys inner; RFC 5229 §3.2 leaves the
/// order free) and stops at the first match.
fn match_values(
    spec: MatchSpec,
    values: &[String],
    count: usize,
    keys: &[Cow<'_, str>],
    capture: Capture,
    budget: &mut Budget,
) -> std::result::Result<Hit, Exhausted> {
    let cmp = spec.comparator;
    let found = |hit: bool| if hit { Hit::Match } else { Hit::Miss };
    match spec.match_type {
        MatchType::Count(op) => {
            budget.charge(keys.len() as u64)?;
            Ok(found(keys.iter().any(|k| matching::count(cmp, op, count, k))))
        }
        MatchType::Matches => {
            let patterns: Vec<Pattern> = keys.iter().map(|k| Pattern::new(k)).collect();
            for v in values {
                for p in &patterns {
                    let Some(caps) = p.matches(cmp, v, budget)? else { continue };
                    if capture == Capture::No {
                        return Ok(Hit::Match);
                    }
                    let mut vars = Vec::with_capacity(caps.len() + 1);
                    vars.push(v.clone());
                    vars.extend(caps.iter().map(|(a, z)| v[*a..*z].to_owned()));
                    return Ok(Hit::Captured(vars));
                }
            }
            Ok(Hit::Miss)
        }
        mt => {
            for v in values {
                for k in keys {
                    let hit = match mt {
                        MatchType::Is => matching::is(cmp, v, k, budget)?,
                        MatchType::Contains => matching::contains(cmp, v, k, budget)?,
                        MatchType::Value(op) => matching::value(cmp, op, v, k, budget)?,
                        MatchType::Count(_) | MatchType::Matches => false,
                    };
                    if hit {
                        return Ok(Hit::Match);
                    }
                }
            }
            Ok(Hit::Miss)
        }
    }
}

/// Whether a :matches success should set the match variables.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Capture {
    Yes,
    No,
}

/// RFC 5229 §4.1: modifiers apply by precedence, highest first.
fn apply_modifiers(m: Modifiers, mut v: String) -> String {
    match m.whole {
        Some(Case::Lower) => v.make_ascii_lowercase(),
        Some(Case::Upper) => v.make_ascii_uppercase(),
        None => {}
    }
    if let Some(case) = m.first
        && let Some(first) = v.get_mut(0..1)
    {
        match case {
            Case::Lower => first.make_ascii_lowercase(),
            Case::Upper => first.make_ascii_uppercase(),
        }
    }
    if m.quote_wildcard {
        let mut quoted = String::with_capacity(v.len());
        for c in v.chars() {
            if matches!(c, '*' | '?' | '\\') {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        v = quoted;
    }
    if m.length {
        // RFC 5229 §4.1.1: the number of characters, not octets.
        v = v.chars().count().to_string();
    }
    v
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

/// RFC 5228 §2.4.2.2: no header matches a syntactically invalid name (and that is no error).
fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// Longest mailbox name fileinto accepts, in bytes.
const MAX_MAILBOX_NAME: usize = 1000;

/// Mailbox names we refuse outright (RFC 5228 §4.1: invalid names MAY be an error).
pub(crate) fn check_mailbox_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("fileinto: the mailbox name is empty".to_owned());
    }
    if name.chars().any(char::is_control) {
        return Err("fileinto: the mailbox name contains a control character".to_owned());
    }
    if name.len() > MAX_MAILBOX_NAME {
        return Err(format!("fileinto: the mailbox name is too long (limit {MAX_MAILBOX_NAME} bytes)"));
    }
    Ok(())
}

/// RFC 5230 §4.3: `:from` must be a valid mailbox-list.
pub(crate) fn valid_mailbox_list(value: &str) -> bool {
    if value.len() > address::MAX_SINGLE_ADDRESS {
        return false;
    }
    let list = address::parse_list(value);
    !list.is_empty() && list.iter().all(Addr::is_valid) && !value.chars().any(char::is_control)
}

/// RFC 5230 §5: with `:mime`, the reason's headers must not contain 8-bit text.
pub(crate) fn check_mime_reason(text: &str) -> std::result::Result<(), String> {
    let normalized = text.replace("\r\n", "\n");
    let header = normalized.split("\n\n").next().unwrap_or_default();
    if header.is_ascii() {
        Ok(())
    } else {
        Err("vacation :mime: the MIME headers of the reason must be ASCII (RFC 5230 §5)".to_owned())
    }
}

/// RFC 5228 §5.4: the envelope parts we know.
pub(crate) fn is_envelope_part(name: &str) -> bool {
    name.eq_ignore_ascii_case("from") || name.eq_ignore_ascii_case("to")
}

/// FNV-1a, 128-bit: a stable digest for vacation handles (not a security boundary: a collision
/// only merges two auto-reply trackers).
fn fnv1a_128(data: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    data.iter().fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5229_modifier_examples() {
        let a = "juMBlEd lETteRS".to_owned();
        let m = |f: fn(&mut Modifiers)| {
            let mut m = Modifiers::default();
            f(&mut m);
            apply_modifiers(m, a.clone())
        };
        assert_eq!(m(|_| {}), "juMBlEd lETteRS");
        assert_eq!(m(|m| m.length = true), "15");
        assert_eq!(m(|m| m.whole = Some(Case::Lower)), "jumbled letters");
        assert_eq!(m(|m| m.first = Some(Case::Upper)), "JuMBlEd lETteRS");
        assert_eq!(
            m(|m| {
                m.first = Some(Case::Upper);
                m.whole = Some(Case::Lower);
            }),
            "Jumbled letters"
        );
        let q = Modifiers { quote_wildcard: true, ..Modifiers::default() };
        assert_eq!(apply_modifiers(q, "Rock*".into()), "Rock\\*");
        let l = Modifiers { length: true, ..Modifiers::default() };
        assert_eq!(apply_modifiers(l, "ähm".into()), "3");
        let u = Modifiers { first: Some(Case::Upper), ..Modifiers::default() };
        assert_eq!(apply_modifiers(u, "ähm".into()), "ähm");
    }

    #[test]
    fn truncation_respects_characters() {
        let mut s = "aä".to_owned();
        truncate(&mut s, 2);
        assert_eq!(s, "a");
    }

    #[test]
    fn helpers() {
        assert!(valid_header_name("X-Caffeine"));
        assert!(!valid_header_name("From:"));
        assert!(!valid_header_name("a b"));
        assert!(check_mailbox_name("INBOX.harassment").is_ok());
        assert!(check_mailbox_name("").is_err());
        assert!(check_mailbox_name("a\r\nb").is_err());
        assert!(valid_mailbox_list("Me <me@example.com>, you@example.com"));
        assert!(!valid_mailbox_list("me"));
        assert!(check_mime_reason("Content-Type: text/plain\r\n\r\nÄrger").is_ok());
        assert!(check_mime_reason("Subject: Ärger\r\n\r\nx").is_err());
        assert_ne!(fnv1a_128(b"a"), fnv1a_128(b"b"));
    }
}
