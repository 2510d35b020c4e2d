"""What the probes observed, rung by rung: plain data, in one module (as h11 keeps its events).

Every model is frozen and holds tuples and read-only maps, never lists or dicts: a report is
a record, and nothing reachable from it can change after it was built. Probes build these;
classification (``netprobe/classify/``) reads them; nothing here decides what is wrong.
"""

from __future__ import annotations

import errno as errno_mod
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from ._frozen import Frozen, FrozenMap

__all__ = [
    "HEADERS_OF_INTEREST",
    "AddressAttempt",
    "ApplicationStep",
    "CertificateInfo",
    "ConnectOutcome",
    "DatabaseOutcome",
    "DatabasePhase",
    "DatabaseResult",
    "DeadlineCut",
    "DnsStep",
    "ErrorInfo",
    "FollowUpHandshake",
    "FollowUpPurpose",
    "GrpcFailure",
    "GrpcResult",
    "GrpcStatusSource",
    "HoldCheck",
    "HoldOutcome",
    "HopOutcome",
    "HttpFailure",
    "HttpHop",
    "HttpResult",
    "IcmpAddressResult",
    "IcmpError",
    "IcmpStep",
    "LocalHealth",
    "NameserverAnswer",
    "PmtuProbe",
    "ProxyFailure",
    "ProxyStep",
    "Rcode",
    "ResolverWalk",
    "Rung",
    "Step",
    "StepBase",
    "StepStatus",
    "TcpInfoFacts",
    "TcpStep",
    "TlsFailure",
    "TlsStep",
    "TraceHop",
    "TraceStep",
    "WalkQuery",
]


# -- Shared pieces -------------------------------------------------------------------------------

StepStatus = Literal["ok", "failed", "skipped"]


class ErrorInfo(Frozen):
    """An exception, reduced to data: its type, errno (number and name) and message."""

    type: str
    errno: int | None = None
    errno_name: str | None = None
    message: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Plain data (type, errno, message) of an exception: reports never hold live exceptions."""
        err = getattr(exc, "errno", None)
        err = err if isinstance(err, int) else None
        message = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return cls(
            type=type(exc).__name__,
            errno=err,
            errno_name=errno_mod.errorcode.get(err) if err is not None else None,
            message=str(message),
        )


class StepBase(Frozen):
    """One rung of the ladder: did it work, and if not, why was it not ok."""

    status: StepStatus
    reason: str | None = None
    duration_ms: float | None = None


# -- The DNS rung --------------------------------------------------------------------------------

#: What a name server said (or did not): the distinctions getaddrinfo loses.
Rcode = Literal["NOERROR", "NXDOMAIN", "NODATA", "SERVFAIL", "REFUSED", "TIMEOUT", "ERROR"]


class NameserverAnswer(Frozen):
    """One direct query to one name server, made only when getaddrinfo failed."""

    nameserver: str
    qtype: Literal["A", "AAAA"]
    rcode: Rcode
    addresses: tuple[str, ...] = Field(default_factory=tuple)
    elapsed_ms: float | None = None
    detail: str | None = None
    cname_chain: tuple[str, ...] = Field(
        default_factory=tuple,
        description="The aliases (CNAME targets) the answer led through, in order: the "
        "last is the name the rcode is about (a dangling CNAME: NXDOMAIN for it).",
    )


class WalkQuery(Frozen):
    """One name of the resolver's search walk, asked (A) of the first name server."""

    name: str
    rcode: Rcode
    addresses: tuple[str, ...] = Field(default_factory=tuple)
    elapsed_ms: float | None = None


class ResolverWalk(Frozen):
    """The system resolver's search-list walk for the name, replayed with direct queries: the
    names tried in glibc's order (resolv.conf ``search`` and ``ndots``), which one answered,
    and what the misses before it cost."""

    nameserver: str = Field(description="The name server asked (resolv.conf's first).")
    ndots: int
    search: tuple[str, ...] = Field(default_factory=tuple)
    candidates: tuple[str, ...] = Field(
        default_factory=tuple, description="Every name the resolver would try, in order."
    )
    queries: tuple[WalkQuery, ...] = Field(default_factory=tuple)
    answered: str | None = Field(None, description="The name that answered with an address.")
    wasted_queries: int = Field(
        0, description="Queries sent before the answer: an A and an AAAA per name missed."
    )
    wasted_ms: float = Field(0.0, description="What the missed names cost, in round trips (ms).")
    wildcard: str | None = Field(
        None,
        description="The search domain that answered the name, found to answer any name "
        "under it (a wildcard record): the address may be the wrong host's.",
    )
    by_nameserver: tuple[NameserverAnswer, ...] = Field(
        default_factory=tuple,
        description="The answered name asked (A) of every configured name server, when "
        "there are several: they should agree.",
    )


