"""One connection to a target through the rungs: the per-connection probe.

:class:`Connection` makes one connection the way a diagnosis does: TCP to every resolved
address at once (the first established is kept, the others finish on their own), the TLS
handshake on it for a TLS target, then the application's opening exchange (a database
greeting, the HTTP request). It records what each rung observed (:meth:`Connection.steps`)
and leaves the connection open, so that a caller can hold it, :meth:`~Connection.validate`
it again, and :meth:`~Connection.aclose` it with the protocol's goodbye.

``diagnose()`` runs it once per diagnosis (next to the ICMP echoes, the liveness witness
and the local socket read); ``probe_pool()`` opens ``size`` of them at once and holds them.
Never raises for a network fault; outer cancellation propagates, and ``aclose()`` (or
leaving ``async with``) releases everything on every path.

Usage::

    async with Connection(ctx, addresses) as conn:
        await conn.open()
        verdict = classify(ctx.target, ctx.options, conn.steps())
        ...  # hold it
        await conn.validate()
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence
from types import TracebackType

import anyio
from anyio.abc import ByteStream, SocketAttribute, TaskGroup

from ..steps import ApplicationStep, HoldCheck, PmtuProbe, ProxyStep, Rung, Step, TlsStep
from ._context import ProbeContext
from ._io import STREAM_ERRORS
from .application import OPENINGS, Exchange
from .keepalive import check_keepalive
from .pmtu import small_mss_retry
from .proxy import connect_tunnel, forward_step, unreached_step
from .tcp import TcpConnector
from .tls import await_acceptance, start_tls
from .tls_followup import learn_why, tls_expected

__all__ = ["Connection"]


class Connection:
    """One connection to ``ctx.target`` through its rungs (module docstring).

    Args:
        ctx: the probe context (target, options, clock).
        addresses: the resolved addresses to connect to, in order.
        tcp: a connector already running for these addresses (the diagnosis starts its own,
            to watch it with the liveness witness); by default the connection runs one.
        mtu_retry: after a TLS handshake or HTTP response that stalls, run the MTU black
            hole test (probes/pmtu.py); the diagnosis does, a pool does not.
    """

    def __init__(
        self,
        ctx: ProbeContext,
        addresses: Sequence[str],
        *,
        tcp: TcpConnector | None = None,
        mtu_retry: bool = False,
    ) -> None:
        self.ctx = ctx
        #: The TCP rung: every address's attempt (``tcp.step()``).
        self.tcp = tcp if tcp is not None else TcpConnector(ctx, addresses)
        self._owns_tcp = tcp is None
        #: The way through a forward proxy (ctx.route): the CONNECT of an https:// target,
        #: or the route of an http:// one.
        self.proxy: ProxyStep | None = forward_step(ctx)
        #: The TLS rung's step, for a TLS target, once the handshake ended.
        self.tls: TlsStep | None = None
        #: The application rung's step, once its opening exchange ended.
        self.application: ApplicationStep | None = None
        self._tg: TaskGroup | None = None
        self._stream: ByteStream | None = None
        self._socket: socket.socket | None = None
        self._exchange: Exchange | None = None
        #: The MTU black hole test, after a TLS handshake or an HTTP response stalled (a
        #: diagnosis's; a pool of many connections to an overloaded server makes none).
        self._mtu_retry = mtu_retry
        self.pmtu_probe: PmtuProbe | None = None

    async def __aenter__(self) -> Connection:
        if self._owns_tcp and len(self.tcp.addresses) > 1:
            # The other addresses' connects run beside the rungs, for as long as this
            # connection is open (they end with their connect timeout at the latest).
            self._tg = anyio.create_task_group()
            await self._tg.__aenter__()
            self._tg.start_soon(self.tcp.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            await self.aclose()
        finally:
            if self._tg is not None:
                tg, self._tg = self._tg, None
                tg.cancel_scope.cancel()  # a connect still waiting is of no use any more
                await tg.__aexit__(exc_type, exc, tb)
        return None

    @property
    def rung(self) -> Rung | None:
        """The rung waiting for an answer: ``tcp`` until one address is established, then
        the next the target needs; None once each has answered, or one failed (the ladder
        stops there). A plain TCP target stays at ``tcp``: its other addresses' connects are
        the rung's too."""
        if not self.tcp.connected:
            return "tcp"
        target = self.ctx.target
        if self.ctx.route is not None and target.tls:
            if self.proxy is None:
                return "proxy"
            if self.proxy.status != "ok":
                return None
        if target.tls:
            if self.tls is None:
                return "tls"
            if self.tls.status != "ok":
                return None
        if target.protocol in OPENINGS:
            return "application" if self.application is None else None
        return None if target.tls else "tcp"

    async def open(self) -> None:
        """TCP, then TLS for a TLS target, then the application's opening exchange; stops at
        the first rung that fails. Never raises for a network fault."""
        ctx = self.ctx
        target = ctx.target
        if self._owns_tcp and self._tg is None:
            await self.tcp.run()  # one address: no task needed
        opening = OPENINGS.get(target.protocol)
        if not target.tls and opening is None:
            # Plain TCP: established is the whole answer, no stream to set up.
            self._socket = await self.tcp.first_socket()
            return
        established = await self.tcp.first_established()
        if established is None:
            return
        stream: ByteStream = established
        self._stream = stream
        if ctx.route is not None and target.tls:
            # The TCP connection is the proxy's: ask it for a tunnel to the target first.
            self.proxy = await connect_tunnel(ctx, stream)
            if self.proxy.status != "ok":
                return
        # The follow-up handshakes and the TLS check of a closed plain request connect to the
        # address again: through a proxy that address is the proxy's, not the target's.
        address = self.tcp.chosen if ctx.route is None else None
        if target.tls:
            self.tls, encrypted = await start_tls(ctx, stream)
            if self.tls.status != "skipped":
                ctx.mark("tls_handshake")
            if encrypted is None:
                # The failure is recorded; follow-up handshakes may add why (a cut by the
                # total deadline leaves the step as it is).
                if address is not None:
                    self.tls = await learn_why(ctx, address, self.tls)
                    if self._mtu_retry and self.tls.failure == "timeout":
                        # ESTABLISHED, then the server's flight never came: an MTU black hole?
                        self.pmtu_probe = await small_mss_retry(
                            ctx, address, "tls_handshake", stream
                        )
                return
            self._stream = stream = encrypted
            if opening is None:
                # No application read will see a TLS 1.3 server refuse our certificate.
                self.tls = await await_acceptance(ctx, encrypted, self.tls)
                if self.tls.status != "ok":
                    return
        if opening is not None:
            self._exchange = opening(ctx, stream)
            self.application = await self._exchange.open()
            http = self.application.http
            if (
                self._mtu_retry
                and address is not None
                and http is not None
                and http.failure == "timeout"
            ):
                # The request went out and no response head came: an MTU black hole?
                self.pmtu_probe = await small_mss_retry(ctx, address, "http_response", stream)
            if address is not None and not target.tls:
                # A plain request closed without a byte: does the port expect TLS?
                self.application = await tls_expected(ctx, address, self.application)

    async def validate(self) -> ApplicationStep | None:
        """Another round trip on the open connection (a pool's check after holding it): the
        application step after it, or None when there is nothing to validate."""
        if self._exchange is None or self.application is None:
            return None
        step = await self._exchange.validate()
        if step is not None:
            self.application = step
        return step

    async def check_transport(self, wait: float) -> HoldCheck | None:
        """A TCP keepalive probe on the held connection, answered or not within ``wait``
        seconds (probes/keepalive.py): bytes on the wire that every middlebox must pass,
        whatever the protocol. None when no connection is open."""
        sock = self._socket
        if sock is None and self._stream is not None:
            sock = self._stream.extra(SocketAttribute.raw_socket, None)
        if sock is None:
            return None
        return await check_keepalive(sock, wait)

    async def aclose(self) -> None:
        """The protocol's goodbye (bounded), then the connection itself. Idempotent."""
        exchange, self._exchange = self._exchange, None
        stream, self._stream = self._stream, None
        sock, self._socket = self._socket, None
        try:
            if exchange is not None:
                opened = self.application is not None
                step = await exchange.close()
                if opened and step is not None:
                    self.application = step
        finally:
            if sock is not None:
                sock.close()
            if stream is not None:
                with anyio.CancelScope(shield=True), contextlib.suppress(*STREAM_ERRORS):
                    await stream.aclose()
            if self._owns_tcp:
                self.tcp.close_unclaimed()

    def steps(self) -> list[Step]:
        """What the rungs observed so far: TCP (every address), TLS (the TLS rung's, or the
        one negotiated inside the database protocol), the application."""
        tcp = self.tcp.step()
        if self.pmtu_probe is not None:
            tcp = tcp.model_copy(update={"pmtu_probe": self.pmtu_probe})
        out: list[Step] = [tcp]
        proxy = self.proxy if self.proxy is not None else unreached_step(self.ctx)
        if proxy is not None:
            out.append(proxy)
        tls = self.tls
        app = self.application
        if tls is None and app is not None and app.database is not None:
            tls = app.database.tls
        if tls is not None:
            out.append(tls)
        if app is not None:
            out.append(app)
        return out
