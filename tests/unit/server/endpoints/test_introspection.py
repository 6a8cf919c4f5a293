"""Introspection (RFC 7662) and revocation (RFC 7009) of JWT and opaque access tokens."""

from __future__ import annotations

import json

import pytest

from authgate.jose import JWK, jws, jwt
from tests.support.server_harness import ISSUER, Harness, expect_error

API = "https://api.example.test"
OTHER = "https://other.example.test"


async def _setup(h: Harness, token_format: str) -> tuple[str, tuple[str, str], tuple[str, str]]:
    """An API, a client holding a token for it, and a resource server allowed to introspect."""
    await h.create_api(API, token_format=token_format)
    client, secret = await h.create_client(scopes=("read",), roles=("ops",))
    rs, rs_secret = await h.create_client(name="resource server", grant_types=(), introspect=(API,))
    token = (await h.token(client, secret)).json()["access_token"]
    return token, (client.client_id, secret or ""), (rs.client_id, rs_secret or "")


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_introspect_active_token(harness: Harness, token_format: str) -> None:
    token, owner, rs = await _setup(harness, token_format)
    for auth in (owner, rs):
        response = await harness.http.post("/introspect", data={"token": token}, auth=auth)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["active"] is True
        assert body["client_id"] == owner[0]
        assert body["sub"] == owner[0]
        assert body["aud"] == API
        assert body["iss"] == ISSUER
        assert body["scope"] == "read"
        assert body["token_type"] == "Bearer"
        assert body["roles"] == ["ops"]
        assert body["exp"] - body["iat"] == 300
    hinted = await harness.http.post(
        "/introspect", data={"token": token, "token_type_hint": "refresh_token"}, auth=rs
    )
    assert hinted.json()["active"] is True  # a wrong hint only widens the search (§2.1)


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_inactive_answers(harness: Harness, token_format: str) -> None:
    token, _owner, rs = await _setup(harness, token_format)
    stranger, stranger_secret = await harness.create_client(
        name="stranger", grant_types=(), introspect=()
    )
    # Not the token's client and not allowed for its API: told nothing (RFC 7662 §2.2).
    response = await harness.http.post(
        "/introspect", data={"token": token}, auth=(stranger.client_id, stranger_secret or "")
    )
    assert response.json() == {"active": False}
    for junk in ("garbage", "a.b.c", token + "x", "x" * 12000):
        answer = await harness.http.post("/introspect", data={"token": junk}, auth=rs)
        assert answer.status_code == 200
        assert answer.json() == {"active": False}
    harness.clock.advance(301)
    expired = await harness.http.post("/introspect", data={"token": token}, auth=rs)
    assert expired.json() == {"active": False}


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_revocation(harness: Harness, token_format: str) -> None:
    token, owner, rs = await _setup(harness, token_format)
    # Only the client the token was issued to may revoke it (RFC 7009 §2.1).
    foreign = await harness.http.post("/revoke", data={"token": token}, auth=rs)
    expect_error(foreign, 400, "invalid_request")
    still = await harness.http.post("/introspect", data={"token": token}, auth=rs)
    assert still.json()["active"] is True
    revoked = await harness.http.post(
        "/revoke", data={"token": token, "token_type_hint": "access_token"}, auth=owner
    )
    assert revoked.status_code == 200
    assert revoked.headers["cache-control"] == "no-store"
    after = await harness.http.post("/introspect", data={"token": token}, auth=rs)
    assert after.json() == {"active": False}
    # Revoking again, or revoking junk, is not an error (§2.2).
    for value in (token, "no-such-token", "a.b.c"):
        again = await harness.http.post("/revoke", data={"token": value}, auth=owner)
        assert again.status_code == 200


async def test_deleted_client_tokens_inactive(harness: Harness) -> None:
    token, owner, rs = await _setup(harness, "jwt")
    assert await harness.server.storage.delete_client(owner[0])
    response = await harness.http.post("/introspect", data={"token": token}, auth=rs)
    assert response.json() == {"active": False}


async def test_token_from_another_issuer_is_inactive(harness: Harness) -> None:
    _token, _owner, rs = await _setup(harness, "jwt")
    key = JWK.generate("RSA", alg="RS256")
    now = int(harness.clock())
    forged = jwt.encode(
        {
            "iss": ISSUER,
            "sub": "x",
            "aud": API,
            "exp": now + 60,
            "iat": now,
            "jti": "j",
            "client_id": "x",
        },
        key,
        "RS256",
        header={"typ": "at+jwt"},
    )
    response = await harness.http.post("/introspect", data={"token": forged}, auth=rs)
    assert response.json() == {"active": False}


async def test_our_jwt_is_found_for_any_single_audience(harness: Harness) -> None:
    """What makes a JWT access token ours: our key and issuer, `typ: at+jwt`, one `aud` (any)."""
    key = harness.server.keys.signing_key("RS256")
    now = int(harness.clock())
    ours = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": "https://any-api.example.test",
        "exp": now + 60,
        "iat": now,
        "jti": "j1",
        "client_id": "c1",
    }

    async def find(claims: dict[str, object], typ: str = "at+jwt") -> object:
        # jws.sign, not jwt.encode: it would refuse the ill-typed claims.
        token = jws.sign(json.dumps(claims).encode(), key, "RS256", {"typ": typ})
        return await harness.server.inspector.find(token)

    info = await find(ours)
    assert info is not None
    assert (info.audience, info.subject, info.jti, info.active) == (
        ours["aud"],
        "alice",
        "j1",
        True,
    )
    assert await find(ours, typ="application/at+jwt") is not None  # RFC 7515 §4.1.9
    assert await find(ours, typ="JWT") is None
    without = {name: {k: v for k, v in ours.items() if k != name} for name in ours}
    for claims in (
        {**ours, "aud": [API, OTHER]},  # ours name exactly one API
        {**ours, "aud": 7},
        without["aud"],
        {**ours, "iss": OTHER},
        {**ours, "exp": now - 1},
        {**ours, "iat": "now"},
        without["sub"],
        without["jti"],
        without["client_id"],
        without["iat"],
        without["exp"],
    ):
        assert await find(claims) is None, claims


async def test_endpoints_require_client_authentication(harness: Harness) -> None:
    token, owner, _rs = await _setup(harness, "opaque")
    for path in ("/introspect", "/revoke"):
        expect_error(await harness.http.post(path, data={"token": token}), 401, "invalid_client")
        wrong = await harness.http.post(path, data={"token": token}, auth=(owner[0], "wrong"))
        expect_error(wrong, 401, "invalid_client")
        missing = await harness.http.post(path, data={}, auth=owner)
        expect_error(missing, 400, "invalid_request")
