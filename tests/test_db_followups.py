"""Once the decisive evidence is in, optional follow-ups cannot overturn the verdict (issue 11).

A Redis that answered ``+PONG`` is up. ``INFO server`` only adds the version: renamed away
(a real redis-server with ``rename-command INFO ""`` answers ``-ERR unknown command``) or
closed by a Redis-compatible proxy (a loopback peer that answers PING and closes on INFO, as
some proxies do), the verdict stays healthy, with a note that the version is unknown.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

import netprobe
from netprobe.protocols import redis as rd
from netprobe.steps import ApplicationStep, DatabaseResult
from netprobe.testing import TcpServer
from netprobe.testing._redis import RedisServer
from nplab.require import require_binary

pytestmark = [pytest.mark.anyio, pytest.mark.backends]

PASSWORD = "s3cret-followup"


def db_of(report: netprobe.Report) -> DatabaseResult:
    app = report.step(ApplicationStep)
    assert app is not None and app.database is not None, report.model_dump_json(indent=1)
    return app.database


async def diag(target: str, **kw: Any) -> netprobe.Report:
    return await netprobe.diagnose(target, icmp=False, timeout=5, read_timeout=1.5, **kw)


@pytest.fixture(scope="module")
def redis_without_info() -> Iterator[RedisServer]:
    require_binary("redis-server")
    with RedisServer("--rename-command", "INFO", "", "--requirepass", PASSWORD) as server:
        reply = server.command("INFO", "server", password=PASSWORD)
        assert reply.startswith(b"-ERR unknown command"), reply
        yield server


@pytest.mark.servers
async def test_real_redis_refusing_info_is_healthy_version_unknown(
    redis_without_info: RedisServer,
) -> None:
    # Without credentials: PING gets NOAUTH (the server is up), no INFO is sent.
    # With them: AUTH, PING -> PONG, then INFO -> -ERR unknown command.
    report = await diag(f"redis://:{PASSWORD}@{redis_without_info.address}")
    assert report.ok, report.fault
    db = db_of(report)
    assert db.outcome == "validated" and db.logged_in and db.version is None
    assert any(n.startswith("version unknown") and "unknown command" in n for n in db.notes), (
        db.notes
    )
    assert PASSWORD not in report.model_dump_json()


@pytest.mark.servers
async def test_real_redis_refusing_info_greeting_only() -> None:
    # The greeting conversation itself sends INFO once PING answered PONG: use a server
    # without a password for it.
    require_binary("redis-server")
    with RedisServer("--rename-command", "INFO", "") as server:
        report = await diag(f"redis://{server.address}")
    assert report.ok, report.fault
    db = db_of(report)
    assert db.outcome == "ready" and db.version is None
    assert any("version unknown: INFO answered -ERR unknown command" in n for n in db.notes), (
        db.notes
    )


def _hello(version: str) -> bytes:
    """HELLO's answer (redis-py authenticates with HELLO 3): a map in RESP3, an array in RESP2."""
    fields = b"$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:%s\r\n" % version.encode()
    return (b"%2\r\n" if version == "3" else b"*4\r\n") + fields


def _pong_then_close_on_info(conn: socket.socket) -> None:
    """A Redis-compatible proxy that answers PING (+PONG), HELLO, and every other command
    (+OK: AUTH, CLIENT SETINFO...) but closes the connection on INFO."""
    conn.settimeout(5)
    buf = b""
    for _ in range(64):  # bounded: a handful of commands per connection
        try:
            chunk = conn.recv(4096)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        while (parsed := rd.parse_reply(buf)) is not None:  # a command is a RESP array
            command, buf = parsed
            assert isinstance(command, rd.Value) and isinstance(command.value, list)
            args = [str(a.value if isinstance(a, rd.Value) else a) for a in command.value]
            name = args[0].upper()
            if name == "INFO":
                return  # the socket is closed after the handler
            if name == "HELLO":
                conn.sendall(_hello(args[1] if len(args) > 1 else "2"))
            else:
                conn.sendall(b"+PONG\r\n" if name == "PING" else b"+OK\r\n")


async def test_pong_then_close_on_info_is_healthy() -> None:
    with TcpServer(_pong_then_close_on_info) as peer:
        report = await diag(f"redis://{peer.address}")
        assert report.ok, report.fault
        db = db_of(report)
        assert db.outcome == "ready" and db.version is None
        assert any("closed the connection on INFO" in n for n in db.notes), db.notes


async def test_pong_then_close_on_info_with_credentials_is_healthy() -> None:
    with TcpServer(_pong_then_close_on_info) as peer:
        report = await diag(f"redis://:pw@{peer.address}")
        assert report.ok, report.fault
        db = db_of(report)
        assert db.outcome == "validated" and db.logged_in and db.version is None
        assert any(n.startswith("version unknown: INFO failed") for n in db.notes), db.notes
