//! SEARCH (ESEARCH return options), SORT and THREAD (RFC 5256, RFC 5267), and the search keys
//! they share. The only recursion in the parser lives here, bounded by [`MAX_NESTING`].

use super::{MAX_NESTING, PResult, Parser};
use crate::datetime::Date;
use crate::types::{
    CommandBody, CommandKind, EntryType, FetchAttribute, PartialRange, SearchKey, SearchReturn, SearchSource,
    SortCriterion, SortKey, ThreadAlgorithm,
};

impl Parser<'_> {
    /// `search = "SEARCH" [search-return-opts] SP search-program`;
    /// `search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"`;
    /// `search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)`.
    pub(super) fn search(&mut self, kind: CommandKind) -> PResult<CommandBody> {
        self.sp()?;
        let mut update_fetch = Vec::new();
        let (return_opts, charset, criteria) = self.search_program(Some(&mut update_fetch))?;
        Ok(CommandBody::Search { kind, charset, return_opts, update_fetch, criteria })
    }

    /// `esearch = "ESEARCH" [SP esearch-source-opts] [SP search-return-opts] SP search-program`;
    /// `esearch-source-opts = "IN" SP "(" source-mbox [SP "(" scope-options ")"] ")"`;
    /// `source-mbox = filter-mailboxes *(SP filter-mailboxes)` (RFC 7377 §4). No scope option
    /// is defined, so none is accepted.
    pub(super) fn esearch(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mut sources = Vec::new();
        if self.eat_keyword("IN") {
            self.sp()?;
            self.byte(b'(', "'(' of source options")?;
            loop {
                sources.push(self.filter_mailboxes()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
                if self.peek() == Some(b'(') {
                    return self.fail_msg("no ESEARCH scope option is defined (RFC 7377 §4)");
                }
            }
            self.sp()?;
        }
        // RFC 5465 §7 extends UPDATE for SEARCH and SORT only.
        let (return_opts, charset, criteria) = self.search_program(None)?;
        Ok(CommandBody::ESearch { sources, return_opts, charset, criteria })
    }

    /// `filter-mailboxes = "selected" / "inboxes" / "personal" / "subscribed" /
    /// ("subtree" / "subtree-one" / "mailboxes") SP one-or-more-mailbox` (RFC 5465 §8 as
    /// RFC 7377 §4 changes it: no `selected-delayed`).
    fn filter_mailboxes(&mut self) -> PResult<SearchSource> {
        let start = self.pos;
        let word = self.word_req("mailbox filter")?.to_ascii_lowercase();
        Ok(match word.as_slice() {
            b"selected" => SearchSource::Selected,
            b"inboxes" => SearchSource::Inboxes,
            b"personal" => SearchSource::Personal,
            b"subscribed" => SearchSource::Subscribed,
            b"subtree" => SearchSource::Subtree(self.one_or_more_mailbox()?),
            b"subtree-one" => SearchSource::SubtreeOne(self.one_or_more_mailbox()?),
            b"mailboxes" => SearchSource::Mailboxes(self.one_or_more_mailbox()?),
            _ => {
                self.pos = start;
                return self
                    .fail("selected, inboxes, personal, subscribed, subtree, subtree-one or mailboxes");
            }
        })
    }

    /// `SP one-or-more-mailbox`; `one-or-more-mailbox = mailbox / many-mailboxes`;
    /// `many-mailboxes = "(" mailbox *(SP mailbox) ")"` (RFC 5465 §8).
    pub(super) fn one_or_more_mailbox(&mut self) -> PResult<Vec<crate::types::WireMailboxName>> {
        self.sp()?;
        if !self.eat(b'(') {
            return Ok(vec![self.mailbox()?]);
        }
        let mut names = vec![self.mailbox()?];
        while self.eat(b' ') {
            names.push(self.mailbox()?);
        }
        self.byte(b')', "')' after the mailboxes")?;
        Ok(names)
    }

    /// `[search-return-opts SP] search-program` (after the SP that precedes them); the fetch
    /// attributes of `UPDATE (...)` go to `update_fetch`, and are a syntax error without it.
    #[allow(clippy::type_complexity)]
    fn search_program(
        &mut self,
        update_fetch: Option<&mut Vec<FetchAttribute>>,
    ) -> PResult<(Option<Vec<SearchReturn>>, Option<String>, Vec<SearchKey>)> {
        let mut return_opts = None;
        if self.eat_keyword("RETURN") {
            self.sp()?;
            return_opts = Some(self.search_return_opts(update_fetch)?);
            self.sp()?;
        }
        let mut charset = None;
        if self.eat_keyword("CHARSET") {
            self.sp()?;
            // `charset = atom / quoted`
            let cs = if self.peek() == Some(b'"') { self.quoted()? } else { self.atom()?.to_vec() };
            charset = Some(String::from_utf8_lossy(&cs).into_owned());
            self.sp()?;
        }
        let mut criteria = vec![self.search_key()?];
        while self.eat(b' ') {
            criteria.push(self.search_key()?);
        }
        Ok((return_opts, charset, criteria))
    }

    /// `sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria SP search-criteria`
    /// (RFC 5256 §5, RFC 5267 §5); `sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"`;
    /// `search-criteria = charset 1*(SP search-key)`.
    pub(super) fn sort(&mut self, kind: CommandKind) -> PResult<CommandBody> {
        self.sp()?;
        let mut return_opts = None;
        let mut update_fetch = Vec::new();
        if self.eat_keyword("RETURN") {
            self.sp()?;
            return_opts = Some(self.search_return_opts(Some(&mut update_fetch))?);
            self.sp()?;
        }
        self.byte(b'(', "'(' of sort criteria")?;
        let mut criteria = Vec::new();
        loop {
            let reverse = self.eat_keyword("REVERSE");
            if reverse {
                self.sp()?;
            }
            let start = self.pos;
            let w = self.word_req("sort key")?.to_ascii_uppercase();
            let key = match w.as_slice() {
                b"ARRIVAL" => SortKey::Arrival,
                b"CC" => SortKey::Cc,
                b"DATE" => SortKey::Date,
                b"FROM" => SortKey::From,
                b"SIZE" => SortKey::Size,
                b"SUBJECT" => SortKey::Subject,
                b"TO" => SortKey::To,
                b"DISPLAYFROM" => SortKey::DisplayFrom,
                b"DISPLAYTO" => SortKey::DisplayTo,
                _ => {
                    self.pos = start;
                    return self.fail("sort key");
                }
            };
            criteria.push(SortCriterion { reverse, key });
            if self.eat(b')') {
                break;
            }
            self.sp()?;
        }
        self.sp()?;
        // RFC 5267 §6 puts RETURN right after SORT; its Appendix A.1 writes it after the sort
        // criteria ("UID SORT (DATE) RETURN (...) UTF-8 ..."), and clients (and imaptest)
        // also send it after the charset. Accepted in all three places, once.
        if return_opts.is_none() && self.eat_keyword("RETURN") {
            self.sp()?;
            return_opts = Some(self.search_return_opts(Some(&mut update_fetch))?);
            self.sp()?;
        }
        let charset = self.charset()?;
        if return_opts.is_none() && self.peek() == Some(b' ') {
            let at = self.pos;
            self.pos += 1;
            if self.eat_keyword("RETURN") && self.peek() == Some(b' ') {
                self.sp()?;
                return_opts = Some(self.search_return_opts(Some(&mut update_fetch))?);
            } else {
                self.pos = at;
            }
        }
        let search = self.search_keys()?;
        Ok(CommandBody::Sort { kind, return_opts, update_fetch, criteria, charset, search })
    }

    /// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria` (RFC 5256 §5);
    /// `thread-alg = "ORDEREDSUBJECT" / "REFERENCES"`.
    pub(super) fn thread(&mut self, kind: CommandKind) -> PResult<CommandBody> {
        self.sp()?;
        let start = self.pos;
        let w = self.word_req("threading algorithm")?.to_ascii_uppercase();
        let algorithm = match w.as_slice() {
            b"ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            b"REFERENCES" => ThreadAlgorithm::References,
            _ => {
                self.pos = start;
                return self.fail("ORDEREDSUBJECT or REFERENCES");
            }
        };
        self.sp()?;
        let charset = self.charset()?;
        let search = self.search_keys()?;
        Ok(CommandBody::Thread { kind, algorithm, charset, search })
    }

    /// `charset = atom / quoted`
    fn charset(&mut self) -> PResult<String> {
        let cs = if self.peek() == Some(b'"') { self.quoted()? } else { self.atom()?.to_vec() };
        Ok(String::from_utf8_lossy(&cs).into_owned())
    }

    /// `1*(SP search-key)`, the SP before the first included.
    fn search_keys(&mut self) -> PResult<Vec<SearchKey>> {
        let mut keys = Vec::new();
        while self.eat(b' ') {
            keys.push(self.search_key()?);
        }
        if keys.is_empty() {
            return self.fail("SP and a search key");
        }
        Ok(keys)
    }

    /// `"(" [search-return-opt *(SP search-return-opt)] ")"`;
    /// `search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE" / "PARTIAL" SP partial-range
    /// / "CONTEXT" / modifier-update` (RFC 4731, RFC 5182, RFC 9394, RFC 5267 §5);
    /// `modifier-update = "UPDATE" [SP "(" fetch-att *(SP fetch-att) ")"]` (RFC 5465 §8 writes
    /// no SP before the list; its §7 example has one: both are read). The fetch attributes go to
    /// `update_fetch`; where that is `None` (ESEARCH) they are a syntax error.
    fn search_return_opts(
        &mut self,
        mut update_fetch: Option<&mut Vec<FetchAttribute>>,
    ) -> PResult<Vec<SearchReturn>> {
        self.byte(b'(', "'(' of return options")?;
        let mut opts = Vec::new();
        if self.eat(b')') {
            return Ok(opts);
        }
        loop {
            let start = self.pos;
            let w = self.word_req("search return option")?.to_ascii_uppercase();
            opts.push(match w.as_slice() {
                b"MIN" => SearchReturn::Min,
                b"MAX" => SearchReturn::Max,
                b"ALL" => SearchReturn::All,
                b"COUNT" => SearchReturn::Count,
                b"SAVE" => SearchReturn::Save,
                b"PARTIAL" => {
                    self.sp()?;
                    SearchReturn::Partial(self.partial_range()?)
                }
                b"CONTEXT" => SearchReturn::Context,
                b"UPDATE" => {
                    let list = self.peek() == Some(b'(')
                        || (self.peek() == Some(b' ') && self.peek_at(1) == Some(b'('));
                    if list {
                        let Some(atts) = update_fetch.as_deref_mut() else {
                            return self
                                .fail_msg("UPDATE (fetch-att ...) is for SEARCH and SORT (RFC 5465 §7)");
                        };
                        self.eat(b' ');
                        self.byte(b'(', "'(' of UPDATE fetch attributes")?;
                        loop {
                            atts.push(self.fetch_att()?);
                            if self.eat(b')') {
                                break;
                            }
                            self.sp()?;
                        }
                    }
                    SearchReturn::Update
                }
                _ => {
                    self.pos = start;
                    return self.fail("MIN, MAX, ALL, COUNT, SAVE, PARTIAL, CONTEXT or UPDATE");
                }
            });
            if self.eat(b')') {
                return Ok(opts);
            }
            self.sp()?;
        }
    }

    /// `partial-range = nz-number ":" nz-number / "-" nz-number ":" "-" nz-number` (RFC 9394 §4).
    pub(super) fn partial_range(&mut self) -> PResult<PartialRange> {
        let from_end = self.eat(b'-');
        let first = self.nz_number()?;
        self.byte(b':', "':' of a partial range")?;
        if from_end {
            self.byte(b'-', "'-' of the range's second number")?;
        } else if self.peek() == Some(b'-') {
            return self.fail("a positive number (both ends count from the same side)");
        }
        let last = self.nz_number()?;
        // "A range 500:400 is the same as 400:500": kept (and echoed) in ascending order.
        Ok(PartialRange { from_end, first: first.min(last), last: first.max(last) })
    }

    /// `search-key` of RFC 9051 §9 plus RFC 3501 (NEW, OLD, RECENT), RFC 7162 (MODSEQ),
    /// RFC 5032 (OLDER, YOUNGER) and RFC 5182 (`$`). Nesting is bounded by [`MAX_NESTING`].
    fn search_key(&mut self) -> PResult<SearchKey> {
        if self.depth >= MAX_NESTING {
            return self.fail_msg("search criteria nested too deeply");
        }
        self.depth += 1;
        let r = self.search_key_inner();
        self.depth -= 1;
        r
    }

    fn search_key_inner(&mut self) -> PResult<SearchKey> {
        use SearchKey as K;
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let mut keys = vec![self.search_key()?];
                while self.eat(b' ') {
                    keys.push(self.search_key()?);
                }
                self.byte(b')', "')' or SP in search key list")?;
                return Ok(K::And(keys));
            }
            Some(b'0'..=b'9' | b'*' | b'$') => return self.sequence_set().map(K::SequenceSet),
            _ => {}
        }
        let start = self.pos;
        let w = self.word_req("search key")?.to_ascii_uppercase();
        Ok(match w.as_slice() {
            b"ALL" => K::All,
            b"ANSWERED" => K::Answered,
            b"DELETED" => K::Deleted,
            b"DRAFT" => K::Draft,
            b"FLAGGED" => K::Flagged,
            b"NEW" => K::New,
            b"OLD" => K::Old,
            b"RECENT" => K::Recent,
            b"SEEN" => K::Seen,
            b"UNANSWERED" => K::Unanswered,
            b"UNDELETED" => K::Undeleted,
            b"UNDRAFT" => K::Undraft,
            b"UNFLAGGED" => K::Unflagged,
            b"UNSEEN" => K::Unseen,
            b"BCC" => K::Bcc(self.sp_astring()?),
            b"BODY" => K::Body(self.sp_astring()?),
            b"CC" => K::Cc(self.sp_astring()?),
            b"FROM" => K::From(self.sp_astring()?),
            b"SUBJECT" => K::Subject(self.sp_astring()?),
            b"TEXT" => K::Text(self.sp_astring()?),
            b"TO" => K::To(self.sp_astring()?),
            b"HEADER" => {
                let name = self.sp_astring()?;
                K::Header(name, self.sp_astring()?)
            }
            b"BEFORE" => K::Before(self.sp_date()?),
            b"ON" => K::On(self.sp_date()?),
            b"SINCE" => K::Since(self.sp_date()?),
            b"SENTBEFORE" => K::SentBefore(self.sp_date()?),
            b"SENTON" => K::SentOn(self.sp_date()?),
            b"SENTSINCE" => K::SentSince(self.sp_date()?),
            b"KEYWORD" => {
                self.sp()?;
                K::Keyword(self.flag()?)
            }
            b"UNKEYWORD" => {
                self.sp()?;
                K::Unkeyword(self.flag()?)
            }
            b"LARGER" => {
                self.sp()?;
                K::Larger(self.number64()?)
            }
            b"SMALLER" => {
                self.sp()?;
                K::Smaller(self.number64()?)
            }
            b"UID" => {
                self.sp()?;
                K::Uid(self.sequence_set()?)
            }
            b"NOT" => {
                self.sp()?;
                K::Not(Box::new(self.search_key()?))
            }
            b"OR" => {
                self.sp()?;
                let a = self.search_key()?;
                self.sp()?;
                let b = self.search_key()?;
                K::Or(Box::new(a), Box::new(b))
            }
            b"OLDER" => {
                self.sp()?;
                K::Older(self.nz_number()?)
            }
            b"YOUNGER" => {
                self.sp()?;
                K::Younger(self.nz_number()?)
            }
            b"MODSEQ" => self.search_modseq()?,
            b"SAVEDBEFORE" => K::SavedBefore(self.sp_date()?),
            b"SAVEDON" => K::SavedOn(self.sp_date()?),
            b"SAVEDSINCE" => K::SavedSince(self.sp_date()?),
            b"SAVEDATESUPPORTED" => K::SaveDateSupported,
            b"EMAILID" => {
                self.sp()?;
                K::EmailId(self.objectid()?)
            }
            b"THREADID" => {
                self.sp()?;
                K::ThreadId(self.objectid()?)
            }
            _ => {
                self.pos = start;
                return self.fail("search key");
            }
        })
    }

    /// `search-modsequence = "MODSEQ" [SP entry-name SP entry-type-req] SP
    /// mod-sequence-valzer` (RFC 7162 §7); `entry-type-req = "priv" / "shared" / "all"`.
    fn search_modseq(&mut self) -> PResult<SearchKey> {
        self.sp()?;
        let mut entry = None;
        if self.peek() == Some(b'"') {
            let name = self.quoted()?;
            self.sp()?;
            let start = self.pos;
            let t = self.word_req("entry type")?;
            let ty = if t.eq_ignore_ascii_case(b"priv") {
                EntryType::Private
            } else if t.eq_ignore_ascii_case(b"shared") {
                EntryType::Shared
            } else if t.eq_ignore_ascii_case(b"all") {
                EntryType::All
            } else {
                self.pos = start;
                return self.fail("priv, shared or all");
            };
            entry = Some((name, ty));
            self.sp()?;
        }
        let modseq = self.number64()?;
        Ok(SearchKey::ModSeq { entry, modseq })
    }

    fn sp_astring(&mut self) -> PResult<Vec<u8>> {
        self.sp()?;
        self.astring()
    }

    /// `objectid = 1*255(ALPHA / DIGIT / "_" / "-")` (RFC 8474 §7).
    fn objectid(&mut self) -> PResult<String> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            self.pos += 1;
        }
        let len = self.pos - start;
        if len == 0 || len > 255 {
            self.pos = start;
            return self.fail("object id (1-255 letters, digits, '_' or '-')");
        }
        Ok(String::from_utf8_lossy(&self.input[start..self.pos]).into_owned())
    }

    fn sp_date(&mut self) -> PResult<Date> {
        self.sp()?;
        self.date()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::parse::parse_command;
    use crate::parse::tests::{body, err, ok, set};
    use crate::seqset::SequenceSet;

    #[test]
    fn sort_and_thread_rfc5256() {
        use SearchKey as K;
        // RFC 5256 §3 examples.
        match body("A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994") {
            CommandBody::Sort { kind, return_opts, criteria, charset, search, update_fetch } => {
                assert_eq!(kind, CommandKind::Seq);
                assert_eq!(return_opts, None);
                assert_eq!(criteria, vec![SortCriterion { reverse: false, key: SortKey::Subject }]);
                assert_eq!(charset, "UTF-8");
                assert!(matches!(search.as_slice(), [K::Since(_)]));
                assert!(update_fetch.is_empty());
            }
            other => panic!("{other:?}"),
        }
        match body("A283 UID sort (SUBJECT REVERSE DATE displayfrom) \"US-ASCII\" TEXT \"x\" ALL") {
            CommandBody::Sort { kind, criteria, charset, search, .. } => {
                assert_eq!(kind, CommandKind::Uid);
                assert_eq!(
                    criteria,
                    vec![
                        SortCriterion { reverse: false, key: SortKey::Subject },
                        SortCriterion { reverse: true, key: SortKey::Date },
                        SortCriterion { reverse: false, key: SortKey::DisplayFrom },
                    ]
                );
                assert_eq!(charset, "US-ASCII");
                assert_eq!(search, vec![K::Text(b"x".to_vec()), K::All]);
            }
            other => panic!("{other:?}"),
        }
        // RFC 5267 §3.3: ESORT return options.
        match body("B1 UID SORT RETURN (MIN COUNT) (REVERSE ARRIVAL) UTF-8 UNDELETED") {
            CommandBody::Sort { return_opts, criteria, .. } => {
                assert_eq!(return_opts, Some(vec![SearchReturn::Min, SearchReturn::Count]));
                assert_eq!(criteria, vec![SortCriterion { reverse: true, key: SortKey::Arrival }]);
            }
            other => panic!("{other:?}"),
        }
        // RETURN after the criteria (RFC 5267 Appendix A.1) or after the charset (imaptest's
        // sort-partial); a reversed PARTIAL range is the same range (RFC 9394 §4).
        for text in [
            "S1 UID SORT (DATE) RETURN (COUNT) UTF-8 UNSEEN",
            "S2 UID SORT (DATE) UTF-8 RETURN (COUNT) UNSEEN",
        ] {
            match body(text) {
                CommandBody::Sort { return_opts, charset, search, .. } => {
                    assert_eq!(return_opts, Some(vec![SearchReturn::Count]), "{text}");
                    assert_eq!((charset.as_str(), search.len()), ("UTF-8", 1), "{text}");
                }
                other => panic!("{other:?}"),
            }
        }
        match body("S3 SORT (ARRIVAL) US-ASCII RETURN (PARTIAL 4:2) ALL") {
            CommandBody::Sort { return_opts: Some(opts), .. } => {
                let SearchReturn::Partial(range) = &opts[0] else { panic!("{opts:?}") };
                assert_eq!(range.to_string(), "2:4");
            }
            other => panic!("{other:?}"),
        }
        err(b"S4 SORT RETURN (COUNT) (DATE) UTF-8 RETURN (MIN) ALL\r\n");
        match body("A285 THREAD REFERENCES UTF-8 SINCE 5-MAR-2000") {
            CommandBody::Thread { kind, algorithm, charset, search } => {
                assert_eq!((kind, algorithm), (CommandKind::Seq, ThreadAlgorithm::References));
                assert_eq!(charset, "UTF-8");
                assert_eq!(search.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            body("t UID THREAD orderedsubject US-ASCII TEXT \"gewp\""),
            CommandBody::Thread { kind: CommandKind::Uid, algorithm: ThreadAlgorithm::OrderedSubject, .. }
        ));
        assert_eq!(ok("A284 SORT (SUBJECT) US-ASCII TEXT \"x\"").body.name(), "SORT");
        // The charset is mandatory, criteria and keys may not be empty.
        err(b"a SORT (SUBJECT) ALL");
        err(b"a SORT () UTF-8 ALL");
        err(b"a SORT (SUBJECT) UTF-8");
        err(b"a SORT (NAME) UTF-8 ALL");
        err(b"a SORT (REVERSE) UTF-8 ALL");
        err(b"a THREAD XYZ UTF-8 ALL");
        err(b"a THREAD REFERENCES UTF-8");
    }

    #[test]
    fn search_savedate_and_objectid_keys() {
        use SearchKey as K;
        let d = |y, m, dd| Date::new(y, m, dd).unwrap();
        match body(
            "A1 SEARCH SAVEDBEFORE 1-Feb-2020 SAVEDON 2-Feb-2020 SAVEDSINCE 3-Feb-2020 SAVEDATESUPPORTED EMAILID M6d99ac3275bb4e THREADID T64b478a75b7ea9",
        ) {
            CommandBody::Search { criteria, .. } => assert_eq!(
                criteria,
                vec![
                    K::SavedBefore(d(2020, 2, 1)),
                    K::SavedOn(d(2020, 2, 2)),
                    K::SavedSince(d(2020, 2, 3)),
                    K::SaveDateSupported,
                    K::EmailId("M6d99ac3275bb4e".into()),
                    K::ThreadId("T64b478a75b7ea9".into()),
                ]
            ),
            b => panic!("{b:?}"),
        }
        assert!(parse_command(b"a SEARCH EMAILID \"x\"").is_err());
        assert!(parse_command(format!("a SEARCH EMAILID {}", "x".repeat(256)).as_bytes()).is_err());
    }

    #[test]
    fn esearch_rfc7377() {
        use crate::types::WireMailboxName;
        let m = |s: &str| WireMailboxName::new(s.as_bytes().to_vec());
        // §3's examples.
        match body("tag1 ESEARCH IN (mailboxes \"folder1\" subtree \"folder2\") unseen") {
            CommandBody::ESearch { sources, return_opts, charset, criteria } => {
                assert_eq!(
                    sources,
                    vec![
                        SearchSource::Mailboxes(vec![m("folder1")]),
                        SearchSource::Subtree(vec![m("folder2")])
                    ]
                );
                assert_eq!((return_opts, charset), (None, None));
                assert_eq!(criteria, vec![SearchKey::Unseen]);
            }
            b => panic!("{b:?}"),
        }
        match body("tag2 ESEARCH IN (mailboxes \"folder1\" subtree-one \"folder2\") subject \"chad\"") {
            CommandBody::ESearch { sources, .. } => {
                assert_eq!(sources[1], SearchSource::SubtreeOne(vec![m("folder2")]))
            }
            b => panic!("{b:?}"),
        }
        // Without IN (the selected mailbox); lists of mailboxes; RETURN and CHARSET.
        match body("a ESEARCH FROM \"frobozz\" 1:100") {
            CommandBody::ESearch { sources, criteria, .. } => {
                assert!(sources.is_empty());
                assert_eq!(criteria.len(), 2);
            }
            b => panic!("{b:?}"),
        }
        match body(
            "a esearch in (PERSONAL subscribed Inboxes selected mailboxes (a \"b c\")) return (min count) charset utf-8 all",
        ) {
            CommandBody::ESearch { sources, return_opts, charset, .. } => {
                assert_eq!(
                    sources,
                    vec![
                        SearchSource::Personal,
                        SearchSource::Subscribed,
                        SearchSource::Inboxes,
                        SearchSource::Selected,
                        SearchSource::Mailboxes(vec![m("a"), m("b c")]),
                    ]
                );
                assert_eq!(return_opts, Some(vec![SearchReturn::Min, SearchReturn::Count]));
                assert_eq!(charset.as_deref(), Some("utf-8"));
            }
            b => panic!("{b:?}"),
        }
        for bad in [
            "a ESEARCH IN () ALL",
            "a ESEARCH IN (selected-delayed) ALL",
            "a ESEARCH IN (selected (depth 1)) ALL",
            "a ESEARCH IN (mailboxes) ALL",
            "a ESEARCH IN (subtree ()) ALL",
            "a ESEARCH IN (everything) ALL",
            "a ESEARCH IN (personal)",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn context_return_options_rfc5267() {
        // §4.2 and §4.3's examples.
        match body("A01 SEARCH RETURN (CONTEXT COUNT) UNDELETED UNKEYWORD $Junk") {
            CommandBody::Search { return_opts, .. } => {
                assert_eq!(return_opts, Some(vec![SearchReturn::Context, SearchReturn::Count]))
            }
            b => panic!("{b:?}"),
        }
        match body("B01 UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk") {
            CommandBody::Search { kind, return_opts, .. } => {
                assert_eq!(kind, CommandKind::Uid);
                assert_eq!(return_opts, Some(vec![SearchReturn::Update, SearchReturn::Count]));
            }
            b => panic!("{b:?}"),
        }
        match body("B02 UID SORT RETURN (UPDATE COUNT) (DATE) UTF-8 KEYWORD $Junk") {
            CommandBody::Sort { return_opts, .. } => {
                assert_eq!(return_opts, Some(vec![SearchReturn::Update, SearchReturn::Count]))
            }
            b => panic!("{b:?}"),
        }
        assert!(!SearchReturn::Update.is_result() && !SearchReturn::Context.is_result());
        assert!(SearchReturn::Save.is_result());
    }

    /// RFC 5465 §7: UPDATE with fetch attributes, for SEARCH and SORT (not ESEARCH).
    #[test]
    fn update_fetch_attributes_rfc5465() {
        use crate::types::FetchAttribute as A;
        match body(
            "a00 SEARCH RETURN (COUNT UPDATE (UID BODY[HEADER.FIELDS (TO FROM SUBJECT)])) FROM \"boss\"",
        ) {
            CommandBody::Search { return_opts, update_fetch, .. } => {
                assert_eq!(return_opts, Some(vec![SearchReturn::Count, SearchReturn::Update]));
                assert_eq!(update_fetch.len(), 2);
                assert_eq!(update_fetch[0], A::Uid);
                assert!(matches!(&update_fetch[1], A::BodySection { peek: false, .. }));
            }
            b => panic!("{b:?}"),
        }
        // §8's ABNF writes no SP before the list.
        match body("a UID SORT RETURN (UPDATE(FLAGS ENVELOPE) ALL) (DATE) UTF-8 ALL") {
            CommandBody::Sort { return_opts, update_fetch, .. } => {
                assert_eq!(return_opts, Some(vec![SearchReturn::Update, SearchReturn::All]));
                assert_eq!(update_fetch, vec![A::Flags, A::Envelope]);
            }
            b => panic!("{b:?}"),
        }
        for bad in [
            "a SEARCH RETURN (UPDATE ()) ALL",
            "a SEARCH RETURN (UPDATE (FROB)) ALL",
            "a SEARCH RETURN (UPDATE (UID) ALL",
            "a ESEARCH IN (selected) RETURN (UPDATE (UID)) ALL",
        ] {
            assert!(crate::parse::parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn search_variants() {
        use SearchKey as K;
        let d = |y, m, dd| Date::new(y, m, dd).unwrap();
        match body("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"") {
            CommandBody::Search { kind, charset, return_opts, criteria, update_fetch } => {
                assert_eq!(kind, CommandKind::Seq);
                assert!(update_fetch.is_empty());
                assert_eq!(charset, None);
                assert_eq!(return_opts, Some(vec![SearchReturn::Min, SearchReturn::Count]));
                assert_eq!(
                    criteria,
                    vec![K::Flagged, K::Since(d(1994, 2, 1)), K::Not(Box::new(K::From(b"Smith".to_vec())))]
                );
            }
            b => panic!("{b:?}"),
        }
        match body("A284 SEARCH CHARSET UTF-8 TEXT {12}\r\n\u{0445}\u{043e}\u{0440}\u{043e}\u{0448}\u{043e}")
        {
            CommandBody::Search { charset, criteria, .. } => {
                assert_eq!(charset.as_deref(), Some("UTF-8"));
                assert_eq!(criteria, vec![K::Text("хорошо".as_bytes().to_vec())]);
            }
            b => panic!("{b:?}"),
        }
        match body(
            "a UID SEARCH OR (SEEN 1:5) UID $ HEADER X-Foo \"\" MODSEQ \"/flags/\\\\draft\" all 620162338 ON \"5-Jul-2004\" OLDER 10 larger 100",
        ) {
            CommandBody::Search { kind, criteria, return_opts, .. } => {
                assert_eq!(kind, CommandKind::Uid);
                assert_eq!(return_opts, None);
                assert_eq!(criteria.len(), 6);
                assert_eq!(
                    criteria[0],
                    K::Or(
                        Box::new(K::And(vec![K::Seen, K::SequenceSet(set("1:5"))])),
                        Box::new(K::Uid(SequenceSet::Saved))
                    )
                );
                assert_eq!(criteria[1], K::Header(b"X-Foo".to_vec(), vec![]));
                assert_eq!(
                    criteria[2],
                    K::ModSeq {
                        entry: Some((b"/flags/\\draft".to_vec(), EntryType::All)),
                        modseq: 620_162_338
                    }
                );
                assert_eq!(criteria[3], K::On(d(2004, 7, 5)));
                assert_eq!(criteria[4], K::Older(NonZeroU32::new(10).unwrap()));
                assert_eq!(criteria[5], K::Larger(100));
            }
            b => panic!("{b:?}"),
        }
        assert!(matches!(
            body("a SEARCH RETURN () $"),
            CommandBody::Search { return_opts: Some(v), criteria, .. } if v.is_empty() && criteria == vec![K::SequenceSet(SequenceSet::Saved)]
        ));
        for bad in [
            "a SEARCH",
            "a SEARCH FOO",
            "a SEARCH SINCE 32-Jan-2020",
            "a SEARCH SINCE 1-Foo-2020",
            "a SEARCH SINCE 1-Jan-20",
            "a SEARCH (SEEN",
            "a SEARCH OLDER 0",
            "a SEARCH RETURN (FOO) ALL",
            "a SEARCH CHARSET",
            "a SEARCH UID 3,$",
            "a SEARCH ALL RETURN",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("a SEARCH {}ALL{}", "(".repeat(10_000), ")".repeat(10_000));
        let e = err(deep.as_bytes());
        assert_eq!(e.message, "search criteria nested too deeply");
        let nots = format!("a SEARCH {}ALL", "NOT ".repeat(10_000));
        assert!(parse_command(nots.as_bytes()).is_err());
        let ok_depth = format!("a SEARCH {}ALL{}", "(".repeat(60), ")".repeat(60));
        assert!(parse_command(ok_depth.as_bytes()).is_ok());
    }
}
