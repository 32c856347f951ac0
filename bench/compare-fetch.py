#!/usr/bin/env python3
"""Compare Postfach's FETCH (and a few SEARCH) answers with Dovecot's, message by message.

Usage (as root, so that Dovecot's `imap` can run as the `dovebench` user; Dovecot 2.3 installed):
    python3 bench/compare-fetch.py [--postfach BIN] [--raw] [--rev2] [--json FILE] [-q]
                                   [--keep] [--pattern GLOB] DIR...
Example (the corpus of docs/dovecot-differences.md, "Real-world corpus"):
    E=$(echo ~/.cargo/registry/src/index.crates.io-*/mail-parser-1.0.1/resources/eml)
    python3 bench/compare-fetch.py --postfach target/debug/postfach $E/rfc $E/legacy ...

Every *.eml file (or --pattern) of the DIRs (sorted by directory, then name) is APPENDed to a
private Postfach and a private Dovecot with the same flags and internal date. For each message
both servers are asked for ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, BODY.PEEK[HEADER],
BODY.PEEK[TEXT], BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)], and for every part number found
in either server's BODYSTRUCTURE: BODY.PEEK[n], BODY.PEEK[n.MIME], BINARY.PEEK[n] and
BINARY.SIZE[n] for leaves (one FETCH per part, so that one NO [UNKNOWN-CTE] does not hide the
others), and BODY.PEEK[n.HEADER] for message/rfc822 parts; then UID SEARCH SUBJECT/FROM/BODY with
a word taken from the message. The answers are parsed into values (quoted and literal strings
are the same value, item order does not matter, a tagged NO is compared by its response code)
and MIME tokens are compared case-insensitively (type, subtype, encoding, parameter names,
disposition type, and the charset value). The output is a per-message, per-item diff (each
difference tagged with its known cause, see CAUSES), then summary tables by item class and by
cause. A message one server refuses to APPEND is reported and left out of the comparison.

Options:
  --postfach BIN  Postfach binary (default: the newer of target/release/postfach and
                  target/debug/postfach).
  --raw           APPEND the files as they are. By default bare LF line ends are turned into
                  CRLF first, as an SMTP/LMTP delivery does (RFC 5321 §2.3.8); most corpus files
                  are LF-only, and Dovecot converts them on APPEND while Postfach keeps them.
  --rev2          ENABLE IMAP4rev2 on the Postfach session (Dovecot 2.3 stays IMAP4rev1).
  --json FILE     Also write every difference as JSON to FILE: a list of {message, item, causes
                  (one per difference), diffs ([path, ours, Dovecot's])}; a refused APPEND is an
                  entry with item "APPEND" (crates/server/tests/dovecot_fetch.rs reads this).
  -q              Print only the summary tables.
  --pattern GLOB  Which files of the DIRs are messages (default: *.eml).
  --keep          Keep the temporary directory (server logs) and print its path.

Nothing outside its own temporary directory (removed at the end) is touched; both servers are
private (Postfach on a free loopback port, Dovecot's `imap` in PREAUTH mode on stdin/stdout) and
are stopped by the script. Python 3 standard library only.
"""
import argparse
import collections
import email
import email.header
import email.policy
import email.utils
import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATE = '"01-Jan-2024 12:00:00 +0000"'
PASSWORD = "compare-fetch-pass"
MAIN_ITEMS = ["ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE", "BODY.PEEK[HEADER]",
              "BODY.PEEK[TEXT]", "BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)]"]


# --- IMAP values ---------------------------------------------------------------------------

class Atom(str):
    """An IMAP atom (also numbers and FETCH item names); strings are bytes, NIL is None."""


def parse_values(data, i=0, end=b""):
    """Parse IMAP values from data[i:] up to the byte `end` (or the end); return (list, next i)."""
    out = []
    n = len(data)
    while i < n:
        c = data[i:i + 1]
        if c in (b" ", b"\r", b"\n"):
            i += 1
            continue
        if end and c == end:
            return out, i + 1
        if c == b"(":
            v, i = parse_values(data, i + 1, b")")
            out.append(v)
        elif c == b'"':
            i += 1
            buf = bytearray()
            while i < n and data[i:i + 1] != b'"':
                if data[i:i + 1] == b"\\":
                    i += 1
                buf += data[i:i + 1]
                i += 1
            out.append(bytes(buf))
            i += 1
        elif c == b"{" or data[i:i + 2] == b"~{":
            j = data.index(b"}", i)
            size = int(data[data.index(b"{", i) + 1:j].rstrip(b"+"))
            start = j + 3  # "}\r\n"
            out.append(bytes(data[start:start + size]))
            i = start + size
        else:
            j = i
            depth = 0
            while j < n:
                b = data[j:j + 1]
                if b == b"[":
                    depth += 1
                elif b == b"]":
                    depth -= 1
                elif depth == 0 and b in (b" ", b"(", b")", b"\r", b"\n"):
                    break
                j += 1
            tok = data[i:j].decode("latin-1")
            out.append(None if tok.upper() == "NIL" else Atom(tok))
            i = j
    return out, i


