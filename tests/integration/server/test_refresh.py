"""Refresh tokens end to end, in process, on SQLite and PostgreSQL (RFC 6749 §6; RFC 9700 §4.14.2;
RFC 7009; RFC 7662): rotation on every use, reuse revokes the family and the grant's access tokens,
the grace window answers a retry with the same pair, narrowing, lifetimes, binding to the client,
introspection and revocation of refresh tokens, client settings (PKCE, always a refresh token)."""

from __future__ import annotations

from typing import Any

from tests.support.e2e import API, WEB_REDIRECT, Flow, pkce_pair, redirect_params
from tests.support.server_harness import ISSUER
from tests.support.tokens import claims_of


async def refresh(flow: Flow, token: str, **form: str) -> Any:
    return await flow.token(grant_type="refresh_token", refresh_token=token, **form)


async def test_rotation_and_reuse_detection(flow: Flow) -> None:
    first = await flow.web_tokens()
    second = await refresh(flow, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.headers["cache-control"] == "no-store"
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert pair["access_token"] != first["access_token"]
    assert pair["scope"] == "openid offline_access read"
    assert pair["id_token"]  # OIDC Core §12.2
    assert (await flow.introspect(first["refresh_token"])) == {"active": False}  # rotated away
    third = (await refresh(flow, pair["refresh_token"])).json()

    flow.harness.clock.advance(11)  # past the grace window of the first rotation
    reuse = await refresh(flow, first["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # The whole family and every access token of the grant are revoked.
    newest = await refresh(flow, third["refresh_token"])
    assert newest.json()["error"] == "invalid_grant"
    for token in (first["access_token"], pair["access_token"], third["access_token"]):
        assert await flow.introspect(token) == {"active": False}


async def test_grace_window_retry_gets_the_same_pair(flow: Flow) -> None:
    first = await flow.web_tokens()
    answer = await refresh(flow, first["refresh_token"])
    flow.harness.clock.advance(5)
    retry = await refresh(flow, first["refresh_token"])
    assert retry.status_code == 200
    assert retry.json() == answer.json()  # the very same response: no alarm, no second rotation
    newest = await refresh(flow, answer.json()["refresh_token"])
    assert newest.status_code == 200  # the family is alive
    # A retry asking for another scope is not a retry.
    narrowed = await refresh(flow, answer.json()["refresh_token"], scope="read")
    assert narrowed.json()["error"] == "invalid_grant"


async def test_scope_may_narrow_never_widen(flow: Flow) -> None:
    first = await flow.web_tokens()
    narrowed = await refresh(flow, first["refresh_token"], scope="read")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "read"
    assert "id_token" not in narrowed.json()
    widened = await refresh(flow, narrowed.json()["refresh_token"], scope="read write")
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"
    # The refresh token keeps its scope: the next refresh gets everything again.
    again = await refresh(flow, narrowed.json()["refresh_token"])
    assert again.json()["scope"] == "openid offline_access read"


async def test_refresh_token_is_bound_to_its_client(flow: Flow) -> None:
    first = await flow.web_tokens()
    other, other_secret = await flow.harness.create_client(
        name="Other",
        grant_types=("authorization_code", "refresh_token"),
        scopes=("read",),
        redirect_uris=(WEB_REDIRECT,),
    )
    stolen = await flow.token(
        other, other_secret, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert stolen.json()["error"] == "invalid_grant"
    # In the wrong hands it leaked (RFC 6749 §10.4): the family is revoked.
    assert (await refresh(flow, first["refresh_token"])).json()["error"] == "invalid_grant"


async def test_idle_and_absolute_lifetimes(flow: Flow) -> None:
    first = await flow.web_tokens()
    flow.harness.clock.advance(13 * 86400)
    kept = await refresh(flow, first["refresh_token"])
    assert kept.status_code == 200
    flow.harness.clock.advance(14 * 86400 + 1)  # unused for longer than the idle lifetime
    expired = await refresh(flow, kept.json()["refresh_token"])
    assert expired.json()["error"] == "invalid_grant"

    token = (await flow.web_tokens())["refresh_token"]
    for _ in range(6):  # used every 13 days, it still dies 90 days after the sign-in
        flow.harness.clock.advance(13 * 86400)
        response = await refresh(flow, token)
        assert response.status_code == 200
        token = response.json()["refresh_token"]
    flow.harness.clock.advance(13 * 86400)
    assert (await refresh(flow, token)).json()["error"] == "invalid_grant"


async def test_introspection_of_refresh_tokens(flow: Flow) -> None:
    first = await flow.web_tokens()
    info = await flow.introspect(first["refresh_token"])
    assert info["active"] is True
    assert info["client_id"] == flow.web.client_id
    assert info["sub"] == flow.user.user_id
    assert info["scope"] == "openid offline_access read"
    assert info["iss"] == ISSUER
    assert "token_type" not in info  # not an access token (RFC 7662 §2.2)


async def test_revoking_a_refresh_token_revokes_the_family_and_grant(flow: Flow) -> None:
    first = await flow.web_tokens()
    second = (await refresh(flow, first["refresh_token"])).json()
    other, other_secret = await flow.harness.create_client(
        name="Other",
        grant_types=("authorization_code", "refresh_token"),
        scopes=("read",),
        redirect_uris=(WEB_REDIRECT,),
    )
    foreign = await flow.post("/revoke", other, other_secret, token=second["refresh_token"])
    assert foreign.status_code == 400  # not its token (RFC 7009 §2.1)
    assert (await flow.introspect(second["refresh_token"]))["active"] is True

    revoked = await flow.post("/revoke", token=second["refresh_token"])
    assert revoked.status_code == 200
    assert (await refresh(flow, second["refresh_token"])).json()["error"] == "invalid_grant"
    for token in (first["access_token"], second["access_token"], second["refresh_token"]):
        assert await flow.introspect(token) == {"active": False}
    again = await flow.post("/revoke", token=second["refresh_token"])
    assert again.status_code == 200  # idempotent


async def test_public_client_refreshes_and_revokes(flow: Flow) -> None:
    verifier, challenge = pkce_pair()
    params = await flow.agent().code_for(
        response_type="code",
        client_id=flow.native.client_id,
        redirect_uri="http://127.0.0.1:4000/callback",
        scope="offline_access read",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    tokens = (
        await flow.token(
            flow.native,
            grant_type="authorization_code",
            code=params["code"],
            redirect_uri="http://127.0.0.1:4000/callback",
            code_verifier=verifier,
        )
    ).json()
    rotated = await flow.token(
        flow.native, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert rotated.status_code == 200
    revoked = await flow.post("/revoke", flow.native, token=rotated.json()["refresh_token"])
    assert revoked.status_code == 200
    dead = await flow.token(
        flow.native, grant_type="refresh_token", refresh_token=rotated.json()["refresh_token"]
    )
    assert dead.json()["error"] == "invalid_grant"


async def test_deleting_the_user_or_the_clients_api_access_stops_refreshes(flow: Flow) -> None:
    first = await flow.web_tokens()
    storage = flow.harness.server.storage
    await storage.delete_user(flow.user.username)
    response = await refresh(flow, first["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_client_settings_require_pkce_and_always_refresh(flow: Flow) -> None:
    strict, secret = await flow.harness.create_client(
        name="Strict",
        grant_types=("authorization_code", "refresh_token"),
        scopes=("read",),
        redirect_uris=(WEB_REDIRECT,),
        require_pkce=True,
        always_issue_refresh_token=True,
    )
    request = {
        "response_type": "code",
        "client_id": strict.client_id,
        "redirect_uri": WEB_REDIRECT,
        "scope": "read",
        "state": "s",
    }
    refused = redirect_params(await flow.agent().authorize(**request))
    assert refused["error"] == "invalid_request"  # a confidential client that asked for PKCE
    verifier, challenge = pkce_pair()
    params = await flow.agent().code_for(
        **request, code_challenge=challenge, code_challenge_method="S256"
    )
    body = (
        await flow.token(
            strict,
            secret,
            grant_type="authorization_code",
            code=params["code"],
            redirect_uri=WEB_REDIRECT,
            code_verifier=verifier,
        )
    ).json()
    assert body["refresh_token"]  # without offline_access


async def test_resource_must_be_one_the_grant_covers(flow: Flow) -> None:
    """RFC 8707 §2.2: a refresh may name the grant's API (the token is for it), never another API,
    an unknown one or several; a refused target is no reuse alarm."""
    await flow.harness.create_api("https://other.example.test", scopes=("read",))
    first = await flow.web_tokens()
    token = first["refresh_token"]
    for resource in ("https://other.example.test", "https://unknown.example.test", "not a uri"):
        refused = await refresh(flow, token, resource=resource)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_target", resource
    several = await flow.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "resource": [API, "https://other.example.test"],
        },
        auth=(flow.web.client_id, flow.web_secret),
    )
    assert several.json()["error"] == "invalid_target"
    own = await refresh(flow, token, resource=API)
    assert own.status_code == 200, own.text
    assert claims_of(own.json()["access_token"])["aud"] == API
    # A retry of that refresh naming another API is refused too, and the family lives on.
    retry = await refresh(flow, token, resource="https://other.example.test")
    assert retry.json()["error"] == "invalid_target"
    assert (await refresh(flow, own.json()["refresh_token"])).status_code == 200
