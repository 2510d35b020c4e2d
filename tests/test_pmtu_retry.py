"""The MTU black hole test on loopback (no black hole here): a server that hangs one
connection and answers the next must not be called an MTU black hole. The retry at the
normal MSS (the control) completes too, so the timeout verdict stands."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable

import pytest

from netprobe import diagnose
from netprobe.steps import TcpStep
from netprobe.testing import TcpServer

pytestmark = pytest.mark.anyio


def _hangs_once() -> tuple[Callable[[socket.socket], None], threading.Event]:
    counter = itertools.count()
    done = threading.Event()

    def handler(conn: socket.socket) -> None:
        n = next(counter)
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        if n == 0:
            done.wait(10)  # the diagnosis's own connection: no answer
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    return handler, done


async def test_a_server_that_hung_once_is_not_a_black_hole() -> None:
    handler, done = _hangs_once()
    try:
        with TcpServer(handler) as server:
            report = await diagnose(f"http://127.0.0.1:{server.port}/", icmp=False, read_timeout=1)
    finally:
        done.set()
    assert report.fault is not None and report.fault.code == "http.timeout"
    tcp = report.step(TcpStep)
    assert tcp is not None and tcp.pmtu_probe is not None
    assert tcp.pmtu_probe.outcome == "completed" and tcp.pmtu_probe.control == "completed"
    assert not tcp.pmtu_probe.black_hole
