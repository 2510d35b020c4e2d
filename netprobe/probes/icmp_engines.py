"""The ICMP echo engines: our own over one shared socket per address family, and aioping.

Why our own (docs/icmp.md has the measurements): aioping is GPLv2, asyncio-only, opens one
raw socket per ping, skips ICMP unreachable replies (so they end as a full timeout) and leaks
its socket when sending fails. :class:`SharedSocket`:

* is ONE socket of one family shared by every concurrent echo of the event loop (a thousand
  concurrent pings use one file descriptor; ``icmp_sockets.py`` opens and shares it),
  demultiplexing replies by (address, sequence) and, on raw sockets, by our identifier;
* on a datagram socket, reads ICMP errors from the error queue (``IP_RECVERR``), so a
  destination-unreachable ends the echo at once with its meaning instead of being waited
  out as a timeout; on a raw socket, reads the ICMP error itself, quoting our echo;
* has two receive paths. On asyncio, an event loop reader callback (``loop.add_reader``)
  dispatches every datagram to its owner, so that a diagnosis needs no task for its echoes
  (the Pinger's fast path, benchmarks/RESULTS-overhead.md: the task and cancel-scope per
  diagnosis cost more than the echo); the callback lives exactly as long as the socket,
  which the registry closes when idle or when the event loop ends. On any other backend
  (trio), whichever waiting echo finds nobody reading becomes the reader, and hands over
  when its own reply has come.

The packets themselves are built and parsed in ``protocols/icmp.py`` (sans-IO).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import anyio

from ..protocols import icmp as codec
from ._io import on_asyncio

__all__ = [
    "ECHO_TIMEOUT_S",
    "AiopingEngine",
    "EchoResult",
    "IcmpEngine",
    "IcmpUnavailable",
    "SharedSocket",
]

#: An echo without a reply after this long is "lost". TCP is measured at the same time, so
#: a host whose TCP answers but whose echo takes longer than this is treated as filtering ICMP.
ECHO_TIMEOUT_S = 1.0

_UNREACHABLE_ERRNOS = {
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EPERM,
    errno.EACCES,
    errno.EADDRNOTAVAIL,
    errno.EINVAL,
}

Outcome = Literal["reply", "lost", "unreachable", "error"]


@dataclass(frozen=True)
class EchoResult:
    """One echo: a reply (with its RTT), lost, or an ICMP error / send error with its meaning."""

    outcome: Outcome
    rtt_ms: float | None = None
    detail: str | None = None
    source: str | None = None
    immediate: bool = False


class IcmpUnavailable(Exception):
    """No ICMP socket is allowed here; ``reason`` says why and how to allow one."""


class IcmpEngine(Protocol):
    """What the Pinger needs from an engine: one echo at a time, many concurrently."""

    @property
    def name(self) -> str: ...

    async def echo(self, address: str, reply_within: float) -> EchoResult: ...


@functools.lru_cache(maxsize=1024)
def _norm(address: str) -> str:
    """The canonical text of an address (replies are matched by it): parsed once per
    address, not three times per echo."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).compressed
    except ValueError:
        return address


@dataclass
class _Waiter:
    sent_at: float = 0.0
    timeout: float = ECHO_TIMEOUT_S
    result: EchoResult | None = None
    event: anyio.Event | None = None
    reading: anyio.CancelScope | None = None
    on_result: Callable[[EchoResult], None] | None = None

    @property
    def expired(self) -> bool:
        return time.perf_counter() - self.sent_at >= self.timeout

    def settle(self, result: EchoResult) -> None:
        if self.result is None:
            self.result = result
            if self.event is not None:
                self.event.set()
            if self.reading is not None:
                # Settled by another echo's drain while this one was the reader.
                self.reading.cancel()
            if self.on_result is not None:
                self.on_result(result)


