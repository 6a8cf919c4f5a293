"""Rate limits named by FastAPI dependencies and Flask decorators (dependency-only mode, with or
without the middleware): counted as a route's limit is, after the requirement, and answered with
the middleware's own 429 (body, `Retry-After`, `RateLimit`, `RateLimit-Policy`) byte for byte.
Real FastAPI (httpx's ASGI transport) and Flask (its test client) applications; the memory store,
and Redis on 127.0.0.1:6379."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
import redis
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from flask import Flask
from starlette.websockets import WebSocket, WebSocketDisconnect

from authgate.gate import Gate, parse_gate_config
from authgate.gate.rate_limits import KeyKind, RateTier, RouteRateLimit
from authgate.limits import Limit, parse_rate
from authgate.middleware import AuthGateMiddleware
from authgate.middleware import fastapi as deps
from authgate.middleware import flask as decorators
from authgate.verifier import Principal
from tests.support.gate import AUDIENCE, FakeIssuer

SHARED_REDIS = "redis://127.0.0.1:6379/0"
# The limit the dependencies name, and the same limit as a route's, to compare the answers.
ORDERS = RouteRateLimit.single(Limit("orders", parse_rate("2/minute", burst=2)))
STATUS = RouteRateLimit.single(Limit("status", parse_rate("1/minute", burst=1)), KeyKind.ADDRESS)


def gate_text(issuer: FakeIssuer, *, mode: str, limits: str = "", routes: str = "") -> str:
    return f"""
mode = "{mode}"
[limits]
headers = "all"
{limits}
[[issuers]]
issuer = "{issuer.issuer}"
jwks_uri = "{issuer.server.url}/jwks"
audiences = ["{AUDIENCE}"]
{routes}"""


# The same limit as a gate route: the middleware's answers, the reference.
ROUTE = """
[[routes]]
path = "/orders"
name = "orders"
scopes = ["orders:read"]
rate_limit = "2/minute"
burst = 2
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def answer(response: httpx.Response | Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, the gate's fields (content-length and the server's own left out), body."""
    skip = {"content-length", "date", "server"}
    items = response.headers.items()
    fields = sorted((k.lower(), v) for k, v in items if k.lower() not in skip)
    body = response.content if hasattr(response, "content") else response.data
    return response.status_code, fields, body


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:16]}"
    yield name
    client = redis.Redis.from_url(SHARED_REDIS, socket_timeout=5)
    for key in client.scan_iter(match=f"{name}:*"):
        client.delete(key)
    client.close()


# -- FastAPI ----------------------------------------------------------------------------------


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def order(
        order_id: str,
        principal: Annotated[
            Principal, Depends(deps.require_scopes("orders:read", rate_limit=ORDERS))
        ],
    ) -> dict[str, str]:
        return {"id": order_id, "subject": principal.subject}

    @app.get("/admin")
    async def admin(
        principal: Annotated[Principal, Depends(deps.require_roles("admin", rate_limit=ORDERS))],
    ) -> dict[str, str]:
        return {"subject": principal.subject}

    @app.get("/status")
    async def status(_: Annotated[Principal | None, Depends(deps.rate_limited(STATUS))]) -> str:
        return "up"

    return app


async def reference_429(issuer: FakeIssuer) -> tuple[int, list[tuple[str, str]], bytes]:
    """The middleware's 429 for the route `/orders` (limit "orders", 2/minute)."""
    gate = Gate(parse_gate_config(gate_text(issuer, mode="routes", routes=ROUTE)))

    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = httpx.ASGITransport(app=AuthGateMiddleware(ok, gate))
    token = issuer.token(sub="reference")
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for _ in range(2):
                assert (await client.get("/orders/1", headers=bearer(token))).status_code == 200
            return answer(await client.get("/orders/1", headers=bearer(token)))
    finally:
        await gate.aclose()