class DnsStep(StepBase):
    """Name resolution as the application does it (getaddrinfo), with a direct-query diagnosis."""

    name: Literal["dns"] = "dns"
    host: str
    source: Literal["literal", "getaddrinfo", "nameservers"] = "getaddrinfo"
    addresses: tuple[str, ...] = Field(
        default_factory=tuple, description="Resolved addresses, in order."
    )
    error: ErrorInfo | None = Field(None, description="getaddrinfo's error (gaierror), if any.")
    rcode: Rcode | None = Field(None, description="The verdict of the direct queries, if made.")
    queries: tuple[NameserverAnswer, ...] = Field(default_factory=tuple)
    alive_nameservers: tuple[str, ...] = Field(
        default_factory=tuple,
        description="Name servers asked directly that answered a control query (CHAOS "
        "version.bind, answered by the server itself without asking anyone): alive, even if "
        "they gave no answer for the name.",
    )
    answered_by: Literal["hosts", "dns"] | None = Field(
        None,
        description="Where getaddrinfo's answer came from: the hosts file (nsswitch "
        "``files``) or DNS; None when unknown or when it failed.",
    )
    walk: ResolverWalk | None = Field(
        None, description="The resolver's search walk, when the search list takes part."
    )


# -- The ICMP rung -------------------------------------------------------------------------------


class IcmpAddressResult(Frozen):
    """Echoes to one address: how many came back, how fast, and any ICMP error.

    ``pending`` echoes were still awaiting their reply when the diagnosis ended (the TCP and
    application rungs were done first): they are neither answered nor lost.
    """

    address: str
    sent: int = 0
    received: int = 0
    pending: int = 0
    rtt_min_ms: float | None = None
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None
    unreachable: str | None = Field(
        None, description="Meaning of an ICMP destination-unreachable (or other error) received."
    )
    unreachable_from: str | None = Field(
        None, description="Who sent the ICMP error (a router, a firewall, or this host itself)."
    )
    immediate: bool = Field(
        False, description="The echo could not even be sent (local routing table or policy)."
    )

    @property
    def lost(self) -> int:
        """Echoes that got no reply within their own timeout (pending ones excluded)."""
        return max(0, self.sent - self.received - self.pending - (1 if self.unreachable else 0))

    @property
    def loss_pct(self) -> float | None:
        done = self.sent - self.pending
        return None if done <= 0 else 100.0 * (done - self.received) / done


class IcmpStep(StepBase):
    """``skipped`` (with the reason and the fix) when the OS allows no ICMP socket."""

    name: Literal["icmp"] = "icmp"
    engine: str | None = None
    results: tuple[IcmpAddressResult, ...] = Field(default_factory=tuple)
    not_waited_for: bool = Field(
        False,
        description="Echoes were still awaiting their reply when the other rungs had answered: "
        "the diagnosis does not wait for ICMP, so they are neither answered nor lost.",
    )

    def result_for(self, address: str) -> IcmpAddressResult | None:
        for r in self.results:
            if r.address == address:
                return r
        return None


# -- The TCP rung --------------------------------------------------------------------------------

ConnectOutcome = Literal[
    "established",  # SYN, SYN+ACK, ACK
    "refused",  # RST: ECONNREFUSED
    "timeout",  # no answer to the SYN within the connect timeout
    "host_unreachable",  # EHOSTUNREACH
    "network_unreachable",  # ENETUNREACH
    "port_exhaustion",  # EADDRNOTAVAIL: no free local port
    "fd_exhaustion",  # EMFILE / ENFILE
    "denied",  # EPERM / EACCES: a local firewall (OUTPUT chain) or policy
    "reset",  # ECONNRESET: the handshake completed, then the peer reset before we used it
    "error",  # anything else, see ``error``
]


class IcmpError(Frozen):
    """An ICMP error read from the socket's error queue (``IP_RECVERR``): who sent it and what
    it says. The errno of a connect cannot tell a firewall's reject from a dead host; this can."""

    origin: Literal["icmp", "icmp6", "local"] = Field(
        description="An ICMPv4 or ICMPv6 error a host on the path sent, or this host's own stack."
    )
    icmp_type: int
    icmp_code: int
    offender: str | None = Field(None, description="The address that sent the ICMP error.")
    meaning: str = Field(description="What the type and code say, in words.")
    admin_prohibited: bool = Field(
        False, description="A firewall's reject (ICMP 3/9, 3/10, 3/13; ICMPv6 1/1)."
    )
    mtu: int | None = Field(
        None, description="The next-hop MTU of a 'fragmentation needed' / 'packet too big'."
    )


