"""Classification is pure: plain step data in, a verdict out. No sockets, no event loop."""

from __future__ import annotations

import socket

import pytest

from netprobe.classify import classify
from netprobe.options import Options
from netprobe.report import FAULT_CODES
from netprobe.steps import (
    AddressAttempt,
    ConnectOutcome,
    DnsStep,
    ErrorInfo,
    IcmpAddressResult,
    IcmpStep,
    NameserverAnswer,
    Rcode,
    Step,
    TcpStep,
)
from netprobe.target import parse_target

OPTS = Options()
TARGET = parse_target("db.internal:3306")


def attempt(
    outcome: ConnectOutcome,
    address: str = "10.0.0.5",
    ms: float = 1.0,
    errno_name: str | None = None,
    immediate: bool = False,
) -> AddressAttempt:
    return AddressAttempt(
        address=address,
        port=3306,
        family="ipv6" if ":" in address else "ipv4",
        outcome=outcome,
        connect_ms=ms,
        immediate=immediate,
        error=ErrorInfo(type="OSError", errno_name=errno_name, message=outcome)
        if outcome != "established"
        else None,
    )


def tcp(*attempts: AddressAttempt) -> TcpStep:
    ok = any(a.outcome == "established" for a in attempts)
    chosen = next((a.endpoint for a in attempts if a.outcome == "established"), None)
    return TcpStep(
        status="ok" if ok else "failed", timeout_s=3.0, attempts=list(attempts), connected_to=chosen
    )


DNS_OK = DnsStep(status="ok", host="db.internal", addresses=["10.0.0.5"])


def dns_failed(
    rcode: Rcode | None,
    gai_errno: int | None = None,
    *,
    alive: tuple[str, ...] = (),
    chain: tuple[str, ...] = (),
) -> DnsStep:
    return DnsStep(
        status="failed",
        host="db.internal",
        rcode=rcode,
        error=ErrorInfo(type="gaierror", errno=gai_errno, message="x") if gai_errno else None,
        queries=[
            NameserverAnswer(nameserver="127.0.0.1:53", qtype="A", rcode=rcode, cname_chain=chain)
        ]
        if rcode
        else [],
        alive_nameservers=alive,
    )


TCP_ROWS: list[tuple[str, list[Step], str | None]] = [
    ("established", [DNS_OK, tcp(attempt("established"))], None),
    ("refused", [DNS_OK, tcp(attempt("refused", errno_name="ECONNREFUSED"))], "l4.refused"),
    ("timeout without witness", [DNS_OK, tcp(attempt("timeout", ms=3000))], "l4.connect_timeout"),
    ("host unreachable", [DNS_OK, tcp(attempt("host_unreachable"))], "l3.host_unreachable"),
    (
        "network unreachable",
        [DNS_OK, tcp(attempt("network_unreachable", immediate=True))],
        "l3.network_unreachable",
    ),
    ("port exhaustion", [DNS_OK, tcp(attempt("port_exhaustion"))], "local.port_exhaustion"),
    ("fd exhaustion", [DNS_OK, tcp(attempt("fd_exhaustion"))], "local.fd_exhaustion"),
    ("local firewall", [DNS_OK, tcp(attempt("denied"))], "local.connect_denied"),
    ("other errno", [DNS_OK, tcp(attempt("error"))], "l4.connect_failed"),
    ("reset right after the handshake", [DNS_OK, tcp(attempt("reset"))], "l7.connection_closed"),
    # Several addresses: a definite answer speaks for the step over an unrouted IPv6 address.
    (
        "v6 unrouted, v4 refused",
        [
            DNS_OK,
            tcp(attempt("network_unreachable", "2001:db8::5", immediate=True), attempt("refused")),
        ],
        "l4.refused",
    ),
    (
        "v6 unrouted, v4 silent",
        [DNS_OK, tcp(attempt("network_unreachable", "2001:db8::5"), attempt("timeout"))],
        "l4.connect_timeout",
    ),
    (
        "local limit first",
        [DNS_OK, tcp(attempt("refused"), attempt("fd_exhaustion", "10.0.0.6"))],
        "local.fd_exhaustion",
    ),
    (
        "one of two works",
        [DNS_OK, tcp(attempt("refused", "10.0.0.6"), attempt("established"))],
        None,
    ),
    ("nxdomain", [dns_failed("NXDOMAIN")], "dns.nxdomain"),
    ("nodata", [dns_failed("NODATA")], "dns.no_address"),
    ("servfail", [dns_failed("SERVFAIL")], "dns.servfail"),
    ("refused by resolver", [dns_failed("REFUSED")], "dns.refused"),
    ("resolver silent", [dns_failed("TIMEOUT")], "dns.timeout"),
    (
        "resolver alive, upstream silent",
        [dns_failed("TIMEOUT", alive=("127.0.0.1:53",))],
        "dns.upstream_timeout",
    ),
    ("another server alive", [dns_failed("TIMEOUT", alive=("10.9.9.9",))], "dns.timeout"),
    ("dangling cname", [dns_failed("NXDOMAIN", chain=("gone.internal",))], "dns.nxdomain"),
    ("gai noname only", [dns_failed(None, socket.EAI_NONAME)], "dns.nxdomain"),
    ("gai again only", [dns_failed(None, socket.EAI_AGAIN)], "dns.timeout"),
    ("gai fail only", [dns_failed(None, socket.EAI_FAIL)], "dns.servfail"),
]


