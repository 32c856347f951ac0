//! Sequence sets as sent by clients, and normalised number sets as sent by servers.
//!
//! [`SequenceSet`] is the parsed `sequence-set` of RFC 9051 §9 (with `*`, and `$` from RFC 5182
//! SEARCHRES). It is resolved against the mailbox's largest number into a [`NumberSet`]: sorted,
//! merged, non-overlapping inclusive ranges. Nothing here allocates per number, so
//! `1:4294967295` costs one range.

use std::fmt;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;

/// One end of a `seq-range`: a non-zero number or `*` (RFC 9051 §9 `seq-number`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNum {
    /// An explicit non-zero number.
    Value(NonZeroU32),
    /// `*`: the largest number in use (the last message's sequence number or UID).
    Star,
}

impl SeqNum {
    /// Resolves `*` to `largest`; a value stays itself.
    pub fn resolve(self, largest: u32) -> u32 {
        match self {
            SeqNum::Value(v) => v.get(),
            SeqNum::Star => largest,
        }
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqNum::Value(v) => write!(f, "{v}"),
            SeqNum::Star => f.write_str("*"),
        }
    }
}

/// One element of a sequence set: `n` or `a:b` (either order; RFC 9051 §9 `seq-range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqRange {
    /// A single `seq-number`.
    Single(SeqNum),
    /// `a:b`; the two ends may be in either order ("2:4" and "4:2" are the same).
    Range(SeqNum, SeqNum),
}

impl SeqRange {
    /// The inclusive numeric bounds (low, high) after resolving `*` against `largest`.
    pub fn bounds(&self, largest: u32) -> (u32, u32) {
        match *self {
            SeqRange::Single(n) => {
                let v = n.resolve(largest);
                (v, v)
            }
            SeqRange::Range(a, b) => {
                let (a, b) = (a.resolve(largest), b.resolve(largest));
                (a.min(b), a.max(b))
            }
        }
    }
}

impl fmt::Display for SeqRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqRange::Single(n) => write!(f, "{n}"),
            SeqRange::Range(a, b) => write!(f, "{a}:{b}"),
        }
    }
}

/// A client's `sequence-set`: either `$` (the saved search result, RFC 5182 §2.1) or a
/// non-empty list of numbers and ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SequenceSet {
    /// `$`: refers to the result saved by `SEARCH RETURN (SAVE)`; the session substitutes it.
    Saved,
    /// An explicit, non-empty list of numbers/ranges.
    Ranges(SeqRanges),
}

impl SequenceSet {
    /// Resolves against `largest` (message count or largest UID). Returns `None` for `$`,
    /// whose meaning only the session knows. See [`SeqRanges::resolve`] for the rules.
    pub fn resolve(&self, largest: u32) -> Option<NumberSet> {
        match self {
            SequenceSet::Saved => None,
            SequenceSet::Ranges(r) => Some(r.resolve(largest)),
        }
    }

    /// A set holding a single range `lo:hi` (either order); `None` if either end is zero.
    pub fn range(lo: u32, hi: u32) -> Option<SequenceSet> {
        let lo = NonZeroU32::new(lo)?;
        let hi = NonZeroU32::new(hi)?;
        SeqRanges::new(vec![SeqRange::Range(SeqNum::Value(lo), SeqNum::Value(hi))]).map(SequenceSet::Ranges)
    }
}

impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SequenceSet::Saved => f.write_str("$"),
            SequenceSet::Ranges(r) => write!(f, "{r}"),
        }
    }
}

/// A non-empty list of [`SeqRange`]s, in the order the client sent them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeqRanges(Vec<SeqRange>);

impl SeqRanges {
    /// Wraps a list; `None` when it is empty (the grammar needs at least one element).
    pub fn new(items: Vec<SeqRange>) -> Option<SeqRanges> {
        if items.is_empty() { None } else { Some(SeqRanges(items)) }
    }

    /// The elements as sent.
    pub fn items(&self) -> &[SeqRange] {
        &self.0
    }

    /// True if any element uses `*`.
    pub fn has_star(&self) -> bool {
        self.0.iter().any(|r| match r {
            SeqRange::Single(n) => *n == SeqNum::Star,
            SeqRange::Range(a, b) => *a == SeqNum::Star || *b == SeqNum::Star,
        })
    }

