"""Which box answered, against real proxies on loopback: nginx as a reverse proxy (upstream
refused, silent with a short proxy_connect_timeout, slower than proxy_read_timeout, an https
upstream with a bad certificate, grpc_pass to a dead gRPC server), HAProxy in http mode with
every backend down and in tcp mode with a dead backend, and a reverse proxy that speaks RFC
9209 (nplab/rfc9209proxy.py: a refused upstream, a bad upstream certificate). Each test
asserts the exact code and the proxy named. Servers start once per module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netprobe import diagnose
from netprobe.report import Report
from netprobe.steps import ApplicationStep
from netprobe.testing import CertBook, L7Server, SilentPort, closed_port
from nplab.realservers.haproxy import HAProxy
from nplab.realservers.nginx import Nginx, grpc_proxy, proxy
from nplab.realservers.pki import TlsFiles
from nplab.rfc9209proxy import Rfc9209Proxy

FAST: dict[str, Any] = {"read_timeout": 3.0, "timeout": 8.0, "icmp": False}


@pytest.fixture(scope="module")
def book() -> Iterator[CertBook]:
    with CertBook() as b:
        yield b


@pytest.fixture(scope="module")
def upstreams(book: CertBook) -> Iterator[dict[str, Any]]:
    with (
        L7Server("http") as slow,
        L7Server("tls", ssl_context=book.server_context("expired")) as expired,
        SilentPort() as silent,
    ):
        yield {"slow": slow, "expired": expired, "silent": silent, "dead": closed_port()}


@pytest.fixture(scope="module")
def nginx(upstreams: dict[str, Any], book: CertBook) -> Iterator[Nginx]:
    dead = f"127.0.0.1:{upstreams['dead']}"
    web = Nginx()
    web.site("refused", proxy(dead))
    web.site("silent", proxy(upstreams["silent"].address, connect_timeout=0.5))
    web.site("slow", proxy(f"127.0.0.1:{upstreams['slow'].port}", read_timeout=0.5))
    web.site(
        "tls",
        proxy(
            f"127.0.0.1:{upstreams['expired'].port}",
            https=True,
            verify_ca=book.ca_file,
            upstream_name="localhost",
        ),
    )
    web.site("grpc", grpc_proxy(dead), http2=True)
    with web:
        yield web


@pytest.fixture(scope="module")
def haproxy() -> Iterator[HAProxy]:
    dead = f"127.0.0.1:{closed_port()}"
    lb = HAProxy()
    lb.listen("web", mode="http", servers=[dead], check=True)
    lb.listen("tcp", mode="tcp", servers=[dead])
    with lb:
        lb.wait_backends_down("web")
        yield lb


def code_of(report: Report) -> str | None:
    return report.fault.code if report.fault else None


def via_of(report: Report) -> Any:
    assert report.fault is not None
    return report.fault.evidence[0].data.get("via")


@pytest.mark.anyio
async def test_nginx_upstream_refused_is_an_upstream_error(nginx: Nginx) -> None:
    """nginx's 502 page does not say why (only error.log does): upstream_error, not refused."""
    report = await diagnose(nginx.url("refused"), **FAST)
    assert code_of(report) == "http.upstream_error", report.fault
    assert via_of(report).startswith("nginx/")
    assert report.fault is not None
    assert "answered 502 Bad Gateway" in report.fault.summary
    assert "connect() failed (111: Connection refused)" in nginx.error_log


@pytest.mark.anyio
async def test_nginx_upstream_silent(nginx: Nginx) -> None:
    report = await diagnose(nginx.url("silent"), **FAST)
    assert code_of(report) == "http.upstream_timeout", report.fault
    assert via_of(report).startswith("nginx/")


@pytest.mark.anyio
async def test_nginx_upstream_slower_than_read_timeout(nginx: Nginx) -> None:
    report = await diagnose(nginx.url("slow", "/hang"), **FAST)
    assert code_of(report) == "http.upstream_timeout", report.fault
    assert report.fault is not None and "504 Gateway Time-out" in report.fault.summary


