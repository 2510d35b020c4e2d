"""The engine behind health endpoints and metrics: a TTL cache refreshed single-flight.

Kubelets, load balancers and curious humans may hit a health endpoint a thousand times a
second; the dependencies must not see a thousand diagnoses. Each dependency keeps its last
report; when that is older than ``ttl`` the first request starts one background diagnosis
and every request (that one included) waits for it at most ``budget`` seconds. A request
that runs out of budget gets the last known result, marked stale, never a hang.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import anyio

from .._errors import InvalidOption
from ..diagnose import diagnose as _diagnose
from ..options import Options, make_options
from ..report import Report
from ..target import Target, parse_target

__all__ = [
    "CheckResult",
    "Dependency",
    "DiagnoseFn",
    "HealthChecker",
    "HealthResult",
    "HealthStatus",
    "public_url",
]

logger = logging.getLogger("netprobe.health")

#: How a dependency is diagnosed; injectable (tests count the calls).
DiagnoseFn = Callable[[Target, Options], Awaitable[Report]]
HealthStatus = Literal["ok", "degraded", "fail"]
CheckStatus = Literal["ok", "fail", "pending", "error"]


async def _default_diagnose(target: Target, options: Options) -> Report:
    return await _diagnose(target, options=options)


class Dependency:
    """One dependency of a service: what to diagnose, its name, and whether it is critical.

    A critical dependency that fails makes the service not ready (HTTP 503); a non-critical
    one only degrades the status. Validated when built, before any I/O.
    """

    __slots__ = ("critical", "name", "options", "target")

    def __init__(
        self,
        target: str | Target,
        *,
        name: str | None = None,
        critical: bool = True,
        options: Options | None = None,
        **kwargs: Any,
    ) -> None:
        self.target: Target = parse_target(target)
        self.name: str = name or f"{self.target.scheme}://{self.target.netloc}"
        self.critical = critical
        self.options: Options | None = (
            make_options(options, **kwargs) if options is not None or kwargs else None
        )

    def __repr__(self) -> str:
        return f"Dependency({self.target.url!r}, name={self.name!r}, critical={self.critical})"


@dataclass
class _State:
    dependency: Dependency
    options: Options
    report: Report | None = None
    error: str | None = None
    checked_at: float | None = None  # monotonic
    checked_wall: datetime | None = None
    refreshing: anyio.Event | None = None
    refresh_started: float = 0.0
    diagnoses: int = 0


@dataclass(frozen=True)
class CheckResult:
    """One dependency's last known result."""

    dependency: Dependency
    status: CheckStatus
    report: Report | None
    stale: bool
    age_s: float | None
    checked_at: datetime | None
    diagnoses: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the last diagnosis of this dependency was healthy."""
        return self.status == "ok"


@dataclass(frozen=True)
class HealthResult:
    """Every dependency's result and the overall status."""

    checks: list[CheckResult] = field(default_factory=list)

    @property
    def status(self) -> HealthStatus:
        """``fail`` if a critical dependency is down, ``degraded`` if only others are, else ok."""
        if any(c.dependency.critical and not c.ok for c in self.checks):
            return "fail"
        if any(not c.ok for c in self.checks):
            return "degraded"
        return "ok"

    @property
    def ready(self) -> bool:
        """True when every critical dependency is healthy (non-critical ones may fail)."""
        return self.status != "fail"

    @property
    def stale(self) -> bool:
        """True when any result is a cached one past its TTL (the refresh is overdue)."""
        return any(c.stale for c in self.checks)


