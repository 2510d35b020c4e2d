"""The input of classification: the steps a diagnosis observed, looked up by kind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..options import Options
from ..report import FAULT_CODES, Evidence, Fault, ReportWarning
from ..steps import ApplicationStep, DnsStep, IcmpStep, Step, TcpStep, TlsStep
from ..target import Target

__all__ = ["Observations", "fault", "warning"]


@dataclass(frozen=True)
class Observations:
    """Everything a rule may look at. Plain data: rules need no socket and no event loop."""

    target: Target
    options: Options
    dns: DnsStep | None = None
    icmp: IcmpStep | None = None
    tcp: TcpStep | None = None
    tls: TlsStep | None = None
    application: ApplicationStep | None = None

    @classmethod
    def of(cls, target: Target, options: Options, steps: Sequence[Step]) -> Observations:
        """Index the steps of one diagnosis by rung name for the rules to read."""
        found: dict[str, Step] = {s.name: s for s in steps}
        return cls(
            target=target,
            options=options,
            dns=found.get("dns"),  # type: ignore[arg-type]
            icmp=found.get("icmp"),  # type: ignore[arg-type]
            tcp=found.get("tcp"),  # type: ignore[arg-type]
            tls=found.get("tls"),  # type: ignore[arg-type]
            application=found.get("application"),  # type: ignore[arg-type]
        )


def fault(
    code: str, summary: str, evidence: Sequence[Evidence] = (), hints: Sequence[str] = ()
) -> Fault:
    """Build a Fault whose layer comes from the code table (one source of truth)."""
    layer, _ = FAULT_CODES[code]
    return Fault(
        layer=layer, code=code, summary=summary, evidence=list(evidence), hints=list(hints)
    )


def warning(code: str, message: str) -> ReportWarning:
    """A :class:`ReportWarning` with a code from ``WARNING_CODES`` and its one-line message."""
    return ReportWarning(code=code, message=message)
