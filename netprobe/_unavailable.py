"""The exception ``wait_until_ready()`` raises: dependencies still failing at its deadline.

Apart from ``_errors.py`` because it carries reports: ``_errors`` is imported by the target
grammar, which the report imports (one module would make an import cycle).
"""

from __future__ import annotations

from collections.abc import Sequence

from ._errors import NetprobeError
from .report import Report

__all__ = ["DependencyUnavailable"]


class DependencyUnavailable(NetprobeError):
    """``wait_until_ready()`` reached its deadline with dependencies still failing.

    The message is the last diagnosis of each failing dependency (target, layer, code,
    summary); ``reports`` holds the last report of every dependency, in the input order, and
    ``failing`` those that were not ok.
    """

    def __init__(self, reports: Sequence[Report], *, timeout: float | None = None) -> None:
        self.reports: list[Report] = list(reports)
        self.failing: list[Report] = [r for r in self.reports if r.fault is not None]
        self.timeout = timeout
        within = f" within {timeout:g} s" if timeout is not None else ""
        lines = [f"{len(self.failing)} of {len(self.reports)} dependencies not ready{within}:"]
        for r in self.failing:
            f = r.fault
            assert f is not None
            lines.append(f"  {r.target.url}: [{f.layer}] {f.code}: {f.summary}")
        super().__init__("\n".join(lines))
