"""The health checker owns its diagnoses (structured concurrency), and remembers verdicts.

Real diagnoses of real loopback peers where a verdict is claimed; a diagnosis function that
hangs where the test is about who cancels it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from health_support import uvicorn_server

import netprobe
from netprobe.health import HealthChecker, health_app, startup_gate
from netprobe.health.checker import HISTORY_LIMIT
from netprobe.options import Options
from netprobe.report import Report
from netprobe.target import Target
from netprobe.testing import TcpServer, closed_port

pytestmark = pytest.mark.anyio


class Hanging:
    """A diagnosis that never ends by itself; records that it started and was cancelled."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0

    async def __call__(self, target: Target, options: Options) -> Report:
        self.started += 1
        try:
            await anyio.sleep_forever()
        except BaseException:
            self.cancelled += 1
            raise
        raise AssertionError("unreachable")


def other_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def test_a_running_checker_owns_its_diagnoses_and_cancels_them_on_exit() -> None:
    hanging = Hanging()
    before = other_tasks()
    async with HealthChecker([f"127.0.0.1:{closed_port()}"], diagnose=hanging) as checker:
        assert checker.running
        result = await checker.check(budget=0.1)
        assert result.checks[0].status == "pending"
        # The refresh outlives the check (a hanging dependency costs one diagnosis)...
        assert hanging.started == 1 and hanging.cancelled == 0
        await checker.check(budget=0.1)
        assert hanging.started == 1, "single flight: the running refresh is waited for"
        assert {t.get_name() for t in other_tasks() - before} == {"netprobe-health-refresh"}
    # ...and ends with its owner: cancelled and awaited before __aexit__ returned.
    assert hanging.cancelled == 1
    assert other_tasks() <= before
    assert not checker.running


async def test_without_an_owner_each_check_owns_what_it_starts() -> None:
    hanging = Hanging()
    checker = HealthChecker([f"127.0.0.1:{closed_port()}"], diagnose=hanging)
    before = other_tasks()
    started = time.monotonic()
    result = await checker.check(budget=0.2)
    assert time.monotonic() - started < 1.0, "the budget holds"
    assert result.checks[0].status == "pending"
    assert hanging.started == 1 and hanging.cancelled == 1, "cancelled with its check"
    assert other_tasks() <= before, "no task outlives the check"
    await checker.check(budget=0.1)
    assert hanging.started == 2, "nobody owns a refresh between checks: the next one starts"


async def test_unowned_concurrent_checks_share_one_diagnosis(tcp_server: TcpServer) -> None:
    calls = 0

    async def slow(target: Target, options: Options) -> Report:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.3)
        return await netprobe.diagnose(target, options=options)

    checker = HealthChecker([f"tcp://{tcp_server.address}"], diagnose=slow, icmp=False)
    results: list[str] = []

    async def one() -> None:
        results.append((await checker.check(budget=5)).checks[0].status)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
    assert calls == 1
    assert results == ["ok"] * 20


async def test_aclose_cancels_in_flight_and_the_checker_stays_usable(
    tcp_server: TcpServer,
) -> None:
    hanging = Hanging()
    async with HealthChecker([f"tcp://{tcp_server.address}"], diagnose=hanging) as checker:
        await checker.check(budget=0.05)
        with anyio.fail_after(2):
            await checker.aclose()
        assert hanging.cancelled == 1
        assert checker.snapshot().checks[0].status == "pending", "a cancelled refresh is no result"
        await checker.check(budget=0.05)
        assert hanging.started == 2


async def test_entering_twice_is_an_error() -> None:
    checker = HealthChecker(["127.0.0.1:1"])
    async with checker:
        with pytest.raises(RuntimeError, match="already running"):
            await checker.__aenter__()


def test_served_alone_the_lifespan_owns_the_diagnoses_until_shutdown() -> None:
    hanging = Hanging()
    app = health_app(["127.0.0.1:1"], diagnose=hanging, budget=0.2)
    with uvicorn_server(app, lifespan="on") as base:
        assert app.checker.running
        r = httpx.get(f"{base}/ready", timeout=5)
        assert r.status_code == 503
        assert r.json()["checks"]["tcp://127.0.0.1:1"]["status"] == "pending"
        assert hanging.started == 1 and hanging.cancelled == 0, "outlives the request"
    assert hanging.cancelled == 1, "cancelled at shutdown"
    assert not app.checker.running


