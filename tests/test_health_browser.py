"""The HTML health page in a real headless Chromium (Debian's package, driven by Playwright).

Never runs `playwright install`: the browser is /usr/bin/chromium. Screenshots at desktop
(1280 px) and phone (390 px) widths are kept in test-artifacts/ (git-ignored) for humans to
look at; docs/img/ holds the reviewed copies the docs show.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from health_support import ARTIFACTS, uvicorn_server

from netprobe.health import Dependency, health_app
from netprobe.testing import TcpServer, closed_port
from nplab.require import require

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECRET = "hunter2-secret"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def health_url() -> Iterator[str]:
    """A service with four dependencies; "payments" was down, then came back (history)."""
    db = TcpServer()
    payments_port = closed_port()
    payments: TcpServer | None = None
    app = health_app(
        [
            Dependency(f"tcp://{db.address}", name="orders-db"),
            Dependency(f"tcp://127.0.0.1:{payments_port}", name="payments"),
            Dependency(f"redis://:{SECRET}@127.0.0.1:{closed_port()}/0", name="cache"),
            Dependency(f"127.0.0.1:{closed_port()}", name="search", critical=False),
        ],
        ttl=0.3,
        icmp=False,
    )
    try:
        with uvicorn_server(app) as base:
            httpx.get(f"{base}/ready", timeout=10)  # payments: refused
            payments = TcpServer(port=payments_port)
            time.sleep(0.35)
            httpx.get(f"{base}/ready", timeout=10)  # payments: healthy again
            yield f"{base}/ready"
    finally:
        db.close()
        if payments is not None:
            payments.close()


def _no_overlap(boxes: list[dict[str, float]]) -> bool:
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if (
                a["x"] < b["x"] + b["width"] - 0.5
                and b["x"] < a["x"] + a["width"] - 0.5
                and a["y"] < b["y"] + b["height"] - 0.5
                and b["y"] < a["y"] + a["height"] - 0.5
            ):
                return False
    return True


@pytest.mark.parametrize(("device", "width"), [("desktop", 1280), ("phone", 390)])
def test_page_in_headless_chromium(health_url: str, device: str, width: int) -> None:
    require(os.path.exists(CHROMIUM), "needs Debian's chromium package (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"health-page-{device}.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            response = page.goto(health_url)
            assert response is not None
            assert response.status == 503, "a critical dependency is down"
            assert response.headers["content-type"].startswith("text/html")
            assert page.title() == "not ready · health"
            assert page.get_by_test_id("overall").inner_text() == "not ready"

            # The summary line, at the top: how many are healthy and the worst fault.
            summary = page.get_by_test_id("summary")
            text = summary.inner_text()
            assert text.startswith("2 of 4 healthy · worst: cache (critical) l4.refused"), text
            box = summary.bounding_box()
            assert box is not None and box["y"] < 120, "the summary is at the top"
            subtitle = page.get_by_test_id("subtitle").inner_text()
            assert subtitle.startswith("Readiness: 200 while every critical dependency")
            assert "probe:" not in page.content()

            deps = page.get_by_test_id("dep")
            assert deps.count() == 4
            names = [deps.nth(i).get_attribute("data-name") for i in range(4)]
            assert names == ["orders-db", "payments", "cache", "search"]
            statuses = [deps.nth(i).get_attribute("data-status") for i in range(4)]
            assert statuses == ["ok", "ok", "fail", "fail"]

            db = deps.nth(0)
            assert "healthy" in db.inner_text()
            assert db.locator("[data-rung=tcp]").count() == 1
            assert db.get_by_test_id("waterfall").locator("[data-phase=connect]").count() == 1
            bar = db.get_by_test_id("waterfall").bounding_box()
            assert bar is not None and bar["width"] > 100, "the waterfall is drawn"

            # The history of each dependency: payments went down, then came back.
            history = deps.nth(1).get_by_test_id("history").locator("li")
            assert [history.nth(i).locator("span").inner_text() for i in range(2)] == [
                "healthy",
                "l4.refused",
            ]
            assert history.nth(0).locator("time").get_attribute("datetime")

            cache = deps.nth(2)
            assert "l4.refused" in cache.get_by_test_id("fault").inner_text()
            assert "critical" in cache.inner_text()
            assert "non-critical" in deps.nth(3).inner_text()
            assert SECRET not in page.content()

            # Nothing cut at this width, nothing drawn over something else.
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            for i in range(4):
                heading = deps.nth(i).locator("h2 > *")
                boxes: list[Any] = [heading.nth(j).bounding_box() for j in range(heading.count())]
                assert _no_overlap(boxes), f"heading of {names[i]} overlaps at {width} px"
                legend = deps.nth(i).locator(".legend span")
                boxes = [legend.nth(j).bounding_box() for j in range(legend.count())]
                assert _no_overlap(boxes), f"legend of {names[i]} overlaps at {width} px"

            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
