"""``struct tcp_info`` (linux/tcp.h), sans-IO: the kernel's own account of one connection.

``getsockopt(IPPROTO_TCP, TCP_INFO)`` returns as many bytes of the struct as the kernel
has (it grew over the years; a shorter answer is an older kernel). The fields read here:

* ``tcpi_snd_mss`` / ``tcpi_rcv_mss`` (offsets 16, 20), ``tcpi_pmtu`` (60),
  ``tcpi_advmss`` (84): the segment sizes and the path MTU the connection uses;
* ``tcpi_retransmits`` (2): retransmissions of the current RTO episode;
* ``tcpi_total_retrans`` (100): every segment retransmitted on this connection, the SYN
  included, so read right after connect() it says whether the SYN (or its SYN+ACK) was
  lost;
* ``tcpi_total_rto`` (u16 at 240, Linux 6.7+): how many retransmission timeouts fired.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["TOTAL_RETRANS_END", "TcpInfo", "parse_tcp_info", "total_retrans"]

_U32 = struct.Struct("=I")
_U16 = struct.Struct("=H")
_SND_MSS, _RCV_MSS, _PMTU, _ADVMSS, _TOTAL_RETRANS, _TOTAL_RTO = 16, 20, 60, 84, 100, 240


#: Bytes of ``struct tcp_info`` up to and including ``tcpi_total_retrans`` (the connect's
#: hot path reads no more).
TOTAL_RETRANS_END = _TOTAL_RETRANS + 4


def total_retrans(raw: bytes) -> int | None:
    """``tcpi_total_retrans`` alone (None when the struct is shorter)."""
    return _u32(raw, _TOTAL_RETRANS)


@dataclass(frozen=True)
class TcpInfo:
    """The fields of ``struct tcp_info`` netprobe reads; None where the kernel's struct is
    too short to have them."""

    state: int
    retransmits: int
    snd_mss: int
    rcv_mss: int
    pmtu: int | None
    advmss: int | None
    total_retrans: int | None
    total_rto: int | None


def _u32(raw: bytes, offset: int) -> int | None:
    return _U32.unpack_from(raw, offset)[0] if len(raw) >= offset + 4 else None


def parse_tcp_info(raw: bytes) -> TcpInfo | None:
    """The ``struct tcp_info`` in ``raw`` (None when shorter than its first fields)."""
    if len(raw) < _RCV_MSS + 4:
        return None
    snd_mss = _u32(raw, _SND_MSS) or 0
    rcv_mss = _u32(raw, _RCV_MSS) or 0
    total_rto = _U16.unpack_from(raw, _TOTAL_RTO)[0] if len(raw) >= _TOTAL_RTO + 2 else None
    return TcpInfo(
        state=raw[0],
        retransmits=raw[2],
        snd_mss=snd_mss,
        rcv_mss=rcv_mss,
        pmtu=_u32(raw, _PMTU),
        advmss=_u32(raw, _ADVMSS),
        total_retrans=_u32(raw, _TOTAL_RETRANS),
        total_rto=total_rto,
    )
