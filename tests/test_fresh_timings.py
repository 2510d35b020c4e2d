"""A report's timings are the network's (issue 11): in a fresh process, netprobe's own first
imports and its TLS context are done before the clock starts (probes/prepare.py), and are
reported apart as ``timings_ms.setup``.

Structural, never timed: a real TLS server on loopback (this process) records when the
diagnosis's connection arrives on the system-wide monotonic clock; a fresh Python process
(where httpx and cryptography are not imported yet) diagnoses it and records, on the same
clock, when the timings' clock started and what was imported and built by then.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from netprobe.testing import CertBook

_CHILD = r"""
import json, sys, time
import anyio
import netprobe
from netprobe.probes import _context, ssl_contexts

lazy = ("httpx", "cryptography.x509")
seen = {"at_import": [m for m in lazy if m in sys.modules]}
start_clock = _context.ProbeContext.start_clock

def spy(self):
    seen["at_clock"] = [m for m in lazy if m in sys.modules]
    seen["contexts_at_clock"] = ssl_contexts._build.cache_info().currsize
    seen["clock"] = time.monotonic()
    start_clock(self)

_context.ProbeContext.start_clock = spy
report = anyio.run(lambda: netprobe.diagnose(sys.argv[1], ca_file=sys.argv[2], icmp=False))
seen["ok"] = report.ok
seen["fault"] = report.fault.code if report.fault else None
seen["timings"] = report.timings_ms.model_dump()
seen["dns_step_ms"] = next(s.duration_ms for s in report.steps if s.name == "dns")
from netprobe.render import render_ladder
seen["ladder"] = render_ladder(report)
print(json.dumps(seen))
"""


class _RecordingTls:
    """HTTPS on loopback that notes (``time.monotonic()``) when each connection arrived."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._ctx = context
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self.arrivals: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.arrivals.append(time.monotonic())
            conn.settimeout(5)
            try:
                with self._ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(4096)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except OSError:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture
def recording() -> Iterator[tuple[_RecordingTls, str]]:
    with CertBook() as book:
        server = _RecordingTls(book.server_context())
        try:
            yield server, book.ca_file
        finally:
            server.close()


@pytest.mark.parametrize("scheme", ["https", "tls"])
def test_the_clock_starts_after_the_preparation(
    recording: tuple[_RecordingTls, str], scheme: str
) -> None:
    server, ca_file = recording
    url = f"{scheme}://127.0.0.1:{server.port}" + ("/health" if scheme == "https" else "")
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, url, ca_file],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    seen = json.loads(out.stdout)
    assert seen["ok"], seen["fault"]
    # A fresh process: nothing imported yet, so the preparation had real work to do.
    assert seen["at_import"] == []
    # Before the clock started: every first import of the ladder, and the TLS context.
    expected = ["httpx", "cryptography.x509"] if scheme == "https" else ["cryptography.x509"]
    assert seen["at_clock"] == expected
    assert seen["contexts_at_clock"] >= 1
    # The clock started before the connection reached the server (same monotonic clock),
    # and the preparation is a figure of its own.
    assert len(server.arrivals) == 1
    assert seen["clock"] <= server.arrivals[0]
    assert seen["timings"]["setup"] is not None and seen["timings"]["setup"] > 0
    # The waterfall says the preparation was netprobe's, apart from the network's phases.
    assert any("+ setup" in line for line in seen["ladder"])


def test_the_dns_step_is_timed_from_its_rung_not_from_the_preparation(
    recording: tuple[_RecordingTls, str],
) -> None:
    """By name (localhost), in a fresh process: the DNS step's own duration and the
    waterfall's dns phase measure the same lookup; the step's clock used to start before the
    preparation (the imports) and showed it as DNS time ("dns localhost -> 127.0.0.1 (3436
    ms)" beside "timing ms: dns 73")."""
    server, ca_file = recording
    url = f"https://localhost:{server.port}/health"
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, url, ca_file],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    seen = json.loads(out.stdout)
    assert seen["ok"], seen["fault"]
    # The step starts after the clock and ends before the waterfall's dns mark.
    assert seen["dns_step_ms"] <= seen["timings"]["dns"], (seen["dns_step_ms"], seen["timings"])