@pytest.mark.anyio
async def test_nginx_https_upstream_with_an_expired_certificate(nginx: Nginx) -> None:
    """The 502 bytes are those of a refused upstream: upstream_error (http.upstream_tls needs
    evidence on the wire, which nginx does not give)."""
    report = await diagnose(nginx.url("tls"), **FAST)
    assert code_of(report) == "http.upstream_error", report.fault
    assert "upstream SSL certificate verify error" in nginx.error_log


@pytest.mark.anyio
async def test_grpc_through_nginx_to_a_dead_server(nginx: Nginx) -> None:
    report = await diagnose(f"grpc://127.0.0.1:{nginx.port_of('grpc')}", **FAST)
    assert code_of(report) == "http.upstream_error", report.fault
    assert via_of(report).startswith("nginx/")
    app = report.step(ApplicationStep)
    assert app is not None and app.grpc is not None and app.grpc.http_status == 502
    assert report.fault is not None and report.fault.summary.startswith("grpc://")


@pytest.mark.anyio
async def test_haproxy_http_with_every_backend_down(haproxy: HAProxy) -> None:
    report = await diagnose(f"http://127.0.0.1:{haproxy.port_of('web')}/", **FAST)
    assert code_of(report) == "http.upstream_unavailable", report.fault
    assert via_of(report) == "HAProxy"
    assert report.fault is not None
    assert "No server is available to handle this request." in report.fault.evidence[0].observation


@pytest.mark.anyio
async def test_haproxy_tcp_mode_with_a_dead_backend(haproxy: HAProxy) -> None:
    """Accept, then FIN with nothing: l7.connection_closed, saying a TCP proxy in front of a
    dead backend looks exactly like this."""
    port = haproxy.port_of("tcp")
    for target in (f"http://127.0.0.1:{port}/", f"mysql://127.0.0.1:{port}"):
        report = await diagnose(target, **FAST)
        assert code_of(report) == "l7.connection_closed", (target, report.fault)
        assert report.fault is not None
        assert "dead backend" in report.fault.summary, report.fault.summary
        assert any("load balancer" in h for h in report.fault.hints), report.fault.hints
    # tcp:// checks the connect only, which works: healthy, as it should be.
    assert (await diagnose(f"tcp://127.0.0.1:{port}", **FAST)).ok


@pytest.mark.anyio
async def test_rfc9209_proxy_upstream_refused() -> None:
    with Rfc9209Proxy(("127.0.0.1", closed_port())) as edge:
        report = await diagnose(f"http://127.0.0.1:{edge.port}/health", **FAST)
    assert code_of(report) == "http.upstream_refused", report.fault
    assert via_of(report) == "nplab-proxy"
    assert report.fault is not None
    assert report.fault.evidence[0].data["proxy_status_error"] == "connection_refused"


@pytest.mark.anyio
async def test_rfc9209_proxy_upstream_certificate(
    upstreams: dict[str, Any], book: CertBook
) -> None:
    upstream = ("127.0.0.1", upstreams["expired"].port)
    with Rfc9209Proxy(upstream, tls_ca=book.ca_file, server_name="localhost") as edge:
        report = await diagnose(f"http://127.0.0.1:{edge.port}/health", **FAST)
    assert code_of(report) == "http.upstream_tls", report.fault
    assert report.fault is not None and "certificate has expired" in report.fault.summary + str(
        report.fault.evidence[0].data
    )


@pytest.mark.anyio
async def test_rfc9209_proxy_healthy_upstream(upstreams: dict[str, Any]) -> None:
    with Rfc9209Proxy(("127.0.0.1", upstreams["slow"].port)) as edge:
        report = await diagnose(f"http://127.0.0.1:{edge.port}/health", **FAST)
    assert report.ok, report.fault


def test_nginx_tls_files_exist(book: CertBook) -> None:
    """(The harness's TlsFiles is what the catalog's nginx TLS sites use.)"""
    cert, key = book.cert_files("valid")
    files = TlsFiles(chain=Path(cert), key=Path(key), combined=Path(cert), ca=Path(book.ca_file))
    assert files.chain.exists() and files.key.exists()
