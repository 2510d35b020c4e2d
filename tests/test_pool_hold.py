"""Pool hold tells the truth (issue 11, "Pool hold"): a held connection is checked on the
wire after the hold (a TCP keepalive probe, then the protocol's round trip), with a deadline
of its own; an idle session killed by a stateful firewall is ``l4.idle_killed``.

The firewall is real: nftables with conntrack on a router namespace between the client and
the server (``nplab/realservers/conntrack.py``), whose established-session timeout is 2 s
(``nf_conntrack_tcp_timeout_established``) and which drops or resets what conntrack cannot
place (``nf_conntrack_tcp_loose=0``). The control is the same router without the short
timeout, and a direct loopback path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import netprobe
from netprobe.classify.pool import idle_kill
from netprobe.pool import idle_schedule
from netprobe.probes.keepalive import parse_tcp_info
from netprobe.steps import HoldCheck
from netprobe.testing import TcpServer
from nplab.dbservers import *  # noqa: F403 - session fixtures
from nplab.realservers.conntrack import SERVER_IP, ConntrackPath

ROOT = Path(__file__).resolve().parent.parent
NETPROBE = str(ROOT / ".venv" / "bin" / "netprobe")


def _pool(path: ConntrackPath, *args: str) -> dict[str, Any]:
    out = path.run_client(
        [NETPROBE, "pool", f"tcp://{SERVER_IP}:7", "--no-icmp", "--json", *args], timeout=60
    )
    assert out.stdout, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    assert out.returncode == (0 if data["ok"] else 1), out.stderr
    return data


@pytest.mark.parametrize(
    ("action", "outcome", "words"),
    [("drop", "silence", "silence: no ACK to"), ("reset", "reset", "RST: the keepalive")],
)
def test_idle_sessions_expired_by_the_firewall_are_idle_killed(
    action: str, outcome: str, words: str
) -> None:
    """Before: "3 of 3 opened and validated", exit 0 (revalidating plain TCP sent nothing)."""
    with ConntrackPath(invalid_action=action, established_timeout=2) as path:
        data = _pool(path, "--size", "3", "--hold", "3", "--read-timeout", "1.5")
    assert not data["ok"]
    assert data["fault"]["code"] == "l4.idle_killed" and data["fault"]["layer"] == "l4"
    assert data["held_ok"] == 0 and data["opened"] == 3
    assert words in data["fault"]["summary"], data["fault"]["summary"]
    for conn in data["connections"]:
        assert conn["held_fault_code"] == "l4.idle_killed"
        assert conn["hold_check"]["outcome"] == outcome
        assert conn["hold_check"]["idle_ms"] >= 2500


def test_held_sessions_through_the_firewall_stay_healthy() -> None:
    """The control: the same router keeps its sessions (default timeout): the keepalive
    probes pass it and are answered."""
    with ConntrackPath(invalid_action="drop") as path:
        data = _pool(path, "--size", "3", "--hold", "2.5", "--read-timeout", "1.5")
        assert "dport=7" in path.entries()  # the sessions went through the router
    assert data["ok"], data["summary"]
    assert data["fault"] is None and data["held_ok"] == 3
    for conn in data["connections"]:
        assert conn["hold_check"]["outcome"] == "alive"
        assert conn["hold_check"]["probes_unanswered"] == 0


@pytest.mark.anyio
@pytest.mark.backends
async def test_direct_path_held_longer_than_the_timeout_stays_healthy(
    tcp_server: TcpServer,
) -> None:
    """A hold longer than the total deadline (``timeout``) is no loss: the check after the
    hold has its own deadline."""
    report = await netprobe.probe_pool(
        f"tcp://127.0.0.1:{tcp_server.port}", size=3, hold=1.5, timeout=1.0, icmp=False
    )
    assert report.ok, report.summary
    assert report.held_ok == 3
    for conn in report.connections:
        assert conn.hold_check is not None and conn.hold_check.outcome == "alive"


@pytest.mark.anyio
@pytest.mark.backends
async def test_redis_held_longer_than_the_timeout_answers_ping(
    redis_plain: RedisServer,  # noqa: F405
) -> None:
    """Before: every connection lost after a hold >= the timeout (PING got a 0 s budget:
    each connection's deadline started when it opened)."""
    report = await netprobe.probe_pool(
        f"redis://{redis_plain.address}", size=3, hold=1.5, timeout=1.0, icmp=False
    )
    assert report.ok, report.summary
    assert report.held_ok == 3
    for conn in report.connections:
        assert conn.database is not None and conn.database.outcome == "ready"
        assert conn.hold_check is not None and conn.hold_check.outcome == "alive"


# -- the pure parts ------------------------------------------------------------------------


def test_parse_tcp_info_reads_state_probes_and_last_ack() -> None:
    raw = (
        bytes([1, 0, 0, 2, 0, 0, 0, 0])
        + (7).to_bytes(4, "little") * 12
        + (1234).to_bytes(4, "little")
    )
    info = parse_tcp_info(raw)
    assert info is not None
    assert (info.state, info.probes, info.last_ack_recv_ms) == (1, 2, 1234)
    assert parse_tcp_info(raw[:20]) is None


@pytest.mark.parametrize(
    ("check", "code", "words"),
    [
        (HoldCheck(outcome="alive", waited_ms=1.0), None, None),
        (HoldCheck(outcome="unavailable", waited_ms=0.0), None, None),
        (
            HoldCheck(outcome="silence", waited_ms=2000.0, probes_unanswered=2),
            "l4.idle_killed",
            "silence: no ACK to 2 keepalive probes in 2.0 s",
        ),
        (HoldCheck(outcome="reset", waited_ms=1.0), "l4.idle_killed", "RST"),
        (HoldCheck(outcome="closed", waited_ms=0.0), "l4.idle_killed", "closed: the peer"),
    ],
)
def test_idle_kill_rule(check: HoldCheck, code: str | None, words: str | None) -> None:
    killed = idle_kill(check)
    if code is None:
        assert killed is None
    else:
        assert killed is not None and killed.code == code
        assert words is not None and words in killed.detail


# -- idle-timeout discovery (issue 13) -----------------------------------------------------


@pytest.mark.parametrize(("action", "death"), [("drop", "silence"), ("reset", "reset")])
def test_find_idle_timeout_brackets_the_conntrack_timeout(action: str, death: str) -> None:
    """conntrack forgets an established session after 3 s idle: 1 s and 2 s survive, 4 s
    dies (silence or RST as the firewall is set), the longer idles are not waited for."""
    with ConntrackPath(invalid_action=action, established_timeout=3) as path:
        data = _pool(path, "--find-idle-timeout", "--max-idle", "10", "--read-timeout", "1.5")
    assert data["fault"]["code"] == "l4.idle_killed"
    search = data["idle_search"]
    assert (search["survived_s"], search["died_s"], search["death"]) == (2.0, 4.0, death)
    outcomes = {t["idle_s"]: t["outcome"] for t in search["trials"]}
    assert outcomes == {1.0: "alive", 2.0: "alive", 4.0: death, 8.0: "not_needed",
                        10.0: "not_needed"}  # fmt: skip
    assert "between 2 and 4 s" in data["summary"]


def test_find_idle_timeout_without_a_timeout_survives_up_to_the_bound() -> None:
    with ConntrackPath(invalid_action="drop") as path:
        data = _pool(path, "--find-idle-timeout", "--max-idle", "3", "--read-timeout", "1.5")
    assert data["ok"], data["summary"]
    search = data["idle_search"]
    assert search["survived_s"] == 3.0 and search["died_s"] is None
    assert [t["outcome"] for t in search["trials"]] == ["alive", "alive", "alive"]


def test_idle_schedule_doubles_up_to_the_bound() -> None:
    assert idle_schedule(10) == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert idle_schedule(1) == [1.0]
    assert idle_schedule(600)[-2:] == [512.0, 600.0]


@pytest.mark.anyio
@pytest.mark.parametrize("max_idle", [0.5, 3601])
async def test_max_idle_out_of_bounds_is_refused_before_io(max_idle: float) -> None:
    with pytest.raises(netprobe.InvalidOption):
        await netprobe.probe_pool("tcp://127.0.0.1:1", find_idle_timeout=True, max_idle=max_idle)


@pytest.mark.anyio
async def test_redis_that_closes_idle_clients_is_idle_killed_by_fin() -> None:
    """Redis with ``timeout 1`` closes a client idle for a second (FIN): the hold check
    finds the connection closed by the peer, and says it is the server's idle timeout."""
    with RedisServer("--timeout", "1") as server:  # noqa: F405
        report = await netprobe.probe_pool(
            f"redis://{server.address}", size=2, hold=2.5, icmp=False, read_timeout=1.5
        )
    assert report.fault is not None and report.fault.code == "l4.idle_killed"
    assert "FIN" in report.summary and "idle timeout" in report.summary
    for conn in report.connections:
        assert conn.hold_check is not None and conn.hold_check.outcome == "closed"
