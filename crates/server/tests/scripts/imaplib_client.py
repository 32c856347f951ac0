#!/usr/bin/env python3
"""Drive a Postfach server with Python's standard imaplib, as a new user would.

Run by crates/server/tests/clients.rs; usable by hand too:

    imaplib_client.py --mode ssl|starttls --host 127.0.0.1 --port N \
        --user alice --password secret --cafile data/tls/cert.pem [--count 1000]

It creates, renames and deletes folders, appends COUNT varied messages (plain text and
multipart with a binary attachment), fetches them all back and compares sizes and bytes, flags a
range, moves half to another folder, expunges, and checks the final state. The certificate is
verified against --cafile for the host name. Exit status 0 means every check passed; otherwise
the failing check is printed on stderr (a traceback) and the status is 1.
"""

import argparse
import base64
import imaplib
import re
import socket
import ssl
import sys
import time

# Every socket operation is bounded, so a silent server fails the run instead of hanging it.
SOCKET_TIMEOUT = 30


def check(condition, message):
    """Fail the run with `message` unless `condition` holds."""
    if not condition:
        raise AssertionError(message)


def ok(result, what):
    """Unpack an imaplib (typ, data) pair, failing unless typ is OK."""
    typ, data = result
    check(typ == "OK", f"{what}: expected OK, got {typ} {data!r}")
    return data


def message(i):
    """The i-th test message, CRLF line ends, ASCII only; deterministic from i."""
    subject = f"Test message {i}"
    common = (
        f"From: Sender {i % 7} <sender{i % 7}@example.org>\r\n"
        f"To: Alice <alice@example.com>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 7 Feb 1994 21:52:{i % 60:02d} -0800\r\n"
        f"Message-ID: <msg-{i}@imaplib.test>\r\n"
        "MIME-Version: 1.0\r\n"
    )
    body_line = f"Line of message {i}: the quick brown fox jumps over the lazy dog.\r\n"
    if i % 4 == 3:
        # Multipart with a pseudo-random binary attachment, base64 encoded.
        blob = bytes((i * 31 + k * 17) % 256 for k in range(600 + (i % 50) * 10))
        encoded = base64.encodebytes(blob).decode("ascii").replace("\n", "\r\n")
        boundary = f"b-{i}-boundary"
        text = (
            common
            + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n'
            + "\r\n"
            + "This is a multi-part message in MIME format.\r\n"
            + f"--{boundary}\r\n"
            + "Content-Type: text/plain; charset=us-ascii\r\n"
            + "\r\n"
            + body_line * 3
            + f"--{boundary}\r\n"
            + f'Content-Type: application/octet-stream; name="blob{i}.bin"\r\n'
            + "Content-Transfer-Encoding: base64\r\n"
            + f'Content-Disposition: attachment; filename="blob{i}.bin"\r\n'
            + "\r\n"
            + encoded
            + f"--{boundary}--\r\n"
        )
    else:
        text = common + "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body_line * (1 + i % 20)
    return text.encode("ascii")


def connect(args):
    """Log in over implicit TLS or STARTTLS, verifying the server certificate."""
    context = ssl.create_default_context(cafile=args.cafile)
    if args.mode == "ssl":
        imap = imaplib.IMAP4_SSL(args.host, args.port, ssl_context=context, timeout=SOCKET_TIMEOUT)
    else:
        imap = imaplib.IMAP4(args.host, args.port, timeout=SOCKET_TIMEOUT)
        # RFC 9051 §6.2.3: no credentials in cleartext, so LOGIN is disabled until STARTTLS.
        check("LOGINDISABLED" in imap.capabilities, f"cleartext capabilities {imap.capabilities}")
        check("STARTTLS" in imap.capabilities, f"cleartext capabilities {imap.capabilities}")
        ok(imap.starttls(ssl_context=context), "STARTTLS")
        check("LOGINDISABLED" not in imap.capabilities, f"capabilities after STARTTLS {imap.capabilities}")
    # imaplib writes an APPEND literal and its closing CRLF in two sends; with Nagle's algorithm
    # the second waits for the server's delayed ACK (40 ms on Linux) on every APPEND. That is a
    # client artefact (the server answers in ~2 ms), so switch Nagle off to keep the run short.
    imap.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ok(imap.login(args.user, args.password), "LOGIN")
    return imap


