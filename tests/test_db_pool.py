"""`netprobe pool`, probe_pool() argument checks and the pool example, against real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import netprobe
from nplab.dbservers import *  # noqa: F403 - session fixtures
from nplab.require import require_binary

#: The network tests of this module run under asyncio and under trio (conftest.py).
pytestmark = pytest.mark.backends

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netprobe.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_pool_cli_json_healthy(redis_plain: RedisServer) -> None:  # noqa: F405
    out = run("pool", f"redis://{redis_plain.address}", "--size", "4", "--json", "--no-icmp")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["opened"] == 4 and report["requested"] == 4 and report["ok"] is True
    assert report["fd_headroom"] > 0 and len(report["connections"]) == 4


def test_pool_cli_counts_refusals() -> None:
    require_binary("redis-server")
    with RedisServer("--maxclients", "2") as server:  # noqa: F405
        out = run("pool", f"redis://{server.address}", "--size", "3", "--no-icmp")
    assert out.returncode == 1, out.stderr
    assert "2 of 3 opened; 3 were refused by the server" in out.stdout
    assert "db.too_many_connections" in out.stdout


def test_pool_cli_usage_error() -> None:
    out = run("pool", "redis://127.0.0.1:6379", "--size", "0")
    assert out.returncode == 2 and "size" in out.stderr


@pytest.mark.anyio
async def test_probe_pool_rejects_bad_arguments_before_io() -> None:
    with pytest.raises(netprobe.InvalidOption):
        await netprobe.probe_pool("redis://127.0.0.1:1", size=0)
    with pytest.raises(netprobe.InvalidOption):
        await netprobe.probe_pool("redis://127.0.0.1:1", hold=-1)
    with pytest.raises(netprobe.InvalidTarget):
        await netprobe.probe_pool("https://example.test")


@pytest.mark.anyio
async def test_pool_cancellation_closes_everything(redis_plain: RedisServer) -> None:  # noqa: F405
    import anyio

    before = _clients(redis_plain)
    with anyio.move_on_after(0.3):
        await netprobe.probe_pool(f"redis://{redis_plain.address}", size=5, hold=30, icmp=False)
    await anyio.sleep(0.2)
    assert _clients(redis_plain) == before


def _clients(server: RedisServer) -> int:  # noqa: F405
    reply = server.command("INFO", "clients").decode()
    line = next(x for x in reply.splitlines() if x.startswith("connected_clients:"))
    return int(line.split(":")[1]) - 1  # minus this INFO connection


def test_pool_example(redis_plain: RedisServer) -> None:  # noqa: F405
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pool_probe.py"), f"redis://{redis_plain.address}",
         "3"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("3 of 3 opened and validated")
