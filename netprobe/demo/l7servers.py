"""Real TLS and HTTP servers on loopback, for `netprobe demo` and the test suite.

Certificates come from ``trustme`` (a development and demo dependency), made on the spot:
valid, expired, not yet valid, from an unknown CA, self-signed, for the wrong name, expiring
soon, with an incomplete chain. The HTTP side answers by path:

=============  ==============================================
``/health``    200 ``ok`` (also ``/``)
``/moved``     301 to ``/health``
``/away``      302 to another origin
``/missing``   404
``/private``   401 with ``WWW-Authenticate``
``/forbidden`` 403
``/busy``      503 with ``Retry-After: 120``
``/hang``      reads the request, never answers
``/garbage``   answers bytes that are not HTTP
``/close``     closes without answering
=============  ==============================================

Thread-based, loopback only; each server is a context manager that removes every socket and
thread it made.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import struct
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

__all__ = ["CertBook", "L7Server", "Mode"]

Mode = Literal["http", "tls", "silent", "reset"]  # reset: RST as soon as the client speaks

_ROUTES: dict[str, tuple[str, list[tuple[str, str]], bytes]] = {
    "/": ("200 OK", [], b"ok\n"),
    "/health": ("200 OK", [], b"ok\n"),
    "/moved": ("301 Moved Permanently", [("Location", "/health")], b""),
    "/away": ("302 Found", [("Location", "https://elsewhere.invalid/health")], b""),
    "/missing": ("404 Not Found", [], b"no such path\n"),
    "/private": ("401 Unauthorized", [("WWW-Authenticate", 'Bearer realm="api"')], b"login\n"),
    "/forbidden": ("403 Forbidden", [], b"forbidden\n"),
    "/busy": ("503 Service Unavailable", [("Retry-After", "120")], b"overloaded\n"),
}


class CertBook:
    """A test PKI made on the spot: a trusted CA (its PEM in ``ca_file``) and every bad case.

    ``leaf(kind)`` returns ``(cert_chain_pem, key_pem)`` for the server to present.
    """

    KINDS = (
        "valid",
        "expired",
        "not_yet_valid",
        "unknown_ca",
        "self_signed",
        "wrong_host",
        "expiring_soon",
        "no_ip_san",
        "incomplete_chain",
    )

    def __init__(self, names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")) -> None:
        import trustme

        #: The names and addresses the good certificates are issued for.
        self.names = names

        self._dir = tempfile.TemporaryDirectory(prefix="netprobe-pki-")
        self.path = Path(self._dir.name)
        self.ca = trustme.CA(organization_name="netprobe test CA")
        self.other_ca = trustme.CA(organization_name="some other CA")
        self.intermediate = self.ca.create_child_ca()
        self.ca_file = str(self.path / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self.client = self.ca.issue_cert("client.netprobe.test")
        self.client_cert_file = str(self.path / "client.pem")
        self.client_key_file = str(self.path / "client.key")
        self.client.cert_chain_pems[0].write_to_path(self.client_cert_file)
        self.client.private_key_pem.write_to_path(self.client_key_file)
        self._cache: dict[str, tuple[bytes, bytes]] = {}

    def leaf(self, kind: str) -> tuple[bytes, bytes]:
        if kind not in self._cache:
            self._cache[kind] = self._make(kind)
        return self._cache[kind]

    def _make(self, kind: str) -> tuple[bytes, bytes]:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        day = dt.timedelta(days=1)
        names = self.names
        if kind == "self_signed":
            return self.other_ca.cert_pem.bytes(), self.other_ca.private_key_pem.bytes()
        if kind == "incomplete_chain":
            cert = self.intermediate.issue_cert(*names)
            return cert.cert_chain_pems[0].bytes(), cert.private_key_pem.bytes()
        issuer, kwargs, idents = self.ca, dict[str, Any](), names
        if kind == "expired":
            kwargs = {"not_before": now - 400 * day, "not_after": now - 2 * day}
        elif kind == "not_yet_valid":
            kwargs = {"not_before": now + 3 * day, "not_after": now + 400 * day}
        elif kind == "expiring_soon":
            kwargs = {"not_before": now - 80 * day, "not_after": now + 5 * day}
        elif kind == "unknown_ca":
            issuer = self.other_ca
        elif kind == "wrong_host":
            idents = ("other.example.com", "www.other.example.com")
        elif kind == "no_ip_san":
            idents = tuple(n for n in names if not n[:1].isdigit() and ":" not in n)
        elif kind != "valid":
            raise ValueError(f"unknown certificate kind {kind!r}")
        cert = issuer.issue_cert(*idents, **kwargs)
        chain = b"".join(p.bytes() for p in cert.cert_chain_pems)
        return chain, cert.private_key_pem.bytes()

    def server_context(
        self,
        kind: str = "valid",
        *,
        minimum_version: ssl.TLSVersion | None = None,
        require_client_cert: bool = False,
    ) -> ssl.SSLContext:
        chain, key = self.leaf(kind)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert_path = self.path / f"{kind}.pem"
        key_path = self.path / f"{kind}.key"
        cert_path.write_bytes(chain)
        key_path.write_bytes(key)
        ctx.load_cert_chain(cert_path, key_path)
        ctx.set_alpn_protocols(["http/1.1"])
        if minimum_version is not None:
            ctx.minimum_version = minimum_version
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            self.ca.configure_trust(ctx)
        return ctx

    def close(self) -> None:
        self._dir.cleanup()

    def __enter__(self) -> CertBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class L7Server:
    """A loopback server: plain HTTP, HTTP over TLS, silent after accept, or reset on accept.

    ``accepted`` counts TCP connections, so a test can check that one diagnosis made one.
    """

    def __init__(
        self,
        mode: Mode = "http",
        *,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if mode == "tls" and ssl_context is None:
            raise ValueError("mode 'tls' needs an ssl_context")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self.mode = mode
        self._ssl = ssl_context
        self.accepted = 0
        self.handshake_errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, name=f"l7-{self.port}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with self._lock:
                self.accepted += 1
                self._live.add(conn)
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _track(self, old: socket.socket, new: socket.socket) -> None:
        with self._lock:
            self._live.discard(old)
            self._live.add(new)

    def _run(self, conn: socket.socket) -> None:
        sock = conn
        try:
            conn.settimeout(10.0)
            # As nginx's tcp_nodelay: without it, the response waits behind the unacknowledged
            # TLS 1.3 session tickets for the client's delayed ACK (40 ms on Linux).
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.mode == "reset":
                # SO_LINGER with a zero timeout: close() sends RST instead of FIN. We wait for
                # the client's first bytes (at most 0.5 s): an RST before the client has seen
                # the handshake complete would look like a failed connect() instead.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.settimeout(0.5)
                with contextlib.suppress(OSError):
                    conn.recv(1)
                return
            if self.mode == "silent":
                while conn.recv(4096):
                    pass
                return
            if self.mode == "tls":
                assert self._ssl is not None
                # wrap_socket() would close the socket at once on a failed handshake, with
                # the client's request unread: that sends RST, which can destroy the alert.
                sock = self._ssl.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                self._track(conn, sock)
                try:
                    sock.do_handshake()
                except (ssl.SSLError, OSError) as exc:
                    self.handshake_errors.append(getattr(exc, "reason", None) or repr(exc))
                    _lingering_close(sock)
                    return
            _serve_http(sock)
        except OSError:
            pass
        finally:
            with self._lock:
                self._live.discard(sock)
                self._live.discard(conn)
            sock.close()
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()
        with self._lock:
            live = list(self._live)
        for s in live:
            with contextlib.suppress(OSError, ValueError):
                s.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(2.0)

    def __enter__(self) -> L7Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _serve_http(sock: socket.socket) -> None:
    """Answer HTTP/1.1 requests on one connection (keep-alive) until the peer closes."""
    buf = b""
    for _ in range(100):  # requests per connection, bounded
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data or len(buf) > 65536:
                return
            buf += data
            if buf[:1] == b"\x16":
                # A TLS ClientHello on the plain port: answer as nginx does.
                sock.sendall(_response("400 Bad Request", [], b"plain HTTP port\n", b"GET"))
                _lingering_close(sock)
                return
        head, _, buf = buf.partition(b"\r\n\r\n")
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        path = parts[1].decode("latin-1", "replace").split("?", 1)[0] if len(parts) > 1 else "/"
        method = parts[0]
        if path == "/hang":
            while sock.recv(4096):
                pass
            return
        if path == "/garbage":
            sock.sendall(b"\x00\x01\x02 this is not http \xff\r\n\r\n")
            return
        if path == "/close":
            return
        status, headers, body = _ROUTES.get(path, _ROUTES["/missing"])
        sock.sendall(_response(status, headers, body, method))


def _lingering_close(sock: socket.socket) -> None:
    """Close as nginx's lingering_close does: a close() with unread input sends RST, and the
    RST can destroy the answer (or alert) still unread in the client's receive queue."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(1.0)
        for _ in range(64):
            if not sock.recv(65536):
                break


def _response(status: str, headers: list[tuple[str, str]], body: bytes, method: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Server: netprobe-demo", "Content-Type: text/plain"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head + (b"" if method == b"HEAD" else body)
