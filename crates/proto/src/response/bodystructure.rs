//! ENVELOPE and BODY/BODYSTRUCTURE (RFC 9051 §7.5.2, §9): nested body parts, with or without
//! extension data; depth is bounded by [`MAX_BODY_DEPTH`].

use super::primitives::{write_nstring_opts, write_string_opts, write_u64};
use super::types::{Address, Body, Disposition, Envelope, MultiPart, SinglePart, WriteOptions};

/// Deepest body structure the writer follows; deeper parts are written as an empty
/// text/plain part so a hostile message cannot exhaust the stack.
pub const MAX_BODY_DEPTH: usize = 100;

/// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP
/// env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`
pub(super) fn write_envelope(out: &mut Vec<u8>, env: &Envelope, opts: WriteOptions) {
    out.push(b'(');
    write_nstring_opts(out, env.date.as_deref(), opts);
    out.push(b' ');
    write_nstring_opts(out, env.subject.as_deref(), opts);
    for list in [&env.from, &env.sender, &env.reply_to, &env.to, &env.cc, &env.bcc] {
        out.push(b' ');
        write_address_list(out, list, opts);
    }
    out.push(b' ');
    write_nstring_opts(out, env.in_reply_to.as_deref(), opts);
    out.push(b' ');
    write_nstring_opts(out, env.message_id.as_deref(), opts);
    out.push(b')');
}

/// `"(" 1*address ")" / nil`; `address = "(" addr-name SP addr-adl SP addr-mailbox SP
/// addr-host ")"`.
fn write_address_list(out: &mut Vec<u8>, list: &[Address], opts: WriteOptions) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        write_nstring_opts(out, a.name.as_deref(), opts);
        out.push(b' ');
        write_nstring_opts(out, a.adl.as_deref(), opts);
        out.push(b' ');
        write_nstring_opts(out, a.mailbox.as_deref(), opts);
        out.push(b' ');
        write_nstring_opts(out, a.host.as_deref(), opts);
        out.push(b')');
    }
    out.push(b')');
}

/// BODY (no extension data) or BODYSTRUCTURE (with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyForm {
    Basic,
    Structure,
}

/// `body = "(" (body-type-1part / body-type-mpart) ")"` (RFC 9051 §9).
pub(super) fn write_body(out: &mut Vec<u8>, body: &Body, form: BodyForm, opts: WriteOptions, depth: usize) {
    if depth >= MAX_BODY_DEPTH {
        out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
        return;
    }
    match body {
        Body::Single(p) => write_single_part(out, p, form, opts, depth),
        Body::Multi(m) => write_multi_part(out, m, form, opts, depth),
    }
}

/// `body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]`;
/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
/// body-fld-octets`.
fn write_single_part(out: &mut Vec<u8>, p: &SinglePart, form: BodyForm, opts: WriteOptions, depth: usize) {
    out.push(b'(');
    write_string_opts(out, &p.media_type, opts);
    out.push(b' ');
    write_string_opts(out, &p.subtype, opts);
    out.push(b' ');
    write_params(out, &p.params, opts);
    out.push(b' ');
    write_nstring_opts(out, p.id.as_deref(), opts);
    out.push(b' ');
    write_nstring_opts(out, p.description.as_deref(), opts);
    out.push(b' ');
    write_string_opts(out, &p.encoding, opts);
    out.push(b' ');
    write_u64(out, u64::from(p.size));
    if let Some(m) = &p.message {
        // body-type-msg: SP envelope SP body SP body-fld-lines
        out.push(b' ');
        write_envelope(out, &m.envelope, opts);
        out.push(b' ');
        write_body(out, &m.body, form, opts, depth + 1);
        out.push(b' ');
        write_u64(out, u64::from(m.lines));
    } else if p.media_type.eq_ignore_ascii_case(b"TEXT") {
        // body-type-text requires body-fld-lines.
        out.push(b' ');
        write_u64(out, u64::from(p.lines.unwrap_or(0)));
    }
    if form == BodyForm::Structure
        && let Some(ext) = &p.ext
    {
        // body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
        out.push(b' ');
        write_nstring_opts(out, ext.md5.as_deref(), opts);
        out.push(b' ');
        write_disposition(out, ext.disposition.as_ref(), opts);
        out.push(b' ');
        write_language(out, &ext.language, opts);
        out.push(b' ');
        write_nstring_opts(out, ext.location.as_deref(), opts);
    }
    out.push(b')');
}

