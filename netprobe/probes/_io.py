"""The I/O seam: where what sockets, anyio and OpenSSL raise becomes plain data.

Every probe reads and writes through anyio byte streams; what can go wrong there arrives as
one of a handful of exceptions (``STREAM_ERRORS``), which :func:`stream_error` maps to a
:class:`StreamError` (what happened, and the OS or TLS error behind it as plain data), the
way httpcore maps its backends' exceptions at one place. The errno of a failed ``connect()``
maps to its outcome here too (:data:`CONNECT_OUTCOMES`), and durations are measured with one
helper (:func:`elapsed_ms`); :func:`on_asyncio` says whether the asyncio-only fast paths
may be taken.

:class:`TlsStream` is TLS over any byte stream, driven through an ``ssl.SSLObject`` and two
memory BIOs (the way ``anyio.streams.tls`` and trio's ``SSLStream`` work), with the handshake
exposed as a step of its own so that the TLS rung can watch the bytes the peer sends back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio
import anyio.lowlevel
import sniffio
from anyio.abc import ByteStream, SocketStream
from anyio.streams.tls import TLSAttribute

from ..steps import ConnectOutcome, ErrorInfo

__all__ = [
    "CONNECT_OUTCOMES",
    "STREAM_ERRORS",
    "BrokenStream",
    "StreamError",
    "TlsStream",
    "connect_outcome",
    "elapsed_ms",
    "error_info",
    "on_asyncio",
    "stream_error",
    "stream_from_socket",
]

T = TypeVar("T")


def on_asyncio() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop, when the current async library is asyncio (else None)."""
    try:
        if sniffio.current_async_library() != "asyncio":
            return None
        return asyncio.get_running_loop()
    except (RuntimeError, sniffio.AsyncLibraryNotFoundError):
        return None


def elapsed_ms(since: float) -> float:
    """Milliseconds since ``since`` (a ``time.perf_counter()`` reading), to the microsecond."""
    return round((time.perf_counter() - since) * 1000.0, 3)


#: The errno of a failed ``connect()`` (connect(2)) -> what it means for the connect.
CONNECT_OUTCOMES: Mapping[int, ConnectOutcome] = {
    errno.ECONNREFUSED: "refused",
    errno.EHOSTUNREACH: "host_unreachable",
    errno.ENETUNREACH: "network_unreachable",
    errno.EADDRNOTAVAIL: "port_exhaustion",
    errno.EMFILE: "fd_exhaustion",
    errno.ENFILE: "fd_exhaustion",
    errno.ETIMEDOUT: "timeout",
    errno.EPERM: "denied",
    errno.EACCES: "denied",
    # An RST in SYN_SENT gives ECONNREFUSED (tcp_reset() in the kernel); ECONNRESET means the
    # handshake had completed and the peer reset the connection before we looked at it.
    errno.ECONNRESET: "reset",
}


def connect_outcome(exc: OSError) -> ConnectOutcome:
    """The outcome of a ``connect()`` that failed with ``exc`` (``error`` when unknown)."""
    return CONNECT_OUTCOMES.get(exc.errno or -1, "error")


def error_info(exc: BaseException) -> ErrorInfo:
    """``exc`` as plain data. anyio's ``BrokenResourceError`` stands for the OS error that
    broke the stream (ECONNRESET...): that one is recorded. An ``SSLError``'s errno is
    OpenSSL's error code, not an OS errno: it is left out."""
    if isinstance(exc, anyio.BrokenResourceError) and isinstance(exc.__cause__, OSError):
        exc = exc.__cause__
    info = ErrorInfo.from_exception(exc)
    if isinstance(exc, ssl.SSLError):
        return ErrorInfo(type=info.type, message=str(exc))
    return info


StreamFailure = Literal[
    "timeout",  # our own deadline for the read or write ran out
    "eof",  # the peer closed its side cleanly (FIN, or a TLS close_notify)
    "broken",  # the connection broke (RST, EPIPE...): see the error
    "closed",  # our side had closed the stream already
    "tls_verify",  # OpenSSL did not verify the peer's certificate
    "tls_closed",  # the connection ended inside the TLS protocol (no close_notify)
    "tls_alert",  # a TLS alert, sent or received (see ``tls_reason``)
]

#: Everything a read, a write or a TLS handshake on an anyio byte stream raises for what the
#: peer or the network did (``stream_error`` maps each; tests/test_io.py lists them).
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,  # ssl.SSLError and ConnectionError included
)


