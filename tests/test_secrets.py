"""The secrets sweep: a DSN password never reaches any output, against real servers.

A distinctive wrong password (with URL-special characters, so that its percent-encoded forms
differ from it) is sent to real MariaDB, PostgreSQL and Redis servers (nplab/dbservers.py),
which refuse it; the right password is used for a healthy case. Every output channel is
grepped for every form of both: the report (JSON, str, repr), Target and Options, every log
record at DEBUG of every logger (netprobe's and the drivers'), the real CLI's text, ``--json``
and stderr for ``diagnose``, ``wait`` and ``pool``, the health app's JSON, HTML and metrics,
``DependencyUnavailable``, and the error messages of bad input that contains the password.

Narrower checks elsewhere: tests/test_target.py (redaction rules), tests/test_cli.py (a
refused port), tests/test_health_asgi.py (closed ports), tests/test_options.py (headers).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import anyio
import httpx
import pytest
from health_support import uvicorn_server

import netprobe
from netprobe import DependencyUnavailable, InvalidOption, InvalidTarget
from netprobe.health import Dependency, health_app
from netprobe.options import make_options
from netprobe.target import parse_target
from nplab.dbservers import *  # noqa: F403 - session fixtures

pytestmark = pytest.mark.servers

#: The wrong password: distinctive, with every character a URL treats specially.
SECRET = "Zq7sEcReT-Np@/#?:%&+=ü x"
CORE = "Zq7sEcReT"  # any piece of the password that leaks contains... at least this, or below
TAIL = "Np@/#?:%&+=ü"
ENC = quote(SECRET, safe="")

NETPROBE = str(Path(sys.executable).parent / "netprobe")


def forms(secret: str) -> list[str]:
    """Every way a password could show: raw, percent-encoded, form-encoded, as HTTP basic auth
    or hex, and its distinctive pieces."""
    out = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    out.add(base64.b64encode(f"app:{secret}".encode()).decode())
    out.add(base64.b64encode(f":{secret}".encode()).decode())
    out.add(secret.encode().hex())
    if secret == SECRET:
        out |= {CORE, CORE.lower(), CORE.encode().hex(), TAIL, quote(TAIL, safe="")}
    return sorted(out)


def assert_clean(text: str, where: str) -> None:
    for secret in (SECRET, APP_PASSWORD):  # noqa: F405
        for form in forms(secret):
            assert form not in text, f"{form!r} (a form of a password) in {where}:\n{text}"


@dataclass(frozen=True)
class Case:
    name: str
    target: str
    expect: str | None  # the fault code (None: healthy)


@pytest.fixture(scope="module")
def cases(mariadb: Any, postgres: Any, redis_auth: Any) -> list[Case]:
    my = f"127.0.0.1:{mariadb.port}"
    pg = f"127.0.0.1:{postgres.port}"
    rd = f"127.0.0.1:{redis_auth.port}"
    good = APP_PASSWORD  # noqa: F405
    # Refused PostgreSQL logins in plain text (see test_db_servers.test_postgres_credentials).
    return [
        Case("mysql-refused", f"mysql://app:{ENC}@{my}/appdb", "db.auth_failed"),
        Case("mysql-healthy", f"mysql://app:{good}@{my}/appdb", None),
        Case("pg-refused", f"postgresql://app:{ENC}@{pg}/appdb?sslmode=disable", "db.auth_failed"),
        Case(
            "pg-refused-query",
            f"postgresql://app@{pg}/appdb?sslmode=disable&password={ENC}",
            "db.auth_failed",
        ),
        Case("pg-healthy", f"postgresql://app:{good}@{pg}/appdb", None),
        Case("redis-refused", f"redis://:{ENC}@{rd}/0", "db.auth_failed"),
        Case("redis-healthy", f"redis://:{good}@{rd}/0", None),
    ]


class _AllRecords(logging.Handler):
    """Every record of every logger, formatted with its arguments and traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def all_logs() -> Iterator[_AllRecords]:
    handler = _AllRecords()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _code(report: netprobe.Report) -> str | None:
    return report.fault.code if report.fault else None


