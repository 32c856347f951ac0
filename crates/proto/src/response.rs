//! Server responses as values, and the writer that encodes them (RFC 9051 §7, §9).
//!
//! The session builds response values ([`Data`], [`Code`], ...) and calls the `write_*`
//! functions, which append wire bytes to a caller-provided `Vec<u8>`. The writer never panics
//! and never emits bytes that break framing: free text is stripped of CR/LF, strings become
//! quoted strings when every byte is safe and literals otherwise, and atoms that would be
//! invalid are replaced rather than written.

use std::num::NonZeroU32;

use crate::datetime::DateTime;
use crate::seqset::NumberSet;
use crate::types::{Flag, Section, SectionText, SpecialUse, StatusItem, Tag, is_atom_char};

/// Status of an untagged status response (RFC 9051 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
    /// `PREAUTH` (greeting only)
    PreAuth,
    /// `BYE`
    Bye,
}

/// Status of a tagged completion response: only OK, NO and BAD exist (RFC 9051 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Completion {
    /// `OK`: the command succeeded.
    Ok,
    /// `NO`: the command failed.
    No,
    /// `BAD`: the command was not understood or not allowed.
    Bad,
}

/// A flag in `PERMANENTFLAGS`: a flag, or `\*` (clients may create keywords).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PermanentFlag {
    /// A specific flag.
    Flag(Flag),
    /// `\*`
    Wildcard,
}

/// A response code in brackets (RFC 9051 §7.1, RFC 5530, RFC 4315, RFC 7162, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    /// `ALERT`
    Alert,
    /// `BADCHARSET (charsets)`
    BadCharset(Vec<String>),
    /// `CAPABILITY caps`
    Capability(Vec<String>),
    /// `PARSE`
    Parse,
    /// `PERMANENTFLAGS (flags)`
    PermanentFlags(Vec<PermanentFlag>),
    /// `READ-ONLY`
    ReadOnly,
    /// `READ-WRITE`
    ReadWrite,
    /// `TRYCREATE`
    TryCreate,
    /// `UIDNEXT n`
    UidNext(u32),
    /// `UIDVALIDITY n`
    UidValidity(u32),
    /// `UNSEEN n` (IMAP4rev1)
    Unseen(u32),
    /// `APPENDUID uidvalidity uids` (RFC 4315)
    AppendUid {
        /// The target mailbox's UIDVALIDITY.
        uidvalidity: u32,
        /// UIDs assigned, in append order.
        uids: NumberSet,
    },
    /// `COPYUID uidvalidity from to` (RFC 4315). Both sets are written ascending, so the
    /// session must copy in ascending source-UID order for them to correspond.
    CopyUid {
        /// The target mailbox's UIDVALIDITY.
        uidvalidity: u32,
        /// Source UIDs.
        from: NumberSet,
        /// Destination UIDs.
        to: NumberSet,
    },
    /// `UIDNOTSTICKY` (RFC 4315)
    UidNotSticky,
    /// `CLOSED` (RFC 7162)
    Closed,
    /// `HIGHESTMODSEQ n` (RFC 7162)
    HighestModSeq(u64),
    /// `NOMODSEQ` (RFC 7162)
    NoModSeq,
    /// `MODIFIED set` (RFC 7162)
    Modified(NumberSet),
    /// `AUTHENTICATIONFAILED` (RFC 5530)
    AuthenticationFailed,
    /// `AUTHORIZATIONFAILED` (RFC 5530)
    AuthorizationFailed,
    /// `EXPIRED` (RFC 5530)
    Expired,
    /// `PRIVACYREQUIRED` (RFC 5530)
    PrivacyRequired,
    /// `CONTACTADMIN` (RFC 5530)
    ContactAdmin,
    /// `NOPERM` (RFC 5530)
    NoPerm,
    /// `INUSE` (RFC 5530)
    InUse,
    /// `EXPUNGEISSUED` (RFC 5530)
    ExpungeIssued,
    /// `CORRUPTION` (RFC 5530)
    Corruption,
    /// `SERVERBUG` (RFC 5530)
    ServerBug,
    /// `CLIENTBUG` (RFC 5530)
    ClientBug,
    /// `CANNOT` (RFC 5530)
    CannotDo,
    /// `LIMIT` (RFC 5530)
    Limit,
    /// `OVERQUOTA` (RFC 5530)
    OverQuota,
    /// `ALREADYEXISTS` (RFC 5530)
    AlreadyExists,
    /// `NONEXISTENT` (RFC 5530)
    Nonexistent,
    /// `TOOBIG` (RFC 4469, RFC 7889)
    TooBig,
    /// `UNKNOWN-CTE` (RFC 3516)
    UnknownCte,
    /// `HASCHILDREN` (RFC 9051)
    HasChildren,
    /// `USEATTR` (RFC 6154)
    UseAttr,
    /// `UNAVAILABLE` (RFC 5530)
    Unavailable,
    /// `MAILBOXID (id)` (RFC 8474)
    MailboxId(String),
    /// `NOTSAVED` (RFC 5182)
    NotSaved,
    /// Any other code: an atom and optional text (no `]`, CR or LF; sanitised on write).
    Other(String, Option<String>),
}

/// A mailbox attribute in LIST/LSUB responses (RFC 9051 §7.3.1, RFC 5258, RFC 6154).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MailboxAttr {
    /// `\Noinferiors`
    NoInferiors,
    /// `\Noselect`
    NoSelect,
    /// `\NonExistent`
    NonExistent,
    /// `\HasChildren`
    HasChildren,
    /// `\HasNoChildren`
    HasNoChildren,
    /// `\Marked`
    Marked,
    /// `\Unmarked`
    Unmarked,
    /// `\Subscribed`
    Subscribed,
    /// `\Remote`
    Remote,
    /// A special-use attribute (`\Drafts`, ...).
    SpecialUse(SpecialUse),
    /// Any other `\Name` (written with a leading backslash; the name must be an atom).
    Other(String),
}

/// Extended data in a LIST response (RFC 5258 §3.5 CHILDINFO, RFC 9051 §7.3.1 OLDNAME).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListExtended {
    /// `("CHILDINFO" ("SUBSCRIBED"))`: a descendant matches the selection criteria.
    ChildInfoSubscribed,
    /// `("OLDNAME" ("name"))` after RENAME.
    OldName(String),
}

/// One ESEARCH result item (RFC 4731 §3.1, RFC 7162 §3.1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ESearchItem {
    /// `MIN n`
    Min(u32),
    /// `MAX n`
    Max(u32),
    /// `COUNT n`
    Count(u32),
    /// `ALL set` (not written if the set is empty, which the RFC does not allow).
    All(NumberSet),
    /// `MODSEQ n`
    ModSeq(u64),
    /// `ALL` of an extended SORT (RFC 5267 §3.1): the numbers in sort order; runs of
    /// consecutive ascending numbers are written as ranges, nothing is reordered.
    SortedAll(Vec<u32>),
}

/// One token of a THREAD response (RFC 5256 §5 `thread-list`): the session flattens its thread
/// tree into these (so no deep recursion is needed to build, drop or write it); the writer adds
/// the spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadToken {
    /// `(`: a thread-list starts.
    Open,
    /// A message number.
    Member(u32),
    /// `)`: the thread-list ends.
    Close,
}

/// A namespace description (RFC 9051 §7.3.2; extensions not supported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceDesc {
    /// Prefix, e.g. "" or "Other Users/".
    pub prefix: String,
    /// Hierarchy delimiter.
    pub delimiter: Option<char>,
}