class AddressAttempt(Frozen):
    """A connect to one address."""

    address: str
    port: int
    family: Literal["ipv4", "ipv6"]
    outcome: ConnectOutcome
    connect_ms: float | None = Field(None, description="Time from connect() to its result.")
    error: ErrorInfo | None = None
    immediate: bool = Field(
        False,
        description="connect() failed at once, before any packet left: the local routing "
        "table or socket layer said no.",
    )
    local_address: str | None = Field(None, description="Our end of an established connection.")
    syn_retransmits: int | None = Field(
        None,
        description="Segments the kernel retransmitted before the handshake completed "
        "(TCP_INFO tcpi_total_retrans, read right after connect): above 0, a SYN or its "
        "SYN+ACK was lost. None when the kernel does not say.",
    )
    icmp_error: IcmpError | None = Field(
        None,
        description="The ICMP error that failed the connect, from the socket's error queue: "
        "its type, code and the hop that sent it.",
    )

    @property
    def endpoint(self) -> str:
        """``address:port``, the address in brackets when it is IPv6."""
        return (
            f"[{self.address}]:{self.port}"
            if self.family == "ipv6"
            else f"{self.address}:{self.port}"
        )


HoldOutcome = Literal["alive", "silence", "reset", "closed", "unavailable"]


class HoldCheck(Frozen):
    """A held connection's transport checked on the wire: a TCP keepalive probe sent after
    the hold, which the peer's TCP must acknowledge and every middlebox must pass.

    ``alive``: the probe was acknowledged. ``silence``: no acknowledgement within the wait
    (a stateful firewall or NAT dropped the probe: its session for the connection is gone).
    ``reset``: an RST ended the connection. ``closed``: the peer had closed it (FIN).
    ``unavailable``: the socket gives no TCP_INFO (not Linux): nothing was sent."""

    outcome: HoldOutcome
    idle_ms: float | None = Field(
        None, description="How long the connection had received nothing when the check began."
    )
    waited_ms: float = Field(description="From the probe armed to the answer, or to giving up.")
    probes_unanswered: int | None = Field(
        None, description="Keepalive probes sent and not acknowledged (tcpi_probes), at the end."
    )
    error: ErrorInfo | None = Field(None, description="The socket's error (ECONNRESET...).")


#: What one TTL-limited SYN of a trace met.
HopOutcome = Literal[
    "time_exceeded",  # a router on the way answered ICMP time exceeded: the SYN got this far
    "reached",  # the destination answered (SYN+ACK or RST): the SYN got all the way
    "unreachable",  # an ICMP destination unreachable (a firewall's reject, no route...)
    "silent",  # nothing answered within the trace's budget
    "error",  # this host's own stack refused to send it
]


class TraceHop(Frozen):
    """One TTL of a TCP trace: the SYN sent with this TTL, and who answered it."""

    ttl: int
    outcome: HopOutcome
    address: str | None = Field(None, description="Who answered: the router or the destination.")
    icmp_type: int | None = None
    icmp_code: int | None = None
    meaning: str | None = Field(None, description="The ICMP error (or the answer), in words.")
    rtt_ms: float | None = Field(None, description="From the SYN to its answer.")


class TraceStep(StepBase):
    """A TCP trace to the real destination port after the connect failed: SYNs with TTL 1, 2,
    ... (sent together), each answered by the router where its TTL ran out (ICMP time
    exceeded, read from the socket's error queue), by the destination, or by nobody. No raw
    socket. ``hops`` ends at the first TTL the destination answered."""

    name: Literal["trace"] = "trace"
    address: str
    port: int
    max_hops: int
    timeout_s: float = Field(description="How long each SYN of the trace was given.")
    hops: tuple[TraceHop, ...] = Field(default_factory=tuple)
    partial: bool = Field(
        False, description="The total deadline cut the trace: the hops still waiting are silent."
    )

    @property
    def last_answering(self) -> TraceHop | None:
        """The highest TTL that a router (or the destination) answered."""
        answered = [h for h in self.hops if h.outcome != "silent" and h.address is not None]
        return answered[-1] if answered else None

    @property
    def reached(self) -> bool:
        return any(h.outcome == "reached" for h in self.hops)


class TcpInfoFacts(Frozen):
    """What the kernel's ``TCP_INFO`` said about one connection."""

    pmtu: int | None = Field(None, description="tcpi_pmtu: the path MTU the connection used.")
    snd_mss: int | None = Field(None, description="tcpi_snd_mss: the segment size it sends.")
    rcv_mss: int | None = Field(None, description="tcpi_rcv_mss: the segment size it received.")
    total_retrans: int | None = Field(
        None, description="tcpi_total_retrans: segments retransmitted (the SYN included)."
    )


