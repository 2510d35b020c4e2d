"""The health ASGI app under a real uvicorn server, through httpx: cache, single flight, budget."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import pytest
from health_support import uvicorn_server

import netprobe
from netprobe.health import Dependency, HealthApp, health_app
from netprobe.options import Options
from netprobe.report import Report
from netprobe.target import Target
from netprobe.testing import TcpServer, closed_port


class CountingDiagnose:
    """The real diagnose, counted, optionally slowed down or hung by the test."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.targets: list[str] = []

    async def __call__(self, target: Target, options: Options) -> Report:
        self.calls += 1
        self.targets.append(target.url)
        if self.delay:
            await anyio.sleep(self.delay)
        return await netprobe.diagnose(target, options=options)


def make(deps: list[Any], **kw: Any) -> tuple[HealthApp, CountingDiagnose]:
    counter = CountingDiagnose(kw.pop("delay", 0.0))
    return health_app(deps, diagnose=counter, icmp=False, **kw), counter


def test_ready_live_startup_and_status_codes(tcp_server: TcpServer) -> None:
    dead = closed_port()
    app, counter = make(
        [
            Dependency(f"tcp://{tcp_server.address}", name="db"),
            Dependency(f"127.0.0.1:{dead}", name="cache", critical=False),
        ]
    )
    with uvicorn_server(app) as base, httpx.Client(base_url=base) as client:
        live = client.get("/live")
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        assert counter.calls == 0, "liveness never touches the dependencies"

        ready = client.get("/ready")
        assert ready.status_code == 200, "a non-critical failure only degrades"
        body = ready.json()
        assert body["status"] == "degraded"
        db, cache = body["checks"]["db"], body["checks"]["cache"]
        assert db["status"] == "ok" and db["fault"] is None and db["critical"] is True
        assert db["timings_ms"]["tcp_connect"] > 0
        assert cache["status"] == "fail" and cache["critical"] is False
        assert cache["fault"]["layer"] == "l4" and cache["fault"]["code"] == "l4.refused"
        assert cache["fault"]["summary"]
        assert ready.headers["cache-control"] == "no-store"
        assert client.get("/").json()["status"] == "degraded"
        assert client.get("/startup").status_code == 200
        assert client.head("/ready").content == b""
        assert client.get("/nope").status_code == 404
        post = client.post("/ready")
        assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
        assert counter.calls == 2, "one diagnosis per dependency within the TTL"


def test_critical_failure_is_503_and_startup_latches(tcp_server: TcpServer) -> None:
    server = TcpServer()
    app, _ = make([Dependency(f"tcp://{server.address}", name="db")], ttl=0.2)
    try:
        with uvicorn_server(app) as base, httpx.Client(base_url=base) as client:
            assert client.get("/startup").status_code == 200
            server.close()
            time.sleep(0.3)
            ready = client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["db"]["fault"]["code"] == "l4.refused"
            assert client.get("/live").status_code == 200
            assert client.get("/startup").status_code == 200, "started once: stays started"
    finally:
        server.close()


def test_never_started_startup_probe_is_503() -> None:
    app, _ = make([f"127.0.0.1:{closed_port()}"])
    with uvicorn_server(app) as base, httpx.Client(base_url=base) as client:
        assert client.get("/startup").status_code == 503


