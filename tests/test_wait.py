"""wait_until_ready and `netprobe wait` against loopback servers that come up late or never."""

from __future__ import annotations

import contextlib
import logging
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from health_support import free_port

import netprobe
from netprobe.health.wait import backoff_delay
from netprobe.report import Report
from netprobe.target import Target
from netprobe.testing import TcpServer, closed_port

#: The network tests of this module run under asyncio and under trio (conftest.py).
pytestmark = pytest.mark.backends


@contextlib.contextmanager
def late_server(delay: float) -> Iterator[int]:
    """A loopback port on which a listener appears ``delay`` seconds from now."""
    port = free_port()
    servers: list[TcpServer] = []
    stop = threading.Event()

    def start() -> None:
        if not stop.wait(delay):
            servers.append(TcpServer(port=port))

    t = threading.Thread(target=start, daemon=True)
    t.start()
    try:
        yield port
    finally:
        stop.set()
        t.join(5)
        for s in servers:
            s.close()


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 30, 10_000])
def test_backoff_is_exponential_capped_and_jittered(attempt: int) -> None:
    rng = random.Random(attempt)
    step = min(5.0, 0.25 * 2 ** min(attempt - 1, 30))
    delays = [backoff_delay(attempt, initial=0.25, maximum=5.0, rng=rng) for _ in range(200)]
    assert all(step / 2 <= d <= step for d in delays)
    assert len(set(delays)) > 100  # jittered: replicas do not retry in lockstep


@pytest.mark.anyio
async def test_ready_at_once(tcp_server: TcpServer) -> None:
    reports = await netprobe.wait_until_ready(
        [f"tcp://{tcp_server.address}"], timeout=5, icmp=False
    )
    assert len(reports) == 1 and reports[0].ok


@pytest.mark.anyio
async def test_waits_for_a_late_server_and_logs_only_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[int] = []

    def on_attempt(target: Target, report: Report, n: int) -> None:
        attempts.append(n)

    caplog.set_level(logging.INFO, logger="netprobe.wait")
    with late_server(1.5) as port:
        started = time.monotonic()
        reports = await netprobe.wait_until_ready(
            [f"tcp://127.0.0.1:{port}"], timeout=10, interval=0.1, on_attempt=on_attempt, icmp=False
        )
        elapsed = time.monotonic() - started
    assert reports[0].ok
    assert 1.4 < elapsed < 8
    assert len(attempts) >= 3, "it retried"
    messages = [r.getMessage() for r in caplog.records if r.name == "netprobe.wait"]
    assert len(messages) == 2, messages  # one "not ready: l4.refused", one "ready": changes only
    assert "l4.refused" in messages[0]
    assert "is ready" in messages[1]


@pytest.mark.anyio
async def test_deadline_raises_with_the_last_diagnosis_of_each(tcp_server: TcpServer) -> None:
    dead_a, dead_b = closed_port(), closed_port()
    targets = [f"127.0.0.1:{dead_a}", f"tcp://{tcp_server.address}", f"127.0.0.1:{dead_b}"]
    started = time.monotonic()
    with pytest.raises(netprobe.DependencyUnavailable) as info:
        await netprobe.wait_until_ready(targets, timeout=1.5, interval=0.1, icmp=False)
    elapsed = time.monotonic() - started
    assert 1.3 < elapsed < 2.5, "parallel, and bounded by the deadline"
    exc = info.value
    assert [r.ok for r in exc.reports] == [False, True, False]
    assert len(exc.failing) == 2
    text = str(exc)
    assert text.startswith("2 of 3 dependencies not ready within 1.5 s")
    assert f"127.0.0.1:{dead_a}: [l4] l4.refused" in text
    assert f"127.0.0.1:{dead_b}: [l4] l4.refused" in text
    assert tcp_server.address not in text


@pytest.mark.anyio
async def test_last_attempt_is_cut_to_the_deadline(silent_port: object) -> None:
    address = silent_port.address  # type: ignore[attr-defined]
    started = time.monotonic()
    with pytest.raises(netprobe.DependencyUnavailable) as info:
        await netprobe.wait_until_ready([f"tcp://{address}"], timeout=1.0, icmp=False, canary=False)
    assert time.monotonic() - started < 1.6
    assert info.value.failing[0].fault is not None


@pytest.mark.anyio
async def test_bad_input_raises_before_io() -> None:
    with pytest.raises(netprobe.InvalidTarget):
        await netprobe.wait_until_ready(["db:99999"])
    with pytest.raises(netprobe.InvalidOption):
        await netprobe.wait_until_ready(["db:5432"], interval=0)
    with pytest.raises(netprobe.InvalidOption):
        await netprobe.wait_until_ready(["db:5432"], connect_timeout=-1)
    assert await netprobe.wait_until_ready([]) == []


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netprobe.cli", "wait", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_waits_for_a_late_server_then_runs_the_command() -> None:
    with late_server(2.0) as port:
        out = run_cli(
            f"tcp://127.0.0.1:{port}",
            "--timeout",
            "20",
            "--no-icmp",
            "--",
            sys.executable,
            "-c",
            "print('app started')",
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "app started"
    # Plain lines (stderr is not a terminal): one per change of verdict, not per attempt.
    assert "not ready: l4.refused" in out.stderr
    assert out.stderr.count("not ready") == 1
    assert "ready" in out.stderr.splitlines()[-1]


def test_cli_exit_1_with_the_diagnosis_when_never_ready() -> None:
    port = closed_port()
    started = time.monotonic()
    out = run_cli(f"127.0.0.1:{port}", "--timeout", "1.5", "--no-icmp", "--", "false")
    assert time.monotonic() - started < 10
    assert out.returncode == 1
    assert out.stdout == ""  # the command never ran
    assert "not ready after 1.5 s" in out.stderr
    assert "FAULT l4.refused" in out.stderr
    assert "hint:" in out.stderr


def test_cli_command_exit_status_is_passed_through(tcp_server: TcpServer) -> None:
    out = run_cli(f"tcp://{tcp_server.address}", "--no-icmp", "--", sys.executable, "-c", "exit(7)")
    assert out.returncode == 7


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("db:99999",),
        ("127.0.0.1:1", "--connect-timeout", "-3"),
        ("127.0.0.1:1", "--interval", "0"),
    ],
)
def test_cli_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    out = run_cli(*args)
    assert out.returncode == 2, out.stderr
    assert "error" in out.stderr
    assert "Traceback" not in out.stderr