class PmtuProbe(Frozen):
    """The exchange that stalled after ESTABLISHED (a TLS handshake, an HTTP response),
    repeated once on a new connection whose MSS was set low (``TCP_MAXSEG``) before
    connect(): when it completes, packets larger than that are lost on the path."""

    mss: int = Field(description="The TCP_MAXSEG set before connect() on the retry.")
    exchange: Literal["tls_handshake", "http_response"]
    outcome: Literal["completed", "timeout", "closed", "connect_failed", "error"]
    duration_ms: float | None = None
    retry: TcpInfoFacts | None = Field(None, description="TCP_INFO of the retry's connection.")
    stalled: TcpInfoFacts | None = Field(
        None, description="TCP_INFO of the diagnosis's own connection, whose exchange stalled."
    )
    control: Literal["completed", "timeout", "closed", "connect_failed", "error"] | None = Field(
        None,
        description="The same exchange at the normal MSS, at the same time: a black hole "
        "stalls it again; a server that hung once completes it.",
    )

    @property
    def completed(self) -> bool:
        return self.outcome == "completed"

    @property
    def black_hole(self) -> bool:
        """Only the small MSS got through: the small retry completed, the control did not."""
        return self.outcome == "completed" and self.control not in ("completed", None)


class TcpStep(StepBase):
    """Every resolved address was tried concurrently; ``connected_to`` is the one kept."""

    name: Literal["tcp"] = "tcp"
    timeout_s: float
    attempts: tuple[AddressAttempt, ...] = Field(default_factory=tuple)
    connected_to: str | None = None
    canary: tuple[AddressAttempt, ...] = Field(
        default_factory=tuple,
        description="Liveness witness: connects to other ports of an address whose SYN went "
        "unanswered (an RST or SYN+ACK proves the host alive).",
    )
    canary_enabled: bool = Field(True, description="Whether canary connects were allowed.")
    pmtu_probe: PmtuProbe | None = Field(
        None,
        description="After a TLS handshake or an HTTP response stalled on this connection: "
        "the same exchange on a new connection with a low MSS (an MTU black hole test).",
    )
    trace: TraceStep | None = Field(
        None,
        description="Where the SYN dies: a TCP trace to the real port, run after the connect "
        "failed at L3/L4 (trace=False turns it off).",
    )


# -- The TLS rung --------------------------------------------------------------------------------

#: What went wrong, as the TLS probe observed it (classification turns it into a fault code).
TlsFailure = Literal[
    "verify",  # the chain or the name did not verify: see verify_code
    "alert",  # the peer sent an alert, or our side refused its parameters: see ssl_reason
    "not_tls",  # the first bytes back were not a TLS record: see peer_sent
    "timeout",  # no complete answer to the ClientHello within the read timeout
    "closed",  # the peer closed or reset the connection before the handshake completed
    "error",  # anything else: see error
]


class CertificateInfo(Frozen):
    """One certificate the server presented, with what an operator checks first."""

    subject: str = Field(description="RFC 4514 distinguished name.")
    common_name: str | None = None
    issuer: str = Field(description="RFC 4514 distinguished name of the issuer.")
    dns_names: tuple[str, ...] = Field(default_factory=tuple, description="DNS subjectAltNames.")
    ip_addresses: tuple[str, ...] = Field(default_factory=tuple, description="IP subjectAltNames.")
    not_before: datetime
    not_after: datetime
    days_left: float = Field(description="Days until not_after (negative: expired).")
    serial: str = Field(description="Serial number, hex.")
    sha256: str = Field(description="SHA-256 fingerprint of the DER encoding, hex with colons.")
    self_signed: bool = Field(description="Subject equals issuer.")
    is_ca: bool = False
    ca_issuers: tuple[str, ...] = Field(
        default_factory=tuple,
        description="Authority Information Access caIssuers URLs: where the issuer's "
        "certificate can be fetched (RFC 5280 §4.2.2.1).",
    )


FollowUpPurpose = Literal["tls_required", "server_version", "cipher", "sni", "server_clock"]


class FollowUpHandshake(Frozen):
    """One TLS handshake on a fresh connection to the same address, made only after a failure,
    to learn one fact the failed exchange could not show (bounded by the read timeout and the
    total deadline; verification off: what is learnt is the fact, not trust):

    * ``tls_required``: does a plain-HTTP port that closed without a byte answer a ClientHello?
    * ``server_version``: which TLS version the server accepts (one handshake per version);
    * ``cipher``: which suite the server picks when this client offers every one it has;
    * ``sni``: which certificate the server presents for a given server name;
    * ``server_clock``: the server's ``Date`` header, over TLS that verifies nothing.
    """

    purpose: FollowUpPurpose
    address: str = Field(description="The address connected to (the diagnosis's own).")
    server_name: str | None = Field(None, description="The SNI sent (none for an IP).")
    offered: str | None = Field(
        None, description="The versions or suites offered, e.g. 'TLSv1 only', 'every suite'."
    )
    outcome: Literal["ok", "alert", "not_tls", "closed", "timeout", "connect_failed", "error"]
    version: str | None = None
    cipher: str | None = None
    alert: str | None = None
    peer_sent: str | None = Field(None, description="What came back instead of TLS, in words.")
    leaf: CertificateInfo | None = Field(None, description="The certificate presented.")
    server_date: datetime | None = Field(None, description="The HTTP Date header (UTC).")
    local_time: datetime | None = Field(
        None, description="This host's clock when the Date header arrived (UTC)."
    )
    duration_ms: float | None = None