@dataclass(frozen=True)
class StreamError:
    """What ended a read, a write or a handshake, as data."""

    kind: StreamFailure
    #: The exception behind it, as data (for ``broken``: the OS error, e.g. ECONNRESET).
    error: ErrorInfo
    #: ``SSLError.reason`` (e.g. ``TLSV13_ALERT_CERTIFICATE_REQUIRED``), for TLS errors.
    tls_reason: str | None = None
    #: OpenSSL's X509_V_ERR_* code and text, when the certificate did not verify.
    verify_code: int | None = None
    verify_message: str | None = None

    @property
    def reset(self) -> bool:
        """The peer reset the connection (ECONNRESET)."""
        return self.error.errno_name == "ECONNRESET"


def stream_error(exc: BaseException) -> StreamError:
    """Map one of :data:`STREAM_ERRORS` to what it means; anything else is a bug: TypeError."""
    if isinstance(exc, ssl.SSLError):
        # OpenSSL sets these; an SSLError made elsewhere may lack them.
        reason = getattr(exc, "reason", None)
        reason = reason if isinstance(reason, str) else None
        if isinstance(exc, ssl.SSLCertVerificationError):
            code = getattr(exc, "verify_code", None)
            message = getattr(exc, "verify_message", None)
            return StreamError(
                "tls_verify",
                error_info(exc),
                reason,
                code if isinstance(code, int) else None,
                message if isinstance(message, str) else None,
            )
        if isinstance(exc, ssl.SSLZeroReturnError | ssl.SSLEOFError | ssl.SSLSyscallError):
            kind: StreamFailure = "tls_closed"
        else:
            kind = "tls_alert"
        return StreamError(kind, error_info(exc), reason)
    if isinstance(exc, ConnectionAbortedError) and exc.errno is None:
        # asyncio reports its own TLS handshake timeout as a bare ConnectionAbortedError (no
        # errno); a real ECONNABORTED from the kernel is a broken connection.
        return StreamError("timeout", error_info(exc))
    if isinstance(exc, TimeoutError):
        return StreamError("timeout", error_info(exc))
    if isinstance(exc, anyio.EndOfStream):
        return StreamError("eof", error_info(exc))
    if isinstance(exc, anyio.ClosedResourceError):
        return StreamError("closed", error_info(exc))
    if isinstance(exc, anyio.BrokenResourceError):
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLError):
            return stream_error(cause)
        return StreamError("broken", error_info(exc))
    if isinstance(exc, OSError):
        return StreamError("broken", error_info(exc))
    raise TypeError(f"not a stream error: {type(exc).__name__}") from exc


async def stream_from_socket(sock: socket.socket) -> ByteStream:
    """Hand a connected socket to anyio; the socket is closed if that fails (or is cancelled).

    The peer may have reset the connection between ``connect()`` and here (an RST that wins
    the race, seen under load): the socket is then no longer connected, ``getpeername()``
    fails with ENOTCONN, and anyio refuses it with ``ValueError``. That is the peer's doing,
    not a bug: the error the kernel recorded for the socket (``SO_ERROR``: ECONNRESET, per
    tcp_reset() in the kernel) is handed on as a :class:`BrokenStream`, whose first read or
    write fails the way a stream broken by the peer does, so that the rung that uses it
    (TLS, HTTP, a database greeting) reports the reset as its own observation.
    """
    try:
        return await SocketStream.from_socket(sock)
    except ValueError:
        err = 0
        with contextlib.suppress(OSError):
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        sock.close()
        code = err or errno.ENOTCONN
        return BrokenStream(OSError(code, os.strerror(code)))
    except BaseException:
        sock.close()
        raise


