"""The application probes, one per protocol, plugged into the ladder after TCP (and TLS)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from anyio.abc import ByteStream

from ..steps import ApplicationStep
from ..target import Protocol
from ._context import ProbeContext

__all__ = ["APP_PROBES", "AppProbe"]

AppProbe = Callable[[ProbeContext, ByteStream], Awaitable[ApplicationStep]]

#: Protocol -> probe. Plain TCP has none: an established connection is the whole answer.
APP_PROBES: dict[Protocol, AppProbe] = {}

from .database import probe_database  # noqa: E402 - registered below the table it fills

APP_PROBES.update({"mysql": probe_database, "postgresql": probe_database, "redis": probe_database})

from .http import probe_http  # noqa: E402 - registered below the table it fills

APP_PROBES["http"] = probe_http
