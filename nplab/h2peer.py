"""HTTP/2 peers that answer the gRPC health check as grpcio never does, but proxies and broken
servers do, with the ``h2`` library on the server side (real HTTP/2 over a real loopback
socket): RST_STREAM, GOAWAY, malformed messages and statuses, an Envoy-style UNAVAILABLE, a
proxy's 502 page, PINGs forever, DATA forever (see ``H2_MODES``).

The real gRPC servers (grpcio) are ``nplab/realservers/grpc_server.py``; the web servers a gRPC
target may hit by mistake are the real nginx of ``nplab/realservers/nginx.py``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

__all__ = ["H2_MODES", "H2Peer"]


#: What :class:`H2Peer` does once the health request has arrived.
H2_MODES = (
    "rst_refused",  # RST_STREAM REFUSED_STREAM
    "goaway",  # GOAWAY ENHANCE_YOUR_CALM with debug data 'too_many_pings' (grpc-go's words)
    "bad_flag",  # a message whose compressed flag is 2
    "no_message",  # grpc-status 0 without a message
    "two_messages",  # grpc-status 0 after two messages
    "bad_status",  # Trailers-Only with grpc-status 'OK'
    "compressed",  # a compressed message although the client accepted no encoding
    "unknown_health",  # SERVING status number 7 (unknown to the client)
    "service_unknown",  # OK, SERVICE_UNKNOWN (meant for Watch; some servers send it to Check)
    "envoy_unavailable",  # Envoy's Trailers-Only UNAVAILABLE for a dead upstream
    "proxy_502",  # HTTP/2 502 text/html from a proxy, with via and proxy-status
    "trickle",  # SETTINGS, then a PING every 50 ms, forever
    "flood",  # response headers, then DATA forever
)

_ENVOY_MESSAGE = (
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
)


class H2Peer:
    """A loopback HTTP/2 server (``h2``, server side) that answers the health check with
    ``mode`` (one of :data:`H2_MODES`). Thread per connection; ``close()`` joins them."""

    def __init__(self, mode: str) -> None:
        if mode not in H2_MODES:
            raise ValueError(f"unknown H2Peer mode {mode!r}")
        self.mode = mode
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, sock: socket.socket) -> None:
        import h2.config
        import h2.connection
        import h2.events
        import h2.exceptions

        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        with sock:
            sock.settimeout(0.05)
            try:
                sock.sendall(conn.data_to_send())
                stream_id = self._read_request(sock, conn)
                if stream_id is not None:
                    self._answer(sock, conn, stream_id)
            except (OSError, h2.exceptions.H2Error):
                pass

    def _read_request(self, sock: socket.socket, conn: Any) -> int | None:
        import h2.events

        deadline = time.monotonic() + 5.0
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return None
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.StreamEnded):
                    sock.sendall(conn.data_to_send())
                    return int(event.stream_id)
            sock.sendall(conn.data_to_send())
        return None

    def _answer(self, sock: socket.socket, conn: Any, sid: int) -> None:
        import h2.errors

        from netprobe.protocols.grpc import frame_message

        ok = [(":status", "200"), ("content-type", "application/grpc")]
        mode = self.mode

        def trailers(status: str, message: str = "") -> None:
            extra = [("grpc-message", message)] if message else []
            conn.send_headers(sid, [("grpc-status", status), *extra], end_stream=True)

        if mode == "rst_refused":
            conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
        elif mode == "goaway":
            conn.close_connection(
                h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, additional_data=b"too_many_pings"
            )
        elif mode in ("bad_flag", "compressed", "unknown_health", "service_unknown"):
            body = {
                "bad_flag": b"\x02\x00\x00\x00\x02\x08\x01",
                "compressed": frame_message(b"\x08\x01", compressed=True),
                "unknown_health": frame_message(b"\x08\x07"),
                "service_unknown": frame_message(b"\x08\x03"),
            }[mode]
            conn.send_headers(sid, ok)
            conn.send_data(sid, body)
            trailers("0")
        elif mode == "no_message":
            conn.send_headers(sid, ok)
            trailers("0")
        elif mode == "two_messages":
            conn.send_headers(sid, ok)
            conn.send_data(sid, frame_message(b"\x08\x01") * 2)
            trailers("0")
        elif mode == "bad_status":
            conn.send_headers(sid, [*ok, ("grpc-status", "OK")], end_stream=True)
        elif mode == "envoy_unavailable":
            conn.send_headers(
                sid,
                [
                    *ok,
                    ("grpc-status", "14"),
                    ("grpc-message", _ENVOY_MESSAGE),
                    ("server", "envoy"),
                    ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
                ],
                end_stream=True,
            )
        elif mode == "proxy_502":
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
            conn.send_headers(
                sid,
                [
                    (":status", "502"),
                    ("content-type", "text/html"),
                    ("content-length", str(len(page))),
                    ("server", "edge-proxy"),
                    ("via", "1.1 edge-proxy"),
                    ("proxy-status", "edge-proxy; error=connection_refused"),
                ],
            )
            conn.send_data(sid, page, end_stream=True)
        elif mode == "trickle":
            for _ in range(400):  # 20 s at most
                if self._stop.wait(0.05):
                    return
                conn.ping(b"12345678")
                sock.sendall(conn.data_to_send())
            return
        elif mode == "flood":
            conn.send_headers(sid, ok)
            sock.sendall(conn.data_to_send())
            chunk = b"\x00" * 16000
            for _ in range(2000):  # 32 MB at most
                if self._stop.is_set():
                    return
                while conn.local_flow_control_window(sid) < len(chunk):
                    if not self._pump(sock, conn):
                        return
                conn.send_data(sid, chunk)
                sock.sendall(conn.data_to_send())
            return
        sock.sendall(conn.data_to_send())
        # Let the client read the answer before the socket closes (no RST over unread data).
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
            for _ in range(20):
                if self._stop.is_set() or not sock.recv(65536):
                    break

    def _pump(self, sock: socket.socket, conn: Any) -> bool:
        """Read the client's WINDOW_UPDATEs (flow control); False once it has gone."""
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return not self._stop.is_set()
        if not data:
            return False
        conn.receive_data(data)
        sock.sendall(conn.data_to_send())
        return True

    def close(self) -> None:
        self._stop.set()
        self._accept.join(2.0)
        self._sock.close()
        for t in self._threads:
            t.join(5.0)

    def __enter__(self) -> H2Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
