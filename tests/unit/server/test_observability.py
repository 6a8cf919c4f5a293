"""Probes, metrics, request ids and JSON log lines of the authorization server
(`authgate.server.observability`), on both database backends."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg
import pytest
from click.testing import CliRunner

from authgate.cli import main
from authgate.config import ConfigError
from authgate.http_forwarding import TrustedProxies
from authgate.server.config import AdminSettings, HttpSettings
from authgate.server.config_loader import load_config
from authgate.server.observability import health
from authgate.server.observability.logs import JsonLogFormatter, RequestIdFilter, logging_config
from authgate.server.observability.metrics import ServerMetrics
from authgate.server.observability.middleware import RequestObservation
from authgate.server.storage import Database
from authgate.server.storage.migrate import head_revision
from tests.support.server_harness import FakeClock, Harness, free_port, make_config, running

API = "https://api.example.test"
_GENERATED = re.compile(r"[0-9a-f]{16}")


def _sql(url: str, statement: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(statement)
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(statement)


# -- /healthz, /readyz ----------------------------------------------------------------------------


async def test_ready_when_database_schema_and_keys_are(harness: Harness) -> None:
    response = await harness.http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "schema": "ok",
            "signing_keys": {"RS256": "ok", "ES256": "ok"},
        },
    }
    assert (await harness.http.get("/healthz")).json() == {"status": "ok"}


async def test_unreachable_database_is_not_ready_but_alive(harness: Harness) -> None:
    storage = harness.server.storage
    real = storage._db  # type: ignore[attr-defined]
    # Nothing listens on this port: connections are refused.
    dead = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/none", pool_timeout=1)
    storage._db = dead  # type: ignore[attr-defined]
    try:
        ready = await harness.http.get("/readyz")
        alive = await harness.http.get("/healthz")
    finally:
        storage._db = real  # type: ignore[attr-defined]
        await dead.close()
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "5"
    assert ready.json()["checks"]["database"] == "unavailable"
    assert "127.0.0.1" not in ready.text  # no connection string or driver message
    assert alive.status_code == 200  # liveness never depends on the database


async def test_outdated_schema_is_not_ready(harness: Harness, database_url: str) -> None:
    _sql(database_url, "UPDATE alembic_version SET version_num = 'not_the_head'")
    try:
        response = await harness.http.get("/readyz")
    finally:
        head = head_revision()
        _sql(database_url, f"UPDATE alembic_version SET version_num = '{head}'")  # noqa: S608
    assert response.status_code == 503
    assert response.json()["checks"]["schema"] == "outdated"


async def test_missing_signing_key_is_not_ready(harness: Harness, database_url: str) -> None:
    _sql(database_url, "DELETE FROM signing_keys WHERE alg = 'ES256'")
    await harness.server.keys.refresh()
    response = await harness.http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["signing_keys"] == {"RS256": "ok", "ES256": "missing"}


async def test_readiness_probes_cannot_load_the_database(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = 0
    real = health.schema_revision

    async def counted(db: Database) -> str | None:
        nonlocal queries
        queries += 1
        return await real(db)

    monkeypatch.setattr(health, "schema_revision", counted)
    monkeypatch.setattr(health, "REUSE_FOR", 3600.0)  # no answer expires during the test
    answers = await asyncio.gather(*(harness.http.get("/readyz") for _ in range(20)))
    answers.append(await harness.http.get("/readyz"))
    assert {a.status_code for a in answers} == {200}
    assert queries == 1  # one check at a time, and its answer reused
    monkeypatch.setattr(health, "REUSE_FOR", 0.0)
    await harness.http.get("/readyz")
    assert queries == 2


async def test_probes_answer_get_only_and_need_no_credentials(harness: Harness) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await harness.http.get(path)).status_code == 200
        assert (await harness.http.post(path, data={"x": "1"})).status_code == 405


# -- /metrics -------------------------------------------------------------------------------------


async def test_metrics_count_requests_tokens_and_keys(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    assert (await harness.token(client, secret)).status_code == 200
    assert (await harness.token(client, "wrong")).status_code == 401
    await harness.http.get("/no/such/path/" + "x" * 50)
    text = (await harness.http.get("/metrics")).text
    assert 'authgate_server_requests_total{endpoint="token",status="200"} 1.0' in text
    assert 'authgate_server_requests_total{endpoint="token",status="401"} 1.0' in text
    # Unknown paths share one label: a scanner cannot grow the label set.
    assert 'authgate_server_requests_total{endpoint="other",status="404"} 1.0' in text
    assert "/no/such/path" not in text
    labels = 'alg="RS256",format="jwt",grant="client_credentials"'
    assert "authgate_server_tokens_issued_total{" + labels + "} 1.0" in text
    assert 'authgate_server_request_duration_seconds_count{endpoint="token"} 2.0' in text
    assert 'authgate_server_signing_key_age_seconds{alg="RS256"}' in text
    assert "authgate_server_db_pool_capacity" in text
    assert client.client_id not in text  # no client ids as labels
    assert secret is not None
    assert secret not in text


# -- request ids and log lines --------------------------------------------------------------------


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The `authgate` loggers' lines as `--log-format json` writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("authgate")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_generated_request_id_is_echoed_and_in_every_line(
    harness: Harness, json_lines: io.StringIO
) -> None:
    # Not a trusted proxy (none configured): the sent id is ignored.
    response = await harness.http.post(
        "/token", data={"grant_type": "nope"}, headers={"X-Request-Id": "chosen-by-client"}
    )
    request_id = response.headers["x-request-id"]
    assert _GENERATED.fullmatch(request_id)
    lines = _lines(json_lines)
    assert len(lines) >= 2  # the refusal and the access line
    assert {line["request_id"] for line in lines} == {request_id}
    assert any(line["logger"] == "authgate.access" for line in lines)
    other = await harness.http.get("/healthz")
    assert other.headers["x-request-id"] != request_id


@pytest.mark.parametrize(
    "sent",
    [
        "",
        "x" * 129,
        "has space",
        "line\nbreak",
        'quote"',
        "caf\u00e9",
        "tab\there",
        "back\\slash",
    ],
)
async def test_hostile_request_ids_from_a_trusted_proxy_are_replaced(
    database_url: str, clock: FakeClock, sent: str
) -> None:
    config = replace(make_config(database_url), http=HttpSettings(trusted_proxies=("127.0.0.1",)))
    async with running(config, clock) as h:
        response = await h.http.get("/healthz", headers=[("X-Request-Id", sent.encode("utf-8"))])
    assert response.status_code == 200
    assert _GENERATED.fullmatch(response.headers["x-request-id"])


async def test_request_id_sent_without_trusted_proxies_is_replaced(
    database_url: str, clock: FakeClock, json_lines: io.StringIO
) -> None:
    async with running(make_config(database_url), clock) as h:
        response = await h.http.get("/nowhere", headers={"X-Request-Id": "chosen-by-client"})
    echoed = response.headers["x-request-id"]
    assert _GENERATED.fullmatch(echoed)
    access = [line for line in _lines(json_lines) if line["logger"] == "authgate.access"]
    assert [line["request_id"] for line in access] == [echoed]


async def test_trusted_proxy_request_id_is_kept(
    database_url: str, clock: FakeClock, json_lines: io.StringIO
) -> None:
    # httpx's ASGI transport presents the peer as 127.0.0.1.
    config = replace(make_config(database_url), http=HttpSettings(trusted_proxies=("127.0.0.1",)))
    sent = "edge-7f3a:01/req=9"
    async with running(config, clock) as h:
        response = await h.http.get("/nowhere", headers={"X-Request-Id": sent})
    assert response.headers["x-request-id"] == sent
    access = [line for line in _lines(json_lines) if line["logger"] == "authgate.access"]
    assert [line["request_id"] for line in access] == [sent]


def test_json_lines_mask_jwts_and_name_the_request() -> None:
    record = logging.LogRecord(
        "authgate.server", logging.INFO, "", 0, "saw %s", ("eyJhbGciOi.eyJzdWIi.c2ln",), None
    )
    RequestIdFilter().filter(record)
    line = json.loads(JsonLogFormatter().format(record))
    assert line["msg"] == "saw [redacted]"
    assert line["request_id"] == "-"


def test_logging_config_formats() -> None:
    json_config = logging_config("INFO", "json")
    assert json_config["formatters"]["line"] == {"()": JsonLogFormatter}
    text_config = logging_config("INFO", "text")
    assert "%(request_id)s" in text_config["formatters"]["line"]["format"]
    for config in (json_config, text_config):
        assert config["handlers"]["stderr"]["filters"] == ["request_id"]
        assert config["loggers"]["uvicorn.access"]["handlers"] == []


# -- [admin] listen -------------------------------------------------------------------------------


async def test_admin_listener_serves_probes_and_metrics_off_the_public_port(
    database_url: str, clock: FakeClock
) -> None:
    port = free_port()
    config = replace(make_config(database_url), admin=AdminSettings(listen=f"127.0.0.1:{port}"))
    admin_url = f"http://127.0.0.1:{port}"
    async with running(config, clock) as h, httpx.AsyncClient(timeout=5) as admin:
        await h.http.get("/.well-known/jwks.json")
        scraped = await admin.get(admin_url + "/metrics")
        assert scraped.status_code == 200
        assert 'authgate_server_requests_total{endpoint="jwks",status="200"} 1.0' in scraped.text
        assert (await admin.get(admin_url + "/readyz")).json()["status"] == "ok"
        assert (await admin.get(admin_url + "/healthz")).status_code == 200
        assert (await admin.post(admin_url + "/metrics")).status_code == 405
        assert (await admin.get(admin_url + "/token")).status_code == 404  # probes only
        # Not on the public port, except liveness.
        assert (await h.http.get("/metrics")).status_code == 404
        assert (await h.http.get("/readyz")).status_code == 404
        assert (await h.http.get("/healthz")).status_code == 200
    async with httpx.AsyncClient(timeout=2) as after:
        with pytest.raises(httpx.ConnectError):  # closed with the server
            await after.get(admin_url + "/healthz")


async def test_admin_listener_on_a_busy_port_fails_startup(
    database_url: str, clock: FakeClock
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = replace(make_config(database_url), admin=AdminSettings(listen=f"127.0.0.1:{port}"))
        with pytest.raises(OSError, match="admin"):
            async with running(config, clock):
                pass


@pytest.mark.parametrize(
    "listen", ["9100", ":9100", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "host:port", ""]
)
def test_bad_admin_listen_is_refused_at_load(tmp_path: Path, listen: str) -> None:
    file = tmp_path / "authgate.toml"
    file.write_text(f"[admin]\nlisten = {json.dumps(listen)}\n")
    with pytest.raises(ConfigError, match=r"admin\.listen: must"):
        load_config(file, {"AUTHGATE_SECRET_KEY": "k" * 40})


def test_admin_listen_is_read(tmp_path: Path) -> None:
    file = tmp_path / "authgate.toml"
    file.write_text('[admin]\nlisten = "[::1]:9100"\n')
    config = load_config(file, {"AUTHGATE_SECRET_KEY": "k" * 40})
    assert config.admin.address() == ("::1", 9100)


def test_serve_refuses_admin_listener_with_several_workers(tmp_path: Path) -> None:
    file = tmp_path / "authgate.toml"
    file.write_text('[admin]\nlisten = "127.0.0.1:9100"\n')
    env = {"AUTHGATE_SECRET_KEY": "k" * 43, "AUTHGATE_CONFIG": ""}
    result = CliRunner().invoke(main, ["serve", "--workers", "2", "--config", str(file)], env=env)
    assert result.exit_code != 0
    assert "one worker process" in result.output


async def test_a_request_left_unanswered_counts_as_499() -> None:
    # The client hung up before an answer started (the access log's 499): not a label "0".
    async def silent(scope: object, receive: object, send: object) -> None:
        return None

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: object) -> None:
        raise AssertionError("nothing is sent")

    metrics = ServerMetrics()
    layer = RequestObservation(silent, TrustedProxies(), metrics)  # type: ignore[arg-type]
    scope = {"type": "http", "path": "/token", "headers": [], "client": ("127.0.0.1", 1)}
    await layer(scope, receive, send)  # type: ignore[arg-type]
    assert metrics.requests == {("token", 499): 1}
