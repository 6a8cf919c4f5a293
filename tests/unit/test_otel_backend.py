"""The `otel` extra's exporting provider: spans reach an OTLP/HTTP collector (here a loopback
server of the test's own) as protobuf, with the service name and the `OTEL_*` settings honoured."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from authgate import otel_backend


class _Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, str, bytes]] = []


class _Handler(BaseHTTPRequestHandler):
    server: _Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.received.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[_Collector]:
    server = _Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _services(request: ExportTraceServiceRequest) -> set[str]:
    return {
        attribute.value.string_value
        for resource_spans in request.resource_spans
        for attribute in resource_spans.resource.attributes
        if attribute.key == "service.name"
    }


def _span_names(request: ExportTraceServiceRequest) -> list[str]:
    return [
        span.name
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


def test_spans_are_exported_over_otlp_http(
    collector: _Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = collector.server_address[:2]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://{host!s}:{port}/v1/traces")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider = otel_backend.exporting_provider("authgate-test")
    with provider.get_tracer("authgate").start_as_current_span("token"):
        pass
    provider.shutdown()  # flushes the batch processor
    assert len(collector.received) == 1
    path, content_type, body = collector.received[0]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    request = ExportTraceServiceRequest.FromString(body)
    assert _services(request) == {"authgate-test"}
    assert _span_names(request) == ["token"]


def test_otel_service_name_wins_over_the_default(
    collector: _Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = collector.server_address[:2]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://{host!s}:{port}/v1/traces")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "edge-gateway")
    provider = otel_backend.exporting_provider("authgate-test")
    with provider.get_tracer("authgate").start_as_current_span("proxy"):
        pass
    provider.shutdown()
    (_, _, body) = collector.received[0]
    assert _services(ExportTraceServiceRequest.FromString(body)) == {"edge-gateway"}
