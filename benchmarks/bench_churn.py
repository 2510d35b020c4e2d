"""Cost of the churn probe: wall time and this process's CPU per connect, on loopback (the
probe's own cost) and through the lab's session table (the cost of what it finds), and the
keepalive check of a held connection.

Run (root for the lab rows; the loopback rows run anywhere):

    .venv/bin/python benchmarks/bench_churn.py

Results: benchmarks/RESULTS-churn.md
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import anyio

import netprobe
from netprobe.testing import TcpServer

ROOT = Path(__file__).resolve().parent.parent
NETPROBE = str(ROOT / ".venv" / "bin" / "netprobe")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def loopback() -> None:
    with TcpServer() as server:
        target = f"127.0.0.1:{server.port}"
        await netprobe.probe_churn(target, pairs=5, rate=1000)  # warm: imports, first sockets
        for pairs, rate in ((20, 20.0), (200, 1000.0), (1000, 1000.0)):
            walls, cpus = [], []
            for _ in range(3):
                start, cpu = time.perf_counter(), _cpu()
                report = await netprobe.probe_churn(target, pairs=pairs, rate=rate, max_time=120)
                walls.append(time.perf_counter() - start)
                cpus.append(_cpu() - cpu)
                # A listener's accept queue may overflow at 1000 pairs/s: a SYN is dropped and
                # retransmitted 1 s later (reported, not a failure of the probe).
                assert not report.fresh.timed_out and not report.reused.timed_out
            connects = report.fresh.attempts + report.reused.attempts
            lost = report.fresh.retransmitted + report.reused.retransmitted
            print(
                f"loopback  pairs={pairs:<5} rate={rate:<6g} wall median "
                f"{statistics.median(walls):.3f} s, CPU {statistics.median(cpus) * 1000:.1f} ms "
                f"({statistics.median(cpus) / connects * 1e6:.0f} us per connect, "
                f"{connects} connects), reused median {report.reused.median_ms} ms, "
                f"{lost} SYNs lost (last run)"
            )
        # The keepalive check of a held connection, on loopback: the answer's wait.
        for _ in range(1):
            pool = await netprobe.probe_pool(f"tcp://{target}", size=20, hold=1.5, icmp=False)
            waits = sorted(c.hold_check.waited_ms for c in pool.connections if c.hold_check)
            print(
                f"pool hold check, 20 connections held 1.5 s: keepalive answered in median "
                f"{statistics.median(waits):.1f} ms, max {waits[-1]:.1f} ms (poll step 10 ms)"
            )


def lab() -> None:
    if os.geteuid() != 0:
        print("lab rows skipped: needs root")
        return
    from nplab.realservers.conntrack import ST_SERVER_IP, SessionTablePath

    for seconds, connect_timeout in ((None, 2.0), (3.0, 2.0), (1.5, 4.0)):
        with SessionTablePath(seconds) as path:
            argv = [NETPROBE, "churn", f"{ST_SERVER_IP}:7", "--pairs", "20",
                    "--connect-timeout", str(connect_timeout), "--json"]  # fmt: skip
            start = time.perf_counter()
            out = path.run_client(argv, timeout=120)
            wall = time.perf_counter() - start
        data = json.loads(out.stdout)
        code = data["fault"]["code"] if data["fault"] else "ok"
        table = "none" if seconds is None else f"{seconds:g} s"
        print(
            f"lab session table {table:<6} connect timeout {connect_timeout:g} s: {code}, "
            f"probe {data['duration_ms'] / 1000:.2f} s (CLI process {wall:.2f} s), reused "
            f"{dict(data['reused']['by_syns'])}"
        )


if __name__ == "__main__":
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    anyio.run(loopback)
    lab()
