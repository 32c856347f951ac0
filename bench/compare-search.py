#!/usr/bin/env python3
"""Compare Postfach's SEARCH answers with Dovecot's, key by key.

Usage (as root, so that Dovecot's `imap` can run as the `dovebench` user; Dovecot 2.3 installed):
    python3 bench/compare-search.py [--postfach BIN] [--json FILE] [-q] [--keep]

The same messages (MESSAGES: senders and recipients with display names and encoded words, dates
in several time zones, sizes, a base64 text part, an HTML part, keywords and flags) are APPENDed
with the same flags and internal dates to a private Postfach and a private Dovecot; then every
key of SEARCHES runs as `UID SEARCH` in an IMAP4rev1 session on both: flags and keywords,
sizes, internal and sent dates (RFC 3501 §6.4.4: dates without time or zone), header fields,
address and text keys, sequence and UID sets, NOT, OR and nesting, CHARSET, and keys that must
fail. The answers are compared as sets of UIDs (both mailboxes are new, so the UIDs are the
same messages), and a failure by its status and response code.

Each difference is printed as `KEY: what differs [cause]`; with --json they are written as a
list of {command, kind, cause, ours, dovecot} (crates/server/tests/dovecot_search.rs checks every
(command, cause) pair against bench/dovecot-search-known-differences.txt;
docs/dovecot-differences.md, "SEARCH", explains each cause with the RFC text).

Nothing outside its own temporary directory (removed at the end) is touched; both servers are
private and stopped by the script. Python 3 standard library only.
"""
import os
import sys

# The shared set-up: the servers, the IMAP connection and the main program.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
cf = __import__("compare-fetch")


def msg(frm, to, subject, date, body, cc=None, bcc=None, extra=b""):
    head = b"From: " + frm + b"\r\nTo: " + to + b"\r\n"
    if cc:
        head += b"Cc: " + cc + b"\r\n"
    if bcc:
        head += b"Bcc: " + bcc + b"\r\n"
    head += b"Subject: " + subject + b"\r\nDate: " + date + b"\r\n" + extra
    return head + b"\r\n" + body


MULTIPART = (b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n",
             b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
             b"SGlkZGVuIHdvcmQ6IHBpbmVhcHBsZSBhbmQgQ2Fmw6kK\r\n--b1\r\nContent-Type: text/html\r\n\r\n"
             b"<p>Some <b>bold</b> mango</p>\r\n--b1--\r\n")

