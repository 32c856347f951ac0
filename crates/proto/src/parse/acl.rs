//! Access control (RFC 4314 ACL: SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS) and quota
//! (RFC 9208 QUOTA: GETQUOTA, GETQUOTAROOT, SETQUOTA) commands. Syntax only: whether an
//! identifier, a right letter or a resource exists is for the session to judge.

use super::{PResult, Parser};
use crate::types::CommandBody;

impl Parser<'_> {
    /// An `astring` that must be UTF-8, as a `String` (identifiers, rights, quota roots).
    fn astring_utf8(&mut self, what: &'static str) -> PResult<String> {
        let start = self.pos;
        let raw = self.astring()?;
        String::from_utf8(raw).or_else(|_| {
            self.pos = start;
            self.fail(what)
        })
    }

    /// `identifier = astring` (RFC 4314 §7), as UTF-8.
    fn identifier(&mut self) -> PResult<String> {
        self.astring_utf8("UTF-8 identifier")
    }

    /// `setacl = "SETACL" SP mailbox SP identifier SP mod-rights`;
    /// `mod-rights = astring` (RFC 4314 §7), kept as sent, `+`/`-` prefix included.
    pub(super) fn setacl(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let identifier = self.identifier()?;
        self.sp()?;
        let rights = self.astring_utf8("rights")?;
        Ok(CommandBody::SetAcl { mailbox, identifier, rights })
    }

    /// `deleteacl = "DELETEACL" SP mailbox SP identifier` (RFC 4314 §7)
    pub(super) fn deleteacl(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let identifier = self.identifier()?;
        Ok(CommandBody::DeleteAcl { mailbox, identifier })
    }

    /// `listrights = "LISTRIGHTS" SP mailbox SP identifier` (RFC 4314 §7)
    pub(super) fn listrights(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let identifier = self.identifier()?;
        Ok(CommandBody::ListRights { mailbox, identifier })
    }

    /// `getquota = "GETQUOTA" SP quota-root-name`; `quota-root-name = astring` (RFC 9208 §7)
    pub(super) fn getquota(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        Ok(CommandBody::GetQuota(self.astring_utf8("UTF-8 quota root name")?))
    }

    /// `setquota = "SETQUOTA" SP quota-root-name SP setquota-list`;
    /// `setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"`;
    /// `setquota-resource = resource-name SP resource-limit`; `resource-name = atom` (the
    /// registered names are atoms too; uppercased here, they are case-insensitive);
    /// `resource-limit = number64` (RFC 9208 §7).
    pub(super) fn setquota(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let root = self.astring_utf8("UTF-8 quota root name")?;
        self.sp()?;
        self.byte(b'(', "'(' of resource limits")?;
        let mut limits = Vec::new();
        if self.eat(b')') {
            return Ok(CommandBody::SetQuota { root, limits });
        }
        loop {
            let name = self.atom_string()?.to_ascii_uppercase();
            self.sp()?;
            let limit = self.number64()?;
            limits.push((name, limit));
            if self.eat(b')') {
                return Ok(CommandBody::SetQuota { root, limits });
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
    use crate::parse::tests::{body, err};
    use crate::types::WireMailboxName;

    fn mbx(s: &str) -> WireMailboxName {
        WireMailboxName::new(s.as_bytes().to_vec())
    }

    #[test]
    fn acl_commands_rfc4314_examples() {
        // RFC 4314 §3.1.
        assert_eq!(body("A001 GETACL INBOX/Drafts"), CommandBody::GetAcl(mbx("INBOX/Drafts")));
        assert_eq!(
            body("A002 SETACL INBOX/Drafts Chris +cda"),
            CommandBody::SetAcl {
                mailbox: mbx("INBOX/Drafts"),
                identifier: "Chris".into(),
                rights: "+cda".into()
            }
        );
        // Unknown or uppercase rights are the session's BAD, not a syntax error.
        assert_eq!(
            body("A035 SETACL INBOX/Drafts John lrQswicda"),
            CommandBody::SetAcl {
                mailbox: mbx("INBOX/Drafts"),
                identifier: "John".into(),
                rights: "lrQswicda".into()
            }
        );
        // §3.2: mixed-case command name.
        assert_eq!(
            body("B002 DeleteAcl INBOX Fred"),
            CommandBody::DeleteAcl { mailbox: mbx("INBOX"), identifier: "Fred".into() }
        );
        assert_eq!(body("B001 getacl INBOX"), CommandBody::GetAcl(mbx("INBOX")));
        // §3.4.
        assert_eq!(
            body("a001 LISTRIGHTS ~/Mail/saved smith"),
            CommandBody::ListRights { mailbox: mbx("~/Mail/saved"), identifier: "smith".into() }
        );
        assert_eq!(
            body("a005 listrights archive/imap anyone"),
            CommandBody::ListRights { mailbox: mbx("archive/imap"), identifier: "anyone".into() }
        );
        // §3.5.
        assert_eq!(body("A003 MYRIGHTS INBOX"), CommandBody::MyRights(mbx("INBOX")));
    }

    #[test]
    fn acl_identifiers_and_rights_forms() {
        // Negative identifiers, `-` rights, quoted and literal astrings, UTF-8.
        assert_eq!(
            body("a SETACL \"Shared/Team\" -Fred -wetd"),
            CommandBody::SetAcl {
                mailbox: mbx("Shared/Team"),
                identifier: "-Fred".into(),
                rights: "-wetd".into()
            }
        );
        assert_eq!(
            body("a SETACL INBOX $team \"\""),
            CommandBody::SetAcl { mailbox: mbx("INBOX"), identifier: "$team".into(), rights: "".into() }
        );
        assert_eq!(
            body("a SETACL INBOX {7}\r\nJürgen lr"),
            CommandBody::SetAcl { mailbox: mbx("INBOX"), identifier: "Jürgen".into(), rights: "lr".into() }
        );
        assert_eq!(
            body("a DELETEACL INBOX \"a b\""),
            CommandBody::DeleteAcl { mailbox: mbx("INBOX"), identifier: "a b".into() }
        );
        assert_eq!(body("a SETACL INBOX x +").name(), "SETACL");
    }

    #[test]
    fn acl_malformed() {
        for bad in [
            &b"a SETACL"[..],
            b"a SETACL INBOX",
            b"a SETACL INBOX Fred",
            b"a SETACL INBOX Fred ",
            b"a SETACL INBOX Fred lr extra",
            b"a SETACL INBOX \"Fred lr",
            b"a SETACL INBOX {10}\r\nFred",
            b"a DELETEACL INBOX",
            b"a DELETEACL INBOX Fred lr",
            b"a GETACL",
            b"a GETACL INBOX Fred",
            b"a LISTRIGHTS INBOX",
            b"a MYRIGHTS",
            b"a MYRIGHTS INBOX lr",
            b"a SETACL INBOX (Fred) lr",
        ] {
            let e = err(bad);
            assert!(e.tag.is_some(), "{e}");
        }
        // Identifiers and rights must be UTF-8; the error points at the identifier.
        let e = err(b"a SETACL INBOX \"\xff\" lr");
        assert_eq!((e.message.as_str(), e.offset), ("expected UTF-8 identifier", 15));
        assert!(parse_command(b"a SETACL INBOX Fred \"\xfe\"").is_err());
        assert!(parse_command(b"a LISTRIGHTS INBOX {1}\r\n\x80").is_err());
    }

    #[test]
    fn quota_commands_rfc9208_examples() {
        // RFC 9208 §4.1.1.
        assert_eq!(
            body("G0001 GETQUOTA \"!partition/sda4\""),
            CommandBody::GetQuota("!partition/sda4".into())
        );
        // §4.1.2.
        assert_eq!(body("G0002 GETQUOTAROOT INBOX"), CommandBody::GetQuotaRoot(mbx("INBOX")));
        // §4.1.3.
        assert_eq!(body("S0000 GETQUOTA \"#user/alice\""), CommandBody::GetQuota("#user/alice".into()));
        assert_eq!(
            body("S0001 SETQUOTA \"#user/alice\" (STORAGE 510)"),
            CommandBody::SetQuota { root: "#user/alice".into(), limits: vec![("STORAGE".into(), 510)] }
        );
        assert_eq!(
            body("S0002 SETQUOTA \"!partition/sda4\" (STORAGE 99999999)"),
            CommandBody::SetQuota {
                root: "!partition/sda4".into(),
                limits: vec![("STORAGE".into(), 99_999_999)]
            }
        );
    }

    #[test]
    fn setquota_forms() {
        // Empty list: remove every limit. Names are case-insensitive atoms, kept in order.
        assert_eq!(body("a SETQUOTA \"\" ()"), CommandBody::SetQuota { root: "".into(), limits: vec![] });
        assert_eq!(
            body("a setquota alice (storage 512 Message 1000 x-Foo 9223372036854775807)"),
            CommandBody::SetQuota {
                root: "alice".into(),
                limits: vec![
                    ("STORAGE".into(), 512),
                    ("MESSAGE".into(), 1000),
                    ("X-FOO".into(), 9_223_372_036_854_775_807)
                ]
            }
        );
        assert_eq!(body("a GETQUOTA \"\""), CommandBody::GetQuota("".into()));
        assert_eq!(body("a GETQUOTAROOT comp.mail.mime").name(), "GETQUOTAROOT");
    }

    #[test]
    fn quota_malformed() {
        for bad in [
            &b"a GETQUOTA"[..],
            b"a GETQUOTA ",
            b"a GETQUOTA a b",
            b"a GETQUOTAROOT",
            b"a GETQUOTAROOT INBOX x",
            b"a SETQUOTA",
            b"a SETQUOTA root",
            b"a SETQUOTA root STORAGE 5",
            b"a SETQUOTA root (STORAGE)",
            b"a SETQUOTA root (STORAGE 5",
            b"a SETQUOTA root (STORAGE 5 ",
            b"a SETQUOTA root (STORAGE 5 MESSAGE)",
            b"a SETQUOTA root (STORAGE x)",
            b"a SETQUOTA root (STORAGE -5)",
            b"a SETQUOTA root (STORAGE 5.5)",
            b"a SETQUOTA root (STORAGE 9223372036854775808)",
            b"a SETQUOTA root (STORAGE  5)",
            b"a SETQUOTA root ( STORAGE 5)",
            b"a SETQUOTA root (STORAGE 5 )",
            b"a SETQUOTA root (\"STORAGE\" 5)",
            b"a SETQUOTA root (STOR]AGE 5)",
            b"a SETQUOTA root ((STORAGE 5))",
            b"a SETQUOTA root (STORAGE 5) x",
            b"a SETQUOTA root (",
            b"a SETQUOTA \"\xff\" ()",
        ] {
            let e = err(bad);
            assert!(e.tag.is_some() && e.offset <= bad.len(), "{e}");
        }
        let e = err(b"a SETQUOTA root (STORAGE lots)");
        assert_eq!((e.message.as_str(), e.offset), ("expected number", 25));
    }
}