def test_dns_words_name_what_the_resolver_said() -> None:
    def summary(step: DnsStep) -> str:
        verdict = classify(TARGET, OPTS, [step])
        assert verdict.fault is not None
        return verdict.fault.summary + " | " + " | ".join(verdict.fault.hints)

    dangling = summary(dns_failed("NXDOMAIN", chain=("a.internal", "gone.internal")))
    assert "alias (CNAME) of 'gone.internal', which does not exist" in dangling
    refused = summary(dns_failed("REFUSED"))
    assert "REFUSED" in refused and "SERVFAIL" not in refused
    upstream = summary(dns_failed("TIMEOUT", alive=("127.0.0.1:53",)))
    assert "alive" in upstream and "reachable (UDP" not in upstream
    assert "dig @127.0.0.1 db.internal" in upstream


@pytest.mark.parametrize(("name", "steps", "code"), TCP_ROWS, ids=[r[0] for r in TCP_ROWS])
def test_rules(name: str, steps: list[Step], code: str | None) -> None:
    verdict = classify(TARGET, OPTS, steps)
    assert (verdict.fault.code if verdict.fault else None) == code
    if verdict.fault is not None:
        assert verdict.fault.layer == FAULT_CODES[verdict.fault.code][0]
        assert verdict.fault.summary.endswith(".")
        assert verdict.fault.hints


def test_refused_evidence_names_rst_and_errno() -> None:
    verdict = classify(TARGET, OPTS, [DNS_OK, tcp(attempt("refused", errno_name="ECONNREFUSED"))])
    assert verdict.fault is not None
    ev = verdict.fault.evidence[0]
    assert "RST" in ev.observation and "ECONNREFUSED" in ev.observation
    assert ev.data["outcome"] == "refused"


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("10.0.0.5", "0.0.0.0, not 127.0.0.1"),
        ("127.0.0.1", "another container or network namespace"),
        ("::1", "another container or network namespace"),
    ],
)
def test_refused_interface_hint_fits_the_address(address: str, fragment: str) -> None:
    """'Listen on 0.0.0.0, not 127.0.0.1' is wrong advice when the target is 127.0.0.1."""
    v = classify(TARGET, OPTS, [DNS_OK, tcp(attempt("refused", address))])
    assert v.fault is not None
    assert any(fragment in hint for hint in v.fault.hints), v.fault.hints


def test_local_route_is_said() -> None:
    v = classify(TARGET, OPTS, [DNS_OK, tcp(attempt("network_unreachable", immediate=True))])
    assert v.fault is not None and "local routing table" in v.fault.summary


def test_slow_connect_warns_syn_retransmitted() -> None:
    v = classify(TARGET, OPTS, [DNS_OK, tcp(attempt("established", ms=1003.0))])
    assert v.fault is None
    assert [w.code for w in v.warnings] == ["tcp.syn_retransmitted"]


def test_failed_address_warns_while_healthy() -> None:
    v = classify(
        TARGET, OPTS, [DNS_OK, tcp(attempt("established"), attempt("refused", "10.0.0.6"))]
    )
    assert v.fault is None
    assert [w.code for w in v.warnings] == ["tcp.address_failed"]
    assert "10.0.0.6:3306" in v.warnings[0].message


def test_dns_fault_wins_over_nothing_else() -> None:
    v = classify(TARGET, OPTS, [dns_failed("NXDOMAIN")])
    assert v.fault is not None and v.fault.layer == "dns"
    assert "db.internal" in v.fault.summary


@pytest.mark.parametrize(
    ("unreachable", "sender", "needle"),
    [
        (
            "communication administratively prohibited (a firewall rejected it)",
            "10.0.0.1",
            "a firewall rejects it (ICMP communication administratively prohibited from 10.0.0.1)",
        ),
        ("host unreachable", "10.0.0.1", "ICMP host unreachable from 10.0.0.1"),
        (None, None, "ARP got no answer"),
    ],
)
def test_host_unreachable_names_the_icmp_cause(
    unreachable: str | None, sender: str | None, needle: str
) -> None:
    """The echoes to the same address say why EHOSTUNREACH: a firewall, a router, or (no ICMP
    error at all) the two causes the socket alone cannot tell apart."""
    echoes = IcmpAddressResult(
        address="10.0.0.5", sent=1, unreachable=unreachable, unreachable_from=sender
    )
    icmp = IcmpStep(status="failed", engine="dgram", results=[echoes])
    steps: list[Step] = [DNS_OK, icmp, tcp(attempt("host_unreachable", errno_name="EHOSTUNREACH"))]
    report = classify(TARGET, OPTS, steps)
    assert report.fault is not None and report.fault.code == "l3.host_unreachable"
    assert needle in report.fault.summary
