"""MySQL / MariaDB client/server protocol, the part a probe needs: sans-IO, pure functions.

A connection starts with the *server* speaking: one packet holding either the initial
handshake (protocol version 10) or an error packet sent in its place (1040 Too many
connections, 1129 Host blocked, 1130 Host not allowed). Every packet has a 4-byte header: a
3-byte little-endian payload length and a 1-byte sequence id
(https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html).

Each ``parse_*`` function takes the bytes received so far and returns a parsed event, ``None``
when more bytes are needed, or raises :class:`ProtocolMismatch` when the bytes cannot be this
protocol. No other exception escapes (the hypothesis tests hold them to that).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .mismatch import ProtocolMismatch

__all__ = [
    "CLIENT_SSL",
    "MAX_PACKET",
    "AuthSwitch",
    "Greeting",
    "MysqlError",
    "MysqlOk",
    "ProtocolMismatch",
    "Reply",
    "build_auth_switch_response",
    "build_handshake_response",
    "build_quit",
    "parse_greeting",
    "parse_reply",
    "split_packet",
]

#: A greeting or an error is small; anything longer than this is not a server we understand,
#: and bounding it keeps a hostile peer from making the probe buffer megabytes.
MAX_PACKET = 16 * 1024

# Capability flags (include/mysql_com.h).
CLIENT_LONG_PASSWORD = 0x00000001
CLIENT_PROTOCOL_41 = 0x00000200
CLIENT_SSL = 0x00000800
CLIENT_SECURE_CONNECTION = 0x00008000
CLIENT_PLUGIN_AUTH = 0x00080000

_MARIADB_PREFIX = "5.5.5-"


@dataclass(frozen=True)
class Greeting:
    """The initial handshake packet (protocol 10)."""

    protocol_version: int
    server_version: str  # as sent, e.g. "5.5.5-10.11.6-MariaDB-0+deb12u1"
    connection_id: int
    capabilities: int
    charset: int | None
    status: int | None
    auth_plugin: str | None
    scramble: bytes

    @property
    def version(self) -> str:
        """The version with MariaDB's ``5.5.5-`` replication-compatibility prefix stripped."""
        v = self.server_version
        return v[len(_MARIADB_PREFIX) :] if v.startswith(_MARIADB_PREFIX) else v

    @property
    def product(self) -> str:
        return "mariadb" if "mariadb" in self.server_version.lower() else "mysql"

    @property
    def tls_supported(self) -> bool:
        return bool(self.capabilities & CLIENT_SSL)


@dataclass(frozen=True)
class MysqlError:
    """An ERR packet: 0xff, a 2-byte error code, an optional ``#`` + 5-char SQLSTATE, a text."""

    code: int
    sqlstate: str | None
    message: str


@dataclass(frozen=True)
class MysqlOk:
    """An OK packet (0x00): the login succeeded."""


@dataclass(frozen=True)
class AuthSwitch:
    """0xfe: the server asks for another authentication method (or 0x01: more auth data)."""

    plugin: str | None
    more_data: bool = False


Reply = MysqlError | MysqlOk | AuthSwitch


def split_packet(data: bytes) -> tuple[int, bytes, bytes] | None:
    """``(sequence_id, payload, rest)`` of the first packet, or ``None`` if incomplete."""
    if len(data) < 4:
        _check_header_prefix(data)
        return None
    length = int.from_bytes(data[0:3], "little")
    if length == 0 or length > MAX_PACKET:
        raise ProtocolMismatch(f"a MySQL packet cannot be {length} bytes long here", data)
    if len(data) < 4 + length:
        return None
    return data[3], data[4 : 4 + length], data[4 + length :]


def _check_header_prefix(data: bytes) -> None:
    # Fail early on a prefix that can never become a sane header (e.g. "HTTP" or "-ERR"),
    # so a peer that sends three bytes and waits does not look like a slow MySQL server.
    if len(data) == 3 and int.from_bytes(data[0:3], "little") > MAX_PACKET:
        raise ProtocolMismatch("the first bytes are not a MySQL packet header", data)


def _cstring(payload: bytes, pos: int) -> tuple[str, int]:
    end = payload.find(b"\0", pos)
    if end == -1:
        raise ValueError("unterminated string")
    return payload[pos:end].decode("utf-8", "replace"), end + 1


def _parse_error(payload: bytes) -> MysqlError:
    if len(payload) < 3:
        raise ProtocolMismatch("a MySQL error packet is too short", payload)
    code = int.from_bytes(payload[1:3], "little")
    rest = payload[3:]
    sqlstate = None
    if rest[:1] == b"#" and len(rest) >= 6:
        sqlstate = rest[1:6].decode("ascii", "replace")
        rest = rest[6:]
    return MysqlError(code=code, sqlstate=sqlstate, message=rest.decode("utf-8", "replace"))


