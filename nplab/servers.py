"""Servers run inside the lab's server namespace: ``servers.py PORT:KIND ...``.

KIND is ``hold`` (accept, keep the connection until the peer closes it), ``close`` (accept
and close at once: the client side of such connections ends in CLOSE_WAIT if it never closes)
``https`` (TLS with $LAB_CERT / $LAB_KEY, answers every request with 200 OK, one thread
per connection) or ``http`` (plain, one thread per connection: ``/big`` answers 64 KiB).
Prints "ready" once listening; exits when stdin closes.
"""

from __future__ import annotations

import os
import selectors
import socket
import ssl
import sys
import threading


def _https(conn: socket.socket, ctx: ssl.SSLContext) -> None:
    try:
        conn.setblocking(True)
        conn.settimeout(10)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                data += chunk
            body = b"ok\n"
            tls.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
    except OSError:
        pass
    finally:
        conn.close()


def _http(conn: socket.socket) -> None:
    """Plain HTTP: ``/big`` answers 64 KiB (a response larger than any MTU), anything else
    ``ok`` once the whole request head (however large) has arrived."""
    try:
        conn.setblocking(True)
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        body = b"x" * 65536 if data.split(b" ", 2)[1:2] == [b"/big"] else b"ok\n"
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
    except OSError:
        pass
    finally:
        conn.close()


def main() -> None:
    sel = selectors.DefaultSelector()
    tls_ctx: ssl.SSLContext | None = None
    if os.environ.get("LAB_CERT"):
        tls_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_ctx.load_cert_chain(os.environ["LAB_CERT"], os.environ["LAB_KEY"])
    for spec in sys.argv[1:]:
        port, kind = spec.split(":")
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", int(port)))
        s.listen(1024)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, ("listen", kind))
    sel.register(sys.stdin, selectors.EVENT_READ, ("stdin", ""))
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            role, kind = key.data
            sock = key.fileobj
            if role == "stdin":
                if not os.read(sys.stdin.fileno(), 1024):
                    return
            elif role == "listen":
                assert isinstance(sock, socket.socket)
                try:
                    conn, _ = sock.accept()
                except OSError:
                    continue
                if kind == "close":
                    conn.close()
                elif kind == "http":
                    threading.Thread(target=_http, args=(conn,), daemon=True).start()
                elif kind == "https" and tls_ctx is not None:
                    threading.Thread(target=_https, args=(conn, tls_ctx), daemon=True).start()
                else:
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, ("conn", ""))
            else:
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(sock)
                    sock.close()


if __name__ == "__main__":
    main()
