"""SMTP inbound (MX) and submission, driven by real clients: smtplib, raw
sockets for exact wire bytes, swaks, curl and msmtp."""

import base64
import hashlib
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import USER, USER2, USER2_PW, USER_PW, body_of, messages
from smtpclient import Raw

MSG = (b"From: Carol <carol@remote.test>\r\n"
       b"To: Alice <alice@example.test>\r\n"
       b"Subject: hello\r\n"
       b"Message-ID: <m1@remote.test>\r\n"
       b"\r\n"
       b"Line one.\r\n"
       b".leading dot kept\r\n"
       b"..two dots\r\n"
       b"8-bit: \xc3\xa9t\xc3\xa9\r\n")


def stuffed(m):
    """Dot-stuffing for DATA (RFC 5321 §4.5.2)."""
    return (b"." if m.startswith(b".") else b"") + m.replace(b"\r\n.", b"\r\n..")


def msg(tag, size=0):
    body = b"x" * size
    return (b"From: a@remote.test\r\nTo: alice@example.test\r\nSubject: " + tag.encode() +
            b"\r\n\r\n" + tag.encode() + b"\r\n" + body + b"\r\n")


def smtp(server, kind="smtp"):
    s = smtplib.SMTP("127.0.0.1", server.port(kind), timeout=10)
    s.ehlo("client.remote.test")
    return s


def submission(server, user=USER, pw=USER_PW, mech="PLAIN"):
    s = smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10)
    s.starttls(context=server.ssl_context())
    s.ehlo("laptop.example.test")
    s.user, s.password = user, pw
    s.auth(mech, s.auth_plain if mech == "PLAIN" else s.auth_login)
    return s


def raw(server, kind="smtp"):
    r = Raw(server.port(kind))
    code, _ = r.reply()
    assert code == 220
    return r


def raw_ehlo(server, kind="smtp"):
    r = raw(server, kind)
    r.expect("EHLO client.remote.test", 250)
    return r


# ------------------------------------------------------------ delivery


def test_mx_delivery_is_byte_exact(server):
    with smtp(server) as s:
        s.sendmail("carol@remote.test", [USER], MSG)
    (uid, stored), = messages(server.env, USER)
    assert uid == 1
    assert body_of(stored) == MSG
    head = stored[:stored.index(b"From: Carol")].decode()
    assert head.startswith("Return-Path: <carol@remote.test>\r\nReceived: from client.remote.test ([127.0.0.1])")
    assert "by mail.example.test (Petrel) with ESMTP id " in head
    assert "for <alice@example.test>;" in head


def test_large_message_hash_matches(server):
    payload = os.urandom(3 * 1024 * 1024)
    text = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    message = b"Subject: big\r\n\r\n" + text
    with smtp(server) as s:
        s.sendmail("carol@remote.test", [USER], message)
    (_, stored), = messages(server.env, USER)
    assert hashlib.sha256(body_of(stored)).digest() == hashlib.sha256(message).digest()


def test_multiple_recipients_share_one_blob(server):
    with smtp(server) as s:
        s.sendmail("carol@remote.test", [USER, USER2], MSG)
    a = messages(server.env, USER)
    b = messages(server.env, USER2)
    assert a[0][1] == b[0][1]
    assert b"for <" not in a[0][1][:400]  # no recipient disclosed with several
    with server.env.db() as db:
        assert db.execute("SELECT count(*), max(refcount) FROM blobs").fetchone() == (1, 2)


def test_alias_catchall_and_plus_addressing(server):
    env = server.env
    env.ctl_ok("alias", "add", "sales@example.test", f"{USER},{USER2}")
    env.ctl_ok("alias", "add", "@example.test", USER2)
    with smtp(server) as s:
        s.sendmail("carol@remote.test", ["sales@example.test"], msg("alias"))
        s.sendmail("carol@remote.test", ["alice+lists@example.test"], msg("plus"))
        s.sendmail("carol@remote.test", ["nobody@example.test"], msg("catchall"))
    subjects = lambda a: [m.split(b"Subject: ")[1].split(b"\r\n")[0] for _, m in messages(env, a)]
    assert subjects(USER) == [b"alias", b"plus"]
    assert subjects(USER2) == [b"alias", b"catchall"]


