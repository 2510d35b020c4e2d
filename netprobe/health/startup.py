"""Refuse to start without the dependencies: an ASGI lifespan gate around any app.

Raising from a framework's lifespan to stop the server works, but the server then prints
the framework's traceback after the diagnosis (Starlette sends ``traceback.format_exc()``
as the ASGI failure message). The gate speaks the lifespan protocol itself: it waits with
`wait_until_ready` before the app's own startup runs and, when a dependency is still not
ready at the deadline, answers ``lifespan.startup.failed`` with the diagnosis as the
message. The server logs those lines and exits (uvicorn with status 3, "startup failed");
the app's own startup never runs.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Unpack

from .._errors import InvalidOption
from .._unavailable import DependencyUnavailable
from ..options import Options, RungOptionsKwargs, make_options
from ..probes.db_login import require_driver
from ..target import Target, parse_target
from .wait import wait_until_ready

__all__ = ["startup_gate"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def startup_gate(
    app: ASGIApp,
    dependencies: Iterable[str | Target] | str | Target,
    *,
    timeout: float = 60.0,
    interval: float = 0.25,
    max_interval: float = 5.0,
    options: Options | None = None,
    **kwargs: Unpack[RungOptionsKwargs],
) -> ASGIApp:
    """Wrap an ASGI app so that it starts only once every dependency is ready.

    At the server's lifespan startup, the gate waits (`wait_until_ready`: retries with
    backoff, each change of verdict logged once on the ``netprobe.wait`` logger) and then
    hands the startup on to ``app``. If a dependency is still not ready after ``timeout``
    seconds, the startup fails with the diagnosis of each as the message: the server prints
    it and exits, without a traceback, and ``app``'s own startup never runs. Requests are
    passed to ``app`` untouched.

    ```python
    app = netprobe.health.startup_gate(FastAPI(lifespan=...), ["postgresql://db:5432"])
    ```

    The server must run the ASGI lifespan protocol (uvicorn's default ``--lifespan auto``
    does; ``--lifespan off`` skips the gate).

    Args:
        app: the ASGI application to guard.
        dependencies: targets (``host:port``, URLs, DSNs), or a single one.
        timeout: how long to wait at startup, seconds.
        interval: the first delay between attempts, seconds.
        max_interval: the largest delay between attempts, seconds.
        options: diagnosis options; ``**kwargs`` override its fields.

    Raises:
        InvalidTarget, InvalidOption: when the gate is built, before any I/O.
    """
    if isinstance(dependencies, str | Target):
        dependencies = [dependencies]
    targets = [parse_target(t) for t in dependencies]
    opts = make_options(options, **kwargs)
    for t in targets:
        require_driver(t)
    limits = {"timeout": timeout, "interval": interval, "max_interval": max_interval}
    for name, value in limits.items():
        if not (value > 0 and math.isfinite(value)):
            raise InvalidOption(f"{name} must be a finite number greater than 0 (got {value!r})")
    if max_interval < interval:
        raise InvalidOption(f"max_interval ({max_interval!r}) must be at least interval")

    async def gate(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        startup = await receive()
        try:
            await wait_until_ready(
                targets,
                timeout=timeout,
                interval=interval,
                max_interval=max_interval,
                options=opts,
            )
        except DependencyUnavailable as exc:
            await send({"type": "lifespan.startup.failed", "message": f"refusing to start: {exc}"})
            return
        replayed = False

        async def receive_from_startup() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return startup
            return await receive()

        await app(scope, receive_from_startup, send)

    return gate
