#!/usr/bin/env python3
"""Drive a Postfach server with IMAPClient (PyPI `imapclient`), as an application built on it would.

Run by crates/server/tests/clients.rs; usable by hand too:

    imapclient_client.py --mode ssl|starttls --host 127.0.0.1 --port N \
        --user alice --password secret --cafile data/tls/cert.pem

IMAPClient parses every response into Python values (ENVELOPE and BODYSTRUCTURE into tuples,
INTERNALDATE into datetimes, folder names from modified UTF-7), so a response it cannot parse
fails the run. Checked here: capabilities, ID, NAMESPACE, special-use folders, a folder with a
non-ASCII name, APPEND with flags and a date, MULTIAPPEND, SEARCH (ASCII and UTF-8 criteria),
SORT, THREAD, FETCH of every common item, flags, COPY and MOVE with their UIDs, UID EXPUNGE,
CONDSTORE (MODSEQ and CHANGEDSINCE), STATUS, QUOTA, ACL, and IDLE: a second connection must see
new mail, a flag change and an expunge made by the first while it idles. Exit status 0 means
every check passed; otherwise the failing check is printed on stderr and the status is 1.
"""

import argparse
import datetime
import re
import ssl
import sys
import time

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

# Every socket operation is bounded, so a silent server fails the run instead of hanging it.
SOCKET_TIMEOUT = 30
# How long an idling connection may wait for a change made by the other one.
IDLE_PATIENCE = 10


def check(condition, message):
    """Fail the run with `message` unless `condition` holds."""
    if not condition:
        raise AssertionError(message)


def mail(i, subject=None, references=None):
    """The i-th test message (bytes, CRLF line ends)."""
    subject = subject or f"Client message {i}"
    refs = f"References: {references}\r\nIn-Reply-To: {references}\r\n" if references else ""
    return (
        f"From: Sender {i % 3} <sender{i % 3}@example.org>\r\n"
        f"To: Alice <alice@example.com>\r\n"
        f"Cc: Carol <carol@example.net>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Tue, {1 + i} Mar 2022 10:00:00 +0100\r\n"
        f"Message-ID: <ic-{i}@imapclient.test>\r\n"
        f"{refs}"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"Body {i}: the quick brown fox jumps over the lazy dog.\r\n"
    ).encode("utf-8")


def connect(args):
    """A logged-in client over implicit TLS or STARTTLS, the certificate checked for the host."""
    context = ssl.create_default_context(cafile=args.cafile)
    if args.mode == "ssl":
        client = IMAPClient(args.host, port=args.port, ssl=True, ssl_context=context, timeout=SOCKET_TIMEOUT)
    else:
        client = IMAPClient(args.host, port=args.port, ssl=False, timeout=SOCKET_TIMEOUT)
        check(b"STARTTLS" in client.capabilities(), "STARTTLS not offered before login")
        client.starttls(context)
    client.login(args.user, args.password)
    # INTERNALDATE as the server sent it, with its zone (not converted to local time).
    client.normalise_times = False
    return client


