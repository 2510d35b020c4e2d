"""Where the SYN dies: a TCP trace to the real destination port, without a raw socket.

An ordinary TCP socket with ``IP_TTL = n`` (IPv6: ``IPV6_UNICAST_HOPS``) and ``IP_RECVERR``
set is a traceroute probe (Linux 5.8+): the router where the TTL runs out answers ICMP time
exceeded, which fails the non-blocking ``connect()`` and lands on the socket's error queue
with the router's address as the offender; the destination answers SYN+ACK or RST. A router
checks the TTL before its forward hook, so the box that drops the SYN still answers at its own
TTL: "hop 2 answers, nothing beyond it" puts the drop at hop 2 or right after it.

Every TTL is sent at once (one SYN each, ``trace_max_hops`` at most), so a trace takes one
probe timeout, not hops x timeout. It starts when the connect has failed at L3/L4, or when
its SYN has waited ``TRACE_AFTER_S`` (Linux's first SYN retransmission) without an answer:
then it runs inside the time the connect timeout spends anyway. Its budget is cut to the
total deadline; the hops still waiting when it ends are silent (``partial`` when the deadline
cut it).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time

import anyio
import sniffio
from anyio.abc import TaskGroup

from ..protocols.errqueue import SockError
from ..steps import AddressAttempt, TraceHop, TraceStep
from ._context import ProbeContext
from ._io import elapsed_ms, on_asyncio
from .errqueue import read_sock_errors, set_recverr
from .tcp import TcpConnector

__all__ = ["TRACE_AFTER_S", "TRACE_OUTCOMES", "Tracer", "trace_path", "trace_step"]

#: A SYN unanswered this long has been retransmitted once (Linux's initial RTO is 1 s): the
#: trace starts then, alongside the rest of the connect timeout.
TRACE_AFTER_S = 1.0
#: The least time a trace is given, when the connect timeout has (almost) run out.
_MIN_TRACE_S = 0.25
#: How long before the total deadline a trace cut by it ends.
_DEADLINE_MARGIN_S = 0.05
#: The earliest a trace starts while its SYN still waits (the deadline's pull included).
_EARLIEST_S = 0.2
#: The connect outcomes worth a trace: the SYN went unanswered, or an ICMP error came back.
TRACE_OUTCOMES = ("timeout", "host_unreachable", "network_unreachable")


def _family_of(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _hop_of(ttl: int, errors: list[SockError], rtt: float | None) -> TraceHop:
    net = next((e for e in reversed(errors) if e.from_network), None)
    if net is None:
        return TraceHop(ttl=ttl, outcome="error", meaning=errors[-1].meaning() if errors else None)
    return TraceHop(
        ttl=ttl,
        outcome="time_exceeded" if net.time_exceeded else "unreachable",
        address=net.offender,
        icmp_type=net.icmp_type,
        icmp_code=net.icmp_code,
        meaning=net.meaning(),
        rtt_ms=rtt,
    )


async def _probe(address: str, port: int, ttl: int, wait_s: float) -> TraceHop:
    """One SYN with this TTL; never raises for a network fault."""
    family = _family_of(address)
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        return TraceHop(ttl=ttl, outcome="error", meaning=os.strerror(exc.errno or 0))
    start = time.perf_counter()
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        set_recverr(sock, family)
        sock.setblocking(False)
        err = sock.connect_ex((address, port))
        if err == errno.EINPROGRESS:
            with anyio.move_on_after(wait_s):
                await anyio.wait_writable(sock)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                # Writable without an error: the handshake completed, or the wait timed out.
                try:
                    sock.getpeername()
                except OSError:
                    return TraceHop(ttl=ttl, outcome="silent")
        rtt = elapsed_ms(start)
        if err in (0, errno.ECONNREFUSED):
            answer = "SYN+ACK" if err == 0 else "RST"
            return TraceHop(ttl=ttl, outcome="reached", address=address, meaning=answer, rtt_ms=rtt)
        errors = read_sock_errors(sock)
        if errors:
            return _hop_of(ttl, errors, rtt)
        if err == errno.ETIMEDOUT:
            return TraceHop(ttl=ttl, outcome="silent")
        return TraceHop(ttl=ttl, outcome="error", meaning=os.strerror(err))
    except OSError as exc:
        return TraceHop(ttl=ttl, outcome="error", meaning=os.strerror(exc.errno or 0))
    finally:
        sock.close()


async def trace_path(
    address: str,
    port: int,
    *,
    max_hops: int,
    wait_s: float,
    partial: bool = False,
    hops: dict[int, TraceHop] | None = None,
) -> TraceStep:
    """Trace the path to ``address:port`` with TTL 1..``max_hops`` sent together.

    Returns the hops up to the first the destination answered. Never raises for a network
    fault; outer cancellation propagates (every socket is closed). ``hops``, when given,
    receives each hop as it is answered: after a cancellation, :func:`trace_step` makes the
    partial path from it.
    """
    start = time.perf_counter()
    got: dict[int, TraceHop] = {} if hops is None else hops

    async def one(ttl: int) -> None:
        got[ttl] = await _probe(address, port, ttl, wait_s)

    async with anyio.create_task_group() as tg:
        for ttl in range(1, max_hops + 1):
            tg.start_soon(one, ttl)
    return trace_step(
        address, port, got, max_hops=max_hops, wait_s=wait_s, start=start, partial=partial
    )


def trace_step(
    address: str,
    port: int,
    hops: dict[int, TraceHop],
    *,
    max_hops: int,
    wait_s: float,
    start: float,
    partial: bool,
) -> TraceStep:
    """The step of a trace from the hops answered so far (a TTL without an answer is silent)."""
    ordered: list[TraceHop] = []
    for ttl in range(1, max_hops + 1):
        hop = hops.get(ttl, TraceHop(ttl=ttl, outcome="silent"))
        ordered.append(hop)
        if hop.outcome in ("reached", "unreachable", "error"):
            # The destination answered, a box on the way rejected the SYN, or this host
            # could not send it (no neighbour, no route): higher TTLs say the same.
            break
    # Trailing silence says the same thing at every TTL: keep the first silent hop only.
    while len(ordered) >= 2 and ordered[-1].outcome == ordered[-2].outcome == "silent":
        ordered.pop()
    reached = any(h.outcome == "reached" for h in ordered)
    last = next((h for h in reversed(ordered) if h.outcome == "time_exceeded"), None)
    if reached:
        reason = None
    elif ordered and ordered[-1].outcome == "unreachable":
        reason = f"{ordered[-1].address} rejected the SYN ({ordered[-1].meaning})"
    elif last is None:
        reason = "no hop answered"
    else:
        reason = f"the SYN got as far as hop {last.ttl} ({last.address})"
    return TraceStep(
        status="ok" if reached else "failed",
        reason=reason,
        duration_ms=elapsed_ms(start),
        address=address,
        port=port,
        max_hops=max_hops,
        timeout_s=wait_s,
        hops=tuple(ordered),
        partial=partial,
    )


class Tracer:
    """Runs one trace for a diagnosis whose connect fails, within the total deadline.

    A healthy connect costs no task: on asyncio a loop timer (like the canary's,
    ``probes/witness.py``) starts the trace only when the SYN has been unanswered for
    ``TRACE_AFTER_S``; a connect that fails sooner (an ICMP error) is traced by ``finish()``
    right after. Under trio ``run()`` waits in a task.
    """

    def __init__(self, ctx: ProbeContext, tcp: TcpConnector) -> None:
        self._ctx = ctx
        self._tcp = tcp
        self._started = False
        self._done = anyio.Event()
        self._tg: TaskGroup | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._scope: anyio.CancelScope | None = None
        self.step: TraceStep | None = None
        self._connected_late = False

    def _delay(self) -> float:
        """``TRACE_AFTER_S`` (or a third of the connect timeout); sooner when the total deadline
        would otherwise leave the trace no time (a process whose start-up spent part of a short
        deadline): a partial path in the report beats none. Never before ``_EARLIEST_S``."""
        before_deadline = self._ctx.remaining() - _MIN_TRACE_S - _DEADLINE_MARGIN_S
        return max(_EARLIEST_S, min(TRACE_AFTER_S, self._tcp.timeout / 3, before_deadline))

    def start(self, tg: TaskGroup) -> None:
        """Arm the trace for a SYN left unanswered (see the class)."""
        loop = on_asyncio()
        if loop is None:
            tg.start_soon(self.run)
            return
        self._tg = tg
        self._timer = loop.call_later(self._delay(), self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._tg is None or self._ctx.remaining() <= 0 or self._tcp.connected:
            return  # the diagnosis ended meanwhile, or the connect worked after all
        token = sniffio.current_async_library_cvar.set("asyncio")  # see witness.Witness._fire
        try:
            self._started = True
            self._tg.start_soon(self._trace)
        except RuntimeError:  # the task group is closing: the diagnosis is over
            self._done.set()
        finally:
            sniffio.current_async_library_cvar.reset(token)

    async def run(self) -> None:
        """The trio way: wait for the connect (at most the delay), then trace if it failed."""
        with anyio.move_on_after(self._ctx.budget(self._delay())):
            await self._tcp.wait_settled()
        if not self._started:
            self._started = True
            await self._trace()

    async def finish(self) -> None:
        """After the connects: trace a failure no timer traced yet, or wait for the trace."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._started:
            self._started = True
            await self._trace()
        await self._done.wait()

    def close(self) -> None:
        """Cancel a timer not fired yet (the diagnosis is over); idempotent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._tg = None

    def cancel(self) -> None:
        """The connect succeeded after all (a SYN retransmitted at 1 s): stop a trace that
        started meanwhile, so that it never holds a healthy diagnosis open."""
        self.close()
        self._started = True
        self._connected_late = True
        if self._scope is not None:
            self._scope.cancel()

    async def _trace(self) -> None:
        try:
            address = self._pick()
            if address is None:
                return
            opts = self._ctx.options
            # Inside the time the connect timeout spends anyway (at least _MIN_TRACE_S), and
            # ending a little before the total deadline, so that its hops are in the report
            # the deadline cuts (the orchestrator's scope would cancel it mid-way).
            own = min(opts.trace_timeout, max(self._tcp.time_left(), _MIN_TRACE_S))
            deadline_left = self._ctx.remaining() - _DEADLINE_MARGIN_S
            budget = min(own, deadline_left)
            if budget <= 0.01:
                return
            hops: dict[int, TraceHop] = {}
            start = time.perf_counter()
            try:
                with anyio.CancelScope() as self._scope:
                    self.step = await trace_path(
                        address,
                        self._ctx.dial_port,
                        max_hops=opts.trace_max_hops,
                        wait_s=budget,
                        partial=deadline_left < own,
                        hops=hops,
                    )
            finally:
                if self.step is None and hops and not self._connected_late:
                    # The total deadline cut the trace (a loaded machine wakes it late):
                    # the hops that answered are still the path, marked partial.
                    self.step = trace_step(
                        address,
                        self._ctx.dial_port,
                        hops,
                        max_hops=opts.trace_max_hops,
                        wait_s=budget,
                        start=start,
                        partial=True,
                    )
        finally:
            self._scope = None
            self._done.set()

    def _pick(self) -> str | None:
        """The address to trace: the first whose connect failed in a way a trace explains,
        else the first still waiting for an answer to its SYN."""
        if self._tcp.connected:
            return None
        failed: list[AddressAttempt] = [
            a for a in self._tcp.step().attempts if a.outcome in TRACE_OUTCOMES and not a.immediate
        ]
        pending = set(self._tcp.pending())
        for a in failed:
            if a.address not in pending:
                return a.address
        return failed[0].address if failed else None
