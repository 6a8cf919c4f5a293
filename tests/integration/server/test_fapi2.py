"""The `fapi2` profile (FAPI 2.0 Security Profile) end to end, in process, on SQLite and
PostgreSQL: the conforming flow (PAR, PKCE S256, private_key_jwt, DPoP-bound tokens, `iss`, 303,
ES256 ID tokens), refresh with rotation and its retry window, and the clients that cannot be
registered under the profile, each refused with the rule it breaks."""

from __future__ import annotations

import pytest
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import KeySet

from authgate.server.admin import AdminError
from tests.support.e2e import WEB_REDIRECT, Flow
from tests.support.fapi import FAPI_API, create_fapi_client
from tests.support.server_harness import ISSUER
from tests.support.tokens import claims_of


async def test_the_conforming_flow(flow: Flow) -> None:
    fapi = await create_fapi_client(flow)
    request = fapi.request()
    result = await fapi.code(request)  # only a 303 ends `code_for` (§5.3.2.2: 303, never 307)
    assert result["iss"] == ISSUER  # §5.3.2.2, RFC 9207
    response = await fapi.token(
        grant_type="authorization_code",
        code=result["code"],
        redirect_uri=WEB_REDIRECT,
        code_verifier=request["_verifier"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    access = claims_of(body["access_token"])
    assert (access["aud"], access["cnf"]) == (FAPI_API, {"jkt": fapi.dpop.jkt})
    keys = KeySet.import_key_set((await flow.http.get("/.well-known/jwks.json")).json())
    assert joserfc_jwt.decode(body["access_token"], keys, algorithms=["ES256"]).header["typ"]
    id_token = joserfc_jwt.decode(body["id_token"], keys, algorithms=["ES256"])
    assert id_token.claims["aud"] == fapi.client.client_id


async def test_refresh_rotates_and_a_retry_within_the_window_succeeds(flow: Flow) -> None:
    fapi = await create_fapi_client(flow)
    request = fapi.request(scope="openid offline_access accounts")
    result = await fapi.code(request)
    first = await fapi.token(
        grant_type="authorization_code",
        code=result["code"],
        redirect_uri=WEB_REDIRECT,
        code_verifier=request["_verifier"],
    )
    refresh = first.json()["refresh_token"]
    rotated = await fapi.token(grant_type="refresh_token", refresh_token=refresh)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] != refresh
    # §5.3.2.1: the client that lost the response retries with the previous refresh token.
    retry = await fapi.token(grant_type="refresh_token", refresh_token=refresh)
    assert retry.status_code == 200, retry.text
    assert retry.json()["refresh_token"] == rotated.json()["refresh_token"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"auth_method": "client_secret_basic", "jwks": None}, "must use private_key_jwt"),
        ({"auth_method": "client_secret_post", "jwks": None}, "must use private_key_jwt"),
        ({"auth_method": "none", "jwks": None}, "must use private_key_jwt"),
        ({"id_token_alg": "RS256"}, "ID tokens must be signed with PS256, ES256, EdDSA"),
        (
            {"scopes": ("read",)},
            "API 'https://api.example.test' signs its access tokens with RS256",
        ),
        ({"profile": "fapi1"}, "--profile must be one of fapi2"),
    ],
)
async def test_clients_breaking_a_rule_are_refused(
    flow: Flow, changes: dict[str, object], message: str
) -> None:
    before = await flow.harness.server.storage.list_clients()
    with pytest.raises(AdminError, match=message):
        await create_fapi_client(flow, **changes)
    assert await flow.harness.server.storage.list_clients() == before


async def test_an_opaque_api_takes_no_signing_rule(flow: Flow) -> None:
    opaque = "https://opaque.example.test"
    await flow.harness.create_api(opaque, scopes=("ledger",), token_format="opaque")
    fapi = await create_fapi_client(flow, scopes=("ledger",))
    assert fapi.client.profile == "fapi2"  # opaque tokens are not JWTs: §5.4.1 does not apply
