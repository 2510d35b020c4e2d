"""Health endpoint under load: how many diagnoses, and how long requests take.

Serves the health app with uvicorn on loopback and sends waves of concurrent GET /ready with
httpx. Two scenarios:

* ``slow``: the dependency takes ``--slow`` seconds to diagnose (the real diagnosis, delayed)
  and ``--requests`` requests arrive together while it runs: single flight means exactly one
  diagnosis, counted both by the injected counter and by the connections the real loopback
  dependency accepted.
* ``hang``: the result is stale and every refresh hangs 10 s: each request of the flood
  must come back within its budget (0.8 s) with the last known result.
* ``cached``: the result is fresh; the same flood is answered from the cache; then 200
  requests one at a time (the latency of one request without queueing).

Run: .venv/bin/python benchmarks/bench_health.py [--requests 1000] [--slow 1.0] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import anyio
import httpx
import uvicorn

import netprobe
from netprobe.options import Options
from netprobe.report import Report
from netprobe.target import Target
from netprobe.testing import TcpServer


class Counting:
    def __init__(self, delay: float, *, first_delay: float | None = None) -> None:
        self.calls = 0
        self.delay = delay
        self.first_delay = delay if first_delay is None else first_delay

    async def __call__(self, target: Target, options: Options) -> Report:
        self.calls += 1
        await anyio.sleep(self.first_delay if self.calls == 1 else self.delay)
        return await netprobe.diagnose(target, options=options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def get_ready(port: int) -> tuple[int, float]:
    """One GET /ready on a fresh connection, with a minimal client (httpx's pool would be the
    bottleneck at a thousand connections, not the server)."""
    t0 = time.perf_counter()
    stream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        await stream.send(b"GET /ready HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            while True:
                data += await stream.receive()
    status = int(data.split(b" ", 2)[1])
    return status, time.perf_counter() - t0


async def flood(port: int, n: int) -> list[float]:
    latencies: list[float] = []

    async def one() -> None:
        status, elapsed = await get_ready(port)
        assert status == 200, status  # a stale "healthy" is still 200
        latencies.append(elapsed)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return latencies


async def sequential(port: int, n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        status, elapsed = await get_ready(port)
        assert status == 200, status
        latencies.append(elapsed)
    return latencies


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def row(name: str, lat: list[float], wall: float, diagnoses: int, accepts: int) -> str:
    ms = [x * 1000 for x in lat]
    return (
        f"| {name} | {len(lat)} | {diagnoses} | {accepts} | {statistics.median(ms):.1f} | "
        f"{pct(ms, 95):.1f} | {pct(ms, 99):.1f} | {max(ms):.1f} | {len(lat) / wall:.0f} |"
    )


def serve(dependency: str, port: int, slow: float, hang: bool) -> None:
    if hang:  # healthy at once, then every refresh hangs 10 s: requests get the stale result
        counter = Counting(10.0, first_delay=0.0)
        app = netprobe.health_app([dependency], ttl=1, budget=0.8, diagnose=counter, icmp=False)
    else:
        counter = Counting(slow)
        app = netprobe.health_app(
            [dependency], ttl=600, budget=slow + 5, diagnose=counter, icmp=False
        )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096)


def diagnoses(port: int) -> int:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    for line in text.splitlines():
        if line.startswith("netprobe_diagnoses_total{"):
            return int(float(line.rsplit(" ", 1)[1]))
    raise RuntimeError("no netprobe_diagnoses_total")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--slow", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hang", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--serve", nargs=2, metavar=("DEPENDENCY", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.slow, args.hang)
        return

    print(
        "| scenario | requests | diagnoses | dependency accepts | p50 ms | p95 ms | p99 ms "
        "| max ms | req/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for rnd in range(args.rounds):
        with TcpServer(backlog=4096) as dependency, health_server(dependency, args) as port:
            for name in (f"slow {args.slow:g} s #{rnd + 1}", f"cached #{rnd + 1}"):
                t0 = time.perf_counter()
                lat = anyio.run(flood, port, args.requests)
                wall = time.perf_counter() - t0
                print(row(name, lat, wall, diagnoses(port), dependency.accepted))
            t0 = time.perf_counter()
            lat = anyio.run(sequential, port, 200)
            wall = time.perf_counter() - t0
            name = f"cached, one at a time #{rnd + 1}"
            print(row(name, lat, wall, diagnoses(port), dependency.accepted))
        with TcpServer(backlog=4096) as dependency, health_server(dependency, args, True) as port:
            anyio.run(sequential, port, 1)  # the first, fast diagnosis
            time.sleep(1.1)  # the result is stale now; the next refresh hangs 10 s
            t0 = time.perf_counter()
            lat = anyio.run(flood, port, args.requests)
            wall = time.perf_counter() - t0
            name = f"dependency hangs, budget 0.8 s #{rnd + 1}"
            print(row(name, lat, wall, diagnoses(port), dependency.accepted))
            t0 = time.perf_counter()
            lat = anyio.run(sequential, port, 200)
            wall = time.perf_counter() - t0
            name = f"still hanging, one at a time #{rnd + 1}"
            print(row(name, lat, wall, diagnoses(port), dependency.accepted))


@contextlib.contextmanager
def health_server(
    dependency: TcpServer, args: argparse.Namespace, hang: bool = False
) -> Iterator[int]:
    port = free_port()
    cmd = [sys.executable, __file__, "--slow", str(args.slow)]
    cmd += ["--hang"] if hang else []
    cmd += ["--serve", f"tcp://{dependency.address}", str(port)]
    proc = subprocess.Popen(cmd)
    try:
        deadline = time.monotonic() + 30
        while not _port_open(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the health server did not start")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
