"""The sans-IO gRPC wire format (netprobe/protocols/grpc.py): tables and properties, no I/O.

The hand-made protobuf encoding is checked against the reference implementation
(``grpc_health.v1.health_pb2``, generated code on the protobuf runtime: a test dependency).
"""

from __future__ import annotations

import pytest
from grpc_health.v1 import health_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from netprobe.protocols import grpc as g
from netprobe.protocols.mismatch import ProtocolMismatch

# ---------------------------------------------------------------------------- framing


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", None),
        (b"\x00", None),
        (b"\x00\x00\x00\x00", None),
        (b"\x00\x00\x00\x00\x00", (g.GrpcMessage(False, b""), b"")),
        (b"\x00\x00\x00\x00\x02\x08\x01", (g.GrpcMessage(False, b"\x08\x01"), b"")),
        (b"\x00\x00\x00\x00\x02\x08", None),
        (b"\x01\x00\x00\x00\x01Zrest", (g.GrpcMessage(True, b"Z"), b"rest")),
        (
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            (g.GrpcMessage(False, b""), b"\x00\x00\x00\x00\x00"),
        ),
    ],
)
def test_parse_message(data: bytes, expected: tuple[g.GrpcMessage, bytes] | None) -> None:
    assert g.parse_message(data) == expected


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\x02\x00\x00\x00\x00", "flag 2"),
        (b"H", "flag 72"),  # an HTTP/1.1 answer where a message was expected
        (b"\x00\x7f\xff\xff\xff", "over the 65536-byte limit"),
        (b"\x00\x00\x01\x00\x01", "65537 bytes"),
    ],
)
def test_parse_message_rejects(data: bytes, fragment: str) -> None:
    with pytest.raises(g.GrpcProtocolError, match=fragment) as info:
        g.parse_message(data)
    assert isinstance(info.value, ProtocolMismatch) and isinstance(info.value, ValueError)
    assert info.value.looks_like


def test_frame_message_round_trips() -> None:
    framed = g.frame_message(b"\x08\x01")
    assert framed == b"\x00\x00\x00\x00\x02\x08\x01"
    assert g.parse_message(framed + b"more") == (g.GrpcMessage(False, b"\x08\x01"), b"more")
    assert g.frame_message(b"x", compressed=True)[0] == 1


# ---------------------------------------------------------------------------- health messages


@pytest.mark.parametrize("service", ["", "a", "grpc.health.v1.Health", "pkg.Svc", "x" * 300, "é"])
def test_health_request_matches_protobuf(service: str) -> None:
    reference = health_pb2.HealthCheckRequest(service=service).SerializeToString()
    assert g.encode_health_request(service) == reference
    assert g.decode_health_request(reference) == service


@pytest.mark.parametrize("status", [0, 1, 2, 3])
def test_health_response_matches_protobuf(status: int) -> None:
    wire = health_pb2.HealthCheckResponse(status=status).SerializeToString()
    assert g.decode_health_response(wire) == status
    assert g.SERVING_STATUS_NAMES[status] == health_pb2.HealthCheckResponse.ServingStatus.Name(
        status
    )


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"", 0),  # proto3: the default (UNKNOWN) is not sent
        (b"\x08\x01", 1),
        (b"\x08\x02", 2),
        (b"\x08\x03", 3),
        (b"\x08\x07", 7),  # an enum value this client does not know: kept
        (b"\x08\x01\x08\x02", 2),  # the last value wins
        (b"\x08\x81\x00", 1),  # a non-minimal varint is still 1
        (b"\x10\x05\x08\x01", 1),  # unknown varint field 2 skipped
        (b"\x1a\x03abc\x08\x02", 2),  # unknown length-delimited field 3 skipped
        (b"\x21" + bytes(8) + b"\x08\x01", 1),  # unknown fixed64 field 4 skipped
        (b"\x2d" + bytes(4) + b"\x08\x01", 1),  # unknown fixed32 field 5 skipped
        (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", -1),  # a negative int32 enum
    ],
)
def test_decode_health_response(payload: bytes, status: int) -> None:
    assert g.decode_health_response(payload) == status


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"\x08", "varint cut short"),
        (b"\x08\x80", "varint cut short"),
        (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
        (b"\x0a\x01\x01", "status is not a varint"),
        (b"\x00\x01", "field number 0"),
        (b"\x1a\x05ab", "length-delimited field cut short"),
        (b"\x21\x00", "fixed-size field cut short"),
        (b"\x0b", "wire type 3"),
        (b"\x0c", "wire type 4"),
        (b"\x0e", "wire type 6"),
        (b"<html>", "wire type"),
    ],
)
def test_decode_health_response_rejects(payload: bytes, fragment: str) -> None:
    with pytest.raises(g.GrpcProtocolError, match=fragment):
        g.decode_health_response(payload)


def test_decode_health_request_rejects_bad_service() -> None:
    with pytest.raises(g.GrpcProtocolError, match="not UTF-8"):
        g.decode_health_request(b"\x0a\x01\xff")
    with pytest.raises(g.GrpcProtocolError, match="not a string"):
        g.decode_health_request(b"\x08\x01")


# ---------------------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("value", "code"),
    [(b"0", 0), ("5", 5), (b"12", 12), (b" 14 ", 14), (b"16", 16), (b"99", 99)],
)
def test_parse_status(value: bytes | str, code: int) -> None:
    assert g.parse_status(value) == code


