"""The ASGI application of ``netprobe serve``: blackbox exporter's multi-target pattern.

| route | answers |
|---|---|
| ``/probe?target=T&module=M`` | diagnoses T with module M; the metrics of that one diagnosis |
| ``/probe?...&debug=true`` | the same diagnosis as the report's JSON, to read why |
| ``/metrics`` | the exporter's own metrics (probes by module and result, refusals, in flight) |
| ``/-/healthy`` | 200 while the process answers |
| ``/`` | the modules and the allow list, in plain text |

As blackbox exporter does: ``module`` defaults to ``http_2xx`` when the configuration has
one; an unknown module or a missing target is a 400 with the reason; the diagnosis gets the
module's ``timeout``, cut to the scrape's own timeout (Prometheus sends it in
``X-Prometheus-Scrape-Timeout-Seconds``) less half a second, so that the answer arrives
before Prometheus gives up.

Beyond it: a target outside the configuration's allow list, or one carrying credentials, is
a 403 (no server-side request forgery: a scraper cannot make this server connect elsewhere);
at most ``max_concurrent`` diagnoses run at once, and a request that finds no free slot
within its deadline gets a 503.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .._version import __version__
from ..diagnose import diagnose
from .config import ExporterConfig, Module, TargetRefused
from .metrics import probe_metrics_text

__all__ = ["SCRAPE_TIMEOUT_OFFSET", "ExporterApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Seconds kept free under the scrape timeout (blackbox exporter's default timeout_offset).
SCRAPE_TIMEOUT_OFFSET = 0.5
_TEXT = "text/plain; charset=utf-8"


class ExporterApp:
    """The exporter as an ASGI application (serve it with any ASGI server).

    Args:
        config: a loaded configuration (:func:`netprobe.exporter.load_config`).
    """

    def __init__(self, config: ExporterConfig) -> None:
        self.config = config
        self._slots: anyio.Semaphore | None = None
        self.stats = _Stats(config)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.stats)

    def _semaphore(self) -> anyio.Semaphore:
        # Made on first use: an anyio primitive belongs to the event loop that serves.
        if self._slots is None:
            self._slots = anyio.Semaphore(self.config.max_concurrent)
        return self._slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        if scope.get("method") not in ("GET", "HEAD"):
            await _send(send, scope, 405, b"Method Not Allowed\n", _TEXT)
        elif path == "/probe":
            await self._probe(scope, send)
        elif path == "/metrics":
            await _send(send, scope, 200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        elif path == "/-/healthy":
            await _send(send, scope, 200, b"Healthy\n", _TEXT)
        elif path == "/":
            await _send(send, scope, 200, self._index().encode(), _TEXT)
        else:
            await _send(send, scope, 404, b"Not Found\n", _TEXT)

    def _index(self) -> str:
        lines = [f"netprobe {__version__}: blackbox-exporter-compatible /probe", "", "modules:"]
        lines += [f"  {name}" for name in self.config.modules]
        lines += ["", "allowed targets:"]
        lines += [f"  {rule.text}" for rule in self.config.allow]
        return "\n".join(lines) + "\n"

    async def _probe(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        module_name = query.get("module", [""])[-1]
        if not module_name and "http_2xx" in self.config.modules:
            module_name = "http_2xx"
        module = self.config.modules.get(module_name)
        if module is None:
            self.stats.refused["unknown_module"] += 1
            shown = module_name or "(none: give module=...)"
            await _send(send, scope, 400, f"Unknown module {shown!r}\n".encode(), _TEXT)
            return
        try:
            target = module.target(query.get("target", [""])[-1], self.config.allow)
        except TargetRefused as exc:
            self.stats.refused[exc.reason] += 1
            code = 403 if exc.reason == "not_allowed" else 400
            await _send(send, scope, code, f"{exc}\n".encode(), _TEXT)
            return
        budget = _budget(module, scope)
        started = time.monotonic()
        with anyio.move_on_after(budget) as waiting:
            await self._semaphore().acquire()
        if waiting.cancelled_caught:
            self.stats.refused["busy"] += 1
            await _send(send, scope, 503, b"too many probes at once: no slot in time\n", _TEXT)
            return
        try:
            self.stats.in_flight += 1
            left = max(0.1, budget - (time.monotonic() - started))
            options = module.diagnosis_options()
            report = await diagnose(target, options=options, timeout=min(options.timeout, left))
        finally:
            self.stats.in_flight -= 1
            self._semaphore().release()
        self.stats.probes[module.name, "success" if report.ok else "failure"] += 1
        if query.get("debug", [""])[-1] == "true":
            body = report.model_dump_json(indent=2).encode()
            await _send(send, scope, 200, body, "application/json")
            return
        await _send(send, scope, 200, probe_metrics_text(report), CONTENT_TYPE_LATEST)


class _Stats(Collector):
    """The exporter's own counters, exported without ``_created`` series."""

    def __init__(self, config: ExporterConfig) -> None:
        self.probes: Counter[tuple[str, str]] = Counter(
            {(name, result): 0 for name in config.modules for result in ("success", "failure")}
        )
        self.refused: Counter[str] = Counter(
            {reason: 0 for reason in ("not_allowed", "bad_target", "unknown_module", "busy")}
        )
        self.in_flight = 0

    def collect(self) -> Iterator[Metric]:
        probes = CounterMetricFamily(
            "netprobe_exporter_probes",
            "Diagnoses answered, by module and result (success: the target is healthy).",
            labels=["module", "result"],
        )
        for (module, result), n in self.probes.items():
            probes.add_metric([module, result], n)
        refused = CounterMetricFamily(
            "netprobe_exporter_requests_refused",
            "Probe requests refused: not_allowed (403), bad_target and unknown_module (400), "
            "busy (503).",
            labels=["reason"],
        )
        for reason, n in self.refused.items():
            refused.add_metric([reason], n)
        build = GaugeMetricFamily(
            "netprobe_exporter_build_info", "The netprobe version serving.", labels=["version"]
        )
        build.add_metric([__version__], 1.0)
        yield probes
        yield refused
        yield GaugeMetricFamily(
            "netprobe_exporter_probes_in_flight", "Diagnoses running now.", value=self.in_flight
        )
        yield build


def _budget(module: Module, scope: Scope) -> float:
    """The module's timeout, cut to the scrape timeout less the offset (blackbox's rule)."""
    budget = module.options.timeout
    for name, value in scope.get("headers", []):
        if name.lower() == b"x-prometheus-scrape-timeout-seconds":
            try:
                scrape = float(value.decode("latin-1"))
            except ValueError:
                continue
            if scrape > 0:
                budget = min(budget, max(0.1, scrape - SCRAPE_TIMEOUT_OFFSET))
    return budget


async def _send(send: Send, scope: Scope, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
