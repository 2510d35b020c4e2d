"""A real gRPC server (grpcio) on a free loopback port, serving the standard health service
``grpc.health.v1.Health`` with a given status per service, or not serving it at all.

    with GrpcHealthServer({"": "SERVING", "app.Orders": "NOT_SERVING"}) as server:
        server.port
    with GrpcHealthServer(None) as server:   # no health service: Check is UNIMPLEMENTED

A service absent from the map answers ``NOT_FOUND`` (grpcio-health-checking's behaviour).
``set_status`` changes a status while it runs. Plain HTTP/2 (h2c), no TLS.
"""

from __future__ import annotations

from concurrent import futures
from types import TracebackType

from nplab.require import require

__all__ = ["GrpcHealthServer"]


class GrpcHealthServer:
    def __init__(self, statuses: dict[str, str] | None, *, host: str = "127.0.0.1") -> None:
        try:
            import grpc
            from grpc_health.v1 import health, health_pb2, health_pb2_grpc
        except ImportError:  # pragma: no cover - the dev extra installs both
            require(False, "needs grpcio and grpcio-health-checking (the dev extra)")
            raise
        self._pb2 = health_pb2
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.health: health.HealthServicer | None = None
        if statuses is not None:
            self.health = health.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
            for service, status in statuses.items():
                self.set_status(service, status)
        self.host = host
        self.port: int = self._server.add_insecure_port(f"{host}:0")
        self._server.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def set_status(self, service: str, status: str) -> None:
        """``status`` is a ``ServingStatus`` name: SERVING, NOT_SERVING, UNKNOWN,
        SERVICE_UNKNOWN."""
        assert self.health is not None, "started without the health service"
        value = self._pb2.HealthCheckResponse.ServingStatus.Value(status)
        self.health.set(service, value)

    def close(self) -> None:
        self._server.stop(grace=None).wait(5)

    def __enter__(self) -> GrpcHealthServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
