//! FETCH: the item list and macros, sections, partials and the CONDSTORE/QRESYNC modifiers.

use super::{PResult, Parser};
use crate::types::{
    CommandBody, CommandKind, FetchAttribute, FetchItems, FetchModifiers, Partial, Section, SectionText,
};

impl Parser<'_> {
    /// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    /// "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]` (RFC 9051, RFC 4466);
    /// `fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"`.
    pub(super) fn fetch(&mut self, kind: CommandKind) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let items = if self.eat(b'(') {
            let mut atts = Vec::new();
            loop {
                atts.push(self.fetch_att()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
            FetchItems::Attributes(atts)
        } else {
            let start = self.pos;
            let w = self.word();
            if w.eq_ignore_ascii_case(b"ALL") {
                FetchItems::All
            } else if w.eq_ignore_ascii_case(b"FAST") {
                FetchItems::Fast
            } else if w.eq_ignore_ascii_case(b"FULL") {
                FetchItems::Full
            } else {
                self.pos = start;
                FetchItems::Attributes(vec![self.fetch_att()?])
            }
        };
        let mut modifiers = FetchModifiers::default();
        if self.eat(b' ') {
            self.byte(b'(', "'(' of fetch modifiers")?;
            loop {
                let start = self.pos;
                let w = self.word_req("fetch modifier")?;
                if w.eq_ignore_ascii_case(b"CHANGEDSINCE") {
                    self.sp()?;
                    modifiers.changed_since = Some(self.mod_sequence_value()?.get());
                } else if w.eq_ignore_ascii_case(b"VANISHED") {
                    modifiers.vanished = true;
                } else if w.eq_ignore_ascii_case(b"PARTIAL") && modifiers.partial.is_none() {
                    self.sp()?;
                    modifiers.partial = Some(self.partial_range()?);
                } else {
                    self.pos = start;
                    return self.fail("CHANGEDSINCE, VANISHED or PARTIAL");
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::Fetch { kind, set, items, modifiers })
    }

    /// `fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822" [".HEADER" / ".SIZE" /
    /// ".TEXT"] / "BODY" ["STRUCTURE"] / "UID" / "BODY" section [partial] /
    /// "BODY.PEEK" section [partial] / "BINARY" [".PEEK"] section-binary [partial] /
    /// "BINARY.SIZE" section-binary / "MODSEQ" / "EMAILID" / "THREADID" / "SAVEDATE" /
    /// "PREVIEW" [SP "(" "LAZY" ")"]`
    pub(super) fn fetch_att(&mut self) -> PResult<FetchAttribute> {
        use FetchAttribute as A;
        let start = self.pos;
        let w = self.word_req("fetch attribute")?.to_ascii_uppercase();
        Ok(match w.as_slice() {
            b"ENVELOPE" => A::Envelope,
            b"FLAGS" => A::Flags,
            b"INTERNALDATE" => A::InternalDate,
            b"RFC822" => A::Rfc822,
            b"RFC822.HEADER" => A::Rfc822Header,
            b"RFC822.SIZE" => A::Rfc822Size,
            b"RFC822.TEXT" => A::Rfc822Text,
            b"BODYSTRUCTURE" => A::BodyStructure,
            b"UID" => A::Uid,
            b"MODSEQ" => A::ModSeq,
            b"EMAILID" => A::EmailId,
            b"THREADID" => A::ThreadId,
            b"SAVEDATE" => A::SaveDate,
            b"BODY" | b"BODY.PEEK" => {
                let peek = w.len() > 4;
                if self.peek() != Some(b'[') {
                    if peek {
                        return self.fail("'[' after BODY.PEEK");
                    }
                    return Ok(A::Body);
                }
                let section = self.section()?;
                let partial = self.partial()?;
                A::BodySection { peek, section, partial }
            }
            b"BINARY" | b"BINARY.PEEK" => {
                let peek = w.len() > 6;
                let section = self.section()?;
                let partial = self.partial()?;
                A::Binary { peek, section, partial }
            }
            b"BINARY.SIZE" => A::BinarySize { section: self.section()? },
            b"PREVIEW" => {
                // RFC 8970 §6: `PREVIEW (LAZY)`. Look ahead so that a following fetch
                // modifier list like `(CHANGEDSINCE 1)` is not taken for preview modifiers.
                let rest = &self.input[self.pos..];
                let lazy = rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b" (LAZY)");
                if lazy {
                    self.pos += 7;
                }
                A::Preview { lazy }
            }
            _ => {
                self.pos = start;
                return self.fail("fetch attribute");
            }
        })
    }

    /// `section = "[" [section-spec] "]"`;
    /// `section-spec = section-msgtext / (section-part ["." section-text])`;
    /// `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`;
    /// `section-text = section-msgtext / "MIME"`; `section-part = nz-number *("." nz-number)`.
    pub(super) fn section(&mut self) -> PResult<Section> {
        self.byte(b'[', "'[' of section")?;
        let mut section = Section::default();
        if self.eat(b']') {
            return Ok(section);
        }
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            loop {
                section.part.push(self.nz_number()?);
                if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                    continue;
                }
                break;
            }
            if self.eat(b']') {
                return Ok(section);
            }
            self.byte(b'.', "'.' or ']' in section")?;
        }
        let start = self.pos;
        // Section text words contain dots (HEADER.FIELDS.NOT), so read letters and dots.
        let w = self.take_while(|b| b.is_ascii_alphabetic() || b == b'.').to_ascii_uppercase();
        section.text = Some(match w.as_slice() {
            b"HEADER" => SectionText::Header,
            b"TEXT" => SectionText::Text,
            b"MIME" if !section.part.is_empty() => SectionText::Mime,
            b"HEADER.FIELDS" => {
                self.sp()?;
                SectionText::HeaderFields(self.header_list()?)
            }
            b"HEADER.FIELDS.NOT" => {
                self.sp()?;
                SectionText::HeaderFieldsNot(self.header_list()?)
            }
            _ => {
                self.pos = start;
                return self.fail("HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME");
            }
        });
        self.byte(b']', "']' of section")?;
        Ok(section)
    }

    /// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`;
    /// `header-fld-name = astring` (kept only if UTF-8; field names are ASCII).
    fn header_list(&mut self) -> PResult<Vec<String>> {
        self.byte(b'(', "'(' of header list")?;
        let mut names = Vec::new();
        loop {
            let start = self.pos;
            let raw = self.astring()?;
            match String::from_utf8(raw) {
                Ok(s) => names.push(s),
                Err(_) => {
                    self.pos = start;
                    return self.fail("ASCII header field name");
                }
            }
            if self.eat(b')') {
                return Ok(names);
            }
            self.sp()?;
        }
    }

    /// `partial = "<" number64 "." nz-number64 ">"` (offsets beyond 32 bits are refused).
    fn partial(&mut self) -> PResult<Option<Partial>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let offset = self.number()?;
        self.byte(b'.', "'.' in partial")?;
        let length = self.nz_number()?;
        self.byte(b'>', "'>' of partial")?;
        Ok(Some(Partial { offset, length }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::parse::parse_command;
    use crate::parse::tests::{body, set};
    use crate::seqset::SequenceSet;

    #[test]
    fn fetch_items() {
        use FetchAttribute as A;
        match body("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])") {
            CommandBody::Fetch { kind, set: s, items, .. } => {
                assert_eq!(kind, CommandKind::Seq);
                assert_eq!(s, set("2:4"));
                assert_eq!(
                    items,
                    FetchItems::Attributes(vec![
                        A::Flags,
                        A::BodySection {
                            peek: false,
                            section: Section {
                                part: vec![],
                                text: Some(SectionText::HeaderFields(vec!["DATE".into(), "FROM".into()]))
                            },
                            partial: None
                        }
                    ])
                );
            }
            b => panic!("{b:?}"),
        }
        match body(
            "a uid fetch 1:* (body.peek[1.2.3.mime]<0.1024> BINARY.PEEK[1]<5.10> binary.size[] PREVIEW (LAZY) BODY BODYSTRUCTURE rfc822.size MODSEQ EMAILID THREADID SAVEDATE) (CHANGEDSINCE 12345 VANISHED)",
        ) {
            CommandBody::Fetch { kind, items, modifiers, .. } => {
                assert_eq!(kind, CommandKind::Uid);
                let FetchItems::Attributes(a) = items else { panic!() };
                assert_eq!(a.len(), 11);
                assert_eq!(
                    a[0],
                    A::BodySection {
                        peek: true,
                        section: Section {
                            part: vec![
                                NonZeroU32::new(1).unwrap(),
                                NonZeroU32::new(2).unwrap(),
                                NonZeroU32::new(3).unwrap()
                            ],
                            text: Some(SectionText::Mime)
                        },
                        partial: Some(Partial { offset: 0, length: NonZeroU32::new(1024).unwrap() })
                    }
                );
                assert!(
                    matches!(&a[1], A::Binary { peek: true, section, partial: Some(_) } if section.part.len() == 1 && section.text.is_none())
                );
                assert_eq!(a[2], A::BinarySize { section: Section::default() });
                assert_eq!(a[3], A::Preview { lazy: true });
                assert_eq!(modifiers.changed_since, Some(12345));
                assert!(modifiers.vanished);
            }
            b => panic!("{b:?}"),
        }
        assert!(matches!(
            body("a FETCH 1 PREVIEW (CHANGEDSINCE 5)"),
            CommandBody::Fetch { items: FetchItems::Attributes(a), modifiers: FetchModifiers { changed_since: Some(5), .. }, .. }
                if a == vec![A::Preview { lazy: false }]
        ));
        assert!(matches!(body("a FETCH 1 all"), CommandBody::Fetch { items: FetchItems::All, .. }));
        assert!(matches!(body("a FETCH $ FAST"), CommandBody::Fetch { set: SequenceSet::Saved, .. }));
        assert!(matches!(body("a FETCH 1 BODY[]"), CommandBody::Fetch { .. }));
        assert!(matches!(body("a FETCH 1 body[text]<0.5>"), CommandBody::Fetch { .. }));
        for bad in [
            "a FETCH 1 BODY[MIME]",
            "a FETCH 1 BODY[0]",
            "a FETCH 1 BODY[1.]",
            "a FETCH 1 BODY[1]<0.0>",
            "a FETCH 1 BODY.PEEK",
            "a FETCH 0 FLAGS",
            "a FETCH 1:0 FLAGS",
            "a FETCH 1, FLAGS",
            "a FETCH 1 ()",
            "a FETCH 1 (FLAGS) (FOO)",
            "a FETCH 99999999999 FLAGS",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
