"""Prometheus metrics: the exposition text, parsed back with prometheus_client's own parser."""

from __future__ import annotations

import httpx
import pytest
from cryptography import x509
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import netprobe
from netprobe.health import Dependency, HealthChecker, health_app
from netprobe.health.metrics import (
    HealthCollector,
    earliest_cert_expiry,
    http_status,
    render_metrics,
)
from netprobe.testing import CertBook, L7Server, TcpServer, closed_port

BLACKBOX = (
    "probe_success",
    "probe_duration_seconds",
    "probe_dns_lookup_time_seconds",
    "probe_ssl_earliest_cert_expiry",
    "probe_http_status_code",
)


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    matches = [v for lab, v in samples[name] if all(lab.get(k) == x for k, x in labels.items())]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


def checker(tcp_server: TcpServer, dead: int) -> HealthChecker:
    return HealthChecker(
        [
            Dependency(f"tcp://{tcp_server.address}", name="db"),
            Dependency(f"127.0.0.1:{dead}", name="cache", critical=False),
            Dependency("localhost:1", name="never"),
        ],
        icmp=False,
    )


@pytest.mark.anyio
async def test_blackbox_series_and_the_fault_reason(tcp_server: TcpServer) -> None:
    dead = closed_port()
    c = checker(tcp_server, dead)
    result = await c.check(budget=5)
    body, content_type = render_metrics(result)
    assert content_type.startswith("text/plain")
    text = body.decode()
    for name in BLACKBOX:
        assert f"# TYPE {name} gauge" in text
    s = parse(text)
    assert value(s, "probe_success", dependency="db") == 1.0
    assert value(s, "probe_success", dependency="cache") == 0.0
    assert value(s, "probe_success", dependency="never") == 0.0
    assert 0 < value(s, "probe_duration_seconds", dependency="db") < 5
    assert value(s, "probe_dns_lookup_time_seconds", dependency="never") >= 0
    # What blackbox exporter cannot say: which layer and which code.
    faults = {(lab["dependency"], lab["layer"], lab["code"]) for lab, _ in s["netprobe_fault"]}
    assert faults == {("cache", "l4", "l4.refused"), ("never", "l4", "l4.refused")}
    assert value(s, "netprobe_fault", dependency="cache", code="l4.refused") == 1.0
    phases = {lab["phase"] for lab, _ in s["netprobe_phase_duration_seconds"]}
    assert "connect" in phases and phases <= {"resolve", "connect", "tls", "processing", "transfer"}
    assert value(s, "netprobe_phase_duration_seconds", dependency="never", phase="resolve") >= 0
    assert value(s, "netprobe_diagnoses_total", dependency="db") == 1.0
    assert value(s, "netprobe_dependency_critical", dependency="cache") == 0.0
    assert value(s, "probe_success", dependency="db", target=f"tcp://{tcp_server.address}") == 1


@pytest.mark.anyio
async def test_collector_in_a_registry_reads_the_cache_and_starts_due_refreshes(
    tcp_server: TcpServer,
) -> None:
    c = checker(tcp_server, closed_port())
    registry = CollectorRegistry()
    registry.register(HealthCollector(c))
    async with c:  # a running checker: the scrape may start refreshes it then owns
        before = parse(generate_latest(registry).decode())
        assert "probe_duration_seconds" not in before, "nothing diagnosed yet, nothing invented"
        assert "probe_success" not in before, "no verdict before the first result"
        assert c.diagnoses == {"db": 1, "cache": 1, "never": 1}, "the scrape started them"
        await c.check(budget=5)  # waits for the refreshes the scrape started
        after = parse(generate_latest(registry).decode())
    assert value(after, "probe_success", dependency="db") == 1.0
    assert value(after, "netprobe_diagnoses_total", dependency="db") == 1.0


def test_collector_without_an_event_loop_only_reads(tcp_server: TcpServer) -> None:
    app = health_app([f"tcp://{tcp_server.address}"])
    registry = CollectorRegistry()
    registry.register(HealthCollector(app))
    s = parse(generate_latest(registry).decode())
    assert value(s, "netprobe_diagnoses_total") == 0.0
    with pytest.raises(TypeError):
        HealthCollector(object())


@pytest.mark.anyio
async def test_metrics_route_of_the_app(tcp_server: TcpServer) -> None:
    app = health_app([Dependency(f"tcp://{tcp_server.address}", name="db")], icmp=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as client:
        r = await client.get("/metrics")
    await app.aclose()
    assert r.status_code == 200
    assert value(parse(r.text), "probe_success", dependency="db") == 1.0


def test_no_sample_before_the_first_result(tcp_server: TcpServer) -> None:
    """A fresh deploy is not an outage: no probe_success (nor any result) until a verdict."""
    checker = HealthChecker([Dependency(f"tcp://{tcp_server.address}", name="db")])
    s = parse(render_metrics(checker.snapshot())[0].decode())
    assert "probe_success" not in s
    assert "netprobe_result_age_seconds" not in s and "netprobe_fault" not in s
    assert value(s, "netprobe_dependency_critical", dependency="db") == 1.0
    assert value(s, "netprobe_diagnoses_total", dependency="db") == 0.0


@pytest.mark.anyio
async def test_cert_expiry_and_http_status_of_a_real_https_server() -> None:
    with CertBook() as book, L7Server("tls", ssl_context=book.server_context()) as server:
        c = HealthChecker(
            [Dependency(f"https://localhost:{server.port}/busy", name="api")],
            ca_file=book.ca_file,
            icmp=False,
        )
        result = await c.check(budget=5)
        leaf = x509.load_pem_x509_certificate(book.leaf()[0])
    report = result.checks[0].report
    assert report is not None and report.fault is not None
    assert report.fault.code == "http.server_error"
    assert earliest_cert_expiry(report) == leaf.not_valid_after_utc.timestamp()
    assert http_status(report) == 503
    s = parse(render_metrics(result)[0].decode())
    assert value(s, "probe_http_status_code", dependency="api") == 503
    assert value(s, "probe_ssl_earliest_cert_expiry", dependency="api") == (
        leaf.not_valid_after_utc.timestamp()
    )


@pytest.mark.anyio
async def test_no_expiry_and_no_status_when_not_seen(tcp_server: TcpServer) -> None:
    report = await netprobe.diagnose(f"tcp://{tcp_server.address}", icmp=False)
    assert earliest_cert_expiry(report) is None and http_status(report) is None
