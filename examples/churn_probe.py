"""Do reconnects from just-closed source ports get through to this dependency?

    python examples/churn_probe.py db:5432 20

Exits 0 when every connect, fresh or from a reused port, got through on its first SYN, 1
otherwise (``l4.reused_port_dropped``: a stateful firewall or NAT on the path still holds
closed sessions); prints the summary and the connects by the SYN that got through.
"""

from __future__ import annotations

import argparse
import sys

import anyio

import netprobe


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("pairs", type=int, nargs="?", default=20)
    args = parser.parse_args()
    report = await netprobe.probe_churn(args.target, pairs=args.pairs)
    print(report.summary)
    for kind, stats in (("fresh", report.fresh), ("reused", report.reused)):
        print(f"  {kind}: {dict(stats.by_syns)}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(anyio.run(main))
