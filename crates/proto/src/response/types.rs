//! The response values the session builds and the writer encodes: status and completion,
//! response codes, untagged data, FETCH items, envelopes and body structures.

use crate::datetime::DateTime;
use crate::seqset::NumberSet;
use crate::types::{Flag, PartialRange, Section, SpecialUse, StatusItem, Tag};

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
    /// `COMPRESSIONACTIVE` (RFC 4978 §3)
    CompressionActive,
    /// `METADATA ...` (RFC 5464 §4.2.1, §4.3).
    Metadata(MetadataCode),
    /// `NOUPDATE "tag"` (RFC 5267 §4.3.1): no updates for the search of this tag.
    NoUpdate(Tag),
    /// `NOTIFICATIONOVERFLOW` (RFC 5465 §5.8): notifications stopped, as after NOTIFY NONE.
    NotificationOverflow,
    /// `BADEVENT (event-name ...)` (RFC 5465 §3.1): every event the server supports (names
    /// that are not atoms are left out).
    BadEvent(Vec<String>),
    /// `BADURL url` (RFC 4469 §4.1): the first URL that could not be used. Written with
    /// `]`, controls and 8-bit bytes percent-encoded (`url-resp-text`).
    BadUrl(String),
    /// `URLMECH INTERNAL` (RFC 4467 §4): the URLAUTH mechanisms the server offers.
    UrlMech,
    /// `UIDREQUIRED` (RFC 9586 §3): UIDONLY is on and the command used message numbers.
    UidRequired,
    /// `TOOFEW` (RFC 10022): UIDBATCHES asked for batches smaller than the server's minimum.
    TooFew,
    /// `TOOMANY` (RFC 10022): UIDBATCHES asked for more batches than one response may carry.
    TooMany,
    /// `INPROGRESS [(tag done total)]` (RFC 9585 §5): a long command is still running.
    InProgress(Option<InProgress>),
    /// Any other code: an atom and optional text (no `]`, CR or LF; sanitised on write).
    Other(String, Option<String>),
}

/// The progress of `INPROGRESS (tag done total)` (RFC 9585 §5): `inprogress-tag = quoted / nil`,
/// and `nil SP nil`, `number SP nil` or `number SP nz-number`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InProgress {
    /// The running command's tag; written NIL when absent or when it holds `]` (which naive
    /// clients take for the end of the code).
    pub tag: Option<Tag>,
    /// Items done so far, when counted.
    pub done: Option<u64>,
    /// Items in all, when known (and `done` is; 0 is written NIL).
    pub total: Option<u64>,
}

