"""A held connection's transport, checked on the wire: one TCP keepalive probe, forced now.

After a connection sat idle, a stateful firewall or NAT on the path may have expired its
session. Reading the socket shows nothing either way (no byte arrives), so a pool that only
looks at its sockets calls a dead connection healthy. The next segment is what tells: the
middlebox drops it (silence) or answers it with an RST.

A keepalive probe is that segment without a byte the application sees: a bare ACK with
``SEG.SEQ = SND.UNA - 1`` (RFC 1122 4.2.3.6), which the peer's TCP must answer with an ACK
(RFC 9293 3.10.7.4: an unacceptable segment gets an ACK), and which a middlebox must pass
like any other segment of the connection. So it proves the whole path for any protocol.

How it is forced and read on Linux, without privileges:

* ``SO_KEEPALIVE`` on, ``TCP_KEEPIDLE`` 1 s, ``TCP_KEEPINTVL`` 1 s: setting ``TCP_KEEPIDLE``
  re-arms the keepalive timer from the time the connection last received
  (``tcp_sock_set_keepidle_locked``), so a connection idle for more than 1 s sends its probe
  at once; a shorter-idle one sends it when it has idled 1 s.
* The peer's ACK refreshes the socket's last-ACK time (``tp->rcv_tstamp``, read as
  ``tcpi_last_ack_recv``) and clears the count of unanswered probes (``tcpi_probes``): the
  last-ACK age drops below what it would be without an answer.
* An RST ends the socket (``SO_ERROR`` ECONNRESET, state CLOSE); a peer's FIN leaves it in
  CLOSE_WAIT. Only socket options are used (asyncio hands out its transports' sockets for
  those, not for reads), so nothing is read from under the stream.
* No answer: another probe every second; the check gives up at its own deadline (the
  kernel's ``TCP_KEEPCNT`` is set past it, so the kernel does not end the connection first).

Keepalive is switched off again afterwards. Polling ``TCP_INFO`` every 10 ms is bounded by
the wait.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import time

import anyio

from ..steps import ErrorInfo, HoldCheck

__all__ = ["TcpInfoTimes", "check_keepalive", "parse_tcp_info"]

_TCP_CLOSE = 7
_TCP_CLOSE_WAIT = 8
#: struct tcp_info up to tcpi_last_ack_recv (include/uapi/linux/tcp.h): 8 u8, 13 u32.
_TCP_INFO = struct.Struct("=8B13I")
_POLL_S = 0.01
#: The last-ACK age is in jiffies turned into ms (4 ms at HZ=250): an answer counts when the
#: age fell more than this below what it would be without one.
_TICK_MS = 12.0


class TcpInfoTimes:
    """The fields of ``TCP_INFO`` this check reads."""

    __slots__ = ("last_ack_recv_ms", "probes", "state")

    def __init__(self, state: int, probes: int, last_ack_recv_ms: int) -> None:
        self.state = state
        self.probes = probes
        self.last_ack_recv_ms = last_ack_recv_ms


def parse_tcp_info(raw: bytes) -> TcpInfoTimes | None:
    """``tcpi_state``, ``tcpi_probes`` and ``tcpi_last_ack_recv`` of a TCP_INFO buffer."""
    if len(raw) < _TCP_INFO.size:
        return None
    fields = _TCP_INFO.unpack_from(raw)
    # 8 bytes: state, ca_state, retransmits, probes, backoff, options, wscale, flags; then
    # rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets, last_data_sent,
    # last_ack_sent, last_data_recv, last_ack_recv.
    return TcpInfoTimes(state=fields[0], probes=fields[3], last_ack_recv_ms=fields[20])


def _tcp_info(sock: socket.socket) -> TcpInfoTimes | None:
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO.size)
    except (OSError, AttributeError):
        return None
    return parse_tcp_info(raw)


def _error(sock: socket.socket) -> int:
    try:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    except OSError as exc:
        return exc.errno or errno.EBADF


def _err_info(code: int) -> ErrorInfo:
    return ErrorInfo(
        type="OSError", errno=code, errno_name=errno.errorcode.get(code), message=os.strerror(code)
    )


def _arm(sock: socket.socket, count: int) -> bool:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, max(1, min(count, 127)))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # Last: with keepalive on, this re-arms the timer from the last receive.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    except (OSError, AttributeError):
        return False
    return True


def _disarm(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)


async def check_keepalive(sock: socket.socket, wait: float) -> HoldCheck:
    """Send a keepalive probe on ``sock`` now and wait up to ``wait`` seconds for its ACK
    (plus the rest of the first idle second, see the module docstring).

    Never raises for what the network does; the socket stays open (keepalive off again).
    """
    start = time.perf_counter()
    before = _tcp_info(sock)
    if before is None:
        return HoldCheck(outcome="unavailable", waited_ms=0.0)
    idle_ms = float(before.last_ack_recv_ms)
    first = _settled(sock, before)
    if first is not None:
        return first.replace(idle_ms=idle_ms)
    # The probe leaves once the connection has idled 1 s: a shorter idle waits for that first.
    wait = max(0.0, wait) + max(0.0, 1.0 - idle_ms / 1000.0)
    if not _arm(sock, count=int(wait) + 3):
        return HoldCheck(outcome="unavailable", idle_ms=idle_ms, waited_ms=0.0)
    try:
        deadline = start + wait
        info = before
        while True:
            elapsed_ms = (time.perf_counter() - start) * 1000.0
            info = _tcp_info(sock) or info
            settled = _settled(sock, info)
            if settled is not None:
                return settled.replace(idle_ms=idle_ms, waited_ms=round(elapsed_ms, 3))
            if info.last_ack_recv_ms + _TICK_MS < idle_ms + elapsed_ms:
                return HoldCheck(
                    outcome="alive",
                    idle_ms=idle_ms,
                    waited_ms=round(elapsed_ms, 3),
                    probes_unanswered=info.probes,
                )
            if time.perf_counter() >= deadline:
                return HoldCheck(
                    outcome="silence",
                    idle_ms=idle_ms,
                    waited_ms=round(elapsed_ms, 3),
                    probes_unanswered=info.probes,
                )
            await anyio.sleep(_POLL_S)
    finally:
        _disarm(sock)


def _settled(sock: socket.socket, info: TcpInfoTimes) -> HoldCheck | None:
    """The connection already ended: by an RST, by the peer's FIN, or with an error."""
    code = _error(sock)
    if code == errno.ECONNRESET or (code == 0 and info.state == _TCP_CLOSE):
        return HoldCheck(outcome="reset", waited_ms=0.0, error=_err_info(errno.ECONNRESET))
    if code == errno.ETIMEDOUT:
        return HoldCheck(
            outcome="silence", waited_ms=0.0, probes_unanswered=info.probes, error=_err_info(code)
        )
    if code != 0:
        return HoldCheck(outcome="closed", waited_ms=0.0, error=_err_info(code))
    if info.state == _TCP_CLOSE_WAIT:
        return HoldCheck(outcome="closed", waited_ms=0.0)
    return None
