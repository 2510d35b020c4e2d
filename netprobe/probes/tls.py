"""TLS on the established connection: one handshake, and the certificate facts, even on failure.

The handshake runs on our own TLS stream (``_io.TlsStream``: an ``SSLObject`` over memory
BIOs, as ``anyio.streams.tls`` does) rather than ``TLSStream.wrap``, for two observations the
wrapper would lose:

* the first bytes the peer sent, so that "plain HTTP on the TLS port" is named as such;
* the ``SSLObject`` after a failed verification, which still holds the chain the server
  presented (OpenSSL keeps the peer chain of a failed handshake): the report can say
  "certificate for other.example, expired 2 days ago, issued by ..." without a second
  connection.

On success the same stream carries the application rung.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime

import anyio
from anyio.abc import ByteStream

from ..protocols.postgres import SslPolicy
from ..protocols.sniff import describe_bytes, looks_like_tls
from ..protocols.tls_records import view_handshake
from ..steps import CertificateInfo, ErrorInfo, TlsFailure, TlsStep
from ._context import ProbeContext
from ._io import STREAM_ERRORS, StreamError, StreamFailure, TlsStream, elapsed_ms, stream_error
from ._lazy import import_off_loop
from .ssl_contexts import client_context

__all__ = ["alert_of", "await_acceptance", "start_tls"]

_PEEK = 64  # bytes of a non-TLS answer kept as evidence
_KEEP = 64 * 1024  # bytes of the server's handshake kept to read it (protocols/tls_records.py)
_ENCODING_DER = 2  # _ssl.ENCODING_DER, for the private 3.10-3.12 chain API

#: OpenSSL reason codes of a failed handshake, normalised to the alert (or refusal) they mean.
_ALERTS: dict[str, str] = {
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol_version",
    "UNSUPPORTED_PROTOCOL": "protocol_version",
    "WRONG_SSL_VERSION": "protocol_version",
    "NO_PROTOCOLS_AVAILABLE": "protocol_version",
    "TLSV1_ALERT_INAPPROPRIATE_FALLBACK": "protocol_version",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake_failure",
    "NO_SHARED_CIPHER": "no_shared_cipher",
    "NO_CIPHERS_AVAILABLE": "no_shared_cipher",
    "NO_CIPHER_MATCH": "no_shared_cipher",
    "TLSV1_ALERT_INSUFFICIENT_SECURITY": "insufficient_security",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "certificate_required",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "certificate_required",
    "SSLV3_ALERT_BAD_CERTIFICATE": "bad_certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "certificate_expired",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "certificate_revoked",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "unsupported_certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "certificate_unknown",
    "TLSV1_ALERT_UNKNOWN_CA": "unknown_ca",
    "TLSV1_ALERT_ACCESS_DENIED": "access_denied",
    "TLSV1_ALERT_DECRYPT_ERROR": "decrypt_error",
    "TLSV1_ALERT_INTERNAL_ERROR": "internal_error",
    "TLSV1_UNRECOGNIZED_NAME": "unrecognized_name",
    "TLSV1_ALERT_NO_APPLICATION_PROTOCOL": "no_application_protocol",
    "SSLV3_ALERT_ILLEGAL_PARAMETER": "illegal_parameter",
    "TLSV1_ALERT_DECODE_ERROR": "decode_error",
}


def alert_of(reason: str | None) -> str | None:
    """The alert an OpenSSL ``SSLError.reason`` stands for (``None`` when it is not one)."""
    if not reason:
        return None
    if reason in _ALERTS:
        return _ALERTS[reason]
    for prefix in ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_"):
        if reason.startswith(prefix):
            return reason[len(prefix) :].lower()
    return None


async def start_tls(
    ctx: ProbeContext, stream: ByteStream, *, sslmode: SslPolicy | None = None
) -> tuple[TlsStep, ByteStream | None]:
    """Run the TLS handshake over ``stream``; return the step and the TLS stream (None on failure).

    ``sslmode``: the handshake is PostgreSQL's in-protocol one, verified as the DSN's
    sslmode says (``ssl_contexts.client_context``). Never raises for a network or TLS
    fault; outer cancellation propagates.
    """
    target = ctx.target
    server_name = None if target.is_ip else target.host
    start = time.perf_counter()
    # gRPC needs h2; http/1.1 is offered too, so that an HTTP/1-only server still completes the
    # handshake and the gRPC rung can say what it is (instead of a no_application_protocol).
    alpn = {"http": ("http/1.1",), "grpc": ("h2", "http/1.1")}.get(target.protocol, ())
    try:
        ssl_ctx = client_context(ctx.options, alpn=alpn, sslmode=sslmode)
    except (OSError, ssl.SSLError) as exc:
        return (
            TlsStep(
                status="failed",
                reason=f"could not set up the local TLS context: {exc}",
                server_name=server_name,
                error=ErrorInfo.from_exception(exc),
                failure="error",
            ),
            None,
        )
    verified = ssl_ctx.verify_mode != ssl.CERT_NONE
    tls = TlsStream(stream, ssl_ctx, target.host)
    first = bytearray()
    eof = False

    def observe(data: bytes) -> None:
        nonlocal eof
        eof = eof or not data
        if len(first) < _KEEP:
            first.extend(data[: _KEEP - len(first)])

    failed: StreamError | None = None
    try:
        with anyio.fail_after(ctx.budget(ctx.options.read_timeout)):
            await tls.handshake(observe)
    except STREAM_ERRORS as exc:
        failed = stream_error(exc)
    # The handshake's end (curl's time_appconnect), before describing what it presented.
    ctx.mark("tls_handshake")

    # cryptography (~30 ms of imports) only once a certificate is there to describe, and
    # off the event loop, where the total deadline can cut it (see _lazy.py).
    await import_off_loop("netprobe.protocols.x509")
    from ..protocols.x509 import describe_chain

    chain = describe_chain(_presented_chain(tls.ssl_object))
    seen = view_handshake(bytes(tls.handshake_sent), bytes(first))
    in_store = None
    if failed is not None and failed.verify_code in _ISSUER_MISSING and chain:
        in_store = _store_copy(ssl_ctx, chain)
    common: dict[str, object] = {
        "local_time": datetime.now(UTC),
        "issuer_in_store": in_store,
        "server_name": server_name,
        "verified": verified,
        "chain": chain,
        "duration_ms": elapsed_ms(start),
        "client_versions": _client_versions(ssl_ctx),
        "client_cert_requested": seen.client_cert_requested,
        "client_cert_sent": seen.client_cert_sent,
        # Described only when the classification may need it (a failure, or a request).
        "client_cert": _client_certificate(ctx)
        if failed is not None or seen.client_cert_requested
        else None,
    }
    if failed is None:
        obj = tls.ssl_object
        cipher = obj.cipher()
        step = TlsStep(
            status="ok",
            version=obj.version(),
            cipher=cipher[0] if cipher else None,
            alpn=obj.selected_alpn_protocol(),
            **common,
        )
        return step, tls

    failure = _FAILURES[failed.kind]
    peer = bytes(first[:_PEEK])
    if peer and not looks_like_tls(peer):
        failure = "not_tls"
    elif failure in ("alert", "closed") and eof and not peer:
        failure = "closed"
    info = failed.error
    alert = alert_of(failed.tls_reason)
    reason = _failure_reason(failure, info, peer, failed.verify_message, alert, failed.tls_reason)
    step = TlsStep(
        status="failed",
        reason=reason,
        error=info,
        failure=failure,
        verify_code=failed.verify_code,
        verify_message=failed.verify_message,
        ssl_reason=failed.tls_reason,
        alert=alert,
        peer_sent=describe_bytes(peer) if failure == "not_tls" else None,
        peer_bytes=peer.hex() if peer else None,
        **common,
    )
    return step, None


#: TLS versions, low to high, by the names ``SSLObject.version()`` uses.
_VERSION_ORDER: tuple[tuple[ssl.TLSVersion, str], ...] = (
    (ssl.TLSVersion.TLSv1, "TLSv1"),
    (ssl.TLSVersion.TLSv1_1, "TLSv1.1"),
    (ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
    (ssl.TLSVersion.TLSv1_3, "TLSv1.3"),
)


def _client_versions(ctx: ssl.SSLContext) -> tuple[str, ...]:
    """The versions ``ctx`` allows. An open floor (MINIMUM_SUPPORTED) is TLS 1.2 with OpenSSL
    3: its default security level refuses TLS 1.0 and 1.1 (their handshakes sign with SHA-1
    and MD5; SSL_CTX_set_security_level(3)); an open ceiling is the newest this build has."""
    low, high = ctx.minimum_version, ctx.maximum_version
    if low == ssl.TLSVersion.MINIMUM_SUPPORTED:
        low = ssl.TLSVersion.TLSv1_2 if ssl.OPENSSL_VERSION_INFO >= (3,) else ssl.TLSVersion.TLSv1
    if high == ssl.TLSVersion.MAXIMUM_SUPPORTED:
        high = ssl.TLSVersion.TLSv1_3 if ssl.HAS_TLSv1_3 else ssl.TLSVersion.TLSv1_2
    order = [v for v, _ in _VERSION_ORDER]
    if low not in order or high not in order:
        return ()
    return tuple(
        n for v, n in _VERSION_ORDER if order.index(low) <= order.index(v) <= order.index(high)
    )


#: X509_V_ERR_* codes of an issuer that could not be found (x509_vfy.h): 2 unable to get
#: issuer certificate, 20 unable to get local issuer certificate, 21 unable to verify the
#: first certificate.
_ISSUER_MISSING = frozenset({2, 20, 21})


def _store_copy(ctx: ssl.SSLContext, chain: list[CertificateInfo]) -> CertificateInfo | None:
    """The certificate of this client's trust store named like the leaf's issuer, when the
    server did not send one. ``get_ca_certs`` lists the CA file's certificates and those the
    failed verification just looked up in a hashed directory (the system store loads them
    on demand), which is where the issuer would have been found."""
    leaf = chain[0]
    if any(c.subject == leaf.issuer for c in chain[1:]):
        return None
    from ..protocols.x509 import describe_chain

    try:
        ders = ctx.get_ca_certs(binary_form=True)
    except (ssl.SSLError, ValueError):
        return None
    for cert in describe_chain([bytes(d) for d in ders if isinstance(d, bytes | bytearray)]):
        if cert.subject == leaf.issuer:
            return cert
    return None


def _client_certificate(ctx: ProbeContext) -> CertificateInfo | None:
    """The client certificate of ``client_cert=`` (the first of its file), as the server
    would see it; None without one (or inside a caller's ``ssl_context``: not readable)."""
    path = ctx.options.ssl_context is None and ctx.options.client_cert
    if not path:
        return None
    from ..protocols.x509 import describe_pem

    try:
        with open(path, "rb") as f:
            return describe_pem(f.read(1024 * 1024))
    except OSError:
        return None


async def await_acceptance(ctx: ProbeContext, stream: ByteStream, step: TlsStep) -> TlsStep:
    """After a TLS 1.3 handshake in which the server asked for a client certificate, wait
    briefly for its verdict on it, when no application exchange will read it (``tls://``).

    A TLS 1.3 server checks the client's certificate after the client considers the
    handshake complete (RFC 8446 §4.4.2: the client's Certificate travels with its
    Finished), and refuses it with an alert on the next read (certificate_required,
    unknown_ca...): without a read, such a server would read as healthy. The wait is a few
    round trips of this connection (the alert comes one round trip after our Finished),
    at least 0.1 s, within the read timeout; a server that says nothing in it has accepted.
    """
    if step.status != "ok" or step.version != "TLSv1.3" or not step.client_cert_requested:
        return step
    rtt = (ctx.marks.get("tcp_connect", 0.0) - ctx.marks.get("dns", 0.0)) / 1000.0
    window = min(ctx.budget(ctx.options.read_timeout), max(0.1, 4 * rtt))
    try:
        with anyio.move_on_after(window):
            await stream.receive(1)
        return step  # application data, or nothing: the certificate was accepted
    except STREAM_ERRORS as exc:
        failed = stream_error(exc)
    alert = alert_of(failed.tls_reason)
    failure: TlsFailure = "alert" if failed.kind == "tls_alert" else "closed"
    if failed.kind == "eof":
        reason = "the server closed the connection right after the handshake, without an alert"
    elif alert:
        reason = f"the server refused the connection after the handshake: {alert}"
    else:
        reason = f"the connection failed right after the handshake: {failed.error.message}"
    return step.replace(
        status="failed",
        failure=failure,
        reason=reason,
        error=failed.error,
        ssl_reason=failed.tls_reason,
        alert=alert,
        after_handshake=True,
    )


#: What ended the handshake (the I/O seam's words) -> the TLS rung's failure kind.
_FAILURES: dict[StreamFailure, TlsFailure] = {
    "timeout": "timeout",
    "tls_verify": "verify",
    "tls_alert": "alert",
    "tls_closed": "closed",
    "eof": "closed",
    "broken": "closed",
    "closed": "closed",
}


def _failure_reason(
    failure: TlsFailure,
    info: ErrorInfo,
    first: bytes,
    verify_message: str | None,
    alert: str | None,
    ssl_reason: str | None,
) -> str:
    if failure == "timeout":
        return "no answer to the ClientHello within the read timeout"
    if failure == "not_tls":
        return f"the peer answered with {describe_bytes(first)}, not TLS"
    if failure == "closed":
        return "the peer closed the connection during the handshake"
    if failure == "verify" and verify_message:
        return f"certificate verify failed: {verify_message}"
    if failure == "alert" and (alert or ssl_reason):
        return f"handshake refused: {alert or ssl_reason}"
    return info.message


def _presented_chain(obj: ssl.SSLObject) -> list[bytes]:
    """The chain the server sent, leaf first, even after a failed verification."""
    public: Callable[[], list[bytes] | None] | None = getattr(obj, "get_unverified_chain", None)
    if public is not None:  # Python 3.13+
        try:
            return [bytes(c) for c in public() or []]
        except (ssl.SSLError, ValueError):
            return []
    private = getattr(getattr(obj, "_sslobj", None), "get_unverified_chain", None)
    if private is not None:  # Python 3.10-3.12: _ssl.Certificate objects
        try:
            return [bytes(c.public_bytes(_ENCODING_DER)) for c in private() or []]
        except (ssl.SSLError, ValueError, AttributeError):
            return []
    try:
        leaf = obj.getpeercert(binary_form=True)
    except (ssl.SSLError, ValueError):
        return []
    return [leaf] if leaf else []
