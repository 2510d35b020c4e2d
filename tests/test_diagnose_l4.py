"""DNS and TCP against real peers on loopback: listeners, closed ports, a full accept queue,
a name server run by the test, and local resource limits."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import netprobe
from netprobe.steps import DnsStep, TcpStep
from netprobe.testing import DnsServer, SilentPort, TcpServer, closed_port
from nplab.require import require

pytestmark = [pytest.mark.anyio, pytest.mark.backends]


async def test_open_port_is_healthy(tcp_server: TcpServer) -> None:
    report = await netprobe.diagnose(f"tcp://{tcp_server.address}")
    assert report.ok, report.fault
    tcp = report.step(TcpStep)
    assert tcp is not None and tcp.status == "ok"
    assert tcp.attempts[0].outcome == "established"
    assert tcp.connected_to == tcp_server.address
    assert report.timings_ms.tcp_connect is not None and report.timings_ms.total is not None
    assert report.timings_ms.dns is None  # an IP literal needs no lookup
    assert report.fault is None


async def test_closed_port_is_refused() -> None:
    port = closed_port()
    report = await netprobe.diagnose(f"127.0.0.1:{port}")
    assert not report.ok
    assert report.fault is not None
    assert (report.fault.layer, report.fault.code) == ("l4", "l4.refused")
    assert report.fault.evidence[0].data["errno"] == "ECONNREFUSED"
    tcp = report.step(TcpStep)
    assert tcp is not None and tcp.attempts[0].outcome == "refused"


async def test_port_one_is_refused() -> None:
    report = await netprobe.diagnose("127.0.0.1:1")
    assert report.fault is not None and report.fault.code == "l4.refused"


async def test_dropped_syn_is_unanswered(silent_port: SilentPort) -> None:
    report = await netprobe.diagnose(
        f"tcp://{silent_port.address}", connect_timeout=0.3, canary=False, icmp=False
    )
    assert report.fault is not None and report.fault.code == "l4.connect_timeout"
    tcp = report.step(TcpStep)
    assert tcp is not None and tcp.attempts[0].outcome == "timeout"
    assert tcp.attempts[0].connect_ms is not None and tcp.attempts[0].connect_ms >= 290


async def test_local_postgresql_is_healthy() -> None:
    # The machine's own PostgreSQL (issue 2's "done means"): TCP at least must be established.
    report = await netprobe.diagnose("127.0.0.1:5432")
    tcp = report.step(TcpStep)
    require(tcp is not None and tcp.status == "ok", "no PostgreSQL on 127.0.0.1:5432 here")
    assert report.ok, report.fault


async def test_every_resolved_address_is_tried(dns_server: DnsServer) -> None:
    # dual.netprobe.test has 127.0.0.1 and ::1; the listener is on 127.0.0.1 only.
    with TcpServer() as server:
        report = await netprobe.diagnose(
            f"tcp://dual.netprobe.test:{server.port}", nameservers=[dns_server.address]
        )
    tcp = report.step(TcpStep)
    assert tcp is not None
    outcomes = {a.address: a.outcome for a in tcp.attempts}
    assert outcomes["127.0.0.1"] == "established"
    assert outcomes["::1"] in ("refused", "network_unreachable", "error")
    assert report.ok
    assert "tcp.address_failed" in report.warning_codes()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("nope.netprobe.test", "dns.nxdomain"),
        ("nodata.netprobe.test", "dns.no_address"),
        ("broken.netprobe.test", "dns.servfail"),
        ("slow.netprobe.test", "dns.upstream_timeout"),  # the server answers others
    ],
)
async def test_dns_faults_from_a_real_name_server(
    dns_server: DnsServer, name: str, code: str
) -> None:
    report = await netprobe.diagnose(
        f"{name}:5432", nameservers=[dns_server.address], dns_timeout=0.3
    )
    assert report.fault is not None
    assert (report.fault.layer, report.fault.code) == ("dns", code)
    assert name in report.fault.summary
    dns = report.step(DnsStep)
    assert dns is not None and dns.queries
    assert report.step(TcpStep) is None  # never reached


async def test_name_resolved_by_a_real_name_server(dns_server: DnsServer) -> None:
    with TcpServer() as server:
        report = await netprobe.diagnose(
            f"tcp://db.netprobe.test:{server.port}", nameservers=[dns_server.address]
        )
    assert report.ok, report.fault
    dns = report.step(DnsStep)
    assert dns is not None and dns.addresses == ("127.0.0.1",) and dns.source == "nameservers"
    assert report.timings_ms.dns is not None


async def test_getaddrinfo_path_uses_etc_hosts(tcp_server: TcpServer) -> None:
    report = await netprobe.diagnose(f"tcp://localhost:{tcp_server.port}")
    dns = report.step(DnsStep)
    assert dns is not None and dns.source == "getaddrinfo"
    assert "127.0.0.1" in dns.addresses
    assert report.ok


def test_fd_exhaustion_is_a_local_fault() -> None:
    # A real process that has used up its descriptors: RLIMIT_NOFILE lowered to what it holds.
    code = """
