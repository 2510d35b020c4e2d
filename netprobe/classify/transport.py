"""L3/L4 rules: what the connect attempts (and the liveness witnesses) say about the path.

A failed connect whose cause is this host's own limit (file descriptors, ports, a local
firewall) is decided in ``local.py``.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Sequence

from ..describe import connect_evidence, describe_attempt, witnesses_of
from ..report import Evidence, Fault, ReportWarning
from ..steps import (
    AddressAttempt,
    ConnectOutcome,
    IcmpStep,
    TcpStep,
)
from ._observations import Observations, fault, warning
from .path import rejecting_hop, trace_evidence, trace_hint, trace_sentence

__all__ = [
    "LOCAL_OUTCOMES",
    "representative",
    "syn_retransmitted",
    "transport_fault",
    "transport_warnings",
]

#: Outcomes that are this host's own limit, whatever the peer (classify/local.py decides them).
LOCAL_OUTCOMES: tuple[ConnectOutcome, ...] = ("fd_exhaustion", "port_exhaustion", "denied")

# Which failed attempt speaks for the whole step when several addresses failed differently:
# a local limit first (it is our own host's fault whatever the peer), then the most definite
# answer from the network.
_PRIORITY: tuple[ConnectOutcome, ...] = (
    *LOCAL_OUTCOMES,
    "reset",
    "refused",
    "host_unreachable",
    "timeout",
    "network_unreachable",
    "error",
)

SYN_RETRANSMIT_MS = 1000.0  # Linux's initial RTO: the first SYN retransmission comes at 1 s.


def representative(attempts: Sequence[AddressAttempt]) -> AddressAttempt:
    """The failed attempt that speaks for the step (see ``_PRIORITY``)."""
    return min(attempts, key=lambda a: _PRIORITY.index(a.outcome) if a.outcome in _PRIORITY else 99)


def transport_fault(obs: Observations) -> Fault | None:
    """The ``l3.*``/``l4.*`` fault of a failed connect (decided with the liveness witnesses),
    or ``l7.connection_closed`` for a connection reset right after its handshake."""
    tcp = obs.tcp
    if tcp is None or tcp.status == "ok" or not tcp.attempts:
        return None
    rep = representative(tcp.attempts)
    if rep.outcome in LOCAL_OUTCOMES:
        return None  # this host's own limit: classify/local.py
    evidence = connect_evidence(tcp, obs.icmp, rep)
    port = rep.port
    where = rep.endpoint
    match rep.outcome:
        case "reset":
            return fault(
                "l7.connection_closed",
                f"{where} accepted the TCP connection and reset it at once, before anything was "
                "exchanged: the network is fine; the server (or a proxy in front of it) drops "
                "connections.",
                evidence,
                [
                    "Server-side connection limits: a proxy's maxconn, tcp wrappers "
                    "(hosts.deny), a server that closes what it cannot serve.",
                    "A load balancer with no healthy backend often accepts and resets.",
                ],
            )
        case "refused":
            return fault(
                "l4.refused",
                f"{where} refused the connection (RST): the host is up, but nothing listens on "
                f"port {port} (or a firewall rejects with tcp-reset).",
                evidence,
                [
                    f"Is the service running? On the host: ss -ltnp 'sport = :{port}'.",
                    _interface_hint(rep.address),
                    "A firewall rule `reject with tcp reset` looks the same: check nft/iptables.",
                ],
            )
        case "host_unreachable":
            rejected = _rejected_fault(rep, tcp, evidence)
            if rejected is not None:
                return rejected
            local = " (the local routing table said so: no packet left)" if rep.immediate else ""
            path = trace_sentence(tcp.trace)
            return fault(
                "l3.host_unreachable",
                f"{rep.address} is unreachable (EHOSTUNREACH){local}: "
                f"{_unreachable_cause(obs.icmp, rep.address)}." + (f" {path}" if path else ""),
                [*evidence, *trace_evidence(tcp.trace)],
                [
                    "If the host is on this subnet: is it up, and is its IP address right? "
                    "(ip neigh show)",
                    "A firewall rejecting with ICMP admin-prohibited looks the "
                    "same: check security groups / nftables on the path.",
                ],
            )
        case "network_unreachable":
            local = (
                (
                    " This host has no route to it (the local routing table said so at once: "
                    "no packet left)."
                )
                if rep.immediate
                else " A router reported no route."
            )
            return fault(
                "l3.network_unreachable",
                f"The network of {rep.address} is unreachable (ENETUNREACH).{local}",
                evidence,
                [
                    f"Check the routes: ip route get {rep.address}.",
                    "Missing default route, VPN down, or an IPv6 address on an IPv4-only host?",
                ],
            )
        case "timeout":
            return _silence_fault(obs, tcp, rep, evidence)
        case _:
            msg = rep.error.message if rep.error else "unknown error"
            return fault(
                "l4.connect_failed",
                f"connect() to {where} failed: {msg}.",
                evidence,
                [
                    f"Check the route: ip route get {rep.address} (a 'blackhole' route makes "
                    "connect() fail at once with EINVAL).",
                    "See the evidence for the errno.",
                ],
            )


def _rejected_fault(rep: AddressAttempt, tcp: TcpStep, evidence: list[Evidence]) -> Fault | None:
    """``l3.host_unreachable`` told by the socket's error queue: which host sent the ICMP
    error, and whether it was a firewall's reject (admin-prohibited)."""
    e = rep.icmp_error
    if e is None or e.origin == "local":
        return None
    errno_name = rep.error.errno_name if rep.error and rep.error.errno_name else "EHOSTUNREACH"
    kind = "ICMPv6" if e.origin == "icmp6" else "ICMP"
    sender = e.offender or "a host on the path"
    who = (
        f"{sender} (the destination itself)"
        if e.offender == rep.address
        else rejecting_hop(tcp.trace, e)
    )
    evidence = [*evidence, *trace_evidence(tcp.trace)]
    if e.admin_prohibited:
        return fault(
            "l3.host_unreachable",
            f"The SYN to {rep.endpoint} was rejected: {who} rejects with admin-prohibited "
            f"({kind} {e.icmp_type}/{e.icmp_code}, seen as {errno_name}): a firewall there "
            f"refuses port {rep.port} from this source.",
            evidence,
            [
                f"Ask the owner of {sender} for its rule on port {rep.port} (nftables "
                "`reject with icmp admin-prohibited`, a security group, an ACL).",
                "The host is up: its own firewall answered (its input rules, host-based "
                "firewall, a cloud security group in front of it)."
                if e.offender == rep.address
                else "Nothing is wrong with the destination host itself as far as this shows: "
                "a firewall on the way answered for it.",
            ],
        )
    return fault(
        "l3.host_unreachable",
        f"{rep.address} is unreachable ({errno_name}): {who} answered the SYN with "
        f"{kind} {e.icmp_type}/{e.icmp_code} ({e.meaning}).",
        evidence,
        [
            f"Check the route to {rep.address} at {sender}: ip route get {rep.address} there.",
            "If the host is on that router's subnet: is it up, is its address right?",
        ],
    )


