"""A small reverse proxy that reports its upstream failures with RFC 9209 ``Proxy-Status``.

Real proxies that send ``Proxy-Status`` (CDNs, Envoy builds that enable it) are not Debian
packages; this one stands for them in the tests and the fault catalog. It really connects to
its upstream (TCP, then TLS verified against a CA file when ``tls_ca`` is given), relays the
answer, and when the connect or the handshake fails it answers as RFC 9209 §2 says an
intermediary does::

    HTTP/1.1 502 Bad Gateway
    Proxy-Status: nplab-proxy; error=connection_refused; next-hop="198.18.0.72:9"

Errors (§2.3): ``connection_refused`` (ECONNREFUSED), ``connection_timeout`` (the connect
timed out, 504), ``tls_certificate_error`` (the certificate did not verify),
``tls_protocol_error`` (any other TLS failure), ``connection_terminated`` (closed before an
answer), ``destination_unavailable`` (any other connect error).

    python -m nplab.rfc9209proxy HOST PORT UPSTREAM_HOST UPSTREAM_PORT [--tls-ca FILE]

prints ``ready`` once it listens and runs until its stdin closes; :class:`Rfc9209Proxy` runs
it in this process instead (threads, loopback).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import socket
import ssl
import sys
import threading

__all__ = ["Rfc9209Proxy"]

NAME = "nplab-proxy"
_CONNECT_TIMEOUT_S = 1.0
# Generous: a client on a loaded machine may take seconds between its connect and its request
# (netprobe imports httpx after the TCP rung); the proxy must not give up first.
_READ_TIMEOUT_S = 30.0


class Rfc9209Proxy:
    """The proxy on ``host:port`` (0: a free port), forwarding to ``upstream``."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_ca: str | None = None,
        server_name: str | None = None,
    ) -> None:
        self.upstream = upstream
        self.tls_ca = tls_ca
        self.server_name = server_name or upstream[0]
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, name="rfc9209-proxy", daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _handle(self, client: socket.socket) -> None:
        with client:
            client.settimeout(_READ_TIMEOUT_S)
            request = _read_head(client)
            if request is None:
                return
            hop = f"{self.upstream[0]}:{self.upstream[1]}"
            try:
                upstream = socket.create_connection(self.upstream, timeout=_CONNECT_TIMEOUT_S)
            except TimeoutError:
                return _fail(client, 504, "connection_timeout", hop)
            except OSError as exc:
                kind = (
                    "connection_refused"
                    if exc.errno == errno.ECONNREFUSED
                    else "destination_unavailable"
                )
                return _fail(client, 502, kind, hop, exc.strerror)
            with contextlib.ExitStack() as stack:
                stack.enter_context(upstream)
                if self.tls_ca is not None:
                    ctx = ssl.create_default_context(cafile=self.tls_ca)
                    try:
                        upstream = ctx.wrap_socket(upstream, server_hostname=self.server_name)
                    except ssl.SSLCertVerificationError as exc:
                        return _fail(client, 502, "tls_certificate_error", hop, exc.verify_message)
                    except (ssl.SSLError, OSError) as exc:
                        return _fail(client, 502, "tls_protocol_error", hop, str(exc))
                    stack.enter_context(upstream)
                upstream.settimeout(_READ_TIMEOUT_S)
                try:
                    upstream.sendall(request)
                    first = upstream.recv(65536)
                except OSError:
                    first = b""
                if not first:
                    return _fail(client, 502, "connection_terminated", hop)
                with contextlib.suppress(OSError):
                    client.sendall(first)
                    while data := upstream.recv(65536):
                        client.sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._accept.join(2.0)
        self._sock.close()
        for t in self._threads:
            t.join(5.0)

    def __enter__(self) -> Rfc9209Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_head(sock: socket.socket) -> bytes | None:
    """The request head, with ``Connection: close`` so that the upstream ends the answer."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    head, _, _ = data.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n"


def _fail(
    client: socket.socket, status: int, error: str, hop: str, details: str | None = None
) -> None:
    reason = {502: "Bad Gateway", 504: "Gateway Timeout"}[status]
    value = f'{NAME}; error={error}; next-hop="{hop}"'
    if details:
        value += '; details="' + details.replace("\\", "\\\\").replace('"', '\\"') + '"'
    body = f"{status} {reason}: {error}\n".encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nServer: {NAME}\r\nProxy-Status: {value}\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        client.sendall(head.encode() + body)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - runs in a lab namespace
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("upstream_host")
    parser.add_argument("upstream_port", type=int)
    parser.add_argument("--tls-ca")
    parser.add_argument("--server-name")
    args = parser.parse_args(argv)
    proxy = Rfc9209Proxy(
        (args.upstream_host, args.upstream_port),
        host=args.host,
        port=args.port,
        tls_ca=args.tls_ca,
        server_name=args.server_name,
    )
    print("ready", flush=True)
    sys.stdin.read()
    proxy.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
