"""The MX's mail-authentication checks (SPF, DKIM, DMARC; docs/spf-dmarc.md
"On the MX") and RFC 5321 §6.3 loop protection, against petreld whose
[dns] server is a DNSServer (dnsserver.py) serving the zone below.
Messages are signed by Python's dkim module (Debian: python3-dkim)."""

import imaplib
import smtplib
import subprocess
import time

import dkim
import pytest

from conftest import USER, USER2, USER_PW, messages
from smtpclient import Raw

HOST = "mail.example.test"


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory):
    """(private PEM bytes, DNS TXT record) of a 2048-bit RSA key."""
    d = tmp_path_factory.mktemp("dkim")
    pem = d / "key.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(pem)], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(pem), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    import base64
    return pem.read_bytes(), "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def zone(txt_key):
    return {
        # SPF passes from 127.0.0.1; DMARC reject.
        "pass.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
        "_dmarc.pass.test": {"TXT": ["v=DMARC1; p=reject"]},
        # SPF fails everywhere; DMARC none: delivered, reported.
        "nopolicy.test": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
        "_dmarc.nopolicy.test": {"TXT": ["v=DMARC1; p=none"]},
        # Signs with DKIM; SPF fails, so only aligned DKIM can pass DMARC.
        "signed.test": {"TXT": ["v=spf1 -all"]},
        "sel._domainkey.signed.test": {"TXT": [txt_key]},
        "_dmarc.signed.test": {"TXT": ["v=DMARC1; p=reject"]},
        # A domain others forge.
        "bank.test": {"TXT": ["v=spf1 ip4:192.0.2.7 -all"]},
        "_dmarc.bank.test": {"TXT": ["v=DMARC1; p=reject; rua=mailto:d@bank.test"]},
        "quarantine.test": {"TXT": ["v=spf1 -all"]},
        "_dmarc.quarantine.test": {"TXT": ["v=DMARC1; p=quarantine"]},
    }


@pytest.fixture
def checked(make_server, make_dns, dkim_key):
    """make(mode="enforce", kinds=..., checks={...}) → (server, dns)."""
    def make(mode="enforce", kinds=("smtp", "submission"), checks=None, dns_cfg=None):
        dns = make_dns(zone(dkim_key[1]))
        extra = {"checks": {"mode": mode, **(checks or {})},
                 "dns": {"server": dns.address, "timeout": "1000", "tries": "1",
                         **(dns_cfg or {})},
                 "auth": {"plaintext_on_loopback": "true"}}
        return make_server(kinds=kinds, extra=extra), dns
    return make


def message(from_addr, subject="test", body=b"Hello.\r\n", extra=b""):
    return (b"From: " + from_addr.encode() + b"\r\nTo: alice@example.test\r\n"
            b"Subject: " + subject.encode() + b"\r\nMessage-ID: <" +
            str(time.time_ns()).encode() + b"@t>\r\n" + extra + b"\r\n" + body)


def signed(msg, key, domain=b"signed.test"):
    sig = dkim.sign(msg, b"sel", domain, key, include_headers=[b"from", b"to", b"subject"])
    return sig + msg


def send(srv, mail_from, msg, rcpts=(USER,)):
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as s:
        s.ehlo("client.remote.test")
        s.sendmail(mail_from, list(rcpts), msg)


def fields(stored, name):
    """The unfolded values of the header fields called name."""
    head = stored.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    out = []
    mine = False
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):
            if mine:
                out[-1] += " " + line.strip()
            continue
        k, _, v = line.partition(":")
        mine = k.strip().lower() == name.lower()
        if mine:
            out.append(v.strip())
    return out


def authres(stored):
    """Our Authentication-Results as {method: [resinfo, ...]}; asserts it is
    there once, right below Return-Path."""
    assert stored.startswith(b"Return-Path: <"), stored[:200]
    assert stored.split(b"\r\n")[1].startswith(b"Authentication-Results: " + HOST.encode() + b";")
    ours = [v for v in fields(stored, "Authentication-Results") if v.startswith(HOST + ";")]
    assert len(ours) == 1, ours
    res = {}
    for part in ours[0].split(";")[1:]:
        part = part.strip()
        res.setdefault(part.split("=", 1)[0], []).append(part)
    return res


