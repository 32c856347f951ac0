//! Text comparison helpers for SEARCH, SORT and THREAD: case folding for matching, the
//! i;unicode-casemap (RFC 5051) collation key for ordering, the RFC 5256 §2.1 base subject, and
//! Message-ID normalisation (RFC 5256 §3).
//!
//! Two folds, because they serve different needs. [`casefold`] (lowercase) is what the stored
//! text and the full-text index hold and what SEARCH matches with; changing it would split stored
//! text from new needles. [`collation_key`] is what SORT orders by and THREAD groups subjects by:
//! RFC 5256 §7 requires i;unicode-casemap, whose titlecase-then-NFKD order differs from any
//! lowercase order (`_`, `[` and `` ` `` sort after the letters; `Ä` among the `A`s).
//!
//! Limits: [`casefold`] is simple Unicode case folding (lowercase mapping plus the few characters
//! whose folding differs from their lowercase, such as final sigma and long s); it does not apply
//! the NFKD decomposition of RFC 5051, so `ﬁ` and `fi` match only through [`collation_key`].

/// Folds case for comparisons: every character to its simple case folding.
///
/// Used on both sides of every comparison (stored text and the client's needle), so the exact
/// choice only has to be consistent; it follows Unicode's CaseFolding.txt `C`+`S` mappings for the
/// characters where they differ from the lowercase mapping.
#[must_use]
pub fn casefold(s: &str) -> String {
    // Most mail text is ASCII: fold it a byte at a time (the same result, several times faster).
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        match fold_exception(c) {
            Some(f) => out.push(f),
            None => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The i;unicode-casemap (RFC 5051 §2) key of `s`: each character mapped to its simple titlecase,
/// then the whole decomposed (NFKD). Two strings compare under the collation as their keys
/// compare byte by byte (UTF-8 order is code point order).
///
/// The input may already be [`casefold`]ed (the store keeps folded text): the titlecase of a
/// character's lowercase is its own titlecase, except for the capital sharp s `ẞ` and the Georgian
/// Mtavruli capitals, which then get the keys of `ß` and of the Mkhedruli letters.
#[must_use]
pub fn collation_key(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    // ASCII is its own decomposition, and its titlecase is its uppercase.
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    s.chars().map(titlecase).nfkd().collect()
}

/// The simple titlecase mapping (UnicodeData.txt field 14) of one character. Rust's standard
/// library has only the uppercase mapping, which agrees except for the characters handled here
/// and for those whose full uppercase is several characters (kept as they are, which is their
/// simple titlecase, apart from the Greek iota-subscript letters handled here).
fn titlecase(c: char) -> char {
    let title = match u32::from(c) {
        // DŽ, LJ, NJ, DZ: the titlecase is the capital-then-small digraph.
        0x1c4..=0x1c6 => 0x1c5,
        0x1c7..=0x1c9 => 0x1c8,
        0x1ca..=0x1cc => 0x1cb,
        0x1f1..=0x1f3 => 0x1f2,
        // Georgian Mkhedruli: its uppercase is Mtavruli, its titlecase itself.
        0x10d0..=0x10fa | 0x10fd..=0x10ff => return c,
        // Greek with ypogegrammeni: titlecase is the prosgegrammeni form.
        n @ (0x1f80..=0x1f87 | 0x1f90..=0x1f97 | 0x1fa0..=0x1fa7) => n + 8,
        0x1fb3 => 0x1fbc,
        0x1fc3 => 0x1fcc,
        0x1ff3 => 0x1ffc,
        _ => {
            let mut upper = c.to_uppercase();
            return match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            };
        }
    };
    char::from_u32(title).unwrap_or(c)
}

/// Characters whose simple case folding differs from their lowercase mapping.
fn fold_exception(c: char) -> Option<char> {
    Some(match c {
        '\u{b5}' => '\u{3bc}',               // MICRO SIGN → μ
        '\u{17f}' => 's',                    // LONG S
        '\u{345}' | '\u{1fbe}' => '\u{3b9}', // YPOGEGRAMMENI, PROSGEGRAMMENI → ι
        '\u{3c2}' => '\u{3c3}',              // final sigma → σ
        '\u{3d0}' => '\u{3b2}',              // ϐ → β
        '\u{3d1}' => '\u{3b8}',              // ϑ → θ
        '\u{3d5}' => '\u{3c6}',              // ϕ → φ
        '\u{3d6}' => '\u{3c0}',              // ϖ → π
        '\u{3f0}' => '\u{3ba}',              // ϰ → κ
        '\u{3f1}' => '\u{3c1}',              // ϱ → ρ
        '\u{3f5}' => '\u{3b5}',              // ϵ → ε
        '\u{1e9b}' => '\u{1e61}',            // ẛ → ṡ
        _ => return None,
    })
}

/// The RFC 5256 §2.1 base subject of a decoded subject, and whether extracting it removed a
/// reply or forward marker (what the REFERENCES algorithm calls "a reply or forward").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseSubject {
    /// The base subject, whitespace-normalised, case as sent (fold it to compare).
    pub text: String,
    /// A `Re:`/`Fwd:` leader, a `(fwd)` trailer or a `[fwd: ...]` wrapper was removed.
    pub is_reply_or_forward: bool,
}

