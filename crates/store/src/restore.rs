//! The nouns of [`RestoreStore`](crate::RestoreStore): a mailbox and its messages as an export
//! reads them, and as an import writes them back verbatim (UIDVALIDITY, UIDs, MODSEQs, dates).
//!
//! Nothing here is a file format: `postfach-migrate` turns these into its JSON lines and back.

use std::sync::Arc;

use crate::acl::{AccountKind, SeenMode};
use crate::types::{Flags, InternalDate, MailboxId, ModSeq, SpecialUse, Uid, UidValidity};

/// Everything export needs to know about one mailbox besides its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxDump {
    /// The mailbox (its RFC 8474 MAILBOXID is `M` and this number).
    pub id: MailboxId,
    /// Full name, relative to the owner.
    pub name: String,
    /// RFC 6154 attribute.
    pub special_use: Option<SpecialUse>,
    /// UIDVALIDITY.
    pub uid_validity: UidValidity,
    /// UIDNEXT.
    pub uid_next: Uid,
    /// HIGHESTMODSEQ.
    pub highest_modseq: ModSeq,
    /// How `\Seen` is kept.
    pub seen_mode: SeenMode,
    /// Number of messages.
    pub messages: u32,
}

/// One message as export writes it: the bytes and every piece of metadata a client can see.
#[derive(Debug, Clone)]
pub struct MessageDump {
    /// UID.
    pub uid: Uid,
    /// MODSEQ of its last change.
    pub modseq: ModSeq,
    /// System flags and keywords.
    pub flags: Flags,
    /// INTERNALDATE with its zone.
    pub internal_date: InternalDate,
    /// SAVEDATE (RFC 8514), Unix seconds; `None` for messages stored before save dates were
    /// kept (FETCH shows the internal date for those).
    pub save_date: Option<i64>,
    /// The message, byte for byte.
    pub raw: Vec<u8>,
}

/// One row of per-account `\Seen` in a private-seen mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateSeenDump {
    /// The message.
    pub uid: Uid,
    /// The viewer, by canonical name.
    pub account: String,
    /// Whether the viewer has seen it.
    pub seen: bool,
    /// MODSEQ of the change.
    pub modseq: ModSeq,
}

/// One METADATA entry (RFC 5464) as export reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataDump {
    /// Whose private entry, by canonical name; `None` for a shared entry.
    pub account: Option<String>,
    /// The entry's name (lowercase, `/shared…` or `/private…`).
    pub entry: String,
    /// Its value.
    pub value: Vec<u8>,
}

/// The UIDVALIDITY a recreated mailbox gets ([`RestoreStore::recreate_mailbox`](crate::RestoreStore::recreate_mailbox)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewUidValidity {
    /// This one (it must differ from the current one).
    Given(UidValidity),
    /// A fresh one from the store, never the current one nor `avoid`: the value clients of
    /// another server know for a mailbox of this name, which must not come to mean other UIDs
    /// (UIDVALIDITYs drawn from the clock coincide across installations).
    Fresh {
        /// The value to stay away from.
        avoid: Option<UidValidity>,
    },
}

/// A mailbox to make with the identity it had at the source.
#[derive(Debug, Clone)]
pub struct MailboxRestore {
    /// Its UIDVALIDITY; `None`: a fresh one (the source did not know one).
    pub uid_validity: Option<UidValidity>,
    /// RFC 6154 attribute.
    pub special_use: Option<SpecialUse>,
    /// The MAILBOXID the source had (its number): used when this store never handed that
    /// id out, else the mailbox gets a fresh one.
    pub id_hint: Option<i64>,
}

/// Whether a restored message keeps the MODSEQ it had at the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModSeqRule {
    /// Keep it (HIGHESTMODSEQ is raised to it when lower). Only safe where no client can have
    /// seen a higher HIGHESTMODSEQ of the mailbox without this message.
    Keep,
    /// Take a new one from the mailbox, as any change does.
    Fresh,
}

/// One message to put back.
#[derive(Debug, Clone)]
pub struct MessageRestore {
    /// The UID it had; `None`: the next free one (a renumbered mailbox). A given UID must be at
    /// or above UIDNEXT, unless the mailbox holds this very message (same bytes) under it.
    pub uid: Option<Uid>,
    /// The MODSEQ it had (`ModSeq(0)`: unknown, always fresh).
    pub modseq: ModSeq,
    /// Whether to keep `modseq`.
    pub rule: ModSeqRule,
    /// The bytes.
    pub raw: Arc<[u8]>,
    /// Flags and keywords.
    pub flags: Flags,
    /// INTERNALDATE.
    pub internal_date: InternalDate,
    /// SAVEDATE, Unix seconds; `None`: unknown (FETCH then shows the internal date).
    pub save_date: Option<i64>,
}

/// What became of one [`MessageRestore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// Stored under this UID with this MODSEQ.
    Inserted(Uid, ModSeq),
    /// The same message (same UID, same bytes) was there already; its flags were left alone
    /// (they are the same, or the store's MODSEQ for it is as high as the source's).
    Present(Uid),
    /// The same message was there already with other flags and a lower MODSEQ than the
    /// source's (or the source has none): they now are the source's.
    FlagsUpdated(Uid, ModSeq),
}

impl Restored {
    /// The UID the message has now.
    pub fn uid(self) -> Uid {
        match self {
            Restored::Inserted(uid, _) | Restored::Present(uid) | Restored::FlagsUpdated(uid, _) => uid,
        }
    }
}

/// A run of expunged UIDs, `first..=last`, with the MODSEQ of their expunge (`None`: a new
/// one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpungedRun {
    /// First UID of the run.
    pub first: Uid,
    /// Last UID of the run.
    pub last: Uid,
    /// MODSEQ of the expunge, or `None` for a fresh one.
    pub modseq: Option<ModSeq>,
}

/// Whether recording expunges also removes messages that are present under those UIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresentUids {
    /// The mailbox is the source's own (same UIDVALIDITY): a present message was expunged at
    /// the source since, and goes.
    Expunge,
    /// The UIDs belong to the mailbox's own messages: present ones stay, only the gaps are
    /// recorded.
    Keep,
}

/// An account to make without default mailboxes (they come from the export).
#[derive(Debug, Clone)]
pub struct AccountRestore {
    /// Login or team name.
    pub name: String,
    /// User or team.
    pub kind: AccountKind,
    /// A team's delivery address.
    pub address: Option<String>,
}

/// The most UIDs one [`RestoreStore::restore_expunged`](crate::RestoreStore::restore_expunged)
/// call may cover: one writer job writes a row per UID, and a job must stay short.
pub const MAX_EXPUNGED_PER_CALL: u64 = 200_000;
