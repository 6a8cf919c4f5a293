"""The gate inside applications, as a new user meets it: dependency-only mode (FastAPI dependencies
and Flask decorators decide, no `[[routes]]`), the framework's documentation paths by an explicit
option, and one RFC 6750 answer (body and headers, byte for byte) for a refusal wherever it is made:
the ASGI or WSGI middleware, a FastAPI dependency (with the middleware or with `use_gate`), or a
Flask decorator. Real FastAPI (httpx's ASGI transport) and Flask (its test client) applications."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from flask import Flask
from flask import request as flask_request

from authgate.gate import Gate, parse_gate_config
from authgate.middleware import PRINCIPAL_KEY, AuthGateMiddleware
from authgate.middleware.asgi import GateRefusal
from authgate.middleware.fastapi import current_principal, require_scopes, use_gate
from authgate.middleware.flask import FlaskAuthGate
from authgate.middleware.flask import current_principal as flask_principal
from authgate.middleware.flask import require_scopes as flask_require_scopes
from authgate.oauth.errors import InsufficientScope
from authgate.verifier import ConfigError, Principal
from tests.support.gate import AUDIENCE, FakeIssuer, forge

ROUTES = """
[[routes]]
path = "/open"
public = true
[[routes]]
path = "/orders"
scopes = ["orders:read"]
[[routes]]
path = "/admin"
roles = ["admin"]
"""


def gate_text(issuer: FakeIssuer, *, mode: str | None = None, routes: str = "") -> str:
    mode_line = f'mode = "{mode}"' if mode is not None else ""
    return f"""
realm = "shop"
resource = "http://127.0.0.1/api"
bearer_methods = ["header", "body"]
{mode_line}
[[issuers]]
issuer = "{issuer.issuer}"
jwks_uri = "{issuer.server.url}/jwks"
audiences = ["{AUDIENCE}"]
typ = "at+jwt"
{routes}"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


OrderReader = Annotated[Principal, Depends(require_scopes("orders:read"))]
Anyone = Annotated[Principal, Depends(current_principal)]


def fastapi_app(
    gate: Gate, *, middleware: bool = True, framework_docs: bool = False, **kwargs: Any
) -> FastAPI:
    app = FastAPI(**kwargs)
    if middleware:
        options = {"framework_docs": True} if framework_docs else {}  # off: the default
        app.add_middleware(AuthGateMiddleware, gate=gate, **options)
    else:
        use_gate(app, gate)

    def seen(request: Request) -> dict[str, Any]:
        principal = request.scope.get(PRINCIPAL_KEY)
        return {"principal": principal.subject if isinstance(principal, Principal) else None}

    @app.get("/anything")  # no dependency: in dependencies mode, open to anyone
    async def anything(request: Request) -> dict[str, Any]:
        return seen(request)

    @app.get("/admin/panel")  # no dependency: guarded by a route, when there is one
    async def admin(request: Request) -> dict[str, Any]:
        return seen(request)

    @app.get("/open/orders")
    @app.get("/orders/{order_id}")
    async def orders(p: OrderReader) -> dict[str, Any]:
        return {"subject": p.subject}

    @app.get("/me")
    async def me(p: Anyone) -> dict[str, Any]:
        return {"subject": p.subject}

    @app.head("/open/head")
    @app.get("/open/head")
    async def head(p: OrderReader) -> dict[str, Any]:
        return {"subject": p.subject}

    @app.post("/open/form")
    async def form(request: Request) -> dict[str, Any]:
        return {"fields": sorted((await request.form()).keys())}

    return app


def flask_app(gate: Gate) -> tuple[Flask, FlaskAuthGate]:
    app = Flask(__name__)
    extension = FlaskAuthGate(app, gate)

    @app.get("/anything")
    def anything() -> dict[str, Any]:
        principal = flask_request.environ.get(PRINCIPAL_KEY)
        return {"principal": principal.subject if isinstance(principal, Principal) else None}

    @app.get("/open/orders")
    @app.get("/orders/<order_id>")
    @flask_require_scopes("orders:read")
    def orders(order_id: str = "") -> dict[str, Any]:
        principal = flask_principal()
        assert principal is not None
        return {"subject": principal.subject}

    @app.post("/open/form")
    def form() -> dict[str, Any]:
        return {"fields": sorted(flask_request.form.keys())}

    return app, extension


