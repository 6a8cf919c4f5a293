"""Rate limits in the ASGI and WSGI middleware: the same 429 (or RateLimit fields on the
application's own response) as the gateway, the client address the server reports, and a store
in Redis reached from the application's event loop (ASGI) or the middleware's loop thread (WSGI)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from flask import Flask

from authgate.gate import Gate, parse_gate_config
from authgate.middleware import AuthGateMiddleware
from authgate.middleware.flask import FlaskAuthGate
from tests.support.gate import AUDIENCE, FakeIssuer

SHARED_REDIS = "redis://127.0.0.1:6379/0"


def config_text(issuer: FakeIssuer, limits: str = "[limits]\n") -> str:
    return f"""
{limits}headers = "all"
[[issuers]]
issuer = "{issuer.issuer}"
jwks_uri = "{issuer.server.url}/jwks"
audiences = ["{AUDIENCE}"]
[[routes]]
path = "/orders"
name = "orders"
rate_limit = "2/minute"
burst = 2
[[routes]]
path = "/public"
public = true
rate_limit = "1/minute"
"""


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:16]}"
    yield name
    client = redis.Redis.from_url(SHARED_REDIS, socket_timeout=5)
    for key in client.scan_iter(match=f"{name}:*"):
        client.delete(key)
    client.close()


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"yes")]})
    await send({"type": "http.response.body", "body": b"ok"})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_asgi_answers_429_and_adds_the_fields(
    test_issuer: FakeIssuer, store: str, namespace: str
) -> None:
    limits = f'[limits]\nredis_url = "{SHARED_REDIS}"\nnamespace = "{namespace}"\ntimeout = 2\n'
    gate = Gate(
        parse_gate_config(config_text(test_issuer, limits if store == "redis" else "[limits]\n"))
    )
    app = AuthGateMiddleware(asgi_app, gate)
    token = test_issuer.token()
    try:
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = await client.get("/orders/1", headers=bearer(token))
            assert first.status_code == 200
            assert first.headers["x-app"] == "yes"  # the application's own fields stay
            assert first.headers["ratelimit-policy"] == '"orders";q=2;w=60'
            assert first.headers["ratelimit"] == '"orders";r=1;t=30'
            assert (await client.get("/orders/1", headers=bearer(token))).status_code == 200
            refused = await client.get("/orders/1", headers=bearer(token))
            assert refused.status_code == 429
            assert "x-app" not in refused.headers  # answered by the gate, not the application
            assert refused.headers["retry-after"] == "30"
            assert refused.headers["ratelimit"] == '"orders";r=0;t=30'
            assert refused.json()["error"] == "temporarily_unavailable"
            assert (await client.get("/public")).status_code == 200
            assert (await client.get("/public")).status_code == 429
        other = httpx.ASGITransport(app=app, client=("198.51.100.8", 5000))
        async with httpx.AsyncClient(transport=other, base_url="http://t") as client:
            assert (await client.get("/public")).status_code == 200  # another address
    finally:
        await gate.aclose()


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_wsgi_answers_429_and_adds_the_fields(
    test_issuer: FakeIssuer, store: str, namespace: str
) -> None:
    limits = f'[limits]\nredis_url = "{SHARED_REDIS}"\nnamespace = "{namespace}"\ntimeout = 2\n'
    gate = Gate(
        parse_gate_config(config_text(test_issuer, limits if store == "redis" else "[limits]\n"))
    )
    app = Flask(__name__)
    extension = FlaskAuthGate(app, gate)

    @app.get("/orders/<order_id>")
    def order(order_id: str) -> tuple[dict[str, str], int, dict[str, str]]:
        return {"id": order_id}, 200, {"X-App": "yes"}

    @app.get("/public")
    def public() -> dict[str, str]:
        return {"ok": "yes"}

    token = test_issuer.token()
    client = app.test_client()
    try:
        first = client.get("/orders/1", headers=bearer(token))
        assert first.status_code == 200
        assert first.headers["X-App"] == "yes"
        assert first.headers["RateLimit-Policy"] == '"orders";q=2;w=60'
        assert first.headers["RateLimit"] == '"orders";r=1;t=30'
        assert client.get("/orders/1", headers=bearer(token)).status_code == 200
        refused = client.get("/orders/1", headers=bearer(token))
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "30"
        assert json.loads(refused.data)["error"] == "temporarily_unavailable"
        near = {"REMOTE_ADDR": "203.0.113.5"}
        assert client.get("/public", environ_base=near).status_code == 200
        assert client.get("/public", environ_base=near).status_code == 429
        far = {"REMOTE_ADDR": "203.0.113.6"}
        assert client.get("/public", environ_base=far).status_code == 200
    finally:
        assert extension.sync is not None
        extension.sync.close()
