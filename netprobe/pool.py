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

import contextlib
import os
import resource
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
from anyio.abc import SocketStream

from ._errors import InvalidOption, InvalidTarget
from ._version import __version__
from .classify import classify
from .classify.database import db_error_code
from .describe import server_name
from .options import Options, make_options
from .probes._context import ProbeContext
from .probes._conversation import Conversation
from .probes._io import STREAM_ERRORS, elapsed_ms, stream_from_socket
from .probes.database import greeting_conversation, has_credentials, to_step
from .probes.db_login import DriverLogin
from .probes.dns import resolve
from .probes.tcp import connect_address
from .report import ConnectionOutcome, Fault, PoolConnection, PoolReport
from .steps import AddressAttempt, DatabaseResult, Step, TcpStep
from .target import Target, parse_target

__all__ = ["UNAUTHENTICATED_HOLD_CAP", "PoolConnection", "PoolReport", "probe_pool"]


#: Longest hold of an unauthenticated MySQL/MariaDB connection: half MariaDB's default
#: ``connect_timeout`` (10 s), so the server never times the handshake out (a connection error).
UNAUTHENTICATED_HOLD_CAP: dict[str, float] = {"mysql": 5.0, "postgresql": 30.0}

ProgressCallback = Callable[[PoolConnection], None]


async def probe_pool(
    target: str | Target,
    *,
    size: int = 10,
    hold: float = 0.0,
    options: Options | None = None,
    on_progress: ProgressCallback | None = None,
    **kwargs: Any,
) -> PoolReport:
    """Open ``size`` connections concurrently, hold them, validate each, close them cleanly.

    Never raises for a network fault: refusals and errors are counted in the report.
    With credentials in the target (``mysql://user:pw@db/app``) each connection is a real
    session validated with ``SELECT 1`` (or PING): the true pool check. Without, each is a
    greeting that proves the server accepts the connection (see the module docstring).

    Args:
        target: a database DSN, or ``host:port`` (3306, 5432, 6379 select the protocol).
        size: connections to hold at the same time (HikariCP's default pool size is 10).
        hold: seconds to keep them all open before validating again.
        options: an :class:`Options` to start from; ``**kwargs`` override its fields.
        on_progress: called with each connection as it opens or fails.

    Raises:
        InvalidTarget, InvalidOption: before any I/O.
    """
    parsed = parse_target(target)
    if parsed.protocol not in ("mysql", "postgresql", "redis", "tcp"):
        raise InvalidTarget(f"probe_pool needs a database or tcp target, not {parsed.scheme}://")
    if not 1 <= size <= 10_000:
        raise InvalidOption(f"size must be between 1 and 10000 (got {size})")
    if not 0 <= hold <= 3600:
        raise InvalidOption(f"hold must be between 0 and 3600 seconds (got {hold})")
    opts = make_options(options, **kwargs)
    return await _Pool(parsed, opts, size, hold, on_progress).run()


