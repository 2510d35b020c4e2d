"""Cost of a full https:// diagnosis versus a bare httpx GET of the same URL, same run.

Both verify the server against the same test CA, over loopback, against the same server.
The two are interleaved (alternating which goes first) so drift hits both alike; we report
medians and the ratio diagnose / bare (goal: at most 1.2).

Run: .venv/bin/python benchmarks/bench_https_overhead.py [N]
Results: benchmarks/RESULTS-https.md
"""

from __future__ import annotations

import ssl
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx

import netprobe
from netprobe.testing import CertBook, L7Server


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await fn()
    return (time.perf_counter() - start) * 1000.0


async def main(n: int) -> None:
    with CertBook() as book, L7Server("tls", ssl_context=book.server_context()) as server:
        url = f"https://127.0.0.1:{server.port}/health"
        ctx = ssl.create_default_context(cafile=book.ca_file)

        async def bare() -> None:
            async with httpx.AsyncClient(verify=ctx) as client:
                response = await client.get(url)
                assert response.status_code == 200

        async def probe() -> None:
            report = await netprobe.diagnose(url, ca_file=book.ca_file)
            assert report.ok, report.fault

        async def probe_no_icmp() -> None:
            report = await netprobe.diagnose(url, ca_file=book.ca_file, icmp=False)
            assert report.ok, report.fault

        for _ in range(30):  # warm-up: imports, caches, the server's threads
            await bare()
            await probe()
            await probe_no_icmp()
        samples: dict[str, list[float]] = {"bare": [], "diagnose": [], "diagnose_noicmp": []}
        fns = {"bare": bare, "diagnose": probe, "diagnose_noicmp": probe_no_icmp}
        order = list(fns)
        for i in range(n):
            for name in order[i % 3 :] + order[: i % 3]:
                samples[name].append(await timed(fns[name]))
        med = {k: statistics.median(v) for k, v in samples.items()}
        p95 = {k: sorted(v)[int(len(v) * 0.95)] for k, v in samples.items()}
        print(f"python {sys.version.split()[0]}, ssl {ssl.OPENSSL_VERSION}, n={n} each")
        for k in samples:
            print(f"{k:16} median {med[k]:.3f} ms  p95 {p95[k]:.3f} ms")
        print(f"ratio diagnose/bare         (median): {med['diagnose'] / med['bare']:.3f}")
        print(f"ratio diagnose_noicmp/bare  (median): {med['diagnose_noicmp'] / med['bare']:.3f}")
        print(f"server accepted {server.accepted} connections for {30 * 3 + 3 * n} requests")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 300)