def item_name(atom):
    """Canonical FETCH item name: upper case, single spaces, no `<origin>` suffix."""
    return re.sub(r"\s+", " ", re.sub(r"<\d+>$", "", atom.upper()))


class Closed(Exception):
    """The server closed the connection in the middle of a command."""


class Conn:
    """A line/literal reader and writer over binary streams.

    `reopen`, when given, is called after the server closed the connection; it returns fresh
    streams (already logged in, with INBOX selected when `selected` is set) so that the comparison
    can go on with the next command.
    """

    def __init__(self, rfile, wfile, name, reopen=None):
        self.r, self.w, self.name, self.tag = rfile, wfile, name, 0
        self.reopen, self.selected, self.closed_count = reopen, False, 0

    def read_response(self):
        buf = bytearray()
        while True:
            line = self.r.readline()
            if not line:
                self.closed_count += 1
                if self.reopen is None or self.closed_count > 20:
                    raise SystemExit(f"{self.name} closed the connection")
                self.r, self.w = self.reopen()
                if self.selected:
                    self.command(b"SELECT INBOX")
                raise Closed()
            buf += line
            m = re.search(rb"~?\{(\d+)\+?\}\r\n$", line)
            if m:
                buf += self.r.read(int(m.group(1)))
                continue
            return bytes(buf)

    def command(self, cmd, literal=None):
        """Send one command (a literal, if given, follows `cmd` as {n+}); return (untagged, tagged)."""
        self.tag += 1
        tag = b"c%d" % self.tag
        data = tag + b" " + cmd
        if literal is not None:
            data += b" {%d+}\r\n" % len(literal) + literal
        self.w.write(data + b"\r\n")
        self.w.flush()
        untagged = []
        while True:
            resp = self.read_response()
            if resp.startswith(tag + b" "):
                return untagged, resp[len(tag) + 1:].rstrip(b"\r\n")
            untagged.append(resp)


def fetch(conn, uid, items):
    """UID FETCH; returns ({item name: value}, tagged status). Split FETCH responses are merged."""
    try:
        untagged, tagged = conn.command(b"UID FETCH %d (%s)" % (uid, " ".join(items).encode()))
    except Closed:
        return {}, "BYE (connection closed)"
    got = {}
    for resp in untagged:
        m = re.match(rb"\* \d+ FETCH ", resp)
        if not m:
            continue
        vals, _ = parse_values(resp, m.end())
        lst = vals[0] if vals and isinstance(vals[0], list) else []
        for k in range(0, len(lst) - 1, 2):
            got[item_name(lst[k])] = lst[k + 1]
    got.pop("UID", None)
    # A failure is compared by its response code only; the human text differs between servers.
    m = re.match(rb"(\w+)( \[[^\]]*\])?", tagged)
    status = (m.group(1) + (m.group(2) or b"")).decode("latin-1") if m else "BAD"
    return got, status


def search(conn, key, word):
    try:
        untagged, tagged = conn.command(b"UID SEARCH %s \"%s\"" % (key.encode(), word.encode()))
    except Closed:
        return "BYE (connection closed)"
    uids = set()
    for resp in untagged:
        if resp.startswith(b"* SEARCH"):
            uids |= {int(x) for x in resp[8:].split()}
        elif resp.startswith(b"* ESEARCH"):
            m = re.search(rb" ALL ([0-9:,]+)", resp)
            for r in (m.group(1).split(b",") if m else []):
                a, _, b = r.partition(b":")
                uids |= set(range(int(a), int(b or a) + 1))
    ok = tagged.split(b" ", 1)[0]
    return sorted(uids) if ok == b"OK" else tagged.decode("latin-1")


# --- Servers -------------------------------------------------------------------------------

def postfach_binary(given):
    """The Postfach binary: `given`, else the newer of target/release/postfach and
    target/debug/postfach."""
    built = [p for p in (os.path.join(ROOT, "target/release/postfach"),
                         os.path.join(ROOT, "target/debug/postfach")) if os.path.exists(p)]
    binary = given or max(built, key=os.path.getmtime, default=None)
    if not binary:
        raise SystemExit("no postfach binary; build it or pass --postfach")
    return binary


