"""The HTTP rung against real HTTP and HTTPS servers on loopback."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from netprobe import diagnose
from netprobe.classify import classify
from netprobe.options import Options
from netprobe.render import render_ladder
from netprobe.report import Report
from netprobe.steps import ApplicationStep, DeadlineCut, ErrorInfo, HttpResult, Step
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
def https(pki: CertBook) -> Iterator[L7Server]:
    with L7Server("tls", ssl_context=pki.server_context("valid")) as server:
        yield server


@pytest.fixture(scope="module")
def plain() -> Iterator[L7Server]:
    with L7Server("http") as server:
        yield server


@pytest.fixture(params=["http", "https"])
def base(request: pytest.FixtureRequest, https: L7Server, plain: L7Server) -> str:
    if request.param == "https":
        return f"https://localhost:{https.port}"
    return f"http://localhost:{plain.port}"


async def run(url: str, pki: CertBook, **kwargs: Any) -> Report:
    return await diagnose(url, **{**FAST, "ca_file": pki.ca_file, **kwargs})


def http_of(report: Report) -> HttpResult:
    app = report.step(ApplicationStep)
    assert app is not None and app.http is not None
    return app.http


def code_of(report: Report) -> str | None:
    return report.fault.code if report.fault else None


@pytest.mark.anyio
async def test_200(base: str, pki: CertBook) -> None:
    report = await run(f"{base}/health", pki)
    assert report.ok, report.fault
    http = http_of(report)
    assert http.status == 200 and http.reason == "OK" and http.http_version == "HTTP/1.1"
    assert http.headers["server"] == "netprobe-demo"
    assert http.body_bytes == 3
    assert http.first_byte_ms is not None
    assert report.timings_ms.first_byte is not None


@pytest.mark.anyio
async def test_token_in_the_query_is_sent_but_never_shown(base: str, pki: CertBook) -> None:
    secret = "s3cr3t-T0ken"
    report = await run(f"{base}/missing?access_token={secret}&verbose=1", pki)
    assert code_of(report) == "http.client_error"
    assert http_of(report).url.endswith("/missing?access_token=***&verbose=1")
    shown = report.model_dump_json() + "\n".join(render_ladder(report, verbose=True))
    assert secret not in shown
    assert "access_token=***" in shown


@pytest.mark.anyio
async def test_301_is_reported_not_followed(base: str, pki: CertBook) -> None:
    report = await run(f"{base}/moved", pki)
    assert report.ok
    http = http_of(report)
    assert http.status == 301 and http.location == "/health"
    lines = "\n".join(render_ladder(report))
    assert "301" in lines and "→ /health" in lines


@pytest.mark.anyio
async def test_follow_redirects_on_the_same_connection(base: str, pki: CertBook) -> None:
    report = await run(f"{base}/moved", pki, follow_redirects=True)
    http = http_of(report)
    assert http.status == 200
    assert [(h.status, h.location) for h in http.redirects] == [(301, "/health")]


@pytest.mark.anyio
async def test_redirect_to_another_origin_is_not_followed(base: str, pki: CertBook) -> None:
    report = await run(f"{base}/away", pki, follow_redirects=True)
    app = report.step(ApplicationStep)
    assert app is not None and app.http is not None
    assert app.http.status == 302 and report.ok
    assert app.reason is not None and "another origin" in app.reason


@pytest.mark.anyio
async def test_404_means_wrong_path(base: str, pki: CertBook) -> None:
    report = await run(f"{base}/missing", pki)
    assert code_of(report) == "http.client_error"
    assert report.fault is not None and "path does not exist" in report.fault.summary
    assert http_of(report).body_preview == "no such path\n"


@pytest.mark.anyio
async def test_401_means_credentials(base: str, pki: CertBook) -> None:
    report = await run(f"{base}/private", pki)
    assert code_of(report) == "http.client_error"
    assert report.fault is not None and "credentials" in report.fault.summary
    assert "Bearer" in report.fault.hints[0]


@pytest.mark.anyio
async def test_403(base: str, pki: CertBook) -> None:
    report = await run(f"{base}/forbidden", pki)
    assert code_of(report) == "http.client_error"


@pytest.mark.anyio
async def test_503_with_retry_after(base: str, pki: CertBook) -> None:
    report = await run(f"{base}/busy", pki)
    assert code_of(report) == "http.server_error"
    http = http_of(report)
    assert http.retry_after == "120" and http.retry_after_s == 120.0
    assert report.fault is not None and "retry after 120 s" in report.fault.summary


@pytest.mark.anyio
async def test_hang_after_request(base: str, pki: CertBook) -> None:
    report = await run(f"{base}/hang", pki)
    assert code_of(report) == "http.timeout"
    assert http_of(report).failure == "timeout"
    assert report.timings_ms.total is not None and report.timings_ms.total < 3000


@pytest.mark.anyio
async def test_garbage(base: str, pki: CertBook) -> None:
    report = await run(f"{base}/garbage", pki)
    assert code_of(report) == "http.protocol_error"
    http = http_of(report)
    assert http.peer_bytes is not None and http.peer_bytes.startswith("000102")
    assert http.peer_sent is not None and "unrecognised bytes" in http.peer_sent


@pytest.mark.anyio
async def test_closed_without_answer(base: str, pki: CertBook) -> None:
    report = await run(f"{base}/close", pki)
    assert code_of(report) == "l7.connection_closed"
    assert http_of(report).failure == "closed"


@pytest.mark.anyio
async def test_expect_status_and_method(base: str, pki: CertBook) -> None:
    report = await run(f"{base}/missing", pki, expect_status=[404])
    assert report.ok
    report = await run(f"{base}/health", pki, expect_status=[204])
    assert code_of(report) == "http.client_error"
    assert report.fault is not None and "expected" in report.fault.summary
    head = await run(f"{base}/health", pki, method="head")
    assert http_of(head).method == "HEAD" and http_of(head).body_bytes == 0


@pytest.mark.anyio
async def test_one_connection_per_http_diagnosis() -> None:
    with L7Server("http") as server:
        report = await diagnose(f"http://localhost:{server.port}/moved", **FAST)
        assert report.ok
        assert server.accepted == 1


@pytest.mark.anyio
async def test_bare_port_443_style_target_uses_https(https: L7Server, pki: CertBook) -> None:
    # A tls:// or https:// target walks TLS first; HTTP goes over the same connection.
    report = await run(f"https://127.0.0.1:{https.port}/health", pki)
    assert report.ok
    assert [s.name for s in report.steps] == ["dns", "tcp", "tls", "application"]


@pytest.mark.parametrize(
    ("http", "error", "code"),
    [
        (HttpResult(method="GET", url="u", status=500), None, "http.server_error"),
        (HttpResult(method="GET", url="u", status=429), None, "http.client_error"),
        (HttpResult(method="GET", url="u", failure="timeout"), None, "http.timeout"),
        (HttpResult(method="GET", url="u", failure="protocol"), None, "http.protocol_error"),
        (HttpResult(method="GET", url="u", failure="closed"), None, "l7.connection_closed"),
        (
            HttpResult(method="GET", url="u", failure="tls_alert", tls_alert="bad_certificate"),
            None,
            "tls.client_cert_required",
        ),
        (
            HttpResult(method="GET", url="u", failure="tls_alert", tls_alert="internal_error"),
            None,
            "tls.handshake_failed",
        ),
        (None, None, "http.timeout"),  # the total deadline cut the exchange (below)
    ],
)
def test_classification_rows(http: HttpResult | None, error: ErrorInfo | None, code: str) -> None:
    steps: list[Step] = []
    cut = None
    if http is None:
        cut = DeadlineCut(rung="application", timeout_s=10.0, at_ms=10000.0)
    else:
        steps = [ApplicationStep(status="failed", protocol="http", http=http, error=error)]
    verdict = classify(parse_target("https://api.example/health"), Options(), steps, deadline=cut)
    assert verdict.fault is not None and verdict.fault.code == code


@pytest.mark.anyio
async def test_a_deadline_during_the_exchange_says_so(base: str, pki: CertBook) -> None:
    """/hang reads the request and never answers; the total deadline (not read_timeout) ends
    it, and the summary says the deadline did, not that the read_timeout ran out."""
    report = await run(f"{base}/hang", pki, read_timeout=5.0, timeout=0.4)
    assert code_of(report) == "http.timeout"
    assert report.fault is not None and "total deadline" in report.fault.summary
    assert "read_timeout" not in report.fault.summary
    assert "diagnosis.deadline" in {w.code for w in report.warnings}


@pytest.mark.anyio
async def test_a_reset_after_the_request_reads_reset_not_closed() -> None:
    """A real peer that reads the request and answers with RST (SO_LINGER 0): the report
    keeps the socket's ECONNRESET, so the summary says "reset", not "closed"."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve() -> None:
        with srv:
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(5)
                conn.recv(65536)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        report = await diagnose(f"http://127.0.0.1:{port}/health", **FAST)
    finally:
        thread.join(timeout=5)
    assert code_of(report) == "l7.connection_closed"
    assert report.fault is not None and "reset the connection" in report.fault.summary
    app = report.step(ApplicationStep)
    assert app is not None and app.error is not None and app.error.errno_name == "ECONNRESET"
