"""Name resolution, the way the application does it, and the diagnosis when it fails.

getaddrinfo reads /etc/hosts, nsswitch and the search domains, exactly as the application's
own connect will; but when it fails it lumps SERVFAIL, REFUSED and a silent resolver together
as ``EAI_AGAIN``. So on failure we ask the name servers directly (dnspython) for A and AAAA,
which tells NXDOMAIN, NODATA, SERVFAIL/REFUSED and timeouts apart. dnspython is imported
then, at first use (~50 ms of imports a resolved name or an IP literal never needs:
benchmarks/RESULTS-import.md).

With ``nameservers=`` the user overrides the system resolver: the name is resolved by asking
those servers directly, and getaddrinfo is not used.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import sniffio

from ..options import parse_nameserver
from ..protocols.resolvconf import (
    ResolvConf,
    hosts_addresses,
    nsswitch_hosts,
    parse_resolv_conf,
    search_candidates,
)
from ..steps import DnsStep, ErrorInfo, NameserverAnswer, Rcode, ResolverWalk, WalkQuery
from ._context import ProbeContext
from ._io import elapsed_ms
from ._lazy import import_off_loop
from ._threads import run_in_daemon_thread

if TYPE_CHECKING:
    import dns.message
    import dns.name

__all__ = ["Resolver", "resolve"]

_MAX_ADDRESSES = 16
#: glibc tries at most 6 search domains plus the name itself.
_MAX_WALK = 7
#: What asking a name server directly imports (dnspython), at its first use.
_QUERY_MODULES = (
    "dns.name",
    "dns.asyncbackend",
    "dns.asyncquery",
    "dns.exception",
    "dns.flags",
    "dns.message",
    "dns.rcode",
    "dns.rdatatype",
)


async def resolve(ctx: ProbeContext) -> DnsStep:
    """Resolve the target's host. Never raises for a DNS fault."""
    return await Resolver(ctx).run()


