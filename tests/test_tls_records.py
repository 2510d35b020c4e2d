"""The sans-IO pieces of the TLS deployment faults: the handshake reader (against the bytes
real servers sent, tests/fixtures/realservers/), the Date header, hosts-file names, version
ranges in words. No sockets, no event loop."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from netprobe.classify.tls import tls_range
from netprobe.probes.tls_followup import names_of
from netprobe.protocols.http_head import date_header
from netprobe.protocols.tls_records import (
    HandshakeView,
    handshake_messages,
    records,
    server_hello,
    view_handshake,
)

CAPTURES = Path(__file__).resolve().parent / "fixtures" / "realservers"


def capture(name: str) -> bytes:
    return (CAPTURES / name).read_bytes()


def record(kind: int, payload: bytes, version: int = 0x0303) -> bytes:
    return bytes([kind]) + version.to_bytes(2, "big") + len(payload).to_bytes(2, "big") + payload


def handshake(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


CLIENT_HELLO = record(22, handshake(1, b"\x03\x03" + b"\x00" * 40), 0x0301)


def tls13_client_flight(encrypted_records: int) -> bytes:
    """What a TLS 1.3 client sends: ClientHello, then (middlebox compatibility) a
    ChangeCipherSpec and its encrypted flight, one record per handshake message."""
    return CLIENT_HELLO + record(20, b"\x01") + record(23, b"x" * 25) * encrypted_records


def test_haproxy_tls12_certificate_request_is_seen_in_the_clear() -> None:
    """haproxy verify required, TLS 1.2: ServerHello, Certificate, ServerKeyExchange,
    CertificateRequest, ServerHelloDone, then the alert after our flight."""
    server = capture("haproxy/mtls_no_cert_tls12.bin")
    assert [kind for kind, _ in handshake_messages(server)] == [2, 11, 12, 13, 14]
    assert view_handshake(b"", server) == HandshakeView("TLSv1.2", True, None)
    empty_certificate = record(22, handshake(11, b"\x00\x00\x00"))
    sent = CLIENT_HELLO + empty_certificate + record(20, b"\x01")
    assert view_handshake(sent, server) == HandshakeView("TLSv1.2", True, False)
    one = record(22, handshake(11, b"\x00\x00\x05\x00\x00\x02ab"))
    assert view_handshake(CLIENT_HELLO + one, server) == HandshakeView("TLSv1.2", True, True)


def test_tls12_without_a_certificate_request() -> None:
    hello = handshake(2, b"\x03\x03" + b"r" * 32 + b"\x00" + b"\xc0\x2b" + b"\x00")
    server = record(22, hello + handshake(11, b"\x00\x00\x00") + handshake(14, b""))
    assert view_handshake(CLIENT_HELLO, server) == HandshakeView("TLSv1.2", False, None)


@pytest.mark.parametrize(
    ("encrypted", "requested", "sent"),
    [
        (0, None, None),  # the client's flight was never sent: not known
        (1, False, None),  # Finished alone
        (2, True, False),  # an empty Certificate, then Finished
        (3, True, True),  # Certificate, CertificateVerify, Finished
    ],
)
def test_tls13_request_is_read_from_the_clients_own_answer(
    encrypted: int, requested: bool | None, sent: bool | None
) -> None:
    server = capture("haproxy/mtls_no_cert_tls13.bin")
    assert server_hello(handshake_messages(server)[0][1]) is not None
    view = view_handshake(tls13_client_flight(encrypted), server)
    assert view == HandshakeView("TLSv1.3", requested, sent)


def test_an_alert_alone_shows_nothing() -> None:
    """nginx TLS 1.0-only to a TLS 1.2-1.3 client: one plaintext protocol_version alert."""
    server = capture("nginx/tls10_only_default_client.bin")
    assert [(r.type, r.payload) for r in records(server)] == [(21, b"\x02\x46")]
    assert view_handshake(CLIENT_HELLO, server) == HandshakeView()


def test_records_stop_at_what_is_not_a_record_or_cut() -> None:
    data = record(22, b"abc") + b"HTTP/1.1 400 Bad Request\r\n"
    assert [r.payload for r in records(data)] == [b"abc"]
    assert records(record(22, b"abcdef")[:-1]) == []
    assert handshake_messages(record(22, handshake(2, b"x" * 10)[:8])) == []
    assert server_hello(b"\x03\x03") is None


def test_date_header() -> None:
    head = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
    assert date_header(head) == datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
    assert date_header(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n") is None
    assert date_header(b"HTTP/1.1 200 OK\r\nDate: yesterday\r\n\r\n") is None
    assert date_header(b"SSH-2.0-OpenSSH\r\n") is None


def test_hosts_names() -> None:
    hosts = "127.0.0.1 localhost\n# 10.0.0.5 commented\n10.0.0.5 a.lab b.lab # comment\n"
    assert names_of(hosts, "10.0.0.5") == ["a.lab", "b.lab"]
    assert names_of(hosts, "10.0.0.6") == []


@pytest.mark.parametrize(
    ("versions", "words"),
    [
        (["TLSv1"], "only TLS 1.0"),
        (["TLSv1.2", "TLSv1.3"], "TLS 1.2-1.3"),
        (["TLSv1", "TLSv1.2"], "TLS 1.0, 1.2"),
        ([], "no TLS version"),
    ],
)
def test_version_ranges_in_words(versions: list[str], words: str) -> None:
    assert tls_range(versions) == words
