"""Evidence in words: how each observation reads, for the rules, the ladder and the pool.

Pure (plain data in, sentences and :class:`~netprobe.report.Evidence` out), and below every
module that writes for people: ``classify/`` (fault summaries and evidence), ``render.py``
(the ladder), ``pool.py`` and the health page import it; it imports only the models. What
an observation *means* is decided in ``classify/``, never here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .report import Evidence
from .steps import (
    AddressAttempt,
    CertificateInfo,
    DatabaseResult,
    HttpResult,
    IcmpAddressResult,
    IcmpError,
    IcmpStep,
    TcpStep,
    TlsStep,
    TraceHop,
)

__all__ = [
    "Witnesses",
    "attempt_evidence",
    "cert_name",
    "chain_evidence",
    "connect_evidence",
    "database_error",
    "database_evidence",
    "database_line",
    "days",
    "describe_attempt",
    "describe_cert",
    "describe_echoes",
    "describe_hop",
    "describe_icmp_error",
    "issuer_name",
    "response_evidence",
    "server_name",
    "verify_evidence",
    "witness_line",
    "witnesses_of",
]


# -- TCP and the liveness witnesses -----------------------------------------------------------


def describe_attempt(a: AddressAttempt) -> str:
    """One line of evidence, e.g. ``SYN to 127.0.0.1:1 answered by RST after 0.1 ms``."""
    ms = f"{a.connect_ms:.1f} ms" if a.connect_ms is not None else "?"
    err = f" ({a.error.errno_name})" if a.error and a.error.errno_name else ""
    match a.outcome:
        case "established":
            return f"{a.endpoint} connected (SYN, SYN+ACK, ACK) in {ms}"
        case "refused":
            return f"SYN to {a.endpoint} answered by RST after {ms}{err}"
        case "reset":
            return f"{a.endpoint} completed the handshake, then reset the connection ({ms}){err}"
        case "timeout":
            why = a.error.message if a.error else "no answer"
            return f"SYN to {a.endpoint} got no answer within {ms} ({why})"
        case "host_unreachable" | "network_unreachable":
            where = (
                "at once, from the local routing table (no packet left)"
                if a.immediate
                else f"after {ms}"
            )
            icmp = describe_icmp_error(a.icmp_error) if a.icmp_error is not None else ""
            return f"connect to {a.endpoint} failed {where}{err}{icmp}"
        case _:
            msg = a.error.message if a.error else a.outcome
            return f"connect to {a.endpoint} failed after {ms}: {msg}{err}"


def describe_icmp_error(e: IcmpError) -> str:
    """The ICMP error of a failed connect, e.g. ``: ICMP 3/13 from 198.18.64.1 (...)``."""
    if e.origin == "local":
        return f": {e.meaning}"
    kind = "ICMPv6" if e.origin == "icmp6" else "ICMP"
    who = f" from {e.offender}" if e.offender else ""
    return f": {kind} {e.icmp_type}/{e.icmp_code}{who} ({e.meaning})"


def describe_hop(h: TraceHop) -> str:
    """One hop of a TCP trace, e.g. ``hop 2  198.18.65.2  time exceeded  0.4 ms``."""
    rtt = f"  {h.rtt_ms:.1f} ms" if h.rtt_ms is not None else ""
    match h.outcome:
        case "silent":
            return f"hop {h.ttl}  *  no answer"
        case "reached":
            return f"hop {h.ttl}  {h.address}  the destination ({h.meaning}){rtt}"
        case "time_exceeded":
            return f"hop {h.ttl}  {h.address}  time exceeded{rtt}"
        case "unreachable":
            kind = "ICMPv6" if h.address and ":" in h.address else "ICMP"
            return (
                f"hop {h.ttl}  {h.address}  rejects: {kind} {h.icmp_type}/{h.icmp_code} "
                f"({h.meaning}){rtt}"
            )
        case _:
            return f"hop {h.ttl}  not sent: {h.meaning}"


def attempt_evidence(attempts: Sequence[AddressAttempt]) -> list[Evidence]:
    """The evidence of connect attempts: one item per address, with its errno and timing."""
    return [
        Evidence(
            step="tcp",
            observation=describe_attempt(a),
            data={
                "address": a.address,
                "port": a.port,
                "outcome": a.outcome,
                "errno": a.error.errno_name if a.error else None,
                "connect_ms": a.connect_ms,
                "immediate": a.immediate,
                **(
                    {
                        "icmp_type": a.icmp_error.icmp_type,
                        "icmp_code": a.icmp_error.icmp_code,
                        "icmp_from": a.icmp_error.offender,
                    }
                    if a.icmp_error is not None
                    else {}
                ),
            },
        )
        for a in attempts
    ]


def connect_evidence(
    tcp: TcpStep, icmp: IcmpStep | None, speaker: AddressAttempt
) -> list[Evidence]:
    """The evidence of a failed connect: every attempt, and what the echoes to the address
    that speaks for the step met (an ICMP error names the router or firewall that sent it).
    For a silent SYN the liveness witnesses say it instead (:func:`witnesses_of`)."""
    evidence = attempt_evidence(tcp.attempts)
    if icmp is not None and speaker.outcome != "timeout":
        echoes = icmp.result_for(speaker.address)
        if echoes is not None and echoes.sent:
            evidence.append(
                Evidence(
                    step="icmp",
                    observation=describe_echoes(echoes),
                    data={"address": speaker.address, "unreachable": echoes.unreachable},
                )
            )
    return evidence


def describe_echoes(r: IcmpAddressResult) -> str:
    """One line for the echoes to one address, e.g. ``ping 10.0.0.5 0/3 answered``."""
    if r.pending and r.pending == r.sent:
        # None had its answer or its timeout yet: not a loss, the diagnosis did not wait.
        echoes = "echo" if r.pending == 1 else "echoes"
        text = f"ping {r.address} not waited for ({r.pending} {echoes} still awaiting a reply)"
    else:
        # Pending echoes are neither answered nor lost: out of what had an outcome.
        text = f"ping {r.address} {r.received}/{r.sent - r.pending} answered"
    if r.rtt_avg_ms is not None:
        text += f" (rtt min/avg/max {r.rtt_min_ms:.2f}/{r.rtt_avg_ms:.2f}/{r.rtt_max_ms:.2f} ms)"
    if r.pending and r.pending != r.sent:
        text += f", {r.pending} not waited for"
    if r.unreachable:
        who = f" from {r.unreachable_from}" if r.unreachable_from else ""
        text += f"; ICMP error{who}: {r.unreachable}"
    return text


@dataclass(frozen=True)
class Witnesses:
    """What the liveness witnesses say about one address whose SYN went unanswered."""

    alive: bool = False
    tried: bool = False
    lines: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    not_tried: tuple[str, ...] = ()


def witnesses_of(tcp: TcpStep, icmp: IcmpStep | None, address: str) -> Witnesses:
    """Pure: did an echo reply or a TCP answer from another port prove ``address`` alive?"""
    alive = tried = False
    lines: list[str] = []
    evidence: list[Evidence] = []
    not_tried: list[str] = []
    echoes = icmp.result_for(address) if icmp is not None and icmp.status != "skipped" else None
    if echoes is not None and echoes.sent:
        tried = True
        alive = alive or echoes.received > 0
        line = describe_echoes(echoes)
        lines.append(f"ping {echoes.received}/{echoes.sent} answered")
        evidence.append(
            Evidence(
                step="icmp",
                observation=line,
                data={
                    "address": address,
                    "sent": echoes.sent,
                    "received": echoes.received,
                    "pending": echoes.pending,
                    "unreachable": echoes.unreachable,
                },
            )
        )
    elif icmp is None:
        not_tried.append("ICMP echo was turned off (icmp=False)")
    elif icmp.status == "skipped":
        not_tried.append(f"ICMP echo was not possible: {icmp.reason}")
    canaries = [c for c in tcp.canary if c.address == address]
    for c in canaries:
        tried = True
        match c.outcome:
            case "refused":
                alive = True
                lines.append(f"{c.endpoint} answered RST")
            case "established":
                alive = True
                lines.append(f"{c.endpoint} answered SYN+ACK")
            case "timeout":
                lines.append(f"{c.endpoint} silent too")
            case _:
                lines.append(f"{c.endpoint}: {c.outcome.replace('_', ' ')}")
        evidence.append(
            Evidence(
                step="tcp",
                observation=f"canary: {describe_attempt(c)}",
                data={"address": c.address, "port": c.port, "outcome": c.outcome},
            )
        )
    if not canaries:
        if not tcp.canary_enabled:
            not_tried.append("the canary connect to another port was turned off (canary=False)")
        elif not alive:
            not_tried.append("no canary connect was made (the connect timeout was too short)")
    return Witnesses(alive, tried, tuple(lines), tuple(evidence), tuple(not_tried))


def witness_line(tcp: TcpStep, icmp: IcmpStep | None, port: int) -> str | None:
    """The witness that decided, for the ladder: ``ping 0/3 answered; ... → port 81 filtered``."""
    silent = [a for a in tcp.attempts if a.outcome == "timeout"]
    if not silent:
        return None
    a = silent[0]
    w = witnesses_of(tcp, icmp, a.address)
    seen = "; ".join(w.lines)
    if w.alive:
        return f"{seen} → host is up → port {port} filtered"
    if w.tried:
        return f"{seen} → no sign of life from {a.address}"
    return "no liveness witness: " + "; ".join(w.not_tried)


# -- TLS --------------------------------------------------------------------------------------


def cert_name(cert: CertificateInfo) -> str:
    """The name an operator knows a certificate by: its CN, else its first SAN, else subject."""
    return cert.common_name or next(iter(cert.dns_names + cert.ip_addresses), cert.subject)


def issuer_name(cert: CertificateInfo) -> str:
    """The issuer's common name (from the RFC 4514 issuer), else the whole issuer."""
    for part in re.split(r"(?<!\\),", cert.issuer):
        key, sep, value = part.partition("=")
        if sep and key.strip().upper() == "CN":
            return value.replace("\\,", ",")
    return cert.issuer


