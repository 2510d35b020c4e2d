"""The I/O seam (netprobe/probes/_io.py): every exception that can arrive from a stream is
mapped to plain data, in one place (the way httpx checks that every httpcore exception is
mapped); and our TLS stream against a real TLS server on loopback.
"""

from __future__ import annotations

import errno
import inspect
import socket
import ssl
from collections.abc import Iterator

import anyio
import pytest
import trustme

from netprobe.probes._io import (
    CONNECT_OUTCOMES,
    STREAM_ERRORS,
    TlsStream,
    connect_outcome,
    error_info,
    stream_error,
    stream_from_socket,
)
from netprobe.steps import AddressAttempt

#: The network tests of this module run under asyncio and under trio (conftest.py).
pytestmark = pytest.mark.backends


def _broken(cause: BaseException | None) -> anyio.BrokenResourceError:
    exc = anyio.BrokenResourceError()
    exc.__cause__ = cause
    return exc


def _verify_error() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed: certificate has expired")
    exc.verify_code = 10
    exc.verify_message = "certificate has expired"
    exc.reason = "CERTIFICATE_VERIFY_FAILED"
    return exc


def _alert() -> ssl.SSLError:
    exc = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert")
    exc.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    return exc


#: Every exception a read, a write or a handshake on an anyio byte stream can raise for what
#: the peer or the network did, and what it must map to.
ARRIVALS: list[tuple[str, BaseException, str]] = [
    ("our own read deadline", TimeoutError(), "timeout"),
    ("ETIMEDOUT from the kernel", TimeoutError(errno.ETIMEDOUT, "timed out"), "timeout"),
    ("FIN", anyio.EndOfStream(), "eof"),
    ("RST under anyio", _broken(ConnectionResetError(errno.ECONNRESET, "reset")), "broken"),
    ("EPIPE under anyio", _broken(BrokenPipeError(errno.EPIPE, "broken pipe")), "broken"),
    ("broken, no cause", _broken(None), "broken"),
    ("TLS broken under anyio", _broken(ssl.SSLSyscallError(5, "syscall")), "tls_closed"),
    ("closed by us", anyio.ClosedResourceError(), "closed"),
    ("RST", ConnectionResetError(errno.ECONNRESET, "reset"), "broken"),
    ("EPIPE", BrokenPipeError(errno.EPIPE, "broken pipe"), "broken"),
    ("ECONNABORTED", ConnectionAbortedError(errno.ECONNABORTED, "aborted"), "broken"),
    ("asyncio TLS handshake timeout", ConnectionAbortedError("handshake timed out"), "timeout"),
    ("ICMP error on the socket", OSError(errno.EHOSTUNREACH, "no route"), "broken"),
    ("TLS alert", _alert(), "tls_alert"),
    ("TLS verification", _verify_error(), "tls_verify"),
    ("TLS close_notify", ssl.SSLZeroReturnError(6, "zero return"), "tls_closed"),
    ("TLS unexpected EOF", ssl.SSLEOFError(8, "EOF"), "tls_closed"),
    ("TLS syscall", ssl.SSLSyscallError(5, "syscall"), "tls_closed"),
    ("TLS want read", ssl.SSLWantReadError(2, "want read"), "tls_alert"),
    ("TLS want write", ssl.SSLWantWriteError(3, "want write"), "tls_alert"),
]


@pytest.mark.parametrize(("name", "exc", "kind"), ARRIVALS, ids=[a[0] for a in ARRIVALS])
def test_every_arrival_is_mapped(name: str, exc: BaseException, kind: str) -> None:
    def raised() -> BaseException:
        try:
            raise exc
        except STREAM_ERRORS as caught:
            return caught

    mapped = stream_error(raised())
    assert mapped.kind == kind, name
    assert mapped.error.type  # plain data, never the live exception


