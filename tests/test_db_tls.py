"""TLS inside database protocols, against real servers: PostgreSQL's SSLRequest → TLS on the
same connection (sslmode honoured), and Redis over a TLS port (rediss://).

The TLS rung's taxonomy and certificate facts apply: the TlsStep is in the report's steps.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest

import netprobe
from netprobe.steps import ApplicationStep, DatabaseResult, TlsStep
from netprobe.testing import closed_port
from nplab.dbservers import *  # noqa: F403 - session fixtures
from nplab.require import require_binary

pytestmark = [pytest.mark.anyio, pytest.mark.backends, pytest.mark.servers]


async def diag(target: str, **kw: Any) -> netprobe.Report:
    return await netprobe.diagnose(target, icmp=False, timeout=5, read_timeout=2, **kw)


def db_of(report: netprobe.Report) -> DatabaseResult:
    app = report.step(ApplicationStep)
    assert app is not None and app.database is not None, report.model_dump_json(indent=1)
    return app.database


def tls_of(report: netprobe.Report) -> TlsStep:
    tls = report.step(TlsStep)
    assert tls is not None, report.model_dump_json(indent=1)
    return tls


def warning_codes(report: netprobe.Report) -> set[str]:
    return {w.code for w in report.warnings}


# ------------------------------------------------------------------------------ PostgreSQL


async def test_postgres_verify_full_reports_the_tls_rung(postgres: Postgres) -> None:  # noqa: F405
    report = await diag(
        f"postgresql://127.0.0.1:{postgres.port}/postgres?sslmode=verify-full",
        ca_file=postgres.ca_file,
    )
    assert report.ok, report.fault
    names = [s.name for s in report.steps]
    assert names.index("tcp") < names.index("tls") < names.index("application")
    tls = tls_of(report)
    assert tls.status == "ok" and tls.verified and tls.version and tls.cipher
    leaf = tls.chain[0]
    assert "127.0.0.1" in leaf.ip_addresses and "netprobe test PG CA" in leaf.issuer
    db = db_of(report)
    assert db.tls_used and db.tls_supported and db.auth_plugin == "sasl" and db.closed_cleanly
    tm = report.timings_ms
    assert tm.tcp_connect is not None and tm.tls_handshake is not None
    assert tm.first_byte is not None and tm.tcp_connect <= tm.tls_handshake <= tm.first_byte
    assert not warning_codes(report)


async def test_postgres_prefer_encrypts_without_verifying(postgres: Postgres) -> None:  # noqa: F405
    # libpq's default: TLS when offered, certificate not checked (here: an unknown CA).
    report = await diag(f"postgresql://127.0.0.1:{postgres.port}")
    assert report.ok, report.fault
    tls = tls_of(report)
    assert tls.status == "ok" and not tls.verified and tls.chain
    assert db_of(report).tls_used
    assert "tls.verify_disabled" not in warning_codes(report)  # the client does the same


async def test_postgres_verify_full_untrusted_ca(postgres: Postgres) -> None:  # noqa: F405
    report = await diag(f"postgresql://127.0.0.1:{postgres.port}/postgres?sslmode=verify-full")
    assert report.fault is not None and report.fault.code == "tls.cert_untrusted", report.fault
    assert db_of(report).outcome == "tls_failed"


async def test_postgres_sslmode_disable_has_no_tls_rung(postgres: Postgres) -> None:  # noqa: F405
    report = await diag(f"postgresql://127.0.0.1:{postgres.port}/postgres?sslmode=disable")
    assert report.ok, report.fault
    assert report.step(TlsStep) is None and report.timings_ms.tls_handshake is None
    db = db_of(report)
    assert not db.tls_used and db.tls_supported is None and db.tls is None


async def test_postgres_expired_certificate(postgres: Postgres) -> None:  # noqa: F405
    now = datetime.datetime.now(datetime.UTC)
    not_after = now - datetime.timedelta(days=2)
    base = f"postgresql://127.0.0.1:{postgres.port}/postgres"
    with postgres.certificate(not_before=now - datetime.timedelta(days=400), not_after=not_after):
        strict = await diag(f"{base}?sslmode=verify-full", ca_file=postgres.ca_file)
        lax = await diag(base)  # sslmode=prefer: libpq would connect; netprobe warns
    fault = strict.fault
    assert fault is not None and fault.code == "tls.cert_expired", strict.model_dump_json()
    assert fault.layer == "l7"
    assert "expired 2 days ago" in fault.summary and "netprobe test PG CA" in fault.summary
    assert not_after.strftime("%Y-%m-%d") in fault.summary
    assert tls_of(strict).failure == "verify" and tls_of(strict).chain[0].days_left < 0
    assert db_of(strict).closed_cleanly is not False
    assert lax.ok, lax.fault
    assert "tls.cert_expiring_soon" in warning_codes(lax)
    assert any("expired" in w.message for w in lax.warnings)


async def test_postgres_credentials_over_verified_tls(postgres: Postgres) -> None:  # noqa: F405
    # The driver (asyncpg) gets the same verification as the greeting probe.
    report = await diag(
        f"postgresql://app:{APP_PASSWORD}@127.0.0.1:{postgres.port}/appdb"  # noqa: F405
        "?sslmode=verify-full",
        ca_file=postgres.ca_file,
    )
    assert report.ok, report.fault
    db = db_of(report)
    assert db.outcome == "validated" and db.tls_used and tls_of(report).verified
    assert APP_PASSWORD not in report.model_dump_json()  # noqa: F405


async def test_postgres_pool_over_tls(postgres: Postgres) -> None:  # noqa: F405
    pool = await netprobe.probe_pool(
        f"postgresql://127.0.0.1:{postgres.port}/postgres?sslmode=verify-full",
        size=2, icmp=False, read_timeout=2, ca_file=postgres.ca_file,
    )  # fmt: skip
    assert pool.opened == 2 and pool.fault is None, pool


# ------------------------------------------------------------------------------ Redis


async def test_rediss_is_healthy_with_tls_facts(redis_tls: TlsRedis) -> None:  # noqa: F405
    report = await diag(f"rediss://127.0.0.1:{redis_tls.tls_port}", ca_file=redis_tls.ca_file)
    assert report.ok, report.fault
    tls = tls_of(report)
    assert tls.status == "ok" and tls.verified and "netprobe test Redis CA" in tls.chain[0].issuer
    db = db_of(report)
    assert db.outcome == "ready" and db.version and db.version.startswith("7")
    assert db.closed_cleanly


async def test_plain_redis_on_the_tls_port_is_a_mismatch(redis_tls: TlsRedis) -> None:  # noqa: F405
    report = await diag(f"redis://127.0.0.1:{redis_tls.tls_port}")
    fault = report.fault
    assert fault is not None and fault.code == "db.protocol_mismatch", report.model_dump_json()
    assert "TLS" in fault.summary and any("rediss://" in h for h in fault.hints)
    assert db_of(report).error_errno == "ECONNRESET"


async def test_rediss_on_the_plain_port_waits(redis_tls: TlsRedis) -> None:  # noqa: F405
    # Redis reads a ClientHello as the start of an inline command and waits for its CRLF:
    # no answer to the ClientHello, whose hint says the port may not speak TLS.
    report = await netprobe.diagnose(
        f"rediss://127.0.0.1:{redis_tls.port}", icmp=False, timeout=3, read_timeout=0.5
    )
    fault = report.fault
    assert fault is not None and fault.code == "tls.handshake_timeout", fault
    assert any("not speak TLS" in h for h in fault.hints)


# ------------------------------------------------------------- Redis login with mTLS


class MtlsRedis(RedisServer):  # noqa: F405
    """redis-server whose TLS port requires a client certificate and a password."""

    PASSWORD = "redis-mtls-pw"

    def __init__(self) -> None:
        import os

        import trustme

        super().__init__()
        self.tls_port = closed_port()
        while self.tls_port == self.port:  # bounded in practice: the kernel rotates ports
            self.tls_port = closed_port()
        self.ca = trustme.CA(organization_name="netprobe test Redis mTLS CA")
        server = self.ca.issue_cert("localhost", "127.0.0.1")
        client = self.ca.issue_cert("netprobe-client")
        names = ("ca.pem", "c.pem", "k.pem", "client.pem", "client-key.pem")
        files = {name: os.path.join(self.dir, name) for name in names}
        self.ca.cert_pem.write_to_path(files["ca.pem"])
        server.cert_chain_pems[0].write_to_path(files["c.pem"])
        server.private_key_pem.write_to_path(files["k.pem"])
        client.cert_chain_pems[0].write_to_path(files["client.pem"])
        client.private_key_pem.write_to_path(files["client-key.pem"])
        self.ca_file, self.client_cert = files["ca.pem"], files["client.pem"]
        self.client_key = files["client-key.pem"]
        self.args = (
            "--tls-port", str(self.tls_port), "--tls-cert-file", files["c.pem"],
            "--tls-key-file", files["k.pem"], "--tls-ca-cert-file", files["ca.pem"],
            "--tls-auth-clients", "yes", "--requirepass", self.PASSWORD,
        )  # fmt: skip


@pytest.fixture(scope="module")
def redis_mtls() -> Iterator[MtlsRedis]:
    require_binary("redis-server")
    server = MtlsRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_redis_login_uses_the_client_certificate(redis_mtls: MtlsRedis) -> None:
    """The greeting and the driver's login both present the client certificate (the login
    used to ignore client_cert / client_key and failed where the greeting passed)."""
    report = await diag(
        f"rediss://:{MtlsRedis.PASSWORD}@127.0.0.1:{redis_mtls.tls_port}",
        ca_file=redis_mtls.ca_file,
        client_cert=redis_mtls.client_cert,
        client_key=redis_mtls.client_key,
    )
    assert report.ok, report.fault
    db = db_of(report)
    assert db.outcome == "validated" and db.validation == "PING"
    assert db.login_attempted and db.logged_in


async def test_redis_login_uses_the_callers_ssl_context(redis_mtls: MtlsRedis) -> None:
    import ssl

    context = ssl.create_default_context(cafile=redis_mtls.ca_file)
    context.load_cert_chain(redis_mtls.client_cert, redis_mtls.client_key)
    report = await diag(
        f"rediss://:{MtlsRedis.PASSWORD}@127.0.0.1:{redis_mtls.tls_port}", ssl_context=context
    )
    assert report.ok, report.fault
    assert db_of(report).outcome == "validated"


async def test_redis_without_the_client_certificate_fails_at_tls(redis_mtls: MtlsRedis) -> None:
    report = await diag(
        f"rediss://:{MtlsRedis.PASSWORD}@127.0.0.1:{redis_mtls.tls_port}",
        ca_file=redis_mtls.ca_file,
    )
    assert report.fault is not None and report.fault.layer == "l7"
    # TLS 1.3: Redis refuses with certificate_required on the first read of the greeting.
    assert report.fault.code == "tls.client_cert_required", report.fault
    assert "none was sent" in report.fault.summary
