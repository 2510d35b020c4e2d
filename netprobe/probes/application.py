"""The application probes, one per protocol, plugged into the ladder after TCP (and TLS)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from anyio.abc import ByteStream

from ..steps import ApplicationStep
from ..target import Protocol
from ._context import ProbeContext
from ._lazy import import_off_loop

__all__ = ["APP_PROBES", "AppProbe"]

AppProbe = Callable[[ProbeContext, ByteStream], Awaitable[ApplicationStep]]

#: Protocol -> probe. Plain TCP has none: an established connection is the whole answer.
APP_PROBES: dict[Protocol, AppProbe] = {}

from .database import probe_database  # noqa: E402 - registered below the table it fills

APP_PROBES.update({"mysql": probe_database, "postgresql": probe_database, "redis": probe_database})


async def _probe_http(ctx: ProbeContext, stream: ByteStream) -> ApplicationStep:
    """The HTTP probe, imported at its first use: httpx (and the CLI libraries its own
    command line pulls in) costs ~80 ms of imports that TCP and database targets never need
    (benchmarks/RESULTS-import.md). Imported off the event loop: see _lazy.py."""
    await import_off_loop("netprobe.probes.http")
    from .http import probe_http

    return await probe_http(ctx, stream)


APP_PROBES["http"] = _probe_http


from .grpc import grpc_application_step  # noqa: E402 - h2 itself is imported at the first call

APP_PROBES["grpc"] = grpc_application_step
