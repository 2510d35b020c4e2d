"""The HTML health page: a summary, then each dependency's ladder, waterfall and history.

Pure: a HealthResult in, one self-contained HTML document out (no scripts, no external
assets, so it works behind any proxy and under a strict Content-Security-Policy). Every
text that a user or a peer controls (names, targets, fault sentences, what a server sent)
is escaped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from rich.text import Text

from ..describe import describe_hop
from ..render import step_line, waterfall_phases
from ..report import Report
from ..steps import TcpStep
from .checker import CheckResult, HealthResult, StateChange, public_url

__all__ = ["render_page", "worst_check"]

_STATUS_TEXT = {"ok": "healthy", "degraded": "degraded", "fail": "not ready"}
_CHECK_TEXT = {"ok": "healthy", "fail": "failing", "pending": "not checked yet", "error": "error"}
_MARK = {"ok": "✓", "failed": "✗", "skipped": "–"}
#: What each probe route answers, for the subtitle.
_PROBE_TEXT = {
    "ready": "Readiness: 200 while every critical dependency is healthy, else 503",
    "startup": "Startup: like readiness until the first success, then 200 for good",
}
_PHASE_COLORS = {
    "dns": "#7e57c2",
    "connect": "#26a69a",
    "tls": "#ffa726",
    "server": "#42a5f5",
    "transfer": "#8d6e63",
    "finish": "#b0bec5",
}

_CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem auto;
max-width:62rem;padding:0 1rem;color:#1f2328;background:#f6f8fa;overflow-wrap:anywhere}
h1{font-size:1.4rem;margin:0 0 .3rem;display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
.pill{display:inline-block;padding:.1rem .6rem;border-radius:1rem;font-weight:600;color:#fff;
font-size:.85rem;white-space:nowrap}
.s-ok{background:#1a7f37}.s-degraded{background:#9a6700}.s-fail,.s-error{background:#cf222e}
.s-pending{background:#6e7781}
.summary{font-size:1.05rem;margin:.2rem 0 .3rem}
.summary code{font-weight:700}
.dep{background:#fff;border:1px solid #d0d7de;border-radius:.5rem;padding:1rem;margin:1rem 0}
.dep h2{font-size:1.1rem;margin:0 0 .4rem;display:flex;flex-wrap:wrap;gap:.4rem .5rem;
align-items:center}
.muted{color:#57606a;font-size:.85rem}
table{border-collapse:collapse;width:100%;font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:.8rem;table-layout:fixed}
td{padding:.15rem .4rem;vertical-align:top}
td:nth-child(1){width:1.4rem}td:nth-child(2){width:6.2rem}
.m-ok{color:#1a7f37}.m-failed{color:#cf222e}.m-skipped{color:#6e7781}
.fault{border-left:4px solid #cf222e;padding:.3rem .7rem;margin:.6rem 0;background:#fff5f5}
.fault code{font-weight:700}
.fault ul{margin:.3rem 0 0;padding-left:1.2rem}
.bar{display:flex;height:1.1rem;background:#eaeef2;border-radius:.25rem;overflow:hidden;
margin:.5rem 0 .2rem}
.seg{height:100%;min-width:2px}
.legend span{margin-right:.9rem;font-size:.8rem;white-space:nowrap;display:inline-block}
.legend i{display:inline-block;width:.7rem;height:.7rem;margin-right:.25rem;border-radius:2px}
.stale{background:#fff8c5;color:#7d4e00;border-radius:.3rem;padding:0 .4rem;font-size:.8rem}
.history{margin-top:.5rem;display:flex;flex-wrap:wrap;gap:.2rem .6rem;align-items:baseline}
.history ol{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.2rem .9rem;
font-size:.85rem}
.history li{white-space:nowrap}
.history time{color:#57606a;font-family:ui-monospace,Menlo,Consolas,monospace}
.h-ok{color:#1a7f37}.h-fail,.h-error{color:#cf222e}
@media (max-width:40rem){body{margin:.8rem auto;padding:0 .6rem}
td:nth-child(2){width:4.6rem}.dep{padding:.7rem}}
"""

# A critical failure first, then a critical dependency without a verdict, then the others.
_SEVERITY = {
    (True, "fail"): 5,
    (True, "error"): 5,
    (True, "pending"): 4,
    (False, "fail"): 3,
    (False, "error"): 3,
    (False, "pending"): 2,
}


def worst_check(result: HealthResult) -> CheckResult | None:
    """The dependency most in the way of being ready (None when all are healthy)."""
    ranked = [(_SEVERITY.get((c.dependency.critical, c.status), 0), c) for c in result.checks]
    worst = max(ranked, key=lambda pair: pair[0], default=(0, None))
    return worst[1] if worst[0] else None


