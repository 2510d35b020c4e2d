"""The gRPC health check on a connection you opened yourself: a stream in, a GrpcResult out.

    python examples/grpc_health_probe.py 127.0.0.1 50051 [package.Service]

Connects with netprobe's own TCP connect, runs grpc.health.v1.Health/Check over that one
connection (HTTP/2 with prior knowledge), prints the observation as JSON and its verdict.
Exit status: 0 when SERVING, 1 otherwise.
"""

from __future__ import annotations

import sys

import anyio

from netprobe.classify.grpc import grpc_fault
from netprobe.options import make_options
from netprobe.probes.grpc import probe_grpc
from netprobe.probes.tcp import connect_address, stream_from_socket
from netprobe.target import parse_target


async def main(host: str, port: int, service: str) -> int:
    attempt, sock = await connect_address(host, port, connect_timeout=3.0)
    if sock is None:
        print(f"connect failed: {attempt.outcome}")
        return 1
    async with await stream_from_socket(sock) as stream:
        result = await probe_grpc(
            stream, authority=f"{host}:{port}", service=service, read_timeout=3.0
        )
    print(result.model_dump_json(indent=2, exclude_defaults=True))
    target = parse_target(f"grpc://{host}:{port}" + (f"/{service}" if service else ""))
    fault = grpc_fault(target, make_options(None), result)
    print(f"{fault.code}: {fault.summary}" if fault else "SERVING")
    return 0 if result.healthy else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(anyio.run(main, args[0], int(args[1]), args[2] if len(args) > 2 else ""))
