//! The METADATA commands (RFC 5464 §4.2, §4.3, §5): GETMETADATA and SETMETADATA. Entry names
//! are checked here ([`metadata_entry`]): an invalid one is BAD in any command (§3.2).

use super::{PResult, Parser};
use crate::types::{CommandBody, EntryUse, MetadataDepth, metadata_entry};

impl Parser<'_> {
    /// `entry = astring` (RFC 5464 §5), checked and lowercased.
    fn metadata_entry(&mut self, usage: EntryUse) -> PResult<String> {
        let start = self.pos;
        let raw = self.astring()?;
        metadata_entry(&raw, usage).or_else(|why| {
            self.pos = start;
            self.fail_msg(why)
        })
    }

    /// `getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries`;
    /// `getmetadata-options = "(" getmetadata-option *(SP getmetadata-option) ")"`;
    /// `entries = entry / "(" entry *(SP entry) ")"` (RFC 5464 §5).
    ///
    /// Also taken, as the RFC's own examples write them (§4.2.1, §4.2.2, §4.4.1): the options
    /// after the mailbox, and several entries without parentheses.
    pub(super) fn getmetadata(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mut options = None;
        if self.peek() == Some(b'(') {
            options = Some(self.getmetadata_options()?);
            self.sp()?;
        }
        let mailbox = self.mailbox()?;
        self.sp()?;
        // `(` followed by a letter is an option list; an entry list starts with `/` or a string.
        if self.peek() == Some(b'(') && self.peek_at(1).is_some_and(|b| b.is_ascii_alphabetic()) {
            if options.is_some() {
                return self.fail_msg("GETMETADATA options given twice");
            }
            options = Some(self.getmetadata_options()?);
            self.sp()?;
        }
        let (max_size, depth) = options.unwrap_or((None, MetadataDepth::Zero));
        let mut entries = Vec::new();
        if self.eat(b'(') {
            loop {
                entries.push(self.metadata_entry(EntryUse::Get)?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else {
            entries.push(self.metadata_entry(EntryUse::Get)?);
            while self.eat(b' ') {
                entries.push(self.metadata_entry(EntryUse::Get)?);
            }
        }
        Ok(CommandBody::GetMetadata { mailbox, max_size, depth, entries })
    }

    /// `"(" getmetadata-option *(SP getmetadata-option) ")"` with the two options RFC 5464
    /// defines: `maxsize-opt = "MAXSIZE" SP number`, `scope-opt = "DEPTH" SP ("0" / "1" /
    /// "infinity")`. Any other option, or one given twice, is BAD.
    fn getmetadata_options(&mut self) -> PResult<(Option<u32>, MetadataDepth)> {
        self.byte(b'(', "'(' of GETMETADATA options")?;
        let (mut max_size, mut depth) = (None, None);
        loop {
            let start = self.pos;
            let name = self.word_req("GETMETADATA option")?.to_ascii_uppercase();
            self.sp()?;
            match name.as_slice() {
                b"MAXSIZE" if max_size.is_none() => max_size = Some(self.number()?),
                b"DEPTH" if depth.is_none() => {
                    let at = self.pos;
                    let value = self.word_req("DEPTH value")?.to_ascii_lowercase();
                    depth = Some(match value.as_slice() {
                        b"0" => MetadataDepth::Zero,
                        b"1" => MetadataDepth::One,
                        b"infinity" => MetadataDepth::Infinity,
                        _ => {
                            self.pos = at;
                            return self.fail("DEPTH 0, 1 or infinity");
                        }
                    });
                }
                b"MAXSIZE" | b"DEPTH" => {
                    self.pos = start;
                    return self.fail_msg("GETMETADATA option given twice");
                }
                _ => {
                    self.pos = start;
                    return self.fail("MAXSIZE or DEPTH");
                }
            }
            if self.eat(b')') {
                return Ok((max_size, depth.unwrap_or_default()));
            }
            self.sp()?;
        }
    }

    /// `setmetadata = "SETMETADATA" SP mailbox SP entry-values`;
    /// `entry-values = "(" entry-value *(SP entry-value) ")"`; `entry-value = entry SP value`;
    /// `value = nstring / literal8` (RFC 5464 §5).
    pub(super) fn setmetadata(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        self.byte(b'(', "'(' of entry values")?;
        let mut entries = Vec::new();
        loop {
            let entry = self.metadata_entry(EntryUse::Set)?;
            self.sp()?;
            let value = if self.peek() == Some(b'~') {
                let (data, _literal8) = self.literal_any(true, true)?;
                Some(data.to_vec())
            } else {
                self.nstring()?
            };
            entries.push((entry, value));
            if self.eat(b')') {
                return Ok(CommandBody::SetMetadata { mailbox, entries });
            }
            self.sp()?;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::parse::tests::{body, err};
    use crate::types::WireMailboxName;

    fn get(mailbox: &str, max_size: Option<u32>, depth: MetadataDepth, entries: &[&str]) -> CommandBody {
        CommandBody::GetMetadata {
            mailbox: WireMailboxName::new(mailbox.as_bytes().to_vec()),
            max_size,
            depth,
            entries: entries.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    fn set(mailbox: &str, entries: &[(&str, Option<&[u8]>)]) -> CommandBody {
        CommandBody::SetMetadata {
            mailbox: WireMailboxName::new(mailbox.as_bytes().to_vec()),
            entries: entries.iter().map(|(e, v)| ((*e).to_owned(), v.map(<[u8]>::to_vec))).collect(),
        }
    }

    #[test]
    fn getmetadata_rfc5464_examples() {
        use MetadataDepth::*;
        // §4.2
        assert_eq!(body("a GETMETADATA \"\" /shared/comment"), get("", None, Zero, &["/shared/comment"]));
        assert_eq!(
            body("a GETMETADATA \"INBOX\" /private/comment"),
            get("INBOX", None, Zero, &["/private/comment"])
        );
        assert_eq!(
            body("a GETMETADATA \"INBOX\" (/shared/comment /private/comment)"),
            get("INBOX", None, Zero, &["/shared/comment", "/private/comment"])
        );
        // §4.2.1 and §4.2.2 put the options after the mailbox; §5's ABNF before it.
        assert_eq!(
            body("a GETMETADATA \"INBOX\" (MAXSIZE 1024) (/shared/comment /private/comment)"),
            get("INBOX", Some(1024), Zero, &["/shared/comment", "/private/comment"])
        );
        assert_eq!(
            body("a GETMETADATA (MAXSIZE 1024) \"INBOX\" (/shared/comment /private/comment)"),
            get("INBOX", Some(1024), Zero, &["/shared/comment", "/private/comment"])
        );
        assert_eq!(
            body("a GETMETADATA \"INBOX\" (DEPTH 1) (/private/filters/values)"),
            get("INBOX", None, One, &["/private/filters/values"])
        );
        // §4.4.1: several entries without parentheses.
        assert_eq!(
            body("a GETMETADATA \"INBOX\" /private/comment /shared/comment"),
            get("INBOX", None, Zero, &["/private/comment", "/shared/comment"])
        );
        assert_eq!(
            body("a getmetadata (depth INFINITY maxsize 5) \"\" (/Shared /PRIVATE/Vendor)"),
            get("", Some(5), Infinity, &["/shared", "/private/vendor"])
        );
    }

    #[test]
    fn getmetadata_malformed() {
        for bad in [
            "a GETMETADATA INBOX",
            "a GETMETADATA INBOX ()",
            "a GETMETADATA INBOX comment",
            "a GETMETADATA INBOX /public/comment",
            "a GETMETADATA INBOX /shared//comment",
            "a GETMETADATA INBOX /shared/comment/",
            "a GETMETADATA INBOX /shared/*",
            "a GETMETADATA INBOX \"/shared/100%\"",
            "a GETMETADATA INBOX \"/shared/\u{e9}\"",
            "a GETMETADATA (DEPTH 2) INBOX /shared",
            "a GETMETADATA (DEPTH 1 DEPTH 0) INBOX /shared",
            "a GETMETADATA (FOO 1) INBOX /shared",
            "a GETMETADATA (MAXSIZE -1) INBOX /shared",
            "a GETMETADATA (MAXSIZE 1) INBOX (MAXSIZE 2) /shared",
            "a GETMETADATA INBOX (/shared",
        ] {
            let e = err(bad.as_bytes());
            assert_eq!(e.tag.as_ref().map(|t| t.as_str()), Some("a"), "{bad}");
        }
        let long = format!("a GETMETADATA INBOX /shared/{}", "x".repeat(crate::types::MAX_METADATA_ENTRY));
        assert!(err(long.as_bytes()).message.contains("too long"));
    }

    #[test]
    fn setmetadata_rfc5464_examples() {
        // §4.3, the literal example, NIL removal and two entries at once.
        assert_eq!(
            body("a SETMETADATA INBOX (/private/comment {33}\r\nMy new comment across\r\ntwo lines.)"),
            set("INBOX", &[("/private/comment", Some(b"My new comment across\r\ntwo lines."))])
        );
        assert_eq!(
            body("a SETMETADATA INBOX (/private/comment NIL)"),
            set("INBOX", &[("/private/comment", None)])
        );
        assert_eq!(
            body(
                "a SETMETADATA INBOX (/private/comment \"My new comment\" /shared/comment \"This one is for you!\")"
            ),
            set(
                "INBOX",
                &[
                    ("/private/comment", Some(b"My new comment")),
                    ("/shared/comment", Some(b"This one is for you!"))
                ]
            )
        );
        // literal8 may carry NUL; an empty string is a value, not a removal.
        assert_eq!(
            body("a SETMETADATA \"\" (/Private/Vendor/Acme/Blob ~{3}\r\na\0b /shared/x \"\")"),
            set("", &[("/private/vendor/acme/blob", Some(b"a\0b")), ("/shared/x", Some(b""))])
        );
    }

    #[test]
    fn setmetadata_malformed() {
        for bad in [
            "a SETMETADATA INBOX ()",
            "a SETMETADATA INBOX /shared/comment \"x\"",
            "a SETMETADATA INBOX (/shared/comment)",
            "a SETMETADATA INBOX (/shared \"x\")",
            "a SETMETADATA INBOX (/shared/vendor/acme \"x\")",
            "a SETMETADATA INBOX (/shared/comment \"x\" /shared/a)",
            "a SETMETADATA INBOX (/shared/comment {3}\r\na\0b)",
            "a SETMETADATA INBOX (comment \"x\")",
        ] {
            let e = err(bad.as_bytes());
            assert_eq!(e.tag.as_ref().map(|t| t.as_str()), Some("a"), "{bad}");
        }
    }
}
