"""TLS on the established connection: one handshake, and the certificate facts, even on failure.

We drive the handshake ourselves over memory BIOs (the way ``anyio.streams.tls`` does) rather
than calling ``TLSStream.wrap``, for two observations the wrapper would lose:

* the first bytes the peer sent, so that "plain HTTP on the TLS port" is named as such;
* the ``SSLObject`` after a failed verification, which still holds the chain the server
  presented (OpenSSL keeps the peer chain of a failed handshake): the report can say
  "certificate for other.example, expired 2 days ago, issued by ..." without a second
  connection.

On success the same objects become an ``anyio.streams.tls.TLSStream`` for the application rung.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import ssl
import time
from collections.abc import Callable

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream

from ..options import Options
from ..protocols.sniff import describe_bytes, looks_like_tls
from ..steps import ErrorInfo, TlsStep
from ..steps.tls import TlsFailure
from ._context import ProbeContext
from ._lazy import import_off_loop

__all__ = ["alert_of", "client_context", "error_info", "start_tls"]

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


def error_info(exc: BaseException) -> ErrorInfo:
    """``ErrorInfo`` of an exception; an ``SSLError``'s errno is OpenSSL's, not the OS's."""
    info = ErrorInfo.from_exception(exc)
    if isinstance(exc, ssl.SSLError):
        return ErrorInfo(type=info.type, message=str(exc))
    return info


