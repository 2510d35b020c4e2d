"""Servers run inside the lab's server namespace: ``servers.py PORT:KIND ...``.

KIND is ``hold`` (accept, keep the connection until the peer closes it) or ``close`` (accept
and close at once: the client side of such connections ends in CLOSE_WAIT if it never closes).
Prints "ready" once listening; exits when stdin closes.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys


def main() -> None:
    sel = selectors.DefaultSelector()
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
