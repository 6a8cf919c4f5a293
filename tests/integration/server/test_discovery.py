"""Discovery metadata lists every user-facing endpoint and capability, and only what is true
(RFC 8414 §2; OpenID Connect Discovery 1.0 §3; RFC 8628 §4; RFC 9207 §3; RP-Initiated Logout
§2.1)."""

from __future__ import annotations

from tests.support.e2e import Flow
from tests.support.server_harness import ISSUER


async def test_metadata_lists_the_user_flows(flow: Flow) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        doc = (await flow.http.get(path)).json()
        assert doc["authorization_endpoint"] == ISSUER + "/authorize"
        assert doc["device_authorization_endpoint"] == ISSUER + "/device_authorization"
        assert doc["userinfo_endpoint"] == ISSUER + "/userinfo"
        assert doc["end_session_endpoint"] == ISSUER + "/logout"
        assert doc["response_types_supported"] == ["code"]  # no implicit, no hybrid
        assert doc["response_modes_supported"] == ["query", "form_post"]
        assert doc["code_challenge_methods_supported"] == ["S256"]
        assert doc["grant_types_supported"] == [
            "client_credentials",
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ]
        assert "password" not in doc["grant_types_supported"]
        assert "implicit" not in doc["grant_types_supported"]
        assert doc["authorization_response_iss_parameter_supported"] is True
        assert doc["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]  # [keys]
        assert doc["subject_types_supported"] == ["public"]
        assert set(doc["scopes_supported"]) == {"openid", "profile", "email", "offline_access"}
        for claim in ("sub", "auth_time", "nonce", "at_hash", "azp", "email", "name"):
            assert claim in doc["claims_supported"]
        assert "none" in doc["token_endpoint_auth_methods_supported"]
        assert "none" not in doc["introspection_endpoint_auth_methods_supported"]
        assert doc["request_parameter_supported"] is False
        assert doc["request_uri_parameter_supported"] is False


async def test_every_advertised_endpoint_answers(flow: Flow) -> None:
    doc = (await flow.http.get("/.well-known/openid-configuration")).json()
    for name in ("authorization_endpoint", "userinfo_endpoint", "end_session_endpoint"):
        response = await flow.http.get(doc[name].removeprefix(ISSUER))
        assert response.status_code in (200, 400, 401), (name, response.status_code)
    for name in (
        "token_endpoint",
        "device_authorization_endpoint",
        "revocation_endpoint",
        "pushed_authorization_request_endpoint",
    ):
        response = await flow.http.post(doc[name].removeprefix(ISSUER), data={})
        assert response.status_code in (400, 401), (name, response.status_code)
        assert "error" in response.json()


async def test_cors_only_where_browser_apps_call(flow: Flow) -> None:
    origin = {"Origin": "https://spa.example.test"}
    preflight = await flow.http.options(
        "/token",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in preflight.headers
    token = await flow.http.post("/token", data={}, headers=origin)
    assert token.headers["access-control-allow-origin"] == "*"
    pushed = await flow.http.post("/par", data={}, headers=origin)
    assert pushed.status_code == 400  # not a form
    assert pushed.headers["access-control-allow-origin"] == "*"
    userinfo = await flow.http.get("/userinfo", headers=origin)
    assert userinfo.status_code == 401
    assert "WWW-Authenticate" in userinfo.headers["access-control-expose-headers"]
    # The pages that rely on the session cookie are not readable from other origins.
    for path in ("/authorize", "/device", "/logout"):
        page = await flow.http.get(path, headers=origin)
        assert "access-control-allow-origin" not in page.headers
    assert "access-control-allow-origin" not in (await flow.http.get("/token")).headers


async def test_wrong_method_names_the_allowed_ones(flow: Flow) -> None:
    response = await flow.http.put("/authorize")
    assert response.status_code == 405
    # No HEAD: it would run the flow and could issue a code (see test_head_never_mints_a_code).
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}
    assert (await flow.http.delete("/token")).headers["allow"] == "POST"
