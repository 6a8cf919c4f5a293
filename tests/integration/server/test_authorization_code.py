"""The authorization code flow end to end, in process, on SQLite and PostgreSQL: pages, consent,
the code, the token response, ID tokens checked with joserfc, userinfo, `prompt`, `max_age`,
`form_post`, PKCE for public clients with loopback redirects, RFC 8707 resources."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from tests.support.e2e import (
    API,
    PASSWORD,
    USERNAME,
    WEB_REDIRECT,
    Flow,
    assert_page_headers,
    at_hash,
    joserfc_claims,
    only_form,
    pkce_pair,
    redirect_params,
)
from tests.support.server_harness import ISSUER


async def test_code_flow_tokens_verify_with_joserfc(flow: Flow) -> None:
    agent = flow.agent()
    page = await flow.authorization_page(
        agent,
        scope="openid profile offline_access read",
        state="st&te=1 ~x",
        nonce="n-0S6_WzA2Mj",
    )
    assert page.status_code == 200
    assert_page_headers(page)
    assert "Sign in" in page.text
    assert "Web &lt;App&gt;" in page.text  # the client's name, escaped
    consent = await agent.sign_in(page, USERNAME, PASSWORD)
    assert consent.status_code == 200
    assert "Orders API" in consent.text
    assert "Signed in as <strong>Alice Liddell</strong>" in consent.text
    for words in ("See your name and username", "Keep this access while you are not signed in"):
        assert words in consent.text
    assert {name for name, _ in only_form(consent).buttons} == {"approve", "deny"}
    # The consent form may lead to the client's redirect URI (Chrome checks form-action there).
    assert "https://app.example.test" in consent.headers["content-security-policy"]
    redirect = await agent.approve(consent)
    assert_page_headers(redirect)
    params = redirect_params(redirect)
    assert redirect.headers["location"].startswith(WEB_REDIRECT + "?")
    assert params["state"] == "st&te=1 ~x"  # echoed exactly
    assert params["iss"] == ISSUER  # RFC 9207
    assert len(params["code"]) >= 43  # 256 bits, base64url

    response = await flow.token(
        grant_type="authorization_code", code=params["code"], redirect_uri=WEB_REDIRECT
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "openid profile offline_access read"
    assert body["refresh_token"]
    jwks = (await flow.http.get("/.well-known/jwks.json")).json()
    now = flow.harness.clock()
    access = joserfc_claims(
        body["access_token"],
        jwks,
        now=now,
        typ="at+jwt",
        iss=ISSUER,
        aud=API,
        sub=flow.user.user_id,
        client_id=flow.web.client_id,
    )
    assert access["scope"] == "openid profile offline_access read"
    assert access["auth_time"] == int(now)
    id_token = joserfc_claims(
        body["id_token"],
        jwks,
        now=now,
        typ="JWT",
        iss=ISSUER,
        aud=flow.web.client_id,
        azp=flow.web.client_id,
        sub=flow.user.user_id,
        nonce="n-0S6_WzA2Mj",
        at_hash=at_hash(body["access_token"]),
        auth_time=int(now),
    )
    assert id_token["amr"] == ["pwd"]
    assert "name" not in id_token  # profile claims come from userinfo (OIDC Core §5.4)


async def test_no_refresh_token_without_offline_access(flow: Flow) -> None:
    body = await flow.web_tokens(scope="openid read")
    assert "refresh_token" not in body
    assert body["scope"] == "openid read"
    body = await flow.web_tokens(scope="read")
    assert "id_token" not in body
    assert "refresh_token" not in body


async def test_offline_access_without_the_refresh_grant_is_approved_once(flow: Flow) -> None:
    """A client without the refresh-token grant asking for `offline_access` (the MCP SDK does
    when the server lists it) has it dropped (OIDC Core §11). One approval must be enough: the
    consent recorded is for the scopes the request resolved to, and that is what is checked; it
    once was the requested scopes, and the consent page came back after every approval."""
    client, secret = await flow.harness.create_client(
        name="no refresh",
        grant_types=("authorization_code",),
        redirect_uris=(WEB_REDIRECT,),
        scopes=("read",),
    )
    agent = flow.agent()
    for prompt in ("", "consent"):
        request = {
            **flow.web_request(scope="openid read offline_access", client_id=client.client_id),
            **({"prompt": prompt} if prompt else {}),
        }
        flow.harness.clock.advance(1)  # `prompt=consent` wants an approval after the request
        page = await agent.authorize(**request)
        if only_form(page).action.endswith("/login"):
            page = await agent.sign_in(page, USERNAME, PASSWORD)
        assert only_form(page).action == ISSUER + "/consent"
        redirect = await agent.approve(page)
        assert redirect.status_code == 303, redirect.text  # not the consent page again
        params = redirect_params(redirect)
        response = await flow.harness.token(
            client,
            secret,
            grant_type="authorization_code",
            code=params["code"],
            redirect_uri=WEB_REDIRECT,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["scope"] == "openid read"
        assert "refresh_token" not in body
    # Remembered as approved: the same request goes straight to the client.
    request = flow.web_request(scope="openid read offline_access", client_id=client.client_id)
    assert redirect_params(await agent.authorize(**request))["code"]


async def test_consent_is_remembered_and_asked_again_for_more(flow: Flow) -> None:
    agent = flow.agent()
    await flow.web_code(agent, scope="openid read")
    again = await flow.authorization_page(
        agent,
        scope="read openid",
        state="x",
    )
    assert redirect_params(again)["code"]  # signed in and consented: straight to the client
    more = await flow.authorization_page(
        agent,
        scope="openid read write",
        state="x",
    )
    assert more.status_code == 200
    assert only_form(more).action == ISSUER + "/consent"
    consents = await flow.harness.server.storage.list_consents(flow.user.user_id)
    assert [sorted(c.scopes) for c in consents] == [["openid", "read"]]


async def test_head_never_mints_a_code(flow: Flow) -> None:
    """HEAD is "safe" (RFC 9110 §9.3.2) and link checkers or prefetchers send it: a signed-in,
    consented browser's HEAD /authorize is refused instead of running the flow."""
    agent = flow.agent()
    await flow.web_code(agent, scope="openid read")
    request = flow.web_request(scope="openid read", state="x")
    head = await agent.http.head("/authorize", params=request)
    assert head.status_code == 405
    assert {m.strip() for m in head.headers["allow"].split(",")} == {"GET", "POST"}
    assert "location" not in head.headers
    # The same request as GET would have gone straight to the client with a code.
    assert redirect_params(await agent.authorize(**request))["code"]


