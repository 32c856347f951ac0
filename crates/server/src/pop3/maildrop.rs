//! The maildrop of one POP3 session: a snapshot of the account's INBOX taken at login (message
//! numbers → UIDs and sizes, RFC 1939 §4), the session's deletion marks, and the bytes of
//! RETR/TOP (dot-stuffed, CRLF line ends, RFC 1939 §3).
//!
//! The snapshot does not move: messages delivered during the session appear at the next login,
//! and a message expunged by IMAP meanwhile keeps its number (RETR and TOP answer `-ERR` for it,
//! DELE marks it and QUIT has nothing left to remove).
//!
//! Sizes are the store's (RFC822.SIZE, the message as stored). Delivery (LMTP, `deliver`) and
//! IMAP clients store CRLF line ends, so that is the number of octets RETR sends before
//! dot-stuffing; a message appended with bare LF line ends is sent with CRLF and so a few
//! octets longer than listed.
//!
//! Memory: 12 bytes per message for the session's life; the store is read in chunks of
//! [`FETCH_CHUNK`] messages.

use std::sync::Arc;

use postfach_store::{
    AccountId, ClaimRecent, FetchWant, MailStore, MailboxId, MailboxName, StoreError, Uid, UidSet,
    UidValidity,
};

use super::command::Msg;

/// Messages whose metadata one store read asks for while the snapshot is taken.
const FETCH_CHUNK: usize = 1024;
/// Bytes of a dot-stuffed message produced before they are handed to the socket.
pub(crate) const OUTPUT_CHUNK: usize = 64 * 1024;

/// One message of the snapshot.
#[derive(Debug, Clone, Copy)]
struct Entry {
    uid: Uid,
    size: u32,
    /// DELE marked it; RSET clears the mark.
    deleted: bool,
    /// RETR sent it whole: `\Seen` at QUIT.
    retrieved: bool,
}

/// Why a message number cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// No message has this number.
    NoSuchMessage,
    /// DELE marked it (RFC 1939 §5: it may not be referred to any more).
    Deleted,
}

impl Unusable {
    /// The `-ERR` text.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Unusable::NoSuchMessage => "No such message",
            Unusable::Deleted => "Message is marked deleted",
        }
    }
}

/// The INBOX as this session sees it.
#[derive(Debug)]
pub(crate) struct Maildrop {
    mailbox: MailboxId,
    uid_validity: UidValidity,
    messages: Vec<Entry>,
}

impl Maildrop {
    /// Takes the snapshot of `account`'s INBOX.
    pub(crate) async fn open(store: &Arc<dyn MailStore>, account: AccountId) -> Result<Maildrop, StoreError> {
        let inbox =
            store.mailbox_by_name(account, &MailboxName::inbox()).await?.ok_or(StoreError::NotFound)?;
        // Peek: a POP3 session does not take IMAP's \Recent from anybody.
        let snapshot = store.select(inbox.id, ClaimRecent::Peek).await?;
        let mut messages = Vec::with_capacity(usize::try_from(snapshot.uids.len()).unwrap_or(0));
        let mut uids = snapshot.uids.iter().peekable();
        while uids.peek().is_some() {
            let chunk = UidSet::from_uids(uids.by_ref().take(FETCH_CHUNK));
            // Only the messages still there: one expunged since the select is left out.
            for meta in store.fetch(inbox.id, &chunk, FetchWant::default()).await? {
                messages.push(Entry { uid: meta.uid, size: meta.size, deleted: false, retrieved: false });
            }
        }
        Ok(Maildrop { mailbox: inbox.id, uid_validity: snapshot.status.uid_validity, messages })
    }

    /// The INBOX's id.
    pub(crate) fn mailbox(&self) -> MailboxId {
        self.mailbox
    }

    /// Messages and octets not marked deleted (STAT, RFC 1939 §5).
    pub(crate) fn totals(&self) -> (usize, u64) {
        self.messages
            .iter()
            .filter(|e| !e.deleted)
            .fold((0, 0), |(n, octets), e| (n + 1, octets + u64::from(e.size)))
    }

    /// The message numbered `msg`, if it may be used.
    fn entry(&self, msg: Msg) -> Result<&Entry, Unusable> {
        let index =
            usize::try_from(msg.0).ok().and_then(|n| n.checked_sub(1)).ok_or(Unusable::NoSuchMessage)?;
        match self.messages.get(index) {
            None => Err(Unusable::NoSuchMessage),
            Some(e) if e.deleted => Err(Unusable::Deleted),
            Some(e) => Ok(e),
        }
    }

    /// The UID and size of message `msg`.
    pub(crate) fn message(&self, msg: Msg) -> Result<(Uid, u32), Unusable> {
        self.entry(msg).map(|e| (e.uid, e.size))
    }