/// Extracts the base subject (RFC 5256 §2.1) from an already RFC 2047-decoded subject.
#[must_use]
pub fn base_subject(decoded: &str) -> BaseSubject {
    // Step 1: tabs and line breaks become spaces, runs of whitespace one space.
    let mut s = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        let c = if matches!(c, '\t' | '\r' | '\n') { ' ' } else { c };
        if c == ' ' && s.ends_with(' ') {
            continue;
        }
        s.push(c);
    }
    let mut reply = false;
    loop {
        // Step 2: trailing "(fwd)" and whitespace.
        loop {
            if s.ends_with(' ') {
                s.pop();
            } else if ends_with_ci(&s, "(fwd)") {
                s.truncate(s.len() - 5);
                reply = true;
            } else {
                break;
            }
        }
        // Steps 3 to 5: leaders and blobs, until nothing changes.
        loop {
            let mut changed = false;
            while let Some(end) = leader_len(&s, &mut reply) {
                s.drain(..end);
                changed = true;
            }
            // Step 4: a leading blob goes when something remains after it.
            if let Some(end) = blob_len(&s)
                && s[end..].chars().any(|c| c != ' ')
            {
                s.drain(..end);
                changed = true;
            }
            if !changed {
                break;
            }
        }
        // Step 6: "[fwd:" ... "]" around everything: unwrap and start again from step 2.
        if starts_with_ci(&s, "[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].to_owned();
            reply = true;
            continue;
        }
        break;
    }
    BaseSubject { text: s, is_reply_or_forward: reply }
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn ends_with_ci(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len() && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`: its length at the start of `s`.
fn blob_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'[') {
        return None;
    }
    let close = 1 + b[1..].iter().position(|&c| c == b'[' || c == b']')?;
    if b[close] != b']' {
        return None;
    }
    let mut end = close + 1;
    while b.get(end) == Some(&b' ') {
        end += 1;
    }
    Some(end)
}

/// `subj-leader = (*subj-blob subj-refwd) / WSP`: its length at the start of `s`; a removed
/// `subj-refwd` marks the subject as a reply or forward.
fn leader_len(s: &str, reply: &mut bool) -> Option<usize> {
    if s.starts_with(' ') {
        return Some(1);
    }
    let mut pos = 0;
    while let Some(n) = blob_len(&s[pos..]) {
        pos += n;
    }
    // subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
    let rest = &s[pos..];
    let word = if starts_with_ci(rest, "re") {
        2
    } else if starts_with_ci(rest, "fwd") {
        3
    } else if starts_with_ci(rest, "fw") {
        2
    } else {
        return None;
    };
    let mut end = pos + word;
    while s.as_bytes().get(end) == Some(&b' ') {
        end += 1;
    }
    if let Some(n) = blob_len(&s[end..]) {
        end += n;
    }
    if s.as_bytes().get(end) != Some(&b':') {
        return None;
    }
    *reply = true;
    Some(end + 1)
}

/// Normalises one message identifier (RFC 5256 §3, REFERENCES): the text between `<` and `>`
/// with quoting, backslash escapes and whitespace removed, so `<"a b"@x>` and `<ab@x>` agree.
/// None when `id` holds no `<...>` with content.
#[must_use]
pub fn normalize_message_id(id: &[u8]) -> Option<String> {
    let open = id.iter().position(|&b| b == b'<')?;
    let len = id[open + 1..].iter().position(|&b| b == b'>')?;
    let inner = &id[open + 1..open + 1 + len];
    let mut out = Vec::with_capacity(inner.len());
    let mut escaped = false;
    for &b in inner {
        if escaped {
            out.push(b);
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'"' | b' ' | b'\t' | b'\r' | b'\n' => {}
            b'<' => return None,
            _ => out.push(b),
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Every valid message identifier in a header value (References, In-Reply-To), normalised.
#[must_use]
pub fn message_id_list(value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.iter().position(|&b| b == b'<') {
        let Some(len) = rest[open..].iter().position(|&b| b == b'>') else { break };
        if let Some(id) = normalize_message_id(&rest[open..=open + len]) {
            out.push(id);
        }
        rest = &rest[open + len + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> (String, bool) {
        let b = base_subject(s);
        (b.text, b.is_reply_or_forward)
    }

    #[test]
    fn folding() {
        assert_eq!(casefold("HeLLo WÖRLD"), "hello wörld");
        // The ASCII fast path folds like the general one.
        let ascii: String = (0u8..128).map(char::from).collect();
        let general: String = ascii.chars().flat_map(char::to_lowercase).collect();
        assert_eq!(casefold(&ascii), general);
        assert_eq!(casefold(&format!("{ascii}é")), format!("{general}é"));
        assert_eq!(casefold("ΟΔΟΣ"), casefold("οδος"));
        assert_eq!(casefold("ὀδός"), "ὀδόσ");
        assert_eq!(casefold("ſtraße µ"), "straße μ");
    }

    #[test]
    fn collation_keys_order_like_unicode_casemap() {
        let mut words = vec!["_x", "b", "[x]", "A", "~", "`q", "Äpfel", "apfel", "Zebra", "ä", "ǆemal"];
        words.sort_by_cached_key(|w| collation_key(w));
        // Titlecase puts the letters before `[`, `_` and `` ` ``; NFKD puts Ä among the A's.
        assert_eq!(words, ["A", "apfel", "ä", "Äpfel", "b", "ǆemal", "Zebra", "[x]", "_x", "`q", "~"]);
        assert_eq!(collation_key("Straße ǆ ǅ Ǆ"), "STRA\u{df}E Dz\u{30c} Dz\u{30c} Dz\u{30c}");
        // Folded and unfolded text have the same key; so do composed and decomposed text.
        for s in ["Ὀδυσσεύς ᾳ ﬁ", "ΣΊΣΥΦΟΣ", "Ça va", "İstanbul", "ǅ"] {
            assert_eq!(collation_key(&casefold(s)), collation_key(s), "{s}");
        }
        assert_eq!(collation_key("A\u{308}"), collation_key("ä"));
        assert_eq!(collation_key("ᾳ"), "\u{391}\u{345}");
        assert_eq!(collation_key("ა"), "ა");
        // RFC 5051 decomposes after the titlecase mapping: the ligature has none and decomposes
        // to small letters (Dovecot 2.3 orders it the same way).
        assert_eq!(collation_key("ﬁ"), "fi");
    }

    #[test]
    fn base_subjects_rfc5256() {
        assert_eq!(base("Hello"), ("Hello".into(), false));
        assert_eq!(base("Re: Hello"), ("Hello".into(), true));
        assert_eq!(base("RE:  re: Hello  "), ("Hello".into(), true));
        assert_eq!(base("Fwd: Hello (fwd)"), ("Hello".into(), true));
        assert_eq!(base("Re: [list] Fw: Hello (FWD) "), ("Hello".into(), true));
        assert_eq!(base("[list] Hello"), ("Hello".into(), false));
        // A blob that would leave nothing is kept.
        assert_eq!(base("[only a blob]"), ("[only a blob]".into(), false));
        assert_eq!(base("[fwd: Re: x]"), ("x".into(), true));
        assert_eq!(base("re [2]: tabs\tand\r\n  folds"), ("tabs and folds".into(), true));
        // "Re" without a colon is text.
        assert_eq!(base("Read me"), ("Read me".into(), false));
        assert_eq!(base("Re:"), ("".into(), true));
        assert_eq!(base(""), ("".into(), false));
        assert_eq!(base("[a] [b] Re: [c] x"), ("x".into(), true));
    }

    #[test]
    fn message_ids() {
        assert_eq!(
            normalize_message_id(b"<\"01KF8JCEOCBS0045PS\"@xxx.yyy.com>"),
            normalize_message_id(b"<01KF8JCEOCBS0045PS@xxx.yyy.com>")
        );
        assert_eq!(normalize_message_id(b"<a\\\"b@c>").as_deref(), Some("a\"b@c"));
        assert_eq!(normalize_message_id(b"<>"), None);
        assert_eq!(normalize_message_id(b"no brackets"), None);
        assert_eq!(message_id_list(b"<a@b> junk <> <c@d> <e"), vec!["a@b".to_owned(), "c@d".to_owned()]);
    }
}
