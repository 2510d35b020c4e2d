"""DNS rules: getaddrinfo's error plus the direct answers of the name servers."""

from __future__ import annotations

import socket

from ..options import parse_nameserver
from ..report import Evidence, Fault, ReportWarning
from ..steps import DnsStep, NameserverAnswer
from ._observations import Observations, fault, warning

__all__ = ["dns_fault", "dns_warnings"]

# glibc's getaddrinfo errors, when no direct answer settles the question.
_GAI_CODES: dict[int, str] = {
    socket.EAI_NONAME: "dns.nxdomain",
    socket.EAI_AGAIN: "dns.timeout",
    socket.EAI_FAIL: "dns.servfail",
}
if hasattr(socket, "EAI_NODATA"):
    _GAI_CODES[socket.EAI_NODATA] = "dns.no_address"
if hasattr(socket, "EAI_ADDRFAMILY"):
    _GAI_CODES[socket.EAI_ADDRFAMILY] = "dns.no_address"

_RCODE_CODES = {
    "NXDOMAIN": "dns.nxdomain",
    "NODATA": "dns.no_address",
    "SERVFAIL": "dns.servfail",
    "REFUSED": "dns.refused",
    "ERROR": "dns.servfail",
    "TIMEOUT": "dns.timeout",
}


def dns_fault(obs: Observations) -> Fault | None:
    """The ``dns.*`` fault of a failed resolution, or None when the name resolved."""
    step = obs.dns
    if step is None or step.status != "failed":
        return None
    code = _code(step)
    host = step.host
    evidence = _evidence(step)
    servers = ", ".join(sorted({q.nameserver for q in step.queries})) or "the system resolver"
    target = _alias_target(step)
    if code == "dns.nxdomain":
        if target is not None:
            return fault(
                code,
                f"The name {host!r} is an alias (CNAME) of {target!r}, which does not exist "
                f"(NXDOMAIN from {servers}).",
                evidence,
                [
                    f"The CNAME dangles: create {target!r}, or point {host!r} at a name "
                    "that exists (the fix is in the target's zone, not the alias's).",
                    f"Compare with: dig {host} A; dig {target} A",
                ],
            )
        return fault(
            code,
            f"The name {host!r} does not exist (NXDOMAIN from {servers}).",
            evidence,
            [
                f"Check the spelling of {host!r} and the search domains in /etc/resolv.conf.",
                "Check that the DNS record (or the Kubernetes Service / Compose service) exists.",
                f"Compare with: dig {host} A; dig {host} AAAA",
            ],
        )
    if code == "dns.no_address":
        if target is not None:
            return fault(
                code,
                f"The name {host!r} is an alias (CNAME) of {target!r}, which exists but has "
                f"no A or AAAA record (NODATA from {servers}).",
                evidence,
                [
                    f"Give {target!r} an address record, or point {host!r} elsewhere.",
                    f"Compare with: dig {target} ANY",
                ],
            )
        return fault(
            code,
            f"The name {host!r} exists but has no A or AAAA record (NODATA from {servers}).",
            evidence,
            [
                "The record may be of another type only (MX, TXT).",
                f"Compare with: dig {host} ANY",
            ],
        )
    if code == "dns.servfail":
        return fault(
            code,
            f"The name server ({servers}) failed to resolve {host!r} (SERVFAIL).",
            evidence,
            [
                "The authoritative servers of the zone may be down or DNSSEC validation failing.",
                f"Compare with: dig +trace {host}; dig +cd {host} (works: DNSSEC fails)",
            ],
        )
    if code == "dns.refused":
        refusing = ", ".join(_servers_answering(step, "REFUSED"))
        return fault(
            code,
            f"The name server ({refusing}) refused to answer for {host!r} (REFUSED): it does "
            "not serve this client, or not this zone.",
            evidence,
            [
                "The resolver's access list (BIND allow-query / allow-recursion, a cloud "
                "resolver reached from outside its network) does not include this host.",
                "Check that /etc/resolv.conf names the resolver meant for this network.",
            ],
        )
    if code == "dns.upstream_timeout":
        alive = ", ".join(step.alive_nameservers)
        hung = sorted({q.qtype for q in _hung(step)})
        answered = [q for q in step.queries if q.rcode == "NOERROR" and q.qtype not in hung]
        if answered:
            got = ", ".join(dict.fromkeys(a for q in answered for a in q.addresses))
            summary = (
                f"The name server ({alive}) answered the {answered[0].qtype} query for "
                f"{host!r} ({got}) but not the {'/'.join(hung)} query in time: it waits on "
                "its upstream for it, and getaddrinfo waits for both."
            )
        else:
            summary = (
                f"The name server ({alive}) is alive but gave no answer for {host!r} in time: "
                "it waits on its upstream (its forwarders, or the zone's authoritative servers)."
            )
        hints = [
            f"The resolver {alive} answers, so the path to it works: look at what it "
            "forwards this name to, and whether that upstream is reachable from it.",
            f"Compare with: dig @{_dig_server(alive)} {host} {hung[0] if hung else 'A'}",
        ]
        if answered:
            hints.append(
                f"A resolver that forwards {'/'.join(hung)} for a name it answers itself "
                "(dnsmasq with an IPv4-only host-record) stalls every lookup: give the name "
                "both records, or answer the other type locally."
            )
        return fault(code, summary, evidence, hints)
    return fault(
        "dns.timeout",
        f"No name server answered for {host!r} within the DNS budget ({servers}).",
        evidence,
        [
            "Check that the name servers in /etc/resolv.conf are reachable (UDP and TCP port 53).",
            "Is this host's network up at all? Try a well-known internal name.",
        ],
    )


