"""No leaks: after many diagnoses of mixed outcomes, and after cancellations at random points,
the process holds the same number of file descriptors as before."""

from __future__ import annotations

import os
import random
import time
from typing import Any

import anyio
import pytest

import netprobe
from netprobe.probes import icmp_sockets
from netprobe.testing import DnsServer, SilentPort, TcpServer, closed_port

pytestmark = pytest.mark.anyio


def fd_count() -> int:
    """Open descriptors, the ICMP socket kept for the next diagnosis closed first (it is
    reused, not leaked: tests/test_icmp.py)."""
    icmp_sockets.close_idle_sockets()
    return len(os.listdir("/proc/self/fd"))


async def quiet_fd_count(wait: float = 5.0) -> int:
    """The count once earlier tests' connections are closed (stable for 0.1 s)."""
    deadline = time.monotonic() + wait
    count = fd_count()
    while time.monotonic() < deadline:
        await anyio.sleep(0.1)
        now = fd_count()
        if now == count:
            break
        count = now
    return count


async def settled_fd_count(baseline: int, wait: float = 5.0) -> int:
    """Server threads close their ends shortly after the client: wait for the count to settle."""
    deadline = time.monotonic() + wait
    count = fd_count()
    while count > baseline and time.monotonic() < deadline:
        await anyio.sleep(0.05)
        count = fd_count()
    return count


def mixed_targets(server: TcpServer, silent: SilentPort, dns: DnsServer) -> list[str]:
    closed = closed_port()
    return [
        f"tcp://{server.address}",
        f"tcp://127.0.0.1:{closed}",
        f"tcp://{silent.address}",
        "nope.netprobe.test:80",
        f"tcp://db.netprobe.test:{server.port}",
    ]


async def test_no_fd_leak_after_1000_diagnoses(
    tcp_server: TcpServer, silent_port: SilentPort, dns_server: DnsServer
) -> None:
    targets = mixed_targets(tcp_server, silent_port, dns_server)
    opts: dict[str, Any] = {
        "nameservers": [dns_server.address],
        "connect_timeout": 0.05,
        "dns_timeout": 0.5,
    }
    await netprobe.diagnose_many(targets, **opts)  # warm-up: lazy imports, thread pool
    baseline = await quiet_fd_count()
    reports = await netprobe.diagnose_many(
        [targets[i % len(targets)] for i in range(1000)], concurrency=100, **opts
    )
    assert len(reports) == 1000
    codes = {r.fault.code if r.fault else None for r in reports}
    assert codes >= {None, "l4.refused", "dns.nxdomain"}
    after = await settled_fd_count(baseline)
    print(f"fds: baseline={baseline} after 1000 diagnoses={after}")
    assert after == baseline


async def test_no_fd_leak_after_random_cancellations(
    tcp_server: TcpServer, silent_port: SilentPort, dns_server: DnsServer
) -> None:
    targets = mixed_targets(tcp_server, silent_port, dns_server)
    opts: dict[str, Any] = {
        "nameservers": [dns_server.address],
        "connect_timeout": 0.2,
        "dns_timeout": 0.5,
    }
    await netprobe.diagnose_many(targets, **opts)
    baseline = await quiet_fd_count()
    rng = random.Random(1234)
    cancelled = 0

    async def one(target: str, after: float) -> None:
        nonlocal cancelled
        with anyio.move_on_after(after) as scope:
            await netprobe.diagnose(target, **opts)
        cancelled += scope.cancelled_caught

    async with anyio.create_task_group() as tg:
        for i in range(300):
            # Half are cancelled at a random point early in their ladder, half run to the end.
            after = rng.uniform(0.0, 0.05) if rng.random() < 0.5 else 30.0
            tg.start_soon(one, targets[i % len(targets)], after)
    after = await settled_fd_count(baseline)
    print(
        f"fds: baseline={baseline} after 300 cancellable diagnoses ({cancelled} cancelled)={after}"
    )
    assert 0 < cancelled < 300  # some cancelled mid-way, some finished
    assert after == baseline


async def test_outer_cancellation_propagates(silent_port: SilentPort) -> None:
    # A diagnosis never swallows cancellation: the scope sees it as cancelled, promptly.
    start = time.perf_counter()
    with anyio.move_on_after(0.1) as scope:
        await netprobe.diagnose(f"tcp://{silent_port.address}", connect_timeout=5)
    assert scope.cancelled_caught
    assert time.perf_counter() - start < 1.0
