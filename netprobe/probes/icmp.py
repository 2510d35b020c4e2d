"""The ICMP rung: echo requests to every resolved address, alongside the TCP connect.

The :class:`Pinger` sends ``icmp_count`` echoes to each address, ``ECHO_INTERVAL_S`` apart,
through an engine (``icmp_engines.py``: our own over one shared socket per family, or
aioping), and reports what came back so far at any moment: the diagnosis never waits for
ICMP (echoes still awaiting their reply when the other rungs are done are ``pending``).

On asyncio, with the built-in engine, a diagnosis needs no task for its echoes:
``Pinger.start()`` sends the first round at once and schedules the others with
``loop.call_later``; the shared socket's reader callback records the replies; ``stop()``
(in the diagnosis's ``finally``) cancels the timer and releases the sockets, so the loop
callbacks never outlive the diagnosis. Measured to pay for itself
(benchmarks/RESULTS-overhead.md: a task and its cancellation per diagnosis cost more than
the echo). Elsewhere (trio), ``run()`` in a task: a task per echo, the echoes taking turns
reading the shared socket.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import anyio

from ..steps import IcmpAddressResult, IcmpStep
from ._context import ProbeContext
from ._io import on_asyncio
from .icmp_engines import (
    ECHO_TIMEOUT_S,
    EchoResult,
    IcmpEngine,
    IcmpUnavailable,
    SharedSocket,
)
from .icmp_sockets import REGISTRY, Key, open_engine

__all__ = ["ECHO_INTERVAL_S", "ECHO_TIMEOUT_S", "Pinger"]

#: Echoes to one address go out this far apart (the first at once).
ECHO_INTERVAL_S = 0.2


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


def _latest_deadline(inflight: Sequence[tuple[SharedSocket, tuple[str, int], object]]) -> float:
    deadlines = [d for shared, key, _r in inflight if (d := shared.deadline_of(key)) is not None]
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
        self._opened: list[tuple[Key, SharedSocket]] = []
        self._targets: list[tuple[SharedSocket, _Record]] = []
        self._inflight: list[tuple[SharedSocket, tuple[str, int], _Record]] = []
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
        if self._engine_choice != "builtin" or on_asyncio() is None:
            return False
        by_family: dict[socket.AddressFamily, SharedSocket] = {}
        skipped: list[str] = []
        for family in (socket.AF_INET, socket.AF_INET6):
            if not any((":" in a) == (family == socket.AF_INET6) for a in self._addresses):
                continue
            try:
                key, shared = REGISTRY.acquire(family)
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
        while any(shared.waiting(sent) for shared, sent, _rec in inflight):
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
            # An echo past its own timeout is lost, not pending (as is one that never
            # left because the send buffer was full: rare).
            shared.give_up(sent)
        self._inflight = []
        self._release_all()
        if self._fast and self._end is None:
            self._end = time.perf_counter()

    def _release_all(self) -> None:
        opened, self._opened = self._opened, []
        for key, shared in opened:
            REGISTRY.release(key, shared)

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
        not_waited_for = any(r.pending for r in results)
        if answered or not definite_silence:
            status: Literal["ok", "failed"] = "ok"
            if not answered:
                reason = reason or "not waited for: no reply yet when the other rungs had answered"
        else:
            status = "failed"
            reason = reason or "no echo was answered (ICMP filtered, or the host is down)"
        return IcmpStep(
            status=status,
            reason=reason,
            engine=engine,
            results=results,
            duration_ms=duration,
            not_waited_for=not_waited_for,
        )
