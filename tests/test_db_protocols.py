"""The sans-IO database parsers and the database rules: pure, no sockets, no event loop.

Byte fixtures in tests/fixtures/db were captured from real servers (fixtures/db/capture.py).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netprobe.classify import classify
from netprobe.classify._observations import Observations
from netprobe.classify.database import database_fault
from netprobe.options import Options
from netprobe.protocols import mysql as my
from netprobe.protocols import postgres as pg
from netprobe.protocols import redis as rd
from netprobe.protocols.mismatch import ProtocolMismatch
from netprobe.steps import ApplicationStep, DatabaseResult
from netprobe.target import parse_target

FIX = Path(__file__).parent / "fixtures" / "db"


def fixture(name: str) -> bytes:
    return (FIX / name).read_bytes()


# ------------------------------------------------------------------ MySQL


def test_mariadb_greeting_fixture() -> None:
    parsed = my.parse_greeting(fixture("mariadb_greeting.bin"))
    assert parsed is not None
    greeting, rest = parsed
    assert isinstance(greeting, my.Greeting) and rest == b""
    assert greeting.server_version.startswith("5.5.5-")
    assert greeting.version.startswith("10.11") and greeting.product == "mariadb"
    assert greeting.auth_plugin == "mysql_native_password" and greeting.connection_id > 0
    assert len(greeting.scramble) == 20


@pytest.mark.parametrize(("name", "code"), [("mariadb_1040.bin", 1040), ("mariadb_1130.bin", 1130)])
def test_mariadb_error_fixtures(name: str, code: int) -> None:
    parsed = my.parse_greeting(fixture(name))
    assert parsed is not None and isinstance(parsed[0], my.MysqlError)
    assert parsed[0].code == code and parsed[0].message


def test_mysql_incomplete_then_complete() -> None:
    data = fixture("mariadb_greeting.bin")
    for cut in range(len(data)):
        assert my.parse_greeting(data[:cut]) is None
    assert my.parse_greeting(data) is not None


def test_mysql_handshake_response_roundtrip() -> None:
    pkt = my.build_handshake_response("probe", plugin="mysql_native_password")
    length = int.from_bytes(pkt[:3], "little")
    assert length == len(pkt) - 4 and pkt[3] == 1
    assert b"probe\x00\x00mysql_native_password\x00" in pkt
    assert my.build_quit() == b"\x01\x00\x00\x00\x01"


@pytest.mark.parametrize(
    ("data", "looks"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "HTTP"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "SSH"),
        (b"-ERR max number of clients reached\r\n", "Redis"),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "TLS"),
    ],
)
def test_mysql_mismatch_says_what_it_looks_like(data: bytes, looks: str) -> None:
    with pytest.raises(ProtocolMismatch) as exc:
        my.parse_greeting(data)
    assert looks in exc.value.looks_like


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_mysql_parsers_never_raise_anything_else(data: bytes) -> None:
    for parse in (my.parse_greeting, my.parse_reply):
        with contextlib.suppress(ProtocolMismatch):
            parse(data)


# ------------------------------------------------------------------ PostgreSQL


def test_pg_fixtures() -> None:
    answer = pg.parse_ssl_answer(fixture("pg_ssl_answer.bin"))
    assert answer is not None and answer[0] == pg.SslAnswer(True)
    auth = pg.parse_message(fixture("pg_auth_sasl.bin"))
    assert auth is not None and isinstance(auth[0], pg.Authentication)
    assert auth[0].method == "sasl"
    for name, state in (
        ("pg_53300.bin", "53300"),
        ("pg_57P03.bin", "57P03"),
        ("pg_28000_no_hba.bin", "28000"),
    ):
        msg = pg.parse_message(fixture(name))
        assert msg is not None and isinstance(msg[0], pg.ErrorResponse), name
        assert msg[0].sqlstate == state
    hba = pg.parse_message(fixture("pg_28000_no_hba.bin"))
    assert hba is not None and isinstance(hba[0], pg.ErrorResponse)
    assert hba[0].routine == "ClientAuthentication" and "pg_hba.conf" in hba[0].message


def test_pg_mismatch_on_mysql_greeting() -> None:
    with pytest.raises(ProtocolMismatch) as exc:
        pg.parse_ssl_answer(fixture("mariadb_greeting.bin"))
    assert "MySQL" in exc.value.looks_like


def test_pg_startup_and_terminate() -> None:
    msg = pg.build_startup("u", "db")
    assert int.from_bytes(msg[:4], "big") == len(msg)
    assert b"user\x00u\x00database\x00db\x00" in msg
    assert pg.build_terminate() == b"X\x00\x00\x00\x04"


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_pg_parsers_never_raise_anything_else(data: bytes) -> None:
    for parse in (pg.parse_ssl_answer, pg.parse_message):
        with contextlib.suppress(ProtocolMismatch):
            parse(data)


# ------------------------------------------------------------------ Redis


def test_redis_fixtures() -> None:
    pushed = rd.parse_reply(fixture("redis_maxclients.bin"))
    assert pushed is not None and pushed[0] == rd.RedisError(
        "ERR", "ERR max number of clients reached"
    )
    pong = rd.parse_reply(fixture("redis_pong_info.bin"))
    assert pong is not None and pong[0] == rd.Simple("PONG")
    info = rd.parse_reply(pong[1])
    assert info is not None and isinstance(info[0], rd.Value) and isinstance(info[0].value, str)
    assert (rd.info_field(info[0].value, "redis_version") or "").startswith("7")


def test_redis_needs_more_and_mismatch() -> None:
    assert rd.parse_reply(b"+PO") is None
    assert rd.parse_reply(b"$5\r\nhel") is None
    with pytest.raises(ProtocolMismatch) as exc:
        rd.parse_reply(fixture("mariadb_greeting.bin"))
    assert "MySQL" in exc.value.looks_like
    with pytest.raises(ProtocolMismatch):
        rd.parse_reply(b"+" + b"x" * 5000)


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_redis_parser_never_raises_anything_else(data: bytes) -> None:
    with contextlib.suppress(ProtocolMismatch):
        rd.parse_reply(data)


@given(st.lists(st.text(max_size=20), min_size=1, max_size=5))
def test_redis_command_roundtrip(args: list[str]) -> None:
    parsed = rd.parse_reply(rd.build_command(*args))
    assert parsed is not None and parsed[1] == b""
    value = parsed[0]
    assert isinstance(value, rd.Value) and isinstance(value.value, list)
    assert [v.value for v in value.value] == args


# ------------------------------------------------------------------ rules


def _fault(result: DatabaseResult, target: str = "mysql://db:3306") -> str | None:
    t = parse_target(target)
    app = ApplicationStep(status="failed", protocol=t.protocol, database=result)
    found = classify(t, Options(), [app]).fault
    return found.code if found else None


RULES = [
    (DatabaseResult(protocol="mysql", outcome="ready"), None),
    (DatabaseResult(protocol="mysql", outcome="server_error", error_code="1040"),
     "db.too_many_connections"),
    (DatabaseResult(protocol="mysql", outcome="server_error", error_code="1129"),
     "db.host_blocked"),
    (DatabaseResult(protocol="mysql", outcome="server_error", error_code="1130"),
     "db.access_denied"),
    (DatabaseResult(protocol="mysql", outcome="server_error", error_code="1045",
                    login_attempted=True), "db.auth_failed"),
    (DatabaseResult(protocol="mysql", outcome="server_error", error_code="1152"),
     "db.server_error"),
    (DatabaseResult(protocol="mysql", outcome="timeout"), "db.greeting_timeout"),
    (DatabaseResult(protocol="mysql", outcome="mismatch", looks_like="an HTTP response"),
     "db.protocol_mismatch"),
    (DatabaseResult(protocol="mysql", outcome="closed"), "l7.connection_closed"),
    (DatabaseResult(protocol="postgresql", outcome="server_error", error_code="53300",
                    sqlstate="53300"), "db.too_many_connections"),
    (DatabaseResult(protocol="postgresql", outcome="server_error", error_code="57P03",
                    sqlstate="57P03"), "db.not_ready"),
    (DatabaseResult(protocol="postgresql", outcome="server_error", error_code="28000",
                    sqlstate="28000", error_fields={"routine": "ClientAuthentication"}),
     "db.access_denied"),
    (DatabaseResult(protocol="postgresql", outcome="server_error", error_code="28000",
                    sqlstate="28000", error_fields={"routine": "InitializeSessionUserId"},
                    login_attempted=True), "db.auth_failed"),
    (DatabaseResult(protocol="postgresql", outcome="server_error", error_code="28P01",
                    sqlstate="28P01", login_attempted=True), "db.auth_failed"),
    (DatabaseResult(protocol="postgresql", outcome="tls_failed"), "tls.not_tls"),
    # PgBouncer's own 08P01 errors, recognised by their words (issue 11).
    (DatabaseResult(protocol="postgresql", outcome="server_error", server="pgbouncer",
                    error_code="08P01", sqlstate="08P01",
                    error_message="no more connections allowed (max_client_conn)"),
     "db.too_many_connections"),
    (DatabaseResult(protocol="postgresql", outcome="server_error", server="pgbouncer",
                    error_code="08P01", sqlstate="08P01",
                    error_message="pgbouncer cannot connect to server"),
     "db.upstream_unavailable"),
    (DatabaseResult(protocol="postgresql", outcome="server_error", server="pgbouncer",
                    error_code="08P01", sqlstate="08P01", error_message="query_wait_timeout"),
     "db.upstream_unavailable"),
    (DatabaseResult(protocol="postgresql", outcome="server_error", server="pgbouncer",
                    error_code="08P01", sqlstate="08P01", error_message="no such database: x"),
     "db.access_denied"),
    (DatabaseResult(protocol="postgresql", outcome="timeout", phase="login",
                    server="pgbouncer"), "db.upstream_unavailable"),
    # The same silence from PostgreSQL itself is a stuck server; 08P01 from it a mismatch.
    (DatabaseResult(protocol="postgresql", outcome="timeout", phase="login",
                    server="postgresql"), "db.greeting_timeout"),
    (DatabaseResult(protocol="postgresql", outcome="server_error", error_code="08P01",
                    sqlstate="08P01", error_message="invalid frontend message type 71"),
     "db.protocol_mismatch"),
    (DatabaseResult(protocol="redis", outcome="server_error", error_code="ERR",
                    error_message="ERR max number of clients reached"),
     "db.too_many_connections"),
    (DatabaseResult(protocol="redis", outcome="server_error", error_code="LOADING",
                    error_message="LOADING Redis is loading the dataset in memory"),
     "db.not_ready"),
    (DatabaseResult(protocol="redis", outcome="server_error", error_code="WRONGPASS",
                    login_attempted=True), "db.auth_failed"),
    (DatabaseResult(protocol="redis", outcome="server_error", error_code="DENIED"),
     "db.access_denied"),
    (DatabaseResult(protocol="redis", outcome="validated"), None),
    # Reset at the first plain-text command, not a byte back: a TLS-only port (tls-port).
    (DatabaseResult(protocol="redis", outcome="closed", error_errno="ECONNRESET",
                    bytes_sent=14), "db.protocol_mismatch"),
    # Reset before we said anything (the RST won the race against the hand-over): no answer
    # to a command at all, so no sign of a TLS port.
    (DatabaseResult(protocol="redis", outcome="closed", error_errno="ECONNRESET"),
     "l7.connection_closed"),
    (DatabaseResult(protocol="redis", outcome="closed", error_errno="ECONNRESET",
                    first_bytes="2b"), "l7.connection_closed"),
    (DatabaseResult(protocol="redis", outcome="closed"), "l7.connection_closed"),
]  # fmt: skip


@pytest.mark.parametrize(("result", "expected"), RULES)
def test_database_rules(result: DatabaseResult, expected: str | None) -> None:
    target = {
        "mysql": "mysql://db:3306",
        "postgresql": "postgresql://db:5432",
        "redis": "redis://db:6379",
    }[result.protocol]
    assert _fault(result, target) == expected


@pytest.mark.parametrize(("server", "name"), [(None, "MySQL/MariaDB"), ("mariadb", "MariaDB")])
def test_an_error_before_the_greeting_names_both_products(server: str | None, name: str) -> None:
    """1129 comes instead of the greeting, so nothing says MariaDB or MySQL yet."""
    result = DatabaseResult(
        protocol="mysql", outcome="server_error", error_code="1129", server=server
    )
    t = parse_target("mysql://db:3306")
    app = ApplicationStep(status="failed", protocol=t.protocol, database=result)
    found = database_fault(Observations(target=t, options=Options(), application=app))
    assert found is not None and f"{name} answered 1129" in found.summary


@pytest.mark.parametrize(
    ("query", "request_", "required", "verify", "hostname"),
    [
        ("", True, False, False, False),  # libpq's default: prefer
        ("?sslmode=disable", False, False, False, False),
        ("?sslmode=allow", False, False, False, False),
        ("?sslmode=prefer", True, False, False, False),
        ("?sslmode=require", True, True, False, False),
        ("?sslmode=verify-ca", True, True, True, False),
        ("?sslmode=verify-full", True, True, True, True),
    ],
)
def test_sslmode_policy(
    query: str, request_: bool, required: bool, verify: bool, hostname: bool
) -> None:
    from netprobe.protocols.postgres import ssl_policy

    p = ssl_policy(parse_target(f"postgresql://db/app{query}").params)
    assert (p.request, p.required, p.verify, p.check_hostname) == (
        request_, required, verify, hostname,
    )  # fmt: skip


def test_unknown_sslmode_is_invalid_target() -> None:
    from netprobe import InvalidTarget

    with pytest.raises(InvalidTarget, match="sslmode 'verify_full'"):
        parse_target("postgresql://db/app?sslmode=verify_full")


@pytest.mark.parametrize(
    ("sqlstate", "message", "pooler"),
    [("08P01", "no more connections allowed (max_client_conn)", "pgbouncer"),
     ("08P01", "unsupported startup parameter: netprobe.pooler_probe", "pgbouncer"),
     ("08P01", "query_wait_timeout", "pgbouncer"),
     ("08P01", "invalid frontend message type 71", None),
     ("28P01", "password authentication failed for user \"app\"", None),
     (None, "no more connections allowed", None)],
)  # fmt: skip
def test_pooler_of(sqlstate: str | None, message: str, pooler: str | None) -> None:
    assert pg.pooler_of(sqlstate, message) == pooler


def test_pooler_probe_is_a_startup_message_with_the_probe_parameter() -> None:
    data = pg.build_pooler_probe("u")
    assert int.from_bytes(data[:4], "big") == len(data)
    assert b"user\0u\0" in data and pg.POOLER_PROBE_PARAM.encode() + b"\0" + b"1\0" in data