class TlsStep(StepBase):
    """The TLS handshake run on the TCP connection the diagnosis established."""

    name: Literal["tls"] = "tls"
    server_name: str | None = Field(
        None, description="The SNI sent (none for IP literals, per RFC 6066 §3)."
    )
    verified: bool = Field(True, description="Whether the certificate was verified at all.")
    error: ErrorInfo | None = None
    failure: TlsFailure | None = None
    version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    verify_code: int | None = Field(None, description="OpenSSL X509_V_ERR_* code.")
    verify_message: str | None = None
    ssl_reason: str | None = Field(
        None, description="SSLError.reason, e.g. TLSV1_ALERT_PROTOCOL_VERSION."
    )
    alert: str | None = Field(
        None, description="The TLS alert or refusal, normalised: protocol_version, ..."
    )
    peer_sent: str | None = Field(
        None, description="What the peer sent instead of a ServerHello, in words."
    )
    peer_bytes: str | None = Field(None, description="The first bytes the peer sent, hex.")
    chain: tuple[CertificateInfo, ...] = Field(
        default_factory=tuple, description="The presented chain, leaf first (also on failure)."
    )
    client_cert_requested: bool | None = Field(
        None,
        description="The server asked for a client certificate (a CertificateRequest): seen "
        "in the clear up to TLS 1.2; in TLS 1.3 read from this client's own encrypted answer "
        "(an empty or full Certificate message before its Finished). Null: not known.",
    )
    client_cert_sent: bool | None = Field(
        None, description="This client answered the request with a certificate (false: none)."
    )
    client_cert: CertificateInfo | None = Field(
        None, description="The client certificate configured (client_cert=), when readable."
    )
    after_handshake: bool = Field(
        False,
        description="The failure came after the handshake completed (TLS 1.3: the server's "
        "verdict on the client certificate arrives on the first read).",
    )
    local_time: datetime | None = Field(
        None, description="This host's clock when the handshake ended (UTC)."
    )
    issuer_in_store: CertificateInfo | None = Field(
        None,
        description="After a failed verification: a certificate of this client's trust store "
        "whose subject is the leaf's issuer, when the server did not send one.",
    )
    client_versions: tuple[str, ...] = Field(
        default_factory=tuple,
        description="The TLS versions this client allowed (its context's range), low to high.",
    )
    follow_ups: tuple[FollowUpHandshake, ...] = Field(
        default_factory=tuple,
        description="Handshakes on fresh connections made after the failure, to learn why.",
    )


# -- A forward proxy on the way (HTTP_PROXY / HTTPS_PROXY, or the proxy option) ----------------

ProxyFailure = Literal[
    "timeout",  # no answer to the CONNECT within the read timeout
    "closed",  # the proxy closed or reset the connection before answering the CONNECT
    "protocol",  # the answer to the CONNECT is not HTTP: see peer_sent
    "refused",  # the proxy answered the CONNECT with a status other than 2xx
    "error",  # anything else: see error
]


class ProxyStep(StepBase):
    """The way through a forward HTTP proxy, as the application goes (httpx's rules).

    ``mode`` ``connect``: an ``https://`` target is reached through a ``CONNECT`` tunnel (this
    step is the CONNECT and its answer; TLS to the target runs inside the tunnel).
    ``forward``: an ``http://`` target's request goes to the proxy with its absolute URL (the
    answer is the application step's; this step records the route). The DNS and TCP rungs are
    about the proxy.
    """

    name: Literal["proxy"] = "proxy"
    url: str = Field(description="The proxy, scheme://host:port (credentials never shown).")
    source: str = Field(
        description="Where the proxy came from: an environment variable (HTTPS_PROXY, "
        "HTTP_PROXY, ALL_PROXY, or their lower-case forms) or the proxy option."
    )
    mode: Literal["connect", "forward"]
    credentials_sent: bool = Field(
        False, description="Proxy-Authorization (Basic) was sent (whatever the proxy made of it)."
    )
    request: str | None = Field(None, description="The request line sent to the proxy.")
    http_status: int | None = Field(None, description="The proxy's status for the CONNECT.")
    http_reason: str | None = None
    headers: FrozenMap[str, str] = Field(
        default_factory=FrozenMap, description="The proxy's response headers of interest."
    )
    body_preview: str | None = Field(None, description="Start of the proxy's error page.")
    failure: ProxyFailure | None = None
    error: ErrorInfo | None = None
    peer_sent: str | None = Field(None, description="What came back instead of HTTP, in words.")


