"""The ICMP codec (netprobe/protocols/icmp.py), sans-IO: bytes in, events out, no socket."""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netprobe.protocols import icmp

V4, V6 = socket.AF_INET, socket.AF_INET6


def _ipv4_header(src: str, dst: str, proto: int = socket.IPPROTO_ICMP) -> bytes:
    return (
        struct.pack("!BBHHHBBH", 0x45, 0, 48, 0, 0, 64, proto, 0)
        + socket.inet_aton(src)
        + socket.inet_aton(dst)
    )


def _ipv6_header(src: str, dst: str, next_header: int = socket.IPPROTO_ICMPV6) -> bytes:
    return (
        struct.pack("!IHBB", 6 << 28, 16, next_header, 64)
        + socket.inet_pton(V6, src)
        + socket.inet_pton(V6, dst)
    )


def test_checksum_of_rfc1071_example() -> None:
    # RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum (one's complement) to ddf2.
    assert icmp.checksum(bytes.fromhex("0001f203f4f5f6f7")) == ~0xDDF2 & 0xFFFF


@given(st.binary(min_size=0, max_size=64))
def test_a_packet_with_its_checksum_sums_to_zero(payload: bytes) -> None:
    data = payload + (b"\0" if len(payload) % 2 else b"")
    whole = data + struct.pack("!H", icmp.checksum(data))
    assert icmp.checksum(whole) == 0


def test_echo_request_layout() -> None:
    raw = icmp.echo_request(V4, ident=0x1234, seq=7, sent_at=1.5, raw=True)
    kind, code, _csum, ident, seq = struct.unpack("!BBHHH", raw[:8])
    assert (kind, code, ident, seq) == (8, 0, 0x1234, 7)
    assert raw[8:].startswith(icmp.ECHO_MAGIC)
    assert icmp.checksum(raw) == 0  # a raw ICMPv4 socket sends our checksum as is
    dgram = icmp.echo_request(V6, ident=1, seq=2, sent_at=0.0, raw=False)
    assert dgram[0] == 128 and dgram[2:4] == b"\0\0"  # the kernel fills it in


@pytest.mark.parametrize("family", [V4, V6])
def test_reply_on_a_datagram_socket(family: socket.AddressFamily) -> None:
    reply = bytes([0 if family == V4 else 129]) + b"\0\0\0" + struct.pack("!HH", 9, 3)
    assert icmp.parse_received(reply + icmp.ECHO_MAGIC, family, raw=False) == icmp.EchoReply(
        9, 3, ours=True
    )


def test_reply_on_a_raw_ipv4_socket_comes_with_the_ip_header() -> None:
    reply = struct.pack("!BBHHH", 0, 0, 0, 77, 5) + icmp.ECHO_MAGIC
    packet = _ipv4_header("10.0.0.5", "10.0.0.1") + reply
    assert icmp.parse_received(packet, V4, raw=True) == icmp.EchoReply(77, 5, ours=True)
    other = _ipv4_header("10.0.0.5", "10.0.0.1") + reply[:8] + b"someone else's ping"
    parsed = icmp.parse_received(other, V4, raw=True)
    assert isinstance(parsed, icmp.EchoReply) and not parsed.ours


def test_an_ipv4_error_quoting_our_echo_names_its_destination() -> None:
    ours = icmp.echo_request(V4, ident=42, seq=11, sent_at=0.0, raw=True)
    quoted = _ipv4_header("10.0.0.1", "198.18.0.9") + ours[:8]
    error = struct.pack("!BBHI", 3, 13, 0, 0) + quoted  # communication prohibited
    packet = _ipv4_header("198.18.0.1", "10.0.0.1") + error
    parsed = icmp.parse_received(packet, V4, raw=True)
    assert parsed == icmp.QuotedError("198.18.0.9", 42, 11, 3, 13)
    assert "firewall" in icmp.meaning(V4, parsed.icmp_type, parsed.code)


def test_an_ipv6_error_quoting_our_echo() -> None:
    ours = icmp.echo_request(V6, ident=5, seq=6, sent_at=0.0, raw=True)
    error = struct.pack("!BBHI", 1, 3, 0, 0) + _ipv6_header("fd00::1", "fd00::9") + ours[:8]
    assert icmp.parse_received(error, V6, raw=True) == icmp.QuotedError("fd00::9", 5, 6, 1, 3)


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"\x45" + b"\0" * 10,  # a truncated IP header
        _ipv4_header("10.0.0.5", "10.0.0.1") + b"\x08\0",  # a truncated ICMP header
        # an error about a UDP datagram, not about our echo
        _ipv4_header("10.0.0.5", "10.0.0.1")
        + struct.pack("!BBHI", 3, 3, 0, 0)
        + _ipv4_header("10.0.0.1", "10.0.0.5", socket.IPPROTO_UDP)
        + b"\0" * 8,
        _ipv4_header("10.0.0.5", "10.0.0.1") + struct.pack("!BBHHH", 8, 0, 0, 1, 1),  # a request
    ],
)
def test_anything_else_is_none(packet: bytes) -> None:
    assert icmp.parse_received(packet, V4, raw=True) is None


def _sock_extended_err(
    ee_errno: int, origin: int, kind: int, code: int, offender: bytes = b""
) -> bytes:
    return struct.pack("=IBBBBII", ee_errno, origin, kind, code, 0, 0, 0) + offender


def test_error_queue_entry_with_its_offender() -> None:
    offender = struct.pack("=HH", V4, 0) + socket.inet_aton("198.18.0.1") + b"\0" * 8
    ancdata = [(socket.IPPROTO_IP, icmp.IP_RECVERR, _sock_extended_err(113, 2, 3, 1, offender))]
    echo = icmp.echo_request(V4, ident=0, seq=21, sent_at=0.0, raw=False)
    (entry,) = icmp.parse_error_queue(echo, ancdata)
    assert (entry.seq, entry.icmp_type, entry.code, entry.offender) == (21, 3, 1, "198.18.0.1")
    assert not entry.local and entry.meaning(V4) == "host unreachable"


def test_local_error_queue_entry_and_ipv6_offender() -> None:
    offender = struct.pack("=HHI", V6, 0, 0) + socket.inet_pton(V6, "fd00::1") + b"\0" * 4
    ancdata = [
        (socket.IPPROTO_IPV6, icmp.IPV6_RECVERR, _sock_extended_err(101, 1, 0, 0, offender)),
        (socket.SOL_SOCKET, 1, b"ignored: not an extended error"),
    ]
    echo = icmp.echo_request(V6, ident=0, seq=2, sent_at=0.0, raw=False)
    (entry,) = icmp.parse_error_queue(echo, ancdata)
    assert entry.local and entry.offender == "fd00::1"
    assert entry.meaning(V6).endswith("(local)")


def test_offender_of_an_unknown_family_is_none() -> None:
    assert icmp.offender(b"") is None
    assert icmp.offender(struct.pack("=H", 99) + b"\0" * 30) is None