def _hung(step: DnsStep) -> list[NameserverAnswer]:
    """The queries that got no answer from a server that is alive (its control answered)."""
    return [
        q for q in step.queries if q.rcode == "TIMEOUT" and q.nameserver in step.alive_nameservers
    ]


def _code(step: DnsStep) -> str:
    # Silence from a server that answers its control query: its upstream is silent. Also
    # when the other type answered (NOERROR): getaddrinfo waits for A and AAAA both.
    if step.rcode in ("TIMEOUT", "NOERROR") and _hung(step):
        return "dns.upstream_timeout"
    if step.rcode in _RCODE_CODES:
        return _RCODE_CODES[step.rcode]
    if step.error is not None and step.error.errno in _GAI_CODES:
        return _GAI_CODES[step.error.errno]
    return "dns.timeout"


def _alias_target(step: DnsStep) -> str | None:
    """The end of the CNAME chain the decisive answers led through, if any."""
    for q in step.queries:
        if q.rcode == step.rcode and q.cname_chain:
            return q.cname_chain[-1]
    return None


def _servers_answering(step: DnsStep, rcode: str) -> list[str]:
    return sorted({q.nameserver for q in step.queries if q.rcode == rcode})


def _dig_server(nameserver: str) -> str:
    """``dig``'s form of a name server: ``127.0.0.1 -p 5353`` for ``127.0.0.1:5353``."""
    try:
        host, port = parse_nameserver(nameserver.split(",")[0].strip())
    except ValueError:
        return nameserver
    return host if port == 53 else f"{host} -p {port}"


def _evidence(step: DnsStep) -> list[Evidence]:
    out: list[Evidence] = []
    if step.error is not None:
        out.append(
            Evidence(
                step="dns",
                observation=f"getaddrinfo({step.host!r}) failed: {step.error.message}",
                data={
                    "errno": step.error.errno,
                    "type": step.error.type,
                    "elapsed_ms": step.duration_ms,
                },
            )
        )
    for q in step.queries:
        text = f"{q.qtype} query for {step.host!r} to {q.nameserver}: {q.rcode}"
        if q.cname_chain:
            text += " for " + " -> ".join(repr(n) for n in q.cname_chain) + " (CNAME)"
        if q.detail:
            text += f" ({q.detail})"
        out.append(
            Evidence(
                step="dns",
                observation=text,
                data={
                    "nameserver": q.nameserver,
                    "qtype": q.qtype,
                    "rcode": q.rcode,
                    "elapsed_ms": q.elapsed_ms,
                    **({"cname_target": q.cname_chain[-1]} if q.cname_chain else {}),
                },
            )
        )
    if step.walk is not None:
        for w in step.walk.queries:
            out.append(
                Evidence(
                    step="dns",
                    observation=f"search walk: A query for {w.name!r} to "
                    f"{step.walk.nameserver}: {w.rcode}",
                    data={"name": w.name, "rcode": w.rcode, "elapsed_ms": w.elapsed_ms},
                )
            )
    if _hung(step):
        out.append(
            Evidence(
                step="dns",
                observation="control query (CHAOS version.bind) answered by "
                + ", ".join(step.alive_nameservers)
                + ": the server is up and reachable",
                data={"alive_nameservers": ", ".join(step.alive_nameservers)},
            )
        )
    return out


def _names(names: list[str], most: int = 3) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def dns_warnings(obs: Observations) -> list[ReportWarning]:
    """What the resolver's walk shows: names wasted before the answer, a wildcard search
    domain answering, name servers that disagree."""
    step = obs.dns
    walk = step.walk if step is not None else None
    if step is None or walk is None:
        return []
    out: list[ReportWarning] = []
    host = step.host.rstrip(".")
    if walk.wildcard and walk.answered and walk.answered != host:
        got = ", ".join(next((q.addresses for q in walk.queries if q.name == walk.answered), ()))
        out.append(
            warning(
                "dns.search_wildcard",
                f"{host!r} was answered as {walk.answered!r} ({got}): the search domain "
                f"{walk.wildcard!r} answers any name (a wildcard record), so {host!r} itself "
                f"was never asked and the address may be another host's. Write {host + '.'!r} "
                f"(a trailing dot) or lower ndots (now {walk.ndots}).",
            )
        )
    missed = [q.name for q in walk.queries if q.name != walk.answered]
    if walk.answered and missed and not walk.wildcard:
        out.append(
            warning(
                "dns.search_walk",
                f"Each lookup of {host!r} first asks {len(missed)} search-list "
                f"name{'s' if len(missed) > 1 else ''} that do not exist ({_names(missed)}): "
                f"{walk.wasted_queries} wasted queries, {walk.wasted_ms:.1f} ms here "
                f"(ndots:{walk.ndots}). Write {host + '.'!r} (a trailing dot: asked as is, "
                "once) or lower ndots.",
            )
        )
    said: dict[str, list[str]] = {}
    for q in walk.by_nameserver:
        answer = ", ".join(sorted(q.addresses)) if q.rcode == "NOERROR" else q.rcode
        if q.rcode in ("NOERROR", "NXDOMAIN", "NODATA"):
            said.setdefault(answer, []).append(q.nameserver)
    if len(said) > 1:
        parts = "; ".join(
            f"{', '.join(ns)} {'say' if len(ns) > 1 else 'says'} {answer}"
            for answer, ns in said.items()
        )
        out.append(
            warning(
                "dns.nameservers_disagree",
                f"The name servers disagree on {walk.answered!r}: {parts} (split horizon, "
                "or one serves a stale zone): the application gets whichever it asks.",
            )
        )
    return out
