"""The engine behind health endpoints and metrics: a TTL cache refreshed single-flight.

Kubelets, load balancers and curious humans may hit a health endpoint a thousand times a
second; the dependencies must not see a thousand diagnoses. Each dependency keeps its last
report; when that is older than ``ttl`` the first request starts one diagnosis and every
request (that one included) waits for it at most ``budget`` seconds. A request that runs
out of budget gets the last known result, marked stale, never a hang.

Who owns the diagnoses (structured concurrency: no task outlives its owner):

* A running checker (``async with checker:``, or the ASGI app's lifespan) owns them in its
  task group: a diagnosis outlives the request that started it, so a hanging dependency
  costs one diagnosis, however many requests come. Leaving the block cancels and awaits
  them.
* Without a running checker (a framework that sends no lifespan events), each check owns
  the diagnoses it starts: they are cancelled when its budget is spent, and the next check
  starts again. Still single-flight among concurrent checks, still never a hang.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, Self, Unpack

import anyio
from anyio.abc import TaskGroup

from .._errors import InvalidOption
from ..diagnose import diagnose as _diagnose
from ..options import Options, OptionsKwargs, make_options
from ..probes.db_login import require_driver
from ..report import Report
from ..target import Target, parse_target

__all__ = [
    "HISTORY_LIMIT",
    "CheckResult",
    "Dependency",
    "DiagnoseFn",
    "HealthChecker",
    "HealthResult",
    "HealthStatus",
    "StateChange",
    "public_url",
]

logger = logging.getLogger("netprobe.health")

#: How a dependency is diagnosed; injectable (tests count the calls).
DiagnoseFn = Callable[[Target, Options], Awaitable[Report]]
HealthStatus = Literal["ok", "degraded", "fail"]
CheckStatus = Literal["ok", "fail", "pending", "error"]

#: How many changes of verdict each dependency remembers (the oldest are dropped): a
#: dependency that flaps forever costs at most this many small records.
HISTORY_LIMIT = 20


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
        **kwargs: Unpack[OptionsKwargs],
    ) -> None:
        self.target: Target = parse_target(target)
        require_driver(self.target)
        self.name: str = name or f"{self.target.scheme}://{self.target.netloc}"
        self.critical = critical
        self.options: Options | None = (
            make_options(options, **kwargs) if options is not None or kwargs else None
        )

    def __repr__(self) -> str:
        return f"Dependency({self.target.url!r}, name={self.name!r}, critical={self.critical})"


@dataclass(frozen=True)
class StateChange:
    """A change of a dependency's verdict: when, to which status, and the fault code."""

    at: datetime
    status: CheckStatus
    code: str | None = None  # the fault code of a failing dependency

    @property
    def verdict(self) -> str:
        """``ok``, the fault code, or ``error`` (the diagnosis itself failed)."""
        return self.code or self.status


