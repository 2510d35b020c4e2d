"""ICMP engine and liveness witness: real echoes on loopback, witness rules as plain data.

Echoes go to loopback only, or to addresses inside a network namespace this test created
(one with no route at all, so nothing can leave the machine).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import netprobe
from netprobe.classify import classify
from netprobe.options import Options
from netprobe.probes import icmp_sockets
from netprobe.probes._context import ProbeContext
from netprobe.probes.icmp import Pinger
from netprobe.probes.icmp_engines import EchoResult, SharedSocket
from netprobe.probes.icmp_sockets import REGISTRY, close_idle_sockets, open_engine
from netprobe.render import render_ladder
from netprobe.steps import (
    AddressAttempt,
    ConnectOutcome,
    DnsStep,
    ErrorInfo,
    IcmpAddressResult,
    IcmpStep,
    Step,
    TcpStep,
)
from netprobe.target import parse_target
from nplab.require import require, require_binary, require_root

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable


def _icmp_allowed() -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):
        try:
            socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP).close()
            return True
        except OSError:
            continue
    return False


def require_icmp() -> None:
    require(_icmp_allowed(), "needs an ICMP socket (ping_group_range or CAP_NET_RAW)")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def _no_kept_socket() -> Iterator[None]:
    """Each test starts without a shared socket kept from an earlier one (fd counts)."""
    close_idle_sockets()
    yield
    close_idle_sockets()


def _released() -> bool:
    """No echo holds a shared socket any more: at most kept for the next diagnosis (asyncio),
    and closed by close_idle_sockets()."""
    in_use = [s for s in REGISTRY.sockets() if s.users]
    close_idle_sockets()
    return not in_use and not REGISTRY.sockets()


# -- witness rules: plain data, no sockets ------------------------------------------------

TARGET = parse_target("db.internal:81")
ADDR = "10.0.0.5"


def _attempt(outcome: ConnectOutcome, port: int = 81, ms: float = 3000.0) -> AddressAttempt:
    return AddressAttempt(
        address=ADDR,
        port=port,
        family="ipv4",
        outcome=outcome,
        connect_ms=ms,
        error=None if outcome == "established" else ErrorInfo(type="OSError", message=outcome),
    )


def _tcp(main: ConnectOutcome, canary: list[ConnectOutcome], enabled: bool = True) -> TcpStep:
    ok = main == "established"
    return TcpStep(
        status="ok" if ok else "failed",
        timeout_s=3.0,
        attempts=[_attempt(main, ms=1.0 if ok else 3000.0)],
        connected_to=f"{ADDR}:81" if ok else None,
        canary=[_attempt(c, port=p) for c, p in zip(canary, (1, 22), strict=False)],
        canary_enabled=enabled,
    )


def _icmp(
    received: int, sent: int = 3, pending: int = 0, unreachable: str | None = None
) -> IcmpStep:
    return IcmpStep(
        status="ok" if received else "failed",
        engine="raw",
        results=[
            IcmpAddressResult(
                address=ADDR,
                sent=sent,
                received=received,
                pending=pending,
                rtt_min_ms=0.1 if received else None,
                rtt_avg_ms=0.1 if received else None,
                rtt_max_ms=0.1 if received else None,
                unreachable=unreachable,
            )
        ],
    )


SKIPPED = IcmpStep(status="skipped", reason="no ICMP socket is allowed")
DNS = DnsStep(status="ok", host="db.internal", addresses=[ADDR])

WITNESS_TABLE: list[tuple[str, list[Step], str | None, list[str]]] = [
    ("ping answers, SYN dropped", [DNS, _icmp(3), _tcp("timeout", [])], "l4.filtered", []),
    (
        "ICMP blocked, canary RST",
        [DNS, _icmp(0), _tcp("timeout", ["refused", "timeout"])],
        "l4.filtered",
        [],
    ),
    (
        "ICMP impossible, canary SYN+ACK",
        [DNS, SKIPPED, _tcp("timeout", ["established"])],
        "l4.filtered",
        [],
    ),
    (
        "everything silent",
        [DNS, _icmp(0), _tcp("timeout", ["timeout", "timeout"])],
        "l3.host_unresponsive",
        [],
    ),
    (
        "ICMP impossible, canary silent",
        [DNS, SKIPPED, _tcp("timeout", ["timeout"])],
        "l3.host_unresponsive",
        [],
    ),
    (
        "no witness could be tried",
        [DNS, SKIPPED, _tcp("timeout", [], enabled=False)],
        "l4.connect_timeout",
        [],
    ),
    ("ICMP off, canary off", [DNS, _tcp("timeout", [], enabled=False)], "l4.connect_timeout", []),
    ("ICMP filtered, TCP works", [DNS, _icmp(0), _tcp("established", [])], None, ["icmp.no_reply"]),
    (
        "ICMP rejected, TCP works",
        [DNS, _icmp(0, sent=1, unreachable="host unreachable"), _tcp("established", [])],
        None,
        ["icmp.no_reply"],
    ),
    ("echo still pending, TCP works", [DNS, _icmp(0, 1, 1), _tcp("established", [])], None, []),
    ("ping and TCP fine", [DNS, _icmp(3), _tcp("established", [])], None, []),
]


@pytest.mark.parametrize(
    ("name", "steps", "code", "warnings"), WITNESS_TABLE, ids=[row[0] for row in WITNESS_TABLE]
)
def test_witness_rules(name: str, steps: list[Step], code: str | None, warnings: list[str]) -> None:
    verdict = classify(TARGET, Options(), steps)
    assert (verdict.fault.code if verdict.fault else None) == code, name
    assert [w.code for w in verdict.warnings] == warnings
    if code in ("l4.filtered", "l3.host_unresponsive"):
        assert verdict.fault is not None
        assert any(
            (e.step in ("icmp", "tcp") and "canary" in e.observation) or e.step == "icmp"
            for e in verdict.fault.evidence
        )


def test_filtered_summary_names_both_causes() -> None:
    verdict = classify(TARGET, Options(), [DNS, _icmp(3), _tcp("timeout", [])])
    assert verdict.fault is not None
    assert "firewall" in verdict.fault.summary and "accept queue" in verdict.fault.summary


def test_connect_timeout_hints_cover_both_causes() -> None:
    verdict = classify(TARGET, Options(), [DNS, SKIPPED, _tcp("timeout", [], enabled=False)])
    assert verdict.fault is not None
    hints = " ".join(verdict.fault.hints)
    assert "firewall" in hints and "host is down" in hints and "ping_group_range" in hints


def test_loss_counts_exclude_pending() -> None:
    r = IcmpAddressResult(address=ADDR, sent=3, received=1, pending=1)
    assert r.lost == 1 and r.loss_pct == 50.0
    assert IcmpAddressResult(address=ADDR, sent=1, pending=1).loss_pct is None


# -- the engine, on loopback ---------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.backends
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_echo_to_loopback(address: str) -> None:
    require_icmp()
    fam = socket.AF_INET6 if ":" in address else socket.AF_INET
    async with open_engine(fam) as engine:
        result = await engine.echo(address, 2.0)
    assert result.outcome == "reply" and result.rtt_ms is not None and result.rtt_ms < 2000
    assert _released()


@pytest.mark.anyio
@pytest.mark.backends
async def test_thousand_concurrent_echoes_share_one_socket() -> None:
    """Both receive paths: the asyncio loop reader callback, and under trio the echoes
    taking turns reading."""
    require_icmp()
    before = _open_fds()
    results: list[EchoResult] = []
    async with open_engine(socket.AF_INET) as engine:
        during = _open_fds()

        async def one(i: int) -> None:
            results.append(await engine.echo(f"127.0.{i // 250}.{i % 250 + 1}", 5.0))

        async with anyio.create_task_group() as tg:
            for i in range(1000):
                tg.start_soon(one, i)
    assert len(results) == 1000
    assert sum(r.outcome == "reply" for r in results) == 1000
    assert during == before + 1  # one shared socket for all of them
    assert _released() and _open_fds() == before


@pytest.mark.anyio
@pytest.mark.backends
async def test_pinger_reports_rtt_per_address() -> None:
    require_icmp()
    ctx = ProbeContext(parse_target("localhost:1"), Options(icmp_count=3))
    pinger = Pinger(ctx, ["127.0.0.1", "::1"], interval=0.01)
    await pinger.run()
    step = pinger.step()
    assert step.status == "ok" and step.engine in ("dgram", "raw")
    for r in step.results:
        assert (r.sent, r.received, r.pending) == (3, 3, 0)
        assert r.rtt_min_ms is not None and r.rtt_max_ms is not None
        assert r.rtt_min_ms <= (r.rtt_avg_ms or 0) <= r.rtt_max_ms


@pytest.mark.anyio
@pytest.mark.backends
async def test_cancelled_pinger_reports_pending_and_closes_its_socket() -> None:
    require_icmp()
    before = _open_fds()
    ctx = ProbeContext(parse_target("localhost:1"), Options(icmp_count=3))
    # 127.0.0.1 answers; the echoes are cancelled while later ones are still to be sent
    # or in flight. A long echo timeout keeps any unanswered echo pending, not lost.
    pinger = Pinger(ctx, ["127.0.0.1"], interval=5.0, echo_timeout=30.0)
    with anyio.move_on_after(0.2):
        await pinger.run()
    step = pinger.step()
    r = step.results[0]
    assert r.sent == 1 and r.received == 1 and r.lost == 0
    assert _released() and _open_fds() == before


@pytest.mark.anyio
async def test_aioping_engine_on_loopback() -> None:
    require_root()
    require(importlib.util.find_spec("aioping") is not None, "needs the aioping extra")
    ctx = ProbeContext(parse_target("localhost:1"), Options(icmp_count=1, icmp_engine="aioping"))
    pinger = Pinger(ctx, ["127.0.0.1"])
    await pinger.run()
    step = pinger.step()
    assert step.engine == "aioping" and step.results[0].received == 1


def test_socket_kept_for_the_next_diagnosis_and_closed_when_the_run_ends(
    tcp_server: object,
) -> None:
    """On asyncio the shared socket outlives its last echo (opening, tuning and closing it
    cost as much as the echo), is reused by the next diagnosis, and is closed when the
    loop's main task returns: no fd outlives ``anyio.run()``."""
    require_icmp()
    target = f"tcp://{tcp_server.address}"  # type: ignore[attr-defined]
    seen: list[SharedSocket] = []

    async def main() -> None:
        for _ in range(3):
            report = await netprobe.diagnose(target)
            icmp = report.step(IcmpStep)
            assert report.ok and icmp is not None and icmp.results[0].sent == 1
            kept = REGISTRY.sockets()
            assert len(kept) == 1 and kept[0].users == 0 and not kept[0].closed
            seen.append(kept[0])

    anyio.run(main)
    assert seen[0] is seen[1] is seen[2]  # opened once
    assert not REGISTRY.sockets() and seen[0].closed and seen[0].sock.fileno() == -1


