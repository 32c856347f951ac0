//! Differential test: the POP3 answers of the real binary (STAT, LIST, UIDL, TOP, RETR with
//! dot-stuffing, DELE, RSET, CAPA, malformed and unknown commands, what QUIT commits) against
//! Dovecot's, command by command.
//!
//! `bench/compare-pop3.py` APPENDs the same messages to a private Postfach and a private Dovecot,
//! runs the same POP3 sessions on both and gives every difference a cause. Each (command, cause)
//! pair must be in `bench/dovecot-pop3-known-differences.txt`; every cause is explained, with
//! the RFC text that decides it, in `docs/dovecot-differences.md` ("POP3"). Needs root,
//! Dovecot's `imap` and `pop3` and the `dovebench` user, as `.ci/run` prepares them (see
//! [`common::check_against_dovecot`]).

mod common;

#[test]
fn pop3_answers_match_dovecot_or_are_known_differences() {
    common::check_against_dovecot(
        "compare-pop3.py",
        "dovecot-pop3-known-differences.txt",
        &[
            ("/usr/lib/dovecot/imap", "dovecot-imapd"),
            ("/usr/lib/dovecot/pop3", "dovecot-pop3d"),
            ("python3", "python3"),
        ],
    );
}
