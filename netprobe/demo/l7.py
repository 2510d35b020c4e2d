"""Demo cases for the TLS and HTTP rungs: real loopback servers with made-up certificates."""

from __future__ import annotations

import contextlib
import importlib.util
import ssl

from . import DemoCase
from .l7servers import CertBook, L7Server

__all__ = ["l7_cases"]

_FAST = {"read_timeout": 1.0}


def l7_cases(stack: contextlib.ExitStack) -> list[DemoCase]:
    """HTTPS and HTTP faults; none when ``trustme`` (which makes the certificates) is absent."""
    if importlib.util.find_spec("trustme") is None:
        return []
    book = stack.enter_context(CertBook())

    def tls(kind: str = "valid", **kwargs: object) -> L7Server:
        ctx = book.server_context(kind, **kwargs)  # type: ignore[arg-type]
        return stack.enter_context(L7Server("tls", ssl_context=ctx))

    valid, expired, wrong = tls(), tls("expired"), tls("wrong_host")
    unknown, soon = tls("unknown_ca"), tls("expiring_soon")
    mtls = tls(require_client_cert=True)
    tls13 = tls(minimum_version=ssl.TLSVersion.TLSv1_3)
    plain = stack.enter_context(L7Server("http"))
    silent = stack.enter_context(L7Server("silent"))
    reset = stack.enter_context(L7Server("reset"))
    opts = {**_FAST, "ca_file": book.ca_file}
    tls12 = ssl.create_default_context(cafile=book.ca_file)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    v = valid.port
    return [
        DemoCase("HTTPS, healthy", f"https://localhost:{v}/health", None, opts),
        DemoCase(
            "certificate expired", f"https://localhost:{expired.port}/", "tls.cert_expired", opts
        ),
        DemoCase(
            "certificate for another name",
            f"https://localhost:{wrong.port}/",
            "tls.hostname_mismatch",
            opts,
        ),
        DemoCase(
            "certificate from an unknown CA",
            f"https://localhost:{unknown.port}/",
            "tls.cert_untrusted",
            opts,
        ),
        DemoCase(
            "certificate expiring in 5 days (warning)",
            f"https://localhost:{soon.port}/health",
            None,
            opts,
        ),
        DemoCase(
            "plain HTTP on the TLS port", f"https://localhost:{plain.port}/", "tls.not_tls", opts
        ),
        DemoCase(
            "accepts, never answers the ClientHello",
            f"https://localhost:{silent.port}/",
            "tls.handshake_timeout",
            opts,
        ),
        DemoCase(
            "resets right after accept",
            f"https://localhost:{reset.port}/",
            "l7.connection_closed",
            opts,
        ),
        DemoCase(
            "requires a client certificate",
            f"https://localhost:{mtls.port}/health",
            "tls.handshake_failed",
            opts,
        ),
        DemoCase(
            "TLS 1.3-only server, TLS 1.2 client",
            f"https://localhost:{tls13.port}/",
            "tls.handshake_failed",
            {**opts, "ssl_context": tls12},
        ),
        DemoCase(
            "HTTP 503 with Retry-After", f"https://localhost:{v}/busy", "http.server_error", opts
        ),
        DemoCase(
            "HTTP 404 on the health path",
            f"https://localhost:{v}/missing",
            "http.client_error",
            opts,
        ),
        DemoCase(
            "HTTP server hangs after the request",
            f"http://localhost:{plain.port}/hang",
            "http.timeout",
            opts,
        ),
        DemoCase(
            "answers bytes that are not HTTP",
            f"http://localhost:{plain.port}/garbage",
            "http.protocol_error",
            opts,
        ),
    ]
