"""Startup dependency checks: wait until every dependency is healthy, or say why not.

The replacement for ``wait-for-it.sh``: instead of "timeout occurred", the last diagnosis of
each dependency that never became ready.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from typing import Unpack

import anyio

from .._errors import InvalidOption
from .._unavailable import DependencyUnavailable
from ..diagnose import diagnose
from ..options import Options, RungOptionsKwargs, make_options
from ..probes.db_login import require_driver
from ..report import Report
from ..target import Target, parse_target

__all__ = ["Attempt", "backoff_delay", "verdict_of", "wait_until_ready"]

logger = logging.getLogger("netprobe.wait")

#: Called after every attempt: (target, report of this attempt, attempt number from 1).
Attempt = Callable[[Target, Report, int], None]

# A diagnosis needs some time to say anything useful; an attempt is not started with less.
_MIN_ATTEMPT_S = 0.05


def verdict_of(report: Report) -> str:
    """``"ok"`` or the fault code: what "a change of verdict" compares."""
    return "ok" if report.fault is None else report.fault.code


def backoff_delay(
    attempt: int, *, initial: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Delay before attempt ``attempt + 1``: exponential, capped, with "equal jitter".

    Half of the exponential step is fixed and half random, so retries from many replicas
    spread out (no thundering herd when the database comes back) while each one still
    backs off. ``attempt`` counts from 1.
    """
    step = min(maximum, initial * 2.0 ** min(max(0, attempt - 1), 30))
    r: float = (rng or random).random()
    return step / 2 + r * step / 2


async def wait_until_ready(
    targets: Iterable[str | Target] | str | Target,
    *,
    timeout: float = 60.0,  # noqa: ASYNC109 - the deadline is the point of the call
    interval: float = 0.25,
    max_interval: float = 5.0,
    on_attempt: Attempt | None = None,
    options: Options | None = None,
    **kwargs: Unpack[RungOptionsKwargs],
) -> list[Report]:
    """Wait until every dependency is healthy; diagnose each one until then.

    All dependencies are checked in parallel. A failing one is retried with exponential
    backoff and jitter (``interval`` doubling up to ``max_interval``), always within the
    overall ``timeout``: the last attempt is cut short so the call returns by the deadline
    (plus a few milliseconds). Each change of a dependency's verdict (healthy, or a fault
    code) is logged once on the ``netprobe.wait`` logger, not every attempt.

    Args:
        targets: the dependencies (``host:port``, URLs, DSNs), or a single one.
        timeout: the overall deadline, seconds.
        interval: the first delay between attempts, seconds.
        max_interval: the largest delay between attempts, seconds.
        on_attempt: called after each attempt with (target, report, attempt number).
        options: an `Options` to start from; ``**kwargs`` override its fields
            (``connect_timeout=1``...). ``options.timeout`` bounds one attempt.

    Returns:
        The healthy report of each dependency, in the input order.

    Raises:
        DependencyUnavailable: the deadline passed with dependencies still failing; its
            message is the last diagnosis of each, and it carries every last report.
        InvalidTarget: a target is malformed (before any I/O).
        InvalidOption: an option is out of range (before any I/O).
    """
    if isinstance(targets, str | Target):
        targets = [targets]
    parsed = [parse_target(t) for t in targets]
    opts = make_options(options, **kwargs)
    for t in parsed:
        require_driver(t)
    for name, value in (
        ("timeout", timeout),
        ("interval", interval),
        ("max_interval", max_interval),
    ):
        # Finite too: timeout=inf waited forever, max_interval=inf slept until the deadline.
        if not (value > 0 and math.isfinite(value)):
            raise InvalidOption(f"{name} must be a finite number greater than 0 (got {value!r})")
    if max_interval < interval:
        raise InvalidOption(f"max_interval ({max_interval!r}) must be at least interval")
    if not parsed:
        return []

    deadline = time.monotonic() + timeout
    last: list[Report | None] = [None] * len(parsed)

    async def one(i: int, target: Target) -> None:
        attempt = 0
        previous: str | None = None
        while True:
            remaining = deadline - time.monotonic()
            if attempt and remaining < _MIN_ATTEMPT_S:
                return
            attempt += 1
            budget = max(_MIN_ATTEMPT_S, min(opts.timeout, remaining))
            report = await diagnose(target, options=opts.model_copy(update={"timeout": budget}))
            last[i] = report
            verdict = verdict_of(report)
            if verdict != previous:
                _log_change(target, report, previous, attempt)
                previous = verdict
            if on_attempt is not None:
                on_attempt(target, report, attempt)
            if report.ok:
                return
            delay = backoff_delay(attempt, initial=interval, maximum=max_interval)
            remaining = deadline - time.monotonic()
            if remaining < _MIN_ATTEMPT_S:
                return
            # Sleep at most until just before the deadline, so one more (short) attempt
            # still reports the latest state.
            await anyio.sleep(min(delay, max(0.0, remaining - _MIN_ATTEMPT_S)))

    async with anyio.create_task_group() as tg:
        for i, t in enumerate(parsed):
            tg.start_soon(one, i, t)

    reports = [r for r in last if r is not None]
    if len(reports) != len(parsed) or not all(r.ok for r in reports):
        raise DependencyUnavailable(reports, timeout=timeout)
    return reports


def _log_change(target: Target, report: Report, previous: str | None, attempt: int) -> None:
    if report.fault is None:
        level = logging.INFO
        text = f"{target.url} is ready (attempt {attempt}, {report.timings_ms.total or 0:.0f} ms)"
    else:
        f = report.fault
        level = logging.WARNING if previous == "ok" else logging.INFO
        text = f"{target.url} not ready (attempt {attempt}): [{f.layer}] {f.code}: {f.summary}"
    logger.log(level, text, extra={"netprobe_target": target.url, "netprobe_attempt": attempt})
