"""IMAP against a real petreld with Python's imaplib (plain + STARTTLS,
IMAPS), raw sockets for the edge cases, curl imap://, mbsync and fetchmail.
Mail arrives by SMTP first, so every test crosses SMTP -> store -> IMAP."""

import imaplib
import os
import re
import smtplib
import socket
import ssl
import subprocess
import time
import zlib

import pytest

from conftest import USER, USER_PW, USER2, USER2_PW, HOSTNAME, messages

KINDS = ("smtp", "submission", "imap", "imaps")


@pytest.fixture
def imap_server(make_server):
    return make_server(kinds=KINDS)


def deliver(srv, rcpt, subject="hello", body="Hello there.\r\n", extra_headers=""):
    msg = (f"From: Carol <carol@remote.test>\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
           f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{time.time_ns()}@remote.test>\r\n"
           f"{extra_headers}\r\n{body}")
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=10) as s:
        s.sendmail("carol@remote.test", [rcpt], msg.encode())
    return msg.encode()


def login(srv, user=USER, pw=USER_PW):
    c = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=10)
    c.starttls(ssl_context=srv.ssl_context())
    typ, _ = c.login(user, pw)
    assert typ == "OK"
    return c


class Raw:
    """A line-level IMAP client for what imaplib cannot send."""

    def __init__(self, srv, tls=True):
        sock = socket.create_connection(("127.0.0.1", srv.port("imaps" if tls else "imap")),
                                        timeout=10)
        if tls:
            ctx = ssl.create_default_context(cafile=srv.cafile)
            sock = ctx.wrap_socket(sock, server_hostname=HOSTNAME)
        self.sock = sock
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def cmd(self, tag, text):
        """Sends one command; returns (untagged lines, tagged line)."""
        self.send(f"{tag} {text}\r\n")
        return self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            ln = self.line()
            if ln.startswith(tag + " "):
                return lines, ln
            lines.append(ln)

    def login(self, user=USER, pw=USER_PW):
        _, t = self.cmd("L", f'LOGIN "{user}" "{pw}"')
        assert t.startswith("L OK"), t

    def close(self):
        self.sock.close()


# ----------------------------------------------------------------- login


def test_greeting_capability_and_logindisabled(imap_server):
    r = Raw(imap_server, tls=False)
    assert r.greeting.startswith("* OK [CAPABILITY IMAP4rev1")
    assert "STARTTLS" in r.greeting and "LOGINDISABLED" in r.greeting
    _, t = r.cmd("a", f'LOGIN "{USER}" "{USER_PW}"')
    assert t.startswith("a NO [PRIVACYREQUIRED]"), t
    _, t = r.cmd("b", "SELECT INBOX")
    assert t.startswith("b BAD"), t
    r.close()


def test_login_starttls_and_imaps(imap_server):
    c = login(imap_server)
    typ, caps = c.capability()
    assert b"IDLE" in caps[0] and b"UIDPLUS" in caps[0] and b"MOVE" in caps[0]
    c.logout()
    with imaplib.IMAP4_SSL("127.0.0.1", imap_server.port("imaps"),
                           ssl_context=imap_server.ssl_context(), timeout=10) as c:
        assert c.login(USER2, USER2_PW)[0] == "OK"
        typ, data = c.select("INBOX")
        assert typ == "OK" and data == [b"0"]


def test_wrong_password_and_authenticate_plain(imap_server):
    with imaplib.IMAP4_SSL("127.0.0.1", imap_server.port("imaps"),
                           ssl_context=imap_server.ssl_context(), timeout=10) as c:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            c.login(USER, "wrong password")
        typ, _ = c.authenticate("PLAIN", lambda _: f"\0{USER}\0{USER_PW}".encode())
        assert typ == "OK"
        assert c.state == "AUTH"


def test_sasl_ir_and_cancel(imap_server):
    import base64
    ir = base64.b64encode(f"\0{USER}\0{USER_PW}".encode()).decode()
    r = Raw(imap_server)
    r.send("a AUTHENTICATE PLAIN\r\n")
    assert r.line().startswith("+")
    r.send("*\r\n")
    _, t = r.until("a")
    assert t.startswith("a BAD"), t
    _, t = r.cmd("b", f"AUTHENTICATE PLAIN {ir}")
    assert t.startswith("b OK [CAPABILITY IMAP4rev1"), t
    r.close()


# ----------------------------------------------------------------- fetch


def test_smtp_delivery_fetched_byte_exact(imap_server):
    deliver(imap_server, USER, subject="byte exact", body="line one\r\n.dot line\r\n\r\nend\r\n")
    stored = messages(imap_server.env, USER)[-1][1]
    c = login(imap_server)
    typ, data = c.select("INBOX")
    assert data == [b"1"]
    typ, data = c.fetch("1", "(BODY.PEEK[] RFC822.SIZE FLAGS)")
    assert typ == "OK"
    assert data[0][1] == stored
    assert f"RFC822.SIZE {len(stored)}".encode() in data[0][0]
    assert b"FLAGS ()" in data[0][0]
    # A non-PEEK fetch sets \Seen and says so.
    typ, data = c.fetch("1", "(BODY[TEXT])")
    assert data[0][1] == b"line one\r\n.dot line\r\n\r\nend\r\n"
    assert b"\\Seen" in data[0][0]
    typ, data = c.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0]
    c.logout()


