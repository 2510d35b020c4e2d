"""Classification is pure: ``classify(observations) -> Verdict``, a table of rules by rung.

The first rung that failed holds the fault: once TCP is ESTABLISHED the network is proven
fine, so a TLS or application failure is never reported as L3/L4, and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..options import Options
from ..report import Fault, ReportWarning
from ..steps import Step
from ..target import Target
from ._observations import Observations
from .application import application_fault, application_warnings
from .dns import dns_fault
from .tls import tls_fault, tls_warnings
from .transport import transport_fault, transport_warnings

__all__ = ["Observations", "Verdict", "classify"]

FaultRule = Callable[[Observations], Fault | None]
WarningRule = Callable[[Observations], list[ReportWarning]]

#: Ladder order: the lowest failing rung wins.
FAULT_RULES: tuple[FaultRule, ...] = (dns_fault, transport_fault, tls_fault, application_fault)
WARNING_RULES: tuple[WarningRule, ...] = (transport_warnings, tls_warnings, application_warnings)


@dataclass(frozen=True)
class Verdict:
    fault: Fault | None
    warnings: list[ReportWarning] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no rule found a fault (warnings do not count)."""
        return self.fault is None


def classify(target: Target, options: Options, steps: Sequence[Step]) -> Verdict:
    """Turn observed steps into a verdict: at most one fault, and any warnings."""
    obs = Observations.of(target, options, steps)
    found: Fault | None = None
    for rule in FAULT_RULES:
        found = rule(obs)
        if found is not None:
            break
    warnings: list[ReportWarning] = []
    for wrule in WARNING_RULES:
        warnings.extend(wrule(obs))
    return Verdict(fault=found, warnings=warnings)
