"""POP3 (RFC 1939, 2449, 2595, 5034) driven by real clients: Python's poplib,
fetchmail, curl, and raw sockets for exact wire bytes. Mail is delivered by
SMTP on the same server; what POP3 deletes is checked in the store itself.

"DELE + QUIT is seen by IMAP": test_dele_quit_removes checks the store rows,
test_dele_quit_seen_by_imap an IMAP session idling on the same INBOX.
"""

import base64
import hashlib
import hmac
import json
import os
import poplib
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import USER, USER2, USER2_PW, USER_PW, messages
from smtpclient import Raw

KINDS = ("smtp", "pop3", "pop3s")

DOTS = (b"From: Carol <carol@remote.test>\r\n"
        b"To: Alice <alice@example.test>\r\n"
        b"Subject: dots\r\n"
        b"\r\n"
        b".leading dot\r\n"
        b"..two dots\r\n"
        b".\r\n"
        b"middle . dot\r\n"
        b". space after dot\r\n"
        b"last line\r\n")


def msg(tag, size=0, lines=0):
    body = b"".join(b"line %d\r\n" % i for i in range(lines)) + b"x" * size
    return (b"From: a@remote.test\r\nTo: alice@example.test\r\nSubject: " + tag.encode() +
            b"\r\n\r\n" + tag.encode() + b"\r\n" + body + (b"\r\n" if size else b""))


@pytest.fixture
def pop(make_server):
    return make_server(kinds=KINDS)


def deliver(server, *msgs, rcpt=USER):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=60) as s:
        for m in msgs:
            s.sendmail("carol@remote.test", [rcpt], m)


def ctx(server):
    return server.ssl_context()


def pop3s(server, user=USER, pw=USER_PW):
    p = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=ctx(server), timeout=30)
    if user:
        p.user(user)
        p.pass_(pw)
    return p


def pop3_stls(server, user=USER, pw=USER_PW):
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    p.stls(context=ctx(server))
    if user:
        p.user(user)
        p.pass_(pw)
    return p


def retr_bytes(p, n):
    """RETR through poplib (dot-unstuffed lines) joined back with CRLF."""
    _, lines, _ = p.retr(n)
    return b"".join(l + b"\r\n" for l in lines)


class Pop(Raw):
    """Raw POP3 lines for exact bytes and bad input."""

    def ok(self, text, prefix="+OK"):
        self.send(text + "\r\n")
        line = self.line()
        assert line.startswith(prefix), f"{text!r}: {line!r}"
        return line

    def multi_raw(self):
        """The raw bytes of a multi-line response body up to and with '.CRLF'."""
        while b"\r\n.\r\n" not in b"\r\n" + self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError(self.buf[-200:])
            self.buf += chunk
        data = b"\r\n" + self.buf
        end = data.index(b"\r\n.\r\n") + 5
        out, self.buf = data[2:end], data[end:]
        return out


def raw_pop(server, kind="pop3", login=None):
    r = Pop(server.port(kind), tls_context=ctx(server) if kind == "pop3s" else None)
    assert r.line().startswith("+OK ")
    if login:
        r.ok(f"USER {login[0]}")
        r.ok(f"PASS {login[1]}", "+OK Logged in")
    return r


def stuff(m):
    """RFC 1939 §3 byte-stuffing of a CRLF message plus the terminator."""
    lines = m.split(b"\r\n")
    assert lines[-1] == b""
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines[:-1]) + b".\r\n"


# --------------------------------------------------------------- logins


def test_capa_and_user_pass_after_stls(pop):
    p = poplib.POP3("127.0.0.1", pop.port("pop3"), timeout=30)
    capa = p.capa()
    # RFC 2595 §4: no USER (and no plain-text SASL) before TLS.
    assert "USER" not in capa and "STLS" in capa
    assert "PLAIN" not in capa.get("SASL", []) and "SCRAM-SHA-256" in capa["SASL"]
    for k in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"):
        assert k in capa, capa
    assert capa["EXPIRE"] == ["NEVER"] and capa["IMPLEMENTATION"] == ["Petrel"]
    with pytest.raises(poplib.error_proto, match="STLS"):
        p.user(USER)
    p.stls(context=ctx(pop))
    capa = p.capa()
    assert "USER" in capa and "STLS" not in capa and "PLAIN" in capa["SASL"]
    p.user(USER)
    assert p.pass_(USER_PW).startswith(b"+OK Logged in")
    assert p.stat() == (0, 0)
    assert p.quit().startswith(b"+OK")


