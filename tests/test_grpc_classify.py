"""gRPC health classification is pure: a table of GrpcResult rows -> codes, no socket, no loop.

Every gRPC code is reachable from a row here; tests/test_grpc.py shows the same verdicts
against real servers.
"""

from __future__ import annotations

from typing import Any

import pytest

from netprobe.classify import classify
from netprobe.options import Options, make_options
from netprobe.report import FAULT_CODES, Fault
from netprobe.steps import ApplicationStep, DeadlineCut, ErrorInfo, GrpcResult, TcpStep
from netprobe.target import Target, parse_target

TARGET = parse_target("grpc://orders.internal:50051/shop.Orders")
OVERALL = parse_target("grpc://orders.internal:50051")
TLS_TARGET = parse_target("grpcs://orders.internal:443")
OPTIONS = make_options(None, read_timeout=2.0)

H2: dict[str, Any] = {"http2": True, "settings_acked": True, "http_version": "HTTP/2"}
OK_HEADERS: dict[str, Any] = {
    **H2,
    "http_status": 200,
    "headers": {"content-type": "application/grpc"},
}


def _steps(app: ApplicationStep | None) -> list[Any]:
    tcp = TcpStep(status="ok", connected_to="10.0.0.7", timeout_s=3.0)
    return [tcp] if app is None else [tcp, app]


def grpc_fault(target: Target, options: Options, res: GrpcResult) -> Fault | None:
    """The verdict of the whole rule table (classify()) for a ladder that got this far."""
    app = ApplicationStep(
        status="ok" if res.healthy else "failed", protocol="grpc", reason=res.reason, grpc=res
    )
    return classify(target, options, _steps(app)).fault


def result(**fields: Any) -> GrpcResult:
    return GrpcResult.model_validate(
        {"authority": "orders.internal:50051", "service": "shop.Orders", **fields}
    )


def status(code: int, name: str, message: str | None = None, **more: Any) -> GrpcResult:
    fields = {
        **OK_HEADERS,
        "grpc_status": code,
        "grpc_status_name": name,
        "grpc_message": message,
        "status_from": "trailers_only",
        **more,
    }
    return result(**fields)


def health(number: int, name: str | None) -> GrpcResult:
    return result(
        **OK_HEADERS,
        grpc_status=0,
        grpc_status_name="OK",
        status_from="trailers",
        health_status=number,
        health_status_name=name,
        healthy=number == 1,
    )