def list_names(imap):
    """The set of mailbox names from LIST "" "*" (names are plain ASCII here)."""
    names = set()
    for line in ok(imap.list('""', "*"), "LIST"):
        match = re.match(rb'\(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)
        check(match is not None, f"unparsable LIST line {line!r}")
        name = match.group(2).decode()
        if name.startswith('"'):
            name = name[1:-1]
        names.add(name)
    return names


def folders(imap, prefix):
    """CREATE / RENAME / DELETE of a small hierarchy (RFC 9051 §6.3.4-6.3.6)."""
    top = f"{prefix}Projects"
    ok(imap.create(top), "CREATE top")
    ok(imap.create(f"{top}/2024/Q1"), "CREATE nested (superiors created too)")
    names = list_names(imap)
    for name in (top, f"{top}/2024", f"{top}/2024/Q1"):
        check(name in names, f"{name} missing after CREATE: {sorted(names)}")
    typ, _ = imap.create(top)
    check(typ == "NO", "CREATE of an existing mailbox must fail")

    renamed = f"{prefix}Archive-Projects"
    ok(imap.rename(top, renamed), "RENAME")
    names = list_names(imap)
    check(f"{renamed}/2024/Q1" in names, f"inferiors must be renamed too: {sorted(names)}")
    check(not any(n.startswith(top) for n in names), f"old names remain: {sorted(names)}")

    # Delete leaf first, then its parents.
    ok(imap.delete(f"{renamed}/2024/Q1"), "DELETE leaf")
    ok(imap.delete(f"{renamed}/2024"), "DELETE middle")
    ok(imap.delete(renamed), "DELETE top")
    names = list_names(imap)
    check(not any(n.startswith(renamed) for n in names), f"deleted names remain: {sorted(names)}")
    typ, _ = imap.delete(renamed)
    check(typ == "NO", "DELETE of a missing mailbox must fail")
    check("INBOX" in names, f"INBOX missing: {sorted(names)}")


def parse_fetch(data):
    """imaplib FETCH data → {seq: (meta bytes, literal bytes or None)}."""
    out = {}
    seq = None
    for item in data:
        if isinstance(item, tuple):
            meta, literal = item
        else:
            meta, literal = item, None
        head = meta.split(b" ", 1)[0]
        if head.isdigit() and b" (" in meta:
            # A new FETCH response: "12 (UID 5 BODY[] {310}".
            seq = int(head)
            out[seq] = (meta, literal)
        else:
            # The rest of the previous response after its literal: " FLAGS (\\Seen))".
            check(seq is not None, f"unexpected FETCH data {item!r}")
            prev_meta, prev_literal = out[seq]
            out[seq] = (prev_meta + meta, prev_literal if literal is None else literal)
    return out


def bulk(imap, prefix, count):
    """APPEND, FETCH, STORE, MOVE and EXPUNGE over `count` messages."""
    box = f"{prefix}Bulk"
    moved = f"{prefix}Moved"
    ok(imap.create(box), "CREATE Bulk")
    ok(imap.create(moved), "CREATE Moved")

    started = time.monotonic()
    uids = []
    validity = None
    for i in range(count):
        flags = "(\\Seen)" if i % 5 == 0 else None
        data = ok(imap.append(box, flags, None, message(i)), f"APPEND {i}")
        # RFC 4315 / RFC 9051 §7.1: APPENDUID <uidvalidity> <uid>.
        match = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
        check(match is not None, f"APPEND {i} without APPENDUID: {data!r}")
        if validity is None:
            validity = int(match.group(1))
        check(int(match.group(1)) == validity, "UIDVALIDITY changed between APPENDs")
        uids.append(int(match.group(2)))
    check(uids == sorted(uids) and len(set(uids)) == count, "APPENDUIDs must strictly ascend")
    appended = time.monotonic()

    data = ok(imap.select(box), "SELECT Bulk")
    check(int(data[0]) == count, f"EXISTS {data[0]!r}, expected {count}")
    check(imap.untagged_responses.get("UIDVALIDITY", [b"?"])[-1] == str(validity).encode(), "UIDVALIDITY")

    # Sizes, UIDs, flags of all, then every body byte for byte.
    data = ok(imap.fetch("1:*", "(UID RFC822.SIZE FLAGS)"), "FETCH sizes")
    fetched = parse_fetch(data)
    check(len(fetched) == count, f"FETCH 1:* returned {len(fetched)} of {count}")
    for seq in range(1, count + 1):
        meta = fetched[seq][0]
        uid = int(re.search(rb"UID (\d+)", meta).group(1))
        size = int(re.search(rb"RFC822\.SIZE (\d+)", meta).group(1))
        check(uid == uids[seq - 1], f"seq {seq}: UID {uid}, expected {uids[seq - 1]}")
        check(size == len(message(seq - 1)), f"seq {seq}: RFC822.SIZE {size}, expected {len(message(seq - 1))}")
        seen = b"\\Seen" in meta
        check(seen == ((seq - 1) % 5 == 0), f"seq {seq}: flags {meta!r}")
    bodies = parse_fetch(ok(imap.fetch("1:*", "(BODY.PEEK[])"), "FETCH bodies"))
    check(len(bodies) == count, f"FETCH BODY[] returned {len(bodies)} of {count}")
    for seq in range(1, count + 1):
        check(bodies[seq][1] == message(seq - 1), f"seq {seq}: body differs")
    # A MIME part of an attachment message: part 2 is the base64 blob (RFC 9051 §6.4.5).
    part = parse_fetch(ok(imap.fetch("4", "(BODY.PEEK[2])"), "FETCH part"))
    blob = base64.b64decode(part[4][1])
    check(blob == bytes((3 * 31 + k * 17) % 256 for k in range(600 + 3 * 10)), "attachment bytes differ")
    # PEEK must not have set \Seen anywhere.
    data = ok(imap.search(None, "UNSEEN"), "SEARCH UNSEEN")
    check(len(data[0].split()) == count - (count + 4) // 5, f"UNSEEN count {len(data[0].split())}")
    fetched_at = time.monotonic()

    # Flag a range, and check it through SEARCH.
    flagged = min(100, count)
    ok(imap.store(f"1:{flagged}", "+FLAGS.SILENT", "(\\Flagged)"), "STORE +FLAGS")
    data = ok(imap.search(None, "FLAGGED"), "SEARCH FLAGGED")
    check([int(n) for n in data[0].split()] == list(range(1, flagged + 1)), f"SEARCH FLAGGED {data!r}")

    # Move the second half by UID (RFC 6851 / RFC 9051 §6.4.8).
    half = count // 2
    first_moved = uids[half]
    imap.untagged_responses.pop("COPYUID", None)
    imap.untagged_responses.pop("EXPUNGE", None)
    typ, data = imap.uid("MOVE", f"{first_moved}:*", moved)
    check(typ == "OK", f"UID MOVE: {typ} {data!r}")
    # RFC 9051 §6.4.8: COPYUID comes in an untagged OK before the EXPUNGEs.
    copyuid = imap.untagged_responses.get("COPYUID", [])
    check(len(copyuid) == 1, f"UID MOVE: untagged COPYUID {copyuid!r}")
    expunges = imap.untagged_responses.get("EXPUNGE", [])
    check(len(expunges) == count - half, f"UID MOVE sent {len(expunges)} EXPUNGEs, expected {count - half}")
    data = ok(imap.select(box), "re-SELECT Bulk")
    check(int(data[0]) == half, f"Bulk has {data[0]!r} after MOVE, expected {half}")

    # Delete the first 50 and expunge: 50 EXPUNGE responses.
    deleted = min(50, half)
    ok(imap.store(f"1:{deleted}", "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
    data = ok(imap.expunge(), "EXPUNGE")
    expunged = [x for x in data if x is not None]
    check(len(expunged) == deleted, f"EXPUNGE reported {len(expunged)} messages, expected {deleted}")

    # Final state: Bulk keeps messages deleted..half-1; flags on deleted..flagged-1 remain.
    data = ok(imap.select(box), "SELECT Bulk (final)")
    remaining = half - deleted
    check(int(data[0]) == remaining, f"Bulk has {data[0]!r}, expected {remaining}")
    data = ok(imap.search(None, "FLAGGED"), "SEARCH FLAGGED (final)")
    check(len(data[0].split()) == max(0, min(flagged, half) - deleted), f"final FLAGGED {data!r}")
    data = ok(imap.uid("SEARCH", None, "ALL"), "UID SEARCH ALL")
    check([int(u) for u in data[0].split()] == uids[deleted:half], "UIDs left in Bulk")
    data = ok(imap.uid("SEARCH", None, "DELETED"), "UID SEARCH DELETED")
    check(data[0].split() == [], "\\Deleted messages left after EXPUNGE")
    bodies = parse_fetch(ok(imap.fetch(f"1,{remaining}", "(BODY.PEEK[])"), "FETCH first and last"))
    check(bodies[1][1] == message(deleted), "first remaining body")
    check(bodies[remaining][1] == message(half - 1), "last remaining body")

    data = ok(imap.select(moved, readonly=True), "EXAMINE Moved")
    check(int(data[0]) == count - half, f"Moved has {data[0]!r}, expected {count - half}")
    bodies = parse_fetch(ok(imap.fetch("1:*", "(BODY.PEEK[] FLAGS)"), "FETCH Moved"))
    for seq in range(1, count - half + 1):
        i = half + seq - 1
        meta, literal = bodies[seq]
        check(literal == message(i), f"Moved seq {seq}: body differs from message {i}")
    # MOVE keeps flags (RFC 9051 §6.4.8 SHOULD); \Seen was set on every fifth message.
    data = ok(imap.search(None, "SEEN"), "SEARCH SEEN in Moved")
    expect = [seq for seq in range(1, count - half + 1) if (half + seq - 1) % 5 == 0]
    check([int(n) for n in data[0].split()] == expect, f"SEEN in Moved {data!r}")

    status = ok(imap.status(box, "(MESSAGES UIDNEXT UIDVALIDITY)"), "STATUS")
    check(f"MESSAGES {remaining}".encode() in status[0], f"STATUS {status!r}")
    check(f"UIDVALIDITY {validity}".encode() in status[0], f"STATUS {status!r}")
    check(f"UIDNEXT {uids[-1] + 1}".encode() in status[0], f"STATUS {status!r}")
    ok(imap.close(), "CLOSE")
    print(
        f"{count} messages: append {appended - started:.1f}s, fetch {fetched_at - appended:.1f}s, "
        f"rest {time.monotonic() - fetched_at:.1f}s"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("ssl", "starttls"), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--prefix", default="", help="prefix of the folders this run creates")
    args = parser.parse_args()

    imap = connect(args)
    folders(imap, args.prefix)
    bulk(imap, args.prefix, args.count)
    typ, _ = imap.logout()
    check(typ == "BYE", f"LOGOUT answered {typ}")
    print("imaplib: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
