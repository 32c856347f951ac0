//! Differential test: the ManageSieve answers of the real binary (CAPABILITY, PUTSCRIPT and
//! CHECKSCRIPT of valid and broken scripts, LISTSCRIPTS, SETACTIVE, GETSCRIPT, RENAMESCRIPT,
//! DELETESCRIPT, HAVESPACE, NOOP, errors) against Dovecot Pigeonhole's, command by command.
//!
//! `bench/compare-managesieve.py` runs the same commands on a private Postfach and a private
//! Dovecot `managesieve` and gives every difference a cause. Each (command, cause) pair must be
//! in `bench/dovecot-managesieve-known-differences.txt`; every cause is explained in
//! `docs/dovecot-differences.md` ("ManageSieve"). Needs root, Dovecot's `managesieve` and the
//! `dovebench` user, as `.ci/run` prepares them (see [`common::check_against_dovecot`]).

mod common;

#[test]
fn managesieve_answers_match_dovecot_or_are_known_differences() {
    common::check_against_dovecot(
        "compare-managesieve.py",
        "dovecot-managesieve-known-differences.txt",
        &[("/usr/lib/dovecot/managesieve", "dovecot-managesieved"), ("python3", "python3")],
    );
}
