"""500 consecutive MySQL probes must never get the probing host blocked (1129).

A MariaDB with name resolution (so its host cache is used) and max_connect_errors=3, probed
from a client network namespace (198.18.200.2, no default route). Needs root.

    .venv/bin/python benchmarks/db_probe_blocking.py [N]
"""

from __future__ import annotations

import json
import sys
import time

from nplab.dbservers import NS_SERVER_IP, ClientNamespace, ResolvingMariaDB

CODE = """
import anyio, json, time
import netprobe

async def main():
    codes, times = {}, []
    for _ in range(N):
        t = time.perf_counter()
        r = await netprobe.diagnose("mysql://HOST:PORT", icmp=False, timeout=5)
        times.append((time.perf_counter() - t) * 1000)
        key = r.fault.code if r.fault else "healthy"
        codes[key] = codes.get(key, 0) + 1
    times.sort()
    print(json.dumps({"codes": codes, "p50_ms": times[len(times) // 2],
                      "p99_ms": times[int(len(times) * 0.99)], "max_ms": times[-1]}))

anyio.run(main)
"""


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    ns = ClientNamespace().start()
    server = ResolvingMariaDB()
    try:
        server.start()
        code = CODE.replace("N)", f"{n})").replace("HOST", NS_SERVER_IP)
        code = code.replace("PORT", str(server.port))
        start = time.perf_counter()
        out = json.loads(ns.run_python(code, timeout=600))
        wall = time.perf_counter() - start
        aborted = server.status("Aborted_connects")
        print(json.dumps({"probes": n, "wall_s": round(wall, 2), **out,
                          "aborted_connects": aborted,
                          "max_connect_errors": 3}, indent=2))  # fmt: skip
    finally:
        server.stop()
        ns.stop()


if __name__ == "__main__":
    main()