def only(srv, mailbox="INBOX"):
    (_, stored), = messages(srv.env, USER, mailbox)
    return stored


# ----------------------------------------------------------------- SPF


def test_spf_pass(checked):
    srv, dns = checked()
    send(srv, "sender@pass.test", message("sender@pass.test"))
    ar = authres(only(srv))
    assert ar["spf"][0].startswith("spf=pass ")
    assert "smtp.mailfrom=sender@pass.test" in ar["spf"][0]
    assert ar["dkim"] == ["dkim=none"]
    assert ar["dmarc"][0].startswith("dmarc=pass ") and "header.from=pass.test" in ar["dmarc"][0]
    assert ("pass.test", "TXT", "udp") in dns.queries
    assert "event=authcheck" in srv.log_text() and "action=deliver" in srv.log_text()


def test_spf_fail_is_reported_not_rejected(checked):
    srv, _ = checked()
    send(srv, "x@nopolicy.test", message("x@nopolicy.test"))
    ar = authres(only(srv))
    assert ar["spf"][0].startswith("spf=fail ") and "smtp.mailfrom=x@nopolicy.test" in ar["spf"][0]
    assert ar["dmarc"][0].startswith("dmarc=fail ") and "dis=none" in ar["dmarc"][0]


def test_null_sender_checks_helo(checked):
    srv, _ = checked()
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as s:
        s.ehlo("pass.test")
        s.sendmail("", [USER], message("mailer-daemon@pass.test"))
    ar = authres(only(srv))
    assert ar["spf"][0].startswith("spf=pass ") and "smtp.helo=pass.test" in ar["spf"][0]


# ----------------------------------------------------------------- DKIM


def test_dkim_pass_aligns_dmarc(checked, dkim_key):
    srv, _ = checked()
    # SPF of signed.test fails and its policy is reject: only DKIM saves it.
    send(srv, "list@signed.test", signed(message("news@signed.test"), dkim_key[0]))
    ar = authres(only(srv))
    assert ar["spf"][0].startswith("spf=fail ")
    assert ar["dkim"][0].startswith("dkim=pass ") and "header.d=signed.test" in ar["dkim"][0]
    assert "header.s=sel" in ar["dkim"][0]
    assert ar["dmarc"][0].startswith("dmarc=pass ")


def test_dkim_fail_when_body_altered(checked, dkim_key):
    srv, _ = checked()
    msg = signed(message("sender@pass.test", body=b"Pay 10 EUR.\r\n"), dkim_key[0])
    msg = msg.replace(b"Pay 10 EUR.", b"Pay 99 EUR.")
    send(srv, "sender@pass.test", msg)  # SPF of pass.test aligns: delivered
    ar = authres(only(srv))
    assert ar["dkim"][0].startswith("dkim=fail ") and "header.d=signed.test" in ar["dkim"][0]
    assert "body hash" in ar["dkim"][0]
    assert ar["dmarc"][0].startswith("dmarc=pass ")


def test_dkim_altered_with_reject_policy_is_refused(checked, dkim_key):
    srv, _ = checked()
    msg = signed(message("news@signed.test", body=b"Original.\r\n"), dkim_key[0])
    msg = msg.replace(b"Original.", b"Changed!!")
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, "list@signed.test", msg)
    assert e.value.smtp_code == 550
    assert b"5.7.1" in e.value.smtp_error and b"signed.test's DMARC policy" in e.value.smtp_error
    assert messages(srv.env, USER) == []


def test_big_signed_message_hashed_off_loop(checked, dkim_key):
    srv, _ = checked()
    body = b"".join(b"line %06d of a message larger than the inline scan limit\r\n" % i
                    for i in range(8000))  # ~500 KB: scanned on the thread pool
    send(srv, "list@signed.test", signed(message("news@signed.test", body=body), dkim_key[0]))
    stored = only(srv)
    ar = authres(stored)
    assert ar["dkim"][0].startswith("dkim=pass ") and ar["dmarc"][0].startswith("dmarc=pass ")
    assert stored.endswith(body)


# ---------------------------------------------------------------- DMARC


def test_forged_from_of_reject_domain_is_refused(checked):
    srv, _ = checked()
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, "sender@pass.test", message("ceo@bank.test"), rcpts=(USER, USER2))
    assert e.value.smtp_code == 550
    text = e.value.smtp_error.decode()
    assert text.startswith("5.7.1 Message rejected: bank.test's DMARC policy says reject")
    assert messages(srv.env, USER) == [] and messages(srv.env, USER2) == []
    assert "action=reject" in srv.log_text() and "from_domain=bank.test" in srv.log_text()


