"""Pushed authorization requests (RFC 9126) end to end, in process, on SQLite and PostgreSQL: push,
then authorize with only `client_id` and `request_uri`, sign in, consent, code, tokens; errors as
JSON at /par (§2.3); PAR required globally and per client (§5); the metadata."""

from __future__ import annotations

from dataclasses import replace

from authgate.server.config import PushedRequestSettings
from tests.support.e2e import API, WEB_REDIRECT, Flow, pkce_pair, redirect_params, set_up_flow
from tests.support.server_harness import ISSUER, FakeClock, expect_error, make_config, running

URN = "urn:ietf:params:oauth:request_uri:"


async def push(flow: Flow, **params: str) -> dict[str, object]:
    response = await flow.post("/par", **flow.web_request(**params))
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, object] = response.json()
    return body


async def test_pushed_request_runs_the_code_flow(flow: Flow) -> None:
    verifier, challenge = pkce_pair()
    body = await push(
        flow,
        scope="openid read",
        state="st",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert set(body) == {"request_uri", "expires_in"}
    request_uri = str(body["request_uri"])
    assert request_uri.startswith(URN)
    assert len(request_uri) >= len(URN) + 43  # 256 random bits
    assert body["expires_in"] == 60
    result = await flow.agent().code_for(client_id=flow.web.client_id, request_uri=request_uri)
    assert result["state"] == "st"
    assert result["iss"] == ISSUER
    response = await flow.token(
        grant_type="authorization_code",
        code=result["code"],
        redirect_uri=WEB_REDIRECT,
        code_verifier=verifier,
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "openid read"


async def test_a_public_client_pushes_naming_itself(flow: Flow) -> None:
    _, challenge = pkce_pair()
    response = await flow.post(
        "/par",
        flow.native,
        response_type="code",
        redirect_uri="http://127.0.0.1/callback",
        scope="read",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert response.status_code == 201, response.text


async def test_par_errors_are_json(flow: Flow) -> None:
    """§2.3: the authorization endpoint's errors, answered directly."""
    cases = [
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"resource": "https://other.example.test"}, "invalid_target"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": URN + "x"}, "invalid_request"),
        ({"client_id": "someone-else"}, "invalid_request"),
    ]
    for params, error in cases:
        response = await flow.post("/par", **flow.web_request(**params))
        expect_error(response, 400, error)
    # Client authentication is the token endpoint's: a wrong secret is invalid_client (401).
    response = await flow.post("/par", flow.web, "wrong", **flow.web_request())
    expect_error(response, 401, "invalid_client")
    # A public client without PKCE: the /authorize rule (RFC 9700 §2.1.1).
    response = await flow.post(
        "/par", flow.native, response_type="code", redirect_uri="http://127.0.0.1/callback"
    )
    expect_error(response, 400, "invalid_request")


async def test_request_uri_expires(flow: Flow) -> None:
    body = await push(flow)
    flow.harness.clock.advance(60)
    page = await flow.agent().authorize(
        client_id=flow.web.client_id, request_uri=str(body["request_uri"])
    )
    assert page.status_code == 400
    assert "invalid_request_uri" in page.text


async def test_par_required_by_the_server(database_url: str, clock: FakeClock) -> None:
    config = replace(
        make_config(database_url), par=PushedRequestSettings(lifetime=90, required=True)
    )
    async with running(config, clock) as harness:
        flow = await set_up_flow(harness)
        metadata = (await flow.http.get("/.well-known/oauth-authorization-server")).json()
        assert metadata["require_pushed_authorization_requests"] is True
        direct = await flow.authorization_page()
        assert direct.status_code == 400
        assert "pushed authorization endpoint" in direct.text
        body = await push(flow)
        assert body["expires_in"] == 90
        result = await flow.agent().code_for(
            client_id=flow.web.client_id, request_uri=str(body["request_uri"])
        )
        assert result["code"]


async def test_par_required_for_one_client(flow: Flow) -> None:
    strict, secret = await flow.harness.create_client(
        name="strict",
        grant_types=("authorization_code",),
        scopes=("read",),
        redirect_uris=(WEB_REDIRECT,),
        require_pushed_requests=True,
    )
    direct = await flow.agent().authorize(
        response_type="code", client_id=strict.client_id, redirect_uri=WEB_REDIRECT, state="s"
    )
    assert direct.status_code == 400
    assert "pushed authorization endpoint" in direct.text
    # Another client is not affected.
    assert (await flow.authorization_page()).status_code == 200
    response = await flow.post(
        "/par",
        strict,
        secret,
        response_type="code",
        redirect_uri=WEB_REDIRECT,
        state="s",
        scope="read",
    )
    assert response.status_code == 201, response.text
    pushed = await flow.agent().code_for(
        client_id=strict.client_id, request_uri=response.json()["request_uri"]
    )
    assert pushed["code"]


async def test_metadata_names_the_endpoint(flow: Flow) -> None:
    metadata = (await flow.http.get("/.well-known/openid-configuration")).json()
    assert metadata["pushed_authorization_request_endpoint"] == ISSUER + "/par"
    assert metadata["require_pushed_authorization_requests"] is False


async def test_resource_values_are_kept(flow: Flow) -> None:
    body = await push(flow, scope="read", resource=API)
    result = await flow.agent().code_for(
        client_id=flow.web.client_id, request_uri=str(body["request_uri"])
    )
    response = await flow.token(
        grant_type="authorization_code", code=result["code"], redirect_uri=WEB_REDIRECT
    )
    assert response.status_code == 200, response.text


async def test_login_and_consent_carry_the_pushed_request(flow: Flow) -> None:
    """The request_uri is used once, on arrival; the sign-in and consent pages carry the pushed
    parameters in their ticket, so the flow completes although the request_uri is spent."""
    body = await push(flow, state="carried")
    agent = flow.agent()
    page = await agent.authorize(client_id=flow.web.client_id, request_uri=str(body["request_uri"]))
    assert page.status_code == 200
    consent = await agent.sign_in(page, "alice", "correct horse battery staple")
    redirect = await agent.approve(consent)
    assert redirect_params(redirect)["state"] == "carried"
