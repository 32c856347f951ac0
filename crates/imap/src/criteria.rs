//! SEARCH keys (RFC 9051 §6.4.4) as the store's [`Criterion`]: the one translation that both a
//! session's SEARCH/SORT/THREAD and the admin CLI's `search`/`expunge` use.
//!
//! Most keys mean the same wherever they are asked. A few depend on who asks: `\Seen` (a user's
//! own in a private-`\Seen` mailbox), `\Recent`, NEW, OLD, sequence numbers and UID sets
//! (resolved against a mailbox). A caller answers those through a [`KeyScope`]; everything else
//! is translated here.

use postfach_proto::types::{Flag, SearchKey};
use postfach_store::{Criterion, ModSeq, SystemFlags, UidSet};

/// Deepest nesting of NOT/OR/parentheses translated (the parser bounds it too).
pub const MAX_SEARCH_DEPTH: usize = 64;

/// What a caller decides about the keys whose meaning depends on it.
pub trait KeyScope {
    /// What a refused key or a too deep nesting becomes.
    type Error;
    /// The criterion of `key` when it depends on the caller; `None`: the key means the same
    /// everywhere and is translated by [`criterion`].
    fn scoped(&self, key: &SearchKey) -> Option<Result<Criterion, Self::Error>>;
    /// The error for criteria nested deeper than [`MAX_SEARCH_DEPTH`].
    fn too_deep(&self) -> Self::Error;
}

/// `key` (nested `depth` levels deep) as a store criterion.
pub fn criterion<S: KeyScope>(scope: &S, key: &SearchKey, depth: usize) -> Result<Criterion, S::Error> {
    if depth > MAX_SEARCH_DEPTH {
        return Err(scope.too_deep());
    }
    if let Some(answer) = scope.scoped(key) {
        return answer;
    }
    let rec = |k: &SearchKey| criterion(scope, k, depth + 1);
    let text = |s: &[u8]| String::from_utf8_lossy(s).into_owned();
    let header = |name: &str, v: &[u8]| Criterion::Header(name.to_owned(), text(v));
    Ok(match key {
        SearchKey::All => Criterion::All,
        SearchKey::Answered => Criterion::FlagSet(SystemFlags::ANSWERED),
        SearchKey::Deleted => Criterion::FlagSet(SystemFlags::DELETED),
        SearchKey::Draft => Criterion::FlagSet(SystemFlags::DRAFT),
        SearchKey::Flagged => Criterion::FlagSet(SystemFlags::FLAGGED),
        SearchKey::Seen => Criterion::FlagSet(SystemFlags::SEEN),
        SearchKey::Unanswered => Criterion::FlagUnset(SystemFlags::ANSWERED),
        SearchKey::Undeleted => Criterion::FlagUnset(SystemFlags::DELETED),
        SearchKey::Undraft => Criterion::FlagUnset(SystemFlags::DRAFT),
        SearchKey::Unflagged => Criterion::FlagUnset(SystemFlags::FLAGGED),
        SearchKey::Unseen => Criterion::FlagUnset(SystemFlags::SEEN),
        SearchKey::Keyword(f) => flag_criterion(f, true),
        SearchKey::Unkeyword(f) => flag_criterion(f, false),
        // No session, no \Recent: nothing is recent, everything is old.
        SearchKey::Recent | SearchKey::New => Criterion::Uids(UidSet::new()),
        SearchKey::Old => Criterion::All,
        SearchKey::Bcc(s) => header("bcc", s),
        SearchKey::Cc(s) => header("cc", s),
        SearchKey::From(s) => header("from", s),
        SearchKey::To(s) => header("to", s),
        SearchKey::Subject(s) => header("subject", s),
        SearchKey::Header(name, v) => Criterion::Header(text(name).to_ascii_lowercase(), text(v)),
        SearchKey::Body(s) => Criterion::Body(text(s)),
        SearchKey::Text(s) => Criterion::Text(text(s)),
        SearchKey::Before(d) => Criterion::Before(d.days_since_epoch()),
        SearchKey::On(d) => Criterion::On(d.days_since_epoch()),
        SearchKey::Since(d) => Criterion::Since(d.days_since_epoch()),
        SearchKey::SentBefore(d) => Criterion::SentBefore(d.days_since_epoch()),
        SearchKey::SentOn(d) => Criterion::SentOn(d.days_since_epoch()),
        SearchKey::SentSince(d) => Criterion::SentSince(d.days_since_epoch()),
        SearchKey::Larger(n) => Criterion::Larger(u32::try_from(*n).unwrap_or(u32::MAX)),
        SearchKey::Smaller(n) => Criterion::Smaller(u32::try_from(*n).unwrap_or(u32::MAX)),
        // Sets need a mailbox: a scope that has none matches nothing with them.
        SearchKey::Uid(_) | SearchKey::SequenceSet(_) => Criterion::Uids(UidSet::new()),
        SearchKey::Not(k) => Criterion::Not(Box::new(rec(k)?)),
        SearchKey::Or(a, b) => Criterion::Or(Box::new(rec(a)?), Box::new(rec(b)?)),
        SearchKey::And(keys) => Criterion::And(keys.iter().map(rec).collect::<Result<_, _>>()?),
        SearchKey::ModSeq { modseq, .. } => Criterion::ModSeqAtLeast(ModSeq(*modseq)),
        SearchKey::Older(n) => Criterion::Older(u64::from(n.get())),
        SearchKey::Younger(n) => Criterion::Younger(u64::from(n.get())),
        SearchKey::SavedBefore(d) => Criterion::SavedBefore(d.days_since_epoch()),
        SearchKey::SavedOn(d) => Criterion::SavedOn(d.days_since_epoch()),
        SearchKey::SavedSince(d) => Criterion::SavedSince(d.days_since_epoch()),
        // Every mailbox keeps save dates (RFC 8514 §4.3).
        SearchKey::SaveDateSupported => Criterion::All,
        SearchKey::EmailId(id) => Criterion::EmailId(id.clone()),
        // THREADID is NIL for every message (FETCH THREADID), so no message has this one.
        SearchKey::ThreadId(_) => Criterion::Uids(UidSet::new()),
    })
}

/// KEYWORD / UNKEYWORD: a system flag given as keyword still means the flag.
fn flag_criterion(f: &Flag, set: bool) -> Criterion {
    let bit = match f {
        Flag::Seen => Some(SystemFlags::SEEN),
        Flag::Answered => Some(SystemFlags::ANSWERED),
        Flag::Flagged => Some(SystemFlags::FLAGGED),
        Flag::Deleted => Some(SystemFlags::DELETED),
        Flag::Draft => Some(SystemFlags::DRAFT),
        _ => None,
    };
    match (bit, set) {
        (Some(b), true) => Criterion::FlagSet(b),
        (Some(b), false) => Criterion::FlagUnset(b),
        (None, true) => Criterion::Keyword(f.to_string()),
        (None, false) => Criterion::NoKeyword(f.to_string()),
    }
}
