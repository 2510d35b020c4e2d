"""The socket error queue of a TCP socket, sans-IO: what ``recvmsg(MSG_ERRQUEUE)`` says.

With ``IP_RECVERR`` (IPv6: ``IPV6_RECVERR``) set, Linux queues the ICMP errors that answer a
socket's packets on the socket itself (ip(7), ipv6(7)); since Linux 5.8 this includes a TCP
socket in SYN_SENT (``tcp_v4_err()`` / ``tcp_v6_err()`` call ``ip_icmp_error()`` before
aborting the connect). Each entry is a ``struct sock_extended_err`` (linux/errqueue.h) as
ancillary data, followed by the sockaddr of the *offender* (``SO_EE_OFFENDER``): the router
or host that sent the ICMP error. That is the only place a client learns that the
``EHOSTUNREACH`` of its connect was an ICMP 3/13 "administratively prohibited" sent by hop 1,
or that the ``EACCES`` of an IPv6 connect was an ICMPv6 1/1 from a firewall, not this host's
own OUTPUT chain.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .icmp import IP_RECVERR, IPV6_RECVERR, meaning, offender

__all__ = [
    "SO_EE_ORIGIN_ICMP",
    "SO_EE_ORIGIN_ICMP6",
    "SO_EE_ORIGIN_LOCAL",
    "SockError",
    "parse_sock_errors",
]

#: linux/errqueue.h ``ee_origin``: this host's own stack, an ICMPv4 error, an ICMPv6 error.
SO_EE_ORIGIN_LOCAL = 1
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3

_SOCK_EXTENDED_ERR = struct.Struct("=IBBBxII")  # ee_errno origin type code pad info data


@dataclass(frozen=True)
class SockError:
    """One ``struct sock_extended_err``: the errno the kernel gave, where the error came from,
    the ICMP type and code, ``ee_info`` (the next-hop MTU of a "fragmentation needed" / "packet
    too big") and the offender's address."""

    ee_errno: int
    origin: int
    icmp_type: int
    icmp_code: int
    info: int
    offender: str | None

    @property
    def from_network(self) -> bool:
        """An ICMP error some host on the path sent (not this host's own stack)."""
        return self.origin in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6)

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if self.origin == SO_EE_ORIGIN_ICMP6 else socket.AF_INET

    @property
    def time_exceeded(self) -> bool:
        """ICMP time exceeded (v4 11, v6 3): a router on the way saw the TTL run out."""
        return self.from_network and self.icmp_type == (
            3 if self.origin == SO_EE_ORIGIN_ICMP6 else 11
        )

    @property
    def admin_prohibited(self) -> bool:
        """A firewall's reject: ICMPv4 3/9, 3/10, 3/13 or ICMPv6 1/1."""
        if self.origin == SO_EE_ORIGIN_ICMP:
            return self.icmp_type == 3 and self.icmp_code in (9, 10, 13)
        if self.origin == SO_EE_ORIGIN_ICMP6:
            return self.icmp_type == 1 and self.icmp_code == 1
        return False

    def meaning(self) -> str:
        """What the error says, in words."""
        if not self.from_network:
            return f"{os.strerror(self.ee_errno)} (this host's own stack)"
        return meaning(self.family, self.icmp_type, self.icmp_code)


def parse_sock_errors(ancdata: Iterable[tuple[int, int, bytes]]) -> list[SockError]:
    """The ``sock_extended_err`` entries in the ancillary data of one
    ``recvmsg(MSG_ERRQUEUE)``; anything else (or a truncated entry) is skipped."""
    out: list[SockError] = []
    for level, ctype, cdata in ancdata:
        if (level, ctype) not in (
            (socket.IPPROTO_IP, IP_RECVERR),
            (socket.IPPROTO_IPV6, IPV6_RECVERR),
        ):
            continue
        if len(cdata) < _SOCK_EXTENDED_ERR.size:
            continue
        ee_errno, origin, ee_type, ee_code, info, _data = _SOCK_EXTENDED_ERR.unpack_from(cdata)
        out.append(
            SockError(
                ee_errno, origin, ee_type, ee_code, info, offender(cdata[_SOCK_EXTENDED_ERR.size :])
            )
        )
    return out
