//! The command AST: what [`crate::parse_command`] produces and the session consumes.
//!
//! Types validate at construction where practical (a [`Tag`] can only hold tag characters, a
//! [`Section`] part number is non-zero). Byte strings from the client stay `Vec<u8>` where the
//! protocol allows arbitrary octets (search strings, literals); names that the RFCs restrict to
//! ASCII atoms are `String`. Passwords and SASL responses are a [`Secret`] from the moment they
//! are parsed.

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};

use postfach_secret::Secret;

pub use crate::datetime::{Date, DateTime};
pub use crate::seqset::{NumberSet, SeqNum, SeqRange, SeqRanges, SequenceSet};

/// A complete client command: tag plus body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag, echoed in the completion response.
    pub tag: Tag,
    /// What the client asked for.
    pub body: CommandBody,
}

/// Error for values that fail validation when built from untrusted text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    /// A tag is empty or holds a byte outside RFC 9051 §9 `tag`.
    #[error("invalid tag")]
    Tag,
    /// An atom is empty or holds a byte outside `ATOM-CHAR`.
    #[error("invalid atom")]
    Atom,
}

/// True for RFC 9051 §9 `ATOM-CHAR`: any CHAR except atom-specials.
pub(crate) fn is_atom_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// True for RFC 9051 §9 `ASTRING-CHAR` (`ATOM-CHAR` / `resp-specials`).
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// True for bytes allowed in a tag: `ASTRING-CHAR` except "+" (RFC 9051 §9 `tag`).
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// A command tag (RFC 9051 §9: `tag = 1*<any ASTRING-CHAR except "+">`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    /// Validates and wraps a tag.
    pub fn new(s: impl Into<String>) -> Result<Tag, InvalidValue> {
        let s = s.into();
        if s.is_empty() || !s.bytes().all(is_tag_char) {
            return Err(InvalidValue::Tag);
        }
        Ok(Tag(s))
    }

    /// Validates raw bytes as a tag.
    pub fn from_bytes(b: &[u8]) -> Result<Tag, InvalidValue> {
        if b.is_empty() || !b.iter().all(|&c| is_tag_char(c)) {
            return Err(InvalidValue::Tag);
        }
        // All tag chars are ASCII, so this conversion cannot fail.
        String::from_utf8(b.to_vec()).map(Tag).map_err(|_| InvalidValue::Tag)
    }

    /// The tag text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a command addresses messages by sequence number or by UID (`UID` prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// Message sequence numbers.
    Seq,
    /// UIDs (`UID FETCH`, `UID SEARCH`, ...).
    Uid,
}

impl CommandKind {
    /// True for the `UID` form.
    pub fn is_uid(self) -> bool {
        self == CommandKind::Uid
    }
}

/// A compression algorithm of `COMPRESS` (RFC 4978 §5: `algorithm = "DEFLATE"`). The parser
/// refuses any other name, so a session only sees algorithms it may implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionAlgorithm {
    /// Raw DEFLATE (RFC 1951), no zlib header.
    Deflate,
}

