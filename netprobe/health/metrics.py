"""Prometheus metrics: blackbox-exporter-compatible series, plus the failure reason.

Per dependency (labels ``dependency`` and ``target``), the series users already alert on:
``probe_success``, ``probe_duration_seconds``, ``probe_dns_lookup_time_seconds``,
``probe_ssl_earliest_cert_expiry`` and ``probe_http_status_code``; and what blackbox
exporter cannot tell: ``netprobe_fault{layer,code} 1`` for the failing layer and code, and
``netprobe_phase_duration_seconds{phase}`` with blackbox's phase names (resolve, connect,
tls, processing, transfer).

Needs the ``prometheus`` extra (``pip install netprobe[prometheus]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..report import Report
from ..steps import ApplicationStep, DnsStep, TlsStep
from .checker import HealthChecker, HealthResult, public_url

__all__ = [
    "HealthCollector",
    "cert_expiry_of",
    "earliest_cert_expiry",
    "http_status",
    "http_status_of",
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
    """Exports a :class:`HealthChecker`'s last known results (``registry.register(...)``).

    Collecting never waits for a diagnosis: it reads the cache, and when called from the
    event loop (an ASGI metrics app) it also starts the refreshes that are due.
    """

    def __init__(self, source: HealthChecker | Any) -> None:
        checker = getattr(source, "checker", source)
        if not isinstance(checker, HealthChecker):
            raise TypeError("HealthCollector needs a HealthChecker or a HealthApp")
        self.checker = checker

    def collect(self) -> Iterator[Metric]:
        self.checker.kick()  # a no-op without a running event loop (a scraping thread)
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
    """Pure: every metric family for a result. Dependencies never checked export nothing but
    ``probe_success 0`` and the diagnosis counter."""
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
        success.add_metric(labels, 1.0 if c.ok else 0.0)
        critical.add_metric(labels, 1.0 if c.dependency.critical else 0.0)
        diagnoses.add_metric(labels, float(c.diagnoses))
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
    """The earliest ``not_after`` of the presented chain (Unix seconds), if recorded."""
    return cert_expiry_of(report.step(TlsStep))


def http_status(report: Report) -> int | None:
    """The HTTP status the application rung saw, if any."""
    return http_status_of(report.step(ApplicationStep))


def cert_expiry_of(tls: Any) -> float | None:
    """Earliest ``not_after`` of a TLS step's chain. Read defensively (duck-typed): the TLS
    step's fields grow over time, and a dict, a model or a datetime/ISO string all work."""
    if tls is None:
        return None
    chain = _field(tls, "chain")
    times = [t for cert in chain or [] if (t := _timestamp(_field(cert, "not_after"))) is not None]
    if times:
        return min(times)
    return _timestamp(_field(tls, "not_after"))


def http_status_of(app: Any) -> int | None:
    """The HTTP status in an application step (``http.status``)."""
    if app is None:
        return None
    for holder in (_field(app, "http"),):
        for key in ("status", "status_code"):
            value = _field(holder, key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _timestamp(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        stamp: float = value.timestamp()
        return stamp
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