/// Untagged data responses (RFC 9051 §7.2–§7.5 and extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Data {
    /// `* CAPABILITY ...`
    Capability(Vec<String>),
    /// `* LIST (attrs) "/" name [extended]`
    List {
        /// Attributes.
        attributes: Vec<MailboxAttr>,
        /// Hierarchy delimiter; `None` writes NIL (flat).
        delimiter: Option<char>,
        /// Decoded mailbox name; the writer encodes it per [`WriteOptions::utf8`].
        name: String,
        /// Extended data items.
        extended: Vec<ListExtended>,
    },
    /// `* LSUB (attrs) "/" name` (IMAP4rev1)
    Lsub {
        /// Attributes.
        attributes: Vec<MailboxAttr>,
        /// Hierarchy delimiter.
        delimiter: Option<char>,
        /// Decoded mailbox name.
        name: String,
    },
    /// `* STATUS name (item value ...)`. MAILBOXID's value is text, not a number, so it is
    /// given separately in `mailbox_id` (an item `MailboxId` in `items` is skipped).
    Status {
        /// Decoded mailbox name.
        mailbox: String,
        /// Numeric items in order.
        items: Vec<(StatusItem, u64)>,
        /// `MAILBOXID (id)` if requested (RFC 8474).
        mailbox_id: Option<String>,
    },
    /// `* FLAGS (flags)`
    Flags(Vec<Flag>),
    /// `* n EXISTS`
    Exists(u32),
    /// `* n RECENT` (IMAP4rev1)
    Recent(u32),
    /// `* n EXPUNGE`
    Expunge(u32),
    /// `* SEARCH n...` (IMAP4rev1) with optional `(MODSEQ n)` (RFC 7162).
    Search {
        /// Matching numbers.
        numbers: Vec<u32>,
        /// Highest mod-sequence of the results, for CONDSTORE searches.
        modseq: Option<u64>,
    },
    /// `* ESEARCH [(TAG "t")] [UID] items` (RFC 4731, RFC 9051 §7.3.4).
    ESearch {
        /// The command tag being answered.
        tag: Option<Tag>,
        /// The numbers are UIDs.
        uid: bool,
        /// Result items.
        items: Vec<ESearchItem>,
    },
    /// `* SORT n...` (RFC 5256 §4) with optional `(MODSEQ n)` (RFC 7162 §3.1.5).
    Sort {
        /// Matching numbers in sort order.
        numbers: Vec<u32>,
        /// Highest mod-sequence of the results, for CONDSTORE searches.
        modseq: Option<u64>,
    },
    /// `* THREAD thread-lists` (RFC 5256 §4).
    Thread(Vec<ThreadToken>),
    /// `* n FETCH (...)`
    Fetch {
        /// Message sequence number.
        seq: u32,
        /// Attribute values, written in this order.
        attrs: Vec<FetchValue>,
    },
    /// `* ENABLED caps` (RFC 5161)
    Enabled(Vec<String>),
    /// `* NAMESPACE personal other shared`
    Namespace {
        /// Personal namespaces (NIL if empty).
        personal: Vec<NamespaceDesc>,
        /// Other users' namespaces.
        other: Vec<NamespaceDesc>,
        /// Shared namespaces.
        shared: Vec<NamespaceDesc>,
    },
    /// `* ID (...)` or `* ID NIL` (RFC 2971).
    Id(Option<Vec<(String, Option<String>)>>),
    /// `* VANISHED [(EARLIER)] uids` (RFC 7162 §3.2.10).
    Vanished {
        /// `(EARLIER)`: answering a FETCH/SELECT, not a live expunge.
        earlier: bool,
        /// The UIDs.
        uids: NumberSet,
    },
}

/// One FETCH response item (RFC 9051 §7.5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchValue {
    /// `FLAGS (...)` (include [`Flag::Recent`] if the session tracks it).
    Flags(Vec<Flag>),
    /// `UID n`
    Uid(u32),
    /// `INTERNALDATE "..."`
    InternalDate(DateTime),
    /// `RFC822.SIZE n`
    Rfc822Size(u64),
    /// `MODSEQ (n)` (RFC 7162)
    ModSeq(u64),
    /// `ENVELOPE (...)`
    Envelope(Box<Envelope>),
    /// `BODYSTRUCTURE (...)`, extension data included.
    BodyStructure(Body),
    /// `BODY (...)`: the structure without extension data.
    Body(Body),
    /// `BODY[section]<origin> data`.
    BodySection {
        /// The section as requested (echoed).
        section: Section,
        /// Partial fetch offset (`<origin>`).
        origin: Option<u32>,
        /// The data; `None` writes NIL.
        data: Option<Vec<u8>>,
    },
    /// `BINARY[section]<origin> data` (RFC 3516); written as literal8 when it contains NUL.
    Binary {
        /// The section as requested (echoed): part numbers, rarely a section text.
        section: Section,
        /// Partial fetch offset.
        origin: Option<u32>,
        /// The decoded data; `None` writes NIL.
        data: Option<Vec<u8>>,
    },
    /// `BINARY.SIZE[section] n` (RFC 3516).
    BinarySize {
        /// The section as requested (echoed).
        section: Section,
        /// Decoded size; `None` writes NIL (a part that does not exist, read as NIL by
        /// `BINARY[part]` and `BODY[part]` too).
        size: Option<u64>,
    },
    /// `RFC822 data` (IMAP4rev1)
    Rfc822(Option<Vec<u8>>),
    /// `RFC822.HEADER data` (IMAP4rev1)
    Rfc822Header(Option<Vec<u8>>),
    /// `RFC822.TEXT data` (IMAP4rev1)
    Rfc822Text(Option<Vec<u8>>),
    /// `EMAILID (id)` (RFC 8474)
    EmailId(String),
    /// `THREADID (id)` or `THREADID NIL` (RFC 8474)
    ThreadId(Option<String>),
    /// `SAVEDATE "..."` or NIL (RFC 8514)
    SaveDate(Option<DateTime>),
    /// `PREVIEW "..."` or NIL (RFC 8970)
    Preview(Option<String>),
}

/// An address in an envelope (RFC 9051 §7.5.2). Group syntax: start of group has
/// `mailbox = group name, host = None`; end of group has `mailbox = None, host = None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// Display name.
    pub name: Option<Vec<u8>>,
    /// Source route (obsolete; normally `None`).
    pub adl: Option<Vec<u8>>,
    /// Local part, or group name.
    pub mailbox: Option<Vec<u8>>,
    /// Domain.
    pub host: Option<Vec<u8>>,
}

/// The ENVELOPE structure (RFC 9051 §7.5.2). Empty address lists are written as NIL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// Date header.
    pub date: Option<Vec<u8>>,
    /// Subject header.
    pub subject: Option<Vec<u8>>,
    /// From.
    pub from: Vec<Address>,
    /// Sender (defaults to From per RFC 9051; the builder of the envelope decides).
    pub sender: Vec<Address>,
    /// Reply-To.
    pub reply_to: Vec<Address>,
    /// To.
    pub to: Vec<Address>,
    /// Cc.
    pub cc: Vec<Address>,
    /// Bcc.
    pub bcc: Vec<Address>,
    /// In-Reply-To.
    pub in_reply_to: Option<Vec<u8>>,
    /// Message-ID.
    pub message_id: Option<Vec<u8>>,
}

/// `body-fld-dsp`: disposition type and parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disposition {
    /// e.g. `attachment`.
    pub kind: Vec<u8>,
    /// Parameters (attribute, value).
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Extension data of a single part (BODYSTRUCTURE only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SinglePartExt {
    /// `body-fld-md5`
    pub md5: Option<Vec<u8>>,
    /// `body-fld-dsp`
    pub disposition: Option<Disposition>,
    /// `body-fld-lang`; empty writes NIL.
    pub language: Vec<Vec<u8>>,
    /// `body-fld-loc`
    pub location: Option<Vec<u8>>,
}

/// Extension data of a multipart (BODYSTRUCTURE only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiPartExt {
    /// `body-fld-param`; empty writes NIL.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// `body-fld-dsp`
    pub disposition: Option<Disposition>,
    /// `body-fld-lang`
    pub language: Vec<Vec<u8>>,
    /// `body-fld-loc`
    pub location: Option<Vec<u8>>,
}

/// The extra fields of a `message/rfc822` or `message/global` part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePart {
    /// Envelope of the encapsulated message.
    pub envelope: Envelope,
    /// Structure of the encapsulated message.
    pub body: Body,
    /// Line count of the encapsulated message.
    pub lines: u32,
}

/// A non-multipart body part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinglePart {
    /// Media type, e.g. `TEXT`.
    pub media_type: Vec<u8>,
    /// Subtype, e.g. `PLAIN`.
    pub subtype: Vec<u8>,
    /// `body-fld-param`; empty writes NIL.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// `body-fld-id`
    pub id: Option<Vec<u8>>,
    /// `body-fld-desc`
    pub description: Option<Vec<u8>>,
    /// `body-fld-enc`, e.g. `7BIT`, `BASE64`.
    pub encoding: Vec<u8>,
    /// `body-fld-octets`
    pub size: u32,
    /// `body-fld-lines` for `text/*` parts; must be `Some` for them.
    pub lines: Option<u32>,
    /// For `message/rfc822` and `message/global`: the encapsulated message.
    pub message: Option<Box<MessagePart>>,
    /// Extension data; only written for BODYSTRUCTURE.
    pub ext: Option<SinglePartExt>,
}

