//! The command dispatch (`command` → one parser per command name, `UID` prefix included) and
//! the commands too small for a file of their own: AUTHENTICATE, LOGIN, ENABLE, ID.

use super::{PResult, Parser};
use postfach_secret::Secret;

use crate::types::{CommandBody, CommandKind, CompressionAlgorithm};

impl Parser<'_> {
    /// `command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF`;
    /// `command-auth =/ setacl / deleteacl / getacl / listrights / myrights` (RFC 4314 §7),
    /// `getquota / getquotaroot / setquota` (RFC 9208 §7), `setmetadata / getmetadata`
    /// (RFC 5464 §5).
    pub(super) fn command_body(&mut self) -> PResult<CommandBody> {
        let name = self.word_req("command name")?;
        let upper = name.to_ascii_uppercase();
        Ok(match upper.as_slice() {
            b"CAPABILITY" => CommandBody::Capability,
            b"NOOP" => CommandBody::Noop,
            b"LOGOUT" => CommandBody::Logout,
            b"STARTTLS" => CommandBody::StartTls,
            b"NAMESPACE" => CommandBody::Namespace,
            b"IDLE" => CommandBody::Idle,
            b"CHECK" => CommandBody::Check,
            b"CLOSE" => CommandBody::Close,
            b"UNSELECT" => CommandBody::Unselect,
            b"EXPUNGE" => CommandBody::Expunge { uids: None },
            b"AUTHENTICATE" => self.authenticate()?,
            b"LOGIN" => self.login()?,
            b"ENABLE" => self.enable()?,
            b"SELECT" => {
                let (mailbox, params) = self.select()?;
                CommandBody::Select { mailbox, params }
            }
            b"EXAMINE" => {
                let (mailbox, params) = self.select()?;
                CommandBody::Examine { mailbox, params }
            }
            b"CREATE" => self.create()?,
            b"DELETE" => {
                self.sp()?;
                CommandBody::Delete(self.mailbox()?)
            }
            b"RENAME" => {
                self.sp()?;
                let from = self.mailbox()?;
                self.sp()?;
                let to = self.mailbox()?;
                CommandBody::Rename { from, to }
            }
            b"SUBSCRIBE" => {
                self.sp()?;
                CommandBody::Subscribe(self.mailbox()?)
            }
            b"UNSUBSCRIBE" => {
                self.sp()?;
                CommandBody::Unsubscribe(self.mailbox()?)
            }
            b"LIST" => self.list()?,
            b"LSUB" => {
                self.sp()?;
                let reference = self.mailbox()?;
                self.sp()?;
                let pattern = self.list_mailbox()?;
                CommandBody::Lsub { reference, pattern }
            }
            b"STATUS" => self.status()?,
            b"APPEND" => self.append()?,
            b"SEARCH" => self.search(CommandKind::Seq)?,
            b"ESEARCH" => self.esearch()?,
            b"SORT" => self.sort(CommandKind::Seq)?,
            b"THREAD" => self.thread(CommandKind::Seq)?,
            b"FETCH" => self.fetch(CommandKind::Seq)?,
            b"STORE" => self.store(CommandKind::Seq)?,
            b"COPY" => self.copy_move(CommandKind::Seq, false)?,
            b"MOVE" => self.copy_move(CommandKind::Seq, true)?,
            b"UID" => self.uid()?,
            b"REPLACE" => self.replace(CommandKind::Seq)?,
            b"UNAUTHENTICATE" => CommandBody::Unauthenticate,
            b"COMPRESS" => self.compress()?,
            b"ID" => self.id()?,
            b"SETACL" => self.setacl()?,
            b"DELETEACL" => self.deleteacl()?,
            b"GETACL" => {
                self.sp()?;
                CommandBody::GetAcl(self.mailbox()?)
            }
            b"LISTRIGHTS" => self.listrights()?,
            b"MYRIGHTS" => {
                self.sp()?;
                CommandBody::MyRights(self.mailbox()?)
            }
            b"GETQUOTA" => self.getquota()?,
            b"GETQUOTAROOT" => {
                self.sp()?;
                CommandBody::GetQuotaRoot(self.mailbox()?)
            }
            b"SETQUOTA" => self.setquota()?,
            b"GETMETADATA" => self.getmetadata()?,
            b"CANCELUPDATE" => self.cancelupdate()?,
            b"SETMETADATA" => self.setmetadata()?,
            b"NOTIFY" => self.notify()?,
            b"GENURLAUTH" => self.genurlauth()?,
            b"RESETKEY" => self.resetkey()?,
            b"URLFETCH" => self.urlfetch()?,
            b"UIDBATCHES" => self.uidbatches()?,
            _ => {
                self.pos -= name.len();
                return self.fail_msg("unknown command");
            }
        })
    }

    /// `uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)`;
    /// `uid-expunge = "EXPUNGE" SP sequence-set`
    fn uid(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let name = self.word_req("UID command")?;
        let upper = name.to_ascii_uppercase();
        match upper.as_slice() {
            b"SEARCH" => self.search(CommandKind::Uid),
            // RFC 7377 §2's own example writes `UID ESEARCH`; ESEARCH answers with UIDs anyway.
            b"ESEARCH" => self.esearch(),
            b"SORT" => self.sort(CommandKind::Uid),
            b"THREAD" => self.thread(CommandKind::Uid),
            b"FETCH" => self.fetch(CommandKind::Uid),
            b"STORE" => self.store(CommandKind::Uid),
            b"COPY" => self.copy_move(CommandKind::Uid, false),
            b"MOVE" => self.copy_move(CommandKind::Uid, true),
            b"REPLACE" => self.replace(CommandKind::Uid),
            b"EXPUNGE" => {
                self.sp()?;
                Ok(CommandBody::Expunge { uids: Some(self.sequence_set()?) })
            }
            _ => {
                self.pos -= name.len();
                self.fail("COPY, MOVE, FETCH, SEARCH, SORT, THREAD, STORE, REPLACE or EXPUNGE after UID")
            }
        }
    }

    /// `authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]`;
    /// `initial-resp = (base64 / "=")` (RFC 4959).
    fn authenticate(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mech = self.atom_string()?.to_ascii_uppercase();
        let mut initial_response = None;
        if self.eat(b' ') {
            let ir = self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
            if ir.is_empty() {
                return self.fail("base64 initial response or '='");
            }
            initial_response = Some(Secret::new(ir.to_vec()));
        }
        Ok(CommandBody::Authenticate { mechanism: mech, initial_response })
    }

    /// `login = "LOGIN" SP userid SP password`; `userid = astring`; `password = astring`
    fn login(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let username = self.astring()?;
        self.sp()?;
        let password = Secret::new(self.astring()?);
        Ok(CommandBody::Login { username, password })
    }

    /// `enable = "ENABLE" 1*(SP capability)` (RFC 5161)
    fn enable(&mut self) -> PResult<CommandBody> {
        let mut caps = Vec::new();
        loop {
            self.sp()?;
            caps.push(self.atom_string()?.to_ascii_uppercase());
            if self.at_end() {
                return Ok(CommandBody::Enable(caps));
            }
        }
    }

    /// `"CANCELUPDATE" 1*(SP quoted)` (RFC 5267 §5): the tags of the searches, as sent.
    fn cancelupdate(&mut self) -> PResult<CommandBody> {
        let mut tags = Vec::new();
        while self.eat(b' ') {
            let start = self.pos;
            let tag = self.quoted()?;
            match String::from_utf8(tag) {
                Ok(tag) => tags.push(tag),
                Err(_) => {
                    self.pos = start;
                    return self.fail("a tag");
                }
            }
        }
        if tags.is_empty() {
            return self.fail("SP and a quoted tag");
        }
        Ok(CommandBody::CancelUpdate(tags))
    }

    /// `uidbatches = "UIDBATCHES" SP nz-number [SP nz-number ":" nz-number]` (RFC 10022 §6):
    /// the batch size, then the first and last batch wanted. A single batch number is not a
    /// range (the grammar wants both ends), and is answered BAD like any syntax error.
    fn uidbatches(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let size = self.nz_number()?;
        let range = if self.eat(b' ') {
            let first = self.nz_number()?;
            self.byte(b':', "':' in batch range")?;
            Some((first, self.nz_number()?))
        } else {
            None
        };
        Ok(CommandBody::UidBatches { size, range })
    }

    /// `compress = "COMPRESS" SP algorithm`; `algorithm = "DEFLATE"` (RFC 4978 §5). An unknown
    /// algorithm is a syntax error, answered BAD (§3: "invalid or unknown argument").
    fn compress(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let start = self.pos;
        let name = self.atom()?;
        if name.eq_ignore_ascii_case(b"DEFLATE") {
            return Ok(CommandBody::Compress(CompressionAlgorithm::Deflate));
        }
        self.pos = start;
        self.fail_msg("unknown compression algorithm (DEFLATE is the one supported)")
    }

    /// `id = "ID" SP id_params_list`;
    /// `id_params_list = "(" #(string SP nstring) ")" / nil` (RFC 2971 §4).
    fn id(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        if !self.eat(b'(') {
            self.keyword("NIL")?;
            return Ok(CommandBody::Id(None));
        }
        let mut params = Vec::new();
        if self.eat(b')') {
            return Ok(CommandBody::Id(Some(params)));
        }
        loop {
            let key = self.string()?;
            self.sp()?;
            let value = self.nstring()?;
            params.push((
                String::from_utf8_lossy(&key).into_owned(),
                value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            ));
            if self.eat(b')') {
                return Ok(CommandBody::Id(Some(params)));
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
    use crate::parse::tests::{body, ok, set};

    #[test]
    fn simple_commands() {
        assert_eq!(ok("a1 CAPABILITY").tag.as_str(), "a1");
        assert_eq!(body("a noop"), CommandBody::Noop);
        assert_eq!(body("a LOGOUT"), CommandBody::Logout);
        assert_eq!(body("a StartTLS"), CommandBody::StartTls);
        assert_eq!(body("a IDLE"), CommandBody::Idle);
        assert_eq!(body("a UNSELECT"), CommandBody::Unselect);
        assert_eq!(body("a EXPUNGE"), CommandBody::Expunge { uids: None });
        assert_eq!(body("a UID EXPUNGE 3000:3002"), CommandBody::Expunge { uids: Some(set("3000:3002")) });
    }

    #[test]
    fn uidbatches() {
        let nz = |n: u32| std::num::NonZeroU32::new(n).unwrap();
        assert_eq!(body("a UIDBATCHES 2000"), CommandBody::UidBatches { size: nz(2000), range: None });
        assert_eq!(
            body("a uidbatches 500 10:20"),
            CommandBody::UidBatches { size: nz(500), range: Some((nz(10), nz(20))) }
        );
        // Reversed ranges parse; the session answers them BAD [CLIENTBUG].
        assert_eq!(
            body("a UIDBATCHES 1000 4:1"),
            CommandBody::UidBatches { size: nz(1000), range: Some((nz(4), nz(1))) }
        );
        for bad in [
            "a UIDBATCHES",
            "a UIDBATCHES 0",
            "a UIDBATCHES abc",
            "a UIDBATCHES 500 10",
            "a UIDBATCHES 500 0:1",
            "a UIDBATCHES 500 1:*",
            "a UIDBATCHES 500 1:2 x",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn logged_commands_redact_secrets() {
        let login = format!("{:?}", body("a001 LOGIN SMITH SESAME"));
        let password = format!("{:?}", b"SESAME".to_vec());
        assert!(login.contains("REDACTED") && !login.contains(&password[1..password.len() - 1]), "{login}");
        // "AGZvbwBiYXI=" is PLAIN's "\0foo\0bar".
        let auth = format!("{:?}", body("a AUTHENTICATE PLAIN AGZvbwBiYXI="));
        assert!(auth.contains("REDACTED") && !auth.contains("AGZvbwBiYXI="), "{auth}");
    }

    #[test]
    fn login_and_authenticate() {
        match body("a001 LOGIN SMITH SESAME") {
            CommandBody::Login { username, password } => {
                assert_eq!(username, b"SMITH");
                assert_eq!(password.expose_secret(), b"SESAME");
            }
            b => panic!("{b:?}"),
        }
        match body("a LOGIN {4}\r\nfr\"d \"p\\\\w\"") {
            CommandBody::Login { username, password } => {
                assert_eq!(username, b"fr\"d");
                assert_eq!(password.expose_secret(), b"p\\w");
            }
            b => panic!("{b:?}"),
        }
        assert_eq!(
            body("A01 AUTHENTICATE plain"),
            CommandBody::Authenticate { mechanism: "PLAIN".into(), initial_response: None }
        );
        match body("A01 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=") {
            CommandBody::Authenticate { initial_response: Some(ir), .. } => {
                assert_eq!(ir.expose_secret(), b"dGVzdAB0ZXN0AHRlc3Q=")
            }
            b => panic!("{b:?}"),
        }
        assert!(matches!(
            body("A01 AUTHENTICATE PLAIN ="),
            CommandBody::Authenticate { initial_response: Some(_), .. }
        ));
        assert!(parse_command(b"a LOGIN {3}\r\nab").is_err());
        assert!(parse_command(b"a LOGIN {3}\r\na\0b x").is_err());
    }

    #[test]
    fn enable_and_id() {
        assert_eq!(
            body("t2 enable condstore utf8=accept"),
            CommandBody::Enable(vec!["CONDSTORE".into(), "UTF8=ACCEPT".into()])
        );
        assert_eq!(
            body("a023 ID (\"name\" \"sodr\" \"version\" NIL)"),
            CommandBody::Id(Some(vec![("name".into(), Some("sodr".into())), ("version".into(), None)]))
        );
        assert_eq!(body("a ID NIL"), CommandBody::Id(None));
    }

    #[test]
    fn cancelupdate_rfc5267() {
        // §4.3.5's example, several tags, and what is not a quoted tag.
        assert_eq!(body("B04 CANCELUPDATE \"B01\""), CommandBody::CancelUpdate(vec!["B01".into()]));
        assert_eq!(
            body("a cancelupdate \"x1\" \"x 2\""),
            CommandBody::CancelUpdate(vec!["x1".into(), "x 2".into()])
        );
        assert!(parse_command(b"a CANCELUPDATE").is_err());
        assert!(parse_command(b"a CANCELUPDATE B01").is_err());
        assert!(parse_command(b"a CANCELUPDATE {3}\r\nB01").is_err());
    }

    #[test]
    fn compress() {
        // RFC 4978 §3's example, and case-insensitivity (§5).
        assert_eq!(body("c compress deflate"), CommandBody::Compress(CompressionAlgorithm::Deflate));
        assert_eq!(body("c COMPRESS DEFLATE"), CommandBody::Compress(CompressionAlgorithm::Deflate));
        let err = parse_command(b"c COMPRESS LZ4").unwrap_err();
        assert!(err.to_string().contains("unknown compression algorithm"), "{err}");
        assert_eq!(err.tag.as_ref().map(|t| t.as_str()), Some("c"));
        assert!(parse_command(b"c COMPRESS").is_err());
        assert!(parse_command(b"c COMPRESS DEFLATE extra").is_err());
    }
}
