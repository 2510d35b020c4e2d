"""Diagnose several dependencies at once and print one line each.

Run: python examples/diagnose_many.py [TARGET...]
"""

from __future__ import annotations

import sys

import anyio

import netprobe


async def main(targets: list[str]) -> int:
    reports = await netprobe.diagnose_many(targets, concurrency=50, timeout=5)
    for report in reports:
        verdict = (
            "healthy" if report.fault is None else f"{report.fault.code}: {report.fault.summary}"
        )
        print(f"{report.target}: {verdict}")
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    default = ["127.0.0.1:5432", "127.0.0.1:6379", "127.0.0.1:3306"]
    sys.exit(anyio.run(main, sys.argv[1:] or default))
