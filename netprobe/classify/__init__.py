"""Classification is pure: ``classify(observations) -> Verdict``, tables of rules by rung.

Every verdict netprobe gives is decided here, one file per concern, findable by name:

* ``dns.py``: the name did not resolve (``dns.*``);
* ``local.py``: this host's own limits and socket health (``local.*``);
* ``transport.py``: the connect was refused, silent, unreachable or reset (``l3.*``, ``l4.*``);
* ``path.py``: where on the path (the TCP trace's wording) and MTU black holes
  (``l3.pmtu_blackhole``);
* ``tls.py``: every TLS verdict, wherever TLS was observed (``tls.*``);
* ``proxy.py``: a proxy's answer about its upstream (``http.upstream_*``);
* ``http.py``: the HTTP answer (``http.*``);
* ``grpc.py``: the gRPC health check's answer (``grpc.*``);
* ``database.py``: the database's greeting, errors and login (``db.*``);
* ``deadline.py``: the total deadline cut the diagnosis (``diagnosis.deadline``);
* ``pool.py``: a pool probe's connections, one by one and taken together.

The first rung that failed holds the fault: once TCP is ESTABLISHED the network is proven
fine, so a TLS or application failure is never reported as L3/L4, and vice versa. Rules
import each other's public functions only, never their private tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..options import Options
from ..report import Fault, ReportWarning
from ..steps import DeadlineCut, LocalHealth, Step
from ..target import Target
from ._observations import Observations
from .database import database_fault
from .deadline import deadline_fault, deadline_warnings
from .dns import dns_fault, dns_warnings
from .grpc import grpc_fault
from .http import http_fault
from .local import local_fault, local_warnings
from .path import pmtu_fault
from .proxy import about_the_route, forward_proxy_fault, upstream_fault
from .tls import tls_fault, tls_warnings
from .transport import transport_fault, transport_warnings

__all__ = ["FAULT_RULES", "WARNING_RULES", "Observations", "Verdict", "classify"]

FaultRule = Callable[[Observations], Fault | None]
WarningRule = Callable[[Observations], list[ReportWarning]]

#: Ladder order: the lowest failing rung wins. This host's own limits come before the
#: network's answer (they fail the connect whatever the peer); the deadline's rule last (it
#: speaks only for a rung cut before it answered).
FAULT_RULES: tuple[FaultRule, ...] = (
    dns_fault,
    local_fault,
    transport_fault,
    pmtu_fault,
    forward_proxy_fault,
    tls_fault,
    upstream_fault,
    http_fault,
    grpc_fault,
    database_fault,
    deadline_fault,
)
#: Every warning rule, in the order the warnings are listed.
WARNING_RULES: tuple[WarningRule, ...] = (
    dns_warnings,
    transport_warnings,
    tls_warnings,
    local_warnings,
    deadline_warnings,
)


@dataclass(frozen=True)
class Verdict:
    """At most one fault, and any warnings."""

    fault: Fault | None
    warnings: tuple[ReportWarning, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no rule found a fault (warnings do not count)."""
        return self.fault is None


def classify(
    target: Target,
    options: Options,
    steps: Sequence[Step],
    *,
    local: LocalHealth | None = None,
    deadline: DeadlineCut | None = None,
) -> Verdict:
    """Turn what one diagnosis observed into a verdict: at most one fault, and any warnings.

    Args:
        target: the target diagnosed.
        options: the options it ran with (timeouts and thresholds appear in the wording).
        steps: the steps observed, any order.
        local: this host's socket health toward the target, if read.
        deadline: where the total deadline cut the diagnosis, if it did.
    """
    obs = Observations.of(target, options, steps, local=local, deadline=deadline)
    found: Fault | None = None
    for rule in FAULT_RULES:
        found = rule(obs)
        if found is not None:
            break
    if found is not None and obs.proxy is not None:
        found = about_the_route(obs, found)
    warnings: list[ReportWarning] = []
    for wrule in WARNING_RULES:
        warnings.extend(wrule(obs))
    return Verdict(fault=found, warnings=tuple(warnings))