class _Slot:
    def __init__(self, index: int) -> None:
        self.index = index
        self.conn: PoolConnection = PoolConnection(index=index, outcome="not_started")
        self.conversation: Conversation | None = None
        self.login: DriverLogin | None = None
        self.stream: SocketStream | Any = None


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
        self.authenticated = has_credentials(ProbeContext(target=target, options=options))
        cap = UNAUTHENTICATED_HOLD_CAP.get(target.protocol)
        if not self.authenticated and cap is not None and hold > cap:
            self.notes.append(
                f"hold cut from {hold:g} s to {cap:g} s: an unauthenticated {target.protocol} "
                "connection held longer may be timed out by the server and counted as a "
                "connection error; give credentials to hold real sessions"
            )
            hold = cap
        self.hold = hold
        self.on_progress = on_progress
        self.slots = [_Slot(i + 1) for i in range(size)]
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
        address = dns.addresses[0]
        start = time.perf_counter()
        opened = anyio.Event()
        remaining = [self.size]
        validate_now = anyio.Event()
        fill_ms: list[float] = []

        def settled() -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                fill_ms.append(elapsed_ms(start))
                opened.set()

        async with anyio.create_task_group() as tg:
            for slot in self.slots:
                tg.start_soon(self._one, slot, address, settled, validate_now)
            await opened.wait()
            if self.hold > 0 and any(s.conn.outcome == "validated" for s in self.slots):
                await anyio.sleep(self.hold)
            validate_now.set()
        return self._report(fill_ms[0] if fill_ms else None, fd_limit, fd_open)

    async def _one(
        self,
        slot: _Slot,
        address: str,
        settled: Callable[[], None],
        validate_now: anyio.Event,
    ) -> None:
        try:
            try:
                await self._open(slot, address)
            finally:
                settled()
                if self.on_progress is not None:
                    self.on_progress(slot.conn)
            await validate_now.wait()
            if self.hold > 0 and slot.conn.outcome == "validated":
                await self._revalidate(slot)
        finally:
            await self._close(slot)

    async def _open(self, slot: _Slot, address: str) -> None:
        ctx = self._ctx()
        if self.authenticated:
            slot.login = DriverLogin(ctx)
            result = await slot.login.open()
            self._set_result(slot, ctx, result, None)
            return
        attempt, sock = await connect_address(
            address, self.target.port, ctx.budget(self.options.connect_timeout)
        )
        if sock is None:
            self._set_result(slot, ctx, None, attempt)
            return
        ctx.mark("tcp_connect")
        stream: Any = await stream_from_socket(sock)
        slot.stream = stream
        if self.target.tls:
            from .probes.tls import start_tls

            tls_step, tls_stream = await start_tls(ctx, stream)
            if tls_stream is None:
                tls_fault = classify(self.target, self.options, [_tcp(attempt), tls_step]).fault
                slot.conn = PoolConnection(
                    index=slot.index,
                    outcome="failed",
                    tcp=attempt,
                    connect_ms=attempt.connect_ms,
                    fault_code=tls_fault.code if tls_fault else None,
                    detail=tls_step.reason,
                )
                return
            slot.stream = stream = tls_stream
        if self.target.protocol == "tcp":
            slot.conn = PoolConnection(
                index=slot.index, outcome="validated", tcp=attempt, connect_ms=attempt.connect_ms
            )
            return
        slot.conversation = greeting_conversation(ctx, stream)
        result = await slot.conversation.open()
        self._set_result(slot, ctx, result, attempt)

    def _set_result(
        self,
        slot: _Slot,
        ctx: ProbeContext,
        result: DatabaseResult | None,
        attempt: AddressAttempt | None,
    ) -> None:
        steps: list[Step] = []
        if attempt is not None:
            steps.append(_tcp(attempt))
        if result is not None:
            steps.append(to_step(ctx, result))
        verdict = classify(self.target, self.options, steps)
        fault_code = verdict.fault.code if verdict.fault else None
        if fault_code is None:
            outcome: ConnectionOutcome = "validated"
        elif result is not None and result.outcome == "server_error":
            outcome = "refused"
        else:
            outcome = "failed"
        slot.conn = PoolConnection(
            index=slot.index,
            outcome=outcome,
            fault_code=fault_code,
            detail=_detail(result) if fault_code and result else
            (verdict.fault.summary if verdict.fault else None),
            connect_ms=attempt.connect_ms if attempt else None,
            greeting_ms=(result.greeting_ms or result.login_ms) if result else None,
            validation_ms=result.validation_ms if result else None,
            database=result,
            tcp=attempt,
        )  # fmt: skip

    async def _revalidate(self, slot: _Slot) -> None:
        if slot.login is not None:
            result = await slot.login.validate()
        elif slot.conversation is not None:
            result = await slot.conversation.validate()
        else:
            slot.conn = slot.conn.replace(held_ok=True)
            return
        ok = result.outcome in ("ready", "validated")
        slot.conn = slot.conn.replace(
            held_ok=ok, database=result, detail=None if ok else _detail(result)
        )

    async def _close(self, slot: _Slot) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(3.0):
            if slot.login is not None:
                await slot.login.close()
            if slot.conversation is not None:
                result = await slot.conversation.close()
                if slot.conn.database is not None:
                    slot.conn = slot.conn.replace(
                        database=slot.conn.database.replace(
                            closed_cleanly=result.closed_cleanly, notes=result.notes
                        )
                    )
            if slot.stream is not None:
                with contextlib.suppress(*STREAM_ERRORS):
                    await slot.stream.aclose()

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
        failed = [c for c in conns if c.outcome in ("refused", "failed")]
        counts = Counter(c.fault_code for c in failed if c.fault_code)
        common = counts.most_common(1)[0][0] if counts else None
        held_ok = (
            sum(1 for c in conns if c.held_ok) if self.hold > 0 and dns_fault is None else None
        )
        fault = dns_fault
        if fault is None and common is not None:
            first = next(c for c in failed if c.fault_code == common)
            fault = Fault(
                layer="l7" if common.startswith(("db.", "tls.", "l7.")) else _layer(common),
                code=common,
                summary=_summary(self.target, conns, opened, common),
                evidence=[],
                hints=[],
            )
            fault = _with_detail(fault, first)
        summary = fault.summary if fault else _summary(self.target, conns, opened, None)
        if held_ok is not None and held_ok < opened:
            summary += f" After holding {self.hold:g} s, only {held_ok} still answered."
        notes = list(self.notes)
        if not self.authenticated and self.target.protocol == "mysql":
            notes.append(
                "credential-less: each connection is a greeting held in the handshake, then "
                "answered for the probe user (1045); it proves the server accepts this many "
                "sockets, not that an ordinary user may log in this many times (MariaDB checks "
                "max_connections for ordinary users at login and keeps one extra slot for "
                "administrators)"
            )
        ok = fault is None and opened == self.size and (held_ok is None or held_ok == opened)
        return PoolReport(
            ok=ok,
            target=self.target,
            requested=self.size,
            opened=opened,
            authenticated=self.authenticated,
            hold_s=self.hold,
            held_ok=held_ok,
            time_to_fill_ms=fill_ms,
            summary=summary,
            fault=fault,
            first_failure=failed[0].index if failed else None,
            most_common_fault=common,
            fd_limit=fd_limit,
            fd_open=fd_open,
            fd_headroom=(fd_limit - fd_open) if fd_limit is not None and fd_open is not None
            else None,
            notes=notes,
            connections=conns,
            started_at=self.started_at,
            netprobe_version=__version__,
        )  # fmt: skip


