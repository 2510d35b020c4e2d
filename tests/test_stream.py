"""diagnose_stream: reports in completion order, targets read as the diagnoses go (issue 16).

Real servers on loopback (netprobe.testing); never timed: orders and verdicts only."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

import pytest

import netprobe
from netprobe.testing import SilentPort, TcpServer, closed_port

pytestmark = pytest.mark.anyio


@pytest.mark.backends
async def test_every_report_streamed_with_its_verdict(tcp_server: TcpServer) -> None:
    refused = closed_port()
    taken: list[int] = []

    def targets() -> Iterator[str]:  # a generator: read as the diagnoses go
        for i in range(40):
            taken.append(i)
            yield f"tcp://{tcp_server.address}" if i % 2 == 0 else f"127.0.0.1:{refused}"

    codes: Counter[str] = Counter()
    async for report in netprobe.diagnose_stream(targets(), concurrency=8, icmp=False):
        codes[report.fault.code if report.fault else "healthy"] += 1
        # Never more read ahead than the diagnoses in flight and the buffer.
        assert len(taken) <= sum(codes.values()) + 8 + 8 + 1
    assert codes == {"healthy": 20, "l4.refused": 20}


async def test_completion_order_not_input_order(tcp_server: TcpServer) -> None:
    with SilentPort() as silent:
        targets = [f"tcp://{silent.address}", f"tcp://{tcp_server.address}"]
        got = [
            r.target.port
            async for r in netprobe.diagnose_stream(
                targets, concurrency=2, connect_timeout=0.5, icmp=False
            )
        ]
    # The silent port waits for its connect timeout: the open one, second in, is out first.
    assert got == [tcp_server.port, silent.port]


async def test_a_malformed_target_raises_after_the_reports_before_it(tcp_server: TcpServer) -> None:
    got = []
    with pytest.raises(netprobe.InvalidTarget):
        async for report in netprobe.diagnose_stream(
            [f"tcp://{tcp_server.address}", "tcp://host:99999"], concurrency=1, icmp=False
        ):
            got.append(report)
    assert [r.ok for r in got] == [True]


async def test_bad_concurrency_before_any_io() -> None:
    with pytest.raises(netprobe.InvalidOption, match="concurrency"):
        async for _ in netprobe.diagnose_stream(["127.0.0.1:1"], concurrency=0):
            pass


@pytest.mark.backends
async def test_leaving_early_cancels_what_is_in_flight(tcp_server: TcpServer) -> None:
    with SilentPort() as silent:
        targets = [f"tcp://{tcp_server.address}"] + [f"tcp://{silent.address}"] * 5
        stream = netprobe.diagnose_stream(targets, concurrency=6, connect_timeout=30, icmp=False)
        async with contextlib.aclosing(stream) as reports:
            async for report in reports:
                assert report.ok
                break  # the silent ones' 30 s connects are cancelled, not awaited