def describe_cert(cert: CertificateInfo) -> str:
    """``certificate for a.example (a.example, *.a.example), issued by CN=..., valid until ...``."""
    names = cert.dns_names + cert.ip_addresses
    who = cert_name(cert)
    listed = f" ({', '.join(names)})" if names else " (no subjectAltName)"
    return (
        f"certificate for {who}{listed}, issued by {cert.issuer}, valid "
        f"{cert.not_before:%Y-%m-%d %H:%M} to {cert.not_after:%Y-%m-%d %H:%M} UTC"
    )


def chain_evidence(tls: TlsStep) -> list[Evidence]:
    """The evidence of the presented chain: one item per certificate, leaf first."""
    out = []
    for i, cert in enumerate(tls.chain):
        out.append(
            Evidence(
                step="tls",
                observation=("presented " if i == 0 else f"chain[{i}]: ") + describe_cert(cert),
                data={
                    "subject": cert.subject,
                    "issuer": cert.issuer,
                    "not_before": cert.not_before.isoformat(),
                    "not_after": cert.not_after.isoformat(),
                    "days_left": cert.days_left,
                    "serial": cert.serial,
                    "sha256": cert.sha256,
                    "dns_names": ", ".join(cert.dns_names),
                    "ip_addresses": ", ".join(cert.ip_addresses),
                },
            )
        )
    return out


