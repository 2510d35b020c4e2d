"""Which box answered: a reverse proxy or load balancer speaking about its upstream.

A 502, 503 or 504 usually comes from an intermediary (nginx, HAProxy, Envoy, a CDN, a cloud
load balancer) about the server behind it, not from that server. Each says so in its own
words: a ``Server`` header, a fixed error page, a ``X-Squid-Error`` header, the RFC 9209
``Proxy-Status`` header. :data:`FINGERPRINTS` is those words as data, each entry with where
it comes from; :func:`attribute` reads an answer against them, and :func:`upstream_fault`
gives the ``http.upstream_*`` verdict when the evidence supports one, naming the proxy.
Nothing is guessed: an answer no entry recognises stays ``http.server_error`` (or its gRPC
verdict), as before.

The same reading serves gRPC targets: a proxy's ``:status 502`` without ``grpc-status``
(nginx ``grpc_pass`` to a dead server), or Envoy's Trailers-Only UNAVAILABLE whose
``grpc-message`` carries its words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..describe import response_evidence
from ..protocols.proxy_status import ERROR_TYPES, ProxyStatusEntry, parse_proxy_status
from ..report import Evidence, Fault, JsonScalar
from ..steps import GrpcResult, HttpResult, ProxyStep
from ._observations import Observations, fault

__all__ = [
    "DEAD_BACKEND",
    "DEAD_BACKEND_HINT",
    "FINGERPRINTS",
    "PROXY_STATUS_CODES",
    "Answer",
    "Attribution",
    "Fingerprint",
    "about_the_route",
    "attribute",
    "cut_connect",
    "forward_proxy_fault",
    "upstream_fault",
]


#: Said of a connection accepted and closed without a byte (FIELD-GUIDE "Proxies and load
#: balancers"; HAProxy mode tcp: FIN within 0.3 ms, tests/fixtures/realservers/FINDINGS.md).
DEAD_BACKEND = "a TCP load balancer or proxy in front of a dead backend looks exactly like this"
DEAD_BACKEND_HINT = (
    "If a load balancer or TCP proxy fronts this port (HAProxy mode tcp, a cloud network load "
    "balancer, a sidecar), check its backends: with none alive it accepts the connection and "
    "closes it at once, without a byte, exactly like this."
)


@dataclass(frozen=True)
class Fingerprint:
    """One way an intermediary answers for its upstream, and what it means.

    Every condition given must hold (regular expressions, case-insensitive, searched): the
    status, the ``Server`` header (or its absence), one other header's value, the body's
    start (for gRPC, ``grpc-message`` too). The first entry that matches decides.
    """

    proxy: str
    status: tuple[int, ...]
    #: http.upstream_refused / _timeout / _unavailable / _tls / _error; None: the proxy
    #: itself failed (the verdict stays http.server_error, naming it)
    code: str | None
    #: what the proxy is saying, in words: "its upstream did not answer in time"
    meaning: str
    server: str | None = None
    no_server: bool = False
    header: tuple[str, str] | None = None
    body: str | None = None
    #: quote the body (its one line of words) as the proxy's words; else its status line
    quote: bool = False
    #: where to look next
    hint: str = ""
    #: where the fingerprint comes from (a capture, the proxy's source, its documentation)
    source: str = ""


_NGINX = r"^nginx\b"
_NGINX_PAGE = r"<center>nginx(/[0-9.]+)?</center>"
_NGINX_LOG = (
    "nginx's error.log names the cause and the upstream, e.g. 'connect() failed (111: "
    "Connection refused) while connecting to upstream' or 'upstream SSL certificate verify "
    "error'"
)
_ENVOY = r"^(istio-)?envoy\b"
_ENVOY_RESET = r"upstream connect error or disconnect/reset before headers\."
_ENVOY_SRC = "Envoy source/common/router/router.cc (onUpstreamReset, sendNoHealthyUpstreamResponse)"
_SQUID_ERR = "x-squid-error"
_SQUID_SRC = "Squid 5.7 captures (tests/fixtures/realservers/squid/), errorpage.cc"
_HAPROXY_SRC = "HAProxy 2.6 capture (tests/fixtures/realservers/haproxy/), src/http.c http_err_msgs"
_CF_SRC = "Cloudflare docs: support/troubleshooting/http-status-codes/cloudflare-5xx-errors"
_ALB_SRC = "AWS docs: elasticloadbalancing/latest/application/load-balancer-troubleshooting"

#: The intermediaries netprobe recognises, in the order they are tried.
FINGERPRINTS: tuple[Fingerprint, ...] = (
    # -- nginx (Server header, and the footer of its own error pages) -----------------------
    Fingerprint(
        "nginx",
        (502,),
        "http.upstream_error",
        "its upstream failed (refused, reset, a broken answer or a TLS failure: nginx's 502 "
        "page does not say which)",
        server=_NGINX,
        body=_NGINX_PAGE,
        hint=f"Check the upstream's address and health: {_NGINX_LOG}.",
        source="nginx 1.22 captures (tests/fixtures/realservers/nginx/proxy_*.http), "
        "src/http/ngx_http_special_response.c",
    ),
    Fingerprint(
        "nginx",
        (504,),
        "http.upstream_timeout",
        "its upstream did not answer in time (proxy_connect_timeout or proxy_read_timeout: "
        "the 504 page is the same for both)",
        server=_NGINX,
        body=_NGINX_PAGE,
        hint="Check the upstream's health and load, and nginx's timeouts: the error.log says "
        "'upstream timed out (110: Connection timed out) while connecting to upstream' or "
        "'while reading response header from upstream'.",
        source="nginx 1.22 captures (tests/fixtures/realservers/nginx/proxy_silent.http, "
        "proxy_slow.http)",
    ),
    # -- HAProxy (no Server header; fixed pages) -------------------------------------------
    Fingerprint(
        "HAProxy",
        (503,),
        "http.upstream_unavailable",
        "no server of its backend is available (all down, or every connect failed)",
        body=r"No server is available to handle this request\.",
        quote=True,
        hint="Check the backend's servers and HAProxy's health checks (show stat; the log "
        "line's termination flags 'SC--' say the connect failed).",
        source=_HAPROXY_SRC,
    ),
    Fingerprint(
        "HAProxy",
        (502,),
        "http.upstream_error",
        "its server returned an invalid or incomplete response",
        body=r"The server returned an invalid or incomplete response\.",
        quote=True,
        hint="Check the backend server's logs: it closed or broke the answer.",
        source=_HAPROXY_SRC,
    ),
    Fingerprint(
        "HAProxy",
        (504,),
        "http.upstream_timeout",
        "its server did not respond in time ('timeout server')",
        body=r"The server didn't respond in time\.",
        quote=True,
        hint="Check the backend server's load and HAProxy's 'timeout server'.",
        source=_HAPROXY_SRC,
    ),
    # -- Envoy / Istio (server: envoy; its local replies) ----------------------------------
    Fingerprint(
        "Envoy",
        (503,),
        "http.upstream_unavailable",
        "its cluster has no healthy upstream host",
        server=_ENVOY,
        body=r"^no healthy upstream",
        quote=True,
        hint="Check the cluster's endpoints and health checks (istioctl proxy-config "
        "endpoints, Envoy's /clusters admin page).",
        source=_ENVOY_SRC,
    ),
    Fingerprint(
        "Envoy",
        (504,),
        "http.upstream_timeout",
        "its upstream did not answer within the route's timeout",
        server=_ENVOY,
        body=r"^upstream request timeout",
        quote=True,
        hint="Check the upstream's latency and the route timeout (access log flag UT).",
        source=_ENVOY_SRC,
    ),
    Fingerprint(
        "Envoy",
        (503,),
        "http.upstream_refused",
        "its upstream refused the connection (delayed connect error: 111, ECONNREFUSED)",
        server=_ENVOY,
        body=_ENVOY_RESET + r".*transport failure reason: delayed connect error: 111\b",
        quote=True,
        hint="Nothing listens on the upstream's port: check the workload and its port "
        "(access log flag UF).",
        source=_ENVOY_SRC + "; Istio and Contour troubleshooting pages",
    ),
    Fingerprint(
        "Envoy",
        (503,),
        "http.upstream_tls",
        "the TLS handshake with its upstream failed",
        server=_ENVOY,
        body=_ENVOY_RESET + r".*transport failure reason: .*(tls|ssl|certificate)",
        quote=True,
        hint="Check the upstream's certificate and the cluster's TLS settings (mTLS mode, "
        "SNI, trusted CA).",
        source=_ENVOY_SRC,
    ),
    Fingerprint(
        "Envoy",
        (503, 504),
        "http.upstream_timeout",
        "its connect to the upstream timed out",
        server=_ENVOY,
        body=_ENVOY_RESET + r".*(reset reason: connection timeout|delayed connect error: 110\b)",
        quote=True,
        hint="Check the path to the upstream (network policy, security group) and its load.",
        source=_ENVOY_SRC,
    ),
    Fingerprint(
        "Envoy",
        (503,),
        "http.upstream_unavailable",
        "its circuit breaker toward the upstream is open (overflow)",
        server=_ENVOY,
        body=_ENVOY_RESET + r".*reset reason: overflow",
        quote=True,
        hint="The upstream cluster is saturated: check its circuit-breaker limits and load.",
        source=_ENVOY_SRC,
    ),
    Fingerprint(
        "Envoy",
        (502, 503),
        "http.upstream_error",
        "its upstream connection failed or was reset before the response headers",
        server=_ENVOY,
        body=_ENVOY_RESET,
        quote=True,
        hint="The reset reason in Envoy's words is in the evidence; its access log's "
        "response flags (UF, UC, UR, UPE) say more.",
        source=_ENVOY_SRC,
    ),
    # -- Traefik (no Server header; Go's status text, or its load balancer's words) --------
    Fingerprint(
        "Traefik",
        (503,),
        "http.upstream_unavailable",
        "its service has no server ready (none configured, or every health check failing)",
        no_server=True,
        body=r"^no available server\s*$",
        quote=True,
        hint="Check the service's servers and their health checks in Traefik's dashboard.",
        source="Traefik pkg/server/service/loadbalancer/wrr/wrr.go (errNoAvailableServer); "
        "docs getting-started/faq.md",
    ),
    Fingerprint(
        "Traefik",
        (502,),
        "http.upstream_error",
        "an error happened while contacting the upstream",
        no_server=True,
        body=r"^Bad Gateway$",
        quote=True,
        hint="Check the upstream's address and health (Traefik's debug log names the error).",
        source="Traefik pkg/proxy/httputil/proxy.go (ErrorHandler writes the status text)",
    ),
    Fingerprint(
        "Traefik",
        (504,),
        "http.upstream_timeout",
        "its upstream did not answer in time",
        no_server=True,
        body=r"^Gateway Timeout$",
        quote=True,
        hint="Check the upstream's latency and the serversTransport timeouts.",
        source="Traefik pkg/proxy/httputil/proxy.go (ComputeStatusCode: a net.Error timeout)",
    ),
    # -- Caddy (Server: Caddy; its error responses have no body by default) ----------------
    Fingerprint(
        "Caddy",
        (502,),
        "http.upstream_error",
        "reverse_proxy could not get an answer from its upstream",
        server=r"^Caddy\b",
        body=r"^$",
        hint="Check the upstream's address and health (Caddy's log names the error).",
        source="Caddy modules/caddyhttp/reverseproxy/reverseproxy.go (statusError)",
    ),
    Fingerprint(
        "Caddy",
        (504,),
        "http.upstream_timeout",
        "reverse_proxy timed out waiting for its upstream",
        server=r"^Caddy\b",
        body=r"^$",
        hint="Check the upstream's latency and reverse_proxy's transport timeouts.",
        source="Caddy modules/caddyhttp/reverseproxy/reverseproxy.go (statusError)",
    ),
    Fingerprint(
        "Caddy",
        (503,),
        "http.upstream_unavailable",
        "reverse_proxy has no upstream available",
        server=r"^Caddy\b",
        body=r"^$",
        hint="Check the upstreams and their health checks (Caddy's log: 'no upstreams available').",
        source="Caddy modules/caddyhttp/reverseproxy/reverseproxy.go (errNoUpstream)",
    ),
    # -- Squid in front of a server (X-Squid-Error; the errno after the name) --------------
    Fingerprint(
        "Squid",
        (502, 503, 504),
        "http.upstream_refused",
        "its server refused the connection (ERR_CONNECT_FAIL 111: ECONNREFUSED)",
        header=(_SQUID_ERR, r"^ERR_CONNECT_FAIL 111\b"),
        hint="Nothing listens on the server's port (cache_peer): check it.",
        source=_SQUID_SRC,
    ),
    Fingerprint(
        "Squid",
        (502, 503, 504),
        "http.upstream_timeout",
        "its connect to the server, or the server's answer, timed out",
        header=(_SQUID_ERR, r"^(ERR_CONNECT_FAIL 110\b|ERR_READ_TIMEOUT)"),
        hint="Check the path to the server and its load (Squid's connect_timeout, read_timeout).",
        source=_SQUID_SRC,
    ),
    Fingerprint(
        "Squid",
        (502, 503, 504),
        "http.upstream_tls",
        "the TLS connection to its server failed",
        header=(_SQUID_ERR, r"^ERR_SECURE_CONNECT_FAIL"),
        hint="Check the server's certificate against what Squid trusts (cache_peer tls-cafile).",
        source=_SQUID_SRC,
    ),
    Fingerprint(
        "Squid",
        (502, 503, 504),
        "http.upstream_error",
        "it could not get an answer from its server",
        header=(
            _SQUID_ERR,
            r"^ERR_(CONNECT_FAIL|READ_ERROR|ZERO_SIZE_OBJECT|DNS_FAIL|"
            r"GATEWAY_FAILURE|CANNOT_FORWARD)",
        ),
        hint="Squid's cache.log names the cause; the X-Squid-Error value is in the evidence.",
        source=_SQUID_SRC,
    ),
    # -- Cloudflare (Server: cloudflare, CF-RAY; its 52x statuses) -------------------------
    Fingerprint(
        "Cloudflare",
        (521,),
        "http.upstream_refused",
        "the origin refused Cloudflare's connection (error 521: web server is down)",
        server=r"^cloudflare",
        hint="Check that the origin web server runs and accepts Cloudflare's addresses.",
        source=_CF_SRC,
    ),
    Fingerprint(
        "Cloudflare",
        (522, 524),
        "http.upstream_timeout",
        "the origin did not answer in time (522: the TCP connection timed out; 524: no "
        "HTTP response within 100 s)",
        server=r"^cloudflare",
        hint="Check the origin's firewall (Cloudflare's addresses), load and slow endpoints.",
        source=_CF_SRC,
    ),
    Fingerprint(
        "Cloudflare",
        (525, 526),
        "http.upstream_tls",
        "the TLS connection to the origin failed (525: handshake failed; 526: invalid origin "
        "certificate)",
        server=r"^cloudflare",
        hint="Check the origin's certificate and TLS settings against Cloudflare's SSL mode.",
        source=_CF_SRC,
    ),
    Fingerprint(
        "Cloudflare",
        (502, 504, 520, 523, 530),
        "http.upstream_error",
        "it could not get a valid answer from the origin (520: unknown error; 523: origin "
        "unreachable; 530: with a 1xxx error)",
        server=r"^cloudflare",
        hint="The CF-RAY id in the evidence identifies the request for Cloudflare's logs; "
        "check the origin's logs at that time.",
        source=_CF_SRC,
    ),
    # -- AWS Application Load Balancer (Server: awselb/2.0) --------------------------------
    Fingerprint(
        "AWS ALB",
        (503,),
        "http.upstream_unavailable",
        "the target group has no registered (or no healthy) target",
        server=r"^awselb/",
        hint="Check the target group's registered targets and their health (CloudWatch "
        "HealthyHostCount, HTTPCode_ELB_503_Count).",
        source=_ALB_SRC + "; AWS knowledge center alb-troubleshoot-503-errors",
    ),
    Fingerprint(
        "AWS ALB",
        (504,),
        "http.upstream_timeout",
        "the target did not answer within the idle timeout, or the connect to it timed out",
        server=r"^awselb/",
        hint="Check the target's latency and security groups, and the load balancer's idle "
        "timeout.",
        source=_ALB_SRC,
    ),
    Fingerprint(
        "AWS ALB",
        (502,),
        "http.upstream_error",
        "the target closed the connection, reset it or sent an invalid answer",
        server=r"^awselb/",
        hint="Check the target's logs and its keep-alive timeout (it must be longer than the "
        "load balancer's idle timeout); the access log's error_reason names the cause.",
        source=_ALB_SRC,
    ),
)

#: RFC 9209 error types -> netprobe's code; None: not about the upstream (the proxy itself
#: failed, or refused the request), so the status decides as before. docs/proxies.md shows it.
PROXY_STATUS_CODES: dict[str, str | None] = {
    "dns_timeout": "http.upstream_error",
    "dns_error": "http.upstream_error",
    "destination_not_found": "http.upstream_error",
    "destination_unavailable": "http.upstream_unavailable",
    "destination_ip_prohibited": "http.upstream_error",
    "destination_ip_unroutable": "http.upstream_error",
    "connection_refused": "http.upstream_refused",
    "connection_terminated": "http.upstream_error",
    "connection_timeout": "http.upstream_timeout",
    "connection_read_timeout": "http.upstream_timeout",
    "connection_write_timeout": "http.upstream_timeout",
    "connection_limit_reached": "http.upstream_unavailable",
    "tls_protocol_error": "http.upstream_tls",
    "tls_certificate_error": "http.upstream_tls",
    "tls_alert_received": "http.upstream_tls",
    "http_request_error": None,
    "http_request_denied": None,
    "http_response_incomplete": "http.upstream_error",
    "http_response_header_section_size": "http.upstream_error",
    "http_response_header_size": "http.upstream_error",
    "http_response_body_size": "http.upstream_error",
    "http_response_trailer_section_size": "http.upstream_error",
    "http_response_trailer_size": "http.upstream_error",
    "http_response_transfer_coding": "http.upstream_error",
    "http_response_content_coding": "http.upstream_error",
    "http_response_timeout": "http.upstream_timeout",
    "http_upgrade_failed": "http.upstream_error",
    "http_protocol_error": "http.upstream_error",
    "proxy_internal_response": None,
    "proxy_internal_error": None,
    "proxy_configuration_error": None,
    "proxy_loop_detected": None,
}

_UPSTREAM_HINTS = {
    "http.upstream_refused": "Nothing listens on the upstream's port: check the upstream "
    "service and the port the proxy is configured with.",
    "http.upstream_timeout": "Check the upstream's health and latency, and the path from the "
    "proxy to it.",
    "http.upstream_unavailable": "Check the upstream pool's members and their health checks.",
    "http.upstream_tls": "Check the upstream's certificate and the proxy's TLS settings "
    "toward it (trusted CA, SNI, protocol).",
    "http.upstream_error": "Check the upstream's logs and the proxy's error log.",
}


@dataclass(frozen=True)
class Answer:
    """What an answer looked like, from an HTTP or a gRPC exchange."""

    status: int
    reason: str | None
    headers: Mapping[str, str]
    #: the body's start (for gRPC: also grpc-message, which carries Envoy's words)
    body: str
    grpc_message: str | None = None


@dataclass(frozen=True)
class Attribution:
    """The intermediary that answered, and what it said about its upstream."""

    proxy: str
    #: the upstream verdict; None when the proxy itself failed
    code: str | None
    meaning: str
    #: what identified it: "Server: nginx/1.22.1 and nginx's error page"
    by: str
    #: the proxy's own words: a status line, a fixed sentence, a header value
    words: str
    hint: str
    source: str
    proxy_status: ProxyStatusEntry | None = None


def attribute(answer: Answer) -> Attribution | None:
    """The intermediary that answered, when RFC 9209 ``Proxy-Status`` or a fingerprint
    says so; None when nothing identifies one (the answer may be the service's own)."""
    by_status = _from_proxy_status(answer)
    if by_status is not None:
        return by_status
    for fp in FINGERPRINTS:
        found = _match(fp, answer)
        if found is not None:
            return found
    return None


def _from_proxy_status(answer: Answer) -> Attribution | None:
    entries = parse_proxy_status(answer.headers.get("proxy-status"))
    failed = next((e for e in entries if e.error is not None), None)
    if failed is None or failed.error is None:
        return None
    code = PROXY_STATUS_CODES.get(failed.error)
    meaning = ERROR_TYPES.get(failed.error, f"an error it calls {failed.error}")
    for said, ours in (
        ("the intermediary's", "its"),
        ("the intermediary", "it"),
        ("the next hop's", "its upstream's"),
        ("the next hop", "its upstream"),
    ):
        meaning = meaning.replace(said, ours)
    details = f": {failed.details}" if failed.details else ""
    hop = f" (next hop {failed.next_hop})" if failed.next_hop else ""
    return Attribution(
        proxy=failed.proxy,
        code=code,
        meaning=meaning + hop,
        by="Proxy-Status, RFC 9209",
        words=f"error={failed.error}{details}",
        hint=_UPSTREAM_HINTS.get(code or "", "The proxy itself failed: check its own logs."),
        source="RFC 9209 §2.3",
        proxy_status=failed,
    )


def _search(pattern: str | None, text: str) -> bool:
    return pattern is None or re.search(pattern, text, re.IGNORECASE | re.DOTALL) is not None


def _match(fp: Fingerprint, answer: Answer) -> Attribution | None:
    if answer.status not in fp.status:
        return None
    server = answer.headers.get("server")
    if fp.no_server and server is not None:
        return None
    if fp.server is not None and (server is None or not _search(fp.server, server)):
        return None
    header_value: str | None = None
    if fp.header is not None:
        header_value = answer.headers.get(fp.header[0])
        if header_value is None or not _search(fp.header[1], header_value):
            return None
    body = answer.grpc_message if answer.grpc_message is not None else answer.body
    if fp.body is not None and not _search(fp.body, body.strip() if fp.body == "^$" else body):
        return None
    proofs = []
    if fp.server is not None and server is not None:
        proofs.append(f"Server: {server}")
    elif fp.no_server:
        proofs.append("no Server header")
    if fp.header is not None:
        proofs.append(f"{_title(fp.header[0])}: {header_value}")
    if fp.body is not None:
        proofs.append("its grpc-message" if answer.grpc_message is not None else "its page")
    words = _words(answer, fp, header_value)
    # The Server header names the product with its version ("nginx/1.22.1", "squid/5.7").
    key = fp.proxy.split()[-1].lower()
    named = server is not None and (fp.server is not None or key in server.lower())
    name = server if named and server is not None else fp.proxy
    return Attribution(
        proxy=name,
        code=fp.code,
        meaning=fp.meaning,
        by=" and ".join(proofs),
        words=words,
        hint=fp.hint or _UPSTREAM_HINTS.get(fp.code or "", ""),
        source=fp.source,
    )


def _words(answer: Answer, fp: Fingerprint, header_value: str | None) -> str:
    """The proxy's own words: a header value, its one line of text, or its status line."""
    if header_value is not None:
        return header_value
    text = answer.grpc_message if answer.grpc_message is not None else answer.body
    line = _plain(text)
    # An error page repeats its status line as its title: the words are what follows.
    title = f"{answer.status} {answer.reason or ''}".rstrip()
    if line.startswith(title) and line != title:
        line = line[len(title) :].strip()
    if fp.quote and line:
        return line if len(line) <= 240 else line[:240] + "..."
    return f"{answer.status} {answer.reason or ''}".rstrip()


def _plain(text: str) -> str:
    """An error page reduced to its words (tags out, whitespace collapsed)."""
    return " ".join(re.sub(r"<[^>]*>", " ", text).split())


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def answer_of(http: HttpResult | None, grpc: GrpcResult | None) -> Answer | None:
    """The answer to read, from an HTTP exchange (a 5xx) or a gRPC call that a proxy
    answered (an HTTP status without grpc-status, or a status with a proxy's words)."""
    if http is not None and http.status is not None and http.failure is None:
        return Answer(
            status=http.status,
            reason=http.reason,
            headers=http.headers,
            body=http.body_preview or "",
        )
    if grpc is not None and grpc.http_status is not None:
        if grpc.failure == "not_grpc":
            return Answer(
                status=grpc.http_status,
                reason=None,
                headers=grpc.headers,
                body=grpc.body_preview or "",
            )
        if grpc.failure is None and grpc.grpc_status == 14 and grpc.grpc_message:
            # Envoy's local reply to a gRPC call: Trailers-Only UNAVAILABLE, its words in
            # grpc-message, the HTTP status it would have sent (503) implied.
            return Answer(
                status=503,
                reason=None,
                headers=grpc.headers,
                body="",
                grpc_message=grpc.grpc_message,
            )
    return None


def upstream_fault(obs: Observations) -> Fault | None:
    """``http.upstream_*`` when an intermediary's answer says its upstream failed (or
    ``http.server_error`` naming a proxy that failed itself); None otherwise."""
    app = obs.application
    if app is None or app.status != "failed":
        return None
    answer = answer_of(app.http, app.grpc)
    if answer is None or answer.status < 500:
        return None
    found = attribute(answer)
    if found is None:
        return None
    t = obs.target
    what = f"{app.http.method} {app.http.url}" if app.http is not None else f"grpc://{t.netloc}"
    said = f"{answer.status} {answer.reason}" if answer.reason else f"{answer.status}"
    if app.grpc is not None and answer.grpc_message is not None:
        said = "gRPC UNAVAILABLE"
    if found.code is None:
        summary = (
            f"{what}: {found.proxy} answered {said}: the proxy itself failed "
            f"({found.meaning}), not the service behind it."
        )
        code = "http.server_error"
        hints = [found.hint or "Check the proxy's own logs and configuration."]
    else:
        summary = (
            f"{what}: {found.proxy} answered {said}: {found.meaning}. The upstream behind "
            f"{found.proxy} is at fault, not {found.proxy}."
        )
        code = found.code
        hints = [
            found.hint,
            f"The network to {found.proxy} and {found.proxy} itself work: it answered.",
        ]
    return fault(code, summary, [_evidence(found, answer)], [h for h in hints if h])


def _evidence(found: Attribution, answer: Answer) -> Evidence:
    data: dict[str, JsonScalar] = {
        "via": found.proxy,
        "status": answer.status,
        "proxy_said": found.words,
        "identified_by": found.by,
        "fingerprint_source": found.source,
    }
    for name in ("server", "via", "proxy-status", "x-squid-error", "cf-ray"):
        if name in answer.headers:
            data[f"header_{name.replace('-', '_')}"] = answer.headers[name]
    if found.proxy_status is not None:
        data["proxy_status_error"] = found.proxy_status.error
    return Evidence(
        step="application",
        observation=f"{found.proxy} answered {answer.status} ({found.by}): {found.words}",
        data=data,
    )


# -- A forward proxy on the way (HTTP_PROXY / HTTPS_PROXY, or the proxy option) ----------------

#: Squid's error names (X-Squid-Error: NAME ERRNO) -> what happened, in words.
_SQUID_ERRORS: dict[str, str] = {
    "ERR_CONNECT_FAIL": "its connect to the target failed",
    "ERR_DNS_FAIL": "it could not resolve the target's name",
    "ERR_READ_ERROR": "it got no answer from the target (Squid 5 reports a failed DNS lookup "
    "of the target this way too: its cache.log says which)",
    "ERR_READ_TIMEOUT": "the target did not answer in time",
    "ERR_ZERO_SIZE_OBJECT": "the target closed the connection without an answer",
    "ERR_SECURE_CONNECT_FAIL": "its TLS connection to the target failed",
    "ERR_GATEWAY_FAILURE": "it could not reach the target",
    "ERR_CANNOT_FORWARD": "it could not forward the request (Squid 5 answers a CONNECT to a "
    "name it cannot resolve this way: its cache.log says which)",
}
_ERRNO_WORDS = {"111": "refused (ECONNREFUSED)", "110": "timed out (ETIMEDOUT)",
                "113": "no route to host (EHOSTUNREACH)", "101": "network unreachable"}  # fmt: skip


def _proxy_name(step: ProxyStep, headers: Mapping[str, str]) -> str:
    server = headers.get("server")
    where = f"{step.url} ({step.source}"
    return where + (f", {server})" if server else ")")


def forward_proxy_fault(obs: Observations) -> Fault | None:
    """``proxy.*`` when the forward proxy the target is reached through refused, wanted
    credentials or could not reach the target; an ``http://`` target's answer counts only
    when the proxy made it (407, ``X-Squid-Error``, ``Proxy-Status``). Also names a forward
    proxy hit directly as if it were the service (Squid's ERR_INVALID_URL)."""
    step = obs.proxy
    app = obs.application
    if step is None:
        return _proxy_as_target(obs)
    if step.mode == "connect":
        if step.status != "failed":
            return None  # open, or never reached (the way to the proxy failed first)
        if step.http_status is None:
            return _connect_unanswered(obs, step)
        return _proxy_refusal(
            obs, step, step.http_status, step.http_reason, step.headers, step.body_preview
        )
    if app is None or app.http is None or app.http.status is None:
        return None
    http = app.http
    status = app.http.status
    made_by_proxy = (
        status == 407
        or "x-squid-error" in http.headers
        or any(e.error for e in parse_proxy_status(http.headers.get("proxy-status")))
    )
    if not made_by_proxy or http.healthy:
        return None
    return _proxy_refusal(obs, step, status, http.reason, http.headers, http.body_preview)


def _proxy_refusal(
    obs: Observations,
    step: ProxyStep,
    status: int,
    reason: str | None,
    headers: Mapping[str, str],
    body: str | None,
) -> Fault:
    t = obs.target
    name = _proxy_name(step, headers)
    said = f"{status} {reason or ''}".rstrip()
    squid = headers.get("x-squid-error")
    words = f" ({squid})" if squid else ""
    what = f"CONNECT {t.netloc}" if step.mode == "connect" else f"{step.request or t.url}"
    ev = Evidence(
        step="proxy",
        observation=f"{what} sent to the proxy {step.url}; it answered {said}{words}",
        data={
            "proxy": step.url,
            "proxy_source": step.source,
            "status": status,
            "x_squid_error": squid,
            "proxy_status": headers.get("proxy-status"),
            "server": headers.get("server"),
            "proxy_authenticate": headers.get("proxy-authenticate"),
            "credentials_sent": step.credentials_sent,
        },
    )
    if status == 407:
        asks = headers.get("proxy-authenticate")
        if step.credentials_sent:
            summary = (
                f"The HTTP proxy {name} rejected the credentials sent with the request for "
                f"{t.netloc} (407 Proxy Authentication Required): the target was not contacted."
            )
            hint = "Check the user and password in the proxy URL (they are the proxy's, not "
            hint += "the target's)."
        else:
            summary = (
                f"The HTTP proxy {name} requires authentication (407 Proxy Authentication "
                f"Required) and none was sent: the request for {t.netloc} never left it."
            )
            hint = (
                "Put the proxy's credentials in its URL, http://user:password@host:port "
                f"({step.source} or --proxy): the application needs them too."
            )
        if asks:
            hint += f" The proxy asks for: {asks}."
        return fault("proxy.auth_required", summary, [ev], [hint])
    if status < 500:
        return fault(
            "proxy.denied",
            f"The HTTP proxy {name} refused to {_verb(step)} {t.netloc}: {said}{words}. "
            "The target was not contacted.",
            [ev],
            [
                "The proxy's access rules (Squid: acl and http_access) do not allow this "
                "destination, port or client: ask the proxy's owners, or list the host in "
                "NO_PROXY if the application should reach it directly.",
            ],
        )
    meaning = "it could not reach the target"
    if squid:
        code_name, _, errno_text = squid.partition(" ")
        meaning = _SQUID_ERRORS.get(code_name, meaning)
        if code_name == "ERR_CONNECT_FAIL" and errno_text in _ERRNO_WORDS:
            meaning = f"its connect to the target was {_ERRNO_WORDS[errno_text]}"
    else:
        failed = next((e for e in parse_proxy_status(headers.get("proxy-status")) if e.error), None)
        if failed is not None and failed.error is not None:
            meaning = ERROR_TYPES.get(failed.error, failed.error)
    return fault(
        "proxy.connect_failed",
        f"The HTTP proxy {name} could not reach {t.netloc}: {said}{words}, {meaning}.",
        [ev],
        [
            f"The proxy reaches {t.netloc} from its own network: check the target from the "
            "proxy's side (its cache.log or access log names the cause), and the target's "
            "name and port as the proxy resolves them.",
            f"The way to the proxy works: {step.url} answered.",
        ],
    )


def _connect_unanswered(obs: Observations, step: ProxyStep) -> Fault:
    t = obs.target
    ev = Evidence(
        step="proxy",
        observation=f"CONNECT {t.netloc} sent to the proxy {step.url}: {step.reason}",
        data={"proxy": step.url, "proxy_source": step.source, "failure": step.failure},
    )
    if step.failure == "timeout":
        return fault(
            "proxy.connect_failed",
            f"The HTTP proxy {step.url} ({step.source}) accepted the connection but did not "
            f"answer the CONNECT to {t.netloc} within {obs.options.read_timeout:g} s "
            "(read_timeout): it is most likely still trying to reach the target (a silent "
            "target keeps a proxy waiting for its own connect timeout).",
            [ev],
            [
                f"Check that {t.netloc} is reachable from the proxy's network (a firewall "
                "that drops the proxy's SYNs), and the proxy's own load.",
            ],
        )
    if step.failure == "protocol":
        return fault(
            "http.protocol_error",
            f"The proxy {step.url} ({step.source}) does not answer HTTP: it answered the "
            f"CONNECT with {step.peer_sent or 'something else'}.",
            [ev],
            ["Check the proxy URL's port: another protocol listens there."],
        )
    return fault(
        "l7.connection_closed",
        f"The HTTP proxy {step.url} ({step.source}) closed the connection without answering "
        f"the CONNECT to {t.netloc}.",
        [ev],
        ["The proxy crashed, or refuses this client at the connection level (an allow-list)."],
    )


def cut_connect(obs: Observations) -> Fault:
    """The total deadline ended the diagnosis while the proxy had not answered the CONNECT
    (classify/deadline.py)."""
    route = obs.proxy.url if obs.proxy is not None else "the proxy"
    timeout = obs.deadline.timeout_s if obs.deadline else obs.options.timeout
    return fault(
        "proxy.connect_failed",
        f"The HTTP proxy {route} accepted the connection but had not answered the CONNECT to "
        f"{obs.target.netloc} when the total deadline ({timeout:g} s) ended the diagnosis: it "
        "is most likely still trying to reach the target.",
    )


def _proxy_as_target(obs: Observations) -> Fault | None:
    """A forward proxy diagnosed as if it were the service (Squid answers a plain request
    with 400 ERR_INVALID_URL): say what it is."""
    app = obs.application
    if app is None or app.http is None or app.http.status != 400:
        return None
    squid = app.http.headers.get("x-squid-error", "")
    if not squid.startswith("ERR_INVALID_URL"):
        return None
    server = app.http.headers.get("server", "an HTTP proxy")
    return fault(
        "http.client_error",
        f"{obs.target.netloc} is an HTTP forward proxy ({server}, {squid}), not the service: "
        "it answered the plain request with 400 Bad Request.",
        [response_evidence(app.http)],
        [
            f"To go through it, give it as the proxy: --proxy http://{obs.target.netloc} "
            "(or HTTP_PROXY / HTTPS_PROXY), and diagnose the service's own URL.",
        ],
    )


def about_the_route(obs: Observations, found: Fault) -> Fault:
    """A fault below the application, when the target is reached through a forward proxy,
    is about the way to the proxy: the summary says so first."""
    step = obs.proxy
    if step is None or found.layer not in ("dns", "l3", "l4", "local"):
        return found
    note = (
        f"The HTTP proxy {step.url} ({step.source}), through which {obs.target.netloc} is "
        "reached, cannot be reached: "
    )
    hint = (
        f"The application reaches {obs.target.netloc} through this proxy ({step.source}); "
        "fix the way to the proxy, or list the host in NO_PROXY if it should be reached "
        "directly."
    )
    return found.replace(summary=note + found.summary, hints=(*found.hints, hint))


def _verb(step: ProxyStep) -> str:
    return "open a tunnel to" if step.mode == "connect" else "forward the request to"