def test_pipelined_transaction(server):
    r = raw_ehlo(server)
    r.send("MAIL FROM:<carol@remote.test>\r\nRCPT TO:<alice@example.test>\r\n"
           "RCPT TO:<nobody@example.test>\r\nDATA\r\n")
    assert r.reply()[0] == 250
    assert r.reply()[0] == 250
    assert r.reply()[0] == 550
    assert r.reply()[0] == 354
    r.send(stuffed(MSG) + b".\r\nQUIT\r\n")
    code, texts = r.reply()
    assert code == 250 and texts[0].startswith("2.0.0 Ok: queued as ")
    assert r.reply()[0] == 221
    assert body_of(messages(server.env, USER)[0][1]) == MSG


def test_bdat_chunks(server):
    r = raw_ehlo(server)
    r.expect("MAIL FROM:<carol@remote.test> BODY=BINARYMIME", 555)
    r.expect("MAIL FROM:<carol@remote.test>", 250)
    r.expect("RCPT TO:<alice@example.test>", 250)
    part1, part2 = MSG[:37], MSG[37:]
    r.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert r.reply()[0] == 250
    r.expect("DATA", 503, "5.5.1")
    r.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    code, texts = r.reply()
    assert code == 250 and texts[0].startswith("2.0.0")
    assert body_of(messages(server.env, USER)[0][1]) == MSG


def test_bdat_zero_last_and_without_mail(server):
    r = raw_ehlo(server)
    r.send(b"BDAT 5\r\nhello")
    assert r.reply()[0] == 503  # chunk consumed, stream still in step
    r.expect("NOOP", 250)
    r.expect("MAIL FROM:<>", 250)
    r.expect("RCPT TO:<alice@example.test>", 250)
    r.send(b"BDAT 9\r\nSubject: ")
    assert r.reply()[0] == 250
    r.send(b"BDAT 0 LAST\r\n")
    assert r.reply()[0] == 250
    (_, stored), = messages(server.env, USER)
    assert stored.startswith(b"Return-Path: <>\r\n") and stored.endswith(b"Subject: ")


def test_starttls_auth_plain_and_trace(server):
    with submission(server) as s:
        s.sendmail(USER, [USER2], MSG)
    (_, stored), = messages(server.env, USER2)
    head = stored[:600].decode()
    assert "with ESMTPSA id" in head
    assert "(using TLSv1.3 with cipher " in head
    assert f"(authenticated as {USER})" in head
    assert body_of(stored) == MSG


def test_auth_login(server):
    with submission(server, USER2, USER2_PW, mech="LOGIN") as s:
        s.sendmail(USER2, [USER], msg("login"))
    assert len(messages(server.env, USER)) == 1


def test_implicit_tls_submissions(server):
    with smtplib.SMTP_SSL("127.0.0.1", server.port("submissions"), timeout=10,
                          context=server.ssl_context()) as s:
        code, ehlo = s.ehlo("laptop")
        assert code == 250 and b"STARTTLS" not in ehlo and b"AUTH PLAIN" in ehlo
        s.login(USER, USER_PW)
        s.sendmail(USER, [USER2], msg("465"))
    (_, stored), = messages(server.env, USER2)
    assert b"with ESMTPSA" in stored[:500]


def test_submission_requires_auth_and_tls(server):
    r = raw_ehlo(server, "submission")
    code, ehlo = r.cmd("EHLO laptop")
    assert "STARTTLS" in ehlo and not any(t.startswith("AUTH") for t in ehlo)
    r.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0")
    r.expect("AUTH PLAIN " + base64.b64encode(f"\0{USER}\0{USER_PW}".encode()).decode(),
             538, "5.7.11")
    r.expect("AUTH LOGIN", 538, "5.7.11")


def test_mx_port_refuses_auth(server):
    r = raw_ehlo(server)
    r.expect("AUTH PLAIN AGFsaWNlAHg=", 503, "5.5.1")