@dataclass
class SharedSocket:
    """One ICMP socket of one family, shared by every echo of one event loop: the built-in
    engine. Opened, shared and closed by ``icmp_sockets.py``."""

    family: socket.AddressFamily
    kind: Literal["dgram", "raw"]
    sock: socket.socket
    ident: int = field(default_factory=lambda: random.randrange(1, 0xFFFF))
    users: int = 0
    reading: bool = False
    seq: int = 0
    waiters: dict[tuple[str, int], _Waiter] = field(default_factory=dict)
    send_lock: anyio.Lock = field(default_factory=anyio.Lock)
    #: The asyncio loop whose reader callback drains the socket (None: echoes take turns).
    loop: asyncio.AbstractEventLoop | None = None
    closed: bool = False

    @property
    def name(self) -> str:
        return self.kind

    def watch(self) -> None:
        """On asyncio, drain the socket from a loop reader callback as soon as it is
        readable (until ``close()``); elsewhere the echoes take turns reading."""
        loop = on_asyncio()
        if loop is None:
            return
        try:
            loop.add_reader(self.sock.fileno(), self._drain)
        except (RuntimeError, NotImplementedError):  # e.g. a loop without add_reader
            return
        self.loop = loop

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.loop is not None:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.sock.fileno())
            self.loop = None
        self.sock.close()

    # -- sending ------------------------------------------------------------------------

    def _next_seq(self, address: str) -> int:
        for _ in range(0x10000):
            self.seq = (self.seq + 1) & 0xFFFF
            if (address, self.seq) not in self.waiters:
                return self.seq
        raise RuntimeError("65,536 echoes in flight to one address")

    def _packet(self, seq: int) -> bytes:
        return codec.echo_request(self.family, self.ident, seq, time.time(), raw=self.kind == "raw")

    def _dest(self, address: str) -> tuple[str, int] | tuple[str, int, int, int]:
        return (address, 0) if self.family == socket.AF_INET else (address, 0, 0, 0)

    def send(
        self,
        address: str,
        reply_within: float,
        on_result: Callable[[EchoResult], None] | None = None,
    ) -> tuple[str, int]:
        """Send one echo without waiting (the callback gets its outcome, maybe at once when
        sending fails). Returns its key: pass it to ``forget()`` when done with it."""
        norm = _norm(address)
        key = (norm, self._next_seq(norm))
        waiter = _Waiter(timeout=reply_within, on_result=on_result)
        self.waiters[key] = waiter
        waiter.sent_at = time.perf_counter()
        try:
            self.sock.sendto(self._packet(key[1]), self._dest(address))
        except BlockingIOError:
            # The send buffer is full: the caller retries with ``echo()``'s writable wait.
            waiter.sent_at = 0.0
        except OSError as exc:
            waiter.settle(_send_error(exc))
        else:
            if len(self.waiters) > 16:
                # Many echoes in flight: read what has already come back, so that a burst of
                # replies never overflows the socket's receive buffer (replies from loopback
                # are queued before sendto() even returns).
                self._drain()
        return key

    def forget(self, key: tuple[str, int]) -> None:
        self.waiters.pop(key, None)

    def waiting(self, key: tuple[str, int]) -> bool:
        """Is the echo ``key`` still without an outcome?"""
        waiter = self.waiters.get(key)
        return waiter is not None and waiter.result is None

    def deadline_of(self, key: tuple[str, int]) -> float | None:
        """When the echo ``key`` counts as lost (``perf_counter`` time), if still waiting."""
        waiter = self.waiters.get(key)
        if waiter is None or waiter.result is not None:
            return None
        return waiter.sent_at + waiter.timeout

    def give_up(self, key: tuple[str, int]) -> None:
        """Stop waiting for ``key``: lost if past its own timeout (or never sent), else it
        stays pending; either way it is forgotten."""
        waiter = self.waiters.get(key)
        if (
            waiter is not None
            and waiter.result is None
            and (waiter.sent_at == 0.0 or waiter.expired)
        ):
            waiter.settle(EchoResult("lost"))
        self.forget(key)

    async def echo(self, address: str, reply_within: float) -> EchoResult:
        key = self.send(address, reply_within)
        waiter = self.waiters[key]
        try:
            if waiter.sent_at == 0.0:
                try:
                    async with self.send_lock:
                        await anyio.wait_writable(self.sock)
                        waiter.sent_at = time.perf_counter()
                        self.sock.sendto(self._packet(key[1]), self._dest(address))
                except OSError as exc:
                    return _send_error(exc)
            with anyio.move_on_after(reply_within):
                if self.loop is not None:
                    if waiter.result is None:
                        waiter.event = anyio.Event()
                        await waiter.event.wait()
                else:
                    await self._await(waiter)
            return waiter.result or EchoResult("lost")
        finally:
            self.forget(key)

    # -- receiving ----------------------------------------------------------------------

    async def _await(self, waiter: _Waiter) -> None:
        while waiter.result is None:
            if not self.reading:
                self.reading = True
                try:
                    with anyio.CancelScope() as scope:
                        waiter.reading = scope
                        while waiter.result is None:
                            await anyio.wait_readable(self.sock)
                            self._drain()
                finally:
                    waiter.reading = None
                    self.reading = False
                    # Hand over: wake every echo still waiting; the first to run reads next.
                    for other in self.waiters.values():
                        if other.result is None and other.event is not None:
                            other.event.set()
            else:
                waiter.event = anyio.Event()
                await waiter.event.wait()

    def _drain(self) -> None:
        for _ in range(4096):
            try:
                data, addr = self.sock.recvfrom(4096)
            except BlockingIOError:
                break
            except OSError:
                # A pending socket error (sk_err) set by an ICMP error; the details are on
                # the error queue, read below.
                continue
            self._on_packet(data, str(addr[0]))
        if self.kind == "dgram":
            for _ in range(4096):
                try:
                    data, ancdata, _flags, addr = self.sock.recvmsg(4096, 1024, socket.MSG_ERRQUEUE)
                except OSError:
                    break
                for entry in codec.parse_error_queue(data, ancdata):
                    self._settle(
                        str(addr[0]),
                        entry.seq,
                        EchoResult("unreachable", None, entry.meaning(self.family), entry.offender),
                    )

    def _settle(self, address: str, seq: int, result: EchoResult | None) -> None:
        """Settle the echo (address, seq); ``None`` for a reply (its RTT is the waiter's)."""
        waiter = self.waiters.get((_norm(address), seq))
        if waiter is not None and waiter.result is None:
            waiter.settle(result if result is not None else _reply(waiter))

    def _on_packet(self, data: bytes, source: str) -> None:
        raw = self.kind == "raw"
        packet = codec.parse_received(data, self.family, raw=raw)
        if isinstance(packet, codec.EchoReply):
            if raw and (packet.ident != self.ident or not packet.ours):
                return  # another process's ping, seen by our raw socket
            self._settle(source, packet.seq, None)
        elif isinstance(packet, codec.QuotedError) and packet.ident == self.ident:
            detail = codec.meaning(self.family, packet.icmp_type, packet.code)
            self._settle(
                packet.destination, packet.seq, EchoResult("unreachable", None, detail, source)
            )


def _reply(waiter: _Waiter) -> EchoResult:
    rtt = time.perf_counter() - waiter.sent_at
    if rtt > waiter.timeout:
        return EchoResult("lost")  # too late: the echo had already counted as lost
    return EchoResult("reply", round(rtt * 1000.0, 3))


def _send_error(exc: OSError) -> EchoResult:
    name = errno.errorcode.get(exc.errno or 0, "error")
    return EchoResult(
        "unreachable" if exc.errno in _UNREACHABLE_ERRNOS else "error",
        detail=f"{os.strerror(exc.errno or 0)} ({name}) when sending",
        immediate=True,
    )


class AiopingEngine:
    """The optional aioping engine: one raw socket per echo, asyncio only (GPLv2)."""

    name = "aioping"

    async def echo(self, address: str, reply_within: float) -> EchoResult:
        import aioping

        try:
            delay = await aioping.ping(address, timeout=reply_within)
        except TimeoutError:
            return EchoResult("lost")
        except OSError as exc:
            return EchoResult("error", detail=exc.strerror or str(exc))
        return EchoResult("reply", round(float(delay) * 1000.0, 3))