/// A multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiPart {
    /// The parts (at least one).
    pub parts: Vec<Body>,
    /// Subtype, e.g. `MIXED`.
    pub subtype: Vec<u8>,
    /// Extension data; only written for BODYSTRUCTURE.
    pub ext: Option<MultiPartExt>,
}

/// A body structure (RFC 9051 §7.5.2 BODY / BODYSTRUCTURE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A leaf part.
    Single(SinglePart),
    /// A multipart.
    Multi(MultiPart),
}

/// Options that change how data is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    /// IMAP4rev2 or UTF8=ACCEPT is in effect: mailbox names are written as UTF-8 and 8-bit
    /// bytes may appear in quoted strings. Otherwise names are modified UTF-7 (RFC 3501 §5.1.3).
    pub utf8: bool,
}

// ---- status responses -------------------------------------------------------------------

/// Writes `tag OK|NO|BAD [code] text\r\n` (RFC 9051 §7.1 `response-tagged`).
pub fn write_tagged(out: &mut Vec<u8>, tag: &Tag, status: Completion, code: Option<&Code>, text: &str) {
    out.extend_from_slice(tag.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(match status {
        Completion::Ok => b"OK",
        Completion::No => b"NO",
        Completion::Bad => b"BAD",
    });
    write_resp_text(out, code, text);
}

/// Writes `* OK|NO|BAD|PREAUTH|BYE [code] text\r\n` (RFC 9051 §7.1).
pub fn write_untagged_status(out: &mut Vec<u8>, status: Status, code: Option<&Code>, text: &str) {
    out.extend_from_slice(b"* ");
    out.extend_from_slice(match status {
        Status::Ok => b"OK",
        Status::No => b"NO",
        Status::Bad => b"BAD",
        Status::PreAuth => b"PREAUTH",
        Status::Bye => b"BYE",
    });
    write_resp_text(out, code, text);
}

/// Writes a continuation request `+ text\r\n` (RFC 9051 §7.6; text sanitised).
pub fn write_continuation(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"+ ");
    write_text(out, text, TextContext::Continuation);
    out.extend_from_slice(b"\r\n");
}

/// Writes a continuation request carrying base64 data, `+ data\r\n`, for AUTHENTICATE
/// challenges (RFC 9051 §6.2.2). Bytes outside the base64 alphabet are dropped.
pub fn write_continuation_base64(out: &mut Vec<u8>, base64: &[u8]) {
    out.extend_from_slice(b"+ ");
    out.extend(
        base64.iter().copied().filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')),
    );
    out.extend_from_slice(b"\r\n");
}

/// `resp-text = ["[" resp-text-code "]" SP] [text]`, then CRLF. Text is never empty because
/// IMAP4rev1 requires at least one character.
fn write_resp_text(out: &mut Vec<u8>, code: Option<&Code>, text: &str) {
    out.push(b' ');
    let mut has_code = false;
    if let Some(code) = code
        && code_is_writable(code)
    {
        out.push(b'[');
        write_code(out, code);
        out.extend_from_slice(b"] ");
        has_code = true;
    }
    let ctx = if has_code { TextContext::AfterCode } else { TextContext::NoCode };
    write_text(out, text, ctx);
    out.extend_from_slice(b"\r\n");
}

/// Where free text goes; decides which characters need replacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextContext {
    /// After `[code] `: anything printable.
    AfterCode,
    /// No code: a leading "[" would be read as the start of a code.
    NoCode,
    /// Continuation request: like `NoCode`, may stay empty.
    Continuation,
    /// Inside a code's own text: no "]".
    InCode,
}

/// Writes `text`, replacing what would break the grammar: CR, LF and other controls become
/// spaces and non-ASCII becomes "?" (IMAP4rev1 `text` is 7-bit; RFC 9051 §9 `TEXT-CHAR`).
fn write_text(out: &mut Vec<u8>, text: &str, ctx: TextContext) {
    let start = out.len();
    for (i, c) in text.chars().enumerate() {
        let b = match c {
            '[' if i == 0 && matches!(ctx, TextContext::NoCode | TextContext::Continuation) => b'(',
            ']' if ctx == TextContext::InCode => b')',
            ' '..='~' => c as u8,
            _ if c.is_ascii_control() => b' ',
            _ => b'?',
        };
        out.push(b);
    }
    if out.len() == start && ctx != TextContext::Continuation {
        // RFC 3501 `text = 1*TEXT-CHAR`: an empty text would make the line unparsable.
        out.extend_from_slice(b"(no text)");
    }
}

// ---- response codes ---------------------------------------------------------------------

/// True if `code` can be written validly (non-empty sets, valid atoms).
fn code_is_writable(code: &Code) -> bool {
    match code {
        // RFC 9051 §9: these carry nz-number; a zero would make the response unparsable.
        Code::UidNext(0) | Code::UidValidity(0) | Code::Unseen(0) => false,
        Code::AppendUid { uidvalidity, uids } => *uidvalidity > 0 && !uids.is_empty(),
        Code::CopyUid { uidvalidity, from, to } => *uidvalidity > 0 && !from.is_empty() && !to.is_empty(),
        Code::Modified(set) => !set.is_empty(),
        Code::MailboxId(id) => is_object_id(id),
        Code::Other(atom, _) => is_atom(atom.as_bytes()),
        _ => true,
    }
}

/// `resp-text-code` (RFC 9051 §9, RFC 4315, RFC 5530, RFC 7162, RFC 6154, RFC 8474).
fn write_code(out: &mut Vec<u8>, code: &Code) {
    let simple: &[u8] = match code {
        Code::Alert => b"ALERT",
        Code::Parse => b"PARSE",
        Code::ReadOnly => b"READ-ONLY",
        Code::ReadWrite => b"READ-WRITE",
        Code::TryCreate => b"TRYCREATE",
        Code::UidNotSticky => b"UIDNOTSTICKY",
        Code::Closed => b"CLOSED",
        Code::NoModSeq => b"NOMODSEQ",
        Code::AuthenticationFailed => b"AUTHENTICATIONFAILED",
        Code::AuthorizationFailed => b"AUTHORIZATIONFAILED",
        Code::Expired => b"EXPIRED",
        Code::PrivacyRequired => b"PRIVACYREQUIRED",
        Code::ContactAdmin => b"CONTACTADMIN",
        Code::NoPerm => b"NOPERM",
        Code::InUse => b"INUSE",
        Code::ExpungeIssued => b"EXPUNGEISSUED",
        Code::Corruption => b"CORRUPTION",
        Code::ServerBug => b"SERVERBUG",
        Code::ClientBug => b"CLIENTBUG",
        Code::CannotDo => b"CANNOT",
        Code::Limit => b"LIMIT",
        Code::OverQuota => b"OVERQUOTA",
        Code::AlreadyExists => b"ALREADYEXISTS",
        Code::Nonexistent => b"NONEXISTENT",
        Code::TooBig => b"TOOBIG",
        Code::UnknownCte => b"UNKNOWN-CTE",
        Code::HasChildren => b"HASCHILDREN",
        Code::UseAttr => b"USEATTR",
        Code::Unavailable => b"UNAVAILABLE",
        Code::NotSaved => b"NOTSAVED",
        _ => b"",
    };
    if !simple.is_empty() {
        out.extend_from_slice(simple);
        return;
    }
    match code {
        Code::BadCharset(charsets) => {
            out.extend_from_slice(b"BADCHARSET");
            if !charsets.is_empty() {
                out.extend_from_slice(b" (");
                for (i, cs) in charsets.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    // `charset = atom / quoted`
                    write_astring(out, cs.as_bytes());
                }
                out.push(b')');
            }
        }
        Code::Capability(caps) => {
            out.extend_from_slice(b"CAPABILITY");
            write_atom_list(out, caps);
        }
        Code::PermanentFlags(flags) => {
            out.extend_from_slice(b"PERMANENTFLAGS (");
            let mut first = true;
            for f in flags {
                let start = out.len();
                if !first {
                    out.push(b' ');
                }
                let ok = match f {
                    PermanentFlag::Flag(f) => write_flag(out, f),
                    PermanentFlag::Wildcard => {
                        out.extend_from_slice(b"\\*");
                        true
                    }
                };
                if ok {
                    first = false;
                } else {
                    out.truncate(start);
                }
            }
            out.push(b')');
        }
        Code::UidNext(n) => write_num_code(out, b"UIDNEXT", u64::from(*n)),
        Code::UidValidity(n) => write_num_code(out, b"UIDVALIDITY", u64::from(*n)),
        Code::Unseen(n) => write_num_code(out, b"UNSEEN", u64::from(*n)),
        // RFC 7162 §3.1.2.2: a mailbox without mod-sequences reports NOMODSEQ instead.
        Code::HighestModSeq(0) => out.extend_from_slice(b"NOMODSEQ"),
        Code::HighestModSeq(n) => write_num_code(out, b"HIGHESTMODSEQ", *n),
        Code::AppendUid { uidvalidity, uids } => {
            write_num_code(out, b"APPENDUID", u64::from(*uidvalidity));
            out.push(b' ');
            write_number_set(out, uids);
        }
        Code::CopyUid { uidvalidity, from, to } => {
            write_num_code(out, b"COPYUID", u64::from(*uidvalidity));
            out.push(b' ');
            write_number_set(out, from);
            out.push(b' ');
            write_number_set(out, to);
        }
        Code::Modified(set) => {
            out.extend_from_slice(b"MODIFIED ");
            write_number_set(out, set);
        }
        Code::MailboxId(id) => {
            out.extend_from_slice(b"MAILBOXID (");
            out.extend_from_slice(id.as_bytes());
            out.push(b')');
        }
        Code::Other(atom, text) => {
            out.extend_from_slice(atom.as_bytes());
            if let Some(t) = text
                && !t.is_empty()
            {
                out.push(b' ');
                write_text(out, t, TextContext::InCode);
            }
        }
        _ => {}
    }
}

