"""The input of classification: what one diagnosis observed, looked up by rung."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..options import Options
from ..report import FAULT_CODES, Evidence, Fault, ReportWarning
from ..steps import (
    ApplicationStep,
    DeadlineCut,
    DnsStep,
    IcmpStep,
    LocalHealth,
    ProxyStep,
    Rung,
    Step,
    TcpStep,
    TlsStep,
)
from ..target import Target

__all__ = ["Observations", "fault", "warning"]


@dataclass(frozen=True)
class Observations:
    """Everything a rule may look at. Plain data: rules need no socket and no event loop.

    ``tls`` is the TLS rung's handshake, or the one negotiated inside the database protocol
    (PostgreSQL's SSLRequest) when the target has no TLS rung of its own: the same taxonomy
    applies to both.
    """

    target: Target
    options: Options
    dns: DnsStep | None = None
    icmp: IcmpStep | None = None
    tcp: TcpStep | None = None
    #: the way through a forward proxy, when the target is reached through one
    proxy: ProxyStep | None = None
    tls: TlsStep | None = None
    application: ApplicationStep | None = None
    local: LocalHealth | None = None
    deadline: DeadlineCut | None = None

    @classmethod
    def of(
        cls,
        target: Target,
        options: Options,
        steps: Sequence[Step],
        *,
        local: LocalHealth | None = None,
        deadline: DeadlineCut | None = None,
    ) -> Observations:
        """Index the steps of one diagnosis by rung name for the rules to read."""
        found: dict[str, Step] = {s.name: s for s in steps}
        app = found.get("application")
        tls = found.get("tls")
        if tls is None and isinstance(app, ApplicationStep) and app.database is not None:
            tls = app.database.tls
        return cls(
            target=target,
            options=options,
            dns=found.get("dns"),  # type: ignore[arg-type]
            icmp=found.get("icmp"),  # type: ignore[arg-type]
            tcp=found.get("tcp"),  # type: ignore[arg-type]
            proxy=found.get("proxy"),  # type: ignore[arg-type]
            tls=tls,  # type: ignore[arg-type]
            application=app,  # type: ignore[arg-type]
            local=local,
            deadline=deadline,
        )

    def step(self, rung: Rung) -> Step | None:
        """The step of ``rung``, if it was observed."""
        step: Step | None = getattr(self, rung)
        return step


def fault(
    code: str, summary: str, evidence: Sequence[Evidence] = (), hints: Sequence[str] = ()
) -> Fault:
    """Build a Fault whose layer comes from the code table (one source of truth)."""
    layer, _ = FAULT_CODES[code]
    return Fault(layer=layer, code=code, summary=summary, evidence=evidence, hints=hints)


def warning(code: str, message: str) -> ReportWarning:
    """A :class:`ReportWarning` with a code from ``WARNING_CODES`` and its one-line message."""
    return ReportWarning(code=code, message=message)
