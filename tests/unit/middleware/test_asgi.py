"""The ASGI middleware and FastAPI dependencies, through real ASGI: httpx.ASGITransport for HTTP,
a real uvicorn server and the `websockets` client for WebSocket handshakes."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI, Request, WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from authgate.gate import Gate, parse_gate_config
from authgate.middleware import AuthGateMiddleware
from authgate.middleware.fastapi import (
    current_principal,
    require_roles,
    require_scopes,
    use_gate,
)
from authgate.verifier import Principal
from tests.support.gate import AUDIENCE, FakeIssuer, forge


def config_text(issuer: FakeIssuer, methods: str = '["header"]') -> str:
    return f"""
realm = "shop"
resource = "http://127.0.0.1/api"
bearer_methods = {methods}
[[issuers]]
issuer = "{issuer.issuer}"
jwks_uri = "{issuer.server.url}/jwks"
audiences = ["{AUDIENCE}"]
typ = "at+jwt"
[[routes]]
path = "/health"
public = true
[[routes]]
path = "/public"
public = true
[[routes]]
path = "/orders"
scopes = ["orders:read"]
[[routes]]
path = "/feed"
scopes = ["feed"]
"""


Anyone = Annotated[Principal, Depends(current_principal)]
OrderReader = Annotated[Principal, Depends(require_scopes("orders:read"))]
Exporter = Annotated[Principal, Depends(require_scopes("orders:export"))]
AdminOrOps = Annotated[Principal, Depends(require_roles("admin", "ops", match="any"))]


def build_app(gate: Gate) -> FastAPI:
    app = FastAPI()
    app.add_middleware(AuthGateMiddleware, gate=gate)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/public/me")
    async def public_me(p: Anyone) -> dict[str, Any]:
        return {"subject": p.subject}

    @app.get("/orders/{order_id}")
    async def order(order_id: str, request: Request, p: OrderReader) -> dict[str, Any]:
        return {"id": order_id, "path": request.url.path, "subject": p.subject}

    @app.get("/orders/export/all")
    async def export(p: Exporter) -> dict[str, Any]:
        return {"subject": p.subject}

    @app.get("/orders/admin/panel")
    async def admin(p: AdminOrOps) -> dict[str, Any]:
        return {"roles": sorted(p.roles)}

    @app.post("/orders/form")
    async def form(request: Request) -> dict[str, Any]:
        data = await request.form()
        return {"fields": sorted(data.keys()), "note": data.get("note")}

    @app.websocket("/feed")
    async def feed(ws: WebSocket, p: Anyone) -> None:
        await ws.accept()
        await ws.send_text(json.dumps({"subject": p.subject}))
        await ws.close()

    return app


@pytest.fixture
async def client(test_issuer: FakeIssuer) -> AsyncIterator[httpx.AsyncClient]:
    gate = Gate(parse_gate_config(config_text(test_issuer)))
    transport = httpx.ASGITransport(app=build_app(gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await gate.aclose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_requests_with_a_valid_token_reach_the_app(
    client: httpx.AsyncClient, test_issuer: FakeIssuer
) -> None:
    response = await client.get("/orders/7", headers=bearer(test_issuer.token()))
    assert response.status_code == 200
    assert response.json() == {"id": "7", "path": "/orders/7", "subject": "user-1"}


async def test_public_routes_and_the_principal_dependency(
    client: httpx.AsyncClient, test_issuer: FakeIssuer
) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    anonymous = await client.get("/public/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith('Bearer realm="shop"')
    assert "error=" not in anonymous.headers["www-authenticate"]
    me = await client.get("/public/me", headers=bearer(test_issuer.token(sub="alice")))
    assert me.json() == {"subject": "alice"}


async def test_missing_and_invalid_tokens_get_rfc_6750_answers(
    client: httpx.AsyncClient, test_issuer: FakeIssuer
) -> None:
    missing = await client.get("/orders/7")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == (
        'Bearer realm="shop", scope="orders:read", resource_metadata='
        '"http://127.0.0.1/.well-known/oauth-protected-resource/api"'
    )
    assert missing.headers["cache-control"] == "no-store"
    expired = await client.get("/orders/7", headers=bearer(test_issuer.token(exp=1)))
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    assert expired.json()["error_description"] == "the access token has expired"


async def test_dependencies_refuse_with_insufficient_scope(
    client: httpx.AsyncClient, test_issuer: FakeIssuer
) -> None:
    route_refusal = await client.get("/orders/7", headers=bearer(test_issuer.token(scope="x")))
    assert route_refusal.status_code == 403
    assert 'scope="orders:read"' in route_refusal.headers["www-authenticate"]
    dependency = await client.get("/orders/export/all", headers=bearer(test_issuer.token()))
    assert dependency.status_code == 403
    challenge = dependency.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="orders:export"' in challenge
    ops = await client.get("/orders/admin/panel", headers=bearer(test_issuer.token(roles=["ops"])))
    assert ops.json() == {"roles": ["ops"]}
    none = await client.get("/orders/admin/panel", headers=bearer(test_issuer.token()))
    assert none.status_code == 403


async def test_the_app_sees_the_path_the_policy_judged(
    client: httpx.AsyncClient, test_issuer: FakeIssuer
) -> None:
    weak = bearer(test_issuer.token(scope="profile"))
    for path in ("/health/../orders/7", "/health/%2e%2e/orders/7", "//orders/7"):
        response = await client.get(path, headers=weak)
        assert response.status_code == 403, path
    ok = await client.get("/public/../orders//7", headers=bearer(test_issuer.token()))
    assert ok.json()["path"] == "/orders/7"
    assert (await client.get("/orders%2F7", headers=bearer(test_issuer.token()))).status_code == 400


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer " + "a" * 100_000},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer a b c"},
        {"Authorization": "Token abc"},
        {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
    ],
)
async def test_hostile_headers_never_cause_a_500(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/orders/7", headers=headers)
    assert response.status_code in (400, 401)
    assert response.headers["www-authenticate"].startswith("Bearer ")


async def test_hostile_tokens(client: httpx.AsyncClient, test_issuer: FakeIssuer) -> None:
    hostile = [
        test_issuer.token(aud="https://elsewhere.test"),
        test_issuer.token(iss="https://evil.test"),
        forge({"alg": "none", "typ": "at+jwt"}, test_issuer.claims()),
        test_issuer.token(header={"typ": "JWT"}),
    ]
    for token in hostile:
        response = await client.get("/orders/7", headers=bearer(token))
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    two = await client.get("/orders/7?access_token=abc", headers=bearer(test_issuer.token()))
    assert two.status_code == 400
    repeated = await client.get(
        "/orders/7", headers=[("authorization", "Bearer a"), ("authorization", "Bearer b")]
    )
    assert repeated.status_code == 400


async def test_metadata_document_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/oauth-protected-resource/api")
    assert response.status_code == 200
    assert response.json()["resource"] == "http://127.0.0.1/api"
    assert response.json()["scopes_supported"] == ["feed", "orders:read"]


async def test_form_bodies_are_read_for_tokens_and_replayed(test_issuer: FakeIssuer) -> None:
    gate = Gate(parse_gate_config(config_text(test_issuer, '["header", "body"]')))
    transport = httpx.ASGITransport(app=build_app(gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        token = test_issuer.token()
        ok = await client.post("/orders/form", data={"access_token": token, "note": "hi"})
        assert ok.json() == {"fields": ["access_token", "note"], "note": "hi"}
        form = {"access_token": token}
        both = await client.post("/orders/form", data=form, headers=bearer(token))
        assert both.status_code == 400
        huge = await client.post("/orders/form", data={"note": "x" * 70_000}, headers=bearer(token))
        assert huge.status_code == 413
    await gate.aclose()


async def test_lifespan_fetches_keys_before_startup_completes(test_issuer: FakeIssuer) -> None:
    gate = Gate(parse_gate_config(config_text(test_issuer)))
    app = build_app(gate)
    sent: list[str] = []
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await incoming.put({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            assert gate.ready
            assert test_issuer.server.hits["/jwks"] == 1
            await incoming.put({"type": "lifespan.shutdown"})

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, incoming.get, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_importing_the_middleware_does_not_import_frameworks() -> None:
    code = (
        "import sys, authgate.middleware, authgate.gate;"
        "assert 'fastapi' not in sys.modules and 'flask' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- WebSockets through a real server ---------------------------------------------------------


@pytest.fixture
def live_server(test_issuer: FakeIssuer) -> Iterator[str]:
    gate = Gate(parse_gate_config(config_text(test_issuer)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        build_app(gate),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_websocket_with_a_valid_token(live_server: str, test_issuer: FakeIssuer) -> None:
    token = test_issuer.token(scope="feed", sub="ws-user")
    with connect(f"ws://{live_server}/feed", additional_headers=bearer(token)) as ws:
        assert json.loads(ws.recv()) == {"subject": "ws-user"}


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, None),
        ({"Authorization": "Bearer not.a.token"}, 401, "invalid_token"),
        ({"Authorization": "Bearer"}, 400, "invalid_request"),
        ("scope", 403, "insufficient_scope"),
    ],
)
def test_websocket_handshakes_are_refused_with_http_answers(
    live_server: str, test_issuer: FakeIssuer, headers: Any, status: int, error: str | None
) -> None:
    if headers == "scope":
        headers = bearer(test_issuer.token(scope="orders:read"))
    with pytest.raises(InvalidStatus) as info:
        connect(f"ws://{live_server}/feed", additional_headers=headers)
    response = info.value.response
    assert response.status_code == status
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="shop"')
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge


async def test_dependencies_work_without_the_middleware(test_issuer: FakeIssuer) -> None:
    gate = Gate(parse_gate_config(config_text(test_issuer)))
    app = FastAPI()
    use_gate(app, gate)

    @app.get("/anything")
    async def anything(p: OrderReader) -> dict[str, Any]:
        return {"subject": p.subject}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        ok = await client.get("/anything", headers=bearer(test_issuer.token()))
        assert ok.json() == {"subject": "user-1"}
        missing = await client.get("/anything")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith('Bearer realm="shop"')
        weak = await client.get("/anything", headers=bearer(test_issuer.token(scope="x")))
        assert weak.status_code == 403
        assert 'scope="orders:read"' in weak.headers["www-authenticate"]
    await gate.aclose()


async def test_websocket_refusal_without_the_denial_extension_closes_1008(
    test_issuer: FakeIssuer,
) -> None:
    gate = Gate(parse_gate_config(config_text(test_issuer)))
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])

    middleware = AuthGateMiddleware(app, gate)
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/feed",
        "raw_path": b"/feed",
        "headers": [],
        "query_string": b"",
        "extensions": {},
    }
    await middleware(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert reached == []
    await gate.aclose()


async def test_head_refusals_have_no_body(client: httpx.AsyncClient) -> None:
    response = await client.head("/orders/7")
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["content-length"] == "0"
    assert response.headers["www-authenticate"].startswith('Bearer realm="shop"')