/// Every command the parser understands. New extensions add variants.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandBody {
    /// `CAPABILITY` (RFC 9051 §6.1.1).
    Capability,
    /// `NOOP` (RFC 9051 §6.1.2).
    Noop,
    /// `LOGOUT` (RFC 9051 §6.1.3).
    Logout,
    /// `STARTTLS` (RFC 9051 §6.2.1).
    StartTls,
    /// `AUTHENTICATE mech [initial-response]` (RFC 9051 §6.2.2, SASL-IR RFC 4959).
    Authenticate {
        /// Mechanism name, uppercased.
        mechanism: String,
        /// SASL-IR initial response: the base64 text as sent; `=` means an empty response.
        initial_response: Option<Secret>,
    },
    /// `LOGIN user password` (RFC 9051 §6.2.3).
    Login {
        /// User name (astring bytes).
        username: Vec<u8>,
        /// Password (astring bytes), redacted in `Debug`.
        password: Secret,
    },
    /// `ENABLE cap...` (RFC 5161); capability names uppercased.
    Enable(Vec<String>),
    /// `SELECT mailbox [(params)]` (RFC 9051 §6.3.2, RFC 7162).
    Select {
        /// The mailbox.
        mailbox: WireMailboxName,
        /// CONDSTORE / QRESYNC parameters.
        params: SelectParams,
    },
    /// `EXAMINE mailbox [(params)]` (RFC 9051 §6.3.3).
    Examine {
        /// The mailbox.
        mailbox: WireMailboxName,
        /// CONDSTORE / QRESYNC parameters.
        params: SelectParams,
    },
    /// `CREATE mailbox [(USE (attrs))]` (RFC 9051 §6.3.4, RFC 6154 §3).
    Create {
        /// The new mailbox.
        mailbox: WireMailboxName,
        /// Special-use attributes requested with `USE`.
        special_use: Vec<SpecialUse>,
    },
    /// `DELETE mailbox` (RFC 9051 §6.3.5).
    Delete(WireMailboxName),
    /// `RENAME from to` (RFC 9051 §6.3.6).
    Rename {
        /// Existing name.
        from: WireMailboxName,
        /// New name.
        to: WireMailboxName,
    },
    /// `SUBSCRIBE mailbox` (RFC 9051 §6.3.7).
    Subscribe(WireMailboxName),
    /// `UNSUBSCRIBE mailbox` (RFC 9051 §6.3.8).
    Unsubscribe(WireMailboxName),
    /// `LIST`, basic or extended (RFC 9051 §6.3.9, RFC 5258, RFC 5819).
    List(ListCommand),
    /// `LSUB reference pattern` (RFC 3501 §6.3.9; IMAP4rev1 only).
    Lsub {
        /// Reference name.
        reference: WireMailboxName,
        /// Mailbox pattern with wildcards.
        pattern: ListPattern,
    },
    /// `NAMESPACE` (RFC 9051 §6.3.10).
    Namespace,
    /// `STATUS mailbox (items)` (RFC 9051 §6.3.11).
    Status {
        /// The mailbox.
        mailbox: WireMailboxName,
        /// Requested items, in order.
        items: Vec<StatusItem>,
    },
    /// `APPEND mailbox ...` with one or more messages (RFC 9051 §6.3.12, MULTIAPPEND RFC 3502).
    Append {
        /// Target mailbox.
        mailbox: WireMailboxName,
        /// At least one message.
        messages: Vec<AppendMessage>,
    },
    /// `IDLE` (RFC 9051 §6.3.13).
    Idle,
    /// `CHECK` (RFC 3501 §6.4.1; IMAP4rev1 only).
    Check,
    /// `CLOSE` (RFC 9051 §6.4.1).
    Close,
    /// `UNSELECT` (RFC 9051 §6.4.2).
    Unselect,
    /// `EXPUNGE` or `UID EXPUNGE set` (RFC 9051 §6.4.3, §6.4.9).
    Expunge {
        /// `Some` for `UID EXPUNGE`: only these UIDs.
        uids: Option<SequenceSet>,
    },
    /// `[UID] SEARCH` (RFC 9051 §6.4.4, ESEARCH RFC 4731, SEARCHRES RFC 5182).
    Search {
        /// Sequence numbers or UIDs in the result.
        kind: CommandKind,
        /// `CHARSET x` if given (the session checks it and answers `BADCHARSET`).
        charset: Option<String>,
        /// `RETURN (...)`: `None` if absent, `Some(empty)` for `RETURN ()`.
        return_opts: Option<Vec<SearchReturn>>,
        /// The fetch attributes of `UPDATE (fetch-att ...)` (RFC 5465 §7), sent for each new
        /// message that joins the result; empty for a plain UPDATE or none.
        update_fetch: Vec<FetchAttribute>,
        /// The criteria, implicitly ANDed; never empty.
        criteria: Vec<SearchKey>,
    },
    /// `[UID] FETCH set items [(modifiers)]` (RFC 9051 §6.4.5, RFC 7162).
    Fetch {
        /// Sequence numbers or UIDs.
        kind: CommandKind,
        /// Which messages.
        set: SequenceSet,
        /// Which data items.
        items: FetchItems,
        /// CHANGEDSINCE / VANISHED.
        modifiers: FetchModifiers,
    },
    /// `[UID] STORE set [(UNCHANGEDSINCE n)] action flags` (RFC 9051 §6.4.6, RFC 7162).
    Store {
        /// Sequence numbers or UIDs.
        kind: CommandKind,
        /// Which messages.
        set: SequenceSet,
        /// What to do with the flags.
        action: StoreAction,
        /// CONDSTORE `UNCHANGEDSINCE`.
        unchanged_since: Option<u64>,
    },
    /// `[UID] COPY set mailbox` (RFC 9051 §6.4.7).
    Copy {
        /// Sequence numbers or UIDs.
        kind: CommandKind,
        /// Which messages.
        set: SequenceSet,
        /// Target mailbox.
        mailbox: WireMailboxName,
    },
    /// `[UID] MOVE set mailbox` (RFC 9051 §6.4.8, RFC 6851).
    Move {
        /// Sequence numbers or UIDs.
        kind: CommandKind,
        /// Which messages.
        set: SequenceSet,
        /// Target mailbox.
        mailbox: WireMailboxName,
    },
    /// `[UID] REPLACE number mailbox message` (RFC 8508): append `message` to `mailbox` and
    /// expunge the selected mailbox's message `number` (a sequence number, or a UID).
    Replace {
        /// Sequence number or UID.
        kind: CommandKind,
        /// The message replaced.
        target: std::num::NonZeroU32,
        /// Where the new message goes.
        mailbox: WireMailboxName,
        /// The new message.
        message: AppendMessage,
    },
    /// `UNAUTHENTICATE` (RFC 8437): back to the not-authenticated state.
    Unauthenticate,
    /// `COMPRESS algorithm` (RFC 4978 §3): compress both directions from the next byte on.
    Compress(CompressionAlgorithm),
    /// `ID (params)` or `ID NIL` (RFC 2971); non-UTF-8 bytes are replaced lossily.
    Id(Option<Vec<(String, Option<String>)>>),
    /// `[UID] SORT [RETURN (...)] (criteria) charset keys` (RFC 5256 §3, ESORT RFC 5267,
    /// SORT=DISPLAY RFC 5957).
    Sort {
        /// Sequence numbers or UIDs in the result.
        kind: CommandKind,
        /// `RETURN (...)` (ESORT): `None` if absent, `Some(empty)` for `RETURN ()`.
        return_opts: Option<Vec<SearchReturn>>,
        /// The fetch attributes of `UPDATE (fetch-att ...)` (RFC 5465 §7), as for SEARCH.
        update_fetch: Vec<FetchAttribute>,
        /// Sort criteria in priority order; never empty.
        criteria: Vec<SortCriterion>,
        /// The mandatory charset of the search strings.
        charset: String,
        /// Search criteria, implicitly ANDed; never empty.
        search: Vec<SearchKey>,
    },
    /// `[UID] THREAD algorithm charset keys` (RFC 5256 §3).
    Thread {
        /// Sequence numbers or UIDs in the result.
        kind: CommandKind,
        /// The threading algorithm.
        algorithm: ThreadAlgorithm,
        /// The mandatory charset of the search strings.
        charset: String,
        /// Search criteria, implicitly ANDed; never empty.
        search: Vec<SearchKey>,
    },
    /// `SETACL mailbox identifier mod-rights` (RFC 4314 §3.1).
    SetAcl {
        /// The mailbox whose ACL changes.
        mailbox: WireMailboxName,
        /// Whom the entry is for (astring as UTF-8, not yet SASLprep'd; RFC 4314 §3 has the
        /// session refuse an empty or unpreparable one with BAD). `-name` is a negative entry.
        identifier: String,
        /// The rights as sent: an optional `+` (add) or `-` (remove) prefix, then the right
        /// letters (replace without a prefix). The session checks the letters (RFC 4314 §3.1:
        /// unknown rights are BAD).
        rights: String,
    },
    /// `DELETEACL mailbox identifier` (RFC 4314 §3.2).
    DeleteAcl {
        /// The mailbox whose ACL changes.
        mailbox: WireMailboxName,
        /// The entry to remove (as for [`CommandBody::SetAcl`]).
        identifier: String,
    },
    /// `GETACL mailbox` (RFC 4314 §3.3).
    GetAcl(WireMailboxName),
    /// `LISTRIGHTS mailbox identifier` (RFC 4314 §3.4).
    ListRights {
        /// The mailbox asked about.
        mailbox: WireMailboxName,
        /// The identifier asked about, echoed verbatim in the response (§3.4).
        identifier: String,
    },
    /// `MYRIGHTS mailbox` (RFC 4314 §3.5).
    MyRights(WireMailboxName),
    /// `GETQUOTA quota-root` (RFC 9208 §4.1.1): the root's name (astring as UTF-8).
    GetQuota(String),
    /// `GETQUOTAROOT mailbox` (RFC 9208 §4.1.2); the mailbox need not exist.
    GetQuotaRoot(WireMailboxName),
    /// `SETQUOTA quota-root (resource limit ...)` (RFC 9208 §4.1.3).
    SetQuota {
        /// The quota root's name (astring as UTF-8).
        root: String,
        /// (resource name uppercased, limit) in the order sent; may be empty (removes all
        /// limits). Duplicates are kept for the session to judge.
        limits: Vec<(String, u64)>,
    },
    /// `GETMETADATA [(options)] mailbox entries` (RFC 5464 §4.2); the empty mailbox name means
    /// the server's entries.
    GetMetadata {
        /// The mailbox, or `""` for server entries.
        mailbox: WireMailboxName,
        /// `MAXSIZE n` (§4.2.1): only values of at most this many octets are returned.
        max_size: Option<u32>,
        /// `DEPTH` (§4.2.2); `DEPTH 0` when absent.
        depth: MetadataDepth,
        /// The entry names asked for, checked ([`metadata_entry`]) and lowercased; never empty.
        entries: Vec<String>,
    },
    /// `ESEARCH [IN (sources)] [RETURN (...)] [CHARSET x] keys` (RFC 7377 §2, MULTISEARCH):
    /// a UID search over several mailboxes.
    ESearch {
        /// The mailboxes to search; empty when `IN` is absent (the selected one, §2.2).
        sources: Vec<SearchSource>,
        /// `RETURN (...)`: `None` if absent, `Some(empty)` for `RETURN ()`.
        return_opts: Option<Vec<SearchReturn>>,
        /// `CHARSET x` if given.
        charset: Option<String>,
        /// The criteria, implicitly ANDed; never empty.
        criteria: Vec<SearchKey>,
    },
    /// `CANCELUPDATE "tag" ...` (RFC 5267 §4.3.5): no more updates for these searches.
    CancelUpdate(Vec<String>),
    /// `NOTIFY SET [STATUS] event-groups` or `NOTIFY NONE` (RFC 5465 §3.1).
    Notify(Notify),
    /// `SETMETADATA mailbox (entry value ...)` (RFC 5464 §4.3).
    SetMetadata {
        /// The mailbox, or `""` for server entries.
        mailbox: WireMailboxName,
        /// (entry name checked and lowercased, value); `None` (NIL) removes the entry. Never
        /// empty; in the order sent.
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// `GENURLAUTH url-rump mechanism ...` (RFC 4467 §7.1): (URL rump, mechanism uppercased)
    /// pairs, at most [`MAX_URLAUTH_URLS`].
    GenUrlAuth(Vec<(String, String)>),
    /// `RESETKEY [mailbox *(SP mechanism)]` (RFC 4467 §7.2): all the user's keys, or the
    /// mailbox's for the mechanisms named (uppercased; none: all).
    ResetKey {
        /// The mailbox; `None`: every mailbox.
        mailbox: Option<WireMailboxName>,
        /// Mechanisms to reset.
        mechanisms: Vec<String>,
    },
    /// `URLFETCH url ...` (RFC 4467 §7.3), each URL alone or with the fetch parameters of
    /// URLAUTH=BINARY (RFC 5524 §4): at most [`MAX_URLAUTH_URLS`] URLs, as sent.
    UrlFetch(Vec<UrlFetchArg>),
    /// `UIDBATCHES batch-size [SP batch-range]` (RFC 10022 §3): the UID ranges that split the
    /// selected mailbox into batches of `size` messages, newest first.
    UidBatches {
        /// Messages per batch, as sent (the session refuses sizes below its minimum).
        size: NonZeroU32,
        /// `first:last` batch numbers (1 is the newest batch), as sent: `first > last` is the
        /// session's to refuse (BAD with CLIENTBUG).
        range: Option<(NonZeroU32, NonZeroU32)>,
    },
}