def _tcp(attempt: AddressAttempt) -> TcpStep:
    ok = attempt.outcome == "established"
    return TcpStep(
        status="ok" if ok else "failed",
        timeout_s=0.0,
        attempts=[attempt],
        connected_to=attempt.endpoint if ok else None,
        reason=None if ok else attempt.outcome,
    )


def _layer(code: str) -> Literal["dns", "l3", "l4", "l7", "local"]:
    from .report import FAULT_CODES

    return FAULT_CODES[code][0] if code in FAULT_CODES else "l7"


def _detail(r: DatabaseResult) -> str:
    """``MariaDB 1040 Too many connections (max_connections reached)``."""
    mapped = db_error_code(r)
    meaning = f" ({mapped[1]})" if mapped else ""
    if r.outcome == "server_error":
        text = r.error_message or ""
        if r.protocol == "redis":
            return f"{server_name(r)} -{text}{meaning}"
        return f"{server_name(r)} {r.error_code} {text}{meaning}"
    if r.outcome == "mismatch":
        return f"not {server_name(r)}: {r.looks_like}"
    if r.outcome == "timeout":
        return f"no answer from {server_name(r)} during the {r.phase}"
    return f"{server_name(r)}: {r.outcome} {r.error_message or ''}".strip()


def _ranges(indices: list[int]) -> str:
    out: list[str] = []
    i = 0
    while i < len(indices):
        j = i
        while j + 1 < len(indices) and indices[j + 1] == indices[j] + 1:
            j += 1
        out.append(str(indices[i]) if i == j else f"{indices[i]}–{indices[j]}")
        i = j + 1
    return ", ".join(out)


_VERBS = {
    "db.too_many_connections": "were refused by the server",
    "db.host_blocked": "were refused by the server",
    "db.access_denied": "were denied by the server",
    "db.auth_failed": "failed to log in",
    "db.not_ready": "found the server not ready",
    "db.greeting_timeout": "got no greeting in time",
}


def _summary(target: Target, conns: list[PoolConnection], opened: int, common: str | None) -> str:
    n = len(conns)
    text = f"{opened} of {n} opened"
    if common is None:
        return text + f" and validated at the same time on {target.netloc}."
    idx = [c.index for c in conns if c.fault_code == common]
    verb = _VERBS.get(common, f"failed ({common})")
    first = next(c for c in conns if c.fault_code == common)
    # An error packet sent instead of the greeting does not name the product: take it from
    # a sibling connection that got a greeting.
    known = next((c.database.server for c in conns if c.database and c.database.server), None)
    db = first.database
    if db is not None and db.server is None and known is not None:
        db = db.replace(server=known)
    # A connection that failed before any database byte carries its fault's summary, which
    # ends with its own full stop.
    detail = _detail(db) if db else (first.detail or common).rstrip(".")
    text += f"; {_ranges(idx)} {verb}: {detail}"
    others = [c for c in conns if c.fault_code not in (None, common)]
    if others:
        text += f"; {len(others)} more failed otherwise"
    return text + "."


def _with_detail(fault: Fault, first: PoolConnection) -> Fault:
    from .report import Evidence

    ev = Evidence(
        step="application" if first.database else "tcp",
        observation=f"connection {first.index}: {first.detail or first.outcome}",
        data={"index": first.index, "outcome": first.outcome, "fault_code": first.fault_code},
    )
    return fault.replace(evidence=(ev,))


def _fd_usage() -> tuple[int | None, int | None]:
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        opened = len(os.listdir("/proc/self/fd"))
    except (OSError, ValueError):
        return None, None
    return (soft if soft != resource.RLIM_INFINITY else None), opened