def test_plain_login_on_loopback_when_allowed(make_server):
    server = make_server(kinds=KINDS, extra={"auth": {"plaintext_on_loopback": "yes"}})
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    assert "USER" in p.capa()
    p.user(USER)
    p.pass_(USER_PW)
    assert p.stat() == (0, 0)
    p.quit()


def test_pop3s_user_pass_and_wrong_password(pop):
    deliver(pop, msg("one"), msg("two"))
    p = pop3s(pop)
    assert p.sock.version().startswith("TLSv1.")
    assert p.stat()[0] == 2
    p.quit()
    p = pop3s(pop, user=None)
    p.user(USER)
    with pytest.raises(poplib.error_proto, match=re.escape("[AUTH]")):
        p.pass_("not the password")
    p.user(USER2)
    p.pass_(USER2_PW)
    assert p.stat() == (0, 0)
    p.quit()
    assert "event=auth-failed service=pop" in pop.log_text()
    assert USER_PW not in pop.log_text()


def test_auth_plain_login_initial_response(pop):
    deliver(pop, msg("one"))
    plain = base64.b64encode(f"\0{USER}\0{USER_PW}".encode()).decode()
    p = pop3s(pop, user=None)
    assert p._shortcmd("AUTH PLAIN " + plain).startswith(b"+OK Logged in, 1 messages")
    p.quit()
    # LOGIN: two challenges.
    r = raw_pop(pop, "pop3s")
    r.ok("AUTH LOGIN", "+ ")
    r.ok(base64.b64encode(USER.encode()).decode(), "+ ")
    r.ok(base64.b64encode(USER_PW.encode()).decode(), "+OK Logged in")
    r.ok("QUIT")
    # PLAIN with the response on its own line, and a cancelled exchange.
    r = raw_pop(pop, "pop3s")
    r.ok("AUTH PLAIN", "+ ")
    r.ok("*", "-ERR Authentication cancelled")
    r.ok("AUTH PLAIN", "+ ")
    r.ok(plain, "+OK Logged in")
    r.ok("QUIT")
    # PLAIN without TLS: refused, pointing at STLS.
    r = raw_pop(pop, "pop3")
    r.ok("AUTH PLAIN " + plain, "-ERR Encryption required")