    /// The largest number named explicitly or via `*` (after resolving `*` to `largest`).
    /// Used to check RFC 9051 §9 `seq-number`'s rule about sequence numbers beyond the mailbox size.
    pub fn max_value(&self, largest: u32) -> u32 {
        self.0.iter().map(|r| r.bounds(largest).1).max().unwrap_or(0)
    }

    /// Resolves `*` to `largest` and normalises into sorted, merged ranges.
    ///
    /// Ranges are not clamped to `largest`: "559:*" with `largest` 100 is `100:559`
    /// (RFC 9051 §9 `seq-range`: "3291:*" includes the last message). Zero is never a valid
    /// number, so when `largest` is 0 a `*` end contributes nothing below 1.
    pub fn resolve(&self, largest: u32) -> NumberSet {
        let mut ranges: Vec<(u32, u32)> = Vec::with_capacity(self.0.len());
        for r in &self.0 {
            let (lo, hi) = r.bounds(largest);
            if hi == 0 {
                continue;
            }
            ranges.push((lo.max(1), hi));
        }
        NumberSet::from_pairs(ranges)
    }
}

impl fmt::Display for SeqRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// A normalised set of non-zero numbers: sorted, merged, non-overlapping inclusive ranges.
///
/// Used for resolved client sets and for every set the server sends (COPYUID, APPENDUID,
/// VANISHED, ESEARCH ALL, MODIFIED). It may be empty; writers must not emit an empty set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct NumberSet(Vec<RangeInclusive<u32>>);

impl NumberSet {
    /// The empty set.
    pub fn new() -> NumberSet {
        NumberSet(Vec::new())
    }

    /// Builds from arbitrary (possibly unsorted, overlapping, reversed) inclusive ranges;
    /// zeros are dropped.
    pub fn from_ranges<I: IntoIterator<Item = RangeInclusive<u32>>>(ranges: I) -> NumberSet {
        NumberSet::from_pairs(
            ranges
                .into_iter()
                .map(|r| {
                    let (a, b) = r.into_inner();
                    (a.min(b), a.max(b))
                })
                .filter(|&(_, hi)| hi > 0)
                .map(|(lo, hi)| (lo.max(1), hi))
                .collect(),
        )
    }

    /// Builds from individual numbers in any order; zeros are dropped.
    pub fn from_numbers<I: IntoIterator<Item = u32>>(numbers: I) -> NumberSet {
        NumberSet::from_pairs(numbers.into_iter().filter(|&n| n > 0).map(|n| (n, n)).collect())
    }

    /// Sorts and merges (lo, hi) pairs with lo <= hi, lo >= 1.
    fn from_pairs(mut pairs: Vec<(u32, u32)>) -> NumberSet {
        pairs.sort_unstable();
        let mut out: Vec<RangeInclusive<u32>> = Vec::with_capacity(pairs.len());
        let mut cur: Option<(u32, u32)> = None;
        for (lo, hi) in pairs {
            cur = match cur {
                // Merge overlapping or adjacent ranges; `saturating_add` keeps u32::MAX safe.
                Some((clo, chi)) if lo <= chi.saturating_add(1) => Some((clo, chi.max(hi))),
                Some((clo, chi)) => {
                    out.push(clo..=chi);
                    Some((lo, hi))
                }
                None => Some((lo, hi)),
            };
        }
        if let Some((lo, hi)) = cur {
            out.push(lo..=hi);
        }
        NumberSet(out)
    }

    /// The ranges, sorted and disjoint.
    pub fn ranges(&self) -> &[RangeInclusive<u32>] {
        &self.0
    }

    /// True if the set holds no number.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many numbers the set holds (u64: `1:4294967295` has 2^32-1 members).
    pub fn len(&self) -> u64 {
        self.0.iter().map(|r| u64::from(*r.end()) - u64::from(*r.start()) + 1).sum()
    }

