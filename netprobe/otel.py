"""OpenTelemetry: each diagnosis as a trace (a span per rung) and as metrics.

Needs the ``otel`` extra (``pip install 'netprobe-sdk[otel]'``: ``opentelemetry-api`` only;
the SDK and its exporters are the application's choice). Switched on explicitly, once, at
startup::

    import netprobe.otel
    netprobe.otel.instrument()          # the global tracer and meter providers

From then on every diagnosis (``diagnose()``, ``diagnose_many()``, ``wait_until_ready()``,
the health endpoints, ``netprobe wait``) emits, when it ends:

* a span ``netprobe diagnose {host}:{port}``, child of the span active where ``diagnose()``
  was awaited (a diagnosis made while serving a traced request appears inside that trace),
  with ``error.type`` = the fault code (``l4.refused``) and status ERROR when a fault was
  found;
* a child span per rung, named as .NET's network spans are (OpenTelemetry semantic
  conventions, ``dotnet-network-traces``): ``DNS lookup {name}``, ``socket connect
  {address}:{port}`` for every address tried, ``TLS client handshake {name}``, and the
  request (``GET``, per the HTTP client conventions) or the database greeting
  (``postgresql``, per the database conventions);
* metrics: ``netprobe.dns.lookup.duration`` (as ``dns.lookup.duration``),
  ``netprobe.tcp.connect.duration``, ``netprobe.tls.handshake.duration``,
  ``netprobe.request.duration``, ``netprobe.diagnosis.duration`` (histograms, seconds) and
  ``netprobe.diagnoses`` (a counter, by ``error.type`` = fault code).

The spans are built from the finished report, with the start and end times the probes
measured: nothing is threaded through the probes, and a process that never calls
:func:`instrument` never imports OpenTelemetry. Why explicit rather than automatic: a library
does not emit telemetry its application did not ask for (the OpenTelemetry instrumentations
work the same way, ``SomethingInstrumentor().instrument()``), and the switch is one line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import Counter, Histogram, MeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from ._hooks import add_report_hook, remove_report_hook
from ._version import __version__
from .report import Report
from .steps import AddressAttempt, ApplicationStep, DnsStep, TcpStep, TlsStep

__all__ = ["SCOPE", "instrument", "is_instrumented", "record", "uninstrument"]

#: The instrumentation scope of netprobe's tracer and meter.
SCOPE = "netprobe"

#: dns.lookup.duration's advisory buckets (semantic conventions), used for every phase.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

#: A connect's outcome as a socket error name (.NET's socket connect spans use these).
_SOCKET_ERRORS = {
    "refused": "connection_refused",
    "timeout": "timed_out",
    "host_unreachable": "host_unreachable",
    "network_unreachable": "network_unreachable",
    "port_exhaustion": "address_not_available",
    "fd_exhaustion": "too_many_open_files",
    "denied": "access_denied",
    "reset": "connection_reset",
    "error": "_OTHER",
}

#: The rung whose span carries the fault, by the first part of the code.
_RUNG_OF_CODE = {
    "dns": "dns",
    "l3": "tcp",
    "l4": "tcp",
    "local": "tcp",
    "tls": "tls",
    "http": "application",
    "db": "application",
    "l7": "application",
}

Attributes = dict[str, Any]


class _Instruments:
    def __init__(self, provider: MeterProvider | None) -> None:
        meter = metrics.get_meter(SCOPE, __version__, provider)

        def histogram(name: str, what: str) -> Histogram:
            return meter.create_histogram(
                name, unit="s", description=what, explicit_bucket_boundaries_advisory=BUCKETS
            )

        self.dns = histogram("netprobe.dns.lookup.duration", "Name resolution of a target.")
        self.connect = histogram(
            "netprobe.tcp.connect.duration", "TCP connect to one address, until its outcome."
        )
        self.tls = histogram("netprobe.tls.handshake.duration", "TLS client handshake.")
        self.request = histogram(
            "netprobe.request.duration",
            "The application's exchange: HTTP request to response headers, database greeting "
            "(and login).",
        )
        self.diagnosis = histogram("netprobe.diagnosis.duration", "One whole diagnosis.")
        self.verdicts: Counter = meter.create_counter(
            "netprobe.diagnoses",
            unit="{diagnosis}",
            description="Diagnoses, by verdict: error.type is the fault code (absent: healthy).",
        )


@dataclass
class _Recorder:
    tracer: trace.Tracer
    instruments: _Instruments

    def __call__(self, report: Report) -> None:
        _emit(report, self.tracer, self.instruments, None)


_active: _Recorder | None = None


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Emit spans and metrics for every diagnosis from now on (module docstring).

    Calling it again replaces the providers; :func:`uninstrument` stops it.

    Args:
        tracer_provider: where the spans go; by default the global one
            (``opentelemetry.trace.set_tracer_provider``), also when it is set later.
        meter_provider: where the metrics go; by default the global one.
    """
    global _active
    uninstrument()
    _active = _Recorder(
        trace.get_tracer(SCOPE, __version__, tracer_provider), _Instruments(meter_provider)
    )
    add_report_hook(_active)


