"""The OpenTelemetry side of `authgate.tracing`, imported only once tracing is enabled.

Everything here needs the `otel` extra (`opentelemetry-api`, `-sdk`, the OTLP/HTTP exporter).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import event

__all__ = [
    "exporting_provider",
    "extract",
    "inject",
    "listen_to_engine",
    "mark_error",
    "start_span",
    "use_span",
]

_KINDS = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT, "internal": SpanKind.INTERNAL}
_PROPAGATOR = TraceContextTextMapPropagator()


def exporting_provider(service_name: str) -> TracerProvider:
    """A provider that batches spans to the OTLP/HTTP exporter (configured by `OTEL_*`)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415 - the `otel` extra is optional
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import (  # noqa: PLC0415 - with the exporter
        OTELResourceDetector,
        Resource,
    )
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415 - idem

    # Resource.create lets its argument override the OTEL_* variables; the operator's settings must
    # win over this default, so they are merged once more on top.
    resource = Resource.create({"service.name": service_name}).merge(
        OTELResourceDetector().detect()
    )
    provider = TracerProvider(resource=resource)
    # The batch processor exports from its own thread, with the SDK's bounded queue and timeouts.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def start_span(
    tracer: Tracer,
    name: str,
    kind: str,
    parent: Context | None,
    attributes: Mapping[str, Any] | None,
) -> Span:
    return tracer.start_span(name, context=parent, kind=_KINDS[kind], attributes=attributes)


@contextmanager
def use_span(span: Span) -> Iterator[None]:
    with trace.use_span(span, end_on_exit=False):
        yield


def mark_error(span: Span, description: str) -> None:
    span.set_status(Status(StatusCode.ERROR, description))


def extract(headers: Mapping[str, str]) -> Context:
    return _PROPAGATOR.extract(headers)


def inject(span: Span) -> dict[str, str]:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def listen_to_engine(sync_engine: Any, system: str, tracer: Tracer) -> None:
    """A client span around every statement on `sync_engine`.

    Spans carry the statement's first keyword and its text with bind placeholders (never the bound
    values, which may be token hashes or codes), cut to 500 characters."""

    def before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split(None, 1)
        operation = words[0].upper() if words else "SQL"
        conn.info["authgate.span"] = start_span(
            tracer,
            f"db {operation}",
            "client",
            None,
            {"db.system": system, "db.operation": operation, "db.statement": statement[:500]},
        )

    def after(conn: Any, *_args: Any) -> None:
        span = conn.info.pop("authgate.span", None)
        if span is not None:
            span.end()

    def failed(context: Any) -> None:
        conn = context.connection
        span = conn.info.pop("authgate.span", None) if conn is not None else None
        if span is not None:
            mark_error(span, type(context.original_exception).__name__)
            span.end()

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", failed)