    /// Membership test in O(log ranges).
    pub fn contains(&self, n: u32) -> bool {
        self.0
            .binary_search_by(|r| {
                if *r.end() < n {
                    std::cmp::Ordering::Less
                } else if *r.start() > n {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    }

    /// The smallest member.
    pub fn min(&self) -> Option<u32> {
        self.0.first().map(|r| *r.start())
    }

    /// The largest member.
    pub fn max(&self) -> Option<u32> {
        self.0.last().map(|r| *r.end())
    }

    /// The same set with every number above `max` removed.
    pub fn clamp(&self, max: u32) -> NumberSet {
        NumberSet(
            self.0.iter().filter(|r| *r.start() <= max).map(|r| *r.start()..=(*r.end()).min(max)).collect(),
        )
    }

    /// Iterates the members in ascending order, lazily.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|r| r.clone())
    }

    /// Adds one number, keeping the set normalised. O(ranges) in the worst case.
    pub fn insert(&mut self, n: u32) {
        if n == 0 || self.contains(n) {
            return;
        }
        // Fast path: appending in ascending order is the common case (building results).
        if let Some(last) = self.0.last_mut()
            && *last.end() < n
        {
            if last.end().saturating_add(1) == n {
                *last = *last.start()..=n;
            } else {
                self.0.push(n..=n);
            }
            return;
        }
        if self.0.is_empty() {
            self.0.push(n..=n);
            return;
        }
        let mut pairs: Vec<(u32, u32)> = self.0.iter().map(|r| (*r.start(), *r.end())).collect();
        pairs.push((n, n));
        *self = NumberSet::from_pairs(pairs);
    }
}

impl fmt::Display for NumberSet {
    /// IMAP `sequence-set` form, e.g. `1:3,5`. An empty set prints nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.start() == r.end() {
                write!(f, "{}", r.start())?;
            } else {
                write!(f, "{}:{}", r.start(), r.end())?;
            }
        }
        Ok(())
    }
}

impl FromIterator<u32> for NumberSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        NumberSet::from_numbers(iter)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v(n: u32) -> SeqNum {
        SeqNum::Value(NonZeroU32::new(n).unwrap())
    }

    #[test]
    fn resolve_merges_and_sorts() {
        let s = SeqRanges::new(vec![
            SeqRange::Range(v(10), v(5)),
            SeqRange::Single(v(2)),
            SeqRange::Single(v(3)),
            SeqRange::Range(v(11), SeqNum::Star),
        ])
        .unwrap();
        let r = s.resolve(20);
        assert_eq!(r.ranges(), &[2..=3, 5..=20]);
        assert_eq!(r.to_string(), "2:3,5:20");
        assert_eq!(r.len(), 18);
        assert!(r.contains(2) && r.contains(20) && !r.contains(4) && !r.contains(21));
    }

    #[test]
    fn huge_range_is_cheap() {
        let s = SeqRanges::new(vec![SeqRange::Range(v(1), v(u32::MAX))]).unwrap();
        let r = s.resolve(5);
        assert_eq!(r.ranges(), &[1..=u32::MAX]);
        assert_eq!(r.len(), u64::from(u32::MAX));
        assert_eq!(r.clamp(5).ranges(), &[1..=5]);
        assert_eq!(r.iter().take(3).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn star_beyond_largest_and_empty_mailbox() {
        // RFC 9051 §9 `seq-range`: "559:*" includes the last UID even if 559 is higher.
        let s = SeqRanges::new(vec![SeqRange::Range(v(559), SeqNum::Star)]).unwrap();
        assert_eq!(s.resolve(100).ranges(), &[100..=559]);
        assert_eq!(s.resolve(0).ranges(), &[1..=559]);
        let star = SeqRanges::new(vec![SeqRange::Single(SeqNum::Star)]).unwrap();
        assert!(star.resolve(0).is_empty());
        assert_eq!(star.max_value(7), 7);
        assert!(star.has_star());
    }

    #[test]
    fn insert_keeps_normalised() {
        let mut s = NumberSet::new();
        for n in [1, 2, 3, 7, 5, 6, 0, u32::MAX, 4] {
            s.insert(n);
        }
        assert_eq!(s.ranges(), &[1..=7, u32::MAX..=u32::MAX]);
        let t: NumberSet = [9, 8, 8, 1].into_iter().collect();
        assert_eq!(t.to_string(), "1,8:9");
        let u = NumberSet::from_ranges([RangeInclusive::new(u32::MAX, 1), 0..=0]);
        assert_eq!(u.ranges(), &[1..=u32::MAX]);
    }
}
