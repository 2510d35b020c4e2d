"""What the database conversations share: the wire (a stream and a receive buffer, read
until a sans-IO parser returns an event) and the conversation's shape.

A conversation is split in ``open()`` (up to the point where the server proved itself),
``validate()`` (another round trip, for pools that held the connection) and ``close()``
(the goodbye), so that the pool probe can hold many of them open at once. Every one is
bounded in time (``read_timeout``, cut to the total deadline) and in size (``MAX_READ``,
and the parsers' ``MAX_*``), and never raises for what the server does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import anyio
from anyio.abc import ByteStream

from ..protocols.mismatch import ProtocolMismatch
from ..steps import DatabaseResult, ErrorInfo
from ._context import ProbeContext
from ._io import STREAM_ERRORS, elapsed_ms, stream_error
from .tls import alert_of

__all__ = ["MAX_READ", "Closed", "Conversation", "ProtocolName", "ReadTimeout", "Wire"]

T = TypeVar("T")
ProtocolName = Literal["mysql", "postgresql", "redis"]

#: Upper bound of the bytes read from a peer in one conversation.
MAX_READ = 64 * 1024


class ReadTimeout(Exception):
    """The peer sent nothing complete within the conversation's budget."""


class Closed(Exception):
    """The connection ended (``error``: the OS error behind it; None for a clean EOF;
    ``tls_reason``: the TLS alert that ended it, on a TLS connection)."""

    def __init__(self, error: ErrorInfo | None = None, tls_reason: str | None = None) -> None:
        super().__init__("closed")
        self.error = error
        self.tls_reason = tls_reason


class Wire:
    """A stream plus a receive buffer: read until a sans-IO parser returns an event."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.buf = b""
        self.received = 0
        self.sent = 0
        self.first: bytes = b""

    async def read(self, parse: Callable[[bytes], tuple[T, bytes] | None], seconds: float) -> T:
        """Parse an event, reading more as needed. Raises ReadTimeout, Closed, ProtocolMismatch."""
        try:
            with anyio.fail_after(max(seconds, 0.0)):
                while True:
                    parsed = parse(self.buf)
                    # The cap counts from the start of the conversation to the end of the
                    # message, whatever the read sizes were: a message that ends past it is
                    # too much, also when it arrived complete in one read.
                    if parsed is not None and self.received - len(parsed[1]) <= MAX_READ:
                        event, self.buf = parsed
                        return event
                    if self.received >= MAX_READ:
                        raise ProtocolMismatch("the peer sent too much without a message", self.buf)
                    chunk = await self.stream.receive(4096)
                    self.received += len(chunk)
                    if not self.first:
                        self.first = chunk[:64]
                    self.buf += chunk
        except STREAM_ERRORS as exc:
            raise _failure(exc) from None

    async def send(self, data: bytes) -> None:
        try:
            await self.stream.send(data)
        except STREAM_ERRORS as exc:
            raise _failure(exc) from None
        self.sent += len(data)

    async def quiet_send(self, data: bytes) -> bool:
        try:
            with anyio.fail_after(1.0):
                await self.stream.send(data)
        except STREAM_ERRORS:
            return False
        return True

    async def is_alive(self, seconds: float = 0.05) -> bool:
        """No EOF or RST within ``seconds``: the peer still holds the connection."""
        try:
            with anyio.move_on_after(seconds):
                chunk = await self.stream.receive(1)
                self.buf += chunk
        except STREAM_ERRORS:
            return False
        return True


def _failure(exc: BaseException) -> ReadTimeout | Closed:
    """What the conversation makes of a stream error: its own timeout, or a closed
    connection (with the OS error behind it, e.g. ECONNRESET, unless it was a clean EOF)."""
    failure = stream_error(exc)
    if failure.kind == "timeout":
        return ReadTimeout()
    alert = failure.tls_reason if failure.kind == "tls_alert" else None
    return Closed(None if failure.kind == "eof" else failure.error, alert)


class Conversation:
    """One connection's database conversation. Subclasses speak one protocol."""

    protocol: ProtocolName

    def __init__(self, ctx: ProbeContext, stream: ByteStream) -> None:
        self.ctx = ctx
        self.wire = Wire(stream)
        self.result = DatabaseResult(protocol=self.protocol, outcome="timeout")

    def _update(self, **changes: Any) -> DatabaseResult:
        self.result = self.result.replace(**changes)
        return self.result

    def _timeout(self) -> float:
        return self.ctx.budget(self.ctx.options.read_timeout)

    async def open(self) -> DatabaseResult:
        """Talk until the server proved itself up (or said why not)."""
        start = time.perf_counter()
        try:
            await self._open(start)
        except ReadTimeout:
            self._update(outcome="timeout", **self._first_bytes())
        except Closed as exc:
            self._update(
                outcome="closed",
                error_message=exc.error.message if exc.error else None,
                error_errno=exc.error.errno_name if exc.error else None,
                tls_alert=alert_of(exc.tls_reason) or exc.tls_reason,
                **self._first_bytes(),
            )
        except ProtocolMismatch as exc:
            self._update(
                outcome="mismatch",
                looks_like=exc.looks_like,
                error_message=str(exc),
                **self._first_bytes(),
            )
        if self.result.greeting_ms is None and self.wire.received:
            self._update(greeting_ms=elapsed_ms(start))
        return self._update(bytes_sent=self.wire.sent)

    def _first_bytes(self) -> dict[str, Any]:
        first = self.wire.first or self.wire.buf[:64]
        return {"first_bytes": first[:32].hex() or None}

    async def validate(self) -> DatabaseResult:
        """A further round trip on an open conversation (pools, after holding)."""
        alive = await self.wire.is_alive()
        if not alive:
            return self._update(
                outcome="closed", phase="hold", error_message="the connection was closed while held"
            )
        return self.result

    async def close(self) -> DatabaseResult:
        """The protocol's goodbye; bounded, never raises for the peer's behaviour."""
        return self.result

    async def _open(self, start: float) -> None:
        raise NotImplementedError
