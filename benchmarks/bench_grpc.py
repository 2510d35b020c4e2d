"""Cost of a grpc:// diagnosis versus grpcio's own health check of the same server, same run.

The server is grpcio with grpcio-health-checking (nplab/realservers/grpc_server.py, a child
process), on loopback. Three ways to ask it, interleaved (rotating which goes first) so drift
hits all alike, each on a fresh connection:

* ``grpcio``: ``grpc.aio.insecure_channel`` + ``HealthStub.Check`` + close (what a service's
  own gRPC client would do; its channel setup included);
* ``probe_grpc``: netprobe's TCP connect + ``probe_grpc`` on that stream (the rung alone);
* ``diagnose``: the whole ladder, ``diagnose(grpc://..., icmp=False)``.

Then the first-use import of the HTTP/2 machinery (``netprobe.protocols.grpc_http2``: h2,
hpack, hyperframe) in fresh interpreters that already imported netprobe.

Run: .venv/bin/python benchmarks/bench_grpc.py [N]
Results: benchmarks/RESULTS-grpc.md
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import anyio
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

import netprobe
from netprobe.probes._io import stream_from_socket
from netprobe.probes.grpc import probe_grpc
from netprobe.probes.tcp import connect_address
from nplab.realservers.grpc_server import GrpcServers

_IMPORT = (
    "import time, netprobe, netprobe.probes.grpc; t = time.perf_counter(); "
    "import netprobe.protocols.grpc_http2; print((time.perf_counter() - t) * 1000)"
)


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await fn()
    return (time.perf_counter() - start) * 1000.0


def import_ms(rounds: int = 7) -> float:
    out = []
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT], capture_output=True, text=True, check=True
        )
        out.append(float(done.stdout.strip()))
    return statistics.median(out)


async def main(n: int) -> None:
    with GrpcServers({"plain": {"kind": "health", "statuses": {"": "SERVING"}}}) as servers:
        port = servers.port_of("plain")
        target = f"grpc://127.0.0.1:{port}"

        async def bare() -> None:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=3.0)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING

        async def rung() -> None:
            attempt, sock = await connect_address("127.0.0.1", port, 3.0)
            assert sock is not None, attempt
            async with await stream_from_socket(sock) as stream:
                result = await probe_grpc(stream, authority=f"127.0.0.1:{port}")
            assert result.healthy, result

        async def ladder() -> None:
            report = await netprobe.diagnose(target, icmp=False)
            assert report.ok, report.fault

        fns = {"grpcio": bare, "probe_grpc": rung, "diagnose": ladder}
        for _ in range(20):  # warm-up: imports, caches, the server's threads
            for fn in fns.values():
                await fn()
        samples: dict[str, list[float]] = {k: [] for k in fns}
        order = list(fns)
        for i in range(n):
            for name in order[i % 3 :] + order[: i % 3]:
                samples[name].append(await timed(fns[name]))
    print(f"rounds: {n}")
    print("| | median | p95 |")
    print("|---|---|---|")
    for name, values in samples.items():
        values.sort()
        p95 = values[int(len(values) * 0.95) - 1]
        print(f"| {name} | {statistics.median(values):.3f} ms | {p95:.3f} ms |")
    ratio = statistics.median(samples["diagnose"]) / statistics.median(samples["grpcio"])
    print(f"\ndiagnose / grpcio (median): {ratio:.2f}")
    print(f"first import of netprobe.protocols.grpc_http2 (median of 7): {import_ms():.1f} ms")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 200)
