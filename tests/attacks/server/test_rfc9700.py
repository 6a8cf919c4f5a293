"""The attacks of RFC 9700 (OAuth 2.0 Security Best Current Practice) as HTTP tests, in process, on
SQLite and PostgreSQL: code replay (§4.5), PKCE downgrade and mismatch (§4.8), redirect URI
manipulation (§4.1), missing CSRF protection of the client (§2.1, §4.7), open redirection (§4.11),
CSRF against the login and consent forms, clickjacking (§4.16), session fixation."""

from __future__ import annotations

import pytest

from tests.support.e2e import (
    PASSWORD,
    USERNAME,
    WEB_REDIRECT,
    Flow,
    UserAgent,
    assert_page_headers,
    only_form,
    pkce_pair,
    redirect_params,
)
from tests.support.log_scan import captured_server_logs  # noqa: F401 - autouse: the log scan
from tests.support.server_harness import ISSUER

OPAQUE_API = "https://opaque.example.test"


# The web client's request in these tests: refresh tokens too, and a fixed state.
ATTACKED = {"scope": "openid offline_access read", "state": "xyz"}


# -- code replay (RFC 6749 §4.1.2, RFC 9700 §4.5) --------------------------------------------------


async def test_code_replay_fails_and_revokes_everything_issued_from_the_code(flow: Flow) -> None:
    params = await flow.web_code(scope="openid offline_access read")
    first = await flow.token(
        grant_type="authorization_code", code=params["code"], redirect_uri=WEB_REDIRECT
    )
    assert first.status_code == 200
    tokens = first.json()
    assert (await flow.introspect(tokens["access_token"]))["active"] is True
    assert (await flow.introspect(tokens["refresh_token"]))["active"] is True

    replay = await flow.token(
        grant_type="authorization_code", code=params["code"], redirect_uri=WEB_REDIRECT
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert await flow.introspect(tokens["access_token"]) == {"active": False}
    assert await flow.introspect(tokens["refresh_token"]) == {"active": False}
    refreshed = await flow.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"


async def test_code_replay_revokes_opaque_tokens_and_later_refreshed_ones(flow: Flow) -> None:
    await flow.harness.create_api(OPAQUE_API, scopes=("read",), token_format="opaque")
    client, secret = await flow.harness.create_client(
        name="Opaque App",
        grant_types=("authorization_code", "refresh_token"),
        scopes=(f"{OPAQUE_API}#read",),
        redirect_uris=(WEB_REDIRECT,),
    )
    params = await flow.agent().code_for(
        **flow.web_request(
            **ATTACKED | {"client_id": client.client_id, "scope": "offline_access read"}
        )
    )
    issued = (
        await flow.token(
            client,
            secret,
            grant_type="authorization_code",
            code=params["code"],
            redirect_uri=WEB_REDIRECT,
        )
    ).json()
    assert "." not in issued["access_token"]  # opaque
    rotated = (
        await flow.token(
            client, secret, grant_type="refresh_token", refresh_token=issued["refresh_token"]
        )
    ).json()
    for token in (issued["access_token"], rotated["access_token"], rotated["refresh_token"]):
        response = await flow.post("/introspect", client, secret, token=token)
        assert response.json()["active"] is True
    replay = await flow.token(
        client,
        secret,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=WEB_REDIRECT,
    )
    assert replay.json()["error"] == "invalid_grant"
    for token in (issued["access_token"], rotated["access_token"], rotated["refresh_token"]):
        response = await flow.post("/introspect", client, secret, token=token)
        assert response.json() == {"active": False}


async def test_failed_redemption_uses_the_code_up(flow: Flow) -> None:
    verifier, challenge = pkce_pair()
    params = await flow.web_code(code_challenge=challenge, code_challenge_method="S256")
    wrong = await flow.token(
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=WEB_REDIRECT,
        code_verifier=pkce_pair()[0],
    )
    assert wrong.json()["error"] == "invalid_grant"
    right = await flow.token(
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=WEB_REDIRECT,
        code_verifier=verifier,
    )
    assert right.status_code == 400
    assert right.json()["error"] == "invalid_grant"


async def test_code_is_bound_to_client_redirect_uri_and_lifetime(flow: Flow) -> None:
    other, other_secret = await flow.harness.create_client(
        name="Other", grant_types=("authorization_code",), redirect_uris=(WEB_REDIRECT,)
    )
    stolen = await flow.web_code()
    response = await flow.token(
        other,
        other_secret,
        grant_type="authorization_code",
        code=stolen["code"],
        redirect_uri=WEB_REDIRECT,
    )
    assert response.json()["error"] == "invalid_grant"

    params = await flow.web_code()
    mismatch = await flow.token(
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=WEB_REDIRECT + "/other",
    )
    assert mismatch.json()["error"] == "invalid_grant"
    omitted = await flow.web_code()
    without = await flow.token(grant_type="authorization_code", code=omitted["code"])
    assert without.json()["error"] == "invalid_grant"  # RFC 6749 §4.1.3: it must be repeated

    late = await flow.web_code()
    flow.harness.clock.advance(61)
    expired = await flow.token(
        grant_type="authorization_code", code=late["code"], redirect_uri=WEB_REDIRECT
    )
    assert expired.json()["error"] == "invalid_grant"


# -- PKCE (RFC 7636, RFC 9700 §4.8) ---------------------------------------------------------------


async def test_pkce_downgrade_is_refused(flow: Flow) -> None:
    # A code issued without a challenge cannot be redeemed with a verifier (RFC 9700 §4.8.2).
    params = await flow.web_code()
    response = await flow.token(
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=WEB_REDIRECT,
        code_verifier=pkce_pair()[0],
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    # A code issued with a challenge cannot be redeemed without its verifier.
    _, challenge = pkce_pair()
    params = await flow.web_code(code_challenge=challenge, code_challenge_method="S256")
    response = await flow.token(
        grant_type="authorization_code", code=params["code"], redirect_uri=WEB_REDIRECT
    )
    assert response.json()["error"] == "invalid_grant"


PKCE_REFUSED = [
    {},  # a public client must use PKCE
    {"code_challenge": pkce_pair()[1]},  # no method means plain
    {"code_challenge": pkce_pair()[1], "code_challenge_method": "plain"},
    {"code_challenge": "short", "code_challenge_method": "S256"},
    {"code_challenge_method": "S256"},
]


async def test_public_client_pkce_rules(flow: Flow) -> None:
    agent = flow.agent()
    for pkce in PKCE_REFUSED:
        response = await agent.authorize(
            response_type="code",
            client_id=flow.native.client_id,
            redirect_uri="http://127.0.0.1:5000/callback",
            scope="read",
            state="s",
            **pkce,
        )
        params = redirect_params(response)
        assert params["error"] == "invalid_request", pkce
        assert params["state"] == "s"
        assert params["iss"] == ISSUER


# -- redirect URIs (RFC 9700 §4.1) and open redirection (§4.11) ------------------------------------


REDIRECT_VARIANTS = [
    "https://app.example.test/callback/",
    "https://app.example.test/Callback",
    "https://app.example.test/callback?next=https://evil.example",
    "https://APP.example.test/callback",
    "https://app.example.test:443/callback",
    "https://evil.example@app.example.test/callback",
    "https://app.example.test@evil.example/callback",
    "https://app.example.test/callback#fragment",
    "https://app.example.test/%63allback",
    "https://app.example.test.evil.example/callback",
    "http://app.example.test/callback",
    "https://app.example.test/callback/../callback",
    "https://evil.example/callback",
]


async def test_redirect_uri_variants_show_an_error_page(flow: Flow) -> None:
    agent = flow.agent()
    for variant in REDIRECT_VARIANTS:
        response = await flow.authorization_page(agent, **ATTACKED | {"redirect_uri": variant})
        assert response.status_code == 400, variant
        assert "location" not in response.headers, variant
        assert_page_headers(response)
        assert "This request cannot be completed" in response.text
        assert 'href="http' not in response.text.replace(ISSUER, ""), variant  # no way onward


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "unknown-client", "redirect_uri": "https://evil.example/cb"},
        {"client_id": "", "redirect_uri": WEB_REDIRECT},
        {"redirect_uri": "https://evil.example/cb", "response_type": "token"},
    ],
)
async def test_no_redirect_to_an_unvalidated_uri(flow: Flow, params: dict[str, str]) -> None:
    response = await flow.authorization_page(**ATTACKED | params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert_page_headers(response)


async def test_repeated_client_or_redirect_uri_is_a_page(flow: Flow) -> None:
    agent = flow.agent()
    query = (
        f"response_type=code&client_id={flow.web.client_id}&state=s"
        f"&redirect_uri={WEB_REDIRECT}&redirect_uri=https://evil.example/cb"
    )
    response = await agent.http.get("/authorize?" + query)
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_errors_after_validation_go_to_the_registered_uri_only(flow: Flow) -> None:
    response = await flow.authorization_page(**ATTACKED | {"response_type": "token"})
    params = redirect_params(response)
    assert response.headers["location"].startswith(WEB_REDIRECT + "?")
    assert params == {
        "error": "unsupported_response_type",
        "error_description": "only response_type=code is supported",
        "state": "xyz",
        "iss": ISSUER,
    }


# -- the client's CSRF protection (RFC 9700 §2.1) --------------------------------------------------


async def test_request_without_state_or_pkce_is_refused(flow: Flow) -> None:
    request = flow.web_request(**ATTACKED | {"scope": "read"})
    del request["state"]
    params = redirect_params(await flow.agent().authorize(**request))
    assert params["error"] == "invalid_request"
    assert "state" not in params
    _, challenge = pkce_pair()
    with_pkce = await flow.agent().authorize(
        **request, code_challenge=challenge, code_challenge_method="S256"
    )
    assert with_pkce.status_code == 200  # the login page: PKCE protects the client


# -- CSRF against the server's forms (RFC 6749 §10.12) ---------------------------------------------


async def test_login_form_requires_this_browsers_csrf_token(flow: Flow) -> None:
    victim, attacker = flow.agent(), flow.agent()
    attacker_page = await flow.authorization_page(attacker, **ATTACKED)
    form = only_form(attacker_page)
    # The attacker's form, with the attacker's token, posted from the victim's browser.
    await flow.authorization_page(victim, **ATTACKED)
    forged = await victim.submit(form, username=USERNAME, password=PASSWORD)
    assert forged.status_code == 403
    assert_page_headers(forged)
    assert "set-cookie" not in forged.headers or "Max-Age=0" not in forged.headers["set-cookie"]
    # No token at all, or from a browser without the cookie.
    fields = [(n, v) for n, v in form.fields if n != "csrf_token"]
    missing = await victim.post("/login", [*fields, ("username", USERNAME), ("password", PASSWORD)])
    assert missing.status_code == 403
    cookieless = flow.agent()
    assert (await cookieless.submit(form, username=USERNAME, password=PASSWORD)).status_code == 403
    # The victim is still not signed in.
    page = await flow.authorization_page(victim, **ATTACKED)
    assert only_form(page).action == ISSUER + "/login"


async def test_consent_form_requires_this_browsers_csrf_token(flow: Flow) -> None:
    victim, attacker = flow.agent(), flow.agent()
    consent = await attacker.sign_in(
        await flow.authorization_page(attacker, **ATTACKED), USERNAME, PASSWORD
    )
    form = only_form(consent)
    assert form.action == ISSUER + "/consent"
    victim_login = await flow.authorization_page(victim, **ATTACKED)
    await victim.sign_in(victim_login, USERNAME, PASSWORD)
    forged = await victim.submit(form, "approve")
    assert forged.status_code == 403
    assert "location" not in forged.headers
    assert await flow.harness.server.storage.list_consents(flow.user.user_id) == []


async def test_a_tampered_ticket_is_refused(flow: Flow) -> None:
    agent = flow.agent()
    page = await flow.authorization_page(agent, **ATTACKED)
    form = only_form(page)
    ticket = form.value("ticket")
    tampered = ticket[:-2] + ("AA" if not ticket.endswith("AA") else "BB")
    response = await agent.submit(form, username=USERNAME, password=PASSWORD, ticket=tampered)
    assert response.status_code == 400
    assert "start again" in response.text


# -- sessions --------------------------------------------------------------------------------------


def session_cookie(agent: UserAgent) -> str:
    value = agent.http.cookies.get("__Host-authgate_session")
    assert value is not None
    return value


async def test_sign_in_starts_a_new_session_id(flow: Flow) -> None:
    agent = flow.agent()
    page = await flow.authorization_page(agent, **ATTACKED)
    before = session_cookie(agent)
    cookie = page.headers["set-cookie"]
    for attribute in ("Path=/", "HttpOnly", "SameSite=Lax", "Secure"):
        assert attribute in cookie
    assert cookie.startswith("__Host-authgate_session=")
    await agent.sign_in(page, USERNAME, PASSWORD)
    assert session_cookie(agent) != before  # no fixation
    # A planted pre-login id does not become a session.
    planted = flow.agent()
    planted.http.cookies.set("__Host-authgate_session", before, domain="auth.example.test")
    response = await flow.authorization_page(planted, **ATTACKED)
    assert only_form(response).action == ISSUER + "/login"


async def test_sessions_expire_when_idle(flow: Flow) -> None:
    agent = flow.agent()
    await flow.web_code(agent)
    flow.harness.clock.advance(8 * 3600 + 1)
    page = await flow.authorization_page(agent, **ATTACKED)
    assert only_form(page).action == ISSUER + "/login"


# -- clickjacking (RFC 9700 §4.16) -----------------------------------------------------------------


async def test_every_page_carries_the_anti_framing_headers(flow: Flow) -> None:
    agent = flow.agent()
    login = await flow.authorization_page(agent, **ATTACKED)
    consent = await agent.sign_in(login, USERNAME, PASSWORD)
    redirect = await agent.approve(consent)
    error = await agent.authorize(client_id="nope")
    device = await agent.http.get("/device")
    logout = await agent.http.get("/logout")
    other = flow.agent()
    wrong = await other.sign_in(
        await flow.authorization_page(other, **ATTACKED), USERNAME, "wrong!!!"
    )
    for response in (login, consent, redirect, error, device, logout, wrong):
        assert_page_headers(response)
        assert "form-action" in response.headers["content-security-policy"]
