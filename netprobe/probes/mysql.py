"""The MySQL / MariaDB greeting conversation, without credentials.

MySQL speaks first: the greeting (HandshakeV10), or an error packet instead (1040 too many
connections, 1129 host blocked). A client that reads the greeting and hangs up counts as a
*connection error*; ``max_connect_errors`` of them (default 100) and the server blocks the
host with 1129. The probe therefore always answers the greeting with a handshake response
for the probe user, which the server answers with 1045 Access denied: an authentication
failure, not a connection error. Then COM_QUIT.
"""

from __future__ import annotations

from anyio.abc import ByteStream

from ..protocols import mysql as my
from ..protocols.mismatch import ProtocolMismatch
from ..steps import DatabaseResult
from ._context import ProbeContext
from ._conversation import Closed, Conversation, ReadTimeout
from ._io import elapsed_ms

__all__ = ["MysqlGreeting"]


class MysqlGreeting(Conversation):
    """MySQL / MariaDB: read the greeting (or the error sent instead), then finish properly."""

    protocol = "mysql"

    def __init__(self, ctx: ProbeContext, stream: ByteStream) -> None:
        super().__init__(ctx, stream)
        self.greeting: my.Greeting | None = None
        self.finished = False

    async def _open(self, start: float) -> None:
        event = await self.wire.read(my.parse_greeting, self._timeout())
        self.ctx.mark("first_byte")
        if isinstance(event, my.MysqlError):
            self.finished = True  # the server closes after the error packet
            self._update(
                outcome="server_error",
                greeting_ms=elapsed_ms(start),
                error_code=str(event.code),
                sqlstate=event.sqlstate,
                error_message=event.message,
                closed_cleanly=True,
            )
            return
        self.greeting = event
        self._update(
            outcome="ready",
            greeting_ms=elapsed_ms(start),
            server=event.product,
            version=event.version,
            protocol_version=event.protocol_version,
            connection_id=event.connection_id,
            auth_plugin=event.auth_plugin,
            tls_supported=event.tls_supported,
        )

    async def validate(self) -> DatabaseResult:
        # The handshake response is the round trip that proves a held connection still works.
        return await self._finish()

    async def close(self) -> DatabaseResult:
        return await self._finish()

    async def _finish(self) -> DatabaseResult:
        if self.finished or self.greeting is None:
            return self.result
        self.finished = True
        user = self.ctx.options.probe_user
        self._update(probe_user=user)
        try:
            await self.wire.send(
                my.build_handshake_response(user, plugin=self.greeting.auth_plugin)
            )
            seq = 2
            for _ in range(3):  # auth switch rounds are bounded
                reply = await self.wire.read(my.parse_reply, max(self._timeout(), 0.5))
                if isinstance(reply, my.AuthSwitch):
                    await self.wire.send(my.build_auth_switch_response(seq + 1))
                    seq += 2
                    continue
                if isinstance(reply, my.MysqlOk):
                    # The probe user exists without a password: log out politely.
                    await self.wire.quiet_send(my.build_quit())
                    return self._update(
                        closed_cleanly=True,
                        notes=[*self.result.notes, f"the probe user {user!r} logged in"],
                    )
                return self._handshake_error(reply)
            return self._update(closed_cleanly=False)
        except ReadTimeout:
            return self._update(
                outcome="timeout",
                phase="handshake",
                closed_cleanly=False,
                error_message="no answer to the handshake response",
            )
        except Closed as exc:
            return self._update(
                outcome="closed",
                phase="handshake",
                closed_cleanly=False,
                error_message=exc.error.message if exc.error else "closed during the handshake",
            )
        except ProtocolMismatch as exc:
            return self._update(
                outcome="mismatch",
                phase="handshake",
                looks_like=exc.looks_like,
                error_message=str(exc),
                closed_cleanly=False,
            )

    def _handshake_error(self, err: my.MysqlError) -> DatabaseResult:
        # 1045 (and 1698 for unix_socket/auth plugins) answer the probe user as expected:
        # the server authenticated (and refused) us, so it is up and counts no error.
        expected = err.code in (1045, 1698)
        note = f"handshake answered {err.code} {err.message}"
        if expected:
            return self._update(
                closed_cleanly=True,
                notes=[*self.result.notes, note + " (expected for the probe user)"],
            )
        return self._update(
            outcome="server_error",
            phase="handshake",
            error_code=str(err.code),
            sqlstate=err.sqlstate,
            error_message=err.message,
            closed_cleanly=True,
        )
