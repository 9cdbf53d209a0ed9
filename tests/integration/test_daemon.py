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


def served_cert(port):
    """The DER certificate the server presents on an implicit-TLS port."""
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True)


def test_sighup_reloads_certificate(make_server, tmp_path, repo_root):
    import shutil
    import time
    tls = tmp_path / "tls"
    subprocess.run([str(repo_root / "scripts/make-cert.sh"), "mail.example.test", str(tls)],
                   check=True)
    server = make_server(extra={"tls": {"cert": str(tls / "cert.pem"),
                                        "key": str(tls / "key.pem")}})
    first = served_cert(server.port("submissions"))
    new = tmp_path / "new"
    subprocess.run([str(repo_root / "scripts/make-cert.sh"), "mail.example.test", str(new)],
                   check=True)
    # A broken pair is refused and the old one stays.
    (tls / "cert.pem").write_text("garbage")
    server.proc.send_signal(1)
    for _ in range(100):
        if "event=reload-tls result=failed" in server.log_text():
            break
        time.sleep(0.05)
    assert "event=reload-tls result=failed" in server.log_text()
    assert served_cert(server.port("submissions")) == first
    shutil.copy(new / "cert.pem", tls / "cert.pem")
    shutil.copy(new / "key.pem", tls / "key.pem")
    server.proc.send_signal(1)
    for _ in range(100):
        if "event=reload-tls result=ok" in server.log_text():
            break
        time.sleep(0.05)
    second = served_cert(server.port("submissions"))
    assert second != first
    assert second == ssl_der(new / "cert.pem")


def ssl_der(path):
    import ssl
    return ssl.PEM_cert_to_DER_cert(path.read_text())