def verify_evidence(tls: TlsStep) -> Evidence:
    """OpenSSL's verification error, as evidence."""
    return Evidence(
        step="tls",
        observation=f"verification failed: {tls.verify_message or 'unknown'} "
        f"(X509_V_ERR code {tls.verify_code})",
        data={"verify_code": tls.verify_code, "verify_message": tls.verify_message},
    )


def days(days: float) -> str:
    """``3 days``, ``1 day``, ``5 hours``: a certificate's time left or past, in words."""
    d = abs(days)
    if d < 1:
        return f"{d * 24:.0f} hours"
    return f"{d:.0f} day{'s' if round(d) != 1 else ''}"


# -- HTTP -------------------------------------------------------------------------------------


def response_evidence(http: HttpResult) -> Evidence:
    """An HTTP answer as evidence: request line, status, the headers of interest."""
    shown = "; ".join(f"{k}: {v}" for k, v in http.headers.items())
    return Evidence(
        step="application",
        observation=f"{http.method} {http.url} -> {http.status} {http.reason or ''}".rstrip()
        + (f" ({shown})" if shown else ""),
        data={
            "status": http.status,
            "reason": http.reason,
            "http_version": http.http_version,
            "location": http.location,
            "retry_after": http.retry_after,
            "body_preview": http.body_preview,
        },
    )


# -- Databases --------------------------------------------------------------------------------

_SERVER_NAMES = {
    "mariadb": "MariaDB",
    "mysql": "MySQL",
    "postgresql": "PostgreSQL",
    "pgbouncer": "PgBouncer",
    "redis": "Redis",
}


