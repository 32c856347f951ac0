//! IMAP SEARCH keys on the command line (`postfach search`, `postfach expunge`): the words are
//! parsed by the protocol crate's own parser as the criteria of a `SEARCH` command, then turned
//! into the store's [`Criterion`] without a session.
//!
//! Quoting: each argument is one word of the query, and an argument with spaces, quotes or
//! non-ASCII letters in it is one string (`SUBJECT 'annual report'` is `SUBJECT "annual
//! report"`); a query given as a single argument is taken as it is (`'FROM alice UNSEEN'`).
//!
//! Limits: keys that only mean something inside an IMAP session are refused with the reason:
//! `$` (a saved search result), message sequence numbers, RECENT, NEW and OLD. SEEN and UNSEEN
//! read the message's flag (in a team mailbox with private `\Seen`, the owner's). A UID set is
//! taken per mailbox, `*` as its highest UID. `CHARSET` may only name UTF-8 or US-ASCII;
//! `RETURN` options are refused.

use anyhow::bail;
use postfach_proto::parse_command;
use postfach_proto::types::{CommandBody, Flag, SearchKey, SequenceSet};
use postfach_store::{Criterion, ModSeq, SystemFlags, Uid, UidSet};

/// The tag and command the words are parsed inside.
const PREFIX: &str = "x SEARCH ";

/// A parsed query, valid outside a session.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    /// The query as parsed (after quoting), for messages.
    text: String,
    /// The criteria, all of which must match.
    keys: Vec<SearchKey>,
}

impl Query {
    /// Parses the query's words; an error says what is wrong and where.
    pub(crate) fn parse(words: &[String]) -> anyhow::Result<Query> {
        let text = join(words);
        if text.trim().is_empty() {
            bail!("give a search query, e.g. FROM alice SINCE 1-Dec-2026 UNSEEN (or ALL)");
        }
        if text.contains(['\r', '\n']) {
            bail!("a search query is one line");
        }
        let command = format!("{PREFIX}{text}");
        let body = match parse_command(command.as_bytes()) {
            Ok(command) => command.body,
            Err(e) => {
                let at = e.offset.saturating_sub(PREFIX.len()).min(text.len());
                let rest = text.get(at..).unwrap_or_default();
                if rest.is_empty() {
                    bail!("not an IMAP search query: {} at its end", e.message);
                }
                bail!("not an IMAP search query: {} at {rest:?}", e.message);
            }
        };
        let CommandBody::Search { charset, return_opts, criteria, .. } = body else {
            bail!("not an IMAP search query: {text:?}");
        };
        if return_opts.is_some() {
            bail!("RETURN options have no meaning here: every match is listed");
        }
        if let Some(charset) = charset
            && !charset.eq_ignore_ascii_case("UTF-8")
            && !charset.eq_ignore_ascii_case("US-ASCII")
        {
            bail!("CHARSET {charset} is not supported: the query is matched as UTF-8");
        }
        for key in &criteria {
            refuse_session_keys(key)?;
        }
        Ok(Query { text, keys: criteria })
    }

    /// The query as it was parsed.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The store's criterion for a mailbox whose next UID is `uid_next` (for `*` in UID sets).
    pub(crate) fn criterion(&self, uid_next: Uid) -> Criterion {
        let largest = uid_next.get().saturating_sub(1);
        Criterion::And(self.keys.iter().map(|k| criterion(k, largest)).collect())
    }
}

