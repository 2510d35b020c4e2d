"""Real gRPC servers (grpcio, the reference implementation, with grpcio-health-checking) in a
child process: the standard health service with a status per service, or other behaviours.

    with GrpcServers({"plain": {"kind": "health", "statuses": {"": "SERVING"}}}) as grpc:
        grpc.port_of("plain")
    with GrpcHealthServer({"": "SERVING", "app.Orders": "NOT_SERVING"}) as server:
        server.port
    with GrpcHealthServer(None) as server:   # no health service: Check is UNIMPLEMENTED

Each server of the spec is one of:

* ``health``: ``grpc_health.v1.health.HealthServicer`` with the given statuses
  (``{"": "SERVING", "pkg.Down": "NOT_SERVING"}``); a service absent from the map answers
  ``NOT_FOUND``; optionally over TLS (``cert``, ``key``: PEM files), requiring a client
  certificate from the CA file ``client_ca``;
* ``no_health``: a gRPC server with another service only (the health method: UNIMPLEMENTED);
* ``error``: ``Health/Check`` ends with the status ``code`` (a ``grpc.StatusCode`` name) and
  ``message``;
* ``slow``: ``Health/Check`` answers SERVING after ``delay`` seconds.

The servers run in one child process (``python -m nplab.realservers.grpc_server SPEC``), so
that grpcio's threads and its C core never live in the test process; like every harness here
it binds loopback by default, or an address of a lab namespace with ``netns=`` (``ip netns
exec``), and dies with the process that started it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from nplab.realservers._base import RealServer, free_port, listening

__all__ = ["GrpcHealthServer", "GrpcServers"]

_KINDS = ("health", "no_health", "error", "slow")


class GrpcServers(RealServer):
    """grpcio servers, one per entry of ``spec`` (name -> ``{"kind": ...}``, see the module
    docstring), each on its own port of ``host``: ``port_of(name)``. A ``"port"`` in a
    server's entry fixes its port (the fault catalog's stable output); else a free one."""

    name = "grpc"
    # grpcio's C core starts slowly on a loaded machine (imports, then the pollers)
    start_timeout = 30.0

    def __init__(
        self, spec: dict[str, dict[str, Any]], *, host: str = "127.0.0.1", netns: str | None = None
    ) -> None:
        for name, server in spec.items():
            if server.get("kind") not in _KINDS:
                raise ValueError(f"gRPC test server {name!r}: unknown kind {server.get('kind')!r}")
        super().__init__(host=host, netns=netns, port=0)
        self.spec = spec
        self.ports: dict[str, int] = {
            name: int(server.get("port") or free_port(host)) for name, server in spec.items()
        }
        self.port = next(iter(self.ports.values()))

    def port_of(self, name: str) -> int:
        return self.ports[name]

    def argv(self) -> list[str]:
        spec = {
            name: {**server, "address": _join(self.host, self.ports[name])}
            for name, server in self.spec.items()
        }
        return [sys.executable, "-m", "nplab.realservers.grpc_server", json.dumps(spec)]

    def command(self) -> list[str]:
        # GRPC_VERBOSITY: no C-core chatter in the log; the repository root on sys.path for
        # the child's `-m nplab...` (the dev install puts it there too).
        env = [
            "env",
            "GRPC_VERBOSITY=ERROR",
            f"PYTHONPATH={Path(__file__).resolve().parents[2]}",
        ]
        argv = super().command()
        if self.netns:
            return [*argv[:4], *env, *argv[4:]]
        return [*env, *argv]

    def ready(self) -> bool:
        # grpcio binds an IPv4 address through a dual-stack socket: ss shows it as
        # [::ffff:127.0.0.1]:PORT.
        mapped = f"::ffff:{self.host}" if ":" not in self.host else self.host
        return all(
            listening(self.host, port, netns=self.netns)
            or listening(mapped, port, netns=self.netns)
            for port in self.ports.values()
        )


class GrpcHealthServer(GrpcServers):
    """One grpcio server with the health service and ``statuses`` (service -> a
    ``ServingStatus`` name: SERVING, NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN), or without the
    health service when ``statuses`` is None. Plain HTTP/2 (h2c), no TLS. Started at once."""

    def __init__(
        self,
        statuses: dict[str, str] | None,
        *,
        host: str = "127.0.0.1",
        netns: str | None = None,
    ) -> None:
        server: dict[str, Any] = (
            {"kind": "no_health"} if statuses is None else {"kind": "health", "statuses": statuses}
        )
        super().__init__({"main": server}, host=host, netns=netns)
        self.start()

    def __enter__(self) -> GrpcHealthServer:
        return self

    def close(self) -> None:
        self.stop()


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _serve(spec: dict[str, dict[str, Any]]) -> None:  # pragma: no cover - runs in the child
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    stop = threading.Event()
    servers: list[Any] = []

    def check_handler(behaviour: Any) -> Any:
        return grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health",
            {
                "Check": grpc.unary_unary_rpc_method_handler(
                    behaviour,
                    request_deserializer=health_pb2.HealthCheckRequest.FromString,
                    response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
                )
            },
        )

    for server_spec in spec.values():
        kind = server_spec["kind"]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        if kind == "health":
            servicer = health.HealthServicer()
            for service, status in server_spec.get("statuses", {}).items():
                servicer.set(service, health_pb2.HealthCheckResponse.ServingStatus.Value(status))
            health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        elif kind == "no_health":

            def echo(request: bytes, context: Any) -> bytes:
                return request

            server.add_generic_rpc_handlers(
                (
                    grpc.method_handlers_generic_handler(
                        "netprobe.test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
                    ),
                )
            )
        elif kind == "error":
            code = getattr(grpc.StatusCode, server_spec["code"])
            message = server_spec.get("message", "")

            def fail(request: Any, context: Any, code: Any = code, message: str = message) -> Any:
                context.abort(code, message)

            server.add_generic_rpc_handlers((check_handler(fail),))
        else:  # slow
            delay = float(server_spec["delay"])

            def slow(request: Any, context: Any, delay: float = delay) -> Any:
                stop.wait(delay)
                return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

            server.add_generic_rpc_handlers((check_handler(slow),))
        address = server_spec["address"]
        if "cert" in server_spec:
            chain = Path(server_spec["cert"]).read_bytes()
            key = Path(server_spec["key"]).read_bytes()
            client_ca = server_spec.get("client_ca")
            creds = grpc.ssl_server_credentials(
                [(key, chain)],
                root_certificates=Path(client_ca).read_bytes() if client_ca else None,
                require_client_auth=bool(client_ca),
            )
            bound = server.add_secure_port(address, creds)
        else:
            bound = server.add_insecure_port(address)
        if not bound:
            raise SystemExit(f"grpcio could not bind {address}")
        server.start()
        servers.append(server)

    def finish(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, finish)
    print(f"serving {len(servers)} gRPC server(s), pid {os.getpid()}", flush=True)
    while not stop.wait(0.5):  # a bounded wait: the signal handler runs between two
        pass
    for server in servers:
        server.stop(None)


if __name__ == "__main__":  # pragma: no cover
    _serve(json.loads(sys.argv[1]))
