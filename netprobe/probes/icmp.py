"""ICMP echo, run alongside the TCP connect: our own small engine on anyio.

Why our own (docs/icmp.md has the measurements): aioping is GPLv2, asyncio-only, opens one raw
socket per ping, skips ICMP unreachable replies (so they end as a full timeout) and leaks its
socket when sending fails. This engine:

* opens an unprivileged ICMP *datagram* socket first (Linux ``SOCK_DGRAM, IPPROTO_ICMP``,
  allowed by ``net.ipv4.ping_group_range``; the kernel sets the echo identifier to the
  socket's "port" and delivers to it only its own replies), then a raw socket when privileged
  (``CAP_NET_RAW``), and reports "skipped" with the fix when neither is allowed;
* shares ONE socket per address family among every concurrent echo of the event loop (a
  thousand concurrent pings use one file descriptor), demultiplexing replies by
  (address, sequence) and, on raw sockets, by our identifier;
* sets ``IP_RECVERR`` / ``IPV6_RECVERR`` on datagram sockets, so a destination-unreachable
  lands on the socket's error queue (``MSG_ERRQUEUE``, see ip(7)) and ends the echo at once
  with its meaning, instead of being waited out as a timeout. Raw sockets receive the ICMP
  error itself, quoting our echo header (RFC 792: IP header + first 8 bytes of the datagram);
* never leaks a socket: the shared socket is reference-counted and released by the last
  user on every path (send error, timeout, cancellation). On asyncio it is then kept for the
  next diagnosis (opening, tuning, registering and closing it cost as much as the echo
  itself) and closed after ``KEEP_IDLE_S`` unused, or when the event loop's main task ends
  (``asyncio.run()`` / ``anyio.run()`` returning), whichever comes first;
  ``close_idle_sockets()`` closes it at once. Elsewhere the last user closes it.

The receive side has no background task. On asyncio the shared socket is read by an event
loop callback (``loop.add_reader``) that dispatches every datagram to its owner, and a
diagnosis needs no task at all: ``Pinger.start()`` sends the first echoes at once and
schedules the others with ``loop.call_later``, ``Pinger.stop()`` ends it (nothing to spawn
or cancel: benchmarks/RESULTS-overhead.md). On other backends whichever waiting echo finds
nobody reading becomes the reader, and hands over when its own reply has come.
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
import struct
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import anyio
import anyio.lowlevel
import sniffio

from ..steps import IcmpAddressResult, IcmpStep
from ._context import ProbeContext

__all__ = [
    "ECHO_INTERVAL_S",
    "ECHO_TIMEOUT_S",
    "KEEP_IDLE_S",
    "EchoResult",
    "IcmpEngine",
    "IcmpUnavailable",
    "Pinger",
    "close_idle_sockets",
    "open_engine",
]

#: Echoes to one address go out this far apart (the first at once).
ECHO_INTERVAL_S = 0.2
#: An echo without a reply after this long is "lost". TCP is measured at the same time, so
#: a host whose TCP answers but whose echo takes longer than this is treated as filtering ICMP.
ECHO_TIMEOUT_S = 1.0
#: On asyncio, a shared socket nobody uses is kept this long for the next diagnosis.
KEEP_IDLE_S = 10.0

IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
SO_EE_ORIGIN_LOCAL = 1

_MAGIC = b"netprobe"
_UNREACHABLE_ERRNOS = {
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EPERM,
    errno.EACCES,
    errno.EADDRNOTAVAIL,
    errno.EINVAL,
}

# RFC 792 (type 3 codes) and RFC 1812 / RFC 4443.
_V4_UNREACH = {
    0: "network unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    6: "destination network unknown",
    7: "destination host unknown",
    9: "network administratively prohibited",
    10: "host administratively prohibited",
    13: "communication administratively prohibited (a firewall rejected it)",
}
_V6_UNREACH = {
    0: "no route to destination",
    1: "communication administratively prohibited (a firewall rejected it)",
    2: "beyond scope of source address",
    3: "address unreachable",
    4: "port unreachable",
    5: "source address failed ingress/egress policy",
    6: "reject route to destination",
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


def _meaning(family: socket.AddressFamily, icmp_type: int, code: int) -> str:
    if family == socket.AF_INET:
        if icmp_type == 3:
            return _V4_UNREACH.get(code, f"destination unreachable (code {code})")
        if icmp_type == 11:
            return "time exceeded (TTL expired in transit: a routing loop?)"
    else:
        if icmp_type == 1:
            return _V6_UNREACH.get(code, f"destination unreachable (code {code})")
        if icmp_type == 3:
            return "time exceeded (hop limit expired in transit: a routing loop?)"
    return f"ICMP type {icmp_type} code {code}"


@functools.lru_cache(maxsize=1024)
def _norm(address: str) -> str:
    """The canonical text of an address (replies are matched by it): parsed once per
    address, not three times per echo."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).compressed
    except ValueError:
        return address


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class IcmpEngine(Protocol):
    """What the Pinger needs from an engine: one echo at a time, many concurrently."""

    @property
    def name(self) -> str: ...

    async def echo(self, address: str, reply_within: float) -> EchoResult: ...


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
class _SharedSocket:
    """One ICMP socket of one family, shared by every echo of one event loop."""

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
    #: Kept open without users (asyncio): since when, the timer that closes it, and whether
    #: the loop's main task has ended (then the last user closes it).
    idle_since: float = 0.0
    idle_timer: asyncio.TimerHandle | None = None
    keepable: bool = False
    ending: bool = False
    closed: bool = False

    @property
    def name(self) -> str:
        return self.kind

    def watch(self) -> None:
        """On asyncio, drain the socket from a loop callback as soon as it is readable."""
        if _loop_reader_allowed():
            try:
                if sniffio.current_async_library() != "asyncio":
                    return
                loop = asyncio.get_running_loop()
                loop.add_reader(self.sock.fileno(), self._drain)
            except (RuntimeError, NotImplementedError, sniffio.AsyncLibraryNotFoundError):
                return
            self.loop = loop

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
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
        icmp_type = 8 if self.family == socket.AF_INET else 128
        payload = _MAGIC + struct.pack("!d", time.time())
        header = struct.pack("!BBHHH", icmp_type, 0, 0, self.ident, seq)
        if self.kind == "raw" and self.family == socket.AF_INET:
            # Datagram sockets and raw ICMPv6 sockets get their checksum from the kernel.
            header = struct.pack(
                "!BBHHH", icmp_type, 0, _checksum(header + payload), self.ident, seq
            )
        return header + payload

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
                self._on_error_queue(data, ancdata, addr)

    def _settle(self, address: str, seq: int, result_of: _ResultFactory) -> None:
        waiter = self.waiters.get((_norm(address), seq))
        if waiter is not None and waiter.result is None:
            waiter.settle(result_of(waiter))

    def _on_packet(self, data: bytes, source: str) -> None:
        v4 = self.family == socket.AF_INET
        if self.kind == "raw" and v4:
            if len(data) < 20:
                return
            data = data[(data[0] & 0x0F) * 4 :]
        if len(data) < 8:
            return
        icmp_type, code, _csum, ident, seq = struct.unpack("!BBHHH", data[:8])
        reply_type = 0 if v4 else 129
        if icmp_type == reply_type:
            if self.kind == "raw" and (ident != self.ident or not data[8:].startswith(_MAGIC)):
                return
            self._settle(source, seq, _reply)
            return
        if self.kind != "raw" or icmp_type not in ((3, 11) if v4 else (1, 3)):
            return
        # An ICMP error quoting the datagram that caused it: our echo request.
        quoted = data[8:]
        if v4:
            if len(quoted) < 20:
                return
            dest = socket.inet_ntop(socket.AF_INET, quoted[16:20])
            inner = quoted[(quoted[0] & 0x0F) * 4 :]
        else:
            if len(quoted) < 40:
                return
            dest = socket.inet_ntop(socket.AF_INET6, quoted[24:40])
            inner = quoted[40:]
        quoted_proto = quoted[9] if v4 else quoted[6]
        if quoted_proto != (socket.IPPROTO_ICMP if v4 else socket.IPPROTO_ICMPV6):
            return
        if len(inner) < 8 or inner[0] != (8 if v4 else 128):
            return
        _t, _c, _s, q_ident, q_seq = struct.unpack("!BBHHH", inner[:8])
        if q_ident != self.ident:
            return
        meaning = _meaning(self.family, icmp_type, code)
        self._settle(dest, q_seq, lambda w: EchoResult("unreachable", None, meaning, source))

    def _on_error_queue(
        self, data: bytes, ancdata: list[tuple[int, int, bytes]], addr: tuple[str, int]
    ) -> None:
        if len(data) < 8:
            return
        seq = struct.unpack("!H", data[6:8])[0]
        for level, ctype, cdata in ancdata:
            if (level, ctype) not in (
                (socket.IPPROTO_IP, IP_RECVERR),
                (socket.IPPROTO_IPV6, IPV6_RECVERR),
            ):
                continue
            if len(cdata) < 16:
                continue
            # struct sock_extended_err: ee_errno, ee_origin, ee_type, ee_code, pad, info, data;
            # the offender's sockaddr follows (SO_EE_OFFENDER).
            ee_errno, origin, ee_type, ee_code = struct.unpack("=IBBB", cdata[:7])
            source = _offender(cdata[16:])
            if origin == SO_EE_ORIGIN_LOCAL:
                meaning = f"{os.strerror(ee_errno)} (local)"
            else:
                meaning = _meaning(self.family, ee_type, ee_code)
            self._settle(
                str(addr[0]),
                seq,
                lambda w, m=meaning, s=source: EchoResult("unreachable", None, m, s),
            )


