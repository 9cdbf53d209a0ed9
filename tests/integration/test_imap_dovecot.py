"""ENVELOPE, BODYSTRUCTURE and BODY of every message in tests/data/mime/
must be what Dovecot sends for the same bytes (issue #3; docs/mime.md
"IMAP views").

Dovecot (package dovecot-imapd, installed by scripts/deps.sh without
starting its service) runs here without a daemon: /usr/lib/dovecot/imap as a
PREAUTH session on stdin/stdout, as user nobody, over a maildir holding the
corpus. Petrel gets the same bytes by APPEND. The answers are compared as
IMAP values (tests/integration/imapwire.py), so a string one server quotes
and the other sends as a literal is the same value.

Dovecot reads a message with bare LF line ends as if they were CRLF (its
sizes count each bare LF as two bytes); Petrel keeps and counts the bytes
it stored. So every message with a bare LF is also appended with CRLF line
ends, and that copy must match Dovecot in full; the raw copy is compared
with its body sizes masked (BARE_LF_SIZES below).
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

import imapwire
from conftest import REPO_ROOT, USER, USER_PW

DOVECOT_IMAP = "/usr/lib/dovecot/imap"
CORPUS = REPO_ROOT / "tests" / "data" / "mime"
ITEMS = ("ENVELOPE", "BODYSTRUCTURE", "BODY")
NOBODY = 65534

# The documented exceptions (docs/mime.md "IMAP views"), each with its reason.
#
# 1. A message with a bare LF: Dovecot counts every bare LF as CRLF in body
#    sizes (it serves messages with CRLF line ends); Petrel serves the bytes
#    it stored and counts those. Such a message's BODYSTRUCTURE and BODY are
#    compared with the body sizes masked, and its CRLF copy in full.
BARE_LF_SIZES = "bare LF: body sizes masked (Petrel counts stored bytes, Dovecot CRLF)"
#
# 2. Single messages Petrel answers differently on purpose:
#    {file: {item: reason}}. Empty: everything else matches.
EXCLUDED = {}


def to_crlf(data):
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def has_bare_lf(data):
    return to_crlf(data) != data


def corpus():
    """[(label, bytes)]: every file, and a CRLF copy of those with a bare LF."""
    files = sorted(CORPUS.glob("*.eml"))
    assert len(files) >= 50, f"corpus too small: {len(files)} files in {CORPUS}"
    out = []
    for f in files:
        data = f.read_bytes()
        out.append((f.name, data))
        if has_bare_lf(data):
            out.append((f.name + " (as CRLF)", to_crlf(data)))
    return out


# ------------------------------------------------------------------ Dovecot

def dovecot_fetch(entries):
    """{sequence number: {item: value}} from Dovecot for entries, in order."""
    if not os.access(DOVECOT_IMAP, os.X_OK):
        pytest.fail(f"{DOVECOT_IMAP} is missing: install dovecot-imapd "
                    "(scripts/deps.sh does, without starting the service)")
    root = Path(tempfile.mkdtemp(prefix="petrel-dovecot-"))
    try:
        maildir = root / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        # Dovecot gives new maildir files UIDs in the order of their names
        # (the time stamp first).
        for i, (_, data) in enumerate(entries):
            (maildir / "cur" / f"{1000000000 + i}.M{i}P1.corpus:2,").write_bytes(data)
        cmd = [DOVECOT_IMAP, "-o", f"mail_location=maildir:{maildir}",
               "-o", "log_path=/dev/null"]
        if os.geteuid() == 0:
            # Dovecot will not touch mail as root.
            for path in [root, *root.rglob("*")]:
                os.chown(path, NOBODY, NOBODY)
            cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                   "--clear-groups", *cmd]
        # One command at a time, stdin open until the answers are in: Dovecot
        # drops a client whose input ends while a FETCH is still being sent.
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                env={"HOME": str(root), "USER": "nobody",
                                     "PATH": "/usr/bin:/bin"})
        try:
            reader = imapwire.Reader(proc.stdout.read1)
            out, tagged = {}, []

            def command(tag, text):
                proc.stdin.write(tag + b" " + text + b"\r\n")
                proc.stdin.flush()
                while True:
                    resp = reader.response()
                    if resp.startswith(tag + b" "):
                        tagged.append(resp)
                        return resp
                    if re.match(rb"\* \d+ FETCH ", resp):
                        n, items = imapwire.fetch_items(resp)
                        out.setdefault(n, {}).update(items)

            try:
                assert reader.line().startswith(b"* PREAUTH"), "no PREAUTH greeting"
                command(b"a", b"SELECT INBOX")
                command(b"b", b"FETCH 1:* (RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY)")
                command(b"c", b"LOGOUT")
            except EOFError as e:
                tagged.append(b"EOF after " + bytes(e.args[0][-200:]))
            proc.stdin.close()
            proc.wait(timeout=60)
            err = proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert len(tagged) == 3 and all(b" OK " in t for t in tagged[:2]), \
        f"Dovecot failed: {tagged}\nstderr: {err[:2000]!r}"
    assert sorted(out) == list(range(1, len(entries) + 1)), \
        f"Dovecot answered for {len(out)} of {len(entries)} messages"
    # The UID order is the corpus order: check by the sizes Dovecot saw.
    for i, (label, data) in enumerate(entries, 1):
        assert int(out[i]["RFC822.SIZE"]) == len(to_crlf(data)), \
            f"Dovecot message {i} is not {label}"
    return out


# ------------------------------------------------------------------- Petrel

class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.reader = imapwire.Reader(self.sock.recv)
        self.greeting = self.reader.line()

    def cmd(self, tag, data):
        """Sends data (a whole command); returns (untagged responses, tagged)."""
        self.sock.sendall(data)
        untagged = []
        while True:
            resp = self.reader.response()
            if resp.startswith(tag + b" "):
                return untagged, resp
            untagged.append(resp)

    def close(self):
        self.sock.close()


def petrel_fetch(srv, entries):
    c = Client(srv.port("imap"))
    try:
        _, t = c.cmd(b"l", f'l LOGIN "{USER}" "{USER_PW}"\r\n'.encode())
        assert t.startswith(b"l OK"), t
        _, t = c.cmd(b"c", b"c CREATE dovecot-corpus\r\n")
        assert t.startswith(b"c OK"), t
        for label, data in entries:
            # A NUL needs a literal8 (RFC 3516 §4.4).
            lit = b"~{%d+}" if b"\0" in data else b"{%d+}"
            _, t = c.cmd(b"a", b"a APPEND dovecot-corpus " + lit % len(data) + b"\r\n"
                         + data + b"\r\n")
            assert t.startswith(b"a OK"), (label, t)
        _, t = c.cmd(b"s", b"s SELECT dovecot-corpus\r\n")
        assert t.startswith(b"s OK"), t
        res, t = c.cmd(b"f", b"f FETCH 1:* (RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY)\r\n")
        assert t.startswith(b"f OK"), t
        c.cmd(b"o", b"o LOGOUT\r\n")
    finally:
        c.close()
    out = {}
    for resp in res:
        if re.match(rb"\* \d+ FETCH ", resp):
            n, items = imapwire.fetch_items(resp)
            out.setdefault(n, {}).update(items)
    assert sorted(out) == list(range(1, len(entries) + 1)), \
        f"Petrel answered for {len(out)} of {len(entries)} messages"
    for i, (label, data) in enumerate(entries, 1):
        assert int(out[i]["RFC822.SIZE"]) == len(data), f"Petrel message {i} is not {label}"
    return out


# ------------------------------------------------------------------ diffing

def render(v):
    """An IMAP-like text of a parsed value, for the failure report."""
    if v is None:
        return "NIL"
    if isinstance(v, list):
        return "(" + " ".join(render(x) for x in v) + ")"
    if isinstance(v, bytes):
        return '"' + v.decode("utf-8", "backslashreplace").replace('"', '\\"') + '"'
    return v


def first_difference(a, b, path=()):
    """(path, a part, b part) where a and b first differ, or None."""
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, path + (i,))
            if d:
                return d
        if len(a) != len(b):
            return path + (min(len(a), len(b)),), a[len(b):], b[len(a):]
        return None
    return None if a == b else (path, a, b)


def mask_sizes(body):
    """A BODY / BODYSTRUCTURE value with every body size replaced by "-"."""
    if not isinstance(body, list) or not body:
        return body
    if isinstance(body[0], list):           # multipart: the parts, then the rest
        n = 0
        while n < len(body) and isinstance(body[n], list):
            n += 1
        return [mask_sizes(x) for x in body[:n]] + body[n:]
    out = list(body)
    if len(out) > 6:
        out[6] = "-"
    is_message = [x.lower() if isinstance(x, bytes) else x for x in out[:2]] == \
        [b"message", b"rfc822"]
    if is_message and len(out) > 8:
        out[8] = mask_sizes(out[8])
    return out


def test_envelope_and_bodystructure_match_dovecot(make_server):
    entries = corpus()
    dovecot = dovecot_fetch(entries)
    srv = make_server(kinds=("smtp", "submission", "imap", "imaps"),
                      extra={"auth": {"plaintext_on_loopback": "yes"}})
    petrel = petrel_fetch(srv, entries)

    report, stale, differing = [], [], set()
    for i, (label, data) in enumerate(entries, 1):
        excluded = EXCLUDED.get(label, {})
        masked = has_bare_lf(data)
        for item in ITEMS:
            want, got = dovecot[i].get(item), petrel[i].get(item)
            if item in excluded:
                if want == got:
                    stale.append(f"{label} {item}")
                continue
            if masked and item != "ENVELOPE":
                want, got = mask_sizes(want), mask_sizes(got)
            if want == got:
                continue
            differing.add(label)
            path, w, g = first_difference(want, got)
            note = f" ({BARE_LF_SIZES})" if masked and item != "ENVELOPE" else ""
            report.append(f"--- {label} {item}{note}: first difference at {list(path)}\n"
                          f"    dovecot: {render(w)}\n    petrel:  {render(g)}\n"
                          f"  dovecot: {render(want)}\n  petrel:  {render(got)}")
    assert not report, (f"{len(differing)} of {len(entries)} messages differ from Dovecot:\n"
                        + "\n".join(report))
    for label in EXCLUDED:
        assert label in dict(entries), f"EXCLUDED names {label}, which is not in the corpus"
    assert not stale, f"exclusions no longer needed (Petrel now matches): {stale}"
