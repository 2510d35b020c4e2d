"""The smallest diagnosis: one target, the verdict, and the report as JSON.

Run: python examples/diagnose_one.py [TARGET]   (default: the local PostgreSQL)
"""

from __future__ import annotations

import sys

import anyio

import netprobe


async def main(target: str) -> int:
    report = await netprobe.diagnose(target)  # never raises for a network fault
    if report.ok:
        print(f"{target}: healthy in {report.timings_ms.total:.1f} ms")
    else:
        assert report.fault is not None
        print(report.fault.layer, report.fault.code, report.fault.summary)
    print(report.model_dump_json(indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:5432"))
