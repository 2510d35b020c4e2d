"""Opening the ICMP sockets and sharing them: one per address family and event loop.

* An unprivileged ICMP *datagram* socket first (Linux ``SOCK_DGRAM, IPPROTO_ICMP``, allowed
  by ``net.ipv4.ping_group_range``; the kernel sets the echo identifier to the socket's
  "port" and delivers to it only its own replies), then a raw socket when privileged
  (``CAP_NET_RAW``); neither allowed: :class:`IcmpUnavailable`, with the fix.
* Never leaks a socket: a shared socket is reference-counted and released by its last user
  on every path (send error, timeout, cancellation). On asyncio it is then kept for the next
  diagnosis (opening, tuning, registering and closing it cost as much as the echo itself:
  benchmarks/RESULTS-overhead.md) and closed after ``KEEP_IDLE_S`` unused, or when the
  event loop ends (``asyncio.run()`` / ``anyio.run()`` returning), whichever comes first;
  :func:`close_idle_sockets` closes it at once. Elsewhere (trio) the last user closes it.

The sockets are owned by :data:`REGISTRY`, the one instance of :class:`SocketRegistry` of the
process: every engine of every event loop of the process gets its socket from it.

How "when the event loop ends" is known without private APIs: a kept socket parks an async
generator at its first ``yield``; event loops finalize the async generators still alive when
they shut down (PEP 525's finalizer hooks; asyncio's ``loop.shutdown_asyncgens()``, which
``asyncio.run()`` and ``anyio.run()`` call), and the generator's ``finally`` closes the
socket. The idle timer is an event loop timer (``call_later``) whose lifetime is the kept
socket's.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from dataclasses import dataclass

import anyio.lowlevel

from ..protocols.icmp import IP_RECVERR, IPV6_RECVERR
from ._io import on_asyncio
from .icmp_engines import AiopingEngine, IcmpEngine, IcmpUnavailable, SharedSocket

__all__ = [
    "KEEP_IDLE_S",
    "REGISTRY",
    "SocketRegistry",
    "close_idle_sockets",
    "open_engine",
]

#: On asyncio, a shared socket nobody uses is kept this long for the next diagnosis.
KEEP_IDLE_S = 10.0

_RCVBUF = 4 * 1024 * 1024
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1


def open_socket(family: socket.AddressFamily) -> SharedSocket:
    """A new ICMP socket of ``family``: datagram if allowed, else raw; IcmpUnavailable."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    errors: list[str] = []
    for kind, type_ in (("dgram", socket.SOCK_DGRAM), ("raw", socket.SOCK_RAW)):
        try:
            sock = socket.socket(family, type_, proto)
        except OSError as exc:
            errors.append(f"{kind}: {exc.strerror or exc}")
            continue
        try:
            sock.setblocking(False)
            _tune(sock, family, kind)
            if type_ == socket.SOCK_DGRAM:
                if family == socket.AF_INET:
                    sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
                else:
                    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        except OSError:
            sock.close()
            raise
        return SharedSocket(family=family, kind=kind, sock=sock)  # type: ignore[arg-type]
    fam = "IPv4" if family == socket.AF_INET else "IPv6"
    raise IcmpUnavailable(
        f"no ICMP socket is allowed for {fam} ({'; '.join(errors)}). To allow ping without "
        "root: sysctl -w net.ipv4.ping_group_range='0 2147483647' (covers IPv6 too); or give "
        "the process CAP_NET_RAW"
    )


def _tune(sock: socket.socket, family: socket.AddressFamily, kind: str) -> None:
    """A larger receive buffer for bursts of replies; raw sockets see only what they need."""
    for opt in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, _RCVBUF)
            break
        except OSError:
            continue
    if kind != "raw":
        return
    # A raw socket receives every ICMP packet of the host (our own echo requests to
    # loopback too): let through only replies and errors (raw(7) ICMP_FILTER, RFC 3542).
    with contextlib.suppress(OSError):
        if family == socket.AF_INET:
            keep = (0, 3, 11)
            sock.setsockopt(
                SOL_RAW, ICMP_FILTER, struct.pack("=I", ~sum(1 << t for t in keep) & 0xFFFFFFFF)
            )
        else:
            keep6 = (1, 3, 129)
            words = [0xFFFFFFFF] * 8
            for t in keep6:
                words[t >> 5] &= ~(1 << (t & 31)) & 0xFFFFFFFF
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *words))


Key = tuple[object, socket.AddressFamily]


@dataclass
class _Kept:
    """A shared socket in the registry, with what keeping it after its last user needs."""

    shared: SharedSocket
    #: Kept open without users (asyncio only): since when, the timer that closes it, and
    #: whether the loop is ending (then the last user closes it).
    keepable: bool = False
    idle_since: float = 0.0
    idle_timer: asyncio.TimerHandle | None = None
    ending: bool = False
    watcher: AsyncGenerator[None, None] | None = None


