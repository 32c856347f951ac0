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
use postfach_imap::criteria::{KeyScope, criterion};
use postfach_proto::parse_command;
use postfach_proto::types::{CommandBody, SearchKey, SequenceSet};
use postfach_store::{Criterion, Uid, UidSet};

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
    pub(crate) fn criterion(&self, uid_next: Uid) -> anyhow::Result<Criterion> {
        let scope = CliScope { largest_uid: uid_next.get().saturating_sub(1) };
        Ok(Criterion::And(self.keys.iter().map(|k| criterion(&scope, k, 0)).collect::<anyhow::Result<_>>()?))
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

/// The command line's answers to the keys that depend on who asks: a UID set is taken against
/// the mailbox searched (`*` its highest UID). Keys [`refuse_session_keys`] refuses never get
/// here; SEEN and UNSEEN read the message's flag.
struct CliScope {
    largest_uid: u32,
}

impl KeyScope for CliScope {
    type Error = anyhow::Error;

    fn scoped(&self, key: &SearchKey) -> Option<anyhow::Result<Criterion>> {
        match key {
            SearchKey::Uid(set) => Some(Ok(match set.resolve(self.largest_uid) {
                Some(numbers) => Criterion::Uids(UidSet::from_ranges(numbers.ranges().iter().cloned())),
                None => Criterion::Uids(UidSet::new()),
            })),
            _ => None,
        }
    }

    fn too_deep(&self) -> anyhow::Error {
        anyhow::anyhow!("the search keys are nested too deeply")
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
            q.criterion(uid_next).unwrap(),
            Criterion::And(vec![
                Criterion::Header("from".to_owned(), "alice".to_owned()),
                Criterion::Since(since),
                Criterion::FlagUnset(postfach_store::SystemFlags::SEEN),
            ])
        );
        let q = parse(&["UID 5:* NOT KEYWORD $Junk"]).unwrap();
        assert_eq!(
            q.criterion(uid_next).unwrap(),
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
