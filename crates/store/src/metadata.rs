//! Metadata entries (RFC 5464 METADATA): the nouns every backend shares, and the rules that are
//! the same for all of them (which rows a name reaches, when a write is one too many).
//!
//! An entry is a lowercase path that starts with `/shared` or `/private` (the session checks
//! names; the store trusts them). Shared entries have one value for everybody; private entries
//! one per account. Server entries belong to the installation (shared ones) or to one account
//! (its private ones); mailbox entries live and die with their mailbox, and follow it through a
//! RENAME (the mailbox row keeps its id); renaming INBOX copies INBOX's entries to the new
//! mailbox (RFC 5464 §4.1).

use crate::types::MailboxId;

/// The mailbox entry that sets the mailbox's own clean-up limit (the automatic clean-up of
/// `[cleanup]`, through METADATA): whole days as ASCII digits, 0 = never. On any mailbox, not
/// only Trash and Junk; on those it overrides the account's and the server's limit. A shared
/// entry: the mailbox's policy, the same for everybody who reads the mailbox.
pub const CLEANUP_DAYS_ENTRY: &str = "/shared/vendor/vendor.postfach/cleanup-days";

/// Longest clean-up limit accepted from [`CLEANUP_DAYS_ENTRY`]: a hundred years.
pub const MAX_CLEANUP_DAYS: u32 = 36_500;

/// The days a [`CLEANUP_DAYS_ENTRY`] value names; `None` when it is not a number of days (such
/// an entry is ignored, as if it were not there).
pub fn cleanup_days(value: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u32>().ok().filter(|d| *d <= MAX_CLEANUP_DAYS)
}

/// Where entries are kept (RFC 5464 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataPlace {
    /// The server's entries (the empty mailbox name).
    Server,
    /// A mailbox's entries.
    Mailbox(MailboxId),
}

/// How far below each named entry a read reaches (RFC 5464 §4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataDepth {
    /// The entry itself.
    Entry,
    /// The entry and its children.
    Children,
    /// The entry and everything below it.
    All,
}

/// How many entries a SETMETADATA may leave behind. The size of a value is the session's to
/// check (it answers `[METADATA MAXSIZE]` before anything reaches the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataLimits {
    /// Entries of one kind (shared, or one account's private) on one mailbox or on the server.
    pub max_entries: u32,
    /// Entries an account owns in all: on its mailboxes (anybody's private entries on them
    /// included) and its private server entries. The installation's shared server entries are
    /// bounded by `max_entries` alone.
    pub max_account_entries: u32,
}

impl Default for MetadataLimits {
    fn default() -> Self {
        Self { max_entries: 100, max_account_entries: 1000 }
    }
}

/// The outcome of [`crate::MailStore::set_metadata`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataWrite {
    /// Every entry was set or removed.
    Written,
    /// Nothing was written: a new entry would exceed a limit (RFC 5464 §4.3 `TOOMANY`).
    TooMany,
}

/// True when `entry` is private (kept per account).
pub fn is_private(entry: &str) -> bool {
    entry == "/private" || entry.starts_with("/private/")
}

/// The half-open range of names strictly below `entry` (`entry/…`): `/` is followed by `0` in
/// ASCII, so `(entry + "/", entry + "0")` holds exactly the descendants in byte order.
pub fn below(entry: &str) -> (String, String) {
    (format!("{entry}/"), format!("{entry}0"))
}

/// True when `name` is reached from `entry` at `depth`.
pub fn reaches(entry: &str, name: &str, depth: MetadataDepth) -> bool {
    if name == entry {
        return true;
    }
    let Some(rest) = name.strip_prefix(entry).and_then(|r| r.strip_prefix('/')) else { return false };
    match depth {
        MetadataDepth::Entry => false,
        MetadataDepth::Children => !rest.contains('/'),
        MetadataDepth::All => true,
    }
}

/// Whether a write that takes a group of entries from `before` to `after` is one too many for
/// `limit`: only growth is refused, so values can still be replaced or removed when a limit
/// was lowered below what is stored.
pub fn too_many(before: u64, after: u64, limit: u32) -> bool {
    after > before && after > u64::from(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_and_ranges() {
        use MetadataDepth::*;
        assert!(reaches("/a", "/a", Entry));
        assert!(!reaches("/a", "/a/b", Entry));
        assert!(reaches("/a", "/a/b", Children));
        assert!(!reaches("/a", "/a/b/c", Children));
        assert!(reaches("/a", "/a/b/c", All));
        assert!(!reaches("/a", "/ab", All));
        let (low, high) = below("/a");
        assert!("/a/b".as_bytes() > low.as_bytes() && "/a/b".as_bytes() < high.as_bytes());
        assert!("/a/~".as_bytes() < high.as_bytes() && "/ab".as_bytes() > high.as_bytes());
        assert!(is_private("/private/comment") && !is_private("/shared/comment") && !is_private("/privatex"));
        assert!(
            too_many(10, 11, 10) && !too_many(12, 12, 10) && !too_many(12, 11, 10) && !too_many(9, 10, 10)
        );
    }
}