def test_single_flight_under_1000_concurrent_requests(tcp_server: TcpServer) -> None:
    # The dependency takes 1 s to diagnose; 1,000 requests arrive meanwhile.
    app, counter = make([f"tcp://{tcp_server.address}"], delay=1.0, ttl=60, budget=5)

    async def flood(base: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            results: list[httpx.Response | None] = [None] * 1000

            async def one(i: int) -> None:
                results[i] = await client.get("/ready")

            async with anyio.create_task_group() as tg:
                for i in range(1000):
                    tg.start_soon(one, i)
            return [r for r in results if r is not None]

    with uvicorn_server(app) as base:
        responses = anyio.run(flood, base)
        with httpx.Client(base_url=base) as client:
            metrics = client.get("/metrics").text
    assert len(responses) == 1000
    assert all(r.status_code == 200 for r in responses)
    assert counter.calls == 1, "a thousand requests, exactly one diagnosis"
    assert app.checker.diagnoses == {f"tcp://{tcp_server.address}": 1}
    assert "netprobe_diagnoses_total" in metrics


def test_request_during_a_hang_returns_within_budget_with_the_stale_result(
    tcp_server: TcpServer,
) -> None:
    app, counter = make([Dependency(f"tcp://{tcp_server.address}", name="db")], ttl=0.3, budget=0.5)
    with uvicorn_server(app) as base, httpx.Client(base_url=base) as client:
        first = client.get("/ready").json()
        assert first["checks"]["db"]["status"] == "ok" and first["stale"] is False
        counter.delay = 10.0  # from now on the dependency hangs for 10 s
        time.sleep(0.35)
        timings = []
        for _ in range(3):
            started = time.monotonic()
            r = client.get("/ready")
            timings.append(time.monotonic() - started)
            assert r.status_code == 200
            body = r.json()
            assert body["stale"] is True and body["checks"]["db"]["stale"] is True
            assert body["checks"]["db"]["status"] == "ok", "the last known result"
        assert max(timings) < 0.5 + 0.5, timings  # the budget, plus generous slack
        assert counter.calls == 2, "the hanging refresh is not started again"


def test_pending_result_within_budget_is_503(tcp_server: TcpServer) -> None:
    app, _ = make([Dependency(f"tcp://{tcp_server.address}", name="db")], delay=10, budget=0.3)
    with uvicorn_server(app) as base, httpx.Client(base_url=base) as client:
        started = time.monotonic()
        r = client.get("/ready")
        assert time.monotonic() - started < 1.0
        assert r.status_code == 503
        assert r.json()["checks"]["db"]["status"] == "pending"


SECRET = "s3cr3t-Pa55"


def test_never_shows_credentials_or_query_and_never_takes_a_target(tcp_server: TcpServer) -> None:
    dead = closed_port()
    app, counter = make(
        [
            f"redis://:{SECRET}@127.0.0.1:{dead}/0",
            f"http://127.0.0.1:{closed_port()}/status?token={SECRET}",
        ]
    )
    with uvicorn_server(app) as base, httpx.Client(base_url=base) as client:
        for path in ("/ready", "/metrics", "/ready?format=html"):
            text = client.get(path, params={"target": f"tcp://{tcp_server.address}"}).text
            assert SECRET not in text
            assert tcp_server.address not in text
        assert all(tcp_server.address not in t for t in counter.targets)


def test_show_details_false_says_only_the_status() -> None:
    app, _ = make([Dependency(f"127.0.0.1:{closed_port()}", name="db")], show_details=False)
    with uvicorn_server(app) as base, httpx.Client(base_url=base) as client:
        r = client.get("/ready")
        assert r.status_code == 503 and r.json() == {"status": "fail"}
        assert client.get("/metrics").status_code == 404
        page = client.get("/ready", headers={"accept": "text/html"}).text
        assert "127.0.0.1" not in page and "not ready" in page


@pytest.mark.anyio
async def test_mounted_in_starlette_and_fastapi(tcp_server: TcpServer) -> None:
    from fastapi import FastAPI
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app, _ = make([Dependency(f"tcp://{tcp_server.address}", name="db")])
    for host in (Starlette(routes=[Mount("/health", app=app)]), FastAPI()):
        if isinstance(host, FastAPI):
            host.mount("/health", app)
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            assert (await client.get("/health/ready")).json()["checks"]["db"]["status"] == "ok"
            assert (await client.get("/health/live")).status_code == 200
            assert (await client.get("/health/")).status_code == 200
            assert (await client.get("/elsewhere")).status_code == 404
    await app.aclose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl": 0}, "ttl"),
        ({"budget": -1}, "budget"),
        ({"connect_timeout": 0}, "connect_timeout"),
    ],
)
def test_bad_configuration_raises_before_io(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(netprobe.InvalidOption, match=message):
        health_app(["127.0.0.1:5432"], **kwargs)


def test_bad_dependencies_raise_before_io() -> None:
    with pytest.raises(netprobe.InvalidTarget):
        health_app(["db:99999"])
    with pytest.raises(netprobe.InvalidOption, match="unique"):
        health_app([Dependency("a:1", name="x"), Dependency("b:1", name="x")])