class _ResultFactory(Protocol):
    def __call__(self, waiter: _Waiter, /) -> EchoResult: ...


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


def _offender(raw: bytes) -> str | None:
    if len(raw) >= 8 and struct.unpack("=H", raw[:2])[0] == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if len(raw) >= 24 and struct.unpack("=H", raw[:2])[0] == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return None


# -- opening and sharing sockets ---------------------------------------------------------

_SHARED: dict[tuple[object, socket.AddressFamily], _SharedSocket] = {}


def _open_socket(family: socket.AddressFamily) -> _SharedSocket:
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
        return _SharedSocket(family=family, kind=kind, sock=sock)  # type: ignore[arg-type]
    fam = "IPv4" if family == socket.AF_INET else "IPv6"
    raise IcmpUnavailable(
        f"no ICMP socket is allowed for {fam} ({'; '.join(errors)}). To allow ping without "
        "root: sysctl -w net.ipv4.ping_group_range='0 2147483647' (covers IPv6 too); or give "
        "the process CAP_NET_RAW"
    )


_RCVBUF = 4 * 1024 * 1024
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1


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


#: Tests turn this off to exercise the backend-neutral path (echoes take turns reading).
LOOP_READER = True


def _loop_reader_allowed() -> bool:
    return LOOP_READER


