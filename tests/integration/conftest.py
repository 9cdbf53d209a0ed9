"""Shared pytest fixtures for Petrel's integration tests.

Fixtures
    repo_root    the source checkout (two levels above this file)
    build_dir    where the binaries are: $PETREL_BUILD, else <repo>/build
    petrel_env   a fresh PetrelEnv: temp dir, config file, data dir, and
                 ctl(*args, input=None) to run petrelctl against it

Server fixtures (petreld on free loopback ports) belong here too; build them
on PetrelEnv.write_config(listen=..., extra=...) and PetrelEnv.conf.
Runs with Debian's /usr/bin/python3 (3.11) and pytest 7.2.
"""

import hashlib
import os
import signal
import ssl
import time
import socket
import sqlite3
import subprocess
import zlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HOSTNAME = "mail.example.test"


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def build_dir():
    return Path(os.environ.get("PETREL_BUILD", str(REPO_ROOT / "build"))).resolve()


def require_binary(build, name):
    """The path of build/name; fails the test clearly when it was not built."""
    path = Path(build) / name
    if not path.exists():
        pytest.fail(f"no {name} in {build}: build first (make) or set PETREL_BUILD")
    return path


def free_port(host="127.0.0.1"):
    """A TCP port on host that was free a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def render_config(sections):
    """INI text from {section: {key: value}} (insertion order kept)."""
    out = []
    for name, keys in sections.items():
        out.append(f"[{name}]")
        out.extend(f"{k} = {v}" for k, v in keys.items())
        out.append("")
    return "\n".join(out)


class PetrelEnv:
    """A temporary Petrel installation: config file, data dir, CLI runner."""

    def __init__(self, root, build):
        self.root = Path(root)
        self.build = Path(build)
        self.data_dir = self.root / "data"
        self.conf = self.root / "petrel.conf"
        self.hostname = HOSTNAME
        self.data_dir.mkdir()
        self.write_config()

    def write_config(self, listen=None, extra=None):
        """(Re)writes the config. listen: {"smtp": "127.0.0.1:2525", ...};
        extra: more sections or keys, merged over the defaults below."""
        sections = {
            "server": {"hostname": self.hostname, "data_dir": str(self.data_dir)},
            "listen": dict(listen or {}),
            "log": {"level": "info"},
        }
        for name, keys in (extra or {}).items():
            sections.setdefault(name, {}).update(keys)
        self.conf.write_text(render_config(sections))
        return self.conf

    @property
    def db_path(self):
        return self.data_dir / "petrel.db"

    def db(self):
        """A read-only sqlite3 connection to the store (for assertions only)."""
        return sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)

    def ctl(self, *args, input=None, timeout=60):
        """Runs build/petrelctl -c CONF ARGS; returns the CompletedProcess (text)."""
        cmd = [str(self.build / "petrelctl"), "-c", str(self.conf), *map(str, args)]
        return subprocess.run(cmd, input=input, capture_output=True, text=True,
                              timeout=timeout, stdin=None if input is not None
                              else subprocess.DEVNULL)

    def ctl_ok(self, *args, input=None):
        """ctl() that must succeed; returns stdout."""
        r = self.ctl(*args, input=input)
        assert r.returncode == 0, f"petrelctl {' '.join(map(str, args))}: {r.stderr}"
        return r.stdout


@pytest.fixture
def petrel_env(tmp_path, build_dir):
    require_binary(build_dir, "petrelctl")
    return PetrelEnv(tmp_path, build_dir)


# ------------------------------------------------------------------ server

SMTP_KINDS = ("smtp", "submission", "submissions")
DOMAIN = "example.test"
USER = "alice@example.test"
USER_PW = "correct horse battery staple"
USER2 = "bob@example.test"
USER2_PW = "bob's other password 42"


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory):
    """A self-signed certificate for HOSTNAME, made by the script make run uses."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run([str(REPO_ROOT / "scripts" / "make-cert.sh"), HOSTNAME, str(d)], check=True)
    return d


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class Petreld:
    """A real build/petreld on free loopback ports with its own data dir."""

    def __init__(self, env, tls_dir, kinds=SMTP_KINDS, extra=None, host="127.0.0.1"):
        self.env = env
        self.kinds = kinds
        self.host = host
        self.ports = {k: free_port(host) for k in kinds}
        self.extra = {"tls": {"cert": str(tls_dir / "cert.pem"), "key": str(tls_dir / "key.pem")}}
        # The MX's SPF/DKIM/DMARC checks (default enforce) need DNS and add an
        # Authentication-Results field: off unless a test asks (test_authcheck.py).
        self.extra["checks"] = {"mode": "off"}
        for name, keys in (extra or {}).items():
            self.extra.setdefault(name, {}).update(keys)
        self.log_path = env.root / "petreld.log"
        self.proc = None
        self.cafile = str(tls_dir / "cert.pem")

    def configure(self, extra=None):
        for name, keys in (extra or {}).items():
            self.extra.setdefault(name, {}).update(keys)
        self.env.write_config(listen={k: f"{self.host}:{p}" for k, p in self.ports.items()},
                              extra=self.extra)

    def start(self):
        self.configure()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.env.build / "petreld"), "-c", str(self.env.conf)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for port in self.ports.values():
            if not wait_port(port, host=self.host):
                self.stop()
                pytest.fail(f"petreld did not listen on {self.host}:{port}:\n{self.log_text()}")
        return self

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the server; returns its exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.log.close()
        return rc

    def ssl_context(self):
        """Verifies the chain against the test CA. smtplib passes the IP it
        connects to as the TLS name, so the name check is off here; Raw, curl
        and swaks check the name mail.example.test."""
        ctx = ssl.create_default_context(cafile=self.cafile)
        ctx.check_hostname = False
        return ctx

    def port(self, kind):
        return self.ports[kind]


