#!/usr/bin/env python3
"""Compare Postfach's SORT and THREAD answers (RFC 5256, RFC 5957) with Dovecot's, command by
command.

Usage (as root, so that Dovecot's `imap` can run as the `dovebench` user; Dovecot 2.3 installed):
    python3 bench/compare-sort.py [--postfach BIN] [--json FILE] [-q] [--keep]

The same messages (MESSAGES: subjects with `Re:`, `Fwd:`, `[tag]` and encoded words, Date:
headers in several zones and one missing, addresses with and without display names, a
References chain, a reply whose parent is missing, two messages with one Message-ID) are
APPENDed with the same internal dates to a private Postfach and a private Dovecot; then every
SORT and THREAD of COMMANDS runs as a UID command on both. A SORT is compared as the sequence
of UIDs (order matters), a THREAD as its parenthesised tree, a failure by status and response
code.

Each difference is printed as `COMMAND: what differs [cause]`; with --json they are written as
a list of {command, kind, cause, ours, dovecot} (crates/server/tests/dovecot_sort.rs checks
every (command, cause) pair against bench/dovecot-sort-known-differences.txt;
docs/dovecot-differences.md, "SORT and THREAD", explains each cause).

Nothing outside its own temporary directory (removed at the end) is touched; both servers are
private and stopped by the script. Python 3 standard library only.
"""
import os
import sys

# The shared set-up: the servers, the IMAP connection and the main program.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
cf = __import__("compare-fetch")


def msg(frm, to, subject, date, mid, refs=b"", cc=b"", body=b"Text.\r\n"):
    head = b"From: " + frm + b"\r\nTo: " + to + b"\r\n"
    if cc:
        head += b"Cc: " + cc + b"\r\n"
    head += b"Subject: " + subject + b"\r\n"
    if date:
        head += b"Date: " + date + b"\r\n"
    if mid:
        head += b"Message-ID: " + mid + b"\r\n"
    if refs:
        head += refs
    return head + b"\r\n" + body


# (internal date, raw message)
MESSAGES = [
    (b"01-Jan-2024 10:00:00 +0000", msg(b"Carol <carol@example.org>", b"dave@example.org", b"Budget 2024",
                                        b"Mon, 1 Jan 2024 09:00:00 +0000", b"<1@x>")),
    (b"01-Jan-2024 11:00:00 +0000", msg(b"Dave <dave@example.org>", b"carol@example.org", b"Re: Budget 2024",
                                        b"Mon, 1 Jan 2024 10:30:00 +0000", b"<2@x>", b"In-Reply-To: <1@x>\r\n")),
    (b"01-Jan-2024 12:00:00 +0000", msg(b"alice@example.org", b"Bob <bob@example.org>", b"Lunch",
                                        b"Mon, 1 Jan 2024 12:00:00 +0100", b"<3@x>", cc=b"zed@example.org")),
    (b"01-Jan-2024 13:00:00 +0000", msg(b"Bob <bob@example.org>", b"alice@example.org", b"RE: Re: lunch",
                                        b"Mon, 1 Jan 2024 13:00:00 +0000", b"<4@x>",
                                        b"References: <3@x>\r\n", cc=b"Amy <amy@example.org>")),
    (b"02-Jan-2024 09:00:00 +0000", msg(b"Erin <erin@example.org>", b"team@example.org",
                                        b"Fwd: [budget] Re: Budget 2024 (fwd)",
                                        b"Tue, 2 Jan 2024 09:00:00 -0500", b"<5@x>",
                                        b"References: <1@x> <2@x>\r\n")),
    (b"02-Jan-2024 10:00:00 +0000", msg(b"=?utf-8?q?=C3=89mile?= <emile@example.fr>", b"alice@example.org",
                                        b"=?utf-8?b?Q2Fmw6k=?=", b"Tue, 2 Jan 2024 10:00:00 +0000", b"<6@x>")),
    (b"02-Jan-2024 11:00:00 +0000", msg(b"frank@example.org", b"Alice <alice@example.org>", b"Re: Caf\xc3\xa9",
                                        b"Tue, 2 Jan 2024 11:00:00 +0000", b"<7@x>",
                                        b"In-Reply-To: <6@x>\r\nReferences: <6@x>\r\n")),
    (b"03-Jan-2024 08:00:00 +0000", msg(b"grace@example.org", b"bob@example.org", b"Orphan reply",
                                        b"Wed, 3 Jan 2024 08:00:00 +0000", b"<8@x>",
                                        b"References: <missing@x>\r\n")),
    (b"03-Jan-2024 09:00:00 +0000", msg(b"heidi@example.org", b"bob@example.org", b"Re: Orphan reply",
                                        b"Wed, 3 Jan 2024 09:00:00 +0000", b"<9@x>",
                                        b"References: <missing@x> <8@x>\r\n")),
    (b"03-Jan-2024 10:00:00 +0000", msg(b"ivan@example.org", b"bob@example.org", b"No date here",
                                        None, b"<10@x>")),
    (b"03-Jan-2024 11:00:00 +0000", msg(b"judy@example.org", b"bob@example.org", b"Duplicate id",
                                        b"Wed, 3 Jan 2024 11:00:00 +0000", b"<1@x>")),
    (b"03-Jan-2024 12:00:00 +0000", msg(b"Zoe <aaa@example.org>", b"Yann <yann@example.org>", b"",
                                        b"Wed, 3 Jan 2024 12:00:00 +0000", None, body=b"x" * 3000 + b"\r\n")),
]

