"""The total deadline: the one rule that reads where it cut the diagnosis.

The orchestrator records the cut as an observation (:class:`~netprobe.steps.DeadlineCut`:
which rung was waiting, and when). The DNS and TCP probes report what they saw before the
cut, and their own rules judge it (a SYN unanswered within its budget, which ended with the
deadline, is silence like any other). The TLS handshake and the application exchange leave
no step when they are cut mid-way: for those, the rung that was cut is the fault, worded by
that rung's own rule file. Every cut report says so with the ``diagnosis.deadline`` warning.

A cut report is never healthy without its target's last rung: when the cut rung has no
answer, this rule gives it its fault.
"""

from __future__ import annotations

from ..report import Fault, ReportWarning
from ._observations import Observations, warning
from .database import cut_conversation
from .grpc import cut_call
from .http import cut_exchange
from .proxy import cut_connect
from .tls import cut_handshake

__all__ = ["deadline_fault", "deadline_warnings"]


def deadline_fault(obs: Observations) -> Fault | None:
    """The fault of a rung the total deadline cut before it answered, or None."""
    cut = obs.deadline
    if cut is None or cut.rung is None or obs.step(cut.rung) is not None:
        return None
    if cut.rung == "tls":
        return cut_handshake(obs)
    if cut.rung == "proxy":
        return cut_connect(obs)
    if cut.rung == "application":
        if obs.target.protocol == "http":
            return cut_exchange(obs)
        if obs.target.protocol == "grpc":
            return cut_call(obs)
        return cut_conversation(obs)
    return None  # the orchestrator always records the DNS and TCP steps (partial at a cut)


def deadline_warnings(obs: Observations) -> list[ReportWarning]:
    """``diagnosis.deadline``: the results are partial, and which rung was cut."""
    cut = obs.deadline
    if cut is None:
        return []
    return [
        warning(
            "diagnosis.deadline",
            f"The total deadline ({cut.timeout_s:g} s) ended the diagnosis during the "
            f"{cut.rung or 'last'} step: later rungs were not tried.",
        )
    ]
