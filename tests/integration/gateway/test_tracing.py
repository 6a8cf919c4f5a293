"""W3C Trace Context through the gateway: with tracing off the client's `traceparent` and
`tracestate` reach the upstream unchanged; with tracing on (the SDK's in-memory exporter, the
gateway in this process) the upstream receives the gateway span's `traceparent`, and that span is
a child of the client's."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from authgate import tracing
from authgate.config import ConfigError
from authgate.gateway.config_loader import load_gateway_config
from authgate.gateway.service import GatewayService
from tests.support.gateway import Gateway, Issuer, Upstream, gateway_toml

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def _seen(body: bytes) -> dict[str, list[str]]:
    """The headers the upstream received, by lower-case name."""
    out: dict[str, list[str]] = {}
    for name, value in json.loads(body)["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


def test_off_the_client_trace_context_passes_unchanged(gateway: Gateway, issuer: Issuer) -> None:
    headers = [
        ("traceparent", TRACEPARENT),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("tracestate", "rojo=00f067aa0ba902b7"),
        ("Authorization", f"Bearer {issuer.token()}"),
    ]
    status, _, body = gateway.request("GET", "/orders/1", headers)
    assert status == 200
    seen = _seen(body)
    assert seen["traceparent"] == [TRACEPARENT]
    assert seen["tracestate"] == ["congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7"]


class InProcessGateway:
    """The gateway service on its own event loop thread in this process, on a free port."""

    def __init__(self, config_path: Path) -> None:
        config = load_gateway_config(config_path)
        self.config = replace(config, settings=replace(config.settings, port=0))
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.service: GatewayService = self._call(self._start())
        self.port: int = self._port

    async def _start(self) -> GatewayService:
        service = GatewayService(self.config)
        _, self._port = await service.start()
        return service

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=20)

    def request(self, path: str, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest("GET", path, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def close(self) -> None:
        self._call(self.service.stop(1.0))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    yield exporter
    tracing.disable()


@pytest.fixture
def traced_gateway(
    spans: InMemorySpanExporter, issuer: Issuer, upstream: Upstream, tmp_path: Path
) -> Iterator[InProcessGateway]:
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_toml(issuer, upstream, "access_log = false\n[tracing]\nenabled = true"))
    gw = InProcessGateway(path)
    assert gw.config.settings.tracing
    yield gw
    gw.close()


def _traceparent_of(span: ReadableSpan) -> str:
    context = span.context
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def _server_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    return span


def test_on_the_upstream_gets_the_gateway_span_as_parent(
    traced_gateway: InProcessGateway, spans: InMemorySpanExporter, issuer: Issuer
) -> None:
    token = issuer.token()
    headers = [
        ("traceparent", TRACEPARENT),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("Authorization", f"Bearer {token}"),
    ]
    status, body = traced_gateway.request("/orders/7?q=private", headers)
    assert status == 200
    span = _server_span(spans)
    assert span.name == "GET /orders"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    seen = _seen(body)
    # The same trace, with the gateway's span as the upstream's parent; tracestate kept.
    assert seen["traceparent"] == [_traceparent_of(span)]
    assert _traceparent_of(span).startswith(f"00-{TRACE_ID}-")
    assert seen["tracestate"] == ["congo=t61rcWkgMzE"]
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["url.path"] == "/orders/7"
    values = [str(v) for v in span.attributes.values()]
    assert not any(token in v or "private" in v for v in values)  # no credential, no query


@pytest.mark.parametrize(
    "traceparents",
    [
        ["garbage"],
        ["00-" + "0" * 32 + "-" + PARENT_ID + "-01"],
        ["00-" + TRACE_ID + "-" + PARENT_ID + "-01-extra"],
        ["\u00ff" * 55],
        # Trace Context §3.2: several traceparent fields make none valid.
        [TRACEPARENT, "00-" + "1" * 32 + "-" + "2" * 16 + "-01"],
    ],
)
def test_on_a_bad_client_traceparent_starts_a_new_trace_and_is_not_forwarded(
    traced_gateway: InProcessGateway, spans: InMemorySpanExporter, traceparents: list[str]
) -> None:
    headers = [("traceparent", value) for value in traceparents]
    status, body = traced_gateway.request("/public/x", headers)
    assert status == 200
    span = _server_span(spans)
    assert span.parent is None
    sent = _seen(body)["traceparent"]
    trace_id = format(span.context.trace_id, "032x")
    assert sent == [_traceparent_of(span)]
    assert trace_id not in "".join(traceparents)


def test_on_an_upstream_failure_ends_the_span_as_an_error(
    traced_gateway: InProcessGateway, spans: InMemorySpanExporter
) -> None:
    status, _ = traced_gateway.request("/down/x", [("traceparent", TRACEPARENT)])
    assert status == 502
    span = _server_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 502


def test_tracing_table_is_checked(issuer: Issuer, upstream: Upstream, tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_toml(issuer, upstream))
    assert load_gateway_config(path).settings.tracing is False
    path.write_text(gateway_toml(issuer, upstream, '[tracing]\nenabled = "on"'))
    with pytest.raises(ConfigError, match=r"tracing\.enabled"):
        load_gateway_config(path)
    path.write_text(gateway_toml(issuer, upstream, "[tracing]\nexporter = 'x'"))
    with pytest.raises(ConfigError, match="exporter"):
        load_gateway_config(path)