def client_context(options: Options, *, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    """The client context for ``options``: the caller's ``ssl_context`` as is, else a cached one.

    The default trusts the system store (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured, as
    OpenSSL's default verify paths do); ``ca_file`` replaces it. Contexts are cached per
    configuration and per file modification time, so a renewed CA bundle is picked up.
    """
    if options.ssl_context is not None:
        return options.ssl_context
    files = (options.ca_file, options.client_cert, options.client_key)
    key = (
        options.verify,
        *files,
        *(_mtime(f) for f in files),
        os.environ.get("SSL_CERT_FILE"),
        os.environ.get("SSL_CERT_DIR"),
        alpn,
    )
    return _build_context(key)


def _mtime(path: str | None) -> int | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


@functools.lru_cache(maxsize=32)
def _build_context(key: tuple[object, ...]) -> ssl.SSLContext:
    verify, ca_file, client_cert, client_key = key[0], key[1], key[2], key[3]
    alpn = key[-1]
    if verify:
        ctx = ssl.create_default_context(cafile=ca_file if isinstance(ca_file, str) else None)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if isinstance(client_cert, str):
        ctx.load_cert_chain(client_cert, client_key if isinstance(client_key, str) else None)
    if isinstance(alpn, tuple) and alpn:
        ctx.set_alpn_protocols([str(a) for a in alpn])
    return ctx


async def start_tls(ctx: ProbeContext, stream: ByteStream) -> tuple[TlsStep, ByteStream | None]:
    """Run the TLS handshake over ``stream``; return the step and the TLS stream (None on failure).

    Never raises for a network or TLS fault; outer cancellation propagates.
    """
    target = ctx.target
    server_name = None if target.is_ip else target.host
    start = time.perf_counter()

    def ms() -> float:
        return round((time.perf_counter() - start) * 1000.0, 3)

    # gRPC needs h2; http/1.1 is offered too, so that an HTTP/1-only server still completes the
    # handshake and the gRPC rung can say what it is (instead of a no_application_protocol).
    alpn = {"http": ("http/1.1",), "grpc": ("h2", "http/1.1")}.get(target.protocol, ())
    try:
        ssl_ctx = client_context(ctx.options, alpn=alpn)
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
    hs = _Handshake(stream, ssl_ctx, target.host)
    failure: TlsFailure | None = None
    error: BaseException | None = None
    try:
        with anyio.fail_after(ctx.budget(ctx.options.read_timeout)):
            await hs.run()
    except TimeoutError as exc:
        failure, error = "timeout", exc
    except ssl.SSLCertVerificationError as exc:
        failure, error = "verify", exc
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ssl.SSLSyscallError) as exc:
        failure, error = "closed", exc
    except ssl.SSLError as exc:
        failure, error = "alert", exc
    except ConnectionAbortedError as exc:
        # asyncio's start_tls reports its handshake timeout as a bare ConnectionAbortedError
        # (no errno); a real ECONNABORTED from the kernel is a closed connection.
        failure, error = ("closed" if exc.errno == errno.ECONNABORTED else "timeout"), exc
    except (OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
        failure, error = "closed", exc

    # cryptography (~30 ms of imports) only once a certificate is there to describe, and
    # off the event loop, where the total deadline can cut it (see _lazy.py).
    await import_off_loop("netprobe.protocols.x509")
    from ..protocols.x509 import describe_chain

    chain = describe_chain(_presented_chain(hs.ssl_object))
    common: dict[str, object] = {
        "server_name": server_name,
        "verified": verified,
        "chain": chain,
        "duration_ms": ms(),
    }
    if failure is None:
        obj = hs.ssl_object
        cipher = obj.cipher()
        step = TlsStep(
            status="ok",
            version=obj.version(),
            cipher=cipher[0] if cipher else None,
            alpn=obj.selected_alpn_protocol(),
            **common,
        )
        tls_stream = TLSStream(
            transport_stream=stream,
            standard_compatible=False,  # no close_notify round trip when the diagnosis ends
            _ssl_object=obj,
            _read_bio=hs.incoming,
            _write_bio=hs.outgoing,
        )
        return step, tls_stream

    assert error is not None
    first = bytes(hs.first_bytes)
    if first and not looks_like_tls(first):
        failure = "not_tls"
    elif failure in ("alert", "closed") and hs.eof and not first:
        failure = "closed"
    cause = error.__cause__ if isinstance(error, anyio.BrokenResourceError) else None
    info = error_info(cause or error)
    reason_code = getattr(error, "reason", None)
    ssl_reason = reason_code if isinstance(reason_code, str) else None
    verify_code = getattr(error, "verify_code", None)
    verify_message = getattr(error, "verify_message", None)
    verify_text = verify_message if isinstance(verify_message, str) else None
    alert = alert_of(ssl_reason)
    step = TlsStep(
        status="failed",
        reason=_failure_reason(failure, info, first, verify_text, alert, ssl_reason),
        error=info,
        failure=failure,
        verify_code=verify_code if isinstance(verify_code, int) else None,
        verify_message=verify_text,
        ssl_reason=ssl_reason,
        alert=alert,
        peer_sent=describe_bytes(first) if failure == "not_tls" else None,
        peer_bytes=first.hex() if first else None,
        **common,
    )
    return step, None


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


class _Handshake:
    """The client handshake over memory BIOs, keeping the first bytes the peer sent."""

    def __init__(self, stream: ByteStream, ssl_ctx: ssl.SSLContext, host: str) -> None:
        self.stream = stream
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        # An IP literal as server_hostname sends no SNI and checks the IP SANs instead.
        self.ssl_object = ssl_ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=host)
        self.first_bytes = bytearray()
        self.eof = False

    async def run(self) -> None:
        while True:
            try:
                self.ssl_object.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                await self._receive()
            except ssl.SSLWantWriteError:
                await self._flush()
            except ssl.SSLError:
                # Send our own alert (e.g. bad_certificate) so the server logs why.
                await self._flush_quietly()
                raise
            else:
                await self._flush()
                return

    async def _receive(self) -> None:
        try:
            data = await self.stream.receive()
        except anyio.EndOfStream:
            self.eof = True
            self.incoming.write_eof()
            return
        if len(self.first_bytes) < _PEEK:
            self.first_bytes += data[: _PEEK - len(self.first_bytes)]
        self.incoming.write(data)

    async def _flush(self) -> None:
        if self.outgoing.pending:
            await self.stream.send(self.outgoing.read())

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self._flush()
