"""Redis RESP replies, the part a probe needs: sans-IO, pure functions.

Redis does not speak first, with one exception worth catching: when ``maxclients`` is
reached it accepts the socket, pushes ``-ERR max number of clients reached`` and closes
(networking.c, ``acceptCommonHandler``). The probe therefore reads briefly first, then sends
PING: ``+PONG`` (or ``-NOAUTH`` / ``-WRONGPASS``) proves the server alive; ``-LOADING``,
``-BUSY`` and ``-MASTERDOWN`` say it is not ready (https://redis.io/docs/reference/protocol-spec/).

``parse_reply`` returns ``(reply, rest)``, ``None`` for "need more bytes", or raises
:class:`ProtocolMismatch`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .mismatch import ProtocolMismatch

__all__ = [
    "MAX_REPLY",
    "RedisError",
    "RedisReply",
    "Simple",
    "Value",
    "build_command",
    "info_field",
    "parse_reply",
]

#: PING and INFO server replies are small. Bound what we buffer from a peer.
MAX_REPLY = 64 * 1024
_MAX_LINE = 4096
_MAX_DEPTH = 4
_INT = re.compile(rb"-?[0-9]+")


@dataclass(frozen=True)
class Simple:
    """``+OK`` / ``+PONG``."""

    text: str


@dataclass(frozen=True)
class RedisError:
    """``-PREFIX message``: the prefix (``ERR``, ``NOAUTH``, ``LOADING``...) is the code."""

    prefix: str
    message: str


@dataclass(frozen=True)
class Value:
    """Any other reply: integer, bulk string, array, RESP3 types (kept only loosely)."""

    value: object


RedisReply = Simple | RedisError | Value


def build_command(*args: str) -> bytes:
    """A RESP array of bulk strings, the form every Redis accepts."""
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode("utf-8")
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def parse_reply(data: bytes) -> tuple[RedisReply, bytes] | None:
    """Parse one reply from the start of ``data``."""
    parsed = _parse(data, 0, 0)
    if parsed is None:
        return None
    reply, end = parsed
    return reply, data[end:]


def _line(data: bytes, pos: int) -> tuple[bytes, int] | None:
    end = data.find(b"\r\n", pos, pos + _MAX_LINE + 2)
    if end == -1:
        if len(data) - pos > _MAX_LINE:
            raise ProtocolMismatch("a Redis reply line is too long", data)
        return None
    return data[pos:end], end + 2


def _int(text: bytes, data: bytes) -> int:
    # One optional sign: b"--1".lstrip(b"-") passed the check and int() raised ValueError.
    if not text or len(text) > 20 or not _INT.fullmatch(text):
        raise ProtocolMismatch("a Redis length or integer is not a number", data)
    return int(text)


def _parse(data: bytes, pos: int, depth: int) -> tuple[RedisReply, int] | None:
    if len(data) <= pos:
        return None
    kind = data[pos : pos + 1]
    if kind not in b"+-:$*_,#%~>(=!|" or not kind:
        raise ProtocolMismatch("the reply does not start with a RESP type byte", data)
    if depth > _MAX_DEPTH:
        raise ProtocolMismatch("a Redis reply nests too deep for a PING or INFO answer", data)
    got = _line(data, pos + 1)
    if got is None:
        return None
    line, pos = got
    if kind == b"+":
        return Simple(line.decode("utf-8", "replace")), pos
    if kind == b"-":
        text = line.decode("utf-8", "replace")
        prefix, _, _ = text.partition(" ")
        return RedisError(prefix=prefix, message=text), pos
    if kind in (b":", b"_", b",", b"#", b"("):
        return Value(line.decode("utf-8", "replace")), pos
    n = _int(line, data)
    if kind in (b"$", b"=", b"!"):
        if n < 0:
            return Value(None), pos
        if n > MAX_REPLY:
            raise ProtocolMismatch(f"a Redis bulk reply of {n} bytes is too large here", data)
        if len(data) < pos + n + 2:
            return None
        if data[pos + n : pos + n + 2] != b"\r\n":
            raise ProtocolMismatch("a Redis bulk reply is not terminated by CRLF", data)
        return Value(data[pos : pos + n].decode("utf-8", "replace")), pos + n + 2
    # Aggregates: * array, ~ set, > push, % map and | attribute (two items per entry).
    if n < 0:
        return Value(None), pos
    count = n * 2 if kind in (b"%", b"|") else n
    if count > 1024:
        raise ProtocolMismatch(f"a Redis aggregate of {n} items is too large here", data)
    items: list[object] = []
    for _ in range(count):
        sub = _parse(data, pos, depth + 1)
        if sub is None:
            return None
        item, pos = sub
        items.append(item)
    return Value(items), pos


def info_field(info: str, name: str) -> str | None:
    """One ``name:value`` line of an INFO reply."""
    for line in info.splitlines():
        key, sep, value = line.partition(":")
        if sep and key == name:
            return value.strip()
    return None
