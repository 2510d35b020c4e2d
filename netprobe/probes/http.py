"""HTTP over the diagnosis's own connection, through httpx.

One connection per diagnosis: httpcore's network-backend seam (``AsyncNetworkBackend``) gets a
backend whose ``connect_tcp`` hands over the stream the ladder already established (and
encrypted, for ``https://``), and whose ``start_tls`` is a no-op. A full ``https://`` diagnosis
thus costs TCP (1 RTT) + the TLS handshake + the request (1 RTT), with no second connect.

The first byte of the answer is timed at the stream (curl's ``time_starttransfer``).
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import anyio
import httpcore
import httpx
from anyio.abc import ByteStream

from ..protocols.sniff import describe_bytes
from ..steps import HEADERS_OF_INTEREST, ApplicationStep, HttpFailure, HttpHop, HttpResult
from ..target import redact_query
from ._context import ProbeContext
from ._io import STREAM_ERRORS, StreamError, elapsed_ms, error_info, stream_error
from .ssl_contexts import unused_context
from .tls import alert_of

__all__ = ["probe_http"]

_BODY_CAP = 64 * 1024  # bytes of the body read; a health answer is small
_PREVIEW = 200
_PEEK = 64
#: Bytes after which a response whose headers have not ended is named as such (httpcore lets
#: h11 buffer up to 100 KiB of incomplete headers, then raises RemoteProtocolError).
_LONG_HEADERS = 64 * 1024
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's view of the diagnosis's stream; remembers the first bytes and what broke it."""

    def __init__(self, ctx: ProbeContext, stream: ByteStream) -> None:
        self._ctx = ctx
        self._stream = stream
        self.first_bytes = bytearray()
        self.received = 0
        self.first_byte_at: float | None = None
        self.sent_at: float | None = None
        #: What ended the exchange at the stream (a TLS alert, an RST...): httpcore's
        #: re-raise can lose the socket error from the exception chain.
        self.failure: StreamError | None = None

    def _failed(self, exc: BaseException) -> str:
        failure = stream_error(exc)
        if self.failure is None:
            self.failure = failure
        if failure.tls_reason is not None:
            return f"TLS: {failure.tls_reason}"
        return failure.error.message

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        try:
            with anyio.fail_after(timeout):
                data = await self._stream.receive(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("no data within the read timeout") from None
        except anyio.EndOfStream:
            return b""
        except STREAM_ERRORS as exc:
            raise httpcore.ReadError(self._failed(exc)) from exc
        self.received += len(data)
        if data and self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()
            self._ctx.mark("first_byte")
        if len(self.first_bytes) < _PEEK:
            self.first_bytes += data[: _PEEK - len(self.first_bytes)]
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        try:
            with anyio.fail_after(timeout):
                await self._stream.send(buffer)
        except TimeoutError:
            raise httpcore.WriteTimeout("could not send within the timeout") from None
        except STREAM_ERRORS as exc:
            raise httpcore.WriteError(self._failed(exc)) from exc
        if self.sent_at is None:
            self.sent_at = time.perf_counter()

    async def aclose(self) -> None:
        """The diagnosis owns the connection and closes it; nothing to do here."""

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> httpcore.AsyncNetworkStream:
        """The TLS rung already ran the handshake on this very stream."""
        return self

    def get_extra_info(self, info: str) -> Any:
        return None


class _OneStreamBackend(httpcore.AsyncNetworkBackend):
    """Hands the established stream to httpcore, once; a second connect is refused."""

    def __init__(self, stream: _Stream) -> None:
        self._stream: _Stream | None = stream

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream, self._stream = self._stream, None
        if stream is None:
            raise httpcore.ConnectError("the server closed the diagnosis's only connection")
        return stream

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


#: httpcore exceptions raised at our seam, to the httpx ones callers expect.
_EXC_MAP: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.NetworkError, httpx.NetworkError),
)


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _EXC_MAP:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            with _mapped():
                await self._stream.aclose()