class Resolver:
    """The DNS rung. ``run()`` resolves; ``step()`` is what it observed so far, so that a
    diagnosis cut by its total deadline keeps the partial observation (getaddrinfo's error,
    the direct answers already in)."""

    def __init__(self, ctx: ProbeContext) -> None:
        self._ctx = ctx
        self._start = time.perf_counter()
        self._error: ErrorInfo | None = None
        self._answers: list[NameserverAnswer] = []
        self._alive: list[str] = []
        self._nameservers_asked: Sequence[str] = ()
        self._step: DnsStep | None = None

    def step(self) -> DnsStep:
        """The step: the result once ``run()`` returned, else what was seen before the cut."""
        if self._step is not None:
            return self._step
        host = self._ctx.dial_host
        return DnsStep(
            status="failed",
            reason="no answer yet when the diagnosis ended",
            host=host,
            source="nameservers" if self._ctx.options.nameservers else "getaddrinfo",
            error=self._error,
            queries=_in_order(self._answers, self._nameservers_asked),
            alive_nameservers=self._alive_in_order(),
            duration_ms=elapsed_ms(self._start),
        )

    async def run(self) -> DnsStep:
        """The lookup (the step the ladder goes on with); :meth:`walk` adds the rest."""
        # The step's own clock starts here, with the rung: the diagnosis's preparation (first
        # imports, the TLS context) came after this object was made and is not the lookup's.
        self._start = time.perf_counter()
        self._step = await self._resolve()
        return self._step

    async def walk(self) -> DnsStep:
        """After :meth:`run`: where getaddrinfo's answer came from, and the resolver's search
        walk (direct queries, run beside the other rungs: not in the DNS timing). If the total
        deadline cuts it, the lookup's step stands as it was."""
        step = self._step
        if step is not None and step.source == "getaddrinfo":
            self._step = await self._with_walk(step)
        return self.step()

    async def _with_walk(self, step: DnsStep) -> DnsStep:
        """Where getaddrinfo's answer came from (hosts file or DNS) and, when the search list
        takes part, the resolver's walk replayed with direct queries."""
        files = _read_resolver_files()
        host = step.host
        in_hosts = hosts_addresses(files.hosts, host)
        sources = nsswitch_hosts(files.nsswitch)
        files_first = "files" in sources and (
            "dns" not in sources or sources.index("files") < sources.index("dns")
        )
        if step.status == "ok" and files_first and in_hosts:
            return step.model_copy(update={"answered_by": "hosts"})
        conf = parse_resolv_conf(files.resolv_conf)
        candidates = search_candidates(host, conf)
        update: dict[str, object] = {"answered_by": "dns"} if step.status == "ok" else {}
        if step.status == "ok":
            # Search domains asked before the name, or several servers to compare.
            walk = candidates[0] != host.rstrip(".") or len(conf.nameservers) > 1
        else:
            # The names tried, when the server answers (a silent one was said already).
            walk = len(candidates) > 1 and step.rcode in ("NXDOMAIN", "NODATA")
        if walk and self._ctx.options.resolver_walk:
            update["walk"] = await _walk(
                host, conf, candidates, self._ctx.budget(self._ctx.options.dns_timeout)
            )
        return step.model_copy(update=update)

    async def _resolve(self) -> DnsStep:
        ctx = self._ctx
        host, port = ctx.dial_host, ctx.dial_port
        if ctx.dial_is_ip:
            what = "the proxy" if ctx.route is not None else "the target"
            return DnsStep(
                status="skipped",
                reason=f"{what} is an IP address: no lookup",
                host=host,
                source="literal",
                addresses=[host],
                duration_ms=0.0,
            )
        start = self._start
        budget = ctx.budget(ctx.options.dns_timeout)
        if ctx.options.nameservers:
            answers = await self._ask(ctx.options.nameservers, budget)
            step = _from_direct_answers(host, answers, start)
            if step.status == "failed":
                step = step.model_copy(update={"alive_nameservers": self._alive_in_order()})
            return step

        addresses: list[str] = []
        try:
            with anyio.fail_after(budget):
                # A daemon thread of our own: an abandoned lookup never holds the exit.
                infos = await run_in_daemon_thread(
                    _getaddrinfo, host, port, name="netprobe-getaddrinfo"
                )
            addresses = _unique_addresses(infos)
        except TimeoutError:
            self._error = ErrorInfo(
                type="TimeoutError", message=f"getaddrinfo gave no answer in {budget:.1f}s"
            )
        except (socket.gaierror, OSError, UnicodeError) as exc:
            self._error = ErrorInfo.from_exception(exc)
        if addresses:
            return DnsStep(
                status="ok",
                host=host,
                addresses=addresses,
                duration_ms=elapsed_ms(start),
            )

        # getaddrinfo failed: ask the configured name servers why.
        await import_off_loop("dns.resolver")  # dnspython's first import: see _lazy.py
        answers = await self._ask(_system_nameservers(), ctx.budget(ctx.options.dns_timeout))
        error = self._error
        return DnsStep(
            status="failed",
            reason=error.message if error else "no address",
            host=host,
            error=error,
            rcode=_verdict(answers) if answers else None,
            queries=answers,
            alive_nameservers=self._alive_in_order(),
            duration_ms=elapsed_ms(start),
        )

    def _alive_in_order(self) -> tuple[str, ...]:
        return tuple(ns for ns in self._nameservers_asked if ns in self._alive)

    async def _ask(self, nameservers: Sequence[str], budget: float) -> list[NameserverAnswer]:
        self._nameservers_asked = nameservers
        await _ask_nameservers(self._ctx.dial_host, nameservers, budget, self._answers, self._alive)
        return _in_order(self._answers, nameservers)


@dataclass(frozen=True)
class _ResolverFiles:
    resolv_conf: str
    hosts: str
    nsswitch: str


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(65536)
    except OSError:
        return ""


def _read_resolver_files() -> _ResolverFiles:
    """The three files glibc's resolver reads (small, local: read on the loop)."""
    return _ResolverFiles(
        resolv_conf=_read_text("/etc/resolv.conf"),
        hosts=_read_text("/etc/hosts"),
        nsswitch=_read_text("/etc/nsswitch.conf"),
    )


