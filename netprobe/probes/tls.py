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

import anyio
from anyio.abc import ByteStream

from ..protocols.postgres import SslPolicy
from ..protocols.sniff import describe_bytes, looks_like_tls
from ..steps import ErrorInfo, TlsFailure, TlsStep
from ._context import ProbeContext
from ._io import STREAM_ERRORS, StreamError, StreamFailure, TlsStream, elapsed_ms, stream_error
from ._lazy import import_off_loop
from .ssl_contexts import client_context

__all__ = ["alert_of", "start_tls"]

_PEEK = 64  # bytes of a non-TLS answer kept as evidence
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
        if len(first) < _PEEK:
            first.extend(data[: _PEEK - len(first)])

    failed: StreamError | None = None
    try:
        with anyio.fail_after(ctx.budget(ctx.options.read_timeout)):
            await tls.handshake(observe)
    except STREAM_ERRORS as exc:
        failed = stream_error(exc)

    # cryptography (~30 ms of imports) only once a certificate is there to describe, and
    # off the event loop, where the total deadline can cut it (see _lazy.py).
    await import_off_loop("netprobe.protocols.x509")
    from ..protocols.x509 import describe_chain

    chain = describe_chain(_presented_chain(tls.ssl_object))
    common: dict[str, object] = {
        "server_name": server_name,
        "verified": verified,
        "chain": chain,
        "duration_ms": elapsed_ms(start),
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
    peer = bytes(first)
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