def test_kept_socket_closed_after_idle(tcp_server: object, monkeypatch: pytest.MonkeyPatch) -> None:
    require_icmp()
    monkeypatch.setattr(icmp_sockets, "KEEP_IDLE_S", 0.05)

    async def main() -> None:
        await netprobe.diagnose(f"tcp://{tcp_server.address}")  # type: ignore[attr-defined]
        (kept,) = REGISTRY.sockets()
        await anyio.sleep(0.3)  # the loop is alive, the socket unused for longer than that
        assert not REGISTRY.sockets() and kept.closed and kept.sock.fileno() == -1

    anyio.run(main)


# -- the witness inside a real diagnosis, on loopback ---------------------------------------


@pytest.mark.anyio
@pytest.mark.backends
async def test_canary_rst_proves_host_alive(silent_port: object) -> None:
    """On asyncio the canary starts from a loop timer, under trio from a task: same verdict."""
    report = await netprobe.diagnose(
        f"tcp://{silent_port.address}",  # type: ignore[attr-defined]
        connect_timeout=0.6,
        icmp=False,
    )
    assert report.fault is not None and report.fault.code == "l4.filtered"
    tcp = report.step(TcpStep)
    assert tcp is not None and any(c.outcome == "refused" for c in tcp.canary)
    text = "\n".join(render_ladder(report))
    assert "answered RST → host is up → port" in text
    # The canary ends with the connect timeout: no extra wall time.
    assert (report.timings_ms.total or 0) < 0.6 * 1000 + 300


