//! UIDBATCHES (RFC 10022, published from draft-ietf-mailmaint-imap-uidbatches): the UID ranges
//! that split the selected mailbox into batches of a given number of messages, so that a client
//! can FETCH, SEARCH or STORE a big mailbox one batch at a time, also under UIDONLY (RFC 9586),
//! where it has no sequence numbers to cut the mailbox with.
//!
//! Batch 1 holds the newest messages (the highest UIDs): clients want recent mail first. Each
//! batch is answered as one `high:low` range, and the ranges tile the UID space without gaps:
//! batch 1 starts at the highest UID, a batch ends at the UID of its oldest message, the next
//! one starts right below it (so UIDs expunged between two batches fall in the newer one), and
//! the last batch reaches down to UID 1. A client that walks the ranges thus covers every UID
//! up to the newest one, whatever was expunged meanwhile.
//!
//! The batches are cut from the session's own view of the mailbox (its UID map, the messages
//! it announced): that is what the client's sequence numbers and FETCH results refer to, and
//! the command announces new messages first (the gate polls before it, as for SEARCH). A batch
//! edge is one binary search over the map's runs, so the command costs the batches answered,
//! never the mailbox's messages, and reads nothing from the store.
//!
//! Refusals: a batch size below [`MIN_BATCH_SIZE`] is `NO [TOOFEW]`; a batch range whose first
//! batch comes after its last is `BAD [CLIENTBUG]`; more batches than [`MAX_BATCHES`] in one
//! answer (asked for by the range, or the whole mailbox without one) is `NO [TOOMANY]`, and
//! the client asks for a range of batches instead.

use std::num::NonZeroU32;

use postfach_proto::response::{Code, Data};
use postfach_proto::types::Tag;

use crate::Out;
use crate::respond::{Done, Reply};
use crate::selected::Selected;
use crate::uidmap::UidMap;

/// The smallest batch a client may ask for (RFC 10022: clients ask for at least 500).
pub(crate) const MIN_BATCH_SIZE: u32 = 500;

/// The most batches one answer carries: 10,000 ranges are about 200 KB on one response line.
pub(crate) const MAX_BATCHES: u32 = 10_000;

/// UIDBATCHES `size` [`first:last`]: one `* UIDBATCHES` with the ranges of the batches asked
/// for that exist (none when the range starts after the last batch).
pub(crate) fn uidbatches(
    sel: &Selected,
    tag: &Tag,
    size: NonZeroU32,
    range: Option<(NonZeroU32, NonZeroU32)>,
    out: &mut Out,
) -> Result<Done, Reply> {
    if size.get() < MIN_BATCH_SIZE {
        return Err(Reply::no(
            Some(Code::TooFew),
            format!("Batches of fewer than {MIN_BATCH_SIZE} messages are not offered"),
        ));
    }
    let (first, last) = match range {
        Some((first, last)) if first > last => {
            return Err(Reply::bad(
                Some(Code::ClientBug),
                "The batch range must go from the lower batch number to the higher",
            ));
        }
        Some((first, last)) => (first.get(), last.get()),
        None => (1, batch_count(sel.uids.len(), size.get())),
    };
    if last.saturating_sub(first) >= MAX_BATCHES {
        return Err(Reply::no(
            Some(Code::TooMany),
            format!("At most {MAX_BATCHES} batches an answer; ask for a batch range"),
        ));
    }
    let ranges = batch_ranges(&sel.uids, size.get(), first, last);
    out.data(&Data::UidBatches { tag: tag.clone(), ranges });
    Ok(Done::new())
}

/// How many batches of `size` messages `messages` make.
fn batch_count(messages: u32, size: u32) -> u32 {
    messages.div_ceil(size)
}

/// The (high, low) UIDs of batches `first..=last` (1-based, newest first) of `map`, those
/// that exist. Costs one or two lookups per batch.
fn batch_ranges(map: &UidMap, size: u32, first: u32, last: u32) -> Vec<(u32, u32)> {
    let messages = map.len();
    let last = last.min(batch_count(messages, size));
    let mut ranges = Vec::with_capacity(last.saturating_sub(first).saturating_add(1) as usize);
    for batch in first..=last {
        // Batch `b` holds the messages with sequence numbers `bottom..=top`.
        let top = messages - (batch - 1) * size;
        let bottom = top.saturating_sub(size) + 1;
        // The first batch starts at the newest UID; a later one right below the previous
        // batch's oldest message.
        let high = if batch == 1 {
            map.uid_at(top).map(|u| u.get())
        } else {
            map.uid_at(top + 1).map(|u| u.get() - 1)
        };
        // The last batch reaches down to UID 1, so no UID is left out below it.
        let low = if bottom == 1 { Some(1) } else { map.uid_at(bottom).map(|u| u.get()) };
        if let (Some(high), Some(low)) = (high, low) {
            ranges.push((high, low.min(high)));
        }
    }
    ranges
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postfach_store::{Uid, UidSet};

    fn map(uids: impl IntoIterator<Item = u32>) -> UidMap {
        UidMap::from_set(&UidSet::from_uids(uids.into_iter().map(|u| Uid::new(u).unwrap())))
    }

    #[test]
    fn batches_tile_the_uid_space_newest_first() {
        // 1..=10 without 4 and 8: 8 messages, batches of 3: [10 9 7] [6 5 3] [2 1].
        let m = map([1, 2, 3, 5, 6, 7, 9, 10]);
        assert_eq!(batch_ranges(&m, 3, 1, 10), vec![(10, 7), (6, 3), (2, 1)]);
        assert_eq!(batch_ranges(&m, 3, 2, 2), vec![(6, 3)]);
        assert_eq!(batch_ranges(&m, 3, 3, 9), vec![(2, 1)]);
        assert!(batch_ranges(&m, 3, 4, 9).is_empty());
        // A hole at a batch edge goes to the newer batch: [10 9 7] then 6:3 covers 4.
        let m = map([3, 7, 9, 10]);
        assert_eq!(batch_ranges(&m, 2, 1, 2), vec![(10, 9), (8, 1)]);
        // Everything in one batch still reaches UID 1.
        assert_eq!(batch_ranges(&map(40..=45), 500, 1, 1), vec![(45, 1)]);
        assert!(batch_ranges(&map([]), 500, 1, 1).is_empty());
    }

    #[test]
    fn a_big_mailbox_is_cut_by_lookups() {
        // A million messages in a few runs: the answer costs the batches, not the messages.
        let m = UidMap::from_set(&UidSet::from_ranges([1..=400_000, 400_010..=1_000_009]));
        assert_eq!(m.len(), 1_000_000);
        let r = batch_ranges(&m, 500, 1, 2000);
        assert_eq!(r.len(), 2000);
        assert_eq!(r[0], (1_000_009, 999_510));
        assert_eq!(r[1999], (500, 1));
        for w in r.windows(2) {
            assert_eq!(w[1].0 + 1, w[0].1, "contiguous");
        }
    }
}
