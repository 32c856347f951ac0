#!/usr/bin/env python3
"""Compare Postfach's mailbox answers (LIST, LSUB, STATUS, CREATE, DELETE, RENAME, SUBSCRIBE)
with Dovecot's, command by command.

Usage (as root, so that Dovecot's `imap` can run as the `dovebench` user; Dovecot 2.3 installed):
    python3 bench/compare-list.py [--postfach BIN] [--json FILE] [-q] [--keep]

Both servers start with the same mailboxes: INBOX, and Archive, Drafts, Junk, Sent and Trash with
their special-use attributes, all subscribed (what Postfach gives a new account; Dovecot is
configured to match: one namespace, "/" as the hierarchy separator, the Maildir in its "fs"
layout so that a name may hold a dot). Then the same script of commands (COMMANDS) runs on both,
in order, in an IMAP4rev1 session (Dovecot 2.3 has no IMAP4rev2): it builds a hierarchy, lists it
with every pattern shape, selection and return option of RFC 5258/6154/5819, subscribes and
lists subscriptions, deletes and renames parents, and asks for what must fail.

Answers are compared as values, not bytes:
  - LIST/LSUB responses as a set (RFC 9051 §7.3.1 gives no order): per mailbox, its name
    (quoted, literal and atom forms are the same name), its delimiter, its attributes as a
    case-insensitive set and its extended data;
  - STATUS responses as a name and a map of items;
  - other untagged responses (NAMESPACE, say) as parsed values;
  - the tagged response by its status and response code name (the text differs between
    servers; APPENDUID's numbers are the servers' own).

Each difference is printed as `COMMAND: what differs`; with --json they are also written as a
list of {command, kind, ours, dovecot} (crates/server/tests/dovecot_list.rs reads it and checks
every difference against bench/dovecot-list-known-differences.txt; docs/dovecot-differences.md,
"Mailbox lists", explains each with the RFC text that decides it).

Nothing outside its own temporary directory (removed at the end) is touched; both servers are
private and stopped by the script. Python 3 standard library only.
"""
import os
import re
import sys

# The shared set-up: the servers, the IMAP connection and the main program.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
cf = __import__("compare-fetch")

# Dovecot set up like a new Postfach account: one namespace with "/" and the special-use
# mailboxes created and subscribed.
DOVECOT_CONF = r"""
namespace inbox {
  inbox = yes
  separator = /
  prefix =
  mailbox INBOX {
    auto = subscribe
  }
  mailbox Archive {
    special_use = \Archive
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
}
"""

MESSAGE = (b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: hello\r\n"
           b"Date: Mon, 1 Jan 2024 09:00:00 +0000\r\nMessage-ID: <list-1@example.org>\r\n\r\nHi.\r\n")