def server_name(r: DatabaseResult) -> str:
    """The server's product name for sentences: ``MariaDB``, ``PostgreSQL``..."""
    if r.server is None and r.protocol == "mysql":
        # An error sent instead of the greeting (1129, 1040) does not say which of the two.
        return "MySQL/MariaDB"
    return _SERVER_NAMES.get(r.server or r.protocol, r.protocol)


def database_error(r: DatabaseResult) -> str:
    """The error the database sent, as written (``1040 Too many connections``, ``-LOADING``)."""
    if r.protocol == "redis":
        return f"-{r.error_message or r.error_code}"
    return " ".join(part for part in (r.error_code, r.error_message) if part)


def database_evidence(r: DatabaseResult) -> list[Evidence]:
    """The evidence of a database conversation: what the server said, and the notes."""
    data: dict[str, str | int | float | bool | None] = {
        "protocol": r.protocol,
        "outcome": r.outcome,
        "phase": r.phase,
    }
    for key in (
        "server",
        "version",
        "error_code",
        "error_errno",
        "sqlstate",
        "greeting_ms",
        "looks_like",
        "first_bytes",
        "login_user",
        "probe_user",
    ):
        value = getattr(r, key)
        if value is not None:
            data[key] = value
    if r.error_fields.get("routine"):
        data["routine"] = r.error_fields["routine"]
    if r.outcome == "server_error":
        text = f"{server_name(r)} sent error {database_error(r)} during the {r.phase}"
    elif r.outcome == "timeout":
        text = f"nothing complete arrived during the {r.phase}"
    elif r.outcome == "mismatch":
        text = f"first bytes look like {r.looks_like}"
        if r.error_message:  # the parser's reason: "a MySQL packet cannot be N bytes long"...
            text += f"; {r.error_message}"
    else:
        text = f"{r.outcome} during the {r.phase}"
    if r.error_fields.get("detail"):
        text += f" (detail: {r.error_fields['detail']})"
    out = [Evidence(step="application", observation=text, data=data)]
    for note in r.notes:
        out.append(Evidence(step="application", observation=note))
    return out


def database_line(r: DatabaseResult) -> str:
    """One line for the ladder: what the server said."""
    server = {
        "mariadb": "MariaDB",
        "mysql": "MySQL",
        "postgresql": "PostgreSQL",
        "pgbouncer": "PgBouncer",
        "redis": "Redis",
    }.get(r.server or r.protocol, r.protocol)
    name = f"{server} {r.version}" if r.version else server
    unknown = next(
        (
            n.removesuffix(" (PING answered PONG)")
            for n in r.notes
            if n.startswith("version unknown")
        ),
        None,
    )
    unknown = unknown if r.version is None else None
    if r.outcome == "validated":
        # Redis with a password only: the ACL user is "default".
        user = r.login_user or ("default" if r.protocol == "redis" else "?")
        line = f"{name}: logged in as {user}, {r.validation} ok"
        return line + (f" ({unknown})" if unknown else "")
    if r.outcome == "ready":
        extra = []
        if r.connection_id is not None:
            extra.append(f"connection id {r.connection_id}")
        if r.auth_plugin:
            extra.append(f"auth {r.auth_plugin}")
        if r.tls_used:
            extra.append("TLS")
        elif r.tls_supported:
            extra.append("TLS offered")
        if r.error_code == "NOAUTH":
            extra.append("password required")
        if unknown:
            extra.append(unknown)
        return f"{name} is up" + (f" ({', '.join(extra)})" if extra else "")
    if r.outcome == "server_error":
        if r.protocol == "redis":
            return f"{name}: -{r.error_message or r.error_code}"
        return f"{name}: error {r.error_code or '(no code)'} {r.error_message or ''}".strip()
    if r.outcome == "mismatch":
        return f"not {server}: the peer sent {r.looks_like}"
    if r.outcome == "timeout":
        return f"no answer from {server} within the read timeout ({r.phase})"
    if r.outcome == "tls_failed" and r.tls is not None:
        return f"{name} offered TLS; the handshake failed (see tls): not logged in"
    if r.outcome == "tls_failed":
        return f"{name}: {r.error_message or 'TLS could not be negotiated'}"
    return f"{name}: {r.outcome} {r.error_message or ''}".strip()