def _unreachable_cause(icmp: IcmpStep | None, address: str) -> str:
    """Why EHOSTUNREACH, when the echoes to the same address were told: a firewall or a router
    (ICMP error, and who sent it), else the two causes that look alike from the socket."""
    echoes = icmp.result_for(address) if icmp is not None else None
    if echoes is not None and echoes.unreachable:
        sender = echoes.unreachable_from
        by = f" from {sender}" if sender else ""
        kind = echoes.unreachable.split(" (")[0]
        if "prohibited" in kind:
            return f"a firewall rejects it (ICMP {kind}{by})"
        return f"ICMP {kind}{by}"
    return (
        "ARP got no answer on the local segment, or a router or firewall sent ICMP "
        "host-unreachable / admin-prohibited"
    )


def _silence_fault(
    obs: Observations, tcp: TcpStep, rep: AddressAttempt, evidence: list[Evidence]
) -> Fault:
    """The SYN went unanswered: the witnesses decide between filtered, down and unknown."""
    port = rep.port
    where = rep.endpoint
    w = witnesses_of(tcp, obs.icmp, rep.address)
    evidence = [*evidence, *w.evidence, *trace_evidence(tcp.trace)]
    seen = "; ".join(w.lines)
    # To 0.1 s; a wait the total deadline cut to almost nothing, in ms.
    waited = (
        f"{tcp.timeout_s * 1000:.0f} ms"
        if tcp.timeout_s < 0.1
        else f"{round(tcp.timeout_s, 1):g} s"
    )
    path = trace_sentence(tcp.trace)
    where_sentence = f" {path}" if path else ""
    ask = trace_hint(tcp.trace)
    first = [ask] if ask else []
    if w.alive:
        return fault(
            "l4.filtered",
            f"The SYN to {where} got no answer within {waited}, yet the host is "
            f"alive ({seen}): a firewall or security group drops port {port}, or the server's "
            f"accept queue is full (SYN backlog overflow).{where_sentence}",
            evidence,
            [
                *first,
                f"Check the firewall / security group / network policy for port {port} from "
                "this source (nft list ruleset, iptables -S, cloud security groups), this "
                "host's own OUTPUT chain included: a local drop looks the same.",
                f"On the server: ss -ltn 'sport = :{port}': a Recv-Q at the backlog size means "
                "the accept queue is full (the application does not accept fast enough); "
                "nstat -az TcpExtListenOverflows counts the dropped SYNs.",
            ],
        )
    if w.tried:
        return fault(
            "l3.host_unresponsive",
            f"The SYN to {where} got no answer within {waited} and {rep.address} "
            f"gave no sign of life ({seen}): the host is down, or a firewall drops everything "
            f"to it.{where_sentence}",
            evidence,
            [
                *first,
                "Check that the host is up (console, cloud instance status, hypervisor).",
                "Check the firewall / security groups on the path: a drop-all rule looks the same.",
                f"Is {rep.address} the right address (stale DNS record, old IP)?",
            ],
        )
    why = "; ".join(w.not_tried) or "no witness was available"
    return fault(
        "l4.connect_timeout",
        f"The SYN to {where} got no answer within {waited}: a firewall or "
        "security group drops it, or the host is down. No witness of the host's liveness "
        f"could be tried to tell which ({why}).{where_sentence}",
        evidence,
        [
            *first,
            f"If the host is up, a firewall / security group drops port {port}: check the "
            "rules for this port from this source.",
            "If the host is down: check it (console, cloud instance status).",
            "The server's accept queue may be full (SYN backlog): ss -ltn on the server, "
            "look at Recv-Q.",
            "Allow a witness: ICMP (sysctl net.ipv4.ping_group_range, or CAP_NET_RAW) or "
            "the canary connect (canary=True).",
        ],
    )


