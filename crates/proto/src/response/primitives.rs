//! Wire primitives every response uses: numbers and number sets, atoms and flags, quoted
//! strings, literals, nstrings, astrings and mailbox names.

use super::types::WriteOptions;
use crate::seqset::NumberSet;
use crate::types::{Flag, is_atom_char};

// ---- numbers and sets -------------------------------------------------------------------

pub(super) fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A normalised set in `sequence-set` form; the caller ensures it is not empty.
pub(super) fn write_number_set(out: &mut Vec<u8>, set: &NumberSet) {
    for (i, r) in set.ranges().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_u64(out, u64::from(*r.start()));
        if r.start() != r.end() {
            out.push(b':');
            write_u64(out, u64::from(*r.end()));
        }
    }
}

/// A sequence-set that keeps the given order (RFC 5267 §3.2): runs of consecutive ascending
/// numbers become `a:b`, everything else is listed as is. Zeros are skipped.
pub(super) fn write_ordered_set(out: &mut Vec<u8>, numbers: &[u32]) {
    let mut numbers = numbers.iter().copied().filter(|&n| n > 0).peekable();
    let mut first = true;
    while let Some(start) = numbers.next() {
        let mut end = start;
        while numbers.peek().is_some_and(|&n| Some(n) == end.checked_add(1)) {
            end = numbers.next().unwrap_or(end);
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_u64(out, u64::from(start));
        if end != start {
            out.push(b':');
            write_u64(out, u64::from(end));
        }
    }
}

// ---- atoms and flags --------------------------------------------------------------------

pub(super) fn is_atom(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_atom_char(b))
}

pub(super) fn is_object_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// ` atom atom ...`: each preceded by SP; entries that are not atoms are skipped.
pub(super) fn write_atom_list(out: &mut Vec<u8>, atoms: &[String]) {
    for a in atoms.iter().filter(|a| is_atom(a.as_bytes())) {
        out.push(b' ');
        out.extend_from_slice(a.as_bytes());
    }
}

/// Writes a flag; returns false (having written nothing) if it is not a valid atom.
pub(super) fn write_flag(out: &mut Vec<u8>, f: &Flag) -> bool {
    let (backslash, name): (bool, &str) = match f {
        Flag::Seen => (true, "Seen"),
        Flag::Answered => (true, "Answered"),
        Flag::Flagged => (true, "Flagged"),
        Flag::Deleted => (true, "Deleted"),
        Flag::Draft => (true, "Draft"),
        Flag::Recent => (true, "Recent"),
        Flag::Keyword(k) => (false, k),
        Flag::Extension(e) => (true, e),
    };
    if !is_atom(name.as_bytes()) {
        return false;
    }
    if backslash {
        out.push(b'\\');
    }
    out.extend_from_slice(name.as_bytes());
    true
}

/// `flag-list = "(" [flag *(SP flag)] ")"`, skipping invalid keywords.
pub(super) fn write_flag_list(out: &mut Vec<u8>, flags: &[Flag]) {
    out.push(b'(');
    let mut first = true;
    for f in flags {
        let start = out.len();
        if !first {
            out.push(b' ');
        }
        if write_flag(out, f) {
            first = false;
        } else {
            out.truncate(start);
        }
    }
    out.push(b')');
}

// ---- strings ----------------------------------------------------------------------------

/// True if `s` can go in a quoted string: no NUL, CR, LF; 8-bit only as valid UTF-8 when
/// `utf8` (RFC 9051 §9 `QUOTED-CHAR`).
fn quotable(s: &[u8], utf8: bool) -> bool {
    let ascii_ok = s.iter().all(|&b| b != 0 && b != b'\r' && b != b'\n');
    if !ascii_ok {
        return false;
    }
    if s.is_ascii() {
        return true;
    }
    utf8 && std::str::from_utf8(s).is_ok()
}

/// Quoted strings longer than this are sent as literals: easier on clients and no escaping.
const MAX_QUOTED: usize = 1024;

/// `literal = "{" number "}" CRLF *CHAR8`
pub(super) fn write_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'{');
    write_u64(out, s.len() as u64);
    out.extend_from_slice(b"}\r\n");
    out.extend_from_slice(s);
}

