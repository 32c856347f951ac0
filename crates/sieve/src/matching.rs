//! String comparison: comparators (RFC 5228 §2.7.3, RFC 4790 §9), match types :is :contains
//! :matches (RFC 5228 §2.7.1) and the relational :value / :count (RFC 5231).
//!
//! Every operation charges a [`Budget`] so a hostile script cannot make matching take unbounded
//! time: `:matches` is the linear-backtracking glob (O(value × pattern) worst case, charged per
//! step), `:contains` and `:is` charge one step per 16 bytes examined.
//!
//! Deliberate choice: `?` matches one Unicode character, not one octet as RFC 5228 §2.7.1 says
//! for i;octet and i;ascii-casemap. Values here are UTF-8 text; splitting a character would put
//! broken UTF-8 into match variables. For ASCII the two readings agree.

use std::cmp::Ordering;

/// The comparators we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparator {
    /// "i;octet": compares octets.
    Octet,
    /// "i;ascii-casemap": ASCII letters compare case-insensitively (the default).
    AsciiCasemap,
    /// "i;ascii-numeric": compares the leading decimal number; no digits means +infinity.
    AsciiNumeric,
}

impl Comparator {
    /// The comparator named `name` (exact, as registered), if we implement it.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "i;octet" => Some(Self::Octet),
            "i;ascii-casemap" => Some(Self::AsciiCasemap),
            "i;ascii-numeric" => Some(Self::AsciiNumeric),
            _ => None,
        }
    }

    /// The capability a script must `require` to use this comparator, if any.
    /// RFC 5228 §2.7.3: only i;octet and i;ascii-casemap may be used without require.
    pub(crate) fn capability(self) -> Option<&'static str> {
        match self {
            Self::AsciiNumeric => Some("comparator-i;ascii-numeric"),
            Self::Octet | Self::AsciiCasemap => None,
        }
    }

    /// Whether :contains and :matches work with it (RFC 4790: i;ascii-numeric has no substring
    /// operation).
    pub(crate) fn supports_substring(self) -> bool {
        !matches!(self, Self::AsciiNumeric)
    }

    fn chars_equal(self, a: char, b: char) -> bool {
        match self {
            Self::AsciiCasemap => a.eq_ignore_ascii_case(&b),
            Self::Octet | Self::AsciiNumeric => a == b,
        }
    }

    /// Equality as the comparator defines it.
    pub(crate) fn equal(self, a: &str, b: &str) -> bool {
        match self {
            Self::Octet => a == b,
            Self::AsciiCasemap => a.eq_ignore_ascii_case(b),
            Self::AsciiNumeric => numeric_cmp(a, b) == Ordering::Equal,
        }
    }

    /// Ordering as the comparator defines it (RFC 4790 §9).
    pub(crate) fn order(self, a: &str, b: &str) -> Ordering {
        match self {
            Self::Octet => a.as_bytes().cmp(b.as_bytes()),
            // RFC 4790 §9.2: ascii-casemap maps lower-case letters to upper case, then compares octets.
            Self::AsciiCasemap => {
                a.bytes().map(|c| c.to_ascii_uppercase()).cmp(b.bytes().map(|c| c.to_ascii_uppercase()))
            }
            Self::AsciiNumeric => numeric_cmp(a, b),
        }
    }
}

/// RFC 4790 §9.1 i;ascii-numeric: the value is the leading digit string; a string that does not
/// start with a digit is positive infinity. Works for numbers of any length.
fn numeric_cmp(a: &str, b: &str) -> Ordering {
    fn leading_number(s: &str) -> Option<&str> {
        let len = s.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        Some(s[..len].trim_start_matches('0'))
    }
    match (leading_number(a), leading_number(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
    }
}

/// Relational operator of :value / :count (RFC 5231 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl RelOp {
    /// Parses "gt" "ge" "lt" "le" "eq" "ne" (case-insensitively, like other Sieve keywords).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "gt" => Some(Self::Gt),
            "ge" => Some(Self::Ge),
            "lt" => Some(Self::Lt),
            "le" => Some(Self::Le),
            "eq" => Some(Self::Eq),
            "ne" => Some(Self::Ne),
            _ => None,
        }
    }

    fn holds(self, ord: Ordering) -> bool {
        match self {
            Self::Gt => ord == Ordering::Greater,
            Self::Ge => ord != Ordering::Less,
            Self::Lt => ord == Ordering::Less,
            Self::Le => ord != Ordering::Greater,
            Self::Eq => ord == Ordering::Equal,
            Self::Ne => ord != Ordering::Equal,
        }
    }
}

/// How a value is compared with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchType {
    Is,
    Contains,
    Matches,
    /// RFC 5231 §4.1: value `op` key under the comparator's ordering.
    Value(RelOp),
    /// RFC 5231 §4.2: number of values `op` key.
    Count(RelOp),
}

/// Signals that the evaluation budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exhausted;

/// The remaining evaluation steps of one script run.
#[derive(Debug)]
pub(crate) struct Budget {
    left: u64,
}

impl Budget {
    pub(crate) fn new(steps: u64) -> Self {
        Self { left: steps }
    }

