"""netprobe.otel: each diagnosis as spans and metrics, read with the OpenTelemetry SDK's
in-memory exporter and reader, and sent by the SDK's real OTLP/HTTP exporters to a receiver
decoding opentelemetry-proto's protobuf messages (tests/otlp_receiver.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from otlp_receiver import OtlpReceiver

import netprobe
import netprobe.otel
from netprobe import _hooks
from netprobe.testing import CertBook, L7Server, TcpServer, closed_port

FAST: dict[str, Any] = {"timeout": 5.0, "read_timeout": 1.0, "icmp": False}


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def by_name(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name.startswith(prefix)]

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        data = self.metrics.get_metrics_data()
        out: list[tuple[dict[str, Any], Any]] = []
        assert data is not None
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        out.extend((dict(p.attributes or {}), p) for p in m.data.data_points)
        return out


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    netprobe.otel.instrument(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)
    try:
        yield t
    finally:
        netprobe.otel.uninstrument()
        t.tracer_provider.shutdown()
        t.meter_provider.shutdown()


@pytest.fixture(scope="module")
def pki() -> Iterator[CertBook]:
    with CertBook() as book:
        yield book


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.mark.anyio
async def test_a_refused_target_is_a_span_whose_error_type_is_the_fault_code(
    telemetry: Telemetry,
) -> None:
    port = closed_port()
    report = await netprobe.diagnose(f"127.0.0.1:{port}", **FAST)
    assert report.fault is not None and report.fault.code == "l4.refused"

    (root,) = telemetry.by_name("netprobe diagnose")
    assert root.name == f"netprobe diagnose 127.0.0.1:{port}"
    attrs = _attrs(root)
    assert attrs["error.type"] == "l4.refused"
    assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == port
    assert attrs["netprobe.fault.layer"] == "l4" and attrs["netprobe.ok"] is False
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description == report.fault.summary
    assert root.instrumentation_scope is not None
    assert root.instrumentation_scope.name == "netprobe"

    (connect,) = telemetry.by_name("socket connect")
    assert connect.name == f"socket connect 127.0.0.1:{port}"
    assert connect.parent is not None and connect.parent.span_id == root.context.span_id
    c = _attrs(connect)
    assert c["network.peer.address"] == "127.0.0.1" and c["network.peer.port"] == port
    assert c["network.transport"] == "tcp" and c["network.type"] == "ipv4"
    assert c["error.type"] == "l4.refused" and c["netprobe.connect.outcome"] == "refused"
    # No DNS span for an IP literal: there was no lookup.
    assert telemetry.by_name("DNS lookup") == []
    # The spans carry the times the probes measured, inside the diagnosis.
    assert root.start_time is not None and root.end_time is not None
    assert connect.start_time is not None and connect.end_time is not None
    assert root.start_time <= connect.start_time <= connect.end_time <= root.end_time
    total_ns = root.end_time - root.start_time
    assert abs(total_ns / 1e6 - (report.timings_ms.total or 0)) < 0.01

    (verdict,) = telemetry.points("netprobe.diagnoses")
    assert verdict[0]["error.type"] == "l4.refused" and verdict[1].value == 1
    (connect_point,) = telemetry.points("netprobe.tcp.connect.duration")
    assert connect_point[0] == {
        "server.address": "127.0.0.1",
        "server.port": port,
        "network.type": "ipv4",
        "error.type": "l4.refused",
    }


@pytest.mark.anyio
async def test_a_healthy_https_target_has_a_span_per_rung(
    telemetry: Telemetry, pki: CertBook
) -> None:
    with L7Server("tls", ssl_context=pki.server_context("valid")) as server:
        url = f"https://localhost:{server.port}/health"
        report = await netprobe.diagnose(url, ca_file=pki.ca_file, **FAST)
    assert report.ok, report.fault

    (root,) = telemetry.by_name("netprobe diagnose")
    assert "error.type" not in _attrs(root)
    assert root.status.status_code is StatusCode.UNSET
    names = [s.name for s in telemetry.finished()]
    assert "DNS lookup localhost" in names
    assert f"socket connect 127.0.0.1:{server.port}" in names
    assert "TLS client handshake localhost" in names
    assert "GET" in names
    for span in telemetry.finished():
        if span is not root:
            assert span.parent is not None and span.parent.span_id == root.context.span_id

    (established,) = [s for s in telemetry.by_name("socket connect") if "127.0.0.1" in s.name]
    e = _attrs(established)
    assert e["network.local.address"] == "127.0.0.1" and isinstance(e["network.local.port"], int)
    (dns,) = telemetry.by_name("DNS lookup")
    assert _attrs(dns)["dns.question.name"] == "localhost"
    assert "127.0.0.1" in _attrs(dns)["dns.answers"]
    (tls,) = telemetry.by_name("TLS client handshake")
    t = _attrs(tls)
    assert t["tls.protocol.name"] == "tls" and t["tls.protocol.version"] in ("1.2", "1.3")
    assert t["tls.established"] is True and t["tls.client.server_name"] == "localhost"
    assert len(t["tls.server.hash.sha256"]) == 64
    (get,) = telemetry.by_name("GET")
    g = _attrs(get)
    assert get.kind is SpanKind.CLIENT
    assert g["http.request.method"] == "GET" and g["http.response.status_code"] == 200
    assert g["url.full"] == url
    # The rungs follow each other: connect, then TLS, then the request.
    (connect,) = [s for s in telemetry.by_name("socket connect") if "127.0.0.1" in s.name]
    assert connect.end_time is not None and tls.start_time is not None
    assert tls.end_time is not None and get.start_time is not None
    assert connect.end_time <= tls.start_time + 1_000 and tls.end_time <= get.start_time + 1_000

    dns_points = telemetry.points("netprobe.dns.lookup.duration")
    assert dns_points and dns_points[0][0] == {"dns.question.name": "localhost"}
    (verdict,) = telemetry.points("netprobe.diagnoses")
    assert "error.type" not in verdict[0]
    for name in ("netprobe.tls.handshake.duration", "netprobe.request.duration"):
        assert telemetry.points(name), name


@pytest.mark.anyio
async def test_a_tls_fault_is_on_the_handshake_span(telemetry: Telemetry, pki: CertBook) -> None:
    with L7Server("tls", ssl_context=pki.server_context("expired")) as server:
        report = await netprobe.diagnose(
            f"https://127.0.0.1:{server.port}/", ca_file=pki.ca_file, **FAST
        )
    assert report.fault is not None and report.fault.code == "tls.cert_expired"
    (tls,) = telemetry.by_name("TLS client handshake")
    assert _attrs(tls)["error.type"] == "tls.cert_expired"
    assert tls.status.status_code is StatusCode.ERROR
    assert telemetry.by_name("GET") == []


@pytest.mark.anyio
async def test_a_diagnosis_inside_a_traced_request_is_its_child(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("the-service")
    with TcpServer() as db, tracer.start_as_current_span("GET /orders") as request:
        report = await netprobe.diagnose(f"tcp://{db.address}", **FAST)
    assert report.ok
    (root,) = telemetry.by_name("netprobe diagnose")
    assert root.parent is not None
    assert root.parent.span_id == request.get_span_context().span_id
    assert root.context.trace_id == request.get_span_context().trace_id


@pytest.mark.anyio
async def test_uninstrument_stops_and_instrument_is_idempotent(telemetry: Telemetry) -> None:
    netprobe.otel.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    assert netprobe.otel.is_instrumented() and len(_hooks.REPORT_HOOKS) == 1
    await netprobe.diagnose(f"127.0.0.1:{closed_port()}", **FAST)
    assert len(telemetry.by_name("netprobe diagnose")) == 1
    netprobe.otel.uninstrument()
    assert not netprobe.otel.is_instrumented() and _hooks.REPORT_HOOKS == []
    await netprobe.diagnose(f"127.0.0.1:{closed_port()}", **FAST)
    assert len(telemetry.by_name("netprobe diagnose")) == 1


@pytest.mark.anyio
async def test_a_failing_observer_never_breaks_a_diagnosis(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_report: netprobe.Report) -> None:
        raise RuntimeError("exporter down")

    _hooks.add_report_hook(broken)
    try:
        report = await netprobe.diagnose(f"127.0.0.1:{closed_port()}", **FAST)
    finally:
        _hooks.remove_report_hook(broken)
    assert report.fault is not None and report.fault.code == "l4.refused"
    assert "a report observer failed" in caplog.text


def test_record_emits_a_stored_report() -> None:
    """A report read back from JSON gives the same spans, at its own times."""
    t = Telemetry()
    text = (
        '{"target": {"scheme": "tcp", "protocol": "tcp", "tls": false, "host": "db", '
        '"port": 5432, "is_ip": false}, "fault": {"layer": "dns", "code": "dns.nxdomain", '
        '"summary": "db does not exist"}, "timings_ms": {"dns": 12.5, "total": 13.0}, '
        '"steps": [{"name": "dns", "status": "failed", "host": "db", "duration_ms": 12.5, '
        '"rcode": "NXDOMAIN"}], "started_at": "2026-01-02T03:04:05+00:00", '
        '"netprobe_version": "0.1.0"}'
    )
    report = netprobe.Report.model_validate_json(text)
    netprobe.otel.record(report, tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)
    (dns,) = t.by_name("DNS lookup db")
    assert _attrs(dns)["error.type"] == "dns.nxdomain"
    assert dns.start_time == int(report.started_at.timestamp() * 1e9)
    assert dns.end_time is not None and dns.end_time - dns.start_time == 12_500_000
    assert t.by_name("socket connect") == []


def test_without_instrument_opentelemetry_is_never_imported() -> None:
    code = (
        "import anyio, json, sys, netprobe\n"
        "async def main():\n"
        "    await netprobe.diagnose('127.0.0.1:9', icmp=False, timeout=2)\n"
        "anyio.run(main)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert "opentelemetry" not in json.loads(out.stdout)


@pytest.mark.anyio
async def test_the_otlp_http_exporters_deliver_the_spans_and_metrics() -> None:
    """The SDK's real OTLP/HTTP exporters, to a receiver decoding the protobuf messages: what
    a Collector (or any OTLP backend) receives from a service using netprobe.otel."""
    with OtlpReceiver() as rx:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{rx.endpoint}/v1/traces", timeout=5))
        )
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{rx.endpoint}/v1/metrics", timeout=5),
            export_interval_millis=3_600_000,
        )
        meter_provider = MeterProvider(metric_readers=[reader])
        netprobe.otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        try:
            tracer = tracer_provider.get_tracer("the-service")
            port = closed_port()
            with tracer.start_as_current_span("startup check") as parent:
                report = await netprobe.diagnose(f"127.0.0.1:{port}", **FAST)
            assert report.fault is not None
            assert meter_provider.force_flush(timeout_millis=5_000)
        finally:
            netprobe.otel.uninstrument()
            tracer_provider.shutdown()
            meter_provider.shutdown()

    assert ("/v1/traces", "application/x-protobuf") in rx.requests
    spans = {s.name: s for s in rx.spans}
    root = spans[f"netprobe diagnose 127.0.0.1:{port}"]
    connect = spans[f"socket connect 127.0.0.1:{port}"]
    outer = spans["startup check"]
    assert root.scope == "netprobe"
    assert root.parent_span_id == f"{parent.get_span_context().span_id:016x}"
    assert root.parent_span_id == outer.span_id and root.trace_id == outer.trace_id
    assert connect.parent_span_id == root.span_id
    assert root.attributes["error.type"] == "l4.refused"
    assert root.attributes["server.port"] == port
    assert root.status_code == 2  # STATUS_CODE_ERROR
    assert connect.attributes["error.type"] == "l4.refused"
    assert connect.attributes["network.peer.address"] == "127.0.0.1"

    verdicts = rx.metrics["netprobe.diagnoses"]
    # Cumulative: the flush and the shutdown each export the same count.
    assert {(a["error.type"], p.as_int) for a, p in verdicts} == {("l4.refused", 1)}
    histogram = rx.metrics["netprobe.diagnosis.duration"]
    assert histogram[0][1].count == 1
    assert list(histogram[0][1].explicit_bounds) == list(netprobe.otel.BUCKETS)


def test_the_example_traces_a_diagnosis_inside_a_request() -> None:
    port = closed_port()
    example = Path(__file__).resolve().parent.parent / "examples" / "otel_tracing.py"
    out = subprocess.run(
        [sys.executable, str(example), f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    ids = {line.split()[1]: line.split()[0] for line in lines}
    connect, diagnosis, request = lines
    assert f"socket connect 127.0.0.1:{port} (in {ids['netprobe']})" in connect
    assert "error.type=l4.refused" in connect
    assert f"netprobe diagnose 127.0.0.1:{port} (in {ids['GET']})" in diagnosis
    assert request.split()[1:3] == ["GET", "/orders"]
