"""Where on the path: what a TCP trace (``TcpStep.trace``) says about a failed connect.

Pure wording for the transport rules (``transport.py``): which hop is the last that saw the
SYN, which hop rejected it. A router answers time exceeded before its forward hook filters,
so "hop n answers, nothing beyond it" puts a silent drop at hop n or right after it.
"""

from __future__ import annotations

from ..describe import describe_hop
from ..report import Evidence
from ..steps import IcmpError, TraceStep

__all__ = ["hop_of", "rejecting_hop", "trace_evidence", "trace_hint", "trace_sentence"]


def hop_of(trace: TraceStep | None, address: str | None) -> int | None:
    """The TTL at which ``address`` answered time exceeded in the trace, if it did."""
    if trace is None or address is None:
        return None
    for h in trace.hops:
        if h.outcome == "time_exceeded" and h.address == address:
            return h.ttl
    return None


def rejecting_hop(trace: TraceStep | None, error: IcmpError) -> str:
    """``hop 1 (198.18.64.1)`` for the box that sent ``error``, as the trace numbers it."""
    n = hop_of(trace, error.offender)
    who = error.offender or "a host on the path"
    return f"hop {n} ({who})" if n is not None else who


def trace_sentence(trace: TraceStep | None) -> str | None:
    """One sentence on where the SYN died, or None without a trace that says it."""
    if trace is None or not trace.hops:
        return None
    partial = " (partial: the total deadline cut the trace)" if trace.partial else ""
    last = trace.hops[-1]
    if last.outcome == "reached":
        return (
            f"A TCP trace reached {trace.address} at hop {last.ttl} ({last.meaning}) meanwhile: "
            "SYNs do get through now and then, the loss is intermittent."
        )
    if last.outcome == "unreachable":
        n = hop_of(trace, last.address)
        where = f"hop {n} ({last.address})" if n is not None else f"{last.address}"
        return f"The TCP trace: {where} rejects the SYN with {last.meaning}{partial}."
    answered = [h for h in trace.hops if h.outcome == "time_exceeded"]
    if not answered:
        return (
            f"The TCP trace got no answer from any hop (TTL 1-{trace.max_hops}){partial}: the "
            "routers on the way do not answer time exceeded, or the first one drops the SYN."
        )
    h = answered[-1]
    return (
        f"The TCP trace: the SYN passes hop {h.ttl} ({h.address}) and nothing answers beyond "
        f"it{partial}: the drop is at hop {h.ttl} or the hop right after it."
    )


def trace_evidence(trace: TraceStep | None) -> list[Evidence]:
    """One evidence item per hop of the trace."""
    if trace is None:
        return []
    return [
        Evidence(
            step="tcp",
            observation=f"trace: {describe_hop(h)}",
            data={
                "ttl": h.ttl,
                "outcome": h.outcome,
                "address": h.address,
                "icmp_type": h.icmp_type,
                "icmp_code": h.icmp_code,
                "rtt_ms": h.rtt_ms,
            },
        )
        for h in trace.hops
    ]


def trace_hint(trace: TraceStep | None) -> str | None:
    """Whom to ask, when the trace names the last hop that saw the SYN."""
    if trace is None or not trace.hops or trace.hops[-1].outcome != "silent":
        return None
    answered = [h for h in trace.hops if h.outcome == "time_exceeded"]
    if not answered:
        return None
    h = answered[-1]
    return (
        f"Take the trace to whoever runs hop {h.ttl} ({h.address}) and the next hop: the SYN "
        f"to port {trace.port} reaches it and goes no further (its forward rules, a security "
        "appliance, an ACL)."
    )
