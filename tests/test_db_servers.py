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

import netprobe
from netprobe.steps import ApplicationStep, DatabaseResult
from nplab.dbservers import *  # noqa: F403 - session fixtures
from nplab.require import require_binary

pytestmark = [pytest.mark.anyio, pytest.mark.backends, pytest.mark.servers]


def db_of(report: netprobe.Report) -> DatabaseResult:
    app = report.step(ApplicationStep)
    assert app is not None and app.database is not None, report.model_dump_json(indent=1)
    return app.database


def fault_of(report: netprobe.Report) -> netprobe.Fault:
    assert report.fault is not None, report.model_dump_json(indent=1)
    return report.fault


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


@asynccontextmanager
async def mysql_sessions(server: MariaDB, n: int) -> AsyncIterator[list[Any]]:  # noqa: F405
    import asyncmy

    conns: list[Any] = []
    try:
        for _ in range(n):
            conns.append(
                await asyncmy.connect(
                    host="127.0.0.1", port=server.port, user="app",
                    password=APP_PASSWORD, database="appdb",  # noqa: F405
                )
            )  # fmt: skip
        yield conns
    finally:
        for c in conns:
            await c.ensure_closed()


def raw_greeting_socket(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.recv(4096)
    return s


def finish_politely(s: socket.socket) -> None:
    from netprobe.protocols import mysql as my

    with s:
        s.sendall(my.build_handshake_response("netprobe_probe", plugin="mysql_native_password"))
        s.recv(4096)


async def test_mariadb_host_not_allowed_is_access_denied(mariadb: MariaDB) -> None:  # noqa: F405
    report = await diag(f"mysql://[::1]:{mariadb.port}")
    assert code(report) == "db.access_denied", report.fault
    assert db_of(report).error_code == "1130"


@pytest.mark.asyncio_only("fills MariaDB with asyncmy sessions (asyncio-only)")
async def test_mariadb_too_many_connections(mariadb: MariaDB) -> None:  # noqa: F405
    mariadb.sql("SET GLOBAL max_connections = 10")  # MariaDB's minimum
    extra: socket.socket | None = None
    try:
        async with mysql_sessions(mariadb, 10):
            # The reserved extra slot (for SUPER) answers with a greeting: take it too.
            extra = raw_greeting_socket(mariadb.port)
            report = await diag(f"mysql://127.0.0.1:{mariadb.port}")
            assert code(report) == "db.too_many_connections", report.fault
            assert db_of(report).error_code == "1040"
            assert (
                "1040" in fault_of(report).summary and "max_connections" in fault_of(report).summary
            )
    finally:
        if extra is not None:
            finish_politely(extra)
        mariadb.sql("SET GLOBAL max_connections = 20")


@pytest.mark.asyncio_only("fills MariaDB with asyncmy sessions (asyncio-only)")
async def test_pool_against_filled_mariadb(mariadb: MariaDB) -> None:  # noqa: F405
    mariadb.sql("SET GLOBAL max_connections = 10")  # MariaDB's minimum
    try:
        async with mysql_sessions(mariadb, 10):
            pool = await netprobe.probe_pool(
                f"mysql://127.0.0.1:{mariadb.port}", size=4, icmp=False, read_timeout=2
            )
    finally:
        mariadb.sql("SET GLOBAL max_connections = 20")
    # MariaDB keeps one extra slot for administrators: at most one greeting, the rest 1040.
    assert pool.opened <= 1
    assert pool.fault is not None and pool.fault.code == "db.too_many_connections"
    refused = [c for c in pool.connections if c.fault_code == "db.too_many_connections"]
    assert len(refused) == 4 - pool.opened
    assert "1040" in pool.summary and f"{pool.opened} of 4 opened" in pool.summary


@pytest.mark.asyncio_only("fills MariaDB with asyncmy sessions (asyncio-only)")
async def test_pool_fills_partially_like_the_issue_example(mariadb: MariaDB) -> None:  # noqa: F405
    mariadb.sql("SET GLOBAL max_connections = 10")
    try:
        async with mysql_sessions(mariadb, 5):
            pool = await netprobe.probe_pool(
                f"mysql://127.0.0.1:{mariadb.port}", size=10, hold=0.3, icmp=False, read_timeout=2
            )
    finally:
        mariadb.sql("SET GLOBAL max_connections = 20")
    # Unauthenticated sockets count: 5 free + the extra slot get a greeting, 4 get 1040.
    assert pool.opened == 6, pool.summary
    assert pool.summary.startswith("6 of 10 opened;"), pool.summary
    assert "1040 Too many connections (max_connections reached)" in pool.summary
    assert pool.held_ok == 6 and pool.hold_s == 0.3
    assert all(c.database and c.database.closed_cleanly for c in pool.connections)


_NS_CODE = """
import anyio, json, socket, sys
import netprobe
from netprobe.protocols import mysql as my

HOST, PORT, HANGUPS, PROBES, POOL = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6])

async def main():
    for _ in range(HANGUPS):  # what a naive health check does: greeting, then hang up
        with socket.create_connection((HOST, PORT), timeout=3) as s:
            s.recv(4096)
    codes = []
    for _ in range(PROBES):
        r = await netprobe.diagnose(f"mysql://{HOST}:{PORT}", icmp=False, timeout=5)
        codes.append(r.fault.code if r.fault else None)
    pool = None
    if POOL:
        p = await netprobe.probe_pool(f"mysql://{HOST}:{PORT}", size=POOL, icmp=False)
        pool = [p.opened, p.fault.code if p.fault else None]
    r = await netprobe.diagnose(f"mysql://{HOST}:{PORT}", icmp=False, timeout=5)
    print(json.dumps({"codes": codes, "pool": pool, "last": r.fault.code if r.fault else None,
                      "last_error": r.steps[-1].database.error_code}))

anyio.run(main)
"""


def run_in_ns(lab: Any, hangups: int, probes: int, pool: int) -> dict[str, Any]:
    import json

    ns, server = lab
    code_ = _NS_CODE.replace(
        "sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6])",
        f"{NS_SERVER_IP!r}, {server.port}, {hangups}, {probes}, {pool}",  # noqa: F405
    )
    result: dict[str, Any] = json.loads(ns.run_python(code_))
    return result


def test_hangups_after_greeting_get_the_host_blocked(blocking_lab: Any) -> None:
    # The measured finding: a client that reads the greeting and hangs up is a connection
    # error; max_connect_errors (3 here) of them and MariaDB blocks the host with 1129.
    _, server = blocking_lab
    server.sql("FLUSH HOSTS")
    try:
        out = run_in_ns(blocking_lab, hangups=4, probes=0, pool=0)
    finally:
        server.sql("FLUSH HOSTS")
    assert out["last"] == "db.host_blocked", out
    assert out["last_error"] == "1129"


def test_repeated_probes_never_get_the_host_blocked_from_outside(blocking_lab: Any) -> None:
    # netprobe finishes every handshake (1045 for the probe user): with max_connect_errors=3,
    # 40 probes and a pool of 5 leave the host unblocked.
    _, server = blocking_lab
    server.sql("FLUSH HOSTS")
    try:
        out = run_in_ns(blocking_lab, hangups=0, probes=40, pool=5)
    finally:
        server.sql("FLUSH HOSTS")
    assert out["codes"] == [None] * 40, out
    assert out["pool"] == [5, None], out
    assert out["last"] is None, out


async def test_stopped_mariadb_is_a_greeting_timeout(mariadb: MariaDB) -> None:  # noqa: F405
    with stopped(mariadb.pid):  # noqa: F405
        report = await netprobe.diagnose(
            f"mysql://127.0.0.1:{mariadb.port}", icmp=False, read_timeout=0.3, timeout=3
        )
    assert code(report) == "db.greeting_timeout", report.fault
    assert fault_of(report).layer == "l7"


async def test_mariadb_credentials(mariadb: MariaDB) -> None:  # noqa: F405
    base = f"127.0.0.1:{mariadb.port}"
    good = await diag(f"mysql://app:{APP_PASSWORD}@{base}/appdb")  # noqa: F405
    assert good.ok, good.fault
    db = db_of(good)
    assert db.outcome == "validated" and db.validation == "SELECT 1" and db.version
    bad = await diag(f"mysql://app:wrong-password@{base}/appdb")
    assert code(bad) == "db.auth_failed", bad.fault
    # Field names say what they mean (issue 11): 1045 is a login tried, not a login made.
    assert db.login_attempted and db.logged_in
    assert db_of(bad).login_attempted and not db_of(bad).logged_in
    assert '"logged_in":false' in bad.model_dump_json(), bad.model_dump_json()
    assert '"authenticated"' not in bad.model_dump_json()
    denied = await diag(f"mysql://app:{APP_PASSWORD}@{base}/secretdb")  # noqa: F405
    assert code(denied) == "db.access_denied" and "database" in fault_of(denied).summary
    for report in (good, bad, denied):
        text = report.model_dump_json()
        assert APP_PASSWORD not in text and "wrong-password" not in text  # noqa: F405


async def test_mismatch_postgres_and_redis_probes_at_mariadb(mariadb: MariaDB) -> None:  # noqa: F405
    for scheme in ("postgresql", "redis"):
        report = await diag(f"{scheme}://127.0.0.1:{mariadb.port}")
        assert code(report) == "db.protocol_mismatch", report.fault
        assert "MySQL" in fault_of(report).summary


async def test_mysql_probe_at_a_postgres_port_points_at_the_port(postgres: Postgres) -> None:  # noqa: F405
    # PostgreSQL waits for its client: to a MySQL probe it is silent like a stuck server, but
    # it answers a client-first opening (an SSLRequest) on a fresh connection (issue 11).
    report = await netprobe.diagnose(
        f"mysql://127.0.0.1:{postgres.port}", icmp=False, read_timeout=0.3, timeout=3
    )
    assert code(report) == "db.protocol_mismatch", report.fault
    assert "PostgreSQL" in fault_of(report).summary, fault_of(report)
    assert any("port belongs to" in h for h in fault_of(report).hints), fault_of(report)


# ------------------------------------------------------------------------------ PostgreSQL


async def test_postgres_greeting_is_healthy(postgres: Postgres) -> None:  # noqa: F405
    report = await diag(f"postgresql://127.0.0.1:{postgres.port}")
    assert report.ok, report.fault
    db = db_of(report)
    assert db.tls_supported is True and db.auth_plugin == "sasl"
    assert db.closed_cleanly


async def test_postgres_no_hba_entry_is_access_denied(postgres: Postgres) -> None:  # noqa: F405
    report = await diag(f"postgresql://[::1]:{postgres.port}/postgres?sslmode=disable")
    assert code(report) == "db.access_denied", report.fault
    db = db_of(report)
    assert db.sqlstate == "28000" and db.error_fields.get("routine") == "ClientAuthentication"


async def test_postgres_credentials(postgres: Postgres) -> None:  # noqa: F405
    base = f"127.0.0.1:{postgres.port}"
    good = await diag(f"postgresql://app:{APP_PASSWORD}@{base}/appdb")  # noqa: F405
    assert good.ok, good.fault
    db = db_of(good)
    assert db.outcome == "validated" and db.version and db.version.startswith("15")
    # The refused logins run in plain text: when the server ends a TLS session that asyncpg
    # opened (sslmode=prefer) with an error, asyncio may report the socket transport beneath
    # the TLS one as unclosed once it is collected (a known false ResourceWarning of asyncio's
    # SSL transports on peer close), which this suite turns into an error in whatever test
    # happens to run the collector. TLS logins are covered in test_db_tls.py.
    bad = await diag(f"postgresql://app:nope@{base}/appdb?sslmode=disable")
    assert code(bad) == "db.auth_failed", bad.fault
    assert db.logged_in and db_of(bad).login_attempted and not db_of(bad).logged_in
    locked = await diag(f"postgresql://app:{APP_PASSWORD}@{base}/lockeddb?sslmode=disable")  # noqa: F405
    assert code(locked) == "db.access_denied", locked.fault
    for report in (good, bad, locked):
        assert APP_PASSWORD not in report.model_dump_json()  # noqa: F405


async def _reload_hba(server: Postgres, text: str, probe_code: str | None) -> None:  # noqa: F405
    """Write pg_hba.conf, reload, and wait until a credential-less probe gets ``probe_code``."""
    (server.dir / "data" / "pg_hba.conf").write_text(text)
    server.psql("SELECT pg_reload_conf()")
    for _ in range(50):  # the postmaster reloads on SIGHUP, asynchronously
        probe = await diag(f"postgresql://127.0.0.1:{server.port}/appdb?sslmode=disable")
        if code(probe) == probe_code:
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"pg_hba.conf not reloaded: {code(probe)}")


