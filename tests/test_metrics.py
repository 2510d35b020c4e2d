"""Prometheus metrics: the exposition text, parsed back with prometheus_client's own parser."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from netprobe.demo.servers import TcpServer, closed_port
from netprobe.health import Dependency, HealthChecker, health_app
from netprobe.health.metrics import HealthCollector, cert_expiry_of, http_status_of, render_metrics

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
    before = parse(generate_latest(registry).decode())
    assert "probe_duration_seconds" not in before, "nothing diagnosed yet, nothing invented"
    assert value(before, "probe_success", dependency="db") == 0.0
    await c.check(budget=5)  # the refreshes the scrape started
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


NOT_AFTER = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    "tls",
    [
        SimpleNamespace(
            chain=[
                SimpleNamespace(not_after=NOT_AFTER.replace(year=2040)),
                SimpleNamespace(not_after=NOT_AFTER),
            ]
        ),
        SimpleNamespace(chain=[{"not_after": "2031-05-06T07:08:09Z"}]),
        SimpleNamespace(chain=[], not_after=NOT_AFTER.replace(tzinfo=None)),
        {"chain": [{"not_after": NOT_AFTER.timestamp()}]},
    ],
)
def test_earliest_cert_expiry_reads_any_shape(tls: Any) -> None:
    assert cert_expiry_of(tls) == NOT_AFTER.timestamp()


def test_no_expiry_and_no_status_when_not_recorded() -> None:
    assert cert_expiry_of(None) is None
    assert cert_expiry_of(SimpleNamespace(chain=[{"not_after": "garbage"}])) is None
    assert http_status_of(None) is None
    assert http_status_of(SimpleNamespace(http=None)) is None


@pytest.mark.parametrize(
    "app",
    [
        SimpleNamespace(http=SimpleNamespace(status=503)),
        SimpleNamespace(http=SimpleNamespace(status_code=503)),
    ],
)
def test_http_status_reads_any_shape(app: Any) -> None:
    assert http_status_of(app) == 503
