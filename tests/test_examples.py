"""The examples in examples/ are real programs: run each against real loopback peers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from netprobe.testing import TcpServer, closed_port

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=60
    )


def test_diagnose_one_healthy(tcp_server: TcpServer) -> None:
    out = run_example("diagnose_one.py", f"tcp://{tcp_server.address}")
    assert out.returncode == 0, out.stderr
    assert "healthy" in out.stdout
    report = json.loads(out.stdout[out.stdout.index("{") :])
    assert report["ok"] is True


def test_diagnose_one_fault() -> None:
    out = run_example("diagnose_one.py", f"127.0.0.1:{closed_port()}")
    assert out.returncode == 1
    assert out.stdout.startswith("l4 l4.refused")


def test_diagnose_many(tcp_server: TcpServer) -> None:
    closed = closed_port()
    out = run_example("diagnose_many.py", f"tcp://{tcp_server.address}", f"127.0.0.1:{closed}")
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].endswith("healthy")
    assert "l4.refused" in lines[1]
