"""The TCP socket's error queue: the pure parser (table-driven), then a real connect on
loopback whose ICMP error only the queue explains."""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from netprobe.protocols import errqueue
from netprobe.protocols.icmp import IP_RECVERR, IPV6_RECVERR

V4, V6 = socket.AF_INET, socket.AF_INET6


def _ee(ee_errno: int, origin: int, kind: int, code: int, info: int = 0) -> bytes:
    return struct.pack("=IBBBBII", ee_errno, origin, kind, code, 0, info, 0)


def _sin(addr: str) -> bytes:
    return struct.pack("=HH", V4, 0) + socket.inet_aton(addr) + b"\0" * 8


def _sin6(addr: str) -> bytes:
    return struct.pack("=HHI", V6, 0, 0) + socket.inet_pton(V6, addr) + b"\0" * 4


@pytest.mark.parametrize(
    ("level", "ctype", "cdata", "expected"),
    [
        # ICMP 3/13 from hop 1: EHOSTUNREACH, a firewall's reject.
        (
            socket.IPPROTO_IP,
            IP_RECVERR,
            _ee(errno.EHOSTUNREACH, 2, 3, 13) + _sin("198.18.64.1"),
            ("198.18.64.1", True, False, "communication administratively prohibited"),
        ),
        # ICMPv6 1/1: EACCES, the errno of a local firewall, yet sent by a router.
        (
            socket.IPPROTO_IPV6,
            IPV6_RECVERR,
            _ee(errno.EACCES, 3, 1, 1) + _sin6("2001:2:0:64::1"),
            ("2001:2:0:64::1", True, False, "communication administratively prohibited"),
        ),
        # ICMP 11/0 from hop 2: a TTL-limited probe's answer.
        (
            socket.IPPROTO_IP,
            IP_RECVERR,
            _ee(errno.EHOSTUNREACH, 2, 11, 0) + _sin("198.18.64.6"),
            ("198.18.64.6", False, True, "time exceeded"),
        ),
        # ICMPv6 3/0.
        (
            socket.IPPROTO_IPV6,
            IPV6_RECVERR,
            _ee(errno.EHOSTUNREACH, 3, 3, 0) + _sin6("fd00::2"),
            ("fd00::2", False, True, "time exceeded"),
        ),
        # ICMP 3/1 host unreachable: neither.
        (
            socket.IPPROTO_IP,
            IP_RECVERR,
            _ee(errno.EHOSTUNREACH, 2, 3, 1) + _sin("198.18.64.9"),
            ("198.18.64.9", False, False, "host unreachable"),
        ),
    ],
)
def test_parse_sock_errors(
    level: int, ctype: int, cdata: bytes, expected: tuple[str, bool, bool, str]
) -> None:
    (e,) = errqueue.parse_sock_errors([(level, ctype, cdata)])
    offender, prohibited, exceeded, words = expected
    assert e.from_network
    assert (e.offender, e.admin_prohibited, e.time_exceeded) == (offender, prohibited, exceeded)
    assert e.meaning().startswith(words)


def test_frag_needed_carries_the_mtu() -> None:
    (e,) = errqueue.parse_sock_errors(
        [(socket.IPPROTO_IP, IP_RECVERR, _ee(errno.EMSGSIZE, 2, 3, 4, 1280) + _sin("198.18.64.5"))]
    )
    assert (e.icmp_type, e.icmp_code, e.info) == (3, 4, 1280)


def test_local_error_and_garbage() -> None:
    ancdata = [
        (socket.IPPROTO_IP, IP_RECVERR, _ee(errno.EMSGSIZE, 1, 0, 0)),
        (socket.IPPROTO_IP, IP_RECVERR, b"short"),
        (socket.SOL_SOCKET, 1, b"not an extended error at all"),
    ]
    (e,) = errqueue.parse_sock_errors(ancdata)
    assert not e.from_network and not e.admin_prohibited and not e.time_exceeded
    assert e.offender is None
    assert e.meaning().endswith("(this host's own stack)")
