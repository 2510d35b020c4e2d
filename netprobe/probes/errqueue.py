"""A TCP socket's error queue: turn it on before connect(), read it when the connect failed.

The parsing is sans-IO (``protocols/errqueue.py``); this module owns the two syscalls.
"""

from __future__ import annotations

import contextlib
import socket

from ..protocols.errqueue import SO_EE_ORIGIN_ICMP6, SockError, parse_sock_errors
from ..protocols.icmp import IP_RECVERR, IPV6_RECVERR
from ..steps import IcmpError

__all__ = ["icmp_error_of", "read_sock_errors", "set_recverr"]

#: Entries read at most from one queue (each failed connect queues one; a trace probe one).
_MAX_ENTRIES = 8
_CMSG_SPACE = 512
_FRAG_NEEDED = {(3, 4), (2, 0)}  # ICMPv4 3/4 "fragmentation needed", ICMPv6 2/0 "too big"


def set_recverr(sock: socket.socket, family: socket.AddressFamily, on: bool = True) -> None:
    """Queue the ICMP errors about this socket's packets on its error queue (ip(7)).

    Turned off again once a connect is established: on an established TCP socket,
    ``IP_RECVERR`` makes an ICMP unreachable a hard error at once (``tcp_v4_err()``), which
    would change what the TLS and application rungs observe.
    """
    with contextlib.suppress(OSError):
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, int(on))
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, int(on))


def read_sock_errors(sock: socket.socket) -> list[SockError]:
    """Everything on the socket's error queue now (non-blocking; bounded)."""
    out: list[SockError] = []
    for _ in range(_MAX_ENTRIES):
        try:
            _data, ancdata, _flags, _addr = sock.recvmsg(
                64, _CMSG_SPACE, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT
            )
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            break
        out.extend(parse_sock_errors(ancdata))
    return out


def icmp_error_of(errors: list[SockError]) -> IcmpError | None:
    """The step data of the last error from the network (else the last local one)."""
    if not errors:
        return None
    picked = next((e for e in reversed(errors) if e.from_network), errors[-1])
    origin = (
        ("icmp6" if picked.origin == SO_EE_ORIGIN_ICMP6 else "icmp")
        if picked.from_network
        else "local"
    )
    mtu = (
        picked.info
        if picked.from_network and (picked.icmp_type, picked.icmp_code) in _FRAG_NEEDED
        else None
    )
    return IcmpError(
        origin=origin,
        icmp_type=picked.icmp_type,
        icmp_code=picked.icmp_code,
        offender=picked.offender,
        meaning=picked.meaning(),
        admin_prohibited=picked.admin_prohibited,
        mtu=mtu or None,
    )
