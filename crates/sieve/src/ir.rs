//! The checked form of a script that [`crate::evaluate`] runs: every command and test with its
//! arguments resolved to types, defaults filled in and extension use verified.
//!
//! Built only by `compile`; immutable afterwards (which makes [`crate::Script`] `Send + Sync`).

use crate::error::Position;
use crate::matching::{Comparator, MatchType};
use crate::template::Str;

/// Comparator and match type of a matching test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MatchSpec {
    pub(crate) comparator: Comparator,
    pub(crate) match_type: MatchType,
}

/// ADDRESS-PART (RFC 5228 §2.7.4, RFC 5233 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressPart {
    All,
    LocalPart,
    Domain,
    User,
    Detail,
}

/// BODY-TRANSFORM (RFC 5173 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodySelector {
    Raw,
    Content(Vec<Str>),
    Text,
}

/// Which side of the limit the `size` test checks (RFC 5228 §5.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizeRelation {
    Over,
    Under,
}

/// Which scale `spamtest` reports on (RFC 5235 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpamScale {
    /// 0 (untested) or 1 (clean) to 10 (spam).
    Tenths,
    /// `:percent`: 0 to 100.
    Percent,
}

/// A test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Test {
    True,
    False,
    Not(Box<Test>),
    AllOf(Vec<Test>),
    AnyOf(Vec<Test>),
    Address {
        spec: MatchSpec,
        part: AddressPart,
        headers: Vec<Str>,
        keys: Vec<Str>,
    },
    Envelope {
        spec: MatchSpec,
        part: AddressPart,
        parts: Vec<Str>,
        keys: Vec<Str>,
    },
    Header {
        spec: MatchSpec,
        headers: Vec<Str>,
        keys: Vec<Str>,
    },
    Exists {
        headers: Vec<Str>,
    },
    Size {
        relation: SizeRelation,
        limit: u64,
    },
    Body {
        spec: MatchSpec,
        selector: BodySelector,
        keys: Vec<Str>,
    },
    String {
        spec: MatchSpec,
        sources: Vec<Str>,
        keys: Vec<Str>,
    },
    /// `variables: None` reads the internal flag variable.
    HasFlag {
        spec: MatchSpec,
        variables: Option<Vec<String>>,
        keys: Vec<Str>,
    },
    Spam {
        spec: MatchSpec,
        scale: SpamScale,
        value: Str,
    },
    MailboxExists {
        names: Vec<Str>,
    },
    /// RFC 5260 §5: a part of the current date and time.
    CurrentDate {
        spec: MatchSpec,
        zone: Option<Str>,
        part: Str,
        keys: Vec<Str>,
    },
    /// RFC 5260 §4: a part of the date in a header field (the first one).
    Date {
        spec: MatchSpec,
        zone: DateZone,
        header: Str,
        part: Str,
        keys: Vec<Str>,
    },
}

/// The zone a `date` test reads its date in (RFC 5260 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DateZone {
    /// The server's zone (UTC here).
    Local,
    /// `:originalzone`: the zone written in the field.
    Original,
    /// `:zone "+hhmm"`.
    Given(Str),
}

/// A command with the position it starts at (for runtime error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) pos: Position,
    pub(crate) cmd: Cmd,
}

/// What `fileinto` / `redirect` do to the implicit keep (RFC 3894 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImplicitKeep {
    /// Without `:copy`: the implicit keep is cancelled.
    Cancel,
    /// With `:copy`: the implicit keep is left alone.
    Leave,
}

/// The case change of a `set` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    Lower,
    Upper,
}

/// `set` modifiers (RFC 5229 §4.1), applied in the order of the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Modifiers {
    /// `:lower` / `:upper` (precedence 40).
    pub(crate) whole: Option<Case>,
    /// `:lowerfirst` / `:upperfirst` (precedence 30).
    pub(crate) first: Option<Case>,
    /// `:quotewildcard` (precedence 20).
    pub(crate) quote_wildcard: bool,
    /// `:length` (precedence 10).
    pub(crate) length: bool,
}

/// setflag / addflag / removeflag (RFC 5232 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagOp {
    Set,
    Add,
    Remove,
}

/// The arguments of `vacation` (RFC 5230 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VacationSpec {
    pub(crate) days: Option<u64>,
    pub(crate) subject: Option<Str>,
    pub(crate) from: Option<Str>,
    pub(crate) addresses: Vec<Str>,
    pub(crate) mime: bool,
    pub(crate) handle: Option<Str>,
    pub(crate) reason: Str,
}

/// A command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cmd {
    If {
        branches: Vec<(Test, Vec<Node>)>,
        otherwise: Option<Vec<Node>>,
    },
    Stop,
    Keep {
        flags: Option<Vec<Str>>,
    },
    Discard,
    FileInto {
        mailbox: Str,
        copy: ImplicitKeep,
        create: bool,
        flags: Option<Vec<Str>>,
    },
    Redirect {
        address: Str,
        copy: ImplicitKeep,
    },
    Set {
        name: String,
        modifiers: Modifiers,
        value: Str,
    },
    /// `variable: None` is the internal flag variable.
    Flags {
        op: FlagOp,
        variable: Option<String>,
        flags: Vec<Str>,
    },
    Vacation(Box<VacationSpec>),
}
