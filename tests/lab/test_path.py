"""The middle of the path (issue 13): two routers between the client and the server, real
nftables, and the verdicts that name the hop (nplab/pathlab.py).

Needs root, iproute2 and nftables (skips on a laptop, fails under CI=true).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from netprobe.render import render_ladder
from netprobe.report import Report
from netprobe.steps import TcpStep
from nplab.pathlab import (
    ADMIN_PROHIBITED,
    DROP_AT_HOP2,
    FIRST_SYN_DROPPED,
    HEALTHY,
    MTU_BLACKHOLE,
    R1_NEAR,
    R2_NEAR,
    build_path,
)
from nplab.topology import Lab

pytestmark = pytest.mark.lab

V6_R1, V6_R2 = "2001:2:0:64::1", "2001:2:0:65::2"

#: name -> (target, options, backend)
CASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "drop_v4": (f"tcp://{DROP_AT_HOP2[0]}:80", {}, "asyncio"),
    "drop_v6": (f"tcp://[{DROP_AT_HOP2[1]}]:80", {}, "asyncio"),
    "drop_trio": (f"tcp://{DROP_AT_HOP2[0]}:80", {}, "trio"),
    "drop_no_trace": (f"tcp://{DROP_AT_HOP2[0]}:80", {"trace": False}, "asyncio"),
    "drop_deadline": (f"tcp://{DROP_AT_HOP2[0]}:80", {"timeout": 1.3}, "asyncio"),
    "drop_short_deadline": (f"tcp://{DROP_AT_HOP2[0]}:80", {"timeout": 0.9}, "asyncio"),
    "reject_v4": (f"tcp://{ADMIN_PROHIBITED[0]}:80", {}, "asyncio"),
    "reject_v6": (f"tcp://[{ADMIN_PROHIBITED[1]}]:80", {}, "asyncio"),
    "reject_trio": (f"tcp://{ADMIN_PROHIBITED[0]}:80", {}, "trio"),
    "healthy": (f"tcp://{HEALTHY}:80", {}, "asyncio"),
    "first_syn": (f"tcp://{FIRST_SYN_DROPPED}:80", {"icmp": False, "canary": False}, "asyncio"),
    "first_syn_trio": (f"tcp://{FIRST_SYN_DROPPED}:80", {"icmp": False, "canary": False}, "trio"),
    # The MTU black hole, each direction: a large response, a large request, a large
    # certificate flight; and a small exchange on the same path, which works.
    # A stall takes the read timeout (3 s), then the retry; 14 diagnoses importing httpx at
    # once on a loaded machine took seconds more: the total deadline leaves room for that.
    "mtu_response": (f"http://{MTU_BLACKHOLE}/big", {"timeout": 30}, "asyncio"),
    "mtu_request": (
        f"http://{MTU_BLACKHOLE}/",
        {"headers": {"X-Padding": "p" * 3000}, "timeout": 30},
        "asyncio",
    ),
    "mtu_tls": (f"https://{MTU_BLACKHOLE}/", {"verify": False, "timeout": 30}, "asyncio"),
    "mtu_tls_trio": (f"https://{MTU_BLACKHOLE}/", {"verify": False, "timeout": 30}, "trio"),
    "mtu_small": (f"http://{MTU_BLACKHOLE}/", {"timeout": 30}, "asyncio"),
}


@pytest.fixture(scope="module")
def results(lab: Lab) -> Iterator[dict[str, dict[str, Any]]]:
    with build_path(lab), ThreadPoolExecutor(len(CASES)) as pool:
        futures = {
            name: pool.submit(lab.run, target, opts, backend=backend)
            for name, (target, opts, backend) in CASES.items()
        }
        yield {name: f.result() for name, f in futures.items()}


def _report(results: dict[str, dict[str, Any]], name: str) -> tuple[Report, TcpStep]:
    report = Report.model_validate(results[name]["report"])
    tcp = next(s for s in report.steps if isinstance(s, TcpStep))
    return report, tcp


@pytest.mark.parametrize(
    ("name", "r1", "r2"),
    [("drop_v4", R1_NEAR, R2_NEAR), ("drop_v6", V6_R1, V6_R2), ("drop_trio", R1_NEAR, R2_NEAR)],
)
def test_drop_at_hop_2_is_named(
    results: dict[str, dict[str, Any]], name: str, r1: str, r2: str
) -> None:
    report, tcp = _report(results, name)
    ladder = "\n".join(render_ladder(report))
    assert report.fault is not None and report.fault.code == "l4.filtered", ladder
    assert tcp.trace is not None, ladder
    hops = [(h.ttl, h.outcome, h.address) for h in tcp.trace.hops]
    assert hops == [(1, "time_exceeded", r1), (2, "time_exceeded", r2), (3, "silent", None)]
    assert f"passes hop 2 ({r2}) and nothing answers beyond it" in report.fault.summary
    assert f"hop 2  {r2}  time exceeded" in ladder
    # The trace runs inside the connect timeout (3 s): it adds no time to the silent SYN.
    assert (report.timings_ms.total or 0) < 3000 + 1000


def test_no_trace_when_turned_off(results: dict[str, dict[str, Any]]) -> None:
    report, tcp = _report(results, "drop_no_trace")
    assert report.fault is not None and report.fault.code == "l4.filtered"
    assert tcp.trace is None and "hop 2" not in report.fault.summary


def test_trace_ends_within_the_total_deadline(results: dict[str, dict[str, Any]]) -> None:
    report, tcp = _report(results, "drop_deadline")
    assert (report.timings_ms.total or 0) < 1300 + 500
    assert report.deadline is not None
    assert tcp.trace is not None and tcp.trace.partial
    assert tcp.trace.timeout_s < 1.5  # cut from trace_timeout to what the deadline left
    assert [h.address for h in tcp.trace.hops[:2]] == [R1_NEAR, R2_NEAR]


def test_a_deadline_shorter_than_the_trace_delay_still_gets_a_partial_path(
    results: dict[str, dict[str, Any]],
) -> None:
    """A total deadline of 0.9 s ends before the SYN's first retransmission (when the trace
    would start): the trace starts early enough to give the report the hops it reached."""
    report, tcp = _report(results, "drop_short_deadline")
    assert report.deadline is not None
    assert tcp.trace is not None and tcp.trace.partial
    assert [h.address for h in tcp.trace.hops[:2]] == [R1_NEAR, R2_NEAR]


@pytest.mark.parametrize(
    ("name", "r1", "errno_name", "kind"),
    [
        ("reject_v4", R1_NEAR, "EHOSTUNREACH", "ICMP 3/13"),
        # ICMPv6 1/1 reaches connect() as EACCES: it was read as this host's own firewall.
        ("reject_v6", V6_R1, "EACCES", "ICMPv6 1/1"),
        ("reject_trio", R1_NEAR, "EHOSTUNREACH", "ICMP 3/13"),
    ],
)
def test_admin_prohibited_at_hop_1_is_named(
    results: dict[str, dict[str, Any]], name: str, r1: str, errno_name: str, kind: str
) -> None:
    report, tcp = _report(results, name)
    ladder = "\n".join(render_ladder(report))
    assert report.fault is not None and report.fault.code == "l3.host_unreachable", ladder
    (attempt,) = tcp.attempts
    assert attempt.error is not None and attempt.error.errno_name == errno_name
    assert attempt.icmp_error is not None and attempt.icmp_error.admin_prohibited
    assert attempt.icmp_error.offender == r1
    assert f"hop 1 ({r1}) rejects with admin-prohibited ({kind}" in report.fault.summary
    assert tcp.trace is not None
    assert [h.outcome for h in tcp.trace.hops] == ["time_exceeded", "unreachable"]


def test_healthy_path_pays_nothing(results: dict[str, dict[str, Any]]) -> None:
    report, tcp = _report(results, "healthy")
    assert report.fault is None, render_ladder(report)
    assert tcp.trace is None and tcp.attempts[0].icmp_error is None


def test_the_health_page_shows_the_path(results: dict[str, dict[str, Any]]) -> None:
    from netprobe.health import Dependency
    from netprobe.health.checker import CheckResult, HealthResult
    from netprobe.health.page import render_page

    report, _ = _report(results, "drop_v4")
    check = CheckResult(
        dependency=Dependency(report.target.url, name="api"),
        status="fail",
        report=report,
        stale=False,
        age_s=1.0,
        checked_at=None,
        diagnoses=1,
    )
    page = render_page(HealthResult([check]), probe="ready")
    row = page.split('data-testid="trace"', 1)[1].split("</tr>", 1)[0]
    assert f"<li>hop 2  {R2_NEAR}  time exceeded" in row
    assert "<li>hop 3  *  no answer</li>" in row


@pytest.mark.parametrize(
    ("name", "exchange"),
    [
        ("mtu_response", "http_response"),
        ("mtu_request", "http_response"),
        ("mtu_tls", "tls_handshake"),
        ("mtu_tls_trio", "tls_handshake"),
    ],
)
def test_mtu_black_hole(results: dict[str, dict[str, Any]], name: str, exchange: str) -> None:
    report, tcp = _report(results, name)
    ladder = "\n".join(render_ladder(report))
    assert report.fault is not None and report.fault.code == "l3.pmtu_blackhole", ladder
    assert report.fault.layer == "l3"
    probe = tcp.pmtu_probe
    assert probe is not None and probe.completed and probe.exchange == exchange
    assert probe.mss == 1200
    assert probe.retry is not None and probe.retry.snd_mss is not None
    assert probe.retry.snd_mss <= 1200
    assert probe.stalled is not None and probe.stalled.snd_mss is not None
    assert probe.stalled.snd_mss > 1240, "the stalled connection used full-size segments"
    assert "MSS of 1200 completed" in report.fault.summary
    assert "'fragmentation needed'" in report.fault.summary
    assert probe.control == "timeout", "the same exchange at the normal MSS stalls again"
    assert "again with TCP_MAXSEG 1200: completed, at the normal MSS: timeout" in ladder


def test_small_exchanges_cross_the_black_hole(results: dict[str, dict[str, Any]]) -> None:
    report, tcp = _report(results, "mtu_small")
    assert report.fault is None, render_ladder(report)
    assert tcp.pmtu_probe is None


@pytest.mark.parametrize("name", ["first_syn", "first_syn_trio"])
def test_a_syn_lost_on_the_path_is_proved_and_the_trace_does_not_hold_it_up(
    results: dict[str, dict[str, Any]], name: str
) -> None:
    """r2 drops the first SYN of every flow: the connect needs the retransmission at 1 s,
    the trace (started at 1 s, its own SYNs dropped once too) is cancelled once the connect
    works, instead of holding the healthy diagnosis for its 1.5 s."""
    report, tcp = _report(results, name)
    assert report.fault is None, render_ladder(report)
    assert tcp.attempts[0].syn_retransmits is not None and tcp.attempts[0].syn_retransmits >= 1
    assert "tcp.syn_retransmitted" in report.warning_codes()
    assert tcp.trace is None
    assert (report.timings_ms.total or 0) < 2000, "1 s for the SYN, not 1 s + the trace"
