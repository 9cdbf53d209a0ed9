"""Reading IMAP responses as data: a tokenizer for the response grammar
(atoms, numbers, NIL, quoted strings, literals {n} and ~{n}, lists), so
two servers' FETCH answers can be compared as values, not as bytes (one may
send a string quoted where the other sends a literal)."""

import re


class Reader:
    """Responses from a byte stream: read(n) -> bytes (b"" at the end)."""

    def __init__(self, read):
        self.read = read
        self.buf = b""

    def _fill(self):
        chunk = self.read(65536)
        if not chunk:
            raise EOFError(self.buf)
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def take(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """One whole response, literals inlined: a list of (line, [literal bytes])."""
        text = b""
        while True:
            line = self.line()
            m = re.search(rb"~?\{(\d+)\+?\}$", line)
            if not m:
                return text + line
            text += line[:m.start()] + b'\x00LIT' + self.take(int(m.group(1))) + b'\x00END'


def parse(data):
    """The value of a response from the token after the prefix, e.g.
    parse(b'(FLAGS (\\Seen) UID 4)') -> ['FLAGS', ['\\Seen'], 'UID', '4']."""
    pos = 0

    def value():
        nonlocal pos
        c = data[pos:pos + 1]
        if c == b"(":
            pos += 1
            out = []
            while data[pos:pos + 1] != b")":
                if data[pos:pos + 1] == b" ":
                    pos += 1
                    continue
                out.append(value())
            pos += 1
            return out
        if c == b'"':
            pos += 1
            s = b""
            while data[pos:pos + 1] != b'"':
                if data[pos:pos + 1] == b"\\":
                    pos += 1
                s += data[pos:pos + 1]
                pos += 1
            pos += 1
            return s
        if data.startswith(b"\x00LIT", pos):
            end = data.index(b"\x00END", pos)
            s = data[pos + 4:end]
            pos = end + 4
            return s
        m = re.compile(rb"[^ ()\x00]+(\[[^\]]*\])?(<\d+>)?").match(data, pos)
        pos = m.end()
        tok = m.group(0)
        return None if tok.upper() == b"NIL" else tok.decode("latin-1")

    out = []
    while pos < len(data):
        if data[pos:pos + 1] == b" ":
            pos += 1
            continue
        out.append(value())
    return out


def fetch_items(resp):
    """{item name: value} of a '* n FETCH (...)' response."""
    m = re.match(rb"\* (\d+) FETCH ", resp)
    assert m, resp[:80]
    items = parse(resp[m.end():])[0]
    return int(m.group(1)), {items[i].upper(): items[i + 1] for i in range(0, len(items), 2)}
