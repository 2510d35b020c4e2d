"""The demo's cases: data. Each names the servers it needs in its target and options.

``{name}`` in a target or an option value is a server of `netprobe.demo.fixtures.FIXTURES`
(``{tcp.address}``, ``{pki.ca_file}``...); an option value that is exactly ``{name}`` is the
object itself (an `ssl.SSLContext`). The demo starts only the servers its cases use.
"""

from __future__ import annotations

from .case import DemoCase

__all__ = ["CASES"]

_TLS = {"read_timeout": 1.0, "ca_file": "{pki.ca_file}"}

CASES: tuple[DemoCase, ...] = (
    # Transport and names.
    DemoCase("a port with a listener", "tcp://{tcp.address}", None),
    DemoCase("a closed port (RST)", "127.0.0.1:{closed}", "l4.refused"),
    DemoCase(
        "a port whose SYNs are dropped (full accept queue)",
        "tcp://{silent.address}",
        "l4.filtered",
        {"connect_timeout": 1.0},
    ),
    DemoCase(
        "a name that does not exist (loopback DNS server)",
        "nope.demo.test:5432",
        "dns.nxdomain",
        {"nameservers": ["{dns.address}"]},
    ),
    # Databases.
    DemoCase("a real redis-server (loopback)", "redis://{redis.address}", None),
    DemoCase(
        "a real redis-server with maxclients 1, its slot taken",
        "redis://{redis_full.address}",
        "db.too_many_connections",
    ),
    # TLS and HTTP.
    DemoCase("HTTPS, healthy", "https://localhost:{tls_valid.port}/health", None, _TLS),
    DemoCase(
        "certificate expired", "https://localhost:{tls_expired.port}/", "tls.cert_expired", _TLS
    ),
    DemoCase(
        "certificate for another name",
        "https://localhost:{tls_wrong_host.port}/",
        "tls.hostname_mismatch",
        _TLS,
    ),
    DemoCase(
        "certificate from an unknown CA",
        "https://localhost:{tls_unknown_ca.port}/",
        "tls.cert_untrusted",
        _TLS,
    ),
    DemoCase(
        "certificate expiring in 5 days (warning)",
        "https://localhost:{tls_expiring_soon.port}/health",
        None,
        _TLS,
    ),
    DemoCase("plain HTTP on the TLS port", "https://localhost:{http.port}/", "tls.not_tls", _TLS),
    DemoCase(
        "accepts, never answers the ClientHello",
        "https://localhost:{mute.port}/",
        "tls.handshake_timeout",
        _TLS,
    ),
    DemoCase(
        "resets right after accept",
        "https://localhost:{reset.port}/",
        "l7.connection_closed",
        _TLS,
    ),
    DemoCase(
        "requires a client certificate",
        "https://localhost:{tls_client_cert.port}/health",
        "tls.client_cert_required",
        _TLS,
    ),
    DemoCase(
        "TLS 1.3-only server, TLS 1.2 client",
        "https://localhost:{tls13_only.port}/",
        "tls.protocol_version",
        {**_TLS, "ssl_context": "{tls12_client}"},
    ),
    DemoCase(
        "HTTP 503 with Retry-After",
        "https://localhost:{tls_valid.port}/busy",
        "http.server_error",
        _TLS,
    ),
    DemoCase(
        "HTTP 404 on the health path",
        "https://localhost:{tls_valid.port}/missing",
        "http.client_error",
        _TLS,
    ),
    DemoCase(
        "HTTP server hangs after the request",
        "http://localhost:{http.port}/hang",
        "http.timeout",
        _TLS,
    ),
    DemoCase(
        "answers bytes that are not HTTP",
        "http://localhost:{http.port}/garbage",
        "http.protocol_error",
        _TLS,
    ),
)