class SocketRegistry:
    """The shared ICMP sockets of the process, one per (event loop, address family)."""

    def __init__(self) -> None:
        self._kept: dict[Key, _Kept] = {}

    def sockets(self) -> list[SharedSocket]:
        """The sockets open now (in use or kept for the next diagnosis)."""
        return [k.shared for k in self._kept.values()]

    def acquire(self, family: socket.AddressFamily) -> tuple[Key, SharedSocket]:
        """This loop's shared socket of ``family`` (opened on first use); pair with
        :meth:`release`. Raises IcmpUnavailable."""
        key = (anyio.lowlevel.current_token(), family)
        kept = self._kept.get(key)
        if kept is None:
            shared = open_socket(family)
            shared.watch()
            kept = self._kept[key] = _Kept(shared)
            if shared.loop is not None:
                self._close_when_the_loop_ends(key, kept)
        kept.shared.users += 1
        return key, kept.shared

    def release(self, key: Key, shared: SharedSocket) -> None:
        """One user less; the last one closes the socket, or keeps it (asyncio) for the next."""
        shared.users -= 1
        if shared.users > 0:
            return
        kept = self._kept.get(key)
        if kept is None or kept.shared is not shared:
            shared.close()  # discarded while in use: nobody else will close it
            return
        loop = shared.loop
        if kept.keepable and not kept.ending and KEEP_IDLE_S > 0 and loop is not None:
            kept.idle_since = time.monotonic()
            if kept.idle_timer is None:
                kept.idle_timer = loop.call_later(KEEP_IDLE_S, self._idle_check, key, kept)
            return
        self._discard(key, kept)

    def close_idle(self) -> int:
        """Close the sockets no echo is using; how many were closed."""
        idle = [(key, kept) for key, kept in self._kept.items() if kept.shared.users == 0]
        for key, kept in idle:
            self._discard(key, kept)
        return len(idle)

    def _discard(self, key: Key, kept: _Kept) -> None:
        if self._kept.get(key) is kept:
            del self._kept[key]
        if kept.idle_timer is not None:
            kept.idle_timer.cancel()
            kept.idle_timer = None
        kept.shared.close()
        watcher, kept.watcher = kept.watcher, None
        if watcher is not None:
            _run_to_yield(watcher.aclose())

    def _idle_check(self, key: Key, kept: _Kept) -> None:
        kept.idle_timer = None
        loop = kept.shared.loop
        if kept.shared.users > 0 or kept.shared.closed or loop is None:
            return  # in use again: its last release re-arms the timer
        left = kept.idle_since + KEEP_IDLE_S - time.monotonic()
        if left > 0:
            kept.idle_timer = loop.call_later(left, self._idle_check, key, kept)
        else:
            self._discard(key, kept)

    def _close_when_the_loop_ends(self, key: Key, kept: _Kept) -> None:
        """Arrange for ``kept`` to be closed when the event loop shuts down (module
        docstring): then it may be kept past its last user."""

        async def until_the_loop_ends() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                kept.watcher = None  # finishing now: _discard must not close it again
                kept.ending = True
                if kept.shared.users == 0:
                    self._discard(key, kept)

        watcher = until_the_loop_ends()
        # The first step registers the generator with the running loop (its firstiter
        # hook) and runs it to its yield, where it waits for the loop's finalization.
        _run_to_yield(watcher.asend(None))
        kept.watcher = watcher
        kept.keepable = True


def _run_to_yield(step: Awaitable[object]) -> None:
    """Run one step of an async generator that never awaits (its ``asend`` or ``aclose``)
    synchronously, to its next ``yield`` or to its end."""
    with contextlib.suppress(StopIteration, StopAsyncIteration):
        step.__await__().send(None)


#: The process's shared ICMP sockets.
REGISTRY = SocketRegistry()


def close_idle_sockets() -> int:
    """Close the shared ICMP sockets that no echo is using (kept for the next diagnosis).
    Returns how many were closed."""
    return REGISTRY.close_idle()


@contextlib.asynccontextmanager
async def open_engine(
    family: socket.AddressFamily, engine: str = "builtin"
) -> AsyncIterator[IcmpEngine]:
    """An engine for one address family; raises IcmpUnavailable (with the fix) if none."""
    if engine == "aioping":
        if on_asyncio() is None:
            raise IcmpUnavailable("the aioping engine needs asyncio (use the builtin engine)")
        try:
            import aioping  # noqa: F401
        except ImportError:
            raise IcmpUnavailable(
                "the aioping engine is not installed: pip install 'netprobe-sdk[aioping]'"
            ) from None
        yield AiopingEngine()
        return
    key, shared = REGISTRY.acquire(family)
    try:
        yield shared
    finally:
        REGISTRY.release(key, shared)