COMMANDS = [
    "UID SORT (ARRIVAL) UTF-8 ALL", "UID SORT (REVERSE ARRIVAL) UTF-8 ALL",
    "UID SORT (DATE) UTF-8 ALL", "UID SORT (REVERSE DATE) UTF-8 ALL",
    "UID SORT (SUBJECT) UTF-8 ALL", "UID SORT (REVERSE SUBJECT) UTF-8 ALL",
    "UID SORT (FROM) UTF-8 ALL", "UID SORT (TO) UTF-8 ALL", "UID SORT (CC) UTF-8 ALL",
    "UID SORT (SIZE) UTF-8 ALL", "UID SORT (REVERSE SIZE) UTF-8 ALL",
    "UID SORT (DISPLAYFROM) UTF-8 ALL", "UID SORT (DISPLAYTO) UTF-8 ALL",
    "UID SORT (SUBJECT DATE) UTF-8 ALL", "UID SORT (FROM REVERSE DATE) UTF-8 ALL",
    "UID SORT (SUBJECT) UTF-8 SINCE 2-Jan-2024", "UID SORT (DATE) US-ASCII ALL",
    "UID SORT (SUBJECT) KOI8-R ALL", "UID SORT () UTF-8 ALL", "UID SORT (BOGUS) UTF-8 ALL",
    "UID THREAD ORDEREDSUBJECT UTF-8 ALL", "UID THREAD REFERENCES UTF-8 ALL",
    "UID THREAD REFERENCES UTF-8 SINCE 2-Jan-2024", "UID THREAD ORDEREDSUBJECT UTF-8 NOT SUBJECT lunch",
    "UID THREAD BOGUS UTF-8 ALL",
]


def answer(conn, command):
    untagged, tagged = conn.command(command.encode())
    word = command.split()[1]
    data = [r.rstrip(b"\r\n")[len(b"* " + word.encode()):].strip() for r in untagged
            if r.startswith(b"* " + word.encode())]
    status = cf.tagged_status(tagged)
    return status, b" ".join(data).decode("latin-1")


# Why the answers differ; docs/dovecot-differences.md ("SORT and THREAD") gives the RFC text.
CAUSES = {
    "codes": "a response code on one side only",
    "charsets": "CHARSET beyond US-ASCII and UTF-8: NO [BADCHARSET] here, Dovecot converts",
    "other": "not classified",
}

# Commands whose differences were looked at one by one, and their cause.
KNOWN = {"UID SORT (SUBJECT) KOI8-R ALL": "charsets"}


def cause(command, kind, ours, dovecot):
    if kind == "status" and ours.split(" ")[0] == dovecot.split(" ")[0]:
        return "codes"
    return KNOWN.get(command, "other")


def run(binary, work, stops, quiet):
    pf, stop = cf.start_postfach(binary, work, False)
    stops.append(stop)
    dc, stop = cf.start_dovecot(work)
    stops.append(stop)
    cf.append_and_select((pf, dc), [(b"()", date, raw) for date, raw in MESSAGES])
    report = []
    compared, same = cf.compare_each(
        COMMANDS, lambda c: cf.compare_pair(answer(pf, c), answer(dc, c), "answer"), lambda c: c, cause, report,
        quiet)
    return compared, same, report


def main():
    cf.run_differential(__doc__, "compare-sort-", CAUSES, run)


if __name__ == "__main__":
    main()
