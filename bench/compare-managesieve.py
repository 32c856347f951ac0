#!/usr/bin/env python3
"""Compare Postfach's ManageSieve answers (RFC 5804) with Dovecot Pigeonhole's, command by command.

Usage (as root, so that Dovecot's `managesieve` can run as the `dovebench` user; Dovecot 2.3 with
dovecot-managesieved and dovecot-sieve installed):
    python3 bench/compare-managesieve.py [--postfach BIN] [--json FILE] [-q] [--keep]

The same script of commands (COMMANDS) runs on a private Postfach (over TCP, after AUTHENTICATE
PLAIN) and on Dovecot's `managesieve` (pre-authenticated on a pipe, its scripts in a private
directory): CAPABILITY, PUTSCRIPT and CHECKSCRIPT of valid and broken scripts, LISTSCRIPTS,
SETACTIVE, GETSCRIPT, RENAMESCRIPT, DELETESCRIPT of the active script and of one that does not
exist, HAVESPACE, NOOP with a tag, bad names and unknown commands.

Answers are compared as values: the status (OK, NO, BYE) with its response code (RFC 5804 §1.3,
e.g. `NONEXISTENT`, `ACTIVE`, `TAG "x"`), not the human text; LISTSCRIPTS as a set of (name,
active); GETSCRIPT's script octet for octet; CAPABILITY as a map of capability to value, the
SIEVE extensions as a set.

Each difference is printed as `COMMAND: what differs [cause]`; with --json they are written
as a list of {command, kind, cause, ours, dovecot} (crates/server/tests/dovecot_managesieve.rs
checks every (command, cause) pair against bench/dovecot-managesieve-known-differences.txt;
docs/dovecot-differences.md, "ManageSieve", explains each cause).

Nothing outside its own temporary directory (removed at the end) is touched; both servers are
private and stopped by the script. Python 3 standard library only.
"""
import base64
import os
import re
import sys
import socket

# The shared set-up: the servers, the IMAP connection and the main program.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
cf = __import__("compare-fetch")

VALID = b'require ["fileinto"];\r\nif header :contains "subject" "lists" {\r\n  fileinto "Lists";\r\n  stop;\r\n}\r\nkeep;\r\n'
VACATION = b'require "vacation";\r\nvacation :days 7 :subject "Away" "I am away.";\r\n'
BROKEN = b'if header :contains "subject" {\r\n  keep\r\n}\r\n'
UNKNOWN_EXT = b'require "x-no-such-extension";\r\nkeep;\r\n'


def lit(data):
    return b"{%d+}\r\n" % len(data) + data


# The script both servers run, in order (bytes, sent as they are, followed by CRLF).
COMMANDS = [
    b"CAPABILITY",
    b"LISTSCRIPTS",
    b'PUTSCRIPT "filters" ' + lit(VALID),
    b'PUTSCRIPT "away" ' + lit(VACATION),
    b'PUTSCRIPT "broken" ' + lit(BROKEN),
    b'PUTSCRIPT "unknown" ' + lit(UNKNOWN_EXT),
    b'CHECKSCRIPT ' + lit(VALID),
    b'CHECKSCRIPT ' + lit(BROKEN),
    b"LISTSCRIPTS",
    b'SETACTIVE "filters"',
    b"LISTSCRIPTS",
    b'GETSCRIPT "filters"',
    b'GETSCRIPT "nope"',
    b'SETACTIVE "nope"',
    b'RENAMESCRIPT "filters" "rules"',
    b"LISTSCRIPTS",
    b'RENAMESCRIPT "nope" "other"',
    b'RENAMESCRIPT "rules" "away"',
    b'DELETESCRIPT "rules"',
    b'DELETESCRIPT "nope"',
    b'HAVESPACE "new" 1000',
    b'HAVESPACE "new" 4000000000',
    b'HAVESPACE "new" 999999999999',
    b'NOOP',
    b'NOOP "probe-1"',
    b'SETACTIVE ""',
    b"LISTSCRIPTS",
    b'DELETESCRIPT "rules"',
    b'PUTSCRIPT "away" ' + lit(VALID),
    b'GETSCRIPT "away"',
    b"LISTSCRIPTS",
    b"XYZZY",
    b"PUTSCRIPT",
    b'GETSCRIPT',
]


class Sieve:
    def __init__(self, r, w, name):
        self.r, self.w, self.name = r, w, name

    def line(self):
        line = self.r.readline()
        if not line:
            raise SystemExit(f"{self.name} closed the connection")
        m = re.search(rb"\{(\d+)\+?\}\r\n$", line)
        if m:
            line = line[:m.start()] + b'"' + self.r.read(int(m.group(1))) + b'"'
            line += self.r.readline()
        return line.rstrip(b"\r\n")

    def response(self):
        """(data lines, final line)."""
        data = []
        while True:
            line = self.line()
            if re.match(rb"(OK|NO|BYE)\b", line):
                return data, line
            data.append(line)

    def command(self, cmd):
        self.w.write(cmd + b"\r\n")
        self.w.flush()
        return self.response()


