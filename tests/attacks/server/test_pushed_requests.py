"""Attacks on pushed authorization requests (RFC 9126), in process, on SQLite and PostgreSQL: a
`request_uri` replayed, used by another client, used after expiry, guessed, and authorization
parameters smuggled into the front channel beside it (§4: they have no effect)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.e2e import API, PASSWORD, USERNAME, WEB_REDIRECT, Flow, redirect_params
from tests.support.log_scan import captured_server_logs  # noqa: F401 - autouse: the log scan
from tests.support.tokens import claims_of

URN = "urn:ietf:params:oauth:request_uri:"


async def _push(flow: Flow, **params: str) -> str:
    response = await flow.post("/par", **flow.web_request(**params))
    assert response.status_code == 201, response.text
    return str(response.json()["request_uri"])


def _refused(page: httpx.Response, error: str) -> None:
    """An error page: never a redirect, since the redirect URI is what could not be trusted."""
    assert page.status_code == 400, page.text
    assert "location" not in page.headers
    assert error in page.text


async def test_request_uri_is_single_use(flow: Flow) -> None:
    request_uri = await _push(flow)
    agent = flow.agent()
    first = await agent.authorize(client_id=flow.web.client_id, request_uri=request_uri)
    assert first.status_code == 200  # the sign-in page
    again = await flow.agent().authorize(client_id=flow.web.client_id, request_uri=request_uri)
    _refused(again, "invalid_request_uri")


async def test_request_uri_of_another_client_is_refused_and_not_spent(flow: Flow) -> None:
    other, _ = await flow.harness.create_client(
        name="other",
        grant_types=("authorization_code",),
        scopes=("read",),
        redirect_uris=("https://other.example.test/cb",),
    )
    request_uri = await _push(flow)
    stolen = await flow.agent().authorize(client_id=other.client_id, request_uri=request_uri)
    _refused(stolen, "invalid_request_uri")
    # The pushing client can still use it: the refusal did not burn it.
    own = await flow.agent().code_for(client_id=flow.web.client_id, request_uri=request_uri)
    assert own["code"]


async def test_expired_request_uri_is_refused(flow: Flow) -> None:
    request_uri = await _push(flow)
    flow.harness.clock.advance(60)  # expires_in
    page = await flow.agent().authorize(client_id=flow.web.client_id, request_uri=request_uri)
    _refused(page, "invalid_request_uri")


@pytest.mark.parametrize(
    "request_uri",
    [
        URN + "A" * 43,  # guessed
        "A" * 43,  # without the URN
        URN,
        URN + "x" * 5000,
        "https://evil.example/request.jwt",  # a JAR request_uri by reference: not supported
    ],
)
async def test_unknown_request_uris_are_refused(flow: Flow, request_uri: str) -> None:
    page = await flow.agent().authorize(client_id=flow.web.client_id, request_uri=request_uri)
    _refused(page, "invalid_request_uri")


@pytest.mark.parametrize(
    "smuggled",
    [
        {"redirect_uri": "https://evil.example/cb"},
        {"scope": "openid read write"},
        {"state": "attacker"},
        {"response_mode": "form_post"},
        {"response_type": "token"},
        {"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
        {"prompt": "none"},
        {"resource": "https://evil.example/api"},
    ],
    ids=lambda p: next(iter(p)),
)
async def test_front_channel_parameters_beside_request_uri_have_no_effect(
    flow: Flow, smuggled: dict[str, str]
) -> None:
    """RFC 9126 §4 with RFC 9101 §5, §6.3: only the pushed parameters are used; anything put into
    the browser's URL beside request_uri is ignored (clients may repeat parameters there)."""
    request_uri = await _push(flow, scope="read", state="pushed")
    agent = flow.agent()
    page = await agent.authorize(client_id=flow.web.client_id, request_uri=request_uri, **smuggled)
    assert page.status_code == 200  # the sign-in page, whatever `prompt` or `response_type` say
    consent = await agent.sign_in(page, USERNAME, PASSWORD)
    redirect = await agent.approve(consent)
    assert redirect.status_code == 303  # a redirect, not a form_post page
    assert redirect.headers["location"].startswith(WEB_REDIRECT + "?")
    params = redirect_params(redirect)
    assert params["state"] == "pushed"
    tokens = await flow.token(
        grant_type="authorization_code", code=params["code"], redirect_uri=WEB_REDIRECT
    )  # no code_verifier: the smuggled challenge was not bound to the code
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["scope"] == "read"
    assert claims_of(tokens.json()["access_token"])["aud"] == API


async def test_a_request_object_beside_request_uri_is_refused(flow: Flow) -> None:
    """RFC 9101 §5: `request` and `request_uri` together are an error; the refusal does not
    spend the request_uri."""
    request_uri = await _push(flow, state="pushed")
    page = await flow.agent().authorize(
        client_id=flow.web.client_id, request_uri=request_uri, request="eyJhbGciOiJub25lIn0.e30."
    )
    _refused(page, "invalid_request")
    result = await flow.agent().code_for(client_id=flow.web.client_id, request_uri=request_uri)
    assert result["state"] == "pushed"


async def test_unrecognised_parameters_beside_request_uri_are_ignored(flow: Flow) -> None:
    request_uri = await _push(flow, state="pushed")
    result = await flow.agent().code_for(
        client_id=flow.web.client_id, request_uri=request_uri, utm_source="mail"
    )
    assert result["state"] == "pushed"


async def test_request_uri_repeated_is_refused(flow: Flow) -> None:
    first = await _push(flow)
    second = await _push(flow)
    page = await flow.agent().http.get(
        "/authorize",
        params=[("client_id", flow.web.client_id), ("request_uri", first), ("request_uri", second)],
    )
    _refused(page, "invalid_request")


async def test_request_uri_without_client_id_is_refused(flow: Flow) -> None:
    page = await flow.agent().authorize(request_uri=await _push(flow))
    _refused(page, "invalid_request")


async def test_pushed_code_is_bound_to_the_pushed_redirect_uri(flow: Flow) -> None:
    """The code issued through a pushed request is redeemed only with the pushed redirect URI."""
    request_uri = await _push(flow)
    result = await flow.agent().code_for(client_id=flow.web.client_id, request_uri=request_uri)
    wrong = await flow.token(
        grant_type="authorization_code",
        code=result["code"],
        redirect_uri="https://app.example.test/other",
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