# -- HTTP, over the established (and encrypted) connection ---------------------------------------

HttpFailure = Literal[
    "timeout",  # no response headers within the read timeout
    "closed",  # the peer closed or reset the connection before answering
    "protocol",  # the answer is not HTTP: see peer_sent
    "tls_alert",  # a TLS alert after the handshake (TLS 1.3: client certificate required)
    "error",  # anything else: see the step's error
]

#: Response headers worth reporting (lower case); the rest are left out of the report.
HEADERS_OF_INTEREST = (
    "server",
    "content-type",
    "content-length",
    "location",
    "retry-after",
    "www-authenticate",
    "via",
    "connection",
    "x-request-id",
    # which intermediary answered, and what it said (classify/proxy.py)
    "proxy-status",
    "x-squid-error",
    "cf-ray",
    "x-envoy-upstream-service-time",
    "proxy-authenticate",
)


class HttpHop(Frozen):
    """One response of a redirect chain (only same-origin redirects are followed)."""

    status: int
    url: str
    location: str | None = None


class HttpResult(Frozen):
    """The request sent and the response (or its absence) that came back."""

    method: str
    url: str = Field(description="The requested URL (credentials never shown).")
    status: int | None = None
    reason: str | None = Field(None, description="The reason phrase, e.g. 'Not Found'.")
    http_version: str | None = None
    headers: FrozenMap[str, str] = Field(
        default_factory=FrozenMap, description="Response headers of interest (lower-case names)."
    )
    location: str | None = None
    retry_after: str | None = Field(None, description="Retry-After as sent (seconds or date).")
    retry_after_s: float | None = Field(None, description="Retry-After in seconds, if numeric.")
    body_bytes: int | None = Field(None, description="Body bytes read (capped).")
    body_preview: str | None = Field(None, description="Start of the body, for errors.")
    expected: tuple[int, ...] | None = Field(None, description="Statuses counted as healthy.")
    healthy: bool | None = None
    redirects: tuple[HttpHop, ...] = Field(default_factory=tuple)
    failure: HttpFailure | None = None
    tls_alert: str | None = Field(None, description="A post-handshake TLS alert, normalised.")
    peer_sent: str | None = Field(None, description="What came back instead of HTTP, in words.")
    peer_bytes: str | None = Field(None, description="First bytes received, hex.")
    first_byte_ms: float | None = Field(None, description="Request sent to first byte back.")
    request_sent: bool = Field(False, description="The request reached the connection.")
    tls_follow_up: FollowUpHandshake | None = Field(
        None,
        description="A ClientHello on a fresh connection, sent only after the server closed "
        "the plain-HTTP exchange without a byte: does the port expect TLS?",
    )


# -- A gRPC health check, over HTTP/2 -----------------------------------------------------------

GrpcFailure = Literal[
    "timeout",  # no complete answer within the read timeout (see the progress fields)
    "closed",  # the peer closed or reset the connection before the answer was complete
    "not_http2",  # the first bytes back are not an HTTP/2 server preface: see peer_sent
    "not_grpc",  # HTTP/2, but the answer carries no grpc-status (a proxy's 502, a web page)
    "reset_stream",  # the server reset the call's stream (RST_STREAM): see rst_stream
    "goaway",  # the server ended the connection (GOAWAY) before answering: see goaway
    "protocol",  # broken HTTP/2 or gRPC after the preface: see protocol_error
    "tls_alert",  # a TLS alert after the handshake (TLS 1.3: client certificate required)
]

#: Where a call's gRPC status came from: the server's trailers (or Trailers-Only headers),
#: or synthesised as a gRPC client does for an answer without one (PROTOCOL-HTTP2.md).
GrpcStatusSource = Literal[
    "trailers", "trailers_only", "http_status", "rst_stream", "goaway", "client"
]