# The script both servers run, in order. A tuple is (command, literal): an APPEND.
COMMANDS = [
    'LIST "" "*"',
    'LIST "" "%"',
    'LSUB "" "*"',
    'LIST "" ""',
    'NAMESPACE',
    # A hierarchy, and what CREATE refuses.
    'CREATE Projects/2024/Q1',
    'CREATE Projects/2025',
    'CREATE Lists/rust',
    'CREATE Lists/dovecot',
    'CREATE "with space"',
    'CREATE Entw&APw-rfe',
    'CREATE INBOX/Receipts',
    'CREATE Trailing/',
    'CREATE Projects/2025',
    'CREATE INBOX',
    'CREATE inbox',
    'CREATE "a//b"',
    'CREATE "/leading"',
    # Every pattern shape.
    'LIST "" "*"',
    'LIST "" "%"',
    'LIST "" "%/%"',
    'LIST "" "Projects/*"',
    'LIST "" "Projects/%"',
    'LIST "Projects/" "%"',
    'LIST "Projects" "/%"',
    'LIST "" "*2*"',
    'LIST "" "P*/Q%"',
    'LIST "" "inbox"',
    'LIST "" "InBoX/%"',
    'LIST "" "Nonexistent*"',
    'LIST "" "Entw&APw-rfe"',
    'LIST "" "with space"',
    'LIST "Lists/" ""',
    # RFC 5258 (LIST-EXTENDED), RFC 6154 (SPECIAL-USE), RFC 5819 (LIST-STATUS).
    'LIST (SPECIAL-USE) "" "*"',
    'LIST "" "*" RETURN (SPECIAL-USE)',
    'LIST "" "%" RETURN (CHILDREN)',
    'LIST "" ("INBOX" "Lists/%")',
    'LIST () "" "%"',
    'LIST "" "%" RETURN ()',
    # Subscriptions, one of them to a mailbox that does not exist.
    'SUBSCRIBE Lists/rust',
    'SUBSCRIBE Gone',
    'SUBSCRIBE Projects/2024/Q1',
    'LSUB "" "*"',
    'LSUB "" "%"',
    'LSUB "" "Lists/%"',
    'LIST (SUBSCRIBED) "" "*"',
    'LIST (SUBSCRIBED) "" "%"',
    'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"',
    'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)',
    'LIST "" "*" RETURN (SUBSCRIBED)',
    'LIST "" "*" RETURN (CHILDREN SPECIAL-USE SUBSCRIBED)',
    'LIST (RECURSIVEMATCH) "" "%"',
    # STATUS, alone and inside LIST.
    ('APPEND Lists/rust', MESSAGE),
    ('APPEND INBOX (\\Seen)', MESSAGE),
    ('APPEND INBOX', MESSAGE),
    'STATUS Lists/rust (MESSAGES RECENT UIDNEXT UNSEEN)',
    'STATUS INBOX (MESSAGES UNSEEN)',
    'STATUS Nonexistent (MESSAGES)',
    'STATUS Projects (MESSAGES)',
    'LIST "" "%" RETURN (STATUS (MESSAGES UNSEEN))',
    'LIST "" "Lists/*" RETURN (CHILDREN STATUS (MESSAGES UIDNEXT))',
    # Deleting and renaming parents.
    'DELETE Projects',
    'LIST "" "Projects*"',
    'DELETE Projects/2024',
    'LIST "" "Projects/*"',
    'DELETE Projects',
    'LIST "" "Projects*"',
    'RENAME Lists Mailinglists',
    'LIST "" "*"',
    'LSUB "" "*"',
    'LIST "" "Mailinglists/*" RETURN (SUBSCRIBED)',
    'RENAME INBOX Old-Inbox',
    'STATUS INBOX (MESSAGES)',
    'STATUS Old-Inbox (MESSAGES UNSEEN)',
    'LIST "" "INBOX*"',
    'RENAME Mailinglists/rust Mailinglists/rust/deeper',
    'RENAME Sent Sent/Inside',
    'RENAME Archive Trash',
    'RENAME Nonexistent Somewhere',
    'RENAME "with space" New/Parent/Child',
    'LIST "" "New*"',
    # What must fail.
    'DELETE INBOX',
    'DELETE Nonexistent',
    'SELECT Nonexistent',
    'EXAMINE Projects',
    'SUBSCRIBE ""',
    'LIST "" "*" RETURN (BOGUS)',
    'LIST (BOGUS) "" "*"',
    # Undoing.
    'UNSUBSCRIBE Gone',
    'UNSUBSCRIBE Never-Subscribed',
    'LSUB "" "*"',
    'DELETE Entw&APw-rfe',
    'DELETE Trailing',
    'LIST "" "*" RETURN (CHILDREN SUBSCRIBED SPECIAL-USE)',
]


def norm_name(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v) if v is not None else None


def norm(v):
    """Values as comparable text: atoms upper-cased, strings as strings, lists recursively."""
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, cf.Atom):
        return v.upper()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v


