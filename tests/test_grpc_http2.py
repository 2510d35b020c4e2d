"""The health call as a sans-IO state machine (netprobe/protocols/grpc_http2.py): bytes in,
observations out, no socket. The server side is h2 too (its server role), so the bytes are
real HTTP/2; hypothesis then cuts, flips and splices them."""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netprobe.protocols import grpc as wire
from netprobe.protocols.grpc_http2 import HealthCall
from netprobe.steps import GrpcResult


def _call(service: str = "") -> HealthCall:
    return HealthCall(authority="svc:50051", service=service, tls=False, timeout_s=2.0)


def _server_bytes(
    call: HealthCall,
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    trailers: list[tuple[str, str]] | None = None,
    *,
    trailers_only: bool = False,
) -> tuple[bytes, dict[str, str]]:
    """What an h2 server sends back to ``call``'s request, and the request headers it saw."""
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.initiate_connection()
    seen: dict[str, str] = {}
    for event in server.receive_data(call.outgoing()):
        if isinstance(event, h2.events.RequestReceived):
            seen = {k.decode(): v.decode() for k, v in event.headers}
    ok = [(":status", "200"), ("content-type", "application/grpc")]
    server.send_headers(1, headers or ok, end_stream=trailers_only)
    if not trailers_only:
        if body is not None:
            server.send_data(1, body)
        server.send_headers(1, trailers or [("grpc-status", "0")], end_stream=True)
    return server.data_to_send(), seen


SERVING = wire.frame_message(b"\x08\x01")


def _result(call: HealthCall) -> GrpcResult:
    return GrpcResult.model_validate(call.observations())


def test_the_request_is_a_grpc_health_check() -> None:
    call = _call("shop.Orders")
    _, seen = _server_bytes(call, body=SERVING)
    assert seen[":method"] == "POST" and seen[":scheme"] == "http"
    assert seen[":path"] == "/grpc.health.v1.Health/Check"
    assert seen[":authority"] == "svc:50051"
    assert seen["content-type"] == "application/grpc" and seen["te"] == "trailers"
    assert seen["grpc-timeout"] == "2000m"
    assert seen["user-agent"].startswith("netprobe/")


@pytest.mark.parametrize("chunk", [1, 7, 9, 100, 1 << 20])
def test_serving_whatever_the_read_sizes(chunk: int) -> None:
    call = _call()
    data, _ = _server_bytes(call, body=SERVING)
    for i in range(0, len(data), chunk):
        call.receive(data[i : i + chunk])
    assert call.done
    res = _result(call)
    assert res.healthy and res.health_status_name == "SERVING" and res.grpc_status == 0
    assert res.http2 and res.http_version == "HTTP/2" and res.status_from == "trailers"


def test_trailers_only_not_found() -> None:
    call = _call("nope.Svc")
    data, _ = _server_bytes(
        call,
        headers=[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "5"),
            ("grpc-message", "unknown%20service"),
        ],
        trailers_only=True,
    )
    call.receive(data)
    res = _result(call)
    assert res.grpc_status_name == "NOT_FOUND" and res.grpc_message == "unknown service"
    assert res.trailers_only and res.status_from == "trailers_only"
    assert res.trailers == {"grpc-status": "5", "grpc-message": "unknown%20service"}


@pytest.mark.parametrize(
    ("first", "failure", "looks"),
    [
        (b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\nbad", "not_http2", "HTTP/1.1 400"),
        (b"\x15\x03\x01\x00\x02\x02\x46", "not_http2", "a TLS alert record"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not_http2", "an SSH banner"),
        (b"\x00\x00\x05\x04\x00\x00\x00\x00\x00", "not_http2", "unrecognised"),  # length 5
        (b"\x00\x00\x00\x01\x04\x00\x00\x00\x01", "not_http2", "unrecognised"),  # HEADERS first
    ],
)
def test_not_http2(first: bytes, failure: str, looks: str) -> None:
    call = _call()
    call.receive(first)
    assert call.done
    res = _result(call)
    assert res.failure == failure and res.peer_sent and looks in res.peer_sent


def test_http1_answer_keeps_status_server_and_body() -> None:
    call = _call()
    call.receive(
        b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n"
        b"<html>400 Bad Request</html>"
    )
    res = _result(call)
    assert (res.http_version, res.http_status) == ("HTTP/1.1", 400)
    assert res.headers == {"server": "nginx/1.22.1", "content-type": "text/html"}
    assert res.body_preview == "<html>400 Bad Request</html>"


def _mutations(data: bytes) -> st.SearchStrategy[bytes]:
    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        out = bytearray(data)
        for _ in range(draw(st.integers(0, 4))):
            op = draw(st.integers(0, 3))
            n = len(out)
            if op == 0 and n:
                del out[draw(st.integers(0, n - 1)) :]
            elif op == 1 and n:
                out[draw(st.integers(0, n - 1))] ^= 1 << draw(st.integers(0, 7))
            elif op == 2:
                i = draw(st.integers(0, n))
                out[i:i] = draw(st.binary(min_size=1, max_size=12))
            elif op == 3 and n:
                i = draw(st.integers(0, n - 1))
                out[i] = draw(st.sampled_from([0x00, 0x01, 0x03, 0x04, 0x07, 0x08, 0xFF]))
        return bytes(out)

    return mutate()


_SEED_CALL = _call()
_SEED, _ = _server_bytes(_SEED_CALL, body=SERVING)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(_mutations(_SEED), st.binary(max_size=300)),
    cuts=st.lists(st.integers(1, 64), max_size=8),
)
def test_any_bytes_give_observations_never_an_exception(data: bytes, cuts: list[int]) -> None:
    call = _call()
    call.outgoing()
    pos = 0
    for size in [*cuts, len(data)]:
        call.receive(data[pos : pos + size])
        pos += size
    res = _result(call)
    if res.healthy:
        assert res.grpc_status == 0 and res.health_status == 1
    if res.failure is not None and res.failure != "timeout":
        assert res.reason
    call.outgoing()
    call.goodbye()


def test_goodbye_is_a_goaway() -> None:
    call = _call()
    data, _ = _server_bytes(call, body=SERVING)
    call.receive(data)
    bye = call.goodbye()
    kinds = _frame_types(bye)
    assert kinds[-1] == 7


def _frame_types(data: bytes) -> list[int]:
    kinds: list[int] = []
    pos = 0
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos : pos + 3], "big")
        kinds.append(data[pos + 3])
        pos += 9 + length
    return kinds


def test_observations_are_plain_data() -> None:
    call = _call()
    call.receive(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    obs: dict[str, Any] = call.observations()
    assert obs["http2"] is True and obs["server_settings"] == {}
    assert not call.done
