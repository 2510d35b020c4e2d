"""The total deadline as an observation: ``report.deadline`` says which rung it cut and when,
and one rule (classify/deadline.py) turns it into the verdict and the warning. Real peers on
loopback that never answer, one rung at a time; and the rule on plain data.
"""

from __future__ import annotations

from typing import Any

import pytest

import netprobe
from netprobe.classify import classify
from netprobe.options import Options
from netprobe.render import render_ladder
from netprobe.report import Report
from netprobe.steps import (
    AddressAttempt,
    DeadlineCut,
    DnsStep,
    Rung,
    Step,
    TcpStep,
    TlsStep,
)
from netprobe.target import parse_target
from netprobe.testing import DnsServer, SilentPort, TcpServer

pytestmark = [pytest.mark.anyio, pytest.mark.backends]

#: Every rung's own budget far beyond the total deadline: the deadline is what ends it.
CUT: dict[str, Any] = {
    "timeout": 0.3,
    "connect_timeout": 10.0,
    "read_timeout": 10.0,
    "dns_timeout": 10.0,
    "icmp": False,
    "canary": False,
}


def _cut_at(report: Report, rung: Rung) -> None:
    assert report.deadline is not None, report.warnings
    assert report.deadline.rung == rung and report.deadline.timeout_s == 0.3
    assert report.deadline.at_ms >= 300.0
    assert "diagnosis.deadline" in report.warning_codes()
    assert f"during the {rung} step" in report.warnings[-1].message
    assert not report.ok
    assert '"Deadline"' not in report.model_dump_json()  # no made-up error type any more


async def test_cut_during_dns(dns_server: DnsServer) -> None:
    report = await netprobe.diagnose(
        "slow.netprobe.test:80", nameservers=[dns_server.address], **CUT
    )
    _cut_at(report, "dns")
    dns = report.step(DnsStep)
    assert dns is not None and dns.status == "failed"  # what the probe saw before the cut
    assert report.fault is not None and report.fault.code == "dns.timeout"


async def test_cut_during_tcp(silent_port: SilentPort) -> None:
    report = await netprobe.diagnose(f"tcp://{silent_port.address}", **CUT)
    _cut_at(report, "tcp")
    tcp = report.step(TcpStep)
    assert tcp is not None
    (attempt,) = tcp.attempts
    assert attempt.outcome == "timeout" and attempt.error is None
    assert report.fault is not None and report.fault.code == "l4.connect_timeout"


async def test_cut_during_the_tls_handshake(tcp_server: TcpServer) -> None:
    """A peer that accepts and never answers the ClientHello."""
    report = await netprobe.diagnose(f"tls://{tcp_server.address}", **CUT)
    _cut_at(report, "tls")
    assert report.step(TlsStep) is None  # cut mid-way: nothing complete to record
    assert report.fault is not None and report.fault.code == "tls.handshake_timeout"
    assert "before the total deadline" in report.fault.summary
    ladder = "\n".join(render_ladder(report))
    assert "tls         the total deadline (0.3 s) was reached" in ladder


async def test_cut_during_a_database_greeting(tcp_server: TcpServer) -> None:
    report = await netprobe.diagnose(f"mysql://{tcp_server.address}", **CUT)
    _cut_at(report, "application")
    assert report.fault is not None and report.fault.code == "l7.connection_closed"
    assert "the total deadline was reached first" in report.fault.summary


# -- the rule, on plain data ------------------------------------------------------------------

HTTPS = parse_target("https://api.example/health")
DNS = DnsStep(status="ok", host="api.example", addresses=["10.0.0.1"])
CONNECTED = TcpStep(
    status="ok",
    timeout_s=3.0,
    attempts=[
        AddressAttempt(
            address="10.0.0.1", port=443, family="ipv4", outcome="established", connect_ms=1.0
        )
    ],
    connected_to="10.0.0.1:443",
)


@pytest.mark.parametrize(
    ("rung", "code"),
    [
        ("tls", "tls.handshake_timeout"),
        ("application", "http.timeout"),
        (None, None),  # every rung had answered: only the warning
    ],
)
def test_a_cut_rung_without_an_answer_is_the_fault(rung: Rung | None, code: str | None) -> None:
    """Connected, then cut before TLS (or HTTP) answered: never healthy without that rung."""
    steps: list[Step] = [DNS, CONNECTED]
    if rung is None:
        steps.append(TlsStep(status="ok"))
    cut = DeadlineCut(rung=rung, timeout_s=1.0, at_ms=1000.0)
    verdict = classify(HTTPS, Options(), steps, deadline=cut)
    assert (verdict.fault.code if verdict.fault else None) == code
    assert [w.code for w in verdict.warnings] == ["diagnosis.deadline"]
    assert verdict.warnings[0].message == (
        f"The total deadline (1 s) ended the diagnosis during the {rung or 'last'} step: "
        "later rungs were not tried."
    )


def test_no_cut_no_deadline_verdict() -> None:
    verdict = classify(HTTPS, Options(), [DNS, CONNECTED])
    assert verdict.fault is None and verdict.warnings == ()
