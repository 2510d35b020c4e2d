"""Hostile loopback peers: servers that try to make a diagnosis read forever or wait forever.

Real TCP servers on 127.0.0.1 (a thread per listener and per connection, blocking sockets),
for tests/test_hostile.py and benchmarks/bench_hostile.py. Each peer has a *behaviour*
(what it does to the client) and a *flavour* (the protocol it pretends to speak, so that the
client's parser gets as far as it can before the bytes turn hostile):

* ``flood``: a plausible start of the flavour's first message, then endless filler, as fast as
  the client reads, until the client hangs up;
* ``huge``: one 100 MB message whose length field says so (MySQL 0xffffff packet,
  PostgreSQL message length, Redis bulk ``$104857600``, HTTP ``Content-Length``), all sent;
* ``drip``: a valid first message, one byte every ``interval`` seconds (slowloris);
* ``trickle``: complete protocol units, one every ``interval`` seconds, forever (PostgreSQL
  NoticeResponses, HTTP header lines, Redis push messages, text lines): each read finishes
  well within a per-read timeout, so only a total budget ends it;
* ``tls_record``: a TLS handshake record claiming the maximum length, then endless filler,
  whatever the flavour (a TLS port where the client expects something else);
* ``endless_headers``: ``HTTP/1.1 200 OK`` and then header lines forever, whatever the flavour;
* ``drip_body`` (http, https): complete headers at once, then the body one byte at a time.

The ``https`` flavour runs a real TLS handshake first (certificate from ``trustme``) and then
behaves as ``http`` inside TLS, except ``drip`` and ``tls_record``, which attack the
handshake itself (a ServerHello dripped byte by byte; a record claiming 16 KB holding a
handshake message claiming 16 MB).

Where the client speaks first (PostgreSQL, Redis, HTTP, TLS) the peer waits up to ``PREREAD``
seconds for its first bytes (an SSLRequest, a PING, a request) before it misbehaves, so that
the client's conversation gets as deep as it would with a real server. Each connection
thread stops when the client hangs up or when the peer is stopped; ``stop()`` joins them all.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Behaviour = Literal[
    "flood", "huge", "drip", "trickle", "tls_record", "endless_headers", "drip_body"
]
Flavour = Literal["tcp", "mysql", "postgresql", "redis", "http", "https"]

BEHAVIOURS: tuple[Behaviour, ...] = (
    "flood",
    "huge",
    "drip",
    "trickle",
    "tls_record",
    "endless_headers",
    "drip_body",
)
#: Behaviours that only make sense for some flavours.
ONLY_FOR: dict[Behaviour, tuple[Flavour, ...]] = {
    "trickle": ("tcp", "postgresql", "redis", "http", "https"),
    "drip_body": ("http", "https"),
}
FLAVOURS: tuple[Flavour, ...] = ("tcp", "mysql", "postgresql", "redis", "http", "https")

HUGE = 100 * 1024 * 1024
PREREAD = 0.3
_CHUNK = 64 * 1024
_FILLER = b"a" * _CHUNK
_FIX = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "db"

_TLS_HUGE_RECORD = b"\x16\x03\x03\xff\xff"  # handshake record, 65535 bytes (> 2^14 + 2048)
# A valid-length record (16 KB) holding a ServerHello that claims 16 MB.
_TLS_HUGE_MESSAGE = b"\x16\x03\x03\x40\x00\x02\xff\xff\xff\x03\x03"
# The start of a ServerHello, dripped: looks like TLS, never completes.
_TLS_SERVER_HELLO = b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03" + bytes(range(32)) + b"\x00"


def _pg_error(fields: bytes) -> bytes:
    return b"E" + (len(fields) + 4).to_bytes(4, "big") + fields


def _flood_start(flavour: Flavour) -> bytes:
    """The plausible start of the flavour's first message; filler follows, forever."""
    return {
        "tcp": b"SSH-2.0-",
        # Packet of 16383 bytes (the parser's cap is 16 KB), protocol 10, a version without NUL.
        "mysql": b"\xff\x3f\x00\x00\x0a5.5.5-10.11.",
        # 'N' to the SSLRequest, then an ErrorResponse of 65536 bytes (the parser's cap).
        "postgresql": b"NE\x00\x01\x00\x00SFATAL\x00M",
        # A simple-string reply whose line never ends.
        "redis": b"+",
        # A close-delimited body that never ends.
        "http": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
        "https": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
    }[flavour]


def _huge_start(flavour: Flavour) -> bytes:
    """A header whose length field announces the 100 MB that follow."""
    return {
        "tcp": b"",
        "mysql": b"\xff\xff\xff\x00\x0a5.5.5-10.11.6-MariaDB",  # 16 MB packets (continued)
        "postgresql": b"N" + b"E" + (HUGE + 4).to_bytes(4, "big") + b"SFATAL\x00",
        "redis": b"$%d\r\n" % HUGE,
        "http": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % HUGE,
        "https": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % HUGE,
    }[flavour]


def _drip_message(flavour: Flavour) -> bytes:
    """A valid, complete first message (dripped one byte at a time)."""
    return {
        "tcp": b"SSH-2.0-OpenSSH_9.2p1\r\n",
        "mysql": (_FIX / "mariadb_greeting.bin").read_bytes(),
        "postgresql": b"N" + (_FIX / "pg_53300.bin").read_bytes(),
        "redis": b"+PONG\r\n",
        "http": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "https": _TLS_SERVER_HELLO,
    }[flavour]