def test_reports_targets_options_and_logs(cases: list[Case], all_logs: _AllRecords) -> None:
    headers = {"Authorization": f"Bearer {SECRET}"}
    options = make_options(icmp=False, timeout=8, headers=headers)
    for case in cases:
        report = anyio.run(lambda: netprobe.diagnose(case.target, options=options))  # noqa: B023
        # The sweep means something only if the password reached the server and was judged.
        assert _code(report) == case.expect, (case.name, report.fault)
        target = parse_target(case.target)
        assert target.password is not None
        for shown in (
            report.model_dump_json(),
            json.dumps(report.model_dump(mode="json")),
            str(report),
            repr(report),
            str(target),
            repr(target),
            target.url,
            target.model_dump_json(),
            repr(options),
            str(options),
            options.model_dump_json(),
        ):
            assert_clean(shown, case.name)
    assert any(line.startswith("netprobe") for line in all_logs.lines), "netprobe logs at DEBUG"
    assert_clean("\n".join(all_logs.lines), "the log records")


def test_dependency_unavailable_message(cases: list[Case]) -> None:
    refused = [c.target for c in cases if c.expect is not None]
    with pytest.raises(DependencyUnavailable) as info:
        anyio.run(lambda: netprobe.wait_until_ready(refused, timeout=3, icmp=False, read_timeout=2))
    assert "db.auth_failed" in str(info.value)
    assert_clean(str(info.value), "DependencyUnavailable")
    assert_clean("".join(r.model_dump_json() for r in info.value.reports), "its reports")


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [NETPROBE, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_cli_diagnose_wait_and_pool(cases: list[Case]) -> None:
    fast = ["--no-icmp", "--timeout", "8"]
    refused = [c.target for c in cases if c.expect is not None]
    healthy = [c.target for c in cases if c.expect is None]
    runs: list[tuple[str, ...]] = []
    for case in cases:
        runs.append(("diagnose", "--json", case.target, *fast))
        if case.expect is not None:
            runs.append(("diagnose", "-v", case.target, *fast))
            runs.append(("pool", "--size", "2", "-v", case.target, *fast))
    runs.append(("pool", "--size", "2", "--json", refused[0], *fast))
    # --timeout counts from the process's start: 3 parallel CLIs importing the drivers on a
    # loaded machine spent 3 s of a 3 s deadline before the first attempt.
    runs.append(("wait", *refused, "--timeout", "8", "--no-icmp", "--", "true"))
    runs.append(("wait", *healthy, "--timeout", "10", "--no-icmp", "--", "true"))
    # Real processes, a few at a time (each pays the interpreter's start-up).
    with ThreadPoolExecutor(max_workers=3) as pool:
        outs = list(pool.map(lambda run: _cli(*run), runs))
    for run, out in zip(runs, outs, strict=True):
        text = out.stdout + out.stderr
        assert "Traceback" not in text, (run, text)
        assert_clean(text, f"netprobe {' '.join(run[:3])}")
        if run[0] == "wait":
            assert out.returncode == (0 if run[1] in healthy else 1), (run, text)
        else:
            assert out.returncode in (0, 1), (run, text)
        expect = next((c.expect for c in cases if c.target in run), None)
        if run[0] == "diagnose" and expect is not None:
            assert expect in out.stdout, (run, text)
    assert any(
        "db.auth_failed" in o.stdout + o.stderr
        for r, o in zip(runs, outs, strict=True)
        if r[0] == "wait"
    )


def test_health_json_html_and_metrics(cases: list[Case]) -> None:
    deps = [Dependency(c.target, name=c.name) for c in cases]
    app = health_app(deps, icmp=False, budget=0.5, timeout=8)
    with uvicorn_server(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        deadline = time.monotonic() + 30
        while True:  # until every check has a result (the first requests see "pending")
            body = client.get("/ready").json()
            statuses = {name: check["status"] for name, check in body["checks"].items()}
            if "pending" not in statuses.values() or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert statuses == {c.name: "ok" if c.expect is None else "fail" for c in cases}
        pages = {
            "/ready": client.get("/ready").text,
            "/ready?format=html": client.get("/ready?format=html").text,
            "/ready (Accept: html)": client.get("/ready", headers={"accept": "text/html"}).text,
            "/metrics": client.get("/metrics").text,
            "/startup": client.get("/startup").text,
            "/live": client.get("/live").text,
        }
    assert "db.auth_failed" in pages["/ready"] and "<html" in pages["/ready?format=html"].lower()
    assert "netprobe" in pages["/metrics"]
    for path, text in pages.items():
        assert_clean(text, path)


# ------------------------------------------------------------------------- bad input

RAW = "Zq7sEcReT"  # a password typed without encoding, in malformed targets

BAD_TARGETS = [
    f"postgresql://app:{ENC}@db:99999/app",
    f"postgresql://app:{ENC}@db:port/app",
    f"postgresql://app:{ENC}@bad_host!/app",
    f"postgresql://app:{ENC}@db/app?sslmode=bogus",
    f"redis://:{ENC}@cache/notanumber",
    f"mongo://app:{ENC}@db/app",
    f"tcp://app:{ENC}@db:1",
    f"mysql://root:{ENC}@[::1/app",
    f"mysql://root@db:3306/app?password={ENC}&&",
    f"https://user:{ENC}@api:99999/health?token={ENC}",
    f"postgresql://app:{SECRET}@db/app",  # not encoded at all: '@', '/', '#', '?', space
    # Found by this sweep: each of these printed the password.
    f"app:{RAW}@db:5432",  # the scheme forgotten
    f"app:{ENC}@db:5432",
    f"app:{RAW}@[::1]:5432",
    f"//app:{RAW}@db:5432",
    f"postgresql:app:{RAW}@db/app",
    f"postgresql//app:{RAW}@db/app",
    f"http:/user:{RAW}@api/health",
    f"postgresql://app:{RAW}/x@db/app",  # an unencoded '/', '#' or '?' cut the password
    f"postgresql://app:{RAW}#x@db/app",
    f"postgresql://app:{RAW}?x@db/app",
    f"mysql://app:{RAW}@@db:3306:1/app",
    # Found by tests/test_fuzz.py: these parsed, the password as a database name or parameter.
    f"postgresql://app/x:{RAW}@db/app",
    f"postgresql://app?x=:{RAW}@db",
    f":{RAW}@dbhttp://",
]


@pytest.mark.parametrize("text", BAD_TARGETS)
def test_bad_targets_never_echo_the_password(text: str) -> None:
    with pytest.raises(InvalidTarget) as info:
        parse_target(text)
    message = str(info.value)
    assert "\n" not in message
    assert_clean(message, "the InvalidTarget message")
    assert RAW not in message


def test_a_cut_password_says_to_percent_encode() -> None:
    with pytest.raises(InvalidTarget, match="must be percent-encoded"):
        parse_target(f"postgresql://app:{RAW}/x@db/app")


def test_bad_options_never_echo_the_header_value() -> None:
    for headers in (
        {"Authorization": f"Bearer {SECRET}\r\n"},
        {"Authorization": f"Bearer {SECRET}", "Bad Name": f"{SECRET}"},
    ):
        with pytest.raises(InvalidOption) as info:
            make_options(headers=headers)
        assert_clean(str(info.value), "the InvalidOption message")


def test_cli_usage_errors_never_echo_the_password() -> None:
    for text in (f"postgresql://app:{RAW}/x@db/app", f"app:{RAW}@db:5432"):
        out = _cli("diagnose", text)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert_clean(out.stdout + out.stderr, f"netprobe diagnose {text!r}")