def test_fetch_envelope_bodystructure_sections(imap_server):
    mixed = ("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n",
             "--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nfirst part\r\n"
             "--XX\r\nContent-Type: application/octet-stream\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--XX--\r\n")
    deliver(imap_server, USER, subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?=", body=mixed[1],
            extra_headers=mixed[0])
    c = login(imap_server)
    c.select("INBOX")
    typ, data = c.fetch("1", "(ENVELOPE BODYSTRUCTURE UID)")
    head = data[0] if isinstance(data[0], bytes) else data[0][0]
    assert b'"=?utf-8?q?Gr=C3=BC=C3=9Fe?="' in head
    assert b'(("Carol" NIL "carol" "remote.test"))' in head
    assert b'"MIXED"' in head.upper() and b'"OCTET-STREAM"' in head.upper()
    typ, data = c.fetch("1", "(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (Subject)]"
                             " BODY.PEEK[]<0.10>)")
    values = [d[1] for d in data if isinstance(d, tuple)]
    assert b"first part" in values[0]
    assert values[1].startswith(b"Content-Type: application/octet-stream")
    assert values[2] == b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"
    assert values[3] == b"Return-Pat"
    c.logout()


def test_uid_fetch_and_invalid_sets(imap_server):
    for i in range(3):
        deliver(imap_server, USER, subject=f"n{i}")
    r = Raw(imap_server)
    r.login()
    lines, t = r.cmd("s", "SELECT INBOX")
    assert "* 3 EXISTS" in lines and t.startswith("s OK [READ-WRITE]")
    lines, t = r.cmd("f", "UID FETCH 2:* (FLAGS)")
    assert t.startswith("f OK") and len(lines) == 2 and all("UID" in ln for ln in lines)
    _, t = r.cmd("g", "FETCH 4 (FLAGS)")
    assert t.startswith("g BAD"), t
    _, t = r.cmd("h", "FETCH 0:1 (FLAGS)")
    assert t.startswith("h BAD"), t
    lines, t = r.cmd("i", "UID FETCH 100:200 (FLAGS)")
    assert t.startswith("i OK") and lines == []
    _, t = r.cmd("j", "FETCH 1 (BOGUS)")
    assert t.startswith("j BAD"), t
    r.close()


# ----------------------------------------------------------------- mailboxes


def test_list_create_rename_delete_status(imap_server):
    c = login(imap_server)
    typ, data = c.list()
    names = [d.decode() for d in data]
    assert any(n.endswith('"/" INBOX') or n.endswith('"/" "INBOX"') for n in names)
    assert any("\\Sent" in n and "Sent" in n for n in names)
    assert c.create("Projects/2026/Q4")[0] == "OK"
    typ, data = c.list('""', "Projects/%")
    assert typ == "OK" and any(b"Projects/2026" in d and b"\\HasChildren" in d for d in data)
    assert c.create("Projects")[0] == "NO"  # made as a parent already
    assert c.rename("Projects", "Work")[0] == "OK"
    typ, data = c.list('""', "*")
    text = b"\n".join(data)
    assert b"Work/2026/Q4" in text and b"Projects" not in text
    assert c.create("Gr&APwA3w-e")[0] == "OK"
    typ, data = c.list('""', "Gr*")
    assert b"Gr&APwA3w-e" in data[0]
    typ, data = c.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)")
    assert typ == "OK" and b"MESSAGES 0" in data[0] and b"UIDNEXT 1" in data[0]
    assert c.delete("Work/2026/Q4")[0] == "OK"
    typ, data = c.select("Work/2026/Q4")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    assert c.delete("INBOX")[0] == "NO"
    assert c.subscribe("Work")[0] == "OK"
    typ, data = c.lsub('""', "*")
    assert any(b"Work" in d for d in data)
    assert c.unsubscribe("Work")[0] == "OK"
    c.logout()