@pytest.fixture
async def make_gate(test_issuer: FakeIssuer) -> AsyncIterator[Callable[..., Gate]]:
    made: list[Gate] = []

    def make(**kwargs: Any) -> Gate:
        gate = Gate(parse_gate_config(gate_text(test_issuer, **kwargs)))
        made.append(gate)
        return gate

    yield make
    for gate in made:  # closing twice (Flask's SyncGate.close closed its own) is harmless
        await gate.aclose()


async def asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


# -- dependency-only mode ---------------------------------------------------------------------


@pytest.fixture
async def dependencies_client(test_issuer: FakeIssuer) -> AsyncIterator[httpx.AsyncClient]:
    gate = Gate(parse_gate_config(gate_text(test_issuer, mode="dependencies")))
    async with await asgi_client(fastapi_app(gate)) as client:
        yield client
    await gate.aclose()


async def test_dependency_only_mode_lets_the_dependencies_decide(
    dependencies_client: httpx.AsyncClient, test_issuer: FakeIssuer
) -> None:
    client = dependencies_client
    # No dependency: the request reaches the endpoint, with the principal when a token was sent.
    assert (await client.get("/anything")).json() == {"principal": None}
    token = test_issuer.token(sub="alice")
    assert (await client.get("/anything", headers=bearer(token))).json() == {"principal": "alice"}
    # A dependency decides: 401 without a token, 403 without the scope, 200 with it.
    missing = await client.get("/orders/7")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == (
        'Bearer realm="shop", scope="orders:read", resource_metadata='
        '"http://127.0.0.1/.well-known/oauth-protected-resource/api"'
    )
    weak = await client.get("/orders/7", headers=bearer(test_issuer.token(scope="profile")))
    assert weak.status_code == 403
    assert 'error="insufficient_scope"' in weak.headers["www-authenticate"]
    assert 'scope="orders:read"' in weak.headers["www-authenticate"]
    ok = await client.get("/orders/7", headers=bearer(token))
    assert ok.json() == {"subject": "alice"}
    assert (await client.get("/me", headers=bearer(token))).json() == {"subject": "alice"}
    assert (await client.get("/me")).status_code == 401


@pytest.mark.parametrize("path", ["/anything", "/orders/7", "/me"])
async def test_hostile_tokens_are_refused_in_dependency_only_mode(
    dependencies_client: httpx.AsyncClient, test_issuer: FakeIssuer, path: str
) -> None:
    """A token that is sent is verified even where no dependency asks for one: the application
    never sees a request with a bad credential."""
    client = dependencies_client
    for token in (
        forge({"alg": "none", "typ": "at+jwt"}, test_issuer.claims()),
        test_issuer.token(exp=1),
        test_issuer.token(aud="https://elsewhere.test"),
        test_issuer.token(iss="https://evil.test"),
        test_issuer.token(header={"typ": "JWT"}),
        "not.a.token",
        "a" * 100_000,
    ):
        response = await client.get(path, headers=bearer(token))
        assert response.status_code == 401, token[:40]
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert response.json()["error"] == "invalid_token"
        assert token not in response.text
    for headers, status in (
        ({"Authorization": "Bearer"}, 400),
        ({"Authorization": "Bearer a b c"}, 400),
        ([("authorization", "Bearer a"), ("authorization", "Bearer b")], 400),
    ):
        response = await client.get(path, headers=headers)
        assert response.status_code == status
        assert response.json()["error"] == "invalid_request"
    two_places = await client.get(f"{path}?access_token=abc", headers=bearer("abc"))
    assert two_places.status_code == 400
    assert (await client.get(path.replace("/", "/%2F", 1))).status_code == 400  # ambiguous path


async def test_routes_still_decide_where_they_match_in_dependency_only_mode(
    test_issuer: FakeIssuer,
) -> None:
    gate = Gate(parse_gate_config(gate_text(test_issuer, mode="dependencies", routes=ROUTES)))
    async with await asgi_client(fastapi_app(gate)) as client:
        assert (await client.get("/admin/panel")).status_code == 401
        user = bearer(test_issuer.token(sub="u"))
        assert (await client.get("/admin/panel", headers=user)).status_code == 403
        admin = bearer(test_issuer.token(sub="root", roles=["admin"]))
        assert (await client.get("/admin/panel", headers=admin)).json() == {"principal": "root"}
        assert (await client.get("/anything")).json() == {"principal": None}
        # A public route does not look at credentials; the dependency behind it still does.
        assert (await client.get("/open/orders")).status_code == 401
        assert (await client.get("/open/orders", headers=user)).json() == {"subject": "u"}
    assert gate.decisions["deferred"] >= 1
    await gate.aclose()