class HealthChecker:
    """Cached, single-flight diagnoses of a fixed list of dependencies.

    Args:
        dependencies: targets (strings or :class:`Target`) or :class:`Dependency` objects.
            Fixed at construction: nothing from a request ever becomes a target.
        ttl: how long a result is fresh, seconds. At most one diagnosis per dependency
            runs per ``ttl``.
        budget: how long a check waits for fresh results before answering with the last
            known ones (marked stale), seconds. Kubernetes' default probe timeout is 1 s.
        diagnose: the diagnosis function, ``(target, options) -> Report``; defaults to
            :func:`netprobe.diagnose`.
        options: an :class:`Options` for every dependency; ``**kwargs`` override fields.
    """

    def __init__(
        self,
        dependencies: Iterable[str | Target | Dependency],
        *,
        ttl: float = 10.0,
        budget: float = 0.8,
        diagnose: DiagnoseFn | None = None,
        options: Options | None = None,
        **kwargs: Any,
    ) -> None:
        if not ttl > 0:
            raise InvalidOption(f"ttl must be greater than 0 (got {ttl!r})")
        if not budget > 0:
            raise InvalidOption(f"budget must be greater than 0 (got {budget!r})")
        base = make_options(options, **kwargs)
        deps = [d if isinstance(d, Dependency) else Dependency(d) for d in dependencies]
        names = [d.name for d in deps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidOption(f"dependency names must be unique: {', '.join(duplicates)}")
        self.ttl = ttl
        self.budget = budget
        self._diagnose: DiagnoseFn = diagnose or _default_diagnose
        self._states = [_State(d, d.options or base) for d in deps]
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = False

    @property
    def dependencies(self) -> list[Dependency]:
        """The fixed dependencies this checker diagnoses, in order."""
        return [s.dependency for s in self._states]

    @property
    def diagnoses(self) -> dict[str, int]:
        """How many diagnoses each dependency has started: the single-flight proof."""
        return {s.dependency.name: s.diagnoses for s in self._states}

    async def check(self, *, budget: float | None = None) -> HealthResult:
        """Fresh results where they can be had within ``budget``, else the last known ones.

        With a last known result, a request waits no later than ``budget`` after the refresh
        started: once a refresh is overdue (a hanging dependency), later requests get the
        stale result at once instead of each waiting out its own budget.
        """
        budget = self.budget if budget is None else budget
        now = time.monotonic()
        waits: list[tuple[anyio.Event, float]] = []
        for s in self._states:
            event = self._refresh_if_due(s)
            if event is None:
                continue
            known = s.report is not None or s.error is not None
            until = min(now, s.refresh_started) + budget if known else now + budget
            waits.append((event, until))
        for event, until in waits:
            with anyio.move_on_after(until - time.monotonic()):
                await event.wait()
        return self.snapshot()

    def kick(self) -> None:
        """Start the refreshes that are due, without waiting; a no-op outside an event loop."""
        if not _in_event_loop():
            return
        for s in self._states:
            self._refresh_if_due(s)

    def snapshot(self) -> HealthResult:
        """The last known results, without any I/O."""
        now = time.monotonic()
        checks = [self._result(s, now) for s in self._states]
        result = HealthResult(checks)
        if result.ready and all(c.status != "pending" for c in checks):
            self.started = True
        return result

    async def aclose(self) -> None:
        """Cancel the diagnoses in flight (call it when the service shuts down)."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except asyncio.CancelledError:
                if not t.cancelled():  # pragma: no cover - our own cancellation, not the task's
                    raise

    def _result(self, s: _State, now: float) -> CheckResult:
        age = None if s.checked_at is None else now - s.checked_at
        status: CheckStatus
        if s.report is None and s.error is None:
            status = "pending"
        elif s.error is not None:
            status = "error"
        else:
            assert s.report is not None
            status = "ok" if s.report.ok else "fail"
        return CheckResult(
            dependency=s.dependency,
            status=status,
            report=s.report,
            stale=age is not None and age >= self.ttl,
            age_s=None if age is None else round(age, 3),
            checked_at=s.checked_wall,
            diagnoses=s.diagnoses,
            error=s.error,
        )

    def _refresh_if_due(self, s: _State) -> anyio.Event | None:
        """The event to wait on if the result is not fresh; starts a refresh if none runs."""
        now = time.monotonic()
        if s.checked_at is not None and now - s.checked_at < self.ttl:
            return None
        # A refresh outliving its own deadline by far belongs to a dead event loop (a test
        # client's, a reloaded worker's): start a new one.
        if s.refreshing is not None and now - s.refresh_started < s.options.timeout + 5.0:
            return s.refreshing
        s.refreshing = event = anyio.Event()
        s.refresh_started = now
        self._spawn(self._refresh(s, event))
        return event

    async def _refresh(self, s: _State, event: anyio.Event) -> None:
        s.diagnoses += 1
        try:
            report = await self._diagnose(s.dependency.target, s.options)
        except Exception as exc:  # a failing diagnose must not break the endpoint
            logger.exception("diagnosing %s failed", s.dependency.name)
            s.error = f"{type(exc).__name__}: {exc}"
        else:
            previous = s.report
            s.report, s.error = report, None
            _log_change(s.dependency, previous, report)
        finally:
            s.checked_at = time.monotonic()
            s.checked_wall = datetime.now(UTC)
            if s.refreshing is event:
                s.refreshing = None
            event.set()

    def _spawn(self, coro: Awaitable[None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            trio = sys.modules.get("trio")
            if trio is None:  # pragma: no cover - only asyncio and trio exist
                raise
            trio.lowlevel.spawn_system_task(lambda: coro)
            return
        task = loop.create_task(_as_coroutine(coro), name="netprobe-health-refresh")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        trio = sys.modules.get("trio")
        if trio is None:
            return False
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            return False
    return True


async def _as_coroutine(aw: Awaitable[None]) -> None:
    await aw


def _log_change(dep: Dependency, previous: Report | None, report: Report) -> None:
    before = None if previous is None else (previous.fault.code if previous.fault else "ok")
    after = report.fault.code if report.fault else "ok"
    if before == after:
        return
    if report.fault is None:
        logger.info("dependency %s is healthy", dep.name)
    else:
        level = logging.WARNING if dep.critical else logging.INFO
        f = report.fault
        logger.log(level, "dependency %s: [%s] %s: %s", dep.name, f.layer, f.code, f.summary)


def public_url(target: Target) -> str:
    """The target as shown to clients: no password (ever), no query string (tokens live there)."""
    return target.url.split("?", 1)[0]
