"""netprobe's spans inside a service's own trace (the ``otel`` extra).

The application owns the OpenTelemetry SDK and decides where spans go (here: printed, one
line per span; in production an OTLP exporter to a Collector). netprobe only needs
``opentelemetry-api`` and one call at startup.

Run: python examples/otel_tracing.py [TARGET]   (default: the local PostgreSQL)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import anyio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import netprobe
import netprobe.otel


class OneLine(SpanExporter):
    """Each span as one line: its name, parent, duration and error.type."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            assert span.start_time is not None and span.end_time is not None
            parent = f" (in {span.parent.span_id:016x})" if span.parent else ""
            error = (span.attributes or {}).get("error.type")
            took = (span.end_time - span.start_time) / 1e6
            print(
                f"{span.context.span_id:016x} {span.name}{parent} {took:.1f} ms"
                + (f" error.type={error}" if error else "")
            )
        return SpanExportResult.SUCCESS


# --8<-- [start:setup]
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(OneLine()))
trace.set_tracer_provider(provider)

netprobe.otel.instrument()  # every diagnosis from now on: a span per rung
# --8<-- [end:setup]


async def main(target: str) -> int:
    tracer = trace.get_tracer("orders-service")
    # --8<-- [start:request]
    with tracer.start_as_current_span("GET /orders"):
        report = await netprobe.diagnose(target)  # a child of "GET /orders"
    # --8<-- [end:request]
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:5432"))