def parse_untagged(resp):
    """('LIST', key, value), ('STATUS', name, {item: value}) or ('OTHER', text, values)."""
    body = resp.rstrip(b"\r\n")
    m = re.match(rb"\* (LIST|LSUB) ", body)
    if m:
        vals, _ = cf.parse_values(body, m.end())
        attrs = sorted(a.upper() for a in vals[0]) if vals and isinstance(vals[0], list) else []
        delim = norm_name(vals[1]) if len(vals) > 1 else None
        name = norm_name(vals[2]) if len(vals) > 2 else None
        ext = norm(vals[3:]) if len(vals) > 3 else []
        return (m.group(1).decode(), name, {"attributes": attrs, "delimiter": delim, "extended": ext})
    m = re.match(rb"\* STATUS ", body)
    if m:
        vals, _ = cf.parse_values(body, m.end())
        name = norm_name(vals[0]) if vals else None
        items = vals[1] if len(vals) > 1 and isinstance(vals[1], list) else []
        got = {str(items[k]).upper(): norm(items[k + 1]) for k in range(0, len(items) - 1, 2)}
        return ("STATUS", name, got)
    m = re.match(rb"\* (\w+)", body)
    word = m.group(1).decode().upper() if m else "?"
    if word in ("OK", "NO", "BAD"):
        # Human text: compared by response code only.
        code = re.match(rb"\* \w+ (\[[A-Z-]+)", body)
        return ("OTHER", word, code.group(1).decode() + "]" if code else "")
    vals, _ = cf.parse_values(body, 2)
    return ("OTHER", word, norm(vals))


def run_one(conn, command):
    """One command's answer, parsed."""
    if isinstance(command, tuple):
        cmd, literal = command
        untagged, t = conn.command(cmd.encode(), literal)
    else:
        untagged, t = conn.command(command.encode())
    lists, statuses, others = {}, {}, []
    for resp in untagged:
        kind, key, value = parse_untagged(resp)
        if kind in ("LIST", "LSUB"):
            lists[(kind, key)] = value
        elif kind == "STATUS":
            statuses[key] = value
        elif key not in ("EXISTS", "RECENT", "FLAGS"):
            others.append((key, value))
    return {"tagged": cf.tagged_status(t), "lists": lists, "statuses": statuses, "others": others}


def compare(command, a, b):
    """Differences between our answer `a` and Dovecot's `b`: a list of (kind, ours, Dovecot's)."""
    diffs = []
    if a["tagged"] != b["tagged"]:
        diffs.append(("tagged", a["tagged"], b["tagged"]))
    for key in sorted(set(a["lists"]) | set(b["lists"]), key=lambda k: (k[0], k[1] or "")):
        x, y = a["lists"].get(key), b["lists"].get(key)
        what = f"{key[0]} {key[1]}"
        if x is None or y is None:
            diffs.append((f"{what}: listed by one server only", "listed" if x else "-", "listed" if y else "-"))
            continue
        # One difference per attribute that only one server gave.
        for attr in sorted(set(x["attributes"]) - set(y["attributes"])):
            diffs.append((f"{what}: {attr}", "present", "absent"))
        for attr in sorted(set(y["attributes"]) - set(x["attributes"])):
            diffs.append((f"{what}: {attr}", "absent", "present"))
        for field in ("delimiter", "extended"):
            if x[field] != y[field]:
                diffs.append((f"{what}: {field}", x[field], y[field]))
    for name in sorted(set(a["statuses"]) | set(b["statuses"]), key=lambda n: n or ""):
        x, y = a["statuses"].get(name), b["statuses"].get(name)
        if x != y:
            diffs.append((f"STATUS {name}", x, y))
    if a["others"] != b["others"]:
        diffs.append(("untagged", a["others"], b["others"]))
    return diffs


SPECIAL_USE = {"\\ALL", "\\ARCHIVE", "\\DRAFTS", "\\FLAGGED", "\\JUNK", "\\SENT", "\\TRASH"}

