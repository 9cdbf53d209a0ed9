"""A small authoritative DNS server for Petrel's tests, on python3-dnslib.

It answers from a zone given as a dict, on one free loopback port over both
UDP and TCP (as a real server does: a UDP answer too big for the client is
sent with TC set, and the client asks again over TCP). Petrel's [dns] server
key (or dns_new()) points at it: ``server = 127.0.0.1:PORT``.

Zone: {name: records}. Names are case-insensitive, with or without the
trailing dot. Records:

    zone = {
        "example.test": {
            "A": ["192.0.2.1"],
            "AAAA": ["2001:db8::1"],
            "MX": [[10, "mx1.example.test"], [5, "mx0.example.test"]],
            "TXT": [
                "v=spf1 -all",             # one record; a str longer than
                                           # 255 bytes is split in 255-byte
                                           # strings, as zone files do
                ["v=DKIM1; ", "p=MIIB"],   # one record of several strings
            ],
            "PTR": ["host.example.test"],
            "ttl": 300,                    # for every record here (default 300)
        },
        "nullmx.test": {"MX": [[0, "."]]},      # RFC 7505 null MX
        "www.example.test": {"CNAME": "example.test"},
        "slow.test": {"A": ["192.0.2.9"], "delay": 0.5},  # answer after 0.5 s
        "down.test": "drop",         # never answered: timeouts
        "broken.test": "servfail",   # RCODE 2
        "closed.test": "refused",    # RCODE 5
    }

A name in the zone (or above one: "test" when "a.test" is there, RFC 8020)
with no record of the asked type gets NOERROR with an empty answer (NODATA);
any other name gets NXDOMAIN. A CNAME is followed inside the zone (at most 8
links). Other types (SOA, NS, ...) get NODATA.

Use:

    from dnsserver import DNSServer
    with DNSServer(zone) as dns:         # or dns = DNSServer(zone).start() ... dns.stop()
        dns.port, dns.address            # 12345, "127.0.0.1:12345"
        dns.queries                      # [("example.test", "MX", "udp"), ...]
        dns.zone["new.test"] = {...}     # the zone may be changed while it runs
        dns.drop_all = True              # stop answering anything

From another language (the C unit tests):

    python3 dnsserver.py --zone '{"a.test": {"A": ["192.0.2.1"]}}' --print-port --until-eof

prints the port on the first line of stdout once both sockets listen, and
serves until SIGTERM / SIGINT or, with --until-eof, until stdin is closed (so
it goes away with the process that started it). --zone @FILE reads the JSON
from a file.
"""

import argparse
import json
import select
import signal
import socket
import struct
import sys
import threading

from dnslib import AAAA, CNAME, EDNS0, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSError
from dnslib import DNSHeader, DNSRecord

DEFAULT_TTL = 300
MAX_CNAME_CHAIN = 8
PLAIN_UDP_SIZE = 512  # RFC 1035 §4.2.1, without EDNS
MAX_UDP_SIZE = 4096   # what we honour of a client's EDNS payload size
MODES = ("drop", "servfail", "refused")


def _norm(name):
    return str(name).rstrip(".").lower()


def _txt_strings(value):
    """One TXT record's character-strings (each at most 255 bytes)."""
    if isinstance(value, (list, tuple)):
        return [v.encode() if isinstance(v, str) else bytes(v) for v in value]
    data = value.encode() if isinstance(value, str) else bytes(value)
    if not data:
        return [b""]
    return [data[i:i + 255] for i in range(0, len(data), 255)]