/// One URL of URLFETCH: `url` alone (RFC 4467) or `(url param ...)` (RFC 5524 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlFetchArg {
    /// The URL, as sent.
    pub url: String,
    /// `None` for the plain form, answered `url nstring`; `Some` for the parenthesised one,
    /// answered `url (item) ...`.
    pub params: Option<UrlFetchParams>,
}

/// The fetch parameters of one parenthesised URLFETCH URL (RFC 5524 §3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlFetchParams {
    /// `BODYPARTSTRUCTURE`: the structure of the part the URL names.
    pub body_part_structure: bool,
    /// `BODY` or `BINARY`: the part's data as sent, or with its transfer encoding removed.
    /// `None` when only BODYPARTSTRUCTURE was asked for.
    pub data: Option<UrlFetchData>,
}

/// Which data of a URL URLFETCH returns (RFC 5524 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlFetchData {
    /// `BODY`: the bytes as RFC 4467's URLFETCH returns them.
    Body,
    /// `BINARY`: the bytes with the Content-Transfer-Encoding removed, as FETCH BINARY.
    Binary,
}

/// Most URLs one GENURLAUTH or URLFETCH may carry (each is a key lookup and a store read).
pub const MAX_URLAUTH_URLS: usize = 64;

/// A mailbox specifier of ESEARCH's `IN` (RFC 7377 §2.2: RFC 5465 §6 `filter-mailboxes`, with
/// `subtree-one` and without `selected-delayed`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SearchSource {
    /// `selected`: the selected mailbox.
    Selected,
    /// `inboxes`: the personal mailboxes mail is delivered to.
    Inboxes,
    /// `personal`: every mailbox of the personal namespace.
    Personal,
    /// `subscribed`: every subscribed mailbox.
    Subscribed,
    /// `subtree names`: these mailboxes and all below them.
    Subtree(Vec<WireMailboxName>),
    /// `subtree-one names`: these mailboxes and their children.
    SubtreeOne(Vec<WireMailboxName>),
    /// `mailboxes names`: exactly these (no wildcards).
    Mailboxes(Vec<WireMailboxName>),
}

/// The argument of NOTIFY (RFC 5465 §8 `notify = "NOTIFY" SP (notify-set / notify-none)`).
/// Only the syntax is checked here; the rules of §3.1 and §5 (which events go together, where a
/// fetch-att list may stand) are the session's, which answers them BAD or NO [BADEVENT].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notify {
    /// `NONE`: no more notifications.
    None,
    /// `SET [STATUS] event-groups`: replaces the events asked for.
    Set {
        /// `STATUS` given: a STATUS response for every watched mailbox before the tagged OK.
        status: bool,
        /// The event groups in the order sent; never empty.
        groups: Vec<NotifyGroup>,
    },
}

/// `event-group = "(" filter-mailboxes SP events ")"` (RFC 5465 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyGroup {
    /// The mailboxes the events are asked for.
    pub filter: NotifyFilter,
    /// The events; empty for `NONE`.
    pub events: Vec<NotifyEvent>,
}

/// `filter-mailboxes` of NOTIFY (RFC 5465 §6, §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    /// `selected`: the selected mailbox, notified at once.
    Selected,
    /// `selected-delayed`: the selected mailbox, expunges held back until a command may carry
    /// them (§6.1.2).
    SelectedDelayed,
    /// `inboxes`: the personal mailboxes mail is delivered to.
    Inboxes,
    /// `personal`: every mailbox of the personal namespace.
    Personal,
    /// `subscribed`: every subscribed mailbox.
    Subscribed,
    /// `subtree names`: these mailboxes and every one below them.
    Subtree(Vec<WireMailboxName>),
    /// `mailboxes names`: exactly these (no wildcards, §6.6).
    Mailboxes(Vec<WireMailboxName>),
}

/// `event` of NOTIFY (RFC 5465 §5, §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// `MessageNew [SP "(" fetch-att *(SP fetch-att) ")"]`.
    MessageNew(Option<Vec<FetchAttribute>>),
    /// `MessageExpunge`.
    MessageExpunge,
    /// `FlagChange`.
    FlagChange,
    /// `AnnotationChange` (message annotations, RFC 5257).
    AnnotationChange,
    /// `MailboxName`: created, deleted, renamed.
    MailboxName,
    /// `SubscriptionChange`.
    SubscriptionChange,
    /// `MailboxMetadataChange` (RFC 5464 entries of a mailbox).
    MailboxMetadataChange,
    /// `ServerMetadataChange` (RFC 5464 server entries).
    ServerMetadataChange,
    /// `event-ext = atom`: an event this parser does not know, as sent.
    Other(String),
}