def test_wrong_password_and_cancel(server):
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        submission(server, USER, "wrong password")
    assert e.value.smtp_code == 535 and e.value.smtp_error.startswith(b"5.7.8")
    r = Raw(server.port("submission"))
    r.reply()
    r.expect("EHLO x", 250)
    r.expect("STARTTLS", 220)
    r.starttls(server.ssl_context())
    r.expect("EHLO x", 250)
    r.expect("AUTH LOGIN", 334)
    r.expect("*", 501, "5.0.0")
    r.expect("AUTH LOGIN", 334)
    r.expect("not base64!!", 501)
    # The line fail2ban matches (docs/configuration.md).
    assert re.search(r" warn c\w+ event=auth-failed service=smtp mech=PLAIN "
                     r"user=alice@example.test peer=127.0.0.1 ", server.log_text())
    assert USER_PW not in server.log_text() and "wrong password" not in server.log_text()


def test_sender_ownership(server):
    with submission(server) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail(USER2, [USER], msg("spoof"))
        assert e.value.smtp_code == 553 and e.value.smtp_error.startswith(b"5.7.1")
        s.sendmail("alice+tag@example.test", [USER2], msg("plus is owned"))
    assert len(messages(server.env, USER2)) == 1


def test_submission_queues_remote_recipients(server):
    with submission(server) as s:
        s.sendmail(USER, ["dave@remote.test", USER2, "Erin@Other.TEST"], msg("out"))
    assert len(messages(server.env, USER2)) == 1
    with server.env.db() as db:
        rows = db.execute("SELECT mail_from, rcpt, domain FROM queue").fetchall()
    assert sorted((r[1].lower(), r[2]) for r in rows) == [("dave@remote.test", "remote.test"),
                                                  ("erin@other.test", "other.test")]
    assert all(r[0] == USER for r in rows)
    out = server.env.ctl_ok("queue", "list")
    assert "dave@remote.test" in out


def test_relay_denied_on_mx(server):
    r = raw_ehlo(server)
    r.expect("MAIL FROM:<carol@remote.test>", 250)
    r.expect("RCPT TO:<dave@remote.test>", 554, "5.7.1")
    # Source routes are parsed and ignored (RFC 5321 §4.1.2): never relayed.
    r.expect("RCPT TO:<@example.test:dave@remote.test>", 554, "5.7.1")
    r.expect("RCPT TO:<@remote.test:alice@example.test>", 250)
    r.expect("RCPT TO:<alice%remote.test@example.test>", 550, "5.1.1")


def test_unknown_recipient_and_postmaster(server):
    server.env.ctl_ok("alias", "add", "postmaster@example.test", USER)
    r = raw_ehlo(server)
    r.expect("MAIL FROM:<>", 250)
    r.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
    r.expect("RCPT TO:<Postmaster>", 250)
    r.expect("RCPT TO:<\"quoted local\"@example.test>", 550, "5.1.1")


def test_size_limits(make_server):
    server = make_server(extra={"limits": {"max_message_size": "10K"}})
    r = raw_ehlo(server)
    code, ehlo = r.cmd("EHLO x")
    assert "SIZE 10240" in ehlo
    r.expect("MAIL FROM:<carol@remote.test> SIZE=20000", 552, "5.3.4")
    r.expect("MAIL FROM:<carol@remote.test>", 250)
    r.expect("RCPT TO:<alice@example.test>", 250)
    r.expect("DATA", 354)
    r.send(msg("big", 20000) + b".\r\n")
    code, texts = r.reply()
    assert code == 552 and texts[0].startswith("5.3.4")
    r.expect("NOOP", 250)
    assert messages(server.env, USER) == []


def test_quota(server):
    env = server.env
    env.ctl_ok("user", "quota", USER, "3K")
    r = raw_ehlo(server)
    r.expect("MAIL FROM:<carol@remote.test> SIZE=5000", 250)
    r.expect("RCPT TO:<alice@example.test>", 552, "5.2.2")
    r.expect("RSET", 250)
    with smtp(server) as s:
        s.sendmail("carol@remote.test", [USER], msg("fills", 2500))
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("carol@remote.test", [USER], msg("over", 1000))
        code, text = e.value.recipients[USER]
        assert code == 452 and text.startswith(b"4.2.2")
    assert len(messages(env, USER)) == 1


