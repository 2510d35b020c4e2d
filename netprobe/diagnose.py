"""Orchestration: walk the ladder within one total deadline, concurrently where rungs allow.

DNS first (everything needs the addresses). Then, at the same time: ICMP echoes to every
address (on asyncio scheduled on the event loop, no task), and a TCP connect to every
address. As soon as one address is established the ladder goes on over that connection (TLS,
then the application), while the other connects and the echoes finish. The wall time is that
of the slowest necessary step, not the sum.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Unpack

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ._errors import InvalidOption, InvalidTarget
from ._hooks import DIAGNOSIS_WATCHER, REPORT_HOOKS, run_report_hooks
from ._version import __version__
from .classify import classify
from .options import Options, OptionsKwargs, make_options
from .probes._context import ProbeContext
from .probes.connection import Connection
from .probes.database import login_step
from .probes.db_login import require_driver
from .probes.dns import Resolver
from .probes.icmp import Pinger
from .probes.local import cached_local, gather_local
from .probes.prepare import prepare
from .probes.proxy import unreached_step
from .probes.tcp import TcpConnector
from .probes.trace import Tracer
from .probes.witness import Witness
from .proxies import ProxyRoute, proxy_route
from .report import Report, Timings
from .steps import ApplicationStep, DeadlineCut, LocalHealth, Rung, Step
from .target import Target, parse_target

__all__ = ["diagnose", "diagnose_many", "diagnose_stream"]

logger = logging.getLogger("netprobe")


async def diagnose(
    target: str | Target, *, options: Options | None = None, **kwargs: Unpack[OptionsKwargs]
) -> Report:
    """Diagnose the path to one dependency, from DNS to the application.

    Never raises for a network fault: refused, reset, timed out, NXDOMAIN, TLS alerts, HTTP 5xx
    and odd greetings are verdicts in the returned report. Returns within ``timeout`` seconds
    (plus a few milliseconds), with whatever it learned so far.

    Args:
        target: ``host:port``, a URL or a DSN (see the target grammar).
        options: an :class:`Options` to start from.
        **kwargs: any :class:`Options` field, e.g. ``timeout=5``, ``connect_timeout=1``,
            ``nameservers=["10.0.0.2"]`` (typed: see :class:`OptionsKwargs`).

    Raises:
        InvalidTarget: the target is malformed (before any I/O).
        InvalidOption: an option is unknown or out of range, or the target has credentials
            and its login driver is not installed (before any I/O).
    """
    parsed = parse_target(target)
    opts = make_options(options, **kwargs)
    require_driver(parsed)
    # The way the application would go: a forward proxy from the options or the environment.
    route = proxy_route(parsed, opts, os.environ)
    return await _Diagnosis(parsed, opts, route).run()


async def diagnose_many(
    targets: Iterable[str | Target],
    *,
    concurrency: int = 50,
    options: Options | None = None,
    **kwargs: Unpack[OptionsKwargs],
) -> list[Report]:
    """Diagnose many targets, at most ``concurrency`` at a time; reports in the input order.

    Every target and option is validated before the first probe starts. For many targets
    whose reports need not all be held at once, :func:`diagnose_stream` yields each as it
    completes.
    """
    parsed = [parse_target(t) for t in targets]
    opts = make_options(options, **kwargs)
    for t in parsed:
        require_driver(t)
    _check_concurrency(concurrency)
    results: list[Report | None] = [None] * len(parsed)

    def keep(i: int, report: Report) -> None:
        results[i] = report

    await _pool(enumerate(parsed), opts, concurrency, keep)
    return [r for r in results if r is not None]


async def diagnose_stream(
    targets: Iterable[str | Target],
    *,
    concurrency: int = 50,
    options: Options | None = None,
    **kwargs: Unpack[OptionsKwargs],
) -> AsyncGenerator[Report, None]:
    """Diagnose many targets, at most ``concurrency`` at a time; yield each report as it
    completes (completion order, not the input order: ``report.target`` says which).

    Nothing is held but the diagnoses in flight and a buffer of ``concurrency`` reports, and
    ``targets`` is read as the diagnoses go (a generator of a million targets needs no list):
    memory stays flat however many targets there are. The options are validated before the
    first probe; each target as it is taken (a malformed one raises :class:`InvalidTarget`
    from the iteration, once the diagnoses already started are done and yielded).

    Example::

        async for report in netprobe.diagnose_stream(targets, concurrency=100):
            if not report.ok:
                print(report.target.url, report.fault.code)

    Leaving the loop early (``break``): wrap it in ``contextlib.aclosing(...)`` so that the
    diagnoses still in flight are cancelled at once rather than when the generator is
    collected.

    Raises:
        InvalidTarget: a target is malformed (as it is taken).
        InvalidOption: an option is unknown or out of range (before any I/O), or a target
            has credentials and its login driver is not installed (as it is taken).
    """
    opts = make_options(options, **kwargs)
    _check_concurrency(concurrency)
    send, receive = anyio.create_memory_object_stream[Report](concurrency)
    failed: list[BaseException] = []

    def parsed() -> Iterator[tuple[int, Target]]:
        for i, t in enumerate(targets):
            try:
                target = parse_target(t)
                require_driver(target)
            except (InvalidTarget, InvalidOption) as exc:
                failed.append(exc)
                return
            yield i, target

    async def produce() -> None:
        async with send:
            await _pool(parsed(), opts, concurrency, lambda _i, r: send.send_nowait(r), send)

    closed = False
    async with anyio.create_task_group() as tg, receive:
        tg.start_soon(produce)
        try:
            async for report in receive:
                yield report
        except GeneratorExit:
            # The consumer left the loop (aclose()): cancel what is in flight and end
            # quietly, not with an exception group around the GeneratorExit.
            closed = True
            tg.cancel_scope.cancel()
    if failed and not closed:
        raise failed[0]


def _check_concurrency(concurrency: int) -> None:
    if concurrency < 1:
        raise InvalidOption(f"concurrency must be at least 1 (got {concurrency})")


async def _pool(
    work: Iterator[tuple[int, Target]],
    opts: Options,
    concurrency: int,
    done: Callable[[int, Report], object],
    out: MemoryObjectSendStream[Report] | None = None,
) -> None:
    """Run the diagnoses of ``work`` in ``concurrency`` workers that each take the next
    target when theirs is done: no task (nor limiter wait) per target. ``done`` gets each
    report; with ``out`` (a stream's buffer), a worker first waits for room in it."""
    environ = os.environ

    async def worker() -> None:
        for i, t in work:  # one iterator shared: each worker takes the next target
            report = await _Diagnosis(t, opts, proxy_route(t, opts, environ)).run()
            if out is not None:
                await out.send(report)
            else:
                done(i, report)

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)