fn write_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Writes a string: quoted if every byte is safe, else a literal `{n}\r\n...`. 8-bit bytes
/// force a literal here; use [`write_string_opts`] to allow them in UTF-8 mode.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    write_string_opts(out, s, WriteOptions::default());
}

/// Like [`write_string`], but with `opts.utf8` valid UTF-8 may go in a quoted string
/// (RFC 9051 §9 `quoted` allows UTF8-2/3/4 in IMAP4rev2).
pub fn write_string_opts(out: &mut Vec<u8>, s: &[u8], opts: WriteOptions) {
    if s.len() <= MAX_QUOTED && quotable(s, opts.utf8) {
        write_quoted(out, s);
    } else {
        write_literal(out, s);
    }
}

/// Writes `NIL` for `None`, else the string.
pub fn write_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    write_nstring_opts(out, s, WriteOptions::default());
}

pub(super) fn write_nstring_opts(out: &mut Vec<u8>, s: Option<&[u8]>, opts: WriteOptions) {
    match s {
        Some(s) => write_string_opts(out, s, opts),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Writes an atom if `s` is a valid astring atom (and not `NIL`), else a string.
pub fn write_astring(out: &mut Vec<u8>, s: &[u8]) {
    write_astring_opts(out, s, WriteOptions::default());
}

/// Like [`write_astring`], but with `opts.utf8` valid UTF-8 may go in a quoted string.
pub(super) fn write_astring_opts(out: &mut Vec<u8>, s: &[u8], opts: WriteOptions) {
    let atom_ok =
        !s.is_empty() && s.iter().all(|&b| is_atom_char(b) || b == b']') && !s.eq_ignore_ascii_case(b"NIL");
    if atom_ok {
        out.extend_from_slice(s);
    } else {
        write_string_opts(out, s, opts);
    }
}

/// Writes a mailbox name (`mailbox = "INBOX" / astring`): with `utf8` the UTF-8 name in a
/// string (RFC 9051 §5.1), else modified UTF-7 (RFC 3501 §5.1.3) as an astring.
pub fn write_mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        if name.is_ascii() {
            write_astring(out, name.as_bytes());
        } else {
            write_string_opts(out, name.as_bytes(), WriteOptions { utf8: true, ..WriteOptions::default() });
        }
    } else {
        write_astring(out, crate::mutf7::encode(name).as_bytes());
    }
}

/// A mailbox name where the grammar wants `string` rather than `astring` (OLDNAME,
/// NAMESPACE prefixes).
pub(super) fn write_mailbox_string(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        write_string_opts(out, name.as_bytes(), WriteOptions { utf8: true, ..WriteOptions::default() });
    } else {
        write_string(out, crate::mutf7::encode(name).as_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::response::tests::w;

    #[test]
    fn strings_pick_quoted_or_literal() {
        assert_eq!(w(|o| write_string(o, b"abc")), "\"abc\"");
        assert_eq!(w(|o| write_string(o, b"a\"b\\c")), "\"a\\\"b\\\\c\"");
        assert_eq!(w(|o| write_string(o, b"a\r\nb")), "{4}\r\na\r\nb");
        assert_eq!(w(|o| write_string(o, "ü".as_bytes())), "{2}\r\nü");
        let utf8 = WriteOptions { utf8: true, ..WriteOptions::default() };
        assert_eq!(w(|o| write_string_opts(o, "ü".as_bytes(), utf8)), "\"ü\"");
        assert_eq!(w(|o| write_string_opts(o, b"\xff", utf8)), "{1}\r\n\u{fffd}");
        assert_eq!(w(|o| write_nstring(o, None)), "NIL");
        assert_eq!(w(|o| write_astring(o, b"INBOX")), "INBOX");
        assert_eq!(w(|o| write_astring(o, b"nil")), "\"nil\"");
        assert_eq!(w(|o| write_astring(o, b"")), "\"\"");
        assert_eq!(w(|o| write_astring(o, b"a b")), "\"a b\"");
        assert_eq!(w(|o| write_mailbox(o, "台北", false)), "&U,BTFw-");
        assert_eq!(w(|o| write_mailbox(o, "a&b %", false)), "\"a&-b %\"");
        assert_eq!(w(|o| write_mailbox(o, "台北", true)), "\"台北\"");
        let long = vec![b'x'; MAX_QUOTED + 1];
        assert!(w(|o| write_string(o, &long)).starts_with("{1025}\r\n"));
    }
}