fn write_num_code(out: &mut Vec<u8>, name: &[u8], n: u64) {
    out.extend_from_slice(name);
    out.push(b' ');
    write_u64(out, n);
}

// ---- data responses ---------------------------------------------------------------------

/// Deepest body structure the writer follows; deeper parts are written as an empty
/// text/plain part so a hostile message cannot exhaust the stack.
pub const MAX_BODY_DEPTH: usize = 100;

/// Writes one untagged data response, CRLF included. Responses that cannot be written
/// validly (e.g. `VANISHED` with an empty set) are skipped entirely.
pub fn write_data(out: &mut Vec<u8>, data: &Data, opts: WriteOptions) {
    match data {
        Data::Capability(caps) => {
            out.extend_from_slice(b"* CAPABILITY");
            write_atom_list(out, caps);
        }
        Data::List { attributes, delimiter, name, extended } => {
            out.extend_from_slice(b"* LIST ");
            write_list_body(out, attributes, *delimiter, name, opts);
            write_list_extended(out, extended, opts);
        }
        Data::Lsub { attributes, delimiter, name } => {
            out.extend_from_slice(b"* LSUB ");
            write_list_body(out, attributes, *delimiter, name, opts);
        }
        Data::Status { mailbox, items, mailbox_id } => {
            out.extend_from_slice(b"* STATUS ");
            write_mailbox(out, mailbox, opts.utf8);
            out.extend_from_slice(b" (");
            let mut first = true;
            for (item, value) in items {
                if *item == StatusItem::MailboxId {
                    continue;
                }
                if !first {
                    out.push(b' ');
                }
                first = false;
                out.extend_from_slice(item.as_str().as_bytes());
                out.push(b' ');
                write_u64(out, *value);
            }
            if let Some(id) = mailbox_id.as_deref().filter(|id| is_object_id(id)) {
                if !first {
                    out.push(b' ');
                }
                out.extend_from_slice(b"MAILBOXID (");
                out.extend_from_slice(id.as_bytes());
                out.push(b')');
            }
            out.push(b')');
        }
        Data::Flags(flags) => {
            out.extend_from_slice(b"* FLAGS ");
            write_flag_list(out, flags);
        }
        Data::Exists(n) => write_numbered(out, *n, b"EXISTS"),
        Data::Recent(n) => write_numbered(out, *n, b"RECENT"),
        // RFC 9051 §9 `message-data = nz-number SP "EXPUNGE"`: nothing valid to say for 0.
        Data::Expunge(0) => return,
        Data::Expunge(n) => write_numbered(out, *n, b"EXPUNGE"),
        Data::Search { numbers, modseq } => {
            out.extend_from_slice(b"* SEARCH");
            for n in numbers.iter().filter(|&&n| n > 0) {
                out.push(b' ');
                write_u64(out, u64::from(*n));
            }
            // RFC 7162 §3.1.5: the MODSEQ item only follows a non-empty result.
            if let Some(m) = modseq
                && numbers.iter().any(|&n| n > 0)
            {
                out.extend_from_slice(b" (MODSEQ ");
                write_u64(out, *m);
                out.push(b')');
            }
        }
        Data::ESearch { tag, uid, items } => {
            out.extend_from_slice(b"* ESEARCH");
            if let Some(tag) = tag {
                // RFC 4731 §3.1 `search-correlator = SP "(" "TAG" SP tag-string ")"`.
                out.extend_from_slice(b" (TAG ");
                write_string(out, tag.as_str().as_bytes());
                out.push(b')');
            }
            if *uid {
                out.extend_from_slice(b" UID");
            }
            for item in items {
                write_esearch_item(out, item);
            }
        }
        Data::Sort { numbers, modseq } => {
            out.extend_from_slice(b"* SORT");
            for n in numbers.iter().filter(|&&n| n > 0) {
                out.push(b' ');
                write_u64(out, u64::from(*n));
            }
            // RFC 7162 §3.1.5: `sort-data =/ ... [SP "(" "MODSEQ" SP mod-sequence-value ")"]`.
            if let Some(m) = modseq
                && numbers.iter().any(|&n| n > 0)
            {
                out.extend_from_slice(b" (MODSEQ ");
                write_u64(out, *m);
                out.push(b')');
            }
        }
        Data::Thread(tokens) => {
            out.extend_from_slice(b"* THREAD");
            write_thread(out, tokens);
        }
        Data::Fetch { seq, attrs } => {
            // `message-data = nz-number SP "FETCH" SP msg-att` and msg-att is never empty.
            let mut attrs = attrs.iter().filter(|a| fetch_value_is_writable(a)).peekable();
            if *seq == 0 || attrs.peek().is_none() {
                return;
            }
            out.extend_from_slice(b"* ");
            write_u64(out, u64::from(*seq));
            out.extend_from_slice(b" FETCH (");
            for (i, a) in attrs.enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_fetch_value(out, a, opts);
            }
            out.push(b')');
        }
        Data::Enabled(caps) => {
            out.extend_from_slice(b"* ENABLED");
            write_atom_list(out, caps);
        }
        Data::Namespace { personal, other, shared } => {
            out.extend_from_slice(b"* NAMESPACE");
            for ns in [personal, other, shared] {
                out.push(b' ');
                write_namespace(out, ns, opts);
            }
        }
        Data::Id(params) => {
            out.extend_from_slice(b"* ID ");
            match params.as_deref() {
                Some(list) if !list.is_empty() => {
                    out.push(b'(');
                    for (i, (k, v)) in list.iter().enumerate() {
                        if i > 0 {
                            out.push(b' ');
                        }
                        write_string_opts(out, k.as_bytes(), opts);
                        out.push(b' ');
                        write_nstring_opts(out, v.as_deref().map(str::as_bytes), opts);
                    }
                    out.push(b')');
                }
                _ => out.extend_from_slice(b"NIL"),
            }
        }
        Data::Vanished { earlier, uids } => {
            if uids.is_empty() {
                return;
            }
            out.extend_from_slice(b"* VANISHED ");
            if *earlier {
                out.extend_from_slice(b"(EARLIER) ");
            }
            write_number_set(out, uids);
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// `thread-data = "THREAD" [SP 1*thread-list]` (RFC 5256 §5): a space before the first list, a
/// space between two numbers and between a number and a nested list, nothing between lists.
fn write_thread(out: &mut Vec<u8>, tokens: &[ThreadToken]) {
    let mut previous: Option<ThreadToken> = None;
    for &t in tokens {
        match (previous, t) {
            (None, _) | (Some(ThreadToken::Member(_)), ThreadToken::Member(_) | ThreadToken::Open) => {
                out.push(b' ');
            }
            _ => {}
        }
        match t {
            ThreadToken::Open => out.push(b'('),
            ThreadToken::Close => out.push(b')'),
            ThreadToken::Member(n) => write_u64(out, u64::from(n)),
        }
        previous = Some(t);
    }
}

fn write_numbered(out: &mut Vec<u8>, n: u32, what: &[u8]) {
    out.extend_from_slice(b"* ");
    write_u64(out, u64::from(n));
    out.push(b' ');
    out.extend_from_slice(what);
}

/// `"(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox`
fn write_list_body(
    out: &mut Vec<u8>,
    attributes: &[MailboxAttr],
    delimiter: Option<char>,
    name: &str,
    opts: WriteOptions,
) {
    out.push(b'(');
    let mut first = true;
    for a in attributes {
        let name: &str = match a {
            MailboxAttr::NoInferiors => "Noinferiors",
            MailboxAttr::NoSelect => "Noselect",
            MailboxAttr::NonExistent => "NonExistent",
            MailboxAttr::HasChildren => "HasChildren",
            MailboxAttr::HasNoChildren => "HasNoChildren",
            MailboxAttr::Marked => "Marked",
            MailboxAttr::Unmarked => "Unmarked",
            MailboxAttr::Subscribed => "Subscribed",
            MailboxAttr::Remote => "Remote",
            MailboxAttr::SpecialUse(s) => s.name(),
            MailboxAttr::Other(s) => s,
        };
        if !is_atom(name.as_bytes()) {
            continue;
        }
        if !first {
            out.push(b' ');
        }
        first = false;
        out.push(b'\\');
        out.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(b") ");
    match delimiter {
        Some(c) if c.is_ascii() && !c.is_ascii_control() => {
            out.push(b'"');
            if c == '"' || c == '\\' {
                out.push(b'\\');
            }
            out.push(c as u8);
            out.push(b'"');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    write_mailbox(out, name, opts.utf8);
}

/// `SP mbox-list-extended` (RFC 5258 §6): `("CHILDINFO" ("SUBSCRIBED") "OLDNAME" ("x"))`.
fn write_list_extended(out: &mut Vec<u8>, extended: &[ListExtended], opts: WriteOptions) {
    if extended.is_empty() {
        return;
    }
    out.extend_from_slice(b" (");
    for (i, e) in extended.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        match e {
            ListExtended::ChildInfoSubscribed => {
                out.extend_from_slice(b"\"CHILDINFO\" (\"SUBSCRIBED\")");
            }
            ListExtended::OldName(name) => {
                out.extend_from_slice(b"\"OLDNAME\" (");
                write_mailbox_string(out, name, opts.utf8);
                out.push(b')');
            }
        }
    }
    out.push(b')');
}

/// `namespace = nil / "(" 1*namespace-descr ")"`;
/// `namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) ")"`.
fn write_namespace(out: &mut Vec<u8>, ns: &[NamespaceDesc], opts: WriteOptions) {
    if ns.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for d in ns {
        out.push(b'(');
        write_mailbox_string(out, &d.prefix, opts.utf8);
        out.push(b' ');
        match d.delimiter {
            Some(c) if c.is_ascii() && !c.is_ascii_control() => {
                out.push(b'"');
                if c == '"' || c == '\\' {
                    out.push(b'\\');
                }
                out.push(c as u8);
                out.push(b'"');
            }
            _ => out.extend_from_slice(b"NIL"),
        }
        out.push(b')');
    }
    out.push(b')');
}

/// `search-return-data` (RFC 4731 §3.1, RFC 7162 §3.1.5). Items that cannot be valid
/// (MIN/MAX 0, empty ALL) are skipped.
fn write_esearch_item(out: &mut Vec<u8>, item: &ESearchItem) {
    match item {
        ESearchItem::Min(n) if *n > 0 => {
            out.extend_from_slice(b" MIN ");
            write_u64(out, u64::from(*n));
        }
        ESearchItem::Max(n) if *n > 0 => {
            out.extend_from_slice(b" MAX ");
            write_u64(out, u64::from(*n));
        }
        ESearchItem::Count(n) => {
            out.extend_from_slice(b" COUNT ");
            write_u64(out, u64::from(*n));
        }
        ESearchItem::All(set) if !set.is_empty() => {
            out.extend_from_slice(b" ALL ");
            write_number_set(out, set);
        }
        ESearchItem::ModSeq(m) => {
            out.extend_from_slice(b" MODSEQ ");
            write_u64(out, *m);
        }
        ESearchItem::SortedAll(numbers) if numbers.iter().any(|&n| n > 0) => {
            out.extend_from_slice(b" ALL ");
            write_ordered_set(out, numbers);
        }
        _ => {}
    }
}

// ---- FETCH ------------------------------------------------------------------------------

/// False for items that have no valid encoding (UID 0); they are left out of the response.
fn fetch_value_is_writable(v: &FetchValue) -> bool {
    !matches!(v, FetchValue::Uid(0))
}

/// One `msg-att` item (RFC 9051 §9 `msg-att-dynamic` / `msg-att-static`).
fn write_fetch_value(out: &mut Vec<u8>, v: &FetchValue, opts: WriteOptions) {
    match v {
        FetchValue::Flags(flags) => {
            out.extend_from_slice(b"FLAGS ");
            write_flag_list(out, flags);
        }
        FetchValue::Uid(uid) => {
            out.extend_from_slice(b"UID ");
            write_u64(out, u64::from(*uid));
        }
        FetchValue::InternalDate(dt) => {
            out.extend_from_slice(b"INTERNALDATE ");
            write_date_time(out, dt);
        }
        FetchValue::Rfc822Size(n) => {
            out.extend_from_slice(b"RFC822.SIZE ");
            write_u64(out, *n);
        }
        FetchValue::ModSeq(m) => {
            out.extend_from_slice(b"MODSEQ (");
            write_u64(out, *m);
            out.push(b')');
        }
        FetchValue::Envelope(env) => {
            out.extend_from_slice(b"ENVELOPE ");
            write_envelope(out, env, opts);
        }
        FetchValue::BodyStructure(body) => {
            out.extend_from_slice(b"BODYSTRUCTURE ");
            write_body(out, body, BodyForm::Structure, opts, 0);
        }
        FetchValue::Body(body) => {
            out.extend_from_slice(b"BODY ");
            write_body(out, body, BodyForm::Basic, opts, 0);
        }
        FetchValue::BodySection { section, origin, data } => {
            out.extend_from_slice(b"BODY[");
            write_section(out, section);
            out.push(b']');
            write_origin(out, *origin);
            out.push(b' ');
            write_data_nstring(out, data.as_deref());
        }
        FetchValue::Binary { section, origin, data } => {
            out.extend_from_slice(b"BINARY[");
            write_section(out, section);
            out.push(b']');
            write_origin(out, *origin);
            out.push(b' ');
            match data {
                // RFC 3516 §4.2: literal8 is needed when the data contains NUL.
                Some(d) if d.contains(&0) => {
                    out.extend_from_slice(b"~{");
                    write_u64(out, d.len() as u64);
                    out.extend_from_slice(b"}\r\n");
                    out.extend_from_slice(d);
                }
                _ => write_data_nstring(out, data.as_deref()),
            }
        }
        FetchValue::BinarySize { section, size } => {
            out.extend_from_slice(b"BINARY.SIZE[");
            write_section(out, section);
            out.extend_from_slice(b"] ");
            match size {
                Some(n) => write_u64(out, *n),
                None => out.extend_from_slice(b"NIL"),
            }
        }
        FetchValue::Rfc822(d) => {
            out.extend_from_slice(b"RFC822 ");
            write_data_nstring(out, d.as_deref());
        }
        FetchValue::Rfc822Header(d) => {
            out.extend_from_slice(b"RFC822.HEADER ");
            write_data_nstring(out, d.as_deref());
        }
        FetchValue::Rfc822Text(d) => {
            out.extend_from_slice(b"RFC822.TEXT ");
            write_data_nstring(out, d.as_deref());
        }
        FetchValue::EmailId(id) => {
            out.extend_from_slice(b"EMAILID (");
            write_object_id(out, id);
            out.push(b')');
        }
        FetchValue::ThreadId(id) => {
            out.extend_from_slice(b"THREADID ");
            match id {
                Some(id) => {
                    out.push(b'(');
                    write_object_id(out, id);
                    out.push(b')');
                }
                None => out.extend_from_slice(b"NIL"),
            }
        }
        FetchValue::SaveDate(dt) => {
            out.extend_from_slice(b"SAVEDATE ");
            match dt {
                Some(dt) => write_date_time(out, dt),
                None => out.extend_from_slice(b"NIL"),
            }
        }
        FetchValue::Preview(p) => {
            out.extend_from_slice(b"PREVIEW ");
            write_nstring_opts(out, p.as_deref().map(str::as_bytes), opts);
        }
    }
}

/// `"<" number ">"` after a partial section.
fn write_origin(out: &mut Vec<u8>, origin: Option<u32>) {
    if let Some(o) = origin {
        out.push(b'<');
        write_u64(out, u64::from(o));
        out.push(b'>');
    }
}

/// `section-part`: numbers joined by ".".
fn write_part(out: &mut Vec<u8>, part: &[NonZeroU32]) {
    for (i, p) in part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        write_u64(out, u64::from(p.get()));
    }
}

/// `section-spec` as the client asked for it.
fn write_section(out: &mut Vec<u8>, section: &Section) {
    write_part(out, &section.part);
    let Some(text) = &section.text else {
        return;
    };
    if !section.part.is_empty() {
        out.push(b'.');
    }
    let (name, fields): (&[u8], Option<&Vec<String>>) = match text {
        SectionText::Header => (b"HEADER", None),
        SectionText::HeaderFields(f) => (b"HEADER.FIELDS", Some(f)),
        SectionText::HeaderFieldsNot(f) => (b"HEADER.FIELDS.NOT", Some(f)),
        SectionText::Text => (b"TEXT", None),
        SectionText::Mime => (b"MIME", None),
    };
    out.extend_from_slice(name);
    if let Some(fields) = fields {
        out.extend_from_slice(b" (");
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_astring(out, f.as_bytes());
        }
        out.push(b')');
    }
}

/// Message data (BODY[], RFC822, BINARY without NUL): always a literal, or NIL.
fn write_data_nstring(out: &mut Vec<u8>, data: Option<&[u8]>) {
    match data {
        // RFC 9051 §4.3 / §9: a literal is CHAR8, which excludes NUL; only BINARY may send NUL
        // (in literal8). A stored message with NUL bytes is shown with 0x80 in their place, as
        // Dovecot does; BINARY still returns the exact bytes.
        Some(d) if d.contains(&0) => {
            let cleaned: Vec<u8> = d.iter().map(|b| if *b == 0 { 0x80 } else { *b }).collect();
            write_literal(out, &cleaned);
        }
        Some(d) => write_literal(out, d),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `objectid = 1*255(ALPHA / DIGIT / "_" / "-")` (RFC 8474 §4); invalid ids are replaced by
/// a placeholder rather than breaking the response.
fn write_object_id(out: &mut Vec<u8>, id: &str) {
    if is_object_id(id) {
        out.extend_from_slice(id.as_bytes());
    } else {
        out.extend_from_slice(b"INVALID");
    }
}

fn is_object_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `date-time` in quotes.
fn write_date_time(out: &mut Vec<u8>, dt: &DateTime) {
    use std::io::Write;
    out.push(b'"');
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{dt}");
    out.push(b'"');
}

/// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP
/// env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`
fn write_envelope(out: &mut Vec<u8>, env: &Envelope, opts: WriteOptions) {
    out.push(b'(');
    write_nstring_opts(out, env.date.as_deref(), opts);
    out.push(b' ');
    write_nstring_opts(out, env.subject.as_deref(), opts);
    for list in [&env.from, &env.sender, &env.reply_to, &env.to, &env.cc, &env.bcc] {
        out.push(b' ');
        write_address_list(out, list, opts);
    }
    out.push(b' ');
    write_nstring_opts(out, env.in_reply_to.as_deref(), opts);
    out.push(b' ');
    write_nstring_opts(out, env.message_id.as_deref(), opts);
    out.push(b')');
}

/// `"(" 1*address ")" / nil`; `address = "(" addr-name SP addr-adl SP addr-mailbox SP
/// addr-host ")"`.
fn write_address_list(out: &mut Vec<u8>, list: &[Address], opts: WriteOptions) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        write_nstring_opts(out, a.name.as_deref(), opts);
        out.push(b' ');
        write_nstring_opts(out, a.adl.as_deref(), opts);
        out.push(b' ');
        write_nstring_opts(out, a.mailbox.as_deref(), opts);
        out.push(b' ');
        write_nstring_opts(out, a.host.as_deref(), opts);
        out.push(b')');
    }
    out.push(b')');
}

/// BODY (no extension data) or BODYSTRUCTURE (with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyForm {
    Basic,
    Structure,
}

/// `body = "(" (body-type-1part / body-type-mpart) ")"` (RFC 9051 §9).
fn write_body(out: &mut Vec<u8>, body: &Body, form: BodyForm, opts: WriteOptions, depth: usize) {
    if depth >= MAX_BODY_DEPTH {
        out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
        return;
    }
    match body {
        Body::Single(p) => write_single_part(out, p, form, opts, depth),
        Body::Multi(m) => write_multi_part(out, m, form, opts, depth),
    }
}

/// `body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]`;
/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
/// body-fld-octets`.
fn write_single_part(out: &mut Vec<u8>, p: &SinglePart, form: BodyForm, opts: WriteOptions, depth: usize) {
    out.push(b'(');
    write_string_opts(out, &p.media_type, opts);
    out.push(b' ');
    write_string_opts(out, &p.subtype, opts);
    out.push(b' ');
    write_params(out, &p.params, opts);
    out.push(b' ');
    write_nstring_opts(out, p.id.as_deref(), opts);
    out.push(b' ');
    write_nstring_opts(out, p.description.as_deref(), opts);
    out.push(b' ');
    write_string_opts(out, &p.encoding, opts);
    out.push(b' ');
    write_u64(out, u64::from(p.size));
    if let Some(m) = &p.message {
        // body-type-msg: SP envelope SP body SP body-fld-lines
        out.push(b' ');
        write_envelope(out, &m.envelope, opts);
        out.push(b' ');
        write_body(out, &m.body, form, opts, depth + 1);
        out.push(b' ');
        write_u64(out, u64::from(m.lines));
    } else if p.media_type.eq_ignore_ascii_case(b"TEXT") {
        // body-type-text requires body-fld-lines.
        out.push(b' ');
        write_u64(out, u64::from(p.lines.unwrap_or(0)));
    }
    if form == BodyForm::Structure
        && let Some(ext) = &p.ext
    {
        // body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
        out.push(b' ');
        write_nstring_opts(out, ext.md5.as_deref(), opts);
        out.push(b' ');
        write_disposition(out, ext.disposition.as_ref(), opts);
        out.push(b' ');
        write_language(out, &ext.language, opts);
        out.push(b' ');
        write_nstring_opts(out, ext.location.as_deref(), opts);
    }
    out.push(b')');
}

/// `body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]`.
fn write_multi_part(out: &mut Vec<u8>, m: &MultiPart, form: BodyForm, opts: WriteOptions, depth: usize) {
    out.push(b'(');
    if m.parts.is_empty() {
        // `1*body`: a multipart needs a part; stand in an empty one.
        out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
    }
    for part in &m.parts {
        write_body(out, part, form, opts, depth + 1);
    }
    out.push(b' ');
    write_string_opts(out, &m.subtype, opts);
    if form == BodyForm::Structure
        && let Some(ext) = &m.ext
    {
        // body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
        out.push(b' ');
        write_params(out, &ext.params, opts);
        out.push(b' ');
        write_disposition(out, ext.disposition.as_ref(), opts);
        out.push(b' ');
        write_language(out, &ext.language, opts);
        out.push(b' ');
        write_nstring_opts(out, ext.location.as_deref(), opts);
    }
    out.push(b')');
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`
fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)], opts: WriteOptions) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_string_opts(out, k, opts);
        out.push(b' ');
        write_string_opts(out, v, opts);
    }
    out.push(b')');
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`
fn write_disposition(out: &mut Vec<u8>, d: Option<&Disposition>, opts: WriteOptions) {
    match d {
        Some(d) => {
            out.push(b'(');
            write_string_opts(out, &d.kind, opts);
            out.push(b' ');
            write_params(out, &d.params, opts);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `body-fld-lang = nstring / "(" string *(SP string) ")"`
fn write_language(out: &mut Vec<u8>, langs: &[Vec<u8>], opts: WriteOptions) {
    match langs {
        [] => out.extend_from_slice(b"NIL"),
        [one] => write_string_opts(out, one, opts),
        many => {
            out.push(b'(');
            for (i, l) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_string_opts(out, l, opts);
            }
            out.push(b')');
        }
    }
}

// ---- primitives -------------------------------------------------------------------------

fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A normalised set in `sequence-set` form; the caller ensures it is not empty.
fn write_number_set(out: &mut Vec<u8>, set: &NumberSet) {
    for (i, r) in set.ranges().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_u64(out, u64::from(*r.start()));
        if r.start() != r.end() {
            out.push(b':');
            write_u64(out, u64::from(*r.end()));
        }
    }
}

/// A sequence-set that keeps the given order (RFC 5267 §3.2): runs of consecutive ascending
/// numbers become `a:b`, everything else is listed as is. Zeros are skipped.
fn write_ordered_set(out: &mut Vec<u8>, numbers: &[u32]) {
    let mut numbers = numbers.iter().copied().filter(|&n| n > 0).peekable();
    let mut first = true;
    while let Some(start) = numbers.next() {
        let mut end = start;
        while numbers.peek().is_some_and(|&n| Some(n) == end.checked_add(1)) {
            end = numbers.next().unwrap_or(end);
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_u64(out, u64::from(start));
        if end != start {
            out.push(b':');
            write_u64(out, u64::from(end));
        }
    }
}

fn is_atom(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_atom_char(b))
}

/// ` atom atom ...`: each preceded by SP; entries that are not atoms are skipped.
fn write_atom_list(out: &mut Vec<u8>, atoms: &[String]) {
    for a in atoms.iter().filter(|a| is_atom(a.as_bytes())) {
        out.push(b' ');
        out.extend_from_slice(a.as_bytes());
    }
}

/// Writes a flag; returns false (having written nothing) if it is not a valid atom.
fn write_flag(out: &mut Vec<u8>, f: &Flag) -> bool {
    let (backslash, name): (bool, &str) = match f {
        Flag::Seen => (true, "Seen"),
        Flag::Answered => (true, "Answered"),
        Flag::Flagged => (true, "Flagged"),
        Flag::Deleted => (true, "Deleted"),
        Flag::Draft => (true, "Draft"),
        Flag::Recent => (true, "Recent"),
        Flag::Keyword(k) => (false, k),
        Flag::Extension(e) => (true, e),
    };
    if !is_atom(name.as_bytes()) {
        return false;
    }
    if backslash {
        out.push(b'\\');
    }
    out.extend_from_slice(name.as_bytes());
    true
}

/// `flag-list = "(" [flag *(SP flag)] ")"`, skipping invalid keywords.
fn write_flag_list(out: &mut Vec<u8>, flags: &[Flag]) {
    out.push(b'(');
    let mut first = true;
    for f in flags {
        let start = out.len();
        if !first {
            out.push(b' ');
        }
        if write_flag(out, f) {
            first = false;
        } else {
            out.truncate(start);
        }
    }
    out.push(b')');
}

/// True if `s` can go in a quoted string: no NUL, CR, LF; 8-bit only as valid UTF-8 when
/// `utf8` (RFC 9051 §9 `QUOTED-CHAR`).
fn quotable(s: &[u8], utf8: bool) -> bool {
    let ascii_ok = s.iter().all(|&b| b != 0 && b != b'\r' && b != b'\n');
    if !ascii_ok {
        return false;
    }
    if s.is_ascii() {
        return true;
    }
    utf8 && std::str::from_utf8(s).is_ok()
}

/// Quoted strings longer than this are sent as literals: easier on clients and no escaping.
const MAX_QUOTED: usize = 1024;

/// `literal = "{" number "}" CRLF *CHAR8`
fn write_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'{');
    write_u64(out, s.len() as u64);
    out.extend_from_slice(b"}\r\n");
    out.extend_from_slice(s);
}

fn write_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Writes a string: quoted if every byte is safe, else a literal `{n}\r\n...`. 8-bit bytes
/// force a literal here; use [`write_string_opts`] to allow them in UTF-8 mode.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    write_string_opts(out, s, WriteOptions { utf8: false });
}

