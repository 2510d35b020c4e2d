"""The liveness witness: when a SYN goes unanswered, is the host alive at all?

A SYN that gets no answer looks the same whether the host is down or a firewall drops the
port. An experienced operator looks for a second witness: an ICMP echo reply (the Pinger,
running already), or any TCP answer, RST or SYN+ACK, from *another* port of the same host.
This module adds the second kind: a "canary" connect to ports that are almost certainly
closed (an RST proves the host's kernel is there).

It costs nothing when the SYN is answered: the canary starts only once the main SYN has gone
unanswered for ``CANARY_DELAY_S`` (Linux retransmits the SYN at 1 s), only for the addresses
still silent and not already proven alive by a ping, and it ends no later than the main
connect's own timeout, so it does not extend the wall time of the diagnosis.
"""

from __future__ import annotations

import asyncio
import time

import anyio
import sniffio
from anyio.abc import TaskGroup

from ..steps import AddressAttempt, TcpStep
from ._context import ProbeContext
from ._io import elapsed_ms, on_asyncio
from .icmp import Pinger
from .tcp import TcpConnector, connect_address

__all__ = ["CANARY_DELAY_S", "CANARY_PORTS", "Witness"]

#: How long the main SYN stays unanswered before the canary starts (capped at a third of
#: the connect timeout).
CANARY_DELAY_S = 1.0
#: Ports tried on a silent host: 1 (tcpmux, essentially never served: expect an RST) and 22
#: (SSH, often open to operators: an RST or a SYN+ACK).
CANARY_PORTS: tuple[int, ...] = (1, 22)
#: The least time a canary connect is given, even with a very short connect timeout.
_MIN_CANARY_S = 0.25


class Witness:
    """Runs the canary connects next to the TcpConnector; ``annotate()`` records them."""

    def __init__(self, ctx: ProbeContext, tcp: TcpConnector, pinger: Pinger | None) -> None:
        self._ctx = ctx
        self._tcp = tcp
        self._pinger = pinger
        self._attempts: list[AddressAttempt] = []
        self._planned: list[tuple[str, int]] = []
        self._started: float | None = None
        self._done = anyio.Event()
        self._tg: TaskGroup | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self, tg: TaskGroup) -> None:
        """Start watching the connect. On asyncio a loop timer spawns the canary task only
        once the SYN has been silent for the delay (a healthy connect costs no task:
        benchmarks/RESULTS-overhead.md); the timer lives no longer than the diagnosis, whose
        ``finally`` calls ``close()``. Elsewhere (trio) ``run()`` in a task of ``tg``."""
        if not self._ctx.options.canary:
            self._done.set()
            return
        loop = on_asyncio()
        if loop is None:
            tg.start_soon(self.run)
            return
        self._tg = tg
        self._timer = loop.call_later(self._delay(), self._fire)

    def _delay(self) -> float:
        return min(CANARY_DELAY_S, self._tcp.timeout / 3)

    def _fire(self) -> None:
        self._timer = None
        try:
            if self._tg is None:
                raise RuntimeError("no task group")
            if self._ctx.remaining() <= 0:
                # The total deadline fired in the same loop turn and is cancelling the task
                # group: a task started now would be cancelled before its first step, its
                # coroutine never awaited (a RuntimeWarning). The canary has no time left.
                raise RuntimeError("the diagnosis's deadline has passed")
            # A loop callback runs outside any task: anyio finds the running library through
            # sniffio, whose context variable anyio.run sets and asyncio.run (uvicorn, every
            # asyncio service) does not. This timer only exists on asyncio (start()).
            token = sniffio.current_async_library_cvar.set("asyncio")
            try:
                self._tg.start_soon(self._canaries, self._delay())
            finally:
                sniffio.current_async_library_cvar.reset(token)
        except RuntimeError:  # the diagnosis ended meanwhile (close() cancels the timer)
            self._done.set()

    def close(self) -> None:
        """Cancel a timer not fired yet (the diagnosis is over); idempotent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._done.set()
        self._tg = None

    async def run(self) -> None:
        if not self._ctx.options.canary:
            self._done.set()
            return
        delay = self._delay()
        try:
            with anyio.move_on_after(delay):
                await self._tcp.wait_done()
        except BaseException:
            self._done.set()
            raise
        await self._canaries(delay)

    async def _canaries(self, delay: float) -> None:
        """The canary connects to the addresses still silent after ``delay``."""
        try:
            timeout = self._tcp.timeout
            silent = [
                a
                for a in self._tcp.pending()
                if self._pinger is None or not self._pinger.answered(a)
            ]
            ports = [p for p in CANARY_PORTS if p != self._ctx.dial_port]
            if not silent or not ports:
                return
            budget = self._ctx.budget(max(_MIN_CANARY_S, timeout - delay))
            self._planned = [(a, p) for a in silent for p in ports]
            self._started = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for address, port in self._planned:
                    tg.start_soon(self._canary, address, port, budget)
        finally:
            self._done.set()

    async def _canary(self, address: str, port: int, budget: float) -> None:
        attempt, sock = await connect_address(address, port, budget)
        if sock is not None:
            sock.close()
        self._attempts.append(attempt)

    async def wait_done(self) -> None:
        if self._timer is not None:
            # Armed on the loop and not fired: once every connect has its outcome there is
            # no silent address left for the canary (what run() finds after its wait).
            await self._tcp.wait_done()
            self.close()
        await self._done.wait()

    def attempts(self) -> list[AddressAttempt]:
        """Canary attempts so far. One still waiting when the diagnosis ended is unanswered
        within its budget (which ends with the connect's, cut to the total deadline)."""
        done = {(a.address, a.port) for a in self._attempts}
        out = list(self._attempts)
        elapsed = elapsed_ms(self._started) if self._started else None
        for address, port in self._planned:
            if (address, port) not in done:
                out.append(
                    AddressAttempt(
                        address=address,
                        port=port,
                        family="ipv6" if ":" in address else "ipv4",
                        outcome="timeout",
                        connect_ms=elapsed,
                    )
                )
        order = {key: i for i, key in enumerate(self._planned)}
        return sorted(out, key=lambda a: order.get((a.address, a.port), 0))

    def annotate(self, step: TcpStep) -> TcpStep:
        """The TCP step with the canary attempts (and whether the canary was allowed)."""
        return step.model_copy(
            update={"canary": tuple(self.attempts()), "canary_enabled": self._ctx.options.canary}
        )
