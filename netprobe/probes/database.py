"""Database probes: the greeting conversations (no credentials) and the authenticated checks.

Every conversation is bounded in time (``read_timeout``, cut to the total deadline) and in
size (the parsers' ``MAX_*``), never raises for what the server does, and ends with the
protocol's clean goodbye where there is one (COM_QUIT, Terminate, QUIT).

MySQL / MariaDB: a client that reads the greeting and hangs up counts as a *connection
error*; ``max_connect_errors`` of them (default 100) and the server blocks the host with
1129. The probe therefore always answers the greeting with a handshake response for the
probe user, which the server answers with 1045 Access denied: an authentication failure,
not a connection error.

A conversation is split in ``open()`` (up to the point where the server proved itself),
``validate()`` (another round trip, for pools that held the connection) and ``close()``
(the goodbye), so that the pool probe can hold many of them open at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import ssl
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import anyio
from anyio.abc import ByteStream

from ..describe import database_line
from ..options import Options
from ..protocols import mysql as my
from ..protocols import postgres as pg
from ..protocols import redis as rd
from ..protocols.mismatch import ProtocolMismatch
from ..steps import ApplicationStep, DatabaseResult, ErrorInfo
from ._context import ProbeContext
from ._io import STREAM_ERRORS, elapsed_ms, stream_error

__all__ = [
    "Conversation",
    "DriverLogin",
    "MysqlGreeting",
    "PostgresGreeting",
    "RedisGreeting",
    "greeting_conversation",
    "has_credentials",
    "probe_database",
]

T = TypeVar("T")
_ProtocolName = Literal["mysql", "postgresql", "redis"]

#: Upper bound of the bytes read from a peer in one conversation.
MAX_READ = 64 * 1024


class _Timeout(Exception):
    pass


class _Closed(Exception):
    def __init__(self, error: ErrorInfo | None = None) -> None:
        super().__init__("closed")
        self.error = error


class _Wire:
    """A stream plus a receive buffer: read until a sans-IO parser returns an event."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.buf = b""
        self.received = 0
        self.first: bytes = b""

    async def read(self, parse: Callable[[bytes], tuple[T, bytes] | None], seconds: float) -> T:
        """Parse an event, reading more as needed. Raises _Timeout, _Closed, ProtocolMismatch."""
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


def _failure(exc: BaseException) -> _Timeout | _Closed:
    """What the conversation makes of a stream error: its own timeout, or a closed
    connection (with the OS error behind it, e.g. ECONNRESET, unless it was a clean EOF)."""
    failure = stream_error(exc)
    if failure.kind == "timeout":
        return _Timeout()
    return _Closed(None if failure.kind == "eof" else failure.error)


