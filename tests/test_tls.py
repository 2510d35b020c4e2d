"""The TLS rung against real TLS servers on loopback, with certificates made for the test."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from netprobe import diagnose
from netprobe._errors import InvalidOption
from netprobe.classify import classify
from netprobe.options import Options
from netprobe.protocols.sniff import describe_bytes, looks_like_tls
from netprobe.render import render_ladder
from netprobe.report import Report
from netprobe.steps import CertificateInfo, DeadlineCut, TlsStep
from netprobe.target import parse_target
from netprobe.testing import CertBook, L7Server

#: The network tests of this module run under asyncio and under trio (conftest.py).
pytestmark = pytest.mark.backends

FAST: dict[str, Any] = {"read_timeout": 0.5, "timeout": 5.0, "icmp": False}


@pytest.fixture(scope="module")
def pki() -> Iterator[CertBook]:
    with CertBook() as book:
        yield book


@pytest.fixture(scope="module")
def servers(pki: CertBook) -> Iterator[dict[str, L7Server]]:
    made: dict[str, L7Server] = {}
    try:
        for kind in CertBook.KINDS:
            made[kind] = L7Server("tls", ssl_context=pki.server_context(kind))
        made["plain"] = L7Server("http")
        made["silent"] = L7Server("silent")
        made["reset"] = L7Server("reset")
        made["mtls"] = L7Server("tls", ssl_context=pki.server_context(require_client_cert=True))
        made["tls13"] = L7Server(
            "tls", ssl_context=pki.server_context(minimum_version=ssl.TLSVersion.TLSv1_3)
        )
        yield made
    finally:
        for server in made.values():
            server.close()


async def run(url: str, pki: CertBook, **kwargs: Any) -> Report:
    opts: dict[str, Any] = {**FAST, "ca_file": pki.ca_file, **kwargs}
    return await diagnose(url, **opts)


def tls_of(report: Report) -> TlsStep:
    step = report.step(TlsStep)
    assert step is not None
    return step


def code_of(report: Report) -> str | None:
    return report.fault.code if report.fault else None


@pytest.mark.anyio
async def test_valid_certificate_reports_the_chain(
    servers: dict[str, L7Server], pki: CertBook
) -> None:
    report = await run(f"https://localhost:{servers['valid'].port}/health", pki)
    assert report.ok, report.fault
    tls = tls_of(report)
    assert tls.status == "ok" and tls.verified
    assert tls.version in ("TLSv1.2", "TLSv1.3")
    assert tls.cipher and tls.alpn == "http/1.1"
    assert tls.server_name == "localhost"
    leaf = tls.chain[0]
    assert "localhost" in leaf.dns_names and "127.0.0.1" in leaf.ip_addresses
    assert "netprobe test CA" in leaf.issuer
    assert len(leaf.sha256) == 95 and leaf.serial
    assert leaf.days_left > 300
    assert report.warning_codes() == []
    t = report.timings_ms
    assert t.dns is not None and t.tcp_connect is not None and t.tls_handshake is not None
    assert t.first_byte is not None and t.total is not None
    assert t.dns <= t.tcp_connect <= t.tls_handshake <= t.first_byte <= t.total


@pytest.mark.anyio
async def test_one_tcp_connection_per_https_diagnosis(pki: CertBook) -> None:
    with L7Server("tls", ssl_context=pki.server_context("valid")) as server:
        report = await run(f"https://localhost:{server.port}/moved", pki, follow_redirects=True)
        assert report.ok
        assert server.accepted == 1


@pytest.mark.anyio
async def test_expired_certificate_names_date_and_issuer(
    servers: dict[str, L7Server], pki: CertBook
) -> None:
    report = await run(f"https://localhost:{servers['expired'].port}/health", pki)
    assert code_of(report) == "tls.cert_expired"
    tls = tls_of(report)
    assert tls.verify_code == 10 and tls.failure == "verify"
    leaf = tls.chain[0]
    assert leaf.days_left < -1
    expiry = leaf.not_after.strftime("%Y-%m-%d")
    assert report.fault is not None
    assert expiry in report.fault.summary and "netprobe test CA" in report.fault.summary
    assert "expired 2 days ago" in report.fault.summary
    # The JSON report carries the expiry date and the issuer.
    data = json.loads(report.model_dump_json())
    fault_data = data["fault"]["evidence"][1]["data"]
    assert fault_data["not_after"].startswith(expiry)
    assert "netprobe test CA" in fault_data["issuer"]
    assert data["steps"][-1]["chain"][0]["not_after"].startswith(expiry)
    # The TCP connection worked: this is never an L4 verdict.
    assert report.fault.layer == "l7"


@pytest.mark.parametrize(
    ("kind", "host", "code", "verify_code", "needle"),
    [
        ("not_yet_valid", "localhost", "tls.cert_not_yet_valid", 9, "becomes valid on"),
        ("unknown_ca", "localhost", "tls.cert_untrusted", 20, "some other CA"),
        ("self_signed", "localhost", "tls.cert_untrusted", 18, "self-signed"),
        ("incomplete_chain", "localhost", "tls.cert_untrusted", 20, "incomplete chain"),
        ("wrong_host", "localhost", "tls.hostname_mismatch", 62, "other.example.com"),
        ("no_ip_san", "127.0.0.1", "tls.hostname_mismatch", 64, "IP subjectAltName"),
    ],
)
@pytest.mark.anyio
async def test_verification_failures(
    servers: dict[str, L7Server],
    pki: CertBook,
    kind: str,
    host: str,
    code: str,
    verify_code: int,
    needle: str,
) -> None:
    report = await run(f"https://{host}:{servers[kind].port}/", pki)
    assert code_of(report) == code, report.fault
    tls = tls_of(report)
    assert tls.verify_code == verify_code
    assert tls.chain, "the presented chain is reported even when verification fails"
    assert report.fault is not None and needle in report.fault.summary


@pytest.mark.anyio
async def test_ip_target_sends_no_sni(servers: dict[str, L7Server], pki: CertBook) -> None:
    report = await run(f"https://127.0.0.1:{servers['valid'].port}/", pki)
    assert report.ok
    assert tls_of(report).server_name is None


@pytest.mark.anyio
async def test_untrusted_kinds_are_told_apart(servers: dict[str, L7Server], pki: CertBook) -> None:
    kinds = {}
    for kind in ("unknown_ca", "self_signed", "incomplete_chain"):
        report = await run(f"https://localhost:{servers[kind].port}/", pki)
        assert report.fault is not None
        kinds[kind] = report.fault.evidence[1].data["kind"]
    assert kinds == {
        "unknown_ca": "unknown_ca_or_incomplete_chain",
        "self_signed": "self_signed",
        "incomplete_chain": "unknown_ca_or_incomplete_chain",
    }


@pytest.mark.anyio
async def test_expiring_soon_is_a_warning(servers: dict[str, L7Server], pki: CertBook) -> None:
    url = f"https://localhost:{servers['expiring_soon'].port}/health"
    report = await run(url, pki)
    assert report.ok
    assert report.warning_codes() == ["tls.cert_expiring_soon"]
    assert "expires in 5 days" in report.warnings[0].message
    quiet = await run(url, pki, expiry_warning_days=3)
    assert quiet.warning_codes() == []


@pytest.mark.anyio
async def test_verify_off_says_so(servers: dict[str, L7Server], pki: CertBook) -> None:
    report = await run(f"https://localhost:{servers['expired'].port}/health", pki, verify=False)
    assert report.ok
    assert "tls.verify_disabled" in report.warning_codes()
    assert not tls_of(report).verified
    assert tls_of(report).chain[0].days_left < 0


@pytest.mark.anyio
async def test_system_store_by_default_and_ssl_cert_file_honoured(
    servers: dict[str, L7Server], pki: CertBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"https://localhost:{servers['valid'].port}/health"
    report = await diagnose(url, **FAST)
    assert code_of(report) == "tls.cert_untrusted"  # our test CA is not in the system store
    monkeypatch.setenv("SSL_CERT_FILE", pki.ca_file)
    report = await diagnose(url, **FAST)
    assert report.ok, report.fault


@pytest.mark.anyio
async def test_plain_http_on_the_tls_port(servers: dict[str, L7Server], pki: CertBook) -> None:
    report = await run(f"https://localhost:{servers['plain'].port}/", pki)
    assert code_of(report) == "tls.not_tls"
    tls = tls_of(report)
    assert tls.peer_sent == "an HTTP response (HTTP/1.1 400 Bad Request)"
    assert report.fault is not None and "http://" in report.fault.hints[0]


@pytest.mark.anyio
async def test_silent_after_accept_is_a_handshake_timeout(
    servers: dict[str, L7Server], pki: CertBook
) -> None:
    report = await run(f"https://localhost:{servers['silent'].port}/", pki)
    assert code_of(report) == "tls.handshake_timeout"
    assert report.timings_ms.total is not None and report.timings_ms.total < 2000


@pytest.mark.anyio
async def test_reset_right_after_accept(servers: dict[str, L7Server], pki: CertBook) -> None:
    report = await run(f"https://localhost:{servers['reset'].port}/", pki)
    assert code_of(report) == "l7.connection_closed"
    assert tls_of(report).failure == "closed"


@pytest.mark.anyio
async def test_client_certificate_required(servers: dict[str, L7Server], pki: CertBook) -> None:
    url = f"https://localhost:{servers['mtls'].port}/health"
    report = await run(url, pki)
    assert code_of(report) == "tls.client_cert_required"
    assert report.fault is not None and "none was sent" in report.fault.summary
    ok = await run(url, pki, client_cert=pki.client_cert_file, client_key=pki.client_key_file)
    assert ok.ok, ok.fault
    assert "--client-cert" in " ".join(report.fault.hints)


def test_client_certificate_from_the_cli(servers: dict[str, L7Server], pki: CertBook) -> None:
    """The flags the hint names exist and work: the real CLI, with and without them."""
    url = f"https://localhost:{servers['mtls'].port}/health"
    base = [sys.executable, "-m", "netprobe", "diagnose", url, "--no-icmp", "--json"]
    base += ["--read-timeout", "0.5", "--ca-file", pki.ca_file]
    without = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert without.returncode == 1, without.stderr
    assert json.loads(without.stdout)["fault"]["code"] == "tls.client_cert_required"
    cert = ["--client-cert", pki.client_cert_file, "--client-key", pki.client_key_file]
    with_cert = subprocess.run(base + cert, capture_output=True, text=True, timeout=60)
    assert with_cert.returncode == 0, with_cert.stdout + with_cert.stderr


@pytest.mark.anyio
async def test_tls13_only_server_vs_tls12_client(
    servers: dict[str, L7Server], pki: CertBook
) -> None:
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    report = await run(f"https://localhost:{servers['tls13'].port}/", pki, ssl_context=ctx)
    assert code_of(report) == "tls.protocol_version"
    tls = tls_of(report)
    assert tls.alert == "protocol_version"
    assert report.fault is not None and "no TLS version in common" in report.fault.summary
    assert "the server speaks only TLS 1.3" in report.fault.summary


@pytest.mark.anyio
async def test_tls_target_without_application(servers: dict[str, L7Server], pki: CertBook) -> None:
    report = await run(f"tls://localhost:{servers['valid'].port}", pki)
    assert report.ok
    assert tls_of(report).alpn is None
    lines = "\n".join(render_ladder(report))
    assert "TLSv1" in lines and "days left" in lines


@pytest.mark.anyio
async def test_missing_ca_file_is_bad_input() -> None:
    with pytest.raises(InvalidOption, match="ca_file"):
        await diagnose("https://localhost:1/", ca_file="/nonexistent/ca.pem")


# Pure classification rows: plain data in, code out; no sockets.


def _cert(days_left: float) -> CertificateInfo:
    now = datetime.now(UTC)
    return CertificateInfo(
        subject="CN=api.example",
        common_name="api.example",
        issuer="CN=Example CA",
        dns_names=["api.example"],
        not_before=now - timedelta(days=300),
        not_after=now + timedelta(days=days_left),
        days_left=days_left,
        serial="01",
        sha256="00",
        self_signed=False,
    )


@pytest.mark.parametrize(
    ("step", "code"),
    [
        (TlsStep(status="failed", failure="verify", verify_code=10), "tls.cert_expired"),
        (TlsStep(status="failed", failure="verify", verify_code=9), "tls.cert_not_yet_valid"),
        (TlsStep(status="failed", failure="verify", verify_code=19), "tls.cert_untrusted"),
        (TlsStep(status="failed", failure="verify", verify_code=62), "tls.hostname_mismatch"),
        (TlsStep(status="failed", failure="not_tls", peer_sent="x"), "tls.not_tls"),
        (
            TlsStep(status="failed", failure="alert", alert="no_shared_cipher"),
            "tls.handshake_failed",
        ),
        (TlsStep(status="failed", failure="timeout"), "tls.handshake_timeout"),
        (TlsStep(status="failed", failure="closed"), "l7.connection_closed"),
        (None, "tls.handshake_timeout"),  # the total deadline cut the handshake (below)
    ],
)
def test_classification_rows(step: TlsStep | None, code: str) -> None:
    target = parse_target("https://api.example/health")
    cut = None if step else DeadlineCut(rung="tls", timeout_s=10.0, at_ms=10000.0)
    verdict = classify(target, Options(), [step] if step else [], deadline=cut)
    assert verdict.fault is not None and verdict.fault.code == code


def test_expiring_threshold_is_configurable() -> None:
    target = parse_target("https://api.example/health")
    step = TlsStep(status="ok", chain=[_cert(10)])
    assert [w.code for w in classify(target, Options(), [step]).warnings] == [
        "tls.cert_expiring_soon"
    ]
    assert classify(target, Options(expiry_warning_days=7), [step]).warnings == ()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "an HTTP response (HTTP/1.1 400 Bad Request)"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "an SSH banner (SSH-2.0-OpenSSH_9.6)"),
        (b"+PONG\r\n", "a Redis reply (+PONG)"),
        (b"\x15\x03\x03\x00\x02\x02\x46", "a TLS alert record"),
        (b"", "nothing (the peer sent no bytes)"),
        (b"\x4a\x00\x00\x00\x0a8.0.36\x00", "a MySQL server greeting (version 8.0.36)"),
    ],
)
def test_describe_bytes(data: bytes, expected: str) -> None:
    assert describe_bytes(data) == expected


def test_looks_like_tls() -> None:
    assert looks_like_tls(b"\x16\x03\x01\x02\x00")
    assert not looks_like_tls(b"HTTP/1.1 400")
    assert not looks_like_tls(b"")