async def test_mounted_app_run_by_the_host_lifespan(tcp_server: TcpServer) -> None:
    from fastapi import FastAPI

    health = health_app([f"tcp://{tcp_server.address}"], icmp=False)
    host = FastAPI()
    host.mount("/health", health)
    async with health:  # what the host app's lifespan does
        assert health.checker.running
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            assert (await client.get("/health/ready")).json()["status"] == "ok"
    assert not health.checker.running


def test_no_fire_and_forget_task_in_the_health_package() -> None:
    """The rule, stated where a newcomer would break it: tasks belong to a task group."""
    package = Path(netprobe.__file__).parent / "health"
    for path in package.glob("*.py"):
        text = path.read_text()
        for call in ("create_task(", "spawn_system_task(", "ensure_future("):
            assert call not in text, f"{path.name} starts an unowned task with {call}"


async def test_history_records_each_change_of_verdict_bounded() -> None:
    server = TcpServer()
    port = server.port
    checker = HealthChecker([f"tcp://127.0.0.1:{port}"], ttl=0.01, icmp=False, timeout=2)
    try:
        async with checker:
            assert (await checker.check(budget=5)).checks[0].status == "ok"
            await anyio.sleep(0.02)
            assert (await checker.check(budget=5)).checks[0].status == "ok"  # no change
            server.close()
            await anyio.sleep(0.02)
            down = (await checker.check(budget=5)).checks[0]
            assert down.status == "fail"
            server = TcpServer(port=port)
            await anyio.sleep(0.02)
            up = (await checker.check(budget=5)).checks[0]
    finally:
        server.close()
    assert up.status == "ok"
    assert [h.verdict for h in up.history] == ["ok", "l4.refused", "ok"]
    assert [h.status for h in up.history] == ["ok", "fail", "ok"]
    assert up.history[0].at <= up.history[1].at <= up.history[2].at
    assert up.diagnoses == 4


async def test_history_is_bounded(tcp_server: TcpServer) -> None:
    flip = 0

    async def flapping(target: Target, options: Options) -> Report:
        nonlocal flip
        flip += 1
        port = tcp_server.port if flip % 2 else closed_port()
        return await netprobe.diagnose(f"tcp://127.0.0.1:{port}", options=options)

    checker = HealthChecker(["db:1"], ttl=0.001, diagnose=flapping, icmp=False)
    async with checker:
        for _ in range(HISTORY_LIMIT + 5):
            await anyio.sleep(0.002)
            await checker.check(budget=5)
    history = checker.snapshot().checks[0].history
    assert len(history) == HISTORY_LIMIT
    assert all(a.verdict != b.verdict for a, b in itertools.pairwise(history))


async def test_an_error_in_the_body_propagates_unwrapped() -> None:
    hanging = Hanging()
    with pytest.raises(KeyError, match="mine"):
        async with HealthChecker(["127.0.0.1:1"], diagnose=hanging) as checker:
            await checker.check(budget=0.05)
            raise KeyError("mine")
    assert hanging.cancelled == 1


async def test_outer_cancellation_propagates_and_cancels_the_diagnoses() -> None:
    hanging = Hanging()
    with anyio.move_on_after(0.2) as scope:
        async with HealthChecker(["127.0.0.1:1"], diagnose=hanging) as checker:
            await checker.check(budget=0.05)
            await anyio.sleep(5)
    assert scope.cancelled_caught
    assert hanging.cancelled == 1 and not checker.running


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"dependencies": ["db:99999"]}, netprobe.InvalidTarget, "out of range"),
        ({"dependencies": ["db:1"], "timeout": 0}, netprobe.InvalidOption, "timeout"),
        ({"dependencies": ["db:1"], "max_interval": 0.1}, netprobe.InvalidOption, "max_interval"),
        ({"dependencies": ["db:1"], "connect_timeout": -1}, netprobe.InvalidOption, "connect"),
    ],
)
def test_startup_gate_rejects_bad_input_when_built(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    with pytest.raises(error, match=message):
        startup_gate(app, **kwargs)


async def test_startup_gate_passes_requests_and_the_startup_through(
    tcp_server: TcpServer,
) -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        if scope["type"] == "lifespan":
            seen.append((await receive())["type"])
            await send({"type": "lifespan.startup.complete"})

    gate = startup_gate(app, f"tcp://{tcp_server.address}", timeout=5, icmp=False)
    sent: list[Any] = []

    async def receive() -> dict[str, str]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        sent.append(message)

    await gate({"type": "lifespan"}, receive, send)
    await gate({"type": "http"}, receive, send)
    assert seen == ["lifespan", "lifespan.startup", "http"]
    assert sent == [{"type": "lifespan.startup.complete"}]