def run(args):
    client = connect(args)
    caps = set(client.capabilities())
    for needed in (b"IMAP4REV1", b"UIDPLUS", b"MOVE", b"IDLE", b"CONDSTORE", b"SORT", b"NAMESPACE",
                   b"SPECIAL-USE", b"MULTIAPPEND", b"QUOTA", b"ACL", b"ID", b"THREAD=REFERENCES"):
        check(needed in caps, f"{needed!r} missing from {sorted(caps)}")
    server_id = client.id_({"name": "imapclient_client.py", "version": "1"})
    # IMAPClient gives the parenthesised list as parsed: ((field, value, ...),).
    fields = dict(zip(server_id[0][::2], server_id[0][1::2]))
    check(fields.get(b"name") == b"Postfach", f"ID: {server_id!r}")

    # ENABLE belongs before any SELECT (RFC 5161 §3.1); IMAPClient itself refuses it later.
    enabled = client.enable("CONDSTORE")
    check(enabled == [b"CONDSTORE"], f"ENABLE: {enabled!r}")

    namespace = client.namespace()
    check(namespace.personal and namespace.personal[0][0] == "", f"NAMESPACE: {namespace!r}")
    delimiter = namespace.personal[0][1]

    # Special-use folders, found the way IMAPClient finds them (LIST with SPECIAL-USE).
    from imapclient.imapclient import ARCHIVE, DRAFTS, JUNK, SENT, TRASH
    listed = {name: flags for flags, _delim, name in client.list_folders()}
    for use, name in ((SENT, "Sent"), (TRASH, "Trash"), (JUNK, "Junk"), (DRAFTS, "Drafts"), (ARCHIVE, "Archive")):
        check(use in listed.get(name, ()), f"LIST: {name} without {use!r}: {listed!r}")
        found = client.find_special_folder(use)
        check(found == name, f"special-use {use!r}: {found!r}")

    # A folder with a non-ASCII name, through modified UTF-7 both ways, with a subfolder.
    folder = "Entwürfe & Pläne"
    child = f"{folder}{delimiter}2022"
    client.create_folder(folder)
    client.create_folder(child)
    names = [name for _flags, _delim, name in client.list_folders()]
    check(folder in names and child in names, f"LIST: {names!r}")
    client.subscribe_folder(folder)
    check(folder in [n for _f, _d, n in client.list_sub_folders()], "LSUB misses the subscribed folder")
    check(client.folder_exists(child), "folder_exists")

    # APPEND with flags and an internal date; APPENDUID in the answer.
    when = datetime.datetime(2022, 3, 4, 12, 30, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    answer = client.append("INBOX", mail(0), flags=(b"\\Seen", b"$Work"), msg_time=when)
    check(re.match(rb"\[APPENDUID \d+ 1\]", answer), f"APPEND answer: {answer!r}")
    for i in range(1, 6):
        client.append("INBOX", mail(i, references="<ic-0@imapclient.test>" if i in (2, 4) else None))
    client.append("INBOX", mail(6, subject="=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?="))
    multi = client.multiappend(folder, [mail(10), {"msg": mail(11), "flags": [b"\\Flagged"]}])
    # Two UIDs in one APPENDUID: the first two of the new folder.
    check(multi[0] == "OK" and re.match(rb"\[APPENDUID \d+ 1:2\]", multi[1][0]), f"MULTIAPPEND: {multi!r}")

    selected = client.select_folder("INBOX")
    check(selected[b"EXISTS"] == 7, f"SELECT: {selected!r}")
    uidvalidity = selected[b"UIDVALIDITY"]
    uids = client.search("ALL")
    check(len(uids) == 7 and uids == sorted(uids), f"SEARCH ALL: {uids!r}")
    first = uids[0]

    # FETCH: every item an application asks for, parsed.
    data = client.fetch([first], ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE",
                                  "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]", "BODY[]", "UID"])[first]
    check(set(data[b"FLAGS"]) >= {b"\\Seen", b"$Work"}, f"FLAGS: {data[b'FLAGS']!r}")
    check(data[b"INTERNALDATE"] == when and data[b"INTERNALDATE"].utcoffset() == when.utcoffset(),
          f"INTERNALDATE: {data[b'INTERNALDATE']!r}")
    check(data[b"BODY[]"] == mail(0), "BODY[] differs from what was appended")
    check(data[b"RFC822.SIZE"] == len(mail(0)), f"RFC822.SIZE: {data[b'RFC822.SIZE']}")
    envelope = data[b"ENVELOPE"]
    check(envelope.subject == b"Client message 0", f"ENVELOPE subject: {envelope.subject!r}")
    check(envelope.from_[0].mailbox == b"sender0" and envelope.from_[0].host == b"example.org",
          f"ENVELOPE from: {envelope.from_!r}")
    check(envelope.cc[0].name == b"Carol", f"ENVELOPE cc: {envelope.cc!r}")
    check(envelope.message_id == b"<ic-0@imapclient.test>", f"ENVELOPE message-id: {envelope.message_id!r}")
    check(envelope.date.year == 2022, f"ENVELOPE date: {envelope.date!r}")
    structure = data[b"BODYSTRUCTURE"]
    check(structure[0].lower() == b"text" and structure[1].lower() == b"plain", f"BODYSTRUCTURE: {structure!r}")
    headers = data[b"BODY[HEADER.FIELDS (SUBJECT FROM)]"]
    check(headers.startswith(b"From: ") and b"Subject: Client message 0\r\n" in headers, f"header fields: {headers!r}")

    # SEARCH: ASCII criteria, a UTF-8 one (sent as a literal with CHARSET), dates, flags.
    check(client.search(["FROM", "sender1"]) == [uids[1], uids[4]], "SEARCH FROM")
    check(client.search(["SUBJECT", "Grüße aus Köln"], charset="UTF-8") == [uids[6]], "SEARCH UTF-8 SUBJECT")
    check(client.search(["BODY", "lazy dog"]) == uids, "SEARCH BODY")
    check(client.search(["SEEN"]) == [first], "SEARCH SEEN")
    check(client.search(["KEYWORD", "$Work"]) == [first], "SEARCH KEYWORD")
    check(client.search(["SENTBEFORE", datetime.date(2022, 3, 4)]) == uids[:3], "SEARCH SENTBEFORE")
    check(client.search(["HEADER", "Message-ID", "ic-5@"]) == [uids[5]], "SEARCH HEADER")

    # SORT and THREAD.
    by_date = client.sort(["REVERSE", "DATE"])
    check(by_date == list(reversed(uids)), f"SORT REVERSE DATE: {by_date!r}")
    by_from = client.sort(["FROM", "DATE"])
    check(by_from[:3] == [uids[0], uids[3], uids[6]], f"SORT FROM: {by_from!r}")
    threads = client.thread("REFERENCES")
    want = ((uids[0], (uids[2],), (uids[4],)), (uids[1],), (uids[3],), (uids[5],), (uids[6],))
    check(threads == want, f"THREAD REFERENCES: {threads!r}, expected {want!r}")

    # Flags.
    client.add_flags(uids[1:3], [b"\\Flagged", b"Urgent"])
    client.remove_flags([first], [b"$Work"])
    client.set_flags([uids[3]], [b"\\Answered"])
    flags = client.get_flags(uids)
    check(set(flags[uids[1]]) >= {b"\\Flagged", b"Urgent"}, f"flags of 2: {flags[uids[1]]!r}")
    check(b"$Work" not in flags[first], f"flags of 1: {flags[first]!r}")
    # \Recent stays: this session is the first to see these messages (IMAP4rev1).
    check(set(flags[uids[3]]) == {b"\\Answered", b"\\Recent"}, f"flags of 4: {flags[uids[3]]!r}")

    # CONDSTORE: MODSEQ in FETCH, CHANGEDSINCE, SEARCH MODSEQ.
    modseqs = client.fetch(uids, ["MODSEQ"])
    high = max(m[b"MODSEQ"][0] for m in modseqs.values())
    client.add_flags([uids[4]], [b"\\Seen"])
    changed = client.fetch(uids, ["FLAGS"], modifiers=[f"CHANGEDSINCE {high}"])
    check(list(changed) == [uids[4]], f"CHANGEDSINCE {high}: {changed!r}")
    check(client.search(["MODSEQ", str(high + 1)]) == [uids[4]], "SEARCH MODSEQ")

    # COPY and MOVE, UID EXPUNGE (UIDPLUS).
    # (IMAPClient does not pass the tagged OK's COPYUID on; STATUS below counts the copies.)
    client.copy([uids[0], uids[1]], "Archive")
    client.move([uids[5]], "Trash")
    check(client.folder_status("Trash", ["MESSAGES"])[b"MESSAGES"] == 1, "MOVE: Trash")
    check(uids[5] not in client.search("ALL"), "the moved message is still in INBOX")
    client.delete_messages([uids[6], uids[4]])
    client.uid_expunge([uids[6]])
    left = client.search("ALL")
    check(left == [uids[0], uids[1], uids[2], uids[3], uids[4]], f"after UID EXPUNGE: {left!r}")
    client.expunge()
    left = client.search("ALL")
    check(left == uids[:4], f"after EXPUNGE: {left!r}")

    # STATUS of every folder touched.
    status = client.folder_status("Archive", ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"])
    check(status[b"MESSAGES"] == 2 and status[b"UNSEEN"] == 1, f"STATUS Archive: {status!r}")
    check(client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"] == 2, "STATUS of the non-ASCII folder")
    check(client.folder_status("INBOX", ["UIDVALIDITY"])[b"UIDVALIDITY"] == uidvalidity, "UIDVALIDITY changed")

    # QUOTA and ACL, parsed.
    roots, quotas = client.get_quota_root("INBOX")
    check(roots.mailbox == "INBOX" and len(roots.quota_roots) == 1, f"GETQUOTAROOT: {roots!r}")
    # Only limited resources are listed; by default that is the mailbox count: six default
    # folders and the two made here.
    mailboxes = [q for q in quotas if q.resource == "MAILBOX"]
    check(mailboxes and mailboxes[0].usage == 8, f"quotas: {quotas!r}")
    acl = client.getacl("INBOX")
    check(any(who == args.user.encode() and b"a" in rights for who, rights in acl), f"GETACL: {acl!r}")
    rights = client.getacl(folder)
    check(rights, f"GETACL {folder}: {rights!r}")

    # IDLE: a second connection idles on INBOX and sees what this one does.
    watcher = connect(args)
    watcher.select_folder("INBOX")
    watcher.idle()
    client.append("INBOX", mail(20))
    seen = wait_for(watcher, lambda r: r[1] == b"EXISTS" and r[0] == 5, "EXISTS for the new message")
    client.add_flags([uids[2]], [b"\\Deleted"])
    seen += wait_for(watcher, lambda r: r[1] == b"FETCH" and r[0] == 3, "FETCH for the flag change")
    client.expunge()
    seen += wait_for(watcher, lambda r: r[1] == b"EXPUNGE" and r[0] == 3, "EXPUNGE")
    watcher.idle_done()
    check(watcher.search("ALL") == client.search("ALL"), "the two connections disagree after IDLE")
    watcher.logout()

    # The folders go again, child first.
    client.unselect_folder()
    client.rename_folder(child, f"{folder}{delimiter}2023")
    client.delete_folder(f"{folder}{delimiter}2023")
    client.delete_folder(folder)
    names = [name for _flags, _delim, name in client.list_folders()]
    check(folder not in names, f"LIST after DELETE: {names!r}")
    try:
        client.select_folder("No such folder")
        check(False, "SELECT of a missing folder succeeded")
    except IMAPClientError:
        pass
    client.logout()


def wait_for(watcher, wanted, what):
    """Reads IDLE responses until one satisfies `wanted`; returns them all."""
    deadline = time.monotonic() + IDLE_PATIENCE
    got = []
    while time.monotonic() < deadline:
        responses = watcher.idle_check(timeout=1)
        got += responses
        if any(len(r) >= 2 and wanted(r) for r in responses):
            return got
    raise AssertionError(f"IDLE: no {what} within {IDLE_PATIENCE} s; got {got!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["ssl", "starttls"], required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--cafile", required=True)
    args = parser.parse_args()
    started = time.monotonic()
    run(args)
    print(f"imapclient {__import__('imapclient').__version__} over {args.mode}: all checks passed "
          f"in {time.monotonic() - started:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
