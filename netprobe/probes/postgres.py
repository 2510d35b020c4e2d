"""The PostgreSQL greeting conversation: SSLRequest (then TLS, as ``sslmode`` asks), the
StartupMessage, and the server's first answer. No password is ever sent; Terminate ends it.
"""

from __future__ import annotations

import contextlib
import time

import anyio
from anyio.abc import ByteStream, SocketAttribute

from ..protocols import postgres as pg
from ..protocols.mismatch import ProtocolMismatch
from ..steps import DatabaseResult
from ._context import ProbeContext
from ._conversation import Conversation, Wire
from ._io import STREAM_ERRORS, elapsed_ms

__all__ = ["PostgresGreeting", "held_login_note", "identify_pooler"]


_PROBE_ERRORS: tuple[type[BaseException], ...] = (*STREAM_ERRORS, ProtocolMismatch)


async def identify_pooler(ctx: ProbeContext, host: str, port: int) -> str | None:
    """Is the peer PgBouncer? Asked on a fresh connection with a StartupMessage that only
    PgBouncer refuses at once (:data:`pg.POOLER_PROBE_PARAM`), also while it holds every login
    because its server is down. ``"pgbouncer"`` or None (PostgreSQL, or no clear answer).

    Bounded by the read timeout and what is left of the total deadline; never raises for
    what the network or the peer does.
    """
    seconds = ctx.budget(ctx.options.read_timeout)
    if seconds < 0.05:
        return None
    buf = b""
    parsed = None
    try:
        with anyio.fail_after(seconds):
            async with await anyio.connect_tcp(host, port) as stream:
                await stream.send(pg.build_pooler_probe(ctx.options.probe_user))
                while (parsed := pg.parse_message(buf)) is None and len(buf) < pg.MAX_MESSAGE:
                    buf += await stream.receive(4096)
                # PostgreSQL asks for a password (or, with trust, logs us in): say goodbye.
                with contextlib.suppress(*STREAM_ERRORS):
                    await stream.send(pg.build_terminate())
    except _PROBE_ERRORS:
        pass
    if parsed is None:
        return None
    msg = parsed[0]
    if isinstance(msg, pg.ErrorResponse) and (msg.message or "").startswith(
        "unsupported startup parameter"
    ):
        return pg.pooler_of(msg.sqlstate, msg.message)
    return None


def held_login_note(seconds: float) -> str:
    return (
        f"PgBouncer held the login {seconds:g} s without an answer (recognised on a second "
        f"connection: it refused the startup parameter {pg.POOLER_PROBE_PARAM} at once, as "
        "only PgBouncer does); it waits for a connection to its PostgreSQL server"
    )