def launch_postfach(binary, work, also=()):
    """A private Postfach in WORK/postfach with the account `cmp` (password PASSWORD): IMAP on a
    free loopback port, logins without TLS allowed, and the listeners named in `also` ("pop3",
    "managesieve") on free ports too. Returns (process, {kind: (host, port)}) once it listens."""
    d = os.path.join(work, "postfach")
    os.makedirs(d)
    conf = os.path.join(d, "postfach.toml")
    listen = {kind: '["127.0.0.1:0"]' if kind in also else "[]" for kind in ("pop3", "managesieve")}
    with open(conf, "w") as f:
        f.write(f'data_dir = "{d}/data"\n[imap]\nlisten = ["127.0.0.1:0"]\nlisten_tls = []\n'
                f'allow_plaintext_auth = true\n[pop3]\nlisten = {listen["pop3"]}\n[lmtp]\nlisten = []\n'
                f'[managesieve]\nlisten = {listen["managesieve"]}\n[web]\nlisten = []\n[log]\nlevel = "warn"\n')
    subprocess.run([binary, "user", "add", "cmp", "--password-stdin", "--config", conf],
                   input=PASSWORD.encode() + b"\n", check=True, stdout=subprocess.DEVNULL)
    proc = subprocess.Popen([binary, "serve", "--config", conf], stdout=subprocess.PIPE,
                            stderr=open(os.path.join(d, "stderr"), "wb"))
    ports = {}
    wanted = {"imap", *also}
    for line in proc.stdout:
        m = re.match(rb"postfach: listening (\S+) (\S+):(\d+)", line)
        if m and m.group(1).decode() in wanted:
            ports[m.group(1).decode()] = (m.group(2).decode(), int(m.group(3)))
            if len(ports) == len(wanted):
                return proc, ports
    proc.kill()
    raise SystemExit("postfach did not start; see its stderr")


def start_postfach(binary, work, rev2):
    """A private Postfach and an IMAP session logged in as `cmp`; returns (Conn, stop)."""
    proc, ports = launch_postfach(binary, work)
    sock = socket.create_connection(ports["imap"])
    conn = Conn(sock.makefile("rb"), sock.makefile("wb"), "postfach")
    conn.read_response()  # greeting
    _, t = conn.command(b'LOGIN cmp "%s"' % PASSWORD.encode())
    assert t.startswith(b"OK"), t
    if rev2:
        conn.command(b"ENABLE IMAP4rev2")

    def stop():
        try:
            conn.command(b"LOGOUT")
        except (OSError, SystemExit, Closed):
            pass
        sock.close()
        proc.terminate()
        proc.wait(timeout=30)
    return conn, stop


