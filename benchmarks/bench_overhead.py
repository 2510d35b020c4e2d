"""What a healthy diagnosis costs next to what a user would otherwise write, in one run.

Run: .venv/bin/python benchmarks/bench_overhead.py [N] [FRESH]
Results: benchmarks/RESULTS-overhead.md

Two ratios, each ``median(diagnose) / median(bare)`` over N interleaved rounds (default 300,
after 30 warm-up rounds), against servers on loopback that run in a separate process (so
their accept threads do not compete with the client for the GIL):

* ``diagnose("127.0.0.1:PORT")`` against ``await (await anyio.connect_tcp(host, port)).aclose()``
  (goal: at most 1.5);
* ``diagnose("https://127.0.0.1:PORT/health", ca_file=...)`` against
  ``async with httpx.AsyncClient(verify=ctx) as c: await c.get(url)`` (goal: at most 1.2).

Each with the default options and with ``icmp=False``. Every round runs all six callables,
rotating which goes first, so drift and load hit them alike. Then FRESH (default 10) new
processes each time their first and second ``diagnose()`` of the TCP target (imports done
before the clock starts): the cost a short-lived script or a CLI run pays once.
"""

from __future__ import annotations

import json
import os
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

import anyio
import httpx

import netprobe

GOALS = {"tcp": 1.5, "https": 1.2}
WARMUP = 30

_FRESH_CHILD = """
import json, sys, time
import anyio
import netprobe

async def main() -> None:
    out = []
    for _ in range(2):
        start = time.perf_counter()
        report = await netprobe.diagnose(sys.argv[1])
        out.append((time.perf_counter() - start) * 1000.0)
        assert report.ok, report.fault
    print(json.dumps(out))

anyio.run(main)
"""


def serve() -> None:
    """Child mode: a plain TCP server and an HTTPS server until stdin closes."""
    from netprobe.testing import CertBook, L7Server, TcpServer

    with (
        CertBook() as book,
        TcpServer() as tcp,
        L7Server("tls", ssl_context=book.server_context()) as tls,
    ):
        print(json.dumps({"tcp": tcp.port, "https": tls.port, "ca_file": book.ca_file}))
        sys.stdout.flush()
        sys.stdin.read()


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await fn()
    return (time.perf_counter() - start) * 1000.0


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def interleaved(n: int, tcp_port: int, https_port: int, ca_file: str) -> None:
    host = "127.0.0.1"
    url = f"https://{host}:{https_port}/health"
    ctx = ssl.create_default_context(cafile=ca_file)

    async def bare_tcp() -> None:
        stream = await anyio.connect_tcp(host, tcp_port)
        await stream.aclose()

    async def bare_https() -> None:
        async with httpx.AsyncClient(verify=ctx) as client:
            response = await client.get(url)
            assert response.status_code == 200

    def diag(target: str, **kwargs: Any) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            report = await netprobe.diagnose(target, **kwargs)
            assert report.ok, report.fault

        return run

    fns: dict[str, Callable[[], Awaitable[object]]] = {
        "tcp bare": bare_tcp,
        "tcp diagnose": diag(f"{host}:{tcp_port}"),
        "tcp diagnose icmp=False": diag(f"{host}:{tcp_port}", icmp=False),
        "https bare": bare_https,
        "https diagnose": diag(url, ca_file=ca_file),
        "https diagnose icmp=False": diag(url, ca_file=ca_file, icmp=False),
    }
    order = list(fns)
    for _ in range(WARMUP):
        for name in order:
            await fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in order}
    for i in range(n):
        k = i % len(order)
        for name in order[k:] + order[:k]:
            samples[name].append(await timed(fns[name]))
    med = {name: statistics.median(v) for name, v in samples.items()}

    print(f"Interleaved, n={n} each after {WARMUP} warm-up rounds (times in ms):\n")
    print("| case | median | p95 | ratio to bare (median) | goal |")
    print("|---|---|---|---|---|")
    for name in order:
        kind = name.split()[0]
        bare = med[f"{kind} bare"]
        if name.endswith("bare"):
            ratio, goal = "1", ""
        else:
            r = med[name] / bare
            met = "met" if r <= GOALS[kind] else "missed"
            ratio, goal = f"**{r:.2f}**", f"≤ {GOALS[kind]} ({met})"
        print(f"| {name} | {med[name]:.3f} | {pct(samples[name], 0.95):.3f} | {ratio} | {goal} |")


def fresh(count: int, tcp_port: int) -> None:
    firsts: list[float] = []
    seconds: list[float] = []
    for _ in range(count):
        out = subprocess.run(
            [sys.executable, "-c", _FRESH_CHILD, f"127.0.0.1:{tcp_port}"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        first, second = json.loads(out)
        firsts.append(first)
        seconds.append(second)
    print(f"\nFresh processes (n={count}; imports before the clock, default options):\n")
    print('| `diagnose("127.0.0.1:PORT")` | median | max |')
    print("|---|---|---|")
    print(f"| first in the process | {statistics.median(firsts):.3f} | {max(firsts):.3f} |")
    print(f"| second | {statistics.median(seconds):.3f} | {max(seconds):.3f} |")


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve()
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    fresh_count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ports = json.loads(server.stdout.readline())
        print(f"Command: .venv/bin/python benchmarks/bench_overhead.py {n} {fresh_count}")
        print(
            f"python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}, httpx {httpx.__version__}, "
            f"anyio {version('anyio')}, pydantic {version('pydantic')}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}\n"
        )
        anyio.run(interleaved, n, ports["tcp"], ports["https"], ports["ca_file"])
        fresh(fresh_count, ports["tcp"])
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