def test_quarantine_goes_to_junk(checked):
    srv, _ = checked(kinds=("smtp", "imaps"))
    send(srv, "x@quarantine.test", message("x@quarantine.test", subject="looks odd"))
    assert messages(srv.env, USER) == []
    ar = authres(only(srv, "Junk"))
    assert ar["dmarc"][0].startswith("dmarc=fail ") and "dis=quarantine" in ar["dmarc"][0]
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=srv.ssl_context(),
                          timeout=10)
    try:
        assert c.login(USER, USER_PW)[0] == "OK"
        typ, data = c.select("Junk", readonly=True)
        assert typ == "OK" and data == [b"1"]
        typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: looks odd" in data[0][1]
        typ, data = c.select("INBOX", readonly=True)
        assert data == [b"0"]
    finally:
        c.logout()


def test_missing_from_is_refused_in_enforce(checked):
    srv, _ = checked()
    msg = b"To: alice@example.test\r\nSubject: no author\r\n\r\nHi.\r\n"
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, "sender@pass.test", msg)
    assert e.value.smtp_code == 550 and b"From" in e.value.smtp_error


def test_tag_mode_delivers_with_the_verdict(checked):
    srv, _ = checked(mode="tag")
    send(srv, "sender@pass.test", message("ceo@bank.test"))
    ar = authres(only(srv))
    assert ar["dmarc"][0].startswith("dmarc=fail ") and "header.from=bank.test" in ar["dmarc"][0]
    assert "p=reject" in ar["dmarc"][0]


def test_off_mode_no_lookups_no_header(checked):
    srv, dns = checked(mode="off")
    send(srv, "sender@pass.test", message("ceo@bank.test"))
    stored = only(srv)
    assert fields(stored, "Authentication-Results") == []
    assert dns.queries == []


def test_submission_is_not_checked(checked):
    srv, dns = checked()
    with smtplib.SMTP("127.0.0.1", srv.port("submission"), timeout=10) as s:
        s.ehlo("laptop.example.test")
        s.login(USER, USER_PW)
        s.sendmail(USER, [USER2], message("alice@example.test"))
    (_, stored), = messages(srv.env, USER2)
    assert fields(stored, "Authentication-Results") == [] and dns.queries == []


def test_dns_down_delivers_temperror_within_bound(checked, dkim_key):
    # Each lookup would wait 5 s x 2; the checks give up after 2 s. A forged
    # From of a reject domain is delivered all the same: temperror never refuses.
    srv, dns = checked(checks={"timeout": "2"}, dns_cfg={"timeout": "5000", "tries": "2"})
    dns.drop_all = True
    t0 = time.monotonic()
    send(srv, "sender@pass.test", signed(message("ceo@signed.test"), dkim_key[0]))
    elapsed = time.monotonic() - t0
    assert 1.5 < elapsed < 5, elapsed
    ar = authres(only(srv))
    assert ar["spf"][0].startswith("spf=temperror ")
    assert ar["dkim"][0].startswith("dkim=temperror ")
    assert ar["dmarc"][0].startswith("dmarc=temperror ")
    assert "timeout=yes" in srv.log_text()


# ------------------------------------------------------------ RFC 8601 §5


def test_forged_authentication_results_removed(checked):
    srv, _ = checked()
    forged = (b"Authentication-Results: " + HOST.upper().encode() + b";\r\n"
              b"\tdmarc=pass header.from=bank.test\r\n"
              b"Authentication-Results: other.example; spf=pass smtp.mailfrom=x@y.test\r\n"
              b"Authentication-Results: (comment) \"" + HOST.encode() + b"\" 1; dkim=pass\r\n")
    send(srv, "sender@pass.test", message("sender@pass.test", extra=forged))
    stored = only(srv)
    all_ar = fields(stored, "Authentication-Results")
    assert len(all_ar) == 2, all_ar
    assert all_ar[1] == "other.example; spf=pass smtp.mailfrom=x@y.test"
    assert "bank.test" not in stored.decode()
    authres(stored)  # ours, once
    assert "event=authres-dropped" in srv.log_text() and "count=2" in srv.log_text()


