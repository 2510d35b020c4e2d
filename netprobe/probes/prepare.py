"""netprobe's own preparation, done before the timings' clock starts (issue 11).

A report's timings are the network's. In a fresh process, the first diagnosis of a kind of
target pays first imports (httpx for HTTP, cryptography for certificates, h2 for gRPC, h11
behind a proxy, a database driver for a login) and the TLS context (the system trust store:
10-30 ms). Inside a phase's clock they read as a slow network: a loopback ``first_byte`` of
40 ms, a 25 ms TLS handshake, for servers that answer in under a millisecond.

:func:`prepare` does that work for the target first; ``diagnose()`` then starts the clock
(``ProbeContext.start_clock``) and reports the preparation as its own figure,
``timings_ms.setup``. Once a process has prepared a kind of target, the next preparation
finds everything done and costs microseconds. The total deadline counts the preparation:
the imports run in a worker thread (``_lazy.py``) and the deadline can abandon them.

Nothing here is a verdict: a context that cannot be built (an unreadable CA file) or a
driver that is missing is left for the rung that needs it to report, as before.
"""

from __future__ import annotations

import contextlib
import ssl

import anyio.to_thread

from ..protocols.postgres import ssl_policy
from ._context import ProbeContext
from ._lazy import import_off_loop

__all__ = ["prepare"]

#: The first imports each application protocol's rung makes.
_MODULES: dict[str, tuple[str, ...]] = {
    "http": ("netprobe.probes.http",),
    "grpc": ("netprobe.protocols.grpc_http2",),
}
#: A login's driver, imported only when credentials ask for one (and when installed).
_DRIVERS: dict[str, str] = {"postgresql": "asyncpg", "mysql": "asyncmy", "redis": "redis.asyncio"}
#: TLS contexts already built in this process (the context itself is cached in ssl_contexts).
_BUILT: set[tuple[object, ...]] = set()


async def prepare(ctx: ProbeContext) -> None:
    """Import what ``ctx.target``'s rungs will import, and build its TLS context."""
    target = ctx.target
    modules = list(_MODULES.get(target.protocol, ()))
    tls = _tls_inputs(ctx)
    if tls is not None:
        modules.append("netprobe.protocols.x509")  # the presented chain's description
    if ctx.route is not None:
        modules.append("h11")  # the proxy's CONNECT or request
    if modules:
        await import_off_loop(*modules)
    driver = _DRIVERS.get(target.protocol)
    if driver is not None and (target.username is not None or target.password is not None):
        with contextlib.suppress(ImportError):  # the login says so (probes/db_login.py)
            await import_off_loop(driver)
    if tls is not None and tls not in _BUILT:
        await anyio.to_thread.run_sync(_build, ctx, tls, abandon_on_cancel=True)


def _tls_inputs(ctx: ProbeContext) -> tuple[object, ...] | None:
    """The key of the TLS context the target's handshake will use; None without TLS."""
    target = ctx.target
    options = ctx.options
    if options.ssl_context is not None:
        return None  # the caller's own context: nothing to build
    if target.tls:
        alpn = {"http": ("http/1.1",), "grpc": ("h2", "http/1.1")}.get(target.protocol, ())
        return (alpn, None, options.verify, options.ca_file, options.client_cert)
    if target.protocol == "postgresql":
        policy = ssl_policy(target.params)
        if policy.request:
            return ((), policy, options.verify, options.ca_file, options.client_cert)
    return None


def _build(ctx: ProbeContext, key: tuple[object, ...]) -> None:
    from .ssl_contexts import client_context

    alpn, policy, *_ = key
    with contextlib.suppress(OSError, ssl.SSLError):  # the TLS rung reports it
        client_context(ctx.options, alpn=alpn, sslmode=policy)  # type: ignore[arg-type]
        _BUILT.add(key)
