"""The human ladder: one line per rung, then the verdict, the evidence and the hints.

Pure: a Report in, rich markup lines out (no I/O). User-controlled text is escaped.
"""

from __future__ import annotations

from rich.markup import escape

from .describe import describe_attempt, describe_echoes, describe_hop, witness_line
from .report import Report
from .steps import ApplicationStep, DnsStep, IcmpStep, ProxyStep, Step, TcpStep, TlsStep

__all__ = ["render_ladder", "step_line", "waterfall_phases"]

_MARK = {"ok": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[dim]-[/]"}
_RUNGS = ("dns", "icmp", "tcp", "proxy", "tls", "application")


def render_ladder(report: Report, *, verbose: bool = False) -> list[str]:
    """The ladder of one report, as rich markup lines."""
    t = report.target
    lines = [f"[bold]{escape(t.url)}[/]  [dim]({t.protocol}{', tls' if t.tls else ''})[/]"]
    present: dict[str, Step] = {s.name: s for s in report.steps}
    for rung in _RUNGS:
        step = present.get(rung)
        if step is None:
            if rung in ("tls",) and not t.tls:
                continue
            if rung == "application" and t.protocol == "tcp":
                continue
            if rung in ("icmp", "proxy"):
                continue
            cut = report.deadline
            if cut is not None and cut.rung == rung:
                what = f"the total deadline ({cut.timeout_s:g} s) was reached"
                if rung == "application":
                    what = f"{t.protocol}: {what}"
                lines.append(f"  {_MARK['failed']} {rung:<11} {escape(what)}")
                continue
            lines.append(f"  [dim]·[/] {rung:<11} [dim]not reached[/]")
            continue
        lines.append(f"  {_MARK[step.status]} {rung:<11} {step_line(step)}")
        if isinstance(step, TcpStep):
            port = step.attempts[0].port if step.attempts else t.port  # the proxy's, via one
            lines.extend(_witness_lines(step, present.get("icmp"), port))
            lines.extend(_trace_lines(step))
            lines.extend(_pmtu_lines(step))
    lines.extend(_waterfall(report))
    if report.fault is None:
        lines.append(f"[bold green]HEALTHY[/] in {report.timings_ms.total or 0:.1f} ms")
    else:
        f = report.fault
        lines.append(
            f"[bold red]FAULT[/] [bold]{f.code}[/] [dim](layer {f.layer})[/]: {escape(f.summary)}"
        )
        shown = f.evidence if verbose else f.evidence[:6]
        for ev in shown:
            lines.append(f"  [dim]evidence:[/] {escape(ev.observation)}")
        if len(f.evidence) > len(shown):
            lines.append(f"  [dim]... {len(f.evidence) - len(shown)} more (use --verbose)[/]")
        for hint in f.hints:
            lines.append(f"  [cyan]hint:[/] {escape(hint)}")
    for w in report.warnings:
        lines.append(f"[yellow]warning[/] {w.code}: {escape(w.message)}")
    return lines


def waterfall_phases(report: Report) -> list[tuple[str, float]]:
    """httpstat-style phases (ms) from the curl-style cumulative timings of a report.

    The last phase is the content ``transfer`` when a first byte was seen; otherwise it is
    what the diagnosis still waited for after its last mark (``finish``: other addresses,
    witnesses, the local socket scan).
    """
    tm = report.timings_ms
    last = "transfer" if tm.first_byte is not None else "finish"
    marks = [
        ("dns", tm.dns),
        ("connect", tm.tcp_connect),
        ("tls", tm.tls_handshake),
        ("server", tm.first_byte),
        (last, tm.total),
    ]
    out: list[tuple[str, float]] = []
    prev = 0.0
    for name, value in marks:
        if value is None:
            continue
        out.append((name, max(0.0, value - prev)))
        prev = max(prev, value)
    return out


def _waterfall(report: Report) -> list[str]:
    phases = waterfall_phases(report)
    if len(phases) < 2:
        return []
    text = " | ".join(f"{name} {ms:.1f}" for name, ms in phases)
    line = f"  [dim]timing ms: {text} = {report.timings_ms.total or 0:.1f}"
    setup = report.timings_ms.setup
    if setup is not None and setup >= 1.0:
        # A first diagnosis in a process: its imports and TLS context, before the clock.
        line += f" (+ setup {setup:.1f}: netprobe's first imports, not the network)"
    return [line + "[/]"]


def step_line(step: Step) -> str:
    """One line describing a rung's result."""
    if isinstance(step, DnsStep):
        return _dns_line(step)
    if isinstance(step, IcmpStep):
        return _icmp_line(step)
    if isinstance(step, TcpStep):
        return _tcp_line(step)
    if isinstance(step, TlsStep):
        return _tls_line(step)
    if isinstance(step, ProxyStep):
        return _proxy_line(step)
    return _application_line(step)


def _proxy_line(step: ProxyStep) -> str:
    """``via http://proxy.lab:3128 (HTTPS_PROXY): CONNECT api.lab:443 → 200 Connection
    established``."""
    head = f"via {step.url} ({step.source}"
    head += ", with credentials)" if step.credentials_sent else ")"
    if step.status == "skipped":
        text = f"{head}: {step.reason}"
    elif step.mode == "forward":
        text = f"{head}: the request goes to the proxy with its absolute URL"
    elif step.http_status is not None:
        said = f"{step.http_status} {step.http_reason or ''}".rstrip()
        squid = step.headers.get("x-squid-error")
        text = f"{head}: {step.request} → {said}" + (f" ({squid})" if squid else "")
    else:
        text = f"{head}: {step.request}: {step.reason or step.failure or 'failed'}"
    timing = f" [dim]({step.duration_ms:.1f} ms)[/]" if step.duration_ms is not None else ""
    return escape(text) + timing


def _dns_line(step: DnsStep) -> str:
    if step.source == "literal":
        return f"[dim]{escape(step.host)} is an IP address: no lookup[/]"
    if step.status == "ok":
        addrs = ", ".join(step.addresses)
        walk = step.walk
        via = ""
        if walk is not None and walk.answered and walk.answered != step.host.rstrip("."):
            via = f" as {escape(walk.answered)}"  # a search domain answered
        elif step.answered_by == "hosts":
            via = " [dim](hosts file)[/]"
        timing = f"[dim]({step.duration_ms or 0:.1f} ms)[/]"
        return f"{escape(step.host)} → {escape(addrs)}{via} {timing}"
    # NOERROR for a failed lookup: one type answered, the other hung (getaddrinfo waits for
    # both): the reason (getaddrinfo's error) says more than the rcode.
    said = step.rcode if step.rcode not in (None, "NOERROR") else None
    return f"{escape(step.host)}: {escape(said or (step.reason or 'failed'))}"


def _icmp_line(step: IcmpStep) -> str:
    if step.status == "skipped" or not step.results:
        return f"[dim]skipped: {escape(step.reason or '')}[/]"
    text = "; ".join(describe_echoes(r) for r in step.results)
    engine = f" [dim]({escape(step.engine)} socket)[/]" if step.engine else ""
    return escape(text) + engine


def _witness_lines(tcp: TcpStep, icmp: Step | None, port: int) -> list[str]:
    """The liveness witness that decided a silent SYN."""
    line = witness_line(tcp, icmp if isinstance(icmp, IcmpStep) else None, port)
    return [f"    [dim]witness:[/] {escape(line)}"] if line else []


def _pmtu_lines(tcp: TcpStep) -> list[str]:
    """The MTU black hole test, after an exchange stalled on the established connection."""
    probe = tcp.pmtu_probe
    if probe is None:
        return []
    what = "TLS handshake" if probe.exchange == "tls_handshake" else "HTTP exchange"
    result = probe.outcome.replace("_", " ")
    if probe.control:
        result += f", at the normal MSS: {probe.control.replace('_', ' ')}"
    return [
        f"    [dim]mtu:[/] the {what} stalled; again with TCP_MAXSEG {probe.mss}: {escape(result)}"
    ]


def _trace_lines(tcp: TcpStep) -> list[str]:
    """The TCP trace of a failed connect: one line per hop."""
    trace = tcp.trace
    if trace is None:
        return []
    cut = ", cut by the total deadline" if trace.partial else ""
    dest = f"[{trace.address}]" if ":" in trace.address else trace.address
    head = f"    [dim]path:[/] TCP trace to {escape(dest)}:{trace.port}{cut}"
    return [head, *(f"      {escape(describe_hop(h))}" for h in trace.hops)]


def _tcp_line(step: TcpStep) -> str:
    return escape("; ".join(describe_attempt(a) for a in step.attempts))


def _tls_line(step: TlsStep) -> str:
    leaf = step.chain[0] if step.chain else None
    cert = ""
    if leaf is not None:
        names = ", ".join((leaf.dns_names + leaf.ip_addresses)[:3]) or leaf.subject
        cert = (
            f"; cert {names}, {leaf.days_left:.0f} days left"
            if leaf.days_left >= 0
            else (f"; cert {names}, EXPIRED {-leaf.days_left:.0f} days ago")
        )
    if step.client_cert_requested:
        sent = {True: "sent", False: "none sent", None: "sent?"}[step.client_cert_sent]
        cert += f"; client cert requested, {sent}"
    timing = f" [dim]({step.duration_ms:.1f} ms)[/]" if step.duration_ms is not None else ""
    if step.status == "ok":
        alpn = f" alpn {step.alpn}" if step.alpn else ""
        unverified = " [yellow](not verified)[/]" if not step.verified else ""
        head = escape(f"{step.version or ''} {step.cipher or ''}{alpn}".strip() + cert)
        return head + unverified + timing
    text = step.reason or (step.error.message if step.error else step.status)
    return escape(text + cert) + timing


def _application_line(step: ApplicationStep) -> str:
    if step.database is not None:
        db = step.database
        timing = f" [dim]({db.greeting_ms:.1f} ms)[/]" if db.greeting_ms is not None else ""
        return escape(step.reason or db.outcome) + timing
    if step.http is not None:
        return _http_line(step)
    if step.grpc is not None:
        return _grpc_line(step)
    if step.status == "ok":
        return escape(f"{step.protocol}: {step.reason or 'ok'}")
    return escape(f"{step.protocol}: {step.reason or (step.error.message if step.error else '')}")


def _http_line(step: ApplicationStep) -> str:
    http = step.http
    assert http is not None
    if http.status is not None:
        text = f"{http.method} {http.url} → {http.http_version or 'HTTP'} {http.status}"
        text += f" {http.reason}" if http.reason else ""
        if http.location:
            text += f" → {http.location}"
        if http.retry_after:
            text += f" (Retry-After {http.retry_after})"
        if http.redirects:
            text += f" [{len(http.redirects)} redirect(s) followed]"
    else:
        text = f"{http.method} {http.url}: {step.reason or http.failure or 'failed'}"
    timing = f" [dim]({step.duration_ms:.1f} ms)[/]" if step.duration_ms is not None else ""
    return escape(text) + timing


def _grpc_line(step: ApplicationStep) -> str:
    """``Health/Check shop.Orders → HTTP/2 200, grpc-status 0 OK, NOT_SERVING (3.1 ms)``; what
    the call got as far as it went (a status a client synthesised is said to be)."""
    g = step.grpc
    assert g is not None
    call = "Health/Check" + (f" {g.service}" if g.service else "")
    parts: list[str] = []
    if g.http_status is not None:
        parts.append(f"{g.http_version or 'HTTP'} {g.http_status}")
    if g.grpc_status is not None and g.status_from in ("trailers", "trailers_only"):
        status = f"grpc-status {g.grpc_status} {g.grpc_status_name or ''}".rstrip()
        if g.grpc_message and g.grpc_status != 0:
            status += f": {g.grpc_message}"
        parts.append(status)
    if g.health_status is not None:
        parts.append(g.health_status_name or f"health status {g.health_status}")
    if g.healthy or (parts and g.failure in (None, "not_http2", "not_grpc")):
        text = f"{call} → " + ", ".join(parts)
        if g.failure == "not_http2":
            text += " (not HTTP/2)"
        elif g.failure == "not_grpc":
            text += " (no grpc-status)"
    else:
        text = f"{call}: {step.reason or g.failure or 'failed'}"
    server = g.headers.get("server")
    if server and g.failure is not None:
        text += f" [server: {server}]"
    timing = f" [dim]({step.duration_ms:.1f} ms)[/]" if step.duration_ms is not None else ""
    return escape(text) + timing