def start_postfach(binary, work):
    """A private Postfach and a ManageSieve session authenticated as `cmp`; returns (Sieve, stop)."""
    proc, ports = cf.launch_postfach(binary, work, also=("managesieve",))
    sock = socket.create_connection(ports["managesieve"])
    s = Sieve(sock.makefile("rb"), sock.makefile("wb"), "postfach")
    s.response()  # the greeting: capabilities and OK
    token = base64.b64encode(b"\0cmp\0" + cf.PASSWORD.encode())
    _, ok = s.command(b'AUTHENTICATE "PLAIN" "' + token + b'"')
    assert ok.startswith(b"OK"), ok

    def stop():
        sock.close()
        proc.terminate()
        proc.wait(timeout=30)
    return s, stop


def start_dovecot(work):
    """Dovecot's `managesieve`, its scripts in WORK/dovecot/mail/sieve; pre-authenticated, no
    greeting. Returns (Sieve, stop)."""
    d = os.path.join(work, "dovecot")
    cf.prepare_dovecot(work, extra=f"plugin {{\n  sieve = file:{d}/mail/sieve;active={d}/mail/.dovecot.sieve\n}}\n")
    proc, stop = cf.dovecot_process(work, "managesieve")
    return Sieve(proc.stdout, proc.stdin, "dovecot"), stop


def status(final):
    """OK/NO/BYE with the response code (its first atom, and a TAG's string)."""
    m = re.match(rb'(OK|NO|BYE)(?: \((TAG) ("[^"]*")\)| \(([A-Za-z/-]+)[^)]*\))?', final)
    if not m:
        return final.decode("latin-1")
    code = m.group(2) and f" (TAG {m.group(3).decode()})" or (m.group(4) and f" ({m.group(4).decode().upper()})" or "")
    return m.group(1).decode() + code


def strings(line):
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in cf.parse_values(line)[0]]


def compare(cmd, a, b):
    (da, fa), (db, fb) = a, b
    word = cmd.split(b" ")[0].decode()
    diffs = []
    if status(fa) != status(fb):
        diffs.append(("status", status(fa), status(fb)))
    if word == "CAPABILITY":
        ca = {s[0].upper(): (s[1] if len(s) > 1 else "") for s in map(strings, da)}
        cb = {s[0].upper(): (s[1] if len(s) > 1 else "") for s in map(strings, db)}
        for k in sorted(set(ca) | set(cb)):
            if k == "SIEVE":
                ea, eb = set(ca.get(k, "").split()), set(cb.get(k, "").split())
                for ext in sorted(ea - eb):
                    diffs.append((f"SIEVE extension {ext}", "present", "absent"))
                for ext in sorted(eb - ea):
                    diffs.append((f"SIEVE extension {ext}", "absent", "present"))
            elif ca.get(k) != cb.get(k):
                diffs.append((f"capability {k}", ca.get(k), cb.get(k)))
    elif word == "LISTSCRIPTS":
        sa = sorted(tuple(strings(x)) for x in da)
        sb = sorted(tuple(strings(x)) for x in db)
        if sa != sb:
            diffs.append(("scripts", sa, sb))
    elif da != db:
        diffs.append(("data", [x[:80] for x in da], [x[:80] for x in db]))
    return diffs


# Why the answers differ; docs/dovecot-differences.md ("ManageSieve") gives the RFC text.
CAUSES = {
    "extensions": "Sieve extensions one interpreter has and the other has not",
    "capabilities": "capability values that describe each implementation (IMPLEMENTATION, limits, "
                    "NOTIFY methods, OWNER, SASL and STARTTLS)",
    "number-range": "a size beyond RFC 5804's 32-bit number: a syntax error here (NO without a "
                    "code), a size over the quota in Dovecot (NO (QUOTA/MAXSIZE))",
    "other": "not classified",
}


def cause(cmd, kind, ours, dovecot):
    if kind.startswith("SIEVE extension "):
        return "extensions"
    if kind.startswith("capability "):
        return "capabilities"
    if kind == "status" and cmd.endswith(b" 999999999999") and (ours, dovecot) == ("NO", "NO (QUOTA/MAXSIZE)"):
        return "number-range"
    return "other"


def label(cmd):
    return cmd.split(b"{")[0].strip().decode("latin-1")


def run(binary, work, stops, quiet):
    pf, stop = start_postfach(binary, work)
    stops.append(stop)
    dc, stop = start_dovecot(work)
    stops.append(stop)
    report = []
    compared, same = cf.compare_each(
        COMMANDS, lambda c: compare(c, pf.command(c), dc.command(c)), label, cause, report, quiet)
    return compared, same, report


def main():
    cf.run_differential(__doc__, "compare-managesieve-", CAUSES, run)


if __name__ == "__main__":
    main()