def test_the_list_covers_every_ssl_and_anyio_stream_exception() -> None:
    """Every exception class the ssl module defines, and anyio's stream exceptions, have a
    row above: a new one in a later Python or anyio fails here, not in a user's report."""
    listed = {type(exc) for _, exc, _ in ARRIVALS}
    ssl_errors = {
        obj for _, obj in inspect.getmembers(ssl, inspect.isclass) if issubclass(obj, ssl.SSLError)
    }
    anyio_stream = {anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError}
    assert ssl_errors | anyio_stream <= listed, sorted(c.__name__ for c in ssl_errors - listed)


def test_anything_else_is_a_bug_not_a_verdict() -> None:
    with pytest.raises(TypeError, match="not a stream error"):
        stream_error(ValueError("a parser's error is not the stream's"))
    assert not isinstance(ValueError(), STREAM_ERRORS)


def test_details_survive_as_data() -> None:
    reset = stream_error(_broken(ConnectionResetError(errno.ECONNRESET, "reset")))
    assert reset.reset and reset.error.errno_name == "ECONNRESET"
    verify = stream_error(_verify_error())
    assert (verify.verify_code, verify.verify_message) == (10, "certificate has expired")
    alert = stream_error(_alert())
    assert alert.tls_reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    # An SSLError's errno is OpenSSL's error code: never shown as an OS errno (1 is EPERM).
    assert alert.error.errno is None and alert.error.errno_name is None


def test_error_info_unwraps_anyio() -> None:
    info = error_info(_broken(ConnectionResetError(errno.ECONNRESET, "Connection reset")))
    assert (info.type, info.errno_name) == ("ConnectionResetError", "ECONNRESET")


@pytest.mark.parametrize(
    ("err", "outcome"),
    [
        (errno.ECONNREFUSED, "refused"),
        (errno.EHOSTUNREACH, "host_unreachable"),
        (errno.ENETUNREACH, "network_unreachable"),
        (errno.EADDRNOTAVAIL, "port_exhaustion"),
        (errno.EMFILE, "fd_exhaustion"),
        (errno.ENFILE, "fd_exhaustion"),
        (errno.ETIMEDOUT, "timeout"),
        (errno.EPERM, "denied"),
        (errno.EACCES, "denied"),
        (errno.ECONNRESET, "reset"),
        (errno.EINVAL, "error"),
    ],
)
def test_connect_errno_table(err: int, outcome: str) -> None:
    assert connect_outcome(OSError(err, "x")) == outcome
    assert set(CONNECT_OUTCOMES.values()) <= set(
        AddressAttempt.model_fields["outcome"].annotation.__args__  # type: ignore[union-attr]
    )


# -- our TLS stream, against a real TLS server on loopback -----------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_echo(ca: trustme.CA) -> Iterator[int]:
    """A TLS echo server on loopback (one thread per connection, closes after echoing)."""
    import threading

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve(conn: socket.socket) -> None:
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                data = tls.recv(1024)
                tls.sendall(data.upper())
        except (OSError, ssl.SSLError):
            pass

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield port
    finally:
        listener.close()


async def _connect(port: int) -> anyio.abc.ByteStream:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    return await stream_from_socket(sock)


@pytest.mark.anyio
async def test_tls_stream_handshake_and_data(ca: trustme.CA, tls_echo: int) -> None:
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    seen: list[bytes] = []
    async with TlsStream(await _connect(tls_echo), client_ctx, "localhost") as tls:
        await tls.handshake(seen.append)
        assert seen and seen[0][:1] == b"\x16"  # a TLS handshake record came back
        assert tls.ssl_object.version() in ("TLSv1.2", "TLSv1.3")
        await tls.send(b"ping")
        assert await tls.receive() == b"PING"
        with pytest.raises(anyio.EndOfStream):
            await tls.receive()  # the server closed (with or without close_notify)


@pytest.mark.anyio
async def test_tls_stream_verification_failure_is_the_ssl_error(tls_echo: int) -> None:
    untrusting = ssl.create_default_context()  # the test CA is not trusted
    tls = TlsStream(await _connect(tls_echo), untrusting, "localhost")
    try:
        with pytest.raises(ssl.SSLCertVerificationError) as raised:
            await tls.handshake()
        assert stream_error(raised.value).kind == "tls_verify"
    finally:
        await tls.aclose()
