"""The MTU black hole test: repeat a stalled exchange once, on a new connection with a low MSS.

A TLS handshake (a large certificate chain) or an HTTP exchange (a large response, or a
large request) that stalls after ESTABLISHED, while the SYNs got through, is the signature
of a path MTU black hole: packets larger than the smallest link's MTU are dropped, and the
ICMP "fragmentation needed" / "packet too big" that should make the sender shrink them is
filtered. ``TCP_MAXSEG`` set before ``connect()`` lowers the MSS this client advertises (so
the server sends smaller segments) and the MSS it sends with: if the same exchange now
completes, the path has a black hole, in either direction.

Made only after such a stall, once, and kept short: the whole retry (connect and exchange)
gets a third of the read timeout, at least ``_MIN_RETRY_S`` (1 s by default), cut to the
total deadline. Behind a black hole the exchange completes as fast as the server answers,
so a hung server (the usual cause of a timeout) costs one second more, not a second read
timeout; a server slower than that behind a black hole keeps its timeout verdict.
Observations only; ``classify/path.py`` decides.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Literal

import anyio
from anyio.abc import ByteStream, SocketAttribute

from ..protocols.http_head import END_OF_HEAD
from ..protocols.tcp_info import parse_tcp_info
from ..steps import PmtuProbe, TcpInfoFacts
from ._context import ProbeContext
from ._io import STREAM_ERRORS, TlsStream, elapsed_ms, stream_error, stream_from_socket
from .ssl_contexts import fact_context
from .tcp import connect_address

__all__ = ["PMTU_RETRY_MSS", "small_mss_retry", "tcp_info_facts"]

#: The MSS of the retry: IPv6's minimum MTU (1280) less 40 bytes of IPv6 header, 20 of
#: TCP and 12 of timestamps, rounded down: fits every link an IPv6 path may have.
PMTU_RETRY_MSS = 1200
_HEAD_CAP = 16 * 1024
#: Below this much of the total deadline the retry does not start: the verdict comes first.
_MIN_LEFT_S = 0.1
#: The least time the whole retry gets (connect and exchange).
_MIN_RETRY_S = 1.0


def tcp_info_facts(sock: socket.socket | None) -> TcpInfoFacts | None:
    """TCP_INFO of a connected socket, as step data (None when unreadable)."""
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return None
    info = parse_tcp_info(raw)
    if info is None:
        return None
    return TcpInfoFacts(
        pmtu=info.pmtu,
        snd_mss=info.snd_mss,
        rcv_mss=info.rcv_mss,
        total_retrans=info.total_retrans,
    )


def stream_socket(stream: ByteStream | None) -> socket.socket | None:
    """The socket under an anyio stream (TLS wrappers pass the attribute on)."""
    if stream is None:
        return None
    sock: socket.socket | None = stream.extra(SocketAttribute.raw_socket, None)
    return sock


def _request(ctx: ProbeContext) -> bytes:
    """The diagnosis's own request, as far as its size goes: method, path, the user's headers."""
    t = ctx.target
    host = f"[{t.host}]" if ":" in t.host else t.host
    extra = "".join(f"{k}: {v}\r\n" for k, v in ctx.options.headers.items())
    return (
        f"{ctx.options.method} {t.path or '/'} HTTP/1.1\r\nHost: {host}:{t.port}\r\n"
        f"User-Agent: netprobe\r\n{extra}Connection: close\r\n\r\n"
    ).encode()


async def _exchange(
    ctx: ProbeContext, address: str, kind: str, mss: int | None, end: float
) -> tuple[str, TcpInfoFacts | None, float]:
    """One connection (with ``TCP_MAXSEG = mss`` when given) and the exchange on it, until
    ``end``: its outcome, its TCP_INFO and its duration (ms)."""
    start = time.perf_counter()
    _, sock = await connect_address(address, ctx.target.port, max(0.0, end - start), mss=mss)
    if sock is None:
        return "connect_failed", None, elapsed_ms(start)
    stream: ByteStream = await stream_from_socket(sock)
    outcome = "error"
    try:
        with anyio.fail_after(max(0.0, end - time.perf_counter())):
            if ctx.target.tls:
                name = None if ctx.target.is_ip else ctx.target.host
                tls = TlsStream(stream, fact_context(None), name)
                await tls.handshake()
                stream = tls
            if kind == "http_response":
                await stream.send(_request(ctx))
                head = b""
                while END_OF_HEAD not in head and len(head) < _HEAD_CAP:
                    head += await stream.receive(4096)
            outcome = "completed"
    except STREAM_ERRORS as exc:
        failed = stream_error(exc)
        outcome = "timeout" if failed.kind == "timeout" else "closed"
    except ValueError:
        outcome = "error"
    finally:
        info = tcp_info_facts(sock)
        with anyio.CancelScope(shield=True), contextlib.suppress(*STREAM_ERRORS):
            await stream.aclose()
    return outcome, info, elapsed_ms(start)


async def small_mss_retry(
    ctx: ProbeContext, address: str, exchange: str, stalled: ByteStream | None
) -> PmtuProbe | None:
    """Repeat ``exchange`` ("tls_handshake" or "http_response") on two new connections at
    once: one with ``TCP_MAXSEG = PMTU_RETRY_MSS``, one at the normal MSS (the control).
    A black hole is the small one completing while the control stalls again; a server that
    hung once and answers now completes both. None when no time is left. Never raises for
    a network fault; outer cancellation propagates."""
    if ctx.remaining() < _MIN_LEFT_S:
        return None
    kind: Literal["tls_handshake", "http_response"] = (
        "tls_handshake" if exchange == "tls_handshake" else "http_response"
    )
    stalled_info = tcp_info_facts(stream_socket(stalled))
    end = time.perf_counter() + ctx.budget(max(_MIN_RETRY_S, ctx.options.read_timeout / 3))
    results: dict[str, tuple[str, TcpInfoFacts | None, float]] = {}

    async def run(name: str, mss: int | None) -> None:
        results[name] = await _exchange(ctx, address, kind, mss, end)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "small", PMTU_RETRY_MSS)
        tg.start_soon(run, "control", None)
    outcome, info, ms = results["small"]
    control = results["control"][0]
    return PmtuProbe(
        mss=PMTU_RETRY_MSS,
        exchange=kind,
        outcome=outcome,
        duration_ms=ms,
        retry=info,
        stalled=stalled_info,
        control=control,
    )