/// Like [`write_string`], but with `opts.utf8` valid UTF-8 may go in a quoted string
/// (RFC 9051 §9 `quoted` allows UTF8-2/3/4 in IMAP4rev2).
pub fn write_string_opts(out: &mut Vec<u8>, s: &[u8], opts: WriteOptions) {
    if s.len() <= MAX_QUOTED && quotable(s, opts.utf8) {
        write_quoted(out, s);
    } else {
        write_literal(out, s);
    }
}

/// Writes `NIL` for `None`, else the string.
pub fn write_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    write_nstring_opts(out, s, WriteOptions { utf8: false });
}

fn write_nstring_opts(out: &mut Vec<u8>, s: Option<&[u8]>, opts: WriteOptions) {
    match s {
        Some(s) => write_string_opts(out, s, opts),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Writes an atom if `s` is a valid astring atom (and not `NIL`), else a string.
pub fn write_astring(out: &mut Vec<u8>, s: &[u8]) {
    let atom_ok =
        !s.is_empty() && s.iter().all(|&b| is_atom_char(b) || b == b']') && !s.eq_ignore_ascii_case(b"NIL");
    if atom_ok {
        out.extend_from_slice(s);
    } else {
        write_string(out, s);
    }
}

/// Writes a mailbox name (`mailbox = "INBOX" / astring`): with `utf8` the UTF-8 name in a
/// string (RFC 9051 §5.1), else modified UTF-7 (RFC 3501 §5.1.3) as an astring.
pub fn write_mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        if name.is_ascii() {
            write_astring(out, name.as_bytes());
        } else {
            write_string_opts(out, name.as_bytes(), WriteOptions { utf8: true });
        }
    } else {
        write_astring(out, crate::mutf7::encode(name).as_bytes());
    }
}

