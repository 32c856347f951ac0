//! FETCH response items (RFC 9051 §7.5.2): flags, dates, sections with their origin, message
//! data as literals, object ids. ENVELOPE and BODY structures are in `bodystructure`.

use std::num::NonZeroU32;

use super::bodystructure::{BodyForm, write_body, write_envelope};
use super::primitives::{
    is_object_id, write_astring, write_flag_list, write_literal, write_nstring_opts, write_u64,
};
use super::types::{FetchValue, WriteOptions};
use crate::datetime::DateTime;
use crate::types::{Section, SectionText};

/// False for items that have no valid encoding (UID 0); they are left out of the response.
pub(super) fn fetch_value_is_writable(v: &FetchValue) -> bool {
    !matches!(v, FetchValue::Uid(0))
}

/// One `msg-att` item (RFC 9051 §9 `msg-att-dynamic` / `msg-att-static`).
pub(super) fn write_fetch_value(out: &mut Vec<u8>, v: &FetchValue, opts: WriteOptions) {
    match v {
        FetchValue::Flags(flags) => {
            out.extend_from_slice(b"FLAGS ");
            write_flag_list(out, flags);
        }
        FetchValue::Uid(uid) => {
            out.extend_from_slice(b"UID ");
            write_u64(out, u64::from(*uid));
        }
        FetchValue::InternalDate(dt) => {
            out.extend_from_slice(b"INTERNALDATE ");
            write_date_time(out, dt);
        }
        FetchValue::Rfc822Size(n) => {
            out.extend_from_slice(b"RFC822.SIZE ");
            write_u64(out, *n);
        }
        FetchValue::ModSeq(m) => {
            out.extend_from_slice(b"MODSEQ (");
            write_u64(out, *m);
            out.push(b')');
        }
        FetchValue::Envelope(env) => {
            out.extend_from_slice(b"ENVELOPE ");
            write_envelope(out, env, opts);
        }
        FetchValue::BodyStructure(body) => {
            out.extend_from_slice(b"BODYSTRUCTURE ");
            write_body(out, body, BodyForm::Structure, opts, 0);
        }
        FetchValue::Body(body) => {
            out.extend_from_slice(b"BODY ");
            write_body(out, body, BodyForm::Basic, opts, 0);
        }
        FetchValue::BodySection { section, origin, data } => {
            out.extend_from_slice(b"BODY[");
            write_section(out, section);
            out.push(b']');
            write_origin(out, *origin);
            out.push(b' ');
            write_data_nstring(out, data.as_deref());
        }
        FetchValue::Binary { section, origin, data } => {
            out.extend_from_slice(b"BINARY[");
            write_section(out, section);
            out.push(b']');
            write_origin(out, *origin);
            out.push(b' ');
            match data {
                // RFC 3516 §4.2: literal8 is needed when the data contains NUL.
                Some(d) if d.contains(&0) => {
                    out.extend_from_slice(b"~{");
                    write_u64(out, d.len() as u64);
                    out.extend_from_slice(b"}\r\n");
                    out.extend_from_slice(d);
                }
                _ => write_data_nstring(out, data.as_deref()),
            }
        }
        FetchValue::BinarySize { section, size } => {
            out.extend_from_slice(b"BINARY.SIZE[");
            write_section(out, section);
            out.extend_from_slice(b"] ");
            match size {
                Some(n) => write_u64(out, *n),
                None => out.extend_from_slice(b"NIL"),
            }
        }
        FetchValue::Rfc822(d) => {
            out.extend_from_slice(b"RFC822 ");
            write_data_nstring(out, d.as_deref());
        }
        FetchValue::Rfc822Header(d) => {
            out.extend_from_slice(b"RFC822.HEADER ");
            write_data_nstring(out, d.as_deref());
        }
        FetchValue::Rfc822Text(d) => {
            out.extend_from_slice(b"RFC822.TEXT ");
            write_data_nstring(out, d.as_deref());
        }
        FetchValue::EmailId(id) => {
            out.extend_from_slice(b"EMAILID (");
            write_object_id(out, id);
            out.push(b')');
        }
        FetchValue::ThreadId(id) => {
            out.extend_from_slice(b"THREADID ");
            match id {
                Some(id) => {
                    out.push(b'(');
                    write_object_id(out, id);
                    out.push(b')');
                }
                None => out.extend_from_slice(b"NIL"),
            }
        }
        FetchValue::SaveDate(dt) => {
            out.extend_from_slice(b"SAVEDATE ");
            match dt {
                Some(dt) => write_date_time(out, dt),
                None => out.extend_from_slice(b"NIL"),
            }
        }
        FetchValue::Preview(p) => {
            out.extend_from_slice(b"PREVIEW ");
            write_nstring_opts(out, p.as_deref().map(str::as_bytes), opts);
        }
    }
}

