"""Rules about this host itself: its own limits (file descriptors, local ports, its own
firewall), which fail a connect before the dependency is contacted, and the health of its
sockets toward the target (CLOSE_WAIT leaks, TIME_WAIT pressure, file descriptors near the
limit). A fault here is never the dependency's: the report sends the engineer to this host.
"""

from __future__ import annotations

from ..describe import connect_evidence
from ..report import Fault, ReportWarning
from ._observations import Observations, fault, warning
from .transport import LOCAL_OUTCOMES, representative

__all__ = ["local_fault", "local_warnings"]


def local_fault(obs: Observations) -> Fault | None:
    """The ``local.*`` fault of a connect this host refused to make, or None."""
    tcp = obs.tcp
    if tcp is None or tcp.status == "ok" or not tcp.attempts:
        return None
    rep = representative(tcp.attempts)
    if rep.outcome not in LOCAL_OUTCOMES:
        return None
    evidence = connect_evidence(tcp, obs.icmp, rep)
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
        case _:  # "denied": EPERM / EACCES
            return fault(
                "local.connect_denied",
                f"This host's own firewall or security policy forbids connecting to {where} "
                f"({rep.error.errno_name if rep.error else 'EPERM'}); no packet left.",
                evidence,
                [
                    "Check this host's OUTPUT rules: nft list ruleset / iptables -S OUTPUT.",
                    f"Check the route: ip route get {rep.address} (a 'prohibit' route "
                    "gives EACCES).",
                    "Check seccomp/SELinux/AppArmor policies and egress network policies.",
                ],
            )


#: CLOSE_WAIT sockets toward one target from which on they look like a leak, not a moment.
CLOSE_WAIT_LEAK = 10
#: TIME_WAIT toward one target at this share of the ephemeral port range is pressure.
TIME_WAIT_SHARE = 0.5
#: Open file descriptors at this share of the soft limit is pressure.
FD_SHARE = 0.8


def local_warnings(obs: Observations) -> list[ReportWarning]:
    """Local host health: leaked CLOSE_WAIT, TIME_WAIT near the port range, fds near the limit."""
    local = obs.local
    if local is None or not local.available:
        return []
    out: list[ReportWarning] = []
    toward = ", ".join(local.toward)
    cw = local.count("CLOSE_WAIT")
    if cw >= CLOSE_WAIT_LEAK:
        out.append(
            warning(
                "local.close_wait_leak",
                f"{cw} sockets of this host toward {toward} are in CLOSE_WAIT: the peer closed "
                "them but the application never called close() (leaked connections, e.g. "
                "responses or pool connections not released). Find the owner: "
                "ss -tanp state close-wait.",
            )
        )
    tw = local.count("TIME_WAIT")
    size = local.port_range_size
    if size and tw >= max(2, TIME_WAIT_SHARE * size):
        out.append(
            warning(
                "local.time_wait_pressure",
                f"{tw} sockets toward {toward} are in TIME_WAIT, against {size} ephemeral ports "
                f"({local.port_range[0]}-{local.port_range[1]}): new connections will soon "  # type: ignore[index]
                "fail with EADDRNOTAVAIL. Reuse connections (keep-alive, pooling), widen "
                "net.ipv4.ip_local_port_range, consider net.ipv4.tcp_tw_reuse=1.",
            )
        )
    fds, limit = local.open_fds, local.fd_soft_limit
    if fds is not None and limit and fds >= FD_SHARE * limit:
        out.append(
            warning(
                "local.fd_pressure",
                f"This process has {fds} file descriptors open, against a soft "
                f"limit of {limit} (ulimit -n): raise the limit, or look for "
                "leaked sockets and files.",
            )
        )
    return out
