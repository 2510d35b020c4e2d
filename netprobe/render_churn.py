"""The churn report in words (pure): fresh versus reused ports, their connect times."""

from __future__ import annotations

from rich.markup import escape

from .report import ChurnReport, ChurnStats

__all__ = ["render_churn", "stats_line"]


def stats_line(label: str, s: ChurnStats) -> str:
    """``reused  10 tried  0 established  10 timed out  (SYNs: timeout 10)``."""
    parts = [f"{label:<7} {s.attempts} tried", f"{s.established} established"]
    if s.timed_out:
        parts.append(f"[red]{s.timed_out} timed out[/]")
    if s.failed:
        parts.append(f"[red]{s.failed} failed[/]")
    if s.retransmitted:
        parts.append(f"[yellow]{s.retransmitted} after a lost SYN[/]")
    if s.median_ms is not None:
        parts.append(f"median {s.median_ms:.1f} ms, max {s.max_ms or 0:.1f} ms")
    spread = ", ".join(
        f"{n}× {'timed out' if k == 'timeout' else f'SYN {k}'}" for k, n in s.by_syns.items()
    )
    line = "  " + "  ".join(parts)
    return line + (f"  [dim]({spread})[/]" if spread else "")


def render_churn(report: ChurnReport) -> list[str]:
    """The churn report as rich markup lines."""
    shown = report.address is not None and report.address != report.target.host
    where = f" → {report.address}" if shown else ""
    lines = [
        f"[bold]{escape(report.target.netloc)}[/]{where}  [dim](churn: "
        f"{report.pairs_requested} pairs of fresh then reused source port, closed with RST, "
        f"{report.duration_ms / 1000:.1f} s)[/]",
        stats_line("fresh", report.fresh),
        stats_line("reused", report.reused),
    ]
    if report.ok:
        lines.append(f"[bold green]CHURN OK[/] {escape(report.summary)}")
    else:
        code = report.fault.code if report.fault else "incomplete"
        lines.append(f"[bold red]CHURN FAULT[/] [bold]{code}[/]: {escape(report.summary)}")
    for note in report.notes:
        lines.append(f"  [dim]note:[/] {escape(note)}")
    return lines
