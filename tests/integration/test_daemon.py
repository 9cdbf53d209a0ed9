"""petreld start-up: config validation before anything is bound, signals."""

import socket
import subprocess

from conftest import free_port, render_config


def run_petreld(env, text, *args):
    env.conf.write_text(text)
    return subprocess.run([str(env.build / "petreld"), "-c", str(env.conf), *args],
                          capture_output=True, text=True, timeout=30)


def base(env, tls_dir, port):
    return {
        "server": {"hostname": "mail.example.test", "data_dir": str(env.data_dir)},
        "tls": {"cert": str(tls_dir / "cert.pem"), "key": str(tls_dir / "key.pem")},
        "listen": {"smtp": f"127.0.0.1:{port}"},
    }


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_unknown_key_names_file_line_and_key(petrel_env, tls_dir):
    port = free_port()
    cfg = base(petrel_env, tls_dir, port)
    cfg["listen"]["smtpp"] = "127.0.0.1:1"
    r = run_petreld(petrel_env, render_config(cfg))
    assert r.returncode == 1
    line = next(i + 1 for i, l in enumerate(petrel_env.conf.read_text().splitlines())
                if l.startswith("smtpp"))
    assert f"petrel.conf:{line}:" in r.stderr and "smtpp" in r.stderr and "unknown key" in r.stderr
    assert port_free(port)


def test_bad_address_and_missing_cert(petrel_env, tls_dir):
    port = free_port()
    cfg = base(petrel_env, tls_dir, port)
    cfg["listen"]["submission"] = "not-an-address:99999"
    r = run_petreld(petrel_env, render_config(cfg))
    assert r.returncode == 1 and "submission" in r.stderr
    cfg = base(petrel_env, tls_dir, port)
    cfg["tls"]["cert"] = str(tls_dir / "missing.pem")
    r = run_petreld(petrel_env, render_config(cfg))
    assert r.returncode == 1 and "missing.pem" in r.stderr
    assert port_free(port)


def test_check_only(petrel_env, tls_dir):
    r = run_petreld(petrel_env, render_config(base(petrel_env, tls_dir, free_port())), "-t")
    assert r.returncode == 0 and r.stdout.endswith(": ok\n")


def test_sighup_reloads_certificate(server):
    server.proc.send_signal(1)
    import time
    for _ in range(50):
        if "event=reload-tls result=ok" in server.log_text():
            break
        time.sleep(0.05)
    assert "event=reload-tls result=ok" in server.log_text()
    import smtplib
    with smtplib.SMTP_SSL("127.0.0.1", server.port("submissions"), timeout=10,
                          context=server.ssl_context()) as s:
        assert s.noop()[0] == 250
