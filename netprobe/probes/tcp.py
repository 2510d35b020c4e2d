"""TCP connect, one attempt per resolved address, each with its own errno and timing.

``anyio.connect_tcp`` hides the errno behind one ``OSError`` and forgets the per-address
results on timeout, so we connect each address ourselves: a non-blocking ``connect()``,
then wait for writability and read ``SO_ERROR`` (connect(2), "EINPROGRESS").
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from collections.abc import Sequence

import anyio
from anyio.abc import ByteStream

from ..protocols.tcp_info import TOTAL_RETRANS_END, total_retrans
from ..steps import AddressAttempt, ConnectOutcome, ErrorInfo, IcmpError, TcpStep
from ._context import ProbeContext
from ._io import connect_outcome, elapsed_ms, stream_from_socket
from .errqueue import icmp_error_of, read_sock_errors, set_recverr

__all__ = ["TcpConnector", "connect_address"]


def _family_of(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


async def connect_address(
    address: str, port: int, connect_timeout: float, *, mss: int | None = None
) -> tuple[AddressAttempt, socket.socket | None]:
    """Connect to one address. Returns the attempt and, when established, the socket.
    ``mss``: a ``TCP_MAXSEG`` to set before connect() (the MTU black hole test).

    Never raises for a network fault; outer cancellation propagates and closes the socket.
    """
    family = _family_of(address)
    fam: str = "ipv6" if family == socket.AF_INET6 else "ipv4"
    start = time.perf_counter()

    def attempt(
        outcome: ConnectOutcome,
        exc: BaseException | None = None,
        *,
        immediate: bool = False,
        local: str | None = None,
        icmp_error: IcmpError | None = None,
        retransmits: int | None = None,
    ) -> AddressAttempt:
        if icmp_error is not None and icmp_error.origin != "local" and outcome == "denied":
            # An ICMPv6 "administratively prohibited" (1/1) reaches connect() as EACCES
            # (icmpv6_err_convert()), the errno of this host's own firewall: the error queue
            # says a host on the path sent it, so it is a reject from the network.
            outcome = "host_unreachable"
        return AddressAttempt(
            address=address,
            port=port,
            family=fam,
            outcome=outcome,
            connect_ms=elapsed_ms(start),
            error=ErrorInfo.from_exception(exc) if exc is not None else None,
            immediate=immediate,
            local_address=local,
            icmp_error=icmp_error,
            syn_retransmits=retransmits,
        )

    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        return attempt(connect_outcome(exc), exc, immediate=True), None
    # The ICMP error that fails a connect (and which hop sent it) is only on the error queue.
    set_recverr(sock, family)
    if mss is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
    # On loopback an RST can come back within connect() itself: that is not "immediate"
    # in the sense of "no packet left", so only local refusals are flagged.
    try:
        sock.setblocking(False)
        err = sock.connect_ex((address, port))
        if err not in (0, errno.EINPROGRESS):
            # Refused before any packet left: the routing table, the port allocator...
            error = OSError(err, os.strerror(err))
            sock.close()
            outcome = connect_outcome(error)
            return attempt(outcome, error, immediate=outcome != "refused"), None
        if err == errno.EINPROGRESS:
            with anyio.fail_after(connect_timeout):
                await anyio.wait_writable(sock)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                error = OSError(err, os.strerror(err))
                icmp_error = icmp_error_of(read_sock_errors(sock))
                sock.close()
                return attempt(connect_outcome(error), error, icmp_error=icmp_error), None
    except TimeoutError:
        sock.close()
        return attempt("timeout"), None
    except OSError as exc:
        sock.close()
        return attempt(connect_outcome(exc), exc), None
    except BaseException:
        sock.close()
        raise
    # A diagnosis writes small messages (TLS records, one request) and waits for the answer:
    # with Nagle's algorithm the request written right after the TLS Finished waits for an
    # ACK, one more round trip (measured: 4.2 RTT instead of 3 for https:// across 100 ms).
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    set_recverr(sock, family, on=False)
    local = sock.getsockname()
    # The kernel's count of retransmissions so far: a lost SYN (or SYN+ACK), proved rather
    # than guessed from a connect time of 1 s (the first 104 bytes of struct tcp_info).
    retransmits: int | None = None
    with contextlib.suppress(OSError):
        retransmits = total_retrans(
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TOTAL_RETRANS_END)
        )
    return attempt("established", local=f"{local[0]}:{local[1]}", retransmits=retransmits), sock


class TcpConnector:
    """Connects to every address concurrently and hands over the first one established.

    The ladder goes on (TLS, application) as soon as one address is established, while the
    others finish on their own: the wall time is that of the slowest necessary step.
    """

    def __init__(self, ctx: ProbeContext, addresses: Sequence[str]) -> None:
        self._ctx = ctx
        self._addresses = list(addresses)
        self._timeout = ctx.budget(ctx.options.connect_timeout)
        self._results: dict[str, AddressAttempt] = {}
        self._others: list[socket.socket] = []
        self._chosen: str | None = None
        self._chosen_sock: socket.socket | None = None
        self._settled = anyio.Event()
        self._done = anyio.Event()
        self._start = time.perf_counter()

    async def run(self) -> None:
        """Run all attempts; returns when every one has an outcome."""
        try:
            if len(self._addresses) == 1:
                # The usual case: no task group and task to spawn for one connect.
                await self._one(self._addresses[0])
                return
            async with anyio.create_task_group() as tg:
                for addr in self._addresses:
                    tg.start_soon(self._one, addr)
        finally:
            self._done.set()
            self._settled.set()
            for sock in self._others:  # established, but another address was chosen
                sock.close()
            self._others.clear()

    async def _one(self, address: str) -> None:
        attempt, sock = await connect_address(address, self._ctx.dial_port, self._timeout)
        self._results[address] = attempt
        if sock is not None:
            if self._chosen is None:
                self._chosen = address
                self._chosen_sock = sock
                self._ctx.mark("tcp_connect")
            else:
                self._others.append(sock)
        if self._chosen is not None or len(self._results) == len(self._addresses):
            self._settled.set()

    async def first_established(self) -> ByteStream | None:
        """Wait for the first established connection (or for all attempts to fail).

        The caller owns the returned stream. A chosen socket nobody claimed (the wait was
        cancelled) is closed by ``close_unclaimed()``.
        """
        sock = await self.first_socket()
        if sock is None:
            return None
        return await stream_from_socket(sock)

    async def first_socket(self) -> socket.socket | None:
        """``first_established()`` without the stream, for a caller that will not talk over
        the connection (plain TCP: established is the whole answer). The caller closes it."""
        await self._settled.wait()
        sock, self._chosen_sock = self._chosen_sock, None
        return sock

    def close_unclaimed(self) -> None:
        if self._chosen_sock is not None:
            self._chosen_sock.close()
            self._chosen_sock = None

    async def wait_done(self) -> None:
        await self._done.wait()

    async def wait_settled(self) -> None:
        """Wait until one address is established or every attempt has an outcome."""
        await self._settled.wait()

    @property
    def addresses(self) -> list[str]:
        """The addresses tried, in order."""
        return list(self._addresses)

    @property
    def chosen(self) -> str | None:
        """The address whose connection was kept (None until one is established)."""
        return self._chosen

    @property
    def connected(self) -> bool:
        """One address is established (set the moment its connect completes)."""
        return self._chosen is not None

    def pending(self) -> list[str]:
        """Addresses whose connect has no outcome yet (their SYN is still unanswered)."""
        return [a for a in self._addresses if a not in self._results]

    @property
    def timeout(self) -> float:
        return self._timeout

    def time_left(self) -> float:
        """Seconds until the connect timeout of the attempts ends (never negative)."""
        return max(0.0, self._start + self._timeout - time.perf_counter())

    def step(self) -> TcpStep:
        """The TCP step so far. A connect still waiting is a SYN unanswered so far: its budget
        was cut to the total deadline when it started, so a diagnosis that ends with it
        pending ends at that budget (``timeout``, as its own timer would have said)."""
        attempts: list[AddressAttempt] = []
        for addr in self._addresses:
            result = self._results.get(addr)
            if result is None:
                result = AddressAttempt(
                    address=addr,
                    port=self._ctx.dial_port,
                    family="ipv6" if ":" in addr else "ipv4",
                    outcome="timeout",
                    connect_ms=elapsed_ms(self._start),
                )
            attempts.append(result)
        ok = self._chosen is not None
        reason = None
        if not ok:
            outcomes = sorted({a.outcome for a in attempts})
            reason = "no address connected: " + ", ".join(outcomes)
        return TcpStep(
            status="ok" if ok else "failed",
            reason=reason,
            timeout_s=self._timeout,
            attempts=attempts,
            connected_to=attempts[self._addresses.index(self._chosen)].endpoint
            if self._chosen is not None
            else None,
            duration_ms=max((a.connect_ms or 0.0) for a in attempts) if attempts else None,
        )
