#!/usr/bin/env python3
"""Compare Postfach's POP3 answers with Dovecot's, command by command.

Usage (as root, so that Dovecot's `imap` and `pop3` can run as the `dovebench` user; Dovecot 2.3
with dovecot-imapd and dovecot-pop3d installed):
    python3 bench/compare-pop3.py [--postfach BIN] [--json FILE] [-q] [--keep]

The same messages (MESSAGES: dot-stuffing, 8-bit text, a header without a body, a last line
without CRLF, long lines, a larger message) are APPENDed over IMAP to a private Postfach and a
private Dovecot; then the same POP3 sessions (SESSIONS) run on both: Postfach over TCP after
USER/PASS, Dovecot's `pop3` pre-authenticated on a pipe (the same Maildir). The last session
shows what the DELEs before it left.

Answers are compared as values: a single-line answer by its status (+OK/-ERR), its response
code (RFC 2449 §8, `[IN-USE]`), and for STAT and LIST n by the figures after +OK; a multi-line
answer line by line (a RETR or TOP byte for byte, dot-stuffing included). UIDL values are
compared in their first eight hex digits (the UID; Postfach and Dovecot both give UID and
UIDVALIDITY as eight hex digits each, and the UIDVALIDITYs differ by nature) and by form. CAPA
is compared as a set of lines. The human text after +OK and -ERR is not compared.

Each difference is printed as `COMMAND: what differs [cause]`; with --json they are written
as a list of {command, kind, cause, ours, dovecot} (crates/server/tests/dovecot_pop3.rs checks
every (command, cause) pair against bench/dovecot-pop3-known-differences.txt;
docs/dovecot-differences.md, "POP3", explains each cause with the RFC text that decides it).

Nothing outside its own temporary directory (removed at the end) is touched; both servers are
private and stopped by the script. Python 3 standard library only.
"""
import os
import re
import sys
import socket

# The shared set-up: the servers, the IMAP connection and the main program.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
cf = __import__("compare-fetch")

def message(subject, body, extra=b""):
    return (b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: " + subject +
            b"\r\nDate: Mon, 1 Jan 2024 09:00:00 +0000\r\nMessage-ID: <" + subject.replace(b" ", b"-") +
            b"@example.org>\r\n" + extra + b"\r\n" + body)


