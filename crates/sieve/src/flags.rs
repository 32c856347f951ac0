//! IMAP flag lists for the imap4flags extension (RFC 5232).
//!
//! A flag list is a set of case-insensitive flag names. Input strings are split on spaces,
//! empty strings are ignored, and names that IMAP cannot store (bad syntax, `\Recent`, unknown
//! system flags) are dropped silently, as RFC 5232 §2 requires. System flags are written in
//! their canonical case. Limits: a list keeps at most [`MAX_FLAGS`] flags of at most 255 bytes
//! each; the rest is ignored like any flag that cannot be stored.

/// Most flags kept in one list; more are ignored like flags that cannot be stored (RFC 5232 §2),
/// which bounds the memory a flag list takes.
pub(crate) const MAX_FLAGS: usize = 100;
/// Longest keyword kept, in bytes; longer ones are ignored.
const MAX_KEYWORD_LEN: usize = 255;

/// The system flags a client may set (RFC 3501 §2.3.2); `\Recent` is not one of them.
const SYSTEM_FLAGS: [&str; 5] = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

/// The canonical form of `flag`, or `None` if it must be ignored (RFC 5232 §2).
fn canonical(flag: &str) -> Option<String> {
    if let Some(rest) = flag.strip_prefix('\\') {
        return SYSTEM_FLAGS.iter().find(|f| f[1..].eq_ignore_ascii_case(rest)).map(|f| (*f).to_owned());
    }
    // flag-keyword = atom (RFC 3501 §9): ASCII graphic characters except atom-specials.
    let atom = !flag.is_empty()
        && flag.len() <= MAX_KEYWORD_LEN
        && flag.bytes().all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b));
    atom.then(|| flag.to_owned())
}

/// Splits and validates flag strings into a de-duplicated list (first spelling wins).
pub(crate) fn parse<'a>(strings: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in strings {
        // RFC 5232 §2: a space-separated string is the same as a list; runs of spaces are one.
        for word in s.split(' ').filter(|w| !w.is_empty()) {
            if out.len() >= MAX_FLAGS {
                return out;
            }
            if let Some(flag) = canonical(word)
                && !out.iter().any(|f| f.eq_ignore_ascii_case(&flag))
            {
                out.push(flag);
            }
        }
    }
    out
}

/// `addflag`: the union of `current` and `more`.
pub(crate) fn add(current: &mut Vec<String>, more: Vec<String>) {
    for flag in more {
        if current.len() >= MAX_FLAGS {
            return;
        }
        if !current.iter().any(|f| f.eq_ignore_ascii_case(&flag)) {
            current.push(flag);
        }
    }
}

/// `removeflag`: `current` without any of `gone` (case-insensitively, RFC 5232 §3.3).
pub(crate) fn remove(current: &mut Vec<String>, gone: &[String]) {
    current.retain(|f| !gone.iter().any(|g| g.eq_ignore_ascii_case(f)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_rules() {
        assert_eq!(parse(["\\Deleted \\Answered"]), vec!["\\Deleted", "\\Answered"]);
        assert_eq!(parse(["  \\seen   $Label  ", "", "$label"]), vec!["\\Seen", "$Label"]);
        assert_eq!(parse(["\\Recent \\Foo b(ad Junk ü"]), vec!["Junk"]);
        let long = "x".repeat(300);
        assert_eq!(parse([long.as_str()]), Vec::<String>::new());
        let many = (0..500).map(|i| format!("k{i}")).collect::<Vec<_>>().join(" ");
        assert_eq!(parse([many.as_str()]).len(), MAX_FLAGS);
    }

    #[test]
    fn rfc5232_set_operations() {
        // RFC 5232 §3.2: these all produce the same set.
        let mut a = Vec::new();
        add(&mut a, parse(["\\Deleted"]));
        add(&mut a, parse(["\\Answered"]));
        let mut b = Vec::new();
        add(&mut b, parse(["\\Answered \\Deleted"]));
        a.sort();
        b.sort();
        assert_eq!(a, b);
        remove(&mut a, &parse(["\\deleted", "\\Nothing"]));
        assert_eq!(a, vec!["\\Answered"]);
    }
}
