"""ICMP echo, sans-IO: build echo requests, read what comes back (replies, ICMP errors quoting
our request, and the kernel's error queue), and say what an ICMP error means.

Pure functions of bytes, tested without sockets. The engines in ``probes/icmp_engines.py``
do the I/O.

* Echo request / reply: RFC 792 (ICMPv4 type 8 / 0) and RFC 4443 (ICMPv6 128 / 129).
* An ICMP error quotes the IP header and at least the first 8 bytes of the datagram that
  caused it (RFC 792; RFC 4443 §2.4 as much as fits): for our echo request, its identifier
  and sequence number, so the error can be matched to the echo.
* An unprivileged ICMP datagram socket with ``IP_RECVERR`` / ``IPV6_RECVERR`` set receives
  errors on its error queue instead (``recvmsg(MSG_ERRQUEUE)``, ip(7)): the quoted echo
  comes as the data, and a ``struct sock_extended_err`` as ancillary data, followed by the
  address of the offender (``SO_EE_OFFENDER``): who sent the error.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "ECHO_MAGIC",
    "IPV6_RECVERR",
    "IP_RECVERR",
    "SO_EE_ORIGIN_LOCAL",
    "EchoReply",
    "ErrorQueueEntry",
    "QuotedError",
    "checksum",
    "echo_request",
    "meaning",
    "offender",
    "parse_error_queue",
    "parse_received",
]

#: ip(7) / ipv6(7): queue ICMP errors on the socket's error queue.
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
#: linux/errqueue.h: the error was raised by this host's own stack (no packet left).
SO_EE_ORIGIN_LOCAL = 1

#: Start of our echo payload: on a raw socket (which sees every ICMP packet of the host) it
#: tells our replies from anyone else's.
ECHO_MAGIC = b"netprobe"

_ECHO_REQUEST = {socket.AF_INET: 8, socket.AF_INET6: 128}
_ECHO_REPLY = {socket.AF_INET: 0, socket.AF_INET6: 129}
#: ICMP error types that quote the datagram: destination unreachable and time exceeded.
_QUOTING_ERRORS = {socket.AF_INET: (3, 11), socket.AF_INET6: (1, 3)}

# RFC 792 (type 3 codes) and RFC 1812 / RFC 4443.
_V4_UNREACH = {
    0: "network unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    6: "destination network unknown",
    7: "destination host unknown",
    9: "network administratively prohibited",
    10: "host administratively prohibited",
    13: "communication administratively prohibited (a firewall rejected it)",
}
_V6_UNREACH = {
    0: "no route to destination",
    1: "communication administratively prohibited (a firewall rejected it)",
    2: "beyond scope of source address",
    3: "address unreachable",
    4: "port unreachable",
    5: "source address failed ingress/egress policy",
    6: "reject route to destination",
}


def meaning(family: socket.AddressFamily, icmp_type: int, code: int) -> str:
    """What an ICMP error of ``icmp_type``/``code`` says, in words."""
    if family == socket.AF_INET:
        if icmp_type == 3:
            return _V4_UNREACH.get(code, f"destination unreachable (code {code})")
        if icmp_type == 11:
            return "time exceeded (TTL expired in transit: a routing loop?)"
    else:
        if icmp_type == 1:
            return _V6_UNREACH.get(code, f"destination unreachable (code {code})")
        if icmp_type == 3:
            return "time exceeded (hop limit expired in transit: a routing loop?)"
    return f"ICMP type {icmp_type} code {code}"


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): one's complement of the one's complement sum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(
    family: socket.AddressFamily, ident: int, seq: int, sent_at: float, *, raw: bool
) -> bytes:
    """An echo request. Datagram sockets and raw ICMPv6 sockets get their checksum from the
    kernel (and a datagram socket its identifier too); a raw ICMPv4 socket needs ours."""
    icmp_type = _ECHO_REQUEST[family]
    payload = ECHO_MAGIC + struct.pack("!d", sent_at)
    header = struct.pack("!BBHHH", icmp_type, 0, 0, ident, seq)
    if raw and family == socket.AF_INET:
        header = struct.pack("!BBHHH", icmp_type, 0, checksum(header + payload), ident, seq)
    return header + payload


class EchoReply(NamedTuple):
    """An echo reply: its identifier, sequence number and whether it carries our payload."""

    ident: int
    seq: int
    ours: bool


class QuotedError(NamedTuple):
    """An ICMP error quoting one of our echo requests (raw sockets)."""

    destination: str
    ident: int
    seq: int
    icmp_type: int
    code: int


def parse_received(
    data: bytes, family: socket.AddressFamily, *, raw: bool
) -> EchoReply | QuotedError | None:
    """What one datagram read from an ICMP socket is; None for anything else (another
    host's traffic on a raw socket, a truncated packet, an error about something else).

    A raw ICMPv4 socket delivers the IP header too; a datagram socket and a raw ICMPv6
    socket deliver the ICMP message only.
    """
    v4 = family == socket.AF_INET
    if raw and v4:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < 8:
        return None
    icmp_type, code, _csum, ident, seq = struct.unpack("!BBHHH", data[:8])
    if icmp_type == _ECHO_REPLY[family]:
        return EchoReply(ident, seq, data[8:].startswith(ECHO_MAGIC))
    if not raw or icmp_type not in _QUOTING_ERRORS[family]:
        return None
    # An ICMP error quoting the datagram that caused it: is it our echo request?
    quoted = data[8:]
    if v4:
        if len(quoted) < 20:
            return None
        dest = socket.inet_ntop(socket.AF_INET, quoted[16:20])
        inner = quoted[(quoted[0] & 0x0F) * 4 :]
        quoted_proto = quoted[9]
    else:
        if len(quoted) < 40:
            return None
        dest = socket.inet_ntop(socket.AF_INET6, quoted[24:40])
        inner = quoted[40:]
        quoted_proto = quoted[6]
    if quoted_proto != (socket.IPPROTO_ICMP if v4 else socket.IPPROTO_ICMPV6):
        return None
    if len(inner) < 8 or inner[0] != _ECHO_REQUEST[family]:
        return None
    _t, _c, _s, q_ident, q_seq = struct.unpack("!BBHHH", inner[:8])
    return QuotedError(dest, q_ident, q_seq, icmp_type, code)


@dataclass(frozen=True)
class ErrorQueueEntry:
    """One ``struct sock_extended_err`` from the error queue, about one of our echoes."""

    seq: int
    origin: int
    ee_errno: int
    icmp_type: int
    code: int
    offender: str | None

    @property
    def local(self) -> bool:
        """Raised by this host's own stack: no packet left (a route, a local firewall)."""
        return self.origin == SO_EE_ORIGIN_LOCAL

    def meaning(self, family: socket.AddressFamily) -> str:
        """What the error says, in words."""
        if self.local:
            return f"{os.strerror(self.ee_errno)} (local)"
        return meaning(family, self.icmp_type, self.code)


def parse_error_queue(
    data: bytes, ancdata: Iterable[tuple[int, int, bytes]]
) -> list[ErrorQueueEntry]:
    """The errors of one ``recvmsg(MSG_ERRQUEUE)`` on an ICMP datagram socket: ``data`` is
    the echo request the error is about (its sequence number at bytes 6-7)."""
    if len(data) < 8:
        return []
    seq = struct.unpack("!H", data[6:8])[0]
    out: list[ErrorQueueEntry] = []
    for level, ctype, cdata in ancdata:
        if (level, ctype) not in (
            (socket.IPPROTO_IP, IP_RECVERR),
            (socket.IPPROTO_IPV6, IPV6_RECVERR),
        ):
            continue
        if len(cdata) < 16:
            continue
        # struct sock_extended_err: ee_errno, ee_origin, ee_type, ee_code, pad, info, data;
        # the offender's sockaddr follows (SO_EE_OFFENDER).
        ee_errno, origin, ee_type, ee_code = struct.unpack("=IBBB", cdata[:7])
        out.append(ErrorQueueEntry(seq, origin, ee_errno, ee_type, ee_code, offender(cdata[16:])))
    return out


def offender(raw: bytes) -> str | None:
    """The address in the ``sockaddr`` after a ``sock_extended_err`` (SO_EE_OFFENDER): the
    router or host that sent the ICMP error."""
    if len(raw) >= 8 and struct.unpack("=H", raw[:2])[0] == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if len(raw) >= 24 and struct.unpack("=H", raw[:2])[0] == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return None