    /// Takes `n` steps, or fails when fewer are left.
    pub(crate) fn charge(&mut self, n: u64) -> Result<(), Exhausted> {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.left = 0;
                Err(Exhausted)
            }
        }
    }

    /// Charges for a linear scan over `bytes` bytes.
    pub(crate) fn charge_scan(&mut self, bytes: usize) -> Result<(), Exhausted> {
        self.charge(1 + (bytes as u64) / 16)
    }
}

/// One element of a compiled :matches pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PTok {
    Lit(char),
    /// "?" with its wildcard number (0-based).
    One(usize),
    /// "*" with its wildcard number (0-based).
    Star(usize),
}

/// A :matches pattern: "*" and "?" are wildcards, "\" makes the next character literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    toks: Vec<PTok>,
    wildcards: usize,
}

impl Pattern {
    pub(crate) fn new(key: &str) -> Self {
        let mut toks = Vec::with_capacity(key.len());
        let mut wildcards = 0;
        let mut chars = key.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    toks.push(PTok::Star(wildcards));
                    wildcards += 1;
                }
                '?' => {
                    toks.push(PTok::One(wildcards));
                    wildcards += 1;
                }
                // A trailing lone backslash matches itself.
                '\\' => toks.push(PTok::Lit(chars.next().unwrap_or('\\'))),
                c => toks.push(PTok::Lit(c)),
            }
        }
        Self { toks, wildcards }
    }

    /// Matches the whole `value`; on success returns the byte ranges each wildcard took. Earlier
    /// wildcards take as little as possible (RFC 5229 §3.2: non-greedy).
    ///
    /// This is the classic glob that only ever backtracks to the most recent "*": a match exists
    /// iff it finds one, and the extents it fixes for earlier wildcards are the shortest ones.
    pub(crate) fn matches(
        &self,
        cmp: Comparator,
        value: &str,
        budget: &mut Budget,
    ) -> Result<Option<Vec<(usize, usize)>>, Exhausted> {
        let mut caps = vec![(0usize, 0usize); self.wildcards];
        let (mut p, mut s) = (0usize, 0usize);
        // (pattern index of the star, byte where the star's text starts, bytes it takes now)
        let mut star: Option<(usize, usize, usize)> = None;
        let next_char = |at: usize| value[at..].chars().next();
        loop {
            budget.charge(1)?;
            if p < self.toks.len() {
                match self.toks[p] {
                    PTok::Star(w) => {
                        caps[w] = (s, s);
                        star = Some((p, s, s));
                        p += 1;
                        continue;
                    }
                    PTok::One(w) => {
                        if let Some(c) = next_char(s) {
                            caps[w] = (s, s + c.len_utf8());
                            s += c.len_utf8();
                            p += 1;
                            continue;
                        }
                    }
                    PTok::Lit(l) => {
                        if let Some(c) = next_char(s)
                            && cmp.chars_equal(l, c)
                        {
                            s += c.len_utf8();
                            p += 1;
                            continue;
                        }
                    }
                }
            } else if s == value.len() {
                return Ok(Some(caps));
            }
            // Mismatch: let the most recent star take one more character, or fail.
            let Some((sp, start, end)) = star else { return Ok(None) };
            let Some(c) = next_char(end) else { return Ok(None) };
            let end = end + c.len_utf8();
            star = Some((sp, start, end));
            if let PTok::Star(w) = self.toks[sp] {
                caps[w] = (start, end);
            }
            p = sp + 1;
            s = end;
        }
    }
}

/// `:contains` under `cmp` (never called with i;ascii-numeric: compile refuses it).
pub(crate) fn contains(
    cmp: Comparator,
    value: &str,
    key: &str,
    budget: &mut Budget,
) -> Result<bool, Exhausted> {
    budget.charge_scan(value.len() + key.len())?;
    Ok(match cmp {
        Comparator::AsciiCasemap => value.to_ascii_lowercase().contains(&key.to_ascii_lowercase()),
        Comparator::Octet | Comparator::AsciiNumeric => value.contains(key),
    })
}

/// `:is` under `cmp`.
pub(crate) fn is(cmp: Comparator, value: &str, key: &str, budget: &mut Budget) -> Result<bool, Exhausted> {
    budget.charge_scan(value.len().min(key.len()))?;
    Ok(cmp.equal(value, key))
}

/// `:value op` under `cmp`: the message value is the left side (RFC 5231 §4.1).
pub(crate) fn value(
    cmp: Comparator,
    op: RelOp,
    left: &str,
    right: &str,
    budget: &mut Budget,
) -> Result<bool, Exhausted> {
    budget.charge_scan(left.len().min(right.len()))?;
    Ok(op.holds(cmp.order(left, right)))
}

