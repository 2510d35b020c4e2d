"""Where on the path: what a TCP trace (``TcpStep.trace``) says about a failed connect.

Pure wording for the transport rules (``transport.py``): which hop is the last that saw the
SYN, which hop rejected it. A router answers time exceeded before its forward hook filters,
so "hop n answers, nothing beyond it" puts a silent drop at hop n or right after it.
"""

from __future__ import annotations

from ..describe import describe_hop
from ..report import Evidence, Fault
from ..steps import IcmpError, PmtuProbe, TcpInfoFacts, TraceStep
from ._observations import Observations, fault

__all__ = [
    "hop_of",
    "pmtu_fault",
    "rejecting_hop",
    "trace_evidence",
    "trace_hint",
    "trace_sentence",
]


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
            "SYN dies at the first hop (the destination itself when it is on this host's "
            "segment), or the routers on the way do not answer time exceeded."
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


def _facts(info: TcpInfoFacts | None) -> str:
    if info is None:
        return "TCP_INFO unreadable"
    return f"tcpi_pmtu {info.pmtu}, snd_mss {info.snd_mss}, rcv_mss {info.rcv_mss}"


def pmtu_fault(obs: Observations) -> Fault | None:
    """``l3.pmtu_blackhole``: the TLS handshake or the HTTP response stalled after
    ESTABLISHED, and the same exchange completed on a new connection with a low MSS."""
    tcp = obs.tcp
    probe: PmtuProbe | None = tcp.pmtu_probe if tcp is not None else None
    if tcp is None or probe is None or not probe.black_hole:
        return None
    tls, app = obs.tls, obs.application
    http = app.http if app is not None else None
    if probe.exchange == "tls_handshake":
        if tls is None or tls.failure != "timeout":
            return None
        what = "the TLS handshake stalled (the server's certificate flight never arrived)"
    else:
        if http is None or http.failure != "timeout":
            return None
        what = "the HTTP exchange stalled (no response head within the read timeout)"
    where = tcp.connected_to or "the server"
    done = "handshake" if probe.exchange == "tls_handshake" else "response head"
    ms = f" in {probe.duration_ms:.0f} ms" if probe.duration_ms is not None else ""
    evidence = [
        Evidence(
            step="tcp",
            observation=f"the stalled connection: {_facts(probe.stalled)}",
            data=probe.stalled.model_dump() if probe.stalled is not None else {},
        ),
        Evidence(
            step="tcp",
            observation=f"a new connection with TCP_MAXSEG {probe.mss}: the {done} completed"
            f"{ms} (the same at the normal MSS, at the same time: {probe.control}); "
            f"{_facts(probe.retry)}",
            data={
                "mss": probe.mss,
                "exchange": probe.exchange,
                "outcome": probe.outcome,
                "control": probe.control,
                **(probe.retry.model_dump() if probe.retry is not None else {}),
            },
        ),
    ]
    return fault(
        "l3.pmtu_blackhole",
        f"Connected to {where}, but {what}; the same exchange on a new connection with an MSS "
        f"of {probe.mss} completed, while another at the normal MSS stalled again: packets "
        "larger than that are lost on the path and the "
        "ICMP 'fragmentation needed' that should announce it is filtered (an MTU black hole).",
        evidence,
        [
            "Find the link with the smaller MTU (a tunnel, a VPN, an overlay network) and let "
            "ICMP type 3 code 4 (IPv6: type 2, packet too big) through the firewalls on the way.",
            "Meanwhile: clamp the MSS on the router (nft: tcp option maxseg size set rt mtu), "
            "or lower the MTU of this host's interface to the path's.",
            "On this host, net.ipv4.tcp_mtu_probing=1 lets TCP find the size by itself.",
        ],
    )
