"""Pool probing: can ``size`` connections be opened *at the same time*, like a pool filling?

HikariCP opens ``maximumPoolSize`` (10) connections at start; when a few fail, its users see
only "Connection is not available, request timed out after 30000ms". ``probe_pool`` opens
``size`` connections concurrently, holds them all open at once, validates each, optionally
holds them ``hold`` seconds and validates again (to catch middleboxes that silently drop idle
connections), then closes every one of them cleanly, on success, error and cancellation.

Without credentials a held connection is an *unauthenticated* one. MariaDB counts a client
that never finishes the handshake as a connection error (toward ``max_connect_errors``, then
1129 Host blocked), and drops it after ``connect_timeout`` (10 s by default). So a
credential-less MySQL hold is capped at :data:`UNAUTHENTICATED_HOLD_CAP` seconds and every
connection finishes its handshake (1045 for the probe user, which counts no error).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Unpack

import anyio

from ._errors import InvalidOption, InvalidTarget
from ._version import __version__
from .classify import classify
from .classify.pool import (
    connection_verdict,
    held_detail,
    idle_kill,
    idle_search_verdict,
    pool_verdict,
)
from .options import Options, OptionsKwargs, make_options
from .probes._context import ProbeContext
from .probes._io import elapsed_ms
from .probes.connection import Connection
from .probes.database import has_credentials, to_step
from .probes.db_login import DriverSession, require_driver
from .probes.dns import resolve
from .report import Fault, IdleSearch, IdleTrial, PoolConnection, PoolReport
from .steps import AddressAttempt, Step, TcpStep
from .target import Target, parse_target

__all__ = [
    "UNAUTHENTICATED_HOLD_CAP",
    "PoolConnection",
    "PoolReport",
    "idle_schedule",
    "probe_pool",
]


#: Longest hold of an unauthenticated MySQL/MariaDB connection: half MariaDB's default
#: ``connect_timeout`` (10 s), so the server never times the handshake out (a connection error).
UNAUTHENTICATED_HOLD_CAP: dict[str, float] = {"mysql": 5.0, "postgresql": 30.0}

ProgressCallback = Callable[[PoolConnection], None]


async def probe_pool(
    target: str | Target,
    *,
    size: int = 10,
    hold: float = 0.0,
    find_idle_timeout: bool = False,
    max_idle: float = 600.0,
    options: Options | None = None,
    on_progress: ProgressCallback | None = None,
    **kwargs: Unpack[OptionsKwargs],
) -> PoolReport:
    """Open ``size`` connections concurrently, hold them, validate each, close them cleanly.

    Never raises for a network fault: refusals and errors are counted in the report.
    With credentials in the target (``mysql://user:pw@db/app``) each connection is a real
    session validated with ``SELECT 1`` (or PING): the true pool check. Without, each is a
    greeting that proves the server accepts the connection (see the module docstring).

    Args:
        target: a database DSN, ``host:port`` (3306, 5432, 6379 select the protocol), or a
            ``grpc://`` / ``grpcs://`` target (each connection an HTTP/2 connection with its
            health check; after the hold, another check on the same connection).
        size: connections to hold at the same time (HikariCP's default pool size is 10).
        hold: seconds to keep them all open before validating again.
        find_idle_timeout: search the path's idle timeout instead: one connection per idle
            of :func:`idle_schedule` (1, 2, 4... s up to ``max_idle``), all opened at once,
            each checked on the wire (a keepalive probe) once it has idled its time; the
            longer ones are closed as soon as a shorter one died. ``size`` and ``hold`` are
            not used. The report's ``idle_search`` has the bracket.
        max_idle: the longest idle the search tries (1 to 3600 s).
        options: an :class:`Options` to start from; ``**kwargs`` override its fields.
        on_progress: called with each connection as it opens or fails.

    Raises:
        InvalidTarget, InvalidOption: before any I/O.
    """
    parsed = parse_target(target)
    if parsed.protocol not in ("mysql", "postgresql", "redis", "tcp", "grpc"):
        raise InvalidTarget(
            f"probe_pool needs a database, grpc or tcp target, not {parsed.scheme}://"
        )
    if not 1 <= size <= 10_000:
        raise InvalidOption(f"size must be between 1 and 10000 (got {size})")
    if not 0 <= hold <= 3600:
        raise InvalidOption(f"hold must be between 0 and 3600 seconds (got {hold})")
    if not 1 <= max_idle <= 3600:
        raise InvalidOption(f"max_idle must be between 1 and 3600 seconds (got {max_idle})")
    opts = make_options(options, **kwargs)
    require_driver(parsed)
    if find_idle_timeout:
        return await _IdleSearch(parsed, opts, max_idle, on_progress).run()
    return await _Pool(parsed, opts, size, hold, on_progress).run()


def idle_schedule(max_idle: float) -> list[float]:
    """The idles an idle-timeout search tries: 1, 2, 4... s below ``max_idle``, then it."""
    out: list[float] = []
    idle = 1.0
    while idle < max_idle:
        out.append(idle)
        idle *= 2
    out.append(float(max_idle))
    return out


class _Slot:
    def __init__(self, index: int) -> None:
        self.index = index
        self.conn: PoolConnection = PoolConnection(index=index, outcome="not_started")


class _Pool:
    def __init__(
        self,
        target: Target,
        options: Options,
        size: int,
        hold: float,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.target = target
        self.options = options
        self.size = size
        self.notes: list[str] = []
        self.with_credentials = has_credentials(ProbeContext(target=target, options=options))
        cap = UNAUTHENTICATED_HOLD_CAP.get(target.protocol)
        if not self.with_credentials and cap is not None and hold > cap:
            self.notes.append(
                f"hold cut from {hold:g} s to {cap:g} s: an unauthenticated {target.protocol} "
                "connection held longer may be timed out by the server and counted as a "
                "connection error; give credentials to hold real sessions"
            )
            hold = cap
        self.hold = hold
        self.on_progress = on_progress
        self.slots = [_Slot(i + 1) for i in range(size)]
        self.addresses: list[str] = []
        self.started_at = datetime.now(UTC)

    def _ctx(self) -> ProbeContext:
        # Each connection gets its own clock: the total deadline covers one connection's
        # conversation, not the hold.
        return ProbeContext(target=self.target, options=self.options)

    async def run(self) -> PoolReport:
        fd_limit, fd_open = _fd_usage()
        if fd_limit is not None and fd_open is not None and self.size > fd_limit - fd_open:
            self.notes.append(
                f"only {fd_limit - fd_open} file descriptors are free (ulimit -n {fd_limit}): "
                f"fewer than the {self.size} connections requested"
            )
        ctx = self._ctx()
        dns = await resolve(ctx)
        if not dns.addresses:
            verdict = classify(self.target, self.options, [dns])
            return self._report(None, fd_limit, fd_open, dns_fault=verdict.fault)
        # Every connection tries every address, as a diagnosis does: the first established
        # is kept.
        self.addresses = list(dns.addresses)
        start = time.perf_counter()
        opened = anyio.Event()
        remaining = [self.size]
        validate_now = anyio.Event()
        fill_ms: list[float] = []

        def settled(slot: _Slot) -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                fill_ms.append(elapsed_ms(start))
                opened.set()
            if self.on_progress is not None:
                self.on_progress(slot.conn)

        async with anyio.create_task_group() as tg:
            for slot in self.slots:
                one = self._session if self.with_credentials else self._connection
                tg.start_soon(one, slot, settled, validate_now)
            await opened.wait()
            if self.hold > 0 and any(s.conn.outcome == "validated" for s in self.slots):
                await anyio.sleep(self.hold)
            validate_now.set()
        return self._report(fill_ms[0] if fill_ms else None, fd_limit, fd_open)

    async def _connection(
        self, slot: _Slot, settled: Callable[[_Slot], None], validate_now: anyio.Event
    ) -> None:
        """One connection through the rungs (the per-connection probe), held until the
        pool is full, validated again after the hold, closed with the protocol's goodbye."""
        ctx = self._ctx()
        async with Connection(ctx, self.addresses) as conn:
            try:
                await conn.open()
                slot.conn = self._verdict(slot, conn.steps())
            finally:
                settled(slot)
            await validate_now.wait()
            if self.hold > 0 and slot.conn.outcome == "validated":
                await self._after_hold(slot, conn, ctx)
        closed = conn.application.database if conn.application is not None else None
        if closed is not None and slot.conn.database is not None:
            slot.conn = slot.conn.replace(
                database=slot.conn.database.replace(
                    closed_cleanly=closed.closed_cleanly, notes=closed.notes
                )
            )

    async def _after_hold(self, slot: _Slot, conn: Connection, ctx: ProbeContext) -> None:
        """The held connection, checked on the wire: a keepalive probe that every middlebox
        must pass (for any protocol), then the protocol's own round trip when it has one."""
        # The checks after the hold have a deadline of their own (the opening's is spent
        # after a hold as long as --timeout).
        ctx.restart_clock()
        check = await conn.check_transport(ctx.budget(self.options.read_timeout))
        slot.conn = slot.conn.replace(hold_check=check)
        killed = idle_kill(check) if check is not None else None
        if killed is not None:
            slot.conn = slot.conn.replace(
                held_ok=False, held_fault_code=killed.code, detail=killed.detail
            )
            return
        step = await conn.validate()
        db = step.database if step is not None else None
        if step is not None and step.grpc is not None:
            # Another health check on the held HTTP/2 connection (a new stream).
            held = step.status == "ok"
            slot.conn = slot.conn.replace(held_ok=held, detail=None if held else step.reason)
        elif db is None:
            slot.conn = slot.conn.replace(held_ok=True)
        else:
            detail = held_detail(db)
            slot.conn = slot.conn.replace(held_ok=detail is None, database=db, detail=detail)

    async def _session(
        self, slot: _Slot, settled: Callable[[_Slot], None], validate_now: anyio.Event
    ) -> None:
        """One real session, logged in by the database's driver (credentials given)."""
        ctx = self._ctx()
        login = DriverSession(ctx)
        try:
            try:
                result = await login.open()
                slot.conn = self._verdict(slot, [to_step(ctx, result)])
            finally:
                settled(slot)
            await validate_now.wait()
            if self.hold > 0 and slot.conn.outcome == "validated":
                ctx.restart_clock()
                result = await login.validate()
                detail = held_detail(result)
                slot.conn = slot.conn.replace(
                    held_ok=detail is None, database=result, detail=detail
                )
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(3.0):
                await login.close()

    def _verdict(self, slot: _Slot, steps: list[Step]) -> PoolConnection:
        verdict = connection_verdict(self.target, self.options, steps)
        tcp = next((s for s in steps if isinstance(s, TcpStep)), None)
        attempt = _kept_attempt(tcp) if tcp is not None else None
        app = next((s for s in steps if s.name == "application"), None)
        result = getattr(app, "database", None)
        return PoolConnection(
            index=slot.index,
            outcome=verdict.outcome,
            fault_code=verdict.fault_code,
            detail=verdict.detail,
            connect_ms=attempt.connect_ms if attempt else None,
            greeting_ms=(result.greeting_ms or result.login_ms) if result else None,
            validation_ms=result.validation_ms if result else None,
            database=result,
            tcp=attempt,
        )

    def _report(
        self,
        fill_ms: float | None,
        fd_limit: int | None,
        fd_open: int | None,
        *,
        dns_fault: Fault | None = None,
    ) -> PoolReport:
        conns = [s.conn for s in self.slots]
        opened = sum(1 for c in conns if c.outcome == "validated")
        held_ok = (
            sum(1 for c in conns if c.held_ok) if self.hold > 0 and dns_fault is None else None
        )
        verdict = pool_verdict(
            self.target,
            conns,
            requested=self.size,
            hold_s=self.hold,
            held_ok=held_ok,
            dns_fault=dns_fault,
        )
        notes = list(self.notes)
        if not self.with_credentials and self.target.protocol == "mysql":
            notes.append(
                "credential-less: each connection is a greeting held in the handshake, then "
                "answered for the probe user (1045); it proves the server accepts this many "
                "sockets, not that an ordinary user may log in this many times (MariaDB checks "
                "max_connections for ordinary users at login and keeps one extra slot for "
                "administrators)"
            )
        return PoolReport(
            ok=verdict.ok,
            target=self.target,
            requested=self.size,
            opened=opened,
            with_credentials=self.with_credentials,
            hold_s=self.hold,
            held_ok=held_ok,
            time_to_fill_ms=fill_ms,
            summary=verdict.summary,
            fault=verdict.fault,
            first_failure=verdict.first_failure,
            most_common_fault=verdict.most_common_fault,
            syn_retransmitted=verdict.syn_retransmitted,
            fd_limit=fd_limit,
            fd_open=fd_open,
            fd_headroom=(fd_limit - fd_open) if fd_limit is not None and fd_open is not None
            else None,
            notes=notes,
            connections=conns,
            started_at=self.started_at,
            netprobe_version=__version__,
        )  # fmt: skip


class _IdleSearch(_Pool):
    """One connection per idle of the schedule, opened at once; each checked on the wire
    after its idle; the longer ones closed once a shorter one died."""

    def __init__(
        self,
        target: Target,
        options: Options,
        max_idle: float,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.schedule = idle_schedule(max_idle)
        self.max_idle = max_idle
        super().__init__(target, options, len(self.schedule), 0.0, on_progress)
        self.trials: dict[int, IdleTrial] = {}
        self.scopes: dict[int, anyio.CancelScope] = {}
        if target.protocol == "mysql" and not self.with_credentials:
            self.notes.append(
                "a credential-less MySQL connection is held in its handshake: the server "
                "closes it after its connect_timeout (10 s by default), which this search "
                "would read as an idle timeout; use a tcp:// target for the path alone"
            )

    async def run(self) -> PoolReport:
        ctx = self._ctx()
        dns = await resolve(ctx)
        if not dns.addresses:
            verdict = classify(self.target, self.options, [dns])
            return self._report(None, None, None, dns_fault=verdict.fault)
        self.addresses = list(dns.addresses)
        async with anyio.create_task_group() as tg:
            for slot, idle in zip(self.slots, self.schedule, strict=True):
                scope = anyio.CancelScope()
                self.scopes[slot.index] = scope
                tg.start_soon(self._trial, slot, idle, scope)
        trials = tuple(
            self.trials.get(s.index, IdleTrial(idle_s=idle, outcome="not_needed"))
            for s, idle in zip(self.slots, self.schedule, strict=True)
        )
        alive = [t.idle_s for t in trials if t.outcome == "alive"]
        dead = [t for t in trials if t.outcome in ("silence", "reset", "closed")]
        first_dead = min(dead, key=lambda t: t.idle_s) if dead else None
        survived = [i for i in alive if first_dead is None or i < first_dead.idle_s]
        search = IdleSearch(
            max_idle_s=self.max_idle,
            survived_s=max(survived) if survived else None,
            died_s=first_dead.idle_s if first_dead else None,
            death=first_dead.outcome if first_dead else None,
            trials=trials,
        )
        return self._search_report(search)

    async def _trial(self, slot: _Slot, idle: float, scope: anyio.CancelScope) -> None:
        ctx = self._ctx()
        with scope:
            async with Connection(ctx, self.addresses) as conn:
                await conn.open()
                slot.conn = self._verdict(slot, conn.steps())
                if self.on_progress is not None:
                    self.on_progress(slot.conn)
                if slot.conn.outcome != "validated":
                    self.trials[slot.index] = IdleTrial(idle_s=idle, outcome="not_opened")
                    return
                await anyio.sleep(idle)
                ctx.restart_clock()
                check = await conn.check_transport(ctx.budget(self.options.read_timeout))
                if check is None:
                    return
                self.trials[slot.index] = IdleTrial(
                    idle_s=idle, outcome=check.outcome, waited_ms=check.waited_ms
                )
                killed = idle_kill(check)
                slot.conn = slot.conn.replace(
                    held_ok=killed is None,
                    hold_check=check,
                    held_fault_code=killed.code if killed else None,
                    detail=killed.detail if killed else slot.conn.detail,
                )
                if killed is not None:
                    # A longer idle would only die the same way: stop waiting for it.
                    for other, longer in zip(self.slots, self.schedule, strict=True):
                        if longer > idle:
                            self.scopes[other.index].cancel()

    def _search_report(self, search: IdleSearch) -> PoolReport:
        conns = [s.conn for s in self.slots]
        verdict = idle_search_verdict(self.target, search, conns)
        opened = sum(1 for c in conns if c.outcome == "validated")
        return PoolReport(
            ok=verdict.ok,
            target=self.target,
            requested=self.size,
            opened=opened,
            with_credentials=False,
            hold_s=search.died_s or search.survived_s or 0.0,
            held_ok=sum(1 for c in conns if c.held_ok),
            summary=verdict.summary,
            fault=verdict.fault,
            first_failure=verdict.first_failure,
            most_common_fault=verdict.most_common_fault,
            notes=tuple(self.notes),
            connections=tuple(conns),
            idle_search=search,
            started_at=self.started_at,
            netprobe_version=__version__,
        )


def _kept_attempt(tcp: TcpStep) -> AddressAttempt | None:
    """The attempt that speaks for a connection: the address kept, else the first tried."""
    for attempt in tcp.attempts:
        if attempt.endpoint == tcp.connected_to:
            return attempt
    return tcp.attempts[0] if tcp.attempts else None


def _fd_usage() -> tuple[int | None, int | None]:
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        opened = len(os.listdir("/proc/self/fd"))
    except (OSError, ValueError):
        return None, None
    return (soft if soft != resource.RLIM_INFINITY else None), opened