/// The `METADATA` response codes (RFC 5464 §5 `resp-text-code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataCode {
    /// `LONGENTRIES n`: GETMETADATA left out values above MAXSIZE; the biggest was `n` octets.
    LongEntries(u64),
    /// `MAXSIZE n`: SETMETADATA refused a value; the server takes at most `n` octets.
    MaxSize(u64),
    /// `TOOMANY`: SETMETADATA refused a new entry; the mailbox or server has as many as allowed.
    TooMany,
    /// `NOPRIVATE`: SETMETADATA refused a private entry the server does not keep.
    NoPrivate,
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
    /// `PARTIAL (range set)` (RFC 9394 §4): the requested range and the numbers at those
    /// positions, in result order (mailbox order for SEARCH, sort order for SORT); `NIL` when
    /// there are none.
    Partial(PartialRange, Vec<u32>),
    /// `ADDTO (position set ...)` (RFC 5267 §4.3.3): (context position, numbers in the
    /// requested order) pairs; position 0 for SEARCH (mailbox order). Pairs with no number are
    /// skipped, the item when none is left.
    AddTo(Vec<(u32, Vec<u32>)>),
    /// `REMOVEFROM (position set ...)` (RFC 5267 §4.3.4), like [`ESearchItem::AddTo`].
    RemoveFrom(Vec<(u32, Vec<u32>)>),
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
    /// `* ESEARCH (TAG "t" MAILBOX m UIDVALIDITY n) UID items` (RFC 7377 §2.1), answering
    /// the ESEARCH command for one mailbox.
    MultiSearch {
        /// The command tag being answered.
        tag: Tag,
        /// Decoded mailbox name; the writer encodes it per [`WriteOptions::utf8`].
        mailbox: String,
        /// The mailbox's UIDVALIDITY (non-zero).
        uid_validity: u32,
        /// Result items (the numbers are UIDs).
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
    /// `* uid UIDFETCH (...)` (RFC 9586 §3.3): a FETCH response named by UID, when UIDONLY is
    /// on. The items are written as given (a `UID` item too, when the client asked for it).
    UidFetch {
        /// The message's UID.
        uid: u32,
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
    /// `* ACL mailbox *(identifier rights)` (RFC 4314 §3.6), answering GETACL.
    Acl {
        /// Decoded mailbox name; the writer encodes it per [`WriteOptions::utf8`].
        mailbox: String,
        /// (identifier, rights) pairs, each written as an astring; may be empty.
        entries: Vec<(String, String)>,
    },
    /// `* LISTRIGHTS mailbox identifier required *(optional)` (RFC 4314 §3.7).
    ListRights {
        /// Decoded mailbox name.
        mailbox: String,
        /// The identifier exactly as the client sent it (§3.4).
        identifier: String,
        /// Rights always granted; may be empty (written `""`).
        required: String,
        /// Groups of rights that can be granted, each group all or nothing.
        optional: Vec<String>,
    },
    /// `* MYRIGHTS mailbox rights` (RFC 4314 §3.8); also follows a LIST response for
    /// `RETURN (MYRIGHTS)` (RFC 8440 §3).
    MyRights {
        /// Decoded mailbox name.
        mailbox: String,
        /// The logged-in user's rights on it.
        rights: String,
    },
    /// `* QUOTA root (resource usage limit ...)` (RFC 9208 §4.2.1).
    ///
    /// An empty resource list is written `()`: §4.2.1 says an empty list means no limits (as
    /// RFC 2087 allowed), although the §7 ABNF wants at least one resource.
    Quota {
        /// The quota root's name, written as an astring.
        root: String,
        /// (resource name, usage, limit); names that are not atoms are skipped.
        resources: Vec<(String, u64, u64)>,
    },
    /// `* METADATA mailbox (entry value ...)` (RFC 5464 §4.4.1), answering GETMETADATA. Not
    /// written when `entries` is empty (the grammar wants at least one).
    Metadata {
        /// Decoded mailbox name; `""` for server entries.
        mailbox: String,
        /// (entry name, value); `None` writes NIL. A value with NUL is written as literal8.
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// `* METADATA mailbox entry *(SP entry)` (RFC 5464 §4.4.2): these entries changed
    /// (unsolicited, RFC 5465 §5.6, §5.7). Not written when `entries` is empty.
    MetadataChanged {
        /// Decoded mailbox name; `""` for server entries.
        mailbox: String,
        /// The changed entries' names.
        entries: Vec<String>,
    },
    /// `* GENURLAUTH url ...` (RFC 4467 §8): the authorised URLs, in the order asked.
    GenUrlAuth(Vec<String>),
    /// `* URLFETCH url nstring ...` (RFC 4467 §8) or, for the parenthesised form of URLAUTH=BINARY,
    /// `url (BODYPARTSTRUCTURE body) (BINARY nstring8)` (RFC 5524 §4): each URL with its data,
    /// in the order asked.
    UrlFetch(Vec<(String, UrlFetchValue)>),
    /// `* UIDBATCHES (TAG "t") high:low,...` (RFC 10022 §4): the UID ranges of the batches
    /// asked for, newest batch first, each range written highest UID first. No ranges when
    /// no batch asked for exists.
    UidBatches {
        /// The UIDBATCHES command's tag.
        tag: Tag,
        /// (highest, lowest) UID of each batch; `highest >= lowest`, both non-zero.
        ranges: Vec<(u32, u32)>,
    },
    /// `* QUOTAROOT mailbox *(root)` (RFC 9208 §4.2.2).
    QuotaRoot {
        /// Decoded mailbox name.
        mailbox: String,
        /// The quota roots that apply to it; may be empty.
        roots: Vec<String>,
    },
}

/// What URLFETCH answers for one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlFetchValue {
    /// `url nstring`: the data (RFC 4467), or NIL when the URL cannot be fetched (in either
    /// form). Data with NUL is written as literal8, as METADATA values are.
    Plain(Option<bytes::Bytes>),
    /// `url (BODYPARTSTRUCTURE body) (BODY nstring / BINARY nstring8)` (RFC 5524 §4): the items
    /// asked for, the structure first.
    Extended {
        /// The structure of the part the URL names, with extension data (as BODYSTRUCTURE);
        /// boxed, as a structure is far bigger than the data's handle.
        structure: Option<Box<Body>>,
        /// BODY or BINARY and the data; `None` (NIL) for BINARY of a part whose transfer
        /// encoding cannot be undone.
        data: Option<UrlFetchBytes>,
    },
}

/// The BODY or BINARY item of an extended URLFETCH answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlFetchBytes {
    /// BINARY (transfer encoding removed) rather than BODY.
    pub binary: bool,
    /// The bytes; `None` is written NIL.
    pub data: Option<bytes::Bytes>,
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
    /// UIDONLY is enabled (RFC 9586 §3): no message number is ever written. A
    /// [`Data::Fetch`] becomes `* uid UIDFETCH (...)` with the UID taken from (and its `UID` item
    /// left out of) its items; one without a UID item, and [`Data::Expunge`], are not written.
    pub uidonly: bool,
}