def test_append_copy_move_expunge(imap_server):
    c = login(imap_server)
    msg = b"From: a@example.test\r\nSubject: appended\r\n\r\nbody\r\n"
    typ, data = c.append("Drafts", "(\\Draft $Label1)", '"01-Dec-2026 12:00:00 +0000"', msg)
    assert typ == "OK" and b"APPENDUID" in data[0]
    typ, data = c.append("Nope", None, None, msg)
    assert typ == "NO" and b"TRYCREATE" in data[0]
    c.select("Drafts")
    typ, data = c.fetch("1", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert b"\\Draft" in data[0][0] and b"$Label1" in data[0][0]
    assert b'"01-Dec-2026 12:00:00 +0000"' in data[0][0]
    assert data[0][1] == msg
    typ, data = c.copy("1", "Archive")
    assert typ == "OK" and b"COPYUID" in data[0]
    typ, data = c.uid("MOVE", "1", "Trash")
    assert typ == "OK"
    typ, data = c.select("Drafts")
    assert data == [b"0"]
    c.select("Trash")
    c.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = c.expunge()
    assert typ == "OK" and data == [b"1"]
    typ, data = c.status("Archive", "(MESSAGES)")
    assert b"MESSAGES 1" in data[0]
    c.logout()


def test_store_and_search(imap_server):
    deliver(imap_server, USER, subject="Quarterly report", body="The numbers are in.\r\n")
    deliver(imap_server, USER, subject="Lunch?", body="Pizza at noon\r\n")
    deliver(imap_server, USER, subject="Re: Quarterly report", body="Thanks for the numbers\r\n")
    c = login(imap_server)
    c.select("INBOX")
    typ, data = c.store("2", "+FLAGS", "(\\Flagged)")
    assert typ == "OK" and b"\\Flagged" in data[0]
    assert c.search(None, "FLAGGED") == ("OK", [b"2"])
    assert c.search(None, "UNFLAGGED") == ("OK", [b"1 3"])
    assert c.search(None, "SUBJECT", "quarterly") == ("OK", [b"1 3"])
    assert c.search(None, "BODY", "numbers") == ("OK", [b"1 3"])
    assert c.search(None, "TEXT", "pizza") == ("OK", [b"2"])
    assert c.search(None, "OR", "FLAGGED", "BODY", "thanks") == ("OK", [b"2 3"])
    assert c.search(None, "NOT", "SUBJECT", "report") == ("OK", [b"2"])
    assert c.search(None, "FROM", "carol", "2:3") == ("OK", [b"2 3"])
    assert c.search(None, "HEADER", "Message-ID", "remote.test") == ("OK", [b"1 2 3"])
    assert c.search(None, "SENTON", "1-Dec-2026") == ("OK", [b"1 2 3"])
    assert c.search(None, "SENTBEFORE", "1-Dec-2026") == ("OK", [b""])
    assert c.search(None, "LARGER", "1") == ("OK", [b"1 2 3"])
    typ, data = c.uid("SEARCH", "UNSEEN")
    assert typ == "OK" and len(data[0].split()) == 3
    typ, data = c.search("UTF-8", "SUBJECT", "lunch")
    assert data == [b"2"]
    typ, data = c.search("KOI8-R", "SUBJECT", "lunch")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    c.store("1:3", "FLAGS.SILENT", "(\\Seen)")
    assert c.search(None, "SEEN") == ("OK", [b"1 2 3"])
    c.logout()


def test_esearch(imap_server):
    for i in range(4):
        deliver(imap_server, USER, subject=f"m{i}")
    r = Raw(imap_server)
    r.login()
    r.cmd("s", "SELECT INBOX")
    lines, t = r.cmd("e", "SEARCH RETURN (MIN MAX COUNT) ALL")
    assert lines == ['* ESEARCH (TAG "e") MIN 1 MAX 4 COUNT 4'] and t.startswith("e OK")
    lines, t = r.cmd("u", "UID SEARCH RETURN () 2:3")
    assert lines == ['* ESEARCH (TAG "u") UID ALL 2:3'], lines
    r.close()


# ----------------------------------------------------------------- sessions


def test_two_sessions_see_flags_and_expunges(imap_server):
    for i in range(3):
        deliver(imap_server, USER, subject=f"s{i}")
    a, b = Raw(imap_server), Raw(imap_server)
    a.login()
    b.login()
    a.cmd("s", "SELECT INBOX")
    b.cmd("s", "SELECT INBOX")
    _, t = a.cmd("1", "STORE 2 +FLAGS (\\Deleted)")
    assert t.startswith("1 OK")
    lines, _ = b.cmd("n", "NOOP")
    assert any(re.match(r"\* 2 FETCH \(UID 2 FLAGS \(\\Deleted\)\)", ln) for ln in lines), lines
    lines, _ = a.cmd("x", "EXPUNGE")
    assert lines == ["* 2 EXPUNGE"], lines
    # b is told during NOOP, but not during FETCH (RFC 9051 §7.5.1).
    lines, _ = b.cmd("f", "FETCH 1:3 (UID)")
    assert not any("EXPUNGE" in ln for ln in lines) and len(lines) == 2, lines
    lines, _ = b.cmd("n2", "NOOP")
    assert lines == ["* 2 EXPUNGE"], lines
    lines, _ = b.cmd("f2", "FETCH 1:* (UID)")
    assert [re.search(r"UID (\d+)", ln).group(1) for ln in lines] == ["1", "3"]
    a.close()
    b.close()


def test_idle_sees_delivery_within_a_second(imap_server):
    r = Raw(imap_server)
    r.login()
    r.cmd("s", "SELECT INBOX")
    r.send("i IDLE\r\n")
    assert r.line().startswith("+ ")
    t0 = time.monotonic()
    deliver(imap_server, USER, subject="wake up")
    r.sock.settimeout(1.5)
    line = r.line()
    elapsed = time.monotonic() - t0
    assert line == "* 1 EXISTS", line
    assert elapsed < 1.0, elapsed
    r.sock.settimeout(10)
    r.send("DONE\r\n")
    _, t = r.until("i")
    assert t.startswith("i OK")
    r.close()


def test_users_are_isolated(imap_server):
    deliver(imap_server, USER2, subject="for bob only")
    c = login(imap_server)
    typ, data = c.select("INBOX")
    assert data == [b"0"]
    c.create("Private")
    c.logout()
    c = login(imap_server, USER2, USER2_PW)
    typ, data = c.select("INBOX")
    assert data == [b"1"]
    typ, data = c.select("Private")
    assert typ == "NO"
    c.logout()


# ----------------------------------------------------------------- bad input


def test_bad_input(imap_server):
    r = Raw(imap_server)
    _, t = r.cmd("a", "FROB")
    assert t == "a BAD Unknown command", t
    r.send("\r\n")
    assert r.line().startswith("* BAD")
    r.send("b{ NOOP\r\n")
    assert r.line() == "* BAD Invalid tag"
    _, t = r.cmd("c", "SELECT INBOX")
    assert t.startswith("c BAD"), t
    r.login()
    _, t = r.cmd("d", "FETCH 1 FLAGS")
    assert t == "d BAD No mailbox selected", t
    _, t = r.cmd("e", "LOGIN a b")
    assert t == "e BAD Already logged in", t
    # A synchronising literal over the limit is refused before the data.
    r.send("f APPEND INBOX {999999999999}\r\n")
    _, t = r.until("f")
    assert t.startswith("f NO [TOOBIG]") or t.startswith("f BAD [TOOBIG]"), t
    # The session is still usable.
    _, t = r.cmd("g", "NOOP")
    assert t.startswith("g OK")
    r.close()


def test_non_sync_literal_over_limit_closes(imap_server):
    r = Raw(imap_server)
    r.login()
    r.send("a APPEND INBOX {999999999999+}\r\nxx")
    line = r.line()
    assert line.startswith("* BYE") or "BAD" in line, line


def test_too_many_errors(imap_server):
    r = Raw(imap_server)
    lines = []
    for i in range(30):
        try:
            r.send(f"t{i} NONSENSE\r\n")
            lines.append(r.line())
        except (EOFError, OSError):
            break
        if lines[-1].startswith("* BYE"):
            break
    assert lines[-1].startswith("* BYE"), lines[-3:]


# ----------------------------------------------------------------- real clients


def test_curl_imap(imap_server, tmp_path):
    sent = deliver(imap_server, USER, subject="via curl", body="curl body\r\n")
    stored = messages(imap_server.env, USER)[-1][1]
    assert stored.endswith(sent)
    url = f"imaps://{HOSTNAME}:{imap_server.port('imaps')}/INBOX;UID=1"
    out = tmp_path / "msg"
    r = subprocess.run(["curl", "-sS", "--cacert", imap_server.cafile, "--resolve",
                        f"{HOSTNAME}:{imap_server.port('imaps')}:127.0.0.1",
                        "--user", f"{USER}:{USER_PW}", "-o", str(out), url],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == stored
    # STARTTLS on 143 with --ssl-reqd, listing mailboxes.
    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", imap_server.cafile, "--resolve",
                        f"{HOSTNAME}:{imap_server.port('imap')}:127.0.0.1",
                        "--user", f"{USER}:{USER_PW}",
                        f"imap://{HOSTNAME}:{imap_server.port('imap')}/"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "Sent" in r.stdout and "INBOX" in r.stdout


def test_mbsync_two_way(imap_server, tmp_path):
    for i in range(3):
        deliver(imap_server, USER, subject=f"sync {i}", body=f"body {i}\r\n")
    maildir = tmp_path / "mail"
    maildir.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount petrel
Host 127.0.0.1
Port {imap_server.port('imaps')}
User {USER}
Pass "{USER_PW}"
SSLType IMAPS
CertificateFile {imap_server.cafile}
SystemCertificates no

IMAPStore remote
Account petrel

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX Archive
Create Both
Expunge Both
SyncState *
""")
    def run():
        r = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr

    run()
    new = list((maildir / "INBOX" / "new").iterdir()) + list((maildir / "INBOX" / "cur").iterdir())
    assert len(new) == 3
    stored = {raw for _, raw in messages(imap_server.env, USER)}
    # mbsync stores LF line ends and adds its X-TUID tracking field.
    local = {re.sub(rb"X-TUID: [^\n]*\n", b"", p.read_bytes()).replace(b"\n", b"\r\n")
             for p in new}
    assert local == stored
    # Local changes go up: one message marked seen, one deleted, one new in Archive.
    cur = maildir / "INBOX" / "cur"
    first, second = sorted(new)[:2]
    first.rename(cur / (first.name.split(":")[0] + ":2,S"))
    second.unlink()
    (maildir / "Archive" / "new").mkdir(parents=True, exist_ok=True)
    (maildir / "Archive" / "new" / "1.local").write_bytes(
        b"From: me@example.test\r\nSubject: filed\r\n\r\nkept\r\n")
    run()
    c = login(imap_server)
    typ, data = c.select("INBOX")
    assert data == [b"2"]
    assert c.search(None, "SEEN")[1] == [b"1"]
    typ, data = c.select("Archive")
    assert data == [b"1"]
    c.logout()
    # And remote changes come down.
    deliver(imap_server, USER, subject="after sync")
    run()
    files = list((maildir / "INBOX" / "new").iterdir()) + list(cur.iterdir())
    assert len(files) == 3


def test_fetchmail_imap(imap_server, tmp_path):
    for i in range(4):
        deliver(imap_server, USER2, subject=f"fm {i}")
    out = tmp_path / "out.mbox"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f"""set no syslog
poll 127.0.0.1 protocol IMAP port {imap_server.port('imaps')}
  user "{USER2}" password "{USER2_PW}" is "tester" here
  ssl sslcertck sslcertfile {imap_server.cafile} sslcommonname {HOSTNAME}
  keep
  mda "/bin/sh -c 'cat >> {out}'"
""")
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    r = subprocess.run(["fetchmail", "-f", str(rc), "-v", "--nodetach"], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    text = out.read_text()
    assert all(f"Subject: fm {i}" in text for i in range(4))
    # keep: still on the server, now \Seen.
    c = login(imap_server, USER2, USER2_PW)
    c.select("INBOX")
    assert c.search(None, "SEEN")[1] == [b"1 2 3 4"]
    c.logout()


# ----------------------------------------------------------------- CONDSTORE / QRESYNC


def modseq_of(line):
    return int(re.search(r"MODSEQ \(?(\d+)", line).group(1))


def test_condstore(imap_server):
    for i in range(4):
        deliver(imap_server, USER, subject=f"c{i}")
    r = Raw(imap_server)
    r.login()
    lines, t = r.cmd("s", "SELECT INBOX (CONDSTORE)")
    hms = int(re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(lines)).group(1))
    lines, t = r.cmd("f", f"FETCH 1:* (UID FLAGS) (CHANGEDSINCE {hms})")
    assert lines == [] and t.startswith("f OK")
    # A silent STORE still reports the new MODSEQ once CONDSTORE is on.
    lines, _ = r.cmd("st", "STORE 2 +FLAGS.SILENT (\\Seen)")
    assert len(lines) == 1 and re.match(r"\* 2 FETCH \(MODSEQ \(\d+\)\)", lines[0]), lines
    m2 = modseq_of(lines[0])
    assert m2 > hms
    lines, _ = r.cmd("f2", f"FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})")
    assert len(lines) == 1 and lines[0].startswith("* 2 FETCH") and "\\Seen" in lines[0]
    assert modseq_of(lines[0]) == m2
    # Conditional STORE: message 2 changed after hms, so it fails.
    lines, t = r.cmd("c", f"UID STORE 1,2 (UNCHANGEDSINCE {hms}) +FLAGS (\\Flagged)")
    assert "[MODIFIED 2]" in t, t
    assert len(lines) == 1 and lines[0].startswith("* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ")
    lines, t = r.cmd("z", "STORE 3 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)")
    assert "[MODIFIED 3]" in t and lines == []
    lines, _ = r.cmd("q", f"SEARCH MODSEQ {hms + 1}")
    assert re.match(r"\* SEARCH 1 2 \(MODSEQ \d+\)$", lines[0]), lines
    lines, _ = r.cmd("st2", "STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
    assert modseq_of(lines[0].replace("HIGHESTMODSEQ", "MODSEQ")) >= m2
    r.close()


def test_qresync(imap_server):
    for i in range(4):
        deliver(imap_server, USER, subject=f"q{i}")
    a, b = Raw(imap_server), Raw(imap_server)
    a.login()
    b.login()
    lines, _ = b.cmd("e", "ENABLE QRESYNC")
    assert lines == ["* ENABLED CONDSTORE QRESYNC"]
    lines, _ = b.cmd("s", "SELECT INBOX")
    uidvalidity = int(re.search(r"UIDVALIDITY (\d+)", "\n".join(lines)).group(1))
    hms = int(re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(lines)).group(1))
    b.cmd("u", "UNSELECT")
    a.cmd("s", "SELECT INBOX")
    a.cmd("1", "STORE 1 +FLAGS (\\Answered)")
    a.cmd("2", "STORE 3 +FLAGS (\\Deleted)")
    a.cmd("3", "EXPUNGE")
    lines, t = b.cmd("s2", f"SELECT INBOX (QRESYNC ({uidvalidity} {hms} 1:4))")
    assert "* VANISHED (EARLIER) 3" in lines, lines
    fetches = [ln for ln in lines if " FETCH " in ln]
    assert len(fetches) == 1 and "UID 1 " in fetches[0] and "\\Answered" in fetches[0]
    assert "MODSEQ" in fetches[0]
    # Once QRESYNC is on, expunges arrive as VANISHED.
    a.cmd("4", "UID STORE 4 +FLAGS (\\Deleted)")
    a.cmd("5", "UID EXPUNGE 4")
    lines, _ = b.cmd("n", "NOOP")
    assert "* VANISHED 4" in lines, lines
    lines, _ = b.cmd("v", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert lines[0] == "* VANISHED (EARLIER) 3:4", lines
    # A stale UIDVALIDITY gets a plain SELECT.
    lines, t = b.cmd("s3", f"SELECT INBOX (QRESYNC (1 {hms}))")
    assert not any("VANISHED" in ln for ln in lines) and t.startswith("s3 OK")
    _, t = a.cmd("x", f"SELECT INBOX (QRESYNC ({uidvalidity} {hms}))")
    assert t.startswith("x BAD"), t  # a has not enabled QRESYNC
    a.close()
    b.close()


# ----------------------------------------------------------------- COMPRESS=DEFLATE


class Deflated:
    """The rest of a Raw session after COMPRESS DEFLATE: raw deflate both ways,
    one Z_SYNC_FLUSH per send, as RFC 4978 clients do."""

    def __init__(self, raw):
        self.r = raw
        self.z_out = zlib.compressobj(wbits=-15)
        self.z_in = zlib.decompressobj(wbits=-15)
        self.plain = self.z_in.decompress(raw.buf)  # bytes read past the OK
        raw.buf = b""

    def packed(self, text):
        return self.z_out.compress(text.encode()) + self.z_out.flush(zlib.Z_SYNC_FLUSH)

    def send(self, text):
        self.r.sock.sendall(self.packed(text))

    def line(self):
        while b"\r\n" not in self.plain:
            chunk = self.r.sock.recv(65536)
            if not chunk:
                raise EOFError(self.plain)
            self.plain += self.z_in.decompress(chunk)
        line, self.plain = self.plain.split(b"\r\n", 1)
        return line

    def literal(self, n):
        while len(self.plain) < n:
            self.plain += self.z_in.decompress(self.r.sock.recv(65536))
        data, self.plain = self.plain[:n], self.plain[n:]
        return data

    def until(self, tag):
        lines = []
        while True:
            ln = self.line().decode(errors="replace")
            if ln.startswith(tag + " "):
                return lines, ln
            lines.append(ln)


def test_compress_deflate(imap_server):
    big = "".join(f"line {i:06d} of a long message body\r\n" for i in range(4000))
    deliver(imap_server, USER, subject="big", body=big)
    stored = messages(imap_server.env, USER)[-1][1]
    r = Raw(imap_server)
    r.login()
    # The client compresses from the byte after its COMPRESS command; a command
    # pipelined in the same packet must be inflated, not read as plaintext.
    z = zlib.compressobj(wbits=-15)
    r.send(b"c COMPRESS DEFLATE\r\n" + z.compress(b"n NOOP\r\n") + z.flush(zlib.Z_SYNC_FLUSH))
    assert r.line() == "c OK DEFLATE active"
    d = Deflated(r)
    d.z_out = z
    assert d.until("n")[1] == "n OK NOOP completed"
    # A command split over two flushes, the second sent later: the server
    # must not wait for more than was sent, nor act before the line is whole.
    d.send("s SELE")
    time.sleep(0.3)
    d.send("CT INBOX\r\n")
    lines, t = d.until("s")
    assert "* 1 EXISTS" in lines and t.startswith("s OK"), (lines, t)
    d.send("f FETCH 1 BODY.PEEK[]\r\n")
    head = d.line().decode()
    n = int(re.search(r"\{(\d+)\}$", head).group(1))
    assert d.literal(n) == stored
    assert d.line() == b")"
    assert d.until("f")[1].startswith("f OK")
    d.send("c2 COMPRESS DEFLATE\r\n")
    assert "COMPRESSIONACTIVE" in d.until("c2")[1]
    d.send("l LOGOUT\r\n")
    lines, t = d.until("l")
    assert lines == ["* BYE Logging out"] and t.startswith("l OK")


def test_list_extended_and_status(imap_server):
    deliver(imap_server, USER, subject="counted")
    r = Raw(imap_server)
    r.login()
    r.cmd("c", "CREATE Projects/2026/Q4")
    r.cmd("s1", "SUBSCRIBE Projects/2026/Q4")
    r.cmd("s2", "SUBSCRIBE Gone/Away")
    lines, t = r.cmd("a", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
    assert '* LIST (\\HasChildren) "/" "Projects" ("CHILDINFO" ("SUBSCRIBED"))' in lines, lines
    assert '* LIST (\\NonExistent \\HasNoChildren) "/" "Gone" ("CHILDINFO" ("SUBSCRIBED"))' in lines
    assert '* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"' in lines
    lines, t = r.cmd("b", 'LIST "" (INBOX Sent) RETURN (STATUS (MESSAGES UIDNEXT) SPECIAL-USE)')
    assert lines == ['* LIST (\\HasNoChildren) "/" "INBOX"',
                     '* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2)',
                     '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
                     '* STATUS "Sent" (MESSAGES 0 UIDNEXT 1)'], lines
    lines, _ = r.cmd("c2", 'LIST (SPECIAL-USE) "" *')
    assert sorted(ln.split()[-1] for ln in lines) == ['"Archive"', '"Drafts"', '"Junk"',
                                                       '"Sent"', '"Trash"']
    lines, _ = r.cmd("d", 'LIST (SUBSCRIBED) "" *')
    assert '* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" "Gone/Away"' in lines
    assert not any(ln.endswith('"Gone"') for ln in lines), lines
    lines, _ = r.cmd("e", 'LSUB "" %')
    assert '* LSUB (\\Noselect \\HasNoChildren) "/" "Gone"' in lines, lines
    _, t = r.cmd("f", 'LIST (RECURSIVEMATCH) "" *')
    assert t.startswith("f BAD"), t
    _, t = r.cmd("g", 'LIST "" * RETURN (BOGUS)')
    assert t.startswith("g BAD"), t
    r.close()


# ----------------------------------------------------------------- more limits


def test_plain_login_on_loopback_when_allowed(make_server):
    srv = make_server(kinds=KINDS, extra={"auth": {"plaintext_on_loopback": "yes"}})
    deliver(srv, USER, subject="plain")
    with imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=10) as c:
        assert b"LOGINDISABLED" not in c.capabilities and "LOGINDISABLED" not in c.capabilities
        assert c.login(USER, USER_PW)[0] == "OK"
        assert c.select("INBOX") == ("OK", [b"1"])


def test_preauth_timeout(make_server):
    srv = make_server(kinds=KINDS, extra={"limits": {"preauth_timeout": "1"}})
    r = Raw(srv)
    r.sock.settimeout(5)
    t0 = time.monotonic()
    assert r.line().startswith("* BYE")
    assert time.monotonic() - t0 < 4
    with pytest.raises((EOFError, OSError)):
        r.line()


def test_append_over_quota(make_server, petrel_env):
    srv = make_server(kinds=KINDS)
    petrel_env.ctl_ok("user", "quota", USER, "2K")
    r = Raw(srv)
    r.login()
    body = b"Subject: big\r\n\r\n" + b"x" * 4000 + b"\r\n"
    r.send(f"a APPEND INBOX {{{len(body)}+}}\r\n".encode() + body + b"\r\n")
    _, t = r.until("a")
    assert t.startswith("a NO [OVERQUOTA]"), t
    lines, t = r.cmd("q", "GETQUOTAROOT INBOX")
    assert '* QUOTAROOT "INBOX" ""' in lines and '* QUOTA "" (STORAGE 0 2)' in lines, lines
    r.close()


def test_pipelined_commands(imap_server):
    for i in range(3):
        deliver(imap_server, USER, subject=f"p{i}")
    a, b = Raw(imap_server), Raw(imap_server)
    a.login()
    b.login()
    a.cmd("s", "SELECT INBOX")
    b.cmd("s", "SELECT INBOX")
    b.cmd("d", "STORE 1 +FLAGS (\\Deleted)")
    b.cmd("x", "EXPUNGE")
    # One packet: numbers must mean what the client last knew until it is told.
    a.send("1 FETCH 3 (UID)\r\n2 STORE 2 +FLAGS (\\Flagged)\r\n3 SEARCH FLAGGED\r\n4 NOOP\r\n")
    lines, t = a.until("1")
    assert lines == ["* 3 FETCH (UID 3)"] and t.startswith("1 OK"), lines
    lines, t = a.until("2")
    assert lines == ["* 2 FETCH (FLAGS (\\Flagged))"], lines
    lines, t = a.until("3")
    assert lines == ["* SEARCH 2"], lines
    lines, t = a.until("4")
    assert lines == ["* 1 EXPUNGE"], lines
    lines, _ = a.cmd("5", "FETCH 1:* (UID FLAGS)")
    assert lines == ["* 1 FETCH (UID 2 FLAGS (\\Flagged))", "* 2 FETCH (UID 3 FLAGS ())"], lines
    a.close()
    b.close()


def test_scattered_expunges_keep_numbers_right(imap_server):
    for i in range(10):
        deliver(imap_server, USER, subject=f"e{i}")
    a, b = Raw(imap_server), Raw(imap_server)
    a.login()
    b.login()
    a.cmd("s", "SELECT INBOX")
    b.cmd("s", "SELECT INBOX")
    a.cmd("d", "STORE 2,5,6,10 +FLAGS.SILENT (\\Deleted)")
    lines, _ = a.cmd("x", "EXPUNGE")
    # Each EXPUNGE renumbers the rest (RFC 9051 §7.5.1).
    assert lines == ["* 2 EXPUNGE", "* 4 EXPUNGE", "* 4 EXPUNGE", "* 7 EXPUNGE"], lines
    for r in (a, b):
        r.cmd("n", "NOOP")
        lines, _ = r.cmd("f", "FETCH 1:* (UID)")
        assert [int(re.search(r"UID (\d+)", ln).group(1)) for ln in lines] == [1, 3, 4, 7, 8, 9]
        lines, _ = r.cmd("f2", "FETCH 4 (UID)")
        assert lines == ["* 4 FETCH (UID 7)"]
        lines, _ = r.cmd("u", "UID FETCH 5:8 (UID)")
        assert lines == ["* 4 FETCH (UID 7)", "* 5 FETCH (UID 8)"], lines
    deliver(imap_server, USER, subject="after")
    lines, _ = a.cmd("n2", "NOOP")
    assert lines == ["* 7 EXISTS"], lines
    lines, _ = a.cmd("f3", "FETCH 7 (UID)")
    assert lines == ["* 7 FETCH (UID 11)"]
    a.close()
    b.close()


# ----------------------------------------------------------------- SEARCHRES, BINARY, IMAP4rev2


def test_searchres(imap_server):
    for i in range(5):
        deliver(imap_server, USER, subject="keep" if i % 2 else "drop")
    r = Raw(imap_server)
    r.login()
    r.cmd("s", "SELECT INBOX")
    lines, t = r.cmd("a", "SEARCH RETURN (SAVE) SUBJECT keep")
    assert lines == [] and t.startswith("a OK"), lines  # SAVE alone: no ESEARCH
    lines, _ = r.cmd("b", "FETCH $ (UID)")
    assert [ln.split()[1] for ln in lines] == ["2", "4"], lines
    lines, _ = r.cmd("c", "SEARCH UID $ SEEN")
    assert lines == ["* SEARCH"], lines
    r.cmd("d", "STORE $ +FLAGS (\\Deleted)")
    lines, _ = r.cmd("e", "SEARCH DELETED")
    assert lines == ["* SEARCH 2 4"], lines
    lines, _ = r.cmd("f", "SEARCH RETURN (SAVE MIN) ALL")
    lines, _ = r.cmd("g", "UID FETCH $ (UID)")
    assert lines == ["* 1 FETCH (UID 1)"], lines
    r.cmd("x", "SELECT INBOX")  # a new SELECT empties "$"
    lines, _ = r.cmd("h", "FETCH $ (UID)")
    assert lines == [], lines
    r.close()


def test_binary_fetch(imap_server):
    mixed = ("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n",
             "--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
             "--XX\r\nContent-Type: application/octet-stream\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n")
    deliver(imap_server, USER, subject="bin", body=mixed[1], extra_headers=mixed[0])
    r = Raw(imap_server)
    r.login()
    r.cmd("s", "SELECT INBOX")
    r.send("b FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2])\r\n")
    head = r.line()
    assert "BINARY.SIZE[2] 4" in head and head.endswith("BINARY[2] ~{4}"), head
    while len(r.buf) < 4:
        r.buf += r.sock.recv(100)
    assert r.buf[:4] == b"\x00\x01\x02\x03"
    r.buf = r.buf[4:]
    assert r.line() == ")"
    assert r.until("b")[1].startswith("b OK")
    # APPEND with a literal8 (RFC 3516 §4.4) keeps the bytes as sent.
    msg = b"Subject: raw\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01zz\r\n"
    r.send(f"c APPEND INBOX ~{{{len(msg)}+}}\r\n".encode() + msg + b"\r\n")
    assert r.until("c")[1].startswith("c OK [APPENDUID"), "append"
    r.close()
    assert messages(imap_server.env, USER)[-1][1] == msg


def test_imap4rev2(imap_server):
    deliver(imap_server, USER, subject="rev2")
    r = Raw(imap_server)
    assert "IMAP4rev2" in r.greeting
    r.login()
    lines, _ = r.cmd("e", "ENABLE IMAP4rev2")
    assert lines == ["* ENABLED IMAP4rev2"]
    lines, t = r.cmd("s", "SELECT INBOX")
    assert '* LIST () "/" "INBOX"' in lines and not any("RECENT" in ln for ln in lines), lines
    lines, _ = r.cmd("f", "SEARCH ALL")
    assert lines == ['* ESEARCH (TAG "f") ALL 1'], lines
    _, t = r.cmd("c", 'CREATE "Grüße"')
    assert t.startswith("c OK"), t
    lines, _ = r.cmd("l", 'LIST "" "Gr*"')
    assert lines == ['* LIST (\\HasNoChildren) "/" "Grüße"'], lines
    _, t = r.cmd("st", "STATUS INBOX (RECENT)")
    assert t.startswith("st BAD"), t
    r.close()
    # A rev1 client sees the same mailbox in modified UTF-7.
    c = login(imap_server)
    typ, data = c.list('""', "Gr*")
    assert data == [b'(\\HasNoChildren) "/" "Gr&APwA3w-e"'], data
    c.logout()