class DNSServer:
    """The server. Not started until start() or `with`."""

    def __init__(self, zone, host="127.0.0.1", port=0, verbose=False):
        self.zone = zone
        self.verbose = verbose  # each query on stderr
        self.host = host
        self.port = port
        self.drop_all = False
        self.queries = []   # (name, type, "udp" | "tcp"), in arrival order
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._udp = None
        self._tcp = None

    # ---------------------------------------------------------- lifecycle

    @property
    def address(self):
        """The value for Petrel's [dns] server key."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(50):  # the UDP port the kernel picks may be taken for TCP
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.bind((self.host, self.port))
            port = udp.getsockname()[1]
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
            except OSError:
                udp.close()
                tcp.close()
                if self.port:
                    raise
                continue
            tcp.listen(64)
            self._udp, self._tcp, self.port = udp, tcp, port
            break
        else:
            raise OSError("no port free for both UDP and TCP")
        for target in (self._serve_udp, self._serve_tcp):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []
        for s in (self._udp, self._tcp):
            if s:
                s.close()
        self._udp = self._tcp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ answers

    def _entry(self, name):
        for key, value in self.zone.items():
            if _norm(key) == name:
                return value
        return None

    def _exists(self, name):
        return any(_norm(k) == name or _norm(k).endswith("." + name) for k in self.zone)

    def _records(self, name, entry, qtype):
        ttl = int(entry.get("ttl", DEFAULT_TTL))
        out = []
        if qtype == "A":
            out = [RR(name, QTYPE.A, ttl=ttl, rdata=A(v)) for v in entry.get("A", [])]
        elif qtype == "AAAA":
            out = [RR(name, QTYPE.AAAA, ttl=ttl, rdata=AAAA(v)) for v in entry.get("AAAA", [])]
        elif qtype == "MX":
            out = [RR(name, QTYPE.MX, ttl=ttl, rdata=MX(host, int(pref)))
                   for pref, host in entry.get("MX", [])]
        elif qtype == "TXT":
            out = [RR(name, QTYPE.TXT, ttl=ttl, rdata=TXT(_txt_strings(v)))
                   for v in entry.get("TXT", [])]
        elif qtype == "PTR":
            out = [RR(name, QTYPE.PTR, ttl=ttl, rdata=PTR(v)) for v in entry.get("PTR", [])]
        return out

    def answer(self, request):
        """The reply to a parsed request, or None to stay silent. Also gives
        the delay in seconds: (reply, delay)."""
        reply = DNSRecord(DNSHeader(id=request.header.id, bitmap=request.header.bitmap,
                                    qr=1, aa=1, ra=0), q=request.q)
        if self.drop_all:
            return None, 0
        qname = _norm(request.q.qname)
        qtype = QTYPE.get(request.q.qtype, str(request.q.qtype))
        name = qname
        delay = 0
        for _ in range(MAX_CNAME_CHAIN + 1):
            entry = self._entry(name)
            if isinstance(entry, str):
                if entry not in MODES:
                    raise ValueError(f"unknown mode {entry!r} for {name}")
                if entry == "drop":
                    return None, 0
                reply.header.rcode = RCODE.SERVFAIL if entry == "servfail" else RCODE.REFUSED
                return reply, delay
            if entry is None:
                if not self._exists(name):
                    reply.header.rcode = RCODE.NXDOMAIN
                return reply, delay
            delay = max(delay, float(entry.get("delay", 0)))
            target = entry.get("CNAME")
            if target and qtype != "CNAME":
                reply.add_answer(RR(name, QTYPE.CNAME, ttl=int(entry.get("ttl", DEFAULT_TTL)),
                                    rdata=CNAME(target)))
                name = _norm(target)
                continue
            if target:
                reply.add_answer(RR(name, QTYPE.CNAME, ttl=int(entry.get("ttl", DEFAULT_TTL)),
                                    rdata=CNAME(target)))
            for rr in self._records(name, entry, qtype):
                reply.add_answer(rr)
            return reply, delay
        reply.header.rcode = RCODE.SERVFAIL  # CNAME chain too long or a loop
        return reply, delay

    def _respond(self, data, proto):
        """Wire reply to wire request for proto, or None (no reply)."""
        try:
            request = DNSRecord.parse(data)
        except DNSError:
            return None, 0
        if not request.questions:
            return None, 0
        entry = (_norm(request.q.qname), QTYPE.get(request.q.qtype, str(request.q.qtype)), proto)
        with self._lock:
            self.queries.append(entry)
        if self.verbose:
            print("dnsserver: %s %s %s" % (entry[2], entry[0], entry[1]), file=sys.stderr,
                  flush=True)
        reply, delay = self.answer(request)
        if reply is None:
            return None, 0
        opt = [rr for rr in request.ar if rr.rtype == QTYPE.OPT]
        limit = PLAIN_UDP_SIZE
        if opt:
            limit = max(PLAIN_UDP_SIZE, min(opt[0].rclass, MAX_UDP_SIZE))
            reply.add_ar(EDNS0(udp_len=MAX_UDP_SIZE))
        wire = reply.pack()
        if proto == "udp" and len(wire) > limit:
            # RFC 2181 §9: TC set, the question kept, no records.
            short = DNSRecord(DNSHeader(id=reply.header.id, bitmap=reply.header.bitmap,
                                        tc=1), q=request.q)
            short.header.tc = 1
            if opt:
                short.add_ar(EDNS0(udp_len=MAX_UDP_SIZE))
            wire = short.pack()
        return wire, delay

    def _send_later(self, delay, fn, *args):
        if delay <= 0:
            fn(*args)
            return
        t = threading.Timer(delay, fn, args)
        t.daemon = True
        t.start()

    def _serve_udp(self):
        sock = self._udp
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.1)
            if not ready:
                continue
            try:
                data, peer = sock.recvfrom(65535)
            except OSError:
                continue
            wire, delay = self._respond(data, "udp")
            if wire is not None:
                self._send_later(delay, self._udp_send, sock, wire, peer)

    def _udp_send(self, sock, wire, peer):
        try:
            sock.sendto(wire, peer)
        except OSError:
            pass

    def _serve_tcp(self):
        sock = self._tcp
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.1)
            if not ready:
                continue
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._serve_conn, args=(conn,), daemon=True)
            t.start()

    def _serve_conn(self, conn):
        """Several queries per connection (clients pipeline them, RFC 7766)."""
        lock = threading.Lock()
        buf = b""
        with conn:
            while not self._stop.is_set():
                ready, _, _ = select.select([conn], [], [], 0.1)
                if not ready:
                    continue
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 2:
                    n = struct.unpack("!H", buf[:2])[0]
                    if len(buf) < 2 + n:
                        break
                    data, buf = buf[2:2 + n], buf[2 + n:]
                    wire, delay = self._respond(data, "tcp")
                    if wire is not None:
                        self._send_later(delay, self._tcp_send, conn, lock, wire)

    def _tcp_send(self, conn, lock, wire):
        with lock:
            try:
                conn.sendall(struct.pack("!H", len(wire)) + wire)
            except OSError:
                pass


def main(argv=None):
    ap = argparse.ArgumentParser(description="Authoritative test DNS server (UDP and TCP).")
    ap.add_argument("--zone", required=True, help="the zone as JSON, or @FILE")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: a free port")
    ap.add_argument("--print-port", action="store_true",
                    help="print the port on stdout once listening")
    ap.add_argument("--until-eof", action="store_true",
                    help="stop when stdin reaches end of file")
    ap.add_argument("--verbose", action="store_true", help="each query on stderr")
    args = ap.parse_args(argv)
    text = args.zone
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            text = f.read()
    zone = json.loads(text)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server = DNSServer(zone, host=args.host, port=args.port, verbose=args.verbose).start()
    if args.print_port:
        print(server.port, flush=True)
    try:
        while not done.is_set():
            if args.until_eof:
                ready, _, _ = select.select([sys.stdin], [], [], 0.2)
                if ready and not sys.stdin.buffer.read1(4096):
                    break
            else:
                done.wait(0.2)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