_Key = tuple[object, socket.AddressFamily]


def _acquire(family: socket.AddressFamily) -> tuple[_Key, _SharedSocket]:
    """This loop's shared socket of ``family`` (opened on first use); pair with _release."""
    key = (anyio.lowlevel.current_token(), family)
    shared = _SHARED.get(key)
    if shared is None:
        shared = _open_socket(family)
        shared.watch()
        _SHARED[key] = shared
        if shared.loop is not None:
            shared.keepable = _close_when_loop_ends(key, shared)
    shared.users += 1
    return key, shared


def _release(key: _Key, shared: _SharedSocket) -> None:
    shared.users -= 1
    if shared.users > 0:
        return
    if shared.keepable and not shared.ending and KEEP_IDLE_S > 0 and shared.loop is not None:
        shared.idle_since = time.monotonic()
        if shared.idle_timer is None:
            shared.idle_timer = shared.loop.call_later(KEEP_IDLE_S, _idle_check, key, shared)
        return
    _discard(key, shared)


def _discard(key: _Key, shared: _SharedSocket) -> None:
    if _SHARED.get(key) is shared:
        del _SHARED[key]
    shared.close()


def _idle_check(key: _Key, shared: _SharedSocket) -> None:
    shared.idle_timer = None
    if shared.users > 0 or shared.closed or shared.loop is None:
        return  # in use again: its last release re-arms the timer
    left = shared.idle_since + KEEP_IDLE_S - time.monotonic()
    if left > 0:
        shared.idle_timer = shared.loop.call_later(left, _idle_check, key, shared)
    else:
        _discard(key, shared)


