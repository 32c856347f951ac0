//! The sequence-number ↔ UID map of a selected mailbox (RFC 9051 §2.3.1.2), kept as runs of
//! consecutive UIDs.
//!
//! A mailbox's UIDs are mostly consecutive: appends take the next UID, and only expunges make
//! holes. So the map stores one entry per run, not per message: a million-message mailbox with a
//! few hundred holes costs a few KiB per session that selects it, where a plain UID list would
//! cost 4 MiB. Lookups are binary searches over the runs. The worst case, every other UID
//! expunged, costs 8 bytes per message (twice a plain list).

use std::ops::RangeInclusive;

use postfach_store::{Uid, UidSet};

/// The UIDs a session knows of, ascending; the message with sequence number `n` is the `n`-th.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UidMap {
    /// First UID of each run, ascending; runs never touch (a run ends before `start - 1` of the
    /// next one).
    starts: Vec<u32>,
    /// Sequence number of the last message of each run (so run `i` holds `ends[i] - ends[i-1]`
    /// messages).
    ends: Vec<u32>,
}

impl UidMap {
    /// The map of the UIDs in `set`.
    pub(crate) fn from_set(set: &UidSet) -> UidMap {
        let mut map = UidMap::default();
        for r in set.ranges() {
            map.push_range(r.clone());
        }
        map
    }

    /// Number of messages.
    pub(crate) fn len(&self) -> u32 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// The highest UID.
    pub(crate) fn last(&self) -> Option<Uid> {
        let i = self.starts.len().checked_sub(1)?;
        Uid::new(self.starts[i] + (self.run_len(i) - 1))
    }

    /// Sequence number of `uid`, when the map holds it.
    pub(crate) fn seq_of(&self, uid: Uid) -> Option<u32> {
        let i = self.starts.partition_point(|s| *s <= uid.get()).checked_sub(1)?;
        let offset = uid.get() - self.starts[i];
        (offset < self.run_len(i)).then(|| self.ends_before(i) + offset + 1)
    }

    /// UID of sequence number `seq` (1-based); a binary search over the runs. (Set commands go
    /// through [`UidMap::uid_ranges_of_seqs`]; UIDBATCHES looks up one UID per batch edge.)
    pub(crate) fn uid_at(&self, seq: u32) -> Option<Uid> {
        if seq == 0 {
            return None;
        }
        let i = self.ends.partition_point(|e| *e < seq);
        let start = *self.starts.get(i)?;
        Uid::new(start + (seq - self.ends_before(i) - 1))
    }

    /// Appends `uid`, which must be above [`UidMap::last`] (ignored otherwise).
    pub(crate) fn push(&mut self, uid: Uid) {
        self.push_range(uid.get()..=uid.get());
    }

    /// The UIDs of sequence numbers `seqs` (clamped to the map), as ascending UID ranges.
    pub(crate) fn uid_ranges_of_seqs(&self, seqs: RangeInclusive<u32>) -> Vec<RangeInclusive<u32>> {
        let (lo, hi) = ((*seqs.start()).max(1), (*seqs.end()).min(self.len()));
        let mut out = Vec::new();
        if lo > hi {
            return out;
        }
        let mut i = self.ends.partition_point(|e| *e < lo);
        let mut seq = lo;
        while seq <= hi && i < self.starts.len() {
            let before = self.ends_before(i);
            let last_seq = self.ends[i].min(hi);
            out.push(self.starts[i] + (seq - before - 1)..=self.starts[i] + (last_seq - before - 1));
            seq = last_seq + 1;
            i += 1;
        }
        out
    }