class Conversation:
    """One connection's database conversation. Subclasses speak one protocol."""

    protocol: _ProtocolName

    def __init__(self, ctx: ProbeContext, stream: ByteStream) -> None:
        self.ctx = ctx
        self.wire = _Wire(stream)
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
        except _Timeout:
            self._update(outcome="timeout", **self._first_bytes())
        except _Closed as exc:
            self._update(
                outcome="closed",
                error_message=exc.error.message if exc.error else None,
                error_errno=exc.error.errno_name if exc.error else None,
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
        return self.result

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
        except _Timeout:
            return self._update(
                outcome="timeout",
                phase="handshake",
                closed_cleanly=False,
                error_message="no answer to the handshake response",
            )
        except _Closed as exc:
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


class PostgresGreeting(Conversation):
    """PostgreSQL: SSLRequest (then TLS), StartupMessage (the DSN's user, else the probe
    user), first answer."""

    protocol = "postgresql"

    def __init__(self, ctx: ProbeContext, stream: ByteStream) -> None:
        super().__init__(ctx, stream)
        self.closed = False

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
        answered_user = err.sqlstate == "28P01" or (
            err.sqlstate == "28000" and err.routine != "ClientAuthentication"
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
        from . import tls as tls_probe

        ctx = self.ctx
        step, stream = await tls_probe.start_tls(_tls_context(ctx, policy), self.wire.stream)
        ctx.mark("tls_handshake")
        self._update(tls=step)
        if stream is None:
            self._update(outcome="tls_failed", error_message=step.reason or "TLS handshake failed")
            return False
        self.wire = _Wire(stream)
        self._update(tls_used=True)
        return True

    async def close(self) -> DatabaseResult:
        if not self.closed:
            self.closed = True
            ok = await self.wire.quiet_send(pg.build_terminate())
            self._update(closed_cleanly=ok)
        return self.result


_PG_KEEP = frozenset({"severity_nonlocalized", "detail", "hint", "routine", "file"})


def _tls_context(ctx: ProbeContext, policy: pg.SslPolicy) -> ProbeContext:
    """The probe context whose options make the TLS rung check what ``sslmode`` checks.

    ``prefer`` / ``require``: no verification (libpq's own behaviour). ``verify-full``: the
    options as given (``verify``, ``ca_file``, client certificate). ``verify-ca``: the chain
    but not the host name. A caller's own ``ssl_context`` always wins.
    """
    options = ctx.options
    if options.ssl_context is not None or (policy.check_hostname and options.verify):
        return ctx
    if not policy.verify or not options.verify:
        update: dict[str, Any] = {"verify": False}
    else:
        update = {"ssl_context": _verify_ca_context(options)}
    return dataclasses.replace(ctx, options=options.model_copy(update=update))


def _verify_ca_context(options: Options) -> ssl.SSLContext:
    files = (options.ca_file, options.client_cert, options.client_key)
    mtimes = tuple(os.stat(f).st_mtime_ns if f and os.path.exists(f) else None for f in files)
    return _build_verify_ca(files, mtimes)


@functools.lru_cache(maxsize=16)
def _build_verify_ca(
    files: tuple[str | None, str | None, str | None], _mtimes: tuple[int | None, ...]
) -> ssl.SSLContext:
    ca_file, client_cert, client_key = files
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = False  # verify-ca: the chain, not the name
    if client_cert:
        context.load_cert_chain(client_cert, client_key)
    return context


def pg_driver_ssl(ctx: ProbeContext) -> ssl.SSLContext | str:
    """asyncpg's ``ssl=`` for the target: the same verification as the greeting probe."""
    policy = pg.ssl_policy(ctx.target.params)
    if ctx.options.ssl_context is not None:
        return ctx.options.ssl_context
    if not policy.verify:
        return policy.sslmode
    from . import tls as tls_probe

    return tls_probe.client_context(_tls_context(ctx, policy).options)


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
        except _Timeout:
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
        try:
            await self.wire.send(rd.build_command("INFO", "server"))
            reply = await self.wire.read(rd.parse_reply, self._timeout())
        except (_Timeout, ProtocolMismatch):
            return
        if isinstance(reply, rd.Value) and isinstance(reply.value, str):
            self._update(
                version=rd.info_field(reply.value, "redis_version"),
                notes=[*self.result.notes, f"mode {rd.info_field(reply.value, 'redis_mode')}"],
            )

    async def validate(self) -> DatabaseResult:
        if self.closed:
            return self.result
        try:
            await self._ping(time.perf_counter(), phase="hold")
        except _Timeout:
            self._update(outcome="timeout", phase="hold", error_message="no answer to PING")
        except _Closed as exc:
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
        with contextlib.suppress(_Timeout, _Closed, ProtocolMismatch):
            await self.wire.read(rd.parse_reply, min(self._timeout(), 1.0))
        return self._update(closed_cleanly=True)


_GREETINGS: dict[str, type[Conversation]] = {
    "mysql": MysqlGreeting,
    "postgresql": PostgresGreeting,
    "redis": RedisGreeting,
}


def greeting_conversation(ctx: ProbeContext, stream: ByteStream) -> Conversation:
    return _GREETINGS[ctx.target.protocol](ctx, stream)


def has_credentials(ctx: ProbeContext) -> bool:
    t = ctx.target
    return t.username is not None or t.password is not None


async def probe_database(ctx: ProbeContext, stream: ByteStream) -> ApplicationStep:
    """The application rung of a database target: greeting, then the login when credentialed."""
    conv = greeting_conversation(ctx, stream)
    try:
        result = await conv.open()
    finally:
        result = await _shielded_close(conv)
    if has_credentials(ctx) and result.outcome == "ready":
        login = DriverLogin(ctx)
        try:
            result = _merge(result, await login.open())
        finally:
            await login.close()
    return to_step(ctx, result)


async def _shielded_close(conv: Conversation) -> DatabaseResult:
    with anyio.CancelScope(shield=True), anyio.move_on_after(max(conv._timeout(), 0.5) + 0.5):
        return await conv.close()
    return conv.result


def _merge(greeting: DatabaseResult, login: DatabaseResult) -> DatabaseResult:
    keep = {
        k: getattr(greeting, k)
        for k in (
            "server",
            "protocol_version",
            "connection_id",
            "auth_plugin",
            "tls_supported",
            "greeting_ms",
            "tls",
            "tls_used",
        )
        if getattr(greeting, k) is not None and getattr(login, k) in (None, False)
    }
    if login.version is None and greeting.version is not None:
        keep["version"] = greeting.version
    return login.replace(**keep, notes=(*greeting.notes, *login.notes))


def to_step(ctx: ProbeContext, result: DatabaseResult) -> ApplicationStep:
    ok = result.outcome in ("ready", "validated")
    return ApplicationStep(
        status="ok" if ok else "failed",
        protocol=ctx.target.protocol,
        reason=database_line(result),
        duration_ms=(result.greeting_ms or 0.0) + (result.login_ms or 0.0) or None,
        database=result,
    )


# ---------------------------------------------------------------------------------------------
# Authenticated checks: the ecosystem's drivers log in; we never write authentication by hand.


class DriverLogin:
    """Log in with the target's credentials and run the validation query, the way a pool does."""

    def __init__(self, ctx: ProbeContext) -> None:
        self.ctx = ctx
        self.conn: Any = None
        t = ctx.target
        self.result = DatabaseResult(
            protocol=t.protocol,
            outcome="driver_error",
            phase="login",
            authenticated=True,
            login_user=t.username,
        )

    def _timeout(self) -> float:
        return max(
            0.1,
            self.ctx.budget(max(self.ctx.options.read_timeout, self.ctx.options.connect_timeout)),
        )

    async def open(self) -> DatabaseResult:
        proto = self.ctx.target.protocol
        start = time.perf_counter()
        try:
            with anyio.fail_after(self._timeout()):
                if proto == "postgresql":
                    await self._pg_login()
                elif proto == "mysql":
                    await self._mysql_login()
                else:
                    await self._redis_login()
            self.result = self.result.replace(login_ms=elapsed_ms(start))
            return await self.validate()
        except TimeoutError:
            return self._set(outcome="timeout", login_ms=elapsed_ms(start))
        except ImportError as exc:
            return self._set(outcome="unavailable", error_message=str(exc))
        except Exception as exc:  # noqa: BLE001 - driver exceptions are mapped to data here
            return self._set(login_ms=elapsed_ms(start), **_driver_error(proto, exc))

    def _set(self, **changes: Any) -> DatabaseResult:
        self.result = self.result.replace(**changes)
        return self.result

    async def _pg_login(self) -> None:
        import asyncpg

        t = self.ctx.target
        self.conn = await asyncpg.connect(
            host=t.host,
            port=t.port,
            user=t.username,
            password=t.password.get_secret_value() if t.password else None,
            database=t.path or None,
            ssl=pg_driver_ssl(self.ctx),
            timeout=self._timeout(),
        )
        version = self.conn.get_server_version()
        raw = self.conn.get_settings().server_version
        self._set(server="postgresql", version=raw or f"{version.major}.{version.minor}")

    async def _mysql_login(self) -> None:
        import asyncmy

        t = self.ctx.target
        self.conn = await asyncmy.connect(
            host=t.host,
            port=t.port,
            user=t.username or "",
            password=t.password.get_secret_value() if t.password else "",
            database=t.path or None,
            connect_timeout=max(1, int(self._timeout())),
        )
        info = str(self.conn.get_server_info())
        self._set(
            server="mariadb" if "mariadb" in info.lower() else "mysql",
            version=info.removeprefix("5.5.5-"),
        )

    async def _redis_login(self) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        t = self.ctx.target
        self.conn = aioredis.Redis(
            host=t.host,
            port=t.port,
            username=t.username or None,
            password=t.password.get_secret_value() if t.password else None,
            db=int(t.path or 0),
            ssl=t.tls,
            socket_connect_timeout=self._timeout(),
            socket_timeout=self._timeout(),
            ssl_cert_reqs="required" if self.ctx.options.verify else "none",
            ssl_ca_certs=self.ctx.options.ca_file,
            retry=Retry(NoBackoff(), 0),  # one attempt: a probe reports, it does not retry
        )
        await self.conn.ping()  # AUTH is sent on connect
        self._set(server="redis")
        try:
            info = await self.conn.info("server")
            self._set(version=str(info.get("redis_version")) if info else None)
        except Exception:  # noqa: BLE001 - INFO may be forbidden by ACL: the version is optional
            pass

    async def validate(self) -> DatabaseResult:
        """Run the validation query on the open session."""
        if self.conn is None:
            return self.result
        proto = self.ctx.target.protocol
        start = time.perf_counter()
        query = "PING" if proto == "redis" else "SELECT 1"
        try:
            with anyio.fail_after(self._timeout()):
                if proto == "postgresql":
                    await self.conn.fetchval("SELECT 1")
                elif proto == "mysql":
                    async with self.conn.cursor() as cur:
                        await cur.execute("SELECT 1")
                        await cur.fetchone()
                else:
                    await self.conn.ping()
        except TimeoutError:
            return self._set(
                outcome="timeout",
                phase="validation",
                validation=query,
                validation_ms=elapsed_ms(start),
            )
        except Exception as exc:  # noqa: BLE001 - driver exceptions are mapped to data here
            return self._set(
                phase="validation",
                validation=query,
                validation_ms=elapsed_ms(start),
                **_driver_error(proto, exc),
            )
        return self._set(
            outcome="validated",
            phase="validation",
            validation=query,
            validation_ms=elapsed_ms(start),
        )

    async def close(self) -> DatabaseResult:
        conn, self.conn = self.conn, None
        if conn is None:
            return self.result
        with anyio.CancelScope(shield=True), anyio.move_on_after(2.0) as scope:
            try:
                if self.ctx.target.protocol == "redis":
                    await conn.aclose()
                elif self.ctx.target.protocol == "mysql":
                    await conn.ensure_closed()
                else:
                    await conn.close()
            except Exception:  # noqa: BLE001 - a failing goodbye is only recorded
                self._set(closed_cleanly=False)
                return self.result
        if scope.cancelled_caught:
            if self.ctx.target.protocol == "postgresql":
                conn.terminate()
            else:
                _force_close(conn)
            return self._set(closed_cleanly=False)
        return self._set(closed_cleanly=True)


def _force_close(conn: Any) -> None:
    close = getattr(conn, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):  # best effort after a timed-out goodbye
            close()


def _driver_error(proto: str, exc: BaseException) -> dict[str, Any]:
    """A driver exception, reduced to the server's code and message (never the password)."""
    if proto == "postgresql":
        state = getattr(exc, "sqlstate", None)
        if isinstance(state, str):
            fields = {}
            detail = getattr(exc, "detail", None)
            if detail:
                fields["detail"] = str(detail)
            return {
                "outcome": "server_error",
                "error_code": state,
                "sqlstate": state,
                "error_message": str(exc),
                "error_fields": fields,
            }
    elif proto == "mysql":
        args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
        if len(args) >= 2 and isinstance(args[0], int) and args[0] >= 1000:
            return {
                "outcome": "server_error",
                "error_code": str(args[0]),
                "error_message": str(args[1]),
            }
    else:
        text = str(exc)
        prefix = _redis_prefix(type(exc).__name__, text)
        if prefix is not None:
            return {"outcome": "server_error", "error_code": prefix, "error_message": text}
    info = ErrorInfo.from_exception(exc)
    outcome = "closed" if isinstance(exc, (OSError, ConnectionError)) else "driver_error"
    return {"outcome": outcome, "error_message": f"{info.type}: {info.message}"}


_REDIS_EXC_PREFIX = {
    "AuthenticationError": "WRONGPASS",
    "AuthenticationWrongNumberOfArgsError": "WRONGPASS",
    "BusyLoadingError": "LOADING",
    "NoPermissionError": "NOPERM",
}


def _redis_prefix(exc_type: str, text: str) -> str | None:
    # redis-py strips the prefix of the errors it maps to its own classes.
    if exc_type in _REDIS_EXC_PREFIX:
        return _REDIS_EXC_PREFIX[exc_type]
    if "max number of clients reached" in text:
        return "ERR"
    head = text.split(" ", 1)[0]
    if head.isupper() and head.isalpha() and len(head) <= 16:
        return head
    return None
