"""Attacks on a `fapi2` client (FAPI 2.0 Security Profile): each request breaks one rule and is
refused with the error that names it - a request sent directly to /authorize (§5.3.2.2 PAR), no
PKCE or the plain method (§5.3.2.2 S256), a token request without DPoP (§5.3.2.1 sender-
constrained tokens), client secrets and public clients (§5.3.2.1), also for clients registered
before the server-wide profile was switched on."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from authgate.jose import JWK
from authgate.server.config import SecuritySettings
from tests.support.dpop import DPoPClient
from tests.support.e2e import WEB_REDIRECT, Flow, pkce_pair, set_up_flow
from tests.support.fapi import assertion_form, create_fapi_client
from tests.support.log_scan import captured_server_logs  # noqa: F401 - autouse: the log scan
from tests.support.server_harness import ISSUER, FakeClock, expect_error, make_config, running


async def test_a_request_sent_directly_to_authorize_is_refused(flow: Flow) -> None:
    fapi = await create_fapi_client(flow)
    request = {k: v for k, v in fapi.request().items() if not k.startswith("_")}
    page = await flow.agent().authorize(**request)
    assert page.status_code == 400
    assert "push this authorization request" in page.text
    assert "location" not in page.headers


async def test_pushed_requests_without_s256_pkce_are_refused(flow: Flow) -> None:
    fapi = await create_fapi_client(flow)
    request = fapi.request()
    del request["code_challenge"], request["code_challenge_method"]
    expect_error(await fapi.push(request), 400, "invalid_request")
    verifier, _ = pkce_pair()
    plain = fapi.request(code_challenge=verifier, code_challenge_method="plain")
    response = await fapi.push(plain)
    expect_error(response, 400, "invalid_request")
    assert "S256" in response.json()["error_description"]


async def test_a_token_request_without_dpop_gets_no_bearer_token(flow: Flow) -> None:
    fapi = await create_fapi_client(flow)
    request = fapi.request()
    result = await fapi.code(request)
    form = {
        "grant_type": "authorization_code",
        "code": result["code"],
        "redirect_uri": WEB_REDIRECT,
        "code_verifier": request["_verifier"],
    }
    response = await fapi.token(proof=False, **form)
    expect_error(response, 400, "invalid_dpop_proof")
    assert "must send a DPoP proof" in response.json()["error_description"]


async def test_a_dpop_proof_signed_with_rs256_is_refused(flow: Flow) -> None:
    """§5.4.1: the server accepts RS256 proofs (`[dpop] algorithms`), but not from FAPI clients."""
    fapi = await create_fapi_client(flow)
    request = fapi.request()
    result = await fapi.code(request)
    fapi.dpop = DPoPClient("RSA", "RS256", clock=flow.harness.clock)
    form = {
        "grant_type": "authorization_code",
        "code": result["code"],
        "redirect_uri": WEB_REDIRECT,
        "code_verifier": request["_verifier"],
    }
    refused = await fapi.token(**form)
    expect_error(refused, 400, "invalid_dpop_proof")
    assert "algorithm is not accepted" in refused.json()["error_description"]
    fapi.dpop = DPoPClient("RSA", "PS256", clock=flow.harness.clock)
    accepted = await fapi.token(**form)
    assert accepted.status_code == 200, accepted.text


async def test_a_code_older_than_60_seconds_is_refused(flow: Flow) -> None:
    """§5.3.2.1 (clause 11): authorization codes live at most 60 s."""
    fapi = await create_fapi_client(flow)
    request = fapi.request()
    result = await fapi.code(request)
    flow.harness.clock.advance(61)
    response = await fapi.token(
        grant_type="authorization_code",
        code=result["code"],
        redirect_uri=WEB_REDIRECT,
        code_verifier=request["_verifier"],
    )
    expect_error(response, 400, "invalid_grant")


async def test_an_assertion_must_name_only_the_issuer_as_a_string(flow: Flow) -> None:
    fapi = await create_fapi_client(flow)
    form = {"grant_type": "refresh_token", "refresh_token": "x"}
    for aud in (ISSUER + "/token", [ISSUER], [ISSUER, ISSUER + "/token"]):
        response = await flow.http.post("/token", data=fapi.form(aud=aud, **form))
        expect_error(response, 401, "invalid_client")
    listed = await flow.http.post("/token", data=fapi.form(aud=[ISSUER], **form))
    assert "aud must be the issuer identifier as a string" in listed.json()["error_description"]


async def test_assertions_from_a_clock_ahead_up_to_10_seconds_pass_and_over_60_fail(
    flow: Flow,
) -> None:
    """§5.3.2.1 (clause 13): an iat 10 s ahead is accepted, one over 60 s ahead refused."""
    fapi = await create_fapi_client(flow)
    form = {"grant_type": "refresh_token", "refresh_token": "x"}
    now = flow.harness.clock()
    for ahead, status in ((10, 400), (61, 401)):  # 400: authenticated, the token is unknown
        sent = assertion_form(fapi.client, fapi.key, now + ahead, form)
        response = await flow.http.post("/token", data=sent)
        assert response.status_code == status, (ahead, response.text)


async def test_an_assertion_signed_with_rs256_is_refused(flow: Flow) -> None:
    """§5.4.1: an RSA key without `alg` serves RS256 and PS256; a FAPI client may use PS256 only."""
    key = JWK.generate("RSA", alg="PS256")
    public = {k: v for k, v in key.public().to_dict().items() if k != "alg"}
    fapi = await create_fapi_client(flow, jwks={"keys": [public]})
    now = flow.harness.clock()
    form = {"grant_type": "refresh_token", "refresh_token": "x"}
    rs256 = assertion_form(fapi.client, key, now, form, alg="RS256")
    expect_error(await flow.http.post("/token", data=rs256), 401, "invalid_client")
    ps256 = assertion_form(fapi.client, key, now, form, alg="PS256")
    # Authenticated: the next rule (DPoP) answers.
    expect_error(await flow.http.post("/token", data=ps256), 400, "invalid_dpop_proof")


@pytest.fixture
async def fapi2_server(database_url: str, clock: FakeClock) -> AsyncIterator[Flow]:
    """A server under `[security] profile = "fapi2"` whose clients were registered before."""
    config = make_config(database_url, security=SecuritySettings(profile="fapi2"))
    async with running(config, clock) as harness:
        flow = await set_up_flow(harness)
        try:
            yield flow
        finally:
            for agent in flow.agents:
                await agent.aclose()


async def test_under_the_server_profile_secrets_and_public_clients_are_refused(
    fapi2_server: Flow,
) -> None:
    flow = fapi2_server
    assert flow.web.profile is None  # registered without a profile of its own
    response = await flow.token(grant_type="client_credentials")
    expect_error(response, 401, "invalid_client")
    assert "private_key_jwt only (FAPI 2.0 §5.3.2.1)" in response.json()["error_description"]
    _, challenge = pkce_pair()
    public = await flow.post(
        "/par",
        flow.native,
        response_type="code",
        redirect_uri="http://127.0.0.1/callback",
        scope="read",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    expect_error(public, 401, "invalid_client")
    page = await flow.authorization_page()  # not pushed, and no PKCE
    assert page.status_code == 400
    assert "push this authorization request" in page.text


async def test_under_the_server_profile_a_conforming_client_works(fapi2_server: Flow) -> None:
    fapi = await create_fapi_client(fapi2_server, profile=None)
    assert fapi.client.profile is None
    request = fapi.request()
    result = await fapi.code(request)
    response = await fapi.token(
        grant_type="authorization_code",
        code=result["code"],
        redirect_uri=WEB_REDIRECT,
        code_verifier=request["_verifier"],
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    bearer = await fapi.token(proof=False, grant_type="refresh_token", refresh_token="x")
    expect_error(bearer, 400, "invalid_dpop_proof")
    assert dataclasses.replace(fapi.client, profile="fapi2").dpop_required


async def test_under_the_server_profile_the_metadata_offers_only_what_it_allows(
    fapi2_server: Flow,
) -> None:
    doc = (await fapi2_server.http.get("/.well-known/openid-configuration")).json()
    assert doc["require_pushed_authorization_requests"] is True
    assert doc["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert doc["introspection_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert doc["revocation_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert doc["id_token_signing_alg_values_supported"] == ["ES256"]  # of [keys] RS256, ES256
    assert "RS256" not in doc["token_endpoint_auth_signing_alg_values_supported"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