/// The words as one query: one word alone as it is, else each word with spaces, quotes or
/// non-ASCII characters quoted (unless it is already quoted or a parenthesized group).
fn join(words: &[String]) -> String {
    if let [one] = words {
        return one.clone();
    }
    let quote = |w: &String| {
        let plain = !w.is_empty() && w.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
        if plain || w.starts_with('(') || (w.starts_with('"') && w.ends_with('"') && w.len() > 1) {
            return w.clone();
        }
        let mut quoted = String::with_capacity(w.len() + 2);
        quoted.push('"');
        for c in w.chars() {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('"');
        quoted
    };
    words.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// Refuses the keys that only a session can answer.
fn refuse_session_keys(key: &SearchKey) -> anyhow::Result<()> {
    match key {
        SearchKey::SequenceSet(SequenceSet::Saved) | SearchKey::Uid(SequenceSet::Saved) => {
            bail!("$ is the result a session saved with SEARCH RETURN (SAVE); there is none here")
        }
        SearchKey::SequenceSet(set) => {
            bail!("message numbers ({set}) only mean something in a session; use UID {set}")
        }
        SearchKey::Recent | SearchKey::New | SearchKey::Old => {
            bail!("RECENT, NEW and OLD describe one session's view; use SINCE or YOUNGER instead")
        }
        SearchKey::Not(k) => refuse_session_keys(k),
        SearchKey::Or(a, b) => {
            refuse_session_keys(a)?;
            refuse_session_keys(b)
        }
        SearchKey::And(keys) => keys.iter().try_for_each(refuse_session_keys),
        _ => Ok(()),
    }
}

fn text(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

/// One search key as a store criterion (the session's translation, `postfach_imap`'s
/// `cmd::search`, without its session state). Keys [`refuse_session_keys`] refuses match
/// nothing here. The parser bounds the nesting.
fn criterion(key: &SearchKey, largest_uid: u32) -> Criterion {
    let rec = |k: &SearchKey| criterion(k, largest_uid);
    let header = |name: &str, v: &[u8]| Criterion::Header(name.to_owned(), text(v));
    let nothing = || Criterion::Uids(UidSet::new());
    match key {
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
        SearchKey::Recent | SearchKey::New | SearchKey::Old | SearchKey::SequenceSet(_) => nothing(),
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
        SearchKey::Uid(set) => match set.resolve(largest_uid) {
            Some(numbers) => Criterion::Uids(UidSet::from_ranges(numbers.ranges().iter().cloned())),
            None => nothing(),
        },
        SearchKey::Not(k) => Criterion::Not(Box::new(rec(k))),
        SearchKey::Or(a, b) => Criterion::Or(Box::new(rec(a)), Box::new(rec(b))),
        SearchKey::And(keys) => Criterion::And(keys.iter().map(rec).collect()),
        SearchKey::ModSeq { modseq, .. } => Criterion::ModSeqAtLeast(ModSeq(*modseq)),
        SearchKey::Older(n) => Criterion::Older(u64::from(n.get())),
        SearchKey::Younger(n) => Criterion::Younger(u64::from(n.get())),
        SearchKey::SavedBefore(d) => Criterion::SavedBefore(d.days_since_epoch()),
        SearchKey::SavedOn(d) => Criterion::SavedOn(d.days_since_epoch()),
        SearchKey::SavedSince(d) => Criterion::SavedSince(d.days_since_epoch()),
        // Every mailbox keeps save dates (RFC 8514 §4.3).
        SearchKey::SaveDateSupported => Criterion::All,
        SearchKey::EmailId(id) => Criterion::EmailId(id.clone()),
        // THREADID is NIL for every message, so no message has this one.
        SearchKey::ThreadId(_) => nothing(),
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| (*w).to_owned()).collect()
    }

    fn parse(list: &[&str]) -> anyhow::Result<Query> {
        Query::parse(&words(list))
    }

    #[test]
    fn words_are_quoted_when_they_need_it() {
        assert_eq!(join(&words(&["FROM alice UNSEEN"])), "FROM alice UNSEEN");
        assert_eq!(join(&words(&["SUBJECT", "annual report"])), "SUBJECT \"annual report\"");
        assert_eq!(join(&words(&["SUBJECT", "Grüße"])), "SUBJECT \"Grüße\"");
        assert_eq!(join(&words(&["SUBJECT", "say \"hi\""])), "SUBJECT \"say \\\"hi\\\"\"");
        assert_eq!(join(&words(&["OR", "(FROM a TO b)", "SEEN"])), "OR (FROM a TO b) SEEN");
        assert_eq!(join(&words(&["SUBJECT", "\"as is\""])), "SUBJECT \"as is\"");
    }

    #[test]
    fn everyday_queries_become_criteria() {
        let uid_next = Uid::new(11).unwrap();
        let q = parse(&["FROM", "alice", "SINCE", "1-Dec-2026", "UNSEEN"]).unwrap();
        let since = postfach_proto::datetime::days_from_civil(2026, 12, 1);
        assert_eq!(
            q.criterion(uid_next),
            Criterion::And(vec![
                Criterion::Header("from".to_owned(), "alice".to_owned()),
                Criterion::Since(since),
                Criterion::FlagUnset(SystemFlags::SEEN),
            ])
        );
        let q = parse(&["UID 5:* NOT KEYWORD $Junk"]).unwrap();
        assert_eq!(
            q.criterion(uid_next),
            Criterion::And(vec![
                Criterion::Uids(UidSet::from_ranges([5..=10])),
                Criterion::Not(Box::new(Criterion::Keyword("$Junk".to_owned()))),
            ])
        );
        assert!(parse(&["SUBJECT", "Grüße aus Köln"]).is_ok());
        assert!(parse(&["CHARSET", "UTF-8", "ALL"]).is_ok());
    }

    #[test]
    fn session_only_keys_and_bad_syntax_are_refused_with_a_reason() {
        let err = |list: &[&str]| parse(list).unwrap_err().to_string();
        assert!(err(&["$"]).contains("SEARCH RETURN (SAVE)"));
        assert!(err(&["UID", "$"]).contains("SEARCH RETURN (SAVE)"));
        assert!(err(&["NOT (OR SEEN 1:5)"]).contains("use UID 1:5"));
        assert!(err(&["RECENT"]).contains("one session's view"));
        assert!(err(&["OR", "NEW", "SEEN"]).contains("one session's view"));
        assert!(
            err(&["SINCE", "yesterday"]).contains("at \"yesterday\""),
            "{}",
            err(&["SINCE", "yesterday"])
        );
        assert!(err(&["FROM"]).contains("at its end"), "{}", err(&["FROM"]));
        assert!(err(&["RETURN (COUNT) ALL"]).contains("RETURN"));
        assert!(err(&["CHARSET", "KOI8-R", "ALL"]).contains("KOI8-R"));
        assert!(err(&[]).contains("give a search query"));
    }
}
