"""Python's imaplib logs in with a bearer token: XOAUTH2 and OAUTHBEARER (RFC 7628).

imaplib's authenticate() is how scripts and many small clients do single sign-on; the callback
returns the mechanism's message, imaplib base64-encodes it. Usage:
  oauth_login.py --port N --cafile F --user U --token T
Prints "oauth: all checks passed" at the end.
"""
import argparse
import imaplib
import ssl
import sys

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, required=True)
p.add_argument("--cafile", required=True)
p.add_argument("--user", required=True)
p.add_argument("--token", required=True)
p.add_argument("--bad-token", required=True)
a = p.parse_args()

ctx = ssl.create_default_context(cafile=a.cafile)
ctx.check_hostname = False


def connect():
    return imaplib.IMAP4_SSL(a.host, a.port, ssl_context=ctx)


for mech, message in [
    ("XOAUTH2", f"user={a.user}\x01auth=Bearer {a.token}\x01\x01"),
    ("OAUTHBEARER", f"n,a={a.user},\x01host={a.host}\x01port={a.port}\x01auth=Bearer {a.token}\x01\x01"),
]:
    m = connect()
    assert f"AUTH={mech}" in m.capabilities, m.capabilities
    typ, data = m.authenticate(mech, lambda _: message.encode())
    assert typ == "OK", (typ, data)
    typ, data = m.select("INBOX")
    assert typ == "OK", (typ, data)
    m.logout()
    print(f"{mech}: logged in")

# A refused token: imaplib answers the error challenge with an empty response and raises.
m = connect()
challenges = []


def refused(challenge):
    challenges.append(challenge)
    if len(challenges) == 1:
        return f"n,a={a.user},\x01auth=Bearer {a.bad_token}\x01\x01".encode()
    return b"\x01"


try:
    m.authenticate("OAUTHBEARER", refused)
    sys.exit("a refused token logged in")
except imaplib.IMAP4.error as e:
    print(f"refused as expected: {e}")
assert len(challenges) == 2 and b"invalid_token" in challenges[1], challenges
m.logout()
print("oauth: all checks passed")