impl NotifyEvent {
    /// The event's name as RFC 5465 §8 writes it.
    pub fn name(&self) -> &str {
        match self {
            NotifyEvent::MessageNew(_) => "MessageNew",
            NotifyEvent::MessageExpunge => "MessageExpunge",
            NotifyEvent::FlagChange => "FlagChange",
            NotifyEvent::AnnotationChange => "AnnotationChange",
            NotifyEvent::MailboxName => "MailboxName",
            NotifyEvent::SubscriptionChange => "SubscriptionChange",
            NotifyEvent::MailboxMetadataChange => "MailboxMetadataChange",
            NotifyEvent::ServerMetadataChange => "ServerMetadataChange",
            NotifyEvent::Other(name) => name,
        }
    }

    /// True for a `message-event` (MessageNew, MessageExpunge, FlagChange, AnnotationChange).
    pub fn is_message_event(&self) -> bool {
        matches!(
            self,
            NotifyEvent::MessageNew(_)
                | NotifyEvent::MessageExpunge
                | NotifyEvent::FlagChange
                | NotifyEvent::AnnotationChange
        )
    }
}

/// How far below each named entry GETMETADATA reaches (RFC 5464 §4.2.2 `scope-opt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetadataDepth {
    /// `DEPTH 0`: the entry itself (the default).
    #[default]
    Zero,
    /// `DEPTH 1`: the entry and its children.
    One,
    /// `DEPTH infinity`: the entry and everything below it.
    Infinity,
}

/// Longest metadata entry name accepted, in octets: names are paths of a few short components
/// (RFC 5464 §3.2); a bound keeps hostile ones from filling the store's keys.
pub const MAX_METADATA_ENTRY: usize = 1024;

/// What an entry name is used for: SETMETADATA names an entry; GETMETADATA may also name the
/// top of a tree (`/shared`, `/private`) to read with DEPTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryUse {
    /// GETMETADATA's entry specifiers.
    Get,
    /// SETMETADATA's entries.
    Set,
}

/// Checks a metadata entry name (RFC 5464 §3.2) and returns it lowercased (names are
/// case-insensitive). The rules: a `/`-separated path starting with `/private` or `/shared`,
/// at least two components (one for [`EntryUse::Get`]), and at least four under `vendor`
/// (`/shared/vendor/<vendor-token>/...`) when set; no `//`, no trailing `/`, no `*` or `%`,
/// printable ASCII only; at most [`MAX_METADATA_ENTRY`] octets. The error says what is wrong;
/// the session answers it with BAD.
pub fn metadata_entry(raw: &[u8], usage: EntryUse) -> Result<String, &'static str> {
    if raw.len() > MAX_METADATA_ENTRY {
        return Err("metadata entry name too long");
    }
    if !raw.iter().all(|b| matches!(b, 0x20..=0x7e) && !matches!(b, b'*' | b'%')) {
        return Err("metadata entry names are printable ASCII without '*' or '%'");
    }
    let Some(path) = raw.strip_prefix(b"/") else {
        return Err("a metadata entry name starts with '/'");
    };
    let lower = raw.to_ascii_lowercase();
    let components: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    if components.iter().any(|c| c.is_empty()) {
        return Err("a metadata entry name has no empty component (no '//', no trailing '/')");
    }
    let first = components[0].to_ascii_lowercase();
    if first != b"private" && first != b"shared" {
        return Err("a metadata entry name starts with /private or /shared");
    }
    let least = match usage {
        EntryUse::Get => 1,
        EntryUse::Set if components.get(1).is_some_and(|c| c.eq_ignore_ascii_case(b"vendor")) => 4,
        EntryUse::Set => 2,
    };
    if components.len() < least {
        return Err("too few components in the metadata entry name");
    }
    // Printable ASCII, so this cannot fail.
    String::from_utf8(lower).map_err(|_| "metadata entry names are ASCII")
}

/// A SORT key (RFC 5256 §3 `sort-key`, RFC 5957).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// `ARRIVAL`
    Arrival,
    /// `CC`
    Cc,
    /// `DATE`
    Date,
    /// `FROM`
    From,
    /// `SIZE`
    Size,
    /// `SUBJECT`
    Subject,
    /// `TO`
    To,
    /// `DISPLAYFROM` (RFC 5957)
    DisplayFrom,
    /// `DISPLAYTO` (RFC 5957)
    DisplayTo,
}

/// `sort-criterion = ["REVERSE" SP] sort-key` (RFC 5256 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortCriterion {
    /// `REVERSE` was given.
    pub reverse: bool,
    /// The key.
    pub key: SortKey,
}

/// A threading algorithm (RFC 5256 §3 `thread-alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreadAlgorithm {
    /// `ORDEREDSUBJECT`
    OrderedSubject,
    /// `REFERENCES`
    References,
}

impl CommandBody {
    /// The command name as a client would write it (uppercase), for logs and responses
    /// such as "FETCH completed".
    pub fn name(&self) -> &'static str {
        match self {
            CommandBody::Capability => "CAPABILITY",
            CommandBody::Noop => "NOOP",
            CommandBody::Logout => "LOGOUT",
            CommandBody::StartTls => "STARTTLS",
            CommandBody::Authenticate { .. } => "AUTHENTICATE",
            CommandBody::Login { .. } => "LOGIN",
            CommandBody::Enable(_) => "ENABLE",
            CommandBody::Select { .. } => "SELECT",
            CommandBody::Examine { .. } => "EXAMINE",
            CommandBody::Create { .. } => "CREATE",
            CommandBody::Delete(_) => "DELETE",
            CommandBody::Rename { .. } => "RENAME",
            CommandBody::Subscribe(_) => "SUBSCRIBE",
            CommandBody::Unsubscribe(_) => "UNSUBSCRIBE",
            CommandBody::List(_) => "LIST",
            CommandBody::Lsub { .. } => "LSUB",
            CommandBody::Namespace => "NAMESPACE",
            CommandBody::Status { .. } => "STATUS",
            CommandBody::Append { .. } => "APPEND",
            CommandBody::Idle => "IDLE",
            CommandBody::Check => "CHECK",
            CommandBody::Close => "CLOSE",
            CommandBody::Unselect => "UNSELECT",
            CommandBody::Expunge { uids: None } => "EXPUNGE",
            CommandBody::Expunge { uids: Some(_) } => "UID EXPUNGE",
            CommandBody::Search { kind, .. } => uid_name(*kind, "SEARCH", "UID SEARCH"),
            CommandBody::Fetch { kind, .. } => uid_name(*kind, "FETCH", "UID FETCH"),
            CommandBody::Store { kind, .. } => uid_name(*kind, "STORE", "UID STORE"),
            CommandBody::Copy { kind, .. } => uid_name(*kind, "COPY", "UID COPY"),
            CommandBody::Move { kind, .. } => uid_name(*kind, "MOVE", "UID MOVE"),
            CommandBody::Replace { kind, .. } => uid_name(*kind, "REPLACE", "UID REPLACE"),
            CommandBody::Unauthenticate => "UNAUTHENTICATE",
            CommandBody::Compress(_) => "COMPRESS",
            CommandBody::Id(_) => "ID",
            CommandBody::Sort { kind, .. } => uid_name(*kind, "SORT", "UID SORT"),
            CommandBody::Thread { kind, .. } => uid_name(*kind, "THREAD", "UID THREAD"),
            CommandBody::SetAcl { .. } => "SETACL",
            CommandBody::DeleteAcl { .. } => "DELETEACL",
            CommandBody::GetAcl(_) => "GETACL",
            CommandBody::ListRights { .. } => "LISTRIGHTS",
            CommandBody::MyRights(_) => "MYRIGHTS",
            CommandBody::GetQuota(_) => "GETQUOTA",
            CommandBody::GetQuotaRoot(_) => "GETQUOTAROOT",
            CommandBody::SetQuota { .. } => "SETQUOTA",
            CommandBody::GetMetadata { .. } => "GETMETADATA",
            CommandBody::SetMetadata { .. } => "SETMETADATA",
            CommandBody::CancelUpdate(_) => "CANCELUPDATE",
            CommandBody::ESearch { .. } => "ESEARCH",
            CommandBody::Notify(_) => "NOTIFY",
            CommandBody::GenUrlAuth(_) => "GENURLAUTH",
            CommandBody::ResetKey { .. } => "RESETKEY",
            CommandBody::UrlFetch(_) => "URLFETCH",
            CommandBody::UidBatches { .. } => "UIDBATCHES",
        }
    }
}

