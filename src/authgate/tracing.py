"""Optional OpenTelemetry tracing (`pip install authgate[otel]`, then `[tracing] enabled = true`).

Off by default, and then free: no OpenTelemetry module is imported, and each `span(...)` or
`active()` is one check of a module global (`span` returns a shared no-op context manager). On,
`enable()` installs the SDK's tracer provider with an OTLP/HTTP exporter, which reads the standard
`OTEL_*` variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, ...). The OpenTelemetry
calls themselves live in `otel_backend`, imported on first use.

Span attributes never carry tokens, secrets, codes, query strings or bodies: callers pass method,
route, path, status, algorithm, client_id and SQL text with bind placeholders only.

W3C Trace Context (`traceparent`, `tracestate`) is read from incoming requests with
`extract_context` and written for the next hop with `inject_headers`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the extra may be absent: nothing of it is imported at run time unless enabled
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "TracingUnavailable",
    "active",
    "current",
    "disable",
    "enable",
    "extract_context",
    "inject_headers",
    "instrument_engine",
    "mark_error",
    "span",
    "start_span",
    "use_provider",
]

_NAME = "authgate"
_NULL: AbstractContextManager[None] = contextlib.nullcontext()


class _State:
    tracer: Tracer | None = None
    provider: TracerProvider | None = None


_state = _State()


class TracingUnavailable(RuntimeError):
    """Tracing was enabled but the `otel` extra is not installed."""


def active() -> bool:
    """True when spans are recorded."""
    return _state.tracer is not None


def enable(service_name: str) -> None:
    """Record spans and export them over OTLP/HTTP (configured by the `OTEL_*` variables).

    Once per process (later calls change nothing). `service_name` is used unless
    `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` names one."""
    if _state.tracer is not None:
        return
    try:
        from authgate import otel_backend  # noqa: PLC0415 - only with tracing on

        provider = otel_backend.exporting_provider(service_name)
    except ImportError as exc:
        raise TracingUnavailable(
            "tracing is enabled but OpenTelemetry is not installed: pip install 'authgate[otel]'"
        ) from exc
    use_provider(provider)


def use_provider(provider: TracerProvider) -> None:
    """Record spans with `provider` (tests pass one with an in-memory exporter)."""
    _state.provider = provider
    _state.tracer = provider.get_tracer(_NAME)


def disable() -> None:
    """Stop recording; the provider flushes and shuts down."""
    provider = _state.provider
    _state.provider = _state.tracer = None
    if provider is not None:
        provider.shutdown()


def span(name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
    """A child span of the current one, current inside the `with`; a no-op when tracing is off."""
    tracer = _state.tracer
    if tracer is None:
        return _NULL
    return tracer.start_as_current_span(name, attributes=attributes)


def start_span(
    name: str,
    *,
    kind: str = "internal",
    parent: Context | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Span | None:
    """A span the caller ends itself (`span.end()`), or None when tracing is off.

    `kind`: "server", "client" or "internal". `parent`: from `extract_context`; else the current
    span's context."""
    tracer = _state.tracer
    if tracer is None:
        return None
    from authgate import otel_backend  # noqa: PLC0415 - loaded with tracing on

    return otel_backend.start_span(tracer, name, kind, parent, attributes)


def current(span_: Span) -> AbstractContextManager[None]:
    """Make `span_` the current span inside the `with` (it is not ended on exit)."""
    from authgate import otel_backend  # noqa: PLC0415 - loaded with tracing on

    return otel_backend.use_span(span_)


def mark_error(span_: Span, description: str) -> None:
    """Set `span_`'s status to error (a 5xx answer, a failed statement)."""
    from authgate import otel_backend  # noqa: PLC0415 - loaded with tracing on

    otel_backend.mark_error(span_, description)


def extract_context(headers: Mapping[str, str]) -> Context:
    """The parent context named by W3C `traceparent`/`tracestate` in `headers` (lower-case names).

    A malformed `traceparent` is ignored by the propagator (a new trace starts), never an error."""
    from authgate import otel_backend  # noqa: PLC0415 - loaded with tracing on

    return otel_backend.extract(headers)


def inject_headers(span_: Span) -> dict[str, str]:
    """The `traceparent` (and `tracestate`) naming `span_` as the parent of the next hop."""
    from authgate import otel_backend  # noqa: PLC0415 - loaded with tracing on

    return otel_backend.inject(span_)


def instrument_engine(sync_engine: Any, system: str) -> None:
    """A client span for every statement on `sync_engine` (an `AsyncEngine.sync_engine`), when
    tracing is on. `system`: "sqlite" or "postgresql"."""
    tracer = _state.tracer
    if tracer is not None:
        from authgate import otel_backend  # noqa: PLC0415 - loaded with tracing on

        otel_backend.listen_to_engine(sync_engine, system, tracer)