MESSAGES = [
    message(b"plain", b"Hello Bob,\r\n\r\nsee you at noon.\r\n"),
    message(b"dots", b".leading dot\r\n..two dots\r\n.\r\nonly a dot above\r\n. space after\r\n"),
    message(b"eight bit", "Grüße aus Köln, 東京から\r\n".encode(),
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"),
    # A header without a body (no blank line).
    b"From: alice@example.org\r\nSubject: header only\r\n",
    message(b"no final newline", b"first line\r\nlast line without CRLF"),
    message(b"long lines", b"x" * 2000 + b"\r\n" + b"y" * 998 + b"\r\n"),
    message(b"larger", b"".join(b"line %05d of a larger message, with some text to fill it up\r\n" % i
                                for i in range(2000))),
]

# The sessions, in order, each ended by QUIT: reads; malformed commands (two sessions, since
# both servers end a session after ten or so bad commands); deletions, undone and then
# committed; what the deletions left.
SESSIONS = [
    ("read", ["STAT", "LIST", "LIST 1", "LIST 7", "LIST 8", "LIST 0", "UIDL", "UIDL 3", "UIDL 99",
              "TOP 1 0", "TOP 2 2", "TOP 3 100", "TOP 4 0", "TOP 4 5", "TOP 5 1", "TOP 5 0", "TOP 99 0",
              "RETR 1", "RETR 2", "RETR 3", "RETR 4", "RETR 5", "RETR 6", "RETR 7", "RETR 99",
              "NOOP", "CAPA"]),
    ("syntax", ["LIST abc", "LIST 1 2", "TOP 1", "TOP 1 -1", "RETR", "RETR x", "NOOP extra", "STAT"]),
    ("unknown", ["LAST", "XYZZY", "USER bob", "PASS x", "APOP bob x", "AUTH", "STLS", "STAT"]),
    ("delete", ["DELE 2", "DELE 2", "RETR 2", "TOP 2 0", "LIST 2", "UIDL 2", "STAT", "LIST", "UIDL",
                "RSET", "STAT", "LIST 2", "DELE 1", "DELE 7", "STAT"]),
    ("after", ["STAT", "LIST", "UIDL", "RETR 1"]),
]

# Commands whose answer has more lines when it is +OK (RFC 1939, RFC 2449).
def multiline(cmd):
    word, _, args = cmd.partition(" ")
    word = word.upper()
    return word in ("RETR", "TOP", "CAPA") or (word in ("LIST", "UIDL") and not args)


class Pop:
    def __init__(self, r, w, name):
        self.r, self.w, self.name = r, w, name

    def line(self):
        line = self.r.readline()
        if not line:
            raise SystemExit(f"{self.name} closed the connection")
        return line.rstrip(b"\r\n")

    def command(self, cmd):
        self.w.write(cmd.encode() + b"\r\n")
        self.w.flush()
        first = self.line()
        lines = []
        if first.startswith(b"+OK") and multiline(cmd):
            while True:
                line = self.line()
                if line == b".":
                    break
                lines.append(line)
        return first, lines


def postfach_pop(addr):
    sock = socket.create_connection(addr)
    pop = Pop(sock.makefile("rb"), sock.makefile("wb"), "postfach")
    greeting = pop.line()
    assert greeting.startswith(b"+OK"), greeting
    for cmd in ("USER cmp", "PASS " + cf.PASSWORD):
        ok, _ = pop.command(cmd)
        assert ok.startswith(b"+OK"), ok
    return pop, sock.close


def dovecot_pop(work):
    """Dovecot's `pop3` on the Maildir the IMAP side filled; pre-authenticated, no greeting."""
    proc, close = cf.dovecot_process(work, "pop3")
    return Pop(proc.stdout, proc.stdin, "dovecot"), close


def status(first):
    """+OK or -ERR, with the response code if any."""
    m = re.match(rb"([+-]\w+)(?: \[([A-Za-z/-]+)\])?", first)
    if not m:
        return first.decode("latin-1")
    return m.group(1).decode() + (f" [{m.group(2).decode()}]" if m.group(2) else "")


def compare(cmd, a, b):
    (fa, la), (fb, lb) = a, b
    word = cmd.split(" ")[0].upper()
    diffs = []
    if status(fa) != status(fb):
        diffs.append(("status", status(fa), status(fb)))
        return diffs
    if not fa.startswith(b"+OK"):
        return diffs
    if word in ("STAT", "LIST") and len(cmd.split()) <= 2 and not la and not lb:
        # "+OK n size" / "+OK msg size": the figures.
        va, vb = fa.split()[1:3], fb.split()[1:3]
        if va != vb:
            diffs.append(("figures", b" ".join(va).decode(), b" ".join(vb).decode()))
        return diffs
    if word == "UIDL":
        ua = [uidl_key(x) for x in (la if la else [fa[4:]])]
        ub = [uidl_key(x) for x in (lb if lb else [fb[4:]])]
        if ua != ub:
            diffs.append(("uidl", ua, ub))
        return diffs
    if word == "CAPA":
        sa, sb = set(la), set(lb)
        for cap in sorted(sa - sb):
            diffs.append((f"capability {cap.decode('latin-1')}", "present", "absent"))
        for cap in sorted(sb - sa):
            diffs.append((f"capability {cap.decode('latin-1')}", "absent", "present"))
        return diffs
    if la != lb:
        if len(la) != len(lb):
            diffs.append(("lines", len(la), len(lb)))
        else:
            k = next(i for i, (x, y) in enumerate(zip(la, lb)) if x != y)
            diffs.append((f"line {k + 1}", la[k][:80].decode("latin-1"), lb[k][:80].decode("latin-1")))
    return diffs


def uidl_key(line):
    """`n UID` as (n, the UID's first eight hex digits, whether it has Dovecot's form: sixteen
    lowercase hex digits, which is what `%08Xu%08Xv` gives)."""
    parts = line.split()
    if len(parts) != 2:
        return (line.decode("latin-1"),)
    n, uid = parts
    return (n.decode(), uid[:8].decode("latin-1"), bool(re.fullmatch(rb"[0-9a-f]{16}", uid)))


# Why the answers differ; docs/dovecot-differences.md ("POP3") gives the RFC text.
CAUSES = {
    "capabilities": "CAPA: capabilities one server lists and the other does not",
    "extra-arguments": "a command that takes no arguments, given some: -ERR here, Dovecot ignores them",
    "other": "not classified",
}


def cause(cmd, kind, ours, dovecot):
    if kind.startswith("capability "):
        return "capabilities"
    if cmd == "NOOP extra" and kind == "status":
        return "extra-arguments"
    return "other"


def run(binary, work, stops, quiet):
    proc, ports = cf.launch_postfach(binary, work, also=("pop3",))
    stops.append(lambda: (proc.terminate(), proc.wait(timeout=30)))
    # The same messages in both, over IMAP.
    sock = socket.create_connection(ports["imap"])
    imap = cf.Conn(sock.makefile("rb"), sock.makefile("wb"), "postfach")
    imap.read_response()
    _, t = imap.command(b'LOGIN cmp "%s"' % cf.PASSWORD.encode())
    assert t.startswith(b"OK"), t
    dc, stop_dc = cf.start_dovecot(work)
    for raw in MESSAGES:
        for conn in (imap, dc):
            _, t = conn.command(b'APPEND INBOX "01-Jan-2024 12:00:00 +0000"', raw)
            assert t.startswith(b"OK"), (conn.name, t)
    imap.command(b"LOGOUT")
    sock.close()
    stop_dc()
    compared = same = 0
    report = []
    for session, script in SESSIONS:
        pf, close_pf = postfach_pop(ports["pop3"])
        dc, close_dc = dovecot_pop(work)
        n, alike = cf.compare_each(
            script + ["QUIT"], lambda c: compare(c, pf.command(c), dc.command(c)),
            lambda c: f"{session}: {c}", cause, report, quiet)
        compared += n
        same += alike
        close_pf()
        close_dc()
    return compared, same, report


def main():
    cf.run_differential(__doc__, "compare-pop3-", CAUSES, run)


if __name__ == "__main__":
    main()
