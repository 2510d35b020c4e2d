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
observation model and the I/O loop, and imports no h2 (the classification reads the model).
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSAttribute
from pydantic import BaseModel, ConfigDict, Field

from ..protocols.grpc import HEALTH_CHECK_PATH, GrpcFailure, StatusSource
from ..steps import ApplicationStep, ErrorInfo
from ._context import ProbeContext
from ._lazy import import_off_loop
from .tls import alert_of, error_info

__all__ = ["GrpcResult", "grpc_application_step", "probe_grpc"]

_GOODBYE_S = 0.1  # at most this long to send our GOAWAY when done
_TRANSPORT_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


class GrpcResult(BaseModel):
    """What the gRPC health check observed, from the HTTP/2 preface to the decoded status."""

    model_config = ConfigDict(frozen=True)

    method: str = Field(HEALTH_CHECK_PATH, description="The gRPC method called (:path).")
    service: str = Field(
        "", description="The service whose health was asked ('' is the server as a whole)."
    )
    authority: str = Field(description="The :authority sent (host:port).")
    tls: bool = Field(False, description="Whether the exchange ran over TLS.")
    alpn: str | None = Field(None, description="The ALPN protocol the TLS handshake agreed on.")
    healthy: bool = Field(False, description="True only for grpc-status OK and SERVING.")
    failure: GrpcFailure | None = None
    reason: str = Field("", description="What happened, in one line.")
    # The HTTP/2 connection.
    http2: bool = Field(False, description="The peer sent an HTTP/2 SETTINGS frame first.")
    settings_acked: bool = Field(False, description="The peer acknowledged our SETTINGS.")
    server_settings: dict[str, int] = Field(
        default_factory=dict, description="The SETTINGS the server sent, by name."
    )
    goaway: str | None = Field(None, description="A GOAWAY's error code name, if one came.")
    goaway_debug: str | None = Field(None, description="A GOAWAY's debug data, as text.")
    rst_stream: str | None = Field(None, description="The RST_STREAM error code name, if any.")
    # The response.
    http_version: str | None = Field(
        None, description="HTTP/2, or the version of an HTTP/1.x answer to the preface."
    )
    http_status: int | None = Field(
        None, description="The response's :status (or an HTTP/1.x answer's status code)."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Response headers of interest (lower-case names)."
    )
    trailers: dict[str, str] = Field(
        default_factory=dict, description="grpc-* trailers (or Trailers-Only headers), raw."
    )
    trailers_only: bool = Field(False, description="Status in the headers (Trailers-Only).")
    grpc_status: int | None = Field(None, description="The call's status code.")
    grpc_status_name: str | None = Field(None, description="Its canonical name, e.g. NOT_FOUND.")
    status_from: StatusSource | None = Field(
        None, description="Where the status came from; anything but trailers is synthesised."
    )
    grpc_message: str | None = Field(None, description="grpc-message, percent-decoded.")
    health_status: int | None = Field(None, description="HealthCheckResponse.status, a number.")
    health_status_name: str | None = Field(None, description="SERVING, NOT_SERVING, ...")
    body_bytes: int = Field(0, description="Response DATA bytes received.")
    body_preview: str | None = Field(None, description="Start of a body that is not gRPC.")
    protocol_error: str | None = Field(None, description="What broke HTTP/2 or gRPC, in words.")
    # What came back when it was not HTTP/2.
    peer_sent: str | None = Field(None, description="What came back instead, in words.")
    peer_bytes: str | None = Field(None, description="First bytes received, hex.")
    bytes_received: int = 0
    error: ErrorInfo | None = Field(None, description="The socket or TLS error, if one ended it.")
    tls_alert: str | None = Field(None, description="A post-handshake TLS alert, normalised.")
    # Timings (ms), from the moment the preface and the request were sent.
    timeout_s: float | None = Field(None, description="The read timeout the exchange had.")
    first_byte_ms: float | None = None
    response_ms: float | None = Field(None, description="To the response headers.")
    duration_ms: float | None = None


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
        A :class:`GrpcResult`: ``healthy`` only for grpc-status OK and SERVING.

    Outer cancellation propagates.
    """
    start = time.perf_counter()
    deadline = start + read_timeout
    alpn = stream.extra(TLSAttribute.alpn_protocol, None)
    tls = stream.extra(TLSAttribute.ssl_object, None) is not None
    # h2 and hpack (~25 ms of imports) only for gRPC targets, off the event loop (_lazy.py).
    with anyio.move_on_after(read_timeout):
        await import_off_loop("netprobe.protocols.grpc_http2")
    if time.perf_counter() >= deadline:
        return GrpcResult(
            service=service,
            authority=authority,
            tls=tls,
            alpn=alpn,
            failure="timeout",
            reason="the read timeout ended while the HTTP/2 library was still loading",
            timeout_s=round(read_timeout, 3),
            duration_ms=round((time.perf_counter() - start) * 1000.0, 3),
        )
    from ..protocols.grpc_http2 import HealthCall, progress, timeout_reason

    exchange = HealthCall(authority=authority, service=service, tls=tls, timeout_s=read_timeout)
    sent_at: float | None = None
    first_at: float | None = None
    response_at: float | None = None
    extra: dict[str, object] = {"alpn": alpn, "timeout_s": round(read_timeout, 3)}
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
        extra |= {"failure": "timeout", "reason": timeout_reason(exchange, read_timeout)}
    except ssl.SSLError as exc:
        alert = alert_of(exc.reason) or exc.reason or "unknown"
        extra |= {
            "failure": "tls_alert",
            "tls_alert": alert,
            "error": error_info(exc),
            "reason": f"the server sent a TLS alert after the handshake ({alert})",
        }
    except _TRANSPORT_ERRORS as exc:
        cause = exc if isinstance(exc, OSError) else (exc.__cause__ or exc)
        if isinstance(cause, ssl.SSLError):
            alert = alert_of(cause.reason) or cause.reason or "unknown"
            extra |= {"failure": "tls_alert", "tls_alert": alert, "error": error_info(cause)}
            extra["reason"] = f"the server sent a TLS alert after the handshake ({alert})"
        else:
            how = "reset" if isinstance(cause, ConnectionResetError) else "closed"
            extra |= {
                "failure": "closed",
                "error": error_info(cause),
                "reason": f"the server {how} the connection {progress(exchange)}",
            }
    else:
        if not exchange.done:
            extra |= {
                "failure": "closed",
                "reason": f"the server closed the connection {progress(exchange)}",
            }
    if exchange.done and exchange.http2 and not exchange.not_http2:
        await _send_quietly(stream, exchange.goodbye())

    def since_sent(at: float | None) -> float | None:
        if at is None or sent_at is None:
            return None
        return round((at - sent_at) * 1000.0, 3)

    extra |= {
        "first_byte_ms": since_sent(first_at),
        "response_ms": since_sent(response_at),
        "duration_ms": round((time.perf_counter() - start) * 1000.0, 3),
    }
    if extra.get("failure") == "closed" and exchange.not_http2:
        extra.pop("failure")  # the bytes said more than the close did
        extra.pop("reason", None)
    return GrpcResult.model_validate(exchange.observations(**extra))


async def _send_quietly(stream: ByteStream, data: bytes) -> None:
    if not data:
        return
    with anyio.move_on_after(_GOODBYE_S), contextlib.suppress(*_TRANSPORT_ERRORS, ssl.SSLError):
        await stream.send(data)


async def grpc_application_step(ctx: ProbeContext, stream: ByteStream) -> ApplicationStep:
    """The ladder's application rung for ``grpc://`` and ``grpcs://`` targets.

    Runs :func:`probe_grpc` with the target's service and the read timeout cut to the total
    deadline; the result travels in ``details["grpc"]`` until the step models carry a
    ``GrpcResult`` of their own. Never raises for a fault.
    """
    target = ctx.target
    result = await probe_grpc(
        stream,
        authority=target.netloc,
        service=target.path,
        read_timeout=ctx.budget(ctx.options.read_timeout),
        on_first_byte=lambda: ctx.mark("first_byte"),
    )
    return ApplicationStep(
        status="ok" if result.healthy else "failed",
        protocol="grpc",
        reason=result.reason,
        error=result.error,
        details={"grpc": result.model_dump(mode="json")},
        duration_ms=result.duration_ms,
    )
