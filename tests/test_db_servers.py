"""Database probes against real MariaDB, PostgreSQL and Redis servers started by the tests.

Every db.* fault code is produced here by a real server in the state that causes it.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from dbservers import *  # noqa: F403 - session fixtures

import netprobe
from netprobe.steps import ApplicationStep
from netprobe.steps.database import DatabaseResult

pytestmark = [pytest.mark.anyio, pytest.mark.servers]


def db_of(report: netprobe.Report) -> DatabaseResult:
    app = report.step(ApplicationStep)
    assert app is not None and app.database is not None, report.model_dump_json(indent=1)
    return app.database


def code(report: netprobe.Report) -> str | None:
    return report.fault.code if report.fault else None


async def diag(target: str, **kw: Any) -> netprobe.Report:
    return await netprobe.diagnose(target, icmp=False, timeout=5, read_timeout=2, **kw)


# ------------------------------------------------------------------------------ MariaDB


async def test_mariadb_greeting_is_healthy(mariadb: MariaDB) -> None:  # noqa: F405
    report = await diag(f"mysql://127.0.0.1:{mariadb.port}")
    assert report.ok, report.fault
    db = db_of(report)
    assert db.server == "mariadb" and db.version and db.version.startswith("10.")
    assert not db.version.startswith("5.5.5-")
    assert db.connection_id and db.auth_plugin and db.closed_cleanly
    assert any("1045" in n for n in db.notes)
