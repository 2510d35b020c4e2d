"""`netprobe demo`: real servers on loopback showing each fault netprobe can diagnose.

No root and no outside network: every server binds to 127.0.0.1 and is removed at the end.
Each layer contributes its cases through ``CASE_BUILDERS``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..diagnose import diagnose
from ..report import Report
from .servers import DnsServer, SilentPort, TcpServer, closed_port

__all__ = ["CASE_BUILDERS", "DemoCase", "run_demo"]


@dataclass(frozen=True)
class DemoCase:
    title: str
    target: str
    expect: str | None  # the fault code the case shows, None for healthy
    options: dict[str, Any] = field(default_factory=dict)


CaseBuilder = Callable[[contextlib.ExitStack], list[DemoCase]]


def _transport_cases(stack: contextlib.ExitStack) -> list[DemoCase]:
    open_port = stack.enter_context(TcpServer())
    silent = stack.enter_context(SilentPort())
    dns = stack.enter_context(DnsServer({"db.demo.test": ["127.0.0.1"]}))
    return [
        DemoCase("a port with a listener", f"tcp://{open_port.address}", None),
        DemoCase("a closed port (RST)", f"127.0.0.1:{closed_port()}", "l4.refused"),
        DemoCase(
            "a port whose SYNs are dropped (full accept queue)",
            f"tcp://{silent.address}",
            "l4.filtered",
            {"connect_timeout": 1.0},
        ),
        DemoCase(
            "a name that does not exist (loopback DNS server)",
            "nope.demo.test:5432",
            "dns.nxdomain",
            {"nameservers": [dns.address]},
        ),
    ]


#: Each layer adds a builder; the demo runs them all, in order.
CASE_BUILDERS: list[CaseBuilder] = [_transport_cases]

from .databases import database_cases  # noqa: E402 - it needs DemoCase, defined above

CASE_BUILDERS.append(database_cases)

from .l7 import l7_cases  # noqa: E402 - it needs DemoCase, defined above

CASE_BUILDERS.append(l7_cases)


async def run_demo(
    on_report: Callable[[DemoCase, Report], None] | None = None,
) -> list[tuple[DemoCase, Report]]:
    """Start the demo servers, diagnose every case concurrently, and return the reports."""
    with contextlib.ExitStack() as stack:
        cases = [case for build in CASE_BUILDERS for case in build(stack)]
        results: list[Report | None] = [None] * len(cases)

        async def one(i: int, case: DemoCase) -> None:
            results[i] = await diagnose(case.target, **{"timeout": 5.0, **case.options})

        async with anyio.create_task_group() as tg:
            for i, case in enumerate(cases):
                tg.start_soon(one, i, case)
        out = [(c, r) for c, r in zip(cases, results, strict=True) if r is not None]
    if on_report is not None:
        for case, report in out:
            on_report(case, report)
    return out