class BrokenStream(ByteStream):
    """A connection the peer broke before it could be used: every read and write fails as
    anyio's do for a reset connection (``BrokenResourceError`` from the OS error)."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def _broken(self) -> anyio.BrokenResourceError:
        exc = anyio.BrokenResourceError()
        exc.__cause__ = self.error
        return exc

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await anyio.lowlevel.checkpoint()
        raise self._broken()

    async def send(self, item: bytes) -> None:
        await anyio.lowlevel.checkpoint()
        raise self._broken()

    async def send_eof(self) -> None:
        await anyio.lowlevel.checkpoint()
        raise self._broken()

    async def aclose(self) -> None:
        await anyio.lowlevel.checkpoint()


#: Bytes of a handshake kept for the TLS rung (a certificate chain fits many times over).
_KEEP = 64 * 1024


class TlsStream(ByteStream):
    """TLS over ``transport``: the client side, through an ``SSLObject`` and memory BIOs.

    :meth:`handshake` runs the handshake and raises ``ssl.SSLError`` (or one of
    :data:`STREAM_ERRORS`) as OpenSSL and the transport report it; ``observe`` sees every
    chunk the peer sent during it (``b""`` for its EOF), so that the TLS rung can say what a
    peer that is not TLS sent instead. After it, the stream reads and writes application
    data as ``anyio.streams.tls.TLSStream`` does with ``standard_compatible=False``: closing
    sends no close_notify (a diagnosis does not wait for the peer's), and a peer that closes
    without one reads as a clean end of stream.
    """

    def __init__(
        self, transport: ByteStream, context: ssl.SSLContext, server_hostname: str | None
    ) -> None:
        self.transport = transport
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        # An IP literal as server_hostname sends no SNI (RFC 6066 §3) and makes OpenSSL check
        # the IP subjectAltNames instead of the DNS ones.
        self.ssl_object = context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )
        #: What this client sent during the handshake (its first ``_KEEP`` bytes), for the TLS
        #: rung to read the client-certificate exchange (protocols/tls_records.py).
        self.handshake_sent = bytearray()
        self._recording = False

    async def handshake(self, observe: Callable[[bytes], None] | None = None) -> None:
        """The client handshake. On a TLS error, the alert we owe the peer (e.g.
        bad_certificate) is sent before the error is raised, so that the server logs why."""
        self._recording = True
        try:
            await self._handshake(observe)
        finally:
            self._recording = False

    async def _handshake(self, observe: Callable[[bytes], None] | None) -> None:
        while True:
            try:
                self.ssl_object.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                try:
                    data = await self.transport.receive()
                except anyio.EndOfStream:
                    data = b""
                if observe is not None:
                    observe(data)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
            except ssl.SSLWantWriteError:
                await self._flush()
            except ssl.SSLError:
                # The peer may be gone already: the TLS error below stays the reason.
                with contextlib.suppress(*STREAM_ERRORS):
                    await self._flush()
                raise
            else:
                await self._flush()
                return

    async def receive(self, max_bytes: int = 65536) -> bytes:
        data = await self._call(self.ssl_object.read, max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        await self._call(self.ssl_object.write, item)

    async def send_eof(self) -> None:
        raise NotImplementedError("a TLS stream cannot half-close (no send_eof)")

    async def aclose(self) -> None:
        await self.transport.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The transport's attributes, and anyio's TLS ones a TLS stream answers (the agreed
        ALPN protocol, the ``SSLObject``, the version), as ``anyio.streams.tls`` does."""
        return {
            **self.transport.extra_attributes,
            TLSAttribute.alpn_protocol: self.ssl_object.selected_alpn_protocol,
            TLSAttribute.ssl_object: lambda: self.ssl_object,
            TLSAttribute.tls_version: self.ssl_object.version,
        }

    async def _flush(self) -> None:
        if self._outgoing.pending:
            data = self._outgoing.read()
            if self._recording and len(self.handshake_sent) < _KEEP:
                self.handshake_sent += data[: _KEEP - len(self.handshake_sent)]
            await self.transport.send(data)

    async def _call(self, method: Callable[..., T], *args: Any) -> T:
        """Run an ``SSLObject`` method, moving records between the BIOs and the transport
        until it completes (anyio's ``TLSStream._call_sslobject_method``)."""
        while True:
            try:
                result = method(*args)
            except ssl.SSLWantReadError:
                try:
                    await self._flush()
                    data = await self.transport.receive()
                except anyio.EndOfStream:
                    self._incoming.write_eof()
                except OSError as exc:
                    self._incoming.write_eof()
                    self._outgoing.write_eof()
                    raise anyio.BrokenResourceError from exc
                else:
                    self._incoming.write(data)
            except ssl.SSLWantWriteError:
                await self._flush()
            except ssl.SSLSyscallError as exc:
                self._incoming.write_eof()
                self._outgoing.write_eof()
                raise anyio.BrokenResourceError from exc
            except ssl.SSLError as exc:
                self._incoming.write_eof()
                self._outgoing.write_eof()
                if isinstance(exc, ssl.SSLEOFError) or (
                    exc.strerror and "UNEXPECTED_EOF_WHILE_READING" in exc.strerror
                ):
                    # A peer that closes without close_notify: the end of the data for us.
                    raise anyio.EndOfStream from None
                raise
            else:
                await self._flush()
                return result
