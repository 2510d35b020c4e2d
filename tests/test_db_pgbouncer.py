"""A real PgBouncer (Debian's) in front of a real PostgreSQL, or of a server that is down
(issue 11): the pooler is named, its own errors are mapped, and a login it holds because its
server is down is ``db.upstream_unavailable``, not a stuck PostgreSQL.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

import netprobe
from netprobe.protocols import postgres as pg
from netprobe.steps import ApplicationStep, DatabaseResult
from netprobe.testing import closed_port
from nplab.dbservers import APP_PASSWORD, Postgres, postgres  # noqa: F401 - session fixture
from nplab.realservers.pgbouncer import PgBouncer

pytestmark = [pytest.mark.anyio, pytest.mark.backends, pytest.mark.servers]


def db_of(report: netprobe.Report) -> DatabaseResult:
    app = report.step(ApplicationStep)
    assert app is not None and app.database is not None, report.model_dump_json(indent=1)
    return app.database


async def diag(target: str, **kw: Any) -> netprobe.Report:
    return await netprobe.diagnose(target, icmp=False, timeout=6, read_timeout=1.5, **kw)


def bouncer_down(auth_type: str) -> PgBouncer:
    """A PgBouncer whose PostgreSQL is down (nothing listens on its port)."""
    return PgBouncer(
        upstream=("127.0.0.1", closed_port()),
        users={"app": APP_PASSWORD},
        settings={"auth_type": auth_type},
    )


@pytest.fixture(scope="module")
def scram_down() -> Iterator[PgBouncer]:
    with bouncer_down("scram-sha-256") as b:
        yield b


@pytest.fixture(scope="module")
def trust_down() -> Iterator[PgBouncer]:
    with bouncer_down("trust") as b:
        yield b


@pytest.mark.parametrize("kind", ["scram", "trust"])
async def test_login_held_while_the_server_is_down_is_upstream_unavailable(
    kind: str, request: pytest.FixtureRequest
) -> None:
    bouncer: PgBouncer = request.getfixturevalue(f"{kind}_down")
    report = await diag(f"postgresql://app:{APP_PASSWORD}@127.0.0.1:{bouncer.port}/appdb")
    assert report.fault is not None and report.fault.code == "db.upstream_unavailable", report.fault
    assert report.fault.layer == "l7"
    assert "PgBouncer" in report.fault.summary and "PostgreSQL server" in report.fault.summary
    db = db_of(report)
    assert db.server == "pgbouncer" and db.outcome == "timeout" and db.phase == "login"
    assert any("held the login" in n for n in db.notes), db.notes
    assert APP_PASSWORD not in report.model_dump_json()


async def test_trust_greeting_names_pgbouncer_and_its_unchecked_server(
    trust_down: PgBouncer,
) -> None:
    # The probe user is not in the auth_file: PgBouncer itself answers at once (08P01).
    report = await diag(f"postgresql://127.0.0.1:{trust_down.port}/appdb")
    assert report.ok, report.fault  # PgBouncer is up and answered; its server not reached
    db = db_of(report)
    assert db.server == "pgbouncer" and db.sqlstate == "08P01"
    assert any("PostgreSQL server was not reached" in n for n in db.notes), db.notes


async def test_max_client_conn_is_too_many_connections_naming_pgbouncer(
    postgres: Postgres,  # noqa: F811
) -> None:
    with (
        PgBouncer(
            upstream=("127.0.0.1", postgres.port), users={"app": APP_PASSWORD}, max_client_conn=1
        ) as bouncer,
        socket.create_connection(("127.0.0.1", bouncer.port), timeout=3) as first,
    ):
        first.sendall(pg.build_startup("app", "appdb"))
        assert first.recv(4096)[:1] == b"R"
        report = await diag(f"postgresql://127.0.0.1:{bouncer.port}/appdb")
    assert report.fault is not None and report.fault.code == "db.too_many_connections"
    assert "PgBouncer" in report.fault.summary and "max_client_conn" in report.fault.summary
    assert "PostgreSQL" not in report.fault.summary


async def test_pgbouncer_wrong_password_and_unknown_database(postgres: Postgres) -> None:  # noqa: F811
    with PgBouncer(upstream=("127.0.0.1", postgres.port), users={"app": APP_PASSWORD}) as b:
        bad = await diag(f"postgresql://app:wrong@127.0.0.1:{b.port}/appdb?sslmode=disable")
        nodb = await diag(f"postgresql://127.0.0.1:{b.port}/nodb")
        good = await diag(f"postgresql://app:{APP_PASSWORD}@127.0.0.1:{b.port}/appdb")
    assert bad.fault is not None and bad.fault.code == "db.auth_failed", bad.fault
    assert "PgBouncer" in bad.fault.summary
    # trust is not set: an unknown database is refused after the SCRAM exchange only, so the
    # credential-less greeting stops at the authentication request (healthy, as PostgreSQL).
    assert nodb.ok or (nodb.fault is not None and nodb.fault.code == "db.access_denied")
    assert good.ok, good.fault
    assert db_of(good).outcome == "validated" and db_of(good).logged_in


async def test_postgresql_itself_is_not_taken_for_a_pooler(postgres: Postgres) -> None:  # noqa: F811
    from netprobe.probes._context import ProbeContext
    from netprobe.probes.postgres import identify_pooler

    ctx = ProbeContext(
        target=netprobe.parse_target(f"postgresql://127.0.0.1:{postgres.port}"),
        options=netprobe.Options(read_timeout=2, timeout=5),
    )
    assert await identify_pooler(ctx, "127.0.0.1", postgres.port) is None
    with bouncer_down("trust") as b:
        assert await identify_pooler(ctx, "127.0.0.1", b.port) == "pgbouncer"