def scram_sha256(r, user, password):
    """RFC 5802 / RFC 7677 client over POP3 AUTH (RFC 5034)."""
    b64 = lambda b: base64.b64encode(b).decode()
    cnonce = b64(os.urandom(18))
    first_bare = f"n={user},r={cnonce}"
    line = r.ok("AUTH SCRAM-SHA-256 " + b64(("n,," + first_bare).encode()), "+ ")
    server_first = base64.b64decode(line[2:]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{without_proof}".encode()
    proof = bytes(a ^ b for a, b in zip(client_key, hmac.digest(stored_key, auth_msg, "sha256")))
    server_sig = hmac.digest(hmac.digest(salted, b"Server Key", "sha256"), auth_msg, "sha256")
    r.send(b64(f"{without_proof},p={b64(proof)}".encode()) + "\r\n")
    line = r.line()
    proved = False
    if line.startswith("+ "):
        proved = base64.b64decode(line[2:]).decode() == "v=" + b64(server_sig)
        r.send("\r\n")
        line = r.line()
    return line, proved


def test_auth_scram_sha256(pop):
    r = raw_pop(pop, "pop3")  # SCRAM needs no TLS
    line, proved = scram_sha256(r, USER, USER_PW)
    assert line.startswith("+OK Logged in") and proved
    r.ok("QUIT")
    r = raw_pop(pop, "pop3")
    line, _ = scram_sha256(r, USER, "wrong")
    assert line.startswith("-ERR [AUTH]")


def test_throttling_is_shared_with_smtp(make_server):
    server = make_server(kinds=("submissions",) + KINDS,
                         extra={"auth": {"max_fails_ip": "3", "fail_delay_ms": "50"}})
    # Two failures over SMTP, one over POP3: the address is then refused.
    for _ in range(2):
        r = Raw(server.port("submissions"), tls_context=ctx(server))
        r.reply()
        r.cmd("EHLO laptop")
        code, _ = r.cmd("AUTH PLAIN " + base64.b64encode(f"\0{USER}\0nope".encode()).decode())
        assert code == 535
    p = pop3s(server, user=None)
    p.user(USER)
    with pytest.raises(poplib.error_proto, match=re.escape("[AUTH]")):
        p.pass_("nope")
    p.user(USER)
    with pytest.raises(poplib.error_proto, match=re.escape("[SYS/TEMP]")):
        p.pass_(USER_PW)  # even the right password
    assert "event=auth-throttled service=pop" in server.log_text()


# ------------------------------------------------------------ retrieval


def test_retr_is_byte_exact_with_dot_lines(pop):
    deliver(pop, DOTS, msg("second", lines=3))
    stored = [m for _, m in messages(pop.env, USER)]
    p = pop3_stls(pop)
    assert p.stat() == (2, sum(map(len, stored)))
    assert retr_bytes(p, 1) == stored[0]
    assert retr_bytes(p, 2) == stored[1]
    resp, listing, _ = p.list()
    assert listing == [b"1 %d" % len(stored[0]), b"2 %d" % len(stored[1])]
    p.quit()
    # The exact wire bytes: "+OK n octets", the stuffed message, ".CRLF".
    r = raw_pop(pop, "pop3s", (USER, USER_PW))
    assert r.ok("RETR 1") == f"+OK {len(stored[0])} octets"
    assert r.multi_raw() == stuff(stored[0])
    assert b"\r\n..leading dot\r\n...two dots\r\n..\r\nmiddle . dot\r\n.. space" in stuff(stored[0])
    r.ok("QUIT")


def test_top(pop):
    deliver(pop, msg("top", lines=5))
    (_, stored), = messages(pop.env, USER)
    head, body = stored.split(b"\r\n\r\n", 1)
    body_lines = body.split(b"\r\n")[:-1]
    p = pop3s(pop)
    for n in (0, 1, 3, len(body_lines), 1000):
        _, lines, _ = p.top(1, n)
        got = b"".join(l + b"\r\n" for l in lines)
        want = head + b"\r\n\r\n" + b"".join(l + b"\r\n" for l in body_lines[:n])
        assert got == want, n
    p.quit()


def test_uidl_stable_across_sessions_and_restart(pop):
    deliver(pop, msg("a"), msg("b"), msg("c"))
    p = pop3s(pop)
    _, first, _ = p.uidl()
    ids = [l.split()[1] for l in first]
    assert len(set(ids)) == 3 and all(re.fullmatch(rb"[0-9a-f]{16}", i) for i in ids)
    assert p.uidl(2).split()[-1] == ids[1]
    p.quit()
    p = pop3s(pop)
    assert p.uidl()[1] == first
    p.dele(1)
    p.quit()
    pop.stop()
    pop.start()
    deliver(pop, msg("d"))
    p = pop3s(pop)
    _, after, _ = p.uidl()
    after_ids = [l.split()[1] for l in after]
    # The survivors keep their ids (with new numbers); the new one is new.
    assert after_ids[:2] == ids[1:] and after_ids[2] not in ids
    p.quit()


# ------------------------------------------------------ deletion / update


def test_dele_quit_removes(pop):
    deliver(pop, msg("keep"), msg("gone1"), msg("gone2"))
    p = pop3s(pop)
    assert p.dele(2).startswith(b"+OK")
    assert p.dele(3).startswith(b"+OK")
    with pytest.raises(poplib.error_proto, match="already deleted"):
        p.retr(2)
    assert p.stat()[0] == 1
    assert p.quit() == b"+OK mail.example.test POP3 server signing off (2 messages deleted)"
    left = messages(pop.env, USER)
    assert len(left) == 1 and b"Subject: keep" in left[0][1]
    # What IMAP reads: the rows are gone, tombstones written, quota updated.
    with pop.env.db() as db:
        assert db.execute("SELECT count(*) FROM expunged").fetchone()[0] == 2
        assert db.execute("SELECT used FROM users WHERE address = ?", (USER,)).fetchone()[0] \
            == len(left[0][1])
    inbox = next(m for m in json.loads(pop.env.ctl_ok("mailbox", "list", USER, "--json"))
                 if m["mailbox"] == "INBOX")
    assert inbox["messages"] == 1 and inbox["unseen"] == 1
    # The retrieved-and-kept message is \Seen for IMAP.
    with pop.env.db() as db:
        assert db.execute("SELECT flags FROM messages").fetchone()[0] == ""
    p = pop3s(pop)
    p.retr(1)
    p.quit()
    with pop.env.db() as db:
        assert db.execute("SELECT flags FROM messages").fetchone()[0] == "\\Seen"


def test_dele_rset_and_dropped_connection_keep_mail(pop):
    deliver(pop, msg("a"), msg("b"))
    p = pop3s(pop)
    p.dele(1)
    p.dele(2)
    assert p.stat() == (0, 0)
    assert p.rset().startswith(b"+OK Maildrop has 2 messages")
    assert p.stat()[0] == 2
    p.quit()
    assert len(messages(pop.env, USER)) == 2
    # DELE then the connection drops: nothing is deleted (RFC 1939 §6).
    r = raw_pop(pop, "pop3s", (USER, USER_PW))
    r.ok("DELE 1")
    r.ok("DELE 2")
    r.sock.close()
    time.sleep(0.3)
    assert len(messages(pop.env, USER)) == 2
    assert "event=pop3-abandon" in pop.log_text()


def test_concurrent_sessions_keep_their_snapshots(pop):
    deliver(pop, msg("a"), msg("b"))
    a = pop3s(pop)
    b = pop3s(pop)
    assert a.stat()[0] == b.stat()[0] == 2
    deliver(pop, msg("c"))  # not in either snapshot
    a.dele(1)
    a.quit()
    assert b.stat()[0] == 2
    with pytest.raises(poplib.error_proto, match="removed by another session"):
        b.retr(1)
    assert b"Subject: b" in retr_bytes(b, 2)
    b.quit()
    p = pop3s(pop)
    assert p.stat()[0] == 2
    p.quit()


def test_dele_quit_seen_by_imap(make_server):
    server = make_server(kinds=KINDS + ("imaps",))
    deliver(server, msg("one"), msg("two"), msg("three"))
    imap = Raw(server.port("imaps"), tls_context=ctx(server))
    assert imap.line().startswith("* OK")

    def tagged(tag, text):
        imap.send(f"{tag} {text}\r\n")
        lines = []
        while True:
            ln = imap.line()
            if ln.startswith(tag + " "):
                return lines, ln
            lines.append(ln)

    _, t = tagged("a", f'LOGIN "{USER}" "{USER_PW}"')
    assert t.startswith("a OK"), t
    untagged, t = tagged("b", "SELECT INBOX")
    assert "* 3 EXISTS" in untagged, untagged
    imap.send("c IDLE\r\n")
    assert imap.line().startswith("+ ")
    p = pop3s(server)
    assert b"Subject: one" in retr_bytes(p, 1)
    p.dele(2)
    p.quit()
    # The expunge reaches the idling IMAP session, and a new one sees the
    # rest, the message POP3 retrieved marked \Seen.
    imap.sock.settimeout(5)
    seen = []
    while "* 2 EXPUNGE" not in seen:
        seen.append(imap.line())
    imap.send("DONE\r\n")
    while not imap.line().startswith("c "):
        pass
    untagged, t = tagged("d", "FETCH 1:* (UID FLAGS)")
    assert t.startswith("d OK"), t
    assert untagged == ["* 1 FETCH (UID 1 FLAGS (\\Seen))", "* 2 FETCH (UID 3 FLAGS ())"], untagged
    tagged("e", "LOGOUT")


# ---------------------------------------------------------- real clients


def fetchmail(server, tmp_path, keep, name):
    out = tmp_path / name
    out.mkdir()
    home = tmp_path / "home"  # .fetchids (the UIDLs seen) is kept here
    home.mkdir(exist_ok=True)
    rc = home / "fetchmailrc"
    rc.write_text(f"""set no syslog
poll 127.0.0.1 service {server.port('pop3s')} protocol pop3 {"uidl" if keep else ""} auth password
  user "{USER}" password "{USER_PW}" is "tester" here
  ssl sslcertck sslcertfile "{server.cafile}" sslcommonname "mail.example.test"
  {"keep" if keep else "nokeep fetchall"}
  mda "/bin/sh -c 'cat > {out}/msg.$$'"
""")
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    r = subprocess.run(["fetchmail", "-f", str(rc), "-N", "-v"], env=env,
                       capture_output=True, text=True, timeout=120)
    return r, sorted(out.iterdir())


def test_fetchmail_keep_and_delete(pop, tmp_path):
    assert shutil.which("fetchmail"), "fetchmail is installed by scripts/deps.sh"
    n = 5
    deliver(pop, *[msg(f"fm{i}", lines=3) for i in range(n)], DOTS)
    r, got = fetchmail(pop, tmp_path, keep=True, name="keep1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(got) == n + 1
    assert len(messages(pop.env, USER)) == n + 1
    bodies = [f.read_bytes() for f in got]
    assert any(b"\n.leading dot\n..two dots\n.\nmiddle . dot\n" in b for b in bodies)
    assert sorted(re.search(rb"Subject: (\w+)", b).group(1) for b in bodies) == \
        sorted([f"fm{i}".encode() for i in range(n)] + [b"dots"])
    # keep + uidl: a second run finds nothing new (UIDL values unchanged).
    r, got = fetchmail(pop, tmp_path, keep=True, name="keep2")
    assert r.returncode in (0, 1), r.stdout + r.stderr  # 1: no mail
    assert got == []
    # Without keep: retrieved and deleted.
    r, got = fetchmail(pop, tmp_path, keep=False, name="nokeep")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(got) == n + 1
    assert messages(pop.env, USER) == []


def test_curl_pop3(pop, tmp_path):
    deliver(pop, DOTS, msg("two"))
    stored = [m for _, m in messages(pop.env, USER)]
    base = ["curl", "-sS", "--cacert", pop.cafile, "--user", f"{USER}:{USER_PW}"]
    port = pop.port("pop3")
    url = f"pop3://mail.example.test:{port}/"
    resolve = ["--resolve", f"mail.example.test:{port}:127.0.0.1", "--ssl-reqd"]
    r = subprocess.run(base + resolve + [url], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"1 %d\r\n2 %d\r\n" % (len(stored[0]), len(stored[1]))
    r = subprocess.run(base + resolve + [url + "1"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == stored[0]  # curl undoes the stuffing
    sport = pop.port("pop3s")
    r = subprocess.run(base + ["--resolve", f"mail.example.test:{sport}:127.0.0.1", "-X", "UIDL",
                               f"pop3s://mail.example.test:{sport}/"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2
    # curl's DELE (-X DELE with a message) then QUIT removes it.
    r = subprocess.run(base + ["--resolve", f"mail.example.test:{sport}:127.0.0.1", "-X", "DELE",
                               "-I", f"pop3s://mail.example.test:{sport}/2"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [m for _, m in messages(pop.env, USER)] == stored[:1]


# ------------------------------------------------------ bad input, limits


def test_bad_commands_and_states(make_server):
    server = make_server(kinds=KINDS, extra={"limits": {"max_errors": "40"}})
    deliver(server, msg("a"))
    r = raw_pop(server, "pop3s")
    r.ok("STAT", "-ERR STAT is not valid before login")
    r.ok("RETR 1", "-ERR RETR is not valid before login")
    r.ok("FOO", "-ERR Unknown command")
    r.ok("PASS x", "-ERR Send USER first")
    r.ok("APOP alice@example.test c4c9334bac560ecc979e58001b3e22fb", "-ERR APOP is not available")
    r.ok("USER", "-ERR Syntax: USER name")
    r.ok("USER " + "a" * 400, "-ERR Argument too long")
    r.ok(f"USER {USER}")
    r.ok(f"PASS {USER_PW}", "+OK Logged in, 1 messages")
    r.ok("USER x", "-ERR USER is not valid after login")
    r.ok("STLS", "-ERR STLS is not valid after login")
    r.ok("RETR", "-ERR Syntax: RETR msg")
    r.ok("RETR 0", "-ERR No such message, only 1 in maildrop")
    r.ok("RETR 2", "-ERR No such message")
    r.ok("RETR -1", "-ERR Invalid message number")
    r.ok("RETR 99999999999", "-ERR Invalid message number")
    r.ok("TOP 1", "-ERR Syntax: TOP msg lines")
    r.ok("TOP 1 -5", "-ERR Invalid line count")
    r.ok("DELE 1")
    r.ok("DELE 1", "-ERR Message 1 already deleted")
    r.ok("LIST 1", "-ERR Message 1 already deleted")
    r.ok("UIDL 1", "-ERR Message 1 already deleted")
    r.ok("NOOP extra", "-ERR Syntax: NOOP")
    r.send("X" * 5000 + "\r\n")
    assert r.line() == "-ERR Line too long"
    r.ok("NOOP", "+OK")
    r.ok("RSET")
    r.ok("QUIT", "+OK mail.example.test POP3 server signing off (0 messages deleted)")
    assert r.closed()
    assert len(messages(server.env, USER)) == 1


def test_too_many_errors_closes(make_server):
    server = make_server(kinds=KINDS, extra={"limits": {"max_errors": "3"}})
    r = raw_pop(server, "pop3")
    r.ok("FOO", "-ERR")
    r.ok("BAR", "-ERR")
    r.ok("BAZ", "-ERR Unknown command")
    assert r.line().startswith("-ERR Too many errors")
    assert r.closed()
    assert "event=too-many-errors" in server.log_text()
    raw_pop(server, "pop3").ok("QUIT")  # the server goes on


def test_timeouts(make_server):
    server = make_server(kinds=KINDS, extra={"limits": {"preauth_timeout": "1",
                                                         "idle_timeout": "2"}})
    deliver(server, msg("a"))
    r = raw_pop(server, "pop3s")
    time.sleep(1.5)
    assert r.line().startswith("-ERR Autologout")
    assert r.closed()
    # After login the idle timeout applies (and DELE'd mail stays).
    r = raw_pop(server, "pop3s", (USER, USER_PW))
    r.ok("DELE 1")
    time.sleep(1.2)
    r.ok("NOOP")  # still within idle_timeout, and it resets the timer
    time.sleep(2.5)
    assert r.line().startswith("-ERR Autologout")
    assert r.closed()
    assert len(messages(server.env, USER)) == 1


def test_stls_injection_discarded(make_server):
    server = make_server(kinds=KINDS, extra={"auth": {"plaintext_on_loopback": "yes"}})
    r = raw_pop(server, "pop3")
    # Commands pipelined after STLS predate TLS and must be dropped.
    r.send(f"STLS\r\nUSER {USER}\r\n")
    assert r.line() == "+OK Begin TLS negotiation"
    r.starttls(ctx(server))
    r.ok(f"PASS {USER_PW}", "-ERR Send USER first")
    r.ok("STLS", "-ERR TLS already active")


def test_sigterm_during_session(pop):
    deliver(pop, msg("a"))
    r = raw_pop(pop, "pop3s", (USER, USER_PW))
    r.ok("DELE 1")
    assert pop.stop() == 0
    assert r.line().startswith("-ERR [SYS/TEMP]")
    assert len(messages(pop.env, USER)) == 1


def sanitized(server):
    r = subprocess.run(["ldd", str(server.env.build / "petreld")], capture_output=True, text=True)
    return "libasan" in r.stdout


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def test_25mb_retr_streams_without_stalling(make_server):
    server = make_server(kinds=KINDS)
    # Compressible lines, so the store's own copy of the blob is small and
    # what the server holds is the message plus its output queue.
    big = b"Subject: big\r\n\r\n" + b"".join(
        (b"." if i % 50 == 0 else b"") + b"line %08d of the big message, padded .....\r\n" % i
        for i in range(25 * 1024 * 1024 // 52))
    deliver(server, big, msg("small"))
    (_, stored), _ = messages(server.env, USER)
    want = hashlib.sha256(stuff(stored)).hexdigest()
    before = rss_kb(server.proc.pid)
    # A reader that takes its time: the server must not queue the whole
    # message for it, nor keep others waiting.
    r = Pop(server.port("pop3s"), tls_context=ctx(server))
    sock = r.sock
    r.line()
    r.ok(f"USER {USER}")
    r.ok(f"PASS {USER_PW}", "+OK")
    r.send("RETR 1\r\n")
    time.sleep(1.0)
    t0 = time.monotonic()
    other = pop3s(server)
    assert b"Subject: small" in retr_bytes(other, 2)
    other.quit()
    served_in = time.monotonic() - t0
    grown = rss_kb(server.proc.pid) - before
    assert served_in < 5, served_in
    # The message is read in pieces (store_stream), so the server holds one
    # piece, a bounded output queue (max_output_buffer, 1 MB), the readers'
    # SQLite page cache and first-touched pool stacks: measured about 6 MB,
    # not the 25 MB message. (ASan's quarantine keeps freed memory
    # resident: no figure to check under `make sanitize`.)
    if not sanitized(server):
        assert grown < 12 * 1024, f"server grew by {grown} KB during a 25 MB RETR"
    h = hashlib.sha256()
    data = r.buf
    line_end = data.index(b"\r\n") if b"\r\n" in data else -1
    while line_end < 0:
        data += sock.recv(1 << 16)
        line_end = data.index(b"\r\n") if b"\r\n" in data else -1
    assert data[:line_end] == b"+OK %d octets" % len(stored)
    data = data[line_end + 2:]
    tail = b""
    while True:
        h.update(data)
        tail = (tail + data)[-5:]
        if tail == b"\r\n.\r\n":
            break
        data = sock.recv(1 << 20)
        assert data, "connection closed mid-RETR"
    assert h.hexdigest() == want


def test_pop3_listeners_are_served(pop):
    assert "listener-unavailable kind=pop3" not in pop.log_text()


def test_stalled_reader_is_dropped_and_does_not_block_stop(make_server):
    server = make_server(kinds=KINDS, extra={"limits": {"idle_timeout": "1"}})
    huge = b"Subject: huge\r\n\r\n" + b"".join(b"%070d\r\n" % i for i in range(12 * 1024 * 1024 // 72))
    deliver(server, huge)

    def stalled():
        s = socket.create_connection(("127.0.0.1", server.port("pop3s")))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        r = Pop.__new__(Pop)
        r.sock = ctx(server).wrap_socket(s, server_hostname="mail.example.test")
        r.buf = b""
        r.line()
        r.ok(f"USER {USER}")
        r.ok(f"PASS {USER_PW}", "+OK")
        r.send("RETR 1\r\n")
        return r

    # A reader that stops: dropped after about two idle timeouts.
    r = stalled()
    time.sleep(3.5)
    assert "event=pop3-stalled" in server.log_text()
    got = 0
    r.sock.settimeout(15)
    try:
        while True:
            chunk = r.sock.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
    except (ssl.SSLError, OSError):
        pass
    assert got < len(huge)
    # Another one is still stalled when the server is told to stop: the
    # stop does not wait for it (the linger bounds the close).
    r = stalled()
    time.sleep(0.5)
    t0 = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - t0 < 15
    assert len(messages(server.env, USER)) == 1