@pytest.mark.parametrize("wiring", ["middleware", "use_gate"])
async def test_fastapi_dependencies_count_and_refuse_as_the_middleware(
    test_issuer: FakeIssuer, wiring: str
) -> None:
    expected = await reference_429(test_issuer)
    gate = Gate(parse_gate_config(gate_text(test_issuer, mode="dependencies")))
    app = fastapi_app()
    if wiring == "middleware":
        app.add_middleware(AuthGateMiddleware, gate=gate)
    else:
        deps.use_gate(app, gate)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 5000))
    alice, bob = test_issuer.token(sub="alice"), test_issuer.token(sub="bob")
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = await client.get("/orders/1", headers=bearer(alice))
            assert first.json() == {"id": "1", "subject": "alice"}
            assert first.headers["ratelimit-policy"] == '"orders";q=2;w=60'
            assert first.headers["ratelimit"] == '"orders";r=1;t=30'
            # Refused before the limit (403, 401): not counted against anyone.
            assert (await client.get("/admin", headers=bearer(alice))).status_code == 403
            assert (await client.get("/orders/1")).status_code == 401
            assert (await client.get("/orders/2", headers=bearer(alice))).status_code == 200
            refused = await client.get("/orders/3", headers=bearer(alice))
            assert answer(refused) == expected
            assert refused.headers["retry-after"] == "30"
            assert refused.json()["error"] == "temporarily_unavailable"
            # Counted per subject: another caller has their own.
            assert (await client.get("/orders/1", headers=bearer(bob))).status_code == 200
            # The limit alone, without authentication: the client address is counted.
            assert (await client.get("/status")).status_code == 200
            assert (await client.get("/status")).status_code == 429
        other = httpx.ASGITransport(app=app, client=("198.51.100.8", 5000))
        async with httpx.AsyncClient(transport=other, base_url="http://t") as client:
            assert (await client.get("/status")).status_code == 200
        assert gate.rate_limited == {("orders", "subject"): 1, ("status", "address"): 1}
    finally:
        await gate.aclose()


async def test_fastapi_tiers_and_an_endpoint_that_returns_its_own_response(
    test_issuer: FakeIssuer,
) -> None:
    # With the middleware, the fields reach a response the endpoint built itself.
    from fastapi.responses import PlainTextResponse  # noqa: PLC0415 - this test only

    tiers = RouteRateLimit(
        (
            RateTier(Limit("bulk-pro", parse_rate("3/minute", burst=3)), scope="bulk"),
            RateTier(Limit("bulk", parse_rate("1/minute", burst=1))),
        ),
        KeyKind.CLIENT_ID,
    )
    app = FastAPI()

    @app.get("/bulk")
    async def bulk(_: Principal = Depends(deps.require(rate_limit=tiers))) -> Any:  # noqa: B008
        # (a local limit: an `Annotated` hint could not be resolved from the module)
        return PlainTextResponse("done")

    gate = Gate(parse_gate_config(gate_text(test_issuer, mode="dependencies")))
    app.add_middleware(AuthGateMiddleware, gate=gate)
    transport = httpx.ASGITransport(app=app)
    plain = test_issuer.token(client_id="plain")
    pro = test_issuer.token(client_id="pro", scope="bulk")
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = await client.get("/bulk", headers=bearer(plain))
            assert (first.text, first.headers["ratelimit"]) == ("done", '"bulk";r=0;t=60')
            assert (await client.get("/bulk", headers=bearer(plain))).status_code == 429
            statuses = [
                (await client.get("/bulk", headers=bearer(pro))).status_code for _ in "1234"
            ]
            assert statuses == [200, 200, 200, 429]
    finally:
        await gate.aclose()


def test_fastapi_websocket_refused_by_its_limit_closes_with_1013(test_issuer: FakeIssuer) -> None:
    once = RouteRateLimit.single(Limit("feed", parse_rate("1/minute", burst=1)))
    app = FastAPI()

    @app.websocket("/feed")
    async def feed(
        ws: WebSocket,
        principal: Principal = Depends(deps.require(rate_limit=once)),  # noqa: B008
    ) -> None:
        await ws.accept()
        await ws.send_text(principal.subject)
        await ws.close()

    gate = Gate(parse_gate_config(gate_text(test_issuer, mode="dependencies")))
    deps.use_gate(app, gate)
    headers = bearer(test_issuer.token(sub="carol"))
    with TestClient(app) as client:
        with client.websocket_connect("/feed", headers=headers) as ws:
            assert ws.receive_text() == "carol"
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/feed", headers=headers) as ws,
        ):
            ws.receive_text()
        assert closed.value.code == 1013
        client.portal.call(gate.aclose)  # type: ignore[union-attr]


async def test_fastapi_limit_counted_in_redis(test_issuer: FakeIssuer, namespace: str) -> None:
    limits = f'redis_url = "{SHARED_REDIS}"\nnamespace = "{namespace}"\ntimeout = 2\n'
    config = gate_text(test_issuer, mode="dependencies", limits=limits)
    apps = [fastapi_app(), fastapi_app()]  # two processes' worth, one count
    gates = [Gate(parse_gate_config(config)) for _ in apps]
    for app, gate in zip(apps, gates, strict=True):
        deps.use_gate(app, gate)
    token = test_issuer.token(sub="dave")
    try:
        statuses = []
        for app in [*apps, apps[0]]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                statuses.append((await client.get("/orders/1", headers=bearer(token))).status_code)
        assert statuses == [200, 200, 429]
        client_redis = redis.Redis.from_url(SHARED_REDIS, socket_timeout=5)
        assert list(client_redis.scan_iter(match=f"{namespace}:*orders*"))
        client_redis.close()
    finally:
        for gate in gates:
            await gate.aclose()


