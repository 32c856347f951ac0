#!/usr/bin/env python3
"""Exercise a Postfach server's POP3 with Python's poplib, checked against what IMAP says.

Run by crates/server/tests/pop3.rs; usable by hand too:

    poplib_client.py --mode ssl|stls --host 127.0.0.1 --port N --imaps-port M \
        --user alice --password secret --cafile cert.pem --count 50

The script appends messages over IMAP (imaplib): varied text, lines starting with a dot, a line
that is only a dot, one large message. Then over POP3 (implicit TLS with --mode ssl, STLS on
the cleartext port with --mode stls):
- CAPA lists what the server must offer (USER and SASL only once TLS is up; STLS before);
- login: USER/PASS (ssl) or AUTH SCRAM-SHA-256 (stls, the SCRAM client of scram_login.py) and
  AUTH PLAIN with an initial response; a wrong password is refused with [AUTH];
- STAT, LIST and UIDL agree with IMAP: count, RFC822.SIZE, UID and UIDVALIDITY;
- RETR of every message gives IMAP's BODY[] byte for byte (poplib undoes the dot-stuffing);
  TOP n 0 gives the header;
- DELE of every even message, RSET, DELE again, QUIT; then IMAP must show exactly the odd
  messages left, each \\Seen (RETR marks it), none \\Deleted.
Exit status 0 means every check passed; otherwise the failing check is on stderr.
"""

import argparse
import base64
import imaplib
import os
import poplib
import re
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scram_login import Scram  # noqa: E402  (the SCRAM-SHA-256 client the IMAP test uses)

SOCKET_TIMEOUT = 30


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def message(i):
    """The i-th test message (CRLF line ends, as IMAP clients send them)."""
    body = [f"Message {i} of the POP3 test.", "", ".starts with a dot", ".", "..", "end ."]
    if i % 7 == 3:
        body += ["Grüße, 8-bit text: äöü"]
    if i % 10 == 5:
        # A large message: RETR streams it in several chunks.
        body += [f"{n:06d} " + "x" * 70 for n in range(4000)]
    head = [
        "From: Bob <bob@example.org>",
        "To: alice@example.com",
        f"Subject: pop3 test {i}",
        "Date: Thu, 3 Mar 2022 12:00:00 +0000",
        f"Message-ID: <pop{i}@poplib.test>",
    ]
    return ("\r\n".join(head + [""] + body) + "\r\n").encode()


def imap_connect(args):
    context = ssl.create_default_context(cafile=args.cafile)
    imap = imaplib.IMAP4_SSL(args.host, args.imaps_port, ssl_context=context, timeout=SOCKET_TIMEOUT)
    imap.login(args.user, args.password)
    return imap


def imap_state(imap):
    """UIDVALIDITY and uid -> (size, flags, raw) of INBOX."""
    typ, data = imap.select("INBOX")
    check(typ == "OK", f"SELECT: {typ} {data}")
    typ, data = imap.status("INBOX", "(UIDVALIDITY)")
    validity = int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))
    messages = {}
    typ, data = imap.uid("FETCH", "1:*", "(UID RFC822.SIZE FLAGS BODY.PEEK[])")
    check(typ == "OK", f"FETCH: {typ}")
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, raw = item
        uid = int(re.search(rb"UID (\d+)", meta).group(1))
        size = int(re.search(rb"RFC822\.SIZE (\d+)", meta).group(1))
        flags = re.search(rb"FLAGS \(([^)]*)\)", meta)
        messages[uid] = (size, flags.group(1).decode() if flags else None, raw)
    # FLAGS may come after the literal, in the trailing piece.
    typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS)")
    for line in data:
        if isinstance(line, bytes):
            uid = int(re.search(rb"UID (\d+)", line).group(1))
            flags = re.search(rb"FLAGS \(([^)]*)\)", line).group(1).decode()
            size, _, raw = messages[uid]
            messages[uid] = (size, flags, raw)
    return validity, messages


def pop_connect(args):
    context = ssl.create_default_context(cafile=args.cafile)
    if args.mode == "ssl":
        pop = poplib.POP3_SSL(args.host, args.port, context=context, timeout=SOCKET_TIMEOUT)
        caps = pop.capa()
        check("STLS" not in caps, f"STLS offered over TLS: {caps}")
    else:
        pop = poplib.POP3(args.host, args.port, timeout=SOCKET_TIMEOUT)
        caps = pop.capa()
        check("STLS" in caps, f"no STLS on the cleartext port: {caps}")
        check("USER" not in caps and "SASL" not in caps, f"logins offered without TLS: {caps}")
        try:
            pop.user(args.user)
        except poplib.error_proto as e:
            check(b"[AUTH]" in e.args[0], f"USER without TLS: {e}")
        else:
            raise AssertionError("USER accepted without TLS")
        pop.stls(context=context)
        caps = pop.capa()
    for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "SASL"):
        check(cap in caps, f"CAPA lacks {cap}: {caps}")
    check("SCRAM-SHA-256" in caps["SASL"] and "PLAIN" in caps["SASL"], f"SASL: {caps['SASL']}")
    return pop