async def test_deny_sends_access_denied_to_the_client(flow: Flow) -> None:
    agent = flow.agent()
    page = await flow.authorization_page(
        agent,
        scope="read",
        state="deny-me",
    )
    consent = await agent.sign_in(page, USERNAME, PASSWORD)
    denied = redirect_params(await agent.approve(consent, "deny"))
    assert denied == {
        "error": "access_denied",
        "error_description": "the user denied the request",
        "state": "deny-me",
        "iss": ISSUER,
    }
    assert await flow.harness.server.storage.list_consents(flow.user.user_id) == []


async def test_form_post_response_mode(flow: Flow) -> None:
    agent = flow.agent()
    await flow.web_code(agent, scope="read")  # sign in and consent once
    page = await flow.authorization_page(
        agent,
        scope="read",
        state="fp",
        response_mode="form_post",
    )
    assert page.status_code == 200
    assert_page_headers(page)
    form = only_form(page)
    assert form.action == WEB_REDIRECT
    fields = dict(form.fields)
    assert fields["state"] == "fp"
    assert fields["iss"] == ISSUER
    assert fields["code"]
    csp = page.headers["content-security-policy"]
    assert "form-action https://app.example.test" in csp
    assert "script-src 'sha256-" in csp  # only the auto-submit line


async def test_prompt_none(flow: Flow) -> None:
    agent = flow.agent()
    request = flow.web_request(scope="openid read", state="p", prompt="none")
    assert redirect_params(await agent.authorize(**request))["error"] == "login_required"
    page = await agent.authorize(**{**request, "prompt": "login"})
    await agent.sign_in(page, USERNAME, PASSWORD)  # now signed in, consent not given
    assert redirect_params(await agent.authorize(**request))["error"] == "consent_required"
    await flow.web_code(agent, scope="openid read")
    assert "code" in redirect_params(await agent.authorize(**request))


async def test_prompt_login_and_max_age_ask_to_sign_in_again(flow: Flow) -> None:
    agent = flow.agent()
    await flow.web_code(agent)
    request = flow.web_request(scope="openid read", state="p")
    flow.harness.clock.advance(1)  # a sign-in in the same second as the request satisfies it
    again = await agent.authorize(**request, prompt="login")
    assert only_form(again).action == ISSUER + "/login"
    flow.harness.clock.advance(120)
    signed_in = await agent.sign_in(again, USERNAME, PASSWORD)
    code = redirect_params(signed_in)["code"]  # consent remembered
    body = (
        await flow.token(grant_type="authorization_code", code=code, redirect_uri=WEB_REDIRECT)
    ).json()
    jwks = (await flow.http.get("/.well-known/jwks.json")).json()
    now = flow.harness.clock()
    joserfc_claims(body["id_token"], jwks, now=now, typ="JWT", auth_time=int(now))

    flow.harness.clock.advance(61)
    stale = await agent.authorize(**request, max_age="60")
    assert only_form(stale).action == ISSUER + "/login"
    fresh = await agent.authorize(**request, max_age="600")
    assert "code" in redirect_params(fresh)