class GrpcResult(Frozen):
    """What the gRPC health check observed, from the HTTP/2 preface to the decoded status."""

    method: str = Field(
        "/grpc.health.v1.Health/Check", description="The gRPC method called (:path)."
    )
    service: str = Field(
        "", description="The service whose health was asked ('' is the server as a whole)."
    )
    authority: str = Field(description="The :authority sent (host:port).")
    tls: bool = Field(False, description="Whether the exchange ran over TLS.")
    alpn: str | None = Field(None, description="The ALPN protocol the TLS handshake agreed on.")
    healthy: bool = Field(False, description="True only for grpc-status OK and SERVING.")
    failure: GrpcFailure | None = None
    reason: str = Field("", description="What happened, in one line.")
    # The HTTP/2 connection.
    http2: bool = Field(False, description="The peer sent an HTTP/2 SETTINGS frame first.")
    settings_acked: bool = Field(False, description="The peer acknowledged our SETTINGS.")
    server_settings: FrozenMap[str, int] = Field(
        default_factory=FrozenMap, description="The SETTINGS the server sent, by name."
    )
    goaway: str | None = Field(None, description="A GOAWAY's error code name, if one came.")
    goaway_debug: str | None = Field(None, description="A GOAWAY's debug data, as text.")
    rst_stream: str | None = Field(None, description="The RST_STREAM error code name, if any.")
    # The response.
    http_version: str | None = Field(
        None, description="HTTP/2, or the version of an HTTP/1.x answer to the preface."
    )
    http_status: int | None = Field(
        None, description="The response's :status (or an HTTP/1.x answer's status code)."
    )
    headers: FrozenMap[str, str] = Field(
        default_factory=FrozenMap, description="Response headers of interest (lower-case names)."
    )
    trailers: FrozenMap[str, str] = Field(
        default_factory=FrozenMap,
        description="grpc-* trailers (or Trailers-Only headers), raw.",
    )
    trailers_only: bool = Field(False, description="Status in the headers (Trailers-Only).")
    grpc_status: int | None = Field(None, description="The call's status code.")
    grpc_status_name: str | None = Field(None, description="Its canonical name, e.g. NOT_FOUND.")
    status_from: GrpcStatusSource | None = Field(
        None, description="Where the status came from; anything but trailers is synthesised."
    )
    grpc_message: str | None = Field(None, description="grpc-message, percent-decoded.")
    health_status: int | None = Field(None, description="HealthCheckResponse.status, a number.")
    health_status_name: str | None = Field(None, description="SERVING, NOT_SERVING, ...")
    body_bytes: int = Field(0, description="Response DATA bytes received.")
    body_preview: str | None = Field(None, description="Start of a body that is not gRPC.")
    protocol_error: str | None = Field(None, description="What broke HTTP/2 or gRPC, in words.")
    # What came back when it was not HTTP/2.
    peer_sent: str | None = Field(None, description="What came back instead, in words.")
    peer_bytes: str | None = Field(None, description="First bytes received, hex.")
    bytes_received: int = 0
    error: ErrorInfo | None = Field(None, description="The socket or TLS error, if one ended it.")
    tls_alert: str | None = Field(None, description="A post-handshake TLS alert, normalised.")
    # Timings (ms), from the moment the preface and the request were sent.
    timeout_s: float | None = Field(None, description="The read timeout the exchange had.")
    first_byte_ms: float | None = None
    response_ms: float | None = Field(None, description="To the response headers.")
    duration_ms: float | None = None


# -- A database conversation ---------------------------------------------------------------------

DatabaseOutcome = Literal[
    "ready",  # greeting / auth request / PONG / NOAUTH: the server is up and talking
    "validated",  # credentials given: logged in and the validation query answered
    "server_error",  # the server answered with an error (code / sqlstate / prefix below)
    "timeout",  # connected, but nothing (or not enough) arrived within the read timeout
    "closed",  # the server closed the connection without a complete answer
    "mismatch",  # the bytes are not this protocol (``looks_like`` says what they are)
    "tls_failed",  # the server offered TLS (PostgreSQL 'S') and the handshake failed
    "driver_error",  # the login driver failed in a way that is not a server error
    "unavailable",  # the driver of an authenticated check is not installed
]

DatabasePhase = Literal["greeting", "handshake", "login", "validation", "hold"]


