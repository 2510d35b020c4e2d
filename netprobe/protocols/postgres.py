"""PostgreSQL frontend/backend protocol v3, the part a probe needs: sans-IO, pure functions.

The client speaks first (https://www.postgresql.org/docs/current/protocol-flow.html):
an SSLRequest, answered by one byte (``S``: go on with a TLS handshake; ``N``: plain), then a
StartupMessage naming a user and database. The server answers with messages of the form
type byte + int32 length (including itself) + payload: an authentication request (``R``), an
ErrorResponse (``E``: SQLSTATE 53300 too many connections, 57P03 cannot connect now, 28000
no pg_hba.conf entry...), and after a successful login ParameterStatus (``S``, including
``server_version``), BackendKeyData (``K``) and ReadyForQuery (``Z``).

Parsers return an event, ``None`` for "need more bytes", or raise :class:`ProtocolMismatch`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from .mismatch import ProtocolMismatch

__all__ = [
    "AUTH_METHODS",
    "MAX_MESSAGE",
    "PGBOUNCER_TEXTS",
    "POOLER_PROBE_PARAM",
    "SSLMODES",
    "Authentication",
    "BackendMessage",
    "ErrorResponse",
    "Other",
    "ParameterStatus",
    "ProtocolMismatch",
    "ReadyForQuery",
    "SslAnswer",
    "SslPolicy",
    "build_pooler_probe",
    "build_ssl_request",
    "build_startup",
    "build_terminate",
    "parse_message",
    "parse_ssl_answer",
    "pooler_of",
    "ssl_policy",
]

#: Messages a server sends before and right after login are small; bound what we buffer.
MAX_MESSAGE = 64 * 1024

_SSL_REQUEST_CODE = 80877103  # 1234 << 16 | 5679
_PROTOCOL_3_0 = 196608  # 3 << 16

#: AuthenticationXXX request codes (the int32 after 'R').
AUTH_METHODS: dict[int, str] = {
    0: "ok",
    2: "kerberos_v5",
    3: "cleartext_password",
    5: "md5_password",
    7: "gss",
    8: "gss_continue",
    9: "sspi",
    10: "sasl",
    11: "sasl_continue",
    12: "sasl_final",
}

# ErrorResponse field type bytes (protocol-error-fields.html).
_FIELD_NAMES = {
    "S": "severity",
    "V": "severity_nonlocalized",
    "C": "code",
    "M": "message",
    "D": "detail",
    "H": "hint",
    "P": "position",
    "W": "where",
    "F": "file",
    "L": "line",
    "R": "routine",
}

# Backend message types a server may send around login; anything else at this stage means
# the peer is not a PostgreSQL server.
_KNOWN_TYPES = frozenset(b"REINSKZvA")


@dataclass(frozen=True)
class SslAnswer:
    """The one-byte answer to SSLRequest: ``True`` for ``S`` (TLS follows)."""

    accepted: bool


@dataclass(frozen=True)
class Authentication:
    code: int

    @property
    def method(self) -> str:
        return AUTH_METHODS.get(self.code, f"unknown({self.code})")


@dataclass(frozen=True)
class ErrorResponse:
    """An ErrorResponse (or NoticeResponse) with its fields by name (``code`` is SQLSTATE)."""

    fields: dict[str, str] = field(default_factory=dict)
    notice: bool = False

    @property
    def sqlstate(self) -> str | None:
        return self.fields.get("code")

    @property
    def message(self) -> str:
        return self.fields.get("message", "")

    @property
    def routine(self) -> str | None:
        return self.fields.get("routine")


@dataclass(frozen=True)
class ParameterStatus:
    name: str
    value: str


@dataclass(frozen=True)
class ReadyForQuery:
    status: str


@dataclass(frozen=True)
class Other:
    type: str


BackendMessage = Authentication | ErrorResponse | ParameterStatus | ReadyForQuery | Other

#: libpq's sslmode values (libpq-ssl.html, table "SSL Mode Descriptions"), weakest first.
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class SslPolicy:
    """What a DSN's ``sslmode`` asks of the probe, as libpq reads it.

    ``request``: send SSLRequest (``allow`` tries plain text first, so the probe does too);
    ``required``: a server that answers ``N`` is a fault; ``verify``: check the chain
    (``verify-ca``) and also the host name (``verify-full``). ``prefer`` and ``require``
    encrypt without checking the certificate at all, exactly like libpq.
    """

    sslmode: str
    request: bool
    required: bool
    verify: bool
    check_hostname: bool


def ssl_policy(params: Mapping[str, str]) -> SslPolicy:
    """The policy of a target's query parameters (default ``prefer``, libpq's default)."""
    mode = params.get("sslmode", "prefer")
    return SslPolicy(
        sslmode=mode,
        request=mode not in ("disable", "allow"),
        required=mode in ("require", "verify-ca", "verify-full"),
        verify=mode in ("verify-ca", "verify-full"),
        check_hostname=mode == "verify-full",
    )


def build_ssl_request() -> bytes:
    return struct.pack("!II", 8, _SSL_REQUEST_CODE)


def build_startup(
    user: str, database: str | None = None, application_name: str = "netprobe"
) -> bytes:
    """StartupMessage (protocol 3.0) with ``user``, ``database`` and ``application_name``."""
    params = [("user", user)]
    if database:
        params.append(("database", database))
    params.append(("application_name", application_name))
    return _startup(params)


def _startup(params: list[tuple[str, str]]) -> bytes:
    body = struct.pack("!I", _PROTOCOL_3_0)
    for k, v in params:
        body += k.encode() + b"\0" + v.encode("utf-8") + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


#: A startup parameter PgBouncer refuses at once, before authentication and whatever the
#: state of its server ("unsupported startup parameter", SQLSTATE 08P01, unless listed in its
#: ignore_startup_parameters), while PostgreSQL takes a dotted name for a custom setting and
#: answers with its authentication request as usual.
POOLER_PROBE_PARAM = "netprobe.pooler_probe"

#: The beginnings of PgBouncer's own error messages (SQLSTATE 08P01, src/client.c and
#: src/objects.c of PgBouncer 1.18; captured in tests/fixtures/realservers/pgbouncer/).
#: PostgreSQL itself sends 08P01 only for a client's protocol violation, with other words
#: ("invalid frontend message type", "expected SASL response"...).
PGBOUNCER_TEXTS = (
    "no more connections allowed",
    "pgbouncer cannot connect to server",
    "query_wait_timeout",
    "client_login_timeout",
    "server login has been failing",
    "server_login_retry",
    "no such database",
    "no such user",
    "unsupported startup parameter",
    '"trust" authentication failed',
    "password authentication failed",
    "SASL authentication failed",
    "server conn crashed",
    "pooler error",
    "database does not allow connections",
    "login rejected",
)


def pooler_of(sqlstate: str | None, message: str | None) -> str | None:
    """``"pgbouncer"`` when an error is one of PgBouncer's own (08P01 with its words), else None."""
    if sqlstate != "08P01" or not message:
        return None
    return "pgbouncer" if message.startswith(PGBOUNCER_TEXTS) else None