def _trickle(flavour: Flavour) -> tuple[bytes, bytes]:
    """(start, unit): the unit is sent every interval, forever."""
    notice = b"SNOTICE\x00C00000\x00Mstill here\x00\x00"
    return {
        "tcp": (b"", b"220 still here\r\n"),
        "mysql": (b"", b""),  # not used: a MySQL greeting is one packet
        "postgresql": (b"N", b"N" + (len(notice) + 4).to_bytes(4, "big") + notice),
        "redis": (b"", b">2\r\n+message\r\n+still here\r\n"),
        "http": (b"HTTP/1.1 200 OK\r\n", b"X-Still-Here: yes\r\n"),
        "https": (b"HTTP/1.1 200 OK\r\n", b"X-Still-Here: yes\r\n"),
    }[flavour]


@dataclass
class PeerStats:
    """What the peer did: connections accepted, bytes sent (all connections)."""

    connections: int = 0
    bytes_sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sent(self, n: int) -> None:
        with self.lock:
            self.bytes_sent += n


class HostilePeer:
    """One hostile listener on 127.0.0.1 (use as a context manager, or start()/stop())."""

    def __init__(
        self,
        behaviour: Behaviour,
        flavour: Flavour,
        *,
        server_context: ssl.SSLContext | None = None,
        interval: float = 1.0,
    ) -> None:
        if flavour == "https" and server_context is None:
            raise ValueError("the https flavour needs a server_context")
        self.behaviour = behaviour
        self.flavour = flavour
        self.interval = interval
        self.stats = PeerStats()
        self._context = server_context
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> HostilePeer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        t = threading.Thread(target=self._accept_loop, name=f"hostile-{self.port}", daemon=True)
        self._threads.append(t)
        t.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        for t in list(self._threads):
            t.join(timeout=5)
        for c in conns:
            with contextlib.suppress(OSError):
                c.close()

    # ------------------------------------------------------------------ serving

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.stats.connections += 1
            with self._lock:
                self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._threads.append(t)
            t.start()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(0.2)
        conn: socket.socket = raw
        try:
            tls_attack = self.behaviour in ("drip", "tls_record")
            if self.flavour == "https" and not tls_attack:
                assert self._context is not None
                raw.settimeout(5)
                conn = self._context.wrap_socket(raw, server_side=True)
                conn.settimeout(0.2)
            if self.flavour not in ("tcp", "mysql"):  # there the server speaks first
                self._preread(conn)
            self._misbehave(conn)
        except (OSError, ssl.SSLError):
            pass  # the client hung up (or refused our TLS): that is the point
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _preread(self, conn: socket.socket) -> None:
        end = time.monotonic() + PREREAD
        while time.monotonic() < end and not self._stop.is_set():
            try:
                if conn.recv(65536):
                    return
                return  # EOF
            except TimeoutError:
                continue

    def _misbehave(self, conn: socket.socket) -> None:
        b, f = self.behaviour, self.flavour
        if b == "flood":
            self._send(conn, _flood_start(f))
            self._send_filler(conn, None)
        elif b == "huge":
            self._send(conn, _huge_start(f))
            self._send_filler(conn, HUGE)
        elif b == "drip":
            for i in range(len(msg := _drip_message(f))):
                self._send(conn, msg[i : i + 1])
                if self._stop.wait(self.interval):
                    return
        elif b == "trickle":
            start, unit = _trickle(f)
            self._send(conn, start)
            for _ in range(10**9):
                if self._stop.wait(self.interval):
                    return
                self._send(conn, unit)
        elif b == "drip_body":
            self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(1000):
                if self._stop.wait(self.interval):
                    return
                self._send(conn, b"b")
        elif b == "tls_record":
            self._send(conn, _TLS_HUGE_MESSAGE if f == "https" else _TLS_HUGE_RECORD)
            self._send_filler(conn, None)
        else:
            self._send(conn, b"HTTP/1.1 200 OK\r\n")
            for i in range(10**9):
                if self._stop.is_set():
                    return
                self._send(conn, b"X-Filler-%09d: %s\r\n" % (i, b"h" * 40))

    def _send_filler(self, conn: socket.socket, total: int | None) -> None:
        left = total
        while left is None or left > 0:
            chunk = _FILLER if left is None or left >= _CHUNK else _FILLER[:left]
            self._send(conn, chunk)
            if left is not None:
                left -= len(chunk)

    def _send(self, conn: socket.socket, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._stop.is_set():
                raise OSError("peer stopped")
            try:
                n = conn.send(view)
            except TimeoutError:
                continue  # the client is not reading: wait for it (or for stop)
            self.stats.sent(n)
            view = view[n:]


@contextlib.contextmanager
def hostile_peer(
    behaviour: Behaviour,
    flavour: Flavour,
    *,
    server_context: ssl.SSLContext | None = None,
    interval: float = 1.0,
) -> Iterator[HostilePeer]:
    """A started peer, stopped (threads joined, sockets closed) on exit."""
    peer = HostilePeer(behaviour, flavour, server_context=server_context, interval=interval)
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


def target_for(flavour: Flavour, port: int) -> str:
    """The target string a diagnosis of that kind uses (a bare host:port for plain TCP)."""
    return {
        "tcp": f"127.0.0.1:{port}",
        "mysql": f"mysql://127.0.0.1:{port}",
        "postgresql": f"postgresql://127.0.0.1:{port}/app",
        "redis": f"redis://127.0.0.1:{port}",
        "http": f"http://127.0.0.1:{port}/health",
        "https": f"https://localhost:{port}/health",
    }[flavour]
