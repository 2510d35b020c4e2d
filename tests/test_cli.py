"""The command line, run as a real subprocess: exit codes, JSON, one-line usage errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from netprobe.testing import DnsServer, TcpServer

SECRET = "s3cr3t-Pa55"


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netprobe.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_healthy_exits_0(tcp_server: TcpServer) -> None:
    out = run("diagnose", f"tcp://{tcp_server.address}", "--no-icmp")
    assert out.returncode == 0, out.stderr
    assert "HEALTHY" in out.stdout
    assert "tcp" in out.stdout


def test_refused_exits_1_with_ladder_and_hints() -> None:
    out = run("diagnose", "127.0.0.1:1")
    assert out.returncode == 1
    assert "l4.refused" in out.stdout
    assert "RST" in out.stdout
    assert "hint:" in out.stdout


def test_json_output_is_the_report() -> None:
    out = run("diagnose", "127.0.0.1:1", "--json")
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert report["ok"] is False
    assert report["fault"]["code"] == "l4.refused"
    assert report["fault"]["layer"] == "l4"


def test_nxdomain_via_nameserver_option(dns_server: DnsServer) -> None:
    out = run("diagnose", "nope.netprobe.test:5432", "--nameserver", dns_server.address, "--json")
    assert out.returncode == 1
    assert json.loads(out.stdout)["fault"]["code"] == "dns.nxdomain"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diagnose", "db:99999"], "port 99999 is out of range in 'db:99999'"),
        (["diagnose", "mongo://db"], "unknown scheme 'mongo'"),
        (["diagnose", "db"], "missing port in 'db'"),
        (["diagnose", "127.0.0.1:1", "--connect-timeout", "-1"], "--connect-timeout"),
        (["diagnose", "127.0.0.1:1", "--nameserver", "dns.example"], "name server"),
        (["diagnose", "127.0.0.1:1", "--timeout", "abc"], "abc"),
        (["diagnose"], "missing TARGET"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    out = run(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert len([line for line in out.stderr.splitlines() if line.strip()]) == 1


def test_secret_never_printed() -> None:
    target = f"postgresql://app:{SECRET}@127.0.0.1:1/app"
    for extra in ([], ["--json"], ["--verbose"]):
        out = run("diagnose", target, *extra)
        assert SECRET not in out.stdout + out.stderr
        assert "***" in out.stdout
    out = run("diagnose", f"postgresql://app:{SECRET}@db:99999/app")
    assert out.returncode == 2 and SECRET not in out.stdout + out.stderr


def test_demo_shows_every_case() -> None:
    out = run("demo", timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "l4.refused" in out.stdout
    assert "dns.nxdomain" in out.stdout
    assert "HEALTHY" in out.stdout


def test_main_called_in_a_running_program_counts_its_timeout_from_the_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Run as the process, --timeout counts from the process's start (its imports are spent);
    called in a program that has run for a while (a test suite, nplab's catalog_cli), from
    the call, and the origin does not outlive the command: a later diagnose() of the same
    program has its own whole deadline."""
    import time

    import anyio

    import netprobe
    from netprobe._cliutil import process_age
    from netprobe._hooks import DEADLINE_ORIGIN
    from netprobe.cli import main
    from netprobe.testing import L7Server

    if process_age() < 3:
        time.sleep(3 - process_age())  # older than the --timeout below
    with L7Server("http") as web:
        url = f"http://127.0.0.1:{web.port}/health"
        with pytest.raises(SystemExit) as exited:
            main(["diagnose", url, "--timeout", "2", "--no-icmp", "--json"])
        report = json.loads(capsys.readouterr().out)
        assert exited.value.code == 0, report.get("fault")
        assert report["deadline"] is None
        assert DEADLINE_ORIGIN.get() is None
        later = anyio.run(lambda: netprobe.diagnose(url, icmp=False, timeout=2))
        assert later.ok and later.deadline is None