/// `:count op` under `cmp`: the count, written in decimal, is the left side (RFC 5231 §4.2).
pub(crate) fn count(cmp: Comparator, op: RelOp, count: usize, key: &str) -> bool {
    op.holds(cmp.order(&count.to_string(), key))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn glob(pat: &str, value: &str, cmp: Comparator) -> Option<Vec<String>> {
        let mut b = Budget::new(1_000_000);
        Pattern::new(pat)
            .matches(cmp, value, &mut b)
            .unwrap()
            .map(|caps| caps.into_iter().map(|(a, z)| value[a..z].to_owned()).collect())
    }

    #[test]
    fn glob_basics() {
        let c = Comparator::AsciiCasemap;
        assert!(glob("*", "", c).is_some());
        assert!(glob("?", "", c).is_none());
        assert!(glob("?*", "", c).is_none());
        assert!(glob("frob*", "FROBnitzm", c).is_some());
        assert!(glob("frob*", "FROBnitzm", Comparator::Octet).is_none());
        assert!(glob("*make*money*fast*", "You can MAKE MONEY FAST!", c).is_some());
        assert!(glob("*university*dipl*mas*", "university diplomas", c).is_some());
        assert!(glob("a\\*b", "a*b", c).is_some());
        assert!(glob("a\\*b", "axb", c).is_none());
        assert!(glob("a\\?", "a?", c).is_some());
        assert!(glob("a\\\\", "a\\", c).is_some());
        assert!(glob("?", "ü", c).is_some());
        assert!(glob("*a", "bbbb", c).is_none());
    }

    #[test]
    fn rfc5229_match_variable_examples() {
        let c = Comparator::AsciiCasemap;
        assert_eq!(
            glob("*<*@*", "Sieve list <sieve.example.org@lists>", c).unwrap(),
            vec!["Sieve list ", "sieve.example.org", "lists>"]
        );
        assert_eq!(
            glob("[*] *", "[acme-users] [fwd] version 1.0 is out", c).unwrap(),
            vec!["acme-users", "[fwd] version 1.0 is out"]
        );
        assert_eq!(glob("coyote@**.com", "coyote@ACME.Example.COM", c).unwrap(), vec!["", "ACME.Example"]);
        assert_eq!(glob("* pending *", " pending pending ", c).unwrap(), vec!["", "pending "]);
        assert_eq!(glob("a?c*", "abcdef", c).unwrap(), vec!["b", "def"]);
    }

    #[test]
    fn glob_is_bounded() {
        // The worst case of the single-backtrack glob is O(value × pattern).
        let value = "a".repeat(5000);
        let pattern = format!("*{}b", "a".repeat(50));
        let mut b = Budget::new(100_000);
        assert_eq!(Pattern::new(&pattern).matches(Comparator::Octet, &value, &mut b), Err(Exhausted));
        let mut b = Budget::new(1_000_000);
        assert_eq!(Pattern::new(&pattern).matches(Comparator::Octet, &value, &mut b), Ok(None));
        // Many stars do not make it exponential.
        let mut b = Budget::new(1_000_000);
        let stars = "*a".repeat(20) + "*b";
        assert_eq!(Pattern::new(&stars).matches(Comparator::Octet, &value, &mut b), Ok(None));
    }

    #[test]
    fn comparators() {
        use Comparator::*;
        assert!(AsciiCasemap.equal("Frob", "fROB"));
        assert!(!Octet.equal("Frob", "fROB"));
        assert!(AsciiNumeric.equal("007", "7"));
        assert!(AsciiNumeric.equal("abc", "xyz"));
        assert!(AsciiNumeric.equal("3 apples", "3"));
        assert_eq!(AsciiNumeric.order("10", "9"), Ordering::Greater);
        assert_eq!(AsciiNumeric.order("x", "99999999999999999999999"), Ordering::Greater);
        assert_eq!(Octet.order("10", "9"), Ordering::Less);
        assert_eq!(AsciiCasemap.order("a", "B"), Ordering::Less);
        assert_eq!(AsciiCasemap.order("_", "a"), Ordering::Greater);
        let mut b = Budget::new(1000);
        assert!(contains(AsciiCasemap, "frobnitzm", "NIT", &mut b).unwrap());
        assert!(contains(AsciiCasemap, "frobnitzm", "", &mut b).unwrap());
        assert!(!contains(AsciiCasemap, "frobnitzm", "fbm", &mut b).unwrap());
        assert!(!contains(Octet, "frobnitzm", "NIT", &mut b).unwrap());
        assert!(value(AsciiNumeric, RelOp::Lt, "2", "3", &mut b).unwrap());
        assert!(!value(AsciiNumeric, RelOp::Lt, "", "3", &mut b).unwrap());
        assert!(count(AsciiNumeric, RelOp::Ge, 3, "3"));
        assert!(!count(AsciiNumeric, RelOp::Gt, 3, "3"));
        assert!(count(AsciiNumeric, RelOp::Ne, 0, "1"));
    }

    #[test]
    fn relops() {
        for (s, op) in [("GT", RelOp::Gt), ("ge", RelOp::Ge), ("lt", RelOp::Lt), ("le", RelOp::Le)] {
            assert_eq!(RelOp::parse(s), Some(op));
        }
        assert_eq!(RelOp::parse("eq"), Some(RelOp::Eq));
        assert_eq!(RelOp::parse("ne"), Some(RelOp::Ne));
        assert_eq!(RelOp::parse("gte"), None);
    }
}
