"""Which box answered: the proxy fingerprints and RFC 9209 Proxy-Status, pure, on recorded
responses (no socket, no loop).

The nginx, HAProxy and Squid answers are real captures (tests/fixtures/realservers/, see its
README.md); Envoy, Istio, Traefik, Caddy, Cloudflare, AWS ALB and Proxy-Status examples are in
tests/fixtures/proxies/ (README.md there gives each file's source). tests/test_proxies.py shows
the same verdicts against the real nginx, HAProxy and Squid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netprobe.classify import classify
from netprobe.classify.proxy import FINGERPRINTS, PROXY_STATUS_CODES, Answer, attribute
from netprobe.options import make_options
from netprobe.protocols.proxy_status import ERROR_TYPES, ProxyStatusEntry, parse_proxy_status
from netprobe.report import FAULT_CODES
from netprobe.steps import HEADERS_OF_INTEREST, ApplicationStep, GrpcResult, HttpResult, TcpStep
from netprobe.target import parse_target

FIXTURES = Path(__file__).parent / "fixtures"
UPSTREAM_CODES = {c for c in FAULT_CODES if c.startswith("http.upstream_")}


def read_http(path: Path) -> tuple[int, str, dict[str, str], str]:
    """A recorded HTTP/1.1 response: status, reason, headers (lower-case names), body."""
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    _, status, *reason = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return int(status), (reason[0] if reason else "").strip(), headers, body.decode("utf-8")


def http_result(path: Path) -> HttpResult:
    """What the HTTP probe records of that response (headers of interest, a 200-char body)."""
    status, reason, headers, body = read_http(path)
    return HttpResult(
        method="GET",
        url="http://api.internal/health",
        status=status,
        reason=reason or None,
        http_version="HTTP/1.1",
        headers={k: v for k, v in headers.items() if k in HEADERS_OF_INTEREST},
        body_preview=(body[:200] + ("..." if len(body) > 200 else "")) or None,
        healthy=False,
    )


def verdict(http: HttpResult | None = None, grpc: GrpcResult | None = None) -> Any:
    target = parse_target("grpc://api.internal:50051" if grpc else "http://api.internal/health")
    app = ApplicationStep(
        status="failed", protocol="grpc" if grpc else "http", http=http, grpc=grpc
    )
    tcp = TcpStep(status="ok", timeout_s=3.0, connected_to="10.0.0.7:80")
    return classify(target, make_options(None), [tcp, app]).fault


# file -> (code, proxy named in the summary)
RECORDED: dict[str, tuple[str, str]] = {
    "realservers/nginx/proxy_refused.http": ("http.upstream_error", "nginx/1.22.1"),
    "realservers/nginx/proxy_silent.http": ("http.upstream_timeout", "nginx/1.22.1"),
    "realservers/nginx/proxy_slow.http": ("http.upstream_timeout", "nginx/1.22.1"),
    "realservers/nginx/proxy_tls_expired.http": ("http.upstream_error", "nginx/1.22.1"),
    "realservers/nginx/proxy_tls_untrusted.http": ("http.upstream_error", "nginx/1.22.1"),
    "realservers/haproxy/http_all_down.http": ("http.upstream_unavailable", "HAProxy"),
    "realservers/haproxy/http_backend_refused_nocheck.http": (
        "http.upstream_unavailable",
        "HAProxy",
    ),
    "realservers/squid/connect_fail.http": ("http.upstream_refused", "squid/5.7"),
    "realservers/squid/dns_fail_nxdomain.http": ("http.upstream_error", "squid/5.7"),
    "proxies/haproxy_502.http": ("http.upstream_error", "HAProxy"),
    "proxies/haproxy_504.http": ("http.upstream_timeout", "HAProxy"),
    "proxies/envoy_no_healthy_upstream.http": ("http.upstream_unavailable", "envoy"),
    "proxies/envoy_upstream_timeout.http": ("http.upstream_timeout", "envoy"),
    "proxies/envoy_refused.http": ("http.upstream_refused", "envoy"),
    "proxies/envoy_tls.http": ("http.upstream_tls", "envoy"),
    "proxies/envoy_overflow.http": ("http.upstream_unavailable", "envoy"),
    "proxies/envoy_connection_failure.http": ("http.upstream_error", "envoy"),
    "proxies/istio_protocol_error.http": ("http.upstream_error", "istio-envoy"),
    "proxies/traefik_no_available_server.http": ("http.upstream_unavailable", "Traefik"),
    "proxies/traefik_bad_gateway.http": ("http.upstream_error", "Traefik"),
    "proxies/traefik_gateway_timeout.http": ("http.upstream_timeout", "Traefik"),
    "proxies/caddy_502.http": ("http.upstream_error", "Caddy"),
    "proxies/caddy_503.http": ("http.upstream_unavailable", "Caddy"),
    "proxies/caddy_504.http": ("http.upstream_timeout", "Caddy"),
    "proxies/cloudflare_520.http": ("http.upstream_error", "cloudflare"),
    "proxies/cloudflare_521.http": ("http.upstream_refused", "cloudflare"),
    "proxies/cloudflare_522.http": ("http.upstream_timeout", "cloudflare"),
    "proxies/cloudflare_524.http": ("http.upstream_timeout", "cloudflare"),
    "proxies/cloudflare_525.http": ("http.upstream_tls", "cloudflare"),
    "proxies/cloudflare_526.http": ("http.upstream_tls", "cloudflare"),
    "proxies/alb_502.http": ("http.upstream_error", "awselb/2.0"),
    "proxies/alb_503.http": ("http.upstream_unavailable", "awselb/2.0"),
    "proxies/alb_504.http": ("http.upstream_timeout", "awselb/2.0"),
    "proxies/proxy_status_refused.http": ("http.upstream_refused", "ExampleCDN"),
    "proxies/proxy_status_tls.http": ("http.upstream_tls", "ExampleCDN"),
    "proxies/proxy_status_two_hops.http": ("http.upstream_timeout", "origin-lb"),
    "proxies/proxy_status_internal.http": ("http.server_error", "ExampleCDN"),
}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_answers_are_attributed(name: str) -> None:
    code, proxy = RECORDED[name]
    found = verdict(http_result(FIXTURES / name))
    assert found is not None
    assert found.code == code, found
    assert proxy in found.summary, found.summary
    assert found.layer == "l7"
    ev = found.evidence[0]
    assert ev.data["via"] == proxy or proxy in str(ev.data["via"])
    assert ev.data["fingerprint_source"]
    assert found.hints and "\n" not in found.summary


def test_every_recorded_fixture_is_in_the_table() -> None:
    files = {f"proxies/{p.name}" for p in (FIXTURES / "proxies").glob("*.http")}
    assert files - {"proxies/app_503.http"} <= set(RECORDED)


def test_every_upstream_code_comes_from_a_recorded_answer() -> None:
    assert {code for code, _ in RECORDED.values()} >= UPSTREAM_CODES
    assert len(UPSTREAM_CODES) == 5


def test_nginx_502_words() -> None:
    found = verdict(http_result(FIXTURES / "realservers/nginx/proxy_refused.http"))
    assert found is not None
    assert found.summary == (
        "GET http://api.internal/health: nginx/1.22.1 answered 502 Bad Gateway: its upstream "
        "failed (refused, reset, a broken answer or a TLS failure: nginx's 502 page does not "
        "say which). The upstream behind nginx/1.22.1 is at fault, not nginx/1.22.1."
    )
    assert "error.log" in found.hints[0] and "111: Connection refused" in found.hints[0]


def test_haproxy_quotes_its_sentence() -> None:
    found = verdict(http_result(FIXTURES / "realservers/haproxy/http_all_down.http"))
    assert found is not None
    assert "No server is available to handle this request." in found.evidence[0].observation


def test_squid_quotes_its_error_header() -> None:
    found = verdict(http_result(FIXTURES / "realservers/squid/connect_fail.http"))
    assert found is not None
    assert found.evidence[0].data["proxy_said"] == "ERR_CONNECT_FAIL 111"


def test_an_application_503_stays_a_server_error() -> None:
    found = verdict(http_result(FIXTURES / "proxies/app_503.http"))
    assert found is not None and found.code == "http.server_error"
    assert "via" not in found.evidence[0].data


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (502, {"server": "gunicorn"}, "Bad Gateway"),  # a Server header: not Traefik
        (503, {}, "Service Unavailable"),  # Go's text for 503 is no fingerprint
        (502, {"server": "nginx"}, "<html>my own page</html>"),  # nginx without its page
        (500, {"server": "envoy"}, "upstream connect error"),  # not a status Envoy uses
        (502, {"proxy-status": "ExampleCDN; error=("}, ""),  # malformed: ignored
        (502, {"proxy-status": "ExampleCDN"}, ""),  # no error parameter
        (503, {"server": "Caddy"}, "maintenance"),  # Caddy with a body: a page of its own
    ],
)
def test_no_fingerprint_no_upstream_verdict(
    status: int, headers: dict[str, str], body: str
) -> None:
    assert attribute(Answer(status=status, reason=None, headers=headers, body=body)) is None


def test_grpc_through_nginx_to_a_dead_server() -> None:
    """nginx grpc_pass to nothing: HTTP/2 :status 502, text/html, no grpc-status
    (tests/fixtures/realservers/nginx/grpc_pass_dead.http2.txt)."""
    page = (FIXTURES / "realservers/nginx/proxy_refused.http").read_bytes().partition(b"\r\n\r\n")
    grpc = GrpcResult(
        authority="api.internal:50051",
        http2=True,
        http_version="HTTP/2",
        http_status=502,
        headers={"server": "nginx/1.22.1", "content-type": "text/html"},
        failure="not_grpc",
        grpc_status=14,
        grpc_status_name="UNAVAILABLE",
        status_from="http_status",
        body_preview=page[2].decode(),
    )
    found = verdict(grpc=grpc)
    assert found is not None and found.code == "http.upstream_error"
    assert found.summary.startswith("grpc://api.internal:50051: nginx/1.22.1 answered 502")


def test_envoy_grpc_local_reply_is_read_from_grpc_message() -> None:
    """Envoy answers a gRPC call with Trailers-Only grpc-status 14 and its words in
    grpc-message (Envoy's sendLocalReply for gRPC requests)."""
    grpc = GrpcResult(
        authority="api.internal:50051",
        http2=True,
        http_version="HTTP/2",
        http_status=200,
        headers={"server": "envoy", "content-type": "application/grpc"},
        grpc_status=14,
        grpc_status_name="UNAVAILABLE",
        status_from="trailers_only",
        grpc_message="upstream connect error or disconnect/reset before headers. reset "
        "reason: remote connection failure, transport failure reason: delayed connect error: 111",
    )
    found = verdict(grpc=grpc)
    assert found is not None and found.code == "http.upstream_refused"
    assert "envoy answered gRPC UNAVAILABLE" in found.summary
    plain = grpc.replace(headers={"content-type": "application/grpc"})
    other = verdict(grpc=plain)
    assert other is not None and other.code == "grpc.error"  # no server: envoy, no attribution


# -- RFC 9209 -----------------------------------------------------------------------------


def test_every_rfc9209_error_type_has_a_mapping() -> None:
    assert set(PROXY_STATUS_CODES) == set(ERROR_TYPES)
    assert set(PROXY_STATUS_CODES.values()) - {None} == UPSTREAM_CODES
    assert len(ERROR_TYPES) == 32


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("FooProxy; error=connection_timeout", [("FooProxy", "connection_timeout")]),
        (
            'ExampleCDN; error=http_protocol_error; details="Malformed response header: '
            'space before colon"',
            [("ExampleCDN", "http_protocol_error")],
        ),
        ('"proxy one"; error=dns_error; rcode=NXDOMAIN', [("proxy one", "dns_error")]),
        (
            "origin-lb; error=connection_refused, ExampleCDN",
            [("origin-lb", "connection_refused"), ("ExampleCDN", None)],
        ),
        (
            "a;received-status=503, b;error=destination_unavailable;next-hop=backend",
            [("a", None), ("b", "destination_unavailable")],
        ),
        ("(a b);x, c;error=tls_alert_received", [("c", "tls_alert_received")]),
        ("", []),
        ("a;error=", []),
        ('a;details="unterminated', []),
        ("a, ", []),
        ("a b", []),
        ('a;details="\\x"', []),
        ("a;k=?2", []),
    ],
)
def test_parse_proxy_status(value: str, expected: list[tuple[str, str | None]]) -> None:
    got = [(e.proxy, e.error) for e in parse_proxy_status(value)]
    assert got == expected