async def test_postgres_greeting_names_the_dsn_user(postgres: Postgres) -> None:  # noqa: F405
    # pg_hba.conf entries are often per role. A greeting for the probe user was refused with
    # 28000 (db.access_denied) although the application's own role logs in fine.
    original = (postgres.dir / "data" / "pg_hba.conf").read_text()
    await _reload_hba(
        postgres, "local all all trust\nhost all app 127.0.0.1/32 scram-sha-256\n",
        "db.access_denied",
    )  # fmt: skip
    try:
        base = f"127.0.0.1:{postgres.port}/appdb?sslmode=disable"
        report = await diag(f"postgresql://app:{APP_PASSWORD}@{base}")  # noqa: F405
        assert report.ok, report.fault
        assert db_of(report).outcome == "validated"
        wrong = await diag(f"postgresql://app:nope@{base}")
        assert code(wrong) == "db.auth_failed", wrong.fault
        other = await diag(f"postgresql://reporting:{APP_PASSWORD}@{base}")  # noqa: F405
        assert code(other) == "db.access_denied", other.fault
        assert 'user "reporting"' in fault_of(other).summary
    finally:
        await _reload_hba(postgres, original, None)


@pytest.mark.asyncio_only("fills PostgreSQL with asyncpg sessions (asyncio-only)")
async def test_postgres_too_many_connections(postgres: Postgres) -> None:  # noqa: F405
    import asyncpg

    conns = []
    try:
        for _ in range(postgres.max_connections):
            conns.append(
                await asyncpg.connect(
                    host="127.0.0.1", port=postgres.port, user="app",
                    password=APP_PASSWORD, database="appdb",  # noqa: F405
                )
            )  # fmt: skip
        report = await diag(f"postgresql://127.0.0.1:{postgres.port}")
        assert code(report) == "db.too_many_connections", report.fault
        assert db_of(report).sqlstate == "53300"
        pool = await netprobe.probe_pool(
            # Plain text for the same reason as in test_postgres_credentials.
            f"postgresql://app:{APP_PASSWORD}@127.0.0.1:{postgres.port}/appdb?sslmode=disable",  # noqa: F405
            size=2, icmp=False, read_timeout=2,
        )  # fmt: skip
        assert pool.opened == 0 and pool.most_common_fault == "db.too_many_connections"
    finally:
        for c in conns:
            await c.close()


