"""gRPC over HTTP/2, the part a health probe needs: sans-IO, pure functions, no protobuf library.

The wire facts relied on (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):

* A request is ``POST /{service}/{method}`` with ``content-type: application/grpc``,
  ``te: trailers`` (it detects proxies that would drop trailers) and optionally
  ``grpc-timeout`` (at most 8 ASCII digits and a unit: H M S m u n).
* Messages travel in DATA frames as **Length-Prefixed-Message**: a 1-byte compressed flag, a
  4-byte big-endian length, then the message. DATA frame boundaries have no relation to
  message boundaries.
* A response is headers (``:status 200``, ``content-type: application/grpc...``), messages,
  then trailers carrying ``grpc-status`` (1*DIGIT) and optionally ``grpc-message``
  (percent-encoded UTF-8; "when decoding invalid values, implementations MUST NOT error").
  A **Trailers-Only** response puts status and message in the one HEADERS frame.
* Without ``grpc-status`` (a proxy's 502, an HTTP server's 404) a client synthesises one from
  the HTTP status (https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md);
  an RST_STREAM maps to a status by its HTTP/2 error code (the table in PROTOCOL-HTTP2.md).

The health service (https://github.com/grpc/grpc-proto/blob/master/grpc/health/v1/health.proto)::

    message HealthCheckRequest { string service = 1; }
    message HealthCheckResponse {
      enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
      ServingStatus status = 1;
    }

``Check`` fails with NOT_FOUND for an unknown service; a server without the health service
answers UNIMPLEMENTED. The two messages are encoded by hand
(https://protobuf.dev/programming-guides/encoding/): a field is a varint key
``(number << 3) | wire_type``; proto3 leaves a field at its default out (an empty request asks
for the server's overall health, an empty response means UNKNOWN); unknown fields are skipped.

Every parser returns a value, ``None`` for "need more bytes", or raises
:class:`GrpcProtocolError` (a :class:`~netprobe.protocols.mismatch.ProtocolMismatch`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..steps import GrpcFailure, GrpcStatusSource
from .mismatch import ProtocolMismatch

__all__ = [
    "GRPC_STATUS_NAMES",
    "HEALTH_CHECK_PATH",
    "MAX_MESSAGE",
    "SERVING_STATUS_NAMES",
    "GrpcFailure",
    "GrpcMessage",
    "GrpcProtocolError",
    "StatusSource",
    "decode_grpc_message",
    "decode_health_request",
    "decode_health_response",
    "encode_grpc_message",
    "encode_health_request",
    "frame_message",
    "grpc_timeout",
    "is_grpc_content_type",
    "parse_message",
    "parse_status",
    "status_from_http",
    "status_from_rst_stream",
    "status_name",
]

#: Re-exported from the step models (the observation this parser's results fill).
StatusSource = GrpcStatusSource


#: The method every health-checked gRPC server exposes (case-sensitive ``:path``).
HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check"

#: A health response is two or three bytes; bound what we buffer from a peer.
MAX_MESSAGE = 64 * 1024

#: The canonical status codes (https://github.com/grpc/grpc/blob/master/doc/statuscodes.md).
GRPC_STATUS_NAMES: dict[int, str] = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}

#: ``HealthCheckResponse.ServingStatus``.
SERVING_STATUS_NAMES: dict[int, str] = {
    0: "UNKNOWN",
    1: "SERVING",
    2: "NOT_SERVING",
    3: "SERVICE_UNKNOWN",
}

#: HTTP status -> gRPC status, for a response without ``grpc-status`` (only then).
_HTTP_TO_GRPC: dict[int, int] = {
    400: 13,  # INTERNAL
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 12,  # UNIMPLEMENTED
    429: 14,  # UNAVAILABLE
    431: 13,  # INTERNAL
    502: 14,
    503: 14,
    504: 14,
}

#: RST_STREAM error code (RFC 9113 §7) -> gRPC status. STREAM_CLOSED (5) has no mapping.
_RST_TO_GRPC: dict[int, int] = {
    0x0: 13,  # NO_ERROR: an OK status should have come first
    0x1: 13,  # PROTOCOL_ERROR
    0x2: 13,  # INTERNAL_ERROR
    0x3: 13,  # FLOW_CONTROL_ERROR
    0x4: 13,  # SETTINGS_TIMEOUT
    0x6: 13,  # FRAME_SIZE_ERROR
    0x7: 14,  # REFUSED_STREAM: nothing processed, retry elsewhere
    0x8: 1,  # CANCEL (sent by a server)
    0x9: 13,  # COMPRESSION_ERROR
    0xA: 13,  # CONNECT_ERROR
    0xB: 8,  # ENHANCE_YOUR_CALM: RESOURCE_EXHAUSTED
    0xC: 7,  # INADEQUATE_SECURITY: PERMISSION_DENIED
}

_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5
_STATUS_RE = re.compile(rb"(?:0|[1-9][0-9]{0,9})")
_PERCENT_RE = re.compile(rb"%([0-9A-Fa-f]{2})")
_TIMEOUT_UNITS = (("m", 1e3), ("S", 1.0), ("M", 1 / 60), ("H", 1 / 3600))


class GrpcProtocolError(ProtocolMismatch):
    """The bytes break the gRPC wire format (framing, protobuf, status); the one error here."""


@dataclass(frozen=True)
class GrpcMessage:
    """One Length-Prefixed-Message: whether it is compressed, and its bytes."""

    compressed: bool
    payload: bytes


def frame_message(message: bytes, *, compressed: bool = False) -> bytes:
    """Prefix ``message`` with the compressed flag and its 4-byte big-endian length."""
    return bytes([1 if compressed else 0]) + len(message).to_bytes(4, "big") + message


def parse_message(
    data: bytes, *, max_length: int = MAX_MESSAGE
) -> tuple[GrpcMessage, bytes] | None:
    """Parse one Length-Prefixed-Message from the start of ``data``.

    Returns the message and the bytes after it, or ``None`` when more bytes are needed.

    Raises:
        GrpcProtocolError: a compressed flag other than 0 or 1, or a length over
            ``max_length`` (a client limits what it buffers; 4 MiB is grpcio's default).
    """
    if not data:
        return None
    flag = data[0]
    if flag not in (0, 1):
        raise GrpcProtocolError(f"gRPC message flag {flag} is neither 0 nor 1", data)
    if len(data) < 5:
        return None
    length = int.from_bytes(data[1:5], "big")
    if length > max_length:
        raise GrpcProtocolError(
            f"gRPC message of {length} bytes is over the {max_length}-byte limit", data
        )
    if len(data) < 5 + length:
        return None
    return GrpcMessage(compressed=flag == 1, payload=data[5 : 5 + length]), data[5 + length :]


def encode_health_request(service: str = "") -> bytes:
    """``HealthCheckRequest {service}``: empty for the server's overall health (proto3)."""
    if not service:
        return b""
    raw = service.encode("utf-8")
    return bytes([1 << 3 | _WIRE_LEN]) + _varint(len(raw)) + raw


def decode_health_request(payload: bytes) -> str:
    """The ``service`` of a ``HealthCheckRequest`` (the last field 1 wins, as protobuf does).

    Raises:
        GrpcProtocolError: not a valid message, or field 1 is not a UTF-8 string.
    """
    service = ""
    for number, wire, value in _fields(payload):
        if number == 1:
            if wire != _WIRE_LEN or not isinstance(value, bytes):
                raise GrpcProtocolError("HealthCheckRequest.service is not a string", payload)
            try:
                service = value.decode("utf-8")
            except UnicodeDecodeError:
                raise GrpcProtocolError(
                    "HealthCheckRequest.service is not UTF-8", payload
                ) from None
    return service


def decode_health_response(payload: bytes) -> int:
    """The ``status`` number of a ``HealthCheckResponse``; 0 (UNKNOWN) when absent.

    An enum outside ``SERVING_STATUS_NAMES`` is returned as is (proto3 keeps unknown values).

    Raises:
        GrpcProtocolError: not a valid message, or field 1 is not a varint.
    """
    status = 0
    for number, wire, value in _fields(payload):
        if number == 1:
            if wire != _WIRE_VARINT or not isinstance(value, int):
                raise GrpcProtocolError("HealthCheckResponse.status is not a varint", payload)
            # An enum is an int32: negative values come as 10-byte varints (two's complement).
            status = value & 0xFFFFFFFF
            if status >= 1 << 31:
                status -= 1 << 32
    return status


def parse_status(value: bytes | str) -> int:
    """The number in a ``grpc-status`` header (decimal, no leading zeros).

    Raises:
        GrpcProtocolError: not a decimal number.
    """
    raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
    raw = raw.strip(b" \t")
    if not _STATUS_RE.fullmatch(raw):
        shown = raw[:20].decode("latin-1")
        raise GrpcProtocolError(f"grpc-status {shown!r} is not a number", raw)
    return int(raw)


def status_name(code: int) -> str:
    """``NOT_FOUND`` for 5; a code outside the canonical table reads ``CODE_<n>``."""
    return GRPC_STATUS_NAMES.get(code, f"CODE_{code}")


def decode_grpc_message(value: bytes | str) -> str:
    """Percent-decode a ``grpc-message`` value to text. Never raises.

    Broken escapes are left as they are and invalid UTF-8 becomes U+FFFD, as the spec allows:
    "implementations MUST NOT error or throw away the message".
    """
    raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
    decoded = _PERCENT_RE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)
    return decoded.decode("utf-8", "replace")