def uninstrument() -> None:
    """Stop emitting spans and metrics (nothing happens when not instrumented)."""
    global _active
    if _active is not None:
        remove_report_hook(_active)
        _active = None


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in effect."""
    return _active is not None


def record(
    report: Report,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    context: Context | None = None,
) -> None:
    """Emit the spans and metrics of one report now, without :func:`instrument` (a report
    made elsewhere, read back from JSON...). The spans keep the report's own times.

    Args:
        report: the report of one diagnosis.
        tracer_provider: where the spans go; by default the global one.
        meter_provider: where the metrics go; by default the global one.
        context: the parent context; by default the current one.
    """
    _emit(
        report,
        trace.get_tracer(SCOPE, __version__, tracer_provider),
        _Instruments(meter_provider),
        context,
    )


# -- Building the spans ------------------------------------------------------------------------


def _emit(report: Report, tracer: trace.Tracer, inst: _Instruments, parent: Context | None) -> None:
    t0 = int(report.started_at.timestamp() * 1e9)
    target = report.target
    server: Attributes = {"server.address": target.host, "server.port": target.port}
    fault = report.fault
    fault_rung = _fault_rung(report)
    timings = report.timings_ms
    total_ms = timings.total or 0.0

    def at(ms: float) -> int:
        return t0 + int(max(0.0, min(ms, total_ms)) * 1_000_000)

    attrs: Attributes = {
        **server,
        "url.scheme": target.scheme,
        "netprobe.target": target.url,
        "netprobe.protocol": target.protocol,
        "netprobe.ok": fault is None,
        "netprobe.version": __version__,
    }
    if fault is not None:
        attrs |= {
            "error.type": fault.code,
            "netprobe.fault.layer": fault.layer,
            "netprobe.fault.code": fault.code,
            "netprobe.fault.summary": fault.summary,
        }
    if report.warnings:
        attrs["netprobe.warnings"] = [w.code for w in report.warnings]
    if report.deadline is not None:
        attrs["netprobe.deadline.rung"] = report.deadline.rung or "none"
    root = tracer.start_span(
        f"netprobe diagnose {target.netloc}", context=parent, start_time=t0, attributes=attrs
    )
    for w in report.warnings:
        root.add_event(
            "netprobe.warning",
            {"netprobe.warning.code": w.code, "netprobe.warning.message": w.message},
            timestamp=at(total_ms),
        )
    _set_error(root, fault.code if fault else None, fault.summary if fault else None)
    ctx = trace.set_span_in_context(root, parent)

    def child(
        name: str,
        start_ms: float,
        end_ms: float,
        attributes: Attributes,
        error: str | None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> None:
        if error is not None:
            attributes["error.type"] = error
        span = tracer.start_span(
            name, context=ctx, kind=kind, start_time=at(start_ms), attributes=attributes
        )
        _set_error(span, error, None)
        span.end(end_time=at(end_ms))

    def own_error(rung: str, fallback: str | None) -> str | None:
        """The fault code on the span of the rung that observed it; else the rung's own."""
        if fault is not None and fault_rung == rung and fallback is not None:
            return fault.code
        return fallback

    # DNS: from the start to the resolver's answer (no span for an IP literal).
    dns = report.step(DnsStep)
    dns_end = 0.0
    if dns is not None and dns.source != "literal" and dns.status != "skipped":
        dns_end = timings.dns if timings.dns is not None else (dns.duration_ms or 0.0)
        dns_attrs: Attributes = {"dns.question.name": dns.host, **server}
        if dns.addresses:
            dns_attrs["dns.answers"] = list(dns.addresses)
        if dns.rcode is not None:
            dns_attrs["netprobe.dns.rcode"] = dns.rcode
        dns_error = None
        if dns.status == "failed":
            dns_error = (dns.rcode or (dns.error.type if dns.error else None) or "_OTHER").lower()
        dns_error = own_error("dns", dns_error)
        child(f"DNS lookup {dns.host}", 0.0, dns_end, dns_attrs, dns_error)
        inst.dns.record(
            dns_end / 1000.0, _metric_attrs(dns_attrs, dns_error, ("dns.question.name",))
        )

    # TCP: one span per address, all started when the addresses were known.
    tcp = report.step(TcpStep)
    connected_at = timings.tcp_connect
    if tcp is not None:
        for attempt in tcp.attempts:
            end = dns_end + (attempt.connect_ms if attempt.connect_ms is not None else total_ms)
            connect_attrs = _connect_attributes(attempt, server)
            error = None
            if attempt.outcome != "established":
                error = own_error("tcp", _SOCKET_ERRORS.get(attempt.outcome, "_OTHER"))
            child(f"socket connect {attempt.endpoint}", dns_end, end, connect_attrs, error)
            if attempt.connect_ms is not None:
                inst.connect.record(
                    attempt.connect_ms / 1000.0,
                    _metric_attrs(
                        connect_attrs, error, ("server.address", "server.port", "network.type")
                    ),
                )
    app_start = connected_at if connected_at is not None else dns_end

    # TLS: from the connection to the handshake's end.
    tls = report.step(TlsStep)
    if tls is not None and tls.status != "skipped":
        start = connected_at if connected_at is not None else dns_end
        handshake_end = timings.tls_handshake
        end = handshake_end if handshake_end is not None else start + (tls.duration_ms or 0.0)
        tls_attrs = _tls_attributes(tls, server)
        tls_error = None
        if tls.status == "failed":
            tls_error = own_error("tls", tls.alert or tls.failure or "_OTHER")
        child(
            f"TLS client handshake {tls.server_name or target.host}",
            start,
            end,
            tls_attrs,
            tls_error,
        )
        inst.tls.record(
            (end - start) / 1000.0,
            _metric_attrs(
                tls_attrs, tls_error, ("server.address", "server.port", "tls.protocol.version")
            ),
        )
        app_start = end

    # The application's exchange: the HTTP request, or the database conversation.
    app = report.step(ApplicationStep)
    if app is not None and app.status != "skipped":
        end = app_start + (app.duration_ms or 0.0)
        if app.duration_ms is None and timings.first_byte is not None:
            end = timings.first_byte
        name, app_attrs, app_error, kind = _application(app, server)
        app_error = own_error("application", app_error)
        child(name, app_start, end, app_attrs, app_error, kind)
        inst.request.record(
            (end - app_start) / 1000.0,
            _metric_attrs(
                {**server, "netprobe.protocol": target.protocol},
                app_error,
                ("server.address", "server.port", "netprobe.protocol"),
            ),
        )

    root.end(end_time=at(total_ms))
    summary: Attributes = {**server, "netprobe.protocol": target.protocol}
    if fault is not None:
        summary |= {"error.type": fault.code, "netprobe.fault.layer": fault.layer}
    inst.diagnosis.record(total_ms / 1000.0, summary)
    inst.verdicts.add(1, summary)