def auth_scram(pop, user, password):
    """AUTH SCRAM-SHA-256 (RFC 5034 §4): challenges are '+ base64', responses base64 lines."""
    scram = Scram(user, password)
    pop._putcmd("AUTH SCRAM-SHA-256")
    resp = pop._getresp()
    while resp.startswith(b"+ ") or resp == b"+":
        answer = scram(base64.b64decode(resp[2:]))
        pop._putcmd(base64.b64encode(answer).decode())
        resp = pop._getresp()
    check(resp.startswith(b"+OK") and scram.verified, f"SCRAM: {resp!r}, verified {scram.verified}")


def login(args):
    pop = pop_connect(args)
    # A wrong password first: -ERR [AUTH] (RFC 3206), and the session may try again.
    try:
        pop.user(args.user)
        pop.pass_(args.password + "x")
    except poplib.error_proto as e:
        check(e.args[0].startswith(b"-ERR [AUTH]"), f"wrong password: {e}")
    else:
        raise AssertionError("a wrong password was accepted")
    if args.mode == "ssl":
        pop.user(args.user)
        resp = pop.pass_(args.password)
    else:
        auth_scram(pop, args.user, args.password)
        resp = b"+OK"
    check(resp.startswith(b"+OK"), f"login: {resp!r}")
    return pop


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("ssl", "stls"), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--imaps-port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()

    imap = imap_connect(args)
    for i in range(1, args.count + 1):
        typ, data = imap.append("INBOX", None, None, message(i))
        check(typ == "OK", f"APPEND {i}: {typ} {data}")
    validity, messages = imap_state(imap)
    uids = sorted(messages)
    check(len(uids) == args.count, f"IMAP sees {len(uids)} messages")

    # AUTH PLAIN with an initial response works too (and is then closed again).
    if args.mode == "ssl":
        pop = pop_connect(args)
        plain = base64.b64encode(b"\0" + args.user.encode() + b"\0" + args.password.encode()).decode()
        resp = pop._shortcmd("AUTH PLAIN " + plain)
        check(resp.startswith(b"+OK"), f"AUTH PLAIN: {resp!r}")
        pop.quit()

    pop = login(args)
    count, octets = pop.stat()
    check(count == len(uids), f"STAT count {count}, IMAP {len(uids)}")
    check(octets == sum(messages[u][0] for u in uids), f"STAT octets {octets}")
    _, listing, _ = pop.list()
    check(listing == [f"{n} {messages[u][0]}".encode() for n, u in enumerate(uids, 1)], f"LIST {listing[:3]}")
    _, ids, _ = pop.uidl()
    want = [f"{n} {u:08x}{validity:08x}".encode() for n, u in enumerate(uids, 1)]
    check(ids == want, f"UIDL {ids[:3]}, expected {want[:3]}")
    check(pop.uidl(2) == b"+OK " + want[1], f"UIDL 2: {pop.uidl(2)!r}")

    for n, uid in enumerate(uids, 1):
        _, lines, size = pop.retr(n)
        got = b"\r\n".join(lines) + b"\r\n"
        raw = messages[uid][2]
        check(got == raw, f"RETR {n} differs from IMAP BODY[] (uid {uid}): {got[:200]!r} vs {raw[:200]!r}")
        _, top, _ = pop.top(n, 0)
        header = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        check(b"\r\n".join(top) + b"\r\n" == header, f"TOP {n} 0: {top!r}")
    _, top, _ = pop.top(1, 2)
    check(top[-2:] == [b"Message 1 of the POP3 test.", b""], f"TOP 1 2: {top[-3:]!r}")

    even = [n for n in range(1, len(uids) + 1) if n % 2 == 0]
    for n in even:
        pop.dele(n)
    try:
        pop.retr(even[0])
    except poplib.error_proto:
        pass
    else:
        raise AssertionError("RETR of a deleted message succeeded")
    check(pop.stat()[0] == len(uids) - len(even), f"STAT after DELE: {pop.stat()}")
    pop.rset()
    check(pop.stat()[0] == len(uids), f"STAT after RSET: {pop.stat()}")
    for n in even:
        pop.dele(n)
    resp = pop.quit()
    check(resp.startswith(b"+OK"), f"QUIT: {resp!r}")

    _, after = imap_state(imap)
    left = sorted(after)
    want_left = [u for n, u in enumerate(uids, 1) if n % 2 == 1]
    check(left == want_left, f"after QUIT IMAP has {left[:5]}..., expected {want_left[:5]}...")
    for uid in left:
        flags = after[uid][1] or ""
        check("\\Seen" in flags and "\\Deleted" not in flags, f"uid {uid} flags {flags!r}")
    imap.logout()
    print(f"poplib over {args.mode}: {len(uids)} messages retrieved, {len(even)} deleted")
    print("poplib: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
