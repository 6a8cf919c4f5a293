"""Dynamic client registration (RFC 7591) with independent clients against a real `authgate
serve` on loopback, on SQLite and PostgreSQL: `requests` registers (as any RFC 7591 client
would: one JSON POST to the advertised endpoint), then Authlib's OAuth2 client uses what was
issued, for client_credentials and for the authorization code flow with PKCE; the registration
is then read and deleted with the registration access token (RFC 7592)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession

from tests.support.e2e import API, NATIVE_REDIRECT, joserfc_claims
from tests.support.e2e_served import Served

REGISTRATION = '[registration]\nmode = "open"\nallowed_scopes = ["read"]\n'


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("serve-registration")
    url = f"sqlite:///{workdir / 'authgate.db'}" if request.param == "sqlite" else None
    server = Served.start(url, workdir, extra_config=REGISTRATION)
    try:
        yield server
    finally:
        server.stop()


def _metadata(served: Served) -> dict[str, Any]:
    doc: dict[str, Any] = requests.get(
        served.url + "/.well-known/oauth-authorization-server", timeout=10
    ).json()
    return doc


def _register(served: Served, metadata: dict[str, Any]) -> dict[str, Any]:
    endpoint = _metadata(served)["registration_endpoint"]
    response = requests.post(endpoint, json=metadata, timeout=10)
    assert response.status_code == 201, response.text
    info: dict[str, Any] = response.json()
    return info


def test_registered_client_uses_client_credentials_with_authlib(served: Served) -> None:
    info = _register(
        served,
        {"client_name": "machine", "grant_types": ["client_credentials"], "scope": "read"},
    )
    meta = _metadata(served)
    client = AuthlibSession(info["client_id"], info["client_secret"], scope="read")
    token = client.fetch_token(
        meta["token_endpoint"], grant_type="client_credentials", resource=API
    )
    jwks = requests.get(meta["jwks_uri"], timeout=10).json()
    claims = joserfc_claims(token["access_token"], jwks, now=time.time(), typ="at+jwt", aud=API)
    assert claims["client_id"] == info["client_id"]
    assert claims["scope"] == "read"
    # RFC 7592: read, then delete; the deleted client gets no more tokens.
    bearer = {"Authorization": f"Bearer {info['registration_access_token']}"}
    read = requests.get(info["registration_client_uri"], headers=bearer, timeout=10)
    assert read.status_code == 200
    assert read.json()["client_id"] == info["client_id"]
    deleted = requests.delete(info["registration_client_uri"], headers=bearer, timeout=10)
    assert deleted.status_code == 204
    with pytest.raises(Exception, match="invalid_client"):
        client.fetch_token(meta["token_endpoint"], grant_type="client_credentials", resource=API)


def test_registered_native_app_completes_the_code_flow_with_authlib(served: Served) -> None:
    info = _register(
        served,
        {
            "client_name": "native app",
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": [NATIVE_REDIRECT],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "scope": "openid read",
        },
    )
    assert "client_secret" not in info
    meta = _metadata(served)
    client = AuthlibSession(
        info["client_id"],
        scope="openid read",
        redirect_uri=NATIVE_REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, resource=API
    )
    callback = served.sign_in_and_approve(url)
    assert parse_qs(urlsplit(callback).query)["state"] == [state]
    tokens = client.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    jwks = requests.get(meta["jwks_uri"], timeout=10).json()
    claims = joserfc_claims(tokens["access_token"], jwks, now=time.time(), typ="at+jwt", aud=API)
    assert claims["client_id"] == info["client_id"]
    assert "read" in claims["scope"].split(" ")
