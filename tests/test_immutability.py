"""A report cannot be changed after it was built: frozen models, tuples, read-only maps, all
the way down; ``ok`` is derived from the fault, not stored. Checked on real reports from real
peers on loopback (TCP, HTTPS with a certificate chain, an HTTP error with headers, a pool).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import netprobe
from netprobe._frozen import FrozenMap
from netprobe.report import Evidence, Fault, Report, ReportWarning
from netprobe.testing import CertBook, L7Server, TcpServer, closed_port
from nplab.dbservers import APP_PASSWORD, MariaDB, Postgres, mariadb, postgres  # noqa: F401

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {"icmp": False, "timeout": 5.0, "read_timeout": 1.0}


@pytest.fixture(scope="module")
def pki() -> Iterator[CertBook]:
    with CertBook() as book:
        yield book


@pytest.fixture(scope="module")
def https(pki: CertBook) -> Iterator[L7Server]:
    with L7Server("tls", ssl_context=pki.server_context("valid")) as server:
        yield server


def mutable_parts(value: Any, path: str = "report") -> Iterator[str]:
    """Every list, dict, set or bytearray reachable from ``value`` (through model fields)."""
    if isinstance(value, list | dict | set | bytearray):
        yield f"{path}: {type(value).__name__}"
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from mutable_parts(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from mutable_parts(item, f"{path}[{i}]")
    elif isinstance(value, FrozenMap | dict):
        for key, item in value.items():
            yield from mutable_parts(item, f"{path}[{key!r}]")


async def test_real_reports_hold_nothing_mutable(
    tcp_server: TcpServer, https: L7Server, pki: CertBook
) -> None:
    reports = [
        await netprobe.diagnose(f"tcp://{tcp_server.address}", **FAST),
        await netprobe.diagnose(f"127.0.0.1:{closed_port()}", **FAST),
        await netprobe.diagnose(f"https://localhost:{https.port}/health", ca_file=pki.ca_file),
        await netprobe.diagnose(f"https://localhost:{https.port}/busy", ca_file=pki.ca_file),
        await netprobe.diagnose(f"https://localhost:{https.port}/health", **FAST),  # untrusted
    ]
    assert [r.ok for r in reports] == [True, False, True, False, False]
    for report in reports:
        assert list(mutable_parts(report)) == [], report.target.url
    pool = await netprobe.probe_pool(f"tcp://{tcp_server.address}", size=3, **FAST)
    assert pool.ok and list(mutable_parts(pool)) == []


async def test_database_reports_hold_nothing_mutable(
    postgres: Postgres,  # noqa: F811
    mariadb: MariaDB,  # noqa: F811
) -> None:
    """Greetings (notes, PostgreSQL's TLS inside the protocol, error fields) and logins
    (merged with their greeting)."""
    reports = [
        await netprobe.diagnose(f"postgresql://127.0.0.1:{postgres.port}/appdb", **FAST),
        await netprobe.diagnose(f"postgresql://[::1]:{postgres.port}/appdb", **FAST),
        await netprobe.diagnose(f"mysql://127.0.0.1:{mariadb.port}", **FAST),
        await netprobe.diagnose(f"mysql://app:{APP_PASSWORD}@127.0.0.1:{mariadb.port}/appdb"),
    ]
    assert [r.ok for r in reports] == [True, False, True, True], [r.fault for r in reports]
    for report in reports:
        assert list(mutable_parts(report)) == [], report.target.url


async def test_mutation_fails_at_every_level(https: L7Server, pki: CertBook) -> None:
    report = await netprobe.diagnose(f"https://localhost:{https.port}/busy", ca_file=pki.ca_file)
    assert report.fault is not None and report.fault.evidence and report.steps
    with pytest.raises(AttributeError):
        report.warnings.append(ReportWarning(code="x", message="y"))  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        report.steps[0].attempts.append(None)  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        report.fault.evidence[0].data["x"] = 1  # type: ignore[index]
    with pytest.raises(ValidationError, match="frozen"):
        report.fault = None  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        report.ok = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        report.target.params["sslmode"] = "disable"  # type: ignore[index]


def test_ok_is_derived_from_the_fault() -> None:
    target = netprobe.parse_target("db:5432")
    fault = Fault(layer="l4", code="l4.refused", summary="refused")
    common: dict[str, Any] = {"target": target, "started_at": "2026-01-01T00:00:00Z"}
    healthy = Report(**common, netprobe_version="0")
    faulty = Report(**common, netprobe_version="0", fault=fault)
    assert healthy.ok and not faulty.ok
    # The JSON form still carries "ok", and reads back the same.
    data = json.loads(faulty.model_dump_json())
    assert data["ok"] is False
    assert Report.model_validate(data).ok is False
    # A stored "ok" that contradicts the fault cannot come back in.
    assert Report.model_validate({**data, "ok": True}).ok is False


def test_read_only_map_reads_like_a_dict() -> None:
    ev = Evidence(step="tcp", observation="x", data={"a": 1})
    assert ev.data == {"a": 1} and dict(ev.data) == {"a": 1} and ev.data.get("b") is None
    assert json.loads(ev.model_dump_json())["data"] == {"a": 1}
    assert ev.replace(data={"b": 2}).data == {"b": 2} and isinstance(ev.data, FrozenMap)
