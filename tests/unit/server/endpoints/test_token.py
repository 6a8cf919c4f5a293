"""The token endpoint with client_credentials, on SQLite and PostgreSQL: tokens that independent
libraries (PyJWT, joserfc) verify against the served JWKS, and every RFC 6749 §5.2 error."""

from __future__ import annotations

import base64
from urllib.parse import quote

import jwt as pyjwt
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from authgate.server import admin
from authgate.server.clients.authentication import ClientAuthenticator
from authgate.server.models import ApiAccess, Client
from authgate.server.secret_key import ServerSecret
from tests.support.server_harness import ISSUER, Harness
from tests.support.tokens import claims_of, header_of

API = "https://api.example.test"


async def _jwks(h: Harness) -> dict[str, object]:
    response = await h.http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_jwt_access_token_verifies_with_pyjwt_and_joserfc(harness: Harness, alg: str) -> None:
    h = harness
    await h.create_api(API, signing_alg=alg)
    client, secret = await h.create_client(scopes=("read",), roles=("reporting",))
    response = await h.token(client, secret)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "read"
    assert "refresh_token" not in body  # RFC 6749 §4.4.3
    token = body["access_token"]
    header = header_of(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == alg
    assert header["kid"]
    jwks = await _jwks(h)
    signing = pyjwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    claims = pyjwt.decode(
        token,
        signing.key,
        algorithms=[alg],
        audience=API,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == client.client_id == claims["client_id"]
    assert claims["scope"] == "read"
    assert claims["roles"] == ["reporting"]
    assert claims["exp"] - claims["iat"] == 300
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16
    decoded = jose_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=[alg])
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.claims["aud"] == API


async def test_client_without_roles_gets_no_roles_claim(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    claims = claims_of((await harness.token(client, secret)).json()["access_token"])
    assert "roles" not in claims


async def test_jti_unique_per_token(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    jtis = {
        claims_of((await harness.token(client, secret)).json()["access_token"])["jti"]
        for _ in range(5)
    }
    assert len(jtis) == 5


async def test_client_secret_post(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",), auth_method="client_secret_post")
    assert secret is not None
    response = await harness.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": secret,
        },
    )
    assert response.status_code == 200, response.text
    # The registered method is the only one accepted (RFC 7591 §2).
    wrong = await harness.token(client, secret)
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


async def test_basic_credentials_are_form_urlencoded(harness: Harness) -> None:
    # RFC 6749 §2.3.1: id and secret are application/x-www-form-urlencoded before Basic encoding.
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    assert secret is not None
    encoded = quote(client.client_id, safe="") + ":" + "".join(f"%{b:02X}" for b in secret.encode())
    header = "Basic " + base64.b64encode(encoded.encode()).decode()
    response = await harness.http.post(
        "/token", data={"grant_type": "client_credentials"}, headers={"Authorization": header}
    )
    assert response.status_code == 200, response.text


async def test_scope_selection(harness: Harness) -> None:
    await harness.create_api(API, scopes=("read", "write", "admin"))
    client, secret = await harness.create_client(scopes=("read", "write"))
    # No scope requested: every scope the client holds (RFC 6749 §3.3 default).
    assert (await harness.token(client, secret)).json()["scope"] == "read write"
    narrowed = await harness.token(client, secret, scope="write")
    assert narrowed.json()["scope"] == "write"
    for bad in ("admin", "read admin", "unknown", "read  write", " read", "read\x7f"):
        refused = await harness.token(client, secret, scope=bad)
        assert refused.status_code == 400, bad
        assert refused.json()["error"] == "invalid_scope", bad


async def test_resource_indicators(harness: Harness) -> None:
    other = "https://other.example.test/v1"
    await harness.create_api(API)
    await harness.create_api(other, scopes=("read",))
    await harness.create_api("urn:example:unrelated", scopes=("read",))
    client, secret = await harness.create_client(scopes=(f"{API}#read", f"{other}#read"))
    # Two APIs allowed and no resource: the client must say which (RFC 8707 §2).
    missing = await harness.token(client, secret)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_target"
    chosen = await harness.token(client, secret, resource=other)
    assert claims_of(chosen.json()["access_token"])["aud"] == other
    cases = {
        "unknown": "https://nowhere.example.test",
        "not allowed": "urn:example:unrelated",
        "fragment": API + "#frag",
        "relative": "/relative/path",
    }
    for label, value in cases.items():
        refused = await harness.token(client, secret, resource=value)
        assert refused.status_code == 400, label
        assert refused.json()["error"] == "invalid_target", label
    # Several resources in one request (allowed to repeat by RFC 8707, refused by policy here).
    several = await harness.http.post(
        "/token",
        content=f"grant_type=client_credentials&resource={quote(API)}&resource={quote(other)}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(client.client_id, secret or ""),
    )
    assert several.status_code == 400
    assert several.json()["error"] == "invalid_target"
    same_twice = await harness.http.post(
        "/token",
        content=f"grant_type=client_credentials&resource={quote(API)}&resource={quote(API)}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(client.client_id, secret or ""),
    )
    assert same_twice.status_code == 200


async def test_single_api_is_the_default_resource(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    assert claims_of((await harness.token(client, secret)).json()["access_token"])["aud"] == API


async def test_client_without_api_access_gets_invalid_target(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client()
    response = await harness.token(client, secret)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


async def test_api_without_scopes(harness: Harness) -> None:
    await harness.create_api(API, scopes=())
    client, secret = await harness.create_client(apis=(API,))
    body = (await harness.token(client, secret)).json()
    assert "scope" not in body
    assert "scope" not in claims_of(body["access_token"])


async def test_opaque_tokens(harness: Harness) -> None:
    await harness.create_api(API, token_format="opaque", access_token_ttl=120)
    client, secret = await harness.create_client(scopes=("read",))
    body = (await harness.token(client, secret)).json()
    token = body["access_token"]
    assert "." not in token
    assert len(token) >= 43
    assert body["expires_in"] == 120
    record = await harness.server.storage.get_opaque_token(harness.server.secret.hash_token(token))
    assert record is not None
    assert record.client_id == client.client_id
    # Stored hashed only: the token value itself is nowhere in the row.
    assert token not in repr(record)
    assert record.token_hash != token


@pytest.mark.parametrize(
    ("form", "error", "status"),
    [
        ({}, "invalid_request", 400),
        (
            {"grant_type": "password", "username": "u", "password": "p"},
            "unsupported_grant_type",
            400,
        ),
        # Implemented grants this client is not registered for (the user flows, issue 4).
        ({"grant_type": "authorization_code", "code": "x"}, "unauthorized_client", 400),
        (
            {"grant_type": "urn:ietf:params:oauth:grant-type:device_code"},
            "unauthorized_client",
            400,
        ),
    ],
)
async def test_grant_type_errors(
    harness: Harness, form: dict[str, str], error: str, status: int
) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    response = await harness.http.post("/token", data=form, auth=(client.client_id, secret or ""))
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_client_not_registered_for_grant(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(grant_types=(), introspect=(API,))
    response = await harness.token(client, secret)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_public_client_refused_where_its_grant_allows_no_public_clients(
    harness: Harness,
) -> None:
    """A public client registered for client_credentials (admin refuses that; here it comes
    straight from storage) authenticates by naming itself, and the token endpoint refuses the
    grant: `allows_public_clients` is enforced there, for every grant (RFC 6749 §4.4)."""
    await harness.create_api(API)
    await harness.server.storage.create_client(
        Client(
            client_id="public-cc",
            name="public",
            auth_method="none",
            grant_types=("client_credentials",),
            access=(ApiAccess(api=API, scopes=("read",)),),
            created_at=1,
        )
    )
    response = await harness.http.post(
        "/token", data={"grant_type": "client_credentials", "client_id": "public-cc"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": "public clients cannot use client_credentials",
    }


async def test_invalid_client_answers(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    attempts = [
        await harness.http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            auth=(client.client_id, "wrong-secret"),
        ),
        await harness.http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            auth=("no-such-client", secret or ""),
        ),
        await harness.http.post(
            "/token", data={"grant_type": "client_credentials", "client_id": "no-such-client"}
        ),
        await harness.http.post("/token", data={"grant_type": "client_credentials"}),
        await harness.http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic !!!notbase64"},
        ),
        await harness.http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Bearer abc"},
        ),
        await harness.http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        ),
    ]
    for response in attempts:
        assert response.status_code == 401
        # The same answer for an unknown client and a wrong secret: no oracle.
        assert response.json() == {
            "error": "invalid_client",
            "error_description": "client authentication failed",
        }
        assert response.headers["www-authenticate"].startswith("Basic realm=")
    # A known client sending no secret is told the method it registered (client ids are 128-bit
    # random, not guessable; an unknown id above gets the plain answer).
    bare = await harness.http.post(
        "/token", data={"grant_type": "client_credentials", "client_id": client.client_id}
    )
    assert bare.status_code == 401
    assert bare.json() == {
        "error": "invalid_client",
        "error_description": "client is registered for client_secret_basic; it sent none",
    }


class CountingSecret(ServerSecret):
    """The server's real keyed hash of client secrets, recording what it hashes."""

    def __init__(self, secret_key: bytes) -> None:
        super().__init__(secret_key)
        self.hashed: list[str] = []

    def hash_client_secret(self, client_secret: str) -> str:
        self.hashed.append(client_secret)
        return super().hash_client_secret(client_secret)


async def test_an_unknown_client_costs_the_same_secret_checks_as_a_wrong_secret(
    harness: Harness,
) -> None:
    """Structural, not timed: for an unknown client id the presented secret is hashed and compared
    (against a dummy hash) as often as for a known client with a wrong secret, and the answer is the
    same 401, so neither the answer nor the work done tells which client ids exist."""
    await harness.create_api(API)
    client, _ = await harness.create_client(scopes=("read",))
    server = harness.server
    counting = CountingSecret(harness.config.secret_key)
    assertions = server.client_auth._assertions
    server.client_auth = ClientAuthenticator(server.registry, counting, assertions, harness.clock)
    answers = []
    for client_id in (client.client_id, "no-such-client"):
        counting.hashed.clear()
        response = await harness.http.post(
            "/token", data={"grant_type": "client_credentials"}, auth=(client_id, "presented")
        )
        answers.append((response.status_code, response.json(), list(counting.hashed)))
    failed = {"error": "invalid_client", "error_description": "client authentication failed"}
    # One hash each, compared with the current secret hash and the previous one (a dummy when
    # there is none).
    assert answers == [(401, failed, ["presented"])] * 2


async def test_two_authentication_methods_refused(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    response = await harness.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": secret or "",
        },
        auth=(client.client_id, secret or ""),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    mismatch = await harness.http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": "someone-else"},
        auth=(client.client_id, secret or ""),
    )
    assert mismatch.status_code == 400
    assert mismatch.json()["error"] == "invalid_request"


async def test_deleted_client_and_rotated_secret(harness: Harness) -> None:
    h = harness
    await h.create_api(API)
    client, secret = await h.create_client(scopes=("read",))
    new = await admin.rotate_client_secret(
        h.server.storage, h.server.secret, client.client_id, grace=60, now=int(h.clock())
    )
    # During the grace period both secrets work; afterwards only the new one.
    assert (await h.token(client, secret)).status_code == 200
    assert (await h.token(client, new)).status_code == 200
    h.clock.advance(61)
    assert (await h.token(client, secret)).status_code == 401
    assert (await h.token(client, new)).status_code == 200
    assert await h.server.storage.delete_client(client.client_id)
    assert (await h.token(client, new)).status_code == 401


async def test_signing_algorithm_per_api(harness: Harness) -> None:
    await harness.create_api(API, signing_alg="ES256")
    client, secret = await harness.create_client(scopes=("read",))
    token = (await harness.token(client, secret)).json()["access_token"]
    assert header_of(token)["alg"] == "ES256"