class DatabaseResult(Frozen):
    """One database conversation, as observed."""

    protocol: Literal["mysql", "postgresql", "redis"]
    outcome: DatabaseOutcome
    phase: DatabasePhase = Field(
        "greeting", description="Where the conversation stopped (or ended well)."
    )
    server: str | None = Field(
        None,
        description="mysql, mariadb, postgresql, redis, or pgbouncer: the pooler that "
        "answered in PostgreSQL's place (recognised by its own messages).",
    )
    version: str | None = Field(None, description="Server version, when the server revealed it.")
    protocol_version: int | None = None
    connection_id: int | None = Field(None, description="MySQL thread id from the greeting.")
    auth_plugin: str | None = Field(
        None, description="MySQL auth plugin or PostgreSQL authentication method requested."
    )
    tls_supported: bool | None = Field(
        None, description="The server offers TLS (MySQL CLIENT_SSL, PostgreSQL 'S')."
    )
    tls_used: bool = False
    tls: TlsStep | None = Field(
        None, description="The TLS handshake negotiated inside the protocol (PostgreSQL)."
    )
    error_code: str | None = Field(
        None, description="MySQL error number, PostgreSQL SQLSTATE or Redis error prefix."
    )
    sqlstate: str | None = None
    error_message: str | None = None
    error_errno: str | None = Field(
        None, description="errno name when the connection broke (ECONNRESET...)."
    )
    error_fields: FrozenMap[str, str] = Field(
        default_factory=FrozenMap,
        description="PostgreSQL ErrorResponse fields (routine, detail...).",
    )
    probe_user: str | None = Field(None, description="User named by a credential-less probe.")
    login_attempted: bool = Field(
        False, description="A login with the target's credentials was tried (whatever came of it)."
    )
    logged_in: bool = Field(
        False, description="That login succeeded: the server accepted the credentials."
    )
    login_user: str | None = None
    validation: str | None = Field(None, description="The validation query, e.g. SELECT 1.")
    looks_like: str | None = Field(None, description="What unexpected bytes look like.")
    answered_instead: str | None = Field(
        None,
        description="The server sent no greeting (MySQL speaks first): who answered a "
        "client-first opening (PostgreSQL SSLRequest, TLS ClientHello, HTTP request, Redis "
        "PING) on a fresh connection, e.g. 'PostgreSQL (it answered the SSLRequest with "
        "'S'...)'.",
    )
    first_bytes: str | None = Field(None, description="Hex of the first bytes received.")
    greeting_ms: float | None = Field(None, description="From connected to the first answer.")
    login_ms: float | None = None
    validation_ms: float | None = None
    closed_cleanly: bool | None = Field(
        None, description="COM_QUIT / Terminate / QUIT sent, or the server closed after an error."
    )
    tls_alert: str | None = Field(
        None,
        description="A TLS alert that ended the conversation after the handshake (TLS 1.3: "
        "the server's verdict on the client certificate), normalised.",
    )
    bytes_sent: int = Field(
        0,
        description="Bytes this client sent before the greeting ended (0: the server "
        "ended it before we said anything).",
    )
    notes: tuple[str, ...] = Field(default_factory=tuple)


# -- The application rung ------------------------------------------------------------------------


class ApplicationStep(StepBase):
    """The protocol spoken over the established (and, for TLS targets, encrypted) connection."""

    name: Literal["application"] = "application"
    protocol: str
    error: ErrorInfo | None = None
    database: DatabaseResult | None = None
    http: HttpResult | None = None
    grpc: GrpcResult | None = None


# -- This host -----------------------------------------------------------------------------------


class LocalHealth(Frozen):
    """Read from /proc (Linux, no root needed); ``available`` is false elsewhere, with why."""

    available: bool
    reason: str | None = None
    toward: tuple[str, ...] = Field(
        default_factory=tuple, description="The endpoints counted (address:port of the target)."
    )
    states: FrozenMap[str, int] = Field(
        default_factory=FrozenMap,
        description="This host's TCP sockets toward the target, by state (SYN_SENT, "
        "ESTABLISHED, TIME_WAIT, CLOSE_WAIT, ...): every process of this network namespace.",
    )
    sockets_scanned: int | None = None
    scan_skipped: str | None = Field(
        None, description="Why the socket table was not read (too large to scan cheaply)."
    )
    port_range: tuple[int, int] | None = Field(
        None, description="net.ipv4.ip_local_port_range: the ephemeral ports for connect()."
    )
    open_fds: int | None = None
    fd_soft_limit: int | None = Field(None, description="RLIMIT_NOFILE soft limit (ulimit -n).")

    @property
    def port_range_size(self) -> int | None:
        return None if self.port_range is None else self.port_range[1] - self.port_range[0] + 1

    def count(self, state: str) -> int:
        return self.states.get(state, 0)


# -- The total deadline ------------------------------------------------------------------------

#: The rungs of the ladder that wait for an answer, in order (ICMP runs alongside TCP; the
#: proxy's CONNECT comes between TCP and TLS when an https:// target goes through a proxy).
Rung = Literal["dns", "tcp", "proxy", "tls", "application"]


class DeadlineCut(Frozen):
    """The total deadline ended the diagnosis: which rung it cut, and when.

    Recorded by the orchestrator when its own deadline (the ``timeout`` option) fired. The
    rungs before ``rung`` are complete; ``rung`` itself has what its probe saw before the cut
    (the DNS and TCP probes report their partial observations) or no step at all (the TLS
    handshake and the application exchange, cut mid-way); the rungs after it never ran.
    """

    rung: Rung | None = Field(
        description="The rung that was waiting for an answer; null when every rung had "
        "answered and the diagnosis was still gathering the rest (other addresses' connects, "
        "the liveness witnesses, this host's sockets)."
    )
    timeout_s: float = Field(description="The total deadline (the timeout option), seconds.")
    at_ms: float = Field(description="When the deadline fired, ms from the start.")


# -- Every rung ------------------------------------------------------------------------------

Step = Annotated[
    DnsStep | IcmpStep | TcpStep | ProxyStep | TlsStep | ApplicationStep,
    Field(discriminator="name"),
]
