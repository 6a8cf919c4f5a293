"""Per-client ID token signing (OpenID Connect Registration §2 `id_token_signed_response_alg`),
in process, on SQLite and PostgreSQL: a client registered for ES256 gets ES256 ID tokens that
joserfc verifies under ES256 only, with `at_hash` of SHA-256; RS256 stays the default; an alg the
key schedule does not sign with is refused when the client is created."""

from __future__ import annotations

import base64
import hashlib

import pytest
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import KeySet

from authgate.server.admin import AdminError
from tests.support.e2e import WEB_REDIRECT, Flow


async def _id_token_of(flow: Flow, id_token_alg: str) -> tuple[str, str]:
    client, secret = await flow.harness.create_client(
        name=f"{id_token_alg} app",
        grant_types=("authorization_code",),
        scopes=("read",),
        redirect_uris=(WEB_REDIRECT,),
        id_token_alg=id_token_alg,
        signing_algorithms=flow.harness.config.keys.algorithms,
    )
    assert secret is not None
    result = await flow.agent().code_for(**flow.web_request(client_id=client.client_id))
    response = await flow.token(
        client,
        secret,
        grant_type="authorization_code",
        code=result["code"],
        redirect_uri=WEB_REDIRECT,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["id_token"], body["access_token"]


async def test_an_es256_client_gets_es256_id_tokens(flow: Flow) -> None:
    id_token, access_token = await _id_token_of(flow, "ES256")
    keys = KeySet.import_key_set((await flow.http.get("/.well-known/jwks.json")).json())
    decoded = joserfc_jwt.decode(id_token, keys, algorithms=["ES256"])
    assert decoded.header["alg"] == "ES256"
    digest = hashlib.sha256(access_token.encode("ascii")).digest()[:16]
    assert decoded.claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    default, _ = await _id_token_of(flow, "RS256")
    assert joserfc_jwt.decode(default, keys, algorithms=["RS256"]).header["alg"] == "RS256"


async def test_an_alg_the_server_does_not_sign_with_is_refused(flow: Flow) -> None:
    assert "PS256" not in flow.harness.config.keys.algorithms
    with pytest.raises(AdminError, match=r"--id-token-alg PS256: the server signs with no PS256"):
        await _id_token_of(flow, "PS256")
    with pytest.raises(AdminError, match=r"--id-token-alg must be one of"):
        await _id_token_of(flow, "HS256")


async def test_metadata_lists_the_algorithms_of_the_key_schedule(flow: Flow) -> None:
    doc = (await flow.http.get("/.well-known/openid-configuration")).json()
    assert doc["id_token_signing_alg_values_supported"] == list(flow.harness.config.keys.algorithms)
