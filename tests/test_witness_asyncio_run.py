"""The liveness witness under a plain asyncio loop (``asyncio.run``, as uvicorn and every
asyncio service run), not only under ``anyio.run``.

The canary starts from an event loop timer callback, outside any task, where anyio finds
the running library through sniffio's context variable: ``anyio.run`` sets it for the whole
run, ``asyncio.run`` does not. Without it the canary never started (``NoEventLoopError``
swallowed, a coroutine never awaited), and a silent port on a live host read
``l4.connect_timeout`` instead of ``l4.filtered`` inside services.
"""

from __future__ import annotations

import asyncio

import netprobe
from netprobe.testing import SilentPort


def test_the_canary_runs_under_asyncio_run(silent_port: SilentPort) -> None:
    async def main() -> netprobe.Report:
        return await netprobe.diagnose(
            f"127.0.0.1:{silent_port.port}", timeout=3, connect_timeout=1.5, icmp=False
        )

    report = asyncio.run(main())
    assert report.fault is not None and report.fault.code == "l4.filtered", report.fault
    tcp = report.step(netprobe.TcpStep)
    assert tcp is not None and tcp.canary