fn uid_name(kind: CommandKind, seq: &'static str, uid: &'static str) -> &'static str {
    match kind {
        CommandKind::Seq => seq,
        CommandKind::Uid => uid,
    }
}

/// Errors from [`WireMailboxName::decode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxNameError {
    /// Modified UTF-7 is malformed (RFC 3501 §5.1.3).
    #[error("invalid modified UTF-7 in mailbox name")]
    InvalidUtf7,
    /// The name is not valid UTF-8 (IMAP4rev2 / UTF8=ACCEPT).
    #[error("mailbox name is not valid UTF-8")]
    InvalidUtf8,
    /// The name contains a control character.
    #[error("mailbox name contains a control character")]
    ControlChar,
}

/// A mailbox name exactly as the client sent it (the `astring` bytes of RFC 9051 §9 `mailbox`).
///
/// Only the wire form: [`WireMailboxName::decode`] turns it into Unicode, and the session then
/// builds the store's `MailboxName` from that, which is where the rules of a name (length,
/// depth, hierarchy levels) are checked, once. Named `Wire…` so the two never get confused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WireMailboxName(Vec<u8>);

/// The hierarchy delimiter Postfach uses.
pub const DELIMITER: char = '/';

impl WireMailboxName {
    /// Wraps raw name bytes.
    pub fn new(raw: impl Into<Vec<u8>>) -> WireMailboxName {
        WireMailboxName(raw.into())
    }

    /// The bytes as sent.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Decodes to a Unicode name. With `utf8_mode` false (IMAP4rev1) the bytes are modified
    /// UTF-7 (RFC 3501 §5.1.3); with true (IMAP4rev2, UTF8=ACCEPT) they are UTF-8 taken as is.
    ///
    /// "INBOX" in any case, alone or as the first hierarchy level, becomes "INBOX"
    /// (RFC 9051 §5.1: INBOX is case-insensitive). Control characters are rejected.
    pub fn decode(&self, utf8_mode: bool) -> Result<String, MailboxNameError> {
        let s = decode_name(&self.0, utf8_mode)?;
        Ok(normalize_inbox(s))
    }
}

fn decode_name(raw: &[u8], utf8_mode: bool) -> Result<String, MailboxNameError> {
    let s = if utf8_mode {
        // RFC 9051 §5.1: names are UTF-8; a client may still send mUTF-7 and get it literally.
        String::from_utf8(raw.to_vec()).map_err(|_| MailboxNameError::InvalidUtf8)?
    } else {
        crate::mutf7::decode(raw).map_err(|_| MailboxNameError::InvalidUtf7)?
    };
    if s.chars().any(char::is_control) {
        return Err(MailboxNameError::ControlChar);
    }
    Ok(s)
}

/// Rewrites a leading "inbox" (any case) followed by end or delimiter to "INBOX".
pub(crate) fn normalize_inbox(mut s: String) -> String {
    let is_inbox = s.len() >= 5
        && s.as_bytes()[..5].eq_ignore_ascii_case(b"INBOX")
        && (s.len() == 5 || s.as_bytes()[5] == b'/');
    if is_inbox {
        s.replace_range(..5, "INBOX");
    }
    s
}

/// A LIST/LSUB pattern as sent: `list-mailbox` bytes, wildcards `*` and `%` included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListPattern(Vec<u8>);

impl ListPattern {
    /// Wraps raw pattern bytes.
    pub fn new(raw: impl Into<Vec<u8>>) -> ListPattern {
        ListPattern(raw.into())
    }

    /// The bytes as sent.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Decodes like [`WireMailboxName::decode`] (mUTF-7 or UTF-8, leading "inbox" uppercased);
    /// the wildcards stay as they are. Case-insensitive matching of INBOX against a pattern
    /// like "inb*" is the session's job.
    pub fn decode(&self, utf8_mode: bool) -> Result<String, MailboxNameError> {
        let s = decode_name(&self.0, utf8_mode)?;
        Ok(normalize_inbox(s))
    }
}

/// A RFC 6154 special-use attribute, as named in `CREATE ... (USE (...))` and LIST responses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    /// `\All`
    All,
    /// `\Archive`
    Archive,
    /// `\Drafts`
    Drafts,
    /// `\Flagged`
    Flagged,
    /// `\Junk`
    Junk,
    /// `\Sent`
    Sent,
    /// `\Trash`
    Trash,
    /// Any other `\Name` (without the backslash); the session answers `NO [USEATTR]`.
    Other(String),
}

impl SpecialUse {
    /// Recognises a name without its backslash, case-insensitively.
    pub fn from_name(name: &str) -> SpecialUse {
        const KNOWN: [(&str, SpecialUse); 7] = [
            ("ALL", SpecialUse::All),
            ("ARCHIVE", SpecialUse::Archive),
            ("DRAFTS", SpecialUse::Drafts),
            ("FLAGGED", SpecialUse::Flagged),
            ("JUNK", SpecialUse::Junk),
            ("SENT", SpecialUse::Sent),
            ("TRASH", SpecialUse::Trash),
        ];
        KNOWN
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| SpecialUse::Other(name.to_string()))
    }

    /// The name without backslash, canonical case.
    pub fn name(&self) -> &str {
        match self {
            SpecialUse::All => "All",
            SpecialUse::Archive => "Archive",
            SpecialUse::Drafts => "Drafts",
            SpecialUse::Flagged => "Flagged",
            SpecialUse::Junk => "Junk",
            SpecialUse::Sent => "Sent",
            SpecialUse::Trash => "Trash",
            SpecialUse::Other(s) => s,
        }
    }
}

