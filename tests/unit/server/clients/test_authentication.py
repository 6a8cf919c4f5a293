"""private_key_jwt client authentication (RFC 7523): inline keys and a jwks_uri served on
loopback, with assertions made by PyJWT (an independent implementation)."""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt as pyjwt
import pytest

from authgate.config import ConfigError
from authgate.jose import JWK
from authgate.server.admin import AdminError
from authgate.server.config import FetchSettings, TokenPolicy
from tests.support.server_harness import (
    ISSUER,
    FakeClock,
    Harness,
    expect_error,
    make_config,
    running,
)

API = "https://api.example.test"
TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _key(kty: str = "EC", alg: str = "ES256") -> JWK:
    return JWK.generate(kty, alg=alg)


def assertion(key: JWK, client_id: str, now: float, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER + "/token",
        "exp": int(now) + 60,
        "iat": int(now),
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    signer = pyjwt.PyJWK(key.to_dict(private=True))
    return pyjwt.encode(claims, signer.key, algorithm=key.alg, headers={"kid": key.kid})


def form(client_id: str | None, token: str, **extra: str) -> dict[str, str]:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": TYPE,
        "client_assertion": token,
        **extra,
    }
    if client_id is not None:
        data["client_id"] = client_id
    return data


class _JwksServer:
    def __init__(self) -> None:
        self.document: bytes = b'{"keys":[]}'
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(outer.document)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
async def harness(database_url: str, clock: FakeClock) -> AsyncIterator[Harness]:
    """The server, allowed to fetch key sets from loopback (the development switch)."""
    config = make_config(database_url, fetch=FetchSettings(allow_loopback=True))
    async with running(config, clock) as h:
        yield h


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[_JwksServer]:
    server = _JwksServer()
    yield server
    server.httpd.shutdown()


@pytest.mark.parametrize(("kty", "alg"), [("EC", "ES256"), ("RSA", "PS256"), ("OKP", "EdDSA")])
async def test_inline_jwks(harness: Harness, kty: str, alg: str) -> None:
    await harness.create_api(API)
    key = _key(kty, alg)
    client, secret = await harness.create_client(
        scopes=("read",),
        auth_method="private_key_jwt",
        jwks={"keys": [key.public().to_dict()]},
    )
    assert secret is None
    token = assertion(key, client.client_id, harness.clock())
    response = await harness.http.post("/token", data=form(client.client_id, token))
    assert response.status_code == 200, response.text
    # client_id may be omitted (RFC 7523 §3): the assertion names the client.
    again = assertion(key, client.client_id, harness.clock())
    assert (await harness.http.post("/token", data=form(None, again))).status_code == 200


async def test_assertion_rules(harness: Harness) -> None:
    h = harness
    await h.create_api(API)
    key = _key()
    client, _ = await h.create_client(
        scopes=("read",), auth_method="private_key_jwt", jwks={"keys": [key.public().to_dict()]}
    )
    cid = client.client_id
    now = h.clock()
    for audience in (ISSUER, ISSUER + "/token", [ISSUER, "https://elsewhere.test"]):
        ok = await h.http.post("/token", data=form(cid, assertion(key, cid, now, aud=audience)))
        assert ok.status_code == 200, (audience, ok.text)
    stolen_key = _key()
    bad = {
        "wrong audience": assertion(key, cid, now, aud="https://other.test/token"),
        "expired": assertion(key, cid, now, exp=int(now) - 120),
        "exp too far": assertion(key, cid, now, exp=int(now) + 3600),
        "no exp": assertion(key, cid, now, exp=None),
        "no jti": assertion(key, cid, now, jti=None),
        "wrong issuer": assertion(key, cid, now, iss="someone-else"),
        "wrong subject": assertion(key, cid, now, sub="someone-else"),
        "foreign key": assertion(stolen_key, cid, now),
        "garbage": "not.a.jwt",
    }
    for label, token in bad.items():
        expect_error(await h.http.post("/token", data=form(cid, token)), 401, "invalid_client")
        assert label
    wrong_type = form(cid, assertion(key, cid, now), client_assertion_type="urn:other")
    expect_error(await h.http.post("/token", data=wrong_type), 401, "invalid_client")


async def test_issuer_only_audience(database_url: str, clock: FakeClock) -> None:
    """`tokens.client_assertion_audience = "issuer"` (draft-ietf-oauth-rfc7523bis §4): the token
    endpoint, the endpoint called, or the issuer next to another audience are refused, so an
    assertion made for a server that claims our endpoint as its own cannot be replayed here."""
    strict = TokenPolicy(client_assertion_audience="issuer")
    async with running(make_config(database_url, tokens=strict), clock) as h:
        await h.create_api(API)
        key = _key()
        client, _ = await h.create_client(
            scopes=("read",), auth_method="private_key_jwt", jwks={"keys": [key.public().to_dict()]}
        )
        cid = client.client_id
        now = h.clock()
        for audience in (ISSUER, [ISSUER]):
            ok = await h.http.post("/token", data=form(cid, assertion(key, cid, now, aud=audience)))
            assert ok.status_code == 200, (audience, ok.text)
        for audience in (ISSUER + "/token", [ISSUER, ISSUER + "/token"], ISSUER + "/introspect"):
            token = assertion(key, cid, now, aud=audience)
            expect_error(await h.http.post("/token", data=form(cid, token)), 401, "invalid_client")
        introspect = {"client_assertion_type": TYPE, "token": "x", "client_id": cid}
        introspect["client_assertion"] = assertion(key, cid, now, aud=ISSUER + "/introspect")
        expect_error(await h.http.post("/introspect", data=introspect), 401, "invalid_client")
    with pytest.raises(ConfigError, match="client_assertion_audience"):
        TokenPolicy(client_assertion_audience="endpoint")


