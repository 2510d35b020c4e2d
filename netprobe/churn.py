"""Churn probing: do reconnects from just-closed source ports get through?

Under heavy connection churn a client reuses source ports quickly. A stateful firewall or
NAT that still holds the session of a closed 4-tuple drops the new SYN that reuses it: from
the application, intermittent connect timeouts at retransmission-timeout multiples.
``probe_churn`` makes that happen on purpose, in pairs: a connect from a port the kernel
picks (the control), closed at once with an RST, then a reconnect from that same source
port to the same destination. Fresh ports that connect while reused ones time out (or need
a retransmitted SYN) is ``l4.reused_port_dropped``.

Bounded: ``pairs`` pairs (two connects each), started at most ``rate`` pairs a second, and
no pair is started that could not finish within ``max_time`` seconds; at most
:data:`MAX_IN_FLIGHT` pairs run at once. See probes/churn.py for why the close is an RST.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Unpack

import anyio

from ._errors import InvalidOption, InvalidTarget
from ._version import __version__
from .classify import classify
from .classify.churn import churn_stats, churn_verdict
from .options import Options, OptionsKwargs, make_options
from .probes._context import ProbeContext
from .probes.churn import ChurnConnect, churn_connect
from .probes.dns import resolve
from .report import ChurnAttempt, ChurnReport, Fault
from .target import Target, parse_target

__all__ = ["MAX_IN_FLIGHT", "ChurnAttempt", "ChurnReport", "probe_churn"]

#: Pairs in flight at once at most (each holds at most one socket at a time).
MAX_IN_FLIGHT = 16

ProgressCallback = Callable[[ChurnAttempt], None]


async def probe_churn(
    target: str | Target,
    *,
    pairs: int = 20,
    rate: float = 20.0,
    max_time: float = 30.0,
    options: Options | None = None,
    on_progress: ProgressCallback | None = None,
    **kwargs: Unpack[OptionsKwargs],
) -> ChurnReport:
    """Open and close connections quickly; reconnect from the just-closed source ports.

    Never raises for a network fault: timeouts and refusals are counted in the report.
    Each connect waits at most ``connect_timeout`` (an option, 3 s by default).

    Args:
        target: ``host:port`` or any URL with a port (only TCP is used).
        pairs: fresh-then-reused connect pairs (1 to 1000).
        rate: pairs started per second at most (0.1 to 1000).
        max_time: seconds the whole probe may take (1 to 600); pairs that could not finish
            in time are not started.
        options: an :class:`Options` to start from; ``**kwargs`` override its fields.
        on_progress: called with each connect as it ends.

    Raises:
        InvalidTarget, InvalidOption: before any I/O.
    """
    parsed = parse_target(target)
    if not parsed.port:
        raise InvalidTarget(f"probe_churn needs a target with a TCP port, not {parsed.url!r}")
    if not 1 <= pairs <= 1000:
        raise InvalidOption(f"pairs must be between 1 and 1000 (got {pairs})")
    if not 0.1 <= rate <= 1000:
        raise InvalidOption(f"rate must be between 0.1 and 1000 pairs a second (got {rate})")
    if not 1 <= max_time <= 600:
        raise InvalidOption(f"max_time must be between 1 and 600 seconds (got {max_time})")
    opts = make_options(options, **kwargs)
    if 2 * opts.connect_timeout > max_time:
        raise InvalidOption(
            f"max_time ({max_time:g} s) must leave room for one pair: at least twice the "
            f"connect timeout ({opts.connect_timeout:g} s)"
        )
    return await _Churn(parsed, opts, pairs, rate, max_time, on_progress).run()


class _Churn:
    def __init__(
        self,
        target: Target,
        options: Options,
        pairs: int,
        rate: float,
        max_time: float,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.target = target
        self.options = options
        self.pairs = pairs
        self.rate = rate
        self.max_time = max_time
        self.on_progress = on_progress
        self.attempts: list[ChurnAttempt] = []
        #: Source ports closed toward the destination so far.
        self.closed_ports: set[int] = set()
        self.notes: list[str] = []
        self.started_at = datetime.now(UTC)

    async def run(self) -> ChurnReport:
        start = time.perf_counter()
        ctx = ProbeContext(target=self.target, options=self.options)
        dns = await resolve(ctx)
        if not dns.addresses:
            verdict = classify(self.target, self.options, [dns])
            return self._report(None, start, dns_fault=verdict.fault)
        address = dns.addresses[0]
        timeout = self.options.connect_timeout
        limiter = anyio.Semaphore(MAX_IN_FLIGHT)
        started = 0
        async with anyio.create_task_group() as tg:
            for i in range(self.pairs):
                await limiter.acquire()
                # Each pair takes two connect timeouts at most: start none that could not end.
                if time.perf_counter() - start + 2 * timeout > self.max_time:
                    limiter.release()
                    break
                tg.start_soon(self._pair, address, timeout, limiter)
                started += 1
                if i + 1 < self.pairs:
                    await anyio.sleep(1.0 / self.rate)
        if started < self.pairs:
            self.notes.append(
                f"{started} of {self.pairs} pairs started: the next could not have ended "
                f"within max_time ({self.max_time:g} s)"
            )
        return self._report(address, start)

    async def _pair(self, address: str, connect_timeout: float, limiter: anyio.Semaphore) -> None:
        try:
            first = await churn_connect(address, self.target.port, connect_timeout=connect_timeout)
            self._record(first)
            if first.outcome != "established" or first.local_ip is None or not first.local_port:
                return
            self.closed_ports.add(first.local_port)
            again = await churn_connect(
                address,
                self.target.port,
                connect_timeout=connect_timeout,
                source_port=first.local_port,
            )
            self._record(again, reused=True)
            if again.local_port:
                self.closed_ports.add(again.local_port)
        finally:
            limiter.release()

    def _record(self, c: ChurnConnect, *, reused: bool = False) -> None:
        # A port the kernel picked that this probe had already closed is a reuse too.
        kind = "reused" if reused or (c.local_port in self.closed_ports) else "fresh"
        attempt = ChurnAttempt(
            index=len(self.attempts) + 1,
            kind=kind,
            local_port=c.local_port,
            outcome=c.outcome,
            connect_ms=round(c.connect_ms, 3) if c.connect_ms is not None else None,
            syns_sent=c.syns_sent,
            error=c.error,
        )
        self.attempts.append(attempt)
        if self.on_progress is not None:
            self.on_progress(attempt)

    def _report(
        self, address: str | None, start: float, *, dns_fault: Fault | None = None
    ) -> ChurnReport:
        fresh = churn_stats([a for a in self.attempts if a.kind == "fresh"])
        reused = churn_stats([a for a in self.attempts if a.kind == "reused"])
        verdict = churn_verdict(
            self.target,
            fresh,
            reused,
            attempts=self.attempts,
            timeout_s=self.options.connect_timeout,
        )
        fault = dns_fault if dns_fault is not None else verdict.fault
        bind_failed = sum(1 for a in self.attempts if a.outcome == "bind_failed")
        if bind_failed:
            self.notes.append(
                f"{bind_failed} reconnects could not bind their source port again (another "
                "socket of this host took it first): not counted"
            )
        return ChurnReport(
            ok=fault is None and verdict.ok,
            target=self.target,
            address=address,
            pairs_requested=self.pairs,
            fresh=fresh,
            reused=reused,
            summary=dns_fault.summary if dns_fault is not None else verdict.summary,
            fault=fault,
            notes=tuple(self.notes),
            duration_ms=round((time.perf_counter() - start) * 1000.0, 3),
            attempts=tuple(self.attempts),
            started_at=self.started_at,
            netprobe_version=__version__,
        )
