"""Sign-in, sessions and RP-initiated logout end to end, in process, on SQLite and PostgreSQL: an
unknown user and a wrong password get the same answer, failed sign-ins are throttled per account
and address, logout is real (server-side sessions) and redirects only to registered URIs."""

from __future__ import annotations

import asyncio
import dataclasses
import re

import httpx

from authgate.server.models import Client
from tests.support.e2e import (
    NATIVE_REDIRECT,
    PASSWORD,
    POST_LOGOUT,
    USERNAME,
    WEB_REDIRECT,
    Flow,
    UserAgent,
    assert_page_headers,
    only_form,
    pkce_pair,
    redirect_params,
)
from tests.support.server_harness import ISSUER

CSRF = re.compile(r'name="csrf_token" value="[^"]*"')


async def failed_sign_in(flow: Flow, agent: UserAgent, username: str) -> httpx.Response:
    page = await flow.authorization_page(agent)
    return await agent.sign_in(page, username, "not the password")


def comparable(response: httpx.Response, typed: str) -> str:
    """The page without what legitimately differs: this browser's CSRF token, the name typed."""
    return CSRF.sub("csrf", response.text).replace(f'value="{typed}"', 'value="TYPED"')


async def test_unknown_user_and_wrong_password_look_the_same(flow: Flow) -> None:
    wrong = await failed_sign_in(flow, flow.agent(), USERNAME)
    unknown = await failed_sign_in(flow, flow.agent(), "mallory")
    assert wrong.status_code == unknown.status_code == 200
    assert "Incorrect username or password." in wrong.text
    assert comparable(wrong, USERNAME) == comparable(unknown, "mallory")
    assert dict(wrong.headers).keys() == dict(unknown.headers).keys()
    assert_page_headers(wrong)


async def test_failed_sign_ins_are_throttled_per_account(flow: Flow) -> None:
    agent = flow.agent()
    for _ in range(6):  # five free attempts; the sixth makes the next one wait
        assert (await failed_sign_in(flow, agent, USERNAME)).status_code == 200
    page = await flow.authorization_page(agent)
    blocked = await agent.sign_in(page, USERNAME, PASSWORD)  # even the right password waits
    assert blocked.status_code == 429
    assert "Too many sign-in attempts" in blocked.text
    wait = int(blocked.headers["retry-after"])
    assert wait > 0
    # An unknown account is throttled the same way (the key is the name typed).
    other = flow.agent()
    for _ in range(6):
        await failed_sign_in(flow, other, "mallory")
    assert (await failed_sign_in(flow, other, "mallory")).status_code == 429
    flow.harness.clock.advance(wait)
    page = await flow.authorization_page(agent)
    consent = await agent.sign_in(page, USERNAME, PASSWORD)
    assert only_form(consent).action == ISSUER + "/consent"


async def test_successful_sign_ins_never_count_against_the_address(flow: Flow) -> None:
    """Issue 8, finding 4: every sign-in counted against the address and a success cleared only
    the account, so after 20 correct sign-ins from one address (a NAT, or every user behind a
    proxy without `trusted_proxies`) each further one had to wait. Here the clock stands still:
    any count left behind by a success would block the 22nd sign-in."""
    for _ in range(30):  # a public client (PKCE), a fresh browser each time, prompt=login
        verifier, challenge = pkce_pair()
        result = await flow.agent().code_for(
            response_type="code",
            client_id=flow.native.client_id,
            redirect_uri=NATIVE_REDIRECT,
            scope="openid read",
            state="s-" + verifier[:8],
            code_challenge=challenge,
            code_challenge_method="S256",
            prompt="login",
        )
        assert result["code"]
    # Failures still count per address as before: 20 free (other accounts, so only the address
    # counts), the 21st makes the next one wait.
    agent = flow.agent()
    for n in range(21):
        assert (await failed_sign_in(flow, agent, f"guess{n}")).status_code == 200
    blocked = await failed_sign_in(flow, agent, "guess-more")
    assert blocked.status_code == 429
    page = await flow.authorization_page(agent)
    assert (await agent.sign_in(page, USERNAME, PASSWORD)).status_code == 429  # the right one too


async def test_a_burst_of_concurrent_guesses_is_still_stopped(flow: Flow) -> None:
    """Attempts are counted before the password is checked (a success takes its count back),
    so guesses sent all at once cannot all be checked before the first failure is recorded."""
    agent = flow.agent()
    pages = [await flow.authorization_page(agent) for _ in range(40)]
    answers = await asyncio.gather(
        *(agent.sign_in(page, f"guess{n}", "wrong") for n, page in enumerate(pages))
    )
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(200) == 21  # 20 free on the address, the 21st sets the first wait
    assert statuses.count(429) == 19