class PostgresGreeting(Conversation):
    """PostgreSQL: SSLRequest (then TLS), StartupMessage (the DSN's user, else the probe
    user), first answer."""

    protocol = "postgresql"

    def __init__(self, ctx: ProbeContext, stream: ByteStream) -> None:
        super().__init__(ctx, stream)
        self.closed = False
        self.startup_sent = False

    async def open(self) -> DatabaseResult:
        result = await super().open()
        if result.outcome == "timeout" and self.startup_sent:
            # Silence after the StartupMessage: a stuck server, or a pooler holding the login
            # while its own server is down. Ask which on a fresh connection.
            host, port = self._peer()
            if await identify_pooler(self.ctx, host, port) is not None:
                seconds = self.ctx.options.read_timeout
                self._update(
                    server="pgbouncer",
                    phase="login",
                    notes=[*self.result.notes, held_login_note(seconds)],
                )
        return self.result

    def _peer(self) -> tuple[str, int]:
        try:
            address = self.wire.stream.extra(SocketAttribute.remote_address)
        except Exception:  # noqa: BLE001 - any stream without a socket: the target's name
            address = None
        if isinstance(address, tuple) and len(address) >= 2:
            return str(address[0]), int(address[1])
        return self.ctx.target.host, self.ctx.target.port

    async def _open(self, start: float) -> None:
        ctx = self.ctx
        policy = pg.ssl_policy(ctx.target.params)
        self._update(server="postgresql")
        if policy.request and not ctx.target.tls:
            await self.wire.send(pg.build_ssl_request())
            answer = await self.wire.read(pg.parse_ssl_answer, self._timeout())
            if isinstance(answer, pg.ErrorResponse):
                ctx.mark("first_byte")
                self._error(answer, start)
                return
            self._update(tls_supported=answer.accepted, greeting_ms=elapsed_ms(start))
            if answer.accepted:
                if self.wire.buf:
                    # Bytes after 'S' and before the handshake are not from a PostgreSQL
                    # server (libpq refuses them too: CVE-2021-23222, response injection).
                    raise ProtocolMismatch("unencrypted bytes after the 'S' answer", self.wire.buf)
                if not await self._start_tls(policy):
                    return
            else:
                ctx.mark("first_byte")
                if policy.required:
                    self._update(
                        outcome="tls_failed",
                        error_message=(
                            f"the server does not offer TLS (it answered 'N' to SSLRequest) "
                            f"and sslmode={policy.sslmode} requires it"
                        ),
                    )
                    return
        # The DSN's own user when it names one: pg_hba.conf entries are often per role, and
        # one for the application's role only refuses the probe user with 28000 while the
        # application logs in fine. No password is sent here (the conversation ends at the
        # authentication request), so the server records no failed login for that role.
        user = ctx.target.username or ctx.options.probe_user
        database = ctx.target.path or None
        self._update(probe_user=user)
        await self.wire.send(pg.build_startup(user, database))
        self.startup_sent = True
        # One read_timeout for the whole answer to the StartupMessage, not per message: a peer
        # sending a NoticeResponse just before each read times out would otherwise hold the
        # probe until the total deadline.
        answer_end = time.perf_counter() + self._timeout()

        def left() -> float:
            return min(self._timeout(), answer_end - time.perf_counter())

        msg = await self.wire.read(pg.parse_message, left())
        ctx.mark("first_byte")
        if self.result.greeting_ms is None:
            self._update(greeting_ms=elapsed_ms(start))
        while isinstance(msg, pg.ErrorResponse) and msg.notice:
            msg = await self.wire.read(pg.parse_message, left())
        if isinstance(msg, pg.Authentication):
            if msg.code != 0:
                self._update(outcome="ready", phase="login", auth_plugin=msg.method)
                return
            # Trust: logged in. Read on for server_version, then ReadyForQuery or an error
            # (e.g. role does not exist, raised right after AuthenticationOk).
            self._update(auth_plugin="trust")
            for _ in range(64):
                msg = await self.wire.read(pg.parse_message, left())
                if isinstance(msg, pg.ParameterStatus) and msg.name == "server_version":
                    self._update(version=msg.value)
                elif isinstance(msg, pg.ErrorResponse) and not msg.notice:
                    break
                elif isinstance(msg, pg.ReadyForQuery):
                    self._update(
                        outcome="ready",
                        phase="login",
                        notes=[f"the user {user!r} logged in (trust)"],
                    )
                    return
        if isinstance(msg, pg.ErrorResponse):
            self._error(msg, start)
            return
        raise ProtocolMismatch("unexpected PostgreSQL message after the StartupMessage")

    def _error(self, err: pg.ErrorResponse, start: float) -> None:
        self.closed = True  # the server ends the connection after a FATAL error
        # 28P01 / 28000 outside the pg_hba.conf check (routine ClientAuthentication) answer
        # the probe user itself: the server authenticated it, so the server is up.
        pooler = pg.pooler_of(err.sqlstate, err.message)
        answered_user = (
            err.sqlstate == "28P01"
            or (err.sqlstate == "28000" and err.routine != "ClientAuthentication")
            # PgBouncer (auth_type trust) refusing a user its auth_file does not list
            or (pooler is not None and err.message.startswith('"trust" authentication failed'))
        )
        if pooler is not None:
            self._update(server=pooler)
            if answered_user:
                self._update(
                    notes=[
                        *self.result.notes,
                        f"PgBouncer answered for the probe user {self.result.probe_user!r}: "
                        "its PostgreSQL server was not reached (give the DSN credentials to "
                        "check the path through it)",
                    ]
                )
        self._update(
            outcome="ready" if answered_user else "server_error",
            phase="login",
            error_code=err.sqlstate,
            sqlstate=err.sqlstate,
            error_message=err.message,
            error_fields={k: v for k, v in err.fields.items() if k in _PG_KEEP},
            closed_cleanly=True,
            greeting_ms=self.result.greeting_ms or elapsed_ms(start),
        )

    async def _start_tls(self, policy: pg.SslPolicy) -> bool:
        """The TLS handshake on this very connection, with the TLS rung's facts and taxonomy."""
        from .tls import start_tls

        ctx = self.ctx
        step, stream = await start_tls(ctx, self.wire.stream, sslmode=policy)
        ctx.mark("tls_handshake")
        self._update(tls=step)
        if stream is None:
            self._update(outcome="tls_failed", error_message=step.reason or "TLS handshake failed")
            return False
        self.wire = Wire(stream)
        self._update(tls_used=True)
        return True

    async def close(self) -> DatabaseResult:
        if not self.closed:
            self.closed = True
            ok = await self.wire.quiet_send(pg.build_terminate())
            self._update(closed_cleanly=ok)
        return self.result


_PG_KEEP = frozenset({"severity_nonlocalized", "detail", "hint", "routine", "file"})
