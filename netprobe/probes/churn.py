"""One connect of the churn probe: from a port the kernel picks, or from a given source port
that was just closed, then closed at once with an RST.

Why an RST close (``SO_LINGER`` 0): the side that closes first with a FIN keeps the 4-tuple
in TIME_WAIT for 60 s, and Linux will not connect from it again meanwhile (an explicit bind
to the port then fails, or the connect gets EADDRNOTAVAIL). An RST leaves no TIME_WAIT, so
the very same 4-tuple can be used again at once; a stateful firewall or NAT that keeps the
session after the RST (as many keep it after a FIN) then sees a SYN for a session it still
holds, and drops it.

The SYNs a connect needed come from ``TCP_INFO``'s ``tcpi_total_retrans`` (the kernel's own
count of retransmitted segments, SYNs included), read before the close: evidence that a SYN
was lost, not an inference from the connect time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Literal

import anyio

from ..protocols.tcp_info import TOTAL_RETRANS_END, total_retrans
from ..steps import ConnectOutcome, ErrorInfo
from ._io import connect_outcome, elapsed_ms

__all__ = ["ChurnConnect", "churn_connect"]

_LINGER_RST = struct.pack("ii", 1, 0)


@dataclass(frozen=True)
class ChurnConnect:
    """What one connect did (plain data)."""

    outcome: ConnectOutcome | Literal["bind_failed"]
    connect_ms: float | None
    local_ip: str | None
    local_port: int | None
    syns_sent: int | None
    error: ErrorInfo | None = None


def _syns_sent(sock: socket.socket) -> int | None:
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TOTAL_RETRANS_END)
    except (OSError, AttributeError):
        return None
    retrans = total_retrans(raw)
    return None if retrans is None else retrans + 1


def _close_with_rst(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    sock.close()


async def churn_connect(
    address: str,
    port: int,
    *,
    connect_timeout: float,
    source_port: int = 0,
) -> ChurnConnect:
    """Connect to ``address:port`` from ``source_port`` (0: a free port the kernel picks),
    read the SYNs it took, and close it with an RST. Never raises for a network fault; outer
    cancellation propagates and closes the socket.

    Both kinds bind before connecting, with SO_REUSEADDR: ``bind()`` to port 0 picks a port
    no socket of this host uses (a connect's own port choice may share a port with TIME_WAIT
    connections to other destinations, and a later explicit bind to it then fails with
    EADDRINUSE: on a busy host most reconnects did)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        return ChurnConnect(connect_outcome(exc), None, None, None, None, _info(exc))
    start = time.perf_counter()
    local: tuple[str, int] | None = None
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        anywhere = "::" if family == socket.AF_INET6 else "0.0.0.0"
        try:
            sock.bind((anywhere, source_port))
        except OSError as exc:
            return ChurnConnect("bind_failed", None, None, source_port, None, _info(exc))
        err = sock.connect_ex((address, port))
        with contextlib.suppress(OSError):
            local = sock.getsockname()[:2]
        if err == errno.EINPROGRESS:
            try:
                with anyio.fail_after(connect_timeout):
                    await anyio.wait_writable(sock)
            except TimeoutError:
                return ChurnConnect("timeout", elapsed_ms(start), *_split(local), _syns_sent(sock))
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            failure = OSError(err, os.strerror(err))
            return ChurnConnect(
                connect_outcome(failure), elapsed_ms(start), *_split(local), _syns_sent(sock),
                _info(failure),
            )  # fmt: skip
        return ChurnConnect("established", elapsed_ms(start), *_split(local), _syns_sent(sock))
    except OSError as exc:
        return ChurnConnect(
            connect_outcome(exc), elapsed_ms(start), *_split(local), None, _info(exc)
        )
    finally:
        _close_with_rst(sock)


def _split(local: tuple[str, int] | None) -> tuple[str | None, int | None]:
    return (local[0], local[1]) if local is not None and local[1] else (None, None)


def _info(exc: OSError) -> ErrorInfo:
    return ErrorInfo.from_exception(exc)
