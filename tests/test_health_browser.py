"""The HTML health page in a real headless Chromium (Debian's package, driven by Playwright).

Never runs `playwright install`: the browser is /usr/bin/chromium. A screenshot is kept in
test-artifacts/ (git-ignored) for humans to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

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

pytestmark = pytest.mark.browser


@pytest.fixture
def health_url(tcp_server: TcpServer) -> Iterator[str]:
    secret = "hunter2-secret"
    app = health_app(
        [
            Dependency(f"tcp://{tcp_server.address}", name="orders-db"),
            Dependency(f"redis://:{secret}@127.0.0.1:{closed_port()}/0", name="cache"),
            Dependency(f"127.0.0.1:{closed_port()}", name="search", critical=False),
        ],
        icmp=False,
    )
    with uvicorn_server(app) as base:
        # Warm the cache so the page shows every dependency's ladder at once.
        httpx.get(f"{base}/ready", timeout=10)
        yield f"{base}/ready"


def test_page_in_headless_chromium(health_url: str) -> None:
    require(os.path.exists(CHROMIUM), "needs Debian's chromium package (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            response = page.goto(health_url)
            assert response is not None
            assert response.status == 503, "a critical dependency is down"
            assert response.headers["content-type"].startswith("text/html")
            assert page.title() == "not ready · health"
            assert page.get_by_test_id("overall").inner_text() == "not ready"

            deps = page.get_by_test_id("dep")
            assert deps.count() == 3
            names = [deps.nth(i).get_attribute("data-name") for i in range(3)]
            assert names == ["orders-db", "cache", "search"]
            statuses = [deps.nth(i).get_attribute("data-status") for i in range(3)]
            assert statuses == ["ok", "fail", "fail"]

            db = deps.nth(0)
            assert "healthy" in db.inner_text()
            assert db.locator("[data-rung=tcp]").count() == 1
            assert db.get_by_test_id("waterfall").locator("[data-phase=connect]").count() == 1
            bar = db.get_by_test_id("waterfall").bounding_box()
            assert bar is not None and bar["width"] > 100, "the waterfall is drawn"

            cache = deps.nth(1)
            assert "l4.refused" in cache.get_by_test_id("fault").inner_text()
            assert "critical" in cache.inner_text()
            assert "non-critical" in deps.nth(2).inner_text()
            assert "hunter2-secret" not in page.content()

            page.screenshot(path=str(ARTIFACTS / "health-page.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "health-page.png").stat().st_size > 10_000