ROWS: list[tuple[str, GrpcResult, str | None, str]] = [
    # id, result, code, a fragment of the summary
    ("serving", health(1, "SERVING"), None, ""),
    ("not_serving", health(2, "NOT_SERVING"), "grpc.not_serving", "'shop.Orders' is NOT_SERVING"),
    ("unknown", health(0, "UNKNOWN"), "grpc.not_serving", "its health is not known"),
    ("enum_7", health(7, None), "grpc.not_serving", "an unknown status (7)"),
    ("service_unknown", health(3, "SERVICE_UNKNOWN"), "grpc.unknown_service", "SERVICE_UNKNOWN"),
    ("not_found", status(5, "NOT_FOUND"), "grpc.unknown_service", "does not know service"),
    (
        "unimplemented",
        status(12, "UNIMPLEMENTED", "Method not found!"),
        "grpc.no_health_service",
        "does not expose the standard health service",
    ),
    (
        "deadline",
        status(4, "DEADLINE_EXCEEDED", timeout_s=2.0),
        "grpc.timeout",
        "gave up on the gRPC health check itself",
    ),
    (
        "permission",
        status(7, "PERMISSION_DENIED", "token required"),
        "grpc.error",
        "PERMISSION_DENIED (7): token required",
    ),
    (
        "envoy",
        status(14, "UNAVAILABLE", "upstream connect error", headers={"server": "envoy"}),
        "grpc.error",
        "UNAVAILABLE (14)",
    ),
    ("code_42", status(42, "CODE_42"), "grpc.error", "CODE_42 (42)"),
    (
        "silence",
        result(failure="timeout", timeout_s=2.0),
        "grpc.timeout",
        "sent nothing within 2 s (read_timeout), not even the HTTP/2 SETTINGS",
    ),
    (
        "silence_at_deadline",
        result(failure="timeout", timeout_s=0.7),
        "grpc.timeout",
        "before the total deadline",
    ),
    (
        "no_settings",
        result(failure="timeout", bytes_received=3, timeout_s=2.0),
        "grpc.timeout",
        "sent 3 bytes, but no HTTP/2 SETTINGS",
    ),
    (
        "slow_handler",
        result(failure="timeout", bytes_received=85, timeout_s=2.0, **H2),
        "grpc.timeout",
        "HTTP/2 is up, but the health check got no response headers",
    ),
    (
        "no_trailers",
        result(failure="timeout", bytes_received=120, timeout_s=2.0, **OK_HEADERS),
        "grpc.timeout",
        "the response headers came, but no gRPC status",
    ),
    (
        "http1_nginx",
        result(
            failure="not_http2",
            peer_sent="an HTTP response (HTTP/1.1 400 Bad Request)",
            http_version="HTTP/1.1",
            http_status=400,
            headers={"server": "nginx/1.22.1", "content-type": "text/html"},
            bytes_received=300,
        ),
        "grpc.not_grpc",
        "an HTTP/1.1 server (nginx/1.22.1) answered 400: it does not speak HTTP/2",
    ),
    (
        "tls_port",
        result(failure="not_http2", peer_sent="a TLS alert record", bytes_received=7),
        "grpc.not_grpc",
        "the port speaks TLS (TLS alert record)",
    ),
    (
        "ssh",
        result(failure="not_http2", peer_sent="an SSH banner (SSH-2.0-OpenSSH_9.2)"),
        "grpc.not_grpc",
        "it sent an SSH banner",
    ),
    (
        "h2_web_404",
        result(
            **H2,
            failure="not_grpc",
            http_status=404,
            headers={"server": "nginx", "content-type": "text/html"},
            grpc_status=12,
            grpc_status_name="UNIMPLEMENTED",
            status_from="http_status",
        ),
        "grpc.not_grpc",
        "speaks HTTP/2 but not gRPC: an HTTP/2 server (nginx) answered the health check with "
        "HTTP 404 (text/html)",
    ),
    (
        "proxy_502",
        result(
            **H2,
            failure="not_grpc",
            http_status=502,
            headers={"server": "nginx", "content-type": "text/html", "via": "1.1 lb"},
            grpc_status=14,
            grpc_status_name="UNAVAILABLE",
            status_from="http_status",
            body_preview="<html>502 Bad Gateway</html>",
        ),
        "grpc.error",
        "an HTTP/2 proxy or load balancer (nginx) answered HTTP 502",
    ),
    (
        "gateway_401",
        result(
            **H2,
            failure="not_grpc",
            http_status=401,
            grpc_status=16,
            grpc_status_name="UNAUTHENTICATED",
            status_from="http_status",
        ),
        "grpc.error",
        "refused the call with HTTP 401",
    ),
    (
        "reset_at_once",
        result(
            failure="closed",
            error=ErrorInfo(type="ConnectionResetError", errno=104, errno_name="ECONNRESET"),
        ),
        "l7.connection_closed",
        "reset the connection without sending anything",
    ),
    ("closed_at_once", result(failure="closed"), "l7.connection_closed", "closed the connection"),
    (
        "closed_mid_call",
        result(failure="closed", bytes_received=90, **H2),
        "l7.connection_closed",
        "after the HTTP/2 SETTINGS, before answering the health check",
    ),
    (
        "rst_stream",
        result(
            **H2,
            failure="reset_stream",
            rst_stream="REFUSED_STREAM",
            grpc_status=14,
            grpc_status_name="UNAVAILABLE",
            status_from="rst_stream",
        ),
        "grpc.error",
        "RST_STREAM REFUSED_STREAM",
    ),
    (
        "goaway",
        result(
            **H2,
            failure="goaway",
            goaway="ENHANCE_YOUR_CALM",
            goaway_debug="too_many_pings",
            grpc_status=14,
            grpc_status_name="UNAVAILABLE",
        ),
        "grpc.error",
        "GOAWAY ENHANCE_YOUR_CALM: too_many_pings",
    ),
    (
        "broken",
        result(
            **OK_HEADERS,
            failure="protocol",
            protocol_error="gRPC message flag 2 is neither 0 nor 1",
            grpc_status=13,
            grpc_status_name="INTERNAL",
        ),
        "grpc.error",
        "sent a broken answer (gRPC message flag 2 is neither 0 nor 1): a gRPC client sees "
        "INTERNAL",
    ),
    (
        "tls_alert",
        result(failure="tls_alert", tls_alert="certificate_required", tls=True, alpn="h2"),
        "tls.client_cert_required",
        "requires a client certificate",
    ),
]