async def _walk(
    host: str, conf: ResolvConf, candidates: Sequence[str], budget: float
) -> ResolverWalk:
    """Ask the first name server for each candidate (A) in glibc's order until one answers
    with an address; then whether the search domain that answered is a wildcard, and what
    every other configured server says of the answered name. Bounded by ``budget``."""
    # Servers dnspython can ask (a scoped IPv6 address such as fe80::1%eth0 cannot be).
    servers = [n for n in conf.nameservers if _usable_nameserver(n)] or ["127.0.0.1"]
    await import_off_loop(*_QUERY_MODULES)
    import dns.name

    ns = servers[0]
    per_query = min(float(conf.timeout), max(budget, 0.01))
    queries: list[WalkQuery] = []
    answered: str | None = None
    wildcard: str | None = None
    by_ns: list[NameserverAnswer] = []
    with anyio.move_on_after(budget):
        for name in candidates[:_MAX_WALK]:
            asked = _dns_name(name)
            if asked is None:
                continue  # too long once expanded (255 octets): glibc skips it too
            a = await _query(asked, ns, "A", per_query)
            queries.append(
                WalkQuery(name=name, rcode=a.rcode, addresses=a.addresses, elapsed_ms=a.elapsed_ms)
            )
            if a.rcode == "NOERROR":
                answered = name
                break
            if a.rcode not in ("NXDOMAIN", "NODATA"):
                break  # glibc stops its walk on a failure other than "no such name"
        if answered is not None and answered != host.rstrip("."):
            domain = answered[len(host.rstrip(".")) + 1 :]
            probe = _dns_name(f"netprobe-{secrets.token_hex(6)}.{domain}")
            check = None if probe is None else await _query(probe, ns, "A", per_query)
            if check is not None and check.rcode == "NOERROR":
                wildcard = domain
        if answered is not None and len(servers) > 1:
            answered_name = dns.name.from_text(answered)  # asked above: valid

            async def ask(server: str) -> None:
                by_ns.append(await _query(answered_name, server, "A", per_query))

            async with anyio.create_task_group() as tg:
                for server in servers:
                    tg.start_soon(ask, server)
    missed = [q for q in queries if q.name != answered]
    return ResolverWalk(
        nameserver=ns,
        ndots=conf.ndots,
        search=conf.search,
        candidates=tuple(candidates),
        queries=tuple(queries),
        answered=answered,
        wasted_queries=2 * len(missed),
        wasted_ms=round(sum(q.elapsed_ms or 0.0 for q in missed), 3),
        wildcard=wildcard,
        by_nameserver=tuple(sorted(by_ns, key=lambda q: servers.index(q.nameserver))),
    )


def _usable_nameserver(text: str) -> bool:
    try:
        parse_nameserver(text)
    except ValueError:
        return False
    return True


def _dns_name(text: str) -> dns.name.Name | None:
    """``text`` as a DNS name, or None when it cannot be one (a label over 63 octets, a name
    over 255, an empty label)."""
    import dns.exception
    import dns.name

    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException:
        return None


def _getaddrinfo(host: str, port: int) -> list[tuple[int, str]]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in infos]


def _unique_addresses(infos: Sequence[tuple[int, str]]) -> list[str]:
    seen: list[str] = []
    for _, addr in infos:
        if addr not in seen:
            seen.append(addr)
    return seen[:_MAX_ADDRESSES]


def _system_nameservers() -> tuple[str, ...]:
    import dns.resolver

    try:
        conf = dns.resolver.Resolver(configure=True)
    except (dns.resolver.NoResolverConfiguration, OSError):
        return ()
    return tuple(str(ns) for ns in conf.nameservers)


async def _ask_nameservers(
    host: str,
    nameservers: Sequence[str],
    budget: float,
    answers: list[NameserverAnswer],
    alive: list[str],
) -> None:
    """Query A and AAAA at every server concurrently, each bounded by ``budget``; each answer
    is appended to ``answers`` as it comes. With them, a control query per server: a server
    that answers it (whatever it answers) and not the name is alive, its upstream silent."""
    await import_off_loop(*_QUERY_MODULES)
    import dns.name

    name = dns.name.from_text(host)

    async def ask(ns: str, qtype: str) -> None:
        answers.append(await _query(name, ns, qtype, budget))

    async def control(ns: str) -> None:
        if await _answers_control(ns, budget):
            alive.append(ns)

    async with anyio.create_task_group() as tg:
        for ns in nameservers[:3]:
            tg.start_soon(control, ns)
            for qtype in ("A", "AAAA"):
                tg.start_soon(ask, ns, qtype)


async def _answers_control(ns: str, budget: float) -> bool:
    """Whether ``ns`` answers ``version.bind. CH TXT`` at all. BIND, dnsmasq, Unbound, PowerDNS
    and Knot answer it themselves (the version, or REFUSED / NOTIMP when hidden): it needs no
    upstream, so any answer proves the server up and reachable (RFC 4892)."""
    import dns.asyncbackend
    import dns.asyncquery
    import dns.exception
    import dns.message

    address, port = parse_nameserver(ns)
    backend = dns.asyncbackend.get_backend(sniffio.current_async_library())
    query = dns.message.make_query("version.bind.", "TXT", "CH")
    try:
        with anyio.fail_after(max(budget, 0.01)):
            await dns.asyncquery.udp(query, address, port=port, timeout=budget, backend=backend)
    except (TimeoutError, OSError, dns.exception.DNSException):
        return False
    return True


