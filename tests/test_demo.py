"""`netprobe demo`: every case runs, or the demo says which it skipped and why."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from netprobe.demo import DemoCase, run_demo
from netprobe.demo.cases import CASES
from netprobe.demo.fixtures import FIXTURES
from netprobe.report import FAULT_CODES
from nplab.require import require_binary


def demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netprobe.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_cases_are_data_naming_known_fixtures() -> None:
    assert len(CASES) == 20
    assert len({c.title for c in CASES}) == len(CASES), "titles are unique"
    for case in CASES:
        assert case.fixtures, case.title
        assert case.fixtures <= FIXTURES.keys(), case.title
        assert case.expect is None or case.expect in FAULT_CODES, case.title


def test_every_case_runs_and_shows_its_fault() -> None:
    require_binary("redis-server")
    out = demo("--json")
    assert out.returncode == 0, out.stderr
    reports = json.loads(out.stdout)
    assert len(reports) == len(CASES), "no case silently left out"
    codes = [r["fault"]["code"] if r["fault"] else None for r in reports]
    assert codes == [c.expect for c in CASES]
    assert out.stderr == ""


def test_without_redis_server_the_demo_says_what_it_skipped() -> None:
    env = {**os.environ, "PATH": "/nonexistent"}  # no redis-server on PATH
    out = demo(env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stderr.splitlines() == [
        "netprobe demo: skipping 2 of 20 cases, redis-server is not installed "
        "(Debian/Ubuntu: apt install redis-server): a real redis-server (loopback); "
        "a real redis-server with maxclients 1, its slot taken"
    ]
    assert out.stdout.count("\n# ") == 18


@pytest.mark.anyio
async def test_run_demo_runs_the_cases_it_is_given() -> None:
    seen: list[str] = []
    cases = [
        DemoCase("closed", "127.0.0.1:{closed}", "l4.refused", {"icmp": False}),
        DemoCase("dns", "x.demo.test:1", "dns.nxdomain", {"nameservers": ["{dns.address}"]}),
    ]
    results = await run_demo(lambda case, _: seen.append(case.title), cases=cases)
    assert [r.fault.code if r.fault else None for _, r in results] == ["l4.refused", "dns.nxdomain"]
    assert seen == ["closed", "dns"]
