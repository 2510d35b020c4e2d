"""Client-first openings: what a silent peer is, asked the cheapest ways a client can speak
first. Pure and sans-IO: the bytes to send, and what an answer says about who answered.

Why: a MySQL client waits for the server's greeting, and so does every server that waits for
its client (PostgreSQL, Redis, HTTP, TLS): pointed at one of them, ``mysql://`` hears nothing
and would call a healthy server stuck. Asked in its own language on a fresh connection, such a
server answers at once (captured on Debian 12, tests/fixtures/realservers/FINDINGS.md):

* a PostgreSQL SSLRequest (8 bytes): PostgreSQL answers one byte, ``S`` or ``N``; an HTTP
  server answers ``400 Bad Request`` (nginx, also on its TLS port: "The plain HTTP request
  was sent to HTTPS port");
* a TLS ClientHello (made by the ``ssl`` module, not here): a TLS server answers ServerHello;
* an HTTP/1.0 request: an HTTP server answers a status line;
* a Redis ``PING``: Redis answers ``+PONG`` (or ``-NOAUTH``); it answers none of the others
  (and drops an HTTP request as a cross-protocol attack).
"""

from __future__ import annotations

from dataclasses import dataclass

from .postgres import build_ssl_request
from .redis import build_command
from .sniff import _HTTP_STATUS, describe_bytes, printable_preview

__all__ = ["PLAIN_OPENINGS", "Opening", "recognise"]


@dataclass(frozen=True)
class Opening:
    """One client-first opening: its name in reports and the bytes it sends."""

    name: str
    data: bytes


#: The plain-text openings, in the order their answers are trusted (the TLS ClientHello is
#: the probe's: ``ssl`` builds it).
PLAIN_OPENINGS: tuple[Opening, ...] = (
    Opening("a PostgreSQL SSLRequest", build_ssl_request()),
    Opening("a Redis PING", build_command("PING")),
    Opening("an HTTP request", b"GET / HTTP/1.0\r\nUser-Agent: netprobe\r\n\r\n"),
)


def recognise(opening: Opening, answer: bytes) -> str | None:
    """Who answered ``opening`` with ``answer`` (its first bytes), in words; None when the
    answer says nothing (no bytes)."""
    if not answer:
        return None
    status = _HTTP_STATUS.match(answer)
    if status is not None:
        said = printable_preview(status.group(0))
        if b"plain HTTP request was sent to HTTPS port" in answer:
            return f"an HTTPS server ({said}: the plain HTTP request was sent to HTTPS port)"
        return f"an HTTP server ({said})"
    if opening.data == PLAIN_OPENINGS[0].data and answer[:1] in (b"S", b"N") and len(answer) == 1:
        offer = "TLS offered" if answer == b"S" else "no TLS"
        return f"PostgreSQL (it answered the SSLRequest with '{answer.decode()}': {offer})"
    if opening.data == PLAIN_OPENINGS[1].data and answer[:1] in (b"+", b"-"):
        return f"Redis (it answered PING with {printable_preview(answer, 40)})"
    return f"a server that answered {opening.name} with {describe_bytes(answer[:512])}"
