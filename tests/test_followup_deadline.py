"""Follow-up handshakes never cost a verdict: a total deadline that cuts them keeps the
verdict of the failure that called for them (probes/tls_followup.py).

The peers here answer the diagnosis's own connection, then hold every later connection
silent, so each follow-up waits until the total deadline ends it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from netprobe import diagnose
from netprobe.steps import ApplicationStep, TlsStep

pytestmark = pytest.mark.backends

# What a first diagnosis imports off the event loop (cryptography, httpx) is imported here,
# so that a loaded machine spends the short deadlines below on the network, not on imports.
import httpx  # noqa: E402, F401

import netprobe.protocols.x509  # noqa: E402, F401

#: A TLS alert record: fatal (2), protocol_version (70), as a TLS 1.0-only server sends it.
PROTOCOL_VERSION_ALERT = b"\x15\x03\x03\x00\x02\x02\x46"


class FirstAnswersThenSilent:
    """Loopback: the first connection gets ``answer`` (after the client's first bytes) and a
    close; every later one is accepted and held, silent, until the server stops."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.accepted += 1
            if self.accepted > 1:
                self._held.append(conn)
                continue
            threading.Thread(target=self._answer_first, args=(conn,), daemon=True).start()

    def _answer_first(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            with contextlib.suppress(OSError):
                conn.recv(65536)
                conn.sendall(self._answer)
                conn.shutdown(socket.SHUT_WR)
                conn.recv(65536)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self._sock.close()


@contextlib.contextmanager
def peer(answer: bytes) -> Iterator[FirstAnswersThenSilent]:
    server = FirstAnswersThenSilent(answer)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.anyio
async def test_a_cut_during_the_version_probes_keeps_protocol_version() -> None:
    with peer(PROTOCOL_VERSION_ALERT) as server:
        start = time.perf_counter()
        report = await diagnose(
            f"tls://127.0.0.1:{server.port}", icmp=False, timeout=1.5, read_timeout=3.0
        )
        wall = time.perf_counter() - start
        assert server.accepted >= 2  # the follow-ups did start
    assert wall < 3.0
    assert report.fault is not None and report.fault.code == "tls.protocol_version"
    assert "its range could not be learnt" in report.fault.summary or (
        "refused the handshake for its TLS version" in report.fault.summary
    )
    assert "diagnosis.deadline" in report.warning_codes()
    tls = report.step(TlsStep)
    assert tls is not None and tls.alert == "protocol_version"


@pytest.mark.anyio
async def test_a_cut_during_the_client_hello_keeps_connection_closed() -> None:
    """Plain HTTP closed without a byte; the ClientHello on a fresh connection is never
    answered: the verdict stays l7.connection_closed, not http.tls_required."""
    with peer(b"") as server:
        report = await diagnose(
            f"http://127.0.0.1:{server.port}/", icmp=False, timeout=1.5, read_timeout=3.0
        )
        assert server.accepted == 2
    assert report.fault is not None and report.fault.code == "l7.connection_closed"
    assert "diagnosis.deadline" in report.warning_codes()
    app = report.step(ApplicationStep)
    assert app is not None and app.http is not None and app.http.tls_follow_up is None