# (flags, internal date, raw message)
MESSAGES = [
    (b"(\\Seen)", b"01-Jan-2024 10:00:00 +0000",
     msg(b"Alice Example <alice@example.org>", b"Bob <bob@example.org>", b"Quarterly budget",
         b"Mon, 1 Jan 2024 09:00:00 +0000", b"Please review the budget numbers.\r\n")),
    (b"(\\Flagged $Important)", b"02-Jan-2024 23:30:00 -0800",
     msg(b"bob@example.org", b"alice@example.org", b"Re: Quarterly budget",
         b"Tue, 2 Jan 2024 23:30:00 -0800", b"The numbers look wrong.\r\n", cc=b"Carol <carol@example.net>")),
    (b"(\\Answered \\Seen)", b"31-Dec-2023 12:00:00 +0000",
     msg(b"=?utf-8?q?=C3=89mile_Zola?= <emile@example.fr>", b"team@example.org", b"=?utf-8?b?Q2Fmw6kgYXUgbGFpdA==?=",
         b"Sun, 31 Dec 2023 12:00:00 +0100", "Un café, s'il vous plaît.\r\n".encode(),
         extra=b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")),
    (b"(\\Draft)", b"15-Feb-2024 08:00:00 +0000",
     msg(b"Dave <dave@example.com>", b"alice@example.org", b"Draft: lunch plans",
         b"Thu, 15 Feb 2024 08:00:00 +1400", b"Pizza or sushi?\r\n", bcc=b"secret@example.org")),
    (b"(\\Deleted)", b"15-Feb-2024 23:59:59 +0000",
     msg(b"Eve <eve@example.com>", b"bob@example.org", b"Invoice 2024-001",
         b"Thu, 15 Feb 2024 00:30:00 -1200", b"x" * 5000 + b"\r\n")),
    (b"($Junk Seen-Later)", b"01-Mar-2024 00:00:00 +0000",
     msg(b"Mallory <mallory@spam.example>", b"undisclosed-recipients:;", b"WIN a prize!!!",
         b"Fri, 1 Mar 2024 00:00:00 +0000", b"Click here to claim your PRIZE.\r\n",
         extra=b"X-Spam-Flag: YES\r\nList-Id: <offers.spam.example>\r\n")),
    (b"()", b"10-Mar-2024 12:00:00 +0000",
     msg(b"Frank <frank@example.org>", b"Alice <alice@example.org>, bob@example.org", b"Mixed content",
         b"Sun, 10 Mar 2024 12:00:00 +0000", MULTIPART[1], extra=MULTIPART[0])),
    (b"(\\Seen \\Flagged)", b"10-Mar-2024 12:00:01 +0000",
     msg(b"alice@example.org", b"frank@example.org", b"Re: Mixed content",
         b"Sun, 10 Mar 2024 12:00:01 +0000", b"Thanks for the mango.\r\n" * 200,
         extra=b"In-Reply-To: <mixed@example.org>\r\n")),
    (b"()", b"20-Apr-2024 06:00:00 +0200",
     msg(b"Grace <grace@example.org>", b"alice@example.org", b"No body at all",
         b"Sat, 20 Apr 2024 06:00:00 +0200", b"")),
    (b"(\\Seen)", b"21-Apr-2024 06:00:00 +0200",
     b"From: heidi@example.org\r\nSubject: missing date and to\r\n\r\nWhere is the date?\r\n"),
]

SEARCHES = [
    "ALL", "SEEN", "UNSEEN", "FLAGGED", "UNFLAGGED", "ANSWERED", "UNANSWERED", "DELETED", "UNDELETED",
    "DRAFT", "UNDRAFT", "NEW", "OLD", "RECENT",
    "KEYWORD $Important", "KEYWORD $important", "UNKEYWORD $Important", "KEYWORD $Junk", "KEYWORD Seen-Later",
    "KEYWORD NoSuchKeyword",
    "LARGER 1000", "SMALLER 300", "LARGER 100000",
    "BEFORE 1-Jan-2024", "ON 1-Jan-2024", "SINCE 1-Jan-2024", "ON 2-Jan-2024", "ON 3-Jan-2024",
    "ON 15-Feb-2024", "SINCE 10-Mar-2024", "BEFORE 10-Mar-2024",
    "SENTBEFORE 1-Jan-2024", "SENTON 31-Dec-2023", "SENTON 2-Jan-2024", "SENTON 15-Feb-2024",
    "SENTSINCE 15-Feb-2024", "SENTSINCE 1-Jan-2030", "SENTBEFORE 1-Jan-1990",
    "FROM alice", "FROM ALICE", "FROM example.org", "FROM \"Alice Example\"", "FROM emile", "FROM Émile",
    "TO bob", "TO undisclosed", "CC carol", "BCC secret", "BCC nobody",
    "SUBJECT budget", "SUBJECT \"re: quarterly\"", "SUBJECT café", "SUBJECT caf", "SUBJECT Café",
    "SUBJECT \"\"",
    "BODY numbers", "BODY pineapple", "BODY mango", "BODY bold", "BODY <b>", "BODY café", "BODY prize",
    "BODY Subject", "TEXT Subject", "TEXT carol", "TEXT pineapple", "TEXT \"X-Spam-Flag\"",
    "HEADER X-Spam-Flag YES", "HEADER X-Spam-Flag \"\"", "HEADER List-Id offers", "HEADER In-Reply-To mixed",
    "HEADER Date 2024", "HEADER Message-ID \"\"", "HEADER Subject \"\"", "HEADER To \"\"",
    "1:3", "2,4,6", "*", "5:*", "UID 3:5", "UID *", "UID 100:200",
    "NOT SEEN", "NOT NOT SEEN", "OR SEEN FLAGGED", "OR (SEEN DELETED) DRAFT", "NOT OR SEEN FLAGGED",
    "(FROM alice) (SUBJECT budget)", "OR OR ANSWERED DRAFT DELETED", "SEEN NOT FLAGGED LARGER 50",
    "CHARSET UTF-8 SUBJECT Café", "CHARSET US-ASCII SUBJECT budget", "CHARSET KOI8-R SUBJECT budget",
    "NOSUCHKEY", "SINCE 32-Jan-2024", "LARGER -1", "UID", "KEYWORD \\Seen",
    # 8-bit strings go in literals (an atom or a quoted string is 7-bit in IMAP4rev1).
    ("CHARSET UTF-8 SUBJECT", "Café"), ("CHARSET UTF-8 SUBJECT", "CAFÉ"), ("CHARSET UTF-8 FROM", "Émile"),
    ("CHARSET UTF-8 BODY", "café"), ("CHARSET UTF-8 TEXT", "plaît"), ("CHARSET UTF-8 BODY", "Café\n"),
]


def search(conn, key):
    if isinstance(key, tuple):
        untagged, tagged = conn.command(("UID SEARCH " + key[0]).encode(), key[1].encode())
    else:
        untagged, tagged = conn.command(("UID SEARCH " + key).encode())
    uids = set()
    for resp in untagged:
        if resp.startswith(b"* SEARCH"):
            uids |= {int(x) for x in resp[8:].split()}
    status = cf.tagged_status(tagged)
    return status, sorted(uids)


# Why the answers differ; docs/dovecot-differences.md ("SEARCH") gives the RFC text.
CAUSES = {
    "codes": "a response code on one side only",
    "date-zone": "BEFORE/ON/SINCE compare the internal date's own day; Dovecot converts it to its "
                 "time zone first",
    "no-date": "SENTBEFORE/SENTON/SENTSINCE: a message without a Date: header matches none here; "
               "Dovecot dates it 1970",
    "html-text": "BODY searches an HTML part's text; Dovecot searches its markup too",
    "charsets": "CHARSET beyond US-ASCII and UTF-8: NO [BADCHARSET] here, Dovecot converts",
    "bad-date": "an impossible date (32-Jan-2024): BAD here, accepted by Dovecot",
    "keyword-flag": "KEYWORD \\Seen: the system flag here, a keyword no message has in Dovecot",
    "other": "not classified",
}

# Keys whose differences were looked at one by one, and their cause.
KNOWN = {
    "ON 2-Jan-2024": "date-zone",
    "ON 3-Jan-2024": "date-zone",
    "SENTBEFORE 1-Jan-2024": "no-date",
    "SENTSINCE 15-Feb-2024": "no-date",
    "SENTBEFORE 1-Jan-1990": "no-date",
    "BODY <b>": "html-text",
    "CHARSET KOI8-R SUBJECT budget": "charsets",
    "SINCE 32-Jan-2024": "bad-date",
    "KEYWORD \\Seen": "keyword-flag",
}


def cause(key, kind, ours, dovecot):
    if kind == "status" and ours.split(" ")[0] == dovecot.split(" ")[0]:
        return "codes"
    return KNOWN.get(label(key), "other")


def label(key):
    return f"{key[0]} {{literal}} {key[1]!r}" if isinstance(key, tuple) else key


def run(binary, work, stops, quiet):
    pf, stop = cf.start_postfach(binary, work, False)
    stops.append(stop)
    dc, stop = cf.start_dovecot(work)
    stops.append(stop)
    cf.append_and_select((pf, dc), MESSAGES)
    report = []
    compared, same = cf.compare_each(
        SEARCHES, lambda k: cf.compare_pair(search(pf, k), search(dc, k), "uids"), label, cause, report, quiet)
    return compared, same, report


def main():
    cf.run_differential(__doc__, "compare-search-", CAUSES, run)


if __name__ == "__main__":
    main()
