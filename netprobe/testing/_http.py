"""HTTP and HTTPS fixture servers on loopback, answering by path (see `L7Server`)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from types import TracebackType
from typing import Literal

from ._base import ThreadedServer, family_of

__all__ = ["L7Server", "Mode"]

#: ``http``: plain HTTP; ``tls``: HTTP over TLS; ``silent``: accepts, reads, never answers;
#: ``reset``: RST as soon as the client speaks.
Mode = Literal["http", "tls", "silent", "reset"]

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


class L7Server(ThreadedServer):
    """An HTTP server on loopback, over TLS or not, or a peer that never answers or resets.

    The HTTP side answers by path, with keep-alive, as nginx does:

    | path | answer |
    |---|---|
    | `/health` (also `/`) | 200 `ok` |
    | `/moved` | 301 to `/health` |
    | `/away` | 302 to another origin |
    | `/missing` (and every unknown path) | 404 |
    | `/private` | 401 with `WWW-Authenticate` |
    | `/forbidden` | 403 |
    | `/busy` | 503 with `Retry-After: 120` |
    | `/hang` | reads the request, never answers |
    | `/garbage` | answers bytes that are not HTTP |
    | `/close` | closes without answering |

    A TLS ClientHello on the plain port gets nginx's `400` answer. Each connection is served
    in its own thread, so the server works the same for sync and async tests.

    Example:
        ```python
        from netprobe.testing import CertBook, L7Server

        with CertBook() as book, L7Server("tls", ssl_context=book.server_context()) as api:
            report = await netprobe.diagnose(
                f"https://localhost:{api.port}/busy", ca_file=book.ca_file
            )
            assert report.fault.code == "http.server_error"
        ```

    Args:
        mode: ``http``; ``tls`` (needs ``ssl_context``, e.g. `CertBook.server_context`);
            ``silent`` (accepts, reads, never answers); ``reset`` (RST as soon as the client
            speaks).
        ssl_context: the server-side TLS context of mode ``tls``.
        host: a loopback address.
        port: 0 picks a free port.

    Attributes:
        accepted: TCP connections accepted so far (a test can check that one diagnosis
            made exactly one).
        handshake_errors: why each failed TLS handshake failed, as the server saw it.
    """

    def __init__(
        self,
        mode: Mode = "http",
        *,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if mode not in ("http", "tls", "silent", "reset"):
            raise ValueError(f"unknown mode {mode!r}: http, tls, silent or reset")
        if mode == "tls" and ssl_context is None:
            raise ValueError("mode 'tls' needs an ssl_context (CertBook.server_context())")
        self._check_host(host)
        self._sock = socket.socket(family_of(host), socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(64)
        except BaseException:
            self._sock.close()
            raise
        self._sock.settimeout(0.05)
        self.host = host
        self.port = self._sock.getsockname()[1]
        self.mode = mode
        self._ssl = ssl_context
        self.accepted = 0
        self.handshake_errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._init_workers()
        self._thread = threading.Thread(target=self._serve, name=f"l7-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:  # the accept timeout, or the socket closed by close()
                continue
            with self._lock:
                self.accepted += 1
                self._live.add(conn)
            self._start_worker(self._run, conn)

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
        """Stop listening, shut every open connection down and join the threads."""
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()
        with self._lock:
            live = list(self._live)
        for s in live:
            with contextlib.suppress(OSError, ValueError):
                s.shutdown(socket.SHUT_RDWR)
        self._join_workers(2.0)

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
