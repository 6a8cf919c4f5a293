"""W3C Trace Context across the gateway (https://www.w3.org/TR/trace-context/).

`traceparent` and `tracestate` are end-to-end fields: with tracing off they reach the upstream as
the client sent them (`header_rules` does not drop them). With tracing on (`authgate.tracing`),
each forwarded request gets a server span, a child of the client's `traceparent` when that is
valid (a malformed or repeated one starts a new trace), and the upstream receives the span's own
`traceparent` and `tracestate` in place of the client's, so that the upstream's spans hang under
the gateway's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from authgate import tracing
from authgate.gateway.header_rules import Headers
from authgate.gateway.request_head import RequestHead

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["TRACE_FIELDS", "ended_by", "open_span"]

TRACE_FIELDS = frozenset({b"traceparent", b"tracestate"})


def open_span(head: RequestHead, route: str) -> tuple[Span, Headers]:
    """A server span for `head` (tracing must be on) and the trace fields for the upstream.

    The span carries method, route label and path, never the query or any header value."""
    carrier: dict[str, str] = {}
    for name in TRACE_FIELDS:
        value = head.fields.get(name)
        # Trace Context §3.2: a request with several traceparent fields has none that is valid.
        if value is not None and not (name == b"traceparent" and name in head.repeated):
            if name in head.repeated:  # tracestate may be split over fields: one list
                value = b",".join(head.all_values(name))
            carrier[name.decode("ascii")] = value.decode("latin-1")
    method = head.method.decode("ascii")
    span = tracing.start_span(
        f"{method} {route}",
        kind="server",
        parent=tracing.extract_context(carrier),
        attributes={
            "http.request.method": method,
            "http.route": route,
            "url.path": head.target.path[:200],
        },
    )
    assert span is not None  # noqa: S101 - callers check tracing.active() first
    fields = [
        (k.encode("ascii"), v.encode("latin-1")) for k, v in tracing.inject_headers(span).items()
    ]
    return span, fields


def ended_by(span: Span, callback: Callable[[int], None], *, failed: bool) -> Callable[[int], None]:
    """`callback`, which also records the status on `span` and ends it."""

    def done(status: int) -> None:
        span.set_attribute("http.response.status_code", status)
        if failed or status >= 500:
            tracing.mark_error(span, str(status))
        span.end()
        callback(status)

    return done
