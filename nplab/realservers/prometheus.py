"""Prometheus (Debian's ``prometheus``) scraping given loopback targets, and ``promtool``.

    with Prometheus(targets=["127.0.0.1:9100"], metrics_path="/metrics") as prom:
        prom.wait_scraped()
        prom.query("probe_success")      # the HTTP API's result list

Storage, config and logs stay in the harness directory; it listens on 127.0.0.1 only and
scrapes every 0.5 s. The first scrape still comes about 5 s after start: Prometheus hands
the static targets to its scrape manager through the discovery manager, which updates at
most every 5 s (not configurable in 2.42); ``wait_scraped`` waits for it.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from typing import Any

from nplab.realservers._base import RealServer, require_server_binary

__all__ = ["Prometheus", "promtool"]


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``promtool ARGS`` (for example ``check metrics`` with the text on stdin)."""
    return subprocess.run(
        [require_server_binary("promtool"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class Prometheus(RealServer):
    name = "prometheus"
    start_timeout = 30.0

    def __init__(
        self,
        *,
        targets: list[str],
        metrics_path: str = "/metrics",
        scrape_interval: float = 0.5,
        host: str = "127.0.0.1",
        port: int | None = None,
        scrape_configs: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        self.targets = targets
        #: YAML of the ``scrape_configs:`` list, in place of the one job scraping ``targets``
        #: (a blackbox-style job with its relabel_configs, for example).
        self.scrape_configs = scrape_configs
        self.metrics_path = metrics_path
        self.scrape_interval = scrape_interval

    def configure(self) -> None:
        interval = f"{round(self.scrape_interval * 1000)}ms"
        targets = ", ".join(json.dumps(t) for t in self.targets)
        scrape_configs = self.scrape_configs or (
            "  - job_name: netprobe\n"
            f"    metrics_path: {json.dumps(self.metrics_path)}\n"
            f"    static_configs:\n      - targets: [{targets}]\n"
        )
        (self.dir / "prometheus.yml").write_text(
            f"global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n"
            f"scrape_configs:\n{scrape_configs}"
        )
        (self.dir / "data").mkdir()

    def argv(self) -> list[str]:
        d = self.dir
        return [
            require_server_binary("prometheus"),
            f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            "--log.level=warn",
        ]

    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.port}{path}", timeout=3) as r:
                return r.status, r.read()
        except OSError:
            return 0, b""

    def ready(self) -> bool:
        return self._get("/-/ready")[0] == 200

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query through the HTTP API; returns ``data.result``."""
        status, body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if status != 200:
            raise RuntimeError(f"query {expr!r}: HTTP {status} {body[:200]!r}")
        result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
        return result

    def wait_scraped(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until every target has been scraped once; returns the ``up`` samples."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            up = self.query("up")
            if len(up) >= len(self.targets):
                return up
            time.sleep(0.1)
        raise TimeoutError(f"prometheus did not scrape {self.targets} within {timeout} s")
