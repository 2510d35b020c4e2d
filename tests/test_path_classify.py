"""Where on the path, decided from plain data: the error queue's ICMP error and the TCP
trace in the TCP step (classify/transport.py, classify/path.py). No sockets."""

from __future__ import annotations

import pytest

from netprobe.classify import classify
from netprobe.options import Options
from netprobe.steps import (
    AddressAttempt,
    ConnectOutcome,
    DnsStep,
    ErrorInfo,
    IcmpError,
    PmtuProbe,
    TcpInfoFacts,
    TcpStep,
    TlsStep,
    TraceHop,
    TraceStep,
)
from netprobe.target import parse_target

TARGET = parse_target("api.internal:443")
DNS = DnsStep(status="ok", host="api.internal", addresses=["10.9.0.5"])
PROHIBITED = IcmpError(
    origin="icmp",
    icmp_type=3,
    icmp_code=13,
    offender="10.1.0.1",
    meaning="communication administratively prohibited",
    admin_prohibited=True,
)
PROHIBITED_V6 = IcmpError(
    origin="icmp6",
    icmp_type=1,
    icmp_code=1,
    offender="fd00::1",
    meaning="communication administratively prohibited",
    admin_prohibited=True,
)


def hop(ttl: int, outcome: str = "time_exceeded", address: str | None = None) -> TraceHop:
    return TraceHop(ttl=ttl, outcome=outcome, address=address)


def trace(*hops: TraceHop) -> TraceStep:
    return TraceStep(
        status="failed", address="10.9.0.5", port=443, max_hops=12, timeout_s=1.5, hops=hops
    )


def step(
    outcome: ConnectOutcome,
    errno_name: str,
    icmp_error: IcmpError | None = None,
    tr: TraceStep | None = None,
    address: str = "10.9.0.5",
) -> TcpStep:
    a = AddressAttempt(
        address=address,
        port=443,
        family="ipv6" if ":" in address else "ipv4",
        outcome=outcome,
        connect_ms=1.0,
        error=ErrorInfo(type="OSError", errno_name=errno_name, message="x"),
        icmp_error=icmp_error,
    )
    return TcpStep(status="failed", timeout_s=3.0, attempts=[a], trace=tr)


@pytest.mark.parametrize(
    ("tcp", "code", "says"),
    [
        # The reject, named by the error queue and numbered by the trace.
        (
            step(
                "host_unreachable",
                "EHOSTUNREACH",
                PROHIBITED,
                trace(hop(1, address="10.1.0.1"), hop(2, "unreachable", "10.1.0.1")),
            ),
            "l3.host_unreachable",
            "hop 1 (10.1.0.1) rejects with admin-prohibited (ICMP 3/13, seen as EHOSTUNREACH)",
        ),
        # Without a trace, the offender alone.
        (
            step("host_unreachable", "EHOSTUNREACH", PROHIBITED),
            "l3.host_unreachable",
            "10.1.0.1 rejects with admin-prohibited",
        ),
        # The destination's own firewall.
        (
            step(
                "host_unreachable",
                "EHOSTUNREACH",
                PROHIBITED.model_copy(update={"offender": "10.9.0.5"}),
            ),
            "l3.host_unreachable",
            "10.9.0.5 (the destination itself) rejects",
        ),
        # A silent drop: the last hop that answered time exceeded.
        (
            step(
                "timeout",
                "ETIMEDOUT",
                tr=trace(hop(1, address="10.1.0.1"), hop(2, address="10.2.0.1"), hop(3, "silent")),
            ),
            "l4.connect_timeout",
            "the SYN passes hop 2 (10.2.0.1) and nothing answers beyond it",
        ),
        (
            step("timeout", "ETIMEDOUT", tr=trace(hop(1, "silent"))),
            "l4.connect_timeout",
            "got no answer from any hop",
        ),
    ],
)
def test_the_verdict_names_the_hop(tcp: TcpStep, code: str, says: str) -> None:
    verdict = classify(TARGET, Options(canary=False, icmp=False), [DNS, tcp])
    assert verdict.fault is not None
    assert verdict.fault.code == code
    assert says in verdict.fault.summary


def test_icmpv6_admin_prohibited_is_not_a_local_firewall() -> None:
    """EACCES with an ICMPv6 1/1 on the queue: the probe records the network's reject as
    host_unreachable (probes/tcp.py); a plain EACCES stays this host's own firewall."""
    rejected = step("host_unreachable", "EACCES", PROHIBITED_V6, address="fd00::5")
    verdict = classify(TARGET, Options(canary=False, icmp=False), [DNS, rejected])
    assert verdict.fault is not None and verdict.fault.code == "l3.host_unreachable"
    assert "ICMPv6 1/1, seen as EACCES" in verdict.fault.summary
    local = step("denied", "EACCES", address="fd00::5")
    verdict = classify(TARGET, Options(canary=False, icmp=False), [DNS, local])
    assert verdict.fault is not None and verdict.fault.code.startswith("local.")


