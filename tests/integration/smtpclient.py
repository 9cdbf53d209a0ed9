"""A raw SMTP client for tests that need exact bytes on the wire
(pipelining, smuggling, injection), next to smtplib for the normal paths."""

import socket
import ssl


class Raw:
    def __init__(self, port, host="127.0.0.1", tls_context=None, timeout=10):
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls_context is not None:
            sock = tls_context.wrap_socket(sock, server_hostname="mail.example.test")
        self.sock = sock
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; pending {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """One whole reply: (code, [texts]) — multi-line replies joined."""
        texts = []
        while True:
            ln = self.line()
            texts.append(ln[4:])
            if len(ln) < 4 or ln[3] != "-":
                return int(ln[:3]), texts

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def expect(self, text, code, enhanced=None):
        got, texts = self.cmd(text)
        assert got == code, f"{text!r}: {got} {texts}"
        if enhanced:
            assert texts[-1].startswith(enhanced), f"{text!r}: {got} {texts}"
        return texts

    def starttls(self, context):
        self.sock = context.wrap_socket(self.sock, server_hostname="mail.example.test")

    def closed(self, timeout=5):
        """True when the server has closed the connection."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
