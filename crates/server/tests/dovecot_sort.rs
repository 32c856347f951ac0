//! Differential test: the SORT and THREAD answers of the real binary (every RFC 5256 and
//! RFC 5957 sort key, REVERSE, several keys, ORDEREDSUBJECT and REFERENCES threads, with search
//! criteria) against Dovecot's, command by command.
//!
//! `bench/compare-sort.py` APPENDs the same messages to a private Postfach and a private Dovecot,
//! runs every SORT and THREAD on both and gives every difference a cause. Each (command, cause)
//! pair must be in `bench/dovecot-sort-known-differences.txt`; every cause is explained in
//! `docs/dovecot-differences.md` ("SORT and THREAD"). Needs root, Dovecot's `imap` and the
//! `dovebench` user, as `.ci/run` prepares them (see [`common::check_against_dovecot`]).

mod common;

#[test]
fn sort_and_thread_answers_match_dovecot_or_are_known_differences() {
    common::check_against_dovecot(
        "compare-sort.py",
        "dovecot-sort-known-differences.txt",
        &[("/usr/lib/dovecot/imap", "dovecot-imapd"), ("python3", "python3")],
    );
}
