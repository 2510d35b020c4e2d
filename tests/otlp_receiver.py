"""An OTLP/HTTP receiver on loopback: what a Collector's ``otlp`` receiver (``http``
protocol) does with ``POST /v1/traces`` and ``/v1/metrics``, decoded with the protobuf
definitions of ``opentelemetry-proto`` (the Collector itself is not packaged in Debian).

OTLP/HTTP (opentelemetry-proto, docs/specification.md "OTLP/HTTP"): the body is an
``ExportTraceServiceRequest`` / ``ExportMetricsServiceRequest`` in binary protobuf
(``Content-Type: application/x-protobuf``), possibly gzip-compressed
(``Content-Encoding: gzip``); a success is HTTP 200 with the matching
``Export*ServiceResponse``.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["OtlpReceiver", "ReceivedSpan", "value_of"]


def value_of(value: AnyValue) -> Any:
    """A protobuf AnyValue as a Python value."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if kind is None:
        return None
    return getattr(value, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


@dataclass
class ReceivedSpan:
    name: str
    span_id: str
    parent_span_id: str
    trace_id: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    scope: str
    events: list[str] = field(default_factory=list)


class OtlpReceiver:
    """``with OtlpReceiver() as rx:`` export to ``rx.endpoint``; read ``rx.spans`` and
    ``rx.metrics`` (metric name -> list of (attributes, point) pairs)."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.metrics: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        self.requests: list[tuple[str, str]] = []  # (path, content type)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                ctype = self.headers.get("Content-Type", "")
                with receiver._lock:
                    receiver.requests.append((self.path, ctype))
                if ctype != "application/x-protobuf":
                    self.send_error(415)
                    return
                if self.path == "/v1/traces":
                    receiver._traces(body)
                    answer = ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    receiver._metrics(body)
                    answer = ExportMetricsServiceResponse().SerializeToString()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _traces(self, body: bytes) -> None:
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        out = []
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append(
                        ReceivedSpan(
                            name=s.name,
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            trace_id=s.trace_id.hex(),
                            kind=s.kind,
                            start_ns=s.start_time_unix_nano,
                            end_ns=s.end_time_unix_nano,
                            status_code=s.status.code,
                            status_message=s.status.message,
                            attributes=attributes(s.attributes),
                            scope=ss.scope.name,
                            events=[e.name for e in s.events],
                        )
                    )
        with self._lock:
            self.spans.extend(out)

    def _metrics(self, body: bytes) -> None:
        req = ExportMetricsServiceRequest()
        req.ParseFromString(body)
        with self._lock:
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        kind = m.WhichOneof("data")
                        if kind is None:
                            continue
                        for p in getattr(m, kind).data_points:
                            self.metrics.setdefault(m.name, []).append(
                                (attributes(p.attributes), p)
                            )

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
