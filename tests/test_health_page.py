"""The health page's text: the summary, the subtitle, the history, and escaping of all that a
user or a peer controls (checked on real reports of real loopback peers)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from netprobe.health import Dependency, HealthChecker
from netprobe.health.checker import CheckResult, HealthResult, StateChange
from netprobe.health.page import render_page, worst_check
from netprobe.testing import TcpServer, closed_port

HOSTILE = '<script>alert("x")</script>'

pytestmark = pytest.mark.anyio


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Tags:
    p = _Tags()
    p.feed(page)
    return p


def hostile_http(conn: socket.socket) -> None:
    """A server whose reason phrase and headers are markup."""
    conn.recv(4096)
    conn.sendall(
        f"HTTP/1.1 503 {HOSTILE}\r\nServer: <b>evil</b>\r\nContent-Length: 0\r\n\r\n".encode()
    )


async def test_everything_a_user_or_a_peer_controls_is_escaped() -> None:
    with TcpServer(hostile_http) as server:
        checker = HealthChecker(
            [Dependency(f"http://127.0.0.1:{server.port}/health", name=f"api {HOSTILE}")],
            icmp=False,
        )
        result = await checker.check(budget=5)
    check = result.checks[0]
    assert check.report is not None and check.report.fault is not None
    assert HOSTILE in check.report.fault.summary, "the peer's text is in the report..."
    page = render_page(result, probe="ready")
    tags = parse(page)
    assert "script" not in tags.tags
    assert "<script>" not in page and "<b>evil" not in page, "...and never markup in the page"
    text = "".join(tags.text)
    assert HOSTILE in text, "shown as text, in the summary, the heading and the ladder"
    assert text.count(HOSTILE) >= 3


def _check(name: str, status: str, *, critical: bool = True) -> CheckResult:
    return CheckResult(
        dependency=Dependency("127.0.0.1:1", name=name, critical=critical),
        status=status,  # type: ignore[arg-type]
        report=None,
        stale=False,
        age_s=None,
        checked_at=None,
        diagnoses=0,
    )


def test_worst_is_a_critical_failure_then_a_critical_unknown_then_the_rest() -> None:
    ok, pending = _check("a", "ok"), _check("b", "pending")
    noncrit = _check("c", "fail", critical=False)
    error = _check("d", "error")
    assert worst_check(HealthResult([ok])) is None
    assert worst_check(HealthResult([ok, noncrit, pending])) is pending
    assert worst_check(HealthResult([noncrit, pending, error])) is error
    assert worst_check(HealthResult([ok, noncrit])) is noncrit


async def test_summary_subtitle_and_history() -> None:
    dead = closed_port()
    with TcpServer() as server:
        checker = HealthChecker(
            [
                Dependency(f"tcp://{server.address}", name="db"),
                Dependency(f"127.0.0.1:{dead}", name="search", critical=False),
            ],
            icmp=False,
        )
        result = await checker.check(budget=5)
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    page = render_page(result, probe="ready", refresh_s=10, now=now)
    text = " ".join("".join(parse(page).text).split())
    assert "1 of 2 healthy · worst: search (non-critical) l4.refused" in text
    assert "Readiness: 200 while every critical dependency is healthy, else 503" in text
    assert "drawn 03:04:05 UTC, reloads every 10 s" in text
    assert "probe:" not in text
    startup = render_page(result, probe="startup", now=now)
    assert "Startup: like readiness until the first success" in startup
    # History: newest first; a change on another day shows its date.
    db = result.checks[0]
    older = StateChange(now - timedelta(days=3), "fail", "l4.refused")
    with_history = CheckResult(**{**db.__dict__, "history": (older, *db.history)})
    page = render_page(HealthResult([with_history]), now=now)
    items = page[page.index('data-testid="history"') :]
    assert items.index(">healthy<") < items.index(">l4.refused<")
    assert f"{older.at:%b %d %H:%M}" in items


async def test_show_details_false_shows_no_summary() -> None:
    checker = HealthChecker([Dependency(f"127.0.0.1:{closed_port()}", name="secret-db")])
    result = await checker.check(budget=5)
    page = render_page(result, show_details=False)
    assert "secret-db" not in page and "healthy" not in page.replace("not ready", "")
    assert 'data-testid="summary"' not in page
