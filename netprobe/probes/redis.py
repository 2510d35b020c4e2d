"""The Redis greeting conversation: a short read (the maxclients error is pushed right after
accept), PING, INFO server, QUIT. Redis speaks only when spoken to.
"""

from __future__ import annotations

import contextlib
import time
from typing import Literal

from anyio.abc import ByteStream

from ..protocols import redis as rd
from ..protocols.mismatch import ProtocolMismatch
from ..steps import DatabaseResult
from ._context import ProbeContext
from ._conversation import Closed, Conversation, ReadTimeout
from ._io import elapsed_ms

__all__ = ["RedisGreeting"]


class RedisGreeting(Conversation):
    """Redis: read briefly (the maxclients error is pushed), PING, INFO server, QUIT."""

    protocol = "redis"

    def __init__(self, ctx: ProbeContext, stream: ByteStream) -> None:
        super().__init__(ctx, stream)
        self.closed = False

    def _first_window(self) -> float:
        # Redis pushes "-ERR max number of clients reached" right after accept(): about one
        # round trip after our connect() returned. Wait a few round trips, not the read timeout,
        # with a 10 ms floor for the server's own scheduling. A push that comes later still
        # arrives before the PONG and is classified the same way.
        rtt = (self.ctx.marks.get("tcp_connect", 0.0) - self.ctx.marks.get("dns", 0.0)) / 1000.0
        return min(self._timeout(), max(0.01, 3 * rtt))

    async def _open(self, start: float) -> None:
        self._update(server="redis")
        try:
            pushed = await self.wire.read(rd.parse_reply, self._first_window())
        except ReadTimeout:
            if self.wire.buf:  # a partial something: wait no longer, judge what we have
                raise ProtocolMismatch("the server spoke first", self.wire.buf) from None
        else:
            self.ctx.mark("first_byte")
            if isinstance(pushed, rd.RedisError):
                self.closed = True
                self._update(
                    outcome="server_error",
                    greeting_ms=elapsed_ms(start),
                    error_code=pushed.prefix,
                    error_message=pushed.message,
                    closed_cleanly=True,
                )
                return
            raise ProtocolMismatch("the server spoke first", self.wire.first)
        await self._ping(start, phase="greeting")
        if self.result.outcome == "ready" and self.result.error_code is None:
            await self._info()

    async def _ping(self, start: float, *, phase: Literal["greeting", "hold"]) -> None:
        await self.wire.send(rd.build_command("PING"))
        reply = await self.wire.read(rd.parse_reply, self._timeout())
        self.ctx.mark("first_byte")
        if self.result.greeting_ms is None:
            self._update(greeting_ms=elapsed_ms(start))
        if isinstance(reply, rd.Simple) and reply.text == "PONG":
            self._update(outcome="ready", phase=phase)
        elif isinstance(reply, rd.RedisError) and reply.prefix in ("NOAUTH", "WRONGPASS"):
            self._update(
                outcome="ready",
                phase=phase,
                error_code=reply.prefix,
                error_message=reply.message,
                auth_plugin="password",
            )
        elif isinstance(reply, rd.RedisError):
            self._update(
                outcome="server_error",
                phase=phase,
                error_code=reply.prefix,
                error_message=reply.message,
            )
        else:
            raise ProtocolMismatch("the answer to PING is not PONG nor an error", self.wire.first)

    async def _info(self) -> None:
        """INFO server, for the version: optional. The PONG already proved the server up, so
        nothing INFO gets (an error: renamed or forbidden by an ACL; a close: some
        Redis-compatible proxies; silence) can overturn that verdict (issue 11): it only
        leaves the version unknown, with a note saying why."""
        why: str | None = None
        try:
            await self.wire.send(rd.build_command("INFO", "server"))
            reply = await self.wire.read(rd.parse_reply, self._timeout())
        except ReadTimeout:
            self.closed = True  # a late INFO reply would be read as the answer to the next PING
            why = "no answer to INFO in time"
        except Closed as exc:
            self.closed = True
            why = "the server closed the connection on INFO" + (
                f" ({exc.error.errno_name or exc.error.message})" if exc.error else ""
            )
        except ProtocolMismatch:
            self.closed = True
            why = "the answer to INFO is not a Redis reply"
        else:
            if isinstance(reply, rd.Value) and isinstance(reply.value, str):
                version = rd.info_field(reply.value, "redis_version")
                mode = rd.info_field(reply.value, "redis_mode")
                notes = [*self.result.notes, f"mode {mode}"] if mode else list(self.result.notes)
                self._update(version=version, notes=notes)
                if version is not None:
                    return
                why = "INFO names no redis_version"
            elif isinstance(reply, rd.RedisError):
                why = f"INFO answered -{reply.message.strip()}"
            else:
                why = "INFO answered something else than its text"
        self._update(notes=[*self.result.notes, f"version unknown: {why} (PING answered PONG)"])

    async def validate(self) -> DatabaseResult:
        if self.closed:
            return self.result
        try:
            await self._ping(time.perf_counter(), phase="hold")
        except ReadTimeout:
            self._update(outcome="timeout", phase="hold", error_message="no answer to PING")
        except Closed as exc:
            self.closed = True
            self._update(
                outcome="closed",
                phase="hold",
                error_message=exc.error.message if exc.error else "closed while held",
            )
        except ProtocolMismatch as exc:
            self._update(outcome="mismatch", phase="hold", looks_like=exc.looks_like)
        return self.result

    async def close(self) -> DatabaseResult:
        if self.closed:
            return self.result
        self.closed = True
        if not await self.wire.quiet_send(rd.build_command("QUIT")):
            return self._update(closed_cleanly=False)
        if self.result.outcome != "ready":
            # A peer that did not answer PING in time (or is not Redis) will not answer QUIT:
            # waiting another second for it only delays the verdict.
            return self._update(closed_cleanly=False)
        with contextlib.suppress(ReadTimeout, Closed, ProtocolMismatch):
            await self.wire.read(rd.parse_reply, min(self._timeout(), 1.0))
        return self._update(closed_cleanly=True)