def _set_error(span: Span, error: str | None, description: str | None) -> None:
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, description or error))


def _fault_rung(report: Report) -> str | None:
    fault = report.fault
    if fault is None:
        return None
    if report.deadline is not None and report.deadline.rung is not None:
        return report.deadline.rung
    return _RUNG_OF_CODE.get(fault.code.split(".", 1)[0])


def _metric_attrs(attrs: Mapping[str, Any], error: str | None, keep: Sequence[str]) -> Attributes:
    """Low-cardinality attributes for a metric point: the ones named, and error.type."""
    out = {k: attrs[k] for k in keep if k in attrs}
    if error is not None:
        out["error.type"] = error
    return out


def _connect_attributes(attempt: AddressAttempt, server: Attributes) -> Attributes:
    attrs: Attributes = {
        **server,
        "network.peer.address": attempt.address,
        "network.peer.port": attempt.port,
        "network.transport": "tcp",
        "network.type": attempt.family,
        "netprobe.connect.outcome": attempt.outcome,
    }
    if attempt.local_address is not None:
        # "address:port" ("[v6]:port"): the conventions keep the port apart.
        host, _, port = attempt.local_address.rpartition(":")
        if host and port.isdigit():
            attrs["network.local.address"] = host.strip("[]")
            attrs["network.local.port"] = int(port)
    if attempt.error is not None and attempt.error.errno_name:
        attrs["netprobe.connect.errno"] = attempt.error.errno_name
    return attrs