async def test_no_routes_and_no_mode_still_refuses_everything(
    test_issuer: FakeIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing routes table may be a typo: without an explicit mode, nothing opens, and loading
    the file says why every request will be refused."""
    with caplog.at_level(logging.WARNING, logger="authgate.gate"):
        config = parse_gate_config(gate_text(test_issuer))
    assert any('mode = "dependencies"' in r.getMessage() for r in caplog.records)
    gate = Gate(config)
    async with await asgi_client(fastapi_app(gate)) as client:
        token = bearer(test_issuer.token())
        for path in ("/anything", "/orders/7", "/me"):
            response = await client.get(path, headers=token)
            assert response.status_code == 403
            assert response.json()["error"] == "access_denied"
    await gate.aclose()


def test_the_documented_dependencies_example_loads() -> None:
    text = (Path(__file__).parents[3] / "docs" / "gate.md").read_text()
    section = text.split("## Routes or dependencies", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config = parse_gate_config(example)
    assert config.mode == "dependencies"
    assert config.routes == ()


def test_the_mode_key_is_checked(test_issuer: FakeIssuer) -> None:
    assert parse_gate_config(gate_text(test_issuer, mode="routes")).mode == "routes"
    assert parse_gate_config(gate_text(test_issuer, mode="dependencies")).mode == "dependencies"
    for bad in ("dependency", "open", ""):
        with pytest.raises(ConfigError, match="mode"):
            parse_gate_config(gate_text(test_issuer, mode=bad))


async def test_dependency_only_mode_with_flask(
    make_gate: Callable[..., Gate], test_issuer: FakeIssuer
) -> None:
    app, extension = flask_app(make_gate(mode="dependencies"))
    client = app.test_client()
    try:
        assert client.get("/anything").json == {"principal": None}
        token = bearer(test_issuer.token(sub="bob"))
        assert client.get("/anything", headers=token).json == {"principal": "bob"}
        assert client.get("/orders/1").status_code == 401
        weak = client.get("/orders/1", headers=bearer(test_issuer.token(scope="profile")))
        assert weak.status_code == 403
        assert 'scope="orders:read"' in weak.headers["WWW-Authenticate"]
        assert client.get("/orders/1", headers=token).json == {"subject": "bob"}
        for hostile in (test_issuer.token(exp=1), forge({"alg": "none"}, test_issuer.claims())):
            response = client.get("/anything", headers=bearer(hostile))
            assert response.status_code == 401
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert client.get("/anything", headers={"Authorization": "Bearer a b"}).status_code == 400
    finally:
        assert extension.sync is not None
        extension.sync.close()


# -- the framework's documentation paths ------------------------------------------------------

DOCS = ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")


async def test_fastapi_docs_are_refused_unless_the_option_is_on(
    make_gate: Callable[..., Gate],
) -> None:
    gate = make_gate(routes=ROUTES)
    async with await asgi_client(fastapi_app(gate)) as client:
        for path in DOCS:
            assert (await client.get(path)).status_code == 403, path
    async with await asgi_client(fastapi_app(gate, framework_docs=True)) as client:
        for path in DOCS:
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers.get("www-authenticate") is None
        assert (await client.get("/openapi.json")).json()["paths"]["/me"]
        assert (await client.head("/docs")).status_code == 200
        # Exactly those paths, only for reading: nothing under or beside them opens.
        for method, path in (
            ("POST", "/openapi.json"),
            ("GET", "/docs/x"),
            ("GET", "/docsx"),
            ("GET", "/docs/../admin/panel"),
            ("GET", "/docs/%2e%2e/admin/panel"),
            ("GET", "/openapi.json/../admin/panel"),
        ):
            response = await client.request(method, path)
            assert response.status_code in (401, 403), (method, path)
        # Still a gate: an ambiguous spelling of a docs path is refused, not served.
        assert (await client.get("/docs%2Fx")).status_code == 400
    await gate.aclose()


async def test_fastapi_docs_follow_the_application_settings(
    make_gate: Callable[..., Gate],
) -> None:
    gate = make_gate(routes=ROUTES)
    moved = fastapi_app(
        gate, framework_docs=True, docs_url="/api-docs", redoc_url=None, openapi_url="/spec.json"
    )
    async with await asgi_client(moved) as client:
        assert (await client.get("/api-docs")).status_code == 200
        assert (await client.get("/spec.json")).status_code == 200
        for path in ("/docs", "/redoc", "/openapi.json"):  # moved or turned off: not opened
            assert (await client.get(path)).status_code == 403, path
        # FastAPI serves the OAuth2 redirect page where it is configured, whatever docs_url is.
        assert (await client.get("/docs/oauth2-redirect")).status_code == 200
    hidden = fastapi_app(gate, framework_docs=True, openapi_url=None)
    async with await asgi_client(hidden) as client:
        for path in DOCS:
            assert (await client.get(path)).status_code == 403, path
    # Wrapping the application directly (not through add_middleware) finds the same paths.
    bare = FastAPI()
    wrapped = AuthGateMiddleware(bare, gate, framework_docs=True)
    async with await asgi_client(wrapped) as client:
        assert (await client.get("/openapi.json")).status_code == 200
        assert (await client.get("/elsewhere")).status_code == 403
    await gate.aclose()


async def test_docs_option_on_an_application_without_docs_opens_nothing(
    make_gate: Callable[..., Gate], caplog: pytest.LogCaptureFixture
) -> None:
    gate = make_gate(routes=ROUTES)

    async def plain(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the gate let a request through")

    with caplog.at_level(logging.WARNING, logger="authgate.gate"):
        async with await asgi_client(AuthGateMiddleware(plain, gate, framework_docs=True)) as c:
            for path in DOCS:
                assert (await c.get(path)).status_code == 403
    assert sum("framework_docs" in r.getMessage() for r in caplog.records) == 1
    await gate.aclose()


# -- one answer for a refusal, wherever it is made --------------------------------------------

_VARYING = {"content-length", "date", "server"}


def _answer(status: int, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
    kept = {k.lower(): v for k, v in headers.items() if k.lower() not in _VARYING}
    return status, kept, body


def _cases(issuer: FakeIssuer) -> dict[str, dict[str, str]]:
    return {
        "missing": {},
        "expired": bearer(issuer.token(exp=1)),
        "forged": bearer(forge({"alg": "none", "typ": "at+jwt"}, issuer.claims())),
        "malformed": {"Authorization": "Bearer a b"},
        "insufficient": bearer(issuer.token(scope="profile")),
    }


async def test_every_refusal_is_the_same_answer_byte_for_byte(
    make_gate: Callable[..., Gate], test_issuer: FakeIssuer
) -> None:
    """The same refusal from the ASGI middleware (a route), a FastAPI dependency behind the
    middleware (a public route, and dependency-only mode), a FastAPI dependency without the
    middleware (`use_gate`), the WSGI middleware and a Flask decorator: one status, one header
    set and one body. Before, the FastAPI dependency answered `{"detail": …}`."""
    routes_gate = make_gate(routes=ROUTES)
    shells = {
        "asgi middleware": (fastapi_app(routes_gate), "/orders/7"),
        "fastapi dependency": (fastapi_app(routes_gate), "/open/orders"),
        "fastapi dependency, dependencies mode": (
            fastapi_app(make_gate(mode="dependencies")),
            "/orders/7",
        ),
        "fastapi dependency, use_gate": (
            fastapi_app(make_gate(routes=ROUTES), middleware=False),
            "/orders/7",
        ),
    }
    flask, extension = flask_app(make_gate(routes=ROUTES))
    flask_client = flask.test_client()
    try:
        for case, headers in _cases(test_issuer).items():
            answers: dict[str, tuple[int, dict[str, str], bytes]] = {}
            for name, (app, path) in shells.items():
                async with await asgi_client(app) as client:
                    r = await client.get(path, headers=headers)
                answers[name] = _answer(r.status_code, r.headers, r.content)
            for name, path in (
                ("wsgi middleware", "/orders/7"),
                ("flask decorator", "/open/orders"),
            ):
                f = flask_client.get(path, headers=headers)
                answers[name] = _answer(f.status_code, f.headers, f.get_data())
            reference = answers["asgi middleware"]
            for name, answer in answers.items():
                expected = reference
                if name.endswith("dependencies mode") and case in ("expired", "forged"):
                    # The middleware refuses a bad credential before any dependency runs, so its
                    # 401 cannot name the dependency's scopes; all else is the same.
                    header = reference[1]["www-authenticate"].replace('scope="orders:read", ', "")
                    expected = (
                        reference[0],
                        {**reference[1], "www-authenticate": header},
                        reference[2],
                    )
                assert answer == expected, (case, name, answer, expected)
            status, kept, body = reference
            assert status == {"malformed": 400, "insufficient": 403}.get(case, 401), case
            assert kept["content-type"] == "application/json"
            assert kept["cache-control"] == "no-store"
            assert kept["www-authenticate"].startswith('Bearer realm="shop", ')
            if case != "malformed":  # RFC 6750 §3: the 401 and 403 name the scopes needed
                assert 'scope="orders:read"' in kept["www-authenticate"], case
            assert kept["www-authenticate"].endswith(
                'resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/api"'
            )
            assert b'"detail"' not in body
            if case == "insufficient":
                assert b'"scope": "orders:read"' in body
                assert 'scope="orders:read"' in kept["www-authenticate"]
    finally:
        assert extension.sync is not None
        extension.sync.close()


async def test_unavailable_keys_are_the_same_answer_everywhere(
    make_gate: Callable[..., Gate], test_issuer: FakeIssuer
) -> None:
    test_issuer.server.set_json("/jwks", {}, status=500)
    token = bearer(test_issuer.token())
    answers = []
    for app, path in (
        (fastapi_app(make_gate(routes=ROUTES)), "/orders/7"),
        (fastapi_app(make_gate(routes=ROUTES)), "/open/orders"),
        (fastapi_app(make_gate(routes=ROUTES), middleware=False), "/orders/7"),
    ):
        async with await asgi_client(app) as client:
            r = await client.get(path, headers=token)
        answers.append(_answer(r.status_code, r.headers, r.content))
    flask, extension = flask_app(make_gate(routes=ROUTES))
    try:
        for path in ("/orders/7", "/open/orders"):
            f = flask.test_client().get(path, headers=token)
            answers.append(_answer(f.status_code, f.headers, f.get_data()))
    finally:
        assert extension.sync is not None
        extension.sync.close()
    assert answers[0][0] == 503
    assert int(answers[0][1]["retry-after"]) >= 1
    assert all(answer == answers[0] for answer in answers), answers


async def test_a_too_large_form_is_the_same_answer_in_both_middlewares(
    make_gate: Callable[..., Gate], test_issuer: FakeIssuer
) -> None:
    form = {"note": "x" * 70_000}
    async with await asgi_client(fastapi_app(make_gate(routes=ROUTES))) as client:
        r = await client.post("/open/form", data=form, headers=bearer(test_issuer.token()))
    asgi = _answer(r.status_code, r.headers, r.content)
    flask, extension = flask_app(make_gate(routes=ROUTES))
    try:
        f = flask.test_client().post("/open/form", data=form, headers=bearer(test_issuer.token()))
    finally:
        assert extension.sync is not None
        extension.sync.close()
    assert asgi[0] == 413
    assert _answer(f.status_code, f.headers, f.get_data()) == asgi


async def test_a_dependency_refusal_to_head_has_the_headers_and_no_body(
    make_gate: Callable[..., Gate], test_issuer: FakeIssuer
) -> None:
    weak = bearer(test_issuer.token(scope="profile"))
    answers = []
    for middleware in (True, False):
        app = fastapi_app(make_gate(routes=ROUTES), middleware=middleware)
        async with await asgi_client(app) as client:
            get = await client.get("/open/head", headers=weak)
            head = await client.head("/open/head", headers=weak)
        assert get.status_code == head.status_code == 403
        assert head.content == b""
        assert head.headers["content-length"] == "0"
        assert head.headers["www-authenticate"] == get.headers["www-authenticate"]
        answers.append(_answer(head.status_code, head.headers, head.content))
    assert answers[0] == answers[1]


async def test_a_refusal_after_the_response_started_is_not_swallowed(
    make_gate: Callable[..., Gate],
) -> None:
    """The middleware answers a dependency's refusal only while nothing has been sent."""
    gate = make_gate(mode="dependencies")
    refusal = gate.refusal_for(InsufficientScope("x"))
    assert refusal.answer is not None

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise GateRefusal(refusal.answer)

    middleware = AuthGateMiddleware(streaming, gate)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "raw_path": b"/x", "headers": []}
    with pytest.raises(GateRefusal):
        await middleware(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start"]
