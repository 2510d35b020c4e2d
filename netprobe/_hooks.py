"""Observers of finished diagnoses: ``netprobe.otel`` turns each report into spans and metrics.

The orchestrator calls :func:`run_report_hooks` once per report, in the caller's task (so an
observer sees the caller's context: its active span becomes the diagnosis's parent). Without
an observer this costs one truth test of an empty list. An observer never breaks a diagnosis:
what it raises is logged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .report import Report

__all__ = [
    "DEADLINE_ORIGIN",
    "DIAGNOSIS_WATCHER",
    "REPORT_HOOKS",
    "add_report_hook",
    "remove_report_hook",
    "run_report_hooks",
]

logger = logging.getLogger("netprobe")

ReportHook = Callable[["Report"], None]

#: The observers, called in order. Change it with add_report_hook / remove_report_hook.
REPORT_HOOKS: list[ReportHook] = []


def add_report_hook(hook: ReportHook) -> None:
    """Call ``hook(report)`` after every diagnosis (once, however often it is added)."""
    if hook not in REPORT_HOOKS:
        REPORT_HOOKS.append(hook)


def remove_report_hook(hook: ReportHook) -> None:
    """Stop calling ``hook``; nothing happens when it was not added."""
    if hook in REPORT_HOOKS:
        REPORT_HOOKS.remove(hook)


def run_report_hooks(report: Report) -> None:
    """Give the report to every observer; an observer's exception is logged, never raised."""
    for hook in tuple(REPORT_HOOKS):
        try:
            hook(report)
        except Exception:
            logger.exception("netprobe: a report observer failed")


#: Called with each diagnosis as it starts, in this context only (the CLI's live progress
#: line: the diagnosis's ``progress()`` says which rung waits and for how long).
DIAGNOSIS_WATCHER: ContextVar[Callable[[Any], None] | None] = ContextVar(
    "netprobe_diagnosis_watcher", default=None
)

#: Where the total deadline counts from (a ``time.perf_counter()`` value), in this context
#: only; None: from the diagnosis's start. The command line sets its process's start: its
#: ``--timeout`` holds for the whole process, start-up included.
DEADLINE_ORIGIN: ContextVar[float | None] = ContextVar("netprobe_deadline_origin", default=None)
