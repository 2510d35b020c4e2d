"""The gRPC health check against real peers on loopback.

grpcio (the reference implementation, with grpcio-health-checking) runs in a child process
(nplab/realservers/grpc_server.py): serving, not serving, unknown services, no health
service, an error status, a slow health handler, TLS with a test CA, TLS requiring a client
certificate. nginx (the Debian package) plays the web servers a gRPC target may hit by
mistake; the h2 library's server side (nplab/h2peer.py) plays what proxies and broken
servers send (RST_STREAM, GOAWAY, a 502 page, ...); netprobe.testing's loopback servers play
silence, a reset and plain HTTP/1.1. Servers start once per session; read timeouts are short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from netprobe import diagnose
from netprobe.probes._io import stream_from_socket
from netprobe.probes.grpc import probe_grpc
from netprobe.probes.tcp import connect_address
from netprobe.report import Report
from netprobe.steps import ApplicationStep, GrpcResult, TlsStep
from netprobe.testing import CertBook, L7Server
from nplab.h2peer import H2_MODES, H2Peer
from nplab.realservers.grpc_server import GrpcServers
from nplab.realservers.nginx import Nginx, static
from nplab.realservers.pki import TlsFiles

FAST: dict[str, Any] = {"read_timeout": 1.0, "timeout": 5.0, "icmp": False}
STATUSES = {"": "SERVING", "shop.Orders": "SERVING", "shop.Down": "NOT_SERVING"}


@pytest.fixture(scope="session")
def pki() -> Iterator[CertBook]:
    with CertBook() as book:
        yield book


@pytest.fixture(scope="session")
def grpc_servers(pki: CertBook) -> Iterator[dict[str, int]]:
    cert, key = pki.cert_files("valid")
    spec: dict[str, dict[str, Any]] = {
        "plain": {"kind": "health", "statuses": {**STATUSES, "shop.Starting": "UNKNOWN"}},
        "unset": {"kind": "health", "statuses": {"shop.Orders": "SERVING"}},
        "tls": {"kind": "health", "statuses": STATUSES, "cert": cert, "key": key},
        "mtls": {
            "kind": "health",
            "statuses": STATUSES,
            "cert": cert,
            "key": key,
            "client_ca": pki.ca_file,
        },
        "no_health": {"kind": "no_health"},
        "denied": {
            "kind": "error",
            "code": "PERMISSION_DENIED",
            "message": "token required: é 100%",
        },
        "slow": {"kind": "slow", "delay": 5.0},
    }
    with GrpcServers(spec) as servers:
        yield servers.ports


@pytest.fixture(scope="session")
def nginx(pki: CertBook) -> Iterator[dict[str, int]]:
    """Real nginx as the web servers a gRPC target may hit by mistake: HTTP/1.1 only, TLS
    without h2 in its ALPN, and cleartext HTTP/2 without a gRPC route (404)."""
    cert, key = pki.cert_files("valid")
    files = TlsFiles(chain=Path(cert), key=Path(key), combined=Path(cert), ca=Path(pki.ca_file))
    web = Nginx()
    web.site("http1", static())
    web.site("tls_http1", static(), tls=files)
    web.site("h2c", "location / { return 404; }", http2=True)
    with web:
        yield {label: web.port_of(label) for label in ("http1", "tls_http1", "h2c")}


@pytest.fixture(scope="session")
def plain_servers(pki: CertBook) -> Iterator[dict[str, L7Server]]:
    made: dict[str, L7Server] = {}
    try:
        made["http"] = L7Server("http")
        made["tls"] = L7Server("tls", ssl_context=pki.server_context("valid"))
        made["silent"] = L7Server("silent")
        made["reset"] = L7Server("reset")
        yield made
    finally:
        for server in made.values():
            server.close()


@pytest.fixture(scope="session")
def h2_peers() -> Iterator[dict[str, int]]:
    peers = [H2Peer(mode) for mode in H2_MODES]
    try:
        yield {p.mode: p.port for p in peers}
    finally:
        for p in peers:
            p.close()


async def run(target: str, pki: CertBook | None = None, **kwargs: Any) -> Report:
    opts = {**FAST, **({"ca_file": pki.ca_file} if pki else {}), **kwargs}
    return await diagnose(target, **opts)


def grpc_of(report: Report) -> GrpcResult:
    app = report.step(ApplicationStep)
    assert app is not None and app.protocol == "grpc", report.steps
    assert app.grpc is not None, app
    return app.grpc


def code_of(report: Report) -> str | None:
    return report.fault.code if report.fault else None


# ---------------------------------------------------------------------------- grpcio


@pytest.mark.anyio
async def test_serving(grpc_servers: dict[str, int]) -> None:
    report = await run(f"grpc://127.0.0.1:{grpc_servers['plain']}")
    assert report.ok, report.fault
    res = grpc_of(report)
    assert res.healthy and res.health_status_name == "SERVING"
    assert res.grpc_status == 0 and res.status_from == "trailers"
    assert res.http2 and res.settings_acked and res.http_status == 200
    assert res.headers["content-type"] == "application/grpc"
    assert res.server_settings["MAX_FRAME_SIZE"] >= 16384
    assert res.first_byte_ms is not None and res.response_ms is not None
    t = report.timings_ms
    assert t.tcp_connect is not None and t.first_byte is not None and t.total is not None
    assert t.tcp_connect <= t.first_byte <= t.total


@pytest.mark.anyio
async def test_serving_named_service(grpc_servers: dict[str, int]) -> None:
    report = await run(f"grpc://127.0.0.1:{grpc_servers['plain']}/shop.Orders")
    assert report.ok, report.fault
    assert grpc_of(report).service == "shop.Orders"


@pytest.mark.anyio
async def test_not_serving(grpc_servers: dict[str, int]) -> None:
    report = await run(f"grpc://127.0.0.1:{grpc_servers['plain']}/shop.Down")
    assert code_of(report) == "grpc.not_serving"
    assert report.fault is not None and "'shop.Down' is NOT_SERVING" in report.fault.summary
    assert grpc_of(report).health_status == 2


@pytest.mark.anyio
async def test_unknown_health_is_not_healthy(grpc_servers: dict[str, int]) -> None:
    report = await run(f"grpc://127.0.0.1:{grpc_servers['plain']}/shop.Starting")
    assert code_of(report) == "grpc.not_serving"
    assert grpc_of(report).health_status_name == "UNKNOWN"


@pytest.mark.anyio
async def test_unknown_service(grpc_servers: dict[str, int]) -> None:
    report = await run(f"grpc://127.0.0.1:{grpc_servers['plain']}/shop.Nope")
    assert code_of(report) == "grpc.unknown_service"
    res = grpc_of(report)
    assert res.grpc_status_name == "NOT_FOUND"
    # grpcio's HealthServicer sets NOT_FOUND but still sends an (empty) response message.
    assert res.status_from == "trailers" and res.body_bytes == 5


@pytest.mark.anyio
async def test_grpcio_says_serving_for_the_whole_server_unless_told(
    grpc_servers: dict[str, int],
) -> None:
    """grpcio's HealthServicer starts with '' SERVING: the overall check passes for a server
    that never set a status, while a named service it does not know is NOT_FOUND. (The
    overall NOT_FOUND of other servers is a table row in tests/test_grpc_classify.py.)"""
    overall = await run(f"grpc://127.0.0.1:{grpc_servers['unset']}")
    assert overall.ok, overall.fault
    named = await run(f"grpc://127.0.0.1:{grpc_servers['unset']}/shop.Payments")
    assert code_of(named) == "grpc.unknown_service"


@pytest.mark.anyio
async def test_no_health_service(grpc_servers: dict[str, int]) -> None:
    report = await run(f"grpc://127.0.0.1:{grpc_servers['no_health']}")
    assert code_of(report) == "grpc.no_health_service"
    res = grpc_of(report)
    assert res.grpc_status_name == "UNIMPLEMENTED" and res.trailers_only


@pytest.mark.anyio
async def test_other_status_with_percent_encoded_message(grpc_servers: dict[str, int]) -> None:
    report = await run(f"grpc://127.0.0.1:{grpc_servers['denied']}")
    assert code_of(report) == "grpc.error"
    res = grpc_of(report)
    assert res.grpc_status_name == "PERMISSION_DENIED"
    assert res.grpc_message == "token required: é 100%"
    assert res.trailers["grpc-message"] == "token required: %C3%A9 100%25"
    assert report.fault is not None and "token required: é 100%" in report.fault.summary


@pytest.mark.anyio
async def test_slow_health_handler_is_a_timeout(grpc_servers: dict[str, int]) -> None:
    report = await run(f"grpc://127.0.0.1:{grpc_servers['slow']}", read_timeout=0.5)
    assert code_of(report) == "grpc.timeout"
    res = grpc_of(report)
    assert res.http2 and res.http_status is None
    assert report.fault is not None and "HTTP/2 is up" in report.fault.summary
    assert report.timings_ms.total is not None and report.timings_ms.total < 2000


@pytest.mark.anyio
async def test_grpcs(grpc_servers: dict[str, int], pki: CertBook) -> None:
    report = await run(f"grpcs://localhost:{grpc_servers['tls']}/shop.Orders", pki)
    assert report.ok, report.fault
    tls = report.step(TlsStep)
    assert tls is not None and tls.status == "ok" and tls.alpn == "h2"
    res = grpc_of(report)
    assert res.tls and res.alpn == "h2" and res.healthy


@pytest.mark.anyio
async def test_grpcs_not_serving(grpc_servers: dict[str, int], pki: CertBook) -> None:
    report = await run(f"grpcs://localhost:{grpc_servers['tls']}/shop.Down", pki)
    assert code_of(report) == "grpc.not_serving"


@pytest.mark.anyio
async def test_grpcs_untrusted_certificate_is_the_tls_rung(
    grpc_servers: dict[str, int],
) -> None:
    report = await run(f"grpcs://localhost:{grpc_servers['tls']}")  # no test CA given
    assert code_of(report) == "tls.cert_untrusted"
    assert report.step(ApplicationStep) is None


@pytest.mark.anyio
async def test_grpcs_client_certificate_required(
    grpc_servers: dict[str, int], pki: CertBook
) -> None:
    """grpcio completes the TLS 1.3 handshake, then closes without an alert (no
    certificate_required): the hint names the client certificate."""
    report = await run(f"grpcs://localhost:{grpc_servers['mtls']}", pki)
    assert code_of(report) == "l7.connection_closed"
    assert report.fault is not None
    assert "client certificate (mTLS)" in report.fault.hints[0]
    ok = await run(
        f"grpcs://localhost:{grpc_servers['mtls']}",
        pki,
        client_cert=pki.client_cert_file,
        client_key=pki.client_key_file,
    )
    assert ok.ok, ok.fault


@pytest.mark.anyio
async def test_client_certificate_alert_after_the_handshake(pki: CertBook) -> None:
    """A TLS 1.3 server that sends certificate_required on the first read (OpenSSL's):
    the alert lands in the gRPC exchange and is a TLS verdict, not a gRPC one: the client
    certificate the server requires."""
    import ssl

    ctx = pki.server_context(require_client_cert=True, minimum_version=ssl.TLSVersion.TLSv1_3)
    with L7Server("tls", ssl_context=ctx) as server:
        report = await run(f"grpcs://localhost:{server.port}", pki)
    assert code_of(report) == "tls.client_cert_required"
    assert report.fault is not None and "client certificate" in report.fault.summary
    res = grpc_of(report)
    assert res.failure == "tls_alert" and res.tls_alert == "certificate_required"


@pytest.mark.anyio
async def test_grpcs_on_a_cleartext_grpc_port(grpc_servers: dict[str, int]) -> None:
    """grpcio answers a ClientHello with its HTTP/2 server preface: the TLS rung names it."""
    port = grpc_servers["plain"]
    report = await run(f"grpcs://127.0.0.1:{port}/shop.Orders")
    assert code_of(report) == "tls.not_tls"
    assert report.fault is not None
    assert "an HTTP/2 SETTINGS frame" in report.fault.summary
    assert f"use grpc://127.0.0.1:{port}/shop.Orders" in report.fault.hints[0]


@pytest.mark.anyio
async def test_plain_grpc_on_a_tls_port(grpc_servers: dict[str, int]) -> None:
    report = await run(f"grpc://127.0.0.1:{grpc_servers['tls']}")
    assert code_of(report) == "l7.connection_closed"
    assert report.fault is not None
    assert f"grpcs://127.0.0.1:{grpc_servers['tls']}" in report.fault.hints[0]


# ---------------------------------------------------------------------------- not gRPC


@pytest.mark.anyio
async def test_nginx_http1_on_a_grpc_target(nginx: dict[str, int]) -> None:
    report = await run(f"grpc://127.0.0.1:{nginx['http1']}")
    assert code_of(report) == "grpc.not_grpc"
    assert report.fault is not None
    assert "an HTTP/1.1 server (nginx/" in report.fault.summary
    assert "answered 400" in report.fault.summary
    res = grpc_of(report)
    assert res.failure == "not_http2" and res.http_version == "HTTP/1.1"
    assert res.http_status == 400 and res.headers["server"].startswith("nginx")
    assert res.body_preview is not None and "400 Bad Request" in res.body_preview


@pytest.mark.anyio
async def test_nginx_tls_without_h2(nginx: dict[str, int], pki: CertBook) -> None:
    report = await run(f"grpcs://localhost:{nginx['tls_http1']}", pki)
    tls = report.step(TlsStep)
    assert tls is not None and tls.status == "ok" and tls.alpn == "http/1.1"
    assert code_of(report) == "grpc.not_grpc"
    assert report.fault is not None
    assert "did not agree to HTTP/2: ALPN chose http/1.1" in report.fault.summary


@pytest.mark.anyio
async def test_plain_grpc_on_nginx_tls_port(nginx: dict[str, int]) -> None:
    """nginx answers cleartext on its TLS port in cleartext, with an HTTP/1.1 400."""
    report = await run(f"grpc://127.0.0.1:{nginx['tls_http1']}")
    assert code_of(report) == "grpc.not_grpc"
    res = grpc_of(report)
    assert res.http_status == 400 and res.body_preview is not None
    assert "nginx" in res.body_preview


@pytest.mark.anyio
async def test_nginx_http2_without_a_grpc_route(nginx: dict[str, int]) -> None:
    report = await run(f"grpc://127.0.0.1:{nginx['h2c']}")
    assert code_of(report) == "grpc.not_grpc"
    assert report.fault is not None and "speaks HTTP/2 but not gRPC" in report.fault.summary
    res = grpc_of(report)
    assert res.http2 and res.http_status == 404 and res.status_from == "http_status"
    assert res.grpc_status_name == "UNIMPLEMENTED"  # synthesised, as a gRPC client would


@pytest.mark.anyio
async def test_python_http1_server(plain_servers: dict[str, L7Server]) -> None:
    report = await run(f"grpc://127.0.0.1:{plain_servers['http'].port}")
    assert code_of(report) == "grpc.not_grpc"
    assert grpc_of(report).headers["server"] == "netprobe-demo"


@pytest.mark.anyio
async def test_tls_server_without_alpn(plain_servers: dict[str, L7Server], pki: CertBook) -> None:
    report = await run(f"grpcs://localhost:{plain_servers['tls'].port}", pki)
    assert code_of(report) == "grpc.not_grpc"
    assert grpc_of(report).alpn == "http/1.1"


@pytest.mark.anyio
async def test_grpc_on_a_plain_tls_port_says_use_grpcs(pki: CertBook) -> None:
    """Python's TLS server fails the handshake on the HTTP/2 preface and closes quietly."""
    with L7Server("tls", ssl_context=pki.server_context("valid")) as server:
        report = await run(f"grpc://127.0.0.1:{server.port}")
    assert code_of(report) == "l7.connection_closed"
    assert report.fault is not None and "grpcs://" in report.fault.hints[0]


@pytest.mark.anyio
async def test_silence(plain_servers: dict[str, L7Server]) -> None:
    report = await run(f"grpc://127.0.0.1:{plain_servers['silent'].port}", read_timeout=0.3)
    assert code_of(report) == "grpc.timeout"
    assert report.fault is not None and "not even the HTTP/2 SETTINGS" in report.fault.summary


@pytest.mark.anyio
async def test_reset(plain_servers: dict[str, L7Server]) -> None:
    report = await run(f"grpc://127.0.0.1:{plain_servers['reset'].port}")
    assert code_of(report) == "l7.connection_closed"
    assert report.fault is not None and "reset the connection" in report.fault.summary
    res = grpc_of(report)
    assert res.error is not None and res.error.errno_name == "ECONNRESET"


# ---------------------------------------------------------------------------- odd HTTP/2 peers

ODD = {
    "rst_refused": ("grpc.error", "RST_STREAM REFUSED_STREAM"),
    "goaway": ("grpc.error", "GOAWAY ENHANCE_YOUR_CALM: too_many_pings"),
    "bad_flag": ("grpc.error", "flag 2 is neither 0 nor 1"),
    "no_message": ("grpc.error", "without a response message"),
    "two_messages": ("grpc.error", "more than one response message"),
    "bad_status": ("grpc.error", "grpc-status 'OK' is not a number"),
    "compressed": ("grpc.error", "a compressed message"),
    "unknown_health": ("grpc.not_serving", "an unknown status (7)"),
    "service_unknown": ("grpc.unknown_service", "SERVICE_UNKNOWN"),
    # Proxies about their upstream: classify/proxy.py names them (its words, Proxy-Status).
    "envoy_unavailable": ("http.upstream_error", "envoy answered gRPC UNAVAILABLE"),
    "proxy_502": ("http.upstream_refused", "edge-proxy answered 502"),
    "trickle": ("grpc.timeout", "HTTP/2 is up"),
    "flood": ("grpc.error", "more than 256 KiB and no end"),
}


def test_every_odd_peer_mode_has_a_verdict() -> None:
    assert set(ODD) == set(H2_MODES)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", sorted(ODD))
async def test_odd_http2_peers(mode: str, h2_peers: dict[str, int]) -> None:
    code, fragment = ODD[mode]
    # A flood needs a moment to pass the 256 KiB cap through HTTP/2 flow control.
    read_timeout = 3.0 if mode == "flood" else 0.5
    report = await run(f"grpc://127.0.0.1:{h2_peers[mode]}", read_timeout=read_timeout)
    assert code_of(report) == code, report.fault
    assert report.fault is not None, report.steps
    assert fragment in report.fault.summary, report.fault.summary
    assert report.timings_ms.total is not None and report.timings_ms.total < 4000


@pytest.mark.anyio
async def test_proxy_502_evidence_is_recorded_faithfully(h2_peers: dict[str, int]) -> None:
    res = grpc_of(await run(f"grpc://127.0.0.1:{h2_peers['proxy_502']}"))
    assert res.failure == "not_grpc" and res.http_status == 502
    assert res.headers["server"] == "edge-proxy" and res.headers["via"] == "1.1 edge-proxy"
    assert res.headers["proxy-status"] == "edge-proxy; error=connection_refused"
    assert res.body_preview is not None and "502 Bad Gateway" in res.body_preview
    assert res.grpc_status_name == "UNAVAILABLE" and res.status_from == "http_status"


# ---------------------------------------------------------------------------- standalone


@pytest.mark.anyio
async def test_probe_grpc_standalone(grpc_servers: dict[str, int]) -> None:
    """A stream in, a GrpcResult out: no ladder, no ProbeContext."""
    port = grpc_servers["plain"]
    attempt, sock = await connect_address("127.0.0.1", port, 1.0)
    assert sock is not None, attempt
    async with await stream_from_socket(sock) as stream:
        res = await probe_grpc(
            stream, authority=f"127.0.0.1:{port}", service="shop.Down", read_timeout=1.0
        )
    assert res.failure is None and res.health_status_name == "NOT_SERVING"
    assert not res.healthy and res.reason == "'shop.Down' is NOT_SERVING"


@pytest.mark.anyio
async def test_outer_cancellation_propagates(plain_servers: dict[str, L7Server]) -> None:
    port = plain_servers["silent"].port
    attempt, sock = await connect_address("127.0.0.1", port, 1.0)
    assert sock is not None, attempt
    async with await stream_from_socket(sock) as stream:
        with anyio.move_on_after(0.2) as scope:
            await probe_grpc(stream, authority=f"127.0.0.1:{port}", read_timeout=5.0)
    assert scope.cancelled_caught


@pytest.mark.anyio
async def test_total_deadline_cuts_the_call(plain_servers: dict[str, L7Server]) -> None:
    report = await run(
        f"grpc://127.0.0.1:{plain_servers['silent'].port}", read_timeout=5.0, timeout=0.6
    )
    assert code_of(report) == "grpc.timeout"
    assert report.timings_ms.total is not None and report.timings_ms.total < 1500
    assert "diagnosis.deadline" in report.warning_codes() or (
        report.fault is not None and "before the total deadline" in report.fault.summary
    )


@pytest.mark.anyio
async def test_no_descriptor_leaks(
    grpc_servers: dict[str, int], plain_servers: dict[str, L7Server], h2_peers: dict[str, int]
) -> None:
    targets = [
        f"grpc://127.0.0.1:{grpc_servers['plain']}",
        f"grpc://127.0.0.1:{grpc_servers['no_health']}",
        f"grpc://127.0.0.1:{plain_servers['reset'].port}",
        f"grpc://127.0.0.1:{plain_servers['http'].port}",
        f"grpc://127.0.0.1:{h2_peers['goaway']}",
    ]
    await run(targets[0])  # first-use imports and caches
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        for target in targets:
            await run(target)
    # The loopback servers run in this process: their threads close their ends just after.
    after = len(os.listdir("/proc/self/fd"))
    for _ in range(100):
        if after <= before:
            break
        await anyio.sleep(0.05)
        after = len(os.listdir("/proc/self/fd"))
    assert after <= before


# ---------------------------------------------------------------------------- CLI, imports


def test_cli_diagnoses_a_grpc_target(grpc_servers: dict[str, int]) -> None:
    port = grpc_servers["plain"]
    ok = subprocess.run(
        [sys.executable, "-m", "netprobe.cli", "diagnose", f"grpc://127.0.0.1:{port}", "--no-icmp"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "HEALTHY" in ok.stdout
    assert "Health/Check → HTTP/2 200, grpc-status 0 OK, SERVING" in ok.stdout
    down = subprocess.run(
        [
            sys.executable,
            "-m",
            "netprobe.cli",
            "diagnose",
            f"grpc://127.0.0.1:{port}/shop.Down",
            "--no-icmp",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 1, down.stderr
    data = json.loads(down.stdout)
    assert data["fault"]["code"] == "grpc.not_serving"
    assert data["steps"][-1]["grpc"]["health_status_name"] == "NOT_SERVING"


def test_example_checks_a_grpc_server(grpc_servers: dict[str, int]) -> None:
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "grpc_health.py")
    target = f"grpc://127.0.0.1:{grpc_servers['plain']}"
    ok = subprocess.run(
        [sys.executable, example, target], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert '"health_status_name": "SERVING"' in ok.stdout and ok.stdout.endswith("SERVING\n")
    down = subprocess.run(
        [sys.executable, example, f"{target}/shop.Down"], capture_output=True, text=True, timeout=60
    )
    assert down.returncode == 1, down.stderr
    assert "grpc.not_serving: " in down.stdout


def test_cli_rejects_a_grpc_target_without_port() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "netprobe.cli", "diagnose", "grpc://orders.internal"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "gRPC has no well-known port" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_h2_is_imported_only_for_grpc_targets(tcp_server: Any) -> None:
    code = (
        "import sys, anyio, netprobe\n"
        "from netprobe.classify import classify\n"
        f"anyio.run(lambda: netprobe.diagnose('tcp://{tcp_server.address}', icmp=False))\n"
        "assert 'h2' not in sys.modules and 'hpack' not in sys.modules, 'h2 imported'\n"
        "assert 'grpc' not in sys.modules, 'grpcio imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


@pytest.mark.anyio
async def test_pool_of_grpc_connections(grpc_servers: dict[str, int]) -> None:
    """probe_pool holds HTTP/2 connections; after the hold each is checked again on a new
    stream of the same connection."""
    from netprobe import probe_pool

    port = grpc_servers["plain"]
    pool = await probe_pool(f"grpc://127.0.0.1:{port}/shop.Orders", size=3, hold=0.2, icmp=False)
    assert pool.ok, pool.summary
    assert pool.opened == 3 and pool.held_ok == 3
    down = await probe_pool(f"grpc://127.0.0.1:{port}/shop.Down", size=2, icmp=False)
    assert not down.ok and down.most_common_fault == "grpc.not_serving"
