"""A real Prometheus server (Debian's package) scrapes the health app's /metrics.

Before a dependency's first result, Prometheus has no probe_success series for it (a deploy
is not an outage), while the checked one reads 1; the documented query lists what has no
verdict yet.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
from health_support import free_port, uvicorn_server, wait_until

import netprobe
from netprobe.health import Dependency, health_app
from netprobe.options import Options
from netprobe.report import Report
from netprobe.target import Target
from netprobe.testing import TcpServer
from nplab.require import require_binary


@contextlib.contextmanager
def prometheus(scrape: str) -> Iterator[str]:
    """Prometheus on a loopback port, scraping ``scrape`` (host:port) every second."""
    binary = require_binary("prometheus")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="netprobe-prom-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: service\n"
            "    metrics_path: /metrics\n"
            f"    static_configs: [{{targets: ['{scrape}']}}]\n"
        )
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stderr is not None:
                proc.stderr.close()


def query(base: str, promql: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
    r.raise_for_status()
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def test_prometheus_sees_no_verdict_before_the_first_result(tcp_server: TcpServer) -> None:
    async def diagnose(target: Target, options: Options) -> Report:
        if target.port == 1:  # "search": its first diagnosis never ends during this test
            await anyio.sleep_forever()
        return await netprobe.diagnose(target, options=options)

    app = health_app(
        [
            Dependency(f"tcp://{tcp_server.address}", name="db"),
            Dependency("127.0.0.1:1", name="search"),
        ],
        diagnose=diagnose,
        budget=0.3,
        icmp=False,
    )
    with uvicorn_server(app) as service, prometheus(service.removeprefix("http://")) as prom:

        def scraped() -> bool:
            try:
                return bool(query(prom, 'probe_success{dependency="db"}'))
            except httpx.HTTPError:
                return False

        wait_until(scraped, timeout=30, what="Prometheus to scrape the service", step=0.2)
        up = query(prom, 'up{job="service"}')
        assert [s["value"][1] for s in up] == ["1"], "the scrape itself succeeded"
        success = query(prom, "probe_success")
        assert {s["metric"]["dependency"]: s["value"][1] for s in success} == {"db": "1"}
        critical = query(prom, "netprobe_dependency_critical")
        assert {s["metric"]["dependency"] for s in critical} == {"db", "search"}
        unchecked = query(prom, "netprobe_dependency_critical unless on(dependency) probe_success")
        assert [s["metric"]["dependency"] for s in unchecked] == ["search"]