@pytest.mark.parametrize(("row", "res", "code", "fragment"), ROWS, ids=[r[0] for r in ROWS])
def test_rows(row: str, res: GrpcResult, code: str | None, fragment: str) -> None:
    found = grpc_fault(TARGET, OPTIONS, res)
    if code is None:
        assert found is None
        return
    assert found is not None
    assert found.code == code, found
    assert fragment in found.summary, found.summary
    assert found.layer == "l7"
    assert found.hints, "every gRPC verdict says what to check next"
    assert "\n" not in found.summary


GRPC_CODES = {code for code in FAULT_CODES if code.startswith("grpc.")}


def test_every_grpc_code_is_reachable_from_a_row() -> None:
    codes = {code for _, _, code, _ in ROWS}
    assert codes >= GRPC_CODES


def test_grpc_codes_are_l7() -> None:
    assert len(GRPC_CODES) == 6
    assert all(FAULT_CODES[code][0] == "l7" for code in GRPC_CODES)


def test_overall_health_without_a_status_says_how_to_set_it() -> None:
    res = result(**OK_HEADERS, service="", grpc_status=5, grpc_status_name="NOT_FOUND")
    found = grpc_fault(OVERALL, OPTIONS, res)
    assert found is not None and found.code == "grpc.unknown_service"
    assert "the server as a whole" in found.summary
    assert any("health_servicer.set('', SERVING)" in h for h in found.hints)


def test_tls_server_without_h2_is_named() -> None:
    res = result(
        failure="not_http2",
        tls=True,
        alpn="http/1.1",
        peer_sent="an HTTP response (HTTP/1.1 400 Bad Request)",
        http_version="HTTP/1.1",
        http_status=400,
        headers={"server": "nginx"},
    )
    found = grpc_fault(TLS_TARGET, OPTIONS, res)
    assert found is not None and found.code == "grpc.not_grpc"
    assert "the TLS server did not agree to HTTP/2: ALPN chose http/1.1" in found.summary


def test_plain_grpc_on_a_tls_port_hints_grpcs() -> None:
    found = grpc_fault(TARGET, OPTIONS, result(failure="not_http2", peer_sent="a TLS alert record"))
    assert found is not None
    assert found.hints == ("Use grpcs://orders.internal:50051/shop.Orders.",)
    closed = grpc_fault(TARGET, OPTIONS, result(failure="closed"))
    assert closed is not None and "grpcs://orders.internal:50051" in closed.hints[0]


def test_proxy_evidence_is_kept_for_the_proxy_rules() -> None:
    res = ROWS[[r[0] for r in ROWS].index("proxy_502")][1]
    found = grpc_fault(TARGET, OPTIONS, res)
    assert found is not None
    data = found.evidence[0].data
    assert data["http_status"] == 502
    assert data["header_server"] == "nginx" and data["header_via"] == "1.1 lb"
    assert data["body_preview"] == "<html>502 Bad Gateway</html>"
    assert data["status_from"] == "http_status"


def test_ladder_reads_the_result_from_the_application_step() -> None:
    res = health(2, "NOT_SERVING")
    app = ApplicationStep(status="failed", protocol="grpc", reason=res.reason, grpc=res)
    verdict = classify(TARGET, OPTIONS, _steps(app))
    assert verdict.fault is not None and verdict.fault.code == "grpc.not_serving"
    healthy = ApplicationStep(status="ok", protocol="grpc", grpc=health(1, "SERVING"))
    assert classify(TARGET, OPTIONS, _steps(healthy)).ok


def test_total_deadline_during_the_call_is_a_grpc_timeout() -> None:
    cut = DeadlineCut(rung="application", timeout_s=1.0, at_ms=1000.0)
    verdict = classify(TLS_TARGET, make_options(None, timeout=1.0), _steps(None), deadline=cut)
    assert verdict.fault is not None and verdict.fault.code == "grpc.timeout"
    assert "accepted the connection and the TLS handshake" in verdict.fault.summary
    assert "total deadline (1 s)" in verdict.fault.summary