def render_page(
    result: HealthResult,
    *,
    show_details: bool = True,
    refresh_s: float = 10.0,
    probe: str = "",
    now: datetime | None = None,
) -> str:
    """The whole page. With ``show_details=False`` it shows the overall status only.

    Args:
        result: what to show.
        show_details: ``False`` shows the overall status and nothing else.
        refresh_s: how often the page reloads itself (the checker's TTL).
        probe: the route that answered (``ready``, ``startup``), for the subtitle.
        now: the time the page is drawn at (default: now), for the history's times.
    """
    now = now or datetime.now(UTC)
    status = result.status
    title = f"{_STATUS_TEXT[status]} · health"
    refresh = max(2, round(refresh_s))
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="refresh" content="{refresh}">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f'<h1>Dependencies <span class="pill s-{status}" data-testid="overall">'
        f"{escape(_STATUS_TEXT[status])}</span></h1>",
    ]
    if show_details:
        parts.append(_summary(result))
    subtitle = [_PROBE_TEXT.get(probe, "")] if probe else []
    # A no-break space between a number and its unit: "2 s" never splits across lines.
    subtitle.append(f"drawn {now:%H:%M:%S}\u00a0UTC, reloads every {refresh}\u00a0s")
    parts.append(
        f'<div class="muted" data-testid="subtitle">{escape(" · ".join(s for s in subtitle if s))}'
        "</div>"
    )
    if show_details:
        scale = max(
            [sum(ms for _, ms in waterfall_phases(c.report)) for c in result.checks if c.report]
            + [1.0]
        )
        for c in result.checks:
            parts.append(_dependency(c, scale, now))
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary(result: HealthResult) -> str:
    healthy = sum(c.ok for c in result.checks)
    text = f"<b>{healthy} of {len(result.checks)}</b> healthy"
    worst = worst_check(result)
    if worst is not None:
        dep = worst.dependency
        kind = "critical" if dep.critical else "non-critical"
        fault = worst.report.fault if worst.report else None
        if worst.status == "pending":
            what = "not checked yet"
        elif worst.status == "error":
            what = "could not be diagnosed"
        elif fault is not None:
            what = f"<code>{escape(fault.code)}</code> {escape(fault.summary)}"
        else:  # pragma: no cover - a failing report always has a fault
            what = escape(_CHECK_TEXT[worst.status])
        text += f" · worst: <b>{escape(dep.name)}</b> ({kind}) {what}"
    return f'<p class="summary" data-testid="summary">{text}</p>'


def _dependency(c: CheckResult, scale_ms: float, now: datetime) -> str:
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
    meta = escape(public_url(dep.target))
    if c.age_s is not None:
        meta += f" · checked {c.age_s:.1f}\u00a0s ago"
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
    if c.history:
        body.append(_history(c.history, now))
    body.append("</section>")
    return "\n".join(body)


def _ladder(r: Report) -> str:
    rows = []
    for s in r.steps:
        plain = Text.from_markup(step_line(s)).plain
        rows.append(
            f'<tr data-testid="rung" data-rung="{escape(s.name)}"><td class="m-{s.status}">'
            f"{_MARK[s.status]}</td><td>{escape(s.name)}</td><td>{escape(plain)}</td></tr>"
        )
        trace = s.trace if isinstance(s, TcpStep) else None
        if trace is not None:
            hops = "".join(f"<li>{escape(describe_hop(h))}</li>" for h in trace.hops)
            cut = " (cut by the total deadline)" if trace.partial else ""
            rows.append(
                f'<tr data-testid="trace"><td></td><td>path</td><td>TCP trace to '
                f"{escape(trace.address)} port {trace.port}{cut}<ol>{hops}</ol></td></tr>"
            )
    return f'<table data-testid="ladder">{"".join(rows)}</table>'


def _waterfall(r: Report, scale_ms: float) -> str:
    phases = waterfall_phases(r)
    if not phases:
        return ""
    segs = "".join(
        f'<div class="seg" title="{escape(name)} {ms:.1f} ms" data-phase="{escape(name)}" '
        f'style="width:{100.0 * ms / scale_ms:.3f}%;background:{_PHASE_COLORS[name]}"></div>'
        for name, ms in phases
    )
    legend = "".join(
        f'<span><i style="background:{_PHASE_COLORS[name]}"></i>{escape(name)} {ms:.1f} ms</span>'
        for name, ms in phases
    )
    total = r.timings_ms.total
    total_text = f"= {total:.1f} ms" if total is not None else ""
    return (
        f'<div class="bar" data-testid="waterfall">{segs}</div>'
        f'<div class="legend muted">{legend}<span>{escape(total_text)}</span></div>'
    )


def _history(history: tuple[StateChange, ...], now: datetime) -> str:
    """Each change of verdict with its time, newest first (at most HISTORY_LIMIT)."""
    items = []
    for h in reversed(history):
        when = h.at.astimezone(UTC)
        shown = f"{when:%H:%M:%S}" if when.date() == now.date() else f"{when:%b %d %H:%M}"
        verdict = "healthy" if h.status == "ok" else h.verdict
        items.append(
            f'<li><time datetime="{escape(when.isoformat())}">{shown}</time> '
            f'<span class="h-{h.status}">{escape(verdict)}</span></li>'
        )
    return (
        '<div class="history" data-testid="history"><span class="muted">history (UTC, newest '
        f"first):</span><ol>{''.join(items)}</ol></div>"
    )