impl fmt::Display for SpecialUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\\{}", self.name())
    }
}

/// A message flag (RFC 9051 §2.3.2). System flags compare case-insensitively at parse time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
    /// `\Recent` (IMAP4rev1; only valid in FETCH/SEARCH responses, never stored by clients).
    Recent,
    /// A keyword (an atom such as `$Forwarded` or `NonJunk`), as sent.
    Keyword(String),
    /// Another `\Name` flag extension, stored without the backslash.
    Extension(String),
}

impl Flag {
    /// Parses a flag's text (`\Seen`, `$Junk`, ...). Returns an error if it is not an atom or
    /// `\` + atom.
    pub fn parse(s: &str) -> Result<Flag, InvalidValue> {
        if let Some(name) = s.strip_prefix('\\') {
            if name.is_empty() || !name.bytes().all(is_atom_char) {
                return Err(InvalidValue::Atom);
            }
            return Ok(Flag::system(name));
        }
        if s.is_empty() || !s.bytes().all(is_atom_char) {
            return Err(InvalidValue::Atom);
        }
        Ok(Flag::Keyword(s.to_string()))
    }

    /// Maps `\name` (without backslash) to a system flag, else an extension.
    pub(crate) fn system(name: &str) -> Flag {
        match name.to_ascii_uppercase().as_str() {
            "SEEN" => Flag::Seen,
            "ANSWERED" => Flag::Answered,
            "FLAGGED" => Flag::Flagged,
            "DELETED" => Flag::Deleted,
            "DRAFT" => Flag::Draft,
            "RECENT" => Flag::Recent,
            _ => Flag::Extension(name.to_string()),
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::Seen => f.write_str("\\Seen"),
            Flag::Answered => f.write_str("\\Answered"),
            Flag::Flagged => f.write_str("\\Flagged"),
            Flag::Deleted => f.write_str("\\Deleted"),
            Flag::Draft => f.write_str("\\Draft"),
            Flag::Recent => f.write_str("\\Recent"),
            Flag::Keyword(k) => f.write_str(k),
            Flag::Extension(e) => write!(f, "\\{e}"),
        }
    }
}

/// SELECT/EXAMINE parameters (RFC 4466 §2.1, RFC 7162 §3.1.8 CONDSTORE, §3.2.5 QRESYNC).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SelectParams {
    /// `CONDSTORE` was given.
    pub condstore: bool,
    /// `QRESYNC (...)` was given.
    pub qresync: Option<QresyncParams>,
}

/// The QRESYNC select parameter (RFC 7162 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParams {
    /// The client's last known UIDVALIDITY.
    pub uidvalidity: NonZeroU32,
    /// The client's last known HIGHESTMODSEQ.
    pub modseq: NonZeroU64,
    /// Optional set of UIDs the client knows.
    pub known_uids: Option<SequenceSet>,
    /// Optional (known sequence numbers, corresponding UIDs).
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// A STATUS data item (RFC 9051 §6.3.11, RFC 7162, RFC 7889, RFC 8474, RFC 9208 §4.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    /// `MESSAGES`
    Messages,
    /// `UIDNEXT`
    UidNext,
    /// `UIDVALIDITY`
    UidValidity,
    /// `UNSEEN`
    Unseen,
    /// `DELETED`
    Deleted,
    /// `SIZE`
    Size,
    /// `RECENT` (IMAP4rev1)
    Recent,
    /// `HIGHESTMODSEQ` (RFC 7162)
    HighestModSeq,
    /// `APPENDLIMIT` (RFC 7889)
    AppendLimit,
    /// `MAILBOXID` (RFC 8474)
    MailboxId,
    /// `DELETED-STORAGE` (RFC 9208 §4.1.4): storage an EXPUNGE would free, a `number64`.
    DeletedStorage,
}

impl StatusItem {
    /// The item name as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Deleted => "DELETED",
            StatusItem::Size => "SIZE",
            StatusItem::Recent => "RECENT",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
            StatusItem::AppendLimit => "APPENDLIMIT",
            StatusItem::MailboxId => "MAILBOXID",
            StatusItem::DeletedStorage => "DELETED-STORAGE",
        }
    }

    /// Recognises an item name, case-insensitively.
    pub fn from_name(name: &[u8]) -> Option<StatusItem> {
        const ALL: [StatusItem; 11] = [
            StatusItem::Messages,
            StatusItem::UidNext,
            StatusItem::UidValidity,
            StatusItem::Unseen,
            StatusItem::Deleted,
            StatusItem::Size,
            StatusItem::Recent,
            StatusItem::HighestModSeq,
            StatusItem::AppendLimit,
            StatusItem::MailboxId,
            StatusItem::DeletedStorage,
        ];
        ALL.into_iter().find(|i| i.as_str().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// One message of an APPEND (RFC 9051 §6.3.12; several with MULTIAPPEND, RFC 3502).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Flags to set on the new message.
    pub flags: Vec<Flag>,
    /// Internal date to use instead of "now".
    pub date: Option<DateTime>,
    /// The message: one literal, or parts to join (CATENATE, RFC 4469).
    pub data: AppendData,
    /// Sent as `literal8` (`~{n}`, RFC 3516 BINARY): may contain NUL and needs no CTE. With
    /// CATENATE: some `TEXT` part was.
    pub binary: bool,
}

/// Most parts one CATENATE message may have (RFC 4469 sets none; each URL part is a store
/// read, so a command's work is bounded by this and the framer's literal and text limits).
pub const MAX_CATENATE_PARTS: usize = 256;

/// What an APPEND message is made of (RFC 4466 §2.1.1 `append-data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendData {
    /// `literal` / `literal8` / `utf8-literal`: the message bytes, a slice of the framed
    /// command when parsed with [`crate::parse_command_bytes`], so the literal is held once
    /// from framer to store.
    Literal(bytes::Bytes),
    /// `"CATENATE" SP "(" cat-part *(SP cat-part) ")"` (RFC 4469 §5): at least one part, at
    /// most [`MAX_CATENATE_PARTS`].
    Catenate(Vec<CatPart>),
}

impl AppendData {
    /// The literal, unless the message is to be catenated.
    pub fn literal(&self) -> Option<&bytes::Bytes> {
        match self {
            AppendData::Literal(b) => Some(b),
            AppendData::Catenate(_) => None,
        }
    }
}

/// One part of a CATENATE message (RFC 4469 §5 `cat-part`, RFC 6855 §4 `utf8-literal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `"TEXT" SP literal` (also `literal8`, and `"UTF8" SP "(" literal8 ")"`): bytes as sent,
    /// a slice of the framed command like [`AppendData::Literal`].
    Text(bytes::Bytes),
    /// `"URL" SP astring`: an IMAP URL (RFC 5092) of a message or part to copy in, as sent.
    Url(String),
}

/// Selection options of an extended LIST (RFC 5258 §3, RFC 6154 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListSelectOption {
    /// `SUBSCRIBED`
    Subscribed,
    /// `REMOTE`
    Remote,
    /// `RECURSIVEMATCH`
    RecursiveMatch,
    /// `SPECIAL-USE`
    SpecialUse,
}