def test_too_many_recipients(make_server):
    server = make_server(extra={"limits": {"max_recipients": "2"}})
    r = raw_ehlo(server)
    r.expect("MAIL FROM:<carol@remote.test>", 250)
    r.expect("RCPT TO:<alice@example.test>", 250)
    r.expect("RCPT TO:<bob@example.test>", 250)
    r.expect("RCPT TO:<alice+x@example.test>", 452, "4.5.3")


def test_bad_sequence_and_syntax(make_server):
    server = make_server(extra={"limits": {"max_errors": "50"}})
    r = raw(server)
    r.expect("MAIL FROM:<carol@remote.test>", 503, "5.5.1")
    r.expect("EHLO", 501, "5.5.4")
    r.expect("EHLO client", 250)
    r.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
    r.expect("DATA", 503, "5.5.1")
    r.expect("MAIL FROM:carol@remote.test", 501, "5.1.7")
    r.expect("MAIL FROM:<carol@@remote.test>", 501)
    r.expect("MAIL FROM:<carol@remote.test> FOO=BAR", 555, "5.5.4")
    r.expect("MAIL FROM:<carol@remote.test>", 250)
    r.expect("MAIL FROM:<carol@remote.test>", 503, "5.5.1")
    r.expect("DATA", 554)
    r.expect("RSET", 250, "2.0.0")
    r.expect("FROB", 500, "5.5.2")
    r.expect("NOOP", 250)
    r.expect("VRFY alice", 252, "2.5.2")
    r.expect("EXPN staff", 502)
    assert r.cmd("HELP")[0] == 214
    r.expect("RSET now", 501, "5.5.4")
    r.expect("QUIT", 221, "2.0.0")
    assert r.closed()


def test_line_too_long_then_recovers(server):
    r = raw_ehlo(server)
    r.expect("NOOP " + "x" * 10000, 500, "5.5.6")
    r.expect("NOOP", 250)


def test_too_many_errors_closes(make_server):
    server = make_server(extra={"limits": {"max_errors": "3"}})
    r = raw(server)
    r.send("FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n")
    assert [r.reply()[0] for _ in range(4)] == [500, 500, 500, 421]
    assert r.closed()


def test_smtputf8(server):
    server.env.ctl_ok("alias", "add", "j\u00f6rg@example.test", USER)
    r = raw_ehlo(server)
    r.expect("MAIL FROM:<s\u00e9n@remote.test>", 553, "5.6.7")
    r.expect("MAIL FROM:<s\u00e9n@remote.test> SMTPUTF8", 250)
    r.expect("RCPT TO:<j\u00f6rg@example.test>", 250)
    r.expect("DATA", 354)
    r.send("Subject: gr\u00fc\u00dfe\r\n\r\nhi\r\n.\r\n".encode())
    assert r.reply()[0] == 250
    (_, stored), = messages(server.env, USER)
    assert b"with UTF8SMTP id" in stored[:400]


# ------------------------------------------------------ smuggling, injection


@pytest.mark.parametrize("ending", [b"\n.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r\n"])
def test_smuggling_refused(server, ending):
    r = raw_ehlo(server)
    r.expect("MAIL FROM:<carol@remote.test>", 250)
    r.expect("RCPT TO:<alice@example.test>", 250)
    r.expect("DATA", 354)
    smuggled = (b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
                b"Subject: smuggled\r\n\r\nevil\r\n")
    r.send(b"Subject: outer\r\n\r\nhi" + ending + smuggled + b".\r\n")
    code, texts = r.reply()
    assert code == 550 and texts[0].startswith("5.6.0"), (code, texts)
    r.expect("NOOP", 250)  # nothing smuggled is pending as a command
    assert messages(server.env, USER) == [] and messages(server.env, USER2) == []


