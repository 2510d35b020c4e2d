"""The HTML health page: each dependency's ladder and timing waterfall, readable at a glance.

Pure: a HealthResult in, one self-contained HTML document out (no scripts, no external
assets, so it works behind any proxy and under a strict Content-Security-Policy).
"""

from __future__ import annotations

from html import escape

from rich.text import Text

from ..render import step_line, waterfall_phases
from ..report import Report
from .checker import CheckResult, HealthResult, public_url

__all__ = ["render_page"]

_STATUS_TEXT = {"ok": "healthy", "degraded": "degraded", "fail": "not ready"}
_CHECK_TEXT = {"ok": "healthy", "fail": "failing", "pending": "not checked yet", "error": "error"}
_MARK = {"ok": "✓", "failed": "✗", "skipped": "–"}
_PHASE_COLORS = {
    "dns": "#7e57c2",
    "connect": "#26a69a",
    "tls": "#ffa726",
    "server": "#42a5f5",
    "transfer": "#8d6e63",
    "finish": "#b0bec5",
}

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:62rem;padding:0 1rem;color:#1f2328;background:#f6f8fa}
h1{font-size:1.4rem;margin:0 0 .3rem}
.pill{display:inline-block;padding:.1rem .6rem;border-radius:1rem;font-weight:600;color:#fff}
.s-ok{background:#1a7f37}.s-degraded{background:#9a6700}.s-fail,.s-error{background:#cf222e}
.s-pending{background:#6e7781}
.dep{background:#fff;border:1px solid #d0d7de;border-radius:.5rem;padding:1rem;margin:1rem 0}
.dep h2{font-size:1.1rem;margin:0 0 .5rem;display:flex;gap:.5rem;align-items:center}
.muted{color:#57606a;font-size:.85rem}
table{border-collapse:collapse;width:100%;font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:.85rem}
td{padding:.15rem .4rem;vertical-align:top}
td:nth-child(1){width:1rem}td:nth-child(2){width:6.5rem}
.m-ok{color:#1a7f37}.m-failed{color:#cf222e}.m-skipped{color:#6e7781}
.fault{border-left:4px solid #cf222e;padding:.3rem .7rem;margin:.6rem 0;background:#fff5f5}
.fault code{font-weight:700}
.bar{display:flex;height:1.1rem;background:#eaeef2;border-radius:.25rem;overflow:hidden;
margin:.5rem 0 .2rem}
.seg{height:100%;min-width:2px}
.legend span{margin-right:.9rem;font-size:.8rem}
.legend i{display:inline-block;width:.7rem;height:.7rem;margin-right:.25rem;border-radius:2px}
.stale{background:#fff8c5;color:#7d4e00;border-radius:.3rem;padding:0 .4rem;font-size:.8rem}
"""


def render_page(
    result: HealthResult, *, show_details: bool = True, refresh_s: float = 10.0, probe: str = ""
) -> str:
    """The whole page. With ``show_details=False`` it shows the overall status only."""
    status = result.status
    title = f"{_STATUS_TEXT[status]} · health"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="refresh" content="{max(2, round(refresh_s))}">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f'<h1>Dependencies <span class="pill s-{status}" data-testid="overall">'
        f"{escape(_STATUS_TEXT[status])}</span></h1>",
    ]
    if probe:
        parts.append(f'<div class="muted">probe: {escape(probe)}</div>')
    if show_details:
        scale = max(
            [sum(ms for _, ms in waterfall_phases(c.report)) for c in result.checks if c.report]
            + [1.0]
        )
        for c in result.checks:
            parts.append(_dependency(c, scale))
    parts.append("</body></html>")
    return "\n".join(parts)


def _dependency(c: CheckResult, scale_ms: float) -> str:
    dep = c.dependency
    kind = "critical" if dep.critical else "non-critical"
    head = (
        f'<section class="dep" data-testid="dep" data-name="{escape(dep.name)}" '
        f'data-status="{c.status}"><h2>{escape(dep.name)} '
        f'<span class="pill s-{c.status}">{escape(_CHECK_TEXT[c.status])}</span>'
        f'<span class="muted">{kind}</span>'
    )
    if c.stale:
        head += '<span class="stale" data-testid="stale">stale</span>'
    head += "</h2>"
    meta = f"{escape(public_url(dep.target))}"
    if c.age_s is not None:
        meta += f" · checked {c.age_s:.1f} s ago"
    body = [head, f'<div class="muted">{meta}</div>']
    if c.error is not None:
        body.append(f'<div class="fault">diagnosis error: {escape(c.error)}</div>')
    r = c.report
    if r is not None:
        body.append(_ladder(r))
        if r.fault is not None:
            f = r.fault
            hints = "".join(f"<li>{escape(h)}</li>" for h in f.hints)
            body.append(
                f'<div class="fault" data-testid="fault"><code>{escape(f.code)}</code> '
                f'<span class="muted">layer {escape(f.layer)}</span><br>{escape(f.summary)}'
                f"{f'<ul>{hints}</ul>' if hints else ''}</div>"
            )
        body.append(_waterfall(r, scale_ms))
    body.append("</section>")
    return "\n".join(body)


def _ladder(r: Report) -> str:
    rows = []
    for s in r.steps:
        plain = Text.from_markup(step_line(s)).plain
        rows.append(
            f'<tr data-testid="rung" data-rung="{s.name}"><td class="m-{s.status}">'
            f"{_MARK[s.status]}</td><td>{escape(s.name)}</td><td>{escape(plain)}</td></tr>"
        )
    return f'<table data-testid="ladder">{"".join(rows)}</table>'


def _waterfall(r: Report, scale_ms: float) -> str:
    phases = waterfall_phases(r)
    if not phases:
        return ""
    segs = "".join(
        f'<div class="seg" title="{name} {ms:.1f} ms" data-phase="{name}" '
        f'style="width:{100.0 * ms / scale_ms:.3f}%;background:{_PHASE_COLORS[name]}"></div>'
        for name, ms in phases
    )
    legend = "".join(
        f'<span><i style="background:{_PHASE_COLORS[name]}"></i>{name} {ms:.1f} ms</span>'
        for name, ms in phases
    )
    total = r.timings_ms.total
    total_text = f" = {total:.1f} ms" if total is not None else ""
    return (
        f'<div class="bar" data-testid="waterfall">{segs}</div>'
        f'<div class="legend muted">{legend}{escape(total_text)}</div>'
    )