class _Diagnosis:
    """One run of the ladder. Steps are recorded as they finish, so a deadline keeps them."""

    def __init__(self, target: Target, options: Options, route: ProxyRoute | None) -> None:
        self.ctx = ProbeContext(target=target, options=options, route=route)
        self.started_at = datetime.now(UTC)
        self.steps: dict[str, Step] = {}
        self.resolver = Resolver(self.ctx)
        self.tcp: TcpConnector | None = None
        self.connection: Connection | None = None
        #: The application rung's step, once its exchange (and login) are over.
        self.app: ApplicationStep | None = None
        self.pinger: Pinger | None = None
        self.witness: Witness | None = None
        self.tracer: Tracer | None = None
        self.local: LocalHealth | None = None
        self.local_done = anyio.Event()

    async def run(self) -> Report:
        # Only the redacted form of the target ever reaches a log record.
        logger.debug("diagnosing %s", self.ctx.target.url)
        watcher = DIAGNOSIS_WATCHER.get()
        if watcher is not None:
            watcher(self)  # the CLI's live line polls progress()
        cut: DeadlineCut | None = None
        with anyio.move_on_after(self.ctx.remaining()) as scope:
            # First imports and the TLS context before the clock: the timings are the
            # network's, the preparation is timings_ms.setup (probes/prepare.py).
            await prepare(self.ctx)
            self.ctx.start_clock()
            await self._ladder()
        if scope.cancelled_caught:
            cut = DeadlineCut(
                rung=self._waiting_rung(),
                timeout_s=self.ctx.options.timeout,
                at_ms=round(self.ctx.since_start_ms(), 3),
            )
        report = self._report(cut)
        if REPORT_HOOKS:
            run_report_hooks(report)  # netprobe.otel: spans and metrics of this diagnosis
        if report.fault is None:
            logger.debug("%s: healthy in %.1f ms", report.target.url, report.timings_ms.total or 0)
        else:
            logger.debug("%s: %s: %s", report.target.url, report.fault.code, report.fault.summary)
        return report

    def progress(self) -> tuple[Rung | None, float]:
        """The rung waiting for an answer now (None: gathering the rest), and the seconds
        since the start: what the command line shows while it waits."""
        return self._waiting_rung(), self.ctx.since_start_ms() / 1000.0

    def _waiting_rung(self) -> Rung | None:
        """The rung waiting for an answer when the deadline fired: the first without one
        (``Connection.rung``). The application rung answers once its login (with
        credentials) and its goodbye are done too. ``None`` once every rung the target
        needs has answered, or one failed (which ends the ladder): then only the other
        addresses, the witnesses and the local read were still running."""
        if "dns" not in self.steps:
            return "dns"
        if self.connection is None:
            return "tcp"
        rung = self.connection.rung
        app = self.connection.application
        if rung is None and app is not None and self.app is None and app.status != "failed":
            return "application"  # the login after the greeting was still running
        return rung

    async def _walk(self) -> None:
        self.steps["dns"] = await self.resolver.walk()

    async def _ladder(self) -> None:
        ctx = self.ctx
        dns = await self.resolver.run()
        self.steps["dns"] = dns
        if dns.status != "skipped":
            ctx.mark("dns")
        if not dns.addresses:
            await self._walk()
            return
        self.tcp = TcpConnector(ctx, dns.addresses)
        self.connection = Connection(ctx, dns.addresses, tcp=self.tcp, mtu_retry=True)
        self.pinger = Pinger(ctx, dns.addresses) if ctx.options.icmp else None
        self.witness = Witness(ctx, self.tcp, self.pinger)
        self.tracer = Tracer(ctx, self.tcp) if ctx.options.trace else None
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
                tg.start_soon(self._walk)  # the resolver's search walk, beside the rungs
                if self.tracer is not None:
                    self.tracer.start(tg)
                # A fresh snapshot of this host's sockets answers at once; else a worker reads.
                self.local = cached_local(dns.addresses, ctx.dial_port)
                if self.local is None:
                    tg.start_soon(self._local, dns.addresses)
                else:
                    self.local_done.set()
                if connect_inline:
                    await self.tcp.run()
                # TLS and the application's opening on the first address established.
                try:
                    await self.connection.open()
                finally:
                    await self.connection.aclose()
                app = self.connection.application
                if app is not None:
                    # With credentials, the database login after its greeting.
                    self.app = await login_step(ctx, app)
                await self.tcp.wait_done()
                # The canary ends with the connect timeout at the latest (probes/witness.py).
                await self.witness.wait_done()
                if self.tracer is not None:
                    if self.tcp.connected:
                        self.tracer.cancel()  # a SYN answered late: no trace to wait for
                    else:
                        # Started when the SYN was unanswered after 1 s, else now that the
                        # connect failed; bounded by its own budget and the total deadline.
                        await self.tracer.finish()
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
            if self.tracer is not None:
                self.tracer.close()
            self.tcp.close_unclaimed()

    async def _local(self, addresses: Sequence[str]) -> None:
        """This host's sockets toward the target, read alongside the connects (a worker
        thread; one read shared by concurrent diagnoses, see probes/local.py)."""
        try:
            self.local = await gather_local(addresses, self.ctx.dial_port)
        finally:
            self.local_done.set()

    def _report(self, cut: DeadlineCut | None) -> Report:
        ctx = self.ctx
        steps = self._ordered_steps()
        verdict = classify(ctx.target, ctx.options, steps, local=self.local, deadline=cut)
        ctx.mark("total")
        marks = ctx.marks
        return Report(
            target=ctx.target,
            fault=verdict.fault,
            warnings=verdict.warnings,
            timings_ms=Timings(
                setup=ctx.setup_ms(),
                dns=marks.get("dns"),
                tcp_connect=marks.get("tcp_connect"),
                tls_handshake=marks.get("tls_handshake"),
                first_byte=marks.get("first_byte"),
                total=marks.get("total"),
            ),
            steps=steps,
            local=self.local,
            deadline=cut,
            started_at=self.started_at,
            netprobe_version=__version__,
        )

    def _ordered_steps(self) -> list[Step]:
        """Every rung's step in ladder order, as far as each probe got (a cut one included)."""
        ctx = self.ctx
        steps = dict(self.steps)
        steps.setdefault("dns", self.resolver.step())
        if self.pinger is not None:
            steps["icmp"] = self.pinger.step()
        if self.tcp is not None:
            tcp_step = self.tcp.step()
            tcp_step = self.witness.annotate(tcp_step) if self.witness else tcp_step
            probe = self.connection.pmtu_probe if self.connection is not None else None
            if probe is not None:
                tcp_step = tcp_step.model_copy(update={"pmtu_probe": probe})
            trace = self.tracer.step if self.tracer is not None else None
            if trace is not None and tcp_step.status == "failed":
                tcp_step = tcp_step.model_copy(update={"trace": trace})
            steps["tcp"] = tcp_step
        if self.connection is not None and self.connection.proxy is not None:
            steps["proxy"] = self.connection.proxy
        elif ctx.route is not None:
            steps["proxy"] = unreached_step(ctx)  # type: ignore[assignment]
        if self.connection is not None and self.connection.tls is not None:
            steps["tls"] = self.connection.tls
        app = self.app
        if app is None and self.connection is not None:
            # A failed exchange is the rung's answer, also when the deadline then cut what
            # came after it (a follow-up handshake asking why).
            opened = self.connection.application
            app = opened if opened is not None and opened.status == "failed" else None
        if app is not None:
            steps["application"] = app
            inner = app.database.tls if app.database is not None else None
            if inner is not None and "tls" not in steps:
                # TLS negotiated inside the protocol (PostgreSQL's SSLRequest) is the TLS rung.
                steps["tls"] = inner
        order: Sequence[str] = ("dns", "icmp", "tcp", "proxy", "tls", "application")
        return [steps[name] for name in order if name in steps]