    /// The UIDs of `set` that the map holds, as ascending ranges; costs the runs and ranges
    /// involved, not the messages.
    pub(crate) fn known_ranges<'a>(
        &'a self,
        set: &'a UidSet,
    ) -> impl Iterator<Item = RangeInclusive<u32>> + 'a {
        set.ranges().iter().flat_map(move |r| {
            let (lo, hi) = (*r.start(), *r.end());
            // The first run that ends at or after `lo`.
            let first = self.starts.partition_point(|s| *s <= lo).saturating_sub(1);
            (first..self.starts.len())
                .map_while(move |i| {
                    let start = self.starts[i];
                    (start <= hi).then(|| {
                        let end = start + (self.run_len(i) - 1);
                        (start.max(lo), end.min(hi))
                    })
                })
                .filter(|(a, b)| a <= b)
                .map(|(a, b)| a..=b)
        })
    }

    /// Removes the UIDs of `gone`. Costs the runs, not the messages.
    pub(crate) fn remove(&mut self, gone: &UidSet) {
        if gone.is_empty() {
            return;
        }
        let old = std::mem::take(self);
        let holes = gone.ranges();
        let mut h = 0;
        for i in 0..old.starts.len() {
            let (mut start, end) = (old.starts[i], old.starts[i] + (old.run_len(i) - 1));
            // Skip holes entirely before this run.
            while h < holes.len() && *holes[h].end() < start {
                h += 1;
            }
            let mut k = h;
            while start <= end {
                match holes.get(k) {
                    Some(hole) if *hole.start() <= end => {
                        if *hole.start() > start {
                            self.push_range(start..=*hole.start() - 1);
                        }
                        match hole.end().checked_add(1) {
                            Some(next) if next > start => start = next,
                            Some(_) => {}
                            None => break,
                        }
                        k += 1;
                    }
                    _ => {
                        self.push_range(start..=end);
                        break;
                    }
                }
            }
        }
    }

    /// Messages in run `i`.
    fn run_len(&self, i: usize) -> u32 {
        self.ends[i] - self.ends_before(i)
    }

    /// Sequence number of the last message before run `i`.
    fn ends_before(&self, i: usize) -> u32 {
        if i == 0 { 0 } else { self.ends[i - 1] }
    }

    /// Appends the UIDs of `r`, all above the current last one (ignored otherwise).
    fn push_range(&mut self, r: RangeInclusive<u32>) {
        let (a, b) = (*r.start(), *r.end());
        if a > b || a == 0 || self.last().is_some_and(|l| a <= l.get()) {
            return;
        }
        let n = b - a + 1;
        let total = self.len().saturating_add(n);
        match self.last() {
            Some(l) if l.get().checked_add(1) == Some(a) => {
                if let Some(e) = self.ends.last_mut() {
                    *e = total;
                }
            }
            _ => {
                self.starts.push(a);
                self.ends.push(total);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn uid_of(n: u32) -> Uid {
        Uid::new(n).unwrap()
    }

    fn map(uids: &[u32]) -> UidMap {
        UidMap::from_set(&UidSet::from_uids(uids.iter().copied().map(uid_of)))
    }

    /// Every lookup agrees with the plain list it stands for.
    fn check(m: &UidMap, list: &[u32]) {
        assert_eq!(m.len() as usize, list.len());
        assert_eq!(m.last().map(|u| u.get()), list.last().copied());
        for (i, uid) in list.iter().enumerate() {
            assert_eq!(m.seq_of(uid_of(*uid)), Some(i as u32 + 1), "seq_of {uid}");
            assert_eq!(m.uid_at(i as u32 + 1), Some(uid_of(*uid)), "uid_at {}", i + 1);
        }
        let top = list.last().copied().unwrap_or(0) + 2;
        for uid in 1..top {
            if !list.contains(&uid) {
                assert_eq!(m.seq_of(uid_of(uid)), None, "absent {uid}");
            }
        }
        assert_eq!(m.uid_at(0), None);
        assert_eq!(m.uid_at(list.len() as u32 + 1), None);
    }

    #[test]
    fn lookups_match_a_plain_list() {
        let list = [1, 2, 3, 7, 8, 10, 20, 21, 22, 23];
        let m = map(&list);
        assert_eq!(m.starts.len(), 4, "one entry per run");
        check(&m, &list);
        check(&map(&[]), &[]);
    }

    #[test]
    fn sequence_ranges_become_uid_ranges() {
        let m = map(&[1, 2, 3, 7, 8, 10]);
        assert_eq!(m.uid_ranges_of_seqs(2..=5), vec![2..=3, 7..=8]);
        assert_eq!(m.uid_ranges_of_seqs(1..=u32::MAX), vec![1..=3, 7..=8, 10..=10]);
        assert_eq!(m.uid_ranges_of_seqs(6..=6), vec![10..=10]);
        assert!(m.uid_ranges_of_seqs(7..=9).is_empty());
    }

    #[test]
    fn known_ranges_intersect() {
        let m = map(&[1, 2, 3, 7, 8, 10]);
        let set = UidSet::from_ranges([2..=7, 9..=100]);
        assert_eq!(m.known_ranges(&set).collect::<Vec<_>>(), vec![2..=3, 7..=7, 10..=10]);
        let none = UidSet::from_ranges([4..=6]);
        assert_eq!(m.known_ranges(&none).count(), 0);
    }

    #[test]
    fn push_and_remove_keep_runs() {
        let mut list: Vec<u32> = (1..=50).collect();
        let mut m = map(&list);
        assert_eq!(m.starts.len(), 1);
        m.push(uid_of(51));
        m.push(uid_of(60));
        m.push(uid_of(60));
        m.push(uid_of(3));
        list.extend([51, 60]);
        check(&m, &list);
        let gone = UidSet::from_ranges([1..=1, 5..=7, 50..=59, 100..=200]);
        m.remove(&gone);
        list.retain(|u| !gone.contains(uid_of(*u)));
        check(&m, &list);
        m.remove(&UidSet::from_ranges([1..=u32::MAX]));
        check(&m, &[]);
    }

    #[test]
    fn random_edits_agree_with_a_plain_list() {
        // A small deterministic generator: the test needs variety, not randomness.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(n)) as u32
        };
        let mut list: Vec<u32> = Vec::new();
        let mut m = UidMap::default();
        let mut top = 0;
        for _ in 0..400 {
            if next(3) > 0 {
                top += 1 + next(3);
                m.push(uid_of(top));
                list.push(top);
            } else {
                let a = 1 + next(top.max(1));
                let gone = UidSet::from_ranges([a..=a + next(5), a + 7..=a + 7]);
                m.remove(&gone);
                list.retain(|u| !gone.contains(uid_of(*u)));
            }
            check(&m, &list);
        }
    }
}
