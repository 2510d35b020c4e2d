"""One diagnosis as the metrics of a blackbox exporter ``/probe`` answer, plus the reasons.

Blackbox exporter's own series, with its names, types and (absent) labels, so that the
recording rules, alerts and dashboards written for it read netprobe's answers unchanged
(checked against Debian's prometheus-blackbox-exporter 0.23, tests/test_exporter.py):

* ``probe_success``, ``probe_duration_seconds``, ``probe_dns_lookup_time_seconds``,
  ``probe_ip_protocol`` (4 or 6: the address connected to);
* HTTP targets: ``probe_http_status_code`` (0 without an answer),
  ``probe_http_duration_seconds{phase}`` (resolve, connect, tls, processing, transfer),
  ``probe_http_ssl``, ``probe_http_version``, ``probe_http_redirects``;
* when a certificate chain was presented: ``probe_ssl_earliest_cert_expiry`` (Unix
  seconds) and ``probe_tls_version_info{version}``.

And what blackbox exporter cannot say: ``netprobe_fault{layer,code} 1`` for the fault found
(no sample when healthy), ``netprobe_warning{code} 1`` per warning,
``netprobe_phase_duration_seconds{phase}`` for every target (blackbox's phase names), and
``netprobe_deadline_exceeded`` (1 when the total deadline cut the diagnosis).

The labels a scrape adds (``instance``, ``job``, ``module`` from relabelling) come from
Prometheus, as with blackbox exporter: the answer itself carries none but these.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..report import Report
from ..steps import ApplicationStep, DnsStep, TcpStep, TlsStep

__all__ = ["PHASES", "probe_families", "probe_metrics_text"]

#: blackbox exporter's HTTP phases and the report timing each one ends at.
PHASES = (
    ("resolve", "dns"),
    ("connect", "tcp_connect"),
    ("tls", "tls_handshake"),
    ("processing", "first_byte"),
    ("transfer", "total"),
)


def probe_metrics_text(report: Report) -> bytes:
    """The Prometheus text exposition of one diagnosis (a ``/probe`` answer's body)."""
    from prometheus_client import generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_One(report))
    return generate_latest(registry)


class _One(Collector):
    def __init__(self, report: Report) -> None:
        self.report = report

    def collect(self) -> Iterator[Metric]:
        yield from probe_families(self.report)


def _gauge(name: str, text: str, value: float | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def probe_families(report: Report) -> list[Metric]:
    """Pure: the metric families of one report (module docstring)."""
    timings = report.timings_ms
    out: list[Metric] = [
        _gauge(
            "probe_success",
            "Displays whether or not the probe was a success",
            1.0 if report.ok else 0.0,
        ),
        _gauge(
            "probe_duration_seconds",
            "Returns how long the probe took to complete in seconds",
            (timings.total or 0.0) / 1000.0,
        ),
    ]
    dns = report.step(DnsStep)
    dns_ms = timings.dns if timings.dns is not None else (dns.duration_ms if dns else None)
    out.append(
        _gauge(
            "probe_dns_lookup_time_seconds",
            "Returns the time taken for probe dns lookup in seconds",
            (dns_ms or 0.0) / 1000.0,
        )
    )
    family = _ip_protocol(report)
    if family is not None:
        out.append(
            _gauge("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6", family)
        )
    phases = _phase_seconds(report)
    if report.target.protocol == "http":
        out.extend(_http_families(report, phases))
    tls = report.step(TlsStep)
    if tls is not None and tls.chain:
        out.append(
            _gauge(
                "probe_ssl_earliest_cert_expiry",
                "Returns last SSL chain expiry in unixtime",
                min(c.not_after.timestamp() for c in tls.chain),
            )
        )
    if tls is not None and tls.version:
        version = GaugeMetricFamily(
            "probe_tls_version_info",
            "Returns the TLS version used or NaN when unknown",
            labels=["version"],
        )
        version.add_metric([tls.version.replace("TLSv", "TLS ")], 1.0)
        out.append(version)

    fault = GaugeMetricFamily(
        "netprobe_fault",
        "1 for the layer and stable code of the fault netprobe found (no sample when healthy)",
        labels=["layer", "code"],
    )
    if report.fault is not None:
        fault.add_metric([report.fault.layer, report.fault.code], 1.0)
    warning = GaugeMetricFamily(
        "netprobe_warning", "1 for each warning of the diagnosis", labels=["code"]
    )
    for w in report.warnings:
        warning.add_metric([w.code], 1.0)
    phase = GaugeMetricFamily(
        "netprobe_phase_duration_seconds",
        "Duration of each phase of the diagnosis (blackbox exporter's phase names)",
        labels=["phase"],
    )
    for name, seconds in phases.items():
        phase.add_metric([name], seconds)
    deadline = _gauge(
        "netprobe_deadline_exceeded",
        "1 when the total deadline cut the diagnosis short (results partial)",
        1.0 if report.deadline is not None else 0.0,
    )
    out.extend([fault, warning, phase, deadline])
    return out


def _ip_protocol(report: Report) -> float | None:
    """4 or 6: the family of the address connected to, else of the first address resolved
    (blackbox exporter reports the family it chose, also when the connect failed)."""
    tcp = report.step(TcpStep)
    if tcp is not None:
        for attempt in tcp.attempts:
            if attempt.outcome == "established":
                return 6.0 if attempt.family == "ipv6" else 4.0
    dns = report.step(DnsStep)
    if dns is not None and dns.addresses:
        return 6.0 if ":" in dns.addresses[0] else 4.0
    return None


def _phase_seconds(report: Report) -> dict[str, float]:
    """Each phase's own duration: the time between the marks that end it and the one before."""
    out: dict[str, float] = {}
    prev = 0.0
    for name, mark in PHASES:
        value = getattr(report.timings_ms, mark)
        if value is None:
            continue
        out[name] = max(0.0, value - prev) / 1000.0
        prev = max(prev, value)
    return out


def _http_families(report: Report, phases: dict[str, float]) -> list[Metric]:
    app = report.step(ApplicationStep)
    http = app.http if app is not None else None
    status = http.status if http is not None and http.status is not None else 0
    duration = GaugeMetricFamily(
        "probe_http_duration_seconds",
        "Duration of http request by phase, summed over all redirects",
        labels=["phase"],
    )
    for name, _ in PHASES:
        duration.add_metric([name], phases.get(name, 0.0))
    version = 0.0
    if http is not None and http.http_version:
        try:
            version = float(http.http_version.removeprefix("HTTP/"))
        except ValueError:
            version = 0.0
    return [
        _gauge("probe_http_status_code", "Response HTTP status code", float(status)),
        duration,
        _gauge(
            "probe_http_ssl",
            "Indicates if SSL was used for the final redirect",
            1.0 if report.target.tls else 0.0,
        ),
        _gauge("probe_http_version", "Returns the version of HTTP of the probe response", version),
        _gauge(
            "probe_http_redirects",
            "The number of redirects",
            float(len(http.redirects)) if http is not None else 0.0,
        ),
    ]