def test_bare_cr_and_lf_inside_lines_refused(server):
    for body in (b"a\rb\r\n", b"a\nb\r\n"):
        r = raw_ehlo(server)
        r.expect("MAIL FROM:<carol@remote.test>", 250)
        r.expect("RCPT TO:<alice@example.test>", 250)
        r.expect("DATA", 354)
        r.send(b"Subject: x\r\n\r\n" + body + b".\r\n")
        assert r.reply()[0] == 550
    assert messages(server.env, USER) == []


def test_starttls_injection_discarded(server):
    r = raw_ehlo(server, "submission")
    r.send("STARTTLS\r\nRSET\r\nMAIL FROM:<evil@remote.test>\r\n")
    code, _ = r.reply()
    assert code == 220
    r.starttls(server.ssl_context())
    # Had the pipelined lines survived, their replies would come first.
    code, texts = r.cmd("EHLO laptop")
    assert code == 250 and texts[0].startswith("mail.example.test"), texts
    r.expect("NOOP", 250)


# ------------------------------------------------------------ real clients


def test_swaks(server):
    swaks = shutil.which("swaks")
    assert swaks, "swaks is installed by scripts/deps.sh"
    r = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(server.port("submission")),
                        "--tls", "--tls-verify", "--tls-ca-path", server.cafile,
                        "--tls-sni", "mail.example.test",
                        "--auth", "PLAIN", "--auth-user", USER, "--auth-password", USER_PW,
                        "--from", USER, "--to", USER2, "--header", "Subject: via swaks",
                        "--helo", "swaks.example.test"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    (_, stored), = messages(server.env, USER2)
    assert b"Subject: via swaks" in stored


