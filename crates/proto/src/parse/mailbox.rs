//! Mailbox names and the commands that name one mailbox: SELECT/EXAMINE (CONDSTORE, QRESYNC),
//! CREATE (special-use), APPEND (MULTIAPPEND, literal8, UTF8), and the message commands that
//! target one: COPY, MOVE and STORE.

use bytes::Bytes;

use super::lexer::StringForm;
use super::{PResult, Parser};
use crate::seqset::SequenceSet;
use crate::types::{
    AppendData, AppendMessage, CatPart, CommandBody, CommandKind, MAX_CATENATE_PARTS, QresyncParams,
    SelectParams, SpecialUse, StoreAction, StoreOp, WireMailboxName,
};

impl Parser<'_> {
    /// `mailbox = "INBOX" / astring` (INBOX normalisation happens in [`WireMailboxName::decode`]).
    pub(super) fn mailbox(&mut self) -> PResult<WireMailboxName> {
        self.astring().map(WireMailboxName::new)
    }

    /// `select = "SELECT" SP mailbox [select-params]` (RFC 4466);
    /// `select-params = SP "(" select-param *(SP select-param) ")"`;
    /// `select-param =/ "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
    ///  [SP known-uids] [SP seq-match-data] ")"` (RFC 7162 §7).
    pub(super) fn select(&mut self) -> PResult<(WireMailboxName, SelectParams)> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut params = SelectParams::default();
        if !self.eat(b' ') {
            return Ok((mailbox, params));
        }
        self.byte(b'(', "'(' of select parameters")?;
        if self.eat(b')') {
            return Ok((mailbox, params));
        }
        loop {
            let start = self.pos;
            let name = self.word_req("select parameter")?;
            if name.eq_ignore_ascii_case(b"CONDSTORE") {
                params.condstore = true;
            } else if name.eq_ignore_ascii_case(b"QRESYNC") {
                self.sp()?;
                params.qresync = Some(self.qresync()?);
            } else {
                self.pos = start;
                return self.fail("CONDSTORE or QRESYNC");
            }
            if self.eat(b')') {
                return Ok((mailbox, params));
            }
            self.sp()?;
        }
    }

    /// The parenthesised part of `"QRESYNC" SP "(" ... ")"`;
    /// `seq-match-data = "(" known-sequence-set SP known-uid-set ")"`.
    fn qresync(&mut self) -> PResult<QresyncParams> {
        self.byte(b'(', "'(' of QRESYNC parameters")?;
        let uidvalidity = self.nz_number()?;
        self.sp()?;
        let modseq = self.mod_sequence_value()?;
        let mut known_uids = None;
        let mut seq_match = None;
        if self.eat(b' ') {
            if self.peek() == Some(b'(') {
                seq_match = Some(self.seq_match()?);
            } else {
                known_uids = Some(self.sequence_set()?);
                if self.eat(b' ') {
                    seq_match = Some(self.seq_match()?);
                }
            }
        }
        self.byte(b')', "')' of QRESYNC parameters")?;
        Ok(QresyncParams { uidvalidity, modseq, known_uids, seq_match })
    }

    fn seq_match(&mut self) -> PResult<(SequenceSet, SequenceSet)> {
        self.byte(b'(', "'(' of seq-match-data")?;
        let seqs = self.sequence_set()?;
        self.sp()?;
        let uids = self.sequence_set()?;
        self.byte(b')', "')' of seq-match-data")?;
        Ok((seqs, uids))
    }

    /// `create = "CREATE" SP mailbox [create-params]` (RFC 4466);
    /// `create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"` (RFC 6154 §6).
    pub(super) fn create(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut special_use = Vec::new();
        if self.eat(b' ') {
            self.byte(b'(', "'(' of create parameters")?;
            loop {
                self.keyword("USE")?;
                self.sp()?;
                self.byte(b'(', "'(' of USE")?;
                if !self.eat(b')') {
                    loop {
                        self.byte(b'\\', "special-use attribute")?;
                        let name = self.atom_string()?;
                        special_use.push(SpecialUse::from_name(&name));
                        if self.eat(b')') {
                            break;
                        }
                        self.sp()?;
                    }
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::Create { mailbox, special_use })
    }

    /// `append = "APPEND" SP mailbox 1*append-message` (RFC 3502, RFC 4466);
    /// `append-message = [SP flag-list] [SP date-time] SP append-data`;
    /// `append-data = literal / literal8 / utf8-literal` with
    /// `utf8-literal = "UTF8" SP "(" literal8 ")"` (RFC 6855 §4).
    pub(super) fn append(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut messages = Vec::new();
        loop {
            self.sp()?;
            messages.push(self.append_message()?);
            if self.at_end() {
                return Ok(CommandBody::Append { mailbox, messages });
            }
        }
    }

    /// `replace = "REPLACE" SP seq-number SP mailbox append-message`, `uid-replace = "UID" SP
    /// replace` (RFC 8508 §5).
    pub(super) fn replace(&mut self, kind: CommandKind) -> PResult<CommandBody> {
        self.sp()?;
        let target = self.nz_number()?;
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let message = self.append_message()?;
        Ok(CommandBody::Replace { kind, target, mailbox, message })
    }

    /// One `append-message` (RFC 4466 §2.1.1, RFC 6855 §4, RFC 4469 §5): `[flag-list SP]
    /// [date-time SP] append-data`.
    fn append_message(&mut self) -> PResult<AppendMessage> {
        let mut flags = Vec::new();
        if self.peek() == Some(b'(') {
            flags = self.flag_list()?;
            self.sp()?;
        }
        let mut date = None;
        if self.peek() == Some(b'"') {
            date = Some(self.date_time()?);
            self.sp()?;
        }
        if self.eat_keyword_sp("CATENATE") {
            return self.catenate(flags, date);
        }
        let (data, binary) = self.message_literal()?;
        Ok(AppendMessage { flags, date, data: AppendData::Literal(data), binary })
    }

    /// `literal / literal8 / utf8-literal` (RFC 4466, RFC 6855 §4), as a slice of the shared
    /// buffer when there is one; true if sent as `literal8`.
    fn message_literal(&mut self) -> PResult<(Bytes, bool)> {
        let utf8 = self.eat_keyword_sp("UTF8");
        if utf8 {
            self.byte(b'(', "'(' before the UTF8 message literal")?;
            if self.peek() != Some(b'~') {
                return self.fail("literal8 in UTF8 (...)");
            }
        } else if !matches!(self.peek(), Some(b'{' | b'~')) {
            return self.fail("message literal");
        }
        // NUL is tolerated in a plain literal here: messages are stored as received and
        // the session may refuse them; literal8 is the proper way to send them.
        let (data, form) = self.literal_any(true, true)?;
        if utf8 {
            self.byte(b')', "')' after the UTF8 message literal")?;
        }
        // `data` borrows from `input`: a slice of the shared buffer, not a copy, when there is one.
        let data = match self.source {
            Some(source) => source.slice_ref(data),
            None => Bytes::copy_from_slice(data),
        };
        Ok((data, form == StringForm::Literal8))
    }

    /// After `CATENATE SP`: `"(" cat-part *(SP cat-part) ")"`, `cat-part = text-literal / url
    /// / utf8-literal`, `text-literal = "TEXT" SP literal`, `url = "URL" SP astring`
    /// (RFC 4469 §5, RFC 6855 §4). `TEXT` also takes `literal8`, as APPEND does (RFC 3516 §4.4).
    fn catenate(
        &mut self,
        flags: Vec<crate::types::Flag>,
        date: Option<crate::datetime::DateTime>,
    ) -> PResult<AppendMessage> {
        self.byte(b'(', "'(' of CATENATE parts")?;
        let mut parts = Vec::new();
        let mut binary = false;
        loop {
            if parts.len() == MAX_CATENATE_PARTS {
                return self.fail_msg("too many CATENATE parts");
            }
            if self.eat_keyword_sp("URL") {
                let start = self.pos;
                let url = self.astring()?;
                let Ok(url) = String::from_utf8(url) else {
                    self.pos = start;
                    return self.fail("URL in ASCII");
                };
                parts.push(CatPart::Url(url));
            } else if self.peek().is_some_and(|b| b.eq_ignore_ascii_case(&b'U')) {
                // `UTF8 (literal8)`, checked by `message_literal`.
                let (data, _) = self.message_literal()?;
                binary = true;
                parts.push(CatPart::Text(data));
            } else {
                self.keyword("TEXT")?;
                self.sp()?;
                if !matches!(self.peek(), Some(b'{' | b'~')) {
                    return self.fail("literal after TEXT");
                }
                let (data, eight) = self.message_literal()?;
                binary |= eight;
                parts.push(CatPart::Text(data));
            }
            if self.eat(b')') {
                break;
            }
            self.sp()?;
        }
        Ok(AppendMessage { flags, date, data: AppendData::Catenate(parts), binary })
    }

    /// Consumes `kw` and the space after it if both are next (case-insensitive).
    fn eat_keyword_sp(&mut self, kw: &str) -> bool {
        let n = kw.len();
        let hit =
            self.input.get(self.pos..self.pos + n).is_some_and(|w| w.eq_ignore_ascii_case(kw.as_bytes()))
                && self.peek_at(n) == Some(b' ');
        if hit {
            self.pos += n + 1;
        }
        hit
    }

    /// `copy = "COPY" SP sequence-set SP mailbox`; `move = "MOVE" SP sequence-set SP mailbox`
    pub(super) fn copy_move(&mut self, kind: CommandKind, is_move: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mailbox = self.mailbox()?;
        Ok(if is_move {
            CommandBody::Move { kind, set, mailbox }
        } else {
            CommandBody::Copy { kind, set, mailbox }
        })
    }

    /// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags`;
    /// `store-modifiers = SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"` (RFC 7162);
    /// `store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))`
    pub(super) fn store(&mut self, kind: CommandKind) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.eat(b'(') {
            self.keyword("UNCHANGEDSINCE")?;
            self.sp()?;
            unchanged_since = Some(self.number64()?);
            self.byte(b')', "')' of store modifiers")?;
            self.sp()?;
        }
        let op = if self.eat(b'+') {
            StoreOp::Add
        } else if self.eat(b'-') {
            StoreOp::Remove
        } else {
            StoreOp::Replace
        };
        let start = self.pos;
        let w = self.word_req("FLAGS or FLAGS.SILENT")?;
        let silent = if w.eq_ignore_ascii_case(b"FLAGS") {
            false
        } else if w.eq_ignore_ascii_case(b"FLAGS.SILENT") {
            true
        } else {
            self.pos = start;
            return self.fail("FLAGS or FLAGS.SILENT");
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(CommandBody::Store { kind, set, action: StoreAction { op, silent, flags }, unchanged_since })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::parse::parse_command;
    use crate::parse::tests::{body, set};
    use crate::types::Flag;

    #[test]
    fn select_with_qresync() {
        match body("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))") {
            CommandBody::Select { mailbox, params } => {
                assert_eq!(mailbox.as_bytes(), b"INBOX");
                let q = params.qresync.unwrap();
                assert_eq!(q.uidvalidity.get(), 67_890_007);
                assert_eq!(q.modseq.get(), 20_050_715_194_045_000);
                assert_eq!(q.known_uids, Some(set("41,43:211,214:541")));
                assert!(q.seq_match.is_none());
            }
            b => panic!("{b:?}"),
        }
        match body(
            "B02 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
        ) {
            CommandBody::Select { params, .. } => {
                let (s, u) = params.qresync.unwrap().seq_match.unwrap();
                assert_eq!(s, set("5000,7500,9000,9990:9999"));
                assert!(matches!(u, SequenceSet::Ranges(r) if r.items().len() == 13));
            }
            b => panic!("{b:?}"),
        }
        match body("a examine \"Sent\" (CONDSTORE)") {
            CommandBody::Examine { mailbox, params } => {
                assert_eq!(mailbox.as_bytes(), b"Sent");
                assert!(params.condstore);
            }
            b => panic!("{b:?}"),
        }
        assert!(parse_command(b"a SELECT INBOX (FOO)").is_err());
        assert!(parse_command(b"a SELECT INBOX (QRESYNC (0 1))").is_err());
    }

    #[test]
    fn create_rename_delete() {
        assert_eq!(
            body("t1 CREATE MySpecialArchive (USE (\\Archive))"),
            CommandBody::Create {
                mailbox: WireMailboxName::new(b"MySpecialArchive".to_vec()),
                special_use: vec![SpecialUse::Archive]
            }
        );
        assert_eq!(
            body("A003 CREATE owatagusiam/"),
            CommandBody::Create {
                mailbox: WireMailboxName::new(b"owatagusiam/".to_vec()),
                special_use: vec![]
            }
        );
        assert!(matches!(body("A683 RENAME blurdybloop sarasoop"), CommandBody::Rename { .. }));
        assert!(matches!(body("A142 DELETE blurdybloop"), CommandBody::Delete(_)));
        assert!(parse_command(b"a CREATE x (FOO)").is_err());
    }

    #[test]
    fn replace_and_uid_replace() {
        // RFC 8508 §6 example.
        let msg = "Subject: x\r\n\r\nbody\r\n";
        let cmd = format!("A003 REPLACE 4 Drafts (\\Draft) {{{}+}}\r\n{msg}", msg.len());
        match body(&cmd) {
            CommandBody::Replace { kind, target, mailbox, message } => {
                assert_eq!(kind, CommandKind::Seq);
                assert_eq!(target.get(), 4);
                assert_eq!(mailbox.as_bytes(), b"Drafts");
                assert_eq!(message.flags, vec![Flag::Draft]);
                assert_eq!(message.data.literal().unwrap(), msg.as_bytes());
            }
            b => panic!("{b:?}"),
        }
        let cmd = format!("A004 UID REPLACE 2224 Drafts {{{}}}\r\n{msg}", msg.len());
        assert!(matches!(body(&cmd), CommandBody::Replace { kind: CommandKind::Uid, .. }));
        assert!(matches!(body("a UNAUTHENTICATE"), CommandBody::Unauthenticate));
        for bad in ["a REPLACE 0 Drafts {1}\r\nx", "a REPLACE 1 Drafts", "a REPLACE Drafts {1}\r\nx"] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn append_single_and_multi() {
        let msg = "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\nHello\r\n";
        let cmd = format!(
            "A003 APPEND saved-messages (\\Seen) \"7-Feb-1994 21:52:25 -0800\" {{{}}}\r\n{}",
            msg.len(),
            msg
        );
        match body(&cmd) {
            CommandBody::Append { mailbox, messages } => {
                assert_eq!(mailbox.as_bytes(), b"saved-messages");
                assert_eq!(messages.len(), 1);
                assert_eq!(messages[0].flags, vec![Flag::Seen]);
                assert_eq!(messages[0].date.unwrap().unix(), 760_686_745);
                assert_eq!(messages[0].data.literal().unwrap(), msg.as_bytes());
                assert!(!messages[0].binary);
            }
            b => panic!("{b:?}"),
        }
        let cmd =
            "A1 APPEND INBOX {3+}\r\nabc (\\Draft $x) \" 1-Jan-2020 00:00:00 +0000\" ~{2}\r\n\0\x01 {0}\r\n";
        match body(cmd) {
            CommandBody::Append { messages, .. } => {
                assert_eq!(messages.len(), 3);
                assert_eq!(messages[1].flags, vec![Flag::Draft, Flag::Keyword("$x".into())]);
                assert!(messages[1].binary);
                assert_eq!(messages[1].data.literal().unwrap(), &b"\0\x01"[..]);
                assert!(messages[2].data.literal().unwrap().is_empty());
            }
            b => panic!("{b:?}"),
        }
        assert!(parse_command(b"a APPEND INBOX").is_err());
        // RFC 6855 §4: utf8-literal, also in MULTIAPPEND and after flags and date.
        let cmd = "A2 APPEND INBOX (\\Seen) UTF8 (~{4}\r\nSü\n) utf8 (~{1}\r\nx)";
        match body(cmd) {
            CommandBody::Append { messages, .. } => {
                assert_eq!(messages.len(), 2);
                assert_eq!(messages[0].flags, vec![Flag::Seen]);
                assert_eq!(messages[0].data.literal().unwrap(), "Sü\n".as_bytes());
                assert!(messages[0].binary);
                assert_eq!(messages[1].data.literal().unwrap(), &b"x"[..]);
            }
            b => panic!("{b:?}"),
        }
        assert!(parse_command(b"a APPEND INBOX UTF8 ({1}\r\nx)").is_err());
        assert!(parse_command(b"a APPEND INBOX UTF8 (~{1}\r\nx").is_err());
        assert!(parse_command(b"a APPEND INBOX \"31-Feb-2020 00:00:00 +0000\" {0}\r\n").is_err());
        assert!(parse_command(b"a APPEND INBOX \"1-Feb-2020 00:00:00 +0099\" {0}\r\n").is_err());
    }

    #[test]
    fn store_variants() {
        assert_eq!(
            body("A003 STORE 2:4 +FLAGS (\\Deleted)"),
            CommandBody::Store {
                kind: CommandKind::Seq,
                set: set("2:4"),
                action: StoreAction { op: StoreOp::Add, silent: false, flags: vec![Flag::Deleted] },
                unchanged_since: None
            }
        );
        assert_eq!(
            body("a UID STORE 1 (UNCHANGEDSINCE 0) -flags.silent \\Seen $Junk"),
            CommandBody::Store {
                kind: CommandKind::Uid,
                set: set("1"),
                action: StoreAction {
                    op: StoreOp::Remove,
                    silent: true,
                    flags: vec![Flag::Seen, Flag::Keyword("$Junk".into())]
                },
                unchanged_since: Some(0)
            }
        );
        assert!(matches!(
            body("a STORE 1 FLAGS ()"),
            CommandBody::Store { action: StoreAction { op: StoreOp::Replace, .. }, .. }
        ));
        assert!(parse_command(b"a STORE 1 FLAGS").is_err());
        assert!(parse_command(b"a STORE 1 +FLAG (\\Seen)").is_err());
    }

    #[test]
    fn copy_move() {
        assert_eq!(
            body("A003 COPY 2:4 MEETING"),
            CommandBody::Copy {
                kind: CommandKind::Seq,
                set: set("2:4"),
                mailbox: WireMailboxName::new(b"MEETING".to_vec())
            }
        );
        assert!(matches!(body("a UID MOVE 42:69 foo"), CommandBody::Move { kind: CommandKind::Uid, .. }));
        assert!(parse_command(b"a UID FOO 1").is_err());
    }

    /// RFC 4469 Appendix A, example 1 (literals sized to the text sent).
    #[test]
    fn catenate_rfc4469_example() {
        let sep = "\r\n--------------030308070208000400050907\r\n";
        let end = "\r\n--------------030308070208000400050907--\r\n";
        let cmd = format!(
            "A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT {{{}}}\r\n{sep} URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME\" URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1\" TEXT {{{}+}}\r\n{sep} URL \"/Drafts;UIDVALIDITY=385759045/;UID=30\" TEXT {{{}}}\r\n{end})",
            sep.len(),
            sep.len(),
            end.len()
        );
        match body(&cmd) {
            CommandBody::Append { mailbox, messages } => {
                assert_eq!(mailbox.as_bytes(), b"Drafts");
                assert_eq!(messages.len(), 1);
                assert_eq!(messages[0].flags.len(), 3);
                let AppendData::Catenate(parts) = &messages[0].data else { panic!("not catenate") };
                assert_eq!(parts.len(), 7);
                assert_eq!(
                    parts[0],
                    CatPart::Url("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER".into())
                );
                assert_eq!(parts[1], CatPart::Text(Bytes::from(sep.as_bytes())));
                assert_eq!(parts[6], CatPart::Text(Bytes::from(end.as_bytes())));
                assert!(!messages[0].binary);
            }
            b => panic!("{b:?}"),
        }
    }

    #[test]
    fn catenate_forms_and_errors() {
        // MULTIAPPEND mixing plain and CATENATE messages; literal8, UTF8 and atom URLs; any case.
        let cmd = "a APPEND INBOX {1}\r\nx catenate (text ~{2}\r\n\0y UTF8 (~{1}\r\nz) url /INBOX/;UID=1) (\\Seen) CATENATE (URL \";UID=2\")";
        match body(cmd) {
            CommandBody::Append { messages, .. } => {
                assert_eq!(messages.len(), 3);
                assert!(messages[0].data.literal().is_some());
                let AppendData::Catenate(parts) = &messages[1].data else { panic!() };
                assert_eq!(parts.len(), 3);
                assert!(messages[1].binary);
                assert_eq!(parts[2], CatPart::Url("/INBOX/;UID=1".into()));
                assert_eq!(messages[2].flags, vec![Flag::Seen]);
            }
            b => panic!("{b:?}"),
        }
        // REPLACE takes CATENATE too (RFC 8508 §4.2).
        let cmd = "A011 UID REPLACE 3002 Drafts CATENATE (TEXT {3}\r\nTo: URL \"/Drafts/;UID=3002\")";
        assert!(matches!(
            body(cmd),
            CommandBody::Replace { message: AppendMessage { data: AppendData::Catenate(_), .. }, .. }
        ));
        for bad in [
            "a APPEND INBOX CATENATE ()",
            "a APPEND INBOX CATENATE (TEXT \"x\")",
            "a APPEND INBOX CATENATE (URL)",
            "a APPEND INBOX CATENATE (TEXT {1}\r\nx",
            "a APPEND INBOX CATENATE (FOO {1}\r\nx)",
            "a APPEND INBOX CATENATE (TEXT {1}\r\nx  URL x)",
            "a APPEND INBOX CATENATE (TEXT UTF8 (~{1}\r\nx))",
            "a APPEND INBOX CATENATE(URL x)",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
        let many = format!("a APPEND INBOX CATENATE ({})", vec!["URL x"; MAX_CATENATE_PARTS + 1].join(" "));
        assert!(parse_command(many.as_bytes()).is_err());
        let most = format!("a APPEND INBOX CATENATE ({})", vec!["URL x"; MAX_CATENATE_PARTS].join(" "));
        assert!(parse_command(most.as_bytes()).is_ok());
    }
}
