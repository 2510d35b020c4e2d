"""The gRPC health check of one server, from DNS to grpc.health.v1.Health/Check.

    python examples/grpc_health.py grpc://127.0.0.1:50051[/package.Service]

netprobe runs the check over its own HTTP/2 connection (the one its TCP and TLS rungs
opened), so a refused port, a bad certificate, a proxy's 502 and NOT_SERVING each land in
their own layer. Prints what the health check observed as JSON, then the verdict.
Exit status: 0 when SERVING, 1 otherwise.
"""

from __future__ import annotations

import sys

import anyio

import netprobe


async def main(target: str) -> int:
    report = await netprobe.diagnose(target, icmp=False)
    app = report.step(netprobe.ApplicationStep)
    if app is not None and app.grpc is not None:
        print(app.grpc.model_dump_json(indent=2, exclude_defaults=True))
    fault = report.fault
    print(f"{fault.code}: {fault.summary}" if fault else "SERVING")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1]))