@dataclass
class _State:
    dependency: Dependency
    options: Options
    report: Report | None = None
    error: str | None = None
    checked_at: float | None = None  # monotonic
    checked_wall: datetime | None = None
    refreshing: anyio.Event | None = None
    refresh_owner: TaskGroup | None = None
    refresh_scope: anyio.CancelScope | None = None
    refresh_started: float = 0.0
    diagnoses: int = 0
    history: deque[StateChange] = field(default_factory=lambda: deque(maxlen=HISTORY_LIMIT))

    def record(self, change: StateChange) -> None:
        if not self.history or self.history[-1].verdict != change.verdict:
            self.history.append(change)


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
    #: The last changes of verdict, oldest first (at most `HISTORY_LIMIT`).
    history: tuple[StateChange, ...] = ()

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

    Run it as an async context manager for the lifetime of the service (the ASGI app's
    lifespan does this for you when it is served alone):

    ```python
    async with HealthChecker(["postgresql://db:5432"], ttl=10) as checker:
        result = await checker.check()
    ```

    The diagnoses then belong to the checker's task group: one outlives the check that
    started it (a hanging dependency costs one diagnosis, however many checks come), and
    leaving the block cancels and awaits them. Without ``async with`` it still works: each
    check then owns the diagnoses it starts, cancelled when its budget is spent.

    Args:
        dependencies: targets (strings or `Target`) or `Dependency` objects.
            Fixed at construction: nothing from a request ever becomes a target.
        ttl: how long a result is fresh, seconds. At most one diagnosis per dependency
            runs per ``ttl``.
        budget: how long a check waits for fresh results before answering with the last
            known ones (marked stale), seconds. Kubernetes' default probe timeout is 1 s.
        diagnose: the diagnosis function, ``(target, options) -> Report``; defaults to
            `netprobe.diagnose`.
        options: an `Options` for every dependency; ``**kwargs`` override fields.

    Raises:
        InvalidTarget, InvalidOption: before any I/O.
    """

    def __init__(
        self,
        dependencies: Iterable[str | Target | Dependency],
        *,
        ttl: float = 10.0,
        budget: float = 0.8,
        diagnose: DiagnoseFn | None = None,
        options: Options | None = None,
        **kwargs: Unpack[OptionsKwargs],
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
        self._owner: TaskGroup | None = None
        self._owner_thread: int | None = None
        self._told_unowned = False
        self.started = False

    @property
    def dependencies(self) -> list[Dependency]:
        """The fixed dependencies this checker diagnoses, in order."""
        return [s.dependency for s in self._states]

    @property
    def diagnoses(self) -> dict[str, int]:
        """How many diagnoses each dependency has started: the single-flight proof."""
        return {s.dependency.name: s.diagnoses for s in self._states}

    @property
    def running(self) -> bool:
        """True inside ``async with checker`` (or the ASGI lifespan): it owns the diagnoses."""
        return self._owner is not None

    async def __aenter__(self) -> Self:
        if self._owner is not None:
            raise RuntimeError("this HealthChecker is already running")
        group = anyio.create_task_group()
        await group.__aenter__()
        self._owner, self._owner_thread = group, threading.get_ident()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        group = self._owner
        assert group is not None, "__aexit__ without __aenter__"
        group.cancel_scope.cancel()  # the service is going away: so are its diagnoses
        try:
            # The refreshes never raise (a failed diagnosis is a result), so the only
            # exception is the body's own: it propagates as it is, not in an exception group.
            await group.__aexit__(None, None, None)
        finally:
            self._owner = self._owner_thread = None
            self._release(group)
        return None

    async def check(self, *, budget: float | None = None) -> HealthResult:
        """Fresh results where they can be had within ``budget``, else the last known ones.

        With a last known result, a request waits no later than ``budget`` after the refresh
        started: once a refresh is overdue (a hanging dependency), later requests get the
        stale result at once instead of each waiting out its own budget.
        """
        budget = self.budget if budget is None else budget
        owner = self._owner_here()
        if owner is not None:
            await self._wait(self._refresh_due(owner), budget)
            return self.snapshot()
        if not self._told_unowned:
            self._told_unowned = True
            logger.info(
                "health checks run without an owner (no ASGI lifespan, no `async with`): "
                "each diagnosis lives only as long as the check that started it"
            )
        group = anyio.create_task_group()
        try:
            async with group:
                await self._wait(self._refresh_due(group), budget)
                group.cancel_scope.cancel()  # this check's diagnoses end with it
        finally:
            self._release(group)
        return self.snapshot()

    def kick(self) -> None:
        """Start the refreshes that are due, without waiting.

        Only a running checker, called on its own event loop's thread, can own them: a
        no-op otherwise (a scrape from another thread only reads the cache).
        """
        owner = self._owner_here()
        if owner is not None:
            self._refresh_due(owner)

    def snapshot(self) -> HealthResult:
        """The last known results, without any I/O."""
        now = time.monotonic()
        checks = [self._result(s, now) for s in self._states]
        result = HealthResult(checks)
        if result.ready and all(c.status != "pending" for c in checks):
            self.started = True
        return result

    async def aclose(self) -> None:
        """Cancel the diagnoses in flight and wait for them to end.

        The checker stays usable; ``async with`` (or the ASGI lifespan) does this on exit.
        """
        events = []
        for s in self._states:
            if s.refresh_scope is not None and s.refreshing is not None:
                s.refresh_scope.cancel()
                events.append(s.refreshing)
        for event in events:
            await event.wait()

    def _owner_here(self) -> TaskGroup | None:
        if self._owner is not None and self._owner_thread == threading.get_ident():
            return self._owner
        return None

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
            history=tuple(s.history),
        )

    def _refresh_due(self, group: TaskGroup) -> list[tuple[anyio.Event, float]]:
        """Start in ``group`` the refreshes that are due and not running; what to wait for:
        each refresh's event, and the time a check may wait for it (without its budget)."""
        now = time.monotonic()
        waits = []
        for s in self._states:
            if s.checked_at is not None and now - s.checked_at < self.ttl:
                continue
            if s.refreshing is None:
                s.refreshing, s.refresh_owner, s.refresh_started = anyio.Event(), group, now
                s.diagnoses += 1
                group.start_soon(self._refresh, s, s.refreshing, name="netprobe-health-refresh")
            known = s.report is not None or s.error is not None
            waits.append((s.refreshing, min(now, s.refresh_started) if known else now))
        return waits

    @staticmethod
    async def _wait(waits: list[tuple[anyio.Event, float]], budget: float) -> None:
        for event, since in waits:
            with anyio.move_on_after(since + budget - time.monotonic()):
                await event.wait()

    async def _refresh(self, s: _State, event: anyio.Event) -> None:
        try:
            with anyio.CancelScope() as s.refresh_scope:
                try:
                    report = await self._diagnose(s.dependency.target, s.options)
                except Exception as exc:  # a failing diagnose must not break the endpoint
                    logger.exception("diagnosing %s failed", s.dependency.name)
                    s.error = f"{type(exc).__name__}: {exc}"
                    s.record(StateChange(datetime.now(UTC), "error"))
                else:
                    previous = s.report
                    s.report, s.error = report, None
                    status: CheckStatus = "ok" if report.ok else "fail"
                    code = report.fault.code if report.fault else None
                    s.record(StateChange(datetime.now(UTC), status, code))
                    _log_change(s.dependency, previous, report)
                s.checked_at = time.monotonic()
                s.checked_wall = datetime.now(UTC)
        finally:
            # Cancelled (the owner left, or aclose()): no result, and the next check
            # starts a new refresh.
            s.refresh_scope = None
            if s.refreshing is event:
                s.refreshing = s.refresh_owner = None
            event.set()

    def _release(self, group: TaskGroup) -> None:
        """After ``group`` ended: forget refreshes it owned that never got to run."""
        for s in self._states:
            if s.refresh_owner is group and s.refreshing is not None:
                s.refreshing.set()
                s.refreshing = s.refresh_owner = None


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
