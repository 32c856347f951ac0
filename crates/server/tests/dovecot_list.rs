//! Differential test: the mailbox answers of the real binary (LIST with every pattern shape and
//! RFC 5258/6154/5819 option, LSUB, STATUS, CREATE, DELETE, RENAME, SUBSCRIBE) against
//! Dovecot's, command by command.
//!
//! `bench/compare-list.py` runs one script of commands on a private Postfach and a private
//! Dovecot set up alike (one namespace, "/" as separator, the same special-use mailboxes) and
//! gives every difference a cause. Each (command, cause) pair must be in
//! `bench/dovecot-list-known-differences.txt`; every cause is explained, with the RFC text that
//! decides it, in `docs/dovecot-differences.md` ("Mailbox lists"). Needs root, Dovecot's `imap`
//! and the `dovebench` user, as `.ci/run` prepares them (see [`common::check_against_dovecot`]).

mod common;

#[test]
fn mailbox_answers_match_dovecot_or_are_known_differences() {
    common::check_against_dovecot(
        "compare-list.py",
        "dovecot-list-known-differences.txt",
        &[("/usr/lib/dovecot/imap", "dovecot-imapd"), ("python3", "python3")],
    );
}