/// `body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]`.
fn write_multi_part(out: &mut Vec<u8>, m: &MultiPart, form: BodyForm, opts: WriteOptions, depth: usize) {
    out.push(b'(');
    if m.parts.is_empty() {
        // `1*body`: a multipart needs a part; stand in an empty one.
        out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
    }
    for part in &m.parts {
        write_body(out, part, form, opts, depth + 1);
    }
    out.push(b' ');
    write_string_opts(out, &m.subtype, opts);
    if form == BodyForm::Structure
        && let Some(ext) = &m.ext
    {
        // body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
        out.push(b' ');
        write_params(out, &ext.params, opts);
        out.push(b' ');
        write_disposition(out, ext.disposition.as_ref(), opts);
        out.push(b' ');
        write_language(out, &ext.language, opts);
        out.push(b' ');
        write_nstring_opts(out, ext.location.as_deref(), opts);
    }
    out.push(b')');
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`
fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)], opts: WriteOptions) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_string_opts(out, k, opts);
        out.push(b' ');
        write_string_opts(out, v, opts);
    }
    out.push(b')');
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`
fn write_disposition(out: &mut Vec<u8>, d: Option<&Disposition>, opts: WriteOptions) {
    match d {
        Some(d) => {
            out.push(b'(');
            write_string_opts(out, &d.kind, opts);
            out.push(b' ');
            write_params(out, &d.params, opts);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `body-fld-lang = nstring / "(" string *(SP string) ")"`
fn write_language(out: &mut Vec<u8>, langs: &[Vec<u8>], opts: WriteOptions) {
    match langs {
        [] => out.extend_from_slice(b"NIL"),
        [one] => write_string_opts(out, one, opts),
        many => {
            out.push(b'(');
            for (i, l) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_string_opts(out, l, opts);
            }
            out.push(b')');
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::response::tests::d;
    use crate::response::{Data, FetchValue, SinglePartExt};

    #[test]
    fn body_structure_shapes() {
        let text = Body::Single(SinglePart {
            media_type: b"TEXT".to_vec(),
            subtype: b"PLAIN".to_vec(),
            params: vec![(b"CHARSET".to_vec(), b"US-ASCII".to_vec())],
            id: None,
            description: None,
            encoding: b"7BIT".to_vec(),
            size: 3028,
            lines: Some(92),
            message: None,
            ext: Some(SinglePartExt::default()),
        });
        // RFC 9051 §7.5.2 example shape for BODY; BODYSTRUCTURE adds the extension fields.
        assert_eq!(
            d(Data::Fetch { seq: 1, attrs: vec![FetchValue::Body(text.clone())] }),
            "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n"
        );
        assert_eq!(
            d(Data::Fetch { seq: 1, attrs: vec![FetchValue::BodyStructure(text.clone())] }),
            "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92 NIL NIL NIL NIL))\r\n"
        );
        // Nesting beyond the bound is cut off instead of recursing without limit.
        let mut deep = text;
        for _ in 0..(MAX_BODY_DEPTH * 3) {
            deep = Body::Multi(MultiPart { parts: vec![deep], subtype: b"MIXED".to_vec(), ext: None });
        }
        let out = d(Data::Fetch { seq: 1, attrs: vec![FetchValue::Body(deep)] });
        assert_eq!(out.matches("\"MIXED\"").count(), MAX_BODY_DEPTH);
    }
}
