"""Hostile requests to the registration endpoint (RFC 7591 §3) and the client configuration
endpoint (RFC 7592 §2), on SQLite and PostgreSQL: every metadata member wrong in turn, bodies
that are too large, not JSON, not an object or name a member twice, the wrong content type,
strings the databases cannot store, and credentials in the wrong place. Each gets a precise
OAuth error (never a 500) and registers nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from authgate.jose import JWK
from authgate.server.config import LimitSettings, LimitsSettings, RegistrationSettings
from tests.support.server_harness import FakeClock, Harness, make_config, running

API = "https://api.example.test"
JSON = {"Content-Type": "application/json"}
GOOD: dict[str, Any] = {
    "client_name": "app",
    "redirect_uris": ["https://app.example.test/cb"],
    "grant_types": ["authorization_code"],
    "scope": "read",
}
META = "invalid_client_metadata"
URI = "invalid_redirect_uri"

# (member, value, error, a piece of the description): each alone makes GOOD unregistrable.
WRONG: list[tuple[str, Any, str, str]] = [
    ("redirect_uris", "https://app.example.test/cb", META, "array"),
    ("redirect_uris", [1], META, "array"),
    ("redirect_uris", [""], META, "array"),
    ("redirect_uris", [], URI, "at least one redirect_uris"),
    ("redirect_uris", ["https://app.example.test/cb#frag"], URI, "fragment"),
    ("redirect_uris", ["https://*.example.test/cb"], URI, "wildcard"),
    ("redirect_uris", ["http://app.example.test/cb"], URI, "loopback"),
    ("redirect_uris", ["http://localhost/cb"], URI, "not localhost"),
    ("redirect_uris", ["http://127.0.0.1/cb"], URI, "native"),  # web by default
    ("redirect_uris", ["/relative"], URI, "absolute"),
    ("redirect_uris", ["https://user@app.example.test/cb"], URI, "userinfo"),
    ("redirect_uris", ["javascript:alert(1)"], URI, "private-use"),
    ("redirect_uris", ["https://app.example.test/\u0000"], META, "NUL"),
    ("redirect_uris", ["https://app.example.test/\u00e9"], URI, "printable ASCII"),
    ("redirect_uris", ["https://app.example.test/" + "a" * 2100], META, "array"),
    ("redirect_uris", [f"https://a.test/{i}" for i in range(21)], META, "at most 20"),
    ("post_logout_redirect_uris", ["http://evil.test/"], URI, "post-logout"),
    ("grant_types", "authorization_code", META, "array"),
    ("grant_types", ["implicit"], META, "unsupported grant"),
    ("grant_types", ["password"], META, "unsupported grant"),
    ("grant_types", ["client_credentials"], META, "redirect_uris is for authorization_code"),
    ("grant_types", ["authorization_code", "refresh_token", "refresh_token", {}], META, "array"),
    ("response_types", ["token"], META, "only code"),
    ("response_types", ["code id_token"], META, "only code"),
    ("response_types", [], META, "disagree"),
    ("response_types", "code", META, "array"),
    ("token_endpoint_auth_method", "client_secret_jwt", META, "token_endpoint_auth_method"),
    ("token_endpoint_auth_method", "tls_client_auth", META, "token_endpoint_auth_method"),
    ("token_endpoint_auth_method", 1, META, "string"),
    ("token_endpoint_auth_method", "private_key_jwt", META, "exactly one of jwks or jwks_uri"),
    ("application_type", "desktop", META, "web or native"),
    ("application_type", ["web"], META, "string"),
    ("client_name", "", META, "non-empty string"),
    ("client_name", "a\u0000b", META, "NUL"),
    ("client_name", "a\u0007b", META, "printable"),
    ("client_name", "x" * 201, META, "200"),
    ("client_name", {"en": "x"}, META, "string"),
    ("scope", "write", META, "may not be requested"),
    ("scope", "no-such-scope", META, "may not be requested"),
    ("scope", "read  read", META, "single spaces"),
    ("scope", ["read"], META, "string"),
    ("scope", "a\u0000", META, "NUL"),
    ("jwks", {"keys": []}, META, "private_key_jwt"),
    ("jwks", "not an object", META, "JWK Set"),
    ("jwks_uri", "https://app.example.test/jwks", META, "private_key_jwt"),
]


@pytest.fixture
async def server(database_url: str, clock: FakeClock) -> AsyncIterator[Harness]:
    settings = RegistrationSettings(mode="open", allowed_scopes=("read",))
    # The per-address limit (tested in tests/integration) would stop this many requests.
    limits = LimitsSettings(registration=LimitSettings("20/hour", enabled=False))
    config = make_config(database_url, registration=settings, limits=limits)
    async with running(config, clock) as h:
        await h.create_api(API)
        yield h


async def _nothing_registered(h: Harness) -> None:
    assert await h.server.storage.list_clients() == []


@pytest.mark.parametrize(
    ("member", "value", "error", "says"), WRONG, ids=[f"{w[0]}-{i}" for i, w in enumerate(WRONG)]
)
async def test_each_member_wrong_in_turn(
    server: Harness, member: str, value: Any, error: str, says: str
) -> None:
    response = await server.http.post("/register", json={**GOOD, member: value})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert says in response.json()["error_description"]
    assert response.headers["cache-control"] == "no-store"
    await _nothing_registered(server)


async def test_the_good_metadata_registers(server: Harness) -> None:
    """The baseline of the table above: without the wrong member, GOOD registers."""
    assert (await server.http.post("/register", json=GOOD)).status_code == 201


async def test_private_key_jwt_keys_are_checked(server: Harness) -> None:
    base = {**GOOD, "token_endpoint_auth_method": "private_key_jwt"}
    for jwks, says in (
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "jwks"),
        ({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}]}, "jwks"),
        ({"keys": "none"}, "jwks"),
    ):
        response = await server.http.post("/register", json={**base, "jwks": jwks})
        assert response.status_code == 400
        assert response.json()["error"] == META
        assert says in response.json()["error_description"]
    for uri in (
        "http://app.example.test/jwks",
        "https://user@x.test/",
        "not a uri",
        # Not the server's own or internal services (server-side request forgery).
        "http://127.0.0.1:8000/jwks",
        "https://127.0.0.1/jwks",
        "https://[::1]/jwks",
        "https://10.0.0.1/jwks",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/jwks",
        "https://[fd00::1]/jwks",
    ):
        response = await server.http.post("/register", json={**base, "jwks_uri": uri})
        assert response.status_code == 400
        assert response.json()["error"] == META
        assert "jwks_uri" in response.json()["error_description"]
    await _nothing_registered(server)


async def test_public_clients_cannot_use_client_credentials(server: Harness) -> None:
    response = await server.http.post(
        "/register",
        json={
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "none",
        },
    )
    assert response.status_code == 400
    assert "confidential" in response.json()["error_description"]
    identity = await server.http.post(
        "/register", json={"grant_types": ["client_credentials"], "scope": "openid"}
    )
    assert identity.status_code == 400
    assert "authorization_code" in identity.json()["error_description"]
    await _nothing_registered(server)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'"client"', "JSON object"),
        (b"null", "JSON object"),
        (b"1e999999", "JSON object"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"client_name": "a", "client_name": "b"}', "appears twice"),
        (b'{"redirect_uris": ["https://a.test/"], "redirect_uris": []}', "appears twice"),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"client_name": NaN}', "string"),
    ],
)
async def test_bodies_that_are_not_one_json_object(server: Harness, body: bytes, says: str) -> None:
    size = server.config.http.max_body_size
    if len(body) > size:
        body = body[:size]
    response = await server.http.post("/register", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == META
    assert says in response.json()["error_description"]
    await _nothing_registered(server)


async def test_strings_no_database_can_store(server: Harness) -> None:
    """Lone surrogates (valid JSON escapes, not UTF-8) and NUL: refused by the rules, never
    handed to a database that would fail on them."""
    for member in ("client_name", "scope", "jwks_uri", "token_endpoint_auth_method"):
        body = b'{"redirect_uris": ["https://a.test/cb"], "%s": "x\\ud800\\u0000"}' % (
            member.encode()
        )
        response = await server.http.post("/register", content=body, headers=JSON)
        assert response.status_code == 400, (member, response.text)
        assert response.json()["error"] == META
    for body in (
        b'{"redirect_uris": ["https://a.test/\\ud800"]}',
        b'{"redirect_uris": ["https://a.test/"], "x-\\u0000": 1}',
        b'{"redirect_uris": ["https://a.test/"], "jwks": {"keys": [], "note": "\\udfff"}}',
    ):
        response = await server.http.post("/register", content=body, headers=JSON)
        assert response.status_code == 400
        assert response.json()["error"] == META
        assert "NUL" in response.json()["error_description"]
    await _nothing_registered(server)


async def test_a_valid_jwks_with_a_lone_surrogate_member_is_refused_not_a_500(
    server: Harness,
) -> None:
    """Every rule of the key set passes (extra members are allowed in a JWK Set), so only the
    document-wide check stands between this and an answer that cannot be encoded."""
    key = JWK.generate("EC", crv="P-256", alg="ES256").public().to_dict()
    document = {
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key], "note": "\ud800"},
    }
    body = json.dumps(document).encode()  # ASCII JSON with a \ud800 escape
    response = await server.http.post("/register", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"] == META
    await _nothing_registered(server)


async def test_huge_bodies_are_refused_unread(server: Harness) -> None:
    huge = b'{"client_name": "' + b"a" * (server.config.http.max_body_size + 1) + b'"}'
    response = await server.http.post("/register", content=huge, headers=JSON)
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(64):
            yield b" " * 1024

    streamed = await server.http.post("/register", content=chunks(), headers=JSON)
    assert streamed.status_code == 413
    await _nothing_registered(server)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/json; charset=latin-1",
        "application/jsonp",
        "multipart/form-data; boundary=x",
    ],
)
async def test_wrong_content_types(server: Harness, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    body = b'{"redirect_uris": ["https://app.example.test/cb"]}'
    response = await server.http.post("/register", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == META
    assert "application/json" in response.json()["error_description"]
    await _nothing_registered(server)


async def test_unknown_metadata_is_ignored_and_not_echoed(server: Harness) -> None:
    response = await server.http.post(
        "/register",
        json={
            **GOOD,
            "logo_uri": "https://app.example.test/logo.png",
            "software_statement": "eyJ.not.checked",
            "x-custom": {"nested": [1, 2, 3]},
            "contacts": ["admin@example.test"],
        },
    )
    assert response.status_code == 201
    for name in ("logo_uri", "software_statement", "x-custom", "contacts"):
        assert name not in response.json()


async def test_an_update_may_not_carry_the_servers_fields(server: Harness) -> None:
    info = (await server.http.post("/register", json=GOOD)).json()
    uri = f"/register/{info['client_id']}"
    auth = {"Authorization": f"Bearer {info['registration_access_token']}"}
    update = {**GOOD, "client_id": info["client_id"]}
    for name in (
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ):
        response = await server.http.put(uri, json={**update, name: info[name]}, headers=auth)
        assert response.status_code == 400
        assert response.json()["error"] == META
        assert name in response.json()["error_description"]
    missing_id = await server.http.put(uri, json=GOOD, headers=auth)
    assert missing_id.json()["error"] == META
    assert "client_id" in missing_id.json()["error_description"]
    not_json = await server.http.put(uri, content=b"[]", headers={**auth, **JSON})
    assert not_json.json()["error"] == META


@pytest.mark.parametrize(
    "path", ["/register/%00", "/register/%ff%fe", "/register/" + "a" * 5000, "/register/..%2f"]
)
async def test_strange_client_ids_in_the_path(server: Harness, path: str) -> None:
    response = await server.http.get(path, headers={"Authorization": "Bearer x"})
    assert response.status_code in (307, 401, 404)  # 307: the router's path normalisation


async def test_credentials_only_in_the_authorization_header(server: Harness) -> None:
    info = (await server.http.post("/register", json=GOOD)).json()
    uri = f"/register/{info['client_id']}"
    token = info["registration_access_token"]
    in_query = await server.http.get(uri, params={"access_token": token})
    assert in_query.status_code in (400, 401)
    twice = await server.http.get(
        uri, headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    )
    assert twice.status_code == 400
    for method in ("POST", "PATCH"):
        response = await server.http.request(method, uri, headers={"Authorization": "Bearer x"})
        assert response.status_code == 405


async def test_registration_never_logs_the_issued_credentials(
    server: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    info = (await server.http.post("/register", json=GOOD)).json()
    auth = {"Authorization": f"Bearer {info['registration_access_token']}"}
    await server.http.get(f"/register/{info['client_id']}", headers=auth)
    text = caplog.text
    assert info["client_secret"] not in text
    assert info["registration_access_token"] not in text
