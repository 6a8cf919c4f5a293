"""An issuer with a path (`https://auth.example.test/tenant1`): the metadata answers at exactly the
well-known URLs MCP clients try (RFC 8414 §3.1, OpenID Connect Discovery 1.0 §4, MCP authorization
2025-11-25), and every endpoint it names answers below the issuer's path."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from authgate.config import ConfigError
from tests.support.e2e import (
    API,
    FORM,
    PASSWORD,
    USERNAME,
    WEB_REDIRECT,
    Flow,
    only_form,
    pkce_pair,
    set_up_flow,
)
from tests.support.server_harness import ISSUER, FakeClock, make_config, running

TENANT = ISSUER + "/tenant1"


@pytest.fixture
async def tenant(database_url: str, clock: FakeClock) -> AsyncIterator[Flow]:
    async with running(make_config(database_url, issuer=TENANT), clock) as harness:
        yield await set_up_flow(harness)


async def test_metadata_answers_at_the_three_mcp_discovery_urls(tenant: Flow) -> None:
    for path in (
        "/.well-known/oauth-authorization-server/tenant1",
        "/.well-known/openid-configuration/tenant1",
        "/tenant1/.well-known/openid-configuration",
    ):
        response = await tenant.http.get(ISSUER + path)
        assert response.status_code == 200, path
        doc = response.json()
        assert doc["issuer"] == TENANT  # RFC 8414 §3.3: the issuer the URL was derived from
        assert doc["token_endpoint"] == TENANT + "/token"
        assert doc["jwks_uri"] == TENANT + "/.well-known/jwks.json"


async def test_no_other_well_known_url_answers(tenant: Flow) -> None:
    for path in (
        "/.well-known/oauth-authorization-server",  # derives the issuer https://auth.example.test
        "/.well-known/openid-configuration",
        "/tenant1/.well-known/oauth-authorization-server",  # not a form RFC 8414 defines
        "/.well-known/oauth-authorization-server/tenant2",
        "/.well-known/openid-configuration/tenant1/x",
        "/tenant2/.well-known/openid-configuration",
        "/token",  # the endpoints live below the issuer's path only
        "/.well-known/jwks.json",
    ):
        response = await tenant.http.request("GET" if "well-known" in path else "POST", path)
        assert response.status_code == 404, path


async def test_every_advertised_endpoint_answers_below_the_path(tenant: Flow) -> None:
    doc = (await tenant.http.get(ISSUER + "/tenant1/.well-known/openid-configuration")).json()
    jwks = await tenant.http.get(doc["jwks_uri"])
    assert jwks.status_code == 200
    assert jwks.json()["keys"]
    for name in ("authorization_endpoint", "userinfo_endpoint", "end_session_endpoint"):
        response = await tenant.http.get(doc[name])
        assert response.status_code in (200, 400, 401), (name, response.status_code)
    device = await tenant.http.post(
        doc["device_authorization_endpoint"],
        data={"client_id": tenant.native.client_id, "scope": "read"},
    )
    assert device.status_code == 200, device.text
    page = await tenant.http.get(device.json()["verification_uri_complete"])
    assert page.status_code == 200
    assert only_form(page).action == TENANT + "/login"  # sign in first, below the path too
    for name in (
        "token_endpoint",
        "device_authorization_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ):
        response = await tenant.http.post(doc[name], data={})
        assert response.status_code in (400, 401), (name, response.status_code)
        assert "error" in response.json()


async def test_a_code_flow_below_the_path(tenant: Flow) -> None:
    """Sign-in, consent, code and token: the pages' forms post below the issuer's path too."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    params = {
        "response_type": "code",
        "client_id": tenant.web.client_id,
        "redirect_uri": WEB_REDIRECT,
        "scope": "openid read",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": API,
    }
    transport = tenant.harness.http._transport
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as browser:
        response = await browser.get(TENANT + "/authorize", params=params)
        for _ in range(3):
            if response.status_code == 303:
                break
            assert response.status_code == 200, response.text
            form = only_form(response)
            assert form.action.startswith(TENANT + "/"), form.action
            assert TENANT + "/static/" in response.text  # the stylesheet's URL
            fields = dict(form.fields)
            if form.action.endswith("/login"):
                fields.update(username=USERNAME, password=PASSWORD)
            else:
                fields.update(approve="approve")
            response = await browser.post(form.action, data=fields, headers=FORM)
        style = await browser.get(TENANT + "/static/authgate.css")
        assert style.status_code == 200
    callback = parse_qs(urlsplit(response.headers["location"]).query)
    assert callback["iss"] == [TENANT]  # RFC 9207
    assert callback["state"] == [state]
    token = await tenant.http.post(
        TENANT + "/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"][0],
            "redirect_uri": WEB_REDIRECT,
            "code_verifier": verifier,
        },
        auth=(tenant.web.client_id, tenant.web_secret),
    )
    assert token.status_code == 200, token.text
    access_token = token.json()["access_token"]
    info = await tenant.http.get(
        TENANT + "/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert info.status_code in (200, 401, 403)  # answered at the path; scope rules are elsewhere
    introspected = await tenant.http.post(
        TENANT + "/introspect",
        data={"token": access_token},
        auth=(tenant.web.client_id, tenant.web_secret),
    )
    assert introspected.json()["active"] is True
    assert introspected.json()["iss"] == TENANT
    assert introspected.json()["aud"] == API


async def test_a_path_less_issuer_answers_only_the_plain_urls(flow: Flow) -> None:
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        response = await flow.http.get(path)
        assert response.status_code == 200, path
        assert response.json()["issuer"] == ISSUER
    for path in (
        "/.well-known/oauth-authorization-server/tenant1",
        "/.well-known/openid-configuration/tenant1",
    ):
        assert (await flow.http.get(path)).status_code == 404, path


@pytest.mark.parametrize(
    "path", ["/a%2Fb", "/{tenant}", "/a//b", "/a/../b", "/./a", "/a b", "/t\u00e9"]
)
def test_an_issuer_path_that_cannot_be_routed_as_written_is_refused(path: str) -> None:
    with pytest.raises(ConfigError, match="issuer"):
        make_config("sqlite://", issuer=ISSUER + path)