def parse_greeting(data: bytes) -> tuple[Greeting | MysqlError, bytes] | None:
    """Parse the first packet a server sends: the greeting, or an error packet in its place.

    Returns ``(event, rest)``, or ``None`` when more bytes are needed.
    Raises ProtocolMismatch: the bytes are not a MySQL server greeting.
    """
    pkt = split_packet(data)
    if pkt is None:
        return None
    seq, payload, rest = pkt
    if seq != 0:
        raise ProtocolMismatch(f"the first MySQL packet has sequence id {seq}, not 0", data)
    if payload[0] == 0xFF:
        return _parse_error(payload), rest
    if payload[0] != 10:
        raise ProtocolMismatch(
            f"MySQL protocol version {payload[0]} is not 10 (the only one since MySQL 3.21)", data
        )
    try:
        return _parse_handshake_v10(payload), rest
    except (ValueError, IndexError, struct.error):
        raise ProtocolMismatch("a malformed MySQL greeting", data) from None


def _parse_handshake_v10(p: bytes) -> Greeting:
    # Protocol::HandshakeV10: version<NUL>, thread id (4), scramble part 1 (8), filler (1),
    # capabilities low (2), [charset (1), status (2), capabilities high (2),
    # auth data length (1), reserved (10), scramble part 2, auth plugin name<NUL>].
    version, pos = _cstring(p, 1)
    if not version or not version.isprintable():
        raise ValueError("bad version")
    (conn_id,) = struct.unpack_from("<I", p, pos)
    pos += 4
    scramble = p[pos : pos + 8]
    pos += 9
    (caps_low,) = struct.unpack_from("<H", p, pos)
    pos += 2
    caps, charset, status, plugin = caps_low, None, None, None
    if len(p) > pos:
        charset = p[pos]
        (status, caps_high) = struct.unpack_from("<HH", p, pos + 1)
        caps |= caps_high << 16
        auth_len = p[pos + 5]
        pos += 6 + 10
        if caps & CLIENT_SECURE_CONNECTION:
            part2 = max(13, auth_len - 8)
            scramble += p[pos : pos + part2].rstrip(b"\0")
            pos += part2
        if caps & CLIENT_PLUGIN_AUTH and pos < len(p):
            end = p.find(b"\0", pos)
            plugin = p[pos : end if end != -1 else len(p)].decode("ascii", "replace") or None
    return Greeting(
        protocol_version=10,
        server_version=version,
        connection_id=conn_id,
        capabilities=caps,
        charset=charset,
        status=status,
        auth_plugin=plugin,
        scramble=scramble,
    )


def parse_reply(data: bytes) -> tuple[Reply, bytes] | None:
    """Parse the server's answer to a handshake response: OK, ERR or an auth switch."""
    pkt = split_packet(data)
    if pkt is None:
        return None
    _, payload, rest = pkt
    head = payload[0]
    if head == 0xFF:
        return _parse_error(payload), rest
    if head == 0x00:
        return MysqlOk(), rest
    if head == 0xFE:
        plugin = None
        if len(payload) > 1:
            end = payload.find(b"\0", 1)
            plugin = payload[1 : end if end != -1 else len(payload)].decode("ascii", "replace")
        return AuthSwitch(plugin=plugin or None), rest
    if head == 0x01:
        return AuthSwitch(plugin=None, more_data=True), rest
    raise ProtocolMismatch(f"unexpected MySQL reply packet 0x{head:02x}", data)


def build_handshake_response(user: str, *, plugin: str | None, sequence_id: int = 1) -> bytes:
    """A HandshakeResponse41 for ``user`` with an empty auth response.

    A non-existent user (or a wrong password) is answered with 1045 Access denied, which
    the server does *not* count as a connection error, unlike a client that hangs up after
    the greeting (those count toward ``max_connect_errors`` and end in 1129 Host blocked).
    """
    caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION
    if plugin:
        caps |= CLIENT_PLUGIN_AUTH
    body = struct.pack("<IIB23x", caps, MAX_PACKET, 45)  # 45: utf8mb4_general_ci
    body += user.encode("utf-8") + b"\0"
    body += b"\0"  # auth response: length 0
    if plugin:
        body += plugin.encode("ascii", "replace") + b"\0"
    return _packet(body, sequence_id)


def build_auth_switch_response(sequence_id: int) -> bytes:
    """An empty answer to an auth switch request (no password)."""
    return struct.pack("<I", 0)[:3] + bytes([sequence_id & 0xFF])


def build_quit() -> bytes:
    """COM_QUIT (0x01): the polite goodbye; the server closes without logging an abort."""
    return _packet(b"\x01", 0)


def _packet(payload: bytes, sequence_id: int) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([sequence_id & 0xFF]) + payload
