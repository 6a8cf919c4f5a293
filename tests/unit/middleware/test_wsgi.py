"""The WSGI middleware and Flask decorators (Flask's test client drives the real WSGI stack); the
async core runs on the private loop thread."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from authgate.gate import Gate, parse_gate_config
from authgate.middleware.flask import (
    FlaskAuthGate,
    authenticated,
    current_principal,
    require_roles,
    require_scopes,
)
from tests.support.gate import AUDIENCE, FakeIssuer, forge


def config_text(issuer: FakeIssuer, methods: str = '["header"]') -> str:
    return f"""
realm = "flask-shop"
resource = "http://127.0.0.1/"
bearer_methods = {methods}
[[issuers]]
issuer = "{issuer.issuer}"
jwks_uri = "{issuer.server.url}/jwks"
audiences = ["{AUDIENCE}"]
[[routes]]
path = "/health"
public = true
[[routes]]
path = "/public"
public = true
[[routes]]
path = "/orders"
scopes = ["orders:read"]
"""


def build_app(gate: Gate, *, enforce_routes: bool = True) -> tuple[Flask, FlaskAuthGate]:
    app = Flask(__name__)
    extension = FlaskAuthGate(app, gate, enforce_routes=enforce_routes)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/public/me")
    @authenticated
    def me() -> dict[str, Any]:
        principal = current_principal()
        assert principal is not None
        return {"subject": principal.subject}

    @app.get("/orders/<order_id>")
    @require_scopes("orders:read")
    def order(order_id: str) -> dict[str, Any]:
        principal = current_principal()
        assert principal is not None
        return {"id": order_id, "path": request.path, "subject": principal.subject}

    @app.get("/orders/admin")
    @require_roles("admin")
    def admin() -> dict[str, Any]:
        return {"ok": True}

    @app.post("/orders/form")
    def form() -> dict[str, Any]:
        return {"fields": sorted(request.form.keys()), "note": request.form.get("note")}

    return app, extension


@pytest.fixture
def client(test_issuer: FakeIssuer) -> Iterator[tuple[FlaskClient, FlaskAuthGate]]:
    gate = Gate(parse_gate_config(config_text(test_issuer)))
    app, extension = build_app(gate)
    yield app.test_client(), extension
    assert extension.sync is not None
    extension.sync.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_valid_tokens_reach_the_view(
    client: tuple[FlaskClient, FlaskAuthGate], test_issuer: FakeIssuer
) -> None:
    flask_client, extension = client
    token = test_issuer.token()
    response = flask_client.get("/orders/7", headers=bearer(token))
    assert response.status_code == 200
    assert response.json == {"id": "7", "path": "/orders/7", "subject": "user-1"}
    assert flask_client.get("/orders/8", headers=bearer(token)).status_code == 200
    assert extension.sync is not None
    metrics = extension.sync.gate.verifier.metrics
    assert metrics.token_cache_misses == 1  # the second request was decided in its own thread
    assert metrics.token_cache_hits >= 1


def test_refusals_carry_rfc_6750_challenges(
    client: tuple[FlaskClient, FlaskAuthGate], test_issuer: FakeIssuer
) -> None:
    flask_client, _ = client
    missing = flask_client.get("/orders/7")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == (
        'Bearer realm="flask-shop", scope="orders:read", '
        'resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource"'
    )
    weak = flask_client.get("/orders/7", headers=bearer(test_issuer.token(scope="profile")))
    assert weak.status_code == 403
    assert 'scope="orders:read"' in weak.headers["WWW-Authenticate"]
    not_admin = flask_client.get("/orders/admin", headers=bearer(test_issuer.token()))
    assert not_admin.status_code == 403
    assert 'error="insufficient_scope"' in not_admin.headers["WWW-Authenticate"]
    assert flask_client.get("/nowhere", headers=bearer(test_issuer.token())).status_code == 403


def test_decorators_authenticate_on_public_routes(
    client: tuple[FlaskClient, FlaskAuthGate], test_issuer: FakeIssuer
) -> None:
    flask_client, _ = client
    assert flask_client.get("/health").json == {"status": "ok"}
    anonymous = flask_client.get("/public/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith('Bearer realm="flask-shop"')
    me = flask_client.get("/public/me", headers=bearer(test_issuer.token(sub="bob")))
    assert me.json == {"subject": "bob"}


def test_decorators_alone_without_route_enforcement(test_issuer: FakeIssuer) -> None:
    gate = Gate(parse_gate_config(config_text(test_issuer)))
    app, extension = build_app(gate, enforce_routes=False)
    flask_client = app.test_client()
    try:
        undecorated = flask_client.post("/orders/form", data={"note": "n"})
        assert undecorated.status_code == 200  # no gate in front of views without decorators
        ok = flask_client.get("/orders/3", headers=bearer(test_issuer.token()))
        assert ok.json is not None
        assert ok.json["subject"] == "user-1"
        assert flask_client.get("/orders/3").status_code == 401
        weak = flask_client.get("/orders/3", headers=bearer(test_issuer.token(scope="x")))
        assert weak.status_code == 403
    finally:
        assert extension.sync is not None
        extension.sync.close()


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer " + "a" * 100_000},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer a\tb"},
        {"Authorization": "Bearer x.y.z"},
    ],
)
def test_hostile_headers_never_cause_a_500(
    client: tuple[FlaskClient, FlaskAuthGate], headers: dict[str, str]
) -> None:
    flask_client, _ = client
    response = flask_client.get("/orders/7", headers=headers)
    assert response.status_code in (400, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_hostile_tokens_and_paths(
    client: tuple[FlaskClient, FlaskAuthGate], test_issuer: FakeIssuer
) -> None:
    flask_client, _ = client
    for token in (
        forge({"alg": "none"}, test_issuer.claims()),
        test_issuer.token(exp=1),
        test_issuer.token(aud="https://elsewhere.test"),
        test_issuer.token(iss="https://evil.test"),
    ):
        response = flask_client.get("/orders/7", headers=bearer(token))
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    token = test_issuer.token()
    two = flask_client.get(f"/orders/7?access_token={token}", headers=bearer(token))
    assert two.status_code == 400
    weak = bearer(test_issuer.token(scope="profile"))
    assert flask_client.get("/health/../orders/7", headers=weak).status_code == 403
    moved = flask_client.get("/public/../orders//7", headers=bearer(token))
    assert moved.json is not None
    assert moved.json["path"] == "/orders/7"


def test_form_bodies_and_metadata(test_issuer: FakeIssuer) -> None:
    gate = Gate(parse_gate_config(config_text(test_issuer, '["header", "body"]')))
    app, extension = build_app(gate)
    flask_client = app.test_client()
    try:
        token = test_issuer.token()
        ok = flask_client.post("/orders/form", data={"access_token": token, "note": "hi"})
        assert ok.json == {"fields": ["access_token", "note"], "note": "hi"}
        both = flask_client.post(
            "/orders/form", data={"access_token": token}, headers=bearer(token)
        )
        assert both.status_code == 400
        big = flask_client.post("/orders/form", data={"note": "x" * 70_000}, headers=bearer(token))
        assert big.status_code == 413
        metadata = flask_client.get("/.well-known/oauth-protected-resource")
        assert metadata.status_code == 200
        assert metadata.json is not None
        assert metadata.json["resource"] == "http://127.0.0.1/"
        assert metadata.json["bearer_methods_supported"] == ["body", "header"]
    finally:
        assert extension.sync is not None
        extension.sync.close()


def test_unavailable_keys_give_503(test_issuer: FakeIssuer) -> None:
    test_issuer.server.set_json("/jwks", {}, status=500)
    gate = Gate(parse_gate_config(config_text(test_issuer)))
    app, extension = build_app(gate)
    try:
        response = app.test_client().get("/orders/7", headers=bearer(test_issuer.token()))
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) >= 1
    finally:
        assert extension.sync is not None
        extension.sync.close()
