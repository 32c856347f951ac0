//! LIST (RFC 5258 selection and return options, RFC 5819 STATUS), LSUB patterns and STATUS
//! items.

use super::{PResult, Parser};
use crate::types::{
    CommandBody, ListCommand, ListPattern, ListReturnOption, ListSelectOption, StatusItem, is_astring_char,
};

impl Parser<'_> {
    /// `list-mailbox = 1*list-char / string`; `list-char = ATOM-CHAR / list-wildcards /
    /// resp-specials`.
    pub(super) fn list_mailbox(&mut self) -> PResult<ListPattern> {
        match self.peek() {
            Some(b'"' | b'{') => self.string().map(ListPattern::new),
            _ => {
                let a = self.take_while(|b| is_astring_char(b) || b == b'%' || b == b'*');
                if a.is_empty() {
                    return self.fail("list-mailbox");
                }
                Ok(ListPattern::new(a))
            }
        }
    }

    /// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`;
    /// `mbox-or-pat = list-mailbox / patterns`;
    /// `patterns = "(" list-mailbox *(SP list-mailbox) ")"` (RFC 5258 §6).
    pub(super) fn list(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mut selection = Vec::new();
        if self.peek() == Some(b'(') {
            selection = self.list_select_opts()?;
            self.sp()?;
        }
        let reference = self.mailbox()?;
        self.sp()?;
        let mut patterns = Vec::new();
        if self.eat(b'(') {
            loop {
                patterns.push(self.list_mailbox()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else {
            patterns.push(self.list_mailbox()?);
        }
        let mut return_opts = Vec::new();
        if self.eat(b' ') {
            return_opts = self.list_return_opts()?;
        }
        Ok(CommandBody::List(ListCommand { selection, reference, patterns, return_opts }))
    }

    /// `list-select-opts = "(" [list-select-opt *(SP list-select-opt)] ")"`, where
    /// RECURSIVEMATCH needs a base option (SUBSCRIBED) too (RFC 5258 §6).
    fn list_select_opts(&mut self) -> PResult<Vec<ListSelectOption>> {
        self.byte(b'(', "'(' of selection options")?;
        let mut opts = Vec::new();
        if !self.eat(b')') {
            loop {
                let start = self.pos;
                let w = self.word_req("selection option")?.to_ascii_uppercase();
                let opt = match w.as_slice() {
                    b"SUBSCRIBED" => ListSelectOption::Subscribed,
                    b"REMOTE" => ListSelectOption::Remote,
                    b"RECURSIVEMATCH" => ListSelectOption::RecursiveMatch,
                    b"SPECIAL-USE" => ListSelectOption::SpecialUse,
                    _ => {
                        // RFC 5258 §3: unrecognised selection options get BAD.
                        self.pos = start;
                        return self.fail("SUBSCRIBED, REMOTE, RECURSIVEMATCH or SPECIAL-USE");
                    }
                };
                opts.push(opt);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        // RFC 5258 §3: RECURSIVEMATCH alone (without a base option) is a syntax error.
        if opts.contains(&ListSelectOption::RecursiveMatch) && !opts.contains(&ListSelectOption::Subscribed) {
            return self.fail_msg("RECURSIVEMATCH requires SUBSCRIBED");
        }
        Ok(opts)
    }

    /// `list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"`;
    /// `return-option = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" / status-option /
    /// "MYRIGHTS"` (RFC 5258, RFC 6154, RFC 5819, RFC 8440).
    fn list_return_opts(&mut self) -> PResult<Vec<ListReturnOption>> {
        self.keyword("RETURN")?;
        self.sp()?;
        self.byte(b'(', "'(' of return options")?;
        let mut opts = Vec::new();
        if self.eat(b')') {
            return Ok(opts);
        }
        loop {
            let start = self.pos;
            let w = self.word_req("return option")?.to_ascii_uppercase();
            let opt = match w.as_slice() {
                b"SUBSCRIBED" => ListReturnOption::Subscribed,
                b"CHILDREN" => ListReturnOption::Children,
                b"SPECIAL-USE" => ListReturnOption::SpecialUse,
                // RFC 8440 §5: `return-option =/ "MYRIGHTS"`.
                b"MYRIGHTS" => ListReturnOption::MyRights,
                b"STATUS" => {
                    self.sp()?;
                    ListReturnOption::Status(self.status_atts()?)
                }
                _ => {
                    self.pos = start;
                    return self.fail("SUBSCRIBED, CHILDREN, SPECIAL-USE, MYRIGHTS or STATUS");
                }
            };
            opts.push(opt);
            if self.eat(b')') {
                return Ok(opts);
            }
            self.sp()?;
        }
    }

    /// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"`
    pub(super) fn status(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let items = self.status_atts()?;
        Ok(CommandBody::Status { mailbox, items })
    }

    /// `"(" status-att *(SP status-att) ")"`
    fn status_atts(&mut self) -> PResult<Vec<StatusItem>> {
        self.byte(b'(', "'(' of status items")?;
        let mut items = Vec::new();
        loop {
            let start = self.pos;
            let w = self.word_req("status item")?;
            match StatusItem::from_name(w) {
                Some(i) => items.push(i),
                None => {
                    self.pos = start;
                    return self.fail("status item");
                }
            }
            if self.eat(b')') {
                return Ok(items);
            }
            self.sp()?;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::parse::parse_command;
    use crate::parse::tests::body;
    use crate::types::WireMailboxName;

    #[test]
    fn list_variants() {
        match body("A101 LIST \"\" \"\"") {
            CommandBody::List(l) => {
                assert!(l.selection.is_empty() && l.return_opts.is_empty());
                assert_eq!(l.reference.as_bytes(), b"");
                assert_eq!(l.patterns, vec![ListPattern::new(b"".to_vec())]);
            }
            b => panic!("{b:?}"),
        }
        match body(
            "A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"*\" %/%) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))",
        ) {
            CommandBody::List(l) => {
                assert_eq!(l.selection, vec![ListSelectOption::Subscribed, ListSelectOption::RecursiveMatch]);
                assert_eq!(l.patterns.len(), 2);
                assert_eq!(l.patterns[1].as_bytes(), b"%/%");
                assert_eq!(
                    l.return_opts,
                    vec![
                        ListReturnOption::Children,
                        ListReturnOption::Status(vec![StatusItem::Messages, StatusItem::Unseen])
                    ]
                );
            }
            b => panic!("{b:?}"),
        }
        assert!(matches!(body("a list #news.comp.mail.misc \"\""), CommandBody::List(_)));
        assert!(matches!(body("a LIST ~/Mail/ %"), CommandBody::List(_)));
        assert!(parse_command(b"a LIST (RECURSIVEMATCH) \"\" *").is_err());
        assert!(parse_command(b"a LIST (FOO) \"\" *").is_err());
        assert!(matches!(body("a LSUB \"#news.\" \"comp.mail.*\""), CommandBody::Lsub { .. }));
    }

    #[test]
    fn status() {
        assert_eq!(
            body("A042 STATUS blurdybloop (UIDNEXT MESSAGES mailboxid highestmodseq)"),
            CommandBody::Status {
                mailbox: WireMailboxName::new(b"blurdybloop".to_vec()),
                items: vec![
                    StatusItem::UidNext,
                    StatusItem::Messages,
                    StatusItem::MailboxId,
                    StatusItem::HighestModSeq
                ]
            }
        );
        assert!(parse_command(b"a STATUS x ()").is_err());
    }

    #[test]
    fn list_return_myrights_rfc8440() {
        // RFC 8440 §4 examples.
        match body("A01 LIST \"\" % RETURN (MYRIGHTS)") {
            CommandBody::List(l) => assert_eq!(l.return_opts, vec![ListReturnOption::MyRights]),
            b => panic!("{b:?}"),
        }
        match body("A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (MYRIGHTS)") {
            CommandBody::List(l) => {
                assert_eq!(l.selection, vec![ListSelectOption::Subscribed, ListSelectOption::RecursiveMatch]);
                assert_eq!(l.return_opts, vec![ListReturnOption::MyRights]);
            }
            b => panic!("{b:?}"),
        }
        match body("a LIST \"\" * RETURN (myrights STATUS (MESSAGES) CHILDREN)") {
            CommandBody::List(l) => assert_eq!(
                l.return_opts,
                vec![
                    ListReturnOption::MyRights,
                    ListReturnOption::Status(vec![StatusItem::Messages]),
                    ListReturnOption::Children
                ]
            ),
            b => panic!("{b:?}"),
        }
        assert!(parse_command(b"a LIST \"\" % RETURN (MYRIGHTS").is_err());
        assert!(parse_command(b"a LIST \"\" % RETURN (MYRIGHTS (x))").is_err());
        assert!(parse_command(b"a LIST \"\" % RETURN (MYRIGHT)").is_err());
    }

    #[test]
    fn status_deleted_storage_rfc9208() {
        // RFC 9208 §4.1.4 example.
        assert_eq!(
            body("S0003 STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)"),
            CommandBody::Status {
                mailbox: WireMailboxName::new(b"INBOX".to_vec()),
                items: vec![StatusItem::Messages, StatusItem::Deleted, StatusItem::DeletedStorage]
            }
        );
        assert_eq!(StatusItem::from_name(b"deleted-storage"), Some(StatusItem::DeletedStorage));
        assert_eq!(StatusItem::DeletedStorage.as_str(), "DELETED-STORAGE");
        assert!(parse_command(b"a STATUS INBOX (DELETED-STORAG)").is_err());
        assert!(parse_command(b"a STATUS INBOX (DELETED-STORAGE").is_err());
        assert!(parse_command(b"a STATUS INBOX (DELETED STORAGE)").is_err());
    }
}
