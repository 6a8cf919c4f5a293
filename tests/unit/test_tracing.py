"""OpenTelemetry tracing of the authorization server, with the SDK's in-memory exporter, on SQLite
and PostgreSQL: a token request gives a server span (a child of the caller's `traceparent`), the
database statements and the signing under it, and no secret in any attribute."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from authgate import tracing
from authgate.config import ConfigError
from authgate.server.config_loader import load_config
from tests.support.server_harness import FakeClock, Harness, make_config, running

API = "https://api.example.test"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    yield exporter
    tracing.disable()


@pytest.fixture
async def traced(
    spans: InMemorySpanExporter, database_url: str, clock: FakeClock
) -> AsyncIterator[Harness]:
    """The app with tracing on from before its storage opens (so its engine is traced)."""
    async with running(make_config(database_url), clock) as h:
        yield h


def _attribute_values(finished: tuple[ReadableSpan, ...]) -> list[str]:
    return [str(v) for s in finished for v in (s.attributes or {}).values()]


async def test_token_request_spans_endpoint_database_and_signing(
    traced: Harness, spans: InMemorySpanExporter
) -> None:
    h = traced
    await h.create_api(API, signing_alg="ES256")
    client, secret = await h.create_client(scopes=("read",))
    spans.clear()
    response = await h.http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, secret or ""),
        headers={"traceparent": TRACEPARENT, "tracestate": "vendor=1"},
    )
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind is SpanKind.SERVER]
    assert [s.name for s in server] == ["POST /token"]
    endpoint = server[0]
    # A child of the caller's span, in the caller's trace (W3C Trace Context).
    assert endpoint.parent is not None
    assert format(endpoint.context.trace_id, "032x") == TRACE_ID
    assert format(endpoint.parent.span_id, "016x") == PARENT_ID
    assert endpoint.attributes is not None
    assert endpoint.attributes["http.response.status_code"] == 200
    assert endpoint.attributes["http.route"] == "/token"
    assert endpoint.attributes["oauth.client_id"] == client.client_id
    children = [s for s in finished if s.parent and s.parent.span_id == endpoint.context.span_id]
    signing = [s for s in children if s.name == "sign"]
    assert len(signing) == 1
    assert signing[0].attributes is not None
    assert signing[0].attributes["jwt.alg"] == "ES256"
    assert signing[0].attributes["jwt.typ"] == "at+jwt"
    database = [s for s in children if s.name.startswith("db ")]
    assert database, [s.name for s in finished]
    system = "sqlite" if h.config.database_url.startswith("sqlite") else "postgresql"
    assert all(s.kind is SpanKind.CLIENT for s in database)
    assert all((s.attributes or {}).get("db.system") == system for s in database)
    assert any(s.name == "db SELECT" for s in database)
    # Nothing secret in any attribute: not the client secret, not the token.
    values = _attribute_values(finished)
    assert secret
    assert not any(secret in v for v in values)
    token = response.json()["access_token"]
    assert not any(token in v or token.split(".")[2] in v for v in values)


async def test_rsa_signing_on_threads_is_still_under_the_endpoint(
    traced: Harness, spans: InMemorySpanExporter
) -> None:
    h = traced
    await h.create_api(API, signing_alg="RS256")
    client, secret = await h.create_client(scopes=("read",))
    spans.clear()
    assert (await h.token(client, secret)).status_code == 200
    finished = spans.get_finished_spans()
    (endpoint,) = [s for s in finished if s.kind is SpanKind.SERVER]
    (signing,) = [s for s in finished if s.name == "sign"]
    assert signing.parent is not None
    assert signing.parent.span_id == endpoint.context.span_id
    assert endpoint.parent is None  # no traceparent sent: a new trace


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        "00-" + "0" * 32 + "-" + PARENT_ID + "-01",  # all-zero trace id is invalid
        "00-" + TRACE_ID + "-" + "0" * 16 + "-01",  # all-zero parent id is invalid
        "ff-" + TRACE_ID + "-" + PARENT_ID + "-01",  # version ff is forbidden
        "00-" + TRACE_ID.upper() + "-" + PARENT_ID + "-01",  # upper-case hex is invalid
        "00-" + TRACE_ID + "-" + PARENT_ID + "-01" + "x" * 10_000,
        "\u00e9" * 55,
    ],
)
async def test_a_malformed_traceparent_starts_a_new_trace(
    traced: Harness, spans: InMemorySpanExporter, traceparent: str
) -> None:
    h = traced
    spans.clear()
    response = await h.http.get(
        "/.well-known/jwks.json", headers={"traceparent": traceparent.encode("utf-8")}
    )
    assert response.status_code == 200
    (endpoint,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert endpoint.parent is None
    assert format(endpoint.context.trace_id, "032x") != TRACE_ID


async def test_unknown_paths_are_named_by_method_only(
    traced: Harness, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    response = await traced.http.get("/wp-admin/setup.php?token=secret-looking")
    assert response.status_code == 404
    (endpoint,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert endpoint.name == "GET"
    assert endpoint.attributes is not None
    assert "http.route" not in endpoint.attributes
    assert not any("secret-looking" in v for v in _attribute_values((endpoint,)))


async def test_off_by_default_records_nothing(harness: Harness) -> None:
    assert not tracing.active()
    assert (await harness.http.get("/.well-known/jwks.json")).status_code == 200


def test_off_the_server_imports_no_opentelemetry(tmp_path: Path) -> None:
    """Tracing off costs nothing: building and serving the app never imports OpenTelemetry."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        import httpx
        from authgate.server.app import create_app
        from authgate.server.config import Config

        async def main():
            app = create_app(Config(database_url="sqlite:///{tmp_path}/a.db", secret_key=b"k" * 32),
                             background=False)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    assert (await http.get("/.well-known/jwks.json")).status_code == 200
        asyncio.run(main())
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_tracing_table_is_read(tmp_path: Path) -> None:
    base = tmp_path
    env = {"AUTHGATE_SECRET_KEY": "k" * 32}
    (base / "on.toml").write_text("[tracing]\nenabled = true\n")
    assert load_config(base / "on.toml", env).tracing.enabled is True
    assert load_config(None, env).tracing.enabled is False
    (base / "bad.toml").write_text('[tracing]\nenabled = "yes"\n')
    with pytest.raises(ConfigError) as bad:
        load_config(base / "bad.toml", env)
    assert "tracing.enabled" in str(bad.value)
    (base / "unknown.toml").write_text("[tracing]\nendpoint = 'http://x'\n")
    with pytest.raises(ConfigError, match="endpoint"):
        load_config(base / "unknown.toml", env)


def test_enabling_without_the_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # The exporter package missing: its import fails as it would without the extra.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(tracing.TracingUnavailable, match=r"authgate\[otel\]"):
        tracing.enable("authgate-server")
    assert not tracing.active()
