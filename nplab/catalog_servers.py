"""The fault catalog's servers, run inside the lab's server namespace.

``catalog_servers.py SPEC_JSON``: SPEC is a list of ``[kind, address, port, extra]``:

==============  ============================================================================
``tls``         HTTPS (``netprobe.testing.L7Server``); extra: ``{"cert", "key"}``
                (PEM files) and optionally ``"client_ca"`` (then a client certificate is
                required)
``http``        plain HTTP by path (``/busy`` 503, ``/missing`` 404, ``/hang``, ``/garbage``)
``silent``      accepts, reads, never answers
``reset``       accepts, then RST as soon as the client speaks
``slow_http``   HTTP that answers every request 200 after ``extra["delay"]`` seconds
``dns``         UDP name server; extra maps a name to ``NXDOMAIN``, ``NODATA``, ``SERVFAIL``
                or an IPv4 address; other names get ``REFUSED``
``dns_silent``  UDP socket that reads queries and never answers
==============  ============================================================================

Prints "ready" once every socket listens; exits (closing everything) when stdin closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import ssl
import sys
import threading
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from nplab.inlab import LabL7Server


def _tls_context(extra: dict[str, Any]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(extra["cert"], extra["key"])
    ctx.set_alpn_protocols(["http/1.1"])
    if extra.get("client_ca"):
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(extra["client_ca"])
    return ctx


def dns_answer(wire: bytes, zone: dict[str, str]) -> bytes | None:
    """The answer of the lab's name server to one query (None: not a DNS query)."""
    try:
        query = dns.message.from_wire(wire)
    except Exception:  # noqa: BLE001 - anything unparsable is dropped, as a server would
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response.to_wire()
    question = query.question[0]
    name = question.name.to_text(omit_final_dot=True).lower()
    what = zone.get(name)
    labels = name.split(".")
    for i in range(1, len(labels)):  # a wildcard record: "*.corp.lab" answers any name below
        if what is not None:
            break
        what = zone.get("*." + ".".join(labels[i:]))
    if what == "SILENT":
        return None  # a name whose upstream never answers: the server waits on it
    if what is None:
        response.set_rcode(dns.rcode.REFUSED)
    elif what == "NXDOMAIN":
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif what == "SERVFAIL":
        response.set_rcode(dns.rcode.SERVFAIL)
    elif what != "NODATA" and question.rdtype == dns.rdatatype.A:
        response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", what))
    # NODATA, or an AAAA question for a name with only an A record: NOERROR, empty answer.
    return response.to_wire()


def _slow_http(listener: socket.socket, delay: float, stop: threading.Event) -> None:
    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10.0)
            data = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                if stop.wait(delay):
                    return
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
                    b"Connection: close\r\n\r\nok\n"
                )

    listener.settimeout(0.1)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        threading.Thread(target=answer, args=(conn,), daemon=True).start()


def main() -> None:
    spec: list[list[Any]] = json.loads(sys.argv[1])
    stack = contextlib.ExitStack()
    sel = selectors.DefaultSelector()
    zones: dict[int, dict[str, str]] = {}
    with stack:
        for kind, address, port, extra in spec:
            if kind in ("tls", "http", "silent", "reset"):
                ctx = _tls_context(extra) if kind == "tls" else None
                stack.enter_context(LabL7Server(kind, ssl_context=ctx, host=address, port=port))
            elif kind == "slow_http":
                listener = stack.enter_context(socket.socket())
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((address, port))
                listener.listen(64)
                stop = threading.Event()
                thread = threading.Thread(
                    target=_slow_http, args=(listener, float(extra["delay"]), stop), daemon=True
                )
                thread.start()
                stack.callback(thread.join, 2.0)
                stack.callback(stop.set)
            elif kind in ("dns", "dns_silent"):
                udp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                udp.bind((address, port))
                udp.setblocking(False)
                sel.register(udp, selectors.EVENT_READ)
                if kind == "dns":
                    zones[udp.fileno()] = {k.lower(): v for k, v in extra.items()}
            else:
                raise SystemExit(f"unknown server kind {kind!r}")
        sel.register(sys.stdin, selectors.EVENT_READ)
        print("ready", flush=True)
        _serve(sel, zones)


def _serve(sel: selectors.BaseSelector, zones: dict[int, dict[str, str]]) -> None:
    stop = threading.Event()
    while not stop.is_set():
        for key, _ in sel.select():
            if key.fd == sys.stdin.fileno():
                if not os.read(key.fd, 1024):
                    stop.set()
                continue
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            for _ in range(64):
                try:
                    wire, peer = sock.recvfrom(4096)
                except (BlockingIOError, InterruptedError):
                    break
                zone = zones.get(sock.fileno())
                if zone is None:
                    continue  # dns_silent: read, never answer
                answer = dns_answer(wire, zone)
                if answer is not None:
                    with contextlib.suppress(OSError):
                        sock.sendto(answer, peer)


if __name__ == "__main__":
    main()