    /// Appends the next lines of a LIST or UIDL listing (messages not marked deleted, from
    /// `listing`'s position on) to `out`, about [`OUTPUT_CHUNK`] bytes, and the terminating `.`
    /// at the end; `false` once the listing is complete.
    pub(crate) fn listing_chunk(&self, listing: &mut Listing, out: &mut Vec<u8>) -> bool {
        if listing.done {
            return false;
        }
        let goal = out.len() + OUTPUT_CHUNK;
        while out.len() < goal {
            let Some(entry) = self.messages.get(listing.next) else {
                out.extend_from_slice(b".\r\n");
                listing.done = true;
                return true;
            };
            listing.next += 1;
            if entry.deleted {
                continue;
            }
            let line = match listing.kind {
                ListingKind::Sizes => format!("{} {}\r\n", listing.next, entry.size),
                ListingKind::UniqueIds => format!("{} {}\r\n", listing.next, self.unique_id(entry.uid)),
            };
            out.extend_from_slice(line.as_bytes());
        }
        true
    }

    /// The unique-id of a message (RFC 1939 §7, UIDL): UID and UIDVALIDITY, each as eight
    /// lowercase hex digits. Both are kept by the store for the message's life, so the id is the
    /// same in every session and after restarts; it is what Dovecot's default
    /// `pop3_uidl_format` (`%08Xu%08Xv`) gives, so mail imported from Dovecot with its UIDs and
    /// UIDVALIDITY (`postfach import-maildir`) is not downloaded again. Dovecot's `%X` writes
    /// lowercase digits: the uppercase form of the first version made every such message new to
    /// a POP3 client (found by `bench/compare-pop3.py`).
    pub(crate) fn unique_id(&self, uid: Uid) -> String {
        format!("{:08x}{:08x}", uid.get(), self.uid_validity.0)
    }

    /// DELE: marks message `msg`.
    pub(crate) fn mark_deleted(&mut self, msg: Msg) -> Result<(), Unusable> {
        self.entry(msg)?;
        // `entry` succeeded, so the index is valid.
        if let Some(e) = self.messages.get_mut(msg.0 as usize - 1) {
            e.deleted = true;
        }
        Ok(())
    }

    /// RETR sent message `msg` whole.
    pub(crate) fn mark_retrieved(&mut self, msg: Msg) {
        if let Some(e) =
            usize::try_from(msg.0).ok().and_then(|n| n.checked_sub(1)).and_then(|i| self.messages.get_mut(i))
        {
            e.retrieved = true;
        }
    }

    /// RSET: clears every deletion mark.
    pub(crate) fn unmark_all(&mut self) {
        for e in &mut self.messages {
            e.deleted = false;
        }
    }

    /// The UIDs marked deleted (expunged at QUIT).
    pub(crate) fn deleted(&self) -> UidSet {
        UidSet::from_uids(self.messages.iter().filter(|e| e.deleted).map(|e| e.uid))
    }

    /// The UIDs retrieved and not deleted (`\Seen` at QUIT).
    pub(crate) fn retrieved(&self) -> UidSet {
        UidSet::from_uids(self.messages.iter().filter(|e| e.retrieved && !e.deleted).map(|e| e.uid))
    }
}

/// Which multi-line listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListingKind {
    /// LIST: `n size` (the scan listing, RFC 1939 §5).
    Sizes,
    /// UIDL: `n unique-id`.
    UniqueIds,
}

/// A LIST or UIDL listing being written, chunk by chunk (a large maildrop's listing is never
/// built whole in memory).
#[derive(Debug)]
pub(crate) struct Listing {
    kind: ListingKind,
    /// Index of the next message to consider.
    next: usize,
    done: bool,
}

impl Listing {
    /// A listing from the first message on.
    pub(crate) fn new(kind: ListingKind) -> Self {
        Self { kind, next: 0, done: false }
    }
}

/// Produces the multi-line body of RETR or TOP from a stored message, chunk by chunk: every line
/// ends in CRLF (a bare LF becomes CRLF, a missing last line end is added), a line starting with
/// `.` gets another `.` in front (RFC 1939 §3, byte-stuffing), and `.` CRLF ends it.
pub(crate) struct Stuffer {
    raw: Vec<u8>,
    /// Where the next line starts.
    at: usize,
    /// TOP's number of body lines; `None` for RETR (everything).
    body_lines: Option<u32>,
    /// Still in the header (TOP counts only lines after the blank line).
    in_header: bool,
    /// The terminating `.` CRLF went out.
    done: bool,
}

impl Stuffer {
    /// RETR (`body_lines` `None`) or TOP of `raw`.
    pub(crate) fn new(raw: Vec<u8>, body_lines: Option<u32>) -> Self {
        Self { raw, at: 0, body_lines, in_header: true, done: false }
    }