@pytest.mark.anyio
@pytest.mark.backends
async def test_ping_reply_proves_host_alive(silent_port: object) -> None:
    require_icmp()
    report = await netprobe.diagnose(
        f"tcp://{silent_port.address}",  # type: ignore[attr-defined]
        connect_timeout=0.6,
        canary=False,
    )
    assert report.fault is not None and report.fault.code == "l4.filtered"
    icmp = report.step(IcmpStep)
    assert icmp is not None and icmp.results[0].received >= 1
    assert "ping" in report.fault.summary


@pytest.mark.anyio
@pytest.mark.backends
async def test_icmp_adds_nothing_to_a_healthy_diagnosis(tcp_server: object) -> None:
    require_icmp()
    report = await netprobe.diagnose(f"tcp://{tcp_server.address}")  # type: ignore[attr-defined]
    assert report.ok
    icmp = report.step(IcmpStep)
    assert icmp is not None and icmp.results[0].lost == 0
    assert (report.timings_ms.total or 0) < 500


# -- in a namespace of our own: send errors, datagram sockets, no permission at all -----------


@pytest.fixture(scope="module")
def bare_netns() -> Iterator[str]:
    """A network namespace with only loopback up: no route anywhere else."""
    require_root()
    ip = require_binary("ip")
    name = f"nptest-icmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run([ip, "netns", "add", name], check=True)
    try:
        subprocess.run([ip, "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run([ip, "netns", "del", name], check=False)


_SCRIPT = """
import anyio, json, sys
from netprobe.options import Options
from netprobe.probes._context import ProbeContext
from netprobe.probes.icmp import Pinger
from netprobe.target import parse_target
async def main():
    ctx = ProbeContext(parse_target("x:1"), Options(icmp_count=2))
    p = Pinger(ctx, sys.argv[1:], interval=0.01, echo_timeout=1.0)
    await p.run()
    print(p.step().model_dump_json())
anyio.run(main)
"""


def _ping_in(
    ns: str, addresses: list[str], *, user: int | None = None, group_range: str
) -> IcmpStep:
    subprocess.run(
        ["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv4.ping_group_range={group_range}"],
        check=True,
    )
    prefix = ["ip", "netns", "exec", ns]
    if user is not None:
        prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
    out = subprocess.run(
        [*prefix, PY, "-c", _SCRIPT, *addresses],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    return IcmpStep.model_validate(json.loads(out.stdout))


def test_datagram_socket_and_send_errors(bare_netns: str) -> None:
    start = time.perf_counter()
    step = _ping_in(bare_netns, ["127.0.0.1", "::1", "198.19.5.5"], group_range="0 2147483647")
    assert step.engine == "dgram"
    by = {r.address: r for r in step.results}
    assert by["127.0.0.1"].received == 2 and by["::1"].received == 2
    unroutable = by["198.19.5.5"]
    assert unroutable.immediate and unroutable.unreachable is not None
    assert "ENETUNREACH" in unroutable.unreachable and unroutable.sent == 1
    assert time.perf_counter() - start < 10


def test_no_icmp_socket_allowed_means_skipped_with_the_fix(bare_netns: str) -> None:
    require_binary("setpriv")
    step = _ping_in(bare_netns, ["127.0.0.1"], user=65534, group_range="1 0")
    assert step.status == "skipped" and step.reason is not None
    assert "ping_group_range" in step.reason and "CAP_NET_RAW" in step.reason


# -- an echo still pending when TCP had answered: "not waited for", never a loss --------------

_PENDING_SCRIPT = """
import anyio, json, socket
import netprobe
from netprobe.render import render_ladder
async def main():
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        report = await netprobe.diagnose(f"tcp://127.0.0.1:{port}", timeout=5)
    print(json.dumps({"report": report.model_dump(mode="json"),
                      "ladder": render_ladder(report)}))
anyio.run(main)
"""


def test_an_echo_pending_when_tcp_answered_is_not_waited_for_not_lost() -> None:
    """Loopback in a namespace of our own whose nftables drops echo requests: the connect
    answers at once, the echo never will. The ICMP step says it was not waited for."""
    require_root()
    require_icmp()
    ip, nft = require_binary("ip"), require_binary("nft")
    ns = f"nptest-icmpw-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run([ip, "netns", "add", ns], check=True)
    try:
        subprocess.run([ip, "-n", ns, "link", "set", "lo", "up"], check=True)
        routes = subprocess.run(
            [ip, "-n", ns, "route", "show", "default"], check=True, capture_output=True, text=True
        )
        assert routes.stdout.strip() == ""  # no way out of the namespace
        rules = (
            "add table inet nptest\n"
            "add chain inet nptest in { type filter hook input priority 0; }\n"
            "add rule inet nptest in icmp type echo-request drop\n"
        )
        subprocess.run(
            [ip, "netns", "exec", ns, nft, "-f", "-"], input=rules, text=True, check=True
        )
        out = subprocess.run(
            [ip, "netns", "exec", ns, PY, "-c", _PENDING_SCRIPT],
            check=True, capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
    finally:
        subprocess.run([ip, "netns", "del", ns], check=False)
    got = json.loads(out.stdout)
    report = netprobe.Report.model_validate(got["report"])
    assert report.ok and report.warnings == ()
    icmp = report.step(IcmpStep)
    assert icmp is not None and icmp.status == "ok" and icmp.not_waited_for
    r = icmp.results[0]
    assert r.received == 0 and r.pending == r.sent >= 1 and r.lost == 0
    ladder = "\n".join(got["ladder"])
    assert "ping 127.0.0.1 not waited for" in ladder
    assert "0/" not in ladder  # no "0/1 answered": that reads as a loss