def _in_order(
    answers: Sequence[NameserverAnswer], nameservers: Sequence[str]
) -> list[NameserverAnswer]:
    """The answers in the order asked: server by server, A before AAAA."""
    order = {
        (ns, q): i for i, (ns, q) in enumerate((n, q) for n in nameservers for q in ("A", "AAAA"))
    }
    return sorted(answers, key=lambda a: order.get((a.nameserver, a.qtype), 0))


async def _query(name: dns.name.Name, ns: str, qtype: str, budget: float) -> NameserverAnswer:
    import dns.asyncbackend
    import dns.asyncquery
    import dns.exception
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdatatype

    address, port = parse_nameserver(ns)
    # The running loop's backend, named: dnspython's default is the first one it sniffed,
    # kept for the life of the process (asyncio, then trio, in one process would fail).
    backend = dns.asyncbackend.get_backend(sniffio.current_async_library())
    query = dns.message.make_query(name, dns.rdatatype.from_text(qtype))
    start = time.perf_counter()
    rcode: Rcode
    detail: str | None = None
    addresses: list[str] = []
    chain: list[str] = []
    try:
        with anyio.fail_after(max(budget, 0.01)):
            response = await dns.asyncquery.udp(
                query, address, port=port, timeout=budget, backend=backend
            )
            if response.flags & dns.flags.TC:
                response = await dns.asyncquery.tcp(
                    query, address, port=port, timeout=budget, backend=backend
                )
    except (TimeoutError, dns.exception.Timeout):
        rcode = "TIMEOUT"
        detail = f"no answer in {budget:.1f}s"
    except (OSError, dns.exception.DNSException) as exc:
        rcode = "ERROR"
        detail = f"{type(exc).__name__}: {exc}"
    else:
        code = response.rcode()
        chain = _cname_chain(response, name)
        if code == dns.rcode.NXDOMAIN:
            rcode = "NXDOMAIN"
        elif code == dns.rcode.SERVFAIL:
            rcode = "SERVFAIL"
        elif code == dns.rcode.REFUSED:
            rcode = "REFUSED"
        elif code == dns.rcode.NOERROR:
            for rrset in response.answer:
                if rrset.rdtype == dns.rdatatype.from_text(qtype):
                    addresses.extend(rd.to_text() for rd in rrset)
            rcode = "NOERROR" if addresses else "NODATA"
        else:
            rcode = "ERROR"
            detail = f"rcode {dns.rcode.to_text(code)}"
    return NameserverAnswer(
        nameserver=ns,
        qtype=qtype,
        rcode=rcode,
        addresses=addresses,
        elapsed_ms=elapsed_ms(start),
        detail=detail,
        cname_chain=chain,
    )


def _cname_chain(response: dns.message.Message, name: dns.name.Name) -> list[str]:
    """The CNAME targets followed from ``name`` in the answer section, in order (bounded:
    a looping chain stops)."""
    import dns.rdatatype

    aliases = {
        rrset.name: rrset[0].target
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.CNAME and len(rrset)
    }
    chain: list[str] = []
    current = name
    while current in aliases and len(chain) < 16:
        current = aliases[current]
        text = current.to_text(omit_final_dot=True)
        if text in chain:
            break
        chain.append(text)
    return chain


def _verdict(answers: Sequence[NameserverAnswer]) -> Rcode:
    """Fold the per-server answers into one rcode; the most definite answer wins."""
    codes = [a.rcode for a in answers]
    if "NOERROR" in codes:
        return "NOERROR"
    if "NXDOMAIN" in codes:
        return "NXDOMAIN"
    if codes and all(c in ("NODATA", "NXDOMAIN") for c in codes):
        return "NODATA"
    if "NODATA" in codes and all(c in ("NODATA", "TIMEOUT", "ERROR") for c in codes):
        return "NODATA"
    for code in ("SERVFAIL", "REFUSED", "ERROR"):
        if code in codes:
            return code
    return "TIMEOUT"


def _from_direct_answers(host: str, answers: list[NameserverAnswer], start: float) -> DnsStep:
    addresses: list[str] = []
    for ans in sorted(answers, key=lambda a: a.qtype):  # A before AAAA
        for addr in ans.addresses:
            if addr not in addresses:
                addresses.append(addr)
    if addresses:
        return DnsStep(
            status="ok",
            host=host,
            source="nameservers",
            addresses=addresses[:_MAX_ADDRESSES],
            queries=answers,
            rcode="NOERROR",
            duration_ms=elapsed_ms(start),
        )
    rcode = _verdict(answers) if answers else "TIMEOUT"
    return DnsStep(
        status="failed",
        reason=f"name servers answered {rcode}",
        host=host,
        source="nameservers",
        rcode=rcode,
        queries=answers,
        duration_ms=elapsed_ms(start),
    )