/// `"<" number ">"` after a partial section.
fn write_origin(out: &mut Vec<u8>, origin: Option<u32>) {
    if let Some(o) = origin {
        out.push(b'<');
        write_u64(out, u64::from(o));
        out.push(b'>');
    }
}

/// `section-part`: numbers joined by ".".
fn write_part(out: &mut Vec<u8>, part: &[NonZeroU32]) {
    for (i, p) in part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        write_u64(out, u64::from(p.get()));
    }
}

/// `section-spec` as the client asked for it.
fn write_section(out: &mut Vec<u8>, section: &Section) {
    write_part(out, &section.part);
    let Some(text) = &section.text else {
        return;
    };
    if !section.part.is_empty() {
        out.push(b'.');
    }
    let (name, fields): (&[u8], Option<&Vec<String>>) = match text {
        SectionText::Header => (b"HEADER", None),
        SectionText::HeaderFields(f) => (b"HEADER.FIELDS", Some(f)),
        SectionText::HeaderFieldsNot(f) => (b"HEADER.FIELDS.NOT", Some(f)),
        SectionText::Text => (b"TEXT", None),
        SectionText::Mime => (b"MIME", None),
    };
    out.extend_from_slice(name);
    if let Some(fields) = fields {
        out.extend_from_slice(b" (");
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_astring(out, f.as_bytes());
        }
        out.push(b')');
    }
}

/// Message data (BODY[], RFC822, BINARY without NUL): always a literal, or NIL.
fn write_data_nstring(out: &mut Vec<u8>, data: Option<&[u8]>) {
    match data {
        // RFC 9051 §4.3 / §9: a literal is CHAR8, which excludes NUL; only BINARY may send NUL
        // (in literal8). A stored message with NUL bytes is shown with 0x80 in their place, as
        // Dovecot does; BINARY still returns the exact bytes.
        Some(d) if d.contains(&0) => {
            let cleaned: Vec<u8> = d.iter().map(|b| if *b == 0 { 0x80 } else { *b }).collect();
            write_literal(out, &cleaned);
        }
        Some(d) => write_literal(out, d),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `objectid = 1*255(ALPHA / DIGIT / "_" / "-")` (RFC 8474 §4); invalid ids are replaced by
/// a placeholder rather than breaking the response.
fn write_object_id(out: &mut Vec<u8>, id: &str) {
    if is_object_id(id) {
        out.extend_from_slice(id.as_bytes());
    } else {
        out.extend_from_slice(b"INVALID");
    }
}

/// `date-time` in quotes.
fn write_date_time(out: &mut Vec<u8>, dt: &DateTime) {
    use std::io::Write;
    out.push(b'"');
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{dt}");
    out.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::response::tests::d;
    use crate::response::{Data, write_data};
    use crate::types::Flag;

    #[test]
    fn fetch_lines() {
        assert_eq!(
            d(Data::Fetch {
                seq: 3,
                attrs: vec![
                    FetchValue::Flags(vec![Flag::Seen, Flag::Extension("Foo".into())]),
                    FetchValue::Uid(0),
                    FetchValue::EmailId("M6d99ac3275bb4e".into()),
                    FetchValue::ThreadId(None),
                    FetchValue::SaveDate(None),
                    FetchValue::Preview(Some("Hi".into())),
                    FetchValue::BodySection {
                        section: Section {
                            part: vec![NonZeroU32::new(1).unwrap()],
                            text: Some(SectionText::HeaderFieldsNot(vec!["X-A".into()])),
                        },
                        origin: Some(5),
                        data: Some(b"ab".to_vec()),
                    },
                    FetchValue::Binary {
                        section: Section::default(),
                        origin: None,
                        data: Some(b"\0".to_vec())
                    },
                    FetchValue::BinarySize {
                        section: Section { part: vec![NonZeroU32::new(2).unwrap()], text: None },
                        size: Some(7)
                    },
                    FetchValue::BinarySize {
                        section: Section { part: vec![NonZeroU32::new(9).unwrap()], text: None },
                        size: None
                    },
                ],
            }),
            "* 3 FETCH (FLAGS (\\Seen \\Foo) EMAILID (M6d99ac3275bb4e) THREADID NIL SAVEDATE NIL \
             PREVIEW \"Hi\" BODY[1.HEADER.FIELDS.NOT (X-A)]<5> {2}\r\nab BINARY[] ~{1}\r\n\0 \
             BINARY.SIZE[2] 7 BINARY.SIZE[9] NIL)\r\n"
        );
    }

    #[test]
    fn nul_never_travels_in_a_plain_literal() {
        let mut out = Vec::new();
        let data = Data::Fetch { seq: 1, attrs: vec![FetchValue::Rfc822(Some(b"a\0b".to_vec()))] };
        write_data(&mut out, &data, WriteOptions::default());
        assert_eq!(out, b"* 1 FETCH (RFC822 {3}\r\na\x80b)\r\n");
    }
}
