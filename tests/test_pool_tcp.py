"""probe_pool on plain tcp:// targets (no database server needed): refusals, summary text."""

from __future__ import annotations

import pytest

from netprobe import probe_pool
from netprobe.testing import DnsServer, TcpServer

#: The network tests of this module run under asyncio and under trio (conftest.py).
pytestmark = pytest.mark.backends


@pytest.mark.anyio
async def test_refused_pool_summary_reads_as_one_sentence() -> None:
    report = await probe_pool("tcp://127.0.0.1:1", size=3, icmp=False, canary=False)
    assert not report.ok and report.opened == 0
    assert report.most_common_fault == "l4.refused"
    assert report.summary.startswith("0 of 3 opened; 1–3 failed (l4.refused): ")
    assert ".." not in report.summary and report.summary.endswith(".")


@pytest.mark.anyio
async def test_tcp_pool_opens_every_connection(tcp_server: TcpServer) -> None:
    report = await probe_pool(f"tcp://127.0.0.1:{tcp_server.port}", size=4, icmp=False)
    assert report.ok and report.opened == 4, report.summary
    assert all(c.outcome == "validated" for c in report.connections)


@pytest.mark.anyio
async def test_every_resolved_address_is_tried(dns_server: DnsServer) -> None:
    """dual.netprobe.test resolves to 127.0.0.1 then ::1; only ::1 listens. Each pool
    connection tries both addresses, as a diagnosis does, and keeps the one that answers
    (the pool used to connect to the first address only: 0 of 3)."""
    with TcpServer(host="::1") as server:
        report = await probe_pool(
            f"tcp://dual.netprobe.test:{server.port}",
            size=3,
            nameservers=[dns_server.address],
            icmp=False,
        )
    assert report.ok and report.opened == 3, report.summary
    for c in report.connections:
        assert c.tcp is not None and c.tcp.address == "::1" and c.tcp.outcome == "established"
