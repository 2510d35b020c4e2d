"""The application rung of a database target: the greeting conversation of its protocol
(no credentials), then, when the target has credentials, the login with its driver.

The conversations: ``mysql.py``, ``postgres.py``, ``redis.py`` (over ``_conversation.py``);
the logins: ``db_login.py``.
"""

from __future__ import annotations

import anyio
from anyio.abc import ByteStream, SocketAttribute

from ..describe import database_line
from ..steps import ApplicationStep, DatabaseResult
from ._context import ProbeContext
from ._conversation import Conversation
from .db_login import login_once
from .db_sniff import silent_greeting, what_answers
from .mysql import MysqlGreeting
from .postgres import PostgresGreeting
from .redis import RedisGreeting

__all__ = [
    "GREETINGS",
    "DatabaseExchange",
    "greeting_conversation",
    "has_credentials",
    "login_after",
    "login_step",
    "to_step",
]


#: Protocol -> its greeting conversation.
GREETINGS: dict[str, type[Conversation]] = {
    "mysql": MysqlGreeting,
    "postgresql": PostgresGreeting,
    "redis": RedisGreeting,
}


def greeting_conversation(ctx: ProbeContext, stream: ByteStream) -> Conversation:
    return GREETINGS[ctx.target.protocol](ctx, stream)


def has_credentials(ctx: ProbeContext) -> bool:
    t = ctx.target
    return t.username is not None or t.password is not None


class DatabaseExchange:
    """The greeting conversation of the target's database, as the application rung's
    exchange (``application.py``): the step follows the conversation through its open,
    validations and goodbye."""

    def __init__(self, ctx: ProbeContext, stream: ByteStream) -> None:
        self._ctx = ctx
        self._stream = stream
        self._conversation = greeting_conversation(ctx, stream)

    async def open(self) -> ApplicationStep:
        result = await self._conversation.open()
        if silent_greeting(result) and self._ctx.remaining() > 0.05:
            # MySQL speaks first; a server that waits for its client is silent too. Ask what
            # the port speaks before the silence is called a stuck server (db_sniff.py).
            address = _peer_address(self._stream)
            if address is not None:
                answered = await what_answers(self._ctx, address)
                if answered is not None:
                    result = self._conversation._update(answered_instead=answered)
        return to_step(self._ctx, result)

    async def validate(self) -> ApplicationStep | None:
        return to_step(self._ctx, await self._conversation.validate())

    async def close(self) -> ApplicationStep | None:
        return to_step(self._ctx, await _shielded_close(self._conversation))


def _peer_address(stream: ByteStream) -> str | None:
    try:
        address = stream.extra(SocketAttribute.remote_address)
    except Exception:  # noqa: BLE001 - a stream without a socket (anyio's TypedAttributeLookupError)
        return None
    return str(address[0]) if isinstance(address, tuple) and address else None


async def login_step(ctx: ProbeContext, step: ApplicationStep) -> ApplicationStep:
    """The application rung's step after the login, for a database target with credentials
    whose greeting was answered (``login_after``); any other step as it is."""
    if step.database is None:
        return step
    return to_step(ctx, await login_after(ctx, step.database))


async def login_after(ctx: ProbeContext, greeting: DatabaseResult) -> DatabaseResult:
    """With credentials, once the server answered its greeting: the login (and the
    validation query), merged with what the greeting learned. Else the greeting as is."""
    if not has_credentials(ctx) or greeting.outcome != "ready":
        return greeting
    return _merge(greeting, await login_once(ctx))


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
    login_notes = login.notes
    if login.version is None and greeting.version is not None:
        keep["version"] = greeting.version
        login_notes = tuple(n for n in login_notes if not n.startswith("version unknown"))
    return login.replace(**keep, notes=(*greeting.notes, *login_notes))


def to_step(ctx: ProbeContext, result: DatabaseResult) -> ApplicationStep:
    ok = result.outcome in ("ready", "validated")
    return ApplicationStep(
        status="ok" if ok else "failed",
        protocol=ctx.target.protocol,
        reason=database_line(result),
        duration_ms=(result.greeting_ms or 0.0) + (result.login_ms or 0.0) or None,
        database=result,
    )