async def test_login_hint_fills_the_username(flow: Flow) -> None:
    page = await flow.authorization_page(
        scope="read",
        state="h",
        login_hint="alice@example.test",
    )
    assert dict(only_form(page).fields)["username"] == "alice@example.test"


async def test_public_client_with_pkce_and_a_loopback_port(flow: Flow) -> None:
    verifier, challenge = pkce_pair()
    redirect_uri = "http://127.0.0.1:53123/callback"  # any port (RFC 8252 §7.3)
    params = await flow.agent().code_for(
        response_type="code",
        client_id=flow.native.client_id,
        redirect_uri=redirect_uri,
        scope="offline_access read",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert "state" not in params
    response = await flow.token(
        flow.native,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=redirect_uri,
        code_verifier=verifier,
    )
    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"]


async def test_identity_only_request_gets_a_userinfo_token(flow: Flow) -> None:
    body = await flow.web_tokens(scope="openid profile email")
    jwks = (await flow.http.get("/.well-known/jwks.json")).json()
    joserfc_claims(
        body["access_token"],
        jwks,
        now=flow.harness.clock(),
        typ="at+jwt",
        aud=ISSUER + "/userinfo",  # no API accepts it
    )
    info = await flow.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert info.status_code == 200
    assert info.headers["cache-control"] == "no-store"
    assert info.json() == {
        "sub": flow.user.user_id,
        "name": "Alice Liddell",
        "preferred_username": "alice",
        "email": "alice@example.test",
        "email_verified": False,
    }


async def test_userinfo_releases_claims_by_scope_and_refuses_by_rfc_6750(flow: Flow) -> None:
    body = await flow.web_tokens(scope="openid read")
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await flow.http.get("/userinfo", headers=bearer)).json() == {"sub": flow.user.user_id}
    posted = await flow.http.post("/userinfo", data={"access_token": body["access_token"]})
    assert posted.json() == {"sub": flow.user.user_id}

    missing = await flow.http.get("/userinfo")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == (
        f'Bearer realm="{ISSUER}", DPoP realm="{ISSUER}", algs="ES256 PS256 RS256 EdDSA Ed25519"'
    )  # RFC 9449 §7.1: the DPoP scheme is offered too
    bad = await flow.http.get("/userinfo", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    query = await flow.http.get("/userinfo", params={"access_token": body["access_token"]})
    assert query.status_code == 400  # RFC 6750 §5.3: never in the URL

    plain = await flow.web_tokens(scope="read")  # no openid
    refused = await flow.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {plain['access_token']}"}
    )
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]

    revoked = await flow.http.post(
        "/revoke", data={"token": body["access_token"]}, auth=(flow.web.client_id, flow.web_secret)
    )
    assert revoked.status_code == 200
    assert (await flow.http.get("/userinfo", headers=bearer)).status_code == 401


async def test_resource_chooses_and_narrows_the_audience(flow: Flow) -> None:
    params = await flow.web_code(scope="read", resource=API)
    narrowed = await flow.token(
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=WEB_REDIRECT,
        resource=API,
    )
    assert narrowed.status_code == 200, narrowed.text
    other = await flow.web_code(scope="read")
    widened = await flow.token(
        grant_type="authorization_code",
        code=other["code"],
        redirect_uri=WEB_REDIRECT,
        resource="https://other.example.test",
    )
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_target"
    unknown = await flow.authorization_page(
        scope="read",
        state="r",
        resource="https://unknown.example.test",
    )
    assert redirect_params(unknown)["error"] == "invalid_target"
    bad_scope = await flow.authorization_page(
        scope="read delete",
        state="r",
    )
    assert redirect_params(bad_scope)["error"] == "invalid_scope"


async def test_post_to_the_authorization_endpoint(flow: Flow) -> None:
    agent = flow.agent()
    await flow.web_code(agent, scope="read")
    response = await agent.post(
        "/authorize",
        [
            ("response_type", "code"),
            ("client_id", flow.web.client_id),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "read"),
            ("state", "posted"),
        ],
    )
    params = redirect_params(response)
    assert params["state"] == "posted"
    assert params["code"]


async def test_pages_escape_and_link_the_stylesheet(flow: Flow) -> None:
    page = await flow.authorization_page(
        scope="read",
        state="<script>",
    )
    assert "<script>" not in page.text
    stylesheet = ISSUER + "/static/authgate.css"
    assert f'href="{html.escape(stylesheet)}"' in page.text
    css = await flow.http.get(urlsplit(stylesheet).path)
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
