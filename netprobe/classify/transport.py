"""L3/L4 and local rules: what the connect attempts (and the liveness witnesses) say."""

from __future__ import annotations

from ..report import Evidence, Fault, ReportWarning
from ..steps import AddressAttempt, ConnectOutcome
from ._observations import Observations, fault, warning

__all__ = ["describe_attempt", "transport_fault", "transport_warnings"]

# Which failed attempt speaks for the whole step when several addresses failed differently:
# a local limit first (it is our own host's fault whatever the peer), then the most definite
# answer from the network.
_PRIORITY: tuple[ConnectOutcome, ...] = (
    "fd_exhaustion",
    "port_exhaustion",
    "denied",
    "refused",
    "host_unreachable",
    "timeout",
    "network_unreachable",
    "error",
)

SYN_RETRANSMIT_MS = 1000.0  # Linux's initial RTO: the first SYN retransmission comes at 1 s.


def describe_attempt(a: AddressAttempt) -> str:
    """One line of evidence, e.g. ``SYN to 127.0.0.1:1 answered by RST after 0.1 ms``."""
    ms = f"{a.connect_ms:.1f} ms" if a.connect_ms is not None else "?"
    err = f" ({a.error.errno_name})" if a.error and a.error.errno_name else ""
    match a.outcome:
        case "established":
            return f"{a.endpoint} connected (SYN, SYN+ACK, ACK) in {ms}"
        case "refused":
            return f"SYN to {a.endpoint} answered by RST after {ms}{err}"
        case "timeout":
            why = a.error.message if a.error else "no answer"
            return f"SYN to {a.endpoint} got no answer within {ms} ({why})"
        case "host_unreachable" | "network_unreachable":
            where = (
                "at once, from the local routing table (no packet left)"
                if a.immediate
                else f"after {ms}"
            )
            return f"connect to {a.endpoint} failed {where}{err}"
        case _:
            msg = a.error.message if a.error else a.outcome
            return f"connect to {a.endpoint} failed after {ms}: {msg}{err}"


def _evidence(attempts: list[AddressAttempt]) -> list[Evidence]:
    return [
        Evidence(
            step="tcp",
            observation=describe_attempt(a),
            data={
                "address": a.address,
                "port": a.port,
                "outcome": a.outcome,
                "errno": a.error.errno_name if a.error else None,
                "connect_ms": a.connect_ms,
                "immediate": a.immediate,
            },
        )
        for a in attempts
    ]


def representative(attempts: list[AddressAttempt]) -> AddressAttempt:
    """The failed attempt that speaks for the step (see ``_PRIORITY``)."""
    return min(attempts, key=lambda a: _PRIORITY.index(a.outcome) if a.outcome in _PRIORITY else 99)


def transport_fault(obs: Observations) -> Fault | None:
    tcp = obs.tcp
    if tcp is None or tcp.status == "ok" or not tcp.attempts:
        return None
    rep = representative(tcp.attempts)
    evidence = _evidence(tcp.attempts)
    port = obs.target.port
    where = rep.endpoint
    match rep.outcome:
        case "fd_exhaustion":
            return fault(
                "local.fd_exhaustion",
                "This process (or host) has run out of file descriptors; the dependency was "
                "never contacted.",
                evidence,
                [
                    "Compare open fds with `ulimit -n` (ls /proc/PID/fd | wc -l); raise the limit.",
                    "Look for leaked sockets or files in the application (CLOSE_WAIT, unclosed "
                    "clients).",
                    "System-wide: fs.file-max and /proc/sys/fs/file-nr.",
                ],
            )
        case "port_exhaustion":
            return fault(
                "local.port_exhaustion",
                f"This host has no free local port to connect to {where} (EADDRNOTAVAIL); the "
                "dependency was never contacted.",
                evidence,
                [
                    "Count TIME_WAIT sockets toward the target: ss -tan state time-wait | wc -l.",
                    "Check net.ipv4.ip_local_port_range; reuse connections (pooling, keep-alive); "
                    "consider net.ipv4.tcp_tw_reuse=1.",
                ],
            )
        case "denied":
            return fault(
                "local.connect_denied",
                f"This host's own firewall or security policy forbids connecting to {where} "
                f"({rep.error.errno_name if rep.error else 'EPERM'}); no packet left.",
                evidence,
                [
                    "Check this host's OUTPUT rules: nft list ruleset / iptables -S OUTPUT.",
                    "Check seccomp/SELinux/AppArmor policies and egress network policies.",
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
                    "Does it listen on the right interface (0.0.0.0, not 127.0.0.1) and port?",
                    "A firewall rule `reject with tcp reset` looks the same: check nft/iptables.",
                ],
            )
        case "host_unreachable":
            local = " (the local routing table said so: no packet left)" if rep.immediate else ""
            return fault(
                "l3.host_unreachable",
                f"{rep.address} is unreachable (EHOSTUNREACH){local}: ARP got no answer on the "
                "local segment, or a router or firewall sent ICMP host-unreachable / "
                "admin-prohibited.",
                evidence,
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
            return fault(
                "l4.connect_timeout",
                f"The SYN to {where} got no answer within {tcp.timeout_s:g} s: a firewall or "
                "security group drops it, or the host is down (no witness of the host's "
                "liveness was available to tell which).",
                evidence,
                [
                    "Check security groups / firewall rules for this port from this source.",
                    "Check that the host is up (console, cloud status).",
                    "The server's accept queue may be full (SYN backlog): ss -ltn on the server, "
                    "look at Recv-Q.",
                ],
            )
        case _:
            msg = rep.error.message if rep.error else "unknown error"
            return fault(
                "l4.connect_failed",
                f"connect() to {where} failed: {msg}.",
                evidence,
                ["See the evidence for the errno."],
            )


def transport_warnings(obs: Observations) -> list[ReportWarning]:
    tcp = obs.tcp
    out: list[ReportWarning] = []
    if tcp is None or tcp.status != "ok":
        return out
    for a in tcp.attempts:
        if a.outcome == "established":
            if (
                a.connect_ms is not None
                and a.connect_ms >= SYN_RETRANSMIT_MS
                and (tcp.connected_to == a.endpoint)
            ):
                out.append(
                    warning(
                        "tcp.syn_retransmitted",
                        f"Connecting to {a.endpoint} took {a.connect_ms:.0f} ms: the first SYN (or "
                        "SYN+ACK) was lost and retransmitted after 1 s. Look for packet loss or an "
                        "overloaded accept queue.",
                    )
                )
        else:
            out.append(
                warning(
                    "tcp.address_failed",
                    f"{describe_attempt(a)}, while {tcp.connected_to} worked: clients that try "
                    "this address first will be slow or fail.",
                )
            )
    return out