def build_pooler_probe(user: str) -> bytes:
    """A StartupMessage carrying :data:`POOLER_PROBE_PARAM`: PgBouncer answers it with its
    08P01 error at once, also while it holds every login for a server that is down."""
    return _startup([("user", user), (POOLER_PROBE_PARAM, "1")])


def build_terminate() -> bytes:
    """Terminate ('X'): the clean goodbye."""
    return b"X" + struct.pack("!I", 4)


def parse_ssl_answer(data: bytes) -> tuple[SslAnswer | ErrorResponse, bytes] | None:
    """The answer to SSLRequest: ``S``, ``N``, or (very old or failing servers) an ErrorResponse."""
    if not data:
        return None
    head = data[:1]
    if head == b"S":
        return SslAnswer(True), data[1:]
    if head == b"N":
        return SslAnswer(False), data[1:]
    if head == b"E":
        parsed = parse_message(data)
        if parsed is None:
            return None
        msg, rest = parsed
        if isinstance(msg, ErrorResponse):
            return msg, rest
    raise ProtocolMismatch("the answer to SSLRequest is not 'S', 'N' or an error", data)


def parse_message(data: bytes) -> tuple[BackendMessage, bytes] | None:
    """Parse one backend message from the start of ``data``."""
    if not data:
        return None
    kind = data[0]
    if kind not in _KNOWN_TYPES:
        raise ProtocolMismatch(f"byte 0x{kind:02x} does not start a PostgreSQL message", data)
    if len(data) < 5:
        return None
    (length,) = struct.unpack_from("!I", data, 1)
    if length < 4 or length > MAX_MESSAGE:
        raise ProtocolMismatch(f"a PostgreSQL message cannot be {length} bytes long", data)
    if len(data) < 1 + length:
        return None
    payload, rest = data[5 : 1 + length], data[1 + length :]
    t = chr(kind)
    if t == "R":
        if len(payload) < 4:
            raise ProtocolMismatch("an authentication request is too short", data)
        return Authentication(struct.unpack_from("!I", payload)[0]), rest
    if t in ("E", "N"):
        return ErrorResponse(fields=_error_fields(payload), notice=t == "N"), rest
    if t == "S":
        parts = payload.split(b"\0")
        if len(parts) < 3:
            raise ProtocolMismatch("a malformed ParameterStatus", data)
        name, value = (p.decode("utf-8", "replace") for p in parts[:2])
        return ParameterStatus(name, value), rest
    if t == "Z":
        return ReadyForQuery(payload[:1].decode("latin-1")), rest
    return Other(t), rest


def _error_fields(payload: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for chunk in payload.split(b"\0"):
        if not chunk:
            continue
        key = chr(chunk[0])
        fields[_FIELD_NAMES.get(key, key)] = chunk[1:].decode("utf-8", "replace")
    return fields