# ------------------------------------------------------- RFC 5321 §6.3


def hops(n):
    return b"".join(b"Received: from relay%d.remote.test by relay%d.remote.test;"
                    b" Tue, 1 Dec 2026 10:00:00 +0000\r\n" % (i, i + 1) for i in range(n))


@pytest.mark.parametrize("kind", ["smtp", "submission"])
def test_too_many_hops_refused_connection_goes_on(checked, kind):
    srv, _ = checked(mode="off")
    r = Raw(srv.port(kind))
    assert r.reply()[0] == 220
    r.expect("EHLO client.remote.test", 250)
    sender = "sender@pass.test"
    if kind == "submission":
        import base64
        r.expect("AUTH PLAIN " + base64.b64encode(f"\0{USER}\0{USER_PW}".encode()).decode(), 235)
        sender = USER
    body = b"\r\nReceived: in the body does not count\r\n"
    for n, code in ((51, 554), (50, 250)):
        r.expect(f"MAIL FROM:<{sender}>", 250)
        r.expect("RCPT TO:<bob@example.test>", 250)
        r.expect("DATA", 354)
        r.send(hops(n) + message(sender)[:-2] + body + b".\r\n")
        code_got, texts = r.reply()
        assert code_got == code, texts
        if code == 554:
            assert texts[0] == "5.4.6 Too many hops (51 Received headers): mail loop?"
    r.expect("QUIT", 221)
    (_, stored), = messages(srv.env, USER2)
    assert stored.count(b"\r\nReceived: from relay") == 50


def test_too_many_hops_with_bdat(checked):
    srv, _ = checked()
    r = Raw(srv.port("smtp"))
    assert r.reply()[0] == 220
    r.expect("EHLO client.remote.test", 250)
    r.expect("MAIL FROM:<sender@pass.test>", 250)
    r.expect("RCPT TO:<alice@example.test>", 250)
    data = hops(60) + message("sender@pass.test")
    r.send(b"BDAT %d LAST\r\n" % len(data) + data)
    code, texts = r.reply()
    assert code == 554 and texts[0].startswith("5.4.6 Too many hops (60 ")
    r.expect("NOOP", 250)
    assert messages(srv.env, USER) == []


# ------------------------------------------------------------ lifetimes


def test_client_leaving_during_checks(checked, dkim_key):
    """The client closes while the scan runs on the pool, then while the DNS
    lookups are pending: nothing is stored (no 250 was given), nothing leaks,
    and the server goes on."""
    srv, dns = checked(checks={"timeout": "3"}, dns_cfg={"timeout": "3000"})
    big = b"".join(b"filler line %06d for the pool scan\r\n" % i for i in range(20000))
    for body, drop in ((big, False), (b"Small.\r\n", True)):
        dns.drop_all = drop
        r = Raw(srv.port("smtp"))
        assert r.reply()[0] == 220
        r.expect("EHLO client.remote.test", 250)
        r.expect("MAIL FROM:<list@signed.test>", 250)
        r.expect("RCPT TO:<alice@example.test>", 250)
        r.expect("DATA", 354)
        r.send(signed(message("news@signed.test", body=body), dkim_key[0]) + b".\r\n")
        time.sleep(0.3 if drop else 0)
        r.close()
    time.sleep(0.5)
    dns.drop_all = False
    send(srv, "sender@pass.test", message("sender@pass.test"))
    assert len(messages(srv.env, USER)) == 1


def test_sigterm_waits_for_checks(checked):
    srv, dns = checked(checks={"timeout": "2"}, dns_cfg={"timeout": "3000"})
    dns.drop_all = True
    r = Raw(srv.port("smtp"))
    assert r.reply()[0] == 220
    r.expect("EHLO client.remote.test", 250)
    r.expect("MAIL FROM:<sender@pass.test>", 250)
    r.expect("RCPT TO:<alice@example.test>", 250)
    r.expect("DATA", 354)
    r.send(message("sender@pass.test") + b".\r\n")
    time.sleep(0.3)
    srv.proc.send_signal(15)
    code, texts = r.reply()
    assert code == 250, texts
    assert r.reply()[0] == 421
    assert srv.stop() == 0
    assert len(messages(srv.env, USER)) == 1