def test_the_trace_hint_names_whom_to_ask() -> None:
    tr = trace(hop(1, address="10.1.0.1"), hop(2, address="10.2.0.1"), hop(3, "silent"))
    verdict = classify(
        TARGET, Options(canary=False, icmp=False), [DNS, step("timeout", "X", tr=tr)]
    )
    assert verdict.fault is not None
    assert verdict.fault.hints[0].startswith("Take the trace to whoever runs hop 2 (10.2.0.1)")


def _established(probe: PmtuProbe | None) -> TcpStep:
    a = AddressAttempt(
        address="10.9.0.5", port=443, family="ipv4", outcome="established", connect_ms=1.0
    )
    return TcpStep(
        status="ok",
        timeout_s=3.0,
        attempts=[a],
        connected_to=a.endpoint,
        pmtu_probe=probe,
    )


TLS_STALLED = TlsStep(status="failed", failure="timeout", reason="no answer")
INFO = TcpInfoFacts(pmtu=1500, snd_mss=1188, rcv_mss=1188)


@pytest.mark.parametrize(
    ("probe", "code"),
    [
        (
            PmtuProbe(
                mss=1200,
                exchange="tls_handshake",
                outcome="completed",
                control="timeout",
                retry=INFO,
            ),
            "l3.pmtu_blackhole",
        ),
        # The control at the normal MSS completed too: a server that hung once, no black
        # hole; the timeout stands.
        (
            PmtuProbe(mss=1200, exchange="tls_handshake", outcome="completed", control="completed"),
            "tls.handshake_timeout",
        ),
        # The retry stalled too: no black hole shown, the handshake timeout stands.
        (PmtuProbe(mss=1200, exchange="tls_handshake", outcome="timeout"), "tls.handshake_timeout"),
        (None, "tls.handshake_timeout"),
    ],
)
def test_pmtu_black_hole_only_when_the_small_mss_retry_completed(
    probe: PmtuProbe | None, code: str
) -> None:
    target = parse_target("https://api.internal/")
    verdict = classify(target, Options(icmp=False), [DNS, _established(probe), TLS_STALLED])
    assert verdict.fault is not None and verdict.fault.code == code
    if code == "l3.pmtu_blackhole":
        assert verdict.fault.layer == "l3"
        assert "snd_mss 1188" in " ".join(e.observation for e in verdict.fault.evidence)


def _connected(ms: float, retransmits: int | None) -> TcpStep:
    a = AddressAttempt(
        address="10.9.0.5",
        port=443,
        family="ipv4",
        outcome="established",
        connect_ms=ms,
        syn_retransmits=retransmits,
    )
    return TcpStep(status="ok", timeout_s=3.0, attempts=[a], connected_to=a.endpoint)


@pytest.mark.parametrize(
    ("ms", "retransmits", "warned", "says"),
    [
        (1003.0, 1, True, "retransmitted the SYN to 10.9.0.5:443 once"),
        # The counter beats the clock: a slow handshake without a retransmission, and a
        # retransmission faster than 1 s (a lowered initial RTO).
        (1400.0, 0, False, ""),
        (240.0, 2, True, "2 times"),
        # No counter (another OS, an old kernel): the 1 s rule.
        (1003.0, None, True, "inferred from the time"),
        (20.0, None, False, ""),
    ],
)
def test_syn_retransmitted_from_the_kernels_count(
    ms: float, retransmits: int | None, warned: bool, says: str
) -> None:
    target = parse_target("tcp://10.9.0.5:443")
    verdict = classify(target, Options(icmp=False), [_connected(ms, retransmits)])
    found = [w for w in verdict.warnings if w.code == "tcp.syn_retransmitted"]
    assert bool(found) == warned
    if warned:
        assert says in found[0].message


def test_the_pool_counts_lost_syns() -> None:
    from netprobe.classify.pool import pool_verdict
    from netprobe.report import PoolConnection

    conns = [
        PoolConnection(
            index=i + 1,
            outcome="validated",
            tcp=_connected(5.0, n).attempts[0],
        )
        for i, n in enumerate([0, 1, 0, 3, None])
    ]
    verdict = pool_verdict(
        parse_target("tcp://10.9.0.5:443"), conns, requested=5, hold_s=0.0, held_ok=None
    )
    assert verdict.ok and verdict.syn_retransmitted == 2
    assert "2 of 4 connects needed a retransmitted SYN" in verdict.summary


def test_the_hint_follows_who_rejected() -> None:
    own = PROHIBITED.model_copy(update={"offender": "10.9.0.5"})
    verdict = classify(TARGET, Options(icmp=False), [DNS, step("host_unreachable", "X", own)])
    assert verdict.fault is not None and "its own firewall answered" in verdict.fault.hints[1]
    verdict = classify(
        TARGET, Options(icmp=False), [DNS, step("host_unreachable", "X", PROHIBITED)]
    )
    assert verdict.fault is not None and "a firewall on the way" in verdict.fault.hints[1]