def test_proxy_status_parameters() -> None:
    (entry,) = parse_proxy_status(
        'CDN; error=connection_refused; next-hop="10.0.0.7:8080"; received-status=502; '
        'details="refused \\"fast\\""; ok=?1; weight=0.5'
    )
    assert entry == ProxyStatusEntry(
        proxy="CDN",
        error="connection_refused",
        params={
            "error": "connection_refused",
            "next-hop": "10.0.0.7:8080",
            "received-status": 502,
            "details": 'refused "fast"',
            "ok": True,
            "weight": 0.5,
        },
    )
    assert entry.next_hop == "10.0.0.7:8080" and entry.details == 'refused "fast"'


@given(st.text(max_size=300))
def test_parse_proxy_status_never_raises(value: str) -> None:
    for entry in parse_proxy_status(value):
        assert isinstance(entry.proxy, str)


@given(st.integers(500, 599), st.dictionaries(st.sampled_from(["server", "proxy-status",
       "x-squid-error", "via"]), st.text(max_size=80)), st.text(max_size=200))  # fmt: skip
def test_attribute_never_raises(status: int, headers: dict[str, str], body: str) -> None:
    found = attribute(Answer(status=status, reason=None, headers=headers, body=body))
    assert found is None or found.code in (*UPSTREAM_CODES, None)


def test_fingerprints_are_documented() -> None:
    page = (Path(__file__).parent.parent / "docs" / "proxies.md").read_text()
    for fp in FINGERPRINTS:
        assert fp.proxy in page, fp.proxy
        assert fp.source, fp
        assert fp.code is None or fp.code in UPSTREAM_CODES
    for error in ERROR_TYPES:
        assert f"`{error}`" in page, error
