"""Independent OAuth clients against a real `authgate serve` on loopback, on SQLite and PostgreSQL:
Authlib's OAuth2 client and requests-oauthlib complete the authorization code flow with PKCE,
refresh, and the device flow; ID tokens validate with joserfc; userinfo answers them. The sign-in
and consent pages are filled in by an HTTP client playing the user."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from oauthlib.oauth2 import DeviceClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session as OAuthlibSession

from tests.support.e2e import API, DEVICE_GRANT, WEB_REDIRECT, at_hash, joserfc_claims
from tests.support.e2e_served import Served


def discovery(served: Served) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(served.url + "/.well-known/openid-configuration").json()
    return doc


def check_id_token(served: Served, tokens: dict[str, Any], client_id: str, nonce: str) -> None:
    jwks = httpx.get(served.url + "/.well-known/jwks.json").json()
    joserfc_claims(
        tokens["id_token"],
        jwks,
        now=time.time(),
        typ="JWT",
        iss=served.url,
        aud=client_id,
        azp=client_id,
        nonce=nonce,
        at_hash=at_hash(tokens["access_token"]),
    )
    joserfc_claims(tokens["access_token"], jwks, now=time.time(), typ="at+jwt", aud=API)


def test_authlib_code_flow_with_pkce_refresh_and_userinfo(served: Served) -> None:
    meta = discovery(served)
    client = AuthlibSession(
        served.web.client_id,
        served.web_secret,
        scope="openid profile email offline_access read",
        redirect_uri=WEB_REDIRECT,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(12)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    callback = served.sign_in_and_approve(url)
    returned = parse_qs(urlsplit(callback).query)
    assert returned["state"] == [state]
    assert returned["iss"] == [served.url]
    tokens = client.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    check_id_token(served, tokens, served.web.client_id, nonce)

    info = client.get(meta["userinfo_endpoint"])
    assert info.status_code == 200
    assert info.json()["preferred_username"] == "alice"
    assert info.json()["email"] == "alice@example.test"

    refreshed = client.refresh_token(meta["token_endpoint"])
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["access_token"] != tokens["access_token"]
    assert client.get(meta["userinfo_endpoint"]).status_code == 200  # with the new token

    client.revoke_token(meta["revocation_endpoint"], refreshed["refresh_token"])
    with pytest.raises(Exception, match="invalid_grant"):
        client.refresh_token(meta["token_endpoint"], refresh_token=refreshed["refresh_token"])


def test_requests_oauthlib_code_flow_with_pkce_and_refresh(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the server is on loopback http
    meta = discovery(served)
    session = OAuthlibSession(
        served.web.client_id,
        redirect_uri=WEB_REDIRECT,
        scope=["openid", "offline_access", "read"],
        pkce="S256",
    )
    nonce = secrets.token_urlsafe(12)
    url, state = session.authorization_url(meta["authorization_endpoint"], nonce=nonce)
    callback = served.sign_in_and_approve(url)
    assert parse_qs(urlsplit(callback).query)["state"] == [state]
    basic = HTTPBasicAuth(served.web.client_id, served.web_secret)
    tokens = session.fetch_token(
        meta["token_endpoint"], authorization_response=callback, auth=basic
    )
    assert tokens["scope"] == ["openid", "offline_access", "read"]
    check_id_token(served, tokens, served.web.client_id, nonce)
    refreshed = session.refresh_token(meta["token_endpoint"], auth=basic)
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    profile = session.get(meta["userinfo_endpoint"])
    assert profile.json()["sub"] == joserfc_sub(served, tokens)


def joserfc_sub(served: Served, tokens: dict[str, Any]) -> str:
    jwks = httpx.get(served.url + "/.well-known/jwks.json").json()
    claims = joserfc_claims(tokens["id_token"], jwks, now=time.time(), typ="JWT")
    sub: str = claims["sub"]
    return sub


def start_device(served: Served, scope: str) -> dict[str, Any]:
    response = httpx.post(
        discovery(served)["device_authorization_endpoint"],
        data={"client_id": served.native.client_id, "scope": scope},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_authlib_device_flow(served: Served) -> None:
    meta = discovery(served)
    device = start_device(served, "openid offline_access read")
    client = AuthlibSession(served.native.client_id, token_endpoint_auth_method="none")
    with pytest.raises(Exception, match="authorization_pending"):
        client.fetch_token(
            meta["token_endpoint"], grant_type=DEVICE_GRANT, device_code=device["device_code"]
        )
    served.approve_device(device["user_code"])
    time.sleep(device["interval"])  # poll no faster than asked (RFC 8628 §3.5)
    tokens = client.fetch_token(
        meta["token_endpoint"], grant_type=DEVICE_GRANT, device_code=device["device_code"]
    )
    assert tokens["refresh_token"]
    jwks = httpx.get(served.url + "/.well-known/jwks.json").json()
    joserfc_claims(
        tokens["id_token"], jwks, now=time.time(), typ="JWT", aud=served.native.client_id
    )
    refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=tokens["refresh_token"])
    assert refreshed["access_token"] != tokens["access_token"]


def test_requests_oauthlib_device_flow(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    meta = discovery(served)
    device = start_device(served, "read")
    served.approve_device(device["user_code"])
    session = OAuthlibSession(client=DeviceClient(served.native.client_id))
    tokens = session.fetch_token(
        meta["token_endpoint"], device_code=device["device_code"], include_client_id=True
    )
    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == ["read"]
    response = session.get(meta["userinfo_endpoint"])
    assert response.status_code == 403  # no openid scope: RFC 6750 insufficient_scope
