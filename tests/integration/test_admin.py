"""petrelctl: every verb, its output formats and its error cases."""

import json
import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # libxcrypt underneath: verifies yescrypt hashes

PW = "Tr0ub4dor&3 horse"
PW2 = "another secret 2"

VERBS = [
    ("domain", "add"), ("domain", "del"), ("domain", "list"),
    ("user", "add"), ("user", "del"), ("user", "list"), ("user", "passwd"),
    ("user", "quota"),
    ("alias", "add"), ("alias", "del"), ("alias", "list"),
    ("mailbox", "list"),
    ("queue", "list"), ("queue", "flush"), ("queue", "del"),
]


def fails(r, message):
    """petrelctl failed with exit 1 and exactly one stderr line `message`."""
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr == f"petrelctl: {message}\n"
    assert r.stdout == ""


def table(out):
    """Header and rows of a plain list, split on runs of spaces."""
    lines = out.rstrip("\n").split("\n")
    return lines[0].split(), [line.split() for line in lines[1:]]


@pytest.fixture
def env(petrel_env):
    petrel_env.ctl_ok("domain", "add", "example.test")
    petrel_env.ctl_ok("user", "add", "alice@example.test", "--password-stdin",
                      input=PW + "\n")
    return petrel_env


def user_row(env, address):
    with env.db() as db:
        return db.execute("SELECT pw_hash, scram_secret FROM users WHERE address = ?",
                          (address,)).fetchone()


# ---------------------------------------------------------------- help

def test_help(petrel_env):
    r = petrel_env.ctl("--help")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: petrelctl")
    for group, verb in VERBS:
        assert f"{group}" in r.stdout and f" {verb} " in r.stdout
    assert petrel_env.ctl("-h").stdout == r.stdout


@pytest.mark.parametrize("group", sorted({g for g, _ in VERBS}))
def test_group_help(petrel_env, group):
    r = petrel_env.ctl(group, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith(f"usage: petrelctl [-c FILE] {group} VERB")
    for g, verb in VERBS:
        if g == group:
            assert f" {verb} " in r.stdout


@pytest.mark.parametrize("group,verb", VERBS)
def test_verb_help(petrel_env, group, verb):
    for flag in ("--help", "-h"):
        r = petrel_env.ctl(group, verb, flag)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"usage: petrelctl [-c FILE] {group} {verb}")


def test_help_needs_no_config(tmp_path, build_dir):
    import subprocess
    r = subprocess.run([str(build_dir / "petrelctl"), "-c", str(tmp_path / "none.conf"),
                        "user", "add", "--help"], capture_output=True, text=True)
    assert r.returncode == 0


# ------------------------------------------------------- command errors

def test_no_arguments(petrel_env):
    r = petrel_env.ctl()
    assert r.returncode == 1
    assert "usage: petrelctl" in r.stderr


def test_unknown_command_and_verb(petrel_env):
    fails(petrel_env.ctl("frobnicate"), "unknown command frobnicate (try petrelctl --help)")
    fails(petrel_env.ctl("user", "frob"),
          "user: unknown verb frob (try petrelctl user --help)")
    r = petrel_env.ctl("user")
    assert r.returncode == 1
    assert r.stderr.endswith("petrelctl: user: missing verb\n")


def test_missing_and_extra_arguments(petrel_env):
    fails(petrel_env.ctl("domain", "add"),
          "domain add: missing argument (usage: domain add DOMAIN)")
    fails(petrel_env.ctl("user", "quota", "a@example.test"),
          "user quota: missing argument (usage: user quota ADDRESS SIZE)")
    fails(petrel_env.ctl("domain", "add", "a.test", "b.test"),
          "domain add: too many arguments (usage: domain add DOMAIN)")


def test_unknown_option(petrel_env):
    fails(petrel_env.ctl("domain", "add", "x.test", "--json"),
          "domain add: unknown option --json (usage: domain add DOMAIN)")
    r = petrel_env.ctl("-x", "domain", "list")
    assert r.returncode == 1 and "unknown option -x" in r.stderr