async def test_postgres_pool_with_credentials_holds_real_sessions(postgres: Postgres) -> None:  # noqa: F405
    pool = await netprobe.probe_pool(
        f"postgresql://app:{APP_PASSWORD}@127.0.0.1:{postgres.port}/appdb",  # noqa: F405
        size=3, hold=0.2, icmp=False,
    )  # fmt: skip
    assert pool.ok and pool.opened == 3 and pool.held_ok == 3, pool.summary
    assert pool.with_credentials
    assert APP_PASSWORD not in pool.model_dump_json()  # noqa: F405


async def test_postgres_in_recovery_is_not_ready(postgres_standby: Postgres) -> None:  # noqa: F405
    report = await diag(f"postgresql://127.0.0.1:{postgres_standby.port}")
    assert code(report) == "db.not_ready", report.fault
    assert db_of(report).sqlstate == "57P03"


# ------------------------------------------------------------------------------ Redis


async def test_redis_is_healthy_with_version(redis_plain: RedisServer) -> None:  # noqa: F405
    report = await diag(f"redis://{redis_plain.address}")
    assert report.ok, report.fault
    db = db_of(report)
    assert db.version and db.version.startswith("7") and db.closed_cleanly


async def test_redis_auth(redis_auth: RedisServer) -> None:  # noqa: F405
    noauth = await diag(f"redis://{redis_auth.address}")
    assert noauth.ok and db_of(noauth).error_code == "NOAUTH"
    good = await diag(f"redis://:{APP_PASSWORD}@{redis_auth.address}")  # noqa: F405
    assert good.ok and db_of(good).outcome == "validated", good.fault
    bad = await diag(f"redis://:wrong@{redis_auth.address}")
    assert code(bad) == "db.auth_failed", bad.fault
    assert db_of(good).logged_in and not db_of(noauth).login_attempted
    assert db_of(bad).login_attempted and not db_of(bad).logged_in
    limited = await diag(f"redis://limited:{APP_PASSWORD}@{redis_auth.address}")  # noqa: F405
    assert code(limited) == "db.access_denied", limited.fault
    for report in (good, bad, limited):
        assert APP_PASSWORD not in report.model_dump_json()  # noqa: F405