async def test_missing_fields_ask_again(flow: Flow) -> None:
    agent = flow.agent()
    page = await flow.authorization_page(agent)
    response = await agent.submit(only_form(page), username=USERNAME, password="")
    assert response.status_code == 200
    assert "Enter your username and password." in response.text


async def client_with_logout_uri(flow: Flow) -> Client:
    """The web client with a registered post-logout redirect URI."""
    storage = flow.harness.server.storage
    await storage.delete_client(flow.web.client_id)
    client = dataclasses.replace(flow.web, post_logout_redirect_uris=(POST_LOGOUT,))
    await storage.create_client(client)
    return client


async def signed_in(flow: Flow) -> tuple[UserAgent, dict[str, str]]:
    agent = flow.agent()
    result = await flow.web_code(agent)
    tokens = (
        await flow.token(
            grant_type="authorization_code", code=result["code"], redirect_uri=WEB_REDIRECT
        )
    ).json()
    return agent, tokens


async def test_rp_initiated_logout_with_id_token_hint(flow: Flow) -> None:
    await client_with_logout_uri(flow)
    agent, tokens = await signed_in(flow)
    confirm = await agent.http.get(
        "/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": POST_LOGOUT,
            "state": "bye",
        },
    )
    assert confirm.status_code == 200
    assert_page_headers(confirm)
    assert "Web &lt;App&gt;" in confirm.text
    assert "https://app.example.test" in confirm.headers["content-security-policy"]
    form = only_form(confirm)
    assert {name for name, _ in form.buttons} == {"logout", "cancel"}
    done = await agent.submit(form, "logout")
    assert done.status_code == 303
    assert done.headers["location"] == POST_LOGOUT + "?state=bye"
    assert "Max-Age=0" in done.headers["set-cookie"]
    assert_page_headers(done)
    # The session is gone on the server: the old cookie value no longer signs anyone in.
    page = await flow.authorization_page(agent)
    assert only_form(page).action == ISSUER + "/login"


async def test_logout_by_client_id_and_cancel(flow: Flow) -> None:
    client = await client_with_logout_uri(flow)
    agent, _ = await signed_in(flow)
    confirm = await agent.http.get(
        "/logout", params={"client_id": client.client_id, "post_logout_redirect_uri": POST_LOGOUT}
    )
    stay = await agent.submit(only_form(confirm), "cancel")
    assert stay.status_code == 200
    assert "You are still signed in" in stay.text
    assert "code" in redirect_params(await flow.authorization_page(agent))


async def test_logout_never_redirects_to_an_unregistered_uri(flow: Flow) -> None:
    client = await client_with_logout_uri(flow)
    agent, tokens = await signed_in(flow)
    for params in (
        {"client_id": client.client_id, "post_logout_redirect_uri": "https://evil.example/"},
        {"post_logout_redirect_uri": POST_LOGOUT},  # no client named
        {"id_token_hint": tokens["access_token"], "post_logout_redirect_uri": POST_LOGOUT},
        {"id_token_hint": "e30.e30.sig", "post_logout_redirect_uri": POST_LOGOUT},
        {"client_id": "someone-else", "id_token_hint": tokens["id_token"]},
    ):
        response = await agent.http.get("/logout", params=params)
        assert response.status_code == 400, params
        assert "location" not in response.headers
    # Without a redirect URI the user sees the signed-out page.
    confirm = await agent.http.get("/logout")
    done = await agent.submit(only_form(confirm), "logout")
    assert done.status_code == 200
    assert "You are signed out" in done.text


async def test_logout_form_needs_the_csrf_token(flow: Flow) -> None:
    victim, _ = await signed_in(flow)
    attacker, _ = await signed_in(flow)
    form = only_form(await attacker.http.get("/logout"))
    forged = await victim.submit(form, "logout")
    assert forged.status_code == 403
    assert "code" in redirect_params(await flow.authorization_page(victim))


async def test_logout_without_a_session_asks_nothing(flow: Flow) -> None:
    client = await client_with_logout_uri(flow)
    response = await flow.agent().http.get(
        "/logout",
        params={"client_id": client.client_id, "post_logout_redirect_uri": POST_LOGOUT},
    )
    assert response.status_code == 303
    assert response.headers["location"] == POST_LOGOUT