/// Return options of an extended LIST (RFC 5258 §3, RFC 6154 §4, RFC 5819 LIST-STATUS,
/// RFC 8440 LIST-MYRIGHTS).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListReturnOption {
    /// `SUBSCRIBED`
    Subscribed,
    /// `CHILDREN`
    Children,
    /// `SPECIAL-USE`
    SpecialUse,
    /// `STATUS (items)` (RFC 5819).
    Status(Vec<StatusItem>),
    /// `MYRIGHTS` (RFC 8440 §3): an untagged MYRIGHTS response after each matching LIST
    /// response (there is no LIST extended data item for it).
    MyRights,
}

/// A LIST command, basic or extended (RFC 9051 §6.3.9, RFC 5258).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCommand {
    /// Selection options; empty for basic LIST.
    pub selection: Vec<ListSelectOption>,
    /// Reference name.
    pub reference: WireMailboxName,
    /// One or more patterns (RFC 5258 allows a parenthesised list).
    pub patterns: Vec<ListPattern>,
    /// Return options; empty if `RETURN` was absent.
    pub return_opts: Vec<ListReturnOption>,
}

/// An ESEARCH return option (RFC 4731 §3.1, RFC 5182 SAVE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchReturn {
    /// `MIN`
    Min,
    /// `MAX`
    Max,
    /// `ALL`
    All,
    /// `COUNT`
    Count,
    /// `SAVE` (RFC 5182)
    Save,
    /// `PARTIAL range` (RFC 9394 §3.1): only the results at these positions.
    Partial(PartialRange),
    /// `CONTEXT` (RFC 5267 §4.2): a hint that the criteria will be used again.
    Context,
    /// `UPDATE` (RFC 5267 §4.3): report changes of the result as ADDTO and REMOVEFROM while
    /// the mailbox stays selected.
    Update,
}

impl SearchReturn {
    /// True for the options that ask for result data (MIN, MAX, ALL, COUNT, SAVE, PARTIAL);
    /// CONTEXT and UPDATE ask for none.
    pub fn is_result(self) -> bool {
        !matches!(self, SearchReturn::Context | SearchReturn::Update)
    }
}

/// A `partial-range` (RFC 9394 §4): positions in a result list counted from its first item
/// (`1:500`) or from its last (`-1:-100`), as the client wrote them (`500:400` is the same as
/// `400:500`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartialRange {
    /// Counted from the end (`-n:-m`).
    pub from_end: bool,
    /// The first number written.
    pub first: NonZeroU32,
    /// The second number written.
    pub last: NonZeroU32,
}

impl PartialRange {
    /// The positions (0-based, half-open) this range selects in a list of `len` items; empty
    /// when the range lies wholly outside it.
    pub fn select(&self, len: usize) -> std::ops::Range<usize> {
        let (low, high) = (self.first.get().min(self.last.get()), self.first.get().max(self.last.get()));
        let (low, high) = (low as usize, high as usize);
        if self.from_end {
            // -1 is the last item: positions len-high ..= len-low.
            let end = len.saturating_sub(low - 1);
            let start = len.saturating_sub(high);
            start..end
        } else {
            let start = (low - 1).min(len);
            let end = high.min(len);
            start..end
        }
    }
}

impl fmt::Display for PartialRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let minus = if self.from_end { "-" } else { "" };
        write!(f, "{minus}{}:{minus}{}", self.first, self.last)
    }
}

/// Which metadata item a MODSEQ search names (RFC 7162 §3.1.5 `entry-type-req`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryType {
    /// `priv`
    Private,
    /// `shared`
    Shared,
    /// `all`
    All,
}

/// A search criterion (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 7162, RFC 5032, RFC 5182).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// `ALL`
    All,
    /// `ANSWERED`
    Answered,
    /// `BCC string`
    Bcc(Vec<u8>),
    /// `BEFORE date`
    Before(Date),
    /// `BODY string`
    Body(Vec<u8>),
    /// `CC string`
    Cc(Vec<u8>),
    /// `DELETED`
    Deleted,
    /// `DRAFT`
    Draft,
    /// `FLAGGED`
    Flagged,
    /// `FROM string`
    From(Vec<u8>),
    /// `HEADER field-name string`
    Header(Vec<u8>, Vec<u8>),
    /// `KEYWORD flag`
    Keyword(Flag),
    /// `LARGER n`
    Larger(u64),
    /// `NEW` (IMAP4rev1: RECENT and UNSEEN)
    New,
    /// `NOT key`
    Not(Box<SearchKey>),
    /// `OLD` (IMAP4rev1)
    Old,
    /// `ON date`
    On(Date),
    /// `OR key1 key2`
    Or(Box<SearchKey>, Box<SearchKey>),
    /// `RECENT` (IMAP4rev1)
    Recent,
    /// `SEEN`
    Seen,
    /// `SENTBEFORE date`
    SentBefore(Date),
    /// `SENTON date`
    SentOn(Date),
    /// `SENTSINCE date`
    SentSince(Date),
    /// `SINCE date`
    Since(Date),
    /// `SMALLER n`
    Smaller(u64),
    /// `SUBJECT string`
    Subject(Vec<u8>),
    /// `TEXT string`
    Text(Vec<u8>),
    /// `TO string`
    To(Vec<u8>),
    /// `UID set`
    Uid(SequenceSet),
    /// `UNANSWERED`
    Unanswered,
    /// `UNDELETED`
    Undeleted,
    /// `UNDRAFT`
    Undraft,
    /// `UNFLAGGED`
    Unflagged,
    /// `UNKEYWORD flag`
    Unkeyword(Flag),
    /// `UNSEEN`
    Unseen,
    /// A bare sequence set (message numbers), including `$`.
    SequenceSet(SequenceSet),
    /// `( key key ... )`: all must match.
    And(Vec<SearchKey>),
    /// `MODSEQ [entry-name entry-type] n` (RFC 7162 §3.1.5).
    ModSeq {
        /// Optional `"/flags/\\seen" priv` part; the session may ignore it.
        entry: Option<(Vec<u8>, EntryType)>,
        /// Match messages with mod-sequence >= this.
        modseq: u64,
    },
    /// `OLDER seconds` (RFC 5032).
    Older(NonZeroU32),
    /// `SAVEDBEFORE date` (RFC 8514 §4.3): saved in the mailbox before this day.
    SavedBefore(Date),
    /// `SAVEDON date` (RFC 8514 §4.3).
    SavedOn(Date),
    /// `SAVEDSINCE date` (RFC 8514 §4.3).
    SavedSince(Date),
    /// `SAVEDATESUPPORTED` (RFC 8514 §4.3): every message of a mailbox that keeps save dates.
    SaveDateSupported,
    /// `EMAILID objectid` (RFC 8474 §6).
    EmailId(String),
    /// `THREADID objectid` (RFC 8474 §6).
    ThreadId(String),
    /// `YOUNGER seconds` (RFC 5032).
    Younger(NonZeroU32),
}

