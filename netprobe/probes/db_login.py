"""The authenticated checks: log in with the target's credentials and run the validation
query, the way a connection pool does. The ecosystem's drivers log in (asyncpg, asyncmy,
redis-py); we never write authentication by hand. Their TLS is configured from the same
options as the greeting's (``ssl_contexts.py``).

The drivers are asyncio-only: under another backend (trio) a session runs on an asyncio loop
of its own in a worker thread (:class:`DriverSession`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
from anyio.from_thread import BlockingPortal, start_blocking_portal

from .._errors import InvalidOption
from ..protocols import postgres as pg
from ..steps import DatabaseResult, ErrorInfo
from ..target import Target
from ._context import ProbeContext
from ._io import elapsed_ms, on_asyncio
from .postgres import held_login_note, identify_pooler
from .ssl_contexts import asyncpg_ssl, redis_connection

__all__ = ["DriverLogin", "DriverSession", "login_once", "require_driver", "wants_login"]

#: The optional extra that installs each protocol's login driver (pyproject.toml).
_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "redis": "redis"}
#: The module each protocol's login imports.
_DRIVERS = {"postgresql": "asyncpg", "mysql": "asyncmy", "redis": "redis"}


def wants_login(target: Target) -> bool:
    """A database target with credentials: its check is a login, not only a greeting."""
    return target.protocol in _DRIVERS and (
        target.username is not None or target.password is not None
    )


def require_driver(target: Target) -> None:
    """Credentials given and the login driver not installed: :class:`InvalidOption`, before
    any I/O, naming the install command.

    A login the user asked for that cannot run must never read healthy: without this check
    the greeting alone answered and the report said HEALTHY for wrong credentials (issue 11).
    A driver that is installed but fails to import (a broken install, a missing shared
    library) is the same mistake with another cause: it is imported here, so that the login
    never finds it missing later and reads "unavailable" (which a report must not call
    healthy), and so that its import time is spent before any clock starts.
    """
    if not wants_login(target):
        return
    module = _DRIVERS[target.protocol]
    extra = _EXTRAS[target.protocol]
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise InvalidOption(
            f"{target} has credentials but the {target.protocol} login driver ({module}) is "
            f"not installed: pip install 'netprobe-sdk[{extra}]' (or drop the credentials "
            "for a greeting-only check)"
        )
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure is the same user mistake
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidOption(
            f"{target} has credentials but the {target.protocol} login driver ({module}) "
            f"fails to import ({type(exc).__name__}: {first}): reinstall it with pip install "
            f"--force-reinstall 'netprobe-sdk[{extra}]'"
        ) from None


async def login_once(ctx: ProbeContext) -> DatabaseResult:
    """One authenticated check: log in, run the validation query, log out."""
    session = DriverSession(ctx)
    try:
        return await session.open()
    finally:
        await session.close()


class DriverSession:
    """A :class:`DriverLogin` on an asyncio event loop, whatever the caller's backend.

    The drivers are asyncio-only. On asyncio the session runs on the caller's loop. Under
    another backend (trio) it runs on an asyncio loop of its own, in a worker thread (anyio's
    blocking portal), for as long as the session is open: a pool can hold it, validate it
    and close it like any other. A cancellation abandons the call in progress, which ends
    within the login's own timeouts; ``close()`` always stops the loop and its thread.
    """

    def __init__(self, ctx: ProbeContext) -> None:
        self.login = DriverLogin(ctx)
        self._portal_cm: contextlib.AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None

    async def open(self) -> DatabaseResult:
        if on_asyncio() is not None:
            return await self.login.open()
        self._portal_cm = start_blocking_portal("asyncio")
        self._portal = await anyio.to_thread.run_sync(self._portal_cm.__enter__)
        return await self._call(self.login.open)

    async def validate(self) -> DatabaseResult:
        if self._portal is None:
            return await self.login.validate()
        return await self._call(self.login.validate)

    async def close(self) -> DatabaseResult:
        """Log out (bounded), and stop the session's own loop if it has one."""
        portal_cm, portal = self._portal_cm, self._portal
        self._portal_cm = self._portal = None
        if portal is None:
            return await self.login.close()
        result = self.login.result
        with anyio.CancelScope(shield=True):
            try:
                result = await anyio.to_thread.run_sync(portal.call, self.login.close)
            finally:
                assert portal_cm is not None
                await anyio.to_thread.run_sync(portal_cm.__exit__, None, None, None)
        return result

    async def _call(self, method: Callable[[], Awaitable[DatabaseResult]]) -> DatabaseResult:
        assert self._portal is not None
        return await anyio.to_thread.run_sync(self._portal.call, method, abandon_on_cancel=True)


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
            login_attempted=True,
            login_user=t.username,
        )

    def _timeout(self) -> float:
        return max(
            0.1,
            self.ctx.budget(max(self.ctx.options.read_timeout, self.ctx.options.connect_timeout)),
        )

    async def open(self) -> DatabaseResult:
        """Log in and validate (on an asyncio loop: see :class:`DriverSession`)."""
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
            if proto == "redis":
                await self._redis_version()
            return await self.validate()
        except TimeoutError:
            self._set(outcome="timeout", login_ms=elapsed_ms(start))
            if proto == "postgresql" and not self.result.logged_in:
                await self._held_by_pooler()
            return self.result
        except ImportError as exc:
            extra = _EXTRAS[proto]
            return self._set(
                outcome="unavailable",
                error_message=f"{exc} (the {extra} extra: pip install 'netprobe-sdk[{extra}]')",
            )
        except Exception as exc:  # noqa: BLE001 - driver exceptions are mapped to data here
            return self._set(login_ms=elapsed_ms(start), **_driver_error(proto, exc))

    def _set(self, **changes: Any) -> DatabaseResult:
        self.result = self.result.replace(**changes)
        return self.result

    async def _held_by_pooler(self) -> None:
        """A login that got no answer: PgBouncer holds logins while its server is down. Ask
        which on a fresh connection (``postgres.identify_pooler``)."""
        t = self.ctx.target
        if await identify_pooler(self.ctx, t.host, t.port) is not None:
            o = self.ctx.options
            note = held_login_note(max(o.read_timeout, o.connect_timeout))
            self._set(server="pgbouncer", notes=(*self.result.notes, note))

    async def _pg_login(self) -> None:
        import asyncpg

        t = self.ctx.target
        self.conn = await asyncpg.connect(
            host=t.host,
            port=t.port,
            user=t.username,
            password=t.password.get_secret_value() if t.password else None,
            database=t.path or None,
            ssl=asyncpg_ssl(self.ctx.options, pg.ssl_policy(t.params)),
            timeout=self._timeout(),
        )
        version = self.conn.get_server_version()
        raw = self.conn.get_settings().server_version
        self._set(
            server="postgresql",
            version=raw or f"{version.major}.{version.minor}",
            logged_in=True,
        )

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
            logged_in=True,
        )

    async def _redis_login(self) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        t = self.ctx.target
        tls: dict[str, Any] = {}
        if t.tls:  # the same verification and client certificate as the greeting's TLS
            tls["connection_class"] = redis_connection(self.ctx.options)
        pool = aioredis.ConnectionPool(
            host=t.host,
            port=t.port,
            username=t.username or None,
            password=t.password.get_secret_value() if t.password else None,
            db=int(t.path or 0),
            socket_connect_timeout=self._timeout(),
            socket_timeout=self._timeout(),
            retry=Retry(NoBackoff(), 0),  # one attempt: a probe reports, it does not retry
            **tls,
        )
        self.conn = aioredis.Redis.from_pool(pool)  # closing the client closes the pool
        await self.conn.ping()  # AUTH is sent on connect
        self._set(server="redis", logged_in=True)

    async def _redis_version(self) -> None:
        """INFO server, for the version, after the login and outside its timeout: optional.
        The PONG after AUTH is the verdict; INFO renamed, forbidden by an ACL, unanswered or
        closed by a Redis-compatible proxy leaves the version unknown, with a note (issue 11)."""
        why: str | None = None
        try:
            with anyio.fail_after(self._timeout()):
                info = await self.conn.info("server")
        except TimeoutError:
            why = "no answer to INFO in time"
        except Exception as exc:  # noqa: BLE001 - any failure of the optional INFO is data
            err = ErrorInfo.from_exception(exc)
            why = f"INFO failed: {err.type}: {err.message}"
        else:
            version = info.get("redis_version") if isinstance(info, dict) else None
            if version is not None:
                self._set(version=str(version))
            else:
                why = "INFO names no redis_version"
        if why is not None:
            self._set(notes=(*self.result.notes, f"version unknown: {why} (PING answered PONG)"))

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
            pooler = pg.pooler_of(state, str(exc))
            return {
                "outcome": "server_error",
                "error_code": state,
                "sqlstate": state,
                "error_message": str(exc),
                "error_fields": fields,
                **({"server": pooler} if pooler else {}),
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
