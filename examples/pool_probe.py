"""Can this host open a full pool of connections to the database at once?

    python examples/pool_probe.py mysql://db:3306 10
    python examples/pool_probe.py "postgresql://app:secret@db:5432/app" 10 --hold 30

Exits 0 when every connection opened (and held), 1 otherwise; prints the summary and one
line per failed connection.
"""

from __future__ import annotations

import argparse
import sys

import anyio

import netprobe


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("size", type=int, nargs="?", default=10)  # HikariCP's default
    parser.add_argument("--hold", type=float, default=0.0)
    args = parser.parse_args()
    pool = await netprobe.probe_pool(args.target, size=args.size, hold=args.hold, icmp=False)
    print(pool.summary)
    for conn in pool.connections:
        code = conn.fault_code or conn.held_fault_code  # failed to open, or died while held
        if code:
            print(f"  #{conn.index} {code}: {conn.detail}")
    print(f"fd headroom: {pool.fd_headroom}")
    return 0 if pool.ok else 1


if __name__ == "__main__":
    sys.exit(anyio.run(main))
