"""Orchestration: walk the ladder within one total deadline, concurrently where rungs allow.

DNS first (everything needs the addresses). Then, at the same time: ICMP echoes to every
address (on asyncio scheduled on the event loop, no task), and a TCP connect to every
address. As soon as one address is established the ladder goes on over that connection (TLS,
then the application), while the other connects and the echoes finish. The wall time is that
of the slowest necessary step, not the sum.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import ByteStream

from ._version import __version__
from .classify import classify
from .classify.transport import local_warnings
from .options import Options, make_options
from .probes._context import ProbeContext
from .probes.application import APP_PROBES
from .probes.dns import resolve
from .probes.icmp import Pinger
from .probes.local import cached_local, gather_local
from .probes.tcp import TcpConnector
from .probes.tls import start_tls
from .probes.witness import Witness
from .report import Report, ReportWarning, Timings
from .steps import ApplicationStep, ErrorInfo, LocalHealth, Step, TlsStep
from .target import Target, parse_target

__all__ = ["diagnose", "diagnose_many"]

logger = logging.getLogger("netprobe")


async def diagnose(
    target: str | Target, *, options: Options | None = None, **kwargs: Any
) -> Report:
    """Diagnose the path to one dependency, from DNS to the application.

    Never raises for a network fault: refused, reset, timed out, NXDOMAIN, TLS alerts, HTTP 5xx
    and odd greetings are verdicts in the returned report. Returns within ``timeout`` seconds
    (plus a few milliseconds), with whatever it learned so far.

    Args:
        target: ``host:port``, a URL or a DSN (see the target grammar).
        options: an :class:`Options` to start from.
        **kwargs: any :class:`Options` field, e.g. ``timeout=5``, ``connect_timeout=1``,
            ``nameservers=["10.0.0.2"]``.

    Raises:
        InvalidTarget: the target is malformed (before any I/O).
        InvalidOption: an option is unknown or out of range (before any I/O).
    """
    parsed = parse_target(target)
    opts = make_options(options, **kwargs)
    return await _Diagnosis(parsed, opts).run()


async def diagnose_many(
    targets: Iterable[str | Target],
    *,
    concurrency: int = 50,
    options: Options | None = None,
    **kwargs: Any,
) -> list[Report]:
    """Diagnose many targets, at most ``concurrency`` at a time; reports in the input order.

    Every target and option is validated before the first probe starts.
    """
    parsed = [parse_target(t) for t in targets]
    opts = make_options(options, **kwargs)
    if concurrency < 1:
        from ._errors import InvalidOption

        raise InvalidOption(f"concurrency must be at least 1 (got {concurrency})")
    results: list[Report | None] = [None] * len(parsed)
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(i: int, t: Target) -> None:
        async with limiter:
            results[i] = await _Diagnosis(t, opts).run()

    async with anyio.create_task_group() as tg:
        for i, t in enumerate(parsed):
            tg.start_soon(one, i, t)
    return [r for r in results if r is not None]


class _Diagnosis:
    """One run of the ladder. Steps are recorded as they finish, so a deadline keeps them."""

    def __init__(self, target: Target, options: Options) -> None:
        self.ctx = ProbeContext(target=target, options=options)
        self.started_at = datetime.now(UTC)
        self.steps: dict[str, Step] = {}
        self.tcp: TcpConnector | None = None
        self.pinger: Pinger | None = None
        self.witness: Witness | None = None
        self.local: LocalHealth | None = None
        self.local_done = anyio.Event()
        self.in_progress: str | None = None

    async def run(self) -> Report:
        # Only the redacted form of the target ever reaches a log record.
        logger.debug("diagnosing %s", self.ctx.target.url)
        with anyio.move_on_after(self.ctx.options.timeout) as scope:
            await self._ladder()
        report = self._report(deadline_hit=scope.cancelled_caught)
        if report.fault is None:
            logger.debug("%s: healthy in %.1f ms", report.target.url, report.timings_ms.total or 0)
        else:
            logger.debug("%s: %s: %s", report.target.url, report.fault.code, report.fault.summary)
        return report

    async def _ladder(self) -> None:
        ctx = self.ctx
        self.in_progress = "dns"
        dns = await resolve(ctx)
        self.steps["dns"] = dns
        if dns.status != "skipped":
            ctx.mark("dns")
        if not dns.addresses:
            return
        self.tcp = TcpConnector(ctx, dns.addresses)
        self.pinger = Pinger(ctx, dns.addresses) if ctx.options.icmp else None
        self.witness = Witness(ctx, self.tcp, self.pinger)
        try:
            async with anyio.create_task_group() as tg:
                # On asyncio the echoes need no task (start() schedules them on the loop).
                echo_task = self.pinger is not None and not self.pinger.start()
                if echo_task and self.pinger is not None:
                    tg.start_soon(self.pinger.run)
                # One address (the usual case): the connect runs in this task, below.
                connect_inline = len(dns.addresses) == 1
                if not connect_inline:
                    tg.start_soon(self.tcp.run)
                self.witness.start(tg)
                # A fresh snapshot of this host's sockets answers at once; else a worker reads.
                self.local = cached_local(dns.addresses, ctx.target.port)
                if self.local is None:
                    tg.start_soon(self._local, dns.addresses)
                else:
                    self.local_done.set()
                self.in_progress = "tcp"
                if connect_inline:
                    await self.tcp.run()
                if ctx.target.tls or ctx.target.protocol in APP_PROBES:
                    stream = await self.tcp.first_established()
                    if stream is not None:
                        async with stream:
                            await self._l7(stream)
                else:
                    # Plain TCP: established is the whole answer, no stream to set up.
                    sock = await self.tcp.first_socket()
                    if sock is not None:
                        sock.close()
                await self.tcp.wait_done()
                # The canary ends with the connect timeout at the latest (probes/witness.py).
                await self.witness.wait_done()
                await self.local_done.wait()
                # The echoes get no more time than the connect and L7 rungs took: ICMP must
                # never add to the wall time of a diagnosis. Every other task has ended by
                # now; without an echo task there is nothing to cancel (and anyio's cancel()
                # formats the repr of the current task: ~40 us).
                if echo_task:
                    tg.cancel_scope.cancel()
        finally:
            if self.pinger is not None:
                self.pinger.stop()
            self.witness.close()
            self.tcp.close_unclaimed()
        self.in_progress = None

    async def _local(self, addresses: Sequence[str]) -> None:
        """This host's sockets toward the target, read alongside the connects (a worker
        thread; one read shared by concurrent diagnoses, see probes/local.py)."""
        try:
            self.local = await gather_local(addresses, self.ctx.target.port)
        finally:
            self.local_done.set()

    async def _l7(self, stream: ByteStream) -> None:
        ctx = self.ctx
        if ctx.target.tls:
            self.in_progress = "tls"
            tls_step, tls_stream = await start_tls(ctx, stream)
            self.steps["tls"] = tls_step
            if tls_step.status != "skipped":
                ctx.mark("tls_handshake")
            if tls_stream is None:
                self.in_progress = None
                return
            stream = tls_stream
        probe = APP_PROBES.get(ctx.target.protocol)
        if probe is not None:
            self.in_progress = "application"
            app = await probe(ctx, stream)
            self.steps["application"] = app
            inner = app.database.tls if app.database is not None else None
            if inner is not None and "tls" not in self.steps:
                # TLS negotiated inside the protocol (PostgreSQL's SSLRequest) is the TLS rung.
                self.steps["tls"] = inner
        self.in_progress = None

    def _report(self, *, deadline_hit: bool) -> Report:
        ctx = self.ctx
        if (
            deadline_hit
            and self.in_progress == "tcp"
            and (ctx.target.tls or ctx.target.protocol in APP_PROBES)
            and self.tcp is not None
            and self.tcp.step().connected_to is not None
        ):
            # Connected, and cut before the next rung began: that rung is the one cut (else
            # the report read healthy for an https:// or database target never checked).
            self.in_progress = "tls" if ctx.target.tls else "application"
        steps = self._ordered_steps(deadline_hit)
        verdict = classify(ctx.target, ctx.options, steps)
        warnings = list(verdict.warnings)
        warnings.extend(local_warnings(self.local))
        if deadline_hit:
            warnings.append(
                ReportWarning(
                    code="diagnosis.deadline",
                    message=f"The total deadline ({ctx.options.timeout:g} s) ended the diagnosis "
                    f"during the {self.in_progress or 'last'} step: later rungs were not tried.",
                )
            )
        ctx.mark("total")
        marks = ctx.marks
        return Report(
            target=ctx.target,
            fault=verdict.fault,
            warnings=warnings,
            timings_ms=Timings(
                dns=marks.get("dns"),
                tcp_connect=marks.get("tcp_connect"),
                tls_handshake=marks.get("tls_handshake"),
                first_byte=marks.get("first_byte"),
                total=marks.get("total"),
            ),
            steps=steps,
            local=self.local,
            started_at=self.started_at,
            netprobe_version=__version__,
        )

    def _ordered_steps(self, deadline_hit: bool) -> list[Step]:
        steps = dict(self.steps)
        if self.pinger is not None:
            steps["icmp"] = self.pinger.step()
        if self.tcp is not None:
            tcp_step = self.tcp.step()
            steps["tcp"] = self.witness.annotate(tcp_step) if self.witness else tcp_step
        if deadline_hit and self.in_progress in ("tls", "application"):
            err = ErrorInfo(type="Deadline", message="the total deadline was reached first")
            reason = f"the total deadline ({self.ctx.options.timeout:g} s) was reached"
            if self.in_progress == "tls":
                steps["tls"] = TlsStep(
                    status="failed", reason=reason, error=err, server_name=self.ctx.target.host
                )
            else:
                steps["application"] = ApplicationStep(
                    status="failed", reason=reason, error=err, protocol=self.ctx.target.protocol
                )
        if deadline_hit and self.in_progress == "dns" and "dns" not in steps:
            from .steps import DnsStep

            steps["dns"] = DnsStep(
                status="failed",
                reason="the total deadline was reached",
                host=self.ctx.target.host,
                rcode="TIMEOUT",
            )
        order: Sequence[str] = ("dns", "icmp", "tcp", "tls", "application")
        return [steps[name] for name in order if name in steps]