@pytest.mark.parametrize("value", [b"", b"-1", b"01", b"1a", b"OK", b"12345678901", "١"])
def test_parse_status_rejects(value: bytes | str) -> None:
    with pytest.raises(g.GrpcProtocolError, match="grpc-status"):
        g.parse_status(value)


def test_status_names_are_canonical() -> None:
    import grpc

    for code in grpc.StatusCode:
        number, name = code.value
        assert g.status_name(number) == name.upper().replace(" ", "_")
    assert g.status_name(17) == "CODE_17"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("", ""),
        ("plain text", "plain text"),
        ("100%25 sure", "100% sure"),
        ("caf%C3%A9", "café"),
        ("caf%c3%a9", "café"),
        ("%E2%9C%93 ok", "✓ ok"),
        ("50% off", "50% off"),  # a broken escape is left as it is
        ("%zz%", "%zz%"),
        ("%FF", "\ufffd"),  # not UTF-8: replaced, never an error
        (b"\xff raw", "\ufffd raw"),
    ],
)
def test_decode_grpc_message(value: str | bytes, text: str) -> None:
    assert g.decode_grpc_message(value) == text


@given(st.text(max_size=80))
def test_grpc_message_round_trips(text: str) -> None:
    encoded = g.encode_grpc_message(text)
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert g.decode_grpc_message(encoded) == text


@pytest.mark.parametrize(
    ("http", "code"),
    [
        *[(400, 13), (401, 16), (403, 7), (404, 12), (429, 14), (502, 14), (503, 14), (504, 14)],
        *[(200, 2), (500, 2), (301, 2)],
    ],
)
def test_status_from_http(http: int, code: int) -> None:
    assert g.status_from_http(http) == code


@pytest.mark.parametrize(
    ("error_code", "code"),
    [
        *[(0x0, 13), (0x1, 13), (0x2, 13), (0x5, None), (0x7, 14), (0x8, 1), (0xB, 8), (0xC, 7)],
        (0x99, 13),
    ],
)
def test_status_from_rst_stream(error_code: int, code: int | None) -> None:
    assert g.status_from_rst_stream(error_code) == code


@pytest.mark.parametrize(
    ("seconds", "value"),
    [
        *[(0.0, "1m"), (0.0001, "1m"), (0.5, "500m"), (3.0, "3000m"), (2.0001, "2001m")],
        *[(99_999.999, "99999999m"), (100_000.0, "100000S"), (1e9, "16666667M")],
    ],
)
def test_grpc_timeout(seconds: float, value: str) -> None:
    assert g.grpc_timeout(seconds) == value
    assert len(value) <= 9


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("application/grpc", True),
        ("application/grpc+proto", True),
        ("Application/GRPC; charset=utf-8", True),
        ("application/grpc-web", False),
        ("application/grpcx", False),
        ("text/html", False),
        (None, False),
        ("", False),
    ],
)
def test_is_grpc_content_type(value: str | None, ok: bool) -> None:
    assert g.is_grpc_content_type(value) is ok


# ---------------------------------------------------------------------------- properties


def _only_documented_error(fn: object, data: bytes) -> None:
    try:
        fn(data)  # type: ignore[operator]
    except g.GrpcProtocolError as exc:
        assert str(exc) and "\n" not in str(exc)
        assert exc.looks_like


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_the_documented_error(data: bytes) -> None:
    for fn in (
        g.parse_message,
        g.decode_health_response,
        g.decode_health_request,
        g.parse_status,
    ):
        _only_documented_error(fn, data)
    assert isinstance(g.decode_grpc_message(data), str)


@given(st.integers(0, 2**31 - 1), st.binary(max_size=40))
def test_health_response_round_trips_with_unknown_fields(status: int, junk: bytes) -> None:
    wire = health_pb2.HealthCheckResponse(status=status).SerializeToString()
    # A length-delimited field 15 carrying anything is skipped.
    extra = bytes([15 << 3 | 2, len(junk)]) + junk
    assert g.decode_health_response(extra + wire) == status


@given(st.binary(max_size=100), st.binary(max_size=20))
def test_framed_messages_parse_back(message: bytes, rest: bytes) -> None:
    parsed = g.parse_message(g.frame_message(message) + rest)
    assert parsed == (g.GrpcMessage(False, message), rest)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # grpcio's server preface (captured on loopback): SETTINGS, 24 bytes, stream 0.
        (
            bytes.fromhex("000018040000000000000400400000000500400000000600004000fe0300000001"),
            "an HTTP/2 SETTINGS frame (a cleartext HTTP/2 server: h2c, gRPC)",
        ),
        (b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", "an HTTP/2 SETTINGS frame"),
        (b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + bytes(8), "an HTTP/2 GOAWAY frame"),
        (b"\x00\x00\x05\x04\x00\x00\x00\x00\x00", "unrecognised bytes"),  # not 6n long
        (b"\x00\x00\x00\x04\x00\x00\x00\x00\x01", "unrecognised bytes"),  # stream 1
        (b"\x00\x00\x00\x04\x00\x00\x00", "unrecognised bytes"),  # cut short
    ],
)
def test_sniff_names_an_http2_server_preface(data: bytes, expected: str) -> None:
    from netprobe.protocols.sniff import describe_bytes

    assert describe_bytes(data).startswith(expected)