def _tls_attributes(tls: TlsStep, server: Attributes) -> Attributes:
    attrs: Attributes = {**server, "tls.established": tls.status == "ok"}
    if tls.server_name:
        attrs["tls.client.server_name"] = tls.server_name
    if tls.version:
        # "TLSv1.3" -> name "tls", version "1.3" (semantic conventions: tls.protocol.*).
        name, _, number = tls.version.partition("v")
        attrs["tls.protocol.name"] = name.lower()
        attrs["tls.protocol.version"] = number or tls.version
    if tls.cipher:
        attrs["tls.cipher"] = tls.cipher
    if tls.alpn:
        attrs["tls.next_protocol"] = tls.alpn
    if tls.chain:
        leaf = tls.chain[0]
        attrs |= {
            "tls.server.subject": leaf.subject,
            "tls.server.issuer": leaf.issuer,
            "tls.server.not_before": leaf.not_before.isoformat(),
            "tls.server.not_after": leaf.not_after.isoformat(),
            "tls.server.hash.sha256": leaf.sha256.replace(":", "").upper(),
        }
    if tls.verify_message:
        attrs["netprobe.tls.verify_message"] = tls.verify_message
    if tls.alert:
        attrs["netprobe.tls.alert"] = tls.alert
    return attrs


def _application(
    app: ApplicationStep, server: Attributes
) -> tuple[str, Attributes, str | None, SpanKind]:
    """The span of the application rung: its name, attributes, error and kind."""
    if app.http is not None:
        http = app.http
        attrs: Attributes = {**server, "http.request.method": http.method, "url.full": http.url}
        if http.status is not None:
            attrs["http.response.status_code"] = http.status
        if http.http_version:
            attrs["network.protocol.version"] = http.http_version.removeprefix("HTTP/")
        error: str | None = None
        if http.failure is not None:
            error = http.failure
        elif http.status is not None and (http.healthy is False or http.status >= 400):
            error = str(http.status)  # the HTTP client conventions' error.type
        return http.method, attrs, error, SpanKind.CLIENT
    db = app.database
    if db is not None:
        system = db.server or db.protocol
        attrs = {
            **server,
            "db.system.name": system,
            "db.system": system,
            "db.operation.name": db.phase,
        }
        if db.error_code is not None:
            attrs["db.response.status_code"] = db.error_code
        if db.version is not None:
            attrs["netprobe.db.version"] = db.version
        ok = db.outcome in ("ready", "validated")
        return system, attrs, None if ok else db.outcome, SpanKind.CLIENT
    other = None if app.status == "ok" else (app.reason or "_OTHER")
    return app.protocol, {**server}, other, SpanKind.CLIENT
