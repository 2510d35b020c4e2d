"""TLS rules: verify codes, alerts and what the peer sent instead of a ServerHello."""

from __future__ import annotations

from ..report import Fault, ReportWarning
from ._observations import Observations, fault

__all__ = ["tls_fault", "tls_warnings"]


def tls_fault(obs: Observations) -> Fault | None:
    tls = obs.tls
    if tls is None or tls.status != "failed":
        return None
    msg = tls.error.message if tls.error else (tls.reason or "unknown")
    return fault(
        "tls.handshake_failed", f"The TLS handshake with {obs.target.netloc} failed: {msg}."
    )


def tls_warnings(obs: Observations) -> list[ReportWarning]:
    return []
