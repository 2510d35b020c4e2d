"""The report: a frozen pydantic model, serialisable to JSON, with a published schema.

Fault and warning codes are stable public API: adding one is a feature, renaming one is a
breaking change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeVar

from pydantic import Field, computed_field

from ._frozen import Frozen, FrozenMap
from .steps import (
    AddressAttempt,
    ConnectOutcome,
    DatabaseResult,
    DeadlineCut,
    ErrorInfo,
    HoldCheck,
    HoldOutcome,
    LocalHealth,
    Step,
    StepBase,
)
from .target import Target

__all__ = [
    "FAULT_CODES",
    "WARNING_CODES",
    "ChurnAttempt",
    "ChurnReport",
    "ChurnStats",
    "ConnectionOutcome",
    "Evidence",
    "Fault",
    "Layer",
    "PoolConnection",
    "PoolReport",
    "Report",
    "ReportWarning",
    "Timings",
]

Layer = Literal["dns", "l3", "l4", "l7", "local"]

#: Every fault code, with its layer and what it means.
FAULT_CODES: dict[str, tuple[Layer, str]] = {
    "dns.nxdomain": ("dns", "the name does not exist (NXDOMAIN)"),
    "dns.no_address": ("dns", "the name exists but has no A/AAAA record (NODATA)"),
    "dns.servfail": ("dns", "the name server failed to resolve the name (SERVFAIL)"),
    "dns.refused": ("dns", "the name server refused to answer this client (REFUSED: its ACL)"),
    "dns.upstream_timeout": (
        "dns",
        "the name server is alive but gave no answer for this name in time (its upstream)",
    ),
    "dns.timeout": ("dns", "no name server answered in time"),
    "l3.network_unreachable": ("l3", "no route to the network (ENETUNREACH)"),
    "l3.host_unreachable": (
        "l3",
        "the host cannot be reached (EHOSTUNREACH: ARP failed, or an ICMP unreachable came back)",
    ),
    "l3.host_unresponsive": ("l3", "the SYN went unanswered and the host gave no sign of life"),
    "l3.pmtu_blackhole": (
        "l3",
        "large packets are lost on the path and the ICMP 'fragmentation needed' is filtered "
        "(an MTU black hole): the exchange completed with a low MSS",
    ),
    "l4.refused": ("l4", "the host answered with RST: nothing listens on the port"),
    "l4.filtered": ("l4", "the SYN went unanswered although the host is alive"),
    "l4.connect_timeout": ("l4", "the SYN went unanswered; whether the host is alive is unknown"),
    "l7.connection_closed": ("l7", "the peer closed or reset the connection before answering"),
    "tls.cert_expired": ("l7", "the server's certificate has expired"),
    "tls.cert_not_yet_valid": ("l7", "the server's certificate is not valid yet"),
    "tls.cert_untrusted": ("l7", "the certificate chain does not lead to a trusted CA"),
    "tls.hostname_mismatch": ("l7", "the certificate is not valid for the target's name"),
    "tls.not_tls": ("l7", "the peer does not speak TLS"),
    "tls.handshake_failed": ("l7", "the TLS handshake failed (alert)"),
    "tls.handshake_timeout": ("l7", "no answer to the ClientHello"),
    "http.server_error": ("l7", "the server answered 5xx"),
    "http.client_error": ("l7", "the server answered 4xx"),
    "http.timeout": ("l7", "no response headers within the read timeout"),
    "http.protocol_error": ("l7", "the answer is not HTTP"),
    "db.too_many_connections": ("l7", "the database refuses more connections"),
    "db.host_blocked": ("l7", "the database blocks this client host"),
    "db.not_ready": ("l7", "the database is starting, shutting down, recovering or loading"),
    "db.greeting_timeout": ("l7", "connected, but the database sent nothing in time"),
    "db.protocol_mismatch": ("l7", "the peer does not speak the expected database protocol"),
    "db.auth_failed": ("l7", "the credentials were rejected"),
    "db.access_denied": ("l7", "the user may not connect from this host or to this database"),
    "db.server_error": ("l7", "the database answered with another error (see its code)"),
    "db.upstream_unavailable": (
        "l7",
        "a connection pooler (PgBouncer) answers, but its database server does not",
    ),
    "local.port_exhaustion": ("local", "no free local port (EADDRNOTAVAIL)"),
    "local.fd_exhaustion": ("local", "no free file descriptor (EMFILE/ENFILE)"),
    "local.connect_denied": (
        "local",
        "this host's own firewall or security policy forbids the connection (EPERM/EACCES)",
    ),
    "l4.connect_failed": ("l4", "connect() failed with an unexpected error (see the evidence)"),
    # -- gRPC health, proxies and their upstreams, forward proxies (issue 14) --------------
    "grpc.not_serving": ("l7", "the gRPC health check answers NOT_SERVING (or UNKNOWN)"),
    "grpc.unknown_service": (
        "l7",
        "the gRPC health service does not know the service asked for (NOT_FOUND)",
    ),
    "grpc.no_health_service": (
        "l7",
        "the gRPC server does not expose grpc.health.v1.Health (UNIMPLEMENTED)",
    ),
    "grpc.error": ("l7", "the gRPC health check ended with another status (see its code)"),
    "grpc.not_grpc": ("l7", "the peer does not speak HTTP/2 or gRPC"),
    "grpc.timeout": ("l7", "connected, but no gRPC health answer within the read timeout"),
    "http.upstream_refused": ("l7", "a proxy answered: its upstream refused the connection"),
    "http.upstream_timeout": ("l7", "a proxy answered: its upstream did not answer in time"),
    "http.upstream_unavailable": (
        "l7",
        "a proxy answered: it has no healthy upstream (backend) to send the request to",
    ),
    "http.upstream_tls": ("l7", "a proxy answered: TLS between it and its upstream failed"),
    "http.upstream_error": ("l7", "a proxy answered: its upstream failed (see its words)"),
    "proxy.auth_required": ("l7", "the forward proxy wants credentials (407)"),
    "proxy.denied": ("l7", "the forward proxy refuses this destination or client (403...)"),
    "proxy.connect_failed": ("l7", "the forward proxy could not reach the target"),
    # TLS deployments (issues 11 and 15).
    "tls.client_cert_required": (
        "l7",
        "the server requires a client certificate (mutual TLS): none was sent, or it refused "
        "the one sent",
    ),
    "tls.incomplete_chain": (
        "l7",
        "the server sends its certificate without the intermediate CA certificate(s) needed "
        "to verify it",
    ),
    "tls.protocol_version": (
        "l7",
        "no TLS version in common: the server's range and this client's",
    ),
    "http.tls_required": ("l7", "plain HTTP was sent to a port that expects TLS: use https://"),
    # Session tables (issues 11 and 13).
    "l4.idle_killed": (
        "l4",
        "a connection held idle died: the next segment got silence (a firewall or NAT expired "
        "its session) or an RST",
    ),
    "l4.reused_port_dropped": (
        "l4",
        "reconnects from a just-closed source port time out while fresh ports connect: a "
        "stateful firewall or NAT still holds the old session",
    ),
    "local.clock_skew": (
        "local",
        "this host's clock is wrong: a valid certificate reads as expired or not yet valid",
    ),
}

#: Every warning code: things that are not faults but matter.
WARNING_CODES: dict[str, str] = {
    "dns.search_walk": "the resolver asks search-list names that do not exist before this one",
    "dns.search_wildcard": "a wildcard search domain answered for the name: maybe the wrong host",
    "dns.nameservers_disagree": "the configured name servers give different answers",
    "tcp.syn_retransmitted": "a connect took 1 s or more: the first SYN was lost",
    "tcp.address_failed": "one resolved address failed while another worked",
    "icmp.no_reply": "ICMP echo got no reply while TCP works: ICMP is filtered",
    "tls.cert_expiring_soon": "a certificate of the chain expires soon",
    "tls.verify_disabled": "certificate verification was turned off for this diagnosis",
    "tls.chain_misordered": "the server sends its certificate chain out of order (or with "
    "certificates that are not part of it)",
    "tls.root_sent": "the server sends its root CA certificate (the trust anchor) in the chain",
    "local.close_wait_leak": "CLOSE_WAIT sockets toward the target pile up",
    "local.time_wait_pressure": "TIME_WAIT sockets toward the target near the port range",
    "local.fd_pressure": "open file descriptors near the limit",
    "diagnosis.deadline": "the total deadline ended the diagnosis early: results are partial",
}

JsonScalar = str | int | float | bool | None


class Evidence(Frozen):
    """One observation behind a verdict: what was sent, what came back, how long it took."""

    step: str = Field(
        description="The rung that observed it: dns, icmp, tcp, tls, application, local."
    )
    observation: str = Field(description="The observation, in words.")
    data: FrozenMap[str, JsonScalar] = Field(default_factory=FrozenMap)


class Fault(Frozen):
    """The verdict when something is wrong: which layer, which code, and why."""

    layer: Layer
    code: str = Field(description="A stable dotted code, see FAULT_CODES.")
    summary: str = Field(description="One sentence an on-call engineer can act on.")
    evidence: tuple[Evidence, ...] = Field(default_factory=tuple)
    hints: tuple[str, ...] = Field(default_factory=tuple, description="What to check next.")


class ReportWarning(Frozen):
    """Not a fault, but it matters."""

    code: str
    message: str


class Timings(Frozen):
    """Milliseconds from the start of the diagnosis, the way curl's ``-w`` times are.

    ``dns`` is curl's ``time_namelookup``, ``tcp_connect`` its ``time_connect``,
    ``tls_handshake`` its ``time_appconnect``, ``first_byte`` its ``time_starttransfer`` and
    ``total`` its ``time_total``. Each is present only where it was measured.

    The clock starts after ``setup``: netprobe's own preparation (first imports of httpx,
    cryptography or a driver, the TLS context), which only the first diagnosis of a kind of
    target in a process pays. The other timings are the network's alone.
    """

    setup: float | None = None
    dns: float | None = None
    tcp_connect: float | None = None
    tls_handshake: float | None = None
    first_byte: float | None = None
    total: float | None = None


_S = TypeVar("_S", bound=StepBase)


class Report(Frozen):
    """The result of one diagnosis. ``ok`` is true when no fault was found.

    Immutable all the way down: tuples and read-only maps, never lists or dicts.
    """

    target: Target
    fault: Fault | None = None
    warnings: tuple[ReportWarning, ...] = Field(default_factory=tuple)
    timings_ms: Timings = Field(default_factory=Timings)
    steps: tuple[Step, ...] = Field(
        default_factory=tuple, description="Per-rung results in ladder order."
    )
    local: LocalHealth | None = Field(
        None, description="This host's own health: sockets toward the target, ports, fds."
    )
    deadline: DeadlineCut | None = Field(
        None, description="Set when the total deadline cut the diagnosis short (results partial)."
    )
    started_at: datetime
    netprobe_version: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """No fault was found (warnings do not count)."""
        return self.fault is None

    def step(self, kind: type[_S]) -> _S | None:
        """The step of the given model class, e.g. ``report.step(TcpStep)``, or ``None``."""
        for s in self.steps:
            if isinstance(s, kind):
                return s
        return None

    def warning_codes(self) -> list[str]:
        """The codes of the warnings, in order (handy in assertions and alerts)."""
        return [w.code for w in self.warnings]


# -- The pool probe's report ------------------------------------------------------------------

ConnectionOutcome = Literal["validated", "opened", "refused", "failed", "not_started"]


class PoolConnection(Frozen):
    """One connection of the pool."""

    index: int = Field(description="1-based, in the order the connections were started.")
    outcome: ConnectionOutcome
    fault_code: str | None = None
    detail: str | None = None
    connect_ms: float | None = None
    greeting_ms: float | None = Field(None, description="Greeting, or login + validation.")
    validation_ms: float | None = None
    held_ok: bool | None = Field(None, description="Still valid after the hold (when held).")
    hold_check: HoldCheck | None = Field(
        None, description="The keepalive probe sent after the hold, and its answer."
    )
    held_fault_code: str | None = Field(
        None, description="Why the connection died while held (l4.idle_killed)."
    )
    database: DatabaseResult | None = None
    tcp: AddressAttempt | None = None


class IdleTrial(Frozen):
    """One connection of an idle-timeout search: held idle ``idle_s``, then checked."""

    idle_s: float
    outcome: HoldOutcome | Literal["not_opened", "not_needed"] = Field(
        description="The keepalive check's answer after the idle; `not_opened`: the "
        "connection failed to open; `not_needed`: a shorter idle had died already."
    )
    waited_ms: float | None = None


class IdleSearch(Frozen):
    """The idle-timeout search of ``probe_pool(find_idle_timeout=True)``."""

    max_idle_s: float = Field(description="The longest idle tried (the bound asked for).")
    survived_s: float | None = Field(
        None, description="The longest idle after which the connection still answered."
    )
    died_s: float | None = Field(
        None, description="The shortest idle after which the connection was dead."
    )
    death: HoldOutcome | None = Field(
        None, description="How that connection had died: `silence`, `reset` or `closed`."
    )
    trials: tuple[IdleTrial, ...] = Field(default_factory=tuple)


class PoolReport(Frozen):
    """The result of one pool probe. ``ok`` when every requested connection held and validated."""

    ok: bool
    target: Target
    requested: int
    opened: int = Field(description="Connections open at the same time, each validated.")
    with_credentials: bool = Field(
        description="Real sessions (logins with the target's credentials) or greetings only."
    )
    hold_s: float = Field(description="How long the connections were held (after any cap).")
    held_ok: int | None = Field(None, description="Connections still valid after the hold.")
    time_to_fill_ms: float | None = None
    summary: str
    fault: Fault | None = None
    first_failure: int | None = Field(None, description="Index of the first failed connection.")
    most_common_fault: str | None = None
    syn_retransmitted: int | None = Field(
        None,
        description="How many connects needed a retransmitted SYN (TCP_INFO "
        "tcpi_total_retrans read right after each connect); None when no count was read.",
    )
    fd_limit: int | None = Field(None, description="RLIMIT_NOFILE (soft) of this process.")
    fd_open: int | None = None
    fd_headroom: int | None = None
    notes: tuple[str, ...] = Field(default_factory=tuple)
    connections: tuple[PoolConnection, ...] = Field(default_factory=tuple)
    idle_search: IdleSearch | None = Field(
        None, description="The idle-timeout search, with find_idle_timeout."
    )
    started_at: datetime
    netprobe_version: str


# -- The churn probe's report -----------------------------------------------------------------

ChurnKind = Literal["fresh", "reused"]


class ChurnAttempt(Frozen):
    """One connect of the churn probe."""

    index: int = Field(description="1-based, in the order the connects were started.")
    kind: ChurnKind = Field(
        description="`reused`: from a source port this probe had just closed toward the "
        "same destination; `fresh`: from a port the kernel chose that was not."
    )
    local_port: int | None = None
    outcome: ConnectOutcome | Literal["bind_failed"]
    connect_ms: float | None = None
    syns_sent: int | None = Field(
        None,
        description="SYNs sent: 1 + the retransmissions the kernel counted (TCP_INFO "
        "tcpi_total_retrans); null where TCP_INFO is not available.",
    )
    error: ErrorInfo | None = None


class ChurnStats(Frozen):
    """The connects of one kind, counted, and their connect times."""

    attempts: int
    established: int
    timed_out: int
    failed: int = Field(description="Refused, reset or another error.")
    retransmitted: int = Field(
        description="Established only after a retransmitted SYN (the first one was lost)."
    )
    by_syns: FrozenMap[str, int] = Field(
        default_factory=FrozenMap,
        description="Connects by the SYNs they needed: `1`, `2`... and `timeout` (gave up). "
        "A SYN lost once costs the retransmission timeout: 1 s, then 1 s steps "
        "(Linux 6.5+, tcp_syn_linear_timeouts) or doubling (1, 3, 7 s).",
    )
    median_ms: float | None = Field(None, description="Median connect time of the established.")
    max_ms: float | None = Field(None, description="Slowest established connect.")


class ChurnReport(Frozen):
    """The result of one churn probe: fresh versus reused source ports.

    ``ok`` when every connect of both kinds was established on its first SYN."""

    ok: bool
    target: Target
    address: str | None = Field(None, description="The address connected to.")
    pairs_requested: int
    close: Literal["rst"] = Field(
        "rst",
        description="How each connection was closed: an RST (SO_LINGER 0), so that no "
        "TIME_WAIT blocks the reuse of its source port.",
    )
    fresh: ChurnStats
    reused: ChurnStats
    summary: str
    fault: Fault | None = None
    notes: tuple[str, ...] = Field(default_factory=tuple)
    duration_ms: float
    attempts: tuple[ChurnAttempt, ...] = Field(default_factory=tuple)
    started_at: datetime
    netprobe_version: str
