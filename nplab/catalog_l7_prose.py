"""The hand-written half of the catalog sections of issue 14's codes (gRPC health, proxies and
their upstreams, forward proxies): ``nplab/catalog_prose.py`` turns each entry into its
``Prose`` (kept apart so that the shared table grows by one line). The scenarios are
``nplab/catalog_l7.py``.
"""

from __future__ import annotations

__all__ = ["PROSE"]

_GRPC_APART = (
    "The health check runs over netprobe's own HTTP/2 connection, after the TCP (and TLS) "
    "rungs: a refused port is `l4.refused`, a bad certificate a `tls.*` code, never a gRPC "
    "one, although a gRPC client reports all of them as UNAVAILABLE."
)

PROSE: dict[str, dict[str, str]] = {
    "grpc.not_serving": dict(
        wire="HTTP/2 preface, SETTINGS both ways, `POST /grpc.health.v1.Health/Check` with "
        "the service name; the server answers `:status 200`, one `HealthCheckResponse` "
        "with status NOT_SERVING (2), and trailers `grpc-status: 0`. The server is up and "
        "says it should not get traffic; UNKNOWN (0) and numbers this client does not know "
        "count the same.",
        apart=f"{_GRPC_APART} `grpc.unknown_service` is a service the health service has "
        "no status for; `grpc.error` a call that failed with another status.",
        next="The server's own logs and what its health depends on (the server sets the "
        "status; grpcio: `health_servicer.set(...)`). A server starting or shutting down "
        "answers NOT_SERVING too.",
    ),
    "grpc.unknown_service": dict(
        wire="The call ends with `grpc-status: 5` (NOT_FOUND): the health service runs but "
        "has no status for the service named in the request (grpcio still sends an empty "
        "message first). Some servers answer OK with SERVICE_UNKNOWN (3) instead: same "
        "verdict.",
        apart="`grpc.no_health_service` is a server without the health service at all "
        "(UNIMPLEMENTED); `grpc.not_serving` a known service that is down.",
        next="The service name in the target (`grpc://host:port/package.Service`, case and "
        "package included) against the names the server registers with its health service.",
    ),
    "grpc.no_health_service": dict(
        wire="A Trailers-Only response `grpc-status: 12` (UNIMPLEMENTED), grpcio's message "
        "`Method not found!`: the server speaks gRPC but has no `grpc.health.v1.Health`.",
        apart="`grpc.unknown_service` has the health service and lacks the one service; "
        "`grpc.not_grpc` is a peer that does not speak gRPC at all (a web server's 404 over "
        "HTTP/2 is synthesised as UNIMPLEMENTED by gRPC clients, and named apart here).",
        next="Register the health service in the server (grpcio-health-checking, grpc-go's "
        "`health` package, grpc-java's `HealthStatusManager`), or check that the port is "
        "the right server (a gRPC proxy may route only some services).",
    ),
    "grpc.error": dict(
        wire="The call ends with a status the health check does not expect (here "
        "`grpc-status: 7` PERMISSION_DENIED and its percent-encoded `grpc-message`), or the "
        "server breaks the call: RST_STREAM, GOAWAY, a broken message. The code and the "
        "message are in the evidence.",
        apart="A status the server sent is its own word; one a gRPC client would synthesise "
        "(from an RST_STREAM, a GOAWAY, an HTTP status without `grpc-status`) is said to be "
        "synthesised (`status_from`). A proxy's 502/503/504 about its upstream is named by "
        "the proxy rules (`http.upstream_*`).",
        next="The server's interceptors and logs for that status: authentication or "
        "authorisation that does not exempt the health service, resource limits.",
    ),
    "grpc.timeout": dict(
        wire="TCP and HTTP/2 are up (the server's SETTINGS came at once), the request went, "
        "and no response (or no trailers) came within the read timeout: the handler is "
        "stuck. A server that answers DEADLINE_EXCEEDED to the `grpc-timeout` it was sent "
        "gets the same code.",
        apart="The evidence says how far the exchange got: nothing at all (not even SETTINGS: "
        "the process is frozen, or the port is not HTTP/2), SETTINGS only, or headers "
        "without a status. `l7.connection_closed` is a close instead of silence.",
        next="The server's threads and worker pool, and the dependencies its health "
        "handler waits on.",
    ),
    "grpc.not_grpc": dict(
        wire="The first bytes back are not an HTTP/2 SETTINGS frame: here nginx answers the "
        "HTTP/2 preface (`PRI * HTTP/2.0`) as an HTTP/1.1 request, `400 Bad Request`. Also an "
        "HTTP/2 server that answers without `grpc-status` (a web server's 404), or a TLS "
        "server whose ALPN did not agree to `h2`.",
        apart="What the peer sent is named: an HTTP/1.1 server and its `Server` header, a "
        "TLS record (use `grpcs://`), another protocol. `tls.not_tls` is the reverse: "
        "`grpcs://` to a cleartext port.",
        next="The port (is this the gRPC server's?) and, behind a proxy, whether it speaks "
        "HTTP/2 to clients and passes gRPC on (nginx: `http2` on the listener and "
        "`grpc_pass`).",
    ),
    # -- a proxy about its upstream ------------------------------------------------------
    "http.upstream_error": dict(
        wire="TCP to the proxy works and it answers at once, with its own error page: here "
        "nginx's `502 Bad Gateway` (`Server: nginx/1.22.1`, the `<center>nginx</center>` "
        "footer) after its connect to the upstream was refused. The page is the same for a "
        "refused, reset or TLS-failed upstream; only nginx's error.log says which.",
        apart="A 502 from the service itself (no proxy fingerprint) stays "
        "`http.server_error`. Proxies that say more get the precise code: "
        "`http.upstream_refused`, `http.upstream_timeout`, `http.upstream_unavailable`, "
        "`http.upstream_tls`. The proxy is named in the summary and in the evidence (`via`).",
        next="The upstream the proxy points at (its address, port, health) and the proxy's "
        "error log for that request.",
    ),
    "http.upstream_timeout": dict(
        wire="The proxy accepted the request and waited for its upstream: here nginx's "
        "`proxy_read_timeout` (1 s) ran out and it answered `504 Gateway Time-out`. A connect "
        "timeout toward the upstream gives the same bytes.",
        apart="`http.timeout` is the service (or the proxy) itself not answering within "
        "netprobe's read timeout; here the proxy answered, in time, that its upstream did not.",
        next="The upstream's load and latency, and the proxy's timeouts toward it.",
    ),
    "http.upstream_unavailable": dict(
        wire="HAProxy answers its fixed `503 Service Unavailable` page, 'No server is "
        "available to handle this request.', with no `Server` header: every server of the "
        "backend is down or refused the connect (its log line shows `<NOSRV>` or `SC--`).",
        apart="A 503 from the application (maintenance, overload, Retry-After) stays "
        "`http.server_error`; Envoy's 'no healthy upstream', Traefik's 'no available server', "
        "an ALB's 503 and RFC 9209 `destination_unavailable` give this code too.",
        next="The backend's servers and the proxy's health checks (`show stat` on HAProxy's "
        "stats socket, the load balancer's target health).",
    ),
    "http.upstream_refused": dict(
        wire="The proxy's connect to its upstream got an RST, and it says so: here a 502 with "
        "`Proxy-Status: nplab-proxy; error=connection_refused; next-hop=...` (RFC 9209). "
        "Envoy's 'delayed connect error: 111', Squid's `ERR_CONNECT_FAIL 111` and "
        "Cloudflare's 521 say the same.",
        apart="`l4.refused` is netprobe's own connect refused (no proxy in between); "
        "`http.upstream_error` is a proxy that does not say why.",
        next="The upstream service and the port the proxy is configured with (the `next-hop` "
        "in the evidence names it).",
    ),
    "http.upstream_tls": dict(
        wire="The proxy's TLS handshake with its upstream failed and it says so: here a 502 "
        'with `Proxy-Status: nplab-proxy; error=tls_certificate_error; details="certificate '
        "has expired\"` (RFC 9209). Envoy's TLS transport failure, Squid's "
        "`ERR_SECURE_CONNECT_FAIL` and Cloudflare's 525/526 say the same.",
        apart="The `tls.*` codes are about netprobe's own handshake with the target; this is "
        "the proxy's handshake with the server behind it, which netprobe does not see.",
        next="The upstream's certificate (expiry, chain, name) and the proxy's TLS settings "
        "toward it (trusted CA, SNI).",
    ),
    # -- a forward proxy on the way --------------------------------------------------------
    "proxy.auth_required": dict(
        wire="The way to the proxy works (DNS, TCP to it); it answers the CONNECT (or the "
        "forwarded request) with `407 Proxy Authentication Required` and a "
        "`Proxy-Authenticate` challenge: the request never left the proxy.",
        apart="A 401 is the target's own authentication; 407 is always the proxy's. With "
        "credentials in the proxy URL that the proxy rejects, the summary says they were "
        "sent and rejected.",
        next="The proxy's credentials in its URL (`http://user:password@host:port` in "
        "HTTPS_PROXY / HTTP_PROXY or `--proxy`): the application needs the same.",
    ),
    "proxy.denied": dict(
        wire="The proxy answers the CONNECT (or the forwarded request) itself with `403 "
        "Forbidden`; Squid adds `X-Squid-Error: ERR_ACCESS_DENIED 0`. The target is never "
        "contacted.",
        apart="A 403 from the target comes back through the proxy without `X-Squid-Error` "
        "(and is `http.client_error`); `proxy.connect_failed` is a proxy that tried and "
        "could not reach the target.",
        next="The proxy's access rules for this destination, port and client (Squid's "
        "`acl` / `http_access`), or NO_PROXY if the application should go direct.",
    ),
    "proxy.connect_failed": dict(
        wire="The proxy tried to reach the target and could not: here Squid answers the "
        "forwarded GET with `503 Service Unavailable` and `X-Squid-Error: ERR_CONNECT_FAIL "
        "111` (111 is ECONNREFUSED). Squid 5.7 reports a target name it cannot resolve as "
        "`502 ERR_READ_ERROR` (GET) or `500 ERR_CANNOT_FORWARD` (CONNECT), never "
        "`ERR_DNS_FAIL`; a CONNECT the proxy does not answer in time is the same code.",
        apart="`l4.refused` and friends are the way to the proxy failing (the summary then "
        "starts with the proxy); this code means the proxy itself answered, about the "
        "target. A reverse proxy's answer about its upstream is `http.upstream_*`.",
        next="The target from the proxy's side: its name as the proxy resolves it, its "
        "port, the firewall between them (Squid's cache.log and access.log name the cause).",
    ),
}
