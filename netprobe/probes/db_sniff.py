"""A MySQL greeting that never came: what is the silent peer? (issue 11)

MySQL speaks first. A peer that accepts and says nothing is either a stuck MySQL or a server
that waits for its client (PostgreSQL, Redis, HTTP, TLS), that is, the wrong port. Before the
silence is called a stuck server, fresh connections to the same address ask with the cheapest
client-first openings (``protocols/openings.py``, and a TLS ClientHello), all at once, within
one short window cut to the total deadline. What answered goes into the result; the verdict
is ``classify/database.py``'s.
"""

from __future__ import annotations

import contextlib
import time

import anyio

from ..protocols.openings import PLAIN_OPENINGS, Opening, recognise
from ..steps import DatabaseResult
from ._context import ProbeContext
from ._io import STREAM_ERRORS, stream_from_socket
from .tcp import connect_address
from .tls_followup import follow_up

__all__ = ["SNIFF_WINDOW_S", "silent_greeting", "what_answers"]

#: How long the openings wait for answers: real servers answer them at once (milliseconds).
SNIFF_WINDOW_S = 1.0
#: Bytes read from one answer: a status line or a one-byte SSLRequest answer is enough.
_ANSWER_BYTES = 2048
#: How long the rest of an HTTP answer may take after its status line.
_HTTP_BODY_WAIT_S = 0.2
#: A peer silent to every opening is not asked again for this long. It may be a stuck MySQL
#: after all: when it recovers, MariaDB counts each opening it then reads as an aborted
#: handshake against max_connect_errors (100 by default; then it blocks this host, 1129), so
#: a health check diagnosing every few seconds must not add four of them each time.
SILENT_TTL_S = 60.0
_MAX_REMEMBERED = 256
_silent_since: dict[tuple[str, int], float] = {}


def silent_greeting(result: DatabaseResult) -> bool:
    """A MySQL server that sent no greeting, and to which nothing was sent: worth asking
    what the port speaks."""
    return (
        result.protocol == "mysql"
        and result.outcome == "timeout"
        and result.phase == "greeting"
        and not result.bytes_sent
        and not result.first_bytes
    )


async def what_answers(ctx: ProbeContext, address: str) -> str | None:
    """Who answers a client-first opening on a fresh connection to ``address``, in words
    (the most telling answer first: PostgreSQL's SSLRequest byte, a TLS handshake, an HTTP
    status line, a Redis reply); None when nothing answered within the window, or when
    nothing answered the last time, less than :data:`SILENT_TTL_S` ago."""
    key = (address, ctx.target.port)
    now = time.monotonic()
    if now - _silent_since.get(key, -SILENT_TTL_S) < SILENT_TTL_S:
        return None
    found: dict[str, str] = {}

    async def plain(opening: Opening) -> None:
        answer = await _ask(ctx, address, opening.data)
        said = recognise(opening, answer)
        if said is not None:
            found[opening.name] = said

    async def tls() -> None:
        hello = await follow_up(ctx, address, "tls_required", offered="TLS 1.0-1.3")
        if hello.outcome == "ok":
            found["tls"] = f"a TLS server (it completed a handshake: {hello.version})"
        elif hello.outcome == "alert":
            found["tls"] = f"a TLS server (it answered a ClientHello with the alert {hello.alert})"

    window = ctx.budget(SNIFF_WINDOW_S)
    with anyio.move_on_after(window):
        async with anyio.create_task_group() as tg:
            for opening in PLAIN_OPENINGS:
                tg.start_soon(plain, opening)
            tg.start_soon(tls)
    answered = _most_telling(found)
    if answered is None and window >= SNIFF_WINDOW_S:  # not when the deadline cut it short
        if len(_silent_since) >= _MAX_REMEMBERED:
            _silent_since.clear()
        _silent_since[key] = now
    elif answered is not None:
        _silent_since.pop(key, None)
    return answered


def _most_telling(found: dict[str, str]) -> str | None:
    """PostgreSQL's one-byte SSLRequest answer; a TLS server (an HTTPS one when plain text
    got an HTTP answer too); Redis; HTTP; anything else."""
    said = [found[o.name] for o in PLAIN_OPENINGS if o.name in found]
    postgres = [s for s in said if s.startswith("PostgreSQL")]
    if postgres:
        return postgres[0]
    http = [s for s in said if s.startswith(("an HTTP server", "an HTTPS server"))]
    if "tls" in found:
        if http:
            return f"{found['tls']}; plain text gets {http[0]}"
        return found["tls"]
    redis = [s for s in said if s.startswith("Redis")]
    return next(iter(redis + http + said), None)


async def _ask(ctx: ProbeContext, address: str, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection; the first bytes back (b"" for none or a close).
    Bounded by the caller's window; never raises for the network."""
    _, sock = await connect_address(address, ctx.target.port, ctx.budget(SNIFF_WINDOW_S))
    if sock is None:
        return b""
    stream = await stream_from_socket(sock)
    answer = b""
    try:
        await stream.send(data)
        answer = await stream.receive(_ANSWER_BYTES)
        if answer.startswith(b"HTTP/"):
            # An HTTP server's words may follow the status line in another segment (nginx:
            # "The plain HTTP request was sent to HTTPS port" in the body): read on briefly.
            with anyio.move_on_after(_HTTP_BODY_WAIT_S):
                while len(answer) < _ANSWER_BYTES:
                    answer += await stream.receive(_ANSWER_BYTES - len(answer))
    except STREAM_ERRORS:
        pass
    finally:
        with anyio.CancelScope(shield=True), contextlib.suppress(*STREAM_ERRORS):
            await stream.aclose()
    return answer