/// A mailbox name where the grammar wants `string` rather than `astring` (OLDNAME,
/// NAMESPACE prefixes).
fn write_mailbox_string(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        write_string_opts(out, name.as_bytes(), WriteOptions { utf8: true });
    } else {
        write_string(out, crate::mutf7::encode(name).as_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn w(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn d(data: Data) -> String {
        w(|o| write_data(o, &data, WriteOptions::default()))
    }

    #[test]
    fn sort_and_thread_responses_rfc5256() {
        // RFC 5256 §3 examples.
        assert_eq!(d(Data::Sort { numbers: vec![2, 84, 882], modseq: None }), "* SORT 2 84 882\r\n");
        assert_eq!(d(Data::Sort { numbers: vec![], modseq: Some(5) }), "* SORT\r\n");
        assert_eq!(d(Data::Sort { numbers: vec![3, 1], modseq: Some(5) }), "* SORT 3 1 (MODSEQ 5)\r\n");
        use ThreadToken::{Close as C, Member as M, Open as O};
        // (166)(174 (175)(176))((170)(179))(194 195)
        let tokens = vec![
            O,
            M(166),
            C,
            O,
            M(174),
            O,
            M(175),
            C,
            O,
            M(176),
            C,
            C,
            O,
            O,
            M(170),
            C,
            O,
            M(179),
            C,
            C,
            O,
            M(194),
            M(195),
            C,
        ];
        assert_eq!(d(Data::Thread(tokens)), "* THREAD (166)(174 (175)(176))((170)(179))(194 195)\r\n");
        assert_eq!(d(Data::Thread(Vec::new())), "* THREAD\r\n");
    }

    #[test]
    fn sorted_all_keeps_the_order() {
        let tag = Tag::new("a").unwrap();
        let data = |numbers: Vec<u32>| Data::ESearch {
            tag: Some(tag.clone()),
            uid: true,
            items: vec![ESearchItem::SortedAll(numbers), ESearchItem::Count(4)],
        };
        assert_eq!(d(data(vec![5, 3, 4, 1, 2, 9])), "* ESEARCH (TAG \"a\") UID ALL 5,3:4,1:2,9 COUNT 4\r\n");
        assert_eq!(d(data(vec![0])), "* ESEARCH (TAG \"a\") UID COUNT 4\r\n");
        assert_eq!(d(data(vec![u32::MAX, 1])), "* ESEARCH (TAG \"a\") UID ALL 4294967295,1 COUNT 4\r\n");
    }

    #[test]
    fn strings_pick_quoted_or_literal() {
        assert_eq!(w(|o| write_string(o, b"abc")), "\"abc\"");
        assert_eq!(w(|o| write_string(o, b"a\"b\\c")), "\"a\\\"b\\\\c\"");
        assert_eq!(w(|o| write_string(o, b"a\r\nb")), "{4}\r\na\r\nb");
        assert_eq!(w(|o| write_string(o, "ü".as_bytes())), "{2}\r\nü");
        let utf8 = WriteOptions { utf8: true };
        assert_eq!(w(|o| write_string_opts(o, "ü".as_bytes(), utf8)), "\"ü\"");
        assert_eq!(w(|o| write_string_opts(o, b"\xff", utf8)), "{1}\r\n\u{fffd}");
        assert_eq!(w(|o| write_nstring(o, None)), "NIL");
        assert_eq!(w(|o| write_astring(o, b"INBOX")), "INBOX");
        assert_eq!(w(|o| write_astring(o, b"nil")), "\"nil\"");
        assert_eq!(w(|o| write_astring(o, b"")), "\"\"");
        assert_eq!(w(|o| write_astring(o, b"a b")), "\"a b\"");
        assert_eq!(w(|o| write_mailbox(o, "台北", false)), "&U,BTFw-");
        assert_eq!(w(|o| write_mailbox(o, "a&b %", false)), "\"a&-b %\"");
        assert_eq!(w(|o| write_mailbox(o, "台北", true)), "\"台北\"");
        let long = vec![b'x'; MAX_QUOTED + 1];
        assert!(w(|o| write_string(o, &long)).starts_with("{1025}\r\n"));
    }

    #[test]
    fn status_lines() {
        let tag = Tag::new("a1").unwrap();
        assert_eq!(
            w(|o| write_tagged(o, &tag, Completion::Ok, Some(&Code::ReadWrite), "SELECT completed")),
            "a1 OK [READ-WRITE] SELECT completed\r\n"
        );
        assert_eq!(
            w(|o| write_tagged(o, &tag, Completion::No, None, "[x] fake\ncode")),
            "a1 NO (x] fake code\r\n"
        );
        assert_eq!(
            w(|o| write_untagged_status(o, Status::Ok, Some(&Code::UidNext(0)), "")),
            "* OK (no text)\r\n"
        );
        assert_eq!(
            w(|o| write_untagged_status(
                o,
                Status::Ok,
                Some(&Code::CopyUid {
                    uidvalidity: 9,
                    from: NumberSet::from_numbers([1, 2, 3, 7]),
                    to: NumberSet::from_ranges([10..=13]),
                }),
                "done"
            )),
            "* OK [COPYUID 9 1:3,7 10:13] done\r\n"
        );
        assert_eq!(
            w(|o| write_untagged_status(o, Status::Ok, Some(&Code::Other("X]".into(), None)), "t")),
            "* OK t\r\n"
        );
        assert_eq!(
            w(|o| write_untagged_status(
                o,
                Status::No,
                Some(&Code::Other("XFOO".into(), Some("a]b".into()))),
                "t"
            )),
            "* NO [XFOO a)b] t\r\n"
        );
        assert_eq!(w(|o| write_continuation(o, "")), "+ \r\n");
        assert_eq!(w(|o| write_continuation_base64(o, b"ab\r\n=")), "+ ab=\r\n");
    }

    #[test]
    fn data_lines() {
        assert_eq!(
            d(Data::List {
                attributes: vec![
                    MailboxAttr::HasChildren,
                    MailboxAttr::SpecialUse(SpecialUse::Drafts),
                    MailboxAttr::Other("bad atom".into())
                ],
                delimiter: Some('/'),
                name: "Foo".into(),
                extended: vec![ListExtended::ChildInfoSubscribed, ListExtended::OldName("Bar".into())],
            }),
            "* LIST (\\HasChildren \\Drafts) \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\") \"OLDNAME\" (\"Bar\"))\r\n"
        );
        assert_eq!(
            d(Data::Status {
                mailbox: "INBOX".into(),
                items: vec![(StatusItem::Messages, 17), (StatusItem::MailboxId, 0)],
                mailbox_id: Some("F2212ea87-6097".into()),
            }),
            "* STATUS INBOX (MESSAGES 17 MAILBOXID (F2212ea87-6097))\r\n"
        );
        assert_eq!(
            d(Data::ESearch {
                tag: Some(Tag::new("A282").unwrap()),
                uid: true,
                items: vec![
                    ESearchItem::Min(2),
                    ESearchItem::Count(3),
                    ESearchItem::All(NumberSet::from_numbers([2, 10, 11])),
                    ESearchItem::All(NumberSet::new()),
                    ESearchItem::ModSeq(917162500),
                ],
            }),
            "* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3 ALL 2,10:11 MODSEQ 917162500\r\n"
        );
        assert_eq!(
            d(Data::Namespace {
                personal: vec![NamespaceDesc { prefix: "".into(), delimiter: Some('/') }],
                other: vec![],
                shared: vec![],
            }),
            "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"
        );
        assert_eq!(
            d(Data::Fetch {
                seq: 3,
                attrs: vec![
                    FetchValue::Flags(vec![Flag::Seen, Flag::Extension("Foo".into())]),
                    FetchValue::Uid(0),
                    FetchValue::EmailId("M6d99ac3275bb4e".into()),
                    FetchValue::ThreadId(None),
                    FetchValue::SaveDate(None),
                    FetchValue::Preview(Some("Hi".into())),
                    FetchValue::BodySection {
                        section: Section {
                            part: vec![NonZeroU32::new(1).unwrap()],
                            text: Some(SectionText::HeaderFieldsNot(vec!["X-A".into()])),
                        },
                        origin: Some(5),
                        data: Some(b"ab".to_vec()),
                    },
                    FetchValue::Binary {
                        section: Section::default(),
                        origin: None,
                        data: Some(b"\0".to_vec())
                    },
                    FetchValue::BinarySize {
                        section: Section { part: vec![NonZeroU32::new(2).unwrap()], text: None },
                        size: Some(7)
                    },
                    FetchValue::BinarySize {
                        section: Section { part: vec![NonZeroU32::new(9).unwrap()], text: None },
                        size: None
                    },
                ],
            }),
            "* 3 FETCH (FLAGS (\\Seen \\Foo) EMAILID (M6d99ac3275bb4e) THREADID NIL SAVEDATE NIL \
             PREVIEW \"Hi\" BODY[1.HEADER.FIELDS.NOT (X-A)]<5> {2}\r\nab BINARY[] ~{1}\r\n\0 \
             BINARY.SIZE[2] 7 BINARY.SIZE[9] NIL)\r\n"
        );
    }

    #[test]
    fn body_structure_shapes() {
        let text = Body::Single(SinglePart {
            media_type: b"TEXT".to_vec(),
            subtype: b"PLAIN".to_vec(),
            params: vec![(b"CHARSET".to_vec(), b"US-ASCII".to_vec())],
            id: None,
            description: None,
            encoding: b"7BIT".to_vec(),
            size: 3028,
            lines: Some(92),
            message: None,
            ext: Some(SinglePartExt::default()),
        });
        // RFC 9051 §7.5.2 example shape for BODY; BODYSTRUCTURE adds the extension fields.
        assert_eq!(
            d(Data::Fetch { seq: 1, attrs: vec![FetchValue::Body(text.clone())] }),
            "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n"
        );
        assert_eq!(
            d(Data::Fetch { seq: 1, attrs: vec![FetchValue::BodyStructure(text.clone())] }),
            "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92 NIL NIL NIL NIL))\r\n"
        );
        // Nesting beyond the bound is cut off instead of recursing without limit.
        let mut deep = text;
        for _ in 0..(MAX_BODY_DEPTH * 3) {
            deep = Body::Multi(MultiPart { parts: vec![deep], subtype: b"MIXED".to_vec(), ext: None });
        }
        let out = d(Data::Fetch { seq: 1, attrs: vec![FetchValue::Body(deep)] });
        assert_eq!(out.matches("\"MIXED\"").count(), MAX_BODY_DEPTH);
    }

    #[test]
    fn nul_never_travels_in_a_plain_literal() {
        let mut out = Vec::new();
        let data = Data::Fetch { seq: 1, attrs: vec![FetchValue::Rfc822(Some(b"a\0b".to_vec()))] };
        write_data(&mut out, &data, WriteOptions::default());
        assert_eq!(out, b"* 1 FETCH (RFC822 {3}\r\na\x80b)\r\n");
    }
}