def _close_when_loop_ends(key: _Key, shared: _SharedSocket) -> bool:
    """Close ``shared`` when the event loop's main task ends; False if that cannot be
    arranged here (then the socket is not kept past its last user)."""
    try:
        # anyio's own worker threads end with the main task the same way (to_thread).
        from anyio._backends._asyncio import find_root_task

        root = find_root_task()
    except Exception:  # noqa: BLE001 - any failure: do not keep the socket
        return False

    def ending(_task: object) -> None:
        shared.ending = True
        if shared.users == 0:
            _discard(key, shared)

    root.add_done_callback(ending)
    return True


def close_idle_sockets() -> int:
    """Close the shared ICMP sockets that no echo is using (kept for the next diagnosis).
    Returns how many were closed."""
    idle = [(key, shared) for key, shared in _SHARED.items() if shared.users == 0]
    for key, shared in idle:
        _discard(key, shared)
    return len(idle)


@contextlib.asynccontextmanager
async def _shared(family: socket.AddressFamily) -> AsyncIterator[_SharedSocket]:
    key, shared = _acquire(family)
    try:
        yield shared
    finally:
        _release(key, shared)


class _AiopingEngine:
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


@contextlib.asynccontextmanager
async def open_engine(
    family: socket.AddressFamily, engine: str = "builtin"
) -> AsyncIterator[IcmpEngine]:
    """An engine for one address family; raises IcmpUnavailable (with the fix) if none."""
    if engine == "aioping":
        try:
            import aioping  # noqa: F401
        except ImportError:
            raise IcmpUnavailable(
                "the aioping engine is not installed: pip install 'netprobe[aioping]'"
            ) from None
        yield _AiopingEngine()
        return
    async with _shared(family) as shared:
        yield shared


# -- the ICMP rung -------------------------------------------------------------------------


@dataclass
class _Record:
    address: str
    sent: int = 0
    pending: int = 0
    rtts: list[float] = field(default_factory=list)
    unreachable: str | None = None
    unreachable_from: str | None = None
    immediate: bool = False
    error: str | None = None

    def result(self) -> IcmpAddressResult:
        rtts = self.rtts
        return IcmpAddressResult(
            address=self.address,
            sent=self.sent,
            received=len(rtts),
            pending=self.pending,
            rtt_min_ms=min(rtts) if rtts else None,
            rtt_avg_ms=round(sum(rtts) / len(rtts), 3) if rtts else None,
            rtt_max_ms=max(rtts) if rtts else None,
            unreachable=self.unreachable or self.error,
            unreachable_from=self.unreachable_from,
            immediate=self.immediate,
        )


def _open(shared: _SharedSocket, key: tuple[str, int]) -> bool:
    waiter = shared.waiters.get(key)
    return waiter is not None and waiter.result is None


def _latest_deadline(inflight: Sequence[tuple[_SharedSocket, tuple[str, int], object]]) -> float:
    deadlines = [
        w.sent_at + w.timeout
        for shared, key, _r in inflight
        if (w := shared.waiters.get(key)) is not None and w.result is None
    ]
    return max(deadlines, default=0.0)


