//! Differential test: the SEARCH answers of the real binary (flags and keywords, sizes, internal
//! and sent dates, header, address and text keys, sets, NOT/OR nesting, CHARSET and keys that
//! must fail) against Dovecot's, key by key.
//!
//! `bench/compare-search.py` APPENDs the same messages with the same flags and dates to a private
//! Postfach and a private Dovecot, runs every key as `UID SEARCH` on both and gives every
//! difference a cause. Each (key, cause) pair must be in
//! `bench/dovecot-search-known-differences.txt`; every cause is explained, with the RFC text that
//! decides it, in `docs/dovecot-differences.md` ("SEARCH"). Needs root, Dovecot's `imap` and the
//! `dovebench` user, as `.ci/run` prepares them (see [`common::check_against_dovecot`]).

mod common;

#[test]
fn search_answers_match_dovecot_or_are_known_differences() {
    common::check_against_dovecot(
        "compare-search.py",
        "dovecot-search-known-differences.txt",
        &[("/usr/lib/dovecot/imap", "dovecot-imapd"), ("python3", "python3")],
    );
}