    /// Appends the next piece (about [`OUTPUT_CHUNK`] bytes) to `out`; `false` once everything,
    /// the terminator included, was produced.
    pub(crate) fn next_chunk(&mut self, out: &mut Vec<u8>) -> bool {
        if self.done {
            return false;
        }
        let goal = out.len() + OUTPUT_CHUNK;
        while out.len() < goal {
            if self.at >= self.raw.len() || self.body_lines == Some(0) && !self.in_header {
                out.extend_from_slice(b".\r\n");
                self.done = true;
                return true;
            }
            let rest = &self.raw[self.at..];
            let (line, next) = match rest.iter().position(|b| *b == b'\n') {
                Some(lf) => (&rest[..lf], self.at + lf + 1),
                None => (rest, self.raw.len()),
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.first() == Some(&b'.') {
                out.push(b'.');
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
            self.at = next;
            if self.in_header {
                // RFC 5322 §2.1: the header ends at the first empty line.
                self.in_header = !line.is_empty();
            } else if let Some(left) = &mut self.body_lines {
                *left -= 1;
            }
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stuffed(raw: &[u8], lines: Option<u32>) -> String {
        let mut stuffer = Stuffer::new(raw.to_vec(), lines);
        let mut out = Vec::new();
        while stuffer.next_chunk(&mut out) {}
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn retr_stuffs_dots_and_ends_lines_with_crlf() {
        let raw = b"Subject: x\r\n\r\n.hidden\r\n..two\r\nplain.\r\n.\r\nlast";
        assert_eq!(
            stuffed(raw, None),
            "Subject: x\r\n\r\n..hidden\r\n...two\r\nplain.\r\n..\r\nlast\r\n.\r\n"
        );
        // Bare LF becomes CRLF; a lone CR inside a line stays.
        assert_eq!(stuffed(b"A: b\n\nx\ry\n", None), "A: b\r\n\r\nx\ry\r\n.\r\n");
        assert_eq!(stuffed(b"", None), ".\r\n");
    }

    #[test]
    fn top_sends_the_header_and_n_body_lines() {
        let raw = b"A: 1\r\nB: 2\r\n\r\none\r\n.two\r\nthree\r\n";
        assert_eq!(stuffed(raw, Some(0)), "A: 1\r\nB: 2\r\n\r\n.\r\n");
        assert_eq!(stuffed(raw, Some(2)), "A: 1\r\nB: 2\r\n\r\none\r\n..two\r\n.\r\n");
        assert_eq!(stuffed(raw, Some(99)), "A: 1\r\nB: 2\r\n\r\none\r\n..two\r\nthree\r\n.\r\n");
        // No blank line: all of it is header.
        assert_eq!(stuffed(b"A: 1\r\nB: 2", Some(0)), "A: 1\r\nB: 2\r\n.\r\n");
    }

    #[test]
    fn listings_skip_deleted_messages_and_end_with_a_dot() {
        let entry = |uid, size| Entry { uid: Uid::new(uid).unwrap(), size, deleted: false, retrieved: false };
        let mut maildrop = Maildrop {
            mailbox: MailboxId(1),
            uid_validity: UidValidity(0x1234),
            messages: vec![entry(3, 100), entry(7, 200), entry(9, 300)],
        };
        maildrop.mark_deleted(Msg(2)).unwrap();
        let list = |kind| {
            let mut listing = Listing::new(kind);
            let mut out = Vec::new();
            while maildrop.listing_chunk(&mut listing, &mut out) {}
            String::from_utf8(out).unwrap()
        };
        assert_eq!(list(ListingKind::Sizes), "1 100\r\n3 300\r\n.\r\n");
        assert_eq!(list(ListingKind::UniqueIds), "1 0000000300001234\r\n3 0000000900001234\r\n.\r\n");
        assert_eq!(maildrop.totals(), (2, 400));
        assert_eq!(maildrop.message(Msg(2)), Err(Unusable::Deleted));
        assert_eq!(maildrop.message(Msg(4)), Err(Unusable::NoSuchMessage));
        assert_eq!(maildrop.deleted(), UidSet::from_uids([Uid::new(7).unwrap()]));
        maildrop.unmark_all();
        assert_eq!(maildrop.totals(), (3, 600));
    }

    #[test]
    fn big_messages_come_in_bounded_chunks() {
        let line = b"0123456789012345678901234567890123456789\r\n";
        let raw: Vec<u8> = line.iter().copied().cycle().take(line.len() * 10_000).collect();
        let mut stuffer = Stuffer::new(raw.clone(), None);
        let mut total = 0;
        let mut chunk = Vec::new();
        while stuffer.next_chunk(&mut chunk) {
            assert!(chunk.len() < OUTPUT_CHUNK + line.len() + 3, "{}", chunk.len());
            total += chunk.len();
            chunk.clear();
        }
        assert_eq!(total, raw.len() + 3);
    }
}