class Pinger:
    """Sends ``icmp_count`` echoes to every address; ``step()`` reports what came back so far.

    The diagnosis runs it next to the TCP connect and cancels it once the connect and L7
    rungs are done (ICMP never adds to the wall time): echoes still awaiting their reply at
    that moment are reported as ``pending``, not lost. An ICMP error for an address ends its
    echoes at once: it is already the answer.
    """

    def __init__(
        self,
        ctx: ProbeContext,
        addresses: Sequence[str],
        *,
        interval: float = ECHO_INTERVAL_S,
        echo_timeout: float = ECHO_TIMEOUT_S,
    ) -> None:
        self._ctx = ctx
        self._addresses = list(dict.fromkeys(addresses))
        self._count = ctx.options.icmp_count
        self._engine_choice = ctx.options.icmp_engine
        self._interval = interval
        self._echo_timeout = echo_timeout
        self._records = {a: _Record(a) for a in self._addresses}
        self._skipped: list[str] = []
        self._engines: set[str] = set()
        self._start = time.perf_counter()
        self._end: float | None = None
        #: Set on every reply and scheduled send, for ``run()`` (a diagnosis never waits).
        self._changed: anyio.Event | None = None
        # The loop-scheduled engine (start/stop).
        self._fast: bool | None = None
        self._opened: list[tuple[_Key, _SharedSocket]] = []
        self._targets: list[tuple[_SharedSocket, _Record]] = []
        self._inflight: list[tuple[_SharedSocket, tuple[str, int], _Record]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._first = 0.0
        self._all_sent = False

    def answered(self, address: str) -> bool:
        """Has ``address`` answered at least one echo yet?"""
        rec = self._records.get(address)
        return rec is not None and bool(rec.rtts)

    async def run(self) -> None:
        """Send every echo and wait for the replies (each at most its own timeout)."""
        try:
            if self.start():
                try:
                    while not self._all_sent:
                        self._changed = anyio.Event()
                        await self._changed.wait()
                    await self._replies()
                finally:
                    self.stop()
                return
            async with anyio.create_task_group() as tg:
                for family in (socket.AF_INET, socket.AF_INET6):
                    addrs = [
                        a for a in self._addresses if (":" in a) == (family == socket.AF_INET6)
                    ]
                    if addrs:
                        tg.start_soon(self._family, family, addrs)
        finally:
            self._end = time.perf_counter()

    def start(self) -> bool:
        """The built-in engine on asyncio: send the first echoes now and schedule the others
        on the event loop (``call_later``), whose reader callback records the replies; no
        task. ``stop()`` ends it. Returns False (nothing done) where the socket cannot be
        read from a loop callback: then ``run()`` in a task, a task per echo."""
        if self._fast is not None:
            return self._fast
        if self._engine_choice != "builtin" or not _loop_reader_allowed():
            return False
        by_family: dict[socket.AddressFamily, _SharedSocket] = {}
        skipped: list[str] = []
        for family in (socket.AF_INET, socket.AF_INET6):
            if not any((":" in a) == (family == socket.AF_INET6) for a in self._addresses):
                continue
            try:
                key, shared = _acquire(family)
            except IcmpUnavailable as exc:
                skipped.append(str(exc))
                continue
            self._opened.append((key, shared))
            if shared.loop is None:
                self._release_all()
                self._fast = False
                return False
            self._loop = shared.loop
            by_family[family] = shared
        self._fast = True
        self._skipped.extend(skipped)
        self._engines.update(s.name for s in by_family.values())
        self._targets = [
            (by_family[socket.AF_INET6 if ":" in a else socket.AF_INET], self._records[a])
            for a in self._addresses
            if (socket.AF_INET6 if ":" in a else socket.AF_INET) in by_family
        ]
        self._first = time.perf_counter()
        self._send_round(0)
        return True

    def _send_round(self, i: int) -> None:
        self._timer = None
        live = [(sh, rec) for sh, rec in self._targets if not (rec.unreachable or rec.error)]
        for shared, rec in live:
            rec.sent += 1
            rec.pending += 1
            sent = shared.send(rec.address, self._echo_timeout, self._recorder(rec))
            self._inflight.append((shared, sent, rec))
        if live and i + 1 < self._count and self._loop is not None:
            delay = self._first + (i + 1) * self._interval - time.perf_counter()
            self._timer = self._loop.call_later(max(0.0, delay), self._send_round, i + 1)
        else:
            self._all_sent = True
            self._wake()

    async def _replies(self) -> None:
        """Wait for the last replies, each echo at most its own timeout."""
        inflight = self._inflight
        while any(_open(shared, sent) for shared, sent, _rec in inflight):
            self._changed = anyio.Event()
            with anyio.move_on_after(_latest_deadline(inflight) - time.perf_counter()):
                await self._changed.wait()
            if time.perf_counter() >= _latest_deadline(inflight):
                break

    def stop(self) -> None:
        """End what ``start()`` began: no more echoes; those awaiting a reply stay pending
        (or lost, past their own timeout); the sockets are released. Idempotent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._all_sent = True
        for shared, sent, _rec in self._inflight:
            waiter = shared.waiters.get(sent, _Waiter())
            # An echo past its own timeout is lost, not pending (as is one that never
            # left because the send buffer was full: rare).
            if _open(shared, sent) and (waiter.sent_at == 0.0 or waiter.expired):
                waiter.settle(EchoResult("lost"))
            shared.forget(sent)
        self._inflight = []
        self._release_all()
        if self._fast and self._end is None:
            self._end = time.perf_counter()

    def _release_all(self) -> None:
        opened, self._opened = self._opened, []
        for key, shared in opened:
            _release(key, shared)

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _recorder(self, rec: _Record) -> Callable[[EchoResult], None]:
        def record(result: EchoResult) -> None:
            self._record(rec, result)
            self._wake()

        return record

    async def _family(self, family: socket.AddressFamily, addresses: list[str]) -> None:
        try:
            cm = open_engine(family, self._engine_choice)
            engine = await cm.__aenter__()
        except IcmpUnavailable as exc:
            self._skipped.append(str(exc))
            return
        try:
            self._engines.add(engine.name)
            async with anyio.create_task_group() as tg:
                for address in addresses:
                    tg.start_soon(self._address, engine, self._records[address])
        finally:
            with anyio.CancelScope(shield=True):
                await cm.__aexit__(None, None, None)

    async def _address(self, engine: IcmpEngine, rec: _Record) -> None:
        async with anyio.create_task_group() as tg:
            for i in range(self._count):
                if rec.unreachable or rec.error:
                    break
                if i:
                    await anyio.sleep(self._interval)
                if rec.unreachable or rec.error:
                    break
                rec.sent += 1
                rec.pending += 1
                tg.start_soon(self._echo, engine, rec)

    async def _echo(self, engine: IcmpEngine, rec: _Record) -> None:
        self._record(rec, await engine.echo(rec.address, self._echo_timeout))

    @staticmethod
    def _record(rec: _Record, result: EchoResult) -> None:
        rec.pending -= 1
        match result.outcome:
            case "reply":
                rec.rtts.append(result.rtt_ms or 0.0)
            case "unreachable":
                rec.unreachable = rec.unreachable or result.detail
                rec.unreachable_from = rec.unreachable_from or result.source
                rec.immediate = rec.immediate or result.immediate
            case "error":
                rec.error = rec.error or result.detail
            case _:
                pass

    def step(self) -> IcmpStep:
        """The step so far: partial when the run was cancelled."""
        results = [self._records[a].result() for a in self._addresses]
        end = self._end if self._end is not None else time.perf_counter()
        duration = round((end - self._start) * 1000.0, 3)
        if self._skipped and not self._engines:
            return IcmpStep(status="skipped", reason="; ".join(self._skipped))
        results = [r for r in results if r.sent or r.address in self._records]
        engine = ",".join(sorted(self._engines)) or None
        reason = "; ".join(self._skipped) or None
        answered = any(r.received for r in results)
        definite_silence = any(r.lost or r.unreachable for r in results)
        if answered or not definite_silence:
            status: Literal["ok", "failed"] = "ok"
            if not answered:
                reason = reason or "no reply yet when the other rungs were done"
        else:
            status = "failed"
            reason = reason or "no echo was answered (ICMP filtered, or the host is down)"
        return IcmpStep(
            status=status, reason=reason, engine=engine, results=results, duration_ms=duration
        )