async def test_jti_single_use(harness: Harness) -> None:
    await harness.create_api(API)
    key = _key()
    client, _ = await harness.create_client(
        scopes=("read",), auth_method="private_key_jwt", jwks={"keys": [key.public().to_dict()]}
    )
    token = assertion(key, client.client_id, harness.clock())
    assert (
        await harness.http.post("/token", data=form(client.client_id, token))
    ).status_code == 200
    replay = await harness.http.post("/token", data=form(client.client_id, token))
    expect_error(replay, 401, "invalid_client")
    assert "already used" in replay.json()["error_description"]


async def test_hmac_and_none_algorithms_refused(harness: Harness) -> None:
    await harness.create_api(API)
    key = _key()
    client, _ = await harness.create_client(
        scopes=("read",), auth_method="private_key_jwt", jwks={"keys": [key.public().to_dict()]}
    )
    cid = client.client_id
    claims = {
        "iss": cid,
        "sub": cid,
        "aud": ISSUER,
        "exp": int(harness.clock()) + 60,
        "jti": secrets.token_hex(8),
    }
    # HS256 keyed with the public key's JSON: the classic algorithm-confusion attack.
    confused = pyjwt.encode(
        claims, json.dumps(key.public().to_dict()).encode() + b"x" * 32, algorithm="HS256"
    )
    unsigned = pyjwt.encode(claims, None, algorithm="none")
    for token in (confused, unsigned):
        expect_error(
            await harness.http.post("/token", data=form(cid, token)), 401, "invalid_client"
        )


async def test_secret_client_cannot_use_assertion(harness: Harness) -> None:
    await harness.create_api(API)
    key = _key()
    client, secret = await harness.create_client(scopes=("read",))
    token = assertion(key, client.client_id, harness.clock())
    expect_error(
        await harness.http.post("/token", data=form(client.client_id, token)), 401, "invalid_client"
    )
    both = await harness.http.post(
        "/token", data=form(client.client_id, token), auth=(client.client_id, secret or "")
    )
    expect_error(both, 400, "invalid_request")


async def test_jwks_uri_fetched_cached_and_refetched(
    harness: Harness, jwks_server: _JwksServer
) -> None:
    await harness.create_api(API)
    first, second = _key(), _key()
    jwks_server.document = json.dumps({"keys": [first.public().to_dict()]}).encode()
    client, _ = await harness.create_client(
        scopes=("read",), auth_method="private_key_jwt", jwks_uri=jwks_server.url
    )
    cid = client.client_id
    hits = jwks_server.hits
    for _ in range(3):
        ok = await harness.http.post("/token", data=form(cid, assertion(first, cid, time.time())))
        assert ok.status_code == 200, ok.text
    assert jwks_server.hits == hits + 1  # cached after the first fetch
    # The client rotates its key: an unknown kid triggers one refetch (rate-limited).
    jwks_server.document = json.dumps(
        {"keys": [first.public().to_dict(), second.public().to_dict()]}
    ).encode()
    harness.clock.advance(31)
    rotated = await harness.http.post(
        "/token", data=form(cid, assertion(second, cid, harness.clock()))
    )
    assert rotated.status_code == 200, rotated.text
    assert jwks_server.hits == hits + 2


async def test_jwks_uri_over_size_limit(harness: Harness, jwks_server: _JwksServer) -> None:
    await harness.create_api(API)
    key = _key()
    jwks_server.document = b'{"keys":[' + b" " * (70 * 1024) + b"]}"
    client, _ = await harness.create_client(
        scopes=("read",), auth_method="private_key_jwt", jwks_uri=jwks_server.url + "?big"
    )
    token = assertion(key, client.client_id, harness.clock())
    expect_error(
        await harness.http.post("/token", data=form(client.client_id, token)), 401, "invalid_client"
    )


async def test_registration_rules(harness: Harness) -> None:
    key = _key()
    await harness.create_api(API)
    with pytest.raises(AdminError, match="public keys only"):
        await harness.create_client(
            auth_method="private_key_jwt", jwks={"keys": [key.to_dict(private=True)]}
        )
    with pytest.raises(AdminError, match="exactly one"):
        await harness.create_client(auth_method="private_key_jwt")
    with pytest.raises(AdminError, match="https"):
        await harness.create_client(
            auth_method="private_key_jwt", jwks_uri="http://keys.example.test/jwks"
        )
    with pytest.raises(AdminError, match="confidential"):
        await harness.create_client(auth_method="none", scopes=("read",))


async def test_method_mismatch_names_the_registered_method(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))  # client_secret_basic
    assert secret is not None
    cid = client.client_id
    sent_post = await harness.http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    expect_error(sent_post, 401, "invalid_client")
    assert sent_post.json()["error_description"] == (
        "client is registered for client_secret_basic; it sent client_secret_post"
    )
    assert secret not in sent_post.text
    sent_none = await harness.http.post(
        "/token", data={"grant_type": "client_credentials", "client_id": cid}
    )
    expect_error(sent_none, 401, "invalid_client")
    assert "registered for client_secret_basic; it sent none" in sent_none.text
    # A wrong secret with the wrong method, and an unknown id, get the one plain answer.
    wrong = await harness.http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": "x" * 43},
    )
    unknown = await harness.http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": "u" * 22, "client_secret": secret},
    )
    unknown_none = await harness.http.post(
        "/token", data={"grant_type": "client_credentials", "client_id": "u" * 22}
    )
    for response in (wrong, unknown, unknown_none):
        expect_error(response, 401, "invalid_client")
        assert response.json()["error_description"] == "client authentication failed"
