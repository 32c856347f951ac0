#!/usr/bin/env python3
"""Fetch Dovecot's answers for the golden corpus (see README.md in this directory).

Runs Dovecot's `imap` binary in PREAUTH mode on stdin/stdout against a private Maildir, appends
every corpus message (plus the three generated ones of tests/golden.rs), fetches the same items
as tests/golden.rs, and writes one <name>.txt per message into OUT_DIR with the items in
Postfach's order and Dovecot's timing suffix removed from the tagged reply.

Usage (as root, Dovecot 2.3 installed, user `dovebench` present):
    python3 fetch-dovecot.py WORK_DIR OUT_DIR
WORK_DIR must not exist yet (it holds the config and the Maildir).
"""
import os, re, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "../../../message/tests/corpus")
GOLDEN = os.path.join(HERE, "../golden")
ITEMS = ("(ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[TEXT] "
         "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[1]<2.5> "
         "BINARY.SIZE[1] PREVIEW)")
def parse_fetch(data):
    """Return (seq, [(name, raw_value_bytes)], trailer_bytes) for one '* N FETCH (...)' response."""
    m = re.match(rb"\* (\d+) FETCH \(", data)
    i = m.end(); seq = int(m.group(1)); items = []
    def skip_value(i):
        c = data[i:i+1]
        if c == b'"':
            i += 1
            while data[i:i+1] != b'"':
                i += 2 if data[i:i+1] == b"\\" else 1
            return i + 1
        if c in (b"{",) or data[i:i+2] == b"~{":
            j = data.index(b"}", i); n = int(data[data.index(b"{", i)+1:j].rstrip(b"+"))
            return j + 3 + n
        if c == b"(":
            i += 1
            while data[i:i+1] != b")":
                if data[i:i+1] == b" ": i += 1; continue
                i = skip_value(i)
            return i + 1
        j = i
        while data[j:j+1] not in (b" ", b")", b""):
            j += 1
        return j
    while data[i:i+1] != b")":
        if data[i:i+1] == b" ": i += 1; continue
        # name: up to space, but brackets may hold spaces
        j = i; depth = 0
        while True:
            c = data[j:j+1]
            if c == b"[": depth += 1
            elif c == b"]": depth -= 1
            elif c == b" " and depth == 0: break
            j += 1
        name = data[i:j]; v0 = j + 1; v1 = skip_value(v0)
        items.append((name.decode(), data[v0:v1])); i = v1
    return seq, items, data[i+1:]


def corpus():
    files = sorted((f[:-4], open(os.path.join(CORPUS, f), "rb").read())
                   for f in os.listdir(CORPUS) if f.endswith(".eml"))
    huge = bytearray(b"Subject: enormous header\r\nX-Long: ")
    for i in range(2000):
        huge += f"word{i}\r\n ".encode()
    huge += b"end\r\nTo: a@b\r\n\r\nbody\r\n"
    files.append(("g1-enormous-header", bytes(huge)))
    files.append(("g2-only-garbage", b"\x00\xff\xfe not a message at all"))
    files.append(("g3-nul-in-body", b"Subject: nul\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Transfer-Encoding: binary\r\n\r\na\x00b\r\n"))
    return files


def main():
    work, out = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.join(work, "mail"))
    for d in ("run", "state"):
        os.makedirs(os.path.join(work, d))
    conf = os.path.join(work, "dovecot.conf")
    with open(conf, "w") as c:
        c.write(f"mail_location = maildir:{work}/mail/Maildir\nmail_uid = dovebench\n"
                f"mail_gid = dovebench\nfirst_valid_uid = 1\nbase_dir = {work}/run\n"
                f"state_dir = {work}/state\nprotocols = imap\nssl = no\n")
    for d in ("mail", "run", "state"):
        subprocess.run(["chown", "dovebench:dovebench", os.path.join(work, d)], check=True)
    p = subprocess.Popen(["runuser", "-u", "dovebench", "--", "env", "USER=dovebench",
                          f"HOME={work}/mail", "/usr/lib/dovecot/imap", "-c", conf],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def read_until(tag):
        buf = bytearray()
        while True:
            line = p.stdout.readline()
            if not line:
                raise SystemExit("dovecot closed the connection")
            buf += line
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                buf += p.stdout.read(int(m.group(1)))
                continue
            if line.startswith(tag + b" "):
                return bytes(buf)

    def send(b, tag):
        p.stdin.write(b)
        p.stdin.flush()
        return read_until(tag)

    read_until(b"*")  # PREAUTH greeting
    os.makedirs(out, exist_ok=True)
    for uid, (name, raw) in enumerate(corpus(), 1):
        r = send(b"a APPEND INBOX {%d+}\r\n" % len(raw) + raw + b"\r\n", b"a")
        if b"a OK" not in r:
            print(name, r, file=sys.stderr)
        send(b"s SELECT INBOX\r\n", b"s")
        got = send(b"f UID FETCH %d %s\r\n" % (uid, ITEMS.encode()), b"f")
        seq, its, trailer = parse_fetch(got)
        _, ours, _ = parse_fetch(open(os.path.join(GOLDEN, name + ".txt"), "rb").read())
        by = dict(its)
        order = [n for n, _ in ours]
        names = [n for n in order if n in by] + [n for n, _ in its if n not in order]
        body = b" ".join(n.encode() + b" " + by[n] for n in names)
        trailer = re.sub(rb" \([0-9. +]+ secs\)", b"", trailer)
        with open(os.path.join(out, name + ".txt"), "wb") as f:
            f.write(b"* %d FETCH (" % seq + body + b")" + trailer)
        missing = [n for n in order if n not in by]
        if missing:
            print(f"{name}: Dovecot returned no {missing}", file=sys.stderr)
    send(b"z LOGOUT\r\n", b"z")
    p.stdin.close()
    p.wait()


if __name__ == "__main__":
    main()