def transport_warnings(obs: Observations) -> list[ReportWarning]:
    """Warnings of a connect that worked (ICMP filtered, some addresses failing, local health)."""
    tcp = obs.tcp
    out: list[ReportWarning] = []
    if tcp is None or tcp.status != "ok":
        return out
    out.extend(_icmp_warnings(tcp, obs.icmp))
    for a in tcp.attempts:
        if a.outcome == "established":
            if tcp.connected_to == a.endpoint:
                lost = syn_retransmitted(a)
                if lost is not None:
                    out.append(warning("tcp.syn_retransmitted", lost))
        else:
            out.append(
                warning(
                    "tcp.address_failed",
                    f"{describe_attempt(a)}, while {tcp.connected_to} worked: clients that try "
                    "this address first will be slow or fail.",
                )
            )
    return out


def syn_retransmitted(a: AddressAttempt) -> str | None:
    """Why the connect to ``a`` needed a retransmitted SYN, or None when it did not: the
    kernel's count (TCP_INFO) where it was read, else a connect of 1 s or more (Linux's
    first SYN retransmission)."""
    took = f" (the connect took {a.connect_ms:.0f} ms)" if a.connect_ms is not None else ""
    if a.syn_retransmits is not None:
        if a.syn_retransmits <= 0:
            return None
        times = "once" if a.syn_retransmits == 1 else f"{a.syn_retransmits} times"
        return (
            f"The kernel retransmitted the SYN to {a.endpoint} {times} before the handshake "
            f"completed (TCP_INFO tcpi_total_retrans){took}: a SYN or its SYN+ACK was lost. "
            "Look for packet loss or an overloaded accept queue."
        )
    if a.connect_ms is None or a.connect_ms < SYN_RETRANSMIT_MS:
        return None
    return (
        f"Connecting to {a.endpoint} took {a.connect_ms:.0f} ms: the first SYN (or SYN+ACK) "
        "was lost and retransmitted after 1 s (inferred from the time: this kernel gave no "
        "retransmission count). Look for packet loss or an overloaded accept queue."
    )


def _icmp_warnings(tcp: TcpStep, icmp: IcmpStep | None) -> list[ReportWarning]:
    """TCP works but ICMP got no reply: ICMP is filtered (worth knowing, never a fault)."""
    if icmp is None or icmp.status == "skipped":
        return []
    out: list[ReportWarning] = []
    for a in tcp.attempts:
        if a.outcome != "established" or tcp.connected_to != a.endpoint:
            continue
        r = icmp.result_for(a.address)
        if r is None or r.received:
            continue
        if r.unreachable:
            out.append(
                warning(
                    "icmp.no_reply",
                    f"{a.address} accepts TCP but its echo came back as an ICMP error "
                    f"({r.unreachable}): ICMP is rejected on the path. Ping-based monitoring "
                    "of this host will report it down.",
                )
            )
        elif r.lost:
            out.append(
                warning(
                    "icmp.no_reply",
                    f"{a.address} accepts TCP but answered none of {r.sent - r.pending} echo "
                    "requests: ICMP is filtered (a security group or firewall). Ping-based "
                    "monitoring of this host will report it down.",
                )
            )
    return out


def _interface_hint(address: str) -> str:
    """Where to look when nothing listens: "bind 0.0.0.0, not 127.0.0.1" is wrong advice for a
    loopback target, where the usual cause is a server in another container or namespace."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(address).is_loopback:
            return (
                f"{address} is this host's own loopback: a server in another container or "
                "network namespace (or one bound to another address only) is not reachable here."
            )
    return "Does it listen on the right interface (0.0.0.0, not 127.0.0.1) and port?"
