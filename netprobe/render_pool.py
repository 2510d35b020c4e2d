"""The human view of a pool probe: one line per connection, then the summary. Pure."""

from __future__ import annotations

from rich.markup import escape

from .report import PoolConnection, PoolReport

__all__ = ["connection_line", "render_pool"]

_MARK = {
    "validated": "[green]✓[/]",
    "opened": "[green]✓[/]",
    "refused": "[red]✗[/]",
    "failed": "[red]✗[/]",
    "not_started": "[dim]-[/]",
}


def connection_line(c: PoolConnection) -> str:
    """One pool connection as a rich markup line: mark, index, outcome, timings, fault."""
    parts = [f"{_MARK[c.outcome]} #{c.index:<3} {c.outcome:<9}"]
    if c.connect_ms is not None:
        parts.append(f"connect {c.connect_ms:.1f} ms")
    if c.greeting_ms is not None:
        parts.append(f"answer {c.greeting_ms:.1f} ms")
    check = c.hold_check
    if c.held_ok is not None:
        if c.held_ok:
            ack = " (keepalive answered)" if check is not None and check.outcome == "alive" else ""
            parts.append(f"held ok{ack}")
        elif check is not None and check.outcome in ("silence", "reset", "closed"):
            parts.append(f"[red]died while held: {check.outcome}[/]")
        else:
            parts.append("[red]lost while held[/]")
    if c.fault_code:
        parts.append(f"[bold]{c.fault_code}[/] {escape(c.detail or '')}")
    return "  " + "  ".join(parts)


_TRIAL = {
    "alive": "[green]survived[/]",
    "silence": "[red]died (silence)[/]",
    "reset": "[red]died (RST)[/]",
    "closed": "[red]died (FIN)[/]",
    "not_needed": "[dim]not needed[/]",
    "not_opened": "[red]did not open[/]",
}


def render_pool(report: PoolReport, *, verbose: bool = False) -> list[str]:
    """The pool report as rich markup lines (every connection with ``verbose``)."""
    mode = "real sessions" if report.with_credentials else "greetings, no credentials"
    if report.idle_search is not None:
        what = f"idle-timeout search up to {report.idle_search.max_idle_s:g} s"
    else:
        what = f"pool of {report.requested}, {mode}"
        what += f", hold {report.hold_s:g} s" if report.hold_s else ""
    lines = [f"[bold]{escape(report.target.url)}[/]  [dim]({what})[/]"]
    shown = (
        report.connections
        if verbose or len(report.connections) <= 20
        else [c for c in report.connections if c.outcome != "validated"][:20]
    )
    lines.extend(connection_line(c) for c in shown)
    if len(shown) < len(report.connections):
        lines.append(f"  [dim]... {len(report.connections) - len(shown)} more (use --verbose)[/]")
    if report.idle_search is not None:
        trials = ", ".join(
            f"{t.idle_s:g} s {_TRIAL.get(t.outcome, t.outcome)}" for t in report.idle_search.trials
        )
        lines.append(f"  idle search: {trials}")
    if report.time_to_fill_ms is not None:
        lines.append(f"  [dim]time to fill: {report.time_to_fill_ms:.1f} ms[/]")
    if report.fd_headroom is not None:
        lines.append(
            f"  [dim]local fds: {report.fd_open} open of {report.fd_limit} "
            f"(headroom {report.fd_headroom})[/]"
        )
    if report.ok:
        lines.append(f"[bold green]POOL OK[/] {escape(report.summary)}")
    else:
        code = report.fault.code if report.fault else "incomplete"
        lines.append(f"[bold red]POOL FAULT[/] [bold]{code}[/]: {escape(report.summary)}")
    for note in report.notes:
        lines.append(f"  [dim]note:[/] {escape(note)}")
    return lines