@pytest.fixture
def make_server(petrel_env, tls_dir, build_dir):
    """A factory: make_server(extra=...) → a started Petreld (stopped after the test)."""
    require_binary(build_dir, "petreld")
    started = []

    def make(kinds=SMTP_KINDS, extra=None, users=True):
        if users:
            petrel_env.ctl_ok("domain", "add", DOMAIN)
            petrel_env.ctl_ok("user", "add", USER, "--password-stdin", input=USER_PW + "\n")
            petrel_env.ctl_ok("user", "add", USER2, "--password-stdin", input=USER2_PW + "\n")
        srv = Petreld(petrel_env, tls_dir, kinds, extra)
        started.append(srv)
        return srv.start()

    yield make
    for srv in started:
        rc = srv.stop()
        log = srv.log_text()
        assert rc in (0, None), f"petreld exited {rc}:\n{log}"
        # Under `make sanitize` a report means a bug even when the exit code hides it.
        assert "AddressSanitizer" not in log and "runtime error:" not in log, log


@pytest.fixture
def server(make_server):
    return make_server()


def messages(env, address, mailbox="INBOX"):
    """[(uid, bytes)] of a user's mailbox in UID order, read from the database
    file itself: the blob is inflated and must match its SHA-256 address."""
    with env.db() as db:
        rows = db.execute(
            "SELECT m.uid, b.data, b.sha256, b.size FROM messages m"
            " JOIN mailboxes x ON x.id = m.mailbox_id JOIN users u ON u.id = x.user_id"
            " JOIN blobs b ON b.id = m.blob_id"
            " WHERE u.address = ? AND x.name = ? ORDER BY m.uid", (address, mailbox)).fetchall()
    out = []
    for uid, data, sha, size in rows:
        raw = zlib.decompress(data)
        assert len(raw) == size and hashlib.sha256(raw).digest() == bytes(sha)
        out.append((uid, raw))
    return out


def body_of(stored):
    """The stored message minus the trace headers Petrel prepends
    (Return-Path and one Received field, possibly folded)."""
    lines = stored.split(b"\r\n")
    assert lines[0].startswith(b"Return-Path: <"), stored[:200]
    assert lines[1].startswith(b"Received: from "), stored[:400]
    i = 2
    while lines[i][:1] in (b"\t", b" "):
        i += 1
    return b"\r\n".join(lines[i:])


# --------------------------------------------------------------------- DNS


@pytest.fixture
def make_dns():
    """A factory: make_dns(zone) → a started DNSServer (dnsserver.py) on a free
    loopback port, stopped after the test. Point petreld at it with
    extra={"dns": {"server": dns.address}}."""
    from dnsserver import DNSServer
    started = []

    def make(zone):
        dns = DNSServer(zone).start()
        started.append(dns)
        return dns

    yield make
    for dns in started:
        dns.stop()
