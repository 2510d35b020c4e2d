"""The fault lab: every L3/L4 verdict, reproduced with real faults in network namespaces.

Needs root, iproute2 and nftables (skips on a laptop without them, fails under CI=true).
netprobe runs in a client namespace with no default route (nplab/topology.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from netprobe.render import render_ladder
from netprobe.report import Report
from netprobe.steps import IcmpStep, TcpStep
from nplab.cases import CASES
from nplab.topology import Lab, sh

pytestmark = pytest.mark.lab


# The session's lab is the ``lab`` fixture of tests/conftest.py (one per process).


@pytest.fixture(scope="session")
def verdicts(lab: Lab) -> dict[str, dict[str, Any]]:
    """Every case of CASES, diagnosed concurrently (the slowest takes ~1.5 s)."""

    def one(case: tuple[str, str, dict[str, Any], str | None, set[str]]) -> dict[str, Any]:
        _, target, options, _, _ = case
        opts = dict(options)
        pre = opts.pop("pre", None)
        return lab.run(target, opts, pre)

    with ThreadPoolExecutor(len(CASES)) as pool:
        results = list(pool.map(one, CASES))
    return {case[0]: result for case, result in zip(CASES, results, strict=True)}


@pytest.mark.parametrize(
    ("name", "target", "options", "code", "warnings"), CASES, ids=[c[0] for c in CASES]
)
def test_verdict(
    verdicts: dict[str, dict[str, Any]],
    name: str,
    target: str,
    options: dict[str, Any],
    code: str | None,
    warnings: set[str],
) -> None:
    report = Report.model_validate(verdicts[name]["report"])
    assert (report.fault.code if report.fault else None) == code, render_ladder(report)
    assert set(report.warning_codes()) == warnings, report.warnings
    # The connect timeout bounds a silent SYN: the witnesses add no wall time.
    timeout = options.get("connect_timeout", 3.0)
    assert verdicts[name]["wall_s"] < timeout + 1.0


def _report(verdicts: dict[str, dict[str, Any]], name: str) -> Report:
    return Report.model_validate(verdicts[name]["report"])


def test_ladder_shows_the_deciding_witness(verdicts: dict[str, dict[str, Any]]) -> None:
    ping = "\n".join(render_ladder(_report(verdicts, "drop, host answers ping")))
    assert "ping 3/3 answered → host is up → port 81 filtered" in ping or (
        "answered → host is up → port 81 filtered" in ping
    )
    canary = "\n".join(render_ladder(_report(verdicts, "drop, ICMP blocked, other ports answer")))
    assert "198.18.0.13:1 answered RST" in canary and "→ host is up → port 81 filtered" in canary
    assert "ping 0/" in canary
    down = "\n".join(render_ladder(_report(verdicts, "host drops everything")))
    assert "silent too → no sign of life from 198.18.0.14" in down


def test_unreachable_evidence(verdicts: dict[str, dict[str, Any]]) -> None:
    prohibited = _report(verdicts, "reject icmp admin-prohibited")
    icmp = prohibited.step(IcmpStep)
    assert icmp is not None
    assert "administratively prohibited" in (icmp.results[0].unreachable or "")
    tcp = prohibited.step(TcpStep)
    assert tcp is not None and tcp.attempts[0].error is not None
    assert tcp.attempts[0].error.errno_name == "EHOSTUNREACH" and not tcp.attempts[0].immediate
    unowned = _report(verdicts, "unowned address on the segment")
    icmp = unowned.step(IcmpStep)
    assert icmp is not None and icmp.results[0].unreachable == "host unreachable"
    no_route = _report(verdicts, "network with no route")
    tcp = no_route.step(TcpStep)
    assert tcp is not None and tcp.attempts[0].immediate
    assert no_route.fault is not None and "no packet left" in no_route.fault.summary


def test_local_health_counts_sockets_toward_the_target(
    verdicts: dict[str, dict[str, Any]],
) -> None:
    report = _report(verdicts, "CLOSE_WAIT accumulation")
    assert report.local is not None and report.local.count("CLOSE_WAIT") == 12
    assert report.local.toward == ("198.18.0.10:82",)


def test_port_exhaustion_and_time_wait_pressure(lab: Lab, verdicts: dict[str, Any]) -> None:
    # After the concurrent cases: the port range is a per-namespace setting.
    sh("sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40003", ns=lab.client)
    try:
        result = lab.run("tcp://198.18.0.10:80", {}, {"time_wait": [4, "198.18.0.10:80"]})
    finally:
        sh("sysctl", "-qw", "net.ipv4.ip_local_port_range=32768 60999", ns=lab.client)
    report = Report.model_validate(result["report"])
    assert report.fault is not None and report.fault.code == "local.port_exhaustion"
    assert "local.time_wait_pressure" in report.warning_codes()
    assert report.local is not None and report.local.count("TIME_WAIT") >= 4
    assert report.local.port_range == (40000, 40003)


def test_delay_line_first_syn_dropped(lab: Lab) -> None:
    server = lab.add_delay_line(drop_first_syn=True)
    result = lab.run(f"tcp://{server}:80", {"icmp": False})
    report = Report.model_validate(result["report"])
    assert report.ok, render_ladder(report)
    assert "tcp.syn_retransmitted" in report.warning_codes()


def test_delay_line_adds_latency(lab: Lab) -> None:
    server = lab.add_delay_line(delay_ms=25.0)
    report = Report.model_validate(lab.run(f"{server}:81", {})["report"])
    assert report.fault is not None and report.fault.code == "l4.refused"
    tcp = report.step(TcpStep)
    assert tcp is not None and (tcp.attempts[0].connect_ms or 0) >= 50.0
    icmp = report.step(IcmpStep)
    assert icmp is not None