def test_curl_smtp(server, tmp_path):
    mail = tmp_path / "mail.eml"
    mail.write_bytes(MSG)
    r = subprocess.run(["curl", "-sS", f"smtp://127.0.0.1:{server.port('smtp')}",
                        "--mail-from", "carol@remote.test", "--mail-rcpt", USER,
                        "--upload-file", str(mail)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (_, stored), = messages(server.env, USER)
    assert body_of(stored) == MSG
    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", server.cafile,
                        "--resolve", f"mail.example.test:{server.port('submission')}:127.0.0.1",
                        f"smtp://mail.example.test:{server.port('submission')}",
                        "--user", f"{USER}:{USER_PW}", "--mail-from", USER, "--mail-rcpt", USER2,
                        "--upload-file", str(mail)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(messages(server.env, USER2)) == 1


def test_msmtp(server, tmp_path):
    rc = tmp_path / "msmtprc"
    rc.write_text(f"""account default
host 127.0.0.1
port {server.port('submissions')}
tls on
tls_starttls off
tls_trust_file {server.cafile}
tls_host_override mail.example.test
auth plain
user {USER}
password {USER_PW}
from {USER}
""")
    rc.chmod(0o600)
    r = subprocess.run(["msmtp", "-C", str(rc), USER2], input=msg("msmtp"),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (_, stored), = messages(server.env, USER2)
    assert b"Subject: msmtp" in stored


# ------------------------------------------------------------- load, crash


def send_many(port, tags, results):
    for tag in tags:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                s.sendmail("carol@remote.test", [USER], msg(tag, 1000))
            results.append(tag)
        except (smtplib.SMTPException, OSError):
            pass


def test_100_concurrent_deliveries(server):
    results = []
    threads = [threading.Thread(target=send_many, args=(server.port("smtp"), [f"c{i}"], results))
               for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 100
    stored = messages(server.env, USER)
    assert sorted(m.split(b"Subject: ")[1].split(b"\r\n")[0].decode() for _, m in stored) == \
        sorted(results)
    uids = [u for u, _ in stored]
    assert uids == list(range(1, 101))


def test_sigkill_loses_nothing_acknowledged(server):
    acked = []
    stop = threading.Event()

    def worker(n):
        i = 0
        while not stop.is_set() and i < 400:
            tag = f"k{n}-{i}"
            i += 1
            try:
                with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as s:
                    s.sendmail("carol@remote.test", [USER], msg(tag, 500))
                acked.append(tag)
            except (smtplib.SMTPException, OSError):
                return

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    server.proc.kill()
    stop.set()
    for t in threads:
        t.join(30)
    server.stop()
    server.start()
    stored = [m.split(b"Subject: ")[1].split(b"\r\n")[0].decode()
              for _, m in messages(server.env, USER)]
    assert acked, "no message was acknowledged before the kill"
    missing = set(acked) - set(stored)
    assert not missing
    assert len(stored) == len(set(stored)), "a message was stored twice"


def test_sigterm_finishes_transaction_and_exits_0(server):
    r = raw_ehlo(server)
    r.expect("MAIL FROM:<carol@remote.test>", 250)
    r.expect("RCPT TO:<alice@example.test>", 250)
    r.expect("DATA", 354)
    r.send(b"Subject: in flight\r\n\r\n")
    server.proc.send_signal(15)
    time.sleep(0.3)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port("smtp")), timeout=2).close()
    r.send(b"body\r\n.\r\n")
    assert r.reply()[0] == 250
    code, texts = r.reply()
    assert code == 421 and texts[0].startswith("4.3.2")
    assert server.stop() == 0
    assert len(messages(server.env, USER)) == 1


def test_idle_timeout(make_server):
    server = make_server(extra={"limits": {"smtp_timeout": "1"}})
    r = raw(server)
    time.sleep(1.6)
    code, texts = r.reply()
    assert code == 421 and texts[0].startswith("4.4.2")
    assert r.closed()


def test_connection_limit_per_ip(make_server):
    server = make_server(extra={"limits": {"max_connections_per_ip": "3"}})
    time.sleep(0.3)  # as below: the readiness probes must be gone
    conns = [raw(server) for _ in range(3)]
    extra = Raw(server.port("smtp"))
    code, texts = extra.reply()
    assert code == 421 and "4.7.0" in texts[0]
    assert extra.closed()
    conns[0].expect("QUIT", 221)
    time.sleep(0.2)
    raw(server).expect("NOOP", 250)


def test_connection_limit_total(make_server):
    server = make_server(extra={"limits": {"max_connections": "2"}})
    # The fixture's readiness probes count until the server has seen them close.
    time.sleep(0.3)
    conns = [raw(server, "smtp"), raw(server, "submission")]
    extra = Raw(server.port("smtp"))
    code, texts = extra.reply()
    assert code == 421 and "4.7.0" in texts[0]
    assert extra.closed()
    conns[1].expect("QUIT", 221)
    time.sleep(0.2)
    raw(server).expect("NOOP", 250)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def test_back_pressure_bounds_memory(make_server):
    """A client that pipelines without reading: the server stops reading once
    its output queue is full, so its memory stays bounded."""
    server = make_server(extra={"limits": {"max_output_buffer": "64K"}})
    before = rss_kb(server.proc.pid)
    r = raw_ehlo(server)
    n = 2_000_000
    r.sock.settimeout(2)
    sent = 0
    chunk = b"NOOP\r\n" * 10000
    try:
        while sent < n:
            r.sock.sendall(chunk)
            sent += 10000
    except socket.timeout:
        pass  # the server stopped reading: good
    grown = rss_kb(server.proc.pid) - before
    assert sent < n, "the server read 12 MB of commands without the client reading a reply"
    assert grown < 20000, f"server grew by {grown} KB"
    # Reading the replies lets it go on; every NOOP is answered in order.
    r.sock.settimeout(20)
    got = 0
    data = b""
    while got < sent:
        data += r.sock.recv(1 << 20)
        got += data.count(b"\r\n")
        data = data[data.rfind(b"\r\n") + 2:] if b"\r\n" in data else data
    assert got == sent
    r.expect("NOOP", 250)


def test_alias_expanding_too_far_is_refused(server):
    targets = ",".join(f"r{i}@remote.test" for i in range(9))
    server.env.ctl_ok("alias", "add", "list@example.test", targets)
    r = raw_ehlo(server)
    r.expect("MAIL FROM:<carol@remote.test>", 250)
    r.expect("RCPT TO:<list@example.test>", 550, "5.2.4")


def scram_sha256(r, user, password):
    """RFC 5802 / RFC 7677 client over SMTP AUTH (smtplib has no SCRAM)."""
    import hmac
    b64 = lambda b: base64.b64encode(b).decode()
    cnonce = b64(os.urandom(18))
    first_bare = f"n={user},r={cnonce}"
    code, texts = r.cmd("AUTH SCRAM-SHA-256 " + b64(("n,," + first_bare).encode()))
    assert code == 334, texts
    server_first = base64.b64decode(texts[0]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(cnonce)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{without_proof}".encode()
    proof = bytes(a ^ b for a, b in zip(client_key, hmac.digest(stored_key, auth_msg, "sha256")))
    server_sig = hmac.digest(hmac.digest(salted, b"Server Key", "sha256"), auth_msg, "sha256")
    code, texts = r.cmd(b64(f"{without_proof},p={b64(proof)}".encode()))
    if code == 334:  # server-final as a challenge, then an empty response
        final = base64.b64decode(texts[0]).decode()
        code, texts = r.cmd("")
    else:
        final = base64.b64decode(texts[0].split()[-1]).decode() if code == 235 else ""
    return code, texts, final == "v=" + b64(server_sig)


def test_auth_scram_sha256(server):
    r = Raw(server.port("submissions"), tls_context=server.ssl_context())
    r.reply()
    code, ehlo = r.cmd("EHLO laptop")
    assert any(t.startswith("AUTH ") and "SCRAM-SHA-256" in t for t in ehlo)
    code, texts, server_proved = scram_sha256(r, USER, USER_PW)
    assert code == 235 and texts[-1].startswith("2.7.0"), texts
    assert server_proved
    r.expect("MAIL FROM:<alice@example.test>", 250)
    r2 = Raw(server.port("submissions"), tls_context=server.ssl_context())
    r2.reply()
    r2.cmd("EHLO laptop")
    code, texts, _ = scram_sha256(r2, USER, "not the password")
    assert code == 535 and texts[0].startswith("5.7.8")


def test_tls_versions(server):
    ctx = server.ssl_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with smtplib.SMTP_SSL("127.0.0.1", server.port("submissions"), context=ctx, timeout=10) as s:
        assert s.sock.version() == "TLSv1.2"
        s.login(USER, USER_PW)
        s.sendmail(USER, [USER2], msg("tls12"))
    assert b"(using TLSv1.2 with cipher ECDHE-" in messages(server.env, USER2)[0][1][:600]
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        Raw(server.port("submissions"), tls_context=old)
    # The server is still fine.
    with smtplib.SMTP_SSL("127.0.0.1", server.port("submissions"), context=server.ssl_context(),
                          timeout=10) as s:
        assert s.noop()[0] == 250


def test_failed_logins_are_throttled(make_server):
    server = make_server(extra={"auth": {"max_fails_ip": "3", "fail_delay_ms": "200"}})
    codes = []
    for _ in range(4):
        r = Raw(server.port("submissions"), tls_context=server.ssl_context())
        r.reply()
        r.cmd("EHLO laptop")
        t0 = time.monotonic()
        code, texts = r.cmd("AUTH PLAIN " + base64.b64encode(f"\0{USER}\0nope".encode()).decode())
        codes.append((code, texts[0][:5], time.monotonic() - t0))
        r.close()
    assert [c[:2] for c in codes[:3]] == [(535, "5.7.8")] * 3
    assert all(c[2] >= 0.19 for c in codes[:3]), codes  # each failure is delayed
    assert codes[3][:2] == (454, "4.7.0")
    # Even the right password is refused from this address for the window.
    r = Raw(server.port("submissions"), tls_context=server.ssl_context())
    r.reply()
    r.cmd("EHLO laptop")
    code, _ = r.cmd("AUTH PLAIN " + base64.b64encode(f"\0{USER}\0{USER_PW}".encode()).decode())
    assert code == 454
    assert "event=auth-throttled" in server.log_text()