import resource, os, json, anyio, netprobe
async def main():
    import socket
    held = []
    soft = len(os.listdir('/proc/self/fd')) + 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, soft))
    try:
        while True:
            held.append(socket.socket())
    except OSError:
        pass
    report = await netprobe.diagnose('127.0.0.1:1', icmp=False)
    for s in held:
        s.close()
    print(report.model_dump_json())
anyio.run(main)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(out.stdout)
    assert report["fault"]["code"] == "local.fd_exhaustion"
    assert report["fault"]["layer"] == "local"


async def test_deadline_bounds_a_silent_target(silent_port: SilentPort) -> None:
    start = time.perf_counter()
    report = await netprobe.diagnose(
        f"tcp://{silent_port.address}", timeout=0.8, connect_timeout=30, canary=False
    )
    elapsed = time.perf_counter() - start
    assert elapsed < 0.8 + 0.5, elapsed
    assert not report.ok
    tcp = report.step(TcpStep)
    assert tcp is not None and tcp.attempts[0].outcome == "timeout"  # partial result kept


async def test_deadline_bounds_a_silent_name_server(dns_server: DnsServer) -> None:
    start = time.perf_counter()
    report = await netprobe.diagnose(
        "slow.netprobe.test:80", nameservers=[dns_server.address], timeout=0.5, dns_timeout=20
    )
    assert time.perf_counter() - start < 0.5 + 0.5
    assert report.fault is not None and report.fault.code == "dns.timeout"


async def test_bad_option_raises_before_io() -> None:
    with pytest.raises(netprobe.InvalidOption, match="connect_timeout"):
        await netprobe.diagnose("127.0.0.1:1", connect_timeout=-1)
    with pytest.raises(netprobe.InvalidOption, match="unknown option 'conect_timeout'"):
        await netprobe.diagnose("127.0.0.1:1", conect_timeout=1)  # type: ignore[call-arg]
    with pytest.raises(netprobe.InvalidOption, match="name server"):
        await netprobe.diagnose("127.0.0.1:1", nameservers=["dns.example"])


async def test_bad_target_raises_before_io() -> None:
    with pytest.raises(netprobe.InvalidTarget, match="out of range"):
        await netprobe.diagnose("db:99999")
    with pytest.raises(netprobe.InvalidTarget):
        await netprobe.diagnose_many(["127.0.0.1:1", "mongo://x"])


async def test_diagnose_many_500_loopback_targets(tcp_server: TcpServer) -> None:
    closed = closed_port()
    targets = [
        f"tcp://{tcp_server.address}" if i % 2 == 0 else f"tcp://127.0.0.1:{closed}"
        for i in range(500)
    ]
    reports = await netprobe.diagnose_many(targets, concurrency=50, icmp=False)
    assert len(reports) == 500
    for i, r in enumerate(reports):
        assert str(r.target) == targets[i]
        assert r.ok == (i % 2 == 0)
        if not r.ok:
            assert r.fault is not None and r.fault.code == "l4.refused"


def test_report_is_frozen_and_serialisable() -> None:
    import anyio

    report = anyio.run(lambda: netprobe.diagnose("127.0.0.1:1", icmp=False))
    with pytest.raises(ValueError, match="frozen"):
        report.ok = True  # type: ignore[misc]
    data = json.loads(report.model_dump_json())
    assert set(data) >= {"ok", "target", "fault", "warnings", "timings_ms", "steps"}
    assert set(data["fault"]) >= {"layer", "code", "summary", "evidence", "hints"}
    assert netprobe.Report.model_validate_json(report.model_dump_json()).fault == report.fault


async def test_secret_never_in_report_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-Pa55"
    caplog.set_level("DEBUG", logger="netprobe")
    report = await netprobe.diagnose(f"postgresql://app:{secret}@127.0.0.1:1/app", icmp=False)
    assert report.fault is not None
    assert caplog.records, "diagnose logs its verdict at DEBUG"
    for shown in (repr(report), str(report), report.model_dump_json(), caplog.text):
        assert secret not in shown
    assert "app:***@127.0.0.1:1" in report.model_dump_json()