/// The text part of a section specifier (RFC 9051 §9 `section-msgtext` / `section-text`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SectionText {
    /// `HEADER`
    Header,
    /// `HEADER.FIELDS (names)`
    HeaderFields(Vec<String>),
    /// `HEADER.FIELDS.NOT (names)`
    HeaderFieldsNot(Vec<String>),
    /// `TEXT`
    Text,
    /// `MIME` (only after part numbers)
    Mime,
}

/// A body section `[1.2.HEADER]` as requested (RFC 9051 §9 `section-spec`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Section {
    /// Part numbers, e.g. `1.2.3` → `[1, 2, 3]`; empty means the whole message.
    pub part: Vec<NonZeroU32>,
    /// What of the part; `None` means the whole part (or message).
    pub text: Option<SectionText>,
}

/// A byte range `<offset.length>` of a fetched section (RFC 9051 §6.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partial {
    /// First octet (0-based).
    pub offset: u32,
    /// Number of octets; the response may be shorter.
    pub length: NonZeroU32,
}

/// A single FETCH data item (RFC 9051 §6.4.5 and extensions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FetchAttribute {
    /// `FLAGS`
    Flags,
    /// `UID`
    Uid,
    /// `INTERNALDATE`
    InternalDate,
    /// `RFC822.SIZE`
    Rfc822Size,
    /// `RFC822` (IMAP4rev1; like `BODY[]`)
    Rfc822,
    /// `RFC822.HEADER` (IMAP4rev1; like `BODY.PEEK[HEADER]`)
    Rfc822Header,
    /// `RFC822.TEXT` (IMAP4rev1; like `BODY[TEXT]`)
    Rfc822Text,
    /// `ENVELOPE`
    Envelope,
    /// `BODY` (structure without extension data)
    Body,
    /// `BODYSTRUCTURE`
    BodyStructure,
    /// `BODY[section]<partial>` or `BODY.PEEK[...]`.
    BodySection {
        /// `.PEEK`: do not set `\Seen`.
        peek: bool,
        /// The section requested.
        section: Section,
        /// `<offset.length>`.
        partial: Option<Partial>,
    },
    /// `BINARY[part]<partial>` or `BINARY.PEEK[...]` (RFC 3516, RFC 9051).
    ///
    /// RFC 3516's `section-binary` has part numbers only; like Dovecot we also take the
    /// `HEADER`, `HEADER.FIELDS`, `TEXT` and `MIME` forms of `section`, served as BODY[] serves
    /// them (header fields and the body of a multipart or message are never transfer-encoded).
    Binary {
        /// `.PEEK`: do not set `\Seen`.
        peek: bool,
        /// The section: part numbers (empty for the whole message), rarely a section text.
        section: Section,
        /// `<offset.length>`.
        partial: Option<Partial>,
    },
    /// `BINARY.SIZE[section]`.
    BinarySize {
        /// As for [`FetchAttribute::Binary`].
        section: Section,
    },
    /// `MODSEQ` (RFC 7162)
    ModSeq,
    /// `EMAILID` (RFC 8474)
    EmailId,
    /// `THREADID` (RFC 8474)
    ThreadId,
    /// `SAVEDATE` (RFC 8514)
    SaveDate,
    /// `PREVIEW` or `PREVIEW (LAZY)` (RFC 8970).
    Preview {
        /// `LAZY` modifier given.
        lazy: bool,
    },
}

/// The FETCH item list, with macros kept so the session can tell what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItems {
    /// `ALL` = FLAGS INTERNALDATE RFC822.SIZE ENVELOPE
    All,
    /// `FAST` = FLAGS INTERNALDATE RFC822.SIZE
    Fast,
    /// `FULL` = FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY
    Full,
    /// An explicit list (one item or a parenthesised list), never empty.
    Attributes(Vec<FetchAttribute>),
}

impl FetchItems {
    /// The macro expanded into attributes (RFC 9051 §6.4.5).
    pub fn attributes(&self) -> Vec<FetchAttribute> {
        use FetchAttribute as A;
        match self {
            FetchItems::All => vec![A::Flags, A::InternalDate, A::Rfc822Size, A::Envelope],
            FetchItems::Fast => vec![A::Flags, A::InternalDate, A::Rfc822Size],
            FetchItems::Full => vec![A::Flags, A::InternalDate, A::Rfc822Size, A::Envelope, A::Body],
            FetchItems::Attributes(a) => a.clone(),
        }
    }
}

/// FETCH modifiers (RFC 7162 §3.1.4 CHANGEDSINCE, §3.2.6 VANISHED).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchModifiers {
    /// `CHANGEDSINCE n`
    pub changed_since: Option<u64>,
    /// `VANISHED` (only valid with UID FETCH and CHANGEDSINCE; the session checks).
    pub vanished: bool,
    /// `PARTIAL range` (RFC 9394 §3.3; only valid with UID FETCH, the session checks).
    pub partial: Option<PartialRange>,
}

/// The STORE operation (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOp {
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
    /// `FLAGS`
    Replace,
}

/// What a STORE does: operation, silence and the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreAction {
    /// Add, remove or replace.
    pub op: StoreOp,
    /// `.SILENT`: no untagged FETCH for the change.
    pub silent: bool,
    /// The flags named.
    pub flags: Vec<Flag>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tag_validation() {
        assert!(Tag::new("a001").is_ok());
        assert!(Tag::new("A]1").is_ok());
        assert!(Tag::new("").is_err());
        assert!(Tag::new("a+1").is_err());
        assert!(Tag::new("a 1").is_err());
        assert!(Tag::new("a*").is_err());
        assert!(Tag::from_bytes(b"\xff").is_err());
    }

    #[test]
    fn inbox_normalisation() {
        let d = |s: &[u8]| WireMailboxName::new(s).decode(false).unwrap();
        assert_eq!(d(b"inbox"), "INBOX");
        assert_eq!(d(b"InBoX/Sub"), "INBOX/Sub");
        assert_eq!(d(b"inboxes"), "inboxes");
        assert_eq!(d(b"Other/inbox"), "Other/inbox");
        assert_eq!(d(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"), "~peter/mail/台北/日本語");
        let u = WireMailboxName::new("Inbox/台北".as_bytes()).decode(true).unwrap();
        assert_eq!(u, "INBOX/台北");
        assert!(WireMailboxName::new(b"&Jjo!".to_vec()).decode(false).is_err());
        assert!(WireMailboxName::new(b"\xff".to_vec()).decode(true).is_err());
        assert!(WireMailboxName::new(b"a\x01".to_vec()).decode(true).is_err());
    }

    #[test]
    fn flags() {
        assert_eq!(Flag::parse("\\SEEN").unwrap(), Flag::Seen);
        assert_eq!(Flag::parse("\\Foo").unwrap(), Flag::Extension("Foo".into()));
        assert_eq!(Flag::parse("$Junk").unwrap().to_string(), "$Junk");
        assert!(Flag::parse("a b").is_err());
        assert!(Flag::parse("\\").is_err());
        assert_eq!(Flag::Extension("Foo".into()).to_string(), "\\Foo");
    }
}
