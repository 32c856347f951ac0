#!/usr/bin/env python3
"""Log in to a Postfach server with AUTHENTICATE SCRAM-SHA-256 through Python's imaplib.

Run by crates/server/tests/clients.rs; usable by hand too:

    scram_login.py --host 127.0.0.1 --port N --user alice --password secret --cafile cert.pem

The SCRAM client side (RFC 5802 §3, RFC 7677) is written here with hashlib and hmac, the way
SASL libraries used by mail clients do it. The server's signature (the `v=` of server-final) is
checked, a wrong password must be refused, and a mailbox must be selectable after the login.
The server must advertise AUTH=SCRAM-SHA-256 (Postfach always does over TLS); a server that
does not fails the check.
Exit status 0 means every check passed; otherwise the failing check is on stderr.
"""

import argparse
import base64
import hashlib
import hmac
import imaplib
import os
import ssl
import sys

SOCKET_TIMEOUT = 30


class Scram:
    """One SCRAM-SHA-256 client exchange without channel binding (gs2 header "n,,")."""

    def __init__(self, user, password):
        self.user = user.replace("=", "=3D").replace(",", "=2C").encode()
        self.password = password.encode()  # ASCII passwords: SASLprep leaves them unchanged
        self.nonce = base64.b64encode(os.urandom(18))
        self.client_first_bare = b"n=" + self.user + b",r=" + self.nonce
        self.server_signature = None
        self.verified = False
        self.step = 0

    def __call__(self, challenge):
        """imaplib calls this with each decoded server challenge; returns the next response."""
        self.step += 1
        if self.step == 1:
            # The server's first continuation is empty (no SASL-IR from imaplib).
            return b"n,," + self.client_first_bare
        if self.step == 2:
            attrs = dict(item.split(b"=", 1) for item in challenge.split(b","))
            nonce = attrs[b"r"]
            if not nonce.startswith(self.nonce):
                raise AssertionError(f"server nonce {nonce!r} does not extend ours {self.nonce!r}")
            salt = base64.b64decode(attrs[b"s"])
            iterations = int(attrs[b"i"])
            salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
            client_key = hmac.new(salted, b"Client Key", "sha256").digest()
            stored_key = hashlib.sha256(client_key).digest()
            server_key = hmac.new(salted, b"Server Key", "sha256").digest()
            without_proof = b"c=" + base64.b64encode(b"n,,") + b",r=" + nonce
            auth_message = self.client_first_bare + b"," + challenge + b"," + without_proof
            signature = hmac.new(stored_key, auth_message, "sha256").digest()
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            self.server_signature = hmac.new(server_key, auth_message, "sha256").digest()
            return without_proof + b",p=" + base64.b64encode(proof)
        # Server-final: v=<signature> (RFC 5802 §3: the client MUST verify it).
        expected = b"v=" + base64.b64encode(self.server_signature)
        if challenge != expected:
            raise AssertionError(f"server signature {challenge!r}, expected {expected!r}")
        self.verified = True
        return b""


def connect(args):
    context = ssl.create_default_context(cafile=args.cafile)
    return imaplib.IMAP4_SSL(args.host, args.port, ssl_context=context, timeout=SOCKET_TIMEOUT)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--cafile", required=True)
    args = parser.parse_args()

    imap = connect(args)
    if "AUTH=SCRAM-SHA-256" not in imap.capabilities:
        raise AssertionError(f"AUTH=SCRAM-SHA-256 not advertised: {imap.capabilities}")

    # A wrong password is refused with NO (imaplib raises IMAP4.error).
    try:
        imap.authenticate("SCRAM-SHA-256", Scram(args.user, args.password + "x"))
    except imaplib.IMAP4.error as e:
        print(f"wrong password refused: {e}")
    else:
        raise AssertionError("SCRAM-SHA-256 accepted a wrong password")
    imap.logout()

    imap = connect(args)
    scram = Scram(args.user, args.password)
    try:
        typ, data = imap.authenticate("SCRAM-SHA-256", scram)
    except imaplib.IMAP4.error as e:
        raise AssertionError(f"SCRAM-SHA-256 login with the right password failed: {e}") from e
    if typ != "OK" or not scram.verified:
        raise AssertionError(f"SCRAM-SHA-256: {typ} {data!r}, server signature verified: {scram.verified}")
    typ, data = imap.select("INBOX")
    if typ != "OK":
        raise AssertionError(f"SELECT after SCRAM login: {typ} {data!r}")
    imap.logout()
    print("scram: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
