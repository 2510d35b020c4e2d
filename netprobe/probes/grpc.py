"""The gRPC health check over the diagnosis's own HTTP/2 connection, driven with ``h2``.

``grpc.health.v1.Health/Check`` is sent over the stream the ladder established (TCP, or TLS
with ALPN ``h2`` for ``grpcs://``): no second connection, no grpcio. grpcio would hide the
lower layers (its channel reconnects, and reports a refused port, a TLS failure and a dead
proxy alike as UNAVAILABLE); here each failure lands in its layer, and what the peer sent is
kept when it is not HTTP/2 or not gRPC.

The whole exchange has one read timeout (a peer dripping a byte at a time cannot extend it),
cut to the total deadline by the caller. Never raises for what the peer does; outer
cancellation propagates. The protocol (h2 and the gRPC parsers) is the sans-IO
``netprobe/protocols/grpc_http2.py``, imported at the first call; this module is only the
I/O loop, and imports no h2. What it observed is a :class:`~netprobe.steps.GrpcResult` (in
``ApplicationStep.grpc``), which ``classify/grpc.py`` reads.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSAttribute

from ..steps import ApplicationStep, GrpcResult
from ._context import ProbeContext
from ._io import STREAM_ERRORS, elapsed_ms, stream_error
from ._lazy import import_off_loop
from .tls import alert_of

if TYPE_CHECKING:
    from ..protocols.grpc_http2 import HealthCall

__all__ = ["GrpcExchange", "probe_grpc"]

_GOODBYE_S = 0.1  # at most this long to send our GOAWAY when done


async def probe_grpc(
    stream: ByteStream,
    *,
    authority: str,
    service: str = "",
    read_timeout: float = 3.0,
    on_first_byte: Callable[[], object] | None = None,
) -> GrpcResult:
    """Call ``grpc.health.v1.Health/Check`` over an established stream; never raises for a fault.

    Args:
        stream: a connected ``anyio`` byte stream: TCP for cleartext (prior knowledge), or
            TLS, preferably with ALPN ``h2`` negotiated (the result records what was agreed).
            The caller owns it and closes it.
        authority: the ``:authority`` to send, ``host:port``.
        service: the service whose health is asked; empty for the server as a whole.
        read_timeout: seconds for the whole exchange (the caller cuts it to its deadline);
            also sent as ``grpc-timeout``.
        on_first_byte: called once, when the first byte of the answer arrives.

    Returns:
        A :class:`~netprobe.steps.GrpcResult`: ``healthy`` only for grpc-status OK and
        SERVING.

    Outer cancellation propagates.
    """
    call = _Call(stream, authority=authority, service=service)
    result = await call.check(read_timeout, on_first_byte)
    await call.goodbye()
    return result


class _Call:
    """The HTTP/2 connection of one stream, and the health checks made over it."""

    def __init__(self, stream: ByteStream, *, authority: str, service: str) -> None:
        self.stream = stream
        self.authority = authority
        self.service = service
        self.alpn: str | None = stream.extra(TLSAttribute.alpn_protocol, None)
        self.tls = stream.extra(TLSAttribute.ssl_object, None) is not None
        self.exchange: HealthCall | None = None

    async def check(
        self, read_timeout: float, on_first_byte: Callable[[], object] | None = None
    ) -> GrpcResult:
        """One health check: the first on a new connection (the preface with it), or
        another on a new stream of the same connection. Never raises for a fault."""
        start = time.perf_counter()
        deadline = start + read_timeout
        if self.exchange is None:
            # h2 and hpack (~25 ms of imports) only for gRPC targets, off the event loop.
            with anyio.move_on_after(read_timeout):
                await import_off_loop("netprobe.protocols.grpc_http2")
            if time.perf_counter() >= deadline:
                return GrpcResult(
                    service=self.service,
                    authority=self.authority,
                    tls=self.tls,
                    alpn=self.alpn,
                    failure="timeout",
                    reason="the read timeout ended while the HTTP/2 library was still loading",
                    timeout_s=round(read_timeout, 3),
                    duration_ms=elapsed_ms(start),
                )
            from ..protocols.grpc_http2 import HealthCall

            self.exchange = HealthCall(
                authority=self.authority, service=self.service, tls=self.tls, timeout_s=read_timeout
            )
        elif not self.exchange.again(timeout_s=read_timeout):
            return GrpcResult(
                service=self.service,
                authority=self.authority,
                tls=self.tls,
                alpn=self.alpn,
                failure="closed",
                reason="the HTTP/2 connection was ended before this check (GOAWAY or an error)",
                http2=self.exchange.http2,
                timeout_s=round(read_timeout, 3),
                duration_ms=elapsed_ms(start),
            )
        return await self._exchange(self.exchange, start, deadline, read_timeout, on_first_byte)

    async def _exchange(
        self,
        exchange: HealthCall,
        start: float,
        deadline: float,
        read_timeout: float,
        on_first_byte: Callable[[], object] | None,
    ) -> GrpcResult:
        from ..protocols.grpc_http2 import progress, timeout_reason

        stream = self.stream
        sent_at: float | None = None
        first_at: float | None = None
        response_at: float | None = None
        extra: dict[str, Any] = {"alpn": self.alpn, "timeout_s": round(read_timeout, 3)}
        try:
            with anyio.fail_after(max(0.0, deadline - time.perf_counter())):
                await stream.send(exchange.outgoing())
                sent_at = time.perf_counter()
                while not exchange.done:
                    try:
                        data = await stream.receive(65536)
                    except anyio.EndOfStream:
                        break
                    if first_at is None:
                        first_at = time.perf_counter()
                        if on_first_byte is not None:
                            on_first_byte()
                    exchange.receive(data)
                    if response_at is None and exchange.response is not None:
                        response_at = time.perf_counter()
                    pending = exchange.outgoing()
                    if pending and not exchange.done:
                        await stream.send(pending)
        except TimeoutError:
            # anyio.fail_after: our own read timeout (a stream's own timeout never fires
            # here: no stream of ours has one).
            extra |= {"failure": "timeout", "reason": timeout_reason(exchange, read_timeout)}
        except STREAM_ERRORS as exc:
            broke = stream_error(exc)  # the I/O seam says what ended the exchange
            if broke.kind in ("tls_alert", "tls_verify"):
                alert = alert_of(broke.tls_reason) or broke.tls_reason or "unknown"
                extra |= {
                    "failure": "tls_alert",
                    "tls_alert": alert,
                    "error": broke.error,
                    "reason": f"the server sent a TLS alert after the handshake ({alert})",
                }
            else:
                how = "reset" if broke.reset else "closed"
                extra |= {
                    "failure": "closed",
                    "error": broke.error,
                    "reason": f"the server {how} the connection {progress(exchange)}",
                }
        else:
            if not exchange.done:
                extra |= {
                    "failure": "closed",
                    "reason": f"the server closed the connection {progress(exchange)}",
                }

        def since_sent(at: float | None) -> float | None:
            if at is None or sent_at is None:
                return None
            return round((at - sent_at) * 1000.0, 3)

        extra |= {
            "first_byte_ms": since_sent(first_at),
            "response_ms": since_sent(response_at),
            "duration_ms": elapsed_ms(start),
        }
        if extra.get("failure") == "closed" and exchange.not_http2:
            extra.pop("failure")  # the bytes said more than the close did
            extra.pop("reason", None)
        return GrpcResult.model_validate(exchange.observations(**extra))

    async def goodbye(self) -> None:
        """A GOAWAY (NO_ERROR) when the connection still carries HTTP/2; bounded, shielded,
        never raises for the peer."""
        exchange = self.exchange
        if exchange is None or not exchange.reusable:
            return
        data = exchange.goodbye()
        if not data:
            return
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(_GOODBYE_S),
            contextlib.suppress(*STREAM_ERRORS),
        ):
            await self.stream.send(data)


class GrpcExchange:
    """The application rung of ``grpc://`` and ``grpcs://`` targets: the health check as the
    connection's opening exchange (``application.py``), another check on a new stream of the
    same HTTP/2 connection as its validation (a pool's held connection), a GOAWAY as its
    goodbye. The read timeout of each check is cut to the total deadline."""

    def __init__(self, ctx: ProbeContext, stream: ByteStream) -> None:
        self._ctx = ctx
        target = ctx.target
        self._call = _Call(stream, authority=target.netloc, service=target.path)

    async def _step(self, first: bool) -> ApplicationStep:
        ctx = self._ctx
        result = await self._call.check(
            ctx.budget(ctx.options.read_timeout),
            (lambda: ctx.mark("first_byte")) if first else None,
        )
        return ApplicationStep(
            status="ok" if result.healthy else "failed",
            protocol="grpc",
            reason=result.reason,
            error=result.error,
            grpc=result,
            duration_ms=result.duration_ms,
        )

    async def open(self) -> ApplicationStep:
        return await self._step(first=True)

    async def validate(self) -> ApplicationStep | None:
        return await self._step(first=False)

    async def close(self) -> ApplicationStep | None:
        await self._call.goodbye()
        return None
