"""``mysql://`` pointed at a server that waits for its client (issue 11).

MySQL speaks first; PostgreSQL, nginx (plain or TLS) and Redis wait for the client, so the
greeting never comes. That silence used to read ``db.greeting_timeout`` ("a stuck server").
netprobe now asks on fresh connections with client-first openings and says
``db.protocol_mismatch``, naming what answered. Real servers: PostgreSQL, Debian's nginx,
redis-server; and a stuck MySQL stand-in (a port that accepts and never speaks) stays
``db.greeting_timeout``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import netprobe
from netprobe.protocols import openings
from netprobe.steps import ApplicationStep, DatabaseResult
from netprobe.testing import SilentPort, TcpServer
from netprobe.testing._redis import RedisServer
from nplab.dbservers import Postgres, postgres  # noqa: F401 - session fixture
from nplab.realservers.nginx import Nginx, static
from nplab.realservers.pki import Pki
from nplab.require import require_binary

pytestmark = [pytest.mark.anyio, pytest.mark.backends]


def db_of(report: netprobe.Report) -> DatabaseResult:
    app = report.step(ApplicationStep)
    assert app is not None and app.database is not None, report.model_dump_json(indent=1)
    return app.database


async def mysql_at(port: int, **kw: Any) -> netprobe.Report:
    return await netprobe.diagnose(
        f"mysql://127.0.0.1:{port}", icmp=False, timeout=6, read_timeout=1, **kw
    )


def mismatch(report: netprobe.Report) -> str:
    assert report.fault is not None and report.fault.code == "db.protocol_mismatch", report.fault
    assert "stuck" not in report.fault.summary
    return report.fault.summary


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    pki = Pki(Path(tmp_path_factory.mktemp("pki")))
    cert = pki.server("web", "localhost", "127.0.0.1")
    with Nginx().site("plain", static("hello")).site("tls", static("secure"), tls=cert) as nginx:
        yield nginx


@pytest.mark.servers
async def test_mysql_at_postgresql(postgres: Postgres) -> None:  # noqa: F811
    report = await mysql_at(postgres.port)
    summary = mismatch(report)
    assert "PostgreSQL" in summary and "SSLRequest" in summary, summary
    assert db_of(report).answered_instead is not None
    assert report.fault is not None
    assert any(f"postgresql://127.0.0.1:{postgres.port}" in h for h in report.fault.hints)


@pytest.mark.servers
async def test_mysql_at_nginx_plain_and_tls(web: Nginx) -> None:
    plain = mismatch(await mysql_at(web.port_of("plain")))
    assert "an HTTP server (HTTP/1.1 400 Bad Request)" in plain, plain
    tls = mismatch(await mysql_at(web.port_of("tls")))
    assert "HTTPS server" in tls or "TLS server" in tls, tls


@pytest.mark.servers
async def test_mysql_at_redis() -> None:
    require_binary("redis-server")
    with RedisServer() as redis:
        summary = mismatch(await mysql_at(redis.port))
    assert "Redis (it answered PING with +PONG)" in summary, summary


async def accepted_settles(server: TcpServer) -> int:
    """The server's accept count once its accept thread has caught up (bounded)."""
    seen, still = server.accepted, 0
    for _ in range(40):
        await anyio.sleep(0.05)
        still = still + 1 if server.accepted == seen else 0
        seen = server.accepted
        if still >= 6:
            break
    return seen


async def test_silent_to_every_opening_stays_a_greeting_timeout() -> None:
    # Accepts, reads, never answers anything: a stuck MySQL as far as anyone can tell.
    def hold(conn: Any) -> None:
        conn.settimeout(3)
        for _ in range(8):
            try:
                if not conn.recv(4096):
                    return
            except OSError:
                return

    with TcpServer(hold) as stuck:
        port = int(stuck.address.rsplit(":", 1)[1])
        report = await mysql_at(port)
        assert report.fault is not None and report.fault.code == "db.greeting_timeout"
        assert db_of(report).answered_instead is None
        first = await accepted_settles(stuck)
        assert first == 5, first  # the probe's connection and four openings (TLS included)
        # Asked again within a minute: a stuck MariaDB would count each opening it reads on
        # recovery against max_connect_errors, so the silence is not asked about again.
        again = await mysql_at(port)
        assert again.fault is not None and again.fault.code == "db.greeting_timeout"
        assert await accepted_settles(stuck) == first + 1


async def test_a_port_that_drops_syns_is_not_sniffed() -> None:
    with SilentPort() as port:
        report = await netprobe.diagnose(
            f"mysql://{port.address}", icmp=False, timeout=2, connect_timeout=0.5
        )
    assert report.fault is not None and report.fault.code != "db.protocol_mismatch"


@pytest.mark.parametrize(
    ("index", "answer", "words"),
    [(0, b"S", "PostgreSQL (it answered the SSLRequest with 'S': TLS offered)"),
     (0, b"N", "PostgreSQL (it answered the SSLRequest with 'N': no TLS)"),
     (0, b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n<title>400 The plain HTTP request "
         b"was sent to HTTPS port</title>", "an HTTPS server (HTTP/1.1 400 Bad Request: the "
         "plain HTTP request was sent to HTTPS port)"),
     (2, b"HTTP/1.0 200 OK\r\n\r\n", "an HTTP server (HTTP/1.0 200 OK)"),
     (1, b"-NOAUTH Authentication required.\r\n",
      "Redis (it answered PING with -NOAUTH Authentication required.)"),
     (1, b"", None)],
)  # fmt: skip
def test_recognise(index: int, answer: bytes, words: str | None) -> None:
    assert openings.recognise(openings.PLAIN_OPENINGS[index], answer) == words