async def test_redis_replica_without_master_is_not_ready(redis_replica: RedisServer) -> None:  # noqa: F405
    report = await diag(f"redis://{redis_replica.address}")
    assert code(report) == "db.not_ready", report.fault
    assert db_of(report).error_code == "MASTERDOWN"


async def test_redis_busy_script_is_not_ready() -> None:
    require_binary("redis-server")
    with RedisServer("--busy-reply-threshold", "50") as server:  # noqa: F405
        from netprobe.protocols.redis import build_command

        busy = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        try:
            busy.sendall(build_command("EVAL", "while true do end", "0"))
            await anyio.sleep(0.2)
            report = await diag(f"redis://{server.address}")
        finally:
            server.command("SCRIPT", "KILL")
            busy.close()
    assert code(report) == "db.not_ready", report.fault
    assert db_of(report).error_code == "BUSY"


async def test_redis_maxclients(redis_plain: RedisServer) -> None:  # noqa: F405
    require_binary("redis-server")
    with RedisServer("--maxclients", "3") as server:  # noqa: F405
        pool = await netprobe.probe_pool(f"redis://{server.address}", size=5, icmp=False)
        assert pool.opened == 3, pool.summary
        assert pool.fault and pool.fault.code == "db.too_many_connections"
        refused = [c for c in pool.connections if c.fault_code == "db.too_many_connections"]
        assert len(refused) == 5 - pool.opened
        assert pool.summary.startswith(f"{pool.opened} of 5 opened;"), pool.summary
        holders = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        try:
            for h in holders:
                h.sendall(b"PING\r\n")
                h.recv(16)
            report = await diag(f"redis://{server.address}")
        finally:
            for h in holders:
                h.close()
    assert code(report) == "db.too_many_connections", report.fault


async def test_stopped_redis_is_a_greeting_timeout(redis_plain: RedisServer) -> None:  # noqa: F405
    assert redis_plain.proc is not None
    with stopped(redis_plain.proc.pid):  # noqa: F405
        report = await netprobe.diagnose(
            f"redis://{redis_plain.address}", icmp=False, read_timeout=0.3, timeout=3
        )
    assert code(report) == "db.greeting_timeout", report.fault
