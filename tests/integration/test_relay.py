"""The outbound relay (docs/relay.md): two petreld instances, A for a.test on
127.0.0.2 and B for b.test on 127.0.0.3, and a DNSServer (dnsserver.py)
serving their MX, A, SPF, DKIM and DMARC records. A's users submit to A; A's
queue runner delivers to B's MX port (A's [relay] mx_port) as it would to
port 25, signing with the DKIM key petrelctl made; B checks SPF, DKIM and
DMARC ([checks] enforce)."""

import email
import smtplib
import time

import pytest

from conftest import Petreld, PetrelEnv, messages

A_HOST, B_HOST = "127.0.0.2", "127.0.0.3"
ALICE, ALICE_PW = "alice@a.test", "alice's password 1"
BOB, BOB_PW = "bob@b.test", "bob's password 2"


def zone():
    return {
        "a.test": {"MX": [[10, "mx.a.test"]], "TXT": ["v=spf1 ip4:127.0.0.0/8 -all"]},
        "mx.a.test": {"A": [A_HOST]},
        "_dmarc.a.test": {"TXT": ["v=DMARC1; p=reject"]},
        "b.test": {"MX": [[10, "mx.b.test"]], "TXT": ["v=spf1 ip4:127.0.0.0/8 -all"]},
        "mx.b.test": {"A": [B_HOST]},
        "_dmarc.b.test": {"TXT": ["v=DMARC1; p=reject"]},
        "mail.example.test": {"A": [B_HOST]},   # B as a smarthost: its certificate's name
        "nullmx.test": {"MX": [[0, "."]]},
        "bank.test": {"TXT": ["v=spf1 ip4:192.0.2.7 -all"]},
        "_dmarc.bank.test": {"TXT": ["v=DMARC1; p=reject"]},
    }


@pytest.fixture
def net(tmp_path, tls_dir, build_dir, make_dns):
    """(A, B, dns): B started, A not yet (each test sets A's config)."""
    dns = make_dns(zone())
    nodes = []

    def node(name, host, domain, user, password, extra):
        root = tmp_path / name
        root.mkdir()
        env = PetrelEnv(root, build_dir)
        env.hostname = f"mx.{domain}"
        env.ctl_ok("domain", "add", domain)
        env.ctl_ok("user", "add", user, "--password-stdin", input=password + "\n")
        base = {"dns": {"server": dns.address, "timeout": "1000", "tries": "1"},
                "auth": {"plaintext_on_loopback": "true"}}
        for k, v in extra.items():
            base.setdefault(k, {}).update(v)
        n = Petreld(env, tls_dir, ("smtp", "submission", "submissions"), base, host=host)
        nodes.append(n)
        return n

    b = node("b", B_HOST, "b.test", BOB, BOB_PW, {"checks": {"mode": "enforce"}})
    a = node("a", A_HOST, "a.test", ALICE, ALICE_PW, {
        "relay": {"mx_port": str(b.ports["smtp"])},
        "queue": {"retry_min": "1", "retry_max": "2"},
        "tls": {"ca_file": str(tls_dir / "cert.pem")},
    })
    b.configure({"relay": {"mx_port": str(a.ports["smtp"])}})
    # A's DKIM key, published.
    out = a.env.ctl_ok("dkim", "generate", "a.test", "--selector", "s1")
    record = out.splitlines()[1]
    txt = "".join(p for p in record[record.index("(") + 1:record.rindex(")")].split('"')[1::2])
    dns.zone["s1._domainkey.a.test"] = {"TXT": [txt]}
    b.start()
    yield a, b, dns
    for n in nodes:
        rc = n.stop()
        log = n.log_text()
        assert rc in (0, None), f"petreld exited {rc}:\n{log}"
        assert "AddressSanitizer" not in log and "runtime error:" not in log, log


def submit(a, rcpts, msg, mail_from=ALICE):
    with smtplib.SMTP(a.host, a.port("submission"), timeout=30) as s:
        s.ehlo("client.a.test")
        s.login(ALICE, ALICE_PW)
        s.sendmail(mail_from, rcpts, msg)


