"""`netprobe demo`: real servers on loopback showing each fault netprobe can diagnose.

No root and no outside network: every server comes from `netprobe.testing`, binds to
loopback and is removed at the end. The cases are data (`netprobe.demo.cases.CASES`):
a title, a target, the fault code it shows, options; the servers they name are started on
demand (`netprobe.demo.fixtures.FIXTURES`). A case whose server cannot run here (no
``redis-server``) is skipped, and the demo says which and why: never silently fewer cases.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio

from ..diagnose import diagnose
from ..report import Report
from .case import DemoCase

__all__ = ["DemoCase", "run_demo"]

_WHOLE = re.compile(r"\{(\w+)\}")


def _fill(value: Any, env: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _WHOLE.fullmatch(value)
        return env[whole.group(1)] if whole else value.format_map(env)
    if isinstance(value, list | tuple):
        return [_fill(item, env) for item in value]
    return value


def _announce_skips(skipped: list[tuple[DemoCase, str]], total: int) -> None:
    by_reason: dict[str, list[str]] = {}
    for case, reason in skipped:
        by_reason.setdefault(reason, []).append(case.title)
    for reason, titles in by_reason.items():
        print(
            f"netprobe demo: skipping {len(titles)} of {total} cases, {reason}: "
            + "; ".join(titles),
            file=sys.stderr,
        )


async def run_demo(
    on_report: Callable[[DemoCase, Report], None] | None = None,
    *,
    on_skip: Callable[[list[tuple[DemoCase, str]], int], None] | None = None,
    cases: Iterable[DemoCase] | None = None,
) -> list[tuple[DemoCase, Report]]:
    """Start the servers the cases need, diagnose every case concurrently, return the reports.

    Args:
        on_report: called with each case and its report, in case order, at the end.
        on_skip: called once with the cases that cannot run here and why, and the number of
            cases; by default one line per reason goes to stderr.
        cases: the cases to run; default `netprobe.demo.cases.CASES`.
    """
    from .cases import CASES
    from .fixtures import FIXTURES

    wanted = list(CASES if cases is None else cases)
    runnable: list[DemoCase] = []
    skipped: list[tuple[DemoCase, str]] = []
    for case in wanted:
        reasons = [r for n in sorted(case.fixtures) if (r := FIXTURES[n].missing()) is not None]
        if reasons:
            skipped.append((case, reasons[0]))
        else:
            runnable.append(case)
    if skipped:
        (on_skip or _announce_skips)(skipped, len(wanted))

    with contextlib.ExitStack() as stack:
        env: dict[str, Any] = {}

        def need(name: str) -> Any:
            if name not in env:
                env[name] = FIXTURES[name].start(stack, need)
            return env[name]

        for name in sorted({n for case in runnable for n in case.fixtures}):
            need(name)
        results: list[Report | None] = [None] * len(runnable)

        async def one(i: int, case: DemoCase) -> None:
            options = {"timeout": 5.0, **{k: _fill(v, env) for k, v in case.options.items()}}
            results[i] = await diagnose(_fill(case.target, env), **options)

        async with anyio.create_task_group() as tg:
            for i, case in enumerate(runnable):
                tg.start_soon(one, i, case)
        out = [(c, r) for c, r in zip(runnable, results, strict=True) if r is not None]
    if on_report is not None:
        for case, report in out:
            on_report(case, report)
    return out