def clean_up(stops, work, keep):
    """Stops the servers (last started first) and removes the work directory, unless `keep`."""
    for stop in reversed(stops):
        stop()
    if keep:
        print(f"kept {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)


def tagged_status(tagged):
    """A tagged response as its status and response code name (`NO [NONEXISTENT]`): the human
    text differs between servers."""
    m = re.match(rb"(\w+)(?: \[([A-Za-z-]+))?", tagged)
    if not m:
        return tagged.decode("latin-1")
    return m.group(1).decode() + (f" [{m.group(2).decode().upper()}]" if m.group(2) else "")


def compare_pair(a, b, what):
    """Differences between two (status, answer) pairs, the answer named `what`."""
    diffs = []
    if a[0] != b[0]:
        diffs.append(("status", a[0], b[0]))
    if a[1] != b[1]:
        diffs.append((what, a[1], b[1]))
    return diffs


def append_and_select(conns, messages):
    """APPENDs every (flags, internal date, raw message) to INBOX through each connection, in
    order (so the UIDs are the same messages on every server), then SELECTs INBOX."""
    for flags, date, raw in messages:
        for conn in conns:
            _, t = conn.command(b"APPEND INBOX " + flags + b' "' + date + b'"', raw)
            assert t.startswith(b"OK"), (conn.name, t)
    for conn in conns:
        _, t = conn.command(b"SELECT INBOX")
        assert t.startswith(b"OK"), (conn.name, t)


def record(report, label, diffs, why, quiet):
    """Adds the differences `diffs` [(kind, ours, Dovecot's)] of one command to `report`, each
    with its cause `why(kind, ours, dovecot)`, and prints them unless `quiet`."""
    if diffs and not quiet:
        print(f"== {label}")
    for kind, x, y in diffs:
        cause_of = why(kind, x, y)
        if not quiet:
            print(f"  {kind}: ours {x} | dovecot {y} [{cause_of}]")
        report.append({"command": label, "kind": kind, "cause": cause_of, "ours": repr(x), "dovecot": repr(y)})


def compare_each(items, diffs_of, label, cause, report, quiet):
    """Compares item by item: `diffs_of(item)` gives an item's differences, recorded in `report`
    under `label(item)`, each with its cause `cause(item, kind, ours, dovecot)`. Returns (items
    compared, items answered alike)."""
    compared = same = 0
    for item in items:
        diffs = diffs_of(item)
        compared += 1
        same += not diffs
        record(report, label(item), diffs, lambda k, x, y: cause(item, k, x, y), quiet)
    return compared, same


def run_differential(doc, prefix, causes, run):
    """The main program of the command-by-command comparisons (compare-list.py, compare-pop3.py,
    compare-managesieve.py): options --postfach, --json, -q and --keep (see their docstrings),
    a temporary directory, and the summary. `run(binary, work, stops, quiet)` starts both
    servers (appending their stop functions to `stops`), compares, and returns (commands
    compared, commands answered alike, report entries as `record` makes them); `causes` maps
    each cause to its description."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--postfach")
    ap.add_argument("--json")
    ap.add_argument("-q", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    binary = postfach_binary(args.postfach)
    work = tempfile.mkdtemp(prefix=prefix)
    stops = []
    try:
        compared, same, report = run(binary, work, stops, args.q)
        print(f"Commands: {compared}; same answer: {same}; differing: {compared - same}; "
              f"differences: {len(report)}")
        print()
        print("| Cause | Differences |")
        print("|---|---|")
        counts = collections.Counter(entry["cause"] for entry in report)
        for c, text in causes.items():
            if c in counts:
                print(f"| {c}: {text} | {counts[c]} |")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
    finally:
        clean_up(stops, work, args.keep)


def prepare_dovecot(work, layout="", extra=""):
    """A private Dovecot configuration and Maildir in WORK/dovecot, owned by `dovebench` when
    run as root. `layout` is appended to the Maildir location (":LAYOUT=fs"), `extra` to the
    configuration (namespaces, a Sieve plugin section)."""
    d = os.path.join(work, "dovecot")
    for sub in ("mail", "run", "state"):
        os.makedirs(os.path.join(d, sub))
    root = os.geteuid() == 0
    with open(os.path.join(d, "dovecot.conf"), "w") as f:
        f.write(f"mail_location = maildir:{d}/mail/Maildir{layout}\nfirst_valid_uid = 1\n"
                f"base_dir = {d}/run\nstate_dir = {d}/state\nprotocols = imap\nssl = no\n"
                "log_path = /dev/stderr\n" + extra)
        if root:
            f.write("mail_uid = dovebench\nmail_gid = dovebench\n")
    if root:
        os.chmod(work, 0o711)
        os.chmod(d, 0o711)
        for sub in ("mail", "run", "state"):
            shutil.chown(os.path.join(d, sub), "dovebench", "dovebench")


def dovecot_process(work, program):
    """Dovecot's `program` (imap, pop3, managesieve) on WORK/dovecot's configuration,
    pre-authenticated on a pipe (as `dovebench` when root); returns (process, close)."""
    d = os.path.join(work, "dovecot")
    user = "dovebench" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    # TZ: Dovecot's date keys use its local zone (compare-search.py), so one zone everywhere.
    cmd = ["env", f"USER={user}", f"HOME={d}/mail", "TZ=UTC", f"/usr/lib/dovecot/{program}", "-c",
           os.path.join(d, "dovecot.conf")]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "dovebench", "--"] + cmd
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=open(os.path.join(d, f"{program}.stderr"), "ab"))

    def close():
        try:
            proc.stdin.close()
        except OSError:
            pass
        proc.wait(timeout=30)
    return proc, close


def start_dovecot(work, layout="", extra=""):
    """Dovecot's `imap` in PREAUTH mode on a pipe (see `prepare_dovecot`); returns (Conn, stop)."""
    prepare_dovecot(work, layout, extra)
    closes = []

    def spawn():
        # Dovecot's imap ends the session on some read errors (truncated base64 in BINARY):
        # a new process on the same Maildir continues where it stopped.
        if closes:
            closes[-1]()
        proc, close = dovecot_process(work, "imap")
        closes.append(close)
        greeting = proc.stdout.readline()  # PREAUTH
        if not greeting.startswith(b"* PREAUTH"):
            raise SystemExit(f"dovecot did not start: {greeting!r}")
        return proc.stdout, proc.stdin

    r, w = spawn()
    conn = Conn(r, w, "dovecot", reopen=spawn)

    def stop():
        try:
            conn.command(b"LOGOUT")
        except (OSError, SystemExit, Closed):
            pass
        for close in closes:
            close()
    return conn, stop


# --- Normalisation and diff ----------------------------------------------------------------

def up(v):
    return v.upper() if isinstance(v, (bytes, str)) else v


def norm_params(p):
    if not isinstance(p, list):
        return p
    out = []
    for k in range(0, len(p) - 1, 2):
        name, value = up(p[k]), p[k + 1]
        if name == b"CHARSET":
            value = up(value)
        out += [name, value]
    return out


def norm_disposition(d):
    if isinstance(d, list) and len(d) >= 2:
        return [up(d[0]), norm_params(d[1])] + d[2:]
    return d


def body_fields(v):
    """A BODY/BODYSTRUCTURE value as an ordered dict of named fields (children nested)."""
    if not isinstance(v, list) or not v:
        return v
    if isinstance(v[0], list):  # multipart
        k = 0
        parts = []
        while k < len(v) and isinstance(v[k], list):
            parts.append(body_fields(v[k]))
            k += 1
        rest = v[k:]
        f = {"parts": parts, "subtype": up(rest[0]) if rest else None}
        for name, val in zip(["params", "disposition", "language", "location"], rest[1:]):
            f[name] = norm_params(val) if name == "params" else (
                norm_disposition(val) if name == "disposition" else val)
        return norm_language(f)
    names = ["type", "subtype", "params", "id", "description", "encoding", "size"]
    f = dict(zip(names, v))
    rest = v[len(names):]
    t, st = up(f.get("type")), up(f.get("subtype"))
    f["type"], f["subtype"] = t, st
    f["params"] = norm_params(f.get("params"))
    f["encoding"] = up(f.get("encoding"))
    if t == b"MESSAGE" and st in (b"RFC822", b"GLOBAL") and len(rest) >= 3:
        f["envelope"], f["body"], f["lines"] = rest[0], body_fields(rest[1]), rest[2]
        rest = rest[3:]
    elif t == b"TEXT" and rest:
        f["lines"], rest = rest[0], rest[1:]
    for name, val in zip(["md5", "disposition", "language", "location"], rest):
        f[name] = norm_disposition(val) if name == "disposition" else val
    return norm_language(f)


def norm_language(f):
    """body-fld-lang is a string or a list of strings (RFC 9051 §9); one string == a list of one."""
    if isinstance(f.get("language"), bytes):
        f["language"] = [f["language"]]
    return f


def diff(a, b, path=""):
    """Paths where two normalised values differ: [(path, a, b)]."""
    if isinstance(a, dict) and isinstance(b, dict):
        if node_type(a) != node_type(b):
            # Different MIME types at this node: one difference, not one per field.
            return [(f"{path}/type", node_type(a), node_type(b))]
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            out += diff(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and \
            any(isinstance(x, (list, dict)) for x in a + b):
        out = []
        for k, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, f"{path}/{k + 1}")
        return out
    if isinstance(a, Atom) and isinstance(b, Atom):
        return [] if a == b else [(path, a, b)]
    if isinstance(a, Atom):
        a = a.encode()
    if isinstance(b, Atom):
        b = b.encode()
    return [] if a == b else [(path, a, b)]


def node_type(f):
    if "parts" in f:
        return f"MULTIPART/{f.get('subtype', b'').decode('latin-1')} ({len(f['parts'])} parts)"
    t = f.get("type") or b""
    return f"{t.decode('latin-1')}/{(f.get('subtype') or b'').decode('latin-1')}"


ENV_FIELDS = ["date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc",
              "in-reply-to", "message-id"]


def envelope_fields(v):
    return dict(zip(ENV_FIELDS, v)) if isinstance(v, list) else v


def normalise(name, v):
    if name in ("BODYSTRUCTURE", "BODY"):
        return body_fields(v)
    if name == "ENVELOPE":
        return envelope_fields(v)
    return v


# --- Parts ---------------------------------------------------------------------------------

def parts(bs, prefix=""):
    """[(part number, kind)] for a BODYSTRUCTURE value; kind is leaf, multipart or message."""
    out = []
    if not isinstance(bs, list) or not bs:
        return out
    if isinstance(bs[0], list):
        k = 0
        while k < len(bs) and isinstance(bs[k], list):
            num = f"{prefix}{k + 1}"
            child = bs[k]
            out.append((num, "multipart" if child and isinstance(child[0], list) else kind_of(child)))
            out += children(child, num)
            k += 1
        return out
    # A single-part message: part 1 is its body.
    num = f"{prefix}1"
    out.append((num, kind_of(bs)))
    out += children(bs, num)
    return out


def kind_of(leaf):
    t, st = up(leaf[0]) if leaf else None, up(leaf[1]) if len(leaf) > 1 else None
    if t == b"MESSAGE" and st in (b"RFC822", b"GLOBAL") and len(leaf) > 8 and isinstance(leaf[8], list):
        return "message"
    return "leaf"


def children(node, num):
    if node and isinstance(node[0], list):
        return parts(node, num + ".")
    if kind_of(node) == "message":
        return parts(node[8], num + ".")
    return []


# --- Search words --------------------------------------------------------------------------

def ascii_words(text, minimum):
    return [w for w in re.findall(r"[A-Za-z]+", text or "") if minimum <= len(w) <= 20]


def search_words(raw):
    """(key, word) pairs: a subject word, the From local part, a body word; ASCII letters only."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # noqa: BLE001 - any input
        return []
    out = []
    try:
        subject = str(email.header.make_header(email.header.decode_header(msg.get("Subject", ""))))
    except Exception:  # noqa: BLE001
        subject = str(msg.get("Subject", ""))
    w = ascii_words(subject, 4)
    if w:
        out.append(("SUBJECT", max(w, key=len)))
    local = email.utils.parseaddr(str(msg.get("From", "")))[1].partition("@")[0]
    w = ascii_words(local, 3)
    if w:
        out.append(("FROM", max(w, key=len)))
    for part in msg.walk():
        if part.get_content_maintype() != "text":
            continue
        try:
            payload = part.get_payload(decode=True) or b""
            text = payload.decode(part.get_content_charset() or "us-ascii", "replace")
        except Exception:  # noqa: BLE001
            continue
        w = [x for x in ascii_words(text[:4000], 5) if not x.isupper()]
        if w:
            out.append(("BODY", max(w, key=len)))
            break
    return out


# --- Main ----------------------------------------------------------------------------------

def item_class(name):
    """Group item names: BODY[1.2.MIME] -> BODY[n.MIME]."""
    return re.sub(r"\[[0-9.]*\d(\.|\])", lambda m: "[n" + m.group(1), name)


def shape(f, path="1"):
    """[(node path, MIME type)] of a normalised body: the part tree without the details."""
    if not isinstance(f, dict):
        return []
    out = [(path, node_type(f))]
    for k, child in enumerate(f.get("parts", []), 1):
        out += shape(child, f"{path}.{k}")
    if isinstance(f.get("body"), dict):
        out += shape(f["body"], path + ".m")
    return out


CAUSES = collections.OrderedDict([
    ("tree", "the part trees differ (malformed MIME; see the groups in docs/dovecot-differences.md)"),
    ("delimiter-crlf", "Dovecot counts the CRLF before a boundary delimiter into the part, and as one "
                       "more line (a, ours)"),
    ("missing-domain", "address without a domain: \"\" (ours) vs \"MISSING_DOMAIN\" (Dovecot) (b)"),
    ("rfc2231", "RFC 2231 parameter decoded to UTF-8 (ours, RFC 9051 §7.5.2) vs raw (a)"),
    ("unknown-cte", "Dovecot fails BINARY(.SIZE) with UNKNOWN-CTE for a part it need not decode (a, ours)"),
    ("parse", "invalid base64/quoted-printable: decoded leniently (ours) vs NO [PARSE] (b)"),
    ("no-blank-line", "header fetch of a message with no body and no blank line (a, ours, RFC 9051 §6.4.5)"),
    ("address-list", "invalid address list (no comma after a group, a repeated field) read differently (b)"),
    ("search", "SEARCH BODY/SUBJECT/FROM: different set of messages"),
    ("append-refused", "one server refused to APPEND the message (not compared)"),
    ("other", "not classified automatically"),
])


def as_int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def cause(item, path, a, b, tree_differs):
    """The known cause of one difference (a key of CAUSES)."""
    if item.startswith("SEARCH"):
        return "search"
    if path.endswith("/lines") and as_int(a) is not None and as_int(b) == as_int(a) + 1:
        return "delimiter-crlf"
    if (path.endswith("/size") or item.startswith("BINARY.SIZE")) and as_int(a) is not None \
            and as_int(b) == as_int(a) + 2:
        return "delimiter-crlf"
    if item.startswith("BODY[HEADER") and isinstance(a, bytes) and isinstance(b, bytes) and \
            b == a + b"\r\n":
        return "no-blank-line"
    if isinstance(a, bytes) and isinstance(b, bytes) and b == a + b"\r\n":
        return "delimiter-crlf"
    if item == "ENVELOPE" and isinstance(a, list) and isinstance(b, list) and \
            (a[:len(b)] == b or b[:len(a)] == a):
        return "address-list"
    if "MISSING_DOMAIN" in repr(b):
        return "missing-domain"
    if isinstance(a, list) and any(isinstance(x, bytes) and x.endswith(b"*") for x in a[::2]):
        return "rfc2231"
    if isinstance(a, list) and any(isinstance(x, list) and rfc2231(x) for x in a):
        return "rfc2231"
    if b == "NO [UNKNOWN-CTE]" and not str(a).startswith("NO"):
        return "unknown-cte"
    if b == "NO [PARSE]":
        return "parse"
    if tree_differs and (item not in ("ENVELOPE", "RFC822.SIZE") and not item.startswith("BODY[HEADER")):
        return "tree"
    return "other"


def rfc2231(params):
    return any(isinstance(x, bytes) and x.endswith(b"*") for x in params[::2])


def short(path):
    return os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))


def compare_message(pf, dc, uid, dc_uid, raw, names):
    """All item comparisons for one message: [(item, ours, theirs, diffs)] and whether the part
    trees differ."""
    results = []
    ours, s1 = fetch(pf, uid, MAIN_ITEMS)
    theirs, s2 = fetch(dc, dc_uid, MAIN_ITEMS)
    nums = collections.OrderedDict()
    for bs in (ours.get("BODYSTRUCTURE"), theirs.get("BODYSTRUCTURE")):
        for num, kind in parts(bs):
            nums.setdefault(num, set()).add(kind)
    part_items = []
    for num, kinds in nums.items():
        part_items += [f"BODY.PEEK[{num}]", f"BODY.PEEK[{num}.MIME]"]
        if "message" in kinds:
            part_items.append(f"BODY.PEEK[{num}.HEADER]")
    o2, s3 = fetch(pf, uid, part_items) if part_items else ({}, "OK")
    t2, s4 = fetch(dc, dc_uid, part_items) if part_items else ({}, "OK")
    # An item missing from the answer stands for the tagged status of its FETCH.
    for got, status, items in ((ours, s1, MAIN_ITEMS), (theirs, s2, MAIN_ITEMS),
                               (o2, s3, part_items), (t2, s4, part_items)):
        for i in items:
            got.setdefault(item_name(i.replace(".PEEK", "")), status if status != "OK" else "<absent>")
    ours.update(o2)
    theirs.update(t2)
    expected = [item_name(i.replace(".PEEK", "")) for i in MAIN_ITEMS + part_items]
    for num, kinds in nums.items():
        if "leaf" not in kinds:
            continue
        items = [f"BINARY.PEEK[{num}]", f"BINARY.SIZE[{num}]"]
        o3, so = fetch(pf, uid, items)
        t3, st = fetch(dc, dc_uid, items)
        for name in (f"BINARY[{num}]", f"BINARY.SIZE[{num}]"):
            ours[name] = o3.get(name, so if so != "OK" else "<absent>")
            theirs[name] = t3.get(name, st if st != "OK" else "<absent>")
        expected += [f"BINARY[{num}]", f"BINARY.SIZE[{num}]"]
    for name in expected:
        a = normalise(name, ours[name])
        b = normalise(name, theirs[name])
        results.append((name, a, b, diff(a, b)))
    for key, word in search_words(raw):
        a, b = search(pf, key, word), search(dc, key, word)
        if isinstance(a, list) and isinstance(b, list):
            a = sorted(short(names[0].get(u, f"uid {u}")) for u in a)
            b = sorted(short(names[1].get(u, f"uid {u}")) for u in b)
        name = f"SEARCH {key}"
        if isinstance(a, list) and isinstance(b, list):
            # Only the messages found by one server, not the whole answers.
            diffs = [(f" {word!r}, found by one server only", sorted(set(a) - set(b)),
                      sorted(set(b) - set(a)))] if a != b else []
        else:
            diffs = [] if a == b else [("", a, b)]
        results.append((name, a, b, diffs))
    tree_differs = shape(normalise("BODYSTRUCTURE", ours.get("BODYSTRUCTURE"))) != \
        shape(normalise("BODYSTRUCTURE", theirs.get("BODYSTRUCTURE")))
    return results, tree_differs


def show(v, limit=160):
    if isinstance(v, bytes):
        s = repr(v)[1:]
        if len(v) > 60:
            s = f"{{{len(v)}}} " + s
    else:
        s = repr(v)
    return s if len(s) <= limit else s[:limit] + "..."


def first_difference(a, b):
    """For two long byte strings: where they part and a little context."""
    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"len {len(a)} vs {len(b)}, first difference at {k}: {a[max(0, k - 20):k + 30]!r} vs " \
           f"{b[max(0, k - 20):k + 30]!r}"


def describe(path, a, b):
    if isinstance(a, bytes) and isinstance(b, bytes) and max(len(a), len(b)) > 80:
        return f"{path or '.'}: {first_difference(a, b)}"
    return f"{path or '.'}: ours {show(a)} | dovecot {show(b)}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--postfach")
    ap.add_argument("--raw", action="store_true")
    ap.add_argument("--rev2", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("-q", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--pattern", default="*.eml")
    args = ap.parse_args()
    binary = postfach_binary(args.postfach)
    files = []
    for d in args.dirs:
        files += [os.path.join(d, f) for f in sorted(os.listdir(d)) if fnmatch.fnmatch(f, args.pattern)]
    work = tempfile.mkdtemp(prefix="compare-fetch-")
    stops = []
    try:
        pf, stop = start_postfach(binary, work, args.rev2)
        stops.append(stop)
        dc, stop = start_dovecot(work)
        stops.append(stop)
        messages = []
        failed = []
        for path in files:
            raw = open(path, "rb").read()
            if not args.raw:
                raw = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
            uids = []
            for conn in (pf, dc):
                _, t = conn.command(b"APPEND INBOX () " + DATE.encode(), raw)
                m = re.search(rb"\[APPENDUID \d+ (\d+)\]", t)
                if not t.startswith(b"OK") or not m:
                    print(f"{conn.name}: APPEND {path}: {t.decode('latin-1')}", file=sys.stderr)
                    failed.append((path, conn.name, t.decode("latin-1")))
                    uids.append(None)
                else:
                    uids.append(int(m.group(1)))
            if None not in uids:
                messages.append((path, raw, uids[0], uids[1]))
        # SEARCH answers are compared as sets of messages, not of UIDs.
        names = ({m[2]: m[0] for m in messages}, {m[3]: m[0] for m in messages})
        for conn in (pf, dc):
            conn.command(b"SELECT INBOX")
            conn.selected = True
        by_class = collections.defaultdict(lambda: [0, 0])
        by_cause = collections.defaultdict(lambda: [0, set()])
        report = []
        total = same = 0
        for path, raw, uid, dc_uid in messages:
            name = short(path)
            res, tree_differs = compare_message(pf, dc, uid, dc_uid, raw, names)
            lines = []
            binary_cause = {}
            if tree_differs:
                lines.append("  (the part trees differ)")
            for item, a, b, diffs in res:
                cls = item_class(item)
                total += 1
                by_class[cls][0] += 1
                if not diffs:
                    same += 1
                    continue
                by_class[cls][1] += 1
                causes = [cause(item, p, x, y, tree_differs) for p, x, y in diffs]
                if item.startswith("BINARY.SIZE["):
                    # A size differs because the data differ: same cause as BINARY[n].
                    causes = [binary_cause.get(item.replace(".SIZE", ""), c) for c in causes]
                elif item.startswith("BINARY["):
                    binary_cause[item] = causes[0]
                report.append({"message": name, "item": item, "causes": causes,
                               "diffs": [[p, show(x, 400), show(y, 400)] for p, x, y in diffs]})
                for (p, x, y), c in zip(diffs, causes):
                    lines.append(f"  {item} {describe(p, x, y)} [{c}]")
                    by_cause[c][0] += 1
                    by_cause[c][1].add(name)
            if lines and not args.q:
                print(f"== {name}")
                print("\n".join(lines))
        print()
        for path, server, t in failed:
            print(f"APPEND refused by {server}: {short(path)}: {t}")
            report.append({"message": short(path), "item": "APPEND", "causes": ["append-refused"],
                           "diffs": [["", server, t]]})
        print(f"Messages: {len(messages)}; items compared: {total}; identical: {same}; "
              f"differing: {total - same}")
        print()
        print("| Item | Compared | Identical | Differing |")
        print("|---|---|---|---|")
        for cls in sorted(by_class):
            n, d = by_class[cls]
            print(f"| {cls} | {n} | {n - d} | {d} |")
        print()
        print("| Cause | Differences | Messages |")
        print("|---|---|---|")
        for c, text in CAUSES.items():
            if c in by_cause:
                print(f"| {c}: {text} | {by_cause[c][0]} | {len(by_cause[c][1])} |")
        if "other" in by_cause:
            print()
            print("Not classified: " + ", ".join(sorted(by_cause["other"][1])))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
    finally:
        clean_up(stops, work, args.keep)


if __name__ == "__main__":
    main()
