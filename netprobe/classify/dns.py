"""DNS rules: getaddrinfo's error plus the direct answers of the name servers."""

from __future__ import annotations

import socket

from ..report import Evidence, Fault
from ..steps import DnsStep
from ._observations import Observations, fault

__all__ = ["dns_fault"]

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
    "REFUSED": "dns.servfail",
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
    if code == "dns.nxdomain":
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
        return fault(
            code,
            f"The name {host!r} exists but has no A or AAAA record (NODATA from {servers}).",
            evidence,
            [
                "The record may be of another type only (CNAME to nowhere, MX, TXT).",
                f"Compare with: dig {host} ANY",
            ],
        )
    if code == "dns.servfail":
        return fault(
            code,
            f"The name server ({servers}) failed to resolve {host!r} (SERVFAIL or REFUSED).",
            evidence,
            [
                "The authoritative servers of the zone may be down or DNSSEC validation failing.",
                "A REFUSED answer means this resolver does not serve this client or zone.",
            ],
        )
    return fault(
        "dns.timeout",
        f"No name server answered for {host!r} within the DNS budget ({servers}).",
        evidence,
        [
            "Check that the name servers in /etc/resolv.conf are reachable (UDP and TCP port 53).",
            "Is this host's network up at all? Try a well-known internal name.",
        ],
    )


def _code(step: DnsStep) -> str:
    if step.rcode in _RCODE_CODES:
        return _RCODE_CODES[step.rcode]
    if step.error is not None and step.error.errno in _GAI_CODES:
        return _GAI_CODES[step.error.errno]
    return "dns.timeout"


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
                },
            )
        )
    return out
