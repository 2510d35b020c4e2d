"""The churn probe (issue 13, "Session tables and churn"): reconnects from just-closed source
ports against a firewall whose session table still holds the closed 4-tuples.

The firewall is nftables on a router namespace (``SessionTablePath``: client ``k`` without a
default route -> router ``u`` -> server ``v``, 198.18.128.0/18): a dynamic set remembers the
4-tuple of every connection that sent a FIN or an RST for N seconds and drops a new SYN that
reuses one. The controls: the same router without the set, and loopback.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import netprobe
from netprobe.classify.churn import churn_stats, churn_verdict
from netprobe.protocols.tcp_info import total_retrans
from netprobe.report import ChurnAttempt
from netprobe.target import parse_target
from netprobe.testing import SilentPort, TcpServer
from nplab.realservers.conntrack import ST_SERVER_IP, SessionTablePath

ROOT = Path(__file__).resolve().parent.parent
NETPROBE = str(ROOT / ".venv" / "bin" / "netprobe")


def _churn(path: SessionTablePath, *args: str) -> dict[str, Any]:
    routes = path.run_client(["ip", "route", "show"]).stdout
    assert "default" not in routes, routes
    out = path.run_client([NETPROBE, "churn", f"{ST_SERVER_IP}:7", "--json", *args], timeout=60)
    assert out.stdout, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    assert out.returncode == (0 if data["ok"] else 1), out.stderr
    return data


def test_reused_ports_dropped_by_the_session_table_time_out() -> None:
    with SessionTablePath(3.0) as path:
        data = _churn(path, "--pairs", "6", "--connect-timeout", "1.5")
        drops = path.session_drops()
    assert not data["ok"]
    assert data["fault"]["code"] == "l4.reused_port_dropped"
    assert data["fault"]["layer"] == "l4"
    fresh, reused = data["fresh"], data["reused"]
    assert fresh["attempts"] == fresh["established"] == 6 and fresh["retransmitted"] == 0
    assert reused["attempts"] == reused["timed_out"] == 6
    assert reused["by_syns"] == {"timeout": 6}
    assert drops >= 6  # the firewall's own counter: every reused SYN died there
    assert "still holds the closed sessions" in data["summary"]


def test_reused_ports_connect_once_the_table_forgets_after_retransmitted_syns() -> None:
    """The session table forgets after 1.5 s: the reused connects succeed on a later SYN
    (the SYN retransmission schedule shows in by_syns), fresh ones on the first."""
    with SessionTablePath(1.5) as path:
        data = _churn(path, "--pairs", "4", "--connect-timeout", "4")
    assert data["fault"]["code"] == "l4.reused_port_dropped"
    reused = data["reused"]
    assert reused["established"] == 4 and reused["retransmitted"] == 4
    assert all(int(k) >= 2 for k in reused["by_syns"]), reused["by_syns"]
    assert reused["median_ms"] >= 900
    assert data["fresh"]["by_syns"] == {"1": 4}


def test_the_same_router_without_a_session_table_is_healthy() -> None:
    with SessionTablePath(None) as path:
        data = _churn(path, "--pairs", "6", "--connect-timeout", "1.5")
    assert data["ok"], data["summary"]
    assert data["fault"] is None
    assert data["reused"]["established"] == 6 and data["reused"]["by_syns"] == {"1": 6}


@pytest.mark.anyio
@pytest.mark.backends
async def test_loopback_churn_is_healthy(tcp_server: TcpServer) -> None:
    report = await netprobe.probe_churn(
        f"127.0.0.1:{tcp_server.port}", pairs=8, rate=100, connect_timeout=1.0
    )
    assert report.ok, report.summary
    # A port the kernel picks for a fresh connect that this run had closed before counts
    # as reused: every pair has at least its reconnect.
    assert report.reused.attempts >= 8 and report.fresh.attempts + report.reused.attempts == 16
    assert report.fresh.established == report.fresh.attempts
    assert report.reused.established == report.reused.attempts
    assert not report.notes  # no reconnect failed to bind its port again
    reused = [a for a in report.attempts if a.kind == "reused"]
    fresh_ports = {a.local_port for a in report.attempts if a.kind == "fresh"}
    assert all(a.local_port in fresh_ports for a in reused)  # the very same source ports
    assert report.close == "rst"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "kwargs",
    [
        {"pairs": 0},
        {"pairs": 1001},
        {"rate": 0.0},
        {"max_time": 0.5},
        {"max_time": 601},
        {"max_time": 5, "connect_timeout": 3.0},  # not even one pair could end in time
    ],
)
async def test_bad_arguments_are_refused_before_io(kwargs: dict[str, Any]) -> None:
    with pytest.raises(netprobe.InvalidOption):
        await netprobe.probe_churn("127.0.0.1:1", **kwargs)


def test_cli_usage_error_is_one_line() -> None:
    out = subprocess.run(
        [NETPROBE, "churn", "127.0.0.1:1", "--pairs", "0"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert "pairs must be between 1 and 1000" in out.stderr
    assert "Traceback" not in out.stderr


# -- the pure parts ------------------------------------------------------------------------


def _a(i: int, kind: str, outcome: str = "established", syns: int | None = 1) -> ChurnAttempt:
    ms = 0.5 if syns in (None, 1) else 1000.0 * (syns - 1)
    return ChurnAttempt.model_validate(
        {"index": i, "kind": kind, "local_port": 40000 + i, "outcome": outcome,
         "connect_ms": None if outcome == "timeout" else ms, "syns_sent": syns}
    )  # fmt: skip


TARGET = parse_target("db:5432")


@pytest.mark.parametrize(
    ("fresh", "reused", "code", "ok"),
    [
        ([_a(i, "fresh") for i in range(5)], [_a(i, "reused") for i in range(5)], None, True),
        (
            [_a(i, "fresh") for i in range(5)],
            [_a(i, "reused", "timeout", None) for i in range(5)],
            "l4.reused_port_dropped",
            False,
        ),
        (
            [_a(i, "fresh") for i in range(5)],
            [_a(i, "reused", syns=3) for i in range(2)] + [_a(i, "reused") for i in range(3)],
            "l4.reused_port_dropped",
            False,
        ),
        # One slow reconnect out of five is noise, not a pattern.
        (
            [_a(i, "fresh") for i in range(5)],
            [_a(0, "reused", syns=2)] + [_a(i, "reused") for i in range(4)],
            None,
            False,
        ),
        # Fresh ports fail as much: not the reuse.
        (
            [_a(i, "fresh", "timeout", None) for i in range(3)] + [_a(9, "fresh")],
            [_a(i, "reused", "timeout", None) for i in range(1)],
            None,
            False,
        ),
        ([_a(i, "fresh", "refused", None) for i in range(3)], [], "l4.refused", False),
        ([_a(i, "fresh", "timeout", None) for i in range(3)], [], "l4.connect_timeout", False),
    ],
)
def test_churn_verdict_table(
    fresh: list[ChurnAttempt], reused: list[ChurnAttempt], code: str | None, ok: bool
) -> None:
    v = churn_verdict(
        TARGET, churn_stats(fresh), churn_stats(reused), attempts=fresh + reused, timeout_s=3.0
    )
    assert (v.fault.code if v.fault else None) == code
    assert v.ok is ok
    assert v.summary.endswith(".")


def test_churn_stats_by_syns_in_order() -> None:
    s = churn_stats(
        [_a(1, "fresh", syns=3), _a(2, "fresh"), _a(3, "fresh", "timeout", None), _a(4, "fresh")]
    )
    assert list(s.by_syns.items()) == [("1", 2), ("3", 1), ("timeout", 1)]
    assert s.retransmitted == 1 and s.timed_out == 1 and s.established == 3


def test_total_retrans_offset() -> None:
    raw = bytes(8) + b"".join(n.to_bytes(4, "little") for n in range(24))
    assert total_retrans(raw) == 23
    assert total_retrans(raw[:50]) is None


def test_churn_example(tcp_server: TcpServer) -> None:
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "examples" / "churn_probe.py"),
         f"127.0.0.1:{tcp_server.port}", "4"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("4 of 4 fresh") or " reused-port connects to " in out.stdout
    assert "  reused: {'1': " in out.stdout


@pytest.mark.anyio
async def test_churn_is_bounded_by_max_time_and_says_so(silent_port: SilentPort) -> None:
    """Every SYN is dropped (fresh ones too): the probe ends within max_time, notes the pairs
    it did not start, and gives the ordinary connect verdict, not a reuse one."""
    start = time.perf_counter()
    report = await netprobe.probe_churn(
        silent_port.address, pairs=200, rate=5, max_time=2.5, connect_timeout=0.5
    )
    assert time.perf_counter() - start < 4.0
    assert report.fault is not None and report.fault.code == "l4.connect_timeout"
    assert report.fresh.timed_out == report.fresh.attempts > 0
    assert report.reused.attempts == 0
    assert any("pairs started" in note for note in report.notes)


def test_progress_shows_on_a_terminal_and_the_report_replaces_it(silent_port: SilentPort) -> None:
    from nplab.terminal import ANSI, run_in_terminal

    args = ["churn", silent_port.address, "--pairs", "3", "--rate", "2", "--connect-timeout",
            "1"]  # fmt: skip
    code, raw = run_in_terminal(args)
    text = ANSI.sub("", raw)
    assert code == 1
    assert "connect, close, reconnect" in text, raw  # the progress bar, while it runs
    assert "CHURN FAULT l4.connect_timeout" in text
