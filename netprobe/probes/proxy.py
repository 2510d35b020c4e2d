"""Through a forward HTTP proxy: the ``CONNECT`` tunnel of an ``https://`` target, and the step
that records the way of an ``http://`` one.

``CONNECT host:port HTTP/1.1`` (RFC 9110 §9.3.6), with ``Proxy-Authorization`` (Basic, RFC
7617) when the proxy URL carries credentials, driven with h11 (the sans-IO HTTP/1.1 state
machine httpcore uses): a 2xx answer turns the connection into a tunnel (h11's
SWITCHED_PROTOCOL state), over which the TLS rung then talks to the target itself; any other
answer is the proxy's refusal, kept with its headers and the start of its page (Squid's
``X-Squid-Error`` says why). One read timeout bounds the exchange; never raises for what the
proxy does; outer cancellation propagates.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
from anyio.abc import ByteStream

from ..protocols.sniff import describe_bytes
from ..steps import HEADERS_OF_INTEREST, ErrorInfo, ProxyFailure, ProxyStep
from ._context import ProbeContext
from ._io import STREAM_ERRORS, elapsed_ms, stream_error
from ._lazy import import_off_loop

if TYPE_CHECKING:
    import h11

__all__ = ["connect_tunnel", "forward_step", "unreached_step"]

_BODY_CAP = 4096  # bytes of the proxy's error page read (X-Squid-Error says more)
_PREVIEW = 200


def forward_step(ctx: ProbeContext) -> ProxyStep | None:
    """The step of an ``http://`` target sent through a proxy: the request goes to the proxy
    with its absolute URL (RFC 9112 §3.2.2); the answer is the application step's."""
    route = ctx.route
    if route is None or ctx.target.tls:
        return None
    return ProxyStep(
        status="ok",
        reason=f"the request goes through the proxy {route.url} ({route.source})",
        url=route.url,
        source=route.source,
        mode="forward",
        credentials_sent=route.username is not None,
        request=f"{ctx.options.method} {ctx.target.url} HTTP/1.1",
    )


def unreached_step(ctx: ProbeContext) -> ProxyStep | None:
    """The proxy step of a target whose proxy was never reached (DNS or TCP to it failed): the
    report still says the way went through it."""
    route = ctx.route
    if route is None:
        return None
    return ProxyStep(
        status="skipped",
        reason="not reached: the way to the proxy failed first",
        url=route.url,
        source=route.source,
        mode="connect" if ctx.target.tls else "forward",
        credentials_sent=route.username is not None,
    )


async def connect_tunnel(ctx: ProbeContext, stream: ByteStream) -> ProxyStep:
    """``CONNECT`` the target through the proxy on ``stream``; ``status="ok"`` when the
    proxy opened the tunnel (the stream then carries the target's bytes)."""
    route = ctx.route
    assert route is not None, "connect_tunnel needs a proxy route"
    await import_off_loop("h11")  # only targets behind a proxy need it (see _lazy.py)
    import h11

    target = ctx.target
    authority = target.netloc
    start = time.perf_counter()
    conn = h11.Connection(our_role=h11.CLIENT)
    headers = [("Host", authority), ("User-Agent", "netprobe")]
    auth = route.authorization()
    if auth is not None:
        headers.append(("Proxy-Authorization", auth))
    request = h11.Request(method="CONNECT", target=authority, headers=headers)
    base = {
        "url": route.url,
        "source": route.source,
        "mode": "connect",
        "credentials_sent": auth is not None,
        "request": f"CONNECT {authority} HTTP/1.1",
    }
    first = bytearray()
    response: h11.Response | None = None
    body = bytearray()
    failure: ProxyFailure | None = None
    error: ErrorInfo | None = None
    try:
        with anyio.fail_after(ctx.budget(ctx.options.read_timeout)):
            await stream.send(conn.send(request) + conn.send(h11.EndOfMessage()))
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        data = await stream.receive(65536)
                    except anyio.EndOfStream:
                        data = b""
                    if len(first) < 64:
                        first += data[: 64 - len(first)]
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Response):
                    response = event
                    if 200 <= event.status_code < 300:
                        break  # the tunnel is open: h11 is in SWITCHED_PROTOCOL
                elif isinstance(event, h11.Data):
                    if len(body) < _BODY_CAP:
                        body += event.data[: _BODY_CAP - len(body)]
                    else:
                        break
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
    except TimeoutError:
        failure = "timeout"
    except h11.RemoteProtocolError as exc:
        failure = "closed" if not first else "protocol"
        error = ErrorInfo(type="RemoteProtocolError", message=str(exc))
    except STREAM_ERRORS as exc:
        broke = stream_error(exc)
        failure, error = "closed", broke.error
    duration = elapsed_ms(start)
    if response is None:
        failure = failure or "closed"
        reason = {
            "timeout": "the proxy did not answer the CONNECT within the read timeout",
            "closed": "the proxy closed the connection without answering the CONNECT",
            "protocol": f"the proxy's answer is not HTTP: {describe_bytes(bytes(first))}",
        }.get(failure, "the CONNECT failed")
        return ProxyStep(
            status="failed",
            reason=reason,
            failure=failure,
            error=error,
            peer_sent=describe_bytes(bytes(first)) if failure == "protocol" else None,
            duration_ms=duration,
            **base,
        )
    status = response.status_code
    phrase = response.reason.decode("latin-1") or None
    kept = {
        k.decode("latin-1").lower(): v.decode("latin-1")
        for k, v in response.headers
        if k.decode("latin-1").lower() in HEADERS_OF_INTEREST
    }
    ok = 200 <= status < 300
    if ok and conn.trailing_data[0]:
        # Bytes after a 2xx belong to the target, which has not been spoken to yet.
        return ProxyStep(
            status="failed",
            reason="the proxy sent bytes after opening the tunnel",
            failure="protocol",
            http_status=status,
            http_reason=phrase,
            headers=kept,
            peer_sent=describe_bytes(bytes(conn.trailing_data[0][:64])),
            duration_ms=duration,
            **base,
        )
    preview = bytes(body[:_PREVIEW]).decode("utf-8", "replace") or None
    return ProxyStep(
        status="ok" if ok else "failed",
        reason=f"CONNECT {authority} → {status} {phrase or ''}".rstrip(),
        failure=None if ok else "refused",
        http_status=status,
        http_reason=phrase,
        headers=kept,
        body_preview=None if ok else preview,
        duration_ms=duration,
        **base,
    )
