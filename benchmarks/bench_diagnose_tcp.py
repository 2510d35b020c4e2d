"""Cost of a TCP-level diagnosis on loopback, and throughput of diagnose_many.

Run: .venv/bin/python benchmarks/bench_diagnose_tcp.py
Results: benchmarks/RESULTS-core.md
"""

from __future__ import annotations

import statistics
import time

import anyio

import netprobe
from netprobe.testing import TcpServer, closed_port


async def main() -> None:
    with TcpServer() as server:
        closed = closed_port()
        for label, target in (
            ("healthy", f"tcp://{server.address}"),
            ("refused", f"tcp://127.0.0.1:{closed}"),
        ):
            samples = []
            for _ in range(300):
                start = time.perf_counter()
                await netprobe.diagnose(target, icmp=False)
                samples.append((time.perf_counter() - start) * 1000)
            samples.sort()
            print(
                f"{label:8} diagnose(): median {statistics.median(samples):.3f} ms, "
                f"p95 {samples[int(len(samples) * 0.95)]:.3f} ms (n=300, icmp off)"
            )
        targets = [f"tcp://{server.address}"] * 2000
        start = time.perf_counter()
        reports = await netprobe.diagnose_many(targets, concurrency=100, icmp=False)
        elapsed = time.perf_counter() - start
        assert all(r.ok for r in reports)
        print(
            f"diagnose_many: 2000 healthy targets, concurrency 100: {elapsed:.2f} s "
            f"({len(targets) / elapsed:.0f} diagnoses/s)"
        )


if __name__ == "__main__":
    anyio.run(main)