# Names that are mailboxes on our side only: superior names CREATE made (Projects,
# Projects/2024, Lists, Mailinglists, New, New/Parent) and the one created with a trailing
# separator (Trailing).
PARENTS = {"Projects", "Projects/2024", "Lists", "Mailinglists", "New", "New/Parent", "Trailing"}

# Why the answers differ; docs/dovecot-differences.md ("Mailbox lists") gives the RFC text.
CAUSES = {
    "parents": "superior names that CREATE needed are real mailboxes here, \\Noselect names in "
               "Dovecot; so is a name created with a trailing separator",
    "children": "\\HasChildren/\\HasNoChildren given without the CHILDREN return option",
    "special-use": "special-use attributes given without the SPECIAL-USE return option",
    "lsub-special-use": "LSUB without special-use attributes (Dovecot gives them)",
    "codes": "a response code on our side only (RFC 5530, OBJECTID's MAILBOXID)",
    "rename-subscriptions": "RENAME carries the subscriptions of the subtree along",
    "rename-inbox": "RENAME INBOX moves the messages into a new mailbox (Dovecot refuses)",
    "namespaces": "the other users' and shared namespaces (Dovecot was set up without them)",
    "root": "LIST with an empty pattern: the root of a non-rooted reference is the empty string",
    "other": "not classified",
}


def cause(command, kind, ours, dovecot):
    """The cause (a key of CAUSES) of one difference."""
    cmd = label(command)
    m = re.match(r"(LIST|LSUB) (.*): (\\\w+)$", kind)
    if m:
        box, attr, ours_only = m.group(2), m.group(3), ours == "present"
        if ours_only and attr in ("\\HASCHILDREN", "\\HASNOCHILDREN"):
            return "children"
        if ours_only and attr in SPECIAL_USE:
            return "special-use"
        if not ours_only and attr == "\\NOSELECT" and box in PARENTS:
            return "parents"
        if not ours_only and attr in SPECIAL_USE and m.group(1) == "LSUB":
            return "lsub-special-use"
        if attr == "\\SUBSCRIBED" and box.startswith("Mailinglists/"):
            return "rename-subscriptions"
        return "other"
    if kind == "tagged":
        if ours.startswith(dovecot + " [") and dovecot in ("OK", "NO", "BAD"):
            return "codes"
        if cmd == "RENAME INBOX Old-Inbox" or "Old-Inbox" in cmd:
            return "rename-inbox"
        if any(f" {p} " in f" {cmd} " or cmd.endswith(f" {p} (MESSAGES)") for p in PARENTS):
            return "parents"
        return "other"
    if kind.startswith("LSUB ") and kind.endswith("listed by one server only"):
        name = kind[5:].split(":")[0]
        if name.startswith(("Lists/", "Mailinglists/")):
            return "rename-subscriptions"
    if kind.startswith("LIST ") and "Old-Inbox" in kind:
        return "rename-inbox"
    if kind.startswith("STATUS "):
        name = kind[7:]
        if name in PARENTS:
            return "parents"
        if name in ("INBOX", "Old-Inbox") and "INBOX" in cmd or name == "Old-Inbox":
            return "rename-inbox"
    if kind == "untagged" and cmd == "NAMESPACE":
        return "namespaces"
    if kind == "untagged" and cmd == "EXAMINE Projects":
        return "parents"
    if cmd == 'LIST "Lists/" ""':
        return "root"
    return "other"


def label(command):
    return command[0] if isinstance(command, tuple) else command


def run(binary, work, stops, quiet):
    pf, stop = cf.start_postfach(binary, work, False)
    stops.append(stop)
    dc, stop = cf.start_dovecot(work, layout=":LAYOUT=fs", extra=DOVECOT_CONF)
    stops.append(stop)
    report = []
    compared, same = cf.compare_each(
        COMMANDS, lambda c: compare(c, run_one(pf, c), run_one(dc, c)), label, cause, report, quiet)
    return compared, same, report


def main():
    cf.run_differential(__doc__, "compare-list-", CAUSES, run)


if __name__ == "__main__":
    main()
