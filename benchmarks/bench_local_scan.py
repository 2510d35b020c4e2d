"""Cost of the local-health read (sockets toward the target) with a large socket table.

Fills this network namespace's TCP table with ~N TIME_WAIT sockets on loopback (a bounded
loop of connect/close; they expire by themselves after 60 s), then times, against a closed
loopback port (a refused verdict: the diagnosis itself takes well under a millisecond, so
the local read is what shows):

* a first diagnose() in a fresh process (median of 5 processes), and
* a steady-state diagnose() in one process (median of 200, the shared snapshot cleared
  before each so every diagnosis pays for its own read),

each with the sock_diag netlink dump (the default) and with the /proc/net/tcp fallback.

Run: .venv/bin/python benchmarks/bench_local_scan.py [N]   (default 20000)
Results: benchmarks/RESULTS-core.md
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time

_CHILD = """
import json, statistics, sys, time
t0 = time.perf_counter()
import anyio, netprobe
import netprobe.probes.local as local
mode, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if mode == "proc":
    local._diag_failed = "forced by the benchmark"
async def main():
    first_start = time.perf_counter()
    r = await netprobe.diagnose(f"tcp://127.0.0.1:{port}", icmp=False)
    first = (time.perf_counter() - first_start) * 1000
    assert r.fault is not None and r.fault.code == "l4.refused", r.fault
    assert r.local is not None and r.local.sockets_scanned
    samples = []
    for _ in range(n):
        local._cache = None
        local._diag_cache.clear()
        s = time.perf_counter()
        await netprobe.diagnose(f"tcp://127.0.0.1:{port}", icmp=False)
        samples.append((time.perf_counter() - s) * 1000)
    print(json.dumps({"first": first, "steady": statistics.median(samples) if samples else None,
                      "scanned": r.local.sockets_scanned, "states": r.local.states}))
anyio.run(main)
"""


def fill_time_wait(count: int) -> int:
    server = socket.create_server(("127.0.0.1", 0), backlog=512)
    made = 0
    try:
        for _ in range(count):  # bounded
            try:
                client = socket.create_connection(server.getsockname())
            except OSError:
                break  # out of ephemeral ports
            conn, _ = server.accept()
            client.close()  # the active closer keeps the TIME_WAIT
            conn.close()
            made += 1
    finally:
        server.close()
    return made


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child(mode: str, port: int, n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(port), str(n)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    data = json.loads(out.stdout)
    return {k: float(data[k] or 0) for k in ("first", "steady", "scanned")}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    start = time.perf_counter()
    made = fill_time_wait(n)
    print(f"{made} TIME_WAIT sockets made in {time.perf_counter() - start:.1f} s")
    with open("/proc/net/sockstat") as fh:
        print(next(line.strip() for line in fh if line.startswith("TCP:")))
    port = closed_port()
    for mode in ("netlink", "proc"):
        firsts = [child(mode, port, 0)["first"] for _ in range(5)]
        steady = child(mode, port, 200)
        runs = ", ".join(f"{f:.1f}" for f in firsts)
        print(
            f"{mode:8} first diagnose() in a fresh process: median "
            f"{statistics.median(firsts):.2f} ms (runs: {runs}); steady state: median "
            f"{steady['steady']:.3f} ms; sockets_scanned={steady['scanned']:.0f}"
        )


if __name__ == "__main__":
    main()