class _OneConnectionTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one httpcore connection on the established stream. With
    ``absolute``, the request line carries the absolute URL (RFC 9112 §3.2.2), as a client
    sends it to a forward proxy."""

    def __init__(self, stream: _Stream, *, absolute: bool = False) -> None:
        self._absolute = absolute
        self._pool = httpcore.AsyncConnectionPool(
            # Never used for a handshake (start_tls is a no-op), but httpcore would build a
            # default one (loading the trust store) on every connection without it.
            ssl_context=unused_context(),
            network_backend=_OneStreamBackend(stream),
            max_connections=1,
            retries=0,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=(
                    str(request.url.copy_with(fragment=None)).encode("ascii")
                    if self._absolute
                    else request.url.raw_path
                ),
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped():
            resp = await self._pool.handle_async_request(req)
        return httpx.Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=_Body(resp.stream),
            extensions=resp.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


async def probe_http(ctx: ProbeContext, stream: ByteStream) -> ApplicationStep:
    """Send the request over ``stream`` and report the answer. Never raises for a fault."""
    target, opts = ctx.target, ctx.options
    scheme = "https" if target.tls else "http"
    url = f"{scheme}://{target.netloc}{target.path or '/'}"
    expected = list(opts.expect_status) if opts.expect_status else None
    start = time.perf_counter()
    seam = _Stream(ctx, stream)
    auth: httpx.BasicAuth | None = None
    if target.username is not None:
        secret = target.password.get_secret_value() if target.password else ""
        auth = httpx.BasicAuth(target.username, secret)
    budget = ctx.budget(opts.read_timeout)
    # Through a forward proxy (http:// targets): the absolute URL, and the proxy's credentials.
    forward = ctx.route is not None and not target.tls
    headers = dict(opts.headers)
    proxy_auth = ctx.route.authorization() if forward and ctx.route is not None else None
    if proxy_auth is not None:
        headers["Proxy-Authorization"] = proxy_auth
    hops: list[HttpHop] = []
    response: httpx.Response | None = None
    body = b""
    body_bytes = 0
    note = ""
    body_cut = False
    try:
        async with httpx.AsyncClient(
            transport=_OneConnectionTransport(seam, absolute=forward),
            trust_env=False,
            timeout=httpx.Timeout(budget),
        ) as client:
            for _ in range(_MAX_REDIRECTS + 1):
                # One read_timeout for the whole answer of a hop, not per read: a peer that
                # drips a byte at a time (slowloris) resets httpx's per-read timeout forever.
                hop_budget = ctx.budget(opts.read_timeout)
                hop_end = time.perf_counter() + hop_budget
                request = client.build_request(opts.method, url, headers=headers)
                try:
                    with anyio.fail_after(hop_budget):
                        response = await client.send(request, stream=True, auth=auth)
                except TimeoutError:
                    raise httpx.ReadTimeout("no response headers within the read timeout") from None
                try:
                    with anyio.move_on_after(max(0.0, hop_end - time.perf_counter())) as reading:
                        async for chunk in response.aiter_raw():
                            body_bytes += len(chunk)
                            if len(body) < _BODY_CAP:
                                body += chunk[: _BODY_CAP - len(body)]
                            if body_bytes >= _BODY_CAP:
                                break
                    body_cut = reading.cancelled_caught
                finally:
                    await response.aclose()
                location = response.headers.get("location")
                if not (opts.follow_redirects and response.status_code in _REDIRECTS and location):
                    break
                next_url = response.url.join(location)
                hops.append(
                    HttpHop(
                        status=response.status_code,
                        url=redact_query(url),
                        location=redact_query(location),
                    )
                )
                if (next_url.scheme, next_url.host, next_url.port) != (
                    response.url.scheme,
                    response.url.host,
                    response.url.port,
                ):
                    note = f"; not followed to another origin ({next_url.host})"
                    break
                url, body, body_bytes = str(next_url), b"", 0
    except httpx.HTTPError as exc:
        return _failed(ctx, seam, url, exc, start, hops)

    assert response is not None
    status = response.status_code
    healthy = status in expected if expected else 200 <= status < 400
    retry_after = response.headers.get("retry-after")
    result = HttpResult(
        method=opts.method,
        url=redact_query(url),
        status=status,
        reason=response.reason_phrase or None,
        http_version=response.http_version,
        headers={
            k: redact_query(v) if k == "location" else v
            for k in HEADERS_OF_INTEREST
            if (v := response.headers.get(k)) is not None
        },
        location=_redacted(response.headers.get("location")),
        retry_after=retry_after,
        retry_after_s=_seconds(retry_after),
        body_bytes=body_bytes,
        body_preview=None if healthy else _preview(body),
        expected=expected,
        healthy=healthy,
        redirects=hops,
        first_byte_ms=_first_byte_ms(seam),
        request_sent=True,
    )
    if body_cut:
        note += f"; the body was still arriving at the read timeout ({body_bytes} bytes read)"
    return ApplicationStep(
        status="ok" if healthy else "failed",
        protocol="http",
        reason=f"{status} {response.reason_phrase}".strip() + note,
        http=result,
        duration_ms=elapsed_ms(start),
    )


def _redacted(location: str | None) -> str | None:
    return None if location is None else redact_query(location)


def _failed(
    ctx: ProbeContext,
    seam: _Stream,
    url: str,
    exc: httpx.HTTPError,
    start: float,
    hops: list[HttpHop],
) -> ApplicationStep:
    first = bytes(seam.first_bytes)
    failure: HttpFailure
    tls_alert: str | None = None
    peer_sent = describe_bytes(first)
    if first.startswith(b"HTTP/") and seam.received >= _LONG_HEADERS:
        # A status line, then headers without end: httpcore gave up buffering them.
        peer_sent += f" whose headers did not end within {seam.received // 1024} KiB"

    broke = seam.failure
    if isinstance(exc, httpx.TimeoutException):
        failure = "timeout"
        reason = "no response headers within the read timeout"
        if seam.received:
            reason = (
                f"{seam.received} bytes but no complete response headers within the read timeout"
            )
    elif broke is not None and broke.kind == "tls_alert":
        failure = "tls_alert"
        tls_alert = alert_of(broke.tls_reason) or broke.tls_reason
        reason = f"the server sent a TLS alert after the handshake ({tls_alert})"
    elif isinstance(exc, httpx.RemoteProtocolError) and first:
        failure = "protocol"
        what = "valid HTTP" if first.startswith(b"HTTP/") else "HTTP"
        reason = f"the answer is not {what}: {peer_sent}"
    elif isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        failure = "closed"
        reset = broke is not None and broke.reset
        reason = f"the server {'reset' if reset else 'closed'} the connection without answering"
    else:
        failure = "error"
        reason = str(exc) or type(exc).__name__
    if broke is not None:
        error = broke.error
    else:
        root: BaseException = exc
        for _ in range(5):  # httpx error <- httpcore error <- the socket or TLS error
            if root.__cause__ is None:
                break
            root = root.__cause__
        error = error_info(root)
    result = HttpResult(
        method=ctx.options.method,
        url=redact_query(url),
        failure=failure,
        tls_alert=tls_alert,
        peer_sent=peer_sent if failure == "protocol" else None,
        peer_bytes=first.hex() if first else None,
        redirects=hops,
        expected=list(ctx.options.expect_status) if ctx.options.expect_status else None,
        first_byte_ms=_first_byte_ms(seam),
        request_sent=seam.sent_at is not None,
    )
    return ApplicationStep(
        status="failed",
        protocol="http",
        reason=reason,
        error=error,
        http=result,
        duration_ms=elapsed_ms(start),
    )


def _first_byte_ms(seam: _Stream) -> float | None:
    if seam.first_byte_at is None or seam.sent_at is None:
        return None
    return round((seam.first_byte_at - seam.sent_at) * 1000.0, 3)


def _seconds(retry_after: str | None) -> float | None:
    if retry_after is None or not retry_after.strip().isdigit():
        return None
    return float(retry_after.strip())


def _preview(body: bytes) -> str | None:
    if not body:
        return None
    text = body[:_PREVIEW].decode("utf-8", "replace")
    return text + ("..." if len(body) > _PREVIEW else "")
