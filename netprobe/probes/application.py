"""The application rung's exchanges, one per protocol, over the established (and, for TLS
targets, encrypted) connection.

An :class:`Exchange` is opened (the greeting, the HTTP request and its answer), can be
validated again on the same connection (a held pool connection), and is closed with the
protocol's goodbye. gRPC's (``grpc.py``) is the health check over HTTP/2. Each step
returns the :class:`~netprobe.steps.ApplicationStep` so far.
Plain TCP has none: an established connection is the whole answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from anyio.abc import ByteStream

from ..steps import ApplicationStep
from ..target import Protocol as TargetProtocol
from ._context import ProbeContext
from ._lazy import import_off_loop
from .database import DatabaseExchange
from .grpc import GrpcExchange

__all__ = ["OPENINGS", "Exchange", "HttpExchange"]


class Exchange(Protocol):
    """One application conversation on one connection."""

    async def open(self) -> ApplicationStep:
        """Talk until the server proved itself up, or said why not."""
        ...

    async def validate(self) -> ApplicationStep | None:
        """Another round trip on the open connection (pools, after holding it); None when
        the protocol has none."""
        ...

    async def close(self) -> ApplicationStep | None:
        """The protocol's goodbye (bounded, shielded, never raises for the peer), and the
        step it completes; None when the goodbye adds nothing to what open() said."""
        ...


class HttpExchange:
    """The request and its answer (httpx over the connection); nothing to validate or say
    goodbye to. httpx is imported at the first use, off the event loop: it and the CLI
    libraries its own command line pulls in cost ~80 ms of imports that TCP and database
    targets never need (benchmarks/RESULTS-import.md, probes/_lazy.py)."""

    def __init__(self, ctx: ProbeContext, stream: ByteStream) -> None:
        self._ctx = ctx
        self._stream = stream

    async def open(self) -> ApplicationStep:
        await import_off_loop("netprobe.probes.http")
        from .http import probe_http

        return await probe_http(self._ctx, self._stream)

    async def validate(self) -> ApplicationStep | None:
        return None

    async def close(self) -> ApplicationStep | None:
        return None


#: Protocol -> its exchange.
OPENINGS: dict[TargetProtocol, Callable[[ProbeContext, ByteStream], Exchange]] = {
    "http": HttpExchange,
    "mysql": DatabaseExchange,
    "postgresql": DatabaseExchange,
    "redis": DatabaseExchange,
    "grpc": GrpcExchange,
}