def message(to="bob@b.test", sender="Alice <alice@a.test>", subject="hello", body=b"Hi Bob.\r\n"):
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{time.time_ns()}@a.test>\r\nDate: Wed, 2 Dec 2026 10:00:00 +0000\r\n"
            "\r\n").encode() + body


def wait_for(fn, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def inbox(node, user):
    return [m for _, m in messages(node.env, user)]


def queue_rows(node):
    with node.env.db() as db:
        return db.execute("SELECT rcpt, attempts, last_error FROM queue ORDER BY id").fetchall()


def report_of(stored):
    """The DSN's parts: (human text, {field: value} of the per-recipient part)."""
    m = email.message_from_bytes(stored)
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    assert m.get_param("report-type") == "delivery-status"
    parts = m.get_payload()
    text = parts[0].get_payload(decode=True).decode()
    status = parts[1]
    assert status.get_content_type() == "message/delivery-status"
    fields = {}
    for block in status.get_payload():
        for k, v in block.items():
            fields[k.lower()] = v
    return text, fields


def authres(stored, host="mx.b.test"):
    head = stored.split(b"\r\n\r\n", 1)[0].decode()
    unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ")
    ours = [l for l in unfolded.split("\r\n")
            if l.startswith(f"Authentication-Results: {host};")]
    assert len(ours) == 1, head
    return ours[0]


def test_delivered_signed_and_verified(net):
    a, b, dns = net
    a.start()
    submit(a, [BOB], message())
    stored = wait_for(lambda: inbox(b, BOB), what="delivery at B")[0]
    ar = authres(stored)
    assert "dkim=pass" in ar and "header.d=a.test" in ar, ar
    assert "spf=pass" in ar and "smtp.mailfrom=alice@a.test" in ar, ar
    assert "dmarc=pass" in ar and "header.from=a.test" in ar, ar
    assert b"\r\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=a.test;" in stored
    # One Return-Path, B's: A's own was not sent on (RFC 5321 §4.4).
    assert stored.count(b"Return-Path:") == 1
    assert b"Hi Bob." in stored
    wait_for(lambda: not queue_rows(a), what="A's queue to empty")
    assert "event=relay-delivered" in a.log_text()
    # B received it over STARTTLS (opportunistic to an MX).
    assert b"with ESMTPS" in stored


def test_peer_down_then_back(net):
    a, b, dns = net
    a.configure({"queue": {"delay_warning": "2"}})
    b.stop()
    a.start()
    submit(a, [BOB], message(subject="while B was down"))
    rows = wait_for(lambda: [r for r in queue_rows(a) if r[1] >= 2], what="retries")
    assert rows[0][0] == BOB and "4.4.1" in rows[0][2] and "Cannot reach mx.b.test" in rows[0][2]
    # petrelctl shows it, with the error.
    out = a.env.ctl_ok("queue", "list")
    assert BOB in out and "Cannot reach mx.b.test" in out
    # One delay notice, after delay_warning.
    notice = wait_for(lambda: inbox(a, ALICE), what="the delay notice")
    text, fields = report_of(notice[0])
    assert fields["action"] == "delayed" and fields["final-recipient"] == "rfc822; bob@b.test"
    b.start()
    stored = wait_for(lambda: inbox(b, BOB), what="delivery after B came back")
    assert b"while B was down" in stored[0]
    wait_for(lambda: not queue_rows(a), what="A's queue to empty")
    assert len(inbox(a, ALICE)) == 1  # one notice, no bounce


def test_recipient_refused_bounces(net):
    a, b, dns = net
    a.start()
    submit(a, ["nobody@b.test", BOB], message(to="nobody@b.test, bob@b.test"))
    bounce = wait_for(lambda: inbox(a, ALICE), what="the bounce")[0]
    text, fields = report_of(bounce)
    assert fields["action"] == "failed"
    assert fields["final-recipient"] == "rfc822; nobody@b.test"
    assert fields["status"].startswith("5.1.")
    assert fields["remote-mta"] == "dns; mx.b.test"
    assert fields["diagnostic-code"].startswith("smtp; 550")
    assert "nobody@b.test" in text
    assert bounce.startswith(b"Return-Path: <>")
    # The other recipient got it; the queue is empty.
    wait_for(lambda: inbox(b, BOB), what="bob's copy")
    wait_for(lambda: not queue_rows(a), what="A's queue to empty")


def test_null_mx_bounces_at_once(net):
    a, b, dns = net
    a.start()
    submit(a, ["someone@nullmx.test"], message(to="someone@nullmx.test"))
    bounce = wait_for(lambda: inbox(a, ALICE), what="the bounce")[0]
    text, fields = report_of(bounce)
    assert fields["action"] == "failed" and fields["status"] == "5.1.10"
    assert "null MX" in fields["diagnostic-code"]
    assert not queue_rows(a)


def test_forged_from_refused_at_b(net):
    a, b, dns = net
    a.start()
    submit(a, [BOB], message(sender="CEO <ceo@bank.test>", subject="wire money"))
    bounce = wait_for(lambda: inbox(a, ALICE), what="the bounce")[0]
    text, fields = report_of(bounce)
    assert fields["status"] == "5.7.1", fields
    assert fields["diagnostic-code"].startswith("smtp; 550 5.7.1")
    assert inbox(b, BOB) == []


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_smarthost_with_auth(net, tls):
    a, b, dns = net
    b.env.ctl_ok("user", "add", "relay@b.test", "--password-stdin", input="relay pw 123\n")
    # A provider lets an account send as the domains it verified; at B that
    # is an address that resolves to the account.
    b.env.ctl_ok("domain", "add", "a.test")
    b.env.ctl_ok("alias", "add", ALICE, "relay@b.test")
    port = b.ports["submission" if tls == "starttls" else "submissions"]
    a.configure({"relay": {"host": "mail.example.test", "port": str(port),
                           "tls": tls, "user": "relay@b.test",
                           "password": "relay pw 123"}})
    a.start()
    submit(a, [BOB], message(subject="via the smarthost"))
    stored = wait_for(lambda: inbox(b, BOB), what="delivery through the smarthost")[0]
    assert b"via the smarthost" in stored
    # Authenticated over TLS at B's submission port.
    assert b"with ESMTPSA" in stored
    assert "event=auth-ok service=smtp" in b.log_text() and "user=relay@b.test" in b.log_text()
    wait_for(lambda: not queue_rows(a), what="A's queue to empty")


def test_smarthost_bad_certificate_defers(net, tmp_path):
    a, b, dns = net
    # No CA that signs B's certificate: the smarthost is not trusted.
    a.configure({"relay": {"host": "mail.example.test", "port": str(b.ports["submission"]),
                           "tls": "starttls"},
                 "tls": {"ca_file": "/etc/ssl/certs/ca-certificates.crt"}})
    a.start()
    submit(a, [BOB], message())
    rows = wait_for(lambda: [r for r in queue_rows(a) if r[1] >= 1], what="a failed try")
    assert "4." in rows[0][2], rows
    assert inbox(b, BOB) == []


def test_queue_flush_and_del(net):
    a, b, dns = net
    a.configure({"queue": {"retry_min": "3600", "retry_max": "3600"}})
    b.stop()
    a.start()
    submit(a, [BOB], message())
    wait_for(lambda: [r for r in queue_rows(a) if r[1] >= 1], what="a failed try")
    time.sleep(1.5)
    assert queue_rows(a)[0][1] == 1  # an hour until the next try
    b.start()
    assert "every queue entry is due now" in a.env.ctl_ok("queue", "flush")
    wait_for(lambda: inbox(b, BOB), what="delivery after flush")
    b.stop()
    submit(a, [BOB], message(subject="to be deleted"))
    wait_for(lambda: [r for r in queue_rows(a) if r[1] >= 1], what="a failed try")
    qid = a.env.ctl_ok("queue", "list").splitlines()[1].split()[0]
    assert a.env.ctl_ok("queue", "del", qid).strip() == f"deleted queue entry {qid}"
    assert not queue_rows(a)


def test_newest_key_signs_ed25519(net):
    """Key rotation: a second key, Ed25519 (RFC 8463), added later signs."""
    a, b, dns = net
    time.sleep(1.1)  # a later "created" second than the first key's
    out = a.env.ctl_ok("dkim", "generate", "a.test", "--selector", "s2", "--algorithm", "ed25519")
    rec = out.splitlines()[1]
    dns.zone["s2._domainkey.a.test"] = {
        "TXT": ["".join(rec[rec.index("(") + 1:rec.rindex(")")].split('"')[1::2])]}
    a.start()
    submit(a, [BOB], message(subject="ed25519"))
    stored = wait_for(lambda: inbox(b, BOB), what="delivery at B")[0]
    assert b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=a.test;" in stored
    ar = authres(stored)
    assert "dkim=pass" in ar and "header.s=s2" in ar and "dmarc=pass" in ar, ar


def test_expired_message_bounces(net):
    """Still failing after [queue] lifetime: bounced with the last error."""
    a, b, dns = net
    a.configure({"queue": {"lifetime": "2", "delay_warning": "0"}})
    b.stop()
    a.start()
    submit(a, [BOB], message(subject="never arrives"))
    bounce = wait_for(lambda: inbox(a, ALICE), what="the bounce")[0]
    text, fields = report_of(bounce)
    assert fields["action"] == "failed" and fields["status"] == "4.4.1", fields
    assert "Cannot reach mx.b.test" in fields["diagnostic-code"]
    assert not queue_rows(a)
    assert b"never arrives" in bounce  # the original comes back


def test_next_mx_when_the_first_is_down(net):
    """RFC 5321 §5.1: MX hosts by preference, each address in turn."""
    a, b, dns = net
    dns.zone["b.test"]["MX"] = [[5, "down.b.test"], [10, "mx.b.test"]]
    dns.zone["down.b.test"] = {"A": ["127.0.0.9"]}  # nothing listens there
    a.start()
    submit(a, [BOB], message(subject="second MX"))
    stored = wait_for(lambda: inbox(b, BOB), what="delivery through the second MX")[0]
    assert b"second MX" in stored
    assert "event=relay-unreachable host=down.b.test ip=127.0.0.9" in a.log_text()


def test_implicit_mx(net):
    """No MX record: the domain's own address (RFC 5321 §5.1)."""
    a, b, dns = net
    dns.zone["b.test"] = {"A": [B_HOST], "TXT": ["v=spf1 ip4:127.0.0.0/8 -all"]}
    a.start()
    submit(a, [BOB], message(subject="implicit MX"))
    stored = wait_for(lambda: inbox(b, BOB), what="delivery to the domain's A record")[0]
    assert b"implicit MX" in stored


def outbound_intervals(node):
    """(start, end) in seconds of each outbound connection, from the
    disconnect lines (their time minus their duration)."""
    from datetime import datetime
    out = []
    for line in node.log_text().splitlines():
        if "event=disconnect direction=out" not in line:
            continue
        end = datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
        dur = float(line.split("duration=")[1].split("s")[0])
        out.append((end - dur, end))
    return out


@pytest.mark.parametrize("per_domain,total,bound", [(2, 64, 2), (8, 3, 3)])
def test_connection_limits(net, per_domain, total, bound):
    """[queue] per_domain and max_connections bound the connections at once
    (with per_domain 8 and no lower total, all 8 go at once)."""
    a, b, dns = net
    a.configure({"queue": {"per_domain": str(per_domain), "max_connections": str(total)}})
    a.start()
    for i in range(8):
        submit(a, [BOB], message(subject=f"limit {i}"))
    wait_for(lambda: len(inbox(b, BOB)) == 8, what="8 deliveries")
    spans = outbound_intervals(a)
    assert len(spans) == 8
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most <= bound, spans


def test_null_sender_is_never_bounced(net):
    """RFC 5321 §4.5.5: a failure of a message from <> is logged, not reported."""
    a, b, dns = net
    a.env.ctl_ok("alias", "add", "fwd@a.test", "nobody@b.test")
    a.start()
    import smtplib as s
    with s.SMTP(a.host, a.port("smtp"), timeout=30) as c:
        c.ehlo("mx.elsewhere.test")
        c.sendmail("", ["fwd@a.test"], message(to="fwd@a.test"))
    wait_for(lambda: "event=relay-report-skipped reason=null-sender" in a.log_text(),
             what="the skipped report")
    assert not queue_rows(a)
    assert inbox(a, ALICE) == []
