"""Prometheus metrics: blackbox-exporter-compatible series, plus the failure reason.

Per dependency (labels ``dependency`` and ``target``), the series users already alert on:
``probe_success``, ``probe_duration_seconds``, ``probe_dns_lookup_time_seconds``,
``probe_ssl_earliest_cert_expiry`` and ``probe_http_status_code``; and what blackbox
exporter cannot tell: ``netprobe_fault{layer,code} 1`` for the failing layer and code, and
``netprobe_phase_duration_seconds{phase}`` with blackbox's phase names (resolve, connect,
tls, processing, transfer).

A dependency not yet checked has no ``probe_success`` sample (nor any other result series)
until its first diagnosis ends: a fresh deploy never looks like an outage. Only
``netprobe_dependency_critical`` and ``netprobe_diagnoses_total`` describe it meanwhile, so
``netprobe_dependency_critical unless on(dependency) probe_success`` lists what has no
verdict yet.

Needs the ``prometheus`` extra (``pip install 'netprobe-sdk[prometheus]'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..report import Report
from ..steps import ApplicationStep, DnsStep, TlsStep
from .checker import HealthChecker, HealthResult, public_url

__all__ = [
    "HealthCollector",
    "earliest_cert_expiry",
    "http_status",
    "metric_families",
    "render_metrics",
]

_LABELS = ["dependency", "target"]
_PHASES = (
    ("resolve", "dns"),
    ("connect", "tcp_connect"),
    ("tls", "tls_handshake"),
    ("processing", "first_byte"),
    ("transfer", "total"),
)


class HealthCollector(Collector):
    """Exports a `HealthChecker`'s last known results (``registry.register(...)``).

    Collecting never waits for a diagnosis: it reads the cache, and when the checker is
    running and the scrape comes on its event loop (an ASGI metrics app), it also starts the
    refreshes that are due.
    """

    def __init__(self, source: HealthChecker | Any) -> None:
        checker = getattr(source, "checker", source)
        if not isinstance(checker, HealthChecker):
            raise TypeError("HealthCollector needs a HealthChecker or a HealthApp")
        self.checker = checker

    def collect(self) -> Iterator[Metric]:
        self.checker.kick()  # a no-op off the running checker's loop (a scraping thread)
        yield from metric_families(self.checker.snapshot())


def render_metrics(result: HealthResult) -> tuple[bytes, str]:
    """The Prometheus text exposition of one result, and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Static(result))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Static(Collector):
    def __init__(self, result: HealthResult) -> None:
        self.result = result

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(self.result)


def metric_families(result: HealthResult) -> list[Metric]:
    """Pure: every metric family for a result. A dependency not yet checked exports no
    result series (no ``probe_success``): only whether it is critical and the diagnoses
    started."""
    success = GaugeMetricFamily(
        "probe_success", "Whether the dependency is healthy (1) or not (0).", labels=_LABELS
    )
    duration = GaugeMetricFamily(
        "probe_duration_seconds", "How long the diagnosis took.", labels=_LABELS
    )
    dns = GaugeMetricFamily(
        "probe_dns_lookup_time_seconds", "How long name resolution took.", labels=_LABELS
    )
    cert = GaugeMetricFamily(
        "probe_ssl_earliest_cert_expiry",
        "Earliest certificate expiry of the presented chain, Unix seconds.",
        labels=_LABELS,
    )
    http = GaugeMetricFamily(
        "probe_http_status_code", "HTTP status of the response, 0 if none.", labels=_LABELS
    )
    fault = GaugeMetricFamily(
        "netprobe_fault",
        "1 for the failing layer and fault code of an unhealthy dependency.",
        labels=[*_LABELS, "layer", "code"],
    )
    phases = GaugeMetricFamily(
        "netprobe_phase_duration_seconds",
        "Duration of each phase of the last diagnosis (blackbox exporter's phase names).",
        labels=[*_LABELS, "phase"],
    )
    age = GaugeMetricFamily(
        "netprobe_result_age_seconds", "Age of the last known result.", labels=_LABELS
    )
    critical = GaugeMetricFamily(
        "netprobe_dependency_critical",
        "1 if the dependency is critical (a failure makes the service not ready).",
        labels=_LABELS,
    )
    diagnoses = CounterMetricFamily(
        "netprobe_diagnoses", "Diagnoses started for the dependency.", labels=_LABELS
    )
    for c in result.checks:
        labels = [c.dependency.name, public_url(c.dependency.target)]
        critical.add_metric(labels, 1.0 if c.dependency.critical else 0.0)
        diagnoses.add_metric(labels, float(c.diagnoses))
        if c.status == "pending":
            continue  # no verdict yet: no sample, rather than a false "down"
        success.add_metric(labels, 1.0 if c.ok else 0.0)
        if c.age_s is not None:
            age.add_metric(labels, c.age_s)
        r = c.report
        if r is None:
            continue
        if r.timings_ms.total is not None:
            duration.add_metric(labels, r.timings_ms.total / 1000.0)
        dns_step = r.step(DnsStep)
        dns_ms = r.timings_ms.dns
        if dns_ms is None and dns_step is not None:
            dns_ms = dns_step.duration_ms
        if dns_ms is not None:
            dns.add_metric(labels, dns_ms / 1000.0)
        expiry = earliest_cert_expiry(r)
        if expiry is not None:
            cert.add_metric(labels, expiry)
        if r.target.protocol == "http":
            http.add_metric(labels, float(http_status(r) or 0))
        if r.fault is not None:
            fault.add_metric([*labels, r.fault.layer, r.fault.code], 1.0)
        prev = 0.0
        for phase, field in _PHASES:
            value = getattr(r.timings_ms, field)
            if value is None:
                continue
            phases.add_metric([*labels, phase], max(0.0, value - prev) / 1000.0)
            prev = max(prev, value)
    return [success, duration, dns, cert, http, fault, phases, age, critical, diagnoses]


def earliest_cert_expiry(report: Report) -> float | None:
    """The earliest ``not_after`` of the presented chain (Unix seconds), if one was seen."""
    tls = report.step(TlsStep)
    if tls is None or not tls.chain:
        return None
    return min(cert.not_after.timestamp() for cert in tls.chain)


def http_status(report: Report) -> int | None:
    """The HTTP status the application rung saw, if any."""
    app = report.step(ApplicationStep)
    if app is None or app.http is None:
        return None
    return app.http.status