def encode_grpc_message(text: str) -> str:
    """Percent-encode ``text`` as a ``grpc-message`` value (space and VCHAR except ``%`` stay)."""
    out = []
    for byte in text.encode("utf-8"):
        if 0x20 <= byte <= 0x7E and byte != 0x25:
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def grpc_timeout(seconds: float) -> str:
    """A ``grpc-timeout`` value for ``seconds``: at most 8 digits, the finest unit that fits.

    Rounded up, so that the server never gives up before the client does.
    """
    seconds = max(0.0, seconds)
    for unit, per_second in _TIMEOUT_UNITS:
        amount = -(-seconds * per_second // 1)  # ceil
        if amount <= 99_999_999:
            return f"{max(1, int(amount))}{unit}"
    return "99999999H"


def is_grpc_content_type(value: str | None) -> bool:
    """``application/grpc`` with an optional ``+proto`` / ``;...`` suffix (case-insensitive)."""
    if not value:
        return False
    value = value.strip().lower()
    return value == "application/grpc" or value.startswith(
        ("application/grpc+", "application/grpc;")
    )


def status_from_http(http_status: int) -> int:
    """The status a client synthesises for an HTTP status without ``grpc-status``."""
    return _HTTP_TO_GRPC.get(http_status, 2)  # UNKNOWN


def status_from_rst_stream(error_code: int) -> int | None:
    """The status an RST_STREAM with this HTTP/2 error code means; ``None`` for none."""
    return _RST_TO_GRPC.get(error_code, 13 if error_code != 0x5 else None)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """A varint at ``pos``: its value and the next position (at most 10 bytes, 64 bits)."""
    value = 0
    for i in range(10):
        if pos + i >= len(data):
            raise GrpcProtocolError("protobuf varint cut short", data)
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos + i + 1
    raise GrpcProtocolError("protobuf varint longer than 10 bytes", data)


def _fields(payload: bytes) -> list[tuple[int, int, int | bytes]]:
    """Every field of a protobuf message: (number, wire type, value), unknown ones included.

    A complete message is required (gRPC hands whole messages over): anything cut short,
    a field number 0 or a group (wire types 3 and 4, deprecated) is an error.
    """
    fields: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(payload):
        key, pos = _read_varint(payload, pos)
        number, wire = key >> 3, key & 0x7
        if number == 0 or number >= 1 << 29:
            raise GrpcProtocolError(f"protobuf field number {number} is invalid", payload)
        value: int | bytes
        if wire == _WIRE_VARINT:
            value, pos = _read_varint(payload, pos)
        elif wire == _WIRE_LEN:
            length, pos = _read_varint(payload, pos)
            if length > len(payload) - pos:
                raise GrpcProtocolError("protobuf length-delimited field cut short", payload)
            value, pos = payload[pos : pos + length], pos + length
        elif wire in (_WIRE_I64, _WIRE_I32):
            size = 8 if wire == _WIRE_I64 else 4
            if size > len(payload) - pos:
                raise GrpcProtocolError("protobuf fixed-size field cut short", payload)
            value, pos = int.from_bytes(payload[pos : pos + size], "little"), pos + size
        else:
            raise GrpcProtocolError(f"protobuf wire type {wire} is not supported", payload)
        fields.append((number, wire, value))
    return fields