def test_a_limit_name_keys_one_count(test_issuer: FakeIssuer) -> None:
    # A route's limit is never a dependency's too: a request would be counted twice.
    gate = Gate(parse_gate_config(gate_text(test_issuer, mode="dependencies", routes=ROUTE)))
    with pytest.raises(ValueError, match="the rate limit 'orders' is a route's"):
        gate.admit_nowait(ORDERS, None, client="192.0.2.1")
    # Dependencies naming equal limits share a count; different ones cannot share a name.
    gate = Gate(parse_gate_config(gate_text(test_issuer, mode="dependencies")))
    same = RouteRateLimit.single(Limit("orders", parse_rate("2/minute", burst=2)))
    first = gate.admit_nowait(ORDERS, None, client="192.0.2.1")
    second = gate.admit_nowait(same, None, client="192.0.2.1")
    assert [d.rate_limit.remaining for d in (first, second)] == [1, 0]  # type: ignore[union-attr]
    other = RouteRateLimit.single(Limit("orders", parse_rate("100/minute")))
    with pytest.raises(ValueError, match="two different rate limits are named 'orders'"):
        gate.admit_nowait(other, None, client="192.0.2.1")


# -- Flask ------------------------------------------------------------------------------------


def flask_app(
    gate: Gate, *, enforce_routes: bool, limited: bool = True
) -> tuple[Flask, decorators.FlaskAuthGate]:
    app = Flask(__name__)
    extension = decorators.FlaskAuthGate(app, gate, enforce_routes=enforce_routes)

    @app.get("/orders/<order_id>")
    @decorators.require_scopes("orders:read", rate_limit=ORDERS if limited else None)
    def order(order_id: str) -> tuple[dict[str, str], int, dict[str, str]]:
        return {"id": order_id}, 200, {"X-App": "yes"}

    @app.get("/admin")
    @decorators.require_roles("admin", rate_limit=ORDERS)
    def admin() -> str:
        return "admin"

    @app.get("/status")
    @decorators.rate_limited(STATUS)
    def status() -> str:
        return "up"

    return app, extension


@pytest.mark.parametrize("enforce_routes", [True, False])
def test_flask_decorators_count_and_refuse_as_the_middleware(
    test_issuer: FakeIssuer, enforce_routes: bool
) -> None:
    reference_gate = Gate(parse_gate_config(gate_text(test_issuer, mode="routes", routes=ROUTE)))
    reference, reference_ext = flask_app(reference_gate, enforce_routes=True, limited=False)
    gate = Gate(parse_gate_config(gate_text(test_issuer, mode="dependencies")))
    app, extension = flask_app(gate, enforce_routes=enforce_routes)
    alice, bob = test_issuer.token(sub="alice"), test_issuer.token(sub="bob")
    try:
        ref = reference.test_client()
        for _ in range(2):
            assert ref.get("/orders/1", headers=bearer(alice)).status_code == 200
        expected = answer(ref.get("/orders/1", headers=bearer(alice)))
        assert expected[0] == 429

        client = app.test_client()
        first = client.get("/orders/1", headers=bearer(alice))
        assert first.status_code == 200
        assert first.headers["X-App"] == "yes"  # the view's own fields stay
        assert first.headers["RateLimit-Policy"] == '"orders";q=2;w=60'
        assert first.headers["RateLimit"] == '"orders";r=1;t=30'
        assert client.get("/admin", headers=bearer(alice)).status_code == 403  # not counted
        assert client.get("/orders/1").status_code == 401
        assert client.get("/orders/2", headers=bearer(alice)).status_code == 200
        refused = client.get("/orders/3", headers=bearer(alice))
        assert answer(refused) == expected
        assert client.get("/orders/1", headers=bearer(bob)).status_code == 200
        near = {"REMOTE_ADDR": "203.0.113.5"}
        assert client.get("/status", environ_base=near).status_code == 200
        assert client.get("/status", environ_base=near).status_code == 429
        far = {"REMOTE_ADDR": "203.0.113.6"}
        assert client.get("/status", environ_base=far).status_code == 200
    finally:
        for ext in (extension, reference_ext):
            assert ext.sync is not None
            ext.sync.close()


def test_flask_limit_counted_in_redis(test_issuer: FakeIssuer, namespace: str) -> None:
    limits = f'redis_url = "{SHARED_REDIS}"\nnamespace = "{namespace}"\ntimeout = 2\n'
    gate = Gate(parse_gate_config(gate_text(test_issuer, mode="dependencies", limits=limits)))
    app, extension = flask_app(gate, enforce_routes=False)
    token = test_issuer.token(sub="erin")
    try:
        client = app.test_client()
        statuses = [client.get("/orders/1", headers=bearer(token)).status_code for _ in "123"]
        assert statuses == [200, 200, 429]
    finally:
        assert extension.sync is not None
        extension.sync.close()