def test_bad_config(petrel_env, tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("[server]\nnosuchkey = 1\n")
    r = petrel_env.build / "petrelctl"
    import subprocess
    p = subprocess.run([str(r), "-c", str(bad), "domain", "list"], capture_output=True,
                       text=True)
    assert p.returncode == 1
    assert p.stderr.startswith("petrelctl: ") and "nosuchkey" in p.stderr
    assert p.stderr.count("\n") == 1


# --------------------------------------------------------------- domains

def test_domain_add_list_del(petrel_env):
    assert petrel_env.ctl_ok("domain", "list") == "DOMAIN  USERS  ALIASES\n"
    assert petrel_env.ctl_ok("domain", "list", "--json").strip() == "[]"
    assert petrel_env.ctl_ok("domain", "add", "example.test") == "added domain example.test\n"
    petrel_env.ctl_ok("domain", "add", "b.example")
    head, rows = table(petrel_env.ctl_ok("domain", "list"))
    assert head == ["DOMAIN", "USERS", "ALIASES"]
    assert rows == [["b.example", "0", "0"], ["example.test", "0", "0"]]
    data = json.loads(petrel_env.ctl_ok("domain", "list", "--json"))
    assert data == [{"domain": "b.example", "users": 0, "aliases": 0},
                    {"domain": "example.test", "users": 0, "aliases": 0}]
    assert "deleted domain b.example" in petrel_env.ctl_ok("domain", "del", "b.example")
    assert [r[0] for r in table(petrel_env.ctl_ok("domain", "list"))[1]] == ["example.test"]


def test_domain_errors(petrel_env):
    petrel_env.ctl_ok("domain", "add", "example.test")
    fails(petrel_env.ctl("domain", "add", "example.test"),
          "domain add: domain example.test already exists")
    fails(petrel_env.ctl("domain", "add", "bad domain!"),
          "domain add: invalid domain bad domain!")
    fails(petrel_env.ctl("domain", "del", "nowhere.test"),
          "domain del: domain nowhere.test does not exist")


def test_domain_del_removes_users(env):
    env.ctl_ok("domain", "del", "example.test")
    assert table(env.ctl_ok("user", "list"))[1] == []


# ----------------------------------------------------------------- users

def test_user_add_and_list(env):
    env.ctl_ok("user", "add", "bob@example.test", "--password-stdin", "--quota", "50M",
               input=PW2 + "\n")
    env.ctl_ok("user", "add", "carol@example.test", "--quota=1G", "--password-stdin",
               input=PW2)
    head, rows = table(env.ctl_ok("user", "list"))
    assert head == ["ADDRESS", "USED", "QUOTA", "MESSAGES"]
    assert rows == [["alice@example.test", "0", "unlimited", "0"],
                    ["bob@example.test", "0", "50M", "0"],
                    ["carol@example.test", "0", "1G", "0"]]
    data = json.loads(env.ctl_ok("user", "list", "--json"))
    assert data[1] == {"address": "bob@example.test", "used": 0, "quota": 50 * 1024 ** 2,
                       "messages": 0}
    assert [u["address"] for u in json.loads(env.ctl_ok("user", "list", "example.test",
                                                        "--json"))] == \
        ["alice@example.test", "bob@example.test", "carol@example.test"]


def test_user_add_output(petrel_env):
    petrel_env.ctl_ok("domain", "add", "example.test")
    r = petrel_env.ctl("user", "add", "a@example.test", "--password-stdin", input=PW + "\n")
    assert r.returncode == 0
    assert r.stdout == "added user a@example.test\n"
    assert r.stderr == ""


def test_user_list_columns_aligned(env):
    env.ctl_ok("user", "add", "a-much-longer-name@example.test", "--password-stdin",
               "--quota", "1500K", input=PW)
    lines = env.ctl_ok("user", "list").splitlines()
    col = lines[0].index("USED")
    for line in lines[1:]:
        assert line[col - 2:col] == "  " and line[col] != " "
    assert "1.4M" in lines[1] or "1.4M" in lines[2]


def test_user_errors(env):
    fails(env.ctl("user", "add", "x@example.org", "--password-stdin", input=PW),
          "user add: domain example.org does not exist")
    fails(env.ctl("user", "add", "not-an-address", "--password-stdin", input=PW),
          "user add: invalid address not-an-address")
    fails(env.ctl("user", "add", "a..b@example.test", "--password-stdin", input=PW),
          "user add: invalid address a..b@example.test")
    fails(env.ctl("user", "add", "alice@example.test", "--password-stdin", input=PW),
          "user add: user alice@example.test already exists")
    fails(env.ctl("user", "add", "ALICE@Example.TEST", "--password-stdin", input=PW),
          "user add: user ALICE@Example.TEST already exists")
    fails(env.ctl("user", "add", "e@example.test", "--password-stdin", input="\n"),
          "user add: empty password")
    fails(env.ctl("user", "add", "e@example.test", "--password-stdin", input=""),
          "user add: empty password")
    fails(env.ctl("user", "add", "q@example.test", "--password-stdin", "--quota", "12X",
                  input=PW),
          "user add: invalid size 12X (bytes, or with K, M, G; 0 = no limit)")
    fails(env.ctl("user", "del", "ghost@example.test"),
          "user del: user ghost@example.test does not exist")
    fails(env.ctl("user", "passwd", "ghost@example.test", "--password-stdin", input=PW),
          "user passwd: user ghost@example.test does not exist")
    fails(env.ctl("user", "list", "nowhere.test"),
          "user list: domain nowhere.test does not exist")
    assert [r[0] for r in table(env.ctl_ok("user", "list"))[1]] == ["alice@example.test"]


def test_password_never_from_argv(env):
    r = env.ctl("user", "add", "p@example.test", "--password", PW)
    assert r.returncode == 1
    assert "never taken from the command line" in r.stderr
    assert PW not in r.stderr


def test_password_prompt_needs_tty(env):
    # No controlling terminal under pytest's subprocess with setsid.
    import subprocess
    r = subprocess.run([str(env.build / "petrelctl"), "-c", str(env.conf), "user", "add",
                        "t@example.test"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, start_new_session=True)
    assert r.returncode == 1
    assert r.stderr == ("petrelctl: user add: no terminal to ask for the password "
                        "(use --password-stdin)\n")


def test_password_not_stored_or_printed(env):
    outputs = []
    for args in (("user", "list"), ("user", "list", "--json"), ("domain", "list")):
        r = env.ctl(*args)
        outputs += [r.stdout, r.stderr]
    r = env.ctl("user", "passwd", "alice@example.test", "--password-stdin", input=PW2 + "\n")
    outputs += [r.stdout, r.stderr]
    for text in outputs:
        assert PW not in text and PW2 not in text
    raw = env.db_path.read_bytes()
    for p in (PW, PW2):
        assert p.encode() not in raw
    pw_hash, scram = user_row(env, "alice@example.test")
    assert pw_hash.startswith("$y$")
    assert scram.startswith("SCRAM-SHA-256$")


def test_user_passwd_changes_hash(env):
    old_hash, old_scram = user_row(env, "alice@example.test")
    assert crypt.crypt(PW, old_hash) == old_hash
    r = env.ctl("user", "passwd", "alice@example.test", "--password-stdin", input=PW2 + "\r\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "changed the password of alice@example.test\n"
    new_hash, new_scram = user_row(env, "alice@example.test")
    assert new_hash != old_hash and new_scram != old_scram
    assert crypt.crypt(PW2, new_hash) == new_hash   # CR LF stripped
    assert crypt.crypt(PW, new_hash) != new_hash
    fails(env.ctl("user", "passwd", "alice@example.test", "--password-stdin", input="\n"),
          "user passwd: empty password")
    assert user_row(env, "alice@example.test")[0] == new_hash


def test_scram_secret_format(env):
    _, scram = user_row(env, "alice@example.test")
    mech, rest = scram.split("$", 1)
    params, keys = rest.split("$")
    iters, salt = params.split(":")
    stored, server = keys.split(":")
    assert mech == "SCRAM-SHA-256" and int(iters) >= 4096
    import base64
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(stored)) == 32 and len(base64.b64decode(server)) == 32


def test_user_quota(env):
    assert env.ctl_ok("user", "quota", "alice@example.test", "2G") == \
        "set the quota of alice@example.test to 2G\n"
    assert table(env.ctl_ok("user", "list"))[1][0][2] == "2G"
    assert json.loads(env.ctl_ok("user", "list", "--json"))[0]["quota"] == 2 * 1024 ** 3
    env.ctl_ok("user", "quota", "alice@example.test", "1048576")
    assert table(env.ctl_ok("user", "list"))[1][0][2] == "1M"
    assert env.ctl_ok("user", "quota", "alice@example.test", "0") == \
        "set the quota of alice@example.test to unlimited\n"
    assert table(env.ctl_ok("user", "list"))[1][0][2] == "unlimited"
    fails(env.ctl("user", "quota", "alice@example.test", "lots"),
          "user quota: invalid size lots (bytes, or with K, M, G; 0 = no limit)")
    fails(env.ctl("user", "quota", "alice@example.test", "--", "-5"),
          "user quota: invalid size -5 (bytes, or with K, M, G; 0 = no limit)")
    fails(env.ctl("user", "quota", "ghost@example.test", "1M"),
          "user quota: user ghost@example.test does not exist")


def test_user_del(env):
    assert env.ctl_ok("user", "del", "alice@example.test").startswith(
        "deleted user alice@example.test")
    assert env.ctl_ok("user", "list") == "ADDRESS  USED  QUOTA  MESSAGES\n"
    assert json.loads(env.ctl_ok("user", "list", "--json")) == []


def test_default_quota_from_config(petrel_env):
    petrel_env.write_config(extra={"store": {"default_quota": "100M"}})
    petrel_env.ctl_ok("domain", "add", "example.test")
    petrel_env.ctl_ok("user", "add", "d@example.test", "--password-stdin", input=PW)
    assert table(petrel_env.ctl_ok("user", "list"))[1][0][2] == "100M"


# --------------------------------------------------------------- aliases

def test_alias_add_list_del(env):
    env.ctl_ok("user", "add", "bob@example.test", "--password-stdin", input=PW)
    assert env.ctl_ok("alias", "list") == "ALIAS  TARGETS\n"
    assert env.ctl_ok("alias", "add", "info@example.test", "alice@example.test") == \
        "added alias info@example.test -> alice@example.test\n"
    # add on an existing alias adds the targets
    env.ctl_ok("alias", "add", "info@example.test", "bob@example.test,ext@elsewhere.test")
    data = json.loads(env.ctl_ok("alias", "list", "--json"))
    assert len(data) == 1 and data[0]["alias"] == "info@example.test"
    assert set(data[0]["targets"].split(",")) == \
        {"alice@example.test", "bob@example.test", "ext@elsewhere.test"}
    head, rows = table(env.ctl_ok("alias", "list", "example.test"))
    assert head == ["ALIAS", "TARGETS"] and rows[0][0] == "info@example.test"

    assert env.ctl_ok("alias", "del", "info@example.test", "bob@example.test") == \
        "removed bob@example.test from alias info@example.test\n"
    assert "bob@example.test" not in env.ctl_ok("alias", "list")
    assert env.ctl_ok("alias", "del", "info@example.test") == \
        "deleted alias info@example.test\n"
    assert env.ctl_ok("alias", "list") == "ALIAS  TARGETS\n"
    assert json.loads(env.ctl_ok("alias", "list", "--json")) == []


def test_alias_catch_all(env):
    env.ctl_ok("alias", "add", "@example.test", "alice@example.test")
    data = json.loads(env.ctl_ok("alias", "list", "--json"))
    assert data == [{"alias": "@example.test", "targets": "alice@example.test"}]
    assert table(env.ctl_ok("alias", "list"))[1] == [["@example.test", "alice@example.test"]]
    env.ctl_ok("alias", "del", "@example.test")


def test_alias_loop_refused(env):
    env.ctl_ok("alias", "add", "a1@example.test", "alice@example.test")
    env.ctl_ok("alias", "add", "a2@example.test", "a1@example.test")
    fails(env.ctl("alias", "add", "a1@example.test", "a2@example.test"),
          "alias add: alias a1@example.test -> a2@example.test would loop")
    fails(env.ctl("alias", "add", "a3@example.test", "a3@example.test"),
          "alias add: alias a3@example.test -> a3@example.test would loop")
    rows = table(env.ctl_ok("alias", "list"))[1]
    assert rows == [["a1@example.test", "alice@example.test"],
                    ["a2@example.test", "a1@example.test"]]


def test_alias_errors(env):
    fails(env.ctl("alias", "add", "x@nowhere.test", "alice@example.test"),
          "alias add: domain nowhere.test does not exist")
    fails(env.ctl("alias", "add", "x@example.test", "typo@example.test"),
          "alias add: a target in typo@example.test is not a local user or alias")
    fails(env.ctl("alias", "add", "alice@example.test", "bob@elsewhere.test"),
          "alias add: alice@example.test is a user; an alias cannot have the same address")
    fails(env.ctl("alias", "add", "bad address", "alice@example.test"),
          "alias add: invalid alias address or target in bad address alice@example.test")
    fails(env.ctl("alias", "add", "x@example.test"),
          "alias add: missing argument (usage: alias add ADDRESS TARGET[,TARGET...])")
    fails(env.ctl("alias", "del", "nope@example.test"),
          "alias del: alias nope@example.test does not exist")
    env.ctl_ok("alias", "add", "x@example.test", "alice@example.test")
    fails(env.ctl("alias", "add", "x@example.test", "alice@example.test"),
          "alias add: alias x@example.test already has the targets alice@example.test")
    fails(env.ctl("alias", "del", "x@example.test", "other@example.test"),
          "alias del: alias x@example.test with target other@example.test does not exist")


# ------------------------------------------------------------- mailboxes

def test_mailbox_list(env):
    head, rows = table(env.ctl_ok("mailbox", "list", "alice@example.test"))
    assert head[0] == "MAILBOX" and "MESSAGES" in head and "SIZE" in head
    names = [r[0] for r in rows]
    for name in ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"):
        assert name in names
    data = json.loads(env.ctl_ok("mailbox", "list", "alice@example.test", "--json"))
    inbox = next(m for m in data if m["mailbox"] == "INBOX")
    assert inbox["messages"] == 0 and inbox["size"] == 0
    assert isinstance(inbox["subscribed"], bool)
    sent = next(m for m in data if m["mailbox"] == "Sent")
    assert sent["special_use"] == "\\Sent"


def test_mailbox_errors(env):
    fails(env.ctl("mailbox", "list", "ghost@example.test"),
          "mailbox list: user ghost@example.test does not exist")
    fails(env.ctl("mailbox", "list"),
          "mailbox list: missing argument (usage: mailbox list ADDRESS [--json])")


# ----------------------------------------------------------------- queue

def test_queue_empty(petrel_env):
    out = petrel_env.ctl_ok("queue", "list")
    assert out.split("\n")[0].split()[0] == "ID" and out.count("\n") == 1
    assert json.loads(petrel_env.ctl_ok("queue", "list", "--json")) == []
    assert petrel_env.ctl_ok("queue", "flush") == "every queue entry is due now\n"


def test_queue_errors(petrel_env):
    fails(petrel_env.ctl("queue", "del", "999"), "queue del: queue entry 999 does not exist")
    fails(petrel_env.ctl("queue", "del", "abc"), "queue del: invalid queue id abc")
    fails(petrel_env.ctl("queue", "flush", "0x10"), "queue flush: invalid queue id 0x10")
    fails(petrel_env.ctl("queue", "flush", "999"),
          "queue flush: queue entry 999 does not exist")
    fails(petrel_env.ctl("queue", "del"),
          "queue del: missing argument (usage: queue del ID)")


# ------------------------------------------------------ terminal prompt

def run_on_tty(env, args, answers, timeout=20):
    """Runs petrelctl with a pseudo-terminal as its controlling tty, typing
    each answer after each password prompt. Returns (rc, tty_text, stdout, stderr)."""
    import fcntl
    import os
    import select
    import subprocess
    import termios
    import time

    master, slave = os.openpty()

    def make_ctty():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    p = subprocess.Popen([str(env.build / "petrelctl"), "-c", str(env.conf), *args],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=make_ctty, pass_fds=(slave,))
    os.close(slave)
    seen, pending = b"", list(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            # Answer once the prompt (ending in ": ") is on screen: petrelctl
            # turns echo off and flushes input before printing it.
            if pending and seen.rstrip(b" ").endswith(b":"):
                os.write(master, pending.pop(0).encode() + b"\n")
        elif p.poll() is not None:
            break
    out, err = p.communicate(timeout=timeout)
    os.close(master)
    return p.returncode, seen.decode(errors="replace"), out.decode(), err.decode()


def test_prompt_twice_without_echo(env):
    rc, tty, out, err = run_on_tty(env, ["user", "add", "tty@example.test"], [PW2, PW2])
    assert rc == 0, err
    assert out == "added user tty@example.test\n"
    assert "New password for tty@example.test:" in tty
    assert "Retype the password:" in tty
    assert PW2 not in tty + out + err          # not echoed, not printed
    pw_hash, _ = user_row(env, "tty@example.test")
    assert crypt.crypt(PW2, pw_hash) == pw_hash


def test_prompt_mismatch(env):
    rc, tty, out, err = run_on_tty(env, ["user", "passwd", "alice@example.test"],
                                   [PW2, PW2 + "x"])
    assert rc == 1
    assert err == "petrelctl: user passwd: the passwords do not match\n"
    pw_hash, _ = user_row(env, "alice@example.test")
    assert crypt.crypt(PW, pw_hash) == pw_hash   # unchanged


def test_prompt_empty(env):
    rc, tty, out, err = run_on_tty(env, ["user", "add", "e@example.test"], [""])
    assert rc == 1
    assert err == "petrelctl: user add: empty password\n"


# ------------------------------------------------------------ DKIM keys

import base64
import re
import subprocess
import time

DKIM_VERBS = [("dkim", "generate"), ("dkim", "list"), ("dkim", "del")]
# RFC 8410: the DER SubjectPublicKeyInfo of an Ed25519 key is this prefix
# and the raw 32-byte key, which is what k=ed25519 publishes (RFC 8463 §4.2).
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


@pytest.fixture
def denv(env):
    """env with the data dir closed to other users (no permission warning)."""
    env.data_dir.chmod(0o700)
    return env


def txt_strings(line):
    """The character-strings of a zone-file TXT line, unquoted."""
    return [re.sub(r"\\(.)", r"\1", s) for s in re.findall(r'"((?:[^"\\]|\\.)*)"', line)]


def txt_tags(line):
    """The tags of a DKIM key record line (its strings joined, RFC 6376 §3.6.2.2)."""
    strings = txt_strings(line)
    assert strings and all(len(s.encode()) <= 255 for s in strings), strings
    record = "".join(strings)
    return dict(t.strip().split("=", 1) for t in record.split(";") if t.strip())


def stored_pem(env, domain, selector):
    with env.db() as db:
        row = db.execute("SELECT k.private_pem FROM dkim_keys k JOIN domains d"
                         " ON d.id = k.domain_id WHERE d.name = ? AND k.selector = ?",
                         (domain, selector)).fetchone()
    assert row, (domain, selector)
    return row[0]


def openssl(*args):
    r = subprocess.run(["openssl", *map(str, args)], capture_output=True)
    return r.returncode, r.stdout


def check_key_signs(tmp, pem, tags):
    """A signature made with the stored private key verifies with the published
    p= key (openssl), and one over other data does not."""
    tmp.mkdir(exist_ok=True)
    key, pub, msg, other, sig = (tmp / n for n in ("key.pem", "pub.der", "msg", "other", "sig"))
    key.write_text(pem)
    key.chmod(0o600)
    der = base64.b64decode(tags["p"])
    msg.write_bytes(b"From: a@example.test\r\n\r\nsigned by petrel\r\n")
    other.write_bytes(b"From: a@example.test\r\n\r\nsigned by someone else\r\n")
    if tags["k"] == "rsa":
        pub.write_bytes(der)
        rc, text = openssl("pkey", "-pubin", "-inform", "DER", "-in", pub, "-noout", "-text")
        assert rc == 0 and b"2048 bit" in text, text
        assert openssl("dgst", "-sha256", "-sign", key, "-out", sig, msg)[0] == 0
        verify = ["dgst", "-sha256", "-verify", pub, "-keyform", "DER", "-signature", sig]
    else:
        assert len(der) == 32
        pub.write_bytes(ED25519_SPKI_PREFIX + der)
        assert openssl("pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", msg,
                       "-out", sig)[0] == 0
        verify = ["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", pub,
                  "-rawin", "-sigfile", sig, "-in"]
    assert openssl(*verify, msg)[0] == 0
    assert openssl(*verify, other)[0] != 0


def generated_record(out, domain, selector, algorithm, bits):
    """The two lines of dkim generate's output; returns the record's tags."""
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert lines[0] == (f"added DKIM key {selector} for {domain} ({algorithm}, {bits} bits);"
                        " publish this TXT record:")
    assert lines[1].startswith(f"{selector}._domainkey.{domain}. IN TXT ( \"")
    assert lines[1].endswith("\" )")
    return txt_tags(lines[1])


def this_month_selectors():
    """petrel + YYYYMM (UTC), now and a moment ago (a month may just have begun)."""
    return {time.strftime("petrel%Y%m", time.gmtime(t)) for t in (time.time() - 120, time.time())}


def test_dkim_help(petrel_env):
    out = petrel_env.ctl_ok("--help")
    for group, verb in DKIM_VERBS:
        assert f" {verb} " in out
        r = petrel_env.ctl(group, verb, "--help")
        assert r.returncode == 0 and r.stdout.startswith(f"usage: petrelctl [-c FILE] {group} {verb}")
    assert "dns" in out
    r = petrel_env.ctl("dkim", "--help")
    assert r.stdout.startswith("usage: petrelctl [-c FILE] dkim VERB")
    r = petrel_env.ctl("dns", "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: petrelctl [-c FILE] dns DOMAIN\n")


def test_dkim_generate_rsa(denv, tmp_path):
    r = denv.ctl("dkim", "generate", "example.test")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    selector = r.stdout.split()[3]
    assert selector in this_month_selectors()
    tags = generated_record(r.stdout, "example.test", selector, "rsa-sha256", 2048)
    assert tags["v"] == "DKIM1" and tags["k"] == "rsa"
    assert len(txt_strings(r.stdout.splitlines()[1])) == 2  # 2048-bit: over 255 bytes
    check_key_signs(tmp_path / "rsa", stored_pem(denv, "example.test", selector), tags)


def test_dkim_generate_ed25519(denv, tmp_path):
    out = denv.ctl_ok("dkim", "generate", "Example.TEST", "--selector", "Ed.2026",
                      "--algorithm", "ed25519")
    tags = generated_record(out, "example.test", "ed.2026", "ed25519-sha256", 256)
    assert tags["v"] == "DKIM1" and tags["k"] == "ed25519"
    check_key_signs(tmp_path / "ed", stored_pem(denv, "example.test", "ed.2026"), tags)
    out = denv.ctl_ok("dkim", "generate", "example.test", "--selector=s2", "--algorithm=rsa")
    generated_record(out, "example.test", "s2", "rsa-sha256", 2048)


def test_dkim_list_and_del(denv):
    denv.ctl_ok("domain", "add", "b.test")
    assert denv.ctl_ok("dkim", "list") == "DOMAIN  SELECTOR  ALGORITHM  CREATED\n"
    assert denv.ctl_ok("dkim", "list", "--json").strip() == "[]"
    denv.ctl_ok("dkim", "generate", "example.test", "--selector", "old", "--algorithm",
                "ed25519")
    denv.ctl_ok("dkim", "generate", "example.test", "--selector", "new", "--algorithm",
                "ed25519")
    denv.ctl_ok("dkim", "generate", "b.test", "--selector", "s", "--algorithm", "ed25519")
    head, rows = table(denv.ctl_ok("dkim", "list"))
    assert head == ["DOMAIN", "SELECTOR", "ALGORITHM", "CREATED"]
    # By domain, the newest key (the signing one) first.
    assert [r[:3] for r in rows] == [["b.test", "s", "ed25519-sha256"],
                                     ["example.test", "new", "ed25519-sha256"],
                                     ["example.test", "old", "ed25519-sha256"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r[3]) for r in rows)
    data = json.loads(denv.ctl_ok("dkim", "list", "example.test", "--json"))
    assert [sorted(k) for k in data] == [["algorithm", "created", "domain", "selector"]] * 2
    assert [(k["domain"], k["selector"], k["algorithm"]) for k in data] == \
        [("example.test", "new", "ed25519-sha256"), ("example.test", "old", "ed25519-sha256")]
    assert "PRIVATE" not in denv.ctl_ok("dkim", "list", "--json")   # never the key itself

    out = denv.ctl_ok("dkim", "del", "example.test", "old")
    assert out.startswith("deleted DKIM key old of example.test")
    assert [r[1] for r in table(denv.ctl_ok("dkim", "list", "example.test"))[1]] == ["new"]
    fails(denv.ctl("dkim", "del", "example.test", "old"),
          "dkim del: domain example.test has no DKIM key with selector old")
    fails(denv.ctl("dkim", "del", "nowhere.test", "old"),
          "dkim del: domain nowhere.test does not exist")
    fails(denv.ctl("dkim", "list", "nowhere.test"),
          "dkim list: domain nowhere.test does not exist")
    # A domain's keys go with it.
    denv.ctl_ok("domain", "del", "b.test")
    assert [r[0] for r in table(denv.ctl_ok("dkim", "list"))[1]] == ["example.test"]


def test_dkim_generate_errors(denv):
    denv.ctl_ok("dkim", "generate", "example.test", "--selector", "s1", "--algorithm", "ed25519")
    msg = ("dkim generate: domain example.test already has a DKIM key with selector {} "
           "(choose another with --selector)")
    fails(denv.ctl("dkim", "generate", "example.test", "--selector", "s1"), msg.format("s1"))
    fails(denv.ctl("dkim", "generate", "example.test", "--selector", "S1"), msg.format("S1"))
    fails(denv.ctl("dkim", "generate", "nowhere.test"),
          "dkim generate: domain nowhere.test does not exist")
    fails(denv.ctl("dkim", "generate", "example.test", "--algorithm", "dsa"),
          "dkim generate: invalid algorithm dsa (rsa or ed25519)")
    for bad in ("a_b", "-a", "a..b", "x" * 64):
        fails(denv.ctl("dkim", "generate", "example.test", "--selector", bad,
                       "--algorithm", "ed25519"),
              f"dkim generate: invalid selector {bad} (labels of letters, digits and hyphens,"
              " at most 63 bytes each, joined by dots)")
    fails(denv.ctl("dkim", "generate", "example.test", "--selector"),
          "dkim generate: --selector needs a SELECTOR")
    fails(denv.ctl("dkim", "generate"),
          "dkim generate: missing argument (usage: dkim generate DOMAIN [--selector S]"
          " [--algorithm A])")
    assert [r[1] for r in table(denv.ctl_ok("dkim", "list"))[1]] == ["s1"]


def test_dkim_generate_warns_when_readable(env):
    env.data_dir.chmod(0o755)
    (env.data_dir / "petrel.db").chmod(0o644)
    r = env.ctl("dkim", "generate", "example.test", "--algorithm", "ed25519")
    assert r.returncode == 0
    assert r.stderr == (f"petrelctl: warning: {env.data_dir}/petrel.db holds the private key"
                        f" and other users can read it (file 644, directory 755):"
                        f" chmod 700 {env.data_dir}\n")
    env.data_dir.chmod(0o700)
    r = env.ctl("dkim", "generate", "example.test", "--selector", "s2", "--algorithm", "ed25519")
    assert r.returncode == 0 and r.stderr == ""


# ------------------------------------------------------------------- dns

DNS_LISTEN = {"smtp": "127.0.0.1:2525", "submission": "127.0.0.1:2587",
              "submissions": "127.0.0.1:2465", "imaps": "127.0.0.1:2993",
              "pop3s": "0.0.0.0:2995"}


def records(out):
    """The non-comment lines of dns output, each split into fields."""
    return [line for line in out.splitlines() if line and not line.startswith(";")]


def test_dns(denv, tls_dir):
    denv.write_config(listen=DNS_LISTEN, extra={"tls": {"cert": tls_dir / "cert.pem",
                                                        "key": tls_dir / "key.pem"}})
    gen = denv.ctl_ok("dkim", "generate", "example.test", "--selector", "rsa1")
    published = generated_record(gen, "example.test", "rsa1", "rsa-sha256", 2048)["p"]
    out = denv.ctl_ok("dns", "Example.Test")
    lines = out.splitlines()
    # Every record has a comment above it.
    for i, line in enumerate(lines):
        if not line.startswith(";"):
            assert i > 0 and lines[i - 1].startswith(";"), line
    recs = records(out)
    assert "example.test. IN MX 10 mail.example.test." in recs
    assert 'example.test. IN TXT "v=spf1 mx -all"' in recs
    assert '_dmarc.example.test. IN TXT "v=DMARC1; p=quarantine; ' \
           'rua=mailto:postmaster@example.test"' in recs
    dkim = [r for r in recs if r.startswith("rsa1._domainkey.example.test. IN TXT ( ")]
    assert len(dkim) == 1 and txt_tags(dkim[0])["p"] == published
    for line in recs:
        if " IN TXT " in line:
            assert all(len(s.encode()) <= 255 for s in txt_strings(line)), line
    # RFC 6186 / RFC 8314 SRV records with the configured ports; off is "0 0 0 .".
    assert "_submissions._tcp.example.test. IN SRV 0 1 2465 mail.example.test." in recs
    assert "_submission._tcp.example.test. IN SRV 10 1 2587 mail.example.test." in recs
    assert "_imaps._tcp.example.test. IN SRV 0 1 2993 mail.example.test." in recs
    assert "_imap._tcp.example.test. IN SRV 0 0 0 ." in recs
    assert "_pop3s._tcp.example.test. IN SRV 0 1 2995 mail.example.test." in recs
    assert "_pop3._tcp.example.test. IN SRV 0 0 0 ." in recs
    assert len(recs) == 4 + 6
    # Comments: the A/AAAA hint, the smarthost, p=none, the port-25 forward.
    assert "public IPv4 address" in out and "does not know" in out
    assert "include:" in out and "p=none" in out
    assert "[listen] smtp is port 2525" in out
    assert "postmaster@example.test is neither a user nor an alias" in out


def test_dns_keys_and_errors(denv):
    out = denv.ctl_ok("dns", "example.test")
    assert "; DKIM (RFC 6376): example.test has no key yet: run petrelctl dkim generate " \
           "example.test" in out
    assert not [r for r in records(out) if "_domainkey" in r]
    denv.ctl_ok("alias", "add", "postmaster@example.test", "alice@example.test")
    denv.ctl_ok("dkim", "generate", "example.test", "--selector", "old", "--algorithm",
                "ed25519")
    denv.ctl_ok("dkim", "generate", "example.test", "--selector", "new", "--algorithm",
                "ed25519")
    out = denv.ctl_ok("dns", "example.test")
    keys = [r.split()[0] for r in records(out) if "_domainkey" in r]
    assert keys == ["new._domainkey.example.test.", "old._domainkey.example.test."]
    assert "no key yet" not in out and "neither a user nor an alias" not in out
    # With no listener but smtp off: every SRV says "not available".
    assert len([r for r in records(out) if r.endswith("IN SRV 0 0 0 .")]) == 6
    fails(denv.ctl("dns", "nowhere.test"), "dns: domain nowhere.test does not exist")
    fails(denv.ctl("dns"), "dns: missing argument (usage: dns DOMAIN)")
    fails(denv.ctl("dns", "a.test", "b.test"), "dns: too many arguments (usage: dns DOMAIN)")
